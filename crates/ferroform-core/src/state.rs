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
    /// The same for each provider alias resources are on (`Stack::provider`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provider_accounts: BTreeMap<String, Option<crate::resource::Identity>>,
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
    /// The provider alias it is managed through (`None`: the default provider): reads and deletes use it,
    /// even after the code dropped the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
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
    /// What a lookup for `address`'s object must never take: its deposed objects (the old halves of a
    /// replacement, with the same tags) and the ids other addresses of the same type hold (untagged types
    /// found by identity look alike).
    pub fn not_for(&self, address: &str, type_name: &str) -> Vec<String> {
        let deposed = self.deposed.iter().filter(|d| d.address == address).filter_map(|d| d.resource.id.clone());
        let held = self.resources.iter().filter(|(a, r)| *a != address && r.type_name == type_name).filter_map(|(_, r)| r.id.clone());
        deposed.chain(held).collect()
    }

    pub fn new(stack: &str) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            serial: 0,
            lineage: uuid::Uuid::new_v4().to_string(),
            stack: stack.to_string(),
            account: None,
            provider_accounts: BTreeMap::new(),
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

/// One change to the state as apply makes it. The same `apply_to` changes the state during a run and replays
/// the journal after a crash, so a recovered state is exactly the one the run had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// The entry at `address`, new or in place of the one there.
    Put {
        address: String,
        resource: ResourceState,
    },
    Remove {
        address: String,
    },
    /// The old object of a create-before-destroy replacement, kept until deleted.
    Depose {
        address: String,
        resource: ResourceState,
    },
    /// A deposed object was deleted.
    Undepose {
        address: String,
        id: Option<String>,
    },
    Outputs {
        outputs: BTreeMap<String, OutputState>,
    },
}

impl Op {
    pub fn apply_to(&self, state: &mut State) {
        match self {
            Op::Put { address, resource } => {
                state.resources.insert(address.clone(), resource.clone());
            }
            Op::Remove { address } => {
                state.resources.remove(address);
            }
            Op::Depose { address, resource } => state.deposed.push(DeposedState { address: address.clone(), resource: resource.clone() }),
            Op::Undepose { address, id } => state.deposed.retain(|d| !(d.address == *address && d.resource.id == *id)),
            Op::Outputs { outputs } => state.outputs = outputs.clone(),
        }
    }
}

/// A journal line: the changes of one step, taking the state of `lineage` to `serial`. The ops of one line
/// land together or not at all (a step that deposes the old object and records the new one is never half
/// recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub lineage: String,
    pub serial: u64,
    pub ops: Vec<Op>,
}

impl Record {
    /// One JSON line, newline included.
    pub fn to_line(&self) -> Result<Vec<u8>> {
        let mut v = serde_json::to_vec(self).map_err(|e| Error::state("(memory)", e.to_string()))?;
        v.push(b'\n');
        Ok(v)
    }
}

impl State {
    /// Applies a journal's lines (each a [`Record`]) to this document. Records the document already holds
    /// (written before it) are skipped. A damaged last line is a write the crash tore: ignored, with a
    /// warning. A damaged line before the last, a record of another lineage or a gap in serials is an
    /// error naming the file and line. Returns how many records were applied.
    pub fn replay(&mut self, journal: &[u8], location: &str) -> Result<usize> {
        let lines: Vec<&[u8]> = journal.split(|b| *b == b'\n').collect();
        let mut applied = 0;
        for (i, line) in lines.iter().enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let n = i + 1;
            let record = match serde_json::from_slice::<Record>(line) {
                Ok(r) => r,
                // Only blank text after it: the last write, cut short.
                Err(e) if lines[i + 1..].iter().all(|l| l.iter().all(u8::is_ascii_whitespace)) => {
                    eprintln!("warning: {location} line {n} is incomplete ({e}): a write cut short by a crash; ignoring it");
                    break;
                }
                Err(e) => {
                    return Err(Error::state(
                        location,
                        format!(
                            "line {n} is damaged ({e}); the lines after it are whole, so this is not a cut-short write. Left untouched"
                        ),
                    ))
                }
            };
            if record.lineage != self.lineage {
                return Err(Error::state(
                    location,
                    format!(
                        "line {n} belongs to another state (lineage {}, the state's is {}); left untouched",
                        record.lineage, self.lineage
                    ),
                ));
            }
            if record.serial <= self.serial {
                continue;
            }
            if record.serial != self.serial + 1 {
                return Err(Error::state(
                    location,
                    format!("line {n} takes the state to serial {} but the state is at {}: the journal does not continue this state (a restored backup?); left untouched", record.serial, self.serial),
                ));
            }
            for op in &record.ops {
                op.apply_to(self);
            }
            self.serial = record.serial;
            applied += 1;
        }
        Ok(applied)
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
    /// Whether this backend keeps a journal: then a run appends a [`Record`] per step instead of writing the
    /// whole document, `write` (the whole document) supersedes the journal, `read` returns the document with
    /// the journal applied, and `lock` folds a journal left by a killed run into the document.
    fn has_journal(&self) -> bool {
        false
    }
    /// Appends journal lines (whole [`Record`] lines) after those appended before, in call order. They are
    /// durable once a `sync_journal` that started after this call returns.
    async fn append(&self, _lines: &[u8]) -> Result<()> {
        Err(Error::state(self.location(), "keeps no journal"))
    }
    /// Makes every line appended so far durable. Calls may overlap each other and later appends.
    async fn sync_journal(&self) -> Result<()> {
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
