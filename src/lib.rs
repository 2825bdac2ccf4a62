//! ferroform: infrastructure as code in plain Rust.
//!
//! A stack is an ordinary Rust program: typed resource structs, references between them (`role.arn()`)
//! that become graph edges, and a CLI (`ferroform::cli::run`) with plan / apply / destroy and the rest.

pub use ferroform_core as core;
pub use ferroform_core::*;

#[cfg(feature = "aws")]
pub use ferroform_aws as aws;

pub mod prelude {
    pub use ferroform_core::{Handle, Options, Ref, Resource, Stack};
    pub type Result<T = (), E = anyhow_like::Error> = std::result::Result<T, E>;
    #[doc(hidden)]
    pub mod anyhow_like {
        pub type Error = Box<dyn std::error::Error + Send + Sync>;
    }
}
