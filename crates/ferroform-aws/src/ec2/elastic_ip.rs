//! Elastic IP address in the VPC domain. APIs: AllocateAddress, DescribeAddresses, CreateTags, DeleteTags,
//! ReleaseAddress.
//!
//! The address a NAT gateway (or anything else) uses: whoever associates it depends on it, so it is
//! released after they let it go.
//!
//! Defaults when unset: no tags (removed tags are deleted). Left to AWS when unset: nothing.

use super::{fan_out, filter, sync_tags, tag_filters, tag_spec, tags_of};
use crate::error::{absent_if_not_found, retry, sdk, Once};
use crate::error::{create_once, Made, CREATE_ONCE};
use crate::tags::{merge_defaults, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ec2::types::{DomainType, ResourceType};
use ferroform_core::{CallMeta, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ElasticIp {
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct ElasticIpOutputs => ElasticIpRefs {
        /// The allocation id (`eipalloc-...`), the address's id.
        pub id: String as ferroform_core::Id<ElasticIp>,
        pub allocation_id: String as ferroform_core::Id<ElasticIp>,
        pub public_ip: String,
    }
}

impl ElasticIp {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn name(self, name: impl Into<String>) -> Self {
        self.tag("Name", name)
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

#[async_trait]
impl Resource for ElasticIp {
    const TYPE: &'static str = "aws_eip";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("tags.Name", "tags.Name")];
    type Outputs = ElasticIpOutputs;
    type Refs = ElasticIpRefs;
    type Context = Aws;

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, ElasticIpOutputs), ProviderError> {
        let ec2 = aws.ec2();
        let made = create_once(
            CREATE_ONCE,
            |_| false,
            || {
                ec2.allocate_address()
                    .domain(DomainType::Vpc)
                    .set_tag_specifications(tag_spec(ResourceType::ElasticIp, &desired.tags).map(|t| vec![t]))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let public_ip = match &made {
            Made::Answered(out) => out.public_ip().unwrap_or_default().to_string(),
            // Found after a lost answer: its address is read back.
            Made::Found(id) => {
                describe(aws, std::slice::from_ref(id)).await?.get(id).and_then(|a| a.public_ip()).unwrap_or_default().to_string()
            }
        };
        let id = made.id("AllocateAddress", |out| out.allocation_id())?;
        Ok((id.clone(), ElasticIpOutputs { allocation_id: id.clone(), id, public_ip }))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        let found = describe(aws, &ids).await;
        fan_out(items, found, |id, _prior, a: &aws_sdk_ec2::types::Address| {
            Ok(Some(Observed {
                inputs: ElasticIp { tags: tags_of(a.tags()) },
                outputs: ElasticIpOutputs {
                    id: id.to_string(),
                    allocation_id: id.to_string(),
                    public_ip: a.public_ip().unwrap_or_default().to_string(),
                },
            }))
        })
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<ElasticIpOutputs, ProviderError> {
        if changed.iter().any(|f| f == "tags") {
            sync_tags(aws, id, &prior.tags, &desired.tags).await?;
        }
        Self::read(aws, id, desired)
            .await?
            .map(|o| o.outputs)
            .ok_or_else(|| ProviderError::with_code("NotFound", format!("elastic IP {id} vanished")))
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let ec2 = aws.ec2();
        // A NAT gateway deleted a moment ago may still hold it for a while.
        let released = retry(
            Duration::from_secs(300),
            |e| matches!(e.code.as_deref(), Some("InvalidIPAddress.InUse" | "AuthFailure")),
            || async { ec2.release_address().allocation_id(id).send().await.map_err(sdk) },
        )
        .await;
        absent_if_not_found(released).map(|_| ())
    }

    async fn find_by_tags(aws: &Aws, _desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let out = aws.ec2().describe_addresses().set_filters(Some(tag_filters(meta))).send().await.map_err(sdk)?;
        Ok(super::adopted(out.addresses().iter().map(|a| (a.allocation_id(), a.tags())), meta))
    }
}

/// The addresses with these allocation ids that exist (DescribeAddresses does not page).
async fn describe(aws: &Aws, ids: &[String]) -> Result<HashMap<String, aws_sdk_ec2::types::Address>, ProviderError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let out = aws.ec2().describe_addresses().filters(filter("allocation-id", ids.iter().cloned())).send().await.map_err(sdk)?;
    Ok(out.addresses.unwrap_or_default().into_iter().filter_map(|a| Some((a.allocation_id.clone()?, a))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_merge_under_the_users() {
        let mut ip = ElasticIp::new().name("nat");
        ip.set_default_tags(&Tags::from([("Name".to_string(), "x".to_string()), ("ferroform:stack".to_string(), "s".to_string())]));
        assert_eq!(ip.tags.get("Name").map(String::as_str), Some("nat"));
        assert_eq!(ip.tags.len(), 2);
        assert!(ip.validate().is_empty());
    }
}
