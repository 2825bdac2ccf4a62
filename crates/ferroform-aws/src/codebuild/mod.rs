//! CodeBuild (`aws-sdk-codebuild`): build projects, and buildspecs as typed Rust.

mod buildspec;
mod project;

pub use buildspec::{Buildspec, Env as BuildspecEnv, Phase, Phases, BUILDSPEC_VERSION};
pub use project::{
    Artifacts, ArtifactsKind, Environment, Logs, Project, ProjectOutputs, ProjectRefs, Source, SourceKind, COMPUTE_TYPES,
    DEFAULT_TIMEOUT_MINUTES, ENVIRONMENT_TYPES,
};

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<Project>();
}
