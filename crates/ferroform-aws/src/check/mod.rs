//! `check`: a security and good-practice review of a stack's declared resources, before any API call and
//! without credentials, like Checkov or cdk-nag but over the stack's own types.
//!
//! A [`Rule`] is data: an id (`FF-IAM-001`), a severity, what it is about, why it matters, the fix, and a
//! function from one declared resource (decoded into its typed struct) to the places it is broken. Each
//! service's rules live in a file of their own here and are listed by [`rules`]. Exceptions are declared in
//! the stack with a mandatory reason (`Options::new().allow("FF-S3-002", "why")`, or `stack.allow(address,
//! rule, why)` for what a component added) and are shown in the report, never hidden.
//!
//! ```ignore
//! let report = ferroform_aws::check::check(&stack);
//! print!("{}", report.to_text(false, Severity::Low));
//! std::process::exit(if report.blocking(Severity::Low) > 0 { 3 } else { 0 });
//! ```

#[cfg(feature = "apigatewayv2")]
mod apigatewayv2;
#[cfg(feature = "cloudwatch")]
mod cloudwatch;
#[cfg(feature = "dynamodb")]
mod dynamodb;
#[cfg(feature = "ec2")]
mod ec2;
#[cfg(feature = "ecr")]
mod ecr;
#[cfg(feature = "ecs")]
mod ecs;
#[cfg(feature = "iam")]
mod iam;
#[cfg(feature = "lambda")]
mod lambda;
#[cfg(feature = "logs")]
mod logs;
mod report;
#[cfg(feature = "s3")]
mod s3;
#[cfg(any(feature = "lambda", feature = "ecs"))]
mod secrets;
#[cfg(test)]
mod testing;

pub use report::{Finding, Report};

use ferroform_core::{Declared, Stack};
use serde::de::DeserializeOwned;
use std::fmt;
use std::str::FromStr;

/// How bad a finding is. `--fail-on` takes one: findings at or above it fail the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Advisory: worth a look, often fine (a public route on a public API).
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown severity `{s}` (one of: {})", Severity::ALL.map(Severity::as_str).join(", ")))
    }
}

/// One place a resource breaks a rule: the input field (`inline_policies.default.Statement[0].Action`) and
/// what is wrong there, in words that name the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub field: String,
    pub message: String,
}

impl Hit {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// A rule over one resource type.
pub struct Rule {
    /// `FF-<SERVICE>-<NNN>`, never reused for another meaning.
    pub id: &'static str,
    pub severity: Severity,
    /// The resource type it looks at (`aws_iam_role`).
    pub resource_type: &'static str,
    /// What it checks, in a line.
    pub title: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it in the stack's code.
    pub fix: &'static str,
    /// The places one declared resource breaks the rule (none: it passes).
    pub check: fn(&Declared, &Context) -> Vec<Hit>,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rule({} {} on {})", self.id, self.severity, self.resource_type)
    }
}

/// Every rule of the enabled services, in id order.
pub fn rules() -> Vec<&'static Rule> {
    let mut all: Vec<&'static Rule> = Vec::new();
    #[cfg(feature = "apigatewayv2")]
    all.extend(apigatewayv2::RULES);
    #[cfg(feature = "cloudwatch")]
    all.extend(cloudwatch::RULES);
    #[cfg(feature = "dynamodb")]
    all.extend(dynamodb::RULES);
    #[cfg(feature = "ec2")]
    all.extend(ec2::RULES);
    #[cfg(feature = "ecr")]
    all.extend(ecr::RULES);
    #[cfg(feature = "ecs")]
    all.extend(ecs::RULES);
    #[cfg(feature = "iam")]
    all.extend(iam::RULES);
    #[cfg(feature = "lambda")]
    all.extend(lambda::RULES);
    #[cfg(feature = "logs")]
    all.extend(logs::RULES);
    #[cfg(feature = "s3")]
    all.extend(s3::RULES);
    all.sort_by_key(|r| r.id);
    all
}

/// What a rule may look at besides its resource: the rest of the stack (a subnet's route tables) and its
/// variables (`permissions_boundary`).
pub struct Context<'a> {
    pub stack: &'a Stack,
}

impl<'a> Context<'a> {
    pub fn new(stack: &'a Stack) -> Self {
        Self { stack }
    }

    /// The declared resource at `address`.
    pub fn resource(&self, address: &str) -> Option<&'a Declared> {
        self.stack.resources().iter().find(|d| d.address == address)
    }

    /// The resource a value refers to when it is exactly one reference (`${ref:network/private-0.id}`).
    pub fn referenced(&self, value: &str) -> Option<&'a Declared> {
        self.resource(reference_address(value)?)
    }

    pub fn var(&self, name: &str) -> Option<String> {
        self.stack.var(name)
    }
}

/// The address inside a value that is exactly one reference token; `None` for a literal or a longer text.
pub fn reference_address(value: &str) -> Option<&str> {
    let inner = value.strip_prefix("\u{E000}${ref:")?.strip_suffix('}')?;
    if inner.contains('\u{E000}') {
        return None;
    }
    Some(inner.rsplit_once('.')?.0)
}

/// True when the value holds a reference (its real value is only known at apply).
pub fn has_reference(value: &str) -> bool {
    value.contains('\u{E000}')
}

/// The declared resource's inputs as its typed struct (`None` when they do not decode: a rule then has
/// nothing to say, and validation reports the inputs).
pub fn typed<R: DeserializeOwned>(d: &Declared) -> Option<R> {
    serde_json::from_value(d.inputs.clone()).ok()
}

/// Runs every rule over every declared resource. Needs no credentials and makes no call.
pub fn check(stack: &Stack) -> Report {
    check_with(stack, &rules())
}

/// Runs the given rules only (tests, or a program that keeps its own list).
pub fn check_with(stack: &Stack, rules: &[&'static Rule]) -> Report {
    let cx = Context::new(stack);
    let mut findings = Vec::new();
    for d in stack.resources() {
        for rule in rules.iter().filter(|r| r.resource_type == d.type_name) {
            let allowed = d.lifecycle.allow.get(rule.id);
            for hit in (rule.check)(d, &cx) {
                findings.push(Finding {
                    rule: rule.id,
                    severity: rule.severity,
                    address: d.address.clone(),
                    resource_type: d.type_name.to_string(),
                    field: hit.field,
                    message: hit.message,
                    why: rule.why,
                    fix: rule.fix,
                    allowed: allowed.cloned(),
                });
            }
        }
    }
    // An exception naming no rule of this build (a typo, a rule that was renamed) is reported: it would
    // otherwise excuse nothing, silently.
    let mut unknown_allows = Vec::new();
    for d in stack.resources() {
        for (rule, reason) in &d.lifecycle.allow {
            let applies = rules.iter().any(|r| r.id == rule && r.resource_type == d.type_name);
            if !applies {
                unknown_allows.push((d.address.clone(), rule.clone(), reason.clone()));
            }
        }
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.rule.cmp(b.rule)).then_with(|| a.address.cmp(&b.address)));
    Report { stack: stack.name().to_string(), resources: stack.resources().len(), rules: rules.to_vec(), findings, unknown_allows }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn rule_ids_are_unique_well_formed_and_explained() {
        let all = rules();
        assert!(all.len() >= 15, "{} rules", all.len());
        let mut ids: Vec<&str> = all.iter().map(|r| r.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "duplicate rule ids");
        for r in all {
            let parts: Vec<&str> = r.id.split('-').collect();
            assert!(parts.len() == 3 && parts[0] == "FF" && parts[2].len() == 3, "{}", r.id);
            assert!(!r.title.is_empty() && !r.why.is_empty() && !r.fix.is_empty(), "{}", r.id);
            assert!(r.resource_type.starts_with("aws_"), "{}", r.id);
        }
    }

    #[test]
    fn severities_parse_and_order() {
        assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
        assert!("severe".parse::<Severity>().unwrap_err().contains("one of: info, low, medium, high, critical"));
        assert!(Severity::Info < Severity::Low && Severity::High < Severity::Critical);
    }

    #[test]
    fn exceptions_are_reported_with_their_reason_and_do_not_fail() {
        use crate::logs::LogGroup;
        use ferroform_core::Options;
        let mut s = Stack::new("t");
        s.add("open", LogGroup::new("/a"));
        s.add_with("excused", LogGroup::new("/b"), Options::new().allow("FF-LOG-001", "kept by the audit team's own export"));
        s.add("later", LogGroup::new("/c"));
        assert!(s.allow("later", "FF-LOG-001", "a component's group, excused afterwards"));
        assert!(!s.allow("nowhere", "FF-LOG-001", "no such resource"));
        s.add_with("typo", LogGroup::new("/d").retention_days(7), Options::new().allow("FF-LOG-01", "misspelt"));
        let report = check(&s);
        assert_eq!(report.blocking(Severity::Low), 1);
        assert_eq!(report.blocking(Severity::High), 0);
        let text = report.to_text(false, Severity::Low);
        assert!(text.contains("MEDIUM   FF-LOG-001  open  retention_days"), "{text}");
        assert!(text.contains("FF-LOG-001 excused  retention_days (medium): kept by the audit team's own export"), "{text}");
        assert!(text.contains("typo: the exception for FF-LOG-01 matches no rule"), "{text}");
        let json = report.to_json(Severity::Low);
        assert_eq!(json["blocking"], 1);
        let allowed: Vec<&str> = json["findings"].as_array().unwrap().iter().filter_map(|f| f["allowed"]["reason"].as_str()).collect();
        assert_eq!(allowed.len(), 2);
        let sarif = report.to_sarif("examples/t.rs");
        let results = sarif["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results.iter().filter(|r| r["suppressions"][0]["kind"] == "inSource").count(), 2);
        assert_eq!(results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "examples/t.rs");
    }

    #[test]
    fn reference_addresses() {
        assert_eq!(reference_address("\u{E000}${ref:network/private-0.id}"), Some("network/private-0"));
        assert_eq!(reference_address("\u{E000}${ref:a.arn}:*"), None);
        assert_eq!(reference_address("subnet-123"), None);
        assert!(has_reference("\u{E000}${ref:a.arn}:*") && !has_reference("*"));
    }
}
