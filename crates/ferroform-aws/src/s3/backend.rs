//! State in S3, for teams: `--state s3://bucket/key`.
//!
//! A PUT is all-or-nothing, so a half-written object is never read as state; bucket versioning keeps the
//! history. Only a missing key in an existing bucket means "no state yet": a missing bucket, a refusal, a
//! throttled or failed read is an error, never an empty state to plan from.
//!
//! The lock is a separate object, `<key>.lock`, created with `If-None-Match: *` (of concurrent creators
//! exactly one wins) and holding who/where/what and the holder's lease length. It is fenced:
//! - every state write is conditional on the version this run last read or wrote (`If-Match` on its ETag,
//!   `If-None-Match: *` for a key that did not exist), so a run whose lock was taken over cannot overwrite
//!   the new holder's state;
//! - the holder measures its lease from the *sending* of its last successful lock write, on its own clocks
//!   (monotonic, and wall time too, which also counts a suspended machine); once the lease may have run out
//!   it starts no step and writes nothing (`check_held`), and that is for good. Renewal retries with backoff
//!   while the lease lasts;
//! - a taker judges a lease on S3's clock alone: the lock's `LastModified` plus the holder's lease against
//!   the `Date` of S3's answer, one second of slack for their one-second resolution. So the holder always
//!   stops before anyone may take over, whatever the two machines' clocks say. The takeover replaces the
//!   lock with `If-Match` on the ETag it judged, so of two takers one wins.
//!
//! What fencing cannot cover: a cloud call already sent when the lease runs out still lands.

use crate::error::sdk;
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use ferroform_core::{Backend, Contexts, Error, LockInfo, ProviderError, Result};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// `LastModified` and `Date` have one-second resolution: a taker waits this much more.
const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// The lock object's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseBody {
    #[serde(flatten)]
    info: LockInfo,
    /// The holder's lease: a taker adds it to the lock's `LastModified`. Absent in locks of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease_ms: Option<u64>,
    /// Counts the holder's writes: an ETag is a digest of the body, so a renewal must change the body, or a
    /// taker's `If-Match` would still match after the holder renewed.
    #[serde(default)]
    renewal: u64,
    /// RFC 3339, on the holder's clock: for people reading the object, never compared.
    expires: String,
}

/// The version of the state object this run last read or wrote: the condition of its next write.
#[derive(Debug, Clone)]
enum Seen {
    Absent,
    ETag(String),
}

/// The lock this run holds.
struct Lease {
    info: LockInfo,
    etag: String,
    renewal: u64,
    /// When the last successful lock write was sent, on both local clocks.
    sent: Instant,
    sent_wall: SystemTime,
    /// Why the lease is lost; once lost, never held again.
    lost: Option<String>,
    /// Unlocked: the run is over, the fence on mutating calls lifts.
    released: bool,
}

impl Lease {
    fn new(info: &LockInfo, etag: String, sent: (Instant, SystemTime)) -> Self {
        Self { info: info.clone(), etag, renewal: 0, sent: sent.0, sent_wall: sent.1, lost: None, released: false }
    }

    /// `Err(why)` once the lease may have run out or was taken.
    fn check(&mut self, length: Duration) -> std::result::Result<(), String> {
        if let Some(why) = &self.lost {
            return Err(why.clone());
        }
        let wall = self.sent_wall.elapsed().unwrap_or_default();
        let elapsed = self.sent.elapsed().max(wall);
        if elapsed >= length {
            let why = format!(
                "this run lost the state lock: its lease of {length:?} ran out {elapsed:.1?} after the last successful renewal \
                 (the process was paused or suspended, or S3 was out of reach); another run may hold the lock now, so this \
                 run starts nothing more and writes no state. Run again: it continues from the state the lock's holder leaves"
            );
            self.lost = Some(why.clone());
            return Err(why);
        }
        Ok(())
    }

    fn lose(&mut self, why: String) {
        if self.lost.is_none() {
            tracing::warn!("{why}");
            self.lost = Some(why);
        }
    }
}

struct Held {
    lease: Arc<Mutex<Lease>>,
    renewer: tokio::task::JoinHandle<()>,
}

/// The lock object as S3 holds it, with S3's own time of the answer.
struct LockObject {
    body: LeaseBody,
    etag: String,
    last_modified: Option<SystemTime>,
    server_now: Option<SystemTime>,
}

impl LockObject {
    /// Judged on S3's clock only; without S3's time a holder is never presumed dead.
    fn lease_over(&self, default_lease: Duration) -> bool {
        let lease = self.body.lease_ms.map(Duration::from_millis).unwrap_or(default_lease);
        match (self.last_modified, self.server_now) {
            (Some(written), Some(now)) => now >= written + lease + CLOCK_SLACK,
            _ => false,
        }
    }
}

/// Keeps the `Date` header of a response: S3's time.
#[derive(Debug, Clone, Default)]
struct ServerDate(Arc<Mutex<Option<String>>>);

impl ServerDate {
    fn get(&self) -> Option<SystemTime> {
        let text = self.0.lock().ok()?.clone()?;
        let t = aws_smithy_types::DateTime::from_str(&text, aws_smithy_types::date_time::Format::HttpDate).ok()?;
        SystemTime::try_from(t).ok()
    }
}

impl Intercept for ServerDate {
    fn name(&self) -> &'static str {
        "ServerDate"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        if let (Some(date), Ok(mut slot)) = (context.response().headers().get("date"), self.0.lock()) {
            *slot = Some(date.to_string());
        }
        Ok(())
    }
}

pub struct S3Backend {
    contexts: Contexts,
    bucket: String,
    key: String,
    lease: Duration,
    held: Mutex<Option<Held>>,
    seen: Mutex<Option<Seen>>,
}

impl S3Backend {
    /// `s3://bucket/path/to/state.json`; the AWS context comes from `contexts` (built on first use).
    pub fn from_url(url: &str, contexts: Contexts) -> Result<Self> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| Error::Usage(format!("`{url}` is not an s3://bucket/key location")))?;
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| Error::Usage(format!("`{url}` needs a bucket and a key: s3://bucket/path/state.json")))?;
        Ok(Self {
            contexts,
            bucket: bucket.to_string(),
            key: key.to_string(),
            lease: Duration::from_secs(30),
            held: Mutex::new(None),
            seen: Mutex::new(None),
        })
    }

    /// How long a lock lives without renewal (default 30 s; renewed every third of it).
    pub fn lease(mut self, d: Duration) -> Self {
        self.lease = d;
        self
    }

    fn lock_key(&self) -> String {
        format!("{}.lock", self.key)
    }

    async fn client(&self) -> Result<aws_sdk_s3::Client> {
        let aws = self.contexts.get::<Aws>().await.map_err(|e| self.err("connecting", e))?;
        Ok(aws.s3())
    }

    fn err(&self, what: &str, mut e: ProviderError) -> Error {
        if e.hint.is_none() {
            e.hint = match e.code.as_deref() {
                Some("NoSuchBucket") => {
                    Some(format!("the bucket `{}` does not exist: check its name and the account, or create it first", self.bucket))
                }
                Some("AccessDenied" | "AllAccessDisabled" | "Forbidden") => Some(
                    "the credentials need s3:GetObject and s3:PutObject on the key and its `.lock`, s3:DeleteObject on the \
                     `.lock`, and s3:ListBucket on the bucket (without it S3 answers AccessDenied for a key that does not exist yet)"
                        .into(),
                ),
                _ => None,
            };
        }
        Error::state(self.location(), format!("{what}: {e}"))
    }

    fn body(&self, info: &LockInfo, renewal: u64) -> Result<Vec<u8>> {
        lease_body(info, self.lease, renewal).map_err(|e| Error::state(self.location(), e))
    }

    fn set_seen(&self, seen: Seen) {
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(seen);
        }
    }

    /// The current lock object, or `None` when there is none.
    async fn lock_object(&self, s3: &aws_sdk_s3::Client) -> Result<Option<LockObject>> {
        read_lock(s3, &self.bucket, &self.lock_key()).await.map_err(|e| match e {
            LockReadError::Call(e) => self.err("reading the lock", e),
            LockReadError::Body(m) => Error::state(self.location(), m),
        })
    }

    /// Holds the lock just written (sent at `sent`) and keeps renewing it.
    /// Every mutating AWS call of this run is fenced by the lease too: a step already running when the
    /// lease may have run out makes no further change.
    async fn hold(&self, s3: aws_sdk_s3::Client, info: &LockInfo, etag: String, sent: (Instant, SystemTime)) {
        let lease = Arc::new(Mutex::new(Lease::new(info, etag, sent)));
        let renewer = tokio::spawn(renew_while_held(s3, self.bucket.clone(), self.lock_key(), self.lease, lease.clone()));
        if let Ok(aws) = self.contexts.get::<Aws>().await {
            let (fenced, length) = (lease.clone(), self.lease);
            aws.set_fence(Arc::new(move || {
                let mut l = fenced.lock().map_err(|_| "the lock's lease record is poisoned".to_string())?;
                if l.released {
                    return Ok(());
                }
                l.check(length)
            }));
        }
        if let Ok(mut held) = self.held.lock() {
            if let Some(old) = held.replace(Held { lease, renewer }) {
                old.renewer.abort();
            }
        }
    }

    /// Deletes the lock object if it is still the version `etag` (or, after a lost answer, still `id`'s).
    async fn delete_lock(&self, s3: &aws_sdk_s3::Client, id: &str, etag: &str) -> Result<()> {
        let mut etag = etag.to_string();
        for _ in 0..2 {
            match s3.delete_object().bucket(&self.bucket).key(self.lock_key()).if_match(&etag).send().await.map_err(sdk) {
                Ok(_) => return Ok(()),
                Err(e) if is_no_such_key(&e) => return Ok(()),
                Err(e) if is_precondition_failed(&e) => match self.lock_object(s3).await? {
                    // A renewal answered too late moved the ETag: still ours, so delete that version.
                    Some(obj) if obj.body.info.id == id => etag = obj.etag,
                    // Someone else's now: theirs to release.
                    _ => return Ok(()),
                },
                Err(e) => return Err(self.err("releasing the lock", e)),
            }
        }
        Ok(())
    }

    /// The state object as it is now: ETag and bytes.
    async fn read_current(&self, s3: &aws_sdk_s3::Client) -> Result<Option<(String, Vec<u8>)>> {
        let out = match s3.get_object().bucket(&self.bucket).key(&self.key).send().await.map_err(sdk) {
            Ok(out) => out,
            Err(e) if is_no_such_key(&e) => return Ok(None),
            Err(e) => return Err(self.err("reading", e)),
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let bytes = out.body.collect().await.map_err(|e| Error::state(self.location(), format!("reading: {e}")))?;
        Ok(Some((etag, bytes.into_bytes().to_vec())))
    }
}

fn lease_body(info: &LockInfo, lease: Duration, renewal: u64) -> std::result::Result<Vec<u8>, String> {
    let expires = (chrono::Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default()).to_rfc3339();
    let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
    serde_json::to_vec(&LeaseBody { info: info.clone(), lease_ms: Some(lease_ms), renewal, expires }).map_err(|e| e.to_string())
}

enum LockReadError {
    Call(ProviderError),
    Body(String),
}

async fn read_lock(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> std::result::Result<Option<LockObject>, LockReadError> {
    let date = ServerDate::default();
    let out = match s3.get_object().bucket(bucket).key(key).customize().interceptor(date.clone()).send().await.map_err(sdk) {
        Ok(out) => out,
        Err(e) if is_no_such_key(&e) => return Ok(None),
        Err(e) => return Err(LockReadError::Call(e)),
    };
    let etag = out.e_tag().unwrap_or_default().to_string();
    let last_modified = out.last_modified().and_then(|t| SystemTime::try_from(*t).ok());
    let bytes = out.body.collect().await.map_err(|e| LockReadError::Body(format!("reading the lock: {e}")))?.into_bytes();
    let body: LeaseBody =
        serde_json::from_slice(&bytes).map_err(|e| LockReadError::Body(format!("the lock object {key} is not a ferroform lock ({e})")))?;
    Ok(Some(LockObject { body, etag, last_modified, server_now: date.get() }))
}

/// Renews the lease every third of it until it is lost (or the task is aborted on unlock).
async fn renew_while_held(s3: aws_sdk_s3::Client, bucket: String, key: String, length: Duration, lease: Arc<Mutex<Lease>>) {
    loop {
        tokio::time::sleep(length / 3).await;
        if !renew(&s3, &bucket, &key, length, &lease).await {
            return;
        }
    }
}

/// One renewal, retried with backoff while the lease lasts. False once the lease is lost.
async fn renew(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, length: Duration, lease: &Mutex<Lease>) -> bool {
    let mut delay = Duration::from_millis(100);
    loop {
        let (id, etag, body, left) = {
            let Ok(mut l) = lease.lock() else { return false };
            // Past the lease nothing is sent: the lock may be someone else's by now.
            if let Err(why) = l.check(length) {
                tracing::warn!("{why}");
                return false;
            }
            l.renewal += 1;
            let left = length.saturating_sub(l.sent.elapsed());
            (l.info.id.clone(), l.etag.clone(), lease_body(&l.info, length, l.renewal), left)
        };
        let Ok(body) = body else { return false };
        let sent = (Instant::now(), SystemTime::now());
        let put = s3.put_object().bucket(bucket).key(key).if_match(&etag).body(ByteStream::from(body)).send();
        let failure = match tokio::time::timeout(left, put).await {
            Ok(Ok(out)) => {
                if let Ok(mut l) = lease.lock() {
                    l.etag = out.e_tag().unwrap_or_default().to_string();
                    (l.sent, l.sent_wall) = sent;
                }
                return true;
            }
            Ok(Err(e)) => sdk(e),
            Err(_) => ProviderError { code: None, message: format!("no answer within the {left:?} left of the lease"), hint: None },
        };
        if is_precondition_failed(&failure) || is_no_such_key(&failure) {
            match read_lock(s3, bucket, key).await {
                // An earlier attempt landed but its answer was lost: only the ETag moved. The lease still
                // counts from the last answered write.
                Ok(Some(obj)) if obj.body.info.id == id => {
                    if let Ok(mut l) = lease.lock() {
                        l.etag = obj.etag;
                    }
                }
                Ok(_) => {
                    if let Ok(mut l) = lease.lock() {
                        l.lose(format!(
                            "this run lost the state lock s3://{bucket}/{key}: it was taken over or removed (force-unlock) while \
                             this run held it; this run starts nothing more and writes no state"
                        ));
                    }
                    return false;
                }
                Err(_) => {}
            }
        } else {
            tracing::warn!("renewing the state lock s3://{bucket}/{key} failed, retrying: {failure}");
        }
        let left = lease.lock().map(|l| length.saturating_sub(l.sent.elapsed())).unwrap_or_default();
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

fn is_precondition_failed(e: &ProviderError) -> bool {
    matches!(e.code.as_deref(), Some("PreconditionFailed" | "ConditionalRequestConflict"))
}

/// The key is missing (in a bucket that exists: a missing bucket is `NoSuchBucket`).
fn is_no_such_key(e: &ProviderError) -> bool {
    matches!(e.code.as_deref(), Some("NoSuchKey"))
}

#[async_trait]
impl Backend for S3Backend {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    async fn read(&self) -> Result<Option<Vec<u8>>> {
        let s3 = self.client().await?;
        let out = match s3.get_object().bucket(&self.bucket).key(&self.key).send().await.map_err(sdk) {
            Ok(out) => out,
            Err(e) if is_no_such_key(&e) => {
                self.set_seen(Seen::Absent);
                return Ok(None);
            }
            Err(e) => return Err(self.err("reading (nothing was planned: an unreadable state is never taken for an empty one)", e)),
        };
        let etag = out.e_tag().map(str::to_string);
        let bytes = out.body.collect().await.map_err(|e| Error::state(self.location(), format!("reading: {e}")))?;
        let Some(etag) = etag else {
            return Err(Error::state(self.location(), "S3 answered without an ETag: writes could not be made conditional on it"));
        };
        self.set_seen(Seen::ETag(etag));
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn write(&self, bytes: &[u8]) -> Result<()> {
        self.check_held()?;
        let s3 = self.client().await?;
        // Never read: expect no state, so an existing one is never overwritten blind.
        let seen = self.seen.lock().ok().and_then(|s| s.clone()).unwrap_or(Seen::Absent);
        let put = s3
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(bytes.to_vec()));
        let put = match &seen {
            Seen::Absent => put.if_none_match("*"),
            Seen::ETag(etag) => put.if_match(etag),
        };
        match put.send().await.map_err(sdk) {
            Ok(out) => {
                if let Some(etag) = out.e_tag() {
                    self.set_seen(Seen::ETag(etag.to_string()));
                }
                Ok(())
            }
            Err(e) if is_precondition_failed(&e) || is_no_such_key(&e) => {
                // Our own write may have landed with its answer lost (the SDK then retries): then the object
                // is exactly these bytes.
                if let Ok(Some(now)) = self.read_current(&s3).await {
                    if now.1 == bytes {
                        self.set_seen(Seen::ETag(now.0));
                        return Ok(());
                    }
                }
                Err(Error::state(
                    self.location(),
                    format!(
                        "not written: the state changed since this run read it ({e}); another run wrote it, so this run's lock \
                         was lost or bypassed. Nothing was overwritten; run again to plan from the current state"
                    ),
                ))
            }
            Err(e) => Err(self.err("writing", e)),
        }
    }

    async fn lock(&self, info: &LockInfo) -> Result<()> {
        let s3 = self.client().await?;
        // A lock released between our calls sends us round again; a few rounds at most.
        for _ in 0..3 {
            let sent = (Instant::now(), SystemTime::now());
            let created = s3
                .put_object()
                .bucket(&self.bucket)
                .key(self.lock_key())
                .if_none_match("*")
                .body(ByteStream::from(self.body(info, 0)?))
                .send()
                .await
                .map_err(sdk);
            match created {
                Ok(out) => {
                    self.hold(s3, info, out.e_tag().unwrap_or_default().to_string(), sent).await;
                    return Ok(());
                }
                Err(e) if is_precondition_failed(&e) => {}
                Err(e) => return Err(self.err("taking the lock", e)),
            }
            let Some(holder) = self.lock_object(&s3).await? else { continue };
            if !holder.lease_over(self.lease) {
                return Err(Error::Locked { location: self.location(), holder: holder.body.info.describe(), lock_id: holder.body.info.id });
            }
            // A lease nobody renewed, by S3's clock: its run is gone or cut off (and stops by its own clock).
            // Only one taker can replace that exact version.
            let sent = (Instant::now(), SystemTime::now());
            let taken = s3
                .put_object()
                .bucket(&self.bucket)
                .key(self.lock_key())
                .if_match(&holder.etag)
                .body(ByteStream::from(self.body(info, 0)?))
                .send()
                .await
                .map_err(sdk);
            match taken {
                Ok(out) => {
                    eprintln!("note: took over the state lock of a run whose lease ran out: {}", holder.body.info.describe());
                    self.hold(s3, info, out.e_tag().unwrap_or_default().to_string(), sent).await;
                    return Ok(());
                }
                Err(e) if is_precondition_failed(&e) || is_no_such_key(&e) => {
                    let now = self.lock_object(&s3).await?.map(|o| o.body.info);
                    let (holder, lock_id) = now.map(|i| (i.describe(), i.id)).unwrap_or_else(|| ("another run".into(), String::new()));
                    return Err(Error::Locked { location: self.location(), holder, lock_id });
                }
                Err(e) => return Err(self.err("taking over the stale lock", e)),
            }
        }
        Err(Error::Locked { location: self.location(), holder: "other runs taking and releasing it".into(), lock_id: String::new() })
    }

    async fn unlock(&self, id: &str) -> Result<()> {
        let Some(held) = self.held.lock().ok().and_then(|mut h| h.take()) else { return Ok(()) };
        held.renewer.abort();
        let (ours, etag, lost) = {
            let Ok(mut l) = held.lease.lock() else { return Ok(()) };
            let lost = l.check(self.lease).is_err();
            l.released = true;
            (l.info.id == id, l.etag.clone(), lost)
        };
        // A lost lease may be someone else's lock now: leave it (a stale lock expires on S3's clock).
        if !ours || lost {
            return Ok(());
        }
        let s3 = self.client().await?;
        self.delete_lock(&s3, id, &etag).await
    }

    async fn force_unlock(&self, id: &str) -> Result<()> {
        let s3 = self.client().await?;
        match self.lock_object(&s3).await? {
            Some(obj) if obj.body.info.id == id => self.delete_lock(&s3, id, &obj.etag).await,
            Some(obj) => Err(Error::Usage(format!("the lock is held by {}, not lock id {id}", obj.body.info.describe()))),
            None => Err(Error::Usage(format!("{} is not locked", self.location()))),
        }
    }

    fn check_held(&self) -> Result<()> {
        let Some(lease) = self.held.lock().ok().and_then(|h| h.as_ref().map(|h| h.lease.clone())) else { return Ok(()) };
        let mut l = lease.lock().map_err(|_| Error::state(self.location(), "the lock's lease record is poisoned"))?;
        l.check(self.lease).map_err(|why| Error::state(self.location(), why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(lease_ms: Option<u64>, written: u64, now: u64) -> LockObject {
        let body = LeaseBody { info: LockInfo::new("apply"), lease_ms, renewal: 0, expires: "2000-01-01T00:00:00Z".into() };
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        LockObject { body, etag: "\"e\"".into(), last_modified: Some(at(written)), server_now: Some(at(now)) }
    }

    #[test]
    fn a_lease_is_over_on_s3s_clock_only_past_lease_and_slack() {
        // Written at 100 with a 10 s lease: live until 111 by S3's clock (one second of slack for resolution).
        assert!(!lock(Some(10_000), 100, 110).lease_over(Duration::from_secs(30)));
        assert!(lock(Some(10_000), 100, 111).lease_over(Duration::from_secs(30)));
        // An older lock without its lease gets ours.
        assert!(!lock(None, 100, 120).lease_over(Duration::from_secs(30)));
        assert!(lock(None, 100, 131).lease_over(Duration::from_secs(30)));
        // Without S3's time, never presumed dead.
        let mut l = lock(Some(1), 100, 1000);
        l.server_now = None;
        assert!(!l.lease_over(Duration::from_secs(1)));
    }

    #[test]
    fn a_lock_of_an_older_version_still_reads() {
        let old = r#"{"id":"x","operation":"apply","who":"a","host":"h","pid":1,"created":"c","expires":"2026-01-01T00:00:00Z"}"#;
        let body: LeaseBody = serde_json::from_str(old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((body.info.id.as_str(), body.lease_ms, body.renewal), ("x", None, 0));
    }

    #[test]
    fn renewals_change_the_body_so_its_etag() {
        let info = LockInfo::new("apply");
        let (a, b) = (lease_body(&info, Duration::from_secs(2), 1), lease_body(&info, Duration::from_secs(2), 2));
        assert_ne!(a, b);
    }

    #[test]
    fn a_lease_past_its_length_is_lost_for_good() {
        let sent = Instant::now().checked_sub(Duration::from_secs(3)).unwrap_or_else(Instant::now);
        let mut lease = Lease::new(&LockInfo::new("apply"), "e".into(), (sent, SystemTime::now()));
        assert!(lease.check(Duration::from_secs(10)).is_ok());
        let why = lease.check(Duration::from_secs(2)).err().unwrap_or_default();
        assert!(why.contains("lost the state lock"), "{why}");
        // Lost stays lost, whatever length is asked later.
        assert!(lease.check(Duration::from_secs(10)).is_err());
        // The wall clock alone (a suspended machine: the monotonic clock stood still) loses it too.
        let wall = SystemTime::now() - Duration::from_secs(3);
        let mut lease = Lease::new(&LockInfo::new("apply"), "e".into(), (Instant::now(), wall));
        assert!(lease.check(Duration::from_secs(2)).is_err());
    }
}
