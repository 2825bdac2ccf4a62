//! CloudWatch log groups against the emulator, checked with independent SDK reads.
#![cfg(feature = "logs")]

use crate::common::change;
use aws_sdk_cloudwatchlogs::types::LogGroup as SdkLogGroup;
use aws_sdk_cloudwatchlogs::types::MetricFilter as SdkMetricFilter;
use aws_sdk_cloudwatchlogs::Client;
use ferroform_aws::logs::{LogGroup, MetricFilter};
use ferroform_aws::{Aws, CallCounter};
use ferroform_core::{Action, Stack};
use ferroform_testkit::Harness;
use std::collections::BTreeMap;

const STACK: &str = "logstest";

async fn harness() -> anyhow::Result<(Harness, CallCounter, Client)> {
    let h = Harness::new().await?;
    let aws = Aws::from_config(h.account.config.clone());
    let calls = aws.calls().clone();
    h.contexts.insert(aws);
    let logs = Client::new(&h.account.config);
    Ok((h, calls, logs))
}

fn stack(group: LogGroup) -> Stack {
    let mut s = Stack::new(STACK);
    s.add("group", group);
    s
}

/// DescribeLogGroups: the group with exactly this name, if any.
async fn describe(logs: &Client, name: &str) -> anyhow::Result<Option<SdkLogGroup>> {
    let out = logs.describe_log_groups().log_group_name_prefix(name).send().await?;
    Ok(out.log_groups().iter().find(|g| g.log_group_name() == Some(name)).cloned())
}

async fn tags(logs: &Client, arn: &str) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(logs.list_tags_for_resource().resource_arn(arn).send().await?.tags.unwrap_or_default().into_iter().collect())
}

#[tokio::test]
async fn log_group_lifecycle() -> anyhow::Result<()> {
    let (h, calls, logs) = harness().await?;
    let v1 = || LogGroup::new("/aws/lambda/hello").retention_days(14).tag("team", "web");

    let state = h.apply(&stack(v1())).await?;
    let g = describe(&logs, "/aws/lambda/hello").await?.expect("the log group exists");
    assert_eq!(g.retention_in_days(), Some(14));
    // DescribeLogGroups gives the ARN with a `:*` suffix; the output is the taggable form without it.
    let arn = state.resources["group"].outputs["arn"].as_str().unwrap_or_default().to_string();
    assert_eq!(g.arn().map(|a| a.trim_end_matches(":*")), Some(arn.as_str()));
    let t = tags(&logs, &arn).await?;
    assert_eq!(t.get("team").map(String::as_str), Some("web"), "{t:?}");
    assert_eq!(t.get("ferroform:address").map(String::as_str), Some("group"), "{t:?}");

    calls.reset();
    let plan = h.plan(&stack(v1())).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    eprintln!("no-op plan of a log group: {:?}", calls.snapshot());

    // In place: retention and a tag.
    let v2 = || LogGroup::new("/aws/lambda/hello").retention_days(30).tag("team", "platform");
    let plan = h.plan(&stack(v2())).await?;
    assert_eq!(change(&plan, "group"), (Action::Update, vec!["retention_days".into(), "tags".into()]), "{}", plan.render(false));
    h.apply(&stack(v2())).await?;
    assert_eq!(describe(&logs, "/aws/lambda/hello").await?.and_then(|g| g.retention_in_days()), Some(30));
    assert_eq!(tags(&logs, &arn).await?.get("team").map(String::as_str), Some("platform"));
    assert!(!h.plan(&stack(v2())).await?.has_changes());

    // Drift: retention changed and a tag added behind our back; the plan shows both, apply repairs.
    logs.put_retention_policy().log_group_name("/aws/lambda/hello").retention_in_days(7).send().await?;
    logs.tag_resource().resource_arn(&arn).tags("extra", "by-hand").send().await?;
    let plan = h.plan(&stack(v2())).await?;
    assert_eq!(change(&plan, "group"), (Action::Update, vec!["retention_days".into(), "tags".into()]), "{}", plan.render(false));
    h.apply(&stack(v2())).await?;
    assert_eq!(describe(&logs, "/aws/lambda/hello").await?.and_then(|g| g.retention_in_days()), Some(30));
    assert!(!tags(&logs, &arn).await?.contains_key("extra"));
    assert!(!h.plan(&stack(v2())).await?.has_changes());

    // Deleted behind our back: planned as a create, and made again.
    logs.delete_log_group().log_group_name("/aws/lambda/hello").send().await?;
    assert_eq!(change(&h.plan(&stack(v2())).await?, "group").0, Action::Create);
    h.apply(&stack(v2())).await?;
    assert_eq!(describe(&logs, "/aws/lambda/hello").await?.and_then(|g| g.retention_in_days()), Some(30));

    // Replace: a new name; the new group exists, the old one is gone.
    let renamed = || LogGroup { name: "/aws/lambda/hello-v2".into(), ..v2() };
    let plan = h.plan(&stack(renamed())).await?;
    assert_eq!(change(&plan, "group").0, Action::Replace, "{}", plan.render(false));
    h.apply(&stack(renamed())).await?;
    assert_eq!(describe(&logs, "/aws/lambda/hello-v2").await?.and_then(|g| g.retention_in_days()), Some(30));
    assert!(describe(&logs, "/aws/lambda/hello").await?.is_none());
    assert!(!h.plan(&stack(renamed())).await?.has_changes());

    h.destroy(&stack(renamed())).await?;
    assert!(describe(&logs, "/aws/lambda/hello-v2").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn retention_left_unset_means_none() -> anyhow::Result<()> {
    let (h, _, logs) = harness().await?;
    h.apply(&stack(LogGroup::new("app"))).await?;
    assert_eq!(describe(&logs, "app").await?.map(|g| g.retention_in_days()), Some(None));
    // A retention set by hand on a group that declares none is drift: the code says "keep forever".
    logs.put_retention_policy().log_group_name("app").retention_in_days(90).send().await?;
    let plan = h.plan(&stack(LogGroup::new("app"))).await?;
    assert_eq!(change(&plan, "group"), (Action::Update, vec!["retention_days".into()]), "{}", plan.render(false));
    h.apply(&stack(LogGroup::new("app"))).await?;
    assert_eq!(describe(&logs, "app").await?.map(|g| g.retention_in_days()), Some(None));
    assert!(!h.plan(&stack(LogGroup::new("app"))).await?.has_changes());
    h.destroy(&stack(LogGroup::new("app"))).await?;
    assert!(describe(&logs, "app").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn bad_log_groups_are_refused_before_any_call() -> anyhow::Result<()> {
    let (h, calls, _) = harness().await?;
    let cases = [
        (LogGroup::new("/aws/lambda/x").retention_days(2), "retention_days"),
        (LogGroup::new("/aws/lambda/x").retention_days(0), "retention_days"),
        (LogGroup::new("/aws/lambda/x").retention_days(-1), "retention_days"),
        (LogGroup::new("bad name!"), "name"),
        (LogGroup::new(""), "name"),
        (LogGroup::new("x".repeat(513)), "name"),
    ];
    for (group, field) in cases {
        let what = format!("{group:?}");
        let err = h.plan(&stack(group)).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(err.contains(&format!("group: field `{field}`")), "{what}: {err}");
    }
    assert_eq!(calls.total(), 0, "{:?}", calls.snapshot());
    Ok(())
}

#[tokio::test]
async fn groups_sharing_a_prefix_are_listed_together_and_crowds_are_paged() -> anyhow::Result<()> {
    let (h, calls, logs) = harness().await?;
    // 60 groups nobody declared under the same prefix: more than one page (50) of DescribeLogGroups.
    for i in 0..60 {
        logs.create_log_group().log_group_name(format!("/app/svc-{i:02}")).send().await?;
    }
    let mut s = Stack::new(STACK);
    s.add("a", LogGroup::new("/app/svc-api").retention_days(7));
    s.add("b", LogGroup::new("/app/svc-worker").retention_days(7));
    s.add("c", LogGroup::new("/app/svc-zeta").retention_days(7));
    h.apply(&s).await?;

    calls.reset();
    let plan = h.plan(&s).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    let reads = calls.snapshot();
    // `/app/svc-` holds 63 groups: two pages find all three (at most names - 1 = 2 pages are tried).
    assert_eq!(reads.get("CloudWatch Logs:DescribeLogGroups"), Some(&2), "{reads:?}");
    assert_eq!(reads.get("CloudWatch Logs:ListTagsForResource"), Some(&3), "{reads:?}");

    // A group deleted behind the engine's back is planned again; drift in another is seen.
    logs.delete_log_group().log_group_name("/app/svc-worker").send().await?;
    logs.put_retention_policy().log_group_name("/app/svc-zeta").retention_in_days(30).send().await?;
    let plan = h.plan(&s).await?;
    assert_eq!(change(&plan, "b").0, Action::Create, "{}", plan.render(false));
    assert_eq!(change(&plan, "c"), (Action::Update, vec!["retention_days".to_string()]), "{}", plan.render(false));
    h.apply(&s).await?;
    assert_eq!(describe(&logs, "/app/svc-worker").await?.and_then(|g| g.retention_in_days()), Some(7));
    assert_eq!(describe(&logs, "/app/svc-zeta").await?.and_then(|g| g.retention_in_days()), Some(7));
    h.destroy(&s).await?;
    assert!(describe(&logs, "/app/svc-api").await?.is_none());
    Ok(())
}

/// Retention and tags removed from the code: the retention policy is deleted (events kept forever) and the
/// tag untagged.
#[tokio::test]
async fn settings_removed_from_the_code_go_back_to_cloudwatchs_defaults() -> anyhow::Result<()> {
    let (h, _, logs) = harness().await?;
    let name = "/app/defaults";
    let state = h.apply(&stack(LogGroup::new(name).retention_days(14).tag("team", "web"))).await?;
    let arn = state.resources["group"].outputs["arn"].as_str().unwrap_or_default().to_string();

    let plan = h.plan(&stack(LogGroup::new(name))).await?;
    let text = plan.render(false);
    assert_eq!(change(&plan, "group"), (Action::Update, vec!["retention_days".into(), "tags".into()]), "{text}");
    assert!(text.contains("14 -> null"), "{text}");
    h.apply(&stack(LogGroup::new(name))).await?;

    let g = describe(&logs, name).await?.expect("the log group exists");
    assert_eq!(g.retention_in_days(), None);
    let t = tags(&logs, &arn).await?;
    assert!(!t.contains_key("team") && t.contains_key("ferroform:address"), "{t:?}");
    let plan = h.plan(&stack(LogGroup::new(name))).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    h.destroy(&stack(LogGroup::new(name))).await?;
    Ok(())
}

/// A log group and one metric filter on it.
fn with_filter(filter: impl FnOnce(ferroform_core::Name<LogGroup>) -> MetricFilter) -> Stack {
    let mut s = Stack::new(STACK);
    let group = s.add("group", LogGroup::new("/ecs/worker"));
    s.add("filter", filter(group.name()));
    s
}

/// DescribeMetricFilters of the group: the filter of this name (the emulator keeps a copy per put; the last
/// listed is the newest), `None` when none is listed.
async fn metric_filter(logs: &Client, group: &str, name: &str) -> anyhow::Result<Option<SdkMetricFilter>> {
    let out = logs.describe_metric_filters().log_group_name(group).filter_name_prefix(name).send().await?;
    Ok(out.metric_filters().iter().rfind(|f| f.filter_name() == Some(name)).cloned())
}

/// (pattern, namespace, metric, value, default) as DescribeMetricFilters gives them.
fn filter_fields(f: &SdkMetricFilter) -> (String, String, String, String, Option<f64>) {
    let t = &f.metric_transformations()[0];
    (
        f.filter_pattern().unwrap_or_default().to_string(),
        t.metric_namespace().to_string(),
        t.metric_name().to_string(),
        t.metric_value().to_string(),
        t.default_value(),
    )
}

#[tokio::test]
async fn metric_filter_lifecycle() -> anyhow::Result<()> {
    let (h, calls, logs) = harness().await?;
    let v1 = |g| MetricFilter::new(g, "failed", "ERROR", "App", "Failures");

    let state = h.apply(&with_filter(v1)).await?;
    assert_eq!(state.resources["filter"].id.as_deref(), Some("/ecs/worker:failed"));
    let f = metric_filter(&logs, "/ecs/worker", "failed").await?.expect("the filter exists");
    assert_eq!(filter_fields(&f), ("ERROR".into(), "App".into(), "Failures".into(), "1".into(), None));
    assert_eq!(f.log_group_name(), Some("/ecs/worker"));

    calls.reset();
    let plan = h.plan(&with_filter(v1)).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    eprintln!("no-op plan of a log group and a metric filter: {:?}", calls.snapshot());

    // In place: the pattern, the value and a default.
    let v2 = |g| MetricFilter::new(g, "failed", "\"order failed\"", "App", "Failures").value("2").default_value(0.0);
    let plan = h.plan(&with_filter(v2)).await?;
    assert_eq!(change(&plan, "filter"), (Action::Update, vec!["metric_transformation".into(), "pattern".into()]), "{}", plan.render(false));
    h.apply(&with_filter(v2)).await?;
    let f = metric_filter(&logs, "/ecs/worker", "failed").await?.expect("the filter exists");
    assert_eq!(filter_fields(&f), ("\"order failed\"".into(), "App".into(), "Failures".into(), "2".into(), Some(0.0)));
    assert!(!h.plan(&with_filter(v2)).await?.has_changes());

    // Drift: the pattern changed behind our back; the plan shows it, apply repairs.
    let by_hand = aws_sdk_cloudwatchlogs::types::MetricTransformation::builder()
        .metric_namespace("App")
        .metric_name("Failures")
        .metric_value("2")
        .default_value(0.0)
        .build()?;
    logs.put_metric_filter()
        .log_group_name("/ecs/worker")
        .filter_name("failed")
        .filter_pattern("by-hand")
        .metric_transformations(by_hand)
        .send()
        .await?;
    let plan = h.plan(&with_filter(v2)).await?;
    assert_eq!(change(&plan, "filter"), (Action::Update, vec!["pattern".into()]), "{}", plan.render(false));
    h.apply(&with_filter(v2)).await?;
    let f = metric_filter(&logs, "/ecs/worker", "failed").await?.expect("the filter exists");
    assert_eq!(filter_fields(&f).0, "\"order failed\"");

    // The default removed from the code: none is sent (no data point when nothing matches).
    let v3 = |g| MetricFilter::new(g, "failed", "\"order failed\"", "App", "Failures").value("2");
    let plan = h.plan(&with_filter(v3)).await?;
    assert_eq!(change(&plan, "filter"), (Action::Update, vec!["metric_transformation".into()]), "{}", plan.render(false));
    h.apply(&with_filter(v3)).await?;
    assert_eq!(metric_filter(&logs, "/ecs/worker", "failed").await?.and_then(|f| filter_fields(&f).4), None);
    assert!(!h.plan(&with_filter(v3)).await?.has_changes());

    // Replace: a new name; the new filter exists, the old one is gone.
    let renamed = |g| MetricFilter::new(g, "failed-v2", "\"order failed\"", "App", "Failures").value("2");
    let plan = h.plan(&with_filter(renamed)).await?;
    assert_eq!(change(&plan, "filter").0, Action::Replace, "{}", plan.render(false));
    h.apply(&with_filter(renamed)).await?;
    assert!(metric_filter(&logs, "/ecs/worker", "failed-v2").await?.is_some());
    assert!(metric_filter(&logs, "/ecs/worker", "failed").await?.is_none());
    assert!(!h.plan(&with_filter(renamed)).await?.has_changes());

    h.destroy(&with_filter(renamed)).await?;
    assert!(logs.describe_metric_filters().send().await?.metric_filters().is_empty());
    assert!(describe(&logs, "/ecs/worker").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn bad_metric_filters_are_refused_before_any_call() -> anyhow::Result<()> {
    let (h, calls, _) = harness().await?;
    type Filter = fn(ferroform_core::Name<LogGroup>) -> MetricFilter;
    let cases: [(Filter, &str); 3] = [
        (|g| MetricFilter::new(g, "a:b", "", "App", "M"), "name"),
        (|g| MetricFilter::new(g, "f", "x".repeat(1025), "App", "M"), "pattern"),
        (|g| MetricFilter::new(g, "f", "", "App", "M$"), "metric_transformation"),
    ];
    for (filter, field) in cases {
        let err = h.plan(&with_filter(filter)).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(err.contains(&format!("filter: field `{field}`")), "{err}");
    }
    assert_eq!(calls.total(), 0, "{:?}", calls.snapshot());
    Ok(())
}
