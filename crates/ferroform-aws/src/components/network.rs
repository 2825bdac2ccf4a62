//! `Network`: a VPC with public and private subnets over N zones, the replacement of Terraform's VPC module.
//!
//! ```ignore
//! let net = Network::new("pedidos", "10.0.0.0/16")
//!     .zones(["us-east-1a", "us-east-1b"])
//!     .nat(Nat::Single)
//!     .gateway_endpoint("dynamodb")
//!     .add(&mut stack)?;
//! stack.add("fn", lambda::Function::new("x").vpc(net.private_subnet_ids(), [sg.id()]));
//! ```
//!
//! What it adds, under the scope `network/` (or the one given to [`Network::add_as`]):
//!
//! - `vpc` (DNS support and hostnames on) and `igw`, its internet gateway;
//! - `public-I` and `private-I`, one subnet of each per zone, carved from the VPC's range unless given:
//!   public ones first, then private ones, each `/(vpc prefix + 4)` or smaller when many zones need it;
//! - `public-rt`: `0.0.0.0/0` to the internet gateway, associated with every public subnet;
//! - `private-rt-I`, one per zone, associated with that zone's private subnet; with NAT, `0.0.0.0/0` to
//!   the zone's NAT gateway (`Nat::PerZone`) or to the single one (`Nat::Single`);
//! - `nat-ip-I` and `nat-I`: elastic IP and NAT gateway, in the public subnet of zone I;
//! - `endpoint-SERVICE`: a gateway VPC endpoint (`dynamodb`, `s3`) on every private route table.
//!
//! Checked before anything is added (and so before any API call): the VPC range, every subnet inside the
//! VPC's range, no two subnets overlapping, one subnet of each kind per zone. The checks need both ranges as
//! literals, which only a component has; [`check_subnets`] offers them to hand-built networks.

use crate::ec2::{ElasticIp, InternetGateway, NatGateway, Route, RouteTable, Subnet, Vpc, VpcEndpoint};
use crate::tags::Tags;
use ferroform_core::{Diagnostic, Error, Handle, Id, Options, Stack};
use ipnet::Ipv4Net;
use std::collections::{BTreeMap, BTreeSet};

/// How private subnets reach the internet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Nat {
    /// They don't (gateway endpoints still reach DynamoDB and S3).
    #[default]
    None,
    /// One NAT gateway, in the first zone, for every zone: cheaper, but one zone's outage cuts them all.
    Single,
    /// One NAT gateway per zone.
    PerZone,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Prefix of the `Name` tags.
    pub name: String,
    pub cidr_block: String,
    /// Availability zones, by name (`us-east-1a`): one public and one private subnet in each.
    pub zones: Vec<String>,
    /// Explicit ranges of the public subnets, one per zone; carved from the VPC's when `None`.
    pub public_subnet_cidrs: Option<Vec<String>>,
    pub private_subnet_cidrs: Option<Vec<String>>,
    /// Prefix length of carved subnets; default: the VPC's + 4 (a /16 gives /20s), more when needed.
    pub subnet_prefix: Option<u8>,
    pub nat: Nat,
    /// Services (`dynamodb`, `s3`) reached through gateway endpoints from the private subnets.
    pub gateway_endpoints: BTreeSet<String>,
    /// Added to every resource of the network.
    pub tags: Tags,
}

/// What [`Network::add`] made: handles to reference from the rest of the stack.
pub struct NetworkHandles {
    pub vpc: Handle<Vpc>,
    pub internet_gateway: Handle<InternetGateway>,
    pub public_subnets: Vec<Handle<Subnet>>,
    pub private_subnets: Vec<Handle<Subnet>>,
    pub public_route_table: Handle<RouteTable>,
    /// One per zone.
    pub private_route_tables: Vec<Handle<RouteTable>>,
    pub nat_ips: Vec<Handle<ElasticIp>>,
    pub nat_gateways: Vec<Handle<NatGateway>>,
    /// By service (`dynamodb`).
    pub endpoints: BTreeMap<String, Handle<VpcEndpoint>>,
    /// The ranges the subnets got, in zone order.
    pub public_subnet_cidrs: Vec<String>,
    pub private_subnet_cidrs: Vec<String>,
}

impl NetworkHandles {
    pub fn vpc_id(&self) -> Id<Vpc> {
        self.vpc.id()
    }
    /// The public subnets' ids, in zone order.
    pub fn public_subnet_ids(&self) -> Vec<Id<Subnet>> {
        self.public_subnets.iter().map(|s| s.id()).collect()
    }
    pub fn private_subnet_ids(&self) -> Vec<Id<Subnet>> {
        self.private_subnets.iter().map(|s| s.id()).collect()
    }
}

impl Network {
    pub fn new(name: impl Into<String>, cidr_block: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            cidr_block: cidr_block.into(),
            zones: vec![],
            public_subnet_cidrs: None,
            private_subnet_cidrs: None,
            subnet_prefix: None,
            nat: Nat::None,
            gateway_endpoints: BTreeSet::new(),
            tags: Tags::new(),
        }
    }
    pub fn zones<I: IntoIterator<Item = S>, S: Into<String>>(mut self, zones: I) -> Self {
        self.zones = zones.into_iter().map(Into::into).collect();
        self
    }
    pub fn public_subnets<I: IntoIterator<Item = S>, S: Into<String>>(mut self, cidrs: I) -> Self {
        self.public_subnet_cidrs = Some(cidrs.into_iter().map(Into::into).collect());
        self
    }
    pub fn private_subnets<I: IntoIterator<Item = S>, S: Into<String>>(mut self, cidrs: I) -> Self {
        self.private_subnet_cidrs = Some(cidrs.into_iter().map(Into::into).collect());
        self
    }
    pub fn subnet_prefix(mut self, prefix: u8) -> Self {
        self.subnet_prefix = Some(prefix);
        self
    }
    pub fn nat(mut self, nat: Nat) -> Self {
        self.nat = nat;
        self
    }
    /// A gateway endpoint for `service` (`dynamodb`, `s3`) on the private route tables.
    pub fn gateway_endpoint(mut self, service: impl Into<String>) -> Self {
        self.gateway_endpoints.insert(service.into());
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }

    /// Adds the network under the scope `network`.
    pub fn add(&self, stack: &mut Stack) -> Result<NetworkHandles, Error> {
        self.add_as(stack, "network")
    }

    /// Adds the network under `scope`. Nothing is added when the checks fail: the error names every
    /// problem with its address and field.
    pub fn add_as(&self, stack: &mut Stack, scope: &str) -> Result<NetworkHandles, Error> {
        let (public, private) = self.subnet_cidrs(scope).map_err(Error::Validation)?;
        Ok(stack.scope(scope, |s| self.build(s, public, private)))
    }

    /// The public and private subnets' ranges, in zone order, or every problem found. Diagnostics name
    /// addresses relative to the stack's current scope (`network/public-1`).
    pub fn subnet_cidrs(&self, scope: &str) -> Result<(Vec<String>, Vec<String>), Vec<Diagnostic>> {
        let at = |name: &str| format!("{scope}/{name}");
        let diag =
            |address: String, field: Option<&str>, message: String| Diagnostic { address, field: field.map(str::to_string), message };
        let mut problems = Vec::new();
        let n = self.zones.len();
        if n == 0 {
            problems.push(diag(at("vpc"), None, "a network needs at least one zone: `.zones([\"us-east-1a\", ...])`".into()));
        }
        let mut seen = BTreeSet::new();
        for (i, z) in self.zones.iter().enumerate() {
            if !seen.insert(z) {
                problems.push(diag(at(&format!("public-{i}")), Some("availability_zone"), format!("zone `{z}` is listed twice")));
            }
        }
        let mut field_errors = Vec::new();
        let Some(vpc) = crate::ec2::check_vpc_cidr(&mut field_errors, &self.cidr_block) else {
            problems.extend(field_errors.into_iter().map(|e| diag(at("vpc"), Some(&e.field), e.message)));
            return Err(problems);
        };
        let given = |cidrs: &Option<Vec<String>>, kind: &str, problems: &mut Vec<Diagnostic>| {
            let c = cidrs.as_ref()?;
            if c.len() != n {
                problems.push(diag(
                    at(&format!("{kind}-0")),
                    Some("cidr_block"),
                    format!("{} {kind} subnet ranges for {n} zones", c.len()),
                ));
            }
            Some(c.clone())
        };
        let public_given = given(&self.public_subnet_cidrs, "public", &mut problems);
        let private_given = given(&self.private_subnet_cidrs, "private", &mut problems);
        let carved = if public_given.is_none() || private_given.is_none() {
            match carve(vpc, 2 * n, self.subnet_prefix) {
                Ok(c) => c,
                Err(message) => {
                    problems.push(diag(at("vpc"), Some("cidr_block"), message));
                    return Err(problems);
                }
            }
        } else {
            Vec::new()
        };
        let public = public_given.unwrap_or_else(|| carved.iter().take(n).map(ToString::to_string).collect());
        let private = private_given.unwrap_or_else(|| carved.iter().skip(n).take(n).map(ToString::to_string).collect());
        let named: Vec<(String, String)> = public
            .iter()
            .enumerate()
            .map(|(i, c)| (at(&format!("public-{i}")), c.clone()))
            .chain(private.iter().enumerate().map(|(i, c)| (at(&format!("private-{i}")), c.clone())))
            .collect();
        let refs: Vec<(&str, &str)> = named.iter().map(|(a, c)| (a.as_str(), c.as_str())).collect();
        problems.extend(check_subnets((&at("vpc"), &self.cidr_block), &refs));
        if problems.is_empty() {
            Ok((public, private))
        } else {
            Err(problems)
        }
    }

    fn build(&self, s: &mut Stack, public_cidrs: Vec<String>, private_cidrs: Vec<String>) -> NetworkHandles {
        let name = &self.name;
        let tagged = |mut tags: Tags, extra: &[(&str, String)]| {
            for (k, v) in &self.tags {
                tags.entry(k.clone()).or_insert_with(|| v.clone());
            }
            for (k, v) in extra {
                tags.insert((*k).to_string(), v.clone());
            }
            tags
        };
        let mut vpc = Vpc::new(&self.cidr_block).dns_support(true).dns_hostnames(true).name(name);
        vpc.tags = tagged(vpc.tags, &[]);
        let vpc = s.add("vpc", vpc);

        let mut igw = InternetGateway::new(vpc.id()).name(name);
        igw.tags = tagged(igw.tags, &[]);
        let igw = s.add("igw", igw);

        let subnet = |s: &mut Stack, kind: &str, i: usize, zone: &str, cidr: &str| {
            let mut sn = Subnet::new(vpc.id(), cidr).availability_zone(zone).name(format!("{name}-{kind}-{zone}"));
            if kind == "public" {
                sn = sn.map_public_ip_on_launch(true);
            }
            sn.tags = tagged(sn.tags, &[("Tier", kind.to_string())]);
            s.add(&format!("{kind}-{i}"), sn)
        };
        let public: Vec<Handle<Subnet>> =
            self.zones.iter().zip(&public_cidrs).enumerate().map(|(i, (z, c))| subnet(s, "public", i, z, c)).collect();
        let private: Vec<Handle<Subnet>> =
            self.zones.iter().zip(&private_cidrs).enumerate().map(|(i, (z, c))| subnet(s, "private", i, z, c)).collect();

        let mut public_rt = RouteTable::new(vpc.id())
            .route(Route::to_gateway("0.0.0.0/0", igw.id()))
            .subnets(public.iter().map(|p| p.id()))
            .name(format!("{name}-public"));
        public_rt.tags = tagged(public_rt.tags, &[("Tier", "public".into())]);
        let public_rt = s.add("public-rt", public_rt);

        // NAT gateways need the internet gateway attached (AWS refuses otherwise): an explicit edge.
        let nat_zones = match self.nat {
            Nat::None => 0,
            Nat::Single => 1.min(public.len()),
            Nat::PerZone => public.len(),
        };
        let mut nat_ips = Vec::new();
        let mut nats = Vec::new();
        for (i, zone) in self.zones.iter().enumerate().take(nat_zones) {
            let mut ip = ElasticIp::new().name(format!("{name}-nat-{zone}"));
            ip.tags = tagged(ip.tags, &[]);
            let ip = s.add_with(&format!("nat-ip-{i}"), ip, Options::new().depends_on(&igw));
            let mut nat = NatGateway::new(public[i].id(), ip.id()).name(format!("{name}-{zone}"));
            nat.tags = tagged(nat.tags, &[]);
            nats.push(s.add_with(&format!("nat-{i}"), nat, Options::new().depends_on(&igw)));
            nat_ips.push(ip);
        }

        let private_rts: Vec<Handle<RouteTable>> = self
            .zones
            .iter()
            .enumerate()
            .map(|(i, zone)| {
                let mut rt = RouteTable::new(vpc.id()).subnet(private[i].id()).name(format!("{name}-private-{zone}"));
                if let Some(nat) = nats.get(i).or(nats.first()) {
                    rt = rt.route(Route::to_nat("0.0.0.0/0", nat.id()));
                }
                rt.tags = tagged(rt.tags, &[("Tier", "private".into())]);
                s.add(&format!("private-rt-{i}"), rt)
            })
            .collect();

        let mut endpoints = BTreeMap::new();
        for service in &self.gateway_endpoints {
            let label: String =
                service.rsplit('.').next().unwrap_or(service).chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
            let mut ep =
                VpcEndpoint::gateway(vpc.id(), service).route_tables(private_rts.iter().map(|rt| rt.id())).name(format!("{name}-{label}"));
            ep.tags = tagged(ep.tags, &[]);
            endpoints.insert(service.clone(), s.add(&format!("endpoint-{label}"), ep));
        }

        NetworkHandles {
            vpc,
            internet_gateway: igw,
            public_subnets: public,
            private_subnets: private,
            public_route_table: public_rt,
            private_route_tables: private_rts,
            nat_ips,
            nat_gateways: nats,
            endpoints,
            public_subnet_cidrs: public_cidrs,
            private_subnet_cidrs: private_cidrs,
        }
    }
}

/// `count` consecutive subnets carved from `vpc`: of `prefix` if given, else the VPC's + 4, or smaller
/// when `count` needs more.
fn carve(vpc: Ipv4Net, count: usize, prefix: Option<u8>) -> Result<Vec<Ipv4Net>, String> {
    let needed_bits = (usize::BITS - count.saturating_sub(1).leading_zeros()) as u8;
    let prefix = prefix.unwrap_or_else(|| vpc.prefix_len() + needed_bits.max(4).min(28u8.saturating_sub(vpc.prefix_len())));
    if prefix < vpc.prefix_len() || prefix > 28 {
        return Err(format!("subnets of /{prefix} can't be carved from {vpc}: the prefix must be /{} to /28", vpc.prefix_len()));
    }
    let subnets: Vec<Ipv4Net> = vpc.subnets(prefix).map_err(|e| e.to_string())?.take(count).collect();
    if subnets.len() < count {
        return Err(format!(
            "{vpc} holds only {} subnets of /{prefix}; {count} are needed (a larger VPC, fewer zones or a longer prefix)",
            subnets.len()
        ));
    }
    Ok(subnets)
}

/// Checks subnets against their VPC where the ranges are literals: each inside the VPC's range, no two
/// overlapping. `vpc` and `subnets` are `(address, cidr)`; ranges holding references are skipped.
pub fn check_subnets(vpc: (&str, &str), subnets: &[(&str, &str)]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let diag = |address: &str, message: String| Diagnostic { address: address.to_string(), field: Some("cidr_block".into()), message };
    let mut ignored = Vec::new();
    let vpc_net = crate::validate::cidr(&mut ignored, "cidr_block", vpc.1);
    let mut parsed: Vec<(&str, Ipv4Net)> = Vec::new();
    for (address, cidr) in subnets {
        let mut errors = Vec::new();
        let Some(net) = crate::validate::cidr(&mut errors, "cidr_block", cidr) else {
            out.extend(errors.into_iter().map(|e| diag(address, e.message)));
            continue;
        };
        if let Some(v) = vpc_net {
            if !v.contains(&net) {
                out.push(diag(address, format!("{net} is not inside the VPC's range {v} (`{}`)", vpc.0)));
            }
        }
        for (other, other_net) in &parsed {
            if other_net.contains(&net.network()) || net.contains(&other_net.network()) {
                out.push(diag(address, format!("{net} overlaps {other_net} of `{other}`")));
            }
        }
        parsed.push((address, net));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(stack: &Stack) -> Vec<&str> {
        stack.resources().iter().map(|r| r.address.as_str()).collect()
    }

    #[test]
    fn carves_public_then_private_subnets_per_zone() {
        let net = Network::new("n", "10.0.0.0/16").zones(["us-east-1a", "us-east-1b"]);
        let (public, private) = net.subnet_cidrs("network").map_err(|e| format!("{e:?}")).unwrap_or_default();
        assert_eq!(public, ["10.0.0.0/20", "10.0.16.0/20"]);
        assert_eq!(private, ["10.0.32.0/20", "10.0.48.0/20"]);
        // Many zones in a small VPC: smaller subnets.
        let many = carve("10.0.0.0/24".parse().unwrap_or_default(), 12, None).unwrap_or_default();
        assert_eq!(many.len(), 12);
        assert_eq!(many[0].prefix_len(), 28);
        assert!(carve("10.0.0.0/26".parse().unwrap_or_default(), 8, None).is_err());
    }

    #[test]
    fn subnet_outside_the_vpc_or_overlapping_is_named() {
        let net = Network::new("n", "10.0.0.0/16")
            .zones(["us-east-1a", "us-east-1b"])
            .public_subnets(["10.0.0.0/24", "10.1.0.0/24"])
            .private_subnets(["10.0.0.128/25", "10.0.2.0/24"]);
        let problems = net.subnet_cidrs("network").err().unwrap_or_default();
        let found: Vec<(&str, &str)> = problems.iter().map(|d| (d.address.as_str(), d.field.as_deref().unwrap_or(""))).collect();
        assert_eq!(found, [("network/public-1", "cidr_block"), ("network/private-0", "cidr_block")], "{problems:?}");
        assert!(problems[0].message.contains("not inside the VPC's range 10.0.0.0/16"), "{}", problems[0].message);
        assert!(problems[1].message.contains("overlaps 10.0.0.0/24 of `network/public-0`"), "{}", problems[1].message);
    }

    #[test]
    fn nothing_is_added_when_checks_fail() {
        let mut stack = Stack::new("s");
        let err = Network::new("n", "10.0.0.0/8").zones(["us-east-1a"]).add(&mut stack).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("network/vpc: field `cidr_block`"), "{err}");
        assert!(stack.resources().is_empty());
        let err = Network::new("n", "10.0.0.0/16").add(&mut stack).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("at least one zone"), "{err}");
        let err = Network::new("n", "10.0.0.0/16")
            .zones(["us-east-1a", "us-east-1b"])
            .public_subnets(["10.0.0.0/24"])
            .add(&mut stack)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("1 public subnet ranges for 2 zones"), "{err}");
    }

    #[test]
    fn wires_the_pieces() -> Result<(), Error> {
        let mut stack = Stack::new("s");
        let net = Network::new("n", "10.0.0.0/16")
            .zones(["us-east-1a", "us-east-1b"])
            .nat(Nat::Single)
            .gateway_endpoint("dynamodb")
            .tag("team", "core")
            .add(&mut stack)?;
        assert_eq!(
            addresses(&stack),
            [
                "network/vpc",
                "network/igw",
                "network/public-0",
                "network/public-1",
                "network/private-0",
                "network/private-1",
                "network/public-rt",
                "network/nat-ip-0",
                "network/nat-0",
                "network/private-rt-0",
                "network/private-rt-1",
                "network/endpoint-dynamodb",
            ]
        );
        let inputs = |a: &str| stack.resources().iter().find(|r| r.address == a).map(|r| r.inputs.clone()).unwrap_or_default();
        assert_eq!(inputs("network/public-rt")["routes"][0]["gateway_id"], "\u{e000}${ref:network/igw.id}");
        assert_eq!(inputs("network/public-rt")["subnet_ids"].as_array().map(Vec::len), Some(2));
        // Both private tables go through the single NAT gateway.
        assert_eq!(inputs("network/private-rt-1")["routes"][0]["nat_gateway_id"], "\u{e000}${ref:network/nat-0.id}");
        assert_eq!(inputs("network/private-rt-1")["subnet_ids"][0], "\u{e000}${ref:network/private-1.id}");
        assert_eq!(inputs("network/endpoint-dynamodb")["route_table_ids"].as_array().map(Vec::len), Some(2));
        assert_eq!(inputs("network/public-0")["map_public_ip_on_launch"], true);
        assert_eq!(inputs("network/private-0")["tags"]["team"], "core");
        assert_eq!(
            net.private_subnet_ids().iter().map(Id::as_str).collect::<Vec<_>>(),
            ["\u{e000}${ref:network/private-0.id}", "\u{e000}${ref:network/private-1.id}"]
        );
        assert_eq!(net.nat_gateways.len(), 1);
        let declared = stack.resources().iter().find(|r| r.address == "network/nat-0").map(|r| r.lifecycle.depends_on.clone());
        assert_eq!(declared, Some(BTreeSet::from(["network/igw".to_string()])));
        Ok(())
    }

    #[test]
    fn per_zone_nat_routes_each_zone_to_its_own() -> Result<(), Error> {
        let mut stack = Stack::new("s");
        Network::new("n", "10.0.0.0/16").zones(["a1", "b1", "c1"]).nat(Nat::PerZone).add_as(&mut stack, "net")?;
        let inputs = |a: &str| stack.resources().iter().find(|r| r.address == a).map(|r| r.inputs.clone()).unwrap_or_default();
        for i in 0..3 {
            assert_eq!(inputs(&format!("net/private-rt-{i}"))["routes"][0]["nat_gateway_id"], format!("\u{e000}${{ref:net/nat-{i}.id}}"));
        }
        Ok(())
    }
}
