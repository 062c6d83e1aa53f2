//! SCIM and admin API tokens: `sb_<id>_<secret>`. Only SHA-256 of the secret is
//! stored; the id finds the row, the secret is compared in constant time.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::entropy::Entropy;
use crate::store::ApiToken;

mod cache;
pub use cache::TokenCache;

/// What a token opens. Stored as its [`as_str`](TokenScope::as_str) spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    /// One provider's SCIM base.
    Scim,
    /// The admin API (workspace resolution, account links), and the console with
    /// its actions (retry, drop, approve, reject).
    Admin,
    /// The console's read pages only: for people who watch provisioning and must not
    /// steer it (help desk, auditors). Opens no API.
    Viewer,
}

impl TokenScope {
    /// The stored and command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Scim => "scim",
            TokenScope::Admin => "admin",
            TokenScope::Viewer => "viewer",
        }
    }
}

impl std::fmt::Display for TokenScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope spelling that is neither `scim` nor `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token scope {0:?}: expected scim, admin or viewer")]
pub struct UnknownScope(pub String);

impl std::str::FromStr for TokenScope {
    type Err = UnknownScope;

    /// Exact spellings only, as they were compared when scopes were strings: a stored
    /// row with any other spelling opens nothing.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "scim" => Ok(TokenScope::Scim),
            "admin" => Ok(TokenScope::Admin),
            "viewer" => Ok(TokenScope::Viewer),
            other => Err(UnknownScope(other.to_owned())),
        }
    }
}

const PREFIX: &str = "sb_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// A newly minted token: the string to hand out once, and the row to store.
pub struct NewToken {
    /// The full token; shown once, never stored.
    pub plaintext: zeroize::Zeroizing<String>,
    /// What the store keeps.
    pub record: ApiToken,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Mints a token for `provider` (SCIM) or for the admin API (`provider = None`).
pub fn mint(
    provider: Option<&str>,
    scope: TokenScope,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    entropy: &dyn Entropy,
) -> NewToken {
    use base64::Engine;
    let mut id = [0u8; ID_BYTES];
    entropy.fill(&mut id);
    let mut secret = zeroize::Zeroizing::new([0u8; SECRET_BYTES]);
    entropy.fill(secret.as_mut());
    let id = hex::encode(id);
    let secret = zeroize::Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_ref()),
    );
    NewToken {
        plaintext: zeroize::Zeroizing::new(format!("{PREFIX}{id}_{}", secret.as_str())),
        record: ApiToken {
            id,
            provider: provider.map(str::to_owned),
            scope: scope.as_str().to_owned(),
            secret_hash: hash(&secret),
            created: now,
            expires,
            last_used: None,
            revoked: None,
        },
    }
}

/// Splits a presented token into its id and secret; `None` when malformed.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == ID_BYTES * 2 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && !secret.is_empty() && secret.len() <= 128).then_some((id, secret))
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Why a token was refused. Deliberately coarse in what reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a token of ours, unknown id, or wrong secret.
    Invalid,
    /// Revoked by an admin.
    Revoked,
    /// Past its expiry.
    Expired,
    /// Valid, but for another provider or scope.
    WrongAudience,
}

impl Refusal {
    /// Message for the 401 body; does not say which part of a token was wrong.
    pub fn detail(self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid bearer token",
            Refusal::Revoked => "the bearer token has been revoked",
            Refusal::Expired => "the bearer token has expired",
            Refusal::WrongAudience => "the bearer token is not valid for this endpoint",
        }
    }
}

/// Checks `secret` against the stored `record` for `provider` and `scope` at `now`.
pub fn verify(
    record: &ApiToken,
    secret: &str,
    provider: Option<&str>,
    scope: TokenScope,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if !bool::from(hash(secret).ct_eq(&record.secret_hash)) {
        return Err(Refusal::Invalid);
    }
    if record.revoked.is_some() {
        return Err(Refusal::Revoked);
    }
    if record.expires.is_some_and(|e| e <= now) {
        return Err(Refusal::Expired);
    }
    let stored = record.scope.parse::<TokenScope>().ok();
    if stored != Some(scope)
        || (scope == TokenScope::Scim && record.provider.as_deref() != provider)
    {
        return Err(Refusal::WrongAudience);
    }
    Ok(())
}

/// Parses `5y`, `90d`, `12h`, `30m` into a duration for `--expires`.
pub fn parse_lifetime(s: &str) -> Option<chrono::Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    match unit {
        "y" => chrono::Duration::try_days(n.checked_mul(365)?),
        "d" => chrono::Duration::try_days(n),
        "h" => chrono::Duration::try_hours(n),
        "m" => chrono::Duration::try_minutes(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[test]
    fn mint_parse_verify() {
        let now = chrono::TimeZone::timestamp_opt(&Utc, 1_700_000_000, 0).unwrap();
        let t = mint(
            Some("entra"),
            TokenScope::Scim,
            None,
            now,
            &SeededEntropy::new(1),
        );
        let (id, secret) = parse(&t.plaintext).unwrap();
        assert_eq!(id, t.record.id);
        assert_eq!(
            verify(&t.record, secret, Some("entra"), TokenScope::Scim, now),
            Ok(())
        );
        assert_eq!(
            verify(&t.record, "nope", Some("entra"), TokenScope::Scim, now),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            verify(&t.record, secret, Some("okta"), TokenScope::Scim, now),
            Err(Refusal::WrongAudience)
        );
        assert_eq!(
            verify(&t.record, secret, None, TokenScope::Admin, now),
            Err(Refusal::WrongAudience)
        );
        let mut expired = t.record.clone();
        expired.expires = Some(now);
        assert_eq!(
            verify(&expired, secret, Some("entra"), TokenScope::Scim, now),
            Err(Refusal::Expired)
        );
        assert!(!format!("{t:?}").contains(secret));
        assert!(parse("sb_zz_x").is_none());
        assert!(parse("Bearer x").is_none());
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("5y"), chrono::Duration::try_days(1825));
        assert_eq!(parse_lifetime("12h"), chrono::Duration::try_hours(12));
        assert_eq!(parse_lifetime("0d"), None);
        assert_eq!(parse_lifetime("5w"), None);
        assert_eq!(parse_lifetime("y"), None);
    }
}
