//! The pedidos stack end to end on the emulator: apply -> independent SDK reads confirm the wiring (routes
//! to the function, the invoke permission scoped to this API, least-privilege roles, the Fargate task, private
//! subnets with a DynamoDB endpoint) -> a second plan has no changes -> destroy -> nothing of it is left.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use aws_config::SdkConfig;
use aws_sdk_ec2::types::Filter;
use aws_sdk_ecs::types::{Compatibility, NetworkMode, TaskDefinitionStatus};
use ferroform::aws::lambda::Code;
use ferroform::aws::Aws;
use ferroform::Stack;
use ferroform_testkit::cbor::CborShim;
use ferroform_testkit::proxy::{FaultProxy, Faults, ROLE_NOT_ASSUMABLE};
use ferroform_testkit::Harness;
use pedidos::stack::{build, Config, API_TABLE_ACTIONS, ROUTES, WORKER_CONTAINER, WORKER_TABLE_ACTIONS};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The stack as the example declares it, with the API's debug binary (no release build in tests: the
/// emulator never runs it).
fn declared() -> Stack {
    declared_with(&[])
}

/// The engine's AWS context for `h`, with a shim in front of `upstream` kept alive by the caller: the
/// monitoring's CloudWatch calls are CBOR, which the emulator does not speak (other calls pass through).
async fn via_shim(h: &Harness, upstream: &str) -> CborShim {
    let shim = CborShim::start(upstream).await.unwrap();
    h.contexts.insert(Aws::from_config(h.account.config_via(shim.endpoint())));
    shim
}

fn set<I: IntoIterator<Item = S>, S: ToString>(items: I) -> BTreeSet<String> {
    items.into_iter().map(|s| s.to_string()).collect()
}

/// IAM returns policy documents URL-encoded (RFC 3986); the emulator sometimes does not.
fn policy_json(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    serde_json::from_slice(&out).unwrap_or_else(|e| panic!("not a policy document ({e}): {text}"))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// Every Allow statement of a role's inline policies, as action -> resources (no managed policies).
async fn grants(iam: &aws_sdk_iam::Client, role_arn: &str) -> BTreeMap<String, BTreeSet<String>> {
    let role = role_arn.rsplit('/').next().unwrap();
    let attached = iam.list_attached_role_policies().role_name(role).send().await.unwrap();
    assert!(attached.attached_policies().is_empty(), "{role} has managed policies: {:?}", attached.attached_policies());
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in iam.list_role_policies().role_name(role).send().await.unwrap().policy_names() {
        let doc = iam.get_role_policy().role_name(role).policy_name(name).send().await.unwrap();
        let doc = policy_json(doc.policy_document());
        for st in doc["Statement"].as_array().unwrap() {
            assert_eq!(st["Effect"], "Allow", "{st}");
            for action in strings(&st["Action"]) {
                out.entry(action).or_default().extend(strings(&st["Resource"]));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn pedidos_deploys_wired_with_least_privilege_and_destroys_to_nothing() {
    let h = Harness::new().await.unwrap();
    let _shim = via_shim(&h, &h.account.endpoint).await;
    let config = &h.account.config;
    let (lambda, apigw, iam) =
        (aws_sdk_lambda::Client::new(config), aws_sdk_apigatewayv2::Client::new(config), aws_sdk_iam::Client::new(config));
    let (ecs, ec2, ddb) = (aws_sdk_ecs::Client::new(config), aws_sdk_ec2::Client::new(config), aws_sdk_dynamodb::Client::new(config));
    let (ecr, logs) = (aws_sdk_ecr::Client::new(config), aws_sdk_cloudwatchlogs::Client::new(config));

    let stack = declared();
    let state = h.apply(&stack).await.unwrap();
    let output =
        |name: &str| state.outputs.get(name).and_then(|o| o.value.as_str().map(String::from)).unwrap_or_else(|| panic!("no output {name}"));

    // The table.
    let table = ddb.describe_table().table_name(output("table_name")).send().await.unwrap().table.unwrap();
    let table_arn = table.table_arn().unwrap().to_string();
    assert_eq!(table.key_schema()[0].attribute_name(), "id");

    // The worker's task definition: Fargate, awsvpc, both roles, the image from the stack's repository.
    let repo = ecr.describe_repositories().repository_names("pedidos-worker").send().await.unwrap();
    let repository_url = repo.repositories()[0].repository_uri().unwrap().to_string();
    assert_eq!(output("repository_url"), repository_url);
    let function = lambda.get_function().function_name("pedidos-api").send().await.unwrap();
    let fconf = function.configuration().unwrap();
    let env = fconf.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    let td_arn = &env["TASK_DEFINITION_ARN"];
    let td = ecs.describe_task_definition().task_definition(td_arn).send().await.unwrap().task_definition.unwrap();
    assert_eq!(td.task_definition_arn(), Some(td_arn.as_str()));
    assert_eq!(td.family(), Some("pedidos-worker"));
    assert!(td.requires_compatibilities().contains(&Compatibility::Fargate), "{td:?}");
    assert_eq!(td.network_mode(), Some(&NetworkMode::Awsvpc));
    let execution_role = td.execution_role_arn().expect("an execution role").to_string();
    let task_role = td.task_role_arn().expect("a task role").to_string();
    assert_ne!(execution_role, task_role);
    let container = &td.container_definitions()[0];
    assert_eq!(container.name(), Some(WORKER_CONTAINER));
    assert_eq!(container.image(), Some(format!("{repository_url}:v1").as_str()));
    let table_env = container.environment().iter().find(|kv| kv.name() == Some("TABLE_NAME")).and_then(|kv| kv.value());
    assert_eq!(table_env, table.table_name());
    let log_options = container.log_configuration().unwrap().options().unwrap();
    assert_eq!(log_options.get("awslogs-group").map(String::as_str), Some("/ecs/pedidos-worker"));
    let cluster = ecs.describe_clusters().clusters(&env["CLUSTER_ARN"]).send().await.unwrap();
    assert_eq!(cluster.clusters()[0].status(), Some("ACTIVE"));
    assert_eq!(output("cluster_arn"), env["CLUSTER_ARN"]);

    // The function: the environment `pedidos-api` reads, its own log group.
    assert_eq!(env["TABLE_NAME"], output("table_name"));
    assert_eq!(env["CONTAINER_NAME"], WORKER_CONTAINER);
    assert_eq!(env["ASSIGN_PUBLIC_IP"], "DISABLED");
    let subnets: Vec<String> = env["SUBNETS"].split(',').map(String::from).collect();
    assert_eq!(subnets.len(), 2, "{subnets:?}");
    let sg = ec2.describe_security_groups().group_ids(&env["SECURITY_GROUPS"]).send().await.unwrap();
    let sg = &sg.security_groups()[0];
    assert!(sg.ip_permissions().is_empty(), "the tasks' security group lets nothing in: {sg:?}");
    let fn_logs = logs.describe_log_groups().log_group_name_prefix("/aws/lambda/pedidos-api").send().await.unwrap();
    assert_eq!(fn_logs.log_groups()[0].retention_in_days(), Some(14));

    // The API: each route's integration is a payload-2.0 proxy to this function; CORS; $default with logs.
    let apis = apigw.get_apis().send().await.unwrap();
    assert_eq!(apis.items().len(), 1);
    let api = &apis.items()[0];
    let api_id = api.api_id().unwrap();
    assert_eq!(output("api_url"), api.api_endpoint().unwrap());
    let cors = api.cors_configuration().expect("CORS");
    assert!(set(cors.allow_methods().iter().map(|m| m.to_uppercase())).is_superset(&set(["GET", "POST", "PUT", "DELETE"])), "{cors:?}");
    let routes = apigw.get_routes().api_id(api_id).send().await.unwrap();
    assert_eq!(set(routes.items().iter().filter_map(|r| r.route_key())), set(ROUTES.iter()));
    let function_arn = fconf.function_arn().unwrap();
    for route in routes.items() {
        let target = route.target().unwrap_or_else(|| panic!("{:?} has no target", route.route_key()));
        let integration_id = target.strip_prefix("integrations/").unwrap();
        let i = apigw.get_integration().api_id(api_id).integration_id(integration_id).send().await.unwrap();
        assert_eq!(i.integration_type().map(|t| t.as_str()), Some("AWS_PROXY"), "{:?}", route.route_key());
        assert!(i.integration_uri().unwrap().contains(function_arn), "{:?} -> {:?}", route.route_key(), i.integration_uri());
        assert_eq!(i.payload_format_version(), Some("2.0"));
    }
    let stage = apigw.get_stage().api_id(api_id).stage_name("$default").send().await.unwrap();
    assert_eq!(stage.auto_deploy(), Some(true));
    let api_logs = logs.describe_log_groups().log_group_name_prefix("/aws/apigateway/pedidos").send().await.unwrap();
    let api_logs_arn = api_logs.log_groups()[0].arn().unwrap().trim_end_matches(":*").to_string();
    let destination = stage.access_log_settings().and_then(|a| a.destination_arn()).expect("access logs");
    assert_eq!(destination.trim_end_matches(":*"), api_logs_arn);

    // API Gateway may invoke the function only from this API: one statement per route, each SourceArn-scoped.
    let account = &h.account.id;
    let policy: Value =
        serde_json::from_str(lambda.get_policy().function_name("pedidos-api").send().await.unwrap().policy().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), ROUTES.len(), "{policy}");
    for st in statements {
        assert_eq!(st["Principal"]["Service"], "apigateway.amazonaws.com", "{st}");
        assert_eq!(st["Action"], "lambda:InvokeFunction", "{st}");
        assert_eq!(st["Condition"]["ArnLike"]["AWS:SourceArn"], format!("arn:aws:execute-api:us-east-1:{account}:{api_id}/*/*"), "{st}");
    }

    // Least privilege: the API's role holds exactly its table actions on the table, RunTask on the worker's
    // family, PassRole on the worker's two roles, and its own log writes; the worker's task role only its write.
    let api_grants = grants(&iam, fconf.role().unwrap()).await;
    let mut expected: BTreeSet<String> = set(API_TABLE_ACTIONS.iter());
    expected.extend(set(["ecs:RunTask", "iam:PassRole", "logs:CreateLogStream", "logs:PutLogEvents"]));
    assert_eq!(set(api_grants.keys()), expected, "{api_grants:#?}");
    for action in API_TABLE_ACTIONS {
        assert_eq!(api_grants[*action], set([&table_arn]), "{action}");
    }
    assert_eq!(api_grants["iam:PassRole"], set([&execution_role, &task_role]));
    let run: Vec<&String> = api_grants["ecs:RunTask"].iter().collect();
    assert!(run.len() == 1 && run[0].ends_with(":task-definition/pedidos-worker:*"), "{run:?}");
    let log_group_arn = fn_logs.log_groups()[0].arn().unwrap().trim_end_matches(":*").to_string();
    assert_eq!(api_grants["logs:PutLogEvents"], set([format!("{log_group_arn}:*")]));
    let worker_grants = grants(&iam, &task_role).await;
    let worker_expected: BTreeMap<String, BTreeSet<String>> =
        WORKER_TABLE_ACTIONS.iter().map(|a| (a.to_string(), set([&table_arn]))).collect();
    assert_eq!(worker_grants, worker_expected);

    // The tasks' subnets are private (no route to an internet gateway, out through NAT) in two zones, and
    // reach DynamoDB through a gateway endpoint on their route tables.
    let described = ec2.describe_subnets().set_subnet_ids(Some(subnets.clone())).send().await.unwrap();
    let zones = set(described.subnets().iter().filter_map(|s| s.availability_zone()));
    assert_eq!(zones.len(), 2, "{zones:?}");
    let vpc_id = described.subnets()[0].vpc_id().unwrap().to_string();
    let mut private_tables = BTreeSet::new();
    for subnet in &subnets {
        let rts = ec2
            .describe_route_tables()
            .filters(Filter::builder().name("association.subnet-id").values(subnet).build())
            .send()
            .await
            .unwrap();
        assert_eq!(rts.route_tables().len(), 1, "{subnet}");
        let rt = &rts.route_tables()[0];
        for r in rt.routes() {
            assert!(!r.gateway_id().unwrap_or_default().starts_with("igw-"), "{subnet} routes to an internet gateway: {r:?}");
        }
        assert!(rt.routes().iter().any(|r| r.destination_cidr_block() == Some("0.0.0.0/0") && r.nat_gateway_id().is_some()), "{rt:?}");
        private_tables.insert(rt.route_table_id().unwrap().to_string());
    }
    let endpoints = ec2.describe_vpc_endpoints().filters(Filter::builder().name("vpc-id").values(&vpc_id).build()).send().await.unwrap();
    let dynamodb = endpoints
        .vpc_endpoints()
        .iter()
        .find(|e| e.service_name() == Some("com.amazonaws.us-east-1.dynamodb"))
        .expect("a DynamoDB endpoint");
    assert_eq!(dynamodb.vpc_endpoint_type().map(|t| t.as_str()), Some("Gateway"));
    assert!(set(dynamodb.route_table_ids()).is_superset(&private_tables), "{dynamodb:?}");

    // Applied as declared: nothing to do.
    let plan = h.plan(&stack).await.unwrap();
    assert!(!plan.has_changes(), "a second plan has changes:\n{}", plan.render(false));

    h.destroy(&stack).await.unwrap();

    // Nothing of the stack is left.
    assert_nothing_left(config, &[execution_role, task_role]).await;
}

/// Roles of the stack in the account: named with its prefix or tagged with it (the account holds a role of
/// the harness's own).
async fn stack_roles(config: &SdkConfig, stack: &str) -> Vec<String> {
    let iam = aws_sdk_iam::Client::new(config);
    let mut out = Vec::new();
    for r in iam.list_roles().send().await.unwrap().roles() {
        let tags = iam.list_role_tags().role_name(r.role_name()).send().await.unwrap();
        let tagged = tags.tags().iter().any(|t| t.key() == "ferroform:stack" && t.value() == stack);
        if tagged || r.role_name().starts_with(stack) {
            out.push(r.arn().to_string());
        }
    }
    out
}

/// Apply and destroy through a proxy that throttles, fails (500/503) or drops about one call in ten (fixed
/// seed), and refuses Lambda a role younger than a few seconds as IAM's eventual consistency does. The apply
/// converges; the account, read straight from the emulator, holds exactly one of each thing the stack makes
/// (no duplicate from a retried create); a second plan has no changes and the state lists every declared
/// address; the destroy, through the same faults, leaves nothing.
#[tokio::test(flavor = "multi_thread")]
async fn pedidos_converges_through_faults() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    // The function role's CreateRole comes 5 s (alone) to 11 s (beside the other test) before CreateFunction
    // (the function waits for the network and the worker, and uploads the ~160 MB debug binary), so a 2 s
    // window would never meet it: 20 s makes the first CreateFunction calls meet a young role even under
    // load, and proves the engine waits it out.
    let faults = Faults { rate: 0.1, role_propagation: Some(Duration::from_secs(20)), seed: 7, ..Faults::flaky(0.1) };
    let shim = CborShim::start(&h.account.endpoint).await?;
    let proxy = FaultProxy::start(shim.endpoint(), faults.clone()).await?;
    h.contexts.insert(Aws::from_config(h.account.config_via(proxy.endpoint())));
    let stack = declared();

    // 1. The apply converges: a fault that outlasts the retries may fail the first run, never a second.
    if let Err(e) = h.apply(&stack).await {
        eprintln!("first apply through faults failed {:?}: {e:#}", proxy.injected());
        h.apply(&stack).await.map_err(|e| anyhow::anyhow!("second apply through faults {:?}: {e:#}", proxy.injected()))?;
    }
    let injected = proxy.injected();
    eprintln!("apply: {} calls, faults injected {injected:?}", proxy.calls().len());
    assert!(proxy.random_injected() >= 2, "too few faults to prove anything: {injected:?}");
    assert!(injected.contains_key(ROLE_NOT_ASSUMABLE), "the Lambda create met a young role: {injected:?}");

    // 2. Exactly one of each, read straight from the emulator (not through the proxy).
    let config = &h.account.config;
    let (lambda, apigw, ecs) =
        (aws_sdk_lambda::Client::new(config), aws_sdk_apigatewayv2::Client::new(config), aws_sdk_ecs::Client::new(config));
    let (ec2, ddb, ecr) = (aws_sdk_ec2::Client::new(config), aws_sdk_dynamodb::Client::new(config), aws_sdk_ecr::Client::new(config));
    assert_eq!(ddb.list_tables().send().await?.table_names(), ["pedidos"]);
    let functions = lambda.list_functions().send().await?;
    assert_eq!(set(functions.functions().iter().filter_map(|f| f.function_name())), set(["pedidos-api"]));
    assert_eq!(functions.functions().len(), 1);
    let apis = apigw.get_apis().send().await?;
    assert_eq!(apis.items().len(), 1, "{:?}", apis.items());
    let api_id = apis.items()[0].api_id().unwrap();
    let routes = apigw.get_routes().api_id(api_id).send().await?;
    assert_eq!(routes.items().len(), ROUTES.len(), "{:?}", routes.items());
    assert_eq!(set(routes.items().iter().filter_map(|r| r.route_key())), set(ROUTES.iter()));
    let integrations = apigw.get_integrations().api_id(api_id).send().await?;
    assert_eq!(integrations.items().len(), ROUTES.len(), "{:?}", integrations.items());
    let repos = ecr.describe_repositories().send().await?;
    assert_eq!(set(repos.repositories().iter().filter_map(|r| r.repository_name())), set(["pedidos-worker"]));
    assert_eq!(repos.repositories().len(), 1);
    let vpcs = ec2.describe_vpcs().filters(Filter::builder().name("is-default").values("false").build()).send().await?;
    assert_eq!(vpcs.vpcs().len(), 1, "{:?}", vpcs.vpcs());
    let vpc_id = vpcs.vpcs()[0].vpc_id().unwrap();
    let subnets = ec2.describe_subnets().filters(Filter::builder().name("vpc-id").values(vpc_id).build()).send().await?;
    assert_eq!(subnets.subnets().len(), 4, "{:?}", subnets.subnets());
    let nats = ec2.describe_nat_gateways().send().await?;
    let live: Vec<_> = nats.nat_gateways().iter().filter(|n| n.state().map(|s| s.as_str()) != Some("deleted")).collect();
    assert_eq!(live.len(), 1, "{live:?}");
    let arns = ecs.list_clusters().send().await?.cluster_arns().to_vec();
    let clusters = ecs.describe_clusters().set_clusters(Some(arns)).send().await?;
    assert_eq!(clusters.clusters().iter().filter(|c| c.status() == Some("ACTIVE")).count(), 1, "{:?}", clusters.clusters());
    let roles = stack_roles(config, stack.name()).await;
    let declared_roles = stack.resources().iter().filter(|r| r.type_name == "aws_iam_role").count();
    assert_eq!(roles.len(), declared_roles, "{roles:?}");

    // 3. Without faults, a second plan has nothing to do; the state holds every declared address, ready.
    proxy.set_faults(Faults::none());
    let plan = h.plan(&stack).await?;
    assert!(!plan.has_changes(), "not converged:\n{}", plan.render(false));
    let state = h.engine().state(stack.name()).await?;
    assert_eq!(set(state.resources.keys()), set(stack.resources().iter().map(|r| &r.address)));
    for (address, r) in &state.resources {
        assert!(r.id.is_some() && format!("{:?}", r.status) == "Ready", "{address}: {r:?}");
    }

    // 4. The destroy, through the same faults (the same seed: the deletes are operations of their own),
    //    leaves nothing.
    proxy.set_faults(faults);
    proxy.reset();
    h.destroy(&stack).await.map_err(|e| anyhow::anyhow!("destroy through faults {:?}: {e:#}", proxy.injected()))?;
    let injected = proxy.injected();
    eprintln!("destroy: {} calls, faults injected {injected:?}", proxy.calls().len());
    assert!(proxy.random_injected() >= 2, "too few faults to prove anything: {injected:?}");
    assert_nothing_left(config, &roles).await;
    assert!(h.engine().state(stack.name()).await?.resources.is_empty());
    Ok(())
}
/// Nothing of the stack is left in the account (read with `config`, straight from the emulator): no function,
/// API, table, role (by name prefix, and each of `role_arns` by ARN), active cluster or task definition,
/// repository, log group, non-default VPC, live NAT gateway or Elastic IP.
async fn assert_nothing_left(config: &SdkConfig, role_arns: &[String]) {
    let (lambda, apigw, iam) =
        (aws_sdk_lambda::Client::new(config), aws_sdk_apigatewayv2::Client::new(config), aws_sdk_iam::Client::new(config));
    let (ecs, ec2, ddb) = (aws_sdk_ecs::Client::new(config), aws_sdk_ec2::Client::new(config), aws_sdk_dynamodb::Client::new(config));
    let (ecr, logs) = (aws_sdk_ecr::Client::new(config), aws_sdk_cloudwatchlogs::Client::new(config));
    assert!(lambda.list_functions().send().await.unwrap().functions().is_empty());
    assert!(apigw.get_apis().send().await.unwrap().items().is_empty());
    assert!(ddb.list_tables().send().await.unwrap().table_names().is_empty());
    let roles = iam.list_roles().send().await.unwrap();
    let ours: Vec<&str> = roles.roles().iter().map(|r| r.role_name()).filter(|n| n.starts_with("pedidos")).collect();
    assert!(ours.is_empty(), "roles left: {ours:?}");
    for arn in role_arns {
        assert!(iam.get_role().role_name(arn.rsplit('/').next().unwrap()).send().await.is_err(), "{arn} is left");
    }
    let clusters = ecs.list_clusters().send().await.unwrap();
    if !clusters.cluster_arns().is_empty() {
        let described = ecs.describe_clusters().set_clusters(Some(clusters.cluster_arns().to_vec())).send().await.unwrap();
        assert!(described.clusters().iter().all(|c| c.status() != Some("ACTIVE")), "{described:?}");
    }
    let active = ecs.list_task_definitions().status(TaskDefinitionStatus::Active).send().await.unwrap();
    assert!(active.task_definition_arns().is_empty(), "{:?}", active.task_definition_arns());
    assert!(ecr.describe_repositories().send().await.unwrap().repositories().is_empty());
    let groups = logs.describe_log_groups().send().await.unwrap();
    assert!(groups.log_groups().is_empty(), "log groups left: {:?}", groups.log_groups());
    let vpcs = ec2.describe_vpcs().filters(Filter::builder().name("is-default").values("false").build()).send().await.unwrap();
    assert!(vpcs.vpcs().is_empty(), "VPCs left: {:?}", vpcs.vpcs());
    let nats = ec2.describe_nat_gateways().send().await.unwrap();
    assert!(nats.nat_gateways().iter().all(|n| n.state().map(|s| s.as_str()) == Some("deleted")), "{nats:?}");
    assert!(ec2.describe_addresses().send().await.unwrap().addresses().is_empty());
}

/// One request to the served API.
async fn http(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> ferroform::local::client::Answer {
    ferroform::local::client::request(url, method, path, headers, body).await.unwrap()
}

/// Every message of every stream of a log group.
async fn log_lines(logs: &aws_sdk_cloudwatchlogs::Client, group: &str) -> Vec<String> {
    let streams =
        logs.describe_log_streams().log_group_name(group).send().await.map(|s| s.log_streams.unwrap_or_default()).unwrap_or_default();
    let mut out = Vec::new();
    for s in streams {
        let Some(name) = s.log_stream_name else { continue };
        let events = logs.get_log_events().log_group_name(group).log_stream_name(&name).start_from_head(true).send().await.unwrap();
        out.extend(events.events.unwrap_or_default().into_iter().filter_map(|e| e.message));
    }
    out
}

/// `serve` runs the applied stack as a system: real HTTP -> the front door -> the API function's process
/// (runtime API) -> DynamoDB, and RunTask -> the worker's process -> the verdict; each effect confirmed
/// with independent reads.
#[tokio::test(flavor = "multi_thread")]
async fn pedidos_serves_locally_as_a_system() {
    use ferroform::local::{Emulator, LocalProgram, ServeOptions};
    let h = Harness::new().await.unwrap();
    let _shim = via_shim(&h, &h.account.endpoint).await;
    let config = &h.account.config;
    let (ddb, ecs, logs) =
        (aws_sdk_dynamodb::Client::new(config), aws_sdk_ecs::Client::new(config), aws_sdk_cloudwatchlogs::Client::new(config));
    let stack = declared();
    // This test's debug binaries (cargo built them for the test): no build inside the test.
    ferroform::local::function("function", LocalProgram::command(env!("CARGO_BIN_EXE_pedidos-api"), &[]));
    ferroform::local::container("worker/task", WORKER_CONTAINER, LocalProgram::command(env!("CARGO_BIN_EXE_pedidos-worker"), &[]));
    let state = h.apply(&stack).await.unwrap();

    let emulator = Emulator::new(config.clone(), h.account.env()).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let opts = ServeOptions { port: 0, max_instances: 4, jwks: None };
    let served = ferroform::local::start(&stack, &state, &emulator, &opts, stopped.clone()).await.unwrap();
    let url = served.url("api").expect("the API is served");

    // POST -> 202 PENDING; the worker's process records CREATED.
    let order = r#"{"customer":"ana","items":[{"sku":"a","quantity":2,"price":1.5}]}"#;
    let r = http(&url, "POST", "/pedidos", &[("content-type", "application/json")], Some(order)).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["status"], "PENDING", "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let mut status = String::new();
    for _ in 0..200 {
        let r = http(&url, "GET", &format!("/pedidos/{id}"), &[], None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        status = r.json()["status"].as_str().unwrap_or_default().to_string();
        if status != "PENDING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "CREATED");
    let item = ddb
        .get_item()
        .table_name("pedidos")
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.clone()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["status"].as_s().unwrap(), "CREATED");
    // The task was stopped in the emulator with the worker's exit code.
    let cluster = state.outputs["cluster_arn"].value.as_str().unwrap().to_string();
    let mut reason = String::new();
    for _ in 0..100 {
        let stopped = ecs.list_tasks().cluster(&cluster).desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped).send().await.unwrap();
        if let Some(arn) = stopped.task_arns().first() {
            let t = ecs.describe_tasks().cluster(&cluster).tasks(arn).send().await.unwrap();
            reason = t.tasks()[0].stopped_reason().unwrap_or_default().to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reason.contains("exit code 0"), "{reason}");

    // A bad body is a 400 naming the field; an unknown path is the gateway's 404.
    let r = http(&url, "POST", "/pedidos", &[("content-type", "application/json")], Some(r#"{"customer":"a"}"#)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("missing field `items`"), "{}", r.body);
    let r = http(&url, "GET", "/nothing/here", &[], None).await;
    assert_eq!((r.status, r.body.as_str()), (404, r#"{"message":"Not Found"}"#));
    // CORS preflight answered by the gateway from the API's configuration.
    let r =
        http(&url, "OPTIONS", "/pedidos", &[("origin", "http://localhost:3000"), ("access-control-request-method", "POST")], None).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    // PUT -> 202, and a second worker process records UPDATED.
    let update = r#"{"customer":"ana","items":[{"sku":"b","quantity":1,"price":3}]}"#;
    let r = http(&url, "PUT", &format!("/pedidos/{id}"), &[("content-type", "application/json")], Some(update)).await;
    assert_eq!(r.status, 202, "{}", r.body);
    for _ in 0..200 {
        status = http(&url, "GET", &format!("/pedidos/{id}"), &[], None).await.json()["status"].as_str().unwrap_or_default().to_string();
        if status == "UPDATED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "UPDATED");
    let item = ddb.get_item().table_name("pedidos").key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.clone())).send().await.unwrap();
    assert_eq!(item.item.unwrap()["status"].as_s().unwrap(), "UPDATED");

    // The list pages one order at a time and finds both.
    let second = http(&url, "POST", "/pedidos", &[("content-type", "application/json")], Some(order)).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut listed = BTreeSet::new();
    let mut path = "/pedidos?limit=1".to_string();
    for _ in 0..10 {
        let r = http(&url, "GET", &path, &[], None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        assert!(page["items"].as_array().unwrap().len() <= 1, "{}", r.body);
        listed.extend(page["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(token) => path = format!("/pedidos?limit=1&next={}", token.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")),
            None => break,
        }
    }
    assert_eq!(listed, BTreeSet::from([id.clone(), second]));

    // DELETE -> 204, then 404; the item is gone from the table.
    let r = http(&url, "DELETE", &format!("/pedidos/{id}"), &[], None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(http(&url, "GET", &format!("/pedidos/{id}"), &[], None).await.status, 404);
    let gone = ddb.get_item().table_name("pedidos").key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.clone())).send().await.unwrap();
    assert!(gone.item.is_none());

    // The function's and the worker's output reached their log groups.
    let mut function_lines = Vec::new();
    let mut worker_lines = Vec::new();
    for _ in 0..100 {
        function_lines = log_lines(&logs, "/aws/lambda/pedidos-api").await;
        worker_lines = log_lines(&logs, "/ecs/pedidos-worker").await;
        if function_lines.iter().any(|l| l.starts_with("END RequestId")) && worker_lines.iter().any(|l| l.contains("order processed")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(function_lines.iter().any(|l| l.starts_with("START RequestId")), "{function_lines:?}");
    assert!(worker_lines.iter().any(|l| l.contains("order processed")), "{worker_lines:?}");

    // A worker that exits non-zero (bad input: 2): its task is stopped with the code in the reason. ECS takes
    // containers[].exitCode from its agent (SubmitContainerStateChange), which moto 5.2.5 lacks: its
    // DescribeTasks keeps the 0 it set at RunTask, so the reason is where the code is kept.
    use aws_sdk_ecs::types::{AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType, NetworkConfiguration, TaskOverride};
    let deployed = aws_sdk_lambda::Client::new(config).get_function_configuration().function_name("pedidos-api").send().await.unwrap();
    let env = deployed.environment.and_then(|e| e.variables).unwrap();
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(env["SUBNETS"].split(',').map(String::from).collect()))
        .security_groups(&env["SECURITY_GROUPS"])
        .build()
        .unwrap();
    let bad_op = ContainerOverride::builder()
        .name(WORKER_CONTAINER)
        .environment(KeyValuePair::builder().name("ORDER_OP").value("bogus").build())
        .build();
    let started = ecs
        .run_task()
        .cluster(&cluster)
        .task_definition(&env["TASK_DEFINITION_ARN"])
        .launch_type(LaunchType::Fargate)
        .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
        .overrides(TaskOverride::builder().container_overrides(bad_op).build())
        .send()
        .await
        .unwrap();
    let arn = started.tasks()[0].task_arn().unwrap().to_string();
    let mut task = None;
    for _ in 0..100 {
        let t = ecs.describe_tasks().cluster(&cluster).tasks(&arn).send().await.unwrap().tasks()[0].clone();
        if t.last_status() == Some("STOPPED") {
            task = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let task = task.expect("the failing worker's task is stopped");
    assert_eq!(task.desired_status(), Some("STOPPED"));
    let reason = task.stopped_reason().unwrap_or_default();
    assert!(reason.contains(&format!("container {WORKER_CONTAINER} exit code 2")), "{reason}");
    // The worker said why, in its task's stream.
    let mut worker_lines = Vec::new();
    for _ in 0..50 {
        worker_lines = log_lines(&logs, "/ecs/pedidos-worker").await;
        if worker_lines.iter().any(|l| l.contains("ORDER_OP must be")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(worker_lines.iter().any(|l| l.contains("ORDER_OP must be `create` or `update`, not `bogus`")), "{worker_lines:?}");

    // The smoke command's check passes against serve.
    pedidos::smoke::check(&url).await.unwrap();

    stop.send(true).unwrap();
    served.wait(stopped).await;
}

/// The stack with these variables (auth choices), as [`declared`] builds it otherwise.
fn declared_with(vars: &[(&str, &str)]) -> Stack {
    let mut s = Stack::new("pedidos");
    for (k, v) in vars {
        s.set_var(k, v);
    }
    let mut cfg = Config::new(Code::binary(env!("CARGO_BIN_EXE_pedidos-api"))).with_vars(&s).unwrap();
    cfg.zones = vec!["us-east-1a".into(), "us-east-1b".into()];
    cfg.worker_image_tag = "v1".into();
    build(&mut s, &cfg).unwrap();
    s
}

/// Each deployed route's (key, authorization type, authorizer id, scopes), read with GetRoutes.
async fn deployed_routes(config: &SdkConfig) -> Vec<(String, String, Option<String>, Vec<String>)> {
    let apigw = aws_sdk_apigatewayv2::Client::new(config);
    let api = apigw.get_apis().send().await.unwrap().items.unwrap_or_default().into_iter().find(|a| a.name() == Some("pedidos")).unwrap();
    let routes = apigw.get_routes().api_id(api.api_id().unwrap()).send().await.unwrap().items.unwrap_or_default();
    let mut out: Vec<_> = routes
        .into_iter()
        .map(|r| {
            (
                r.route_key.unwrap_or_default(),
                r.authorization_type.map(|t| t.as_str().to_string()).unwrap_or_default(),
                r.authorizer_id,
                r.authorization_scopes.unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `--var jwt_issuer --var jwt_audience`: every route carries the authorizer and its scope (GetRoutes), and
/// `serve` answers tokens as API Gateway does: good 200 (the function ran), none/expired/another issuer/
/// another audience 401, a token without the route's scope 403.
#[tokio::test(flavor = "multi_thread")]
async fn pedidos_with_jwt_auth_is_deployed_and_enforced_by_serve() {
    use ferroform::local::auth::jwt::{JwksSource, TokenIssuer};
    use ferroform::local::{Emulator, LocalProgram, ServeOptions};
    let h = Harness::new().await.unwrap();
    let _shim = via_shim(&h, &h.account.endpoint).await;
    let config = &h.account.config;
    let issuer = "https://issuer.example.com";
    let stack = declared_with(&[("jwt_issuer", issuer), ("jwt_audience", "pedidos-app")]);
    ferroform::local::function("function", LocalProgram::command(env!("CARGO_BIN_EXE_pedidos-api"), &[]));
    let state = h.apply(&stack).await.unwrap();

    let routes = deployed_routes(config).await;
    assert_eq!(routes.len(), ROUTES.len(), "{routes:?}");
    let authorizer = routes[0].2.clone().expect("an authorizer on the routes");
    for (key, kind, id, scopes) in &routes {
        assert_eq!((kind.as_str(), id.as_ref()), ("JWT", Some(&authorizer)), "{key}");
        let scope = if key.starts_with("GET ") { pedidos::auth::READ_SCOPE } else { pedidos::auth::WRITE_SCOPE };
        assert_eq!(scopes, &vec![scope.to_string()], "{key}");
    }
    assert_eq!(state.resources["api/jwt"].outputs["id"], authorizer.as_str());

    let keys = TokenIssuer::generate(issuer, "k1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, keys.jwks().to_string()).unwrap();
    let emulator = Emulator::new(config.clone(), h.account.env()).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // As `serve --jwks FILE` passes it.
    let opts = ServeOptions { port: 0, max_instances: 2, jwks: Some(JwksSource::File(jwks)) };
    let served = ferroform::local::start(&stack, &state, &emulator, &opts, stopped.clone()).await.unwrap();
    let url = served.url("api").unwrap();

    let now = chrono_now();
    let token = |edit: &dyn Fn(&mut Value)| {
        let mut claims = keys.claims("pedidos-app", "pedidos:read", now);
        edit(&mut claims);
        format!("Bearer {}", keys.token(&claims).unwrap())
    };
    let get = |auth: Option<String>| {
        let url = url.clone();
        async move {
            let headers: Vec<(&str, &str)> = auth.as_deref().map(|a| vec![("authorization", a)]).unwrap_or_default();
            http(&url, "GET", "/pedidos", &headers, None).await
        }
    };
    let ok = get(Some(token(&|_| {}))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.json()["items"].is_array(), "{}", ok.body);
    let unauthorized = r#"{"message":"Unauthorized"}"#;
    for (what, auth) in [
        ("no token", None),
        ("expired", Some(token(&|c| c["exp"] = serde_json::json!(now - 60)))),
        ("another issuer", Some(token(&|c| c["iss"] = serde_json::json!("https://other.example.com")))),
        ("another audience", Some(token(&|c| c["aud"] = serde_json::json!("someone-else")))),
    ] {
        let r = get(auth).await;
        assert_eq!((r.status, r.body.as_str()), (401, unauthorized), "{what}");
    }
    // A read token on a write route; a write token passes (the function answers: no such order).
    let read = token(&|_| {});
    let r = http(&url, "DELETE", "/pedidos/nope", &[("authorization", &read)], None).await;
    assert_eq!((r.status, r.body.as_str()), (403, r#"{"message":"Forbidden"}"#));
    let write = token(&|c| c["scope"] = serde_json::json!("pedidos:write"));
    let r = http(&url, "DELETE", "/pedidos/nope", &[("authorization", &write)], None).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_ne!(r.body, r#"{"message":"Not Found"}"#, "the function answered, not the gateway");

    stop.send(true).unwrap();
    served.wait(stopped).await;
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `--var auth=iam`: every route is AWS_IAM (GetRoutes), the callers' policy allows execute-api:Invoke on
/// exactly those routes (GetPolicyVersion), and `serve` takes only calls signed with the emulator's keys.
#[tokio::test(flavor = "multi_thread")]
async fn pedidos_with_iam_auth_is_deployed_and_enforced_by_serve() {
    use ferroform::local::auth::sigv4::{self, Credentials};
    use ferroform::local::{Emulator, LocalProgram, ServeOptions};
    let h = Harness::new().await.unwrap();
    let _shim = via_shim(&h, &h.account.endpoint).await;
    let config = &h.account.config;
    let stack = declared_with(&[("auth", "iam")]);
    ferroform::local::function("function", LocalProgram::command(env!("CARGO_BIN_EXE_pedidos-api"), &[]));
    let state = h.apply(&stack).await.unwrap();

    let routes = deployed_routes(config).await;
    assert_eq!(routes.len(), ROUTES.len());
    assert!(routes.iter().all(|(_, kind, id, _)| kind == "AWS_IAM" && id.is_none()), "{routes:?}");
    let policy_arn = state.outputs["invoke_policy_arn"].value.as_str().unwrap().to_string();
    let iam = aws_sdk_iam::Client::new(config);
    let policy = iam.get_policy().policy_arn(&policy_arn).send().await.unwrap().policy.unwrap();
    let version = iam.get_policy_version().policy_arn(&policy_arn).version_id(policy.default_version_id().unwrap()).send().await.unwrap();
    let doc = policy_json(version.policy_version.unwrap().document().unwrap());
    let api_id = state.resources["api"].outputs["id"].as_str().unwrap().to_string();
    let exec = format!("arn:aws:execute-api:us-east-1:{}:{api_id}", h.account.id);
    let statements = doc["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{doc}");
    assert_eq!(set(strings(&statements[0]["Action"])), set(["execute-api:Invoke"]));
    assert_eq!(
        set(strings(&statements[0]["Resource"])),
        set(["GET/pedidos", "POST/pedidos", "GET/pedidos/*", "PUT/pedidos/*", "DELETE/pedidos/*"].map(|r| format!("{exec}/*/{r}")))
    );

    let emulator = Emulator::new(config.clone(), h.account.env()).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let served =
        ferroform::local::start(&stack, &state, &emulator, &ServeOptions { port: 0, max_instances: 2, jwks: None }, stopped.clone())
            .await
            .unwrap();
    let url = served.url("api").unwrap();
    let host = url.trim_start_matches("http://").to_string();
    let env: BTreeMap<String, String> = h.account.env().into_iter().collect();
    let signed = |creds: &Credentials| {
        let base = vec![("host".to_string(), host.clone())];
        let m = sigv4::Message { method: "GET", path: "/pedidos", query: "", headers: &base, body: b"" };
        sigv4::sign_now(&m, creds, "us-east-1", "execute-api")
    };
    let creds = Credentials {
        access_key_id: env["AWS_ACCESS_KEY_ID"].clone(),
        secret_access_key: env["AWS_SECRET_ACCESS_KEY"].clone(),
        session_token: env.get("AWS_SESSION_TOKEN").cloned(),
    };
    let call = |headers: Vec<(String, String)>| {
        let url = url.clone();
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            http(&url, "GET", "/pedidos", &h, None).await
        }
    };
    let r = call(Vec::new()).await;
    assert_eq!((r.status, r.body.as_str()), (403, r#"{"message":"Forbidden"}"#));
    let r = call(signed(&creds)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let guessed = Credentials { secret_access_key: "not-the-secret".into(), ..creds.clone() };
    let r = call(signed(&guessed)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("signature we calculated does not match"), "{}", r.body);

    stop.send(true).unwrap();
    served.wait(stopped).await;
}
