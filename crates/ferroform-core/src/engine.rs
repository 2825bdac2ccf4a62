//! The library verbs. The CLI is a thin layer over these; a Rust program can call them directly.

use crate::apply::{self, ApplyContext, Reporter, Silent};
use crate::error::{Error, Result};
use crate::graph::{self, Config};
use crate::plan::{self, Live, Plan, PlanInput, Planned};
use crate::reference;
use crate::resource::{CallMeta, Contexts};
use crate::stack::Stack;
use crate::state::{self, Backend, LockInfo, OutputState, ResourceState, State, Status};
use futures::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How many resources one `read_many` call is given.
const READ_BATCH: usize = 100;

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub destroy: bool,
    /// Only these addresses and what they need (for destroy: and what needs them).
    pub targets: Vec<String>,
    /// Replace these even though no field forces it (Terraform's `-replace`).
    pub replace: Vec<String>,
    /// Show (and on apply, record in state) what changed outside ferroform; change nothing in the cloud.
    pub refresh_only: bool,
    /// Take state as what is live and read nothing (Terraform's `-refresh=false`).
    pub skip_refresh: bool,
}

pub struct Engine {
    backend: Arc<dyn Backend>,
    contexts: Contexts,
    parallelism: usize,
    reporter: Arc<dyn Reporter>,
    interrupt: Option<watch::Receiver<bool>>,
    abort: Option<watch::Receiver<bool>>,
    grace: Duration,
    lock_timeout: Duration,
}

impl Engine {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            contexts: Contexts::new(),
            parallelism: 10,
            reporter: Arc::new(Silent),
            interrupt: None,
            abort: None,
            grace: Duration::from_secs(30),
            lock_timeout: Duration::ZERO,
        }
    }
    pub fn contexts(mut self, contexts: Contexts) -> Self {
        self.contexts = contexts;
        self
    }
    pub fn parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }
    pub fn reporter(mut self, r: Arc<dyn Reporter>) -> Self {
        self.reporter = r;
        self
    }
    /// Once the receiver sees `true`, apply starts nothing new, lets running steps finish and saves state.
    pub fn interrupt(mut self, rx: watch::Receiver<bool>) -> Self {
        self.interrupt = Some(rx);
        self
    }
    /// Once the receiver sees `true` (a second signal), running steps are abandoned at once: their waits
    /// end, state is saved (a create in flight stays `creating`, adopted by tags next time), the lock is
    /// released.
    pub fn abort(mut self, rx: watch::Receiver<bool>) -> Self {
        self.abort = Some(rx);
        self
    }
    /// How long running steps may take to finish after an interrupt before they are abandoned (default 30 s).
    pub fn grace(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }
    /// How long to wait for a held lock before giving up (default: fail at once).
    pub fn lock_timeout(mut self, d: Duration) -> Self {
        self.lock_timeout = d;
        self
    }
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Checks the stack without any API call.
    pub fn validate(&self, stack: &Stack) -> Result<()> {
        graph::build(stack).map(|_| ())
    }

    /// The dependency graph as DOT.
    pub fn graph(&self, stack: &Stack) -> Result<String> {
        Ok(graph::to_dot(&graph::build(stack)?))
    }

    /// Reads live state and diffs it against the stack. Takes no lock and changes nothing.
    pub async fn plan(&self, stack: &Stack, opts: &PlanOptions) -> Result<Plan> {
        let config = Arc::new(graph::build(stack)?);
        self.configure(&config);
        let state = state::load(self.backend.as_ref(), &config.stack).await?;
        Ok(self.compute(config, state, opts).await?.0.plan)
    }

    /// Takes the lock and plans; the returned session applies exactly that plan.
    pub async fn begin(&self, stack: &Stack, opts: &PlanOptions) -> Result<Session<'_>> {
        let config = Arc::new(graph::build(stack)?);
        self.configure(&config);
        let lock = self.lock(if opts.destroy { "destroy" } else { "apply" }).await?;
        let (planned, config) = match self.locked_plan(config, opts).await {
            Ok(p) => p,
            Err(e) => {
                let _ = self.backend.unlock(&lock.id).await;
                return Err(e);
            }
        };
        Ok(Session { engine: self, config, planned: Some(planned), lock })
    }

    /// Applies a plan saved earlier, refusing if the code, the state or the live resources moved since.
    pub async fn begin_saved(&self, stack: &Stack, saved: &Plan) -> Result<Session<'_>> {
        let opts = PlanOptions {
            destroy: saved.destroy,
            targets: saved.targets.clone(),
            replace: saved.replace.clone(),
            refresh_only: saved.refresh_only,
            skip_refresh: false,
        };
        let session = self.begin(stack, &opts).await?;
        match stale_reason(saved, session.plan()) {
            None => Ok(session),
            Some(why) => {
                session.release().await;
                Err(Error::StalePlan(why))
            }
        }
    }

    /// Plan and apply in one go (no confirmation): the automation API.
    pub async fn apply(&self, stack: &Stack, opts: &PlanOptions) -> Result<(Plan, State)> {
        let session = self.begin(stack, opts).await?;
        let plan = session.plan().clone();
        let state = session.apply().await?;
        Ok((plan, state))
    }

    pub async fn destroy(&self, stack: &Stack) -> Result<(Plan, State)> {
        self.apply(stack, &PlanOptions { destroy: true, ..Default::default() }).await
    }

    /// Reads every resource in state and records what it finds (drift becomes visible in state).
    pub async fn refresh(&self, stack: &Stack) -> Result<State> {
        let config = graph::build(stack)?;
        self.configure(&config);
        let lock = self.lock("refresh").await?;
        let result = async {
            let mut state = state::load(self.backend.as_ref(), &config.stack).await?;
            self.guard(&config, &mut state).await?;
            let (state, live, _) = self.read_live(&config, state, false).await?;
            write_live(self.backend.as_ref(), state, live).await
        }
        .await;
        let _ = self.backend.unlock(&lock.id).await;
        result
    }

    /// Brings an existing cloud resource under management at `address` (declared in the stack).
    pub async fn import(&self, stack: &Stack, address: &str, id: &str) -> Result<ResourceState> {
        let config = graph::build(stack)?;
        self.configure(&config);
        let Some(node) = config.nodes.get(address) else {
            return Err(Error::Usage(format!("`{address}` is not declared in the stack; add it to the code first, then import")));
        };
        let lock = self.lock("import").await?;
        let result = async {
            let mut state = state::load(self.backend.as_ref(), &config.stack).await?;
            self.guard(&config, &mut state).await?;
            if state.resources.contains_key(address) {
                return Err(Error::Usage(format!("`{address}` is already in state; `state rm` it first to import another object")));
            }
            let entry = self.read_for_import(node, &state, address, id).await?;
            state.resources.insert(address.to_string(), entry.clone());
            state.serial += 1;
            self.backend.write(&state.to_bytes()?).await?;
            Ok(entry)
        }
        .await;
        let _ = self.backend.unlock(&lock.id).await;
        result
    }

    /// Reads the object `id` for `address` (the code's inputs help types that need more than an id) and
    /// makes its state entry.
    async fn read_for_import(&self, node: &graph::Node, state: &State, address: &str, id: &str) -> Result<ResourceState> {
        let lookup = |t: &reference::TokenRef| state.resources.get(&t.address).and_then(|r| r.outputs.get(&t.field).cloned());
        let prior = reference::resolve(&node.inputs, &lookup);
        let contexts = self.contexts.for_provider(node.lifecycle.provider.as_deref());
        let found = node.kind.read_many(&contexts, &[(id.to_string(), prior)]).await.into_iter().next();
        let (inputs, outputs) = match found {
            Some(Ok(Some(v))) => v,
            Some(Ok(None)) | None => return Err(Error::Usage(format!("no {} with id `{id}` was found", node.kind.type_name()))),
            Some(Err(source)) => return Err(Error::Provider { address: address.to_string(), operation: "import", source }),
        };
        Ok(ResourceState {
            type_name: node.kind.type_name().to_string(),
            id: Some(id.to_string()),
            inputs,
            outputs,
            dependencies: node.deps.clone(),
            status: Status::Ready,
            protect: node.lifecycle.prevent_destroy.unwrap_or(node.kind.protect_by_default()),
            token: None,
            sensitive: node.lifecycle.sensitive.clone(),
            provider: node.lifecycle.provider.clone(),
        })
    }

    /// Takes over what a Terraform state manages (`terraform_state`: its bytes, read from `location`): settles
    /// every stack resource (see [`crate::terraform`]) and, only when all are settled, reads each matched object
    /// and writes ferroform's state under the lock. Nothing in the cloud changes. The matching is returned
    /// either way (its `proposal()` is the mapping file to review).
    pub async fn import_terraform(
        &self,
        stack: &Stack,
        terraform_state: &[u8],
        location: &str,
        mapping: &crate::terraform::Mapping,
    ) -> Result<crate::terraform::Matching> {
        let config = graph::build(stack)?;
        self.configure(&config);
        let tf = crate::terraform::parse_state(terraform_state, location)?;
        let matching = crate::terraform::settle(&config, &tf, mapping, location)?;
        if !matching.settled() {
            return Ok(matching);
        }
        let lock = self.lock("import").await?;
        let result = async {
            let mut state = state::load(self.backend.as_ref(), &config.stack).await?;
            self.guard(&config, &mut state).await?;
            if let Some(me) = &state.account {
                crate::terraform::check_place(&tf, me, location)?;
            }
            let already: Vec<&String> = matching.matched.keys().filter(|a| state.resources.contains_key(*a)).collect();
            if !already.is_empty() {
                return Err(Error::Usage(format!(
                    "already in ferroform's state: {}; `state rm` them first to take them over from Terraform",
                    already.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            // In dependency order, so what a resource refers to is in state when it is read.
            for address in &config.order {
                let Some((tf_address, id, _)) = matching.matched.get(address) else { continue };
                let entry = self.read_for_import(&config.nodes[address], &state, address, id).await.map_err(|e| match e {
                    Error::Usage(m) => Error::Usage(format!(
                        "{address} (Terraform's {tf_address}): {m}; is the Terraform state of this account and region?"
                    )),
                    other => other,
                })?;
                state.resources.insert(address.clone(), entry);
            }
            state.serial += 1;
            self.backend.write(&state.to_bytes()?).await?;
            Ok(())
        }
        .await;
        let _ = self.backend.unlock(&lock.id).await;
        result.map(|()| matching)
    }

    pub async fn state(&self, stack_name: &str) -> Result<State> {
        state::load(self.backend.as_ref(), stack_name).await
    }

    pub async fn outputs(&self, stack_name: &str) -> Result<BTreeMap<String, OutputState>> {
        Ok(self.state(stack_name).await?.outputs)
    }

    /// Forgets a resource without deleting it.
    pub async fn state_rm(&self, stack_name: &str, address: &str) -> Result<()> {
        let lock = self.lock("state rm").await?;
        let result = async {
            let mut state = state::load(self.backend.as_ref(), stack_name).await?;
            if state.resources.remove(address).is_none() {
                return Err(Error::Usage(format!("`{address}` is not in state")));
            }
            state.serial += 1;
            self.backend.write(&state.to_bytes()?).await
        }
        .await;
        let _ = self.backend.unlock(&lock.id).await;
        result
    }

    /// Moves a resource to another address in state; nothing in the cloud changes.
    pub async fn state_mv(&self, stack_name: &str, from: &str, to: &str) -> Result<()> {
        let lock = self.lock("state mv").await?;
        let result = async {
            let mut state = state::load(self.backend.as_ref(), stack_name).await?;
            if state.resources.contains_key(to) {
                return Err(Error::Usage(format!("`{to}` is already in state; `state rm` it first")));
            }
            let Some(r) = state.resources.remove(from) else { return Err(Error::Usage(format!("`{from}` is not in state"))) };
            state.resources.insert(to.to_string(), r);
            for other in state.resources.values_mut() {
                if other.dependencies.remove(from) {
                    other.dependencies.insert(to.to_string());
                }
            }
            state.serial += 1;
            self.backend.write(&state.to_bytes()?).await
        }
        .await;
        let _ = self.backend.unlock(&lock.id).await;
        result
    }

    pub async fn force_unlock(&self, lock_id: &str) -> Result<()> {
        self.backend.force_unlock(lock_id).await
    }

    async fn lock(&self, operation: &str) -> Result<LockInfo> {
        let info = LockInfo::new(operation);
        let deadline = Instant::now() + self.lock_timeout;
        loop {
            match self.backend.lock(&info).await {
                Ok(()) => return Ok(info),
                Err(Error::Locked { .. }) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(500)).await,
                Err(e) => return Err(e),
            }
        }
    }

    async fn locked_plan(&self, config: Arc<Config>, opts: &PlanOptions) -> Result<(Planned, Arc<Config>)> {
        let state = state::load(self.backend.as_ref(), &config.stack).await?;
        self.compute(config, state, opts).await
    }

    /// The plan, and the configuration it was computed from: the stack's, with the lookups' values in place.
    async fn compute(&self, config: Arc<Config>, state: State, opts: &PlanOptions) -> Result<(Planned, Arc<Config>)> {
        for t in &opts.targets {
            if !config.nodes.contains_key(t) && !state.resources.contains_key(t) {
                return Err(Error::Usage(format!("--target `{t}` is neither in the stack nor in state")));
            }
        }
        for r in &opts.replace {
            if !config.nodes.contains_key(r) {
                return Err(Error::Usage(format!("--replace `{r}` is not in the stack")));
            }
        }
        let mut state = state;
        self.guard(&config, &mut state).await?;
        // Lookups are read after the guard (the right account) and never for a destroy (what they found may be
        // gone, and deleting needs nothing from them).
        let config = if config.lookups.is_empty() || opts.destroy {
            config
        } else {
            Arc::new(config.with_lookups(&crate::lookup::run(&config.lookups, &state, &self.contexts).await?)?)
        };
        let (state, live, moved_from) = self.read_live(&config, state, opts.skip_refresh).await?;
        let planned = plan::compute(PlanInput {
            config: &config,
            state,
            live,
            destroy: opts.destroy,
            targets: &opts.targets,
            moved_from,
            replace: &opts.replace,
            refresh_only: opts.refresh_only,
        })?;
        Ok((planned, config))
    }

    /// Applies renames, adopts interrupted creates, and reads every resource in state: batched per type,
    /// types concurrently.
    #[allow(clippy::type_complexity)]
    async fn read_live(
        &self,
        config: &Config,
        mut state: State,
        skip_refresh: bool,
    ) -> Result<(State, BTreeMap<String, Option<Live>>, BTreeMap<String, String>)> {
        let mut moved_from = BTreeMap::new();
        for (from, to) in &config.moved {
            if state.resources.contains_key(to) {
                continue;
            }
            if let Some(r) = state.resources.remove(from) {
                state.resources.insert(to.clone(), r);
                for other in state.resources.values_mut() {
                    if other.dependencies.remove(from) {
                        other.dependencies.insert(to.clone());
                    }
                }
                moved_from.insert(to.clone(), from.clone());
            }
        }
        self.adopt(config, &mut state).await?;
        if skip_refresh {
            let live = state
                .resources
                .iter()
                .filter_map(|(a, r)| {
                    let id = r.id.clone()?;
                    Some((a.clone(), Some(Live { id, inputs: r.inputs.clone(), outputs: r.outputs.clone() })))
                })
                .collect();
            return Ok((state, live, moved_from));
        }

        // Batched per type and provider: one batch's reads go through one provider's clients.
        let mut by_type: BTreeMap<(String, Option<String>), Vec<(String, String, Value)>> = BTreeMap::new();
        for (address, r) in &state.resources {
            if let Some(id) = &r.id {
                by_type.entry((r.type_name.clone(), r.provider.clone())).or_default().push((address.clone(), id.clone(), r.inputs.clone()));
            }
        }
        let mut batches = Vec::new();
        for ((type_name, provider), items) in by_type {
            let Some(kind) = config.registry.get(&type_name) else {
                return Err(Error::Refused {
                    address: items.first().map(|i| i.0.clone()).unwrap_or_default(),
                    message: format!("state holds a {type_name}, a type this program does not know; add its provider"),
                });
            };
            for chunk in items.chunks(READ_BATCH) {
                batches.push((kind.clone(), provider.clone(), chunk.to_vec()));
            }
        }
        // Futures built in a loop, not in a stream closure: keeps the whole future `Send` for spawning.
        let mut reads = Vec::with_capacity(batches.len());
        for (kind, provider, chunk) in batches {
            let contexts = self.contexts.for_provider(provider.as_deref());
            reads.push(async move {
                let ids: Vec<(String, Value)> = chunk.iter().map(|(_, id, inputs)| (id.clone(), inputs.clone())).collect();
                let results = kind.read_many(&contexts, &ids).await;
                chunk.into_iter().zip(results).map(|((a, id, _), r)| (a, id, r)).collect::<Vec<_>>()
            });
        }
        let results: Vec<Vec<_>> = futures::stream::iter(reads).buffer_unordered(self.parallelism).collect().await;
        let mut live = BTreeMap::new();
        let mut errors = Vec::new();
        for (address, id, r) in results.into_iter().flatten() {
            match r {
                Ok(Some((inputs, outputs))) => {
                    live.insert(address, Some(Live { id, inputs, outputs }));
                }
                Ok(None) => {
                    live.insert(address, None);
                }
                Err(source) => errors.push(Error::Provider { address, operation: "read", source }),
            }
        }
        match errors.len() {
            0 => Ok((state, live, moved_from)),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Failed(errors)),
        }
    }

    /// The account guard: whose the credentials are (one call), checked against `allowed_accounts` and
    /// against the account, region and partition state records, before anything else is read. A state
    /// without one records it (the next write keeps it).
    async fn guard(&self, config: &Config, state: &mut State) -> Result<()> {
        // Each provider in use (the default one, and every alias resources are on) is checked on its own.
        let mut used: BTreeMap<Option<String>, BTreeMap<String, Arc<dyn crate::resource::ErasedType>>> = BTreeMap::new();
        used.entry(None).or_default();
        for n in config.nodes.values() {
            used.entry(n.lifecycle.provider.clone()).or_default().entry(n.kind.type_name().to_string()).or_insert_with(|| n.kind.clone());
        }
        for r in state.resources.values() {
            if let Some(k) = config.registry.get(&r.type_name) {
                used.entry(r.provider.clone()).or_default().entry(r.type_name.clone()).or_insert(k);
            }
        }
        // The default provider's kinds: every kind (a stack on one provider reads its identity as before).
        let all: BTreeMap<String, Arc<dyn crate::resource::ErasedType>> = used.values().flat_map(|m| m.clone()).collect();
        for (alias, kinds) in used {
            let kinds = if alias.is_none() { &all } else { &kinds };
            self.guard_provider(config, state, alias.as_deref(), kinds).await?;
        }
        Ok(())
    }

    async fn guard_provider(
        &self,
        config: &Config,
        state: &mut State,
        alias: Option<&str>,
        kinds: &BTreeMap<String, Arc<dyn crate::resource::ErasedType>>,
    ) -> Result<()> {
        let contexts = self.contexts.for_provider(alias);
        let who = alias.map(|a| format!("provider `{a}`: ")).unwrap_or_default();
        let mut found = None;
        for kind in kinds.values() {
            match kind.identity(&contexts).await {
                None => continue,
                Some(Ok(id)) => {
                    found = Some(id);
                    break;
                }
                Some(Err(source)) => {
                    let address = alias.map(|a| format!("(provider {a})")).unwrap_or_else(|| "(credentials)".into());
                    return Err(Error::Provider { address, operation: "identify the account", source });
                }
            }
        }
        let Some(me) = found else { return Ok(()) };
        if !config.allowed_accounts.is_empty() && !config.allowed_accounts.contains(&me.account) {
            return Err(Error::WrongAccount(format!(
                "{who}the credentials are for {me}, and stack `{}` allows only account(s) {}",
                config.stack,
                config.allowed_accounts.join(", ")
            )));
        }
        let recorded = match alias {
            None => &mut state.account,
            Some(a) => state.provider_accounts.entry(a.to_string()).or_default(),
        };
        match recorded {
            Some(rec) if *rec != me => Err(Error::WrongAccount(format!(
                "{who}the state at {} belongs to {rec}, but the credentials are for {me}; check AWS_PROFILE and AWS_REGION (and the provider's settings), or pick this account's state with --state",
                self.backend.location()
            ))),
            Some(_) => Ok(()),
            None => {
                *recorded = Some(me);
                Ok(())
            }
        }
    }

    /// Lets the engine's contexts make the stack's providers' contexts.
    fn configure(&self, config: &Config) {
        for (alias, provider) in &config.providers {
            self.contexts.configure(alias, provider.clone());
        }
    }

    /// Entries left `creating` by a run that died during the call: find what it made by tags, or forget.
    async fn adopt(&self, config: &Config, state: &mut State) -> Result<()> {
        let pending: Vec<(String, ResourceState)> =
            state.resources.iter().filter(|(_, r)| r.status == Status::Creating).map(|(a, r)| (a.clone(), r.clone())).collect();
        for (address, r) in pending {
            let Some(kind) = config.registry.get(&r.type_name) else { continue };
            // Never the old object of a replacement, nor one another address of this type holds (integrations
            // found by URI are alike; the ones adopted earlier in this loop count too).
            let exclude = state.not_for(&address, &r.type_name);
            let meta = CallMeta {
                stack: config.stack.clone(),
                address: address.clone(),
                idempotency_token: r.token.clone().unwrap_or_default(),
                exclude: exclude.clone().into(),
            };
            match kind.find_by_tags(&self.contexts.for_provider(r.provider.as_deref()), &r.inputs, &meta).await {
                // A lookup that ignored `exclude`: never take the old object for the new one.
                Ok(Some(id)) if exclude.contains(&id) => {
                    return Err(Error::Refused {
                        address,
                        message: format!(
                            "the lookup for an interrupted create found {id}, the old object of a replacement or another address's; not adopting it"
                        ),
                    });
                }
                Ok(Some(id)) => {
                    self.reporter.event(apply::Event::Note(format!("{address}: adopting {id}, created by an interrupted run")));
                    if let Some(e) = state.resources.get_mut(&address) {
                        e.id = Some(id);
                        e.status = Status::Ready;
                        e.token = None;
                    }
                }
                Ok(None) => {
                    state.resources.remove(&address);
                }
                Err(source) => return Err(Error::Provider { address, operation: "find by tags", source }),
            }
        }
        Ok(())
    }
}

/// State with what the reads found: drift recorded, vanished resources dropped.
async fn write_live(backend: &dyn Backend, mut state: State, live: BTreeMap<String, Option<Live>>) -> Result<State> {
    for (address, l) in live {
        match l {
            Some(l) => {
                if let Some(r) = state.resources.get_mut(&address) {
                    r.id = Some(l.id);
                    r.inputs = l.inputs;
                    r.outputs = l.outputs;
                }
            }
            None => {
                state.resources.remove(&address);
            }
        }
    }
    state.serial += 1;
    backend.write(&state.to_bytes()?).await?;
    Ok(state)
}

/// Applies a refresh-only plan (limited to its targets).
async fn record_live(backend: &dyn Backend, planned: Planned) -> Result<State> {
    let Planned { plan, state, mut live } = planned;
    let scope: std::collections::BTreeSet<&String> = plan.drift.iter().map(|c| &c.address).collect();
    live.retain(|a, _| scope.contains(a));
    write_live(backend, state, live).await
}

fn stale_reason(saved: &Plan, now: &Plan) -> Option<String> {
    if saved.stack != now.stack {
        return Some(format!("it was made for stack `{}`, not `{}`", saved.stack, now.stack));
    }
    // A plan made before any state existed has no lineage to match yet.
    if saved.state_serial > 0 && saved.state_lineage != now.state_lineage {
        return Some("it was made against another state (lineage differs)".into());
    }
    if saved.state_serial != now.state_serial {
        return Some(format!("the state changed since (serial {} then, {} now)", saved.state_serial, now.state_serial));
    }
    if saved.config_digest != now.config_digest {
        return Some("the code changed since".into());
    }
    if saved.live_digest != now.live_digest || saved.changes != now.changes {
        return Some("the live resources changed since".into());
    }
    None
}

/// A locked, planned run. Apply it or release it; the lock is held until then.
pub struct Session<'a> {
    engine: &'a Engine,
    config: Arc<Config>,
    planned: Option<Planned>,
    lock: LockInfo,
}

impl Session<'_> {
    pub fn plan(&self) -> &Plan {
        static EMPTY: std::sync::OnceLock<Plan> = std::sync::OnceLock::new();
        match &self.planned {
            Some(p) => &p.plan,
            None => EMPTY.get_or_init(|| Plan {
                format_version: plan::PLAN_FORMAT_VERSION,
                stack: String::new(),
                destroy: false,
                created_at: String::new(),
                state_lineage: String::new(),
                state_serial: 0,
                config_digest: String::new(),
                live_digest: String::new(),
                targets: vec![],
                replace: vec![],
                refresh_only: false,
                drift: vec![],
                changes: vec![],
                outputs: BTreeMap::new(),
                summary: plan::Summary::default(),
            }),
        }
    }

    pub async fn apply(mut self) -> Result<State> {
        let planned = self.planned.take().ok_or_else(|| Error::Usage("session already used".into()))?;
        let engine = self.engine;
        if planned.plan.refresh_only {
            let result = record_live(engine.backend.as_ref(), planned).await;
            let _ = engine.backend.unlock(&self.lock.id).await;
            return result;
        }
        let cx = ApplyContext {
            config: self.config.clone(),
            contexts: engine.contexts.clone(),
            reporter: engine.reporter.clone(),
            parallelism: engine.parallelism,
            interrupt: engine.interrupt.clone(),
            abort: engine.abort.clone(),
            grace: engine.grace,
        };
        let result = apply::run(planned, engine.backend.clone(), cx).await;
        let _ = engine.backend.unlock(&self.lock.id).await;
        result
    }

    pub async fn release(self) {
        let _ = self.engine.backend.unlock(&self.lock.id).await;
    }
}
