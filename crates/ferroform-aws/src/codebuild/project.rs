//! CodeBuild project. APIs: CreateProject, BatchGetProjects, UpdateProject, DeleteProject.
//!
//! CodeBuild has no tagging API of its own: tags, like every other setting, change through one UpdateProject
//! call carrying the whole desired project (the call replaces what it is given).
//!
//! Defaults (what an unset field means, so removing a setting puts it back): no description, timeout 60
//! minutes (always sent), CloudWatch logs on in CodeBuild's own group (`/aws/codebuild/NAME`), privileged mode
//! off, no environment variables, no tags but the engine's. Left to AWS when unset: nothing. Settings this
//! type does not manage (VPC, cache, queued timeout, encryption key, secondary sources) stay at CodeBuild's
//! defaults and are not read.
//!
//! A source or artifact `location` is AWS's own field: CodePipeline ignores it for `CODEPIPELINE` sources
//! and artifacts (the pipeline's action decides), and it must not be given for `NO_SOURCE`/`NO_ARTIFACTS`.
//!
//! Emulator (moto 5.2.5) gaps: no UpdateProject (an in-place change fails there with moto's error; on AWS it
//! is one call), and CreateProject there wants a `location` for every source and artifact type, so its tests
//! give one (allowed for `CODEPIPELINE`, which AWS ignores) and `NO_SOURCE` projects are not tested there.

use crate::error::{absent_if_not_found, create_once, no_sdk_retry, sdk, Made, CREATE_ONCE};
use crate::tags::{merge_defaults, without_aws_managed, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_codebuild::types::{
    ArtifactsType, CloudWatchLogsConfig, ComputeType, EnvironmentType, EnvironmentVariable, EnvironmentVariableType, LogsConfig,
    LogsConfigStatusType, ProjectArtifacts, ProjectEnvironment, ProjectSource, SourceType, Tag,
};
use ferroform_core::{is_unknown_str, Arn, CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS, TAG_STACK};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::Buildspec;
use crate::iam::Role;

/// CodeBuild's timeout when none is given, in minutes.
pub const DEFAULT_TIMEOUT_MINUTES: i32 = 60;
/// The compute types CodeBuild's on-demand fleets take.
pub const COMPUTE_TYPES: &[&str] = &[
    "BUILD_GENERAL1_SMALL",
    "BUILD_GENERAL1_MEDIUM",
    "BUILD_GENERAL1_LARGE",
    "BUILD_GENERAL1_XLARGE",
    "BUILD_GENERAL1_2XLARGE",
    "BUILD_LAMBDA_1GB",
    "BUILD_LAMBDA_2GB",
    "BUILD_LAMBDA_4GB",
    "BUILD_LAMBDA_8GB",
    "BUILD_LAMBDA_10GB",
];
/// The environment types.
pub const ENVIRONMENT_TYPES: &[&str] = &[
    "LINUX_CONTAINER",
    "LINUX_GPU_CONTAINER",
    "ARM_CONTAINER",
    "WINDOWS_CONTAINER",
    "WINDOWS_SERVER_2019_CONTAINER",
    "WINDOWS_SERVER_2022_CONTAINER",
    "LINUX_LAMBDA_CONTAINER",
    "ARM_LAMBDA_CONTAINER",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SourceKind {
    /// The source comes from the pipeline action that runs the project.
    Codepipeline,
    /// No source: the buildspec is all there is.
    NoSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    #[serde(rename = "type")]
    pub kind: SourceKind,
    /// The buildspec's YAML ([`Buildspec::to_yaml`]).
    pub buildspec: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ArtifactsKind {
    /// The buildspec's artifacts go to the pipeline, as the action's output artifact.
    Codepipeline,
    NoArtifacts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifacts {
    #[serde(rename = "type")]
    pub kind: ArtifactsKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// `aws/codebuild/amazonlinux-x86_64-standard:5.0`, or an image in ECR.
    pub image: String,
    pub compute_type: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Lets builds run Docker (`docker build`).
    #[serde(default)]
    pub privileged_mode: bool,
    /// Plain-text variables (a secret belongs in Secrets Manager, not here: these show in the console).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// Where build logs go in CloudWatch Logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logs {
    pub enabled: bool,
    /// Unset: `/aws/codebuild/NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Changing it forces a new project.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The role builds run as.
    pub service_role: String,
    pub source: Source,
    pub artifacts: Artifacts,
    pub environment: Environment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Logs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<i32>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct ProjectOutputs => ProjectRefs {
        pub arn: String as ferroform_core::Arn<Project>,
        pub name: String as ferroform_core::Name<Project>,
    }
}

impl Source {
    /// Run by a pipeline action, with this buildspec.
    pub fn codepipeline(buildspec: &Buildspec) -> Result<Self, String> {
        Ok(Self { kind: SourceKind::Codepipeline, buildspec: buildspec.to_yaml()?, location: None })
    }
    /// No source code, only the buildspec.
    pub fn no_source(buildspec: &Buildspec) -> Result<Self, String> {
        Ok(Self { kind: SourceKind::NoSource, buildspec: buildspec.to_yaml()?, location: None })
    }
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }
}

impl Artifacts {
    pub fn codepipeline() -> Self {
        Self { kind: ArtifactsKind::Codepipeline, location: None }
    }
    pub fn none() -> Self {
        Self { kind: ArtifactsKind::NoArtifacts, location: None }
    }
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }
}

impl Environment {
    /// A Linux container of `compute_type` (`BUILD_GENERAL1_SMALL`) on `image`.
    pub fn linux(image: impl Into<String>, compute_type: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            compute_type: compute_type.into(),
            kind: "LINUX_CONTAINER".into(),
            privileged_mode: false,
            variables: BTreeMap::new(),
        }
    }
    pub fn privileged(mut self, yes: bool) -> Self {
        self.privileged_mode = yes;
        self
    }
    pub fn var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.insert(name.into(), value.into());
        self
    }
}

impl Project {
    pub fn new(name: impl Into<String>, service_role: Arn<Role>, source: Source, environment: Environment) -> Self {
        Self {
            name: name.into(),
            description: None,
            service_role: service_role.into(),
            source,
            artifacts: Artifacts::none(),
            environment,
            logs: None,
            timeout_minutes: None,
            tags: Tags::new(),
        }
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    pub fn artifacts(mut self, a: Artifacts) -> Self {
        self.artifacts = a;
        self
    }
    /// Build logs in this CloudWatch group (and stream prefix).
    pub fn log_group(mut self, group: ferroform_core::Name<crate::logs::LogGroup>, stream: Option<String>) -> Self {
        self.logs = Some(Logs { enabled: true, group_name: Some(group.into()), stream_name: stream });
        self
    }
    pub fn timeout_minutes(mut self, minutes: i32) -> Self {
        self.timeout_minutes = Some(minutes);
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

#[async_trait]
impl Resource for Project {
    const TYPE: &'static str = "aws_codebuild_project";
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("name", "name")];
    type Outputs = ProjectOutputs;
    type Refs = ProjectRefs;
    type Context = Aws;

    /// Terraform's id is the project's ARN when Terraform made it (its name when imported by name); here it
    /// is the name.
    fn terraform_id(attributes: &serde_json::Value) -> Option<String> {
        attributes.get("name").and_then(serde_json::Value::as_str).map(str::to_string)
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if !is_unknown_str(&self.name) {
            let ok = self.name.len() >= 2
                && self.name.len() <= 255
                && self.name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                e.push(FieldError::new(
                    "name",
                    format!("`{}`: 2 to 255 letters, digits, `-` or `_`, starting with a letter or digit", self.name),
                ));
            }
        }
        if let Some(t) = self.timeout_minutes {
            if !(5..=2160).contains(&t) {
                e.push(FieldError::new("timeout_minutes", format!("{t}: CodeBuild takes 5 to 2160 minutes")));
            }
        }
        let env = &self.environment;
        if !is_unknown_str(&env.compute_type) && !COMPUTE_TYPES.contains(&env.compute_type.as_str()) {
            e.push(FieldError::new("environment.compute_type", format!("`{}` is not one of {COMPUTE_TYPES:?}", env.compute_type)));
        }
        if !is_unknown_str(&env.kind) && !ENVIRONMENT_TYPES.contains(&env.kind.as_str()) {
            e.push(FieldError::new("environment.type", format!("`{}` is not one of {ENVIRONMENT_TYPES:?}", env.kind)));
        }
        if env.image.is_empty() {
            e.push(FieldError::new("environment.image", "names no image"));
        }
        if !is_unknown_str(&self.source.buildspec) {
            if let Err(why) = Buildspec::from_yaml(&self.source.buildspec) {
                e.push(FieldError::new("source.buildspec", why));
            }
        }
        if self.source.kind == SourceKind::NoSource && self.source.location.is_some() {
            e.push(FieldError::new("source.location", "a NO_SOURCE project has no location"));
        }
        if self.artifacts.kind == ArtifactsKind::NoArtifacts && self.artifacts.location.is_some() {
            e.push(FieldError::new("artifacts.location", "NO_ARTIFACTS takes no location"));
        }
        if self.tags.len() > 50 {
            e.push(FieldError::new("tags", format!("{} tags; CodeBuild allows 50 (the engine adds 2)", self.tags.len())));
        }
        e
    }

    fn normalize(&mut self) {
        self.timeout_minutes.get_or_insert(DEFAULT_TIMEOUT_MINUTES);
        self.logs.get_or_insert(Logs { enabled: true, group_name: None, stream_name: None });
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // The name is the identity.
    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, ProjectOutputs), ProviderError> {
        let cb = aws.codebuild();
        let spec = Spec::of(desired)?;
        let made = create_once(
            CREATE_ONCE,
            // A role made a moment ago may not be assumable by CodeBuild yet (IAM is eventually consistent).
            role_not_ready,
            || {
                cb.create_project()
                    .name(&desired.name)
                    .set_description(desired.description.clone())
                    .service_role(&desired.service_role)
                    .source(spec.source.clone())
                    .artifacts(spec.artifacts.clone())
                    .environment(spec.environment.clone())
                    .logs_config(spec.logs.clone())
                    .timeout_in_minutes(spec.timeout)
                    .set_tags(spec.tags.clone())
                    .customize()
                    .config_override(aws_sdk_codebuild::config::Builder::default().retry_config(no_sdk_retry()))
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let arn = match made {
            Made::Answered(out) => out.project.and_then(|p| p.arn).unwrap_or_default(),
            Made::Found(name) => get(aws, &name).await?.and_then(|p| p.arn).unwrap_or_default(),
        };
        Ok((desired.name.clone(), ProjectOutputs { arn, name: desired.name.clone() }))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let Some(p) = get(aws, id).await? else { return Ok(None) };
        Ok(Some(observe(p, prior)))
    }

    /// One UpdateProject with the whole desired project (tags included: CodeBuild replaces them).
    async fn update(
        aws: &Aws,
        id: &str,
        _prior: &Self,
        desired: &Self,
        _changed: &[String],
        _meta: &CallMeta,
    ) -> Result<ProjectOutputs, ProviderError> {
        let spec = Spec::of(desired)?;
        let out = aws
            .codebuild()
            .update_project()
            .name(id)
            // An empty description clears one set before.
            .description(desired.description.clone().unwrap_or_default())
            .service_role(&desired.service_role)
            .source(spec.source)
            .artifacts(spec.artifacts)
            .environment(spec.environment)
            .logs_config(spec.logs)
            .timeout_in_minutes(spec.timeout)
            .set_tags(Some(spec.tags.unwrap_or_default()))
            .send()
            .await
            .map_err(sdk)?;
        let arn = out.project.and_then(|p| p.arn).unwrap_or_default();
        Ok(ProjectOutputs { arn, name: id.to_string() })
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        absent_if_not_found(aws.codebuild().delete_project().name(id).send().await.map_err(sdk)).map(drop)
    }

    /// The name is fixed by the code: the project of that name is ours when tagged with our stack and address.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let Some(p) = get(aws, &desired.name).await? else { return Ok(None) };
        let tag = |k: &str| p.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value());
        let ours = tag(TAG_STACK) == Some(meta.stack.as_str()) && tag(TAG_ADDRESS) == Some(meta.address.as_str());
        Ok(ours.then(|| desired.name.clone()))
    }
}

/// CodeBuild's refusal while a new role is not yet assumable by it.
fn role_not_ready(e: &ProviderError) -> bool {
    e.code.as_deref() == Some("InvalidInputException") && e.message.contains("not authorized to perform: sts:AssumeRole")
}

/// The SDK's shapes of a project's settings.
struct Spec {
    source: ProjectSource,
    artifacts: ProjectArtifacts,
    environment: ProjectEnvironment,
    logs: LogsConfig,
    timeout: i32,
    tags: Option<Vec<Tag>>,
}

impl Spec {
    fn of(p: &Project) -> Result<Self, ProviderError> {
        let built = |e: aws_smithy_types::error::operation::BuildError| ProviderError::new(e.to_string());
        let source = ProjectSource::builder()
            .r#type(match p.source.kind {
                SourceKind::Codepipeline => SourceType::Codepipeline,
                SourceKind::NoSource => SourceType::NoSource,
            })
            .buildspec(&p.source.buildspec)
            .set_location(p.source.location.clone())
            .build()
            .map_err(built)?;
        let artifacts = ProjectArtifacts::builder()
            .r#type(match p.artifacts.kind {
                ArtifactsKind::Codepipeline => ArtifactsType::Codepipeline,
                ArtifactsKind::NoArtifacts => ArtifactsType::NoArtifacts,
            })
            .set_location(p.artifacts.location.clone())
            .build()
            .map_err(built)?;
        let env = &p.environment;
        let variables = env
            .variables
            .iter()
            .map(|(k, v)| EnvironmentVariable::builder().name(k).value(v).r#type(EnvironmentVariableType::Plaintext).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(built)?;
        let environment = ProjectEnvironment::builder()
            .r#type(EnvironmentType::from(env.kind.as_str()))
            .image(&env.image)
            .compute_type(ComputeType::from(env.compute_type.as_str()))
            .privileged_mode(env.privileged_mode)
            .set_environment_variables(Some(variables))
            .build()
            .map_err(built)?;
        let logs = p.logs.clone().unwrap_or(Logs { enabled: true, group_name: None, stream_name: None });
        let cloud_watch = CloudWatchLogsConfig::builder()
            .status(if logs.enabled { LogsConfigStatusType::Enabled } else { LogsConfigStatusType::Disabled })
            .set_group_name(logs.group_name)
            .set_stream_name(logs.stream_name)
            .build()
            .map_err(built)?;
        let tags = (!p.tags.is_empty()).then(|| p.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect());
        Ok(Spec {
            source,
            artifacts,
            environment,
            logs: LogsConfig::builder().cloud_watch_logs(cloud_watch).build(),
            timeout: p.timeout_minutes.unwrap_or(DEFAULT_TIMEOUT_MINUTES),
            tags,
        })
    }
}

async fn get(aws: &Aws, name: &str) -> Result<Option<aws_sdk_codebuild::types::Project>, ProviderError> {
    let out = aws.codebuild().batch_get_projects().names(name).send().await.map_err(sdk)?;
    Ok(out.projects.unwrap_or_default().into_iter().find(|p| p.name() == Some(name)))
}

/// The live project in the shape of the desired one.
fn observe(p: aws_sdk_codebuild::types::Project, prior: &Project) -> Observed<Project> {
    let name = p.name().unwrap_or_default().to_string();
    let source = p.source();
    let kind = match source.map(|s| s.r#type()) {
        Some(SourceType::NoSource) => SourceKind::NoSource,
        _ => SourceKind::Codepipeline,
    };
    let artifacts_kind = match p.artifacts().map(|a| a.r#type()) {
        Some(ArtifactsType::NoArtifacts) => ArtifactsKind::NoArtifacts,
        _ => ArtifactsKind::Codepipeline,
    };
    let env = p.environment();
    let cw = p.logs_config().and_then(|l| l.cloud_watch_logs());
    let tags: Tags = p.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect();
    let inputs = Project {
        name: name.clone(),
        description: p.description().filter(|d| !d.is_empty()).map(str::to_string),
        service_role: p.service_role().unwrap_or_default().to_string(),
        source: Source {
            kind,
            buildspec: source.and_then(|s| s.buildspec()).unwrap_or_default().to_string(),
            location: source.and_then(|s| s.location()).filter(|l| !l.is_empty()).map(str::to_string),
        },
        artifacts: Artifacts {
            kind: artifacts_kind,
            location: p.artifacts().and_then(|a| a.location()).filter(|l| !l.is_empty()).map(str::to_string),
        },
        environment: Environment {
            image: env.map(|e| e.image()).unwrap_or_default().to_string(),
            compute_type: env.map(|e| e.compute_type().as_str()).unwrap_or_default().to_string(),
            kind: env.map(|e| e.r#type().as_str()).unwrap_or_default().to_string(),
            privileged_mode: env.and_then(|e| e.privileged_mode()).unwrap_or(false),
            variables: env
                .map(|e| e.environment_variables().iter().map(|v| (v.name().to_string(), v.value().to_string())).collect())
                .unwrap_or_default(),
        },
        // No logs configuration read back means CodeBuild's default: on, in its own group.
        logs: Some(match cw {
            Some(c) => Logs {
                enabled: *c.status() != LogsConfigStatusType::Disabled,
                group_name: c.group_name().filter(|g| !g.is_empty()).map(str::to_string),
                stream_name: c.stream_name().filter(|g| !g.is_empty()).map(str::to_string),
            },
            None => Logs { enabled: true, group_name: None, stream_name: None },
        }),
        timeout_minutes: p.timeout_in_minutes().or(prior.timeout_minutes),
        tags: without_aws_managed(tags),
    };
    Observed { inputs, outputs: ProjectOutputs { arn: p.arn().unwrap_or_default().to_string(), name } }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Project {
        let spec = Buildspec::new().build(["cargo test"]);
        Project::new(
            "app-test",
            Arn::literal("arn:aws:iam::123456789012:role/build"),
            Source::codepipeline(&spec).unwrap_or_else(|e| panic!("{e}")),
            Environment::linux("aws/codebuild/amazonlinux-x86_64-standard:5.0", "BUILD_GENERAL1_SMALL"),
        )
        .artifacts(Artifacts::codepipeline())
    }

    #[test]
    fn validation_names_codebuilds_rules() {
        assert!(project().validate().is_empty(), "{:?}", project().validate());
        let mut bad = project().timeout_minutes(3);
        bad.name = "-x".into();
        bad.environment.compute_type = "HUGE".into();
        bad.source.buildspec = "phases: [".into();
        let fields: Vec<String> = bad.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "timeout_minutes", "environment.compute_type", "source.buildspec"]);
        let mut no_source = project();
        no_source.source = Source::no_source(&Buildspec::new()).unwrap_or_else(|e| panic!("{e}")).location("x");
        assert_eq!(no_source.validate()[0].field, "source.location");
    }

    #[test]
    fn unset_settings_mean_codebuilds_defaults() {
        let mut p = project();
        p.normalize();
        assert_eq!(p.timeout_minutes, Some(60));
        assert_eq!(p.logs, Some(Logs { enabled: true, group_name: None, stream_name: None }));
        let again = p.clone();
        p.normalize();
        assert_eq!(p, again);
    }
}
