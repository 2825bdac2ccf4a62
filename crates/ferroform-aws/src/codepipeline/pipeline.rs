//! CodePipeline pipeline. APIs: CreatePipeline, GetPipeline, UpdatePipeline, ListTagsForResource, TagResource,
//! UntagResource, DeletePipeline.
//!
//! Stages and actions are compared stage by stage and action by action (by name), action configurations key
//! by key; any change to the declaration is one UpdatePipeline carrying the whole desired declaration, tags
//! change through TagResource/UntagResource.
//!
//! Defaults (what an unset field means, so removing a setting puts it back): pipeline type `V1` (what
//! CreatePipeline makes when none is given; always sent), run order 1, no tags but the engine's. Left to AWS
//! when unset: nothing. Not managed and not read: execution mode, variables, triggers.
//!
//! Connections: a GitHub source uses a CodeStar/CodeConnections connection made (and authorised in the
//! console) outside the stack, given by its ARN. The emulator (moto 5.2.5) has no connections and runs no
//! actions; it holds the declaration, which is what the tests read back.

use crate::error::{absent_if_not_found, create_once, no_sdk_retry, sdk, Made, CREATE_ONCE};
use crate::tags::{merge_defaults, without_aws_managed, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore, ArtifactStoreType, EncryptionKey, EncryptionKeyType,
    InputArtifact, OutputArtifact, PipelineDeclaration, PipelineType, StageDeclaration, Tag,
};
use ferroform_core::{is_unknown_str, Arn, ArnText, CallMeta, FieldError, Name, Observed, ProviderError, Resource, TAG_ADDRESS, TAG_STACK};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::codebuild::Project;
use crate::iam::Role;
use crate::s3::Bucket;

/// What CreatePipeline makes when no type is given.
pub const DEFAULT_PIPELINE_TYPE: &str = "V1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactStoreSpec {
    /// The S3 bucket artifacts are kept in (same region as the pipeline).
    pub bucket: String,
    /// A customer KMS key (ARN, id or alias) for the artifacts; unset, the account's `aws/s3` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

/// One action: what CodePipeline's ActionTypeId names (category, owner, provider, version), its
/// configuration, and the artifacts it takes and makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub name: String,
    /// `Source`, `Build`, `Test`, `Deploy`, `Approval`, `Invoke`.
    pub category: String,
    /// `AWS`, `ThirdParty` or `Custom`.
    pub owner: String,
    pub provider: String,
    pub version: String,
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
    #[serde(default)]
    pub input_artifacts: Vec<String>,
    #[serde(default)]
    pub output_artifacts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_order: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Changing it forces a new pipeline.
    pub name: String,
    /// The role CodePipeline acts as.
    pub role_arn: String,
    pub artifact_store: ArtifactStoreSpec,
    pub stages: Vec<Stage>,
    /// `V1` or `V2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_type: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct PipelineOutputs => PipelineRefs {
        pub arn: String as ferroform_core::Arn<Pipeline>,
        pub name: String as ferroform_core::Name<Pipeline>,
    }
}

impl Action {
    fn new(name: impl Into<String>, category: &str, owner: &str, provider: &str) -> Self {
        Self {
            name: name.into(),
            category: category.into(),
            owner: owner.into(),
            provider: provider.into(),
            version: "1".into(),
            configuration: BTreeMap::new(),
            input_artifacts: Vec::new(),
            output_artifacts: Vec::new(),
            run_order: None,
        }
    }

    /// A GitHub (or Bitbucket, GitLab) repository through a CodeStar/CodeConnections connection: `repo` is
    /// `OWNER/REPO`; the checkout goes to `output` as a zip (`CODE_ZIP`).
    pub fn connection_source(
        name: impl Into<String>,
        connection_arn: impl ArnText,
        repo: impl Into<String>,
        branch: impl Into<String>,
        output: impl Into<String>,
    ) -> Self {
        Self::new(name, "Source", "AWS", "CodeStarSourceConnection")
            .config("ConnectionArn", connection_arn.arn_text())
            .config("FullRepositoryId", repo)
            .config("BranchName", branch)
            .config("OutputArtifactFormat", "CODE_ZIP")
            .output(output)
    }

    /// Runs a CodeBuild project on `inputs` (the first is its primary source).
    pub fn codebuild<I: Into<String>>(name: impl Into<String>, project: Name<Project>, inputs: impl IntoIterator<Item = I>) -> Self {
        let mut a = Self::new(name, "Build", "AWS", "CodeBuild").config("ProjectName", project);
        a.input_artifacts = inputs.into_iter().map(Into::into).collect();
        if a.input_artifacts.len() > 1 {
            let primary = a.input_artifacts[0].clone();
            a = a.config("PrimarySource", primary);
        }
        a
    }

    /// Waits for someone with `codepipeline:PutApprovalResult` to approve or reject.
    pub fn manual_approval(name: impl Into<String>) -> Self {
        Self::new(name, "Approval", "AWS", "Manual")
    }

    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configuration.insert(key.into(), value.into());
        self
    }
    pub fn output(mut self, artifact: impl Into<String>) -> Self {
        self.output_artifacts.push(artifact.into());
        self
    }
    pub fn run_order(mut self, n: i32) -> Self {
        self.run_order = Some(n);
        self
    }
}

impl Stage {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), actions: Vec::new() }
    }
    pub fn action(mut self, a: Action) -> Self {
        self.actions.push(a);
        self
    }
}

impl Pipeline {
    pub fn new(name: impl Into<String>, role: Arn<Role>, artifact_bucket: Name<Bucket>) -> Self {
        Self {
            name: name.into(),
            role_arn: role.into(),
            artifact_store: ArtifactStoreSpec { bucket: artifact_bucket.into(), kms_key: None },
            stages: Vec::new(),
            pipeline_type: None,
            tags: Tags::new(),
        }
    }
    pub fn kms_key(mut self, key: impl Into<String>) -> Self {
        self.artifact_store.kms_key = Some(key.into());
        self
    }
    pub fn stage(mut self, s: Stage) -> Self {
        self.stages.push(s);
        self
    }
    pub fn pipeline_type(mut self, t: impl Into<String>) -> Self {
        self.pipeline_type = Some(t.into());
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

#[async_trait]
impl Resource for Pipeline {
    const TYPE: &'static str = "aws_codepipeline";
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("name", "name")];
    type Outputs = PipelineOutputs;
    type Refs = PipelineRefs;
    type Context = Aws;

    /// The pipeline's name on both sides (Terraform's `id` is the name too; `name` says so in every version).
    fn terraform_id(attributes: &serde_json::Value) -> Option<String> {
        attributes.get("name").and_then(serde_json::Value::as_str).map(str::to_string)
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        let name_ok = |s: &str| !s.is_empty() && s.len() <= 100 && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !is_unknown_str(&self.name) && !name_ok(&self.name) {
            e.push(FieldError::new("name", format!("`{}`: 1 to 100 letters, digits, `.`, `_` or `-`", self.name)));
        }
        if self.stages.len() < 2 {
            e.push(FieldError::new("stages", format!("{} stage(s): a pipeline needs at least 2", self.stages.len())));
        }
        if self.stages.first().is_some_and(|s| s.actions.iter().any(|a| a.category != "Source")) {
            e.push(FieldError::new("stages", "the first stage may hold only Source actions"));
        }
        if let Some(t) = self.pipeline_type.as_deref().filter(|t| !["V1", "V2"].contains(t)) {
            e.push(FieldError::new("pipeline_type", format!("`{t}`: V1 or V2")));
        }
        // Every input artifact must be made by an action of an earlier stage.
        let mut made: Vec<&str> = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, stage) in self.stages.iter().enumerate() {
            if !names.insert(stage.name.as_str()) {
                e.push(FieldError::new(format!("stages[{i}]"), format!("stage name `{}` is used twice", stage.name)));
            }
            if stage.actions.is_empty() {
                e.push(FieldError::new(format!("stages[\"{}\"]", stage.name), "a stage needs at least one action"));
            }
            for a in &stage.actions {
                for input in &a.input_artifacts {
                    if !made.contains(&input.as_str()) {
                        e.push(FieldError::new(
                            format!("stages[\"{}\"].actions[\"{}\"]", stage.name, a.name),
                            format!("input artifact `{input}` is made by no earlier action"),
                        ));
                    }
                }
            }
            made.extend(stage.actions.iter().flat_map(|a| a.output_artifacts.iter().map(String::as_str)));
        }
        e
    }

    fn normalize(&mut self) {
        self.pipeline_type.get_or_insert_with(|| DEFAULT_PIPELINE_TYPE.to_string());
        for a in self.stages.iter_mut().flat_map(|s| s.actions.iter_mut()) {
            a.run_order.get_or_insert(1);
        }
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // The name is the identity.
    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, PipelineOutputs), ProviderError> {
        let cp = aws.codepipeline();
        let declaration = declaration(desired)?;
        let tags = cp_tags(&desired.tags)?;
        let made = create_once(
            CREATE_ONCE,
            // A role made a moment ago may not be assumable by CodePipeline yet (IAM is eventually consistent).
            |e| e.code.as_deref() == Some("InvalidStructureException") && e.message.contains("not authorized to perform AssumeRole"),
            || {
                cp.create_pipeline()
                    .pipeline(declaration.clone())
                    .set_tags(tags.clone())
                    .customize()
                    .config_override(aws_sdk_codepipeline::config::Builder::default().retry_config(no_sdk_retry()))
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        if let Made::Found(_) = made {
            tracing::debug!(name = %desired.name, "adopting the pipeline a lost answer made");
        }
        Ok((desired.name.clone(), outputs(aws, &desired.name).await?))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let cp = aws.codepipeline();
        let Some(out) = absent_if_not_found(cp.get_pipeline().name(id).send().await.map_err(sdk))? else { return Ok(None) };
        let arn = out.metadata().and_then(|m| m.pipeline_arn()).unwrap_or_default().to_string();
        let Some(p) = out.pipeline else { return Ok(None) };
        let Some(listed) = absent_if_not_found(cp.list_tags_for_resource().resource_arn(&arn).send().await.map_err(sdk))? else {
            return Ok(None);
        };
        let tags: Tags = listed.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
        let store = p.artifact_store();
        let inputs = Pipeline {
            name: p.name().to_string(),
            role_arn: p.role_arn().to_string(),
            artifact_store: ArtifactStoreSpec {
                bucket: store.map(|s| s.location()).unwrap_or_default().to_string(),
                kms_key: store.and_then(|s| s.encryption_key()).map(|k| k.id().to_string()),
            },
            stages: p
                .stages()
                .iter()
                .map(|s| Stage { name: s.name().to_string(), actions: s.actions().iter().map(action_of).collect() })
                .collect(),
            // Not in a declaration read back: the type CreatePipeline was given stands.
            pipeline_type: p.pipeline_type().map(|t| t.as_str().to_string()).or_else(|| prior.pipeline_type.clone()),
            tags: without_aws_managed(tags),
        };
        Ok(Some(Observed { inputs, outputs: PipelineOutputs { arn, name: id.to_string() } }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<PipelineOutputs, ProviderError> {
        let cp = aws.codepipeline();
        if changed.iter().any(|f| f != "tags") {
            cp.update_pipeline().pipeline(declaration(desired)?).send().await.map_err(sdk)?;
        }
        let out = outputs(aws, id).await?;
        if changed.iter().any(|f| f == "tags") {
            let arn = &out.arn;
            let cp = &cp;
            crate::tags::sync(
                &prior.tags,
                &desired.tags,
                |keys| async move { cp.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send().await.map(drop).map_err(sdk) },
                |tags| async move { cp.tag_resource().resource_arn(arn).set_tags(cp_tags(&tags)?).send().await.map(drop).map_err(sdk) },
            )
            .await?;
        }
        Ok(out)
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        absent_if_not_found(aws.codepipeline().delete_pipeline().name(id).send().await.map_err(sdk)).map(drop)
    }

    /// The name is fixed by the code: the pipeline of that name is ours when tagged with our stack and address.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let Some(found) = Self::read(aws, &desired.name, desired).await? else { return Ok(None) };
        let tags = &found.inputs.tags;
        let ours = tags.get(TAG_STACK) == Some(&meta.stack) && tags.get(TAG_ADDRESS) == Some(&meta.address);
        Ok(ours.then(|| desired.name.clone()))
    }
}

fn action_of(a: &ActionDeclaration) -> Action {
    let t = a.action_type_id();
    Action {
        name: a.name().to_string(),
        category: t.map(|t| t.category().as_str()).unwrap_or_default().to_string(),
        owner: t.map(|t| t.owner().as_str()).unwrap_or_default().to_string(),
        provider: t.map(|t| t.provider()).unwrap_or_default().to_string(),
        version: t.map(|t| t.version()).unwrap_or_default().to_string(),
        configuration: a.configuration().map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default(),
        input_artifacts: a.input_artifacts().iter().map(|i| i.name().to_string()).collect(),
        output_artifacts: a.output_artifacts().iter().map(|o| o.name().to_string()).collect(),
        run_order: Some(a.run_order().unwrap_or(1)),
    }
}

/// The SDK's declaration of a pipeline.
fn declaration(p: &Pipeline) -> Result<PipelineDeclaration, ProviderError> {
    let built = |e: aws_smithy_types::error::operation::BuildError| ProviderError::new(e.to_string());
    let key = match &p.artifact_store.kms_key {
        Some(id) => Some(EncryptionKey::builder().id(id).r#type(EncryptionKeyType::Kms).build().map_err(built)?),
        None => None,
    };
    let store = ArtifactStore::builder()
        .r#type(ArtifactStoreType::S3)
        .location(&p.artifact_store.bucket)
        .set_encryption_key(key)
        .build()
        .map_err(built)?;
    let mut stages = Vec::new();
    for s in &p.stages {
        let mut actions = Vec::new();
        for a in &s.actions {
            let type_id = ActionTypeId::builder()
                .category(ActionCategory::from(a.category.as_str()))
                .owner(ActionOwner::from(a.owner.as_str()))
                .provider(&a.provider)
                .version(&a.version)
                .build()
                .map_err(built)?;
            let inputs = a.input_artifacts.iter().map(|n| InputArtifact::builder().name(n).build()).collect::<Result<Vec<_>, _>>();
            let outputs = a.output_artifacts.iter().map(|n| OutputArtifact::builder().name(n).build()).collect::<Result<Vec<_>, _>>();
            actions.push(
                ActionDeclaration::builder()
                    .name(&a.name)
                    .action_type_id(type_id)
                    .run_order(a.run_order.unwrap_or(1))
                    .set_configuration(Some(a.configuration.clone().into_iter().collect()))
                    .set_input_artifacts(Some(inputs.map_err(built)?))
                    .set_output_artifacts(Some(outputs.map_err(built)?))
                    .build()
                    .map_err(built)?,
            );
        }
        stages.push(StageDeclaration::builder().name(&s.name).set_actions(Some(actions)).build().map_err(built)?);
    }
    PipelineDeclaration::builder()
        .name(&p.name)
        .role_arn(&p.role_arn)
        .artifact_store(store)
        .set_stages(Some(stages))
        .pipeline_type(PipelineType::from(p.pipeline_type.as_deref().unwrap_or(DEFAULT_PIPELINE_TYPE)))
        .build()
        .map_err(built)
}

fn cp_tags(tags: &Tags) -> Result<Option<Vec<Tag>>, ProviderError> {
    if tags.is_empty() {
        return Ok(None);
    }
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| ProviderError::new(e.to_string())))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

async fn outputs(aws: &Aws, name: &str) -> Result<PipelineOutputs, ProviderError> {
    Ok(PipelineOutputs { arn: aws.arn("codepipeline", name).await?, name: name.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> Pipeline {
        Pipeline::new("app", Arn::literal("arn:aws:iam::1:role/p"), Name::literal("artifacts"))
            .stage(Stage::new("Source").action(Action::connection_source(
                "GitHub",
                "arn:aws:codeconnections:us-east-1:1:connection/x",
                "acme/app",
                "main",
                "source",
            )))
            .stage(Stage::new("Test").action(Action::codebuild("Test", Name::literal("app-test"), ["source"]).output("tested")))
    }

    #[test]
    fn declarations_are_checked_before_any_call() {
        assert!(pipeline().validate().is_empty(), "{:?}", pipeline().validate());
        let one_stage = Pipeline { stages: pipeline().stages[..1].to_vec(), ..pipeline() };
        assert_eq!(one_stage.validate()[0].field, "stages");
        let missing_input =
            pipeline().stage(Stage::new("Apply").action(Action::codebuild("Apply", Name::literal("app-apply"), ["source", "plan"])));
        let errs = missing_input.validate();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "stages[\"Apply\"].actions[\"Apply\"]");
        assert!(errs[0].message.contains("`plan`"));
    }

    #[test]
    fn actions_name_their_providers_and_configuration() {
        let p = pipeline();
        let src = &p.stages[0].actions[0];
        assert_eq!((src.category.as_str(), src.provider.as_str()), ("Source", "CodeStarSourceConnection"));
        assert_eq!(src.configuration["FullRepositoryId"], "acme/app");
        let two = Action::codebuild("Apply", Name::literal("p"), ["source", "plan"]);
        assert_eq!(two.configuration["PrimarySource"], "source");
        let mut n = p.clone();
        n.normalize();
        assert_eq!(n.pipeline_type.as_deref(), Some("V1"));
        assert!(n.stages.iter().flat_map(|s| &s.actions).all(|a| a.run_order == Some(1)));
        let d = declaration(&n).map_err(|e| e.to_string());
        assert!(d.is_ok(), "{d:?}");
    }
}
