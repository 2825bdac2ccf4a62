//! The worker against the emulator's DynamoDB: verdicts, exact totals, repeated runs, superseded orders,
//! and the binary itself run as the container would run it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{create_table, n_attr, raw_item, s_attr, TABLE};
use ferroform_testkit::Account;
use pedidos::db::Table;
use pedidos::model::{Item, Money, Op, OrderSnapshot, Status};
use pedidos::worker::{run, Job, Outcome, WorkerError};

struct Env {
    acct: Account,
    ddb: aws_sdk_dynamodb::Client,
    table: Table,
}

async fn env() -> Env {
    let acct = ferroform_testkit::account().await.unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&acct.config);
    create_table(&ddb).await.unwrap();
    let table = Table::new(ddb.clone(), TABLE);
    Env { acct, ddb, table }
}

fn item(sku: &str, quantity: i64, price: &str) -> Item {
    Item { sku: sku.into(), quantity, price: Money::parse(price).unwrap() }
}

/// Stores the order as the API does (PENDING at a fresh revision) and returns the worker's job for it.
async fn pending(e: &Env, customer: &str, items: Vec<Item>) -> (OrderSnapshot, Job) {
    let snapshot = OrderSnapshot {
        id: uuid::Uuid::new_v4().to_string(),
        revision: uuid::Uuid::new_v4().to_string(),
        customer: customer.into(),
        items,
    };
    assert!(e.table.insert_pending(&snapshot).await.unwrap());
    let job = Job { order_id: snapshot.id.clone(), order_json: snapshot.to_json().unwrap(), op: Op::Create };
    (snapshot, job)
}

#[tokio::test]
async fn accepts_a_valid_order_with_an_exact_total() {
    let e = env().await;
    // 0.1 × 3 + 0.2 + 19.99 × 7: 0.50 + 139.93 = 140.43 exactly (f64 would drift on 0.1 × 3).
    let (order, job) = pending(&e, "ana", vec![item("a", 3, "0.1"), item("b", 1, "0.2"), item("c", 7, "19.99")]).await;
    assert_eq!(run(&e.table, &job).await.unwrap(), Outcome::Recorded(Status::Created));

    let stored = raw_item(&e.ddb, &order.id).await.unwrap().unwrap();
    assert_eq!(s_attr(&stored, "status"), Some("CREATED"));
    assert_eq!(n_attr(&stored, "total").map(|n| Money::parse(n).unwrap()), Some(Money::from_cents(14043)));
    assert!(!stored.contains_key("reasons"));
    // Prices are stored as exact DynamoDB numbers.
    let items = stored["items"].as_l().unwrap();
    assert_eq!(items[2].as_m().unwrap()["price"].as_n().unwrap(), "19.99");

    let read = e.table.get(&order.id).await.unwrap().unwrap();
    assert_eq!(read.total, Some(Money::from_cents(14043)));
    assert_eq!(read.items, order.items);
}

#[tokio::test]
async fn rejects_an_invalid_order_with_its_reasons() {
    let e = env().await;
    let (order, job) = pending(&e, "", vec![item("a", 0, "1"), item("b", 2, "-3.5"), item("c", -1, "1")]).await;
    assert_eq!(run(&e.table, &job).await.unwrap(), Outcome::Recorded(Status::Rejected));

    let stored = raw_item(&e.ddb, &order.id).await.unwrap().unwrap();
    assert_eq!(s_attr(&stored, "status"), Some("REJECTED"));
    assert!(!stored.contains_key("total"));
    let reasons: Vec<&str> = stored["reasons"].as_l().unwrap().iter().map(|r| r.as_s().unwrap().as_str()).collect();
    assert_eq!(
        reasons,
        [
            "customer is empty",
            "items[0].quantity must be greater than 0 (got 0)",
            "items[1].price must not be negative (got -3.5)",
            "items[2].quantity must be greater than 0 (got -1)",
        ]
    );

    let (order, job) = pending(&e, "ana", vec![]).await;
    assert_eq!(run(&e.table, &job).await.unwrap(), Outcome::Recorded(Status::Rejected));
    let read = e.table.get(&order.id).await.unwrap().unwrap();
    assert_eq!(read.reasons, ["the order has no items"]);
}

#[tokio::test]
async fn running_twice_gives_the_same_item() {
    let e = env().await;
    for items in [vec![item("a", 2, "5.05")], vec![item("a", -2, "5.05")]] {
        let (order, job) = pending(&e, "ana", items).await;
        let first = run(&e.table, &job).await.unwrap();
        let after_first = raw_item(&e.ddb, &order.id).await.unwrap().unwrap();
        let second = run(&e.table, &job).await.unwrap();
        let after_second = raw_item(&e.ddb, &order.id).await.unwrap().unwrap();
        assert_eq!(first, second);
        assert_eq!(after_first, after_second);
        assert_ne!(s_attr(&after_second, "status"), Some("PENDING"));
    }
}

#[tokio::test]
async fn an_update_is_recorded_as_updated_and_a_stale_run_writes_nothing() {
    let e = env().await;
    let (old, old_job) = pending(&e, "ana", vec![item("a", 1, "1")]).await;
    assert_eq!(run(&e.table, &old_job).await.unwrap(), Outcome::Recorded(Status::Created));

    // A PUT: new content, new revision.
    let new = OrderSnapshot { revision: uuid::Uuid::new_v4().to_string(), items: vec![item("a", 4, "2.5")], ..old.clone() };
    assert!(e.table.replace_pending(&new).await.unwrap());
    let new_job = Job { order_id: new.id.clone(), order_json: new.to_json().unwrap(), op: Op::Update };
    assert_eq!(run(&e.table, &new_job).await.unwrap(), Outcome::Recorded(Status::Updated));
    let after = raw_item(&e.ddb, &new.id).await.unwrap().unwrap();
    assert_eq!(s_attr(&after, "status"), Some("UPDATED"));
    assert_eq!(n_attr(&after, "total"), Some("10"));

    // The first task, run again late (ECS retried it, say): it must not overwrite the update.
    assert_eq!(run(&e.table, &old_job).await.unwrap(), Outcome::Superseded);
    assert_eq!(raw_item(&e.ddb, &new.id).await.unwrap().unwrap(), after);

    // A deleted order is not brought back.
    assert!(e.table.delete(&new.id).await.unwrap());
    assert_eq!(run(&e.table, &new_job).await.unwrap(), Outcome::Superseded);
    assert!(raw_item(&e.ddb, &new.id).await.unwrap().is_none());
}

#[tokio::test]
async fn bad_input_is_an_error_and_writes_nothing() {
    let e = env().await;
    let (order, job) = pending(&e, "ana", vec![item("a", 1, "1")]).await;
    let before = raw_item(&e.ddb, &order.id).await.unwrap().unwrap();

    let bad = Job { order_json: "{not json".into(), ..job.clone() };
    assert!(matches!(run(&e.table, &bad).await, Err(WorkerError::BadSnapshot(_))));
    let other = Job { order_id: uuid::Uuid::new_v4().to_string(), ..job.clone() };
    assert!(matches!(run(&e.table, &other).await, Err(WorkerError::IdMismatch { .. })));
    assert_eq!(raw_item(&e.ddb, &order.id).await.unwrap().unwrap(), before);

    // A table that is not there is a storage error, not a verdict.
    let missing = Table::new(e.ddb.clone(), "no-such-table");
    assert!(matches!(run(&missing, &job).await, Err(WorkerError::Db(_))));
}

/// The container's entrypoint: env in, exit code out.
#[tokio::test]
async fn the_binary_processes_an_order_from_its_environment() {
    let e = env().await;
    let (order, job) = pending(&e, "ana", vec![item("a", 3, "0.1")]).await;
    let worker = |vars: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pedidos-worker"));
        cmd.env_clear().envs(e.acct.env()).env("AWS_EC2_METADATA_DISABLED", "true").env("RUST_LOG", "info");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = worker(&[("TABLE_NAME", TABLE), ("ORDER_ID", &job.order_id), ("ORDER_JSON", &job.order_json), ("ORDER_OP", "create")]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let stored = raw_item(&e.ddb, &order.id).await.unwrap().unwrap();
    assert_eq!(s_attr(&stored, "status"), Some("CREATED"));
    assert_eq!(n_attr(&stored, "total"), Some("0.3"));

    // Missing or bad env: exit code 2, nothing written.
    let out = worker(&[("TABLE_NAME", TABLE), ("ORDER_ID", &job.order_id), ("ORDER_JSON", &job.order_json)]);
    assert_eq!(out.status.code(), Some(2));
    let out = worker(&[("TABLE_NAME", TABLE), ("ORDER_ID", &job.order_id), ("ORDER_JSON", "[]"), ("ORDER_OP", "create")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(raw_item(&e.ddb, &order.id).await.unwrap().unwrap(), stored);
}
