//! VPC security group and its rules. APIs: CreateSecurityGroup, DescribeSecurityGroups,
//! AuthorizeSecurityGroupIngress/Egress, RevokeSecurityGroupIngress/Egress,
//! UpdateSecurityGroupRuleDescriptionsIngress/Egress, CreateTags, DeleteTags, DeleteSecurityGroup.
//!
//! Rules compare as a set of single-source rules: a rule with three CIDR blocks is three rules, whatever
//! way the code or AWS groups them, so regrouping is never a change. A rule is keyed by protocol, ports and
//! source; a description change alone is an in-place description update.
//!
//! Egress: AWS gives every new group an allow-all egress rule (all traffic to `0.0.0.0/0`), and that is
//! what an unset `egress` means. When the code declares `egress` (even empty), the group's egress rules are
//! exactly those (the default one is revoked unless declared); removing `egress` from the code puts the
//! allow-all rule back and revokes the others.
//!
//! Defaults when unset: no ingress rules, the allow-all egress rule, no tags, no rule description; removed
//! rules are revoked. Left to AWS when unset: nothing (`description` is required by AWS; the builder gives
//! [`DEFAULT_DESCRIPTION`]).
//!
//! Not modelled: IPv6 ranges and prefix lists in rules (never read, never revoked).

use super::FRESH;
use super::{all_pages, check_id, fan_out, filter, on_fresh, sync_tags, tag_filters, tag_spec, tags_of, while_dependents_go};
use crate::error::{absent_if_not_found, sdk, Once};
use crate::error::{create_once, is_not_found, Made};
use crate::tags::{merge_defaults, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, UserIdGroupPair};
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub const DEFAULT_DESCRIPTION: &str = "Managed by ferroform";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// Unique in the VPC. Changing it forces a new group.
    pub name: String,
    /// Changing it forces a new group.
    pub description: String,
    /// Changing it forces a new group.
    pub vpc_id: String,
    #[serde(default)]
    pub ingress: Vec<Rule>,
    /// `None`: AWS's default, one allow-all rule ([`default_egress`]). `Some`: exactly these rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<Rule>>,
    #[serde(default)]
    pub tags: Tags,
}

/// One rule: protocol, port range, and the peers it allows (the sources of ingress, the destinations of
/// egress).
///
/// The field order is the order plans name a rule in (`ingress[tcp 443 443 0.0.0.0/0]`): keep it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rule {
    /// `tcp`, `udp`, `icmp`, a protocol number, or `-1` (all traffic; ports are then ignored).
    pub protocol: String,
    /// For ICMP: the type (-1 for all).
    pub from_port: i32,
    /// For ICMP: the code (-1 for all).
    pub to_port: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidr_blocks: Vec<String>,
    /// Another security group (`sg-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_security_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Rule {
    pub fn new(protocol: impl Into<String>, from_port: i32, to_port: i32) -> Self {
        Self { protocol: protocol.into(), from_port, to_port, cidr_blocks: vec![], source_security_group_id: None, description: None }
    }
    pub fn tcp(port: i32) -> Self {
        Self::new("tcp", port, port)
    }
    pub fn tcp_range(from: i32, to: i32) -> Self {
        Self::new("tcp", from, to)
    }
    pub fn udp(port: i32) -> Self {
        Self::new("udp", port, port)
    }
    /// Every protocol and port.
    pub fn all_traffic() -> Self {
        Self::new("-1", 0, 0)
    }
    /// Adds a CIDR block peer (`0.0.0.0/0`).
    pub fn cidr(mut self, cidr: impl Into<String>) -> Self {
        self.cidr_blocks.push(cidr.into());
        self
    }
    /// Sets the security group peer.
    pub fn group(mut self, id: ferroform_core::Id<SecurityGroup>) -> Self {
        self.source_security_group_id = Some(id.into());
        self
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// Canonical protocol: names for tcp/udp/icmp, `-1` for all.
    fn canonical_protocol(p: &str) -> String {
        match p.to_ascii_lowercase().as_str() {
            "6" | "tcp" => "tcp".into(),
            "17" | "udp" => "udp".into(),
            "1" | "icmp" => "icmp".into(),
            "all" | "-1" => "-1".into(),
            other => other.to_string(),
        }
    }

    /// The single-source rules this rule stands for, in canonical form.
    fn explode(&self) -> Vec<Rule> {
        let protocol = Self::canonical_protocol(&self.protocol);
        let (from_port, to_port) = if protocol == "-1" { (0, 0) } else { (self.from_port, self.to_port) };
        let description = self.description.clone().filter(|d| !d.is_empty());
        let one = |cidr: Option<&String>, group: Option<&String>| Rule {
            protocol: protocol.clone(),
            from_port,
            to_port,
            cidr_blocks: cidr.into_iter().cloned().collect(),
            source_security_group_id: group.cloned(),
            description: description.clone(),
        };
        let mut out: Vec<Rule> = self.cidr_blocks.iter().map(|c| one(Some(c), None)).collect();
        if let Some(g) = &self.source_security_group_id {
            out.push(one(None, Some(g)));
        }
        if out.is_empty() {
            out.push(one(None, None));
        }
        out
    }

    /// Protocol, ports and peer: what tells two rules apart (the description does not).
    fn key(&self) -> (String, i32, i32, Vec<String>, Option<String>) {
        (self.protocol.clone(), self.from_port, self.to_port, self.cidr_blocks.clone(), self.source_security_group_id.clone())
    }

    fn to_sdk(&self) -> IpPermission {
        let mut p = IpPermission::builder().ip_protocol(&self.protocol);
        // All-traffic rules carry no ports (AWS stores none, and matches revokes without them).
        if self.protocol != "-1" {
            p = p.from_port(self.from_port).to_port(self.to_port);
        }
        for c in &self.cidr_blocks {
            p = p.ip_ranges(IpRange::builder().cidr_ip(c).set_description(self.description.clone()).build());
        }
        if let Some(g) = &self.source_security_group_id {
            p = p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).set_description(self.description.clone()).build());
        }
        p.build()
    }

    fn validate(&self, field: &str, e: &mut Vec<FieldError>) {
        let protocol = Self::canonical_protocol(&self.protocol);
        let ports = (self.from_port, self.to_port);
        match protocol.as_str() {
            "-1" => {}
            "tcp" | "udp" => {
                if ports.0 < 0 || ports.1 > 65535 || ports.0 > ports.1 {
                    e.push(FieldError::new(field, format!("{protocol} ports {}..{} must be 0 to 65535, from <= to", ports.0, ports.1)));
                }
            }
            "icmp" => {
                if !(-1..=255).contains(&ports.0) || !(-1..=255).contains(&ports.1) {
                    e.push(FieldError::new(field, format!("ICMP type/code {}/{} must be -1 to 255", ports.0, ports.1)));
                }
            }
            other => match other.parse::<u8>() {
                Ok(_) => {}
                Err(_) => e.push(FieldError::new(field, format!("protocol `{other}` is not tcp, udp, icmp, -1 or a protocol number"))),
            },
        }
        if self.cidr_blocks.is_empty() && self.source_security_group_id.is_none() {
            e.push(FieldError::new(field, "a rule needs a peer: cidr_blocks or source_security_group_id"));
        }
        for c in &self.cidr_blocks {
            crate::validate::cidr(e, field, c);
        }
        if let Some(g) = &self.source_security_group_id {
            check_id(e, field, g, &["sg"]);
        }
        if let Some(d) = &self.description {
            check_text(e, field, d);
        }
    }
}

ferroform_core::outputs! {
    pub struct SecurityGroupOutputs => SecurityGroupRefs {
        pub id: String as ferroform_core::Id<SecurityGroup>,
        pub arn: String as ferroform_core::Arn<SecurityGroup>,
        pub name: String as ferroform_core::Name<SecurityGroup>,
        pub vpc_id: String as ferroform_core::Id<crate::ec2::Vpc>,
    }
}

impl SecurityGroup {
    pub fn new(name: impl Into<String>, vpc_id: ferroform_core::Id<super::Vpc>) -> Self {
        Self {
            name: name.into(),
            description: DEFAULT_DESCRIPTION.into(),
            vpc_id: vpc_id.into(),
            ingress: vec![],
            egress: None,
            tags: Tags::new(),
        }
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }
    pub fn ingress(mut self, rule: Rule) -> Self {
        self.ingress.push(rule);
        self
    }
    /// Declares an egress rule: from then on egress is managed exactly.
    pub fn egress(mut self, rule: Rule) -> Self {
        self.egress.get_or_insert_with(Vec::new).push(rule);
        self
    }
    /// Manages egress as "none at all" (revokes AWS's default allow-all).
    pub fn no_egress(mut self) -> Self {
        self.egress = Some(vec![]);
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

/// What AWS allows in names, descriptions and rule descriptions of VPC groups.
fn check_text(e: &mut Vec<FieldError>, field: &str, value: &str) {
    if is_unknown_str(value) {
        return;
    }
    if value.chars().count() > 255 {
        e.push(FieldError::new(field, format!("`{value}` is longer than 255 characters")));
    } else if let Some(bad) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(*c))) {
        e.push(FieldError::new(field, format!("`{value}` holds `{bad}`; allowed: letters, digits, spaces and ._-:/()#,@[]+=&;{{}}!$*")));
    }
}

/// The egress rule AWS gives every new group: all traffic to anywhere (IPv4; IPv6 is not modelled).
pub fn default_egress() -> Vec<Rule> {
    vec![Rule::all_traffic().cidr("0.0.0.0/0")]
}

fn canonical(rules: &[Rule]) -> Vec<Rule> {
    let mut out: Vec<Rule> = rules.iter().flat_map(Rule::explode).collect();
    out.sort();
    out.dedup();
    out
}

#[async_trait]
impl Resource for SecurityGroup {
    const TYPE: &'static str = "aws_security_group";
    const TERRAFORM_FOLDS: &'static [(&'static str, &'static str, &'static str)] = &[
        ("aws_security_group_rule", "security_group_id", "id"),
        ("aws_vpc_security_group_ingress_rule", "security_group_id", "id"),
        ("aws_vpc_security_group_egress_rule", "security_group_id", "id"),
    ];
    const REPLACE_FIELDS: &'static [&'static str] = &["name", "description", "vpc_id"];
    type Outputs = SecurityGroupOutputs;
    type Refs = SecurityGroupRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if !is_unknown_str(&self.name) {
            if self.name.is_empty() {
                e.push(FieldError::new("name", "the name is empty"));
            } else if self.name.to_ascii_lowercase().starts_with("sg-") {
                e.push(FieldError::new("name", format!("`{}`: AWS refuses names starting with `sg-`", self.name)));
            }
            check_text(&mut e, "name", &self.name);
        }
        if self.description.is_empty() {
            e.push(FieldError::new("description", "AWS needs a description"));
        }
        check_text(&mut e, "description", &self.description);
        check_id(&mut e, "vpc_id", &self.vpc_id, &["vpc"]);
        for r in &self.ingress {
            r.validate("ingress", &mut e);
        }
        for r in self.egress.iter().flatten() {
            r.validate("egress", &mut e);
        }
        e
    }

    fn normalize(&mut self) {
        self.ingress = canonical(&self.ingress);
        self.egress = Some(canonical(self.egress.as_deref().unwrap_or(&default_egress())));
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // The name is unique in the VPC: a replacement with the same name can't exist beside the old group.
    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, SecurityGroupOutputs), ProviderError> {
        let ec2 = aws.ec2();
        // A VPC just made may not be visible yet: its "not found" is retried.
        let made = create_once(
            FRESH,
            is_not_found,
            || {
                ec2.create_security_group()
                    .group_name(&desired.name)
                    .description(&desired.description)
                    .vpc_id(&desired.vpc_id)
                    .set_tag_specifications(tag_spec(ResourceType::SecurityGroup, &desired.tags).map(|t| vec![t]))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let arn = match &made {
            Made::Answered(out) => out.security_group_arn().map(str::to_string),
            Made::Found(_) => None,
        };
        let id = made.id("CreateSecurityGroup", |out| out.group_id())?;
        sync_rules(aws, &id, Direction::Ingress, &[], &canonical(&desired.ingress)).await?;
        // From what AWS put there.
        let egress = desired.egress.clone().unwrap_or_else(default_egress);
        sync_rules(aws, &id, Direction::Egress, &canonical(&default_egress()), &canonical(&egress)).await?;
        let arn = match arn {
            Some(a) => a,
            None => super::arn(aws, &aws.account_id().await?, "security-group", &id),
        };
        Ok((id.clone(), SecurityGroupOutputs { id, arn, name: desired.name.clone(), vpc_id: desired.vpc_id.clone() }))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        let found = describe(aws, &ids).await;
        fan_out(items, found, |id, _prior, g| Ok(Some(observe(aws, id, g))))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<SecurityGroupOutputs, ProviderError> {
        if changed.iter().any(|f| f == "ingress") {
            sync_rules(aws, id, Direction::Ingress, &canonical(&prior.ingress), &canonical(&desired.ingress)).await?;
        }
        if changed.iter().any(|f| f == "egress") {
            let live = prior.egress.as_deref().unwrap_or_default();
            let egress = desired.egress.clone().unwrap_or_else(default_egress);
            sync_rules(aws, id, Direction::Egress, &canonical(live), &canonical(&egress)).await?;
        }
        if changed.iter().any(|f| f == "tags") {
            sync_tags(aws, id, &prior.tags, &desired.tags).await?;
        }
        Self::read(aws, id, desired)
            .await?
            .map(|o| o.outputs)
            .ok_or_else(|| ProviderError::with_code("NotFound", format!("security group {id} vanished")))
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let ec2 = aws.ec2();
        let deleted = while_dependents_go(|| async { ec2.delete_security_group().group_id(id).send().await.map_err(sdk) }).await;
        absent_if_not_found(deleted).map(|_| ()).map_err(|e| {
            if e.code.as_deref() == Some("DependencyViolation") {
                e.hint(format!("network interfaces or other groups' rules still use {id}"))
            } else {
                e
            }
        })
    }

    async fn find_by_tags(aws: &Aws, _desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let out = aws.ec2().describe_security_groups().set_filters(Some(tag_filters(meta))).send().await.map_err(sdk)?;
        Ok(super::adopted(out.security_groups().iter().map(|g| (g.group_id(), g.tags())), meta))
    }
}

/// The single-source rules of AWS's permissions (IPv4 ranges and groups; nothing else is modelled).
fn rules_of(perms: &[IpPermission]) -> Vec<Rule> {
    let mut out = Vec::new();
    for p in perms {
        let protocol = Rule::canonical_protocol(p.ip_protocol().unwrap_or("-1"));
        let (from, to) = if protocol == "-1" { (0, 0) } else { (p.from_port().unwrap_or(0), p.to_port().unwrap_or(0)) };
        let base = Rule::new(protocol, from, to);
        for r in p.ip_ranges() {
            if let Some(c) = r.cidr_ip() {
                out.push(Rule { cidr_blocks: vec![c.to_string()], description: r.description().map(str::to_string), ..base.clone() });
            }
        }
        for g in p.user_id_group_pairs() {
            if let Some(id) = g.group_id() {
                out.push(Rule {
                    source_security_group_id: Some(id.to_string()),
                    description: g.description().map(str::to_string),
                    ..base.clone()
                });
            }
        }
    }
    canonical(&out)
}

fn observe(aws: &Aws, id: &str, g: &aws_sdk_ec2::types::SecurityGroup) -> Observed<SecurityGroup> {
    let name = g.group_name().unwrap_or_default().to_string();
    let vpc_id = g.vpc_id().unwrap_or_default().to_string();
    let arn = match g.security_group_arn() {
        Some(a) => a.to_string(),
        None => super::arn(aws, g.owner_id().unwrap_or_default(), "security-group", id),
    };
    Observed {
        inputs: SecurityGroup {
            name: name.clone(),
            description: g.description().unwrap_or_default().to_string(),
            vpc_id: vpc_id.clone(),
            ingress: rules_of(g.ip_permissions()),
            egress: Some(rules_of(g.ip_permissions_egress())),
            tags: tags_of(g.tags()),
        },
        outputs: SecurityGroupOutputs { id: id.to_string(), arn, name, vpc_id },
    }
}

async fn describe(aws: &Aws, ids: &[String]) -> Result<HashMap<String, aws_sdk_ec2::types::SecurityGroup>, ProviderError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ec2 = aws.ec2();
    let groups = all_pages(|token| {
        let req = ec2.describe_security_groups().filters(filter("group-id", ids.iter().cloned())).set_next_token(token);
        async move {
            let out = req.send().await.map_err(sdk)?;
            Ok((out.security_groups.unwrap_or_default(), out.next_token))
        }
    })
    .await?;
    Ok(groups.into_iter().filter_map(|g| Some((g.group_id.clone()?, g))).collect())
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Ingress,
    Egress,
}

/// At most three calls per direction: revoke what went, authorize what came, update changed descriptions.
/// EC2's answer to authorizing a rule the group already has.
const DUPLICATE: &str = "InvalidPermission.Duplicate";

async fn sync_rules(aws: &Aws, id: &str, dir: Direction, live: &[Rule], desired: &[Rule]) -> Result<(), ProviderError> {
    let ec2 = aws.ec2();
    let live: BTreeMap<_, &Rule> = live.iter().map(|r| (r.key(), r)).collect();
    let want: BTreeMap<_, &Rule> = desired.iter().map(|r| (r.key(), r)).collect();
    let revoke: Vec<IpPermission> = live.iter().filter(|(k, _)| !want.contains_key(*k)).map(|(_, r)| r.to_sdk()).collect();
    let authorize: Vec<IpPermission> = want.iter().filter(|(k, _)| !live.contains_key(*k)).map(|(_, r)| r.to_sdk()).collect();
    let redescribe: Vec<IpPermission> =
        want.iter().filter(|(k, r)| live.get(*k).is_some_and(|l| l.description != r.description)).map(|(_, r)| r.to_sdk()).collect();
    if !revoke.is_empty() {
        let r = match dir {
            Direction::Ingress => {
                ec2.revoke_security_group_ingress().group_id(id).set_ip_permissions(Some(revoke)).send().await.map(|_| ()).map_err(sdk)
            }
            Direction::Egress => {
                ec2.revoke_security_group_egress().group_id(id).set_ip_permissions(Some(revoke)).send().await.map(|_| ()).map_err(sdk)
            }
        };
        // Already gone is gone.
        absent_if_not_found(r)?;
    }
    let grant = |perms: Vec<IpPermission>| {
        let ec2 = ec2.clone();
        async move {
            on_fresh(|| async {
                match dir {
                    Direction::Ingress => ec2
                        .authorize_security_group_ingress()
                        .group_id(id)
                        .set_ip_permissions(Some(perms.clone()))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(sdk),
                    Direction::Egress => ec2
                        .authorize_security_group_egress()
                        .group_id(id)
                        .set_ip_permissions(Some(perms.clone()))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(sdk),
                }
            })
            .await
        }
    };
    if !authorize.is_empty() {
        match grant(authorize.clone()).await {
            Ok(()) => {}
            // Some are there already (an attempt whose answer was lost, re-sent by the SDK): one by one,
            // each duplicate counting as done.
            Err(e) if e.code.as_deref() == Some(DUPLICATE) => {
                for perm in authorize {
                    match grant(vec![perm]).await {
                        Err(e) if e.code.as_deref() != Some(DUPLICATE) => return Err(e),
                        _ => {}
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    if !redescribe.is_empty() {
        match dir {
            Direction::Ingress => ec2
                .update_security_group_rule_descriptions_ingress()
                .group_id(id)
                .set_ip_permissions(Some(redescribe))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk)?,
            Direction::Egress => ec2
                .update_security_group_rule_descriptions_egress()
                .group_id(id)
                .set_ip_permissions(Some(redescribe))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_compare_as_sets_of_single_source_rules() {
        let mut a = SecurityGroup::new("web", ferroform_core::Id::literal("vpc-1"))
            .ingress(Rule::tcp(443).cidr("10.0.0.0/8").cidr("192.168.0.0/16"))
            .ingress(Rule::new("6", 80, 80).cidr("0.0.0.0/0"));
        let mut b = SecurityGroup::new("web", ferroform_core::Id::literal("vpc-1"))
            .ingress(Rule::tcp(80).cidr("0.0.0.0/0"))
            .ingress(Rule::tcp(443).cidr("192.168.0.0/16"))
            .ingress(Rule::tcp(443).cidr("10.0.0.0/8"));
        a.normalize();
        b.normalize();
        assert_eq!(a, b);
        assert_eq!(a.ingress.len(), 3);
        assert_eq!(a.egress, Some(default_egress()), "unset egress is AWS's allow-all");
        let mut all = SecurityGroup::new("x", ferroform_core::Id::literal("vpc-1")).egress(Rule::new("ALL", 5, 9).cidr("0.0.0.0/0"));
        all.normalize();
        assert_eq!(all.egress, Some(vec![Rule::all_traffic().cidr("0.0.0.0/0")]));
    }

    #[test]
    fn reads_aws_permissions_into_the_same_shape() {
        let perm = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
            .ip_ranges(IpRange::builder().cidr_ip("192.168.0.0/16").description("office").build())
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-1").user_id("123").build())
            .build();
        let all = IpPermission::builder().ip_protocol("-1").ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build()).build();
        let rules = rules_of(&[perm, all]);
        assert_eq!(
            rules,
            canonical(&[
                Rule::tcp(443).cidr("10.0.0.0/8").group(ferroform_core::Id::literal("sg-1")),
                Rule::tcp(443).cidr("192.168.0.0/16").description("office"),
                Rule::all_traffic().cidr("0.0.0.0/0"),
            ])
        );
    }

    #[test]
    fn validation_names_the_field() {
        let fields = |g: SecurityGroup| g.validate().into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert!(
            fields(SecurityGroup::new("web", ferroform_core::Id::literal("vpc-1")).ingress(Rule::tcp(443).cidr("0.0.0.0/0"))).is_empty()
        );
        assert_eq!(fields(SecurityGroup::new("sg-web", ferroform_core::Id::literal("vpc-1"))), ["name"]);
        assert_eq!(fields(SecurityGroup::new("web", ferroform_core::Id::literal("vpc-1")).description("")), ["description"]);
        assert_eq!(fields(SecurityGroup::new("web", ferroform_core::Id::literal("vpc-1")).ingress(Rule::tcp(443))), ["ingress"]);
        assert_eq!(
            fields(SecurityGroup::new("web", ferroform_core::Id::literal("vpc-1")).ingress(Rule::tcp_range(90, 80).cidr("0.0.0.0/0"))),
            ["ingress"]
        );
        assert_eq!(
            fields(SecurityGroup::new("web", ferroform_core::Id::literal("vpc-1")).egress(Rule::new("gre", 0, 0).cidr("0.0.0.0/0"))),
            ["egress"]
        );
        assert_eq!(
            fields(
                SecurityGroup::new("web", ferroform_core::Id::literal("vpc-1"))
                    .egress(Rule::tcp(5432).group(ferroform_core::Id::literal("vpc-9")))
            ),
            ["egress"]
        );
        assert_eq!(
            fields(SecurityGroup::new("web", ferroform_core::Id::literal("vpc-1")).ingress(Rule::tcp(1).cidr("1.2.3.4/40"))),
            ["ingress"]
        );
        assert!(fields(SecurityGroup::new("web", ferroform_core::Id::literal("vpc-1")).ingress(Rule::new("47", 0, 0).cidr("0.0.0.0/0")))
            .is_empty());
    }

    #[test]
    fn plans_name_a_rule_by_protocol_ports_and_peer() {
        // The engine labels an element of a list of objects by its values in field order.
        let v = serde_json::to_value(Rule::tcp(443).cidr("0.0.0.0/0").description("https")).unwrap_or_default();
        let keys: Vec<&str> = v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        assert_eq!(keys, ["protocol", "from_port", "to_port", "cidr_blocks", "description"]);
    }

    #[test]
    fn all_traffic_rules_carry_no_ports() {
        let p = Rule::all_traffic().cidr("0.0.0.0/0").to_sdk();
        assert_eq!((p.from_port(), p.to_port()), (None, None));
        let p = Rule::tcp(22).cidr("0.0.0.0/0").to_sdk();
        assert_eq!((p.from_port(), p.to_port()), (Some(22), Some(22)));
    }
}
