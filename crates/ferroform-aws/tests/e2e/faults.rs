//! Apply and destroy through a proxy that throttles, fails (500/503) or drops about one call in ten (fixed
//! seed), and refuses Lambda a role younger than two seconds as IAM's eventual consistency does. The run
//! converges; the account, read straight from the emulator, holds exactly one of each resource (no
//! duplicate from a retried create) and the state has them all; the destroy leaves nothing.

use ferroform_aws::dynamodb::{AttrType, Table};
use ferroform_aws::ec2::{Rule, SecurityGroup, Subnet, Vpc};
use ferroform_aws::ecr::Repository;
use ferroform_aws::ecs::{Cluster, Container, TaskDefinition};
use ferroform_aws::iam::{Policy, PolicyDocument, Role};
use ferroform_aws::lambda::{Code, Function};
use ferroform_aws::logs::LogGroup;
use ferroform_aws::Aws;
use ferroform_core::{Options, Stack};
use ferroform_testkit::proxy::{FaultProxy, Faults, ROLE_NOT_ASSUMABLE};
use ferroform_testkit::Harness;
use std::collections::BTreeMap;
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
    let faults = Faults { rate: 0.1, role_propagation: Some(Duration::from_secs(2)), seed: 106, ..Faults::flaky(0.1) };
    let proxy = FaultProxy::start(&h.account.endpoint, faults).await?;
    h.contexts.insert(Aws::from_config(h.account.config_via(proxy.endpoint())));
    // The smallest "binary" Lambda takes: the emulator never runs it.
    let code = h.dir.path().join("bootstrap");
    std::fs::write(&code, "#!/bin/sh\necho ok\n")?;
    let s = stack(&code);

    h.apply(&s).await.map_err(|e| anyhow::anyhow!("apply through faults {:?}: {e:#}", proxy.injected()))?;
    let injected = proxy.injected();
    eprintln!("apply: {} calls, faults injected {injected:?}", proxy.calls().len());
    // The draws are sequential, so a seed gives about the same faults each run, whatever the call order.
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

    // The draws go on from the seed given at start.
    proxy.set_faults(Faults::flaky(0.1));
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
