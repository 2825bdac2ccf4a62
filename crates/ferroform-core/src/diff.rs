//! Desired against live, field by field and down to the leaves.
//!
//! Every field is compared, set or not, except the ones a resource type lists as computed by AWS
//! ([`crate::Resource::COMPUTED`]) while the code leaves them unset: a setting removed from the code goes back
//! to the default `normalize` fills in. A change is reported at its leaf (`environment.LOG_LEVEL`,
//! `containers["worker"].image`); lists of objects are matched by a natural key (`name`, `sid`, ...) where every
//! element has one, else element by element as a set, so inserting one element shows one `+`.

use crate::plan::FieldChange;
use crate::reference;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The keys that identify an element of a list of objects, in the order they are tried.
const NATURAL_KEYS: &[&str] = &["name", "Name", "sid", "Sid", "route_key", "key", "Key", "id"];

/// What the text and JSON plans show instead of a sensitive value.
pub const SENSITIVE: &str = "(sensitive)";

/// How one resource's fields are compared.
pub(crate) struct Rules<'a> {
    /// Fields whose change forces a new resource.
    pub replace: &'a [&'a str],
    /// Fields AWS decides when the code leaves them unset.
    pub computed: &'a [&'a str],
    /// `ignore_changes` paths (`tags`, `containers["worker"].image`): the live value stands.
    pub ignore: &'a BTreeSet<String>,
    /// Paths whose values are never shown (`environment.DB_PASSWORD`).
    pub sensitive: &'a BTreeSet<String>,
}

/// The changes from `live` (none: a create) to `desired`, in the order of the desired fields.
pub(crate) fn diff_fields(desired: &Value, live: Option<&Value>, rules: &Rules<'_>) -> Vec<FieldChange> {
    let Some(want) = desired.as_object() else { return Vec::new() };
    let mut out = Vec::new();
    let Some(live) = live else {
        // A create: each field the code sets, whole.
        let rules = Rules { replace: &[], ..*rules };
        for (k, d) in want {
            if !d.is_null() {
                push(&mut out, &rules, k, k.clone(), None, Some(d));
            }
        }
        return out;
    };
    let mut want = Value::Object(want.clone());
    overlay_ignored(&mut want, live, rules.ignore);
    let want = want.as_object().cloned().unwrap_or_default();
    let empty = Map::new();
    let have = live.as_object().unwrap_or(&empty);
    let keys: Vec<&String> = want.keys().chain(have.keys().filter(|k| !want.contains_key(*k))).collect();
    for k in keys {
        let d = want.get(k).filter(|v| !v.is_null());
        if d.is_none() && rules.computed.contains(&k.as_str()) {
            continue;
        }
        let b = have.get(k).filter(|v| !v.is_null());
        // Unset on both sides, or absent on one and null on the other, is no difference.
        if d.is_none() && b.is_none() {
            continue;
        }
        let before = b.cloned().unwrap_or(Value::Null);
        let after = d.cloned().unwrap_or(Value::Null);
        nested(&mut out, rules, k, k.clone(), Some(&before), Some(&after));
    }
    out
}

/// The top-level field names among the changes (what `Resource::update` is told changed).
pub(crate) fn changed_fields(changes: &[FieldChange]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for c in changes {
        if !names.contains(&c.name) {
            names.push(c.name.clone());
        }
    }
    names
}

fn nested(out: &mut Vec<FieldChange>, rules: &Rules<'_>, field: &str, path: String, before: Option<&Value>, after: Option<&Value>) {
    match (before, after) {
        (Some(b), Some(a)) if b == a && !reference::is_unknown(a) => {}
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            for (k, av) in a {
                nested(out, rules, field, child(&path, k), b.get(k), Some(av));
            }
            for (k, bv) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                nested(out, rules, field, child(&path, k), Some(bv), None);
            }
        }
        (Some(Value::Array(b)), Some(Value::Array(a))) if is_object_list(a) || is_object_list(b) => list(out, rules, field, &path, b, a),
        _ => push(out, rules, field, path, before, after),
    }
}

/// Lists of objects: by natural key when every element has one, else as a set of elements.
fn list(out: &mut Vec<FieldChange>, rules: &Rules<'_>, field: &str, path: &str, before: &[Value], after: &[Value]) {
    if let Some(key) = natural_key(before, after) {
        let id = |v: &Value| v.get(key).map(label).unwrap_or_default();
        for a in after {
            let k = id(a);
            nested(out, rules, field, format!("{path}[{}]", quote(&k)), before.iter().find(|b| id(b) == k), Some(a));
        }
        for b in before.iter().filter(|b| !after.iter().any(|a| id(a) == id(b))) {
            nested(out, rules, field, format!("{path}[{}]", quote(&id(b))), Some(b), None);
        }
        return;
    }
    if before.len() == after.len() && after.iter().any(reference::is_unknown) {
        // Not known yet: compare by position rather than call every element new.
        for (i, (b, a)) in before.iter().zip(after).enumerate() {
            nested(out, rules, field, format!("{path}[{i}]"), Some(b), Some(a));
        }
        return;
    }
    for b in before.iter().filter(|b| !after.contains(b)) {
        push(out, rules, field, format!("{path}[{}]", label(b)), Some(b), None);
    }
    for a in after.iter().filter(|a| !before.contains(a)) {
        push(out, rules, field, format!("{path}[{}]", label(a)), None, Some(a));
    }
}

fn is_object_list(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(Value::is_object)
}

/// The first natural key that every element of both lists holds as a distinct scalar.
fn natural_key(before: &[Value], after: &[Value]) -> Option<&'static str> {
    NATURAL_KEYS.iter().copied().find(|key| {
        [before, after].iter().all(|items| {
            let mut seen = BTreeSet::new();
            items.iter().all(|v| matches!(v.get(*key), Some(Value::String(_) | Value::Number(_))) && seen.insert(label(&v[*key])))
        })
    })
}

/// A short name for an element: a scalar as it is, an object's scalar values joined by spaces
/// (`tcp 443 0.0.0.0/0`), a list's elements joined by commas.
fn label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Array(items) => items.iter().map(label).collect::<Vec<_>>().join(","),
        Value::Object(map) => {
            map.values().filter(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty())).map(label).collect::<Vec<_>>().join(" ")
        }
        other => other.to_string(),
    }
}

/// `path["key"]`: how plans name the element of a list of objects whose natural key is `key`.
pub fn element(path: &str, key: &str) -> String {
    format!("{path}[{}]", quote(key))
}

fn quote(key: &str) -> String {
    serde_json::to_string(key).unwrap_or_else(|_| key.to_string())
}

/// `path.key`, or `path["key"]` for keys that are not plain names: how plans name a map's key (resources
/// build their `sensitive_paths` with it).
pub fn child(path: &str, key: &str) -> String {
    let plain = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", quote(key))
    }
}

fn push(out: &mut Vec<FieldChange>, rules: &Rules<'_>, field: &str, path: String, before: Option<&Value>, after: Option<&Value>) {
    let unknown = after.is_some_and(reference::is_unknown);
    let hide = |v: Option<&Value>| v.map(|v| redact(v, &path, rules.sensitive));
    out.push(FieldChange {
        name: field.to_string(),
        sensitive: is_sensitive(&path, rules.sensitive),
        before: hide(before),
        after: if unknown { None } else { hide(after) },
        after_unknown: unknown,
        removed: after.is_none(),
        forces_replacement: rules.replace.contains(&field),
        path,
    });
}

/// True when the path is, or sits inside, a sensitive path.
fn is_sensitive(path: &str, sensitive: &BTreeSet<String>) -> bool {
    sensitive.iter().any(|s| path == s || path.strip_prefix(s.as_str()).is_some_and(|rest| rest.starts_with(['.', '['])))
}

/// The value at `path` with every sensitive part replaced by [`SENSITIVE`].
pub(crate) fn redact(value: &Value, path: &str, sensitive: &BTreeSet<String>) -> Value {
    if sensitive.is_empty() {
        return value.clone();
    }
    if is_sensitive(path, sensitive) {
        return Value::String(SENSITIVE.into());
    }
    match value {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), redact(v, &child(path, k), sensitive))).collect()),
        // Elements by the same names the diff gives them: a natural key where the list has one.
        Value::Array(items) => {
            let key = natural_key(items, items).filter(|_| is_object_list(items));
            Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let at = match key.and_then(|k| v.get(k)) {
                            Some(id) => format!("{path}[{}]", quote(&label(id))),
                            None => format!("{path}[{i}]"),
                        };
                        redact(v, &at, sensitive)
                    })
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// One step of an `ignore_changes` path.
#[derive(Debug, PartialEq)]
enum Segment {
    /// An object's key, or the element of a list whose natural key has this value.
    Key(String),
    Index(usize),
}

/// `containers["worker"].image` -> [containers, "worker", image]; `None` when malformed.
fn parse_path(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            out.push(if inner.starts_with('"') {
                Segment::Key(serde_json::from_str(inner).ok()?)
            } else {
                Segment::Index(inner.parse().ok()?)
            });
            rest = &r[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            out.push(Segment::Key(r[..end].to_string()));
            rest = &r[end..];
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The top-level field an `ignore_changes` path starts with, or why it is malformed.
pub(crate) fn path_field(path: &str) -> Result<String, String> {
    match parse_path(path).as_deref() {
        Some([Segment::Key(k), ..]) => Ok(k.clone()),
        _ => Err(format!("`{path}` is not a field path (field, field.key, list[\"name\"], list[0])")),
    }
}

fn step<'v>(v: &'v Value, seg: &Segment) -> Option<&'v Value> {
    match (v, seg) {
        (Value::Object(m), Segment::Key(k)) => m.get(k),
        (Value::Array(items), Segment::Key(k)) => {
            let key = natural_key(items, items)?;
            items.iter().find(|e| e.get(key).map(label).as_deref() == Some(k.as_str()))
        }
        (Value::Array(items), Segment::Index(i)) => items.get(*i),
        _ => None,
    }
}

fn step_mut<'v>(v: &'v mut Value, seg: &Segment) -> Option<&'v mut Value> {
    match (v, seg) {
        (Value::Object(m), Segment::Key(k)) => m.get_mut(k),
        (Value::Array(items), Segment::Key(k)) => {
            let key = natural_key(items, items)?;
            items.iter_mut().find(|e| e.get(key).map(label).as_deref() == Some(k.as_str()))
        }
        (Value::Array(items), Segment::Index(i)) => items.get_mut(*i),
        _ => None,
    }
}

/// Puts the live value at each ignored path into the desired one, so it neither shows nor gets applied.
pub(crate) fn overlay_ignored(desired: &mut Value, live: &Value, ignore: &BTreeSet<String>) {
    for path in ignore {
        let Some(segs) = parse_path(path) else { continue };
        let Some((last, parents)) = segs.split_last() else { continue };
        let mut have = Some(live);
        for s in &segs {
            have = have.and_then(|v| step(v, s));
        }
        let mut at = Some(&mut *desired);
        for s in parents {
            at = at.and_then(|v| step_mut(v, s));
        }
        let Some(parent) = at else { continue };
        match (parent, last, have) {
            (Value::Object(m), Segment::Key(k), None) => {
                m.remove(k);
            }
            (Value::Object(m), Segment::Key(k), Some(v)) => {
                m.insert(k.clone(), v.clone());
            }
            (parent, seg, Some(v)) => {
                if let Some(slot) = step_mut(parent, seg) {
                    *slot = v.clone();
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules<'a>(computed: &'a [&'a str], ignore: &'a BTreeSet<String>, sensitive: &'a BTreeSet<String>) -> Rules<'a> {
        Rules { replace: &["name"], computed, ignore, sensitive }
    }

    fn paths(changes: &[FieldChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| {
                let show = |v: &Option<Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "-".into());
                format!("{} {} -> {}", c.path, show(&c.before), if c.after_unknown { "?".into() } else { show(&c.after) })
            })
            .collect()
    }

    #[test]
    fn unset_fields_are_compared_unless_computed() {
        let none = BTreeSet::new();
        let live = json!({"name": "f", "timeout": 15, "arn": "x", "memory": 256});
        let want = json!({"name": "f", "timeout": 3});
        // `memory` is computed by AWS: left alone; `arn` is not: it shows going away (a resource that forgot
        // to declare it would show this diff forever, which the e2e no-op plans catch).
        let c = diff_fields(&want, Some(&live), &rules(&["memory"], &none, &none));
        assert_eq!(paths(&c), ["timeout 15 -> 3", "arn \"x\" -> null"]);
        assert_eq!(changed_fields(&c), ["timeout", "arn"]);
        // null and absent are the same.
        assert!(diff_fields(&json!({"a": null}), Some(&json!({})), &rules(&[], &none, &none)).is_empty());
    }

    #[test]
    fn maps_diff_at_their_keys() {
        let none = BTreeSet::new();
        let live = json!({"environment": {"A": "1", "B": "2", "LOG LEVEL": "info"}});
        let want = json!({"environment": {"A": "1", "C": "3", "LOG LEVEL": "debug"}});
        let c = diff_fields(&want, Some(&live), &rules(&[], &none, &none));
        assert_eq!(paths(&c), ["environment.C - -> \"3\"", "environment[\"LOG LEVEL\"] \"info\" -> \"debug\"", "environment.B \"2\" -> -"]);
        assert!(c[2].removed && !c[0].removed);
    }

    #[test]
    fn lists_of_objects_match_by_natural_key() {
        let none = BTreeSet::new();
        let live = json!({"containers": [{"name": "app", "image": "a:1"}, {"name": "worker", "image": "w:1", "environment": {"LOG_LEVEL": "info"}}]});
        let want = json!({"containers": [{"name": "sidecar", "image": "s:1"}, {"name": "app", "image": "a:1"}, {"name": "worker", "image": "w:2", "environment": {"LOG_LEVEL": "debug"}}]});
        let c = diff_fields(&want, Some(&live), &rules(&[], &none, &none));
        assert_eq!(
            paths(&c),
            [
                "containers[\"sidecar\"] - -> {\"name\":\"sidecar\",\"image\":\"s:1\"}",
                "containers[\"worker\"].image \"w:1\" -> \"w:2\"",
                "containers[\"worker\"].environment.LOG_LEVEL \"info\" -> \"debug\"",
            ]
        );
        let policy = |sids: &[&str]| json!({"Statement": sids.iter().map(|s| json!({"Sid": s, "Effect": "Allow"})).collect::<Vec<_>>()});
        let c =
            diff_fields(&json!({"p": policy(&["ReadTable", "Write"])}), Some(&json!({"p": policy(&["Write"])})), &rules(&[], &none, &none));
        assert_eq!(paths(&c), ["p.Statement[\"ReadTable\"] - -> {\"Sid\":\"ReadTable\",\"Effect\":\"Allow\"}"]);
    }

    #[test]
    fn lists_without_a_key_diff_as_sets() {
        let none = BTreeSet::new();
        let rule = |port: u16| json!({"protocol": "tcp", "port": port, "cidrs": ["0.0.0.0/0"]});
        let live = json!({"ingress": [rule(80), rule(443)]});
        let want = json!({"ingress": [rule(22), rule(80)]});
        let c = diff_fields(&want, Some(&live), &rules(&[], &none, &none));
        let p: Vec<&str> = c.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(p, ["ingress[tcp 443 0.0.0.0/0]", "ingress[tcp 22 0.0.0.0/0]"]);
        assert!(c[0].removed && c[1].before.is_none());
    }

    #[test]
    fn creates_show_whole_fields_and_unknowns() {
        let none = BTreeSet::new();
        let c = diff_fields(&json!({"name": "f", "role": "\u{e000}${ref:r.arn}", "unset": null}), None, &rules(&[], &none, &none));
        assert_eq!(paths(&c), ["name - -> \"f\"", "role - -> ?"]);
        assert!(!c[0].forces_replacement, "nothing is replaced on a create");
    }

    #[test]
    fn ignore_changes_takes_nested_paths() {
        let ignore: BTreeSet<String> = ["containers[\"worker\"].image".to_string(), "tags".into()].into();
        let none = BTreeSet::new();
        let live = json!({"containers": [{"name": "worker", "image": "w:7", "cpu": 1}], "tags": {"a": "1"}});
        let want = json!({"containers": [{"name": "worker", "image": "w:1", "cpu": 2}], "tags": {}});
        let c = diff_fields(&want, Some(&live), &rules(&[], &ignore, &none));
        assert_eq!(paths(&c), ["containers[\"worker\"].cpu 1 -> 2"]);
        assert_eq!(path_field("containers[\"worker\"].image").unwrap(), "containers");
        assert_eq!(path_field("environment.A").unwrap(), "environment");
        assert!(path_field("containers[\"worker").is_err());
        assert!(path_field("").is_err());
    }

    #[test]
    fn sensitive_values_never_show_but_their_change_does() {
        let none = BTreeSet::new();
        let sensitive: BTreeSet<String> = ["environment.DB_PASSWORD".to_string()].into();
        let live = json!({"environment": {"DB_PASSWORD": "hunter2", "A": "1"}});
        let want = json!({"environment": {"DB_PASSWORD": "hunter3", "A": "1"}});
        let c = diff_fields(&want, Some(&live), &rules(&[], &none, &sensitive));
        assert_eq!(paths(&c), ["environment.DB_PASSWORD \"(sensitive)\" -> \"(sensitive)\""]);
        assert!(c[0].sensitive);
        // On a create the whole map shows, its secret masked.
        let c = diff_fields(&want, None, &rules(&[], &none, &sensitive));
        assert_eq!(c[0].after, Some(json!({"DB_PASSWORD": "(sensitive)", "A": "1"})));
        // In a list of objects, an element is named by its natural key, as in diffs.
        let sensitive: BTreeSet<String> = ["containers[\"worker\"].environment.KEY".to_string()].into();
        let want =
            json!({"containers": [{"name": "app", "environment": {"KEY": "a"}}, {"name": "worker", "environment": {"KEY": "s3cret"}}]});
        let c = diff_fields(&want, None, &rules(&[], &none, &sensitive));
        assert_eq!(
            c[0].after,
            Some(json!([{"name": "app", "environment": {"KEY": "a"}}, {"name": "worker", "environment": {"KEY": "(sensitive)"}}]))
        );
    }
}
