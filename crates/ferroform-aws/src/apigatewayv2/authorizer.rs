//! HTTP API JWT authorizer. APIs: CreateAuthorizer, GetAuthorizer, UpdateAuthorizer, DeleteAuthorizer.
//!
//! Known by `API_ID/AUTHORIZER_ID`; a read is one `GetAuthorizer`.
//!
//! Every field is set: the identity source is `$request.header.Authorization` unless the code names
//! another, so removing `.identity_source(..)` puts that back. Left to AWS when unset: nothing.

use super::{part_id, split_part_id};
use crate::error::{absent_if_not_found, create_once, sdk, Once, CREATE_ONCE};
use crate::validate;
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::{AuthorizerType, JwtConfiguration};
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};

/// Where a JWT is read from unless set.
pub const DEFAULT_IDENTITY_SOURCE: &str = "$request.header.Authorization";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authorizer {
    /// Changing it forces a new authorizer.
    pub api_id: String,
    /// 1 to 128 characters, unique within the API.
    pub name: String,
    /// `JWT`. Changing it forces a new authorizer.
    pub authorizer_type: String,
    /// Where the token is read from: `$request.header.Authorization`.
    pub identity_source: Vec<String>,
    /// The token issuer (`https://cognito-idp.REGION.amazonaws.com/POOL_ID`, an OIDC issuer URL).
    pub issuer: String,
    /// Accepted `aud` (or `client_id`) values; compared as a set.
    pub audience: Vec<String>,
}

ferroform_core::outputs! {
    pub struct AuthorizerOutputs => AuthorizerRefs {
        /// The authorizer's own id (what a route's `authorizer_id` takes).
        pub id: String as ferroform_core::Id<Authorizer>,
    }
}

impl Authorizer {
    /// A JWT authorizer reading the `Authorization` header.
    pub fn jwt<I: IntoIterator<Item = S>, S: Into<String>>(
        api_id: ferroform_core::Id<super::HttpApi>,
        name: impl Into<String>,
        issuer: impl Into<String>,
        audience: I,
    ) -> Self {
        Self {
            api_id: api_id.into(),
            name: name.into(),
            authorizer_type: "JWT".into(),
            identity_source: vec![DEFAULT_IDENTITY_SOURCE.into()],
            issuer: issuer.into(),
            audience: audience.into_iter().map(Into::into).collect(),
        }
    }
    pub fn identity_source<I: IntoIterator<Item = S>, S: Into<String>>(mut self, sources: I) -> Self {
        self.identity_source = sources.into_iter().map(Into::into).collect();
        self
    }
}

#[async_trait]
impl Resource for Authorizer {
    const TYPE: &'static str = "aws_apigatewayv2_authorizer";
    const REPLACE_FIELDS: &'static [&'static str] = &["api_id", "authorizer_type"];
    type Outputs = AuthorizerOutputs;
    type Refs = AuthorizerRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.api_id.is_empty() {
            e.push(FieldError::new("api_id", "the API's id is required (`api.id()`)"));
        }
        validate::name(&mut e, "name", &self.name, 1, 128, |c| !c.is_control(), "printable characters");
        if self.authorizer_type != "JWT" {
            e.push(FieldError::new("authorizer_type", format!("`{}`: only JWT authorizers are supported", self.authorizer_type)));
        }
        if self.identity_source.is_empty() {
            e.push(FieldError::new("identity_source", "a JWT authorizer reads the token from one source"));
        }
        for s in &self.identity_source {
            if !s.starts_with("$request.") && !s.starts_with("$context.") {
                e.push(FieldError::new("identity_source", format!("`{s}` is not a `$request.` or `$context.` selection")));
            }
        }
        if !is_unknown_str(&self.issuer) && !self.issuer.starts_with("https://") {
            e.push(FieldError::new("issuer", format!("`{}`: the issuer is an https URL", self.issuer)));
        }
        if self.audience.is_empty() {
            e.push(FieldError::new("audience", "a JWT authorizer needs at least one audience"));
        }
        e
    }

    fn normalize(&mut self) {
        self.audience.sort();
        self.audience.dedup();
    }

    /// Terraform keeps the API apart (`api_id`); the id here is `API_ID/ID`.
    fn terraform_id(attributes: &serde_json::Value) -> Option<String> {
        Some(super::part_id(attributes.get("api_id")?.as_str()?, attributes.get("id")?.as_str()?))
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, AuthorizerOutputs), ProviderError> {
        let client = aws.apigatewayv2();
        // No client token: after a lost answer the authorizer is looked for by its name before it is sent again.
        let made = create_once(
            CREATE_ONCE,
            |_| false,
            || {
                client
                    .create_authorizer()
                    .api_id(&desired.api_id)
                    .name(&desired.name)
                    .authorizer_type(AuthorizerType::from(desired.authorizer_type.as_str()))
                    .set_identity_source(Some(desired.identity_source.clone()))
                    .jwt_configuration(jwt(desired))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let (id, authorizer) = super::made_part(made, &desired.api_id, |out| out.authorizer_id(), "CreateAuthorizer")?;
        Ok((id, AuthorizerOutputs { id: authorizer }))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let (api, auth) = split_part_id(id, &prior.api_id);
        let got = absent_if_not_found(aws.apigatewayv2().get_authorizer().api_id(api).authorizer_id(auth).send().await.map_err(sdk))?;
        let Some(got) = got else { return Ok(None) };
        let inputs = Authorizer {
            api_id: api.to_string(),
            name: got.name().unwrap_or_default().to_string(),
            authorizer_type: got.authorizer_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            identity_source: got.identity_source().to_vec(),
            issuer: got.jwt_configuration().and_then(|j| j.issuer()).unwrap_or_default().to_string(),
            audience: got.jwt_configuration().map(|j| j.audience().to_vec()).unwrap_or_default(),
        };
        Ok(Some(Observed { inputs, outputs: AuthorizerOutputs { id: auth.to_string() } }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<AuthorizerOutputs, ProviderError> {
        let (api, auth) = split_part_id(id, &prior.api_id);
        let has = |f: &str| changed.iter().any(|c| c == f);
        aws.apigatewayv2()
            .update_authorizer()
            .api_id(api)
            .authorizer_id(auth)
            .set_name(has("name").then(|| desired.name.clone()))
            .set_identity_source(has("identity_source").then(|| desired.identity_source.clone()))
            .set_jwt_configuration((has("issuer") || has("audience")).then(|| jwt(desired)))
            .send()
            .await
            .map_err(sdk)?;
        Ok(AuthorizerOutputs { id: auth.to_string() })
    }

    async fn delete(aws: &Aws, id: &str, prior: &Self) -> Result<(), ProviderError> {
        let (api, auth) = split_part_id(id, &prior.api_id);
        absent_if_not_found(aws.apigatewayv2().delete_authorizer().api_id(api).authorizer_id(auth).send().await.map_err(sdk)).map(|_| ())
    }

    /// Authorizers carry no tags: the one a killed run made is found by name within its API (GetAuthorizers).
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let all = super::all_pages(|token| {
            let req = aws.apigatewayv2().get_authorizers().api_id(&desired.api_id).set_next_token(token);
            async move {
                let out = req.send().await.map_err(sdk)?;
                Ok((out.items.unwrap_or_default(), out.next_token))
            }
        })
        .await?;
        let named = all.unwrap_or_default().into_iter().filter(|a| a.name() == Some(desired.name.as_str()));
        Ok(crate::adopt::first_free(named.filter_map(|a| Some(part_id(&desired.api_id, a.authorizer_id()?))), meta))
    }
}

fn jwt(a: &Authorizer) -> JwtConfiguration {
    JwtConfiguration::builder().issuer(&a.issuer).set_audience(Some(a.audience.clone())).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc";

    #[test]
    fn jwt_authorizers_are_validated() {
        assert!(Authorizer::jwt(ferroform_core::Id::literal("abc"), "users", ISSUER, ["client"]).validate().is_empty());
        let fields = |a: Authorizer| a.validate().into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(Authorizer::jwt(ferroform_core::Id::literal("abc"), "users", "http://insecure", ["c"])), ["issuer"]);
        assert_eq!(fields(Authorizer::jwt(ferroform_core::Id::literal("abc"), "users", ISSUER, Vec::<String>::new())), ["audience"]);
        assert_eq!(
            fields(Authorizer::jwt(ferroform_core::Id::literal("abc"), "users", ISSUER, ["c"]).identity_source(["Authorization"])),
            ["identity_source"]
        );
        assert_eq!(fields(Authorizer::jwt(ferroform_core::Id::literal("abc"), "", ISSUER, ["c"])), ["name"]);
    }

    #[test]
    fn audiences_compare_as_sets() {
        let mut a = Authorizer::jwt(ferroform_core::Id::literal("abc"), "u", ISSUER, ["b", "a", "a"]);
        a.normalize();
        assert_eq!(a.audience, ["a", "b"]);
    }
}
