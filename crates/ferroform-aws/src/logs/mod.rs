//! CloudWatch Logs (`aws-sdk-cloudwatchlogs`).

mod log_group;

pub use log_group::{LogGroup, LogGroupOutputs, LogGroupRefs};

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<LogGroup>();
}
