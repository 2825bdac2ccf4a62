//! `cargo run --example pedidos -- smoke [URL]`: calls every endpoint of a served or deployed pedidos API
//! and checks the answers, stopping at the first wrong one with what it expected and what it got. The URL
//! defaults to the `api_url` output: `serve`'s `http://` URL, or a deployment's `https://` one (rustls with
//! this machine's trusted roots; a stage's path is kept).

use ferroform::local::client::{request, Answer};
use std::process::ExitCode;
use std::time::Duration;

const ORDER: &str = r#"{"customer":"smoke","items":[{"sku":"SMOKE-1","quantity":2,"price":1.5}]}"#;
const UPDATE: &str = r#"{"customer":"smoke","items":[{"sku":"SMOKE-2","quantity":1,"price":3}]}"#;

async fn call(url: &str, method: &str, path: &str, body: Option<&str>) -> Result<Answer, String> {
    let headers: &[(&str, &str)] = if body.is_some() { &[("content-type", "application/json")] } else { &[] };
    request(url, method, path, headers, body).await.map_err(|e| format!("{method} {path}: {e}"))
}

fn expect(step: &str, want: u16, got: &Answer) -> Result<(), String> {
    if got.status != want {
        return Err(format!("{step}: expected {want}, got {} {}", got.status, got.body));
    }
    println!("ok  {step} -> {want}");
    Ok(())
}

/// Polls the order until it leaves `PENDING` (the worker ran); its status.
async fn settled(url: &str, id: &str) -> Result<String, String> {
    for _ in 0..240 {
        let r = call(url, "GET", &format!("/pedidos/{id}"), None).await?;
        expect_quiet(&r, 200, "GET /pedidos/{id}")?;
        match r.json()["status"].as_str() {
            Some("PENDING") | None => tokio::time::sleep(Duration::from_millis(250)).await,
            Some(status) => return Ok(status.to_string()),
        }
    }
    Err(format!("order {id}: still PENDING after 60 s (is the worker running?)"))
}

fn expect_quiet(r: &Answer, want: u16, step: &str) -> Result<(), String> {
    (r.status == want).then_some(()).ok_or_else(|| format!("{step}: expected {want}, got {} {}", r.status, r.body))
}

/// Every endpoint once, in the order a client would use them.
pub async fn check(url: &str) -> Result<(), String> {
    let r = call(url, "POST", "/pedidos", Some(ORDER)).await?;
    expect("POST /pedidos", 202, &r)?;
    let id = r.json()["id"].as_str().map(String::from).ok_or_else(|| format!("POST /pedidos: no id in {}", r.body))?;
    match settled(url, &id).await?.as_str() {
        "CREATED" => println!("ok  the worker recorded CREATED"),
        other => return Err(format!("GET /pedidos/{id}: expected status CREATED, got {other}")),
    }
    let r = call(url, "GET", "/pedidos?limit=1", None).await?;
    expect("GET /pedidos?limit=1", 200, &r)?;
    if r.json()["items"].as_array().is_none_or(|i| i.len() != 1) {
        return Err(format!("GET /pedidos?limit=1: expected one item, got {}", r.body));
    }
    let r = call(url, "PUT", &format!("/pedidos/{id}"), Some(UPDATE)).await?;
    expect("PUT /pedidos/{id}", 202, &r)?;
    match settled(url, &id).await?.as_str() {
        "UPDATED" => println!("ok  the worker recorded UPDATED"),
        other => return Err(format!("GET /pedidos/{id}: expected status UPDATED, got {other}")),
    }
    let r = call(url, "POST", "/pedidos", Some(r#"{"customer":"smoke"}"#)).await?;
    expect("POST /pedidos with no items", 400, &r)?;
    if !r.body.contains("items") {
        return Err(format!("POST /pedidos with no items: expected an error naming `items`, got {}", r.body));
    }
    let r = call(url, "DELETE", &format!("/pedidos/{id}"), None).await?;
    expect("DELETE /pedidos/{id}", 204, &r)?;
    let r = call(url, "GET", &format!("/pedidos/{id}"), None).await?;
    expect("GET /pedidos/{id} after DELETE", 404, &r)?;
    let r = call(url, "GET", "/no-such-route", None).await?;
    expect("GET /no-such-route", 404, &r)?;
    Ok(())
}

/// The `smoke [URL]` command for the stack program.
pub fn command() -> ferroform::cli::ExtraCommand {
    std::sync::Arc::new(|args, outputs| {
        Box::pin(async move {
            let url = match args.first() {
                Some(url) => url.clone(),
                None => match outputs.get("api_url").and_then(|v| v.as_str()) {
                    Some(url) => url.to_string(),
                    None => anyhow::bail!("smoke: no URL given and no api_url output (apply first, or pass the URL)"),
                },
            };
            println!("smoke test of {url}");
            match check(url.trim_end_matches('/')).await {
                Ok(()) => {
                    println!("all endpoints answered as expected");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("FAILED {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        })
    })
}
