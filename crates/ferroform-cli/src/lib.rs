//! The command line every stack program gets: `ferroform_cli::Cli::new("pedidos").run(stack)` from `main`.
//!
//! Each command parses its arguments and calls one library verb on `ferroform_core::Engine`; nothing here
//! that a Rust program could not do by calling the engine itself.

mod check;
mod commands;
mod progress;
mod signals;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use ferroform_core::{Backend, Contexts, LocalBackend, Registry, Stack};
use std::process::ExitCode;
use std::sync::Arc;

pub use check::{CheckArgs, CheckFn, CheckFormat, CheckOutcome, EXIT_FINDINGS};

/// What `serve` is given: the port of the first API, the most instances a function may run, and where JWT
/// authorizers' keys are (`--jwks`).
#[derive(Debug, Clone)]
pub struct ServeArgs {
    pub port: u16,
    pub max_instances: usize,
    /// A JWKS file or `http(s)://` URL for every JWT authorizer; `None`: `FERROFORM_JWKS`, else each issuer's.
    pub jwks: Option<String>,
}

/// Runs the stack locally (`serve`): the stack, its state, the arguments, and a flag that turns true on
/// Ctrl-C. Provided by a layer above the engine (ferroform-local), like a backend.
pub type ServeFn = Arc<
    dyn for<'a> Fn(
            &'a Stack,
            ferroform_core::State,
            ServeArgs,
            tokio::sync::watch::Receiver<bool>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send + 'a>>
        + Send
        + Sync,
>;

/// A command a stack program adds (`smoke`): its arguments after the name and the stack's outputs by name.
pub type ExtraCommand = Arc<
    dyn Fn(
            Vec<String>,
            std::collections::BTreeMap<String, serde_json::Value>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<ExitCode>> + Send>>
        + Send
        + Sync,
>;

/// Builds a state backend from a `--state` location with a given scheme (`s3://...`).
pub type BackendFactory = Arc<dyn Fn(&str, &Contexts) -> anyhow::Result<Arc<dyn Backend>> + Send + Sync>;

#[derive(Parser, Debug)]
#[command(about = "Plan and apply this stack", disable_help_subcommand = true)]
pub struct Opts {
    /// Where state lives: a file path (default `.ferroform/<stack>.state.json`) or `s3://bucket/key`.
    #[arg(long, global = true, env = "FERROFORM_STATE")]
    pub state: Option<String>,
    /// A stack variable, `name=value` (repeatable); the stack reads it with `stack.var("name")`.
    #[arg(long = "var", global = true, value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Variables from a file of `name = "value"` lines (`#` comments); `--var` wins over it.
    #[arg(long = "var-file", global = true, value_name = "FILE")]
    pub var_files: Vec<String>,
    /// Show each AWS call (-v) and more (-vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No colours, even on a terminal.
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Wait this many seconds for a held state lock before giving up.
    #[arg(long, global = true, default_value_t = 0, value_name = "SECONDS")]
    pub lock_timeout: u64,
    /// After SIGINT/SIGTERM, how long running steps may take to finish before they are abandoned.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS")]
    pub grace: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Only this resource and what it needs (repeatable).
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
    /// Replace this resource even though nothing forces it (repeatable): Terraform's `-replace`.
    #[arg(long = "replace", value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// Only show (plan) or record (apply) what changed outside ferroform; change nothing in the cloud.
    #[arg(long)]
    pub refresh_only: bool,
    /// `--refresh=false`: take state as the truth and read nothing (faster, blind to drift).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,
    /// How many steps may run at once.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show what apply would do.
    Plan {
        #[command(flatten)]
        run: RunArgs,
        /// Print the plan as JSON (schema: docs/plan-format.md).
        #[arg(long)]
        json: bool,
        /// Save the plan to FILE, for `apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<String>,
        /// Plan the destruction of everything.
        #[arg(long)]
        destroy: bool,
        /// Exit 0 for no changes, 2 for changes, 1 for an error.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Create, update and delete resources to match the stack.
    Apply {
        /// A plan saved by `plan --out`: applied exactly, or refused if anything moved since.
        plan_file: Option<String>,
        #[command(flatten)]
        run: RunArgs,
        /// Apply without asking.
        #[arg(long)]
        auto_approve: bool,
    },
    /// Delete everything the stack made, dependents first.
    Destroy {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long)]
        auto_approve: bool,
    },
    /// Read every resource and record what is live in state.
    Refresh,
    /// Check the stack without calling any API.
    Validate,
    /// Print outputs (one by name, or all).
    Output {
        name: Option<String>,
        #[arg(long)]
        json: bool,
        /// Print the bare value (for scripts).
        #[arg(long)]
        raw: bool,
    },
    /// Print the dependency graph as DOT.
    Graph,
    /// Print a plan saved with `plan --out`, as text or JSON.
    Show {
        plan_file: String,
        #[arg(long)]
        json: bool,
    },
    /// Bring an existing resource under management at ADDRESS; or, with --from-terraform, every resource of the
    /// stack from a Terraform state (nothing in the cloud changes; ferroform's state is written).
    Import {
        #[arg(required_unless_present = "from_terraform")]
        address: Option<String>,
        #[arg(required_unless_present = "from_terraform")]
        id: Option<String>,
        /// A Terraform state (format 4): a path, or s3://BUCKET/KEY.
        #[arg(long, conflicts_with_all = ["address", "id"])]
        from_terraform: Option<String>,
        /// The mapping file: read when it exists, written with a proposal when something is not settled
        /// (default: STACK.tfmap).
        #[arg(long, requires = "from_terraform")]
        map: Option<String>,
    },
    /// Inspect or edit state.
    #[command(subcommand)]
    State(StateCommand),
    /// Remove a lock left behind (see the lock error for the id).
    ForceUnlock { lock_id: String },
    /// Run the stack's HTTP APIs, functions and tasks on this machine against the local emulator (after an
    /// apply to it); Ctrl-C stops every process.
    Serve {
        /// The first API's port (the next APIs take the following ones).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Instances per function at most (concurrent requests beyond wait).
        #[arg(long, default_value_t = 8)]
        max_instances: usize,
        /// The keys JWT authorizers check tokens against, for every issuer: a JWKS file or an http(s):// URL
        /// (default: FERROFORM_JWKS, else each issuer's own, found through its OIDC discovery document).
        #[arg(long, value_name = "FILE|URL")]
        jwks: Option<String>,
    },
    /// Review the stack's resources for security and good-practice problems, without credentials or any
    /// API call. Exit 0: nothing at or above --fail-on; 3: findings; 1: error.
    Check {
        /// Fail on findings of this severity or worse: info, low, medium, high, critical.
        #[arg(long, default_value = "low", value_name = "SEVERITY")]
        fail_on: String,
        /// Print the report as JSON.
        #[arg(long, conflicts_with = "sarif")]
        json: bool,
        /// Print the report as SARIF 2.1.0 (GitHub code scanning).
        #[arg(long)]
        sarif: bool,
        /// The file SARIF results point at (default: examples/STACK.rs when it exists, else Cargo.toml).
        #[arg(long, value_name = "FILE")]
        source: Option<String>,
    },
    /// A command the stack program added (`Cli::command`), e.g. `smoke [URL]`.
    #[command(external_subcommand)]
    Extra(Vec<String>),
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// Every resource in state.
    List,
    /// One resource's state as JSON.
    Show { address: String },
    /// Forget a resource (it is not deleted).
    Rm { address: String },
    /// Move a resource to another address (nothing in the cloud changes); see also `Stack::moved`.
    Mv { from: String, to: String },
}

/// A stack program's command line.
pub struct Cli {
    name: String,
    registry: Registry,
    contexts: Contexts,
    backends: Vec<(String, BackendFactory)>,
    server: Option<ServeFn>,
    checker: Option<CheckFn>,
    extras: Vec<(String, ExtraCommand)>,
}

impl Cli {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            registry: Registry::default(),
            contexts: Contexts::new(),
            backends: Vec::new(),
            server: None,
            checker: None,
            extras: Vec::new(),
        }
    }

    /// Resource types whose state entries this program can read and delete even when the code no longer
    /// declares them.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry.merge(&registry);
        self
    }

    pub fn contexts(mut self, contexts: Contexts) -> Self {
        self.contexts = contexts;
        self
    }

    /// Handles `--state SCHEME://...`.
    pub fn backend(mut self, scheme: &str, factory: BackendFactory) -> Self {
        self.backends.push((scheme.to_string(), factory));
        self
    }

    /// Adds a command of the stack program's own: `name ARGS...` calls `run(ARGS, outputs)`.
    pub fn command(mut self, name: &str, run: ExtraCommand) -> Self {
        self.extras.push((name.to_string(), run));
        self
    }

    /// Gives the program its `serve` command.
    pub fn server(mut self, serve: ServeFn) -> Self {
        self.server = Some(serve);
        self
    }

    /// Gives the program its `check` command (the rules of the resource types it knows).
    pub fn checker(mut self, check: CheckFn) -> Self {
        self.checker = Some(check);
        self
    }

    /// Parses the process arguments, runs the command, returns the exit code.
    pub fn run(self, build: impl Fn(&mut Stack) -> anyhow::Result<()>) -> ExitCode {
        self.run_with(Opts::parse(), build)
    }

    /// Parses `args` (the program's name first) instead of the process's: for tests, and programs that make
    /// their own command lines. A usage error is printed and exits as clap's would.
    pub fn run_from<I, T>(self, args: I, build: impl Fn(&mut Stack) -> anyhow::Result<()>) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        match Opts::try_parse_from(args) {
            Ok(opts) => self.run_with(opts, build),
            Err(e) => {
                let _ = e.print();
                ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
            }
        }
    }

    pub fn run_with(self, opts: Opts, build: impl Fn(&mut Stack) -> anyhow::Result<()>) -> ExitCode {
        init_tracing(opts.verbose);
        let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("Error: can't start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        let color = !opts.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
        runtime.block_on(async {
            // Only commands that write state need a chance to save it before exiting.
            let saves_state = matches!(
                opts.command,
                Command::Apply { .. }
                    | Command::Destroy { .. }
                    | Command::Refresh
                    | Command::Import { .. }
                    | Command::State(_)
                    | Command::Serve { .. }
            );
            let signals = match signals::Signals::install(saves_state, matches!(opts.command, Command::Serve { .. })) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("Error: can't listen for signals: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = self.execute(&opts, color, &signals, build).await;
            let code = match result {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("{}", progress::paint(color, "31", &format!("Error: {}", render(&e))));
                    ExitCode::FAILURE
                }
            };
            signals.exit_code().map(ExitCode::from).unwrap_or(code)
        })
    }

    async fn execute(
        self,
        opts: &Opts,
        color: bool,
        signals: &signals::Signals,
        build: impl Fn(&mut Stack) -> anyhow::Result<()>,
    ) -> anyhow::Result<ExitCode> {
        let mut stack = Stack::new(&self.name);
        for file in &opts.var_files {
            for (k, v) in read_var_file(file)? {
                stack.set_var(&k, &v);
            }
        }
        for v in &opts.vars {
            let (k, val) = v.split_once('=').with_context(|| format!("--var `{v}` is not NAME=VALUE"))?;
            stack.set_var(k, val);
        }
        match opts.command {
            // These read or edit state only: the stack's resources are not needed, so nothing is built.
            Command::Output { .. } | Command::State(_) | Command::ForceUnlock { .. } | Command::Show { .. } | Command::Extra(_) => {}
            Command::Graph | Command::Check { .. } => {
                // The graph and the check need the resources and their references, not their code.
                ferroform_core::set_builds(false);
                build(&mut stack).context("building the stack")?;
            }
            _ => build(&mut stack).context("building the stack")?,
        }
        stack.register_types(&self.registry);
        // No state, no credentials: the check reads the declarations only.
        if let Command::Check { fail_on, json, sarif, source } = &opts.command {
            let format = if *sarif {
                CheckFormat::Sarif
            } else if *json {
                CheckFormat::Json
            } else {
                CheckFormat::Text
            };
            let color = color && std::io::IsTerminal::is_terminal(&std::io::stdout());
            let source = source.clone().unwrap_or_else(|| check::default_source(&self.name));
            let args = CheckArgs { fail_on: fail_on.clone(), format, color, source };
            return check::run(self.checker.as_ref(), &stack, &args);
        }
        let backend = self.backend_for(opts.state.as_deref())?;
        // Other stacks' states (`Stack::stack_outputs`) open through the same backends as `--state`.
        let (backends, contexts) = (self.backends.clone(), self.contexts.clone());
        self.contexts.insert(ferroform_core::StateReaders::new(Arc::new(move |location: &str| {
            open_backend(&backends, &contexts, location).map_err(|e| ferroform_core::Error::Usage(format!("{e:#}")))
        })));
        commands::run(commands::Ctx {
            stack,
            backend,
            contexts: self.contexts,
            opts,
            color,
            signals,
            server: self.server,
            extras: self.extras,
        })
        .await
    }

    fn backend_for(&self, location: Option<&str>) -> anyhow::Result<Arc<dyn Backend>> {
        let Some(location) = location else { return Ok(Arc::new(LocalBackend::default_for(&self.name))) };
        open_backend(&self.backends, &self.contexts, location).with_context(|| format!("--state `{location}`"))
    }
}

/// The backend for a state location: a registered scheme's (`s3://`), else a local path.
fn open_backend(backends: &[(String, BackendFactory)], contexts: &Contexts, location: &str) -> anyhow::Result<Arc<dyn Backend>> {
    if let Some((scheme, _)) = location.split_once("://") {
        let factory = backends
            .iter()
            .find(|(s, _)| s == scheme)
            .map(|(_, f)| f.clone())
            .with_context(|| format!("no backend for `{scheme}://` in this program"))?;
        return factory(location, contexts);
    }
    Ok(Arc::new(LocalBackend::new(location)))
}

/// `name = "value"` or `name = value` lines; blank lines and `#` comments skipped.
fn read_var_file(path: &str) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("--var-file {path}"))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').with_context(|| format!("{path}:{}: expected `name = \"value\"`", n + 1))?;
        let v = v.trim();
        let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(quoted) => {
                serde_json::from_str::<String>(&format!("\"{quoted}\"")).with_context(|| format!("{path}:{}: bad string", n + 1))?
            }
            None => v.to_string(),
        };
        out.push((k.trim().to_string(), v));
    }
    Ok(out)
}

fn init_tracing(verbose: u8) {
    let filter = match verbose {
        0 => "warn",
        1 => "warn,ferroform_core=info,ferroform_aws=debug",
        _ => "debug,hyper=info,h2=info,rustls=info",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FERROFORM_LOG").unwrap_or_else(|_| filter.into()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The error and its causes, each once: engine errors already quote their source (`addr: create failed:
/// Code: message`), and anyhow's `{:#}` would print that source a second time.
fn render(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use anyhow::Context;
    use ferroform_core::{Error, ProviderError};

    #[test]
    fn render_prints_each_cause_once() {
        let source = ProviderError { code: Some("AccessDenied".into()), message: "not allowed".into(), hint: None };
        let e = anyhow::Error::new(Error::Provider { address: "aws.iam.Role.api".into(), operation: "create", source });
        assert_eq!(render(&e), "aws.iam.Role.api: create failed: AccessDenied: not allowed");
        let e = Err::<(), _>(std::io::Error::other("disk full")).context("writing state").unwrap_err();
        assert_eq!(render(&e), "writing state: disk full");
    }
}
