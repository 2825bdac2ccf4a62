//! AWS resources for ferroform: one module per service (mirroring the SDK crates), one file per resource,
//! one cargo feature per service.

mod adopt;
#[cfg(feature = "apigatewayv2")]
pub mod apigatewayv2;
mod batch;
mod caller_identity;
pub mod check;
#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
#[cfg(feature = "codebuild")]
pub mod codebuild;
#[cfg(feature = "codepipeline")]
pub mod codepipeline;
pub mod components;
pub mod congestion;
pub mod context;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "ec2")]
pub mod ec2;
#[cfg(feature = "ecr")]
pub mod ecr;
#[cfg(feature = "ecs")]
pub mod ecs;
pub mod error;
#[cfg(feature = "iam")]
pub mod iam;
#[cfg(feature = "lambda")]
pub mod lambda;
#[cfg(feature = "logs")]
pub mod logs;
mod lookup;
mod pages;
mod provider;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "sns")]
pub mod sns;
pub mod tags;
mod takeover;
pub mod validate;

pub use caller_identity::{CallerIdentity, CallerIdentityOutputs, CallerIdentityRefs};
pub use context::{Aws, CallCounter};
pub use provider::AwsProvider;
pub use tags::Tags;

use ferroform_core::Registry;

/// Every resource type of the enabled services, so state entries can be read and deleted even after the
/// code stopped declaring them.
pub fn registry() -> Registry {
    #[allow(unused_mut)]
    let mut reg = Registry::default();
    #[cfg(feature = "apigatewayv2")]
    apigatewayv2::register(&mut reg);
    #[cfg(feature = "cloudwatch")]
    cloudwatch::register(&mut reg);
    #[cfg(feature = "codebuild")]
    codebuild::register(&mut reg);
    #[cfg(feature = "codepipeline")]
    codepipeline::register(&mut reg);
    #[cfg(feature = "dynamodb")]
    dynamodb::register(&mut reg);
    #[cfg(feature = "ec2")]
    ec2::register(&mut reg);
    #[cfg(feature = "ecr")]
    ecr::register(&mut reg);
    #[cfg(feature = "ecs")]
    ecs::register(&mut reg);
    #[cfg(feature = "iam")]
    iam::register(&mut reg);
    #[cfg(feature = "lambda")]
    lambda::register(&mut reg);
    #[cfg(feature = "logs")]
    logs::register(&mut reg);
    #[cfg(feature = "s3")]
    s3::register(&mut reg);
    #[cfg(feature = "sns")]
    sns::register(&mut reg);
    reg
}
