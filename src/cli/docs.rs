//! `completions` and `manpage`: shell completion scripts and manual pages generated
//! from the clap definitions, so they cannot drift from the parser.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::{Cli, Failure};

/// The shells `completions` writes for; the ones a Linux admin of this daemon uses.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `completions SHELL`: the completion script on stdout.
pub fn completions(shell: Shell) -> Result<(), Failure> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut out);
    write_stdout(&out)
}

const BIN_NAME: &str = "scim-bridge";

/// What clap does not know, in roff: the exit codes scripts and systemd rely on, the
/// files a package installs and the variables read.
const MAIN_PAGE_EXTRA: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
success
.TP
\fB1\fR
runtime failure
.TP
\fB2\fR
usage error (bad arguments)
.TP
\fB3\fR
invalid configuration, or a missing or unreadable secret
.TP
\fB4\fR
the database cannot be opened (foreign or corrupt file, newer schema, unwritable directory)
.TP
\fB5\fR
cannot listen (address in use, permission)
.TP
\fB6\fR
the vault does not open with the configured passphrase, or is missing
.TP
\fB7\fR
\fBstatus\fR, \fBhealthcheck\fR: the daemon is not reachable or not ready
.SH FILES
.TP
\fI/etc/scim\-bridge/scim\-bridge.toml\fR
the configuration when neither \fB\-\-config\fR nor \fBSCIM_BRIDGE_CONFIG\fR is given
and \fI./config/scim\-bridge.toml\fR does not exist
.TP
\fI/var/lib/scim\-bridge\fR
the service's state directory (database), as the packaged configuration sets \fBdata_dir\fR
.TP
\fI/lib/systemd/system/scim\-bridge.service\fR
the systemd unit (\fBsystemctl reload\fR sends SIGHUP: the configuration is read again, what can change live is applied and the rest is logged as needing a restart)
.SH ENVIRONMENT
.TP
\fBSCIM_BRIDGE_CONFIG\fR
the configuration file, as \fB\-\-config\fR
.TP
\fBSCIM_BRIDGE__\fISECTION\fB__\fIKEY\fR
overrides one configuration key, e.g. \fBSCIM_BRIDGE__SERVER__LISTEN=0.0.0.0:8080\fR
.TP
\fBNO_COLOR\fR
no colour in text logs
.SH "SEE ALSO"
\fI/usr/share/doc/scim\-bridge/README.md\fR, \fBsystemctl\fR(1), \fBjournalctl\fR(1)
"#;

/// The main page, `scim-bridge.1`: clap's sections followed by [`MAIN_PAGE_EXTRA`].
fn main_page() -> Result<Vec<u8>, std::io::Error> {
    let man = clap_mangen::Man::new(command()).manual("scim-bridge manual");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    out.extend_from_slice(MAIN_PAGE_EXTRA.as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// The command as the pages describe it: clap's `help` subcommand is not a page.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Gives every subcommand its display name (`scim-bridge-token-create`), which
    // names its page and the references to it.
    cmd.build();
    cmd
}

/// `manpage`: the main page on stdout; with `dir`, it and one page per subcommand
/// (`scim-bridge-token-create.1`, …) written there, as the SUBCOMMANDS section
/// refers to them.
pub fn manpage(dir: Option<&Path>) -> Result<(), Failure> {
    let page = main_page().map_err(|e| Failure::runtime(format!("manual page: {e}")))?;
    let Some(dir) = dir else {
        return write_stdout(&page);
    };
    let failed = |e: std::io::Error| Failure::runtime(format!("{}: {e}", dir.display()));
    std::fs::write(dir.join(format!("{BIN_NAME}.1")), page).map_err(failed)?;
    for sub in command().get_subcommands().filter(|s| !s.is_hide_set()) {
        clap_mangen::generate_to(sub.clone(), dir).map_err(failed)?;
    }
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::runtime(format!("stdout: {e}")))
}
