//! `[[targets]]`: the downstream systems changes are pushed to, and how the bridge
//! authenticates to each.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::reader::{Ctx, Field, quote};
use super::schema::{
    AuthConfig, AuthHeader, AuthMethod, DeliverySettings, FieldMapping, GuardSettings, MatchRules,
    OnDelete, ProviderConfig, TargetConfig, TargetKind, TargetSpec, Unmanaged,
};
use super::secret::SecretRef;
use super::tree::Loc;
use super::tree::Val;
use super::values;
use super::walk::{read_secret_ref, unique_name};
use crate::identity::{CONTACT_ATTRIBUTES, ContactRename, ContactTypes, Scope};
use crate::scim::ResourceKind;
use crate::template::Template;

/// `event_retention` is `[database] event_retention`: retention is measured from a
/// user's delete event, so events must outlive `delete_after`.
pub(super) fn read_targets(
    ctx: &mut Ctx,
    f: &Field<'_>,
    base_dir: &Path,
    event_retention: Duration,
    idps: &[ProviderConfig],
) -> Vec<TargetConfig> {
    let Some(items) = ctx.array(f, "an array of tables ([[targets]])") else {
        return Vec::new();
    };
    let mut seen: BTreeMap<String, Loc> = BTreeMap::new();
    let mut out = Vec::new();
    for item in items {
        let Some(mut t) = ctx.table(&item) else {
            continue;
        };
        let name = t.require(ctx, "name", "expected a target name like \"imanage\"");
        let kind = t.require(
            ctx,
            "kind",
            "expected one of \"imanage\", \"scim\" or \"webhook\"",
        );
        let url = t.get("url");
        let auth = t.get("auth");
        let providers = t.get("providers");
        let concurrency = t.get("concurrency");
        let rate = t.get("rate_limit_per_second");
        let max_attempts = t.get("max_attempts");
        let timeout = t.get("timeout");
        let signing_secret = t.get("signing_secret");
        let guard = t.get("guard");
        let schedule = t.get("schedule");
        let library = t.get("library");
        let user_mapping = t.get("user_mapping");
        let group_mapping = t.get("group_mapping");
        let on_delete = t.get("on_delete");
        let delete_after = t.get("delete_after");
        let roles = t.get("roles");
        let contact_types = t.get("contact_types");
        let expand_nested = t.get("expand_nested");
        let matching = t.get("matching");
        let unmanaged = t.get("unmanaged");
        let scope = t.get("scope");
        let paused = t.get("paused");
        let table_loc = item.loc().clone();
        t.finish(ctx);

        let name = name.and_then(|f| {
            unique_name(
                ctx,
                &f,
                &mut seen,
                "target",
                "a target name like \"imanage\"",
            )
        });
        let named_kind: Option<TargetKind> = kind.and_then(|f| ctx.keyword(&f));
        let kind = named_kind.unwrap_or_default();
        let url = url.and_then(|f| {
            ctx.parse(
                &f,
                "a URL like \"https://dms.example.com\"",
                values::public_url,
            )
        });
        let auth = auth.and_then(|f| read_auth(ctx, &f, base_dir, kind));
        let providers = providers
            .map(|f| {
                let names = read_names(ctx, &f);
                for p in names.iter().filter(|p| !idps.iter().any(|i| &i.name == *p)) {
                    let configured: Vec<&str> = idps.iter().map(|i| i.name.as_str()).collect();
                    ctx.error(
                        f.loc(),
                        &f.path,
                        format!(
                            "no provider named {p:?} (configured: {})",
                            configured.join(", ")
                        ),
                    );
                }
                names
            })
            .unwrap_or_default();
        let mut delivery = DeliverySettings::default();
        if let Some(v) = concurrency.and_then(|f| ctx.usize(&f, 1)) {
            delivery.concurrency = v.min(1024);
        }
        if let Some(f) = rate {
            delivery.rate_limit_per_second =
                read_positive(ctx, &f, "a number of requests per second", "20 or 0.5");
        }
        if let Some(v) = max_attempts.and_then(|f| ctx.u32(&f, 1, 1000)) {
            delivery.max_attempts = v;
        }
        if let Some(v) =
            timeout.and_then(|f| ctx.parse(&f, values::DURATION_EXPECTED, values::duration))
        {
            delivery.timeout = v.max(Duration::from_millis(100));
        }
        let signing_secret = signing_secret.and_then(|f| read_secret_ref(ctx, &f, base_dir));
        let path = item.path.clone();
        // Every kind needs its URL; what it is differs, and the message says so. A
        // missing or unknown kind was reported already and decides nothing here.
        if url.is_none() && named_kind.is_some() {
            let why = match kind {
                TargetKind::Webhook => {
                    "missing required key \"url\" (where webhook events are posted)"
                }
                TargetKind::Scim => {
                    "missing required key \"url\" (the SCIM base URL, e.g. \"https://app.example.com/scim/v2\")"
                }
                TargetKind::Imanage => {
                    "missing required key \"url\" (the iManage host, e.g. \"https://imanage.example.com\")"
                }
            };
            ctx.missing(&table_loc, &format!("{path}.url"), why);
        }
        if kind == TargetKind::Webhook && signing_secret.is_none() {
            ctx.missing(
                &table_loc,
                &format!("{path}.signing_secret"),
                "missing required key \"signing_secret\" (a secret reference such as { vault = \"hooks.signing\" }; receivers verify every request with it)",
            );
        }
        let guard = guard.map(|f| read_guard(ctx, &f)).unwrap_or_default();
        let library = library.and_then(|f| ctx.non_empty_string(&f));
        let schedule = schedule.and_then(|f| {
            let text = ctx.text(&f, "a cron expression like \"0 */6 * * *\"")?;
            match super::schedule::parse(text) {
                Ok(s) => Some(s),
                Err(why) => {
                    ctx.error(f.loc(), &f.path, why);
                    None
                }
            }
        });
        if schedule.is_some() && kind == TargetKind::Webhook {
            ctx.warn(
                &format!("{}.schedule", item.path),
                "a webhook keeps no state to reconcile, so this schedule only logs a failure each time",
            );
        }
        let user_mapping = user_mapping
            .map(|f| read_mapping(ctx, &f, kind, ResourceKind::User, idps))
            .unwrap_or_default();
        let group_mapping = group_mapping
            .map(|f| read_mapping(ctx, &f, kind, ResourceKind::Group, idps))
            .unwrap_or_default();
        let on_delete = match on_delete {
            Some(f) if kind != TargetKind::Scim => {
                ctx.error(
                    f.loc(),
                    &f.path,
                    "only SCIM apps take on_delete: iManage users are always disabled (iManage cannot delete them) and webhooks get a deleted event",
                );
                OnDelete::default()
            }
            Some(f) => ctx.keyword(&f).unwrap_or_default(),
            None => OnDelete::default(),
        };
        let delete_after = delete_after.and_then(|f| {
            if kind != TargetKind::Scim || on_delete != OnDelete::Deactivate {
                ctx.error(
                    f.loc(),
                    &f.path,
                    "delete_after applies to SCIM apps with on_delete = \"deactivate\": deactivated accounts are deleted by reconciliation once it has passed",
                );
                return None;
            }
            let d = ctx
                .parse(&f, values::DURATION_EXPECTED, values::duration)
                .filter(|d| !d.is_zero())?;
            if !event_retention.is_zero() && event_retention < d {
                ctx.error(
                    f.loc(),
                    &f.path,
                    format!(
                        "delete_after ({}) is longer than [database] event_retention ({}): the delete events retention is measured from would be pruned first; raise event_retention",
                        values::show_duration(d),
                        values::show_duration(event_retention)
                    ),
                );
            }
            Some(d)
        });
        let expand_nested = match expand_nested {
            Some(f) if kind != TargetKind::Scim => {
                ctx.error(
                    f.loc(),
                    &f.path,
                    "only SCIM apps take expand_nested (iManage and webhooks get direct membership)",
                );
                false
            }
            Some(f) => ctx.bool(&f).unwrap_or(false),
            None => false,
        };
        let mut roles = roles
            .map(|f| super::roles::read_roles(ctx, &f, kind, idps))
            .unwrap_or_default();
        for r in &mut roles {
            r.expand_nested = expand_nested;
        }
        let contact_types = contact_types
            .map(|f| read_contact_types(ctx, &f, kind))
            .unwrap_or_default();
        let matching = match matching {
            Some(f) => read_matching(ctx, &f, kind),
            None => MatchRules::default_for(kind),
        };
        let unmanaged = match unmanaged {
            Some(f) if kind == TargetKind::Webhook => {
                ctx.error(
                    f.loc(),
                    &f.path,
                    "a webhook holds no accounts, so it has none the bridge does not manage",
                );
                Unmanaged::default()
            }
            Some(f) => ctx.keyword(&f).unwrap_or_default(),
            None => Unmanaged::default(),
        };
        let scope = scope.and_then(|f| read_scope(ctx, &f, &item.path));
        let paused = paused.and_then(|f| ctx.bool(&f)).unwrap_or(false);
        // A missing URL or signing secret was reported above, so the load fails; the
        // placeholders only let the rest of this target be checked too.
        let url = url.unwrap_or_default();
        let spec = match kind {
            TargetKind::Imanage => TargetSpec::Imanage { url, library },
            TargetKind::Scim => TargetSpec::Scim {
                url,
                on_delete,
                delete_after,
                roles,
                contact_types,
                expand_nested,
            },
            TargetKind::Webhook => TargetSpec::Webhook {
                url,
                signing_secret: signing_secret.unwrap_or(SecretRef::Env(String::new())),
            },
        };
        out.push(TargetConfig {
            paused,
            matching,
            unmanaged,
            scope,
            user_mapping,
            group_mapping,
            name: name.unwrap_or_default(),
            spec,
            auth,
            providers,
            delivery,
            guard,
            schedule,
        });
    }
    out
}

/// `[targets.contact_types]`: `emails = { work = "email" }` renames a contact type
/// in one multi-valued attribute; the flat `work = "email"` renames it in all of them
/// (kept for existing configs, with a warning that names the per-attribute form).
fn read_contact_types(ctx: &mut Ctx, f: &Field<'_>, kind: TargetKind) -> ContactTypes {
    if kind != TargetKind::Scim {
        ctx.error(
            f.loc(),
            &f.path,
            "only SCIM apps take contact_types (iManage keeps one email and one phone; webhooks carry the resource as stored)",
        );
        return ContactTypes::default();
    }
    let expected =
        "a table of attribute = { idp_type = \"app_type\" }, like emails = { work = \"email\" }";
    let Val::Table(entries) = &f.node.val else {
        ctx.mismatch(f, expected);
        return ContactTypes::default();
    };
    let mut out = Vec::new();
    let mut flat = Vec::new();
    for entry in entries {
        let item = Field {
            node: &entry.node,
            path: format!("{}.{}", f.path, entry.key),
        };
        if !matches!(entry.node.val, Val::Table(_)) {
            if let Some(to) = ctx.non_empty_string(&item) {
                flat.push(format!("{} = {}", entry.key, quote(&to)));
                out.push(ContactRename {
                    attribute: None,
                    from: entry.key.clone(),
                    to,
                });
            }
            continue;
        }
        let Some(attribute) = CONTACT_ATTRIBUTES
            .iter()
            .find(|a| a.eq_ignore_ascii_case(&entry.key))
        else {
            ctx.error(
                item.loc(),
                &item.path,
                format!(
                    "{} is not a multi-valued attribute with contact types; expected one of {}",
                    quote(&entry.key),
                    CONTACT_ATTRIBUTES.join(", ")
                ),
            );
            continue;
        };
        let Val::Table(renames) = &entry.node.val else {
            continue;
        };
        for r in renames {
            let rename = Field {
                node: &r.node,
                path: format!("{}.{}", item.path, r.key),
            };
            if let Some(to) = ctx.non_empty_string(&rename) {
                out.push(ContactRename {
                    attribute: Some((*attribute).to_owned()),
                    from: r.key.clone(),
                    to,
                });
            }
        }
    }
    if let Some(first) = flat.first() {
        ctx.warn(
            &f.path,
            format!(
                "{} renames the type in every one of {} (a work phone would become an \"email\" contact too); to rename it in one attribute only, write it per attribute, like emails = {{ {first} }}",
                flat.join(", "),
                CONTACT_ATTRIBUTES.join(", ")
            ),
        );
    }
    ContactTypes(out)
}

/// The fields an iManage user or group mapping may set.
pub const IMANAGE_USER_FIELDS: &[&str] = &["id", "full_name", "email", "location", "phone"];
pub const IMANAGE_GROUP_FIELDS: &[&str] = &["id", "full_name"];

/// `[targets.user_mapping]` / `[targets.group_mapping]`: `field = "template"`.
fn read_mapping(
    ctx: &mut Ctx,
    f: &Field<'_>,
    kind: TargetKind,
    resource: ResourceKind,
    providers: &[ProviderConfig],
) -> Vec<FieldMapping> {
    let Val::Table(entries) = &f.node.val else {
        ctx.mismatch(f, "a table of field = \"template\"");
        return Vec::new();
    };
    let root = match resource {
        ResourceKind::User => "user",
        ResourceKind::Group => "group",
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = format!("{}.{}", f.path, entry.key);
        let field = Field {
            node: &entry.node,
            path: path.clone(),
        };
        let allowed: Option<&[&str]> = match (kind, resource) {
            (TargetKind::Imanage, ResourceKind::User) => Some(IMANAGE_USER_FIELDS),
            (TargetKind::Imanage, ResourceKind::Group) => Some(IMANAGE_GROUP_FIELDS),
            _ => None,
        };
        match (kind, allowed) {
            (TargetKind::Webhook, _) => {
                ctx.error(
                    &entry.key_loc,
                    &path,
                    "webhooks carry the SCIM resource as stored; they take no mapping",
                );
                continue;
            }
            (_, Some(fields)) if !fields.contains(&entry.key.as_str()) => {
                ctx.error(
                    &entry.key_loc,
                    &path,
                    format!(
                        "unknown iManage field {}; mappable fields are {}",
                        quote(&entry.key),
                        fields.join(", ")
                    ),
                );
                continue;
            }
            (TargetKind::Scim, _) if crate::scim::AttrPath::parse(&entry.key).is_err() => {
                ctx.error(
                    &entry.key_loc,
                    &path,
                    format!(
                        "{} is not a SCIM attribute path like \"title\", \"name.formatted\" or \"urn:…:User:roleId\" (quote keys that contain dots or colons)",
                        quote(&entry.key)
                    ),
                );
                continue;
            }
            _ => {}
        }
        let Some(text) = ctx.text(&field, "a template like \"[user.userName]\"") else {
            continue;
        };
        match Template::parse(text).and_then(|t| t.check_roots(&[root]).map(|()| t)) {
            Ok(template) => {
                super::known_attrs::check(
                    ctx,
                    field.loc(),
                    &path,
                    &template,
                    root,
                    resource,
                    providers,
                );
                out.push(FieldMapping {
                    field: entry.key.clone(),
                    template,
                });
            }
            Err(e) => ctx.error(field.loc(), &path, e.to_string()),
        }
    }
    out
}

const URL_EXPECTED: &str = "a URL like \"https://login.example.com/oauth2/token\"";

fn read_auth(
    ctx: &mut Ctx,
    f: &Field<'_>,
    base_dir: &Path,
    kind: TargetKind,
) -> Option<AuthConfig> {
    let mut t = ctx.table(f)?;
    let method = t.require(
        ctx,
        "method",
        "expected one of \"client_credentials\", \"password\" or \"bearer\"",
    );
    let token_url = t.get("token_url");
    let authorize_url = t.get("authorize_url");
    let client_id = t.get("client_id");
    let client_secret = t.get("client_secret");
    let client_auth = t.get("client_auth");
    let username = t.get("username");
    let password = t.get("password");
    let token = t.get("token");
    let scopes = t.get("scopes");
    let header = t.get("header");
    let refresh_ahead = t.get("refresh_ahead");
    let revoke_url = t.get("revoke_url");
    let service_fallback = t.get("service_fallback");
    let table_loc = f.loc().clone();
    t.finish(ctx);

    let method: AuthMethod = method.and_then(|f| ctx.keyword(&f))?;
    let url = |ctx: &mut Ctx, f: Option<Field<'_>>| {
        f.and_then(|f| ctx.parse(&f, URL_EXPECTED, values::public_url))
    };
    let token_url = url(ctx, token_url);
    let authorize_url = url(ctx, authorize_url);
    let revoke_url = url(ctx, revoke_url);
    let service_fallback = service_fallback.and_then(|f| ctx.bool(&f)).unwrap_or(false);
    let client_id = client_id.and_then(|f| ctx.non_empty_string(&f));
    let client_secret = client_secret.and_then(|f| read_secret_ref(ctx, &f, base_dir));
    let client_auth = client_auth
        .and_then(|f| ctx.keyword(&f))
        .unwrap_or_default();
    let username = username.and_then(|f| ctx.non_empty_string(&f));
    let password = password.and_then(|f| read_secret_ref(ctx, &f, base_dir));
    let token = token.and_then(|f| read_secret_ref(ctx, &f, base_dir));
    let scopes = scopes.map(|f| read_scopes(ctx, &f)).unwrap_or_default();
    // iManage Work takes its token in X-Auth-Token; everything else speaks RFC 6750.
    let header = header.and_then(|f| ctx.keyword(&f)).unwrap_or(match kind {
        TargetKind::Imanage => AuthHeader::XAuthToken,
        _ => AuthHeader::Bearer,
    });
    let refresh_ahead = refresh_ahead
        .and_then(|f| ctx.parse(&f, values::DURATION_EXPECTED, values::duration))
        .unwrap_or(Duration::from_secs(60));

    for (key, url) in [
        ("token_url", &token_url),
        ("authorize_url", &authorize_url),
        ("revoke_url", &revoke_url),
    ] {
        if let Some(url) = url
            && is_plain_http_to_network(url)
        {
            ctx.warn(
                &format!("{}.{key}", f.path),
                format!("{url} is plain http:// to another host: client secrets and tokens would cross the network unencrypted"),
            );
        }
    }
    let path = f.path.clone();
    let need = |ctx: &mut Ctx, present: bool, key: &str, why: &str| {
        if !present {
            ctx.missing(
                &table_loc,
                &format!("{path}.{key}"),
                format!("missing required key \"{key}\" ({why})"),
            );
        }
    };
    match method {
        AuthMethod::ClientCredentials | AuthMethod::Password => {
            need(
                ctx,
                token_url.is_some(),
                "token_url",
                "the OAuth2 token endpoint",
            );
            need(
                ctx,
                client_id.is_some(),
                "client_id",
                "the OAuth2 client id",
            );
            if method == AuthMethod::Password {
                need(
                    ctx,
                    username.is_some(),
                    "username",
                    "the service account for the password grant",
                );
                need(
                    ctx,
                    password.is_some(),
                    "password",
                    "a secret reference such as { vault = \"imanage.password\" }",
                );
            }
        }
        AuthMethod::Bearer => {
            need(
                ctx,
                token.is_some(),
                "token",
                "a secret reference such as { vault = \"app.token\" }",
            );
            // The grants above need both anyway; with a static token, only linking does.
            if authorize_url.is_some() {
                need(
                    ctx,
                    token_url.is_some(),
                    "token_url",
                    "account linking exchanges the code at the OAuth2 token endpoint",
                );
                need(
                    ctx,
                    client_id.is_some(),
                    "client_id",
                    "account linking identifies the bridge with its OAuth2 client id",
                );
            }
        }
    }
    Some(AuthConfig {
        method,
        token_url,
        authorize_url,
        client_id,
        client_secret,
        client_auth,
        username,
        password,
        token,
        scopes,
        header,
        refresh_ahead,
        revoke_url,
        service_fallback,
    })
}

fn read_scopes(ctx: &mut Ctx, f: &Field<'_>) -> Vec<String> {
    let Some(items) = ctx.array(f, "an array of scope names like [\"user\", \"admin\"]") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        if let Some(s) = ctx.non_empty_string(&item) {
            // RFC 6749 section 3.3: scope tokens are printable ASCII without spaces, quotes or backslashes.
            if s.chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
            {
                out.push(s);
            } else {
                ctx.error(
                    item.loc(),
                    &item.path,
                    format!(
                        "expected a scope token without spaces, quotes or backslashes, found {}",
                        quote(&s)
                    ),
                );
            }
        }
    }
    out
}

fn is_plain_http_to_network(url: &str) -> bool {
    let Some(rest) = url
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("http://"))
        .and(url.get(7..))
    else {
        return false;
    };
    let host = rest.split(['/', ':']).next().unwrap_or("");
    !(host.eq_ignore_ascii_case("localhost")
        || host.starts_with("127.")
        || rest.starts_with("[::1]"))
}

/// `[targets.matching]`: `users = ["id", "email"]`, `groups = ["id", "displayName"]`,
/// each a rule the target kind offers, in the order they are tried; `[]` never adopts.
fn read_matching(ctx: &mut Ctx, f: &Field<'_>, kind: TargetKind) -> MatchRules {
    let mut out = MatchRules::default_for(kind);
    if kind == TargetKind::Webhook {
        ctx.error(
            f.loc(),
            &f.path,
            "a webhook holds no accounts to match; matching applies to iManage and SCIM apps",
        );
        return out;
    }
    let Some(mut t) = ctx.table(f) else {
        return out;
    };
    let users = t.get("users");
    let groups = t.get("groups");
    t.finish(ctx);
    for (field, resource) in [(users, ResourceKind::User), (groups, ResourceKind::Group)] {
        let Some(field) = field else {
            continue;
        };
        let allowed = MatchRules::allowed(kind, resource);
        let expected = format!(
            "an array of matching rules, tried in order, from {}",
            allowed
                .iter()
                .map(|a| quote(a))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let Some(items) = ctx.array(&field, &expected) else {
            continue;
        };
        let mut rules: Vec<String> = Vec::new();
        for item in items {
            let Some(rule) = ctx.non_empty_string(&item) else {
                continue;
            };
            let Some(known) = allowed.iter().find(|a| a.eq_ignore_ascii_case(&rule)) else {
                ctx.error(
                    item.loc(),
                    &item.path,
                    format!(
                        "unknown matching rule {}; a {} target matches {}s by {}",
                        quote(&rule),
                        kind.as_str(),
                        resource.name().to_lowercase(),
                        allowed.join(", ")
                    ),
                );
                continue;
            };
            if rules.iter().any(|r| r == known) {
                ctx.error(
                    item.loc(),
                    &item.path,
                    format!("{} is listed twice", quote(known)),
                );
                continue;
            }
            rules.push((*known).to_owned());
        }
        match resource {
            ResourceKind::User => out.users = rules,
            ResourceKind::Group => out.groups = rules,
        }
    }
    out
}

/// `[targets.scope]`: `groups` (display names whose members the target receives),
/// `nested` (members of nested groups count) and `users` (a SCIM filter the user must
/// match).
fn read_scope(ctx: &mut Ctx, f: &Field<'_>, target_path: &str) -> Option<Scope> {
    let mut t = ctx.table(f)?;
    let groups = t.get("groups");
    let nested = t.get("nested");
    let users = t.get("users");
    t.finish(ctx);
    let groups: Vec<String> = groups
        .and_then(|g| {
            ctx.array(&g, "an array of group names like [\"Claras Users\"]")
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| ctx.non_empty_string(i))
                        .collect()
                })
        })
        .unwrap_or_default();
    let nested = nested.and_then(|n| ctx.bool(&n)).unwrap_or(false);
    let users = users.and_then(|u| {
        let text = ctx.non_empty_string(&u)?;
        match crate::scim::parse_filter(&text, &crate::scim::FilterLimits::default()) {
            Ok(filter) => Some((text, filter)),
            Err(e) => {
                ctx.error(
                    u.loc(),
                    &u.path,
                    format!(
                        "not a SCIM filter: {} (example: 'userType eq \"Employee\" and active eq true')",
                        e.detail
                    ),
                );
                None
            }
        }
    });
    if groups.is_empty() && users.is_none() {
        ctx.error(
            f.loc(),
            &f.path,
            "a scope needs `groups` (the groups whose members this target receives) or `users` (a SCIM filter), or both; leave [targets.scope] out to send everyone",
        );
        return None;
    }
    Some(Scope {
        groups,
        nested,
        users,
        origin: format!("{target_path}.scope"),
    })
}

/// Provider names this target takes changes from.
fn read_names(ctx: &mut Ctx, f: &Field<'_>) -> Vec<String> {
    let Some(items) = ctx.array(f, "an array of provider names like [\"entra\"]") else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| ctx.parse(item, values::PROVIDER_NAME_EXPECTED, values::provider_name))
        .collect()
}

/// A number greater than zero (integer or fraction); `what` names it, e.g. "a percentage".
fn read_positive(ctx: &mut Ctx, f: &Field<'_>, what: &str, example: &str) -> Option<f64> {
    let v = match &f.node.val {
        Val::Int(i) => *i as f64,
        Val::Float(x) => *x,
        _ => {
            ctx.mismatch(f, &format!("{what} like {example}"));
            return None;
        }
    };
    if v.is_finite() && v > 0.0 {
        Some(v)
    } else {
        ctx.error(
            f.loc(),
            &f.path,
            format!("expected {what} greater than zero"),
        );
        None
    }
}

/// `[targets.guard]`. `max_deprovisions = 0` turns the count limit off.
fn read_guard(ctx: &mut Ctx, f: &Field<'_>) -> GuardSettings {
    let mut out = GuardSettings::default();
    let Some(mut t) = ctx.table(f) else {
        return out;
    };
    let max = t.get("max_deprovisions");
    let percent = t.get("max_deprovision_percent");
    let window = t.get("window");
    let protected = t.get("protected");
    t.finish(ctx);
    // A limit written in the file replaces the default one rather than adding to it.
    if max.is_some() || percent.is_some() {
        out.max_deprovisions = None;
        out.max_deprovision_percent = None;
    }
    if let Some(v) = max.and_then(|f| ctx.int(&f, 0, None)) {
        out.max_deprovisions = u64::try_from(v).ok().filter(|v| *v > 0);
    }
    if let Some(f) = percent {
        out.max_deprovision_percent =
            read_positive(ctx, &f, "a percentage", "5 or 2.5").filter(|p| {
                let ok = *p <= 100.0;
                if !ok {
                    ctx.error(f.loc(), &f.path, "expected a percentage from 0 to 100");
                }
                ok
            });
    }
    if let Some(v) = window.and_then(|f| ctx.parse(&f, values::DURATION_EXPECTED, values::duration))
    {
        out.window = v.max(Duration::from_secs(1));
    }
    if let Some(f) = protected
        && let Some(items) = ctx.array(
            &f,
            "an array of userNames like [\"breakglass@firm.example\"]",
        )
    {
        out.protected = items
            .iter()
            .filter_map(|i| ctx.non_empty_string(i))
            .collect();
    }
    out
}
