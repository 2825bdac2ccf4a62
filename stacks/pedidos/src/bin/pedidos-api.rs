//! The Lambda function behind the HTTP API. Env: TABLE_NAME, CLUSTER_ARN, TASK_DEFINITION_ARN, SUBNETS,
//! SECURITY_GROUPS (comma-separated), CONTAINER_NAME, optionally ASSIGN_PUBLIC_IP.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use pedidos::api::{Api, Config};
use std::convert::Infallible;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time() // CloudWatch stamps every line
        .with_target(false)
        .init();
    let config = Config::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let api = Arc::new(Api::new(aws_sdk_dynamodb::Client::new(&aws), aws_sdk_ecs::Client::new(&aws), config));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        let api = Arc::clone(&api);
        async move { Ok::<_, Infallible>(api.handle(&event.payload).await) }
    }))
    .await
}
