//! The Fargate worker: checks one order, computes its total in integer cents and records the verdict
//! (`CREATED`/`UPDATED` or `REJECTED` with the reasons).
//!
//! Idempotent: the verdict is a pure function of the snapshot the API passed (`ORDER_JSON`), and it is
//! written only while the order is still at that snapshot's revision. A second run writes the same
//! values again; a run for an order that was updated or deleted since writes nothing (`Superseded`).

use crate::db::{DbError, Table, Verdict};
use crate::model::{Item, Money, Op, OrderSnapshot, ShapeError, Status};
use thiserror::Error;

/// What the container is started with (env `ORDER_ID`, `ORDER_JSON`, `ORDER_OP`).
#[derive(Debug, Clone)]
pub struct Job {
    pub order_id: String,
    pub order_json: String,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The verdict was written: the order now has this status.
    Recorded(Status),
    /// The order changed (a newer PUT) or was deleted since this task was started: nothing written.
    Superseded,
}

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("ORDER_JSON is not an order snapshot: {0}")]
    BadSnapshot(#[from] ShapeError),
    #[error("ORDER_ID {env} does not match the snapshot's id {snapshot}")]
    IdMismatch { env: String, snapshot: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Checks the business rules and computes the total. Pure: the same order always gets the same verdict.
pub fn evaluate(customer: &str, items: &[Item]) -> Verdict {
    let mut reasons = Vec::new();
    if customer.trim().is_empty() {
        reasons.push("customer is empty".to_string());
    }
    if items.is_empty() {
        reasons.push("the order has no items".to_string());
    }
    let mut total = Some(Money::ZERO);
    for (i, item) in items.iter().enumerate() {
        if item.sku.trim().is_empty() {
            reasons.push(format!("items[{i}].sku is empty"));
        }
        if item.quantity <= 0 {
            reasons.push(format!("items[{i}].quantity must be greater than 0 (got {})", item.quantity));
        }
        if item.price.is_negative() {
            reasons.push(format!("items[{i}].price must not be negative (got {})", item.price));
        }
        let line = item.price.times(item.quantity);
        if line.is_none() {
            reasons.push(format!("items[{i}]: quantity × price is too large"));
        }
        total = total.zip(line).and_then(|(t, l)| t.checked_add(l));
    }
    match total {
        Some(total) if reasons.is_empty() => Verdict::Accepted { total },
        None if reasons.is_empty() => Verdict::Rejected { reasons: vec!["the order total is too large".to_string()] },
        _ => Verdict::Rejected { reasons },
    }
}

/// Processes one order against the table.
pub async fn run(table: &Table, job: &Job) -> Result<Outcome, WorkerError> {
    let order = OrderSnapshot::parse(&job.order_json)?;
    if order.id != job.order_id {
        return Err(WorkerError::IdMismatch { env: job.order_id.clone(), snapshot: order.id });
    }
    let verdict = evaluate(&order.customer, &order.items);
    let status = match verdict {
        Verdict::Accepted { .. } => job.op.accepted(),
        Verdict::Rejected { .. } => Status::Rejected,
    };
    if table.record_verdict(&order.id, &order.revision, job.op, &verdict).await? {
        Ok(Outcome::Recorded(status))
    } else {
        Ok(Outcome::Superseded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str, quantity: i64, cents: i64) -> Item {
        Item { sku: sku.into(), quantity, price: Money::from_cents(cents) }
    }

    #[test]
    fn accepts_and_totals_in_cents() {
        let items = [item("a", 3, 10), item("b", 1, 20), item("c", 2, 1999), item("free", 1, 0)];
        assert_eq!(evaluate("ana", &items), Verdict::Accepted { total: Money::from_cents(30 + 20 + 3998) });
    }

    #[test]
    fn ten_times_ten_cents_is_one_unit_exactly() {
        let items: Vec<Item> = (0..10).map(|i| item(&format!("s{i}"), 1, 10)).collect();
        assert_eq!(evaluate("ana", &items), Verdict::Accepted { total: Money::from_cents(100) });
    }

    #[test]
    fn rejects_with_every_reason() {
        let v = evaluate(" ", &[item("a", 0, 100), item("", -2, -1)]);
        let Verdict::Rejected { reasons } = v else { panic!("{v:?}") };
        assert_eq!(
            reasons,
            vec![
                "customer is empty",
                "items[0].quantity must be greater than 0 (got 0)",
                "items[1].sku is empty",
                "items[1].quantity must be greater than 0 (got -2)",
                "items[1].price must not be negative (got -0.01)",
            ]
        );
        assert_eq!(evaluate("ana", &[]), Verdict::Rejected { reasons: vec!["the order has no items".into()] });
    }

    #[test]
    fn overflow_is_a_rejection_not_a_panic() {
        let v = evaluate("ana", &[item("a", i64::MAX, 100)]);
        assert_eq!(v, Verdict::Rejected { reasons: vec!["items[0]: quantity × price is too large".into()] });
        let half = i64::MAX / 2 + 1;
        let v = evaluate("ana", &[item("a", half, 1), item("b", half, 1)]);
        assert_eq!(v, Verdict::Rejected { reasons: vec!["the order total is too large".into()] });
    }
}
