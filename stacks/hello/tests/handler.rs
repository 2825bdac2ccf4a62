//! The handler called directly with real API Gateway payload-2.0 events (the Lambda runtime itself needs
//! Docker, which the dev machines lack): every route, bad input, and no input a client controls ends in a 5xx.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine as _;
use hello::handler::{Config, Hello, MAX_BODY_BYTES, MAX_NAME_CHARS};

/// An event as API Gateway sends it for a `$default` stage, parsed by the real type.
fn event(method: &str, path: &str, query: &[(&str, &str)], body: Option<&str>, base64: bool) -> ApiGatewayV2httpRequest {
    let raw_query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let params: serde_json::Map<String, serde_json::Value> = query.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
    let mut v = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": raw_query.join("&"),
        "headers": {"content-type": "application/json", "host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "req",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000_i64
        },
        "isBase64Encoded": base64
    });
    if !params.is_empty() {
        v["queryStringParameters"] = serde_json::Value::Object(params);
    }
    if let Some(body) = body {
        v["body"] = serde_json::json!(body);
    }
    serde_json::from_value(v).expect("a valid API Gateway event")
}

struct Reply {
    status: i64,
    text: String,
    json: serde_json::Value,
    res: ApiGatewayV2httpResponse,
}

fn call_with(hello: &Hello, method: &str, path: &str, query: &[(&str, &str)], body: Option<&str>, base64: bool) -> Reply {
    let res = hello.handle(&event(method, path, query, body, base64));
    let text = match &res.body {
        Some(Body::Text(t)) => t.clone(),
        other => panic!("expected a text body, got {other:?}"),
    };
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {text}"));
    assert_eq!(res.headers.get("content-type").map(|v| v.to_str().unwrap()), Some("application/json"), "{text}");
    Reply { status: res.status_code, text, json, res }
}

fn call(method: &str, path: &str, query: &[(&str, &str)], body: Option<&str>) -> Reply {
    call_with(&Hello::default(), method, path, query, body, false)
}

fn error_of(r: &Reply) -> &str {
    r.json["error"].as_str().unwrap_or_else(|| panic!("no JSON error in {} {}", r.status, r.text))
}

#[test]
fn hello_greets_the_world_or_a_name() {
    let r = call("GET", "/hello", &[], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json, serde_json::json!({"message": "Hello, World!"}));

    let r = call("GET", "/hello", &[("name", "Ana")], None);
    assert_eq!(r.json, serde_json::json!({"message": "Hello, Ana!"}));
    // Quotes and non-ASCII come back as a JSON string, not spliced into the text.
    let r = call("GET", "/hello", &[("name", r#"Zoë "the" <b>"#)], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json["message"], r#"Hello, Zoë "the" <b>!"#);
    assert_eq!(call("GET", "/hello", &[("name", "  ")], None).json["message"], "Hello, World!");
    assert_eq!(call("GET", "/hello/", &[], None).status, 200);

    let hola = Hello::new(Config::from_lookup(|k| (k == "GREETING").then(|| "Hola".to_string())));
    assert_eq!(call_with(&hola, "GET", "/hello", &[("name", "Ana")], None, false).json["message"], "Hola, Ana!");

    let long = "a".repeat(MAX_NAME_CHARS + 1);
    let r = call("GET", "/hello", &[("name", &long)], None);
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(error_of(&r).contains("name"), "{}", r.text);
    assert_eq!(call("GET", "/hello", &[("name", "a\u{7}b")], None).status, 400);
}

#[test]
fn echo_returns_the_json_body_as_sent() {
    for body in
        [r#"{"a":1,"b":[true,null,"x"]}"#, "[]", "42", r#""text""#, "null", r#"{"big":123456789012345678901234567890,"tiny":1e-400}"#]
    {
        let r = call("POST", "/echo", &[], Some(body));
        assert_eq!(r.status, 200, "{body}: {}", r.text);
        assert_eq!(r.text, body, "byte for byte");
    }
    // Surrounding whitespace is not part of the value.
    assert_eq!(call("POST", "/echo", &[], Some(" \n{\"a\": 1}\n")).text, "{\"a\": 1}");
    // API Gateway base64-encodes bodies of non-text content types.
    let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"k":"ñ"}"#);
    let r = call_with(&Hello::default(), "POST", "/echo", &[], Some(&b64), true);
    assert_eq!((r.status, r.text.as_str()), (200, r#"{"k":"ñ"}"#));
}

#[test]
fn echo_refuses_what_is_not_json_with_a_json_400() {
    for body in [None, Some(""), Some("   "), Some("hello"), Some("{"), Some("{'a':1}"), Some("[1,]"), Some("{} {}"), Some("\u{0}")] {
        let r = call("POST", "/echo", &[], body);
        assert_eq!(r.status, 400, "{body:?}: {}", r.text);
        let e = error_of(&r);
        assert!(e.contains("JSON"), "{body:?}: {e}");
    }
    let hello = Hello::default();
    // Deep nesting is valid JSON: checked without recursion (no stack to overflow) and echoed as is.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let res = hello.handle(&event("POST", "/echo", &[], Some(&deep), false));
    assert_eq!(res.status_code, 200);
    assert!(matches!(&res.body, Some(Body::Text(t)) if *t == deep));
    let unbalanced = format!("{}{}", "[".repeat(100_000), "]".repeat(99_999));
    assert_eq!(call("POST", "/echo", &[], Some(&unbalanced)).status, 400);
    assert_eq!(call_with(&hello, "POST", "/echo", &[], Some("not base64!"), true).status, 400);
    let not_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b'{']);
    assert_eq!(call_with(&hello, "POST", "/echo", &[], Some(&not_utf8), true).status, 400);
    let big = format!("\"{}\"", "x".repeat(MAX_BODY_BYTES));
    let r = call("POST", "/echo", &[], Some(&big));
    assert_eq!(r.status, 413, "{}", &r.text[..r.text.len().min(200)]);
}

#[test]
fn health() {
    let r = call("GET", "/health", &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json, serde_json::json!({"status": "ok"}));
}

#[test]
fn unknown_routes_are_json_404s_and_wrong_methods_405s() {
    for path in ["/", "/hell", "/hello/x", "/echo/1", "/HELLO", "/%2e%2e/hello"] {
        let r = call("GET", path, &[], None);
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert!(error_of(&r).contains("no route"), "{path}");
    }
    let r = call("DELETE", "/hello", &[], None);
    assert_eq!(r.status, 405);
    assert_eq!(r.res.headers.get("allow").unwrap(), "GET");
    assert!(error_of(&r).contains("DELETE"));
    let r = call("GET", "/echo", &[], None);
    assert_eq!((r.status, r.res.headers.get("allow").unwrap().to_str().unwrap()), (405, "POST"));
}

#[test]
fn nothing_a_client_sends_is_a_5xx() {
    let hello = Hello::default();
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW"];
    let paths = ["/hello", "/echo", "/health", "/", "/x", "/hello?x", "/echo/../hello"];
    let bodies = [None, Some("{}"), Some("{"), Some("\u{fffd}"), Some("e30=")];
    for method in methods {
        for path in paths {
            for body in bodies {
                for base64 in [false, true] {
                    let res = hello.handle(&event(method, path, &[("name", "\u{202e}x")], body, base64));
                    assert!((200..500).contains(&res.status_code), "{method} {path} {body:?} b64={base64}: {}", res.status_code);
                    let Some(Body::Text(text)) = &res.body else { panic!("{method} {path}: no body") };
                    serde_json::from_str::<serde_json::Value>(text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"));
                }
            }
        }
    }
    // An event with almost nothing in it (no path, no stage) still gets an answer.
    let bare: ApiGatewayV2httpRequest = serde_json::from_value(serde_json::json!({"requestContext": {"http": {"method": "GET"}}})).unwrap();
    assert_eq!(hello.handle(&bare).status_code, 404);
}
