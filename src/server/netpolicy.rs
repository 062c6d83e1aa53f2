//! Which client networks may call what: each provider's SCIM base may be limited to
//! its IdP's published ranges, and the admin API (tokens of scope `admin`, `/metrics`)
//! to the firm's own networks. Health checks and the account-link callback, which
//! people's browsers reach, stay open.
//!
//! The client is the socket's peer, unless that peer is a configured reverse proxy:
//! then `X-Forwarded-For` is read from the right, past every trusted proxy, and the
//! first address that is not one is the client. The header from anyone else is
//! ignored, so a client cannot claim an allowed address by sending it.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::conn::PeerAddr;
use crate::config::{IpNetwork, allowed};
use crate::scim::ScimError;

/// The allow-lists, from the configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkPolicy {
    /// Provider name → the networks its SCIM base answers; absent: any.
    pub providers: HashMap<String, Vec<IpNetwork>>,
    /// Networks the admin API answers; `None`: any.
    pub admin: Option<Vec<IpNetwork>>,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNetwork>,
}

/// What part of the daemon a path belongs to, for its allow-list.
enum Scope<'a> {
    Provider(&'a str),
    Admin,
    Open,
}

fn scope_of(path: &str) -> Scope<'_> {
    if let Some(rest) = path.strip_prefix("/scim/v2/") {
        return Scope::Provider(rest.split('/').next().unwrap_or_default());
    }
    if path == "/healthz" || path == "/readyz" {
        return Scope::Open;
    }
    // `/link/{target}/callback` is where a person's browser comes back from the
    // target's consent page.
    if path.starts_with("/link/") && path.ends_with("/callback") {
        return Scope::Open;
    }
    Scope::Admin
}

impl NetworkPolicy {
    /// Whether any list is set (otherwise the middleware is a no-op).
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty() && self.admin.is_none()
    }

    /// The client's address: the peer, or what trusted proxies say it is. `None` when
    /// a trusted proxy sent an address that does not parse.
    pub fn client(&self, peer: IpAddr, forwarded: Option<&str>) -> Option<IpAddr> {
        if !allowed(&self.trusted_proxies, peer) {
            return Some(peer);
        }
        let Some(header) = forwarded else {
            return Some(peer);
        };
        let mut client = peer;
        for hop in header.rsplit(',') {
            let ip: IpAddr = hop.trim().parse().ok()?;
            client = ip;
            if !allowed(&self.trusted_proxies, ip) {
                break;
            }
        }
        Some(client)
    }

    /// The list that applies to `path` and its name for messages and metrics.
    fn list_for<'a>(&'a self, path: &'a str) -> Option<(&'a [IpNetwork], String)> {
        match scope_of(path) {
            Scope::Provider(name) => self
                .providers
                .get(name)
                .map(|l| (l.as_slice(), name.to_owned())),
            Scope::Admin => self.admin.as_deref().map(|l| (l, "admin".to_owned())),
            Scope::Open => None,
        }
    }
}

/// The SCIM 403 for a request from a network the path's allow-list does not hold,
/// counted in `scim_bridge_network_denied_total`; `None` lets it through. Called by
/// the request layer (`server::observe`) rather than being a layer of its own: each
/// `from_fn` layer on the router is another boxed service that axum clones, with
/// everything beneath it, on every request.
pub fn refusal(state: &AppState, req: &Request) -> Option<Response> {
    let policy = state.network.get();
    if policy.is_empty() {
        return None;
    }
    let (list, scope) = policy.list_for(req.uri().path())?;
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let client = peer.and_then(|p| policy.client(p, forwarded));
    if client.is_some_and(|ip| allowed(list, ip)) {
        return None;
    }
    state.metrics.network_denied(&scope);
    let who = client.map_or_else(
        || "an unreadable X-Forwarded-For".to_owned(),
        |ip| ip.to_string(),
    );
    let key = if scope == "admin" {
        "server.admin_allow".to_owned()
    } else {
        format!("the allow list of provider {scope:?}")
    };
    tracing::info!(client = %who, scope = %scope, "request refused: client network not allowed");
    Some(
        ScimError::new(
            403,
            None,
            format!("requests from {who} are not allowed here (see {key})"),
        )
        .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::NetworkPolicy;
    use crate::config::IpNetwork;

    fn policy() -> NetworkPolicy {
        NetworkPolicy {
            trusted_proxies: vec![
                IpNetwork::parse("10.0.0.0/8").unwrap(),
                IpNetwork::parse("127.0.0.1").unwrap(),
            ],
            ..NetworkPolicy::default()
        }
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let p = policy();
        let ip = |s: &str| s.parse().unwrap();
        // Not a proxy: its own address, whatever it claims.
        assert_eq!(
            p.client(ip("203.0.113.9"), Some("20.1.1.1")),
            Some(ip("203.0.113.9"))
        );
        // Through two trusted proxies: the first untrusted address from the right.
        assert_eq!(
            p.client(ip("127.0.0.1"), Some("6.6.6.6, 20.1.1.1, 10.1.1.1")),
            Some(ip("20.1.1.1"))
        );
        // A proxy without the header: the proxy is the client.
        assert_eq!(p.client(ip("10.2.2.2"), None), Some(ip("10.2.2.2")));
        // Garbage from a proxy: unknown, so refused where a list applies.
        assert_eq!(p.client(ip("10.2.2.2"), Some("unknown")), None);
    }
}
