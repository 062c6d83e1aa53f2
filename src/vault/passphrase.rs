//! The admin passphrase, length-checked and kept out of logs.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::VaultError;

/// The vault passphrase: at least [`Passphrase::MIN_CHARS`] characters, zeroized on drop.
/// The Clio Operate–iManage guide asks for a passphrase "of over 100 characters", so
/// exactly 100 is refused.
pub struct Passphrase(SecretString);

impl Passphrase {
    /// Minimum length in characters (Unicode scalar values, not bytes).
    pub const MIN_CHARS: usize = 101;

    /// Accept `raw` minus one trailing newline (`\n` or `\r\n`), or refuse it if too short.
    pub fn new(raw: String) -> Result<Self, VaultError> {
        // Wrapped first so a refused passphrase is wiped too.
        let raw = Zeroizing::new(raw);
        let trimmed = raw
            .strip_suffix('\n')
            .map_or(raw.as_str(), |s| s.strip_suffix('\r').unwrap_or(s));
        let given = trimmed.chars().count();
        if given < Self::MIN_CHARS {
            return Err(VaultError::PassphraseTooShort {
                min: Self::MIN_CHARS,
                given,
            });
        }
        // `From<&str>` copies into an exact-size box; converting the `String` could
        // reallocate and leave an unwiped copy behind.
        Ok(Self(SecretString::from(trimmed)))
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase([redacted])")
    }
}
