//! S3: the state bucket resource, and state kept in S3 with its lock, against the emulator.

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
