//! What `check` found, and its three renderings: text for people, JSON for scripts, SARIF 2.1.0 for
//! GitHub code scanning.

use super::{Rule, Severity};
use serde_json::{json, Value};

/// One rule broken at one field of one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub address: String,
    pub resource_type: String,
    pub field: String,
    pub message: String,
    pub why: &'static str,
    pub fix: &'static str,
    /// The reason of the stack's exception for this rule on this resource: shown, never failing.
    pub allowed: Option<String>,
}

/// The findings over one stack.
#[derive(Debug, Clone)]
pub struct Report {
    pub stack: String,
    pub resources: usize,
    pub rules: Vec<&'static Rule>,
    /// Most severe first.
    pub findings: Vec<Finding>,
    /// Exceptions naming a rule this build does not have for that resource's type: (address, rule, reason).
    pub unknown_allows: Vec<(String, String, String)>,
}

impl Report {
    /// Findings at or above `fail_on` that no exception covers: the check fails when there is one.
    pub fn blocking(&self, fail_on: Severity) -> usize {
        self.open().filter(|f| f.severity >= fail_on).count()
    }

    /// Findings no exception covers.
    pub fn open(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.allowed.is_none())
    }

    /// The findings of one rule (tests).
    pub fn of(&self, rule: &str) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.rule == rule).collect()
    }

    /// For people: each open finding with its field, why and fix; then the exceptions with their reasons.
    pub fn to_text(&self, color: bool, fail_on: Severity) -> String {
        let paint = |code: &str, text: &str| if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() };
        let mut out = format!(
            "ferroform check: stack `{}`, {} resources, {} rules (failing at {} and above)\n",
            self.stack,
            self.resources,
            self.rules.len(),
            fail_on
        );
        for f in self.open() {
            let sev = format!("{:<8}", f.severity.as_str().to_uppercase());
            let code = match f.severity {
                Severity::Critical | Severity::High => "31",
                Severity::Medium | Severity::Low => "33",
                Severity::Info => "36",
            };
            out.push_str(&format!("\n{} {}  {}  {}\n", paint(code, &sev), f.rule, f.address, f.field));
            out.push_str(&format!("         {}\n", f.message));
            out.push_str(&format!("         why: {}\n", f.why));
            out.push_str(&format!("         fix: {}\n", f.fix));
        }
        let allowed: Vec<&Finding> = self.findings.iter().filter(|f| f.allowed.is_some()).collect();
        if !allowed.is_empty() {
            out.push_str("\nExceptions declared in the stack:\n");
            for f in &allowed {
                out.push_str(&format!(
                    "  {} {} {}  {} ({}): {}\n",
                    paint("2", "allowed"),
                    f.rule,
                    f.address,
                    f.field,
                    f.severity,
                    f.allowed.as_deref().unwrap_or_default()
                ));
            }
        }
        for (address, rule, reason) in &self.unknown_allows {
            out.push_str(&format!("\nwarning: {address}: the exception for {rule} matches no rule for this resource type ({reason})\n"));
        }
        let blocking = self.blocking(fail_on);
        let below = self.open().count() - blocking;
        let summary =
            format!("\n{} finding(s) at {fail_on} or above, {below} below, {} allowed by an exception.\n", blocking, allowed.len());
        out.push_str(&if blocking > 0 { paint("31", &summary) } else { summary });
        out
    }

    /// For scripts: every finding (open and allowed) with its rule's why and fix.
    pub fn to_json(&self, fail_on: Severity) -> Value {
        json!({
            "format_version": 1,
            "stack": self.stack,
            "resources": self.resources,
            "rules": self.rules.len(),
            "fail_on": fail_on,
            "blocking": self.blocking(fail_on),
            "findings": self.findings.iter().map(|f| json!({
                "rule": f.rule,
                "severity": f.severity,
                "address": f.address,
                "type": f.resource_type,
                "field": f.field,
                "message": f.message,
                "why": f.why,
                "fix": f.fix,
                "allowed": f.allowed.as_ref().map(|reason| json!({ "reason": reason })),
            })).collect::<Vec<_>>(),
            "unknown_allows": self.unknown_allows.iter().map(|(a, r, why)| json!({ "address": a, "rule": r, "reason": why })).collect::<Vec<_>>(),
        })
    }

    /// [`Report::to_json`], pretty-printed.
    pub fn to_json_text(&self, fail_on: Severity) -> String {
        pretty(&self.to_json(fail_on))
    }

    /// [`Report::to_sarif`], pretty-printed.
    pub fn to_sarif_text(&self, source: &str) -> String {
        pretty(&self.to_sarif(source))
    }

    /// SARIF 2.1.0 for GitHub code scanning. Code scanning wants a file for every result: `source` is the
    /// file that declares the stack (relative to the repository root); the resource address travels as the
    /// result's logical location. Exceptions become `inSource` suppressions with their reason.
    pub fn to_sarif(&self, source: &str) -> Value {
        let level = |s: Severity| match s {
            Severity::Critical | Severity::High => "error",
            Severity::Medium | Severity::Low => "warning",
            Severity::Info => "note",
        };
        // GitHub ranks security alerts by this number (0-10).
        let score = |s: Severity| match s {
            Severity::Critical => "9.5",
            Severity::High => "8.0",
            Severity::Medium => "5.5",
            Severity::Low => "3.0",
            Severity::Info => "0.5",
        };
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "name": r.id.replace('-', ""),
                    "shortDescription": { "text": r.title },
                    "fullDescription": { "text": r.why },
                    "help": { "text": format!("{} Fix: {}", r.why, r.fix), "markdown": format!("{}\n\n**Fix:** {}", r.why, r.fix) },
                    "defaultConfiguration": { "level": level(r.severity) },
                    "properties": { "tags": ["security", "ferroform", r.resource_type], "security-severity": score(r.severity), "severity": r.severity },
                })
            })
            .collect();
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let mut result = json!({
                    "ruleId": f.rule,
                    "ruleIndex": self.rules.iter().position(|r| r.id == f.rule).unwrap_or(0),
                    "level": level(f.severity),
                    "message": { "text": format!("{}: {}: {} Fix: {}", f.address, f.field, f.message, f.fix) },
                    "locations": [{
                        "physicalLocation": { "artifactLocation": { "uri": source }, "region": { "startLine": 1 } },
                        "logicalLocations": [{ "fullyQualifiedName": format!("{}.{}", f.address, f.field), "kind": "resource" }],
                    }],
                    // Stable across runs, so code scanning tracks one alert per resource field and rule.
                    "partialFingerprints": { "ferroform/v1": format!("{}|{}|{}", f.rule, f.address, f.field) },
                });
                if let (Some(reason), Some(obj)) = (&f.allowed, result.as_object_mut()) {
                    obj.insert("suppressions".into(), json!([{ "kind": "inSource", "justification": reason }]));
                }
                result
            })
            .collect();
        json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": { "driver": {
                    "name": "ferroform check",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                } },
                "results": results,
            }],
        })
    }
}

/// A JSON value as indented text (a `Value` always serializes).
fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}
