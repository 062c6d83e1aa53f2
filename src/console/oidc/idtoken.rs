//! Verifying an ID token (OpenID Connect Core §3.1.3.7), with no I/O: the signature
//! against the provider's published keys (RS256, ES256; `none` and HMAC refused),
//! then `iss`, `aud`/`azp`, `exp`, `iat`, `nbf` on the caller's clock with a small
//! leeway, and `nonce`. Signatures are checked with ring, already in the binary for
//! TLS: no JOSE crate, and nothing here that parses more than it must.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::super::session::same_secret;

/// Clock difference tolerated between the provider and this daemon.
pub const LEEWAY_SECS: i64 = 60;
/// Larger than any ID token with a long group list (Entra caps groups at 200).
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why an ID token was not accepted. Messages name the claim, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the ID token is not a signed JWT ({0})")]
    Malformed(&'static str),
    #[error("the ID token is signed with {0:?}; only RS256 and ES256 are accepted")]
    Algorithm(String),
    #[error("the ID token names signing key {0:?}, which the provider does not publish")]
    UnknownKey(String),
    #[error("the ID token's signature does not verify")]
    Signature,
    #[error("the ID token was issued by {0:?}, not the configured issuer")]
    Issuer(String),
    #[error("the ID token is not for this client (aud/azp)")]
    Audience,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not valid yet (iat/nbf in the future; check this machine's clock)")]
    NotYetValid,
    #[error("the ID token does not carry this sign-in's nonce")]
    Nonce,
    #[error("the ID token lacks {0}")]
    Missing(&'static str),
}

/// What the checks need besides the token.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: DateTime<Utc>,
}

/// A verified token's claims.
#[derive(Debug, Clone)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    pub fn subject(&self) -> &str {
        self.0
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// A name to show: `name`, else `preferred_username`, else `email`; may be empty.
    pub fn display_name(&self) -> String {
        ["name", "preferred_username", "email"]
            .iter()
            .find_map(|k| {
                self.0
                    .get(*k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
            })
            .map(|s| s.trim().chars().take(200).collect())
            .unwrap_or_default()
    }

    /// The strings of claim `name` (an array, or one string); `None` when absent.
    pub fn strings(&self, name: &str) -> Option<Vec<String>> {
        match self.0.get(name)? {
            Value::Array(items) => Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            ),
            Value::String(s) => Some(vec![s.clone()]),
            _ => Some(Vec::new()),
        }
    }

    /// Whether the provider left claim `name` out for size and points elsewhere
    /// (Entra's "groups overage": more groups than fit in a token).
    pub fn overflowed(&self, name: &str) -> bool {
        self.0
            .get("_claim_names")
            .and_then(|c| c.get(name))
            .is_some()
    }
}

/// The provider's signing keys (its JWKS `keys`).
#[derive(Debug, Clone, Default)]
pub struct KeySet(pub Vec<Value>);

impl KeySet {
    pub fn has(&self, kid: &str) -> bool {
        self.0
            .iter()
            .any(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
    }
}

/// The header's `alg` and `kid`, to choose a key (and to tell whether the key set
/// should be fetched again for a `kid` it lacks).
pub fn key_id(token: &str) -> Result<Option<String>, TokenError> {
    let (header, _, _) = split(token)?;
    Ok(header.get("kid").and_then(Value::as_str).map(str::to_owned))
}

type Parts<'a> = (Map<String, Value>, &'a str, Vec<u8>);

fn decode_json(part: &str, what: &'static str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(what))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(TokenError::Malformed(what)),
    }
}

/// Header, signing input and signature of a compact JWS.
fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed("too large"));
    }
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    let header = decode_json(h, "header")?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| TokenError::Malformed("signature"))?;
    let signed = &token[..h.len() + 1 + p.len()];
    Ok((header, signed, signature))
}

fn b64(key: &Value, field: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(key.get(field)?.as_str()?).ok()
}

/// Whether `key` verifies `signature` over `signed` with `alg`; `None` when the key
/// is not one for `alg` (another type or curve, or for encryption).
fn verify_with(key: &Value, alg: &str, signed: &[u8], sig: &[u8]) -> Option<bool> {
    if key
        .get("use")
        .and_then(Value::as_str)
        .is_some_and(|u| u != "sig")
    {
        return None;
    }
    if key
        .get("alg")
        .and_then(Value::as_str)
        .is_some_and(|a| a != alg)
    {
        return None;
    }
    match (alg, key.get("kty").and_then(Value::as_str)?) {
        ("RS256", "RSA") => {
            let rsa = RsaPublicKeyComponents {
                n: b64(key, "n")?,
                e: b64(key, "e")?,
            };
            Some(
                rsa.verify(&signature::RSA_PKCS1_2048_8192_SHA256, signed, sig)
                    .is_ok(),
            )
        }
        ("ES256", "EC") if key.get("crv").and_then(Value::as_str) == Some("P-256") => {
            let (x, y) = (b64(key, "x")?, b64(key, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Some(false);
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Some(
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(signed, sig)
                    .is_ok(),
            )
        }
        _ => None,
    }
}

fn seconds(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(TokenError::Missing(name)),
    }
}

/// Verifies `token` against `keys` and `expected`; its claims when every check passes.
pub fn verify(token: &str, keys: &KeySet, expected: &Expected<'_>) -> Result<Claims, TokenError> {
    let (header, signed, sig) = split(token)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if alg != "RS256" && alg != "ES256" {
        return Err(TokenError::Algorithm(alg.chars().take(20).collect()));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&Value> = keys
        .0
        .iter()
        .filter(|k| kid.is_none_or(|kid| k.get("kid").and_then(Value::as_str) == Some(kid)))
        .collect();
    let mut tried = false;
    let mut good = false;
    for key in candidates {
        if let Some(ok) = verify_with(key, alg, signed.as_bytes(), &sig) {
            tried = true;
            if ok {
                good = true;
                break;
            }
        }
    }
    if !tried {
        return Err(TokenError::UnknownKey(
            kid.unwrap_or("(none)").chars().take(100).collect(),
        ));
    }
    if !good {
        return Err(TokenError::Signature);
    }
    let payload = signed.split('.').nth(1).unwrap_or_default();
    let claims = decode_json(payload, "claims")?;

    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(TokenError::Missing("iss"))?;
    if iss != expected.issuer {
        return Err(TokenError::Issuer(iss.chars().take(200).collect()));
    }
    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(TokenError::Missing("aud")),
    };
    if !aud.contains(&expected.client_id) {
        return Err(TokenError::Audience);
    }
    // Several audiences, or an authorized party named: it must be this client.
    let azp = claims.get("azp").and_then(Value::as_str);
    if (aud.len() > 1 || azp.is_some()) && azp != Some(expected.client_id) {
        return Err(TokenError::Audience);
    }
    let now = expected.now.timestamp();
    let exp = seconds(&claims, "exp")?.ok_or(TokenError::Missing("exp"))?;
    if now >= exp.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    let iat = seconds(&claims, "iat")?.ok_or(TokenError::Missing("iat"))?;
    let nbf = seconds(&claims, "nbf")?.unwrap_or(iat);
    if iat.max(nbf) > now.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::NotYetValid);
    }
    let nonce = claims
        .get("nonce")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !same_secret(nonce, expected.nonce) {
        return Err(TokenError::Nonce);
    }
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(TokenError::Missing("sub"));
    }
    Ok(Claims(claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const ISS: &str = "https://idp.example.com";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    struct Signer {
        key: EcdsaKeyPair,
        jwk: Value,
    }

    fn signer(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let public = key.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]), "y": URL_SAFE_NO_PAD.encode(&public[33..])});
        Signer { key, jwk }
    }

    fn sign(s: &Signer, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = s.key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn good_claims() -> Value {
        json!({"iss": ISS, "aud": "bridge", "sub": "00u1", "nonce": "n1",
               "iat": 1_700_000_000 - 5, "exp": 1_700_000_000 + 300,
               "name": "Ada Lovelace", "groups": ["Console-Admins"]})
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: ISS,
            client_id: "bridge",
            nonce: "n1",
            now: now(),
        }
    }

    #[test]
    fn a_good_token_verifies_and_every_bad_one_is_refused() {
        let s = signer("k1");
        let keys = KeySet(vec![s.jwk.clone()]);
        let hdr = json!({"alg": "ES256", "kid": "k1"});
        let ok = verify(&sign(&s, hdr.clone(), good_claims()), &keys, &expected()).unwrap();
        assert_eq!(
            (ok.subject(), ok.display_name().as_str()),
            ("00u1", "Ada Lovelace")
        );
        assert_eq!(ok.strings("groups").unwrap(), vec!["Console-Admins"]);
        assert_eq!(
            key_id(&sign(&s, hdr.clone(), good_claims()))
                .unwrap()
                .as_deref(),
            Some("k1")
        );

        let with = |k: &str, v: Value| {
            let mut c = good_claims();
            c[k] = v;
            verify(&sign(&s, hdr.clone(), c), &keys, &expected())
        };
        assert_eq!(
            with("iss", json!("https://evil")).unwrap_err(),
            TokenError::Issuer("https://evil".into())
        );
        assert_eq!(
            with("aud", json!("other")).unwrap_err(),
            TokenError::Audience
        );
        assert_eq!(
            with("aud", json!(["bridge", "other"])).unwrap_err(),
            TokenError::Audience
        );
        assert!(with("azp", json!("bridge")).is_ok());
        assert_eq!(
            with("azp", json!("other")).unwrap_err(),
            TokenError::Audience
        );
        assert_eq!(
            with("exp", json!(1_700_000_000 - 61)).unwrap_err(),
            TokenError::Expired
        );
        assert!(
            with("exp", json!(1_700_000_000 - 30)).is_ok(),
            "within the leeway"
        );
        assert_eq!(
            with("iat", json!(1_700_000_000 + 120)).unwrap_err(),
            TokenError::NotYetValid
        );
        assert_eq!(
            with("nbf", json!(1_700_000_000 + 120)).unwrap_err(),
            TokenError::NotYetValid
        );
        assert_eq!(with("nonce", json!("n2")).unwrap_err(), TokenError::Nonce);
        assert_eq!(
            with("sub", json!("")).unwrap_err(),
            TokenError::Missing("sub")
        );

        // Another key's signature, an unknown kid, alg none / HS256, tampering.
        let other = signer("k1");
        assert_eq!(
            verify(
                &sign(&other, hdr.clone(), good_claims()),
                &keys,
                &expected()
            )
            .unwrap_err(),
            TokenError::Signature
        );
        assert_eq!(
            verify(
                &sign(&s, json!({"alg": "ES256", "kid": "k9"}), good_claims()),
                &keys,
                &expected()
            )
            .unwrap_err(),
            TokenError::UnknownKey("k9".into())
        );
        for alg in ["none", "HS256", "RS256"] {
            let t = sign(&s, json!({"alg": alg, "kid": "k1"}), good_claims());
            assert!(verify(&t, &keys, &expected()).is_err(), "{alg}");
        }
        let t = sign(&s, hdr.clone(), good_claims());
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(good_claims().to_string().replace("00u1", "00u2"));
        parts[1] = &forged;
        assert_eq!(
            verify(&parts.join("."), &keys, &expected()).unwrap_err(),
            TokenError::Signature
        );
        assert!(matches!(
            verify("a.b", &keys, &expected()),
            Err(TokenError::Malformed(_))
        ));
        // No kid: any published key of the right type may verify.
        assert!(
            verify(
                &sign(&s, json!({"alg": "ES256"}), good_claims()),
                &keys,
                &expected()
            )
            .is_ok()
        );
    }

    #[test]
    fn rs256_verifies_with_the_published_modulus() {
        // A 2048-bit test key (PKCS#1 DER), generated once for this test.
        let der = URL_SAFE_NO_PAD
            .decode(include_str!("test_rsa_key.b64").trim())
            .unwrap();
        let key = ring::signature::RsaKeyPair::from_der(&der).unwrap();
        let public: RsaPublicKeyComponents<Vec<u8>> = key.public().into();
        let n = URL_SAFE_NO_PAD.encode(&public.n);
        let e = URL_SAFE_NO_PAD.encode(&public.e);
        let keys = KeySet(vec![json!({"kty": "RSA", "kid": "r1", "n": n, "e": e})]);
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "r1"}).to_string()),
            URL_SAFE_NO_PAD.encode(good_claims().to_string())
        );
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert!(verify(&token, &keys, &expected()).is_ok());
        let mut bad = sig.clone();
        bad[10] ^= 1;
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bad));
        assert_eq!(
            verify(&token, &keys, &expected()).unwrap_err(),
            TokenError::Signature
        );
    }
}
