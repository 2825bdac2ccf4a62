//! Lookup: one security group by name or tags, usually within a VPC (Terraform's `aws_security_group` data
//! source). API: DescribeSecurityGroups (paginated).
//!
//! ```ignore
//! let db = s.lookup("db-sg", ec2::FindSecurityGroup::named("database").in_vpc(vpc.id()));
//! let app = ec2::SecurityGroup::new("app", vpc.id()).egress(ec2::Rule::tcp(5432).group(db.id()));
//! ```
//! A group's name is unique only within its VPC: give the VPC.

use super::{all_pages, arn, filter};
use crate::error::sdk;
use crate::lookup::{criteria, exactly_one, has_tags};
use crate::tags::Tags;
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ec2::types::Filter;
use ferroform_core::{Id, Lookup, ProviderError};
use serde::{Deserialize, Serialize};

/// The one security group with this name and all these tags (in this VPC, with this id, where set).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FindSecurityGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct FoundSecurityGroupOutputs => FoundSecurityGroupRefs {
        pub id: String as Id<super::SecurityGroup>,
        pub arn: String as ferroform_core::Arn<super::SecurityGroup>,
        pub name: String as ferroform_core::Name<super::SecurityGroup>,
        pub vpc_id: String as Id<super::Vpc>,
        pub description: String,
    }
}

impl FindSecurityGroup {
    /// The group with this name (`default` is the VPC's own).
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: Some(name.into()), ..Self::default() }
    }
    /// The group with this tag (more with [`FindSecurityGroup::tag`]).
    pub fn tagged(k: impl Into<String>, v: impl Into<String>) -> Self {
        Self::default().tag(k, v)
    }
    pub fn by_id(id: Id<super::SecurityGroup>) -> Self {
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

    fn filters(&self) -> Vec<Filter> {
        let mut f: Vec<Filter> = self.tags.iter().map(|(k, v)| filter(&format!("tag:{k}"), [v.clone()])).collect();
        f.extend(self.id.iter().map(|v| filter("group-id", [v.clone()])));
        f.extend(self.name.iter().map(|v| filter("group-name", [v.clone()])));
        f.extend(self.vpc_id.iter().map(|v| filter("vpc-id", [v.clone()])));
        f
    }

    /// Checked on our side too (see `has_tags`).
    fn matches(&self, g: &aws_sdk_ec2::types::SecurityGroup) -> bool {
        self.id.as_deref().is_none_or(|v| g.group_id() == Some(v))
            && self.name.as_deref().is_none_or(|v| g.group_name() == Some(v))
            && self.vpc_id.as_deref().is_none_or(|v| g.vpc_id() == Some(v))
            && has_tags(&self.tags, g.tags().iter().map(|t| (t.key(), t.value())))
    }

    fn searched(&self) -> String {
        criteria(&self.tags, &[("id", self.id.as_deref()), ("name", self.name.as_deref()), ("vpc", self.vpc_id.as_deref())])
    }

    /// The one group this query finds.
    pub(crate) async fn find_one(&self, aws: &Aws) -> Result<FoundSecurityGroupOutputs, ProviderError> {
        let ec2 = aws.ec2();
        let filters = self.filters();
        let all = all_pages(|token| {
            let req = ec2.describe_security_groups().set_filters(Some(filters.clone()).filter(|f| !f.is_empty())).set_next_token(token);
            async move {
                let out = req.send().await.map_err(sdk)?;
                Ok((out.security_groups.unwrap_or_default(), out.next_token))
            }
        })
        .await?;
        let hits =
            all.iter().filter(|g| self.matches(g)).map(|g| (g.group_id().unwrap_or_default().to_string(), outputs(aws, g))).collect();
        exactly_one("security group", &self.searched(), hits)
    }
}

fn outputs(aws: &Aws, g: &aws_sdk_ec2::types::SecurityGroup) -> FoundSecurityGroupOutputs {
    let id = g.group_id().unwrap_or_default().to_string();
    FoundSecurityGroupOutputs {
        arn: match g.security_group_arn() {
            Some(a) => a.to_string(),
            None => arn(aws, g.owner_id().unwrap_or_default(), "security-group", &id),
        },
        id,
        name: g.group_name().unwrap_or_default().to_string(),
        vpc_id: g.vpc_id().unwrap_or_default().to_string(),
        description: g.description().unwrap_or_default().to_string(),
    }
}

#[async_trait]
impl Lookup for FindSecurityGroup {
    const TYPE: &'static str = "aws_security_group";
    type Outputs = FoundSecurityGroupOutputs;
    type Refs = FoundSecurityGroupRefs;
    type Context = Aws;

    async fn find(aws: &Aws, query: &Self) -> Result<FoundSecurityGroupOutputs, ProviderError> {
        query.find_one(aws).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{SecurityGroup, Tag};

    #[test]
    fn name_vpc_and_tags_narrow_the_search() {
        let g = |id: &str, name: &str, vpc: &str, tags: &[(&str, &str)]| {
            let tags = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
            SecurityGroup::builder().group_id(id).group_name(name).vpc_id(vpc).set_tags(Some(tags)).build()
        };
        let q = FindSecurityGroup::named("db").in_vpc(Id::literal("vpc-1")).tag("env", "prod");
        let filters = q.filters();
        let names: Vec<&str> = filters.iter().filter_map(|f| f.name()).collect();
        assert_eq!(names, ["tag:env", "group-name", "vpc-id"]);
        assert!(q.matches(&g("sg-1", "db", "vpc-1", &[("env", "prod")])));
        assert!(!q.matches(&g("sg-2", "db", "vpc-2", &[("env", "prod")])), "the same name in another VPC");
        assert!(!q.matches(&g("sg-3", "db", "vpc-1", &[])), "untagged");
        assert!(!q.matches(&g("sg-4", "app", "vpc-1", &[("env", "prod")])), "another name");
        assert_eq!(q.searched(), "tags env=prod; name db; vpc vpc-1");
    }
}
