//! S3 bucket, shaped for holding state: versioning, default encryption, public access blocked, old versions
//! expired. APIs: CreateBucket, HeadBucket, GetBucketVersioning, PutBucketVersioning, GetBucketEncryption,
//! PutBucketEncryption, GetPublicAccessBlock, PutPublicAccessBlock,
//! GetBucketLifecycleConfiguration, PutBucketLifecycleConfiguration, DeleteBucketLifecycle, GetBucketTagging,
//! PutBucketTagging, DeleteBucketTagging, ListObjectVersions, DeleteObject, DeleteBucket.
//!
//! Defaults (what an unset field means, so removing a setting puts it back): no noncurrent-version expiry
//! (the lifecycle configuration is deleted), SSE-S3 encryption, `force_destroy` off, no tags but the
//! engine's; `versioning` and `block_public_access` are always given ([`Bucket::for_state`]: on). Left to
//! AWS when unset: nothing. The lifecycle configuration is read only while the state holds an expiry: one
//! made by hand on a bucket declaring none is not seen.

use crate::error::{absent_if_not_found, create_once, is_not_found, sdk, Once, CREATE_ONCE};
use crate::tags::{merge_defaults, without_aws_managed, Tags};
use crate::validate;
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, ExpirationStatus,
    LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging, VersioningConfiguration,
};
use ferroform_core::{CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Globally unique; changing it forces a new bucket.
    pub name: String,
    pub versioning: bool,
    /// Default encryption of new objects. Every bucket has one (SSE-S3 unless set otherwise), so there is no
    /// "off": asking for none would be a diff no apply could close.
    #[serde(deserialize_with = "encryption_or_legacy_bool")]
    pub encryption: Encryption,
    /// All four public-access blocks on.
    pub block_public_access: bool,
    /// Days after which a version that is no longer current is deleted (one lifecycle rule on the whole bucket,
    /// [`NONCURRENT_RULE_ID`]; the bucket's lifecycle configuration is then managed exclusively). Unset: no
    /// expiry (removing the setting deletes the lifecycle configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_version_expiration_days: Option<i32>,
    /// Delete the objects (all versions) when the bucket is deleted.
    #[serde(default)]
    pub force_destroy: bool,
    #[serde(default)]
    pub tags: Tags,
}

/// A bucket's default encryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// SSE-S3 (AES256): keys S3 owns; AWS's default for every bucket.
    S3,
    /// SSE-KMS with an S3 bucket key (fewer KMS calls): `None` is the AWS-managed key `aws/s3`, else a
    /// customer key (ARN, id or `alias/...`).
    Kms(Option<String>),
}

/// States written before `encryption` was an enum hold `true`/`false`; both meant (and on AWS are) SSE-S3.
fn encryption_or_legacy_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Encryption, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Legacy(#[allow(dead_code)] bool),
        Now(Encryption),
    }
    Ok(match Either::deserialize(d)? {
        Either::Legacy(_) => Encryption::S3,
        Either::Now(e) => e,
    })
}

/// The id of the lifecycle rule [`Bucket::noncurrent_version_expiration_days`] manages.
pub const NONCURRENT_RULE_ID: &str = "expire-noncurrent-versions";

ferroform_core::outputs! {
    pub struct BucketOutputs => BucketRefs {
        pub arn: String as ferroform_core::Arn<Bucket>,
        pub name: String as ferroform_core::Name<Bucket>,
    }
}

impl Bucket {
    /// A bucket for state: versioned, encrypted, private.
    pub fn for_state(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            versioning: true,
            encryption: Encryption::S3,
            block_public_access: true,
            noncurrent_version_expiration_days: None,
            force_destroy: false,
            tags: Tags::new(),
        }
    }
    /// Deletes versions `days` after they stopped being current.
    pub fn expire_noncurrent_versions_after(mut self, days: i32) -> Self {
        self.noncurrent_version_expiration_days = Some(days);
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
    /// SSE-KMS: `None` for the AWS-managed key `aws/s3`, or a customer key.
    pub fn kms(mut self, key: Option<String>) -> Self {
        self.encryption = Encryption::Kms(key);
        self
    }
    pub fn force_destroy(mut self, yes: bool) -> Self {
        self.force_destroy = yes;
        self
    }
}

#[async_trait]
impl Resource for Bucket {
    const TYPE: &'static str = "aws_s3_bucket";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("name", "bucket")];
    /// Versioning, encryption, the public access block and the lifecycle rules are fields here.
    const TERRAFORM_FOLDS: &'static [(&'static str, &'static str, &'static str)] = &[
        ("aws_s3_bucket_versioning", "bucket", "bucket"),
        ("aws_s3_bucket_server_side_encryption_configuration", "bucket", "bucket"),
        ("aws_s3_bucket_public_access_block", "bucket", "bucket"),
        ("aws_s3_bucket_lifecycle_configuration", "bucket", "bucket"),
    ];
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    const PROTECT_BY_DEFAULT: bool = true;
    type Outputs = BucketOutputs;
    type Refs = BucketRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        validate::name(
            &mut e,
            "name",
            &self.name,
            3,
            63,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.',
            "lowercase letters, digits, `-` and `.`",
        );
        if !ferroform_core::is_unknown_str(&self.name)
            && (self.name.starts_with(['-', '.']) || self.name.ends_with(['-', '.']) || self.name.contains(".."))
        {
            e.push(FieldError::new("name", format!("`{}` must start and end with a letter or digit, without `..`", self.name)));
        }
        if let Some(days) = self.noncurrent_version_expiration_days {
            validate::range(&mut e, "noncurrent_version_expiration_days", i64::from(days), 1, 2_147_483_647);
            if !self.versioning {
                e.push(FieldError::new(
                    "noncurrent_version_expiration_days",
                    "needs `versioning`: without it no version becomes noncurrent",
                ));
            }
        }
        crate::tags::check(&mut e, &self.tags, "S3");
        e
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, BucketOutputs), ProviderError> {
        let s3 = aws.s3();
        let region = aws.region();
        // us-east-1 is the one region that takes no location constraint.
        let location = (region != "us-east-1")
            .then(|| CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region.as_str())).build());
        // Sent again after a lost answer, CreateBucket fails outside us-east-1 (`BucketAlreadyOwnedByYou`):
        // the bucket is looked for first (by name, untagged and empty until the settings below are applied).
        create_once(
            CREATE_ONCE,
            |_| false,
            || {
                s3.create_bucket()
                    .bucket(&desired.name)
                    .set_create_bucket_configuration(location.clone())
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let mut all = vec![String::from("versioning"), "encryption".into(), "block_public_access".into(), "tags".into()];
        if desired.noncurrent_version_expiration_days.is_some() {
            all.push("noncurrent_version_expiration_days".into());
        }
        apply_settings(aws, desired, &all).await?;
        Ok((desired.name.clone(), outputs(&desired.name)))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let s3 = aws.s3();
        if absent_if_not_found(s3.head_bucket().bucket(id).send().await.map_err(sdk))?.is_none() {
            return Ok(None);
        }
        let versioning = versioning_enabled(&s3, id).await?;
        let encryption = match s3.get_bucket_encryption().bucket(id).send().await.map_err(sdk) {
            Ok(out) => {
                let default = out
                    .server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|r| r.apply_server_side_encryption_by_default());
                match default {
                    Some(d) if d.sse_algorithm() != &ServerSideEncryption::Aes256 => {
                        Encryption::Kms(d.kms_master_key_id().map(str::to_string))
                    }
                    _ => Encryption::S3,
                }
            }
            // S3 encrypts with SSE-S3 when nothing is configured (and answers so since 2023; emulators may not).
            Err(e) if e.code.as_deref() == Some("ServerSideEncryptionConfigurationNotFoundError") => Encryption::S3,
            Err(e) => return Err(e),
        };
        let block = match s3.get_public_access_block().bucket(id).send().await.map_err(sdk) {
            Ok(out) => out.public_access_block_configuration().map(all_blocked).unwrap_or(false),
            Err(e) if is_not_found(&e) => false,
            Err(e) => return Err(e),
        };
        let tags = match s3.get_bucket_tagging().bucket(id).send().await.map_err(sdk) {
            Ok(out) => out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
            Err(e) if is_not_found(&e) || e.code.as_deref() == Some("NoSuchTagSet") => Tags::new(),
            Err(e) => return Err(e),
        };
        // Read only when declared: an undeclared lifecycle configuration is not ours to compare.
        let noncurrent_version_expiration_days = match prior.noncurrent_version_expiration_days {
            None => None,
            Some(_) => match s3.get_bucket_lifecycle_configuration().bucket(id).send().await.map_err(sdk) {
                Ok(out) => noncurrent_days(out.rules()),
                Err(e) if is_not_found(&e) => None,
                Err(e) => return Err(e),
            },
        };
        Ok(Some(Observed {
            inputs: Bucket {
                name: id.to_string(),
                versioning,
                encryption,
                block_public_access: block,
                noncurrent_version_expiration_days,
                force_destroy: prior.force_destroy,
                tags: without_aws_managed(tags),
            },
            outputs: outputs(id),
        }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        _prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<BucketOutputs, ProviderError> {
        apply_settings(aws, desired, changed).await?;
        Ok(outputs(id))
    }

    async fn delete(aws: &Aws, id: &str, prior: &Self) -> Result<(), ProviderError> {
        let s3 = aws.s3();
        if prior.force_destroy {
            empty(&s3, id).await?;
        }
        absent_if_not_found(s3.delete_bucket().bucket(id).send().await.map_err(sdk)).map(|_| ())
    }

    /// Found by name (HeadBucket answers only for a bucket this account can reach) and recognised by its
    /// tags. Tags come after CreateBucket, so a run killed in between leaves the bucket untagged: such a
    /// bucket is taken only while it is empty (a bucket holding data is never someone's crash leftover to
    /// take over).
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        if meta.exclude.contains(&desired.name) {
            return Ok(None);
        }
        let Some(found) = Self::read(aws, &desired.name, desired).await? else { return Ok(None) };
        let tags = &found.inputs.tags;
        if !crate::adopt::maybe_ours(tags, meta) {
            return Ok(None);
        }
        if tags.contains_key(ferroform_core::TAG_ADDRESS) {
            return Ok(Some(desired.name.clone()));
        }
        let listed = aws.s3().list_objects_v2().bucket(&desired.name).max_keys(1).send().await.map_err(sdk)?;
        Ok(listed.contents().is_empty().then(|| desired.name.clone()))
    }
}

/// GetBucketVersioning: `true` when versioning is enabled (`Suspended` and never-enabled are both `false`).
async fn versioning_enabled(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<bool, ProviderError> {
    match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(out) => Ok(out.status() == Some(&BucketVersioningStatus::Enabled)),
        Err(e) => {
            match e.raw_response().filter(|r| r.status().is_success()).and_then(|r| r.body().bytes()).and_then(moto_versioning_status) {
                Some(status) => Ok(status == "Enabled"),
                None => Err(sdk(e)),
            }
        }
    }
}

/// The emulator (moto 5.2.5) answers GetBucketVersioning with the root element `GetBucketVersioningResponse`
/// instead of S3's `VersioningConfiguration`, which the SDK refuses to deserialize. For exactly that body
/// (a 200 whose root is that element), the `Status` it holds; `None` for anything else, so every other
/// failure, and every answer from S3 itself, goes through the SDK unchanged.
fn moto_versioning_status(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let root = text.trim_start().strip_prefix("<?xml").and_then(|t| t.split_once("?>")).map_or(text, |(_, rest)| rest).trim_start();
    if !root.starts_with("<GetBucketVersioningResponse") {
        return None;
    }
    let status = root.split_once("<Status>").and_then(|(_, rest)| rest.split_once("</Status>")).map(|(s, _)| s.to_string());
    Some(status.unwrap_or_default())
}

/// The days of our noncurrent-version rule, when it is there and enabled.
fn noncurrent_days(rules: &[LifecycleRule]) -> Option<i32> {
    rules
        .iter()
        .find(|r| r.id() == Some(NONCURRENT_RULE_ID) && r.status() == &ExpirationStatus::Enabled)
        .and_then(|r| r.noncurrent_version_expiration())
        .and_then(|n| n.noncurrent_days())
}

fn all_blocked(c: &PublicAccessBlockConfiguration) -> bool {
    [c.block_public_acls(), c.ignore_public_acls(), c.block_public_policy(), c.restrict_public_buckets()].iter().all(|v| *v == Some(true))
}

fn outputs(name: &str) -> BucketOutputs {
    BucketOutputs { arn: format!("arn:aws:s3:::{name}"), name: name.to_string() }
}

async fn apply_settings(aws: &Aws, b: &Bucket, changed: &[String]) -> Result<(), ProviderError> {
    let s3 = aws.s3();
    let has = |f: &str| changed.iter().any(|c| c == f);
    if has("versioning") {
        let status = if b.versioning { BucketVersioningStatus::Enabled } else { BucketVersioningStatus::Suspended };
        s3.put_bucket_versioning()
            .bucket(&b.name)
            .versioning_configuration(VersioningConfiguration::builder().status(status).build())
            .send()
            .await
            .map_err(sdk)?;
    }
    if has("encryption") {
        let (algorithm, key, bucket_key) = match &b.encryption {
            Encryption::S3 => (ServerSideEncryption::Aes256, None, false),
            Encryption::Kms(key) => (ServerSideEncryption::AwsKms, key.clone(), true),
        };
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(algorithm)
            .set_kms_master_key_id(key)
            .build()
            .map_err(|e| ProviderError::new(e.to_string()))?;
        let rule =
            ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).bucket_key_enabled(bucket_key).build();
        let conf = ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(|e| ProviderError::new(e.to_string()))?;
        s3.put_bucket_encryption().bucket(&b.name).server_side_encryption_configuration(conf).send().await.map_err(sdk)?;
    }
    if has("block_public_access") {
        let on = b.block_public_access;
        let conf = PublicAccessBlockConfiguration::builder()
            .block_public_acls(on)
            .ignore_public_acls(on)
            .block_public_policy(on)
            .restrict_public_buckets(on)
            .build();
        s3.put_public_access_block().bucket(&b.name).public_access_block_configuration(conf).send().await.map_err(sdk)?;
    }
    if has("noncurrent_version_expiration_days") {
        match b.noncurrent_version_expiration_days {
            Some(days) => {
                let rule = LifecycleRule::builder()
                    .id(NONCURRENT_RULE_ID)
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix("").build())
                    .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(days).build())
                    .build()
                    .map_err(|e| ProviderError::new(e.to_string()))?;
                let conf = BucketLifecycleConfiguration::builder().rules(rule).build().map_err(|e| ProviderError::new(e.to_string()))?;
                s3.put_bucket_lifecycle_configuration().bucket(&b.name).lifecycle_configuration(conf).send().await.map_err(sdk)?;
            }
            None => {
                s3.delete_bucket_lifecycle().bucket(&b.name).send().await.map_err(sdk)?;
            }
        }
    }
    if has("tags") {
        if b.tags.is_empty() {
            s3.delete_bucket_tagging().bucket(&b.name).send().await.map_err(sdk)?;
        } else {
            let mut set = Vec::new();
            for (k, v) in &b.tags {
                set.push(Tag::builder().key(k).value(v).build().map_err(|e| ProviderError::new(e.to_string()))?);
            }
            let tagging = Tagging::builder().set_tag_set(Some(set)).build().map_err(|e| ProviderError::new(e.to_string()))?;
            s3.put_bucket_tagging().bucket(&b.name).tagging(tagging).send().await.map_err(sdk)?;
        }
    }
    Ok(())
}

/// Deletes every object version and delete marker, so the bucket can go.
async fn empty(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), ProviderError> {
    loop {
        let out = s3.list_object_versions().bucket(bucket).send().await.map_err(sdk)?;
        let mut doomed: Vec<(String, Option<String>)> = Vec::new();
        doomed.extend(out.versions().iter().map(|v| (v.key().unwrap_or_default().to_string(), v.version_id().map(str::to_string))));
        doomed.extend(out.delete_markers().iter().map(|m| (m.key().unwrap_or_default().to_string(), m.version_id().map(str::to_string))));
        if doomed.is_empty() {
            return Ok(());
        }
        for (key, version) in doomed {
            s3.delete_object().bucket(bucket).key(key).set_version_id(version).send().await.map_err(sdk)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(Bucket::for_state("my-state-bucket").validate().is_empty());
        assert_eq!(Bucket::for_state("My_Bucket").validate()[0].field, "name");
        assert!(!Bucket::for_state("ab").validate().is_empty());
        assert!(!Bucket::for_state("-abc").validate().is_empty());
    }

    #[test]
    fn expiring_noncurrent_versions_needs_versioning_and_positive_days() {
        assert!(Bucket::for_state("b-1").expire_noncurrent_versions_after(30).validate().is_empty());
        assert_eq!(Bucket::for_state("b-1").expire_noncurrent_versions_after(0).validate()[0].field, "noncurrent_version_expiration_days");
        let unversioned = Bucket { versioning: false, ..Bucket::for_state("b-1").expire_noncurrent_versions_after(30) };
        assert_eq!(unversioned.validate()[0].field, "noncurrent_version_expiration_days");
    }

    #[test]
    fn only_the_emulators_versioning_answer_is_read_by_hand() {
        let moto = br#"<?xml version="1.0" encoding="utf-8"?>
<GetBucketVersioningResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></GetBucketVersioningResponse>"#;
        assert_eq!(moto_versioning_status(moto).as_deref(), Some("Enabled"));
        let never = br#"<GetBucketVersioningResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#;
        assert_eq!(moto_versioning_status(never).as_deref(), Some(""));
        let s3 = br#"<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"#;
        assert_eq!(moto_versioning_status(s3), None);
        assert_eq!(moto_versioning_status(b"<Error><Code>AccessDenied</Code></Error>"), None);
    }

    #[test]
    fn states_written_with_a_boolean_encryption_still_load() {
        let mut v = serde_json::to_value(Bucket::for_state("b")).unwrap();
        assert_eq!(v["encryption"], serde_json::json!("s3"));
        v["encryption"] = serde_json::json!(true);
        assert_eq!(serde_json::from_value::<Bucket>(v).unwrap().encryption, Encryption::S3);
        let kms = serde_json::to_value(Bucket::for_state("b").kms(Some("alias/k".into()))).unwrap();
        assert_eq!(serde_json::from_value::<Bucket>(kms).unwrap().encryption, Encryption::Kms(Some("alias/k".into())));
    }
}
