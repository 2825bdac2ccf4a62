//! A plain HTTP/1.1 client (one connection per request, `Connection: close`), for checking a served or
//! deployed API from tests and tools without another HTTP stack. `https://` URLs go over rustls with this
//! machine's trusted roots: the same rustls, aws-lc and native-certs crates the AWS SDK already builds.

use std::io::{Error, ErrorKind};
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

/// An answer: status, lower-case header names, body as text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// `http://HOST[:PORT][/BASE]` or `https://...` taken apart.
#[derive(Debug, PartialEq)]
struct Url {
    tls: bool,
    /// As written (`[::1]` keeps its brackets): the `Host` header.
    authority: String,
    host: String,
    port: u16,
    /// A stage's path (`/prod`), or empty.
    base: String,
}

fn parse(url: &str) -> std::io::Result<Url> {
    let bad = |why: &str| Error::new(ErrorKind::InvalidInput, format!("{url}: {why}"));
    let (tls, rest) = match url.split_once("://") {
        Some(("http", rest)) => (false, rest),
        Some(("https", rest)) => (true, rest),
        _ => return Err(bad("not an http:// or https:// URL")),
    };
    let (authority, base) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("an unclosed [ in the host"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad("a port that is not a number"))?,
        None if tls => 443,
        None => 80,
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(Url { tls, authority: authority.to_string(), host: host.to_string(), port, base: base.to_string() })
}

/// The TLS client: this machine's trusted roots, aws-lc as the crypto provider.
fn tls() -> std::io::Result<TlsConnector> {
    static CONNECTOR: OnceLock<Result<TlsConnector, String>> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!("no trusted root certificates found on this machine ({:?})", found.errors));
            }
            connector(roots)
        })
        .clone()
        .map_err(Error::other)
}

fn connector(roots: rustls::RootCertStore) -> Result<TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// `METHOD path` on `url` (`http://HOST:PORT` or `https://HOST[/STAGE]`), with these headers and body.
pub async fn request(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> std::io::Result<Answer> {
    let url = parse(url)?;
    let connector = if url.tls { Some(tls()?) } else { None };
    send(&url, connector.as_ref(), method, path, headers, body).await
}

async fn send(
    url: &Url,
    connector: Option<&TlsConnector>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<Answer> {
    let tcp = tokio::net::TcpStream::connect((url.host.as_str(), url.port)).await?;
    tcp.set_nodelay(true)?;
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {}{path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
        url.base,
        url.authority,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    match connector {
        None => exchange(tcp, req).await,
        Some(connector) => {
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{}: {e}", url.host)))?;
            exchange(connector.connect(name, tcp).await?, req).await
        }
    }
}

/// Writes the request and reads the answer: to its `content-length`, through its chunks, or to the end.
async fn exchange(mut stream: impl AsyncRead + AsyncWrite + Unpin, req: String) -> std::io::Result<Answer> {
    stream.write_all(req.as_bytes()).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut buf).await? {
            0 => return Err(Error::new(ErrorKind::UnexpectedEof, "the connection closed before an answer")),
            n => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut rest = raw.split_off(head_end + 4);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::other(format!("not an HTTP answer: {head}")))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.to_ascii_lowercase());
    let length: Option<usize> = header("content-length").and_then(|v| v.parse().ok());
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    // Read until the body is whole; a TLS peer that closes without close_notify ends the body too.
    let complete = |rest: &[u8]| match (length, chunked) {
        (Some(n), _) => rest.len() >= n,
        (None, true) => dechunk(rest).is_some(),
        (None, false) => false,
    };
    while !complete(&rest) && !has_no_body(status) {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
    }
    let body = match (length, chunked) {
        (Some(n), _) => rest.get(..n).map(<[u8]>::to_vec).unwrap_or(rest),
        (None, true) => dechunk(&rest).ok_or_else(|| Error::new(ErrorKind::UnexpectedEof, "a chunked body cut short"))?,
        (None, false) => rest,
    };
    Ok(Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

/// 1xx, 204 and 304 answers have no body.
fn has_no_body(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

/// A whole `transfer-encoding: chunked` body, decoded; `None` until its last chunk has arrived.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    #[test]
    fn urls_are_taken_apart() {
        let u = parse("https://abc.execute-api.us-east-1.amazonaws.com/prod/").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port, u.base.as_str()), (true, "abc.execute-api.us-east-1.amazonaws.com", 443, "/prod"));
        let u = parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.base.as_str(), u.authority.as_str()),
            (false, "127.0.0.1", 8080, "", "127.0.0.1:8080")
        );
        let u = parse("http://[::1]:9000/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.authority.as_str()), ("::1", 9000, "[::1]:9000"));
        for bad in ["ftp://x", "localhost:80", "http://:80", "http://h:port"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunked_bodies_are_decoded_once_whole() {
        assert_eq!(dechunk(b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n").as_deref(), Some(&b"hello world"[..]));
        assert_eq!(dechunk(b"5\r\nhello\r\n"), None);
    }

    /// Over real TLS to a real server on this machine: a self-signed certificate for `localhost` (made
    /// with openssl), trusted by this client alone; the stage path is kept and the chunked body decoded.
    #[tokio::test]
    async fn https_to_a_server_with_a_certificate_it_trusts() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
            // A server's certificate, not a CA's (webpki refuses a CA as the end entity).
            .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(&cert).unwrap().map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(&key).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs.clone(), key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                // A client that does not trust the certificate ends the handshake.
                let Ok(mut tls) = acceptor.accept(tcp).await else { continue };
                let mut raw = Vec::new();
                let mut buf = [0u8; 1024];
                while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = tls.read(&mut buf).await.unwrap();
                    raw.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&raw).into_owned();
                let line = head.lines().next().unwrap().to_string();
                let host = head.lines().find_map(|l| l.strip_prefix("host: ")).unwrap().to_string();
                let body = format!("{{\"line\":\"{line}\",\"host\":\"{host}\"}}");
                let (a, b) = body.split_at(10);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                    a.len(),
                    b.len()
                );
                tls.write_all(answer.as_bytes()).await.unwrap();
                tls.shutdown().await.unwrap();
            }
        });

        let mut roots = rustls::RootCertStore::empty();
        roots.add(certs[0].clone()).unwrap();
        let url = parse(&format!("https://localhost:{port}/prod")).unwrap();
        let answer = send(&url, Some(&connector(roots).unwrap()), "GET", "/pedidos?limit=1", &[], None).await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json()["line"], "GET /prod/pedidos?limit=1 HTTP/1.1");
        assert_eq!(answer.json()["host"], format!("localhost:{port}"));

        // Without the certificate among its roots (this machine's), the client refuses the server.
        let e = request(&format!("https://localhost:{port}"), "GET", "/", &[], None).await.unwrap_err();
        assert!(e.to_string().contains("invalid peer certificate"), "{e}");
    }
}
