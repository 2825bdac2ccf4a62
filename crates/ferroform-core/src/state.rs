//! The state document and where it is kept.
//!
//! State is versioned (format version), ordered (serial, +1 on every write) and has a lineage (a uuid made
//! with the first state, so a plan or a backup from another stack is never taken for this one).

use crate::error::{Error, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub format_version: u32,
    pub serial: u64,
    pub lineage: String,
    pub stack: String,
    /// The account, region and partition the state belongs to, recorded by the first run that read the
    /// cloud; every later run with other credentials is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<crate::resource::Identity>,
    pub resources: BTreeMap<String, ResourceState>,
    /// Old objects of a create-before-destroy replacement, kept until deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deposed: Vec<DeposedState>,
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    #[serde(rename = "type")]
    pub type_name: String,
    /// The cloud's id; `None` while a create is in flight (see `status`).
    pub id: Option<String>,
    /// The inputs as last applied (or as last read, after refresh/import).
    pub inputs: Value,
    pub outputs: Value,
    pub dependencies: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Status::is_ready")]
    pub status: Status,
    /// prevent_destroy as last applied: a protected resource dropped from the code is still refused deletion.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protect: bool,
    /// The idempotency token of the step in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Paths of the inputs that were sensitive when last applied: a secret the code no longer declares is
    /// still hidden in the plan that removes it.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sensitive: BTreeSet<String>,
}

/// `creating` is written *before* a create call: a run killed during the call leaves it, and the next run
/// looks for what the call made (by tags) instead of orphaning it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Ready,
    Creating,
}

impl Status {
    fn is_ready(&self) -> bool {
        *self == Status::Ready
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeposedState {
    pub address: String,
    #[serde(flatten)]
    pub resource: ResourceState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputState {
    pub value: Value,
    #[serde(default)]
    pub sensitive: bool,
}

impl State {
    pub fn new(stack: &str) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            serial: 0,
            lineage: uuid::Uuid::new_v4().to_string(),
            stack: stack.to_string(),
            account: None,
            resources: BTreeMap::new(),
            deposed: Vec::new(),
            outputs: BTreeMap::new(),
        }
    }

    /// Parses and checks a state document; never guesses at a damaged or newer one.
    pub fn parse(bytes: &[u8], location: &str) -> Result<State> {
        let raw: Value = serde_json::from_slice(bytes).map_err(|e| {
            Error::state(
                location,
                format!("is not valid JSON ({e}); it was left untouched. Restore the backup next to it (`.backup`) if this one is damaged"),
            )
        })?;
        let version = raw.get("format_version").and_then(Value::as_u64);
        match version {
            Some(v) if v > u64::from(FORMAT_VERSION) => {
                return Err(Error::state(location, format!("has format version {v}, newer than this ferroform understands ({FORMAT_VERSION}); upgrade ferroform. The file was left untouched")))
            }
            Some(_) => {}
            None => return Err(Error::state(location, "has no format_version: it is not a ferroform state file; it was left untouched")),
        }
        serde_json::from_value(raw).map_err(|e| Error::state(location, format!("is damaged: {e}; it was left untouched")))
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut v = serde_json::to_vec(self).map_err(|e| Error::state("(memory)", e.to_string()))?;
        v.push(b'\n');
        Ok(v)
    }
}

/// Who holds a lock, written into the lock so a blocked run can name the holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub operation: String,
    pub who: String,
    pub host: String,
    pub pid: u32,
    pub created: String,
}

impl LockInfo {
    pub fn new(operation: &str) -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_string()))
            .unwrap_or_else(|| "unknown-host".into());
        let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            operation: operation.to_string(),
            who,
            host,
            pid: std::process::id(),
            created: chrono::Utc::now().to_rfc3339(),
        }
    }

    pub fn describe(&self) -> String {
        format!("{}@{} (pid {}, {} since {}, lock id {})", self.who, self.host, self.pid, self.operation, self.created, self.id)
    }
}

/// Where state lives. Implementations must make `write` atomic: a reader sees the old or the new
/// document, never a mix.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Human-readable location, for messages.
    fn location(&self) -> String;
    async fn read(&self) -> Result<Option<Vec<u8>>>;
    async fn write(&self, bytes: &[u8]) -> Result<()>;
    /// Takes the lock or fails with `Error::Locked` naming the holder.
    async fn lock(&self, info: &LockInfo) -> Result<()>;
    async fn unlock(&self, id: &str) -> Result<()>;
    /// Removes the lock whatever its holder (`force-unlock ID` checks the id first).
    async fn force_unlock(&self, id: &str) -> Result<()>;
    /// Whether this run may still act under the lock it took, judged locally without a call (a lease that
    /// may have run out counts as lost). Apply asks before each step and each state write and stops on `Err`.
    fn check_held(&self) -> Result<()> {
        Ok(())
    }
}

/// Loads state from a backend, or a fresh one when there is none yet.
pub async fn load(backend: &dyn Backend, stack: &str) -> Result<State> {
    match backend.read().await? {
        Some(bytes) => {
            let state = State::parse(&bytes, &backend.location())?;
            if state.stack != stack {
                return Err(Error::state(
                    backend.location(),
                    format!("belongs to stack `{}`, not `{stack}`; use --state to pick this stack's file", state.stack),
                ));
            }
            Ok(state)
        }
        None => Ok(State::new(stack)),
    }
}
