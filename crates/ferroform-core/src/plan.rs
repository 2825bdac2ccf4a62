//! The plan: a value that can be printed, saved as JSON, and applied exactly.
//!
//! JSON schema, version 1 (`format_version`): see `docs/plan-format.md`. Fields are only ever added within a
//! version; a removal or a change of meaning bumps it.

use crate::diff;
use crate::error::{Error, Result};
use crate::graph::Config;
use crate::reference::{self, TokenRef};
use crate::state::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const PLAN_FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplaceMode {
    CreateBeforeDestroy,
    DeleteBeforeCreate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The top-level field the change is in.
    pub name: String,
    /// Where, down to the leaf: `environment.LOG_LEVEL`, `containers["worker"].image`, `ingress[tcp 443 0.0.0.0/0]`.
    pub path: String,
    /// `null` when the resource or the element does not exist yet.
    pub before: Option<Value>,
    /// `null` while `after_unknown`, and when the element goes away (`removed`).
    pub after: Option<Value>,
    /// The new value depends on something not known until apply: "(known after apply)".
    pub after_unknown: bool,
    /// A map key or list element the code no longer has.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    /// The values are shown as `(sensitive)`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    pub forces_replacement: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub action: Action,
    /// The cloud id before the change.
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace_mode: Option<ReplaceMode>,
    /// Why: which field forces replacement, "deleted outside ferroform", "no longer in the code", ...
    pub reasons: Vec<String>,
    pub fields: Vec<FieldChange>,
    /// A deposed object (the old half of an unfinished replacement).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deposed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    pub depends_on: Vec<String>,
    /// The provider alias the change goes through (`None`: the default provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputChange {
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub after_unknown: bool,
    pub sensitive: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    #[serde(rename = "move")]
    pub moves: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub stack: String,
    pub destroy: bool,
    pub created_at: String,
    pub state_lineage: String,
    pub state_serial: u64,
    /// sha256 of the declared resources and outputs: the code the plan was made from.
    pub config_digest: String,
    /// sha256 of what the reads found: the live state the plan was made against.
    pub live_digest: String,
    pub targets: Vec<String>,
    /// Addresses replaced on request (`--replace`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<String>,
    /// A refresh-only plan: `drift` is recorded in state, nothing in the cloud changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refresh_only: bool,
    /// What changed outside ferroform since state was written (refresh-only plans): `before` is state,
    /// `after` is live.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Change>,
    /// Every resource, in the order it would be applied (deletes last, dependents first).
    pub changes: Vec<Change>,
    pub outputs: BTreeMap<String, OutputChange>,
    pub summary: Summary,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        if self.refresh_only {
            return !self.drift.is_empty();
        }
        let s = self.summary;
        s.add + s.change + s.destroy + s.moves > 0 || self.outputs.values().any(|o| o.after_unknown || o.before != o.after)
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Usage(e.to_string()))
    }

    pub fn from_json(bytes: &[u8]) -> Result<Plan> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| Error::StalePlan(format!("the plan file is not valid JSON ({e})")))?;
        match v.get("format_version").and_then(Value::as_u64) {
            Some(n) if n == u64::from(PLAN_FORMAT_VERSION) => {}
            Some(n) => {
                return Err(Error::StalePlan(format!("the plan file has format version {n}; this ferroform reads {PLAN_FORMAT_VERSION}")))
            }
            None => return Err(Error::StalePlan("the file is not a ferroform plan".into())),
        }
        serde_json::from_value(v).map_err(|e| Error::StalePlan(format!("the plan file is damaged ({e})")))
    }

    pub fn summary_line(&self) -> String {
        if self.refresh_only {
            return match self.drift.len() {
                0 => "No changes. State matches what is live.".into(),
                n => format!("Refresh: {n} resource(s) changed outside ferroform; applying records them in state, nothing else changes."),
            };
        }
        if !self.has_changes() {
            return "No changes. Your infrastructure matches the configuration.".into();
        }
        let s = self.summary;
        let moves = if s.moves > 0 { format!(", {} to move", s.moves) } else { String::new() };
        format!("Plan: {} to add, {} to change, {} to destroy{moves}.", s.add, s.change, s.destroy)
    }

    /// The plan as people read it: Terraform's markers, per-field old -> new, replacement reasons.
    pub fn render(&self, color: bool) -> String {
        let paint = |code: &str, s: &str| if color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() };
        let mut out = String::new();
        if !self.drift.is_empty() {
            out.push_str("Objects changed outside ferroform:\n\n");
        }
        // Grouped by provider: the default one first, then each alias under a heading.
        let mut providers: Vec<Option<&String>> = vec![None];
        for c in self.drift.iter().chain(&self.changes) {
            if c.provider.is_some() && !providers.contains(&c.provider.as_ref()) {
                providers.push(c.provider.as_ref());
            }
        }
        providers[1..].sort();
        let mut ordered: Vec<(&Change, bool)> = Vec::new();
        for p in &providers {
            let mut first = true;
            let shown = |c: &&Change| c.action != Action::NoOp || !c.reasons.is_empty() || c.moved_from.is_some();
            for c in self.drift.iter().chain(&self.changes).filter(|c| c.provider.as_ref() == *p).filter(shown) {
                ordered.push((c, first && p.is_some()));
                first = false;
            }
        }
        for (c, heading) in ordered {
            if heading {
                if let Some(p) = &c.provider {
                    out.push_str(&format!("On provider `{p}`:\n\n"));
                }
            }
            let (marker, code, verb) = match c.action {
                Action::NoOp if !c.reasons.is_empty() && c.moved_from.is_none() => ("  ~", "33", "has changed"),
                Action::NoOp if c.moved_from.is_some() => ("   ", "0", "will be moved"),
                Action::NoOp => continue,
                Action::Create => ("  +", "32", "will be created"),
                Action::Update => ("  ~", "33", "will be updated in place"),
                Action::Replace => match c.replace_mode {
                    Some(ReplaceMode::DeleteBeforeCreate) => ("-/+", "31", "must be replaced"),
                    _ => ("+/-", "35", "must be replaced"),
                },
                Action::Delete => ("  -", "31", "will be destroyed"),
            };
            let name = if c.deposed { format!("{} (deposed object)", c.address) } else { c.address.clone() };
            out.push_str(&format!("  # {name} ({}) {verb}\n", c.type_name));
            if let Some(from) = &c.moved_from {
                out.push_str(&format!("  #   (moved from {from})\n"));
            }
            for r in &c.reasons {
                out.push_str(&format!("  #   {r}\n"));
            }
            out.push_str(&paint(code, marker));
            out.push_str(&format!(" {name}"));
            if let Some(id) = &c.id {
                out.push_str(&format!(" [id={id}]"));
            }
            out.push('\n');
            for f in &c.fields {
                let forces = if f.forces_replacement { paint("31", " # forces replacement") } else { String::new() };
                let after = || if f.after_unknown { "(known after apply)".to_string() } else { show(f.after.as_ref()) };
                let line = match (&f.before, c.action) {
                    (None, _) | (_, Action::Create) => format!("{} {} = {}", paint("32", "+"), f.path, after()),
                    (Some(b), _) if f.removed => format!("{} {} = {}", paint("31", "-"), f.path, show(Some(b))),
                    (Some(b), _) => format!("{} {} = {} -> {}", paint("33", "~"), f.path, show(Some(b)), after()),
                };
                out.push_str(&indent(&format!("{line}{forces}"), "      "));
            }
            out.push('\n');
        }
        let changed_outputs: Vec<_> = self.outputs.iter().filter(|(_, o)| o.after_unknown || o.before != o.after).collect();
        if !changed_outputs.is_empty() {
            out.push_str("Changes to outputs:\n");
            for (name, o) in changed_outputs {
                let after = if o.sensitive {
                    "(sensitive)".into()
                } else if o.after_unknown {
                    "(known after apply)".into()
                } else {
                    show(o.after.as_ref())
                };
                let marker = if o.before.is_none() { "+" } else { "~" };
                out.push_str(&format!("  {marker} {name} = {after}\n"));
            }
            out.push('\n');
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }
}

/// A value as the plan shows it: in full, never cut; objects and lists longer than a line are pretty-printed
/// over several lines.
fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "null".into(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 100 && (v.is_object() || v.is_array()) {
                serde_json::to_string_pretty(v).unwrap_or(s)
            } else {
                s
            }
        }
    }
}

/// Every line of `text` behind `pad`; lines after the first get two more spaces, so a wrapped value reads
/// as part of its field.
fn indent(text: &str, pad: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        out.push_str(pad);
        if i > 0 {
            out.push_str("  ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// What a read found for one state entry.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Live {
    pub id: String,
    pub inputs: Value,
    pub outputs: Value,
}

/// Everything a plan was computed from, kept in memory for the apply that follows.
pub(crate) struct Planned {
    pub plan: Plan,
    /// State after renames and adoption of interrupted creates.
    pub state: State,
    pub live: BTreeMap<String, Option<Live>>,
}

pub(crate) fn sha256_json<T: Serialize>(v: &T) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(bytes))
}

pub(crate) fn config_digest(config: &Config) -> String {
    let resources: BTreeMap<&String, (&str, &Value, &crate::stack::Lifecycle)> =
        config.nodes.iter().map(|(a, n)| (a, (n.kind.type_name(), &n.inputs, &n.lifecycle))).collect();
    let outputs: BTreeMap<&String, &Value> = config.outputs.iter().map(|(k, o)| (k, &o.value)).collect();
    sha256_json(&(resources, outputs, &config.moved, &config.default_tags))
}

pub(crate) struct PlanInput<'a> {
    pub config: &'a Config,
    pub state: State,
    pub live: BTreeMap<String, Option<Live>>,
    pub destroy: bool,
    pub targets: &'a [String],
    pub moved_from: BTreeMap<String, String>,
    pub replace: &'a [String],
    pub refresh_only: bool,
}

/// The rules: no prior -> create; a changed replace-forcing field -> replace; equal -> no-op; else update;
/// in state but not in code -> delete.
pub(crate) fn compute(input: PlanInput<'_>) -> Result<Planned> {
    let PlanInput { config, state, live, destroy, targets, moved_from, replace, refresh_only } = input;
    if refresh_only {
        return Ok(refresh_plan(config, state, live, targets));
    }
    let mut changes: Vec<Change> = Vec::new();
    let mut refused = Vec::new();
    // Outputs not known until apply: every output of what is created or replaced (`None`), the outputs an
    // update of the changed fields may change (`Some`).
    let mut unknown_outputs: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    let is_unknown_output = |unknown: &BTreeMap<String, Option<BTreeSet<String>>>, t: &TokenRef| match unknown.get(&t.address) {
        Some(None) => true,
        Some(Some(fields)) => fields.contains(&t.field),
        None => false,
    };

    let in_scope = scope(config, &state, targets, destroy);
    let mut engine_tags = config.default_tags.clone();
    engine_tags.insert(crate::resource::TAG_STACK.into(), config.stack.clone());

    if !destroy {
        for address in &config.order {
            if !in_scope.contains(address) {
                continue;
            }
            let node = &config.nodes[address];
            let lookup = |t: &TokenRef| -> Option<Value> {
                if is_unknown_output(&unknown_outputs, t) {
                    return None;
                }
                live.get(&t.address).and_then(|l| l.as_ref()).and_then(|l| l.outputs.get(&t.field).cloned())
            };
            let resolved = reference::resolve(&node.inputs, &lookup);
            let mut tags = engine_tags.clone();
            tags.insert(crate::resource::TAG_ADDRESS.into(), address.clone());
            let desired = node
                .kind
                .canonical(&resolved, Some(&tags))
                .map_err(|e| Error::Validation(vec![crate::Diagnostic { address: address.clone(), field: None, message: e }]))?;
            let current = live.get(address).and_then(|l| l.as_ref());
            // What is secret now, and what was when last applied (a secret being removed stays hidden).
            let mut sensitive = node.lifecycle.sensitive.clone();
            if let Some(r) = state.resources.get(address) {
                sensitive.extend(r.sensitive.iter().cloned());
            }
            let rules = diff::Rules {
                replace: node.kind.replace_fields(),
                computed: node.kind.computed(),
                ignore: &node.lifecycle.ignore_changes,
                sensitive: &sensitive,
            };
            let mut change = Change {
                provider: None,
                address: address.clone(),
                type_name: node.kind.type_name().to_string(),
                action: Action::NoOp,
                id: current.map(|l| l.id.clone()),
                replace_mode: None,
                reasons: Vec::new(),
                fields: Vec::new(),
                deposed: false,
                moved_from: moved_from.get(address).cloned(),
                depends_on: node.deps.iter().cloned().collect(),
            };
            match current {
                None => {
                    change.action = Action::Create;
                    if let Some(prior) = state.resources.get(address).and_then(|r| r.id.clone()) {
                        change.reasons.push(format!("it was deleted outside ferroform (was {prior})"));
                    }
                    change.fields = diff::diff_fields(&desired, None, &rules);
                }
                Some(l) => {
                    let live_canon = node.kind.canonical(&l.inputs, None).unwrap_or_else(|_| l.inputs.clone());
                    change.fields = diff::diff_fields(&desired, Some(&live_canon), &rules);
                    let mut forcing: Vec<&str> = change.fields.iter().filter(|f| f.forces_replacement).map(|f| f.name.as_str()).collect();
                    forcing.dedup();
                    if !forcing.is_empty() {
                        change.action = Action::Replace;
                        change.reasons.push(format!(
                            "{} forces replacement",
                            forcing.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
                        ));
                        let cbd = node.lifecycle.create_before_destroy.unwrap_or_else(|| !node.kind.delete_before_create(&desired));
                        change.replace_mode = Some(if cbd { ReplaceMode::CreateBeforeDestroy } else { ReplaceMode::DeleteBeforeCreate });
                    } else if replace.contains(address) {
                        change.action = Action::Replace;
                        change.reasons.push("its replacement was asked for (--replace)".into());
                        let cbd = node.lifecycle.create_before_destroy.unwrap_or_else(|| !node.kind.delete_before_create(&desired));
                        change.replace_mode = Some(if cbd { ReplaceMode::CreateBeforeDestroy } else { ReplaceMode::DeleteBeforeCreate });
                    } else if !change.fields.is_empty() {
                        change.action = Action::Update;
                    }
                }
            }
            match change.action {
                Action::Create | Action::Replace => {
                    unknown_outputs.insert(address.clone(), None);
                }
                Action::Update => {
                    let changed = diff::changed_fields(&change.fields);
                    let fields: BTreeSet<String> = node
                        .kind
                        .update_changes()
                        .iter()
                        .filter(|(field, _)| *field == "*" || changed.iter().any(|c| c == field))
                        .flat_map(|(_, outputs)| outputs.iter().map(|o| o.to_string()))
                        .collect();
                    if !fields.is_empty() {
                        unknown_outputs.insert(address.clone(), Some(fields));
                    }
                }
                _ => {}
            }
            if change.action == Action::Replace && node.lifecycle.prevent_destroy.unwrap_or(node.kind.protect_by_default()) {
                refused.push(protected(address, &change.reasons.join("; ")));
            }
            changes.push(change);
        }
    }

    // Deletes: orphans (or everything, for destroy), dependents before what they depend on.
    let doomed: Vec<&String> =
        state.resources.keys().filter(|a| in_scope.contains(*a) && (destroy || !config.nodes.contains_key(*a))).collect();
    for address in delete_order(&state, &doomed) {
        let r = &state.resources[&address];
        let id = live.get(&address).and_then(|l| l.as_ref()).map(|l| l.id.clone());
        if id.is_none() {
            // Already gone: drop it from state without a call.
            changes.push(Change {
                provider: None,
                address: address.clone(),
                type_name: r.type_name.clone(),
                action: Action::Delete,
                id: None,
                replace_mode: None,
                reasons: vec!["it no longer exists; it will be dropped from state".into()],
                fields: vec![],
                deposed: false,
                moved_from: None,
                depends_on: vec![],
            });
            continue;
        }
        let protect =
            if destroy { config.nodes.get(&address).and_then(|n| n.lifecycle.prevent_destroy).unwrap_or(r.protect) } else { r.protect };
        let reason = if destroy { "destroy was asked for" } else { "it is no longer in the code" };
        if protect {
            refused.push(protected(&address, reason));
        }
        changes.push(Change {
            provider: None,
            address: address.clone(),
            type_name: r.type_name.clone(),
            action: Action::Delete,
            id,
            replace_mode: None,
            reasons: vec![reason.into()],
            fields: vec![],
            deposed: false,
            moved_from: None,
            depends_on: r.dependencies.iter().cloned().collect(),
        });
    }
    for d in &state.deposed {
        changes.push(Change {
            provider: None,
            address: d.address.clone(),
            type_name: d.resource.type_name.clone(),
            action: Action::Delete,
            id: d.resource.id.clone(),
            replace_mode: None,
            reasons: vec!["the old object of an earlier replacement".into()],
            fields: vec![],
            deposed: true,
            moved_from: None,
            depends_on: vec![],
        });
    }
    if !refused.is_empty() {
        return Err(Error::Validation(refused));
    }

    let mut outputs = BTreeMap::new();
    if !destroy {
        for (name, decl) in &config.outputs {
            let lookup = |t: &TokenRef| -> Option<Value> {
                if is_unknown_output(&unknown_outputs, t) {
                    return None;
                }
                live.get(&t.address).and_then(|l| l.as_ref()).and_then(|l| l.outputs.get(&t.field).cloned())
            };
            let v = reference::resolve(&decl.value, &lookup);
            let unknown = reference::is_unknown(&v);
            let mut before = state.outputs.get(name).map(|o| o.value.clone());
            let mut after = (!unknown).then_some(v);
            if decl.sensitive {
                // Never in a plan, text or JSON; a change still shows as one.
                let changed = before != after;
                before = before.map(|_| Value::String(diff::SENSITIVE.into()));
                after = after.map(|_| Value::String(if changed { "(sensitive, changed)".into() } else { diff::SENSITIVE.into() }));
            }
            outputs.insert(name.clone(), OutputChange { before, after, after_unknown: unknown, sensitive: decl.sensitive });
        }
    }

    set_providers(&mut changes, config, &state);
    let mut summary = Summary::default();
    for c in &changes {
        match c.action {
            Action::Create => summary.add += 1,
            Action::Update => summary.change += 1,
            Action::Replace => {
                summary.add += 1;
                summary.destroy += 1;
            }
            Action::Delete if c.id.is_some() => summary.destroy += 1,
            _ => {}
        }
    }
    summary.moves = moved_from.len();
    let live_digest = sha256_json(&live);
    let plan = Plan {
        format_version: PLAN_FORMAT_VERSION,
        stack: config.stack.clone(),
        destroy,
        created_at: chrono::Utc::now().to_rfc3339(),
        state_lineage: state.lineage.clone(),
        state_serial: state.serial,
        config_digest: config_digest(config),
        live_digest,
        targets: targets.to_vec(),
        replace: replace.to_vec(),
        refresh_only: false,
        drift: Vec::new(),
        changes,
        outputs,
        summary,
    };
    Ok(Planned { plan, state, live })
}

/// A refresh-only plan: for each resource in state, how the live object differs from what state says.
/// Each change's provider: the code's for what it declares, the state's for what only the state holds.
fn set_providers(changes: &mut [Change], config: &Config, state: &State) {
    for c in changes {
        c.provider = match config.nodes.get(&c.address) {
            Some(node) if !c.deposed => node.lifecycle.provider.clone(),
            _ => state
                .resources
                .get(&c.address)
                .map(|r| r.provider.clone())
                .or_else(|| state.deposed.iter().find(|d| d.address == c.address).map(|d| d.resource.provider.clone()))
                .flatten(),
        };
    }
}

fn refresh_plan(config: &Config, state: State, live: BTreeMap<String, Option<Live>>, targets: &[String]) -> Planned {
    let in_scope = scope(config, &state, targets, false);
    let mut drift = Vec::new();
    for (address, r) in state.resources.iter().filter(|(a, _)| in_scope.contains(*a)) {
        let kind = config.registry.get(&r.type_name);
        let mut change = Change {
            provider: None,
            address: address.clone(),
            type_name: r.type_name.clone(),
            action: Action::NoOp,
            id: r.id.clone(),
            replace_mode: None,
            reasons: Vec::new(),
            fields: Vec::new(),
            deposed: false,
            moved_from: None,
            depends_on: r.dependencies.iter().cloned().collect(),
        };
        match live.get(address).and_then(|l| l.as_ref()) {
            None => change.reasons.push("it was deleted outside ferroform; it will be dropped from state".into()),
            Some(l) => {
                let canon = |v: &Value| kind.as_ref().and_then(|k| k.canonical(v, None).ok()).unwrap_or_else(|| v.clone());
                let none = BTreeSet::new();
                let mut sensitive = config.nodes.get(address).map(|n| n.lifecycle.sensitive.clone()).unwrap_or_default();
                sensitive.extend(r.sensitive.iter().cloned());
                let rules = diff::Rules { replace: &[], computed: &[], ignore: &none, sensitive: &sensitive };
                change.fields = diff::diff_fields(&canon(&l.inputs), Some(&canon(&r.inputs)), &rules);
                if !change.fields.is_empty() {
                    change.reasons.push("it changed outside ferroform".into());
                }
            }
        }
        if !change.reasons.is_empty() {
            drift.push(change);
        }
    }
    set_providers(&mut drift, config, &state);
    let plan = Plan {
        format_version: PLAN_FORMAT_VERSION,
        stack: config.stack.clone(),
        destroy: false,
        created_at: chrono::Utc::now().to_rfc3339(),
        state_lineage: state.lineage.clone(),
        state_serial: state.serial,
        config_digest: config_digest(config),
        live_digest: sha256_json(&live),
        targets: targets.to_vec(),
        replace: Vec::new(),
        refresh_only: true,
        drift,
        changes: Vec::new(),
        outputs: BTreeMap::new(),
        summary: Summary::default(),
    };
    Planned { plan, state, live }
}

fn protected(address: &str, why: &str) -> crate::Diagnostic {
    crate::Diagnostic {
        address: address.to_string(),
        field: Some("prevent_destroy".into()),
        message: format!(
            "the plan would destroy it ({why}), but it is protected; to allow it, add it with `Options::new().prevent_destroy(false)` and apply that first"
        ),
    }
}

/// The addresses a run may touch: everything, or the targets and what they need (what depends on them,
/// for destroy).
fn scope(config: &Config, state: &State, targets: &[String], destroy: bool) -> BTreeSet<String> {
    let all: BTreeSet<String> = config.nodes.keys().chain(state.resources.keys()).cloned().collect();
    if targets.is_empty() {
        return all;
    }
    let mut set: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = targets.to_vec();
    while let Some(a) = todo.pop() {
        if !set.insert(a.clone()) {
            continue;
        }
        if destroy {
            for (other, r) in &state.resources {
                if r.dependencies.contains(&a) {
                    todo.push(other.clone());
                }
            }
        } else if let Some(n) = config.nodes.get(&a) {
            todo.extend(n.deps.iter().cloned());
        }
    }
    set
}

/// Reverse dependency order over state: what depends on a resource is deleted before it.
pub(crate) fn delete_order(state: &State, doomed: &[&String]) -> Vec<String> {
    let set: BTreeSet<&String> = doomed.iter().copied().collect();
    // How many doomed, not-yet-deleted resources depend on each: kept as counts, so a pass is linear (a scan
    // of every pair per resource made a destroy of 1,000 cost 0.17 s of CPU).
    let mut dependents: BTreeMap<&String, usize> = set.iter().map(|a| (*a, 0)).collect();
    for o in &set {
        for d in &state.resources[*o].dependencies {
            if d != *o {
                if let Some(n) = dependents.get_mut(d) {
                    *n += 1;
                }
            }
        }
    }
    let mut done: BTreeSet<&String> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < set.len() {
        let before = order.len();
        for a in &set {
            if done.contains(*a) {
                continue;
            }
            // Ready when no other doomed, not-yet-deleted resource depends on it.
            if dependents.get(*a).copied().unwrap_or(0) == 0 {
                done.insert(*a);
                order.push((*a).clone());
                for d in &state.resources[*a].dependencies {
                    if d != *a {
                        if let Some(n) = dependents.get_mut(d) {
                            *n = n.saturating_sub(1);
                        }
                    }
                }
            }
        }
        if order.len() == before {
            // A cycle in state (should not happen): delete the rest in any order.
            order.extend(set.iter().filter(|a| !done.contains(**a)).map(|a| (*a).clone()));
            break;
        }
    }
    order
}
