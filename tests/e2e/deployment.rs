//! Deployment as admins run it: HTTPS with a certificate that renews without a
//! restart, client-network allow-lists, and SIGHUP (#22).

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Daemon, eventually, free_port, hup};

/// A fresh CA and a certificate it signed for `localhost` and 127.0.0.1: (CA PEM,
/// certificate PEM, key PEM).
fn certificate() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "scim-bridge test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn install(dir: &Path, cert: &str, key: &str) {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    let key_path = dir.join("key.pem");
    std::fs::write(&key_path, key).unwrap();
    std::fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
}

/// `curl` over HTTPS trusting only `ca`; the HTTP status, or `None` when the
/// connection or the certificate check failed.
fn curl_https(port: u16, ca: &Path, path: &str) -> Option<u16> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg("--cacert")
        .arg(ca)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("curl is installed");
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[test]
fn https_serves_and_a_renewed_certificate_is_picked_up_without_a_restart() {
    let tls = tempfile::tempdir().unwrap();
    let (ca1, cert1, key1) = certificate();
    install(tls.path(), &cert1, &key1);
    let ca_path = |n: &str, pem: &str| {
        let p = tls.path().join(format!("ca-{n}.pem"));
        std::fs::write(&p, pem).unwrap();
        p
    };
    let ca1 = ca_path("1", &ca1);
    let port = free_port();
    let d = Daemon::start_with_server(&format!(
        "\n[server.tls]\nlisten = \"127.0.0.1:{port}\"\ncertificate = {{ file = \"{}\" }}\nprivate_key = {{ file = \"{}\" }}\n",
        tls.path().join("cert.pem").display(),
        tls.path().join("key.pem").display()
    ));
    let pid = d.child.as_ref().unwrap().id();

    assert_eq!(curl_https(port, &ca1, "/healthz"), Some(200));
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout).trim(), "200");
    // The plain listener keeps working beside it.
    assert!(
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "--max-time", "5"])
            .arg(d.url("/healthz"))
            .status()
            .unwrap()
            .success()
    );

    // A renewal and SIGHUP: the new certificate is served by the same process.
    let (ca2, cert2, key2) = certificate();
    let ca2 = ca_path("2", &ca2);
    install(tls.path(), &cert2, &key2);
    hup(&d);
    assert!(
        eventually(Duration::from_secs(3), || curl_https(
            port, &ca2, "/healthz"
        ) == Some(200)),
        "{}",
        d.log_text()
    );
    assert_eq!(
        curl_https(port, &ca1, "/healthz"),
        None,
        "the old certificate is gone"
    );
    assert_eq!(d.child.as_ref().unwrap().id(), pid);

    // A broken renewal (a key that is not the certificate's) is refused; the working
    // certificate stays.
    let (_, _, stray_key) = certificate();
    std::fs::write(tls.path().join("key.pem"), stray_key).unwrap();
    hup(&d);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(curl_https(port, &ca2, "/healthz"), Some(200));
    assert!(
        d.log_text().contains("does not belong to the certificate"),
        "{}",
        d.log_text()
    );
    let check = d.cli(&["check-config"]);
    assert_eq!(check.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&check.stderr).contains("does not belong to the certificate"));

    // Renewed files are noticed without a SIGHUP.
    let (ca3, cert3, key3) = certificate();
    let ca3 = ca_path("3", &ca3);
    install(tls.path(), &cert3, &key3);
    assert!(
        eventually(Duration::from_secs(12), || curl_https(
            port, &ca3, "/healthz"
        ) == Some(200)),
        "{}",
        d.log_text()
    );
    assert!(d.cli(&["check-config"]).status.success());
}

/// `curl` from `source` (a loopback address) with optional `X-Forwarded-For`; the
/// status and body.
fn curl_from(
    source: &str,
    url: &str,
    token: Option<&str>,
    forwarded: Option<&str>,
) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "--max-time",
        "5",
        "--interface",
        source,
        "-w",
        "\n%{http_code}",
    ]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(f) = forwarded {
        c.args(["-H", &format!("X-Forwarded-For: {f}")]);
    }
    let out = c.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// A provider limited to its IdP's networks and an admin API limited to the firm's:
/// refused with a SCIM 403 naming the client, counted; `X-Forwarded-For` believed only
/// from the configured proxy (127.0.0.2 here), ignored from anyone else.
#[test]
fn allow_lists_refuse_other_networks_and_trust_only_configured_proxies() {
    let d = Daemon::start_full_text(
        "trusted_proxies = [\"127.0.0.2\"]\nadmin_allow = [\"198.51.100.0/24\"]\n",
        // Lands in the last [[providers]] table, okta's.
        "allow = [\"192.0.2.0/24\"]\n",
    );
    let okta = d.token("okta");
    let entra = d.token("entra");
    let users = |p: &str| d.url(&format!("/scim/v2/{p}/Users"));

    // Straight from 127.0.0.1: not in okta's list.
    let (status, body) = curl_from("127.0.0.1", &users("okta"), Some(&okta), None);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("127.0.0.1") && body.contains("okta"),
        "{body}"
    );
    assert!(
        body.contains("urn:ietf:params:scim:api:messages:2.0:Error"),
        "{body}"
    );
    // Claiming an allowed address without being the proxy changes nothing.
    let (status, _) = curl_from("127.0.0.1", &users("okta"), Some(&okta), Some("192.0.2.10"));
    assert_eq!(status, 403);
    // Through the proxy, from Okta's network: allowed.
    let (status, body) = curl_from("127.0.0.2", &users("okta"), Some(&okta), Some("192.0.2.10"));
    assert_eq!(status, 200, "{body}");
    // Through the proxy from elsewhere: refused, named.
    let (status, body) = curl_from(
        "127.0.0.2",
        &users("okta"),
        Some(&okta),
        Some("203.0.113.5"),
    );
    assert_eq!(status, 403);
    assert!(body.contains("203.0.113.5"), "{body}");
    // A provider without a list answers anyone.
    assert_eq!(
        curl_from("127.0.0.1", &users("entra"), Some(&entra), None).0,
        200
    );

    // The admin API (metrics here) only from the firm's network; health stays open.
    assert_eq!(
        curl_from("127.0.0.1", &d.url("/metrics"), None, None).0,
        403
    );
    assert_eq!(
        curl_from("127.0.0.1", &d.url("/healthz"), None, None).0,
        200
    );
    let (status, metrics) = curl_from("127.0.0.2", &d.url("/metrics"), None, Some("198.51.100.7"));
    assert_eq!(status, 200);
    assert!(
        metrics.contains("scim_bridge_network_denied_total{scope=\"okta\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("scim_bridge_network_denied_total{scope=\"admin\"} 1"),
        "{metrics}"
    );
}

/// The README's nginx example, run for real: nginx terminates TLS and passes the client
/// in `X-Forwarded-For`; the bridge, trusting only that proxy, applies the provider's
/// allow-list to the client behind it.
#[test]
#[allow(clippy::disallowed_methods)] // the test run's own switch, not the daemon's
fn behind_the_readme_nginx_example_the_allow_list_sees_the_real_client() {
    let Some(nginx) = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        assert!(
            std::env::var("SCIM_BRIDGE_REQUIRE_PEERS").is_err(),
            "nginx is not installed (apt-get install nginx-light)"
        );
        eprintln!("skipped: nginx is not installed (apt-get install nginx-light)");
        return;
    };
    let d = Daemon::start_full_text(
        "trusted_proxies = [\"127.0.0.1\"]\n",
        "allow = [\"127.0.0.3\"]\n",
    );
    let okta = d.token("okta");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (ca, cert, key) = certificate();
    install(dir, &cert, &key);
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca).unwrap();
    std::fs::create_dir(dir.join("tmp")).unwrap();
    let port = free_port();
    let temp = |kind: &str| format!("{kind}_temp_path {}/tmp;", dir.display());
    let conf = format!(
        r#"worker_processes 1;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    {client} {proxy} {fastcgi} {uwsgi} {scgi}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate     {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        location / {{
            proxy_pass http://127.0.0.1:{bridge};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            client_max_body_size 2m;
        }}
    }}
}}
"#,
        dir = dir.display(),
        client = temp("client_body"),
        proxy = temp("proxy"),
        fastcgi = temp("fastcgi"),
        uwsgi = temp("uwsgi"),
        scgi = temp("scgi"),
        bridge = d.port,
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut proxy = Command::new(nginx)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-p", &dir.display().to_string(), "-g", "daemon off;"])
        .spawn()
        .unwrap();
    let https = |source: &str| -> (u16, String) {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "5",
                "--interface",
                source,
                "-w",
                "\n%{http_code}",
            ])
            .arg("--cacert")
            .arg(&ca_path)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(["-H", &format!("Authorization: Bearer {okta}")])
            .arg(format!("https://localhost:{port}/scim/v2/okta/Users"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    };
    let ready = eventually(Duration::from_secs(5), || https("127.0.0.3").0 != 0);
    let allowed = https("127.0.0.3");
    let refused = https("127.0.0.4");
    // SIGTERM, not SIGKILL: the master then stops its worker too, which would
    // otherwise live on holding the port (and whatever descriptors it inherited).
    let _ = Command::new("kill")
        .args(["-TERM", &proxy.id().to_string()])
        .status();
    let _ = proxy.wait();
    assert!(
        ready,
        "nginx did not answer: {:?}",
        std::fs::read_to_string(dir.join("error.log"))
    );
    assert_eq!(allowed.0, 200, "{}", allowed.1);
    assert_eq!(refused.0, 403, "{}", refused.1);
    assert!(refused.1.contains("127.0.0.4"), "{}", refused.1);
}
