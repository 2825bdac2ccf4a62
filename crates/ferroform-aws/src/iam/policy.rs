//! IAM managed policy. APIs: CreatePolicy, GetPolicy, GetPolicyVersion, CreatePolicyVersion,
//! ListPolicyVersions, DeletePolicyVersion, TagPolicy, UntagPolicy, DeletePolicy.
//!
//! A document change makes a new default version; at IAM's limit of five versions the oldest non-default
//! one is deleted first. A read costs 2 calls (GetPolicy, GetPolicyVersion of the default version).
//!
//! Every optional field is compared whether the code sets it or not; unset, it means IAM's default: path
//! `/`, no description (IAM can't change one: removing it replaces the policy), no tags. Left to AWS when
//! unset: nothing.

use super::policy_document::PolicyDocument;
use super::{check_name, check_tags, iam_tags, sdk_tags};
use crate::error::{absent_if_not_found, create_once, sdk, Made, Once, CREATE_ONCE};
use crate::tags::{merge_defaults, without_aws_managed, Tags};
use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS};
use serde::{Deserialize, Serialize};

/// IAM keeps at most this many versions of a managed policy.
pub const MAX_VERSIONS: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Changing it forces a new policy.
    pub name: String,
    /// `/` unless set. Changing it forces a new policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// IAM can't change it: changing it forces a new policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub document: PolicyDocument,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct PolicyOutputs => PolicyRefs {
        pub arn: String as ferroform_core::Arn<Policy>,
        pub name: String as ferroform_core::Name<Policy>,
        /// The policy's unique id (`ANPA...`).
        pub id: String as ferroform_core::Id<Policy>,
    }
}

impl Policy {
    pub fn new(name: impl Into<String>, document: PolicyDocument) -> Self {
        Self { name: name.into(), path: None, description: None, document, tags: Tags::new() }
    }
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
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
impl Resource for Policy {
    const TYPE: &'static str = "aws_iam_policy";
    const REPLACE_FIELDS: &'static [&'static str] = &["name", "path", "description"];
    type Outputs = PolicyOutputs;
    type Refs = PolicyRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check_name(&mut e, "name", &self.name, 128);
        if let Some(p) = &self.path {
            if !is_unknown_str(p) && (!p.starts_with('/') || !p.ends_with('/') || p.len() > 512) {
                e.push(FieldError::new("path", format!("`{p}` must start and end with `/` and be at most 512 characters long")));
            }
        }
        if let Some(d) = &self.description {
            if d.chars().count() > 1000 {
                e.push(FieldError::new("description", "is longer than 1000 characters"));
            }
        }
        self.document.validate_identity("document", &mut e);
        if !self.document.statements.is_empty() && !crate::iam::has_unknown(&self.document) && self.document.to_json().len() > 6144 {
            e.push(FieldError::new("document", "is larger than the 6,144 characters IAM allows a managed policy"));
        }
        check_tags(&mut e, &self.tags);
        e
    }

    fn normalize(&mut self) {
        self.document.normalize();
        if self.description.as_deref() == Some("") {
            self.description = None;
        }
        self.path.get_or_insert_with(|| "/".to_string());
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, PolicyOutputs), ProviderError> {
        let iam = aws.iam();
        let tags = iam_tags(&desired.tags)?;
        let made = create_once(
            CREATE_ONCE,
            |_| false,
            || {
                iam.create_policy()
                    .policy_name(&desired.name)
                    .set_path(desired.path.clone())
                    .set_description(desired.description.clone())
                    .policy_document(desired.document.to_json())
                    .set_tags(tags.clone())
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let p = match made {
            Made::Answered(out) => out.policy,
            Made::Found(arn) => iam.get_policy().policy_arn(arn).send().await.map_err(sdk)?.policy,
        };
        let p = p.ok_or_else(|| ProviderError::new("CreatePolicy returned no policy"))?;
        let arn = p.arn().ok_or_else(|| ProviderError::new("CreatePolicy returned no ARN"))?.to_string();
        Ok((arn.clone(), PolicyOutputs { arn, name: desired.name.clone(), id: p.policy_id().unwrap_or_default().to_string() }))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let iam = aws.iam();
        let Some(out) = absent_if_not_found(iam.get_policy().policy_arn(id).send().await.map_err(sdk))? else { return Ok(None) };
        let Some(p) = out.policy else { return Ok(None) };
        let version = p.default_version_id().unwrap_or("v1");
        let Some(v) = absent_if_not_found(iam.get_policy_version().policy_arn(id).version_id(version).send().await.map_err(sdk))? else {
            return Ok(None);
        };
        let text = v.policy_version().and_then(|v| v.document()).unwrap_or_default();
        let document = PolicyDocument::parse_aws(text).map_err(|e| ProviderError::new(format!("policy {id}: {e}")))?;
        // IAM's spelling of what was applied (action case, statement order) is no diff.
        let document = PolicyDocument::prior_if_equivalent(document, &prior.document);
        let name = p.policy_name().unwrap_or_default().to_string();
        Ok(Some(Observed {
            inputs: Policy {
                name: name.clone(),
                path: p.path().map(str::to_string),
                description: p.description().filter(|d| !d.is_empty()).map(str::to_string),
                document,
                tags: without_aws_managed(sdk_tags(p.tags())),
            },
            outputs: PolicyOutputs { arn: id.to_string(), name, id: p.policy_id().unwrap_or_default().to_string() },
        }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<PolicyOutputs, ProviderError> {
        let iam = aws.iam();
        if changed.iter().any(|f| f == "document") {
            new_default_version(aws, id, &desired.document).await?;
        }
        if changed.iter().any(|f| f == "tags") {
            let iam = &iam;
            crate::tags::sync(
                &prior.tags,
                &desired.tags,
                |keys| async { iam.untag_policy().policy_arn(id).set_tag_keys(Some(keys)).send().await.map(drop).map_err(sdk) },
                |tags| async move { iam.tag_policy().policy_arn(id).set_tags(iam_tags(&tags)?).send().await.map(drop).map_err(sdk) },
            )
            .await?;
        }
        let out = iam.get_policy().policy_arn(id).send().await.map_err(sdk)?;
        let policy_id = out.policy().and_then(|p| p.policy_id()).unwrap_or_default().to_string();
        Ok(PolicyOutputs { arn: id.to_string(), name: desired.name.clone(), id: policy_id })
    }

    /// Deletes the non-default versions (IAM requires it), then the policy. Still attached somewhere
    /// outside the stack: IAM refuses with `DeleteConflict`.
    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let iam = aws.iam();
        let Some(versions) = absent_if_not_found(iam.list_policy_versions().policy_arn(id).send().await.map_err(sdk))? else {
            return Ok(());
        };
        for v in versions.versions().iter().filter(|v| !v.is_default_version()) {
            if let Some(vid) = v.version_id() {
                absent_if_not_found(iam.delete_policy_version().policy_arn(id).version_id(vid).send().await.map_err(sdk))?;
            }
        }
        match absent_if_not_found(iam.delete_policy().policy_arn(id).send().await.map_err(sdk)) {
            Err(e) if e.code.as_deref() == Some("DeleteConflict") => {
                Err(e.hint("the policy is still attached to a user, group or role outside this stack; detach it there first"))
            }
            other => other.map(|_| ()),
        }
    }

    /// The ARN follows from account, path and name: GetPolicy by it, ours when tagged with our address.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let path = desired.path.as_deref().unwrap_or("/");
        let arn = format!("arn:{}:iam::{}:policy{path}{}", aws.partition().await?, aws.account_id().await?, desired.name);
        let Some(out) = absent_if_not_found(aws.iam().get_policy().policy_arn(&arn).send().await.map_err(sdk))? else {
            return Ok(None);
        };
        let ours = out.policy().map(|p| sdk_tags(p.tags()).get(TAG_ADDRESS) == Some(&meta.address)).unwrap_or(false);
        Ok(ours.then_some(arn))
    }
}

/// CreatePolicyVersion as the default; at the version limit, deletes the oldest non-default version and
/// tries again (one call in the common case). Sent once ([`create_once`]): a second send after a lost
/// answer would make a second version (and use up the five), so first it looks whether the default
/// version already holds `doc`.
async fn new_default_version(aws: &Aws, arn: &str, doc: &PolicyDocument) -> Result<(), ProviderError> {
    let (iam, text) = (&aws.iam(), &doc.to_json());
    let create = move || async move {
        create_once(
            CREATE_ONCE,
            |_| false,
            || {
                iam.create_policy_version()
                    .policy_arn(arn)
                    .policy_document(text)
                    .set_as_default(true)
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || default_holds(aws, arn, doc),
        )
        .await
    };
    match create().await {
        Ok(_) => return Ok(()),
        Err(e) if e.code.as_deref() == Some("LimitExceeded") => {}
        Err(e) => return Err(e),
    }
    // At the limit, maybe because a lost answer's version is there: then that one is ours.
    if default_holds(aws, arn, doc).await?.is_some() {
        return Ok(());
    }
    let versions = iam.list_policy_versions().policy_arn(arn).send().await.map_err(sdk)?;
    let oldest = versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
        .min_by_key(|v| (v.create_date().map(|d| (d.secs(), d.subsec_nanos())), version_number(v.version_id())))
        .and_then(|v| v.version_id().map(str::to_string));
    match oldest {
        Some(vid) if versions.versions().len() >= MAX_VERSIONS => {
            absent_if_not_found(iam.delete_policy_version().policy_arn(arn).version_id(vid).send().await.map_err(sdk))?;
        }
        _ => {}
    }
    create().await.map(|_| ())
}

/// The default version's id when its document is `doc` (as IAM spells it: compared by meaning).
async fn default_holds(aws: &Aws, arn: &str, doc: &PolicyDocument) -> Result<Option<String>, ProviderError> {
    let iam = aws.iam();
    let Some(out) = absent_if_not_found(iam.get_policy().policy_arn(arn).send().await.map_err(sdk))? else { return Ok(None) };
    let Some(version) = out.policy().and_then(|p| p.default_version_id()).map(str::to_string) else { return Ok(None) };
    let got = iam.get_policy_version().policy_arn(arn).version_id(&version).send().await.map_err(sdk)?;
    let text = got.policy_version().and_then(|v| v.document()).unwrap_or_default();
    let live = PolicyDocument::parse_aws(text).map_err(|e| ProviderError::new(format!("policy {arn}: {e}")))?;
    Ok(live.equivalent(doc).then_some(version))
}

/// `v12` -> 12, for ordering versions created within the same second.
fn version_number(id: Option<&str>) -> u64 {
    id.and_then(|v| v.trim_start_matches('v').parse().ok()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_document_and_size() {
        let doc = PolicyDocument::new().allow(["s3:GetObject"], ["*"]);
        assert!(Policy::new("read-things", doc.clone()).validate().is_empty());
        assert_eq!(Policy::new("read things", doc.clone()).validate()[0].field, "name");
        assert_eq!(Policy::new("p", PolicyDocument::new()).validate()[0].field, "document");
        let big = PolicyDocument::new().allow(["s3:GetObject"], (0..300).map(|i| format!("arn:aws:s3:::bucket-{i}/*")));
        assert_eq!(Policy::new("p", big).validate()[0].field, "document");
        assert_eq!(Policy::new("p", doc).path("x").validate()[0].field, "path");
    }

    #[test]
    fn version_numbers_order() {
        assert!(version_number(Some("v2")) < version_number(Some("v10")));
        assert_eq!(version_number(None), u64::MAX);
    }
}
