//! CloudWatch: alarms nobody hears.

use super::{typed, Hit, Rule, Severity};
use crate::cloudwatch::MetricAlarm;
use ferroform_core::Resource;

pub(super) static RULES: &[Rule] = &[Rule {
    id: "FF-CW-001",
    severity: Severity::Low,
    resource_type: MetricAlarm::TYPE,
    title: "An alarm notifies nobody",
    why: "An alarm without actions (or with actions disabled) changes colour on a dashboard nobody is watching \
          when it matters.",
    fix: "`MetricAlarm::alarm_action(topic_arn)` (an SNS topic with a subscriber), and `ok_action` to hear the recovery.",
    check: |d, _| {
        let Some(a) = typed::<MetricAlarm>(d) else { return Vec::new() };
        if a.actions_enabled == Some(false) {
            vec![Hit::new("actions_enabled", "false: its actions never run")]
        } else if a.alarm_actions.is_empty() {
            vec![Hit::new("alarm_actions", "empty: going off notifies nobody")]
        } else {
            Vec::new()
        }
    },
}];

#[cfg(test)]
mod tests {
    use super::super::testing::{fired, stack};
    use crate::cloudwatch::MetricAlarm;

    #[test]
    fn ff_cw_001_alarm_actions() {
        let alarm = |n: &str| MetricAlarm::new(n, "AWS/Lambda", "Errors").threshold(1.0);
        let mut s = stack();
        s.add("bad", alarm("a"));
        s.add("disabled", alarm("b").alarm_action("arn:aws:sns:us-east-1:1:t").actions_enabled(false));
        s.add("ok", alarm("c").alarm_action("arn:aws:sns:us-east-1:1:t"));
        assert_eq!(fired(&s, "FF-CW-001"), [("bad".into(), "alarm_actions".into()), ("disabled".into(), "actions_enabled".into())]);
    }
}
