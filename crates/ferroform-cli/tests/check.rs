//! `check` through the command line with a stand-in checker: exit codes, formats and a program without rules.

use ferroform_cli::{CheckFormat, CheckOutcome, Cli};
use ferroform_core::memory::Thing;
use ferroform_core::Stack;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

fn stack(s: &mut Stack) -> anyhow::Result<()> {
    s.add("a", Thing::new("a"));
    s.add("b", Thing::new("b"));
    Ok(())
}

/// What the checker was asked: resources, --fail-on, format, SARIF source.
type Seen = Arc<Mutex<Vec<(usize, String, CheckFormat, String)>>>;

/// A checker finding one blocking problem per resource at `high` and below; records what it was asked.
fn cli(seen: Seen) -> Cli {
    Cli::new("t").checker(Arc::new(move |stack, args| {
        seen.lock().map_err(|e| anyhow::anyhow!("{e}"))?.push((
            stack.resources().len(),
            args.fail_on.clone(),
            args.format,
            args.source.clone(),
        ));
        let blocking = match args.fail_on.as_str() {
            "critical" => 0,
            "low" | "high" => stack.resources().len(),
            other => anyhow::bail!("unknown severity `{other}`"),
        };
        Ok(CheckOutcome { report: format!("{blocking} finding(s)"), blocking })
    }))
}

#[test]
fn exit_0_when_clean_3_with_findings_1_on_error() {
    let seen: Seen = Arc::default();
    let run = |args: &[&str]| {
        let mut argv = vec!["t", "--no-color", "--state", "s3://no-such-backend/t.json", "check"];
        argv.extend(args);
        // No state is opened (an s3:// location without a backend would fail otherwise).
        cli(seen.clone()).run_from(argv, stack)
    };
    assert_eq!(run(&[]), ExitCode::from(3));
    assert_eq!(run(&["--fail-on", "critical"]), ExitCode::SUCCESS);
    assert_eq!(run(&["--fail-on", "nope"]), ExitCode::FAILURE);
    assert_eq!(run(&["--sarif", "--source", "examples/t.rs"]), ExitCode::from(3));
    assert_eq!(run(&["--json", "--fail-on", "high"]), ExitCode::from(3));
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(seen[0], (2, "low".to_string(), CheckFormat::Text, "Cargo.toml".to_string()));
    assert_eq!(seen[3], (2, "low".to_string(), CheckFormat::Sarif, "examples/t.rs".to_string()));
    assert_eq!((seen[4].1.as_str(), seen[4].2), ("high", CheckFormat::Json));
}

#[test]
fn a_program_without_rules_says_so() {
    assert_eq!(Cli::new("t").run_from(["t", "check"], stack), ExitCode::FAILURE);
}
