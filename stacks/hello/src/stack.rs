//! The hello stack: `cargo run --example hello -- plan|apply|destroy [--var NAME=VALUE ...]`.
//!
//! | address             | what                                                                          |
//! |---------------------|-------------------------------------------------------------------------------|
//! | `repository`        | ECR repository `NAME`: scan on push, keeps the last `keep_images` images      |
//! | `logs`              | log group `/aws/lambda/NAME` with `log_retention_days`                         |
//! | `role`              | the function's role: writes to that log group, nothing else                    |
//! | `function`          | Lambda `NAME` from the image `REPOSITORY_URL:image_tag`                        |
//! | `api`, `api/...`    | HTTP API with CORS for local development origins, `$default` stage, 3 routes   |
//! | `alarms/...`        | function errors, function p99 duration, API 5xx                               |
//! | `dashboard`         | invocations, errors, duration, API latency and 4xx/5xx                         |
//!
//! Variables (`--var name=value` or `FF_VAR_name`), all optional:
//!
//! | variable             | default   |                                                                  |
//! |----------------------|-----------|------------------------------------------------------------------|
//! | `name`               | `hello`   | the repository, function and API name                           |
//! | `image_tag`          | `latest`  | the tag the function runs (push it before `apply`)               |
//! | `memory_mb`          | `256`     | 128 to 10240                                                    |
//! | `timeout_seconds`    | `10`      | 1 to 900; API Gateway gives up after 30 s anyway                |
//! | `greeting`           | `Hello`   | the function's `GREETING`                                       |
//! | `log_level`          | `info`    | the function's `RUST_LOG`                                       |
//! | `env`                |           | more environment, `KEY=VALUE,KEY2=VALUE2`                       |
//! | `secret_env`         |           | more environment like `env`, values plans never show (`(sensitive)`) |
//! | `log_retention_days` | `14`      | a value CloudWatch accepts (1, 3, 5, 7, 14, 30, ...)             |
//! | `keep_images`        | `10`      | images the lifecycle policy keeps                               |
//! | `cors_origins`       | dev URLs  | comma-separated; [`DEV_ORIGINS`] unless set                      |
//! | `protect_images`     | `false`   | `true`: `destroy` refuses to delete the repository (and its images) |
//! | `region`             | `AWS_REGION` | the region the dashboard's graphs read (where the stack is deployed) |
//! | `errors_threshold`   | `1`       | function errors in a minute that raise the alarm                 |
//! | `p99_duration_ms`    | `1000`    | p99 duration over 5 minutes that raises the alarm               |
//! | `api_5xx_threshold`  | `1`       | API 5xx answers in a minute that raise the alarm                |
//! | `alarm_topic_arn`    |           | notified when an alarm goes off and back (an SNS topic)          |
//! | `permissions_boundary` |         | a managed policy ARN set as the role's permissions boundary      |
//!
//! Outputs: `api_url`, `function_name`, `repository_url`.

use ferroform::aws::apigatewayv2::{Cors, HttpApi};
use ferroform::aws::cloudwatch::{Comparison, Dashboard, DashboardBody, MetricAlarm, Statistic, TreatMissingData};
use ferroform::aws::components::http_api;
use ferroform::aws::ecr::Repository;
use ferroform::aws::iam::Role;
use ferroform::aws::lambda::{Code, Function};
use ferroform::aws::logs::LogGroup;
use ferroform::local::LocalProgram;
use ferroform::prelude::*;
use std::collections::BTreeMap;
use std::str::FromStr;

/// Origins a browser app under development runs on (create-react-app/Next.js, Vite, and the usual others).
pub const DEV_ORIGINS: &[&str] =
    &["http://localhost:3000", "http://localhost:5173", "http://localhost:8080", "http://127.0.0.1:3000", "http://127.0.0.1:5173"];

/// The routes the function answers; API Gateway itself answers 404 for any other.
pub const ROUTES: &[&str] = &["GET /hello", "POST /echo", "GET /health"];

/// The stack's variables, read and checked once.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub name: String,
    pub image_tag: String,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub environment: BTreeMap<String, String>,
    /// Environment whose values plans (and so the pipeline's pull-request comments) show as `(sensitive)`.
    pub secret_environment: BTreeMap<String, String>,
    pub log_retention_days: i32,
    pub keep_images: i64,
    pub cors_origins: Vec<String>,
    pub protect_images: bool,
    pub region: String,
    pub errors_threshold: f64,
    pub p99_duration_ms: f64,
    pub api_5xx_threshold: f64,
    pub alarm_topic_arn: Option<String>,
}

impl Settings {
    pub fn from_stack(s: &Stack) -> Result<Self> {
        let mut environment = pairs(s, "env")?;
        environment.insert("GREETING".into(), s.var_or("greeting", "Hello"));
        environment.insert("RUST_LOG".into(), s.var_or("log_level", "info"));
        let cors_origins = match s.var("cors_origins") {
            Some(list) => list.split(',').map(str::trim).filter(|o| !o.is_empty()).map(String::from).collect(),
            None => DEV_ORIGINS.iter().map(|o| o.to_string()).collect(),
        };
        Ok(Settings {
            name: s.var_or("name", "hello"),
            image_tag: s.var_or("image_tag", "latest"),
            memory_mb: parsed(s, "memory_mb", 256)?,
            timeout_seconds: parsed(s, "timeout_seconds", 10)?,
            environment,
            secret_environment: pairs(s, "secret_env")?,
            log_retention_days: parsed(s, "log_retention_days", 14)?,
            keep_images: parsed(s, "keep_images", 10)?,
            cors_origins,
            protect_images: parsed(s, "protect_images", false)?,
            // The region the AWS SDK (and so the engine) deploys to, unless told otherwise.
            region: s
                .var("region")
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .unwrap_or_else(|| "us-east-1".to_string()),
            errors_threshold: parsed(s, "errors_threshold", 1.0)?,
            p99_duration_ms: parsed(s, "p99_duration_ms", 1000.0)?,
            api_5xx_threshold: parsed(s, "api_5xx_threshold", 1.0)?,
            alarm_topic_arn: s.var("alarm_topic_arn").filter(|a| !a.trim().is_empty()),
        })
    }
}

/// `KEY=VALUE,KEY2=VALUE2` from a variable (empty when unset). Values never appear in the error: a
/// `secret_env` value must not reach a log.
fn pairs(s: &Stack, name: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (i, pair) in s.var(name).unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
        let (k, v) = pair.split_once('=').with_context(|| format!("var {name}: item {} is not KEY=VALUE", i + 1))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// A variable parsed as `T`, or `default` when unset. Ranges are checked by the resources' validation.
fn parsed<T: FromStr>(s: &Stack, name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match s.var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e| anyhow::anyhow!("var {name}: `{v}`: {e}")),
    }
}

pub fn stack(s: &mut Stack) -> Result<()> {
    let cfg = Settings::from_stack(s)?;
    s.default_tag("app", "hello");

    // Destroying a dev stack takes its images along unless protected; a protected repository also keeps
    // `destroy` from deleting it at all.
    let repo = s.add_with(
        "repository",
        Repository::new(&cfg.name).scan_on_push(true).keep_last(cfg.keep_images).force_delete(!cfg.protect_images),
        Options::new().prevent_destroy(cfg.protect_images),
    );

    let logs = s.add("logs", LogGroup::new(format!("/aws/lambda/{}", cfg.name)).retention_days(cfg.log_retention_days));
    // Only log writes: the group exists already (created above), so no logs:CreateLogGroup either.
    let role = s.add(
        "role",
        Role::for_service("lambda.amazonaws.com")
            .description(format!("the {} function: writes its logs", cfg.name))
            .allow(["logs:CreateLogStream", "logs:PutLogEvents"], [format!("{}:*", logs.arn())])
            .with_stack_boundary(s),
    );

    let mut function = Function::new(&cfg.name)
        .description("hello: GET /hello, POST /echo, GET /health")
        .code(Code::image(format!("{}:{}", repo.repository_url(), cfg.image_tag)))
        .role(role.arn())
        .memory_size(cfg.memory_mb)
        .timeout(cfg.timeout_seconds)
        .log_group(logs.name());
    for (k, v) in &cfg.environment {
        function = function.env(k, v);
    }
    // Plans show these as `(sensitive)`; `check` still flags one that looks like a credential (FF-LAMBDA-001:
    // keep those in Secrets Manager and pass the secret's name).
    for (k, v) in &cfg.secret_environment {
        function = function.secret_env(k, v);
    }
    let function = s.add("function", function);
    // `serve` runs the image's handler as the `hello` binary built for this machine.
    ferroform::local::function(function.address(), LocalProgram::cargo_bin("hello").package("hello"));

    let api = s.add(
        "api",
        HttpApi::new(&cfg.name).description("hello").cors(
            Cors::builder()
                .origins(cfg.cors_origins.iter().cloned())
                .methods(["GET", "POST", "OPTIONS"])
                .headers(["content-type", "authorization"])
                .max_age(300),
        ),
    );
    http_api::default_stage(s, &api, None);
    for route in ROUTES {
        api.lambda_route(s, route, &function);
    }

    // Observability. No traffic is not a problem: missing data counts as fine.
    let alarm = |name: &str, namespace: &str, metric: &str| {
        let mut a = MetricAlarm::new(format!("{}-{name}", cfg.name), namespace, metric).treat_missing_data(TreatMissingData::NotBreaching);
        if let Some(topic) = &cfg.alarm_topic_arn {
            a = a.alarm_action(topic).ok_action(topic);
        }
        a
    };
    s.scope("alarms", |s| {
        s.add(
            "errors",
            alarm("errors", "AWS/Lambda", "Errors")
                .description("the function failed (an error or a timeout, not an HTTP 4xx)")
                .dimension("FunctionName", function.name())
                .statistic(Statistic::Sum)
                .period(60)
                .threshold(cfg.errors_threshold)
                .comparison(Comparison::GreaterThanOrEqualToThreshold),
        );
        s.add(
            "p99-duration",
            alarm("p99-duration", "AWS/Lambda", "Duration")
                .description("the slowest 1% of invocations take longer than the threshold (ms)")
                .dimension("FunctionName", function.name())
                .extended_statistic("p99")
                .period(300)
                .threshold(cfg.p99_duration_ms)
                .comparison(Comparison::GreaterThanThreshold),
        );
        s.add(
            "api-5xx",
            alarm("api-5xx", "AWS/ApiGateway", "5xx")
                .description("the API answered 5xx (the function failed, timed out or could not be invoked)")
                .dimension("ApiId", api.id())
                .statistic(Statistic::Sum)
                .period(60)
                .threshold(cfg.api_5xx_threshold)
                .comparison(Comparison::GreaterThanOrEqualToThreshold),
        );
    });

    let f = String::from(function.name());
    let api_id = String::from(api.id());
    let body = DashboardBody::new(&cfg.region)
        .metric_widget("Invocations", [["AWS/Lambda", "Invocations", "FunctionName", f.as_str()]], Statistic::Sum, 60)
        .metric_widget(
            "Errors and throttles",
            [["AWS/Lambda", "Errors", "FunctionName", f.as_str()], ["AWS/Lambda", "Throttles", "FunctionName", f.as_str()]],
            Statistic::Sum,
            60,
        )
        .metric_widget("Duration p99 (ms)", [["AWS/Lambda", "Duration", "FunctionName", f.as_str()]], "p99", 60)
        .metric_widget("API latency p99 (ms)", [["AWS/ApiGateway", "Latency", "ApiId", api_id.as_str()]], "p99", 60)
        .metric_widget(
            "API 4xx and 5xx",
            [["AWS/ApiGateway", "4xx", "ApiId", api_id.as_str()], ["AWS/ApiGateway", "5xx", "ApiId", api_id.as_str()]],
            Statistic::Sum,
            60,
        );
    s.add("dashboard", Dashboard::new(&cfg.name, body));

    // `check` exceptions (docs/check.md): what this example accepts, and why.
    s.allow(
        "repository",
        "FF-ECR-002",
        "image_tag defaults to `latest`, pushed again by hand (README); the pipeline pushes one tag per commit SHA",
    );
    s.allow(
        "api/stage",
        "FF-APIGW-001",
        "the smallest example: the function logs every request in its own log group; pedidos shows a stage with access logs",
    );
    if cfg.alarm_topic_arn.is_none() {
        for alarm in ["alarms/errors", "alarms/p99-duration", "alarms/api-5xx"] {
            s.allow(
                alarm,
                "FF-CW-001",
                "no alarm_topic_arn given: the alarms show on the dashboard only (--var alarm_topic_arn=ARN to be told)",
            );
        }
    }

    s.output("api_url", api.endpoint());
    s.output("function_name", function.name());
    s.output("repository_url", repo.repository_url());
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Stack {
        let mut s = Stack::new("hello");
        s.set_var("region", "eu-west-1");
        for (k, v) in vars {
            s.set_var(k, v);
        }
        s
    }

    #[test]
    fn defaults_and_overrides() {
        let d = Settings::from_stack(&with(&[])).unwrap();
        assert_eq!((d.name.as_str(), d.image_tag.as_str(), d.memory_mb, d.timeout_seconds), ("hello", "latest", 256, 10));
        assert_eq!(d.environment.get("GREETING").map(String::as_str), Some("Hello"));
        assert_eq!(d.cors_origins.len(), DEV_ORIGINS.len());
        assert!(!d.protect_images);
        let o = Settings::from_stack(&with(&[
            ("image_tag", "abc123"),
            ("memory_mb", "1024"),
            ("env", "A=1, B = two ,"),
            ("cors_origins", "https://app.example.com"),
            ("protect_images", "true"),
        ]))
        .unwrap();
        assert_eq!((o.image_tag.as_str(), o.memory_mb), ("abc123", 1024));
        assert_eq!(o.environment.get("A").map(String::as_str), Some("1"));
        assert_eq!(o.environment.get("B").map(String::as_str), Some("two"));
        assert_eq!(o.cors_origins, vec!["https://app.example.com"]);
        assert!(o.protect_images);
        let secret = Settings::from_stack(&with(&[("secret_env", "SIGNING_SALT=s3cr3t-salt")])).unwrap();
        assert_eq!(secret.secret_environment.get("SIGNING_SALT").map(String::as_str), Some("s3cr3t-salt"));
        assert!(!secret.environment.contains_key("SIGNING_SALT"));
    }

    #[test]
    fn bad_variables_are_named() {
        for (k, v) in
            [("memory_mb", "lots"), ("timeout_seconds", "1.5"), ("protect_images", "yes"), ("env", "NOEQUALS"), ("secret_env", "NOEQUALS")]
        {
            let err = Settings::from_stack(&with(&[(k, v)])).unwrap_err().to_string();
            assert!(err.contains(k), "{k}={v}: {err}");
            assert!(k != "secret_env" || !err.contains(v), "a secret_env value in an error: {err}");
        }
    }

    #[test]
    fn the_stack_declares_everything_with_the_tag_in_the_image_uri() {
        let mut s = with(&[("image_tag", "v7")]);
        stack(&mut s).unwrap();
        let decl = |a: &str| s.resources().iter().find(|d| d.address == a).map(|d| d.inputs.clone()).unwrap_or_else(|| panic!("{a}"));
        assert_eq!(decl("function")["code"]["image"]["uri"], "\u{e000}${ref:repository.repository_url}:v7");
        assert_eq!(decl("alarms/api-5xx")["dimensions"]["ApiId"], "\u{e000}${ref:api.id}");
        for route in ["get-hello", "post-echo", "get-health"] {
            decl(&format!("api/{route}/route"));
            decl(&format!("api/{route}/permission"));
        }
        let body = decl("dashboard")["body"].to_string();
        assert!(body.contains("\u{e000}${ref:function.name}") && body.contains("eu-west-1"), "{body}");
        assert_eq!(s.resources().len(), 19);
    }
}
