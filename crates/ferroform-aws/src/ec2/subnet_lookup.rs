//! Lookup: one subnet by tags, and optionally its VPC and zone (Terraform's `aws_subnet` data source). API:
//! DescribeSubnets (paginated). [`super::FindSubnets`] finds a list.
//!
//! ```ignore
//! let vpc = s.lookup("vpc", ec2::FindVpc::tagged("env", "prod"));
//! let a = s.lookup("subnet-a", ec2::FindSubnet::tagged("tier", "app").in_vpc(vpc.id()).in_zone("us-east-1a"));
//! s.add("nat", ec2::NatGateway::new(a.id(), ip.id()));
//! ```

use super::{all_pages, arn, filter};
use crate::error::sdk;
use crate::lookup::{criteria, exactly_one, has_tags};
use crate::tags::Tags;
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ec2::types::Filter;
use ferroform_core::{Id, Lookup, ProviderError};
use serde::{Deserialize, Serialize};

/// The one subnet with all these tags (in this VPC and zone, with this id, where set).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FindSubnet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct FoundSubnetOutputs => FoundSubnetRefs {
        pub id: String as Id<super::Subnet>,
        pub arn: String as ferroform_core::Arn<super::Subnet>,
        pub vpc_id: String as Id<super::Vpc>,
        pub cidr_block: String,
        pub availability_zone: String,
        pub map_public_ip_on_launch: bool,
    }
}

impl FindSubnet {
    /// The subnet with this tag (more with [`FindSubnet::tag`]).
    pub fn tagged(k: impl Into<String>, v: impl Into<String>) -> Self {
        Self::default().tag(k, v)
    }
    /// The subnet with this id: checks it exists and reads its VPC, range and zone.
    pub fn by_id(id: Id<super::Subnet>) -> Self {
        Self { id: Some(id.into()), ..Self::default() }
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
    pub fn in_vpc(mut self, vpc_id: Id<super::Vpc>) -> Self {
        self.vpc_id = Some(vpc_id.into());
        self
    }
    pub fn in_zone(mut self, zone: impl Into<String>) -> Self {
        self.availability_zone = Some(zone.into());
        self
    }

    pub(crate) fn criteria(&self) -> SubnetCriteria<'_> {
        SubnetCriteria {
            id: self.id.as_deref(),
            vpc_id: self.vpc_id.as_deref(),
            zone: self.availability_zone.as_deref(),
            tags: &self.tags,
            default_for_az: None,
        }
    }
}

/// What the subnet lookups search by.
pub(crate) struct SubnetCriteria<'a> {
    pub id: Option<&'a str>,
    pub vpc_id: Option<&'a str>,
    pub zone: Option<&'a str>,
    pub tags: &'a Tags,
    /// The default subnets of the default VPC.
    pub default_for_az: Option<bool>,
}

impl SubnetCriteria<'_> {
    fn filters(&self) -> Vec<Filter> {
        let mut f: Vec<Filter> = self.tags.iter().map(|(k, v)| filter(&format!("tag:{k}"), [v.clone()])).collect();
        f.extend(self.id.map(|v| filter("subnet-id", [v])));
        f.extend(self.vpc_id.map(|v| filter("vpc-id", [v])));
        f.extend(self.zone.map(|v| filter("availability-zone", [v])));
        f.extend(self.default_for_az.map(|d| filter("default-for-az", [d.to_string()])));
        f
    }

    /// Checked on our side too (see `has_tags`).
    fn matches(&self, s: &aws_sdk_ec2::types::Subnet) -> bool {
        self.id.is_none_or(|v| s.subnet_id() == Some(v))
            && self.vpc_id.is_none_or(|v| s.vpc_id() == Some(v))
            && self.zone.is_none_or(|v| s.availability_zone() == Some(v))
            && self.default_for_az.is_none_or(|d| s.default_for_az() == Some(d))
            && has_tags(self.tags, s.tags().iter().map(|t| (t.key(), t.value())))
    }

    pub fn searched(&self) -> String {
        criteria(self.tags, &[("id", self.id), ("vpc", self.vpc_id), ("zone", self.zone)])
    }

    /// Every matching subnet (all pages), ordered by zone then id: a list lookup answers the same list for
    /// the same subnets, so what uses it sees no change.
    pub async fn search(&self, aws: &Aws) -> Result<Vec<aws_sdk_ec2::types::Subnet>, ProviderError> {
        let ec2 = aws.ec2();
        let filters = self.filters();
        let all = all_pages(|token| {
            let req = ec2.describe_subnets().set_filters(Some(filters.clone()).filter(|f| !f.is_empty())).set_next_token(token);
            async move {
                let out = req.send().await.map_err(sdk)?;
                Ok((out.subnets.unwrap_or_default(), out.next_token))
            }
        })
        .await?;
        let mut found: Vec<_> = all.into_iter().filter(|s| self.matches(s)).collect();
        found.sort_by(|a, b| (a.availability_zone(), a.subnet_id()).cmp(&(b.availability_zone(), b.subnet_id())));
        Ok(found)
    }
}

fn outputs(aws: &Aws, s: &aws_sdk_ec2::types::Subnet) -> FoundSubnetOutputs {
    let id = s.subnet_id().unwrap_or_default().to_string();
    FoundSubnetOutputs {
        arn: match s.subnet_arn() {
            Some(a) => a.to_string(),
            None => arn(aws, s.owner_id().unwrap_or_default(), "subnet", &id),
        },
        id,
        vpc_id: s.vpc_id().unwrap_or_default().to_string(),
        cidr_block: s.cidr_block().unwrap_or_default().to_string(),
        availability_zone: s.availability_zone().unwrap_or_default().to_string(),
        map_public_ip_on_launch: s.map_public_ip_on_launch().unwrap_or(false),
    }
}

#[async_trait]
impl Lookup for FindSubnet {
    const TYPE: &'static str = "aws_subnet";
    type Outputs = FoundSubnetOutputs;
    type Refs = FoundSubnetRefs;
    type Context = Aws;

    async fn find(aws: &Aws, query: &Self) -> Result<FoundSubnetOutputs, ProviderError> {
        let c = query.criteria();
        let found = c.search(aws).await?;
        exactly_one(
            "subnet",
            &c.searched(),
            found.iter().map(|s| (s.subnet_id().unwrap_or_default().to_string(), outputs(aws, s))).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{Subnet, Tag};

    fn subnet(id: &str, vpc: &str, zone: &str, tags: &[(&str, &str)]) -> Subnet {
        let tags = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
        Subnet::builder().subnet_id(id).vpc_id(vpc).availability_zone(zone).default_for_az(false).set_tags(Some(tags)).build()
    }

    #[test]
    fn vpc_zone_and_tags_narrow_the_search() {
        let q = FindSubnet::tagged("tier", "app").in_vpc(Id::literal("vpc-1")).in_zone("us-east-1a");
        let c = q.criteria();
        let filters = c.filters();
        let names: Vec<&str> = filters.iter().filter_map(|f| f.name()).collect();
        assert_eq!(names, ["tag:tier", "vpc-id", "availability-zone"]);
        assert!(c.matches(&subnet("subnet-1", "vpc-1", "us-east-1a", &[("tier", "app")])));
        assert!(!c.matches(&subnet("subnet-2", "vpc-2", "us-east-1a", &[("tier", "app")])), "another VPC");
        assert!(!c.matches(&subnet("subnet-3", "vpc-1", "us-east-1b", &[("tier", "app")])), "another zone");
        assert!(!c.matches(&subnet("subnet-4", "vpc-1", "us-east-1a", &[("tier", "db")])), "another tier");
        assert_eq!(c.searched(), "tags tier=app; vpc vpc-1; zone us-east-1a");
        let any = FindSubnet::default();
        let default = SubnetCriteria { default_for_az: Some(true), ..any.criteria() };
        assert!(!default.matches(&subnet("subnet-1", "vpc-1", "us-east-1a", &[])), "not a default subnet");
    }
}
