//! CloudWatch Logs (`aws-sdk-cloudwatchlogs`).

mod log_group;
mod metric_filter;

pub use log_group::{LogGroup, LogGroupOutputs, LogGroupRefs};
pub use metric_filter::{MetricFilter, MetricFilterOutputs, MetricFilterRefs, MetricTransformation};

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<LogGroup>();
    reg.register::<MetricFilter>();
}
