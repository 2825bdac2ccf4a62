//! Tags: every taggable resource carries `ferroform:stack`, `ferroform:address` and the stack's default tags.

use std::collections::BTreeMap;

pub type Tags = BTreeMap<String, String>;

/// Adds `defaults` under the user's own tags (the user's value wins on a clash).
pub fn merge_defaults(tags: &mut Tags, defaults: &Tags) {
    for (k, v) in defaults {
        tags.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// Tags AWS manages itself (`aws:*`): never ours to diff or set.
pub fn without_aws_managed(tags: Tags) -> Tags {
    tags.into_iter().filter(|(k, _)| !k.starts_with("aws:")).collect()
}
