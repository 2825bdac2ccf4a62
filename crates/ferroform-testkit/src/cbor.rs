//! A translating proxy for services the Rust SDK speaks Smithy RPC v2 CBOR to and the emulator does not.
//!
//! The SDK's CloudWatch client (`aws-sdk-cloudwatch` 1.140) sends `POST /service/GraniteServiceVersion20100801
//! /operation/PutMetricAlarm` with a CBOR body; moto 5.2.5 answers that path with 404 but speaks the same
//! operations in AWS JSON 1.0. The shim turns each CBOR request into the JSON one (same headers, so the
//! emulator still finds the account from the credentials; moto does not check signatures), and the JSON
//! reply back into CBOR. Everything else is forwarded untouched, so one endpoint serves every client.
//!
//! Test-only: on AWS the SDK talks CBOR to CloudWatch directly.
//!
//! JSON carries less type information than CBOR: timestamps are tagged (tag 1) and doubles written as
//! floats by member name (`...Timestamp`, `Threshold`, ...), which covers the operations the resources use.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Map, Number, Value};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// A running shim; stops when dropped.
pub struct CborShim {
    endpoint: String,
    calls: Calls,
    task: tokio::task::JoinHandle<()>,
}

/// The operations translated so far, in order.
type Calls = Arc<Mutex<Vec<String>>>;

impl Drop for CborShim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

impl CborShim {
    /// Starts a shim on 127.0.0.1 (a free port) in front of `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let calls = Calls::default();
        let seen = calls.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (upstream, client, seen) = (upstream.clone(), client.clone(), seen.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(upstream.clone(), client.clone(), seen.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(Self { endpoint, calls, task })
    }

    /// Point clients here (`Account::config_via(shim.endpoint())`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How many calls of `operation` (`DescribeAlarms`) were translated since the last `reset`.
    pub fn count(&self, operation: &str) -> usize {
        self.calls.lock().map(|c| c.iter().filter(|o| *o == operation).count()).unwrap_or(0)
    }

    /// Every operation translated since the last `reset`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn reset(&self) {
        if let Ok(mut c) = self.calls.lock() {
            c.clear();
        }
    }
}

async fn handle(
    upstream: Arc<str>,
    client: HttpClient,
    seen: Calls,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let rpc = parse_rpc_path(&path);
    if let (Some((_, op)), Ok(mut seen)) = (&rpc, seen.lock()) {
        seen.push(op.clone());
    }

    let (uri, out_body) = match &rpc {
        Some(_) => {
            let json = if body.is_empty() { Value::Object(Map::new()) } else { decode(&body).map_err(std::io::Error::other)? };
            (format!("{upstream}/"), Bytes::from(json.to_string()))
        }
        None => (format!("{upstream}{path}"), body.clone()),
    };
    let mut out = Request::builder().method(parts.method.clone()).uri(uri.parse::<hyper::Uri>().map_err(std::io::Error::other)?);
    for (k, v) in &parts.headers {
        let skip = rpc.is_some() && matches!(k.as_str(), "content-type" | "content-length" | "accept" | "smithy-protocol" | "host");
        if !skip {
            out = out.header(k, v);
        }
    }
    if let Some((service, op)) = &rpc {
        out = out.header("content-type", "application/x-amz-json-1.0").header("x-amz-target", format!("{service}.{op}"));
    }
    let out = out.body(Full::new(out_body)).map_err(std::io::Error::other)?;
    let resp = client.request(out).await.map_err(std::io::Error::other)?;
    let (mut rparts, rbody) = resp.into_parts();
    let rbytes = rbody.collect().await.map_err(std::io::Error::other)?.to_bytes();
    if rpc.is_none() {
        return Ok(Response::from_parts(rparts, Full::new(rbytes)));
    }
    let json: Value = if rbytes.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(&rbytes).unwrap_or_else(|_| {
            // Not JSON (an HTML error page, say): an error the SDK can show.
            let mut m = Map::new();
            m.insert("__type".into(), Value::String("InternalFailure".into()));
            m.insert("message".into(), Value::String(String::from_utf8_lossy(&rbytes).into_owned()));
            if rparts.status.is_success() {
                rparts.status = StatusCode::INTERNAL_SERVER_ERROR;
            }
            Value::Object(m)
        })
    };
    let h = &mut rparts.headers;
    h.remove("content-length");
    h.remove("transfer-encoding");
    mark_cbor(h);
    Ok(Response::from_parts(rparts, Full::new(Bytes::from(to_cbor(&json)))))
}

/// `(service, operation)` of `/service/SERVICE/operation/OPERATION`.
fn parse_rpc_path(path: &str) -> Option<(String, String)> {
    let rest = path.split('?').next()?.strip_prefix("/service/")?;
    let (service, op) = rest.split_once("/operation/")?;
    (!service.is_empty() && !op.is_empty() && !op.contains('/')).then(|| (service.to_string(), op.to_string()))
}

/// Members whose JSON numbers (or RFC 3339 strings) are CBOR timestamps.
fn is_timestamp_member(key: &str) -> bool {
    key.ends_with("Timestamp") || key.ends_with("Timestamps") || matches!(key, "LastModified" | "StartTime" | "EndTime")
}

/// Members typed `double` in CloudWatch, which the SDK only reads from CBOR floats.
fn is_double_member(key: &str) -> bool {
    matches!(key, "Threshold" | "Value" | "Values" | "Sum" | "Average" | "Minimum" | "Maximum" | "SampleCount")
}

// ---- CBOR (RFC 8949) <-> JSON, as much as Smithy uses ----

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

fn float(out: &mut Vec<u8>, f: f64) {
    out.push(0xfb);
    out.extend(f.to_be_bytes());
}

/// `v` as the CBOR document an rpc-v2-cbor service answers with.
pub fn to_cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(v, "", &mut out);
    out
}

/// The headers of an rpc-v2-cbor answer.
pub fn mark_cbor(headers: &mut hyper::HeaderMap) {
    headers.insert("content-type", hyper::header::HeaderValue::from_static("application/cbor"));
    headers.insert("smithy-protocol", hyper::header::HeaderValue::from_static("rpc-v2-cbor"));
}

fn encode(v: &Value, key: &str, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::Number(n) if is_timestamp_member(key) => {
            out.push(0xc1);
            float(out, n.as_f64().unwrap_or_default());
        }
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            _ if is_double_member(key) || n.is_f64() => float(out, n.as_f64().unwrap_or_default()),
            (Some(u), _) => head(out, 0, u),
            (None, Some(i)) => head(out, 1, (-1 - i) as u64),
            _ => float(out, n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => match chrono_secs(s).filter(|_| is_timestamp_member(key)) {
            Some(secs) => {
                out.push(0xc1);
                float(out, secs);
            }
            None => {
                head(out, 3, s.len() as u64);
                out.extend(s.as_bytes());
            }
        },
        Value::Array(items) => {
            head(out, 4, items.len() as u64);
            for i in items {
                encode(i, key, out);
            }
        }
        Value::Object(m) => {
            head(out, 5, m.len() as u64);
            for (k, v) in m {
                head(out, 3, k.len() as u64);
                out.extend(k.as_bytes());
                encode(v, k, out);
            }
        }
    }
}

/// Epoch seconds of an RFC 3339 timestamp (`2026-11-23T10:00:00.123Z`), without a date library.
fn chrono_secs(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = &s[19..];
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (format!("0.{}", &r[..end]).parse::<f64>().ok()?, &r[end..])
        }
        None => (0.0, rest),
    };
    let offset = match zone {
        "Z" | "" => 0,
        z if z.len() == 6 => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            sign * (z.get(1..3)?.parse::<i64>().ok()? * 3600 + z.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset) as f64 + frac)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.pos).ok_or("CBOR ends early")?;
        self.pos += 1;
        Ok(v)
    }
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.b.len()).ok_or("CBOR ends early")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    /// The argument of a head; `None` for indefinite length.
    fn arg(&mut self, info: u8) -> Result<Option<u64>, String> {
        Ok(Some(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().map_err(|_| "bad u16")?)),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| "bad u32")?)),
            27 => u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| "bad u64")?),
            31 => return Ok(None),
            _ => return Err(format!("bad CBOR head info {info}")),
        }))
    }
    fn at_break(&self) -> bool {
        self.b.get(self.pos) == Some(&0xff)
    }
    fn item(&mut self) -> Result<Value, String> {
        let first = self.byte()?;
        let (major, info) = (first >> 5, first & 0x1f);
        match major {
            0 => Ok(Value::Number(self.arg(info)?.ok_or("indefinite int")?.into())),
            1 => Ok(Value::Number((-1 - i64::try_from(self.arg(info)?.ok_or("indefinite int")?).map_err(|e| e.to_string())?).into())),
            2 | 3 => {
                let bytes = match self.arg(info)? {
                    Some(n) => self.take(usize::try_from(n).map_err(|e| e.to_string())?)?.to_vec(),
                    None => {
                        let mut all = Vec::new();
                        while !self.at_break() {
                            match self.item()? {
                                Value::String(s) => all.extend(s.into_bytes()),
                                other => return Err(format!("bad string chunk {other}")),
                            }
                        }
                        self.pos += 1;
                        all
                    }
                };
                // Blobs go to JSON as base64, as AWS JSON writes them.
                Ok(Value::String(if major == 2 { base64(&bytes) } else { String::from_utf8(bytes).map_err(|e| e.to_string())? }))
            }
            4 => {
                let mut items = Vec::new();
                match self.arg(info)? {
                    Some(n) => {
                        for _ in 0..n {
                            items.push(self.item()?);
                        }
                    }
                    None => {
                        while !self.at_break() {
                            items.push(self.item()?);
                        }
                        self.pos += 1;
                    }
                }
                Ok(Value::Array(items))
            }
            5 => {
                let mut m = Map::new();
                let mut entry = |r: &mut Self| -> Result<(), String> {
                    let k = match r.item()? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    let v = r.item()?;
                    m.insert(k, v);
                    Ok(())
                };
                match self.arg(info)? {
                    Some(n) => {
                        for _ in 0..n {
                            entry(self)?;
                        }
                    }
                    None => {
                        while !self.at_break() {
                            entry(self)?;
                        }
                        self.pos += 1;
                    }
                }
                Ok(Value::Object(m))
            }
            // Tags (1 = epoch timestamp): the value itself, which is what AWS JSON sends.
            6 => {
                self.arg(info)?;
                self.item()
            }
            _ => match info {
                20 => Ok(Value::Bool(false)),
                21 => Ok(Value::Bool(true)),
                22 | 23 => Ok(Value::Null),
                25 => {
                    let h = u16::from_be_bytes(self.take(2)?.try_into().map_err(|_| "bad f16")?);
                    Ok(number(f16_to_f64(h)))
                }
                26 => Ok(number(f64::from(f32::from_be_bytes(self.take(4)?.try_into().map_err(|_| "bad f32")?)))),
                27 => Ok(number(f64::from_be_bytes(self.take(8)?.try_into().map_err(|_| "bad f64")?))),
                _ => Err(format!("unsupported CBOR simple value {info}")),
            },
        }
    }
}

fn number(f: f64) -> Value {
    Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
}

fn f16_to_f64(h: u16) -> f64 {
    let exp = (h >> 10) & 0x1f;
    let mant = f64::from(h & 0x3ff);
    let v = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + mant / 1024.0) * 2f64.powi(i32::from(e) - 15),
    };
    if h & 0x8000 != 0 {
        -v
    } else {
        v
    }
}

fn decode(bytes: &[u8]) -> Result<Value, String> {
    Reader { b: bytes, pos: 0 }.item()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_a_round_trip_through_cbor() {
        let v = json!({"AlarmName": "a", "Period": 60, "Neg": -5, "Big": 70000, "Threshold": 1, "Ratio": 0.5,
            "On": true, "Off": null, "Names": ["x", "y"], "Nested": {"k": "v"}});
        let mut out = Vec::new();
        encode(&v, "", &mut out);
        let back = decode(&out).unwrap_or_default();
        // Threshold is a double: written as a float, read back as 1.0.
        assert_eq!(back["Threshold"], json!(1.0));
        let mut expected = v.clone();
        expected["Threshold"] = json!(1.0);
        assert_eq!(back, expected);
    }

    #[test]
    fn timestamps_are_tagged_and_indefinite_lengths_read() {
        let mut out = Vec::new();
        encode(&json!({"StateUpdatedTimestamp": "1970-01-02T00:00:01.5Z"}), "", &mut out);
        assert_eq!(out[0], 0xa1);
        let tag = out.iter().position(|b| *b == 0xc1).unwrap_or(0);
        assert_eq!(out[tag + 1], 0xfb);
        assert_eq!(f64::from_be_bytes(out[tag + 2..tag + 10].try_into().unwrap_or_default()), 86_401.5);
        // {_ "a": [_ 1, 2], "b": h'0102'} with indefinite map and array.
        let bytes = [0xbf, 0x61, b'a', 0x9f, 0x01, 0x02, 0xff, 0x61, b'b', 0x42, 0x01, 0x02, 0xff];
        assert_eq!(decode(&bytes).unwrap_or_default(), json!({"a": [1, 2], "b": "AQI="}));
        assert_eq!(chrono_secs("2026-11-23T10:00:00+01:00"), chrono_secs("2026-11-23T09:00:00Z"));
        assert_eq!(
            parse_rpc_path("/service/GraniteServiceVersion20100801/operation/PutMetricAlarm"),
            Some(("GraniteServiceVersion20100801".into(), "PutMetricAlarm".into()))
        );
        assert_eq!(parse_rpc_path("/"), None);
    }
}
