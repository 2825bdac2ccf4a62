//! The hello stack applied into an isolated emulator account, the way a deploy goes: the repository first,
//! an image pushed, then everything. Each claim is checked with the service's own read (GetFunction,
//! GetApi, GetRoutes, DescribeAlarms, GetDashboard, ...), not with the engine's report; then a second plan
//! has nothing to do, and destroy leaves nothing of the stack in any service.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use anyhow::Context as _;
use ferroform::aws::iam::{Effect, PolicyDocument};
use ferroform::aws::Aws;
use ferroform::core::{PlanOptions, Stack};
use ferroform_testkit::cbor::CborShim;
use ferroform_testkit::Harness;
use std::collections::{BTreeMap, BTreeSet};

const NAME: &str = "hello";

/// The stack with these variables (and the harness's region for the dashboard).
fn hello(vars: &[(&str, &str)]) -> Stack {
    let mut s = Stack::new("hello");
    s.set_var("region", ferroform_testkit::REGION);
    for (k, v) in vars {
        s.set_var(k, v);
    }
    hello::stack::stack(&mut s).expect("the stack builds");
    s
}

/// What a `docker push` leaves in ECR, without Docker: a manifest under a tag. Real Lambda refuses to create
/// a function from an image that is not in the repository, so the test pushes one before the function is
/// created. (moto does not check: its CreateFunction stubs ECR unless the server runs with
/// MOTO_LAMBDA_STUB_ECR=false, so on the emulator the push is the honest order of steps, not a proof that
/// Lambda could pull the image.)
async fn push_manifest(ecr: &aws_sdk_ecr::Client, repo: &str, tag: &str) -> anyhow::Result<()> {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 2,
            "digest": format!("sha256:{:064x}", tag.len()),
        },
        "layers": [],
    });
    ecr.put_image().repository_name(repo).image_tag(tag).image_manifest(manifest.to_string()).send().await?;
    Ok(())
}

struct Clients {
    lambda: aws_sdk_lambda::Client,
    apigw: aws_sdk_apigatewayv2::Client,
    cw: aws_sdk_cloudwatch::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    ecr: aws_sdk_ecr::Client,
    iam: aws_sdk_iam::Client,
}

fn output(state: &ferroform::core::State, name: &str) -> String {
    let o = state.outputs.get(name).unwrap_or_else(|| panic!("no output {name}"));
    o.value.as_str().unwrap_or_else(|| panic!("output {name} is not a string: {o:?}")).to_string()
}

#[tokio::test]
async fn the_stack_deploys_is_stable_and_destroys_cleanly() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    // The SDK speaks Smithy RPC v2 CBOR to CloudWatch, which moto does not: every client (the engine's and
    // the test's) goes through the testkit's translating shim, which passes the other services through.
    let shim = CborShim::start(&h.account.endpoint).await?;
    let config = h.account.config_via(shim.endpoint());
    h.contexts.insert(Aws::from_config(config.clone()));
    let c = Clients {
        lambda: aws_sdk_lambda::Client::new(&config),
        apigw: aws_sdk_apigatewayv2::Client::new(&config),
        cw: aws_sdk_cloudwatch::Client::new(&config),
        logs: aws_sdk_cloudwatchlogs::Client::new(&config),
        ecr: aws_sdk_ecr::Client::new(&config),
        iam: aws_sdk_iam::Client::new(&config),
    };
    let stack = hello(&[("image_tag", "v1"), ("memory_mb", "512"), ("greeting", "Hola"), ("env", "STAGE=test")]);

    // 1. The repository alone (`apply --target repository`), then the image, then the rest.
    let opts = PlanOptions { targets: vec!["repository".into()], ..PlanOptions::default() };
    h.engine().apply(&stack, &opts).await?;
    let repos = c.ecr.describe_repositories().send().await?;
    let repo = repos.repositories().iter().find(|r| r.repository_name() == Some(NAME)).context("no repository")?;
    let repo_url = repo.repository_uri().context("no repository URI")?.to_string();
    assert!(c.lambda.list_functions().send().await?.functions().is_empty(), "the target left the function for later");
    push_manifest(&c.ecr, NAME, "v1").await?;
    let state = h.apply(&stack).await?;

    // ECR: scan on push, a lifecycle policy keeping the last 10 images.
    let repo = c.ecr.describe_repositories().repository_names(NAME).send().await?.repositories()[0].clone();
    assert_eq!(repo.image_scanning_configuration().map(|s| s.scan_on_push()), Some(true));
    let policy = c.ecr.get_lifecycle_policy().repository_name(NAME).send().await?;
    let policy: serde_json::Value = serde_json::from_str(policy.lifecycle_policy_text().unwrap())?;
    assert_eq!(policy["rules"][0]["selection"]["countType"], "imageCountMoreThan", "{policy}");
    assert_eq!(policy["rules"][0]["selection"]["countNumber"], 10, "{policy}");
    assert_eq!(policy["rules"][0]["action"]["type"], "expire", "{policy}");

    // Lambda: an image function running REPOSITORY_URL:v1, with the configured memory, timeout and env.
    let got = c.lambda.get_function().function_name(NAME).send().await?;
    let config = got.configuration().context("no configuration")?;
    assert_eq!(config.package_type().map(|p| p.as_str()), Some("Image"));
    assert_eq!(got.code().and_then(|c| c.image_uri()), Some(format!("{repo_url}:v1").as_str()));
    assert_eq!((config.memory_size(), config.timeout()), (Some(512), Some(10)));
    let env = config.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    let want: BTreeMap<String, String> =
        [("GREETING", "Hola"), ("RUST_LOG", "info"), ("STAGE", "test")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    assert_eq!(env.into_iter().collect::<BTreeMap<_, _>>(), want);
    assert!(config.runtime().is_none() && config.handler().is_none(), "an image has neither");

    // Its role: assumable by Lambda only, and allowed nothing but writing to its own log group.
    let role_name = config.role().and_then(|arn| arn.rsplit('/').next()).context("no role")?.to_string();
    let role = c.iam.get_role().role_name(&role_name).send().await?;
    let trust = PolicyDocument::parse_aws(role.role().and_then(|r| r.assume_role_policy_document()).unwrap_or_default())
        .map_err(anyhow::Error::msg)?;
    assert!(trust.to_json().contains("lambda.amazonaws.com"), "{}", trust.to_json());
    assert!(c.iam.list_attached_role_policies().role_name(&role_name).send().await?.attached_policies().is_empty());
    let names = c.iam.list_role_policies().role_name(&role_name).send().await?.policy_names().to_vec();
    assert_eq!(names.len(), 1, "{names:?}");
    let doc = c.iam.get_role_policy().role_name(&role_name).policy_name(&names[0]).send().await?;
    let doc = PolicyDocument::parse_aws(doc.policy_document()).map_err(anyhow::Error::msg)?;
    let mut actions = BTreeSet::new();
    for st in &doc.statements {
        assert_eq!(st.effect, Effect::Allow);
        assert!(st.principal.is_none() && st.not_actions.is_empty() && st.not_resources.is_empty(), "{st:?}");
        assert_eq!(st.resources, vec![format!("arn:aws:logs:us-east-1:{}:log-group:/aws/lambda/{NAME}:*", h.account.id)]);
        actions.extend(st.actions.iter().cloned());
    }
    assert_eq!(actions, BTreeSet::from(["logs:CreateLogStream".to_string(), "logs:PutLogEvents".to_string()]));

    // Its log group, with retention.
    let groups = c.logs.describe_log_groups().log_group_name_prefix(format!("/aws/lambda/{NAME}")).send().await?;
    assert_eq!(groups.log_groups().len(), 1);
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(14));

    // The HTTP API: CORS for development origins, the three routes, each a Lambda proxy to the function.
    let apis = c.apigw.get_apis().send().await?;
    assert_eq!(apis.items().len(), 1);
    let api_id = apis.items()[0].api_id().context("no api id")?.to_string();
    let api = c.apigw.get_api().api_id(&api_id).send().await?;
    let cors = api.cors_configuration().context("no CORS")?;
    assert!(cors.allow_origins().iter().any(|o| o == "http://localhost:3000"), "{cors:?}");
    assert!(!cors.allow_origins().iter().any(|o| o == "*"), "development origins, not any: {cors:?}");
    assert!(cors.allow_methods().iter().any(|m| m == "POST"), "{cors:?}");
    assert_eq!(output(&state, "api_url"), api.api_endpoint().unwrap());
    assert_eq!(output(&state, "function_name"), NAME);
    assert_eq!(output(&state, "repository_url"), repo_url);

    let integrations = c.apigw.get_integrations().api_id(&api_id).send().await?;
    let integrations: BTreeMap<String, _> =
        integrations.items().iter().map(|i| (i.integration_id().unwrap_or_default().to_string(), i.clone())).collect();
    let routes = c.apigw.get_routes().api_id(&api_id).send().await?;
    let keys: BTreeSet<&str> = routes.items().iter().filter_map(|r| r.route_key()).collect();
    assert_eq!(keys, BTreeSet::from(["GET /hello", "POST /echo", "GET /health"]));
    let function_arn = config.function_arn().unwrap();
    for route in routes.items() {
        let target = route.target().and_then(|t| t.strip_prefix("integrations/")).context("a route without an integration")?;
        let i = integrations.get(target).with_context(|| format!("{:?} targets a missing integration", route.route_key()))?;
        assert_eq!(i.integration_type().map(|t| t.as_str()), Some("AWS_PROXY"));
        assert_eq!(i.payload_format_version(), Some("2.0"));
        assert!(i.integration_uri().unwrap_or_default().contains(function_arn), "{:?}", i.integration_uri());
    }
    let stages = c.apigw.get_stages().api_id(&api_id).send().await?;
    let stage = stages.items().iter().find(|s| s.stage_name() == Some("$default")).context("no $default stage")?;
    assert_eq!(stage.auto_deploy(), Some(true));
    // API Gateway may invoke the function, from this API only.
    let policy = c.lambda.get_policy().function_name(NAME).send().await?;
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap())?;
    let statements = policy["Statement"].as_array().context("statements")?;
    assert_eq!(statements.len(), 3, "{policy}");
    for st in statements {
        assert_eq!(st["Principal"]["Service"], "apigateway.amazonaws.com", "{st}");
        let source = st["Condition"]["ArnLike"]["AWS:SourceArn"].as_str().unwrap_or_default();
        assert_eq!(source, format!("arn:aws:execute-api:us-east-1:{}:{api_id}/*/*", h.account.id), "{st}");
    }

    // Alarms: metric, dimensions, statistic, threshold.
    let alarms = c.cw.describe_alarms().alarm_name_prefix(format!("{NAME}-")).send().await?;
    let alarms: BTreeMap<&str, _> = alarms.metric_alarms().iter().map(|a| (a.alarm_name().unwrap_or_default(), a)).collect();
    assert_eq!(alarms.keys().copied().collect::<Vec<_>>(), vec!["hello-api-5xx", "hello-errors", "hello-p99-duration"]);
    let dims = |a: &aws_sdk_cloudwatch::types::MetricAlarm| -> Vec<(String, String)> {
        a.dimensions().iter().map(|d| (d.name().unwrap_or_default().into(), d.value().unwrap_or_default().into())).collect()
    };
    let errors = alarms["hello-errors"];
    assert_eq!((errors.namespace(), errors.metric_name()), (Some("AWS/Lambda"), Some("Errors")));
    assert_eq!(dims(errors), vec![("FunctionName".into(), NAME.into())]);
    assert_eq!(errors.statistic().map(|s| s.as_str()), Some("Sum"));
    assert_eq!(errors.threshold(), Some(1.0));
    let p99 = alarms["hello-p99-duration"];
    assert_eq!((p99.namespace(), p99.metric_name()), (Some("AWS/Lambda"), Some("Duration")));
    assert_eq!(dims(p99), vec![("FunctionName".into(), NAME.into())]);
    assert_eq!(p99.extended_statistic(), Some("p99"));
    assert_eq!(p99.statistic(), None);
    assert_eq!(p99.threshold(), Some(1000.0));
    let api_5xx = alarms["hello-api-5xx"];
    assert_eq!((api_5xx.namespace(), api_5xx.metric_name()), (Some("AWS/ApiGateway"), Some("5xx")));
    assert_eq!(dims(api_5xx), vec![("ApiId".into(), api_id.clone())]);
    assert_eq!(api_5xx.threshold(), Some(1.0));
    for a in alarms.values() {
        assert_eq!(a.treat_missing_data(), Some("notBreaching"), "{:?}", a.alarm_name());
    }

    // The dashboard names the function and the API in its graphs.
    let dash = c.cw.get_dashboard().dashboard_name(NAME).send().await?;
    let body: serde_json::Value = serde_json::from_str(dash.dashboard_body().context("no body")?)?;
    let widgets = body["widgets"].as_array().context("widgets")?;
    let metrics: Vec<Vec<String>> =
        widgets.iter().flat_map(|w| w["properties"]["metrics"].as_array().cloned().unwrap_or_default()).map(|m| as_list(&m)).collect();
    for want in [
        ["AWS/Lambda", "Invocations", "FunctionName", NAME],
        ["AWS/Lambda", "Errors", "FunctionName", NAME],
        ["AWS/Lambda", "Duration", "FunctionName", NAME],
        ["AWS/ApiGateway", "Latency", "ApiId", api_id.as_str()],
    ] {
        assert!(metrics.iter().any(|m| m == &want), "{want:?} not in {metrics:?}");
    }
    assert!(widgets.iter().all(|w| w["properties"]["region"] == "us-east-1"));

    // 2. Nothing left to do.
    let plan = h.plan(&stack).await?;
    assert!(!plan.has_changes(), "a second plan has changes:\n{}", plan.render(false));

    // 3. A new image tag and more memory: the function is updated in place, nothing else changes.
    push_manifest(&c.ecr, NAME, "v2").await?;
    let v2 = hello(&[("image_tag", "v2"), ("memory_mb", "1024"), ("greeting", "Hola"), ("env", "STAGE=test")]);
    let plan = h.plan(&v2).await?;
    let changed: Vec<(&str, String)> = plan
        .changes
        .iter()
        .filter(|c| c.action != ferroform::core::Action::NoOp)
        .map(|c| (c.address.as_str(), format!("{:?}", c.action)))
        .collect();
    assert_eq!(changed, vec![("function", "Update".to_string())], "{}", plan.render(false));
    h.apply(&v2).await?;
    let got = c.lambda.get_function().function_name(NAME).send().await?;
    assert_eq!(got.code().and_then(|c| c.image_uri()), Some(format!("{repo_url}:v2").as_str()));
    assert_eq!(got.configuration().and_then(|c| c.memory_size()), Some(1024));
    assert!(!h.plan(&v2).await?.has_changes());

    // 4. Destroy: nothing of the stack is left, in any service (the repository goes with its images).
    h.destroy(&v2).await?;
    assert!(c.lambda.list_functions().send().await?.functions().is_empty());
    assert!(c.ecr.describe_repositories().send().await?.repositories().is_empty());
    assert!(c.apigw.get_apis().send().await?.items().is_empty());
    let groups = c.logs.describe_log_groups().send().await?;
    assert!(groups.log_groups().iter().all(|g| !g.log_group_name().unwrap_or_default().contains(NAME)), "{groups:?}");
    let roles = c.iam.list_roles().send().await?;
    assert!(roles.roles().iter().all(|r| r.role_name() != role_name), "{:?}", roles.roles());
    assert!(c.cw.describe_alarms().send().await?.metric_alarms().is_empty());
    assert!(c.cw.list_dashboards().send().await?.dashboard_entries().is_empty());
    assert!(h.engine().state("hello").await?.resources.is_empty());
    Ok(())
}

/// A JSON string or list of strings as a list.
fn as_list(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().filter_map(|s| s.as_str().map(String::from)).collect(),
        _ => vec![],
    }
}

/// `serve` runs the applied stack: real HTTP -> the front door -> the function's program (this test's `hello`
/// binary, standing in for the image) behind the runtime API, with the deployed environment (the greeting).
#[tokio::test(flavor = "multi_thread")]
async fn hello_serves_locally_over_http() -> anyhow::Result<()> {
    use ferroform::local::client::request;
    use ferroform::local::{Emulator, LocalProgram, ServeOptions};
    let h = Harness::new().await?;
    let shim = CborShim::start(&h.account.endpoint).await?;
    let config = h.account.config_via(shim.endpoint());
    h.contexts.insert(Aws::from_config(config.clone()));
    let ecr = aws_sdk_ecr::Client::new(&config);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let stack = hello(&[("image_tag", "v1"), ("greeting", "Hola")]);
    ferroform::local::function("function", LocalProgram::command(env!("CARGO_BIN_EXE_hello"), &[]));
    let opts = PlanOptions { targets: vec!["repository".into()], ..PlanOptions::default() };
    h.engine().apply(&stack, &opts).await?;
    push_manifest(&ecr, NAME, "v1").await?;
    let state = h.apply(&stack).await?;

    let emulator = Emulator::new(config.clone(), h.account.env())?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let served =
        ferroform::local::start(&stack, &state, &emulator, &ServeOptions { port: 0, max_instances: 2, jwks: None }, stopped.clone())
            .await?;
    let url = served.url("api").context("the API is served")?;

    let r = request(&url, "GET", "/hello", &[], None).await?;
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"message": "Hola, World!"})), "{}", r.body);
    let r = request(&url, "GET", "/hello?name=Ana", &[], None).await?;
    assert_eq!(r.json()["message"], "Hola, Ana!", "{}", r.body);
    let body = r#"{"n": 12345678901234567890, "s": "é"}"#;
    let r = request(&url, "POST", "/echo", &[("content-type", "application/json")], Some(body)).await?;
    assert_eq!((r.status, r.body.as_str()), (200, body));
    let r = request(&url, "GET", "/health", &[], None).await?;
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"status": "ok"})));
    // A preflight from a development origin, answered by the gateway from the API's CORS configuration.
    let preflight = [
        ("origin", "http://localhost:5173"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    let r = request(&url, "OPTIONS", "/echo", &preflight, None).await?;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("http://localhost:5173"));
    let r = request(&url, "GET", "/nope", &[], None).await?;
    assert_eq!((r.status, r.body.as_str()), (404, r#"{"message":"Not Found"}"#));

    // The function's output reached its log group (read back with GetLogEvents).
    let group = aws_sdk_lambda::Client::new(&config)
        .get_function_configuration()
        .function_name(NAME)
        .send()
        .await?
        .logging_config
        .and_then(|l| l.log_group)
        .unwrap_or_else(|| format!("/aws/lambda/{NAME}"));
    let mut lines: Vec<String> = Vec::new();
    for _ in 0..100 {
        lines.clear();
        let streams = logs.describe_log_streams().log_group_name(&group).send().await?;
        for s in streams.log_streams() {
            let events =
                logs.get_log_events().log_group_name(&group).log_stream_name(s.log_stream_name().unwrap_or_default()).send().await?;
            lines.extend(events.events().iter().filter_map(|e| e.message().map(String::from)));
        }
        if lines.iter().any(|l| l.starts_with("END RequestId")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(lines.iter().any(|l| l.starts_with("START RequestId")), "{group}: {lines:?}");

    stop.send(true)?;
    served.wait(stopped).await;
    Ok(())
}
