//! One iManage Work deployment over HTTP: authentication, discovery of the customer id
//! and library, the error envelope, and list reading in both of the API's shapes.
//!
//! Shared by the delivery target and the workspace resolver, so both use one token
//! source and one discovery.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::clock::Clock;
use crate::delivery::{Pacer, TargetError};
use crate::oauth::Credentials;
use crate::targets::http::{Reply, Shown, body_prefix, classify, send};

/// Largest answer read from iManage; a page of 500 users is well under this.
const MAX_BODY: usize = 4 * 1024 * 1024;

pub struct ImanageClient {
    /// `https://imanage.example.com`, without a trailing slash.
    host: String,
    library: Option<String>,
    http: reqwest::Client,
    credentials: Credentials,
    clock: Arc<dyn Clock>,
    /// What `GET /api` said.
    discovered: OnceCell<Discovery>,
    /// The deployment's request-rate ceiling: deliveries, reconciliation reads and
    /// workspace searches all count against it.
    pacer: Arc<Pacer>,
}

impl std::fmt::Debug for ImanageClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImanageClient")
            .field("host", &self.host)
            .field("library", &self.library)
            .finish_non_exhaustive()
    }
}

/// What `GET /api` tells about the deployment and the account the bridge uses.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub customer_id: String,
    /// The configured library, else the account's preferred one.
    pub library: String,
    /// The bridge's own login, which reconciliation must never deactivate.
    pub account: Option<String>,
}

/// A request's answer: 2xx, 404 or 409 with its JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// One page of a list.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Value>,
    /// Where the next page starts, when the server said there is one.
    pub cursor: Option<String>,
    /// How many results there are in all, when the server said (`total_count`).
    pub total: Option<usize>,
}

impl Page {
    /// Reads both list shapes: GET lists answer `{"data":{"results":[…]}}`, POST searches
    /// `{"data":[…]}`. The cursor may sit at the top or inside `data`.
    pub fn from_body(body: &Value) -> Page {
        let data = &body["data"];
        let items = match data {
            Value::Array(items) => items.clone(),
            Value::Object(_) => data["results"].as_array().cloned().unwrap_or_default(),
            _ => Vec::new(),
        };
        let cursor = [&body["cursor"], &data["cursor"]]
            .into_iter()
            .find_map(|c| c.as_str().filter(|c| !c.is_empty()))
            .map(str::to_owned);
        let total = [&body["total_count"], &data["total_count"]]
            .into_iter()
            .find_map(Value::as_u64)
            .and_then(|t| usize::try_from(t).ok());
        Page {
            items,
            cursor,
            total,
        }
    }
}

impl ImanageClient {
    pub fn new(
        host: String,
        library: Option<String>,
        http: reqwest::Client,
        credentials: Credentials,
        clock: Arc<dyn Clock>,
        pacer: Arc<Pacer>,
    ) -> Self {
        Self {
            host,
            library,
            http,
            credentials,
            clock,
            discovered: OnceCell::new(),
            pacer,
        }
    }

    /// The same deployment with every request made under `credentials` (a person's
    /// linked account, so iManage applies that person's rights), sharing the pacer
    /// and what discovery found with the service account's client.
    pub async fn acting_as(&self, credentials: Credentials) -> Result<ImanageClient, TargetError> {
        let discovery = self.discover().await?;
        Ok(ImanageClient {
            host: self.host.clone(),
            library: self.library.clone(),
            http: self.http.clone(),
            credentials,
            clock: Arc::clone(&self.clock),
            discovered: OnceCell::new_with(Some(discovery)),
            pacer: Arc::clone(&self.pacer),
        })
    }

    /// The person this client acts for, when it uses their linked account.
    pub fn acting_for(&self) -> Option<&str> {
        match &self.credentials {
            Credentials::Linked { user, .. } => Some(user),
            _ => None,
        }
    }

    /// Sends a request; 2xx, 404 and 409 are answers, everything else an error that
    /// says whether a retry can help.
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, TargetError> {
        let payload = body.map(Value::to_string);
        let url = with_query(url, query)?;
        let Reply {
            status,
            retry_after,
            response,
        } = send(
            &self.pacer,
            &self.credentials,
            Shown {
                method: &method,
                path: url.as_str(),
            },
            || {
                let mut r = self
                    .http
                    .request(method.clone(), url.clone())
                    .header(reqwest::header::ACCEPT, "application/json");
                if let Some(p) = &payload {
                    r = r
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(p.clone());
                }
                r
            },
        )
        .await?;
        let text = body_prefix(response, MAX_BODY).await;
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::CONFLICT {
            return Ok(Answer {
                status: status.as_u16(),
                body: serde_json::from_str(&text).unwrap_or(Value::Null),
            });
        }
        classify(
            status,
            retry_after.as_deref(),
            &describe_error(&text),
            self.clock.now(),
        )?;
        if text.trim().is_empty() {
            return Ok(Answer {
                status: status.as_u16(),
                body: Value::Null,
            });
        }
        let body = serde_json::from_str(&text).map_err(|_| TargetError::Transient {
            message: format!("HTTP {status} with a body that is not JSON"),
            retry_after: None,
        })?;
        Ok(Answer {
            status: status.as_u16(),
            body,
        })
    }

    /// One page of a GET list; `from` is a cursor or an offset, as the last page said.
    pub async fn page(
        &self,
        url: &str,
        query: &[(&str, String)],
        from: &PageStart,
    ) -> Result<Page, TargetError> {
        match self.fetch_page(url, query, from).await? {
            Listed::Page(page) => Ok(page),
            Listed::Missing(body) => Err(not_found(url, &body)),
        }
    }

    /// One page, or the body of iManage's 404 when the list itself is not there.
    async fn fetch_page(
        &self,
        url: &str,
        query: &[(&str, String)],
        from: &PageStart,
    ) -> Result<Listed, TargetError> {
        let mut q = query.to_vec();
        match from {
            PageStart::First => {}
            PageStart::Cursor(c) => q.push(("cursor", c.clone())),
            PageStart::Offset(o) => q.push(("offset", o.to_string())),
        }
        let answer = self.call(reqwest::Method::GET, url, &q, None).await?;
        if answer.status == 404 {
            return Ok(Listed::Missing(answer.body));
        }
        Ok(Listed::Page(Page::from_body(&answer.body)))
    }

    /// Every item of a GET list, following cursors, else offsets up to `total_count`.
    /// Without either, a page shorter than `limit` ends the list when
    /// `short_page_ends`; otherwise offsets are followed until an empty page, because a
    /// server may send fewer than asked and a list read for reconciliation must not
    /// stop short (at the cost of one more request).
    pub async fn list_all(
        &self,
        url: &str,
        query: &[(&str, String)],
        limit: usize,
        short_page_ends: bool,
    ) -> Result<Vec<Value>, TargetError> {
        match self.read_all(url, query, limit, short_page_ends).await? {
            Ok(items) => Ok(items),
            Err(body) => Err(not_found(url, &body)),
        }
    }

    /// [`ImanageClient::list_all`] of a list that may not exist, such as the members of a
    /// group iManage does not have: `None` when iManage answers 404 for it.
    pub async fn list_all_if_found(
        &self,
        url: &str,
        query: &[(&str, String)],
        limit: usize,
        short_page_ends: bool,
    ) -> Result<Option<Vec<Value>>, TargetError> {
        Ok(self
            .read_all(url, query, limit, short_page_ends)
            .await?
            .ok())
    }

    /// The pages of a list, or the 404 body when the list is not there. A 404 after the
    /// first page means the list went away while being read: retry the whole read.
    async fn read_all(
        &self,
        url: &str,
        query: &[(&str, String)],
        limit: usize,
        short_page_ends: bool,
    ) -> Result<Result<Vec<Value>, Value>, TargetError> {
        let mut q = query.to_vec();
        q.push(("limit", limit.to_string()));
        q.push(("total", "true".to_string()));
        let mut out: Vec<Value> = Vec::new();
        let mut from = PageStart::First;
        loop {
            let page = match self.fetch_page(url, &q, &from).await? {
                Listed::Page(page) => page,
                Listed::Missing(body) if from == PageStart::First => return Ok(Err(body)),
                Listed::Missing(body) => {
                    return Err(TargetError::Transient {
                        message: format!(
                            "{url} went away while it was read: {}",
                            describe_error(&body.to_string())
                        ),
                        retry_after: None,
                    });
                }
            };
            let n = page.items.len();
            // A server that ignores `offset` sends the first page again: stop rather
            // than loop forever.
            if matches!(from, PageStart::Offset(_)) && n > 0 && out.first() == page.items.first() {
                return Ok(Ok(out));
            }
            out.extend(page.items);
            from = match (page.cursor, page.total) {
                (Some(c), _) => PageStart::Cursor(c),
                (None, Some(total)) if out.len() < total && n > 0 => PageStart::Offset(out.len()),
                (None, None) if n == limit || (n > 0 && !short_page_ends) => {
                    PageStart::Offset(out.len())
                }
                _ => return Ok(Ok(out)),
            };
        }
    }

    /// The deployment, discovered once from `GET /api`; a configured library wins over
    /// the account's preferred one.
    pub async fn discover(&self) -> Result<Discovery, TargetError> {
        self.discovered
            .get_or_try_init(|| async {
                let answer = self
                    .call(
                        reqwest::Method::GET,
                        &format!("{}/api", self.host),
                        &[],
                        None,
                    )
                    .await?;
                if answer.status == 404 {
                    return Err(TargetError::Permanent {
                        message: format!("{}/api not found: is url the iManage host?", self.host),
                    });
                }
                let v = answer.body;
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
                let account = v["data"]["user"]["id"].as_str().map(str::to_uppercase);
                Ok(Discovery {
                    customer_id: cid,
                    library,
                    account,
                })
            })
            .await
            .cloned()
    }

    /// `(…/customers/{cid}, library)`.
    pub async fn base(&self) -> Result<(String, String), TargetError> {
        let d = self.discover().await?;
        Ok((
            format!(
                "{}/work/api/v2/customers/{}",
                self.host,
                super::ids::segment(&d.customer_id)
            ),
            d.library,
        ))
    }
}

/// `url` with `query` appended, every value percent-encoded: a workitem value such as
/// `x&custom2=y` stays one value and cannot add a parameter.
fn with_query(url: &str, query: &[(&str, String)]) -> Result<url::Url, TargetError> {
    let mut u = url::Url::parse(url).map_err(|e| TargetError::Permanent {
        message: format!("{url} is not a URL: {e}"),
    })?;
    if !query.is_empty() {
        u.query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    Ok(u)
}

/// A page of a list, or iManage's 404 body when the list is not there.
enum Listed {
    Page(Page),
    Missing(Value),
}

/// The permanent error for a list iManage does not have.
fn not_found(url: &str, body: &Value) -> TargetError {
    TargetError::Permanent {
        message: format!("{url} not found: {}", describe_error(&body.to_string())),
    }
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart {
    First,
    Cursor(String),
    Offset(usize),
}

/// iManage's error envelope as one line: `CODE: message (field: CODE message)`.
pub fn describe_error(body: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn query_values_cannot_add_parameters() {
        let u = with_query(
            "https://dms.example/w",
            &[
                ("custom1", "1&custom2=x\n]".to_string()),
                ("name", "a b".to_string()),
            ],
        )
        .unwrap();
        let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("custom1".to_string(), "1&custom2=x\n]".to_string()),
                ("name".to_string(), "a b".to_string())
            ]
        );
    }

    #[test]
    fn both_list_shapes_and_both_cursor_places_are_read() {
        let get = serde_json::json!({"data": {"results": [{"id": 1}, {"id": 2}], "cursor": "c2"}});
        let page = Page::from_body(&get);
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.cursor.as_deref(), Some("c2"));
        let post = serde_json::json!({"data": [{"id": 3}], "cursor": "c9"});
        let page = Page::from_body(&post);
        assert_eq!(page.items, [serde_json::json!({"id": 3})]);
        assert_eq!(page.cursor.as_deref(), Some("c9"));
        let last = serde_json::json!({"data": {"results": []}, "cursor": ""});
        assert!(Page::from_body(&last).cursor.is_none());
        assert!(Page::from_body(&serde_json::Value::Null).items.is_empty());
    }
}
