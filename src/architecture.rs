//! Keeps the one direction of dependency that DESIGN.md describes: every top-level
//! module has a rank, and production code may name (`crate::x`) only modules of a
//! lower rank. A new edge that points up or sideways fails here, so it is a decision
//! someone makes in review (move the type down, or change the table) rather than drift.
//!
//! Test code is exempt: `tests.rs`, `conformance.rs` and everything after a trailing
//! `#[cfg(test)] mod …` block may reach anywhere, as test support has to.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. Read it as "may use everything above it in this list,
/// and nothing at its own level or below".
const RANKS: &[(&str, u8)] = &[
    // Vocabulary and ambient services: no dependencies inside the crate.
    ("scim", 0),
    ("clock", 0),
    ("entropy", 0),
    ("metrics", 0),
    // Canonical JSON: the one byte form the log's records are written and hashed in.
    ("canonical", 0),
    // The template language, over SCIM values.
    ("template", 1),
    // The tamper-evident chain of the provisioning log (pure; keys from entropy).
    ("audit", 1),
    // The provisioning log's records: pure, over scim.
    ("provlog", 1),
    // Pure rules (identity) and durable state (store), side by side.
    ("identity", 2),
    ("store", 2),
    // Services on the store, and the configuration that names them all.
    ("tokens", 3),
    ("vault", 3),
    ("config", 3),
    // The SCIM front's service layer, and the outbox's delivery engine.
    ("directory", 4),
    ("delivery", 4),
    // The audit chain kept: chaining, seals with the vault's key, pruning, export.
    ("journal", 4),
    // Downstream credentials, then the targets that use them.
    ("oauth", 5),
    ("targets", 6),
    ("resolver", 7),
    // HTTP, the operator's console over it, then the composition root, then the
    // command line.
    ("server", 8),
    ("console", 9),
    ("app", 10),
    ("cli", 11),
];

fn rank(module: &str) -> Option<u8> {
    RANKS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

/// Production source of one file: comments dropped (doc links name modules freely)
/// and the trailing test module cut off.
fn production_text(text: &str) -> String {
    let code_end = text
        .match_indices("#[cfg(test)]")
        .find(|(at, _)| {
            let rest = text[at + "#[cfg(test)]".len()..].trim_start();
            let rest = rest.strip_prefix("pub ").unwrap_or(rest);
            // `mod x {` (inline test module), not `mod x;` (a file, checked on its own
            // terms by name) nor an attribute on some other item.
            rest.starts_with("mod ")
                && rest.split_once(['{', ';']).is_some_and(|(head, _)| {
                    !head.contains('\n') && rest[head.len()..].starts_with('{')
                })
        })
        .map_or(text.len(), |(at, _)| at);
    text[..code_end]
        .lines()
        .map(|line| match comment_start(line) {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a line's `//` comment starts: not the `//` of a URL in a string
/// (`"http://…"`), which would hide the rest of the line from the scan.
fn comment_start(line: &str) -> Option<usize> {
    line.match_indices("//")
        .map(|(at, _)| at)
        .find(|&at| !line[..at].ends_with(':'))
}

/// Top-level modules named in `text` as `crate::x` or `crate::{x, y::{…}}`.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => found.extend(group_items(group).map(leading_ident)),
            None => {
                found.insert(leading_ident(rest));
            }
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// The comma-separated items of a `{…}` group (its opening brace already consumed),
/// nested groups left inside their item.
fn group_items(group: &str) -> impl Iterator<Item = &str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, ch) in group.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.into_iter().map(str::trim_start)
}

fn leading_ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The production edges `(from, to)` of the crate, from its source files.
fn edges() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges = BTreeSet::new();
    for path in files {
        let Ok(relative) = path.strip_prefix(&src) else {
            continue;
        };
        let file_name = relative.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if matches!(file_name, "tests.rs" | "conformance.rs") {
            continue;
        }
        let Some(module) = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|m| m.trim_end_matches(".rs").to_string())
        else {
            continue;
        };
        if matches!(module.as_str(), "lib" | "main" | "architecture") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for to in named_modules(&production_text(&text)) {
            if to != module {
                edges.insert((module.clone(), to));
            }
        }
    }
    edges
}

#[test]
fn every_module_has_a_rank() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .collect();
    assert!(modules.len() > 10, "read src/lib.rs: {modules:?}");
    for m in modules {
        assert!(
            rank(m).is_some(),
            "module `{m}` has no rank in architecture.rs"
        );
    }
}

#[test]
fn dependencies_point_down_the_layers() {
    let edges = edges();
    // The scan itself works: the command line uses the server, which uses the directory.
    assert!(
        edges.contains(&("cli".into(), "server".into())),
        "{edges:?}"
    );
    assert!(
        edges.contains(&("server".into(), "directory".into())),
        "{edges:?}"
    );
    let wrong: Vec<String> = edges
        .iter()
        .filter(|(from, to)| match (rank(from), rank(to)) {
            (Some(f), Some(t)) => t >= f,
            // A name that is not a module (`crate::SomeReexport`) is not an edge.
            (Some(_), None) => false,
            (None, _) => true,
        })
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "edges against DESIGN.md's direction (see the table in src/architecture.rs): {wrong:?}"
    );
}

#[test]
fn the_scan_reads_grouped_imports_and_skips_comments_and_tests() {
    let text = "use crate::{scim::Value, store::{Lookup, Store}};\n\
                // crate::server in a comment\n\
                /// [`crate::cli`] in a doc link\n\
                fn f() { crate::clock::now(); }\n\
                let u = \"http://x\"; crate::entropy::seed(); // crate::app\n\
                #[cfg(test)]\nmod tests {\n use crate::targets::X;\n}\n";
    let found = named_modules(&production_text(text));
    let found: Vec<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(found, ["clock", "entropy", "scim", "store"]);
}
