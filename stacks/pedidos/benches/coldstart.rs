//! The API function's binary as built for Lambda: its size, its zip's size (what is uploaded and unpacked),
//! and its cold start through `serve` (a fresh `serve`, its first request: the function's process spawned,
//! initialised, answering a GET that reads the table), median of several, per build given.
//! `cargo test -p pedidos --bench coldstart -- --bench LABEL=PATH...` (scripts/bench passes the release and
//! the `lambda` profile builds); without paths, the debug binary the tests build.

use ferroform::aws::lambda::Code;
use ferroform::aws::Aws;
use ferroform::local::client::request;
use ferroform::local::{Emulator, LocalProgram, ServeOptions};
use ferroform::Stack;
use ferroform_testkit::cbor::CborShim;
use ferroform_testkit::Harness;
use pedidos::stack::{build, Config};
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let mut builds: Vec<(String, String)> =
        std::env::args().skip(1).filter_map(|a| a.split_once('=').map(|(l, p)| (l.to_string(), p.to_string()))).collect();
    if builds.is_empty() {
        builds.push(("debug (as the tests build it)".into(), env!("CARGO_BIN_EXE_pedidos-api").into()));
    }
    let runs = if full { 7 } else { 1 };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(&builds, runs))
}

async fn bench(builds: &[(String, String)], runs: usize) -> anyhow::Result<()> {
    ferroform::local::logs::terminal(false);
    let h = Harness::new().await?;
    // The monitoring's CloudWatch calls are CBOR, which the emulator does not speak: a shim translates.
    let shim = CborShim::start(&h.account.endpoint).await?;
    h.contexts.insert(Aws::from_config(h.account.config_via(shim.endpoint())));
    let dir = tempfile::tempdir()?;
    let mut stack = Stack::new("pedidos");
    let mut cfg = Config::new(Code::binary(env!("CARGO_BIN_EXE_pedidos-api")));
    cfg.zones = vec!["us-east-1a".into(), "us-east-1b".into()];
    build(&mut stack, &cfg)?;
    let state = h.apply(&stack).await?;
    let emulator = Emulator::new(h.account.config.clone(), h.account.env())?;
    let opts = ServeOptions { port: 0, ..ServeOptions::default() };
    println!("pedidos-api: cold start = a fresh `serve`, its first GET /pedidos?limit=1 (median of {runs}); zip = deflate, as uploaded");
    println!("{:<44} {:>12} {:>12} {:>12} {:>10}", "build", "binary", "zip", "cold start", "min");
    for (label, path) in builds {
        let size = std::fs::metadata(path)?.len();
        let copy = dir.path().join(format!("bootstrap-{}", label.len()));
        std::fs::copy(path, &copy)?;
        let zip = match Code::binary(&copy) {
            Code::Zip { size, .. } => size,
            other => anyhow::bail!("{label}: {other:?}"),
        };
        ferroform::local::function("function", LocalProgram::command(path, &[]));
        let mut cold = Vec::new();
        for _ in 0..runs {
            let (stop, stopped) = watch::channel(false);
            let served = ferroform::local::start(&stack, &state, &emulator, &opts, stopped.clone()).await?;
            let url = served.url("api").ok_or_else(|| anyhow::anyhow!("the API is not served"))?;
            let t = Instant::now();
            let r = request(&url, "GET", "/pedidos?limit=1", &[], None).await?;
            cold.push(t.elapsed());
            anyhow::ensure!(r.status == 200, "{label}: cold GET /pedidos: {} {}", r.status, r.body);
            stop.send(true)?;
            served.wait(stopped).await;
        }
        cold.sort();
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
        println!("{label:<44} {:>12} {:>12} {:>12} {:>10}", mib(size), mib(zip), ms(cold[cold.len() / 2]), ms(cold[0]));
    }
    drop(shim);
    Ok(())
}
