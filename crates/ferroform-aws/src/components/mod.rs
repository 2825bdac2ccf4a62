//! Components: plain Rust functions and structs that add several resources to a stack at once (what
//! Terraform modules are), and return handles to what they made.

#[cfg(all(feature = "ecs", feature = "ec2", feature = "iam", feature = "logs"))]
pub mod fargate;
#[cfg(all(feature = "lambda", feature = "apigatewayv2"))]
pub mod http_api;
#[cfg(feature = "ec2")]
pub mod network;
#[cfg(all(feature = "ecs", feature = "ec2", feature = "iam", feature = "logs"))]
pub use fargate::{ExecutionPolicy, FargateTask, FargateTaskHandles};
#[cfg(feature = "ec2")]
pub use network::{check_subnets, Nat, Network, NetworkHandles};
