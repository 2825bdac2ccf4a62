//! EC2 networking (`aws-sdk-ec2`): VPCs, subnets, internet and NAT gateways, elastic IPs, route tables,
//! security groups and gateway VPC endpoints; lookups of existing ones (`DefaultVpc`, `FindVpc`, `FindSubnet`,
//! `FindSubnets`, `FindSecurityGroup`).
//!
//! Reads are batched: each type's `read_many` makes one `DescribeX` call for all its ids, filtered by id
//! (`vpc-id`, `subnet-id`, ...), so an id that no longer exists is simply absent from the answer instead of
//! failing the whole call with `InvalidXxxID.NotFound`.

mod default_vpc;
mod elastic_ip;
mod internet_gateway;
mod nat_gateway;
mod route_table;
mod security_group;
mod security_group_lookup;
mod subnet;
mod subnet_lookup;
mod subnets_lookup;
mod vpc;
mod vpc_endpoint;
mod vpc_lookup;

pub use default_vpc::{DefaultVpc, DefaultVpcOutputs, DefaultVpcRefs};
pub use elastic_ip::{ElasticIp, ElasticIpOutputs, ElasticIpRefs};
pub use internet_gateway::{InternetGateway, InternetGatewayOutputs, InternetGatewayRefs};
pub use nat_gateway::{NatGateway, NatGatewayOutputs, NatGatewayRefs};
pub use route_table::{Route, RouteTable, RouteTableOutputs, RouteTableRefs};
pub use security_group::{default_egress, Rule, SecurityGroup, SecurityGroupOutputs, SecurityGroupRefs};
pub use security_group_lookup::{FindSecurityGroup, FoundSecurityGroupOutputs, FoundSecurityGroupRefs};
pub use subnet::{Subnet, SubnetOutputs, SubnetRefs};
pub use subnet_lookup::{FindSubnet, FoundSubnetOutputs, FoundSubnetRefs};
pub use subnets_lookup::{FindSubnets, FoundSubnetsOutputs, FoundSubnetsRefs};
pub use vpc::{Vpc, VpcOutputs, VpcRefs};
pub use vpc_endpoint::{service_name, VpcEndpoint, VpcEndpointOutputs, VpcEndpointRefs};
pub use vpc_lookup::{FindVpc, FoundVpcOutputs, FoundVpcRefs};

use crate::error::{retry, sdk};
use crate::tags::{without_aws_managed, Tags};
use crate::Aws;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS, TAG_STACK};
use std::collections::HashMap;
use std::time::Duration;

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<Vpc>();
    reg.register::<Subnet>();
    reg.register::<InternetGateway>();
    reg.register::<RouteTable>();
    reg.register::<SecurityGroup>();
    reg.register::<ElasticIp>();
    reg.register::<NatGateway>();
    reg.register::<VpcEndpoint>();
}

/// How long a freshly created object may stay invisible to other EC2 calls (eventual consistency).
const FRESH: Duration = Duration::from_secs(120);
/// How long a delete keeps trying while AWS still sees dependents going away (ENIs of a deleted NAT gateway
/// or Lambda function, mapped public addresses).
const DEPENDENTS_GOING: Duration = Duration::from_secs(300);

/// A `DescribeX` filter.
pub(crate) fn filter<I, S>(name: &str, values: I) -> Filter
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Filter::builder().name(name).set_values(Some(values.into_iter().map(Into::into).collect())).build()
}

/// The filters that find what this address of this stack created.
pub(crate) fn tag_filters(meta: &CallMeta) -> Vec<Filter> {
    vec![filter(&format!("tag:{TAG_ADDRESS}"), [meta.address.clone()]), filter(&format!("tag:{TAG_STACK}"), [meta.stack.clone()])]
}

/// True when the tags carry this stack and address (checked again on our side: some emulators ignore tag
/// filters).
pub(crate) fn tagged_for(tags: &[Tag], meta: &CallMeta) -> bool {
    let has = |k: &str, v: &str| tags.iter().any(|t| t.key() == Some(k) && t.value() == Some(v));
    has(TAG_ADDRESS, &meta.address) && has(TAG_STACK, &meta.stack)
}

pub(crate) fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Tags to set at creation; `None` when there are none (EC2 rejects an empty tag specification).
pub(crate) fn tag_spec(resource_type: ResourceType, tags: &Tags) -> Option<TagSpecification> {
    (!tags.is_empty()).then(|| TagSpecification::builder().resource_type(resource_type).set_tags(Some(sdk_tags(tags))).build())
}

/// Live tags as `read` returns them: without the `aws:*` tags AWS manages.
pub(crate) fn tags_of(tags: &[Tag]) -> Tags {
    without_aws_managed(tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect())
}

/// Brings the live tags to the desired ones: `DeleteTags` for keys that went away, `CreateTags` for new or
/// changed values. `aws:*` tags are never touched.
pub(crate) async fn sync_tags(aws: &Aws, id: &str, live: &Tags, desired: &Tags) -> Result<(), ProviderError> {
    let ec2 = aws.ec2();
    let ec2 = &ec2;
    crate::tags::sync(
        live,
        desired,
        |keys| async {
            let keys = keys.into_iter().map(|k| Tag::builder().key(k).build()).collect();
            ec2.delete_tags().resources(id).set_tags(Some(keys)).send().await.map(drop).map_err(sdk)
        },
        |tags| async move { ec2.create_tags().resources(id).set_tags(Some(sdk_tags(&tags))).send().await.map(drop).map_err(sdk) },
    )
    .await
}

/// A client token (at most 64 ASCII characters) stable for one planned step.
pub(crate) fn client_token(meta: &CallMeta) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(meta.idempotency_token.as_bytes()))
}

/// Retries a call on a freshly created object while EC2 still answers "not found".
pub(crate) async fn on_fresh<T, F, Fut>(f: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    retry(FRESH, crate::error::is_not_found, f).await
}

/// Retries a delete (or detach) while AWS reports dependents that are still going away.
pub(crate) async fn while_dependents_go<T, F, Fut>(f: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    retry(DEPENDENTS_GOING, |e| e.code.as_deref() == Some("DependencyViolation"), f).await
}

/// EC2 states are lowercase in AWS's answers and in some emulators' alike; compare without case.
pub(crate) fn state_is(state: Option<&str>, want: &str) -> bool {
    state.is_some_and(|s| s.eq_ignore_ascii_case(want))
}

/// `arn:PARTITION:ec2:REGION:OWNER:KIND/ID`.
pub(crate) fn arn(aws: &Aws, owner: &str, kind: &str, id: &str) -> String {
    format!("arn:{}:ec2:{}:{owner}:{kind}/{id}", aws.region_partition(), aws.region())
}

/// Checks the shape of an EC2 id (`vpc-0abc...`) when it is known.
pub(crate) fn check_id(errors: &mut Vec<FieldError>, field: &str, value: &str, prefixes: &[&str]) {
    if is_unknown_str(value) {
        return;
    }
    if !prefixes.iter().any(|p| value.starts_with(&format!("{p}-")) && value.len() > p.len() + 1) {
        let want = prefixes.iter().map(|p| format!("`{p}-...`")).collect::<Vec<_>>().join(" or ");
        errors.push(FieldError::new(field, format!("`{value}` is not an id like {want}")));
    }
}

/// Checks a CIDR block and its prefix length (`min..=max`, /16 to /28 for VPCs and subnets).
pub(crate) fn check_cidr(errors: &mut Vec<FieldError>, field: &str, value: &str, min: u8, max: u8) -> Option<ipnet::Ipv4Net> {
    let net = crate::validate::cidr(errors, field, value)?;
    if net.prefix_len() < min || net.prefix_len() > max {
        errors.push(FieldError::new(field, format!("`{value}`: the prefix length must be /{min} to /{max}")));
        return None;
    }
    Some(net)
}

/// A VPC's range: an IPv4 CIDR block, /16 to /28.
pub(crate) fn check_vpc_cidr(errors: &mut Vec<FieldError>, value: &str) -> Option<ipnet::Ipv4Net> {
    check_cidr(errors, "cidr_block", value, 16, 28)
}

pub(crate) use crate::pages::all_pages;

/// Fans one batched answer out to the items asked for, in order: what was found by id goes through
/// `convert`, what was not is `None`, and a failed call fails every item.
pub(crate) fn fan_out<R: Resource, T>(
    items: &[(String, R)],
    found: Result<HashMap<String, T>, ProviderError>,
    mut convert: impl FnMut(&str, &R, &T) -> Result<Option<Observed<R>>, ProviderError>,
) -> Vec<Result<Option<Observed<R>>, ProviderError>> {
    match found {
        Ok(found) => items
            .iter()
            .map(|(id, prior)| match found.get(id) {
                Some(t) => convert(id, prior, t),
                None => Ok(None),
            })
            .collect(),
        Err(e) => items.iter().map(|_| Err(e.clone())).collect(),
    }
}

/// The first id of a tag search that really carries our tags.
pub(crate) fn adopted<'a>(candidates: impl IntoIterator<Item = (Option<&'a str>, &'a [Tag])>, meta: &CallMeta) -> Option<String> {
    candidates
        .into_iter()
        .filter(|(id, _)| !id.is_some_and(|id| meta.exclude.iter().any(|x| x == id)))
        .find(|(_, tags)| tagged_for(tags, meta))
        .and_then(|(id, _)| id.map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> CallMeta {
        CallMeta {
            stack: "s".into(),
            address: "network/vpc".into(),
            idempotency_token: "run-create-network/vpc".into(),
            ..Default::default()
        }
    }

    #[test]
    fn ids_and_cidrs_are_checked_when_known() {
        let mut e = Vec::new();
        check_id(&mut e, "vpc_id", "vpc-0123", &["vpc"]);
        check_id(&mut e, "vpc_id", "\u{e000}${ref:net/vpc.id}", &["vpc"]);
        assert!(e.is_empty());
        check_id(&mut e, "vpc_id", "subnet-1", &["vpc"]);
        check_id(&mut e, "vpc_id", "vpc-", &["vpc"]);
        assert_eq!(e.len(), 2);
        let mut e = Vec::new();
        assert!(check_cidr(&mut e, "cidr_block", "10.0.0.0/16", 16, 28).is_some());
        assert!(check_cidr(&mut e, "cidr_block", "10.0.0.0/8", 16, 28).is_none());
        assert!(check_cidr(&mut e, "cidr_block", "10.0.0.0/29", 16, 28).is_none());
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn client_tokens_fit_and_are_stable() {
        let t = client_token(&meta());
        assert_eq!(t.len(), 64);
        assert_eq!(t, client_token(&meta()));
    }

    #[test]
    fn adoption_needs_both_tags() {
        let ours = vec![Tag::builder().key(TAG_ADDRESS).value("network/vpc").build(), Tag::builder().key(TAG_STACK).value("s").build()];
        let other = vec![Tag::builder().key(TAG_ADDRESS).value("network/vpc").build(), Tag::builder().key(TAG_STACK).value("t").build()];
        assert_eq!(adopted([(Some("vpc-1"), other.as_slice()), (Some("vpc-2"), ours.as_slice())], &meta()), Some("vpc-2".into()));
        assert_eq!(adopted([(Some("vpc-1"), other.as_slice())], &meta()), None);
        // The deposed old object of a replacement carries the same tags: never taken for the new one.
        let deposed = CallMeta { exclude: vec!["vpc-2".to_string()].into(), ..meta() };
        assert_eq!(adopted([(Some("vpc-2"), ours.as_slice()), (Some("vpc-3"), ours.as_slice())], &deposed), Some("vpc-3".into()));
        let live =
            tags_of(&[Tag::builder().key("aws:cloudformation:stack").value("x").build(), Tag::builder().key("a").value("b").build()]);
        assert_eq!(live, Tags::from([("a".to_string(), "b".to_string())]));
    }
}
