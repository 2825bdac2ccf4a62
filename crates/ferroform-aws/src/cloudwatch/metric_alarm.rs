//! CloudWatch metric alarm. APIs: PutMetricAlarm, DescribeAlarms, ListTagsForResource, TagResource,
//! UntagResource, DeleteAlarms.
//!
//! PutMetricAlarm both creates and updates, and an update overwrites the whole alarm: it is sent the whole
//! desired alarm, unset fields at their defaults. It ignores tags on an existing alarm, so tag changes go
//! through TagResource/UntagResource.
//!
//! Defaults (what an unset field means, so removing a setting puts it back): `datapoints_to_alarm` equal
//! to `evaluation_periods` (N of N), `treat_missing_data` `missing`, `actions_enabled` true, no
//! description, no dimensions, no actions, no tags but the engine's. Left to AWS when unset: nothing.
//!
//! Reads are batched: one DescribeAlarms for up to 100 alarms, then one ListTagsForResource each.

use crate::error::{absent_if_not_found, sdk};
use crate::tags::{self, merge_defaults, without_aws_managed, Tags};
use crate::Aws;
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{AlarmType, ComparisonOperator, Dimension, Tag};
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource, TAG_ADDRESS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The statistics CloudWatch computes over a period. Percentiles and friends are `extended_statistic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Statistic {
    SampleCount,
    Average,
    Sum,
    Minimum,
    Maximum,
}

/// How the statistic is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

/// What a period without data counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TreatMissingData {
    Breaching,
    NotBreaching,
    Ignore,
    Missing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricAlarm {
    /// Changing it forces a new alarm.
    pub name: String,
    pub namespace: String,
    pub metric_name: String,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Exactly one of `statistic` and `extended_statistic` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<Statistic>,
    /// A percentile such as `p99` or `p99.9` (also `tm90`, `wm90`, `tc90`, `ts90`, `IQM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_statistic: Option<String>,
    /// Seconds: 10, 20, 30 or a multiple of 60.
    pub period: i32,
    pub evaluation_periods: i32,
    /// M of N: how many of the `evaluation_periods` must breach. Unset: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datapoints_to_alarm: Option<i32>,
    /// Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_operator: Option<Comparison>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treat_missing_data: Option<TreatMissingData>,
    /// ARNs notified on the transition to ALARM (an SNS topic, say). A set.
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    /// ARNs notified on the transition to OK. A set.
    #[serde(default)]
    pub ok_actions: Vec<String>,
    /// ARNs notified on the transition to INSUFFICIENT_DATA. A set.
    #[serde(default)]
    pub insufficient_data_actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

ferroform_core::outputs! {
    pub struct MetricAlarmOutputs => MetricAlarmRefs {
        pub arn: String as ferroform_core::Arn<MetricAlarm>,
        pub name: String as ferroform_core::Name<MetricAlarm>,
    }
}

impl MetricAlarm {
    /// An alarm on `namespace`/`metric_name`, evaluated over one 60-second period. Set a statistic, a
    /// threshold and a comparison.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>, metric_name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            metric_name: metric_name.into(),
            dimensions: BTreeMap::new(),
            statistic: None,
            extended_statistic: None,
            period: 60,
            evaluation_periods: 1,
            datapoints_to_alarm: None,
            threshold: None,
            comparison_operator: None,
            treat_missing_data: None,
            alarm_actions: Vec::new(),
            ok_actions: Vec::new(),
            insufficient_data_actions: Vec::new(),
            actions_enabled: None,
            description: None,
            tags: Tags::new(),
        }
    }
    /// `dimension("FunctionName", function.name())`.
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.insert(name.into(), value.into());
        self
    }
    pub fn statistic(mut self, s: Statistic) -> Self {
        self.statistic = Some(s);
        self.extended_statistic = None;
        self
    }
    /// `extended_statistic("p99")`.
    pub fn extended_statistic(mut self, s: impl Into<String>) -> Self {
        self.extended_statistic = Some(s.into());
        self.statistic = None;
        self
    }
    pub fn period(mut self, seconds: i32) -> Self {
        self.period = seconds;
        self
    }
    pub fn evaluation_periods(mut self, n: i32) -> Self {
        self.evaluation_periods = n;
        self
    }
    pub fn datapoints_to_alarm(mut self, m: i32) -> Self {
        self.datapoints_to_alarm = Some(m);
        self
    }
    pub fn threshold(mut self, t: f64) -> Self {
        self.threshold = Some(t);
        self
    }
    pub fn comparison(mut self, c: Comparison) -> Self {
        self.comparison_operator = Some(c);
        self
    }
    pub fn treat_missing_data(mut self, t: TreatMissingData) -> Self {
        self.treat_missing_data = Some(t);
        self
    }
    pub fn alarm_action(mut self, arn: impl ferroform_core::ArnText) -> Self {
        self.alarm_actions.push(arn.arn_text());
        self
    }
    pub fn ok_action(mut self, arn: impl ferroform_core::ArnText) -> Self {
        self.ok_actions.push(arn.arn_text());
        self
    }
    pub fn insufficient_data_action(mut self, arn: impl ferroform_core::ArnText) -> Self {
        self.insufficient_data_actions.push(arn.arn_text());
        self
    }
    pub fn actions_enabled(mut self, on: bool) -> Self {
        self.actions_enabled = Some(on);
        self
    }
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    pub fn tag(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.tags.insert(k.into(), v.into());
        self
    }
}

#[async_trait]
impl Resource for MetricAlarm {
    const TYPE: &'static str = "aws_cloudwatch_metric_alarm";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("name", "alarm_name")];
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    type Outputs = MetricAlarmOutputs;
    type Refs = MetricAlarmRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        let printable = |c: char| !c.is_control();
        crate::validate::name(&mut e, "name", &self.name, 1, 255, printable, "any character but control characters");
        crate::validate::name(&mut e, "namespace", &self.namespace, 1, 255, printable, "any character but control characters");
        if self.namespace.starts_with(':') {
            e.push(FieldError::new("namespace", format!("`{}` must not start with `:`", self.namespace)));
        }
        crate::validate::name(&mut e, "metric_name", &self.metric_name, 1, 255, printable, "any character but control characters");
        if self.dimensions.len() > 30 {
            e.push(FieldError::new("dimensions", format!("{} dimensions; CloudWatch allows 30", self.dimensions.len())));
        }
        for (k, v) in &self.dimensions {
            if !is_unknown_str(k) && !(1..=255).contains(&k.chars().count()) {
                e.push(FieldError::new("dimensions", format!("name `{k}` must be 1 to 255 characters long")));
            }
            if !is_unknown_str(v) && !(1..=1024).contains(&v.chars().count()) {
                e.push(FieldError::new("dimensions", format!("the value of `{k}` must be 1 to 1024 characters long")));
            }
        }
        match (&self.statistic, &self.extended_statistic) {
            (None, None) => e.push(FieldError::new("statistic", "set a statistic (Sum, Average, ...) or an extended_statistic (p99, ...)")),
            (Some(_), Some(_)) => e.push(FieldError::new("extended_statistic", "set either statistic or extended_statistic, not both")),
            (None, Some(x)) if !is_unknown_str(x) && !extended_statistic_ok(x) => e.push(FieldError::new(
                "extended_statistic",
                format!("`{x}` is not a percentile like `p99` or `p99.9` (p0 to p100; tm, wm, tc, ts likewise; IQM)"),
            )),
            _ => {}
        }
        if !period_ok(self.period) {
            e.push(FieldError::new("period", format!("{} seconds; CloudWatch takes 10, 20, 30 or a multiple of 60", self.period)));
        }
        if self.evaluation_periods < 1 {
            e.push(FieldError::new("evaluation_periods", format!("{} must be at least 1", self.evaluation_periods)));
        } else if period_ok(self.period) && i64::from(self.period) * i64::from(self.evaluation_periods) > 7 * 86_400 {
            e.push(FieldError::new(
                "evaluation_periods",
                format!("{} periods of {}s exceed the 7 days (604800 s) an alarm may evaluate", self.evaluation_periods, self.period),
            ));
        }
        if let Some(m) = self.datapoints_to_alarm {
            if m < 1 || m > self.evaluation_periods {
                e.push(FieldError::new(
                    "datapoints_to_alarm",
                    format!("{m} must be 1 to evaluation_periods ({})", self.evaluation_periods),
                ));
            }
        }
        match self.threshold {
            None => e.push(FieldError::new("threshold", "required: the value the statistic is compared with")),
            Some(t) if !t.is_finite() => e.push(FieldError::new("threshold", format!("{t} is not a finite number"))),
            _ => {}
        }
        if self.comparison_operator.is_none() {
            e.push(FieldError::new("comparison_operator", "required: how the statistic is compared with the threshold"));
        }
        for (field, actions) in [
            ("alarm_actions", &self.alarm_actions),
            ("ok_actions", &self.ok_actions),
            ("insufficient_data_actions", &self.insufficient_data_actions),
        ] {
            if actions.len() > 5 {
                e.push(FieldError::new(field, format!("{} actions; CloudWatch allows 5", actions.len())));
            }
            if actions.iter().any(|a| !is_unknown_str(a) && !a.starts_with("arn:")) {
                e.push(FieldError::new(field, "every action is an ARN (`arn:...`)"));
            }
        }
        if let Some(d) = &self.description {
            if !is_unknown_str(d) && d.chars().count() > 1024 {
                e.push(FieldError::new("description", "longer than 1024 characters"));
            }
        }
        tags::check(&mut e, &self.tags, "CloudWatch");
        e
    }

    fn normalize(&mut self) {
        for actions in [&mut self.alarm_actions, &mut self.ok_actions, &mut self.insufficient_data_actions] {
            actions.sort();
            actions.dedup();
        }
        // CloudWatch's values when these are absent (an alarm without DatapointsToAlarm evaluates N of N).
        self.datapoints_to_alarm.get_or_insert(self.evaluation_periods);
        self.treat_missing_data.get_or_insert(TreatMissingData::Missing);
        self.actions_enabled.get_or_insert(true);
        self.description.get_or_insert_with(String::new);
    }

    fn set_default_tags(&mut self, tags: &Tags) {
        merge_defaults(&mut self.tags, tags);
    }

    async fn create(aws: &Aws, desired: &Self, _meta: &CallMeta) -> Result<(String, MetricAlarmOutputs), ProviderError> {
        // A put by name: sent twice (the SDK's retry after a lost answer) it leaves one, the same; no
        // `create_once` needed.
        put(aws, desired, Some(&desired.tags)).await?;
        Ok((desired.name.clone(), outputs(aws, &desired.name).await?))
    }

    async fn read(aws: &Aws, id: &str, prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        crate::batch::read_one(aws, id, prior).await
    }

    /// One DescribeAlarms per 100 alarms, then the tags of each found alarm, concurrently.
    async fn read_many(aws: &Aws, items: &[(String, Self)]) -> Vec<Result<Option<Observed<Self>>, ProviderError>> {
        let mut found: BTreeMap<String, aws_sdk_cloudwatch::types::MetricAlarm> = BTreeMap::new();
        for chunk in items.chunks(100) {
            let names: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
            match describe(aws, names).await {
                Ok(alarms) => found.extend(alarms),
                Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
            }
        }
        let reads = items.iter().map(|(id, _)| {
            let alarm = found.get(id).cloned();
            async move {
                let Some(alarm) = alarm else { return Ok(None) };
                observe(aws, alarm).await
            }
        });
        ferroform_core::join_bounded(reads).await
    }

    async fn update(
        aws: &Aws,
        id: &str,
        prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<MetricAlarmOutputs, ProviderError> {
        if changed.iter().any(|f| f != "tags") {
            put(aws, desired, None).await?;
        }
        if changed.iter().any(|f| f == "tags") {
            let cw = aws.cloudwatch();
            let arn = alarm_arn(aws, id).await?;
            let (cw, arn) = (&cw, &arn);
            crate::tags::sync(
                &prior.tags,
                &desired.tags,
                |keys| async { cw.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send().await.map(drop).map_err(sdk) },
                |tags| async move { cw.tag_resource().resource_arn(arn).set_tags(Some(cw_tags(&tags))).send().await.map(drop).map_err(sdk) },
            )
            .await?;
        }
        outputs(aws, id).await
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        absent_if_not_found(aws.cloudwatch().delete_alarms().alarm_names(id).send().await.map_err(sdk)).map(|_| ())
    }

    /// The name is known: DescribeAlarms by it, ours when tagged with our address.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        let found = describe(aws, vec![desired.name.clone()]).await?;
        let Some(arn) = found.get(&desired.name).and_then(|a| a.alarm_arn().map(str::to_string)) else { return Ok(None) };
        let Some(listed) = absent_if_not_found(aws.cloudwatch().list_tags_for_resource().resource_arn(arn).send().await.map_err(sdk))?
        else {
            return Ok(None);
        };
        let ours = listed.tags().iter().any(|t| t.key() == Some(TAG_ADDRESS) && t.value() == Some(meta.address.as_str()));
        Ok(ours.then(|| desired.name.clone()))
    }
}

/// DescribeAlarms for up to 100 names (metric alarms only), following pages.
async fn describe(aws: &Aws, names: Vec<String>) -> Result<BTreeMap<String, aws_sdk_cloudwatch::types::MetricAlarm>, ProviderError> {
    let mut found = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let out = aws
            .cloudwatch()
            .describe_alarms()
            .set_alarm_names(Some(names.clone()))
            .alarm_types(AlarmType::MetricAlarm)
            .max_records(100)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(sdk)?;
        found.extend(out.metric_alarms().iter().filter_map(|a| Some((a.alarm_name()?.to_string(), a.clone()))));
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(found),
        }
    }
}

/// The live alarm in the resource's own shape, with its tags.
async fn observe(aws: &Aws, a: aws_sdk_cloudwatch::types::MetricAlarm) -> Result<Option<Observed<MetricAlarm>>, ProviderError> {
    let name = a.alarm_name().unwrap_or_default().to_string();
    let arn = match a.alarm_arn() {
        Some(arn) => arn.to_string(),
        None => alarm_arn(aws, &name).await?,
    };
    let Some(listed) = absent_if_not_found(aws.cloudwatch().list_tags_for_resource().resource_arn(&arn).send().await.map_err(sdk))? else {
        return Ok(None);
    };
    let tags: Tags = listed.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect();
    let mut inputs = MetricAlarm {
        name: name.clone(),
        namespace: a.namespace().unwrap_or_default().to_string(),
        metric_name: a.metric_name().unwrap_or_default().to_string(),
        dimensions: a.dimensions().iter().filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string()))).collect(),
        statistic: a.statistic().and_then(|s| statistic_from(s.as_str())),
        extended_statistic: a.extended_statistic().filter(|s| !s.is_empty()).map(str::to_string),
        period: a.period().unwrap_or_default(),
        evaluation_periods: a.evaluation_periods().unwrap_or_default(),
        datapoints_to_alarm: a.datapoints_to_alarm(),
        threshold: a.threshold(),
        comparison_operator: a.comparison_operator().and_then(|c| comparison_from(c.as_str())),
        treat_missing_data: a.treat_missing_data().and_then(treat_missing_from),
        alarm_actions: a.alarm_actions().to_vec(),
        ok_actions: a.ok_actions().to_vec(),
        insufficient_data_actions: a.insufficient_data_actions().to_vec(),
        actions_enabled: a.actions_enabled(),
        description: a.alarm_description().map(str::to_string),
        tags: without_aws_managed(tags),
    };
    inputs.normalize();
    Ok(Some(Observed { inputs, outputs: MetricAlarmOutputs { arn, name } }))
}

/// PutMetricAlarm with every field of `a`; `tags` only on create (an existing alarm ignores them).
async fn put(aws: &Aws, a: &MetricAlarm, tags: Option<&Tags>) -> Result<(), ProviderError> {
    aws.cloudwatch()
        .put_metric_alarm()
        .alarm_name(&a.name)
        .namespace(&a.namespace)
        .metric_name(&a.metric_name)
        .set_dimensions(
            (!a.dimensions.is_empty()).then(|| a.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect()),
        )
        .set_statistic(a.statistic.map(|s| aws_sdk_cloudwatch::types::Statistic::from(statistic_name(s))))
        .set_extended_statistic(a.extended_statistic.clone())
        .period(a.period)
        .evaluation_periods(a.evaluation_periods)
        .set_datapoints_to_alarm(a.datapoints_to_alarm)
        .set_threshold(a.threshold)
        .set_comparison_operator(a.comparison_operator.map(|c| ComparisonOperator::from(comparison_str(c))))
        .set_treat_missing_data(a.treat_missing_data.map(|t| treat_missing_str(t).to_string()))
        .set_alarm_actions(Some(a.alarm_actions.clone()))
        .set_ok_actions(Some(a.ok_actions.clone()))
        .set_insufficient_data_actions(Some(a.insufficient_data_actions.clone()))
        .set_actions_enabled(a.actions_enabled)
        // No description is an absent one; a cleared description is sent absent, which the overwrite clears.
        .set_alarm_description(a.description.clone().filter(|d| !d.is_empty()))
        .set_tags(tags.filter(|t| !t.is_empty()).map(cw_tags))
        .send()
        .await
        .map_err(sdk)?;
    Ok(())
}

async fn alarm_arn(aws: &Aws, name: &str) -> Result<String, ProviderError> {
    aws.arn("cloudwatch", &format!("alarm:{name}")).await
}

async fn outputs(aws: &Aws, name: &str) -> Result<MetricAlarmOutputs, ProviderError> {
    Ok(MetricAlarmOutputs { arn: alarm_arn(aws, name).await?, name: name.to_string() })
}

fn cw_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// 10, 20 and 30 seconds (high-resolution metrics) or whole minutes.
fn period_ok(p: i32) -> bool {
    matches!(p, 10 | 20 | 30) || (p > 0 && p % 60 == 0)
}

/// `p99`, `p99.9`, `tm90`, `wm90`, `tc90`, `ts90` (a number from 0 to 100) and `IQM`. Range forms such as
/// `TM(10%:90%)` are let through: CloudWatch checks those itself.
fn extended_statistic_ok(s: &str) -> bool {
    if s == "IQM" || (s.contains('(') && s.ends_with(')')) {
        return true;
    }
    let number = ["tm", "wm", "tc", "ts", "p"].iter().find_map(|prefix| s.strip_prefix(prefix));
    let Some(n) = number else { return false };
    let digits_ok = !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && n.matches('.').count() <= 1
        && !n.starts_with('.')
        && !n.ends_with('.');
    digits_ok && n.parse::<f64>().is_ok_and(|v| (0.0..=100.0).contains(&v))
}

pub(super) fn statistic_name(s: Statistic) -> &'static str {
    match s {
        Statistic::SampleCount => "SampleCount",
        Statistic::Average => "Average",
        Statistic::Sum => "Sum",
        Statistic::Minimum => "Minimum",
        Statistic::Maximum => "Maximum",
    }
}

fn statistic_from(s: &str) -> Option<Statistic> {
    [Statistic::SampleCount, Statistic::Average, Statistic::Sum, Statistic::Minimum, Statistic::Maximum]
        .into_iter()
        .find(|x| statistic_name(*x) == s)
}

fn comparison_str(c: Comparison) -> &'static str {
    match c {
        Comparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
        Comparison::GreaterThanThreshold => "GreaterThanThreshold",
        Comparison::LessThanThreshold => "LessThanThreshold",
        Comparison::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
    }
}

fn comparison_from(s: &str) -> Option<Comparison> {
    [
        Comparison::GreaterThanOrEqualToThreshold,
        Comparison::GreaterThanThreshold,
        Comparison::LessThanThreshold,
        Comparison::LessThanOrEqualToThreshold,
    ]
    .into_iter()
    .find(|x| comparison_str(*x) == s)
}

fn treat_missing_str(t: TreatMissingData) -> &'static str {
    match t {
        TreatMissingData::Breaching => "breaching",
        TreatMissingData::NotBreaching => "notBreaching",
        TreatMissingData::Ignore => "ignore",
        TreatMissingData::Missing => "missing",
    }
}

fn treat_missing_from(s: &str) -> Option<TreatMissingData> {
    [TreatMissingData::Breaching, TreatMissingData::NotBreaching, TreatMissingData::Ignore, TreatMissingData::Missing]
        .into_iter()
        .find(|x| treat_missing_str(*x) == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_on(a: &MetricAlarm) -> Vec<String> {
        a.validate().into_iter().map(|e| e.field).collect()
    }

    fn ok() -> MetricAlarm {
        MetricAlarm::new("errors", "AWS/Lambda", "Errors")
            .dimension("FunctionName", "\u{e000}${ref:fn.name}")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison(Comparison::GreaterThanOrEqualToThreshold)
    }

    #[test]
    fn a_complete_alarm_is_valid() {
        assert!(ok().validate().is_empty(), "{:?}", ok().validate());
        assert!(ok().extended_statistic("p99").validate().is_empty());
        assert!(ok().extended_statistic("p99.9").period(10).validate().is_empty());
    }

    #[test]
    fn periods_are_10_20_30_or_whole_minutes() {
        for p in [10, 20, 30, 60, 120, 300, 3600, 86_400] {
            assert!(errors_on(&ok().period(p)).is_empty(), "{p}");
        }
        for p in [0, -60, 5, 45, 90, 61] {
            assert_eq!(errors_on(&ok().period(p)), ["period"], "{p}");
        }
        assert_eq!(errors_on(&ok().period(86_400).evaluation_periods(8)), ["evaluation_periods"]);
        assert_eq!(errors_on(&ok().evaluation_periods(0)), ["evaluation_periods"]);
        assert_eq!(errors_on(&ok().evaluation_periods(3).datapoints_to_alarm(4)), ["datapoints_to_alarm"]);
        assert!(errors_on(&ok().evaluation_periods(3).datapoints_to_alarm(2)).is_empty());
    }

    #[test]
    fn exactly_one_statistic_and_percentiles_checked() {
        let mut both = ok();
        both.extended_statistic = Some("p99".into());
        assert_eq!(errors_on(&both), ["extended_statistic"]);
        let mut neither = ok();
        neither.statistic = None;
        assert_eq!(errors_on(&neither), ["statistic"]);
        for good in ["p0", "p50", "p99", "p99.99", "p100", "tm90", "wm99.5", "IQM", "TM(10%:90%)"] {
            assert!(extended_statistic_ok(good), "{good}");
        }
        for bad in ["p", "p101", "99", "P99", "p9x", "p.5", "p99.", "avg", ""] {
            assert!(!extended_statistic_ok(bad), "{bad}");
            assert_eq!(errors_on(&ok().extended_statistic(bad)), ["extended_statistic"], "{bad}");
        }
    }

    #[test]
    fn names_thresholds_and_actions_checked() {
        assert_eq!(errors_on(&MetricAlarm { name: String::new(), ..ok() }), ["name"]);
        assert_eq!(errors_on(&MetricAlarm { name: "x".repeat(256), ..ok() }), ["name"]);
        assert_eq!(errors_on(&MetricAlarm { name: "a\nb".into(), ..ok() }), ["name"]);
        assert!(errors_on(&MetricAlarm { name: "hello p99 duration (ms) / prod".into(), ..ok() }).is_empty());
        assert_eq!(errors_on(&MetricAlarm { namespace: ":x".into(), ..ok() }), ["namespace"]);
        assert_eq!(errors_on(&MetricAlarm { threshold: None, comparison_operator: None, ..ok() }), ["threshold", "comparison_operator"]);
        assert_eq!(errors_on(&ok().threshold(f64::NAN)), ["threshold"]);
        assert_eq!(errors_on(&ok().alarm_action("sns-topic")), ["alarm_actions"]);
        assert!(errors_on(&ok().alarm_action("\u{e000}${ref:topic.arn}")).is_empty());
        assert_eq!(errors_on(&ok().dimension("FunctionName", "")), ["dimensions"]);
        assert_eq!(errors_on(&ok().tag("aws:x", "y")), ["tags"]);
    }

    #[test]
    fn unset_settings_mean_cloudwatchs_defaults() {
        let mut unset = ok().evaluation_periods(3);
        unset.normalize();
        assert_eq!(unset.datapoints_to_alarm, Some(3));
        assert_eq!(unset.treat_missing_data, Some(TreatMissingData::Missing));
        assert_eq!(unset.actions_enabled, Some(true));
        assert_eq!(unset.description.as_deref(), Some(""));
        let mut explicit = ok()
            .evaluation_periods(3)
            .datapoints_to_alarm(3)
            .treat_missing_data(TreatMissingData::Missing)
            .actions_enabled(true)
            .description("");
        explicit.normalize();
        assert_eq!(unset, explicit);
        let again = unset.clone();
        unset.normalize();
        assert_eq!(unset, again, "idempotent");
    }

    #[test]
    fn enums_serialize_as_aws_spells_them() {
        let v = serde_json::to_value(ok().treat_missing_data(TreatMissingData::NotBreaching)).unwrap_or_default();
        assert_eq!(v["statistic"], "Sum");
        assert_eq!(v["comparison_operator"], "GreaterThanOrEqualToThreshold");
        assert_eq!(v["treat_missing_data"], "notBreaching");
        assert_eq!(v["dimensions"]["FunctionName"], "\u{e000}${ref:fn.name}");
        for t in [TreatMissingData::Breaching, TreatMissingData::NotBreaching, TreatMissingData::Ignore, TreatMissingData::Missing] {
            assert_eq!(treat_missing_from(treat_missing_str(t)), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap_or_default(), treat_missing_str(t));
        }
        assert_eq!(statistic_from("Maximum"), Some(Statistic::Maximum));
        assert_eq!(comparison_from("LessThanThreshold"), Some(Comparison::LessThanThreshold));
    }

    #[test]
    fn actions_compare_as_sets() {
        let mut a = ok().alarm_action("arn:b").alarm_action("arn:a").alarm_action("arn:b");
        a.normalize();
        assert_eq!(a.alarm_actions, ["arn:a", "arn:b"]);
    }
}
