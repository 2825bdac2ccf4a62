//! CORS as an HTTP API with a CORS configuration answers it: the gateway itself answers preflight requests
//! (whatever the routes), and sets the CORS headers on every other response, replacing any the function
//! sent.

use crate::event::{Request, Response};
use ferroform_aws::apigatewayv2::Cors;

fn contains(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v.eq_ignore_ascii_case(value))
}

fn origin_allowed<'a>(cors: &Cors, req: &'a Request) -> Option<&'a str> {
    let origin = req.header("origin")?;
    contains(&cors.allow_origins, origin).then_some(origin)
}

/// The value of `Access-Control-Allow-Origin` for an allowed origin: `*` when every origin is allowed and
/// no credentials are, else the origin itself.
fn allow_origin(cors: &Cors, origin: &str) -> String {
    if cors.allow_origins.iter().any(|o| o == "*") && cors.allow_credentials != Some(true) {
        "*".into()
    } else {
        origin.into()
    }
}

/// A preflight is an `OPTIONS` request with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(req: &Request) -> bool {
    req.method.eq_ignore_ascii_case("OPTIONS") && req.header("origin").is_some() && req.header("access-control-request-method").is_some()
}

/// The gateway's answer to a preflight: 204, with the CORS headers when the origin (and method) are allowed,
/// without them otherwise (the browser then refuses the call).
pub fn preflight(cors: &Cors, req: &Request) -> Response {
    let mut headers = Vec::new();
    let method = req.header("access-control-request-method").unwrap_or_default();
    if let Some(origin) = origin_allowed(cors, req).filter(|_| contains(&cors.allow_methods, method)) {
        headers.push(("access-control-allow-origin".to_string(), allow_origin(cors, origin)));
        let methods = if cors.allow_methods.iter().any(|m| m == "*") { method.to_string() } else { cors.allow_methods.join(",") };
        headers.push(("access-control-allow-methods".into(), methods));
        let requested = req.header("access-control-request-headers").unwrap_or_default();
        let allowed_headers =
            if cors.allow_headers.iter().any(|h| h == "*") { requested.to_string() } else { cors.allow_headers.join(",") };
        if !allowed_headers.is_empty() {
            headers.push(("access-control-allow-headers".into(), allowed_headers));
        }
        if let Some(age) = cors.max_age {
            headers.push(("access-control-max-age".into(), age.to_string()));
        }
        if cors.allow_credentials == Some(true) {
            headers.push(("access-control-allow-credentials".into(), "true".into()));
        }
    }
    Response { status: 204, headers, body: Vec::new() }
}

/// Sets the CORS headers of a response to a request from an allowed origin; the function's own
/// `access-control-*` headers are dropped either way.
pub fn decorate(cors: &Cors, req: &Request, mut res: Response) -> Response {
    res.headers.retain(|(k, _)| !k.to_ascii_lowercase().starts_with("access-control-"));
    if let Some(origin) = origin_allowed(cors, req) {
        res.headers.push(("access-control-allow-origin".into(), allow_origin(cors, origin)));
        if !cors.expose_headers.is_empty() {
            res.headers.push(("access-control-expose-headers".into(), cors.expose_headers.join(",")));
        }
        if cors.allow_credentials == Some(true) {
            res.headers.push(("access-control-allow-credentials".into(), "true".into()));
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            path: "/pedidos".into(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Request::default()
        }
    }

    fn pedidos_cors(origins: &[&str]) -> Cors {
        Cors::builder()
            .origins(origins.iter().copied())
            .methods(["GET", "POST", "PUT", "DELETE", "OPTIONS"])
            .headers(["content-type", "authorization"])
            .max_age(300)
    }

    #[test]
    fn preflight_from_an_allowed_origin() {
        let r = req("OPTIONS", &[("origin", "http://localhost:3000"), ("access-control-request-method", "POST")]);
        assert!(is_preflight(&r));
        let res = preflight(&pedidos_cors(&["http://localhost:3000"]), &r);
        assert_eq!(res.status, 204);
        assert_eq!(res.header("access-control-allow-origin"), Some("http://localhost:3000"));
        assert_eq!(res.header("access-control-allow-methods"), Some("GET,POST,PUT,DELETE,OPTIONS"));
        assert_eq!(res.header("access-control-allow-headers"), Some("content-type,authorization"));
        assert_eq!(res.header("access-control-max-age"), Some("300"));
        let res = preflight(&pedidos_cors(&["*"]), &r);
        assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    }

    #[test]
    fn preflight_from_another_origin_or_method_has_no_cors_headers() {
        let cors = pedidos_cors(&["http://localhost:3000"]);
        let r = req("OPTIONS", &[("origin", "http://evil.example"), ("access-control-request-method", "POST")]);
        let res = preflight(&cors, &r);
        assert_eq!((res.status, res.headers.len()), (204, 0));
        let r = req("OPTIONS", &[("origin", "http://localhost:3000"), ("access-control-request-method", "PATCH")]);
        assert!(preflight(&cors, &r).headers.is_empty());
        assert!(!is_preflight(&req("OPTIONS", &[("origin", "http://localhost:3000")])));
    }

    #[test]
    fn responses_get_the_gateways_headers_not_the_functions() {
        let cors = pedidos_cors(&["http://localhost:3000"]).expose_headers(["x-id"]);
        let res = Response {
            status: 200,
            headers: vec![("access-control-allow-origin".into(), "http://wrong".into()), ("x-id".into(), "1".into())],
            body: Vec::new(),
        };
        let out = decorate(&cors, &req("GET", &[("origin", "http://localhost:3000")]), res.clone());
        assert_eq!(out.header("access-control-allow-origin"), Some("http://localhost:3000"));
        assert_eq!(out.header("access-control-expose-headers"), Some("x-id"));
        let out = decorate(&cors, &req("GET", &[]), res);
        assert_eq!(out.header("access-control-allow-origin"), None);
        assert_eq!(out.header("x-id"), Some("1"));
    }
}
