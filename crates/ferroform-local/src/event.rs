//! API Gateway HTTP API payload format 2.0: the event a Lambda proxy integration gets for a request, and
//! how the function's answer becomes the HTTP response. Pure functions over plain values.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// An HTTP request as the front door received it. Header names are lower case; repeated headers appear
/// once per value, in order.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The path as sent (still percent-encoded), without the query.
    pub path: String,
    /// Everything after `?`, as sent.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub source_ip: String,
}

impl Request {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An HTTP response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// `{"message": ...}` as API Gateway answers for its own errors.
    pub fn gateway_error(status: u16, message: &str) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({ "message": message }).to_string().into_bytes(),
        }
    }
    pub fn not_found() -> Response {
        Self::gateway_error(404, "Not Found")
    }
    pub fn internal_error() -> Response {
        Self::gateway_error(500, "Internal Server Error")
    }
    pub fn unavailable() -> Response {
        Self::gateway_error(503, "Service Unavailable")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the gateway knows about the request besides the request itself.
#[derive(Debug, Clone)]
pub struct Context {
    pub api_id: String,
    pub account_id: String,
    pub stage: String,
    /// The `Host` the client used (API Gateway's is `ID.execute-api.REGION.amazonaws.com`).
    pub domain_name: String,
    pub route_key: String,
    pub path_parameters: BTreeMap<String, String>,
    pub request_id: String,
    pub time: chrono::DateTime<chrono::Utc>,
    /// What the route's authorizer passes on (`{"jwt": {"claims", "scopes"}}`, `{"iam": ..}`); `None` when
    /// the route is open.
    pub authorizer: Option<Value>,
}

/// Content types whose bodies API Gateway passes as text; any other body is base64.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.ends_with("json")
        || ct.ends_with("+json")
        || ct.ends_with("xml")
        || ct.ends_with("javascript")
        || ct == "application/x-www-form-urlencoded"
}

/// `a=1&a=2&b=x%20y` as `{"a": "1,2", "b": "x y"}` (repeated names joined by commas, values decoded).
pub fn query_parameters(query: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| crate::router::percent_decode(&s.replace('+', " "));
        let (k, v) = (decode(k), decode(v));
        out.entry(k)
            .and_modify(|old| {
                old.push(',');
                old.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

/// The payload 2.0 event for `req`.
pub fn event(req: &Request, ctx: &Context) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            // Cookies travel in their own list, not among the headers.
            cookies.extend(value.split(';').map(str::trim).filter(|c| !c.is_empty()).map(String::from));
            continue;
        }
        headers
            .entry(name)
            .and_modify(|old| {
                old.push(',');
                old.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    let mut e = Map::new();
    e.insert("version".into(), json!("2.0"));
    e.insert("routeKey".into(), json!(ctx.route_key));
    e.insert("rawPath".into(), json!(req.path));
    e.insert("rawQueryString".into(), json!(req.query));
    if !cookies.is_empty() {
        e.insert("cookies".into(), json!(cookies));
    }
    e.insert("headers".into(), json!(headers));
    let query = query_parameters(&req.query);
    if !query.is_empty() {
        e.insert("queryStringParameters".into(), json!(query));
    }
    let domain_prefix = ctx.domain_name.split('.').next().unwrap_or_default();
    e.insert(
        "requestContext".into(),
        json!({
            "accountId": ctx.account_id,
            "apiId": ctx.api_id,
            "domainName": ctx.domain_name,
            "domainPrefix": domain_prefix,
            "http": {
                "method": req.method,
                "path": req.path,
                "protocol": "HTTP/1.1",
                "sourceIp": req.source_ip,
                "userAgent": req.header("user-agent").unwrap_or_default(),
            },
            "requestId": ctx.request_id,
            "routeKey": ctx.route_key,
            "stage": ctx.stage,
            "time": ctx.time.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": ctx.time.timestamp_millis(),
        }),
    );
    if let (Some(authorizer), Some(Value::Object(rc))) = (&ctx.authorizer, e.get_mut("requestContext")) {
        rc.insert("authorizer".into(), authorizer.clone());
    }
    if !ctx.path_parameters.is_empty() {
        e.insert("pathParameters".into(), json!(ctx.path_parameters));
    }
    if !req.body.is_empty() {
        match std::str::from_utf8(&req.body) {
            Ok(text) if is_text(req.header("content-type")) => {
                e.insert("body".into(), json!(text));
                e.insert("isBase64Encoded".into(), json!(false));
            }
            _ => {
                e.insert("body".into(), json!(STANDARD.encode(&req.body)));
                e.insert("isBase64Encoded".into(), json!(true));
            }
        }
    } else {
        e.insert("isBase64Encoded".into(), json!(false));
    }
    Value::Object(e)
}

/// The HTTP response for what the function returned, as API Gateway maps a payload 2.0 answer: an object
/// with `statusCode` is taken apart (`headers`, `cookies` as `Set-Cookie`, `body`, `isBase64Encoded`); any
/// other JSON is a 200 `application/json` whose body is that JSON. Output that is not JSON, or a malformed
/// `statusCode`, is API Gateway's 500.
pub fn response(output: &[u8]) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(output) else { return Response::internal_error() };
    let Some(obj) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        return Response { status: 200, headers: vec![("content-type".into(), "application/json".into())], body: output.to_vec() };
    };
    let status = match &obj["statusCode"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    let Some(status) = status.and_then(|s| u16::try_from(s).ok()).filter(|s| (100..600).contains(s)) else {
        return Response::internal_error();
    };
    let mut headers = Vec::new();
    if let Some(map) = obj.get("headers").and_then(Value::as_object) {
        for (k, v) in map {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            headers.push((k.to_ascii_lowercase(), v));
        }
    }
    if let Some(cookies) = obj.get("cookies").and_then(Value::as_array) {
        headers.extend(cookies.iter().filter_map(Value::as_str).map(|c| ("set-cookie".to_string(), c.to_string())));
    }
    let body = match obj.get("body") {
        Some(Value::String(s)) if obj.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => match STANDARD.decode(s) {
            Ok(bytes) => bytes,
            Err(_) => return Response::internal_error(),
        },
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => other.to_string().into_bytes(),
    };
    if !body.is_empty() && !headers.iter().any(|(k, _)| k == "content-type") {
        headers.push(("content-type".into(), "text/plain; charset=utf-8".into()));
    }
    Response { status, headers, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            api_id: "abc123".into(),
            account_id: "123456789012".into(),
            stage: "$default".into(),
            domain_name: "127.0.0.1:8080".into(),
            route_key: "GET /pedidos/{id}".into(),
            path_parameters: [("id".to_string(), "7".to_string())].into(),
            request_id: "req-1".into(),
            time: chrono::DateTime::from_timestamp(1_583_348_638, 390_000_000).unwrap(),
            authorizer: None,
        }
    }

    fn request() -> Request {
        Request {
            method: "GET".into(),
            path: "/pedidos/7".into(),
            query: "a=1&a=2&b=x%20y&flag".into(),
            headers: vec![
                ("Accept".into(), "text/html".into()),
                ("accept".into(), "application/json".into()),
                ("Cookie".into(), "s=1; t=2".into()),
                ("user-agent".into(), "curl/8".into()),
            ],
            body: Vec::new(),
            source_ip: "127.0.0.1".into(),
        }
    }

    #[test]
    fn event_has_the_format_2_fields() {
        let e = event(&request(), &ctx());
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "GET /pedidos/{id}");
        assert_eq!(e["rawPath"], "/pedidos/7");
        assert_eq!(e["rawQueryString"], "a=1&a=2&b=x%20y&flag");
        assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
        assert_eq!(e["headers"], json!({"accept": "text/html,application/json", "user-agent": "curl/8"}));
        assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "b": "x y", "flag": ""}));
        assert_eq!(e["pathParameters"], json!({"id": "7"}));
        let rc = &e["requestContext"];
        assert_eq!(
            rc["http"],
            json!({"method": "GET", "path": "/pedidos/7", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "curl/8"})
        );
        assert_eq!(rc["requestId"], "req-1");
        assert_eq!(rc["stage"], "$default");
        assert_eq!(rc["time"], "04/Mar/2020:19:03:58 +0000");
        assert_eq!(rc["timeEpoch"], 1_583_348_638_390_i64);
        assert_eq!(rc["apiId"], "abc123");
        assert_eq!(e["isBase64Encoded"], false);
        assert!(e.get("body").is_none());
        assert!(rc.get("authorizer").is_none());
        let jwt = json!({"jwt": {"claims": {"sub": "ana"}, "scopes": ["pedidos:read"]}});
        let e = event(&request(), &Context { authorizer: Some(jwt.clone()), ..ctx() });
        assert_eq!(e["requestContext"]["authorizer"], jwt);
    }

    #[test]
    fn bodies_are_text_or_base64_by_content_type() {
        let mut req = request();
        req.body = br#"{"a":1}"#.to_vec();
        req.headers.push(("content-type".into(), "application/json; charset=utf-8".into()));
        let e = event(&req, &ctx());
        assert_eq!((e["body"].clone(), e["isBase64Encoded"].clone()), (json!(r#"{"a":1}"#), json!(false)));
        req.headers.pop();
        req.headers.push(("content-type".into(), "application/octet-stream".into()));
        req.body = vec![0, 159, 146, 150];
        let e = event(&req, &ctx());
        assert_eq!((e["body"].clone(), e["isBase64Encoded"].clone()), (json!("AJ+Slg=="), json!(true)));
    }

    #[test]
    fn structured_responses_are_taken_apart() {
        let r = response(
            br#"{"statusCode":201,"headers":{"Content-Type":"application/json","X-N":"1"},"cookies":["a=1","b=2"],"body":"{\"ok\":true}"}"#,
        );
        assert_eq!(r.status, 201);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-n"), Some("1"));
        assert_eq!(r.headers.iter().filter(|(k, _)| k == "set-cookie").count(), 2);
        assert_eq!(r.body, br#"{"ok":true}"#);
        let r = response(br#"{"statusCode":200,"isBase64Encoded":true,"body":"AJ+Slg=="}"#);
        assert_eq!(r.body, vec![0, 159, 146, 150]);
        let r = response(br#"{"statusCode":204}"#);
        assert_eq!((r.status, r.body.len()), (204, 0));
    }

    #[test]
    fn json_without_status_code_is_200_json() {
        let r = response(br#"{"hello":"world"}"#);
        assert_eq!((r.status, r.header("content-type")), (200, Some("application/json")));
        assert_eq!(r.body, br#"{"hello":"world"}"#);
        let r = response(br#""just a string""#);
        assert_eq!((r.status, r.body.as_slice()), (200, br#""just a string""#.as_slice()));
    }

    #[test]
    fn malformed_answers_are_500() {
        assert_eq!(response(b"not json"), Response::internal_error());
        assert_eq!(response(br#"{"statusCode":"abc"}"#).status, 500);
        assert_eq!(response(br#"{"statusCode":99}"#).status, 500);
        assert_eq!(Response::not_found().body, br#"{"message":"Not Found"}"#);
        assert_eq!(Response::unavailable().status, 503);
    }
}
