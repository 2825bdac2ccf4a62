//! HTTP API (protocol HTTP). APIs: CreateApi, GetApi, UpdateApi, DeleteCorsConfiguration, TagResource,
//! UntagResource, DeleteApi, GetApis (finding an API a killed run or a lost answer made, by its tags).
//!
//! A read is one `GetApi` (tags included), plus the account id once per run for the execution ARN.
//!
//! Defaults when unset: an empty description, no CORS, the `execute-api` endpoint enabled, no tags;
//! removing a setting from the code puts that back (a CORS configuration is deleted). Left to AWS when
//! unset: nothing.

use super::{resource_arn, sdk_tags, sync_tags, tags_of};
use crate::error::{absent_if_not_found, create_once, sdk, Made, Once, CREATE_ONCE};
use crate::tags::{merge_defaults, Tags};
use crate::validate;
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::{self as sdk_types, ProtocolType};
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS, TAG_STACK};
use serde::{Deserialize, Serialize};

/// The methods a CORS configuration may allow (`*` for all).
const CORS_METHODS: &[&str] = &["*", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpApi {
    /// 1 to 128 characters; not unique (changing it renames the API in place).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `None` or `Some(Cors::none())`: no CORS (removed if set, by the code before or behind our back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// True: only a custom domain reaches the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_execute_api_endpoint: Option<bool>,
    #[serde(default)]
    pub tags: Tags,
}

/// An HTTP API's CORS configuration. Lists compare as sets; methods and header names case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cors {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// Seconds browsers may cache the preflight answer (-1 to 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
}

ferroform_core::outputs! {
    pub struct HttpApiOutputs => HttpApiRefs {
        pub id: String as ferroform_core::Id<HttpApi>,
        /// `https://ID.execute-api.REGION.amazonaws.com`
        pub endpoint: String,
        /// `arn:aws:apigateway:REGION::/apis/ID` (what tagging takes).
        pub arn: String as ferroform_core::Arn<HttpApi>,
        /// `arn:aws:execute-api:REGION:ACCOUNT:ID` (what invoke permissions are scoped to, with `/*/*`).
        pub execution_arn: String,
    }
}

impl HttpApi {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), description: None, cors: None, disable_execute_api_endpoint: None, tags: Tags::new() }
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }
    pub fn disable_execute_api_endpoint(mut self, yes: bool) -> Self {
        self.disable_execute_api_endpoint = Some(yes);
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

impl Cors {
    /// No CORS at all (a configuration present is removed).
    pub fn none() -> Self {
        Self::default()
    }
    /// Any origin, any method, any header.
    pub fn any() -> Self {
        Self { allow_origins: vec!["*".into()], allow_methods: vec!["*".into()], allow_headers: vec!["*".into()], ..Self::default() }
    }
    /// Starts an empty configuration to add origins, methods and headers to.
    pub fn builder() -> Self {
        Self::default()
    }
    pub fn origin(mut self, o: impl Into<String>) -> Self {
        self.allow_origins.push(o.into());
        self
    }
    pub fn origins<I: IntoIterator<Item = S>, S: Into<String>>(mut self, o: I) -> Self {
        self.allow_origins.extend(o.into_iter().map(Into::into));
        self
    }
    pub fn methods<I: IntoIterator<Item = S>, S: Into<String>>(mut self, m: I) -> Self {
        self.allow_methods.extend(m.into_iter().map(Into::into));
        self
    }
    pub fn headers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, h: I) -> Self {
        self.allow_headers.extend(h.into_iter().map(Into::into));
        self
    }
    pub fn expose_headers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, h: I) -> Self {
        self.expose_headers.extend(h.into_iter().map(Into::into));
        self
    }
    pub fn max_age(mut self, seconds: i32) -> Self {
        self.max_age = Some(seconds);
        self
    }
    pub fn allow_credentials(mut self, yes: bool) -> Self {
        self.allow_credentials = Some(yes);
        self
    }

    fn is_none(&self) -> bool {
        *self == Self::default()
    }

    /// Whether `self` (live) sets something `desired` leaves out. `UpdateApi` merges what it is sent into
    /// what is in place (a field left out keeps its value), so such a field is cleared only by deleting the
    /// configuration first.
    fn drops(&self, desired: &Cors) -> bool {
        let gone = |live: &Vec<String>, want: &Vec<String>| !live.is_empty() && want.is_empty();
        gone(&self.allow_origins, &desired.allow_origins)
            || gone(&self.allow_methods, &desired.allow_methods)
            || gone(&self.allow_headers, &desired.allow_headers)
            || gone(&self.expose_headers, &desired.expose_headers)
            || (self.max_age.is_some() && desired.max_age.is_none())
            || (self.allow_credentials.is_some() && desired.allow_credentials.is_none())
    }

    fn normalize(&mut self) {
        fn set(v: &mut Vec<String>, f: fn(&str) -> String) {
            *v = v.iter().map(|s| f(s.trim())).collect();
            v.sort();
            v.dedup();
        }
        set(&mut self.allow_origins, str::to_string);
        set(&mut self.allow_methods, str::to_ascii_uppercase);
        set(&mut self.allow_headers, str::to_ascii_lowercase);
        set(&mut self.expose_headers, str::to_ascii_lowercase);
        if self.allow_credentials == Some(false) {
            self.allow_credentials = None;
        }
    }

    fn to_sdk(&self) -> sdk_types::Cors {
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        sdk_types::Cors::builder()
            .set_allow_origins(list(&self.allow_origins))
            .set_allow_methods(list(&self.allow_methods))
            .set_allow_headers(list(&self.allow_headers))
            .set_expose_headers(list(&self.expose_headers))
            .set_max_age(self.max_age)
            .set_allow_credentials(self.allow_credentials)
            .build()
    }

    fn from_sdk(c: Option<&sdk_types::Cors>) -> Self {
        let Some(c) = c else { return Self::default() };
        Self {
            allow_origins: c.allow_origins().to_vec(),
            allow_methods: c.allow_methods().to_vec(),
            allow_headers: c.allow_headers().to_vec(),
            expose_headers: c.expose_headers().to_vec(),
            max_age: c.max_age(),
            allow_credentials: c.allow_credentials(),
        }
    }

    fn validate(&self, e: &mut Vec<FieldError>) {
        for m in &self.allow_methods {
            if !CORS_METHODS.contains(&m.to_ascii_uppercase().as_str()) {
                e.push(FieldError::new("cors", format!("`{m}` is not an HTTP method CORS can allow ({})", CORS_METHODS.join(" "))));
            }
        }
        if let Some(age) = self.max_age {
            validate::range(e, "cors", age.into(), -1, 86400);
        }
        if self.allow_credentials == Some(true) && self.allow_origins.iter().any(|o| o == "*") {
            e.push(FieldError::new("cors", "credentials can't be allowed for any origin (`*`): list the origins"));
        }
        for o in &self.allow_origins {
            if o != "*" && !is_unknown_str(o) && !o.contains("://") {
                e.push(FieldError::new("cors", format!("origin `{o}` needs a scheme (https://example.com)")));
            }
        }
    }
}

#[async_trait]
impl Resource for HttpApi {
    const TYPE: &'static str = "aws_apigatewayv2_api";
    type Outputs = HttpApiOutputs;
    type Refs = HttpApiRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        validate::name(&mut e, "name", &self.name, 1, 128, |c| !c.is_control(), "printable characters");
        if let Some(d) = &self.description {
            if d.chars().count() > 1024 {
                e.push(FieldError::new("description", "at most 1024 characters"));
            }
        }
        if let Some(c) = &self.cors {
            c.validate(&mut e);
        }
        e
    }

    /// AWS's defaults for what the code leaves unset.
    fn normalize(&mut self) {
        self.description.get_or_insert_with(String::new);
        self.disable_execute_api_endpoint.get_or_insert(false);
        self.cors.get_or_insert_with(Cors::none).normalize();
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, HttpApiOutputs), ProviderError> {
        let client = aws.apigatewayv2();
        // CreateApi has no client token: sent again after a lost answer it makes a second API.
        let made = create_once(
            CREATE_ONCE,
            |_| false,
            || {
                client
                    .create_api()
                    .name(&desired.name)
                    .protocol_type(ProtocolType::Http)
                    // AWS's defaults are not sent: the same request whether the code spells them out or not.
                    .set_description(desired.description.clone().filter(|d| !d.is_empty()))
                    .set_cors_configuration(desired.cors.as_ref().filter(|c| !c.is_none()).map(Cors::to_sdk))
                    .set_disable_execute_api_endpoint(desired.disable_execute_api_endpoint.filter(|d| *d))
                    .set_tags(sdk_tags(&desired.tags))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let (id, endpoint) = match made {
            Made::Answered(out) => {
                let id = out.api_id().ok_or_else(|| ProviderError::new("CreateApi returned no id"))?.to_string();
                (id, out.api_endpoint().map(str::to_string))
            }
            Made::Found(id) => {
                let got = client.get_api().api_id(&id).send().await.map_err(sdk)?;
                (id, got.api_endpoint().map(str::to_string))
            }
        };
        let outputs = outputs(aws, &id, endpoint.as_deref()).await?;
        Ok((id, outputs))
    }

    async fn read(aws: &Aws, id: &str, _prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let got = absent_if_not_found(aws.apigatewayv2().get_api().api_id(id).send().await.map_err(sdk))?;
        let Some(got) = got else { return Ok(None) };
        let inputs = HttpApi {
            name: got.name().unwrap_or_default().to_string(),
            description: Some(got.description().unwrap_or_default().to_string()),
            cors: Some(Cors::from_sdk(got.cors_configuration())),
            disable_execute_api_endpoint: got.disable_execute_api_endpoint(),
            tags: tags_of(got.tags()),
        };
        Ok(Some(Observed { inputs, outputs: outputs(aws, id, got.api_endpoint()).await? }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<HttpApiOutputs, ProviderError> {
        let client = aws.apigatewayv2();
        let has = |f: &str| changed.iter().any(|c| c == f);
        let cors = desired.cors.as_ref().filter(|_| has("cors"));
        let reset = cors.is_some_and(|c| c.is_none() || prior.cors.as_ref().is_some_and(|live| live.drops(c)));
        if reset {
            absent_if_not_found(client.delete_cors_configuration().api_id(id).send().await.map_err(sdk))?;
        }
        let set_cors = cors.filter(|c| !c.is_none());
        if has("name") || has("description") || has("disable_execute_api_endpoint") || set_cors.is_some() {
            client
                .update_api()
                .api_id(id)
                .set_name(has("name").then(|| desired.name.clone()))
                .set_description(desired.description.clone().filter(|_| has("description")))
                .set_cors_configuration(set_cors.map(Cors::to_sdk))
                .set_disable_execute_api_endpoint(desired.disable_execute_api_endpoint.filter(|_| has("disable_execute_api_endpoint")))
                .send()
                .await
                .map_err(sdk)?;
        }
        if has("tags") {
            sync_tags(aws, &resource_arn(aws, &format!("/apis/{id}")), &prior.tags, &desired.tags).await?;
        }
        outputs(aws, id, None).await
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        absent_if_not_found(aws.apigatewayv2().delete_api().api_id(id).send().await.map_err(sdk)).map(|_| ())
    }

    /// Lists the account's APIs (`GetApis` returns their tags) and picks the one tagged with this address.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let client = aws.apigatewayv2();
        let mut token: Option<String> = None;
        loop {
            let page = client.get_apis().set_next_token(token.clone()).send().await.map_err(sdk)?;
            for api in page.items() {
                let tags = api.tags();
                let tagged = |k: &str, v: &str| tags.and_then(|t| t.get(k)).map(String::as_str) == Some(v);
                // Not the old API of a replacement (it carries the same tags), nor another address's.
                let free = api.api_id().is_some_and(|id| !meta.exclude.iter().any(|x| x == id));
                if free && api.name() == Some(desired.name.as_str()) && tagged(TAG_ADDRESS, &meta.address) && tagged(TAG_STACK, &meta.stack)
                {
                    return Ok(api.api_id().map(str::to_string));
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(None);
            }
        }
    }
}

async fn outputs(aws: &Aws, id: &str, endpoint: Option<&str>) -> Result<HttpApiOutputs, ProviderError> {
    let region = aws.region();
    Ok(HttpApiOutputs {
        id: id.to_string(),
        endpoint: endpoint.map(str::to_string).unwrap_or_else(|| format!("https://{id}.execute-api.{region}.amazonaws.com")),
        arn: resource_arn(aws, &format!("/apis/{id}")),
        execution_arn: format!("arn:{}:execute-api:{region}:{}:{id}", aws.region_partition(), aws.account_id().await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_compares_as_sets_ignoring_case() {
        let mut a = Cors::builder().origins(["https://b.example", "https://a.example"]).methods(["get", "POST"]).headers(["Content-Type"]);
        let mut b =
            Cors::builder().origins(["https://a.example", "https://b.example"]).methods(["POST", "GET", "GET"]).headers(["content-type"]);
        a.normalize();
        b.normalize();
        assert_eq!(a, b);
        assert_eq!(a.allow_methods, ["GET", "POST"]);
    }

    #[test]
    fn cors_is_validated() {
        let errs = |c: Cors| HttpApi::new("x").cors(c).validate();
        assert!(errs(Cors::any()).is_empty());
        assert!(errs(Cors::none()).is_empty());
        assert_eq!(errs(Cors::any().methods(["FETCH"])).len(), 1);
        assert_eq!(errs(Cors::any().max_age(90000)).len(), 1);
        assert_eq!(errs(Cors::any().allow_credentials(true)).len(), 1);
        assert_eq!(errs(Cors::builder().origin("example.com")).len(), 1);
        assert!(errs(Cors::builder().origin("https://example.com").allow_credentials(true).max_age(600)).is_empty());
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(HttpApi::new("").validate()[0].field, "name");
        assert_eq!(HttpApi::new("x".repeat(129)).validate()[0].field, "name");
        assert!(HttpApi::new("pedidos").validate().is_empty());
    }

    #[test]
    fn dropping_a_cors_field_needs_a_reset() {
        let live = Cors::builder().origin("https://a.example").headers(["x-a"]).max_age(300);
        assert!(!live.drops(&live.clone().origin("https://b.example")));
        assert!(!live.drops(&Cors::builder().origin("https://b.example").headers(["x-b"]).max_age(600)));
        assert!(live.drops(&Cors::builder().origin("https://a.example").max_age(300)));
        assert!(live.drops(&Cors::builder().origin("https://a.example").headers(["x-a"])));
        assert!(Cors::any().allow_credentials(false).drops(&Cors::any()));
    }

    #[test]
    fn cors_round_trips_through_the_sdk_type() {
        let mut c = Cors::builder().origin("https://a.example").methods(["GET"]).max_age(300);
        c.normalize();
        assert_eq!(Cors::from_sdk(Some(&c.to_sdk())), c);
        assert!(Cors::from_sdk(None).is_none());
    }
}
