//! The front door: one HTTP listener per API, answering as API Gateway's HTTP API does (routes, payload
//! format 2.0, CORS, its own 404/500/503) and invoking the route's function through the runtime API.

use crate::cors;
use crate::event::{self, Request, Response};
use crate::http::{self, Incomingish};
use crate::logs::say;
use crate::router::Router;
use crate::runtime::{Function, InvokeError};
use ferroform_aws::apigatewayv2::Cors;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// API Gateway's limit on an integration's time, whatever the function's timeout.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a route goes.
#[derive(Clone)]
pub enum Target {
    Function(Arc<Function>),
    /// The route's function can't run here: why.
    Unavailable(String),
}

/// One API as served.
pub struct Api {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub cors: Option<Cors>,
    pub router: Router,
    /// By route key.
    pub targets: BTreeMap<String, Target>,
}

impl Api {
    /// Answers one request.
    pub async fn handle(&self, req: Request, host: &str) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut res = self.answer(&req, host, &request_id).await;
        if let Some(cors) = &self.cors {
            if !cors::is_preflight(&req) {
                res = cors::decorate(cors, &req, res);
            }
        }
        res.headers.push(("apigw-requestid".into(), request_id));
        res
    }

    async fn answer(&self, req: &Request, host: &str, request_id: &str) -> Response {
        if let Some(cors) = &self.cors {
            if cors::is_preflight(req) {
                return cors::preflight(cors, req);
            }
        }
        let Some(matched) = self.router.select(&req.method, &req.path) else { return Response::not_found() };
        let function = match self.targets.get(&matched.route_key) {
            Some(Target::Function(f)) => f.clone(),
            Some(Target::Unavailable(why)) => {
                say(&format!("{} | {} {}: {why}", self.name, req.method, req.path));
                return Response::internal_error();
            }
            None => return Response::not_found(),
        };
        let ctx = event::Context {
            api_id: self.id.clone(),
            account_id: self.account_id.clone(),
            stage: "$default".into(),
            domain_name: host.to_string(),
            route_key: matched.route_key,
            path_parameters: matched.path_parameters,
            request_id: request_id.to_string(),
            time: chrono::Utc::now(),
        };
        let payload = event::event(req, &ctx).to_string().into_bytes();
        match tokio::time::timeout(INTEGRATION_TIMEOUT, function.invoke(payload)).await {
            Ok(Ok(output)) => event::response(&output),
            Ok(Err(InvokeError::Timeout)) | Err(_) => Response::unavailable(),
            Ok(Err(InvokeError::Function(_) | InvokeError::Crashed(_))) => Response::internal_error(),
        }
    }
}

/// Serves `api` on `listener` until dropped.
pub async fn serve(api: Arc<Api>, listener: tokio::net::TcpListener) {
    http::serve(listener, move |req: Incomingish| {
        let api = api.clone();
        async move {
            let started = std::time::Instant::now();
            let host = req.headers.iter().find(|(k, _)| k == "host").map(|(_, v)| v.clone()).unwrap_or_default();
            let request = Request {
                method: req.method,
                path: req.path,
                query: req.query,
                headers: req.headers,
                body: req.body,
                source_ip: req.peer.ip().to_string(),
            };
            let line = format!("{} {}", request.method, request.path);
            let res = api.handle(request, &host).await;
            say(&format!("{} | {line} -> {} ({} ms)", api.name, res.status, started.elapsed().as_millis()));
            http::response(res.status, &res.headers, res.body)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::FunctionSpec;
    use crate::testing;

    async fn api(dir: &std::path::Path, stop: tokio::sync::watch::Receiver<bool>) -> Api {
        let spec = FunctionSpec {
            name: "f".into(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            program: testing::script(dir),
            args: Vec::new(),
            env: testing::env(&[]),
            timeout: Duration::from_secs(1),
            max_instances: 2,
            log_group: None,
        };
        let f = Function::new(spec, None, stop);
        let keys = ["GET /items", "POST /items/{id}", "GET /broken"];
        let mut targets: BTreeMap<String, Target> = keys.iter().map(|k| (k.to_string(), Target::Function(f.clone()))).collect();
        targets.insert("GET /broken".into(), Target::Unavailable("no program".into()));
        Api {
            id: "abc".into(),
            name: "api".into(),
            account_id: "123456789012".into(),
            cors: Some(Cors::builder().origins(["http://localhost:3000"]).methods(["GET", "POST"])),
            router: Router::new(&keys).unwrap(),
            targets,
        }
    }

    fn req(method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            body: body.as_bytes().to_vec(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            source_ip: "127.0.0.1".into(),
            ..Request::default()
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_gateway_answers_as_api_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let api = api(dir.path(), stop).await;
        let ok = api.handle(req("GET", "/items", "", &[("origin", "http://localhost:3000")]), "localhost").await;
        assert_eq!(ok.status, 200);
        assert_eq!(ok.header("access-control-allow-origin"), Some("http://localhost:3000"));
        assert!(ok.header("apigw-requestid").is_some());
        let missing = api.handle(req("GET", "/nothing", "", &[]), "localhost").await;
        assert_eq!((missing.status, missing.body.as_slice()), (404, br#"{"message":"Not Found"}"#.as_slice()));
        let failed = api.handle(req("POST", "/items/1", "fail", &[("content-type", "text/plain")]), "localhost").await;
        assert_eq!((failed.status, failed.body.as_slice()), (500, br#"{"message":"Internal Server Error"}"#.as_slice()));
        let unavailable = api.handle(req("GET", "/broken", "", &[]), "localhost").await;
        assert_eq!(unavailable.status, 500);
        let slow = api.handle(req("POST", "/items/1", "sleep", &[("content-type", "text/plain")]), "localhost").await;
        assert_eq!((slow.status, slow.body.as_slice()), (503, br#"{"message":"Service Unavailable"}"#.as_slice()));
        let preflight = api
            .handle(req("OPTIONS", "/items", "", &[("origin", "http://localhost:3000"), ("access-control-request-method", "GET")]), "h")
            .await;
        assert_eq!(preflight.status, 204);
        assert_eq!(preflight.header("access-control-allow-methods"), Some("GET,POST"));
    }
}
