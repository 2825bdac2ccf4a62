//! Apply: the plan's changes become steps in a graph; a step starts the moment its last predecessor
//! finishes, at most `parallelism` at once. State is saved before each create (as `creating`) and after
//! every completed step. On the first failure nothing new starts, running steps finish, state is saved.

use crate::diff;
use crate::error::{Error, ProviderError, Result};
use crate::graph::Config;
use crate::plan::{Action, Live, Planned, ReplaceMode};
use crate::reference;
use crate::resource::{CallMeta, Contexts, ErasedType, TAG_ADDRESS, TAG_STACK};
use crate::state::{Backend, Op, OutputState, Record, ResourceState, State, Status};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinSet;

/// What apply tells as it goes (the CLI prints it; tests observe it).
#[derive(Debug, Clone)]
pub enum Event {
    Started { address: String, action: &'static str },
    Finished { address: String, action: &'static str, elapsed: Duration, id: Option<String> },
    Failed { address: String, action: &'static str, error: String },
    Note(String),
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: Event);
}

/// Prints nothing.
pub struct Silent;
impl Reporter for Silent {
    fn event(&self, _: Event) {}
}

/// The state as the apply changes it, written to the backend as it changes. Every change is a list of
/// [`Op`]s, applied here and, on a backend with a journal, appended as one [`Record`] line (the document
/// itself is written at the start and end of the run and every `compact_every` records); on other backends
/// the whole document is written. Writes are coalesced: one write carries every change made before it
/// started.
///
/// Two kinds of change: `persist` returns once the change is on the backend (the `creating` record before a
/// create call: without it a crash could orphan what the call makes); `record` returns at once and the
/// write follows behind (after a step: if we die before it lands, the `creating` record or the next read
/// tells the truth). Writes land in change order, so a dependent's `creating` record is never durable
/// without the records of what it depends on; a step that writes nothing first waits with `durable` for
/// what its predecessors created.
#[derive(Clone)]
pub(crate) struct StateStore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    backend: Arc<dyn Backend>,
    journal: bool,
    held: std::sync::Mutex<Held>,
    /// What was handed to the backend (appended lines may still await their fsync).
    written: Mutex<Result<Written, String>>,
    /// The serial known to be on disk (or in the backend's store).
    durable: std::sync::atomic::AtomicU64,
    /// A background write is scheduled and has not started: `record` need not schedule another.
    scheduled: std::sync::atomic::AtomicBool,
}

struct Held {
    state: State,
    /// Changes not yet on the backend, in order (journal backends only).
    pending: Vec<Record>,
}

#[derive(Clone, Copy)]
struct Written {
    serial: u64,
    /// Records appended since the document was last written.
    journaled: usize,
}

/// The journal is folded into the document after this many records, or as many as the state has entries if
/// more: a document write costs its size, so this keeps an apply's bytes written linear in its steps.
const COMPACT_EVERY: usize = 1000;

/// How long a finished step's record may wait for a whole-document write (S3) to carry it along with others.
/// Anything that depends on the step waits for the write instead (see `run_step`).
const DOCUMENT_EVERY: Duration = Duration::from_secs(2);

impl StateStore {
    pub(crate) fn new(backend: Arc<dyn Backend>, state: State) -> Self {
        let journal = backend.has_journal();
        Self {
            inner: Arc::new(StoreInner {
                backend,
                journal,
                held: std::sync::Mutex::new(Held { state, pending: Vec::new() }),
                written: Mutex::new(Ok(Written { serial: 0, journaled: 0 })),
                durable: std::sync::atomic::AtomicU64::new(0),
                scheduled: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    fn poisoned(&self) -> Error {
        Error::state(self.inner.backend.location(), "in-memory state lock poisoned")
    }

    /// Reads the current state without copying it.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&State) -> T) -> Result<T> {
        let h = self.inner.held.lock().map_err(|_| self.poisoned())?;
        Ok(f(&h.state))
    }

    pub(crate) fn snapshot(&self) -> Result<State> {
        self.with(State::clone)
    }

    /// Applies the ops `f` computes from the current state, as one change; returns its serial.
    fn change(&self, f: impl FnOnce(&State) -> Vec<Op>) -> Result<u64> {
        let mut h = self.inner.held.lock().map_err(|_| self.poisoned())?;
        let ops = f(&h.state);
        for op in &ops {
            op.apply_to(&mut h.state);
        }
        h.state.serial += 1;
        let serial = h.state.serial;
        if self.inner.journal {
            let lineage = h.state.lineage.clone();
            h.pending.push(Record { lineage, serial, ops });
        }
        Ok(serial)
    }

    /// Changes the state and returns once the change is on the backend.
    pub(crate) async fn persist(&self, f: impl FnOnce(&State) -> Vec<Op>) -> Result<()> {
        let serial = self.change(f)?;
        self.flush_to(serial, false).await
    }

    /// Returns once the state up to `serial` is on the backend.
    pub(crate) async fn durable(&self, serial: u64) -> Result<()> {
        self.flush_to(serial, false).await
    }

    /// Changes the state; the write follows in the background: at once on a journal (an append is cheap), within
    /// `DOCUMENT_EVERY` on a backend that writes the whole document (one write then carries many steps).
    pub(crate) fn record(&self, f: impl FnOnce(&State) -> Vec<Op>) -> Result<()> {
        self.change(f)?;
        if !self.inner.scheduled.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let store = self.clone();
            tokio::spawn(async move {
                if !store.inner.journal {
                    tokio::time::sleep(DOCUMENT_EVERY).await;
                }
                // Changes from here on schedule a write of their own; this one takes everything before them.
                store.inner.scheduled.store(false, std::sync::atomic::Ordering::Release);
                // A failure here is kept and reported by the next `persist` or `finish`.
                if let Ok(serial) = store.with(|s| s.serial) {
                    let _ = store.flush_to(serial, false).await;
                }
            });
        }
        Ok(())
    }

    /// Returns once everything changed so far is on the backend, as a whole document (the end of a run: the
    /// state file users read holds it all, and the journal goes).
    pub(crate) async fn finish(&self) -> Result<()> {
        let serial = self.with(|s| s.serial)?;
        self.flush_to(serial, true).await
    }

    /// Makes the state up to `serial` durable (with `document`: as a whole document). Changes are taken and
    /// handed to the backend in order under `written`; a journal's fsync runs outside it, so changes made
    /// meanwhile are appended at once and ride the next fsync instead of queueing behind this one.
    async fn flush_to(&self, serial: u64, document: bool) -> Result<()> {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        if !document && self.inner.durable.load(Acquire) >= serial {
            return Ok(());
        }
        let appended = {
            let mut written = self.inner.written.lock().await;
            let done = match &*written {
                Err(e) => return Err(Error::state(self.inner.backend.location(), format!("an earlier write failed: {e}"))),
                Ok(w) => *w,
            };
            if done.serial >= serial && !(document && done.journaled > 0) {
                // Handed over already: a document is durable; an append may still need its fsync.
                if done.journaled == 0 || self.inner.durable.load(Acquire) >= serial {
                    return Ok(());
                }
                done.serial
            } else {
                // A run that may have lost its lock writes nothing (and keeps saying so: losing it is for good).
                self.inner.backend.check_held()?;
                let result = self.hand_over(done, document).await;
                match result {
                    Ok((w, false)) => {
                        *written = Ok(w);
                        self.inner.durable.fetch_max(w.serial, AcqRel);
                        return Ok(());
                    }
                    Ok((w, true)) => {
                        *written = Ok(w);
                        w.serial
                    }
                    Err(e) => {
                        *written = Err(e.to_string());
                        return Err(e);
                    }
                }
            }
        };
        match self.inner.backend.sync_journal().await {
            Ok(()) => {
                self.inner.durable.fetch_max(appended, AcqRel);
                Ok(())
            }
            Err(e) => {
                *self.inner.written.lock().await = Err(e.to_string());
                Err(e)
            }
        }
    }

    /// Hands every change not yet handed over to the backend: the whole document, or journal lines (then
    /// `true`: they still need `sync_journal`).
    async fn hand_over(&self, done: Written, document: bool) -> Result<(Written, bool)> {
        enum Write {
            Document(Vec<u8>),
            Append(Vec<Record>),
        }
        let (latest, write) = {
            let mut h = self.inner.held.lock().map_err(|_| self.poisoned())?;
            let entries = h.state.resources.len() + h.state.deposed.len();
            let compact =
                document || !self.inner.journal || done.serial == 0 || done.journaled + h.pending.len() >= COMPACT_EVERY.max(entries);
            let latest = h.state.serial;
            if compact {
                h.pending.clear();
                (latest, Write::Document(h.state.to_bytes()?))
            } else {
                (latest, Write::Append(std::mem::take(&mut h.pending)))
            }
        };
        match write {
            Write::Document(bytes) => {
                self.inner.backend.write(&bytes).await?;
                Ok((Written { serial: latest, journaled: 0 }, false))
            }
            Write::Append(records) => {
                let mut lines = Vec::with_capacity(records.len() * 512);
                for r in &records {
                    lines.extend(r.to_line()?);
                }
                self.inner.backend.append(&lines).await?;
                Ok((Written { serial: latest, journaled: done.journaled + records.len() }, true))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Step {
    Create(String),
    Update(String),
    /// The old half of a replacement.
    DeleteOld(String),
    Delete(String),
    DeleteDeposed(String, String),
}

impl Step {
    fn address(&self) -> &str {
        match self {
            Step::Create(a) | Step::Update(a) | Step::DeleteOld(a) | Step::Delete(a) | Step::DeleteDeposed(a, _) => a,
        }
    }
    fn verb(&self) -> &'static str {
        match self {
            Step::Create(_) => "create",
            Step::Update(_) => "update",
            Step::DeleteOld(_) | Step::Delete(_) | Step::DeleteDeposed(..) => "delete",
        }
    }
}

pub(crate) struct ApplyContext {
    pub config: Arc<Config>,
    pub contexts: Contexts,
    pub reporter: Arc<dyn Reporter>,
    pub parallelism: usize,
    pub interrupt: Option<watch::Receiver<bool>>,
    /// `true`: abandon running steps now (a second signal).
    pub abort: Option<watch::Receiver<bool>>,
    /// How long running steps may take to finish after an interrupt.
    pub grace: Duration,
}

struct Exec {
    config: Arc<Config>,
    contexts: Contexts,
    store: StateStore,
    live: BTreeMap<String, Option<Live>>,
    modes: HashMap<String, ReplaceMode>,
    run_id: String,
}

/// Steps and the edges between them (`a` must finish before `b`).
/// The step graph: steps, edges (`a` before `b`), and how each replacement is ordered.
struct StepGraph {
    steps: Vec<Step>,
    edges: Vec<(Step, Step)>,
    modes: HashMap<String, ReplaceMode>,
}

fn build_steps(planned: &Planned, config: &Config) -> StepGraph {
    let mut steps = Vec::new();
    let mut modes = HashMap::new();
    let mut forward: HashMap<String, Step> = HashMap::new();
    let mut delete_of: HashMap<String, Step> = HashMap::new();
    for c in &planned.plan.changes {
        match (c.action, c.deposed) {
            (Action::Create, _) => {
                forward.insert(c.address.clone(), Step::Create(c.address.clone()));
            }
            (Action::Update, _) => {
                forward.insert(c.address.clone(), Step::Update(c.address.clone()));
            }
            (Action::Replace, _) => {
                forward.insert(c.address.clone(), Step::Create(c.address.clone()));
                delete_of.insert(c.address.clone(), Step::DeleteOld(c.address.clone()));
                modes.insert(c.address.clone(), c.replace_mode.unwrap_or(ReplaceMode::CreateBeforeDestroy));
            }
            (Action::Delete, false) => {
                delete_of.insert(c.address.clone(), Step::Delete(c.address.clone()));
            }
            (Action::Delete, true) => steps.push(Step::DeleteDeposed(c.address.clone(), c.id.clone().unwrap_or_default())),
            (Action::NoOp, _) => {}
        }
    }
    steps.extend(forward.values().cloned());
    steps.extend(delete_of.values().cloned());

    let mut edges = Vec::new();
    // Forward steps wait for the forward steps of their dependencies.
    for (addr, step) in &forward {
        if let Some(n) = config.nodes.get(addr) {
            for d in &n.deps {
                if let Some(ds) = forward.get(d) {
                    edges.push((ds.clone(), step.clone()));
                }
            }
        }
    }
    // Who points at whom, in the code and in state, computed once.
    let mut config_dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (other, n) in &config.nodes {
        for d in &n.deps {
            config_dependents.entry(d.as_str()).or_default().push(other.as_str());
        }
    }
    let mut state_dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (other, r) in &planned.state.resources {
        for d in &r.dependencies {
            if d != other {
                state_dependents.entry(d.as_str()).or_default().push(other.as_str());
            }
        }
    }
    for (addr, del) in &delete_of {
        match modes.get(addr) {
            Some(ReplaceMode::CreateBeforeDestroy) => {
                edges.push((Step::Create(addr.clone()), del.clone()));
                // Everything that now points at the new object is re-pointed before the old one goes.
                for other in config_dependents.get(addr.as_str()).into_iter().flatten() {
                    if let Some(s) = forward.get(*other) {
                        edges.push((s.clone(), del.clone()));
                    }
                }
            }
            Some(ReplaceMode::DeleteBeforeCreate) => edges.push((del.clone(), Step::Create(addr.clone()))),
            None => {}
        }
        // Whatever depended on it (per state) lets go first: deleted, replaced first, or updated away.
        for other in state_dependents.get(addr.as_str()).into_iter().flatten() {
            if let Some(od) = delete_of.get(*other) {
                if modes.get(*other) != Some(&ReplaceMode::CreateBeforeDestroy) {
                    edges.push((od.clone(), del.clone()));
                }
            }
            if !modes.contains_key(addr) {
                if let Some(s) = forward.get(*other) {
                    edges.push((s.clone(), del.clone()));
                }
            }
        }
    }
    deposed_edges(planned, &steps, &forward, &delete_of, &config_dependents, &mut edges);
    StepGraph { steps, edges, modes }
}

/// Terraform's rule for deposed objects (the old half of a replacement an earlier run did not finish): one
/// is deleted only after its address's new object is made or updated and everything that uses the address
/// has moved on (updated, replaced or deleted), and before anything it used itself is deleted.
fn deposed_edges(
    planned: &Planned,
    steps: &[Step],
    forward: &HashMap<String, Step>,
    delete_of: &HashMap<String, Step>,
    config_dependents: &HashMap<&str, Vec<&str>>,
    edges: &mut Vec<(Step, Step)>,
) {
    for step in steps {
        let Step::DeleteDeposed(addr, id) = step else { continue };
        if let Some(s) = forward.get(addr) {
            edges.push((s.clone(), step.clone()));
        }
        for other in config_dependents.get(addr.as_str()).into_iter().flatten() {
            if let Some(s) = forward.get(*other) {
                edges.push((s.clone(), step.clone()));
            }
        }
        for (other, r) in &planned.state.resources {
            if r.dependencies.contains(addr) {
                if let Some(d) = delete_of.get(other) {
                    edges.push((d.clone(), step.clone()));
                }
            }
        }
        let used = planned.state.deposed.iter().find(|d| d.address == *addr && d.resource.id.as_deref() == Some(id.as_str()));
        for dep in used.map(|d| &d.resource.dependencies).into_iter().flatten() {
            if let Some(d) = delete_of.get(dep) {
                edges.push((step.clone(), d.clone()));
            }
        }
    }
}

pub(crate) async fn run(planned: Planned, backend: Arc<dyn Backend>, cx: ApplyContext) -> Result<State> {
    let StepGraph { steps, edges, modes } = build_steps(&planned, &cx.config);
    let destroy = planned.plan.destroy;
    let mut initial = planned.state.clone();
    // Fresh outputs of untouched resources (a refresh, as part of apply).
    for c in &planned.plan.changes {
        if c.action == Action::NoOp {
            if let (Some(r), Some(Some(l))) = (initial.resources.get_mut(&c.address), planned.live.get(&c.address)) {
                r.outputs = l.outputs.clone();
            }
        }
    }
    let exec = Arc::new(Exec {
        config: cx.config.clone(),
        contexts: cx.contexts.clone(),
        store: StateStore::new(backend, initial),
        live: planned.live,
        modes,
        run_id: uuid::Uuid::new_v4().to_string(),
    });
    let recorded = noop_inputs(&exec, &planned.plan.changes);
    // Renames and adoptions are state changes too: save them before anything else (the first write is the
    // whole document, so a journal always continues a document).
    exec.store.persist(|_| recorded).await?;

    let failures = walk(&exec, steps, edges, &cx).await;
    let interrupted = cx.interrupt.as_ref().map(|r| *r.borrow()).unwrap_or(false);
    let mut recorded = Ok(());
    if failures.is_empty() && !interrupted {
        let outputs = if destroy { Ok(BTreeMap::new()) } else { resolve_outputs(&exec) };
        recorded = outputs.and_then(|outputs| exec.store.record(|_| vec![Op::Outputs { outputs }]));
    }
    // Every run ends with the whole document written, whatever failed: nothing is left to a background write
    // that could land after the lock is released.
    exec.store.finish().await?;
    recorded?;
    if !failures.is_empty() {
        return Err(Error::Failed(failures));
    }
    if interrupted {
        return Err(Error::Interrupted);
    }
    exec.store.snapshot()
}

/// No-ops whose recorded inputs are not what the code says: an update whose record a killed run lost (the
/// cloud has the new values, so there is nothing to do), or a change that needs no call. Recorded as an
/// update with nothing to change records them, so state says what was applied.
fn noop_inputs(exec: &Exec, changes: &[crate::plan::Change]) -> Vec<Op> {
    let mut ops = Vec::new();
    for c in changes.iter().filter(|c| c.action == Action::NoOp && !c.deposed) {
        let (Some(node), Some(Some(live))) = (exec.config.nodes.get(&c.address), exec.live.get(&c.address)) else { continue };
        let Ok(mut desired) = exec.desired(&c.address) else { continue };
        if !node.lifecycle.ignore_changes.is_empty() {
            let live_canon = node.kind.canonical(&live.inputs, None).unwrap_or_else(|_| live.inputs.clone());
            diff::overlay_ignored(&mut desired, &live_canon, &node.lifecycle.ignore_changes);
        }
        let stale = exec.store.with(|s| s.resources.get(&c.address).filter(|r| r.inputs != desired).cloned()).ok().flatten();
        if let Some(mut r) = stale {
            r.inputs = desired;
            ops.push(Op::Put { address: c.address.clone(), resource: r });
        }
    }
    ops
}

fn resolve_outputs(exec: &Exec) -> Result<BTreeMap<String, OutputState>> {
    exec.store.with(|state| {
        let lookup = |t: &reference::TokenRef| state.resources.get(&t.address).and_then(|r| r.outputs.get(&t.field).cloned());
        exec.config
            .outputs
            .iter()
            .filter_map(|(k, o)| {
                let value = reference::resolve(&o.value, &lookup);
                // Still naming something not made (a `--target` run): no value yet, so no output.
                reference::referenced_addresses(&value).is_empty().then(|| (k.clone(), OutputState { value, sensitive: o.sensitive }))
            })
            .collect()
    })
}

/// Runs the step graph: each step as soon as its predecessors are done, bounded, stopping on failure.
async fn walk(exec: &Arc<Exec>, steps: Vec<Step>, edges: Vec<(Step, Step)>, cx: &ApplyContext) -> Vec<Error> {
    // Per step: how many predecessors are still to finish, and the state serial that must be durable before it
    // starts (what its finished creates recorded).
    let mut waiting: HashMap<Step, (usize, u64)> = steps.iter().map(|s| (s.clone(), (0, 0))).collect();
    let mut next: HashMap<Step, Vec<Step>> = HashMap::new();
    let mut seen = BTreeSet::new();
    for (a, b) in edges {
        if a == b || !waiting.contains_key(&a) || !waiting.contains_key(&b) || !seen.insert((a.clone(), b.clone())) {
            continue;
        }
        if let Some((n, _)) = waiting.get_mut(&b) {
            *n += 1;
        }
        next.entry(a).or_default().push(b);
    }
    // Ready steps in a stable order: the order of the plan.
    let mut ready: Vec<Step> = steps.iter().filter(|s| waiting.get(*s).map(|w| w.0) == Some(0)).cloned().collect();
    let mut running: JoinSet<(Step, Result<u64>)> = JoinSet::new();
    let mut failures = Vec::new();
    let mut stopped = false;
    let mut finished = 0usize;
    let total = steps.len();
    let parallelism = cx.parallelism.max(1);
    let mut interrupt = cx.interrupt.clone();
    let mut abort = cx.abort.clone();
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut in_flight: HashMap<tokio::task::Id, String> = HashMap::new();
    loop {
        let interrupted = interrupt.as_ref().map(|r| *r.borrow()).unwrap_or(false);
        if interrupted && !stopped {
            stopped = true;
            deadline = Some(tokio::time::Instant::now() + cx.grace);
            cx.reporter.event(Event::Note("interrupt received: letting running steps finish, starting nothing new".into()));
        }
        while !stopped && running.len() < parallelism && !ready.is_empty() {
            // A run that may have lost its lock starts nothing more.
            if let Err(e) = exec.store.inner.backend.check_held() {
                stopped = true;
                failures.push(e);
                break;
            }
            let step = ready.remove(0);
            let needs = waiting.get(&step).map_or(0, |w| w.1);
            let exec = exec.clone();
            let reporter = cx.reporter.clone();
            let address = step.address().to_string();
            let handle = running.spawn(async move {
                let started = Instant::now();
                reporter.event(Event::Started { address: step.address().to_string(), action: step.verb() });
                let span = tracing::info_span!("step", address = step.address(), action = step.verb());
                let result = tracing::Instrument::instrument(run_step(&exec, &step, needs), span).await;
                match &result {
                    Ok(id) => reporter.event(Event::Finished {
                        address: step.address().to_string(),
                        action: step.verb(),
                        elapsed: started.elapsed(),
                        id: id.clone(),
                    }),
                    Err(e) => {
                        reporter.event(Event::Failed { address: step.address().to_string(), action: step.verb(), error: e.to_string() })
                    }
                }
                // A create's serial: what its dependents need durable before they start.
                let result = result.and_then(|_| if matches!(step, Step::Create(_)) { exec.store.with(|s| s.serial) } else { Ok(0) });
                (step, result)
            });
            in_flight.insert(handle.id(), address);
        }
        if running.is_empty() {
            break;
        }
        let joined = match (interrupt.as_mut(), deadline) {
            (Some(rx), _) if !stopped => {
                tokio::select! {
                    j = running.join_next_with_id() => j,
                    _ = rx.changed() => continue,
                }
            }
            // Interrupted: running steps get until the deadline, or until a second signal.
            (_, Some(deadline)) => {
                let why = tokio::select! {
                    j = running.join_next_with_id() => {
                        let Some(joined) = j else { break };
                        finished += 1;
                        handle_joined(joined, &mut in_flight, &mut next, &mut waiting, &mut ready, &mut failures, &mut stopped);
                        continue;
                    }
                    _ = tokio::time::sleep_until(deadline) => "they did not finish within the grace period",
                    _ = until_true(&mut abort) => "a second signal was received",
                };
                // Cancelling a step drops its future: its waits end, and a create it was in stays
                // `creating` in state, found by tags on the next run.
                running.abort_all();
                while running.join_next().await.is_some() {}
                let names: Vec<String> = std::mem::take(&mut in_flight).into_values().collect();
                cx.reporter.event(Event::Note(format!("abandoned {} ({why}); the next run picks them up", names.join(", "))));
                failures.push(Error::Usage(format!("interrupted: abandoned {} ({why})", names.join(", "))));
                break;
            }
            _ => running.join_next_with_id().await,
        };
        let Some(joined) = joined else { break };
        finished += 1;
        handle_joined(joined, &mut in_flight, &mut next, &mut waiting, &mut ready, &mut failures, &mut stopped);
    }
    if failures.is_empty() && !stopped && finished < total {
        failures
            .push(Error::Usage(format!("{} step(s) could not be ordered (a cycle among replacements and deletions)", total - finished)));
    }
    failures
}

type Joined = std::result::Result<(tokio::task::Id, (Step, Result<u64>)), tokio::task::JoinError>;

/// A finished step: its successors may become ready; a failure stops new work.
fn handle_joined(
    joined: Joined,
    in_flight: &mut HashMap<tokio::task::Id, String>,
    next: &mut HashMap<Step, Vec<Step>>,
    waiting: &mut HashMap<Step, (usize, u64)>,
    ready: &mut Vec<Step>,
    failures: &mut Vec<Error>,
    stopped: &mut bool,
) {
    match joined {
        Ok((id, (step, Ok(serial)))) => {
            in_flight.remove(&id);
            for n in next.remove(&step).unwrap_or_default() {
                if let Some((w, needs)) = waiting.get_mut(&n) {
                    *w -= 1;
                    *needs = (*needs).max(serial);
                    if *w == 0 {
                        ready.push(n);
                    }
                }
            }
        }
        Ok((id, (_, Err(e)))) => {
            in_flight.remove(&id);
            *stopped = true;
            failures.push(e);
        }
        Err(join) => {
            in_flight.remove(&join.id());
            *stopped = true;
            failures.push(Error::Usage(format!("a step panicked: {join}")));
        }
    }
}

/// Returns once the receiver holds `true`; never, without one.
async fn until_true(rx: &mut Option<watch::Receiver<bool>>) {
    match rx {
        Some(rx) => {
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
        None => std::future::pending().await,
    }
}

fn provider_err(address: &str, operation: &'static str) -> impl FnOnce(ProviderError) -> Error {
    let address = address.to_string();
    move |source| Error::Provider { address, operation, source }
}

impl Exec {
    fn kind(&self, type_name: &str, address: &str) -> Result<Arc<dyn ErasedType>> {
        self.config.registry.get(type_name).ok_or_else(|| Error::Refused {
            address: address.to_string(),
            message: format!("resource type {type_name} is not known to this program; add its provider"),
        })
    }

    fn meta(&self, address: &str, step: &str) -> CallMeta {
        // A create's own lookups (after an ambiguous failure) must not take the deposed old object, nor an
        // object another address of the same type holds (untagged types are found by identity and look alike).
        // Read from the state when a lookup asks, not copied for every step.
        let type_name = self.config.nodes.get(address).map(|n| n.kind.type_name()).unwrap_or_default();
        let (store, own) = (self.store.clone(), address.to_string());
        let exclude = crate::resource::Exclude::lazy(move || store.with(|s| s.not_for(&own, type_name)).unwrap_or_default());
        CallMeta {
            stack: self.config.stack.clone(),
            address: address.to_string(),
            idempotency_token: format!("{}-{step}-{address}", self.run_id),
            exclude,
        }
    }

    /// Desired inputs with every reference resolved from the state as it is now.
    fn desired(&self, address: &str) -> Result<Value> {
        let node = &self.config.nodes[address];
        let resolved = self.store.with(|state| {
            let lookup = |t: &reference::TokenRef| {
                state.resources.get(&t.address).and_then(|r| r.outputs.get(&t.field).cloned()).filter(|v| !v.is_null())
            };
            reference::resolve(&node.inputs, &lookup)
        })?;
        if let Some((field, r)) = reference::references(&resolved).into_iter().next() {
            return Err(Error::Refused {
                address: address.to_string(),
                message: format!("field `{field}`: the output `{}` of `{}` has no value", r.field, r.address),
            });
        }
        let mut tags = self.config.default_tags.clone();
        tags.insert(TAG_STACK.into(), self.config.stack.clone());
        tags.insert(TAG_ADDRESS.into(), address.to_string());
        node.kind.canonical(&resolved, Some(&tags)).map_err(|message| Error::Refused { address: address.to_string(), message })
    }
}

/// Runs a step once what its predecessors created is durable (`needs`: a serial). A create makes it so by
/// writing its own `creating` record first; other steps wait for it here.
async fn run_step(exec: &Exec, step: &Step, needs: u64) -> Result<Option<String>> {
    if needs > 0 && !matches!(step, Step::Create(_)) {
        exec.store.durable(needs).await?;
    }
    match step {
        Step::Create(a) => create(exec, a).await.map(Some),
        Step::Update(a) => update(exec, a).await.map(|_| None),
        Step::DeleteOld(a) => delete_old(exec, a).await.map(|_| None),
        Step::Delete(a) => delete(exec, a).await.map(|_| None),
        Step::DeleteDeposed(a, id) => delete_deposed(exec, a, id).await.map(|_| None),
    }
}

async fn create(exec: &Exec, address: &str) -> Result<String> {
    let node = &exec.config.nodes[address];
    let desired = exec.desired(address)?;
    let meta = exec.meta(address, "create");
    let protect = node.lifecycle.prevent_destroy.unwrap_or(node.kind.protect_by_default());
    let deps = node.deps.clone();
    let cbd = exec.modes.get(address) == Some(&ReplaceMode::CreateBeforeDestroy);
    let entry = ResourceState {
        type_name: node.kind.type_name().to_string(),
        id: None,
        inputs: desired.clone(),
        outputs: Value::Null,
        dependencies: deps,
        status: Status::Creating,
        protect,
        token: Some(meta.idempotency_token.clone()),
        sensitive: node.lifecycle.sensitive.clone(),
        provider: node.lifecycle.provider.clone(),
    };
    // Written before the call: if we die during it, the next run looks for what it made.
    exec.store
        .persist(|s| {
            let old = s.resources.get(address).filter(|old| cbd && old.status == Status::Ready);
            let depose = old.map(|old| Op::Depose { address: address.to_string(), resource: old.clone() });
            depose.into_iter().chain([Op::Put { address: address.to_string(), resource: entry }]).collect()
        })
        .await?;
    // Again now that the old object of a replacement is deposed: the create's own lookups must leave it alone.
    let meta = exec.meta(address, "create");
    let contexts = exec.contexts.for_provider(node.lifecycle.provider.as_deref());
    let (id, outputs) = match node.kind.create(&contexts, &desired, &meta).await {
        Ok(made) => made,
        // The type looks before sending its create again, but a later call of the create (a tag, an
        // attribute) can lose every answer too: an object found by this create's tags, as desired, is done.
        Err(e) => match created_settled(&node.kind, &contexts, &desired, &meta, &node.lifecycle).await {
            Some(made) => made,
            None => return Err(provider_err(address, "create")(e)),
        },
    };
    exec.store.record(|s| {
        put_changed(s, address, |r| {
            r.id = Some(id.clone());
            r.outputs = outputs;
            r.status = Status::Ready;
            r.token = None;
        })
    })?;
    Ok(id)
}

async fn update(exec: &Exec, address: &str) -> Result<()> {
    let node = &exec.config.nodes[address];
    let mut desired = exec.desired(address)?;
    let Some(Some(live)) = exec.live.get(address) else {
        return Err(Error::Refused { address: address.into(), message: "planned as an update, but it was not read".into() });
    };
    let live_canon = node.kind.canonical(&live.inputs, None).unwrap_or_else(|_| live.inputs.clone());
    // Ignored paths keep their live values, in the call and in state.
    diff::overlay_ignored(&mut desired, &live_canon, &node.lifecycle.ignore_changes);
    let rules = in_place_rules(&node.kind, &node.lifecycle);
    let changed = diff::changed_fields(&diff::diff_fields(&desired, Some(&live_canon), &rules));
    let outputs = if changed.is_empty() {
        live.outputs.clone()
    } else {
        let meta = exec.meta(address, "update");
        let contexts = exec.contexts.for_provider(node.lifecycle.provider.as_deref());
        match node.kind.update(&contexts, &live.id, &live.inputs, &desired, &changed, &meta).await {
            Ok(outputs) => outputs,
            // The service may have made the change and its answer been lost (every retry's too): what the
            // object holds now settles it.
            Err(e) => match read_one(&node.kind, &contexts, &live.id, &live.inputs).await {
                Some((inputs, outputs)) if matches_desired(&inputs, &desired, &rules) => outputs,
                _ => return Err(provider_err(address, "update")(e)),
            },
        }
    };
    let protect = node.lifecycle.prevent_destroy.unwrap_or(node.kind.protect_by_default());
    let deps = node.deps.clone();
    let sensitive = node.lifecycle.sensitive.clone();
    exec.store.record(|s| {
        put_changed(s, address, |r| {
            r.inputs = desired;
            r.outputs = outputs;
            r.dependencies = deps;
            r.protect = protect;
            r.sensitive = sensitive;
        })
    })
}

/// The entry at `address` changed by `f`, as the op that records it (none if it is not in state).
fn put_changed(s: &State, address: &str, f: impl FnOnce(&mut ResourceState)) -> Vec<Op> {
    let Some(r) = s.resources.get(address) else { return Vec::new() };
    let mut r = r.clone();
    f(&mut r);
    vec![Op::Put { address: address.to_string(), resource: r }]
}

async fn delete_old(exec: &Exec, address: &str) -> Result<()> {
    match exec.modes.get(address) {
        Some(ReplaceMode::CreateBeforeDestroy) => {
            let id = exec.live.get(address).and_then(|l| l.as_ref()).map(|l| l.id.clone()).unwrap_or_default();
            delete_deposed(exec, address, &id).await
        }
        _ => delete(exec, address).await,
    }
}

async fn delete(exec: &Exec, address: &str) -> Result<()> {
    let Some((type_name, provider)) = exec.store.with(|s| s.resources.get(address).map(|r| (r.type_name.clone(), r.provider.clone())))?
    else {
        return Ok(());
    };
    if let Some(Some(live)) = exec.live.get(address) {
        let kind = exec.kind(&type_name, address)?;
        let contexts = exec.contexts.for_provider(provider.as_deref());
        delete_settled(&kind, &contexts, &live.id, &live.inputs).await.map_err(provider_err(address, "delete"))?;
    }
    exec.store.record(|_| vec![Op::Remove { address: address.to_string() }])
}

/// Deletes `id`. A delete that failed is done all the same when a read finds the object gone: the service
/// may have acted and the answer been lost, the retries' answers too (a retry of a done delete is answered
/// NotFound, but that answer can be lost as well). Terraform fails there and leaves it to the next run.
async fn delete_settled(
    kind: &Arc<dyn ErasedType>,
    contexts: &Contexts,
    id: &str,
    prior: &Value,
) -> std::result::Result<(), ProviderError> {
    let Err(e) = kind.delete(contexts, id, prior).await else { return Ok(()) };
    match kind.read_many(contexts, &[(id.to_string(), prior.clone())]).await.pop() {
        Some(Ok(None)) => Ok(()),
        _ => Err(e),
    }
}

/// The object a failed create made after all: found by the create's tags (or identity) and as desired.
async fn created_settled(
    kind: &Arc<dyn ErasedType>,
    contexts: &Contexts,
    desired: &Value,
    meta: &CallMeta,
    lifecycle: &crate::stack::Lifecycle,
) -> Option<(String, Value)> {
    let id = kind.find_by_tags(contexts, desired, meta).await.ok()??;
    let (inputs, outputs) = read_one(kind, contexts, &id, desired).await?;
    matches_desired(&inputs, desired, &in_place_rules(kind, lifecycle)).then_some((id, outputs))
}

/// How an object is compared with what the code wants once it exists: no field replaces it.
fn in_place_rules<'a>(kind: &Arc<dyn ErasedType>, lifecycle: &'a crate::stack::Lifecycle) -> diff::Rules<'a> {
    diff::Rules { replace: &[], computed: kind.computed(), ignore: &lifecycle.ignore_changes, sensitive: &lifecycle.sensitive }
}

/// What the object `id` holds now (its inputs, canonical, and outputs), if a read finds it.
async fn read_one(kind: &Arc<dyn ErasedType>, contexts: &Contexts, id: &str, prior: &Value) -> Option<(Value, Value)> {
    let (inputs, outputs) = kind.read_many(contexts, &[(id.to_string(), prior.clone())]).await.pop()?.ok()??;
    Some((kind.canonical(&inputs, None).unwrap_or(inputs), outputs))
}

/// True when `live` (canonical) differs from `desired` in nothing the plan would change.
fn matches_desired(live: &Value, desired: &Value, rules: &diff::Rules) -> bool {
    diff::changed_fields(&diff::diff_fields(desired, Some(live), rules)).is_empty()
}

async fn delete_deposed(exec: &Exec, address: &str, id: &str) -> Result<()> {
    let found = exec.store.with(|s| {
        s.deposed
            .iter()
            .find(|d| d.address == address && d.resource.id.as_deref() == Some(id))
            .map(|d| (d.resource.type_name.clone(), d.resource.inputs.clone(), d.resource.provider.clone()))
    })?;
    let Some((type_name, inputs, provider)) = found else { return Ok(()) };
    let kind = exec.kind(&type_name, address)?;
    delete_settled(&kind, &exec.contexts.for_provider(provider.as_deref()), id, &inputs).await.map_err(provider_err(address, "delete"))?;
    exec.store.record(|_| vec![Op::Undepose { address: address.to_string(), id: Some(id.to_string()) }])
}
