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

/// A lock as another run leaves it: its lease counts from the object's LastModified, on S3's clock (the
/// `expires` it also carries is never compared, so a far-off one changes nothing).
fn lock_body(id: &str, who: &str, lease: Duration) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&serde_json::json!({
        "id": id, "operation": "apply", "who": who, "host": "laptop", "pid": 4242,
        "created": "2026-01-01T00:00:00Z", "lease_ms": lease.as_millis() as u64, "expires": "2000-01-01T00:00:00Z"
    }))?)
}

#[tokio::test]
async fn a_stale_lock_is_taken_over_and_a_live_one_refused() -> anyhow::Result<()> {
    let h = harness().await?;
    let (url, bucket, s3) = s3_state(&h).await?;
    let key = "stacks/teamwork.json.lock";

    // A live holder (lease in the future) is refused with its name; force-unlock with its id removes it.
    let live = lock_body("lock-live", "alice", Duration::from_secs(3600))?;
    s3.put_object().bucket(&bucket).key(key).body(ByteStream::from(live)).send().await?;
    let e = engine(&h, &url)?;
    let err = e.apply(&groups(1), &PlanOptions::default()).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("alice@laptop") && err.contains("lock-live"), "{err}");
    assert!(e.force_unlock("wrong-id").await.is_err());
    e.force_unlock("lock-live").await?;
    e.apply(&groups(1), &PlanOptions::default()).await?;

    // A killed run's lock is taken over once its lease ran out by S3's clock (the engine waits for it).
    let stale = lock_body("lock-dead", "bob", Duration::from_secs(1))?;
    s3.put_object().bucket(&bucket).key(key).body(ByteStream::from(stale)).send().await?;
    engine(&h, &url)?.lock_timeout(Duration::from_secs(20)).apply(&groups(2), &PlanOptions::default()).await?;
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

/// An engine whose state is `url`, its S3 calls made with `config`.
fn engine_via(url: &str, config: &aws_types::SdkConfig) -> anyhow::Result<Engine> {
    let contexts = ferroform_core::Contexts::new();
    contexts.insert(Aws::from_config(config.clone()));
    Ok(Engine::new(Arc::new(S3Backend::from_url(url, contexts.clone())?)).contexts(contexts))
}

#[tokio::test]
async fn a_state_in_a_missing_bucket_is_an_error_and_nothing_is_planned() -> anyhow::Result<()> {
    let h = harness().await?;
    let bucket = format!("ff-missing-{}", h.account.id);
    let url = format!("s3://{bucket}/stacks/teamwork.json");
    let e = engine(&h, &url)?;
    for what in ["plan", "apply"] {
        let got = if what == "plan" {
            e.plan(&groups(2), &PlanOptions::default()).await.map(|_| ())
        } else {
            e.apply(&groups(2), &PlanOptions::default()).await.map(|_| ())
        };
        let err = got.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(&url) && err.contains("NoSuchBucket") && err.contains("does not exist"), "{what}: {err}");
    }
    // The command line: exit 1, the location named, no plan printed.
    let out = crate::child::command("base", &["plan", "--state", &url, "--no-color"], &h.account.env())?.output()?;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains(&url) && stderr.contains("NoSuchBucket"), "{stderr}");
    assert!(!stdout.contains("to add") && !stderr.contains("to add"), "nothing planned:\n{stdout}\n{stderr}");
    // Nothing was made: no log group, and the bucket was not created behind the user's back.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&h.account.config);
    assert!(logs.describe_log_groups().log_group_name_prefix("/ff/teamwork/").send().await?.log_groups().is_empty());
    let s3 = aws_sdk_s3::Client::new(&h.account.config);
    assert!(s3.head_bucket().bucket(&bucket).send().await.is_err());
    Ok(())
}

#[tokio::test]
async fn a_failed_state_read_is_an_error_not_an_empty_state() -> anyhow::Result<()> {
    use ferroform_testkit::proxy::{FaultProxy, Faults};
    let h = harness().await?;
    let (url, _, _) = s3_state(&h).await?;
    engine(&h, &url)?.apply(&groups(1), &PlanOptions::default()).await?;
    let proxy = FaultProxy::start(&h.account.endpoint, Faults::none()).await?;
    let e = engine_via(&url, &h.account.config_via(proxy.endpoint()))?;
    let faults = [
        ("throttled", Faults { rate: 1.0, throttle: true, ..Faults::none() }),
        ("dropped", Faults { rate: 1.0, drop_connection: true, ..Faults::none() }),
    ];
    for (what, f) in faults {
        proxy.set_faults(f);
        let err = e.plan(&groups(1), &PlanOptions::default()).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(&url) && err.contains("reading"), "{what}: {err}");
    }
    proxy.set_faults(Faults::none());
    assert!(!e.plan(&groups(1), &PlanOptions::default()).await?.has_changes(), "read again once S3 answers");
    Ok(())
}

#[tokio::test]
async fn state_writes_are_conditional_on_the_version_this_run_read() -> anyhow::Result<()> {
    let h = harness().await?;
    let (url, bucket, s3) = s3_state(&h).await?;
    let key = "stacks/teamwork.json";
    let current =
        || async { anyhow::Ok(s3.get_object().bucket(&bucket).key(key).send().await?.body.collect().await?.into_bytes().to_vec()) };
    let (a, b) = (S3Backend::from_url(&url, h.contexts.clone())?, S3Backend::from_url(&url, h.contexts.clone())?);

    // Both see no state; the first to write wins (If-None-Match: *), the other is refused.
    assert!(a.read().await?.is_none() && b.read().await?.is_none());
    b.write(b"from b").await?;
    let err = a.write(b"from a").await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("changed since this run read it"), "{err}");
    assert_eq!(current().await?, b"from b");

    // Having read b's version, a writes (If-Match), twice in a row; b, still on its own older version, is refused.
    assert_eq!(a.read().await?.as_deref(), Some(&b"from b"[..]));
    a.write(b"a 1").await?;
    a.write(b"a 2").await?;
    let err = b.write(b"b 2").await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("changed since this run read it"), "{err}");
    assert_eq!(current().await?, b"a 2");

    // A backend that never read expects no state: it does not overwrite one blind.
    let c = S3Backend::from_url(&url, h.contexts.clone())?;
    assert!(c.write(b"blind").await.is_err());
    assert_eq!(current().await?, b"a 2");
    Ok(())
}

#[tokio::test]
async fn a_holder_whose_lock_was_taken_stops_and_leaves_the_new_lock_alone() -> anyhow::Result<()> {
    let h = harness().await?;
    let (url, bucket, s3) = s3_state(&h).await?;
    let holder = S3Backend::from_url(&url, h.contexts.clone())?.lease(Duration::from_secs(2));
    let info = LockInfo::new("apply");
    holder.lock(&info).await?;
    assert!(holder.read().await?.is_none());
    holder.write(b"v1").await?;
    holder.check_held()?;

    // Another run breaks the lock and takes it.
    let other = S3Backend::from_url(&url, h.contexts.clone())?;
    other.force_unlock(&info.id).await?;
    let other_info = LockInfo::new("apply");
    other.lock(&other_info).await?;

    // The holder finds out at its next renewal (a third of its lease), then refuses steps and writes.
    let mut lost = None;
    for _ in 0..100 {
        if let Err(e) = holder.check_held() {
            lost = Some(e.to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lost = lost.unwrap_or_default();
    assert!(lost.contains("lost the state lock") && lost.contains("taken over"), "{lost}");
    let err = holder.write(b"v2 by the old holder").await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("lost the state lock"), "{err}");
    let got = s3.get_object().bucket(&bucket).key("stacks/teamwork.json").send().await?.body.collect().await?.into_bytes();
    assert_eq!(&got[..], b"v1");

    // Releasing leaves the new holder's lock in place.
    holder.unlock(&info.id).await?;
    let lock = s3.get_object().bucket(&bucket).key("stacks/teamwork.json.lock").send().await?.body.collect().await?.into_bytes();
    let body: serde_json::Value = serde_json::from_slice(&lock)?;
    assert_eq!(body["id"], other_info.id.as_str());
    other.unlock(&other_info.id).await?;
    assert!(s3.head_object().bucket(&bucket).key("stacks/teamwork.json.lock").send().await.is_err());
    Ok(())
}

/// Not only new steps and state writes: once the lease is lost, a step already running gets every mutating
/// AWS call refused before it is sent (the fence on the run's AWS clients); reads still pass.
#[tokio::test]
async fn a_lost_lease_fences_mutating_calls_of_steps_already_running() -> anyhow::Result<()> {
    let h = harness().await?;
    let (url, _bucket, _s3) = s3_state(&h).await?;
    let holder = S3Backend::from_url(&url, h.contexts.clone())?.lease(Duration::from_secs(2));
    let info = LockInfo::new("apply");
    holder.lock(&info).await?;
    let aws = h.contexts.get::<Aws>().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let logs = aws.logs();
    logs.create_log_group().log_group_name("/ff/before").send().await?;

    // Another process (its own AWS context) breaks the lock and takes it.
    let theirs = ferroform_core::Contexts::new();
    theirs.insert(Aws::from_config(h.account.config.clone()));
    let other = S3Backend::from_url(&url, theirs)?;
    other.force_unlock(&info.id).await?;
    let other_info = LockInfo::new("apply");
    other.lock(&other_info).await?;
    for _ in 0..100 {
        if holder.check_held().is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(holder.check_held().is_err(), "the holder noticed");

    let refused = logs.create_log_group().log_group_name("/ff/after").send().await;
    let err = refused.err().map(|e| format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&e))).unwrap_or_default();
    assert!(err.contains("CreateLogGroup refused") && err.contains("lost the state lock"), "{err}");
    logs.describe_log_groups().send().await?;
    // Independent read (a client without the fence): the call never reached the service.
    let plain = aws_sdk_cloudwatchlogs::Client::new(&h.account.config);
    let names: Vec<String> =
        plain.describe_log_groups().send().await?.log_groups().iter().filter_map(|g| g.log_group_name().map(str::to_string)).collect();
    assert_eq!(names, ["/ff/before"]);
    other.unlock(&other_info.id).await?;
    Ok(())
}

/// The stack of the frozen-run test, and the lease of every lock in it (the child's too, see `child.rs`).
pub const FENCED: &str = "fenced";
pub const TEST_LEASE: Duration = Duration::from_secs(3);

/// Two tables and a log group: a table's create ends waiting on DescribeTable, a read to freeze the run at
/// with nothing mutating left in that step.
#[cfg(feature = "all")]
pub fn build_fenced(s: &mut Stack) {
    use ferroform_aws::dynamodb::{AttrType, Table};
    for (address, name) in [("t1", "fenced-a"), ("t2", "fenced-b")] {
        s.add_with(address, Table::on_demand(name).hash_key("id", AttrType::S), ferroform_core::Options::new().prevent_destroy(false));
    }
    s.add("logs", LogGroup::new("/fenced/app").retention_days(7));
}

#[cfg(feature = "all")]
fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill").args([sig, &pid.to_string()]).status();
}

/// A child killed if the test ends early, so no stopped process outlives it (std never signals a child it
/// already reaped).
#[cfg(feature = "all")]
struct Reaped(std::process::Child);

#[cfg(feature = "all")]
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A run frozen (SIGSTOP) past its lease while a second run takes over and finishes: thawed, it makes no
/// mutating call, writes nothing and exits 1; the state is the second run's; one of each resource exists.
#[cfg(feature = "all")]
#[tokio::test]
async fn a_run_frozen_past_its_lease_writes_nothing_once_another_took_over() -> anyhow::Result<()> {
    use ferroform_testkit::proxy::{FaultProxy, Faults};
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let h = harness().await?;
    let (_, bucket, s3) = s3_state(&h).await?;
    let key = "stacks/fenced.json";
    let url = format!("s3://{bucket}/{key}");

    // The first run: the CLI in a child, through a proxy that freezes it at the first DescribeTable after a
    // CreateTable (the proxy still answers the call; the answer waits in the socket).
    let proxy = Arc::new(FaultProxy::start(&h.account.endpoint, Faults::none()).await?);
    let (pid, created, frozen) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    {
        let (pid, created, frozen) = (pid.clone(), created.clone(), frozen.clone());
        proxy.on_call(move |_, op| {
            if op.ends_with(".CreateTable") {
                created.store(true, Ordering::SeqCst);
            } else if op.ends_with(".DescribeTable") && created.load(Ordering::SeqCst) && !frozen.swap(true, Ordering::SeqCst) {
                signal(pid.load(Ordering::SeqCst), "-STOP");
            }
        });
    }
    let log = h.dir.path().join("frozen.log");
    let args = ["apply", "--auto-approve", "--state", &url, "--no-color", "--parallelism", "1"];
    let mut child = Reaped(
        crate::child::command("fenced", &args, &crate::child::env_via(&h.account, proxy.endpoint()))?
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?,
    );
    let child = &mut child.0;
    pid.store(child.id(), Ordering::SeqCst);
    for _ in 0..1200 {
        if frozen.load(Ordering::SeqCst) {
            break;
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the first run ended before it was frozen ({status}):\n{}", std::fs::read_to_string(&log)?);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(frozen.load(Ordering::SeqCst), "the first run never reached a table's DescribeTable");

    // The second run waits out the frozen run's lease (on S3's clock), takes over, adopts and finishes.
    let backend = S3Backend::from_url(&url, h.contexts.clone())?.lease(TEST_LEASE);
    let second = Engine::new(Arc::new(backend)).contexts(h.contexts.clone()).lock_timeout(Duration::from_secs(20));
    let mut stack = Stack::new(FENCED);
    build_fenced(&mut stack);
    let second_result = second.apply(&stack, &PlanOptions::default()).await;
    let second_state = match second_result {
        Ok((_, state)) => state,
        Err(e) => anyhow::bail!("the second run failed: {e}"),
    };
    let before = s3.get_object().bucket(&bucket).key(key).send().await?;
    let before_etag = before.e_tag().unwrap_or_default().to_string();

    // Thawed, the first run finds its lease gone: no mutating call, no write, exit 1.
    proxy.reset();
    signal(child.id(), "-CONT");
    let mut status = None;
    for _ in 0..1200 {
        if let Some(s) = child.try_wait()? {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(status) = status else { anyhow::bail!("the thawed run did not end:\n{}", std::fs::read_to_string(&log)?) };
    let stderr = std::fs::read_to_string(&log)?;
    eprintln!("the thawed run ({status}) said:\n{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lost the state lock"), "{stderr}");
    assert_eq!(proxy.mutating_calls(), Vec::<String>::new(), "calls after the thaw: {:?}", proxy.calls());

    // The state is the second run's, untouched since; no lock is left.
    let after = s3.get_object().bucket(&bucket).key(key).send().await?;
    assert_eq!(after.e_tag().unwrap_or_default(), before_etag);
    let state = ferroform_core::State::parse(&after.body.collect().await?.into_bytes(), &url)?;
    assert_eq!(state, second_state);
    assert!(s3.head_object().bucket(&bucket).key(format!("{key}.lock")).send().await.is_err());

    // Exactly one of each resource, each the one in state.
    let ddb = aws_sdk_dynamodb::Client::new(&h.account.config);
    let mut tables = ddb.list_tables().send().await?.table_names().to_vec();
    tables.sort();
    assert_eq!(tables, ["fenced-a", "fenced-b"]);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&h.account.config);
    let groups = logs.describe_log_groups().log_group_name_prefix("/fenced/").send().await?;
    assert_eq!(groups.log_groups().iter().filter_map(|g| g.log_group_name()).collect::<Vec<_>>(), ["/fenced/app"]);
    let ids: Vec<(&str, Option<&str>)> = state.resources.iter().map(|(a, r)| (a.as_str(), r.id.as_deref())).collect();
    assert_eq!(ids, [("logs", Some("/fenced/app")), ("t1", Some("fenced-a")), ("t2", Some("fenced-b"))]);
    assert!(state.resources.values().all(|r| r.status == ferroform_core::state::Status::Ready));
    assert!(!second.plan(&stack, &PlanOptions::default()).await?.has_changes());
    Ok(())
}

#[tokio::test]
async fn removed_bucket_settings_go_back_to_s3s_defaults() -> anyhow::Result<()> {
    use ferroform_aws::s3::Bucket;
    use ferroform_core::Action;
    let h = harness().await?;
    let s3 = aws_sdk_s3::Client::new(&h.account.config);
    let name = format!("ff-defaults-{}", h.account.id);
    let set = || {
        Bucket::for_state(&name)
            .expire_noncurrent_versions_after(30)
            .kms(Some("alias/ff-state".into()))
            .force_destroy(true)
            .tag("team", "infra")
    };
    h.apply(&bucket_stack(set())).await?;
    assert_eq!(noncurrent_days(&s3, &name).await?, Some(30));
    assert_eq!(sse_algorithm(&s3, &name).await?.as_deref(), Some("aws:kms"));
    assert_eq!(bucket_tags(&s3, &name).await?.get("team").map(String::as_str), Some("infra"));

    // Every optional setting removed from the code: each is planned back to its default.
    let bare = || Bucket::for_state(&name);
    let plan = h.plan(&bucket_stack(bare())).await?;
    let (action, mut fields) = change(&plan, "state");
    fields.dedup();
    let want = ["encryption", "force_destroy", "noncurrent_version_expiration_days", "tags"].map(String::from).to_vec();
    assert_eq!((action, fields), (Action::Update, want), "{}", plan.render(false));
    h.apply(&bucket_stack(bare())).await?;

    // Read back: no lifecycle configuration, SSE-S3, only the engine's tags.
    assert_eq!(noncurrent_days(&s3, &name).await?, None);
    assert_eq!(sse_algorithm(&s3, &name).await?.as_deref(), Some("AES256"));
    assert_eq!(kms_key(&s3, &name).await?, None);
    let tags = bucket_tags(&s3, &name).await?;
    assert!(!tags.contains_key("team") && tags.contains_key("ferroform:address"), "{tags:?}");
    let plan = h.plan(&bucket_stack(bare())).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));

    h.destroy(&bucket_stack(bare())).await?;
    assert!(s3.head_bucket().bucket(&name).send().await.is_err());
    Ok(())
}
