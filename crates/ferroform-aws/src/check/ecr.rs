//! ECR: image scanning and tag immutability of repositories.

use super::{typed, Hit, Rule, Severity};
use crate::ecr::{Repository, TagMutability};
use ferroform_core::Resource;

pub(super) static RULES: &[Rule] = &[
    Rule {
        id: "FF-ECR-001",
        severity: Severity::Medium,
        resource_type: Repository::TYPE,
        title: "A repository does not scan images on push",
        why: "Known vulnerabilities in the base image or its packages then reach production unnoticed.",
        fix: "`Repository::scan_on_push(true)`.",
        check: |d, _| {
            typed::<Repository>(d)
                .filter(|r| r.scan_on_push != Some(true))
                .map(|_| Hit::new("scan_on_push", "not enabled"))
                .into_iter()
                .collect()
        },
    },
    Rule {
        id: "FF-ECR-002",
        severity: Severity::Low,
        resource_type: Repository::TYPE,
        title: "A repository's image tags are mutable",
        why: "A pushed tag can be moved to another image: what runs is then not what was reviewed and scanned, and \
              a rollback to that tag may bring back something else.",
        fix: "`Repository::immutable_tags()` and one tag per build (the commit SHA, as the pipeline pushes).",
        check: |d, _| {
            let Some(r) = typed::<Repository>(d) else { return Vec::new() };
            match r.image_tag_mutability {
                Some(TagMutability::Immutable) => Vec::new(),
                Some(TagMutability::ImmutableWithExclusion) => Vec::new(),
                Some(other) => vec![Hit::new("image_tag_mutability", format!("{other:?}"))],
                None => vec![Hit::new("image_tag_mutability", "unset: AWS's default, MUTABLE")],
            }
        },
    },
];

#[cfg(test)]
mod tests {
    use super::super::testing::{fired, stack};
    use crate::ecr::Repository;

    #[test]
    fn ff_ecr_001_scan_on_push() {
        let mut s = stack();
        s.add("bad", Repository::new("a"));
        s.add("ok", Repository::new("b").scan_on_push(true));
        assert_eq!(fired(&s, "FF-ECR-001"), [("bad".into(), "scan_on_push".into())]);
    }

    #[test]
    fn ff_ecr_002_immutable_tags() {
        let mut s = stack();
        s.add("bad", Repository::new("a"));
        s.add("ok", Repository::new("b").immutable_tags());
        assert_eq!(fired(&s, "FF-ECR-002"), [("bad".into(), "image_tag_mutability".into())]);
    }
}
