//! ECR repository. APIs: CreateRepository, DescribeRepositories, PutImageTagMutability,
//! PutImageScanningConfiguration, GetLifecyclePolicy, PutLifecyclePolicy, DeleteLifecyclePolicy,
//! ListTagsForResource, TagResource, UntagResource, DeleteRepository.
//!
//! Reads are batched: one DescribeRepositories for up to 100 repositories, then one ListTagsForResource
//! each, plus one GetLifecyclePolicy each whose state holds a policy with rules.
//!
//! Defaults (what an unset field means, so removing a setting puts it back): tag mutability `MUTABLE`,
//! scan on push off, no lifecycle policy (a policy removed from the code is deleted), no tags but the
//! engine's. Left to AWS when unset: nothing (encryption is not managed here; ECR uses AES256).
//! A lifecycle policy added by hand to a repository whose code declares none is not seen: reading it would
//! cost a call per repository on every plan.

use super::lifecycle_policy::LifecyclePolicy;
use crate::error::{absent_if_not_found, create_once, is_not_found, sdk, Made, Once, CREATE_ONCE};
use crate::tags::{merge_defaults, without_aws_managed, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Tag};
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagMutability {
    Mutable,
    Immutable,
    MutableWithExclusion,
    ImmutableWithExclusion,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repository {
    /// Changing it forces a new repository.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag_mutability: Option<TagMutability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_on_push: Option<bool>,
    /// Unset or `LifecyclePolicy::none()`: there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<LifecyclePolicy>,
    /// Delete the images with the repository (else ECR refuses to delete a repository holding images).
    /// Takes effect once applied.
    #[serde(default)]
    pub force_delete: bool,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct RepositoryOutputs => RepositoryRefs {
        pub arn: String as ferroform_core::Arn<Repository>,
        pub name: String as ferroform_core::Name<Repository>,
        /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME`, what `docker push` takes.
        pub repository_url: String,
        pub registry_id: String,
    }
}

impl Repository {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image_tag_mutability: None,
            scan_on_push: None,
            lifecycle_policy: None,
            force_delete: false,
            tags: Tags::new(),
        }
    }
    pub fn immutable_tags(mut self) -> Self {
        self.image_tag_mutability = Some(TagMutability::Immutable);
        self
    }
    pub fn image_tag_mutability(mut self, m: TagMutability) -> Self {
        self.image_tag_mutability = Some(m);
        self
    }
    pub fn scan_on_push(mut self, on: bool) -> Self {
        self.scan_on_push = Some(on);
        self
    }
    pub fn lifecycle(mut self, policy: LifecyclePolicy) -> Self {
        self.lifecycle_policy = Some(policy);
        self
    }
    /// Keeps only the `n` most recent images.
    pub fn keep_last(self, n: i64) -> Self {
        self.lifecycle(LifecyclePolicy::keep_last(n))
    }
    pub fn force_delete(mut self, yes: bool) -> Self {
        self.force_delete = yes;
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

#[async_trait]
impl Resource for Repository {
    const TYPE: &'static str = "aws_ecr_repository";
    /// The lifecycle policy is a field here.
    const TERRAFORM_FOLDS: &'static [(&'static str, &'static str, &'static str)] = &[("aws_ecr_lifecycle_policy", "repository", "name")];
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    const PROTECT_BY_DEFAULT: bool = true;
    type Outputs = RepositoryOutputs;
    type Refs = RepositoryRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        check_repository_name(&mut e, &self.name);
        if let Some(p) = &self.lifecycle_policy {
            p.validate("lifecycle_policy", &mut e);
        }
        if self.tags.len() > 50 {
            e.push(FieldError::new("tags", format!("{} tags; ECR allows 50 (the engine adds 2)", self.tags.len())));
        }
        for (k, v) in &self.tags {
            if is_unknown_str(k) {
                continue;
            }
            if k.is_empty() || k.chars().count() > 128 {
                e.push(FieldError::new("tags", format!("key `{k}` must be 1 to 128 characters long")));
            } else if k.starts_with("aws:") {
                e.push(FieldError::new("tags", format!("key `{k}`: the `aws:` prefix is reserved for AWS")));
            }
            if !is_unknown_str(v) && v.chars().count() > 256 {
                e.push(FieldError::new("tags", format!("the value of `{k}` is longer than 256 characters")));
            }
        }
        e
    }

    fn normalize(&mut self) {
        self.image_tag_mutability.get_or_insert(TagMutability::Mutable);
        self.scan_on_push.get_or_insert(false);
        self.lifecycle_policy.get_or_insert_with(LifecyclePolicy::none).normalize();
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, RepositoryOutputs), ProviderError> {
        let ecr = aws.ecr();
        let tags = ecr_tags(&desired.tags)?;
        let made = create_once(
            CREATE_ONCE,
            |_| false,
            || {
                ecr.create_repository()
                    .repository_name(&desired.name)
                    .set_image_tag_mutability(desired.image_tag_mutability.map(mutability))
                    .set_image_scanning_configuration(
                        desired.scan_on_push.map(|on| ImageScanningConfiguration::builder().scan_on_push(on).build()),
                    )
                    .set_tags(tags.clone())
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let repo = match made {
            Made::Answered(out) => out.repository,
            Made::Found(name) => ecr
                .describe_repositories()
                .repository_names(name)
                .send()
                .await
                .map_err(sdk)?
                .repositories
                .and_then(|r| r.into_iter().next()),
        };
        let repo = repo.as_ref().ok_or_else(|| ProviderError::new("CreateRepository returned no repository"))?;
        if let Some(p) = desired.lifecycle_policy.as_ref().filter(|p| !p.rules.is_empty()) {
            ecr.put_lifecycle_policy().repository_name(&desired.name).lifecycle_policy_text(p.to_json()).send().await.map_err(sdk)?;
        }
        Ok((desired.name.clone(), outputs(repo)))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    /// One DescribeRepositories for the batch (per repository when one of them is gone: ECR fails the
    /// whole call then), then the tags and declared lifecycle policies of each, concurrently.
    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let ecr = aws.ecr();
        let names: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
        let mut found: BTreeMap<String, aws_sdk_ecr::types::Repository> = BTreeMap::new();
        let mut failed: BTreeMap<String, ProviderError> = BTreeMap::new();
        match ecr.describe_repositories().set_repository_names(Some(names.clone())).send().await.map_err(sdk) {
            Ok(out) => found.extend(out.repositories.unwrap_or_default().into_iter().filter_map(|r| Some((r.repository_name.clone()?, r)))),
            Err(e) if is_not_found(&e) && names.len() > 1 => {
                let each = ferroform_core::join_bounded(names.iter().map(|n| ecr.describe_repositories().repository_names(n).send())).await;
                for (name, r) in names.iter().zip(each) {
                    match absent_if_not_found(r.map_err(sdk)) {
                        Ok(Some(out)) => found.extend(out.repositories.unwrap_or_default().into_iter().map(|r| (name.clone(), r))),
                        Ok(None) => {}
                        Err(e) => {
                            failed.insert(name.clone(), e);
                        }
                    }
                }
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        }
        let reads = items.iter().map(|(id, prior)| {
            let repo = found.get(id).cloned();
            let err = failed.get(id).cloned();
            async move {
                if let Some(e) = err {
                    return Err(e);
                }
                let Some(repo) = repo else { return Ok(None) };
                observe(aws, repo, prior).await
            }
        });
        ferroform_core::join_bounded(reads).await
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<RepositoryOutputs, ProviderError> {
        let ecr = aws.ecr();
        let has = |f: &str| changed.iter().any(|c| c == f);
        // Unset fields arrive as their defaults (normalize), so each branch also puts a default back.
        if has("image_tag_mutability") {
            let m = desired.image_tag_mutability.unwrap_or(TagMutability::Mutable);
            ecr.put_image_tag_mutability().repository_name(id).image_tag_mutability(mutability(m)).send().await.map_err(sdk)?;
        }
        if has("scan_on_push") {
            ecr.put_image_scanning_configuration()
                .repository_name(id)
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder().scan_on_push(desired.scan_on_push.unwrap_or(false)).build(),
                )
                .send()
                .await
                .map_err(sdk)?;
        }
        if has("lifecycle_policy") {
            match desired.lifecycle_policy.as_ref().filter(|p| !p.rules.is_empty()) {
                None => {
                    absent_if_not_found(ecr.delete_lifecycle_policy().repository_name(id).send().await.map_err(sdk))?;
                }
                Some(p) => {
                    ecr.put_lifecycle_policy().repository_name(id).lifecycle_policy_text(p.to_json()).send().await.map_err(sdk)?;
                }
            }
        }
        let out = ecr.describe_repositories().repository_names(id).send().await.map_err(sdk)?;
        let repo = out.repositories().first().ok_or_else(|| ProviderError::new(format!("repository {id} not found after update")))?;
        if has("tags") {
            let arn = repo.repository_arn().unwrap_or_default();
            let ecr = &ecr;
            crate::tags::sync(
                &prior.tags,
                &desired.tags,
                |keys| async { ecr.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send().await.map(drop).map_err(sdk) },
                |tags| async move { ecr.tag_resource().resource_arn(arn).set_tags(ecr_tags(&tags)?).send().await.map(drop).map_err(sdk) },
            )
            .await?;
        }
        Ok(outputs(repo))
    }

    async fn delete(aws: &Aws, id: &str, prior: &Self) -> Result<(), ProviderError> {
        match absent_if_not_found(aws.ecr().delete_repository().repository_name(id).force(prior.force_delete).send().await.map_err(sdk)) {
            Err(e) if e.code.as_deref() == Some("RepositoryNotEmptyException") => {
                Err(e.hint("the repository holds images: set `force_delete(true)` and apply before destroying, or delete the images"))
            }
            other => other.map(|_| ()),
        }
    }

    /// The name is known: DescribeRepositories by it, ours when tagged with our address.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let ecr = aws.ecr();
        let Some(out) = absent_if_not_found(ecr.describe_repositories().repository_names(&desired.name).send().await.map_err(sdk))? else {
            return Ok(None);
        };
        let Some(arn) = out.repositories().first().and_then(|r| r.repository_arn()) else { return Ok(None) };
        let tags = ecr.list_tags_for_resource().resource_arn(arn).send().await.map_err(sdk)?;
        let ours = tags.tags().iter().any(|t| t.key() == TAG_ADDRESS && t.value() == meta.address);
        Ok(ours.then(|| desired.name.clone()))
    }
}

/// The rest of a read, once DescribeRepositories found the repository.
async fn observe(
    aws: &Aws,
    repo: aws_sdk_ecr::types::Repository,
    prior: &Repository,
) -> Result<Option<Observed<Repository>>, ProviderError> {
    let ecr = aws.ecr();
    let name = repo.repository_name().unwrap_or_default().to_string();
    let arn = repo.repository_arn().unwrap_or_default().to_string();
    let (tags, policy) = tokio::join!(ecr.list_tags_for_resource().resource_arn(&arn).send(), async {
        // Read only when the state holds rules: otherwise "none" stands (see the module documentation).
        match prior.lifecycle_policy.as_ref().filter(|p| !p.rules.is_empty()) {
            None => Ok(Some(LifecyclePolicy::none())),
            Some(_) => match ecr.get_lifecycle_policy().repository_name(&name).send().await.map_err(sdk) {
                Ok(out) => {
                    let text = out.lifecycle_policy_text().unwrap_or("{}");
                    LifecyclePolicy::from_json(text).map(Some).map_err(|e| ProviderError::new(format!("repository {name}: {e}")))
                }
                Err(e) if e.code.as_deref() == Some("LifecyclePolicyNotFoundException") => Ok(Some(LifecyclePolicy::none())),
                Err(e) => Err(e),
            },
        }
    });
    let Some(tags) = absent_if_not_found(tags.map_err(sdk))? else { return Ok(None) };
    let lifecycle_policy = match policy {
        Err(e) if is_not_found(&e) => return Ok(None),
        other => other?,
    };
    let tags: Tags = tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
    let image_tag_mutability = Some(match repo.image_tag_mutability().unwrap_or(&ImageTagMutability::Mutable) {
        ImageTagMutability::Immutable => TagMutability::Immutable,
        ImageTagMutability::ImmutableWithExclusion => TagMutability::ImmutableWithExclusion,
        ImageTagMutability::MutableWithExclusion => TagMutability::MutableWithExclusion,
        _ => TagMutability::Mutable,
    });
    Ok(Some(Observed {
        inputs: Repository {
            name,
            image_tag_mutability,
            scan_on_push: Some(repo.image_scanning_configuration().map(|c| c.scan_on_push()).unwrap_or(false)),
            lifecycle_policy,
            force_delete: prior.force_delete,
            tags: without_aws_managed(tags),
        },
        outputs: outputs(&repo),
    }))
}

/// `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`, 2 to 256 characters.
fn check_repository_name(e: &mut Vec<FieldError>, name: &str) {
    if is_unknown_str(name) {
        return;
    }
    let len = name.chars().count();
    let segment_ok = |seg: &str| {
        let b = seg.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
            && b.first().is_some_and(|c| c.is_ascii_alphanumeric())
            && b.last().is_some_and(|c| c.is_ascii_alphanumeric())
            && !b.windows(2).any(|w| b"._-".contains(&w[0]) && b"._-".contains(&w[1]))
    };
    if !(2..=256).contains(&len) {
        e.push(FieldError::new("name", format!("`{name}` must be 2 to 256 characters long (it is {len})")));
    } else if !name.split('/').all(segment_ok) {
        e.push(FieldError::new(
            "name",
            format!("`{name}`: lowercase letters and digits, separated by single `.`, `_`, `-` or `/` (namespaces)"),
        ));
    }
}

fn mutability(m: TagMutability) -> ImageTagMutability {
    match m {
        TagMutability::Mutable => ImageTagMutability::Mutable,
        TagMutability::Immutable => ImageTagMutability::Immutable,
        TagMutability::MutableWithExclusion => ImageTagMutability::MutableWithExclusion,
        TagMutability::ImmutableWithExclusion => ImageTagMutability::ImmutableWithExclusion,
    }
}

fn outputs(r: &aws_sdk_ecr::types::Repository) -> RepositoryOutputs {
    RepositoryOutputs {
        arn: r.repository_arn().unwrap_or_default().to_string(),
        name: r.repository_name().unwrap_or_default().to_string(),
        repository_url: r.repository_uri().unwrap_or_default().to_string(),
        registry_id: r.registry_id().unwrap_or_default().to_string(),
    }
}

fn ecr_tags(tags: &Tags) -> Result<Option<Vec<Tag>>, ProviderError> {
    if tags.is_empty() {
        return Ok(None);
    }
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| ProviderError::new(e.to_string())))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ecr_rules() {
        for ok in ["app", "team/app", "my-app_1.x", "a/b/c"] {
            assert!(Repository::new(ok).validate().is_empty(), "{ok}");
        }
        for bad in ["A", "App", "-app", "app-", "a//b", "a--b", "/app", "a b"] {
            assert_eq!(Repository::new(bad).validate().first().map(|e| e.field.as_str()), Some("name"), "{bad}");
        }
        assert_eq!(Repository::new("app").tag("aws:x", "y").validate()[0].field, "tags");
        let mut bad_policy = LifecyclePolicy::keep_last(0);
        bad_policy.rules[0].selection.count_unit = Some("days".into());
        assert_eq!(Repository::new("app").lifecycle(bad_policy).validate().len(), 2);
    }

    #[test]
    fn unset_settings_mean_ecrs_defaults() {
        let mut unset = Repository::new("app");
        unset.normalize();
        assert_eq!(unset.image_tag_mutability, Some(TagMutability::Mutable));
        assert_eq!(unset.scan_on_push, Some(false));
        assert_eq!(unset.lifecycle_policy, Some(LifecyclePolicy::none()));
        let mut explicit =
            Repository::new("app").image_tag_mutability(TagMutability::Mutable).scan_on_push(false).lifecycle(LifecyclePolicy::none());
        explicit.normalize();
        assert_eq!(unset, explicit);
        let again = unset.clone();
        unset.normalize();
        assert_eq!(unset, again, "idempotent");
    }
}
