//! Workspace resolution: which iManage workspace (and folder) holds the documents of a
//! piece of work, found through each repository's templated search.
//!
//! A repository's search is a title template (default search: the first workspace whose
//! whole title matches, trimmed and ignoring case) or profile fields (advanced search:
//! `custom1=[workitem.client.reference], custom2=[workitem.reference]`). Libraries are
//! searched in the configured order and the first match in server order wins. Results
//! are cached for a while; errors drop the cached entry.

mod cache;
mod error;
mod query;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::clock::Clock;
use crate::config::{AuthHeader, RepositoryConfig, ResolverConfig, WorkspaceSearch};
use crate::delivery::TargetError;
use crate::oauth::{Credentials, Linker};
use crate::targets::imanage::{ImanageClient, PageStart, segment};

pub use cache::Cache;
pub use error::ResolveError;
pub use query::Query;

/// Results asked for per search page: enough that a search usually takes one request.
const PAGE_SIZE: usize = 500;
/// Pages read per library before giving up on a word search that matches too much.
const MAX_PAGES: usize = 20;

/// What to resolve.
#[derive(Debug, Clone)]
pub struct Request {
    pub repository: String,
    pub work_type: Option<String>,
    pub workitem: Value,
    /// Skip the cache's answer (a fresh answer is still stored).
    pub fresh: bool,
    /// The person the search is made for (their userName, as their account link is
    /// named): iManage answers with that person's rights. `None`: the service account.
    pub user: Option<String>,
}

/// How one target's requests are made on behalf of people.
#[derive(Clone)]
pub struct People {
    /// People's linked accounts; `None` when the target links none.
    pub linker: Option<Arc<Linker>>,
    /// Where the token goes.
    pub header: AuthHeader,
    /// Whether a person without a link may be served by the service account.
    pub service_fallback: bool,
    /// The bridge's public URL, for the link a person without one is pointed to.
    pub public_url: String,
}

/// Where the work's documents go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolution {
    pub workspace_id: String,
    pub name: String,
    pub library: String,
    pub folder_id: Option<String>,
    pub folder_path: Option<String>,
    /// `"title"` (default search) or `"fields"` (advanced search).
    pub matched_by: &'static str,
    /// The search as run, e.g. `custom1="12345", custom2="00001"`.
    pub query: String,
}

/// A resolution and how it was reached.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub resolution: Resolution,
    pub cached: bool,
    /// Every request sent to iManage, in order (none when cached).
    pub requests: Vec<String>,
    /// Whose rights the search ran with: the person, or `None` for the service account.
    pub acted_as: Option<String>,
}

/// A folder under a workspace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Folder {
    pub id: String,
    pub name: String,
}

/// A document directly in a workspace or folder, as the person asking may see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub id: String,
    pub name: String,
    /// iManage's document number and version, when it gives them.
    pub document_number: Option<String>,
    pub version: Option<String>,
    /// The file type (`extension`, e.g. `docx`).
    pub extension: Option<String>,
}

/// Resolves workspaces for the configured repositories.
pub struct Resolver {
    repositories: Vec<RepositoryConfig>,
    clients: HashMap<String, Arc<ImanageClient>>,
    /// Per target: how requests are made for people.
    people: HashMap<String, People>,
    resolutions: Cache<Resolution>,
    folders: Cache<Vec<Folder>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("repositories", &self.repositories.len())
            .field("cached", &self.resolutions.len())
            .finish_non_exhaustive()
    }
}

/// The settings one resolution uses, after a work type's overrides.
struct Plan<'a> {
    repository: &'a RepositoryConfig,
    work_type: Option<&'a str>,
    search: &'a WorkspaceSearch,
    folder: Option<&'a str>,
    libraries: &'a [String],
}

fn upstream(e: TargetError) -> ResolveError {
    ResolveError::Upstream(e.to_string())
}

impl Resolver {
    /// `clients` are the iManage targets' clients, by target name.
    pub fn new(
        repositories: Vec<RepositoryConfig>,
        settings: &ResolverConfig,
        clients: HashMap<String, Arc<ImanageClient>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Resolver {
            repositories,
            clients,
            people: HashMap::new(),
            resolutions: Cache::new(settings.cache_ttl, settings.cache_size),
            folders: Cache::new(settings.cache_ttl, settings.cache_size),
            clock,
        }
    }

    /// The same resolver acting for people through their linked accounts.
    pub fn with_people(mut self, people: HashMap<String, People>) -> Self {
        self.people = people;
        self
    }

    /// The client a request uses at `target`: the service account's, or, for a person,
    /// one acting as them through their linked account. The second value is whose
    /// rights apply (`None`: the service account's).
    async fn client_for(
        &self,
        target: &str,
        user: Option<&str>,
    ) -> Result<(Arc<ImanageClient>, Option<String>), ResolveError> {
        let service = Arc::clone(self.client(target)?);
        let Some(user) = user.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok((service, None));
        };
        let people = self.people.get(target);
        let linker = people.and_then(|p| p.linker.clone());
        let linked = match &linker {
            Some(l) => l
                .is_linked(user)
                .await
                .map_err(|e| ResolveError::Upstream(e.to_string()))?,
            None => false,
        };
        match (linker, people) {
            (Some(linker), Some(p)) if linked => {
                let credentials = Credentials::Linked {
                    linker,
                    user: user.to_owned(),
                    header: p.header,
                };
                let client = service.acting_as(credentials).await.map_err(upstream)?;
                Ok((Arc::new(client), Some(user.to_owned())))
            }
            (_, Some(p)) if p.service_fallback => Ok((service, None)),
            (linker, p) => Err(ResolveError::NotLinked {
                user: user.to_owned(),
                target: target.to_owned(),
                link_url: linker.zip(p).map(|(l, p)| l.link_url(&p.public_url, user)),
            }),
        }
    }

    pub fn repositories(&self) -> &[RepositoryConfig] {
        &self.repositories
    }

    fn plan<'a>(&'a self, req: &'a Request) -> Result<Plan<'a>, ResolveError> {
        let repository = self
            .repositories
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(req.repository.trim()))
            .ok_or_else(|| ResolveError::UnknownRepository {
                name: req.repository.clone(),
                known: self.repositories.iter().map(|r| r.name.clone()).collect(),
            })?;
        let over = req.work_type.as_deref().and_then(|w| {
            repository
                .work_types
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(w.trim()))
        });
        Ok(Plan {
            repository,
            work_type: over.map(|o| o.name.as_str()),
            search: over
                .and_then(|o| o.search.as_ref())
                .unwrap_or(&repository.search),
            folder: over
                .and_then(|o| o.folder.as_deref())
                .or(repository.folder.as_deref()),
            libraries: over
                .and_then(|o| o.libraries.as_deref())
                .unwrap_or(&repository.libraries),
        })
    }

    fn client(&self, target: &str) -> Result<&Arc<ImanageClient>, ResolveError> {
        self.clients
            .get(target)
            .ok_or_else(|| ResolveError::NoTarget(target.to_owned()))
    }

    /// Resolves one request: from the cache unless `fresh`, else by searching.
    pub async fn resolve(&self, req: &Request) -> Result<Outcome, ResolveError> {
        if !req.workitem.is_object() {
            return Err(ResolveError::BadWorkitem);
        }
        let plan = self.plan(req)?;
        let query = Query::render(plan.search, &req.workitem)
            .map_err(|e| ResolveError::from_eval(&plan.repository.name, e))?;
        let (client, acted_as) = self
            .client_for(&plan.repository.target, req.user.as_deref())
            .await?;
        // Answers are per person: what one person may see is never served to another.
        let key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{query}",
            acted_as.as_deref().unwrap_or(""),
            plan.repository.name,
            plan.work_type.unwrap_or(""),
            query.kind()
        );
        if !req.fresh
            && let Some(resolution) = self.resolutions.get(&key, self.clock.now())
        {
            return Ok(Outcome {
                resolution,
                cached: true,
                requests: Vec::new(),
                acted_as,
            });
        }
        let mut requests = Vec::new();
        let result = self.search(&client, &plan, &query, &mut requests).await;
        match result {
            Ok(resolution) => {
                self.resolutions
                    .put(key, resolution.clone(), self.clock.now());
                Ok(Outcome {
                    resolution,
                    cached: false,
                    requests,
                    acted_as,
                })
            }
            Err(e) => {
                self.resolutions.remove(&key);
                Err(e)
            }
        }
    }

    async fn search(
        &self,
        client: &ImanageClient,
        plan: &Plan<'_>,
        query: &Query,
        requests: &mut Vec<String>,
    ) -> Result<Resolution, ResolveError> {
        let (base, default_library) = client.base().await.map_err(upstream)?;
        let libraries: Vec<String> = if plan.libraries.is_empty() {
            vec![default_library]
        } else {
            plan.libraries.to_vec()
        };
        for lib in &libraries {
            let url = format!("{base}/libraries/{}/workspaces", segment(lib));
            let mut params = query.params();
            params.push(("limit", PAGE_SIZE.to_string()));
            let mut from = PageStart::First;
            for _ in 0..MAX_PAGES {
                requests.push(describe("GET", &url, &params, &from));
                let page = client.page(&url, &params, &from).await.map_err(upstream)?;
                let n = page.items.len();
                if let Some(ws) = page.items.iter().find(|w| query.accepts(w)) {
                    return self
                        .found(client, &base, lib, ws, plan, query, requests)
                        .await;
                }
                let seen = match from {
                    PageStart::Offset(o) => o + n,
                    _ => n,
                };
                // A search stops at a short page unless the server says there is more,
                // so a library without the workspace costs one request.
                from = match (page.cursor, page.total) {
                    (Some(c), _) => PageStart::Cursor(c),
                    (None, Some(total)) if seen < total && n > 0 => PageStart::Offset(seen),
                    (None, None) if n == PAGE_SIZE => PageStart::Offset(seen),
                    _ => break,
                };
            }
        }
        Err(ResolveError::NoWorkspace {
            search: query.to_string(),
            libraries,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn found(
        &self,
        client: &ImanageClient,
        base: &str,
        lib: &str,
        ws: &Value,
        plan: &Plan<'_>,
        query: &Query,
        requests: &mut Vec<String>,
    ) -> Result<Resolution, ResolveError> {
        let workspace_id = text(&ws["id"]).ok_or_else(|| {
            ResolveError::Upstream("a workspace in the search results has no id".into())
        })?;
        let name = text(&ws["name"]).unwrap_or_default();
        let library = text(&ws["database"]).unwrap_or_else(|| lib.to_owned());
        let (folder_id, folder_path) = match plan.folder {
            None => (None, None),
            Some(path) => {
                let id = self
                    .folder_by_path(client, base, &library, &workspace_id, path, requests)
                    .await?;
                (Some(id), Some(path.to_owned()))
            }
        };
        Ok(Resolution {
            workspace_id,
            name,
            library,
            folder_id,
            folder_path,
            matched_by: query.kind(),
            query: query.to_string(),
        })
    }

    /// The id of the folder at `path` (`/`-separated names) under a workspace.
    async fn folder_by_path(
        &self,
        client: &ImanageClient,
        base: &str,
        lib: &str,
        workspace_id: &str,
        path: &str,
        requests: &mut Vec<String>,
    ) -> Result<String, ResolveError> {
        let mut container = format!(
            "{base}/libraries/{}/workspaces/{}/children",
            segment(lib),
            segment(workspace_id)
        );
        let mut id = String::new();
        for (depth, step) in path.split('/').enumerate() {
            let children = self.children(client, &container, requests).await?;
            let found = children
                .iter()
                .find(|f| f.name.trim().to_lowercase() == step.trim().to_lowercase())
                .ok_or_else(|| ResolveError::NoFolder {
                    workspace: workspace_id.to_owned(),
                    folder: path
                        .split('/')
                        .take(depth + 1)
                        .collect::<Vec<_>>()
                        .join("/"),
                    found: children.iter().map(|f| f.name.clone()).collect(),
                })?;
            id = found.id.clone();
            container = format!(
                "{base}/libraries/{}/folders/{}/children",
                segment(lib),
                segment(&id)
            );
        }
        Ok(id)
    }

    /// The folders directly under a workspace or folder, cached per person (the
    /// client's identity is part of the key).
    async fn children(
        &self,
        client: &ImanageClient,
        container: &str,
        requests: &mut Vec<String>,
    ) -> Result<Vec<Folder>, ResolveError> {
        let key = format!("{}\u{0}{container}", client.acting_for().unwrap_or(""));
        if let Some(hit) = self.folders.get(&key, self.clock.now()) {
            return Ok(hit);
        }
        let params = [("exclude_docs", "true".to_string())];
        requests.push(describe("GET", container, &params, &PageStart::First));
        let items = match client
            .list_all_if_found(container, &params, PAGE_SIZE, true)
            .await
        {
            Ok(Some(items)) => items,
            Ok(None) => {
                self.folders.remove(&key);
                return Err(no_container(client, container));
            }
            Err(e) => {
                self.folders.remove(&key);
                return Err(upstream(e));
            }
        };
        let folders: Vec<Folder> = items
            .iter()
            .filter(|i| i["wstype"].as_str().is_none_or(|t| t != "document"))
            .filter_map(|i| {
                Some(Folder {
                    id: text(&i["id"])?,
                    name: text(&i["name"]).unwrap_or_default(),
                })
            })
            .collect();
        self.folders.put(key, folders.clone(), self.clock.now());
        Ok(folders)
    }

    /// The folders directly under workspace `workspace_id` (`LIBRARY!number`), or under
    /// the folder at `path` within it; as `user` when given.
    pub async fn list_folders(
        &self,
        target: Option<&str>,
        workspace_id: &str,
        path: Option<&str>,
        user: Option<&str>,
    ) -> Result<Vec<Folder>, ResolveError> {
        let (client, container, mut requests) =
            self.container(target, workspace_id, path, user).await?;
        self.children(&client, &container, &mut requests).await
    }

    /// The documents directly in workspace `workspace_id`, or in the folder at `path`
    /// within it; as `user` when given. Never cached: what a person may open changes.
    pub async fn list_documents(
        &self,
        target: Option<&str>,
        workspace_id: &str,
        path: Option<&str>,
        user: Option<&str>,
    ) -> Result<Vec<Document>, ResolveError> {
        let (client, container, _) = self.container(target, workspace_id, path, user).await?;
        let items = client
            .list_all_if_found(&container, &[], PAGE_SIZE, true)
            .await
            .map_err(upstream)?
            .ok_or_else(|| no_container(&client, &container))?;
        Ok(items
            .iter()
            .filter(|i| i["wstype"].as_str() == Some("document"))
            .filter_map(|i| {
                Some(Document {
                    id: text(&i["id"])?,
                    name: text(&i["name"]).unwrap_or_default(),
                    document_number: text(&i["document_number"]),
                    version: text(&i["version"]),
                    extension: text(&i["extension"]).or_else(|| text(&i["type"])),
                })
            })
            .collect())
    }

    /// The client for `user` at the target holding `workspace_id`, and the children
    /// URL of the workspace or of the folder at `path` in it (found by name).
    async fn container(
        &self,
        target: Option<&str>,
        workspace_id: &str,
        path: Option<&str>,
        user: Option<&str>,
    ) -> Result<(Arc<ImanageClient>, String, Vec<String>), ResolveError> {
        let (lib, _) = workspace_id
            .split_once('!')
            .filter(|(l, n)| !l.is_empty() && !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| ResolveError::BadWorkspaceId(workspace_id.to_owned()))?;
        let target = match target {
            Some(t) => t.to_owned(),
            None => match self.clients.keys().collect::<Vec<_>>().as_slice() {
                [only] => (*only).clone(),
                [] => return Err(ResolveError::NoTarget(String::new())),
                many => {
                    let mut names: Vec<String> = many.iter().map(|n| (*n).clone()).collect();
                    names.sort();
                    return Err(ResolveError::WhichTarget(names));
                }
            },
        };
        let (client, _) = self.client_for(&target, user).await?;
        let (base, _) = client.base().await.map_err(upstream)?;
        let mut requests = Vec::new();
        let container = match path.map(str::trim).filter(|p| !p.is_empty()) {
            None => format!(
                "{base}/libraries/{}/workspaces/{}/children",
                segment(lib),
                segment(workspace_id)
            ),
            Some(p) => {
                let id = self
                    .folder_by_path(&client, &base, lib, workspace_id, p, &mut requests)
                    .await?;
                format!(
                    "{base}/libraries/{}/folders/{}/children",
                    segment(lib),
                    segment(&id)
                )
            }
        };
        Ok((client, container, requests))
    }
}

/// The workspace or folder whose `…/{id}/children` URL iManage answered 404 for.
fn no_container(client: &ImanageClient, children_url: &str) -> ResolveError {
    let id = url::Url::parse(children_url)
        .ok()
        .and_then(|u| {
            let segments: Vec<String> = u.path_segments()?.map(str::to_owned).collect();
            let id = segments.iter().rev().nth(1)?;
            Some(
                percent_encoding::percent_decode_str(id)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
        .unwrap_or_else(|| children_url.to_owned());
    ResolveError::NoContainer {
        id,
        user: client.acting_for().map(str::to_owned),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A request as `GET url?query`, for `--explain`.
fn describe(method: &str, url: &str, params: &[(&str, String)], from: &PageStart) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    match from {
        PageStart::First => {}
        PageStart::Cursor(c) => {
            q.append_pair("cursor", c);
        }
        PageStart::Offset(o) => {
            q.append_pair("offset", &o.to_string());
        }
    }
    format!("{method} {url}?{}", q.finish())
}
