//! IAM roles and managed policies against the emulator, checked with independent SDK reads.
#![cfg(feature = "iam")]

use crate::common::{change, harness};
use ferroform_aws::iam::{generated_name, Policy, PolicyDocument, Role, Statement};
use ferroform_core::{Action, Stack};

const STACK: &str = "iamtest";

fn read_policy() -> PolicyDocument {
    PolicyDocument::new().allow(["s3:GetObject", "s3:ListBucket"], ["arn:aws:s3:::bucket", "arn:aws:s3:::bucket/*"])
}

/// A managed policy, and a role using it with an inline policy built by `allow`.
fn stack(description: &str, extra_action: Option<&str>, path: Option<&str>) -> Stack {
    let mut s = Stack::new(STACK);
    let policy = s.add("reader", Policy::new("reader", read_policy()).description("reads the bucket"));
    let mut actions = vec!["dynamodb:Scan"];
    actions.extend(extra_action);
    let mut role = Role::for_service("lambda.amazonaws.com")
        .allow(actions, ["arn:aws:dynamodb:us-east-1:123456789012:table/pedidos"])
        .managed_policy(policy.arn())
        .description(description)
        .tag("team", "orders");
    if let Some(p) = path {
        role = role.path(p);
    }
    s.add("role", role);
    s
}

#[tokio::test]
async fn role_lifecycle() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let name = generated_name(STACK, "role");

    h.apply(&stack("v1", None, None)).await?;
    assert_eq!(h.id_of(&stack("v1", None, None), "role").await?, name);
    // Independent reads: trust policy, inline policy, attachment, tags.
    let role = iam.get_role().role_name(&name).send().await?.role.ok_or_else(|| anyhow::anyhow!("no role"))?;
    let first_id = role.role_id().to_string();
    assert_eq!(role.description(), Some("v1"));
    let trust = PolicyDocument::parse_aws(role.assume_role_policy_document().unwrap_or_default()).map_err(anyhow::Error::msg)?;
    assert!(trust.equivalent(&PolicyDocument::assume_role_by_service("lambda.amazonaws.com")));
    assert!(role.tags().iter().any(|t| t.key() == "ferroform:address" && t.value() == "role"));
    assert!(role.tags().iter().any(|t| t.key() == "team" && t.value() == "orders"));
    let inline = iam.get_role_policy().role_name(&name).policy_name("ferroform").send().await?;
    let inline = PolicyDocument::parse_aws(inline.policy_document()).map_err(anyhow::Error::msg)?;
    assert_eq!(inline.statements[0].actions, ["dynamodb:Scan"]);
    let attached = iam.list_attached_role_policies().role_name(&name).send().await?;
    let policy_arn = format!("arn:aws:iam::{}:policy/reader", h.account.id);
    assert_eq!(attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect::<Vec<_>>(), [policy_arn.as_str()]);

    // A no-op plan, and what its reads cost.
    calls.reset();
    let plan = h.plan(&stack("v1", None, None)).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    eprintln!("no-op plan of a role (1 inline policy) + a managed policy: {} calls {:?}", calls.total(), calls.snapshot());

    // In place: description and inline policy; the same role.
    let plan = h.plan(&stack("v2", Some("dynamodb:GetItem"), None)).await?;
    let (action, mut fields) = change(&plan, "role");
    fields.sort();
    assert_eq!((action, fields), (Action::Update, vec!["description".to_string(), "inline_policies".to_string()]));
    h.apply(&stack("v2", Some("dynamodb:GetItem"), None)).await?;
    let role = iam.get_role().role_name(&name).send().await?.role.ok_or_else(|| anyhow::anyhow!("no role"))?;
    assert_eq!(role.role_id(), first_id);
    assert_eq!(role.description(), Some("v2"));
    let inline = iam.get_role_policy().role_name(&name).policy_name("ferroform").send().await?;
    let inline = PolicyDocument::parse_aws(inline.policy_document()).map_err(anyhow::Error::msg)?.normalized();
    assert_eq!(inline.statements[0].actions, ["dynamodb:GetItem", "dynamodb:Scan"]);
    assert!(!h.plan(&stack("v2", Some("dynamodb:GetItem"), None)).await?.has_changes());

    // Replace: the path forces a new role (same generated name, so the old one goes first).
    let plan = h.plan(&stack("v2", Some("dynamodb:GetItem"), Some("/svc/"))).await?;
    assert_eq!(change(&plan, "role").0, Action::Replace);
    h.apply(&stack("v2", Some("dynamodb:GetItem"), Some("/svc/"))).await?;
    let role = iam.get_role().role_name(&name).send().await?.role.ok_or_else(|| anyhow::anyhow!("no role"))?;
    assert_ne!(role.role_id(), first_id);
    assert_eq!(role.path(), "/svc/");
    assert_eq!(iam.list_attached_role_policies().role_name(&name).send().await?.attached_policies().len(), 1);
    assert!(!h.plan(&stack("v2", Some("dynamodb:GetItem"), Some("/svc/"))).await?.has_changes());

    // Destroy: policies detached and deleted first, then the role and the managed policy.
    h.destroy(&stack("v2", Some("dynamodb:GetItem"), Some("/svc/"))).await?;
    let gone = iam.get_role().role_name(&name).send().await.err().and_then(|e| e.into_service_error().meta().code().map(str::to_string));
    assert_eq!(gone.as_deref(), Some("NoSuchEntity"));
    assert!(iam.get_policy().policy_arn(&policy_arn).send().await.is_err());
    Ok(())
}

#[tokio::test]
async fn role_drift_is_planned_and_repaired() -> anyhow::Result<()> {
    let (h, _) = harness().await?;
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let name = generated_name(STACK, "role");
    let s = stack("v1", None, None);
    h.apply(&s).await?;
    let policy_arn = format!("arn:aws:iam::{}:policy/reader", h.account.id);

    // Behind the engine's back: another trust policy, an extra inline policy, the managed policy detached,
    // the description and a tag changed.
    let ec2_trust = PolicyDocument::assume_role_by_service("ec2.amazonaws.com");
    iam.update_assume_role_policy().role_name(&name).policy_document(ec2_trust.to_json()).send().await?;
    iam.put_role_policy().role_name(&name).policy_name("sneaky").policy_document(read_policy().to_json()).send().await?;
    iam.detach_role_policy().role_name(&name).policy_arn(&policy_arn).send().await?;
    iam.update_role().role_name(&name).description("changed").max_session_duration(3600).send().await?;
    iam.tag_role().role_name(&name).tags(aws_sdk_iam::types::Tag::builder().key("team").value("other").build()?).send().await?;

    let plan = h.plan(&s).await?;
    let (action, mut fields) = change(&plan, "role");
    fields.sort();
    assert_eq!(action, Action::Update, "{}", plan.render(false));
    assert_eq!(fields, ["assume_role_policy", "description", "inline_policies", "managed_policy_arns", "tags"], "{}", plan.render(false));

    h.apply(&s).await?;
    let role = iam.get_role().role_name(&name).send().await?.role.ok_or_else(|| anyhow::anyhow!("no role"))?;
    let trust = PolicyDocument::parse_aws(role.assume_role_policy_document().unwrap_or_default()).map_err(anyhow::Error::msg)?;
    assert!(trust.equivalent(&PolicyDocument::assume_role_by_service("lambda.amazonaws.com")));
    assert_eq!(role.description(), Some("v1"));
    assert!(role.tags().iter().any(|t| t.key() == "team" && t.value() == "orders"));
    assert_eq!(iam.list_role_policies().role_name(&name).send().await?.policy_names(), ["ferroform"]);
    assert_eq!(iam.list_attached_role_policies().role_name(&name).send().await?.attached_policies().len(), 1);
    assert!(!h.plan(&s).await?.has_changes());

    h.destroy(&s).await?;
    Ok(())
}

#[tokio::test]
async fn equivalent_documents_give_no_diff() -> anyhow::Result<()> {
    let (h, _) = harness().await?;
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let doc = PolicyDocument::new()
        .statement(Statement::allow().actions(["s3:PutObject", "s3:GetObject"]).resource("arn:aws:s3:::b/*"))
        .statement(Statement::deny().action("s3:DeleteObject").resource("*").condition("Bool", "aws:SecureTransport", "false"));
    let mk = |doc: PolicyDocument| {
        let mut s = Stack::new(STACK);
        s.add("role", Role::new("explicit", PolicyDocument::assume_role_by_service("lambda.amazonaws.com")).inline_policy("p", doc));
        s
    };
    h.apply(&mk(doc.clone())).await?;

    // The same document written another way in the code: single strings, other list order, no Version,
    // a boolean condition value.
    let rewritten = PolicyDocument::from_json(
        r#"{"Statement":[
            {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::b/*"},
            {"Resource":["*"],"Condition":{"Bool":{"aws:SecureTransport":false}},"Action":"s3:DeleteObject","Effect":"Deny"}]}"#,
    )
    .map_err(anyhow::Error::msg)?;
    let plan = h.plan(&mk(rewritten)).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    // ...and written another way behind our back.
    iam.put_role_policy()
        .role_name("explicit")
        .policy_name("p")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":["arn:aws:s3:::b/*"]},
                {"Effect":"Deny","Action":["s3:DeleteObject"],"Resource":"*","Condition":{"Bool":{"aws:SecureTransport":["false"]}}}]}"#,
        )
        .send()
        .await?;
    let plan = h.plan(&mk(doc.clone())).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    // Statements in another order are no difference either (IAM evaluates them as a set)...
    let swapped = PolicyDocument { statements: doc.statements.iter().rev().cloned().collect(), ..doc.clone() };
    let plan = h.plan(&mk(swapped)).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    // ...while a real difference (one action more) is one.
    let mut more = doc.clone();
    more.statements[0].actions.push("s3:ListBucket".into());
    let plan = h.plan(&mk(more)).await?;
    assert_eq!(change(&plan, "role"), (Action::Update, vec!["inline_policies".to_string()]), "{}", plan.render(false));

    // A trust policy naming an account by its id, planned again with the root ARN IAM turns it into, `Effect`
    // in lower case and one Statement object instead of a list: no diff.
    let account = &h.account.id;
    let by_id = format!(r#"{{"Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{{"AWS":"{account}"}}}}]}}"#);
    let by_arn = format!(
        r#"{{"Statement":{{"Effect":"allow","Action":["sts:AssumeRole"],"Principal":{{"AWS":["arn:aws:iam::{account}:root"]}}}}}}"#
    );
    let trusting = |text: &str| -> anyhow::Result<Stack> {
        let mut s = Stack::new(STACK);
        let trust = PolicyDocument::from_json(text).map_err(anyhow::Error::msg)?;
        s.add("role", Role::new("explicit", trust).inline_policy("p", doc.clone()));
        Ok(s)
    };
    h.apply(&trusting(&by_id)?).await?;
    let role = iam.get_role().role_name("explicit").send().await?.role.ok_or_else(|| anyhow::anyhow!("no role"))?;
    let live = PolicyDocument::parse_aws(role.assume_role_policy_document().unwrap_or_default()).map_err(anyhow::Error::msg)?;
    assert!(live.equivalent(&PolicyDocument::from_json(&by_arn).map_err(anyhow::Error::msg)?), "{live:?}");
    let plan = h.plan(&trusting(&by_arn)?).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    h.destroy(&mk(doc)).await?;
    Ok(())
}

#[tokio::test]
async fn managed_policy_versions_and_replacement() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let mk = |name: &str, bucket: usize| {
        let mut s = Stack::new(STACK);
        s.add("policy", Policy::new(name, PolicyDocument::new().allow(["s3:GetObject"], [format!("arn:aws:s3:::bucket-{bucket}/*")])));
        s
    };
    h.apply(&mk("p1", 0)).await?;
    let arn = h.id_of(&mk("p1", 0), "policy").await?;
    assert_eq!(arn, format!("arn:aws:iam::{}:policy/p1", h.account.id));
    let first_id = iam.get_policy().policy_arn(&arn).send().await?.policy.and_then(|p| p.policy_id).unwrap_or_default();
    calls.reset();
    assert!(!h.plan(&mk("p1", 0)).await?.has_changes());
    eprintln!("no-op plan of a managed policy: {} calls {:?}", calls.total(), calls.snapshot());

    // Seven document changes: past IAM's five versions, the oldest non-default ones are deleted.
    for bucket in 1..=7 {
        let plan = h.plan(&mk("p1", bucket)).await?;
        assert_eq!(change(&plan, "policy"), (Action::Update, vec!["document".to_string()]));
        h.apply(&mk("p1", bucket)).await?;
    }
    let versions = iam.list_policy_versions().policy_arn(&arn).send().await?;
    assert!(versions.versions().len() <= 5, "{:?}", versions.versions());
    let p = iam.get_policy().policy_arn(&arn).send().await?.policy.ok_or_else(|| anyhow::anyhow!("no policy"))?;
    assert_eq!(p.policy_id(), Some(first_id.as_str()));
    let v = iam.get_policy_version().policy_arn(&arn).version_id(p.default_version_id().unwrap_or_default()).send().await?;
    let live = PolicyDocument::parse_aws(v.policy_version().and_then(|v| v.document()).unwrap_or_default()).map_err(anyhow::Error::msg)?;
    assert_eq!(live.statements[0].resources, ["arn:aws:s3:::bucket-7/*"]);
    assert!(!h.plan(&mk("p1", 7)).await?.has_changes());

    // Drift: a new default version made behind our back is planned and reverted.
    let other = PolicyDocument::new().allow(["s3:*"], ["*"]);
    let versions = iam.list_policy_versions().policy_arn(&arn).send().await?;
    if let Some(v) = versions.versions().iter().find(|v| !v.is_default_version()).and_then(|v| v.version_id()) {
        iam.delete_policy_version().policy_arn(&arn).version_id(v).send().await?;
    }
    iam.create_policy_version().policy_arn(&arn).policy_document(other.to_json()).set_as_default(true).send().await?;
    let plan = h.plan(&mk("p1", 7)).await?;
    assert_eq!(change(&plan, "policy"), (Action::Update, vec!["document".to_string()]), "{}", plan.render(false));
    h.apply(&mk("p1", 7)).await?;
    assert!(!h.plan(&mk("p1", 7)).await?.has_changes());

    // Replace: a new name is a new policy; the old one is gone.
    h.apply(&mk("p2", 7)).await?;
    let new_arn = h.id_of(&mk("p2", 7), "policy").await?;
    assert_ne!(new_arn, arn);
    assert!(iam.get_policy().policy_arn(&arn).send().await.is_err());
    h.destroy(&mk("p2", 7)).await?;
    assert!(iam.get_policy().policy_arn(&new_arn).send().await.is_err());
    Ok(())
}

#[tokio::test]
async fn invalid_roles_are_refused_before_any_call() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let mut s = Stack::new(STACK);
    s.add("role", Role::new("no spaces allowed", PolicyDocument::new().allow(["s3:GetObject"], ["*"])));
    let err = h.plan(&s).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("name") && err.contains("assume_role_policy"), "{err}");
    assert_eq!(calls.total(), 0);
    Ok(())
}

#[tokio::test]
async fn many_roles_are_read_in_one_call_and_drift_still_shows() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let mut s = Stack::new(STACK);
    for i in 0..4 {
        let role =
            Role::for_service("lambda.amazonaws.com").allow(["dynamodb:GetItem"], [format!("arn:aws:dynamodb:us-east-1:1:table/t{i}")]);
        // The listing has no descriptions: the one role that declares one costs a GetRole more.
        s.add(&format!("role-{i}"), if i == 3 { role.description("the fourth") } else { role });
    }
    h.apply(&s).await?;
    calls.reset();
    assert!(!h.plan(&s).await?.has_changes());
    let reads = calls.snapshot();
    assert_eq!(reads.get("IAM:GetAccountAuthorizationDetails"), Some(&1), "{reads:?}");
    assert_eq!(reads.get("IAM:GetRole"), Some(&1), "{reads:?}");
    assert_eq!(reads.values().sum::<usize>(), 2, "four roles, two calls: {reads:?}");
    let fourth = h.id_of(&s, "role-3").await?;
    iam.update_role().role_name(&fourth).description("changed by hand").send().await?;
    let plan = h.plan(&s).await?;
    assert_eq!(change(&plan, "role-3"), (Action::Update, vec!["description".to_string()]), "{}", plan.render(false));
    h.apply(&s).await?;

    // Drift on one of them is seen through the batched read, and repaired.
    let name = h.id_of(&s, "role-2").await?;
    iam.put_role_policy().role_name(&name).policy_name("sneaky").policy_document(read_policy().to_json()).send().await?;
    iam.tag_role().role_name(&name).tags(aws_sdk_iam::types::Tag::builder().key("team").value("other").build()?).send().await?;
    let plan = h.plan(&s).await?;
    let (action, mut fields) = change(&plan, "role-2");
    fields.sort();
    assert_eq!((action, fields), (Action::Update, vec!["inline_policies".to_string(), "tags".to_string()]), "{}", plan.render(false));
    assert_eq!(plan.summary.change, 1, "{}", plan.render(false));
    h.apply(&s).await?;
    assert_eq!(iam.list_role_policies().role_name(&name).send().await?.policy_names(), ["ferroform"]);
    assert!(iam.list_role_tags().role_name(&name).send().await?.tags().iter().all(|t| t.key() != "team"));
    h.destroy(&s).await?;
    Ok(())
}

/// Optional settings removed from the code go back to IAM's defaults: two roles (so the plan reads them
/// through the batched listing), a managed policy and an OIDC provider.
#[tokio::test]
async fn settings_removed_from_the_code_go_back_to_iams_defaults() -> anyhow::Result<()> {
    use ferroform_aws::iam::OpenIdConnectProvider;
    let (h, calls) = harness().await?;
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let print = "6938fd4d98bab03faadb97b34396831e3780aea1";
    let mk = |set: bool| {
        let mut s = Stack::new(STACK);
        let mut policy = Policy::new("defaults", read_policy());
        let mut provider = OpenIdConnectProvider::new("https://issuer.example.com", ["app-1"]);
        if set {
            policy = policy.description("reads the bucket").tag("team", "orders");
            // moto 5.2.5 has no RemoveClientIDFromOpenIDConnectProvider, so the client ids stay as they are here
            // (removing one is planned like any set element; see github.rs for the provider's updates).
            provider = provider.thumbprints([print]).tag("team", "orders");
        }
        s.add("policy", policy);
        // Another policy to attach: the one above is replaced, which IAM refuses while it is attached.
        let attached = s.add("attached", Policy::new("attached", read_policy()));
        s.add("provider", provider);
        for i in 0..2 {
            let mut role = Role::for_service("lambda.amazonaws.com");
            if set {
                role = role
                    .description("set by the code")
                    .max_session_duration(7200)
                    .allow(["dynamodb:Scan"], ["*"])
                    .managed_policy(attached.arn())
                    .tag("team", "orders");
            }
            s.add(&format!("role-{i}"), role);
        }
        s
    };
    h.apply(&mk(true)).await?;
    calls.reset();
    let plan = h.plan(&mk(true)).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    let plan = h.plan(&mk(false)).await?;
    let text = plan.render(false);
    for role in ["role-0", "role-1"] {
        let fields = ["description", "inline_policies", "managed_policy_arns", "max_session_duration", "tags"];
        assert_eq!(change(&plan, role), (Action::Update, fields.map(String::from).to_vec()), "{text}");
    }
    assert!(text.contains("7200 -> 3600"), "{text}");
    // IAM can't change a policy's description: removing it makes a new policy.
    assert_eq!(change(&plan, "policy"), (Action::Replace, vec!["description".into(), "tags".into()]), "{text}");
    // Unset thumbprints are IAM's: not compared, so not planned.
    assert_eq!(change(&plan, "provider"), (Action::Update, vec!["tags".into()]), "{text}");
    h.apply(&mk(false)).await?;

    for role in ["role-0", "role-1"] {
        let name = generated_name(STACK, role);
        let got = iam.get_role().role_name(&name).send().await?.role.ok_or_else(|| anyhow::anyhow!("no role"))?;
        assert_eq!(got.description().unwrap_or_default(), "");
        assert_eq!(got.max_session_duration(), Some(3600));
        assert!(iam.list_role_policies().role_name(&name).send().await?.policy_names().is_empty());
        assert!(iam.list_attached_role_policies().role_name(&name).send().await?.attached_policies().is_empty());
        assert!(got.tags().iter().all(|t| t.key() != "team"), "{:?}", got.tags());
    }
    let policy_arn = format!("arn:aws:iam::{}:policy/defaults", h.account.id);
    let got = iam.get_policy().policy_arn(&policy_arn).send().await?.policy.ok_or_else(|| anyhow::anyhow!("no policy"))?;
    assert_eq!(got.description().unwrap_or_default(), "");
    assert!(got.tags().iter().all(|t| t.key() != "team"));
    let provider_arn = format!("arn:aws:iam::{}:oidc-provider/issuer.example.com", h.account.id);
    let got = iam.get_open_id_connect_provider().open_id_connect_provider_arn(&provider_arn).send().await?;
    assert_eq!(got.client_id_list(), ["app-1"]);
    assert_eq!(got.thumbprint_list(), [print], "thumbprints left as they were");
    assert!(got.tags().iter().all(|t| t.key() != "team"));

    let plan = h.plan(&mk(false)).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    h.destroy(&mk(false)).await?;
    Ok(())
}

/// Least privilege: a plan role denied `iam:GetAccountAuthorizationDetails` (it lists the whole account)
/// still plans, reading the stack's roles one by one, and still sees drift.
#[tokio::test]
async fn roles_are_read_one_by_one_when_the_account_listing_is_denied() -> anyhow::Result<()> {
    use ferroform_testkit::proxy::{FaultProxy, Faults, DENIED};
    let (h, _calls) = harness().await?;
    let roles = |desc: &str| {
        let mut s = Stack::new("leastpriv");
        for i in 0..3 {
            s.add(&format!("r{i}"), Role::for_service("lambda.amazonaws.com").description(desc).inline_policy("read", read_policy()));
        }
        s
    };
    h.apply(&roles("v1")).await?;
    let proxy =
        FaultProxy::start(&h.account.endpoint, Faults { deny: vec!["GetAccountAuthorizationDetails".into()], ..Faults::none() }).await?;
    h.contexts.insert(ferroform_aws::Aws::from_config(h.account.config_via(proxy.endpoint())));
    let plan = h.plan(&roles("v1")).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    assert_eq!(proxy.injected().get(DENIED), Some(&1), "the listing was tried once and denied: {:?}", proxy.calls());
    assert!(proxy.calls().iter().filter(|c| c.ends_with("GetRole")).count() >= 3, "{:?}", proxy.calls());
    // Drift made behind the engine's back is still seen.
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let name = h.engine().state("leastpriv").await?.resources["r1"].id.clone().unwrap_or_default();
    iam.update_role().role_name(&name).description("changed by hand").send().await?;
    let plan = h.plan(&roles("v1")).await?;
    assert_eq!(change(&plan, "r1"), (Action::Update, vec!["description".to_string()]), "{}", plan.render(false));
    Ok(())
}

/// A permissions boundary: set at create (one role through its reference, one through the stack's
/// `permissions_boundary` variable), changed in place, repaired after drift, and removed when the code
/// drops it; each step read back with GetRole. Two roles, so plans read them through the account listing,
/// and one alone (`single`), read with GetRole.
#[tokio::test]
async fn permissions_boundaries_are_set_changed_repaired_and_removed() -> anyhow::Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum Boundary {
        Narrow,
        Wide,
        None,
    }
    let (h, _) = harness().await?;
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let arn = |name: &str| format!("arn:aws:iam::{}:policy/{name}", h.account.id);
    let (narrow_arn, wide_arn) = (arn("narrow"), arn("wide"));
    let mk = |b: Boundary, roles: &[&str]| {
        let mut s = Stack::new(STACK);
        let narrow = s.add("narrow", Policy::new("narrow", read_policy()));
        s.add("wide", Policy::new("wide", PolicyDocument::new().allow(["s3:*"], ["*"])));
        if b == Boundary::Wide {
            s.set_var(ferroform_aws::iam::PERMISSIONS_BOUNDARY_VAR, &wide_arn);
        }
        for r in roles {
            let role = Role::for_service("lambda.amazonaws.com").allow(["s3:GetObject"], ["arn:aws:s3:::bucket/*"]);
            let role = match b {
                Boundary::Narrow => role.permissions_boundary(narrow.arn()),
                Boundary::Wide | Boundary::None => role.with_stack_boundary(&s),
            };
            s.add(r, role);
        }
        s
    };
    let live = |role: &'static str| {
        let iam = iam.clone();
        async move {
            let got = iam.get_role().role_name(generated_name(STACK, role)).send().await?;
            let role = got.role.ok_or_else(|| anyhow::anyhow!("no role"))?;
            anyhow::Ok(role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(str::to_string))
        }
    };
    let both = ["role-0", "role-1"];

    h.apply(&mk(Boundary::Narrow, &both)).await?;
    for r in both {
        assert_eq!(live(r).await?.as_deref(), Some(narrow_arn.as_str()), "{r}");
    }
    let plan = h.plan(&mk(Boundary::Narrow, &both)).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    // Another boundary, from the stack's variable: updated in place.
    let plan = h.plan(&mk(Boundary::Wide, &both)).await?;
    for r in both {
        assert_eq!(change(&plan, r), (Action::Update, vec!["permissions_boundary".into()]), "{}", plan.render(false));
    }
    h.apply(&mk(Boundary::Wide, &both)).await?;
    for r in both {
        assert_eq!(live(r).await?.as_deref(), Some(wide_arn.as_str()), "{r}");
    }
    assert!(!h.plan(&mk(Boundary::Wide, &both)).await?.has_changes());

    // Drift: the boundary taken off one role behind the engine's back is planned and put back.
    iam.delete_role_permissions_boundary().role_name(generated_name(STACK, "role-1")).send().await?;
    let plan = h.plan(&mk(Boundary::Wide, &both)).await?;
    assert_eq!(change(&plan, "role-1"), (Action::Update, vec!["permissions_boundary".into()]), "{}", plan.render(false));
    assert_eq!(change(&plan, "role-0").0, Action::NoOp, "{}", plan.render(false));
    h.apply(&mk(Boundary::Wide, &both)).await?;
    assert_eq!(live("role-1").await?.as_deref(), Some(wide_arn.as_str()));

    // Removed from the code (the stack no longer asks): IAM's default, no boundary, comes back.
    let plan = h.plan(&mk(Boundary::None, &both)).await?;
    assert!(plan.render(false).contains(&format!("{wide_arn}\" -> null")), "{}", plan.render(false));
    h.apply(&mk(Boundary::None, &both)).await?;
    for r in both {
        assert_eq!(live(r).await?, None, "{r}");
    }
    assert!(!h.plan(&mk(Boundary::None, &both)).await?.has_changes());
    h.destroy(&mk(Boundary::None, &both)).await?;

    // One role alone is read with GetRole: the same boundary, no diff, and drift seen.
    h.apply(&mk(Boundary::Narrow, &["single"])).await?;
    assert_eq!(live("single").await?.as_deref(), Some(narrow_arn.as_str()));
    assert!(!h.plan(&mk(Boundary::Narrow, &["single"])).await?.has_changes());
    iam.delete_role_permissions_boundary().role_name(generated_name(STACK, "single")).send().await?;
    let plan = h.plan(&mk(Boundary::Narrow, &["single"])).await?;
    assert_eq!(change(&plan, "single"), (Action::Update, vec!["permissions_boundary".into()]), "{}", plan.render(false));
    h.destroy(&mk(Boundary::Narrow, &["single"])).await?;
    Ok(())
}
