//! ECS (`aws-sdk-ecs`): clusters, Fargate task definitions and services.

mod cluster;
mod service;
mod task_definition;

pub use cluster::{Cluster, ClusterOutputs, ClusterRefs, ContainerInsights};
pub use service::{Network, Service, ServiceOutputs, ServiceRefs};
pub use task_definition::{
    check_fargate_size, Architecture, AwsLogs, Container, PortMapping, Protocol, TaskDefinition, TaskDefinitionOutputs, TaskDefinitionRefs,
    FARGATE_SIZES,
};

use crate::error::sdk;
use crate::tags::{without_aws_managed, Tags};
use crate::Aws;
use ferroform_core::{FieldError, ProviderError};

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<Cluster>();
    reg.register::<TaskDefinition>();
    reg.register::<Service>();
}

/// ECS names (clusters, services, task definition families, containers): letters, digits, `_-`, 1 to 255.
pub(crate) fn check_name(e: &mut Vec<FieldError>, field: &str, value: &str) {
    crate::validate::name(e, field, value, 1, 255, |c| c.is_ascii_alphanumeric() || "_-".contains(c), "letters, digits, `_-`");
}

/// ECS's tag rules (the common AWS ones).
pub(crate) fn check_tags(e: &mut Vec<FieldError>, tags: &Tags) {
    crate::tags::check(e, tags, "ECS");
}

pub(crate) fn ecs_tags(tags: &Tags) -> Option<Vec<aws_sdk_ecs::types::Tag>> {
    (!tags.is_empty()).then(|| tags.iter().map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build()).collect())
}

pub(crate) fn from_ecs_tags(tags: &[aws_sdk_ecs::types::Tag]) -> Tags {
    without_aws_managed(tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect())
}

/// Brings the tags of `arn` from `prior` to `desired`: one UntagResource for keys gone, one TagResource.
pub(crate) async fn update_tags(aws: &Aws, arn: &str, prior: &Tags, desired: &Tags) -> Result<(), ProviderError> {
    let ecs = aws.ecs();
    let ecs = &ecs;
    crate::tags::sync(
        prior,
        desired,
        |keys| async { ecs.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send().await.map(drop).map_err(sdk) },
        |tags| async move { ecs.tag_resource().resource_arn(arn).set_tags(ecs_tags(&tags)).send().await.map(drop).map_err(sdk) },
    )
    .await
}

/// The last segment of an ECS ARN (`.../cluster/NAME` -> `NAME`); a plain name is returned as is.
pub(crate) fn last_segment(arn_or_name: &str) -> &str {
    arn_or_name.rsplit('/').next().unwrap_or(arn_or_name)
}

/// True for an ARN (`arn:...`), false for a plain name.
pub(crate) fn is_arn(s: &str) -> bool {
    s.starts_with("arn:")
}
