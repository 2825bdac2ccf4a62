//! What a secret looks like in an environment value (Lambda functions, ECS containers).

use super::has_reference;

/// What kind of secret a value looks like. Values are never echoed: the finding would leak them again.
pub(crate) fn secret_kind(key: &str, value: &str) -> Option<&'static str> {
    let v = value.trim();
    if v.contains("PRIVATE KEY-----") {
        return Some("a private key");
    }
    if access_key_id(v) {
        return Some("an AWS access key id");
    }
    let lower = v.to_ascii_lowercase();
    if ["password=", "passwd=", "pwd=", "secret=", "api_key=", "apikey=", "token="].iter().any(|p| lower.contains(p)) {
        return Some("a password or token in a key=value text");
    }
    // user:password@host in a connection URL.
    if let Some((_, rest)) = v.split_once("://") {
        let authority = rest.split('/').next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if userinfo.split_once(':').is_some_and(|(_, pw)| !pw.is_empty() && !has_reference(pw)) {
                return Some("a URL with a password");
            }
        }
    }
    // A literal under a name that says secret (`DB_PASSWORD`), long enough to be one; a reference (a
    // secret's ARN or name from another resource) is the right thing to pass.
    let k = key.to_ascii_uppercase();
    let secret_name =
        ["PASSWORD", "PASSWD", "SECRET", "PRIVATE_KEY", "API_KEY", "APIKEY", "TOKEN", "CREDENTIAL"].iter().any(|n| k.contains(n));
    let names_a_secret = ["_ARN", "_NAME", "_ID", "_PATH", "_PARAM", "_PARAMETER"].iter().any(|s| k.ends_with(s));
    if secret_name && !names_a_secret && v.len() >= 8 && !has_reference(v) && !v.starts_with("arn:") {
        return Some("a secret (by its name)");
    }
    None
}

/// `AKIA`/`ASIA` + 16 upper-case letters or digits, anywhere in the value.
fn access_key_id(v: &str) -> bool {
    let b = v.as_bytes();
    b.windows(20)
        .any(|w| (w.starts_with(b"AKIA") || w.starts_with(b"ASIA")) && w[4..].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
}
