//! `scim2-server` (PyPI), a real, independent SCIM server that outbound SCIM targets
//! push to.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::free_port;

/// scim2-server from the peer venv; `None` (skip) unless SCIM_BRIDGE_REQUIRE_PEERS is set,
/// as `scripts/test.sh` does, which makes a missing server a failure.
#[allow(clippy::disallowed_methods)] // the test run's own switch, not the daemon's
pub fn scim2_server() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/peer-venv/bin/scim2-server");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("SCIM_BRIDGE_REQUIRE_PEERS").is_none(),
        "{} missing: run scripts/peer/install.sh",
        path.display()
    );
    eprintln!(
        "skipped: {} missing (run scripts/peer/install.sh)",
        path.display()
    );
    None
}

pub struct Peer {
    child: Child,
    pub base: String,
    /// Files the server was started with (its service provider configuration).
    _files: Option<tempfile::TempDir>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_peer(bin: &PathBuf) -> Peer {
    start_peer_with(bin, &[], None)
}

/// scim2-server announcing no PATCH, as apps that take only whole-resource PUTs do:
/// every change reaches it as a replacement.
pub fn start_put_only_peer(bin: &PathBuf) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("service-provider-config.json");
    let spc = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": false},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": 1000},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [],
    });
    std::fs::write(&config, spc.to_string()).unwrap();
    let arg = config.display().to_string();
    start_peer_with(bin, &["--service-provider-config", &arg], Some(dir))
}

/// scim2-server with more arguments (e.g. `--schema FILE`); `files` lives as long as
/// the peer.
pub fn start_peer_with(bin: &PathBuf, args: &[&str], files: Option<tempfile::TempDir>) -> Peer {
    let port = free_port();
    let child = Command::new(bin)
        .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "scim2-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Peer {
        child,
        base: format!("http://127.0.0.1:{port}/v2"),
        _files: files,
    }
}

pub async fn list(base: &str, what: &str) -> Vec<Value> {
    let v: Value = super::get(format!("{base}/{what}?count=1000"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["Resources"].as_array().cloned().unwrap_or_default()
}

/// A `--schema` file for scim2-server: its default RFC 7643 schemas with `name` added
/// to the core User schema, as apps such as DiliTrust CLM publish `roleId`.
pub fn schemas_with_core_user_attribute(
    bin: &std::path::Path,
    name: &str,
) -> tempfile::NamedTempFile {
    let lib = bin
        .parent()
        .and_then(|b| b.parent())
        .map(|venv| venv.join("lib"))
        .unwrap();
    let defaults = std::fs::read_dir(&lib)
        .unwrap()
        .filter_map(Result::ok)
        .map(|python| {
            python
                .path()
                .join("site-packages/scim2_server/resources/default-schemas.json")
        })
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no default-schemas.json under {}", lib.display()));
    let mut schemas: Value =
        serde_json::from_str(&std::fs::read_to_string(defaults).unwrap()).unwrap();
    let user = schemas
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["id"] == "urn:ietf:params:scim:schemas:core:2.0:User")
        .unwrap();
    user["attributes"].as_array_mut().unwrap().push(serde_json::json!({
        "name": name, "type": "string", "multiValued": false, "required": false,
        "caseExact": true, "mutability": "readWrite", "returned": "default", "uniqueness": "none",
        "description": "An attribute the app adds to its core User schema."
    }));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), schemas.to_string()).unwrap();
    file
}
