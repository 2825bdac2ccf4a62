//! Internet gateway, attached to a VPC. APIs: CreateInternetGateway, AttachInternetGateway,
//! DescribeInternetGateways, DetachInternetGateway, CreateTags, DeleteTags, DeleteInternetGateway.
//!
//! Moving it to another VPC detaches it from the old one and attaches it to the new one, in place.
//!
//! Defaults when unset: `vpc_id` none (detached: removing it from the code detaches the gateway, as
//! Terraform does), no tags. Left to AWS when unset: nothing.

use super::{all_pages, check_id, fan_out, filter, on_fresh, sync_tags, tag_filters, tag_spec, tags_of, while_dependents_go};
use crate::error::{absent_if_not_found, sdk, Once};
use crate::error::{create_once, Made, CREATE_ONCE};
use crate::tags::{merge_defaults, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use ferroform_core::{CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InternetGateway {
    /// The VPC it is attached to. `None`: attached to none (a gateway attached elsewhere is detached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct InternetGatewayOutputs => InternetGatewayRefs {
        pub id: String as ferroform_core::Id<InternetGateway>,
        pub arn: String as ferroform_core::Arn<InternetGateway>,
    }
}

impl InternetGateway {
    /// A gateway attached to this VPC.
    pub fn new(vpc_id: ferroform_core::Id<super::Vpc>) -> Self {
        Self { vpc_id: Some(vpc_id.into()), tags: Tags::new() }
    }
    /// A gateway attached to no VPC.
    pub fn detached() -> Self {
        Self { vpc_id: None, tags: Tags::new() }
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
impl Resource for InternetGateway {
    const TYPE: &'static str = "aws_internet_gateway";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("tags.Name", "tags.Name")];
    type Outputs = InternetGatewayOutputs;
    type Refs = InternetGatewayRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if let Some(vpc) = &self.vpc_id {
            check_id(&mut e, "vpc_id", vpc, &["vpc"]);
        }
        e
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, InternetGatewayOutputs), ProviderError> {
        let ec2 = aws.ec2();
        let made = create_once(
            CREATE_ONCE,
            |_| false,
            || {
                ec2.create_internet_gateway()
                    .set_tag_specifications(tag_spec(ResourceType::InternetGateway, &desired.tags).map(|t| vec![t]))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let owner = match &made {
            Made::Answered(out) => out.internet_gateway().and_then(|g| g.owner_id()).map(str::to_string),
            Made::Found(_) => None,
        };
        let id = made.id("CreateInternetGateway", |out| out.internet_gateway().and_then(|g| g.internet_gateway_id()))?;
        if let Some(vpc) = &desired.vpc_id {
            attach(aws, &id, vpc).await?;
        }
        let owner = match owner {
            Some(o) => o,
            None => aws.account_id().await?,
        };
        Ok((id.clone(), InternetGatewayOutputs { arn: super::arn(aws, &owner, "internet-gateway", &id), id }))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        let found = describe(aws, &ids).await;
        fan_out(items, found, |id, _prior, igw| Ok(Some(observe(aws, id, igw))))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<InternetGatewayOutputs, ProviderError> {
        if changed.iter().any(|f| f == "vpc_id") {
            if let Some(old) = &prior.vpc_id {
                detach(aws, id, old).await?;
            }
            if let Some(new) = &desired.vpc_id {
                attach(aws, id, new).await?;
            }
        }
        if changed.iter().any(|f| f == "tags") {
            sync_tags(aws, id, &prior.tags, &desired.tags).await?;
        }
        Self::read(aws, id, desired)
            .await?
            .map(|o| o.outputs)
            .ok_or_else(|| ProviderError::with_code("NotFound", format!("internet gateway {id} vanished")))
    }

    async fn delete(aws: &Aws, id: &str, prior: &Self) -> Result<(), ProviderError> {
        // Whatever it is attached to now, not only what state remembers.
        let live = describe(aws, &[id.to_string()]).await?;
        let Some(igw) = live.get(id) else { return Ok(()) };
        for vpc in attached_vpcs(igw).into_iter().chain(prior.vpc_id.clone()).collect::<std::collections::BTreeSet<_>>() {
            detach(aws, id, &vpc).await?;
        }
        let ec2 = aws.ec2();
        let deleted =
            while_dependents_go(|| async { ec2.delete_internet_gateway().internet_gateway_id(id).send().await.map_err(sdk) }).await;
        absent_if_not_found(deleted).map(|_| ())
    }

    async fn find_by_tags(aws: &Aws, _desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let out = aws.ec2().describe_internet_gateways().set_filters(Some(tag_filters(meta))).send().await.map_err(sdk)?;
        Ok(super::adopted(out.internet_gateways().iter().map(|g| (g.internet_gateway_id(), g.tags())), meta))
    }
}

fn attached_vpcs(igw: &aws_sdk_ec2::types::InternetGateway) -> Vec<String> {
    igw.attachments()
        .iter()
        .filter(|a| !matches!(a.state().map(|s| s.as_str().to_ascii_lowercase()).as_deref(), Some("detached" | "detaching")))
        .filter_map(|a| a.vpc_id().map(str::to_string))
        .collect()
}

fn observe(aws: &Aws, id: &str, igw: &aws_sdk_ec2::types::InternetGateway) -> Observed<InternetGateway> {
    Observed {
        inputs: InternetGateway { vpc_id: attached_vpcs(igw).into_iter().next(), tags: tags_of(igw.tags()) },
        outputs: InternetGatewayOutputs {
            id: id.to_string(),
            arn: super::arn(aws, igw.owner_id().unwrap_or_default(), "internet-gateway", id),
        },
    }
}

async fn describe(aws: &Aws, ids: &[String]) -> Result<HashMap<String, aws_sdk_ec2::types::InternetGateway>, ProviderError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ec2 = aws.ec2();
    let found = all_pages(|token| {
        let req = ec2.describe_internet_gateways().filters(filter("internet-gateway-id", ids.iter().cloned())).set_next_token(token);
        async move {
            let out = req.send().await.map_err(sdk)?;
            Ok((out.internet_gateways.unwrap_or_default(), out.next_token))
        }
    })
    .await?;
    Ok(found.into_iter().filter_map(|g| Some((g.internet_gateway_id.clone()?, g))).collect())
}

async fn attach(aws: &Aws, id: &str, vpc: &str) -> Result<(), ProviderError> {
    let ec2 = aws.ec2();
    let r = on_fresh(|| async { ec2.attach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send().await.map_err(sdk) }).await;
    match r {
        Ok(_) => Ok(()),
        // An earlier attempt whose answer was lost (then retried by the SDK) attached it: done if to this VPC.
        Err(e) if e.code.as_deref() == Some("Resource.AlreadyAssociated") => {
            let found = describe(aws, &[id.to_string()]).await?;
            if found.get(id).is_some_and(|g| attached_vpcs(g).iter().any(|v| v == vpc)) {
                Ok(())
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// Detaches, waiting while public addresses mapped in the VPC are still being released; "not attached"
/// counts as done.
async fn detach(aws: &Aws, id: &str, vpc: &str) -> Result<(), ProviderError> {
    let ec2 = aws.ec2();
    let r =
        while_dependents_go(|| async { ec2.detach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send().await.map_err(sdk) }).await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code.as_deref() == Some("Gateway.NotAttached") || crate::error::is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_the_vpc_id() {
        assert!(InternetGateway::new(ferroform_core::Id::literal("vpc-1")).validate().is_empty());
        assert!(InternetGateway::detached().validate().is_empty());
        assert_eq!(InternetGateway::new(ferroform_core::Id::literal("igw-1")).validate()[0].field, "vpc_id");
    }
}
