//! How the engine scales: plan and apply wall time from 50 to 10,000 resources with an instant provider (the
//! engine's own cost), and the process's peak memory. Prints figures; asserts nothing.
//! `cargo bench -p ferroform-core --bench scale [-- --size N ...]`.

use ferroform_core::memory::{Cloud, Mem, Thing};
use ferroform_core::{Contexts, Engine, LocalBackend, PlanOptions, Stack};
use std::sync::Arc;
use std::time::Instant;

fn stack(n: usize) -> Stack {
    let mut s = Stack::new("scale");
    let mut prev: Option<String> = None;
    for i in 0..n {
        let mut t = Thing::new(format!("r{i}")).size((i % 1000) as u64);
        // Chains of 10: a realistic mix of dependent and independent resources.
        if let (Some(p), true) = (&prev, i % 10 != 0) {
            t = t.value(p.clone());
        }
        let h = s.add(&format!("r{i}"), t);
        prev = Some(h.arn().to_string());
    }
    s
}

/// Peak resident memory of this process so far, from the kernel.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        println!("{:>7} {:>12} {:>12} {:>14} {:>12} {:>14}", "n", "plan new", "apply", "plan no-op", "state KiB", "peak RSS MiB");
        // `cargo bench` passes --bench; `cargo test --all-targets` does not: then only a quick smoke run.
        // `--size N` (repeatable) runs those sizes only: one size per process under a profiler.
        let args: Vec<String> = std::env::args().collect();
        let chosen: Vec<usize> = args.windows(2).filter(|w| w[0] == "--size").filter_map(|w| w[1].parse().ok()).collect();
        let sizes: &[usize] = if !chosen.is_empty() {
            &chosen
        } else if args.iter().any(|a| a == "--bench") {
            &[50, 500, 2000, 10_000]
        } else {
            &[50]
        };
        let mut applies = std::collections::BTreeMap::new();
        for &n in sizes {
            let dir = tempfile::tempdir()?;
            let cloud = Cloud::new();
            let contexts = Contexts::new();
            contexts.insert(Mem(cloud.clone()));
            let path = dir.path().join("state.json");
            let engine = Engine::new(Arc::new(LocalBackend::new(&path))).contexts(contexts).parallelism(64);
            let s = stack(n);
            let t = Instant::now();
            engine.plan(&s, &PlanOptions::default()).await?;
            let plan_new = t.elapsed();
            let t = Instant::now();
            engine.apply(&s, &PlanOptions::default()).await?;
            let apply = t.elapsed();
            applies.insert(n, apply.as_secs_f64());
            let t = Instant::now();
            let p = engine.plan(&s, &PlanOptions::default()).await?;
            let noop = t.elapsed();
            anyhow::ensure!(!p.has_changes(), "a second plan should be empty");
            let kib = std::fs::metadata(&path)?.len() as f64 / 1024.0;
            println!(
                "{n:>7} {:>11.3}s {:>11.3}s {:>13.3}s {kib:>12.0} {:>14.1}",
                plan_new.as_secs_f64(),
                apply.as_secs_f64(),
                noop.as_secs_f64(),
                peak_rss_mib()
            );
        }
        // Issue 17's targets, said plainly.
        if let (Some(small), Some(big)) = (applies.get(&2000), applies.get(&10_000)) {
            let met = |ok: bool| if ok { "met" } else { "NOT met" };
            println!("apply of 10000: {big:.3}s, target under 2 s: {}", met(*big < 2.0));
            println!("apply growth 2000 -> 10000: {:.1}x, target at most 6x: {}", big / small, met(big / small <= 6.0));
            println!("peak RSS: {:.1} MiB, target under 200 MiB: {}", peak_rss_mib(), met(peak_rss_mib() < 200.0));
        }
        anyhow::Ok(())
    })
}
