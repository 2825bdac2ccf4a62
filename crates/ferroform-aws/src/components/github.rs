//! `github_deploy_role`: what a GitHub Actions workflow needs to deploy a stack without long-lived keys
//! (see examples/github-actions/README.md).
//!
//! ```ignore
//! let state = components::state_bucket(&mut stack, "my-team-ferroform-state");
//! let gh = components::github_deploy_role(&mut stack, GithubDeploy::new("my-org/orders", state.name())
//!     .allow(["lambda:*", "apigateway:*"], ["*"])
//!     .plan_role_managed_policy(iam::aws_managed_policy("ReadOnlyAccess")))?;
//! stack.output("deploy_role_arn", gh.deploy_role.arn());
//! ```
//!
//! What it adds, under the scope `github`:
//!
//! - `oidc-provider`: GitHub's token issuer (`token.actions.githubusercontent.com`, audience
//!   `sts.amazonaws.com`), unless [`GithubDeploy::existing_provider`] names the account's own: an account
//!   holds one provider per issuer;
//! - `deploy-role`: assumable with `sts:AssumeRoleWithWebIdentity` only by a token whose `aud` is
//!   `sts.amazonaws.com` and whose `sub` is `repo:OWNER/REPO:ref:refs/heads/BRANCH` (a push to the branch), or
//!   `repo:OWNER/REPO:environment:NAME` when the job runs in a GitHub environment ([`GithubDeploy::environment`]);
//!   it may read and write the state (and its lock) and do what [`GithubDeploy::allow`] granted;
//! - `plan-role`, unless [`GithubDeploy::without_plan_role`]: assumable by pull request runs
//!   (`repo:OWNER/REPO:pull_request`), may only read the state (plan takes no lock) and what
//!   [`GithubDeploy::plan_allow`] granted. A pull request from anyone can run code in the workflow, so it
//!   never gets the deploy role.

use crate::components::state::state_access;
use crate::iam::{OpenIdConnectProvider, Policy, PolicyDocument, Role, Statement};
use crate::s3::Bucket;
use crate::tags::Tags;
use ferroform_core::{Arn, ArnText, Diagnostic, Error, Handle, Name, Stack};

/// The issuer's host: the prefix of the condition keys (`token.actions.githubusercontent.com:sub`).
pub const GITHUB_TOKEN_HOST: &str = "token.actions.githubusercontent.com";
/// The audience `aws-actions/configure-aws-credentials` asks for.
pub const GITHUB_AUDIENCE: &str = "sts.amazonaws.com";

#[derive(Debug, Clone, PartialEq)]
pub struct GithubDeploy {
    /// `OWNER/REPO`.
    pub repo: String,
    /// The branch whose pushes deploy (`main`).
    pub branch: String,
    /// When the deploying job declares `environment: NAME`, GitHub puts the environment in `sub` instead
    /// of the branch.
    pub environment: Option<String>,
    /// The account's GitHub provider, when it has one already; otherwise the component creates it.
    pub provider_arn: Option<Arn<OpenIdConnectProvider>>,
    /// The state bucket's name.
    pub state_bucket: Name<Bucket>,
    /// Which state objects the roles may touch (`*`, `pedidos.json*`).
    pub state_keys: String,
    /// What a deploy does besides state.
    pub deploy_statements: Vec<Statement>,
    pub deploy_managed_policy_arns: Vec<Arn<Policy>>,
    pub plan_role: bool,
    /// What a plan reads besides state.
    pub plan_statements: Vec<Statement>,
    pub plan_managed_policy_arns: Vec<Arn<Policy>>,
    /// Added to every resource.
    pub tags: Tags,
}

/// What [`github_deploy_role`] made.
pub struct GithubDeployHandles {
    /// `None` when [`GithubDeploy::existing_provider`] was given.
    pub provider: Option<Handle<OpenIdConnectProvider>>,
    pub deploy_role: Handle<Role>,
    pub plan_role: Option<Handle<Role>>,
}

impl GithubDeploy {
    /// Deploys from pushes to `main` of `repo` (`OWNER/REPO`), with its state in `state_bucket`.
    pub fn new(repo: impl Into<String>, state_bucket: Name<Bucket>) -> Self {
        Self {
            repo: repo.into(),
            branch: "main".into(),
            environment: None,
            provider_arn: None,
            state_bucket,
            state_keys: "*".into(),
            deploy_statements: Vec::new(),
            deploy_managed_policy_arns: Vec::new(),
            plan_role: true,
            plan_statements: Vec::new(),
            plan_managed_policy_arns: Vec::new(),
            tags: Tags::new(),
        }
    }
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = branch.into();
        self
    }
    /// The deploying job runs in this GitHub environment (`environment: production`): the trust names it.
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment = Some(name.into());
        self
    }
    pub fn existing_provider(mut self, arn: Arn<OpenIdConnectProvider>) -> Self {
        self.provider_arn = Some(arn);
        self
    }
    pub fn state_keys(mut self, pattern: impl Into<String>) -> Self {
        self.state_keys = pattern.into();
        self
    }
    /// Grants the deploy role `actions` on `resources`.
    pub fn allow<A: Into<String>, R: ArnText>(
        mut self,
        actions: impl IntoIterator<Item = A>,
        resources: impl IntoIterator<Item = R>,
    ) -> Self {
        self.deploy_statements.push(Statement::allow().actions(actions).resources(resources));
        self
    }
    pub fn deploy_statement(mut self, s: Statement) -> Self {
        self.deploy_statements.push(s);
        self
    }
    pub fn deploy_managed_policy(mut self, arn: Arn<Policy>) -> Self {
        self.deploy_managed_policy_arns.push(arn);
        self
    }
    /// Grants the plan role `actions` on `resources`.
    pub fn plan_allow<A: Into<String>, R: ArnText>(
        mut self,
        actions: impl IntoIterator<Item = A>,
        resources: impl IntoIterator<Item = R>,
    ) -> Self {
        self.plan_statements.push(Statement::allow().actions(actions).resources(resources));
        self
    }
    /// `iam::aws_managed_policy("ReadOnlyAccess")`, say.
    pub fn plan_role_managed_policy(mut self, arn: Arn<Policy>) -> Self {
        self.plan_managed_policy_arns.push(arn);
        self
    }
    pub fn without_plan_role(mut self) -> Self {
        self.plan_role = false;
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }

    /// The `sub` the deploy role trusts.
    pub fn deploy_subject(&self) -> String {
        match &self.environment {
            Some(env) => format!("repo:{}:environment:{env}", self.repo),
            None => format!("repo:{}:ref:refs/heads/{}", self.repo, self.branch),
        }
    }

    /// The `sub` the plan role trusts.
    pub fn plan_subject(&self) -> String {
        format!("repo:{}:pull_request", self.repo)
    }

    /// The repository, branch and environment go into the trust policy literally: a wildcard or a stray
    /// character there would let other repositories or branches in, so they are refused here.
    fn check(&self, address: &str) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let diag = |field: &str, message: String| Diagnostic { address: address.to_string(), field: Some(field.into()), message };
        let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        match self.repo.split_once('/') {
            Some((owner, repo)) if name_ok(owner) && name_ok(repo) => {}
            _ => out.push(diag("repo", format!("`{}` is not OWNER/REPO (letters, digits, `-_.`, no wildcards)", self.repo))),
        }
        let ref_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
        if !ref_ok(&self.branch) {
            out.push(diag("branch", format!("`{}` is not a branch name (no wildcards)", self.branch)));
        }
        if let Some(env) = &self.environment {
            if env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || " -_.".contains(c)) {
                out.push(diag("environment", format!("`{env}` is not an environment name (no wildcards)")));
            }
        }
        if self.state_bucket.as_str().is_empty() {
            out.push(diag("state_bucket", "names no bucket".into()));
        }
        out
    }
}

/// The trust policy: GitHub's tokens for exactly `subject`, with our audience.
pub fn github_trust(provider_arn: Arn<OpenIdConnectProvider>, subject: impl Into<String>) -> PolicyDocument {
    PolicyDocument::new().statement(
        Statement::allow()
            .action("sts:AssumeRoleWithWebIdentity")
            .principal("Federated", provider_arn)
            .condition("StringEquals", format!("{GITHUB_TOKEN_HOST}:aud"), GITHUB_AUDIENCE)
            .condition("StringEquals", format!("{GITHUB_TOKEN_HOST}:sub"), subject),
    )
}

/// Adds the provider (unless it exists), the deploy role and the plan role under the scope `github`.
/// Refuses a malformed repository, branch or environment before anything is added.
pub fn github_deploy_role(s: &mut Stack, cfg: GithubDeploy) -> Result<GithubDeployHandles, Error> {
    let problems = cfg.check("github/deploy-role");
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    s.scope("github", |s| {
        let tagged = |mut tags: Tags| {
            crate::tags::merge_defaults(&mut tags, &cfg.tags);
            tags
        };
        let (provider, provider_arn) = match &cfg.provider_arn {
            Some(arn) => (None, arn.clone()),
            None => {
                let mut p = OpenIdConnectProvider::github_actions();
                p.tags = tagged(p.tags);
                let h = s.add("oidc-provider", p);
                let arn = h.arn();
                (Some(h), arn)
            }
        };

        let role = |subject: String, statements: Vec<Statement>, managed: &[Arn<Policy>], what: &str| {
            let mut doc = PolicyDocument::new();
            for st in statements {
                doc = doc.statement(st);
            }
            let mut r = Role::with_trust(github_trust(provider_arn.clone(), subject))
                .description(format!("GitHub Actions {what} for {}", cfg.repo))
                .inline_policy("state-and-deploy", doc);
            for arn in managed {
                r = r.managed_policy(arn.clone());
            }
            r.tags = tagged(r.tags);
            r
        };

        let mut deploy = state_access(&cfg.state_bucket, &cfg.state_keys, true);
        deploy.extend(cfg.deploy_statements.iter().cloned());
        let deploy_role =
            s.add("deploy-role", role(cfg.deploy_subject(), deploy, &cfg.deploy_managed_policy_arns, "deploys").with_stack_boundary(s));

        let plan_role = cfg.plan_role.then(|| {
            let mut plan = state_access(&cfg.state_bucket, &cfg.state_keys, false);
            plan.extend(cfg.plan_statements.iter().cloned());
            s.add("plan-role", role(cfg.plan_subject(), plan, &cfg.plan_managed_policy_arns, "pull request plans").with_stack_boundary(s))
        });
        Ok(GithubDeployHandles { provider, deploy_role, plan_role })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_one_branch_or_environment_and_pull_requests() {
        let g = GithubDeploy::new("acme/orders", ferroform_core::Name::literal("state"));
        assert_eq!(g.deploy_subject(), "repo:acme/orders:ref:refs/heads/main");
        assert_eq!(g.plan_subject(), "repo:acme/orders:pull_request");
        assert_eq!(g.clone().environment("production").deploy_subject(), "repo:acme/orders:environment:production");
    }

    #[test]
    fn wildcards_and_malformed_repositories_are_refused_before_anything_is_added() {
        for (bad, field) in [
            (GithubDeploy::new("acme", ferroform_core::Name::literal("state")), "repo"),
            (GithubDeploy::new("acme/*", ferroform_core::Name::literal("state")), "repo"),
            (GithubDeploy::new("acme/orders:ref:x", ferroform_core::Name::literal("state")), "repo"),
            (GithubDeploy::new("acme/orders", ferroform_core::Name::literal("state")).branch("*"), "branch"),
            (GithubDeploy::new("acme/orders", ferroform_core::Name::literal("state")).environment("prod*"), "environment"),
            (GithubDeploy::new("acme/orders", ferroform_core::Name::literal("")), "state_bucket"),
        ] {
            let mut s = Stack::new("gh");
            match github_deploy_role(&mut s, bad) {
                Err(Error::Validation(d)) => {
                    assert_eq!(d[0].field.as_deref(), Some(field));
                    assert_eq!(d[0].address, "github/deploy-role");
                }
                other => panic!("{field}: {:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn the_trust_policy_holds_audience_and_subject() {
        let doc = github_trust(ferroform_core::Arn::literal("arn:aws:iam::1:oidc-provider/x"), "repo:a/b:ref:refs/heads/main");
        let v = serde_json::to_value(&doc).unwrap_or_default();
        let cond = &v["Statement"][0]["Condition"]["StringEquals"];
        assert_eq!(cond["token.actions.githubusercontent.com:aud"][0], "sts.amazonaws.com");
        assert_eq!(cond["token.actions.githubusercontent.com:sub"][0], "repo:a/b:ref:refs/heads/main");
        let mut e = Vec::new();
        doc.validate_trust("t", &mut e);
        assert!(e.is_empty(), "{e:?}");
    }
}
