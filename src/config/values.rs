//! Parsers for individual setting values. Each returns the full error
//! message, naming what was expected and what was found.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::reader::quote;
use super::schema::DatabaseUrl;

pub(super) const LISTEN_EXPECTED: &str = "a socket address like \"127.0.0.1:8080\"";

pub(super) fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!(
            "expected a socket address like \"127.0.0.1:8080\" or \"[::1]:8080\" (an IP address and a port; host names are not resolved), found {}",
            quote(s)
        )
    })
}

pub(super) const PUBLIC_URL_EXPECTED: &str = "a URL like \"https://scim.example.com\"";

/// Returns the URL without trailing slashes, since resource locations are
/// built by appending `/Users/{id}`.
pub(super) fn public_url(s: &str) -> Result<String, String> {
    let fail = |why: &str| {
        format!(
            "expected an http:// or https:// URL like \"https://scim.example.com\"{why}, found {}",
            quote(s)
        )
    };
    let lower = s.to_ascii_lowercase();
    let scheme_len = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        return Err(fail(""));
    };
    let rest = s.get(scheme_len..).unwrap_or("");
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err(fail(" with a host name"));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(fail(" without spaces"));
    }
    if s.contains(['?', '#']) {
        return Err(fail(" without a query or fragment"));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

pub(super) const BYTE_SIZE_EXPECTED: &str = "a size like 1048576, \"512KiB\" or \"1MiB\"";

pub(super) fn byte_size(s: &str) -> Result<u64, String> {
    let fail = || {
        format!(
            "expected {BYTE_SIZE_EXPECTED} (units B, KiB, MiB, GiB, KB, MB, GB), found {}",
            quote(s)
        )
    };
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: u64 = number.parse().map_err(|_| fail())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(fail()),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size {} is too large", quote(s)))
}

pub(super) const DURATION_EXPECTED: &str =
    "a duration like \"30s\", \"500ms\", \"2m\", \"1h\" or \"90d\"";

pub fn duration(s: &str) -> Result<Duration, String> {
    let fail = || format!("expected {DURATION_EXPECTED}, found {}", quote(s));
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: u64 = number.parse().map_err(|_| fail())?;
    let too_long = || format!("duration {} is too long", quote(s));
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "m" => number
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(too_long),
        "h" => number
            .checked_mul(3600)
            .map(Duration::from_secs)
            .ok_or_else(too_long),
        "d" => number
            .checked_mul(86_400)
            .map(Duration::from_secs)
            .ok_or_else(too_long),
        _ => Err(fail()),
    }
}

pub(super) const LOG_LEVEL_EXPECTED: &str =
    "a log filter like \"info\" or \"info,scim_bridge=debug\"";

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Accepts the subset of `tracing_subscriber::EnvFilter` syntax that matters
/// here: comma-separated `level` or `target=level`. A bare target (which
/// EnvFilter reads as "everything for that target") is refused, because a
/// misspelt level such as `inof` would otherwise silently become a target.
pub(super) fn log_level(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!(
            "expected {LOG_LEVEL_EXPECTED}, found an empty string"
        ));
    }
    for directive in t.split(',') {
        let directive = directive.trim();
        let (target, level) = match directive.rsplit_once('=') {
            Some((target, level)) => (Some(target.trim()), level.trim()),
            None => (None, directive),
        };
        if let Some(target) = target {
            let ok = !target.is_empty()
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'));
            if !ok {
                return Err(format!(
                    "expected {LOG_LEVEL_EXPECTED}; the target in {} must be a module path like scim_bridge::server",
                    quote(directive)
                ));
            }
        }
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            let context = if directive == t {
                String::new()
            } else {
                format!(" in {}", quote(t))
            };
            let hint = super::reader::suggest(level, &LEVELS)
                .map(|l| format!(" (did you mean \"{l}\"?)"))
                .unwrap_or_default();
            return Err(format!(
                "expected {LOG_LEVEL_EXPECTED}; {}{context} is not a level (one of trace, debug, info, warn, error, off){hint}",
                quote(level),
            ));
        }
    }
    Ok(t.to_owned())
}

pub(super) const DATABASE_URL_EXPECTED: &str =
    "a URL like \"sqlite://scim-bridge.db\" or \"postgres://user@host/db\"";

pub(super) fn database_url(s: &str) -> Result<DatabaseUrl, String> {
    if let Some(path) = s.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(
                "expected a database file after \"sqlite://\", like \"sqlite://scim-bridge.db\""
                    .to_owned(),
            );
        }
        return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
    }
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            if rest.is_empty() {
                return Err(format!("expected a host after \"{scheme}\""));
            }
            return Ok(DatabaseUrl::Postgres(s.to_owned()));
        }
    }
    Err(format!(
        "expected {DATABASE_URL_EXPECTED} (schemes sqlite://, postgres://, postgresql://), found {}",
        quote(&redact_url(s))
    ))
}

/// Hides the password of `scheme://user:password@host/...` and any
/// `password=` query parameter. When the URL is ambiguous (an unescaped `/` in
/// the password) it errs towards hiding too much.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, _) = rest.split_at(authority_end);
    let at = authority.rfind('@').or_else(|| rest.rfind('@'));
    let (userinfo, after) = match at {
        Some(i) => {
            let (userinfo, after) = rest.split_at(i);
            let userinfo = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@"),
                None => format!("{userinfo}@"),
            };
            (userinfo, after.get(1..).unwrap_or(""))
        }
        None => (String::new(), rest),
    };
    format!("{scheme}://{userinfo}{}", redact_query(after))
}

fn redact_query(s: &str) -> String {
    let Some((head, query)) = s.split_once('?') else {
        return s.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let query: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => param.to_owned(),
        })
        .collect();
    let mut out = format!("{head}?{}", query.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

pub(super) const PROVIDER_NAME_EXPECTED: &str = "a provider name like \"entra\"";

/// Provider names end up in URL paths and metric labels, hence the narrow
/// alphabet.
pub(super) fn provider_name(s: &str) -> Result<String, String> {
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && s.len() <= 63;
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "expected a provider name of 1 to 63 characters from a-z, 0-9, \"_\" and \"-\", starting with a letter or digit, found {}",
            quote(s)
        ))
    }
}

pub(super) const ATTRIBUTE_NAME_EXPECTED: &str = "an attribute name like \"costCenter\"";

/// RFC 7643 section 2.1: `ATTRNAME = ALPHA *(nameChar)`,
/// `nameChar = "-" / "_" / DIGIT / ALPHA`.
pub(super) fn attribute_name(s: &str) -> Result<String, String> {
    let mut chars = s.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "expected an attribute name that starts with a letter and continues with letters, digits, \"-\" or \"_\" (RFC 7643 ATTRNAME), found {}",
            quote(s)
        ))
    }
}

pub(super) const SCHEMA_ID_EXPECTED: &str =
    "a schema URN like \"urn:ietf:params:scim:schemas:extension:acme:2.0:User\"";

/// The core schemas, which `[[providers.schemas]]` may add attributes to (vendor guides
/// such as DiliTrust's map `urn:ietf:params:scim:schemas:core:2.0:User:roleId`).
pub(super) const CORE_SCHEMAS: [(&str, crate::scim::ResourceKind); 2] = [
    (
        crate::scim::schema::USER_SCHEMA,
        crate::scim::ResourceKind::User,
    ),
    (
        crate::scim::schema::GROUP_SCHEMA,
        crate::scim::ResourceKind::Group,
    ),
];

/// The resource kind whose core schema `id` names, if it names one.
pub(super) fn core_schema(id: &str) -> Option<crate::scim::ResourceKind> {
    CORE_SCHEMAS
        .iter()
        .find(|(urn, _)| urn.eq_ignore_ascii_case(id))
        .map(|(_, kind)| *kind)
}

const ENTERPRISE_SCHEMA: &str = crate::scim::schema::ENTERPRISE_USER_SCHEMA;

pub(super) fn schema_id(s: &str) -> Result<String, String> {
    let well_formed = s
        .strip_prefix("urn:")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(nid, nss)| !nid.is_empty() && !nss.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        return Err(format!("expected {SCHEMA_ID_EXPECTED}, found {}", quote(s)));
    }
    // Schema URIs are compared case-insensitively by SCIM clients.
    if ENTERPRISE_SCHEMA.eq_ignore_ascii_case(s) {
        return Err(format!(
            "{} is the built-in enterprise extension, whose attributes RFC 7643 fixes; a custom schema needs its own URN, e.g. \"urn:ietf:params:scim:schemas:extension:<vendor>:2.0:User\" (or the core User or Group schema's URN, to add attributes to it)",
            quote(s)
        ));
    }
    // The core schemas are spelled as RFC 7643 spells them, as IdPs send them.
    Ok(core_schema(s)
        .map_or(s, |kind| kind.core_schema())
        .to_owned())
}

/// systemd credential names are file names inside `$CREDENTIALS_DIRECTORY`.
pub(super) fn credential_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\0') {
        return Err(format!(
            "expected a systemd credential name like \"vault-passphrase\" (a file name: no \"/\", not \".\" or \"..\"), found {}",
            quote(s)
        ));
    }
    Ok(s.to_owned())
}

pub(super) fn env_name(s: &str) -> Result<String, String> {
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!(
            "expected an environment variable name like \"SCIM_BRIDGE_VAULT_PASSPHRASE\", found {}",
            quote(s)
        ));
    }
    if s.len() >= super::tree::ENV_PREFIX.len()
        && s.get(..super::tree::ENV_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(super::tree::ENV_PREFIX))
    {
        return Err(format!(
            "{} starts with {}, which is reserved for configuration overrides; pick another name",
            quote(s),
            super::tree::ENV_PREFIX
        ));
    }
    Ok(s.to_owned())
}

/// A duration as the config writes it: `30d`, `12h`, `90s`.
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s >= 86_400 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s >= 3_600 && s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ if s >= 60 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}
