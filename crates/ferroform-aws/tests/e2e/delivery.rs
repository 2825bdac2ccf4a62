//! Issue 15: the delivery workflow's shell steps do what examples/github-actions/README.md says. The `deploy`
//! job of examples/github-actions/deploy.yml, read from the YAML (so a change to the workflow is what gets
//! tested), runs step by step with `bash -e` as GitHub runs a `run:` step, for the `hello` entry of its
//! matrix, as on a push to main, against this test's emulator account; then the `notify` job.
//!
//! Faked only where GitHub (or Docker) is the other side: the contexts that `${{ }}` reads (github, vars,
//! secrets, matrix, steps), `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` files, the `uses:` steps (the checkout
//! is a directory linking the repository's examples/ and stacks/, credentials are the account's), and
//! `cargo`, `docker` and `gh` stand-ins on PATH that record their arguments. The `cargo` stand-in runs the
//! stack program built before the jobs run (target/debug/examples/hello, found from this test's own path;
//! `cargo build` here is a no-op when `cargo test --all-targets` built it) instead of compiling it inside a
//! step, and records `cargo test` without running it (this test is one of those tests). AWS is the emulator:
//! the stack program, the AWS CLI (`aws ecr get-login-password`, from scripts/ci-tools' venv) and the SDK
//! reads that prove each claim. The emulator serves no API URL, so the smoke step's `URL` (checked to be the
//! deployed `api_url` first) is replaced: by `serve` running the deployed stack with the real handler
//! (target/debug/hello) after the first deploy, by a local listener answering 500 after the second.
//!
//! 1. First deploy at SHA1: the repository made by `apply --target repository`, the image pushed as
//!    REPO:SHA1, the plan applied with `--var image_tag=SHA1` (GetFunction: the image is REPO:SHA1), the job
//!    summary starts with the API URL (the state object's `api_url`, read from S3), the smoke test passes,
//!    the job succeeds and `notify` is skipped.
//! 2. Second deploy at SHA2 whose smoke test fails: SHA1 read from state as the running tag, SHA2 applied
//!    (GetFunction after the apply step), the smoke step fails, the rollback step applies SHA1 again and
//!    fails the job saying what was rolled back (log and summary), and GetFunction reads REPO:SHA1.
//! 3. `notify` with the `DEPLOY_WEBHOOK_URL` secret: the failure is POSTed to a local listener as
//!    `{"text": ...}` naming SHA2; `gh` is not called. Without the secret: `gh issue comment` on the
//!    `DEPLOY_ISSUE` variable's issue, else `gh issue create` (the stand-in's recorded arguments).
//!
//! About 17 s here (the test binary and the two programs already built), most of it the five applies.
//!
//! Two more tests, with the same runner: a pull request (`test` runs `check` of every stack; `plan` posts
//! hello's plan as a comment without a sensitive value) and the deploy job's `pedidos` entry (the worker's
//! running image read from state, rolled back to); see each test's own comment.

use anyhow::Context as _;
use ferroform_core::{Stack, State};
use ferroform_local::{Emulator, LocalProgram, ServeOptions, Served};
use ferroform_testkit::cbor::CborShim;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const STACK: &str = "hello";
const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";

/// The outcome of a step (`steps.ID.outcome`) or a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One step as it ran.
#[derive(Debug)]
struct StepRun {
    name: String,
    outcome: Outcome,
    /// The step's `env:` as the workflow evaluates it (before the test replaces anything).
    env: BTreeMap<String, String>,
    outputs: BTreeMap<String, String>,
    /// stdout then stderr.
    log: String,
    /// The function's image (GetFunction) after the step; `None` when there is no function.
    image_after: Option<String>,
}

#[derive(Debug)]
struct JobRun {
    outcome: Outcome,
    steps: Vec<StepRun>,
    /// Every step's GITHUB_STEP_SUMMARY, in order, as GitHub shows the job summary.
    summary: String,
}

impl JobRun {
    fn step(&self, name_has: &str) -> &StepRun {
        let found: Vec<&StepRun> = self.steps.iter().filter(|s| s.name.contains(name_has)).collect();
        assert_eq!(found.len(), 1, "one step named like `{name_has}` in {:?}", self.steps.iter().map(|s| &s.name).collect::<Vec<_>>());
        found[0]
    }
}

/// What the test does around a step: where the smoke test is sent, and the SDK read after each step.
struct Side {
    lambda: aws_sdk_lambda::Client,
    smoke: Smoke,
    /// The task definition family whose image is read after each step instead of the hello function's.
    worker: Option<(aws_sdk_ecs::Client, String)>,
}

enum Smoke {
    /// No smoke step expected (the notify job).
    None,
    /// `serve` the stack as deployed (state read from S3) with the real handler, and smoke-test that.
    Serve(Box<ServeFrom>),
    /// Any other URL (a listener answering 500).
    At(String),
}

struct ServeFrom {
    s3: aws_sdk_s3::Client,
    bucket: String,
    config: aws_types::SdkConfig,
    account_env: Vec<(String, String)>,
    image_tag: String,
    handler: PathBuf,
    running: Option<(Served, tokio::sync::watch::Sender<bool>, tokio::sync::watch::Receiver<bool>)>,
}

impl Side {
    /// Env replacing what the workflow gives `step`: the smoke step's URL.
    async fn before(&mut self, step: &Value) -> anyhow::Result<Vec<(String, String)>> {
        let is_smoke = step["run"].as_str().is_some_and(|r| r.contains("smoke.sh"));
        if !is_smoke {
            return Ok(vec![]);
        }
        let url = match &mut self.smoke {
            Smoke::None => anyhow::bail!("a smoke step in a job that should have none"),
            Smoke::At(url) => url.clone(),
            Smoke::Serve(from) => from.start().await?,
        };
        Ok(vec![("URL".into(), url)])
    }

    async fn after(&self) -> Option<String> {
        if let Some((ecs, family)) = &self.worker {
            return worker_image(ecs, family).await;
        }
        function_image(&self.lambda, STACK).await
    }
}

impl ServeFrom {
    /// `serve` of the deployed stack: the state the job wrote to S3, the handler binary for the image.
    async fn start(&mut self) -> anyhow::Result<String> {
        let state = state_object(&self.s3, &self.bucket).await?;
        let mut stack = Stack::new(STACK);
        stack.set_var("image_tag", &self.image_tag);
        stack.set_var("region", ferroform_testkit::REGION);
        hello::stack::stack(&mut stack)?;
        ferroform_local::function("function", LocalProgram::command(&self.handler, &[]));
        let emulator = Emulator::new(self.config.clone(), self.account_env.clone())?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let opts = ServeOptions { port: 0, max_instances: 1, jwks: None };
        let served = ferroform_local::start(&stack, &state, &emulator, &opts, stopped.clone()).await?;
        let url = served.url("api").context("serve has no `api`")?;
        self.running = Some((served, stop, stopped));
        Ok(url)
    }

    async fn stop(&mut self) {
        if let Some((served, stop, stopped)) = self.running.take() {
            let _ = stop.send(true);
            served.wait(stopped).await;
        }
    }
}

/// The function's image (GetFunction).
async fn function_image(lambda: &aws_sdk_lambda::Client, name: &str) -> Option<String> {
    let got = lambda.get_function().function_name(name).send().await.ok()?;
    got.code().and_then(|c| c.image_uri()).map(String::from)
}

/// After a first deploy: the stack's ECR repository (its URL), which the job's `tag running now` step named,
/// finding no tag running before.
async fn first_deploy_repository(ecr: &aws_sdk_ecr::Client, name: &str, first: &JobRun) -> anyhow::Result<String> {
    let repos = ecr.describe_repositories().repository_names(name).send().await?;
    let repo_url = repos.repositories().first().and_then(|r| r.repository_uri()).context("no repository")?.to_string();
    let before = first.step("tag running now");
    assert_eq!(before.outputs.get("repository"), Some(&repo_url));
    assert_eq!(before.outputs.get("previous_tag").map(String::as_str), Some(""), "nothing ran before the first deploy");
    Ok(repo_url)
}

/// The image of the first container of the family's latest active revision (DescribeTaskDefinition).
async fn worker_image(ecs: &aws_sdk_ecs::Client, family: &str) -> Option<String> {
    let got = ecs.describe_task_definition().task_definition(family).send().await.ok()?;
    got.task_definition()?.container_definitions().first()?.image().map(String::from)
}

/// The state object the workflow keeps in S3 (`s3://STATE_BUCKET/STACK.json`), read with the SDK.
async fn state_object(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<State> {
    let key = format!("{STACK}.json");
    let got = s3.get_object().bucket(bucket).key(&key).send().await.with_context(|| format!("GetObject s3://{bucket}/{key}"))?;
    let bytes = got.body.collect().await?.into_bytes();
    serde_json::from_slice(&bytes).with_context(|| format!("s3://{bucket}/{key} is not a state"))
}

/// Runs jobs of the workflow as a GitHub runner would, in a checkout directory.
struct Runner {
    checkout: PathBuf,
    scratch: PathBuf,
    /// What the runner's environment holds before the workflow's `env:` (PATH, HOME, AWS credentials).
    base_env: BTreeMap<String, String>,
    workflow_env: BTreeMap<String, String>,
    /// The contexts expressions read: github, vars, secrets.
    contexts: Value,
    ran: usize,
}

impl Runner {
    async fn run_job(&mut self, job: &Value, matrix: Value, needs_failed: bool, side: &mut Side) -> anyhow::Result<JobRun> {
        let mut ctx = self.contexts.clone();
        ctx["matrix"] = matrix;
        ctx["env"] = json!(self.workflow_env);
        ctx["steps"] = json!({});
        let mut summary = String::new();
        let mut steps = Vec::new();
        if let Some(cond) = job["if"].as_str() {
            if !condition(cond, &ctx, needs_failed) {
                return Ok(JobRun { outcome: Outcome::Skipped, steps, summary });
            }
        }
        let mut job_env = self.workflow_env.clone();
        for (k, v) in job["env"].as_object().into_iter().flatten() {
            job_env.insert(k.clone(), interpolate(&scalar(v), &ctx));
        }
        ctx["env"] = json!(job_env);
        let mut failed = false;
        for step in job["steps"].as_array().context("a job without steps")? {
            let name = step["name"].as_str().or(step["uses"].as_str()).or(step["run"].as_str()).unwrap_or("?").to_string();
            assert!(step.get("continue-on-error").is_none() && step.get("shell").is_none(), "{name}: not run by this test");
            let cond = step["if"].as_str().unwrap_or("success()");
            let mut run = StepRun {
                name: name.clone(),
                outcome: Outcome::Skipped,
                env: BTreeMap::new(),
                outputs: BTreeMap::new(),
                log: String::new(),
                image_after: None,
            };
            if condition(cond, &ctx, failed) {
                if let Some(script) = step["run"].as_str() {
                    for (k, v) in step["env"].as_object().into_iter().flatten() {
                        run.env.insert(k.clone(), interpolate(&scalar(v), &ctx));
                    }
                    let mut env = self.base_env.clone();
                    env.extend(job_env.clone());
                    env.extend(run.env.clone());
                    env.extend(side.before(step).await?);
                    let (outcome, outputs, log, step_summary) = self.run_script(&interpolate(script, &ctx), env).await?;
                    (run.outcome, run.outputs, run.log) = (outcome, outputs, log);
                    summary.push_str(&step_summary);
                } else {
                    // `uses:` steps are GitHub's: the checkout and the credentials are already here.
                    run.outcome = Outcome::Success;
                }
                run.image_after = side.after().await;
            }
            eprintln!("--- step `{name}`: {}\n{}", run.outcome.as_str(), run.log);
            failed |= run.outcome == Outcome::Failure;
            if let Some(id) = step["id"].as_str() {
                ctx["steps"][id] = json!({"outcome": run.outcome.as_str(), "conclusion": run.outcome.as_str(), "outputs": run.outputs});
            }
            steps.push(run);
        }
        let outcome = if failed { Outcome::Failure } else { Outcome::Success };
        Ok(JobRun { outcome, steps, summary })
    }

    /// `bash -e SCRIPT` (a `run:` step without `shell:`), with fresh GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files.
    async fn run_script(
        &mut self,
        script: &str,
        mut env: BTreeMap<String, String>,
    ) -> anyhow::Result<(Outcome, BTreeMap<String, String>, String, String)> {
        self.ran += 1;
        let file = |what: &str| self.scratch.join(format!("{what}-{}", self.ran));
        let (script_file, output_file, summary_file) = (file("step.sh"), file("output"), file("summary"));
        std::fs::write(&script_file, script)?;
        std::fs::write(&output_file, "")?;
        std::fs::write(&summary_file, "")?;
        env.insert("GITHUB_OUTPUT".into(), output_file.display().to_string());
        env.insert("GITHUB_STEP_SUMMARY".into(), summary_file.display().to_string());
        let out = tokio::process::Command::new("bash")
            .arg("-e")
            .arg(&script_file)
            .current_dir(&self.checkout)
            .env_clear()
            .envs(env)
            .stdin(std::process::Stdio::null())
            .output()
            .await?;
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let outcome = if out.status.success() { Outcome::Success } else { Outcome::Failure };
        let outputs = parse_outputs(&std::fs::read_to_string(&output_file)?);
        Ok((outcome, outputs, log, std::fs::read_to_string(&summary_file)?))
    }
}

/// `name=value` and `name<<DELIMITER` ... `DELIMITER` lines, as GitHub reads GITHUB_OUTPUT.
fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let eq = line.find('=');
        match line.find("<<") {
            Some(h) if eq.is_none_or(|e| h < e) => {
                let delimiter = &line[h + 2..];
                let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
                out.insert(line[..h].to_string(), value.join("\n"));
            }
            _ => {
                if let Some((k, v)) = line.split_once('=') {
                    out.insert(k.to_string(), v.to_string());
                }
            }
        }
    }
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A context path (`steps.before.outputs.previous_tag`): missing outputs, vars and secrets are '', as on
/// GitHub; anything else missing is a workflow this test does not understand.
fn lookup(path: &str, ctx: &Value) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    let mut v = ctx;
    for (i, p) in parts.iter().enumerate() {
        match v.get(*p) {
            Some(next) => v = next,
            None if ["vars", "secrets"].contains(&parts[0]) || (i > 0 && parts[i - 1] == "outputs") => return String::new(),
            None => panic!("the workflow reads `{path}`, which this test does not provide"),
        }
    }
    scalar(v)
}

/// A literal ('text') or a context path.
fn operand(e: &str, ctx: &Value) -> String {
    match e.strip_prefix('\'').and_then(|e| e.strip_suffix('\'')) {
        Some(text) => text.replace("''", "'"),
        None => {
            assert!(e.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)), "expression `{e}`: not understood by this test");
            lookup(e, ctx)
        }
    }
}

/// `${{ EXPR }}` in a string replaced by its value.
fn interpolate(s: &str, ctx: &Value) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").unwrap_or_else(|| panic!("unclosed ${{{{ in `{s}`")) + start;
        out.push_str(&operand(rest[start + 3..end].trim(), ctx));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// An `if:`: terms joined by `&&`, each a status function or `A == B` / `A != B`. Without a status
/// function, `success() &&` is implied, as on GitHub. `failed`: an earlier step (or a needed job) failed.
fn condition(expr: &str, ctx: &Value, failed: bool) -> bool {
    let e = expr.trim();
    let e = e.strip_prefix("${{").and_then(|e| e.strip_suffix("}}")).unwrap_or(e).trim();
    assert!(!e.contains("||"), "`{e}`: not understood by this test");
    let status = ["success()", "failure()", "always()", "cancelled()"];
    let mut value = status.iter().any(|s| e.contains(s)) || !failed;
    for term in e.split("&&").map(str::trim) {
        value &= match term {
            "success()" => !failed,
            "failure()" => failed,
            "always()" => true,
            "cancelled()" => false,
            _ => {
                if let Some((a, b)) = term.split_once("!=") {
                    operand(a.trim(), ctx) != operand(b.trim(), ctx)
                } else if let Some((a, b)) = term.split_once("==") {
                    operand(a.trim(), ctx) == operand(b.trim(), ctx)
                } else {
                    panic!("`{term}` in `{e}`: not understood by this test")
                }
            }
        };
    }
    value
}

/// A program under target/debug (from this test's own path, target/debug/deps/e2e-*), built (or found fresh)
/// by cargo: `scripts/test -p ferroform-aws --test e2e` builds only the test binary, and a stale stack
/// program would test yesterday's stack.
fn built(relative: &str, build: &[&str]) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let debug = exe.parent().and_then(Path::parent).context("the test binary is not in target/debug/deps")?;
    // Without what `cargo test` set for this program (a build script watching CARGO_PKG_NAME would otherwise
    // rebuild every crate above it, here and again in the next build).
    let mut cmd = ferroform_aws::lambda::cargo_command();
    let status = cmd.args(build).arg("--quiet").current_dir(ROOT).status()?;
    anyhow::ensure!(status.success(), "cargo {build:?} failed");
    Ok(debug.join(relative))
}

/// A local HTTP listener answering every request with `status` and `{}`; keeps each request (head, body).
struct Listener {
    url: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    async fn start(status: u16) -> anyhow::Result<Listener> {
        Listener::answering(move |_| (status, "{}")).await
    }

    /// A listener answering each request (its head: `GET /path HTTP/1.1`, headers) with `answer`'s status and
    /// JSON body.
    async fn answering(answer: impl Fn(&str) -> (u16, &'static str) + Send + Sync + 'static) -> anyhow::Result<Listener> {
        let answer = Arc::new(answer);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let kept = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (kept, answer) = (kept.clone(), answer.clone());
                tokio::spawn(async move {
                    let (status, body) = match read_request(&mut stream).await {
                        Some(request) => {
                            let reply = (*answer)(&request.0);
                            kept.lock().unwrap().push(request);
                            reply
                        }
                        None => (400, "{}"),
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        Ok(Listener { url, seen, task })
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Some((head, String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string()));
            }
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `cargo`, `docker` and `gh` as a GitHub runner has them, minus what needs an engine or GitHub: each call is
/// appended to CALLS/NAME.
/// `cargo`, `docker` and `gh` as a GitHub runner has them, minus what needs an engine, GitHub or a
/// workspace build inside this test: each call is appended to CALLS/NAME.
fn stand_ins(bin: &Path, calls: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let scripts = [
        (
            "cargo",
            r#"#!/usr/bin/env bash
# The stack programs are built already (by `cargo test --all-targets`), where the workflow runs them from:
# `cargo build --example X` only checks that; `cargo run --example X -- ARGS` runs it; `cargo test` is the
# workspace's tests, which this test is one of: recorded, not run again. (A Lambda build the stack program
# starts is a real one: it runs $CARGO, not this.)
echo "$*" >> CALLS/cargo
example=
for ((i = 1; i < $#; i++)); do j=$((i + 1)); [[ ${!i} == --example ]] && example=${!j}; done
case $1 in
  build)
    [[ -n $example && -x target/debug/examples/$example ]] || { echo "cargo stand-in: no target/debug/examples/$example" >&2; exit 101; } ;;
  run)
    [[ -n $example && -x target/debug/examples/$example ]] || { echo "cargo stand-in: no target/debug/examples/$example" >&2; exit 101; }
    while (($#)) && [[ $1 != -- ]]; do shift; done
    shift
    exec "target/debug/examples/$example" "$@" ;;
  test)
    echo "cargo stand-in: cargo $* (recorded, not run)" ;;
  *)
    echo "cargo stand-in: unexpected cargo $*" >&2; exit 2 ;;
esac
"#,
        ),
        (
            "docker",
            r#"#!/usr/bin/env bash
# No Docker engine here: each call recorded; `login --password-stdin` reads the password as docker does.
if [[ $1 == login ]]; then password=$(cat); echo "$* (password: ${#password} characters)" >> CALLS/docker; else echo "$*" >> CALLS/docker; fi
"#,
        ),
        (
            "gh",
            r#"#!/usr/bin/env bash
# Each call recorded; a --body-file is kept as CALLS/gh-body-N (N: the call's line in CALLS/gh).
echo "$*" >> CALLS/gh
n=$(wc -l < CALLS/gh)
for ((i = 1; i < $#; i++)); do j=$((i + 1)); [[ ${!i} == --body-file ]] && cp "${!j}" "CALLS/gh-body-$n"; done
exit 0
"#,
        ),
    ];
    for (name, text) in scripts {
        let path = bin.join(name);
        std::fs::write(&path, text.replace("CALLS", &calls.display().to_string()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn calls(dir: &Path, tool: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(tool)).unwrap_or_default().lines().map(String::from).collect()
}

/// What every test here stands on: an account (CloudWatch through the CBOR shim), the state bucket, a
/// checkout holding the stack programs, the stand-ins, and a runner for the workflow's jobs.
struct World {
    /// The checkout, the stand-ins' records and the runner's files; removed when the test ends.
    _dir: tempfile::TempDir,
    account: ferroform_testkit::Account,
    _shim: CborShim,
    config: aws_types::SdkConfig,
    s3: aws_sdk_s3::Client,
    lambda: aws_sdk_lambda::Client,
    bucket: String,
    calls: PathBuf,
    runner: Runner,
}

impl World {
    /// `stacks`: the examples the jobs will run (built by `cargo test --all-targets`, else here).
    async fn new(workflow: &Value, stacks: &[&str]) -> anyhow::Result<World> {
        let tools = std::process::Command::new(format!("{ROOT}/scripts/ci-tools")).arg("bin-dir").output()?;
        anyhow::ensure!(tools.status.success(), "scripts/ci-tools bin-dir: {}", String::from_utf8_lossy(&tools.stderr));
        let tools = String::from_utf8(tools.stdout)?.trim().to_string();

        let account = ferroform_testkit::account().await?;
        // The stacks' alarms and dashboards speak CBOR to CloudWatch, which the emulator does not: the shim
        // translates.
        let shim = CborShim::start(&account.endpoint).await?;
        let config = account.config_via(shim.endpoint());
        let s3 = aws_sdk_s3::Client::new(&config);
        let lambda = aws_sdk_lambda::Client::new(&config);

        // The state bucket bootstrap makes; its name is STATE_BUCKET (set per copy of the workflow), made
        // unique to this account here.
        let mut workflow_env: BTreeMap<String, String> =
            workflow["env"].as_object().context("workflow env")?.iter().map(|(k, v)| (k.clone(), scalar(v))).collect();
        assert_eq!(workflow_env.get("AWS_REGION").map(String::as_str), Some(ferroform_testkit::REGION));
        let bucket = format!("{}-{}", workflow_env["STATE_BUCKET"], account.id);
        workflow_env.insert("STATE_BUCKET".into(), bucket.clone());
        s3.create_bucket().bucket(&bucket).send().await?;

        // The checkout: the repository's examples/ and stacks/, the stack programs where `cargo build` leaves
        // them. It sits inside the workspace, as a real checkout is the workspace: a Lambda the stack program
        // builds (pedidos' API, CargoBin) is built from the workspace above the current directory.
        let root = Path::new(ROOT).canonicalize()?;
        std::fs::create_dir_all(root.join("target"))?;
        let dir = tempfile::Builder::new().prefix("ferroform-delivery-").tempdir_in(root.join("target"))?;
        let (checkout, bin, calls_dir, scratch) =
            (dir.path().join("checkout"), dir.path().join("bin"), dir.path().join("calls"), dir.path().join("runner"));
        for d in [&checkout.join("target/debug/examples"), &bin, &calls_dir, &scratch] {
            std::fs::create_dir_all(d)?;
        }
        std::os::unix::fs::symlink(root.join("examples"), checkout.join("examples"))?;
        std::os::unix::fs::symlink(root.join("stacks"), checkout.join("stacks"))?;
        for stack in stacks {
            let program = built(&format!("examples/{stack}"), &["build", "--example", stack])?;
            std::os::unix::fs::symlink(&program, checkout.join("target/debug/examples").join(stack))?;
        }
        stand_ins(&bin, &calls_dir)?;

        let mut base_env: BTreeMap<String, String> = account.env().into_iter().collect();
        base_env.insert("AWS_ENDPOINT_URL_CLOUDWATCH".into(), shim.endpoint().to_string());
        base_env.insert("AWS_DEFAULT_REGION".into(), ferroform_testkit::REGION.into());
        base_env.insert("PATH".into(), format!("{}:{tools}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()));
        // The Lambda a stack program builds (pedidos' API) is a real cargo build of this workspace, for this
        // machine with the dev profile (the emulator never runs it), by the real cargo rather than the
        // stand-in, with this user's toolchain and registry (HOME is the test's own).
        base_env.insert("FERROFORM_LAMBDA_BUILD".into(), "host".into());
        // This run's cargo settings (CI's CARGO_INCREMENTAL among them): a build without them would make a
        // second copy of every crate instead of reusing this run's.
        base_env.extend(ferroform_aws::lambda::build_settings());
        let home = std::env::var("HOME").unwrap_or_default();
        base_env.entry("CARGO_HOME".into()).or_insert_with(|| format!("{home}/.cargo"));
        base_env.entry("RUSTUP_HOME".into()).or_insert_with(|| format!("{home}/.rustup"));
        base_env.insert("HOME".into(), dir.path().display().to_string());
        base_env.insert("CI".into(), "true".into());
        base_env.insert("GITHUB_ACTIONS".into(), "true".into());
        base_env.insert("GITHUB_WORKSPACE".into(), checkout.display().to_string());
        let vars = json!({"AWS_DEPLOY_ROLE_ARN": "arn:aws:iam::123456789012:role/deploy", "AWS_PLAN_ROLE_ARN": "arn:aws:iam::123456789012:role/plan"});
        let runner = Runner { checkout, scratch, base_env, workflow_env, contexts: json!({"vars": vars, "secrets": {}}), ran: 0 };
        Ok(World { _dir: dir, account, _shim: shim, config, s3, lambda, bucket, calls: calls_dir, runner })
    }

    fn github(event: &str, sha: &str) -> Value {
        json!({
            "sha": sha, "event_name": event, "ref": "refs/heads/main", "repository": "my-org/my-stack-repo",
            "server_url": "https://github.com", "run_id": "7", "token": "stand-in-token",
        })
    }

    /// The next jobs run as on a push of `sha` to main.
    fn push(&mut self, sha: &str) {
        let r = &mut self.runner;
        r.contexts["github"] = World::github("push", sha);
        r.base_env.insert("GITHUB_SHA".into(), sha.into());
        r.base_env.insert("GITHUB_REF".into(), "refs/heads/main".into());
        r.base_env.insert("GITHUB_EVENT_NAME".into(), "push".into());
    }

    /// The next jobs run as on pull request `number` whose head is `head` (GitHub's `github.sha` is then
    /// the merge commit's).
    fn pull_request(&mut self, number: u64, head: &str) {
        let r = &mut self.runner;
        let mut github = World::github("pull_request", "3333333333333333333333333333333333333333");
        github["ref"] = json!(format!("refs/pull/{number}/merge"));
        github["event"] = json!({"pull_request": {"number": number, "head": {"sha": head}}});
        r.contexts["github"] = github;
        r.base_env.insert("GITHUB_SHA".into(), "3333333333333333333333333333333333333333".into());
        r.base_env.insert("GITHUB_REF".into(), format!("refs/pull/{number}/merge"));
        r.base_env.insert("GITHUB_EVENT_NAME".into(), "pull_request".into());
    }

    fn side(&self, smoke: Smoke) -> Side {
        Side { lambda: self.lambda.clone(), smoke, worker: None }
    }
}

/// A matrix entry of a job, by its stack.
fn matrix_entry(job: &Value, stack: &str) -> anyhow::Result<Value> {
    job["strategy"]["matrix"]["include"]
        .as_array()
        .and_then(|m| m.iter().find(|e| e["stack"] == stack))
        .cloned()
        .with_context(|| format!("the job's matrix has no {stack}"))
}

fn workflow() -> anyhow::Result<Value> {
    Ok(serde_norway::from_str(&std::fs::read_to_string(format!("{ROOT}/examples/github-actions/deploy.yml"))?)?)
}
#[tokio::test(flavor = "multi_thread")]
async fn the_deploy_job_applies_smoke_tests_rolls_back_and_notifies() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let workflow = workflow()?;
    let (deploy, notify) = (&workflow["jobs"]["deploy"], &workflow["jobs"]["notify"]);
    let matrix = matrix_entry(deploy, STACK)?;
    let image_var = matrix["image_var"].as_str().context("image_var")?.to_string();

    // The program `serve` runs for the function's image, built by `cargo test --all-targets`.
    let handler = built("hello", &["build", "-p", "hello", "--bin", "hello"])?;
    let mut w = World::new(&workflow, &[STACK]).await?;
    let (s3, lambda, bucket, calls_dir) = (w.s3.clone(), w.lambda.clone(), w.bucket.clone(), w.calls.clone());
    let ecr = aws_sdk_ecr::Client::new(&w.config);

    // 1. The first deploy, smoke-tested against `serve` of what it deployed.
    w.push(SHA1);
    let serve = ServeFrom {
        s3: s3.clone(),
        bucket: bucket.clone(),
        config: w.config.clone(),
        account_env: w.account.env(),
        image_tag: SHA1.into(),
        handler,
        running: None,
    };
    let mut side = w.side(Smoke::Serve(Box::new(serve)));
    let first = w.runner.run_job(deploy, matrix.clone(), false, &mut side).await?;
    if let Smoke::Serve(serve) = &mut side.smoke {
        serve.stop().await;
    }
    assert_eq!(first.outcome, Outcome::Success, "{first:#?}");

    let repo_url = first_deploy_repository(&ecr, STACK, &first).await?;
    assert_eq!(calls(&calls_dir, "cargo"), [format!("build --quiet --example {STACK}")]);
    let docker = calls(&calls_dir, "docker");
    let registry = repo_url.split('/').next().unwrap_or_default();
    assert!(docker[0].starts_with(&format!("login --username AWS --password-stdin {registry} (password: ")), "{docker:?}");
    assert!(!docker[0].ends_with("(password: 0 characters)"), "the emulator's ECR password reached docker login: {docker:?}");
    let build = docker.iter().find(|c| c.starts_with("buildx build")).context("no buildx build")?;
    let want = format!("buildx build --file stacks/{STACK}/Dockerfile --tag {repo_url}:{SHA1} --push");
    assert!(build.starts_with(&want), "{build}\nwanted {want}");
    assert!(build.contains(&format!("--cache-to type=registry,ref={repo_url}:buildcache,mode=max")), "{build}");

    // The plan was applied with --var image_tag=SHA1: the function runs REPO:SHA1 (GetFunction).
    assert_eq!(function_image(&lambda, STACK).await, Some(format!("{repo_url}:{SHA1}")));
    assert_eq!(image_var, "image_tag");
    assert_eq!(first.step("Apply exactly that plan").image_after, Some(format!("{repo_url}:{SHA1}")));

    // The summary: the API URL first, the state's api_url (read from the S3 object).
    let state = state_object(&s3, &bucket).await?;
    let api_url = state.outputs.get("api_url").and_then(|o| o.value.as_str()).context("no api_url in state")?.to_string();
    let first_url = first.summary.split_whitespace().find(|w| w.starts_with("http")).context("no URL in the summary")?;
    assert_eq!(first_url, api_url, "{}", first.summary);
    assert!(first.summary.contains(&format!("API: {api_url}\n")) && first.summary.contains(SHA1), "{}", first.summary);
    let smoke = first.step("Smoke test");
    assert_eq!(smoke.env.get("URL"), Some(&api_url), "the smoke step is given the deployed URL");
    assert_eq!(smoke.outcome, Outcome::Success);
    assert!(smoke.log.contains("ok  GET /hello?name=smoke -> 200"), "{}", smoke.log);
    assert_eq!(first.step("Roll back").outcome, Outcome::Skipped);
    let notified = w.runner.run_job(notify, json!({}), false, &mut w.side(Smoke::None)).await?;
    assert_eq!(notified.outcome, Outcome::Skipped, "notify runs on failure only");

    // 2. A second deploy whose smoke test fails (a listener answering 500).
    let broken = Listener::start(500).await?;
    w.push(SHA2);
    let mut side = w.side(Smoke::At(broken.url.clone()));
    let second = w.runner.run_job(deploy, matrix, false, &mut side).await?;
    assert_eq!(second.outcome, Outcome::Failure, "the job fails after a rollback");
    assert_eq!(second.step("tag running now").outputs.get("previous_tag").map(String::as_str), Some(SHA1));
    let applied = second.step("Apply exactly that plan");
    assert_eq!((applied.outcome, applied.image_after.clone()), (Outcome::Success, Some(format!("{repo_url}:{SHA2}"))));
    assert_eq!(second.step("Smoke test").outcome, Outcome::Failure);
    assert!(!broken.requests().is_empty(), "the smoke test called the URL it was given");
    let rollback = second.step("Roll back");
    assert_eq!(rollback.outcome, Outcome::Failure, "{}", rollback.log);
    assert!(
        rollback.log.contains(&format!("::error::{STACK} at {SHA2} failed after apply: rolling back to image {SHA1}")),
        "{}",
        rollback.log
    );
    assert!(second.summary.contains(&format!("rolled back to image `{SHA1}`")), "{}", second.summary);
    assert_eq!(rollback.image_after, Some(format!("{repo_url}:{SHA1}")));
    assert_eq!(function_image(&lambda, STACK).await, Some(format!("{repo_url}:{SHA1}")));

    // 3. notify, with the webhook secret: the failure POSTed as {"text": ...}.
    let webhook = Listener::start(200).await?;
    w.runner.contexts["secrets"] = json!({"DEPLOY_WEBHOOK_URL": webhook.url});
    let notified = w.runner.run_job(notify, json!({}), true, &mut w.side(Smoke::None)).await?;
    assert_eq!(notified.outcome, Outcome::Success, "{notified:#?}");
    let posted = webhook.requests();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert!(
        posted[0].0.starts_with("POST / ") && posted[0].0.to_ascii_lowercase().contains("content-type: application/json"),
        "{posted:?}"
    );
    let body: Value = serde_json::from_str(&posted[0].1)?;
    let text = body["text"].as_str().context("no text")?;
    assert!(text.starts_with(&format!("Deploy of {SHA2} failed")) && text.contains("/actions/runs/7"), "{text}");
    assert!(calls(&calls_dir, "gh").is_empty(), "gh is for when no webhook is set");

    // Without the webhook: a comment on the DEPLOY_ISSUE variable's issue, else a new issue (gh's arguments).
    w.runner.contexts["secrets"] = json!({});
    w.runner.contexts["vars"]["DEPLOY_ISSUE"] = json!("42");
    let side = &mut w.side(Smoke::None);
    assert_eq!(w.runner.run_job(notify, json!({}), true, side).await?.outcome, Outcome::Success);
    w.runner.contexts["vars"].as_object_mut().context("vars")?.remove("DEPLOY_ISSUE");
    assert_eq!(w.runner.run_job(notify, json!({}), true, side).await?.outcome, Outcome::Success);
    let gh = calls(&calls_dir, "gh");
    assert_eq!(gh.len(), 2, "{gh:?}");
    assert!(gh[0].starts_with(&format!("issue comment 42 --body Deploy of {SHA2} failed")), "{gh:?}");
    assert!(gh[1].starts_with(&format!("issue create --title Deploy of {} failed --body Deploy of {SHA2} failed", &SHA2[..7])), "{gh:?}");
    eprintln!("delivery: the deploy job twice and notify in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Issue 15, pull requests: the `test` job runs `check` of every stack through the stack programs, and the
/// `plan` job (hello's entry) posts the plan of a first deploy as a comment (the `gh` stand-in's
/// `--body-file`), holding every address the stack declares and never the value of a sensitive variable.
/// A repository whose stack takes a secret passes it from a GitHub secret in the job's env as `FF_VAR_name`:
/// the test adds that line to the plan job (hello's `secret_env`, which plans show as `(sensitive)`).
/// `deploy` and `notify` are skipped. About 3 s here.
#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_is_checked_and_its_plan_posted_without_sensitive_values() -> anyhow::Result<()> {
    const PR_HEAD: &str = "4444444444444444444444444444444444444444";
    let started = std::time::Instant::now();
    let mut workflow = workflow()?;
    workflow["jobs"]["plan"]["env"]["FF_VAR_secret_env"] = json!("${{ secrets.HELLO_SECRET_ENV }}");
    let jobs = &workflow["jobs"];
    let mut w = World::new(&workflow, &["pedidos", STACK]).await?;
    let secret = "s3cr3t-salt-for-no-comment";
    w.runner.contexts["secrets"] = json!({"HELLO_SECRET_ENV": format!("SIGNING_SALT={secret}")});
    w.pull_request(5, PR_HEAD);

    // `test`: check of each stack (exit 0: nothing at or above low, or allowed with a reason), then the tests.
    let mut side = w.side(Smoke::None);
    let tested = w.runner.run_job(&jobs["test"], json!({}), false, &mut side).await?;
    assert_eq!(tested.outcome, Outcome::Success, "{tested:#?}");
    let check = tested.step("Security review");
    for stack in ["pedidos", STACK] {
        assert!(check.log.contains(&format!("ferroform check: stack `{stack}`")), "{}", check.log);
    }
    assert_eq!(
        calls(&w.calls, "cargo"),
        ["run --quiet --example pedidos -- --no-color check", "run --quiet --example hello -- --no-color check", "test --workspace"]
    );

    // `plan`, hello's entry: the comment.
    let plan = &jobs["plan"];
    let planned = w.runner.run_job(plan, matrix_entry(plan, STACK)?, false, &mut side).await?;
    assert_eq!(planned.outcome, Outcome::Success, "{planned:#?}");
    assert_eq!(calls(&w.calls, "gh"), ["pr comment 5 --body-file comment.md"]);
    let comment = std::fs::read_to_string(w.calls.join("gh-body-1"))?;
    assert!(comment.starts_with(&format!("### ferroform plan for `{STACK}`\n\n```diff\n")), "{comment}");
    assert!(comment.trim_end().ends_with("```"), "{comment}");
    // Every address of the stack as declared (the typed stack, with the variables the job gave it), each to
    // be created: nothing is deployed in this account.
    let mut declared = Stack::new(STACK);
    declared.set_var("image_tag", PR_HEAD);
    declared.set_var("secret_env", &format!("SIGNING_SALT={secret}"));
    hello::stack::stack(&mut declared)?;
    assert!(declared.resources().len() >= 19);
    for r in declared.resources() {
        assert!(
            comment.lines().any(|l| l.contains(&format!(" {} ", r.address)) || l.ends_with(&format!(" {}", r.address))),
            "{} not in\n{comment}",
            r.address
        );
    }
    // The sensitive value: its key is there, its value never, anywhere the run shows.
    assert!(comment.contains("SIGNING_SALT") && comment.contains("(sensitive)"), "{comment}");
    assert!(!comment.contains(secret), "the secret is in the comment:\n{comment}");
    for job in [&tested, &planned] {
        for step in &job.steps {
            assert!(!step.log.contains(secret), "the secret is in the log of `{}`", step.name);
        }
    }
    // No state was written: a plan changes nothing.
    let objects = w.s3.list_objects_v2().bucket(&w.bucket).send().await?;
    assert_eq!(objects.key_count(), Some(0), "{objects:?}");

    for job in ["deploy", "notify"] {
        assert_eq!(w.runner.run_job(&jobs[job], json!({}), false, &mut side).await?.outcome, Outcome::Skipped, "{job} on a pull request");
    }
    eprintln!("delivery: test and plan of a pull request in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Issue 15, the deploy job's `pedidos` entry, twice, as on two pushes to main: its API's Lambda built by
/// the stack program (FERROFORM_LAMBDA_BUILD=host: a dev build for this machine, which the emulator never
/// runs), its alarms through the CBOR shim. The worker's image is the one that changes: the first deploy
/// runs REPO:SHA1 and finds nothing running before; the second reads SHA1 from state (`state show
/// worker/task` and the workflow's jq), applies SHA2, fails its smoke test and rolls back to SHA1. Each
/// image is read with DescribeTaskDefinition (the family's active revision). The smoke step's URL is a
/// listener answering as pedidos' API does (`GET /pedidos` lists, an unknown order is 404; pedidos' own
/// tests prove the API says that), then 500. About 20 s here with the Lambda already built.
#[tokio::test(flavor = "multi_thread")]
async fn the_pedidos_deploy_reads_the_running_worker_image_from_state_and_rolls_back_to_it() -> anyhow::Result<()> {
    const PEDIDOS: &str = "pedidos";
    const FAMILY: &str = "pedidos-worker";
    let started = std::time::Instant::now();
    let workflow = workflow()?;
    let deploy = &workflow["jobs"]["deploy"];
    let matrix = matrix_entry(deploy, PEDIDOS)?;
    assert_eq!((matrix["image_var"].as_str(), matrix["image_address"].as_str()), (Some("worker_image_tag"), Some("worker/task")));
    let mut w = World::new(&workflow, &[PEDIDOS]).await?;
    let ecs = aws_sdk_ecs::Client::new(&w.config);
    let ecr = aws_sdk_ecr::Client::new(&w.config);
    let side = |w: &World, smoke: Smoke| Side { worker: Some((ecs.clone(), FAMILY.to_string())), ..w.side(smoke) };

    // 1. The first deploy.
    let api = Listener::answering(|head| match head.split(' ').take(2).collect::<Vec<_>>()[..] {
        ["GET", "/pedidos"] => (200, r#"{"items":[]}"#),
        ["GET", path] if path.starts_with("/pedidos/") => (404, r#"{"error":"not found"}"#),
        _ => (405, r#"{"error":"not here"}"#),
    })
    .await?;
    w.push(SHA1);
    let first = w.runner.run_job(deploy, matrix.clone(), false, &mut side(&w, Smoke::At(api.url.clone()))).await?;
    assert_eq!(first.outcome, Outcome::Success, "{first:#?}");
    let repo_url = first_deploy_repository(&ecr, FAMILY, &first).await?;
    let build = calls(&w.calls, "docker").into_iter().find(|c| c.starts_with("buildx build")).context("no buildx build")?;
    assert!(build.starts_with(&format!("buildx build --file stacks/{PEDIDOS}/Dockerfile --tag {repo_url}:{SHA1} --push")), "{build}");
    assert_eq!(first.step("Apply exactly that plan").image_after, Some(format!("{repo_url}:{SHA1}")));
    assert_eq!(worker_image(&ecs, FAMILY).await, Some(format!("{repo_url}:{SHA1}")));
    assert!(first.step("Smoke test").log.contains("ok  GET /pedidos -> 200"), "{}", first.step("Smoke test").log);

    // 2. The second deploy, whose smoke test gets a 500.
    let broken = Listener::start(500).await?;
    w.push(SHA2);
    let second = w.runner.run_job(deploy, matrix, false, &mut side(&w, Smoke::At(broken.url.clone()))).await?;
    assert_eq!(second.outcome, Outcome::Failure, "the job fails after a rollback");
    assert_eq!(second.step("tag running now").outputs.get("previous_tag").map(String::as_str), Some(SHA1), "read from state");
    let applied = second.step("Apply exactly that plan");
    assert_eq!((applied.outcome, applied.image_after.clone()), (Outcome::Success, Some(format!("{repo_url}:{SHA2}"))));
    assert_eq!(second.step("Smoke test").outcome, Outcome::Failure);
    let rollback = second.step("Roll back");
    assert!(
        rollback.log.contains(&format!("::error::{PEDIDOS} at {SHA2} failed after apply: rolling back to image {SHA1}")),
        "{}",
        rollback.log
    );
    assert!(second.summary.contains(&format!("rolled back to image `{SHA1}`")), "{}", second.summary);
    assert_eq!(worker_image(&ecs, FAMILY).await, Some(format!("{repo_url}:{SHA1}")), "the worker runs SHA1 again");
    eprintln!("delivery: pedidos deployed twice, rolled back, in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
