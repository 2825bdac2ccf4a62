//! ferroform-core: the cloud-agnostic engine. Resources are typed structs; references between them are
//! graph edges; `plan` diffs declared against live, `apply` walks the graph with bounded parallelism, and
//! state is saved atomically after every step.

extern crate self as ferroform_core;

mod apply;
mod diff;
mod engine;
mod error;
mod graph;
mod local;
pub mod memory;
mod plan;
mod reference;
mod resource;
mod stack;
pub mod state;

pub use apply::{Event, Reporter, Silent};
pub use engine::{Engine, PlanOptions, Session};
pub use error::{Diagnostic, Error, FieldError, ProviderError, Result};
pub use local::{write_atomic, LocalBackend};
pub use plan::{Action, Change, FieldChange, OutputChange, Plan, ReplaceMode, Summary, PLAN_FORMAT_VERSION};
pub use reference::{has_token as is_unknown_str, is_unknown, Ref};
pub use resource::{
    join_bounded, CallMeta, Context, Contexts, FromAddress, Identity, Observed, Registry, Resource, READS_IN_FLIGHT, TAG_ADDRESS, TAG_STACK,
};
pub use stack::{Addressed, Declared, Handle, Lifecycle, Options, Stack};
pub use state::{Backend, LockInfo, State};

#[doc(hidden)]
pub use serde as __serde;
