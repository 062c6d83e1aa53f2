//! iManage Work over its REST API v2 (facts in `shared/reference/imanage-api.md`).
//!
//! Users: created and updated under `customers/{cid}/users`, disabled with
//! `allow_logon = false` (iManage users are never deleted). Groups: created in the
//! configured library, members added and removed in batches; iManage cannot delete a
//! group, so a deleted group is emptied, then disabled.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::http::{body_prefix, classify};
use crate::clock::Clock;
use crate::delivery::{Change, State, Target, TargetError};
use crate::oauth::Credentials;
use crate::scim::ResourceKind;

/// Members per `PUT …/members` request.
const MEMBER_BATCH: usize = 500;
/// Longest user id accepted (iManage logins are short; 64 is generous).
const MAX_USER_ID: usize = 64;
/// Longest group id iManage accepts.
const MAX_GROUP_ID: usize = 254;

pub struct ImanageTarget {
    name: String,
    /// `https://imanage.example.com`, without a trailing slash.
    host: String,
    library: Option<String>,
    http: reqwest::Client,
    credentials: Credentials,
    clock: Arc<dyn Clock>,
    /// `(customer_id, library)` from `GET /api`.
    discovered: OnceCell<(String, String)>,
}

impl std::fmt::Debug for ImanageTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImanageTarget")
            .field("name", &self.name)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// An iManage user id for a SCIM userName: logins have no whitespace and are compared
/// case-insensitively, so they are sent upper-case.
pub fn user_id(user_name: &str) -> Result<String, TargetError> {
    let name = user_name.trim();
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.chars().any(char::is_whitespace) {
        Some("iManage user ids cannot contain whitespace")
    } else if name.chars().count() > MAX_USER_ID {
        Some("iManage user ids are at most 64 characters")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else {
        None
    };
    match why {
        Some(why) => Err(TargetError::Permanent {
            message: format!("userName {user_name:?} cannot be an iManage user id: {why}"),
        }),
        None => Ok(name.to_uppercase()),
    }
}

/// An iManage group id for a SCIM displayName: upper-case, whitespace as `_`.
pub fn group_id(display_name: &str) -> Result<String, TargetError> {
    let id: String = display_name
        .trim()
        .chars()
        .map(|c| {
            if c.is_whitespace() {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    if id.is_empty() || id.chars().count() > MAX_GROUP_ID || id.chars().any(char::is_control) {
        return Err(TargetError::Permanent {
            message: format!(
                "displayName {display_name:?} cannot be an iManage group id (1 to 254 printable characters)"
            ),
        });
    }
    Ok(id)
}

/// iManage's error envelope as one line: `CODE: message (field: CODE message)`.
fn describe_error(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return body.to_owned();
    };
    let e = &v["error"];
    let Some(code) = e["code"].as_str() else {
        return body.to_owned();
    };
    let mut out = format!("{code}: {}", e["code_message"].as_str().unwrap_or(""));
    for m in e["messages"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            " ({}: {} {})",
            m["field"].as_str().unwrap_or("-"),
            m["code"].as_str().unwrap_or(""),
            m["code_message"].as_str().unwrap_or("")
        ));
    }
    out
}

fn full_name(doc: &Value) -> Option<String> {
    doc["displayName"].as_str().map(str::to_owned).or_else(|| {
        let given = doc["name"]["givenName"].as_str().unwrap_or("");
        let family = doc["name"]["familyName"].as_str().unwrap_or("");
        let joined = format!("{given} {family}").trim().to_owned();
        (!joined.is_empty()).then_some(joined)
    })
}

fn primary_email(doc: &Value) -> Option<String> {
    let emails = doc["emails"].as_array()?;
    emails
        .iter()
        .find(|e| e["primary"] == true)
        .or_else(|| emails.iter().find(|e| e["type"] == "work"))
        .or_else(|| emails.first())
        .and_then(|e| e["value"].as_str())
        .map(str::to_owned)
}

impl ImanageTarget {
    pub fn new(
        name: String,
        host: String,
        library: Option<String>,
        http: reqwest::Client,
        credentials: Credentials,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            name,
            host,
            library,
            http,
            credentials,
            clock,
            discovered: OnceCell::new(),
        }
    }

    /// Sends a request; `Ok((status, body))` for 2xx, 404 and 409, an error otherwise.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), TargetError> {
        let payload = body.map(Value::to_string);
        let response = self
            .credentials
            .send(|| {
                let mut r = self
                    .http
                    .request(method.clone(), url)
                    .header(reqwest::header::ACCEPT, "application/json");
                if let Some(p) = &payload {
                    r = r
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(p.clone());
                }
                r
            })
            .await
            .map_err(|e| TargetError::Transient {
                message: e.to_string(),
                retry_after: None,
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = body_prefix(response, 4 * 1024 * 1024).await;
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::CONFLICT {
            return Ok((
                status.as_u16(),
                serde_json::from_str(&text).unwrap_or(Value::Null),
            ));
        }
        classify(
            status,
            retry_after.as_deref(),
            &describe_error(&text),
            self.clock.now(),
        )?;
        if text.trim().is_empty() {
            return Ok((status.as_u16(), Value::Null));
        }
        let v = serde_json::from_str(&text).map_err(|_| TargetError::Transient {
            message: format!("HTTP {status} with a body that is not JSON"),
            retry_after: None,
        })?;
        Ok((status.as_u16(), v))
    }

    /// `(customer_id, library)`, discovered once from `GET /api`.
    async fn discover(&self) -> Result<(String, String), TargetError> {
        self.discovered
            .get_or_try_init(|| async {
                let (status, v) = self
                    .call(reqwest::Method::GET, &format!("{}/api", self.host), None)
                    .await?;
                if status == 404 {
                    return Err(TargetError::Permanent {
                        message: format!("{}/api not found: is url the iManage host?", self.host),
                    });
                }
                let cid = match &v["data"]["user"]["customer_id"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(TargetError::Transient {
                            message: "GET /api did not say data.user.customer_id".into(),
                            retry_after: None,
                        });
                    }
                };
                let library = match &self.library {
                    Some(l) => l.clone(),
                    None => v["data"]["work"]["preferred_library"]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| TargetError::Permanent {
                            message:
                                "GET /api names no preferred library; set the target's library"
                                    .into(),
                        })?,
                };
                Ok((cid, library))
            })
            .await
            .cloned()
    }

    async fn base(&self) -> Result<(String, String), TargetError> {
        let (cid, lib) = self.discover().await?;
        Ok((format!("{}/work/api/v2/customers/{cid}", self.host), lib))
    }

    async fn apply_user(&self, change: &Change) -> Result<Option<String>, TargetError> {
        let (base, _) = self.base().await?;
        let doc = match &change.state {
            State::Deleted => {
                if let Some(id) = &change.target_id {
                    let body = json!({"allow_logon": false});
                    self.call(
                        reqwest::Method::PATCH,
                        &format!("{base}/users/{id}"),
                        Some(&body),
                    )
                    .await?;
                }
                // The iManage user stays (disabled): keep the id for a later re-create.
                return Ok(change.target_id.clone());
            }
            State::Present(doc) => doc,
        };
        let id = match &change.target_id {
            Some(id) => id.clone(),
            None => user_id(doc["userName"].as_str().unwrap_or(""))?,
        };
        let mut fields = json!({"allow_logon": doc["active"].as_bool().unwrap_or(true)});
        if let Some(n) = full_name(doc) {
            fields["full_name"] = n.into();
        }
        if let Some(e) = primary_email(doc) {
            fields["email"] = e.into();
        }
        let url = format!("{base}/users/{id}");
        if change.target_id.is_some() {
            let (status, _) = self
                .call(reqwest::Method::PATCH, &url, Some(&fields))
                .await?;
            if status != 404 {
                return Ok(Some(id));
            }
        }
        let mut create = fields.clone();
        create["id"] = id.clone().into();
        let (status, _) = self
            .call(
                reqwest::Method::POST,
                &format!("{base}/users"),
                Some(&create),
            )
            .await?;
        if status == 409 {
            // Already there (created by hand or by an earlier attempt): adopt and update.
            self.call(reqwest::Method::PATCH, &url, Some(&fields))
                .await?;
        }
        Ok(Some(id))
    }

    async fn members(
        &self,
        base: &str,
        lib: &str,
        gid: &str,
        ids: &[String],
        action: &str,
    ) -> Result<(), TargetError> {
        for batch in ids.chunks(MEMBER_BATCH) {
            let body =
                json!({"database": lib, "data_type": "users", "data": batch, "action": action});
            let url = format!("{base}/libraries/{lib}/groups/{gid}/members");
            let (status, _) = self.call(reqwest::Method::PUT, &url, Some(&body)).await?;
            if status == 404 {
                return Err(TargetError::Transient {
                    message: format!("group {gid} not found in {lib}"),
                    retry_after: None,
                });
            }
        }
        Ok(())
    }

    fn mapped(change: &Change, ids: &[String]) -> Result<Vec<String>, TargetError> {
        ids.iter()
            .map(|id| {
                change
                    .member_ids
                    .get(id)
                    .cloned()
                    .ok_or_else(|| TargetError::Transient {
                        message: format!(
                            "member {id} is not in iManage yet; waiting for its own delivery"
                        ),
                        retry_after: None,
                    })
            })
            .collect()
    }

    async fn apply_group(&self, change: &Change) -> Result<Option<String>, TargetError> {
        let (base, lib) = self.base().await?;
        let (added, removed) = change.member_deltas();
        // Members never delivered are not in iManage to remove.
        let removed: Vec<String> = removed
            .iter()
            .filter_map(|r| change.member_ids.get(r).cloned())
            .collect();
        let doc = match &change.state {
            State::Deleted => {
                let Some(gid) = &change.target_id else {
                    return Ok(None);
                };
                // Empty first: a disabled group's membership cannot change.
                self.members(&base, &lib, gid, &removed, "delete").await?;
                let body = json!({"enabled": false});
                self.call(
                    reqwest::Method::PATCH,
                    &format!("{base}/groups/{gid}"),
                    Some(&body),
                )
                .await?;
                return Ok(None);
            }
            State::Present(doc) => doc,
        };
        let display = doc["displayName"].as_str().unwrap_or("");
        let gid = match &change.target_id {
            Some(g) => g.clone(),
            None => group_id(display)?,
        };
        let update = json!({"full_name": display, "enabled": true});
        let patched = change.target_id.is_some()
            && self
                .call(
                    reqwest::Method::PATCH,
                    &format!("{base}/groups/{gid}"),
                    Some(&update),
                )
                .await?
                .0
                != 404;
        if !patched {
            let create = json!({"id": gid, "full_name": display, "enabled": true, "group_nos": 2, "is_external": false});
            let (status, _) = self
                .call(
                    reqwest::Method::POST,
                    &format!("{base}/libraries/{lib}/groups"),
                    Some(&create),
                )
                .await?;
            if status == 409 {
                self.call(
                    reqwest::Method::PATCH,
                    &format!("{base}/groups/{gid}"),
                    Some(&update),
                )
                .await?;
            }
        }
        let add = match &change.members {
            Some(all) => Self::mapped(
                change,
                &all.iter().map(|m| m.value.clone()).collect::<Vec<_>>(),
            )?,
            None => Self::mapped(change, &added)?,
        };
        self.members(&base, &lib, &gid, &add, "add").await?;
        self.members(&base, &lib, &gid, &removed, "delete").await?;
        Ok(Some(gid))
    }
}

#[async_trait::async_trait]
impl Target for ImanageTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deactivate(&self, target_id: &str) -> Result<(), TargetError> {
        let (base, _) = self.base().await?;
        let body = json!({"allow_logon": false});
        self.call(
            reqwest::Method::PATCH,
            &format!("{base}/users/{target_id}"),
            Some(&body),
        )
        .await?;
        Ok(())
    }

    async fn apply(&self, change: &Change) -> Result<Option<String>, TargetError> {
        match change.kind {
            ResourceKind::User => self.apply_user(change).await,
            ResourceKind::Group => self.apply_group(change).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_imanage_rules_with_clear_errors() {
        assert_eq!(
            user_id(" jsmith@firm.example ").unwrap(),
            "JSMITH@FIRM.EXAMPLE"
        );
        let e = user_id("John Smith").unwrap_err().to_string();
        assert!(
            e.contains("cannot be an iManage user id") && e.contains("whitespace"),
            "{e}"
        );
        assert!(user_id(&"x".repeat(65)).is_err());
        assert!(user_id("").is_err());
        assert_eq!(group_id("Litigation Team").unwrap(), "LITIGATION_TEAM");
        assert!(group_id(&"g".repeat(255)).is_err());
    }

    #[test]
    fn the_error_envelope_reads_as_one_line() {
        let shown = describe_error(
            r#"{"error":{"code":"NRC_INVALID_PARAM","code_message":"Invalid parameter","messages":[{"field":"email","code":"NRC_BAD","code_message":"bad email"}]}}"#,
        );
        assert_eq!(
            shown,
            "NRC_INVALID_PARAM: Invalid parameter (email: NRC_BAD bad email)"
        );
    }
}
