//! The AWS context: one `SdkConfig` (the standard credential chain, region, and `AWS_ENDPOINT_URL` when
//! set, which is how the local emulator is reached), service clients built once, and a counter of every
//! API call made through them.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use ferroform_core::{Context, Identity, ProviderError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::OnceCell;

/// Counts API calls per `service:Operation`, across all clients of one context.
#[derive(Debug, Default, Clone)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, usize>>>);

impl CallCounter {
    pub fn snapshot(&self) -> BTreeMap<String, usize> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
    pub fn total(&self) -> usize {
        self.snapshot().values().sum()
    }
    pub fn reset(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "ferroform-call-counter"
    }
    // Not `read_before_execution`: a client-level interceptor runs that before the operation's config (its
    // `Metadata`, the operation's name) is in the bag, so every call would count as "unknown".
    fn read_before_serialization(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key = cfg.load::<Metadata>().map(|m| format!("{}:{}", m.service(), m.name())).unwrap_or_else(|| "unknown".into());
        tracing::debug!(call = %key, "aws call");
        if let Ok(mut m) = self.0.lock() {
            *m.entry(key).or_default() += 1;
        }
        Ok(())
    }
}

/// Says whether this run may still change anything; `Err(why)` once it may not (a state lock lost).
pub type Fence = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Refuses every mutating call once its fence says so, so a step already running when the state lock was
/// lost makes no further change (reads still pass: they change nothing).
#[derive(Clone, Default)]
struct FenceInterceptor(Arc<Mutex<Option<Fence>>>);

impl std::fmt::Debug for FenceInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FenceInterceptor")
    }
}

impl Intercept for FenceInterceptor {
    fn name(&self) -> &'static str {
        "ferroform-fence"
    }
    fn read_before_serialization(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(fence) = self.0.lock().ok().and_then(|f| f.clone()) else { return Ok(()) };
        let op = cfg.load::<Metadata>().map(|m| m.name().to_string()).unwrap_or_default();
        if is_read(&op) {
            return Ok(());
        }
        fence().map_err(|why| BoxError::from(format!("{op} refused: {why}")))
    }
}

/// Operations that change nothing, by their verb.
fn is_read(op: &str) -> bool {
    ["Describe", "Get", "List", "Head", "Query", "Scan", "BatchGet", "Lookup", "Search", "Simulate"].iter().any(|v| op.starts_with(v))
}

/// A service's retries without the SDK's retry quota. The quota is one bucket per partition for the whole
/// process (5 tokens a throttled retry, 500 in all, one back per first-try success): a burst of throttles
/// empties it, and then every throttled call fails at once instead of being retried, so an apply stops on what
/// the congestion window is there to absorb. The window (fewer calls at once after each throttle) and the
/// attempts per call bound the retries instead.
fn retries_without_quota(service: &'static str) -> aws_sdk_sts::config::retry::RetryPartition {
    use aws_sdk_sts::config::retry::{RetryPartition, TokenBucket};
    RetryPartition::custom(format!("ferroform-{service}")).token_bucket(TokenBucket::unlimited()).build()
}

macro_rules! clients {
    ($( $feature:literal, $field:ident, $krate:ident );* $(;)?) => {
        #[derive(Default)]
        struct Clients { $( #[cfg(feature = $feature)] $field: OnceLock<$krate::Client>, )* }

        impl Aws {
            $(
                #[cfg(feature = $feature)]
                pub fn $field(&self) -> $krate::Client {
                    self.clients.$field.get_or_init(|| {
                        let conf = $krate::config::Builder::from(&self.config)
                            .http_client(self.congestion.client(stringify!($field), self.base_http.clone()))
                            .retry_partition(retries_without_quota(stringify!($field)))
                            .interceptor(self.calls.clone())
                            .interceptor(self.fence.clone())
                            .build();
                        $krate::Client::from_conf(conf)
                    }).clone()
                }
            )*
        }
    };
}

clients! {
    "ec2", ec2, aws_sdk_ec2;
    "iam", iam, aws_sdk_iam;
    "lambda", lambda, aws_sdk_lambda;
    "apigatewayv2", apigatewayv2, aws_sdk_apigatewayv2;
    "ecs", ecs, aws_sdk_ecs;
    "dynamodb", dynamodb, aws_sdk_dynamodb;
    "logs", logs, aws_sdk_cloudwatchlogs;
    "cloudwatch", cloudwatch, aws_sdk_cloudwatch;
    "ecr", ecr, aws_sdk_ecr;
    "s3", s3, aws_sdk_s3;
    "codebuild", codebuild, aws_sdk_codebuild;
    "codepipeline", codepipeline, aws_sdk_codepipeline;
    "sns", sns, aws_sdk_sns;
}

/// Shared by every AWS resource of a run.
pub struct Aws {
    pub config: SdkConfig,
    calls: CallCounter,
    clients: Clients,
    identity: OnceCell<Identity>,
    fence: FenceInterceptor,
    /// Each service's congestion window, in front of the HTTP client the configuration names.
    congestion: crate::congestion::Congestion,
    base_http: aws_smithy_runtime_api::client::http::SharedHttpClient,
}

impl Aws {
    pub fn from_config(config: SdkConfig) -> Self {
        // The SDK's default of 3 attempts lets one call in a thousand fail when 10% of calls are throttled
        // or answered 5xx: one failed apply in a dozen for 100 resources (the fault test met it). 5 attempts
        // make it one call in 100,000, while a wrong endpoint still fails within seconds. Unless the caller
        // chose (`AWS_MAX_ATTEMPTS`, `retry_config`).
        let default = aws_config::retry::RetryConfig::standard();
        let config = match config.retry_config() {
            None => config.into_builder().retry_config(default.with_max_attempts(5)).build(),
            Some(r) if *r == default => config.into_builder().retry_config(default.with_max_attempts(5)).build(),
            Some(_) => config,
        };
        let base_http = config.http_client().unwrap_or_else(crate::congestion::default_base);
        Self {
            config,
            calls: CallCounter::default(),
            clients: Clients::default(),
            identity: OnceCell::new(),
            fence: FenceInterceptor::default(),
            congestion: crate::congestion::Congestion::default(),
            base_http,
        }
    }

    /// The standard chain: env, profiles, SSO, web identity, container and instance roles.
    pub async fn from_env() -> Self {
        Self::from_config(aws_config::load_defaults(BehaviorVersion::latest()).await)
    }

    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }

    /// Each service's congestion window: how many calls it lets through at once, and what it learned.
    pub fn congestion(&self) -> &crate::congestion::Congestion {
        &self.congestion
    }

    /// From now on every mutating call first asks `fence`, and is refused (not sent) on `Err`.
    pub fn set_fence(&self, fence: Fence) {
        if let Ok(mut f) = self.fence.0.lock() {
            *f = Some(fence);
        }
    }

    pub fn region(&self) -> String {
        self.config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into())
    }

    /// The partition of this context's region: what its resources' ARNs start with.
    pub fn region_partition(&self) -> &'static str {
        partition_of_region(&self.region())
    }

    pub fn sts(&self) -> aws_sdk_sts::Client {
        let conf = aws_sdk_sts::config::Builder::from(&self.config)
            .http_client(self.congestion.client("sts", self.base_http.clone()))
            .retry_partition(retries_without_quota("sts"))
            .interceptor(self.calls.clone())
            .interceptor(self.fence.clone())
            .build();
        aws_sdk_sts::Client::from_conf(conf)
    }

    /// Account, region and partition of the credentials: one `GetCallerIdentity`, then cached. The
    /// partition (`aws`, `aws-cn`, `aws-us-gov`) is read from the caller's ARN, never assumed.
    pub async fn whoami(&self) -> Result<Identity, ProviderError> {
        self.identity
            .get_or_try_init(|| async {
                let out = self.sts().get_caller_identity().send().await.map_err(crate::error::sdk)?;
                let account = out.account.ok_or_else(|| ProviderError::new("GetCallerIdentity returned no account"))?;
                let partition = out.arn.as_deref().and_then(partition_of).unwrap_or("aws").to_string();
                Ok(Identity { account, region: self.region(), partition })
            })
            .await
            .cloned()
    }

    /// The account id: ARNs are built from it.
    pub async fn account_id(&self) -> Result<String, ProviderError> {
        Ok(self.whoami().await?.account)
    }

    /// The partition of the credentials (`aws`, `aws-cn`, `aws-us-gov`).
    pub async fn partition(&self) -> Result<String, ProviderError> {
        Ok(self.whoami().await?.partition)
    }

    /// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
    pub async fn arn(&self, service: &str, resource: &str) -> Result<String, ProviderError> {
        let me = self.whoami().await?;
        Ok(format!("arn:{}:{service}:{}:{}:{resource}", me.partition, self.region(), me.account))
    }
}

#[async_trait::async_trait]
impl Context for Aws {
    async fn init() -> Result<Self, ProviderError> {
        let aws = Self::from_env().await;
        if aws.config.credentials_provider().is_none() {
            return Err(
                ProviderError::new("no AWS credentials found").hint("configure a profile, SSO, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
            );
        }
        Ok(aws)
    }

    async fn identity(&self) -> Option<Result<Identity, ProviderError>> {
        Some(self.whoami().await)
    }
}

/// The partition a region's resources are named in: `aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`, the
/// ISO partitions for `us-iso-*`/`us-isob-*`, else `aws`. ARNs are built with it, never with a literal `aws`.
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// The partition for ARNs written when a stack is declared (policies built before any call): the region of
/// the environment (`AWS_REGION`, `AWS_DEFAULT_REGION`), as the SDK will use it.
pub fn declared_partition() -> &'static str {
    let region = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")).unwrap_or_default();
    partition_of_region(&region)
}

/// `arn:PARTITION:...` -> PARTITION.
fn partition_of(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next() == Some("arn")).then(|| parts.next()).flatten().filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_pass_the_fence() {
        for op in ["DescribeVpcs", "GetRole", "ListTagsForResource", "HeadObject", "Query", "Scan", "BatchGetItem"] {
            assert!(super::is_read(op), "{op}");
        }
        for op in ["CreateVpc", "PutObject", "DeleteRole", "UpdateFunctionCode", "TagResource", "RunTask", "PutItem"] {
            assert!(!super::is_read(op), "{op}");
        }
    }

    #[test]
    fn regions_name_their_partition() {
        assert_eq!(super::partition_of_region("cn-north-1"), "aws-cn");
        assert_eq!(super::partition_of_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(super::partition_of_region("us-iso-east-1"), "aws-iso");
        assert_eq!(super::partition_of_region("us-isob-east-1"), "aws-iso-b");
        assert_eq!(super::partition_of_region("eu-west-1"), "aws");
        assert_eq!(super::partition_of_region(""), "aws");
    }

    #[test]
    fn the_partition_comes_from_the_arn() {
        assert_eq!(super::partition_of("arn:aws-cn:iam::123456789012:user/x"), Some("aws-cn"));
        assert_eq!(super::partition_of("arn:aws-us-gov:sts::123456789012:assumed-role/r/s"), Some("aws-us-gov"));
        assert_eq!(super::partition_of("arn:aws:iam::123456789012:root"), Some("aws"));
        assert_eq!(super::partition_of("not-an-arn"), None);
    }
}
