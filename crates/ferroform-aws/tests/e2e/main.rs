//! End-to-end tests of the AWS resources against the local emulator, checked with independent SDK reads.
//!
//! One module per service, all in this one test binary: every test binary links the whole AWS SDK, so one
//! binary instead of one per service saves minutes of linking in CI. Each test takes its own account on the
//! shared emulator (`ferroform_testkit::account`), so they run in parallel without seeing each other.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[cfg(all(feature = "apigatewayv2", feature = "lambda", feature = "iam", feature = "logs"))]
mod apigatewayv2;
#[cfg(feature = "all")]
mod bad_input;
#[cfg(feature = "all")]
mod child;
#[cfg(feature = "cloudwatch")]
mod cloudwatch;
mod codebuild;
mod codepipeline;
mod common;
#[cfg(feature = "logs")]
mod congestion;
#[cfg(feature = "all")]
mod crash;
#[cfg(feature = "all")]
mod delivery;
mod dynamodb;
mod ec2;
mod ecr;
#[cfg(feature = "ecs")]
mod ecs;
#[cfg(feature = "all")]
mod faults;
#[cfg(all(feature = "iam", feature = "s3"))]
mod github;
mod iam;
#[cfg(all(feature = "lambda", feature = "iam"))]
mod lambda;
#[cfg(feature = "logs")]
mod logs;
#[cfg(feature = "all")]
mod lookups;
#[cfg(feature = "all")]
mod newuser;
#[cfg(feature = "all")]
mod pedidos_cli;
#[cfg(feature = "all")]
mod pedidos_monitoring;
#[cfg(feature = "all")]
mod pedidos_stack;
mod providers;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "sns")]
mod sns;
mod terraform;
#[cfg(feature = "all")]
mod terraform_pedidos;
