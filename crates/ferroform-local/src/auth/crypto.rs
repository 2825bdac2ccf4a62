//! SHA-256, HMAC-SHA256 and RSA PKCS#1 v1.5 signatures from the aws-lc crypto provider rustls already
//! builds for the HTTPS client: no further crypto crate (and no ring) for the gateway's checks.

use rustls::crypto::aws_lc_rs;
use rustls::pki_types::PrivateKeyDer;
use rustls::SignatureScheme;

/// SHA-256 of `data`. The provider's TLS 1.3 suite's hash; empty only if that suite were missing, which
/// makes every signature check fail rather than pass.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .map(|suite| suite.common.hash_provider.hash(data).as_ref().to_vec())
        .unwrap_or_default()
}

/// HMAC-SHA256 (RFC 2104) over [`sha256`].
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK { sha256(key) } else { key.to_vec() };
    k.resize(BLOCK, 0);
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(data);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal without an early exit, so a signature check takes as long however much of it matches.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RSA PKCS#1 v1.5 signature schemes by JWS name.
pub fn rsa_scheme(alg: &str) -> Option<SignatureScheme> {
    match alg {
        "RS256" => Some(SignatureScheme::RSA_PKCS1_SHA256),
        "RS384" => Some(SignatureScheme::RSA_PKCS1_SHA384),
        "RS512" => Some(SignatureScheme::RSA_PKCS1_SHA512),
        _ => None,
    }
}

/// Whether `signature` is `scheme`'s over `message` by the RSA key `(n, e)` (big-endian bytes).
pub fn rsa_verify(scheme: SignatureScheme, n: &[u8], e: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let key = der::rsa_public_key(n, e);
    let provider = aws_lc_rs::default_provider();
    let Some((_, algs)) = provider.signature_verification_algorithms.mapping.iter().find(|(s, _)| *s == scheme) else {
        return false;
    };
    algs.iter().any(|alg| alg.verify_signature(&key, message, signature).is_ok())
}

/// An RSA private key that signs with PKCS#1 v1.5 and SHA-256.
pub struct RsaSigner {
    key: std::sync::Arc<dyn rustls::sign::SigningKey>,
    /// The public key's modulus and exponent, big-endian.
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl RsaSigner {
    /// From DER: PKCS#8, or PKCS#1 (what `openssl genpkey -outform DER` writes).
    pub fn from_der(der: &[u8]) -> Result<RsaSigner, String> {
        let key = aws_lc_rs::sign::any_supported_type(&PrivateKeyDer::Pkcs8(der.to_vec().into()))
            .or_else(|_| aws_lc_rs::sign::any_supported_type(&PrivateKeyDer::Pkcs1(der.to_vec().into())))
            .map_err(|e| format!("not a usable private key: {e}"))?;
        let spki = key.public_key().ok_or("the key has no public key")?;
        let (n, e) = der::rsa_components_of_spki(spki.as_ref()).ok_or("not an RSA key")?;
        Ok(RsaSigner { key, n, e })
    }

    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let signer = self.key.choose_scheme(&[SignatureScheme::RSA_PKCS1_SHA256]).ok_or("the key can't sign RS256")?;
        signer.sign(message).map_err(|e| e.to_string())
    }
}

/// The few DER shapes RSA keys come in.
mod der {
    /// One element: (tag, contents, what follows).
    fn element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = bytes.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    fn encode(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(contents);
        out
    }

    /// A positive INTEGER: no leading zeros but one before a high bit.
    fn integer(value: &[u8]) -> Vec<u8> {
        let trimmed: Vec<u8> = value.iter().copied().skip_while(|b| *b == 0).collect();
        let mut contents = Vec::with_capacity(trimmed.len() + 1);
        if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
            contents.push(0);
        }
        contents.extend(trimmed);
        encode(0x02, &contents)
    }

    /// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
    pub fn rsa_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
        let mut body = integer(n);
        body.extend(integer(e));
        encode(0x30, &body)
    }

    /// `(n, e)` of an RSA SubjectPublicKeyInfo, without the INTEGERs' sign bytes.
    pub fn rsa_components_of_spki(spki: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        let (0x30, info, _) = element(spki)? else { return None };
        let (0x30, _algorithm, rest) = element(info)? else { return None };
        let (0x03, bits, _) = element(rest)? else { return None };
        let (0x30, key, _) = element(bits.get(1..)?)? else { return None };
        let (0x02, n, rest) = element(key)? else { return None };
        let (0x02, e, _) = element(rest)? else { return None };
        let strip = |v: &[u8]| v.iter().copied().skip_while(|b| *b == 0).collect::<Vec<u8>>();
        Some((strip(n), strip(e)))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn integers_and_lengths() {
            assert_eq!(super::integer(&[0x01, 0x00, 0x01]), vec![0x02, 0x03, 0x01, 0x00, 0x01]);
            assert_eq!(super::integer(&[0x00, 0x80]), vec![0x02, 0x02, 0x00, 0x80]);
            let long = super::encode(0x04, &[7; 300]);
            assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
            assert_eq!(super::element(&long).map(|(t, c, r)| (t, c.len(), r.len())), Some((0x04, 300, 0)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_and_hmac_match_their_test_vectors() {
        assert_eq!(hex(&sha256(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        // RFC 4231, test cases 2 and 6 (a key longer than a block).
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
