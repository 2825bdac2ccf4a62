//! The HTTP API (API Gateway v2 HTTP API, payload format 2.0): routing and handlers.
//!
//! | route                  | answer                                                                   |
//! |------------------------|--------------------------------------------------------------------------|
//! | `GET /pedidos`         | 200 `{"items": [..], "next": token \| null}` (`?limit=1..=100`, `?next=`) |
//! | `POST /pedidos`        | 202 `{"id", "status": "PENDING", "task_arn"}`; 502 if the task won't start |
//! | `GET /pedidos/{id}`    | 200 the order; 404                                                       |
//! | `PUT /pedidos/{id}`    | 202 as POST, for an existing order; 404                                  |
//! | `DELETE /pedidos/{id}` | 204; 404                                                                 |
//!
//! Every error is JSON `{"error": "..."}`. Whatever a client sends gets a 2xx or a 4xx: bad JSON, a wrong
//! shape, a bad `limit` or `next`, an undecodable body are 400; unknown paths and ids 404; a wrong method
//! 405 with `Allow`; an oversized order 413. 5xx means our side failed (DynamoDB 500, RunTask 502).

use crate::db::{describe, DbError, Table};
use crate::model::{Op, Order, OrderRequest, OrderSnapshot, Status};
use crate::{ENV_ORDER_ID, ENV_ORDER_JSON, ENV_ORDER_OP};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::header::{HeaderValue, ALLOW, CONTENT_TYPE, LOCATION};
use aws_lambda_events::http::Method;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType, NetworkConfiguration, TaskOverride,
};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// Page size when `?limit=` is absent, and its bounds.
pub const DEFAULT_LIMIT: i32 = 20;
pub const MAX_LIMIT: i32 = 100;
/// Larger bodies are refused (413) before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// RunTask allows 8 KiB of overrides in all; the order's JSON must fit with room for the rest.
pub const MAX_ORDER_JSON_BYTES: usize = 7 * 1024;

/// Where the API finds its table and how it starts the worker. See [`Config::from_env`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
    pub cluster: String,
    pub task_definition: String,
    pub subnets: Vec<String>,
    /// Empty: the VPC's default security group.
    pub security_groups: Vec<String>,
    /// The container in the task definition that gets the order's env vars.
    pub container_name: String,
    pub assign_public_ip: bool,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// From `TABLE_NAME`, `CLUSTER_ARN`, `TASK_DEFINITION_ARN`, `SUBNETS` and `SECURITY_GROUPS`
    /// (comma-separated), `CONTAINER_NAME`, and optionally `ASSIGN_PUBLIC_IP` (`ENABLED`/`DISABLED`, default
    /// `DISABLED`: private subnets with a NAT gateway).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &str| {
            get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).ok_or_else(|| ConfigError(format!("{name} is not set")))
        };
        let list = |name: &str| -> Vec<String> {
            get(name).unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
        };
        let subnets = list("SUBNETS");
        if subnets.is_empty() {
            return Err(ConfigError("SUBNETS is not set (comma-separated subnet ids)".into()));
        }
        let assign_public_ip = match get("ASSIGN_PUBLIC_IP").as_deref().map(str::trim) {
            None | Some("") => false,
            Some(v) if v.eq_ignore_ascii_case("ENABLED") => true,
            Some(v) if v.eq_ignore_ascii_case("DISABLED") => false,
            Some(v) => return Err(ConfigError(format!("ASSIGN_PUBLIC_IP must be ENABLED or DISABLED, not `{v}`"))),
        };
        Ok(Config {
            table_name: required("TABLE_NAME")?,
            cluster: required("CLUSTER_ARN")?,
            task_definition: required("TASK_DEFINITION_ARN")?,
            subnets,
            security_groups: list("SECURITY_GROUPS"),
            container_name: required("CONTAINER_NAME")?,
            assign_public_ip,
        })
    }
}

/// What a request asks for, once its method and path are understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    List,
    Create,
    Get(String),
    Replace(String),
    Delete(String),
}

/// An answer that is not a success: a status and a message for the client (JSON `{"error": ..}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub message: String,
    allow: Option<&'static str>,
    id: Option<String>,
    order_status: Option<Status>,
}

impl HttpError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        HttpError { status, message: message.into(), allow: None, id: None, order_status: None }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    fn not_found(id: &str) -> Self {
        Self::new(404, format!("order {id} not found"))
    }

    fn method_not_allowed(method: &Method, allow: &'static str) -> Self {
        HttpError { allow: Some(allow), ..Self::new(405, format!("method {method} not allowed here (allowed: {allow})")) }
    }

    fn internal(err: DbError) -> Self {
        tracing::error!(error = %err, "storage failure");
        Self::new(500, "internal error: the order store failed")
    }

    fn response(&self) -> ApiGatewayV2httpResponse {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            error: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: Option<Status>,
        }
        let body = ErrorBody { error: &self.message, id: self.id.as_deref(), status: self.order_status };
        let mut res = json_response(self.status, &body);
        if let Some(allow) = self.allow {
            res.headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        res
    }
}

/// Matches method and path. The path may carry the stage (`/prod/pedidos`) when the stage is not
/// `$default`: strip it before calling this. Ids are UUIDs (the API makes them): anything else is a 404.
pub fn route(method: &Method, path: &str) -> Result<Route, HttpError> {
    let path = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
    let mut segments = path.strip_prefix('/').unwrap_or(path).split('/');
    let not_found = || HttpError::new(404, format!("no route for {path}"));
    if segments.next() != Some("pedidos") {
        return Err(not_found());
    }
    match (segments.next(), segments.next()) {
        (None, _) => match *method {
            Method::GET => Ok(Route::List),
            Method::POST => Ok(Route::Create),
            _ => Err(HttpError::method_not_allowed(method, "GET, POST")),
        },
        (Some(id), None) if !id.is_empty() => {
            let make: fn(String) -> Route = match *method {
                Method::GET => Route::Get,
                Method::PUT => Route::Replace,
                Method::DELETE => Route::Delete,
                _ => return Err(HttpError::method_not_allowed(method, "DELETE, GET, PUT")),
            };
            let id = Uuid::parse_str(id).map_err(|_| HttpError::not_found(id))?;
            Ok(make(id.hyphenated().to_string()))
        }
        _ => Err(not_found()),
    }
}

/// The request's path without the stage prefix.
pub fn request_path(req: &ApiGatewayV2httpRequest) -> String {
    let path = req.raw_path.clone().or_else(|| req.request_context.http.path.clone()).unwrap_or_else(|| "/".to_string());
    match req.request_context.stage.as_deref() {
        Some(stage) if !stage.is_empty() && stage != "$default" => {
            let prefix = format!("/{stage}");
            match path.strip_prefix(&prefix) {
                Some("") => "/".to_string(),
                Some(rest) if rest.starts_with('/') => rest.to_string(),
                _ => path,
            }
        }
        _ => path,
    }
}

/// The body as text: base64-decoded when API Gateway encoded it, and required to be UTF-8.
pub fn body_text(req: &ApiGatewayV2httpRequest) -> Result<String, HttpError> {
    let raw = req.body.as_deref().unwrap_or("");
    if raw.len() > MAX_BODY_BYTES * 4 / 3 + 4 {
        return Err(HttpError::new(413, format!("the body is larger than {MAX_BODY_BYTES} bytes")));
    }
    let text = if req.is_base64_encoded {
        let bytes = STANDARD.decode(raw.trim()).map_err(|e| HttpError::bad_request(format!("the body is not valid base64: {e}")))?;
        String::from_utf8(bytes).map_err(|_| HttpError::bad_request("the body is not UTF-8 text (JSON expected)"))?
    } else {
        raw.to_string()
    };
    if text.len() > MAX_BODY_BYTES {
        return Err(HttpError::new(413, format!("the body is larger than {MAX_BODY_BYTES} bytes")));
    }
    if text.trim().is_empty() {
        return Err(HttpError::bad_request("a JSON body is required"));
    }
    Ok(text)
}

/// `?limit=`: 1..=100, default 20.
pub fn parse_limit(value: Option<&str>) -> Result<i32, HttpError> {
    match value {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.trim().parse::<i32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(HttpError::bad_request(format!("limit must be an integer from 1 to {MAX_LIMIT} (got `{v}`)"))),
        },
    }
}

/// The `next` token: URL-safe base64 of the Scan's LastEvaluatedKey, `{"id": ".."}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    id: String,
}

const TOKEN: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub fn encode_next(last_id: &str) -> Result<String, serde_json::Error> {
    Ok(TOKEN.encode(serde_json::to_string(&Cursor { id: last_id.to_string() })?))
}

/// Decodes a `next` token back to the id to continue after. Anything we did not make is a 400.
pub fn decode_next(token: &str) -> Result<String, HttpError> {
    let bad = || HttpError::bad_request("next is not a valid page token (pass back the `next` of the previous page)");
    let bytes = TOKEN.decode(token.trim()).map_err(|_| bad())?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let id = Uuid::parse_str(&cursor.id).map_err(|_| bad())?;
    Ok(id.hyphenated().to_string())
}

fn json_response(status: u16, body: &impl Serialize) -> ApiGatewayV2httpResponse {
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

fn empty_response(status: u16) -> ApiGatewayV2httpResponse {
    let mut res = ApiGatewayV2httpResponse::default();
    res.status_code = i64::from(status);
    res
}

/// The API over its clients: build it once per Lambda container and call [`Api::handle`] per request.
#[derive(Debug, Clone)]
pub struct Api {
    table: Table,
    ecs: aws_sdk_ecs::Client,
    config: Config,
}

impl Api {
    pub fn new(ddb: aws_sdk_dynamodb::Client, ecs: aws_sdk_ecs::Client, config: Config) -> Self {
        let table = Table::new(ddb, config.table_name.clone());
        Api { table, ecs, config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Answers one request. Never fails: every error is an HTTP answer.
    pub async fn handle(&self, req: &ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        let method = &req.request_context.http.method;
        let path = request_path(req);
        let res = match route(method, &path) {
            Ok(route) => self.dispatch(route, req).await,
            Err(e) => Err(e),
        };
        let res = res.unwrap_or_else(|e| e.response());
        tracing::info!(%method, %path, status = res.status_code, request_id = req.request_context.request_id.as_deref().unwrap_or(""), "request");
        res
    }

    async fn dispatch(&self, route: Route, req: &ApiGatewayV2httpRequest) -> Result<ApiGatewayV2httpResponse, HttpError> {
        match route {
            Route::List => self.list(req).await,
            Route::Get(id) => match self.table.get(&id).await.map_err(HttpError::internal)? {
                Some(order) => Ok(json_response(200, &order)),
                None => Err(HttpError::not_found(&id)),
            },
            Route::Delete(id) => match self.table.delete(&id).await.map_err(HttpError::internal)? {
                true => Ok(empty_response(204)),
                false => Err(HttpError::not_found(&id)),
            },
            Route::Create => {
                let snapshot = snapshot(Uuid::new_v4().hyphenated().to_string(), req)?;
                let json = snapshot_json(&snapshot)?;
                if !self.table.insert_pending(&snapshot).await.map_err(HttpError::internal)? {
                    return Err(HttpError::new(500, "internal error: a fresh order id was already taken"));
                }
                self.start(&snapshot, &json, Op::Create).await
            }
            Route::Replace(id) => {
                let snapshot = snapshot(id, req)?;
                let json = snapshot_json(&snapshot)?;
                if !self.table.replace_pending(&snapshot).await.map_err(HttpError::internal)? {
                    return Err(HttpError::not_found(&snapshot.id));
                }
                self.start(&snapshot, &json, Op::Update).await
            }
        }
    }

    async fn list(&self, req: &ApiGatewayV2httpRequest) -> Result<ApiGatewayV2httpResponse, HttpError> {
        #[derive(Serialize)]
        struct Page<'a> {
            items: &'a [Order],
            next: Option<String>,
        }
        let query = &req.query_string_parameters;
        let limit = parse_limit(query.first("limit"))?;
        let after = match query.first("next") {
            None | Some("") => None,
            Some(token) => Some(decode_next(token)?),
        };
        let (orders, last) = self.table.scan(limit, after.as_deref()).await.map_err(HttpError::internal)?;
        let next = match last {
            None => None,
            Some(id) => Some(encode_next(&id).map_err(|e| HttpError::new(500, format!("internal error: {e}")))?),
        };
        Ok(json_response(200, &Page { items: &orders, next }))
    }

    /// Starts the worker for a stored `PENDING` order: 202, or 502 with the order marked `FAILED`.
    async fn start(&self, order: &OrderSnapshot, json: &str, op: Op) -> Result<ApiGatewayV2httpResponse, HttpError> {
        #[derive(Serialize)]
        struct Accepted<'a> {
            id: &'a str,
            status: Status,
            task_arn: &'a str,
        }
        match self.run_task(order, json, op).await {
            Ok(task_arn) => {
                if let Err(e) = self.table.set_task_arn(&order.id, &order.revision, &task_arn).await {
                    // The task runs and will record its verdict: only the ARN is missing from the item.
                    tracing::warn!(id = %order.id, error = %e, "could not record the task ARN");
                }
                let mut res = json_response(202, &Accepted { id: &order.id, status: Status::Pending, task_arn: &task_arn });
                if let Ok(location) = HeaderValue::from_str(&format!("/pedidos/{}", order.id)) {
                    res.headers.insert(LOCATION, location);
                }
                Ok(res)
            }
            Err(reason) => {
                tracing::error!(id = %order.id, %reason, "RunTask failed");
                if let Err(e) = self.table.mark_failed(&order.id, &order.revision, &reason).await {
                    tracing::error!(id = %order.id, error = %e, "could not mark the order FAILED");
                }
                Err(HttpError {
                    id: Some(order.id.clone()),
                    order_status: Some(Status::Failed),
                    ..HttpError::new(502, format!("could not start the order's processing task: {reason}"))
                })
            }
        }
    }

    /// ECS RunTask (Fargate, awsvpc) with the order in the worker container's environment. Returns the task
    /// ARN, or why no task was started.
    async fn run_task(&self, order: &OrderSnapshot, json: &str, op: Op) -> Result<String, String> {
        let c = &self.config;
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(c.subnets.clone()))
            .set_security_groups((!c.security_groups.is_empty()).then(|| c.security_groups.clone()))
            .assign_public_ip(if c.assign_public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
            .build()
            .map_err(|e| format!("awsvpc configuration: {e}"))?;
        let env = |name: &str, value: &str| KeyValuePair::builder().name(name).value(value).build();
        let overrides = TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder()
                    .name(&c.container_name)
                    .environment(env(ENV_ORDER_ID, &order.id))
                    .environment(env(ENV_ORDER_OP, op.as_str()))
                    .environment(env(ENV_ORDER_JSON, json))
                    .build(),
            )
            .build();
        let out = self
            .ecs
            .run_task()
            .cluster(&c.cluster)
            .task_definition(&c.task_definition)
            .launch_type(LaunchType::Fargate)
            .count(1)
            .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
            .overrides(overrides)
            .started_by("pedidos-api")
            // One task per revision, even if the SDK retries the call.
            .client_token(&order.revision)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        if let Some(arn) = out.tasks().iter().find_map(|t| t.task_arn()) {
            return Ok(arn.to_string());
        }
        let failures: Vec<String> = out
            .failures()
            .iter()
            .map(|f| match (f.reason(), f.detail()) {
                (Some(r), Some(d)) => format!("{r} ({d})"),
                (Some(r), None) => r.to_string(),
                (None, Some(d)) => d.to_string(),
                (None, None) => "unknown failure".to_string(),
            })
            .collect();
        Err(if failures.is_empty() { "RunTask started no task".to_string() } else { failures.join("; ") })
    }
}

/// The order a POST/PUT body describes, at a new revision.
fn snapshot(id: String, req: &ApiGatewayV2httpRequest) -> Result<OrderSnapshot, HttpError> {
    let order = OrderRequest::parse(&body_text(req)?).map_err(|e| HttpError::bad_request(format!("invalid order: {e}")))?;
    Ok(OrderSnapshot { id, revision: Uuid::new_v4().hyphenated().to_string(), customer: order.customer, items: order.items })
}

fn snapshot_json(order: &OrderSnapshot) -> Result<String, HttpError> {
    let json = order.to_json().map_err(|e| HttpError::new(500, format!("internal error: {e}")))?;
    if json.len() > MAX_ORDER_JSON_BYTES {
        return Err(HttpError::new(
            413,
            format!("the order is too large to process ({} bytes as JSON, at most {MAX_ORDER_JSON_BYTES})", json.len()),
        ));
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, stage: &str, body: Option<&str>, base64: bool) -> ApiGatewayV2httpRequest {
        serde_json::from_value(serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {"stage": stage, "http": {"method": method, "path": path}, "requestId": "r"},
            "body": body,
            "isBase64Encoded": base64,
        }))
        .unwrap()
    }

    const ID: &str = "0b5c8a58-9c6e-4c6f-8a35-5a0b1e0e8f11";

    #[test]
    fn routes() {
        let r = |m: Method, p: &str| route(&m, p);
        assert_eq!(r(Method::GET, "/pedidos"), Ok(Route::List));
        assert_eq!(r(Method::GET, "/pedidos/"), Ok(Route::List));
        assert_eq!(r(Method::POST, "/pedidos"), Ok(Route::Create));
        assert_eq!(r(Method::GET, &format!("/pedidos/{ID}")), Ok(Route::Get(ID.into())));
        assert_eq!(r(Method::PUT, &format!("/pedidos/{ID}/")), Ok(Route::Replace(ID.into())));
        assert_eq!(r(Method::DELETE, &format!("/pedidos/{}", ID.to_uppercase())), Ok(Route::Delete(ID.into())));
        for p in ["/", "", "/pedido", "/pedidosx", "/x/pedidos", &format!("/pedidos/{ID}/items"), "//pedidos", "/pedidos//"] {
            assert_eq!(r(Method::GET, p).map_err(|e| e.status), Err(404), "{p}");
        }
        assert_eq!(r(Method::GET, "/pedidos/not-a-uuid").map_err(|e| e.status), Err(404));
        let e = r(Method::PATCH, "/pedidos").unwrap_err();
        assert_eq!((e.status, e.allow), (405, Some("GET, POST")));
        let e = r(Method::POST, &format!("/pedidos/{ID}")).unwrap_err();
        assert_eq!((e.status, e.allow), (405, Some("DELETE, GET, PUT")));
        let e = r(Method::from_bytes(b"BREW").unwrap(), "/pedidos/whatever").unwrap_err();
        assert_eq!(e.status, 405);
    }

    #[test]
    fn the_stage_is_stripped() {
        assert_eq!(request_path(&req("GET", "/prod/pedidos", "prod", None, false)), "/pedidos");
        assert_eq!(request_path(&req("GET", "/prod", "prod", None, false)), "/");
        assert_eq!(request_path(&req("GET", "/production/pedidos", "prod", None, false)), "/production/pedidos");
        assert_eq!(request_path(&req("GET", "/pedidos", "$default", None, false)), "/pedidos");
    }

    #[test]
    fn bodies() {
        assert_eq!(body_text(&req("POST", "/pedidos", "$default", Some("{}"), false)), Ok("{}".to_string()));
        assert_eq!(body_text(&req("POST", "/pedidos", "$default", Some("e30="), true)), Ok("{}".to_string()));
        let status = |body: Option<&str>, b64: bool| body_text(&req("POST", "/pedidos", "$default", body, b64)).map_err(|e| e.status);
        assert_eq!(status(None, false), Err(400));
        assert_eq!(status(Some("  "), false), Err(400));
        assert_eq!(status(Some("not base64!"), true), Err(400));
        assert_eq!(status(Some(&STANDARD.encode([0xff, 0xfe, 0x00])), true), Err(400));
        assert_eq!(status(Some(&"x".repeat(MAX_BODY_BYTES + 1)), false), Err(413));
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None), Ok(20));
        assert_eq!(parse_limit(Some("1")), Ok(1));
        assert_eq!(parse_limit(Some("100")), Ok(100));
        for bad in ["0", "101", "-1", "abc", "", "1.5", "1,2", "99999999999"] {
            assert_eq!(parse_limit(Some(bad)).map_err(|e| e.status), Err(400), "{bad}");
        }
    }

    #[test]
    fn next_tokens() {
        let token = encode_next(ID).unwrap();
        assert!(!token.contains(['=', '+', '/']), "{token}");
        assert_eq!(decode_next(&token), Ok(ID.to_string()));
        // A padded token is accepted too.
        let padded = base64::engine::general_purpose::URL_SAFE.encode(format!(r#"{{"id":"{ID}"}}"#));
        assert_eq!(decode_next(&padded), Ok(ID.to_string()));
        for bad in [
            "",
            "!!!",
            "bm90IGpzb24",
            &TOKEN.encode(r#"{"id":"x"}"#),
            &TOKEN.encode(r#"{"id":1}"#),
            &TOKEN.encode(format!(r#"{{"id":"{ID}","k":1}}"#)),
        ] {
            assert_eq!(decode_next(bad).map_err(|e| e.status), Err(400), "{bad}");
        }
    }

    #[test]
    fn config_from_env() {
        let vars = [
            ("TABLE_NAME", "t"),
            ("CLUSTER_ARN", "c"),
            ("TASK_DEFINITION_ARN", "td"),
            ("SUBNETS", "subnet-1, subnet-2,"),
            ("SECURITY_GROUPS", "sg-1"),
            ("CONTAINER_NAME", "worker"),
        ];
        let get = |extra: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().chain(extra).rev().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let c = Config::from_lookup(get(&[])).unwrap();
        assert_eq!(c.subnets, vec!["subnet-1", "subnet-2"]);
        assert_eq!(c.security_groups, vec!["sg-1"]);
        assert!(!c.assign_public_ip);
        assert!(Config::from_lookup(get(&[("ASSIGN_PUBLIC_IP", "enabled")])).unwrap().assign_public_ip);
        assert!(Config::from_lookup(get(&[("ASSIGN_PUBLIC_IP", "maybe")])).is_err());
        assert!(Config::from_lookup(get(&[("SUBNETS", " , ")])).is_err());
        assert!(Config::from_lookup(get(&[("TABLE_NAME", "")])).is_err());
    }

    #[test]
    fn errors_are_json() {
        let res = HttpError::method_not_allowed(&Method::PATCH, "GET, POST").response();
        assert_eq!(res.status_code, 405);
        assert_eq!(res.headers.get(ALLOW).unwrap(), "GET, POST");
        assert_eq!(res.headers.get(CONTENT_TYPE).unwrap(), "application/json");
        let Some(Body::Text(text)) = res.body else { panic!() };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["error"].as_str().unwrap().contains("PATCH"));
    }
}
