//! A no-op plan of the pedidos stack on the local emulator, every call through a proxy adding 50 ms: API
//! calls per resource, by operation, and wall time, next to what Terraform's AWS provider would need
//! (about 1.8 calls per resource, each resource read by itself, 10 at a time).
//! `cargo bench -p pedidos --bench noop [-- LATENCY_MS]`; without `--bench` (cargo test) a 1 ms smoke run.

use ferroform::aws::lambda::Code;
use ferroform::aws::Aws;
use ferroform::{Contexts, Engine, LocalBackend, PlanOptions, Stack};
use ferroform_testkit::proxy::{FaultProxy, Faults};
use pedidos::stack::{build, Config};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Terraform's AWS provider: calls per resource on a refresh, and its default parallelism.
const TERRAFORM_CALLS_PER_RESOURCE: f64 = 1.8;
const TERRAFORM_PARALLELISM: f64 = 10.0;

fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let latency = Duration::from_millis(args.first().and_then(|a| a.parse().ok()).unwrap_or(if full { 50 } else { 1 }));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let upstream = ferroform_testkit::emulator().await?;
        // The monitoring's CloudWatch calls are CBOR, which the emulator does not speak: a shim translates.
        let shim = ferroform_testkit::cbor::CborShim::start(&upstream).await?;
        let proxy = FaultProxy::start(shim.endpoint(), Faults::none()).await?;
        let account = ferroform_testkit::account().await?;
        let dir = tempfile::tempdir()?;
        let contexts = Contexts::new();
        contexts.insert(Aws::from_config(account.config_via(proxy.endpoint())));
        let engine = Engine::new(Arc::new(LocalBackend::new(dir.path().join("state.json")))).contexts(contexts);

        // The stack as the example declares it, with the API's debug binary (the emulator never runs it).
        let mut stack = Stack::new("pedidos");
        let mut cfg = Config::new(Code::binary(env!("CARGO_BIN_EXE_pedidos-api")));
        cfg.zones = vec!["us-east-1a".into(), "us-east-1b".into()];
        build(&mut stack, &cfg)?;
        let resources = stack.resources().len();

        engine.apply(&stack, &PlanOptions::default()).await?;
        proxy.set_faults(Faults { latency, ..Faults::none() });
        proxy.reset();
        let t = Instant::now();
        let plan = engine.plan(&stack, &PlanOptions::default()).await?;
        let took = t.elapsed();
        anyhow::ensure!(!plan.has_changes(), "the second plan has changes:\n{}", plan.render(false));
        let calls = proxy.calls();
        let mut by_op = BTreeMap::<&str, usize>::new();
        for c in &calls {
            *by_op.entry(c.as_str()).or_default() += 1;
        }
        let mut by_op: Vec<_> = by_op.into_iter().collect();
        by_op.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));

        let per = calls.len() as f64 / resources as f64;
        let terraform_calls = TERRAFORM_CALLS_PER_RESOURCE * resources as f64;
        let terraform_time = (terraform_calls / TERRAFORM_PARALLELISM).ceil() * latency.as_secs_f64();
        println!("pedidos: {resources} resources; no-op plan with {latency:?} added to every call");
        println!("  ferroform: {} calls ({per:.2} per resource), {:.2}s", calls.len(), took.as_secs_f64());
        println!(
            "  Terraform's AWS provider, for comparison: ~{terraform_calls:.0} calls ({TERRAFORM_CALLS_PER_RESOURCE} per resource), >= {terraform_time:.2}s at 10 at a time"
        );
        println!("  calls by operation: {}", by_op.iter().map(|(op, n)| format!("{op} x{n}")).collect::<Vec<_>>().join(", "));

        // The same plan in an account that holds many unrelated roles: the one-call listing of the account
        // (GetAccountAuthorizationDetails) grows with the account, the one-by-one reads a least-privilege
        // plan role falls back to grow with the stack.
        let unrelated = if full { 1000 } else { 20 };
        let iam = aws_sdk_iam::Client::new(&account.config);
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        for i in 0..unrelated {
            iam.create_role().role_name(format!("unrelated-{i}")).assume_role_policy_document(trust).send().await?;
        }
        for (label, deny) in [("account listing", vec![]), ("listing denied, one by one", vec!["GetAccountAuthorizationDetails".to_string()])] {
            proxy.set_faults(Faults { latency, deny, ..Faults::none() });
            proxy.reset();
            let t = Instant::now();
            let plan = engine.plan(&stack, &PlanOptions::default()).await?;
            let took = t.elapsed();
            anyhow::ensure!(!plan.has_changes(), "{label}: the plan has changes:\n{}", plan.render(false));
            let iam_calls = proxy.calls().iter().filter(|c| c.starts_with("iam.")).count();
            println!(
                "  with {unrelated} unrelated roles in the account, {label}: {} calls ({iam_calls} to IAM), {:.2}s",
                proxy.calls().len(),
                took.as_secs_f64()
            );
        }
        proxy.set_faults(Faults::none());
        engine.destroy(&stack).await?;
        anyhow::Ok(())
    })
}
