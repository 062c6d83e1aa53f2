//! Builds each target's credentials from the config: secrets resolved (from files,
//! credentials, the environment or the vault), token sources and account linking.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::AppError;
use crate::clock::{Clock, SystemClock};
use crate::config::{
    AuthConfig, AuthMethod, Config, Environment, SecretRef, TargetConfig, TargetKind, TargetSpec,
};
use crate::delivery::{EngineConfig, GuardConfig, Pacer, Policy, Target};
use crate::entropy::{Entropy, OsEntropy};
use crate::oauth::{
    Credentials, Grant, Linker, LinkerConfig, SecretsTokenStore, SourceConfig, TokenEndpoint,
    TokenSource, TokenStore, build_client,
};
use crate::resolver::{People, Resolver};
use crate::server::TargetHandle;
use crate::store::Store;
use crate::targets::imanage::ImanageApprover;
use crate::targets::{ImanageClient, ImanageTarget, Mapping, ScimTarget, WebhookTarget};
use crate::vault::Secrets;

/// Timeout of one request to a token endpoint.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// What building targets needs from the running process.
pub struct Context<'a> {
    pub env: &'a Environment,
    pub secrets: Option<Arc<Secrets>>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub public_url: &'a str,
    /// Where linked accounts' owners are looked up (who a person is at a target).
    pub store: Arc<dyn Store>,
}

/// One [`TargetHandle`] per configured target.
pub async fn build(cfg: &Config, ctx: &Context<'_>) -> Result<Vec<TargetHandle>, AppError> {
    if cfg.targets.is_empty() {
        return Ok(Vec::new());
    }
    let http = build_client(TOKEN_TIMEOUT).map_err(AppError::Runtime)?;
    let mut out = Vec::with_capacity(cfg.targets.len());
    let all: Vec<String> = cfg.providers.iter().map(|p| p.name.clone()).collect();
    for (i, target) in cfg.targets.iter().enumerate() {
        let providers = if target.providers.is_empty() {
            all.clone()
        } else {
            target.providers.clone()
        };
        out.push(build_one(i, target, &providers, ctx, &http).await?);
    }
    Ok(out)
}

async fn build_one(
    i: usize,
    target: &TargetConfig,
    providers: &[String],
    ctx: &Context<'_>,
    http: &reqwest::Client,
) -> Result<TargetHandle, AppError> {
    // Every request to the target waits here, whoever sends it, so the target never
    // sees more than its rate limit.
    let pacer = Arc::new(Pacer::new(target.delivery.rate_limit_per_second));
    let mut auth_out = TargetHandle {
        name: target.name.clone(),
        source: None,
        linker: None,
        delivery: None,
        reconcile: None,
        paused: false,
        engine: None,
        reconciler: None,
        pacer: Arc::clone(&pacer),
    };
    let Some(auth) = &target.auth else {
        return Ok(auth_out);
    };
    let key = |k: &str| format!("targets[{i}].auth.{k}");
    let store: Option<Arc<dyn TokenStore>> = ctx
        .secrets
        .as_ref()
        .map(|s| Arc::new(SecretsTokenStore(Arc::clone(s))) as Arc<dyn TokenStore>);
    let client_secret = match &auth.client_secret {
        Some(r) => Some(resolve(r, ctx, &key("client_secret")).await?),
        None => None,
    };
    if matches!(
        auth.method,
        AuthMethod::ClientCredentials | AuthMethod::Password
    ) {
        let grant = match auth.method {
            AuthMethod::Password => Grant::Password {
                username: auth.username.clone().unwrap_or_default(),
                // Config loading requires a password for this grant.
                password: match &auth.password {
                    Some(r) => resolve(r, ctx, &key("password")).await?,
                    None => SecretString::from(String::new()),
                },
            },
            _ => Grant::ClientCredentials,
        };
        let mut source = TokenSource::new(
            SourceConfig {
                target: target.name.clone(),
                endpoint: endpoint(auth, client_secret.clone()),
                grant,
                refresh_ahead: auth.refresh_ahead,
            },
            http.clone(),
            Arc::clone(&ctx.clock),
            store.clone(),
        );
        // iManage's token endpoint is usually on its API host, behind the same rate
        // limit: its requests then take slots like the target's own. One elsewhere
        // (an identity provider) has its own limits and does not slow deliveries.
        if same_host(Some(target.url()), auth.token_url.as_deref()) {
            source = source.with_pacer(pacer);
        }
        auth_out.source = Some(Arc::new(source));
    }
    if let Some(authorize_url) = &auth.authorize_url {
        auth_out.linker = Some(Arc::new(linker(
            target,
            providers,
            auth,
            authorize_url,
            client_secret,
            ctx,
            http,
            store,
        )?));
    }
    Ok(auth_out)
}

#[allow(clippy::too_many_arguments)]
fn linker(
    target: &TargetConfig,
    providers: &[String],
    auth: &AuthConfig,
    authorize_url: &str,
    client_secret: Option<SecretString>,
    ctx: &Context<'_>,
    http: &reqwest::Client,
    store: Option<Arc<dyn TokenStore>>,
) -> Result<Linker, AppError> {
    let store = store.ok_or_else(|| {
        AppError::Config(format!(
            "target {}: account linking keeps users' tokens in the vault; add a [vault] section and run `scim-bridge vault init`",
            target.name
        ))
    })?;
    Ok(Linker::new(
        LinkerConfig {
            target: target.name.clone(),
            authorize_url: authorize_url.to_owned(),
            endpoint: endpoint(auth, client_secret),
            redirect_url: format!("{}/link/{}/callback", ctx.public_url, target.name),
            refresh_ahead: auth.refresh_ahead,
            revoke_url: auth.revoke_url.clone(),
            approver: approver(target, providers, auth, ctx, http),
        },
        http.clone(),
        Arc::clone(&ctx.clock),
        Arc::clone(&ctx.entropy),
        store,
    ))
}

/// Whether two URLs name the same host and port (scheme defaults included).
fn same_host(a: Option<&str>, b: Option<&str>) -> bool {
    let origin = |u: Option<&str>| {
        let u = url::Url::parse(u?).ok()?;
        Some((
            u.host_str()?.to_ascii_lowercase(),
            u.port_or_known_default(),
        ))
    };
    matches!((origin(a), origin(b)), (Some(x), Some(y)) if x == y)
}

/// The token endpoint settings; config loading guarantees `token_url` and
/// `client_id` for the grants and the account linking that use them.
fn endpoint(auth: &AuthConfig, client_secret: Option<SecretString>) -> TokenEndpoint {
    TokenEndpoint {
        token_url: auth.token_url.clone().unwrap_or_default(),
        client_id: auth.client_id.clone().unwrap_or_default(),
        client_secret,
        client_auth: auth.client_auth,
        scopes: auth.scopes.clone(),
    }
}

/// A configured secret's value; a missing vault entry is a config error naming the
/// key and the command that fixes it.
pub(super) async fn resolve(
    r: &SecretRef,
    ctx: &Context<'_>,
    key: &str,
) -> Result<SecretString, AppError> {
    match r {
        SecretRef::Vault(name) => {
            let secrets = ctx.secrets.as_ref().ok_or_else(|| {
                AppError::Config(format!(
                    "{key}: refers to vault secret {name:?} but the vault is not open (add a [vault] section and run `scim-bridge vault init`)"
                ))
            })?;
            secrets
                .get(name)
                .await
                .map_err(|e| AppError::Vault(format!("{key}: {e}")))?
                .ok_or_else(|| {
                    AppError::Config(format!(
                        "{key}: vault secret {name:?} does not exist; store it with `scim-bridge secret set {name}` (value on stdin)"
                    ))
                })
        }
        other => other
            .resolve(ctx.env)
            .map(|v| SecretString::from(v.expose()))
            .map_err(|e| AppError::Config(format!("{key}: {e}"))),
    }
}

/// A target changes are delivered to, ready for an engine.
pub struct Deliverable {
    pub target: Arc<dyn Target>,
    pub engine: EngineConfig,
    /// What reconciliation may do there (scope, unmanaged accounts).
    pub policy: Policy,
    /// Providers whose changes it receives.
    pub providers: Vec<String>,
    /// Its position in `cfg.targets` and in the handles.
    pub index: usize,
    /// The iManage client behind an iManage target, which the workspace resolver shares.
    pub imanage: Option<Arc<ImanageClient>>,
}

/// Every configured target, ready for an engine: its client, credentials and settings.
pub async fn deliverables(
    cfg: &Config,
    handles: &mut [TargetHandle],
    ctx: &Context<'_>,
) -> Result<Vec<Deliverable>, AppError> {
    let all: Vec<String> = cfg.providers.iter().map(|p| p.name.clone()).collect();
    let mut out = Vec::new();
    for (index, (t, handle)) in cfg.targets.iter().zip(handles.iter_mut()).enumerate() {
        let mut imanage = None;
        let pacer = Arc::clone(&handle.pacer);
        let mapping = Mapping {
            user: t.user_mapping.clone(),
            group: t.group_mapping.clone(),
        };
        let http = build_client(t.delivery.timeout).map_err(AppError::Runtime)?;
        let credentials = credentials(index, t, handle, ctx).await?;
        let target: Arc<dyn Target> = match &t.spec {
            TargetSpec::Webhook {
                url,
                signing_secret,
            } => {
                let key = format!("targets[{index}].signing_secret");
                let secret = resolve(signing_secret, ctx, &key).await?;
                Arc::new(WebhookTarget::new(
                    t.name.clone(),
                    url.clone(),
                    secret,
                    http,
                    credentials,
                    Arc::clone(&ctx.clock),
                    Arc::clone(&pacer),
                ))
            }
            TargetSpec::Scim { url, .. } => Arc::new(
                ScimTarget::configured(t, url, http, credentials, Arc::clone(&ctx.clock), pacer)
                    .with_mapping(mapping),
            ),
            TargetSpec::Imanage { url, library } => {
                let client = Arc::new(ImanageClient::new(
                    url.clone(),
                    library.clone(),
                    http,
                    credentials,
                    Arc::clone(&ctx.clock),
                    Arc::clone(&pacer),
                ));
                imanage = Some(Arc::clone(&client));
                Arc::new(
                    ImanageTarget::new(t.name.clone(), client, mapping, t.matching.clone())
                        .with_linker(handle.linker.clone()),
                )
            }
        };
        let engine = EngineConfig {
            concurrency: t.delivery.concurrency,
            rate_per_second: t.delivery.rate_limit_per_second,
            max_attempts: t.delivery.max_attempts,
            timeout: t.delivery.timeout,
            // A lease outlives any single attempt, so only a dead process loses one.
            lease: t.delivery.timeout * 2 + Duration::from_secs(30),
            guard: GuardConfig {
                max_deprovisions: t.guard.max_deprovisions,
                max_percent: t.guard.max_deprovision_percent,
                window: t.guard.window,
                protected: t.guard.protected.clone(),
            },
            scope: t.scope.clone(),
            ..EngineConfig::default()
        };
        let policy = Policy {
            scope: t.scope.clone(),
            unmanaged: t.unmanaged,
        };
        let providers = if t.providers.is_empty() {
            all.clone()
        } else {
            t.providers.clone()
        };
        out.push(Deliverable {
            target,
            engine,
            policy,
            providers,
            index,
            imanage,
        });
    }
    Ok(out)
}

async fn credentials(
    index: usize,
    t: &TargetConfig,
    handle: &TargetHandle,
    ctx: &Context<'_>,
) -> Result<Credentials, AppError> {
    let Some(auth) = &t.auth else {
        return Ok(Credentials::None);
    };
    if let Some(source) = &handle.source {
        return Ok(Credentials::OAuth {
            source: Arc::clone(source),
            header: auth.header,
        });
    }
    match &auth.token {
        Some(r) => Ok(Credentials::Static {
            token: resolve(r, ctx, &format!("targets[{index}].auth.token")).await?,
            header: auth.header,
        }),
        None => Ok(Credentials::None),
    }
}

/// Who approved a link, where the target can say: iManage names the signed-in user at
/// `GET /api`. Other targets' links are taken on trust (the README says so).
fn approver(
    target: &TargetConfig,
    providers: &[String],
    auth: &AuthConfig,
    ctx: &Context<'_>,
    http: &reqwest::Client,
) -> Option<Arc<dyn crate::oauth::Approver>> {
    let TargetSpec::Imanage { url, .. } = &target.spec else {
        return None;
    };
    Some(Arc::new(ImanageApprover {
        host: url.clone(),
        http: http.clone(),
        header: auth.header,
        store: Arc::clone(&ctx.store),
        target: target.name.clone(),
        providers: providers.to_vec(),
        mapping: Mapping {
            user: target.user_mapping.clone(),
            group: target.group_mapping.clone(),
        },
    }))
}

/// Targets as a one-shot command (`sync`, `link`) sees them, with the real clock and
/// randomness and, when a vault is configured and initialised, its secrets. The second
/// value says whether the vault was opened.
pub async fn for_command(
    cfg: &Config,
    env: &Environment,
    store: &Arc<dyn Store>,
) -> Result<(Vec<TargetHandle>, Vec<Deliverable>, bool), AppError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let entropy: Arc<dyn Entropy> = Arc::new(OsEntropy);
    let secrets = match &cfg.vault {
        Some(_) => super::vault::unlock(store.as_ref(), cfg, env)
            .await?
            .map(|(key, header)| {
                Arc::new(Secrets::new(
                    Arc::clone(store),
                    key,
                    header,
                    Arc::clone(&entropy),
                    Arc::clone(&clock),
                ))
            }),
        None => None,
    };
    let opened = secrets.is_some();
    // Outside the daemon there is no bound address; the configured one stands in.
    let public_url = public_url(cfg);
    let ctx = Context {
        env,
        secrets,
        clock,
        entropy,
        public_url: &public_url,
        store: Arc::clone(store),
    };
    let mut handles = build(cfg, &ctx).await?;
    let deliverables = deliverables(cfg, &mut handles, &ctx).await?;
    Ok((handles, deliverables, opened))
}

/// The workspace resolver over the iManage targets' clients, when repositories are
/// configured, acting for people through the targets' linked accounts.
pub fn resolver(
    cfg: &Config,
    deliverables: &[Deliverable],
    handles: &[TargetHandle],
    public_url: &str,
    clock: Arc<dyn Clock>,
) -> Option<Arc<Resolver>> {
    let clients = deliverables
        .iter()
        .filter_map(|d| {
            let client = d.imanage.as_ref()?;
            Some((d.target.name().to_owned(), Arc::clone(client)))
        })
        .collect();
    resolver_over(cfg, clients, handles, public_url, clock)
}

/// [`resolver`] over iManage clients by target name, `handles` in `cfg.targets`' order.
pub fn resolver_over(
    cfg: &Config,
    clients: std::collections::HashMap<String, Arc<ImanageClient>>,
    handles: &[TargetHandle],
    public_url: &str,
    clock: Arc<dyn Clock>,
) -> Option<Arc<Resolver>> {
    if cfg.repositories.is_empty() {
        return None;
    }
    let people = cfg
        .targets
        .iter()
        .zip(handles)
        .filter(|(t, _)| t.kind() == TargetKind::Imanage)
        .map(|(t, h)| {
            let auth = t.auth.as_ref();
            (
                t.name.clone(),
                People {
                    linker: h.linker.clone(),
                    header: auth.map_or(crate::config::AuthHeader::XAuthToken, |a| a.header),
                    service_fallback: auth.is_some_and(|a| a.service_fallback),
                    public_url: public_url.to_owned(),
                },
            )
        })
        .collect();
    Some(Arc::new(
        Resolver::new(cfg.repositories.clone(), &cfg.resolver, clients, clock).with_people(people),
    ))
}

/// The address people reach the daemon at, for the links it hands out: the daemon
/// sets `server.listen` to the address it bound before building.
pub fn public_url(cfg: &Config) -> String {
    cfg.server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", cfg.server.listen))
}

#[cfg(test)]
mod tests {
    use super::same_host;

    #[test]
    fn token_requests_share_the_pacer_only_on_the_targets_host() {
        let dms = Some("https://dms.firm.example");
        assert!(same_host(
            dms,
            Some("https://DMS.firm.example:443/auth/oauth2/token")
        ));
        assert!(!same_host(
            dms,
            Some("https://login.microsoftonline.com/t/oauth2/v2.0/token")
        ));
        assert!(!same_host(
            dms,
            Some("http://dms.firm.example/auth/oauth2/token")
        ));
        assert!(!same_host(dms, None));
        assert!(!same_host(None, Some("https://dms.firm.example/token")));
    }
}
