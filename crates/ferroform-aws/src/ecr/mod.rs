//! ECR (`aws-sdk-ecr`): container image repositories and their lifecycle policies.

mod lifecycle_policy;
mod repository;
mod repository_lookup;

pub use lifecycle_policy::{CountType, LifecyclePolicy, Rule, RuleAction, Selection, TagStatus};
pub use repository::{Repository, RepositoryOutputs, RepositoryRefs, TagMutability};
pub use repository_lookup::{FindRepository, FoundRepositoryOutputs, FoundRepositoryRefs};

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<Repository>();
}
