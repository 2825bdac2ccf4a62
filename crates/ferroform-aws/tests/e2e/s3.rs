//! S3: the state bucket resource, and state kept in S3 with its lock, against the emulator.

use crate::common::change;
use aws_sdk_s3::primitives::ByteStream;
use ferroform_aws::logs::LogGroup;
use ferroform_aws::s3::S3Backend;
use ferroform_aws::Aws;
use ferroform_core::{Backend, Engine, Error, LockInfo, PlanOptions, Stack};
use ferroform_testkit::Harness;
use std::sync::Arc;
use std::time::Duration;

async fn harness() -> anyhow::Result<Harness> {
    let h = Harness::new().await?;
    h.contexts.insert(Aws::from_config(h.account.config.clone()));
    Ok(h)
}

fn groups(n: usize) -> Stack {
    let mut s = Stack::new("teamwork");
    for i in 0..n {
        s.add(&format!("g{i}"), LogGroup::new(format!("/ff/teamwork/{i}")).retention_days(7));
    }
    s
}

/// A bucket for state and the `s3://` URL of a state object in it.
async fn s3_state(h: &Harness) -> anyhow::Result<(String, String, aws_sdk_s3::Client)> {
    let s3 = aws_sdk_s3::Client::new(&h.account.config);
    let bucket = format!("ff-team-{}", h.account.id);
    s3.create_bucket().bucket(&bucket).send().await?;
    Ok((format!("s3://{bucket}/stacks/teamwork.json"), bucket, s3))
}

fn engine(h: &Harness, url: &str) -> anyhow::Result<Engine> {
    let backend = S3Backend::from_url(url, h.contexts.clone())?;
    Ok(Engine::new(Arc::new(backend)).contexts(h.contexts.clone()))
}

#[tokio::test]
async fn two_applies_on_one_s3_state_exactly_one_runs() -> anyhow::Result<()> {
    let h = harness().await?;
    let (url, bucket, s3) = s3_state(&h).await?;
    let (a, b) = (engine(&h, &url)?, engine(&h, &url)?);
    let stack = groups(5);
    let opts = PlanOptions::default();
    let (ra, rb) = tokio::join!(a.apply(&stack, &opts), b.apply(&stack, &opts));
    let locked = [&ra, &rb].iter().filter(|r| matches!(r, Err(Error::Locked { .. }))).count();
    let ok = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    assert_eq!((ok, locked), (1, 1), "{ra:?}\n{rb:?}");
    let msg = [ra, rb].into_iter().find_map(|r| r.err()).map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("is locked by") && msg.contains("pid"), "{msg}");

    // The state in S3 is complete and valid, and the lock is gone.
    let got = s3.get_object().bucket(&bucket).key("stacks/teamwork.json").send().await?;
    let state = ferroform_core::State::parse(&got.body.collect().await?.into_bytes(), &url)?;
    assert_eq!(state.resources.len(), 5);
    assert!(state.resources.values().all(|r| r.id.is_some()));
    let logs = aws_sdk_cloudwatchlogs::Client::new(&h.account.config);
    let live = logs.describe_log_groups().log_group_name_prefix("/ff/teamwork/").send().await?;
    assert_eq!(live.log_groups().len(), 5, "exactly one of each");
    assert!(!a.plan(&stack, &PlanOptions::default()).await?.has_changes());
    Ok(())
}

fn lock_body(id: &str, who: &str, expires: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&serde_json::json!({
        "id": id, "operation": "apply", "who": who, "host": "laptop", "pid": 4242,
        "created": "2026-01-01T00:00:00Z", "expires": expires.to_rfc3339()
    }))?)
}

#[tokio::test]
async fn a_stale_lock_is_taken_over_and_a_live_one_refused() -> anyhow::Result<()> {
    let h = harness().await?;
    let (url, bucket, s3) = s3_state(&h).await?;
    let key = "stacks/teamwork.json.lock";

    // A live holder (lease in the future) is refused with its name; force-unlock with its id removes it.
    let live = lock_body("lock-live", "alice", chrono::Utc::now() + chrono::Duration::hours(1))?;
    s3.put_object().bucket(&bucket).key(key).body(ByteStream::from(live)).send().await?;
    let e = engine(&h, &url)?;
    let err = e.apply(&groups(1), &PlanOptions::default()).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("alice@laptop") && err.contains("lock-live"), "{err}");
    assert!(e.force_unlock("wrong-id").await.is_err());
    e.force_unlock("lock-live").await?;
    e.apply(&groups(1), &PlanOptions::default()).await?;

    // A killed run's lock (lease expired) is recognised as stale and taken over.
    let stale = lock_body("lock-dead", "bob", chrono::Utc::now() - chrono::Duration::minutes(5))?;
    s3.put_object().bucket(&bucket).key(key).body(ByteStream::from(stale)).send().await?;
    e.apply(&groups(2), &PlanOptions::default()).await?;
    let left = s3.list_objects_v2().bucket(&bucket).prefix("stacks/").send().await?;
    assert!(left.contents().iter().all(|o| !o.key().unwrap_or_default().ends_with(".lock")), "released after the run");
    Ok(())
}

#[tokio::test]
async fn a_held_lock_is_renewed_while_its_run_lives() -> anyhow::Result<()> {
    let h = harness().await?;
    let (url, _, _) = s3_state(&h).await?;
    let holder = S3Backend::from_url(&url, h.contexts.clone())?.lease(Duration::from_secs(2));
    let info = LockInfo::new("apply");
    holder.lock(&info).await?;
    // Well past the lease: still held, because the holder renews it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let other = S3Backend::from_url(&url, h.contexts.clone())?;
    let err = other.lock(&LockInfo::new("apply")).await.err();
    assert!(matches!(err, Some(Error::Locked { .. })), "{err:?}");
    holder.unlock(&info.id).await?;
    other.lock(&LockInfo::new("apply")).await?;
    Ok(())
}

fn bucket_stack(b: ferroform_aws::s3::Bucket) -> Stack {
    let mut s = Stack::new("buckets");
    s.add_with("state", b, ferroform_core::Options::new().prevent_destroy(false));
    s
}

/// Versioning proven by behaviour: two writes of a fresh key leave two versions (one when versioning is
/// off or suspended). GetBucketVersioning itself can't be read with the SDK on the emulator (see
/// `bucket.rs`), and this holds on S3 too.
async fn keeps_versions(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> anyhow::Result<bool> {
    for body in ["one", "two"] {
        s3.put_object().bucket(bucket).key(key).body(ByteStream::from_static(body.as_bytes())).send().await?;
    }
    let out = s3.list_object_versions().bucket(bucket).prefix(key).send().await?;
    let n = out.versions().iter().filter(|v| v.key() == Some(key)).count();
    Ok(n == 2)
}

async fn all_blocked(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<bool> {
    let out = s3.get_public_access_block().bucket(bucket).send().await?;
    let c = out
        .public_access_block_configuration()
        .cloned()
        .unwrap_or_else(|| aws_sdk_s3::types::PublicAccessBlockConfiguration::builder().build());
    Ok([c.block_public_acls(), c.ignore_public_acls(), c.block_public_policy(), c.restrict_public_buckets()]
        .iter()
        .all(|v| *v == Some(true)))
}

/// The bucket's default encryption, as GetBucketEncryption gives it.
async fn sse_default(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<Option<aws_sdk_s3::types::ServerSideEncryptionByDefault>> {
    let out = s3.get_bucket_encryption().bucket(bucket).send().await?;
    let rule = out.server_side_encryption_configuration().and_then(|c| c.rules().first().cloned());
    Ok(rule.and_then(|r| r.apply_server_side_encryption_by_default().cloned()))
}

async fn sse_algorithm(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<Option<String>> {
    Ok(sse_default(s3, bucket).await?.map(|d| d.sse_algorithm().as_str().to_string()))
}

async fn kms_key(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<Option<String>> {
    Ok(sse_default(s3, bucket).await?.and_then(|d| d.kms_master_key_id().map(str::to_string)))
}

async fn bucket_tags(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let out = s3.get_bucket_tagging().bucket(bucket).send().await?;
    Ok(out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
}

async fn noncurrent_days(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<Option<i32>> {
    let out = match s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error().and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e))
                == Some("NoSuchLifecycleConfiguration") =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    let rule = out.rules().iter().find(|r| r.id() == Some(ferroform_aws::s3::NONCURRENT_RULE_ID));
    Ok(rule.and_then(|r| r.noncurrent_version_expiration()).and_then(|n| n.noncurrent_days()))
}

#[tokio::test]
async fn bucket_lifecycle() -> anyhow::Result<()> {
    use ferroform_aws::s3::Bucket;
    use ferroform_core::Action;
    let h = harness().await?;
    let s3 = aws_sdk_s3::Client::new(&h.account.config);
    let name = format!("ff-bucket-{}", h.account.id);
    let v1 = || Bucket::for_state(&name).expire_noncurrent_versions_after(30).force_destroy(true).tag("team", "infra");

    h.apply(&bucket_stack(v1())).await?;
    assert_eq!(sse_algorithm(&s3, &name).await?.as_deref(), Some("AES256"));
    assert!(all_blocked(&s3, &name).await?);
    assert!(keeps_versions(&s3, &name, "a.json").await?, "versioned");
    assert_eq!(noncurrent_days(&s3, &name).await?, Some(30));
    let tags = bucket_tags(&s3, &name).await?;
    assert_eq!(tags.get("team").map(String::as_str), Some("infra"));
    assert_eq!(tags.get("ferroform:address").map(String::as_str), Some("state"));
    let plan = h.plan(&bucket_stack(v1())).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    // In place: public access opened, another expiry, other tags; the bucket and its objects stay.
    let v2 = || Bucket { block_public_access: false, ..v1().expire_noncurrent_versions_after(7).tag("team", "platform") };
    let plan = h.plan(&bucket_stack(v2())).await?;
    let want = ["block_public_access", "noncurrent_version_expiration_days", "tags"].map(String::from).to_vec();
    assert_eq!(change(&plan, "state"), (Action::Update, want), "{}", plan.render(false));
    h.apply(&bucket_stack(v2())).await?;
    assert!(!all_blocked(&s3, &name).await?);
    assert_eq!(noncurrent_days(&s3, &name).await?, Some(7));
    assert_eq!(bucket_tags(&s3, &name).await?.get("team").map(String::as_str), Some("platform"));
    assert!(s3.head_object().bucket(&name).key("a.json").send().await.is_ok(), "updated in place, objects kept");
    assert!(!h.plan(&bucket_stack(v2())).await?.has_changes());

    // Drift: versioning suspended, the lifecycle rule deleted, a tag changed behind our back.
    let suspended =
        aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Suspended).build();
    s3.put_bucket_versioning().bucket(&name).versioning_configuration(suspended).send().await?;
    s3.delete_bucket_lifecycle().bucket(&name).send().await?;
    assert!(!keeps_versions(&s3, &name, "b.json").await?, "suspended behind our back");
    let plan = h.plan(&bucket_stack(v2())).await?;
    let want = ["noncurrent_version_expiration_days", "versioning"].map(String::from).to_vec();
    assert_eq!(change(&plan, "state"), (Action::Update, want), "{}", plan.render(false));
    h.apply(&bucket_stack(v2())).await?;
    assert!(keeps_versions(&s3, &name, "c.json").await?, "versioning repaired");
    assert_eq!(noncurrent_days(&s3, &name).await?, Some(7));
    assert!(!h.plan(&bucket_stack(v2())).await?.has_changes());

    // In place: SSE-KMS with a customer key, read back; then the configuration deleted behind our back is
    // seen (S3 falls back to SSE-S3) and restored.
    let v3 = || v2().kms(Some("alias/ff-state".into()));
    let plan = h.plan(&bucket_stack(v3())).await?;
    assert_eq!(change(&plan, "state"), (Action::Update, vec!["encryption".to_string()]), "{}", plan.render(false));
    h.apply(&bucket_stack(v3())).await?;
    assert_eq!(sse_algorithm(&s3, &name).await?.as_deref(), Some("aws:kms"));
    assert_eq!(kms_key(&s3, &name).await?.as_deref(), Some("alias/ff-state"));
    assert!(!h.plan(&bucket_stack(v3())).await?.has_changes());
    s3.delete_bucket_encryption().bucket(&name).send().await?;
    let plan = h.plan(&bucket_stack(v3())).await?;
    assert_eq!(change(&plan, "state"), (Action::Update, vec!["encryption".to_string()]), "{}", plan.render(false));
    h.apply(&bucket_stack(v3())).await?;
    assert_eq!(kms_key(&s3, &name).await?.as_deref(), Some("alias/ff-state"));

    // Destroy empties it first (force_destroy): versions of three keys are there.
    h.destroy(&bucket_stack(v3())).await?;
    assert!(s3.head_bucket().bucket(&name).send().await.is_err());
    Ok(())
}

#[tokio::test]
async fn the_bootstrapped_state_bucket_holds_a_stacks_state() -> anyhow::Result<()> {
    use ferroform_aws::components::{state_bucket, STATE_NONCURRENT_VERSION_DAYS};
    let h = harness().await?;
    let s3 = aws_sdk_s3::Client::new(&h.account.config);
    let name = format!("ff-state-{}", h.account.id);
    let mut boot = Stack::new("bootstrap");
    let bucket = state_bucket(&mut boot, &name);
    boot.output("state_bucket", bucket.name());
    h.apply(&boot).await?;

    assert_eq!(sse_algorithm(&s3, &name).await?.as_deref(), Some("AES256"));
    assert!(all_blocked(&s3, &name).await?);
    assert_eq!(noncurrent_days(&s3, &name).await?, Some(STATE_NONCURRENT_VERSION_DAYS));
    assert!(!h.plan(&boot).await?.has_changes());

    // A stack keeps its state there: two applies, the latest state readable, the earlier one kept as a version.
    let url = format!("s3://{name}/stacks/teamwork.json");
    let e = engine(&h, &url)?;
    e.apply(&groups(1), &PlanOptions::default()).await?;
    e.apply(&groups(2), &PlanOptions::default()).await?;
    let got = s3.get_object().bucket(&name).key("stacks/teamwork.json").send().await?;
    let state = ferroform_core::State::parse(&got.body.collect().await?.into_bytes(), &url)?;
    assert_eq!(state.resources.len(), 2);
    let versions = s3.list_object_versions().bucket(&name).prefix("stacks/").send().await?;
    let of_state = versions.versions().iter().filter(|v| v.key() == Some("stacks/teamwork.json")).count();
    assert!(of_state >= 2, "versioning keeps the history: {of_state} version(s)");
    let keys: Vec<&str> = versions.versions().iter().filter(|v| v.is_latest() == Some(true)).filter_map(|v| v.key()).collect();
    assert_eq!(keys, ["stacks/teamwork.json"], "the lock is gone after the run");

    // The bucket is protected: destroying the bootstrap stack is refused and the bucket stays.
    let err = h.destroy(&boot).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("prevent_destroy"), "{err}");
    assert!(s3.head_bucket().bucket(&name).send().await.is_ok());
    Ok(())
}
