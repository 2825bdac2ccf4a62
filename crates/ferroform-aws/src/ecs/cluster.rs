//! ECS cluster. APIs: CreateCluster, DescribeClusters (with SETTINGS and TAGS: one call reads up to 100
//! clusters), UpdateCluster (settings), TagResource, UntagResource, DeleteCluster.
//!
//! Container Insights is changed with `UpdateCluster`'s `settings`, which is what `UpdateClusterSettings`
//! does too; the emulator only implements the former.
//!
//! Left to AWS when unset: `container_insights` (the account's `containerInsights` default decides, and
//! a cluster has no "unset" to go back to). Tags removed from the code are removed.

use super::{check_name, check_tags, ecs_tags, from_ecs_tags, update_tags};
use crate::error::{absent_if_not_found, create_once, retry, sdk, wait_for, Once, CREATE_ONCE};
use crate::tags::{merge_defaults, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ecs::types::{ClusterField, ClusterSetting, ClusterSettingName};
use ferroform_core::{CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS, TAG_STACK};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// CloudWatch Container Insights for the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerInsights {
    Enabled,
    Disabled,
    /// Container Insights with enhanced observability.
    Enhanced,
}

impl ContainerInsights {
    fn as_str(self) -> &'static str {
        match self {
            ContainerInsights::Enabled => "enabled",
            ContainerInsights::Disabled => "disabled",
            ContainerInsights::Enhanced => "enhanced",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "enabled" => Some(ContainerInsights::Enabled),
            "disabled" => Some(ContainerInsights::Disabled),
            "enhanced" => Some(ContainerInsights::Enhanced),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// Changing it forces a new cluster.
    pub name: String,
    /// `None`: the account's default (left to AWS, not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_insights: Option<ContainerInsights>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct ClusterOutputs => ClusterRefs {
        pub arn: String as ferroform_core::Arn<Cluster>,
        pub name: String as ferroform_core::Name<Cluster>,
    }
}

impl Cluster {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), container_insights: None, tags: Tags::new() }
    }
    pub fn container_insights(mut self, setting: ContainerInsights) -> Self {
        self.container_insights = Some(setting);
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

/// How long a delete waits for the cluster's services to finish draining.
const DRAIN: Duration = Duration::from_secs(600);

#[async_trait]
impl Resource for Cluster {
    const TYPE: &'static str = "aws_ecs_cluster";
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    /// `container_insights`: the account setting decides it for a cluster that names none.
    const COMPUTED: &'static [&'static str] = &["container_insights"];
    type Outputs = ClusterOutputs;
    type Refs = ClusterRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check_name(&mut e, "name", &self.name);
        check_tags(&mut e, &self.tags);
        e
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // CreateCluster with a taken name returns the existing cluster: the name is the identity.
    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, ClusterOutputs), ProviderError> {
        let ecs = aws.ecs();
        // A first cluster in an account makes ECS's service-linked role, which takes a moment to be usable.
        let made = create_once(
            CREATE_ONCE,
            is_linked_role_pending,
            || {
                ecs.create_cluster()
                    .cluster_name(&desired.name)
                    .set_settings(desired.container_insights.map(|c| vec![setting(c)]))
                    .set_tags(ecs_tags(&desired.tags))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let arn = made.id("CreateCluster", |out| out.cluster().and_then(|c| c.cluster_arn()))?;
        Ok((arn.clone(), ClusterOutputs { arn, name: desired.name.clone() }))
    }

    async fn read(aws: &Aws, id: &str, _prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        Ok(describe(aws, &[id.to_string()]).await?.pop().flatten())
    }

    /// One DescribeClusters per 100 clusters.
    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let mut results = Vec::with_capacity(items.len());
        for chunk in items.chunks(100) {
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
            match describe(aws, &ids).await {
                Ok(found) => results.extend(found.into_iter().map(Ok)),
                Err(e) => results.extend(chunk.iter().map(|_| Err(e.clone()))),
            }
        }
        results
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<ClusterOutputs, ProviderError> {
        if changed.iter().any(|f| f == "container_insights") {
            if let Some(c) = desired.container_insights {
                aws.ecs().update_cluster().cluster(id).settings(setting(c)).send().await.map_err(sdk)?;
            }
        }
        if changed.iter().any(|f| f == "tags") {
            update_tags(aws, id, &prior.tags, &desired.tags).await?;
        }
        Ok(ClusterOutputs { arn: id.to_string(), name: desired.name.clone() })
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        // Services still draining keep the cluster busy for a while after their own delete.
        let deleted =
            retry(DRAIN, is_busy, || async { absent_if_not_found(aws.ecs().delete_cluster().cluster(id).send().await.map_err(sdk)) })
                .await?;
        if deleted.is_none() {
            return Ok(());
        }
        wait_for("the cluster to become INACTIVE", DRAIN, || async {
            let found = describe(aws, &[id.to_string()]).await?;
            Ok(found.first().map(Option::is_none).unwrap_or(true).then_some(()))
        })
        .await
    }

    /// The name is the identity: a cluster of that name tagged with this address is the one a killed run made.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let found = describe(aws, std::slice::from_ref(&desired.name)).await?;
        Ok(found.into_iter().flatten().find(|o| ours(&o.inputs.tags, meta)).map(|o| o.outputs.arn))
    }
}

/// True when these tags say the resource was made by this stack at this address.
pub(crate) fn ours(tags: &Tags, meta: &CallMeta) -> bool {
    tags.get(TAG_STACK) == Some(&meta.stack) && tags.get(TAG_ADDRESS) == Some(&meta.address)
}

fn setting(c: ContainerInsights) -> ClusterSetting {
    ClusterSetting::builder().name(ClusterSettingName::ContainerInsights).value(c.as_str()).build()
}

fn is_linked_role_pending(e: &ProviderError) -> bool {
    e.code.as_deref() == Some("InvalidParameterException") && e.message.contains("Unable to assume the service linked role")
}

fn is_busy(e: &ProviderError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("ClusterContainsServicesException" | "ClusterContainsTasksException" | "UpdateInProgressException" | "ResourceInUseException")
    )
}

/// Reads clusters by name or ARN, in the order asked; `None` for missing or INACTIVE ones.
async fn describe(aws: &Aws, ids: &[String]) -> Result<Vec<Option<Observed<Cluster>>>, ProviderError> {
    let out = aws
        .ecs()
        .describe_clusters()
        .set_clusters(Some(ids.to_vec()))
        .include(ClusterField::Settings)
        .include(ClusterField::Tags)
        .send()
        .await
        .map_err(sdk)?;
    Ok(ids
        .iter()
        .map(|id| {
            let c = out.clusters().iter().find(|c| c.cluster_arn() == Some(id.as_str()) || c.cluster_name() == Some(id.as_str()))?;
            if !matches!(c.status(), Some("ACTIVE" | "PROVISIONING")) {
                return None;
            }
            let name = c.cluster_name()?.to_string();
            let insights = c
                .settings()
                .iter()
                .find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights))
                .and_then(|s| s.value())
                .and_then(ContainerInsights::parse);
            Some(Observed {
                inputs: Cluster { name: name.clone(), container_insights: insights, tags: from_ecs_tags(c.tags()) },
                outputs: ClusterOutputs { arn: c.cluster_arn().unwrap_or(id).to_string(), name },
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names_and_tags() {
        assert!(Cluster::new("jobs_1-a").validate().is_empty());
        assert_eq!(Cluster::new("bad name").validate()[0].field, "name");
        assert_eq!(Cluster::new("").validate()[0].field, "name");
        assert_eq!(Cluster::new("x".repeat(256)).validate()[0].field, "name");
        assert!(Cluster::new("\u{e000}${ref:a.name}").validate().is_empty());
        assert_eq!(Cluster::new("ok").tag("aws:x", "y").validate()[0].field, "tags");
    }

    #[test]
    fn insights_serialize_as_aws_spells_them() {
        let c = Cluster::new("c").container_insights(ContainerInsights::Enhanced);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["container_insights"], "enhanced");
        assert_eq!(ContainerInsights::parse("enabled"), Some(ContainerInsights::Enabled));
    }
}
