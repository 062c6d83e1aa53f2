//! Revocations seen by every instance at once, without a token query per request
//! (see [`TokenLease`] for the argument).
//!
//! Each daemon keeps one extra connection that `LISTEN`s on [`CHANNEL`]; a revocation
//! commits a `NOTIFY` on it, and the connection task counts the notification into
//! the generation as soon as it arrives. The connection's checks are empty queries
//! every [`BEAT`]: PostgreSQL sends a pending notification before it answers the
//! next query, and the connection task counts it before that answer is seen, so a
//! beat started after a revocation's commit has counted it. A lost notification
//! (dropped connection, partition, stall) is covered by the lease running out.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Config, Socket};

use super::tls::Connect;
use crate::store::{TokenLease, Watched};

/// The channel revocations are announced on.
pub const CHANNEL: &str = "scim_bridge_token_revoked";
/// How often the listening connection proves it is alive.
const BEAT: Duration = Duration::from_millis(200);
/// How long after a beat's start the generation may be trusted; also how long a
/// revocation waits after its commit.
const LEASE: Duration = Duration::from_secs(1);
/// Pause before connecting again after the listening connection failed.
const RECONNECT: Duration = Duration::from_secs(1);

/// The listening side; see [`Watched`].
pub struct TokenWatch {
    cfg: Config,
    tls: Connect,
    watched: Watched,
}

impl TokenWatch {
    /// A watch over the database `cfg` points at; nothing connects yet.
    pub fn new(mut cfg: Config, tls: Connect) -> Self {
        cfg.application_name("scim-bridge token watch");
        TokenWatch {
            cfg,
            tls,
            watched: Watched::new(LEASE),
        }
    }

    /// The lease, for a revocation to outwait.
    pub fn lease(&self) -> &TokenLease {
        self.watched.lease()
    }

    /// The current generation while the lease holds, starting the listener on the
    /// first call. `None` until the listener has answered its first beat.
    pub fn generation(&self) -> Option<u64> {
        self.watched
            .generation(|lease| tokio::spawn(listen(self.cfg.clone(), self.tls.clone(), lease)))
    }

    /// Stops listening (the store is closing).
    pub fn stop(&self) {
        self.watched.stop();
    }
}

async fn listen(cfg: Config, tls: Connect, lease: Arc<TokenLease>) {
    loop {
        let outcome = match tls.clone() {
            Connect::Plain(t) => listen_once(&cfg, t, &lease).await,
            Connect::Tls(t) => listen_once(&cfg, t, &lease).await,
        };
        lease.lost();
        if let Err(e) = outcome {
            tracing::warn!(
                error = %super::error_text(&e),
                "token revocation listener lost; tokens are checked in the database until it is back"
            );
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// One connection's life: listen, then beat until something fails.
async fn listen_once<T>(
    cfg: &Config,
    tls: T,
    lease: &Arc<TokenLease>,
) -> Result<(), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = cfg.connect(tls).await?;
    let counting = Arc::clone(lease);
    let driver = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                // Counted here, in the order PostgreSQL sent it: before the answer
                // to any query sent after the revocation's commit is seen.
                Some(Ok(AsyncMessage::Notification(_))) => counting.bump(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    let beats = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        loop {
            let start = Instant::now();
            match tokio::time::timeout(LEASE, client.batch_execute("")).await {
                Ok(answer) => answer?,
                // Too slow to vouch for anything: the lease has run out meanwhile,
                // and a connection this slow is not worth keeping.
                Err(_) => return Ok(()),
            }
            lease.vouch(start);
            tokio::time::sleep(BEAT).await;
        }
    };
    let outcome: Result<(), tokio_postgres::Error> = beats.await;
    drop(client);
    driver.abort();
    outcome
}
