//! The API handlers against the emulator's DynamoDB and ECS, checked with independent SDK reads
//! (GetItem, Scan, DescribeTasks). The Lambda runtime itself needs Docker: the handler is called directly
//! with real API Gateway events.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use aws_sdk_ecs::types::Task;
use base64::Engine as _;
use common::{fixture, item_count, raw_item, s_attr, Fixture, Reply, CONTAINER};
use pedidos::db::Table;
use pedidos::model::{Op, OrderSnapshot, Status};
use pedidos::worker::{self, Job, Outcome};
use std::collections::{BTreeSet, HashMap};

const ORDER: &str = r#"{"customer":"ana","items":[{"sku":"CAFE-1","quantity":3,"price":0.1},{"sku":"TAZA-2","quantity":1,"price":19.99}]}"#;

fn error_of(r: &Reply) -> &str {
    r.json["error"].as_str().unwrap_or_else(|| panic!("no JSON error in {} {}", r.status, r.text))
}

async fn describe_task(f: &Fixture, arn: &str) -> Task {
    let out = f.ecs.describe_tasks().cluster(&f.config.cluster).tasks(arn).send().await.unwrap();
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    out.tasks().first().cloned().unwrap_or_else(|| panic!("task {arn} not found"))
}

/// The env the task's worker container was started with, from DescribeTasks.
fn container_env(task: &Task) -> HashMap<String, String> {
    let overrides = task.overrides().expect("overrides");
    let c = overrides.container_overrides().iter().find(|c| c.name() == Some(CONTAINER)).expect("an override for the worker container");
    c.environment().iter().map(|kv| (kv.name().unwrap_or_default().to_string(), kv.value().unwrap_or_default().to_string())).collect()
}

#[tokio::test]
async fn post_stores_a_pending_order_and_starts_a_fargate_task_with_it() {
    let f = fixture().await.unwrap();
    let r = f.call("POST", "/pedidos", &[], Some(ORDER)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    assert_eq!(r.json["status"], "PENDING");
    let task_arn = r.json["task_arn"].as_str().unwrap().to_string();
    assert!(task_arn.starts_with("arn:aws:ecs:"), "{task_arn}");
    assert_eq!(r.res.headers.get("location").unwrap(), &format!("/pedidos/{id}"));

    // Stored, independently read.
    let item = raw_item(&f.ddb, &id).await.unwrap().expect("the order is stored");
    assert_eq!(s_attr(&item, "status"), Some("PENDING"));
    assert_eq!(s_attr(&item, "customer"), Some("ana"));
    assert_eq!(s_attr(&item, "task_arn"), Some(task_arn.as_str()));

    // The task: Fargate, in our subnet, with the order in the worker container's environment.
    let task = describe_task(&f, &task_arn).await;
    assert_eq!(task.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    assert_eq!(task.task_definition_arn(), Some(f.config.task_definition.as_str()));
    let env = container_env(&task);
    assert_eq!(env["ORDER_ID"], id);
    assert_eq!(env["ORDER_OP"], "create");
    let snapshot = OrderSnapshot::parse(&env["ORDER_JSON"]).unwrap();
    assert_eq!(snapshot.id, id);
    assert_eq!(snapshot.customer, "ana");
    assert_eq!(snapshot.items.len(), 2);
    assert_eq!(snapshot.items[1].price.cents(), 1999);
    assert_eq!(Some(snapshot.revision.as_str()), s_attr(&item, "revision"));

    // GET shows it pending; then the worker runs with exactly what ECS was given.
    let r = f.call("GET", &format!("/pedidos/{id}"), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "PENDING");
    assert_eq!(r.json["task_arn"], task_arn.as_str());
    let job = Job { order_id: env["ORDER_ID"].clone(), order_json: env["ORDER_JSON"].clone(), op: Op::parse(&env["ORDER_OP"]).unwrap() };
    let table = Table::new(f.ddb.clone(), &f.config.table_name);
    assert_eq!(worker::run(&table, &job).await.unwrap(), Outcome::Recorded(Status::Created));

    let r = f.call("GET", &format!("/pedidos/{id}"), &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["status"], "CREATED");
    // 3 × 0.10 + 19.99, exactly, as a JSON number.
    assert!(r.text.contains(r#""total":20.29"#), "{}", r.text);
    assert!(r.text.contains(r#""price":0.1"#), "{}", r.text);
}

#[tokio::test]
async fn put_replaces_an_existing_order_and_starts_an_update_task() {
    let f = fixture().await.unwrap();
    let id = f.call("POST", "/pedidos", &[], Some(ORDER)).await.json["id"].as_str().unwrap().to_string();
    let path = format!("/pedidos/{id}");

    let update = r#"{"customer":"ana maria","items":[{"sku":"CAFE-1","quantity":10,"price":0.1}]}"#;
    let r = f.call("PUT", &path, &[], Some(update)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["id"], id.as_str());
    assert_eq!(r.json["status"], "PENDING");
    let task_arn = r.json["task_arn"].as_str().unwrap().to_string();

    let env = container_env(&describe_task(&f, &task_arn).await);
    assert_eq!(env["ORDER_ID"], id);
    assert_eq!(env["ORDER_OP"], "update");
    assert_eq!(OrderSnapshot::parse(&env["ORDER_JSON"]).unwrap().customer, "ana maria");

    let item = raw_item(&f.ddb, &id).await.unwrap().unwrap();
    assert_eq!(s_attr(&item, "customer"), Some("ana maria"));
    assert_eq!(s_attr(&item, "op"), Some("update"));
    assert_eq!(s_attr(&item, "task_arn"), Some(task_arn.as_str()));

    let table = Table::new(f.ddb.clone(), &f.config.table_name);
    let job = Job { order_id: id.clone(), order_json: env["ORDER_JSON"].clone(), op: Op::Update };
    assert_eq!(worker::run(&table, &job).await.unwrap(), Outcome::Recorded(Status::Updated));
    let r = f.call("GET", &path, &[], None).await;
    assert_eq!(r.json["status"], "UPDATED");
    assert!(r.text.contains(r#""total":1"#), "{}", r.text);

    // Unknown and malformed ids, bad bodies: nothing is written, no task started.
    let unknown = format!("/pedidos/{}", uuid::Uuid::new_v4());
    let r = f.call("PUT", &unknown, &[], Some(update)).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(error_of(&r).contains("not found"));
    assert_eq!(f.call("PUT", "/pedidos/nope", &[], Some(update)).await.status, 404);
    let r = f.call("PUT", &path, &[], Some(r#"{"customer":"x"}"#)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(error_of(&r).contains("missing field `items`"), "{}", r.text);
    assert_eq!(item_count(&f.ddb).await.unwrap(), 1);
    let tasks = f.ecs.list_tasks().cluster(&f.config.cluster).send().await.unwrap();
    assert_eq!(tasks.task_arns().len(), 2, "one task for the POST, one for the PUT");
}

#[tokio::test]
async fn get_and_delete_by_id() {
    let f = fixture().await.unwrap();
    let id = f.call("POST", "/pedidos", &[], Some(ORDER)).await.json["id"].as_str().unwrap().to_string();
    let path = format!("/pedidos/{id}");

    let r = f.call("GET", &path, &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["id"], id.as_str());
    assert_eq!(r.json["customer"], "ana");
    assert_eq!(r.json["items"][0]["sku"], "CAFE-1");
    assert_eq!(r.json["items"][0]["quantity"], 3);
    assert_eq!(r.res.headers.get("content-type").unwrap(), "application/json");
    // Upper-case ids are the same UUID.
    assert_eq!(f.call("GET", &path.to_uppercase().replace("/PEDIDOS", "/pedidos"), &[], None).await.status, 200);

    let unknown = format!("/pedidos/{}", uuid::Uuid::new_v4());
    for path in [unknown.as_str(), "/pedidos/not-a-uuid", "/pedidos/%00"] {
        let r = f.call("GET", path, &[], None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert!(error_of(&r).contains("not found"));
        assert_eq!(f.call("DELETE", path, &[], None).await.status, 404, "{path}");
    }

    let r = f.call("DELETE", &path, &[], None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    assert!(raw_item(&f.ddb, &id).await.unwrap().is_none(), "deleted");
    assert_eq!(f.call("GET", &path, &[], None).await.status, 404);
    assert_eq!(f.call("DELETE", &path, &[], None).await.status, 404, "a second delete");
}

#[tokio::test]
async fn list_paginates_with_an_opaque_token() {
    let f = fixture().await.unwrap();
    let r = f.call("GET", "/pedidos", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json, serde_json::json!({"items": [], "next": null}));

    let mut made = BTreeSet::new();
    for i in 0..7 {
        let body = format!(r#"{{"customer":"c{i}","items":[{{"sku":"s","quantity":1,"price":{i}}}]}}"#);
        let r = f.call("POST", "/pedidos", &[], Some(&body)).await;
        assert_eq!(r.status, 202, "{}", r.text);
        made.insert(r.json["id"].as_str().unwrap().to_string());
    }

    // Default limit (20): everything in one page.
    let r = f.call("GET", "/pedidos", &[], None).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 7);
    assert_eq!(r.json["next"], serde_json::Value::Null);

    // Pages of 3, following `next` until it is null.
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", "3")];
        if let Some(token) = next.as_deref() {
            query.push(("next", token));
        }
        let r = f.call("GET", "/pedidos", &query, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let items = r.json["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|o| o["id"].as_str().unwrap().to_string()));
        pages += 1;
        assert!(pages <= 4, "pagination does not end");
        match r.json["next"].as_str() {
            Some(token) => next = Some(token.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "no duplicates: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), made);
    assert!(pages >= 3);

    // limit=100 and limit=1 are fine; a page of one has a next.
    assert_eq!(f.call("GET", "/pedidos", &[("limit", "100")], None).await.json["items"].as_array().unwrap().len(), 7);
    let r = f.call("GET", "/pedidos", &[("limit", "1")], None).await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1);
    assert!(r.json["next"].is_string());

    // Bad limits and tokens are 400s.
    for limit in ["0", "101", "-3", "ten", "2.5", ""] {
        let r = f.call("GET", "/pedidos", &[("limit", limit)], None).await;
        assert_eq!(r.status, 400, "limit={limit}: {}", r.text);
        assert!(error_of(&r).contains("limit"));
    }
    let foreign = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"id":{"S":"x"}}"#);
    for token in ["garbage!", "bm90IGpzb24", foreign.as_str(), "eyJpZCI6Im5vdC1hLXV1aWQifQ"] {
        let r = f.call("GET", "/pedidos", &[("next", token)], None).await;
        assert_eq!(r.status, 400, "next={token}: {}", r.text);
        assert!(error_of(&r).contains("next"));
    }
}

#[tokio::test]
async fn malformed_requests_get_json_400s_and_change_nothing() {
    let f = fixture().await.unwrap();
    let cases: &[(&str, &str)] = &[
        ("<order>ana</order>", "expected value"),
        ("{", "EOF"),
        (r#"{"customer":"a","items":[]} {}"#, "trailing"),
        ("[]", "struct OrderRequest"),
        (r#"["a", []]"#, "expected a JSON object"),
        ("null", "invalid type: null"),
        (r#"{"items":[]}"#, "missing field `customer`"),
        (r#"{"customer":"a"}"#, "missing field `items`"),
        (r#"{"customer":"a","items":[{"sku":"s","quantity":1}]}"#, "items[0]: missing field `price`"),
        (r#"{"customer":"a","items":[{"quantity":1,"price":1}]}"#, "missing field `sku`"),
        (r#"{"customer":1,"items":[]}"#, "customer: invalid type: integer"),
        (r#"{"customer":"a","items":"many"}"#, "items: invalid type: string"),
        (r#"{"customer":"a","items":[{"sku":"s","quantity":"1","price":1}]}"#, "items[0].quantity: invalid type: string"),
        (r#"{"customer":"a","items":[{"sku":"s","quantity":1.5,"price":1}]}"#, "items[0].quantity: invalid type: floating point"),
        (r#"{"customer":"a","items":[{"sku":"s","quantity":1,"price":"9.99"}]}"#, "items[0].price: invalid type: string"),
        (r#"{"customer":"a","items":[{"sku":"s","quantity":1,"price":9.999}]}"#, "more than 2 decimal places"),
        (r#"{"customer":"a","items":[{"sku":"s","quantity":1,"price":1e300}]}"#, "too large"),
        (r#"{"customer":"a","items":[{"sku":"s","quantity":1e30,"price":1}]}"#, "items[0].quantity"),
        (r#"{"customer":"a","items":[],"coupon":"FREE"}"#, "unknown field `coupon`"),
        (r#"{"customer":"a","items":[{"sku":"s","quantity":1,"price":1,"qty":2}]}"#, "unknown field `qty`"),
    ];
    for (body, expected) in cases {
        let r = f.call("POST", "/pedidos", &[], Some(body)).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(error_of(&r).contains(expected), "{body}: expected `{expected}` in {}", r.text);
    }
    // No body, an empty one.
    for body in [None, Some(""), Some("   ")] {
        let r = f.call("POST", "/pedidos", &[], body).await;
        assert_eq!(r.status, 400, "{body:?}: {}", r.text);
        assert!(error_of(&r).contains("body is required"));
    }
    // Base64 bodies: decoded when valid; not base64 or not UTF-8 is a 400.
    async fn b64(f: &Fixture, body: &str) -> Reply {
        common::reply(f.api.handle(&common::event("POST", "/pedidos", &[], Some(body), true)).await)
    }
    let r = b64(&f, "not//base64**").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(error_of(&r).contains("base64"));
    let latin1 = base64::engine::general_purpose::STANDARD.encode(b"{\"customer\":\"Jos\xe9\",\"items\":[]}");
    let r = b64(&f, &latin1).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(error_of(&r).contains("UTF-8"));
    // Too big.
    let r = f.call("POST", "/pedidos", &[], Some(&" ".repeat(70 * 1024))).await;
    assert_eq!(r.status, 413, "{}", r.text);
    let big_items: Vec<String> =
        (0..100).map(|i| format!(r#"{{"sku":"{}","quantity":1,"price":1}}"#, format!("{i:03}").repeat(40))).collect();
    let r = f.call("POST", "/pedidos", &[], Some(&format!(r#"{{"customer":"a","items":[{}]}}"#, big_items.join(",")))).await;
    assert_eq!(r.status, 413, "{}", r.text);

    assert_eq!(item_count(&f.ddb).await.unwrap(), 0, "no bad request stored anything");
    assert!(f.ecs.list_tasks().cluster(&f.config.cluster).send().await.unwrap().task_arns().is_empty());

    // A valid base64 body goes through.
    let r = b64(&f, &base64::engine::general_purpose::STANDARD.encode(ORDER)).await;
    assert_eq!(r.status, 202, "{}", r.text);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let f = fixture().await.unwrap();
    let id = uuid::Uuid::new_v4();
    for path in ["/", "/orders", "/pedidos/a/b", &format!("/pedidos/{id}/items"), "/pedidosx"] {
        let r = f.call("GET", path, &[], None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        error_of(&r);
    }
    for (method, path, allow) in [
        ("PATCH", "/pedidos".to_string(), "GET, POST"),
        ("DELETE", "/pedidos".to_string(), "GET, POST"),
        ("PUT", "/pedidos".to_string(), "GET, POST"),
        ("POST", format!("/pedidos/{id}"), "DELETE, GET, PUT"),
        ("PATCH", format!("/pedidos/{id}"), "DELETE, GET, PUT"),
        ("HEAD", format!("/pedidos/{id}"), "DELETE, GET, PUT"),
    ] {
        let r = f.call(method, &path, &[], None).await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text);
        assert_eq!(r.res.headers.get("allow").unwrap(), allow);
        error_of(&r);
    }
}

#[tokio::test]
async fn a_failed_run_task_marks_the_order_failed_and_answers_502() {
    let f = fixture().await.unwrap();
    let mut config = f.config.clone();
    config.task_definition = "pedidos-worker-missing:7".to_string();
    let api = pedidos::api::Api::new(f.ddb.clone(), f.ecs.clone(), config);

    let r = common::reply(api.handle(&common::request("POST", "/pedidos", &[], Some(ORDER))).await);
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(error_of(&r).contains("could not start"), "{}", r.text);
    assert_eq!(r.json["status"], "FAILED");
    let id = r.json["id"].as_str().unwrap().to_string();

    let item = raw_item(&f.ddb, &id).await.unwrap().expect("the order is kept, marked FAILED");
    assert_eq!(s_attr(&item, "status"), Some("FAILED"));
    // The reason ECS gave, as moto words it.
    assert_eq!(s_attr(&item, "failure"), Some("ClientException: Unable to describe task definition."));
    assert!(s_attr(&item, "task_arn").is_none());
    let r = f.call("GET", &format!("/pedidos/{id}"), &[], None).await;
    assert_eq!(r.json["status"], "FAILED");
    assert!(r.json["failure"].is_string());

    // A PUT that cannot start its task: the same, and a working API can then retry it.
    let r = common::reply(api.handle(&common::request("PUT", &format!("/pedidos/{id}"), &[], Some(ORDER))).await);
    assert_eq!(r.status, 502, "{}", r.text);
    let r = f.call("PUT", &format!("/pedidos/{id}"), &[], Some(ORDER)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let item = raw_item(&f.ddb, &id).await.unwrap().unwrap();
    assert_eq!(s_attr(&item, "status"), Some("PENDING"));
    assert!(s_attr(&item, "failure").is_none(), "the old failure is cleared");
}
