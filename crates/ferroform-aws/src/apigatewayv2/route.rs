//! HTTP API route: a route key (`GET /pedidos/{id}`, `$default`) and its target integration. APIs:
//! CreateRoute, GetRoutes, UpdateRoute, DeleteRoute.
//!
//! Known by `API_ID/ROUTE_ID`; reads list an API's routes (GetRoutes), one listing for all the routes of an
//! API in a plan.
//!
//! Defaults when unset: no target, authorization `NONE` (then no authorizer and no scopes: AWS ignores
//! them); removing a setting from the code puts that back. Left to AWS when unset: nothing. Request
//! parameters of routes are a WebSocket API feature, which this HTTP API module does not cover.

use super::{part_id, split_part_id};
use crate::error::{absent_if_not_found, create_once, sdk, Once, CREATE_ONCE};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::AuthorizationType;
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The methods a route key may name.
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"];
const AUTH_TYPES: &[&str] = &["NONE", "JWT", "AWS_IAM", "CUSTOM"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// Changing it forces a new route.
    pub api_id: String,
    /// `METHOD /path` (methods: GET POST PUT PATCH DELETE HEAD OPTIONS ANY; segments may be `{param}`,
    /// the last may be `{proxy+}`), or `$default`.
    pub route_key: String,
    /// `integrations/ID` (`integration.target()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `NONE`, `JWT`, `AWS_IAM` or `CUSTOM` (API Gateway's default: `NONE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer_id: Option<String>,
    /// Scopes a JWT must carry (compared as a set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_scopes: Vec<String>,
}

ferroform_core::outputs! {
    pub struct RouteOutputs => RouteRefs {
        /// The route's own id (within its API).
        pub id: String as ferroform_core::Id<Route>,
        pub route_key: String,
    }
}

impl Route {
    pub fn new(api_id: ferroform_core::Id<super::HttpApi>, route_key: impl Into<String>) -> Self {
        Self {
            api_id: api_id.into(),
            route_key: route_key.into(),
            target: None,
            authorization_type: None,
            authorizer_id: None,
            authorization_scopes: Vec::new(),
        }
    }
    /// `integrations/ID` (`integration.target()`).
    /// Sends the route's requests to an integration of the stack.
    pub fn integration(self, integration: &super::IntegrationRefs) -> Self {
        self.target(integration.target())
    }
    /// A literal target (`integrations/ID`) for an integration made elsewhere; prefer [`Route::integration`].
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
    /// Requires a JWT checked by `authorizer_id` (`authorizer.id()`), carrying `scopes`.
    pub fn jwt<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        authorizer_id: ferroform_core::Id<super::Authorizer>,
        scopes: I,
    ) -> Self {
        self.authorization_type = Some("JWT".into());
        self.authorizer_id = Some(authorizer_id.into());
        self.authorization_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
    /// Requires SigV4-signed calls.
    pub fn aws_iam(mut self) -> Self {
        self.authorization_type = Some("AWS_IAM".into());
        self
    }
}

/// Checks a route key; `Err` says what is wrong.
pub fn check_route_key(key: &str) -> Result<(), String> {
    if key == "$default" {
        return Ok(());
    }
    let Some((method, path)) = key.split_once(' ') else {
        return Err(format!("`{key}` is not `METHOD /path` nor `$default`"));
    };
    if !METHODS.contains(&method) {
        return Err(format!("`{method}` is not a route method (one of {}, upper case)", METHODS.join(" ")));
    }
    if !path.starts_with('/') {
        return Err(format!("the path `{path}` must start with `/`"));
    }
    if path == "/" {
        return Ok(());
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if seg.is_empty() {
            return Err(format!("the path `{path}` has an empty segment (`//` or a trailing `/`)"));
        }
        if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let (name, greedy) = match inner.strip_suffix('+') {
                Some(n) => (n, true),
                None => (inner, false),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') {
                return Err(format!("`{seg}` is not a path parameter like `{{id}}` or `{{proxy+}}`"));
            }
            if greedy && !last {
                return Err(format!("`{seg}` matches the rest of the path: it must be the last segment"));
            }
        } else if seg.contains(['{', '}', ' ', '?', '#']) {
            return Err(format!("the segment `{seg}` holds a character a route path can't"));
        }
    }
    Ok(())
}

#[async_trait]
impl Resource for Route {
    const TYPE: &'static str = "aws_apigatewayv2_route";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("route_key", "route_key")];
    const REPLACE_FIELDS: &'static [&'static str] = &["api_id"];
    /// A new route key is the `route_key` output too.
    const UPDATE_CHANGES: &'static [(&'static str, &'static [&'static str])] = &[("route_key", &["route_key"])];
    type Outputs = RouteOutputs;
    type Refs = RouteRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.api_id.is_empty() {
            e.push(FieldError::new("api_id", "the API's id is required (`api.id()`)"));
        }
        if !is_unknown_str(&self.route_key) {
            if let Err(m) = check_route_key(&self.route_key) {
                e.push(FieldError::new("route_key", m));
            }
        }
        if let Some(t) = &self.target {
            if !is_unknown_str(t) && !t.starts_with("integrations/") {
                e.push(FieldError::new("target", format!("`{t}` is not `integrations/ID` (use `integration.target()`)")));
            }
        }
        if let Some(a) = &self.authorization_type {
            if !AUTH_TYPES.contains(&a.as_str()) {
                e.push(FieldError::new("authorization_type", format!("`{a}`: one of {}", AUTH_TYPES.join(" "))));
            }
            if (a == "JWT" || a == "CUSTOM") && self.authorizer_id.is_none() {
                e.push(FieldError::new("authorizer_id", format!("{a} authorization needs an authorizer")));
            }
        }
        if !self.authorization_scopes.is_empty() && self.authorization_type.as_deref() != Some("JWT") {
            e.push(FieldError::new("authorization_scopes", "scopes apply to JWT authorization only"));
        }
        e
    }

    /// `NONE` when no authorization is set; an authorizer only where one is used (JWT, CUSTOM) and scopes
    /// only with JWT, as AWS ignores them otherwise; scopes are a set.
    fn normalize(&mut self) {
        let auth = self.authorization_type.get_or_insert_with(|| "NONE".to_string()).clone();
        if !matches!(auth.as_str(), "JWT" | "CUSTOM") || self.authorizer_id.as_deref() == Some("") {
            self.authorizer_id = None;
        }
        if auth != "JWT" {
            self.authorization_scopes.clear();
        }
        if self.target.as_deref() == Some("") {
            self.target = None;
        }
        self.authorization_scopes.sort();
        self.authorization_scopes.dedup();
    }

    /// Terraform keeps the API apart (`api_id`); the id here is `API_ID/ID`.
    fn terraform_id(attributes: &serde_json::Value) -> Option<String> {
        Some(super::part_id(attributes.get("api_id")?.as_str()?, attributes.get("id")?.as_str()?))
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, RouteOutputs), ProviderError> {
        let client = aws.apigatewayv2();
        // No client token: after a lost answer the route is looked for by its key before it is sent again.
        let made = create_once(
            CREATE_ONCE,
            |_| false,
            || {
                client
                    .create_route()
                    .api_id(&desired.api_id)
                    .route_key(&desired.route_key)
                    .set_target(desired.target.clone())
                    .set_authorization_type(desired.authorization_type.as_deref().map(AuthorizationType::from))
                    .set_authorizer_id(desired.authorizer_id.clone())
                    .set_authorization_scopes((!desired.authorization_scopes.is_empty()).then(|| desired.authorization_scopes.clone()))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let (id, route) = super::made_part(made, &desired.api_id, |out| out.route_id(), "CreateRoute")?;
        Ok((id, RouteOutputs { id: route, route_key: desired.route_key.clone() }))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    /// One GetRoutes per API for all its routes.
    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        super::read_parts(items, |r: &Route| r.api_id.as_str(), |api| list(aws, api), observe).await
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<RouteOutputs, ProviderError> {
        let (api, route) = split_part_id(id, &prior.api_id);
        let has = |f: &str| changed.iter().any(|c| c == f);
        aws.apigatewayv2()
            .update_route()
            .api_id(api)
            .route_id(route)
            .set_route_key(has("route_key").then(|| desired.route_key.clone()))
            // An empty target or authorizer id removes it.
            .set_target(has("target").then(|| desired.target.clone().unwrap_or_default()))
            .set_authorization_type(
                desired.authorization_type.as_deref().filter(|_| has("authorization_type")).map(AuthorizationType::from),
            )
            .set_authorizer_id(has("authorizer_id").then(|| desired.authorizer_id.clone().unwrap_or_default()))
            .set_authorization_scopes(has("authorization_scopes").then(|| desired.authorization_scopes.clone()))
            .send()
            .await
            .map_err(sdk)?;
        Ok(RouteOutputs { id: route.to_string(), route_key: desired.route_key.clone() })
    }

    async fn delete(aws: &Aws, id: &str, prior: &Self) -> Result<(), ProviderError> {
        let (api, route) = split_part_id(id, &prior.api_id);
        absent_if_not_found(aws.apigatewayv2().delete_route().api_id(api).route_id(route).send().await.map_err(sdk)).map(|_| ())
    }

    /// Routes carry no tags; a route key is unique within its API, so the route a killed run made is the
    /// one with this key.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let Some(all) = list(aws, desired.api_id.clone()).await? else { return Ok(None) };
        Ok(crate::adopt::first_free(with_key(&all, &desired.route_key).map(|id| part_id(&desired.api_id, id)), meta))
    }
}

/// The ids of the routes with `key`.
fn with_key<'a>(all: &'a HashMap<String, aws_sdk_apigatewayv2::types::Route>, key: &'a str) -> impl Iterator<Item = &'a String> + 'a {
    all.iter().filter(move |(_, r)| r.route_key() == Some(key)).map(|(id, _)| id)
}

/// Every route of `api` by id; `None` when the API is gone.
async fn list(aws: &Aws, api: String) -> Result<Option<HashMap<String, aws_sdk_apigatewayv2::types::Route>>, ProviderError> {
    let items = super::all_pages(|token| {
        let req = aws.apigatewayv2().get_routes().api_id(&api).set_next_token(token);
        async move {
            let out = req.send().await.map_err(sdk)?;
            Ok((out.items.unwrap_or_default(), out.next_token))
        }
    })
    .await?;
    Ok(items.map(|items| items.into_iter().filter_map(|r| Some((r.route_id.clone()?, r))).collect()))
}

fn observe(api: &str, route: &str, got: &aws_sdk_apigatewayv2::types::Route) -> Observed<Route> {
    let route_key = got.route_key().unwrap_or_default().to_string();
    let inputs = Route {
        api_id: api.to_string(),
        route_key: route_key.clone(),
        target: got.target().map(str::to_string),
        authorization_type: got.authorization_type().map(|a| a.as_str().to_string()),
        authorizer_id: got.authorizer_id().map(str::to_string),
        authorization_scopes: got.authorization_scopes().to_vec(),
    };
    Observed { inputs, outputs: RouteOutputs { id: route.to_string(), route_key } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_matches_the_route_key_exactly() {
        let sdk = |key: &str| aws_sdk_apigatewayv2::types::Route::builder().route_key(key).build();
        let all = HashMap::from([
            ("r1".to_string(), sdk("GET /orders")),
            ("r2".to_string(), sdk("POST /orders")),
            ("r3".to_string(), sdk("GET /orders/{id}")),
        ]);
        assert_eq!(with_key(&all, "GET /orders").collect::<Vec<_>>(), ["r1"]);
        assert_eq!(with_key(&all, "get /orders").count(), 0);
    }

    #[test]
    fn route_keys_are_checked() {
        for ok in ["$default", "GET /", "GET /pedidos", "DELETE /pedidos/{id}", "ANY /{proxy+}", "POST /a/{b}/c", "OPTIONS /x.json"] {
            assert_eq!(check_route_key(ok), Ok(()), "{ok}");
        }
        for bad in ["GET", "get /x", "FETCH /x", "GET x", "GET /x/", "GET //x", "GET /{proxy+}/x", "GET /{}", "GET /a{b}", "$other"] {
            assert!(check_route_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_are_validated() {
        assert!(Route::new(ferroform_core::Id::literal("abc"), "GET /pedidos").target("integrations/xyz").validate().is_empty());
        assert!(Route::new(ferroform_core::Id::literal("abc"), "GET /pedidos").target("\u{e000}${ref:i.target}").validate().is_empty());
        let fields = |r: Route| r.validate().into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(Route::new(ferroform_core::Id::literal("abc"), "GET pedidos")), ["route_key"]);
        assert_eq!(fields(Route::new(ferroform_core::Id::literal("abc"), "GET /p").target("xyz")), ["target"]);
        assert_eq!(
            fields(Route { authorization_type: Some("JWT".into()), ..Route::new(ferroform_core::Id::literal("abc"), "GET /p") }),
            ["authorizer_id"]
        );
        assert!(Route::new(ferroform_core::Id::literal("abc"), "GET /p")
            .jwt(ferroform_core::Id::literal("auth1"), ["read"])
            .validate()
            .is_empty());
    }
}
