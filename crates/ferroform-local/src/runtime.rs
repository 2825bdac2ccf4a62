//! The Lambda Runtime API (`2018-06-01`), served to real processes: each instance of a function is its
//! program started with `AWS_LAMBDA_RUNTIME_API` pointing at a listener of its own, so every call is known
//! to come from that instance.
//!
//! An invocation waits in the function's queue until an instance asks `GET .../invocation/next`; a new
//! instance is started when every running one is busy and the limit allows. The function's timeout is
//! enforced: an instance past its deadline is killed (a later invocation starts a fresh one), as Lambda
//! does.

use crate::http::{self, Incomingish};
use crate::logs::LogStream;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};

/// What runs and how: the deployed configuration of one function and its local program.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub arn: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The whole environment of an instance but `AWS_LAMBDA_RUNTIME_API` and the log stream's name.
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub max_instances: usize,
    /// The function's log group in the emulator; `None`: the terminal only.
    pub log_group: Option<String>,
}

/// Why an invocation has no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeError {
    /// The handler reported an error (`.../error`): its JSON.
    Function(serde_json::Value),
    /// The instance ran past the function's timeout and was killed.
    Timeout,
    /// The instance failed to start or exited during the invocation.
    Crashed(String),
}

struct Invocation {
    id: String,
    payload: Vec<u8>,
    reply: oneshot::Sender<Result<Vec<u8>, InvokeError>>,
}

struct InFlight {
    id: String,
    deadline: Instant,
    reply: oneshot::Sender<Result<Vec<u8>, InvokeError>>,
}

#[derive(Default)]
struct Counts {
    instances: usize,
    busy: usize,
    queued: usize,
}

/// A function's instances and queue.
pub struct Function {
    spec: FunctionSpec,
    counts: Mutex<Counts>,
    tx: mpsc::UnboundedSender<Invocation>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    logs: Option<aws_sdk_cloudwatchlogs::Client>,
    stop: watch::Receiver<bool>,
    next_instance: Mutex<u64>,
}

impl Function {
    /// `logs`: the emulator's CloudWatch Logs, for the function's log group. `stop`: true ends every instance.
    pub fn new(spec: FunctionSpec, logs: Option<aws_sdk_cloudwatchlogs::Client>, stop: watch::Receiver<bool>) -> Arc<Function> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Function { spec, counts: Mutex::default(), tx, rx: tokio::sync::Mutex::new(rx), logs, stop, next_instance: Mutex::new(0) })
    }

    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    /// How many instances run now.
    pub fn instances(&self) -> usize {
        self.counts.lock().map(|c| c.instances).unwrap_or(0)
    }

    /// Runs one invocation and gives the function's answer.
    pub async fn invoke(self: &Arc<Self>, payload: Vec<u8>) -> Result<Vec<u8>, InvokeError> {
        let (reply, answer) = oneshot::channel();
        let id = uuid::Uuid::new_v4().to_string();
        let start = {
            let Ok(mut c) = self.counts.lock() else { return Err(InvokeError::Crashed("lock poisoned".into())) };
            c.queued += 1;
            let free = c.instances - c.busy;
            let grow = c.queued > free && c.instances < self.spec.max_instances.max(1);
            if grow {
                c.instances += 1;
            }
            grow
        };
        if start {
            self.start_instance();
        }
        if self.tx.send(Invocation { id, payload, reply }).is_err() {
            return Err(InvokeError::Crashed("the function's queue is closed".into()));
        }
        answer.await.unwrap_or_else(|_| Err(InvokeError::Crashed("the instance went away".into())))
    }

    fn start_instance(self: &Arc<Self>) {
        let n = self
            .next_instance
            .lock()
            .map(|mut n| {
                *n += 1;
                *n
            })
            .unwrap_or(0);
        let me = self.clone();
        tokio::spawn(async move {
            let reason = me.run_instance(n).await;
            me.instance_ended(reason);
        });
    }

    /// After an instance is gone: when none is left and work is waiting, that work can't be done by an
    /// instance that failed to start: it fails with the reason rather than wait forever.
    fn instance_ended(self: &Arc<Self>, reason: Option<String>) {
        let (left, queued) = match self.counts.lock() {
            Ok(mut c) => {
                c.instances = c.instances.saturating_sub(1);
                (c.instances, c.queued)
            }
            Err(_) => return,
        };
        if left == 0 && queued > 0 && !*self.stop.borrow() {
            match reason {
                // It never asked for work: another would fail the same way.
                Some(reason) => {
                    if let Ok(mut rx) = self.rx.try_lock() {
                        while let Ok(inv) = rx.try_recv() {
                            if let Ok(mut c) = self.counts.lock() {
                                c.queued = c.queued.saturating_sub(1);
                            }
                            let _ = inv.reply.send(Err(InvokeError::Crashed(reason.clone())));
                        }
                    }
                }
                None => {
                    if let Ok(mut c) = self.counts.lock() {
                        c.instances += 1;
                    }
                    self.start_instance();
                }
            }
        }
    }

    /// Runs one instance until it exits, is killed or serving stops. `Some(reason)` when it never asked for
    /// work (a failed start).
    async fn run_instance(self: &Arc<Self>, n: u64) -> Option<String> {
        let spec = &self.spec;
        let stream_name = format!("{}/[$LATEST]{}", chrono::Utc::now().format("%Y/%m/%d"), uuid::Uuid::new_v4().simple());
        let prefix = if spec.max_instances > 1 { format!("{}#{n}", spec.name) } else { spec.name.clone() };
        let log = match (&self.logs, &spec.log_group) {
            (Some(client), Some(group)) => LogStream::cloudwatch(prefix, client.clone(), group.clone(), stream_name.clone()),
            _ => LogStream::terminal(prefix),
        };
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => return Some(format!("can't listen for the runtime API: {e}")),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => return Some(format!("can't listen for the runtime API: {e}")),
        };
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .env_clear()
            .envs(&spec.env)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_LOG_STREAM_NAME", &stream_name)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let reason = format!("can't start {}: {e}", spec.program.display());
                log.line(&reason);
                return Some(reason);
            }
        };
        if let Some(out) = child.stdout.take() {
            log.pump(out);
        }
        if let Some(err) = child.stderr.take() {
            log.pump(err);
        }
        let instance = Arc::new(Instance {
            function: self.clone(),
            current: Mutex::new(None),
            asked: Mutex::new(false),
            init_error: Mutex::new(None),
            deadline: watch::channel(None).0,
            log: log.clone(),
        });
        let server = {
            let instance = instance.clone();
            tokio::spawn(http::serve(listener, move |req| {
                let instance = instance.clone();
                async move { instance.handle(req).await }
            }))
        };
        let mut deadline_rx = instance.deadline.subscribe();
        let mut stop = self.stop.clone();
        let outcome = loop {
            let deadline = *deadline_rx.borrow_and_update();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                status = child.wait() => {
                    let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    break format!("the process exited ({status})");
                }
                _ = sleep => {
                    let timed_out = instance.current.lock().ok().and_then(|mut c| {
                        c.take_if(|f| f.deadline <= Instant::now())
                    });
                    if let Some(f) = timed_out {
                        log.line(&format!("{} Task timed out after {:.2} seconds", f.id, spec.timeout.as_secs_f64()));
                        let _ = f.reply.send(Err(InvokeError::Timeout));
                        self.done_one();
                        kill_group(&mut child).await;
                        break "timed out".to_string();
                    }
                }
                _ = deadline_rx.changed() => {}
                _ = stop.changed() => {
                    if *stop.borrow() {
                        kill_group(&mut child).await;
                        break "serving stopped".to_string();
                    }
                }
            }
        };
        server.abort();
        let in_flight = instance.current.lock().ok().and_then(|mut c| c.take());
        let init_error = instance.init_error.lock().ok().and_then(|e| e.clone());
        let reason = match init_error {
            Some(e) => format!("init error: {e}"),
            None => outcome,
        };
        if let Some(f) = in_flight {
            log.line(&format!("RequestId: {} Error: {reason}", f.id));
            let _ = f.reply.send(Err(InvokeError::Crashed(reason.clone())));
            self.done_one();
        }
        let asked = instance.asked.lock().map(|a| *a).unwrap_or(true);
        (!asked).then_some(reason)
    }

    fn done_one(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.busy = c.busy.saturating_sub(1);
        }
    }
}

/// Kills a process started in a group of its own and everything it started (a shell's children too).
pub(crate) async fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        // No unsafe here (no libc::kill): kill(1) signals the group.
        let _ = tokio::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status().await;
    }
    let _ = child.kill().await;
}

/// One running instance: what it is working on.
struct Instance {
    function: Arc<Function>,
    current: Mutex<Option<InFlight>>,
    /// It asked for work at least once (it started).
    asked: Mutex<bool>,
    init_error: Mutex<Option<String>>,
    deadline: watch::Sender<Option<Instant>>,
    log: LogStream,
}

fn json_response(status: u16, body: serde_json::Value) -> http::HttpResponse {
    http::response(status, &[("content-type".into(), "application/json".into())], body.to_string().into_bytes())
}

fn error_body(kind: &str, message: &str) -> serde_json::Value {
    json!({ "errorType": kind, "errorMessage": message })
}

impl Instance {
    async fn handle(self: Arc<Self>, req: Incomingish) -> http::HttpResponse {
        const BASE: &str = "/2018-06-01/runtime";
        let Some(rest) = req.path.strip_prefix(BASE) else {
            return json_response(404, error_body("NotFound", "unknown path"));
        };
        match (req.method.as_str(), rest) {
            ("GET", "/invocation/next") => self.next().await,
            ("POST", "/init/error") => {
                let message = String::from_utf8_lossy(&req.body).into_owned();
                self.log.line(&format!("INIT_REPORT Init error: {message}"));
                if let Ok(mut e) = self.init_error.lock() {
                    *e = Some(message);
                }
                json_response(202, json!({"status": "OK"}))
            }
            ("POST", path) => {
                let Some(path) = path.strip_prefix("/invocation/") else {
                    return json_response(404, error_body("NotFound", "unknown path"));
                };
                let (id, outcome) = match (path.strip_suffix("/response"), path.strip_suffix("/error")) {
                    (Some(id), _) => (id, Ok(req.body)),
                    (None, Some(id)) => {
                        let body = serde_json::from_slice(&req.body)
                            .unwrap_or_else(|_| error_body("Unknown", &String::from_utf8_lossy(&req.body)));
                        (id, Err(InvokeError::Function(body)))
                    }
                    _ => return json_response(404, error_body("NotFound", "unknown path")),
                };
                let taken = self.current.lock().ok().and_then(|mut c| c.take_if(|f| f.id == id));
                let Some(f) = taken else {
                    return json_response(400, error_body("InvalidRequestID", &format!("no invocation {id} in progress here")));
                };
                let _ = self.deadline.send(None);
                if let Err(InvokeError::Function(body)) = &outcome {
                    self.log.line(&format!("RequestId: {id} Error: {body}"));
                }
                self.log.line(&format!("END RequestId: {id}"));
                let _ = f.reply.send(outcome);
                self.function.done_one();
                json_response(202, json!({"status": "OK"}))
            }
            _ => json_response(405, error_body("MethodNotAllowed", "method not allowed")),
        }
    }

    async fn next(&self) -> http::HttpResponse {
        if let Ok(mut a) = self.asked.lock() {
            *a = true;
        }
        let inv = {
            let mut rx = self.function.rx.lock().await;
            rx.recv().await
        };
        let Some(inv) = inv else { return json_response(500, error_body("ServiceException", "the function is stopping")) };
        let spec = &self.function.spec;
        let deadline = Instant::now() + spec.timeout;
        let deadline_ms = SystemTime::now()
            .checked_add(spec.timeout)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_millis())
            .unwrap_or_default();
        if let Ok(mut c) = self.function.counts.lock() {
            c.queued = c.queued.saturating_sub(1);
            c.busy += 1;
        }
        self.log.line(&format!("START RequestId: {} Version: $LATEST", inv.id));
        let trace = format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            chrono::Utc::now().timestamp(),
            &uuid::Uuid::new_v4().simple().to_string()[..24],
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("lambda-runtime-aws-request-id".into(), inv.id.clone()),
            ("lambda-runtime-deadline-ms".into(), deadline_ms.to_string()),
            ("lambda-runtime-invoked-function-arn".into(), spec.arn.clone()),
            ("lambda-runtime-trace-id".into(), trace),
        ];
        if let Ok(mut c) = self.current.lock() {
            *c = Some(InFlight { id: inv.id, deadline, reply: inv.reply });
        }
        let _ = self.deadline.send(Some(deadline));
        http::response(200, &headers, inv.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn spec(dir: &std::path::Path, timeout: Duration, max: usize, env: &[(&str, &str)]) -> FunctionSpec {
        FunctionSpec {
            name: "f".into(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            program: testing::script(dir),
            args: Vec::new(),
            env: testing::env(env),
            timeout,
            max_instances: max,
            log_group: None,
        }
    }

    fn body(out: &[u8]) -> String {
        let v: serde_json::Value = serde_json::from_slice(out).unwrap();
        v["body"].as_str().unwrap().to_string()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn answers_errors_and_the_next_invocation_headers() {
        let dir = tempfile::tempdir().unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let f = Function::new(spec(dir.path(), Duration::from_secs(60), 1, &[]), None, stop);
        let out = body(&f.invoke(b"{\"hello\":1}".to_vec()).await.unwrap());
        let parts: Vec<&str> = out.split(' ').collect();
        assert_eq!(parts[1], "arn:aws:lambda:us-east-1:123456789012:function:f");
        let deadline: u128 = parts[2].parse().unwrap();
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis();
        assert!(deadline > now && deadline <= now + 60_000, "{deadline} vs {now}");
        let err = f.invoke(b"\"fail\"".to_vec()).await.unwrap_err();
        assert_eq!(err, InvokeError::Function(json!({"errorMessage": "boom", "errorType": "Boom"})));
        // The same instance answers again (a handler error does not end it).
        let again = body(&f.invoke(b"{}".to_vec()).await.unwrap());
        assert_eq!(again.split(' ').next(), Some(parts[0]));
        assert_eq!(f.instances(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_timeout_kills_the_instance_and_a_fresh_one_takes_the_next_call() {
        let dir = tempfile::tempdir().unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let f = Function::new(spec(dir.path(), Duration::from_secs(1), 1, &[]), None, stop);
        let first = body(&f.invoke(b"{}".to_vec()).await.unwrap());
        assert_eq!(f.invoke(b"\"sleep\"".to_vec()).await.unwrap_err(), InvokeError::Timeout);
        let after = body(&f.invoke(b"{}".to_vec()).await.unwrap());
        assert_ne!(first.split(' ').next(), after.split(' ').next(), "another process");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_init_error_fails_the_call_with_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let f = Function::new(spec(dir.path(), Duration::from_secs(60), 1, &[("INIT_FAIL", "1")]), None, stop);
        let InvokeError::Crashed(why) = f.invoke(b"{}".to_vec()).await.unwrap_err() else { panic!() };
        assert!(why.contains("init error") && why.contains("bad config"), "{why}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_calls_run_in_parallel_instances_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let go = dir.path().join("go");
        let go_env = go.to_string_lossy().into_owned();
        let (_stop_tx, stop) = watch::channel(false);
        let f = Function::new(spec(dir.path(), Duration::from_secs(120), 3, &[("GO", &go_env)]), None, stop);
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let f = f.clone();
                tokio::spawn(async move { f.invoke(b"\"wait\"".to_vec()).await })
            })
            .collect();
        // Three are held inside three instances; the fourth waits for one of them.
        while f.counts.lock().map(|c| c.busy).unwrap() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(f.instances(), 3);
        assert_eq!(f.counts.lock().map(|c| c.queued).unwrap(), 1);
        std::fs::write(&go, "").unwrap();
        let mut pids = std::collections::BTreeSet::new();
        for c in calls {
            pids.insert(body(&c.await.unwrap().unwrap()).split(' ').next().unwrap().to_string());
        }
        assert_eq!(pids.len(), 3, "{pids:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn stopping_kills_every_instance() {
        let dir = tempfile::tempdir().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let f = Function::new(spec(dir.path(), Duration::from_secs(60), 2, &[]), None, stop);
        let pid: i32 = body(&f.invoke(b"{}".to_vec()).await.unwrap()).split(' ').next().unwrap().parse().unwrap();
        stop_tx.send(true).unwrap();
        while f.instances() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The process is gone (reaped by the instance): no such pid in /proc.
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
