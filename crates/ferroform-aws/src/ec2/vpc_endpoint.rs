//! Gateway VPC endpoint (DynamoDB, S3): traffic from the VPC to the service stays on AWS's network, through
//! routes AWS adds to the chosen route tables. APIs: CreateVpcEndpoint, DescribeVpcEndpoints,
//! ModifyVpcEndpoint, CreateTags, DeleteTags, DeleteVpcEndpoints.
//!
//! `service_name` is either the full name (`com.amazonaws.us-east-1.dynamodb`) or just the service
//! (`dynamodb`), completed with the region of the run, so one stack fits every region. Both forms compare
//! alike (a gateway endpoint's service is always in the VPC's region).
//!
//! Defaults when unset: no route tables (removing them from the code takes the endpoint's routes out of
//! those tables), no tags. Left to AWS when unset: nothing (the endpoint policy is not modelled: AWS's
//! full-access default stays).

use super::FRESH;
use super::{check_id, client_token, state_is, sync_tags, tag_filters, tag_spec, tags_of};
use crate::error::create_once;
use crate::error::{is_not_found, sdk, wait_for, Once};
use crate::tags::{merge_defaults, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, VpcEndpointType};
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// The full service name of a gateway endpoint: `service_name("us-east-1", "dynamodb")` is
/// `com.amazonaws.us-east-1.dynamodb`.
pub fn service_name(region: &str, service: &str) -> String {
    format!("com.amazonaws.{region}.{service}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VpcEndpoint {
    /// Changing it forces a new endpoint.
    pub vpc_id: String,
    /// `dynamodb`, `s3`, or a full `com.amazonaws.REGION.SERVICE`. Changing it forces a new endpoint.
    pub service_name: String,
    /// The route tables that get a route to the service.
    #[serde(default)]
    pub route_table_ids: BTreeSet<String>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct VpcEndpointOutputs => VpcEndpointRefs {
        pub id: String as ferroform_core::Id<VpcEndpoint>,
        /// The full service name.
        pub service_name: String,
    }
}

impl VpcEndpoint {
    /// A gateway endpoint for `service` (`dynamodb`, `s3`, or a full service name).
    pub fn gateway(vpc_id: ferroform_core::Id<super::Vpc>, service: impl Into<String>) -> Self {
        Self { vpc_id: vpc_id.into(), service_name: service.into(), route_table_ids: BTreeSet::new(), tags: Tags::new() }
    }
    pub fn route_table(mut self, id: ferroform_core::Id<super::RouteTable>) -> Self {
        self.route_table_ids.insert(id.into());
        self
    }
    pub fn route_tables<I: IntoIterator<Item = ferroform_core::Id<super::RouteTable>>>(mut self, ids: I) -> Self {
        self.route_table_ids.extend(ids.into_iter().map(Into::into));
        self
    }
    pub fn name(self, name: impl Into<String>) -> Self {
        self.tag("Name", name)
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }

    /// The full service name in this run's region.
    fn full_service_name(&self, aws: &Aws) -> String {
        if self.service_name.contains('.') {
            self.service_name.clone()
        } else {
            service_name(&aws.region(), &self.service_name)
        }
    }
}

#[async_trait]
impl Resource for VpcEndpoint {
    const TYPE: &'static str = "aws_vpc_endpoint";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("service_name", "service_name")];
    const REPLACE_FIELDS: &'static [&'static str] = &["vpc_id", "service_name"];
    type Outputs = VpcEndpointOutputs;
    type Refs = VpcEndpointRefs;
    type Context = Aws;

    /// `com.amazonaws.REGION.dynamodb` (Terraform's state, AWS's answer) and `dynamodb` (as declared here) are
    /// one service; the region is the account guard's and `check_place`'s business.
    fn terraform_identity_form(path: &str, value: &serde_json::Value) -> serde_json::Value {
        match value.as_str() {
            Some(full) if path == "service_name" => {
                let short = full.strip_prefix("com.amazonaws.").and_then(|rest| rest.split_once('.')).map_or(full, |(_, service)| service);
                serde_json::Value::String(short.to_string())
            }
            _ => value.clone(),
        }
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check_id(&mut e, "vpc_id", &self.vpc_id, &["vpc"]);
        let s = &self.service_name;
        if !is_unknown_str(s) {
            let short = !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            let full = s.split('.').count() >= 4 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c));
            if !short && !full {
                e.push(FieldError::new(
                    "service_name",
                    format!("`{s}` is neither a service (`dynamodb`) nor a full name (`com.amazonaws.us-east-1.dynamodb`)"),
                ));
            }
        }
        for id in &self.route_table_ids {
            check_id(&mut e, "route_table_ids", id, &["rtb"]);
        }
        e
    }

    // A gateway endpoint's service lives in the VPC's own region, so the region part of a full name carries
    // no choice: both forms compare as the short one, and a stack may switch forms without a replacement.
    fn normalize(&mut self) {
        self.service_name = short_service_name(&self.service_name);
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, VpcEndpointOutputs), ProviderError> {
        let ec2 = aws.ec2();
        let token = client_token(meta);
        let service = desired.full_service_name(aws);
        // The client token makes a re-send safe on AWS; the lookup covers a token not honoured (emulators)
        // and a VPC just made, not visible yet ("not found" is retried).
        let made = create_once(
            FRESH,
            is_not_found,
            || {
                ec2.create_vpc_endpoint()
                    .vpc_endpoint_type(VpcEndpointType::Gateway)
                    .vpc_id(&desired.vpc_id)
                    .service_name(&service)
                    .set_route_table_ids((!desired.route_table_ids.is_empty()).then(|| desired.route_table_ids.iter().cloned().collect()))
                    .client_token(&token)
                    .set_tag_specifications(tag_spec(ResourceType::VpcEndpoint, &desired.tags).map(|t| vec![t]))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let id = made.id("CreateVpcEndpoint", |out| out.vpc_endpoint().and_then(|e| e.vpc_endpoint_id()))?;
        wait_for("the VPC endpoint to be available", Duration::from_secs(600), || async {
            let found = describe(aws, std::slice::from_ref(&id)).await?;
            let Some(e) = found.get(&id) else { return Ok(None) };
            let state = e.state().map(|s| s.as_str());
            if state_is(state, "failed") || state_is(state, "rejected") {
                let why = e.last_error().and_then(|l| l.message()).unwrap_or("no reason given");
                return Err(ProviderError::with_code("VpcEndpointFailed", format!("the VPC endpoint {id} failed: {why}")));
            }
            Ok(state_is(state, "available").then_some(()))
        })
        .await?;
        Ok((id.clone(), VpcEndpointOutputs { id, service_name: service }))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        let found = describe(aws, &ids).await;
        super::fan_out(items, found, |id, _prior, e| {
            if gone(e) {
                return Ok(None);
            }
            let live = e.service_name().unwrap_or_default().to_string();
            Ok(Some(Observed {
                inputs: VpcEndpoint {
                    vpc_id: e.vpc_id().unwrap_or_default().to_string(),
                    service_name: live.clone(),
                    route_table_ids: e.route_table_ids().iter().cloned().collect(),
                    tags: tags_of(e.tags()),
                },
                outputs: VpcEndpointOutputs { id: id.to_string(), service_name: live },
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
    ) -> Result<VpcEndpointOutputs, ProviderError> {
        if changed.iter().any(|f| f == "route_table_ids") {
            let add: Vec<String> = desired.route_table_ids.difference(&prior.route_table_ids).cloned().collect();
            let remove: Vec<String> = prior.route_table_ids.difference(&desired.route_table_ids).cloned().collect();
            aws.ec2()
                .modify_vpc_endpoint()
                .vpc_endpoint_id(id)
                .set_add_route_table_ids((!add.is_empty()).then_some(add))
                .set_remove_route_table_ids((!remove.is_empty()).then_some(remove))
                .send()
                .await
                .map_err(sdk)?;
        }
        if changed.iter().any(|f| f == "tags") {
            sync_tags(aws, id, &prior.tags, &desired.tags).await?;
        }
        Self::read(aws, id, desired)
            .await?
            .map(|o| o.outputs)
            .ok_or_else(|| ProviderError::with_code("NotFound", format!("VPC endpoint {id} vanished")))
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        match delete_once(aws, id).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {
                // Gone already, or a route of one of its tables was missing (some emulators fail the whole
                // delete then): let the tables go and try once more.
                let found = describe(aws, &[id.to_string()]).await?;
                let Some(live) = found.get(id).filter(|e| !gone(e)) else { return Ok(()) };
                let tables = live.route_table_ids().to_vec();
                if !tables.is_empty() {
                    aws.ec2()
                        .modify_vpc_endpoint()
                        .vpc_endpoint_id(id)
                        .set_remove_route_table_ids(Some(tables))
                        .send()
                        .await
                        .map_err(sdk)?;
                }
                match delete_once(aws, id).await {
                    Err(e) if !is_not_found(&e) => return Err(e),
                    _ => {}
                }
            }
            Err(e) => return Err(e),
        }
        wait_for("the VPC endpoint to be deleted", Duration::from_secs(600), || async {
            let found = describe(aws, &[id.to_string()]).await?;
            Ok(found.get(id).is_none_or(gone).then_some(()))
        })
        .await
    }

    async fn find_by_tags(aws: &Aws, _desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let out = aws.ec2().describe_vpc_endpoints().set_filters(Some(tag_filters(meta))).send().await.map_err(sdk)?;
        Ok(super::adopted(out.vpc_endpoints().iter().filter(|e| !gone(e)).map(|e| (e.vpc_endpoint_id(), e.tags())), meta))
    }
}

/// One `DeleteVpcEndpoints`: a batch API, whose failures come back as items rather than as an error.
async fn delete_once(aws: &Aws, id: &str) -> Result<(), ProviderError> {
    let out = aws.ec2().delete_vpc_endpoints().vpc_endpoint_ids(id).send().await.map_err(sdk)?;
    match out.unsuccessful().iter().filter_map(|u| u.error()).next() {
        Some(err) => {
            Err(ProviderError { code: err.code().map(str::to_string), message: err.message().unwrap_or_default().to_string(), hint: None })
        }
        None => Ok(()),
    }
}

/// `com.amazonaws.us-east-1.dynamodb` -> `dynamodb`; anything else as it is.
fn short_service_name(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        ["com", "amazonaws", region, service] if region.contains('-') && region.ends_with(|c: char| c.is_ascii_digit()) => {
            (*service).to_string()
        }
        _ => name.to_string(),
    }
}

fn gone(e: &aws_sdk_ec2::types::VpcEndpoint) -> bool {
    let state = e.state().map(|s| s.as_str());
    ["deleting", "deleted", "failed", "rejected", "expired"].iter().any(|s| state_is(state, s))
}

/// The endpoints with these ids that exist. Asked by id (not every emulator filters endpoints by id): when
/// one id is unknown the whole call fails, and then each id is asked alone, concurrently.
async fn describe(aws: &Aws, ids: &[String]) -> Result<HashMap<String, aws_sdk_ec2::types::VpcEndpoint>, ProviderError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ec2 = aws.ec2();
    let by_ids = |ids: Vec<String>| {
        let ec2 = ec2.clone();
        async move {
            super::all_pages(|token| {
                let req = ec2.describe_vpc_endpoints().set_vpc_endpoint_ids(Some(ids.clone())).set_next_token(token);
                async move {
                    let out = req.send().await.map_err(sdk)?;
                    Ok((out.vpc_endpoints.unwrap_or_default(), out.next_token))
                }
            })
            .await
        }
    };
    let found = match by_ids(ids.to_vec()).await {
        Ok(found) => found,
        Err(e) if is_not_found(&e) && ids.len() > 1 => {
            let each = ferroform_core::join_bounded(ids.iter().map(|id| by_ids(vec![id.clone()]))).await;
            let mut found = Vec::new();
            for r in each {
                match r {
                    Ok(f) => found.extend(f),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            found
        }
        Err(e) if is_not_found(&e) => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(found.into_iter().filter_map(|e| Some((e.vpc_endpoint_id.clone()?, e))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_short_or_full() {
        assert_eq!(service_name("eu-west-1", "s3"), "com.amazonaws.eu-west-1.s3");
        let mut full = VpcEndpoint::gateway(ferroform_core::Id::literal("vpc-1"), "com.amazonaws.us-east-1.dynamodb");
        full.normalize();
        assert_eq!(full.service_name, "dynamodb", "both forms compare alike");
        assert_eq!(short_service_name("com.amazonaws.s3-global.accesspoint"), "com.amazonaws.s3-global.accesspoint");
        assert!(VpcEndpoint::gateway(ferroform_core::Id::literal("vpc-1"), "dynamodb")
            .route_table(ferroform_core::Id::literal("rtb-1"))
            .validate()
            .is_empty());
        assert!(VpcEndpoint::gateway(ferroform_core::Id::literal("vpc-1"), "com.amazonaws.us-east-1.dynamodb").validate().is_empty());
        assert_eq!(VpcEndpoint::gateway(ferroform_core::Id::literal("vpc-1"), "DynamoDB").validate()[0].field, "service_name");
        assert_eq!(
            VpcEndpoint::gateway(ferroform_core::Id::literal("vpc-1"), "s3")
                .route_table(ferroform_core::Id::literal("subnet-1"))
                .validate()[0]
                .field,
            "route_table_ids"
        );
    }
}
