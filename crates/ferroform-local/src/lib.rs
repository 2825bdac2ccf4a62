//! Runs a stack's systems on this machine against the local emulator: `serve` reads the stack's
//! declarations and state and drives processes.
//!
//! - [`router`], [`event`], [`cors`]: API Gateway HTTP API (v2) behaviour as pure functions: route
//!   selection, payload format 2.0 events and response mapping, CORS.
//! - [`auth`]: route authorization (JWT authorizers, `AWS_IAM` SigV4) checked before the integration.
//!
//! The engine and the AWS resources know nothing of this crate; the command line gets `serve` from it.

pub mod auth;
pub mod client;
pub mod cors;
pub mod event;
pub mod gateway;
pub mod http;
pub mod logs;
pub mod program;
pub mod router;
pub mod runtime;
pub mod serve;
pub mod tasks;
#[cfg(test)]
mod testing;

pub use program::{container, function, LocalProgram};
pub use serve::{local_endpoint, serve, start, start_with, Emulator, ServeOptions, Served};
