//! What most modules' tests share.

use ferroform_aws::{Aws, CallCounter};
use ferroform_core::{Action, Plan};
use ferroform_testkit::Harness;

/// A fresh account with an AWS context in it, and the counter of that context's calls.
pub async fn harness() -> anyhow::Result<(Harness, CallCounter)> {
    let h = Harness::new().await?;
    let aws = Aws::from_config(h.account.config.clone());
    let calls = aws.calls().clone();
    h.contexts.insert(aws);
    Ok((h, calls))
}

/// The action at `address` and the names of the (top-level) fields it changes, sorted, each once.
pub fn change(plan: &Plan, address: &str) -> (Action, Vec<String>) {
    plan.changes
        .iter()
        .find(|c| c.address == address)
        .map(|c| {
            let mut f: Vec<String> = c.fields.iter().map(|f| f.name.clone()).collect();
            f.sort();
            // Leaf changes (`tags.a`, `tags.b`) share their field.
            f.dedup();
            (c.action, f)
        })
        .unwrap_or((Action::NoOp, vec![]))
}
