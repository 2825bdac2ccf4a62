//! The bucket remote state lives in (`--state s3://BUCKET/KEY`), and the permissions the S3 backend needs on it.
//!
//! ```ignore
//! // examples/bootstrap.rs: cargo run --example bootstrap -- apply --var bucket=my-team-ferroform-state
//! let bucket = components::state_bucket(&mut stack, "my-team-ferroform-state");
//! ```

use crate::context::declared_partition;
use crate::iam::Statement;
use crate::s3::Bucket;
use ferroform_core::{Handle, Name, Stack};

/// How long a replaced state version is kept before the bucket's lifecycle rule deletes it.
pub const STATE_NONCURRENT_VERSION_DAYS: i32 = 90;

/// Adds `state-bucket`: versioned (every state write keeps the one before it), SSE-S3 encrypted, all public
/// access blocked, versions replaced more than [`STATE_NONCURRENT_VERSION_DAYS`] ago expired. Protected from
/// destroy, as every bucket is by default.
pub fn state_bucket(s: &mut Stack, name: impl Into<String>) -> Handle<Bucket> {
    s.add("state-bucket", Bucket::for_state(name).expire_noncurrent_versions_after(STATE_NONCURRENT_VERSION_DAYS))
}

/// What a role needs on a state bucket: `s3:ListBucket` on the bucket (so a missing state object reads as
/// absent, not as access denied) and `s3:GetObject` on the state objects matching `keys` (`*`,
/// `pedidos.json*`); with `write`, also `s3:PutObject` and `s3:DeleteObject`, for the state and its lock
/// object (`KEY.lock`, created with a conditional write and deleted on release). `plan` takes no lock, so
/// read access is enough for it.
pub fn state_access(bucket: &Name<Bucket>, keys: &str, write: bool) -> Vec<Statement> {
    let mut object_actions = vec!["s3:GetObject"];
    if write {
        object_actions.extend(["s3:PutObject", "s3:DeleteObject"]);
    }
    vec![
        Statement::allow().action("s3:ListBucket").resource(format!("arn:{p}:s3:::{bucket}", p = declared_partition())),
        Statement::allow().actions(object_actions).resource(format!("arn:{p}:s3:::{bucket}/{keys}", p = declared_partition())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_access_cannot_write_or_unlock() {
        let read = state_access(&Name::literal("b"), "*", false);
        assert!(read.iter().all(|s| !s.actions.iter().any(|a| a == "s3:PutObject" || a == "s3:DeleteObject")));
        let write = state_access(&Name::literal("b"), "app.json*", true);
        assert_eq!(write[1].resources, ["arn:aws:s3:::b/app.json*"]);
        assert!(write[1].actions.iter().any(|a| a == "s3:DeleteObject"));
    }
}
