//! Pagination: one loop for every listing call, whatever the service calls its token (`NextToken`, IAM's
//! `Marker`).

use ferroform_core::ProviderError;
use std::future::Future;

/// Every page of a listing: `page(token)` returns one page's items and the next token (`None`, or empty, at
/// the end).
pub(crate) async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, ProviderError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), ProviderError>>,
{
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let (items, next) = page(token).await?;
        out.extend(items);
        match next.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn follows_tokens_to_the_end_and_an_empty_token_ends_it() {
        let pages = |token: Option<String>| async move {
            Ok::<_, ProviderError>(match token.as_deref() {
                None => (vec![1, 2], Some("a".to_string())),
                Some("a") => (vec![3], Some("b".to_string())),
                _ => (vec![4], Some(String::new())),
            })
        };
        assert_eq!(all_pages(pages).await.ok(), Some(vec![1, 2, 3, 4]));
    }
}
