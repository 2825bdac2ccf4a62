//! ECS task definition for Fargate (`awsvpc` networking). APIs: RegisterTaskDefinition,
//! DescribeTaskDefinition (with TAGS: one call per read), ListTaskDefinitions (adoption only),
//! TagResource, UntagResource, DeregisterTaskDefinition.
//!
//! A revision is immutable: every field but `tags` forces a replacement, made create-before-destroy. The
//! new revision is registered, whatever points at the old ARN (a service) is updated to the new one, and
//! only then is the old revision deregistered. An in-place update that registered a new revision would
//! change the resource's id behind the engine's back and hide from the plan that dependents get a new ARN;
//! as a replacement the plan says exactly what happens: `+/-` with the fields that force it, and
//! `task_definition = (known after apply)` on the service that follows.
//!
//! Comparison is of the whole definition in a canonical form with AWS's defaults filled in (see
//! [`TaskDefinition::normalize`]): what the code leaves out is what AWS fills in, so an unchanged definition
//! never shows a diff, and a field removed from the code (a task role, say) is a change.
//!
//! Defaults when unset: architecture X86_64, no execution or task role, no tags; per container: essential,
//! no entry point, command, environment, secrets or ports, host port = container port, protocol tcp, no
//! logs (the log region: the deploy region), cpu 0, no memory limit or reservation. Removing any of them
//! registers a revision with AWS's default. Left to AWS when unset: nothing.
//!
//! Environment values set with [`Container::secret_env`] show as `(sensitive)` in plans
//! (`containers["worker"].environment.DB_PASSWORD`). They are still plain text in the task definition,
//! readable by anyone who may describe it: [`Container::secret`] (Secrets Manager, SSM) keeps them out.

use super::cluster::ours;
use super::{check_name, check_tags, ecs_tags, from_ecs_tags, update_tags};
use crate::error::{create_once, sdk, Made, Once, CREATE_ONCE};
use crate::tags::{merge_defaults, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, CpuArchitecture, KeyValuePair, LogConfiguration, LogDriver, NetworkMode, OsFamily, RuntimePlatform,
    Secret, SortOrder, TaskDefinitionField, TaskDefinitionStatus, TransportProtocol,
};
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Task sizes Fargate accepts: CPU units and, for each, the memory (MiB) it may be paired with.
pub const FARGATE_SIZES: &[(u32, &str)] = &[
    (256, "512, 1024 or 2048"),
    (512, "1024 to 4096 in 1024 steps"),
    (1024, "2048 to 8192 in 1024 steps"),
    (2048, "4096 to 16384 in 1024 steps"),
    (4096, "8192 to 30720 in 1024 steps"),
    (8192, "16384 to 61440 in 4096 steps"),
    (16384, "32768 to 122880 in 8192 steps"),
];

/// Checks a task's `cpu`/`memory` pair against what Fargate accepts.
pub fn check_fargate_size(cpu: u32, memory: u32) -> Result<(), String> {
    let ok = match cpu {
        256 => matches!(memory, 512 | 1024 | 2048),
        512 => stepped(memory, 1024, 4096, 1024),
        1024 => stepped(memory, 2048, 8192, 1024),
        2048 => stepped(memory, 4096, 16384, 1024),
        4096 => stepped(memory, 8192, 30720, 1024),
        8192 => stepped(memory, 16384, 61440, 4096),
        16384 => stepped(memory, 32768, 122880, 8192),
        _ => {
            let cpus: Vec<u32> = FARGATE_SIZES.iter().map(|(c, _)| *c).collect();
            return Err(format!("cpu {cpu} is not a Fargate size; pick one of {cpus:?}"));
        }
    };
    if ok {
        return Ok(());
    }
    let allowed = FARGATE_SIZES.iter().find(|(c, _)| *c == cpu).map(|(_, m)| *m).unwrap_or_default();
    Err(format!("memory {memory} MiB does not go with cpu {cpu} on Fargate; it takes {allowed}"))
}

fn stepped(memory: u32, min: u32, max: u32, step: u32) -> bool {
    (min..=max).contains(&memory) && (memory - min).is_multiple_of(step)
}

/// The task's CPU architecture (the runtime platform; the OS is always Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    #[serde(rename = "X86_64")]
    X86_64,
    #[serde(rename = "ARM64")]
    Arm64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortMapping {
    pub container_port: u16,
    /// With `awsvpc` it must equal `container_port`; `None` means that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    #[serde(default = "tcp")]
    pub protocol: Protocol,
}

fn tcp() -> Protocol {
    Protocol::Tcp
}

/// The `awslogs` log driver: the container's output goes to a CloudWatch log group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AwsLogs {
    pub group: String,
    /// `None`: the region the stack deploys to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Required on Fargate: streams are named `PREFIX/CONTAINER/TASK_ID`.
    pub stream_prefix: String,
}

impl AwsLogs {
    pub fn new(group: ferroform_core::Name<crate::logs::LogGroup>, stream_prefix: impl Into<String>) -> Self {
        Self { group: group.into(), region: None, stream_prefix: stream_prefix.into() }
    }
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub name: String,
    pub image: String,
    /// If an essential container stops, the task stops (AWS's default: true).
    #[serde(default = "yes")]
    pub essential: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Variables by name (AWS keeps a list; a map is its canonical form).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// Variables filled from Secrets Manager or SSM Parameter Store: name -> ARN.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<AwsLogs>,
    /// CPU units reserved for this container (0: none, AWS's default).
    #[serde(default)]
    pub cpu: u32,
    /// Hard memory limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    /// Soft memory limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u32>,
    /// Names of `environment` variables whose values plans hide. Not an input: the engine takes them as
    /// sensitive paths when the task definition is added.
    #[serde(skip)]
    pub secret_keys: BTreeSet<String>,
}

fn yes() -> bool {
    true
}

impl Container {
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            essential: true,
            entry_point: Vec::new(),
            command: Vec::new(),
            environment: BTreeMap::new(),
            secrets: BTreeMap::new(),
            port_mappings: Vec::new(),
            logs: None,
            cpu: 0,
            memory: None,
            memory_reservation: None,
            secret_keys: BTreeSet::new(),
        }
    }
    pub fn essential(mut self, yes: bool) -> Self {
        self.essential = yes;
        self
    }
    pub fn entry_point<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.entry_point = args.into_iter().map(Into::into).collect();
        self
    }
    pub fn command<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.command = args.into_iter().map(Into::into).collect();
        self
    }
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.environment.insert(name.into(), value.into());
        self
    }
    /// A variable whose value plans show as `(sensitive)`. It is still in the task definition as plain
    /// text; [`Container::secret`] keeps it in Secrets Manager or SSM instead.
    pub fn secret_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.secret_keys.insert(name.clone());
        self.environment.insert(name, value.into());
        self
    }
    /// A variable read from a Secrets Manager secret or SSM parameter (`value_from` is its ARN).
    pub fn secret(mut self, name: impl Into<String>, value_from: impl ferroform_core::ArnText) -> Self {
        self.secrets.insert(name.into(), value_from.arn_text());
        self
    }
    /// A TCP port the container listens on.
    pub fn port(mut self, port: u16) -> Self {
        self.port_mappings.push(PortMapping { container_port: port, host_port: None, protocol: Protocol::Tcp });
        self
    }
    pub fn port_mapping(mut self, mapping: PortMapping) -> Self {
        self.port_mappings.push(mapping);
        self
    }
    pub fn logs(mut self, logs: AwsLogs) -> Self {
        self.logs = Some(logs);
        self
    }
    pub fn cpu(mut self, units: u32) -> Self {
        self.cpu = units;
        self
    }
    pub fn memory(mut self, mib: u32) -> Self {
        self.memory = Some(mib);
        self
    }
    pub fn memory_reservation(mut self, mib: u32) -> Self {
        self.memory_reservation = Some(mib);
        self
    }

    fn normalize(&mut self) {
        for p in &mut self.port_mappings {
            p.host_port.get_or_insert(p.container_port);
        }
        self.port_mappings.sort_by_key(|p| (p.container_port, p.protocol, p.host_port));
        self.port_mappings.dedup();
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinition {
    pub family: String,
    /// CPU units: 256 (.25 vCPU) to 16384 (16 vCPU); see [`FARGATE_SIZES`].
    pub cpu: u32,
    /// MiB, paired with `cpu` as Fargate allows.
    pub memory: u32,
    /// `None`: X86_64, Fargate's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Architecture>,
    /// The role ECS uses to pull images and write logs. Empty in the canonical form when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// The role the containers' code runs as. Empty in the canonical form when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    pub containers: Vec<Container>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct TaskDefinitionOutputs => TaskDefinitionRefs {
        /// `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION`.
        pub arn: String as ferroform_core::Arn<TaskDefinition>,
        pub family: String,
        pub revision: i64,
        /// `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY`: for IAM policies that cover every revision.
        pub arn_without_revision: String as ferroform_core::Arn<TaskDefinition>,
    }
}

impl TaskDefinition {
    /// A Fargate task definition of `cpu` units and `memory` MiB.
    pub fn new(family: impl Into<String>, cpu: u32, memory: u32) -> Self {
        Self {
            family: family.into(),
            cpu,
            memory,
            architecture: None,
            execution_role_arn: None,
            task_role_arn: None,
            containers: Vec::new(),
            tags: Tags::new(),
        }
    }
    pub fn architecture(mut self, arch: Architecture) -> Self {
        self.architecture = Some(arch);
        self
    }
    pub fn execution_role_arn(mut self, arn: ferroform_core::Arn<crate::iam::Role>) -> Self {
        self.execution_role_arn = Some(arn.into());
        self
    }
    pub fn task_role_arn(mut self, arn: ferroform_core::Arn<crate::iam::Role>) -> Self {
        self.task_role_arn = Some(arn.into());
        self
    }
    pub fn container(mut self, c: Container) -> Self {
        self.containers.push(c);
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

/// Every field but `tags`: a revision can't change.
const IMMUTABLE: &[&str] = &["family", "cpu", "memory", "architecture", "execution_role_arn", "task_role_arn", "containers"];

#[async_trait]
impl Resource for TaskDefinition {
    const TYPE: &'static str = "aws_ecs_task_definition";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("family", "family")];
    const REPLACE_FIELDS: &'static [&'static str] = IMMUTABLE;
    // No UPDATE_CHANGES: an update only retags the revision (same ARN); any other change is a replacement,
    // whose outputs the plan already treats as unknown.
    type Outputs = TaskDefinitionOutputs;
    type Refs = TaskDefinitionRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check_name(&mut e, "family", &self.family);
        if let Err(m) = check_fargate_size(self.cpu, self.memory) {
            e.push(FieldError::new(if FARGATE_SIZES.iter().any(|(c, _)| *c == self.cpu) { "memory" } else { "cpu" }, m));
        }
        check_containers(&mut e, self);
        if self.execution_role_arn.as_deref().unwrap_or("").is_empty() {
            if let Some(c) = self.containers.iter().find(|c| c.logs.is_some()) {
                e.push(FieldError::new(
                    "execution_role_arn",
                    format!("container `{}` logs with awslogs, which on Fargate needs an execution role", c.name),
                ));
            }
        }
        check_tags(&mut e, &self.tags);
        e
    }

    /// The canonical form: X86_64 when no architecture is set, empty role ARNs for none, host ports filled
    /// in and port mappings sorted (environment and secrets are maps: sorted by name).
    fn normalize(&mut self) {
        self.architecture.get_or_insert(Architecture::X86_64);
        self.execution_role_arn.get_or_insert_with(String::new);
        self.task_role_arn.get_or_insert_with(String::new);
        for c in &mut self.containers {
            c.normalize();
        }
    }

    /// `containers["NAME"].environment.KEY` for each [`Container::secret_env`] variable. Also by position
    /// (`containers[0]...`): a create shows the whole list, and its values are walked element by element.
    fn sensitive_paths(&self) -> Vec<String> {
        use ferroform_core::path::{child, element};
        let mut paths = Vec::new();
        for c in &self.containers {
            for k in &c.secret_keys {
                paths.push(child(&format!("{}.environment", element("containers", &c.name)), k));
            }
        }
        paths
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    /// Terraform's id is the family; here a revision is known by its ARN.
    fn terraform_id(attributes: &serde_json::Value) -> Option<String> {
        attributes.get("arn")?.as_str().map(str::to_string)
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, TaskDefinitionOutputs), ProviderError> {
        let region = aws.region();
        let containers = desired.containers.iter().map(|c| to_sdk(c, &region)).collect::<Result<Vec<_>, _>>()?;
        let arch = match desired.architecture {
            Some(Architecture::Arm64) => CpuArchitecture::Arm64,
            _ => CpuArchitecture::X8664,
        };
        let ecs = aws.ecs();
        // Registering again makes a second revision: after a lost answer, look for the first one.
        let made = create_once(
            CREATE_ONCE,
            is_concurrent_register,
            || {
                ecs.register_task_definition()
                    .family(&desired.family)
                    .requires_compatibilities(Compatibility::Fargate)
                    .network_mode(NetworkMode::Awsvpc)
                    .cpu(desired.cpu.to_string())
                    .memory(desired.memory.to_string())
                    .runtime_platform(
                        RuntimePlatform::builder().cpu_architecture(arch.clone()).operating_system_family(OsFamily::Linux).build(),
                    )
                    .set_execution_role_arn(non_empty(&desired.execution_role_arn))
                    .set_task_role_arn(non_empty(&desired.task_role_arn))
                    .set_container_definitions(Some(containers.clone()))
                    .set_tags(ecs_tags(&desired.tags))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let outputs = match made {
            Made::Answered(out) => {
                outputs_of(out.task_definition().ok_or_else(|| ProviderError::new("RegisterTaskDefinition returned no task definition"))?)?
            }
            Made::Found(arn) => outputs_of_arn(&arn)?,
        };
        Ok((outputs.arn.clone(), outputs))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let out = match aws.ecs().describe_task_definition().task_definition(id).include(TaskDefinitionField::Tags).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = sdk(e);
                return if is_gone(&e) { Ok(None) } else { Err(e) };
            }
        };
        let Some(td) = out.task_definition() else { return Ok(None) };
        if td.status() != Some(&TaskDefinitionStatus::Active) {
            return Ok(None);
        }
        Ok(Some(Observed { inputs: inputs_of(td, out.tags(), &aws.region(), prior), outputs: outputs_of(td)? }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<TaskDefinitionOutputs, ProviderError> {
        if changed.iter().any(|f| f == "tags") {
            update_tags(aws, id, &prior.tags, &desired.tags).await?;
        }
        outputs_of_arn(id)
    }

    /// Deregisters the revision (it stays visible as INACTIVE, as AWS keeps it).
    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        match aws.ecs().deregister_task_definition().task_definition(id).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = sdk(e);
                if is_gone(&e) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The newest ACTIVE revisions of the family that carry this address's tags and register exactly the
    /// definition asked for (an older revision of the same address, being replaced, does not match).
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let out = aws
            .ecs()
            .list_task_definitions()
            .family_prefix(&desired.family)
            .status(TaskDefinitionStatus::Active)
            .sort(SortOrder::Desc)
            .send()
            .await
            .map_err(sdk)?;
        let mut arns: Vec<(i64, String)> = out
            .task_definition_arns()
            .iter()
            .filter_map(|a| outputs_of_arn(a).ok().filter(|o| o.family == desired.family).map(|o| (o.revision, o.arn)))
            .collect();
        arns.sort_by_key(|a| std::cmp::Reverse(a.0));
        let mut want = desired.clone();
        want.normalize();
        for c in &mut want.containers {
            c.secret_keys.clear();
        }
        // Not a deposed revision this address is replacing.
        for (_, arn) in arns.into_iter().filter(|(_, arn)| !meta.exclude.contains(arn)).take(3) {
            let Some(found) = Self::read(aws, &arn, desired).await? else { continue };
            if !ours(&found.inputs.tags, meta) {
                continue;
            }
            let mut have = found.inputs;
            have.normalize();
            have.tags = want.tags.clone();
            if have == want {
                return Ok(Some(arn));
            }
        }
        Ok(None)
    }
}

fn check_containers(e: &mut Vec<FieldError>, td: &TaskDefinition) {
    if td.containers.is_empty() {
        e.push(FieldError::new("containers", "a task definition needs at least one container"));
        return;
    }
    if td.containers.len() > 10 {
        e.push(FieldError::new("containers", format!("{} containers; a task definition holds at most 10", td.containers.len())));
    }
    if !td.containers.iter().any(|c| c.essential) {
        e.push(FieldError::new("containers", "at least one container must be essential"));
    }
    let mut names = BTreeSet::new();
    let (mut cpu, mut memory) = (0u64, 0u64);
    for c in &td.containers {
        let field = format!("containers[{}]", c.name);
        check_name(e, &field, &c.name);
        if !names.insert(c.name.as_str()) {
            e.push(FieldError::new(&field, format!("two containers are named `{}`", c.name)));
        }
        if c.image.trim().is_empty() {
            e.push(FieldError::new(&field, "the image is empty"));
        }
        for k in c.environment.keys().chain(c.secrets.keys()) {
            if k.is_empty() && !is_unknown_str(k) {
                e.push(FieldError::new(&field, "an environment variable has an empty name"));
            }
        }
        if let Some(dup) = c.environment.keys().find(|k| c.secrets.contains_key(*k)) {
            e.push(FieldError::new(&field, format!("`{dup}` is both an environment variable and a secret")));
        }
        let mut ports = BTreeSet::new();
        for p in &c.port_mappings {
            if p.container_port == 0 {
                e.push(FieldError::new(&field, "port 0 is not a port"));
            }
            if p.host_port.is_some_and(|h| h != p.container_port) {
                e.push(FieldError::new(
                    &field,
                    format!("host port {:?} must equal container port {} with awsvpc networking", p.host_port, p.container_port),
                ));
            }
            if !ports.insert((p.container_port, p.protocol)) {
                e.push(FieldError::new(&field, format!("port {} is mapped twice", p.container_port)));
            }
        }
        if let Some(l) = &c.logs {
            crate::validate::name(
                e,
                &field,
                &l.group,
                1,
                512,
                |c| c.is_ascii_alphanumeric() || "_-/.#".contains(c),
                "a log group name: letters, digits, `_-/.#`",
            );
            if l.stream_prefix.is_empty() {
                e.push(FieldError::new(&field, "awslogs needs a stream prefix on Fargate"));
            }
        }
        if let (Some(hard), Some(soft)) = (c.memory, c.memory_reservation) {
            if soft > hard {
                e.push(FieldError::new(&field, format!("memory reservation {soft} MiB is above the hard limit {hard} MiB")));
            }
        }
        cpu += u64::from(c.cpu);
        memory += u64::from(c.memory.or(c.memory_reservation).unwrap_or(0));
    }
    if cpu > u64::from(td.cpu) {
        e.push(FieldError::new("containers", format!("the containers reserve {cpu} CPU units; the task has {}", td.cpu)));
    }
    if memory > u64::from(td.memory) {
        e.push(FieldError::new("containers", format!("the containers reserve {memory} MiB; the task has {}", td.memory)));
    }
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

fn is_concurrent_register(e: &ProviderError) -> bool {
    e.code.as_deref() == Some("ClientException") && e.message.contains("Too many concurrent attempts")
}

/// DescribeTaskDefinition says "Unable to describe task definition" for an unknown revision.
fn is_gone(e: &ProviderError) -> bool {
    crate::error::is_not_found(e)
        || (e.code.as_deref() == Some("ClientException")
            && (e.message.contains("Unable to describe task definition") || e.message.contains("does not exist")))
}

fn to_sdk(c: &Container, region: &str) -> Result<ContainerDefinition, ProviderError> {
    let mut b = ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .essential(c.essential)
        .cpu(i32::try_from(c.cpu).unwrap_or(i32::MAX))
        .set_memory(c.memory.map(|m| i32::try_from(m).unwrap_or(i32::MAX)))
        .set_memory_reservation(c.memory_reservation.map(|m| i32::try_from(m).unwrap_or(i32::MAX)))
        .set_entry_point((!c.entry_point.is_empty()).then(|| c.entry_point.clone()))
        .set_command((!c.command.is_empty()).then(|| c.command.clone()))
        .set_environment(Some(c.environment.iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build()).collect()));
    for p in &c.port_mappings {
        b = b.port_mappings(
            aws_sdk_ecs::types::PortMapping::builder()
                .container_port(i32::from(p.container_port))
                .host_port(i32::from(p.host_port.unwrap_or(p.container_port)))
                .protocol(match p.protocol {
                    Protocol::Tcp => TransportProtocol::Tcp,
                    Protocol::Udp => TransportProtocol::Udp,
                })
                .build(),
        );
    }
    for (name, from) in &c.secrets {
        b = b.secrets(Secret::builder().name(name).value_from(from).build().map_err(|e| ProviderError::new(e.to_string()))?);
    }
    if let Some(l) = &c.logs {
        let options = [
            ("awslogs-group", l.group.clone()),
            ("awslogs-region", l.region.clone().unwrap_or_else(|| region.to_string())),
            ("awslogs-stream-prefix", l.stream_prefix.clone()),
        ];
        b = b.log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .set_options(Some(options.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
                .build()
                .map_err(|e| ProviderError::new(e.to_string()))?,
        );
    }
    Ok(b.build())
}

fn from_sdk(c: &ContainerDefinition, deploy_region: &str, prior: Option<&Container>) -> Container {
    let to_u32 = |n: i32| u32::try_from(n).unwrap_or(0);
    let logs = c.log_configuration().filter(|l| l.log_driver() == &LogDriver::Awslogs).map(|l| {
        let opt = |k: &str| l.options().and_then(|o| o.get(k)).cloned().unwrap_or_default();
        let live_region = opt("awslogs-region");
        // Shown as the code wrote it: left out when it is the deploy region and the code left it out.
        let prior_region = prior.and_then(|p| p.logs.as_ref()).map(|l| l.region.clone());
        let region = match prior_region {
            Some(None) | None if live_region == deploy_region => None,
            _ => Some(live_region),
        };
        AwsLogs { group: opt("awslogs-group"), region, stream_prefix: opt("awslogs-stream-prefix") }
    });
    Container {
        name: c.name().unwrap_or_default().to_string(),
        image: c.image().unwrap_or_default().to_string(),
        essential: c.essential().unwrap_or(true),
        entry_point: c.entry_point().to_vec(),
        command: c.command().to_vec(),
        environment: c
            .environment()
            .iter()
            .filter_map(|kv| Some((kv.name()?.to_string(), kv.value().unwrap_or_default().to_string())))
            .collect(),
        secrets: c.secrets().iter().map(|s| (s.name().to_string(), s.value_from().to_string())).collect(),
        port_mappings: c
            .port_mappings()
            .iter()
            .filter_map(|p| {
                let port = u16::try_from(p.container_port()?).ok()?;
                Some(PortMapping {
                    container_port: port,
                    host_port: p.host_port().and_then(|h| u16::try_from(h).ok()),
                    protocol: if p.protocol() == Some(&TransportProtocol::Udp) { Protocol::Udp } else { Protocol::Tcp },
                })
            })
            .collect(),
        logs,
        cpu: to_u32(c.cpu()),
        memory: c.memory().map(to_u32),
        memory_reservation: c.memory_reservation().map(to_u32),
        secret_keys: BTreeSet::new(),
    }
}

fn inputs_of(
    td: &aws_sdk_ecs::types::TaskDefinition,
    tags: &[aws_sdk_ecs::types::Tag],
    region: &str,
    prior: &TaskDefinition,
) -> TaskDefinition {
    let parse = |s: Option<&str>| s.and_then(|s| s.trim().parse::<u32>().ok()).unwrap_or(0);
    let architecture = td.runtime_platform().and_then(|p| p.cpu_architecture()).map(|a| match a {
        CpuArchitecture::Arm64 => Architecture::Arm64,
        _ => Architecture::X86_64,
    });
    TaskDefinition {
        family: td.family().unwrap_or_default().to_string(),
        cpu: parse(td.cpu()),
        memory: parse(td.memory()),
        architecture,
        execution_role_arn: td.execution_role_arn().map(str::to_string),
        task_role_arn: td.task_role_arn().map(str::to_string),
        containers: td
            .container_definitions()
            .iter()
            .map(|c| from_sdk(c, region, prior.containers.iter().find(|p| Some(p.name.as_str()) == c.name())))
            .collect(),
        tags: from_ecs_tags(tags),
    }
}

fn outputs_of(td: &aws_sdk_ecs::types::TaskDefinition) -> Result<TaskDefinitionOutputs, ProviderError> {
    let arn = td.task_definition_arn().ok_or_else(|| ProviderError::new("the task definition has no ARN"))?;
    outputs_of_arn(arn)
}

/// Family, revision and the revision-less ARN, from `...:task-definition/FAMILY:REVISION`.
fn outputs_of_arn(arn: &str) -> Result<TaskDefinitionOutputs, ProviderError> {
    let bad = || ProviderError::new(format!("`{arn}` is not a task definition ARN (…:task-definition/FAMILY:REVISION)"));
    let (base, rev) = arn.rsplit_once(':').ok_or_else(bad)?;
    let revision: i64 = rev.parse().map_err(|_| bad())?;
    let family = base.rsplit_once("task-definition/").map(|(_, f)| f).ok_or_else(bad)?;
    Ok(TaskDefinitionOutputs { arn: arn.to_string(), family: family.to_string(), revision, arn_without_revision: base.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td() -> TaskDefinition {
        TaskDefinition::new("worker", 256, 512)
            .execution_role_arn(ferroform_core::Arn::literal("arn:aws:iam::123456789012:role/exec"))
            .container(
                Container::new("app", "public.ecr.aws/docker/library/busybox:latest")
                    .port(8080)
                    .logs(AwsLogs::new(ferroform_core::Name::literal("/ecs/worker"), "app")),
            )
    }

    #[test]
    fn fargate_sizes() {
        for (cpu, mem) in [(256, 512), (256, 2048), (512, 4096), (1024, 3072), (2048, 16384), (4096, 30720), (8192, 61440), (16384, 122880)]
        {
            assert!(check_fargate_size(cpu, mem).is_ok(), "{cpu}/{mem}");
        }
        for (cpu, mem) in [(256, 1536), (256, 4096), (512, 512), (1024, 1024), (2048, 4500), (4096, 31744), (8192, 18432), (100, 512)] {
            assert!(check_fargate_size(cpu, mem).is_err(), "{cpu}/{mem}");
        }
        assert_eq!(TaskDefinition { memory: 1536, ..td() }.validate()[0].field, "memory");
        assert_eq!(TaskDefinition { cpu: 300, ..td() }.validate()[0].field, "cpu");
        assert!(td().validate().is_empty(), "{:?}", td().validate());
    }

    #[test]
    fn container_checks() {
        let errs = |t: TaskDefinition| t.validate().into_iter().map(|e| e.message).collect::<Vec<_>>().join("; ");
        assert!(errs(TaskDefinition::new("f", 256, 512)).contains("at least one container"));
        let dup = td().container(Container::new("app", "x"));
        assert!(errs(dup).contains("two containers"));
        let none_essential = TaskDefinition::new("f", 256, 512).container(Container::new("a", "x").essential(false));
        assert!(errs(none_essential).contains("essential"));
        let host = TaskDefinition::new("f", 256, 512).container(Container::new("a", "x").port_mapping(PortMapping {
            container_port: 80,
            host_port: Some(8080),
            protocol: Protocol::Tcp,
        }));
        assert!(errs(host).contains("awsvpc"));
        let greedy = TaskDefinition::new("f", 256, 512).container(Container::new("a", "x").memory(1024).cpu(512));
        let m = errs(greedy);
        assert!(m.contains("1024 MiB") && m.contains("512 CPU units"), "{m}");
        let no_exec = TaskDefinition { execution_role_arn: None, ..td() };
        assert_eq!(no_exec.validate()[0].field, "execution_role_arn");
        assert_eq!(TaskDefinition { family: "bad family".into(), ..td() }.validate()[0].field, "family");
        assert!(errs(TaskDefinition::new("f", 256, 512).container(Container::new("bad name", "x"))).contains("bad name"));
    }

    #[test]
    fn canonical_form_fills_defaults() {
        let mut a = td();
        a.normalize();
        assert_eq!(a.architecture, Some(Architecture::X86_64));
        assert_eq!(a.task_role_arn.as_deref(), Some(""));
        assert_eq!(a.containers[0].port_mappings[0].host_port, Some(8080));
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["containers"][0]["essential"], true);
        assert_eq!(v["containers"][0]["port_mappings"][0]["protocol"], "tcp");
        // Defaults left out of JSON come back as the same values.
        let back: TaskDefinition = serde_json::from_value(serde_json::json!({
            "family": "worker", "cpu": 256, "memory": 512,
            "execution_role_arn": "arn:aws:iam::123456789012:role/exec",
            "containers": [{"name": "app", "image": "public.ecr.aws/docker/library/busybox:latest",
                            "port_mappings": [{"container_port": 8080}],
                            "logs": {"group": "/ecs/worker", "stream_prefix": "app"}}]
        }))
        .unwrap();
        let mut back = back;
        back.normalize();
        assert_eq!(back, a);
    }

    #[test]
    fn sdk_round_trip_is_canonical() {
        let mut want = td();
        want.containers[0] = want.containers[0].clone().env("B", "2").env("A", "1").secret("S", "arn:aws:ssm:x").command(["run"]);
        let sdk_def = to_sdk(&want.containers[0], "us-east-1").unwrap();
        let back = from_sdk(&sdk_def, "us-east-1", Some(&want.containers[0]));
        let mut want_c = want.containers[0].clone();
        want_c.normalize();
        let mut back_c = back;
        back_c.normalize();
        assert_eq!(back_c, want_c);
        // The region is shown when the code named it.
        let named = Container::new("a", "x").logs(AwsLogs::new(ferroform_core::Name::literal("g"), "p").region("us-east-1"));
        let back = from_sdk(&to_sdk(&named, "us-east-1").unwrap(), "us-east-1", Some(&named));
        assert_eq!(back.logs.and_then(|l| l.region).as_deref(), Some("us-east-1"));
    }

    /// Secret variables are sensitive paths, as the plan writes them, and not inputs. That plans (text,
    /// JSON) show `(sensitive)` for them is checked end to end in the e2e test, where a plan can be made.
    #[test]
    fn secret_variables_are_sensitive_paths_not_inputs() {
        let mut t = td();
        t.containers.push(
            Container::new("worker", "busybox")
                .env("TABLE", "pedidos")
                .secret_env("DB_PASSWORD", "hunter2-the-secret")
                .secret_env("db.url", "pg://u:pw@h"),
        );
        assert_eq!(
            t.sensitive_paths(),
            [r#"containers["worker"].environment.DB_PASSWORD"#, r#"containers["worker"].environment["db.url"]"#,]
        );
        assert!(!serde_json::to_string(&t).unwrap().contains("secret_keys"));
        assert_eq!(t.containers[1].environment["DB_PASSWORD"], "hunter2-the-secret", "still a variable of the container");
        assert!(td().sensitive_paths().is_empty());
    }

    #[test]
    fn arn_parts() {
        let o = outputs_of_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/worker:7").unwrap();
        assert_eq!(o.family, "worker");
        assert_eq!(o.revision, 7);
        assert_eq!(o.arn_without_revision, "arn:aws:ecs:us-east-1:123456789012:task-definition/worker");
        assert!(outputs_of_arn("nope").is_err());
    }
}
