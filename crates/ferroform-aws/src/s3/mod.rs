//! S3 (`aws-sdk-s3`): the state bucket, and state kept in it.

mod backend;
mod bucket;

pub use backend::S3Backend;
pub use bucket::{Bucket, BucketOutputs, BucketRefs, Encryption, NONCURRENT_RULE_ID};

pub(crate) fn register(reg: &mut ferroform_core::Registry) {
    reg.register::<Bucket>();
}
