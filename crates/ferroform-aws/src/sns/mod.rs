//! SNS (`aws-sdk-sns`): topics and their subscriptions.

mod subscription;
mod topic;

pub use subscription::{Protocol, Subscription, SubscriptionOutputs, SubscriptionRefs};
pub use topic::{Topic, TopicOutputs, TopicRefs};

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<Topic>();
    reg.register::<Subscription>();
}
