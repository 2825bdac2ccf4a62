//! IAM: what roles and policies allow, and who may assume a role.

use super::{typed, Context, Hit, Rule, Severity};
use crate::iam::{Effect, Policy, PolicyDocument, Principal, Role, Statement, PERMISSIONS_BOUNDARY_VAR};
use ferroform_core::{Declared, Resource};

pub(super) static RULES: &[Rule] = &[
    Rule {
        id: "FF-IAM-001",
        severity: Severity::High,
        resource_type: Role::TYPE,
        title: "A role's policy allows every action (`*`) or every action of a service (`s3:*`)",
        why: "Wildcard actions grant far more than the code uses, including actions added to the service later; \
              a leaked credential or a bug in the function can then delete or exfiltrate anything the resources allow.",
        fix: "List the actions the code calls (`Role::allow([\"dynamodb:GetItem\", ...], [table.arn()])`).",
        check: |d, _| on_role(d, wildcard_actions),
    },
    Rule {
        id: "FF-IAM-002",
        severity: Severity::High,
        resource_type: Role::TYPE,
        title: "A role's policy allows write actions on every resource (`Resource: *`)",
        why: "A write action on `*` reaches every resource of that kind in the account, other stacks' included.",
        fix: "Name the resources by their references (`table.arn()`, `format!(\"{}/*\", bucket.arn())`).",
        check: |d, _| on_role(d, writes_everywhere),
    },
    Rule {
        id: "FF-IAM-003",
        severity: Severity::Critical,
        resource_type: Role::TYPE,
        title: "A role's trust policy lets any principal assume it",
        why: "`Principal: *` (or `{\"AWS\": \"*\"}`) without a condition lets every AWS account assume the role.",
        fix: "Trust one service (`Role::for_service(\"lambda.amazonaws.com\")`), account or federated provider, with conditions.",
        check: |d, _| typed::<Role>(d).map(|r| open_trust(&r)).unwrap_or_default(),
    },
    Rule {
        id: "FF-IAM-004",
        severity: Severity::Medium,
        resource_type: Role::TYPE,
        title: "A role has no permissions boundary, and the stack asks for one",
        why: "Accounts that delegate role creation require a boundary on every role, so no role can grant more \
              than the boundary allows; a role without it is refused by IAM or escapes that limit.",
        fix: "Call `.with_stack_boundary(&stack)` on the role (or `.permissions_boundary(arn)` with the ARN the \
              stack's `permissions_boundary` variable names).",
        check: permissions_boundary,
    },
    Rule {
        id: "FF-IAM-005",
        severity: Severity::Critical,
        resource_type: Role::TYPE,
        title: "A role trusts GitHub's OIDC provider without pinning the repository (`sub`)",
        why: "Without a `token.actions.githubusercontent.com:sub` condition, a workflow of any GitHub repository \
              can assume the role.",
        fix: "Use `components::github_deploy_role`, or add a `StringEquals`/`StringLike` condition on \
              `token.actions.githubusercontent.com:sub` (`repo:OWNER/REPO:ref:refs/heads/main`) and on `:aud`.",
        check: |d, _| typed::<Role>(d).map(|r| unpinned_github(&r)).unwrap_or_default(),
    },
    Rule {
        id: "FF-IAM-006",
        severity: Severity::High,
        resource_type: Role::TYPE,
        title: "A role has an administrator's managed policy attached",
        why: "AdministratorAccess, PowerUserAccess and IAMFullAccess let the role do (or grant itself) nearly \
              anything in the account.",
        fix: "Attach a policy written for what the role does, or grant statements with `Role::allow`.",
        check: |d, _| typed::<Role>(d).map(|r| admin_policies(&r)).unwrap_or_default(),
    },
    Rule {
        id: "FF-IAM-007",
        severity: Severity::High,
        resource_type: Policy::TYPE,
        title: "A managed policy allows every action (`*`, `s3:*`) or write actions on every resource",
        why: "A managed policy is attached to roles and users beyond this stack's view: wildcards there grant \
              more than any one of them needs.",
        fix: "List the actions and name the resources (`Statement::allow().actions([...]).resources([...])`).",
        check: |d, _| typed::<Policy>(d).map(|p| policy_wildcards(&p)).unwrap_or_default(),
    },
];

/// Runs `f` on each inline policy of a role, with the policy's field path.
fn on_role(d: &Declared, f: fn(&str, &PolicyDocument) -> Vec<Hit>) -> Vec<Hit> {
    let Some(role) = typed::<Role>(d) else { return Vec::new() };
    role.inline_policies.iter().flat_map(|(name, doc)| f(&format!("inline_policies.{name}"), doc)).collect()
}

fn allows(doc: &PolicyDocument) -> impl Iterator<Item = (usize, &Statement)> {
    doc.statements.iter().enumerate().filter(|(_, s)| s.effect == Effect::Allow)
}

/// `*`, `s3:*` (a whole service); `s3:Get*` is narrower and left alone.
fn is_wildcard_action(action: &str) -> bool {
    action == "*" || action.split_once(':').is_some_and(|(_, name)| name == "*")
}

fn wildcard_actions(path: &str, doc: &PolicyDocument) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (i, s) in allows(doc) {
        for a in s.actions.iter().filter(|a| is_wildcard_action(a)) {
            hits.push(Hit::new(format!("{path}.Statement[{i}].Action"), format!("`{a}` allows every action of {}", service_of(a))));
        }
        if !s.not_actions.is_empty() {
            hits.push(Hit::new(
                format!("{path}.Statement[{i}].NotAction"),
                "Allow with NotAction allows every action but the listed ones, of every service",
            ));
        }
    }
    hits
}

fn service_of(action: &str) -> String {
    match action.split_once(':') {
        Some((service, _)) => format!("`{service}`"),
        None => "every service".to_string(),
    }
}

/// Read-only by name (`Get`, `List`, `Describe`, ...): everything else counts as a write.
fn is_read_only(action: &str) -> bool {
    let name = action.split_once(':').map(|(_, n)| n).unwrap_or(action);
    ["Get", "List", "Describe", "BatchGet", "BatchCheck", "Query", "Scan", "Head", "Lookup", "Search", "Select", "View"]
        .iter()
        .any(|p| name.starts_with(p))
}

fn writes_everywhere(path: &str, doc: &PolicyDocument) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (i, s) in allows(doc) {
        let everywhere = s.resources.iter().any(|r| r == "*") || !s.not_resources.is_empty();
        if !everywhere {
            continue;
        }
        let writes: Vec<&str> = s.actions.iter().map(String::as_str).filter(|a| !is_read_only(a)).collect();
        if !writes.is_empty() || !s.not_actions.is_empty() {
            let shown = if writes.is_empty() { "NotAction".to_string() } else { writes.join(", ") };
            hits.push(Hit::new(format!("{path}.Statement[{i}].Resource"), format!("`*` with write actions: {shown}")));
        }
    }
    hits
}

fn policy_wildcards(p: &Policy) -> Vec<Hit> {
    let mut hits = wildcard_actions("document", &p.document);
    hits.extend(writes_everywhere("document", &p.document));
    hits
}

fn is_anyone(p: &Principal) -> bool {
    match p {
        Principal::Any(_) => true,
        Principal::One(s) => s == "*",
        Principal::Typed(map) => map.get("AWS").is_some_and(|v| v.iter().any(|x| x == "*")),
    }
}

fn open_trust(role: &Role) -> Vec<Hit> {
    allows(&role.assume_role_policy)
        .filter(|(_, s)| s.conditions.is_empty() && (s.principal.as_ref().is_some_and(is_anyone) || s.not_principal.is_some()))
        .map(|(i, _)| Hit::new(format!("assume_role_policy.Statement[{i}].Principal"), "any principal may assume the role (no condition)"))
        .collect()
}

const GITHUB: &str = "token.actions.githubusercontent.com";

fn unpinned_github(role: &Role) -> Vec<Hit> {
    let federated_github = |s: &Statement| match &s.principal {
        Some(Principal::Typed(map)) => {
            map.get("Federated").is_some_and(|v| v.iter().any(|arn| arn.ends_with(GITHUB) || arn.contains("oidc-provider/token.actions")))
        }
        _ => false,
    };
    let sub = format!("{GITHUB}:sub");
    allows(&role.assume_role_policy)
        .filter(|(_, s)| federated_github(s))
        .filter(|(_, s)| {
            // A `sub` pinned to something narrower than any repository.
            !s.conditions
                .values()
                .any(|keys| keys.get(&sub).is_some_and(|vals| !vals.is_empty() && vals.iter().all(|v| v != "*" && v != "repo:*")))
        })
        .map(|(i, _)| {
            Hit::new(
                format!("assume_role_policy.Statement[{i}].Condition"),
                format!("no condition on `{sub}`: any repository's workflow may assume the role"),
            )
        })
        .collect()
}

fn admin_policies(role: &Role) -> Vec<Hit> {
    const ADMIN: &[&str] = &[":policy/AdministratorAccess", ":policy/PowerUserAccess", ":policy/IAMFullAccess"];
    role.managed_policy_arns
        .iter()
        .filter(|arn| arn.contains(":iam::aws:") && ADMIN.iter().any(|a| arn.ends_with(a)))
        .map(|arn| Hit::new("managed_policy_arns", format!("`{arn}` is attached")))
        .collect()
}

/// The stack asks with its variable `permissions_boundary` (an ARN); a role then needs exactly that one.
fn permissions_boundary(d: &Declared, cx: &Context) -> Vec<Hit> {
    let Some(wanted) = cx.var(PERMISSIONS_BOUNDARY_VAR).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) else {
        return Vec::new();
    };
    match typed::<Role>(d).and_then(|r| r.permissions_boundary) {
        Some(b) if b == wanted => Vec::new(),
        Some(b) => vec![Hit::new("permissions_boundary", format!("`{b}`, not the stack's `{wanted}`"))],
        None => vec![Hit::new("permissions_boundary", format!("unset; the stack asks for `{wanted}` on every role"))],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::testing::{fired, stack};
    use crate::iam::{PolicyDocument, Role, Statement};
    use ferroform_core::Arn;

    fn role_with(doc: PolicyDocument) -> Role {
        Role::for_service("lambda.amazonaws.com").inline_policy("default", doc)
    }

    #[test]
    fn ff_iam_001_wildcard_actions() {
        let mut s = stack();
        s.add(
            "bad",
            role_with(PolicyDocument::new().statement(Statement::allow().actions(["dynamodb:*"]).resource("arn:aws:dynamodb:::table/t"))),
        );
        s.add("all", role_with(PolicyDocument::new().statement(Statement::allow().action("*").resource("arn:aws:s3:::b"))));
        s.add(
            "ok",
            role_with(
                PolicyDocument::new()
                    .statement(Statement::allow().actions(["dynamodb:GetItem", "s3:Get*"]).resource("arn:aws:dynamodb:::table/t")),
            ),
        );
        s.add("deny", role_with(PolicyDocument::new().statement(Statement::deny().action("*").resource("*"))));
        assert_eq!(
            fired(&s, "FF-IAM-001"),
            [
                ("all".into(), "inline_policies.default.Statement[0].Action".into()),
                ("bad".into(), "inline_policies.default.Statement[0].Action".into())
            ]
        );
    }

    #[test]
    fn ff_iam_002_writes_on_every_resource() {
        let mut s = stack();
        s.add(
            "bad",
            role_with(PolicyDocument::new().statement(Statement::allow().actions(["s3:GetObject", "s3:PutObject"]).resource("*"))),
        );
        s.add(
            "reads",
            role_with(
                PolicyDocument::new()
                    .statement(Statement::allow().actions(["ec2:DescribeSubnets", "ecr:GetAuthorizationToken"]).resource("*")),
            ),
        );
        s.add("named", role_with(PolicyDocument::new().statement(Statement::allow().action("s3:PutObject").resource("arn:aws:s3:::b/*"))));
        assert_eq!(fired(&s, "FF-IAM-002"), [("bad".into(), "inline_policies.default.Statement[0].Resource".into())]);
    }

    #[test]
    fn ff_iam_003_trust_open_to_anyone() {
        let mut s = stack();
        s.add("bad", Role::with_trust(PolicyDocument::new().statement(Statement::allow().action("sts:AssumeRole").any_principal())));
        s.add(
            "conditioned",
            Role::with_trust(PolicyDocument::new().statement(Statement::allow().action("sts:AssumeRole").any_principal().condition(
                "StringEquals",
                "aws:PrincipalOrgID",
                "o-1",
            ))),
        );
        s.add("service", Role::for_service("lambda.amazonaws.com"));
        assert_eq!(fired(&s, "FF-IAM-003"), [("bad".into(), "assume_role_policy.Statement[0].Principal".into())]);
    }

    #[test]
    fn ff_iam_004_boundary_when_the_stack_asks() {
        let mut s = stack();
        s.add("r", Role::for_service("lambda.amazonaws.com"));
        assert!(fired(&s, "FF-IAM-004").is_empty(), "the stack does not ask");
        let boundary = "arn:aws:iam::123456789012:policy/boundary";
        s.set_var("permissions_boundary", boundary);
        // What a stack does when asked: every role takes the boundary the variable names.
        s.add("asked", Role::for_service("lambda.amazonaws.com").with_stack_boundary(&s));
        s.add(
            "other",
            Role::for_service("lambda.amazonaws.com").permissions_boundary(Arn::literal("arn:aws:iam::123456789012:policy/wider")),
        );
        s.add("same", Role::for_service("lambda.amazonaws.com").permissions_boundary(Arn::literal(boundary)));
        assert_eq!(fired(&s, "FF-IAM-004"), [("other".into(), "permissions_boundary".into()), ("r".into(), "permissions_boundary".into())]);
    }

    #[test]
    fn ff_iam_005_github_trust_without_sub() {
        let github = |cond: Option<(&str, &str)>| {
            let mut st = Statement::allow()
                .action("sts:AssumeRoleWithWebIdentity")
                .principal("Federated", "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com")
                .condition("StringEquals", "token.actions.githubusercontent.com:aud", "sts.amazonaws.com");
            if let Some((op, v)) = cond {
                st = st.condition(op, "token.actions.githubusercontent.com:sub", v);
            }
            Role::with_trust(PolicyDocument::new().statement(st))
        };
        let mut s = stack();
        s.add("bad", github(None));
        s.add("any-repo", github(Some(("StringLike", "*"))));
        s.add("ok", github(Some(("StringEquals", "repo:my-org/app:ref:refs/heads/main"))));
        let fired = fired(&s, "FF-IAM-005");
        assert_eq!(fired.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), ["any-repo", "bad"]);
        assert_eq!(fired[1].1, "assume_role_policy.Statement[0].Condition");
    }

    #[test]
    fn ff_iam_006_admin_managed_policies() {
        let mut s = stack();
        let mut bad = Role::for_service("lambda.amazonaws.com");
        bad.managed_policy_arns.insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
        let mut ok = Role::for_service("lambda.amazonaws.com");
        ok.managed_policy_arns.insert("arn:aws:iam::aws:policy/ReadOnlyAccess".into());
        s.add("bad", bad);
        s.add("ok", ok);
        assert_eq!(fired(&s, "FF-IAM-006"), [("bad".into(), "managed_policy_arns".into())]);
    }

    #[test]
    fn ff_iam_007_managed_policy_wildcards() {
        let policy = |doc: PolicyDocument| crate::iam::Policy {
            name: "p".into(),
            path: None,
            description: None,
            document: doc,
            tags: Default::default(),
        };
        let mut s = stack();
        s.add("bad", policy(PolicyDocument::new().statement(Statement::allow().action("iam:*").resource("*"))));
        s.add("ok", policy(PolicyDocument::new().statement(Statement::allow().action("s3:GetObject").resource("arn:aws:s3:::b/*"))));
        assert_eq!(
            fired(&s, "FF-IAM-007"),
            [("bad".into(), "document.Statement[0].Action".into()), ("bad".into(), "document.Statement[0].Resource".into())]
        );
    }
}
