//! pedidos with its monitoring (stacks/pedidos/src/monitoring.rs) on the emulator: every alarm sends ALARM and
//! OK to the topic, the subscriptions are on it, the metric filter is on the worker's log group and feeds the
//! worker alarm's metric, the dashboard exists; all read back with the SDK. Then `No changes.`, and destroy
//! leaves none of it.

use ferroform_aws::lambda::Code;
use ferroform_aws::Aws;
use ferroform_core::Stack;
use ferroform_testkit::cbor::CborShim;
use ferroform_testkit::Harness;
use std::collections::BTreeSet;

#[tokio::test]
async fn every_pedidos_alarm_tells_the_topic_and_the_filter_is_on_the_workers_group() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    // CloudWatch is spoken to in CBOR, which the emulator does not speak: a shim translates (other services
    // pass through it).
    let shim = CborShim::start(&h.account.endpoint).await?;
    let config = h.account.config_via(shim.endpoint());
    h.contexts.insert(Aws::from_config(config.clone()));
    let code = h.dir.path().join("bootstrap");
    std::fs::write(&code, "#!/bin/sh\necho ok\n")?;
    let stack = || -> anyhow::Result<Stack> {
        let mut s = Stack::new("pedidos-mon");
        s.set_var("alarm_email", "ops@example.com");
        s.set_var("alarm_https", "https://hooks.example.com/pedidos");
        s.set_var("alarm_api_5xx", "7");
        let mut cfg = pedidos::stack::Config::new(Code::binary(&code)).with_vars(&s)?;
        cfg.zones = vec!["us-east-1a".into(), "us-east-1b".into()];
        pedidos::stack::build(&mut s, &cfg)?;
        Ok(s)
    };
    let s = stack()?;
    let state = h.apply(&s).await?;
    let topic_arn = state.outputs["alarm_topic_arn"].value.as_str().unwrap_or_default().to_string();
    assert!(topic_arn.ends_with(":pedidos-alarms"), "{topic_arn}");

    // Every alarm of the account (the test's own) is one of pedidos', and each tells the topic both ways.
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    let alarms = cw.describe_alarms().send().await?.metric_alarms().to_vec();
    let names: BTreeSet<&str> = alarms.iter().filter_map(|a| a.alarm_name()).collect();
    let want: BTreeSet<&str> = [
        "pedidos-api-5xx",
        "pedidos-api-p99-latency",
        "pedidos-function-errors",
        "pedidos-function-throttles",
        "pedidos-function-p99-duration",
        "pedidos-worker-failures",
        "pedidos-table-read-throttles",
        "pedidos-table-write-throttles",
    ]
    .into();
    assert_eq!(names, want);
    for a in &alarms {
        assert_eq!(a.alarm_actions(), std::slice::from_ref(&topic_arn), "{:?}", a.alarm_name());
        assert_eq!(a.ok_actions(), std::slice::from_ref(&topic_arn), "{:?}", a.alarm_name());
        assert_eq!(a.actions_enabled(), Some(true), "{:?}", a.alarm_name());
    }
    let by_name = |n: &str| alarms.iter().find(|a| a.alarm_name() == Some(n)).cloned().expect("declared above");
    assert_eq!(by_name("pedidos-api-5xx").threshold(), Some(7.0), "the variable sets the threshold");
    let api_id = state.resources["api"].outputs["id"].as_str().unwrap_or_default().to_string();
    let dims = |n: &str| {
        by_name(n)
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap_or_default().to_string(), d.value().unwrap_or_default().to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(dims("pedidos-api-5xx"), [("ApiId".to_string(), api_id)]);
    assert_eq!(dims("pedidos-function-errors"), [("FunctionName".to_string(), "pedidos-api".to_string())]);
    assert_eq!(dims("pedidos-table-write-throttles"), [("TableName".to_string(), "pedidos".to_string())]);
    assert_eq!(by_name("pedidos-function-p99-duration").extended_statistic(), Some("p99"));

    // The topic and its two subscriptions.
    let sns = aws_sdk_sns::Client::new(&config);
    let subs = sns.list_subscriptions_by_topic().topic_arn(&topic_arn).send().await?;
    let mut endpoints: Vec<(String, String)> = subs
        .subscriptions()
        .iter()
        .map(|s| (s.protocol().unwrap_or_default().to_string(), s.endpoint().unwrap_or_default().to_string()))
        .collect();
    endpoints.sort();
    assert_eq!(
        endpoints,
        [("email".to_string(), "ops@example.com".to_string()), ("https".to_string(), "https://hooks.example.com/pedidos".to_string())]
    );

    // The metric filter is on the worker's log group (the one its task definition logs to) and counts into the
    // metric the worker alarm watches.
    let ecs = aws_sdk_ecs::Client::new(&config);
    let td_arn = state.resources["worker/task"].outputs["arn"].as_str().unwrap_or_default().to_string();
    let td = ecs.describe_task_definition().task_definition(&td_arn).send().await?;
    let worker_group = td
        .task_definition()
        .and_then(|t| t.container_definitions().first())
        .and_then(|c| c.log_configuration())
        .and_then(|l| l.options())
        .and_then(|o| o.get("awslogs-group").cloned())
        .expect("the worker logs to a group");
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let filters = logs.describe_metric_filters().log_group_name(&worker_group).send().await?;
    assert_eq!(filters.metric_filters().len(), 1, "{filters:?}");
    let f = &filters.metric_filters()[0];
    assert_eq!(f.filter_pattern(), Some(pedidos::monitoring::WORKER_FAILURE_PATTERN));
    let t = &f.metric_transformations()[0];
    let worker_alarm = by_name("pedidos-worker-failures");
    assert_eq!((Some(t.metric_namespace()), Some(t.metric_name())), (worker_alarm.namespace(), worker_alarm.metric_name()));
    assert_eq!(t.default_value(), Some(0.0));
    let all_filters = logs.describe_metric_filters().send().await?;
    assert_eq!(all_filters.metric_filters().len(), 1, "only the worker's group has a filter");

    // The dashboard shows the API, the function, the worker's metric and the table.
    let body = cw.get_dashboard().dashboard_name("pedidos").send().await?.dashboard_body().unwrap_or_default().to_string();
    for shown in ["AWS/ApiGateway", "AWS/Lambda", "WorkerFailures", "AWS/DynamoDB"] {
        assert!(body.contains(shown), "{shown} is not on the dashboard: {body}");
    }

    let plan = h.plan(&s).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    assert!(plan.render(false).contains("No changes."), "{}", plan.render(false));

    h.destroy(&s).await?;
    assert!(cw.describe_alarms().send().await?.metric_alarms().is_empty());
    assert!(sns.list_topics().send().await?.topics().is_empty());
    assert!(sns.list_subscriptions().send().await?.subscriptions().is_empty());
    assert!(logs.describe_metric_filters().send().await?.metric_filters().is_empty());
    assert!(cw.list_dashboards().send().await?.dashboard_entries().is_empty());
    Ok(())
}
