//! Issue 14's "done when": the pedidos command line (`cargo run --example pedidos -- ...`), run in-process
//! with the real argument parsing, for each option set: none, JWT (`jwt_issuer` + `jwt_audience`),
//! `auth=iam`, `alarm_email`. Each in its own account: `apply` -> `plan --detailed-exitcode` exits 0 (no
//! changes) -> SDK reads (each route's authorization and scopes, or AWS_IAM and the callers' policy; every
//! alarm's ALARM and OK actions to the topic; the metric filter on the worker's log group; the
//! subscription) -> `destroy` -> nothing of any pedidos type is left.
//!
//! The program is examples/pedidos.rs but for the API's code: the test's stand-in binary instead of a
//! release build for Lambda (the emulator never runs it), through the same `Config::with_vars` and
//! `pedidos::stack::build` that `pedidos::stack::stack` uses.

use crate::pedidos_stack::{fake_binary, inventory};
use aws_types::SdkConfig;
use ferroform_aws::lambda::Code;
use ferroform_aws::Aws;
use ferroform_core::{Contexts, Stack};
use ferroform_testkit::cbor::CborShim;
use ferroform_testkit::Harness;
use pedidos::auth::{READ_SCOPE, WRITE_SCOPE};
use pedidos::stack::{Config, ROUTES};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

const ISSUER: &str = "https://issuer.example.com";
const AUDIENCE: &str = "pedidos-app";
const EMAIL: &str = "ops@example.com";

/// The option sets: a label and the `--var`s.
const OPTIONS: &[(&str, &[&str])] = &[
    ("none", &[]),
    ("jwt", &["jwt_issuer=https://issuer.example.com", "jwt_audience=pedidos-app"]),
    ("iam", &["auth=iam"]),
    ("alarm_email", &["alarm_email=ops@example.com"]),
];

/// `pedidos ARGS --var ...` in this process, against `config`'s account, state in `state`.
fn pedidos(config: &SdkConfig, state: &Path, command: &[&str], vars: &[&str], code: &Path) -> ExitCode {
    let contexts = Contexts::new();
    contexts.insert(Aws::from_config(config.clone()));
    let mut argv = vec!["pedidos".to_string(), "--state".into(), state.display().to_string(), "--no-color".into()];
    argv.extend(command.iter().map(|a| a.to_string()));
    for v in vars {
        argv.extend(["--var".to_string(), v.to_string()]);
    }
    let code = code.to_path_buf();
    ferroform_cli::Cli::new("pedidos").registry(ferroform_aws::registry()).contexts(contexts).run_from(argv, move |s: &mut Stack| {
        let cfg = Config::new(Code::binary(&code)).with_vars(s)?;
        pedidos::stack::build(s, &cfg)
    })
}

/// One option set, start to end, in a fresh account.
fn deploy_check_destroy(label: &str, vars: &[&str]) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let (h, shim) = rt.block_on(async {
        let h = Harness::new().await?;
        // pedidos' monitoring speaks CBOR to CloudWatch, which the emulator does not: the shim translates and
        // passes every other call through.
        let shim = CborShim::start(&h.account.endpoint).await?;
        anyhow::Ok((h, shim))
    })?;
    let config = h.account.config_via(shim.endpoint());
    let code = fake_binary(h.dir.path())?;
    let state = h.state_path();

    assert_eq!(pedidos(&config, &state, &["apply", "--auto-approve"], vars, &code), ExitCode::SUCCESS, "{label}: apply");
    assert_eq!(pedidos(&config, &state, &["plan", "--detailed-exitcode"], vars, &code), ExitCode::SUCCESS, "{label}: changes after apply");
    rt.block_on(check_deployed(&config, label))?;

    assert_eq!(pedidos(&config, &state, &["destroy", "--auto-approve"], vars, &code), ExitCode::SUCCESS, "{label}: destroy");
    let left: BTreeMap<_, _> = rt.block_on(inventory(&config, "pedidos"))?.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(left.is_empty(), "{label}: left behind by destroy: {left:?}");
    drop(shim);
    Ok(())
}

/// What `label`'s options deploy, read with the SDK (not from the state).
async fn check_deployed(config: &SdkConfig, label: &str) -> anyhow::Result<()> {
    let apigw = aws_sdk_apigatewayv2::Client::new(config);
    let apis = apigw.get_apis().send().await?;
    assert_eq!(apis.items().len(), 1, "{label}: {apis:?}");
    let api_id = apis.items()[0].api_id().unwrap_or_default().to_string();
    let routes = apigw.get_routes().api_id(&api_id).send().await?;
    let mut keys: Vec<&str> = routes.items().iter().filter_map(|r| r.route_key()).collect();
    keys.sort();
    let mut want = ROUTES.to_vec();
    want.sort();
    assert_eq!(keys, want, "{label}");
    for r in routes.items() {
        let key = r.route_key().unwrap_or_default();
        let kind = r.authorization_type().map(|t| t.as_str().to_string()).unwrap_or_else(|| "NONE".into());
        match label {
            "jwt" => {
                assert_eq!(kind, "JWT", "{key}");
                let authorizer_id = r.authorizer_id().unwrap_or_default();
                let a = apigw.get_authorizer().api_id(&api_id).authorizer_id(authorizer_id).send().await?;
                let jwt = a.jwt_configuration().expect("a JWT authorizer");
                assert_eq!((jwt.issuer(), jwt.audience()), (Some(ISSUER), &[AUDIENCE.to_string()][..]), "{key}");
                let scope = if key.starts_with("GET ") { READ_SCOPE } else { WRITE_SCOPE };
                assert_eq!(r.authorization_scopes(), [scope.to_string()], "{key}");
            }
            "iam" => assert_eq!(kind, "AWS_IAM", "{key}"),
            _ => assert_eq!(kind, "NONE", "{label}: {key}"),
        }
    }

    // The callers' policy (auth=iam only): execute-api:Invoke on exactly the API's five routes.
    let iam = aws_sdk_iam::Client::new(config);
    let policies = iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).send().await?;
    let invoke: Vec<_> = policies.policies().iter().filter(|p| p.policy_name() == Some("pedidos-invoke")).collect();
    if label == "iam" {
        assert_eq!(invoke.len(), 1, "{policies:?}");
        let version = iam
            .get_policy_version()
            .policy_arn(invoke[0].arn().unwrap_or_default())
            .version_id(invoke[0].default_version_id().unwrap_or_default())
            .send()
            .await?;
        let text = version.policy_version().and_then(|v| v.document()).unwrap_or_default();
        let text = percent_decode(text);
        let doc: serde_json::Value = serde_json::from_str(&text)?;
        let statements = doc["Statement"].as_array().cloned().unwrap_or_default();
        assert_eq!(statements.len(), 1, "{doc}");
        let st = &statements[0];
        assert_eq!(strings(&st["Action"]), ["execute-api:Invoke"], "{doc}");
        let mut resources = strings(&st["Resource"]);
        resources.sort();
        let mut want: Vec<String> = ROUTES
            .iter()
            .map(|r| {
                let (method, path) = r.split_once(' ').unwrap_or_default();
                // A path parameter is any one segment: `*` in execute-api ARNs.
                let path: Vec<&str> = path.split('/').map(|seg| if seg.starts_with('{') { "*" } else { seg }).collect();
                let path = path.join("/");
                format!("arn:aws:execute-api:us-east-1:{}:{api_id}/*/{method}{path}", account_of(invoke[0].arn().unwrap_or_default()))
            })
            .collect();
        want.sort();
        assert_eq!(resources, want, "{doc}");
    } else {
        assert!(invoke.is_empty(), "{label}: no callers' policy without auth=iam");
    }

    // Every alarm tells the topic both ways; the subscription with alarm_email only.
    let sns = aws_sdk_sns::Client::new(config);
    let topics = sns.list_topics().send().await?;
    assert_eq!(topics.topics().len(), 1, "{label}: {topics:?}");
    let topic = topics.topics()[0].topic_arn().unwrap_or_default().to_string();
    assert!(topic.ends_with(":pedidos-alarms"), "{topic}");
    let cw = aws_sdk_cloudwatch::Client::new(config);
    let alarms = cw.describe_alarms().send().await?;
    assert_eq!(alarms.metric_alarms().len(), 8, "{label}: {alarms:?}");
    for a in alarms.metric_alarms() {
        assert_eq!(a.alarm_actions(), std::slice::from_ref(&topic), "{label}: {:?}", a.alarm_name());
        assert_eq!(a.ok_actions(), std::slice::from_ref(&topic), "{label}: {:?}", a.alarm_name());
    }
    let subs = sns.list_subscriptions_by_topic().topic_arn(&topic).send().await?;
    let subs: Vec<(&str, &str)> =
        subs.subscriptions().iter().map(|s| (s.protocol().unwrap_or_default(), s.endpoint().unwrap_or_default())).collect();
    if label == "alarm_email" {
        assert_eq!(subs, [("email", EMAIL)]);
    } else {
        assert!(subs.is_empty(), "{label}: {subs:?}");
    }

    // The metric filter is on the group the worker's task definition logs to.
    let ecs = aws_sdk_ecs::Client::new(config);
    let families = ecs.list_task_definitions().send().await?;
    assert_eq!(families.task_definition_arns().len(), 1, "{label}: {families:?}");
    let td = ecs.describe_task_definition().task_definition(&families.task_definition_arns()[0]).send().await?;
    let worker_group = td
        .task_definition()
        .and_then(|t| t.container_definitions().first())
        .and_then(|c| c.log_configuration())
        .and_then(|l| l.options())
        .and_then(|o| o.get("awslogs-group").cloned())
        .expect("the worker logs to a group");
    let logs = aws_sdk_cloudwatchlogs::Client::new(config);
    let filters = logs.describe_metric_filters().send().await?;
    let groups: Vec<&str> = filters.metric_filters().iter().filter_map(|f| f.log_group_name()).collect();
    assert!(!groups.is_empty() && groups.iter().all(|g| *g == worker_group), "{label}: {groups:?} vs {worker_group}");
    Ok(())
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        _ => vec![],
    }
}

/// `arn:aws:iam::ACCOUNT:policy/NAME`'s account.
fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// IAM returns policy documents URL-encoded (`%7B...`); a document already JSON is kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every option set, at once (each in its own account and thread: the command line starts its own
/// runtime); prints how long it took.
#[test]
fn pedidos_example_deploys_with_each_option_then_no_changes_then_destroys_to_nothing() {
    let started = std::time::Instant::now();
    let results: Vec<(&str, anyhow::Result<()>)> = std::thread::scope(|scope| {
        let runs: Vec<_> = OPTIONS.iter().map(|(label, vars)| (*label, scope.spawn(move || deploy_check_destroy(label, vars)))).collect();
        runs.into_iter().map(|(label, run)| (label, run.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panicked"))))).collect()
    });
    for (label, r) in results {
        if let Err(e) = r {
            panic!("pedidos with {label}: {e:#}");
        }
    }
    eprintln!("pedidos example: {} option sets applied, checked and destroyed in {:.1}s", OPTIONS.len(), started.elapsed().as_secs_f64());
}
