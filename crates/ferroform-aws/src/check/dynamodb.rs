//! DynamoDB: recovery and deletion protection of tables.

use super::{typed, Hit, Rule, Severity};
use crate::dynamodb::Table;
use ferroform_core::Resource;

pub(super) static RULES: &[Rule] = &[
    Rule {
        id: "FF-DDB-001",
        severity: Severity::Medium,
        resource_type: Table::TYPE,
        title: "A table has no point-in-time recovery",
        why: "Without it, items deleted or overwritten by a bug or a person cannot be restored (PITR restores any \
              second of the last 35 days).",
        fix: "`Table::point_in_time_recovery(true)`.",
        check: |d, _| {
            typed::<Table>(d)
                .filter(|t| t.point_in_time_recovery != Some(true))
                .map(|_| Hit::new("point_in_time_recovery", "not enabled"))
                .into_iter()
                .collect()
        },
    },
    Rule {
        id: "FF-DDB-002",
        severity: Severity::Low,
        resource_type: Table::TYPE,
        title: "A table has no deletion protection",
        why: "`prevent_destroy` guards against ferroform only; deletion protection makes AWS itself refuse \
              DeleteTable from any tool or console click.",
        fix: "`Table::deletion_protection(true)` (turn it off before a deliberate destroy).",
        check: |d, _| {
            typed::<Table>(d)
                .filter(|t| t.deletion_protection != Some(true))
                .map(|_| Hit::new("deletion_protection", "not enabled"))
                .into_iter()
                .collect()
        },
    },
];

#[cfg(test)]
mod tests {
    use super::super::testing::{fired, stack};
    use crate::dynamodb::{AttrType, Table};

    fn table(name: &str) -> Table {
        Table::on_demand(name).hash_key("id", AttrType::S)
    }

    #[test]
    fn ff_ddb_001_point_in_time_recovery() {
        let mut s = stack();
        s.add("bad", table("a"));
        s.add("ok", table("b").point_in_time_recovery(true));
        assert_eq!(fired(&s, "FF-DDB-001"), [("bad".into(), "point_in_time_recovery".into())]);
    }

    #[test]
    fn ff_ddb_002_deletion_protection() {
        let mut s = stack();
        s.add("bad", table("a").deletion_protection(false));
        s.add("ok", table("b").deletion_protection(true));
        assert_eq!(fired(&s, "FF-DDB-002"), [("bad".into(), "deletion_protection".into())]);
    }
}
