//! AWS errors into `ProviderError` (code + message + hint), and the waits and retries AWS needs.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
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

/// What a create sent by [`create_once`] came to.
#[derive(Debug)]
pub enum Made<T> {
    /// AWS answered the create.
    Answered(T),
    /// An earlier attempt's answer was lost, and the lookup found what it made: this id.
    Found(String),
}

impl<T> Made<T> {
    /// The id: taken from the answer by `of`, or the one found. `op` names the call in the error.
    pub fn id(self, op: &str, of: impl FnOnce(&T) -> Option<&str>) -> Result<String, ProviderError> {
        match self {
            Made::Answered(out) => of(&out).map(str::to_string).ok_or_else(|| ProviderError::new(format!("{op} returned no id"))),
            Made::Found(id) => Ok(id),
        }
    }
}

/// The per-call retry setting of a create sent by [`create_once`]: the SDK's own retry would re-send it
/// blindly after a lost answer, and AWS would make a second one.
pub fn no_sdk_retry() -> aws_smithy_types::retry::RetryConfig {
    aws_smithy_types::retry::RetryConfig::disabled()
}

/// The per-call config override of a create sent by [`create_once`], for any service's client:
/// `.customize().config_override(Once).send()`. It turns the SDK's retry off for that one call.
#[derive(Debug, Clone, Copy)]
pub struct Once;

/// `From<Once>` for each service's config builder (the builders share no trait).
macro_rules! once_for {
    ($($feature:literal => $sdk:ident),* $(,)?) => {$(
        #[cfg(feature = $feature)]
        impl From<Once> for $sdk::config::Builder {
            fn from(_: Once) -> Self {
                $sdk::config::Builder::default().retry_config(no_sdk_retry())
            }
        }
    )*};
}

once_for!(
    "ec2" => aws_sdk_ec2,
    "iam" => aws_sdk_iam,
    "lambda" => aws_sdk_lambda,
    "apigatewayv2" => aws_sdk_apigatewayv2,
    "ecs" => aws_sdk_ecs,
    "dynamodb" => aws_sdk_dynamodb,
    "logs" => aws_sdk_cloudwatchlogs,
    "cloudwatch" => aws_sdk_cloudwatch,
    "ecr" => aws_sdk_ecr,
    "s3" => aws_sdk_s3,
);

/// How a failed create left things.
#[derive(Debug, PartialEq)]
enum Failed {
    /// The request may have been acted on (sent, then no readable answer, a timeout or a 5xx).
    Maybe,
    /// AWS said it did nothing and a retry may work (throttling, or a `not_done` error of the caller's).
    NotDone,
    /// A clear answer: retrying would not change it.
    Final,
}

/// Throttling codes across the services (as the SDK's own classifier lists them).
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Whether an error code is one of the services' ways of saying "slow down".
pub(crate) fn is_throttling_code(code: &str) -> bool {
    THROTTLING.contains(&code)
}

fn failed<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Failed {
    match e {
        // Never sent.
        SdkError::ConstructionFailure(_) => Failed::Final,
        // A missing identity or a bad configuration, found before anything was sent.
        SdkError::DispatchFailure(d) if d.is_user() => Failed::Final,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Failed::Maybe,
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            if status >= 500 {
                Failed::Maybe
            } else if status == 429 || e.code().is_some_and(|c| THROTTLING.contains(&c)) {
                Failed::NotDone
            } else {
                Failed::Final
            }
        }
        _ => Failed::Maybe,
    }
}

/// True when AWS refused a create because its name is taken ("already exists" in each service's words).
pub fn already_exists(e: &ProviderError) -> bool {
    let code = e.code.as_deref().unwrap_or("");
    let says_exists = e.message.to_ascii_lowercase().contains("exist");
    code.contains("AlreadyExists")
        || code == "ResourceInUseException"
        || code == "BucketAlreadyOwnedByYou"
        // Lambda (a statement id taken) and API Gateway (a route key or stage name taken).
        || (matches!(code, "ResourceConflictException" | "ConflictException") && says_exists)
}

/// How long [`create_once`] keeps trying a create, and looking for what a lost answer made.
pub const CREATE_ONCE: Duration = Duration::from_secs(120);

/// Sends a create AWS would act on twice if sent twice (no client token, or one AWS does not honour for
/// every type), at most once at a time. `send` must turn the SDK's retry off for the call
/// (`.customize().config_override(Once)`). After a failure that may have
/// acted (a dropped connection, a timeout, a 5xx), it first looks with `look` (the type's `find_by_tags`)
/// and takes what it finds; only when nothing is there does it send again, with backoff. Throttling and
/// the caller's `not_done` errors (a parent not yet visible) are retried directly. An "already exists"
/// answer is looked up once and taken when ours; other errors return.
pub async fn create_once<T, E, S, SFut, L, LFut>(
    total: Duration,
    not_done: impl Fn(&ProviderError) -> bool,
    mut send: S,
    mut look: L,
) -> Result<Made<T>, ProviderError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    S: FnMut() -> SFut,
    SFut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    L: FnMut() -> LFut,
    LFut: Future<Output = Result<Option<String>, ProviderError>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(250);
    // Set once an attempt may have acted: from then on, look before each send.
    let mut maybe_made: Option<ProviderError> = None;
    loop {
        let last = if maybe_made.is_some() {
            match look().await {
                Ok(Some(id)) => {
                    tracing::info!(%id, "a create whose answer was lost had acted: taking what it made");
                    return Ok(Made::Found(id));
                }
                Ok(None) => None,
                // The lookup failed: look again later, do not send blindly.
                Err(e) => Some(e),
            }
        } else {
            None
        };
        let err = match last {
            Some(e) => e,
            None => match send().await {
                Ok(out) => return Ok(Made::Answered(out)),
                Err(e) => {
                    let kind = failed(&e);
                    let e = sdk(e);
                    match kind {
                        Failed::Maybe => maybe_made = Some(e.clone()),
                        Failed::NotDone => {}
                        Failed::Final if not_done(&e) => {}
                        // A re-sent create whose first answer was lost (the lookup missed it), or one a
                        // killed run sent: what exists is taken when it is ours (the lookup checks tags).
                        Failed::Final if already_exists(&e) => {
                            return match look().await? {
                                Some(id) => {
                                    tracing::info!(%id, "the create met what an earlier attempt made: taking it");
                                    Ok(Made::Found(id))
                                }
                                None => Err(e),
                            };
                        }
                        Failed::Final => return Err(e),
                    }
                    e
                }
            },
        };
        if start.elapsed() + delay >= total {
            return Err(match maybe_made {
                Some(_) => err.hint("the create may have been done without an answer: a re-run finds it by its tags and adopts it"),
                None => err,
            });
        }
        tracing::debug!(error = %err, ?delay, "create not done yet, retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::{ConnectorError, ServiceError};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn answered(status: u16, code: &str) -> SdkError<ErrorMetadata, HttpResponse> {
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::ServiceError(ServiceError::builder().source(ErrorMetadata::builder().code(code).message("m").build()).raw(raw).build())
    }

    #[test]
    fn failures_that_may_have_acted_are_told_apart() {
        assert_eq!(failed(&answered(500, "InternalFailure")), Failed::Maybe);
        assert_eq!(failed(&answered(503, "Unavailable")), Failed::Maybe);
        assert_eq!(failed(&answered(400, "ThrottlingException")), Failed::NotDone);
        assert_eq!(failed(&answered(400, "RequestLimitExceeded")), Failed::NotDone);
        assert_eq!(failed(&answered(400, "InvalidParameterValue")), Failed::Final);
        let io = ConnectorError::io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset").into());
        assert_eq!(failed(&SdkError::<ErrorMetadata, HttpResponse>::dispatch_failure(io)), Failed::Maybe);
    }
}
