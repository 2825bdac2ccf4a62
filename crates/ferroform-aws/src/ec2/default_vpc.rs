//! Lookup: the region's default VPC, its default subnets (one per zone) and its `default` security group
//! (Terraform's `aws_vpc` with `default = true`, plus `aws_subnets` of it). APIs: DescribeVpcs, DescribeSubnets,
//! DescribeSecurityGroups (paginated).
//!
//! ```ignore
//! let vpc = s.lookup("default-vpc", ec2::DefaultVpc);
//! FargateTask::new("worker", vpc.id()).service(1, vpc.subnets(), true).add(s);
//! ```
//! A region or account without a default VPC (deleted, or an organisation's policy) is a plan error.

use super::subnet_lookup::SubnetCriteria;
use super::subnets_lookup::list_outputs;
use super::vpc_lookup::{describe_vpcs, outputs};
use super::{filter, FindSecurityGroup};
use crate::lookup::{at_least_one, exactly_one};
use crate::tags::Tags;
use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{Id, Lookup, ProviderError};
use serde::{Deserialize, Serialize};

/// The default VPC of the provider's region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefaultVpc;

ferroform_core::outputs! {
    pub struct DefaultVpcOutputs => DefaultVpcRefs {
        pub id: String as Id<super::Vpc>,
        pub arn: String as ferroform_core::Arn<super::Vpc>,
        pub cidr_block: String,
        /// Its `default` security group.
        pub default_security_group_id: String as Id<super::SecurityGroup>,
        /// Its default subnets, ordered by zone. As a list of typed ids: [`DefaultVpcRefs::subnets`].
        pub subnet_ids: Vec<String>,
        /// The zones of those subnets, in the same order.
        pub availability_zones: Vec<String>,
    }
}

impl DefaultVpcRefs {
    /// The default subnets' ids, typed, for what takes subnets (`IntoIterator<Item = Id<Subnet>>`): one
    /// reference to the whole list, which the engine splices into the list it is put in.
    pub fn subnets(&self) -> Vec<Id<super::Subnet>> {
        vec![Id::literal(self.subnet_ids().token())]
    }
}

#[async_trait]
impl Lookup for DefaultVpc {
    const TYPE: &'static str = "aws_vpc";
    type Outputs = DefaultVpcOutputs;
    type Refs = DefaultVpcRefs;
    type Context = Aws;

    async fn find(aws: &Aws, _query: &Self) -> Result<DefaultVpcOutputs, ProviderError> {
        let vpcs = describe_vpcs(aws, vec![filter("is-default", ["true"])]).await?;
        let hits = vpcs
            .iter()
            .filter(|v| v.is_default() == Some(true))
            .map(|v| (v.vpc_id().unwrap_or_default().to_string(), outputs(aws, v)))
            .collect();
        let searched = format!("default = true in {}", aws.region());
        let vpc = exactly_one("VPC", &searched, hits)?;
        let none = Tags::new();
        let c = SubnetCriteria { id: None, vpc_id: Some(&vpc.id), zone: None, tags: &none, default_for_az: Some(true) };
        let subnets = at_least_one("default subnet", &format!("vpc {}", vpc.id), c.search(aws).await?)?;
        let lists = list_outputs(&subnets);
        let group = FindSecurityGroup::named("default").in_vpc(Id::literal(vpc.id.clone())).find_one(aws).await?;
        Ok(DefaultVpcOutputs {
            id: vpc.id,
            arn: vpc.arn,
            cidr_block: vpc.cidr_block,
            default_security_group_id: group.id,
            subnet_ids: lists.subnet_ids,
            availability_zones: lists.availability_zones,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroform_core::FromAddress;

    #[test]
    fn the_query_is_nothing_and_the_subnets_one_reference() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::to_string(&DefaultVpc)?, "null");
        let back: DefaultVpc = serde_json::from_str("null")?;
        assert_eq!(back, DefaultVpc);
        let refs = DefaultVpcRefs::from_address("net/default-vpc");
        assert_eq!(refs.subnets(), [Id::literal(refs.subnet_ids().token())]);
        Ok(())
    }
}
