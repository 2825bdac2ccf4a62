//! VPC. APIs: CreateVpc, DescribeVpcs, DescribeVpcAttribute, ModifyVpcAttribute, DescribeSecurityGroups
//! (its default group), DescribeRouteTables (its main table), CreateTags, DeleteTags, DeleteVpc.
//!
//! A read of N VPCs costs 3 calls (VPCs, default groups, main tables, all batched and concurrent) plus two
//! `DescribeVpcAttribute` per VPC (EC2 answers one attribute at a time): both DNS attributes are always read,
//! so a setting removed from the code, or changed behind its back, shows.
//!
//! Defaults when unset: `enable_dns_support` true, `enable_dns_hostnames` false, no tags; removing a setting
//! puts AWS's default back. Left to AWS when unset: nothing.

use super::{
    all_pages, arn, check_cidr, fan_out, filter, on_fresh, state_is, sync_tags, tag_filters, tag_spec, tags_of, while_dependents_go,
};
use crate::error::{absent_if_not_found, create_once, sdk, wait_for, Once, CREATE_ONCE};
use crate::tags::{merge_defaults, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName};
use ferroform_core::{CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// AWS's value of `enable_dns_support` for a new VPC.
const DEFAULT_DNS_SUPPORT: bool = true;
/// AWS's value of `enable_dns_hostnames` for a new (non-default) VPC.
const DEFAULT_DNS_HOSTNAMES: bool = false;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vpc {
    /// IPv4 range, /16 to /28. Changing it forces a new VPC.
    pub cidr_block: String,
    /// DNS resolution through the Amazon-provided server (AWS's default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dns_support: Option<bool>,
    /// Public DNS hostnames for instances with public addresses (AWS's default: false). Needs DNS support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dns_hostnames: Option<bool>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct VpcOutputs => VpcRefs {
        pub id: String as ferroform_core::Id<Vpc>,
        pub arn: String as ferroform_core::Arn<Vpc>,
        pub cidr_block: String,
        /// The `default` security group AWS creates with the VPC.
        pub default_security_group_id: String as ferroform_core::Id<crate::ec2::SecurityGroup>,
        /// The route table subnets use unless associated with another.
        pub main_route_table_id: String as ferroform_core::Id<crate::ec2::RouteTable>,
    }
}

impl Vpc {
    pub fn new(cidr_block: impl Into<String>) -> Self {
        Self { cidr_block: cidr_block.into(), enable_dns_support: None, enable_dns_hostnames: None, tags: Tags::new() }
    }
    pub fn dns_support(mut self, on: bool) -> Self {
        self.enable_dns_support = Some(on);
        self
    }
    pub fn dns_hostnames(mut self, on: bool) -> Self {
        self.enable_dns_hostnames = Some(on);
        self
    }
    /// The `Name` tag the console shows.
    pub fn name(self, name: impl Into<String>) -> Self {
        self.tag("Name", name)
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

#[async_trait]
impl Resource for Vpc {
    const TYPE: &'static str = "aws_vpc";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("tags.Name", "tags.Name"), ("cidr_block", "cidr_block")];
    const REPLACE_FIELDS: &'static [&'static str] = &["cidr_block"];
    type Outputs = VpcOutputs;
    type Refs = VpcRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check_cidr(&mut e, "cidr_block", &self.cidr_block, 16, 28);
        if self.enable_dns_hostnames == Some(true) && self.enable_dns_support == Some(false) {
            e.push(FieldError::new("enable_dns_hostnames", "DNS hostnames need DNS support: drop `enable_dns_support = false`"));
        }
        e
    }

    // What a new VPC has when CreateVpc is given neither attribute.
    fn normalize(&mut self) {
        self.enable_dns_support.get_or_insert(DEFAULT_DNS_SUPPORT);
        self.enable_dns_hostnames.get_or_insert(DEFAULT_DNS_HOSTNAMES);
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, VpcOutputs), ProviderError> {
        let ec2 = aws.ec2();
        let made = create_once(
            CREATE_ONCE,
            |_| false,
            || {
                ec2.create_vpc()
                    .cidr_block(&desired.cidr_block)
                    .set_tag_specifications(tag_spec(ResourceType::Vpc, &desired.tags).map(|t| vec![t]))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let id = made.id("CreateVpc", |out| out.vpc().and_then(|v| v.vpc_id()))?;
        // Usable once `available`; then only the attributes that differ from a new VPC's are set.
        let fresh =
            Vpc { enable_dns_support: Some(DEFAULT_DNS_SUPPORT), enable_dns_hostnames: Some(DEFAULT_DNS_HOSTNAMES), ..desired.clone() };
        wait_for("the VPC to be available", Duration::from_secs(300), || async {
            let found = describe(aws, std::slice::from_ref(&id)).await?;
            Ok(found.get(&id).filter(|v| state_is(v.state().map(|s| s.as_str()), "available")).map(|_| ()))
        })
        .await?;
        set_dns(aws, &id, &fresh, desired).await?;
        Ok((id.clone(), outputs_of(aws, &id).await?))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        read_vpcs(aws, items, true).await
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<VpcOutputs, ProviderError> {
        if changed.iter().any(|f| f.starts_with("enable_dns")) {
            set_dns(aws, id, prior, desired).await?;
        }
        if changed.iter().any(|f| f == "tags") {
            sync_tags(aws, id, &prior.tags, &desired.tags).await?;
        }
        outputs_of(aws, id).await
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let ec2 = aws.ec2();
        let deleted = while_dependents_go(|| async { ec2.delete_vpc().vpc_id(id).send().await.map_err(sdk) }).await;
        absent_if_not_found(deleted).map(|_| ()).map_err(|e| {
            if e.code.as_deref() == Some("DependencyViolation") {
                e.hint(format!("something this stack does not manage still uses the VPC (ENIs, subnets, gateways); look with `aws ec2 describe-network-interfaces --filters Name=vpc-id,Values={id}`"))
            } else {
                e
            }
        })
    }

    async fn find_by_tags(aws: &Aws, _desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let out = aws.ec2().describe_vpcs().set_filters(Some(tag_filters(meta))).send().await.map_err(sdk)?;
        Ok(super::adopted(out.vpcs().iter().map(|v| (v.vpc_id(), v.tags())), meta))
    }
}

/// A VPC's DNS support and DNS hostnames, as read (`None` when not asked or not answered).
type Dns = (Option<bool>, Option<bool>);

/// Reads VPCs, with their DNS attributes unless `with_attrs` is false (create and update only need the
/// outputs).
async fn read_vpcs(aws: &Aws, items: &[(String, Vpc)], with_attrs: bool) -> Vec<Result<Option<Observed<Vpc>>, ProviderError>> {
    let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
    let (vpcs, extras) = futures::join!(describe(aws, &ids), defaults_of(aws, &ids));
    let found = match (vpcs, extras) {
        (Ok(v), Ok(x)) => Ok((v, x)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let (vpcs, (groups, tables)) = match found {
        Ok(f) => f,
        Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
    };
    // The DNS attributes of every VPC found, all at once.
    let known = &vpcs;
    let attrs = ferroform_core::join_bounded(items.iter().map(|(id, _)| async move {
        if !with_attrs || !known.contains_key(id) {
            return Ok((None, None));
        }
        let (support, hostnames) = futures::try_join!(
            attribute(aws, id, VpcAttributeName::EnableDnsSupport),
            attribute(aws, id, VpcAttributeName::EnableDnsHostnames)
        )?;
        Ok::<_, ProviderError>((support, hostnames))
    }))
    .await;
    let attrs: HashMap<&str, Result<Dns, ProviderError>> = items.iter().map(|(id, _)| id.as_str()).zip(attrs).collect();
    fan_out(items, Ok(vpcs), |id, _prior, v| {
        let (support, hostnames) = match attrs.get(id) {
            Some(Ok(a)) => *a,
            Some(Err(e)) => return Err(e.clone()),
            None => (None, None),
        };
        let cidr = v.cidr_block().unwrap_or_default().to_string();
        Ok(Some(Observed {
            inputs: Vpc { cidr_block: cidr.clone(), enable_dns_support: support, enable_dns_hostnames: hostnames, tags: tags_of(v.tags()) },
            outputs: VpcOutputs {
                id: id.to_string(),
                arn: arn(aws, v.owner_id().unwrap_or_default(), "vpc", id),
                cidr_block: cidr,
                default_security_group_id: groups.get(id).cloned().unwrap_or_default(),
                main_route_table_id: tables.get(id).cloned().unwrap_or_default(),
            },
        }))
    })
}

/// The outputs of one VPC, without reading its attributes.
async fn outputs_of(aws: &Aws, id: &str) -> Result<VpcOutputs, ProviderError> {
    let prior = Vpc::new("");
    read_vpcs(aws, &[(id.to_string(), prior)], false)
        .await
        .pop()
        .unwrap_or(Ok(None))?
        .map(|o| o.outputs)
        .ok_or_else(|| ProviderError::with_code("NotFound", format!("VPC {id} vanished")))
}

/// The VPCs with these ids that exist, by id (filtered by id, so a missing one is simply absent).
async fn describe(aws: &Aws, ids: &[String]) -> Result<HashMap<String, aws_sdk_ec2::types::Vpc>, ProviderError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ec2 = aws.ec2();
    let vpcs = all_pages(|token| {
        let req = ec2.describe_vpcs().filters(filter("vpc-id", ids.iter().cloned())).set_next_token(token);
        async move {
            let out = req.send().await.map_err(sdk)?;
            Ok((out.vpcs.unwrap_or_default(), out.next_token))
        }
    })
    .await?;
    Ok(vpcs.into_iter().filter_map(|v| Some((v.vpc_id.clone()?, v))).collect())
}

/// The default security group and main route table of each VPC, by VPC id: two calls for all.
async fn defaults_of(aws: &Aws, ids: &[String]) -> Result<(HashMap<String, String>, HashMap<String, String>), ProviderError> {
    if ids.is_empty() {
        return Ok((HashMap::new(), HashMap::new()));
    }
    let ec2 = aws.ec2();
    let groups = all_pages(|token| {
        let req = ec2
            .describe_security_groups()
            .filters(filter("vpc-id", ids.iter().cloned()))
            .filters(filter("group-name", ["default"]))
            .set_next_token(token);
        async move {
            let out = req.send().await.map_err(sdk)?;
            Ok((out.security_groups.unwrap_or_default(), out.next_token))
        }
    });
    let tables = all_pages(|token| {
        let req = ec2
            .describe_route_tables()
            .filters(filter("vpc-id", ids.iter().cloned()))
            .filters(filter("association.main", ["true"]))
            .set_next_token(token);
        async move {
            let out = req.send().await.map_err(sdk)?;
            Ok((out.route_tables.unwrap_or_default(), out.next_token))
        }
    });
    let (groups, tables) = futures::try_join!(groups, tables)?;
    let groups = groups.into_iter().filter(|g| g.group_name() == Some("default")).filter_map(|g| Some((g.vpc_id?, g.group_id?))).collect();
    let tables = tables
        .into_iter()
        .filter(|t| t.associations().iter().any(|a| a.main() == Some(true)))
        .filter_map(|t| Some((t.vpc_id?, t.route_table_id?)))
        .collect();
    Ok((groups, tables))
}

async fn attribute(aws: &Aws, id: &str, name: VpcAttributeName) -> Result<Option<bool>, ProviderError> {
    let out = aws.ec2().describe_vpc_attribute().vpc_id(id).attribute(name.clone()).send().await.map_err(sdk)?;
    let value = match name {
        VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames(),
        _ => out.enable_dns_support(),
    };
    Ok(value.and_then(|v| v.value()))
}

/// Sets the DNS attributes that differ, one call each (EC2 takes one attribute per call), in the order
/// AWS accepts: support on before hostnames on, hostnames off before support off.
async fn set_dns(aws: &Aws, id: &str, live: &Vpc, desired: &Vpc) -> Result<(), ProviderError> {
    let ec2 = aws.ec2();
    let support = desired.enable_dns_support.filter(|v| live.enable_dns_support != Some(*v));
    let hostnames = desired.enable_dns_hostnames.filter(|v| live.enable_dns_hostnames != Some(*v));
    let set_support = |on: bool| {
        let ec2 = ec2.clone();
        async move {
            on_fresh(|| async {
                ec2.modify_vpc_attribute()
                    .vpc_id(id)
                    .enable_dns_support(AttributeBooleanValue::builder().value(on).build())
                    .send()
                    .await
                    .map_err(sdk)
            })
            .await
            .map(|_| ())
        }
    };
    let set_hostnames = |on: bool| {
        let ec2 = ec2.clone();
        async move {
            on_fresh(|| async {
                ec2.modify_vpc_attribute()
                    .vpc_id(id)
                    .enable_dns_hostnames(AttributeBooleanValue::builder().value(on).build())
                    .send()
                    .await
                    .map_err(sdk)
            })
            .await
            .map(|_| ())
        }
    };
    if support == Some(true) {
        set_support(true).await?;
    }
    if let Some(on) = hostnames {
        set_hostnames(on).await?;
    }
    if support == Some(false) {
        set_support(false).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_the_cidr_and_dns_pairing() {
        assert!(Vpc::new("10.0.0.0/16").dns_hostnames(true).validate().is_empty());
        let e = Vpc::new("10.0.0.0/8").validate();
        assert_eq!(e[0].field, "cidr_block");
        assert!(e[0].message.contains("/16 to /28"), "{}", e[0].message);
        assert_eq!(Vpc::new("10.0.0.1/16").validate()[0].field, "cidr_block");
        assert_eq!(Vpc::new("10.0.0.0/16").dns_support(false).dns_hostnames(true).validate()[0].field, "enable_dns_hostnames");
    }

    #[test]
    fn unset_attributes_are_aws_defaults() {
        let mut v = Vpc::new("10.0.0.0/16");
        v.normalize();
        assert_eq!((v.enable_dns_support, v.enable_dns_hostnames), (Some(true), Some(false)));
        let mut set = Vpc::new("10.0.0.0/16").dns_support(false);
        set.normalize();
        set.normalize();
        assert_eq!((set.enable_dns_support, set.enable_dns_hostnames), (Some(false), Some(false)));
    }

    #[test]
    fn unset_attributes_stay_out_of_the_inputs() {
        let v = serde_json::to_value(Vpc::new("10.0.0.0/16").name("main")).unwrap_or_default();
        assert!(v.get("enable_dns_hostnames").is_none());
        assert_eq!(v["tags"]["Name"], "main");
    }
}
