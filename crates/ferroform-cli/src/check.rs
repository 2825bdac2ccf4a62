//! `check`: the stack's security and good-practice review. The rules know the provider's types, so they
//! come from the layer above (the facade gives the AWS ones, as it gives `serve`); this module parses the
//! arguments, runs the checker, prints its report and turns it into the exit code.

use anyhow::bail;
use ferroform_core::Stack;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit code when findings at or above `--fail-on` remain (0: none; 1: the check itself failed).
pub const EXIT_FINDINGS: u8 = 3;

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFormat {
    Text,
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
}

/// What the checker is given.
#[derive(Debug, Clone)]
pub struct CheckArgs {
    /// `info`, `low`, `medium`, `high` or `critical`: the checker parses it (and refuses anything else).
    pub fail_on: String,
    pub format: CheckFormat,
    pub color: bool,
    /// The file SARIF results point at (relative to the repository root).
    pub source: String,
}

/// What the checker answers: the rendered report and how many findings fail the check.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub report: String,
    pub blocking: usize,
}

/// Reviews a stack: given by a layer that knows the resource types (ferroform-aws through the facade).
pub type CheckFn = Arc<dyn Fn(&Stack, &CheckArgs) -> anyhow::Result<CheckOutcome> + Send + Sync>;

pub(crate) fn run(checker: Option<&CheckFn>, stack: &Stack, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let Some(checker) = checker else { bail!("this program was built without resource rules: no `check`") };
    let outcome = checker(stack, args)?;
    print!("{}", outcome.report);
    if !outcome.report.ends_with('\n') {
        println!();
    }
    Ok(if outcome.blocking > 0 { ExitCode::from(EXIT_FINDINGS) } else { ExitCode::SUCCESS })
}

/// The stack program's own source when it is an example of this package (`examples/NAME.rs`), else the
/// manifest: SARIF needs a file, and that is where the stack is declared.
pub(crate) fn default_source(stack: &str) -> String {
    let example = format!("examples/{stack}.rs");
    if std::path::Path::new(&example).exists() {
        example
    } else {
        "Cargo.toml".to_string()
    }
}
