//! CloudWatch Logs: retention of log groups.

use super::{typed, Hit, Rule, Severity};
use crate::logs::LogGroup;
use ferroform_core::Resource;

pub(super) static RULES: &[Rule] = &[Rule {
    id: "FF-LOG-001",
    severity: Severity::Medium,
    resource_type: LogGroup::TYPE,
    title: "A log group keeps its logs forever",
    why: "Without retention, logs (and whatever personal data or tokens slipped into them) are kept and billed \
          forever.",
    fix: "`LogGroup::retention_days(n)` with a value CloudWatch accepts (1, 3, 5, 7, 14, 30, 60, 90, ...).",
    check: |d, _| {
        typed::<LogGroup>(d)
            .filter(|g| g.retention_days.is_none())
            .map(|_| Hit::new("retention_days", "unset: never expire"))
            .into_iter()
            .collect()
    },
}];

#[cfg(test)]
mod tests {
    use super::super::testing::{fired, stack};
    use crate::logs::LogGroup;

    #[test]
    fn ff_log_001_retention() {
        let mut s = stack();
        s.add("bad", LogGroup::new("/a"));
        s.add("ok", LogGroup::new("/b").retention_days(14));
        assert_eq!(fired(&s, "FF-LOG-001"), [("bad".into(), "retention_days".into())]);
    }
}
