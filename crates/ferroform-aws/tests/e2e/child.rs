//! The command line in a child process: this test binary re-runs itself with `CHILD` set, and the one test
//! below then runs the CLI (`plan`, `apply`, ...) on a stack picked by name, with the real argument parsing,
//! the real credential chain from the environment and the real exit code. The crash test kills such a child
//! mid-apply; the bad-input catalogue reads its stderr and exit code.

use ferroform_core::Stack;
use std::process::{Command, ExitCode};

/// Which stack the child builds (see `build`).
const CHILD: &str = "FERROFORM_E2E_CHILD";
/// The child's command line arguments, one per line.
const ARGS: &str = "FERROFORM_E2E_ARGS";

/// Only does something when started by `command`: runs the CLI and exits with its code.
#[test]
fn cli_child() {
    let Ok(kind) = std::env::var(CHILD) else { return };
    let args: Vec<String> = std::env::var(ARGS).unwrap_or_default().lines().map(str::to_string).collect();
    let opts = <ferroform_cli::Opts as clap::Parser>::parse_from(std::iter::once("ferroform".to_string()).chain(args));
    let name = match kind.as_str() {
        "crash" => "crash",
        "fenced" => crate::s3::FENCED,
        "newuser" => "newuser",
        "remote-network" => "network",
        "remote-app" => "app",
        "tfapp" | "tfapp-guarded" => "tfapp",
        "tfpedidos" => "pedidos",
        _ => "catalogue",
    };
    let code = ferroform_cli::Cli::new(name)
        .registry(ferroform_aws::registry())
        .backend("s3", s3_backend())
        .run_with(opts, move |s: &mut Stack| build(&kind, s));
    std::process::exit(if code == ExitCode::SUCCESS {
        0
    } else if code == ExitCode::from(2) {
        2
    } else {
        1
    });
}

fn build(kind: &str, s: &mut Stack) -> anyhow::Result<()> {
    match kind {
        "crash" => crate::crash::build(s),
        "fenced" => {
            crate::s3::build_fenced(s);
            Ok(())
        }
        "newuser" => crate::newuser::build(s),
        "remote-network" | "remote-app" => crate::providers::build_remote(kind, s),
        "tfapp" => crate::terraform::build(s),
        "tfapp-guarded" => crate::terraform::build_guarded(s),
        "tfpedidos" => crate::terraform_pedidos::build(s),
        other => crate::bad_input::build(other, s),
    }
}

/// `--state s3://...`, with the short lease of the S3 lock tests (so a test can outlast it).
fn s3_backend() -> ferroform_cli::BackendFactory {
    std::sync::Arc::new(|url: &str, contexts: &ferroform_core::Contexts| {
        let backend = ferroform_aws::s3::S3Backend::from_url(url, contexts.clone())?.lease(crate::s3::TEST_LEASE);
        Ok(std::sync::Arc::new(backend) as std::sync::Arc<dyn ferroform_core::Backend>)
    })
}

/// A child running the CLI on stack `kind` with `args`, its AWS settings from `env` only (no profile, no
/// instance metadata: a developer's own AWS setup must not leak in).
pub fn command(kind: &str, args: &[&str], env: &[(String, String)]) -> anyhow::Result<Command> {
    let mut c = Command::new(std::env::current_exe()?);
    c.args(["child::cli_child", "--exact", "--nocapture", "--test-threads=1"]).env(CHILD, kind).env(ARGS, args.join("\n"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k == "FERROFORM_STATE" {
            c.env_remove(k);
        }
    }
    c.env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1");
    c.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Ok(c)
}

/// `account.env()` with the endpoint replaced (a proxy in front of the emulator, or nothing at all).
pub fn env_via(account: &ferroform_testkit::Account, endpoint: &str) -> Vec<(String, String)> {
    account.env().into_iter().map(|(k, v)| if k == "AWS_ENDPOINT_URL" { (k, endpoint.to_string()) } else { (k, v) }).collect()
}
