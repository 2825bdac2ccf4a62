//! Lambda permission: one statement of a function's resource policy (who may invoke it). APIs:
//! AddPermission, GetPolicy, RemovePermission.
//!
//! Every field forces a new statement (Lambda has no update). Reads are batched: all the permissions of one
//! function cost one `GetPolicy`, however many there are.
//!
//! Every optional field is compared whether the code sets it or not: removing `source_arn` or
//! `source_account` makes the statement again without that condition; `action` is
//! `lambda:InvokeFunction` unless set. Left to AWS when unset: nothing.

use crate::error::{absent_if_not_found, already_exists, create_once, retry, sdk, Once, CREATE_ONCE};
use crate::validate;
use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The action API Gateway needs.
pub const INVOKE: &str = "lambda:InvokeFunction";
/// API Gateway's service principal.
pub const API_GATEWAY: &str = "apigateway.amazonaws.com";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Permission {
    /// The function's name or ARN (`function.name()`).
    pub function_name: String,
    /// The statement's id in the function's policy: unique per function, `[a-zA-Z0-9-_.]`, at most 100.
    pub statement_id: String,
    /// `lambda:InvokeFunction` unless set.
    pub action: String,
    /// A service (`apigateway.amazonaws.com`), an account id, or an ARN.
    pub principal: String,
    /// Restricts the grant to calls from this ARN (`arn:aws:execute-api:REGION:ACCOUNT:API_ID/*/*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<String>,
    /// Restricts the grant to calls from this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_account: Option<String>,
}

ferroform_core::outputs! {
    pub struct PermissionOutputs => PermissionRefs {
        pub statement_id: String,
    }
}

impl Permission {
    pub fn new(
        function_name: ferroform_core::Name<super::Function>,
        statement_id: impl Into<String>,
        principal: impl Into<String>,
    ) -> Self {
        Self {
            function_name: function_name.into(),
            statement_id: statement_id.into(),
            action: INVOKE.to_string(),
            principal: principal.into(),
            source_arn: None,
            source_account: None,
        }
    }

    /// Lets API Gateway invoke the function, for calls coming from `source_arn` (an API's execution ARN
    /// with `/*/*`, or narrower).
    pub fn api_gateway(
        function_name: ferroform_core::Name<super::Function>,
        statement_id: impl Into<String>,
        source_arn: impl ferroform_core::ArnText,
    ) -> Self {
        Self::new(function_name, statement_id, API_GATEWAY).source_arn(source_arn)
    }

    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = action.into();
        self
    }
    pub fn source_arn(mut self, arn: impl ferroform_core::ArnText) -> Self {
        self.source_arn = Some(arn.arn_text());
        self
    }
    pub fn source_account(mut self, account: impl Into<String>) -> Self {
        self.source_account = Some(account.into());
        self
    }
}

#[async_trait]
impl Resource for Permission {
    const TYPE: &'static str = "aws_lambda_permission";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("statement_id", "statement_id")];
    const REPLACE_FIELDS: &'static [&'static str] =
        &["function_name", "statement_id", "action", "principal", "source_arn", "source_account"];
    type Outputs = PermissionOutputs;
    type Refs = PermissionRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        validate::name(
            &mut e,
            "statement_id",
            &self.statement_id,
            1,
            100,
            |c| c.is_ascii_alphanumeric() || "-_.".contains(c),
            "letters, digits, `-_.`",
        );
        if self.function_name.is_empty() {
            e.push(FieldError::new("function_name", "the function's name or ARN is required"));
        }
        if !(is_unknown_str(&self.action) || (self.action.starts_with("lambda:") && self.action.len() > 7)) {
            e.push(FieldError::new("action", format!("`{}` is not a Lambda action (lambda:InvokeFunction)", self.action)));
        }
        if self.principal.is_empty() {
            e.push(FieldError::new("principal", "a principal is required (apigateway.amazonaws.com, say)"));
        }
        if let Some(arn) = &self.source_arn {
            if !is_unknown_str(arn) && !arn.starts_with("arn:") {
                e.push(FieldError::new("source_arn", format!("`{arn}` is not an ARN")));
            }
        }
        e
    }

    // The statement id is the identity within the function's policy.
    fn delete_before_create(&self) -> bool {
        true
    }

    /// Terraform's id is the statement id; here it is `FUNCTION/STATEMENT_ID`.
    fn terraform_id(attributes: &serde_json::Value) -> Option<String> {
        Some(id_of(attributes.get("function_name")?.as_str()?, attributes.get("statement_id")?.as_str()?))
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, PermissionOutputs), ProviderError> {
        let lambda = aws.lambda();
        // Concurrent policy changes on one function conflict (`ResourceConflictException`): not done, sent
        // again. Sent again after a lost answer, AddPermission meets its own statement id (a conflict that
        // says it exists): looked for first, and taken.
        create_once(
            CREATE_ONCE,
            |e| is_conflict(e) && !already_exists(e),
            || {
                lambda
                    .add_permission()
                    .function_name(&desired.function_name)
                    .statement_id(&desired.statement_id)
                    .action(&desired.action)
                    .principal(&desired.principal)
                    .set_source_arn(desired.source_arn.clone())
                    .set_source_account(desired.source_account.clone())
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        Ok((id_of(&desired.function_name, &desired.statement_id), PermissionOutputs { statement_id: desired.statement_id.clone() }))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    /// One `GetPolicy` per function, for all of its permissions.
    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let targets: Vec<(String, String)> = items.iter().map(|(id, prior)| split_id(id, prior)).collect();
        let mut functions: Vec<&str> = targets.iter().map(|(f, _)| f.as_str()).collect();
        functions.sort_unstable();
        functions.dedup();
        let lambda = aws.lambda();
        let policies = ferroform_core::join_bounded(functions.iter().map(|f| {
            let lambda = lambda.clone();
            async move {
                let got = absent_if_not_found(lambda.get_policy().function_name(*f).send().await.map_err(sdk))?;
                match got.and_then(|g| g.policy) {
                    Some(text) => statements(&text).map(Some),
                    None => Ok(None),
                }
            }
        }))
        .await;
        let by_function: BTreeMap<&str, &Result<Option<BTreeMap<String, Value>>, ProviderError>> =
            functions.iter().copied().zip(policies.iter()).collect();
        targets
            .iter()
            .zip(items)
            .map(|((function, sid), (_, prior))| match by_function.get(function.as_str()) {
                Some(Ok(Some(stmts))) => Ok(stmts.get(sid).map(|s| Observed {
                    inputs: from_statement(function, sid, s, prior),
                    outputs: PermissionOutputs { statement_id: sid.clone() },
                })),
                Some(Ok(None)) => Ok(None),
                Some(Err(e)) => Err(e.clone()),
                None => Err(ProviderError::new("internal: a permission's function was not read")),
            })
            .collect()
    }

    async fn update(
        _aws: &Aws,
        id: &str,
        prior: &Self,
        _desired: &Self,
        _changed: &[String],
        _meta: &CallMeta,
    ) -> Result<PermissionOutputs, ProviderError> {
        // Every field forces a replacement: nothing to update in place.
        Ok(PermissionOutputs { statement_id: split_id(id, prior).1 })
    }

    async fn delete(aws: &Aws, id: &str, prior: &Self) -> Result<(), ProviderError> {
        let (function, sid) = split_id(id, prior);
        let lambda = aws.lambda();
        let removed = retry(Duration::from_secs(60), is_conflict, || async {
            lambda.remove_permission().function_name(&function).statement_id(&sid).send().await.map_err(sdk)
        })
        .await;
        absent_if_not_found(removed).map(|_| ())
    }

    /// A statement id is unique within the function's policy: the statement a killed run added is the one
    /// with this id (one GetPolicy). Without this, the re-run's AddPermission meets the same id and fails.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        crate::adopt::by_id(aws, id_of(&desired.function_name, &desired.statement_id), desired, meta).await
    }
}

/// `FUNCTION/STATEMENT_ID`: neither a function name nor its ARN holds a `/`.
fn id_of(function: &str, sid: &str) -> String {
    format!("{function}/{sid}")
}

fn split_id(id: &str, prior: &Permission) -> (String, String) {
    match id.rsplit_once('/') {
        Some((f, s)) if !f.is_empty() && !s.is_empty() => (f.to_string(), s.to_string()),
        _ => (prior.function_name.clone(), id.to_string()),
    }
}

fn is_conflict(e: &ProviderError) -> bool {
    e.code.as_deref() == Some("ResourceConflictException")
}

/// The policy's statements by `Sid`.
fn statements(policy: &str) -> Result<BTreeMap<String, Value>, ProviderError> {
    let doc: Value = serde_json::from_str(policy)
        .map_err(|e| ProviderError::with_code("BadPolicy", format!("GetPolicy returned a policy that is not JSON: {e}")))?;
    let list = match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Object(_) => vec![doc["Statement"].clone()],
        _ => Vec::new(),
    };
    Ok(list.into_iter().filter_map(|s| s["Sid"].as_str().map(|sid| (sid.to_string(), s.clone()))).collect())
}

/// A policy statement back in the resource's shape.
fn from_statement(function: &str, sid: &str, s: &Value, prior: &Permission) -> Permission {
    let principal = match &s["Principal"] {
        Value::String(p) => p.clone(),
        Value::Object(m) => m.get("Service").or_else(|| m.get("AWS")).and_then(Value::as_str).unwrap_or_default().to_string(),
        _ => String::new(),
    };
    // An account id comes back as its root ARN.
    let principal = match principal.strip_prefix("arn:aws:iam::").and_then(|r| r.strip_suffix(":root")) {
        Some(account) if account == prior.principal => account.to_string(),
        _ => principal,
    };
    let action = match &s["Action"] {
        Value::String(a) => a.clone(),
        Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or_default().to_string(),
        _ => String::new(),
    };
    let condition = |op: &str, key: &str| -> Option<String> {
        let c = &s["Condition"][op];
        c.as_object().and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key))).and_then(|(_, v)| v.as_str()).map(str::to_string)
    };
    Permission {
        // The policy names the function by ARN; keep the form the code used.
        function_name: if prior.function_name.is_empty() { function.to_string() } else { prior.function_name.clone() },
        statement_id: sid.to_string(),
        action,
        principal,
        source_arn: condition("ArnLike", "AWS:SourceArn"),
        source_account: condition("StringEquals", "AWS:SourceAccount"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_ids_and_actions_are_checked() {
        let ok =
            Permission::api_gateway(ferroform_core::Name::literal("f"), "apigw-get", "arn:aws:execute-api:us-east-1:123456789012:abc/*/*");
        assert!(ok.validate().is_empty());
        let fields = |p: Permission| p.validate().into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(Permission::api_gateway(ferroform_core::Name::literal("f"), "has space", "arn:x")), ["statement_id"]);
        assert_eq!(fields(Permission::api_gateway(ferroform_core::Name::literal("f"), "x".repeat(101), "arn:x")), ["statement_id"]);
        assert_eq!(fields(ok.clone().action("s3:GetObject")), ["action"]);
        assert_eq!(fields(ok.clone().source_arn("not-an-arn")), ["source_arn"]);
        assert!(ok.source_arn("\u{e000}${ref:api.execution_arn}/*/*").validate().is_empty());
    }

    #[test]
    fn ids_split_at_the_last_slash() {
        let p = Permission::new(ferroform_core::Name::literal("fallback"), "sid", API_GATEWAY);
        assert_eq!(split_id("my-fn/apigw-1", &p), ("my-fn".into(), "apigw-1".into()));
        assert_eq!(
            split_id("arn:aws:lambda:us-east-1:123456789012:function:f/s", &p).0,
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        );
        assert_eq!(split_id("just-sid", &p), ("fallback".into(), "just-sid".into()));
    }

    #[test]
    fn policy_statements_read_back_as_permissions() {
        let policy = r#"{"Version":"2012-10-17","Id":"default","Statement":[
            {"Sid":"apigw","Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},"Action":"lambda:InvokeFunction",
             "Resource":"arn:aws:lambda:us-east-1:123456789012:function:f",
             "Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:execute-api:us-east-1:123456789012:abc/*/*"}}},
            {"Sid":"acct","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"lambda:InvokeFunction",
             "Resource":"arn:aws:lambda:us-east-1:123456789012:function:f",
             "Condition":{"StringEquals":{"AWS:SourceAccount":"210987654321"}}}]}"#;
        let s = statements(policy).unwrap();
        assert_eq!(s.len(), 2);
        let want =
            Permission::api_gateway(ferroform_core::Name::literal("f"), "apigw", "arn:aws:execute-api:us-east-1:123456789012:abc/*/*");
        assert_eq!(from_statement("f", "apigw", &s["apigw"], &want), want);
        let acct = Permission::new(ferroform_core::Name::literal("f"), "acct", "210987654321").source_account("210987654321");
        assert_eq!(from_statement("f", "acct", &s["acct"], &acct), acct);
    }
}
