//! Where a process's output goes: the terminal, each line prefixed with who wrote it, and a CloudWatch Logs
//! stream in the emulator (`PutLogEvents`, batched).

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

static TERMINAL: AtomicBool = AtomicBool::new(true);

/// Whether what `serve` and its processes say is printed on the terminal (on by default). Off, for a load
/// test whose own figures are the output; CloudWatch Logs still get every line.
pub fn terminal(on: bool) {
    TERMINAL.store(on, Ordering::Relaxed);
}

/// A line on the terminal, unless [`terminal`] turned it off.
pub fn say(line: &str) {
    if TERMINAL.load(Ordering::Relaxed) {
        println!("{line}");
    }
}

/// Lines for one log stream. Cloning shares the stream.
#[derive(Clone)]
pub struct LogStream {
    prefix: String,
    tx: Option<mpsc::UnboundedSender<(i64, String)>>,
}

impl LogStream {
    /// Prints to the terminal only.
    pub fn terminal(prefix: impl Into<String>) -> LogStream {
        LogStream { prefix: prefix.into(), tx: None }
    }

    /// Prints to the terminal and sends to `group`/`stream` (both created when missing).
    pub fn cloudwatch(prefix: impl Into<String>, client: aws_sdk_cloudwatchlogs::Client, group: String, stream: String) -> LogStream {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(forward(client, group, stream, rx));
        LogStream { prefix: prefix.into(), tx: Some(tx) }
    }

    pub fn line(&self, line: &str) {
        say(&format!("{} | {line}", self.prefix));
        if let Some(tx) = &self.tx {
            let _ = tx.send((chrono::Utc::now().timestamp_millis(), line.to_string()));
        }
    }

    /// Every line `reader` gives, until it ends.
    pub fn pump(&self, reader: impl AsyncRead + Unpin + Send + 'static) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                me.line(&line);
            }
        })
    }
}

async fn ensure_stream(client: &aws_sdk_cloudwatchlogs::Client, group: &str, stream: &str) {
    let create = || client.create_log_stream().log_group_name(group).log_stream_name(stream).send();
    if let Err(e) = create().await {
        let missing_group = e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception());
        if missing_group {
            let _ = client.create_log_group().log_group_name(group).send().await;
            if let Err(e) = create().await {
                tracing::warn!(%group, %stream, error = %aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e), "can't create the log stream");
            }
        } else if !e.as_service_error().is_some_and(|e| e.is_resource_already_exists_exception()) {
            tracing::warn!(%group, %stream, error = %aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e), "can't create the log stream");
        }
    }
}

/// How long a batch waits for more lines: one `PutLogEvents` per burst (an invocation writes several lines)
/// instead of one per line, which took CPU from the invocations themselves on a small machine. Short
/// enough that `serve` stopping (it waits 300 ms) still sends the last lines.
const LINGER: Duration = Duration::from_millis(100);

/// Sends lines in batches: what arrives within [`LINGER`] of a batch's first line, at most 1,000 at once.
async fn forward(client: aws_sdk_cloudwatchlogs::Client, group: String, stream: String, mut rx: mpsc::UnboundedReceiver<(i64, String)>) {
    ensure_stream(&client, &group, &stream).await;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let until = tokio::time::Instant::now() + LINGER;
        while batch.len() < 1000 {
            // Past the linger, or every writer is gone (the process ended): send what there is.
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(line)) => batch.push(line),
                Ok(None) | Err(_) => break,
            }
        }
        let events: Vec<InputLogEvent> = batch
            .into_iter()
            .filter_map(|(ts, msg)| {
                InputLogEvent::builder().timestamp(ts).message(if msg.is_empty() { " ".into() } else { msg }).build().ok()
            })
            .collect();
        for attempt in 0..3 {
            match client.put_log_events().log_group_name(&group).log_stream_name(&stream).set_log_events(Some(events.clone())).send().await
            {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(%group, %stream, attempt, error = %aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&e), "PutLogEvents failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}
