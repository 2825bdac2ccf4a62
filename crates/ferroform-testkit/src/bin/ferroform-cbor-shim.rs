//! `ferroform-cbor-shim UPSTREAM_URL`: the [`ferroform_testkit::cbor::CborShim`] as a process, so stacks with
//! CloudWatch alarms and dashboards can be run by hand against the local emulator (moto answers the JSON
//! protocol only; the SDK speaks CBOR to CloudWatch). `scripts/emulator up` starts it and points
//! `AWS_ENDPOINT_URL_CLOUDWATCH` at it. Prints its endpoint on one line, then serves until killed.

use anyhow::Context as _;
use std::io::Write as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let upstream = std::env::args().nth(1).context("usage: ferroform-cbor-shim UPSTREAM_URL (the emulator's endpoint)")?;
    let shim = ferroform_testkit::cbor::CborShim::start(&upstream).await?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", shim.endpoint())?;
    out.flush()?;
    std::future::pending::<()>().await;
    Ok(())
}
