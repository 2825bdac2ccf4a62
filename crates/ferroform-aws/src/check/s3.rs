//! S3: public access, encryption and versioning of buckets.

use super::{typed, Hit, Rule, Severity};
use crate::s3::{Bucket, Encryption};
use ferroform_core::{Declared, Resource};

pub(super) static RULES: &[Rule] = &[
    Rule {
        id: "FF-S3-001",
        severity: Severity::High,
        resource_type: Bucket::TYPE,
        title: "A bucket does not block public access",
        why: "Without the four public-access blocks, one bucket policy or object ACL is enough to publish its objects.",
        fix: "Set `block_public_access: true` (as `Bucket::for_state` does); serve public files through CloudFront instead.",
        check: |d, _| {
            on(d, |b| (!b.block_public_access).then(|| Hit::new("block_public_access", "false: a policy or ACL can make objects public")))
        },
    },
    Rule {
        id: "FF-S3-002",
        severity: Severity::Low,
        resource_type: Bucket::TYPE,
        title: "A bucket is encrypted with S3's own keys (SSE-S3), not a KMS key",
        why: "SSE-S3 protects the disks only: whoever may read the object reads it clear. A KMS key adds a second \
              permission (kms:Decrypt) and an audit trail of every decryption in CloudTrail.",
        fix: "`Bucket::kms(None)` (the AWS-managed key) or `kms(Some(key_arn))`; or allow the rule with the reason \
              SSE-S3 is enough here.",
        check: |d, _| on(d, |b| (b.encryption == Encryption::S3).then(|| Hit::new("encryption", "SSE-S3 (AES256), no KMS key"))),
    },
    Rule {
        id: "FF-S3-003",
        severity: Severity::High,
        resource_type: Bucket::TYPE,
        title: "A bucket holding state has no versioning",
        why: "State is the only record of what the stack owns: without versions, one bad write or delete loses it \
              and every resource it tracked becomes an orphan.",
        fix: "`Bucket::for_state(name)` (versioned, private, expiring old versions) or `versioning: true`.",
        check: |d, _| on(d, |b| (holds_state(d, b) && !b.versioning).then(|| Hit::new("versioning", "false on a state bucket"))),
    },
    Rule {
        id: "FF-S3-004",
        severity: Severity::Low,
        resource_type: Bucket::TYPE,
        title: "A bucket has no versioning",
        why: "An overwrite or delete (by a bug, a person or ransomware) is final without versions.",
        fix: "Set `versioning: true`, with `expire_noncurrent_versions_after(days)` to bound the cost.",
        check: |d, _| on(d, |b| (!holds_state(d, b) && !b.versioning).then(|| Hit::new("versioning", "false"))),
    },
];

fn on(d: &Declared, f: impl FnOnce(&Bucket) -> Option<Hit>) -> Vec<Hit> {
    typed::<Bucket>(d).and_then(|b| f(&b)).into_iter().collect()
}

/// A state bucket by its address or name (`state-bucket`, `my-team-ferroform-state`).
fn holds_state(d: &Declared, b: &Bucket) -> bool {
    d.address.contains("state") || b.name.contains("state") || b.name.contains("tfstate")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::testing::{fired, stack};
    use crate::s3::Bucket;

    fn bucket(name: &str) -> Bucket {
        Bucket::for_state(name)
    }

    #[test]
    fn ff_s3_001_public_access_block() {
        let mut s = stack();
        let mut bad = bucket("site");
        bad.block_public_access = false;
        s.add("bad", bad);
        s.add("ok", bucket("data"));
        assert_eq!(fired(&s, "FF-S3-001"), [("bad".into(), "block_public_access".into())]);
    }

    #[test]
    fn ff_s3_002_kms() {
        let mut s = stack();
        s.add("bad", bucket("a"));
        s.add("ok", bucket("b").kms(None));
        assert_eq!(fired(&s, "FF-S3-002"), [("bad".into(), "encryption".into())]);
    }

    #[test]
    fn ff_s3_003_state_versioning() {
        let mut s = stack();
        let mut bad = bucket("team-state");
        bad.versioning = false;
        let mut other = bucket("assets");
        other.versioning = false;
        s.add("bad", bad);
        s.add("assets", other);
        s.add("ok", bucket("team-state-2"));
        assert_eq!(fired(&s, "FF-S3-003"), [("bad".into(), "versioning".into())]);
    }

    #[test]
    fn ff_s3_004_versioning() {
        let mut s = stack();
        let mut bad = bucket("assets");
        bad.versioning = false;
        s.add("bad", bad);
        s.add("ok", bucket("logs"));
        assert_eq!(fired(&s, "FF-S3-004"), [("bad".into(), "versioning".into())]);
    }
}
