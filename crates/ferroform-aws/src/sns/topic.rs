//! SNS topic. APIs: CreateTopic, GetTopicAttributes, SetTopicAttributes, ListTagsForResource, TagResource,
//! UntagResource, DeleteTopic.
//!
//! The id is the topic's ARN. CreateTopic is idempotent by name (the same request returns the same ARN), so
//! the SDK's retry after a lost answer makes no second topic and no `create_once` is needed.
//!
//! Defaults (what an unset field means, so removing a setting puts it back): an empty display name, no tags
//! but the engine's. Left to AWS when unset: nothing.

use crate::error::{absent_if_not_found, sdk};
use crate::tags::{self, merge_defaults, without_aws_managed, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_sns::types::Tag;
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS, TAG_STACK};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    /// Changing it forces a new topic.
    pub name: String,
    /// The sender name of SMS and email notifications (up to 100 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct TopicOutputs => TopicRefs {
        pub arn: String as ferroform_core::Arn<Topic>,
        pub name: String as ferroform_core::Name<Topic>,
    }
}

impl Topic {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), display_name: None, tags: Tags::new() }
    }
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

#[async_trait]
impl Resource for Topic {
    const TYPE: &'static str = "aws_sns_topic";
    /// The id is the topic's ARN on both sides.
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("name", "name")];
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    type Outputs = TopicOutputs;
    type Refs = TopicRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        crate::validate::name(
            &mut e,
            "name",
            &self.name,
            1,
            256,
            |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
            "letters, digits, `-` and `_`",
        );
        if let Some(d) = &self.display_name {
            if !is_unknown_str(d) && d.chars().count() > 100 {
                e.push(FieldError::new("display_name", "longer than 100 characters"));
            }
        }
        tags::check(&mut e, &self.tags, "SNS");
        e
    }

    fn normalize(&mut self) {
        // SNS's value when no display name was given.
        self.display_name.get_or_insert_with(String::new);
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // The name is the identity: a replacement with the same name can't exist beside the old one.
    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, _meta: &CallMeta) -> Result<(String, TopicOutputs), ProviderError> {
        let out = aws
            .sns()
            .create_topic()
            .name(&desired.name)
            .set_attributes(
                desired.display_name.as_ref().filter(|d| !d.is_empty()).map(|d| [("DisplayName".to_string(), d.clone())].into()),
            )
            .set_tags((!desired.tags.is_empty()).then(|| sns_tags(&desired.tags)))
            .send()
            .await
            .map_err(sdk)?;
        let arn = out.topic_arn().map(str::to_string).ok_or_else(|| ProviderError::new("CreateTopic returned no ARN"))?;
        Ok((arn.clone(), TopicOutputs { arn, name: desired.name.clone() }))
    }

    async fn read(aws: &Aws, id: &str, _prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let sns = aws.sns();
        let Some(got) = absent_if_not_found(sns.get_topic_attributes().topic_arn(id).send().await.map_err(sdk))? else {
            return Ok(None);
        };
        let attributes = got.attributes.unwrap_or_default();
        let Some(listed) = absent_if_not_found(sns.list_tags_for_resource().resource_arn(id).send().await.map_err(sdk))? else {
            return Ok(None);
        };
        let tags: Tags = listed.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
        let name = name_of(id).to_string();
        let mut inputs =
            Topic { name: name.clone(), display_name: attributes.get("DisplayName").cloned(), tags: without_aws_managed(tags) };
        inputs.normalize();
        Ok(Some(Observed { inputs, outputs: TopicOutputs { arn: id.to_string(), name } }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<TopicOutputs, ProviderError> {
        let sns = aws.sns();
        if changed.iter().any(|f| f == "display_name") {
            sns.set_topic_attributes()
                .topic_arn(id)
                .attribute_name("DisplayName")
                .attribute_value(desired.display_name.clone().unwrap_or_default())
                .send()
                .await
                .map_err(sdk)?;
        }
        if changed.iter().any(|f| f == "tags") {
            let sns = &sns;
            tags::sync(
                &prior.tags,
                &desired.tags,
                |keys| async move { sns.untag_resource().resource_arn(id).set_tag_keys(Some(keys)).send().await.map(drop).map_err(sdk) },
                |tags| async move { sns.tag_resource().resource_arn(id).set_tags(Some(sns_tags(&tags))).send().await.map(drop).map_err(sdk) },
            )
            .await?;
        }
        Ok(TopicOutputs { arn: id.to_string(), name: desired.name.clone() })
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        absent_if_not_found(aws.sns().delete_topic().topic_arn(id).send().await.map_err(sdk)).map(|_| ())
    }

    /// The ARN follows from the name: a topic a killed run created is read there and recognised as ours by
    /// its `ferroform:stack`/`ferroform:address` tags.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let arn = aws.arn("sns", &desired.name).await?;
        let Some(found) = Self::read(aws, &arn, desired).await? else { return Ok(None) };
        let tags = &found.inputs.tags;
        let ours = tags.get(TAG_STACK) == Some(&meta.stack) && tags.get(TAG_ADDRESS) == Some(&meta.address);
        Ok(ours.then_some(arn))
    }
}

/// The topic name: the ARN's last part (`arn:aws:sns:REGION:ACCOUNT:NAME`).
fn name_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

fn sns_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_on(t: &Topic) -> Vec<String> {
        t.validate().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn names_and_display_names_checked() {
        assert!(errors_on(&Topic::new("pedidos-alarms_1").display_name("Pedidos")).is_empty());
        assert_eq!(errors_on(&Topic::new("bad.name")), ["name"]);
        assert_eq!(errors_on(&Topic::new("")), ["name"]);
        assert_eq!(errors_on(&Topic::new("x".repeat(257))), ["name"]);
        assert_eq!(errors_on(&Topic::new("t").display_name("d".repeat(101))), ["display_name"]);
        assert_eq!(errors_on(&Topic::new("t").tag("aws:x", "y")), ["tags"]);
    }

    #[test]
    fn unset_display_name_is_empty() {
        let mut unset = Topic::new("t");
        unset.normalize();
        assert_eq!(unset, Topic::new("t").display_name(""));
        assert_eq!(name_of("arn:aws:sns:us-east-1:123456789012:alarms"), "alarms");
    }
}
