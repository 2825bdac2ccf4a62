//! Tags: every taggable resource carries `ferroform:stack`, `ferroform:address` and the stack's default tags.

use ferroform_core::{is_unknown_str, FieldError};
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

/// The tag rules most services share: at most 50, keys 1 to 128 characters, values up to 256, no `aws:`
/// prefix. `service` names who enforces them in the message.
pub fn check(e: &mut Vec<FieldError>, tags: &Tags, service: &str) {
    if tags.len() > 50 {
        e.push(FieldError::new("tags", format!("{} tags; {service} allows 50 (the engine adds 2)", tags.len())));
    }
    for (k, v) in tags {
        if is_unknown_str(k) {
            continue;
        }
        if k.is_empty() || k.chars().count() > 128 {
            e.push(FieldError::new("tags", format!("key `{k}` must be 1 to 128 characters long")));
        } else if k.to_ascii_lowercase().starts_with("aws:") {
            e.push(FieldError::new("tags", format!("key `{k}`: the `aws:` prefix is reserved for AWS")));
        }
        if !is_unknown_str(v) && v.chars().count() > 256 {
            e.push(FieldError::new("tags", format!("the value of `{k}` is longer than 256 characters")));
        }
    }
}
