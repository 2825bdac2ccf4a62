//! CloudWatch Logs metric filter: turns matching log events into a metric. APIs: PutMetricFilter,
//! DescribeMetricFilters, DeleteMetricFilter.
//!
//! The id is `LOG_GROUP:FILTER_NAME` (neither may hold a `:`). PutMetricFilter creates and overwrites by name,
//! so a retried or re-run create leaves one filter, the same; filters carry no tags.
//!
//! Defaults (what an unset field means, so removing a setting puts it back): no default value (no data point
//! when nothing matches). Left to AWS when unset: nothing.
//!
//! The emulator (moto 5.2.5) appends a copy on every PutMetricFilter instead of overwriting, and its delete
//! removes only some of the copies: reads take the newest copy of the name, and the delete is repeated while
//! the name is still listed. On AWS that is one delete and one listing.

use super::LogGroup;
use crate::error::{absent_if_not_found, sdk};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::MetricTransformation as SdkTransformation;
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Name, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};

/// The metric a match counts into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricTransformation {
    pub namespace: String,
    /// The metric's name.
    pub name: String,
    /// What each match adds: `1`, or a field of the event (`$.latency`).
    pub value: String,
    /// The value reported for a period with no match; unset, nothing is reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricFilter {
    /// The log group's name. Changing it forces a new filter.
    pub log_group: String,
    /// Changing it forces a new filter.
    pub name: String,
    /// CloudWatch Logs filter syntax; empty matches every event.
    pub pattern: String,
    pub metric_transformation: MetricTransformation,
}

ferroform_core::outputs! {
    pub struct MetricFilterOutputs => MetricFilterRefs {
        pub name: String,
    }
}

impl MetricFilter {
    /// Every event of `log_group` matching `pattern` adds `1` to `namespace`/`metric_name`.
    pub fn new(
        log_group: Name<LogGroup>,
        name: impl Into<String>,
        pattern: impl Into<String>,
        namespace: impl Into<String>,
        metric_name: impl Into<String>,
    ) -> Self {
        Self {
            log_group: log_group.into(),
            name: name.into(),
            pattern: pattern.into(),
            metric_transformation: MetricTransformation {
                namespace: namespace.into(),
                name: metric_name.into(),
                value: "1".into(),
                default_value: None,
            },
        }
    }
    /// What each match adds (`1` unless set): a number or an event field such as `$.latency`.
    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.metric_transformation.value = value.into();
        self
    }
    /// Reported for periods without a match (`0.0` makes a quiet period a zero, not missing data).
    pub fn default_value(mut self, v: f64) -> Self {
        self.metric_transformation.default_value = Some(v);
        self
    }
}

#[async_trait]
impl Resource for MetricFilter {
    const TYPE: &'static str = "aws_cloudwatch_log_metric_filter";
    const REPLACE_FIELDS: &'static [&'static str] = &["log_group", "name"];
    /// A filter's name is unique only within its group.
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("name", "name"), ("log_group", "log_group_name")];
    type Outputs = MetricFilterOutputs;
    type Refs = MetricFilterRefs;
    type Context = Aws;

    /// Terraform's id is the filter's name alone; here it is `GROUP:NAME`, since names repeat across groups.
    fn terraform_id(attributes: &serde_json::Value) -> Option<String> {
        let at = |key: &str| attributes.get(key).and_then(serde_json::Value::as_str);
        Some(id_of(at("log_group_name")?, at("name")?))
    }

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        crate::validate::name(
            &mut e,
            "log_group",
            &self.log_group,
            1,
            512,
            |c| c.is_ascii_alphanumeric() || "_-/.#".contains(c),
            "letters, digits, `_-/.#`",
        );
        crate::validate::name(
            &mut e,
            "name",
            &self.name,
            1,
            512,
            |c| c != ':' && c != '*' && !c.is_control(),
            "any character but `:`, `*`",
        );
        if !is_unknown_str(&self.pattern) && self.pattern.chars().count() > 1024 {
            e.push(FieldError::new("pattern", "longer than 1024 characters"));
        }
        let t = &self.metric_transformation;
        let field = "metric_transformation";
        for (what, v, banned) in [("namespace", &t.namespace, ":*"), ("name", &t.name, ":*$")] {
            if is_unknown_str(v) {
                continue;
            }
            if v.is_empty() || v.chars().count() > 255 {
                e.push(FieldError::new(field, format!("the metric {what} must be 1 to 255 characters long")));
            } else if v.chars().any(|c| banned.contains(c)) {
                e.push(FieldError::new(field, format!("the metric {what} `{v}` holds one of `{banned}`")));
            }
        }
        if !is_unknown_str(&t.value) && (t.value.is_empty() || t.value.chars().count() > 100) {
            e.push(FieldError::new(field, "the value must be 1 to 100 characters long (`1`, or a field like `$.latency`)"));
        }
        if t.default_value.is_some_and(|d| !d.is_finite()) {
            e.push(FieldError::new(field, "the default value is not a finite number"));
        }
        e
    }

    async fn create(aws: &Aws, desired: &Self, _meta: &CallMeta) -> Result<(String, MetricFilterOutputs), ProviderError> {
        put(aws, desired).await?;
        Ok((id_of(&desired.log_group, &desired.name), MetricFilterOutputs { name: desired.name.clone() }))
    }

    async fn read(aws: &Aws, id: &str, _prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let (group, name) = split_id(id)?;
        let Some(found) = describe(aws, group, name).await? else { return Ok(None) };
        let t = found.metric_transformations().first();
        let inputs = MetricFilter {
            log_group: group.to_string(),
            name: name.to_string(),
            pattern: found.filter_pattern().unwrap_or_default().to_string(),
            metric_transformation: MetricTransformation {
                namespace: t.map(|t| t.metric_namespace().to_string()).unwrap_or_default(),
                name: t.map(|t| t.metric_name().to_string()).unwrap_or_default(),
                value: t.map(|t| t.metric_value().to_string()).unwrap_or_default(),
                default_value: t.and_then(|t| t.default_value()),
            },
        };
        Ok(Some(Observed { inputs, outputs: MetricFilterOutputs { name: name.to_string() } }))
    }

    async fn update(
        aws: &Aws,
        _id: &str,
        _prior: &Self,
        desired: &Self,
        _changed: &[String],
        _meta: &CallMeta,
    ) -> Result<MetricFilterOutputs, ProviderError> {
        // PutMetricFilter overwrites the whole filter: pattern and transformation in one call.
        put(aws, desired).await?;
        Ok(MetricFilterOutputs { name: desired.name.clone() })
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        let (group, name) = split_id(id)?;
        for _ in 0..5 {
            let deleted = aws.logs().delete_metric_filter().log_group_name(group).filter_name(name).send().await.map_err(sdk);
            if absent_if_not_found(deleted)?.is_none() || describe(aws, group, name).await?.is_none() {
                return Ok(());
            }
        }
        Err(ProviderError::new(format!("metric filter `{name}` is still listed on `{group}` after deleting it")))
    }
}

async fn put(aws: &Aws, f: &MetricFilter) -> Result<(), ProviderError> {
    let t = &f.metric_transformation;
    let transformation = SdkTransformation::builder()
        .metric_namespace(&t.namespace)
        .metric_name(&t.name)
        .metric_value(&t.value)
        .set_default_value(t.default_value)
        .build()
        .map_err(|e| ProviderError::new(e.to_string()))?;
    aws.logs()
        .put_metric_filter()
        .log_group_name(&f.log_group)
        .filter_name(&f.name)
        .filter_pattern(&f.pattern)
        .metric_transformations(transformation)
        .send()
        .await
        .map_err(sdk)?;
    Ok(())
}

/// DescribeMetricFilters of the group by the name as a prefix, following pages: the filter of exactly that
/// name (its newest copy, should a store hold several), or `None` when it or the group is gone.
async fn describe(aws: &Aws, group: &str, name: &str) -> Result<Option<aws_sdk_cloudwatchlogs::types::MetricFilter>, ProviderError> {
    let mut found = None;
    let mut token: Option<String> = None;
    loop {
        let out = aws
            .logs()
            .describe_metric_filters()
            .log_group_name(group)
            .filter_name_prefix(name)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(sdk);
        let Some(out) = absent_if_not_found(out)? else { return Ok(None) };
        if let Some(f) = out.metric_filters().iter().rfind(|f| f.filter_name() == Some(name)) {
            found = Some(f.clone());
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(found),
        }
    }
}

fn id_of(group: &str, name: &str) -> String {
    format!("{group}:{name}")
}

/// `LOG_GROUP:FILTER_NAME`: neither holds a `:`.
fn split_id(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once(':').ok_or_else(|| ProviderError::new(format!("`{id}` is not a metric filter id (LOG_GROUP:FILTER_NAME)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> MetricFilter {
        MetricFilter::new(Name::literal("/ecs/worker"), "failed-orders", "\"order failed\"", "Pedidos", "FailedOrders")
    }

    fn errors_on(f: &MetricFilter) -> Vec<String> {
        f.validate().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn filters_are_checked() {
        assert!(errors_on(&ok()).is_empty());
        assert!(errors_on(&ok().value("$.latency").default_value(0.0)).is_empty());
        assert!(errors_on(&MetricFilter { pattern: String::new(), ..ok() }).is_empty());
        assert_eq!(errors_on(&MetricFilter { name: "a:b".into(), ..ok() }), ["name"]);
        assert_eq!(errors_on(&MetricFilter { log_group: "bad group!".into(), ..ok() }), ["log_group"]);
        assert_eq!(errors_on(&MetricFilter { pattern: "x".repeat(1025), ..ok() }), ["pattern"]);
        assert_eq!(errors_on(&ok().value("")), ["metric_transformation"]);
        assert_eq!(errors_on(&ok().default_value(f64::INFINITY)), ["metric_transformation"]);
        let mut bad = ok();
        bad.metric_transformation.name = "a$b".into();
        assert_eq!(errors_on(&bad), ["metric_transformation"]);
    }

    #[test]
    fn ids_hold_group_and_name() {
        let id = id_of("/ecs/worker", "failed-orders");
        assert_eq!(split_id(&id).ok(), Some(("/ecs/worker", "failed-orders")));
        assert!(split_id("nocolon").is_err());
    }
}
