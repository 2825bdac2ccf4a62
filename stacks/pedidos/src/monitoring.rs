//! pedidos' monitoring: CloudWatch alarms on the API, its function, the worker and the table, each sending its
//! ALARM and OK transitions to one SNS topic (optionally mailed or posted on), the worker's failed or rejected
//! orders counted from its log group by a metric filter, and a dashboard of all four.
//!
//! Part of what [`crate::stack::build`] declares (so of every deploy of pedidos), over the addresses it gives
//! the API, its function, the worker's log group and the table; settings in [`crate::stack::Config::monitoring`].
//!
//! | address                       | alarm when (per 5 minutes unless said)                  | variable (default)               |
//! |-------------------------------|---------------------------------------------------------|----------------------------------|
//! | `monitoring/api-5xx`          | the API answered 5xx at least N times                   | `alarm_api_5xx` (5)              |
//! | `monitoring/api-p99-latency`  | the API's p99 latency is over N ms, 3 periods running   | `alarm_api_p99_ms` (2000)        |
//! | `monitoring/function-errors`  | the function failed at least N times                    | `alarm_function_errors` (5)      |
//! | `monitoring/function-throttles` | the function was throttled at least N times           | `alarm_function_throttles` (1)   |
//! | `monitoring/function-p99-duration` | the function's p99 duration is over N ms, 3 periods | `alarm_function_p99_ms` (10000) |
//! | `monitoring/worker-failures`  | the worker logged at least N failed or rejected orders  | `alarm_worker_failures` (1)      |
//! | `monitoring/table-read-throttles`, `-write-throttles` | the table throttled at least N requests | `alarm_table_throttles` (1) |
//!
//! `monitoring/topic` (SNS `NAME-alarms`, output `alarm_topic_arn`) receives them all; `--var alarm_email=ADDRESS`
//! and `--var alarm_https=URL` subscribe to it (`monitoring/email`, `monitoring/https`; each confirms by the
//! message SNS sends first). No traffic is not a problem: missing data counts as fine.

use crate::stack::Config;
use ferroform::aws::apigatewayv2::HttpApiRefs;
use ferroform::aws::cloudwatch::{Comparison, Dashboard, DashboardBody, MetricAlarm, Statistic, TreatMissingData};
use ferroform::aws::dynamodb::TableRefs;
use ferroform::aws::lambda::FunctionRefs;
use ferroform::aws::logs::{LogGroupRefs, MetricFilter};
use ferroform::aws::sns::{Subscription, Topic};
use ferroform::prelude::*;
use ferroform::FromAddress;

/// What the worker logs for an order it could not process (`ERROR`) or turned down (`status="REJECTED"`):
/// see `src/bin/pedidos-worker.rs`. Either word anywhere in the event counts it.
pub const WORKER_FAILURE_PATTERN: &str = "?ERROR ?REJECTED";

/// The metric the worker's failures are counted into, in the namespace named after the stack (`Config::name`).
pub const WORKER_FAILURES_METRIC: &str = "WorkerFailures";

/// The addresses [`crate::stack::build`] gives what is watched.
pub const API: &str = "api";
pub const FUNCTION: &str = "function";
pub const WORKER_LOGS: &str = "worker/logs";
pub const TABLE: &str = "table";

/// Alarm thresholds, from the `alarm_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub api_5xx: f64,
    pub api_p99_ms: f64,
    pub function_errors: f64,
    pub function_throttles: f64,
    pub function_p99_ms: f64,
    pub worker_failures: f64,
    pub table_throttles: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            api_5xx: 5.0,
            api_p99_ms: 2000.0,
            function_errors: 5.0,
            function_throttles: 1.0,
            // Two thirds of the function's 15-second timeout.
            function_p99_ms: 10_000.0,
            worker_failures: 1.0,
            table_throttles: 1.0,
        }
    }
}

/// The monitoring's settings: thresholds and the topic's subscriptions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Monitoring {
    pub thresholds: Thresholds,
    /// `alarm_email`: an address subscribed to the topic.
    pub email: Option<String>,
    /// `alarm_https`: a URL subscribed to the topic.
    pub https: Option<String>,
}

impl Monitoring {
    /// From the `alarm_*` variables.
    pub fn from_stack(s: &Stack) -> Result<Self> {
        let given = |var: &str| s.var(var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        Ok(Monitoring { thresholds: Thresholds::from_stack(s)?, email: given("alarm_email"), https: given("alarm_https") })
    }
}

impl Thresholds {
    pub fn from_stack(s: &Stack) -> Result<Self> {
        let mut t = Self::default();
        for (var, field) in [
            ("alarm_api_5xx", &mut t.api_5xx),
            ("alarm_api_p99_ms", &mut t.api_p99_ms),
            ("alarm_function_errors", &mut t.function_errors),
            ("alarm_function_throttles", &mut t.function_throttles),
            ("alarm_function_p99_ms", &mut t.function_p99_ms),
            ("alarm_worker_failures", &mut t.worker_failures),
            ("alarm_table_throttles", &mut t.table_throttles),
        ] {
            if let Some(text) = s.var(var) {
                *field = text
                    .trim()
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .with_context(|| format!("var {var}: `{text}` is not a number"))?;
            }
        }
        Ok(t)
    }
}

/// Declares the monitoring of what [`crate::stack::build`] declared, under `monitoring/` (`build` calls it).
pub(crate) fn declare(s: &mut Stack, cfg: &Config) {
    let t = &cfg.monitoring.thresholds;
    let (email, https) = (cfg.monitoring.email.clone(), cfg.monitoring.https.clone());
    let name = cfg.name.as_str();
    let api = HttpApiRefs::from_address(API);
    let function = FunctionRefs::from_address(FUNCTION);
    let worker_logs = LogGroupRefs::from_address(WORKER_LOGS);
    let table = TableRefs::from_address(TABLE);
    let region = region_of(cfg);

    s.scope("monitoring", |s| {
        let topic = s.add("topic", Topic::new(format!("{name}-alarms")).display_name(format!("{name} alarms")));
        if let Some(address) = email {
            s.add("email", Subscription::email(topic.arn(), address));
        }
        if let Some(url) = https {
            s.add("https", Subscription::https(topic.arn(), url));
        }
        let filter = s.add(
            "worker-failures-filter",
            MetricFilter::new(worker_logs.name(), format!("{name}-worker-failures"), WORKER_FAILURE_PATTERN, name, WORKER_FAILURES_METRIC)
                .default_value(0.0),
        );

        // Every alarm tells the topic when it fires and when it clears.
        let alarm = |what: &str, namespace: &str, metric: &str, description: &str| {
            MetricAlarm::new(format!("{name}-{what}"), namespace, metric)
                .description(description)
                .period(300)
                .treat_missing_data(TreatMissingData::NotBreaching)
                .alarm_action(topic.arn())
                .ok_action(topic.arn())
        };
        let count = |a: MetricAlarm, threshold: f64| {
            a.statistic(Statistic::Sum).threshold(threshold).comparison(Comparison::GreaterThanOrEqualToThreshold)
        };
        let p99 = |a: MetricAlarm, threshold: f64| {
            a.extended_statistic("p99").evaluation_periods(3).threshold(threshold).comparison(Comparison::GreaterThanThreshold)
        };
        let alarms = [
            ("api-5xx", count(alarm("api-5xx", "AWS/ApiGateway", "5xx", "the API answered 5xx").dimension("ApiId", api.id()), t.api_5xx)),
            (
                "api-p99-latency",
                p99(
                    alarm("api-p99-latency", "AWS/ApiGateway", "Latency", "the API's slowest 1% take longer than the threshold (ms)"),
                    t.api_p99_ms,
                )
                .dimension("ApiId", api.id()),
            ),
            (
                "function-errors",
                count(
                    alarm("function-errors", "AWS/Lambda", "Errors", "the API function failed (an error or a timeout)")
                        .dimension("FunctionName", function.name()),
                    t.function_errors,
                ),
            ),
            (
                "function-throttles",
                count(
                    alarm("function-throttles", "AWS/Lambda", "Throttles", "invocations of the API function were throttled")
                        .dimension("FunctionName", function.name()),
                    t.function_throttles,
                ),
            ),
            (
                "function-p99-duration",
                p99(
                    alarm(
                        "function-p99-duration",
                        "AWS/Lambda",
                        "Duration",
                        "the API function's slowest 1% take longer than the threshold (ms)",
                    )
                    .dimension("FunctionName", function.name()),
                    t.function_p99_ms,
                ),
            ),
            (
                "worker-failures",
                count(
                    alarm("worker-failures", name, WORKER_FAILURES_METRIC, "the worker failed or rejected orders (its log group)"),
                    t.worker_failures,
                ),
            ),
            (
                "table-read-throttles",
                count(
                    alarm("table-read-throttles", "AWS/DynamoDB", "ReadThrottleEvents", "reads of the orders table were throttled")
                        .dimension("TableName", table.name()),
                    t.table_throttles,
                ),
            ),
            (
                "table-write-throttles",
                count(
                    alarm("table-write-throttles", "AWS/DynamoDB", "WriteThrottleEvents", "writes to the orders table were throttled")
                        .dimension("TableName", table.name()),
                    t.table_throttles,
                ),
            ),
        ];
        for (address, a) in alarms {
            if address == "worker-failures" {
                // The metric exists once the filter does.
                s.add_with(address, a, Options::new().depends_on(&filter));
            } else {
                s.add(address, a);
            }
        }

        let (api_id, f, t_name) = (String::from(api.id()), String::from(function.name()), String::from(table.name()));
        let (api_id, f, t_name) = (api_id.as_str(), f.as_str(), t_name.as_str());
        let body = DashboardBody::new(region)
            .metric_widget("API requests", [["AWS/ApiGateway", "Count", "ApiId", api_id]], Statistic::Sum, 300)
            .metric_widget(
                "API 4xx and 5xx",
                [["AWS/ApiGateway", "4xx", "ApiId", api_id], ["AWS/ApiGateway", "5xx", "ApiId", api_id]],
                Statistic::Sum,
                300,
            )
            .metric_widget("API latency p99 (ms)", [["AWS/ApiGateway", "Latency", "ApiId", api_id]], "p99", 300)
            .metric_widget(
                "Function invocations, errors, throttles",
                [
                    ["AWS/Lambda", "Invocations", "FunctionName", f],
                    ["AWS/Lambda", "Errors", "FunctionName", f],
                    ["AWS/Lambda", "Throttles", "FunctionName", f],
                ],
                Statistic::Sum,
                300,
            )
            .metric_widget("Function duration p99 (ms)", [["AWS/Lambda", "Duration", "FunctionName", f]], "p99", 300)
            .metric_widget("Worker: failed or rejected orders", [[name, WORKER_FAILURES_METRIC]], Statistic::Sum, 300)
            .metric_widget(
                "Table consumed capacity",
                [
                    ["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", t_name],
                    ["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", t_name],
                ],
                Statistic::Sum,
                300,
            )
            .metric_widget(
                "Table throttled requests",
                [["AWS/DynamoDB", "ReadThrottleEvents", "TableName", t_name], ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", t_name]],
                Statistic::Sum,
                300,
            );
        s.add("dashboard", Dashboard::new(name, body));
        s.output("alarm_topic_arn", topic.arn());
    });
}

/// The region of the stack's zones (`us-east-1a` is in `us-east-1`), for the dashboard's widgets.
fn region_of(cfg: &Config) -> String {
    let zone = cfg.zones.first().map(String::as_str).unwrap_or("us-east-1a");
    zone.trim_end_matches(|c: char| c.is_ascii_lowercase()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroform::aws::lambda::Code;

    fn declared(vars: &[(&str, &str)]) -> Result<Stack> {
        let mut s = Stack::new("pedidos");
        for (k, v) in vars {
            s.set_var(k, v);
        }
        let cfg = Config::new(Code::binary("/nonexistent/bootstrap")).with_vars(&s)?;
        crate::stack::build(&mut s, &cfg)?;
        Ok(s)
    }

    #[test]
    fn every_alarm_tells_the_topic_both_ways() -> Result<()> {
        let s = declared(&[])?;
        let topic_arn = serde_json::Value::from(String::from(ferroform::aws::sns::TopicRefs::from_address("monitoring/topic").arn()));
        let alarms: Vec<_> = s.resources().iter().filter(|r| r.type_name == "aws_cloudwatch_metric_alarm").collect();
        assert_eq!(alarms.len(), 8);
        for a in alarms {
            assert_eq!(a.inputs["alarm_actions"], serde_json::json!([topic_arn.clone()]), "{}", a.address);
            assert_eq!(a.inputs["ok_actions"], serde_json::json!([topic_arn.clone()]), "{}", a.address);
        }
        let filter = s.resources().iter().find(|r| r.type_name == "aws_cloudwatch_log_metric_filter").map(|r| r.inputs.clone());
        let worker_group = serde_json::Value::from(String::from(LogGroupRefs::from_address(WORKER_LOGS).name()));
        assert_eq!(filter.map(|f| f["log_group"].clone()), Some(worker_group));
        assert!(s.resources().iter().all(|r| r.type_name != "aws_sns_topic_subscription"));
        Ok(())
    }

    #[test]
    fn subscriptions_and_thresholds_come_from_the_variables() -> Result<()> {
        let s = declared(&[("alarm_email", "ops@example.com"), ("alarm_https", "https://hooks.example.com/a"), ("alarm_api_5xx", "20")])?;
        let subs: Vec<&str> =
            s.resources().iter().filter(|r| r.type_name == "aws_sns_topic_subscription").map(|r| r.address.as_str()).collect();
        assert_eq!(subs, ["monitoring/email", "monitoring/https"]);
        let five_xx = s.resources().iter().find(|r| r.address == "monitoring/api-5xx").map(|r| r.inputs["threshold"].clone());
        assert_eq!(five_xx, Some(serde_json::json!(20.0)));
        let mut bad = Stack::new("pedidos");
        bad.set_var("alarm_api_p99_ms", "fast");
        assert!(Thresholds::from_stack(&bad).is_err());
        Ok(())
    }

    #[test]
    fn regions_come_from_zones() {
        let mut cfg = Config::new(Code::binary("/nonexistent/bootstrap"));
        cfg.zones = vec!["eu-west-1b".into()];
        assert_eq!(region_of(&cfg), "eu-west-1");
    }
}
