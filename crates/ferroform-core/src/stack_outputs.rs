//! Outputs of other stacks (Terraform's `terraform_remote_state`): `s.stack_outputs("network", LOCATION)`
//! reads another stack's state, without taking its lock, at the start of every plan, and hands out its
//! outputs as typed references (`let vpc: Id<ec2::Vpc> = net.get("vpc_id")`).

use crate::error::Result as EngineResult;
use crate::lookup::Lookup;
use crate::reference::FromOutput;
use crate::resource::{Context, FromAddress};
use crate::state::{Backend, State};
use crate::{LocalBackend, ProviderError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Opens a state location (`path/to/state.json`, `s3://bucket/key`) for reading.
pub type OpenState = Arc<dyn Fn(&str) -> EngineResult<Arc<dyn Backend>> + Send + Sync>;

/// Where other stacks' states are read from. Without one in the engine's contexts, local paths only; the
/// command line inserts one that knows the program's backends (`s3://`).
pub struct StateReaders {
    open: OpenState,
}

impl StateReaders {
    pub fn new(open: OpenState) -> Self {
        Self { open }
    }
    /// The backend for `location`, to read it.
    pub fn open(&self, location: &str) -> EngineResult<Arc<dyn Backend>> {
        (self.open)(location)
    }
}

#[async_trait]
impl Context for StateReaders {
    async fn init() -> Result<Self, ProviderError> {
        Ok(Self::new(Arc::new(|location: &str| {
            if location.contains("://") {
                return Err(crate::Error::Usage(format!("no backend for `{location}` in this program")));
            }
            Ok(Arc::new(LocalBackend::new(location)) as Arc<dyn Backend>)
        })))
    }
}

/// The query: the stack's name (checked against its state) and where its state is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackOutputs {
    pub stack: String,
    pub location: String,
}

/// References to another stack's outputs.
#[derive(Debug, Clone)]
pub struct StackOutputsRefs {
    address: String,
}

impl FromAddress for StackOutputsRefs {
    fn from_address(address: &str) -> Self {
        Self { address: address.to_string() }
    }
}

impl StackOutputsRefs {
    /// An output, as the kind the caller names: `let vpc: Id<ec2::Vpc> = net.get("vpc_id")`, or
    /// `net.get::<Ref<i64>>("port")`. An output the other stack does not have is a plan error.
    pub fn get<T: FromOutput>(&self, output: &str) -> T {
        T::from_output(&self.address, output)
    }
}

#[async_trait]
impl Lookup for StackOutputs {
    const TYPE: &'static str = "ferroform_stack_outputs";
    type Outputs = BTreeMap<String, Value>;
    type Refs = StackOutputsRefs;
    type Context = StateReaders;

    async fn find(ctx: &StateReaders, query: &Self) -> Result<BTreeMap<String, Value>, ProviderError> {
        let failed = |e: crate::Error| ProviderError::new(format!("reading stack `{}` at {}: {e}", query.stack, query.location));
        let backend = (ctx.open)(&query.location).map_err(failed)?;
        // Read as `plan` reads: no lock (the other stack may be applying; its last written state is what is).
        let Some(bytes) = backend.read().await.map_err(failed)? else {
            return Err(ProviderError::new(format!("stack `{}` has no state at {} (apply it first)", query.stack, query.location)));
        };
        let state = State::parse(&bytes, &backend.location()).map_err(failed)?;
        if state.stack != query.stack {
            return Err(ProviderError::new(format!(
                "the state at {} belongs to stack `{}`, not `{}`",
                query.location, state.stack, query.stack
            )));
        }
        Ok(state.outputs.into_iter().map(|(name, o)| (name, o.value)).collect())
    }
}
