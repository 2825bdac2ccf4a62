//! VPC route table, its routes and its subnet associations. APIs: CreateRouteTable, DescribeRouteTables,
//! CreateRoute, ReplaceRoute, DeleteRoute, AssociateRouteTable, ReplaceRouteTableAssociation,
//! DisassociateRouteTable, CreateTags, DeleteTags, DeleteRouteTable.
//!
//! Routes and associations are managed exclusively: a route or an association the code does not declare is
//! removed. Not ours to manage, and never read: the VPC's `local` route, routes a gateway VPC endpoint adds
//! (to a prefix list) and routes propagated from a virtual private gateway.
//!
//! A subnet associated with another table is moved here (`ReplaceRouteTableAssociation`), so a subnet can
//! change tables in one apply whichever table is updated first.
//!
//! Defaults when unset: no routes, no subnets, no tags; removing them from the code deletes the routes,
//! disassociates the subnets (they fall back to the VPC's main table) and deletes the tags. Left to AWS when
//! unset: nothing.

use super::FRESH;
use super::{all_pages, check_id, fan_out, filter, on_fresh, sync_tags, tag_filters, tag_spec, tags_of, while_dependents_go};
use crate::error::{absent_if_not_found, is_not_found, sdk, Once};
use crate::error::{create_once, Made};
use crate::tags::{merge_defaults, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteTable {
    /// Changing it forces a new table.
    pub vpc_id: String,
    #[serde(default)]
    pub routes: BTreeSet<Route>,
    /// Subnets that use this table.
    #[serde(default)]
    pub subnet_ids: BTreeSet<String>,
    #[serde(default)]
    pub tags: Tags,
}

/// One route: a destination and exactly one target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Route {
    /// `0.0.0.0/0`, `10.1.0.0/16`.
    pub destination_cidr: String,
    /// An internet gateway (`igw-...`) or a virtual private gateway (`vgw-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_gateway_id: Option<String>,
}

impl Route {
    /// Through an internet (or virtual private) gateway.
    pub fn to_gateway(destination_cidr: impl Into<String>, gateway_id: ferroform_core::Id<super::InternetGateway>) -> Self {
        Self { destination_cidr: destination_cidr.into(), gateway_id: Some(gateway_id.into()), nat_gateway_id: None }
    }
    pub fn to_nat(destination_cidr: impl Into<String>, nat_gateway_id: ferroform_core::Id<super::NatGateway>) -> Self {
        Self { destination_cidr: destination_cidr.into(), gateway_id: None, nat_gateway_id: Some(nat_gateway_id.into()) }
    }
}

ferroform_core::outputs! {
    pub struct RouteTableOutputs => RouteTableRefs {
        pub id: String as ferroform_core::Id<RouteTable>,
        pub arn: String as ferroform_core::Arn<RouteTable>,
        pub vpc_id: String as ferroform_core::Id<crate::ec2::Vpc>,
    }
}

impl RouteTable {
    pub fn new(vpc_id: ferroform_core::Id<super::Vpc>) -> Self {
        Self { vpc_id: vpc_id.into(), routes: BTreeSet::new(), subnet_ids: BTreeSet::new(), tags: Tags::new() }
    }
    pub fn route(mut self, route: Route) -> Self {
        self.routes.insert(route);
        self
    }
    /// Associates a subnet with this table.
    pub fn subnet(mut self, subnet_id: ferroform_core::Id<super::Subnet>) -> Self {
        self.subnet_ids.insert(subnet_id.into());
        self
    }
    pub fn subnets<I: IntoIterator<Item = ferroform_core::Id<super::Subnet>>>(mut self, ids: I) -> Self {
        self.subnet_ids.extend(ids.into_iter().map(Into::into));
        self
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
impl Resource for RouteTable {
    const TYPE: &'static str = "aws_route_table";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("tags.Name", "tags.Name")];
    const TERRAFORM_FOLDS: &'static [(&'static str, &'static str, &'static str)] =
        &[("aws_route_table_association", "route_table_id", "id"), ("aws_route", "route_table_id", "id")];
    const REPLACE_FIELDS: &'static [&'static str] = &["vpc_id"];
    type Outputs = RouteTableOutputs;
    type Refs = RouteTableRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check_id(&mut e, "vpc_id", &self.vpc_id, &["vpc"]);
        let mut destinations = BTreeSet::new();
        for r in &self.routes {
            crate::validate::cidr(&mut e, "routes", &r.destination_cidr);
            match (&r.gateway_id, &r.nat_gateway_id) {
                (Some(g), None) => check_id(&mut e, "routes", g, &["igw", "vgw"]),
                (None, Some(n)) => check_id(&mut e, "routes", n, &["nat"]),
                _ => e.push(FieldError::new(
                    "routes",
                    format!("the route to `{}` needs exactly one target: a gateway_id or a nat_gateway_id", r.destination_cidr),
                )),
            }
            if !is_unknown_str(&r.destination_cidr) && !destinations.insert(r.destination_cidr.as_str()) {
                e.push(FieldError::new(
                    "routes",
                    format!("two routes to `{}`; a table holds one route per destination", r.destination_cidr),
                ));
            }
        }
        for s in &self.subnet_ids {
            check_id(&mut e, "subnet_ids", s, &["subnet"]);
        }
        e
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, RouteTableOutputs), ProviderError> {
        let ec2 = aws.ec2();
        // A VPC just made may not be visible yet: its "not found" is retried.
        let made = create_once(
            FRESH,
            is_not_found,
            || {
                ec2.create_route_table()
                    .vpc_id(&desired.vpc_id)
                    .set_tag_specifications(tag_spec(ResourceType::RouteTable, &desired.tags).map(|t| vec![t]))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let owner = match &made {
            Made::Answered(out) => out.route_table().and_then(|t| t.owner_id()).map(str::to_string),
            Made::Found(_) => None,
        };
        let id = made.id("CreateRouteTable", |out| out.route_table().and_then(|t| t.route_table_id()))?;
        sync_routes(aws, &id, &BTreeSet::new(), &desired.routes).await?;
        sync_associations(aws, &id, &desired.vpc_id, &desired.subnet_ids).await?;
        let owner = match owner {
            Some(o) => o,
            None => aws.account_id().await?,
        };
        Ok((id.clone(), RouteTableOutputs { arn: super::arn(aws, &owner, "route-table", &id), id, vpc_id: desired.vpc_id.clone() }))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        let found = describe(aws, "route-table-id", &ids)
            .await
            .map(|tables| tables.into_iter().filter_map(|t| Some((t.route_table_id.clone()?, t))).collect::<HashMap<_, _>>());
        fan_out(items, found, |id, _prior, t| Ok(Some(observe(aws, id, t))))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<RouteTableOutputs, ProviderError> {
        if changed.iter().any(|f| f == "routes") {
            sync_routes(aws, id, &prior.routes, &desired.routes).await?;
        }
        if changed.iter().any(|f| f == "subnet_ids") {
            sync_associations(aws, id, &prior.vpc_id, &desired.subnet_ids).await?;
        }
        if changed.iter().any(|f| f == "tags") {
            sync_tags(aws, id, &prior.tags, &desired.tags).await?;
        }
        Self::read(aws, id, desired)
            .await?
            .map(|o| o.outputs)
            .ok_or_else(|| ProviderError::with_code("NotFound", format!("route table {id} vanished")))
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let ec2 = aws.ec2();
        // A table with subnets can't go: let them go first (they fall back to the VPC's main table).
        let tables = describe(aws, "route-table-id", &[id.to_string()]).await?;
        let Some(table) = tables.into_iter().find(|t| t.route_table_id() == Some(id)) else { return Ok(()) };
        for a in table.associations() {
            if a.main() == Some(true) {
                continue;
            }
            if let Some(assoc) = a.route_table_association_id() {
                absent_if_not_found(ec2.disassociate_route_table().association_id(assoc).send().await.map_err(sdk))?;
            }
        }
        let deleted = while_dependents_go(|| async { ec2.delete_route_table().route_table_id(id).send().await.map_err(sdk) }).await;
        absent_if_not_found(deleted).map(|_| ())
    }

    async fn find_by_tags(aws: &Aws, _desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let out = aws.ec2().describe_route_tables().set_filters(Some(tag_filters(meta))).send().await.map_err(sdk)?;
        Ok(super::adopted(out.route_tables().iter().map(|t| (t.route_table_id(), t.tags())), meta))
    }
}

/// The routes this resource manages: a CIDR destination made by `CreateRoute`. The `local` route, endpoint
/// routes (prefix lists, `vpce-` targets) and propagated routes are left out. A route to a target this
/// type does not model (an instance, a peering) is read without target, so it shows as drift and goes.
fn managed_routes(t: &aws_sdk_ec2::types::RouteTable) -> BTreeSet<Route> {
    t.routes()
        .iter()
        .filter(|r| {
            let origin = r.origin().map(|o| o.as_str().to_ascii_lowercase());
            !matches!(origin.as_deref(), Some("createroutetable" | "enablevgwroutepropagation"))
        })
        .filter(|r| r.gateway_id() != Some("local") && !r.gateway_id().is_some_and(|g| g.starts_with("vpce-")))
        .filter_map(|r| {
            Some(Route {
                destination_cidr: r.destination_cidr_block()?.to_string(),
                gateway_id: r.gateway_id().map(str::to_string),
                nat_gateway_id: r.nat_gateway_id().map(str::to_string),
            })
        })
        .collect()
}

fn associated_subnets(t: &aws_sdk_ec2::types::RouteTable) -> BTreeMap<String, String> {
    t.associations()
        .iter()
        .filter(|a| a.main() != Some(true))
        .filter(|a| {
            !matches!(
                a.association_state().and_then(|s| s.state()).map(|s| s.as_str().to_ascii_lowercase()).as_deref(),
                Some("disassociated" | "disassociating" | "failed")
            )
        })
        .filter_map(|a| Some((a.subnet_id()?.to_string(), a.route_table_association_id()?.to_string())))
        .collect()
}

fn observe(aws: &Aws, id: &str, t: &aws_sdk_ec2::types::RouteTable) -> Observed<RouteTable> {
    let vpc_id = t.vpc_id().unwrap_or_default().to_string();
    Observed {
        inputs: RouteTable {
            vpc_id: vpc_id.clone(),
            routes: managed_routes(t),
            subnet_ids: associated_subnets(t).into_keys().collect(),
            tags: tags_of(t.tags()),
        },
        outputs: RouteTableOutputs {
            id: id.to_string(),
            arn: super::arn(aws, t.owner_id().unwrap_or_default(), "route-table", id),
            vpc_id,
        },
    }
}

/// Route tables matching one filter (`route-table-id`, `vpc-id`).
async fn describe(aws: &Aws, by: &str, values: &[String]) -> Result<Vec<aws_sdk_ec2::types::RouteTable>, ProviderError> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let ec2 = aws.ec2();
    all_pages(|token| {
        let req = ec2.describe_route_tables().filters(filter(by, values.iter().cloned())).set_next_token(token);
        async move {
            let out = req.send().await.map_err(sdk)?;
            Ok((out.route_tables.unwrap_or_default(), out.next_token))
        }
    })
    .await
}

/// One call per route that differs: deleted, replaced (same destination, new target) or created.
async fn sync_routes(aws: &Aws, id: &str, live: &BTreeSet<Route>, desired: &BTreeSet<Route>) -> Result<(), ProviderError> {
    let ec2 = aws.ec2();
    let live: BTreeMap<&str, &Route> = live.iter().map(|r| (r.destination_cidr.as_str(), r)).collect();
    let want: BTreeMap<&str, &Route> = desired.iter().map(|r| (r.destination_cidr.as_str(), r)).collect();
    for dest in live.keys().filter(|d| !want.contains_key(*d)) {
        let r = ec2.delete_route().route_table_id(id).destination_cidr_block(*dest).send().await.map_err(sdk);
        absent_if_not_found(r)?;
    }
    for (dest, r) in &want {
        match live.get(dest) {
            Some(old) if old == r => {}
            Some(_) => {
                on_fresh(|| async {
                    ec2.replace_route()
                        .route_table_id(id)
                        .destination_cidr_block(*dest)
                        .set_gateway_id(r.gateway_id.clone())
                        .set_nat_gateway_id(r.nat_gateway_id.clone())
                        .send()
                        .await
                        .map_err(sdk)
                })
                .await?;
            }
            None => {
                let created = on_fresh(|| async {
                    ec2.create_route()
                        .route_table_id(id)
                        .destination_cidr_block(*dest)
                        .set_gateway_id(r.gateway_id.clone())
                        .set_nat_gateway_id(r.nat_gateway_id.clone())
                        .send()
                        .await
                        .map_err(sdk)
                })
                .await;
                match created {
                    Ok(_) => {}
                    // Made by an attempt whose answer was lost (the SDK re-sent it), or by someone else:
                    // pointed at our target either way.
                    Err(e) if e.code.as_deref() == Some("RouteAlreadyExists") => {
                        ec2.replace_route()
                            .route_table_id(id)
                            .destination_cidr_block(*dest)
                            .set_gateway_id(r.gateway_id.clone())
                            .set_nat_gateway_id(r.nat_gateway_id.clone())
                            .send()
                            .await
                            .map_err(sdk)?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

/// Makes exactly `desired` the subnets of table `id`, looking at every table of the VPC (one call) to
/// find the association ids and subnets associated elsewhere.
async fn sync_associations(aws: &Aws, id: &str, vpc_id: &str, desired: &BTreeSet<String>) -> Result<(), ProviderError> {
    let ec2 = aws.ec2();
    let tables = describe(aws, "vpc-id", &[vpc_id.to_string()]).await?;
    // subnet -> (table, association)
    let mut where_is: HashMap<String, (String, String)> = HashMap::new();
    for t in &tables {
        let table = t.route_table_id().unwrap_or_default().to_string();
        for (subnet, assoc) in associated_subnets(t) {
            where_is.insert(subnet, (table.clone(), assoc));
        }
    }
    for (subnet, (table, assoc)) in &where_is {
        if table == id && !desired.contains(subnet) {
            let r = ec2.disassociate_route_table().association_id(assoc).send().await.map_err(sdk);
            absent_if_not_found(r)?;
        }
    }
    for subnet in desired {
        match where_is.get(subnet) {
            Some((table, _)) if table == id => {}
            Some((_, assoc)) => {
                let r = ec2.replace_route_table_association().association_id(assoc).route_table_id(id).send().await.map_err(sdk);
                match r {
                    Ok(_) => {}
                    // The other table let it go meanwhile: a plain association then.
                    Err(e) if is_not_found(&e) => associate(aws, id, subnet).await?,
                    Err(e) => return Err(e),
                }
            }
            None => associate(aws, id, subnet).await?,
        }
    }
    Ok(())
}

async fn associate(aws: &Aws, id: &str, subnet: &str) -> Result<(), ProviderError> {
    let ec2 = aws.ec2();
    let r = on_fresh(|| async { ec2.associate_route_table().route_table_id(id).subnet_id(subnet).send().await.map_err(sdk) }).await;
    match r {
        Ok(_) => Ok(()),
        // An attempt whose answer was lost (then re-sent by the SDK) associated it: done if with this table.
        Err(e) if e.code.as_deref() == Some("Resource.AlreadyAssociated") => {
            let tables = describe(aws, "association.subnet-id", &[subnet.to_string()]).await?;
            if tables.iter().any(|t| t.route_table_id() == Some(id) && associated_subnets(t).contains_key(subnet)) {
                Ok(())
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_one_valid_target_and_distinct_destinations() {
        let ok = RouteTable::new(ferroform_core::Id::literal("vpc-1"))
            .route(Route::to_gateway("0.0.0.0/0", ferroform_core::Id::literal("igw-1")))
            .subnet(ferroform_core::Id::literal("subnet-1"));
        assert!(ok.validate().is_empty());
        let both = Route { destination_cidr: "0.0.0.0/0".into(), gateway_id: Some("igw-1".into()), nat_gateway_id: Some("nat-1".into()) };
        assert_eq!(RouteTable::new(ferroform_core::Id::literal("vpc-1")).route(both).validate()[0].field, "routes");
        let twice = RouteTable::new(ferroform_core::Id::literal("vpc-1"))
            .route(Route::to_gateway("0.0.0.0/0", ferroform_core::Id::literal("igw-1")))
            .route(Route::to_nat("0.0.0.0/0", ferroform_core::Id::literal("nat-1")));
        assert!(twice.validate()[0].message.contains("two routes"));
        assert_eq!(
            RouteTable::new(ferroform_core::Id::literal("vpc-1"))
                .route(Route::to_nat("10.0.0.0/33", ferroform_core::Id::literal("nat-1")))
                .validate()[0]
                .field,
            "routes"
        );
        assert_eq!(
            RouteTable::new(ferroform_core::Id::literal("vpc-1")).subnet(ferroform_core::Id::literal("sn-1")).validate()[0].field,
            "subnet_ids"
        );
    }

    #[test]
    fn sets_compare_as_sets() {
        let a = RouteTable::new(ferroform_core::Id::literal("vpc-1"))
            .subnet(ferroform_core::Id::literal("subnet-2"))
            .subnet(ferroform_core::Id::literal("subnet-1"))
            .route(Route::to_nat("0.0.0.0/0", ferroform_core::Id::literal("nat-1")));
        let b = RouteTable::new(ferroform_core::Id::literal("vpc-1"))
            .subnets(["subnet-1", "subnet-2", "subnet-1"].map(ferroform_core::Id::literal))
            .route(Route::to_nat("0.0.0.0/0", ferroform_core::Id::literal("nat-1")));
        assert_eq!(serde_json::to_value(&a).ok(), serde_json::to_value(&b).ok());
    }

    #[test]
    fn only_routes_we_manage_are_read() {
        use aws_sdk_ec2::types::{Route as R, RouteOrigin};
        let t = aws_sdk_ec2::types::RouteTable::builder()
            .routes(R::builder().destination_cidr_block("10.0.0.0/16").gateway_id("local").origin(RouteOrigin::CreateRouteTable).build())
            .routes(R::builder().destination_prefix_list_id("pl-1").gateway_id("vpce-1").origin(RouteOrigin::CreateRoute).build())
            .routes(R::builder().destination_cidr_block("0.0.0.0/0").nat_gateway_id("nat-1").origin(RouteOrigin::CreateRoute).build())
            .build();
        assert_eq!(managed_routes(&t), BTreeSet::from([Route::to_nat("0.0.0.0/0", ferroform_core::Id::literal("nat-1"))]));
    }
}
