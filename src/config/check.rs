//! Checks for `check-config` that look at the files secrets live in,
//! without reading the secrets themselves.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::schema::{Config, DatabaseUrl};
use super::secret::{Environment, SecretError, SecretRef, credential_path};
use super::values::redact_url;

/// Returns `(warnings, errors)` about every secret reference: files that are
/// missing, unreadable or empty are errors; files other users can read or
/// write are warnings, as are secrets taken from the environment.
pub fn check_secret_files(cfg: &Config, env: &Environment) -> (Vec<String>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for (key, secret) in cfg.secret_refs() {
        match secret {
            SecretRef::File(path) => check_file(&key, path, &mut warnings, &mut errors),
            SecretRef::Credential(name) => match credential_path(name, env) {
                Ok(path) => match fs::metadata(&path) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        let error = SecretError::CredentialMissing {
                            name: name.clone(),
                            path,
                        };
                        errors.push(format!("{key}: {error}"));
                    }
                    _ => check_file(&key, &path, &mut warnings, &mut errors),
                },
                Err(error) => errors.push(format!("{key}: {error}")),
            },
            SecretRef::Env(name) => match env.get(name) {
                None => errors.push(format!("{key}: environment variable {name} is not set")),
                Some("") => errors.push(format!("{key}: environment variable {name} is empty")),
                Some(_) => warnings.push(format!(
                    "{key}: the secret comes from environment variable {name}, which is weaker than a file: any process of the same user can read it from /proc/<pid>/environ and child processes inherit it; prefer {{ file = ... }} or {{ credential = ... }}"
                )),
            },
            // Checked when the vault is opened; nothing on disk to look at.
            SecretRef::Vault(_) => {}
        }
    }
    if let (Some(source), DatabaseUrl::Postgres(url)) = (&cfg.source, &cfg.database.url)
        && redact_url(url) != *url
        && let Ok(meta) = fs::metadata(source)
    {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warnings.push(format!(
                "database.url: {} holds a database password and has mode {mode:04o}, so other users can read it; run `chmod 600 {}`",
                source.display(),
                source.display()
            ));
        }
    }
    (warnings, errors)
}

fn check_file(key: &str, path: &Path, warnings: &mut Vec<String>, errors: &mut Vec<String>) {
    let shown = path.display();
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            errors.push(format!("{key}: secret file {shown} does not exist"));
            return;
        }
        Err(e) => {
            errors.push(format!("{key}: cannot inspect secret file {shown}: {e}"));
            return;
        }
    };
    if !meta.is_file() {
        errors.push(format!("{key}: secret file {shown} is not a regular file"));
        return;
    }
    // Opening is the only reliable readability test: ACLs, root and
    // capabilities all defeat reasoning from the mode bits.
    if let Err(e) = File::open(path) {
        errors.push(format!("{key}: secret file {shown} cannot be read: {e}"));
        return;
    }
    if meta.len() == 0 {
        errors.push(format!("{key}: secret file {shown} is empty"));
        return;
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        warnings.push(format!(
            "{key}: secret file {shown} has mode {mode:04o}, so group or other users can read or change it; run `chmod 600 {shown}`"
        ));
    }
}
