//! EC2 networking against the emulator: every resource's create -> independent describe -> no-op plan ->
//! in-place update (same id) -> replacement (new id, old gone) -> drift repaired -> destroy, and the
//! `Network` component wired end to end.

#![cfg(feature = "ec2")]

use anyhow::{anyhow, Context as _};
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, IpPermission, IpRange, VpcAttributeName};
use ferroform_aws::components::{Nat, Network};
use ferroform_aws::ec2::{ElasticIp, InternetGateway, NatGateway, Route, RouteTable, Rule, SecurityGroup, Subnet, Vpc, VpcEndpoint};
use ferroform_aws::Aws;
use ferroform_core::{Action, CallMeta, Plan, Resource, Stack};
use ferroform_testkit::Harness;
use std::sync::Arc;

type Ec2 = aws_sdk_ec2::Client;

async fn harness() -> anyhow::Result<(Harness, Ec2)> {
    let h = Harness::new().await?;
    h.contexts.insert(Aws::from_config(h.account.config.clone()));
    let ec2 = Ec2::new(&h.account.config);
    Ok((h, ec2))
}

async fn aws(h: &Harness) -> anyhow::Result<Arc<Aws>> {
    Ok(h.contexts.get::<Aws>().await?)
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The top-level fields the plan would change at `address`, each once (a field may change at many leaves).
fn changed(plan: &Plan, address: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for f in plan.changes.iter().filter(|c| c.address == address).flat_map(|c| &c.fields) {
        if !names.contains(&f.name) {
            names.push(f.name.clone());
        }
    }
    names
}

fn action(plan: &Plan, address: &str) -> Option<Action> {
    plan.changes.iter().find(|c| c.address == address).map(|c| c.action)
}

async fn assert_no_changes(h: &Harness, stack: &Stack) -> anyhow::Result<()> {
    let plan = h.plan(stack).await?;
    anyhow::ensure!(!plan.has_changes(), "expected no changes:\n{}", plan.render(false));
    Ok(())
}

async fn vpc_exists(ec2: &Ec2, id: &str) -> anyhow::Result<bool> {
    let out = ec2.describe_vpcs().filters(filter("vpc-id", id)).send().await?;
    Ok(!out.vpcs().is_empty())
}

async fn dns_hostnames(ec2: &Ec2, id: &str) -> anyhow::Result<Option<bool>> {
    let out = ec2.describe_vpc_attribute().vpc_id(id).attribute(VpcAttributeName::EnableDnsHostnames).send().await?;
    Ok(out.enable_dns_hostnames().and_then(|a| a.value()))
}

fn vpc_stack(cidr: &str, hostnames: bool, owner: &str) -> Stack {
    let mut s = Stack::new("vpc");
    s.add("vpc", Vpc::new(cidr).dns_support(true).dns_hostnames(hostnames).name("main").tag("owner", owner));
    s
}

#[tokio::test]
async fn vpc_lifecycle() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    h.apply(&vpc_stack("10.0.0.0/16", true, "a")).await?;
    let id = h.id_of(&vpc_stack("10.0.0.0/16", true, "a"), "vpc").await?;

    // Independent read: range, tags (ours and the engine's), the DNS attribute, the outputs.
    let v = ec2.describe_vpcs().vpc_ids(&id).send().await?;
    let v = v.vpcs().first().ok_or_else(|| anyhow!("no VPC {id}"))?;
    assert_eq!(v.cidr_block(), Some("10.0.0.0/16"));
    let tag = |k: &str| v.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
    assert_eq!(tag("owner").as_deref(), Some("a"));
    assert_eq!(tag("ferroform:address").as_deref(), Some("vpc"));
    assert_eq!(tag("ferroform:stack").as_deref(), Some("vpc"));
    assert_eq!(dns_hostnames(&ec2, &id).await?, Some(true));
    let state = h.engine().state("vpc").await?;
    let outputs = &state.resources["vpc"].outputs;
    assert!(outputs["default_security_group_id"].as_str().is_some_and(|s| s.starts_with("sg-")), "{outputs}");
    assert!(outputs["main_route_table_id"].as_str().is_some_and(|s| s.starts_with("rtb-")), "{outputs}");
    assert!(outputs["arn"].as_str().is_some_and(|s| s.ends_with(&format!(":vpc/{id}"))), "{outputs}");

    assert_no_changes(&h, &vpc_stack("10.0.0.0/16", true, "a")).await?;

    // In place: an attribute and a tag.
    let plan = h.plan(&vpc_stack("10.0.0.0/16", false, "b")).await?;
    assert_eq!(action(&plan, "vpc"), Some(Action::Update));
    assert_eq!(changed(&plan, "vpc"), ["enable_dns_hostnames", "tags"]);
    h.apply(&vpc_stack("10.0.0.0/16", false, "b")).await?;
    assert_eq!(h.id_of(&vpc_stack("10.0.0.0/16", false, "b"), "vpc").await?, id);
    assert_eq!(dns_hostnames(&ec2, &id).await?, Some(false));

    // Drift: hostnames turned on behind our back; the plan shows it, apply puts it back.
    ec2.modify_vpc_attribute().vpc_id(&id).enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build()).send().await?;
    let plan = h.plan(&vpc_stack("10.0.0.0/16", false, "b")).await?;
    assert_eq!(changed(&plan, "vpc"), ["enable_dns_hostnames"], "{}", plan.render(false));
    assert!(plan.render(false).contains("enable_dns_hostnames = true -> false"), "{}", plan.render(false));
    h.apply(&vpc_stack("10.0.0.0/16", false, "b")).await?;
    assert_eq!(dns_hostnames(&ec2, &id).await?, Some(false));

    // Replacement: a new range is a new VPC; the old one goes.
    let plan = h.plan(&vpc_stack("10.1.0.0/16", false, "b")).await?;
    assert_eq!(action(&plan, "vpc"), Some(Action::Replace));
    h.apply(&vpc_stack("10.1.0.0/16", false, "b")).await?;
    let new_id = h.id_of(&vpc_stack("10.1.0.0/16", false, "b"), "vpc").await?;
    assert_ne!(new_id, id);
    assert!(!vpc_exists(&ec2, &id).await?, "the old VPC is gone");
    assert!(vpc_exists(&ec2, &new_id).await?);

    h.destroy(&vpc_stack("10.1.0.0/16", false, "b")).await?;
    assert!(!vpc_exists(&ec2, &new_id).await?, "destroyed");
    Ok(())
}

fn subnet_stack(cidr: &str, zone: &str, public: bool) -> Stack {
    let mut s = Stack::new("subnet");
    let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
    s.add("subnet", Subnet::new(vpc.id(), cidr).availability_zone(zone).map_public_ip_on_launch(public).name("web"));
    s
}

async fn subnet(ec2: &Ec2, id: &str) -> anyhow::Result<Option<aws_sdk_ec2::types::Subnet>> {
    let out = ec2.describe_subnets().filters(filter("subnet-id", id)).send().await?;
    Ok(out.subnets().first().cloned())
}

#[tokio::test]
async fn subnet_lifecycle() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = subnet_stack("10.0.1.0/24", "us-east-1a", true);
    h.apply(&stack).await?;
    let id = h.id_of(&stack, "subnet").await?;
    let vpc_id = h.id_of(&stack, "vpc").await?;
    let s = subnet(&ec2, &id).await?.ok_or_else(|| anyhow!("no subnet {id}"))?;
    assert_eq!((s.cidr_block(), s.availability_zone(), s.vpc_id()), (Some("10.0.1.0/24"), Some("us-east-1a"), Some(vpc_id.as_str())));
    assert_eq!(s.map_public_ip_on_launch(), Some(true));
    assert_no_changes(&h, &stack).await?;

    // In place.
    let private = subnet_stack("10.0.1.0/24", "us-east-1a", false);
    assert_eq!(changed(&h.plan(&private).await?, "subnet"), ["map_public_ip_on_launch"]);
    h.apply(&private).await?;
    assert_eq!(h.id_of(&private, "subnet").await?, id);
    assert_eq!(subnet(&ec2, &id).await?.and_then(|s| s.map_public_ip_on_launch()), Some(false));

    // Drift.
    ec2.modify_subnet_attribute()
        .subnet_id(&id)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await?;
    assert_eq!(changed(&h.plan(&private).await?, "subnet"), ["map_public_ip_on_launch"]);
    h.apply(&private).await?;
    assert_eq!(subnet(&ec2, &id).await?.and_then(|s| s.map_public_ip_on_launch()), Some(false));

    // Replacement, in another zone with the same range: the old one must go first (delete before create).
    let moved = subnet_stack("10.0.1.0/24", "us-east-1b", false);
    let plan = h.plan(&moved).await?;
    assert_eq!(action(&plan, "subnet"), Some(Action::Replace));
    assert_eq!(
        plan.changes.iter().find(|c| c.address == "subnet").and_then(|c| c.replace_mode),
        Some(ferroform_core::ReplaceMode::DeleteBeforeCreate)
    );
    h.apply(&moved).await?;
    let new_id = h.id_of(&moved, "subnet").await?;
    assert_ne!(new_id, id);
    assert!(subnet(&ec2, &id).await?.is_none(), "the old subnet is gone");
    assert_eq!(subnet(&ec2, &new_id).await?.and_then(|s| s.availability_zone().map(str::to_string)).as_deref(), Some("us-east-1b"));

    h.destroy(&moved).await?;
    assert!(subnet(&ec2, &new_id).await?.is_none());
    assert!(!vpc_exists(&ec2, &vpc_id).await?);
    Ok(())
}

fn igw_stack(on: &str) -> Stack {
    let mut s = Stack::new("igw");
    let a = s.add("a", Vpc::new("10.0.0.0/16"));
    let b = s.add("b", Vpc::new("10.1.0.0/16"));
    let vpc = if on == "a" { a.id() } else { b.id() };
    s.add("igw", InternetGateway::new(vpc).name("gw"));
    s
}

async fn attached_to(ec2: &Ec2, igw: &str) -> anyhow::Result<Option<Vec<String>>> {
    let out = ec2.describe_internet_gateways().filters(filter("internet-gateway-id", igw)).send().await?;
    Ok(out.internet_gateways().first().map(|g| g.attachments().iter().filter_map(|a| a.vpc_id().map(str::to_string)).collect()))
}

#[tokio::test]
async fn internet_gateway_lifecycle() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    h.apply(&igw_stack("a")).await?;
    let (id, a, b) = (h.id_of(&igw_stack("a"), "igw").await?, h.id_of(&igw_stack("a"), "a").await?, h.id_of(&igw_stack("a"), "b").await?);
    assert_eq!(attached_to(&ec2, &id).await?, Some(vec![a.clone()]));
    assert_no_changes(&h, &igw_stack("a")).await?;

    // In place: moved to another VPC (detach, attach), same gateway.
    let plan = h.plan(&igw_stack("b")).await?;
    assert_eq!((action(&plan, "igw"), changed(&plan, "igw")), (Some(Action::Update), vec!["vpc_id".to_string()]));
    h.apply(&igw_stack("b")).await?;
    assert_eq!(h.id_of(&igw_stack("b"), "igw").await?, id);
    assert_eq!(attached_to(&ec2, &id).await?, Some(vec![b.clone()]));

    // Drift: detached behind our back; apply attaches it again.
    ec2.detach_internet_gateway().internet_gateway_id(&id).vpc_id(&b).send().await?;
    assert_eq!(changed(&h.plan(&igw_stack("b")).await?, "igw"), ["vpc_id"]);
    h.apply(&igw_stack("b")).await?;
    assert_eq!(attached_to(&ec2, &id).await?, Some(vec![b.clone()]));

    // The gateway has no replace-forcing field: deleted outside, it is created again.
    ec2.detach_internet_gateway().internet_gateway_id(&id).vpc_id(&b).send().await?;
    ec2.delete_internet_gateway().internet_gateway_id(&id).send().await?;
    let plan = h.plan(&igw_stack("b")).await?;
    assert_eq!(action(&plan, "igw"), Some(Action::Create));
    h.apply(&igw_stack("b")).await?;
    let new_id = h.id_of(&igw_stack("b"), "igw").await?;
    assert_ne!(new_id, id);
    assert_eq!(attached_to(&ec2, &new_id).await?, Some(vec![b.clone()]));

    h.destroy(&igw_stack("b")).await?;
    assert_eq!(attached_to(&ec2, &new_id).await?, None);
    Ok(())
}

/// A VPC (or two), a gateway, two subnets and the table under test.
fn rt_stack(vpc: &str, routes: &[&str], subnets: &[usize]) -> Stack {
    let mut s = Stack::new("rt");
    let a = s.add("a", Vpc::new("10.0.0.0/16"));
    let b = s.add("b", Vpc::new("10.1.0.0/16"));
    let igw = s.add("igw", InternetGateway::new(a.id()));
    let sn: Vec<_> = (0..2).map(|i| s.add(&format!("s{i}"), Subnet::new(a.id(), format!("10.0.{i}.0/24")))).collect();
    let mut rt = RouteTable::new(if vpc == "a" { a.id() } else { b.id() }).name("public");
    for dest in routes {
        rt = rt.route(Route::to_gateway(*dest, igw.id()));
    }
    for i in subnets {
        rt = rt.subnet(sn[*i].id());
    }
    s.add("rt", rt);
    s
}

async fn route_table(ec2: &Ec2, id: &str) -> anyhow::Result<Option<aws_sdk_ec2::types::RouteTable>> {
    let out = ec2.describe_route_tables().filters(filter("route-table-id", id)).send().await?;
    Ok(out.route_tables().first().cloned())
}

fn cidr_routes(t: &aws_sdk_ec2::types::RouteTable) -> Vec<(String, String)> {
    let mut r: Vec<(String, String)> = t
        .routes()
        .iter()
        .filter(|r| r.gateway_id() != Some("local"))
        .filter_map(|r| Some((r.destination_cidr_block()?.to_string(), r.gateway_id().or(r.nat_gateway_id())?.to_string())))
        .collect();
    r.sort();
    r
}

fn subnets_of(t: &aws_sdk_ec2::types::RouteTable) -> Vec<String> {
    let mut s: Vec<String> = t.associations().iter().filter_map(|a| a.subnet_id().map(str::to_string)).collect();
    s.sort();
    s
}

#[tokio::test]
async fn route_table_lifecycle() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = rt_stack("a", &["0.0.0.0/0"], &[0]);
    h.apply(&stack).await?;
    let id = h.id_of(&stack, "rt").await?;
    let (igw, s0, s1) = (h.id_of(&stack, "igw").await?, h.id_of(&stack, "s0").await?, h.id_of(&stack, "s1").await?);
    let t = route_table(&ec2, &id).await?.ok_or_else(|| anyhow!("no table {id}"))?;
    assert_eq!(cidr_routes(&t), [("0.0.0.0/0".to_string(), igw.clone())]);
    assert_eq!(subnets_of(&t), std::slice::from_ref(&s0));
    assert_no_changes(&h, &stack).await?;

    // In place: one more route, one more subnet (sets: the order in code does not matter).
    let more = rt_stack("a", &["192.168.0.0/16", "0.0.0.0/0"], &[1, 0]);
    assert_eq!(changed(&h.plan(&more).await?, "rt"), ["routes", "subnet_ids"]);
    h.apply(&more).await?;
    assert_eq!(h.id_of(&more, "rt").await?, id);
    let t = route_table(&ec2, &id).await?.ok_or_else(|| anyhow!("no table"))?;
    assert_eq!(cidr_routes(&t), [("0.0.0.0/0".to_string(), igw.clone()), ("192.168.0.0/16".to_string(), igw.clone())]);
    let mut both = vec![s0.clone(), s1.clone()];
    both.sort();
    assert_eq!(subnets_of(&t), both);
    assert_no_changes(&h, &rt_stack("a", &["0.0.0.0/0", "192.168.0.0/16"], &[0, 1])).await?;

    // Drift: a route deleted and a subnet let go behind our back.
    ec2.delete_route().route_table_id(&id).destination_cidr_block("192.168.0.0/16").send().await?;
    let assoc = t.associations().iter().find(|a| a.subnet_id() == Some(s1.as_str())).and_then(|a| a.route_table_association_id());
    ec2.disassociate_route_table().association_id(assoc.ok_or_else(|| anyhow!("no association"))?).send().await?;
    assert_eq!(changed(&h.plan(&more).await?, "rt"), ["routes", "subnet_ids"]);
    h.apply(&more).await?;
    let t = route_table(&ec2, &id).await?.ok_or_else(|| anyhow!("no table"))?;
    assert_eq!(cidr_routes(&t).len(), 2);
    assert_eq!(subnets_of(&t), both);

    // Back to fewer: the route and the association go.
    h.apply(&stack).await?;
    let t = route_table(&ec2, &id).await?.ok_or_else(|| anyhow!("no table"))?;
    assert_eq!((cidr_routes(&t).len(), subnets_of(&t)), (1, vec![s0.clone()]));

    // Replacement: another VPC (no routes to the first VPC's gateway there).
    let other = rt_stack("b", &[], &[]);
    assert_eq!(action(&h.plan(&other).await?, "rt"), Some(Action::Replace));
    h.apply(&other).await?;
    let new_id = h.id_of(&other, "rt").await?;
    assert_ne!(new_id, id);
    assert!(route_table(&ec2, &id).await?.is_none(), "the old table is gone");
    assert_eq!(route_table(&ec2, &new_id).await?.and_then(|t| t.vpc_id().map(str::to_string)), Some(h.id_of(&other, "b").await?));

    h.destroy(&other).await?;
    assert!(route_table(&ec2, &new_id).await?.is_none());
    Ok(())
}

fn sg_stack(name: &str, ingress: Vec<Rule>, egress: Option<Vec<Rule>>) -> Stack {
    let mut s = Stack::new("sg");
    let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
    let peer = s.add("peer", SecurityGroup::new("peer", vpc.id()));
    let mut g = SecurityGroup::new(name, vpc.id()).description("web servers");
    for r in ingress {
        // `PEER` stands for the peer group's id, known after apply.
        g = g.ingress(match r.source_security_group_id.as_deref() {
            Some("PEER") => Rule { source_security_group_id: Some(peer.id().into()), ..r },
            _ => r,
        });
    }
    g.egress = egress;
    s.add("web", g);
    s
}

async fn group(ec2: &Ec2, id: &str) -> anyhow::Result<Option<aws_sdk_ec2::types::SecurityGroup>> {
    let out = ec2.describe_security_groups().filters(filter("group-id", id)).send().await?;
    Ok(out.security_groups().first().cloned())
}

/// (protocol, from, to, peer, description) of every single-peer rule.
fn rules(perms: &[IpPermission]) -> Vec<(String, i32, i32, String, String)> {
    let mut out = Vec::new();
    for p in perms {
        let proto = p.ip_protocol().unwrap_or_default().to_string();
        let (from, to) = (p.from_port().unwrap_or(0), p.to_port().unwrap_or(0));
        for r in p.ip_ranges() {
            out.push((
                proto.clone(),
                from,
                to,
                r.cidr_ip().unwrap_or_default().to_string(),
                r.description().unwrap_or_default().to_string(),
            ));
        }
        for g in p.user_id_group_pairs() {
            out.push((
                proto.clone(),
                from,
                to,
                g.group_id().unwrap_or_default().to_string(),
                g.description().unwrap_or_default().to_string(),
            ));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn security_group_lifecycle() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let web = || vec![Rule::tcp(443).cidr("10.0.0.0/8").cidr("192.168.0.0/16").description("https")];
    let stack = sg_stack("web", web(), None);
    h.apply(&stack).await?;
    let id = h.id_of(&stack, "web").await?;
    let g = group(&ec2, &id).await?.ok_or_else(|| anyhow!("no group {id}"))?;
    assert_eq!((g.group_name(), g.description()), (Some("web"), Some("web servers")));
    let t = |c: &str, d: &str| ("tcp".to_string(), 443, 443, c.to_string(), d.to_string());
    assert_eq!(rules(g.ip_permissions()), [t("10.0.0.0/8", "https"), t("192.168.0.0/16", "https")]);
    // Egress not declared: AWS's default allow-all stays, and is no change.
    assert_eq!(rules(g.ip_permissions_egress()), [("-1".to_string(), 0, 0, "0.0.0.0/0".to_string(), String::new())]);
    assert_no_changes(&h, &stack).await?;
    // The same rules grouped otherwise are no change either.
    let regrouped =
        vec![Rule::tcp(443).cidr("192.168.0.0/16").description("https"), Rule::tcp(443).cidr("10.0.0.0/8").description("https")];
    assert_no_changes(&h, &sg_stack("web", regrouped, None)).await?;

    // In place: a rule from the peer group, a description, and egress managed from now on (default revoked).
    let peer = h.id_of(&stack, "peer").await?;
    let ingress = vec![
        Rule::tcp(443).cidr("10.0.0.0/8").cidr("192.168.0.0/16").description("tls"),
        Rule::tcp(8080).group(ferroform_core::Id::literal("PEER")).description("from peer"),
    ];
    let managed = sg_stack("web", ingress.clone(), Some(vec![Rule::tcp(5432).cidr("10.0.0.0/16")]));
    let plan = h.plan(&managed).await?;
    assert_eq!((action(&plan, "web"), changed(&plan, "web")), (Some(Action::Update), vec!["ingress".to_string(), "egress".to_string()]));
    h.apply(&managed).await?;
    assert_eq!(h.id_of(&managed, "web").await?, id);
    let g = group(&ec2, &id).await?.ok_or_else(|| anyhow!("no group"))?;
    let t = |port: i32, peer: &str, d: &str| ("tcp".to_string(), port, port, peer.to_string(), d.to_string());
    assert_eq!(rules(g.ip_permissions()), [t(443, "10.0.0.0/8", "tls"), t(443, "192.168.0.0/16", "tls"), t(8080, &peer, "from peer")]);
    assert_eq!(rules(g.ip_permissions_egress()), [t(5432, "10.0.0.0/16", "")]);
    assert_no_changes(&h, &managed).await?;

    // Drift: a rule opened behind our back is shown and revoked.
    ec2.authorize_security_group_ingress()
        .group_id(&id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await?;
    let plan = h.plan(&managed).await?;
    assert_eq!(changed(&plan, "web"), ["ingress"]);
    assert!(plan.render(false).contains("\"from_port\":22"), "{}", plan.render(false));
    h.apply(&managed).await?;
    let g = group(&ec2, &id).await?.ok_or_else(|| anyhow!("no group"))?;
    assert!(rules(g.ip_permissions()).iter().all(|r| r.1 != 22), "port 22 revoked");

    // Replacement: a new name is a new group; the old one goes first (names are unique in a VPC).
    let renamed = sg_stack("web2", ingress, Some(vec![Rule::tcp(5432).cidr("10.0.0.0/16")]));
    assert_eq!(action(&h.plan(&renamed).await?, "web"), Some(Action::Replace));
    h.apply(&renamed).await?;
    let new_id = h.id_of(&renamed, "web").await?;
    assert_ne!(new_id, id);
    assert!(group(&ec2, &id).await?.is_none(), "the old group is gone");
    assert_eq!(group(&ec2, &new_id).await?.and_then(|g| g.group_name().map(str::to_string)).as_deref(), Some("web2"));
    assert_no_changes(&h, &renamed).await?;

    h.destroy(&renamed).await?;
    assert!(group(&ec2, &new_id).await?.is_none());
    Ok(())
}

fn nat_stack(subnet: usize, owner: &str) -> Stack {
    let mut s = Stack::new("nat");
    let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
    let igw = s.add("igw", InternetGateway::new(vpc.id()));
    let sn: Vec<_> = (0..2).map(|i| s.add(&format!("public-{i}"), Subnet::new(vpc.id(), format!("10.0.{i}.0/24")))).collect();
    let ip = s.add_with("ip", ElasticIp::new().name("nat").tag("owner", owner), ferroform_core::Options::new().depends_on(&igw));
    s.add("nat", NatGateway::new(sn[subnet].id(), ip.id()).tag("owner", owner));
    s
}

async fn nat(ec2: &Ec2, id: &str) -> anyhow::Result<Option<aws_sdk_ec2::types::NatGateway>> {
    let out = ec2.describe_nat_gateways().nat_gateway_ids(id).send().await?;
    Ok(out.nat_gateways().first().cloned())
}

fn nat_state(n: &Option<aws_sdk_ec2::types::NatGateway>) -> String {
    n.as_ref().and_then(|n| n.state()).map(|s| s.as_str().to_ascii_lowercase()).unwrap_or_else(|| "absent".into())
}

#[tokio::test]
async fn nat_gateway_and_elastic_ip_lifecycle() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = nat_stack(0, "a");
    h.apply(&stack).await?;
    let (id, alloc, s0) = (h.id_of(&stack, "nat").await?, h.id_of(&stack, "ip").await?, h.id_of(&stack, "public-0").await?);
    let n = nat(&ec2, &id).await?;
    assert_eq!(nat_state(&n), "available");
    let n = n.ok_or_else(|| anyhow!("no NAT"))?;
    assert_eq!(n.subnet_id(), Some(s0.as_str()));
    assert_eq!(n.nat_gateway_addresses().first().and_then(|a| a.allocation_id()), Some(alloc.as_str()));
    let addr = ec2.describe_addresses().allocation_ids(&alloc).send().await?;
    let public_ip = addr.addresses().first().and_then(|a| a.public_ip()).map(str::to_string);
    let state = h.engine().state("nat").await?;
    assert_eq!(state.resources["ip"].outputs["public_ip"].as_str(), public_ip.as_deref());
    assert_no_changes(&h, &stack).await?;

    // In place: tags on both.
    let retagged = nat_stack(0, "b");
    let plan = h.plan(&retagged).await?;
    assert_eq!((changed(&plan, "nat"), changed(&plan, "ip")), (vec!["tags".to_string()], vec!["tags".to_string()]));
    h.apply(&retagged).await?;
    assert_eq!((h.id_of(&retagged, "nat").await?, h.id_of(&retagged, "ip").await?), (id.clone(), alloc.clone()));
    let n = nat(&ec2, &id).await?.ok_or_else(|| anyhow!("no NAT"))?;
    assert!(n.tags().iter().any(|t| t.key() == Some("owner") && t.value() == Some("b")));

    // Drift on a tag.
    ec2.create_tags().resources(&id).tags(aws_sdk_ec2::types::Tag::builder().key("owner").value("mallory").build()).send().await?;
    assert_eq!(changed(&h.plan(&retagged).await?, "nat"), ["tags"]);
    h.apply(&retagged).await?;
    assert_no_changes(&h, &retagged).await?;

    // Replacement: another subnet; the old gateway is deleted first (it holds the address), and waited for.
    let moved = nat_stack(1, "b");
    let plan = h.plan(&moved).await?;
    assert_eq!(action(&plan, "nat"), Some(Action::Replace));
    h.apply(&moved).await?;
    let new_id = h.id_of(&moved, "nat").await?;
    assert_ne!(new_id, id);
    assert_eq!(nat_state(&nat(&ec2, &id).await?), "deleted");
    assert_eq!(nat_state(&nat(&ec2, &new_id).await?), "available");
    assert_no_changes(&h, &moved).await?;

    h.destroy(&moved).await?;
    assert_eq!(nat_state(&nat(&ec2, &new_id).await?), "deleted");
    let left = ec2.describe_addresses().filters(filter("allocation-id", &alloc)).send().await?;
    assert!(left.addresses().is_empty(), "the address is released");
    Ok(())
}

fn endpoint_stack(service: &str, tables: &[usize]) -> Stack {
    let mut s = Stack::new("endpoint");
    let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
    let rts: Vec<_> = (0..2).map(|i| s.add(&format!("rt{i}"), RouteTable::new(vpc.id()))).collect();
    s.add("ep", VpcEndpoint::gateway(vpc.id(), service).route_tables(tables.iter().map(|i| rts[*i].id())));
    s
}

async fn endpoint(ec2: &Ec2, id: &str) -> anyhow::Result<Option<aws_sdk_ec2::types::VpcEndpoint>> {
    let out = ec2.describe_vpc_endpoints().vpc_endpoint_ids(id).send().await;
    match out {
        Ok(o) => Ok(o.vpc_endpoints().iter().find(|e| e.state().is_none_or(|s| !s.as_str().eq_ignore_ascii_case("deleted"))).cloned()),
        Err(e) if format!("{e:?}").contains("NotFound") => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

#[tokio::test]
async fn vpc_endpoint_lifecycle() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = endpoint_stack("dynamodb", &[0]);
    h.apply(&stack).await?;
    let (id, rt0, rt1) = (h.id_of(&stack, "ep").await?, h.id_of(&stack, "rt0").await?, h.id_of(&stack, "rt1").await?);
    let e = endpoint(&ec2, &id).await?.ok_or_else(|| anyhow!("no endpoint {id}"))?;
    assert_eq!(e.service_name(), Some("com.amazonaws.us-east-1.dynamodb"), "the short name is completed with the region");
    assert_eq!(e.vpc_endpoint_type().map(|t| t.as_str().to_ascii_lowercase()).as_deref(), Some("gateway"));
    assert_eq!(e.route_table_ids(), std::slice::from_ref(&rt0));
    // The short form in code matches the full name AWS reports, and the endpoint's own route in the table
    // is not the table's business.
    assert_no_changes(&h, &stack).await?;
    assert_no_changes(&h, &endpoint_stack("com.amazonaws.us-east-1.dynamodb", &[0])).await?;

    // In place: one more table.
    let both = endpoint_stack("dynamodb", &[0, 1]);
    assert_eq!(changed(&h.plan(&both).await?, "ep"), ["route_table_ids"]);
    h.apply(&both).await?;
    assert_eq!(h.id_of(&both, "ep").await?, id);
    let e = endpoint(&ec2, &id).await?.ok_or_else(|| anyhow!("no endpoint"))?;
    assert_eq!(sorted(e.route_table_ids()), sorted(&[rt0.clone(), rt1.clone()]));

    // Drift: a table removed behind our back.
    ec2.modify_vpc_endpoint().vpc_endpoint_id(&id).remove_route_table_ids(&rt1).send().await?;
    assert_eq!(changed(&h.plan(&both).await?, "ep"), ["route_table_ids"]);
    h.apply(&both).await?;
    let e = endpoint(&ec2, &id).await?.ok_or_else(|| anyhow!("no endpoint"))?;
    assert_eq!(sorted(e.route_table_ids()), sorted(&[rt0.clone(), rt1.clone()]));

    // Replacement: another service.
    let s3 = endpoint_stack("s3", &[0, 1]);
    assert_eq!(action(&h.plan(&s3).await?, "ep"), Some(Action::Replace));
    h.apply(&s3).await?;
    let new_id = h.id_of(&s3, "ep").await?;
    assert_ne!(new_id, id);
    let old = endpoint(&ec2, &id).await?;
    assert!(old.is_none(), "the old endpoint is gone: {old:?} {:?}", h.engine().state("endpoint").await?.deposed);
    assert_eq!(
        endpoint(&ec2, &new_id).await?.and_then(|e| e.service_name().map(str::to_string)).as_deref(),
        Some("com.amazonaws.us-east-1.s3")
    );
    assert_no_changes(&h, &s3).await?;

    h.destroy(&s3).await?;
    assert!(endpoint(&ec2, &new_id).await?.is_none());
    Ok(())
}

fn network_stack() -> anyhow::Result<(Stack, ferroform_aws::components::NetworkHandles)> {
    let mut s = Stack::new("net");
    let net = Network::new("shop", "10.20.0.0/16")
        .zones(["us-east-1a", "us-east-1b"])
        .nat(Nat::Single)
        .gateway_endpoint("dynamodb")
        .add(&mut s)?;
    s.output("vpc_id", net.vpc_id());
    s.output("private_subnet_ids", serde_json::json!(net.private_subnet_ids()));
    Ok((s, net))
}

#[tokio::test]
async fn network_component_wiring_and_cheap_reads() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let (stack, net) = network_stack()?;
    let state = h.apply(&stack).await?;
    let id = |a: &str| state.resources.get(a).and_then(|r| r.id.clone()).ok_or_else(|| anyhow!("{a} not in state"));
    let vpc = id("network/vpc")?;
    let igw = id("network/igw")?;
    let nat_id = id("network/nat-0")?;
    let public: Vec<String> = (0..2).map(|i| id(&format!("network/public-{i}"))).collect::<Result<_, _>>()?;
    let private: Vec<String> = (0..2).map(|i| id(&format!("network/private-{i}"))).collect::<Result<_, _>>()?;
    assert_eq!(state.outputs["vpc_id"].value, serde_json::json!(vpc));
    assert_eq!(state.outputs["private_subnet_ids"].value, serde_json::json!(private));

    // The VPC and its gateway.
    assert!(vpc_exists(&ec2, &vpc).await?);
    assert_eq!(attached_to(&ec2, &igw).await?, Some(vec![vpc.clone()]));
    assert_eq!(dns_hostnames(&ec2, &vpc).await?, Some(true));

    // Subnets: in their zones, with the carved ranges, public ones mapping public addresses.
    let zones = ["us-east-1a", "us-east-1b"];
    for (i, sid) in public.iter().enumerate() {
        let s = subnet(&ec2, sid).await?.ok_or_else(|| anyhow!("no subnet {sid}"))?;
        assert_eq!(
            (s.vpc_id(), s.availability_zone(), s.cidr_block()),
            (Some(vpc.as_str()), Some(zones[i]), Some(net.public_subnet_cidrs[i].as_str()))
        );
        assert_eq!(s.map_public_ip_on_launch(), Some(true));
    }
    for (i, sid) in private.iter().enumerate() {
        let s = subnet(&ec2, sid).await?.ok_or_else(|| anyhow!("no subnet {sid}"))?;
        assert_eq!((s.availability_zone(), s.cidr_block()), (Some(zones[i]), Some(net.private_subnet_cidrs[i].as_str())));
        assert_ne!(s.map_public_ip_on_launch(), Some(true));
    }
    assert_eq!(net.public_subnet_cidrs, ["10.20.0.0/20", "10.20.16.0/20"]);
    assert_eq!(net.private_subnet_cidrs, ["10.20.32.0/20", "10.20.48.0/20"]);

    // Public table: default route to the gateway, both public subnets.
    let t = route_table(&ec2, &id("network/public-rt")?).await?.ok_or_else(|| anyhow!("no public table"))?;
    assert_eq!(cidr_routes(&t), [("0.0.0.0/0".to_string(), igw.clone())]);
    assert_eq!(subnets_of(&t), sorted(&public));
    // Private tables: each zone's subnet, default route through the single NAT gateway in public-0.
    let mut private_tables = Vec::new();
    for (i, sid) in private.iter().enumerate() {
        let rt = id(&format!("network/private-rt-{i}"))?;
        let t = route_table(&ec2, &rt).await?.ok_or_else(|| anyhow!("no private table"))?;
        assert_eq!(cidr_routes(&t), [("0.0.0.0/0".to_string(), nat_id.clone())]);
        assert_eq!(subnets_of(&t), std::slice::from_ref(sid));
        private_tables.push(rt);
    }
    let n = nat(&ec2, &nat_id).await?.ok_or_else(|| anyhow!("no NAT"))?;
    assert_eq!(n.subnet_id(), Some(public[0].as_str()));
    assert_eq!(n.nat_gateway_addresses().first().and_then(|a| a.allocation_id()), Some(id("network/nat-ip-0")?.as_str()));
    // The DynamoDB endpoint, on the private tables.
    let e = endpoint(&ec2, &id("network/endpoint-dynamodb")?).await?.ok_or_else(|| anyhow!("no endpoint"))?;
    assert_eq!((e.vpc_id(), e.service_name()), (Some(vpc.as_str()), Some("com.amazonaws.us-east-1.dynamodb")));
    assert_eq!(sorted(e.route_table_ids()), sorted(&private_tables));

    // A no-op plan, and what it costs.
    let aws = aws(&h).await?;
    aws.calls().reset();
    let plan = h.plan(&stack).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    let calls = aws.calls().snapshot();
    let total: usize = calls.values().sum();
    let resources = state.resources.len();
    println!(
        "no-op plan of the network: {total} calls for {resources} resources ({:.2} per resource): {calls:?}",
        total as f64 / resources as f64
    );
    assert!(total <= resources, "reads are batched: {total} calls for {resources} resources: {calls:?}");

    h.destroy(&stack).await?;
    assert!(!vpc_exists(&ec2, &vpc).await?, "the whole network is gone");
    assert_eq!(nat_state(&nat(&ec2, &nat_id).await?), "deleted");
    Ok(())
}

#[tokio::test]
async fn network_checks_fail_before_any_call() -> anyhow::Result<()> {
    let mut s = Stack::new("net");
    let err = Network::new("shop", "10.20.0.0/16")
        .zones(["us-east-1a", "us-east-1b"])
        .public_subnets(["10.20.0.0/24", "10.99.0.0/24"])
        .private_subnets(["10.20.0.0/25", "10.20.3.0/24"])
        .add(&mut s)
        .err()
        .ok_or_else(|| anyhow!("the checks passed"))?;
    let msg = err.to_string();
    assert!(msg.contains("network/public-1: field `cidr_block`: 10.99.0.0/24 is not inside the VPC's range 10.20.0.0/16"), "{msg}");
    assert!(msg.contains("network/private-0: field `cidr_block`: 10.20.0.0/25 overlaps 10.20.0.0/24 of `network/public-0`"), "{msg}");
    assert!(s.resources().is_empty());
    Ok(())
}

#[tokio::test]
async fn batched_reads_skip_missing_ids_in_one_call() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let aws = aws(&h).await?;
    let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await?;
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).ok_or_else(|| anyhow!("no vpc"))?.to_string();
    let mut ids = Vec::new();
    for i in 0..3 {
        let s = ec2.create_subnet().vpc_id(&vpc).cidr_block(format!("10.0.{i}.0/24")).send().await?;
        ids.push(s.subnet().and_then(|s| s.subnet_id()).ok_or_else(|| anyhow!("no subnet"))?.to_string());
    }
    ids.insert(1, "subnet-0123456789abcdef0".into());
    let prior = Subnet::new(ferroform_core::Id::literal(&vpc), "10.0.0.0/24");
    let items: Vec<(String, Subnet)> = ids.iter().map(|id| (id.clone(), prior.clone())).collect();
    aws.calls().reset();
    let found = Subnet::read_many(&aws, &items).await;
    assert_eq!(aws.calls().total(), 1, "one DescribeSubnets for all: {:?}", aws.calls().snapshot());
    let present: Vec<bool> = found.iter().map(|r| matches!(r, Ok(Some(_)))).collect();
    assert_eq!(present, [true, false, true, true]);
    let cidrs: Vec<String> = found.into_iter().filter_map(|r| r.ok().flatten()).map(|o| o.inputs.cidr_block).collect();
    assert_eq!(cidrs, ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]);

    // Endpoints are asked by id; one unknown id falls back to asking each alone.
    let ep = ec2
        .create_vpc_endpoint()
        .vpc_id(&vpc)
        .service_name("com.amazonaws.us-east-1.s3")
        .vpc_endpoint_type(aws_sdk_ec2::types::VpcEndpointType::Gateway)
        .send()
        .await?;
    let ep = ep.vpc_endpoint().and_then(|e| e.vpc_endpoint_id()).ok_or_else(|| anyhow!("no endpoint"))?.to_string();
    let prior = VpcEndpoint::gateway(ferroform_core::Id::literal(&vpc), "s3");
    let found = VpcEndpoint::read_many(&aws, &[("vpce-0123456789abcdef0".into(), prior.clone()), (ep, prior)]).await;
    let present: Vec<bool> = found.iter().map(|r| matches!(r, Ok(Some(_)))).collect();
    assert_eq!(present, [false, true]);
    Ok(())
}

#[tokio::test]
async fn what_a_killed_run_created_is_found_by_its_tags() -> anyhow::Result<()> {
    let (h, _ec2) = harness().await?;
    let aws = aws(&h).await?;
    let meta = CallMeta { stack: "adopt".into(), address: "network/vpc".into(), idempotency_token: "t".into(), ..Default::default() };
    let mut vpc = Vpc::new("10.0.0.0/16");
    vpc.set_default_tags(&meta.tags());
    // Made by the "killed" run (tags set at creation), plus a decoy from another stack.
    let (id, _) = Vpc::create(&aws, &vpc, &meta).await?;
    let decoy_meta = CallMeta { stack: "other".into(), ..meta.clone() };
    let mut decoy = Vpc::new("10.0.0.0/16");
    decoy.set_default_tags(&decoy_meta.tags());
    Vpc::create(&aws, &decoy, &decoy_meta).await?;
    assert_eq!(Vpc::find_by_tags(&aws, &vpc, &meta).await?, Some(id.clone()));

    let subnet_meta = CallMeta { address: "network/public-0".into(), ..meta.clone() };
    let mut sn = Subnet::new(ferroform_core::Id::literal(&id), "10.0.1.0/24");
    sn.set_default_tags(&subnet_meta.tags());
    let (sid, _) = Subnet::create(&aws, &sn, &subnet_meta).await?;
    assert_eq!(Subnet::find_by_tags(&aws, &sn, &subnet_meta).await?, Some(sid.clone()));
    assert_eq!(Subnet::find_by_tags(&aws, &sn, &meta).await?, None, "the VPC's tags are not the subnet's");

    let ip_meta = CallMeta { address: "network/nat-ip-0".into(), ..meta.clone() };
    let mut ip = ElasticIp::new();
    ip.set_default_tags(&ip_meta.tags());
    let (alloc, _) = ElasticIp::create(&aws, &ip, &ip_meta).await?;
    let igw_meta = CallMeta { address: "network/igw".into(), ..meta.clone() };
    let mut igw = InternetGateway::new(ferroform_core::Id::literal(&id));
    igw.set_default_tags(&igw_meta.tags());
    InternetGateway::create(&aws, &igw, &igw_meta).await?;
    let nat_meta = CallMeta { address: "network/nat-0".into(), ..meta.clone() };
    let mut ng = NatGateway::new(ferroform_core::Id::literal(&sid), ferroform_core::Id::literal(&alloc));
    ng.set_default_tags(&nat_meta.tags());
    let (nid, _) = NatGateway::create(&aws, &ng, &nat_meta).await?;
    // NAT gateways: the emulator ignores tag filters, so our own check of the tags is what finds the right one.
    assert_eq!(NatGateway::find_by_tags(&aws, &ng, &nat_meta).await?, Some(nid));
    assert_eq!(NatGateway::find_by_tags(&aws, &ng, &ip_meta).await?, None);
    assert_eq!(ElasticIp::find_by_tags(&aws, &ip, &ip_meta).await?, Some(alloc));

    let sg_meta = CallMeta { address: "web".into(), ..meta.clone() };
    let mut sg = SecurityGroup::new("web", ferroform_core::Id::literal(&id));
    sg.set_default_tags(&sg_meta.tags());
    let (gid, _) = SecurityGroup::create(&aws, &sg, &sg_meta).await?;
    assert_eq!(SecurityGroup::find_by_tags(&aws, &sg, &sg_meta).await?, Some(gid));
    let rt_meta = CallMeta { address: "rt".into(), ..meta.clone() };
    let mut rt = RouteTable::new(ferroform_core::Id::literal(&id));
    rt.set_default_tags(&rt_meta.tags());
    let (rid, _) = RouteTable::create(&aws, &rt, &rt_meta).await?;
    assert_eq!(RouteTable::find_by_tags(&aws, &rt, &rt_meta).await?, Some(rid));
    let ep_meta = CallMeta { address: "ep".into(), ..meta.clone() };
    let mut ep = VpcEndpoint::gateway(ferroform_core::Id::literal(&id), "dynamodb");
    ep.set_default_tags(&ep_meta.tags());
    let (eid, _) = VpcEndpoint::create(&aws, &ep, &ep_meta).await?;
    assert_eq!(VpcEndpoint::find_by_tags(&aws, &ep, &ep_meta).await.context("endpoint by tags")?, Some(eid));
    Ok(())
}

// Removed settings go back to AWS's defaults: each type applied with its optional settings, then without
// them; the plan names each removed field, apply resets it (read back with the SDK), and the next plan is
// `No changes.`.

/// The action at `address` and its changed top-level fields, sorted, each once.
fn removal(plan: &Plan, address: &str) -> (Action, Vec<String>) {
    let (action, mut fields) = crate::common::change(plan, address);
    fields.dedup();
    (action, fields)
}

/// True when the plan has a change at exactly this path of `address` (`routes[0.0.0.0/0 igw-1]`).
fn has_path(plan: &Plan, address: &str, path: &str) -> bool {
    plan.changes.iter().filter(|c| c.address == address).flat_map(|c| &c.fields).any(|f| f.path == path)
}

/// The tags that are not the engine's own (`ferroform:*`), sorted.
fn user_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Vec<(String, String)> {
    let mut t: Vec<(String, String)> = tags
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
        .filter(|(k, _)| !k.starts_with("ferroform:"))
        .collect();
    t.sort();
    t
}

fn owner_a() -> Vec<(String, String)> {
    vec![("owner".to_string(), "a".to_string())]
}

async fn dns_support(ec2: &Ec2, id: &str) -> anyhow::Result<Option<bool>> {
    let out = ec2.describe_vpc_attribute().vpc_id(id).attribute(VpcAttributeName::EnableDnsSupport).send().await?;
    Ok(out.enable_dns_support().and_then(|a| a.value()))
}

async fn vpc_tags(ec2: &Ec2, id: &str) -> anyhow::Result<Vec<(String, String)>> {
    let out = ec2.describe_vpcs().vpc_ids(id).send().await?;
    Ok(out.vpcs().first().map(|v| user_tags(v.tags())).unwrap_or_default())
}

#[tokio::test]
async fn vpc_settings_removed_go_back_to_defaults() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = |vpc: Vpc| {
        let mut s = Stack::new("vpc-defaults");
        s.add("vpc", vpc);
        s
    };
    let set = stack(Vpc::new("10.0.0.0/16").dns_hostnames(true).tag("owner", "a"));
    h.apply(&set).await?;
    let id = h.id_of(&set, "vpc").await?;
    assert_eq!((dns_hostnames(&ec2, &id).await?, vpc_tags(&ec2, &id).await?), (Some(true), owner_a()));

    let bare = stack(Vpc::new("10.0.0.0/16"));
    let plan = h.plan(&bare).await?;
    assert_eq!(removal(&plan, "vpc"), (Action::Update, vec!["enable_dns_hostnames".into(), "tags".into()]), "{}", plan.render(false));
    assert!(plan.render(false).contains("enable_dns_hostnames = true -> false"), "{}", plan.render(false));
    assert!(has_path(&plan, "vpc", "tags.owner"), "{}", plan.render(false));
    h.apply(&bare).await?;
    assert_eq!(h.id_of(&bare, "vpc").await?, id);
    assert_eq!((dns_support(&ec2, &id).await?, dns_hostnames(&ec2, &id).await?), (Some(true), Some(false)));
    assert_eq!(vpc_tags(&ec2, &id).await?, []);
    assert_no_changes(&h, &bare).await?;

    // DNS support off, then unset: back on.
    let off = stack(Vpc::new("10.0.0.0/16").dns_support(false));
    h.apply(&off).await?;
    assert_eq!(dns_support(&ec2, &id).await?, Some(false));
    let plan = h.plan(&bare).await?;
    assert_eq!(removal(&plan, "vpc"), (Action::Update, vec!["enable_dns_support".into()]), "{}", plan.render(false));
    h.apply(&bare).await?;
    assert_eq!(dns_support(&ec2, &id).await?, Some(true));
    assert_no_changes(&h, &bare).await?;

    h.destroy(&bare).await?;
    Ok(())
}

#[tokio::test]
async fn subnet_settings_removed_go_back_to_defaults() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = |subnet: fn(String) -> Subnet| {
        let mut s = Stack::new("subnet-defaults");
        let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
        s.add("subnet", subnet(vpc.id().into()));
        s
    };
    let set = stack(|vpc| {
        Subnet::new(ferroform_core::Id::literal(vpc), "10.0.1.0/24")
            .availability_zone("us-east-1b")
            .map_public_ip_on_launch(true)
            .tag("owner", "a")
    });
    h.apply(&set).await?;
    let id = h.id_of(&set, "subnet").await?;
    let s = subnet(&ec2, &id).await?.ok_or_else(|| anyhow!("no subnet {id}"))?;
    assert_eq!((s.map_public_ip_on_launch(), user_tags(s.tags())), (Some(true), owner_a()));

    // The zone is AWS's to pick when unset: leaving it out keeps the subnet where it is (no replacement).
    let bare = stack(|vpc| Subnet::new(ferroform_core::Id::literal(vpc), "10.0.1.0/24"));
    let plan = h.plan(&bare).await?;
    assert_eq!(removal(&plan, "subnet"), (Action::Update, vec!["map_public_ip_on_launch".into(), "tags".into()]), "{}", plan.render(false));
    h.apply(&bare).await?;
    assert_eq!(h.id_of(&bare, "subnet").await?, id);
    let s = subnet(&ec2, &id).await?.ok_or_else(|| anyhow!("no subnet {id}"))?;
    assert_eq!((s.map_public_ip_on_launch(), user_tags(s.tags())), (Some(false), vec![]));
    assert_eq!(s.availability_zone(), Some("us-east-1b"));
    assert_no_changes(&h, &bare).await?;

    h.destroy(&bare).await?;
    Ok(())
}

#[tokio::test]
async fn internet_gateway_settings_removed_go_back_to_defaults() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = |attached: bool| {
        let mut s = Stack::new("igw-defaults");
        let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
        s.add("igw", if attached { InternetGateway::new(vpc.id()).tag("owner", "a") } else { InternetGateway::detached() });
        s
    };
    h.apply(&stack(true)).await?;
    let (id, vpc) = (h.id_of(&stack(true), "igw").await?, h.id_of(&stack(true), "vpc").await?);
    assert_eq!(attached_to(&ec2, &id).await?, Some(vec![vpc.clone()]));

    // Without a VPC the gateway is detached, as in Terraform.
    let plan = h.plan(&stack(false)).await?;
    assert_eq!(removal(&plan, "igw"), (Action::Update, vec!["tags".into(), "vpc_id".into()]), "{}", plan.render(false));
    h.apply(&stack(false)).await?;
    assert_eq!(h.id_of(&stack(false), "igw").await?, id);
    assert_eq!(attached_to(&ec2, &id).await?, Some(vec![]));
    let g = ec2.describe_internet_gateways().internet_gateway_ids(&id).send().await?;
    assert_eq!(g.internet_gateways().first().map(|g| user_tags(g.tags())), Some(vec![]));
    assert_no_changes(&h, &stack(false)).await?;

    h.destroy(&stack(false)).await?;
    Ok(())
}

#[tokio::test]
async fn route_table_settings_removed_go_back_to_defaults() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = |full: bool| {
        let mut s = Stack::new("rt-defaults");
        let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
        let igw = s.add("igw", InternetGateway::new(vpc.id()));
        let sn = s.add("s0", Subnet::new(vpc.id(), "10.0.0.0/24"));
        let mut rt = RouteTable::new(vpc.id());
        if full {
            rt = rt.route(Route::to_gateway("0.0.0.0/0", igw.id())).subnet(sn.id()).tag("owner", "a");
        }
        s.add("rt", rt);
        s
    };
    h.apply(&stack(true)).await?;
    let (id, igw, s0) = (h.id_of(&stack(true), "rt").await?, h.id_of(&stack(true), "igw").await?, h.id_of(&stack(true), "s0").await?);
    let t = route_table(&ec2, &id).await?.ok_or_else(|| anyhow!("no table {id}"))?;
    assert_eq!((cidr_routes(&t), subnets_of(&t), user_tags(t.tags())), (vec![("0.0.0.0/0".to_string(), igw.clone())], vec![s0], owner_a()));

    let plan = h.plan(&stack(false)).await?;
    assert_eq!(removal(&plan, "rt"), (Action::Update, vec!["routes".into(), "subnet_ids".into(), "tags".into()]), "{}", plan.render(false));
    // The route is named by its values (a set element without a natural key).
    assert!(has_path(&plan, "rt", &format!("routes[0.0.0.0/0 {igw}]")), "{}", plan.render(false));
    h.apply(&stack(false)).await?;
    assert_eq!(h.id_of(&stack(false), "rt").await?, id);
    let t = route_table(&ec2, &id).await?.ok_or_else(|| anyhow!("no table {id}"))?;
    assert_eq!((cidr_routes(&t), subnets_of(&t), user_tags(t.tags())), (vec![], vec![], vec![]));
    assert_no_changes(&h, &stack(false)).await?;

    h.destroy(&stack(false)).await?;
    Ok(())
}

#[tokio::test]
async fn security_group_settings_removed_go_back_to_defaults() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = |full: bool| {
        let mut s = Stack::new("sg-defaults");
        let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
        let mut g = SecurityGroup::new("web", vpc.id());
        if full {
            g = g
                .ingress(Rule::tcp(443).cidr("10.0.0.0/8").description("https"))
                .ingress(Rule::udp(53).cidr("10.0.0.0/16"))
                .egress(Rule::tcp(5432).cidr("10.0.0.0/16"))
                .tag("owner", "a");
        }
        s.add("web", g);
        s
    };
    h.apply(&stack(true)).await?;
    let id = h.id_of(&stack(true), "web").await?;
    let g = group(&ec2, &id).await?.ok_or_else(|| anyhow!("no group {id}"))?;
    let rule = |p: &str, port: i32, peer: &str, d: &str| (p.to_string(), port, port, peer.to_string(), d.to_string());
    assert_eq!(rules(g.ip_permissions()), [rule("tcp", 443, "10.0.0.0/8", "https"), rule("udp", 53, "10.0.0.0/16", "")]);
    assert_eq!(rules(g.ip_permissions_egress()), [rule("tcp", 5432, "10.0.0.0/16", "")]);
    assert_eq!(user_tags(g.tags()), owner_a());

    // No rules declared: no ingress, and egress back to AWS's allow-all.
    let plan = h.plan(&stack(false)).await?;
    assert_eq!(removal(&plan, "web"), (Action::Update, vec!["egress".into(), "ingress".into(), "tags".into()]), "{}", plan.render(false));
    // Rules are named by protocol, ports and peer.
    assert!(has_path(&plan, "web", "ingress[tcp 443 443 10.0.0.0/8 https]"), "{}", plan.render(false));
    assert!(has_path(&plan, "web", "egress[-1 0 0 0.0.0.0/0]"), "{}", plan.render(false));
    h.apply(&stack(false)).await?;
    assert_eq!(h.id_of(&stack(false), "web").await?, id);
    let g = group(&ec2, &id).await?.ok_or_else(|| anyhow!("no group {id}"))?;
    assert_eq!(rules(g.ip_permissions()), []);
    assert_eq!(rules(g.ip_permissions_egress()), [("-1".to_string(), 0, 0, "0.0.0.0/0".to_string(), String::new())]);
    assert_eq!(user_tags(g.tags()), []);
    assert_no_changes(&h, &stack(false)).await?;

    h.destroy(&stack(false)).await?;
    Ok(())
}

#[tokio::test]
async fn elastic_ip_tags_removed() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = |ip: ElasticIp| {
        let mut s = Stack::new("eip-defaults");
        s.add("ip", ip);
        s
    };
    h.apply(&stack(ElasticIp::new().tag("owner", "a"))).await?;
    let id = h.id_of(&stack(ElasticIp::new()), "ip").await?;
    let tags = |ec2: Ec2, id: String| async move {
        let out = ec2.describe_addresses().allocation_ids(&id).send().await?;
        anyhow::Ok(out.addresses().first().map(|a| user_tags(a.tags())))
    };
    assert_eq!(tags(ec2.clone(), id.clone()).await?, Some(owner_a()));

    let plan = h.plan(&stack(ElasticIp::new())).await?;
    assert_eq!(removal(&plan, "ip"), (Action::Update, vec!["tags".into()]), "{}", plan.render(false));
    h.apply(&stack(ElasticIp::new())).await?;
    assert_eq!(h.id_of(&stack(ElasticIp::new()), "ip").await?, id);
    assert_eq!(tags(ec2.clone(), id.clone()).await?, Some(vec![]));
    assert_no_changes(&h, &stack(ElasticIp::new())).await?;

    h.destroy(&stack(ElasticIp::new())).await?;
    Ok(())
}

#[tokio::test]
async fn nat_gateway_tags_removed() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = |tagged: bool| {
        let mut s = Stack::new("nat-defaults");
        let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
        let igw = s.add("igw", InternetGateway::new(vpc.id()));
        let sn = s.add("public", Subnet::new(vpc.id(), "10.0.0.0/24"));
        let ip = s.add_with("ip", ElasticIp::new(), ferroform_core::Options::new().depends_on(&igw));
        let nat = NatGateway::new(sn.id(), ip.id());
        s.add("nat", if tagged { nat.tag("owner", "a") } else { nat });
        s
    };
    h.apply(&stack(true)).await?;
    let id = h.id_of(&stack(true), "nat").await?;
    assert_eq!(nat(&ec2, &id).await?.map(|n| user_tags(n.tags())), Some(owner_a()));

    let plan = h.plan(&stack(false)).await?;
    assert_eq!(removal(&plan, "nat"), (Action::Update, vec!["tags".into()]), "{}", plan.render(false));
    h.apply(&stack(false)).await?;
    assert_eq!(h.id_of(&stack(false), "nat").await?, id);
    assert_eq!(nat(&ec2, &id).await?.map(|n| user_tags(n.tags())), Some(vec![]));
    assert_no_changes(&h, &stack(false)).await?;

    h.destroy(&stack(false)).await?;
    Ok(())
}

#[tokio::test]
async fn vpc_endpoint_settings_removed_go_back_to_defaults() -> anyhow::Result<()> {
    let (h, ec2) = harness().await?;
    let stack = |full: bool| {
        let mut s = Stack::new("endpoint-defaults");
        let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
        let rt = s.add("rt", RouteTable::new(vpc.id()));
        let ep = VpcEndpoint::gateway(vpc.id(), "s3");
        s.add("ep", if full { ep.route_table(rt.id()).tag("owner", "a") } else { ep });
        s
    };
    h.apply(&stack(true)).await?;
    let (id, rt) = (h.id_of(&stack(true), "ep").await?, h.id_of(&stack(true), "rt").await?);
    let e = endpoint(&ec2, &id).await?.ok_or_else(|| anyhow!("no endpoint {id}"))?;
    assert_eq!((e.route_table_ids(), user_tags(e.tags())), (std::slice::from_ref(&rt), owner_a()));

    let plan = h.plan(&stack(false)).await?;
    assert_eq!(removal(&plan, "ep"), (Action::Update, vec!["route_table_ids".into(), "tags".into()]), "{}", plan.render(false));
    h.apply(&stack(false)).await?;
    assert_eq!(h.id_of(&stack(false), "ep").await?, id);
    let e = endpoint(&ec2, &id).await?.ok_or_else(|| anyhow!("no endpoint {id}"))?;
    assert_eq!((e.route_table_ids(), user_tags(e.tags())), (&[][..], vec![]));
    assert_no_changes(&h, &stack(false)).await?;

    h.destroy(&stack(false)).await?;
    Ok(())
}
