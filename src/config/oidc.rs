//! `[console.oidc]`: sign-in to the console through the firm's OpenID Connect
//! provider (Entra ID, Okta, any provider with discovery), and who may sign in.

use std::path::Path;

use super::reader::{Ctx, Field};
use super::roles::strings;
use super::secret::SecretRef;
use super::walk::read_secret_ref;

/// Where the provider sends the browser back to, under the console's prefix.
pub const CALLBACK_PATH: &str = "/ui/signin/oidc/callback";

/// `[console.oidc]`.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its ID tokens name it (`iss`); its
    /// discovery document is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Never inline: a file, credential, environment variable or vault entry.
    pub client_secret: SecretRef,
    /// Registered at the provider; `None`: `{server.public_url}/ui/signin/oidc/callback`.
    pub redirect_url: Option<String>,
    /// Requested scopes; always includes `openid`.
    pub scopes: Vec<String>,
    /// Shown on the sign-in button: "Sign in with {display_name}".
    pub display_name: String,
    /// The ID token claim that lists the person's groups.
    pub groups_claim: String,
    pub admin_groups: Vec<String>,
    pub admin_subjects: Vec<String>,
    pub viewer_groups: Vec<String>,
    pub viewer_subjects: Vec<String>,
}

/// An issuer or redirect URL: https, or http to this machine only (a test or a
/// provider on the same host); an issuer over plain HTTP across a network would let
/// anyone on the path hand the daemon keys of their own and sign in as anyone.
fn url(s: &str) -> Result<String, String> {
    let u =
        url::Url::parse(s).map_err(|e| format!("expected an https:// URL, found {s:?}: {e}"))?;
    let local = matches!(
        u.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    match u.scheme() {
        "https" => {}
        "http" if local => {}
        _ => {
            return Err(format!(
                "expected an https:// URL (http:// only to localhost), found {s:?}"
            ));
        }
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "expected a URL without a query or fragment, found {s:?}"
        ));
    }
    Ok(s.to_owned())
}

pub(super) fn read_oidc(
    ctx: &mut Ctx,
    f: &Field<'_>,
    base_dir: &Path,
    own_listener: bool,
) -> Option<OidcConfig> {
    let mut t = ctx.table(f)?;
    let issuer = t.require(
        ctx,
        "issuer",
        "expected the provider's issuer URL, e.g. \"https://login.microsoftonline.com/{tenant-id}/v2.0\"",
    );
    let client_id = t.require(ctx, "client_id", "expected the application (client) id");
    let client_secret = t.require(
        ctx,
        "client_secret",
        "expected a secret reference like { vault = \"console.oidc\" }",
    );
    let redirect_url = t.get("redirect_url");
    let scopes = t.get("scopes");
    let display_name = t.get("display_name");
    let groups_claim = t.get("groups_claim");
    let admin_groups = t.get("admin_groups");
    let admin_subjects = t.get("admin_subjects");
    let viewer_groups = t.get("viewer_groups");
    let viewer_subjects = t.get("viewer_subjects");
    t.finish(ctx);

    let issuer = issuer.and_then(|f| ctx.parse(&f, "an https:// issuer URL", url));
    let client_id = client_id.and_then(|f| ctx.non_empty_string(&f));
    let client_secret = client_secret.and_then(|f| read_secret_ref(ctx, &f, base_dir));
    let redirect_url = match redirect_url {
        Some(f) => {
            let u = ctx.parse(&f, "the https:// URL of the console's callback", url);
            match u {
                Some(u) if !u.trim_end_matches('/').ends_with(CALLBACK_PATH) => {
                    ctx.error(
                        f.loc(),
                        &f.path,
                        format!("expected a URL ending in {CALLBACK_PATH} (where the console takes the provider's answer), found {u:?}"),
                    );
                    None
                }
                u => u.map(|u| u.trim_end_matches('/').to_owned()),
            }
        }
        None if own_listener => {
            ctx.missing(
                f.loc(),
                &format!("{}.redirect_url", f.path),
                format!("required when the console has its own listener (console.listen): the URL admins' browsers reach the console at, ending in {CALLBACK_PATH}"),
            );
            None
        }
        None => None,
    };
    let mut scopes = match scopes {
        Some(f) => strings(
            ctx,
            &f,
            "an array of scopes like [\"openid\", \"profile\", \"email\"]",
        ),
        None => vec!["openid".into(), "profile".into(), "email".into()],
    };
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let display_name = display_name
        .and_then(|f| ctx.non_empty_string(&f))
        .unwrap_or_else(|| "your identity provider".into());
    let groups_claim = groups_claim
        .and_then(|f| ctx.non_empty_string(&f))
        .unwrap_or_else(|| "groups".into());
    let mut list =
        |f: Option<Field<'_>>, what: &str| f.map(|f| strings(ctx, &f, what)).unwrap_or_default();
    let admin_groups = list(admin_groups, "an array of group names or ids");
    let admin_subjects = list(admin_subjects, "an array of subjects (the ID token's sub)");
    let viewer_groups = list(viewer_groups, "an array of group names or ids");
    let viewer_subjects = list(viewer_subjects, "an array of subjects (the ID token's sub)");
    if [
        &admin_groups,
        &admin_subjects,
        &viewer_groups,
        &viewer_subjects,
    ]
    .iter()
    .all(|l| l.is_empty())
    {
        ctx.error(
            f.loc(),
            &f.path,
            "nobody may sign in: set admin_groups or admin_subjects (and viewer_groups or viewer_subjects for read-only access)",
        );
    }
    Some(OidcConfig {
        issuer: issuer?,
        client_id: client_id?,
        client_secret: client_secret?,
        redirect_url,
        scopes,
        display_name,
        groups_claim,
        admin_groups,
        admin_subjects,
        viewer_groups,
        viewer_subjects,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Environment, SecretRef, load};

    fn load_text(text: &str) -> Result<super::super::Loaded, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scim-bridge.toml");
        std::fs::write(&path, text).unwrap();
        load(&path, &Environment::new()).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
[console]
enabled = true
[console.oidc]
issuer = "https://login.microsoftonline.com/tenant/v2.0"
client_id = "app"
client_secret = { vault = "console.oidc" }
admin_groups = ["g-admins"]
"#;

    #[test]
    fn the_section_reads_with_defaults_and_names_its_secret() {
        let cfg = load_text(GOOD).unwrap().config;
        let o = cfg.console.oidc.clone().unwrap();
        assert_eq!(o.scopes, ["openid", "profile", "email"]);
        assert_eq!((o.groups_claim.as_str(), o.redirect_url), ("groups", None));
        assert_eq!(o.display_name, "your identity provider");
        assert!(
            cfg.secret_refs()
                .iter()
                .any(|(k, r)| k == "console.oidc.client_secret"
                    && **r == SecretRef::Vault("console.oidc".into()))
        );
        let scopes = GOOD.replace("admin_groups", "scopes = [\"email\"]\nadmin_groups");
        let o = load_text(&scopes).unwrap().config.console.oidc.unwrap();
        assert_eq!(o.scopes, ["openid", "email"]);
    }

    #[test]
    fn unsafe_or_useless_settings_are_refused() {
        for (from, to, says) in [
            (
                "client_secret = { vault = \"console.oidc\" }",
                "client_secret = \"hunter2-secret\"",
                "secrets are never taken inline",
            ),
            (
                "https://login.microsoftonline.com/tenant/v2.0",
                "http://idp.example.com",
                "http:// only to localhost",
            ),
            (
                "admin_groups = [\"g-admins\"]",
                "redirect_url = \"https://bridge.example.com/elsewhere\"\nadmin_groups = [\"g\"]",
                "ending in /ui/signin/oidc/callback",
            ),
            ("admin_groups = [\"g-admins\"]", "", "nobody may sign in"),
            (
                "enabled = true",
                "enabled = true\nlisten = \"127.0.0.1:9999\"",
                "redirect_url",
            ),
        ] {
            let text = GOOD.replace(from, to);
            let err = load_text(&text).unwrap_err();
            assert!(err.contains(says), "{says:?} not in {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}
