//! Public NAT gateway: private subnets' way out. APIs: CreateNatGateway, DescribeNatGateways, CreateTags,
//! DeleteTags, DeleteNatGateway.
//!
//! Creation waits for `available` (minutes on AWS) and fails with AWS's reason if the gateway ends up
//! `failed`; deletion waits for `deleted`, so the elastic IP and the subnet can go right after. A gateway
//! `deleting`, `deleted` or `failed` reads as gone.
//!
//! Defaults when unset: no tags (removed tags are deleted). Left to AWS when unset: nothing.

use super::FRESH;
use super::{check_id, client_token, fan_out, filter, state_is, sync_tags, tag_filters, tag_spec, tags_of};
use crate::error::{create_once, is_not_found, Once};
use crate::error::{sdk, wait_for};
use crate::tags::{merge_defaults, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use ferroform_core::{CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// How long AWS may take to bring a NAT gateway up or down (usually 1 to 5 minutes).
const NAT_WAIT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NatGateway {
    /// A public subnet (one whose route table goes to an internet gateway). Changing it forces a new gateway.
    pub subnet_id: String,
    /// The elastic IP's allocation id. Changing it forces a new gateway.
    pub allocation_id: String,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct NatGatewayOutputs => NatGatewayRefs {
        pub id: String as ferroform_core::Id<NatGateway>,
        pub public_ip: String,
        pub private_ip: String,
    }
}

impl NatGateway {
    pub fn new(subnet_id: ferroform_core::Id<super::Subnet>, allocation_id: ferroform_core::Id<super::ElasticIp>) -> Self {
        Self { subnet_id: subnet_id.into(), allocation_id: allocation_id.into(), tags: Tags::new() }
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
impl Resource for NatGateway {
    const TYPE: &'static str = "aws_nat_gateway";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("tags.Name", "tags.Name")];
    const REPLACE_FIELDS: &'static [&'static str] = &["subnet_id", "allocation_id"];
    type Outputs = NatGatewayOutputs;
    type Refs = NatGatewayRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check_id(&mut e, "subnet_id", &self.subnet_id, &["subnet"]);
        check_id(&mut e, "allocation_id", &self.allocation_id, &["eipalloc"]);
        e
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // An elastic IP serves one gateway at a time: the old one must let it go first.
    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, NatGatewayOutputs), ProviderError> {
        let ec2 = aws.ec2();
        let token = client_token(meta);
        // The client token makes a re-send safe on AWS; the lookup covers a token not honoured (emulators)
        // and a subnet just made, not visible yet ("not found" is retried).
        let made = create_once(
            FRESH,
            is_not_found,
            || {
                ec2.create_nat_gateway()
                    .subnet_id(&desired.subnet_id)
                    .allocation_id(&desired.allocation_id)
                    .client_token(&token)
                    .set_tag_specifications(tag_spec(ResourceType::Natgateway, &desired.tags).map(|t| vec![t]))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let id = made.id("CreateNatGateway", |out| out.nat_gateway().and_then(|n| n.nat_gateway_id()))?;
        let outputs = wait_for("the NAT gateway to be available", NAT_WAIT, || async {
            let found = describe(aws, std::slice::from_ref(&id)).await?;
            let Some(n) = found.get(&id) else { return Ok(None) };
            let state = n.state().map(|s| s.as_str().to_string());
            if state_is(state.as_deref(), "failed") {
                let why = n.failure_message().unwrap_or("no reason given");
                return Err(ProviderError::with_code(
                    n.failure_code().unwrap_or("NatGatewayFailed"),
                    format!("the NAT gateway {id} failed: {why}"),
                ));
            }
            Ok(state_is(state.as_deref(), "available").then(|| observe(id.as_str(), n).outputs))
        })
        .await?;
        Ok((id, outputs))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        let found = describe(aws, &ids).await.map(|m| m.into_iter().filter(|(_, n)| !gone(n)).collect::<HashMap<_, _>>());
        fan_out(items, found, |id, _prior, n| Ok(Some(observe(id, n))))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<NatGatewayOutputs, ProviderError> {
        if changed.iter().any(|f| f == "tags") {
            sync_tags(aws, id, &prior.tags, &desired.tags).await?;
        }
        Self::read(aws, id, desired)
            .await?
            .map(|o| o.outputs)
            .ok_or_else(|| ProviderError::with_code("NotFound", format!("NAT gateway {id} vanished")))
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let ec2 = aws.ec2();
        let r = ec2.delete_nat_gateway().nat_gateway_id(id).send().await.map_err(sdk);
        match r {
            Ok(_) => {}
            Err(e) if crate::error::is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        // The gateway as last seen (deleted), or `None` once AWS forgot it.
        let last: Option<aws_sdk_ec2::types::NatGateway> = wait_for("the NAT gateway to be deleted", NAT_WAIT, || async {
            let found = describe(aws, &[id.to_string()]).await?;
            let done = found.get(id).is_none_or(|n| state_is(n.state().map(|s| s.as_str()), "deleted"));
            Ok(done.then(|| found.get(id).cloned()))
        })
        .await?;
        // AWS lets the elastic IP go with the gateway; some emulators keep it associated with the gateway's
        // network interface, which would stop a replacement from using it: let it go explicitly.
        let Some(n) = last else { return Ok(()) };
        let enis: Vec<&str> = n.nat_gateway_addresses().iter().filter_map(|a| a.network_interface_id()).collect();
        let allocations: Vec<String> = n.nat_gateway_addresses().iter().filter_map(|a| a.allocation_id().map(str::to_string)).collect();
        if allocations.is_empty() {
            return Ok(());
        }
        let addresses = ec2.describe_addresses().filters(filter("allocation-id", allocations)).send().await.map_err(sdk)?;
        for a in addresses.addresses() {
            if let (Some(assoc), Some(eni)) = (a.association_id(), a.network_interface_id()) {
                if enis.contains(&eni) {
                    crate::error::absent_if_not_found(ec2.disassociate_address().association_id(assoc).send().await.map_err(sdk))?;
                }
            }
        }
        Ok(())
    }

    async fn find_by_tags(aws: &Aws, _desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let out = aws.ec2().describe_nat_gateways().set_filter(Some(tag_filters(meta))).send().await.map_err(sdk)?;
        // Filtered again here: not every emulator honours tag filters on NAT gateways.
        Ok(super::adopted(out.nat_gateways().iter().filter(|n| !gone(n)).map(|n| (n.nat_gateway_id(), n.tags())), meta))
    }
}

fn gone(n: &aws_sdk_ec2::types::NatGateway) -> bool {
    let state = n.state().map(|s| s.as_str());
    ["deleting", "deleted", "failed"].iter().any(|s| state_is(state, s))
}

fn observe(id: &str, n: &aws_sdk_ec2::types::NatGateway) -> Observed<NatGateway> {
    let primary = n.nat_gateway_addresses().iter().find(|a| a.is_primary() != Some(false));
    Observed {
        inputs: NatGateway {
            subnet_id: n.subnet_id().unwrap_or_default().to_string(),
            allocation_id: primary.and_then(|a| a.allocation_id()).unwrap_or_default().to_string(),
            tags: tags_of(n.tags()),
        },
        outputs: NatGatewayOutputs {
            id: id.to_string(),
            public_ip: primary.and_then(|a| a.public_ip()).unwrap_or_default().to_string(),
            private_ip: primary.and_then(|a| a.private_ip()).unwrap_or_default().to_string(),
        },
    }
}

async fn describe(aws: &Aws, ids: &[String]) -> Result<HashMap<String, aws_sdk_ec2::types::NatGateway>, ProviderError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ec2 = aws.ec2();
    let found = super::all_pages(|token| {
        let req = ec2.describe_nat_gateways().filter(filter("nat-gateway-id", ids.iter().cloned())).set_next_token(token);
        async move {
            let out = req.send().await.map_err(sdk)?;
            Ok((out.nat_gateways.unwrap_or_default(), out.next_token))
        }
    })
    .await?;
    Ok(found.into_iter().filter_map(|n| Some((n.nat_gateway_id.clone()?, n))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_ids() {
        assert!(NatGateway::new(ferroform_core::Id::literal("subnet-1"), ferroform_core::Id::literal("eipalloc-1")).validate().is_empty());
        let e = NatGateway::new(ferroform_core::Id::literal("vpc-1"), ferroform_core::Id::literal("eip-1")).validate();
        assert_eq!(e.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["subnet_id", "allocation_id"]);
    }

    #[test]
    fn gone_states_read_as_absent() {
        use aws_sdk_ec2::types::NatGatewayState;
        let n = |s: NatGatewayState| aws_sdk_ec2::types::NatGateway::builder().state(s).build();
        assert!(gone(&n(NatGatewayState::Deleted)));
        assert!(gone(&n(NatGatewayState::Failed)));
        assert!(!gone(&n(NatGatewayState::Pending)));
        assert!(!gone(&n(NatGatewayState::Available)));
    }
}
