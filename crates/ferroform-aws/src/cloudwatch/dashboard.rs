//! CloudWatch dashboard. APIs: PutDashboard, GetDashboard, DeleteDashboards.
//!
//! The body is JSON and is compared as a JSON value (key order and `300` vs `300.0` don't matter), never as
//! text. It may hold references (`function.name()` in a metric's dimension): the engine finds the tokens in
//! the serialized body, orders the dashboard after what it names, and substitutes the values before the
//! body is compared or sent. Dashboards are not tagged here (the emulator has no dashboard tags).
//!
//! Defaults: none to fill. Both fields are required, and CloudWatch keeps the body as sent (it adds no
//! values of its own), so a property removed from the body is a change of `body` and the next PutDashboard
//! removes it. Left to AWS when unset: nothing.

use crate::error::{absent_if_not_found, sdk};
use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{is_unknown, is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// Changing it forces a new dashboard.
    pub name: String,
    /// `{"widgets": [...]}`, as a JSON value (a JSON text in a string is accepted and parsed), or built
    /// with [`DashboardBody`].
    pub body: Value,
}

ferroform_core::outputs! {
    pub struct DashboardOutputs => DashboardRefs {
        pub arn: String as ferroform_core::Arn<Dashboard>,
        pub name: String as ferroform_core::Name<Dashboard>,
    }
}

impl Dashboard {
    pub fn new(name: impl Into<String>, body: impl Into<Value>) -> Self {
        Self { name: name.into(), body: body.into() }
    }
}

/// Builds a dashboard body: widgets laid out left to right, two half-width widgets a row.
///
/// ```ignore
/// DashboardBody::new("eu-west-1")
///     .metric_widget("Invocations", [["AWS/Lambda", "Invocations", "FunctionName", &fn_name]], Statistic::Sum, 60)
///     .metric_widget("p99 duration", [["AWS/Lambda", "Duration", "FunctionName", &fn_name]], "p99", 60)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardBody {
    region: String,
    widgets: Vec<Value>,
    x: i64,
    y: i64,
    row_height: i64,
}

impl DashboardBody {
    /// Metric widgets show metrics of `region` (CloudWatch requires one per widget).
    pub fn new(region: impl Into<String>) -> Self {
        Self { region: region.into(), widgets: Vec::new(), x: 0, y: 0, row_height: 0 }
    }

    /// A time-series graph of `metrics`, each `[namespace, metric name, dimension name, dimension value, ...]`
    /// (values may be references), with one statistic (`Sum`, `p99`, ...) over `period` seconds.
    pub fn metric_widget<M, S>(
        self,
        title: impl Into<String>,
        metrics: impl IntoIterator<Item = M>,
        stat: impl Into<String>,
        period: i32,
    ) -> Self
    where
        M: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let metrics: Vec<Vec<String>> = metrics.into_iter().map(|m| m.into_iter().map(Into::into).collect()).collect();
        let properties = json!({
            "title": title.into(),
            "view": "timeSeries",
            "stacked": false,
            "region": self.region,
            "stat": stat.into(),
            "period": period,
            "metrics": metrics,
        });
        self.place(json!({"type": "metric", "properties": properties}), 12, 6)
    }

    /// A markdown text, full width.
    pub fn text_widget(self, markdown: impl Into<String>) -> Self {
        self.place(json!({"type": "text", "properties": {"markdown": markdown.into()}}), 24, 2)
    }

    /// Any widget, as CloudWatch's JSON (`{"type": ..., "properties": ...}`), `width` x `height` grid units.
    pub fn widget(self, widget: Value, width: i64, height: i64) -> Self {
        self.place(widget, width, height)
    }

    fn place(mut self, mut widget: Value, width: i64, height: i64) -> Self {
        if self.x + width > 24 {
            self.x = 0;
            self.y += self.row_height;
            self.row_height = 0;
        }
        if let Value::Object(w) = &mut widget {
            w.insert("x".into(), json!(self.x));
            w.insert("y".into(), json!(self.y));
            w.insert("width".into(), json!(width));
            w.insert("height".into(), json!(height));
        }
        self.widgets.push(widget);
        self.x += width;
        self.row_height = self.row_height.max(height);
        self
    }

    pub fn to_value(&self) -> Value {
        json!({ "widgets": self.widgets })
    }
}

impl From<DashboardBody> for Value {
    fn from(b: DashboardBody) -> Value {
        b.to_value()
    }
}

impl From<super::Statistic> for String {
    fn from(s: super::Statistic) -> String {
        super::metric_alarm::statistic_name(s).to_string()
    }
}

#[async_trait]
impl Resource for Dashboard {
    const TYPE: &'static str = "aws_cloudwatch_dashboard";
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] = &[("name", "dashboard_name")];
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    type Outputs = DashboardOutputs;
    type Refs = DashboardRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        crate::validate::name(
            &mut e,
            "name",
            &self.name,
            1,
            255,
            |c| c.is_ascii_alphanumeric() || c == '_' || c == '-',
            "letters, digits, `_` and `-`",
        );
        let body = match &self.body {
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(v) => v,
                Err(_) if is_unknown_str(s) => return e,
                Err(err) => {
                    e.push(FieldError::new("body", format!("not valid JSON: {err}")));
                    return e;
                }
            },
            other => other.clone(),
        };
        let Some(widgets) = body.get("widgets") else {
            e.push(FieldError::new("body", "must be a JSON object with a `widgets` array"));
            return e;
        };
        let Some(widgets) = widgets.as_array() else {
            e.push(FieldError::new("body", "`widgets` must be an array"));
            return e;
        };
        if widgets.len() > 500 {
            e.push(FieldError::new("body", format!("{} widgets; a dashboard holds 500", widgets.len())));
        }
        for (i, w) in widgets.iter().enumerate() {
            if !w.is_object() {
                e.push(FieldError::new("body", format!("widgets[{i}] must be an object")));
                continue;
            }
            if w.get("type").and_then(Value::as_str).is_none() && !is_unknown(w) {
                e.push(FieldError::new("body", format!("widgets[{i}] has no `type`")));
            }
            if w.get("type").and_then(Value::as_str) == Some("metric") && w.pointer("/properties/region").is_none() {
                e.push(FieldError::new("body", format!("widgets[{i}]: a metric widget needs `properties.region`")));
            }
        }
        if body.to_string().len() > 1 << 20 {
            e.push(FieldError::new("body", "larger than the 1 MiB CloudWatch accepts"));
        }
        e
    }

    fn normalize(&mut self) {
        if let Value::String(s) = &self.body {
            if let Ok(v) = serde_json::from_str::<Value>(s) {
                self.body = v;
            }
        }
        self.body = canonical(&self.body);
    }

    async fn create(aws: &Aws, desired: &Self, _meta: &CallMeta) -> Result<(String, DashboardOutputs), ProviderError> {
        // A put by name: sent twice (the SDK's retry after a lost answer) it leaves one, the same; no
        // `create_once` needed.
        put(aws, desired).await?;
        Ok((desired.name.clone(), outputs(aws, &desired.name).await?))
    }

    async fn read(aws: &Aws, id: &str, _prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let Some(out) = absent_if_not_found(aws.cloudwatch().get_dashboard().dashboard_name(id).send().await.map_err(sdk))? else {
            return Ok(None);
        };
        let text = out.dashboard_body().unwrap_or("{}");
        let body = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
        let mut inputs = Dashboard { name: id.to_string(), body };
        inputs.normalize();
        let arn = match out.dashboard_arn() {
            Some(arn) => arn.to_string(),
            None => dashboard_arn(aws, id).await?,
        };
        Ok(Some(Observed { inputs, outputs: DashboardOutputs { arn, name: id.to_string() } }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        _prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<DashboardOutputs, ProviderError> {
        if changed.iter().any(|f| f == "body") {
            put(aws, desired).await?;
        }
        outputs(aws, id).await
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        absent_if_not_found(aws.cloudwatch().delete_dashboards().dashboard_names(id).send().await.map_err(sdk)).map(|_| ())
    }

    /// Dashboards carry no tags here; the name is the identity (PutDashboard would overwrite a dashboard of
    /// that name anyway), so the one a killed run made is the one of this name.
    async fn find_by_tags(aws: &Aws, desired: &Self, meta: &CallMeta) -> Result<Option<String>, ProviderError> {
        crate::adopt::by_id(aws, desired.name.clone(), desired, meta).await
    }
}

/// PutDashboard; its validation messages are warnings (errors fail the call), so they are logged.
async fn put(aws: &Aws, d: &Dashboard) -> Result<(), ProviderError> {
    let out = aws.cloudwatch().put_dashboard().dashboard_name(&d.name).dashboard_body(d.body.to_string()).send().await.map_err(sdk)?;
    for m in out.dashboard_validation_messages() {
        tracing::warn!(dashboard = %d.name, path = m.data_path().unwrap_or_default(), "{}", m.message().unwrap_or_default());
    }
    Ok(())
}

/// Dashboards are global: their ARN has no region.
async fn dashboard_arn(aws: &Aws, name: &str) -> Result<String, ProviderError> {
    Ok(format!("arn:aws:cloudwatch::{}:dashboard/{name}", aws.account_id().await?))
}

async fn outputs(aws: &Aws, name: &str) -> Result<DashboardOutputs, ProviderError> {
    Ok(DashboardOutputs { arn: dashboard_arn(aws, name).await?, name: name.to_string() })
}

/// Keys sorted and whole floats written as integers, so equal bodies serialize alike (the digests of plans
/// and state stay stable) whatever order or number spelling they came in.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&m[k]))).collect::<Map<String, Value>>())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => v.clone(),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudwatch::Statistic;
    use ferroform_core::Ref;

    fn body() -> DashboardBody {
        let fn_name: String = Ref::<String>::new("hello-fn", "name").into();
        DashboardBody::new("us-east-1")
            .metric_widget("Invocations", [["AWS/Lambda", "Invocations", "FunctionName", fn_name.as_str()]], Statistic::Sum, 60)
            .metric_widget("p99 duration", [["AWS/Lambda", "Duration", "FunctionName", fn_name.as_str()]], "p99", 60)
            .text_widget("# hello")
    }

    #[test]
    fn the_builder_lays_out_metric_widgets() {
        let v = body().to_value();
        let w = v["widgets"].as_array().cloned().unwrap_or_default();
        assert_eq!(w.len(), 3);
        assert_eq!((w[0]["x"].as_i64(), w[1]["x"].as_i64(), w[2]["y"].as_i64()), (Some(0), Some(12), Some(6)));
        assert_eq!(w[0]["properties"]["stat"], "Sum");
        assert_eq!(w[1]["properties"]["stat"], "p99");
        assert_eq!(w[1]["properties"]["metrics"][0][3], "\u{e000}${ref:hello-fn.name}");
        assert!(Dashboard::new("hello", body()).validate().is_empty());
    }

    #[test]
    fn references_in_the_body_stay_tokens_the_engine_finds() {
        // The engine looks for `${ref:...}` in the serialized inputs: the token must survive serialization,
        // validation and normalization untouched, and mark the body unknown until resolved.
        let mut d = Dashboard::new("hello", body());
        assert!(d.validate().is_empty());
        d.normalize();
        let inputs = serde_json::to_value(&d).unwrap_or_default();
        assert!(is_unknown(&inputs["body"]));
        assert_eq!(inputs["body"]["widgets"][0]["properties"]["metrics"][0][3], "\u{e000}${ref:hello-fn.name}");
        // Resolved, the same body is known and still valid.
        let text = inputs.to_string().replace("\u{e000}${ref:hello-fn.name}", "hello-api");
        let mut resolved: Dashboard = serde_json::from_str(&text).unwrap_or_else(|_| Dashboard::new("x", json!({})));
        resolved.normalize();
        assert!(!is_unknown(&resolved.body) && resolved.validate().is_empty());
        assert_eq!(resolved.body["widgets"][1]["properties"]["metrics"][0][3], "hello-api");
    }

    #[test]
    fn bodies_compare_as_json_values() {
        let mut a = Dashboard::new("d", json!({"widgets": [{"type": "text", "x": 0, "properties": {"markdown": "hi"}, "width": 24.0}]}));
        let mut b = Dashboard::new("d", r#"{"widgets":[{"width":24,"properties":{"markdown":"hi"},"x":0.0,"type":"text"}]}"#);
        a.normalize();
        b.normalize();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a.body).ok(), serde_json::to_string(&b.body).ok());
        let mut c = Dashboard::new("d", json!({"widgets": [{"type": "text", "x": 0, "properties": {"markdown": "bye"}, "width": 24}]}));
        c.normalize();
        assert_ne!(a, c);
        assert_eq!(canonical(&json!(0.5)), json!(0.5));
    }

    #[test]
    fn names_and_bodies_checked() {
        let fields = |d: Dashboard| d.validate().into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert!(fields(Dashboard::new("hello-prod_1", json!({"widgets": []}))).is_empty());
        for bad in ["", "has space", "dots.too", "slash/no"] {
            assert_eq!(fields(Dashboard::new(bad, json!({"widgets": []}))), ["name"], "{bad}");
        }
        assert_eq!(fields(Dashboard::new("x".repeat(256), json!({"widgets": []}))), ["name"]);
        assert_eq!(fields(Dashboard::new("d", json!({"panels": []}))), ["body"]);
        assert_eq!(fields(Dashboard::new("d", json!([1, 2]))), ["body"]);
        assert_eq!(fields(Dashboard::new("d", "{not json")), ["body"]);
        assert_eq!(fields(Dashboard::new("d", json!({"widgets": {}}))), ["body"]);
        assert_eq!(fields(Dashboard::new("d", json!({"widgets": [{"type": "metric", "properties": {"metrics": []}}]}))), ["body"]);
        assert!(fields(Dashboard::new("d", r#"{"widgets":[]}"#)).is_empty());
    }
}
