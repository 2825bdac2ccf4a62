//! IAM role. APIs: CreateRole, GetRole, UpdateRole, UpdateAssumeRolePolicy, ListRolePolicies,
//! GetRolePolicy, PutRolePolicy, DeleteRolePolicy, ListAttachedRolePolicies, AttachRolePolicy,
//! DetachRolePolicy, PutRolePermissionsBoundary, DeleteRolePermissionsBoundary, TagRole, UntagRole,
//! ListInstanceProfilesForRole, RemoveRoleFromInstanceProfile, DeleteRole.
//!
//! Inline policies and managed policy attachments are managed exclusively: what the code does not declare
//! is removed. A read costs `3 + N` calls for `N` inline policies (GetRole, ListRolePolicies,
//! ListAttachedRolePolicies and one GetRolePolicy each), issued concurrently. A plan reading two roles or more
//! reads them all with GetAccountAuthorizationDetails instead: one call per 1,000 roles of the account, with
//! trust policies, inline policies, attachments and tags; roles whose state holds a description or a session
//! duration other than the default (which it lacks) add one GetRole each.
//!
//! Every optional field is compared whether the code sets it or not; unset, it means IAM's default, so
//! removing a setting puts the default back: path `/`, no description, a session of 3600 s, no inline
//! policies, no managed policies attached, no permissions boundary, no tags. Left to AWS when unset: `name` (generated from the
//! stack and address, see [`generated_name`]).

use super::policy_document::PolicyDocument;
use super::{check_name, check_tags, iam_tags, is_propagation_error, sdk_tags, PROPAGATION};
use crate::error::{absent_if_not_found, create_once, is_not_found, retry, sdk, Made, Once, CREATE_ONCE};
use crate::pages::all_pages;
use crate::tags::{merge_defaults, without_aws_managed, Tags};
use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{is_unknown_str, Arn, ArnText, CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The inline policy `Role::allow` adds statements to.
pub const DEFAULT_INLINE_POLICY: &str = "ferroform";
/// IAM's maximum session duration when none is set, seconds.
pub const DEFAULT_MAX_SESSION_DURATION: i32 = 3600;
/// The stack variable through which a stack asks for a permissions boundary on every role
/// (`--var permissions_boundary=ARN`): [`Role::with_stack_boundary`] applies it, `check`'s FF-IAM-004 expects it.
pub const PERMISSIONS_BOUNDARY_VAR: &str = "permissions_boundary";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    /// Changing it forces a new role. `None`: `STACK-ADDRESS`, made valid and unique (see [`generated_name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `/` unless set. Changing it forces a new role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Who may assume the role (the trust policy).
    pub assume_role_policy: PolicyDocument,
    /// Inline policies by name.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, PolicyDocument>,
    /// ARNs of attached managed policies.
    #[serde(default)]
    pub managed_policy_arns: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seconds, 3600 to 43200 (AWS's default: 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<i32>,
    /// The managed policy that caps what the role's policies can grant (a permissions boundary); none
    /// unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct RoleOutputs => RoleRefs {
        pub arn: String as ferroform_core::Arn<Role>,
        pub name: String as ferroform_core::Name<Role>,
        /// The role's unique id (`AROA...`).
        pub id: String as ferroform_core::Id<Role>,
    }
}

impl Role {
    pub fn new(name: impl Into<String>, assume_role_policy: PolicyDocument) -> Self {
        Self::with_trust(assume_role_policy).name(name)
    }

    /// A role with this trust policy and a generated name.
    pub fn with_trust(assume_role_policy: PolicyDocument) -> Self {
        Self {
            name: None,
            path: None,
            assume_role_policy,
            inline_policies: BTreeMap::new(),
            managed_policy_arns: BTreeSet::new(),
            description: None,
            max_session_duration: None,
            permissions_boundary: None,
            tags: Tags::new(),
        }
    }

    /// A role an AWS service (`lambda.amazonaws.com`) assumes.
    pub fn for_service(service: impl Into<String>) -> Self {
        Self::with_trust(PolicyDocument::assume_role_by_service(service))
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    pub fn max_session_duration(mut self, seconds: i32) -> Self {
        self.max_session_duration = Some(seconds);
        self
    }
    /// Caps what the role's policies can grant at what this managed policy allows: the stack's own
    /// (`policy.arn()`) or one the account requires (`Arn::literal("arn:aws:iam::123456789012:policy/boundary")`).
    pub fn permissions_boundary(mut self, arn: Arn<super::Policy>) -> Self {
        self.permissions_boundary = Some(arn.into());
        self
    }
    /// The boundary the stack asks for with its [`PERMISSIONS_BOUNDARY_VAR`] variable, when it asks (a role
    /// with a boundary of its own keeps it): what stacks and components call on every role they make.
    pub fn with_stack_boundary(mut self, stack: &ferroform_core::Stack) -> Self {
        if self.permissions_boundary.is_none() {
            self.permissions_boundary = stack.var(PERMISSIONS_BOUNDARY_VAR).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        }
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }

    /// Allows `actions` on `resources`, in the inline policy [`DEFAULT_INLINE_POLICY`].
    pub fn allow<A, R>(mut self, actions: impl IntoIterator<Item = A>, resources: impl IntoIterator<Item = R>) -> Self
    where
        A: Into<String>,
        R: ArnText,
    {
        let doc = self.inline_policies.remove(DEFAULT_INLINE_POLICY).unwrap_or_default();
        self.inline_policies.insert(DEFAULT_INLINE_POLICY.to_string(), doc.allow(actions, resources));
        self
    }

    /// Sets an inline policy.
    pub fn inline_policy(mut self, name: impl Into<String>, doc: PolicyDocument) -> Self {
        self.inline_policies.insert(name.into(), doc);
        self
    }

    /// Attaches a managed policy: the stack's own (`policy.arn()`) or AWS's ([`super::aws_managed_policy`]).
    pub fn managed_policy(mut self, arn: Arn<super::Policy>) -> Self {
        self.managed_policy_arns.insert(arn.into());
        self
    }
}

/// The name of a role declared without one: `STACK-ADDRESS` with characters IAM refuses turned into `-`;
/// past 64 characters, cut and suffixed with a hash of the whole, so it stays unique and deterministic
/// (a run killed mid-create finds the role by this name).
pub fn generated_name(stack: &str, address: &str) -> String {
    use sha2::Digest;
    let full = format!("{stack}-{address}");
    let clean: String = full.chars().map(|c| if allowed_char(c) { c } else { '-' }).collect();
    if clean.chars().count() <= 64 {
        return clean;
    }
    let hash = hex::encode(sha2::Sha256::digest(full.as_bytes()));
    let head: String = clean.chars().take(55).collect();
    format!("{head}-{}", &hash[..8])
}

fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

#[async_trait]
impl Resource for Role {
    const TYPE: &'static str = "aws_iam_role";
    const TERRAFORM_FOLDS: &'static [(&'static str, &'static str, &'static str)] =
        &[("aws_iam_role_policy", "role", "name"), ("aws_iam_role_policy_attachment", "role", "name")];
    const REPLACE_FIELDS: &'static [&'static str] = &["name", "path"];
    /// An unset name is generated at create, not compared afterwards.
    const COMPUTED: &'static [&'static str] = &["name"];
    type Outputs = RoleOutputs;
    type Refs = RoleRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if let Some(name) = &self.name {
            check_name(&mut e, "name", name, 64);
        }
        if let Some(path) = &self.path {
            check_path(&mut e, "path", path);
        }
        self.assume_role_policy.validate_trust("assume_role_policy", &mut e);
        for (name, doc) in &self.inline_policies {
            check_name(&mut e, "inline_policies", name, 128);
            doc.validate_identity(&format!("inline_policies.{name}"), &mut e);
        }
        for arn in &self.managed_policy_arns {
            if !is_unknown_str(arn) && !arn.starts_with("arn:") {
                e.push(FieldError::new("managed_policy_arns", format!("`{arn}` is not a policy ARN")));
            }
        }
        if let Some(arn) = &self.permissions_boundary {
            if !(is_unknown_str(arn) || arn.starts_with("arn:") && arn.contains(":policy/")) {
                e.push(FieldError::new("permissions_boundary", format!("`{arn}` is not a managed policy ARN")));
            }
        }
        if self.managed_policy_arns.len() > 20 {
            e.push(FieldError::new("managed_policy_arns", "IAM attaches at most 20 managed policies to a role"));
        }
        if let Some(d) = &self.description {
            if d.chars().count() > 1000 {
                e.push(FieldError::new("description", "is longer than 1000 characters"));
            } else if let Some(bad) = d.chars().find(|c| !matches!(*c as u32, 0x09 | 0x0A | 0x0D | 0x20..=0x7E | 0xA1..=0xFF)) {
                e.push(FieldError::new("description", format!("holds `{bad}`, which IAM refuses in descriptions")));
            }
        }
        if let Some(s) = self.max_session_duration {
            crate::validate::range(&mut e, "max_session_duration", i64::from(s), 3600, 43200);
        }
        check_tags(&mut e, &self.tags);
        e
    }

    fn normalize(&mut self) {
        self.assume_role_policy.normalize();
        for doc in self.inline_policies.values_mut() {
            doc.normalize();
        }
        if self.description.as_deref() == Some("") {
            self.description = None;
        }
        self.path.get_or_insert_with(|| "/".to_string());
        self.max_session_duration.get_or_insert(DEFAULT_MAX_SESSION_DURATION);
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    // The name is the identity (and a generated name is the same for the replacement).
    fn delete_before_create(&self) -> bool {
        true
    }

    async fn create(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<(String, RoleOutputs), ProviderError> {
        let iam = aws.iam();
        let name = desired.name.clone().unwrap_or_else(|| generated_name(&meta.stack, &meta.address));
        let tags = iam_tags(&desired.tags)?;
        // A trust policy naming a role made a moment ago is refused until IAM has propagated it.
        let made = create_once(
            CREATE_ONCE,
            is_propagation_error,
            || {
                iam.create_role()
                    .role_name(&name)
                    .set_path(desired.path.clone())
                    .assume_role_policy_document(desired.assume_role_policy.to_json())
                    .set_description(desired.description.clone())
                    .set_max_session_duration(desired.max_session_duration)
                    .set_permissions_boundary(desired.permissions_boundary.clone())
                    .set_tags(tags.clone())
                    .customize()
                    .config_override(Once)
                    .send()
            },
            || Self::find_by_tags(aws, desired, meta),
        )
        .await?;
        let outputs = match made {
            Made::Answered(created) => {
                let role = created.role().ok_or_else(|| ProviderError::new("CreateRole returned no role"))?;
                RoleOutputs { arn: role.arn().to_string(), name: name.clone(), id: role.role_id().to_string() }
            }
            Made::Found(_) => {
                let out = iam.get_role().role_name(&name).send().await.map_err(sdk)?;
                let role = out.role().ok_or_else(|| ProviderError::new("GetRole returned no role"))?;
                RoleOutputs { arn: role.arn().to_string(), name: name.clone(), id: role.role_id().to_string() }
            }
        };
        for (policy, doc) in &desired.inline_policies {
            put_policy(aws, &name, policy, doc).await?;
        }
        for arn in &desired.managed_policy_arns {
            attach(aws, &name, arn).await?;
        }
        Ok((name, outputs))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let iam = aws.iam();
        // Everything at once: the role, both lists, and the inline policies state says exist.
        let known: Vec<String> = prior.inline_policies.keys().cloned().collect();
        let (role, names, attached, known_docs) = tokio::join!(
            iam.get_role().role_name(id).send(),
            all_pages(|marker| {
                let iam = iam.clone();
                async move {
                    let out = iam.list_role_policies().role_name(id).set_marker(marker).send().await.map_err(sdk)?;
                    Ok((out.policy_names().to_vec(), out.is_truncated.then(|| out.marker.clone()).flatten()))
                }
            }),
            all_pages(|marker| {
                let iam = iam.clone();
                async move {
                    let out = iam.list_attached_role_policies().role_name(id).set_marker(marker).send().await.map_err(sdk)?;
                    let arns = out.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect();
                    Ok((arns, out.is_truncated.then(|| out.marker.clone()).flatten()))
                }
            }),
            ferroform_core::join_bounded(known.iter().map(|p| get_policy(aws, id, p))),
        );
        let Some(role) = absent_if_not_found(role.map_err(sdk))? else { return Ok(None) };
        let Some(role) = role.role else { return Ok(None) };
        let Some(names) = absent_if_not_found(names)? else { return Ok(None) };
        let Some(attached) = absent_if_not_found(attached)? else { return Ok(None) };

        let mut inline_policies = BTreeMap::new();
        for (name, doc) in known.iter().zip(known_docs) {
            if let Some(doc) = doc? {
                inline_policies.insert(name.clone(), doc);
            }
        }
        let extra: Vec<&String> = names.iter().filter(|n| !inline_policies.contains_key(*n)).collect();
        let extra_docs = ferroform_core::join_bounded(extra.iter().map(|p| get_policy(aws, id, p))).await;
        for (name, doc) in extra.into_iter().zip(extra_docs) {
            if let Some(doc) = doc? {
                inline_policies.insert(name.clone(), doc);
            }
        }
        // Listed names only: a policy fetched from state's list but deleted since is gone.
        inline_policies.retain(|n, _| names.contains(n));

        let assume_role_policy = match role.assume_role_policy_document() {
            Some(text) => PolicyDocument::parse_aws(text).map_err(|e| ProviderError::new(format!("role {id}: trust policy: {e}")))?,
            None => PolicyDocument::new(),
        };
        let tags: Tags = role.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
        Ok(Some(Observed {
            inputs: Role {
                name: Some(role.role_name().to_string()),
                path: Some(role.path().to_string()),
                assume_role_policy,
                inline_policies,
                managed_policy_arns: attached.into_iter().collect(),
                description: role.description().filter(|d| !d.is_empty()).map(str::to_string),
                max_session_duration: role.max_session_duration(),
                permissions_boundary: boundary_arn(role.permissions_boundary()),
                tags: without_aws_managed(tags),
            }
            .with_prior_spelling(prior),
            outputs: RoleOutputs { arn: role.arn().to_string(), name: role.role_name().to_string(), id: role.role_id().to_string() },
        }))
    }

    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let one_by_one = || ferroform_core::join_bounded(items.iter().map(|(id, prior)| Self::read(aws, id, prior)));
        if items.len() < 2 {
            return one_by_one().await;
        }
        let all = match account_roles(aws).await {
            Ok(all) => all,
            // Least privilege: read-only plan roles are often denied GetAccountAuthorizationDetails (it lists
            // every role and policy of the account). The stack's roles one by one need only iam:GetRole,
            // iam:ListRolePolicies, iam:GetRolePolicy and iam:ListAttachedRolePolicies.
            Err(e) if e.code.as_deref().is_some_and(|c| c == "AccessDenied" || c == "AccessDeniedException") => {
                tracing::debug!("GetAccountAuthorizationDetails denied; reading {} roles one by one", items.len());
                return one_by_one().await;
            }
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        ferroform_core::join_bounded(items.iter().map(|(id, prior)| {
            let found = all.get(id);
            async move {
                let Some(detail) = found else { return Ok(None) };
                let mut observed = observed_from_detail(detail)?;
                // The listing lacks these two: one GetRole for a role whose state holds either (a default
                // in state is taken as what is live, as normalize would fill it in).
                if prior.description.is_some() || prior.max_session_duration.is_some_and(|s| s != DEFAULT_MAX_SESSION_DURATION) {
                    let out = absent_if_not_found(aws.iam().get_role().role_name(id).send().await.map_err(sdk))?;
                    let Some(role) = out.and_then(|o| o.role) else { return Ok(None) };
                    observed.inputs.description = role.description().filter(|d| !d.is_empty()).map(str::to_string);
                    observed.inputs.max_session_duration = role.max_session_duration();
                }
                observed.inputs = observed.inputs.with_prior_spelling(prior);
                Ok(Some(observed))
            }
        }))
        .await
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<RoleOutputs, ProviderError> {
        let iam = aws.iam();
        let has = |f: &str| changed.iter().any(|c| c == f);
        if has("assume_role_policy") {
            retry(PROPAGATION, is_propagation_error, || async {
                iam.update_assume_role_policy()
                    .role_name(id)
                    .policy_document(desired.assume_role_policy.to_json())
                    .send()
                    .await
                    .map_err(sdk)
            })
            .await?;
        }
        if has("description") || has("max_session_duration") {
            // Both every time: UpdateRole may reset what it is not given. No description is an empty one.
            iam.update_role()
                .role_name(id)
                .description(desired.description.clone().unwrap_or_default())
                .set_max_session_duration(desired.max_session_duration.or(prior.max_session_duration))
                .send()
                .await
                .map_err(sdk)?;
        }
        if has("permissions_boundary") {
            // Before the policies change: a new boundary never lets a moment of wider permissions through.
            match &desired.permissions_boundary {
                Some(arn) => {
                    iam.put_role_permissions_boundary().role_name(id).permissions_boundary(arn).send().await.map_err(sdk)?;
                }
                None => {
                    absent_if_not_found(iam.delete_role_permissions_boundary().role_name(id).send().await.map_err(sdk))?;
                }
            }
        }
        if has("inline_policies") {
            // New and changed first, then removals: permissions never dip during a rename.
            for (name, doc) in &desired.inline_policies {
                if prior.inline_policies.get(name).map(|p| !p.equivalent(doc)).unwrap_or(true) {
                    put_policy(aws, id, name, doc).await?;
                }
            }
            for name in prior.inline_policies.keys().filter(|n| !desired.inline_policies.contains_key(*n)) {
                absent_if_not_found(iam.delete_role_policy().role_name(id).policy_name(name).send().await.map_err(sdk))?;
            }
        }
        if has("managed_policy_arns") {
            for arn in desired.managed_policy_arns.difference(&prior.managed_policy_arns) {
                attach(aws, id, arn).await?;
            }
            for arn in prior.managed_policy_arns.difference(&desired.managed_policy_arns) {
                absent_if_not_found(iam.detach_role_policy().role_name(id).policy_arn(arn).send().await.map_err(sdk))?;
            }
        }
        if has("tags") {
            let iam = &iam;
            crate::tags::sync(
                &prior.tags,
                &desired.tags,
                |keys| async { iam.untag_role().role_name(id).set_tag_keys(Some(keys)).send().await.map(drop).map_err(sdk) },
                |tags| async move { iam.tag_role().role_name(id).set_tags(iam_tags(&tags)?).send().await.map(drop).map_err(sdk) },
            )
            .await?;
        }
        let out = iam.get_role().role_name(id).send().await.map_err(sdk)?;
        let role = out.role().ok_or_else(|| ProviderError::new("GetRole returned no role"))?;
        Ok(RoleOutputs { arn: role.arn().to_string(), name: id.to_string(), id: role.role_id().to_string() })
    }

    /// Detaches managed policies, deletes inline ones, leaves instance profiles, then deletes the role.
    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let iam = aws.iam();
        let (attached, inline, profiles) = tokio::join!(
            all_pages(|marker| {
                let iam = iam.clone();
                async move {
                    let out = iam.list_attached_role_policies().role_name(id).set_marker(marker).send().await.map_err(sdk)?;
                    let arns = out.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect();
                    Ok((arns, out.is_truncated.then(|| out.marker.clone()).flatten()))
                }
            }),
            all_pages(|marker| {
                let iam = iam.clone();
                async move {
                    let out = iam.list_role_policies().role_name(id).set_marker(marker).send().await.map_err(sdk)?;
                    Ok((out.policy_names().to_vec(), out.is_truncated.then(|| out.marker.clone()).flatten()))
                }
            }),
            all_pages(|marker| {
                let iam = iam.clone();
                async move {
                    let out = iam.list_instance_profiles_for_role().role_name(id).set_marker(marker).send().await.map_err(sdk)?;
                    let names = out.instance_profiles().iter().map(|p| p.instance_profile_name().to_string()).collect();
                    Ok((names, out.is_truncated.then(|| out.marker.clone()).flatten()))
                }
            }),
        );
        let (Some(attached), Some(inline), Some(profiles)) =
            (absent_if_not_found(attached)?, absent_if_not_found(inline)?, absent_if_not_found(profiles)?)
        else {
            return Ok(());
        };
        for arn in attached {
            absent_if_not_found(iam.detach_role_policy().role_name(id).policy_arn(arn).send().await.map_err(sdk))?;
        }
        for name in inline {
            absent_if_not_found(iam.delete_role_policy().role_name(id).policy_name(name).send().await.map_err(sdk))?;
        }
        for profile in profiles {
            absent_if_not_found(
                iam.remove_role_from_instance_profile().instance_profile_name(profile).role_name(id).send().await.map_err(sdk),
            )?;
        }
        absent_if_not_found(iam.delete_role().role_name(id).send().await.map_err(sdk)).map(|_| ())
    }

    /// Roles can't be listed by tag cheaply, but the name is known: GetRole by it, and it is ours when its
    /// `ferroform:address` tag says so.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let name = desired.name.clone().unwrap_or_else(|| generated_name(&meta.stack, &meta.address));
        let Some(out) = absent_if_not_found(aws.iam().get_role().role_name(&name).send().await.map_err(sdk))? else {
            return Ok(None);
        };
        let ours = out.role().map(|r| sdk_tags(r.tags()).get(TAG_ADDRESS) == Some(&meta.address)).unwrap_or(false);
        Ok(ours.then_some(name))
    }
}

fn check_path(e: &mut Vec<FieldError>, field: &str, path: &str) {
    if is_unknown_str(path) {
        return;
    }
    let len = path.chars().count();
    if !(1..=512).contains(&len) || !path.starts_with('/') || !path.ends_with('/') {
        e.push(FieldError::new(field, format!("`{path}` must start and end with `/` and be 1 to 512 characters long")));
    } else if let Some(bad) = path.chars().find(|c| !('\u{21}'..='\u{7e}').contains(c)) {
        e.push(FieldError::new(field, format!("`{path}` holds `{bad}`; allowed: printable ASCII without spaces")));
    }
}

/// Every role of the account by name, with its policies and tags: GetAccountAuthorizationDetails, paged.
async fn account_roles(aws: &Aws) -> Result<BTreeMap<String, aws_sdk_iam::types::RoleDetail>, ProviderError> {
    let iam = aws.iam();
    let mut roles = BTreeMap::new();
    let mut marker = None;
    loop {
        let out = iam
            .get_account_authorization_details()
            .filter(aws_sdk_iam::types::EntityType::Role)
            .max_items(1000)
            .set_marker(marker)
            .send()
            .await
            .map_err(sdk)?;
        for r in out.role_detail_list() {
            if let Some(name) = r.role_name() {
                roles.insert(name.to_string(), r.clone());
            }
        }
        marker = out.marker().filter(|_| out.is_truncated()).map(str::to_string);
        if marker.is_none() {
            return Ok(roles);
        }
    }
}

impl Role {
    /// Documents IAM spells otherwise (action case, statement order) but that mean what was applied are
    /// taken as applied: no diff where IAM sees none.
    fn with_prior_spelling(mut self, prior: &Role) -> Role {
        self.assume_role_policy = PolicyDocument::prior_if_equivalent(self.assume_role_policy, &prior.assume_role_policy);
        for (name, doc) in self.inline_policies.iter_mut() {
            if let Some(p) = prior.inline_policies.get(name) {
                *doc = PolicyDocument::prior_if_equivalent(std::mem::take(doc), p);
            }
        }
        self
    }
}

/// A role as the account listing shows it (without description and session duration: it has neither).
fn observed_from_detail(r: &aws_sdk_iam::types::RoleDetail) -> Result<Observed<Role>, ProviderError> {
    let name = r.role_name().unwrap_or_default();
    let parse =
        |what: &str, text: &str| PolicyDocument::parse_aws(text).map_err(|e| ProviderError::new(format!("role {name}: {what}: {e}")));
    let assume_role_policy = match r.assume_role_policy_document() {
        Some(text) => parse("trust policy", text)?,
        None => PolicyDocument::new(),
    };
    let mut inline_policies = BTreeMap::new();
    for p in r.role_policy_list() {
        let policy = p.policy_name().unwrap_or_default();
        inline_policies.insert(policy.to_string(), parse(&format!("inline policy {policy}"), p.policy_document().unwrap_or("{}"))?);
    }
    let tags: Tags = r.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
    Ok(Observed {
        inputs: Role {
            name: Some(name.to_string()),
            path: r.path().map(str::to_string),
            assume_role_policy,
            inline_policies,
            managed_policy_arns: r.attached_managed_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect(),
            description: None,
            max_session_duration: None,
            permissions_boundary: boundary_arn(r.permissions_boundary()),
            tags: without_aws_managed(tags),
        },
        outputs: RoleOutputs {
            arn: r.arn().unwrap_or_default().to_string(),
            name: name.to_string(),
            id: r.role_id().unwrap_or_default().to_string(),
        },
    })
}

/// The ARN of a role's permissions boundary as GetRole and the account listing give it.
fn boundary_arn(b: Option<&aws_sdk_iam::types::AttachedPermissionsBoundary>) -> Option<String> {
    b.and_then(|b| b.permissions_boundary_arn()).filter(|a| !a.is_empty()).map(str::to_string)
}

/// One inline policy, `None` when it is not there.
async fn get_policy(aws: &Aws, role: &str, policy: &str) -> Result<Option<PolicyDocument>, ProviderError> {
    let out = absent_if_not_found(aws.iam().get_role_policy().role_name(role).policy_name(policy).send().await.map_err(sdk))?;
    out.map(|o| {
        PolicyDocument::parse_aws(o.policy_document()).map_err(|e| ProviderError::new(format!("role {role}: inline policy {policy}: {e}")))
    })
    .transpose()
}

/// PutRolePolicy, retried while a just-made role is still unknown to IAM's other endpoints.
async fn put_policy(aws: &Aws, role: &str, name: &str, doc: &PolicyDocument) -> Result<(), ProviderError> {
    let iam = aws.iam();
    retry(
        PROPAGATION,
        |e| is_not_found(e) || is_propagation_error(e),
        || async { iam.put_role_policy().role_name(role).policy_name(name).policy_document(doc.to_json()).send().await.map_err(sdk) },
    )
    .await
    .map(|_| ())
}

async fn attach(aws: &Aws, role: &str, arn: &str) -> Result<(), ProviderError> {
    let iam = aws.iam();
    retry(PROPAGATION, is_not_found, || async { iam.attach_role_policy().role_name(role).policy_arn(arn).send().await.map_err(sdk) })
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_collects_statements_in_one_inline_policy() {
        let r = Role::for_service("lambda.amazonaws.com")
            .allow(["dynamodb:Scan"], ["arn:aws:dynamodb:us-east-1:1:table/a"])
            .allow(["dynamodb:GetItem"], ["\u{e000}${ref:t.arn}"]);
        assert_eq!(r.inline_policies.len(), 1);
        assert_eq!(r.inline_policies[DEFAULT_INLINE_POLICY].statements.len(), 2);
        assert!(r.validate().is_empty(), "{:?}", r.validate());
    }

    #[test]
    fn names_paths_and_durations_are_checked() {
        let trust = PolicyDocument::assume_role_by_service("lambda.amazonaws.com");
        assert!(Role::new("ok+=,.@-_Name1", trust.clone()).validate().is_empty());
        assert_eq!(Role::new("bad name", trust.clone()).validate()[0].field, "name");
        assert_eq!(Role::new("x".repeat(65), trust.clone()).validate()[0].field, "name");
        assert_eq!(Role::new("r", trust.clone()).path("no-slash").validate()[0].field, "path");
        assert!(Role::new("r", trust.clone()).path("/svc/").validate().is_empty());
        assert_eq!(Role::new("r", trust.clone()).max_session_duration(60).validate()[0].field, "max_session_duration");
        assert_eq!(Role::new("r", trust.clone()).tag("aws:x", "y").validate()[0].field, "tags");
        assert_eq!(
            Role::new("r", trust.clone()).managed_policy(ferroform_core::Arn::literal("AdminAccess")).validate()[0].field,
            "managed_policy_arns"
        );
        // A permissions statement in the trust policy is refused.
        assert_eq!(Role::new("r", PolicyDocument::new().allow(["s3:*"], ["*"])).validate()[0].field, "assume_role_policy");
    }

    #[test]
    fn unset_settings_mean_iams_defaults() {
        let mut r = Role::for_service("lambda.amazonaws.com").description("");
        r.normalize();
        assert_eq!((r.path.as_deref(), r.max_session_duration, r.description.as_deref()), (Some("/"), Some(3600), None));
        assert_eq!(r.name, None, "an unset name stays unset: it is computed");
        let again = r.clone();
        r.normalize();
        assert_eq!(r, again);
        let mut set = Role::for_service("lambda.amazonaws.com").path("/svc/").max_session_duration(7200);
        set.normalize();
        assert_eq!((set.path.as_deref(), set.max_session_duration), (Some("/svc/"), Some(7200)));
    }

    #[test]
    fn a_boundary_is_a_policy_arn_and_the_stack_can_ask_for_one() {
        let lambda = || Role::for_service("lambda.amazonaws.com");
        assert!(lambda().permissions_boundary(Arn::literal("arn:aws:iam::123456789012:policy/b")).validate().is_empty());
        assert_eq!(lambda().permissions_boundary(Arn::literal("boundary")).validate()[0].field, "permissions_boundary");
        let mut s = ferroform_core::Stack::new("t");
        assert_eq!(lambda().with_stack_boundary(&s).permissions_boundary, None, "the stack does not ask");
        s.set_var(PERMISSIONS_BOUNDARY_VAR, " arn:aws:iam::123456789012:policy/b ");
        assert_eq!(lambda().with_stack_boundary(&s).permissions_boundary.as_deref(), Some("arn:aws:iam::123456789012:policy/b"));
        let own = lambda().permissions_boundary(Arn::literal("arn:aws:iam::123456789012:policy/own")).with_stack_boundary(&s);
        assert_eq!(own.permissions_boundary.as_deref(), Some("arn:aws:iam::123456789012:policy/own"), "its own is kept");
        // Unset stays unset: no boundary is IAM's default, so removing one plans `-> null` and deletes it.
        let mut none = lambda();
        none.normalize();
        assert_eq!(none.permissions_boundary, None);
    }

    #[test]
    fn generated_names_are_valid_and_stable() {
        assert_eq!(generated_name("pedidos", "api/role"), "pedidos-api-role");
        let long = generated_name("a-very-long-stack-name-indeed", &"component/".repeat(8));
        assert_eq!(long.chars().count(), 64);
        assert_eq!(long, generated_name("a-very-long-stack-name-indeed", &"component/".repeat(8)));
        assert_ne!(long, generated_name("a-very-long-stack-name-indeed", &"component/".repeat(9)));
        let mut e = Vec::new();
        check_name(&mut e, "name", &long, 64);
        assert!(e.is_empty());
    }
}
