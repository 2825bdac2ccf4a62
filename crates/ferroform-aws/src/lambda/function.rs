//! Lambda function. APIs: CreateFunction, GetFunction, GetFunctionConfiguration,
//! UpdateFunctionConfiguration, UpdateFunctionCode, TagResource, UntagResource, DeleteFunction.
//!
//! A read is one `GetFunction` (configuration, code location and tags together). The code is compared by
//! its SHA-256 (`CodeSha256`) for zips and by URI for images, so an identical build uploads nothing.
//! `CreateFunction` is retried while IAM has not yet made a new role assumable by Lambda; after the create
//! and after each update the function is waited on until `State=Active` and `LastUpdateStatus=Successful`,
//! so configuration and code updates never overlap (Lambda refuses the second one while the first is in
//! progress).
//!
//! Every optional field is compared whether the code sets it or not; unset, it means Lambda's default, so
//! removing a setting puts the default back: runtime `provided.al2023` and handler `bootstrap` (zips),
//! description empty, memory 128 MB, timeout 3 s, no environment variables, architecture x86_64, log group
//! `/aws/lambda/NAME`, no tags. Left to AWS when unset: nothing.
//!
//! Values set with [`Function::secret_env`] are shown as `(sensitive)` in plans (text and JSON).

use super::code::{Architecture, Code, MAX_DIRECT_UPLOAD};
use crate::error::{absent_if_not_found, create_once, retry, sdk, wait_for, Made, Once};
use crate::tags::{merge_defaults, without_aws_managed, Tags};
use crate::validate;
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_lambda::types::{self as sdk_types, FunctionConfiguration, LastUpdateStatus, State};
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS, TAG_STACK};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The runtime a zip gets unless another is set: a Rust binary named `bootstrap` on Amazon Linux 2023.
pub const DEFAULT_RUNTIME: &str = "provided.al2023";
/// The handler of the `provided` runtimes (the binary itself).
pub const DEFAULT_HANDLER: &str = "bootstrap";
/// Lambda's memory when none is set, MB.
pub const DEFAULT_MEMORY_MB: i32 = 128;
/// Lambda's timeout when none is set, seconds.
pub const DEFAULT_TIMEOUT_S: i32 = 3;
/// How long `CreateFunction` is retried while the new role is not assumable yet.
const ROLE_PROPAGATION: Duration = Duration::from_secs(120);
/// How long a function may stay `Pending` or `InProgress`.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// Keys Lambda sets itself and refuses in the environment.
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    /// 1 to 64 of `[a-zA-Z0-9-_]`. Changing it forces a new function.
    pub name: String,
    /// The execution role's ARN (`role.arn()`).
    pub role: String,
    pub code: Code,
    /// `Zip` or `Image`, taken from `code` (Lambda can't change it: a change forces a new function).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_type: Option<String>,
    /// `provided.al2023` for zips unless set; none for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// `bootstrap` for the `provided` runtimes unless set; none for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MB, 128 to 10240 (Lambda's default: 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_size: Option<i32>,
    /// Seconds, 1 to 900 (Lambda's default: 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
    /// Managed exclusively: variables not declared are removed.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Lambda's default: x86_64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Architecture>,
    /// The log group the function writes to (Lambda's default: `/aws/lambda/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    #[serde(default)]
    pub tags: Tags,
    /// The environment variables set with [`Function::secret_env`]. Not an input: the engine takes the
    /// sensitive paths when the function is added to the stack.
    #[serde(skip)]
    pub secret_keys: BTreeSet<String>,
}

ferroform_core::outputs! {
    pub struct FunctionOutputs => FunctionRefs {
        pub arn: String as ferroform_core::Arn<Function>,
        pub name: String as ferroform_core::Name<Function>,
        /// What API Gateway integrations call: `arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations`.
        pub invoke_arn: String,
        /// `$LATEST` (versions are not published).
        pub version: String,
        /// The base64 SHA-256 of the deployed code, as Lambda reports it.
        pub code_sha256: String,
    }
}

impl Function {
    /// A function with this name; set `role` and `code` before adding it.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            role: String::new(),
            code: Code::Unavailable { error: "no code was given: call `.code(..)`".into() },
            package_type: None,
            runtime: None,
            handler: None,
            description: None,
            memory_size: None,
            timeout: None,
            environment: BTreeMap::new(),
            architecture: None,
            log_group: None,
            tags: Tags::new(),
            secret_keys: BTreeSet::new(),
        }
    }
    pub fn code(mut self, code: Code) -> Self {
        self.code = code;
        self
    }
    pub fn role(mut self, arn: ferroform_core::Arn<crate::iam::Role>) -> Self {
        self.role = arn.into();
        self
    }
    pub fn runtime(mut self, runtime: impl Into<String>) -> Self {
        self.runtime = Some(runtime.into());
        self
    }
    pub fn handler(mut self, handler: impl Into<String>) -> Self {
        self.handler = Some(handler.into());
        self
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    pub fn memory_size(mut self, mb: i32) -> Self {
        self.memory_size = Some(mb);
        self
    }
    pub fn timeout(mut self, seconds: i32) -> Self {
        self.timeout = Some(seconds);
        self
    }
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.environment.insert(key.into(), value.into());
        self
    }
    /// An environment variable whose value plans never show (`(sensitive)`); a change to it still shows
    /// as a change. State holds the value, as Lambda does.
    pub fn secret_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.secret_keys.insert(key.clone());
        self.env(key, value)
    }
    pub fn architecture(mut self, arch: Architecture) -> Self {
        self.architecture = Some(arch);
        self
    }
    /// Where the function logs (`log_group.name()`).
    pub fn log_group(mut self, name: ferroform_core::Name<crate::logs::LogGroup>) -> Self {
        self.log_group = Some(name.into());
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

#[async_trait]
impl Resource for Function {
    const TYPE: &'static str = "aws_lambda_function";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("name", "function_name")];
    const REPLACE_FIELDS: &'static [&'static str] = &["name", "package_type"];
    /// New code (or the same code for another CPU) is a new `CodeSha256` for whatever uses it.
    const UPDATE_CHANGES: &'static [(&'static str, &'static [&'static str])] =
        &[("code", &["code_sha256"]), ("architecture", &["code_sha256"])];
    type Outputs = FunctionOutputs;
    type Refs = FunctionRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        validate::name(&mut e, "name", &self.name, 1, 64, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_', "letters, digits, `-_`");
        if self.role.is_empty() {
            e.push(FieldError::new("role", "a function needs an execution role: call `.role(role.arn())`"));
        } else if !is_unknown_str(&self.role) && !is_role_arn(&self.role) {
            e.push(FieldError::new("role", format!("`{}` is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", self.role)));
        }
        match &self.code {
            Code::Unavailable { error } => e.push(FieldError::new("code", error.clone())),
            Code::Zip { size, .. } => {
                if *size > MAX_DIRECT_UPLOAD {
                    e.push(FieldError::new(
                        "code",
                        format!("the zip is {} MB; Lambda takes at most 50 MB uploaded directly", size / (1024 * 1024)),
                    ));
                }
            }
            Code::Image { uri } => {
                if self.runtime.is_some() || self.handler.is_some() {
                    e.push(FieldError::new("runtime", "an image function has no runtime or handler (the image's entry point runs)"));
                }
                if !is_unknown_str(uri) && !uri.contains('/') {
                    e.push(FieldError::new("code", format!("`{uri}` is not an image URI (REGISTRY/REPOSITORY:TAG or @sha256:DIGEST)")));
                }
            }
        }
        if let Some(m) = self.memory_size {
            validate::range(&mut e, "memory_size", m.into(), 128, 10240);
        }
        if let Some(t) = self.timeout {
            validate::range(&mut e, "timeout", t.into(), 1, 900);
        }
        let mut size = 0;
        for (k, v) in &self.environment {
            size += k.len() + v.len();
            let mut chars = k.chars();
            let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !well_formed {
                e.push(FieldError::new("environment", format!("`{k}`: a variable name is a letter, then letters, digits and `_`")));
            } else if RESERVED_ENV.contains(&k.as_str()) {
                e.push(FieldError::new("environment", format!("`{k}` is reserved by Lambda")));
            }
        }
        if size > 4096 {
            e.push(FieldError::new("environment", format!("the variables take {size} bytes; Lambda allows 4 KB in all")));
        }
        if let Some(desc) = &self.description {
            if desc.chars().count() > 256 {
                e.push(FieldError::new("description", "at most 256 characters"));
            }
        }
        e
    }

    fn normalize(&mut self) {
        if let Some(kind) = self.code.package_type() {
            self.package_type = Some(kind.to_string());
        }
        if matches!(self.code, Code::Zip { .. }) {
            let runtime = self.runtime.get_or_insert_with(|| DEFAULT_RUNTIME.to_string());
            if runtime.starts_with("provided") && self.handler.is_none() {
                self.handler = Some(DEFAULT_HANDLER.to_string());
            }
        }
        // Lambda reports an unset description as "".
        if self.description.as_deref() == Some("") {
            self.description = None;
        }
        self.memory_size.get_or_insert(DEFAULT_MEMORY_MB);
        self.timeout.get_or_insert(DEFAULT_TIMEOUT_S);
        self.architecture.get_or_insert(Architecture::X86_64);
        if self.log_group.is_none() {
            self.log_group = Some(format!("/aws/lambda/{}", self.name));
        }
    }

    fn sensitive_paths(&self) -> Vec<String> {
        self.secret_keys.iter().map(|k| ferroform_core::path::child("environment", k)).collect()
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // The name is the identity.
    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, FunctionOutputs), ProviderError> {
        let lambda = aws.lambda();
        let code = function_code(&desired.code)?;
        let env = sdk_types::Environment::builder().set_variables(Some(desired.environment.clone().into_iter().collect())).build();
        // A role made seconds ago is refused until IAM has propagated it: not done, tried again.
        let made = create_once(
            ROLE_PROPAGATION,
            is_role_not_ready,
            || {
                lambda
                    .create_function()
                    .function_name(&desired.name)
                    .role(&desired.role)
                    .code(code.clone())
                    .set_package_type(desired.code.package_type().map(sdk_types::PackageType::from))
                    .set_runtime(desired.runtime.as_deref().map(sdk_types::Runtime::from))
                    .set_handler(desired.handler.clone())
                    .set_description(desired.description.clone())
                    .set_memory_size(desired.memory_size)
                    .set_timeout(desired.timeout)
                    .set_environment((!desired.environment.is_empty()).then(|| env.clone()))
                    .set_architectures(desired.architecture.map(|a| vec![sdk_types::Architecture::from(a.as_str())]))
                    .set_logging_config(desired.log_group.as_ref().map(|g| logging_config(g)))
                    .set_tags((!desired.tags.is_empty()).then(|| desired.tags.clone().into_iter().collect()))
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await
        .map_err(with_role_hint)?;
        let config = match made {
            Made::Answered(created) => created.into_config(),
            Made::Found(_) => wait_ready(aws, &desired.name).await?,
        };
        let config = if is_ready(&config)? { config } else { wait_ready(aws, &desired.name).await? };
        Ok((desired.name.clone(), outputs(aws, &config)))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let got = absent_if_not_found(aws.lambda().get_function().function_name(id).send().await.map_err(sdk))?;
        let Some(got) = got else { return Ok(None) };
        let Some(config) = got.configuration() else { return Ok(None) };
        let code = match (config.package_type(), got.code().and_then(|c| c.image_uri())) {
            (Some(sdk_types::PackageType::Image), uri) => Code::Image { uri: uri.unwrap_or_default().to_string() },
            _ => Code::Zip {
                sha256: config.code_sha256().unwrap_or_default().to_string(),
                size: u64::try_from(config.code_size()).unwrap_or_default(),
            },
        };
        let inputs = Function {
            name: config.function_name().unwrap_or(id).to_string(),
            role: config.role().unwrap_or_default().to_string(),
            code,
            package_type: config.package_type().map(|p| p.as_str().to_string()),
            runtime: config.runtime().map(|r| r.as_str().to_string()),
            handler: config.handler().map(str::to_string),
            description: config.description().map(str::to_string),
            memory_size: config.memory_size(),
            timeout: config.timeout(),
            environment: config
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            architecture: config.architectures().first().map(|a| match a {
                sdk_types::Architecture::Arm64 => Architecture::Arm64,
                _ => Architecture::X86_64,
            }),
            // A Lambda that does not report its logging config (older APIs, the emulator) can't show drift
            // there: echo what we set rather than invent a difference.
            log_group: match config.logging_config() {
                Some(l) => l.log_group().map(str::to_string),
                None => prior.log_group.clone(),
            },
            tags: without_aws_managed(got.tags().map(|t| t.clone().into_iter().collect()).unwrap_or_default()),
            secret_keys: BTreeSet::new(),
        };
        Ok(Some(Observed { inputs, outputs: outputs(aws, config) }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<FunctionOutputs, ProviderError> {
        let lambda = aws.lambda();
        let has = |f: &str| changed.iter().any(|c| c == f);
        let mut last: Option<FunctionConfiguration> = None;

        // Configuration first, then code: Lambda takes one update at a time, so wait between them.
        const CONFIG: &[&str] = &["role", "runtime", "handler", "description", "memory_size", "timeout", "environment", "log_group"];
        if CONFIG.iter().any(|f| has(f)) {
            let env = sdk_types::Environment::builder().set_variables(Some(desired.environment.clone().into_iter().collect())).build();
            retry(
                ROLE_PROPAGATION,
                |e| is_role_not_ready(e) || is_conflict(e),
                || async {
                    lambda
                        .update_function_configuration()
                        .function_name(id)
                        .set_role(has("role").then(|| desired.role.clone()))
                        .set_runtime(desired.runtime.as_deref().filter(|_| has("runtime")).map(sdk_types::Runtime::from))
                        .set_handler(desired.handler.clone().filter(|_| has("handler")))
                        // No description is an empty one to Lambda: unset, the old one is cleared.
                        .set_description(has("description").then(|| desired.description.clone().unwrap_or_default()))
                        .set_memory_size(desired.memory_size.filter(|_| has("memory_size")))
                        .set_timeout(desired.timeout.filter(|_| has("timeout")))
                        .set_environment(has("environment").then(|| env.clone()))
                        .set_logging_config(desired.log_group.as_ref().filter(|_| has("log_group")).map(|g| logging_config(g)))
                        .send()
                        .await
                        .map_err(sdk)
                },
            )
            .await?;
            last = Some(wait_ready(aws, id).await?);
        }

        let code_differs = match (&desired.code, &prior.code) {
            (Code::Zip { sha256: want, .. }, Code::Zip { sha256: have, .. }) => want != have,
            (Code::Image { uri: want }, Code::Image { uri: have }) => want != have,
            _ => has("code"),
        };
        if code_differs || has("architecture") {
            let update = lambda
                .update_function_code()
                .function_name(id)
                .set_architectures(desired.architecture.map(|a| vec![sdk_types::Architecture::from(a.as_str())]));
            let update = match &desired.code {
                Code::Image { uri } => update.image_uri(uri),
                code => {
                    let bytes = code.zip_bytes().map_err(|m| ProviderError::with_code("CodeChanged", m))?.unwrap_or_default();
                    update.zip_file(aws_smithy_types::Blob::new(bytes))
                }
            };
            retry(Duration::from_secs(60), is_conflict, || async { update.clone().send().await.map_err(sdk) }).await?;
            last = Some(wait_ready(aws, id).await?);
        }

        if has("tags") {
            let arn = match &last {
                Some(c) => c.function_arn().map(str::to_string),
                None => None,
            };
            let arn = match arn {
                Some(a) => a,
                None => aws.arn("lambda", &format!("function:{id}")).await?,
            };
            crate::tags::sync(
                &prior.tags,
                &desired.tags,
                |keys| async { lambda.untag_resource().resource(&arn).set_tag_keys(Some(keys)).send().await.map(drop).map_err(sdk) },
                |tags| async {
                    lambda.tag_resource().resource(&arn).set_tags(Some(tags.into_iter().collect())).send().await.map(drop).map_err(sdk)
                },
            )
            .await?;
        }

        let config = match last {
            Some(c) => c,
            None => lambda.get_function_configuration().function_name(id).send().await.map_err(sdk)?.into_config(),
        };
        Ok(outputs(aws, &config))
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let lambda = aws.lambda();
        let deleted =
            retry(Duration::from_secs(60), is_conflict, || async { lambda.delete_function().function_name(id).send().await.map_err(sdk) })
                .await;
        absent_if_not_found(deleted).map(|_| ())
    }

    /// The name is fixed by the code, so the function a killed run made is found by name and recognised
    /// by its `ferroform:stack`/`ferroform:address` tags.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let got = absent_if_not_found(aws.lambda().get_function().function_name(&desired.name).send().await.map_err(sdk))?;
        let ours = got.as_ref().and_then(|g| g.tags()).is_some_and(|t| {
            t.get(TAG_ADDRESS).map(String::as_str) == Some(meta.address.as_str())
                && t.get(TAG_STACK).map(String::as_str) == Some(meta.stack.as_str())
        });
        Ok(ours.then(|| desired.name.clone()))
    }
}

/// Lambda's answer to a role IAM has not finished creating (seconds after `CreateRole`).
fn is_role_not_ready(e: &ProviderError) -> bool {
    e.code.as_deref() == Some("InvalidParameterValueException")
        && (e.message.contains("cannot be assumed by Lambda") || e.message.contains("role defined for the function cannot be assumed"))
}

/// Another update is in progress on the function.
fn is_conflict(e: &ProviderError) -> bool {
    e.code.as_deref() == Some("ResourceConflictException")
}

fn with_role_hint(e: ProviderError) -> ProviderError {
    if is_role_not_ready(&e) {
        e.hint(
            "a new role takes seconds to propagate (retried for 2 minutes); otherwise check its trust policy allows lambda.amazonaws.com",
        )
    } else {
        e
    }
}

fn is_role_arn(s: &str) -> bool {
    let mut parts = s.splitn(6, ':');
    parts.next() == Some("arn")
        && parts.next().is_some_and(|p| p.starts_with("aws"))
        && parts.next() == Some("iam")
        && parts.next() == Some("")
        && parts.next().is_some_and(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        && parts.next().is_some_and(|r| r.starts_with("role/") && r.len() > 5)
}

fn function_code(code: &Code) -> Result<sdk_types::FunctionCode, ProviderError> {
    match code {
        Code::Image { uri } => Ok(sdk_types::FunctionCode::builder().image_uri(uri).build()),
        Code::Zip { .. } => {
            let bytes = code.zip_bytes().map_err(|m| ProviderError::with_code("CodeChanged", m))?.unwrap_or_default();
            Ok(sdk_types::FunctionCode::builder().zip_file(aws_smithy_types::Blob::new(bytes)).build())
        }
        Code::Unavailable { error } => Err(ProviderError::new(error.clone())),
    }
}

fn logging_config(group: &str) -> sdk_types::LoggingConfig {
    sdk_types::LoggingConfig::builder().log_group(group).log_format(sdk_types::LogFormat::Text).build()
}

/// Active and not mid-update; `Err` when Lambda says the create or the last update failed.
fn is_ready(c: &FunctionConfiguration) -> Result<bool, ProviderError> {
    match c.state() {
        Some(State::Failed) => {
            return Err(ProviderError::with_code(
                "FunctionFailed",
                format!("the function is Failed: {}", c.state_reason().unwrap_or("no reason given")),
            ))
        }
        Some(State::Active) | None => {}
        Some(_) => return Ok(false),
    }
    match c.last_update_status() {
        Some(LastUpdateStatus::Failed) => Err(ProviderError::with_code(
            "UpdateFailed",
            format!("the last update failed: {}", c.last_update_status_reason().unwrap_or("no reason given")),
        )),
        Some(LastUpdateStatus::InProgress) => Ok(false),
        _ => Ok(true),
    }
}

async fn wait_ready(aws: &Aws, name: &str) -> Result<FunctionConfiguration, ProviderError> {
    let lambda = aws.lambda();
    wait_for(&format!("Lambda function {name} to be Active and updated"), READY_TIMEOUT, || async {
        let c: FunctionConfiguration = lambda.get_function_configuration().function_name(name).send().await.map_err(sdk)?.into_config();
        Ok(is_ready(&c)?.then_some(c))
    })
    .await
}

fn outputs(aws: &Aws, c: &FunctionConfiguration) -> FunctionOutputs {
    let arn = c.function_arn().unwrap_or_default().to_string();
    FunctionOutputs {
        invoke_arn: invoke_arn(&aws.region(), &arn),
        arn,
        name: c.function_name().unwrap_or_default().to_string(),
        version: c.version().unwrap_or("$LATEST").to_string(),
        code_sha256: c.code_sha256().unwrap_or_default().to_string(),
    }
}

/// The URI API Gateway calls a function by.
pub fn invoke_arn(region: &str, function_arn: &str) -> String {
    let partition = crate::context::partition_of_region(region);
    format!("arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations")
}

/// The create and get-configuration responses carry the same fields; this lets them be handled as one type.
trait IntoConfig {
    fn into_config(self) -> FunctionConfiguration;
}

macro_rules! config_from {
    ($($out:ty),*) => {$(
        impl IntoConfig for $out {
            fn into_config(self) -> FunctionConfiguration {
                let o = self;
                FunctionConfiguration::builder()
                    .set_function_name(o.function_name)
                    .set_function_arn(o.function_arn)
                    .set_version(o.version)
                    .set_code_sha256(o.code_sha256)
                    .set_state(o.state)
                    .set_state_reason(o.state_reason)
                    .set_last_update_status(o.last_update_status)
                    .set_last_update_status_reason(o.last_update_status_reason)
                    .build()
            }
        }
    )*};
}
config_from!(
    aws_sdk_lambda::operation::create_function::CreateFunctionOutput,
    aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput
);

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_fn() -> Function {
        Function::new("pedidos-api")
            .role(ferroform_core::Arn::literal("arn:aws:iam::123456789012:role/api"))
            .code(Code::Zip { sha256: "x".into(), size: 1 })
    }

    fn fields(f: &Function) -> Vec<String> {
        f.validate().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_plain_function_is_valid() {
        assert!(zip_fn().validate().is_empty(), "{:?}", zip_fn().validate());
        assert!(zip_fn()
            .role(ferroform_core::Arn::literal("\u{e000}${ref:role.arn}"))
            .memory_size(10240)
            .timeout(900)
            .validate()
            .is_empty());
    }

    #[test]
    fn names_limits_and_roles_are_checked() {
        assert_eq!(fields(&Function { name: "has space".into(), ..zip_fn() }), ["name"]);
        assert_eq!(fields(&Function { name: "x".repeat(65), ..zip_fn() }), ["name"]);
        assert_eq!(fields(&zip_fn().memory_size(64)), ["memory_size"]);
        assert_eq!(fields(&zip_fn().memory_size(10241)), ["memory_size"]);
        assert_eq!(fields(&zip_fn().timeout(0)), ["timeout"]);
        assert_eq!(fields(&zip_fn().timeout(901)), ["timeout"]);
        assert_eq!(fields(&zip_fn().role(ferroform_core::Arn::literal("arn:aws:iam::123:user/x"))), ["role"]);
        assert_eq!(fields(&zip_fn().role(ferroform_core::Arn::literal(""))), ["role"]);
    }

    #[test]
    fn environment_names_and_reserved_keys_are_refused() {
        assert_eq!(fields(&zip_fn().env("1BAD", "x")), ["environment"]);
        assert_eq!(fields(&zip_fn().env("AWS_REGION", "x")), ["environment"]);
        assert_eq!(fields(&zip_fn().env("BIG", "x".repeat(5000))), ["environment"]);
        assert!(zip_fn().env("TABLE_NAME", "pedidos").validate().is_empty());
    }

    #[test]
    fn a_failed_build_is_a_validation_error() {
        let f = zip_fn().code(Code::Unavailable { error: "cargo exited with 101".into() });
        let errs = f.validate();
        assert_eq!(errs[0].field, "code");
        assert!(errs[0].message.contains("101"));
        assert_eq!(fields(&Function::new("f").role(ferroform_core::Arn::literal("arn:aws:iam::123456789012:role/r"))), ["code"]);
    }

    #[test]
    fn images_take_no_runtime() {
        let img = zip_fn().code(Code::image("123456789012.dkr.ecr.us-east-1.amazonaws.com/hello:1"));
        assert!(img.validate().is_empty());
        assert_eq!(fields(&img.clone().runtime("provided.al2023")), ["runtime"]);
        let mut n = img;
        n.normalize();
        assert_eq!(n.package_type.as_deref(), Some("Image"));
        assert_eq!(n.runtime, None);
        assert_eq!(n.handler, None);
    }

    #[test]
    fn zips_default_to_provided_al2023_and_bootstrap() {
        let mut f = zip_fn();
        f.normalize();
        assert_eq!(f.package_type.as_deref(), Some("Zip"));
        assert_eq!(f.runtime.as_deref(), Some("provided.al2023"));
        assert_eq!(f.handler.as_deref(), Some("bootstrap"));
        let mut py = zip_fn().runtime("python3.12").handler("app.handler");
        py.normalize();
        assert_eq!(py.handler.as_deref(), Some("app.handler"));
    }

    #[test]
    fn unset_settings_mean_lambdas_defaults() {
        let mut f = zip_fn().description("");
        f.normalize();
        assert_eq!((f.memory_size, f.timeout, f.architecture), (Some(128), Some(3), Some(Architecture::X86_64)));
        assert_eq!(f.description, None);
        assert_eq!(f.log_group.as_deref(), Some("/aws/lambda/pedidos-api"));
        let again = f.clone();
        f.normalize();
        assert_eq!(f, again, "normalize is idempotent");
        let mut set =
            zip_fn().memory_size(512).timeout(15).log_group(ferroform_core::Name::literal("/app/api")).architecture(Architecture::Arm64);
        set.normalize();
        assert_eq!((set.memory_size, set.timeout, set.architecture), (Some(512), Some(15), Some(Architecture::Arm64)));
        assert_eq!(set.log_group.as_deref(), Some("/app/api"));
    }

    /// The secret key set is not an input (the engine takes the paths when the function is added); that
    /// plans show `(sensitive)` is checked in the e2e test
    /// `function_settings_removed_from_the_code_go_back_to_lambdas_defaults` (a plan needs the account).
    #[test]
    fn secret_variables_are_sensitive_paths_not_inputs() {
        let f = zip_fn().env("TABLE", "pedidos").secret_env("DB_PASSWORD", "hunter2-the-secret").secret_env("API_KEY", "k");
        assert_eq!(f.sensitive_paths(), ["environment.API_KEY", "environment.DB_PASSWORD"]);
        assert_eq!(f.environment.get("DB_PASSWORD").map(String::as_str), Some("hunter2-the-secret"));
        let json = serde_json::to_value(&f).unwrap();
        assert!(json.get("secret_keys").is_none(), "{json}");
        let back: Function = serde_json::from_value(json).unwrap();
        assert_eq!(back.environment, f.environment);
        assert!(zip_fn().env("TABLE", "pedidos").sensitive_paths().is_empty());
    }

    #[test]
    fn role_errors_are_recognised() {
        let e =
            ProviderError::with_code("InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda.");
        assert!(is_role_not_ready(&e));
        assert!(!is_role_not_ready(&ProviderError::with_code("InvalidParameterValueException", "Unzipped size must be smaller")));
    }

    #[test]
    fn readiness_follows_state_and_last_update() {
        let c =
            |s: Option<State>, u: Option<LastUpdateStatus>| FunctionConfiguration::builder().set_state(s).set_last_update_status(u).build();
        assert!(is_ready(&c(Some(State::Active), None)).unwrap());
        assert!(is_ready(&c(Some(State::Active), Some(LastUpdateStatus::Successful))).unwrap());
        assert!(!is_ready(&c(Some(State::Pending), None)).unwrap());
        assert!(!is_ready(&c(Some(State::Active), Some(LastUpdateStatus::InProgress))).unwrap());
        assert!(is_ready(&c(Some(State::Failed), None)).is_err());
        assert!(is_ready(&c(Some(State::Active), Some(LastUpdateStatus::Failed))).is_err());
    }

    #[test]
    fn invoke_arns_wrap_the_function_arn() {
        assert_eq!(
            invoke_arn("us-east-1", "arn:aws:lambda:us-east-1:123456789012:function:f"),
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:f/invocations"
        );
        assert_eq!(
            invoke_arn("cn-north-1", "arn:aws-cn:lambda:cn-north-1:123456789012:function:f"),
            "arn:aws-cn:apigateway:cn-north-1:lambda:path/2015-03-31/functions/arn:aws-cn:lambda:cn-north-1:123456789012:function:f/invocations"
        );
        assert_eq!(
            invoke_arn("us-east-1", "arn:aws:lambda:us-east-1:123456789012:function:f"),
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:f/invocations"
        );
    }
}
