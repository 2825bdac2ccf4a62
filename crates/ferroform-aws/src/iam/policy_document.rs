//! IAM policy documents: a typed builder that serializes to IAM's JSON and compares semantically.
//!
//! What "semantically" means here, as IAM evaluates a policy ([`PolicyDocument::normalize`] applies it to
//! desired and live alike, so the engine sees one form):
//! - inside a statement `Action`/`Resource`/principal/condition value lists are sets (sorted,
//!   deduplicated), and a single string equals a one-element list; one `Statement` object equals a list of
//!   one; a missing `Statement` is an empty list;
//! - `Effect` is read in any case (`allow`); an empty `Sid` is no `Sid`;
//! - an action's service prefix is lowercased (`S3:GetObject` is `s3:GetObject`); actions that differ only
//!   in case are one action;
//! - an AWS principal given as a bare account id equals `arn:PARTITION:iam::ID:root`, which IAM turns it
//!   into; both become the account id, whatever the partition (as a string, in a map, in a list);
//! - empty principal sets (`{}`, `{"AWS": []}`) are no principal;
//! - condition values `true`/`1` equal `"true"`/`"1"`; a missing `Version` is `2012-10-17`.
//!
//! Statement order is kept (people read it, and IAM keeps it) but means nothing to IAM: the engine matches
//! statement lists as sets (by `Sid` where every statement has one), and [`PolicyDocument::equivalent`] does
//! likewise. `equivalent` also compares action names case-insensitively (IAM does), which one canonical form
//! can't do without rewriting the spelling people gave: reads use [`PolicyDocument::prior_if_equivalent`]
//! so a live document spelled otherwise is no diff. Checked against the equivalent and different pairs of
//! hashicorp/awspolicyequivalence (`testdata/`). IAM answers `GetRole`/`GetRolePolicy`/`GetPolicyVersion`
//! with URL-encoded documents: [`PolicyDocument::parse_aws`] decodes them.

use ferroform_core::{is_unknown_str, ArnText, FieldError};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The policy language version every document gets unless it says otherwise.
pub const VERSION: &str = "2012-10-17";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(rename = "Id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "Statement", default, deserialize_with = "one_or_many_statements")]
    pub statements: Vec<Statement>,
}

/// Read in any case (`"allow"`), as IAM does; written `Allow`/`Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// `"*"` (anyone), one principal as a bare string, or principals by type (`AWS`, `Service`, `Federated`,
/// `CanonicalUser`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Principal {
    Any(AnyPrincipal),
    /// A string other than `"*"` (an account id or a root ARN): IAM documents only `"*"` as a string, but
    /// resource policies in the wild carry these and compare by them.
    One(String),
    Typed(#[serde(serialize_with = "principals_as_iam_writes_them")] BTreeMap<String, Vec<String>>),
}

/// One principal of a type as a bare string (`"Service": "codepipeline.amazonaws.com"`), several as a list: the
/// form IAM itself returns, and the one some readers of trust policies expect (moto's CreatePipeline looks
/// for the service as a string).
fn principals_as_iam_writes_them<S: serde::Serializer>(map: &BTreeMap<String, Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(map.len()))?;
    for (kind, ids) in map {
        match ids.as_slice() {
            [one] => m.serialize_entry(kind, one)?,
            _ => m.serialize_entry(kind, ids)?,
        }
    }
    m.end()
}

/// The `"*"` principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnyPrincipal;

impl Serialize for AnyPrincipal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("*")
    }
}

/// Condition operator (`StringEquals`) -> condition key (`aws:SourceArn`) -> values.
pub type Conditions = BTreeMap<String, BTreeMap<String, Vec<String>>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "Sid", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(rename = "Effect")]
    pub effect: Effect,
    #[serde(rename = "Principal", default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    #[serde(rename = "NotPrincipal", default, skip_serializing_if = "Option::is_none")]
    pub not_principal: Option<Principal>,
    #[serde(rename = "Action", default, skip_serializing_if = "Vec::is_empty", deserialize_with = "one_or_many")]
    pub actions: Vec<String>,
    #[serde(rename = "NotAction", default, skip_serializing_if = "Vec::is_empty", deserialize_with = "one_or_many")]
    pub not_actions: Vec<String>,
    #[serde(rename = "Resource", default, skip_serializing_if = "Vec::is_empty", deserialize_with = "one_or_many")]
    pub resources: Vec<String>,
    #[serde(rename = "NotResource", default, skip_serializing_if = "Vec::is_empty", deserialize_with = "one_or_many")]
    pub not_resources: Vec<String>,
    #[serde(rename = "Condition", default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "conditions")]
    pub conditions: Conditions,
}

impl Default for PolicyDocument {
    fn default() -> Self {
        Self::new()
    }
}

impl PolicyDocument {
    /// An empty document (version `2012-10-17`); add statements with `allow`, `deny` or `statement`.
    pub fn new() -> Self {
        Self { version: Some(VERSION.to_string()), id: None, statements: Vec::new() }
    }

    /// The trust policy letting an AWS service (`lambda.amazonaws.com`) assume a role.
    pub fn assume_role_by_service(service: impl Into<String>) -> Self {
        Self::new().statement(Statement::allow().action("sts:AssumeRole").principal("Service", service))
    }

    /// Adds `Allow actions on resources`.
    pub fn allow<A, R>(self, actions: impl IntoIterator<Item = A>, resources: impl IntoIterator<Item = R>) -> Self
    where
        A: Into<String>,
        R: ArnText,
    {
        self.statement(Statement::allow().actions(actions).resources(resources))
    }

    /// Adds `Deny actions on resources`.
    pub fn deny<A, R>(self, actions: impl IntoIterator<Item = A>, resources: impl IntoIterator<Item = R>) -> Self
    where
        A: Into<String>,
        R: ArnText,
    {
        self.statement(Statement::deny().actions(actions).resources(resources))
    }

    pub fn statement(mut self, s: Statement) -> Self {
        self.statements.push(s);
        self
    }

    /// Parses a document as a person or a tool wrote it (single strings or lists, any key order).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not an IAM policy document: {e}"))?;
        // Serde would read a struct from a JSON list too; a document is an object.
        if !value.is_object() {
            return Err(format!("not an IAM policy document: a JSON object is expected, found {}", kind_of(&value)));
        }
        serde_json::from_value(value).map_err(|e| format!("not an IAM policy document: {e}"))
    }

    /// Parses a document as IAM returns it: URL-encoded by `GetRole`, `GetRolePolicy` and
    /// `GetPolicyVersion` (RFC 3986), plain JSON from some emulators and older endpoints.
    pub fn parse_aws(text: &str) -> Result<Self, String> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            if let Ok(doc) = Self::from_json(trimmed) {
                return Ok(doc);
            }
        }
        Self::from_json(&url_decode(text)?)
    }

    /// The JSON IAM is given (compact).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// The canonical form: see the module documentation.
    pub fn normalize(&mut self) {
        if self.version.is_none() {
            self.version = Some(VERSION.to_string());
        }
        for s in &mut self.statements {
            s.normalize();
        }
    }

    /// Normalized copy.
    pub fn normalized(mut self) -> Self {
        self.normalize();
        self
    }

    /// Semantic equality, as IAM evaluates: equal once both are normalized, statements compared as a set
    /// and action names without regard to case.
    pub fn equivalent(&self, other: &Self) -> bool {
        self.comparison_key() == other.comparison_key()
    }

    /// What a read reports for a live document: the prior (state's) document when the live one is
    /// equivalent to it, so a document IAM or a person spelled otherwise (action case, statement order) is
    /// no diff; else the live one.
    pub fn prior_if_equivalent(live: Self, prior: &Self) -> Self {
        if live.equivalent(prior) {
            prior.clone()
        } else {
            live
        }
    }

    /// Version, Id and the set of statements (each normalized, actions lowercased, as JSON).
    fn comparison_key(&self) -> (Option<String>, Option<String>, Vec<String>) {
        let doc = self.clone().normalized();
        let mut statements: Vec<String> = doc
            .statements
            .into_iter()
            .map(|mut s| {
                for a in s.actions.iter_mut().chain(s.not_actions.iter_mut()) {
                    *a = a.to_lowercase();
                }
                s.actions.dedup();
                s.not_actions.dedup();
                serde_json::to_string(&s).unwrap_or_default()
            })
            .collect();
        statements.sort();
        statements.dedup();
        (doc.version, doc.id, statements)
    }

    /// Checks what IAM would reject in an identity policy (inline or managed): `field` names the input.
    pub fn validate_identity(&self, field: &str, errors: &mut Vec<FieldError>) {
        self.validate_common(field, errors);
        for (i, s) in self.statements.iter().enumerate() {
            if s.principal.is_some() || s.not_principal.is_some() {
                errors.push(FieldError::new(field, format!("statement {i}: a permissions policy can't name a Principal")));
            }
            if s.resources.is_empty() && s.not_resources.is_empty() {
                errors.push(FieldError::new(field, format!("statement {i}: needs Resource or NotResource")));
            }
        }
    }

    /// Checks what IAM would reject in a role's trust policy.
    pub fn validate_trust(&self, field: &str, errors: &mut Vec<FieldError>) {
        self.validate_common(field, errors);
        for (i, s) in self.statements.iter().enumerate() {
            if s.principal.is_none() && s.not_principal.is_none() {
                errors.push(FieldError::new(field, format!("statement {i}: a trust policy needs a Principal")));
            }
            if !s.resources.is_empty() || !s.not_resources.is_empty() {
                errors.push(FieldError::new(field, format!("statement {i}: a trust policy can't have Resource")));
            }
        }
    }

    fn validate_common(&self, field: &str, errors: &mut Vec<FieldError>) {
        if let Some(v) = &self.version {
            if v != VERSION && v != "2008-10-17" {
                errors.push(FieldError::new(field, format!("Version `{v}` is not `2012-10-17` or `2008-10-17`")));
            }
        }
        if self.statements.is_empty() {
            errors.push(FieldError::new(field, "the document has no statement"));
        }
        for (i, s) in self.statements.iter().enumerate() {
            match (s.actions.is_empty(), s.not_actions.is_empty()) {
                (true, true) => errors.push(FieldError::new(field, format!("statement {i}: needs Action or NotAction"))),
                (false, false) => errors.push(FieldError::new(field, format!("statement {i}: has both Action and NotAction"))),
                _ => {}
            }
            if !s.resources.is_empty() && !s.not_resources.is_empty() {
                errors.push(FieldError::new(field, format!("statement {i}: has both Resource and NotResource")));
            }
            if s.principal.is_some() && s.not_principal.is_some() {
                errors.push(FieldError::new(field, format!("statement {i}: has both Principal and NotPrincipal")));
            }
            for a in s.actions.iter().chain(&s.not_actions) {
                if !is_unknown_str(a) && a != "*" && !valid_action(a) {
                    errors.push(FieldError::new(field, format!("statement {i}: action `{a}` is not `service:Action`")));
                }
            }
            if let Some(sid) = &s.sid {
                if !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
                    errors.push(FieldError::new(field, format!("statement {i}: Sid `{sid}` may hold only letters and digits")));
                }
            }
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn valid_action(a: &str) -> bool {
    match a.split_once(':') {
        Some((service, action)) => {
            !service.is_empty()
                && service.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !action.is_empty()
                && action.chars().all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
        }
        None => false,
    }
}

impl Statement {
    fn new(effect: Effect) -> Self {
        Self {
            sid: None,
            effect,
            principal: None,
            not_principal: None,
            actions: Vec::new(),
            not_actions: Vec::new(),
            resources: Vec::new(),
            not_resources: Vec::new(),
            conditions: Conditions::new(),
        }
    }
    pub fn allow() -> Self {
        Self::new(Effect::Allow)
    }
    pub fn deny() -> Self {
        Self::new(Effect::Deny)
    }
    pub fn sid(mut self, sid: impl Into<String>) -> Self {
        self.sid = Some(sid.into());
        self
    }
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.actions.push(action.into());
        self
    }
    pub fn actions<A: Into<String>>(mut self, actions: impl IntoIterator<Item = A>) -> Self {
        self.actions.extend(actions.into_iter().map(Into::into));
        self
    }
    pub fn not_actions<A: Into<String>>(mut self, actions: impl IntoIterator<Item = A>) -> Self {
        self.not_actions.extend(actions.into_iter().map(Into::into));
        self
    }
    /// A resource: a typed ARN (`table.arn()`), a pattern (`format!("{}/index/*", table.arn())`) or `"*"`.
    pub fn resource(mut self, resource: impl ArnText) -> Self {
        self.resources.push(resource.arn_text());
        self
    }
    pub fn resources<R: ArnText>(mut self, resources: impl IntoIterator<Item = R>) -> Self {
        self.resources.extend(resources.into_iter().map(ArnText::arn_text));
        self
    }
    pub fn not_resources<R: ArnText>(mut self, resources: impl IntoIterator<Item = R>) -> Self {
        self.not_resources.extend(resources.into_iter().map(ArnText::arn_text));
        self
    }
    /// Adds a principal of a type (`Service`, `AWS`, `Federated`).
    pub fn principal(mut self, kind: impl Into<String>, id: impl Into<String>) -> Self {
        let kind = kind.into();
        let id = id.into();
        match &mut self.principal {
            Some(Principal::Typed(map)) => map.entry(kind).or_default().push(id),
            _ => self.principal = Some(Principal::Typed(BTreeMap::from([(kind, vec![id])]))),
        }
        self
    }
    /// `"Principal": "*"`.
    pub fn any_principal(mut self) -> Self {
        self.principal = Some(Principal::Any(AnyPrincipal));
        self
    }
    /// Adds a condition: `condition("StringEquals", "aws:SourceAccount", "123456789012")`.
    pub fn condition(mut self, operator: impl Into<String>, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.conditions.entry(operator.into()).or_default().entry(key.into()).or_default().push(value.into());
        self
    }

    fn normalize(&mut self) {
        if self.sid.as_deref() == Some("") {
            self.sid = None;
        }
        for list in [&mut self.actions, &mut self.not_actions] {
            for a in list.iter_mut() {
                lowercase_service_prefix(a);
            }
            // Sorted by the lowercased action, so spellings of one action sit together and dedup keeps one.
            list.sort_by(|a, b| a.to_lowercase().cmp(&b.to_lowercase()).then_with(|| a.cmp(b)));
            list.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        }
        for list in [&mut self.resources, &mut self.not_resources] {
            sort_dedup(list);
        }
        for p in [&mut self.principal, &mut self.not_principal] {
            normalize_principal(p);
        }
        for keys in self.conditions.values_mut() {
            for values in keys.values_mut() {
                sort_dedup(values);
            }
        }
    }
}

fn sort_dedup(list: &mut Vec<String>) {
    list.sort();
    list.dedup();
}

/// `S3:GetObject` -> `s3:GetObject`: service prefixes are lowercase, and IAM matches them in any case.
fn lowercase_service_prefix(action: &mut String) {
    if is_unknown_str(action) {
        return;
    }
    if let Some((service, name)) = action.split_once(':') {
        if service.bytes().any(|b| b.is_ascii_uppercase()) {
            *action = format!("{}:{name}", service.to_ascii_lowercase());
        }
    }
}

/// Sets of ids sorted, account root ARNs as account ids, empty sets dropped, no set left: no principal.
fn normalize_principal(p: &mut Option<Principal>) {
    match p {
        Some(Principal::Typed(map)) => {
            map.retain(|_, ids| !ids.is_empty());
            for (kind, ids) in map.iter_mut() {
                if kind == "AWS" {
                    for id in ids.iter_mut() {
                        root_as_account(id);
                    }
                }
                sort_dedup(ids);
            }
            if map.is_empty() {
                *p = None;
            }
        }
        Some(Principal::One(id)) => root_as_account(id),
        Some(Principal::Any(_)) | None => {}
    }
}

/// `arn:PARTITION:iam::ID:root` -> `ID`. IAM stores a bare account id as that ARN in the account's own
/// partition, so the id is the one form both sides share wherever the policy lives.
fn root_as_account(id: &mut String) {
    let account = id
        .strip_prefix("arn:")
        .and_then(|rest| rest.split_once(":iam::"))
        .filter(|(partition, _)| !partition.is_empty() && !partition.contains(':'))
        .and_then(|(_, rest)| rest.strip_suffix(":root"))
        .filter(|acct| is_account_id(acct));
    if let Some(account) = account {
        *id = account.to_string();
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Percent-decoding (`%7B` -> `{`, `+` -> space, as Go's `QueryUnescape` and IAM's encoder agree).
pub(crate) fn url_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(|| format!("truncated escape at byte {i}"))?;
                let hex = std::str::from_utf8(hex).map_err(|_| format!("bad escape at byte {i}"))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape `%{hex}` at byte {i}"))?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "the decoded document is not UTF-8".to_string())
}

// ---- lenient deserialization: IAM takes a string where it takes a list, and any scalar as a condition value

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        v => strings(v).map_err(de::Error::custom),
    }
}

fn strings(v: Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items.into_iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn scalar(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("expected a string, found {other}")),
    }
}

fn one_or_many_statements<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Statement>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.into_iter().map(|v| serde_json::from_value(v).map_err(de::Error::custom)).collect(),
        v @ Value::Object(_) => Ok(vec![serde_json::from_value(v).map_err(de::Error::custom)?]),
        other => Err(de::Error::custom(format!("Statement must be an object or a list, found {other}"))),
    }
}

fn conditions<'de, D: Deserializer<'de>>(d: D) -> Result<Conditions, D::Error> {
    let raw: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::deserialize(d)?;
    let mut out = Conditions::new();
    for (op, keys) in raw {
        let entry = out.entry(op).or_default();
        for (k, v) in keys {
            entry.insert(k, strings(v).map_err(de::Error::custom)?);
        }
    }
    Ok(out)
}

impl<'de> Deserialize<'de> for Effect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.eq_ignore_ascii_case("allow") {
            Ok(Effect::Allow)
        } else if s.eq_ignore_ascii_case("deny") {
            Ok(Effect::Deny)
        } else {
            Err(de::Error::custom(format!("Effect must be Allow or Deny, found `{s}`")))
        }
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s == "*" => Ok(Principal::Any(AnyPrincipal)),
            Value::String(s) => Ok(Principal::One(s)),
            Value::Object(map) => {
                let mut out = BTreeMap::new();
                for (k, v) in map {
                    out.insert(k, strings(v).map_err(de::Error::custom)?);
                }
                Ok(Principal::Typed(out))
            }
            other => Err(de::Error::custom(format!("Principal must be a string or an object, found {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_strings_and_lists_and_order_compare_equal() {
        let a = PolicyDocument::from_json(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:b","arn:a","arn:a"],
                "Condition":{"Bool":{"aws:SecureTransport":true}}}}"#,
        )
        .unwrap();
        let b = PolicyDocument::new().statement(Statement::allow().action("s3:GetObject").resources(["arn:a", "arn:b"]).condition(
            "Bool",
            "aws:SecureTransport",
            "true",
        ));
        assert!(a.equivalent(&b));
        assert_ne!(a, b);
        let c = PolicyDocument::new().allow(["s3:PutObject"], ["arn:a", "arn:b"]);
        assert!(!a.equivalent(&c));
    }

    #[test]
    fn statement_order_does_not_matter_but_content_does() {
        let a = PolicyDocument::new().allow(["s3:GetObject"], ["*"]).deny(["s3:PutObject"], ["*"]);
        let b = PolicyDocument::new().deny(["s3:PutObject"], ["*"]).allow(["s3:GetObject"], ["*"]);
        assert!(a.equivalent(&b));
        let c = PolicyDocument::new().deny(["s3:GetObject"], ["*"]).allow(["s3:PutObject"], ["*"]);
        assert!(!a.equivalent(&c));
        // The order people gave is kept in what is sent.
        assert_eq!(a.clone().normalized().statements[0].effect, Effect::Allow);
    }

    /// The pairs of hashicorp/awspolicyequivalence's TestPolicyEquivalence (what terraform-provider-aws
    /// relies on), each parsed as the project parses a document, normalized and compared.
    #[test]
    fn the_awspolicyequivalence_suite_agrees() {
        // Cases whose texts are not policy documents IAM would take: the suite calls identical texts equal
        // before looking inside; the project refuses to parse them (a plan shows the error, never a guess).
        let refused_to_parse: &[(&str, &str)] = &[
            ("Incorrect Statement type", "`Statement: 42` is neither a statement nor a list of them"),
            ("Incorrect single Resource type", "`Resource: {}` is not a string or a list of strings"),
            ("Incorrect multiple Resource type", "`Resource: [[42]]` is not a list of strings"),
            ("Different empty lists", "`[]` and `[{}]` are Terraform's list-wrapped pseudo-JSON, not documents"),
            ("Equivalence of emptiness", "an empty text is not JSON; IAM refuses it (MalformedPolicyDocument)"),
        ];
        let suite: Value = serde_json::from_str(include_str!("testdata/awspolicyequivalence.json")).unwrap();
        assert_eq!(suite["license"], "MPL-2.0");
        let cases = suite["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 46);
        let mut checked = 0;
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let parse = |k: &str| PolicyDocument::from_json(case[k].as_str().unwrap());
            let (a, b) = (parse("policy1"), parse("policy2"));
            if let Some((_, why)) = refused_to_parse.iter().find(|(n, _)| *n == name) {
                assert!(a.is_err() || b.is_err(), "{name}: excluded because {why}, yet both texts parse");
                continue;
            }
            if case["err"] == true {
                assert!(a.is_err() || b.is_err(), "{name}: the suite expects an error");
                checked += 1;
                continue;
            }
            let (a, b) = (a.unwrap_or_else(|e| panic!("{name}: policy1: {e}")), b.unwrap_or_else(|e| panic!("{name}: policy2: {e}")));
            let want = case["equivalent"].as_bool().unwrap();
            assert_eq!(a.equivalent(&b), want, "{name}");
            assert_eq!(b.equivalent(&a), want, "{name} (swapped)");
            // Where the suite says equal, the engine's view agrees too: the normalized documents are the same
            // JSON but for statement order.
            if want {
                let key = |d: &PolicyDocument| {
                    let mut v: Vec<String> = d.clone().normalized().statements.iter().map(|s| serde_json::to_string(s).unwrap()).collect();
                    v.sort();
                    v
                };
                assert_eq!(key(&a), key(&b), "{name}");
            }
            checked += 1;
        }
        assert_eq!(checked + refused_to_parse.len(), cases.len());
    }

    #[test]
    fn effect_sid_actions_and_principals_as_iam_reads_them() {
        let doc = |text: &str| PolicyDocument::from_json(text).unwrap();
        let base = doc(r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#);
        for same in [
            r#"{"Version":"2012-10-17","Statement":{"Sid":"A","Effect":"allow","Action":["s3:GetObject"],"Resource":["*"]}}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"ALLOW","Action":["S3:getobject","s3:GetObject"],"Resource":"*"}]}"#,
        ] {
            assert!(base.equivalent(&doc(same)), "{same}");
        }
        assert!(!base.equivalent(&doc(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Deny","Action":"s3:GetObject","Resource":"*"}]}"#
        )));
        assert!(!base.equivalent(&doc(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"B","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
        )));
        assert!(PolicyDocument::from_json(r#"{"Statement":[{"Effect":"Maybe","Action":"s3:GetObject"}]}"#).is_err());
        // The service prefix is folded in the canonical form; the action name keeps its spelling.
        let n = doc(r#"{"Statement":[{"Sid":"","Effect":"Allow","Action":["S3:GetObject","s3:getObject"],"Resource":"*"}]}"#).normalized();
        assert_eq!(n.statements[0].actions, ["s3:GetObject"]);
        assert_eq!(n.statements[0].sid, None);

        // An account as a bare id, a root ARN of any partition, as a string, in a map, in a list.
        let trust = |p: &str| doc(&format!(r#"{{"Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{p}}}]}}"#));
        let root = trust(r#"{"AWS":"arn:aws:iam::123456789012:root"}"#);
        for same in [r#"{"AWS":"123456789012"}"#, r#"{"AWS":["123456789012"]}"#, r#"{"AWS":["arn:aws-cn:iam::123456789012:root"]}"#] {
            assert!(root.equivalent(&trust(same)), "{same}");
        }
        assert!(trust(r#""123456789012""#).equivalent(&trust(r#""arn:aws:iam::123456789012:root""#)));
        assert!(!root.equivalent(&trust(r#"{"AWS":"210987654321"}"#)));
        assert!(!root.equivalent(&trust(r#"{"AWS":"arn:aws:iam::123456789012:user/root"}"#)));
        assert!(!root.equivalent(&trust(r#""*""#)));
        // Empty and missing principal sets.
        let none = doc(r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#);
        for empty in ["{}", r#"{"AWS":[]}"#, r#"{"Service":[],"AWS":[]}"#] {
            assert!(none.equivalent(&trust(empty)), "{empty}");
        }
    }

    #[test]
    fn a_read_keeps_the_prior_spelling_of_an_equivalent_document() {
        let prior = PolicyDocument::new().allow(["s3:GetObject"], ["*"]).deny(["s3:PutObject"], ["*"]);
        let live = PolicyDocument::new().deny(["s3:putobject"], ["*"]).allow(["s3:getobject"], ["*"]);
        assert_eq!(PolicyDocument::prior_if_equivalent(live, &prior), prior);
        let changed = PolicyDocument::new().allow(["s3:GetObject"], ["*"]);
        assert_eq!(PolicyDocument::prior_if_equivalent(changed.clone(), &prior), changed);
    }

    #[test]
    fn decodes_what_iam_returns() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        let doc = PolicyDocument::parse_aws(encoded).unwrap();
        assert!(doc.equivalent(&PolicyDocument::assume_role_by_service("lambda.amazonaws.com")));
        let plain = PolicyDocument::assume_role_by_service("lambda.amazonaws.com").to_json();
        assert!(PolicyDocument::parse_aws(&plain).unwrap().equivalent(&doc));
        assert_eq!(url_decode("a+b%20c%2B").unwrap(), "a b c+");
        assert!(url_decode("%7").is_err());
    }

    #[test]
    fn account_principals_become_account_ids_and_version_defaults() {
        let a = PolicyDocument::from_json(
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#,
        )
        .unwrap()
        .normalized();
        assert_eq!(a.version.as_deref(), Some(VERSION));
        assert_eq!(a.statements[0].principal, Some(Principal::Typed(BTreeMap::from([("AWS".into(), vec!["123456789012".into()])]))));
        let any = PolicyDocument::from_json(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#).unwrap();
        assert_eq!(any.statements[0].principal, Some(Principal::Any(AnyPrincipal)));
        assert!(any.to_json().contains(r#""Principal":"*""#));
        let one = PolicyDocument::from_json(r#"{"Statement":[{"Effect":"Allow","Principal":"123456789012","Action":"sts:AssumeRole"}]}"#);
        assert!(one.unwrap().to_json().contains(r#""Principal":"123456789012""#));
    }

    #[test]
    fn serializes_to_iam_json() {
        let doc = PolicyDocument::new().allow(["dynamodb:Scan"], ["arn:aws:dynamodb:us-east-1:1:table/t"]);
        let v: Value = serde_json::from_str(&doc.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["dynamodb:Scan"], "Resource": ["arn:aws:dynamodb:us-east-1:1:table/t"]}]})
        );
    }

    #[test]
    fn validation_knows_trust_from_permissions() {
        let mut e = Vec::new();
        PolicyDocument::assume_role_by_service("lambda.amazonaws.com").validate_trust("t", &mut e);
        assert!(e.is_empty(), "{e:?}");
        PolicyDocument::assume_role_by_service("lambda.amazonaws.com").validate_identity("p", &mut e);
        assert_eq!(e.len(), 2, "{e:?}");
        e.clear();
        PolicyDocument::new().validate_identity("p", &mut e);
        assert_eq!(e.len(), 1);
        e.clear();
        PolicyDocument::new().allow(["dynamodb Scan"], ["*"]).validate_identity("p", &mut e);
        assert_eq!(e.len(), 1);
        e.clear();
        PolicyDocument::new().allow(["dynamodb:Scan"], ["\u{e000}${ref:t.arn}"]).validate_identity("p", &mut e);
        assert!(e.is_empty());
    }
}
