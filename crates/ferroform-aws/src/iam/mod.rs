//! IAM (`aws-sdk-iam`): roles, managed policies, and the typed policy documents both use.

mod oidc_provider;
mod policy;
mod policy_document;
mod role;
mod role_lookup;

pub use oidc_provider::{OpenIdConnectProvider, OpenIdConnectProviderOutputs, OpenIdConnectProviderRefs, GITHUB_ACTIONS_URL};
pub use policy::{Policy, PolicyOutputs, PolicyRefs, MAX_VERSIONS};
pub use policy_document::{AnyPrincipal, Conditions, Effect, PolicyDocument, Principal, Statement, VERSION};
pub use role::{generated_name, Role, RoleOutputs, RoleRefs, DEFAULT_INLINE_POLICY, PERMISSIONS_BOUNDARY_VAR};
pub use role_lookup::{FindRole, FoundRoleOutputs, FoundRoleRefs};

use crate::tags::Tags;
use ferroform_core::{Arn, FieldError, ProviderError};
use std::time::Duration;

/// An AWS managed policy by its path and name (`service-role/AWSLambdaBasicExecutionRole`), in the partition
/// of the environment's region: a literal made outside every stack.
pub fn aws_managed_policy(path_and_name: &str) -> Arn<Policy> {
    Arn::literal(format!("arn:{}:iam::aws:policy/{path_and_name}", crate::context::declared_partition()))
}

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<Role>();
    reg.register::<Policy>();
    reg.register::<OpenIdConnectProvider>();
}

/// How long IAM's eventual consistency is waited out (a new role or policy unknown to the next call).
pub(crate) const PROPAGATION: Duration = Duration::from_secs(60);

/// IAM refuses a trust policy naming a principal it has not propagated yet.
pub(crate) fn is_propagation_error(e: &ProviderError) -> bool {
    e.code.as_deref() == Some("MalformedPolicyDocument") && e.message.contains("Invalid principal")
}

/// IAM names (roles, policies, inline policies): `[\w+=,.@-]`, 1 to `max` characters.
pub(crate) fn check_name(e: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    crate::validate::name(e, field, value, 1, max, |c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c), "letters, digits, `_+=,.@-`");
}

/// IAM's tag rules (the common AWS ones).
pub(crate) fn check_tags(e: &mut Vec<FieldError>, tags: &Tags) {
    crate::tags::check(e, tags, "IAM");
}

/// True when a reference is still unresolved somewhere in the document.
pub(crate) fn has_unknown(doc: &PolicyDocument) -> bool {
    serde_json::to_value(doc).map(|v| ferroform_core::is_unknown(&v)).unwrap_or(false)
}

pub(crate) fn iam_tags(tags: &Tags) -> Result<Option<Vec<aws_sdk_iam::types::Tag>>, ProviderError> {
    if tags.is_empty() {
        return Ok(None);
    }
    tags.iter()
        .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().map_err(|e| ProviderError::new(e.to_string())))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

pub(crate) fn sdk_tags(tags: &[aws_sdk_iam::types::Tag]) -> Tags {
    tags.iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()
}
