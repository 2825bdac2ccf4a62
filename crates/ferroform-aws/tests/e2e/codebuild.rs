//! CodeBuild projects against the emulator, checked with independent SDK reads (BatchGetProjects, GetRole).
//!
//! moto 5.2.5 has no UpdateProject: an in-place change is tested as far as the call, whose error must surface
//! naming the project; drift is tested as a project deleted behind our back. Its CreateProject wants a
//! location for every source type, so these projects give one (AWS ignores it for `CODEPIPELINE`), and
//! `NO_SOURCE` projects (which take none) are not created here.
#![cfg(all(feature = "codebuild", feature = "iam", feature = "logs"))]

use crate::common::{change, harness};
use ferroform_aws::codebuild::{Artifacts, Buildspec, Environment, Project, Source};
use ferroform_aws::iam::Role;
use ferroform_aws::logs::LogGroup;
use ferroform_core::{Action, Stack};

const STACK: &str = "cbtest";

fn stack(edit: impl Fn(Project) -> Project) -> Stack {
    let mut s = Stack::new(STACK);
    let role = s.add("role", Role::for_service("codebuild.amazonaws.com").allow(["logs:PutLogEvents"], ["*"]));
    let logs = s.add("logs", LogGroup::new("/aws/codebuild/app-test").retention_days(7));
    let spec = Buildspec::new().env("CARGO_TERM_COLOR", "never").build(["cargo test --workspace"]);
    let project = Project::new(
        "app-test",
        role.arn(),
        Source::codepipeline(&spec).unwrap_or_else(|e| panic!("{e}")).location("https://github.com/acme/app"),
        Environment::linux("aws/codebuild/amazonlinux-x86_64-standard:5.0", "BUILD_GENERAL1_SMALL").var("STAGE", "test"),
    )
    .description("tests")
    .artifacts(Artifacts::codepipeline().location("artifacts"))
    .log_group(logs.name(), Some("build".into()))
    .timeout_minutes(30)
    .tag("team", "orders");
    s.add("project", edit(project));
    s
}

async fn get(cb: &aws_sdk_codebuild::Client, name: &str) -> anyhow::Result<Option<aws_sdk_codebuild::types::Project>> {
    let out = cb.batch_get_projects().names(name).send().await?;
    Ok(out.projects().iter().find(|p| p.name() == Some(name)).cloned())
}

#[tokio::test]
async fn project_lifecycle() -> anyhow::Result<()> {
    let (h, _) = harness().await?;
    let cb = aws_sdk_codebuild::Client::new(&h.account.config);
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let same = |p: Project| p;

    let state = h.apply(&stack(same)).await?;
    let p = get(&cb, "app-test").await?.expect("created");
    assert_eq!(state.resources["project"].outputs["arn"].as_str(), p.arn());
    let role_name = state.resources["role"].id.clone().unwrap_or_default();
    let role = iam.get_role().role_name(&role_name).send().await?;
    assert_eq!(p.service_role(), role.role().map(|r| r.arn()));
    let source = p.source().expect("source");
    assert_eq!(source.r#type().as_str(), "CODEPIPELINE");
    let spec = Buildspec::from_yaml(source.buildspec().unwrap_or_default()).map_err(anyhow::Error::msg)?;
    assert_eq!(spec.all_commands(), ["cargo test --workspace"]);
    let env = p.environment().expect("environment");
    assert_eq!(
        (env.image(), env.compute_type().as_str(), env.r#type().as_str()),
        ("aws/codebuild/amazonlinux-x86_64-standard:5.0", "BUILD_GENERAL1_SMALL", "LINUX_CONTAINER")
    );
    assert_eq!(env.environment_variables().iter().map(|v| (v.name(), v.value())).collect::<Vec<_>>(), [("STAGE", "test")]);
    assert_eq!(p.artifacts().map(|a| a.r#type().as_str()), Some("CODEPIPELINE"));
    let cw = p.logs_config().and_then(|l| l.cloud_watch_logs()).expect("logs");
    assert_eq!((cw.group_name(), cw.stream_name()), (Some("/aws/codebuild/app-test"), Some("build")));
    assert_eq!(p.timeout_in_minutes(), Some(30));
    assert_eq!(p.description(), Some("tests"));
    let tag = |p: &aws_sdk_codebuild::types::Project, k: &str| {
        p.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string)
    };
    assert_eq!(tag(&p, "team").as_deref(), Some("orders"));
    assert_eq!(tag(&p, "ferroform:address").as_deref(), Some("project"));

    let plan = h.plan(&stack(same)).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    // In place (timeout, a variable, tags): planned as an update; the emulator has no UpdateProject, so the
    // call's error must come back naming the project, and nothing changes.
    let changed = |p: Project| Project { timeout_minutes: Some(45), ..p }.tag("team", "billing");
    let plan = h.plan(&stack(changed)).await?;
    assert_eq!(change(&plan, "project"), (Action::Update, vec!["tags".into(), "timeout_minutes".into()]), "{}", plan.render(false));
    let err = h.apply(&stack(changed)).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(err.contains("project"), "{err}");
    assert_eq!(get(&cb, "app-test").await?.and_then(|p| p.timeout_in_minutes()), Some(30));
    assert!(!h.plan(&stack(same)).await?.has_changes());

    // Drift: deleted behind our back, planned as a create and made again.
    cb.delete_project().name("app-test").send().await?;
    let plan = h.plan(&stack(same)).await?;
    assert_eq!(change(&plan, "project").0, Action::Create, "{}", plan.render(false));
    h.apply(&stack(same)).await?;
    assert!(get(&cb, "app-test").await?.is_some());

    // Replace: a new name; the old project is gone.
    let renamed = |p: Project| Project { name: "app-test2".into(), ..p };
    assert_eq!(change(&h.plan(&stack(renamed)).await?, "project").0, Action::Replace);
    h.apply(&stack(renamed)).await?;
    assert!(get(&cb, "app-test2").await?.is_some());
    assert!(get(&cb, "app-test").await?.is_none());
    assert!(!h.plan(&stack(renamed)).await?.has_changes());

    h.destroy(&stack(renamed)).await?;
    assert!(get(&cb, "app-test2").await?.is_none());
    assert!(cb.list_projects().send().await?.projects().is_empty());
    assert!(iam.get_role().role_name(&role_name).send().await.is_err());
    Ok(())
}

#[tokio::test]
async fn invalid_projects_are_refused_before_any_call() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let bad = |p: Project| Project { environment: Environment { compute_type: "HUGE".into(), ..p.environment.clone() }, ..p };
    let err = h.plan(&stack(bad)).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("compute_type"), "{err}");
    assert_eq!(calls.total(), 0);
    Ok(())
}
