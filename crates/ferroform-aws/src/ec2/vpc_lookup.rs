//! Lookup: one VPC by tags, id or range (Terraform's `aws_vpc` data source). API: DescribeVpcs (paginated).
//!
//! ```ignore
//! let vpc = s.lookup("vpc", ec2::FindVpc::tagged("env", "prod"));
//! s.add("sg", ec2::SecurityGroup::new("app", vpc.id()));
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

/// The one VPC with all these tags (and this id, range, default flag, where set).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FindVpc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_block: Option<String>,
    /// The region's default VPC (true) or any other (false); see also [`super::DefaultVpc`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

ferroform_core::outputs! {
    pub struct FoundVpcOutputs => FoundVpcRefs {
        pub id: String as Id<super::Vpc>,
        pub arn: String as ferroform_core::Arn<super::Vpc>,
        pub cidr_block: String,
        pub owner_id: String,
        pub is_default: bool,
    }
}

impl FindVpc {
    /// The VPC with this tag (more with [`FindVpc::tag`]).
    pub fn tagged(k: impl Into<String>, v: impl Into<String>) -> Self {
        Self::default().tag(k, v)
    }
    /// The VPC with this id: checks it exists and reads its range.
    pub fn by_id(id: Id<super::Vpc>) -> Self {
        Self { id: Some(id.into()), ..Self::default() }
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
    pub fn cidr_block(mut self, cidr: impl Into<String>) -> Self {
        self.cidr_block = Some(cidr.into());
        self
    }
    pub fn default_vpc(mut self, yes: bool) -> Self {
        self.default = Some(yes);
        self
    }

    fn filters(&self) -> Vec<Filter> {
        let mut f: Vec<Filter> = self.tags.iter().map(|(k, v)| filter(&format!("tag:{k}"), [v.clone()])).collect();
        f.extend(self.id.iter().map(|id| filter("vpc-id", [id.clone()])));
        f.extend(self.cidr_block.iter().map(|c| filter("cidr", [c.clone()])));
        f.extend(self.default.map(|d| filter("is-default", [d.to_string()])));
        f
    }

    /// Checked on our side too (see `has_tags`).
    fn matches(&self, v: &aws_sdk_ec2::types::Vpc) -> bool {
        self.id.as_deref().is_none_or(|id| v.vpc_id() == Some(id))
            && self.cidr_block.as_deref().is_none_or(|c| v.cidr_block() == Some(c))
            && self.default.is_none_or(|d| v.is_default() == Some(d))
            && has_tags(&self.tags, v.tags().iter().map(|t| (t.key(), t.value())))
    }

    fn searched(&self) -> String {
        let default = self.default.map(|d| d.to_string());
        criteria(&self.tags, &[("id", self.id.as_deref()), ("range", self.cidr_block.as_deref()), ("default", default.as_deref())])
    }
}

/// Every VPC the filters select (all pages).
pub(crate) async fn describe_vpcs(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<aws_sdk_ec2::types::Vpc>, ProviderError> {
    let ec2 = aws.ec2();
    all_pages(|token| {
        let req = ec2.describe_vpcs().set_filters(Some(filters.clone()).filter(|f| !f.is_empty())).set_next_token(token);
        async move {
            let out = req.send().await.map_err(sdk)?;
            Ok((out.vpcs.unwrap_or_default(), out.next_token))
        }
    })
    .await
}

pub(crate) fn outputs(aws: &Aws, v: &aws_sdk_ec2::types::Vpc) -> FoundVpcOutputs {
    let id = v.vpc_id().unwrap_or_default().to_string();
    let owner_id = v.owner_id().unwrap_or_default().to_string();
    FoundVpcOutputs {
        arn: arn(aws, &owner_id, "vpc", &id),
        id,
        cidr_block: v.cidr_block().unwrap_or_default().to_string(),
        owner_id,
        is_default: v.is_default().unwrap_or(false),
    }
}

#[async_trait]
impl Lookup for FindVpc {
    const TYPE: &'static str = "aws_vpc";
    type Outputs = FoundVpcOutputs;
    type Refs = FoundVpcRefs;
    type Context = Aws;

    async fn find(aws: &Aws, query: &Self) -> Result<FoundVpcOutputs, ProviderError> {
        let found = describe_vpcs(aws, query.filters()).await?;
        let hits =
            found.iter().filter(|v| query.matches(v)).map(|v| (v.vpc_id().unwrap_or_default().to_string(), outputs(aws, v))).collect();
        exactly_one("VPC", &query.searched(), hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{Tag, Vpc};

    fn vpc(id: &str, cidr: &str, default: bool, tags: &[(&str, &str)]) -> Vpc {
        let tags = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
        Vpc::builder().vpc_id(id).cidr_block(cidr).is_default(default).set_tags(Some(tags)).build()
    }

    #[test]
    fn every_criterion_is_a_filter_and_is_checked_again() {
        let q = FindVpc::tagged("env", "prod").tag("team", "a").cidr_block("10.0.0.0/16");
        let filters = q.filters();
        let names: Vec<&str> = filters.iter().filter_map(|f| f.name()).collect();
        assert_eq!(names, ["tag:env", "tag:team", "cidr"]);
        assert!(q.matches(&vpc("vpc-1", "10.0.0.0/16", false, &[("env", "prod"), ("team", "a"), ("x", "y")])));
        assert!(!q.matches(&vpc("vpc-2", "10.0.0.0/16", false, &[("env", "prod")])), "a tag missing");
        assert!(!q.matches(&vpc("vpc-3", "10.1.0.0/16", false, &[("env", "prod"), ("team", "a")])), "another range");
        let d = FindVpc::default().default_vpc(true);
        assert!(d.matches(&vpc("vpc-4", "172.31.0.0/16", true, &[])) && !d.matches(&vpc("vpc-5", "172.31.0.0/16", false, &[])));
        assert!(FindVpc::by_id(Id::literal("vpc-4")).matches(&vpc("vpc-4", "172.31.0.0/16", true, &[])));
        assert_eq!(q.searched(), "tags env=prod, team=a; range 10.0.0.0/16");
    }

    #[test]
    fn a_query_keeps_only_what_is_set() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::to_string(&FindVpc::tagged("env", "prod"))?, r#"{"tags":{"env":"prod"}}"#);
        Ok(())
    }
}
