//! `scim-bridge healthcheck`: exit 0 only when the daemon's `/readyz` answers 200 and
//! "ready", for container HEALTHCHECKs and monitoring that read exit codes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Failure, setup};
use crate::config::Environment;

/// `healthcheck [--url URL] [--timeout 3s]`.
pub async fn run(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    url: Option<&str>,
    timeout: &str,
    env: &Environment,
) -> Result<(), Failure> {
    let timeout = crate::config::parse_duration(timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            Failure::usage(format!(
                "--timeout {timeout:?}: expected a duration like \"3s\" or \"500ms\""
            ))
        })?;
    let url = match url {
        Some(u) => given_url(u)?,
        // The configured address, so the check follows the config the daemon runs with.
        None => readyz_url(
            setup::load_config(config, data_dir, None, env)?
                .config
                .server
                .listen,
        )?,
    };
    let client = crate::oauth::build_client(timeout).map_err(Failure::runtime)?;
    let answer = client.get(url.clone()).send().await.map_err(|e| {
        Failure::daemon(format!(
            "not reachable: {url}: {}",
            crate::oauth::describe_http_error(&e)
        ))
    })?;
    let code = answer.status().as_u16();
    let body: Option<Value> = answer.json().await.ok();
    let status = body
        .as_ref()
        .and_then(|b| b.get("status"))
        .and_then(Value::as_str);
    match (code, status) {
        (200, Some("ready")) => {
            println!("ready: {url}");
            Ok(())
        }
        (code, status) => Err(Failure::daemon(format!(
            "not ready: {url} answered HTTP {code}{}",
            status
                .map(|s| format!(", status \"{s}\""))
                .unwrap_or_default()
        ))),
    }
}

/// `/readyz` on the listen address; an unspecified address (0.0.0.0, ::) is reached on
/// the loopback of the same family, where a daemon listening everywhere also listens.
fn readyz_url(listen: SocketAddr) -> Result<url::Url, Failure> {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let text = format!("http://{}/readyz", SocketAddr::new(ip, listen.port()));
    url::Url::parse(&text).map_err(|e| Failure::runtime(format!("{text}: {e}")))
}

fn given_url(text: &str) -> Result<url::Url, Failure> {
    let bad = |why: &str| Failure::usage(format!("--url {text:?}: {why}"));
    let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("expected an http:// or https:// URL"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_addresses_are_checked_on_the_loopback() {
        let url = |a: &str| readyz_url(a.parse().unwrap()).unwrap().to_string();
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080/readyz");
        assert_eq!(url("[::]:9000"), "http://[::1]:9000/readyz");
        assert_eq!(url("10.1.2.3:8080"), "http://10.1.2.3:8080/readyz");
    }
}
