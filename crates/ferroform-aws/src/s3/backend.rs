//! State in S3, for teams: `--state s3://bucket/key`.
//!
//! A PUT is all-or-nothing, so a half-written object is never read as state; bucket versioning keeps the
//! history. The lock is a separate object, `<key>.lock`, created with `If-None-Match: *` (exactly one
//! concurrent creator wins) and holding who/where/what and a lease expiry. A live holder renews the lease;
//! a lock whose lease ran out belongs to a run that died and is taken over with `If-Match` on its ETag, so
//! two runs racing to take over a stale lock cannot both win.

use crate::error::{absent_if_not_found, sdk};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use ferroform_core::{Backend, Contexts, Error, LockInfo, Result};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Duration;

/// The lock object's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseBody {
    #[serde(flatten)]
    info: LockInfo,
    /// RFC 3339; past it, the holder is presumed dead.
    expires: String,
}

struct Held {
    id: String,
    renewer: tokio::task::JoinHandle<()>,
}

pub struct S3Backend {
    contexts: Contexts,
    bucket: String,
    key: String,
    lease: Duration,
    held: Mutex<Option<Held>>,
}

impl S3Backend {
    /// `s3://bucket/path/to/state.json`; the AWS context comes from `contexts` (built on first use).
    pub fn from_url(url: &str, contexts: Contexts) -> Result<Self> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| Error::Usage(format!("`{url}` is not an s3://bucket/key location")))?;
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| Error::Usage(format!("`{url}` needs a bucket and a key: s3://bucket/path/state.json")))?;
        Ok(Self { contexts, bucket: bucket.to_string(), key: key.to_string(), lease: Duration::from_secs(30), held: Mutex::new(None) })
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

    fn err(&self, what: &str, e: ferroform_core::ProviderError) -> Error {
        Error::state(self.location(), format!("{what}: {e}"))
    }

    fn body(&self, info: &LockInfo) -> Result<Vec<u8>> {
        let expires = (chrono::Utc::now() + chrono::Duration::from_std(self.lease).unwrap_or_default()).to_rfc3339();
        serde_json::to_vec(&LeaseBody { info: info.clone(), expires }).map_err(|e| Error::state(self.location(), e.to_string()))
    }

    /// The current lock object: body and ETag.
    async fn current_lock(&self, s3: &aws_sdk_s3::Client) -> Result<Option<(LeaseBody, String)>> {
        let got = absent_if_not_found(s3.get_object().bucket(&self.bucket).key(self.lock_key()).send().await.map_err(sdk))
            .map_err(|e| self.err("reading the lock", e))?;
        let Some(out) = got else { return Ok(None) };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let bytes = out.body.collect().await.map_err(|e| Error::state(self.location(), format!("reading the lock: {e}")))?.into_bytes();
        let body: LeaseBody = serde_json::from_slice(&bytes)
            .map_err(|e| Error::state(self.location(), format!("the lock object {} is not a ferroform lock ({e})", self.lock_key())))?;
        Ok(Some((body, etag)))
    }

    fn start_renewing(&self, s3: aws_sdk_s3::Client, info: LockInfo, mut etag: String) -> tokio::task::JoinHandle<()> {
        let (bucket, key, lease) = (self.bucket.clone(), self.lock_key(), self.lease);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let expires = (chrono::Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default()).to_rfc3339();
                let Ok(body) = serde_json::to_vec(&LeaseBody { info: info.clone(), expires }) else { return };
                match s3.put_object().bucket(&bucket).key(&key).if_match(&etag).body(ByteStream::from(body)).send().await {
                    Ok(out) => etag = out.e_tag().unwrap_or_default().to_string(),
                    Err(e) => {
                        // Someone force-unlocked or took over: stop claiming it.
                        tracing::warn!("lost the state lock lease: {}", sdk(e));
                        return;
                    }
                }
            }
        })
    }

    fn remember(&self, id: &str, renewer: tokio::task::JoinHandle<()>) {
        if let Ok(mut held) = self.held.lock() {
            *held = Some(Held { id: id.to_string(), renewer });
        }
    }
}

fn is_precondition_failed(e: &ferroform_core::ProviderError) -> bool {
    matches!(e.code.as_deref(), Some("PreconditionFailed" | "ConditionalRequestConflict"))
}

#[async_trait]
impl Backend for S3Backend {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    async fn read(&self) -> Result<Option<Vec<u8>>> {
        let s3 = self.client().await?;
        let got = absent_if_not_found(s3.get_object().bucket(&self.bucket).key(&self.key).send().await.map_err(sdk))
            .map_err(|e| self.err("reading", e))?;
        let Some(out) = got else { return Ok(None) };
        let bytes = out.body.collect().await.map_err(|e| Error::state(self.location(), format!("reading: {e}")))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn write(&self, bytes: &[u8]) -> Result<()> {
        let s3 = self.client().await?;
        s3.put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .map_err(|e| self.err("writing", sdk(e)))?;
        Ok(())
    }

    async fn lock(&self, info: &LockInfo) -> Result<()> {
        let s3 = self.client().await?;
        let created = s3
            .put_object()
            .bucket(&self.bucket)
            .key(self.lock_key())
            .if_none_match("*")
            .body(ByteStream::from(self.body(info)?))
            .send()
            .await
            .map_err(sdk);
        match created {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                let renewer = self.start_renewing(s3, info.clone(), etag);
                self.remember(&info.id, renewer);
                return Ok(());
            }
            Err(e) if is_precondition_failed(&e) => {}
            Err(e) => return Err(self.err("taking the lock", e)),
        }
        let Some((holder, etag)) = self.current_lock(&s3).await? else {
            // Released between our two calls: try once more from the start.
            return Box::pin(self.lock(info)).await;
        };
        let expired = chrono::DateTime::parse_from_rfc3339(&holder.expires).map(|t| t < chrono::Utc::now()).unwrap_or(true);
        if !expired {
            return Err(Error::Locked { location: self.location(), holder: holder.info.describe(), lock_id: holder.info.id });
        }
        // A lease nobody renewed: its run is gone. Only one taker can replace that exact object.
        let taken = s3
            .put_object()
            .bucket(&self.bucket)
            .key(self.lock_key())
            .if_match(&etag)
            .body(ByteStream::from(self.body(info)?))
            .send()
            .await
            .map_err(sdk);
        match taken {
            Ok(out) => {
                eprintln!(
                    "note: took over the stale state lock of a run that is gone: {} (lease expired {})",
                    holder.info.describe(),
                    holder.expires
                );
                let renewer = self.start_renewing(s3, info.clone(), out.e_tag().unwrap_or_default().to_string());
                self.remember(&info.id, renewer);
                Ok(())
            }
            Err(e) if is_precondition_failed(&e) || crate::error::is_not_found(&e) => {
                let now = self.current_lock(&s3).await?.map(|(b, _)| b.info);
                let (holder, lock_id) = now.map(|i| (i.describe(), i.id)).unwrap_or_else(|| ("another run".into(), String::new()));
                Err(Error::Locked { location: self.location(), holder, lock_id })
            }
            Err(e) => Err(self.err("taking over the stale lock", e)),
        }
    }

    async fn unlock(&self, id: &str) -> Result<()> {
        let held = self.held.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = &held {
            h.renewer.abort();
        }
        if held.map(|h| h.id != id).unwrap_or(true) {
            return Ok(());
        }
        let s3 = self.client().await?;
        // Only our own lock: if it was force-unlocked and retaken meanwhile, leave the new holder alone.
        if let Some((body, _)) = self.current_lock(&s3).await? {
            if body.info.id == id {
                s3.delete_object()
                    .bucket(&self.bucket)
                    .key(self.lock_key())
                    .send()
                    .await
                    .map_err(|e| self.err("releasing the lock", sdk(e)))?;
            }
        }
        Ok(())
    }

    async fn force_unlock(&self, id: &str) -> Result<()> {
        let s3 = self.client().await?;
        match self.current_lock(&s3).await? {
            Some((body, _)) if body.info.id == id => {
                s3.delete_object()
                    .bucket(&self.bucket)
                    .key(self.lock_key())
                    .send()
                    .await
                    .map_err(|e| self.err("removing the lock", sdk(e)))?;
                Ok(())
            }
            Some((body, _)) => Err(Error::Usage(format!("the lock is held by {}, not lock id {id}", body.info.describe()))),
            None => Err(Error::Usage(format!("{} is not locked", self.location()))),
        }
    }
}
