//! Components: plain Rust functions and structs that add several resources to a stack at once (what
//! Terraform modules are), and return handles to what they made.

#[cfg(feature = "ec2")]
pub mod network;
#[cfg(feature = "ec2")]
pub use network::{check_subnets, Nat, Network, NetworkHandles};
