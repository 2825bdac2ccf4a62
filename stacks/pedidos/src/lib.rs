//! The orders app (`pedidos`): an HTTP API on Lambda in front of a DynamoDB table, and a Fargate worker
//! that checks each order and records its verdict.
//!
//! - [`api`]: routing and handlers over an `ApiGatewayV2httpRequest` (binary `pedidos-api`)
//! - [`worker`]: the order check and the verdict write (binary `pedidos-worker`)
//! - [`model`]: the order's types, money in exact cents
//! - [`db`]: the table's item layout and every read/write
//! - `stack` (cargo feature `stack`): the infrastructure, `pub fn stack(..)` for `examples/pedidos.rs`
//! - `auth` (cargo feature `stack`): who may call the API (open, JWT or IAM)
//! - `monitoring` (cargo feature `stack`): alarms to an SNS topic, the worker's failures, a dashboard
//! - `smoke` (cargo feature `stack`): `smoke [URL]`, every endpoint checked over HTTP

pub mod api;
#[cfg(feature = "stack")]
pub mod auth;
pub mod db;
pub mod model;
#[cfg(feature = "stack")]
pub mod monitoring;
#[cfg(feature = "stack")]
pub mod smoke;
#[cfg(feature = "stack")]
pub mod stack;
pub mod worker;

/// Env vars the API sets on the worker container (ECS container overrides) and the worker reads.
pub const ENV_ORDER_ID: &str = "ORDER_ID";
pub const ENV_ORDER_JSON: &str = "ORDER_JSON";
pub const ENV_ORDER_OP: &str = "ORDER_OP";
/// The table, for both binaries.
pub const ENV_TABLE_NAME: &str = "TABLE_NAME";
