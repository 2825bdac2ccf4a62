//! CloudWatch log group. APIs: CreateLogGroup, DescribeLogGroups, PutRetentionPolicy,
//! DeleteRetentionPolicy, ListTagsForResource, TagResource, UntagResource, DeleteLogGroup.
//!
//! Every optional field is compared whether the code sets it or not; unset, it means CloudWatch's default,
//! so removing a setting puts the default back: retention none (events kept forever; removing
//! `retention_days` calls DeleteRetentionPolicy), no tags. Left to AWS when unset: nothing.

use crate::error::{absent_if_not_found, create_once, sdk, Once, CREATE_ONCE};
use crate::tags::{merge_defaults, without_aws_managed, Tags};
use crate::validate;
use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS, TAG_STACK};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The retention values CloudWatch accepts, in days.
pub const RETENTION_DAYS: &[i32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogGroup {
    /// Changing it forces a new log group.
    pub name: String,
    /// Days to keep events; `None` keeps them forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<i32>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct LogGroupOutputs => LogGroupRefs {
        pub arn: String as ferroform_core::Arn<LogGroup>,
        pub name: String as ferroform_core::Name<LogGroup>,
    }
}

impl LogGroup {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), retention_days: None, tags: Tags::new() }
    }
    pub fn retention_days(mut self, days: i32) -> Self {
        self.retention_days = Some(days);
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

#[async_trait]
impl Resource for LogGroup {
    const TYPE: &'static str = "aws_cloudwatch_log_group";
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    type Outputs = LogGroupOutputs;
    type Refs = LogGroupRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        validate::name(
            &mut e,
            "name",
            &self.name,
            1,
            512,
            |c| c.is_ascii_alphanumeric() || "_-/.#".contains(c),
            "letters, digits, `_-/.#`",
        );
        if let Some(d) = self.retention_days {
            if !RETENTION_DAYS.contains(&d) {
                e.push(FieldError::new("retention_days", format!("{d} is not a value CloudWatch accepts; pick one of {RETENTION_DAYS:?}")));
            }
        }
        e
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // The name is the identity: a replacement with the same name can't exist beside the old one.
    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, LogGroupOutputs), ProviderError> {
        let logs = aws.logs();
        create_once(
            CREATE_ONCE,
            |_| false,
            || {
                logs.create_log_group()
                    .log_group_name(&desired.name)
                    .set_tags((!desired.tags.is_empty()).then(|| desired.tags.clone().into_iter().collect()))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        if let Some(days) = desired.retention_days {
            logs.put_retention_policy().log_group_name(&desired.name).retention_in_days(days).send().await.map_err(sdk)?;
        }
        Ok((desired.name.clone(), outputs(aws, &desired.name).await?))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    /// Groups whose names share a prefix (`/aws/lambda/app-`) are listed together: DescribeLogGroups by
    /// that prefix, 50 a page, stopping once every name is found and after at most one page fewer than
    /// there are names (a crowded prefix would cost more than one listing per name; the rest then go one by
    /// one). Tags need one ListTagsForResource per group.
    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let names: Vec<&str> = items.iter().map(|(id, _)| id.as_str()).collect();
        let found = match describe(aws, &names).await {
            Ok(found) => found,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        ferroform_core::join_bounded(names.iter().map(|name| {
            let group = found.get(*name);
            async move {
                let Some(group) = group else { return Ok(None) };
                let arn = arn_of(aws, name).await?;
                let listed = absent_if_not_found(aws.logs().list_tags_for_resource().resource_arn(&arn).send().await.map_err(sdk))?;
                let Some(listed) = listed else { return Ok(None) };
                let tags: Tags = listed.tags.unwrap_or_default().into_iter().collect();
                Ok(Some(Observed {
                    inputs: LogGroup { name: name.to_string(), retention_days: group.retention_in_days(), tags: without_aws_managed(tags) },
                    outputs: LogGroupOutputs { arn, name: name.to_string() },
                }))
            }
        }))
        .await
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<LogGroupOutputs, ProviderError> {
        let logs = aws.logs();
        if changed.iter().any(|f| f == "retention_days") {
            match desired.retention_days {
                Some(days) => {
                    logs.put_retention_policy().log_group_name(id).retention_in_days(days).send().await.map(|_| ()).map_err(sdk)?
                }
                None => logs.delete_retention_policy().log_group_name(id).send().await.map(|_| ()).map_err(sdk)?,
            }
        }
        if changed.iter().any(|f| f == "tags") {
            let arn = arn_of(aws, id).await?;
            crate::tags::sync(
                &prior.tags,
                &desired.tags,
                |keys| async { logs.untag_resource().resource_arn(&arn).set_tag_keys(Some(keys)).send().await.map(drop).map_err(sdk) },
                |tags| async {
                    logs.tag_resource().resource_arn(&arn).set_tags(Some(tags.into_iter().collect())).send().await.map(drop).map_err(sdk)
                },
            )
            .await?;
        }
        outputs(aws, id).await
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        absent_if_not_found(aws.logs().delete_log_group().log_group_name(id).send().await.map_err(sdk)).map(|_| ())
    }

    /// The name is fixed by the code: a group a killed run created is found by name and recognised as ours
    /// by its `ferroform:stack`/`ferroform:address` tags (without this the next create fails: it exists).
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let Some(found) = Self::read(aws, &desired.name, desired).await? else { return Ok(None) };
        let tags = &found.inputs.tags;
        let ours = tags.get(TAG_STACK) == Some(&meta.stack) && tags.get(TAG_ADDRESS) == Some(&meta.address);
        Ok(ours.then(|| desired.name.clone()))
    }
}

/// The ARN without the `:*` suffix DescribeLogGroups adds: the one tagging APIs take.
/// The groups of these names that exist, by name.
async fn describe(aws: &Aws, names: &[&str]) -> Result<HashMap<String, aws_sdk_cloudwatchlogs::types::LogGroup>, ProviderError> {
    let mut found = HashMap::new();
    let shared = common_prefix(names);
    if names.len() >= 2 && !shared.is_empty() {
        list(aws, shared, names, names.len() - 1, &mut found).await?;
    }
    for name in names {
        if !found.contains_key(*name) {
            // Each name as its own prefix: itself, plus any longer names, which sort after it.
            list(aws, name, &[name], usize::MAX, &mut found).await?;
        }
    }
    Ok(found)
}

/// DescribeLogGroups by `prefix`, keeping the groups named in `wanted`, until all are found, the listing
/// ends, or `max_pages` pages were read.
async fn list(
    aws: &Aws,
    prefix: &str,
    wanted: &[&str],
    max_pages: usize,
    found: &mut HashMap<String, aws_sdk_cloudwatchlogs::types::LogGroup>,
) -> Result<(), ProviderError> {
    let mut token = None;
    for _ in 0..max_pages {
        let out = aws.logs().describe_log_groups().log_group_name_prefix(prefix).set_next_token(token).send().await.map_err(sdk)?;
        for g in out.log_groups() {
            if let Some(name) = g.log_group_name().filter(|n| wanted.contains(n)) {
                found.insert(name.to_string(), g.clone());
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() || wanted.iter().all(|w| found.contains_key(*w)) {
            break;
        }
    }
    Ok(())
}

/// The longest prefix all names share.
fn common_prefix<'a>(names: &[&'a str]) -> &'a str {
    let Some(first) = names.first() else { return "" };
    let mut len = first.len();
    for n in &names[1..] {
        len = first.bytes().zip(n.bytes()).take(len).take_while(|(a, b)| a == b).count();
    }
    // Never cut a character in two.
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    &first[..len]
}

async fn arn_of(aws: &Aws, name: &str) -> Result<String, ProviderError> {
    aws.arn("logs", &format!("log-group:{name}")).await
}

async fn outputs(aws: &Aws, name: &str) -> Result<LogGroupOutputs, ProviderError> {
    Ok(LogGroupOutputs { arn: arn_of(aws, name).await?, name: name.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix(&["/aws/lambda/app-api", "/aws/lambda/app-worker"]), "/aws/lambda/app-");
        assert_eq!(common_prefix(&["/ecs/app", "/aws/lambda/app"]), "/");
        assert_eq!(common_prefix(&["a", "b"]), "");
        assert_eq!(common_prefix(&["/é1", "/é2"]), "/é");
        assert_eq!(common_prefix(&[]), "");
    }

    #[test]
    fn rejects_retention_cloudwatch_does_not_accept() {
        let errs = LogGroup::new("/aws/lambda/x").retention_days(2).validate();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "retention_days");
        assert!(LogGroup::new("/aws/lambda/x").retention_days(14).validate().is_empty());
        assert_eq!(LogGroup::new("bad name!").validate()[0].field, "name");
    }
}
