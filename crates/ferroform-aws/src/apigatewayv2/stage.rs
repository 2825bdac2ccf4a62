//! HTTP API stage (`$default` with auto-deploy, typically), with access logs to a log group. APIs:
//! CreateStage, GetStage, UpdateStage, TagResource, UntagResource, DeleteStage.
//!
//! Known by `API_ID/STAGE_NAME`; a read is one `GetStage` (tags included).
//!
//! Defaults when unset: no auto-deploy, no access logs, an empty description, no stage variables, no
//! tags; removing a setting from the code puts that back (a variable removed is deleted, access logs are
//! turned off). Left to AWS when unset: nothing.

use super::{resource_arn, sdk_tags, split_part_id, sync_tags, tags_of};
use crate::error::{absent_if_not_found, create_once, sdk, Once, CREATE_ONCE};
use crate::tags::{merge_defaults, Tags};
use crate::validate;
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_apigatewayv2::types::AccessLogSettings;
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The stage served at the API's root URL.
pub const DEFAULT_STAGE: &str = "$default";

/// A JSON access-log line with what one usually wants to see.
pub const DEFAULT_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime","httpMethod":"$context.httpMethod","routeKey":"$context.routeKey","status":"$context.status","protocol":"$context.protocol","responseLength":"$context.responseLength","integrationError":"$context.integrationErrorMessage"}"#;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Changing it forces a new stage.
    pub api_id: String,
    /// `$default`, or 1 to 128 of `[a-zA-Z0-9-_]`. Changing it forces a new stage.
    pub name: String,
    /// Deploys every change to the API by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_deploy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLog>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Values the integrations can read as `${stageVariables.NAME}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Tags,
}

/// Where and how a stage writes access logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLog {
    /// The log group's ARN (`log_group.arn()`), without the `:*` suffix.
    pub destination_arn: String,
    /// A line per request, with `$context` variables; must include `$context.requestId`.
    pub format: String,
}

impl AccessLog {
    /// [`DEFAULT_LOG_FORMAT`] lines into this log group.
    pub fn json(destination_arn: ferroform_core::Arn<crate::logs::LogGroup>) -> Self {
        Self { destination_arn: destination_arn.into(), format: DEFAULT_LOG_FORMAT.to_string() }
    }
    pub fn format(mut self, format: impl Into<String>) -> Self {
        self.format = format.into();
        self
    }
}

ferroform_core::outputs! {
    pub struct StageOutputs => StageRefs {
        pub name: String as ferroform_core::Name<Stage>,
        /// `https://API_ID.execute-api.REGION.amazonaws.com/` (and the stage's name, but for `$default`).
        pub invoke_url: String,
        pub arn: String as ferroform_core::Arn<Stage>,
    }
}

impl Stage {
    /// The `$default` stage, deploying every change by itself.
    pub fn default_auto_deploy(api_id: ferroform_core::Id<super::HttpApi>) -> Self {
        Self::new(api_id, DEFAULT_STAGE).auto_deploy(true)
    }
    pub fn new(api_id: ferroform_core::Id<super::HttpApi>, name: impl Into<String>) -> Self {
        Self {
            api_id: api_id.into(),
            name: name.into(),
            auto_deploy: None,
            access_log: None,
            description: None,
            variables: BTreeMap::new(),
            tags: Tags::new(),
        }
    }
    /// A stage variable.
    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.insert(name.into(), value.into());
        self
    }
    pub fn auto_deploy(mut self, yes: bool) -> Self {
        self.auto_deploy = Some(yes);
        self
    }
    pub fn access_log(mut self, log: AccessLog) -> Self {
        self.access_log = Some(log);
        self
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

#[async_trait]
impl Resource for Stage {
    const TYPE: &'static str = "aws_apigatewayv2_stage";
    const REPLACE_FIELDS: &'static [&'static str] = &["api_id", "name"];
    type Outputs = StageOutputs;
    type Refs = StageRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.api_id.is_empty() {
            e.push(FieldError::new("api_id", "the API's id is required (`api.id()`)"));
        }
        if self.name != DEFAULT_STAGE {
            validate::name(
                &mut e,
                "name",
                &self.name,
                1,
                128,
                |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
                "`$default`, or letters, digits, `-_`",
            );
        }
        if let Some(log) = &self.access_log {
            let arn = &log.destination_arn;
            if !is_unknown_str(arn) {
                if !arn.starts_with("arn:aws:logs:") && !arn.starts_with("arn:aws:firehose:") {
                    e.push(FieldError::new("access_log", format!("`{arn}` is not a log group (or Firehose) ARN")));
                } else if arn.ends_with(":*") {
                    e.push(FieldError::new("access_log", format!("`{arn}`: drop the `:*` suffix")));
                }
            }
            if !log.format.contains("$context.requestId") && !log.format.contains("$context.extendedRequestId") {
                e.push(FieldError::new("access_log", "the format must include `$context.requestId`"));
            }
        }
        e
    }

    /// AWS's defaults for what the code leaves unset.
    fn normalize(&mut self) {
        self.auto_deploy.get_or_insert(false);
        self.description.get_or_insert_with(String::new);
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // One stage of a name per API.
    fn delete_before_create(&self) -> bool {
        true
    }

    /// Terraform's id is the stage's name; here it is `API_ID/NAME`.
    fn terraform_id(attributes: &serde_json::Value) -> Option<String> {
        Some(super::part_id(attributes.get("api_id")?.as_str()?, attributes.get("name")?.as_str()?))
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, StageOutputs), ProviderError> {
        let client = aws.apigatewayv2();
        // Sent again after a lost answer, CreateStage meets the stage it made (a conflict): looked for first.
        create_once(
            CREATE_ONCE,
            |_| false,
            || {
                client
                    .create_stage()
                    .api_id(&desired.api_id)
                    .stage_name(&desired.name)
                    .set_auto_deploy(desired.auto_deploy.filter(|a| *a))
                    .set_access_log_settings(desired.access_log.as_ref().map(to_sdk))
                    .set_description(desired.description.clone().filter(|d| !d.is_empty()))
                    .set_stage_variables((!desired.variables.is_empty()).then(|| desired.variables.clone().into_iter().collect()))
                    .set_tags(sdk_tags(&desired.tags))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        Ok((super::part_id(&desired.api_id, &desired.name), outputs(aws, &desired.api_id, &desired.name)))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let (api, name) = split_part_id(id, &prior.api_id);
        let got = absent_if_not_found(aws.apigatewayv2().get_stage().api_id(api).stage_name(name).send().await.map_err(sdk))?;
        let Some(got) = got else { return Ok(None) };
        let inputs = Stage {
            api_id: api.to_string(),
            name: got.stage_name().unwrap_or(name).to_string(),
            auto_deploy: got.auto_deploy(),
            access_log: got.access_log_settings().and_then(|l| {
                Some(AccessLog { destination_arn: l.destination_arn()?.to_string(), format: l.format().unwrap_or_default().to_string() })
            }),
            description: Some(got.description().unwrap_or_default().to_string()),
            variables: got.stage_variables().map(|v| v.clone().into_iter().collect()).unwrap_or_default(),
            tags: tags_of(got.tags()),
        };
        Ok(Some(Observed { inputs, outputs: outputs(aws, api, name) }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<StageOutputs, ProviderError> {
        let (api, name) = split_part_id(id, &prior.api_id);
        let has = |f: &str| changed.iter().any(|c| c == f);
        if has("auto_deploy") || has("access_log") || has("description") || has("variables") {
            // Variables: the changed ones, and the removed ones as "" (which deletes them).
            let variables: std::collections::HashMap<String, String> = desired
                .variables
                .iter()
                .filter(|(k, v)| prior.variables.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain(prior.variables.keys().filter(|k| !desired.variables.contains_key(*k)).map(|k| (k.clone(), String::new())))
                .collect();
            aws.apigatewayv2()
                .update_stage()
                .api_id(api)
                .stage_name(name)
                .set_auto_deploy(desired.auto_deploy.filter(|_| has("auto_deploy")))
                // Settings without a destination turn access logs off.
                .set_access_log_settings(
                    has("access_log")
                        .then(|| desired.access_log.as_ref().map(to_sdk).unwrap_or_else(|| AccessLogSettings::builder().build())),
                )
                .set_description(desired.description.clone().filter(|_| has("description")))
                .set_stage_variables((has("variables") && !variables.is_empty()).then_some(variables))
                .send()
                .await
                .map_err(sdk)?;
        }
        if has("tags") {
            sync_tags(aws, &stage_arn(aws, api, name), &prior.tags, &desired.tags).await?;
        }
        Ok(outputs(aws, api, name))
    }

    async fn delete(aws: &Aws, id: &str, prior: &Self) -> Result<(), ProviderError> {
        let (api, name) = split_part_id(id, &prior.api_id);
        absent_if_not_found(aws.apigatewayv2().delete_stage().api_id(api).stage_name(name).send().await.map_err(sdk)).map(|_| ())
    }

    /// A stage's name is unique within its API, and CreateStage tags it: the stage a killed run made is the
    /// one of this name, unless its tags name another address or stack.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let id = super::part_id(&desired.api_id, &desired.name);
        if meta.exclude.contains(&id) {
            return Ok(None);
        }
        let found = Self::read(aws, &id, desired).await?;
        Ok(found.filter(|o| crate::adopt::maybe_ours(&o.inputs.tags, meta)).map(|_| id))
    }
}

fn to_sdk(log: &AccessLog) -> AccessLogSettings {
    AccessLogSettings::builder().destination_arn(&log.destination_arn).format(&log.format).build()
}

fn stage_arn(aws: &Aws, api: &str, name: &str) -> String {
    resource_arn(aws, &format!("/apis/{api}/stages/{name}"))
}

fn outputs(aws: &Aws, api: &str, name: &str) -> StageOutputs {
    let path = if name == DEFAULT_STAGE { String::new() } else { name.to_string() };
    StageOutputs {
        name: name.to_string(),
        invoke_url: format!("https://{api}.execute-api.{}.amazonaws.com/{path}", aws.region()),
        arn: stage_arn(aws, api, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGS: &str = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/apigw/pedidos";

    #[test]
    fn stages_are_validated() {
        assert!(Stage::default_auto_deploy(ferroform_core::Id::literal("abc"))
            .access_log(AccessLog::json(ferroform_core::Arn::literal(LOGS)))
            .validate()
            .is_empty());
        assert!(Stage::new(ferroform_core::Id::literal("abc"), "prod").validate().is_empty());
        let fields = |s: Stage| s.validate().into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(Stage::new(ferroform_core::Id::literal("abc"), "$prod")), ["name"]);
        assert_eq!(
            fields(
                Stage::new(ferroform_core::Id::literal("abc"), "p")
                    .access_log(AccessLog::json(ferroform_core::Arn::literal(format!("{LOGS}:*"))))
            ),
            ["access_log"]
        );
        assert_eq!(
            fields(
                Stage::new(ferroform_core::Id::literal("abc"), "p")
                    .access_log(AccessLog::json(ferroform_core::Arn::literal("arn:aws:s3:::bucket")))
            ),
            ["access_log"]
        );
        assert_eq!(
            fields(
                Stage::new(ferroform_core::Id::literal("abc"), "p")
                    .access_log(AccessLog::json(ferroform_core::Arn::literal(LOGS)).format("$context.status"))
            ),
            ["access_log"]
        );
        assert!(Stage::new(ferroform_core::Id::literal("abc"), "p")
            .access_log(AccessLog::json(ferroform_core::Arn::literal("\u{e000}${ref:logs.arn}")))
            .validate()
            .is_empty());
    }
}
