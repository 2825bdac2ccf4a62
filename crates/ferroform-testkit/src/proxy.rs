//! A fault-injecting HTTP proxy on loopback, between the SDK and the emulator.
//!
//! Point a client at `proxy.endpoint()` instead of the emulator's and it forwards every request, except
//! those a fault rule picks: throttling (the service's own error shape, so the SDK's retry classifier sees
//! `ThrottlingException`), 500/503, added latency, dropped connections, and IAM eventual consistency (Lambda
//! `CreateFunction` naming a role created less than N seconds ago fails the way AWS does), and answers lost
//! after the service acted (forwarded, then the connection dropped). It counts every
//! call by operation, and can run a hook on the k-th call (crash tests kill a child process there).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// What the proxy does to the calls it picks.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fraction of calls (0.0..=1.0) that get one fault, chosen among the enabled kinds.
    pub rate: f64,
    pub throttle: bool,
    pub server_error: bool,
    pub drop_connection: bool,
    /// Forwards the call, lets the service act, then drops the connection instead of answering: the
    /// client cannot tell whether it happened (counted as [`DROP_AFTER_FORWARD`]).
    pub drop_after_forward: bool,
    /// Faults only calls that change something ([`is_mutating`]); reads pass and draw nothing.
    pub mutating_only: bool,
    /// When not empty, faults only calls whose operation (`ec2.DeleteSubnet`) contains one of these; the
    /// others pass and draw nothing.
    pub only: Vec<String>,
    /// Added to every forwarded call.
    pub latency: Duration,
    /// Lambda CreateFunction with a role younger than this fails as on AWS.
    pub role_propagation: Option<Duration>,
    /// Seed of the fault choice. A call's draw depends only on the seed, its operation and how many calls of
    /// that operation came before it, not on how concurrent calls of other operations interleave: the same
    /// run meets the same faults, whatever the timing.
    pub seed: u64,
    /// Operations (`GetAccountAuthorizationDetails`) answered AccessDenied, as for a least-privilege role.
    pub deny: Vec<String>,
    /// The service's room: a call arriving while this many are already in flight is throttled, as a rate
    /// limit answers a client that sends too much at once (unlike `rate`, this rewards sending less).
    pub capacity: Option<usize>,
}

impl Faults {
    pub fn none() -> Self {
        Self::default()
    }
    /// `rate` of calls throttled, answered 500/503, or dropped.
    pub fn flaky(rate: f64) -> Self {
        Self { rate, throttle: true, server_error: true, drop_connection: true, ..Self::default() }
    }
    /// `rate` of mutating calls acted on by the service whose answer is then lost.
    pub fn lost_answers(rate: f64) -> Self {
        Self { rate, drop_after_forward: true, mutating_only: true, ..Self::default() }
    }
}

type Hook = Arc<dyn Fn(u64, &str) + Send + Sync>;

struct Shared {
    upstream: String,
    faults: Mutex<Faults>,
    calls: Mutex<Vec<String>>,
    count: AtomicU64,
    injected: Mutex<BTreeMap<String, usize>>,
    /// `(operation, kind)` of every injected fault, in order.
    faulted: Mutex<Vec<(String, String)>>,
    roles: Mutex<HashMap<String, Instant>>,
    /// Calls of each operation (ids taken out, [`draw_key`]) that have drawn so far.
    drawn: Mutex<HashMap<String, u64>>,
    hook: Mutex<Option<Hook>>,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

impl Shared {
    fn new(upstream: &str, faults: Faults) -> Self {
        Self {
            upstream: upstream.trim_end_matches('/').to_string(),
            faults: Mutex::new(faults),
            calls: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
            injected: Mutex::new(BTreeMap::new()),
            faulted: Mutex::new(Vec::new()),
            roles: Mutex::new(HashMap::new()),
            drawn: Mutex::new(HashMap::new()),
            hook: Mutex::new(None),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
        }
    }
}

/// Counts a call in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> (Self, u64) {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        (Self(shared), now)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct FaultProxy {
    endpoint: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (a free port) in front of `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str, faults: Faults) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared::new(upstream, faults));
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (s, client) = (s.clone(), client.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(s.clone(), client.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(Self { endpoint, shared, task })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut f) = self.shared.faults.lock() {
            *f = faults;
        }
    }

    /// Every call seen, as `Service.Operation` (best effort from the request).
    pub fn calls(&self) -> Vec<String> {
        self.shared.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Calls that change something (not Describe/Get/List/Head/Query/Scan/...).
    pub fn mutating_calls(&self) -> Vec<String> {
        self.calls().into_iter().filter(|c| is_mutating(c)).collect()
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<String, usize> {
        self.shared.injected.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Every injected fault as `(operation, kind)`, in order: which calls met which fault.
    pub fn faulted_calls(&self) -> Vec<(String, String)> {
        self.shared.faulted.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// How many of the injected faults were drawn at random (throttles, 5xx, drops): all but the young-role
    /// refusals, which come from `role_propagation`, not from the rate.
    pub fn random_injected(&self) -> usize {
        self.injected().into_iter().filter(|(kind, _)| kind != ROLE_NOT_ASSUMABLE && kind != DENIED).map(|(_, n)| n).sum()
    }

    /// The most calls that were in the proxy at once (since the start or the last `reset`).
    pub fn peak_in_flight(&self) -> u64 {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.shared.peak_in_flight.store(0, Ordering::SeqCst);
        if let Ok(mut c) = self.shared.calls.lock() {
            c.clear();
        }
        if let Ok(mut c) = self.shared.injected.lock() {
            c.clear();
        }
        if let Ok(mut c) = self.shared.faulted.lock() {
            c.clear();
        }
        self.shared.count.store(0, Ordering::SeqCst);
    }

    /// Runs `hook(n, operation)` as call number `n` (from 1) arrives, before it is forwarded.
    pub fn on_call(&self, hook: impl Fn(u64, &str) + Send + Sync + 'static) {
        if let Ok(mut h) = self.shared.hook.lock() {
            *h = Some(Arc::new(hook));
        }
    }
}

/// The kind [`FaultProxy::injected`] counts a call refused by [`Faults::deny`] under.
pub const DENIED: &str = "denied";

/// The kind [`FaultProxy::injected`] counts a Lambda create refused for a young role under.
pub const ROLE_NOT_ASSUMABLE: &str = "role-not-assumable";
/// The kind [`FaultProxy::injected`] counts an answer lost after forwarding under.
pub const DROP_AFTER_FORWARD: &str = "drop-after-forward";

/// Read-only operations by their name's verb.
pub fn is_mutating(call: &str) -> bool {
    let op = call.rsplit('.').next().unwrap_or(call);
    const READS: &[&str] = &["Describe", "Get", "List", "Head", "Query", "Scan", "BatchGet", "Lookup", "Search", "Select"];
    !READS.iter().any(|r| op.starts_with(r)) && op != "AssumeRole"
}

/// `Service.Operation` from what the request shows: the JSON target header, the query `Action`, or
/// the REST method and path.
fn operation(method: &str, path: &str, headers: &hyper::HeaderMap, body: &[u8]) -> String {
    if let Some(t) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return t.to_string();
    }
    let form = String::from_utf8_lossy(body);
    if let Some(action) = form.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        let service = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').nth(3))
            .unwrap_or("query");
        return format!("{service}.{action}");
    }
    let service = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("rest");
    let verb = match method {
        "GET" => "Get",
        "HEAD" => "Head",
        "DELETE" => "Delete",
        "PUT" => "Put",
        "PATCH" => "Update",
        _ => "Post",
    };
    let path = path.split('?').next().unwrap_or(path);
    format!("{service}.{verb}{path}")
}

/// The operation without the ids AWS made (`apigateway.Post/v2/apis/*/integrations`): an API's id differs
/// from run to run, and a draw keyed on it would too.
fn draw_key(op: &str) -> String {
    const LITERALS: &[&str] = &[
        "v2",
        "apis",
        "integrations",
        "routes",
        "stages",
        "deployments",
        "authorizers",
        "2015-03-31",
        "functions",
        "policy",
        "configuration",
        "code",
        "concurrency",
        "url",
        "tags",
    ];
    let Some((head, path)) = op.split_once('/') else { return op.to_string() };
    let path: Vec<&str> = path.split('/').map(|seg| if LITERALS.contains(&seg) { seg } else { "*" }).collect();
    format!("{head}/{}", path.join("/"))
}

/// The `n`-th draw (0, 1, 2) of this call, in [0, 1): SplitMix64 over the seed, the operation's key and
/// how many calls of it drew before.
fn draw(seed: u64, key: &str, occurrence: u64, n: u64) -> f64 {
    // FNV-1a of the key.
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let mut z = seed
        .wrapping_add(h.rotate_left(21))
        .wrapping_add(occurrence.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(n.wrapping_mul(0xd1b5_4a32_d192_ed03));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

enum Fault {
    Throttle,
    ServerError(u16),
    Drop,
    DropAfterForward,
}

fn pick(shared: &Shared, f: &Faults, op: &str) -> Option<Fault> {
    if f.mutating_only && !is_mutating(op) || !f.only.is_empty() && !f.only.iter().any(|o| op.contains(o.as_str())) {
        return None;
    }
    if f.rate <= 0.0 {
        return None;
    }
    let key = draw_key(op);
    let occurrence = {
        let Ok(mut drawn) = shared.drawn.lock() else { return None };
        let n = drawn.entry(key.clone()).or_default();
        *n += 1;
        *n - 1
    };
    let random = |n| draw(f.seed, &key, occurrence, n);
    if random(0) >= f.rate {
        return None;
    }
    let mut kinds = Vec::new();
    if f.throttle {
        kinds.push(Fault::Throttle);
    }
    if f.server_error {
        kinds.push(Fault::ServerError(if random(1) < 0.5 { 500 } else { 503 }));
    }
    if f.drop_connection {
        kinds.push(Fault::Drop);
    }
    if f.drop_after_forward {
        kinds.push(Fault::DropAfterForward);
    }
    if kinds.is_empty() {
        return None;
    }
    let i = ((random(2) * kinds.len() as f64) as usize).min(kinds.len() - 1);
    Some(kinds.swap_remove(i))
}

fn count(shared: &Shared, op: &str, kind: &str) {
    if let Ok(mut m) = shared.injected.lock() {
        *m.entry(kind.to_string()).or_default() += 1;
    }
    if let Ok(mut f) = shared.faulted.lock() {
        f.push((op.to_string(), kind.to_string()));
    }
}

type Reply = Response<Full<Bytes>>;

/// An error in the shape the service's protocol uses, so the SDK parses its code.
fn error_reply(status: u16, code: &str, message: &str, headers: &hyper::HeaderMap, body: &[u8]) -> Reply {
    // rpc-v2-cbor (CloudWatch): a CBOR error document; the SDK cannot read a JSON one, and an error it
    // cannot read is not retried.
    if headers.get("smithy-protocol").and_then(|v| v.to_str().ok()) == Some("rpc-v2-cbor") {
        let doc = serde_json::json!({"__type": code, "message": message});
        let mut resp = Response::new(Full::new(Bytes::from(crate::cbor::to_cbor(&doc))));
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        crate::cbor::mark_cbor(resp.headers_mut());
        return resp;
    }
    let json = headers.contains_key("x-amz-target")
        || headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("json"))
        || !String::from_utf8_lossy(body).contains("Action=");
    let (content_type, text) = if json && !String::from_utf8_lossy(body).contains("Action=") {
        ("application/x-amz-json-1.1", format!("{{\"__type\":\"{code}\",\"message\":\"{message}\",\"Message\":\"{message}\"}}"))
    } else if String::from_utf8_lossy(body).contains("Version=2016-11-15") {
        // EC2's query protocol has its own error document.
        ("text/xml", format!("<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault</RequestID></Response>"))
    } else {
        ("text/xml", format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>"))
    };
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = resp.headers_mut();
    if let Ok(v) = content_type.parse() {
        h.insert("content-type", v);
    }
    if let Ok(v) = code.parse() {
        h.insert("x-amzn-errortype", v);
    }
    resp
}

async fn handle(
    shared: Arc<Shared>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    req: Request<Incoming>,
) -> Result<Reply, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let op = operation(parts.method.as_str(), &path, &parts.headers, &body);
    let n = shared.count.fetch_add(1, Ordering::SeqCst) + 1;
    if let Ok(mut c) = shared.calls.lock() {
        c.push(op.clone());
    }
    let hook = shared.hook.lock().ok().and_then(|h| h.clone());
    if let Some(hook) = hook {
        hook(n, &op);
    }
    let faults = shared.faults.lock().map(|f| f.clone()).unwrap_or_default();
    let (_in_flight, now) = InFlight::enter(&shared);
    if faults.capacity.is_some_and(|room| now > room as u64) {
        count(&shared, &op, "throttle");
        return Ok(error_reply(400, "ThrottlingException", "Rate exceeded", &parts.headers, &body));
    }
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }

    if faults.deny.iter().any(|d| op.rsplit(['.', ':']).next() == Some(d.as_str())) {
        count(&shared, &op, DENIED);
        return Ok(error_reply(403, "AccessDenied", &format!("not authorized to perform {op}"), &parts.headers, &body));
    }

    // IAM eventual consistency: a young role can't be assumed by Lambda yet.
    if let Some(window) = faults.role_propagation {
        if parts.method == "POST" && path.split('?').next().is_some_and(|p| p.ends_with("/functions") || p.ends_with("/functions/")) {
            let role = serde_json_role(&body);
            let young = role
                .and_then(|r| r.rsplit('/').next().map(str::to_string))
                .and_then(|name| shared.roles.lock().ok().and_then(|m| m.get(&name).copied()))
                .is_some_and(|created| created.elapsed() < window);
            if young {
                count(&shared, &op, ROLE_NOT_ASSUMABLE);
                return Ok(error_reply(
                    400,
                    "InvalidParameterValueException",
                    "The role defined for the function cannot be assumed by Lambda.",
                    &parts.headers,
                    &body,
                ));
            }
        }
    }

    let fault = pick(&shared, &faults, &op);
    match fault {
        Some(Fault::Throttle) => {
            count(&shared, &op, "throttle");
            return Ok(error_reply(400, "ThrottlingException", "Rate exceeded", &parts.headers, &body));
        }
        Some(Fault::ServerError(code)) => {
            count(&shared, &op, &format!("http-{code}"));
            return Ok(error_reply(code, "InternalFailure", "injected server error", &parts.headers, &body));
        }
        Some(Fault::Drop) => {
            count(&shared, &op, "drop");
            return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected dropped connection"));
        }
        Some(Fault::DropAfterForward) | None => {}
    }

    let uri: hyper::Uri = format!("{}{}", shared.upstream, path).parse().map_err(std::io::Error::other)?;
    let mut out = Request::builder().method(parts.method.clone()).uri(uri);
    for (k, v) in &parts.headers {
        out = out.header(k, v);
    }
    let out = out.body(Full::new(body.clone())).map_err(std::io::Error::other)?;
    let resp = client.request(out).await.map_err(std::io::Error::other)?;
    let (rparts, rbody) = resp.into_parts();
    let rbytes = rbody.collect().await.map_err(std::io::Error::other)?.to_bytes();
    if op.ends_with("CreateRole") && rparts.status.is_success() {
        if let Some(name) = form_value(&body, "RoleName") {
            if let Ok(mut m) = shared.roles.lock() {
                m.insert(name, Instant::now());
            }
        }
    }
    if matches!(fault, Some(Fault::DropAfterForward)) {
        count(&shared, &op, DROP_AFTER_FORWARD);
        return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected drop after forwarding"));
    }
    Ok(Response::from_parts(rparts, Full::new(rbytes)))
}

fn form_value(body: &[u8], key: &str) -> Option<String> {
    let form = String::from_utf8_lossy(body);
    form.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}="))).map(|v| v.replace("%2F", "/").replace('+', " "))
}

/// The `Role` of a Lambda CreateFunction JSON body, without a JSON dependency.
fn serde_json_role(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let start = text.find("\"Role\"")?;
    let rest = &text[start + 6..];
    let open = rest.find('"')?;
    let rest = &rest[open + 1..];
    let close = rest.find('"')?;
    Some(rest[..close].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_aws_made_are_taken_out_of_the_draw_key() {
        assert_eq!(draw_key("apigateway.Post/v2/apis/encsrung/integrations"), "apigateway.Post/v2/apis/*/integrations");
        assert_eq!(draw_key("lambda.Post/2015-03-31/functions/pedidos-api/policy"), "lambda.Post/2015-03-31/functions/*/policy");
        assert_eq!(draw_key("ec2.CreateSubnet"), "ec2.CreateSubnet");
    }

    /// Which of an operation's calls meet a fault, in order, after `calls` (operation, API id) in that order.
    fn hits(calls: &[(&str, &str)]) -> BTreeMap<String, Vec<bool>> {
        let shared = Shared::new("http://127.0.0.1:1", Faults::none());
        let faults = Faults { seed: 7, ..Faults::lost_answers(0.5) };
        let mut out: BTreeMap<String, Vec<bool>> = BTreeMap::new();
        for (op, api) in calls {
            let op = op.replace("{api}", api);
            let hit = pick(&shared, &faults, &op).is_some();
            out.entry(draw_key(&op)).or_default().push(hit);
        }
        out
    }

    #[test]
    fn a_call_meets_the_same_fault_whatever_order_other_calls_come_in() {
        let ops = ["ec2.CreateSubnet", "iam.CreateRole", "apigateway.Post/v2/apis/{api}/routes"];
        let one_after_another: Vec<(&str, &str)> = ops.iter().flat_map(|op| std::iter::repeat_n((*op, "abc"), 20)).collect();
        let interleaved: Vec<(&str, &str)> = (0..20).flat_map(|_| ops.iter().rev().map(|op| (*op, "xyz"))).collect();
        let (a, b) = (hits(&one_after_another), hits(&interleaved));
        assert_eq!(a, b);
        for (op, hit) in &a {
            assert!(hit.contains(&true) && hit.contains(&false), "{op}: {hit:?}");
        }
        // Reads draw nothing, and do not move the draws of the calls after them.
        let with_reads: Vec<(&str, &str)> = one_after_another.iter().flat_map(|c| [("ec2.DescribeSubnets", "abc"), *c]).collect();
        let mut c = hits(&with_reads);
        assert!(c.remove("ec2.DescribeSubnets").is_some_and(|r| r.iter().all(|h| !h)));
        assert_eq!(c, a);
    }
}
