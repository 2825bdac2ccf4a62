//! Real AWS resources on the local emulator (subnets and security groups in one VPC, IAM roles, log groups,
//! DynamoDB tables), every call through a proxy that adds 50 ms: apply and no-op plan wall time of 500
//! resources next to their lower bounds, sequential (parallelism 1) vs parallel; and how a no-op plan's
//! calls and time grow from 50 to 500 to 2,000 resources. The lower bound of apply is the larger of the
//! critical path (its API calls x latency) and the total calls x latency / parallelism.
//! `cargo bench -p ferroform-aws --bench cost [-- LATENCY_MS]`; without `--bench` (cargo test) a small smoke run.

use ferroform_aws::dynamodb::{AttrType, Table};
use ferroform_aws::ec2::{SecurityGroup, Subnet, Vpc};
use ferroform_aws::iam::Role;
use ferroform_aws::logs::LogGroup;
use ferroform_aws::Aws;
use ferroform_core::{Contexts, Engine, LocalBackend, Options, PlanOptions, Stack};
use ferroform_testkit::proxy::{FaultProxy, Faults};
use ferroform_testkit::Account;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The five kinds, in the order they are dealt out.
const KINDS: [&str; 5] = ["subnet", "security-group", "role", "log-group", "table"];

/// A VPC and `n - 1` resources dealt out over the five kinds; subnets and groups depend on the VPC.
fn stack(name: &str, n: usize) -> Stack {
    let mut s = Stack::new(name);
    let vpc = s.add("vpc", Vpc::new("10.0.0.0/16"));
    for i in 0..n.saturating_sub(1) {
        let kind = KINDS[i % KINDS.len()];
        let address = format!("{kind}-{i}");
        let unique = format!("{name}-{i}");
        match kind {
            // /27s: 2,048 of them fit the /16.
            "subnet" => {
                s.add(&address, Subnet::new(vpc.id(), format!("10.0.{}.{}/27", i / 8 % 256, (i % 8) * 32)).availability_zone("us-east-1a"));
            }
            "security-group" => {
                s.add(&address, SecurityGroup::new(&unique, vpc.id()).description("bench"));
            }
            "role" => {
                s.add(&address, Role::for_service("lambda.amazonaws.com").name(&unique));
            }
            "log-group" => {
                s.add(&address, LogGroup::new(format!("/bench/{unique}")).retention_days(7));
            }
            _ => {
                // Tables are protected by default; the bench destroys what it made.
                s.add_with(&address, Table::on_demand(&unique).hash_key("id", AttrType::S), Options::new().prevent_destroy(false));
            }
        }
    }
    s
}

struct Bench {
    proxy: FaultProxy,
}

impl Bench {
    /// An engine over a fresh account and state file, every call through the proxy.
    async fn engine(&self, parallelism: usize) -> anyhow::Result<(Engine, tempfile::TempDir)> {
        let account: Account = ferroform_testkit::account().await?;
        let dir = tempfile::tempdir()?;
        let contexts = Contexts::new();
        contexts.insert(Aws::from_config(account.config_via(self.proxy.endpoint())));
        let engine = Engine::new(Arc::new(LocalBackend::new(dir.path().join("state.json")))).contexts(contexts).parallelism(parallelism);
        Ok((engine, dir))
    }

    fn latency(&self, latency: Duration) {
        self.proxy.set_faults(Faults { latency, ..Faults::none() });
        self.proxy.reset();
    }

    /// Calls made by applying `s` from nothing, in a fresh account.
    async fn calls_to_create(&self, s: &Stack) -> anyhow::Result<usize> {
        let (engine, _dir) = self.engine(1).await?;
        self.latency(Duration::ZERO);
        engine.apply(s, &PlanOptions::default()).await?;
        Ok(self.proxy.calls().len())
    }
}

/// `Service.Operation xN, ...`, most frequent first.
fn by_operation(calls: &[String]) -> String {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for c in calls {
        *counts.entry(c.as_str()).or_default() += 1;
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.iter().map(|(op, n)| format!("{op} x{n}")).collect::<Vec<_>>().join(", ")
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let latency = Duration::from_millis(args.first().and_then(|a| a.parse().ok()).unwrap_or(if full { 50 } else { 1 }));
    let (size, growth): (usize, Vec<usize>) = if full { (500, vec![50, 500, 2000]) } else { (10, vec![5, 10]) };
    let parallel = 10;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let upstream = ferroform_testkit::emulator().await?;
        let bench = Bench { proxy: FaultProxy::start(&upstream, Faults::none()).await? };

        // What each kind costs to create on its own: the critical path is the VPC then its slowest child.
        let vpc_calls = bench.calls_to_create(&stack("cost-vpc", 1)).await?;
        let mut per_kind = Vec::new();
        for (k, kind) in KINDS.iter().enumerate() {
            let one = stack(&format!("cost-{kind}"), k + 2);
            // Stack `k + 2` holds the VPC and one of each kind up to `kind`: the difference is this kind.
            let before: usize = per_kind.iter().sum();
            let total = bench.calls_to_create(&one).await?;
            per_kind.push(total.saturating_sub(vpc_calls + before));
        }
        println!("calls to create one: vpc {vpc_calls}, {}", KINDS.iter().zip(&per_kind).map(|(k, c)| format!("{k} {c}")).collect::<Vec<_>>().join(", "));
        let chain = (vpc_calls + per_kind[0].max(per_kind[1])).max(per_kind[2..].iter().copied().max().unwrap_or(0));

        println!("\n{size} resources, {latency:?} added to every call:");
        let s = stack("cost", size);
        for parallelism in [1, parallel] {
            if parallelism == 1 && !full && size > 10 {
                continue;
            }
            let (engine, _dir) = bench.engine(parallelism).await?;
            bench.latency(latency);
            let t = Instant::now();
            engine.apply(&s, &PlanOptions::default()).await?;
            let took = t.elapsed();
            let calls = bench.proxy.calls().len();
            let path = latency * chain as u32;
            let throughput = latency * calls as u32 / parallelism as u32;
            let bound = path.max(throughput);
            println!(
                "  apply, parallelism {parallelism:>2}: {:>8.2}s  {calls} calls ({:.2}/resource)  lower bound {:.2}s (critical path {chain} calls {:.2}s; calls/parallelism {:.2}s)  ratio {:.2}",
                secs(took),
                calls as f64 / size as f64,
                secs(bound),
                secs(path),
                secs(throughput),
                secs(took) / secs(bound)
            );
            bench.latency(latency);
            let t = Instant::now();
            let plan = engine.plan(&s, &PlanOptions::default()).await?;
            let took = t.elapsed();
            let calls = bench.proxy.calls().len();
            println!("  no-op plan calls by operation: {}", by_operation(&bench.proxy.calls()));
            // Reads of one type go out together (a batch), so the floor is one call's latency; reading
            // resource by resource, one call at a time, would take calls x latency.
            println!(
                "  no-op plan, parallelism {parallelism:>2}: {:>8.2}s  {calls} calls ({:.2}/resource)  one call at a time would take {:.2}s  changes: {}",
                secs(took),
                calls as f64 / size as f64,
                secs(latency * calls as u32),
                plan.has_changes()
            );
            anyhow::ensure!(!plan.has_changes(), "the no-op plan has changes:\n{}", plan.render(false));
            bench.latency(Duration::ZERO);
            engine.destroy(&s).await?;
        }

        println!("\nno-op plan by size, parallelism {parallel}, {latency:?} per call:");
        for n in growth {
            let s = stack(&format!("grow{n}"), n);
            let (engine, _dir) = bench.engine(parallel).await?;
            bench.latency(Duration::ZERO);
            engine.apply(&s, &PlanOptions::default()).await?;
            bench.latency(latency);
            let t = Instant::now();
            let plan = engine.plan(&s, &PlanOptions::default()).await?;
            let took = t.elapsed();
            let calls = bench.proxy.calls().len();
            println!(
                "  {n:>5} resources: {:>7.2}s  {calls:>5} calls ({:.2}/resource)  changes: {}",
                secs(took),
                calls as f64 / n as f64,
                plan.has_changes()
            );
            bench.latency(Duration::ZERO);
            engine.destroy(&s).await?;
        }
        anyhow::Ok(())
    })
}
