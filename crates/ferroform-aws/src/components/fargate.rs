//! `FargateTask`: what it takes to run containers on Fargate, the replacement of Terraform's "Fargate task
//! runner" modules.
//!
//! ```ignore
//! let worker = FargateTask::new("pedidos-worker", net.vpc_id())
//!     .size(512, 1024)
//!     .container(ecs::Container::new("worker", image).env("TABLE_NAME", table.name()))
//!     .allow(["dynamodb:PutItem"], [table.arn()])
//!     .add(&mut stack);
//! // A Lambda that starts the task: RunTask on the family, PassRole on both roles.
//! let starter = stack.add("starter-role", worker.allow_run(iam::Role::for_service("lambda.amazonaws.com")));
//! ```
//!
//! What it adds, under the scope given to [`FargateTask::add_as`] (its name by default):
//!
//! - `cluster`: an ECS cluster named after the task;
//! - `logs`: the log group `/ecs/NAME` with a retention (14 days unless set); every container that does not
//!   say where it logs gets `awslogs` to it, with its own name as stream prefix;
//! - `execution-role`: assumed by ECS to pull images and write logs. By default an inline policy with just
//!   that: `logs:CreateLogStream`/`logs:PutLogEvents` on this log group, the ECR pull actions, and read access
//!   to the secrets the containers name. [`ExecutionPolicy::AwsManaged`] attaches
//!   `AmazonECSTaskExecutionRolePolicy` instead (logs and ECR on `*`; secrets then need [`FargateTask::allow_execution`]);
//! - `task-role`: the role the containers' code runs as, with what [`FargateTask::allow`] granted;
//! - `security-group`: egress only (all traffic out, nothing in), in the VPC given;
//! - `task`: the Fargate task definition;
//! - `service` when [`FargateTask::service`] asked for one: `desired_count` copies kept running.

use crate::ec2::{Rule, SecurityGroup, Subnet, Vpc};
use crate::ecs::{Architecture, AwsLogs, Cluster, Container, ContainerInsights, Network, Service, TaskDefinition};
use crate::iam::{Policy, PolicyDocument, Role, Statement};
use crate::logs::LogGroup;
use crate::tags::Tags;
use ferroform_core::{Arn, ArnText, Handle, Id, Stack};

/// The AWS managed policy for task execution roles, in the partition of the environment's region.
pub fn task_execution_policy_arn() -> Arn<Policy> {
    crate::iam::aws_managed_policy("service-role/AmazonECSTaskExecutionRolePolicy")
}

/// The ECR actions a pull needs (`GetAuthorizationToken` has no resource-level permissions).
pub const ECR_PULL_ACTIONS: &[&str] =
    &["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"];

/// What the execution role may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExecutionPolicy {
    /// An inline policy scoped to this task's log group and secrets, plus ECR pulls.
    #[default]
    Inline,
    /// `AmazonECSTaskExecutionRolePolicy` (AWS managed).
    AwsManaged,
}

/// A service that keeps the task running.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub desired_count: u32,
    pub subnets: Vec<Id<Subnet>>,
    pub assign_public_ip: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FargateTask {
    /// The cluster's name, the task definition's family, and the log group's `/ecs/NAME`.
    pub name: String,
    /// The VPC the security group belongs to.
    pub vpc_id: Id<Vpc>,
    pub cpu: u32,
    pub memory: u32,
    pub architecture: Option<Architecture>,
    pub containers: Vec<Container>,
    pub log_retention_days: i32,
    pub container_insights: Option<ContainerInsights>,
    pub execution_policy: ExecutionPolicy,
    /// Extra statements for the execution role (secrets when the managed policy is used, a KMS key, ...).
    pub execution_statements: Vec<Statement>,
    /// What the containers' code may do.
    pub task_statements: Vec<Statement>,
    pub service: Option<ServiceSpec>,
    /// Added to every resource.
    pub tags: Tags,
}

/// What [`FargateTask::add`] made.
pub struct FargateTaskHandles {
    /// The task definition's family.
    pub family: String,
    pub cluster: Handle<Cluster>,
    pub task_definition: Handle<TaskDefinition>,
    pub task_role: Handle<Role>,
    pub execution_role: Handle<Role>,
    pub security_group: Handle<SecurityGroup>,
    pub log_group: Handle<LogGroup>,
    pub service: Option<Handle<Service>>,
}

impl FargateTaskHandles {
    /// What a caller needs to start this task: `ecs:RunTask` on every revision of the family (in this
    /// cluster) and `iam:PassRole` on both roles.
    pub fn start_statements(&self) -> Vec<Statement> {
        vec![
            // Named by family, not through the task definition's outputs: a new revision then leaves the caller's
            // policy alone (region and account are the caller's own, as `ecs:cluster` pins the cluster anyway).
            Statement::allow()
                .action("ecs:RunTask")
                .resource(format!("arn:{}:ecs:*:*:task-definition/{}:*", crate::context::declared_partition(), self.family))
                .condition("ArnEquals", "ecs:cluster", self.cluster.arn()),
            Statement::allow().action("iam:PassRole").resources([self.execution_role.arn(), self.task_role.arn()]),
        ]
    }

    /// What a caller needs to follow and stop the tasks it started: `ecs:DescribeTasks`/`ecs:StopTask` in this
    /// cluster.
    pub fn watch_statements(&self) -> Vec<Statement> {
        vec![Statement::allow().actions(["ecs:DescribeTasks", "ecs:StopTask"]).resource("*").condition(
            "ArnEquals",
            "ecs:cluster",
            self.cluster.arn(),
        )]
    }

    /// [`Self::start_statements`] and [`Self::watch_statements`].
    pub fn run_statements(&self) -> Vec<Statement> {
        let mut all = self.start_statements();
        all.extend(self.watch_statements());
        all
    }

    /// [`Self::start_statements`] as a policy (a caller that starts tasks and never looks at them again).
    pub fn start_policy(&self) -> PolicyDocument {
        self.start_statements().into_iter().fold(PolicyDocument::new(), PolicyDocument::statement)
    }

    /// `role` with [`Self::run_statements`] added to its default inline policy (a Lambda that starts the task).
    pub fn allow_run(&self, role: Role) -> Role {
        let name = crate::iam::DEFAULT_INLINE_POLICY;
        let mut role = role;
        let mut doc = role.inline_policies.remove(name).unwrap_or_default();
        for s in self.run_statements() {
            doc = doc.statement(s);
        }
        role.inline_policy(name, doc)
    }
}

impl FargateTask {
    /// A task of .25 vCPU and 512 MiB, its security group in `vpc_id`.
    pub fn new(name: impl Into<String>, vpc_id: Id<Vpc>) -> Self {
        Self {
            name: name.into(),
            vpc_id,
            cpu: 256,
            memory: 512,
            architecture: None,
            containers: Vec::new(),
            log_retention_days: 14,
            container_insights: None,
            execution_policy: ExecutionPolicy::Inline,
            execution_statements: Vec::new(),
            task_statements: Vec::new(),
            service: None,
            tags: Tags::new(),
        }
    }
    /// CPU units and MiB, as Fargate pairs them (checked at validation).
    pub fn size(mut self, cpu: u32, memory: u32) -> Self {
        self.cpu = cpu;
        self.memory = memory;
        self
    }
    pub fn architecture(mut self, arch: Architecture) -> Self {
        self.architecture = Some(arch);
        self
    }
    pub fn container(mut self, c: Container) -> Self {
        self.containers.push(c);
        self
    }
    pub fn log_retention_days(mut self, days: i32) -> Self {
        self.log_retention_days = days;
        self
    }
    pub fn container_insights(mut self, setting: ContainerInsights) -> Self {
        self.container_insights = Some(setting);
        self
    }
    pub fn execution_policy(mut self, policy: ExecutionPolicy) -> Self {
        self.execution_policy = policy;
        self
    }
    /// Grants the execution role `actions` on `resources`.
    pub fn allow_execution<A: Into<String>, R: ArnText>(
        mut self,
        actions: impl IntoIterator<Item = A>,
        resources: impl IntoIterator<Item = R>,
    ) -> Self {
        self.execution_statements.push(Statement::allow().actions(actions).resources(resources));
        self
    }
    /// Grants the task role (the containers' code) `actions` on `resources`.
    pub fn allow<A: Into<String>, R: ArnText>(
        mut self,
        actions: impl IntoIterator<Item = A>,
        resources: impl IntoIterator<Item = R>,
    ) -> Self {
        self.task_statements.push(Statement::allow().actions(actions).resources(resources));
        self
    }
    /// Adds a statement to the task role's policy.
    pub fn task_statement(mut self, s: Statement) -> Self {
        self.task_statements.push(s);
        self
    }
    /// Keeps `desired_count` copies running in `subnets`.
    pub fn service(mut self, desired_count: u32, subnets: impl IntoIterator<Item = Id<Subnet>>, assign_public_ip: bool) -> Self {
        self.service = Some(ServiceSpec { desired_count, subnets: subnets.into_iter().collect(), assign_public_ip });
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }

    /// Adds everything under the scope named after the task.
    pub fn add(&self, stack: &mut Stack) -> FargateTaskHandles {
        let scope = self.name.clone();
        self.add_as(stack, &scope)
    }

    pub fn add_as(&self, stack: &mut Stack, scope: &str) -> FargateTaskHandles {
        stack.scope(scope, |s| self.add_here(s))
    }

    fn add_here(&self, s: &mut Stack) -> FargateTaskHandles {
        let tagged = |mut tags: Tags| {
            crate::tags::merge_defaults(&mut tags, &self.tags);
            tags
        };

        let mut cluster = Cluster::new(&self.name);
        cluster.container_insights = self.container_insights;
        cluster.tags = tagged(cluster.tags);
        let cluster = s.add("cluster", cluster);

        let mut log_group = LogGroup::new(format!("/ecs/{}", self.name)).retention_days(self.log_retention_days);
        log_group.tags = tagged(log_group.tags);
        let log_group = s.add("logs", log_group);

        let mut execution = Role::for_service("ecs-tasks.amazonaws.com").description(format!("ECS pulls and logs for {}", self.name));
        match self.execution_policy {
            ExecutionPolicy::Inline => {
                let mut doc =
                    PolicyDocument::new().statement(Statement::allow().actions(ECR_PULL_ACTIONS.iter().copied()).resource("*")).statement(
                        Statement::allow()
                            .actions(["logs:CreateLogStream", "logs:PutLogEvents"])
                            .resource(format!("{}:*", log_group.arn())),
                    );
                let secrets: Vec<&String> = self.containers.iter().flat_map(|c| c.secrets.values()).collect();
                let (ssm, sm): (Vec<&String>, Vec<&String>) = secrets.into_iter().partition(|a| a.contains(":ssm:"));
                if !sm.is_empty() {
                    doc = doc.statement(Statement::allow().action("secretsmanager:GetSecretValue").resources(sm.into_iter().cloned()));
                }
                if !ssm.is_empty() {
                    doc = doc.statement(Statement::allow().action("ssm:GetParameters").resources(ssm.into_iter().cloned()));
                }
                execution = execution.inline_policy("execution", doc);
            }
            ExecutionPolicy::AwsManaged => execution = execution.managed_policy(task_execution_policy_arn()),
        }
        if !self.execution_statements.is_empty() {
            let doc = self.execution_statements.iter().cloned().fold(PolicyDocument::new(), PolicyDocument::statement);
            execution = execution.inline_policy("extra", doc);
        }
        execution.tags = tagged(execution.tags);
        let execution_role = s.add("execution-role", execution.with_stack_boundary(s));

        let mut task = Role::for_service("ecs-tasks.amazonaws.com").description(format!("the code of {}", self.name));
        if !self.task_statements.is_empty() {
            let doc = self.task_statements.iter().cloned().fold(PolicyDocument::new(), PolicyDocument::statement);
            task = task.inline_policy(crate::iam::DEFAULT_INLINE_POLICY, doc);
        }
        task.tags = tagged(task.tags);
        let task_role = s.add("task-role", task.with_stack_boundary(s));

        let mut sg = SecurityGroup::new(format!("{}-task", self.name), self.vpc_id.clone())
            .description(format!("Fargate tasks of {}: egress only", self.name))
            .egress(Rule::all_traffic().cidr("0.0.0.0/0"));
        sg.tags = tagged(sg.tags);
        let security_group = s.add("security-group", sg);

        let mut td =
            TaskDefinition::new(&self.name, self.cpu, self.memory).execution_role_arn(execution_role.arn()).task_role_arn(task_role.arn());
        td.architecture = self.architecture;
        for c in &self.containers {
            let mut c = c.clone();
            if c.logs.is_none() {
                c.logs = Some(AwsLogs::new(log_group.name(), c.name.clone()));
            }
            td = td.container(c);
        }
        td.tags = tagged(td.tags);
        let task_definition = s.add("task", td);

        let service = self.service.as_ref().map(|spec| {
            let network = Network::new(spec.subnets.clone(), [security_group.id()]).public_ip(spec.assign_public_ip);
            let mut svc = Service::new(&self.name, cluster.arn(), task_definition.arn(), network).desired_count(spec.desired_count);
            svc.tags = tagged(svc.tags);
            s.add("service", svc)
        });

        FargateTaskHandles {
            family: self.name.clone(),
            cluster,
            task_definition,
            task_role,
            execution_role,
            security_group,
            log_group,
            service,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> FargateTask {
        FargateTask::new("worker", ferroform_core::Id::literal("vpc-1"))
            .size(512, 1024)
            .container(Container::new("app", "busybox").secret("PASS", "arn:aws:secretsmanager:us-east-1:1:secret:p"))
            .container(
                Container::new("side", "busybox").essential(false).logs(AwsLogs::new(ferroform_core::Name::literal("/elsewhere"), "side")),
            )
            .allow(["dynamodb:PutItem"], ["arn:aws:dynamodb:us-east-1:1:table/t"])
            .tag("team", "a")
    }

    #[test]
    fn adds_the_pieces_under_its_scope() {
        let mut s = Stack::new("st");
        let h = task().service(2, [ferroform_core::Id::literal("subnet-1")], false).add(&mut s);
        let addrs: Vec<&str> = s.resources().iter().map(|r| r.address.as_str()).collect();
        assert_eq!(
            addrs,
            [
                "worker/cluster",
                "worker/logs",
                "worker/execution-role",
                "worker/task-role",
                "worker/security-group",
                "worker/task",
                "worker/service"
            ]
        );
        assert_eq!(h.task_definition.address(), "worker/task");
        let td = &s.resources()[5].inputs;
        assert_eq!(td["execution_role_arn"], "\u{e000}${ref:worker/execution-role.arn}");
        // Containers without logs log to the task's group; the others keep theirs.
        assert_eq!(td["containers"][0]["logs"]["group"], "\u{e000}${ref:worker/logs.name}");
        assert_eq!(td["containers"][1]["logs"]["group"], "/elsewhere");
        assert_eq!(td["tags"]["team"], "a");
        let exec = serde_json::to_string(&s.resources()[2].inputs).unwrap();
        assert!(exec.contains("secretsmanager:GetSecretValue") && exec.contains("\u{e000}${ref:worker/logs.arn}:*"), "{exec}");
        let sg = &s.resources()[4].inputs;
        assert!(sg["ingress"].as_array().is_some_and(|a| a.is_empty()));
        assert_eq!(sg["egress"][0]["cidr_blocks"][0], "0.0.0.0/0");
        assert_eq!(s.resources()[6].inputs["network"]["security_groups"][0], "\u{e000}${ref:worker/security-group.id}");
    }

    #[test]
    fn managed_execution_policy_and_runner_grants() {
        let mut s = Stack::new("st");
        let h = task().execution_policy(ExecutionPolicy::AwsManaged).add_as(&mut s, "jobs");
        let exec = &s.resources()[2].inputs;
        assert_eq!(exec["managed_policy_arns"][0], task_execution_policy_arn().as_str());
        let runner = serde_json::to_string(&h.allow_run(Role::for_service("lambda.amazonaws.com"))).unwrap();
        assert!(runner.contains("ecs:RunTask") && runner.contains("task-definition/worker:*"), "{runner}");
        assert!(runner.contains("iam:PassRole") && runner.contains("\u{e000}${ref:jobs/task-role.arn}"), "{runner}");
    }
}
