//! The hello stack: a Rust HTTP handler packaged as a Lambda container image in ECR, behind an API Gateway
//! HTTP API, with alarms and a dashboard.
//!
//! - [`handler`]: the routes (`GET /hello`, `POST /echo`, `GET /health`) over an `ApiGatewayV2httpRequest`
//!   (binary `hello`, the image's `bootstrap`)
//! - `stack` (feature `stack`): the infrastructure, `pub fn stack(s: &mut Stack)`, used by
//!   `cargo run --example hello -- plan|apply|destroy`

pub mod handler;

#[cfg(feature = "stack")]
pub mod stack;
