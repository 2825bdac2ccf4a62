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
    assert!(Opts::try_parse_from(["stack", "frobnicate"]).is_err());
    assert!(cloud.calls().is_empty());
    Ok(())
}
