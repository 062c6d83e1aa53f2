//! Who approved a linked account at iManage, and who the person is there: a link
//! started for one person must not be kept when someone else signed in at iManage's
//! consent page, or that person's requests would carry the other's rights.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::Value;

use super::ids::user_id;
use crate::config::AuthHeader;
use crate::oauth::{Approver, OAuthError, auth_header};
use crate::scim::ResourceKind;
use crate::store::{Lookup, Store};
use crate::targets::Mapping;

/// Asks iManage's discovery endpoint who a token acts as, and the store and mapping
/// who a person is at iManage.
pub struct ImanageApprover {
    /// `https://imanage.example.com`, without a trailing slash.
    pub host: String,
    pub http: reqwest::Client,
    pub header: AuthHeader,
    pub store: Arc<dyn Store>,
    /// The target's name (its recorded ids are looked up under it).
    pub target: String,
    /// Providers whose users the target receives.
    pub providers: Vec<String>,
    pub mapping: Mapping,
}

#[async_trait::async_trait]
impl Approver for ImanageApprover {
    async fn approver(&self, access: &SecretString) -> Result<String, OAuthError> {
        let (name, value) = auth_header(self.header, secrecy::ExposeSecret::expose_secret(access))?;
        let response = self
            .http
            .get(format!("{}/api", self.host))
            .header(name, value)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OAuthError::Unreachable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(OAuthError::Link(format!(
                "GET /api with the new token answered HTTP {status}"
            )));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|_| OAuthError::Link("GET /api answered something that is not JSON".into()))?;
        match &body["data"]["user"]["id"] {
            Value::String(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(OAuthError::Link(
                "GET /api did not name the signed-in user (data.user.id)".into(),
            )),
        }
    }

    async fn expected(&self, user: &str) -> Result<Vec<String>, OAuthError> {
        let store = |e: crate::store::StoreError| OAuthError::Link(e.to_string());
        let mut out: Vec<String> = Vec::new();
        for provider in &self.providers {
            let found = self
                .store
                .lookup(
                    provider,
                    ResourceKind::User,
                    Lookup::UserNames(vec![user.to_owned()]),
                )
                .await
                .map_err(store)?;
            for r in found {
                // The account the bridge manages for them (created or adopted) first;
                // else the id the mapping would give them.
                if let Some(tid) = self
                    .store
                    .target_id(&self.target, provider, ResourceKind::User, &r.id)
                    .await
                    .map_err(store)?
                {
                    out.push(tid);
                }
                if let Ok(m) = self.mapping.imanage_user(&r.doc) {
                    out.push(m.id);
                }
            }
        }
        if out.is_empty()
            && let Ok(id) = user_id(user)
        {
            out.push(id);
        }
        out.dedup();
        Ok(out)
    }
}
