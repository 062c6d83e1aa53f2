//! Secret references and their resolution.
//!
//! The config file only ever names where a secret lives, so the file itself
//! can be world-readable, committed, or pasted into a bug report.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

/// Where a secret comes from: `{ file = "..." }`, `{ credential = "..." }`,
/// `{ env = "..." }` or `{ vault = "..." }` in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// A file holding the secret; relative paths were resolved against the
    /// config file's directory at load time.
    File(PathBuf),
    /// A systemd credential name, read from `$CREDENTIALS_DIRECTORY/<name>`.
    Credential(String),
    /// An environment variable name.
    Env(String),
    /// A name in the encrypted vault; resolved by the vault, not here.
    Vault(String),
}

/// A resolved secret: wiped from memory on drop and never printed.
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(value: Zeroizing<String>) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

/// The process environment, passed in explicitly so that loading is a pure
/// function of its inputs and tests need not mutate global state.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub vars: BTreeMap<String, String>,
}

impl Environment {
    pub fn new() -> Self {
        Self::default()
    }

    /// Snapshot of the real environment. Variables whose name or value is not
    /// UTF-8 are skipped rather than aborting startup (`std::env::vars` would
    /// panic on them). The one place the daemon reads its environment.
    #[allow(clippy::disallowed_methods)]
    pub fn from_process() -> Self {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Builder-style insert, handy for the CLI and tests.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Environment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            vars: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// Values may be secrets (`{ env = ... }`), so only names are shown.
impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a secret could not be resolved. Messages name the file or variable,
/// never the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret file {} does not exist", path.display())]
    FileMissing { path: PathBuf },
    #[error("cannot read secret file {}: {cause}", path.display())]
    FileUnreadable { path: PathBuf, cause: io::Error },
    #[error("secret file {} is empty", path.display())]
    FileEmpty { path: PathBuf },
    #[error("secret file {} is not valid UTF-8 text", path.display())]
    FileNotUtf8 { path: PathBuf },
    #[error(
        "secret file {} is larger than {limit} bytes; a passphrase or token should be far smaller, is this the right file?",
        path.display()
    )]
    FileTooLarge { path: PathBuf, limit: u64 },
    #[error(
        "systemd credential \"{name}\" cannot be read because $CREDENTIALS_DIRECTORY is not set; systemd sets it for services with LoadCredential={name}:/path/to/secret (or SetCredential=). Outside systemd use {{ file = \"/path/to/secret\" }} instead"
    )]
    NoCredentialsDirectory { name: String },
    #[error(
        "systemd credential \"{name}\" not found at {}; add LoadCredential={name}:/path/to/secret to the service unit",
        path.display()
    )]
    CredentialMissing { name: String, path: PathBuf },
    #[error("environment variable {name} is not set")]
    EnvUnset { name: String },
    #[error("environment variable {name} is empty")]
    EnvEmpty { name: String },
    #[error("secret \"{0}\" is stored in the vault, which must be opened to resolve it")]
    NeedsVault(String),
}

/// Passphrases and tokens are tiny; a cap stops `{ file = "/dev/zero" }` or a
/// mistyped path to a log file from being read into memory whole.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

impl SecretRef {
    /// Reads the secret. `Vault` references yield [`SecretError::NeedsVault`]:
    /// the vault resolves those itself once it is open.
    pub fn resolve(&self, env: &Environment) -> Result<SecretValue, SecretError> {
        match self {
            SecretRef::File(path) => read_secret_file(path),
            SecretRef::Credential(name) => {
                let path = credential_path(name, env)?;
                read_secret_file(&path).map_err(|e| match e {
                    SecretError::FileMissing { path } => SecretError::CredentialMissing {
                        name: name.clone(),
                        path,
                    },
                    other => other,
                })
            }
            SecretRef::Env(name) => match env.get(name) {
                None => Err(SecretError::EnvUnset { name: name.clone() }),
                Some("") => Err(SecretError::EnvEmpty { name: name.clone() }),
                Some(value) => Ok(SecretValue(Zeroizing::new(value.to_owned()))),
            },
            SecretRef::Vault(name) => Err(SecretError::NeedsVault(name.clone())),
        }
    }
}

pub fn credential_path(name: &str, env: &Environment) -> Result<PathBuf, SecretError> {
    match env.get("CREDENTIALS_DIRECTORY") {
        Some(dir) if !dir.is_empty() => Ok(Path::new(dir).join(name)),
        _ => Err(SecretError::NoCredentialsDirectory {
            name: name.to_owned(),
        }),
    }
}

fn read_secret_file(path: &Path) -> Result<SecretValue, SecretError> {
    let unreadable = |cause: io::Error| match cause.kind() {
        io::ErrorKind::NotFound => SecretError::FileMissing {
            path: path.to_owned(),
        },
        _ => SecretError::FileUnreadable {
            path: path.to_owned(),
            cause,
        },
    };
    let file = File::open(path).map_err(unreadable)?;
    // Sized up front so the buffer is not regrown, which would leave
    // unwiped copies of the secret in freed memory.
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        usize::try_from(MAX_SECRET_BYTES + 1).unwrap_or(usize::MAX),
    ));
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_SECRET_BYTES {
        return Err(SecretError::FileTooLarge {
            path: path.to_owned(),
            limit: MAX_SECRET_BYTES,
        });
    }
    let mut text = match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Zeroizing::new(text),
        Err(e) => {
            e.into_bytes().zeroize();
            return Err(SecretError::FileNotUtf8 {
                path: path.to_owned(),
            });
        }
    };
    // Editors and `echo` add one newline; anything more is taken literally
    // because a passphrase may end in whitespace on purpose.
    let trimmed_len = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .map(str::len);
    if let Some(len) = trimmed_len {
        text.truncate(len);
    }
    if text.is_empty() {
        return Err(SecretError::FileEmpty {
            path: path.to_owned(),
        });
    }
    Ok(SecretValue(text))
}
