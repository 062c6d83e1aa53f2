//! Why a workspace could not be resolved, with the HTTP status each reason answers.

use crate::template::EvalError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error("no repository named {name:?} (configured: {})", known.join(", "))]
    UnknownRepository { name: String, known: Vec<String> },
    #[error("workitem must be a JSON object, e.g. {{\"title\": \"…\"}}")]
    BadWorkitem,
    #[error("the workitem has no value for `{path}`, which the {repository} search needs")]
    Missing { repository: String, path: String },
    #[error("{0}")]
    NotScalar(String),
    #[error("no workspace matches {search} in {}", libraries.join(", "))]
    NoWorkspace {
        search: String,
        libraries: Vec<String>,
    },
    #[error("workspace {workspace} has no folder {folder:?}{}", if found.is_empty() { " (it has no folders)".to_string() } else { format!(" (folders there: {})", found.join(", ")) })]
    NoFolder {
        workspace: String,
        folder: String,
        found: Vec<String>,
    },
    /// iManage has no such workspace or folder, or not one the person may see (it
    /// answers both the same way, so a wall's existence does not leak).
    #[error("iManage has no workspace or folder {id}{}", user.as_ref().map(|u| format!(" that {u} may see")).unwrap_or_default())]
    NoContainer { id: String, user: Option<String> },
    #[error("{0} is not a workspace id like \"ACTIVE!1002\"")]
    BadWorkspaceId(String),
    /// The repository's target is not running (empty: none is configured).
    #[error("{}", no_target(.0))]
    NoTarget(String),
    #[error("there are several iManage targets; say which with ?target= (one of {})", .0.join(", "))]
    WhichTarget(Vec<String>),
    #[error("iManage failed: {0}")]
    Upstream(String),
    /// A request on behalf of a person who has no linked account, at a target that does
    /// not let the service account act for people.
    #[error("{user} has not linked an account to {target}, and {target} does not let the service account act for people (iManage's own security must decide what they see){}", link_url.as_ref().map(|u| format!("; link it at {u}")).unwrap_or_else(|| "; the target has no account linking configured ([targets.auth] authorize_url)".into()))]
    NotLinked {
        user: String,
        target: String,
        link_url: Option<String>,
    },
}

fn no_target(name: &str) -> String {
    if name.is_empty() {
        "no iManage target is configured".to_owned()
    } else {
        format!("no iManage target named {name:?} is running")
    }
}

impl ResolveError {
    pub fn from_eval(repository: &str, e: EvalError) -> Self {
        match e {
            EvalError::Missing { path } => ResolveError::Missing {
                repository: repository.to_owned(),
                path,
            },
            other @ EvalError::NotScalar { .. } => ResolveError::NotScalar(other.to_string()),
        }
    }

    /// The HTTP status this answers with.
    pub fn status(&self) -> u16 {
        match self {
            ResolveError::UnknownRepository { .. }
            | ResolveError::NoWorkspace { .. }
            | ResolveError::NoFolder { .. }
            | ResolveError::NoContainer { .. } => 404,
            ResolveError::BadWorkitem
            | ResolveError::Missing { .. }
            | ResolveError::NotScalar(_)
            | ResolveError::BadWorkspaceId(_)
            | ResolveError::WhichTarget(_) => 422,
            ResolveError::NoTarget(_) => 503,
            ResolveError::NotLinked { .. } => 403,
            ResolveError::Upstream(_) => 502,
        }
    }

    /// A stable name for the reason, for programs that call the API.
    pub fn code(&self) -> &'static str {
        match self {
            ResolveError::UnknownRepository { .. } => "unknown_repository",
            ResolveError::BadWorkitem => "bad_workitem",
            ResolveError::Missing { .. } => "missing_value",
            ResolveError::NotScalar(_) => "not_a_value",
            ResolveError::NoWorkspace { .. } => "no_workspace",
            ResolveError::NoFolder { .. } => "no_folder",
            ResolveError::NoContainer { .. } => "no_container",
            ResolveError::NotLinked { .. } => "not_linked",
            ResolveError::BadWorkspaceId(_) => "bad_workspace_id",
            ResolveError::NoTarget(_) => "no_target",
            ResolveError::WhichTarget(_) => "which_target",
            ResolveError::Upstream(_) => "upstream",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_status_and_says_what_to_do() {
        let which = ResolveError::WhichTarget(vec!["a".into(), "b".into()]);
        assert_eq!(which.status(), 422);
        assert_eq!(
            which.to_string(),
            "there are several iManage targets; say which with ?target= (one of a, b)"
        );
        assert_eq!(
            ResolveError::NoTarget(String::new()).to_string(),
            "no iManage target is configured"
        );
        assert_eq!(ResolveError::NoTarget("dms".into()).status(), 503);
        let missing = ResolveError::from_eval(
            "matters",
            EvalError::Missing {
                path: "workitem.reference".into(),
            },
        );
        assert_eq!(missing.status(), 422);
        assert_eq!(
            missing.to_string(),
            "the workitem has no value for `workitem.reference`, which the matters search needs"
        );
        assert_eq!(ResolveError::Upstream("x".into()).status(), 502);
    }
}
