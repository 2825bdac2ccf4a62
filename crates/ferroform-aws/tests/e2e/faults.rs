//! Apply and destroy through a proxy that throttles, fails (500/503) or drops about one call in ten (fixed
//! seed), and refuses Lambda a role younger than two seconds as IAM's eventual consistency does. The run
//! converges; the account, read straight from the emulator, holds exactly one of each resource (no
//! duplicate from a retried create) and the state has them all; the destroy leaves nothing.

use anyhow::Context;
use ferroform_aws::dynamodb::{AttrType, Table};
use ferroform_aws::ec2::{ElasticIp, InternetGateway, NatGateway, Route, RouteTable, Rule, SecurityGroup, Subnet, Vpc};
use ferroform_aws::ecr::Repository;
use ferroform_aws::ecs::{Cluster, Container, TaskDefinition};
use ferroform_aws::iam::{Policy, PolicyDocument, Role};
use ferroform_aws::lambda::{Code, Function};
use ferroform_aws::logs::LogGroup;
use ferroform_aws::Aws;
use ferroform_core::{Options, Stack};
use ferroform_testkit::proxy::{FaultProxy, Faults, DROP_AFTER_FORWARD, ROLE_NOT_ASSUMABLE};
use ferroform_testkit::Harness;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const STACK: &str = "faults";

fn stack(code: &std::path::Path) -> Stack {
    let mut s = Stack::new(STACK);
    let keep_not = || Options::new().prevent_destroy(false);
    let vpc = s.add("vpc", Vpc::new("10.30.0.0/16"));
    s.add("subnet-a", Subnet::new(vpc.id(), "10.30.1.0/24").availability_zone("us-east-1a"));
    s.add("subnet-b", Subnet::new(vpc.id(), "10.30.2.0/24").availability_zone("us-east-1b"));
    s.add("sg", SecurityGroup::new("faults-web", vpc.id()).ingress(Rule::tcp(443).cidr("10.30.0.0/16")));
    let table = s.add_with("table", Table::on_demand("faults-orders").hash_key("id", AttrType::S), keep_not());
    let logs = s.add("logs", LogGroup::new("/faults/app").retention_days(7));
    let policy = s.add("policy", Policy::new("faults-read", PolicyDocument::new().allow(["dynamodb:GetItem"], [table.arn()])));
    let role = s.add("role", Role::for_service("lambda.amazonaws.com").managed_policy(policy.arn()));
    s.add_with("repo", Repository::new("faults/app"), keep_not());
    s.add("cluster", Cluster::new("faults"));
    s.add(
        "task",
        TaskDefinition::new("faults-worker", 256, 512).container(Container::new("app", "busybox")).execution_role_arn(role.arn()),
    );
    s.add("fn", Function::new("faults-api").code(Code::binary(code)).role(role.arn()).env("TABLE", table.name()).log_group(logs.name()));
    s
}

/// Everything of each kind in the account, read straight from the emulator: kind -> names/ids. EC2 and IAM
/// hold objects of their own (the default VPC, the test role), so those are counted by the stack's tag.
async fn inventory(config: &aws_types::SdkConfig) -> anyhow::Result<BTreeMap<&'static str, Vec<String>>> {
    let mut out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let ours = |tags: &[aws_sdk_ec2::types::Tag]| tags.iter().any(|t| t.key() == Some("ferroform:stack") && t.value() == Some(STACK));
    let ec2 = aws_sdk_ec2::Client::new(config);
    out.insert(
        "vpc",
        ec2.describe_vpcs().send().await?.vpcs().iter().filter(|v| ours(v.tags())).filter_map(|v| v.vpc_id().map(str::to_string)).collect(),
    );
    out.insert(
        "subnet",
        ec2.describe_subnets()
            .send()
            .await?
            .subnets()
            .iter()
            .filter(|v| ours(v.tags()))
            .filter_map(|v| v.subnet_id().map(str::to_string))
            .collect(),
    );
    out.insert(
        "security group",
        ec2.describe_security_groups()
            .send()
            .await?
            .security_groups()
            .iter()
            .filter(|v| ours(v.tags()))
            .filter_map(|v| v.group_id().map(str::to_string))
            .collect(),
    );
    let iam = aws_sdk_iam::Client::new(config);
    let mut roles = Vec::new();
    for r in iam.list_roles().send().await?.roles() {
        let tags = iam.list_role_tags().role_name(r.role_name()).send().await?;
        if tags.tags().iter().any(|t| t.key() == "ferroform:stack" && t.value() == STACK) {
            roles.push(r.role_name().to_string());
        }
    }
    out.insert("role", roles);
    let local = aws_sdk_iam::types::PolicyScopeType::Local;
    out.insert(
        "policy",
        iam.list_policies().scope(local).send().await?.policies().iter().filter_map(|p| p.arn().map(str::to_string)).collect(),
    );
    out.insert("table", aws_sdk_dynamodb::Client::new(config).list_tables().send().await?.table_names().to_vec());
    let logs = aws_sdk_cloudwatchlogs::Client::new(config).describe_log_groups().send().await?;
    out.insert("log group", logs.log_groups().iter().filter_map(|g| g.log_group_name().map(str::to_string)).collect());
    let ecr = aws_sdk_ecr::Client::new(config).describe_repositories().send().await?;
    out.insert("repository", ecr.repositories().iter().filter_map(|r| r.repository_name().map(str::to_string)).collect());
    let ecs = aws_sdk_ecs::Client::new(config);
    // A deleted cluster stays listed as INACTIVE for a while (on AWS too): count the active ones.
    let arns = ecs.list_clusters().send().await?.cluster_arns().to_vec();
    let clusters =
        if arns.is_empty() { vec![] } else { ecs.describe_clusters().set_clusters(Some(arns)).send().await?.clusters().to_vec() };
    out.insert(
        "cluster",
        clusters.iter().filter(|c| c.status() == Some("ACTIVE")).filter_map(|c| c.cluster_arn().map(str::to_string)).collect(),
    );
    out.insert(
        "task definition",
        ecs.list_task_definitions().status(aws_sdk_ecs::types::TaskDefinitionStatus::Active).send().await?.task_definition_arns().to_vec(),
    );
    let lambda = aws_sdk_lambda::Client::new(config).list_functions().send().await?;
    out.insert("function", lambda.functions().iter().filter_map(|f| f.function_name().map(str::to_string)).collect());
    Ok(out)
}

#[tokio::test]
async fn apply_and_destroy_converge_through_faults_without_duplicates() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let faults = Faults { rate: 0.1, role_propagation: Some(Duration::from_secs(2)), seed: 2, ..Faults::flaky(0.1) };
    let proxy = FaultProxy::start(&h.account.endpoint, faults).await?;
    h.contexts.insert(Aws::from_config(h.account.config_via(proxy.endpoint())));
    // The smallest "binary" Lambda takes: the emulator never runs it.
    let code = h.dir.path().join("bootstrap");
    std::fs::write(&code, "#!/bin/sh\necho ok\n")?;
    let s = stack(&code);

    h.apply(&s).await.map_err(|e| anyhow::anyhow!("apply through faults {:?}: {e:#}", proxy.injected()))?;
    let injected = proxy.injected();
    eprintln!("apply: {} calls, faults injected {injected:?}", proxy.calls().len());
    // A call's draw follows the seed, its operation and the calls of that operation before it, so a seed
    // gives the same faults each run, whatever the order concurrent calls arrive in.
    assert!(proxy.random_injected() >= 2, "too few faults to prove anything: {injected:?}");
    assert!(injected.contains_key(ROLE_NOT_ASSUMABLE), "the Lambda create met a young role: {injected:?}");

    // Exactly one of each, the one in state.
    let found = inventory(&h.account.config).await?;
    let state = h.engine().state(STACK).await?;
    for (kind, items) in &found {
        let want = if *kind == "subnet" { 2 } else { 1 };
        assert_eq!(items.len(), want, "{kind}: {items:?}");
    }
    assert_eq!(state.resources.len(), s.resources().len());
    for (address, r) in &state.resources {
        assert!(r.id.is_some() && format!("{:?}", r.status) == "Ready", "{address}: {r:?}");
    }
    for (address, kind) in [("vpc", "vpc"), ("sg", "security group"), ("table", "table"), ("logs", "log group"), ("fn", "function")] {
        assert_eq!(found[kind], [h.id_of(&s, address).await?], "{address}");
    }
    proxy.set_faults(Faults::none());
    let plan = h.plan(&s).await?;
    assert!(!plan.has_changes(), "not converged:\n{}", plan.render(false));

    // The draws go on: the deletes are operations of their own.
    proxy.set_faults(Faults { seed: 2, ..Faults::flaky(0.1) });
    proxy.reset();
    h.destroy(&s).await.map_err(|e| anyhow::anyhow!("destroy through faults {:?}: {e:#}", proxy.injected()))?;
    let injected = proxy.injected();
    eprintln!("destroy: {} calls, faults injected {injected:?}", proxy.calls().len());
    assert!(proxy.random_injected() >= 2, "too few faults to prove anything: {injected:?}");
    let left: BTreeMap<_, _> = inventory(&h.account.config).await?.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(h.engine().state(STACK).await?.resources.is_empty());
    Ok(())
}

/// Calls carried out whose every answer is lost, the retry's too (a retry of a done call is answered
/// "exists" or "not found", and that answer is lost as well), are settled by a read. Apply: the last call
/// of a log group's create (its retention) and of a role's (attaching its policy) lose every answer; each
/// create is settled by the object its tags find, as desired, so apply finishes with one of each. Destroy:
/// every delete of the stack loses every answer; each is settled by a read that finds the object gone, so
/// destroy finishes and the account and state are empty. Terraform fails at both and leaves it to the next
/// run.
#[tokio::test]
async fn calls_whose_every_answer_is_lost_are_settled_by_a_read() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let lost_every_answer = |ops: &[&str]| Faults { only: ops.iter().map(|d| d.to_string()).collect(), ..Faults::lost_answers(1.0) };
    let last_of_creates = ["Logs_20140328.PutRetentionPolicy", "iam.AttachRolePolicy"];
    let proxy = FaultProxy::start(&h.account.endpoint, lost_every_answer(&last_of_creates)).await?;
    // Two attempts a call: the second is the retry whose answer is lost too, and keeps the backoff short.
    let retries = aws_config::retry::RetryConfig::standard().with_max_attempts(2);
    h.contexts.insert(Aws::from_config(h.account.config_via(proxy.endpoint()).to_builder().retry_config(retries).build()));
    let code = h.dir.path().join("bootstrap");
    std::fs::write(&code, "#!/bin/sh\necho ok\n")?;
    let s = stack(&code);
    h.apply(&s).await.map_err(|e| anyhow::anyhow!("apply with every answer of {last_of_creates:?} lost: {e:#}"))?;
    let lost: Vec<String> = proxy.faulted_calls().into_iter().map(|(op, _)| op).collect();
    assert_eq!(lost.iter().filter(|op| op.ends_with("PutRetentionPolicy")).count(), 2, "{lost:?}");
    assert_eq!(lost.iter().filter(|op| op.ends_with("AttachRolePolicy")).count(), 2, "{lost:?}");
    let found = inventory(&h.account.config).await?;
    for (address, kind) in [("logs", "log group"), ("role", "role")] {
        assert_eq!(found[kind], [h.id_of(&s, address).await?], "{address}");
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&h.account.config).describe_log_groups().send().await?;
    assert_eq!(logs.log_groups()[0].retention_in_days(), Some(7));
    let role = h.id_of(&s, "role").await?;
    let attached = aws_sdk_iam::Client::new(&h.account.config).list_attached_role_policies().role_name(&role).send().await?;
    let policy = h.id_of(&s, "policy").await?;
    assert_eq!(attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect::<Vec<_>>(), [policy.as_str()]);
    proxy.set_faults(Faults::none());
    let plan = h.plan(&s).await?;
    assert!(!plan.has_changes(), "not converged:\n{}", plan.render(false));

    // The one call of each type that deletes the object (detaching a role's policies and emptying a
    // policy's old versions keep their answers: a delete that stops before its last call is not done).
    let deletes = [
        "ec2.DeleteVpc",
        "ec2.DeleteSubnet",
        "ec2.DeleteSecurityGroup",
        "DynamoDB_20120810.DeleteTable",
        "Logs_20140328.DeleteLogGroup",
        "iam.DeletePolicy",
        "iam.DeleteRole",
        "AmazonEC2ContainerRegistry_V20150921.DeleteRepository",
        "AmazonEC2ContainerServiceV20141113.DeleteCluster",
        "AmazonEC2ContainerServiceV20141113.DeregisterTaskDefinition",
        "lambda.Delete/2015-03-31/functions/",
    ];
    proxy.reset();
    proxy.set_faults(lost_every_answer(&deletes));
    h.destroy(&s).await.map_err(|e| anyhow::anyhow!("destroy with every delete's answer lost: {e:#}"))?;
    let lost: BTreeSet<String> = proxy.faulted_calls().into_iter().map(|(op, _)| op).collect();
    for d in deletes {
        assert!(lost.iter().any(|op| op.contains(d)), "{d}'s answer was lost: {lost:?}");
    }
    let left: BTreeMap<_, _> = inventory(&h.account.config).await?.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(h.engine().state(STACK).await?.resources.is_empty());
    Ok(())
}

const LOST: &str = "lost-answers";

/// Every EC2 type whose create has no idempotency of its own, and a NAT gateway (client token).
fn network() -> Stack {
    let mut s = Stack::new(LOST);
    let vpc = s.add("vpc", Vpc::new("10.31.0.0/16"));
    let igw = s.add("igw", InternetGateway::new(vpc.id()));
    let a = s.add("subnet-a", Subnet::new(vpc.id(), "10.31.1.0/24").availability_zone("us-east-1a"));
    let b = s.add("subnet-b", Subnet::new(vpc.id(), "10.31.2.0/24").availability_zone("us-east-1b"));
    s.add("rt", RouteTable::new(vpc.id()).route(Route::to_gateway("0.0.0.0/0", igw.id())).subnet(a.id()).subnet(b.id()));
    s.add("sg", SecurityGroup::new("lost-web", vpc.id()).ingress(Rule::tcp(443).cidr("10.31.0.0/16")));
    let ip = s.add_with("ip", ElasticIp::new(), Options::new().depends_on(&igw));
    s.add("nat", NatGateway::new(a.id(), ip.id()));
    s
}

/// The stack's EC2 objects in the account, read straight from the emulator by their stack tag: address ->
/// ids (the `ferroform:address` tag), so a duplicate shows as a second id under one address.
async fn network_inventory(ec2: &aws_sdk_ec2::Client) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    use aws_sdk_ec2::types::Tag;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut put = |tags: &[Tag], id: Option<&str>| {
        let tag = |k: &str| tags.iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
        if let (Some(LOST), Some(address), Some(id)) = (tag("ferroform:stack").as_deref(), tag("ferroform:address"), id) {
            out.entry(address).or_default().push(id.to_string());
        }
    };
    for v in ec2.describe_vpcs().send().await?.vpcs() {
        put(v.tags(), v.vpc_id());
    }
    for v in ec2.describe_subnets().send().await?.subnets() {
        put(v.tags(), v.subnet_id());
    }
    for v in ec2.describe_internet_gateways().send().await?.internet_gateways() {
        put(v.tags(), v.internet_gateway_id());
    }
    for v in ec2.describe_route_tables().send().await?.route_tables() {
        put(v.tags(), v.route_table_id());
    }
    for v in ec2.describe_security_groups().send().await?.security_groups() {
        put(v.tags(), v.group_id());
    }
    for v in ec2.describe_addresses().send().await?.addresses() {
        put(v.tags(), v.allocation_id());
    }
    // A deleted NAT gateway stays listed as `deleted` for a while (on AWS too).
    for v in ec2.describe_nat_gateways().send().await?.nat_gateways() {
        if !v.state().is_some_and(|s| matches!(s.as_str().to_ascii_lowercase().as_str(), "deleted" | "deleting")) {
            put(v.tags(), v.nat_gateway_id());
        }
    }
    Ok(out)
}

/// Creates whose answer is lost after EC2 acted (the connection drops once the emulator has answered):
/// the SDK's retry would send them again and make a second VPC, subnet, gateway, table, group or address.
/// Through such faults on three mutating calls in ten, apply makes exactly one of each (read straight from
/// the emulator), the state names those ids, and destroy through the same faults leaves nothing.
#[tokio::test]
async fn creates_whose_answer_is_lost_make_one_of_each() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let proxy = FaultProxy::start(&h.account.endpoint, Faults { seed: 2, ..Faults::lost_answers(0.3) }).await?;
    h.contexts.insert(Aws::from_config(h.account.config_via(proxy.endpoint())));
    let ec2 = aws_sdk_ec2::Client::new(&h.account.config);
    let s = network();

    h.apply(&s).await.map_err(|e| anyhow::anyhow!("apply through lost answers {:?}: {e:#}", proxy.faulted_calls()))?;
    let faulted = proxy.faulted_calls();
    eprintln!("apply: {} calls, faults {faulted:?}", proxy.calls().len());
    assert!(faulted.iter().all(|(_, kind)| kind == DROP_AFTER_FORWARD), "{faulted:?}");
    // The seed is chosen so that creates of several types lose their answer (five here: a call's draw
    // follows the seed, its operation and the calls of that operation before it).
    const CREATES: &[&str] = &[
        "ec2.CreateVpc",
        "ec2.CreateSubnet",
        "ec2.CreateInternetGateway",
        "ec2.CreateRouteTable",
        "ec2.CreateSecurityGroup",
        "ec2.AllocateAddress",
        "ec2.CreateNatGateway",
    ];
    let creates: Vec<&str> = faulted.iter().map(|(op, _)| op.as_str()).filter(|op| CREATES.contains(op)).collect();
    assert!(creates.len() >= 3, "too few creates lost their answer to prove anything: {faulted:?}");

    let found = network_inventory(&ec2).await?;
    let state = h.engine().state(LOST).await?;
    assert_eq!(found.keys().collect::<Vec<_>>(), state.resources.keys().collect::<Vec<_>>(), "{found:?}");
    for (address, ids) in &found {
        assert_eq!(ids, &[h.id_of(&s, address).await?], "{address}: one object, the one in state");
    }
    proxy.set_faults(Faults::none());
    let plan = h.plan(&s).await?;
    assert!(!plan.has_changes(), "not converged:\n{}", plan.render(false));

    proxy.set_faults(Faults { seed: 2, ..Faults::lost_answers(0.3) });
    proxy.reset();
    h.destroy(&s).await.map_err(|e| anyhow::anyhow!("destroy through lost answers {:?}: {e:#}", proxy.faulted_calls()))?;
    eprintln!("destroy: {} calls, faults {:?}", proxy.calls().len(), proxy.faulted_calls());
    assert!(!proxy.faulted_calls().is_empty());
    let left = network_inventory(&ec2).await?;
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(h.engine().state(LOST).await?.resources.is_empty());
    Ok(())
}

const LOST_SERVICES: &str = "lost-services";

/// One of each non-EC2 type whose create is sent once ([`ferroform_aws::error::create_once`]), with
/// follow-up calls the SDK re-sends after a lost answer (an inline role policy, an attached policy, a
/// retention policy, a TTL). The service runs in a subnet and group made straight on the emulator.
fn services(code: &std::path::Path, subnet: &str, group: &str) -> Stack {
    use ferroform_aws::ecs::{Network, Service};
    use ferroform_aws::iam::OpenIdConnectProvider;
    let mut s = Stack::new(LOST_SERVICES);
    let keep_not = || Options::new().prevent_destroy(false);
    let table = s.add_with("table", Table::on_demand("lost-orders").hash_key("id", AttrType::S).ttl("expires"), keep_not());
    let logs = s.add("logs", LogGroup::new("/lost/app").retention_days(7));
    let policy = s.add("policy", Policy::new("lost-read", PolicyDocument::new().allow(["dynamodb:GetItem"], [table.arn()])));
    let role =
        s.add("role", Role::for_service("lambda.amazonaws.com").managed_policy(policy.arn()).allow(["logs:PutLogEvents"], [logs.arn()]));
    s.add("oidc", OpenIdConnectProvider::new("https://issuer.lost.example.com", ["app-1"]));
    s.add_with("repo", Repository::new("lost/app"), keep_not());
    let cluster = s.add("cluster", Cluster::new("lost"));
    let task = s.add(
        "task",
        TaskDefinition::new("lost-worker", 256, 512).container(Container::new("app", "busybox")).execution_role_arn(role.arn()),
    );
    s.add(
        "service",
        Service::new(
            "lost-web",
            cluster.arn(),
            task.arn(),
            Network::new([ferroform_core::Id::literal(subnet)], [ferroform_core::Id::literal(group)]),
        ),
    );
    s.add("fn", Function::new("lost-api").code(Code::binary(code)).role(role.arn()).env("TABLE", table.name()).log_group(logs.name()));
    s
}

/// The account's objects of the stack's kinds, read straight from the emulator (the account is the test's
/// own): kind -> ids, so a duplicate shows as a second id.
async fn services_inventory(config: &aws_types::SdkConfig) -> anyhow::Result<BTreeMap<&'static str, Vec<String>>> {
    let mut out = inventory(config).await?;
    // The EC2 kinds are the other test's; the subnet and group here are made outside the stack.
    for kind in ["vpc", "subnet", "security group"] {
        out.remove(kind);
    }
    let iam = aws_sdk_iam::Client::new(config);
    // The account holds roles of its own (the test role): count the stack's, by tag.
    let mut roles = Vec::new();
    for r in iam.list_roles().send().await?.roles() {
        let tags = iam.list_role_tags().role_name(r.role_name()).send().await?;
        if tags.tags().iter().any(|t| t.key() == "ferroform:stack" && t.value() == LOST_SERVICES) {
            roles.push(r.role_name().to_string());
        }
    }
    out.insert("role", roles);
    let providers = iam.list_open_id_connect_providers().send().await?;
    out.insert("oidc provider", providers.open_id_connect_provider_list().iter().filter_map(|p| p.arn().map(str::to_string)).collect());
    let ecs = aws_sdk_ecs::Client::new(config);
    let mut services = Vec::new();
    for cluster in &out["cluster"] {
        let arns = ecs.list_services().cluster(cluster).send().await?.service_arns().to_vec();
        if arns.is_empty() {
            continue;
        }
        let found = ecs.describe_services().cluster(cluster).set_services(Some(arns)).send().await?;
        services
            .extend(found.services().iter().filter(|v| v.status() == Some("ACTIVE")).filter_map(|v| v.service_arn().map(str::to_string)));
    }
    out.insert("service", services);
    Ok(out)
}

/// The same lost answers for IAM, Lambda, CloudWatch Logs, ECR, DynamoDB and ECS: each create is sent
/// without the SDK's retry and, after a lost answer, looked up before it is sent again (a task definition
/// registered twice would be a second revision, a role or table a name conflict); re-sent follow-ups
/// count as done. Exactly one of each, the one in state; a plan without faults is empty; destroy through
/// the same faults leaves nothing.
#[tokio::test]
async fn service_creates_whose_answer_is_lost_make_one_of_each() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    // Seed and rate chosen so that creates of several types lose their answer (seven here; asserted
    // below).
    let lost = || Faults { seed: 3, ..Faults::lost_answers(0.35) };
    let proxy = FaultProxy::start(&h.account.endpoint, lost()).await?;
    h.contexts.insert(Aws::from_config(h.account.config_via(proxy.endpoint())));
    let ec2 = aws_sdk_ec2::Client::new(&h.account.config);
    let vpc = ec2.create_vpc().cidr_block("10.32.0.0/16").send().await?.vpc.and_then(|v| v.vpc_id).context("no vpc id")?;
    let subnet = ec2.create_subnet().vpc_id(&vpc).cidr_block("10.32.1.0/24").send().await?;
    let subnet = subnet.subnet.and_then(|s| s.subnet_id).context("no subnet id")?;
    let group = ec2.create_security_group().group_name("lost-web").description("lost").vpc_id(&vpc).send().await?;
    let group = group.group_id.context("no group id")?;
    let code = h.dir.path().join("bootstrap");
    std::fs::write(&code, "#!/bin/sh\necho ok\n")?;
    let s = services(&code, &subnet, &group);

    h.apply(&s).await.map_err(|e| anyhow::anyhow!("apply through lost answers {:?}: {e:#}", proxy.faulted_calls()))?;
    let faulted = proxy.faulted_calls();
    eprintln!("apply: {} calls, faults {faulted:?}", proxy.calls().len());
    assert!(faulted.iter().all(|(_, kind)| kind == DROP_AFTER_FORWARD), "{faulted:?}");
    const CREATES: &[&str] = &[
        "iam.CreateRole",
        "iam.CreatePolicy",
        "iam.CreateOpenIDConnectProvider",
        "Logs_20140328.CreateLogGroup",
        "AmazonEC2ContainerRegistry_V20150921.CreateRepository",
        "DynamoDB_20120810.CreateTable",
        "AmazonEC2ContainerServiceV20141113.CreateCluster",
        "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition",
        "AmazonEC2ContainerServiceV20141113.CreateService",
        "lambda.Post/2015-03-31/functions",
    ];
    let creates: BTreeSet<&str> = faulted.iter().map(|(op, _)| op.as_str()).filter(|op| CREATES.contains(op)).collect();
    assert!(creates.len() >= 3, "too few kinds of create lost their answer to prove anything: {creates:?}");

    let found = services_inventory(&h.account.config).await?;
    for (kind, items) in &found {
        assert_eq!(items.len(), 1, "{kind}: {items:?}");
    }
    let state = h.engine().state(LOST_SERVICES).await?;
    assert_eq!(state.resources.len(), s.resources().len());
    for (address, kind) in [
        ("role", "role"),
        ("policy", "policy"),
        ("oidc", "oidc provider"),
        ("logs", "log group"),
        ("repo", "repository"),
        ("table", "table"),
        ("cluster", "cluster"),
        ("task", "task definition"),
        ("service", "service"),
        ("fn", "function"),
    ] {
        assert_eq!(found[kind], [h.id_of(&s, address).await?], "{address}: one object, the one in state");
    }
    proxy.set_faults(Faults::none());
    let plan = h.plan(&s).await?;
    assert!(!plan.has_changes(), "not converged:\n{}", plan.render(false));

    proxy.set_faults(lost());
    proxy.reset();
    h.destroy(&s).await.map_err(|e| anyhow::anyhow!("destroy through lost answers {:?}: {e:#}", proxy.faulted_calls()))?;
    eprintln!("destroy: {} calls, faults {:?}", proxy.calls().len(), proxy.faulted_calls());
    assert!(!proxy.faulted_calls().is_empty());
    let left: BTreeMap<_, _> = services_inventory(&h.account.config).await?.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(h.engine().state(LOST_SERVICES).await?.resources.is_empty());
    Ok(())
}
