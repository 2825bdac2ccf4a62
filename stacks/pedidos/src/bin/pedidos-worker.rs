//! The Fargate worker: processes one order and exits. Env: TABLE_NAME, ORDER_ID, ORDER_JSON, ORDER_OP
//! (`create` or `update`). Exit codes: 0 the verdict was recorded (or the order was superseded),
//! 1 the table could not be written, 2 bad input.

use pedidos::db::Table;
use pedidos::model::Op;
use pedidos::worker::{run, Job, Outcome, WorkerError};
use pedidos::{ENV_ORDER_ID, ENV_ORDER_JSON, ENV_ORDER_OP, ENV_TABLE_NAME};
use std::process::ExitCode;

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn inputs() -> Result<(String, Job), String> {
    let table = env(ENV_TABLE_NAME)?;
    let op = env(ENV_ORDER_OP)?;
    let op = Op::parse(&op).ok_or_else(|| format!("{ENV_ORDER_OP} must be `create` or `update`, not `{op}`"))?;
    Ok((table, Job { order_id: env(ENV_ORDER_ID)?, order_json: env(ENV_ORDER_JSON)?, op }))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .init();
    let (table_name, job) = match inputs() {
        Ok(inputs) => inputs,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = Table::new(aws_sdk_dynamodb::Client::new(&aws), table_name);
    match run(&table, &job).await {
        Ok(Outcome::Recorded(status)) => {
            tracing::info!(id = %job.order_id, status = status.as_str(), "order processed");
            ExitCode::SUCCESS
        }
        Ok(Outcome::Superseded) => {
            tracing::info!(id = %job.order_id, "order changed or deleted since this task started: nothing written");
            ExitCode::SUCCESS
        }
        Err(e @ (WorkerError::BadSnapshot(_) | WorkerError::IdMismatch { .. })) => {
            tracing::error!(id = %job.order_id, error = %e, "bad input");
            ExitCode::from(2)
        }
        Err(e) => {
            tracing::error!(id = %job.order_id, error = %e, "failed");
            ExitCode::FAILURE
        }
    }
}
