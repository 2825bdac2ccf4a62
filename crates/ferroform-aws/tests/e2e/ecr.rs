//! ECR repositories against the emulator, checked with independent SDK reads.
#![cfg(feature = "ecr")]

use crate::common::{change, harness};
use ferroform_aws::ecr::{LifecyclePolicy, Repository};
use ferroform_core::{Action, Options, Stack};

const STACK: &str = "ecrtest";

fn stack(repo: Repository, protect: Option<bool>) -> Stack {
    let mut s = Stack::new(STACK);
    let opts = match protect {
        Some(p) => Options::new().prevent_destroy(p),
        None => Options::new(),
    };
    s.add_with("repo", repo, opts);
    s
}

async fn describe(ecr: &aws_sdk_ecr::Client, name: &str) -> anyhow::Result<aws_sdk_ecr::types::Repository> {
    let out = ecr.describe_repositories().repository_names(name).send().await?;
    out.repositories().first().cloned().ok_or_else(|| anyhow::anyhow!("no repository {name}"))
}

async fn policy_text(ecr: &aws_sdk_ecr::Client, name: &str) -> anyhow::Result<serde_json::Value> {
    let out = ecr.get_lifecycle_policy().repository_name(name).send().await?;
    Ok(serde_json::from_str(out.lifecycle_policy_text().unwrap_or("{}"))?)
}

#[tokio::test]
async fn repository_lifecycle() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let ecr = aws_sdk_ecr::Client::new(&h.account.config);
    // Scanning goes off -> on: the SDK leaves `scanOnPush: false` out of the request (smithy default elision), which
    // ECR reads as false but moto ignores, so on -> off can't be checked on the emulator.
    let v1 = || Repository::new("team/app").scan_on_push(false).keep_last(10).tag("team", "orders");

    let state = h.apply(&stack(v1(), Some(false))).await?;
    let url = state.resources["repo"].outputs["repository_url"].as_str().unwrap_or_default().to_string();
    assert!(url.starts_with(&h.account.id) && url.ends_with("/team/app"), "{url}");
    let r = describe(&ecr, "team/app").await?;
    let created = r.created_at().copied();
    assert_eq!(r.image_scanning_configuration().map(|c| c.scan_on_push()), Some(false));
    assert_eq!(policy_text(&ecr, "team/app").await?["rules"][0]["selection"]["countNumber"], 10);
    let tags = ecr.list_tags_for_resource().resource_arn(r.repository_arn().unwrap_or_default()).send().await?;
    assert!(tags.tags().iter().any(|t| t.key() == "ferroform:address" && t.value() == "repo"));

    calls.reset();
    let plan = h.plan(&stack(v1(), Some(false))).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    eprintln!("no-op plan of a repository with a lifecycle policy: {} calls", calls.total());

    // The same policy written another way behind our back: no diff.
    let equivalent = r#"{"rules":[{"selection":{"countNumber":10,"countType":"imageCountMoreThan","tagStatus":"any"},
        "action":{"type":"expire"},"description":"keep the last 10 images","rulePriority":1}]}"#;
    ecr.put_lifecycle_policy().repository_name("team/app").lifecycle_policy_text(equivalent).send().await?;
    let plan = h.plan(&stack(v1(), Some(false))).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    // In place: tag mutability, scanning, the policy, tags.
    let v2 = || {
        Repository::new("team/app")
            .immutable_tags()
            .scan_on_push(true)
            .lifecycle(LifecyclePolicy::keep_last(5).expire_untagged_after_days(3))
            .tag("team", "billing")
    };
    let plan = h.plan(&stack(v2(), Some(false))).await?;
    let fields = ["image_tag_mutability", "lifecycle_policy", "scan_on_push", "tags"];
    assert_eq!(change(&plan, "repo"), (Action::Update, fields.map(String::from).to_vec()), "{}", plan.render(false));
    h.apply(&stack(v2(), Some(false))).await?;
    let r = describe(&ecr, "team/app").await?;
    assert_eq!(r.created_at().copied(), created);
    assert_eq!(r.image_tag_mutability().map(|m| m.as_str()), Some("IMMUTABLE"));
    assert_eq!(r.image_scanning_configuration().map(|c| c.scan_on_push()), Some(true));
    let text = policy_text(&ecr, "team/app").await?;
    assert_eq!(text["rules"].as_array().map(Vec::len), Some(2));
    assert_eq!(text["rules"][1]["selection"]["tagStatus"], "any");
    assert!(!h.plan(&stack(v2(), Some(false))).await?.has_changes());

    // Drift: mutability flipped and the policy deleted behind our back.
    ecr.put_image_tag_mutability()
        .repository_name("team/app")
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Mutable)
        .send()
        .await?;
    ecr.delete_lifecycle_policy().repository_name("team/app").send().await?;
    let plan = h.plan(&stack(v2(), Some(false))).await?;
    assert_eq!(change(&plan, "repo"), (Action::Update, vec!["image_tag_mutability".into(), "lifecycle_policy".into()]));
    h.apply(&stack(v2(), Some(false))).await?;
    assert_eq!(describe(&ecr, "team/app").await?.image_tag_mutability().map(|m| m.as_str()), Some("IMMUTABLE"));
    assert_eq!(policy_text(&ecr, "team/app").await?["rules"].as_array().map(Vec::len), Some(2));

    // Declaring no policy removes it.
    let v3 = || v2().lifecycle(LifecyclePolicy::none());
    h.apply(&stack(v3(), Some(false))).await?;
    assert!(ecr.get_lifecycle_policy().repository_name("team/app").send().await.is_err());
    assert!(!h.plan(&stack(v3(), Some(false))).await?.has_changes());

    // Replace: a new name; the old repository is gone.
    let renamed = Repository { name: "team/app2".into(), ..v3() };
    assert_eq!(change(&h.plan(&stack(renamed.clone(), Some(false))).await?, "repo").0, Action::Replace);
    h.apply(&stack(renamed.clone(), Some(false))).await?;
    assert!(describe(&ecr, "team/app2").await.is_ok());
    assert!(describe(&ecr, "team/app").await.is_err());

    h.destroy(&stack(renamed, Some(false))).await?;
    assert!(describe(&ecr, "team/app2").await.is_err());
    Ok(())
}

#[tokio::test]
async fn protection_and_force_delete() -> anyhow::Result<()> {
    let (h, _) = harness().await?;
    let ecr = aws_sdk_ecr::Client::new(&h.account.config);
    h.apply(&stack(Repository::new("images"), None)).await?;

    // Protected by default.
    let err = h.destroy(&stack(Repository::new("images"), None)).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("prevent_destroy"), "{err}");
    assert!(describe(&ecr, "images").await.is_ok());

    // Holding an image, without force_delete: ECR refuses, with a hint.
    let manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#;
    ecr.put_image().repository_name("images").image_tag("v1").image_manifest(manifest).send().await?;
    let err = h.destroy(&stack(Repository::new("images"), Some(false))).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("force_delete"), "{err}");
    assert!(describe(&ecr, "images").await.is_ok());

    // force_delete applied first, then destroy takes the images along.
    let forced = || Repository::new("images").force_delete(true);
    assert_eq!(change(&h.plan(&stack(forced(), Some(false))).await?, "repo"), (Action::Update, vec!["force_delete".into()]));
    h.apply(&stack(forced(), Some(false))).await?;
    h.destroy(&stack(forced(), Some(false))).await?;
    assert!(describe(&ecr, "images").await.is_err());
    Ok(())
}

#[tokio::test]
async fn many_repositories_read_in_one_describe() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let ecr = aws_sdk_ecr::Client::new(&h.account.config);
    let mk = || {
        let mut s = Stack::new(STACK);
        for i in 0..5 {
            s.add_with(&format!("repo{i}"), Repository::new(format!("repo{i}")), Options::new().prevent_destroy(false));
        }
        s
    };
    h.apply(&mk()).await?;
    calls.reset();
    assert!(!h.plan(&mk()).await?.has_changes());
    // One DescribeRepositories + one ListTagsForResource each.
    assert_eq!(calls.total(), 6, "{:?}", calls.snapshot());

    // One deleted behind our back: the batch falls back to one describe each, and plans a create.
    ecr.delete_repository().repository_name("repo3").send().await?;
    let plan = h.plan(&mk()).await?;
    assert_eq!(change(&plan, "repo3").0, Action::Create);
    assert_eq!(plan.summary.add, 1);
    h.destroy(&mk()).await?;
    Ok(())
}

#[tokio::test]
async fn invalid_repositories_are_refused_before_any_call() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let err = h.plan(&stack(Repository::new("Bad--Name"), None)).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("name"), "{err}");
    assert_eq!(calls.total(), 0);
    Ok(())
}

#[tokio::test]
async fn removed_settings_go_back_to_ecrs_defaults() -> anyhow::Result<()> {
    let (h, _) = harness().await?;
    let ecr = aws_sdk_ecr::Client::new(&h.account.config);
    // Scanning is left out: the emulator can't turn scan on push off again (see repository_lifecycle).
    let set = || Repository::new("defaults/app").immutable_tags().keep_last(10).tag("team", "orders");
    h.apply(&stack(set(), Some(false))).await?;
    assert_eq!(describe(&ecr, "defaults/app").await?.image_tag_mutability().map(|m| m.as_str()), Some("IMMUTABLE"));
    assert_eq!(policy_text(&ecr, "defaults/app").await?["rules"].as_array().map(Vec::len), Some(1));

    // Every optional setting removed from the code: each is planned back to ECR's default.
    let bare = || Repository::new("defaults/app");
    let plan = h.plan(&stack(bare(), Some(false))).await?;
    let fields = ["image_tag_mutability", "lifecycle_policy", "tags"].map(String::from).to_vec();
    assert_eq!(change(&plan, "repo"), (Action::Update, fields), "{}", plan.render(false));
    h.apply(&stack(bare(), Some(false))).await?;

    // Read back: mutable tags, no lifecycle policy, only the engine's tags.
    let r = describe(&ecr, "defaults/app").await?;
    assert_eq!(r.image_tag_mutability().map(|m| m.as_str()), Some("MUTABLE"));
    assert_eq!(r.image_scanning_configuration().map(|c| c.scan_on_push()), Some(false));
    let err = ecr.get_lifecycle_policy().repository_name("defaults/app").send().await.err();
    let code = err.as_ref().and_then(|e| e.as_service_error()).and_then(aws_sdk_ecr::error::ProvideErrorMetadata::code);
    assert_eq!(code, Some("LifecyclePolicyNotFoundException"), "{err:?}");
    let tags = ecr.list_tags_for_resource().resource_arn(r.repository_arn().unwrap_or_default()).send().await?;
    assert!(tags.tags().iter().all(|t| t.key() != "team"), "{:?}", tags.tags());
    assert!(tags.tags().iter().any(|t| t.key() == "ferroform:address"));
    let plan = h.plan(&stack(bare(), Some(false))).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    h.destroy(&stack(bare(), Some(false))).await?;
    assert!(describe(&ecr, "defaults/app").await.is_err());
    Ok(())
}
