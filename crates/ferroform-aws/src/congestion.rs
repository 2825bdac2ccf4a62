//! Each service's calls go through its own congestion window ([`ferroform_core::congestion`]): an HTTP client
//! around the SDK's that holds a place in the window while a call is on the wire and tells the window how the
//! service answered. Every call counts (reads, writes, the SDK's own retries), since AWS throttles them all
//! against the same account limits; the engine's fixed caps stay only as an upper bound per batch.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use ferroform_core::congestion::{Adaptive, Snapshot, MAX, START};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The windows of one AWS context (one account and region), by service.
#[derive(Debug, Default, Clone)]
pub struct Congestion(Arc<Mutex<BTreeMap<&'static str, Arc<Adaptive>>>>);

impl Congestion {
    pub fn window(&self, service: &'static str) -> Arc<Adaptive> {
        let mut map = match self.0.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(service).or_insert_with(|| Adaptive::new(START, MAX)).clone()
    }

    /// What each service's window did so far.
    pub fn snapshot(&self) -> BTreeMap<String, Snapshot> {
        self.0.lock().map(|m| m.iter().map(|(k, w)| (k.to_string(), w.snapshot())).collect()).unwrap_or_default()
    }

    /// `base` with `service`'s window in front of it.
    pub fn client(&self, service: &'static str, base: SharedHttpClient) -> SharedHttpClient {
        SharedHttpClient::new(Windowed { window: self.window(service), base })
    }
}

/// The client the SDK would have made itself (hyper 1.x, rustls with aws-lc, proxy settings from the
/// environment), for a configuration that names none: the window needs one to wrap.
pub fn default_base() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

#[derive(Debug)]
struct Windowed {
    window: Arc<Adaptive>,
    base: SharedHttpClient,
}

impl HttpClient for Windowed {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(WindowedConnector { window: self.window.clone(), inner: self.base.http_connector(settings, components) })
    }
    fn connector_metadata(&self) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.base.connector_metadata()
    }
}

#[derive(Debug)]
struct WindowedConnector {
    window: Arc<Adaptive>,
    inner: SharedHttpConnector,
}

impl HttpConnector for WindowedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (window, inner) = (self.window.clone(), self.inner.clone());
        HttpConnectorFuture::new(async move {
            let permit = window.acquire().await;
            // No answer (a connection error): the permit is dropped, its place given back, nothing learned.
            let mut response = inner.call(request).await?;
            match response.status().as_u16() {
                429 | 503 => permit.throttled(),
                // JSON protocols name the error in a header; the query protocols (IAM, EC2, SNS, CloudWatch)
                // only in the body, which is small for an error: read it, and hand the SDK the same bytes.
                400 => {
                    let header = response.headers().get("x-amzn-errortype").map(|h| h.split(':').next().unwrap_or(h).to_string());
                    let bytes =
                        ByteStream::new(response.take_body()).collect().await.map_err(|e| ConnectorError::io(e.into()))?.into_bytes();
                    let throttled = match header {
                        Some(code) => crate::error::is_throttling_code(&code),
                        None => body_code(&bytes).is_some_and(crate::error::is_throttling_code),
                    };
                    *response.body_mut() = SdkBody::from(bytes);
                    if throttled {
                        permit.throttled()
                    } else {
                        permit.succeeded()
                    }
                }
                _ => permit.succeeded(),
            }
            Ok(response)
        })
    }
}

/// The error code of an error body: `<Code>X</Code>` (query protocols) or `"__type":"X"` / `"code":"X"` (JSON).
fn body_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    if let Some(start) = text.find("<Code>") {
        let rest = &text[start + "<Code>".len()..];
        return rest.find("</Code>").map(|end| &rest[..end]);
    }
    for key in ["\"__type\"", "\"code\"", "\"Code\""] {
        if let Some(start) = text.find(key) {
            let rest = text[start + key.len()..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
            let code = &rest[..rest.find('"')?];
            // `com.amazon.coral.service#ThrottlingException`
            return Some(code.rsplit('#').next().unwrap_or(code));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_found_in_every_protocols_body() {
        let query =
            b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert_eq!(body_code(query), Some("Throttling"));
        let ec2 = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>";
        assert_eq!(body_code(ec2), Some("RequestLimitExceeded"));
        let json = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}"#;
        assert_eq!(body_code(json), Some("ThrottlingException"));
        assert_eq!(body_code(br#"{"code": "TooManyRequestsException"}"#), Some("TooManyRequestsException"));
        assert_eq!(body_code(b"{\"message\":\"no code\"}"), None);
        assert!(crate::error::is_throttling_code("Throttling"));
        assert!(!crate::error::is_throttling_code("ValidationException"));
    }
}
