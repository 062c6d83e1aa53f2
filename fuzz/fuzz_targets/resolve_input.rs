//! Any bytes as a workitem: rendering a repository's searches must give a query or a
//! clear error naming a path, never panic; a rendered query has no blank values, and
//! every value survives URL encoding as exactly one parameter, so no workitem can add
//! or change a search parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_bridge::config::{WorkspaceSearch, is_search_field};
use scim_bridge::resolver::Query;
use scim_bridge::template::{Template, parse_assignments};

fuzz_target!(|data: &[u8]| {
    let Ok(workitem) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let searches = [
        WorkspaceSearch::Title(Template::parse("[workitem.title | trim]").expect("title")),
        WorkspaceSearch::Fields(
            parse_assignments(
                "custom1=[workitem.client.reference], custom2=[workitem.reference | default(\"0\")], name=x [workitem.title]",
                is_search_field,
                "",
                &["workitem"],
            )
            .expect("fields"),
        ),
    ];
    for search in &searches {
        match Query::render(search, &workitem) {
            Ok(q) => {
                let params = q.params();
                let mut url = url::Url::parse("https://dms.example/w").expect("url");
                url.query_pairs_mut()
                    .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
                let back: Vec<(String, String)> = url.query_pairs().into_owned().collect();
                assert_eq!(back.len(), params.len());
                for ((k, v), (bk, bv)) in params.iter().zip(&back) {
                    assert!(!v.trim().is_empty());
                    assert_eq!((*k, v.as_str()), (bk.as_str(), bv.as_str()));
                }
                let _ = q.to_string();
            }
            Err(e) => assert!(e.path().starts_with("workitem")),
        }
    }
});
