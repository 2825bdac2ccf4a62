//! ECS service on Fargate. APIs: CreateService, DescribeServices (with TAGS: one call reads up to 10
//! services of one cluster), UpdateService, TagResource, UntagResource, DeleteService.
//!
//! Delete scales the service to 0, deletes it with `force`, and waits until it is INACTIVE (a draining
//! service still holds its name and keeps its cluster from being deleted).
//!
//! Defaults when unset: `desired_count` 1 (the builder's), no public IP, `platform_version` `LATEST`
//! (what DescribeServices reports for a service that named none), no tags; removing one from the code
//! puts that value back. Left to AWS when unset: nothing.

use super::cluster::ours;
use super::{check_name, check_tags, ecs_tags, from_ecs_tags, is_arn, last_segment, update_tags};
use crate::error::{create_once, sdk, wait_for, Made, Once};
use crate::tags::{merge_defaults, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ecs::types::{AssignPublicIp, AwsVpcConfiguration, LaunchType, NetworkConfiguration, ServiceField};
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The task's network placement (`awsvpc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Compared as a set.
    pub subnets: Vec<String>,
    /// Compared as a set.
    pub security_groups: Vec<String>,
    /// A public IP for each task (needed in a public subnet without a NAT to pull images).
    #[serde(default)]
    pub assign_public_ip: bool,
}

impl Network {
    pub fn new(
        subnets: impl IntoIterator<Item = ferroform_core::Id<crate::ec2::Subnet>>,
        security_groups: impl IntoIterator<Item = ferroform_core::Id<crate::ec2::SecurityGroup>>,
    ) -> Self {
        Self {
            subnets: subnets.into_iter().map(Into::into).collect(),
            security_groups: security_groups.into_iter().map(Into::into).collect(),
            assign_public_ip: false,
        }
    }
    pub fn public_ip(mut self, yes: bool) -> Self {
        self.assign_public_ip = yes;
        self
    }

    fn to_sdk(&self) -> Result<NetworkConfiguration, ProviderError> {
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(self.subnets.clone()))
            .set_security_groups(Some(self.security_groups.clone()))
            .assign_public_ip(if self.assign_public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
            .build()
            .map_err(|e| ProviderError::new(e.to_string()))?;
        Ok(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Changing it forces a new service.
    pub name: String,
    /// The cluster's name or ARN (`cluster.arn()`). Changing it forces a new service.
    pub cluster: String,
    /// The task definition's ARN (`task_definition.arn()`), or `FAMILY:REVISION`.
    pub task_definition: String,
    pub desired_count: u32,
    pub network: Network,
    /// Fargate platform version; `None`: `LATEST`, as AWS takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct ServiceOutputs => ServiceRefs {
        pub arn: String as ferroform_core::Arn<Service>,
        pub name: String as ferroform_core::Name<Service>,
        pub cluster_arn: String as ferroform_core::Arn<crate::ecs::Cluster>,
    }
}

impl Service {
    /// A Fargate service running `desired_count` copies of the task definition in `network`.
    pub fn new(
        name: impl Into<String>,
        cluster: ferroform_core::Arn<super::Cluster>,
        task_definition: ferroform_core::Arn<super::TaskDefinition>,
        network: Network,
    ) -> Self {
        Self {
            name: name.into(),
            cluster: cluster.into(),
            task_definition: task_definition.into(),
            desired_count: 1,
            network,
            platform_version: None,
            tags: Tags::new(),
        }
    }
    pub fn desired_count(mut self, n: u32) -> Self {
        self.desired_count = n;
        self
    }
    pub fn platform_version(mut self, v: impl Into<String>) -> Self {
        self.platform_version = Some(v.into());
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

/// The platform version AWS uses, and reports, when a service names none.
const LATEST: &str = "LATEST";

/// How long a delete waits for the service to drain.
const DRAIN: Duration = Duration::from_secs(1200);
/// How long create retries errors that a just-made cluster or role causes.
const PROPAGATION: Duration = Duration::from_secs(120);

#[async_trait]
impl Resource for Service {
    const TYPE: &'static str = "aws_ecs_service";
    const REPLACE_FIELDS: &'static [&'static str] = &["name", "cluster"];
    type Outputs = ServiceOutputs;
    type Refs = ServiceRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check_name(&mut e, "name", &self.name);
        if !is_arn(&self.cluster) {
            check_name(&mut e, "cluster", &self.cluster);
        }
        if self.task_definition.is_empty() {
            e.push(FieldError::new("task_definition", "the task definition is empty"));
        }
        if self.network.subnets.is_empty() {
            e.push(FieldError::new("network.subnets", "a Fargate service needs at least one subnet"));
        }
        if self.network.subnets.len() > 16 {
            e.push(FieldError::new("network.subnets", "at most 16 subnets"));
        }
        // The emulator insists on them, and a task without one gets the VPC's default group.
        if self.network.security_groups.is_empty() {
            e.push(FieldError::new("network.security_groups", "name at least one security group (the VPC default is never implied)"));
        }
        if self.network.security_groups.len() > 5 {
            e.push(FieldError::new("network.security_groups", "at most 5 security groups"));
        }
        for s in self.network.subnets.iter().filter(|s| !is_unknown_str(s)) {
            if !s.starts_with("subnet-") {
                e.push(FieldError::new("network.subnets", format!("`{s}` is not a subnet id (subnet-...)")));
            }
        }
        for g in self.network.security_groups.iter().filter(|g| !is_unknown_str(g)) {
            if !g.starts_with("sg-") {
                e.push(FieldError::new("network.security_groups", format!("`{g}` is not a security group id (sg-...)")));
            }
        }
        check_tags(&mut e, &self.tags);
        e
    }

    /// Subnets and security groups are sets; no platform version is `LATEST`.
    fn normalize(&mut self) {
        self.platform_version.get_or_insert_with(|| LATEST.to_string());
        self.network.subnets.sort();
        self.network.subnets.dedup();
        self.network.security_groups.sort();
        self.network.security_groups.dedup();
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // The name is unique within the cluster.
    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, ServiceOutputs), ProviderError> {
        let network = desired.network.to_sdk()?;
        let token = client_token(&meta.idempotency_token);
        let ecs = aws.ecs();
        // The client token makes a re-sent create return the first service; an emulator that ignores it
        // still gets one service, since a lost answer is looked up before the create is sent again.
        let made = create_once(
            PROPAGATION,
            is_propagation_error,
            || {
                ecs.create_service()
                    .cluster(&desired.cluster)
                    .service_name(&desired.name)
                    .task_definition(&desired.task_definition)
                    .desired_count(count(desired.desired_count))
                    .launch_type(LaunchType::Fargate)
                    .network_configuration(network.clone())
                    .set_platform_version(desired.platform_version.clone())
                    .set_tags(ecs_tags(&desired.tags))
                    .client_token(&token)
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let outputs = match made {
            Made::Answered(out) => outputs_of(out.service().ok_or_else(|| ProviderError::new("CreateService returned no service"))?)?,
            Made::Found(arn) => Self::read(aws, &arn, desired)
                .await?
                .map(|o| o.outputs)
                .ok_or_else(|| ProviderError::with_code("NotFound", format!("service {arn} vanished")))?,
        };
        Ok((outputs.arn.clone(), outputs))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let mut found = describe(aws, &prior.cluster, &[(id.to_string(), prior.clone())]).await?;
        Ok(found.pop().flatten())
    }

    /// One DescribeServices per cluster and 10 services.
    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let mut by_cluster: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (_, prior)) in items.iter().enumerate() {
            by_cluster.entry(prior.cluster.as_str()).or_default().push(i);
        }
        let mut results: Vec<Option<Result<Option<Observed<Self>>, ProviderError>>> = items.iter().map(|_| None).collect();
        let calls = by_cluster
            .into_iter()
            .flat_map(|(cluster, idx)| idx.chunks(10).map(|chunk| (cluster.to_string(), chunk.to_vec())).collect::<Vec<_>>());
        let calls: Vec<_> = calls
            .map(|(cluster, chunk)| async move {
                let asked: Vec<(String, Self)> = chunk.iter().map(|i| items[*i].clone()).collect();
                (chunk, describe(aws, &cluster, &asked).await)
            })
            .collect();
        for (chunk, r) in ferroform_core::join_bounded(calls).await {
            match r {
                Ok(found) => {
                    for (i, f) in chunk.into_iter().zip(found) {
                        results[i] = Some(Ok(f));
                    }
                }
                Err(e) => {
                    for i in chunk {
                        results[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(ProviderError::new("service not read")))).collect()
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<ServiceOutputs, ProviderError> {
        let has = |f: &str| changed.iter().any(|c| c == f);
        if has("task_definition") || has("desired_count") || has("network") || has("platform_version") {
            let mut call = aws.ecs().update_service().cluster(&prior.cluster).service(id);
            if has("task_definition") {
                call = call.task_definition(&desired.task_definition);
            }
            if has("desired_count") {
                call = call.desired_count(count(desired.desired_count));
            }
            if has("network") {
                call = call.network_configuration(desired.network.to_sdk()?);
            }
            if has("platform_version") {
                call = call.set_platform_version(desired.platform_version.clone());
            }
            call.send().await.map_err(sdk)?;
        }
        if has("tags") {
            update_tags(aws, id, &prior.tags, &desired.tags).await?;
        }
        let found = describe(aws, &prior.cluster, &[(id.to_string(), desired.clone())]).await?;
        match found.into_iter().flatten().next() {
            Some(o) => Ok(o.outputs),
            None => Err(ProviderError::with_code("ServiceNotFoundException", format!("service {id} vanished during its update"))),
        }
    }

    async fn delete(aws: &Aws, id: &str, prior: &Self) -> Result<(), ProviderError> {
        let ecs = aws.ecs();
        let Some(live) = describe(aws, &prior.cluster, &[(id.to_string(), prior.clone())]).await?.pop().flatten() else {
            return Ok(());
        };
        if live.inputs.desired_count > 0 {
            let r = ecs.update_service().cluster(&prior.cluster).service(id).desired_count(0).send().await.map_err(sdk);
            if let Err(e) = r {
                if !is_gone(&e) {
                    return Err(e);
                }
            }
        }
        if let Err(e) = ecs.delete_service().cluster(&prior.cluster).service(id).force(true).send().await.map_err(sdk) {
            if !is_gone(&e) {
                return Err(e);
            }
        }
        wait_for("the service to become INACTIVE", DRAIN, || async {
            let found = describe(aws, &prior.cluster, &[(id.to_string(), prior.clone())]).await?;
            Ok(found.first().map(Option::is_none).unwrap_or(true).then_some(()))
        })
        .await
    }

    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let found = describe(aws, &desired.cluster, &[(desired.name.clone(), desired.clone())]).await?;
        Ok(found.into_iter().flatten().find(|o| ours(&o.inputs.tags, meta)).map(|o| o.outputs.arn))
    }
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// CreateService takes a client token of up to 36 ASCII characters: a digest of the engine's token.
fn client_token(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))[..32].to_string()
}

/// A just-made cluster or the ECS service-linked role not visible yet.
fn is_propagation_error(e: &ProviderError) -> bool {
    match e.code.as_deref() {
        Some("ClusterNotFoundException") => true,
        Some("InvalidParameterException") => {
            e.message.contains("Unable to assume the service linked role")
                || e.message.contains("verify that the ECS service role being passed has the proper permissions")
        }
        _ => false,
    }
}

fn is_gone(e: &ProviderError) -> bool {
    crate::error::is_not_found(e) || matches!(e.code.as_deref(), Some("ServiceNotActiveException" | "ClusterNotFoundException"))
}

fn outputs_of(s: &aws_sdk_ecs::types::Service) -> Result<ServiceOutputs, ProviderError> {
    let arn = s.service_arn().ok_or_else(|| ProviderError::new("the service has no ARN"))?;
    Ok(ServiceOutputs {
        arn: arn.to_string(),
        name: s.service_name().unwrap_or_else(|| last_segment(arn)).to_string(),
        cluster_arn: s.cluster_arn().unwrap_or_default().to_string(),
    })
}

/// Reads services of one cluster by ARN or name, in the order asked; `None` for missing, draining or
/// INACTIVE ones (and for all of them when the cluster is gone). Each live value takes the shape of its
/// prior inputs: the cluster and task definition as the code wrote them (name or ARN).
async fn describe(aws: &Aws, cluster: &str, asked: &[(String, Service)]) -> Result<Vec<Option<Observed<Service>>>, ProviderError> {
    let ids: Vec<String> = asked.iter().map(|(id, _)| id.clone()).collect();
    let out = match aws.ecs().describe_services().cluster(cluster).set_services(Some(ids)).include(ServiceField::Tags).send().await {
        Ok(out) => out,
        Err(e) => {
            let e = sdk(e);
            return if is_gone(&e) { Ok(asked.iter().map(|_| None).collect()) } else { Err(e) };
        }
    };
    asked
        .iter()
        .map(|(id, prior)| {
            let Some(s) = out.services().iter().find(|s| s.service_arn() == Some(id.as_str()) || s.service_name() == Some(id.as_str()))
            else {
                return Ok(None);
            };
            if matches!(s.status(), Some("INACTIVE" | "DRAINING")) {
                return Ok(None);
            }
            let outputs = outputs_of(s)?;
            let vpc = s.network_configuration().and_then(|n| n.awsvpc_configuration());
            let live_cluster =
                if is_arn(&prior.cluster) { outputs.cluster_arn.clone() } else { last_segment(&outputs.cluster_arn).to_string() };
            let inputs = Service {
                name: outputs.name.clone(),
                cluster: live_cluster,
                task_definition: shaped_task_definition(s.task_definition().unwrap_or_default(), &prior.task_definition),
                desired_count: u32::try_from(s.desired_count()).unwrap_or(0),
                network: Network {
                    subnets: vpc.map(|v| v.subnets().to_vec()).unwrap_or_default(),
                    security_groups: vpc.map(|v| v.security_groups().to_vec()).unwrap_or_default(),
                    assign_public_ip: vpc.and_then(|v| v.assign_public_ip()) == Some(&AssignPublicIp::Enabled),
                },
                platform_version: s.platform_version().map(str::to_string),
                tags: from_ecs_tags(s.tags()),
            };
            Ok(Some(Observed { inputs, outputs }))
        })
        .collect()
}

/// The live task definition ARN in the form the code used: the ARN, `FAMILY:REVISION`, or `FAMILY` (when
/// the code asked for the family's latest revision and the live one is of that family).
fn shaped_task_definition(live: &str, prior: &str) -> String {
    if is_arn(prior) || !is_arn(live) {
        return live.to_string();
    }
    let short = last_segment(live);
    if short == prior {
        return prior.to_string();
    }
    if !prior.contains(':') && short.split(':').next() == Some(prior) {
        return prior.to_string();
    }
    short.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(subnets: &[&str], groups: &[&str]) -> Network {
        Network::new(subnets.iter().map(|s| ferroform_core::Id::literal(*s)), groups.iter().map(|g| ferroform_core::Id::literal(*g)))
    }

    fn svc() -> Service {
        Service::new(
            "web",
            ferroform_core::Arn::literal("jobs"),
            ferroform_core::Arn::literal("arn:aws:ecs:us-east-1:1:task-definition/web:3"),
            net(&["subnet-1"], &["sg-1"]),
        )
    }

    #[test]
    fn validation() {
        assert!(svc().validate().is_empty());
        assert_eq!(Service { name: "bad name".into(), ..svc() }.validate()[0].field, "name");
        let no_sg = Service { network: net(&["subnet-1"], &[]), ..svc() };
        assert_eq!(no_sg.validate()[0].field, "network.security_groups");
        let bad_subnet = Service { network: net(&["vpc-1"], &["sg-1"]), ..svc() };
        assert_eq!(bad_subnet.validate()[0].field, "network.subnets");
        let tokens = Service { network: net(&["\u{e000}${ref:net/a.id}"], &["\u{e000}${ref:sg.id}"]), ..svc() };
        assert!(tokens.validate().is_empty());
        assert!(Service { cluster: "arn:aws:ecs:us-east-1:1:cluster/jobs".into(), ..svc() }.validate().is_empty());
    }

    #[test]
    fn sets_are_sorted() {
        let mut s = Service { network: net(&["subnet-b", "subnet-a", "subnet-b"], &["sg-2", "sg-1"]), ..svc() };
        s.normalize();
        assert_eq!(s.network.subnets, ["subnet-a", "subnet-b"]);
        assert_eq!(s.network.security_groups, ["sg-1", "sg-2"]);
    }

    #[test]
    fn task_definition_keeps_the_code_shape() {
        let live = "arn:aws:ecs:us-east-1:1:task-definition/web:3";
        assert_eq!(shaped_task_definition(live, live), live);
        assert_eq!(shaped_task_definition(live, "web:3"), "web:3");
        assert_eq!(shaped_task_definition(live, "web"), "web");
        assert_eq!(shaped_task_definition(live, "web:2"), "web:3");
        assert_eq!(shaped_task_definition(live, "other"), "web:3");
    }

    #[test]
    fn client_tokens_fit() {
        let t = client_token("0b7c5a8e-9d47-4a3c-bb1f-1a2b3c4d5e6f-create-some/long/address");
        assert_eq!(t.len(), 32);
        assert_eq!(t, client_token("0b7c5a8e-9d47-4a3c-bb1f-1a2b3c4d5e6f-create-some/long/address"));
    }
}
