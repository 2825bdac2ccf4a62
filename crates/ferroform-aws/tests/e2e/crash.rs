//! An apply, and a destroy, killed with SIGKILL at many points, then run again: it converges, nothing is
//! orphaned (every resource carrying the stack's tag is in the state), nothing is duplicated, the state is
//! valid. The killed run is the real command line in a child process (`child.rs`) whose calls go through a
//! proxy. Two kinds of kill point: between steps (as the call after its k-th mutating call arrives; that
//! call is dropped), and at the start of each resource type's create (the call is forwarded, so AWS makes
//! the object while the run that asked is dead: the re-run must adopt it, by tags or by its identity).

use crate::child;
use anyhow::Context as _;
use ferroform_aws::apigatewayv2::HttpApi;
use ferroform_aws::cloudwatch::Dashboard;
use ferroform_aws::components::http_api;
use ferroform_aws::dynamodb::{AttrType, Table};
use ferroform_aws::ec2::{Rule, SecurityGroup, Subnet, Vpc};
use ferroform_aws::iam::Role;
use ferroform_aws::lambda::{Code, Function};
use ferroform_aws::logs::LogGroup;
use ferroform_aws::s3::Bucket;
use ferroform_aws::Aws;
use ferroform_core::{Options, Stack, State};
use ferroform_testkit::cbor::CborShim;
use ferroform_testkit::proxy::{is_mutating, FaultProxy, Faults};
use ferroform_testkit::Harness;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const STACK: &str = "crash";
/// The child's bucket name suffix (S3 names are global on the emulator too, and kill points run at once).
const BUCKET_SUFFIX: &str = "FERROFORM_E2E_CRASH_BUCKET";

/// Set (to the API binary's path) when the child is to build pedidos instead of the crash stack.
const PEDIDOS_CODE: &str = "FERROFORM_E2E_CRASH_PEDIDOS";

/// The stack the child builds: its bucket suffix comes from the environment; pedidos when
/// [`PEDIDOS_CODE`] is set.
pub fn build(s: &mut Stack) -> anyhow::Result<()> {
    if let Ok(code) = std::env::var(PEDIDOS_CODE) {
        return crate::pedidos_stack::build(s, std::path::Path::new(&code));
    }
    build_for(s, &std::env::var(BUCKET_SUFFIX).unwrap_or_default());
    Ok(())
}

/// Small, with dependencies, every type that can be created but the authorizer (the emulator has no
/// GetAuthorizers, which its lookup lists): cloud-assigned ids (VPC, subnet, security
/// group, API and its parts) and names (table, role, log group, function, bucket, dashboard), found by tags
/// or, for the untagged, by identity: two routes to one function make two integrations alike but for
/// their ids (adoption must not give both addresses one of them).
fn build_for(s: &mut Stack, bucket_suffix: &str) {
    let keep_not = || Options::new().prevent_destroy(false);
    let vpc = s.add("vpc", Vpc::new("10.20.0.0/16"));
    s.add("subnet", Subnet::new(vpc.id(), "10.20.1.0/24"));
    s.add("sg", SecurityGroup::new("crash-web", vpc.id()).ingress(Rule::tcp(443).cidr("10.20.0.0/16")));
    let table = s.add_with("table", Table::on_demand("crash-orders").hash_key("id", AttrType::S), keep_not());
    let role = s.add("role", Role::for_service("lambda.amazonaws.com").allow(["dynamodb:GetItem"], [table.arn()]));
    s.add("logs", LogGroup::new("/crash/app").retention_days(7));
    let f =
        s.add("fn", Function::new("crash-api").code(Code::image("123456789012.dkr.ecr.us-east-1.amazonaws.com/crash:1")).role(role.arn()));
    let api = s.add("api", HttpApi::new("crash"));
    api.lambda_route(s, "GET /orders", &f);
    api.lambda_route(s, "POST /orders", &f);
    http_api::default_stage(s, &api, None);
    s.add_with("bucket", Bucket::for_state(format!("crash-{bucket_suffix}")), keep_not());
    let widget = serde_json::json!({"type": "text", "x": 0, "y": 0, "width": 6, "height": 3, "properties": {"markdown": "crash"}});
    s.add("dashboard", Dashboard::new("crash", serde_json::json!({ "widgets": [widget] })));
}

fn stack(bucket_suffix: &str) -> Stack {
    let mut s = Stack::new(STACK);
    build_for(&mut s, bucket_suffix);
    s
}

/// What the account holds with the stack's tag, read straight from the emulator: (type, address) -> ids.
async fn tagged(config: &aws_types::SdkConfig) -> anyhow::Result<BTreeMap<(String, String), Vec<String>>> {
    let mut found: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut add = |t: &str, tags: Vec<(String, String)>, id: String| {
        let tags: BTreeMap<String, String> = tags.into_iter().collect();
        if tags.get("ferroform:stack").map(String::as_str) == Some(STACK) {
            found.entry((t.to_string(), tags.get("ferroform:address").cloned().unwrap_or_default())).or_default().push(id);
        }
    };
    let ec2 = aws_sdk_ec2::Client::new(config);
    let ec2_tags = |tags: &[aws_sdk_ec2::types::Tag]| -> Vec<(String, String)> {
        tags.iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect()
    };
    for v in ec2.describe_vpcs().send().await?.vpcs() {
        add("aws_vpc", ec2_tags(v.tags()), v.vpc_id().unwrap_or_default().to_string());
    }
    for v in ec2.describe_subnets().send().await?.subnets() {
        add("aws_subnet", ec2_tags(v.tags()), v.subnet_id().unwrap_or_default().to_string());
    }
    for g in ec2.describe_security_groups().send().await?.security_groups() {
        add("aws_security_group", ec2_tags(g.tags()), g.group_id().unwrap_or_default().to_string());
    }
    let iam = aws_sdk_iam::Client::new(config);
    for r in iam.list_roles().send().await?.roles() {
        let tags = iam.list_role_tags().role_name(r.role_name()).send().await?;
        add("aws_iam_role", tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(), r.role_name().to_string());
    }
    let dynamo = aws_sdk_dynamodb::Client::new(config);
    for name in dynamo.list_tables().send().await?.table_names() {
        let arn =
            dynamo.describe_table().table_name(name).send().await?.table().and_then(|t| t.table_arn()).unwrap_or_default().to_string();
        let tags = dynamo.list_tags_of_resource().resource_arn(arn).send().await?;
        add("aws_dynamodb_table", tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(), name.clone());
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(config);
    for g in logs.describe_log_groups().send().await?.log_groups() {
        let name = g.log_group_name().unwrap_or_default().to_string();
        // The name-based call: no ARN juggling (the generic one wants the ARN without `:*`).
        #[allow(deprecated)]
        let tags = logs.list_tags_log_group().log_group_name(&name).send().await?;
        add("aws_cloudwatch_log_group", tags.tags().map(|t| t.clone().into_iter().collect()).unwrap_or_default(), name);
    }
    Ok(found)
}

/// Types counted by kind, not by tag: every object of the kind in the (fresh) account is the stack's.
const BY_KIND: &[&str] = &[
    "aws_lambda_function",
    "aws_apigatewayv2_api",
    "aws_apigatewayv2_integration",
    "aws_apigatewayv2_route",
    "aws_apigatewayv2_stage",
    "aws_lambda_permission",
    "aws_s3_bucket",
    "aws_cloudwatch_dashboard",
];

/// Every object of the [`BY_KIND`] types in the account, read straight from the emulator, as ids in the
/// form state keeps them: type -> sorted ids.
async fn by_kind(
    config: &aws_types::SdkConfig,
    cloudwatch: &aws_types::SdkConfig,
    bucket: &str,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut found: BTreeMap<String, Vec<String>> = BY_KIND.iter().map(|t| (t.to_string(), Vec::new())).collect();
    let mut add = |t: &str, id: String| found.entry(t.to_string()).or_default().push(id);
    let lambda = aws_sdk_lambda::Client::new(config);
    for f in lambda.list_functions().send().await.context("ListFunctions")?.functions() {
        let name = f.function_name().unwrap_or_default().to_string();
        add("aws_lambda_function", name.clone());
        let policy = match lambda.get_policy().function_name(&name).send().await {
            Ok(p) => p.policy.unwrap_or_default(),
            Err(e) if aws_sdk_lambda::error::ProvideErrorMetadata::code(&e) == Some("ResourceNotFoundException") => String::new(),
            Err(e) => return Err(anyhow::Error::from(e).context("GetPolicy")),
        };
        if !policy.is_empty() {
            let doc: serde_json::Value = serde_json::from_str(&policy)?;
            for st in doc["Statement"].as_array().cloned().unwrap_or_default() {
                add("aws_lambda_permission", format!("{name}/{}", st["Sid"].as_str().unwrap_or_default()));
            }
        }
    }
    let apigw = aws_sdk_apigatewayv2::Client::new(config);
    for api in apigw.get_apis().send().await.context("GetApis")?.items() {
        let id = api.api_id().unwrap_or_default().to_string();
        add("aws_apigatewayv2_api", id.clone());
        for i in apigw.get_integrations().api_id(&id).send().await.context("GetIntegrations")?.items() {
            add("aws_apigatewayv2_integration", format!("{id}/{}", i.integration_id().unwrap_or_default()));
        }
        for r in apigw.get_routes().api_id(&id).send().await.context("GetRoutes")?.items() {
            add("aws_apigatewayv2_route", format!("{id}/{}", r.route_id().unwrap_or_default()));
        }
        for st in apigw.get_stages().api_id(&id).send().await.context("GetStages")?.items() {
            add("aws_apigatewayv2_stage", format!("{id}/{}", st.stage_name().unwrap_or_default()));
        }
    }
    // Bucket names are global on the emulator: only this kill point's.
    for b in aws_sdk_s3::Client::new(config).list_buckets().send().await.context("ListBuckets")?.buckets() {
        if b.name() == Some(bucket) {
            add("aws_s3_bucket", bucket.to_string());
        }
    }
    for d in aws_sdk_cloudwatch::Client::new(cloudwatch).list_dashboards().send().await.context("ListDashboards")?.dashboard_entries() {
        add("aws_cloudwatch_dashboard", d.dashboard_name().unwrap_or_default().to_string());
    }
    for ids in found.values_mut() {
        ids.sort();
    }
    Ok(found)
}

/// The state is valid and the account matches it exactly: one object per address, each the one in state
/// (by tag for the tagged kinds; by kind for [`BY_KIND`], whose ids must be exactly the state's).
async fn check_converged(h: &Harness, shim: &CborShim, bucket: &str, what: &str) -> anyhow::Result<()> {
    let state: State = h.engine().state(STACK).await?;
    let found = tagged(&h.account.config).await?;
    let mut in_state: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut kinds_in_state: BTreeMap<String, Vec<String>> = BY_KIND.iter().map(|t| (t.to_string(), Vec::new())).collect();
    for (a, r) in &state.resources {
        assert_eq!(format!("{:?}", r.status), "Ready", "{what}: {a} is left {:?}", r.status);
        let id = r.id.clone().unwrap_or_default();
        if BY_KIND.contains(&r.type_name.as_str()) {
            kinds_in_state.entry(r.type_name.clone()).or_default().push(id);
        } else {
            in_state.insert((r.type_name.clone(), a.clone()), vec![id]);
        }
    }
    for ids in kinds_in_state.values_mut() {
        ids.sort();
    }
    let found_tagged: BTreeMap<(String, String), Vec<String>> =
        found.into_iter().filter(|((t, _), _)| !BY_KIND.contains(&t.as_str())).collect();
    assert_eq!(found_tagged, in_state, "{what}: the account (left) vs the state (right)");
    assert_eq!(
        by_kind(&h.account.config, &h.account.config_via(shim.endpoint()), bucket).await?,
        kinds_in_state,
        "{what}: the account (left) vs the state (right)"
    );
    assert!(state.deposed.is_empty(), "{what}: deposed objects left: {:?}", state.deposed);
    Ok(())
}

/// Where a child is killed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// As the call after its k-th mutating call arrives; that call is dropped (the run dies between calls).
    AfterMutating(u64),
    /// As the n-th create call of a type arrives (`create_of`); the call is forwarded, so AWS makes the
    /// object while the run that asked for it is dead.
    AtCreate(&'static str, usize),
}

/// The resource type whose create call this is, as the proxy names calls (`Service.Operation`, or the REST
/// method and path).
fn create_of(op: &str, bucket: &str) -> Option<&'static str> {
    let rest = |prefix: &str| op.strip_prefix(prefix);
    let by_suffix: &[(&str, &str)] = &[
        ("ec2.CreateVpc", "aws_vpc"),
        ("ec2.CreateSubnet", "aws_subnet"),
        ("ec2.CreateSecurityGroup", "aws_security_group"),
        ("DynamoDB_20120810.CreateTable", "aws_dynamodb_table"),
        ("iam.CreateRole", "aws_iam_role"),
        ("Logs_20140328.CreateLogGroup", "aws_cloudwatch_log_group"),
        ("PutDashboard", "aws_cloudwatch_dashboard"),
        ("lambda.Post/2015-03-31/functions", "aws_lambda_function"),
        ("apigateway.Post/v2/apis", "aws_apigatewayv2_api"),
        ("AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", "aws_ecs_task_definition"),
        ("ec2.CreateNatGateway", "aws_nat_gateway"),
    ];
    if let Some((_, t)) = by_suffix.iter().find(|(o, _)| op == *o || (o.starts_with("Put") && op.ends_with(*o))) {
        return Some(t);
    }
    if let Some(path) = rest("apigateway.Post/v2/apis/") {
        return match path.rsplit('/').next() {
            Some("integrations") => Some("aws_apigatewayv2_integration"),
            Some("routes") => Some("aws_apigatewayv2_route"),
            Some("stages") => Some("aws_apigatewayv2_stage"),
            Some("authorizers") => Some("aws_apigatewayv2_authorizer"),
            _ => None,
        };
    }
    if rest("lambda.Post/2015-03-31/functions/").is_some_and(|p| p.ends_with("/policy")) {
        return Some("aws_lambda_permission");
    }
    // CreateBucket is the first PUT on the bucket's own path (settings follow with a query string the
    // proxy's name leaves out, after it).
    (op.trim_end_matches('/') == format!("s3.Put/{bucket}")).then_some("aws_s3_bucket")
}

/// Runs the CLI in a child through `proxy` and kills it at `kill`. Returns whether it was killed.
async fn killed_run(
    h: &Harness,
    proxy: &Arc<FaultProxy>,
    bucket: &str,
    args: &[&str],
    kill: Kill,
    extra_env: &[(String, String)],
) -> anyhow::Result<bool> {
    proxy.set_faults(Faults::none());
    proxy.reset();
    let child: Arc<Mutex<Option<Child>>> = Arc::new(Mutex::new(None));
    let (mutating, killed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let creates: Arc<Mutex<BTreeMap<&'static str, usize>>> = Arc::default();
    {
        let (child, mutating, killed, weak, bucket) =
            (child.clone(), mutating.clone(), killed.clone(), Arc::downgrade(proxy), bucket.to_string());
        proxy.on_call(move |_, op| {
            if killed.load(Ordering::SeqCst) > 0 {
                return;
            }
            let faults = match kill {
                // Drop this call and everything after, then kill: the run dies between two calls.
                Kill::AfterMutating(k) if mutating.load(Ordering::SeqCst) >= k => {
                    Faults { rate: 1.0, drop_connection: true, ..Faults::none() }
                }
                // Forward this call (the service acts), lose its answer, and kill the run that sent it.
                Kill::AtCreate(t, n)
                    if create_of(op, &bucket) == Some(t) && {
                        let mut seen = creates.lock().unwrap();
                        let c = seen.entry(t).or_default();
                        *c += 1;
                        *c == n
                    } =>
                {
                    Faults { rate: 1.0, drop_after_forward: true, ..Faults::none() }
                }
                _ => {
                    if is_mutating(op) {
                        mutating.fetch_add(1, Ordering::SeqCst);
                    }
                    return;
                }
            };
            if let Some(p) = weak.upgrade() {
                p.set_faults(faults);
            }
            if let Some(c) = child.lock().unwrap().as_mut() {
                let _ = c.kill();
            }
            killed.store(1, Ordering::SeqCst);
        });
    }
    let state = h.state_path();
    let mut all = vec!["--state", state.to_str().unwrap_or_default(), "--no-color"];
    all.extend(args);
    // One call at a time, so "after the k-th call" is a point in the run, not a race.
    all.extend(["--parallelism", "1"]);
    let log = h.dir.path().join("child.log");
    let mut env = child::env_via(&h.account, proxy.endpoint());
    env.push((BUCKET_SUFFIX.to_string(), h.account.id.clone()));
    env.extend(extra_env.iter().cloned());
    let mut command = child::command(STACK, &all, &env)?;
    *child.lock().unwrap() = Some(command.stdout(Stdio::null()).stderr(std::fs::File::create(&log)?).spawn()?);
    let status = loop {
        if let Some(s) = child.lock().unwrap().as_mut().and_then(|c| c.try_wait().transpose()) {
            break s?;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    proxy.on_call(|_, _| {});
    let was_killed = killed.load(Ordering::SeqCst) > 0;
    if !was_killed {
        eprintln!("{} {kill:?}: finished after {} mutating calls", args[0], proxy.mutating_calls().len());
    }
    assert!(was_killed || status.success(), "{kill:?}: the child failed on its own ({status}):\n{}", std::fs::read_to_string(&log)?);
    Ok(was_killed)
}

/// One kill point: a fresh account, an apply killed at `kill`, an apply that converges; a destroy killed
/// likewise (between steps; a destroy makes nothing), a destroy that leaves nothing.
async fn kill_at(kill: Kill) -> anyhow::Result<(bool, bool)> {
    let h = Harness::new().await?;
    // CloudWatch is spoken to in CBOR, which the emulator does not speak: a shim translates, behind the proxy.
    let shim = CborShim::start(&h.account.endpoint).await?;
    h.contexts.insert(Aws::from_config(h.account.config_via(shim.endpoint())));
    let proxy = Arc::new(FaultProxy::start(shim.endpoint(), Faults::none()).await?);
    let bucket = format!("crash-{}", h.account.id);
    let s = stack(&h.account.id);

    let apply_killed = killed_run(&h, &proxy, &bucket, &["apply", "--auto-approve"], kill, &[]).await?;
    h.apply(&s).await.map_err(|e| anyhow::anyhow!("{kill:?}: apply after the kill: {e:#}"))?;
    let plan = h.plan(&s).await?;
    assert!(!plan.has_changes(), "{kill:?}: not converged:\n{}", plan.render(false));
    check_converged(&h, &shim, &bucket, &format!("apply killed at {kill:?}")).await?;
    let addresses: BTreeSet<String> = h.engine().state(STACK).await?.resources.into_keys().collect();
    assert_eq!(addresses, s.resources().iter().map(|r| r.address.clone()).collect());

    let destroy_killed = match kill {
        Kill::AfterMutating(_) => killed_run(&h, &proxy, &bucket, &["destroy", "--auto-approve"], kill, &[]).await?,
        Kill::AtCreate(..) => false,
    };
    h.destroy(&s).await.map_err(|e| anyhow::anyhow!("{kill:?}: destroy after the kill: {e:#}"))?;
    check_converged(&h, &shim, &bucket, &format!("destroy killed at {kill:?}")).await?;
    assert!(h.engine().state(STACK).await?.resources.is_empty());
    Ok((apply_killed, destroy_killed))
}

/// Every type of the crash stack, by the create call the proxy sees; the second integration and permission
/// too (the first is then in state, alike: the lookup must take the other).
const CREATES: &[(&str, usize)] = &[
    ("aws_vpc", 1),
    ("aws_subnet", 1),
    ("aws_security_group", 1),
    ("aws_dynamodb_table", 1),
    ("aws_iam_role", 1),
    ("aws_cloudwatch_log_group", 1),
    ("aws_lambda_function", 1),
    ("aws_apigatewayv2_api", 1),
    ("aws_apigatewayv2_integration", 1),
    ("aws_apigatewayv2_integration", 2),
    ("aws_apigatewayv2_route", 1),
    ("aws_apigatewayv2_stage", 1),
    ("aws_lambda_permission", 1),
    ("aws_lambda_permission", 2),
    ("aws_s3_bucket", 1),
    ("aws_cloudwatch_dashboard", 1),
];

#[tokio::test]
async fn runs_killed_at_any_point_converge_without_orphans_or_duplicates() -> anyhow::Result<()> {
    // A spread over the run: an apply of this stack makes about 24 mutating calls, a destroy about 19.
    let between = [0u64, 2, 4, 7, 10, 13, 17, 21];
    let points: Vec<Kill> =
        between.iter().map(|k| Kill::AfterMutating(*k)).chain(CREATES.iter().map(|(t, n)| Kill::AtCreate(t, *n))).collect();
    // A few at a time: the emulator and a 2-core runner serve every child and re-run at once otherwise.
    let runs: Vec<_> = futures::stream::iter(points.iter().map(|k| kill_at(*k))).buffered(6).collect().await;
    let (mut killed, mut at_create) = ((0, 0), 0);
    for (kill, r) in points.iter().zip(runs) {
        let (a, d) = r.map_err(|e| anyhow::anyhow!("kill point {kill:?}: {e:#}"))?;
        match kill {
            Kill::AfterMutating(_) => {
                killed.0 += usize::from(a);
                killed.1 += usize::from(d);
            }
            // Every create point is reached: the type's create call is in every fresh apply.
            Kill::AtCreate(..) => {
                assert!(a, "{kill:?}: the run was never killed (no such create call?)");
                at_create += 1;
            }
        }
    }
    eprintln!(
        "applies killed between steps: {} of {}, destroys killed: {} of {}, applies killed at a create: {at_create}",
        killed.0,
        between.len(),
        killed.1,
        between.len()
    );
    // Most points must land inside the run, or the test proves little.
    assert!(killed.0 >= 7 && killed.1 >= 6, "{killed:?}");
    Ok(())
}

/// One kill point of a pedidos apply: a fresh account, an apply killed at `kill`, an apply that converges
/// to exactly the state's objects (by kind, read straight from the emulator), a plan without changes; for
/// points between steps a destroy killed likewise; a destroy that leaves nothing.
async fn pedidos_kill_at(kill: Kill) -> anyhow::Result<(bool, bool)> {
    let h = Harness::new().await?;
    // pedidos' monitoring speaks CBOR to CloudWatch: the shim translates, behind the proxy.
    let shim = CborShim::start(&h.account.endpoint).await?;
    let seen = h.account.config_via(shim.endpoint());
    h.contexts.insert(Aws::from_config(seen.clone()));
    let proxy = Arc::new(FaultProxy::start(shim.endpoint(), Faults::none()).await?);
    let code = crate::pedidos_stack::fake_binary(h.dir.path())?;
    let env = [(PEDIDOS_CODE.to_string(), code.to_string_lossy().into_owned())];
    let mut s = Stack::new(STACK);
    crate::pedidos_stack::build(&mut s, &code)?;

    let apply_killed = killed_run(&h, &proxy, "", &["apply", "--auto-approve"], kill, &env).await?;
    h.apply(&s).await.map_err(|e| anyhow::anyhow!("{kill:?}: apply after the kill: {e:#}"))?;
    let plan = h.plan(&s).await?;
    assert!(!plan.has_changes(), "{kill:?}: not converged:\n{}", plan.render(false));
    crate::pedidos_stack::check_exactly_the_state(&h, &seen, &s, &format!("pedidos apply killed at {kill:?}")).await?;

    let destroy_killed = match kill {
        Kill::AfterMutating(_) => killed_run(&h, &proxy, "", &["destroy", "--auto-approve"], kill, &env).await?,
        Kill::AtCreate(..) => false,
    };
    h.destroy(&s).await.map_err(|e| anyhow::anyhow!("{kill:?}: destroy after the kill: {e:#}"))?;
    let left: BTreeMap<_, _> = crate::pedidos_stack::inventory(&seen, STACK).await?.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(left.is_empty(), "{kill:?}: left behind by destroy: {left:?}");
    assert!(h.engine().state(STACK).await?.resources.is_empty());
    Ok((apply_killed, destroy_killed))
}

/// pedidos (52 resources with its monitoring; without it, 41, whose apply one call at a time made 60 mutating
/// calls and its destroy 51: a run prints its count when a kill point lies past its end) killed at points spread over the run: between steps
/// early, mid and late, and at the start of creates inside the API (the API, the first and a later
/// integration, whose alike siblings are then in state, a route, the stage, a permission), the function,
/// the task definition and the NAT gateway. Each re-run holds exactly the objects of a clean deploy, the
/// ones in state; destroy leaves nothing.
#[tokio::test]
async fn pedidos_killed_at_many_points_converges_to_one_of_each() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let between = [3u64, 18, 33, 48];
    let creates: &[(&str, usize)] = &[
        ("aws_apigatewayv2_api", 1),
        ("aws_apigatewayv2_integration", 1),
        ("aws_apigatewayv2_integration", 4),
        ("aws_apigatewayv2_route", 2),
        ("aws_apigatewayv2_stage", 1),
        ("aws_lambda_permission", 3),
        ("aws_lambda_function", 1),
        ("aws_ecs_task_definition", 1),
        ("aws_nat_gateway", 1),
    ];
    let points: Vec<Kill> =
        between.iter().map(|k| Kill::AfterMutating(*k)).chain(creates.iter().map(|(t, n)| Kill::AtCreate(t, *n))).collect();
    // A few at a time: the emulator and a 2-core runner serve every child and re-run at once otherwise.
    let runs: Vec<_> = futures::stream::iter(points.iter().map(|k| pedidos_kill_at(*k))).buffered(4).collect().await;
    let (mut killed, mut destroys) = (0, 0);
    for (kill, r) in points.iter().zip(runs) {
        let (a, d) = r.map_err(|e| anyhow::anyhow!("pedidos kill point {kill:?}: {e:#}"))?;
        assert!(a, "{kill:?}: the apply was never killed (past the end of the run, or no such create call?)");
        killed += 1;
        destroys += usize::from(d);
    }
    eprintln!(
        "pedidos: {killed} applies killed ({} between steps, {} at a create), {destroys} destroys killed, in {:.1}s",
        between.len(),
        creates.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(destroys, between.len(), "every destroy kill point lies inside the destroy (over 51 mutating calls)");
    Ok(())
}
