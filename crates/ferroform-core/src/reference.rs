//! References between resources.
//!
//! A `Ref<T>` names one output of one resource. It is carried inside another resource's inputs as a *token*
//! string, `${ref:ADDRESS.FIELD}`, the way CDK carries tokens: that lets a reference sit in any string field,
//! even inside a larger string (`format!("{}/index/*", table.arn())`), with resource structs that stay plain
//! Rust types. The engine finds the tokens in the serialized inputs (graph edges), shows them as
//! `(known after apply)` while the producer does not exist, and substitutes the real value before calling
//! the provider.

use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

/// Starts every token. The private-use character U+E000 is what makes a token: text a user writes (a
/// literal `${ref:a.b}` in user data, a shell snippet) can't form one by accident.
pub const MARK: char = '\u{E000}';
const OPEN: &str = "\u{E000}${ref:";

/// A typed handle to an output of a resource (`role.arn()`).
pub struct Ref<T> {
    address: String,
    field: String,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Self { address: self.address.clone(), field: self.field.clone(), _t: PhantomData }
    }
}

impl<T> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ref({}.{})", self.address, self.field)
    }
}

impl<T> Ref<T> {
    pub fn new(address: impl Into<String>, field: impl Into<String>) -> Self {
        Self { address: address.into(), field: field.into(), _t: PhantomData }
    }
    pub fn address(&self) -> &str {
        &self.address
    }
    pub fn field(&self) -> &str {
        &self.field
    }
    /// The token that stands for this value inside a string.
    pub fn token(&self) -> String {
        format!("{OPEN}{}.{}}}", self.address, self.field)
    }
}

impl<T> fmt::Display for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.token())
    }
}

// Only a text output goes where text goes: a number or an optional value is not a name (`format!` it if
// that is really meant).
impl From<Ref<String>> for String {
    fn from(r: Ref<String>) -> String {
        r.token()
    }
}

impl From<&Ref<String>> for String {
    fn from(r: &Ref<String>) -> String {
        r.token()
    }
}

impl<T> From<Ref<T>> for Value {
    fn from(r: Ref<T>) -> Value {
        Value::String(r.token())
    }
}

/// Builds a typed reference from an output's address and field (what `outputs!` generates for each output).
pub trait FromOutput {
    fn from_output(address: &str, field: &str) -> Self;
}

impl<T> FromOutput for Ref<T> {
    fn from_output(address: &str, field: &str) -> Self {
        Ref::new(address, field)
    }
}

macro_rules! kinds {
    ($($(#[$m:meta])* $kind:ident, $what:literal;)*) => {$(
        $(#[$m])*
        ///
        /// It carries the resource type it belongs to (`K`), so the compiler refuses it where another kind or
        /// another type's value is needed. Text goes where text goes (`String: From`), and it formats into
        /// larger strings with `format!`.
        pub struct $kind<K> {
            text: String,
            _k: PhantomData<fn() -> K>,
        }

        impl<K> $kind<K> {
            #[doc = concat!("A literal ", $what, " of something made outside this stack, spelled out in the code:                 the explicit way in where a typed value is needed.")]
            pub fn literal(text: impl Into<String>) -> Self {
                Self { text: text.into(), _k: PhantomData }
            }
            /// The text: a literal, or the reference's token until the value is known.
            pub fn as_str(&self) -> &str {
                &self.text
            }
            pub fn into_string(self) -> String {
                self.text
            }
        }

        impl<K> FromOutput for $kind<K> {
            fn from_output(address: &str, field: &str) -> Self {
                Self::literal(Ref::<String>::new(address, field).token())
            }
        }

        impl<K> Clone for $kind<K> {
            fn clone(&self) -> Self {
                Self::literal(self.text.clone())
            }
        }

        impl<K> PartialEq for $kind<K> {
            fn eq(&self, other: &Self) -> bool {
                self.text == other.text
            }
        }
        impl<K> Eq for $kind<K> {}

        impl<K> fmt::Debug for $kind<K> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}<{}>({:?})", stringify!($kind), short_type_name::<K>(), self.text.replace(MARK, ""))
            }
        }

        impl<K> fmt::Display for $kind<K> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.text)
            }
        }

        impl<K> From<$kind<K>> for String {
            fn from(v: $kind<K>) -> String {
                v.text
            }
        }

        impl<K> From<&$kind<K>> for String {
            fn from(v: &$kind<K>) -> String {
                v.text.clone()
            }
        }

        impl<K> From<$kind<K>> for Value {
            fn from(v: $kind<K>) -> Value {
                Value::String(v.text)
            }
        }

        impl<K> serde::Serialize for $kind<K> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.text)
            }
        }

        impl<'de, K> serde::Deserialize<'de> for $kind<K> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::literal)
            }
        }
    )*};
}

kinds! {
    /// The ARN of a `K` (`Arn<iam::Role>`): what a Lambda's role, a task's execution role or a log
    /// destination takes.
    Arn, "an ARN of this kind";
    /// The id of a `K` (`Id<ec2::Subnet>`): what a subnet list or a VPC field takes.
    Id, "an id of this kind";
    /// The name of a `K` (`Name<logs::LogGroup>`).
    Name, "a name of this kind";
}

/// What a field takes where any resource's ARN will do (an IAM statement's resources, an alarm's actions, a
/// permission's source): a typed ARN, a text output, or literal text (a pattern: `arn:aws:s3:::bucket/*`,
/// `format!("{}/index/*", table.arn())`). A name or an id is not one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an ARN",
    label = "an ARN, an ARN pattern, or literal text goes here",
    note = "a name or an id is not an ARN: use the resource's `arn()`, or `format!` it into a pattern on purpose"
)]
pub trait ArnText {
    fn arn_text(self) -> String;
}

impl<K> ArnText for Arn<K> {
    fn arn_text(self) -> String {
        self.text
    }
}
impl<K> ArnText for &Arn<K> {
    fn arn_text(self) -> String {
        self.text.clone()
    }
}
impl ArnText for String {
    fn arn_text(self) -> String {
        self
    }
}
impl ArnText for &String {
    fn arn_text(self) -> String {
        self.clone()
    }
}
impl ArnText for &str {
    fn arn_text(self) -> String {
        self.to_string()
    }
}
impl ArnText for Ref<String> {
    fn arn_text(self) -> String {
        self.token()
    }
}
impl ArnText for &Ref<String> {
    fn arn_text(self) -> String {
        self.token()
    }
}

fn short_type_name<K>() -> &'static str {
    let full = std::any::type_name::<K>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Joins typed values (subnet ids, say) into one string, as an environment variable carries them.
pub fn join<T: fmt::Display>(values: &[T], sep: &str) -> String {
    values.iter().map(ToString::to_string).collect::<Vec<_>>().join(sep)
}

/// `address.field` of a token found in a string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenRef {
    pub address: String,
    pub field: String,
}

/// Splits a string into literal text and references, in order.
fn parse(s: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find('}') else { break };
        let body = &after[..end];
        let Some(dot) = body.rfind('.') else { break };
        if start > 0 {
            parts.push(Part::Text(&rest[..start]));
        }
        parts.push(Part::Ref(TokenRef { address: body[..dot].to_string(), field: body[dot + 1..].to_string() }));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    parts
}

enum Part<'a> {
    Text(&'a str),
    Ref(TokenRef),
}

/// True when the string holds at least one reference token (its value is not known yet).
pub fn has_token(s: &str) -> bool {
    s.contains(OPEN)
}

/// Strings in a JSON value that hold a broken token (cut by slicing, changed by `to_uppercase`...), with the
/// path of the field and what is wrong: such a value would otherwise stay "unknown" forever.
pub fn malformed(value: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    malformed_at(value, String::new(), &mut out);
    out
}

fn malformed_at(value: &Value, path: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) if s.contains(MARK) => {
            let whole = parse(s).iter().filter(|p| matches!(p, Part::Ref(r) if !r.address.is_empty() && !r.field.is_empty())).count();
            if whole != s.matches(MARK).count() {
                let shown = s.replace(MARK, "");
                out.push((
                    path,
                    format!("`{shown}` holds a reference that was cut or altered (by slicing, case changes, ...); use the reference as it is, or format!() it whole into a string"),
                ));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                malformed_at(v, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                malformed_at(v, if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out);
            }
        }
        _ => {}
    }
}

/// Every reference in a JSON value, with the JSON path of the field it sits in.
pub fn references(value: &Value) -> Vec<(String, TokenRef)> {
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn walk(value: &Value, path: String, out: &mut Vec<(String, TokenRef)>) {
    match value {
        Value::String(s) if has_token(s) => {
            for part in parse(s) {
                if let Part::Ref(r) = part {
                    out.push((path.clone(), r));
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                walk(v, p, out);
            }
        }
        _ => {}
    }
}

/// The addresses a JSON value refers to.
pub fn referenced_addresses(value: &Value) -> BTreeSet<String> {
    references(value).into_iter().map(|(_, r)| r.address).collect()
}

/// Replaces every token whose value `lookup` knows. A string that is exactly one token takes the output's
/// JSON value as it is (so non-string outputs keep their type); tokens inside a larger string are
/// substituted as text. Tokens `lookup` does not know are left in place (still unknown).
pub fn resolve(value: &Value, lookup: &dyn Fn(&TokenRef) -> Option<Value>) -> Value {
    match value {
        Value::String(s) if has_token(s) => {
            let parts = parse(s);
            if let [Part::Ref(r)] = parts.as_slice() {
                return lookup(r).unwrap_or_else(|| value.clone());
            }
            let mut out = String::new();
            for part in parts {
                match part {
                    Part::Text(t) => out.push_str(t),
                    Part::Ref(r) => match lookup(&r) {
                        Some(Value::String(v)) => out.push_str(&v),
                        // A known null in a larger string is empty text, in plan and apply alike (left as a
                        // token, it would stay "unknown" forever).
                        Some(Value::Null) => {}
                        None => out.push_str(&format!("{OPEN}{}.{}}}", r.address, r.field)),
                        Some(other) => out.push_str(&other.to_string()),
                    },
                }
            }
            Value::String(out)
        }
        // A list output given as one element of a list (a lookup's subnet ids among a service's subnets) is
        // spliced in: resources' lists never hold lists.
        Value::Array(items) => Value::Array(
            items
                .iter()
                .flat_map(|v| match resolve(v, lookup) {
                    Value::Array(inner) if is_whole_token(v) => inner,
                    one => vec![one],
                })
                .collect(),
        ),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), resolve(v, lookup))).collect()),
        other => other.clone(),
    }
}

fn is_whole_token(v: &Value) -> bool {
    matches!(v, Value::String(s) if matches!(parse(s).as_slice(), [Part::Ref(_)]))
}

/// True when any token remains anywhere in the value.
pub fn is_unknown(value: &Value) -> bool {
    match value {
        Value::String(s) => has_token(s),
        Value::Array(items) => items.iter().any(is_unknown),
        Value::Object(map) => map.values().any(is_unknown),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_round_trip_through_strings() {
        let r: Ref<String> = Ref::new("net/vpc", "id");
        let v = json!({"a": r.to_string(), "b": [format!("arn:{}/index/*", r)], "c": 3});
        let refs = references(&v);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].0, "a");
        assert_eq!(refs[1].0, "b[0]");
        assert_eq!(refs[0].1.address, "net/vpc");
        let resolved = resolve(&v, &|t| (t.field == "id").then(|| json!("vpc-1")));
        assert_eq!(resolved, json!({"a": "vpc-1", "b": ["arn:vpc-1/index/*"], "c": 3}));
        assert!(!is_unknown(&resolved));
        assert!(is_unknown(&v));
    }

    #[test]
    fn whole_token_keeps_the_output_type() {
        let v = json!(Ref::<u64>::new("t", "n").token());
        assert_eq!(resolve(&v, &|_| Some(json!(42))), json!(42));
        assert_eq!(resolve(&v, &|_| None), v);
    }

    #[test]
    fn a_known_null_output_resolves_the_same_whole_or_inside_a_string() {
        let r = Ref::<Option<String>>::new("a", "maybe");
        let v = json!({"whole": r.token(), "inside": format!("x-{r}-y")});
        let resolved = resolve(&v, &|_| Some(Value::Null));
        assert_eq!(resolved, json!({"whole": null, "inside": "x--y"}));
        assert!(!is_unknown(&resolved), "known, not pending forever");
        assert!(is_unknown(&resolve(&v, &|_| None)), "not known yet: still unknown");
    }

    #[test]
    fn a_list_output_inside_a_list_is_spliced() {
        let ids = Ref::<Vec<String>>::new("vpc", "subnet_ids").token();
        let v = json!({"subnets": ["subnet-a", ids.clone()], "whole": ids});
        let resolved = resolve(&v, &|_| Some(json!(["subnet-b", "subnet-c"])));
        assert_eq!(resolved, json!({"subnets": ["subnet-a", "subnet-b", "subnet-c"], "whole": ["subnet-b", "subnet-c"]}));
    }

    #[test]
    fn other_dollar_braces_are_not_tokens() {
        let v = json!("arn:aws:s3:::bucket/${aws:username}/*");
        assert!(references(&v).is_empty());
    }

    #[test]
    fn user_text_cannot_form_a_token() {
        // What a user might type, or data that happens to look like a token, is plain text.
        let v = json!({"user_data": "echo ${ref:db.password}", "exact": "${ref:a.b}"});
        assert!(references(&v).is_empty());
        assert!(!is_unknown(&v));
        assert!(malformed(&v).is_empty());
        assert_eq!(resolve(&v, &|_| Some(json!("leak"))), v);
    }

    #[test]
    fn broken_tokens_are_found_with_their_path() {
        let token = Ref::<String>::new("vpc", "id").token();
        let cut: String = token.chars().take(8).collect();
        let v = json!({"ok": format!("x/{token}/y"), "bad": [format!("{cut}-rest")], "upper": token.to_uppercase()});
        let found: Vec<String> = malformed(&v).into_iter().map(|(p, _)| p).collect();
        assert_eq!(found, ["bad[0]", "upper"]);
    }
}
