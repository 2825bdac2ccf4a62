//! AWS Signature Version 4 over an HTTP request, for `AWS_IAM` routes: the signature a caller computed
//! (`Authorization: AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`) recomputed with the
//! emulator's secret key, and the same signing for clients (tests, tools) that call such a route.

use super::crypto::{hex, hmac_sha256, same, sha256};
use chrono::{DateTime, NaiveDateTime, Utc};

/// How far a request's `x-amz-date` may be from now, as AWS allows.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// The keys requests must be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Temporary keys' token: then `x-amz-security-token` must carry it.
    pub session_token: Option<String>,
}

/// What a request is made of, for signing: the path and query as sent (percent-encoded), lower-case header
/// names.
pub struct Message<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Why a signature is refused: API Gateway's 403 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
                        Access Key and signing method. Consult the service documentation for details.";

/// Unreserved characters stay; everything else is `%XX`. `/` stays when `keep_slash`.
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&crate::router::percent_decode(k), false), encode(&crate::router::percent_decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// `name:value` lines of the signed headers: repeated headers joined by `,`, spaces collapsed.
fn canonical_headers(headers: &[(String, String)], signed: &[&str]) -> String {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The payload's hash as signed: `x-amz-content-sha256` when sent, else the body's.
fn payload_hash(m: &Message<'_>) -> String {
    match header(m.headers, "x-amz-content-sha256") {
        Some(sent) => sent.to_string(),
        None => hex(&sha256(m.body)),
    }
}

/// The hex signature of `m` by `secret` for `scope` (`DATE/REGION/SERVICE/aws4_request`) at `amz_date`.
fn signature(m: &Message<'_>, signed: &[&str], secret: &str, amz_date: &str, scope: &str) -> String {
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        m.method,
        encode(if m.path.is_empty() { "/" } else { m.path }, true),
        canonical_query(m.query),
        canonical_headers(m.headers, signed),
        signed.join(";"),
        payload_hash(m)
    );
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&sha256(canonical.as_bytes())));
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/') {
        key = hmac_sha256(&key, part.as_bytes());
    }
    hex(&hmac_sha256(&key, to_sign.as_bytes()))
}

/// The headers that sign `m` for `service` in `region` at `time` (`x-amz-date`, the token if any, and
/// `authorization`); `m.headers` must already hold `host`.
pub fn sign(m: &Message<'_>, creds: &Credentials, region: &str, service: &str, time: DateTime<Utc>) -> Vec<(String, String)> {
    let amz_date = time.format("%Y%m%dT%H%M%SZ").to_string();
    let mut added = vec![("x-amz-date".to_string(), amz_date.clone())];
    if let Some(token) = &creds.session_token {
        added.push(("x-amz-security-token".to_string(), token.clone()));
    }
    let mut headers: Vec<(String, String)> = m.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    headers.extend(added.iter().cloned());
    let mut names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    names.sort();
    names.dedup();
    let scope = format!("{}/{region}/{service}/aws4_request", &amz_date[..8]);
    let message = Message { headers: &headers, ..*m };
    let sig = signature(&message, &names, &creds.secret_access_key, &amz_date, &scope);
    added.push((
        "authorization".to_string(),
        format!("AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={sig}", creds.access_key_id, names.join(";")),
    ));
    added
}

/// [`sign`] at this moment.
pub fn sign_now(m: &Message<'_>, creds: &Credentials, region: &str, service: &str) -> Vec<(String, String)> {
    sign(m, creds, region, service, Utc::now())
}

/// Checks `m`'s signature: made with `creds`, for `service` in `region`, within [`MAX_SKEW_SECONDS`] of
/// `now`. `Ok` with the caller's access key id.
pub fn verify(m: &Message<'_>, creds: &Credentials, region: &str, service: &str, now: DateTime<Utc>) -> Result<String, Refused> {
    let refuse = |why: &str| Refused(why.to_string());
    let auth = header(m.headers, "authorization").ok_or_else(|| refuse("Forbidden"))?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| refuse("Forbidden"))?;
    let mut credential = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => sig = Some(v),
            _ => {}
        }
    }
    let (Some(credential), Some(signed), Some(sig)) = (credential, signed, sig) else {
        return Err(refuse("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters."));
    };
    let (key_id, scope) = credential.split_once('/').ok_or_else(|| refuse("Forbidden"))?;
    if key_id != creds.access_key_id {
        return Err(refuse("The security token included in the request is invalid."));
    }
    if creds.session_token.is_some() && header(m.headers, "x-amz-security-token") != creds.session_token.as_deref() {
        return Err(refuse("The security token included in the request is invalid."));
    }
    let amz_date = header(m.headers, "x-amz-date").ok_or_else(|| refuse("Forbidden"))?;
    let scope_parts: Vec<&str> = scope.split('/').collect();
    if scope_parts.len() != 4 || scope_parts[3] != "aws4_request" || !amz_date.starts_with(scope_parts[0]) {
        return Err(refuse("Credential should be scoped to a valid date and to aws4_request."));
    }
    if scope_parts[1] != region || scope_parts[2] != service {
        return Err(refuse(&format!("Credential should be scoped to a valid region ({region}) and service ({service}).")));
    }
    let time = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ").map_err(|_| refuse("Forbidden"))?.and_utc();
    if (now - time).num_seconds().abs() > MAX_SKEW_SECONDS {
        return Err(refuse(&format!("Signature expired: {amz_date} is now earlier or later than the allowed 15 minutes.")));
    }
    let names: Vec<&str> = signed.split(';').collect();
    if !names.contains(&"host") {
        return Err(refuse(MISMATCH));
    }
    let payload = payload_hash(m);
    if payload != "UNSIGNED-PAYLOAD" && payload != hex(&sha256(m.body)) {
        return Err(refuse("The provided 'x-amz-content-sha256' header does not match what was computed."));
    }
    let expected = signature(m, &names, &creds.secret_access_key, amz_date, scope);
    if !same(expected.as_bytes(), sig.as_bytes()) {
        return Err(refuse(MISMATCH));
    }
    Ok(key_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// AWS's published example (IAM ListUsers, "Create a signed AWS API request"), independent of this
    /// code's signing.
    #[test]
    fn the_published_example_verifies() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let mut h = headers(&[
            ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("host", "iam.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ]);
        h.push((
            "authorization".into(),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
                .into(),
        ));
        let m = Message { method: "GET", path: "/", query: "Action=ListUsers&Version=2010-05-08", headers: &h, body: b"" };
        let at = NaiveDateTime::parse_from_str("20150830T123900Z", "%Y%m%dT%H%M%SZ").unwrap().and_utc();
        assert_eq!(verify(&m, &creds, "us-east-1", "iam", at), Ok("AKIDEXAMPLE".to_string()));
        // Our signing gives the same signature.
        let base = &h[..2];
        let ours = sign(&Message { headers: base, ..m }, &creds, "us-east-1", "iam", "2015-08-30T12:36:00Z".parse().unwrap());
        assert!(ours.last().unwrap().1.ends_with("5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"), "{ours:?}");
        // Too late, another service, another key.
        let late = at + chrono::Duration::minutes(20);
        assert!(verify(&m, &creds, "us-east-1", "iam", late).unwrap_err().0.starts_with("Signature expired"));
        assert!(verify(&m, &creds, "us-east-1", "execute-api", at).unwrap_err().0.contains("service (execute-api)"));
        let other = Credentials { access_key_id: "AKIDOTHER".into(), ..creds.clone() };
        assert_eq!(verify(&m, &other, "us-east-1", "iam", at).unwrap_err().0, "The security token included in the request is invalid.");
    }

    #[test]
    fn signed_requests_verify_and_changed_ones_do_not() {
        let creds = Credentials { access_key_id: "AK".into(), secret_access_key: "secret".into(), session_token: Some("tok".into()) };
        let now = Utc::now();
        let base = headers(&[("host", "127.0.0.1:8080"), ("content-type", "application/json")]);
        let body = br#"{"a":1}"#;
        let m = Message { method: "POST", path: "/pedidos/a%20b", query: "x=1&a=b c", headers: &base, body };
        let mut h = base.clone();
        h.extend(sign(&m, &creds, "us-east-1", "execute-api", now));
        let signed = Message { headers: &h, ..m };
        assert_eq!(verify(&signed, &creds, "us-east-1", "execute-api", now), Ok("AK".to_string()));
        assert_eq!(verify(&Message { body: b"{}", ..signed }, &creds, "us-east-1", "execute-api", now).unwrap_err().0, MISMATCH);
        assert_eq!(verify(&Message { path: "/pedidos/x", ..signed }, &creds, "us-east-1", "execute-api", now).unwrap_err().0, MISMATCH);
        let wrong_secret = Credentials { secret_access_key: "other".into(), ..creds.clone() };
        assert_eq!(verify(&signed, &wrong_secret, "us-east-1", "execute-api", now).unwrap_err().0, MISMATCH);
        let no_token: Vec<(String, String)> = h.iter().filter(|(k, _)| k != "x-amz-security-token").cloned().collect();
        assert!(verify(&Message { headers: &no_token, ..signed }, &creds, "us-east-1", "execute-api", now).is_err());
        assert_eq!(verify(&m, &creds, "us-east-1", "execute-api", now).unwrap_err().0, "Forbidden");
    }
}
