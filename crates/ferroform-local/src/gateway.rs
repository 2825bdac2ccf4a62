//! The front door: one HTTP listener per API, answering as API Gateway's HTTP API does (routes, payload
//! format 2.0, CORS, route authorization, its own 401/403/404/500/503) and invoking the route's function
//! through the runtime API.

use crate::auth::{self, RouteAuth};
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
    /// Who may call each route, by route key (absent: open).
    pub auth: BTreeMap<String, RouteAuth>,
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
        // Authorization comes before the integration: a refused call never reaches the function.
        let open = RouteAuth::Open;
        let authorizer = match auth::authorize(self.auth.get(&matched.route_key).unwrap_or(&open), req, chrono::Utc::now()) {
            Ok(authorizer) => authorizer,
            Err(refused) => return refused,
        };
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
            authorizer,
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
        let keys = ["GET /items", "POST /items/{id}", "GET /broken", "GET /echo-event"];
        let mut targets: BTreeMap<String, Target> = keys.iter().map(|k| (k.to_string(), Target::Function(f.clone()))).collect();
        targets.insert("GET /broken".into(), Target::Unavailable("no program".into()));
        Api {
            id: "abc".into(),
            name: "api".into(),
            account_id: "123456789012".into(),
            cors: Some(Cors::builder().origins(["http://localhost:3000"]).methods(["GET", "POST"])),
            router: Router::new(&keys).unwrap(),
            targets,
            auth: BTreeMap::new(),
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

    /// A token for `scope` that the test runtime won't take for one of its commands (`fail`, `sleep`, `wait`
    /// in the event's text).
    fn token(issuer: &auth::jwt::TokenIssuer, edit: impl Fn(&mut serde_json::Value)) -> String {
        let now = chrono::Utc::now().timestamp();
        (0..100)
            .map(|i| {
                let mut claims = issuer.claims("app", "items:read", now);
                claims["jti"] = serde_json::json!(i);
                edit(&mut claims);
                issuer.token(&claims).unwrap()
            })
            .find(|t| !["fail", "sleep", "wait"].iter().any(|w| t.contains(w)))
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn routes_are_authorized_before_the_function_runs() {
        use auth::jwt::{Jwks, JwtAuthorizer, TokenIssuer};
        use auth::sigv4::{self, Credentials};
        let dir = tempfile::tempdir().unwrap();
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let mut api = api(dir.path(), stop).await;
        let issuer = TokenIssuer::generate("https://issuer.example.com", "k1").unwrap();
        let authorizer = Arc::new(JwtAuthorizer {
            issuer: issuer.issuer.clone(),
            audience: vec!["app".into()],
            identity_source: vec!["$request.header.Authorization".into()],
            keys: Ok(Arc::new(Jwks::parse(&issuer.jwks().to_string()).unwrap())),
        });
        let read = RouteAuth::Jwt { authorizer: authorizer.clone(), scopes: vec!["items:read".into()] };
        api.auth.insert("GET /items".into(), read.clone());
        api.auth.insert("GET /echo-event".into(), read);
        api.auth.insert("GET /broken".into(), RouteAuth::Jwt { authorizer, scopes: vec!["items:write".into()] });
        let creds = Credentials { access_key_id: "AKID".into(), secret_access_key: "secret".into(), session_token: None };
        let iam = auth::IamAuth { credentials: creds.clone(), region: "us-east-1".into(), account_id: "123456789012".into() };
        api.auth.insert("POST /items/{id}".into(), RouteAuth::Iam(Arc::new(iam)));

        let bearer = |t: &str| format!("Bearer {t}");
        let good = token(&issuer, |_| {});
        let ok = api.handle(req("GET", "/items", "", &[("authorization", &bearer(&good))]), "h").await;
        assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
        // The claims and scopes reach the function as API Gateway passes them.
        let echoed = api.handle(req("GET", "/echo-event", "", &[("authorization", &bearer(&good))]), "h").await;
        let event: serde_json::Value = serde_json::from_slice(&echoed.body).unwrap();
        let jwt = &event["requestContext"]["authorizer"]["jwt"];
        assert_eq!((jwt["claims"]["sub"].as_str(), jwt["claims"]["aud"].as_str()), (Some("local-user"), Some("app")));
        assert_eq!(jwt["scopes"], serde_json::json!(["items:read"]));
        // 401 without a token or with a bad one, 403 without the route's scope.
        let unauthorized = br#"{"message":"Unauthorized"}"#.as_slice();
        let none = api.handle(req("GET", "/items", "", &[]), "h").await;
        assert_eq!((none.status, none.body.as_slice()), (401, unauthorized));
        let expired = token(&issuer, |c| c["exp"] = serde_json::json!(chrono::Utc::now().timestamp() - 10));
        let r = api.handle(req("GET", "/items", "", &[("authorization", &bearer(&expired))]), "h").await;
        assert_eq!((r.status, r.body.as_slice()), (401, unauthorized));
        assert!(r.header("www-authenticate").unwrap().contains("the token has expired"), "{:?}", r.headers);
        let r = api.handle(req("GET", "/broken", "", &[("authorization", &bearer(&good))]), "h").await;
        assert_eq!((r.status, r.body.as_slice()), (403, br#"{"message":"Forbidden"}"#.as_slice()));
        // A preflight needs no token.
        let preflight = req("OPTIONS", "/items", "", &[("origin", "http://localhost:3000"), ("access-control-request-method", "GET")]);
        assert_eq!(api.handle(preflight, "h").await.status, 204);

        // IAM: unsigned is 403 Forbidden; signed with the emulator's keys passes; signed with others is 403.
        let r = api.handle(req("POST", "/items/1", "{}", &[("content-type", "application/json")]), "h").await;
        assert_eq!((r.status, r.body.as_slice()), (403, br#"{"message":"Forbidden"}"#.as_slice()));
        let signed = |creds: &Credentials| {
            let headers = vec![("host".to_string(), "h".to_string()), ("content-type".to_string(), "application/json".to_string())];
            let m = sigv4::Message { method: "POST", path: "/items/1", query: "", headers: &headers, body: b"{}" };
            let mut all = headers.clone();
            all.extend(sigv4::sign(&m, creds, "us-east-1", "execute-api", chrono::Utc::now()));
            Request { method: "POST".into(), path: "/items/1".into(), body: b"{}".to_vec(), headers: all, ..Request::default() }
        };
        assert_eq!(api.handle(signed(&creds), "h").await.status, 200);
        let stranger = Credentials { secret_access_key: "guess".into(), ..creds };
        let r = api.handle(signed(&stranger), "h").await;
        assert_eq!(r.status, 403);
        assert!(String::from_utf8_lossy(&r.body).contains("signature we calculated does not match"), "{:?}", r.body);
    }
}
