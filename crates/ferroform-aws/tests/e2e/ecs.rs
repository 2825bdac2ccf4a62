//! ECS against the emulator: cluster, task definition and service through create -> independent read ->
//! no-op plan -> in-place change -> replacement -> drift -> destroy.

use anyhow::Context as _;
use aws_sdk_ecs::types::{ClusterField, ClusterSetting, ClusterSettingName, ServiceField, TaskDefinitionField, TaskDefinitionStatus};
use ferroform_aws::ecs::{AwsLogs, Cluster, Container, ContainerInsights, Network, Service, TaskDefinition};
use ferroform_aws::{Aws, CallCounter};
use ferroform_core::{Action, Plan, Stack};
use ferroform_testkit::Harness;

async fn harness() -> anyhow::Result<(Harness, CallCounter, aws_sdk_ecs::Client)> {
    let h = Harness::new().await?;
    let aws = Aws::from_config(h.account.config.clone());
    let calls = aws.calls().clone();
    h.contexts.insert(aws);
    let ecs = aws_sdk_ecs::Client::new(&h.account.config);
    Ok((h, calls, ecs))
}

/// Plans, asserts nothing would change, and returns the API calls the plan made.
async fn no_op(h: &Harness, calls: &CallCounter, stack: &Stack) -> anyhow::Result<std::collections::BTreeMap<String, usize>> {
    calls.reset();
    let plan = h.plan(stack).await?;
    assert!(!plan.has_changes(), "expected no changes:\n{}", plan.render(false));
    Ok(calls.snapshot())
}

fn action(plan: &Plan, address: &str) -> Option<Action> {
    plan.changes.iter().find(|c| c.address == address).map(|c| c.action)
}

fn tag<'a>(tags: &'a [aws_sdk_ecs::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

fn cluster_stack(name: &str, insights: ContainerInsights, team: &str) -> Stack {
    let mut s = Stack::new("ecs-cluster");
    s.add("cluster", Cluster::new(name).container_insights(insights).tag("team", team));
    s
}

async fn describe_cluster(ecs: &aws_sdk_ecs::Client, name: &str) -> anyhow::Result<aws_sdk_ecs::types::Cluster> {
    let out = ecs.describe_clusters().clusters(name).include(ClusterField::Settings).include(ClusterField::Tags).send().await?;
    out.clusters().first().cloned().context("no such cluster")
}

fn insights(c: &aws_sdk_ecs::types::Cluster) -> Option<&str> {
    c.settings().iter().find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights)).and_then(|s| s.value())
}

#[tokio::test]
async fn cluster_lifecycle() -> anyhow::Result<()> {
    let (h, calls, ecs) = harness().await?;
    let stack = cluster_stack("jobs", ContainerInsights::Enabled, "a");
    h.apply(&stack).await?;
    let id = h.id_of(&stack, "cluster").await?;
    let c = describe_cluster(&ecs, "jobs").await?;
    assert_eq!(c.cluster_arn(), Some(id.as_str()));
    assert_eq!(c.status(), Some("ACTIVE"));
    assert_eq!(insights(&c), Some("enabled"));
    assert_eq!(tag(c.tags(), "team"), Some("a"));
    assert_eq!(tag(c.tags(), "ferroform:address"), Some("cluster"));
    let reads = no_op(&h, &calls, &stack).await?;
    println!("no-op plan of 1 cluster: {reads:?}");

    // In place: the setting and a tag; same cluster.
    let changed = cluster_stack("jobs", ContainerInsights::Disabled, "b");
    let plan = h.plan(&changed).await?;
    assert_eq!(action(&plan, "cluster"), Some(Action::Update), "{}", plan.render(false));
    h.apply(&changed).await?;
    assert_eq!(h.id_of(&changed, "cluster").await?, id);
    let c = describe_cluster(&ecs, "jobs").await?;
    assert_eq!((insights(&c), tag(c.tags(), "team")), (Some("disabled"), Some("b")));
    no_op(&h, &calls, &changed).await?;

    // Drift: Container Insights turned on behind the engine's back.
    ecs.update_cluster()
        .cluster("jobs")
        .settings(ClusterSetting::builder().name(ClusterSettingName::ContainerInsights).value("enabled").build())
        .send()
        .await?;
    let plan = h.plan(&changed).await?;
    let text = plan.render(false);
    assert!(text.contains(r#"container_insights = "enabled" -> "disabled""#), "{text}");
    h.apply(&changed).await?;
    assert_eq!(insights(&describe_cluster(&ecs, "jobs").await?), Some("disabled"));

    // Replacement: a new name is a new cluster; the old one goes first (names are identities).
    let renamed = cluster_stack("jobs2", ContainerInsights::Disabled, "b");
    let plan = h.plan(&renamed).await?;
    assert_eq!(action(&plan, "cluster"), Some(Action::Replace), "{}", plan.render(false));
    h.apply(&renamed).await?;
    let new_id = h.id_of(&renamed, "cluster").await?;
    assert_ne!(new_id, id);
    assert_eq!(describe_cluster(&ecs, "jobs").await?.status(), Some("INACTIVE"));
    assert_eq!(describe_cluster(&ecs, "jobs2").await?.status(), Some("ACTIVE"));
    no_op(&h, &calls, &renamed).await?;

    h.destroy(&renamed).await?;
    assert_eq!(describe_cluster(&ecs, "jobs2").await?.status(), Some("INACTIVE"));
    assert!(!h.plan(&Stack::new("ecs-cluster")).await?.has_changes());
    Ok(())
}

fn exec_role(h: &Harness) -> String {
    format!("arn:aws:iam::{}:role/ecs-exec", h.account.id)
}

/// A definition written with AWS's defaults left out: no `essential`, no host port, no protocol, no
/// architecture, no log region, the environment out of order.
fn worker(h: &Harness, greeting: &str) -> TaskDefinition {
    TaskDefinition::new("worker", 256, 512).execution_role_arn(ferroform_core::Arn::literal(exec_role(h))).tag("team", "a").container(
        Container::new("app", "public.ecr.aws/docker/library/busybox:1.36")
            .command(["sh", "-c", "echo $GREETING; sleep 3600"])
            .env("ZONE", "z")
            .env("GREETING", greeting)
            .port(8080)
            .logs(AwsLogs::new(ferroform_core::Name::literal("/ecs/worker"), "app")),
    )
}

async fn describe_td(
    ecs: &aws_sdk_ecs::Client,
    arn: &str,
) -> anyhow::Result<aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput> {
    Ok(ecs.describe_task_definition().task_definition(arn).include(TaskDefinitionField::Tags).send().await?)
}

fn status(out: &aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput) -> Option<&TaskDefinitionStatus> {
    out.task_definition().and_then(|t| t.status())
}

#[tokio::test]
async fn task_definition_lifecycle() -> anyhow::Result<()> {
    let (h, calls, ecs) = harness().await?;
    let mut stack = Stack::new("ecs-td");
    stack.add("td", worker(&h, "hello"));
    h.apply(&stack).await?;
    let arn = h.id_of(&stack, "td").await?;
    assert!(arn.ends_with(":task-definition/worker:1"), "{arn}");
    let out = describe_td(&ecs, &arn).await?;
    let td = out.task_definition().context("no task definition")?;
    assert_eq!((td.cpu(), td.memory()), (Some("256"), Some("512")));
    assert_eq!(td.network_mode().map(|m| m.as_str()), Some("awsvpc"));
    assert!(td.requires_compatibilities().iter().any(|c| c.as_str() == "FARGATE"));
    assert_eq!(td.execution_role_arn(), Some(exec_role(&h).as_str()));
    let c = &td.container_definitions()[0];
    assert_eq!(c.port_mappings()[0].host_port(), Some(8080));
    let opts = c.log_configuration().and_then(|l| l.options()).context("no log options")?;
    assert_eq!(opts.get("awslogs-region").map(String::as_str), Some("us-east-1"));
    assert_eq!(opts.get("awslogs-stream-prefix").map(String::as_str), Some("app"));
    assert_eq!(tag(out.tags(), "team"), Some("a"));
    let state = h.engine().state("ecs-td").await?;
    assert_eq!(state.resources["td"].outputs["revision"], 1);
    assert_eq!(state.resources["td"].outputs["arn_without_revision"], arn.trim_end_matches(":1"));
    // Defaults left out of the code are no diff.
    let reads = no_op(&h, &calls, &stack).await?;
    println!("no-op plan of 1 task definition: {reads:?}");

    // In place: tags are the one thing a revision can change.
    let mut retagged = Stack::new("ecs-td");
    retagged.add("td", worker(&h, "hello").tag("team", "b"));
    let plan = h.plan(&retagged).await?;
    assert_eq!(action(&plan, "td"), Some(Action::Update), "{}", plan.render(false));
    h.apply(&retagged).await?;
    assert_eq!(h.id_of(&retagged, "td").await?, arn);
    assert_eq!(tag(describe_td(&ecs, &arn).await?.tags(), "team"), Some("b"));

    // Drift in tags: removed behind our back, restored.
    ecs.untag_resource().resource_arn(&arn).tag_keys("team").send().await?;
    let plan = h.plan(&retagged).await?;
    assert_eq!(action(&plan, "td"), Some(Action::Update), "{}", plan.render(false));
    h.apply(&retagged).await?;
    assert_eq!(tag(describe_td(&ecs, &arn).await?.tags(), "team"), Some("b"));

    // Replacement: any other change registers a new revision, then deregisters the old one.
    let mut changed = Stack::new("ecs-td");
    changed.add("td", worker(&h, "bonjour").tag("team", "b"));
    let plan = h.plan(&changed).await?;
    let text = plan.render(false);
    assert_eq!(action(&plan, "td"), Some(Action::Replace), "{text}");
    assert!(text.contains("+/-") && text.contains("`containers` forces replacement"), "{text}");
    h.apply(&changed).await?;
    let arn2 = h.id_of(&changed, "td").await?;
    assert!(arn2.ends_with(":task-definition/worker:2"), "{arn2}");
    assert_eq!(status(&describe_td(&ecs, &arn).await?), Some(&TaskDefinitionStatus::Inactive));
    assert_eq!(status(&describe_td(&ecs, &arn2).await?), Some(&TaskDefinitionStatus::Active));
    no_op(&h, &calls, &changed).await?;

    // Removing the task role from the code is a change too (the canonical form has no "unset").
    let mut with_role = Stack::new("ecs-td");
    with_role.add(
        "td",
        worker(&h, "bonjour")
            .tag("team", "b")
            .task_role_arn(ferroform_core::Arn::literal(format!("arn:aws:iam::{}:role/task", h.account.id))),
    );
    h.apply(&with_role).await?;
    let plan = h.plan(&changed).await?;
    assert_eq!(action(&plan, "td"), Some(Action::Replace), "{}", plan.render(false));
    h.apply(&changed).await?;
    let arn4 = h.id_of(&changed, "td").await?;
    assert_eq!(describe_td(&ecs, &arn4).await?.task_definition().and_then(|t| t.task_role_arn()), None);

    // Drift: deregistered behind our back; the plan re-registers it.
    ecs.deregister_task_definition().task_definition(&arn4).send().await?;
    let plan = h.plan(&changed).await?;
    assert_eq!(action(&plan, "td"), Some(Action::Create), "{}", plan.render(false));
    h.apply(&changed).await?;
    let arn5 = h.id_of(&changed, "td").await?;
    assert_eq!(status(&describe_td(&ecs, &arn5).await?), Some(&TaskDefinitionStatus::Active));
    no_op(&h, &calls, &changed).await?;

    h.destroy(&changed).await?;
    assert_eq!(status(&describe_td(&ecs, &arn5).await?), Some(&TaskDefinitionStatus::Inactive));
    let active = ecs.list_task_definitions().family_prefix("worker").send().await?;
    assert!(active.task_definition_arns().is_empty(), "{:?}", active.task_definition_arns());
    Ok(())
}

/// A VPC with two subnets and two security groups, made with the SDK (the service's fixtures).
async fn network(h: &Harness) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let ec2 = aws_sdk_ec2::Client::new(&h.account.config);
    let vpc = ec2.create_vpc().cidr_block("10.7.0.0/16").send().await?.vpc.and_then(|v| v.vpc_id).context("no vpc id")?;
    let mut subnets = Vec::new();
    for (i, cidr) in ["10.7.1.0/24", "10.7.2.0/24"].into_iter().enumerate() {
        let s = ec2.create_subnet().vpc_id(&vpc).cidr_block(cidr).availability_zone(format!("us-east-1{}", ['a', 'b'][i])).send().await?;
        subnets.push(s.subnet.and_then(|s| s.subnet_id).context("no subnet id")?);
    }
    let mut groups = Vec::new();
    for name in ["svc-a", "svc-b"] {
        let g = ec2.create_security_group().group_name(name).description(name).vpc_id(&vpc).send().await?;
        groups.push(g.group_id.context("no group id")?);
    }
    Ok((subnets, groups))
}

struct Svc {
    name: &'static str,
    count: u32,
    subnets: Vec<String>,
    groups: Vec<String>,
    public_ip: bool,
    greeting: &'static str,
}

fn service_stack(h: &Harness, s: &Svc) -> Stack {
    let mut stack = Stack::new("ecs-svc");
    let cluster = stack.add("cluster", Cluster::new("apps"));
    let td = stack.add("td", worker(h, s.greeting));
    stack.add(
        "service",
        Service::new(
            s.name,
            cluster.arn(),
            td.arn(),
            Network::new(s.subnets.iter().map(ferroform_core::Id::literal), s.groups.iter().map(ferroform_core::Id::literal))
                .public_ip(s.public_ip),
        )
        .desired_count(s.count)
        .tag("team", "a"),
    );
    stack
}

async fn describe_service(ecs: &aws_sdk_ecs::Client, name: &str) -> anyhow::Result<aws_sdk_ecs::types::Service> {
    let out = ecs.describe_services().cluster("apps").services(name).include(ServiceField::Tags).send().await?;
    out.services().first().cloned().context("no such service")
}

#[tokio::test]
async fn service_lifecycle() -> anyhow::Result<()> {
    let (h, calls, ecs) = harness().await?;
    let (subnets, groups) = network(&h).await?;
    let mut spec = Svc {
        name: "web",
        count: 1,
        subnets: vec![subnets[0].clone()],
        groups: vec![groups[0].clone()],
        public_ip: false,
        greeting: "hello",
    };
    let stack = service_stack(&h, &spec);
    h.apply(&stack).await?;
    let id = h.id_of(&stack, "service").await?;
    let td1 = h.id_of(&stack, "td").await?;
    let s = describe_service(&ecs, "web").await?;
    assert_eq!(s.service_arn(), Some(id.as_str()));
    assert_eq!((s.status(), s.desired_count()), (Some("ACTIVE"), 1));
    assert_eq!(s.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    assert_eq!(s.task_definition(), Some(td1.as_str()));
    let vpc = s.network_configuration().and_then(|n| n.awsvpc_configuration()).context("no awsvpc configuration")?;
    assert_eq!((vpc.subnets(), vpc.security_groups()), (&subnets[..1], &groups[..1]));
    assert_eq!(tag(s.tags(), "team"), Some("a"));
    let reads = no_op(&h, &calls, &stack).await?;
    println!("no-op plan of cluster + task definition + service: {reads:?}");

    // In place: scale, a second subnet and group (given out of order: sets), a public IP; same service.
    spec.count = 2;
    spec.subnets = vec![subnets[1].clone(), subnets[0].clone()];
    spec.groups = vec![groups[1].clone(), groups[0].clone()];
    spec.public_ip = true;
    let stack = service_stack(&h, &spec);
    let plan = h.plan(&stack).await?;
    assert_eq!(action(&plan, "service"), Some(Action::Update), "{}", plan.render(false));
    h.apply(&stack).await?;
    assert_eq!(h.id_of(&stack, "service").await?, id);
    let s = describe_service(&ecs, "web").await?;
    assert_eq!(s.desired_count(), 2);
    let vpc = s.network_configuration().and_then(|n| n.awsvpc_configuration()).context("no awsvpc configuration")?;
    assert_eq!((vpc.subnets().len(), vpc.security_groups().len()), (2, 2));
    assert_eq!(vpc.assign_public_ip().map(|a| a.as_str()), Some("ENABLED"));
    no_op(&h, &calls, &stack).await?;

    // A new revision: the task definition is replaced, the service follows in place, the old revision
    // is deregistered only after the service left it.
    spec.greeting = "bonjour";
    let stack = service_stack(&h, &spec);
    let plan = h.plan(&stack).await?;
    let text = plan.render(false);
    assert_eq!(action(&plan, "td"), Some(Action::Replace), "{text}");
    assert_eq!(action(&plan, "service"), Some(Action::Update), "{text}");
    assert!(text.contains("task_definition = ") && text.contains("(known after apply)"), "{text}");
    h.apply(&stack).await?;
    let td2 = h.id_of(&stack, "td").await?;
    assert_ne!(td2, td1);
    assert_eq!(h.id_of(&stack, "service").await?, id);
    assert_eq!(describe_service(&ecs, "web").await?.task_definition(), Some(td2.as_str()));
    assert_eq!(status(&describe_td(&ecs, &td1).await?), Some(&TaskDefinitionStatus::Inactive));
    no_op(&h, &calls, &stack).await?;

    // Drift: scaled to 0 and pointed at the old revision behind our back.
    ecs.update_service().cluster("apps").service("web").desired_count(0).task_definition(&td1).send().await?;
    let plan = h.plan(&stack).await?;
    let text = plan.render(false);
    assert!(text.contains("desired_count = 0 -> 2"), "{text}");
    assert!(text.contains(&format!("task_definition = \"{td1}\" -> \"{td2}\"")), "{text}");
    h.apply(&stack).await?;
    let s = describe_service(&ecs, "web").await?;
    assert_eq!((s.desired_count(), s.task_definition()), (2, Some(td2.as_str())));

    // Replacement: a new name is a new service; the old one is scaled down and deleted first.
    spec.name = "web2";
    let stack = service_stack(&h, &spec);
    let plan = h.plan(&stack).await?;
    assert_eq!(action(&plan, "service"), Some(Action::Replace), "{}", plan.render(false));
    h.apply(&stack).await?;
    let id2 = h.id_of(&stack, "service").await?;
    assert_ne!(id2, id);
    assert_eq!(describe_service(&ecs, "web").await?.status(), Some("INACTIVE"));
    assert_eq!(describe_service(&ecs, "web2").await?.status(), Some("ACTIVE"));
    no_op(&h, &calls, &stack).await?;

    // Deleted behind our back: planned as a create.
    ecs.delete_service().cluster("apps").service("web2").force(true).send().await?;
    let plan = h.plan(&stack).await?;
    assert_eq!(action(&plan, "service"), Some(Action::Create), "{}", plan.render(false));
    h.apply(&stack).await?;
    assert_eq!(describe_service(&ecs, "web2").await?.status(), Some("ACTIVE"));

    h.destroy(&stack).await?;
    let s = describe_service(&ecs, "web2").await?;
    assert_eq!((s.status(), s.desired_count()), (Some("INACTIVE"), 0));
    assert_eq!(describe_cluster(&ecs, "apps").await?.status(), Some("INACTIVE"));
    assert_eq!(status(&describe_td(&ecs, &td2).await?), Some(&TaskDefinitionStatus::Inactive));
    Ok(())
}

#[tokio::test]
async fn invalid_sizes_are_refused_before_any_call() -> anyhow::Result<()> {
    let (h, calls, _) = harness().await?;
    let mut stack = Stack::new("ecs-bad");
    stack.add("td", TaskDefinition::new("bad", 256, 4096).container(Container::new("app", "busybox")));
    calls.reset();
    let err = h.apply(&stack).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("memory 4096 MiB does not go with cpu 256"), "{err}");
    assert_eq!(calls.total(), 0);
    Ok(())
}

#[cfg(all(feature = "ec2", feature = "iam", feature = "logs"))]
mod fargate_component {
    use super::*;
    use ferroform_aws::components::{FargateTask, FargateTaskHandles};
    use ferroform_aws::ec2::{Subnet, Vpc};
    use ferroform_aws::iam::Role;

    fn stack(greeting: &str) -> (Stack, FargateTaskHandles) {
        let mut s = Stack::new("ecs-fargate");
        // The emulator's RunTask needs DNS hostnames on the VPC (it names the task's interface).
        let vpc = s.add("vpc", Vpc::new("10.9.0.0/16").dns_hostnames(true));
        let subnet = s.add("subnet", Subnet::new(vpc.id(), "10.9.1.0/24").availability_zone("us-east-1a"));
        let task = FargateTask::new("reports", vpc.id())
            .size(512, 1024)
            // The emulator's RunTask adds up container memory and fails on a container without any (AWS
            // takes the task's): a reservation keeps it happy.
            .container(
                Container::new("app", "public.ecr.aws/docker/library/busybox:1.36").env("GREETING", greeting).memory_reservation(256),
            )
            .allow(["s3:PutObject"], ["arn:aws:s3:::reports/*"])
            .service(1, [subnet.id()], false)
            .tag("team", "a")
            .add(&mut s);
        // A function's role that may start the task.
        s.add("starter-role", task.allow_run(Role::for_service("lambda.amazonaws.com")));
        s.output("task_role_arn", task.task_role.arn());
        (s, task)
    }

    #[tokio::test]
    async fn fargate_task_component() -> anyhow::Result<()> {
        let (h, calls, ecs) = harness().await?;
        let (s, _) = stack("hello");
        h.apply(&s).await?;
        let iam = aws_sdk_iam::Client::new(&h.account.config);
        let ec2 = aws_sdk_ec2::Client::new(&h.account.config);
        let logs = aws_sdk_cloudwatchlogs::Client::new(&h.account.config);

        // The task definition wires in both roles and logs to the component's group.
        let td_arn = h.id_of(&s, "reports/task").await?;
        let out = describe_td(&ecs, &td_arn).await?;
        let td = out.task_definition().context("no task definition")?;
        let exec_name = h.id_of(&s, "reports/execution-role").await?;
        let exec = iam.get_role().role_name(&exec_name).send().await?.role.context("no role")?;
        assert_eq!(td.execution_role_arn(), Some(exec.arn()));
        assert!(exec.assume_role_policy_document().unwrap_or_default().contains("ecs-tasks.amazonaws.com"));
        let task_name = h.id_of(&s, "reports/task-role").await?;
        let task_role = iam.get_role().role_name(&task_name).send().await?.role.context("no role")?;
        assert_eq!(td.task_role_arn(), Some(task_role.arn()));
        let opts = td.container_definitions()[0].log_configuration().and_then(|l| l.options()).context("no log options")?;
        assert_eq!(opts.get("awslogs-group").map(String::as_str), Some("/ecs/reports"));
        let group = logs.describe_log_groups().log_group_name_prefix("/ecs/reports").send().await?;
        assert_eq!(group.log_groups().first().and_then(|g| g.retention_in_days()), Some(14));
        let exec_policy = iam.get_role_policy().role_name(&exec_name).policy_name("execution").send().await?;
        let doc = urlish_decode(exec_policy.policy_document());
        assert!(doc.contains("logs:PutLogEvents") && doc.contains("ecr:BatchGetImage"), "{doc}");
        assert!(!iam.list_role_policies().role_name(&task_name).send().await?.policy_names().is_empty());

        // The security group lets nothing in and everything out.
        let sg_id = h.id_of(&s, "reports/security-group").await?;
        let sg = ec2.describe_security_groups().group_ids(&sg_id).send().await?;
        let sg = sg.security_groups().first().context("no group")?;
        assert!(sg.ip_permissions().is_empty());
        assert_eq!(sg.ip_permissions_egress().len(), 1);

        // The service runs the task in the subnet with that group; RunTask works with the same pieces.
        let svc = ecs.describe_services().cluster("reports").services("reports").send().await?;
        let svc = svc.services().first().context("no service")?;
        assert_eq!((svc.status(), svc.task_definition()), (Some("ACTIVE"), Some(td_arn.as_str())));
        let subnet = h.id_of(&s, "subnet").await?;
        let vpc = svc.network_configuration().and_then(|n| n.awsvpc_configuration()).context("no awsvpc")?;
        assert_eq!((vpc.subnets(), vpc.security_groups()), (&[subnet.clone()][..], &[sg_id.clone()][..]));
        let run = ecs
            .run_task()
            .cluster("reports")
            .task_definition(&td_arn)
            .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
            .network_configuration(
                aws_sdk_ecs::types::NetworkConfiguration::builder()
                    .awsvpc_configuration(
                        aws_sdk_ecs::types::AwsVpcConfiguration::builder().subnets(&subnet).security_groups(&sg_id).build()?,
                    )
                    .build(),
            )
            .send()
            .await?;
        assert_eq!(run.tasks().len(), 1);

        // The starter role may run this family and pass both roles.
        let starter = h.id_of(&s, "starter-role").await?;
        let p = iam.get_role_policy().role_name(&starter).policy_name("ferroform").send().await?;
        let doc = urlish_decode(p.policy_document());
        assert!(doc.contains("ecs:RunTask") && doc.contains("task-definition/reports:*") && doc.contains(task_role.arn()), "{doc}");

        let reads = no_op(&h, &calls, &s).await?;
        println!("no-op plan of the FargateTask component (9 resources + vpc/subnet): {reads:?}");

        // A code change: a new revision, the service follows, the old revision goes.
        let (s2, _) = stack("bonjour");
        let plan = h.plan(&s2).await?;
        assert_eq!(action(&plan, "reports/task"), Some(Action::Replace), "{}", plan.render(false));
        assert_eq!(action(&plan, "reports/service"), Some(Action::Update), "{}", plan.render(false));
        assert_eq!(plan.summary.add + plan.summary.change + plan.summary.destroy, 3, "{}", plan.render(false));
        h.apply(&s2).await?;
        let td2 = h.id_of(&s2, "reports/task").await?;
        assert_eq!(status(&describe_td(&ecs, &td_arn).await?), Some(&TaskDefinitionStatus::Inactive));
        let svc = ecs.describe_services().cluster("reports").services("reports").send().await?;
        assert_eq!(svc.services().first().and_then(|s| s.task_definition()), Some(td2.as_str()));
        no_op(&h, &calls, &s2).await?;

        h.destroy(&s2).await?;
        assert_eq!(describe_cluster(&ecs, "reports").await?.status(), Some("INACTIVE"));
        assert!(iam.get_role().role_name(&task_name).send().await.is_err());
        assert!(ec2.describe_security_groups().group_ids(&sg_id).send().await.is_err());
        Ok(())
    }

    /// IAM returns policy documents URL-encoded (moto too); enough decoding to search them.
    fn urlish_decode(s: &str) -> String {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The action at `address` and the names of the fields it changes, sorted.
fn changed(plan: &Plan, address: &str) -> (Action, Vec<String>) {
    crate::common::change(plan, address)
}

fn names(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| f.to_string()).collect()
}

#[tokio::test]
async fn cluster_removed_settings_go_back_to_defaults() -> anyhow::Result<()> {
    let (h, calls, ecs) = harness().await?;
    let set = cluster_stack("defaults", ContainerInsights::Enabled, "a");
    h.apply(&set).await?;
    let mut bare = Stack::new("ecs-cluster");
    bare.add("cluster", Cluster::new("defaults"));

    // The tag goes; Container Insights is left to the account setting, so it is no change.
    let plan = h.plan(&bare).await?;
    assert_eq!(changed(&plan, "cluster"), (Action::Update, names(&["tags"])), "{}", plan.render(false));
    h.apply(&bare).await?;
    let c = describe_cluster(&ecs, "defaults").await?;
    assert_eq!(tag(c.tags(), "team"), None);
    assert_eq!(tag(c.tags(), "ferroform:address"), Some("cluster"));
    assert_eq!(insights(&c), Some("enabled"), "left as it was");
    no_op(&h, &calls, &bare).await?;
    h.destroy(&bare).await?;
    Ok(())
}

/// Every optional setting of a task definition and its container, one secret variable among them.
fn worker_with_everything(h: &Harness, token: &str) -> TaskDefinition {
    TaskDefinition::new("worker", 512, 1024)
        .architecture(ferroform_aws::ecs::Architecture::Arm64)
        .execution_role_arn(ferroform_core::Arn::literal(exec_role(h)))
        .task_role_arn(ferroform_core::Arn::literal(format!("arn:aws:iam::{}:role/task", h.account.id)))
        .tag("team", "a")
        .container(
            Container::new("app", "public.ecr.aws/docker/library/busybox:1.36")
                .essential(true)
                .entry_point(["sh", "-c"])
                .command(["sleep 3600"])
                .env("LOG_LEVEL", "debug")
                .secret_env("API_TOKEN", token)
                .secret("DB_PASSWORD", format!("arn:aws:secretsmanager:us-east-1:{}:secret:db-AbCdEf", h.account.id))
                .port(8080)
                .logs(AwsLogs::new(ferroform_core::Name::literal("/ecs/worker"), "app"))
                .cpu(256)
                .memory(512)
                .memory_reservation(256),
        )
        .container(Container::new("sidecar", "public.ecr.aws/docker/library/busybox:1.36").essential(false).memory_reservation(64))
}

#[tokio::test]
async fn task_definition_removed_settings_go_back_to_defaults() -> anyhow::Result<()> {
    let (h, calls, ecs) = harness().await?;
    let mut set = Stack::new("ecs-td-defaults");
    set.add("td", worker_with_everything(&h, "s3cr3t-one"));
    // The create shows the whole container list, the secret variable's value masked.
    let plan = h.plan(&set).await?;
    let (text, json) = (plan.render(false), plan.to_json()?);
    for shown in [&text, &json] {
        assert!(!shown.contains("s3cr3t") && shown.contains("(sensitive)") && shown.contains("debug"), "{shown}");
    }
    h.apply(&set).await?;
    no_op(&h, &calls, &set).await?;

    // A new secret value: the change shows, neither value does (text and JSON plans).
    let mut rotated = Stack::new("ecs-td-defaults");
    rotated.add("td", worker_with_everything(&h, "s3cr3t-two"));
    let plan = h.plan(&rotated).await?;
    let (text, json) = (plan.render(false), plan.to_json()?);
    assert_eq!(changed(&plan, "td").0, Action::Replace, "{text}");
    assert!(text.contains(r#"containers["app"].environment.API_TOKEN = "(sensitive)" -> "(sensitive)""#), "{text}");
    for shown in [&text, &json] {
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    // Everything optional removed: one replacement naming each field; the new revision has AWS's defaults.
    let mut bare = Stack::new("ecs-td-defaults");
    bare.add("td", TaskDefinition::new("worker", 512, 1024).container(Container::new("app", "public.ecr.aws/docker/library/busybox:1.36")));
    let plan = h.plan(&bare).await?;
    let text = plan.render(false);
    let fields = names(&["architecture", "containers", "execution_role_arn", "tags", "task_role_arn"]);
    assert_eq!(changed(&plan, "td"), (Action::Replace, fields), "{text}");
    for path in [
        r#"- containers["app"].environment = "#,
        r#"- containers["app"].secrets = "#,
        r#"containers["app"].command"#,
        r#"containers["app"].logs"#,
        r#"containers["app"].memory"#,
        r#"containers["sidecar"]"#,
        r#"architecture = "ARM64" -> "X86_64""#,
    ] {
        assert!(text.contains(path), "{path} in:\n{text}");
    }
    // The code no longer says the variable is secret; state remembers it was.
    assert!(!text.contains("s3cr3t") && !plan.to_json()?.contains("s3cr3t"), "{text}");
    h.apply(&bare).await?;
    let arn = h.id_of(&bare, "td").await?;
    let out = describe_td(&ecs, &arn).await?;
    let td = out.task_definition().context("no task definition")?;
    assert_eq!((td.task_role_arn(), td.execution_role_arn()), (None, None));
    let arch = td.runtime_platform().and_then(|p| p.cpu_architecture()).map(|a| a.as_str());
    assert_eq!(arch, Some("X86_64"));
    assert_eq!(td.container_definitions().len(), 1);
    let c = &td.container_definitions()[0];
    assert!(c.environment().is_empty() && c.secrets().is_empty() && c.command().is_empty() && c.entry_point().is_empty(), "{c:?}");
    assert!(c.port_mappings().is_empty() && c.log_configuration().is_none(), "{c:?}");
    assert_eq!((c.cpu(), c.memory(), c.memory_reservation(), c.essential()), (0, None, None, Some(true)));
    assert_eq!(tag(out.tags(), "team"), None);
    no_op(&h, &calls, &bare).await?;
    h.destroy(&bare).await?;
    Ok(())
}

#[tokio::test]
async fn service_removed_settings_go_back_to_defaults() -> anyhow::Result<()> {
    let (h, calls, ecs) = harness().await?;
    let (subnets, groups) = network(&h).await?;
    let stack = |full: bool| {
        let mut s = Stack::new("ecs-svc-defaults");
        let cluster = s.add("cluster", Cluster::new("apps"));
        let td = s.add("td", worker(&h, "hello"));
        let network = Network::new(subnets.iter().map(ferroform_core::Id::literal), groups.iter().map(ferroform_core::Id::literal));
        let svc = if full {
            Service::new("web", cluster.arn(), td.arn(), network.public_ip(true))
                .desired_count(3)
                .platform_version("1.4.0")
                .tag("team", "a")
        } else {
            Service::new("web", cluster.arn(), td.arn(), network)
        };
        s.add("service", svc);
        s
    };
    h.apply(&stack(true)).await?;
    let s = describe_service(&ecs, "web").await?;
    assert_eq!((s.desired_count(), s.platform_version()), (3, Some("1.4.0")));
    no_op(&h, &calls, &stack(true)).await?;

    let plan = h.plan(&stack(false)).await?;
    let text = plan.render(false);
    let fields = names(&["desired_count", "network", "platform_version", "tags"]);
    assert_eq!(changed(&plan, "service"), (Action::Update, fields), "{text}");
    assert!(text.contains(r#"platform_version = "1.4.0" -> "LATEST""#) && text.contains("desired_count = 3 -> 1"), "{text}");
    h.apply(&stack(false)).await?;
    let s = describe_service(&ecs, "web").await?;
    assert_eq!((s.desired_count(), s.platform_version()), (1, Some("LATEST")));
    let vpc = s.network_configuration().and_then(|n| n.awsvpc_configuration()).context("no awsvpc configuration")?;
    assert_eq!(vpc.assign_public_ip().map(|a| a.as_str()), Some("DISABLED"));
    assert_eq!(tag(s.tags(), "team"), None);
    no_op(&h, &calls, &stack(false)).await?;
    h.destroy(&stack(false)).await?;
    Ok(())
}

/// The emulator as the tests and `scripts/emulator up` start it: a task stays RUNNING however often it is
/// described, and StopTask (what `serve` calls when the task's process exits) moves it to STOPPED. moto's
/// default moves a task one status on per DescribeTasks, STOPPED by the fourth, though nothing stopped it.
#[tokio::test]
async fn a_task_is_stopped_by_stop_task_not_by_being_described() -> anyhow::Result<()> {
    use aws_sdk_ecs::types::{AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType, NetworkConfiguration, NetworkMode};
    let (h, _, ecs) = harness().await?;
    let ec2 = aws_sdk_ec2::Client::new(&h.account.config);
    let subnets = ec2.describe_subnets().send().await?;
    let subnet = subnets.subnets().first().and_then(|s| s.subnet_id()).context("the default VPC has no subnet")?.to_string();
    let groups = ec2.describe_security_groups().send().await?;
    let group = groups.security_groups().first().and_then(|g| g.group_id()).context("no security group")?.to_string();
    let cluster = ecs.create_cluster().cluster_name("described").send().await?.cluster.and_then(|c| c.cluster_arn).context("no cluster")?;
    let container = ContainerDefinition::builder().name("app").image("busybox").memory(512).essential(true).build();
    let registered = ecs
        .register_task_definition()
        .family("described")
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(container)
        .send()
        .await?;
    let definition = registered.task_definition.and_then(|t| t.task_definition_arn).context("no task definition")?;
    let network = NetworkConfiguration::builder()
        .awsvpc_configuration(AwsVpcConfiguration::builder().subnets(subnet).security_groups(group).build()?)
        .build();
    let started = ecs
        .run_task()
        .cluster(&cluster)
        .task_definition(&definition)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network)
        .send()
        .await?;
    let task = started.tasks()[0].task_arn().context("no task arn")?.to_string();
    let status = || async {
        let out = ecs.describe_tasks().cluster(&cluster).tasks(&task).send().await?;
        let t = out.tasks().first().context("task not described")?;
        anyhow::Ok((t.last_status().map(str::to_string), t.desired_status().map(str::to_string)))
    };
    for _ in 0..8 {
        assert_eq!(status().await?, (Some("RUNNING".into()), Some("RUNNING".into())));
    }
    ecs.stop_task().cluster(&cluster).task(&task).reason("done").send().await?;
    assert_eq!(status().await?, (Some("STOPPED".into()), Some("STOPPED".into())));
    Ok(())
}
