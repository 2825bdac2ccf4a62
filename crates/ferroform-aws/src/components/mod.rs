//! Components: plain Rust functions and structs that add several resources to a stack at once (what
//! Terraform modules are), and return handles to what they made.

#[cfg(all(feature = "ecs", feature = "ec2", feature = "iam", feature = "logs"))]
pub mod fargate;
#[cfg(all(feature = "iam", feature = "s3"))]
pub mod github;
#[cfg(all(feature = "lambda", feature = "apigatewayv2"))]
pub mod http_api;
#[cfg(feature = "ec2")]
pub mod network;
#[cfg(all(feature = "codepipeline", feature = "codebuild", feature = "iam", feature = "s3", feature = "logs"))]
pub mod pipeline;
#[cfg(all(feature = "iam", feature = "s3"))]
pub mod state;
#[cfg(all(feature = "ecs", feature = "ec2", feature = "iam", feature = "logs"))]
pub use fargate::{ExecutionPolicy, FargateTask, FargateTaskHandles};
#[cfg(all(feature = "iam", feature = "s3"))]
pub use github::{github_deploy_role, github_trust, GithubDeploy, GithubDeployHandles};
#[cfg(feature = "ec2")]
pub use network::{check_subnets, Nat, Network, NetworkHandles};
#[cfg(all(feature = "codepipeline", feature = "codebuild", feature = "iam", feature = "s3", feature = "logs"))]
pub use pipeline::{deploy_pipeline, DeployPipeline, DeployPipelineHandles};
#[cfg(all(feature = "iam", feature = "s3"))]
pub use state::{state_access, state_bucket, STATE_NONCURRENT_VERSION_DAYS};
