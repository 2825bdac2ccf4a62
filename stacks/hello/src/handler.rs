//! The HTTP API's handler (API Gateway v2 HTTP API, payload format 2.0).
//!
//! | route          | answer                                                                          |
//! |----------------|---------------------------------------------------------------------------------|
//! | `GET /hello`   | 200 `{"message": "Hello, World!"}`; `?name=Ana` -> `"Hello, Ana!"`               |
//! | `POST /echo`   | 200 the JSON body back, byte for byte; 400 when it is not JSON                   |
//! | `GET /health`  | 200 `{"status": "ok"}`                                                          |
//!
//! Every error is JSON `{"error": "..."}`: 400 for a bad body or name, 404 for unknown paths, 405 (with
//! `Allow`) for a known path with another method. Nothing a client sends gets a 5xx: there is no I/O here,
//! so a 5xx would be a bug (and the stack's alarm on API 5xx would say so).

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use aws_lambda_events::http::Method;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::value::RawValue;

/// The env var with the greeting word (`Hello` unless set).
pub const ENV_GREETING: &str = "GREETING";
pub const DEFAULT_GREETING: &str = "Hello";
/// Longer names are refused (400): a greeting, not a storage service.
pub const MAX_NAME_CHARS: usize = 100;
/// Larger bodies are refused (413). Lambda takes 6 MB per request; an echo has no use for that much.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What the handler is configured with. See [`Config::from_env`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub greeting: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { greeting: DEFAULT_GREETING.to_string() }
    }
}

impl Config {
    /// `GREETING` (default `Hello`; blank counts as unset).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let greeting = get(ENV_GREETING).map(|g| g.trim().to_string()).filter(|g| !g.is_empty());
        Config { greeting: greeting.unwrap_or_else(|| DEFAULT_GREETING.to_string()) }
    }
}

/// What a request asks for, once method and path are understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Hello,
    Echo,
    Health,
}

/// An answer that is not a success: a status and a message for the client (JSON `{"error": ..}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub message: String,
    pub allow: Option<&'static str>,
}

impl HttpError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        HttpError { status, message: message.into(), allow: None }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn response(&self) -> ApiGatewayV2httpResponse {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            error: &'a str,
        }
        let mut res = json_response(self.status, &ErrorBody { error: &self.message });
        if let Some(allow) = self.allow {
            res.headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        res
    }
}

/// Matches method and path (without the stage prefix, see [`request_path`]). A trailing `/` is ignored.
pub fn route(method: &Method, path: &str) -> Result<Route, HttpError> {
    let trimmed = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
    let (route, allow) = match trimmed {
        "/hello" => (Route::Hello, "GET"),
        "/echo" => (Route::Echo, "POST"),
        "/health" => (Route::Health, "GET"),
        _ => return Err(HttpError::new(404, format!("no route for {path}"))),
    };
    if method.as_str() != allow {
        let message = format!("method {method} not allowed on {trimmed} (allowed: {allow})");
        return Err(HttpError { allow: Some(allow), ..HttpError::new(405, message) });
    }
    Ok(route)
}

/// The request's path without the stage prefix (present when the stage is not `$default`).
pub fn request_path(req: &ApiGatewayV2httpRequest) -> String {
    let path = req.raw_path.clone().or_else(|| req.request_context.http.path.clone()).unwrap_or_else(|| "/".to_string());
    match req.request_context.stage.as_deref() {
        Some(stage) if !stage.is_empty() && stage != "$default" => match path.strip_prefix(&format!("/{stage}")) {
            Some("") => "/".to_string(),
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => path,
        },
        _ => path,
    }
}

/// The `?name=` to greet: `World` when absent or blank; at most [`MAX_NAME_CHARS`] characters, no control
/// characters.
pub fn greeting_name(value: Option<&str>) -> Result<String, HttpError> {
    let name = value.map(str::trim).unwrap_or("");
    if name.is_empty() {
        return Ok("World".to_string());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(HttpError::bad_request(format!("name is longer than {MAX_NAME_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(HttpError::bad_request("name contains control characters"));
    }
    Ok(name.to_string())
}

/// The body as text: base64-decoded when API Gateway encoded it (it does for non-text content types), UTF-8
/// required.
pub fn body_text(req: &ApiGatewayV2httpRequest) -> Result<String, HttpError> {
    let too_large = || HttpError::new(413, format!("the body is larger than {MAX_BODY_BYTES} bytes"));
    let raw = req.body.as_deref().unwrap_or("");
    if raw.len() > MAX_BODY_BYTES.div_ceil(3) * 4 + 4 {
        return Err(too_large());
    }
    let text = if req.is_base64_encoded {
        let bytes = STANDARD.decode(raw.trim()).map_err(|e| HttpError::bad_request(format!("the body is not valid base64: {e}")))?;
        String::from_utf8(bytes).map_err(|_| HttpError::bad_request("the body is not UTF-8 text (JSON expected)"))?
    } else {
        raw.to_string()
    };
    if text.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(text)
}

/// The body's JSON, validated but kept as its own text (trimmed of surrounding whitespace).
pub fn echo_json(text: &str) -> Result<Box<RawValue>, HttpError> {
    if text.trim().is_empty() {
        return Err(HttpError::bad_request("a JSON body is required"));
    }
    serde_json::from_str::<Box<RawValue>>(text).map_err(|e| HttpError::bad_request(format!("the body is not JSON: {e}")))
}

fn json_response(status: u16, body: &(impl Serialize + ?Sized)) -> ApiGatewayV2httpResponse {
    let (status, text) = match serde_json::to_string(body) {
        Ok(text) => (status, text),
        Err(e) => {
            tracing::error!(error = %e, "serialising a response");
            (500, r#"{"error":"internal error: the response could not be written"}"#.to_string())
        }
    };
    let mut res = ApiGatewayV2httpResponse::default();
    res.status_code = i64::from(status);
    res.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.body = Some(Body::Text(text));
    res
}

/// The handler: build it once per Lambda container and call [`Hello::handle`] per request.
#[derive(Debug, Clone, Default)]
pub struct Hello {
    config: Config,
}

impl Hello {
    pub fn new(config: Config) -> Self {
        Hello { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Answers one request. Never fails: every error is an HTTP answer.
    pub fn handle(&self, req: &ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        let method = &req.request_context.http.method;
        let path = request_path(req);
        let res = route(method, &path).and_then(|r| self.dispatch(r, req)).unwrap_or_else(|e| e.response());
        tracing::info!(%method, %path, status = res.status_code, request_id = req.request_context.request_id.as_deref().unwrap_or(""), "request");
        res
    }

    fn dispatch(&self, route: Route, req: &ApiGatewayV2httpRequest) -> Result<ApiGatewayV2httpResponse, HttpError> {
        match route {
            Route::Hello => {
                let name = greeting_name(req.query_string_parameters.first("name"))?;
                Ok(json_response(200, &serde_json::json!({ "message": format!("{}, {name}!", self.config.greeting) })))
            }
            Route::Echo => Ok(json_response(200, &*echo_json(&body_text(req)?)?)),
            Route::Health => Ok(json_response(200, &serde_json::json!({ "status": "ok" }))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn req(method: &str, path: &str, stage: &str) -> ApiGatewayV2httpRequest {
        serde_json::from_value(serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "requestContext": {"stage": stage, "http": {"method": method, "path": path}, "requestId": "r"},
            "isBase64Encoded": false,
        }))
        .unwrap()
    }

    #[test]
    fn routes() {
        let r = |m: &str, p: &str| route(&Method::from_bytes(m.as_bytes()).unwrap(), p);
        assert_eq!(r("GET", "/hello"), Ok(Route::Hello));
        assert_eq!(r("GET", "/hello/"), Ok(Route::Hello));
        assert_eq!(r("POST", "/echo"), Ok(Route::Echo));
        assert_eq!(r("GET", "/health"), Ok(Route::Health));
        for p in ["/", "", "/hello/x", "/hellox", "//hello", "/Hello", "/echo//", "/x/health"] {
            assert_eq!(r("GET", p).map_err(|e| e.status), Err(404), "{p}");
        }
        let e = r("POST", "/hello").unwrap_err();
        assert_eq!((e.status, e.allow), (405, Some("GET")));
        let e = r("GET", "/echo").unwrap_err();
        assert_eq!((e.status, e.allow), (405, Some("POST")));
        assert_eq!(r("BREW", "/health").map_err(|e| e.status), Err(405));
    }

    #[test]
    fn the_stage_is_stripped() {
        assert_eq!(request_path(&req("GET", "/dev/hello", "dev")), "/hello");
        assert_eq!(request_path(&req("GET", "/dev", "dev")), "/");
        assert_eq!(request_path(&req("GET", "/development/hello", "dev")), "/development/hello");
        assert_eq!(request_path(&req("GET", "/hello", "$default")), "/hello");
    }

    #[test]
    fn names() {
        assert_eq!(greeting_name(None), Ok("World".into()));
        assert_eq!(greeting_name(Some("  ")), Ok("World".into()));
        assert_eq!(greeting_name(Some(" Ana ")), Ok("Ana".into()));
        assert_eq!(greeting_name(Some(&"ñ".repeat(MAX_NAME_CHARS))).map(|n| n.chars().count()), Ok(MAX_NAME_CHARS));
        assert_eq!(greeting_name(Some(&"a".repeat(MAX_NAME_CHARS + 1))).map_err(|e| e.status), Err(400));
        assert_eq!(greeting_name(Some("a\u{0}b")).map_err(|e| e.status), Err(400));
    }

    #[test]
    fn echo_keeps_the_json_text() {
        assert_eq!(
            echo_json(r#" {"a": 1e400, "b": 12345678901234567890123} "#).unwrap().get(),
            r#"{"a": 1e400, "b": 12345678901234567890123}"#
        );
        for bad in ["", " ", "{", "{'a':1}", "nope", "{} {}", "[1,]", "\"unterminated"] {
            assert_eq!(echo_json(bad).map(|_| ()).map_err(|e| e.status), Err(400), "{bad}");
        }
    }

    #[test]
    fn config_from_env() {
        assert_eq!(Config::from_lookup(|_| None).greeting, "Hello");
        assert_eq!(Config::from_lookup(|_| Some("  ".into())).greeting, "Hello");
        assert_eq!(Config::from_lookup(|k| (k == ENV_GREETING).then(|| "Hola".into())).greeting, "Hola");
    }
}
