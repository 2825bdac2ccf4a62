//! Each service's calls go through a congestion window that adapts to its answers. Checked from the other side
//! of the wire: a proxy in front of the emulator that throttles whatever exceeds a service's room, and counts
//! what it saw (throttles, most calls at once), against the same calls from a plain SDK client.

use ferroform_aws::Aws;
use ferroform_testkit::proxy::{FaultProxy, Faults};
use ferroform_testkit::Harness;
use std::time::Duration;

/// `n` DescribeLogGroups at once through `client`; how many finally succeeded.
async fn burst(client: &aws_sdk_cloudwatchlogs::Client, n: usize) -> usize {
    let calls: Vec<_> = (0..n).map(|_| client.describe_log_groups().send()).collect();
    futures::future::join_all(calls).await.iter().filter(|r| r.is_ok()).count()
}

/// A plain SDK client with `aws`'s configuration and retry settings, in a retry partition of its own: the
/// SDK's retry quota is one bucket per partition for the whole process (the service's name by default), and
/// a plain client's throttles emptied it for every other client of the service (seen in CI under load).
fn plain_client(aws: &Aws, partition: &'static str) -> aws_sdk_cloudwatchlogs::Client {
    use aws_sdk_cloudwatchlogs::config::{retry::RetryPartition, Builder};
    aws_sdk_cloudwatchlogs::Client::from_conf(Builder::from(&aws.config).retry_partition(RetryPartition::new(partition)).build())
}

fn throttles(proxy: &FaultProxy) -> usize {
    proxy.injected().get("throttle").copied().unwrap_or(0)
}

#[tokio::test]
async fn a_throttling_service_gets_fewer_calls_at_once_and_every_call_goes_through() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let room = 6;
    let faults = Faults { capacity: Some(room), latency: Duration::from_millis(20), ..Faults::none() };
    let proxy = FaultProxy::start(&h.account.endpoint, faults).await?;
    let aws = Aws::from_config(h.account.config_via(proxy.endpoint()));
    let calls = 150;

    // The same calls, the same retry settings, without a window: every call is sent at once.
    let plain = plain_client(&aws, "congestion-test-plain-client");
    let plain_ok = burst(&plain, calls).await;
    let plain_throttles = throttles(&proxy);
    proxy.reset();

    let windowed_ok = burst(&aws.logs(), calls).await;
    let windowed_throttles = throttles(&proxy);
    let window = aws.congestion().snapshot().get("logs").copied().unwrap_or_default();
    eprintln!(
        "room {room}: plain client {plain_ok}/{calls} ok, {plain_throttles} throttles; windowed {windowed_ok}/{calls} ok, \
         {windowed_throttles} throttles, window {window:?}"
    );
    assert_eq!(windowed_ok, calls, "every call through the window goes through");
    assert!(plain_throttles > 0 && windowed_throttles * 4 < plain_throttles, "the window sent less than the service refuses");
    assert!(window.cuts >= 1 && window.limit <= 2 * room, "the window came down to about the room: {window:?}");
    Ok(())
}

#[tokio::test]
async fn a_quiet_service_gets_more_calls_at_once_than_the_window_starts_with() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let proxy = FaultProxy::start(&h.account.endpoint, Faults { latency: Duration::from_millis(30), ..Faults::none() }).await?;
    let aws = Aws::from_config(h.account.config_via(proxy.endpoint()));
    // Rounds of the same demand: the window grows while it is what holds the calls back.
    for _ in 0..4 {
        assert_eq!(burst(&aws.logs(), 200).await, 200);
    }
    let peak = proxy.peak_in_flight() as usize;
    eprintln!("quiet service: at most {peak} calls at once; window {:?}", aws.congestion().snapshot().get("logs"));
    assert!(peak > ferroform_core::congestion::START, "the window grew past its start ({peak} at once)");
    assert!(peak <= ferroform_core::congestion::MAX);
    assert_eq!(throttles(&proxy), 0);
    Ok(())
}

/// A run's throttles do not use up the retries of its later calls. Half the calls are throttled; each call
/// may be tried 20 times. A plain SDK client runs out of its retry quota and fails calls at their first
/// throttle; ferroform's clients retry every one.
#[tokio::test]
async fn throttles_do_not_use_up_the_retries_of_later_calls() -> anyhow::Result<()> {
    let h = Harness::new().await?;
    let faults = Faults { rate: 0.5, throttle: true, seed: 17, ..Faults::none() };
    let proxy = FaultProxy::start(&h.account.endpoint, faults).await?;
    let retries = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(20)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(20));
    let config = h.account.config_via(proxy.endpoint()).into_builder().retry_config(retries).build();
    let aws = Aws::from_config(config);
    let calls = 400;

    let ok = burst(&aws.logs(), calls).await;
    let throttled = throttles(&proxy);
    proxy.reset();
    // The same calls and retry settings from a plain client (a fresh quota).
    let plain = plain_client(&aws, "quota-test-plain-client");
    let plain_ok = burst(&plain, calls).await;
    eprintln!("{calls} calls, half throttled: ferroform {ok} ok ({throttled} throttles retried); plain client {plain_ok} ok");
    assert!(throttled > 100, "enough throttles to empty the SDK's quota: {throttled}");
    assert!(plain_ok < calls, "the plain client ran out of retries (else this test proves nothing)");
    assert_eq!(ok, calls, "every throttled call was retried until it went through");
    Ok(())
}
