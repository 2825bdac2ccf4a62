//! HTTP API integration (a Lambda proxy, `AWS_PROXY`, payload format 2.0 unless set). APIs:
//! CreateIntegration (sent once: see `create`), GetIntegrations, UpdateIntegration, DeleteIntegration.
//!
//! Known by `API_ID/INTEGRATION_ID`; reads list an API's integrations (GetIntegrations), one listing for all
//! the integrations of an API in a plan.
//!
//! Defaults when unset: payload format `1.0` (API Gateway's, and Terraform's), an empty description, a
//! timeout of 30000 ms, no parameter mapping; removing a setting from the code puts that back (a mapping
//! removed is deleted). Left to AWS when unset:
//! `integration_method` (API Gateway calls a Lambda with `POST`).

use super::{part_id, split_part_id};
use crate::error::{absent_if_not_found, create_once, sdk, Once, CREATE_ONCE};
use crate::validate;
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::IntegrationType;
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// The payload format API Gateway uses when none is named.
const DEFAULT_PAYLOAD_FORMAT: &str = "1.0";
/// API Gateway's (and an HTTP API's highest) integration timeout.
const DEFAULT_TIMEOUT_MS: i32 = 30000;

/// The integration types an HTTP API takes.
const TYPES: &[&str] = &["AWS_PROXY", "HTTP_PROXY"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    /// Changing it forces a new integration.
    pub api_id: String,
    /// `AWS_PROXY` (Lambda) or `HTTP_PROXY`. Changing it forces a new integration.
    pub integration_type: String,
    /// For Lambda: the function's ARN or its invoke ARN (compared as the function ARN).
    pub integration_uri: String,
    /// `2.0` (or `1.0`) for Lambda proxies; `None`: `1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format_version: Option<String>,
    /// `HTTP_PROXY` only: the method to call the URL with. `None`: AWS's choice (`POST` for a Lambda).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// 50 to 30000 (API Gateway's default: 30000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_millis: Option<i32>,
    /// Parameter mapping: what to change in the request before it reaches the integration
    /// (`overwrite:header.x-tenant` -> `$request.header.tenant`, `remove:querystring.debug` -> `''`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<String, String>,
}

ferroform_core::outputs! {
    pub struct IntegrationOutputs => IntegrationRefs {
        /// The integration's own id (within its API).
        pub id: String as ferroform_core::Id<Integration>,
        /// What a route targets: `integrations/ID`.
        pub target: String,
    }
}

impl Integration {
    /// A Lambda proxy integration of a function of the stack (`Integration::lambda(api.id(), &function)`).
    pub fn lambda(api_id: ferroform_core::Id<super::HttpApi>, function: &crate::lambda::FunctionRefs) -> Self {
        Self::lambda_uri(api_id, function.invoke_arn())
    }
    /// A Lambda proxy integration by the function's ARN or invoke ARN, for a function made elsewhere.
    pub fn lambda_uri(api_id: ferroform_core::Id<super::HttpApi>, function: impl ferroform_core::ArnText) -> Self {
        let function = function.arn_text();
        Self {
            api_id: api_id.into(),
            integration_type: "AWS_PROXY".into(),
            integration_uri: function,
            payload_format_version: Some("2.0".into()),
            integration_method: None,
            description: None,
            timeout_in_millis: None,
            request_parameters: BTreeMap::new(),
        }
    }
    /// An HTTP proxy to `url`, called with `method` (`ANY` passes the client's method).
    pub fn http(api_id: ferroform_core::Id<super::HttpApi>, method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            api_id: api_id.into(),
            integration_type: "HTTP_PROXY".into(),
            integration_uri: url.into(),
            payload_format_version: Some("1.0".into()),
            integration_method: Some(method.into()),
            description: None,
            timeout_in_millis: None,
            request_parameters: BTreeMap::new(),
        }
    }
    pub fn payload_format_version(mut self, v: impl Into<String>) -> Self {
        self.payload_format_version = Some(v.into());
        self
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    pub fn timeout_in_millis(mut self, ms: i32) -> Self {
        self.timeout_in_millis = Some(ms);
        self
    }
    /// One parameter mapping: `ACTION:LOCATION` (`append:`, `overwrite:`, `remove:`; `header.NAME`,
    /// `querystring.NAME`, `path`) to a value (`$request.header.NAME`, `$context.requestId`, a literal).
    pub fn request_parameter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.request_parameters.insert(key.into(), value.into());
        self
    }
}

#[async_trait]
impl Resource for Integration {
    const TYPE: &'static str = "aws_apigatewayv2_integration";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] =
        &[("integration_type", "integration_type"), ("payload_format_version", "payload_format_version")];
    const REPLACE_FIELDS: &'static [&'static str] = &["api_id", "integration_type"];
    /// `integration_method`: API Gateway sets `POST` for a Lambda proxy.
    const COMPUTED: &'static [&'static str] = &["integration_method"];
    type Outputs = IntegrationOutputs;
    type Refs = IntegrationRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.api_id.is_empty() {
            e.push(FieldError::new("api_id", "the API's id is required (`api.id()`)"));
        }
        if !TYPES.contains(&self.integration_type.as_str()) {
            e.push(FieldError::new("integration_type", format!("`{}`: an HTTP API takes {}", self.integration_type, TYPES.join(" or "))));
        }
        let uri = &self.integration_uri;
        if !is_unknown_str(uri) {
            let ok = match self.integration_type.as_str() {
                "AWS_PROXY" => function_arn_of(uri).starts_with("arn:aws") && function_arn_of(uri).contains(":lambda:"),
                "HTTP_PROXY" => uri.starts_with("http://") || uri.starts_with("https://"),
                // An unknown type is reported above; what its URI should be is unknown too.
                _ => true,
            };
            if !ok {
                e.push(FieldError::new(
                    "integration_uri",
                    format!("`{uri}` is not a Lambda function ARN or invoke ARN, nor a URL for HTTP_PROXY"),
                ));
            }
        }
        if let Some(v) = &self.payload_format_version {
            if v != "1.0" && v != "2.0" {
                e.push(FieldError::new("payload_format_version", format!("`{v}`: 1.0 or 2.0")));
            }
        }
        if let Some(t) = self.timeout_in_millis {
            validate::range(&mut e, "timeout_in_millis", t.into(), 50, 30000);
        }
        for k in self.request_parameters.keys().filter(|k| !is_unknown_str(k)) {
            if !["append:", "overwrite:", "remove:"].iter().any(|a| k.starts_with(a)) {
                e.push(FieldError::new(
                    "request_parameters",
                    format!("`{k}` is not `append:`, `overwrite:` or `remove:` and a location (`overwrite:header.x-tenant`)"),
                ));
            }
        }
        e
    }

    /// AWS's defaults for what the code leaves unset; a Lambda by its function ARN.
    fn normalize(&mut self) {
        self.payload_format_version.get_or_insert_with(|| DEFAULT_PAYLOAD_FORMAT.to_string());
        self.description.get_or_insert_with(String::new);
        self.timeout_in_millis.get_or_insert(DEFAULT_TIMEOUT_MS);
        if self.integration_type == "AWS_PROXY" {
            self.integration_uri = function_arn_of(&self.integration_uri).to_string();
        }
    }

    /// Terraform keeps the API apart (`api_id`); the id here is `API_ID/ID`.
    fn terraform_id(attributes: &serde_json::Value) -> Option<String> {
        Some(super::part_id(attributes.get("api_id")?.as_str()?, attributes.get("id")?.as_str()?))
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, IntegrationOutputs), ProviderError> {
        let client = aws.apigatewayv2();
        // CreateIntegration has no client token, and alike integrations (routes to one function) differ only
        // by id: after a lost answer ours is the alike one that was not there before, which holds only
        // while no alike one is being made meanwhile. So this process makes one API's integrations one at a
        // time, and lists them first.
        let lock = create_lock(&desired.api_id);
        let _one_at_a_time = lock.lock().await;
        let before: BTreeSet<String> = list(aws, desired.api_id.clone()).await?.map(|all| all.into_keys().collect()).unwrap_or_default();
        let before = &before;
        let made = create_once(
            CREATE_ONCE,
            |_| false,
            || {
                client
                    .create_integration()
                    .api_id(&desired.api_id)
                    .integration_type(IntegrationType::from(desired.integration_type.as_str()))
                    .integration_uri(&desired.integration_uri)
                    .set_payload_format_version(desired.payload_format_version.clone())
                    .set_integration_method(desired.integration_method.clone())
                    .set_description(desired.description.clone().filter(|d| !d.is_empty()))
                    .set_timeout_in_millis(desired.timeout_in_millis)
                    .set_request_parameters(
                        (!desired.request_parameters.is_empty()).then(|| desired.request_parameters.clone().into_iter().collect()),
                    )
                    .customize()
                    .config_override(Once)
                    .send()
            },
            move || async move {
                let Some(all) = list(aws, desired.api_id.clone()).await? else { return Ok(None) };
                let new = alike(&all, desired).filter(|id| !before.contains(*id));
                Ok(crate::adopt::first_free(new.map(|id| part_id(&desired.api_id, id)), meta))
            },
        )
        .await?;
        let (id, integration) = super::made_part(made, &desired.api_id, |out| out.integration_id(), "CreateIntegration")?;
        Ok((id, outputs(&integration)))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    /// One GetIntegrations per API for all its integrations.
    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        super::read_parts(items, |i: &Integration| i.api_id.as_str(), |api| list(aws, api), observe).await
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<IntegrationOutputs, ProviderError> {
        let (api, integration) = split_part_id(id, &prior.api_id);
        let has = |f: &str| changed.iter().any(|c| c == f);
        aws.apigatewayv2()
            .update_integration()
            .api_id(api)
            .integration_id(integration)
            .set_integration_uri(has("integration_uri").then(|| desired.integration_uri.clone()))
            .set_payload_format_version(desired.payload_format_version.clone().filter(|_| has("payload_format_version")))
            .set_integration_method(desired.integration_method.clone().filter(|_| has("integration_method")))
            .set_description(desired.description.clone().filter(|_| has("description")))
            .set_timeout_in_millis(desired.timeout_in_millis.filter(|_| has("timeout_in_millis")))
            .set_request_parameters(
                has("request_parameters").then(|| mapping_update(&prior.request_parameters, &desired.request_parameters)),
            )
            .send()
            .await
            .map_err(sdk)?;
        Ok(outputs(integration))
    }

    async fn delete(aws: &Aws, id: &str, prior: &Self) -> Result<(), ProviderError> {
        let (api, integration) = split_part_id(id, &prior.api_id);
        let deleted = aws.apigatewayv2().delete_integration().api_id(api).integration_id(integration).send().await.map_err(sdk);
        absent_if_not_found(deleted).map(|_| ())
    }

    /// Integrations carry no tags: the one a killed run made is found by type and URI within its API.
    /// Several routes to one function have one integration each, all alike; the engine names those other
    /// addresses hold in `meta.exclude`, so a lookup takes a free one.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let Some(all) = list(aws, desired.api_id.clone()).await? else { return Ok(None) };
        Ok(crate::adopt::first_free(alike(&all, desired).map(|id| part_id(&desired.api_id, id)), meta))
    }
}

/// The lock of `api`'s integration creates in this process (see `create`).
fn create_lock(api: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    locks.entry(api.to_string()).or_default().clone()
}

/// The ids of the integrations of the same type and URI as `desired` (a Lambda's compared as its function ARN).
fn alike<'a>(
    all: &'a HashMap<String, aws_sdk_apigatewayv2::types::Integration>,
    desired: &'a Integration,
) -> impl Iterator<Item = &'a String> + 'a {
    let uri = function_arn_of(&desired.integration_uri);
    all.iter()
        .filter(move |(_, i)| {
            i.integration_type().map(|t| t.as_str()) == Some(desired.integration_type.as_str())
                && i.integration_uri().map(function_arn_of) == Some(uri)
        })
        .map(|(id, _)| id)
}

/// The whole desired mapping, and each key removed with an empty value: UpdateIntegration merges into what
/// is in place, and an empty value is how a key is deleted.
fn mapping_update(prior: &BTreeMap<String, String>, desired: &BTreeMap<String, String>) -> HashMap<String, String> {
    let removed = prior.keys().filter(|k| !desired.contains_key(*k)).map(|k| (k.clone(), String::new()));
    desired.clone().into_iter().chain(removed).collect()
}

fn outputs(id: &str) -> IntegrationOutputs {
    IntegrationOutputs { id: id.to_string(), target: format!("integrations/{id}") }
}

/// The function ARN inside an invoke ARN (`arn:aws:apigateway:R:lambda:path/2015-03-31/functions/ARN/invocations`);
/// anything else as it is.
fn function_arn_of(uri: &str) -> &str {
    uri.split_once(":lambda:path/")
        .and_then(|(_, rest)| rest.split_once("/functions/"))
        .and_then(|(_, rest)| rest.strip_suffix("/invocations"))
        .unwrap_or(uri)
}

/// Every integration of `api` by id; `None` when the API is gone.
async fn list(aws: &Aws, api: String) -> Result<Option<HashMap<String, aws_sdk_apigatewayv2::types::Integration>>, ProviderError> {
    let items = super::all_pages(|token| {
        let req = aws.apigatewayv2().get_integrations().api_id(&api).set_next_token(token);
        async move {
            let out = req.send().await.map_err(sdk)?;
            Ok((out.items.unwrap_or_default(), out.next_token))
        }
    })
    .await?;
    Ok(items.map(|items| items.into_iter().filter_map(|i| Some((i.integration_id.clone()?, i))).collect()))
}

fn observe(api: &str, integration: &str, got: &aws_sdk_apigatewayv2::types::Integration) -> Observed<Integration> {
    let inputs = Integration {
        api_id: api.to_string(),
        integration_type: got.integration_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
        integration_uri: got.integration_uri().unwrap_or_default().to_string(),
        payload_format_version: got.payload_format_version().map(str::to_string),
        integration_method: got.integration_method().map(str::to_string),
        description: Some(got.description().unwrap_or_default().to_string()),
        timeout_in_millis: got.timeout_in_millis(),
        request_parameters: got.request_parameters().map(|m| m.clone().into_iter().collect()).unwrap_or_default(),
    };
    Observed { inputs, outputs: outputs(integration) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FN: &str = "arn:aws:lambda:us-east-1:123456789012:function:pedidos-api";

    #[test]
    fn invoke_arns_compare_as_function_arns() {
        let invoke = format!("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{FN}/invocations");
        let mut a = Integration::lambda_uri(ferroform_core::Id::literal("abc"), invoke);
        let mut b = Integration::lambda_uri(ferroform_core::Id::literal("abc"), FN);
        a.normalize();
        b.normalize();
        assert_eq!(a, b);
        assert_eq!(a.integration_uri, FN);
    }

    #[test]
    fn a_lookup_matches_type_and_function_not_the_uri_form() {
        let sdk = |t: &str, uri: &str| {
            aws_sdk_apigatewayv2::types::Integration::builder().integration_type(IntegrationType::from(t)).integration_uri(uri).build()
        };
        let invoke = format!("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{FN}/invocations");
        let all = HashMap::from([
            ("a".to_string(), sdk("AWS_PROXY", &invoke)),
            ("b".to_string(), sdk("AWS_PROXY", FN)),
            ("c".to_string(), sdk("AWS_PROXY", "arn:aws:lambda:us-east-1:123456789012:function:other")),
            ("d".to_string(), sdk("HTTP_PROXY", FN)),
        ]);
        for desired in [
            Integration::lambda_uri(ferroform_core::Id::literal("abc"), FN),
            Integration::lambda_uri(ferroform_core::Id::literal("abc"), invoke.clone()),
        ] {
            let mut found: Vec<&String> = alike(&all, &desired).collect();
            found.sort();
            assert_eq!(found, ["a", "b"]);
        }
    }

    #[test]
    fn removed_mappings_are_sent_empty() {
        let prior = BTreeMap::from([("overwrite:header.a".to_string(), "1".to_string()), ("remove:querystring.b".into(), "''".into())]);
        let desired = BTreeMap::from([("overwrite:header.a".to_string(), "2".to_string())]);
        let sent = mapping_update(&prior, &desired);
        assert_eq!(sent.get("overwrite:header.a").map(String::as_str), Some("2"));
        assert_eq!(sent.get("remove:querystring.b").map(String::as_str), Some(""));
        assert_eq!(sent.len(), 2);
    }

    #[test]
    fn integrations_are_validated() {
        assert!(Integration::lambda_uri(ferroform_core::Id::literal("abc"), FN).validate().is_empty());
        assert!(Integration::lambda_uri(ferroform_core::Id::literal("abc"), "\u{e000}${ref:fn.invoke_arn}").validate().is_empty());
        let fields = |i: Integration| i.validate().into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(Integration::lambda_uri(ferroform_core::Id::literal("abc"), "pedidos-api")), ["integration_uri"]);
        assert_eq!(
            fields(Integration::lambda_uri(ferroform_core::Id::literal("abc"), FN).payload_format_version("3.0")),
            ["payload_format_version"]
        );
        assert_eq!(fields(Integration::lambda_uri(ferroform_core::Id::literal("abc"), FN).timeout_in_millis(40000)), ["timeout_in_millis"]);
        assert_eq!(
            fields(Integration { integration_type: "MOCK".into(), ..Integration::lambda_uri(ferroform_core::Id::literal("abc"), FN) }),
            ["integration_type"]
        );
        assert!(Integration::http(ferroform_core::Id::literal("abc"), "GET", "https://example.com").validate().is_empty());
        let mapped = Integration::lambda_uri(ferroform_core::Id::literal("abc"), FN)
            .request_parameter("overwrite:header.x-tenant", "$request.header.tenant");
        assert!(mapped.validate().is_empty());
        assert_eq!(
            fields(Integration::lambda_uri(ferroform_core::Id::literal("abc"), FN).request_parameter("header.x", "1")),
            ["request_parameters"]
        );
    }
}
