//! An apply, and a destroy, killed with SIGKILL at many points, then run again: it converges, nothing is
//! orphaned (every resource carrying the stack's tag is in the state), nothing is duplicated, the state is
//! valid. The killed run is the real command line in a child process (`child.rs`) whose calls go through a
//! proxy; the proxy kills it as the call after its k-th mutating call arrives, and drops that call.

use crate::child;
use ferroform_aws::dynamodb::{AttrType, Table};
use ferroform_aws::ec2::{Rule, SecurityGroup, Subnet, Vpc};
use ferroform_aws::iam::Role;
use ferroform_aws::logs::LogGroup;
use ferroform_aws::Aws;
use ferroform_core::{Options, Stack, State};
use ferroform_testkit::proxy::{is_mutating, FaultProxy, Faults};
use ferroform_testkit::Harness;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const STACK: &str = "crash";

/// Small, with dependencies, one resource of each kind of identity: cloud-assigned ids (VPC, subnet,
/// security group) and names (table, role, log group).
pub fn build(s: &mut Stack) {
    let vpc = s.add("vpc", Vpc::new("10.20.0.0/16"));
    s.add("subnet", Subnet::new(vpc.id(), "10.20.1.0/24"));
    s.add("sg", SecurityGroup::new("crash-web", vpc.id()).ingress(Rule::tcp(443).cidr("10.20.0.0/16")));
    let table = s.add_with("table", Table::on_demand("crash-orders").hash_key("id", AttrType::S), Options::new().prevent_destroy(false));
    s.add("role", Role::for_service("lambda.amazonaws.com").allow(["dynamodb:GetItem"], [table.arn()]));
    s.add("logs", LogGroup::new("/crash/app").retention_days(7));
}

fn stack() -> Stack {
    let mut s = Stack::new(STACK);
    build(&mut s);
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

/// The state is valid and the account matches it exactly: one object per address, each the one in state.
async fn check_converged(h: &Harness, what: &str) -> anyhow::Result<()> {
    let state: State = h.engine().state(STACK).await?;
    let found = tagged(&h.account.config).await?;
    let in_state: BTreeMap<(String, String), Vec<String>> = state
        .resources
        .iter()
        .map(|(a, r)| {
            assert_eq!(format!("{:?}", r.status), "Ready", "{what}: {a} is left {:?}", r.status);
            ((r.type_name.clone(), a.clone()), vec![r.id.clone().unwrap_or_default()])
        })
        .collect();
    assert_eq!(found, in_state, "{what}: the account (left) vs the state (right)");
    assert!(state.deposed.is_empty(), "{what}: deposed objects left: {:?}", state.deposed);
    Ok(())
}

/// Runs the CLI in a child through `proxy` and kills it as the call after its `k`-th mutating call
/// arrives (that call is dropped: nothing is in flight once it is dead). Returns whether it was killed.
async fn killed_run(h: &Harness, proxy: &Arc<FaultProxy>, args: &[&str], k: u64) -> anyhow::Result<bool> {
    proxy.set_faults(Faults::none());
    proxy.reset();
    let child: Arc<Mutex<Option<Child>>> = Arc::new(Mutex::new(None));
    let (mutating, killed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    {
        let (child, mutating, killed, weak) = (child.clone(), mutating.clone(), killed.clone(), Arc::downgrade(proxy));
        proxy.on_call(move |_, op| {
            if killed.load(Ordering::SeqCst) > 0 {
                return;
            }
            if mutating.load(Ordering::SeqCst) >= k {
                // Drop this call and everything after, then kill: the run dies between two calls.
                if let Some(p) = weak.upgrade() {
                    p.set_faults(Faults { rate: 1.0, drop_connection: true, ..Faults::none() });
                }
                if let Some(c) = child.lock().unwrap().as_mut() {
                    let _ = c.kill();
                }
                killed.store(1, Ordering::SeqCst);
                return;
            }
            if is_mutating(op) {
                mutating.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let state = h.state_path();
    let mut all = vec!["--state", state.to_str().unwrap_or_default(), "--no-color"];
    all.extend(args);
    // One call at a time, so "after the k-th call" is a point in the run, not a race.
    all.extend(["--parallelism", "1"]);
    let log = h.dir.path().join("child.log");
    let env = child::env_via(&h.account, proxy.endpoint());
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
    assert!(was_killed || status.success(), "k={k}: the child failed on its own ({status}):\n{}", std::fs::read_to_string(&log)?);
    Ok(was_killed)
}

/// One kill point: a fresh account, an apply killed after the k-th mutating call, an apply that converges;
/// a destroy killed likewise, a destroy that leaves nothing.
async fn kill_at(k: u64) -> anyhow::Result<(bool, bool)> {
    let h = Harness::new().await?;
    h.contexts.insert(Aws::from_config(h.account.config.clone()));
    let proxy = Arc::new(FaultProxy::start(&h.account.endpoint, Faults::none()).await?);
    let s = stack();

    let apply_killed = killed_run(&h, &proxy, &["apply", "--auto-approve"], k).await?;
    h.apply(&s).await.map_err(|e| anyhow::anyhow!("k={k}: apply after the kill: {e:#}"))?;
    let plan = h.plan(&s).await?;
    assert!(!plan.has_changes(), "k={k}: not converged:\n{}", plan.render(false));
    check_converged(&h, &format!("apply killed after mutating call {k}")).await?;
    let addresses: BTreeSet<String> = h.engine().state(STACK).await?.resources.into_keys().collect();
    assert_eq!(addresses, s.resources().iter().map(|r| r.address.clone()).collect());

    let destroy_killed = killed_run(&h, &proxy, &["destroy", "--auto-approve"], k).await?;
    h.destroy(&s).await.map_err(|e| anyhow::anyhow!("k={k}: destroy after the kill: {e:#}"))?;
    check_converged(&h, &format!("destroy killed after mutating call {k}")).await?;
    assert!(h.engine().state(STACK).await?.resources.is_empty());
    Ok((apply_killed, destroy_killed))
}

#[tokio::test]
async fn runs_killed_at_any_point_converge_without_orphans_or_duplicates() -> anyhow::Result<()> {
    // A spread over the run: an apply of this stack makes about 10 mutating calls, a destroy about 6.
    let points = [0u64, 1, 2, 3, 4, 5, 6, 8];
    let runs = futures::future::join_all(points.iter().map(|k| kill_at(*k))).await;
    let mut killed = (0, 0);
    for (k, r) in points.iter().zip(runs) {
        let (a, d) = r.map_err(|e| anyhow::anyhow!("kill point {k}: {e:#}"))?;
        killed.0 += usize::from(a);
        killed.1 += usize::from(d);
    }
    eprintln!("applies killed: {} of {}, destroys killed: {} of {}", killed.0, points.len(), killed.1, points.len());
    // Most points must land inside the run, or the test proves little.
    assert!(killed.0 >= 7 && killed.1 >= 5, "{killed:?}");
    Ok(())
}
