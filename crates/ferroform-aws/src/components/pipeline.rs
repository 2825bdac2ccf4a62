//! `deploy_pipeline`: an AWS CodePipeline that tests, plans and applies a ferroform stack from GitHub, with a
//! manual approval between the plan and the apply (see examples/pipeline.rs).
//!
//! ```ignore
//! let p = components::deploy_pipeline(&mut stack, DeployPipeline::new(
//!     "orders-deploy", "my-org/orders", Arn::literal(connection_arn), "pedidos",
//!     Name::literal("my-team-ferroform-state"),
//! ).apply_managed_policy(Arn::literal("arn:aws:iam::123456789012:policy/orders-deploy")))?;
//! stack.output("pipeline", p.pipeline.name());
//! ```
//!
//! Stages: `Source` (the branch, through a CodeStar/CodeConnections connection) -> `Test` (CodeBuild:
//! `cargo test`) -> `Plan` (CodeBuild: `plan --out plan.json`, the plan file as the `plan` artifact) ->
//! `Approve` (manual) -> `Apply` (CodeBuild: `apply` of exactly that plan file, so what was approved is what
//! runs). State is `s3://STATE_BUCKET/STACK.json` with its lock.
//!
//! What it adds, under the scope `pipeline`:
//!
//! - `artifacts`: the artifact bucket: versioned, encrypted (SSE-S3, or SSE-KMS with [`DeployPipeline::kms_key`]),
//!   all public access blocked, old versions expired; not protected and emptied on destroy (artifacts are
//!   made again by the next run);
//! - `pipeline-role`: CodePipeline's role: the artifact objects, starting and reading builds of its three
//!   projects, and using the one connection;
//! - per project (`test`, `plan`, `apply`): a log group, a role and the project. Every role may write its own
//!   log group and read (plan: and write) the artifact objects; `test` nothing else; `plan` reads the state
//!   (a plan takes no lock) and what [`DeployPipeline::plan_managed_policy`] allows (a plan reads every
//!   resource); `apply` reads and writes the state and its lock, and does what
//!   [`DeployPipeline::apply_managed_policy`] allows (what the stack manages).

use crate::codebuild::{Artifacts, Buildspec, Environment, Project, Source};
use crate::codepipeline::{Action, Pipeline, Stage};
use crate::components::state::state_access;
use crate::iam::{Policy, PolicyDocument, Role, Statement};
use crate::logs::LogGroup;
use crate::s3::Bucket;
use crate::tags::Tags;
use ferroform_core::{Arn, ArnText, Diagnostic, Error, Handle, Name, Options, Stack};

/// CodeBuild's Amazon Linux 2023 image.
pub const DEFAULT_IMAGE: &str = "aws/codebuild/amazonlinux-x86_64-standard:5.0";
/// The saved plan's file name, in the `plan` artifact.
pub const PLAN_FILE: &str = "plan.json";
/// Days build logs are kept.
pub const LOG_RETENTION_DAYS: i32 = 30;

#[derive(Debug, Clone, PartialEq)]
pub struct DeployPipeline {
    /// The pipeline's name; projects, roles and the artifact bucket are named after it.
    pub name: String,
    /// `OWNER/REPO`.
    pub repo: String,
    pub branch: String,
    /// The CodeStar/CodeConnections connection to GitHub (made and authorised in the console).
    pub connection_arn: String,
    /// The example program that runs the stack (`cargo run --example STACK`).
    pub stack: String,
    pub state_bucket: Name<Bucket>,
    /// Unset: `STACK.json`.
    pub state_key: Option<String>,
    /// Unset: `NAME-artifacts`.
    pub artifact_bucket: Option<String>,
    pub kms_key: Option<String>,
    pub image: String,
    pub compute_type: String,
    pub plan_managed_policy_arns: Vec<Arn<Policy>>,
    pub apply_managed_policy_arns: Vec<Arn<Policy>>,
    pub tags: Tags,
}

/// What [`deploy_pipeline`] made.
pub struct DeployPipelineHandles {
    pub pipeline: Handle<Pipeline>,
    pub pipeline_role: Handle<Role>,
    pub artifact_bucket: Handle<Bucket>,
    pub test: Handle<Project>,
    pub plan: Handle<Project>,
    pub apply: Handle<Project>,
    pub test_role: Handle<Role>,
    pub plan_role: Handle<Role>,
    pub apply_role: Handle<Role>,
}

impl DeployPipeline {
    pub fn new(
        name: impl Into<String>,
        repo: impl Into<String>,
        connection_arn: impl ArnText,
        stack: impl Into<String>,
        state_bucket: Name<Bucket>,
    ) -> Self {
        Self {
            name: name.into(),
            repo: repo.into(),
            branch: "main".into(),
            connection_arn: connection_arn.arn_text(),
            stack: stack.into(),
            state_bucket,
            state_key: None,
            artifact_bucket: None,
            kms_key: None,
            image: DEFAULT_IMAGE.into(),
            compute_type: "BUILD_GENERAL1_MEDIUM".into(),
            plan_managed_policy_arns: Vec::new(),
            apply_managed_policy_arns: Vec::new(),
            tags: Tags::new(),
        }
    }
    pub fn branch(mut self, b: impl Into<String>) -> Self {
        self.branch = b.into();
        self
    }
    pub fn state_key(mut self, k: impl Into<String>) -> Self {
        self.state_key = Some(k.into());
        self
    }
    pub fn artifact_bucket(mut self, b: impl Into<String>) -> Self {
        self.artifact_bucket = Some(b.into());
        self
    }
    /// SSE-KMS for the artifact bucket and the pipeline's artifacts with this customer key (an ARN).
    pub fn kms_key(mut self, arn: impl Into<String>) -> Self {
        self.kms_key = Some(arn.into());
        self
    }
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = image.into();
        self
    }
    pub fn compute_type(mut self, t: impl Into<String>) -> Self {
        self.compute_type = t.into();
        self
    }
    /// What the plan build may read besides state (AWS's `ReadOnlyAccess`, say).
    pub fn plan_managed_policy(mut self, arn: Arn<Policy>) -> Self {
        self.plan_managed_policy_arns.push(arn);
        self
    }
    /// What the apply build may do besides state: what the stack manages.
    pub fn apply_managed_policy(mut self, arn: Arn<Policy>) -> Self {
        self.apply_managed_policy_arns.push(arn);
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }

    pub fn state_object(&self) -> String {
        self.state_key.clone().unwrap_or_else(|| format!("{}.json", self.stack))
    }
    fn artifact_bucket_name(&self) -> String {
        self.artifact_bucket.clone().unwrap_or_else(|| format!("{}-artifacts", self.name))
    }
    /// The stack program's command line, against the pipeline's state.
    fn ferroform(&self) -> String {
        format!("cargo run --quiet --example {} -- --state s3://{}/{} --no-color", self.stack, self.state_bucket, self.state_object())
    }

    /// The test build: the workspace's tests.
    pub fn test_buildspec(&self) -> Buildspec {
        rust(Buildspec::new()).build(["cargo test --workspace"])
    }
    /// The plan build: a saved plan, handed on as the `plan` artifact.
    pub fn plan_buildspec(&self) -> Buildspec {
        rust(Buildspec::new()).build([format!("{} plan --out {PLAN_FILE}", self.ferroform())]).artifact_files([PLAN_FILE])
    }
    /// The apply build: exactly the approved plan (the `plan` artifact, a secondary source of the build).
    pub fn apply_buildspec(&self) -> Buildspec {
        rust(Buildspec::new()).build([format!("{} --lock-timeout 300 apply \"$CODEBUILD_SRC_DIR_plan/{PLAN_FILE}\"", self.ferroform())])
    }

    /// The repository and branch go into the source action, the stack's name into shell commands: refused
    /// here when they could be anything else.
    fn check(&self, address: &str) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let diag = |field: &str, message: String| Diagnostic { address: address.to_string(), field: Some(field.into()), message };
        let word =
            |s: &str, extra: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c) || extra.contains(c));
        match self.repo.split_once('/') {
            Some((o, r)) if word(o, "") && word(r, "") => {}
            _ => out.push(diag("repo", format!("`{}` is not OWNER/REPO", self.repo))),
        }
        if !word(&self.branch, "/") {
            out.push(diag("branch", format!("`{}` is not a branch name", self.branch)));
        }
        if !word(&self.stack, "") {
            out.push(diag("stack", format!("`{}` is not an example name", self.stack)));
        }
        if !word(&self.state_object(), "/") {
            out.push(diag("state_key", format!("`{}`: letters, digits, `-_./`", self.state_object())));
        }
        if self.connection_arn.is_empty() {
            out.push(diag("connection_arn", "names no connection (--var connection_arn=ARN)".into()));
        }
        out
    }
}

/// Rust through rustup (the image has no Rust), on the PATH of every later command.
fn rust(spec: Buildspec) -> Buildspec {
    spec.env("CARGO_TERM_COLOR", "never")
        .install(["curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal", ". \"$HOME/.cargo/env\""])
}

/// Adds the artifact bucket, the three projects with their logs and roles, and the pipeline, under the scope
/// `pipeline`. Refuses a malformed repository, branch or stack name before anything is added.
pub fn deploy_pipeline(s: &mut Stack, cfg: DeployPipeline) -> Result<DeployPipelineHandles, Error> {
    let problems = cfg.check("pipeline/pipeline");
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    s.scope("pipeline", |s| {
        let tagged = |mut tags: Tags| {
            crate::tags::merge_defaults(&mut tags, &cfg.tags);
            tags
        };
        let mut bucket = Bucket::for_state(cfg.artifact_bucket_name()).expire_noncurrent_versions_after(30).force_destroy(true);
        if let Some(key) = &cfg.kms_key {
            bucket = bucket.kms(Some(key.clone()));
        }
        bucket.tags = tagged(bucket.tags);
        let artifacts = s.add_with("artifacts", bucket, Options::new().prevent_destroy(false));
        let objects = format!("{}/*", artifacts.arn());

        let kms = |doc: PolicyDocument| match &cfg.kms_key {
            Some(key) => doc.allow(["kms:Decrypt", "kms:GenerateDataKey"], [key.clone()]),
            None => doc,
        };

        let project = |s: &mut Stack, what: &str, spec: Buildspec, read: &[&str], extra: Vec<Statement>, managed: &[Arn<Policy>]| {
            let project_name = format!("{}-{what}", cfg.name);
            let logs = s.add(
                &format!("{what}-logs"),
                LogGroup {
                    tags: tagged(Tags::new()),
                    ..LogGroup::new(format!("/aws/codebuild/{project_name}")).retention_days(LOG_RETENTION_DAYS)
                },
            );
            let mut doc = PolicyDocument::new()
                .allow(["logs:CreateLogStream", "logs:PutLogEvents"], [format!("{}:*", logs.arn())])
                .allow(read.iter().copied(), [objects.clone()]);
            doc = kms(doc);
            for st in extra {
                doc = doc.statement(st);
            }
            let mut role = Role::for_service("codebuild.amazonaws.com")
                .description(format!("CodeBuild {what} of {}", cfg.name))
                .inline_policy("build", doc);
            for arn in managed {
                role = role.managed_policy(arn.clone());
            }
            role.tags = tagged(role.tags);
            let role = s.add(&format!("{what}-role"), role.with_stack_boundary(s));
            let source = Source::codepipeline(&spec).map_err(|e| {
                Error::Validation(vec![Diagnostic {
                    address: format!("pipeline/{what}"),
                    field: Some("source.buildspec".into()),
                    message: e,
                }])
            })?;
            let mut p = Project::new(
                project_name,
                role.arn(),
                // AWS ignores a CODEPIPELINE source's location (the pipeline's source action decides); it
                // records where the code comes from.
                source.location(format!("https://github.com/{}", cfg.repo)),
                Environment::linux(cfg.image.clone(), cfg.compute_type.clone()),
            )
            .description(format!("{what} of {} for {}", cfg.stack, cfg.repo))
            .artifacts(Artifacts::codepipeline().location(cfg.artifact_bucket_name()))
            .log_group(logs.name(), None)
            .timeout_minutes(60);
            p.tags = tagged(p.tags);
            let project = s.add(what, p);
            Ok::<_, Error>((project, role))
        };

        let read = ["s3:GetObject", "s3:GetObjectVersion"];
        let write = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"];
        let key = cfg.state_object();
        let (test, test_role) = project(s, "test", cfg.test_buildspec(), &read, Vec::new(), &[])?;
        let (plan, plan_role) =
            project(s, "plan", cfg.plan_buildspec(), &write, state_access(&cfg.state_bucket, &key, false), &cfg.plan_managed_policy_arns)?;
        // The lock object is `KEY.lock`: the pattern covers it.
        let (apply, apply_role) = project(
            s,
            "apply",
            cfg.apply_buildspec(),
            &read,
            state_access(&cfg.state_bucket, &format!("{key}*"), true),
            &cfg.apply_managed_policy_arns,
        )?;

        let mut doc = PolicyDocument::new()
            .allow(["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"], [objects.clone()])
            .allow(["s3:GetBucketVersioning", "s3:GetBucketLocation"], [artifacts.arn()])
            .allow(["codebuild:StartBuild", "codebuild:BatchGetBuilds"], [test.arn(), plan.arn(), apply.arn()])
            .allow(["codestar-connections:UseConnection", "codeconnections:UseConnection"], [cfg.connection_arn.clone()]);
        doc = kms(doc);
        let mut role = Role::for_service("codepipeline.amazonaws.com")
            .description(format!("CodePipeline {}", cfg.name))
            .inline_policy("pipeline", doc);
        role.tags = tagged(role.tags);
        let pipeline_role = s.add("pipeline-role", role.with_stack_boundary(s));

        let mut p = Pipeline::new(cfg.name.clone(), pipeline_role.arn(), artifacts.name())
            .pipeline_type("V2")
            .stage(Stage::new("Source").action(Action::connection_source(
                "GitHub",
                cfg.connection_arn.clone(),
                cfg.repo.clone(),
                cfg.branch.clone(),
                "source",
            )))
            .stage(Stage::new("Test").action(Action::codebuild("Test", test.name(), ["source"])))
            .stage(Stage::new("Plan").action(Action::codebuild("Plan", plan.name(), ["source"]).output("plan")))
            .stage(
                Stage::new("Approve").action(
                    Action::manual_approval("Approve")
                        .config("CustomData", format!("Review the Plan build's log before {} is applied", cfg.stack)),
                ),
            )
            .stage(Stage::new("Apply").action(Action::codebuild("Apply", apply.name(), ["source", "plan"])));
        if let Some(key) = &cfg.kms_key {
            p = p.kms_key(key.clone());
        }
        p.tags = tagged(p.tags);
        let pipeline = s.add("pipeline", p);
        Ok(DeployPipelineHandles {
            pipeline,
            pipeline_role,
            artifact_bucket: artifacts,
            test,
            plan,
            apply,
            test_role,
            plan_role,
            apply_role,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readme_settings() -> DeployPipeline {
        DeployPipeline::new(
            "pedidos-deploy",
            "my-org/my-stack-repo",
            "arn:aws:codeconnections:us-east-1:123456789012:connection/x",
            "pedidos",
            Name::literal("my-team-ferroform-state"),
        )
    }

    /// The commands README.md's pipeline section gives (its `sh` block after "The builds run"), each found in
    /// the buildspec of its stage, and each buildspec's YAML read back by a YAML parser.
    #[test]
    fn buildspecs_parse_and_run_the_commands_the_readme_gives() {
        let readme = include_str!("../../../../README.md");
        let section = readme.split("The builds run").nth(1).unwrap_or_default();
        let block = section.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).unwrap_or_default();
        let commands: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
        assert_eq!(commands.len(), 3, "README's block: {block}");
        let cfg = readme_settings();
        for (spec, command) in [cfg.test_buildspec(), cfg.plan_buildspec(), cfg.apply_buildspec()].iter().zip(&commands) {
            let yaml = spec.to_yaml().unwrap_or_default();
            let parsed: serde_norway::Value = serde_norway::from_str(&yaml).unwrap_or_default();
            let build: Vec<&str> =
                parsed["phases"]["build"]["commands"].as_sequence().into_iter().flatten().filter_map(|c| c.as_str()).collect();
            assert_eq!(build, [*command], "{yaml}");
            assert_eq!(Buildspec::from_yaml(&yaml).as_ref(), Ok(spec));
        }
        let plan: serde_norway::Value = serde_norway::from_str(&cfg.plan_buildspec().to_yaml().unwrap_or_default()).unwrap_or_default();
        assert_eq!(plan["artifacts"]["files"][0].as_str(), Some(PLAN_FILE));
    }

    #[test]
    fn malformed_settings_are_refused_before_anything_is_added() {
        for (bad, field) in [
            (DeployPipeline { repo: "acme".into(), ..readme_settings() }, "repo"),
            (readme_settings().branch("main; rm -rf /"), "branch"),
            (DeployPipeline { stack: "x y".into(), ..readme_settings() }, "stack"),
            (DeployPipeline { connection_arn: String::new(), ..readme_settings() }, "connection_arn"),
        ] {
            let mut s = Stack::new("p");
            match deploy_pipeline(&mut s, bad) {
                Err(Error::Validation(d)) => assert_eq!(d[0].field.as_deref(), Some(field)),
                other => panic!("{field}: {:?}", other.map(|_| ())),
            }
        }
    }
}
