use std::fmt;

/// One problem found while loading the configuration.
///
/// `line`/`column` are 1-based and present for problems in the file; problems
/// in environment overrides have `origin` = `env VARIABLE` and no position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path such as `providers[1].dialect`; empty for syntax errors
    /// that could not be tied to a key.
    pub key_path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}:{}", self.column.unwrap_or(1))?;
        }
        if !self.key_path.is_empty() {
            write!(f, ": {}", self.key_path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one load, so a single run shows them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file (or string origin) that was loaded, for the summary line.
    pub origin: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.errors {
            writeln!(f, "{error}")?;
        }
        let n = self.errors.len();
        let plural = if n == 1 { "" } else { "s" };
        write!(f, "{n} error{plural} in {}", self.origin)
    }
}

impl std::error::Error for ConfigErrors {}
