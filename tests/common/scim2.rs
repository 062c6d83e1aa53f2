//! `scim2-server` (PyPI), a real, independent SCIM server that outbound SCIM targets
//! push to.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::free_port;

/// scim2-server from the peer venv; `None` (skip) unless SCIM_BRIDGE_REQUIRE_PEERS is set,
/// as `scripts/test.sh` does, which makes a missing server a failure.
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
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_peer(bin: &PathBuf) -> Peer {
    let port = free_port();
    let child = Command::new(bin)
        .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
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
