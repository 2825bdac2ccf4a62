//! SNS subscription. APIs: Subscribe, GetSubscriptionAttributes, SetSubscriptionAttributes, Unsubscribe.
//!
//! The id is the subscription's ARN. Subscribe is idempotent (the same topic, protocol and endpoint return
//! the same subscription), so a retried or re-run create makes no second one, and subscriptions carry no
//! tags to find them by. Subscribe is sent with `ReturnSubscriptionArn`, so an email or HTTPS subscription
//! still waiting for its confirmation has its real ARN rather than `pending confirmation`; such a
//! subscription can't be deleted by Unsubscribe on AWS (SNS removes it after three days unconfirmed).
//!
//! Defaults (what an unset field means, so removing a setting puts it back): raw message delivery off.
//! Left to AWS when unset: nothing.

use crate::error::{absent_if_not_found, sdk};
use crate::Aws;
use async_trait::async_trait;
use ferroform_core::{is_unknown_str, CallMeta, FieldError, Observed, ProviderError, Resource};
use serde::{Deserialize, Serialize};

/// Where the notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// An email address; the owner confirms by the link SNS sends.
    Email,
    /// An `https://` URL; it confirms by visiting the SubscribeURL SNS posts.
    Https,
    /// An SQS queue's ARN.
    Sqs,
    /// A Lambda function's ARN.
    Lambda,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Email => "email",
            Protocol::Https => "https",
            Protocol::Sqs => "sqs",
            Protocol::Lambda => "lambda",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        [Protocol::Email, Protocol::Https, Protocol::Sqs, Protocol::Lambda].into_iter().find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// The topic's ARN. Changing it forces a new subscription.
    pub topic: String,
    /// Changing it forces a new subscription.
    pub protocol: Protocol,
    /// The address, URL or ARN notifications go to. Changing it forces a new subscription.
    pub endpoint: String,
    /// The message as published, without SNS's JSON envelope (HTTPS and SQS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_message_delivery: Option<bool>,
}

ferroform_core::outputs! {
    pub struct SubscriptionOutputs => SubscriptionRefs {
        pub arn: String as ferroform_core::Arn<Subscription>,
    }
}

impl Subscription {
    /// Any protocol; the endpoint in that protocol's form.
    pub fn new(topic: ferroform_core::Arn<super::Topic>, protocol: Protocol, endpoint: impl Into<String>) -> Self {
        Self { topic: topic.into(), protocol, endpoint: endpoint.into(), raw_message_delivery: None }
    }
    pub fn email(topic: ferroform_core::Arn<super::Topic>, address: impl Into<String>) -> Self {
        Self::new(topic, Protocol::Email, address)
    }
    pub fn https(topic: ferroform_core::Arn<super::Topic>, url: impl Into<String>) -> Self {
        Self::new(topic, Protocol::Https, url)
    }
    pub fn sqs(topic: ferroform_core::Arn<super::Topic>, queue: impl ferroform_core::ArnText) -> Self {
        Self::new(topic, Protocol::Sqs, queue.arn_text())
    }
    pub fn lambda(topic: ferroform_core::Arn<super::Topic>, function: impl ferroform_core::ArnText) -> Self {
        Self::new(topic, Protocol::Lambda, function.arn_text())
    }
    pub fn raw_message_delivery(mut self, on: bool) -> Self {
        self.raw_message_delivery = Some(on);
        self
    }
}

#[async_trait]
impl Resource for Subscription {
    const TYPE: &'static str = "aws_sns_topic_subscription";
    const REPLACE_FIELDS: &'static [&'static str] = &["topic", "protocol", "endpoint"];
    /// A subscription has no name: what it delivers where (the topic is usually a reference, unknown when
    /// matching, and then left out). The id is the subscription's ARN on both sides.
    const TERRAFORM_IDENTITY: &'static [(&'static str, &'static str)] =
        &[("topic", "topic_arn"), ("protocol", "protocol"), ("endpoint", "endpoint")];
    type Outputs = SubscriptionOutputs;
    type Refs = SubscriptionRefs;
    type Context = Aws;

    fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if !is_unknown_str(&self.topic) && !self.topic.starts_with("arn:") {
            e.push(FieldError::new("topic", format!("`{}` is not a topic ARN", self.topic)));
        }
        let ep = &self.endpoint;
        if !is_unknown_str(ep) {
            let ok = match self.protocol {
                Protocol::Email => email_ok(ep),
                Protocol::Https => ep.starts_with("https://") && ep.len() > "https://".len(),
                Protocol::Sqs => ep.starts_with("arn:") && ep.contains(":sqs:"),
                Protocol::Lambda => ep.starts_with("arn:") && ep.contains(":lambda:"),
            };
            if !ok {
                let want = match self.protocol {
                    Protocol::Email => "an email address",
                    Protocol::Https => "an https:// URL",
                    Protocol::Sqs => "an SQS queue ARN",
                    Protocol::Lambda => "a Lambda function ARN",
                };
                e.push(FieldError::new("endpoint", format!("`{ep}` is not {want} ({} subscription)", self.protocol.as_str())));
            }
        }
        if self.raw_message_delivery == Some(true) && !matches!(self.protocol, Protocol::Https | Protocol::Sqs) {
            e.push(FieldError::new("raw_message_delivery", "only HTTPS and SQS subscriptions deliver raw messages"));
        }
        e
    }

    fn normalize(&mut self) {
        // SNS's value when the attribute was never set.
        self.raw_message_delivery.get_or_insert(false);
    }

    async fn create(aws: &Aws, desired: &Self, _meta: &CallMeta) -> Result<(String, SubscriptionOutputs), ProviderError> {
        let out = aws
            .sns()
            .subscribe()
            .topic_arn(&desired.topic)
            .protocol(desired.protocol.as_str())
            .endpoint(&desired.endpoint)
            .set_attributes(
                (desired.raw_message_delivery == Some(true)).then(|| [("RawMessageDelivery".to_string(), "true".to_string())].into()),
            )
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(sdk)?;
        let arn = out.subscription_arn().map(str::to_string).ok_or_else(|| ProviderError::new("Subscribe returned no ARN"))?;
        Ok((arn.clone(), SubscriptionOutputs { arn }))
    }

    async fn read(aws: &Aws, id: &str, _prior: &Self) -> Result<Option<Observed<Self>>, ProviderError> {
        let got = absent_if_not_found(aws.sns().get_subscription_attributes().subscription_arn(id).send().await.map_err(sdk))?;
        let Some(attributes) = got.map(|g| g.attributes.unwrap_or_default()) else { return Ok(None) };
        let get = |k: &str| attributes.get(k).cloned().unwrap_or_default();
        let protocol_text = get("Protocol");
        let Some(protocol) = Protocol::parse(&protocol_text) else {
            return Err(ProviderError::new(format!("subscription {id} has protocol `{protocol_text}`, which this type does not manage")));
        };
        let mut inputs = Subscription {
            topic: get("TopicArn"),
            protocol,
            endpoint: get("Endpoint"),
            raw_message_delivery: attributes.get("RawMessageDelivery").map(|v| v.eq_ignore_ascii_case("true")),
        };
        inputs.normalize();
        Ok(Some(Observed { inputs, outputs: SubscriptionOutputs { arn: id.to_string() } }))
    }

    async fn update(
        aws: &Aws,
        id: &str,
        _prior: &Self,
        desired: &Self,
        changed: &[String],
        _meta: &CallMeta,
    ) -> Result<SubscriptionOutputs, ProviderError> {
        if changed.iter().any(|f| f == "raw_message_delivery") {
            aws.sns()
                .set_subscription_attributes()
                .subscription_arn(id)
                .attribute_name("RawMessageDelivery")
                .attribute_value(desired.raw_message_delivery.unwrap_or(false).to_string())
                .send()
                .await
                .map_err(sdk)?;
        }
        Ok(SubscriptionOutputs { arn: id.to_string() })
    }

    async fn delete(aws: &Aws, id: &str, _prior: &Self) -> Result<(), ProviderError> {
        absent_if_not_found(aws.sns().unsubscribe().subscription_arn(id).send().await.map_err(sdk)).map(|_| ())
    }
}

/// One `@` with something on each side, no spaces: what SNS checks before sending the confirmation.
fn email_ok(s: &str) -> bool {
    match s.split_once('@') {
        Some((user, domain)) => !user.is_empty() && domain.contains('.') && !domain.contains('@') && !s.contains(char::is_whitespace),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroform_core::Arn;

    fn topic() -> Arn<crate::sns::Topic> {
        Arn::literal("arn:aws:sns:us-east-1:123456789012:alarms")
    }

    fn errors_on(s: &Subscription) -> Vec<String> {
        s.validate().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn endpoints_match_their_protocol() {
        assert!(errors_on(&Subscription::email(topic(), "ops@example.com")).is_empty());
        assert!(errors_on(&Subscription::https(topic(), "https://hooks.example.com/x").raw_message_delivery(true)).is_empty());
        assert!(errors_on(&Subscription::sqs(topic(), "arn:aws:sqs:us-east-1:123456789012:q")).is_empty());
        assert!(errors_on(&Subscription::lambda(topic(), "arn:aws:lambda:us-east-1:123456789012:function:f")).is_empty());
        assert_eq!(errors_on(&Subscription::email(topic(), "ops")), ["endpoint"]);
        assert_eq!(errors_on(&Subscription::email(topic(), "a b@example.com")), ["endpoint"]);
        assert_eq!(errors_on(&Subscription::https(topic(), "http://hooks.example.com")), ["endpoint"]);
        assert_eq!(errors_on(&Subscription::sqs(topic(), "arn:aws:lambda:us-east-1:1:function:f")), ["endpoint"]);
        assert_eq!(errors_on(&Subscription::email(topic(), "ops@example.com").raw_message_delivery(true)), ["raw_message_delivery"]);
        assert_eq!(errors_on(&Subscription::email(Arn::literal("alarms"), "ops@example.com")), ["topic"]);
    }

    #[test]
    fn protocols_serialize_as_sns_spells_them() {
        for p in [Protocol::Email, Protocol::Https, Protocol::Sqs, Protocol::Lambda] {
            assert_eq!(serde_json::to_value(p).unwrap_or_default(), p.as_str());
            assert_eq!(Protocol::parse(p.as_str()), Some(p));
        }
        let mut unset = Subscription::email(topic(), "ops@example.com");
        unset.normalize();
        assert_eq!(unset.raw_message_delivery, Some(false));
    }
}
