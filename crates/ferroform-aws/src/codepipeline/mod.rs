//! CodePipeline (`aws-sdk-codepipeline`): pipelines of stages and actions.

mod pipeline;

pub use pipeline::{Action, ArtifactStoreSpec, Pipeline, PipelineOutputs, PipelineRefs, Stage, DEFAULT_PIPELINE_TYPE};

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<Pipeline>();
}
