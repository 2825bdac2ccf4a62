//! ferroform-core: the cloud-agnostic engine. Resources are typed structs; references between them are
//! graph edges; `plan` diffs declared against live, `apply` walks the graph with bounded parallelism, and
//! state is saved atomically after every step.

extern crate self as ferroform_core;

mod apply;
pub mod congestion;
mod diff;
/// How plans name places in a resource's inputs.
pub mod path {
    pub use crate::diff::{child, element, SENSITIVE};
}
mod engine;
mod error;
mod graph;
mod local;
mod lookup;
pub mod memory;
mod plan;
mod reference;
mod resource;
mod stack;
mod stack_outputs;
pub mod state;
pub mod terraform;

pub use apply::{Event, Reporter, Silent};
pub use engine::{Engine, PlanOptions, Session};
pub use error::{Diagnostic, Error, FieldError, ProviderError, Result};
pub use local::{write_atomic, LocalBackend};
pub use lookup::{DeclaredLookup, Found, Lookup};
pub use plan::{Action, Change, FieldChange, OutputChange, Plan, ReplaceMode, Summary, PLAN_FORMAT_VERSION};
pub use reference::{has_token as is_unknown_str, is_unknown, join, Arn, ArnText, FromOutput, Id, Name, Ref};
pub use resource::{
    join_bounded, CallMeta, Context, Contexts, FromAddress, Identity, Observed, ProviderConfig, Registry, Resource, READS_IN_FLIGHT,
    TAG_ADDRESS, TAG_STACK,
};
pub use stack::{Addressed, Declared, Handle, Lifecycle, Options, Provider, Stack};
pub use stack_outputs::{OpenState, StackOutputs, StackOutputsRefs, StateReaders};
pub use state::{Backend, LockInfo, State};

#[doc(hidden)]
pub use serde as __serde;

static BUILDS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Whether code that is built when a stack is declared (a Lambda's binary) should be built now. Commands
/// that need no code (`graph`) turn it off; what would be built is then a placeholder.
pub fn builds_enabled() -> bool {
    BUILDS.load(std::sync::atomic::Ordering::Relaxed)
}

/// See [`builds_enabled`].
pub fn set_builds(on: bool) {
    BUILDS.store(on, std::sync::atomic::Ordering::Relaxed);
}
