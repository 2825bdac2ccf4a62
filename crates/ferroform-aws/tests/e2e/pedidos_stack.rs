//! The pedidos stack (stacks/pedidos) through answers lost after AWS acted, and non-idempotent updates
//! (a policy's new version, a task definition's new revision) whose answer is lost: exactly one of each
//! object, read straight from the emulator by kind (not by the engine's report), the ones in state.

use ferroform_aws::ecs::{Container, TaskDefinition};
use ferroform_aws::iam::{Policy, PolicyDocument};
use ferroform_aws::lambda::Code;
use ferroform_aws::Aws;
use ferroform_core::{Stack, State};
use ferroform_testkit::proxy::{is_mutating, FaultProxy, Faults, DROP_AFTER_FORWARD};
use ferroform_testkit::Harness;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// pedidos as its example declares it, under `stack`'s name, with `code` as the API's binary (the
/// emulator never runs it).
pub fn build(s: &mut Stack, code: &Path) -> anyhow::Result<()> {
    let mut cfg = pedidos::stack::Config::new(Code::binary(code));
    cfg.zones = vec!["us-east-1a".into(), "us-east-1b".into()];
    pedidos::stack::build(s, &cfg)
}

/// A file standing in for the API's binary.
pub fn fake_binary(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let code = dir.join("bootstrap");
    std::fs::write(&code, "#!/bin/sh\necho ok\n")?;
    Ok(code)
}

/// The types pedidos is made of: [`inventory`] reads every one of them.
pub const TYPES: &[&str] = &[
    "aws_vpc",
    "aws_subnet",
    "aws_internet_gateway",
    "aws_route_table",
    "aws_eip",
    "aws_nat_gateway",
    "aws_vpc_endpoint",
    "aws_security_group",
    "aws_iam_role",
    "aws_iam_policy",
    "aws_dynamodb_table",
    "aws_ecr_repository",
    "aws_cloudwatch_log_group",
    "aws_ecs_cluster",
    "aws_ecs_task_definition",
    "aws_lambda_function",
    "aws_lambda_permission",
    "aws_apigatewayv2_api",
    "aws_apigatewayv2_integration",
    "aws_apigatewayv2_route",
    "aws_apigatewayv2_stage",
    "aws_sns_topic",
    "aws_sns_topic_subscription",
    "aws_cloudwatch_log_metric_filter",
    "aws_cloudwatch_metric_alarm",
    "aws_cloudwatch_dashboard",
];

/// Every object of [`TYPES`] in the account, read straight from the emulator, as ids in the form state
/// keeps them: type -> sorted ids. The account is the test's own, so every object of a kind is the stack's,
/// but for what the account holds of its own (the default VPC and its parts, the test's role): EC2 objects
/// and roles are counted by the stack's tag. `config` must reach CloudWatch through a CBOR shim.
pub async fn inventory(config: &aws_types::SdkConfig, stack: &str) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    use aws_sdk_ec2::types::Tag;
    let mut found: BTreeMap<String, Vec<String>> = TYPES.iter().map(|t| (t.to_string(), Vec::new())).collect();
    let mut add = |t: &str, id: Option<&str>| found.entry(t.to_string()).or_default().push(id.unwrap_or_default().to_string());
    let ours = |tags: &[Tag]| tags.iter().any(|t| t.key() == Some("ferroform:stack") && t.value() == Some(stack));
    // Deleted NAT gateways and endpoints stay listed for a while (on AWS too).
    let gone = |state: Option<&str>| state.is_some_and(|s| matches!(s.to_ascii_lowercase().as_str(), "deleted" | "deleting"));
    let ec2 = aws_sdk_ec2::Client::new(config);
    for v in ec2.describe_vpcs().send().await?.vpcs().iter().filter(|v| ours(v.tags())) {
        add("aws_vpc", v.vpc_id());
    }
    for v in ec2.describe_subnets().send().await?.subnets().iter().filter(|v| ours(v.tags())) {
        add("aws_subnet", v.subnet_id());
    }
    for v in ec2.describe_internet_gateways().send().await?.internet_gateways().iter().filter(|v| ours(v.tags())) {
        add("aws_internet_gateway", v.internet_gateway_id());
    }
    for v in ec2.describe_route_tables().send().await?.route_tables().iter().filter(|v| ours(v.tags())) {
        add("aws_route_table", v.route_table_id());
    }
    for v in ec2.describe_addresses().send().await?.addresses().iter().filter(|v| ours(v.tags())) {
        add("aws_eip", v.allocation_id());
    }
    for v in ec2.describe_nat_gateways().send().await?.nat_gateways().iter().filter(|v| ours(v.tags())) {
        if !gone(v.state().map(|s| s.as_str())) {
            add("aws_nat_gateway", v.nat_gateway_id());
        }
    }
    for v in ec2.describe_vpc_endpoints().send().await?.vpc_endpoints().iter().filter(|v| ours(v.tags())) {
        if !gone(v.state().map(|s| s.as_str())) {
            add("aws_vpc_endpoint", v.vpc_endpoint_id());
        }
    }
    for v in ec2.describe_security_groups().send().await?.security_groups().iter().filter(|v| ours(v.tags())) {
        add("aws_security_group", v.group_id());
    }
    let iam = aws_sdk_iam::Client::new(config);
    for r in iam.list_roles().send().await?.roles() {
        let tags = iam.list_role_tags().role_name(r.role_name()).send().await?;
        if tags.tags().iter().any(|t| t.key() == "ferroform:stack" && t.value() == stack) {
            add("aws_iam_role", Some(r.role_name()));
        }
    }
    for p in iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).send().await?.policies() {
        add("aws_iam_policy", p.arn());
    }
    for t in aws_sdk_dynamodb::Client::new(config).list_tables().send().await?.table_names() {
        add("aws_dynamodb_table", Some(t));
    }
    for r in aws_sdk_ecr::Client::new(config).describe_repositories().send().await?.repositories() {
        add("aws_ecr_repository", r.repository_name());
    }
    for g in aws_sdk_cloudwatchlogs::Client::new(config).describe_log_groups().send().await?.log_groups() {
        add("aws_cloudwatch_log_group", g.log_group_name());
    }
    let ecs = aws_sdk_ecs::Client::new(config);
    // A deleted cluster stays listed as INACTIVE for a while (on AWS too): the active ones.
    let arns = ecs.list_clusters().send().await?.cluster_arns().to_vec();
    if !arns.is_empty() {
        for c in ecs.describe_clusters().set_clusters(Some(arns)).send().await?.clusters() {
            if c.status() == Some("ACTIVE") {
                add("aws_ecs_cluster", c.cluster_arn());
            }
        }
    }
    let active = aws_sdk_ecs::types::TaskDefinitionStatus::Active;
    for arn in ecs.list_task_definitions().status(active).send().await?.task_definition_arns() {
        add("aws_ecs_task_definition", Some(arn));
    }
    let lambda = aws_sdk_lambda::Client::new(config);
    for f in lambda.list_functions().send().await?.functions() {
        let name = f.function_name().unwrap_or_default().to_string();
        add("aws_lambda_function", Some(&name));
        let policy = match lambda.get_policy().function_name(&name).send().await {
            Ok(p) => p.policy.unwrap_or_default(),
            Err(e) if aws_sdk_lambda::error::ProvideErrorMetadata::code(&e) == Some("ResourceNotFoundException") => String::new(),
            Err(e) => return Err(e.into()),
        };
        if !policy.is_empty() {
            let doc: serde_json::Value = serde_json::from_str(&policy)?;
            for st in doc["Statement"].as_array().cloned().unwrap_or_default() {
                add("aws_lambda_permission", Some(&format!("{name}/{}", st["Sid"].as_str().unwrap_or_default())));
            }
        }
    }
    let apigw = aws_sdk_apigatewayv2::Client::new(config);
    for api in apigw.get_apis().send().await?.items() {
        let id = api.api_id().unwrap_or_default().to_string();
        add("aws_apigatewayv2_api", Some(&id));
        for i in apigw.get_integrations().api_id(&id).send().await?.items() {
            add("aws_apigatewayv2_integration", Some(&format!("{id}/{}", i.integration_id().unwrap_or_default())));
        }
        for r in apigw.get_routes().api_id(&id).send().await?.items() {
            add("aws_apigatewayv2_route", Some(&format!("{id}/{}", r.route_id().unwrap_or_default())));
        }
        for st in apigw.get_stages().api_id(&id).send().await?.items() {
            add("aws_apigatewayv2_stage", Some(&format!("{id}/{}", st.stage_name().unwrap_or_default())));
        }
    }
    let sns = aws_sdk_sns::Client::new(config);
    for t in sns.list_topics().send().await?.topics() {
        add("aws_sns_topic", t.topic_arn());
    }
    for sub in sns.list_subscriptions().send().await?.subscriptions() {
        add("aws_sns_topic_subscription", sub.subscription_arn());
    }
    // moto 5.2.5 keeps a copy of a metric filter per put (see logs::MetricFilter): one per name.
    let mut filters = BTreeSet::new();
    for f in aws_sdk_cloudwatchlogs::Client::new(config).describe_metric_filters().send().await?.metric_filters() {
        filters.insert(format!("{}:{}", f.log_group_name().unwrap_or_default(), f.filter_name().unwrap_or_default()));
    }
    for f in &filters {
        add("aws_cloudwatch_log_metric_filter", Some(f));
    }
    let cw = aws_sdk_cloudwatch::Client::new(config);
    for a in cw.describe_alarms().send().await?.metric_alarms() {
        add("aws_cloudwatch_metric_alarm", a.alarm_name());
    }
    for d in cw.list_dashboards().send().await?.dashboard_entries() {
        add("aws_cloudwatch_dashboard", d.dashboard_name());
    }
    for ids in found.values_mut() {
        ids.sort();
    }
    Ok(found)
}

/// The state's ids by type (of [`TYPES`]), sorted; every address Ready with an id, no deposed object left,
/// and no type the inventory does not read.
pub fn state_ids(state: &State, what: &str) -> BTreeMap<String, Vec<String>> {
    let mut ids: BTreeMap<String, Vec<String>> = TYPES.iter().map(|t| (t.to_string(), Vec::new())).collect();
    for (address, r) in &state.resources {
        assert_eq!(format!("{:?}", r.status), "Ready", "{what}: {address} is left {:?}", r.status);
        assert!(TYPES.contains(&r.type_name.as_str()), "{what}: {address} is a {}, which the inventory does not read", r.type_name);
        ids.entry(r.type_name.clone()).or_default().push(r.id.clone().unwrap_or_else(|| panic!("{what}: {address} has no id")));
    }
    for v in ids.values_mut() {
        v.sort();
    }
    assert!(state.deposed.is_empty(), "{what}: deposed objects left: {:?}", state.deposed);
    ids
}

/// The account holds exactly what the state names, one object per address of `s` (by kind, so a duplicate
/// or an orphan shows as an id the state does not hold).
pub async fn check_exactly_the_state(h: &Harness, config: &aws_types::SdkConfig, s: &Stack, what: &str) -> anyhow::Result<()> {
    let state = h.engine().state(s.name()).await?;
    let want = state_ids(&state, what);
    let addresses: BTreeSet<&String> = state.resources.keys().collect();
    let declared: BTreeSet<&String> = s.resources().iter().map(|r| &r.address).collect();
    assert_eq!(addresses, declared, "{what}: the state's addresses (left) vs the stack's (right)");
    let found = inventory(config, s.name()).await?;
    assert_eq!(found, want, "{what}: the account (left) vs the state (right)");
    Ok(())
}

/// Every create of pedidos whose answer may be lost, as the proxy names the call.
fn create_kind(op: &str) -> Option<&'static str> {
    const EXACT: &[(&str, &str)] = &[
        ("ec2.CreateVpc", "vpc"),
        ("ec2.CreateSubnet", "subnet"),
        ("ec2.CreateInternetGateway", "internet gateway"),
        ("ec2.CreateRouteTable", "route table"),
        ("ec2.AllocateAddress", "address"),
        ("ec2.CreateNatGateway", "nat gateway"),
        ("ec2.CreateVpcEndpoint", "endpoint"),
        ("ec2.CreateSecurityGroup", "security group"),
        ("iam.CreateRole", "role"),
        ("DynamoDB_20120810.CreateTable", "table"),
        ("AmazonEC2ContainerRegistry_V20150921.CreateRepository", "repository"),
        ("Logs_20140328.CreateLogGroup", "log group"),
        ("AmazonEC2ContainerServiceV20141113.CreateCluster", "cluster"),
        ("AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", "task definition"),
        ("lambda.Post/2015-03-31/functions", "function"),
        ("apigateway.Post/v2/apis", "api"),
    ];
    if let Some((_, k)) = EXACT.iter().find(|(o, _)| *o == op) {
        return Some(k);
    }
    if let Some(path) = op.strip_prefix("apigateway.Post/v2/apis/") {
        return match path.rsplit('/').next() {
            Some("integrations") => Some("integration"),
            Some("routes") => Some("route"),
            Some("stages") => Some("stage"),
            _ => None,
        };
    }
    op.strip_prefix("lambda.Post/2015-03-31/functions/").filter(|p| p.ends_with("/policy")).map(|_| "permission")
}

/// pedidos applied through answers lost after the service acted (a quarter of the mutating calls, fixed
/// seed): every non-idempotent create is sent once and looked for before it is sent again, so the account
/// holds exactly one of each object (one API, five integrations alike but for their ids, five routes, one
/// stage, five permissions, the roles, table, function, cluster, one task definition revision, the
/// network), each the one in state; a plan without faults says no changes; destroy through the same faults
/// leaves nothing.
#[tokio::test]
async fn pedidos_through_lost_answers_makes_one_of_each() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // Which calls lose their answer follows the seed, each call's operation and the calls of that
    // operation before it, not the order concurrent calls arrive in: seed 15 loses the answer of creates of
    // nine kinds, four of them API Gateway's and Lambda's. Should a change of the stack's calls make a draw
    // prove too little, it is made again with the next seed, in a fresh account.
    let (h, proxy, seen, s, lost, _shim) = 'draw: {
        for seed in [15, 16, 14] {
            let lost = move || Faults { seed, ..Faults::lost_answers(0.25) };
            let h = Harness::new().await?;
            // Faults in front of the CloudWatch shim, so the monitoring's calls lose answers too.
            let shim = ferroform_testkit::cbor::CborShim::start(&h.account.endpoint).await?;
            let proxy = FaultProxy::start(shim.endpoint(), lost()).await?;
            // Ten attempts a call, not the default five: with a quarter of the answers lost, five attempts
            // all lose theirs for one call in 1,024, about one run in five over this stack's ~250 mutating
            // calls, and a call that fails after its retries is another test's subject (the CI run of
            // 58b393d failed so, on a DeleteSubnet). Ten lose all for one call in a million.
            let retries = aws_config::retry::RetryConfig::standard().with_max_attempts(10);
            let config = h.account.config_via(proxy.endpoint()).to_builder().retry_config(retries).build();
            h.contexts.insert(Aws::from_config(config));
            let seen = h.account.config_via(shim.endpoint());
            let code = fake_binary(h.dir.path())?;
            let mut s = Stack::new("pedidos-lost");
            build(&mut s, &code)?;

            h.apply(&s).await.map_err(|e| anyhow::anyhow!("apply through lost answers {:?}: {e:#}", proxy.faulted_calls()))?;
            let faulted = proxy.faulted_calls();
            eprintln!("apply (seed {seed}): {} calls, {} lost answers: {faulted:?}", proxy.calls().len(), faulted.len());
            assert!(faulted.iter().all(|(_, kind)| kind == DROP_AFTER_FORWARD), "{faulted:?}");
            let kinds: BTreeSet<&str> = faulted.iter().filter_map(|(op, _)| create_kind(op)).collect();
            eprintln!("creates whose answer was lost: {kinds:?}");
            let api_gateway = kinds.iter().any(|k| ["api", "integration", "route", "stage", "permission"].contains(k));
            if kinds.len() >= 5 && api_gateway {
                break 'draw (h, proxy, seen, s, lost, shim);
            }
            eprintln!("seed {seed}: too few kinds of create, or no API Gateway create, lost their answer; next seed");
        }
        anyhow::bail!("three seeds hit too few kinds of create to prove anything");
    };
    check_exactly_the_state(&h, &seen, &s, "apply through lost answers").await?;
    let found = inventory(&seen, s.name()).await?;
    for (kind, n) in [("aws_apigatewayv2_api", 1), ("aws_apigatewayv2_integration", 5), ("aws_apigatewayv2_route", 5)] {
        assert_eq!(found[kind].len(), n, "{kind}: {:?}", found[kind]);
    }
    for (kind, n) in [("aws_apigatewayv2_stage", 1), ("aws_lambda_permission", 5), ("aws_ecs_task_definition", 1)] {
        assert_eq!(found[kind].len(), n, "{kind}: {:?}", found[kind]);
    }
    proxy.set_faults(Faults::none());
    let plan = h.plan(&s).await?;
    assert!(!plan.has_changes(), "not converged:\n{}", plan.render(false));

    proxy.set_faults(lost());
    proxy.reset();
    h.destroy(&s).await.map_err(|e| anyhow::anyhow!("destroy through lost answers {:?}: {e:#}", proxy.faulted_calls()))?;
    eprintln!("destroy: {} calls, faults {:?}", proxy.calls().len(), proxy.faulted_calls());
    let left: BTreeMap<_, _> = inventory(&seen, s.name()).await?.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(h.engine().state(s.name()).await?.resources.is_empty());
    eprintln!("pedidos_through_lost_answers_makes_one_of_each: {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

const UPDATES: &str = "lost-updates";

fn document(version: usize) -> PolicyDocument {
    PolicyDocument::new().allow(["dynamodb:GetItem"], [format!("arn:aws:dynamodb:us-east-1:123456789012:table/orders-{version}")])
}

fn updates(version: usize, image: &str) -> Stack {
    let mut s = Stack::new(UPDATES);
    s.add("policy", Policy::new("lost-updates", document(version)));
    s.add("task", TaskDefinition::new("lost-updates", 256, 512).container(Container::new("app", image)));
    s
}

/// Loses the answer of the `n`-th call named `op` (counted from now), and of no other call.
fn lose_nth(proxy: &Arc<FaultProxy>, op: &'static str, n: usize) {
    let (seen, weak) = (Arc::new(AtomicUsize::new(0)), Arc::downgrade(proxy));
    proxy.on_call(move |_, call| {
        if !is_mutating(call) {
            return;
        }
        let hit = call == op && seen.fetch_add(1, Ordering::SeqCst) + 1 == n;
        if let Some(p) = weak.upgrade() {
            // Set for this call, which reads the faults after this hook (the update's mutating calls are
            // one after another, so no other call reads them meanwhile).
            p.set_faults(if hit { Faults::lost_answers(1.0) } else { Faults::none() });
        }
    });
}

/// A policy's new version and a task definition's new revision, each sent once and its answer lost:
/// re-sent blindly, IAM would make a second version (and use up the five) and ECS a second revision. The
/// policy is at IAM's five-version limit, so its update first deletes the oldest version (the create that
/// meets the limit keeps its answer; the one after the delete loses it). Exactly one new version, the
/// default, with the new document; exactly one new revision, the one in state, the old one deregistered.
#[tokio::test]
async fn updates_whose_answer_is_lost_make_one_version_and_one_revision() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let h = Harness::new().await?;
    let proxy = Arc::new(FaultProxy::start(&h.account.endpoint, Faults::none()).await?);
    h.contexts.insert(Aws::from_config(h.account.config_via(proxy.endpoint())));
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let ecs = aws_sdk_ecs::Client::new(&h.account.config);
    // Five versions: v1 by the create, v2..v5 by updates.
    for version in 1..=5 {
        h.apply(&updates(version, "busybox:1")).await?;
    }
    let arn = h.id_of(&updates(5, "busybox:1"), "policy").await?;
    assert_eq!(iam.list_policy_versions().policy_arn(&arn).send().await?.versions().len(), 5);

    // The policy: CreatePolicyVersion meets the limit (answered), DeletePolicyVersion, CreatePolicyVersion
    // (answer lost).
    lose_nth(&proxy, "iam.CreatePolicyVersion", 2);
    h.apply(&updates(6, "busybox:1")).await.map_err(|e| anyhow::anyhow!("policy update: {e:#}"))?;
    let faulted = proxy.faulted_calls();
    assert_eq!(faulted, [("iam.CreatePolicyVersion".to_string(), DROP_AFTER_FORWARD.to_string())], "{faulted:?}");
    let versions = iam.list_policy_versions().policy_arn(&arn).send().await?;
    assert_eq!(versions.versions().len(), 5, "{versions:?}");
    let mut holding_new = Vec::new();
    for v in versions.versions() {
        let vid = v.version_id().unwrap_or_default();
        let got = iam.get_policy_version().policy_arn(&arn).version_id(vid).send().await?;
        let text = got.policy_version().and_then(|v| v.document()).unwrap_or_default().to_string();
        let doc = PolicyDocument::parse_aws(&text).map_err(anyhow::Error::msg)?;
        if doc.equivalent(&document(6)) {
            holding_new.push((vid.to_string(), v.is_default_version()));
        }
    }
    assert_eq!(holding_new.len(), 1, "one version holds the new document: {holding_new:?}");
    assert!(holding_new[0].1, "and it is the default: {holding_new:?}");

    // The task definition: a new image is a new revision (a replacement), RegisterTaskDefinition's answer
    // lost.
    proxy.reset();
    lose_nth(&proxy, "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", 1);
    let s = updates(6, "busybox:2");
    h.apply(&s).await.map_err(|e| anyhow::anyhow!("task definition update: {e:#}"))?;
    let faulted = proxy.faulted_calls();
    assert_eq!(
        faulted,
        [("AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition".to_string(), DROP_AFTER_FORWARD.to_string())],
        "{faulted:?}"
    );
    proxy.on_call(|_, _| {});
    proxy.set_faults(Faults::none());
    let active = aws_sdk_ecs::types::TaskDefinitionStatus::Active;
    let arns = ecs.list_task_definitions().family_prefix("lost-updates").status(active).send().await?.task_definition_arns().to_vec();
    let td = h.id_of(&s, "task").await?;
    assert_eq!(arns, std::slice::from_ref(&td), "one active revision, the one in state");
    assert!(td.ends_with(":2"), "revision 2 (the first registered again would be 3): {td}");
    assert!(ecs.describe_task_definition().task_definition("lost-updates:3").send().await.is_err(), "no third revision");
    let image = ecs.describe_task_definition().task_definition(&td).send().await?;
    let image = image.task_definition().and_then(|t| t.container_definitions().first()).and_then(|c| c.image()).map(str::to_string);
    assert_eq!(image.as_deref(), Some("busybox:2"));

    let plan = h.plan(&s).await?;
    assert!(!plan.has_changes(), "not converged:\n{}", plan.render(false));
    h.destroy(&s).await?;
    eprintln!("updates_whose_answer_is_lost_make_one_version_and_one_revision: {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The read-only plan role `components::github_deploy_role` makes (state read access plus a read-only policy,
/// AWS's ReadOnlyAccess by default in examples/bootstrap.rs) is enough for `plan`: a plan of the deployed
/// pedidos stack makes only read calls (Get, List, Describe, BatchGet, and STS's GetCallerIdentity), every one
/// of them inside ReadOnlyAccess. The emulator does not enforce IAM, so this reads what the plan sends.
#[tokio::test]
async fn a_pedidos_plan_makes_read_calls_only() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let shim = ferroform_testkit::cbor::CborShim::start(&h.account.endpoint).await?;
    let aws = Aws::from_config(h.account.config_via(shim.endpoint()));
    let calls = aws.calls().clone();
    h.contexts.insert(aws);
    let code = fake_binary(h.dir.path())?;
    let mut s = Stack::new("pedidos-plan-role");
    build(&mut s, &code)?;
    h.apply(&s).await?;
    calls.reset();
    assert!(!h.plan(&s).await?.has_changes());
    let made = calls.snapshot();
    assert!(!made.is_empty());
    let writes: Vec<&String> = made
        .keys()
        .filter(|k| {
            let op = k.rsplit(':').next().unwrap_or_default();
            !["Get", "List", "Describe", "BatchGet"].iter().any(|p| op.starts_with(p))
        })
        .collect();
    assert!(writes.is_empty(), "a plan must only read, so the plan role's read-only policy covers it: {writes:?}");
    Ok(())
}
