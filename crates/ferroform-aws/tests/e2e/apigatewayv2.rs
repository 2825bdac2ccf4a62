//! API Gateway v2 (HTTP APIs, Lambda integrations, routes, stages, JWT authorizers) and the `lambda_route`
//! component against the emulator, checked with independent SDK reads.

use crate::common::change;
use aws_sdk_apigatewayv2::types::{AuthorizationType, AuthorizerType, IntegrationType, ProtocolType};
use aws_sdk_apigatewayv2::Client;
use ferroform_aws::apigatewayv2::{AccessLog, Authorizer, Cors, HttpApi, Integration, Route, Stage, DEFAULT_STAGE};
use ferroform_aws::components::http_api;
use ferroform_aws::iam::Role;
use ferroform_aws::lambda::{Code, Function};
use ferroform_aws::logs::LogGroup;
use ferroform_aws::{Aws, CallCounter};
use ferroform_core::{Action, Stack};
use ferroform_testkit::Harness;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const STACK: &str = "apigwtest";
const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example";

async fn harness() -> anyhow::Result<(Harness, CallCounter, Client)> {
    let h = Harness::new().await?;
    let aws = Aws::from_config(h.account.config.clone());
    let calls = aws.calls().clone();
    h.contexts.insert(aws);
    let apigw = Client::new(&h.account.config);
    Ok((h, calls, apigw))
}

fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Calls of one operation (`Service:Operation` keys end in `:Operation`).
fn count(calls: &BTreeMap<String, usize>, operation: &str) -> usize {
    calls.iter().filter(|(k, _)| k.rsplit(':').next() == Some(operation)).map(|(_, n)| n).sum()
}

/// Plans, asserts nothing would change, and returns the API calls the plan made.
async fn no_op(h: &Harness, calls: &CallCounter, stack: &Stack) -> anyhow::Result<BTreeMap<String, usize>> {
    calls.reset();
    let plan = h.plan(stack).await?;
    assert!(!plan.has_changes(), "expected no changes:\n{}", plan.render(false));
    Ok(calls.snapshot())
}

/// The part id in `API_ID/PART_ID`.
fn part(id: &str) -> String {
    id.split_once('/').map(|(_, p)| p.to_string()).unwrap_or_default()
}

/// The AWS error code of a failed call, if it failed.
fn code_of<T, E: aws_sdk_apigatewayv2::error::ProvideErrorMetadata, R>(
    r: Result<T, aws_sdk_apigatewayv2::error::SdkError<E, R>>,
) -> Option<String> {
    use aws_sdk_apigatewayv2::error::ProvideErrorMetadata as _;
    r.err().and_then(|e| e.code().map(str::to_string))
}

/// A few bytes packaged as a Lambda zip (nothing runs them on the emulator).
fn binary(dir: &Path) -> PathBuf {
    let path = dir.join("api-bin");
    std::fs::write(&path, "#!/bin/sh\necho api\n").unwrap();
    path
}

fn lower_set(v: &[String]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn http_api_with_cors_lifecycle() -> anyhow::Result<()> {
    let (h, calls, apigw) = harness().await?;
    let stack = |api: HttpApi| {
        let mut s = Stack::new(STACK);
        s.add("api", api);
        s
    };
    let cors_v1 = || {
        Cors::builder()
            .origins(["https://b.example", "https://a.example"])
            .methods(["GET", "POST"])
            .headers(["Content-Type", "Authorization"])
            .max_age(300)
    };
    let v1 = || HttpApi::new("orders").description("v1").cors(cors_v1()).tag("team", "web");
    let state = h.apply(&stack(v1())).await?;
    let id = h.id_of(&stack(v1()), "api").await?;

    let api = apigw.get_api().api_id(&id).send().await?;
    assert_eq!(api.name(), Some("orders"));
    assert_eq!(api.description(), Some("v1"));
    assert_eq!(api.protocol_type(), Some(&ProtocolType::Http));
    let cors = api.cors_configuration().unwrap();
    assert_eq!(lower_set(cors.allow_origins()), ["https://a.example", "https://b.example"]);
    assert_eq!(lower_set(cors.allow_methods()), ["get", "post"]);
    assert_eq!(lower_set(cors.allow_headers()), ["authorization", "content-type"]);
    assert_eq!(cors.max_age(), Some(300));
    let tags = api.tags().cloned().unwrap_or_default();
    assert_eq!(tags.get("team").map(String::as_str), Some("web"));
    assert_eq!(tags.get("ferroform:address").map(String::as_str), Some("api"));
    let outputs = &state.resources["api"].outputs;
    assert_eq!(outputs["id"], id);
    assert_eq!(outputs["endpoint"], api.api_endpoint().unwrap_or_default());
    assert_eq!(outputs["execution_arn"], format!("arn:aws:execute-api:us-east-1:{}:{id}", h.account.id));

    let reads = no_op(&h, &calls, &stack(v1())).await?;
    println!("no-op plan of an HTTP API: {reads:?}");
    assert_eq!(count(&reads, "GetApi"), 1, "{reads:?}");
    // The same CORS written in another order and case is no change.
    let same = Cors::builder()
        .origins(["https://a.example", "https://b.example", "https://a.example"])
        .methods(["post", "get"])
        .headers(["authorization", "CONTENT-TYPE"])
        .max_age(300);
    no_op(&h, &calls, &stack(v1().cors(same))).await?;

    // In place: CORS (another origin and method, a longer max age), name and description; the same API.
    let cors_v2 = || cors_v1().origin("https://c.example").methods(["DELETE"]).max_age(600);
    let v2 = || HttpApi::new("orders-v2").description("v2").cors(cors_v2()).tag("team", "web");
    let plan = h.plan(&stack(v2())).await?;
    assert_eq!(change(&plan, "api"), (Action::Update, fields(&["cors", "description", "name"])), "{}", plan.render(false));
    h.apply(&stack(v2())).await?;
    assert_eq!(h.id_of(&stack(v2()), "api").await?, id);
    let api = apigw.get_api().api_id(&id).send().await?;
    assert_eq!((api.name(), api.description()), (Some("orders-v2"), Some("v2")));
    let cors = api.cors_configuration().unwrap();
    assert_eq!(lower_set(cors.allow_origins()), ["https://a.example", "https://b.example", "https://c.example"]);
    assert_eq!(lower_set(cors.allow_methods()), ["delete", "get", "post"]);
    assert_eq!(cors.max_age(), Some(600));
    no_op(&h, &calls, &stack(v2())).await?;

    // Drift: CORS opened to any origin behind the engine's back; the plan shows it, apply restores it.
    let open = aws_sdk_apigatewayv2::types::Cors::builder().allow_origins("*").allow_methods("*").build();
    apigw.update_api().api_id(&id).cors_configuration(open).send().await?;
    let plan = h.plan(&stack(v2())).await?;
    assert_eq!(change(&plan, "api"), (Action::Update, fields(&["cors"])), "{}", plan.render(false));
    h.apply(&stack(v2())).await?;
    let cors = apigw.get_api().api_id(&id).send().await?.cors_configuration.unwrap();
    assert_eq!(lower_set(cors.allow_origins()), ["https://a.example", "https://b.example", "https://c.example"]);
    no_op(&h, &calls, &stack(v2())).await?;

    // Dropping fields (headers, max age) from CORS clears them: UpdateApi would keep what it is not sent, so
    // the configuration is deleted and written whole.
    let v2b = || v2().cors(Cors::builder().origins(["https://a.example"]).methods(["GET"]));
    assert_eq!(change(&h.plan(&stack(v2b())).await?, "api"), (Action::Update, fields(&["cors"])));
    calls.reset();
    h.apply(&stack(v2b())).await?;
    assert_eq!(count(&calls.snapshot(), "DeleteCorsConfiguration"), 1, "{:?}", calls.snapshot());
    let cors = apigw.get_api().api_id(&id).send().await?.cors_configuration.unwrap();
    assert_eq!((lower_set(cors.allow_origins()), lower_set(cors.allow_methods())), (fields(&["https://a.example"]), fields(&["get"])));
    assert!(cors.allow_headers().is_empty(), "{cors:?}");
    assert_eq!(cors.max_age(), None);
    no_op(&h, &calls, &stack(v2b())).await?;

    // Declaring no CORS removes it.
    let v3 = || v2().cors(Cors::none());
    assert_eq!(change(&h.plan(&stack(v3())).await?, "api"), (Action::Update, fields(&["cors"])));
    h.apply(&stack(v3())).await?;
    assert_eq!(apigw.get_api().api_id(&id).send().await?.cors_configuration(), None);
    no_op(&h, &calls, &stack(v3())).await?;

    // An HTTP API has no replace-forcing field (everything above was in place). Destroy: gone.
    h.destroy(&stack(v3())).await?;
    assert_eq!(code_of(apigw.get_api().api_id(&id).send().await).as_deref(), Some("NotFoundException"));
    Ok(())
}

/// What changes between the versions of [`full_stack`].
struct Version {
    route_key: &'static str,
    timeout_ms: i32,
    audience: &'static [&'static str],
    scopes: &'static [&'static str],
}

const V1: Version = Version { route_key: "GET /pedidos", timeout_ms: 29000, audience: &["client-a"], scopes: &["orders/write"] };
const V2: Version =
    Version { route_key: "GET /orders", timeout_ms: 10000, audience: &["client-a", "client-b"], scopes: &["orders/admin", "orders/write"] };

/// A function (with its role), a log group, and an API with a Lambda integration, an open route, a JWT
/// authorizer, a route using it, and the `$default` stage logging to the group.
fn full_stack(dir: &Path, v: &Version) -> Stack {
    let mut s = Stack::new(STACK);
    let role = s.add("role", Role::for_service("lambda.amazonaws.com"));
    let f = s.add("fn", Function::new("orders-api").code(Code::binary(binary(dir))).role(role.arn()));
    let logs = s.add("logs", LogGroup::new("/aws/apigw/orders").retention_days(7));
    let api = s.add("api", HttpApi::new("orders"));
    let integration = s.add("integration", Integration::lambda(api.id(), &f).timeout_in_millis(v.timeout_ms));
    s.add("route", Route::new(api.id(), v.route_key).integration(&integration));
    let auth = s.add("auth", Authorizer::jwt(api.id(), "users", ISSUER, v.audience.iter().copied()));
    s.add("secured", Route::new(api.id(), "POST /pedidos").integration(&integration).jwt(auth.id(), v.scopes.iter().copied()));
    s.add("stage", Stage::default_auto_deploy(api.id()).access_log(AccessLog::json(logs.arn())));
    s
}

#[tokio::test]
async fn integration_routes_authorizer_and_stage() -> anyhow::Result<()> {
    let (h, calls, apigw) = harness().await?;
    let lambda = aws_sdk_lambda::Client::new(&h.account.config);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&h.account.config);
    let dir = h.dir.path();
    h.apply(&full_stack(dir, &V1)).await?;
    let s = full_stack(dir, &V1);
    let api_id = h.id_of(&s, "api").await?;
    let (integration_id, route_id, secured_id, auth_id) = (
        part(&h.id_of(&s, "integration").await?),
        part(&h.id_of(&s, "route").await?),
        part(&h.id_of(&s, "secured").await?),
        part(&h.id_of(&s, "auth").await?),
    );
    let function_arn = lambda.get_function().function_name("orders-api").send().await?.configuration.and_then(|c| c.function_arn).unwrap();

    // The integration: a Lambda proxy to the function, payload 2.0.
    let integrations = apigw.get_integrations().api_id(&api_id).send().await?;
    assert_eq!(integrations.items().len(), 1);
    let i = &integrations.items()[0];
    assert_eq!(i.integration_id(), Some(integration_id.as_str()));
    assert_eq!(i.integration_type(), Some(&IntegrationType::AwsProxy));
    assert_eq!(i.integration_uri(), Some(function_arn.as_str()));
    assert_eq!(i.payload_format_version(), Some("2.0"));
    assert_eq!(i.timeout_in_millis(), Some(29000));

    // The routes: both target the integration; the secured one needs a JWT checked by the authorizer.
    let routes = apigw.get_routes().api_id(&api_id).send().await?;
    let by_key: BTreeMap<&str, &aws_sdk_apigatewayv2::types::Route> =
        routes.items().iter().map(|r| (r.route_key().unwrap_or_default(), r)).collect();
    assert_eq!(by_key.keys().copied().collect::<Vec<_>>(), ["GET /pedidos", "POST /pedidos"]);
    let target = format!("integrations/{integration_id}");
    assert_eq!(by_key["GET /pedidos"].route_id(), Some(route_id.as_str()));
    assert_eq!(by_key["GET /pedidos"].target(), Some(target.as_str()));
    assert!(matches!(by_key["GET /pedidos"].authorization_type(), None | Some(AuthorizationType::None)));
    let secured = by_key["POST /pedidos"];
    assert_eq!(secured.route_id(), Some(secured_id.as_str()));
    assert_eq!(secured.target(), Some(target.as_str()));
    assert_eq!(secured.authorization_type(), Some(&AuthorizationType::Jwt));
    assert_eq!(secured.authorizer_id(), Some(auth_id.as_str()));
    assert_eq!(secured.authorization_scopes(), ["orders/write"]);

    // The authorizer.
    let a = apigw.get_authorizer().api_id(&api_id).authorizer_id(&auth_id).send().await?;
    assert_eq!(a.authorizer_type(), Some(&AuthorizerType::Jwt));
    assert_eq!(a.name(), Some("users"));
    assert_eq!(a.identity_source(), ["$request.header.Authorization"]);
    let jwt = a.jwt_configuration().unwrap();
    assert_eq!((jwt.issuer(), jwt.audience()), (Some(ISSUER), ["client-a".to_string()].as_slice()));

    // The stage: auto-deploy, access logs to the log group.
    let group = logs.describe_log_groups().log_group_name_prefix("/aws/apigw/orders").send().await?;
    let group_arn = group.log_groups()[0].arn().unwrap_or_default().trim_end_matches(":*").to_string();
    let stage = apigw.get_stage().api_id(&api_id).stage_name(DEFAULT_STAGE).send().await?;
    assert_eq!(stage.auto_deploy(), Some(true));
    let log = stage.access_log_settings().unwrap();
    assert_eq!(log.destination_arn(), Some(group_arn.as_str()));
    assert!(log.format().unwrap_or_default().contains("$context.requestId"));

    let reads = no_op(&h, &calls, &full_stack(dir, &V1)).await?;
    println!("no-op plan of role, function, log group, API, integration, 2 routes, authorizer, stage: {reads:?}");

    // In place: the route's key, the integration's timeout, the audience, the scopes; the same ids.
    let plan = h.plan(&full_stack(dir, &V2)).await?;
    let text = plan.render(false);
    assert_eq!(change(&plan, "integration"), (Action::Update, fields(&["timeout_in_millis"])), "{text}");
    assert_eq!(change(&plan, "route"), (Action::Update, fields(&["route_key"])), "{text}");
    assert_eq!(change(&plan, "auth"), (Action::Update, fields(&["audience"])), "{text}");
    assert_eq!(change(&plan, "secured"), (Action::Update, fields(&["authorization_scopes"])), "{text}");
    assert_eq!(plan.summary.change, 4, "{text}");
    h.apply(&full_stack(dir, &V2)).await?;
    let s2 = full_stack(dir, &V2);
    for (address, before) in [("integration", &integration_id), ("route", &route_id), ("secured", &secured_id), ("auth", &auth_id)] {
        assert_eq!(&part(&h.id_of(&s2, address).await?), before, "{address}");
    }
    let i = apigw.get_integration().api_id(&api_id).integration_id(&integration_id).send().await?;
    assert_eq!(i.timeout_in_millis(), Some(10000));
    let r = apigw.get_route().api_id(&api_id).route_id(&route_id).send().await?;
    assert_eq!(r.route_key(), Some("GET /orders"));
    let r = apigw.get_route().api_id(&api_id).route_id(&secured_id).send().await?;
    let mut scopes = r.authorization_scopes().to_vec();
    scopes.sort();
    assert_eq!(scopes, ["orders/admin", "orders/write"]);
    let a = apigw.get_authorizer().api_id(&api_id).authorizer_id(&auth_id).send().await?;
    let mut audience = a.jwt_configuration().map(|j| j.audience().to_vec()).unwrap_or_default();
    audience.sort();
    assert_eq!(audience, ["client-a", "client-b"]);
    no_op(&h, &calls, &full_stack(dir, &V2)).await?;
    // The stage's in-place update (UpdateStage) can't run here: moto 5.2.5 implements no UpdateStage.

    // Drift: a route re-keyed, the timeout and the audience changed, the stage deleted, behind our back.
    apigw.update_route().api_id(&api_id).route_id(&route_id).route_key("GET /hacked").send().await?;
    apigw.update_integration().api_id(&api_id).integration_id(&integration_id).timeout_in_millis(5000).send().await?;
    let evil = aws_sdk_apigatewayv2::types::JwtConfiguration::builder().issuer(ISSUER).audience("evil").build();
    apigw.update_authorizer().api_id(&api_id).authorizer_id(&auth_id).jwt_configuration(evil).send().await?;
    apigw.delete_stage().api_id(&api_id).stage_name(DEFAULT_STAGE).send().await?;
    let plan = h.plan(&full_stack(dir, &V2)).await?;
    let text = plan.render(false);
    assert_eq!(change(&plan, "route"), (Action::Update, fields(&["route_key"])), "{text}");
    assert!(text.contains(r#"route_key = "GET /hacked" -> "GET /orders""#), "{text}");
    assert_eq!(change(&plan, "integration"), (Action::Update, fields(&["timeout_in_millis"])), "{text}");
    assert_eq!(change(&plan, "auth"), (Action::Update, fields(&["audience"])), "{text}");
    assert_eq!(change(&plan, "stage").0, Action::Create, "{text}");
    h.apply(&full_stack(dir, &V2)).await?;
    let r = apigw.get_route().api_id(&api_id).route_id(&route_id).send().await?;
    assert_eq!(r.route_key(), Some("GET /orders"));
    let i = apigw.get_integration().api_id(&api_id).integration_id(&integration_id).send().await?;
    assert_eq!(i.timeout_in_millis(), Some(10000));
    let a = apigw.get_authorizer().api_id(&api_id).authorizer_id(&auth_id).send().await?;
    assert!(!a.jwt_configuration().map(|j| j.audience().to_vec()).unwrap_or_default().contains(&"evil".to_string()));
    let stage = apigw.get_stage().api_id(&api_id).stage_name(DEFAULT_STAGE).send().await?;
    assert_eq!(stage.access_log_settings().and_then(|l| l.destination_arn()), Some(group_arn.as_str()));
    no_op(&h, &calls, &full_stack(dir, &V2)).await?;

    // Destroy: the API and its parts, the function, the log group.
    h.destroy(&full_stack(dir, &V2)).await?;
    assert_eq!(code_of(apigw.get_api().api_id(&api_id).send().await).as_deref(), Some("NotFoundException"));
    assert!(lambda.get_function().function_name("orders-api").send().await.is_err());
    Ok(())
}

/// Two APIs, and an integration, a route (JWT-secured), an authorizer and a stage on the one named `on`.
fn parts_stack(on: &str, stage: &str) -> Stack {
    let mut s = Stack::new(STACK);
    let a = s.add("api-a", HttpApi::new("a"));
    let b = s.add("api-b", HttpApi::new("b"));
    let api = if on == "a" { a } else { b };
    let integration = s.add("integration", Integration::http(api.id(), "GET", "https://example.com/orders"));
    let auth = s.add("auth", Authorizer::jwt(api.id(), "users", ISSUER, ["client"]));
    s.add("route", Route::new(api.id(), "GET /orders").integration(&integration).jwt(auth.id(), ["read"]));
    s.add("stage", Stage::new(api.id(), stage).auto_deploy(true));
    s
}

#[tokio::test]
async fn parts_moved_to_another_api_are_replaced() -> anyhow::Result<()> {
    let (h, calls, apigw) = harness().await?;
    h.apply(&parts_stack("a", "prod")).await?;
    let s = parts_stack("a", "prod");
    let a = h.id_of(&s, "api-a").await?;
    let b = h.id_of(&s, "api-b").await?;
    let old: BTreeMap<&str, String> = [
        ("integration", part(&h.id_of(&s, "integration").await?)),
        ("auth", part(&h.id_of(&s, "auth").await?)),
        ("route", part(&h.id_of(&s, "route").await?)),
    ]
    .into();
    let i = apigw.get_integration().api_id(&a).integration_id(&old["integration"]).send().await?;
    assert_eq!((i.integration_type(), i.integration_uri()), (Some(&IntegrationType::HttpProxy), Some("https://example.com/orders")));
    assert_eq!(i.integration_method(), Some("GET"));
    assert_eq!(apigw.get_stage().api_id(&a).stage_name("prod").send().await?.auto_deploy(), Some(true));
    no_op(&h, &calls, &parts_stack("a", "prod")).await?;

    // `api_id` forces a new integration, route, authorizer and stage.
    let plan = h.plan(&parts_stack("b", "prod")).await?;
    let text = plan.render(false);
    for address in ["integration", "auth", "route", "stage"] {
        assert_eq!(change(&plan, address).0, Action::Replace, "{address}: {text}");
    }
    assert!(text.contains("`api_id` forces replacement"), "{text}");
    h.apply(&parts_stack("b", "prod")).await?;
    let s = parts_stack("b", "prod");
    let new: BTreeMap<&str, String> = [
        ("integration", part(&h.id_of(&s, "integration").await?)),
        ("auth", part(&h.id_of(&s, "auth").await?)),
        ("route", part(&h.id_of(&s, "route").await?)),
    ]
    .into();
    assert_eq!(h.id_of(&s, "route").await?, format!("{b}/{}", new["route"]));
    // The new parts live in API b, pointing at each other; API a has none left.
    let r = apigw.get_route().api_id(&b).route_id(&new["route"]).send().await?;
    assert_eq!(r.target(), Some(format!("integrations/{}", new["integration"]).as_str()));
    assert_eq!(r.authorizer_id(), Some(new["auth"].as_str()));
    apigw.get_authorizer().api_id(&b).authorizer_id(&new["auth"]).send().await?;
    assert_eq!(apigw.get_stage().api_id(&b).stage_name("prod").send().await?.auto_deploy(), Some(true));
    let gone = "NotFoundException";
    assert_eq!(code_of(apigw.get_integration().api_id(&a).integration_id(&old["integration"]).send().await).as_deref(), Some(gone));
    assert_eq!(code_of(apigw.get_route().api_id(&a).route_id(&old["route"]).send().await).as_deref(), Some(gone));
    assert_eq!(code_of(apigw.get_authorizer().api_id(&a).authorizer_id(&old["auth"]).send().await).as_deref(), Some(gone));
    assert_eq!(code_of(apigw.get_stage().api_id(&a).stage_name("prod").send().await).as_deref(), Some(gone));
    assert!(apigw.get_routes().api_id(&a).send().await?.items().is_empty());
    no_op(&h, &calls, &parts_stack("b", "prod")).await?;

    // A stage's name forces a new stage too (the old one goes first).
    let plan = h.plan(&parts_stack("b", DEFAULT_STAGE)).await?;
    assert_eq!(change(&plan, "stage"), (Action::Replace, fields(&["name"])), "{}", plan.render(false));
    h.apply(&parts_stack("b", DEFAULT_STAGE)).await?;
    assert_eq!(code_of(apigw.get_stage().api_id(&b).stage_name("prod").send().await).as_deref(), Some(gone));
    assert_eq!(apigw.get_stage().api_id(&b).stage_name(DEFAULT_STAGE).send().await?.auto_deploy(), Some(true));
    no_op(&h, &calls, &parts_stack("b", DEFAULT_STAGE)).await?;

    h.destroy(&parts_stack("b", DEFAULT_STAGE)).await?;
    for api in [&a, &b] {
        assert_eq!(code_of(apigw.get_api().api_id(api).send().await).as_deref(), Some(gone));
    }
    Ok(())
}

#[tokio::test]
async fn bad_routes_are_refused_before_any_call() -> anyhow::Result<()> {
    let (h, calls, _) = harness().await?;
    let cases: Vec<(Route, &str)> = vec![
        (Route::new(ferroform_core::Id::literal("x"), "FETCH /orders"), "route_key"),
        (Route::new(ferroform_core::Id::literal("x"), "get /orders"), "route_key"),
        (Route::new(ferroform_core::Id::literal("x"), "GET orders"), "route_key"),
        (Route::new(ferroform_core::Id::literal("x"), "GET /orders/"), "route_key"),
        (Route::new(ferroform_core::Id::literal("x"), "GET //orders"), "route_key"),
        (Route::new(ferroform_core::Id::literal("x"), "GET /{proxy+}/x"), "route_key"),
        (Route::new(ferroform_core::Id::literal("x"), "GET"), "route_key"),
        (Route::new(ferroform_core::Id::literal("x"), "$other"), "route_key"),
        (Route::new(ferroform_core::Id::literal("x"), "GET /orders").target("abc123"), "target"),
        (Route { authorization_type: Some("JWT".into()), ..Route::new(ferroform_core::Id::literal("x"), "GET /orders") }, "authorizer_id"),
    ];
    for (route, field) in cases {
        let what = format!("{route:?}");
        let mut s = Stack::new(STACK);
        let api = s.add("api", HttpApi::new("orders"));
        s.add("route", Route { api_id: api.id().into(), ..route });
        let err = h.plan(&s).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(&format!("route: field `{field}`")), "{what}: {err}");
        assert_eq!(calls.total(), 0, "{what}: {:?}", calls.snapshot());
    }
    // The component checks its route key the same way.
    let mut s = Stack::new(STACK);
    let f = s.add(
        "fn",
        Function::new("f")
            .code(Code::image("123456789012.dkr.ecr.us-east-1.amazonaws.com/f:1"))
            .role(ferroform_core::Arn::literal(format!("arn:aws:iam::{}:role/r", h.account.id))),
    );
    let api = s.add("api", HttpApi::new("orders"));
    api.lambda_route(&mut s, "GET pedidos", &f);
    let err = h.plan(&s).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("api/get-pedidos/route: field `route_key`"), "{err}");
    assert_eq!(calls.total(), 0, "{:?}", calls.snapshot());
    Ok(())
}

/// A function (role made outside the stack), an API with `routes` through the component, the `$default`
/// stage logging to a group made outside the stack.
fn component_stack(dir: &Path, role_arn: &str, log_arn: &str, routes: &[&str]) -> Stack {
    let mut s = Stack::new(STACK);
    let f = s.add("fn", Function::new("pedidos-api").code(Code::binary(binary(dir))).role(ferroform_core::Arn::literal(role_arn)));
    let api = s.add("api", HttpApi::new("pedidos").cors(Cors::any()));
    for key in routes {
        api.lambda_route(&mut s, key, &f);
    }
    http_api::default_stage(&mut s, &api, Some(AccessLog::json(ferroform_core::Arn::literal(log_arn))));
    s
}

/// A role for Lambda and a log group, made with the SDK (so a stack's count of calls is only its own).
async fn outside_resources(h: &Harness) -> anyhow::Result<(String, String)> {
    let iam = aws_sdk_iam::Client::new(&h.account.config);
    let trust = ferroform_aws::iam::PolicyDocument::assume_role_by_service("lambda.amazonaws.com").to_json();
    let role = iam.create_role().role_name("pedidos-fn").assume_role_policy_document(trust).send().await?;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&h.account.config);
    logs.create_log_group().log_group_name("/aws/apigw/pedidos").send().await?;
    let log_arn = format!("arn:aws:logs:us-east-1:{}:log-group:/aws/apigw/pedidos", h.account.id);
    Ok((role.role.map(|r| r.arn).unwrap_or_default(), log_arn))
}

#[tokio::test]
async fn lambda_route_component() -> anyhow::Result<()> {
    let (h, calls, apigw) = harness().await?;
    let lambda = aws_sdk_lambda::Client::new(&h.account.config);
    let (role, log_arn) = outside_resources(&h).await?;
    let dir = h.dir.path();
    let one = ["GET /pedidos/{id}"];
    h.apply(&component_stack(dir, &role, &log_arn, &one)).await?;

    // Independent reads, starting from the API found by name.
    let apis = apigw.get_apis().send().await?;
    let api = apis.items().iter().find(|a| a.name() == Some("pedidos")).unwrap();
    let api_id = api.api_id().unwrap().to_string();
    let function_arn = lambda.get_function().function_name("pedidos-api").send().await?.configuration.and_then(|c| c.function_arn).unwrap();
    let routes = apigw.get_routes().api_id(&api_id).send().await?;
    assert_eq!(routes.items().len(), 1);
    let route = &routes.items()[0];
    assert_eq!(route.route_key(), Some("GET /pedidos/{id}"));
    // The route's target is the integration whose URI is the function.
    let integration_id = route.target().and_then(|t| t.strip_prefix("integrations/")).unwrap();
    let i = apigw.get_integration().api_id(&api_id).integration_id(integration_id).send().await?;
    assert_eq!(i.integration_type(), Some(&IntegrationType::AwsProxy));
    assert_eq!(i.integration_uri(), Some(function_arn.as_str()));
    assert_eq!(i.payload_format_version(), Some("2.0"));
    // API Gateway may invoke the function, from this API only.
    let policy = lambda.get_policy().function_name("pedidos-api").send().await?;
    let doc: serde_json::Value = serde_json::from_str(policy.policy().unwrap_or("{}"))?;
    let statements = doc["Statement"].as_array().cloned().unwrap_or_default();
    assert_eq!(statements.len(), 1, "{doc}");
    let st = &statements[0];
    assert_eq!(st["Principal"]["Service"], "apigateway.amazonaws.com");
    assert_eq!(st["Action"], "lambda:InvokeFunction");
    let execution_arn = format!("arn:aws:execute-api:us-east-1:{}:{api_id}", h.account.id);
    assert_eq!(st["Condition"]["ArnLike"]["AWS:SourceArn"], format!("{execution_arn}/*/*"));
    // The stage.
    let stage = apigw.get_stage().api_id(&api_id).stage_name(DEFAULT_STAGE).send().await?;
    assert_eq!(stage.auto_deploy(), Some(true));
    assert_eq!(stage.access_log_settings().and_then(|l| l.destination_arn()), Some(log_arn.as_str()));
    // The addresses the component promises.
    let state = h.engine().state(STACK).await?;
    for a in ["api/get-pedidos-id/integration", "api/get-pedidos-id/route", "api/get-pedidos-id/permission", "api/stage"] {
        assert!(state.resources.contains_key(a), "{a}: {:?}", state.resources.keys());
    }
    no_op(&h, &calls, &component_stack(dir, &role, &log_arn, &one)).await?;

    // A second route adds its three resources and touches nothing else.
    let two = ["GET /pedidos/{id}", "DELETE /pedidos/{id}"];
    let plan = h.plan(&component_stack(dir, &role, &log_arn, &two)).await?;
    assert_eq!((plan.summary.add, plan.summary.change, plan.summary.destroy), (3, 0, 0), "{}", plan.render(false));
    h.apply(&component_stack(dir, &role, &log_arn, &two)).await?;
    let routes = apigw.get_routes().api_id(&api_id).send().await?;
    let mut keys: Vec<&str> = routes.items().iter().filter_map(|r| r.route_key()).collect();
    keys.sort();
    assert_eq!(keys, ["DELETE /pedidos/{id}", "GET /pedidos/{id}"]);
    let policy = lambda.get_policy().function_name("pedidos-api").send().await?;
    let doc: serde_json::Value = serde_json::from_str(policy.policy().unwrap_or("{}"))?;
    assert_eq!(doc["Statement"].as_array().map(Vec::len), Some(2), "{doc}");
    no_op(&h, &calls, &component_stack(dir, &role, &log_arn, &two)).await?;

    h.destroy(&component_stack(dir, &role, &log_arn, &two)).await?;
    assert!(apigw.get_apis().send().await?.items().iter().all(|a| a.name() != Some("pedidos")));
    assert!(lambda.get_function().function_name("pedidos-api").send().await.is_err());
    Ok(())
}

#[tokio::test]
async fn calls_per_resource_of_a_no_op_plan() -> anyhow::Result<()> {
    let (h, calls, _) = harness().await?;
    let (role, log_arn) = outside_resources(&h).await?;
    let dir = h.dir.path();
    let routes = ["GET /pedidos", "POST /pedidos", "GET /pedidos/{id}"];
    let stack = || component_stack(dir, &role, &log_arn, &routes);
    h.apply(&stack()).await?;
    let resources = h.engine().state(STACK).await?.resources.len();
    // A function, 3 x (integration, route, permission), the API, the stage.
    assert_eq!(resources, 12);

    let reads = no_op(&h, &calls, &stack()).await?;
    let total: usize = reads.values().sum();
    println!("no-op plan of {resources} resources (1 function, 3 lambda routes, API, stage): {total} calls, {reads:?}");
    println!("calls per resource: {:.2}", total as f64 / resources as f64);
    // One GetPolicy for the function's three permissions, one GetIntegrations and one GetRoutes for the API's
    // three integrations and routes; one read for everything else.
    assert_eq!(count(&reads, "GetPolicy"), 1, "{reads:?}");
    assert_eq!(count(&reads, "GetFunction"), 1, "{reads:?}");
    assert_eq!(count(&reads, "GetApi"), 1, "{reads:?}");
    assert_eq!(count(&reads, "GetIntegrations"), 1, "{reads:?}");
    assert_eq!(count(&reads, "GetRoutes"), 1, "{reads:?}");
    assert_eq!(count(&reads, "GetStage"), 1, "{reads:?}");
    assert_eq!(total, 6, "{reads:?}");
    h.destroy(&stack()).await?;
    Ok(())
}

/// An API with every optional setting of each part (`full`), or none of them; `full_stage` keeps the
/// stage's settings either way (moto 5.2.5 has no UpdateStage, so only the plan of their removal can run).
fn defaults_stack(account: &str, full: bool, full_stage: bool) -> Stack {
    let function = format!("arn:aws:lambda:us-east-1:{account}:function:orders");
    let mut s = Stack::new(STACK);
    let api = if full {
        HttpApi::new("defaults").description("d").cors(Cors::any()).disable_execute_api_endpoint(true).tag("team", "a")
    } else {
        HttpApi::new("defaults")
    };
    let api = s.add("api", api);
    // One parameter mapping stays, to show a removed key goes and the others stay.
    let integration = Integration { payload_format_version: None, ..Integration::lambda_uri(api.id(), function) }
        .request_parameter("overwrite:header.x-tenant", "$request.header.tenant");
    let integration = if full {
        integration
            .payload_format_version("2.0")
            .description("i")
            .timeout_in_millis(5000)
            .request_parameter("remove:querystring.debug", "''")
    } else {
        integration
    };
    let integration = s.add("integration", integration);
    let auth = Authorizer::jwt(api.id(), "users", ISSUER, ["client"]);
    let auth = s.add("auth", if full { auth.identity_source(["$request.header.X-Token"]) } else { auth });
    let route = Route::new(api.id(), "GET /orders").integration(&integration);
    s.add("route", if full { route.jwt(auth.id(), ["orders/read"]) } else { route });
    let stage = Stage::new(api.id(), "prod");
    let logs = format!("arn:aws:logs:us-east-1:{account}:log-group:/aws/apigw/defaults");
    let stage = if full_stage {
        stage
            .auto_deploy(true)
            .description("s")
            .variable("backend", "v1")
            .access_log(AccessLog::json(ferroform_core::Arn::literal(logs)))
            .tag("team", "a")
    } else {
        stage
    };
    s.add("stage", stage);
    s
}

#[tokio::test]
async fn removed_settings_go_back_to_defaults() -> anyhow::Result<()> {
    let (h, calls, apigw) = harness().await?;
    let account = h.account.id.clone();
    h.apply(&defaults_stack(&account, true, true)).await?;
    let api_id = h.id_of(&defaults_stack(&account, true, true), "api").await?;
    no_op(&h, &calls, &defaults_stack(&account, true, true)).await?;

    // Every removal is planned, for each part.
    let plan = h.plan(&defaults_stack(&account, false, false)).await?;
    let text = plan.render(false);
    let expect = [
        ("api", &["cors", "description", "disable_execute_api_endpoint", "tags"][..]),
        ("integration", &["description", "payload_format_version", "request_parameters", "timeout_in_millis"]),
        ("auth", &["identity_source"]),
        ("route", &["authorization_scopes", "authorization_type", "authorizer_id"]),
        ("stage", &["access_log", "auto_deploy", "description", "tags", "variables"]),
    ];
    for (address, f) in expect {
        assert_eq!(change(&plan, address), (Action::Update, fields(f)), "{address}:\n{text}");
    }
    for line in [
        r#"timeout_in_millis = 5000 -> 30000"#,
        r#"payload_format_version = "2.0" -> "1.0""#,
        r#"authorization_type = "JWT" -> "NONE""#,
        r#"disable_execute_api_endpoint = true -> false"#,
        r#"variables = {"backend":"v1"} -> null"#,
        r#"- request_parameters["remove:querystring.debug"] = "''""#,
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }

    // Applied (the stage aside), then read back with the SDK: AWS's defaults.
    let bare = defaults_stack(&account, false, true);
    h.apply(&bare).await?;
    let api = apigw.get_api().api_id(&api_id).send().await?;
    assert_eq!(api.description().unwrap_or_default(), "");
    assert_eq!(api.cors_configuration(), None);
    assert_eq!(api.disable_execute_api_endpoint(), Some(false));
    assert!(!api.tags().is_some_and(|t| t.contains_key("team")), "{:?}", api.tags());
    let integration = part(&h.id_of(&bare, "integration").await?);
    let i = apigw.get_integration().api_id(&api_id).integration_id(&integration).send().await?;
    assert_eq!((i.payload_format_version(), i.timeout_in_millis()), (Some("1.0"), Some(30000)));
    assert_eq!(i.description().unwrap_or_default(), "");
    let mapping = i.request_parameters().cloned().unwrap_or_default();
    assert_eq!(mapping.into_iter().collect::<Vec<_>>(), [("overwrite:header.x-tenant".to_string(), "$request.header.tenant".to_string())]);
    let auth = part(&h.id_of(&bare, "auth").await?);
    let a = apigw.get_authorizer().api_id(&api_id).authorizer_id(&auth).send().await?;
    assert_eq!(a.identity_source(), ["$request.header.Authorization"]);
    let route = part(&h.id_of(&bare, "route").await?);
    let r = apigw.get_route().api_id(&api_id).route_id(&route).send().await?;
    assert_eq!(r.authorization_type(), Some(&AuthorizationType::None));
    assert_eq!(r.authorizer_id().unwrap_or_default(), "");
    // (moto keeps the scopes, which UpdateRoute can't clear there; AWS ignores them without JWT.)
    no_op(&h, &calls, &bare).await?;

    // A stage made without its settings reads back as the defaults: no diff.
    let bare = defaults_stack(&account, false, false);
    h.destroy(&defaults_stack(&account, false, true)).await?;
    h.apply(&bare).await?;
    let api_id = h.id_of(&bare, "api").await?;
    let stage = apigw.get_stage().api_id(&api_id).stage_name("prod").send().await?;
    assert_eq!((stage.auto_deploy().unwrap_or(false), stage.description().unwrap_or_default()), (false, ""));
    assert!(stage.stage_variables().is_none_or(|v| v.is_empty()) && stage.access_log_settings().is_none(), "{stage:?}");
    no_op(&h, &calls, &bare).await?;
    h.destroy(&bare).await?;
    Ok(())
}
