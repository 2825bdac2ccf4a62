//! From a `Stack` to a validated dependency graph. Every check here runs before any API call; all problems
//! are collected and reported together.

use crate::error::{Diagnostic, Error, Result};
use crate::lookup::DeclaredLookup;
use crate::reference::{self, references};
use crate::resource::{ErasedType, Registry};
use crate::stack::{Declared, Lifecycle, OutputDecl, Stack};
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// One resource of the validated configuration.
#[derive(Clone)]
pub(crate) struct Node {
    pub address: String,
    pub kind: Arc<dyn ErasedType>,
    pub inputs: Value,
    pub lifecycle: Lifecycle,
    /// Addresses this resource needs first: referenced ones and `depends_on`.
    pub deps: BTreeSet<String>,
}

/// The validated stack: resources in a dependency order (declaration order among independent ones).
#[derive(Clone)]
pub(crate) struct Config {
    pub stack: String,
    pub nodes: BTreeMap<String, Node>,
    pub order: Vec<String>,
    pub outputs: BTreeMap<String, OutputDecl>,
    pub moved: Vec<(String, String)>,
    pub default_tags: BTreeMap<String, String>,
    pub registry: Registry,
    pub allowed_accounts: Vec<String>,
    /// Read at the start of every plan; their values are substituted by [`Config::with_lookups`].
    pub lookups: Vec<DeclaredLookup>,
    pub providers: Vec<(String, Arc<dyn crate::resource::ErasedProvider>)>,
}

impl Config {
    /// The configuration with the lookups' values in place of their references: what plan and apply use.
    pub(crate) fn with_lookups(&self, found: &BTreeMap<String, Value>) -> Result<Config> {
        // Every field used must be one the lookup answered (another stack's output that is not there, say):
        // otherwise it would stay "known after apply" for ever.
        let mut problems = Vec::new();
        let used = self
            .nodes
            .values()
            .map(|n| (n.address.clone(), &n.inputs))
            .chain(self.outputs.iter().map(|(k, o)| (format!("output.{k}"), &o.value)));
        for (user, value) in used {
            for (field, r) in references(value) {
                if let Some(answer) = found.get(&r.address) {
                    if answer.get(&r.field).is_none() {
                        problems.push(diag(&user, Some(&field), format!("`{}` has no `{}`", r.address, r.field)));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }
        let known = |t: &reference::TokenRef| found.get(&t.address).and_then(|o| o.get(&t.field).cloned());
        let mut config = self.clone();
        for node in config.nodes.values_mut() {
            node.inputs = reference::resolve(&node.inputs, &known);
            node.deps.retain(|d| !found.contains_key(d));
        }
        for out in config.outputs.values_mut() {
            out.value = reference::resolve(&out.value, &known);
        }
        Ok(config)
    }
}

fn valid_address(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 200
        && a.split('/').all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

fn diag(address: &str, field: Option<&str>, message: impl Into<String>) -> Diagnostic {
    Diagnostic { address: address.to_string(), field: field.map(str::to_string), message: message.into() }
}

pub(crate) fn build(stack: &Stack) -> Result<Config> {
    let mut problems = Vec::new();
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut declared_order = Vec::new();

    if !valid_address(&stack.name) || stack.name.contains('/') {
        problems.push(diag(&stack.name, None, "a stack name may hold only letters, digits, `-` and `_`"));
    }
    let mut seen = HashMap::new();
    for l in &stack.lookups {
        if let Some(first_type) = seen.insert(l.address.clone(), l.type_name) {
            problems.push(diag(&l.address, None, format!("the address is used twice (by a {first_type} and a {})", l.type_name)));
        }
        if !valid_address(&l.address) {
            problems.push(diag(&l.address, None, "an address is one or more `/`-separated names of letters, digits, `-` and `_`"));
        }
        if let Some(e) = &l.encode_error {
            problems.push(diag(&l.address, None, format!("the query can't be serialized: {e}")));
        }
    }
    let lookup_addresses: BTreeSet<&str> = stack.lookups.iter().map(|l| l.address.as_str()).collect();
    for d in &stack.resources {
        if let Some(first_type) = seen.insert(d.address.clone(), d.type_name) {
            problems.push(diag(&d.address, None, format!("the address is used twice (by a {first_type} and a {})", d.type_name)));
            continue;
        }
        if !valid_address(&d.address) {
            problems.push(diag(&d.address, None, "an address is one or more `/`-separated names of letters, digits, `-` and `_`"));
        }
        if let Some(e) = &d.encode_error {
            problems.push(diag(&d.address, None, format!("inputs can't be serialized: {e}")));
            continue;
        }
        let Some(kind) = stack.registry.get(d.type_name) else {
            problems.push(diag(&d.address, None, format!("resource type {} is not registered", d.type_name)));
            continue;
        };
        declared_order.push(d.address.clone());
        nodes.insert(d.address.clone(), node_of(d, kind));
    }

    // Broken tokens, dangling references and depends_on, then each resource's own checks.
    for node in nodes.values() {
        for (field, why) in reference::malformed(&node.inputs) {
            problems.push(diag(&node.address, Some(&field), why));
        }
        for (field, r) in references(&node.inputs) {
            if !nodes.contains_key(&r.address) && !lookup_addresses.contains(r.address.as_str()) {
                problems.push(diag(&node.address, Some(&field), format!("refers to `{}`, which is not in the stack", r.address)));
            }
        }
        if let Some(p) = &node.lifecycle.provider {
            if !stack.providers.iter().any(|(a, _)| a == p) {
                problems.push(diag(&node.address, Some("provider"), format!("provider `{p}` is not declared (`Stack::provider`)")));
            }
        }
        for dep in &node.lifecycle.depends_on {
            if !nodes.contains_key(dep) {
                problems.push(diag(&node.address, Some("depends_on"), format!("`{dep}` is not in the stack")));
            }
        }
        for path in &node.lifecycle.ignore_changes {
            match crate::diff::path_field(path) {
                Err(e) => problems.push(diag(&node.address, Some("ignore_changes"), e)),
                Ok(field) if node.inputs.get(&field).is_none() => problems.push(diag(
                    &node.address,
                    Some("ignore_changes"),
                    format!("`{field}` is not a field of {}", node.kind.type_name()),
                )),
                Ok(_) => {}
            }
        }
        match node.kind.validate(&node.inputs) {
            Ok(errs) => problems.extend(errs.into_iter().map(|e| diag(&node.address, Some(&e.field), e.message))),
            Err(e) => problems.push(diag(&node.address, None, e)),
        }
    }
    for (name, out) in &stack.outputs {
        for (_, why) in reference::malformed(&out.value) {
            problems.push(diag(&format!("output.{name}"), None, why));
        }
        for (_, r) in references(&out.value) {
            if !nodes.contains_key(&r.address) && !lookup_addresses.contains(r.address.as_str()) {
                problems.push(diag(&format!("output.{name}"), None, format!("refers to `{}`, which is not in the stack", r.address)));
            }
        }
    }
    for l in &stack.lookups {
        for (field, why) in reference::malformed(&l.query) {
            problems.push(diag(&l.address, Some(&field), why));
        }
        for (field, r) in references(&l.query) {
            if !nodes.contains_key(&r.address) && !lookup_addresses.contains(r.address.as_str()) {
                problems.push(diag(&l.address, Some(&field), format!("refers to `{}`, which is not in the stack", r.address)));
            }
        }
    }
    for (from, to) in &stack.moved {
        if !nodes.contains_key(to) {
            problems.push(diag(from, Some("moved"), format!("moved to `{to}`, which is not in the stack")));
        }
        if nodes.contains_key(from) {
            problems.push(diag(from, Some("moved"), "moved away, but still declared at this address"));
        }
    }

    let order = match topo_order(&nodes, &declared_order) {
        Ok(o) => o,
        Err(cycle) => {
            problems.push(diag(&cycle[0], None, format!("dependency cycle: {}", cycle.join(" -> "))));
            Vec::new()
        }
    };
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    Ok(Config {
        stack: stack.name.clone(),
        nodes,
        order,
        outputs: stack.outputs.clone(),
        moved: stack.moved.clone(),
        default_tags: stack.default_tags.clone(),
        registry: stack.registry.clone(),
        allowed_accounts: stack.allowed_accounts.clone(),
        lookups: stack.lookups.clone(),
        providers: stack.providers.clone(),
    })
}

fn node_of(d: &Declared, kind: Arc<dyn ErasedType>) -> Node {
    let mut deps = reference::referenced_addresses(&d.inputs);
    deps.extend(d.lifecycle.depends_on.iter().cloned());
    deps.remove(&d.address);
    Node { address: d.address.clone(), kind, inputs: d.inputs.clone(), lifecycle: d.lifecycle.clone(), deps }
}

/// Kahn's algorithm, taking ready nodes in declaration order so plans read like the code. On a cycle,
/// returns one cycle as a path of addresses ending where it started.
fn topo_order(nodes: &BTreeMap<String, Node>, declared: &[String]) -> std::result::Result<Vec<String>, Vec<String>> {
    let mut graph = DiGraph::<&str, ()>::new();
    let mut ix: HashMap<&str, NodeIndex> = HashMap::new();
    for a in declared {
        ix.insert(a, graph.add_node(a));
    }
    for a in declared {
        for d in &nodes[a].deps {
            if let Some(&di) = ix.get(d.as_str()) {
                graph.add_edge(di, ix[a.as_str()], ());
            }
        }
    }
    // A reference to itself is a cycle too.
    for a in declared {
        if reference::referenced_addresses(&nodes[a].inputs).contains(a) {
            return Err(vec![a.clone(), a.clone()]);
        }
    }
    let mut indegree: Vec<usize> = graph.node_indices().map(|n| graph.neighbors_directed(n, petgraph::Incoming).count()).collect();
    let mut done = vec![false; graph.node_count()];
    let mut order = Vec::with_capacity(declared.len());
    loop {
        let mut progressed = false;
        for n in graph.node_indices() {
            if !done[n.index()] && indegree[n.index()] == 0 {
                done[n.index()] = true;
                order.push(graph[n].to_string());
                for m in graph.neighbors_directed(n, petgraph::Outgoing) {
                    indegree[m.index()] -= 1;
                }
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    if order.len() == declared.len() {
        return Ok(order);
    }
    // Walk backwards along unfinished dependencies until a node repeats: that loop is a cycle.
    let start = graph.node_indices().find(|n| !done[n.index()]).unwrap_or_default();
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let Some(next) = graph.neighbors_directed(cur, petgraph::Incoming).find(|p| !done[p.index()]) else {
            return Err(vec![graph[start].to_string()]);
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            // path holds dependents before their dependencies; print "a -> b" as "a needs b".
            let mut cycle: Vec<String> = path[pos..].iter().map(|&n| graph[n].to_string()).collect();
            cycle.push(graph[next].to_string());
            return Err(cycle);
        }
        path.push(next);
        cur = next;
    }
}

/// DOT text of the stack's dependency graph (`a -> b`: a needs b).
pub(crate) fn to_dot(config: &Config) -> String {
    let mut out = String::from("digraph ferroform {\n  rankdir = \"RL\";\n  node [shape = box];\n");
    for a in &config.order {
        let n = &config.nodes[a];
        out.push_str(&format!("  \"{a}\" [label = \"{a}\\n{}\"];\n", n.kind.type_name()));
    }
    for a in &config.order {
        for d in &config.nodes[a].deps {
            out.push_str(&format!("  \"{a}\" -> \"{d}\";\n"));
        }
    }
    out.push_str("}\n");
    out
}
