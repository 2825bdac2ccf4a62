//! DynamoDB table. APIs: CreateTable, DescribeTable, UpdateTable, DescribeTimeToLive, UpdateTimeToLive,
//! DescribeContinuousBackups, UpdateContinuousBackups, ListTagsOfResource, TagResource, UntagResource,
//! DeleteTable.
//!
//! A read costs 4 calls, concurrently: DescribeTable, ListTagsOfResource, DescribeTimeToLive and
//! DescribeContinuousBackups (every field is compared, declared or not). Global secondary indexes are managed
//! exclusively and changed one UpdateTable at a time (DynamoDB's rule), waiting for the table and its
//! indexes to be `ACTIVE` in between.
//!
//! Defaults when unset: no TTL, point-in-time recovery off, encryption with the AWS-owned key, no stream,
//! deletion protection off, no indexes, no tags; removing a setting from the code puts that back. An index
//! without its own capacity takes the table's. Left to AWS when unset: nothing.

use crate::error::{absent_if_not_found, create_once, is_not_found, retry, sdk, wait_for, Once, CREATE_ONCE};
use crate::tags::{merge_defaults, without_aws_managed, Tags};
use crate::validate;
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexDescription, GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, Projection as SdkProjection, ProjectionType, ProvisionedThroughput, ScalarAttributeType, SseSpecification,
    SseStatus, SseType, StreamSpecification, StreamViewType, TableDescription, TableStatus, Tag, TimeToLiveSpecification, TimeToLiveStatus,
    UpdateGlobalSecondaryIndexAction,
};
use aws_smithy_types::error::operation::BuildError;
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a table or an index may take to become `ACTIVE` (index backfills of big tables take long).
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A key attribute's type: string, number or binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttrType {
    S,
    N,
    B,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    pub name: String,
    #[serde(rename = "type")]
    pub attr_type: AttrType,
}

/// The primary key: a hash (partition) key and an optional range (sort) key. Changing it forces a new
/// table. One field, so a range key added or removed is a difference too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeySchema {
    pub hash: Key,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Key>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub read: i64,
    pub write: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// `PAY_PER_REQUEST`.
    OnDemand,
    /// `PROVISIONED` with these read/write capacity units.
    Provisioned(Capacity),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    All,
    KeysOnly,
    /// The keys and these attributes.
    Include(Vec<String>),
}

/// A global secondary index. A change to its keys or projection deletes and recreates it; a capacity
/// change is an update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gsi {
    pub hash: Key,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Key>,
    pub projection: Projection,
    /// Provisioned tables only; `None` takes the table's capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ttl {
    Disabled,
    /// Items expire at the epoch-seconds time in this attribute.
    Attribute(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Disabled,
    KeysOnly,
    NewImage,
    OldImage,
    NewAndOldImages,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// DynamoDB's default: a key AWS owns (free, not visible in KMS).
    AwsOwned,
    /// KMS: `None` is the AWS-managed key `alias/aws/dynamodb`, else a customer key (ARN, id or alias).
    Kms(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Changing it forces a new table.
    pub name: String,
    /// Changing it forces a new table.
    pub key: KeySchema,
    pub billing: Billing,
    /// By index name.
    #[serde(default)]
    pub global_secondary_indexes: BTreeMap<String, Gsi>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Ttl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_in_time_recovery: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_encryption: Option<Encryption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    /// DynamoDB's own guard against DeleteTable (besides ferroform's `prevent_destroy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct TableOutputs => TableRefs {
        pub arn: String as ferroform_core::Arn<Table>,
        pub name: String as ferroform_core::Name<Table>,
        /// The latest stream's ARN, when a stream is on.
        pub stream_arn: Option<String>,
    }
}

impl Table {
    /// An on-demand (pay per request) table; give it a key with `hash_key`.
    pub fn on_demand(name: impl Into<String>) -> Self {
        Self::with_billing(name, Billing::OnDemand)
    }

    /// A table with provisioned capacity.
    pub fn provisioned(name: impl Into<String>, read: i64, write: i64) -> Self {
        Self::with_billing(name, Billing::Provisioned(Capacity { read, write }))
    }

    fn with_billing(name: impl Into<String>, billing: Billing) -> Self {
        Self {
            name: name.into(),
            key: KeySchema { hash: Key { name: String::new(), attr_type: AttrType::S }, range: None },
            billing,
            global_secondary_indexes: BTreeMap::new(),
            ttl: None,
            point_in_time_recovery: None,
            server_side_encryption: None,
            stream: None,
            deletion_protection: None,
            tags: Tags::new(),
        }
    }

    pub fn hash_key(mut self, name: impl Into<String>, t: AttrType) -> Self {
        self.key.hash = Key { name: name.into(), attr_type: t };
        self
    }
    pub fn range_key(mut self, name: impl Into<String>, t: AttrType) -> Self {
        self.key.range = Some(Key { name: name.into(), attr_type: t });
        self
    }
    pub fn billing(mut self, billing: Billing) -> Self {
        self.billing = billing;
        self
    }
    pub fn gsi(mut self, name: impl Into<String>, gsi: Gsi) -> Self {
        self.global_secondary_indexes.insert(name.into(), gsi);
        self
    }
    pub fn ttl(mut self, attribute: impl Into<String>) -> Self {
        self.ttl = Some(Ttl::Attribute(attribute.into()));
        self
    }
    pub fn no_ttl(mut self) -> Self {
        self.ttl = Some(Ttl::Disabled);
        self
    }
    pub fn point_in_time_recovery(mut self, on: bool) -> Self {
        self.point_in_time_recovery = Some(on);
        self
    }
    pub fn encryption(mut self, e: Encryption) -> Self {
        self.server_side_encryption = Some(e);
        self
    }
    pub fn stream(mut self, s: Stream) -> Self {
        self.stream = Some(s);
        self
    }
    pub fn deletion_protection(mut self, on: bool) -> Self {
        self.deletion_protection = Some(on);
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }

    /// Every key attribute the table and its indexes use, with its type (first declaration wins).
    fn attribute_types(&self) -> BTreeMap<&str, AttrType> {
        let mut out = BTreeMap::new();
        let keys = std::iter::once(&self.key.hash).chain(self.key.range.as_ref());
        let gsi_keys = self.global_secondary_indexes.values().flat_map(|g| std::iter::once(&g.hash).chain(g.range.as_ref()));
        for k in keys.chain(gsi_keys) {
            out.entry(k.name.as_str()).or_insert(k.attr_type);
        }
        out
    }
}

impl Gsi {
    pub fn new(hash: impl Into<String>, t: AttrType) -> Self {
        Self { hash: Key { name: hash.into(), attr_type: t }, range: None, projection: Projection::All, capacity: None }
    }
    pub fn range_key(mut self, name: impl Into<String>, t: AttrType) -> Self {
        self.range = Some(Key { name: name.into(), attr_type: t });
        self
    }
    pub fn projection(mut self, p: Projection) -> Self {
        self.projection = p;
        self
    }
    pub fn capacity(mut self, read: i64, write: i64) -> Self {
        self.capacity = Some(Capacity { read, write });
        self
    }
    /// Everything but capacity: what forces the index to be rebuilt.
    fn same_shape(&self, other: &Gsi) -> bool {
        self.hash == other.hash && self.range == other.range && self.projection == other.projection
    }
}

#[async_trait]
impl Resource for Table {
    const TYPE: &'static str = "aws_dynamodb_table";
    const REPLACE_FIELDS: &'static [&'static str] = &["name", "key"];
    const PROTECT_BY_DEFAULT: bool = true;
    /// Turning the stream off or on, or changing its view type, makes a new stream (or none).
    const UPDATE_CHANGES: &'static [(&'static str, &'static [&'static str])] = &[("stream", &["stream_arn"])];
    type Outputs = TableOutputs;
    type Refs = TableRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        let dynamo_name = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        validate::name(&mut e, "name", &self.name, 3, 255, dynamo_name, "letters, digits, `_.-`");
        if self.key.hash.name.is_empty() {
            e.push(FieldError::new("key", "a table needs a hash key: `.hash_key(\"id\", AttrType::S)`"));
        }
        let keys = std::iter::once(("key", &self.key.hash)).chain(self.key.range.as_ref().map(|k| ("key", k)));
        let gsi_keys = self
            .global_secondary_indexes
            .values()
            .flat_map(|g| std::iter::once(&g.hash).chain(g.range.as_ref()))
            .map(|k| ("global_secondary_indexes", k));
        let mut types: BTreeMap<&str, AttrType> = BTreeMap::new();
        for (field, k) in keys.chain(gsi_keys) {
            if k.name.is_empty() && field == "key" {
                continue;
            }
            if k.name.is_empty() || k.name.len() > 255 {
                e.push(FieldError::new(field, format!("key attribute `{}` must be 1 to 255 bytes long", k.name)));
            }
            match types.get(k.name.as_str()) {
                Some(t) if *t != k.attr_type => {
                    e.push(FieldError::new(field, format!("attribute `{}` is declared as both {:?} and {:?}", k.name, t, k.attr_type)))
                }
                _ => {
                    types.insert(&k.name, k.attr_type);
                }
            }
        }
        if let Billing::Provisioned(c) = self.billing {
            check_capacity(&mut e, "billing", c);
        }
        if self.global_secondary_indexes.len() > 20 {
            e.push(FieldError::new("global_secondary_indexes", "DynamoDB allows 20 global secondary indexes per table"));
        }
        let mut projected = 0;
        for (name, g) in &self.global_secondary_indexes {
            validate::name(&mut e, "global_secondary_indexes", name, 3, 255, dynamo_name, "letters, digits, `_.-`");
            match (self.billing, g.capacity) {
                (Billing::OnDemand, Some(_)) => e.push(FieldError::new(
                    "global_secondary_indexes",
                    format!("index `{name}` has a capacity, but the table is on demand"),
                )),
                (Billing::Provisioned(_), Some(c)) => check_capacity(&mut e, "global_secondary_indexes", c),
                _ => {}
            }
            if let Projection::Include(attrs) = &g.projection {
                if attrs.is_empty() {
                    e.push(FieldError::new("global_secondary_indexes", format!("index `{name}`: Include needs attributes")));
                }
                projected += attrs.len();
            }
        }
        if projected > 100 {
            e.push(FieldError::new("global_secondary_indexes", "more than 100 projected attributes across indexes"));
        }
        if let Some(Ttl::Attribute(a)) = &self.ttl {
            if !is_unknown_str(a) && (a.is_empty() || a.len() > 255) {
                e.push(FieldError::new("ttl", "the TTL attribute name must be 1 to 255 bytes long"));
            }
        }
        check_tags(&mut e, &self.tags);
        e
    }

    /// AWS's defaults for what the code leaves unset; indexes take the table's capacity; projected
    /// attributes are a set.
    fn normalize(&mut self) {
        self.ttl.get_or_insert(Ttl::Disabled);
        self.point_in_time_recovery.get_or_insert(false);
        self.server_side_encryption.get_or_insert(Encryption::AwsOwned);
        self.stream.get_or_insert(Stream::Disabled);
        self.deletion_protection.get_or_insert(false);
        let table_capacity = match self.billing {
            Billing::Provisioned(c) => Some(c),
            Billing::OnDemand => None,
        };
        for g in self.global_secondary_indexes.values_mut() {
            g.capacity = table_capacity.map(|c| g.capacity.unwrap_or(c));
            if let Projection::Include(attrs) = &mut g.projection {
                attrs.sort();
                attrs.dedup();
            }
        }
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, TableOutputs), ProviderError> {
        let ddb = aws.dynamodb();
        let mut gsis = Vec::new();
        for (name, g) in &desired.global_secondary_indexes {
            gsis.push(
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .set_key_schema(Some(key_schema(&g.hash, g.range.as_ref())?))
                    .projection(projection(&g.projection))
                    .set_provisioned_throughput(g.capacity.map(throughput).transpose()?)
                    .build()
                    .map_err(built)?,
            );
        }
        let (mode, capacity) = billing(desired.billing);
        let attributes = attribute_definitions(desired)?;
        let keys = key_schema(&desired.key.hash, desired.key.range.as_ref())?;
        let capacity = capacity.map(throughput).transpose()?;
        // AWS's defaults are not sent: the same request whether the code spells them out or not.
        let stream = desired.stream.filter(|s| *s != Stream::Disabled).map(stream_spec).transpose()?;
        let tags = dynamo_tags(&desired.tags)?;
        create_once(
            CREATE_ONCE,
            |_| false,
            || {
                ddb.create_table()
                    .table_name(&desired.name)
                    .set_attribute_definitions(Some(attributes.clone()))
                    .set_key_schema(Some(keys.clone()))
                    .billing_mode(mode.clone())
                    .set_provisioned_throughput(capacity.clone())
                    .set_global_secondary_indexes((!gsis.is_empty()).then(|| gsis.clone()))
                    .set_stream_specification(stream.clone())
                    .set_sse_specification(desired.server_side_encryption.as_ref().filter(|e| **e != Encryption::AwsOwned).map(sse_spec))
                    .set_deletion_protection_enabled(desired.deletion_protection)
                    .set_tags(tags.clone())
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let table = wait_active(aws, &desired.name).await?;
        if let Some(Ttl::Attribute(a)) = &desired.ttl {
            set_ttl(aws, &desired.name, true, a).await?;
        }
        if desired.point_in_time_recovery == Some(true) {
            set_pitr(aws, &desired.name, true).await?;
        }
        Ok((desired.name.clone(), outputs(&table, &desired.name)))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let ddb = aws.dynamodb();
        let arn = aws.arn("dynamodb", &format!("table/{id}")).await?;
        let (described, tags, ttl, pitr) =
            tokio::join!(ddb.describe_table().table_name(id).send(), list_tags(aws, &arn), read_ttl(aws, id), read_pitr(aws, id));
        let Some(described) = absent_if_not_found(described.map_err(sdk))? else { return Ok(None) };
        let Some(t) = described.table else { return Ok(None) };
        if t.table_status() == Some(&TableStatus::Deleting) {
            return Ok(None);
        }
        let Some(tags) = absent_if_not_found(tags)? else { return Ok(None) };
        let ttl = absent_if_not_found(ttl)?;
        let pitr = absent_if_not_found(pitr)?;
        let mut inputs = from_description(&t, prior)?;
        inputs.ttl = ttl;
        inputs.point_in_time_recovery = pitr;
        inputs.tags = without_aws_managed(tags);
        Ok(Some(Observed { outputs: outputs(&t, id), inputs }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<TableOutputs, ProviderError> {
        let ddb = aws.dynamodb();
        let has = |f: &str| changed.iter().any(|c| c == f);
        // Indexes that stay (same shape): they take part in a billing change.
        let kept: Vec<(&String, &Gsi)> = desired
            .global_secondary_indexes
            .iter()
            .filter(|(n, g)| prior.global_secondary_indexes.get(*n).map(|p| p.same_shape(g)).unwrap_or(false))
            .collect();

        if has("billing") {
            let (mode, capacity) = billing(desired.billing);
            // Switching to provisioned: every remaining index needs its capacity in the same call.
            let mut updates = Vec::new();
            if capacity.is_some() {
                for (name, g) in &kept {
                    if let Some(c) = g.capacity {
                        updates.push(gsi_capacity_update(name, c)?);
                    }
                }
            }
            ddb.update_table()
                .table_name(id)
                .billing_mode(mode)
                .set_provisioned_throughput(capacity.map(throughput).transpose()?)
                .set_global_secondary_index_updates((!updates.is_empty()).then_some(updates))
                .send()
                .await
                .map_err(sdk)?;
            wait_active(aws, id).await?;
        }

        if has("global_secondary_indexes") {
            // Removed or reshaped indexes go first, one at a time.
            for (name, old) in &prior.global_secondary_indexes {
                if desired.global_secondary_indexes.get(name).map(|g| g.same_shape(old)).unwrap_or(false) {
                    continue;
                }
                let action = DeleteGlobalSecondaryIndexAction::builder().index_name(name).build().map_err(built)?;
                ddb.update_table()
                    .table_name(id)
                    .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().delete(action).build())
                    .send()
                    .await
                    .map_err(sdk)?;
                wait_for(&format!("index {name} of table {id} to be deleted"), ACTIVE_TIMEOUT, || async {
                    let t = describe(aws, id).await?;
                    let gone = !t.global_secondary_indexes().iter().any(|g| g.index_name() == Some(name));
                    Ok((gone && t.table_status() == Some(&TableStatus::Active)).then_some(()))
                })
                .await?;
            }
            // Then new or reshaped ones, one at a time.
            for (name, g) in &desired.global_secondary_indexes {
                match prior.global_secondary_indexes.get(name) {
                    Some(old) if old.same_shape(g) => {
                        if old.capacity != g.capacity && !has("billing") {
                            if let Some(c) = g.capacity {
                                ddb.update_table()
                                    .table_name(id)
                                    .global_secondary_index_updates(gsi_capacity_update(name, c)?)
                                    .send()
                                    .await
                                    .map_err(sdk)?;
                                wait_active(aws, id).await?;
                            }
                        }
                    }
                    _ => {
                        let action = CreateGlobalSecondaryIndexAction::builder()
                            .index_name(name)
                            .set_key_schema(Some(key_schema(&g.hash, g.range.as_ref())?))
                            .projection(projection(&g.projection))
                            .set_provisioned_throughput(g.capacity.map(throughput).transpose()?)
                            .build()
                            .map_err(built)?;
                        ddb.update_table()
                            .table_name(id)
                            .set_attribute_definitions(Some(attribute_definitions(desired)?))
                            .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(action).build())
                            .send()
                            .await
                            .map_err(sdk)?;
                        wait_active(aws, id).await?;
                    }
                }
            }
        }

        if has("stream") {
            if let Some(s) = desired.stream {
                // A stream's view type can't change while it is on: off first.
                if prior.stream.map(|p| p != Stream::Disabled).unwrap_or(false) {
                    ddb.update_table().table_name(id).stream_specification(stream_spec(Stream::Disabled)?).send().await.map_err(sdk)?;
                    wait_active(aws, id).await?;
                }
                if s != Stream::Disabled {
                    ddb.update_table().table_name(id).stream_specification(stream_spec(s)?).send().await.map_err(sdk)?;
                    wait_active(aws, id).await?;
                }
            }
        }
        if has("server_side_encryption") {
            if let Some(sse) = &desired.server_side_encryption {
                ddb.update_table().table_name(id).sse_specification(sse_spec(sse)).send().await.map_err(sdk)?;
                wait_active(aws, id).await?;
            }
        }
        if has("deletion_protection") {
            if let Some(on) = desired.deletion_protection {
                ddb.update_table().table_name(id).deletion_protection_enabled(on).send().await.map_err(sdk)?;
            }
        }
        if has("ttl") {
            if let Some(ttl) = &desired.ttl {
                // What is live decides: the prior may not have read it (undeclared until now).
                let live = read_ttl(aws, id).await?;
                match (live, ttl) {
                    (Ttl::Attribute(old), Ttl::Disabled) => set_ttl(aws, id, false, &old).await?,
                    (Ttl::Attribute(old), Ttl::Attribute(new)) if &old != new => {
                        set_ttl(aws, id, false, &old).await?;
                        set_ttl(aws, id, true, new).await?;
                    }
                    (Ttl::Disabled, Ttl::Attribute(new)) => set_ttl(aws, id, true, new).await?,
                    _ => {}
                }
            }
        }
        if has("point_in_time_recovery") {
            if let Some(on) = desired.point_in_time_recovery {
                set_pitr(aws, id, on).await?;
            }
        }
        if has("tags") {
            let arn = aws.arn("dynamodb", &format!("table/{id}")).await?;
            let (ddb, arn) = (&ddb, &arn);
            crate::tags::sync(
                &prior.tags,
                &desired.tags,
                |keys| async { ddb.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send().await.map(drop).map_err(sdk) },
                |tags| async move { ddb.tag_resource().resource_arn(arn).set_tags(dynamo_tags(&tags)?).send().await.map(drop).map_err(sdk) },
            )
            .await?;
        }
        let t = describe(aws, id).await?;
        Ok(outputs(&t, id))
    }

    /// Deletes and waits until DynamoDB no longer knows the table.
    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let ddb = aws.dynamodb();
        // A table still being created or updated can't be deleted yet.
        let deleted = retry(
            Duration::from_secs(5 * 60),
            |e| e.code.as_deref() == Some("ResourceInUseException"),
            || async { absent_if_not_found(ddb.delete_table().table_name(id).send().await.map_err(sdk)) },
        )
        .await;
        match deleted {
            Ok(None) => return Ok(()),
            Ok(Some(_)) => {}
            Err(e) if e.message.contains("deletion protection") || e.message.contains("DeletionProtection") => {
                return Err(e.hint("set `deletion_protection(false)` and apply before destroying"))
            }
            Err(e) => return Err(e),
        }
        wait_for(&format!("table {id} to be deleted"), DELETE_TIMEOUT, || async {
            match ddb.describe_table().table_name(id).send().await.map_err(sdk) {
                Err(e) if is_not_found(&e) => Ok(Some(())),
                Err(e) => Err(e),
                Ok(_) => Ok(None),
            }
        })
        .await
    }

    /// The name is known: DescribeTable by it, ours when tagged with our address.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let ddb = aws.dynamodb();
        if absent_if_not_found(ddb.describe_table().table_name(&desired.name).send().await.map_err(sdk))?.is_none() {
            return Ok(None);
        }
        let arn = aws.arn("dynamodb", &format!("table/{}", desired.name)).await?;
        let tags = absent_if_not_found(list_tags(aws, &arn).await)?.unwrap_or_default();
        Ok((tags.get(TAG_ADDRESS) == Some(&meta.address)).then(|| desired.name.clone()))
    }
}

fn check_capacity(e: &mut Vec<FieldError>, field: &str, c: Capacity) {
    if c.read < 1 || c.write < 1 {
        e.push(FieldError::new(field, format!("read and write capacity must be at least 1 (got {} and {})", c.read, c.write)));
    }
}

/// DynamoDB's tag rules: at most 50, keys 1 to 128 characters, values up to 256, no `aws:` prefix.
fn check_tags(e: &mut Vec<FieldError>, tags: &Tags) {
    if tags.len() > 50 {
        e.push(FieldError::new("tags", format!("{} tags; DynamoDB allows 50 (the engine adds 2)", tags.len())));
    }
    for (k, v) in tags {
        if is_unknown_str(k) {
            continue;
        }
        if k.is_empty() || k.chars().count() > 128 {
            e.push(FieldError::new("tags", format!("key `{k}` must be 1 to 128 characters long")));
        } else if k.starts_with("aws:") {
            e.push(FieldError::new("tags", format!("key `{k}`: the `aws:` prefix is reserved for AWS")));
        }
        if !is_unknown_str(v) && v.chars().count() > 256 {
            e.push(FieldError::new("tags", format!("the value of `{k}` is longer than 256 characters")));
        }
    }
}

fn built(e: BuildError) -> ProviderError {
    ProviderError::new(e.to_string())
}

async fn describe(aws: &Aws, name: &str) -> Result<TableDescription, ProviderError> {
    let out = aws.dynamodb().describe_table().table_name(name).send().await.map_err(sdk)?;
    out.table.ok_or_else(|| ProviderError::new(format!("DescribeTable {name} returned no table")))
}

/// Polls until the table and every index are `ACTIVE`.
async fn wait_active(aws: &Aws, name: &str) -> Result<TableDescription, ProviderError> {
    wait_for(&format!("table {name} to be ACTIVE"), ACTIVE_TIMEOUT, || async {
        let t = describe(aws, name).await?;
        let ready = t.table_status() == Some(&TableStatus::Active)
            && t.global_secondary_indexes().iter().all(|g| g.index_status().map(|s| s == &IndexStatus::Active).unwrap_or(true));
        Ok(ready.then_some(t))
    })
    .await
}

fn outputs(t: &TableDescription, name: &str) -> TableOutputs {
    TableOutputs {
        arn: t.table_arn().unwrap_or_default().to_string(),
        name: name.to_string(),
        stream_arn: t.stream_specification().filter(|s| s.stream_enabled()).and_then(|_| t.latest_stream_arn()).map(str::to_string),
    }
}

/// The live table in the desired shape (`ttl`, `point_in_time_recovery` and `tags` are filled by the caller).
fn from_description(t: &TableDescription, prior: &Table) -> Result<Table, ProviderError> {
    let types: BTreeMap<&str, AttrType> = t
        .attribute_definitions()
        .iter()
        .map(|a| {
            let ty = match a.attribute_type() {
                ScalarAttributeType::N => AttrType::N,
                ScalarAttributeType::B => AttrType::B,
                _ => AttrType::S,
            };
            (a.attribute_name(), ty)
        })
        .collect();
    let key_of = |schema: &[KeySchemaElement], kind: KeyType| {
        schema
            .iter()
            .find(|k| k.key_type() == &kind)
            .map(|k| Key { name: k.attribute_name().to_string(), attr_type: types.get(k.attribute_name()).copied().unwrap_or(AttrType::S) })
    };
    let hash = key_of(t.key_schema(), KeyType::Hash).ok_or_else(|| ProviderError::new("DescribeTable: the table has no hash key"))?;
    let on_demand = t.billing_mode_summary().and_then(|b| b.billing_mode()) == Some(&BillingMode::PayPerRequest);
    let capacity_of = |p: Option<&aws_sdk_dynamodb::types::ProvisionedThroughputDescription>| Capacity {
        read: p.and_then(|p| p.read_capacity_units()).unwrap_or(0),
        write: p.and_then(|p| p.write_capacity_units()).unwrap_or(0),
    };
    let billing = if on_demand { Billing::OnDemand } else { Billing::Provisioned(capacity_of(t.provisioned_throughput())) };
    let mut gsis = BTreeMap::new();
    for g in t.global_secondary_indexes() {
        let Some(name) = g.index_name() else { continue };
        gsis.insert(name.to_string(), gsi_from(g, &key_of, (!on_demand).then(|| capacity_of(g.provisioned_throughput())))?);
    }
    let stream = match t.stream_specification() {
        Some(s) if s.stream_enabled() => match s.stream_view_type() {
            Some(StreamViewType::KeysOnly) => Stream::KeysOnly,
            Some(StreamViewType::NewImage) => Stream::NewImage,
            Some(StreamViewType::OldImage) => Stream::OldImage,
            _ => Stream::NewAndOldImages,
        },
        _ => Stream::Disabled,
    };
    let encryption = match t.sse_description() {
        Some(d)
            if matches!(d.status(), Some(SseStatus::Enabled | SseStatus::Enabling | SseStatus::Updating))
                && d.sse_type().map(|s| s == &SseType::Kms).unwrap_or(true) =>
        {
            // The AWS-managed key comes back as a key ARN: declared as "the AWS-managed key", take it as that.
            match &prior.server_side_encryption {
                Some(Encryption::Kms(None)) => Encryption::Kms(None),
                // A key declared by id matches the ARN DynamoDB reports.
                Some(Encryption::Kms(Some(declared)))
                    if d.kms_master_key_arn().map(|a| a == declared || a.ends_with(&format!("/{declared}"))).unwrap_or(false) =>
                {
                    Encryption::Kms(Some(declared.clone()))
                }
                _ => Encryption::Kms(d.kms_master_key_arn().map(str::to_string)),
            }
        }
        _ => Encryption::AwsOwned,
    };
    Ok(Table {
        name: t.table_name().unwrap_or_default().to_string(),
        key: KeySchema { hash, range: key_of(t.key_schema(), KeyType::Range) },
        billing,
        global_secondary_indexes: gsis,
        ttl: None,
        point_in_time_recovery: None,
        server_side_encryption: Some(encryption),
        stream: Some(stream),
        deletion_protection: t.deletion_protection_enabled(),
        tags: Tags::new(),
    })
}

fn gsi_from(
    g: &GlobalSecondaryIndexDescription,
    key_of: &dyn Fn(&[KeySchemaElement], KeyType) -> Option<Key>,
    capacity: Option<Capacity>,
) -> Result<Gsi, ProviderError> {
    let hash = key_of(g.key_schema(), KeyType::Hash).ok_or_else(|| ProviderError::new("DescribeTable: an index has no hash key"))?;
    let projection = match g.projection().and_then(|p| p.projection_type()) {
        Some(ProjectionType::KeysOnly) => Projection::KeysOnly,
        Some(ProjectionType::Include) => Projection::Include(g.projection().map(|p| p.non_key_attributes().to_vec()).unwrap_or_default()),
        _ => Projection::All,
    };
    Ok(Gsi { hash, range: key_of(g.key_schema(), KeyType::Range), projection, capacity })
}

fn scalar(t: AttrType) -> ScalarAttributeType {
    match t {
        AttrType::S => ScalarAttributeType::S,
        AttrType::N => ScalarAttributeType::N,
        AttrType::B => ScalarAttributeType::B,
    }
}

fn attribute_definitions(t: &Table) -> Result<Vec<AttributeDefinition>, ProviderError> {
    t.attribute_types()
        .into_iter()
        .map(|(name, ty)| AttributeDefinition::builder().attribute_name(name).attribute_type(scalar(ty)).build().map_err(built))
        .collect()
}

fn key_schema(hash: &Key, range: Option<&Key>) -> Result<Vec<KeySchemaElement>, ProviderError> {
    let mut out = vec![KeySchemaElement::builder().attribute_name(&hash.name).key_type(KeyType::Hash).build().map_err(built)?];
    if let Some(r) = range {
        out.push(KeySchemaElement::builder().attribute_name(&r.name).key_type(KeyType::Range).build().map_err(built)?);
    }
    Ok(out)
}

fn projection(p: &Projection) -> SdkProjection {
    match p {
        Projection::All => SdkProjection::builder().projection_type(ProjectionType::All).build(),
        Projection::KeysOnly => SdkProjection::builder().projection_type(ProjectionType::KeysOnly).build(),
        Projection::Include(attrs) => {
            SdkProjection::builder().projection_type(ProjectionType::Include).set_non_key_attributes(Some(attrs.clone())).build()
        }
    }
}

fn throughput(c: Capacity) -> Result<ProvisionedThroughput, ProviderError> {
    ProvisionedThroughput::builder().read_capacity_units(c.read).write_capacity_units(c.write).build().map_err(built)
}

fn billing(b: Billing) -> (BillingMode, Option<Capacity>) {
    match b {
        Billing::OnDemand => (BillingMode::PayPerRequest, None),
        Billing::Provisioned(c) => (BillingMode::Provisioned, Some(c)),
    }
}

fn gsi_capacity_update(name: &str, c: Capacity) -> Result<GlobalSecondaryIndexUpdate, ProviderError> {
    let action =
        UpdateGlobalSecondaryIndexAction::builder().index_name(name).provisioned_throughput(throughput(c)?).build().map_err(built)?;
    Ok(GlobalSecondaryIndexUpdate::builder().update(action).build())
}

fn stream_spec(s: Stream) -> Result<StreamSpecification, ProviderError> {
    let view = match s {
        Stream::Disabled => None,
        Stream::KeysOnly => Some(StreamViewType::KeysOnly),
        Stream::NewImage => Some(StreamViewType::NewImage),
        Stream::OldImage => Some(StreamViewType::OldImage),
        Stream::NewAndOldImages => Some(StreamViewType::NewAndOldImages),
    };
    StreamSpecification::builder().stream_enabled(view.is_some()).set_stream_view_type(view).build().map_err(built)
}

fn sse_spec(e: &Encryption) -> SseSpecification {
    match e {
        Encryption::AwsOwned => SseSpecification::builder().enabled(false).build(),
        Encryption::Kms(key) => SseSpecification::builder().enabled(true).sse_type(SseType::Kms).set_kms_master_key_id(key.clone()).build(),
    }
}

fn dynamo_tags(tags: &Tags) -> Result<Option<Vec<Tag>>, ProviderError> {
    if tags.is_empty() {
        return Ok(None);
    }
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(built)).collect::<Result<Vec<_>, _>>().map(Some)
}

async fn list_tags(aws: &Aws, arn: &str) -> Result<Tags, ProviderError> {
    let mut tags = Tags::new();
    let mut token = None;
    loop {
        let out = aws.dynamodb().list_tags_of_resource().resource_arn(arn).set_next_token(token).send().await.map_err(sdk)?;
        tags.extend(out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())));
        match out.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(tags),
        }
    }
}

async fn read_ttl(aws: &Aws, name: &str) -> Result<Ttl, ProviderError> {
    let out = aws.dynamodb().describe_time_to_live().table_name(name).send().await.map_err(sdk)?;
    let Some(d) = out.time_to_live_description() else { return Ok(Ttl::Disabled) };
    Ok(match (d.time_to_live_status(), d.attribute_name()) {
        (Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling), Some(a)) => Ttl::Attribute(a.to_string()),
        _ => Ttl::Disabled,
    })
}

async fn set_ttl(aws: &Aws, name: &str, enabled: bool, attribute: &str) -> Result<(), ProviderError> {
    let spec = TimeToLiveSpecification::builder().enabled(enabled).attribute_name(attribute).build().map_err(built)?;
    match aws.dynamodb().update_time_to_live().table_name(name).time_to_live_specification(spec).send().await.map_err(sdk) {
        Ok(_) => Ok(()),
        // "TimeToLive is already enabled": the SDK re-sent a call whose answer was lost. Done when live
        // says so.
        Err(e) if e.message.contains("already") => {
            let want = if enabled { Ttl::Attribute(attribute.to_string()) } else { Ttl::Disabled };
            if read_ttl(aws, name).await? == want {
                Ok(())
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

async fn read_pitr(aws: &Aws, name: &str) -> Result<bool, ProviderError> {
    let out = aws.dynamodb().describe_continuous_backups().table_name(name).send().await.map_err(sdk)?;
    let status = out
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status());
    Ok(status == Some(&PointInTimeRecoveryStatus::Enabled))
}

async fn set_pitr(aws: &Aws, name: &str, on: bool) -> Result<(), ProviderError> {
    let spec = PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(on).build().map_err(built)?;
    // Right after CreateTable the backups service may not know the table yet.
    retry(
        Duration::from_secs(60),
        |e| e.code.as_deref() == Some("ContinuousBackupsUnavailableException") || is_not_found(e),
        || async {
            aws.dynamodb()
                .update_continuous_backups()
                .table_name(name)
                .point_in_time_recovery_specification(spec.clone())
                .send()
                .await
                .map_err(sdk)
        },
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table::on_demand("pedidos").hash_key("id", AttrType::S)
    }

    #[test]
    fn names_keys_and_capacity_are_checked() {
        assert!(table().validate().is_empty(), "{:?}", table().validate());
        assert_eq!(Table::on_demand("pedidos").validate()[0].field, "key");
        assert_eq!(Table::on_demand("ab").hash_key("id", AttrType::S).validate()[0].field, "name");
        assert_eq!(Table::on_demand("bad name").hash_key("id", AttrType::S).validate()[0].field, "name");
        assert_eq!(Table::provisioned("t-1", 0, 5).hash_key("id", AttrType::S).validate()[0].field, "billing");
        let clash = table().gsi("by-id", Gsi::new("id", AttrType::N));
        assert_eq!(clash.validate()[0].field, "global_secondary_indexes");
        let capacity_on_demand = table().gsi("by-x", Gsi::new("x", AttrType::S).capacity(1, 1));
        assert_eq!(capacity_on_demand.validate()[0].field, "global_secondary_indexes");
        assert_eq!(table().tag("aws:x", "y").validate()[0].field, "tags");
    }

    #[test]
    fn indexes_inherit_table_capacity_and_on_demand_drops_it() {
        let mut t = Table::provisioned("t-1", 5, 7).hash_key("id", AttrType::S).gsi("by-x", Gsi::new("x", AttrType::S));
        t.normalize();
        assert_eq!(t.global_secondary_indexes["by-x"].capacity, Some(Capacity { read: 5, write: 7 }));
        let mut t = table().gsi("by-x", Gsi::new("x", AttrType::S).projection(Projection::Include(vec!["b".into(), "a".into()])));
        t.normalize();
        assert_eq!(t.global_secondary_indexes["by-x"].capacity, None);
        assert_eq!(t.global_secondary_indexes["by-x"].projection, Projection::Include(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn attribute_definitions_cover_table_and_index_keys() {
        let t = table().range_key("at", AttrType::N).gsi("by-x", Gsi::new("x", AttrType::S).range_key("at", AttrType::N));
        let defs = attribute_definitions(&t).unwrap();
        let names: Vec<&str> = defs.iter().map(|d| d.attribute_name()).collect();
        assert_eq!(names, ["at", "id", "x"]);
    }

    #[test]
    fn serialized_shape_is_readable() {
        let t = Table::provisioned("t-1", 1, 2).hash_key("id", AttrType::S).ttl("exp").stream(Stream::NewImage);
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["billing"], serde_json::json!({"provisioned": {"read": 1, "write": 2}}));
        assert_eq!(v["key"], serde_json::json!({"hash": {"name": "id", "type": "S"}}));
        assert_eq!(v["ttl"], serde_json::json!({"attribute": "exp"}));
        assert_eq!(v["stream"], serde_json::json!("new_image"));
        assert_eq!(serde_json::to_value(table()).unwrap()["billing"], serde_json::json!("on_demand"));
    }
}
