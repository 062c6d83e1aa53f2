//! The alert rules and the Grafana dashboard shipped in `deploy/` (#20 item 5): promtool
//! checks and unit-tests the rules and parses every dashboard query, and a running
//! daemon exports every metric they name, so renaming a metric fails here rather than
//! silently emptying an operator's alert or panel.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::InProcess;
use common::fake_webhook::{self, SECRET};
use serde_json::Value;

const RULES: &str = "prometheus/scim-bridge-alerts.yml";
const RULE_TESTS: &str = "prometheus/scim-bridge-alerts.test.yml";
const DASHBOARD: &str = "grafana/scim-bridge-dashboard.json";

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(deploy(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// promtool from Debian's `prometheus` package; `None` (the test skips, saying so)
/// unless CI requires it (`SCIM_BRIDGE_REQUIRE_PROMTOOL`, or the peers' switch).
#[allow(clippy::disallowed_methods)] // the test run's own switches, not the daemon's
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let required = ["SCIM_BRIDGE_REQUIRE_PROMTOOL", "SCIM_BRIDGE_REQUIRE_PEERS"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        assert!(
            !required,
            "promtool is not installed (apt-get install prometheus)"
        );
        eprintln!("skipped: promtool is not installed (apt-get install prometheus)");
    }
    found
}

fn promtool_ok(promtool: &Path, args: &[&str], dir: &Path) -> String {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// The rules' `expr` values: one line (`expr: …`) or a block (`expr: |` and the more
/// indented lines under it), which is every form the file uses.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let rest = rest.trim();
        if rest != "|" && rest != ">" {
            out.push(rest.to_owned());
            continue;
        }
        let mut block = String::new();
        while let Some(next) = lines.peek() {
            let deeper = next.len() - next.trim_start().len() > indent;
            if !(deeper || next.trim().is_empty()) {
                break;
            }
            block.push_str(next.trim());
            block.push(' ');
            lines.next();
        }
        out.push(block);
    }
    out
}

/// The alert names the rules define.
fn alert_names(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert:"))
        .map(|n| n.trim().to_owned())
        .collect()
}

/// Every query of the dashboard: panel targets (rows' nested panels too) and the
/// template variables' queries.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    fn walk(panels: &Value, out: &mut Vec<String>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push(e.to_owned());
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().or(v["query"].as_str());
            out.push(q.expect("a query variable has a query").to_owned());
        }
    }
    out
}

/// The metric names a PromQL expression reads: the daemon's are all `scim_bridge_…`,
/// and label values in quotes are not names.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut unquoted = String::new();
    let mut quote = None;
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => {
                quote = Some(c);
                unquoted.push(' ');
            }
            (None, c) => unquoted.push(c),
        }
    }
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("scim_bridge_"))
        .map(str::to_owned)
        .collect()
}

/// What a `/metrics` text declares: each family's name, and a histogram's series.
fn exported(metrics: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        out.insert(name.to_owned());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                out.insert(format!("{name}{suffix}"));
            }
        }
    }
    out
}

#[test]
fn promtool_checks_and_unit_tests_the_alert_rules() {
    let Some(promtool) = promtool() else { return };
    let dir = deploy("prometheus");
    let checked = promtool_ok(
        &promtool,
        &["check", "rules", "scim-bridge-alerts.yml"],
        &dir,
    );
    let alerts = alert_names(&read(RULES)).len();
    assert!(
        checked.contains(&format!("SUCCESS: {alerts} rules found")),
        "{checked}"
    );
    promtool_ok(
        &promtool,
        &["test", "rules", "scim-bridge-alerts.test.yml"],
        &dir,
    );
}

/// Each alert is unit-tested at least twice: where it fires and where it must not.
#[test]
fn every_alert_has_promtool_test_cases() {
    let rules = read(RULES);
    let tests = read(RULE_TESTS);
    let alerts = alert_names(&rules);
    assert!(alerts.len() >= 12, "{alerts:?}");
    for alert in &alerts {
        let cases = tests
            .lines()
            .filter(|l| l.trim() == format!("alertname: {alert}"))
            .count();
        assert!(cases >= 2, "{alert}: {cases} test case(s) in {RULE_TESTS}");
    }
    assert_eq!(rule_exprs(&rules).len(), alerts.len(), "an expr not parsed");
}

/// The dashboard's queries, with Grafana's variables filled in, are valid PromQL:
/// promtool checks them as recording rules.
#[test]
fn promtool_accepts_every_dashboard_query() {
    let Some(promtool) = promtool() else { return };
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let queries: Vec<String> = dashboard_queries(&dashboard)
        .into_iter()
        .filter(|q| !q.starts_with("label_values("))
        .collect();
    for (i, q) in queries.iter().enumerate() {
        let q = q
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*")
            .replace("$target", ".*");
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {}\n",
            serde_json::to_string(&q).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard.yml"), rules).unwrap();
    let checked = promtool_ok(&promtool, &["check", "rules", "dashboard.yml"], dir.path());
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{checked}"
    );
}

#[test]
fn the_dashboard_parses_and_every_panel_reads_the_templated_data_source() {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("dashboard JSON");
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no {name} variable"))
    };
    assert_eq!(var("DS_PROMETHEUS")["type"], "datasource");
    assert_eq!(var("DS_PROMETHEUS")["query"], "prometheus");
    for name in ["instance", "target"] {
        assert_eq!(var(name)["type"], "query", "{name}");
        assert_eq!(var(name)["datasource"]["uid"], "${DS_PROMETHEUS}", "{name}");
    }
    let mut ids = BTreeSet::new();
    let mut panels = 0;
    for p in dashboard["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id: {title}"
        );
        assert!(p["gridPos"]["w"].as_u64().unwrap() > 0, "{title}");
        if p["type"] == "row" {
            continue;
        }
        panels += 1;
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        }
    }
    assert!(panels >= 20, "{panels} panels");
    // What the issue asks the dashboard to show, by the metric behind it.
    let named: BTreeSet<String> = dashboard_queries(&dashboard)
        .iter()
        .flat_map(|q| metric_names(q))
        .collect();
    for want in [
        "scim_bridge_http_requests_total",
        "scim_bridge_http_request_duration_seconds_bucket",
        "scim_bridge_deliveries_total",
        "scim_bridge_delivery_queue",
        "scim_bridge_delivery_oldest_age_seconds",
        "scim_bridge_dead_letters",
        "scim_bridge_guard_tripped",
        "scim_bridge_target_token_expiry_timestamp_seconds",
        "scim_bridge_dropped_attributes_total",
        "scim_bridge_config_reloads_total",
    ] {
        assert!(named.contains(want), "the dashboard does not show {want}");
    }
}

#[test]
fn metric_names_are_read_outside_quotes() {
    let names = metric_names(
        r#"sum by (target) (rate(scim_bridge_deliveries_total{outcome="scim_bridge_x"}[5m])) / scim_bridge_y"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["scim_bridge_deliveries_total", "scim_bridge_y"]
    );
    let exprs =
        rule_exprs("- alert: A\n  expr: |\n    a\n      b\n  for: 5m\n- alert: B\n  expr: c > 1\n");
    assert_eq!(exprs, ["a b ", "c > 1"]);
}

/// A daemon with a delivering target exports every metric the alert rules and the
/// dashboard name; a renamed or dropped metric fails here.
#[test]
fn every_metric_the_alerts_and_the_dashboard_read_is_exported() {
    let receiver = fake_webhook::new_receiver(0.0, 1);
    let url = fake_webhook::start_blocking(receiver);
    let d = InProcess::start_with_secrets(
        &format!(
            "[[targets]]\nname = \"hooks\"\nkind = \"webhook\"\nurl = \"{url}\"\nproviders = [\"entra\"]\nsigning_secret = {{ file = \"hook.secret\" }}\n"
        ),
        &[("hook.secret", SECRET)],
    );
    let metrics = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(d.metrics());
    let exported = exported(&metrics);

    let rules = read(RULES);
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let mut read_by: Vec<(String, &str)> = Vec::new();
    for e in rule_exprs(&rules) {
        read_by.extend(metric_names(&e).into_iter().map(|n| (n, RULES)));
    }
    for q in dashboard_queries(&dashboard) {
        read_by.extend(metric_names(&q).into_iter().map(|n| (n, DASHBOARD)));
    }
    assert!(read_by.len() >= 40, "too few names parsed: {read_by:?}");
    let missing: BTreeSet<_> = read_by
        .iter()
        .filter(|(name, _)| !exported.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "read but not exported: {missing:?}\n{metrics}"
    );
    // The per-target series the alerts join on carry the target label.
    for series in [
        "scim_bridge_guard_tripped{target=\"hooks\"}",
        "scim_bridge_guard_held_changes{target=\"hooks\"}",
        "scim_bridge_target_paused{target=\"hooks\"}",
        "scim_bridge_dead_letters{target=\"hooks\"}",
        "scim_bridge_deliveries_total{target=\"hooks\",outcome=\"paused\"}",
        "scim_bridge_ready",
    ] {
        assert!(
            common::sample(&metrics, series).is_some(),
            "{series}\n{metrics}"
        );
    }
    assert_eq!(common::sample(&metrics, "scim_bridge_ready"), Some(1.0));
    assert_eq!(
        common::sample(&metrics, "scim_bridge_guard_tripped{target=\"hooks\"}"),
        Some(0.0)
    );
}
