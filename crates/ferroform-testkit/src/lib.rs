//! Test kit: the local AWS emulator (moto server), a fresh isolated account on it per test, and a harness
//! that drives the engine over a temp state file.
//!
//! ```ignore
//! let h = Harness::new().await?;
//! h.contexts.insert(ferroform_aws::Aws::from_config(h.account.config.clone()));
//! let state = h.apply(&stack).await?;
//! ```
//!
//! `scripts/test` starts one emulator for the whole run and sets `FERROFORM_EMULATOR_ENDPOINT`; a plain
//! `cargo test` starts one per test binary instead. Isolation comes from accounts, not servers: moto keeps
//! everything made with a role's credentials in that role's account.

use anyhow::{anyhow, bail, Context as _, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::Credentials;
use aws_types::sdk_config::SharedCredentialsProvider;
use ferroform_core::{Contexts, Engine, LocalBackend, Plan, PlanOptions, Stack, State};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;

pub mod cbor;
pub mod proxy;

/// A running emulator shared by every test binary (set by `scripts/test`, or by hand after
/// `source .ferroform/emulator.env`).
pub const ENDPOINT_VAR: &str = "FERROFORM_EMULATOR_ENDPOINT";
/// The region every account is configured with.
pub const REGION: &str = "us-east-1";
/// The role assumed in each test account.
pub const ROLE_NAME: &str = "ferroform-test";

static ENDPOINT: OnceCell<String> = OnceCell::const_new();
/// The server this process started. Never dropped: the pipe's write end (`ChildStdin`) closes only when the
/// process exits, and that is what stops the server.
static SERVER: Mutex<Option<(Child, ChildStdin)>> = Mutex::new(None);

/// The emulator endpoint for this test process: `FERROFORM_EMULATOR_ENDPOINT` if set (a shared server),
/// else one moto server per test binary, started on first use (installing the venv with
/// `scripts/emulator install` if needed), which dies when the test process exits.
pub async fn emulator() -> Result<String> {
    ENDPOINT
        .get_or_try_init(|| async {
            let endpoint = start_or_find().await?;
            pin_task_lifecycle(&endpoint).await?;
            Ok(endpoint)
        })
        .await
        .cloned()
}

async fn start_or_find() -> Result<String> {
    if let Some(endpoint) = std::env::var(ENDPOINT_VAR).ok().filter(|v| !v.trim().is_empty()) {
        let endpoint = endpoint.trim().trim_end_matches('/').to_string();
        if !answers(&endpoint).await {
            bail!("{ENDPOINT_VAR}={endpoint} does not answer; start it with `scripts/emulator up` or unset the variable");
        }
        return Ok(endpoint);
    }
    let moto = install().await?;
    let mut last = anyhow!("the emulator never started");
    // A free port can be taken between our probe and moto's bind: try another.
    for _ in 0..3 {
        match spawn(&moto).await {
            Ok(endpoint) => return Ok(endpoint),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// What `scripts/emulator up` sets too: moto moves an ECS task one status on (RUNNING, DEACTIVATING, ...,
/// STOPPED) at each DescribeTasks, so a task polled a few times reads STOPPED though nothing stopped it
/// (`serve` had not started its process yet). On ECS only the task's containers move it; here only StopTask
/// (`serve`, when the process exits) does.
async fn pin_task_lifecycle(endpoint: &str) -> Result<()> {
    let host = host_of(endpoint);
    let body = r#"{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000000}}"#;
    let request = format!(
        "POST /moto-api/state-manager/set-transition HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let post = async {
        let mut s = tokio::net::TcpStream::connect(host.as_str()).await?;
        s.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await?;
        Ok::<String, std::io::Error>(String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string())
    };
    let status = tokio::time::timeout(Duration::from_secs(10), post)
        .await
        .map_err(|_| anyhow!("{endpoint}: no answer to moto's set-transition"))?
        .with_context(|| format!("{endpoint}: moto's set-transition"))?;
    if !status.contains(" 20") {
        bail!("{endpoint}: moto's set-transition answered `{status}`");
    }
    Ok(())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `scripts/emulator install` (a no-op when the pinned moto is there) and returns `moto_server`'s path.
async fn install() -> Result<PathBuf> {
    let root = repo_root();
    let venv = std::env::var_os("FERROFORM_VENV").map(PathBuf::from).unwrap_or_else(|| root.join(".venv"));
    let script = root.join("scripts/emulator");
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .arg("install")
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {} install", script.display()))?;
    if !out.status.success() {
        bail!(
            "`scripts/emulator install` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(venv.join("bin/moto_server"))
}

/// Runs moto under a bash wrapper that kills it when its stdin reaches EOF: this process holds the only
/// write end, so the server goes when the test binary does, however it ends (even SIGKILL).
const WRAPPER: &str = r#"
exec 3<&0
"$1" -H 127.0.0.1 -p "$2" </dev/null >"$3" 2>&1 &
pid=$!
{
  cat <&3 >/dev/null
  grep -q moto_server "/proc/$pid/cmdline" 2>/dev/null && kill "$pid" 2>/dev/null
  sleep 1
  rm -f "$3"
} &
wait "$pid"
"#;

async fn spawn(moto: &Path) -> Result<String> {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).context("finding a free port")?.port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("ferroform-moto-{}-{port}.log", std::process::id()));
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(WRAPPER)
        .arg("ferroform-emulator")
        .arg(moto)
        .arg(port.to_string())
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the emulator (bash)")?;
    let stdin = child.stdin.take().ok_or_else(|| anyhow!("the emulator's stdin pipe is missing"))?;
    let timeout = std::env::var("FERROFORM_EMULATOR_START_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(120u64);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        if answers(&endpoint).await {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!("moto server on port {port} exited at start ({status}):\n{}", tail.join("\n"));
        }
        if Instant::now() > deadline {
            drop(stdin); // EOF: the wrapper stops moto
            let _ = child.wait();
            bail!("moto server did not answer on {endpoint} within {timeout}s (FERROFORM_EMULATOR_START_TIMEOUT)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut server = SERVER.lock().map_err(|_| anyhow!("emulator registry poisoned"))?;
    *server = Some((child, stdin));
    Ok(endpoint)
}

/// True when something answers HTTP at `endpoint` (moto answers `/moto-api/`).
/// `127.0.0.1:PORT` of `http://127.0.0.1:PORT[/...]`.
fn host_of(endpoint: &str) -> String {
    let host = endpoint.strip_prefix("http://").unwrap_or(endpoint);
    host.split('/').next().unwrap_or(host).to_string()
}

async fn answers(endpoint: &str) -> bool {
    let host = host_of(endpoint);
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(host.as_str()).await?;
        s.write_all(format!("GET /moto-api/ HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).await?;
        let mut head = [0u8; 5];
        s.read_exact(&mut head).await?;
        Ok::<bool, std::io::Error>(&head == b"HTTP/")
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), probe).await, Ok(Ok(true)))
}

/// A 12-digit account id, unique among concurrently running test binaries: a leading digit from the clock
/// (never 0), the pid (below 10^7 on Linux) and a per-process counter that starts at a clock-chosen offset,
/// so a later run with a recycled pid on a long-lived emulator rarely meets an earlier one's leftovers.
fn next_account_id() -> String {
    static START: OnceLock<(u64, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (lead, offset) = *START.get_or_init(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        (1 + now.as_secs() % 9, u64::from(now.subsec_micros()) % 10_000)
    });
    let n = (offset + COUNTER.fetch_add(1, Ordering::Relaxed)) % 10_000;
    format!("{lead}{:07}{n:04}", u64::from(std::process::id()) % 10_000_000)
}

/// An AWS config pointed at the emulator, with nothing taken from the environment or profile files (a
/// developer's `AWS_PROFILE` or `AWS_ENDPOINT_URL_*` must not leak into tests).
fn sdk_config(endpoint: &str, credentials: Credentials) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

/// A fresh, isolated account on the emulator.
pub async fn account() -> Result<Account> {
    let endpoint = emulator().await?;
    let id = next_account_id();
    let root = sdk_config(&endpoint, Credentials::new("test", "test", None, None, "ferroform-testkit"));
    let role = format!("arn:aws:iam::{id}:role/{ROLE_NAME}");
    let out = aws_sdk_sts::Client::new(&root)
        .assume_role()
        .role_arn(&role)
        .role_session_name("ferroform-test")
        .send()
        .await
        .with_context(|| format!("AssumeRole {role} on the emulator at {endpoint}"))?;
    let c = out.credentials.ok_or_else(|| anyhow!("AssumeRole {role} returned no credentials"))?;
    // No expiry: moto never enforces it, and a refresh would need a provider that re-assumes.
    let credentials = Credentials::new(c.access_key_id, c.secret_access_key, Some(c.session_token), None, "ferroform-testkit");
    let config = sdk_config(&endpoint, credentials.clone());
    Ok(Account { id, endpoint, config, credentials })
}

/// One emulator account: what is made with `config` lives only here.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub endpoint: String,
    pub config: SdkConfig,
    credentials: Credentials,
}

impl Account {
    /// This account's SDK config with another endpoint: a [`proxy::FaultProxy`] in front of the emulator.
    pub fn config_via(&self, endpoint: &str) -> SdkConfig {
        sdk_config(endpoint, self.credentials.clone())
    }

    /// Env vars that point a child process (`cargo run --example pedidos`, say) at this account.
    pub fn env(&self) -> Vec<(String, String)> {
        let c = &self.credentials;
        let mut env = vec![
            ("AWS_ENDPOINT_URL".to_string(), self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".to_string(), c.access_key_id().to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), c.secret_access_key().to_string()),
            ("AWS_REGION".to_string(), REGION.to_string()),
        ];
        if let Some(token) = c.session_token() {
            env.push(("AWS_SESSION_TOKEN".to_string(), token.to_string()));
        }
        env
    }
}

/// Drives the engine for a test: an account, a temp dir with a local state file, and contexts.
pub struct Harness {
    pub account: Account,
    pub dir: tempfile::TempDir,
    pub contexts: Contexts,
}

impl Harness {
    pub async fn new() -> Result<Self> {
        let account = account().await?;
        let dir = tempfile::Builder::new().prefix("ferroform-test-").tempdir().context("creating a temp dir")?;
        Ok(Self { account, dir, contexts: Contexts::new() })
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    /// An Engine over the local state file with these contexts (parallelism 8).
    pub fn engine(&self) -> Engine {
        Engine::new(Arc::new(LocalBackend::new(self.state_path()))).contexts(self.contexts.clone()).parallelism(8)
    }

    /// Plan + apply; returns the new state.
    pub async fn apply(&self, stack: &Stack) -> Result<State> {
        let (_, state) = self.engine().apply(stack, &PlanOptions::default()).await?;
        Ok(state)
    }

    pub async fn plan(&self, stack: &Stack) -> Result<Plan> {
        Ok(self.engine().plan(stack, &PlanOptions::default()).await?)
    }

    pub async fn destroy(&self, stack: &Stack) -> Result<State> {
        let (_, state) = self.engine().destroy(stack).await?;
        Ok(state)
    }

    /// The cloud id in state of `address`.
    pub async fn id_of(&self, stack: &Stack, address: &str) -> Result<String> {
        let state = self.engine().state(stack.name()).await?;
        let r = state.resources.get(address).ok_or_else(|| anyhow!("`{address}` is not in the state of stack `{}`", stack.name()))?;
        r.id.clone().ok_or_else(|| anyhow!("`{address}` has no id in state (a create in flight?)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_digits_and_distinct() {
        let a = next_account_id();
        let b = next_account_id();
        assert_eq!(a.len(), 12, "{a}");
        assert!(a.bytes().all(|c| c.is_ascii_digit()) && !a.starts_with('0'), "{a}");
        assert_ne!(a, b);
    }
}
