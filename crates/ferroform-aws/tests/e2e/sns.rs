//! SNS topics and subscriptions against the emulator, checked with independent SDK reads.
#![cfg(feature = "sns")]

use crate::common::{change, harness};
use aws_sdk_sns::error::ProvideErrorMetadata;
use aws_sdk_sns::Client;
use ferroform_aws::sns::{Subscription, Topic};
use ferroform_core::{Action, Stack};
use std::collections::{BTreeMap, HashMap};

const STACK: &str = "snstest";

fn one_topic(topic: Topic) -> Stack {
    let mut s = Stack::new(STACK);
    s.add("topic", topic);
    s
}

/// GetTopicAttributes: `None` when SNS says there is no such topic.
async fn topic_attributes(sns: &Client, arn: &str) -> anyhow::Result<Option<HashMap<String, String>>> {
    match sns.get_topic_attributes().topic_arn(arn).send().await {
        Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
        Err(e) if e.code() == Some("NotFound") => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn topic_tags(sns: &Client, arn: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let out = sns.list_tags_for_resource().resource_arn(arn).send().await?;
    Ok(out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
}

/// GetSubscriptionAttributes: `None` when SNS says there is no such subscription.
async fn subscription_attributes(sns: &Client, arn: &str) -> anyhow::Result<Option<HashMap<String, String>>> {
    match sns.get_subscription_attributes().subscription_arn(arn).send().await {
        Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
        Err(e) if e.code() == Some("NotFound") => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every subscription of the account: (protocol, endpoint, topic ARN).
async fn all_subscriptions(sns: &Client) -> anyhow::Result<Vec<(String, String, String)>> {
    let out = sns.list_subscriptions().send().await?;
    Ok(out
        .subscriptions()
        .iter()
        .map(|s| {
            let text = |v: Option<&str>| v.unwrap_or_default().to_string();
            (text(s.protocol()), text(s.endpoint()), text(s.topic_arn()))
        })
        .collect())
}

fn raw(attributes: &HashMap<String, String>) -> bool {
    attributes.get("RawMessageDelivery").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

#[tokio::test]
async fn topic_lifecycle() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let sns = Client::new(&h.account.config);
    let v1 = || Topic::new("alerts").display_name("Alerts").tag("team", "web");

    let state = h.apply(&one_topic(v1())).await?;
    let arn = state.resources["topic"].outputs["arn"].as_str().unwrap_or_default().to_string();
    assert!(arn.starts_with("arn:aws:sns:") && arn.ends_with(":alerts"), "{arn}");
    assert_eq!(state.resources["topic"].outputs["name"], "alerts");
    let a = topic_attributes(&sns, &arn).await?.expect("the topic exists");
    assert_eq!(a.get("DisplayName").map(String::as_str), Some("Alerts"));
    let t = topic_tags(&sns, &arn).await?;
    assert_eq!(t.get("team").map(String::as_str), Some("web"), "{t:?}");
    assert_eq!(t.get("ferroform:address").map(String::as_str), Some("topic"), "{t:?}");

    calls.reset();
    let plan = h.plan(&one_topic(v1())).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    eprintln!("no-op plan of a topic: {:?}", calls.snapshot());

    // In place: the display name and a tag.
    let v2 = || Topic::new("alerts").display_name("Ops alerts").tag("team", "platform");
    let plan = h.plan(&one_topic(v2())).await?;
    assert_eq!(change(&plan, "topic"), (Action::Update, vec!["display_name".into(), "tags".into()]), "{}", plan.render(false));
    h.apply(&one_topic(v2())).await?;
    assert_eq!(topic_attributes(&sns, &arn).await?.and_then(|a| a.get("DisplayName").cloned()).as_deref(), Some("Ops alerts"));
    assert_eq!(topic_tags(&sns, &arn).await?.get("team").map(String::as_str), Some("platform"));
    assert!(!h.plan(&one_topic(v2())).await?.has_changes());

    // Drift: the display name changed and a tag added behind our back; the plan shows both, apply repairs.
    sns.set_topic_attributes().topic_arn(&arn).attribute_name("DisplayName").attribute_value("by hand").send().await?;
    sns.tag_resource().resource_arn(&arn).tags(aws_sdk_sns::types::Tag::builder().key("extra").value("x").build()?).send().await?;
    let plan = h.plan(&one_topic(v2())).await?;
    assert_eq!(change(&plan, "topic"), (Action::Update, vec!["display_name".into(), "tags".into()]), "{}", plan.render(false));
    h.apply(&one_topic(v2())).await?;
    assert_eq!(topic_attributes(&sns, &arn).await?.and_then(|a| a.get("DisplayName").cloned()).as_deref(), Some("Ops alerts"));
    assert!(!topic_tags(&sns, &arn).await?.contains_key("extra"));
    assert!(!h.plan(&one_topic(v2())).await?.has_changes());

    // Deleted behind our back: planned as a create, and made again.
    sns.delete_topic().topic_arn(&arn).send().await?;
    assert_eq!(change(&h.plan(&one_topic(v2())).await?, "topic").0, Action::Create);
    h.apply(&one_topic(v2())).await?;
    assert!(topic_attributes(&sns, &arn).await?.is_some());

    // Replace: a new name; the new topic exists, the old one is gone.
    let renamed = || Topic { name: "alerts-v2".into(), ..v2() };
    let plan = h.plan(&one_topic(renamed())).await?;
    assert_eq!(change(&plan, "topic").0, Action::Replace, "{}", plan.render(false));
    let state = h.apply(&one_topic(renamed())).await?;
    let arn2 = state.resources["topic"].outputs["arn"].as_str().unwrap_or_default().to_string();
    assert!(arn2.ends_with(":alerts-v2"), "{arn2}");
    assert_eq!(topic_attributes(&sns, &arn2).await?.and_then(|a| a.get("DisplayName").cloned()).as_deref(), Some("Ops alerts"));
    assert!(topic_attributes(&sns, &arn).await?.is_none());
    assert!(!h.plan(&one_topic(renamed())).await?.has_changes());

    h.destroy(&one_topic(renamed())).await?;
    assert!(topic_attributes(&sns, &arn2).await?.is_none());
    assert!(sns.list_topics().send().await?.topics().is_empty());
    Ok(())
}

/// The display name and a tag removed from the code: the display name is emptied and the tag untagged.
#[tokio::test]
async fn topic_settings_removed_from_the_code_go_back_to_snss_defaults() -> anyhow::Result<()> {
    let (h, _) = harness().await?;
    let sns = Client::new(&h.account.config);
    let state = h.apply(&one_topic(Topic::new("defaults").display_name("Shown").tag("team", "web"))).await?;
    let arn = state.resources["topic"].outputs["arn"].as_str().unwrap_or_default().to_string();

    let plan = h.plan(&one_topic(Topic::new("defaults"))).await?;
    let text = plan.render(false);
    assert_eq!(change(&plan, "topic"), (Action::Update, vec!["display_name".into(), "tags".into()]), "{text}");
    assert!(text.contains("\"Shown\" -> \"\""), "{text}");
    h.apply(&one_topic(Topic::new("defaults"))).await?;
    let a = topic_attributes(&sns, &arn).await?.expect("the topic exists");
    assert_eq!(a.get("DisplayName").map(String::as_str).unwrap_or_default(), "");
    let t = topic_tags(&sns, &arn).await?;
    assert!(!t.contains_key("team") && t.contains_key("ferroform:address"), "{t:?}");
    assert!(!h.plan(&one_topic(Topic::new("defaults"))).await?.has_changes());
    h.destroy(&one_topic(Topic::new("defaults"))).await?;
    assert!(topic_attributes(&sns, &arn).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn subscription_lifecycle() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let sns = Client::new(&h.account.config);
    let stack = |url: &str, raw_delivery: Option<bool>| {
        let mut s = Stack::new(STACK);
        let topic = s.add("topic", Topic::new("alarms"));
        let mut hook = Subscription::https(topic.arn(), url);
        hook.raw_message_delivery = raw_delivery;
        s.add("hook", hook);
        s.add("mail", Subscription::email(topic.arn(), "ops@example.com"));
        s
    };
    let url = "https://hooks.example.com/alarms";

    let state = h.apply(&stack(url, None)).await?;
    let topic_arn = state.resources["topic"].outputs["arn"].as_str().unwrap_or_default().to_string();
    let hook = state.resources["hook"].outputs["arn"].as_str().unwrap_or_default().to_string();
    let mail = state.resources["mail"].outputs["arn"].as_str().unwrap_or_default().to_string();
    let a = subscription_attributes(&sns, &hook).await?.expect("the HTTPS subscription exists");
    assert_eq!(a.get("Protocol").map(String::as_str), Some("https"));
    assert_eq!(a.get("Endpoint").map(String::as_str), Some(url));
    assert_eq!(a.get("TopicArn"), Some(&topic_arn));
    assert!(!raw(&a), "{a:?}");
    let m = subscription_attributes(&sns, &mail).await?.expect("the email subscription exists");
    assert_eq!((m.get("Protocol").map(String::as_str), m.get("Endpoint").map(String::as_str)), (Some("email"), Some("ops@example.com")));
    let listed = sns.list_subscriptions_by_topic().topic_arn(&topic_arn).send().await?;
    assert_eq!(listed.subscriptions().len(), 2, "{listed:?}");

    calls.reset();
    let plan = h.plan(&stack(url, None)).await?;
    assert!(!plan.has_changes(), "{}", plan.render(false));
    eprintln!("no-op plan of a topic and two subscriptions: {:?}", calls.snapshot());

    // In place: raw delivery on.
    let plan = h.plan(&stack(url, Some(true))).await?;
    assert_eq!(change(&plan, "hook"), (Action::Update, vec!["raw_message_delivery".into()]), "{}", plan.render(false));
    h.apply(&stack(url, Some(true))).await?;
    assert!(raw(&subscription_attributes(&sns, &hook).await?.expect("exists")));
    assert!(!h.plan(&stack(url, Some(true))).await?.has_changes());

    // Drift: raw delivery turned off behind our back; the plan shows it, apply repairs.
    sns.set_subscription_attributes().subscription_arn(&hook).attribute_name("RawMessageDelivery").attribute_value("false").send().await?;
    let plan = h.plan(&stack(url, Some(true))).await?;
    assert_eq!(change(&plan, "hook"), (Action::Update, vec!["raw_message_delivery".into()]), "{}", plan.render(false));
    h.apply(&stack(url, Some(true))).await?;
    assert!(raw(&subscription_attributes(&sns, &hook).await?.expect("exists")));

    // The setting removed from the code: raw delivery goes back off.
    let plan = h.plan(&stack(url, None)).await?;
    assert_eq!(change(&plan, "hook"), (Action::Update, vec!["raw_message_delivery".into()]), "{}", plan.render(false));
    h.apply(&stack(url, None)).await?;
    assert!(!raw(&subscription_attributes(&sns, &hook).await?.expect("exists")));
    assert!(!h.plan(&stack(url, None)).await?.has_changes());

    // Unsubscribed behind our back: planned as a create, and made again.
    sns.unsubscribe().subscription_arn(&mail).send().await?;
    assert_eq!(change(&h.plan(&stack(url, None)).await?, "mail").0, Action::Create);
    let state = h.apply(&stack(url, None)).await?;
    let mail = state.resources["mail"].outputs["arn"].as_str().unwrap_or_default().to_string();
    assert!(subscription_attributes(&sns, &mail).await?.is_some());

    // Replace: another endpoint; the new subscription exists, the old one is gone.
    let url2 = "https://hooks.example.com/v2";
    let plan = h.plan(&stack(url2, None)).await?;
    assert_eq!(change(&plan, "hook").0, Action::Replace, "{}", plan.render(false));
    let state = h.apply(&stack(url2, None)).await?;
    let hook2 = state.resources["hook"].outputs["arn"].as_str().unwrap_or_default().to_string();
    assert_eq!(subscription_attributes(&sns, &hook2).await?.and_then(|a| a.get("Endpoint").cloned()).as_deref(), Some(url2));
    assert!(subscription_attributes(&sns, &hook).await?.is_none());
    let endpoints: Vec<String> = all_subscriptions(&sns).await?.into_iter().map(|(_, e, _)| e).collect();
    assert!(!endpoints.contains(&url.to_string()), "{endpoints:?}");
    assert!(!h.plan(&stack(url2, None)).await?.has_changes());

    h.destroy(&stack(url2, None)).await?;
    assert!(all_subscriptions(&sns).await?.is_empty());
    assert!(topic_attributes(&sns, &topic_arn).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn bad_topics_and_subscriptions_are_refused_before_any_call() -> anyhow::Result<()> {
    let (h, calls) = harness().await?;
    let topic = |name: &str| Topic::new(name);
    for (t, field) in [(topic("bad.name"), "name"), (topic(""), "name"), (topic("t").display_name("d".repeat(101)), "display_name")] {
        let err = h.plan(&one_topic(t)).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(err.contains(&format!("topic: field `{field}`")), "{err}");
    }
    let bad_endpoint = |sub: fn(ferroform_core::Arn<Topic>) -> Subscription| {
        let mut s = Stack::new(STACK);
        let t = s.add("topic", Topic::new("alarms"));
        s.add("sub", sub(t.arn()));
        s
    };
    for (s, field) in [
        (bad_endpoint(|t| Subscription::email(t, "not-an-address")), "endpoint"),
        (bad_endpoint(|t| Subscription::https(t, "http://insecure.example.com")), "endpoint"),
        (bad_endpoint(|t| Subscription::email(t, "ops@example.com").raw_message_delivery(true)), "raw_message_delivery"),
    ] {
        let err = h.plan(&s).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(err.contains(&format!("sub: field `{field}`")), "{err}");
    }
    assert_eq!(calls.total(), 0, "{:?}", calls.snapshot());
    Ok(())
}
