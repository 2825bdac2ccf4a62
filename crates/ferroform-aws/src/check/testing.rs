//! Helpers for the rules' tests: run one rule over a stack and list where it fired.

use super::{check_with, rules};
use ferroform_core::Stack;

/// (address, field) of each open finding of `rule` over `stack`, running that rule alone.
pub(super) fn fired(stack: &Stack, rule: &str) -> Vec<(String, String)> {
    let only: Vec<_> = rules().into_iter().filter(|r| r.id == rule).collect();
    assert_eq!(only.len(), 1, "no rule {rule}");
    check_with(stack, &only).open().map(|f| (f.address.clone(), f.field.clone())).collect()
}

/// A stack named `t`.
pub(super) fn stack() -> Stack {
    Stack::new("t")
}

/// A resource from its inputs as JSON: tests stay independent of builder signatures.
pub(super) fn from_json<R: serde::de::DeserializeOwned>(v: serde_json::Value) -> R {
    match serde_json::from_value(v) {
        Ok(r) => r,
        Err(e) => panic!("test resource: {e}"),
    }
}
