//! JWT authorizers as API Gateway's HTTP APIs run them: the token from the identity source (`Bearer ` or
//! not), an RSA signature (RS256/384/512) by a key of the issuer's JWKS named by the token's `kid`, then
//! `iss`, `aud` (or `client_id` when there is no `aud`), `exp`, `nbf`, `iat`, and at least one of the route's
//! scopes in `scope` or `scp`. A failed check is a 401; a valid token without a route scope is a 403.

use super::crypto::{self, RsaSigner};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// An issuer's public keys by `kid` (RSA keys for signatures only).
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: BTreeMap<String, (Vec<u8>, Vec<u8>)>,
}

impl Jwks {
    /// A JWKS document (`{"keys": [{"kty": "RSA", "kid": .., "n": .., "e": ..}]}`).
    pub fn parse(text: &str) -> Result<Jwks, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
        let list = doc.get("keys").and_then(Value::as_array).ok_or("not a JWKS document: no `keys` list")?;
        let mut keys = BTreeMap::new();
        for key in list {
            let field = |name: &str| key.get(name).and_then(Value::as_str);
            if field("kty") != Some("RSA") || field("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let (Some(kid), Some(n), Some(e)) = (field("kid"), field("n"), field("e")) else { continue };
            let (Ok(n), Ok(e)) = (b64(n), b64(e)) else { return Err(format!("key `{kid}`: `n` or `e` is not base64url")) };
            keys.insert(kid.to_string(), (n, e));
        }
        if keys.is_empty() {
            return Err("the JWKS holds no RSA signing key with a `kid`".into());
        }
        Ok(Jwks { keys })
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// base64url with or without padding.
fn b64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text).or_else(|_| URL_SAFE.decode(text))
}

/// Where `serve` gets the keys of JWT authorizers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS file, for every issuer.
    File(PathBuf),
    /// A JWKS URL, for every issuer.
    Url(String),
    /// Each issuer's own, as API Gateway finds it: `ISSUER/.well-known/openid-configuration`'s `jwks_uri`.
    Discover,
}

/// The variable that tells `serve` where the keys are: a JWKS file or an `http(s)://` URL.
pub const JWKS_ENV: &str = "FERROFORM_JWKS";

impl JwksSource {
    /// An `http://` or `https://` URL, else a file.
    pub fn parse(text: &str) -> JwksSource {
        if text.starts_with("http://") || text.starts_with("https://") {
            JwksSource::Url(text.to_string())
        } else {
            JwksSource::File(PathBuf::from(text))
        }
    }

    /// From [`JWKS_ENV`]; unset, each issuer's own.
    pub fn from_env() -> JwksSource {
        std::env::var(JWKS_ENV).ok().filter(|v| !v.trim().is_empty()).map(|v| JwksSource::parse(v.trim())).unwrap_or(JwksSource::Discover)
    }

    /// What `serve` uses: `flag` (`--jwks FILE|URL`) when given, else [`JWKS_ENV`], else each issuer's own.
    /// A file or URL given is read now, so a wrong path or a URL that does not answer stops `serve` at once,
    /// naming where it came from, instead of refusing every token later.
    pub async fn chosen(flag: Option<&str>) -> Result<JwksSource, String> {
        let env = std::env::var(JWKS_ENV).ok();
        let (text, given_as) = match (flag.map(str::trim).filter(|f| !f.is_empty()), env.as_deref().map(str::trim)) {
            (Some(flag), _) => (flag, "--jwks"),
            (None, Some(env)) if !env.is_empty() => (env, JWKS_ENV),
            _ => return Ok(JwksSource::Discover),
        };
        let source = JwksSource::parse(text);
        // Reading errors start with the path or URL already: said once.
        let prefix = format!("{text}: ");
        source.load("").await.map_err(|e| format!("{given_as} {text}: {}", e.strip_prefix(&prefix).unwrap_or(&e)))?;
        Ok(source)
    }

    /// The keys for `issuer`.
    pub async fn load(&self, issuer: &str) -> Result<Jwks, String> {
        let text = match self {
            JwksSource::File(path) => std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
            JwksSource::Url(url) => get(url).await?,
            JwksSource::Discover => {
                let discovery = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
                let doc: Value = serde_json::from_str(&get(&discovery).await?).map_err(|e| format!("{discovery}: {e}"))?;
                let uri = doc.get("jwks_uri").and_then(Value::as_str).ok_or_else(|| format!("{discovery}: no jwks_uri"))?;
                get(uri).await?
            }
        };
        Jwks::parse(&text)
    }
}

async fn get(url: &str) -> Result<String, String> {
    let answer =
        crate::client::request(url, "GET", "", &[("accept", "application/json")], None).await.map_err(|e| format!("{url}: {e}"))?;
    if answer.status != 200 {
        return Err(format!("{url}: HTTP {}", answer.status));
    }
    Ok(answer.body)
}

/// One JWT authorizer as deployed.
#[derive(Debug, Clone)]
pub struct JwtAuthorizer {
    pub issuer: String,
    pub audience: Vec<String>,
    /// `$request.header.Authorization` and the like.
    pub identity_source: Vec<String>,
    /// The issuer's keys, or why there are none (every token is then refused).
    pub keys: Result<Arc<Jwks>, String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// 401: no token, or a token that fails a check (the reason, for `www-authenticate`).
    Unauthorized(String),
    /// 403: a valid token with none of the route's scopes.
    Forbidden(String),
}

/// A token that passed: what the function sees in `requestContext.authorizer.jwt`.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub claims: Map<String, Value>,
    /// The token's scopes when the route names scopes, else `None` (API Gateway's `null`).
    pub scopes: Option<Vec<String>>,
}

impl Accepted {
    /// `{"claims": {...}, "scopes": [...] | null}` with every claim as text, as API Gateway passes them.
    pub fn context(&self) -> Value {
        let claims: Map<String, Value> = self.claims.iter().map(|(k, v)| (k.clone(), Value::String(claim_text(v)))).collect();
        json!({ "claims": claims, "scopes": self.scopes })
    }
}

/// A claim as API Gateway's payload 2.0 carries it: text; a list as `[a b]`.
fn claim_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(claim_text).collect::<Vec<_>>().join(" ")),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The token in `headers` (lower-case names) per the identity sources; `Bearer ` is optional, as in API
/// Gateway.
pub fn token_of<'a>(identity_source: &[String], headers: &'a [(String, String)]) -> Option<&'a str> {
    identity_source.iter().find_map(|source| {
        let name = source.strip_prefix("$request.header.")?;
        let value = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())?;
        let token = match value.get(..6) {
            Some(prefix) if prefix.eq_ignore_ascii_case("bearer") && (value.len() == 6 || value[6..].starts_with(' ')) => value[6..].trim(),
            _ => value,
        };
        (!token.is_empty()).then_some(token)
    })
}

impl JwtAuthorizer {
    /// Checks `token` for a route needing one of `scopes` (none: any valid token), at `now` (seconds since
    /// the epoch).
    pub fn check(&self, token: Option<&str>, scopes: &[String], now: i64) -> Result<Accepted, Denied> {
        let bad = |why: &str| Denied::Unauthorized(why.to_string());
        let token = token.ok_or_else(|| bad("no token"))?;
        let keys = self.keys.as_ref().map_err(|why| bad(&format!("the issuer's keys are not available: {why}")))?;
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad("not a JWT"));
        };
        let decode = |part: &str| -> Result<Map<String, Value>, Denied> {
            let bytes = b64(part).map_err(|_| bad("not a JWT"))?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(bad("not a JWT")),
            }
        };
        let (head, claims) = (decode(header)?, decode(payload)?);
        let alg = head.get("alg").and_then(Value::as_str).unwrap_or_default();
        let scheme = crypto::rsa_scheme(alg).ok_or_else(|| bad(&format!("the signing algorithm `{alg}` is not supported")))?;
        let kid = head.get("kid").and_then(Value::as_str).ok_or_else(|| bad("no kid in the token's header"))?;
        let (n, e) = keys.keys.get(kid).ok_or_else(|| bad(&format!("no key `{kid}` in the issuer's JWKS")))?;
        let signature = b64(signature).map_err(|_| bad("not a JWT"))?;
        if !crypto::rsa_verify(scheme, n, e, format!("{header}.{payload}").as_bytes(), &signature) {
            return Err(bad("the signature is not the issuer's"));
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("iss") != Some(self.issuer.as_str()) {
            return Err(bad(&format!("the issuer {} is not {}", text("iss").unwrap_or("(none)"), self.issuer)));
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => text("client_id").into_iter().collect(),
        };
        if !audiences.iter().any(|a| self.audience.iter().any(|ok| ok == a)) {
            return Err(bad("the token's audience (aud or client_id) is not one the authorizer accepts"));
        }
        let time = |name: &str| claims.get(name).and_then(Value::as_f64);
        match time("exp") {
            Some(exp) if exp > now as f64 => {}
            Some(_) => return Err(bad("the token has expired")),
            None => return Err(bad("the token has no exp")),
        }
        if time("nbf").is_some_and(|nbf| nbf > now as f64) {
            return Err(bad("the token is not valid yet (nbf)"));
        }
        if time("iat").is_some_and(|iat| iat > now as f64) {
            return Err(bad("the token was issued in the future (iat)"));
        }
        if scopes.is_empty() {
            return Ok(Accepted { claims, scopes: None });
        }
        let held: Vec<String> = match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => s.split_whitespace().map(String::from).collect(),
            (_, Some(Value::Array(a))) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
            _ => Vec::new(),
        };
        if !held.iter().any(|s| scopes.contains(s)) {
            return Err(Denied::Forbidden(format!("expected scopes: [{}]", scopes.join(" "))));
        }
        Ok(Accepted { claims, scopes: Some(held) })
    }
}

/// An issuer on this machine: an RSA key, its JWKS, and the tokens it signs (RS256). For tests, and for
/// calling a served API protected by a JWT authorizer (serve it with this issuer's JWKS).
pub struct TokenIssuer {
    pub issuer: String,
    pub kid: String,
    signer: RsaSigner,
}

impl TokenIssuer {
    /// Over an RSA private key (DER: PKCS#8 or PKCS#1).
    pub fn from_der(issuer: impl Into<String>, kid: impl Into<String>, der: &[u8]) -> Result<TokenIssuer, String> {
        Ok(TokenIssuer { issuer: issuer.into(), kid: kid.into(), signer: RsaSigner::from_der(der)? })
    }

    /// With a new 2048-bit key made by the `openssl` command.
    pub fn generate(issuer: impl Into<String>, kid: impl Into<String>) -> Result<TokenIssuer, String> {
        let out = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-outform", "DER"])
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if !out.status.success() {
            return Err(format!("openssl genpkey: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Self::from_der(issuer, kid, &out.stdout)
    }

    /// The JWKS document with this issuer's public key.
    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.signer.n), "e": URL_SAFE_NO_PAD.encode(&self.signer.e),
        }]})
    }

    /// A token with these claims (`iss` is not added: tests set what they check), signed with `kid`.
    pub fn token(&self, claims: &Value) -> Result<String, String> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.signer.sign_rs256(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// Claims valid for an hour from `now`: this issuer, `audience`, `scope` (space-separated), `sub`.
    pub fn claims(&self, audience: &str, scope: &str, now: i64) -> Value {
        json!({"iss": self.issuer, "aud": audience, "sub": "local-user", "scope": scope, "iat": now, "exp": now + 3600})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    const NOW: i64 = 1_800_000_000;

    /// One key for every test (a key takes openssl a moment).
    fn issuer() -> &'static TokenIssuer {
        static ISSUER: OnceLock<TokenIssuer> = OnceLock::new();
        ISSUER.get_or_init(|| TokenIssuer::generate("https://issuer.example.com", "k1").unwrap())
    }

    fn authorizer() -> JwtAuthorizer {
        let keys = Jwks::parse(&issuer().jwks().to_string()).unwrap();
        JwtAuthorizer {
            issuer: "https://issuer.example.com".into(),
            audience: vec!["orders-app".into(), "other".into()],
            identity_source: vec!["$request.header.Authorization".into()],
            keys: Ok(Arc::new(keys)),
        }
    }

    fn token(edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = issuer().claims("orders-app", "orders:read profile", NOW);
        edit(&mut claims);
        issuer().token(&claims).unwrap()
    }

    fn check(token: &str, scopes: &[&str]) -> Result<Accepted, Denied> {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        authorizer().check(Some(token), &scopes, NOW)
    }

    fn unauthorized(r: Result<Accepted, Denied>) -> String {
        match r {
            Err(Denied::Unauthorized(why)) => why,
            other => panic!("not a 401: {other:?}"),
        }
    }

    #[test]
    fn a_good_token_passes_with_its_claims_and_scopes() {
        let ok = check(&token(|c| c["groups"] = json!(["a", "b"])), &["orders:read"]).unwrap();
        assert_eq!(ok.scopes, Some(vec!["orders:read".to_string(), "profile".to_string()]));
        let ctx = ok.context();
        assert_eq!(ctx["claims"]["sub"], "local-user");
        assert_eq!(ctx["claims"]["exp"], (NOW + 3600).to_string());
        assert_eq!(ctx["claims"]["groups"], "[a b]");
        // No route scopes: any valid token, and scopes null.
        assert_eq!(check(&token(|_| {}), &[]).unwrap().context()["scopes"], Value::Null);
        // scp as a list, and client_id where there is no aud (Cognito access tokens).
        let cognito = token(|c| {
            c.as_object_mut().unwrap().remove("aud");
            c.as_object_mut().unwrap().remove("scope");
            c["client_id"] = json!("other");
            c["scp"] = json!(["orders:write"]);
        });
        assert!(check(&cognito, &["orders:read", "orders:write"]).is_ok());
    }

    #[test]
    fn each_failed_check_is_a_401_saying_why() {
        assert!(unauthorized(check(&token(|c| c["exp"] = json!(NOW - 1)), &[])).contains("expired"));
        assert!(unauthorized(check(&token(|c| c["iss"] = json!("https://evil.example.com")), &[])).contains("issuer"));
        assert!(unauthorized(check(&token(|c| c["aud"] = json!("someone-else")), &[])).contains("audience"));
        assert!(unauthorized(check(&token(|c| c["aud"] = json!(["x", "y"])), &[])).contains("audience"));
        assert!(unauthorized(check(&token(|c| c["nbf"] = json!(NOW + 60)), &[])).contains("nbf"));
        assert!(unauthorized(check(&token(|c| drop(c.as_object_mut().unwrap().remove("exp"))), &[])).contains("no exp"));
        assert_eq!(unauthorized(authorizer().check(None, &[], NOW)), "no token");
        assert_eq!(unauthorized(check("abc.def", &[])), "not a JWT");
        // A changed payload under the old signature; a token from another key with the same kid.
        let good = token(|_| {});
        let parts: Vec<&str> = good.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(issuer().claims("orders-app", "orders:write", NOW).to_string());
        assert!(unauthorized(check(&format!("{}.{forged}.{}", parts[0], parts[2]), &[])).contains("signature"));
        let stranger = TokenIssuer::generate("https://issuer.example.com", "k1").unwrap();
        let theirs = stranger.token(&issuer().claims("orders-app", "orders:read", NOW)).unwrap();
        assert!(unauthorized(check(&theirs, &[])).contains("signature"));
        // Unknown kid; an unsigned token.
        let other_kid = TokenIssuer::generate("https://issuer.example.com", "k2").unwrap();
        assert!(unauthorized(check(&other_kid.token(&issuer().claims("orders-app", "", NOW)).unwrap(), &[])).contains("no key `k2`"));
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#), parts[1]);
        assert!(unauthorized(check(&none, &[])).contains("`none` is not supported"));
    }

    #[test]
    fn a_token_without_a_route_scope_is_a_403() {
        assert_eq!(check(&token(|_| {}), &["orders:write"]), Err(Denied::Forbidden("expected scopes: [orders:write]".into())));
        assert!(matches!(check(&token(|c| c["scope"] = json!("")), &["orders:read"]), Err(Denied::Forbidden(_))));
    }

    #[test]
    fn tokens_come_from_the_identity_source_with_or_without_bearer() {
        let src = vec!["$request.header.Authorization".to_string()];
        let h = |v: &str| vec![("authorization".to_string(), v.to_string())];
        assert_eq!(token_of(&src, &h("Bearer abc")), Some("abc"));
        assert_eq!(token_of(&src, &h("bearer  abc ")), Some("abc"));
        assert_eq!(token_of(&src, &h("abc")), Some("abc"));
        assert_eq!(token_of(&src, &h("Bearer ")), None);
        assert_eq!(token_of(&src, &[]), None);
    }

    /// `serve --jwks`: a file and a URL (a local listener answering once) are read at once; a path that is not
    /// there or a document that is not a JWKS stops serve naming the flag and what was given.
    #[tokio::test]
    async fn serve_takes_a_jwks_file_or_url_and_names_the_flag_when_it_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.json");
        std::fs::write(&file, issuer().jwks().to_string()).unwrap();
        let path = file.display().to_string();
        assert_eq!(JwksSource::chosen(Some(&path)).await, Ok(JwksSource::File(file.clone())));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
        let body = issuer().jwks().to_string();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let n = conn.read(&mut request).await.unwrap();
            let head =
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            conn.write_all(head.as_bytes()).await.unwrap();
            conn.write_all(body.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&request[..n]).to_string()
        });
        assert_eq!(JwksSource::chosen(Some(&url)).await, Ok(JwksSource::Url(url.clone())));
        assert!(server.await.unwrap().starts_with("GET /.well-known/jwks.json "));

        let missing = dir.path().join("nope.json").display().to_string();
        let e = JwksSource::chosen(Some(&missing)).await.unwrap_err();
        assert!(e.starts_with(&format!("--jwks {missing}: ")) && e.contains("No such file"), "{e}");
        assert_eq!(e.matches(&missing).count(), 1, "{e}");
        std::fs::write(&file, "{}").unwrap();
        let e = JwksSource::chosen(Some(&path)).await.unwrap_err();
        assert_eq!(e, format!("--jwks {path}: not a JWKS document: no `keys` list"));
    }

    #[test]
    fn jwks_documents() {
        let jwks = Jwks::parse(&issuer().jwks().to_string()).unwrap();
        assert_eq!(jwks.kids().collect::<Vec<_>>(), ["k1"]);
        assert!(Jwks::parse(r#"{"keys":[{"kty":"EC","kid":"e"}]}"#).unwrap_err().contains("no RSA signing key"));
        assert!(Jwks::parse("[]").unwrap_err().contains("no `keys`"));
        assert_eq!(JwksSource::parse("https://x/jwks.json"), JwksSource::Url("https://x/jwks.json".into()));
        assert_eq!(JwksSource::parse("keys.json"), JwksSource::File("keys.json".into()));
    }
}
