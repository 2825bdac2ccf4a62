//! CodePipeline pipelines, and the deploy pipeline component, against the emulator, checked with independent
//! SDK reads (GetPipeline, ListTagsForResource, BatchGetProjects, GetRole, GetRolePolicy).
//!
//! moto 5.2.5 has no CodeStar/CodeConnections and runs no actions: the connection is an ARN given as text,
//! and what is checked is the declaration the emulator holds.
#![cfg(all(feature = "codepipeline", feature = "codebuild", feature = "iam", feature = "s3", feature = "logs"))]

use crate::common::{change, harness};
use ferroform_aws::codebuild::{Artifacts, Buildspec, Environment, Project, Source};
use ferroform_aws::codepipeline::{Action as PipelineAction, Pipeline, Stage};
use ferroform_aws::components::{deploy_pipeline, DeployPipeline};
use ferroform_aws::iam::{self, PolicyDocument, Role};
use ferroform_aws::s3::Bucket;
use ferroform_core::{Action, Name, Options, Stack};

const CONNECTION: &str = "arn:aws:codeconnections:us-east-1:123456789012:connection/0b1c2d3e-aaaa-bbbb-cccc-1234567890ab";

fn stack(edit: impl Fn(Pipeline) -> Pipeline) -> Stack {
    let mut s = Stack::new("cptest");
    let bucket = s.add_with("artifacts", Bucket::for_state("cptest-artifacts").force_destroy(true), Options::new().prevent_destroy(false));
    let build_role = s.add("build-role", Role::for_service("codebuild.amazonaws.com").allow(["logs:PutLogEvents"], ["*"]));
    let spec = Buildspec::new().build(["cargo test"]);
    let project = s.add(
        "project",
        Project::new(
            "cptest-build",
            build_role.arn(),
            Source::codepipeline(&spec).unwrap_or_else(|e| panic!("{e}")).location("https://github.com/acme/app"),
            Environment::linux("aws/codebuild/amazonlinux-x86_64-standard:5.0", "BUILD_GENERAL1_SMALL"),
        )
        .artifacts(Artifacts::codepipeline().location("cptest-artifacts")),
    );
    let role = s.add("role", Role::for_service("codepipeline.amazonaws.com").allow(["codebuild:StartBuild"], [project.arn()]));
    let pipeline = Pipeline::new("cptest", role.arn(), bucket.name())
        .stage(Stage::new("Source").action(PipelineAction::connection_source("GitHub", CONNECTION, "acme/app", "main", "source")))
        .stage(Stage::new("Build").action(PipelineAction::codebuild("Build", project.name(), ["source"]).output("built")))
        .stage(Stage::new("Approve").action(PipelineAction::manual_approval("Approve")))
        .tag("team", "orders");
    s.add("pipeline", edit(pipeline));
    s
}

async fn get(cp: &aws_sdk_codepipeline::Client, name: &str) -> anyhow::Result<Option<aws_sdk_codepipeline::types::PipelineDeclaration>> {
    match cp.get_pipeline().name(name).send().await {
        Ok(out) => Ok(out.pipeline),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_pipeline_not_found_exception()) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn action<'a>(p: &'a aws_sdk_codepipeline::types::PipelineDeclaration, stage: &str) -> &'a aws_sdk_codepipeline::types::ActionDeclaration {
    let s = p.stages().iter().find(|s| s.name() == stage).unwrap_or_else(|| panic!("no stage {stage}"));
    &s.actions()[0]
}

fn config<'a>(a: &'a aws_sdk_codepipeline::types::ActionDeclaration, key: &str) -> Option<&'a str> {
    a.configuration().and_then(|c| c.get(key)).map(String::as_str)
}

#[tokio::test]
async fn pipeline_lifecycle() -> anyhow::Result<()> {
    let (h, _) = harness().await?;
    let cp = aws_sdk_codepipeline::Client::new(&h.account.config);
    let same = |p: Pipeline| p;

    let state = h.apply(&stack(same)).await?;
    let p = get(&cp, "cptest").await?.expect("created");
    let arn = state.resources["pipeline"].outputs["arn"].as_str().unwrap_or_default().to_string();
    assert!(arn.starts_with("arn:aws:codepipeline:") && arn.ends_with(":cptest"), "{arn}");
    assert_eq!(Some(p.role_arn()), state.resources["role"].outputs["arn"].as_str());
    assert_eq!(p.artifact_store().map(|s| s.location()), Some("cptest-artifacts"));
    assert_eq!(p.stages().iter().map(|s| s.name()).collect::<Vec<_>>(), ["Source", "Build", "Approve"]);
    let src = action(&p, "Source");
    assert_eq!(src.action_type_id().map(|t| t.provider()), Some("CodeStarSourceConnection"));
    assert_eq!(config(src, "ConnectionArn"), Some(CONNECTION));
    assert_eq!(config(src, "FullRepositoryId"), Some("acme/app"));
    assert_eq!(src.output_artifacts().iter().map(|a| a.name()).collect::<Vec<_>>(), ["source"]);
    let build = action(&p, "Build");
    assert_eq!(config(build, "ProjectName"), Some("cptest-build"));
    assert_eq!(build.input_artifacts().iter().map(|a| a.name()).collect::<Vec<_>>(), ["source"]);
    assert_eq!(action(&p, "Approve").action_type_id().map(|t| (t.category().as_str(), t.provider())), Some(("Approval", "Manual")));
    let tags = cp.list_tags_for_resource().resource_arn(&arn).send().await?;
    assert!(tags.tags().iter().any(|t| t.key() == "team" && t.value() == "orders"));
    assert!(tags.tags().iter().any(|t| t.key() == "ferroform:address" && t.value() == "pipeline"));

    let plan = h.plan(&stack(same)).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    // In place: another branch, one more stage, tags.
    let v2 = |p: Pipeline| {
        let mut p = p.stage(Stage::new("Again").action(PipelineAction::codebuild("Again", Name::literal("cptest-build"), ["built"])));
        p.stages[0].actions[0].configuration.insert("BranchName".into(), "release".into());
        p.tag("team", "billing")
    };
    let plan = h.plan(&stack(v2)).await?;
    assert_eq!(change(&plan, "pipeline"), (Action::Update, vec!["stages".into(), "tags".into()]), "{}", plan.render(false));
    h.apply(&stack(v2)).await?;
    let p = get(&cp, "cptest").await?.expect("updated");
    assert_eq!(config(action(&p, "Source"), "BranchName"), Some("release"));
    assert_eq!(p.stages().len(), 4);
    let tags = cp.list_tags_for_resource().resource_arn(&arn).send().await?;
    assert!(tags.tags().iter().any(|t| t.key() == "team" && t.value() == "billing"));
    assert!(!h.plan(&stack(v2)).await?.has_changes());

    // Drift: the branch changed behind our back is planned back and restored.
    let mut drifted = p.clone();
    drifted.stages[0].actions[0].configuration.get_or_insert_with(Default::default).insert("BranchName".into(), "hotfix".into());
    cp.update_pipeline().pipeline(drifted).send().await?;
    let plan = h.plan(&stack(v2)).await?;
    assert_eq!(change(&plan, "pipeline"), (Action::Update, vec!["stages".into()]), "{}", plan.render(false));
    h.apply(&stack(v2)).await?;
    assert_eq!(config(action(&get(&cp, "cptest").await?.expect("restored"), "Source"), "BranchName"), Some("release"));

    // Replace: a new name; the old pipeline is gone.
    let renamed = |p: Pipeline| Pipeline { name: "cptest2".into(), ..v2(p) };
    assert_eq!(change(&h.plan(&stack(renamed)).await?, "pipeline").0, Action::Replace);
    h.apply(&stack(renamed)).await?;
    assert!(get(&cp, "cptest2").await?.is_some());
    assert!(get(&cp, "cptest").await?.is_none());

    h.destroy(&stack(renamed)).await?;
    assert!(cp.list_pipelines().send().await?.pipelines().is_empty());
    Ok(())
}

fn deploy_stack() -> Stack {
    let mut s = Stack::new("deploy");
    // Customer managed stand-ins for ReadOnlyAccess and PowerUserAccess: moto 5.2.5 cannot attach AWS's own.
    let read =
        s.add("read-policy", iam::Policy::new("deploy-read", PolicyDocument::new().allow(["dynamodb:Describe*", "lambda:Get*"], ["*"])));
    let power = s.add("power-policy", iam::Policy::new("deploy-power", PolicyDocument::new().allow(["lambda:*", "dynamodb:*"], ["*"])));
    let cfg = DeployPipeline::new("orders-deploy", "acme/orders", CONNECTION, "pedidos", Name::literal("acme-state"))
        .plan_managed_policy(read.arn())
        .apply_managed_policy(power.arn());
    deploy_pipeline(&mut s, cfg).unwrap_or_else(|e| panic!("{e}"));
    s
}

/// A role's trusted service and the JSON of one of its inline policies.
async fn role_policy(iam: &aws_sdk_iam::Client, role: &str, policy: &str) -> anyhow::Result<(String, serde_json::Value)> {
    let r = iam.get_role().role_name(role).send().await?;
    let trust = PolicyDocument::parse_aws(r.role().and_then(|r| r.assume_role_policy_document()).unwrap_or_default())
        .map_err(anyhow::Error::msg)?;
    let trust = serde_json::to_value(&trust)?;
    let service = &trust["Statement"][0]["Principal"]["Service"];
    let service = service.as_str().or_else(|| service[0].as_str()).unwrap_or_default().to_string();
    let doc = iam.get_role_policy().role_name(role).policy_name(policy).send().await?;
    let doc = PolicyDocument::parse_aws(doc.policy_document()).map_err(anyhow::Error::msg)?;
    Ok((service, serde_json::to_value(&doc)?))
}

fn id(state: &ferroform_core::State, address: &str) -> String {
    state.resources[address].id.clone().unwrap_or_default()
}

fn actions_of(doc: &serde_json::Value) -> Vec<String> {
    let mut all = Vec::new();
    for st in doc["Statement"].as_array().into_iter().flatten() {
        match &st["Action"] {
            serde_json::Value::String(a) => all.push(a.clone()),
            serde_json::Value::Array(a) => all.extend(a.iter().filter_map(|a| a.as_str().map(str::to_string))),
            _ => {}
        }
    }
    all
}

#[tokio::test]
async fn deploy_pipeline_stages_projects_and_roles_read_back() -> anyhow::Result<()> {
    let (h, _) = harness().await?;
    let cp = aws_sdk_codepipeline::Client::new(&h.account.config);
    let cb = aws_sdk_codebuild::Client::new(&h.account.config);
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let s3 = aws_sdk_s3::Client::new(&h.account.config);

    let state = h.apply(&deploy_stack()).await?;
    let p = get(&cp, "orders-deploy").await?.expect("pipeline");
    assert_eq!(p.stages().iter().map(|s| s.name()).collect::<Vec<_>>(), ["Source", "Test", "Plan", "Approve", "Apply"]);
    let providers: Vec<_> = p.stages().iter().map(|s| s.actions()[0].action_type_id().map(|t| t.provider().to_string())).collect();
    assert_eq!(
        providers.iter().flatten().map(String::as_str).collect::<Vec<_>>(),
        ["CodeStarSourceConnection", "CodeBuild", "CodeBuild", "Manual", "CodeBuild"]
    );
    let names = |a: &aws_sdk_codepipeline::types::ActionDeclaration| {
        (
            a.input_artifacts().iter().map(|x| x.name().to_string()).collect::<Vec<_>>(),
            a.output_artifacts().iter().map(|x| x.name().to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(config(action(&p, "Source"), "FullRepositoryId"), Some("acme/orders"));
    assert_eq!(config(action(&p, "Source"), "ConnectionArn"), Some(CONNECTION));
    assert_eq!(names(action(&p, "Source")), (vec![], vec!["source".to_string()]));
    assert_eq!(names(action(&p, "Plan")), (vec!["source".to_string()], vec!["plan".to_string()]));
    // The apply build gets the approved plan file as a second source.
    assert_eq!(names(action(&p, "Apply")), (vec!["source".to_string(), "plan".to_string()], vec![]));
    assert_eq!(config(action(&p, "Apply"), "PrimarySource"), Some("source"));
    let bucket = p.artifact_store().map(|s| s.location().to_string()).unwrap_or_default();
    assert_eq!(bucket, "orders-deploy-artifacts");

    // The artifact bucket: encrypted, private.
    let enc = s3.get_bucket_encryption().bucket(&bucket).send().await?;
    assert!(enc.server_side_encryption_configuration().is_some_and(|c| !c.rules().is_empty()));
    let block = s3.get_public_access_block().bucket(&bucket).send().await?;
    let b = block.public_access_block_configuration().expect("public access block");
    assert_eq!(
        (b.block_public_acls(), b.ignore_public_acls(), b.block_public_policy(), b.restrict_public_buckets()),
        (Some(true), Some(true), Some(true), Some(true))
    );

    // The projects: each runs its stage's command, as its own role.
    let out = cb.batch_get_projects().names("orders-deploy-test").names("orders-deploy-plan").names("orders-deploy-apply").send().await?;
    assert_eq!(out.projects().len(), 3);
    for (what, expect) in
        [("test", "cargo test --workspace"), ("plan", "plan --out plan.json"), ("apply", "apply \"$CODEBUILD_SRC_DIR_plan/plan.json\"")]
    {
        let project = out.projects().iter().find(|p| p.name() == Some(&format!("orders-deploy-{what}"))).expect("project");
        let spec = Buildspec::from_yaml(project.source().and_then(|s| s.buildspec()).unwrap_or_default()).map_err(anyhow::Error::msg)?;
        let build = spec.phases.build.as_ref().map(|p| p.commands.clone()).unwrap_or_default();
        assert!(build.iter().any(|c| c.contains(expect)), "{what}: {build:?}");
        let role_id = &id(&state, &format!("pipeline/{what}-role"));
        let role_arn = iam.get_role().role_name(role_id).send().await?.role().map(|r| r.arn().to_string());
        assert_eq!(project.service_role().map(str::to_string), role_arn, "{what}");
        let (service, doc) = role_policy(&iam, role_id, "build").await?;
        assert_eq!(service, "codebuild.amazonaws.com");
        let actions = actions_of(&doc);
        assert!(actions.iter().all(|a| !a.contains('*')), "{what}: {actions:?}");
        let text = doc.to_string();
        assert!(text.contains(&format!("arn:aws:s3:::{bucket}/*")), "{what}: {text}");
        match what {
            "test" => assert!(!text.contains("acme-state"), "the test build never sees the state: {text}"),
            "plan" => {
                assert!(
                    text.contains("arn:aws:s3:::acme-state/pedidos.json") && !actions.contains(&"s3:DeleteObject".to_string()),
                    "{text}"
                )
            }
            _ => assert!(
                text.contains("arn:aws:s3:::acme-state/pedidos.json*") && actions.contains(&"s3:DeleteObject".to_string()),
                "{text}"
            ),
        }
    }
    let attached = iam.list_attached_role_policies().role_name(id(&state, "pipeline/apply-role")).send().await?;
    assert_eq!(attached.attached_policies().iter().filter_map(|p| p.policy_name()).collect::<Vec<_>>(), ["deploy-power"]);
    let attached = iam.list_attached_role_policies().role_name(id(&state, "pipeline/test-role")).send().await?;
    assert!(attached.attached_policies().is_empty());

    // CodePipeline's role: the artifacts, its three projects' builds, the connection; nothing else.
    let pipeline_role = &id(&state, "pipeline/pipeline-role");
    assert_eq!(Some(p.role_arn()), state.resources["pipeline/pipeline-role"].outputs["arn"].as_str());
    let (service, doc) = role_policy(&iam, pipeline_role, "pipeline").await?;
    assert_eq!(service, "codepipeline.amazonaws.com");
    let actions = actions_of(&doc);
    assert!(actions.iter().all(|a| !a.contains('*')), "{actions:?}");
    let text = doc.to_string();
    for project in ["orders-deploy-test", "orders-deploy-plan", "orders-deploy-apply"] {
        assert!(text.contains(&format!(":project/{project}")), "{text}");
    }
    assert!(text.contains(CONNECTION), "{text}");

    let plan = h.plan(&deploy_stack()).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    h.destroy(&deploy_stack()).await?;
    assert!(cp.list_pipelines().send().await?.pipelines().is_empty());
    assert!(cb.list_projects().send().await?.projects().is_empty());
    let roles = iam.list_roles().send().await?;
    assert!(
        roles.roles().iter().all(|r| !r.role_name().starts_with("deploy")),
        "{:?}",
        roles.roles().iter().map(|r| r.role_name()).collect::<Vec<_>>()
    );
    assert!(s3.head_bucket().bucket(&bucket).send().await.is_err());
    let logs = aws_sdk_cloudwatchlogs::Client::new(&h.account.config);
    assert!(logs.describe_log_groups().log_group_name_prefix("/aws/codebuild/").send().await?.log_groups().is_empty());
    Ok(())
}
