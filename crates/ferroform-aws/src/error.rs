//! AWS errors into `ProviderError` (code + message + hint), and the waits and retries AWS needs.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ferroform_core::ProviderError;
use std::future::Future;
use std::time::{Duration, Instant};

/// Any SDK error, with AWS's code and message when the service answered.
pub fn sdk<E>(err: E) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().map(str::to_string);
    let message = match err.message() {
        Some(m) => m.to_string(),
        None => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
    };
    let mut e = ProviderError { code, message, hint: None };
    if e.code.is_none() && e.message.contains("no credentials found") {
        // The SDK reports a missing identity as a dispatch failure too; the endpoint is not the problem.
        e.hint = Some("no AWS credentials: configure a profile, SSO, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY".into());
    } else if e.code.is_none() && e.message.contains("dispatch failure") {
        e.hint = Some("the endpoint could not be reached: check the network, AWS_ENDPOINT_URL and the region".into());
    }
    if matches!(e.code.as_deref(), Some("UnrecognizedClientException" | "InvalidClientTokenId" | "ExpiredToken" | "ExpiredTokenException"))
    {
        e.hint = Some("the credentials were refused: refresh them (aws sso login, a new session token)".into());
    }
    e
}

/// True when the error says the thing does not exist.
pub fn is_not_found(e: &ProviderError) -> bool {
    let code = e.code.as_deref().unwrap_or("");
    code.contains("NotFound") || code.contains("NoSuch") || code.ends_with(".NotFound") || code == "ResourceNotFoundException"
}

/// Retries `f` while `retryable` says so, with exponential backoff, for at most `total`.
pub async fn retry<T, F, Fut>(total: Duration, retryable: impl Fn(&ProviderError) -> bool, mut f: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if retryable(&e) && start.elapsed() + delay < total => {
                tracing::debug!(error = %e, ?delay, "retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Polls `check` until it returns `Some`, for at most `total` (waiting for `Active`, `available`, ...).
pub async fn wait_for<T, F, Fut>(what: &str, total: Duration, mut check: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ProviderError>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() > total {
            return Err(ProviderError::with_code("WaitTimeout", format!("gave up waiting for {what} after {}s", total.as_secs())));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// `Ok(None)` for a not-found error: reads report absence, deletes treat it as done.
pub fn absent_if_not_found<T>(r: Result<T, ProviderError>) -> Result<Option<T>, ProviderError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}
