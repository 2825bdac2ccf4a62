//! Lookup: every subnet with these tags, optionally in one VPC and zone (Terraform's `aws_subnets` data
//! source). API: DescribeSubnets (paginated). At least one must match.
//!
//! ```ignore
//! let app = s.lookup("app-subnets", ec2::FindSubnets::tagged("tier", "app").in_vpc(vpc.id()));
//! FargateTask::new("worker", vpc.id()).service(1, app.subnets(), false);
//! ```

use super::subnet_lookup::SubnetCriteria;
use crate::lookup::at_least_one;
use crate::tags::Tags;
use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{Id, Lookup, ProviderError};
use serde::{Deserialize, Serialize};

/// The subnets with all these tags (in this VPC and zone, where set).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FindSubnets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct FoundSubnetsOutputs => FoundSubnetsRefs {
        /// Ordered by zone, then id. As a list of typed ids: [`FoundSubnetsRefs::subnets`].
        pub subnet_ids: Vec<String>,
        /// The zones they are in, each once, in order.
        pub availability_zones: Vec<String>,
        pub cidr_blocks: Vec<String>,
    }
}

impl FoundSubnetsRefs {
    /// The subnets' ids, typed, for what takes subnets (`IntoIterator<Item = Id<Subnet>>`): one reference to the
    /// whole list, which the engine splices into the list it is put in.
    pub fn subnets(&self) -> Vec<Id<super::Subnet>> {
        vec![Id::literal(self.subnet_ids().token())]
    }
}

impl FindSubnets {
    /// The subnets with this tag (more with [`FindSubnets::tag`]).
    pub fn tagged(k: impl Into<String>, v: impl Into<String>) -> Self {
        Self::default().tag(k, v)
    }
    /// Every subnet of this VPC (narrow with tags or a zone).
    pub fn of_vpc(vpc_id: Id<super::Vpc>) -> Self {
        Self::default().in_vpc(vpc_id)
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
}

/// The list outputs of `subnets`, in the order given.
pub(crate) fn list_outputs(subnets: &[aws_sdk_ec2::types::Subnet]) -> FoundSubnetsOutputs {
    let text = |v: Option<&str>| v.unwrap_or_default().to_string();
    let mut zones: Vec<String> = Vec::new();
    for s in subnets {
        let z = text(s.availability_zone());
        if !zones.contains(&z) {
            zones.push(z);
        }
    }
    FoundSubnetsOutputs {
        subnet_ids: subnets.iter().map(|s| text(s.subnet_id())).collect(),
        availability_zones: zones,
        cidr_blocks: subnets.iter().map(|s| text(s.cidr_block())).collect(),
    }
}

#[async_trait]
impl Lookup for FindSubnets {
    const TYPE: &'static str = "aws_subnets";
    type Outputs = FoundSubnetsOutputs;
    type Refs = FoundSubnetsRefs;
    type Context = Aws;

    async fn find(aws: &Aws, query: &Self) -> Result<FoundSubnetsOutputs, ProviderError> {
        let c = SubnetCriteria {
            id: None,
            vpc_id: query.vpc_id.as_deref(),
            zone: query.availability_zone.as_deref(),
            tags: &query.tags,
            default_for_az: None,
        };
        let found = at_least_one("subnet", &c.searched(), c.search(aws).await?)?;
        Ok(list_outputs(&found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::Subnet;
    use ferroform_core::FromAddress;

    #[test]
    fn the_typed_list_is_one_reference_to_the_whole_list() {
        let refs = FoundSubnetsRefs::from_address("app-subnets");
        let ids = refs.subnets();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].as_str(), refs.subnet_ids().token());
        assert!(ids[0].as_str().contains("app-subnets.subnet_ids"));
    }

    #[test]
    fn lists_keep_the_order_and_zones_come_once() {
        let s = |id: &str, zone: &str, cidr: &str| Subnet::builder().subnet_id(id).availability_zone(zone).cidr_block(cidr).build();
        let out = list_outputs(&[
            s("subnet-1", "us-east-1a", "10.0.1.0/24"),
            s("subnet-2", "us-east-1a", "10.0.2.0/24"),
            s("subnet-3", "us-east-1b", "10.0.3.0/24"),
        ]);
        assert_eq!(out.subnet_ids, ["subnet-1", "subnet-2", "subnet-3"]);
        assert_eq!(out.availability_zones, ["us-east-1a", "us-east-1b"]);
        assert_eq!(out.cidr_blocks, ["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]);
    }
}
