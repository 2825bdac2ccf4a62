//! CloudWatch (`aws-sdk-cloudwatch`): metric alarms and dashboards.

mod dashboard;
mod metric_alarm;

pub use dashboard::{Dashboard, DashboardBody, DashboardOutputs, DashboardRefs};
pub use metric_alarm::{Comparison, MetricAlarm, MetricAlarmOutputs, MetricAlarmRefs, Statistic, TreatMissingData};

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<MetricAlarm>();
    reg.register::<Dashboard>();
}
