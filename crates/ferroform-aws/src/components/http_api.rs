//! "HTTP API backed by Lambda": what Terraform modules wrap around `aws_apigatewayv2_*` and
//! `aws_lambda_permission`, as plain functions over a stack.
//!
//! ```ignore
//! let api = s.add("api", apigw::HttpApi::new("pedidos").cors(apigw::Cors::any()));
//! http_api::default_stage(s, &api, None);
//! api.lambda_route(s, "GET /pedidos", &api_fn);        // or http_api::lambda_route(s, &api, ..)
//! ```
//!
//! A route is open unless given a [`RouteAuth`]: `http_api::lambda_route_with(s, &api, key, &f, &RouteAuth::Iam)`
//! (or a JWT authorizer's id and scopes).
//!
//! Each route adds three resources at `API_ADDRESS/SLUG/{integration,route,permission}` (in the current
//! scope), `SLUG` being the route key made address-safe (`GET /pedidos/{id}` -> `get-pedidos-id`). Two
//! route keys with the same slug are caught by validation (an address used twice).

use crate::apigatewayv2::{AccessLog, Authorizer, HttpApiRefs, Integration, Route, Stage};
use crate::lambda::{FunctionRefs, Permission};
use ferroform_core::{Handle, Id, Stack};

/// Who may call a route (the route's authorization in API Gateway).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RouteAuth {
    /// Anyone: authorization `NONE`.
    #[default]
    Open,
    /// A JWT that `authorizer` accepts, carrying at least one of `scopes` (none: any valid token).
    Jwt { authorizer: Id<Authorizer>, scopes: Vec<String> },
    /// Calls signed with SigV4 by a principal allowed `execute-api:Invoke` on the route
    /// ([`invoke_resource`]).
    Iam,
}

impl RouteAuth {
    /// `route` with this authorization.
    pub fn apply(&self, route: Route) -> Route {
        match self {
            RouteAuth::Open => route,
            RouteAuth::Jwt { authorizer, scopes } => route.jwt(authorizer.clone(), scopes.iter().cloned()),
            RouteAuth::Iam => route.aws_iam(),
        }
    }
}

/// What [`lambda_route`] added.
pub struct LambdaRoute {
    pub integration: Handle<Integration>,
    pub route: Handle<Route>,
    pub permission: Handle<Permission>,
}

/// Routes `route_key` of `api` to `function`: a Lambda proxy integration (payload 2.0), the route, and the
/// permission for API Gateway to invoke the function, scoped to this API (`EXECUTION_ARN/*/*`).
pub fn lambda_route(stack: &mut Stack, api: &HttpApiRefs, route_key: &str, function: &FunctionRefs) -> LambdaRoute {
    lambda_route_with(stack, api, route_key, function, &RouteAuth::Open)
}

/// [`lambda_route`] with who may call the route.
pub fn lambda_route_with(stack: &mut Stack, api: &HttpApiRefs, route_key: &str, function: &FunctionRefs, auth: &RouteAuth) -> LambdaRoute {
    let slug = slug(route_key);
    let base = format!("{}/{slug}", api.address());
    let integration = stack.add(&format!("{base}/integration"), Integration::lambda(api.id(), function));
    let route = stack.add(&format!("{base}/route"), auth.apply(Route::new(api.id(), route_key).integration(&integration)));
    let permission = stack.add(
        &format!("{base}/permission"),
        Permission::api_gateway(function.name(), statement_id(api.address(), &slug), format!("{}/*/*", api.execution_arn())),
    );
    LambdaRoute { integration, route, permission }
}

/// The `$default` stage with auto-deploy (and access logs when given), at `API_ADDRESS/stage`.
pub fn default_stage(stack: &mut Stack, api: &HttpApiRefs, access_log: Option<AccessLog>) -> Handle<Stage> {
    let mut stage = Stage::default_auto_deploy(api.id());
    stage.access_log = access_log;
    stack.add(&format!("{}/stage", api.address()), stage)
}

impl HttpApiRefs {
    /// [`lambda_route`] as a method: `api.lambda_route(s, "GET /pedidos", &api_fn)`.
    pub fn lambda_route(&self, stack: &mut Stack, route_key: &str, function: &FunctionRefs) -> LambdaRoute {
        lambda_route(stack, self, route_key, function)
    }

    /// [`lambda_route_with`] as a method.
    pub fn lambda_route_with(&self, stack: &mut Stack, route_key: &str, function: &FunctionRefs, auth: &RouteAuth) -> LambdaRoute {
        lambda_route_with(stack, self, route_key, function, auth)
    }
}

/// What an IAM policy names to allow `execute-api:Invoke` on one route, in every stage:
/// `EXECUTION_ARN/*/METHOD/path`, each `{param}` of the path as `*` (`ANY` as `*`, `$default` as itself).
pub fn invoke_resource(api: &HttpApiRefs, route_key: &str) -> String {
    let path = match route_key.split_once(' ') {
        Some((method, path)) => {
            let method = if method == "ANY" { "*" } else { method };
            let segments: Vec<&str> =
                path.split('/').map(|seg| if seg.starts_with('{') && seg.ends_with('}') { "*" } else { seg }).collect();
            format!("{method}{}", segments.join("/"))
        }
        None => route_key.to_string(),
    };
    format!("{}/*/{path}", api.execution_arn())
}

/// A route key as an address segment: lower case, runs of anything but letters and digits as one `-`,
/// `$default` as `default`, `{proxy+}` as `proxy-plus`.
pub fn slug(route_key: &str) -> String {
    let key = route_key.replace("+}", "-plus}");
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "root".into()
    } else {
        out
    }
}

/// A statement id unique per API address and route, within Lambda's 100 characters.
fn statement_id(api_address: &str, slug: &str) -> String {
    use sha2::Digest;
    let clean: String = api_address.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    let id = format!("apigw-{clean}-{slug}");
    if id.len() <= 100 {
        return id;
    }
    let hash = hex::encode(sha2::Sha256::digest(id.as_bytes()));
    format!("{}-{}", &id[..90], &hash[..9])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apigatewayv2::HttpApi;
    use crate::lambda::{Code, Function};

    #[test]
    fn route_keys_become_address_segments() {
        assert_eq!(slug("GET /pedidos"), "get-pedidos");
        assert_eq!(slug("DELETE /pedidos/{id}"), "delete-pedidos-id");
        assert_eq!(slug("ANY /{proxy+}"), "any-proxy-plus");
        assert_eq!(slug("$default"), "default");
        assert_eq!(slug("GET /"), "get");
    }

    #[test]
    fn statement_ids_fit_lambda() {
        assert_eq!(statement_id("api", "get-pedidos"), "apigw-api-get-pedidos");
        let long = statement_id(&"x".repeat(200), "get");
        assert_eq!(long.len(), 100);
        assert!(long.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn a_lambda_route_adds_integration_route_and_a_scoped_permission() {
        let mut s = Stack::new("pedidos");
        let f = s.add(
            "fn",
            Function::new("pedidos-api")
                .role(ferroform_core::Arn::literal("arn:aws:iam::123456789012:role/r"))
                .code(Code::image("1.dkr.ecr.x/r:1")),
        );
        let api = s.add("api", HttpApi::new("pedidos"));
        let r = api.lambda_route(&mut s, "GET /pedidos/{id}", &f);
        assert_eq!(r.route.address(), "api/get-pedidos-id/route");
        let decl = |a: &str| s.resources().iter().find(|d| d.address == a).map(|d| d.inputs.clone()).unwrap();
        let perm = decl("api/get-pedidos-id/permission");
        assert_eq!(perm["source_arn"], "\u{e000}${ref:api.execution_arn}/*/*");
        assert_eq!(perm["function_name"], "\u{e000}${ref:fn.name}");
        assert_eq!(perm["principal"], "apigateway.amazonaws.com");
        let route = decl("api/get-pedidos-id/route");
        assert_eq!(route["target"], "\u{e000}${ref:api/get-pedidos-id/integration.target}");
        assert_eq!(decl("api/get-pedidos-id/integration")["integration_uri"], "\u{e000}${ref:fn.invoke_arn}");
        let stage = default_stage(&mut s, &api, None);
        assert_eq!(stage.address(), "api/stage");
        assert!(route.get("authorization_type").is_none(), "{route}");
    }

    #[test]
    fn routes_carry_their_authorization() {
        let mut s = Stack::new("pedidos");
        let f = s.add("fn", Function::new("f").role(ferroform_core::Arn::literal("arn:aws:iam::1:role/r")).code(Code::image("i")));
        let api = s.add("api", HttpApi::new("pedidos"));
        let authorizer = ferroform_core::Id::literal("au1");
        let jwt = RouteAuth::Jwt { authorizer, scopes: vec!["orders:read".into()] };
        api.lambda_route_with(&mut s, "GET /orders", &f, &jwt);
        api.lambda_route_with(&mut s, "POST /orders", &f, &RouteAuth::Iam);
        let decl = |a: &str| s.resources().iter().find(|d| d.address == a).map(|d| d.inputs.clone()).unwrap();
        let get = decl("api/get-orders/route");
        assert_eq!((get["authorization_type"].as_str(), get["authorizer_id"].as_str()), (Some("JWT"), Some("au1")));
        assert_eq!(get["authorization_scopes"], serde_json::json!(["orders:read"]));
        let post = decl("api/post-orders/route");
        assert_eq!(post["authorization_type"], "AWS_IAM");
        assert!(post.get("authorizer_id").is_none(), "{post}");
    }

    #[test]
    fn invoke_resources_name_one_route_in_every_stage() {
        let mut s = Stack::new("pedidos");
        let api = s.add("api", HttpApi::new("pedidos"));
        let arn = "\u{e000}${ref:api.execution_arn}";
        assert_eq!(invoke_resource(&api, "GET /pedidos"), format!("{arn}/*/GET/pedidos"));
        assert_eq!(invoke_resource(&api, "DELETE /pedidos/{id}"), format!("{arn}/*/DELETE/pedidos/*"));
        assert_eq!(invoke_resource(&api, "ANY /{proxy+}"), format!("{arn}/*/*/*"));
        assert_eq!(invoke_resource(&api, "GET /"), format!("{arn}/*/GET/"));
        assert_eq!(invoke_resource(&api, "$default"), format!("{arn}/*/$default"));
    }
}
