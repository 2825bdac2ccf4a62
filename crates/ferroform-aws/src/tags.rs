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

/// What brings live tags to the desired ones: the keys to remove (never AWS's own `aws:*`), and the tags that
/// are new or changed.
pub fn changes(live: &Tags, desired: &Tags) -> (Vec<String>, Tags) {
    let stale = live.keys().filter(|k| !desired.contains_key(*k) && !k.starts_with("aws:")).cloned().collect();
    let fresh = desired.iter().filter(|(k, v)| live.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    (stale, fresh)
}

/// Brings live tags to the desired ones with the service's own calls: `untag` (only when keys go) first, then
/// `tag` (only when tags are new or changed). Every service's update does its tags through this.
pub async fn sync<U, T>(
    live: &Tags,
    desired: &Tags,
    untag: impl FnOnce(Vec<String>) -> U,
    tag: impl FnOnce(Tags) -> T,
) -> Result<(), ferroform_core::ProviderError>
where
    U: std::future::Future<Output = Result<(), ferroform_core::ProviderError>>,
    T: std::future::Future<Output = Result<(), ferroform_core::ProviderError>>,
{
    let (stale, fresh) = changes(live, desired);
    if !stale.is_empty() {
        untag(stale).await?;
    }
    if !fresh.is_empty() {
        tag(fresh).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_remove_what_goes_and_set_what_is_new_or_changed_never_aws_tags() {
        let t = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Tags>();
        let live = t(&[("keep", "1"), ("gone", "x"), ("changed", "a"), ("aws:cloudformation:stack-name", "s")]);
        let desired = t(&[("keep", "1"), ("changed", "b"), ("new", "n")]);
        let (stale, fresh) = changes(&live, &desired);
        assert_eq!(stale, ["gone"]);
        assert_eq!(fresh, t(&[("changed", "b"), ("new", "n")]));
    }
}
