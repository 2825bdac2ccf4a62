//! An AWS CodePipeline that deploys a ferroform stack from GitHub: test, plan, manual approval, apply of the
//! approved plan.
//!
//! ```sh
//! cargo run --example pipeline -- apply --var github_repo=my-org/my-stack-repo \
//!     --var connection_arn=arn:aws:codeconnections:us-east-1:123456789012:connection/ID
//! ```
//!
//! Variables (all but `github_repo` and `connection_arn` have defaults):
//!
//! - `github_repo`: `OWNER/REPO`, the repository holding the stack;
//! - `connection_arn`: a CodeStar/CodeConnections connection to GitHub, made once in the console (Developer
//!   Tools > Settings > Connections) and authorised there: a connection cannot be authorised from code;
//! - `branch` (`main`); `stack` (`pedidos`: the example the builds run); `name` (`STACK-deploy`);
//! - `state_bucket` (`my-team-ferroform-state`, made by `examples/bootstrap.rs`) and `state_key` (`STACK.json`);
//! - `apply_policy_arn`: a managed policy with what the stack manages, for the apply build (unset: the apply
//!   build can only touch state, and an apply of real changes is denied);
//! - `plan_policy_arn` (`arn:aws:iam::aws:policy/ReadOnlyAccess`; empty for none): what the plan build reads;
//! - `kms_key_arn`: a customer KMS key for the artifacts (unset: SSE-S3);
//! - `artifact_bucket` (`NAME-artifacts`), `image` (CodeBuild's Amazon Linux 2023 standard image),
//!   `compute_type` (`BUILD_GENERAL1_MEDIUM`).

use ferroform::aws::components::{deploy_pipeline, DeployPipeline};
use ferroform::prelude::*;
use std::process::ExitCode;

fn main() -> ExitCode {
    ferroform::cli::run("pipeline", |s| {
        let repo = s.var("github_repo").context("the repository is needed: --var github_repo=OWNER/REPO")?;
        let connection = s.var("connection_arn").context(
            "a CodeStar/CodeConnections connection to GitHub is needed (made and authorised in the console): --var connection_arn=ARN",
        )?;
        let stack = s.var_or("stack", "pedidos");
        let name = s.var_or("name", &format!("{stack}-deploy"));
        let state_bucket = s.var_or("state_bucket", "my-team-ferroform-state");
        let mut cfg = DeployPipeline::new(name, repo, connection, stack, Name::literal(state_bucket))
            .branch(s.var_or("branch", "main"))
            .image(s.var_or("image", ferroform::aws::components::pipeline::DEFAULT_IMAGE))
            .compute_type(s.var_or("compute_type", "BUILD_GENERAL1_MEDIUM"));
        if let Some(key) = s.var("state_key") {
            cfg = cfg.state_key(key);
        }
        if let Some(bucket) = s.var("artifact_bucket") {
            cfg = cfg.artifact_bucket(bucket);
        }
        if let Some(arn) = s.var("apply_policy_arn") {
            cfg = cfg.apply_managed_policy(Arn::literal(arn));
        }
        let plan_policy = s.var_or("plan_policy_arn", "arn:aws:iam::aws:policy/ReadOnlyAccess");
        if !plan_policy.is_empty() {
            cfg = cfg.plan_managed_policy(Arn::literal(plan_policy));
        }
        let kms = s.var("kms_key_arn");
        if let Some(key) = &kms {
            cfg = cfg.kms_key(key.clone());
        }
        let p = deploy_pipeline(s, cfg)?;
        if kms.is_none() {
            s.allow(
                "pipeline/artifacts",
                "FF-S3-002",
                "SSE-S3 encrypts the artifacts at rest and only the pipeline's roles may read them; --var kms_key_arn= for a customer key",
            );
        }
        s.output("pipeline_name", p.pipeline.name());
        s.output("pipeline_arn", p.pipeline.arn());
        s.output("artifact_bucket", p.artifact_bucket.name());
        Ok(())
    })
}
