//! S3 (`aws-sdk-s3`): the state bucket, and state kept in it.

mod backend;

pub use backend::S3Backend;

pub(crate) fn register(_reg: &mut ferroform_core::Registry) {}
