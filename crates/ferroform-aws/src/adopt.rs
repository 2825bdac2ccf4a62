//! Finding what a killed run made, for types AWS does not let us list by tag: by the identity AWS knows
//! them by (a name, a route key within its API, a statement id within a function's policy).

use crate::tags::Tags;
use crate::Aws;
use ferroform_core::{CallMeta, ProviderError, Resource, TAG_ADDRESS, TAG_STACK};

/// `id` when a read finds it and `meta.exclude` does not name it (a deposed object, or one another
/// address holds).
pub(crate) async fn by_id<R: Resource<Context = Aws>>(
    aws: &Aws,
    id: String,
    desired: &R,
    meta: &CallMeta,
) -> Result<Option<String>, ProviderError> {
    if meta.exclude.contains(&id) {
        return Ok(None);
    }
    Ok(R::read(aws, &id, desired).await?.map(|_| id))
}

/// The first of `candidates` (in id order, so a retried lookup picks the same one) that `meta.exclude` does
/// not name.
pub(crate) fn first_free(candidates: impl IntoIterator<Item = String>, meta: &CallMeta) -> Option<String> {
    let mut free: Vec<String> = candidates.into_iter().filter(|id| !meta.exclude.contains(id)).collect();
    free.sort();
    free.into_iter().next()
}

/// Whether tags read back say the object may be this address's: ours, or no ferroform tags at all (an
/// object whose tags were to be set by a later call the killed run never made, or an emulator that drops
/// tags). Another address's or stack's object never is.
pub(crate) fn maybe_ours(tags: &Tags, meta: &CallMeta) -> bool {
    match (tags.get(TAG_STACK), tags.get(TAG_ADDRESS)) {
        (None, None) => true,
        (stack, address) => stack == Some(&meta.stack) && address == Some(&meta.address),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(exclude: &[&str]) -> CallMeta {
        CallMeta {
            stack: "s".into(),
            address: "api/get/integration".into(),
            exclude: exclude.iter().map(|x| x.to_string()).collect::<Vec<_>>().into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_first_free_candidate_is_taken_in_id_order() {
        let ids = || ["api/b".to_string(), "api/a".to_string(), "api/c".to_string()];
        assert_eq!(first_free(ids(), &meta(&[])), Some("api/a".into()));
        assert_eq!(first_free(ids(), &meta(&["api/a"])), Some("api/b".into()));
        assert_eq!(first_free(ids(), &meta(&["api/a", "api/b", "api/c"])), None);
        assert_eq!(first_free(Vec::new(), &meta(&[])), None);
    }

    #[test]
    fn only_our_tags_or_none_may_be_ours() {
        let m = meta(&[]);
        let tags = |s: &str, a: &str| Tags::from([(TAG_STACK.to_string(), s.to_string()), (TAG_ADDRESS.to_string(), a.to_string())]);
        assert!(maybe_ours(&tags("s", "api/get/integration"), &m));
        assert!(maybe_ours(&Tags::from([("team".to_string(), "x".to_string())]), &m));
        assert!(!maybe_ours(&tags("t", "api/get/integration"), &m));
        assert!(!maybe_ours(&tags("s", "other"), &m));
        assert!(!maybe_ours(&Tags::from([(TAG_STACK.to_string(), "s".to_string())]), &m));
    }
}
