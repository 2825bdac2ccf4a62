//! The command line, run in-process over the in-memory provider: exit codes and refusals.

use clap::Parser;
use ferroform_cli::{Cli, Opts};
use ferroform_core::memory::{Cloud, Mem, Thing};
use ferroform_core::{Contexts, Stack};
use std::process::ExitCode;
use std::sync::Arc;

fn stack(s: &mut Stack) -> anyhow::Result<()> {
    let a = s.add("a", Thing::new(s.var_or("name", "a")));
    s.add("b", Thing::new("b").value(a.arn()));
    s.output("a_arn", a.arn());
    Ok(())
}

fn run(cloud: &Arc<Cloud>, state: &std::path::Path, args: &[&str]) -> ExitCode {
    let contexts = Contexts::new();
    contexts.insert(Mem(cloud.clone()));
    let mut argv = vec!["stack".to_string(), "--state".into(), state.display().to_string(), "--no-color".into()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let opts = Opts::parse_from(argv);
    Cli::new("t").contexts(contexts).registry(ferroform_core::memory::registry()).run_with(opts, stack)
}

#[test]
fn plan_apply_and_exit_codes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("s.json");
    let cloud = Cloud::new();
    assert_eq!(run(&cloud, &state, &["validate"]), ExitCode::SUCCESS);
    assert_eq!(run(&cloud, &state, &["plan", "--detailed-exitcode"]), ExitCode::from(2));
    // No terminal to confirm on, no --auto-approve: refused, nothing made.
    assert_eq!(run(&cloud, &state, &["apply"]), ExitCode::FAILURE);
    assert!(cloud.objects().is_empty());
    assert_eq!(run(&cloud, &state, &["apply", "--auto-approve"]), ExitCode::SUCCESS);
    assert_eq!(cloud.objects().len(), 2);
    assert_eq!(run(&cloud, &state, &["plan", "--detailed-exitcode"]), ExitCode::SUCCESS);
    assert_eq!(run(&cloud, &state, &["output", "a_arn", "--raw"]), ExitCode::SUCCESS);
    assert_eq!(run(&cloud, &state, &["output", "nope"]), ExitCode::FAILURE);
    assert_eq!(run(&cloud, &state, &["state", "list"]), ExitCode::SUCCESS);
    assert_eq!(run(&cloud, &state, &["graph"]), ExitCode::SUCCESS);

    // A saved plan applies; applied twice, the second is stale.
    let plan = dir.path().join("p.json");
    let plan = plan.to_str().unwrap_or_default();
    assert_eq!(run(&cloud, &state, &["--var", "name=a2", "plan", "--out", plan]), ExitCode::SUCCESS);
    assert_eq!(run(&cloud, &state, &["--var", "name=a2", "apply", plan]), ExitCode::SUCCESS);
    assert!(cloud.objects().values().any(|o| o.thing.name == "a2"));
    assert_eq!(run(&cloud, &state, &["--var", "name=a2", "apply", plan]), ExitCode::FAILURE);

    assert_eq!(run(&cloud, &state, &["destroy", "--auto-approve"]), ExitCode::SUCCESS);
    assert!(cloud.objects().is_empty());
    Ok(())
}

#[test]
fn bad_vars_and_unknown_state_backends_fail_cleanly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cloud = Cloud::new();
    assert_eq!(run(&cloud, &dir.path().join("s.json"), &["--var", "novalue", "plan"]), ExitCode::FAILURE);
    let contexts = Contexts::new();
    contexts.insert(Mem(cloud.clone()));
    let opts = Opts::parse_from(["stack", "--state", "gcs://bucket/key", "plan"]);
    assert_eq!(Cli::new("t").contexts(contexts).run_with(opts, stack), ExitCode::FAILURE);
    // An unknown command is taken as one the program may add, then refused (exit 1, nothing called).
    assert_eq!(run(&cloud, &dir.path().join("s.json"), &["frobnicate"]), ExitCode::FAILURE);
    assert!(cloud.calls().is_empty());
    Ok(())
}

/// Ten independent resources; each call takes `FF_TEST_LATENCY_MS`, `slow` takes 20 s.
fn ten(s: &mut Stack) -> anyhow::Result<()> {
    for i in 0..10 {
        s.add(&format!("r{i}"), Thing::new(format!("r{i}")));
    }
    Ok(())
}

/// Not a test on its own: the child process the signal tests start (does nothing without its variable).
#[test]
fn signal_child() {
    let Ok(state) = std::env::var("FF_TEST_SIGNAL_STATE") else { return };
    let cloud = Cloud::with_latency(std::time::Duration::from_millis(300));
    cloud.slow("r1", std::time::Duration::from_secs(20));
    let contexts = Contexts::new();
    contexts.insert(Mem(cloud));
    let grace = std::env::var("FF_TEST_GRACE").unwrap_or_else(|_| "30".into());
    let argv = ["stack", "--state", &state, "--no-color", "--grace", &grace, "apply", "--auto-approve", "--parallelism", "2"];
    let code = Cli::new("t").contexts(contexts).registry(ferroform_core::memory::registry()).run_with(Opts::parse_from(argv), ten);
    let n = [0u8, 1, 2, 130, 143].into_iter().find(|c| code == ExitCode::from(*c)).map(i32::from).unwrap_or(99);
    std::process::exit(n);
}

/// Starts the child apply, waits until its state shows work under way, sends `signals` SIGTERMs, returns
/// its exit code and the state it left.
fn apply_and_signal(grace: &str, signals: usize) -> anyhow::Result<(Option<i32>, ferroform_core::State, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("s.json");
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["--exact", "signal_child", "--nocapture", "--test-threads", "1"])
        .env("FF_TEST_SIGNAL_STATE", &state)
        .env("FF_TEST_GRACE", grace)
        .spawn()?;
    // Signalled once r1 (20 s) is under way: its `creating` record is written before its create call (to the
    // state's journal, during a run).
    let started = std::time::Instant::now();
    let journal = dir.path().join("s.json.journal");
    while !std::fs::read_to_string(&state).unwrap_or_default().contains("\"r1\"")
        && !std::fs::read_to_string(&journal).unwrap_or_default().contains("\"r1\"")
    {
        anyhow::ensure!(started.elapsed() < std::time::Duration::from_secs(60), "the child made nothing");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for _ in 0..signals {
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // A hang guard, not a timing claim: the child would otherwise run for minutes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill()?;
            anyhow::bail!("the child did not exit after the signal(s)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let saved = ferroform_core::State::parse(&std::fs::read(&state)?, "s.json")?;
    // The lock was released: another run can take it at once.
    let backend = ferroform_core::LocalBackend::new(&state);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(ferroform_core::Backend::lock(&backend, &ferroform_core::LockInfo::new("check")))?;
    Ok((status.code(), saved, dir))
}

#[test]
fn sigterm_finishes_running_steps_saves_state_releases_the_lock_and_exits_143() -> anyhow::Result<()> {
    // Grace 1 s: r1's 20 s create is abandoned (left `creating` for the next run to adopt), the others finish.
    let (code, state, _dir) = apply_and_signal("1", 1)?;
    assert_eq!(code, Some(143));
    let made = state.resources.values().filter(|r| r.id.is_some()).count();
    assert!(made > 0 && made < 10, "{made} made");
    assert_eq!(state.resources.get("r1").map(|r| r.status), Some(ferroform_core::state::Status::Creating), "{:?}", state.resources.keys());
    Ok(())
}

#[test]
fn a_second_sigterm_abandons_running_steps_at_once() -> anyhow::Result<()> {
    // Grace 30 s, but the second signal does not wait for r1's 20 s create.
    let (code, state, _dir) = apply_and_signal("30", 2)?;
    assert_eq!(code, Some(143));
    assert_eq!(state.resources.get("r1").map(|r| r.status), Some(ferroform_core::state::Status::Creating));
    Ok(())
}

#[test]
fn terraform_verbs_replace_refresh_only_show_state_mv_and_var_files() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("s.json");
    let cloud = Cloud::new();
    let vars = dir.path().join("prod.tfvars");
    std::fs::write(&vars, "# the name\nname = \"from-file\"\n")?;
    let var_file = vars.to_str().unwrap_or_default();
    assert_eq!(run(&cloud, &state, &["--var-file", var_file, "apply", "--auto-approve"]), ExitCode::SUCCESS);
    assert!(cloud.objects().values().any(|o| o.thing.name == "from-file"), "the var file was read");
    let id_of = |name: &str| cloud.objects().into_iter().find(|(_, o)| o.thing.name == name).map(|(id, _)| id);
    let before = id_of("b");

    // --replace makes a new object even though nothing changed.
    assert_eq!(run(&cloud, &state, &["--var-file", var_file, "apply", "--auto-approve", "--replace", "b"]), ExitCode::SUCCESS);
    let after = id_of("b");
    assert!(before.is_some() && after.is_some() && before != after, "{before:?} -> {after:?}");
    assert_eq!(run(&cloud, &state, &["--var-file", var_file, "plan", "--replace", "nope"]), ExitCode::FAILURE);

    // Drift: a refresh-only plan shows it and changes nothing; its apply records it in state only.
    let b = after.unwrap_or_default();
    cloud.tamper(&b, |t| t.size = Some(9));
    cloud.reset_calls();
    assert_eq!(run(&cloud, &state, &["--var-file", var_file, "plan", "--refresh-only", "--detailed-exitcode"]), ExitCode::from(2));
    assert_eq!(run(&cloud, &state, &["--var-file", var_file, "apply", "--refresh-only", "--auto-approve"]), ExitCode::SUCCESS);
    assert!(cloud.calls().iter().all(|c| c.starts_with("read")), "{:?}", cloud.calls());
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state)?)?;
    assert_eq!(saved["resources"]["b"]["inputs"]["size"], 9, "the drift is in state");
    // --refresh=false trusts state: no read at all, and state now agrees with the drift, so no change shows.
    cloud.reset_calls();
    cloud.tamper(&b, |t| t.size = Some(5));
    assert_eq!(run(&cloud, &state, &["--var-file", var_file, "plan", "--refresh=false", "--detailed-exitcode"]), ExitCode::from(2));
    assert!(cloud.calls().is_empty(), "{:?}", cloud.calls());

    // show PLANFILE, as text and JSON.
    let plan = dir.path().join("p.json");
    let plan = plan.to_str().unwrap_or_default();
    assert_eq!(run(&cloud, &state, &["--var-file", var_file, "plan", "--out", plan]), ExitCode::SUCCESS);
    assert_eq!(run(&cloud, &state, &["show", plan]), ExitCode::SUCCESS);
    assert_eq!(run(&cloud, &state, &["show", plan, "--json"]), ExitCode::SUCCESS);
    assert_eq!(run(&cloud, &state, &["show", "/nonexistent.json"]), ExitCode::FAILURE);

    // state mv: the entry and what depends on it move; nothing in the cloud is called.
    cloud.reset_calls();
    assert_eq!(run(&cloud, &state, &["state", "mv", "a", "a2"]), ExitCode::SUCCESS);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state)?)?;
    assert!(saved["resources"]["a2"].is_object() && saved["resources"]["a"].is_null());
    assert_eq!(saved["resources"]["b"]["dependencies"], serde_json::json!(["a2"]));
    assert_eq!(run(&cloud, &state, &["state", "mv", "nope", "x"]), ExitCode::FAILURE);
    assert!(cloud.calls().is_empty());
    Ok(())
}

#[test]
fn commands_that_read_state_never_build_the_stack() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("s.json");
    let cloud = Cloud::new();
    assert_eq!(run(&cloud, &state, &["apply", "--auto-approve"]), ExitCode::SUCCESS);
    let built = std::sync::atomic::AtomicUsize::new(0);
    let counting = |s: &mut Stack| {
        built.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        stack(s)
    };
    let run_counting = |args: &[&str]| {
        let contexts = Contexts::new();
        contexts.insert(Mem(cloud.clone()));
        let mut argv = vec!["stack".to_string(), "--state".into(), state.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        Cli::new("t").contexts(contexts).registry(ferroform_core::memory::registry()).run_with(Opts::parse_from(argv), counting)
    };
    for args in [&["output"][..], &["output", "a_arn", "--raw"], &["state", "list"], &["state", "show", "a"], &["force-unlock", "x"]] {
        run_counting(args);
    }
    assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 0, "no command above evaluated the stack");
    assert!(ferroform_core::builds_enabled());
    assert_eq!(run_counting(&["graph"]), ExitCode::SUCCESS);
    assert!(!ferroform_core::builds_enabled(), "graph evaluates the stack with builds off");
    ferroform_core::set_builds(true);
    Ok(())
}

/// `serve --jwks FILE|URL` reaches the local runtime as given (ferroform-local reads it; its tests cover the
/// file, the URL and a wrong path); without it, `None` (the env var or each issuer's keys).
#[test]
fn serve_passes_jwks_to_the_local_runtime() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("s.json");
    let cloud = Cloud::new();
    assert_eq!(run(&cloud, &state, &["apply", "--auto-approve"]), ExitCode::SUCCESS);
    let seen: Arc<std::sync::Mutex<Vec<ferroform_cli::ServeArgs>>> = Arc::default();
    for args in [&["serve", "--jwks", "keys.json", "--port", "9000"][..], &["serve"]] {
        let contexts = Contexts::new();
        contexts.insert(Mem(cloud.clone()));
        let mut argv = vec!["stack".to_string(), "--state".into(), state.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let record = seen.clone();
        let server: ferroform_cli::ServeFn = Arc::new(move |_, _, args, _| {
            record.lock().map(|mut s| s.push(args)).ok();
            Box::pin(async { Ok(()) })
        });
        let cli = Cli::new("t").contexts(contexts).registry(ferroform_core::memory::registry()).server(server);
        assert_eq!(cli.run_with(Opts::parse_from(argv), stack), ExitCode::SUCCESS);
    }
    let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    assert_eq!(seen.iter().map(|a| (a.port, a.jwks.clone())).collect::<Vec<_>>(), [(9000, Some("keys.json".into())), (8080, None)]);
    Ok(())
}
