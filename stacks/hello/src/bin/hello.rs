//! The Lambda function behind the HTTP API: the container image's `bootstrap`. Env: GREETING (optional),
//! RUST_LOG (default `info`).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use hello::handler::{Config, Hello};
use lambda_runtime::{service_fn, Error, LambdaEvent};
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
    let hello = Arc::new(Hello::new(Config::from_env()));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        let hello = Arc::clone(&hello);
        async move { Ok::<_, Infallible>(hello.handle(&event.payload)) }
    }))
    .await
}
