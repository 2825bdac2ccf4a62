//! The pedidos API as `serve` runs it (in this process, against the emulator, after an apply), under load:
//! 1, 8 and 64 concurrent clients for a fixed time, 9 GETs of an order to 1 POST, each a new connection;
//! throughput, latency percentiles and errors; the API function's cold start (process spawn to first
//! answer); what the front door and runtime API add to a warm invocation (vs the handler called in this
//! process); and POST -> CREATED through the worker's process. Debug builds, as the tests build them.
//! `cargo test -p pedidos --bench serve -- --bench [SECONDS]`; without `--bench` (cargo test) a short smoke run.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use ferroform::aws::lambda::Code;
use ferroform::aws::Aws;
use ferroform::local::client::{request, Answer};
use ferroform::local::{Emulator, LocalProgram, ServeOptions, Served};
use ferroform::Stack;
use ferroform_testkit::Harness;
use pedidos::api::{Api, Config as ApiConfig};
use pedidos::stack::{build, Config, WORKER_CONTAINER};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The targets the issue sets.
const OVERHEAD_TARGET: Duration = Duration::from_millis(2);
const CREATED_TARGET: Duration = Duration::from_secs(2);
const ORDER: &str = r#"{"customer":"bench","items":[{"sku":"B-1","quantity":2,"price":1.5}]}"#;

struct Run {
    /// Cold starts, warm pairs, POST -> CREATED orders, seconds per load level.
    cold: usize,
    warm: usize,
    orders: usize,
    load: Duration,
}

fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let secs: Option<f64> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).find_map(|a| a.parse().ok());
    let run = if full {
        Run { cold: 5, warm: 300, orders: 10, load: Duration::from_secs_f64(secs.unwrap_or(10.0)) }
    } else {
        Run { cold: 1, warm: 5, orders: 1, load: Duration::from_secs_f64(secs.unwrap_or(0.3)) }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(run))
}

/// `served`'s API URL, after `start`.
fn url_of(served: &Served) -> anyhow::Result<String> {
    served.url("api").ok_or_else(|| anyhow::anyhow!("the API is not served"))
}

async fn bench(run: Run) -> anyhow::Result<()> {
    // The figures are the output: serve's per-request lines stay off the terminal (CloudWatch Logs get them).
    ferroform::local::logs::terminal(false);
    let h = Harness::new().await?;
    // The monitoring's CloudWatch calls are CBOR, which the emulator does not speak: a shim translates.
    let shim = ferroform_testkit::cbor::CborShim::start(&h.account.endpoint).await?;
    h.contexts.insert(Aws::from_config(h.account.config_via(shim.endpoint())));
    let mut stack = Stack::new("pedidos");
    let mut cfg = Config::new(Code::binary(env!("CARGO_BIN_EXE_pedidos-api")));
    cfg.zones = vec!["us-east-1a".into(), "us-east-1b".into()];
    build(&mut stack, &cfg)?;
    ferroform::local::function("function", LocalProgram::command(env!("CARGO_BIN_EXE_pedidos-api"), &[]));
    ferroform::local::container("worker/task", WORKER_CONTAINER, LocalProgram::command(env!("CARGO_BIN_EXE_pedidos-worker"), &[]));
    let state = h.apply(&stack).await?;
    let emulator = Emulator::new(h.account.config.clone(), h.account.env())?;
    let opts = ServeOptions { port: 0, ..ServeOptions::default() };
    println!(
        "pedidos served in-process against the emulator (moto); debug builds; {} instances of the API function at most; {} cores",
        opts.max_instances,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    // Cold start: a fresh `serve` each time; its first request spawns the function's process.
    let mut cold = Vec::new();
    for _ in 0..run.cold {
        let (stop, stopped) = watch::channel(false);
        let served = ferroform::local::start(&stack, &state, &emulator, &opts, stopped.clone()).await?;
        let url = url_of(&served)?;
        let t = Instant::now();
        let r = request(&url, "GET", "/pedidos?limit=1", &[], None).await?;
        cold.push(t.elapsed());
        anyhow::ensure!(r.status == 200, "cold GET /pedidos: {} {}", r.status, r.body);
        stop.send(true)?;
        served.wait(stopped).await;
    }

    let (stop, stopped) = watch::channel(false);
    let served = ferroform::local::start(&stack, &state, &emulator, &opts, stopped.clone()).await?;
    let url = url_of(&served)?;

    // Warm: the same requests through serve (HTTP -> front door -> runtime API -> the function's process)
    // and to the handler in this process, alternately, so both see the same emulator.
    let api = in_process_api(&emulator).await?;
    let seeded = post(&url).await?;
    let warm_id = seeded.json()["id"].as_str().unwrap_or_default().to_string();
    let cases = [
        ("GET /pedidos?limit=0 (400, no DynamoDB call)", "/pedidos".to_string(), "limit=0"),
        ("GET /pedidos/{id} (200, one GetItem)", format!("/pedidos/{warm_id}"), ""),
    ];
    let mut warm = Vec::new();
    for (label, path, query) in &cases {
        let event = event(path, query)?;
        let (mut served_t, mut direct_t) = (Vec::new(), Vec::new());
        let target = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
        for _ in 0..run.warm {
            let t = Instant::now();
            let r = request(&url, "GET", &target, &[], None).await?;
            served_t.push(t.elapsed());
            let t = Instant::now();
            let d = api.handle(&event).await;
            direct_t.push(t.elapsed());
            anyhow::ensure!(i64::from(r.status) == d.status_code, "{label}: served {} but in-process {}", r.status, d.status_code);
        }
        warm.push((label, percentile(&mut served_t, 50.0), percentile(&mut direct_t, 50.0)));
    }

    // POST -> CREATED: the worker's process runs (RunTask -> the task runner) and records the verdict.
    let mut created = Vec::new();
    for _ in 0..run.orders {
        let t = Instant::now();
        let r = post(&url).await?;
        anyhow::ensure!(r.status == 202, "POST /pedidos: {} {}", r.status, r.body);
        let id = r.json()["id"].as_str().unwrap_or_default().to_string();
        loop {
            let r = request(&url, "GET", &format!("/pedidos/{id}"), &[], None).await?;
            if r.json()["status"] == "CREATED" {
                created.push(t.elapsed());
                break;
            }
            anyhow::ensure!(t.elapsed() < Duration::from_secs(60), "order {id}: not CREATED after 60 s: {}", r.body);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // Load: 1, 8, 64 clients, each a loop of requests for `run.load`.
    let ids: Arc<Vec<String>> = Arc::new(vec![warm_id.clone()]);
    let ecs = aws_sdk_ecs::Client::new(&emulator.sdk);
    let cluster = state.outputs.get("cluster_arn").and_then(|o| o.value.as_str()).unwrap_or_default().to_string();
    let mut load = Vec::new();
    for clients in [1usize, 8, 64] {
        load.push((clients, drive(&url, clients, run.load, ids.clone()).await));
        settle(&ecs, &cluster).await;
    }

    println!();
    println!("cold start (a fresh serve; spawn of the API function to its first answer, GET /pedidos?limit=1), {} runs:", cold.len());
    let mut c = cold.clone();
    println!("  p50 {}  min {}  max {}", ms(percentile(&mut c, 50.0)), ms(percentile(&mut c, 0.0)), ms(percentile(&mut c, 100.0)));
    println!("warm, p50 of {} each, through serve vs the handler called in this process:", run.warm);
    let mut overhead_met = true;
    for (label, served_p50, direct_p50) in &warm {
        let added = served_p50.saturating_sub(*direct_p50);
        let met = added < OVERHEAD_TARGET;
        overhead_met &= met;
        println!(
            "  {label}: served {}  in-process {}  added {} (target < {}: {})",
            ms(*served_p50),
            ms(*direct_p50),
            ms(added),
            ms(OVERHEAD_TARGET),
            verdict(met)
        );
    }
    let mut cr = created.clone();
    let created_max = percentile(&mut cr, 100.0);
    println!(
        "POST -> CREATED through the worker's process (the task runner polls ListTasks every 250 ms), {} orders: p50 {}  max {} (target < {}: {})",
        created.len(),
        ms(percentile(&mut cr, 50.0)),
        ms(created_max),
        ms(CREATED_TARGET),
        verdict(created_max < CREATED_TARGET)
    );
    println!("load, {:.0} s per level, 9 GET /pedidos/{{id}} : 1 POST /pedidos, a new connection per request:", run.load.as_secs_f64());
    println!("  clients  requests   req/s        p50        p95        p99  errors    GET p50   POST p50");
    for (clients, l) in &load {
        let n = l.latencies.len();
        let mut all: Vec<Duration> = l.latencies.iter().map(|(_, d)| *d).collect();
        let of = |kind: &str| -> Vec<Duration> { l.latencies.iter().filter(|(k, _)| k.starts_with(kind)).map(|(_, d)| *d).collect() };
        let (mut gets, mut posts) = (of("GET"), of("POST"));
        println!(
            "  {clients:>7}  {n:>8}  {:>6.1}  {:>9}  {:>9}  {:>9}  {:>6}  {:>9}  {:>9}",
            n as f64 / l.took.as_secs_f64(),
            ms(percentile(&mut all, 50.0)),
            ms(percentile(&mut all, 95.0)),
            ms(percentile(&mut all, 99.0)),
            l.errors.len(),
            ms(percentile(&mut gets, 50.0)),
            ms(percentile(&mut posts, 50.0)),
        );
    }
    let errors_at_64: Vec<String> = load.iter().filter(|(c, _)| *c == 64).flat_map(|(_, l)| l.errors.iter().cloned()).collect();
    println!("  errors at 64 clients: {} (target 0: {})", errors_at_64.len(), verdict(errors_at_64.is_empty()));
    for e in errors_at_64.iter().take(5) {
        println!("    {e}");
    }
    println!("front door + runtime API under 2 ms at p50: {}", verdict(overhead_met));

    stop.send(true)?;
    served.wait(stopped).await;
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The nearest-rank percentile; `0` on no samples.
fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

async fn post(url: &str) -> std::io::Result<Answer> {
    request(url, "POST", "/pedidos", &[("content-type", "application/json")], Some(ORDER)).await
}

/// The API's handler in this process, configured as the function is deployed.
async fn in_process_api(emulator: &Emulator) -> anyhow::Result<Api> {
    let lambda = aws_sdk_lambda::Client::new(&emulator.sdk);
    let deployed = lambda.get_function_configuration().function_name("pedidos-api").send().await?;
    let vars = deployed.environment.and_then(|e| e.variables).unwrap_or_default();
    let config = ApiConfig::from_lookup(|name| vars.get(name).cloned()).map_err(|e| anyhow::anyhow!("{}", e.0))?;
    Ok(Api::new(aws_sdk_dynamodb::Client::new(&emulator.sdk), aws_sdk_ecs::Client::new(&emulator.sdk), config))
}

/// A payload format 2.0 event for `GET path?query`, as the front door would send it.
fn event(path: &str, query: &str) -> anyhow::Result<ApiGatewayV2httpRequest> {
    let params: serde_json::Map<String, serde_json::Value> =
        query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
    let mut v = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "127.0.0.1"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "127.0.0.1", "requestId": "bench",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "routeKey": "$default", "stage": "$default", "time": "01/Jan/2025:00:00:00 +0000", "timeEpoch": 1735689600000_i64
        },
        "isBase64Encoded": false
    });
    if !params.is_empty() {
        v["queryStringParameters"] = serde_json::Value::Object(params);
    }
    Ok(serde_json::from_value(v)?)
}

struct Load {
    /// Each request's kind and time.
    latencies: Vec<(&'static str, Duration)>,
    errors: Vec<String>,
    took: Duration,
}

/// `clients` loops of requests until `for_`: every 10th a POST, the others GETs of a known order.
async fn drive(url: &str, clients: usize, for_: Duration, ids: Arc<Vec<String>>) -> Load {
    let counter = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + for_;
    let mut handles = Vec::new();
    for _ in 0..clients {
        let (url, ids, counter) = (url.to_string(), ids.clone(), counter.clone());
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                let (what, want, answer) = if n % 10 == 9 {
                    ("POST /pedidos", 202, post(&url).await)
                } else {
                    ("GET /pedidos/{id}", 200, request(&url, "GET", &format!("/pedidos/{}", ids[n % ids.len()]), &[], None).await)
                };
                latencies.push((what, t.elapsed()));
                match answer {
                    Ok(r) if r.status == want => {}
                    Ok(r) => errors.push(format!("{what}: {} {}", r.status, r.body)),
                    Err(e) => errors.push(format!("{what}: {e}")),
                }
            }
            (latencies, errors)
        }));
    }
    let mut load = Load { latencies: Vec::new(), errors: Vec::new(), took: Duration::ZERO };
    for h in handles {
        match h.await {
            Ok((l, e)) => {
                load.latencies.extend(l);
                load.errors.extend(e);
            }
            Err(e) => load.errors.push(format!("a client failed: {e}")),
        }
    }
    load.took = start.elapsed();
    load
}

/// Until the workers started by a load level have finished (they share the same cores), at most 60 s.
async fn settle(ecs: &aws_sdk_ecs::Client, cluster: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        let running = ecs.list_tasks().cluster(cluster).desired_status(aws_sdk_ecs::types::DesiredStatus::Running).send().await;
        if running.map(|r| r.task_arns().is_empty()).unwrap_or(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
