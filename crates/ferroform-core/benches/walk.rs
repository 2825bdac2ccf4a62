//! A synthetic 1,000-resource graph whose provider calls sleep a fixed latency: plan and apply wall time
//! against the critical-path lower bound (longest dependency chain x latency). Prints figures; asserts
//! nothing about time. `cargo bench -p ferroform-core --bench walk [-- N LATENCY_MS]`.

use ferroform_core::memory::{Cloud, Mem, Thing};
use ferroform_core::{Contexts, Engine, LocalBackend, PlanOptions, Stack};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Node i depends on up to two earlier nodes picked by a fixed LCG: a DAG with long and short chains.
fn graph(n: usize) -> (Stack, usize, usize) {
    let mut s = Stack::new("bench");
    let mut handles = Vec::with_capacity(n);
    let mut depth = vec![1usize; n];
    let mut seed: u64 = 42;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for i in 0..n {
        let mut t = Thing::new(format!("r{i}"));
        if i > 0 && next() % 4 != 0 {
            // Mostly near neighbours, so chains are long; sometimes far back.
            let a = i - 1 - next() % i.min(40);
            let b = next() % i;
            t = t.value(format!("{}|{}", handles[a], handles[b]));
            depth[i] = depth[a].max(depth[b]) + 1;
        }
        let h = s.add(&format!("r{i}"), t);
        handles.push(h.arn().to_string());
    }
    let longest = depth.iter().copied().max().unwrap_or(0);
    let mut per_level = vec![0usize; longest + 1];
    for d in &depth {
        per_level[*d] += 1;
    }
    let width = per_level.into_iter().max().unwrap_or(1);
    (s, longest, width)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: then only a quick smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(if full { 1000 } else { 50 });
    let latency = Duration::from_millis(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(if full { 50 } else { 1 }));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (stack, chain, width) = graph(n);
        let dir = tempfile::tempdir()?;
        let cloud = Cloud::with_latency(latency);
        let contexts = Contexts::new();
        contexts.insert(Mem(cloud.clone()));
        let engine = Engine::new(Arc::new(LocalBackend::new(dir.path().join("state.json")))).contexts(contexts).parallelism(width);
        let lower = latency * chain as u32;
        println!("graph: {n} resources, longest chain {chain}, widest level {width}; latency {latency:?} per call; parallelism {width}");

        let t = Instant::now();
        let plan = engine.plan(&stack, &PlanOptions::default()).await?;
        println!("plan (nothing exists yet):     {:>8.3}s  ({} to add)", t.elapsed().as_secs_f64(), plan.summary.add);

        let t = Instant::now();
        let (_, state) = engine.apply(&stack, &PlanOptions::default()).await?;
        let apply = t.elapsed();
        println!(
            "apply (create all):            {:>8.3}s  lower bound {:.3}s (chain {chain} x {latency:?})  ratio {:.3}  (state serial {})",
            apply.as_secs_f64(),
            lower.as_secs_f64(),
            apply.as_secs_f64() / lower.as_secs_f64(),
            state.serial
        );

        cloud.reset_calls();
        let t = Instant::now();
        let plan = engine.plan(&stack, &PlanOptions::default()).await?;
        let reads = cloud.calls().len();
        println!(
            "plan (no changes, {reads} reads):  {:>8.3}s  lower bound {:.3}s (one read round)  changes: {}",
            t.elapsed().as_secs_f64(),
            latency.as_secs_f64(),
            plan.has_changes()
        );

        let t = Instant::now();
        // Planned and walked apart, to show which part is over its bound.
        let session = engine.begin(&stack, &PlanOptions { destroy: true, ..Default::default() }).await?;
        let planned = t.elapsed();
        session.apply().await?;
        let destroy = t.elapsed();
        println!(
            "destroy (reverse order):       {:>8.3}s  lower bound {:.3}s (one read round + chain)  ratio {:.3}",
            destroy.as_secs_f64(),
            (lower + latency).as_secs_f64(),
            destroy.as_secs_f64() / (lower + latency).as_secs_f64()
        );
        println!(
            "  of which plan (1000 reads):  {:>8.3}s  walk {:.3}s: ratio {:.3} to the chain",
            planned.as_secs_f64(),
            (destroy - planned).as_secs_f64(),
            (destroy - planned).as_secs_f64() / lower.as_secs_f64()
        );
        anyhow::Ok(())
    })
}
