//! VPC subnet. APIs: CreateSubnet, DescribeSubnets, ModifySubnetAttribute, CreateTags, DeleteTags,
//! DeleteSubnet.
//!
//! A subnet alone can't tell whether its range sits inside its VPC's or overlaps a sibling's: both need
//! other resources' values. [`crate::components::Network`] checks that where the ranges are literals, and
//! [`crate::components::check_subnets`] does it for hand-built networks.
//!
//! Defaults when unset: `map_public_ip_on_launch` false, no tags; removing a setting puts AWS's default
//! back. Left to AWS when unset: `availability_zone` (AWS picks one).

use super::FRESH;
use super::{
    all_pages, check_cidr, check_id, fan_out, filter, on_fresh, state_is, sync_tags, tag_filters, tag_spec, tags_of, while_dependents_go,
};
use crate::error::{absent_if_not_found, sdk, wait_for, Once};
use crate::error::{create_once, is_not_found};
use crate::tags::{merge_defaults, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use ferroform_core::{CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
    /// Changing it forces a new subnet.
    pub vpc_id: String,
    /// IPv4 range inside the VPC's, /16 to /28. Changing it forces a new subnet.
    pub cidr_block: String,
    /// `us-east-1a`; AWS picks one when unset. Changing it forces a new subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// Instances launched here get a public address (AWS's default: false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_public_ip_on_launch: Option<bool>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct SubnetOutputs => SubnetRefs {
        pub id: String as ferroform_core::Id<Subnet>,
        pub arn: String as ferroform_core::Arn<Subnet>,
        pub vpc_id: String as ferroform_core::Id<crate::ec2::Vpc>,
        pub cidr_block: String,
        pub availability_zone: String,
    }
}

impl Subnet {
    pub fn new(vpc_id: ferroform_core::Id<super::Vpc>, cidr_block: impl Into<String>) -> Self {
        Self {
            vpc_id: vpc_id.into(),
            cidr_block: cidr_block.into(),
            availability_zone: None,
            map_public_ip_on_launch: None,
            tags: Tags::new(),
        }
    }
    pub fn availability_zone(mut self, zone: impl Into<String>) -> Self {
        self.availability_zone = Some(zone.into());
        self
    }
    pub fn map_public_ip_on_launch(mut self, on: bool) -> Self {
        self.map_public_ip_on_launch = Some(on);
        self
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
impl Resource for Subnet {
    const TYPE: &'static str = "aws_subnet";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] =
        &[("cidr_block", "cidr_block"), ("availability_zone", "availability_zone")];
    const REPLACE_FIELDS: &'static [&'static str] = &["vpc_id", "cidr_block", "availability_zone"];
    // AWS picks a zone when none is given; leaving it unset later must not replace the subnet.
    const COMPUTED: &'static [&'static str] = &["availability_zone"];
    type Outputs = SubnetOutputs;
    type Refs = SubnetRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check_id(&mut e, "vpc_id", &self.vpc_id, &["vpc"]);
        check_cidr(&mut e, "cidr_block", &self.cidr_block, 16, 28);
        if let Some(zone) = &self.availability_zone {
            if !ferroform_core::is_unknown_str(zone) && !zone.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                e.push(FieldError::new("availability_zone", format!("`{zone}` is not a zone name like us-east-1a")));
            }
        }
        e
    }

    // A new subnet maps no public addresses.
    fn normalize(&mut self) {
        self.map_public_ip_on_launch.get_or_insert(false);
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // A replacement with the same range can't exist beside the old subnet in one VPC.
    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, SubnetOutputs), ProviderError> {
        let ec2 = aws.ec2();
        // A VPC just made may not be visible yet: its "not found" is retried.
        let made = create_once(
            FRESH,
            is_not_found,
            || {
                ec2.create_subnet()
                    .vpc_id(&desired.vpc_id)
                    .cidr_block(&desired.cidr_block)
                    .set_availability_zone(desired.availability_zone.clone())
                    .set_tag_specifications(tag_spec(ResourceType::Subnet, &desired.tags).map(|t| vec![t]))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let id = made.id("CreateSubnet", |out| out.subnet().and_then(|s| s.subnet_id()))?;
        let observed = wait_for("the subnet to be available", Duration::from_secs(300), || async {
            let found = describe(aws, std::slice::from_ref(&id)).await?;
            let ready = found.get(&id).is_some_and(|s| state_is(s.state().map(|s| s.as_str()), "available"));
            if !ready {
                return Ok(None);
            }
            Ok(observe(aws, &id, &found[&id]))
        })
        .await?;
        if desired.map_public_ip_on_launch == Some(true) {
            set_map_public_ip(aws, &id, true).await?;
        }
        Ok((id, observed.outputs))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        let found = describe(aws, &ids).await;
        fan_out(items, found, |id, _prior, s| Ok(observe(aws, id, s)))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<SubnetOutputs, ProviderError> {
        if changed.iter().any(|f| f == "map_public_ip_on_launch") {
            set_map_public_ip(aws, id, desired.map_public_ip_on_launch.unwrap_or(false)).await?;
        }
        if changed.iter().any(|f| f == "tags") {
            sync_tags(aws, id, &prior.tags, &desired.tags).await?;
        }
        Self::read(aws, id, desired)
            .await?
            .map(|o| o.outputs)
            .ok_or_else(|| ProviderError::with_code("NotFound", format!("subnet {id} vanished")))
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let ec2 = aws.ec2();
        let deleted = while_dependents_go(|| async { ec2.delete_subnet().subnet_id(id).send().await.map_err(sdk) }).await;
        absent_if_not_found(deleted).map(|_| ())
    }

    async fn find_by_tags(aws: &Aws, _desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let out = aws.ec2().describe_subnets().set_filters(Some(tag_filters(meta))).send().await.map_err(sdk)?;
        Ok(super::adopted(out.subnets().iter().map(|s| (s.subnet_id(), s.tags())), meta))
    }
}

fn observe(aws: &Aws, id: &str, s: &aws_sdk_ec2::types::Subnet) -> Option<Observed<Subnet>> {
    let cidr = s.cidr_block().unwrap_or_default().to_string();
    let zone = s.availability_zone().unwrap_or_default().to_string();
    let vpc_id = s.vpc_id().unwrap_or_default().to_string();
    let arn = match s.subnet_arn() {
        Some(a) => a.to_string(),
        None => super::arn(aws, s.owner_id().unwrap_or_default(), "subnet", id),
    };
    Some(Observed {
        inputs: Subnet {
            vpc_id: vpc_id.clone(),
            cidr_block: cidr.clone(),
            availability_zone: Some(zone.clone()),
            map_public_ip_on_launch: s.map_public_ip_on_launch(),
            tags: tags_of(s.tags()),
        },
        outputs: SubnetOutputs { id: id.to_string(), arn, vpc_id, cidr_block: cidr, availability_zone: zone },
    })
}

/// The subnets with these ids that exist, by id.
async fn describe(aws: &Aws, ids: &[String]) -> Result<HashMap<String, aws_sdk_ec2::types::Subnet>, ProviderError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ec2 = aws.ec2();
    let subnets = all_pages(|token| {
        let req = ec2.describe_subnets().filters(filter("subnet-id", ids.iter().cloned())).set_next_token(token);
        async move {
            let out = req.send().await.map_err(sdk)?;
            Ok((out.subnets.unwrap_or_default(), out.next_token))
        }
    })
    .await?;
    Ok(subnets.into_iter().filter_map(|s| Some((s.subnet_id.clone()?, s))).collect())
}

async fn set_map_public_ip(aws: &Aws, id: &str, on: bool) -> Result<(), ProviderError> {
    let ec2 = aws.ec2();
    on_fresh(|| async {
        ec2.modify_subnet_attribute()
            .subnet_id(id)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build())
            .send()
            .await
            .map_err(sdk)
    })
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_ids_ranges_and_zones() {
        assert!(Subnet::new(ferroform_core::Id::literal("vpc-1"), "10.0.1.0/24").availability_zone("us-east-1a").validate().is_empty());
        assert!(Subnet::new(ferroform_core::Id::literal("\u{e000}${ref:net/vpc.id}"), "10.0.1.0/24").validate().is_empty());
        let e = Subnet::new(ferroform_core::Id::literal("subnet-1"), "10.0.1.0/33").availability_zone("US East").validate();
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["vpc_id", "cidr_block", "availability_zone"]);
        assert_eq!(Subnet::new(ferroform_core::Id::literal("vpc-1"), "10.0.1.0/29").validate()[0].field, "cidr_block");
    }

    #[test]
    fn unset_public_mapping_is_off() {
        let mut s = Subnet::new(ferroform_core::Id::literal("vpc-1"), "10.0.1.0/24");
        s.normalize();
        assert_eq!((s.map_public_ip_on_launch, s.availability_zone), (Some(false), None));
    }
}
