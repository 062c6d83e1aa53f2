//! `scim-bridge audit`: the provisioning log's tamper-evident chain. `export` writes
//! the JSON Lines file (sealing the head first), `verify` checks one (with the
//! verification key, and heads witnessed elsewhere), `key` prints the verification
//! key for auditors, `seal` seals the head now.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;
use tokio::sync::mpsc;

use super::{Failure, setup};
use crate::audit::{Digest, Head, SigningKey, VerifyingKey, verify_witnessed};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Environment};
use crate::entropy::{Entropy, OsEntropy};
use crate::journal::export::{Bound, Chunk, Range};
use crate::journal::{Journal, JournalError, keys};
use crate::store::Store;
use crate::vault::Secrets;

/// `scim-bridge audit` actions.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the audit chain as JSON Lines (header, checkpoint, records with their
    /// seals, end line), sealing the head first. Needs the vault passphrase.
    Export {
        /// From this seq, RFC 3339 time or date [default: all retained history]
        #[arg(long)]
        from: Option<String>,
        /// To this seq, time or date; the export runs on to the first seal after it
        #[arg(long)]
        to: Option<String>,
        /// Write here instead of stdout
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Check an export: every record, link, seal and count. Exits 1 naming the seq
    /// of the first record found altered, missing, inserted or out of order.
    Verify {
        /// The export file (`-` for stdin)
        file: PathBuf,
        /// The verification key (`ed25519:<hex>`, from `audit key`) [default: this
        /// installation's, from the vault]
        #[arg(long, conflicts_with = "key_file")]
        key: Option<String>,
        /// Read the verification key from this file
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// A head witnessed elsewhere (a seal line in the journal, an earlier
        /// export): SEQ:HEAD; the file must still hold it. Repeatable.
        #[arg(long, value_name = "SEQ:HEAD")]
        expect: Vec<String>,
    },
    /// Print the verification key (give it to auditors; it cannot sign).
    Key,
    /// Chain what is pending and seal the head now.
    Seal,
}

pub async fn run(
    action: AuditCommand,
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    env: &Environment,
) -> Result<(), Failure> {
    if let AuditCommand::Verify {
        file,
        key: Some(key),
        key_file: None,
        expect,
    } = &action
    {
        return verify(file, &key_text(key)?, expect);
    }
    if let AuditCommand::Verify {
        file,
        key_file: Some(path),
        expect,
        ..
    } = &action
    {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("--key-file {}: {e}", path.display())))?;
        return verify(file, &key_text(&text)?, expect);
    }
    let cfg = setup::load_config(config, data_dir, None, env)?.config;
    let store = setup::open_existing_store(&cfg).await?;
    let result = with_store(action, &cfg, Arc::clone(&store), env).await;
    store.close().await;
    result
}

fn key_text(text: &str) -> Result<VerifyingKey, Failure> {
    VerifyingKey::from_text(text).map_err(|e| Failure::usage(e.to_string()))
}

fn journal_failure(e: JournalError) -> Failure {
    match e {
        JournalError::NoKey(m) => Failure {
            code: 6,
            message: m,
        },
        JournalError::Key(e) => Failure {
            code: 6,
            message: e.to_string(),
        },
        JournalError::Invalid(m) => Failure::usage(m),
        JournalError::Store(e) => Failure::store(e.to_string()),
        other => Failure::runtime(other.to_string()),
    }
}

/// The installation's signing key, from the vault (made there on first use).
async fn signing_key(
    cfg: &Config,
    store: &Arc<dyn Store>,
    env: &Environment,
    clock: &Arc<dyn Clock>,
    entropy: &Arc<dyn Entropy>,
) -> Result<SigningKey, Failure> {
    if cfg.vault.is_none() {
        return Err(Failure {
            code: 6,
            message: "the audit signing key is kept in the vault: add a [vault] section and run `scim-bridge vault init`".into(),
        });
    }
    let (key, header) = super::vault::unlock(store.as_ref(), cfg, env)
        .await?
        .ok_or_else(|| Failure {
            code: 6,
            message: "the vault is not initialised (run `scim-bridge vault init`)".into(),
        })?;
    let secrets = Secrets::new(
        Arc::clone(store),
        key,
        header,
        Arc::clone(entropy),
        Arc::clone(clock),
    );
    keys::signing_key(&secrets, entropy.as_ref())
        .await
        .map_err(journal_failure)
}

async fn with_store(
    action: AuditCommand,
    cfg: &Config,
    store: Arc<dyn Store>,
    env: &Environment,
) -> Result<(), Failure> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let entropy: Arc<dyn Entropy> = Arc::new(OsEntropy);
    let key = signing_key(cfg, &store, env, &clock, &entropy).await?;
    if let AuditCommand::Key = action {
        println!("{}", key.verifying_key().to_text());
        return Ok(());
    }
    if let AuditCommand::Verify { file, expect, .. } = &action {
        return verify(file, &key.verifying_key().clone(), expect);
    }
    let journal = Journal::open(store, clock, entropy.as_ref(), Some(key))
        .await
        .map_err(journal_failure)?;
    match action {
        AuditCommand::Seal => match journal.chain_and_seal().await.map_err(journal_failure)? {
            Some(s) => {
                println!("audit seal seq={} head={} key={}", s.seq, s.head, s.key_id);
                Ok(())
            }
            None => {
                println!("nothing to seal: no record is chained yet");
                Ok(())
            }
        },
        AuditCommand::Export { from, to, output } => {
            let parse = |name: &str, v: &Option<String>| {
                v.as_deref()
                    .map(|t| Bound::parse(name, t))
                    .transpose()
                    .map_err(journal_failure)
            };
            let range = Range {
                from: parse("--from", &from)?,
                to: parse("--to", &to)?,
            };
            export(&journal, range, output.as_deref()).await
        }
        AuditCommand::Key | AuditCommand::Verify { .. } => Ok(()),
    }
}

/// Streams the export to `output` (stdout when `None`); the file appears only
/// complete (written beside it, then renamed), so a failed export leaves none.
async fn export(journal: &Journal, range: Range, output: Option<&Path>) -> Result<(), Failure> {
    let (tx, mut rx) = mpsc::channel::<Chunk>(4);
    let partial = output.map(|p| p.with_extension("partial"));
    let mut sink: Box<dyn Write + Send> = match &partial {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| Failure::runtime(format!("cannot write {}: {e}", p.display())),
        )?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let writing = async {
        while let Some(chunk) = rx.recv().await {
            let bytes = chunk.map_err(|e| Failure::runtime(e.to_string()))?;
            sink.write_all(&bytes)
                .map_err(|e| Failure::runtime(format!("writing the export: {e}")))?;
        }
        sink.flush()
            .map_err(|e| Failure::runtime(format!("writing the export: {e}")))
    };
    let exporting = async {
        let r = journal.export(range, &tx).await;
        drop(tx);
        r
    };
    let (written, exported) = tokio::join!(writing, exporting);
    let done = exported.map_err(journal_failure)?;
    written?;
    if let (Some(partial), Some(path)) = (&partial, output) {
        std::fs::rename(partial, path)
            .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    let seqs = match (done.first_seq, done.last_seq) {
        (Some(a), Some(b)) => format!(", seq {a}..={b}"),
        _ => String::new(),
    };
    eprintln!(
        "exported {} records and {} seals{seqs} of log {}",
        done.records,
        done.seals,
        journal.log()
    );
    Ok(())
}

fn witnessed(expect: &[String]) -> Result<Vec<Head>, Failure> {
    expect
        .iter()
        .map(|e| {
            let (seq, head) = e.split_once(':').unwrap_or((e, ""));
            match (seq.trim().parse::<u64>(), Digest::from_hex(head.trim())) {
                (Ok(seq), Some(hash)) => Ok(Head { seq, hash }),
                _ => Err(Failure::usage(format!(
                    "--expect {e:?}: expected SEQ:HEAD (a seq and 64 lower-case hex digits, as a seal line shows them)"
                ))),
            }
        })
        .collect()
}

fn verify(file: &Path, key: &VerifyingKey, expect: &[String]) -> Result<(), Failure> {
    let heads = witnessed(expect)?;
    let report = if file == Path::new("-") {
        verify_witnessed(std::io::stdin().lock(), key, &heads)
    } else {
        let f = std::fs::File::open(file)
            .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", file.display())))?;
        verify_witnessed(std::io::BufReader::new(f), key, &heads)
    }
    .map_err(|e| Failure::runtime(format!("verification FAILED: {e}")))?;
    println!("{report}");
    println!("verified: {}", file.display());
    Ok(())
}
