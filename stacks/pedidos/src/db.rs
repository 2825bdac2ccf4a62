//! The orders table (hash key `id`, a string): every read and write the API and the worker make.
//!
//! Item layout: `id` S, `customer` S, `items` L of M {`sku` S, `quantity` N, `price` N}, `status` S,
//! `op` S, `revision` S, and optionally `task_arn` S, `failure` S, `total` N, `reasons` L of S.
//! Every write after the first is conditional on `revision`, so a late worker never overwrites a newer
//! update and nothing resurrects a deleted order.

use crate::model::{Item, Money, Op, Order, OrderSnapshot, Status};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use thiserror::Error;

type Attrs = HashMap<String, AttributeValue>;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("DynamoDB {op} on {table}: {message}")]
    Aws { op: &'static str, table: String, message: String },
    #[error("stored order is unreadable: {0}")]
    Corrupt(String),
}

/// The verdict the worker records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted { total: Money },
    Rejected { reasons: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct Table {
    client: Client,
    name: String,
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Table { client, name: name.into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn aws<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
        &self,
        op: &'static str,
        err: SdkError<E, R>,
    ) -> DbError {
        DbError::Aws { op, table: self.name.clone(), message: describe(&err) }
    }

    /// A strongly consistent read.
    pub async fn get(&self, id: &str) -> Result<Option<Order>, DbError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.aws("GetItem", e))?;
        out.item.as_ref().map(order_from_item).transpose()
    }

    /// One page of a Scan: up to `limit` orders and the id to start the next page after, if any.
    pub async fn scan(&self, limit: i32, after: Option<&str>) -> Result<(Vec<Order>, Option<String>), DbError> {
        let out = self
            .client
            .scan()
            .table_name(&self.name)
            .limit(limit)
            .consistent_read(true)
            .set_exclusive_start_key(after.map(|id| HashMap::from([("id".to_string(), s(id))])))
            .send()
            .await
            .map_err(|e| self.aws("Scan", e))?;
        let orders = out.items().iter().map(order_from_item).collect::<Result<Vec<_>, _>>()?;
        let next = match out.last_evaluated_key() {
            None => None,
            Some(key) => Some(
                key.get("id")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .ok_or_else(|| DbError::Corrupt("LastEvaluatedKey has no string `id`".into()))?,
            ),
        };
        Ok((orders, next))
    }

    /// Stores a new order as `PENDING`. Returns false if the id is taken (never, with random UUIDs).
    pub async fn insert_pending(&self, order: &OrderSnapshot) -> Result<bool, DbError> {
        let item = HashMap::from([
            ("id".to_string(), s(&order.id)),
            ("customer".to_string(), s(&order.customer)),
            ("items".to_string(), items_attr(&order.items)),
            ("status".to_string(), s(Status::Pending.as_str())),
            ("op".to_string(), s(Op::Create.as_str())),
            ("revision".to_string(), s(&order.revision)),
        ]);
        let res = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        conditional(res.map(|_| ()), |e| self.aws("PutItem", e))
    }

    /// Replaces an existing order's content and sets it `PENDING` at a new revision, clearing the previous
    /// outcome. Returns false when there is no such order.
    pub async fn replace_pending(&self, order: &OrderSnapshot) -> Result<bool, DbError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("id", s(&order.id))
            .update_expression(
                "SET #customer = :customer, #items = :items, #status = :status, #op = :op, #revision = :revision \
                 REMOVE #task_arn, #failure, #total, #reasons",
            )
            .condition_expression("attribute_exists(#id)")
            .set_expression_attribute_names(Some(names(&[
                "id", "customer", "items", "status", "op", "revision", "task_arn", "failure", "total", "reasons",
            ])))
            .expression_attribute_values(":customer", s(&order.customer))
            .expression_attribute_values(":items", items_attr(&order.items))
            .expression_attribute_values(":status", s(Status::Pending.as_str()))
            .expression_attribute_values(":op", s(Op::Update.as_str()))
            .expression_attribute_values(":revision", s(&order.revision))
            .send()
            .await;
        conditional(res.map(|_| ()), |e| self.aws("UpdateItem", e))
    }

    /// Records the worker task's ARN, if the order is still at `revision`.
    pub async fn set_task_arn(&self, id: &str, revision: &str, task_arn: &str) -> Result<bool, DbError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("id", s(id))
            .update_expression("SET #task_arn = :task_arn")
            .condition_expression("#revision = :revision")
            .set_expression_attribute_names(Some(names(&["task_arn", "revision"])))
            .expression_attribute_values(":task_arn", s(task_arn))
            .expression_attribute_values(":revision", s(revision))
            .send()
            .await;
        conditional(res.map(|_| ()), |e| self.aws("UpdateItem", e))
    }

    /// Marks the order `FAILED` (its task could not be started), if it is still `PENDING` at `revision`.
    pub async fn mark_failed(&self, id: &str, revision: &str, reason: &str) -> Result<bool, DbError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("id", s(id))
            .update_expression("SET #status = :failed, #failure = :failure")
            .condition_expression("#revision = :revision AND #status = :pending")
            .set_expression_attribute_names(Some(names(&["status", "failure", "revision"])))
            .expression_attribute_values(":failed", s(Status::Failed.as_str()))
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":failure", s(reason))
            .expression_attribute_values(":revision", s(revision))
            .send()
            .await;
        conditional(res.map(|_| ()), |e| self.aws("UpdateItem", e))
    }

    /// Writes the worker's verdict, if the order is still at `revision` (false: superseded or deleted).
    /// The same verdict written twice leaves the same item.
    pub async fn record_verdict(&self, id: &str, revision: &str, op: Op, verdict: &Verdict) -> Result<bool, DbError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("id", s(id))
            .condition_expression("#revision = :revision")
            .expression_attribute_values(":revision", s(revision));
        let req = match verdict {
            Verdict::Accepted { total } => req
                .update_expression("SET #status = :status, #total = :total REMOVE #reasons")
                .set_expression_attribute_names(Some(names(&["status", "total", "reasons", "revision"])))
                .expression_attribute_values(":status", s(op.accepted().as_str()))
                .expression_attribute_values(":total", AttributeValue::N(total.to_string())),
            Verdict::Rejected { reasons } => req
                .update_expression("SET #status = :status, #reasons = :reasons REMOVE #total")
                .set_expression_attribute_names(Some(names(&["status", "total", "reasons", "revision"])))
                .expression_attribute_values(":status", s(Status::Rejected.as_str()))
                .expression_attribute_values(":reasons", AttributeValue::L(reasons.iter().map(|r| s(r)).collect())),
        };
        conditional(req.send().await.map(|_| ()), |e| self.aws("UpdateItem", e))
    }

    /// Deletes an order. Returns false when there was none.
    pub async fn delete(&self, id: &str) -> Result<bool, DbError> {
        let res =
            self.client.delete_item().table_name(&self.name).key("id", s(id)).condition_expression("attribute_exists(id)").send().await;
        conditional(res.map(|_| ()), |e| self.aws("DeleteItem", e))
    }
}

/// `Ok(true)` when the write happened, `Ok(false)` when its condition did not hold.
fn conditional<E, R>(res: Result<(), SdkError<E, R>>, other: impl FnOnce(SdkError<E, R>) -> DbError) -> Result<bool, DbError>
where
    E: ProvideErrorMetadata,
{
    match res {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(other(e)),
    }
}

/// `Code: message` of an AWS error, or the whole error chain when it never reached the service.
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        // Never reached the service (or its answer was unreadable): the chain of causes, one line, without
        // the raw response the SDK's debug output would add.
        _ => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn names(fields: &[&str]) -> HashMap<String, String> {
    fields.iter().map(|f| (format!("#{f}"), f.to_string())).collect()
}

fn items_attr(items: &[Item]) -> AttributeValue {
    AttributeValue::L(
        items
            .iter()
            .map(|item| {
                AttributeValue::M(HashMap::from([
                    ("sku".to_string(), s(&item.sku)),
                    ("quantity".to_string(), AttributeValue::N(item.quantity.to_string())),
                    ("price".to_string(), AttributeValue::N(item.price.to_string())),
                ]))
            })
            .collect(),
    )
}

/// Reads an order back from its item.
pub fn order_from_item(item: &Attrs) -> Result<Order, DbError> {
    let id = get_s(item, "id", "?")?;
    let corrupt = |what: String| DbError::Corrupt(format!("order {id}: {what}"));
    let status = get_s(item, "status", &id)?;
    let op = get_s(item, "op", &id)?;
    let items = match item.get("items") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                AttributeValue::M(m) => {
                    let quantity = get_n(m, "quantity", &id)?;
                    Ok(Item {
                        sku: get_s(m, "sku", &id)?,
                        quantity: quantity.parse().map_err(|_| corrupt(format!("items[{i}].quantity `{quantity}`")))?,
                        price: Money::parse(&get_n(m, "price", &id)?).map_err(|e| corrupt(format!("items[{i}].price: {e}")))?,
                    })
                }
                _ => Err(corrupt(format!("items[{i}] is not a map"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(corrupt("no `items` list".into())),
    };
    let total = match item.get("total") {
        None => None,
        Some(AttributeValue::N(n)) => Some(Money::parse(n).map_err(|e| corrupt(format!("total: {e}")))?),
        Some(_) => return Err(corrupt("`total` is not a number".into())),
    };
    let reasons = match item.get("reasons") {
        None => Vec::new(),
        Some(AttributeValue::L(list)) => {
            list.iter().map(|v| v.as_s().cloned().map_err(|_| corrupt("a reason is not a string".into()))).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(corrupt("`reasons` is not a list".into())),
    };
    let opt_s = |field: &str| item.get(field).and_then(|v| v.as_s().ok()).cloned();
    Ok(Order {
        customer: get_s(item, "customer", &id)?,
        items,
        status: Status::parse(&status).ok_or_else(|| corrupt(format!("unknown status `{status}`")))?,
        op: Op::parse(&op).ok_or_else(|| corrupt(format!("unknown op `{op}`")))?,
        total,
        reasons,
        task_arn: opt_s("task_arn"),
        failure: opt_s("failure"),
        revision: get_s(item, "revision", &id)?,
        id,
    })
}

fn get_s(item: &Attrs, field: &str, id: &str) -> Result<String, DbError> {
    match item.get(field) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(DbError::Corrupt(format!("order {id}: no string `{field}`"))),
    }
}

fn get_n(item: &Attrs, field: &str, id: &str) -> Result<String, DbError> {
    match item.get(field) {
        Some(AttributeValue::N(v)) => Ok(v.clone()),
        _ => Err(DbError::Corrupt(format!("order {id}: no number `{field}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_round_trips_through_its_item() {
        let items = vec![
            Item { sku: "A".into(), quantity: 2, price: Money::from_cents(1999) },
            Item { sku: "B".into(), quantity: 1, price: Money::from_cents(-5) },
        ];
        let mut item = HashMap::from([
            ("id".to_string(), s("o1")),
            ("customer".to_string(), s("ana")),
            ("items".to_string(), items_attr(&items)),
            ("status".to_string(), s("REJECTED")),
            ("op".to_string(), s("update")),
            ("revision".to_string(), s("r1")),
            ("reasons".to_string(), AttributeValue::L(vec![s("no")])),
        ]);
        let order = order_from_item(&item).unwrap();
        assert_eq!(order.items, items);
        assert_eq!(order.status, Status::Rejected);
        assert_eq!(order.op, Op::Update);
        assert_eq!(order.reasons, vec!["no".to_string()]);
        assert_eq!(order.total, None);
        item.insert("status".into(), s("WEIRD"));
        assert!(matches!(order_from_item(&item), Err(DbError::Corrupt(m)) if m.contains("WEIRD")));
        item.remove("items");
        assert!(order_from_item(&item).is_err());
    }
}
