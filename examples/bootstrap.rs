//! Creates what remote state and a deploy pipeline need, once per account, with local state:
//!
//! ```sh
//! cargo run --example bootstrap -- apply --var bucket=my-team-ferroform-state
//! # and the GitHub OIDC provider with deploy/plan roles for a repository (examples/github-actions/README.md):
//! cargo run --example bootstrap -- apply --var bucket=my-team-ferroform-state --var github_repo=my-org/orders \
//!     --var github_environment=production
//! ```
//!
//! The state bucket (`state-bucket`): versioned, encrypted, public access blocked, replaced versions expired
//! after 90 days, protected from destroy. Stacks then use `--state s3://my-team-ferroform-state/STACK.json`.
//! This stack's own state stays in `.ferroform/bootstrap.state.json`: keep it (or import the bucket again later
//! with `import state-bucket NAME`).

use ferroform::aws::components::{github_deploy_role, state_bucket, GithubDeploy};
use ferroform::prelude::*;
use std::process::ExitCode;

fn main() -> ExitCode {
    ferroform::cli::run("bootstrap", |s| {
        let name = s.var("bucket").context("the state bucket's name is needed: --var bucket=NAME")?;
        let bucket = state_bucket(s, name);
        s.allow(
            "state-bucket",
            "FF-S3-002",
            "SSE-S3 encrypts state at rest and only the deploy and plan roles may read it; a KMS key would add a monthly cost and kms:Decrypt to every reader",
        );
        s.output("state_bucket", bucket.name());
        if let Some(repo) = s.var("github_repo") {
            let mut gh = GithubDeploy::new(repo, bucket.name());
            if let Some(env) = s.var("github_environment") {
                gh = gh.environment(env);
            }
            if let Some(arn) = s.var("github_provider_arn") {
                gh = gh.existing_provider(ferroform_core::Arn::literal(arn));
            }
            // What deploys may do besides state: a managed policy of the caller's choosing.
            if let Some(arn) = s.var("deploy_policy_arn") {
                gh = gh.deploy_managed_policy(ferroform_core::Arn::literal(arn));
            }
            // What plans may read: AWS's ReadOnlyAccess unless set (`--var plan_policy_arn=` for none).
            let plan_policy = s.var_or("plan_policy_arn", "arn:aws:iam::aws:policy/ReadOnlyAccess");
            if !plan_policy.is_empty() {
                gh = gh.plan_role_managed_policy(ferroform_core::Arn::literal(plan_policy));
            }
            let roles = github_deploy_role(s, gh)?;
            s.output("deploy_role_arn", roles.deploy_role.arn());
            if let Some(plan) = roles.plan_role {
                s.output("plan_role_arn", plan.arn());
            }
        }
        Ok(())
    })
}
