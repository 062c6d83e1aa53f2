//! A small Prometheus registry owned by the server state. The `metrics` facade would
//! need a process-global recorder; keeping the registry in state keeps tests isolated
//! and the rule "no global state" intact.

mod dropped;
mod family;
mod minutes;

pub use dropped::{DroppedAttribute, MAX_PER_PROVIDER, OTHER};
pub use family::{Family, Kind, timestamp_seconds};
pub use minutes::{Hour, MINUTES, PerMinute, minute_of};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A provider's SCIM requests per minute ([`Metrics::scim_request`]): counter 0 all
/// of them, counter 1 those answered with an error (4xx or 5xx).
pub type ScimTraffic = PerMinute<2>;
/// [`ScimTraffic`]'s counter of every request.
pub const REQUESTS: usize = 0;
/// [`ScimTraffic`]'s counter of requests answered 4xx or 5xx.
pub const ERRORS: usize = 1;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// One method's request counts by route, then status.
type RequestsOfMethod = BTreeMap<String, BTreeMap<u16, u64>>;

/// Counters and latency histograms, labelled.
#[derive(Default)]
pub struct Metrics {
    /// Requests by method, then route, then status: nested so that counting one
    /// looks its labels up by reference, with no owned key built per request.
    requests: Mutex<BTreeMap<String, RequestsOfMethod>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    quirks: Mutex<BTreeMap<(String, String), u64>>,
    auth_failures: Mutex<BTreeMap<String, u64>>,
    resolutions: Mutex<BTreeMap<(String, String), u64>>,
    connections_closed: Mutex<BTreeMap<String, u64>>,
    connections_open: std::sync::atomic::AtomicU64,
    network_denied: Mutex<BTreeMap<String, u64>>,
    connection_limit_hits: std::sync::atomic::AtomicU64,
    dropped: Mutex<dropped::Dropped>,
    reloads_applied: std::sync::atomic::AtomicU64,
    reloads_refused: std::sync::atomic::AtomicU64,
    /// Unix time of the last reload applied, in seconds; zero before the first.
    last_reload: std::sync::atomic::AtomicI64,
    /// Unix time of the last reload refused; zero before the first. Later than the
    /// last applied one: the file on disk is not what runs (an alert watches this).
    last_refused: std::sync::atomic::AtomicI64,
    /// Each configured provider's SCIM requests over the last hour, for the console.
    scim_traffic: Mutex<BTreeMap<String, Arc<ScimTraffic>>>,
}

/// What came of a configuration reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    Applied,
    Refused,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Records one HTTP request.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            let routes = match m.get_mut(method) {
                Some(routes) => routes,
                None => m.entry(method.to_owned()).or_default(),
            };
            let statuses = match routes.get_mut(route) {
                Some(statuses) => statuses,
                None => routes.entry(route.to_owned()).or_default(),
            };
            *statuses.entry(status).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = match m.get_mut(route) {
                Some(h) => h,
                None => m.entry(route.to_owned()).or_default(),
            };
            let s = took.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += s;
            h.count += 1;
        }
    }

    /// Counts a SCIM request of `provider` answered at `at` with `status`. Callers
    /// pass only configured providers, so the map stays as small as the config.
    pub fn scim_request(&self, provider: &str, status: u16, at: DateTime<Utc>) {
        let traffic = match self.scim_traffic.lock() {
            Ok(mut m) => match m.get(provider) {
                Some(t) => Arc::clone(t),
                None => Arc::clone(m.entry(provider.to_owned()).or_default()),
            },
            Err(_) => return,
        };
        traffic.add(at, REQUESTS, 1);
        if status >= 400 {
            traffic.add(at, ERRORS, 1);
        }
    }

    /// `provider`'s SCIM requests over the last hour, when it has made any since start.
    pub fn scim_traffic(&self, provider: &str) -> Option<Arc<ScimTraffic>> {
        self.scim_traffic
            .lock()
            .ok()
            .and_then(|m| m.get(provider).cloned())
    }

    /// Counts a tolerated IdP quirk.
    pub fn quirk(&self, provider: &str, quirk: &str) {
        if let Ok(mut m) = self.quirks.lock() {
            *m.entry((provider.to_owned(), quirk.to_owned()))
                .or_default() += 1;
        }
    }

    /// Counts an attribute `provider` sent that no schema declares, dropped at `at`;
    /// true the first time for this provider and attribute, so the caller warns once.
    pub fn dropped_attribute(
        &self,
        provider: &str,
        attribute: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        self.dropped
            .lock()
            .is_ok_and(|mut d| d.note(provider, attribute, at))
    }

    /// The attributes dropped so far, by provider and name.
    pub fn dropped_attributes(&self) -> Vec<DroppedAttribute> {
        self.dropped.lock().map(|d| d.list()).unwrap_or_default()
    }

    /// Counts a refused token by reason.
    pub fn auth_failure(&self, reason: &str) {
        if let Ok(mut m) = self.auth_failures.lock() {
            *m.entry(reason.to_owned()).or_default() += 1;
        }
    }

    /// Counts a workspace resolution by configured repository and outcome (`cached`,
    /// `searched` or the error code).
    pub fn resolution(&self, repository: &str, outcome: &str) {
        if let Ok(mut m) = self.resolutions.lock() {
            *m.entry((repository.to_owned(), outcome.to_owned()))
                .or_default() += 1;
        }
    }

    /// Counts a connection the server closed because it hit a limit
    /// (`idle_timeout`, `header_timeout`).
    pub fn connection_closed(&self, reason: &str) {
        if let Ok(mut m) = self.connections_closed.lock() {
            *m.entry(reason.to_owned()).or_default() += 1;
        }
    }

    /// Counts a request refused by an allow-list (`scope`: a provider or `admin`).
    pub fn network_denied(&self, scope: &str) {
        if let Ok(mut m) = self.network_denied.lock() {
            *m.entry(scope.to_owned()).or_default() += 1;
        }
    }

    /// A connection was accepted (`true`) or has closed (`false`).
    pub fn connection_open(&self, open: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        if open {
            self.connections_open.fetch_add(1, Relaxed);
        } else {
            self.connections_open.fetch_sub(1, Relaxed);
        }
    }

    /// Counts a moment the server had `max_connections` open and stopped accepting.
    pub fn connection_limit_hit(&self) {
        self.connection_limit_hits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a configuration reload applied or refused at Unix time `at`.
    pub fn config_reload(&self, outcome: Reload, at: i64) {
        use std::sync::atomic::Ordering::Relaxed;
        match outcome {
            Reload::Applied => {
                self.reloads_applied.fetch_add(1, Relaxed);
                self.last_reload.store(at, Relaxed);
            }
            Reload::Refused => {
                self.reloads_refused.fetch_add(1, Relaxed);
                self.last_refused.store(at, Relaxed);
            }
        }
    }

    /// The Prometheus text exposition, followed by `gauges` (name, help, value).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP scim_bridge_http_requests_total HTTP requests by method, route and status.\n# TYPE scim_bridge_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for (method, routes) in m.iter() {
                for (route, statuses) in routes {
                    for (status, n) in statuses {
                        let _ = writeln!(
                            out,
                            "scim_bridge_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                            escape(route)
                        );
                    }
                }
            }
        }
        out.push_str("# HELP scim_bridge_http_request_duration_seconds Request latency by route.\n# TYPE scim_bridge_http_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                let r = escape(route);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "scim_bridge_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "scim_bridge_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}\nscim_bridge_http_request_duration_seconds_sum{{route=\"{r}\"}} {}\nscim_bridge_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                    h.count, h.sum, h.count
                );
            }
        }
        out.push_str("# HELP scim_bridge_dialect_quirks_total IdP deviations from the RFCs that were tolerated.\n# TYPE scim_bridge_dialect_quirks_total counter\n");
        if let Ok(m) = self.quirks.lock() {
            for ((provider, quirk), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "scim_bridge_dialect_quirks_total{{provider=\"{}\",quirk=\"{quirk}\"}} {n}",
                    escape(provider)
                );
            }
        }
        out.push_str("# HELP scim_bridge_auth_failures_total Refused bearer tokens by reason.\n# TYPE scim_bridge_auth_failures_total counter\n");
        if let Ok(m) = self.auth_failures.lock() {
            for (reason, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "scim_bridge_auth_failures_total{{reason=\"{reason}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP scim_bridge_connections_closed_total Connections the server closed at a limit, by reason.\n# TYPE scim_bridge_connections_closed_total counter\n");
        if let Ok(m) = self.connections_closed.lock() {
            for (reason, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "scim_bridge_connections_closed_total{{reason=\"{reason}\"}} {n}"
                );
            }
        }
        let open = self
            .connections_open
            .load(std::sync::atomic::Ordering::Relaxed);
        let hits = self
            .connection_limit_hits
            .load(std::sync::atomic::Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP scim_bridge_connections_open Client connections open now.\n# TYPE scim_bridge_connections_open gauge\nscim_bridge_connections_open {open}\n\
             # HELP scim_bridge_connection_limit_hits_total Times max_connections were open and accepting paused.\n# TYPE scim_bridge_connection_limit_hits_total counter\nscim_bridge_connection_limit_hits_total {hits}\n"
        );
        out.push_str("# HELP scim_bridge_network_denied_total Requests refused by an allow-list, by provider or admin.\n# TYPE scim_bridge_network_denied_total counter\n");
        if let Ok(m) = self.network_denied.lock() {
            for (scope, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "scim_bridge_network_denied_total{{scope=\"{}\"}} {n}",
                    escape(scope)
                );
            }
        }
        {
            use std::sync::atomic::Ordering::Relaxed;
            let (applied, refused, last, last_refused) = (
                self.reloads_applied.load(Relaxed),
                self.reloads_refused.load(Relaxed),
                self.last_reload.load(Relaxed),
                self.last_refused.load(Relaxed),
            );
            let _ = write!(
                out,
                "# HELP scim_bridge_config_reloads_total Configuration reloads (SIGHUP) by outcome.\n# TYPE scim_bridge_config_reloads_total counter\n\
                 scim_bridge_config_reloads_total{{outcome=\"applied\"}} {applied}\nscim_bridge_config_reloads_total{{outcome=\"refused\"}} {refused}\n\
                 # HELP scim_bridge_config_last_reload_success_timestamp_seconds When the configuration was last reloaded and applied (0: never).\n# TYPE scim_bridge_config_last_reload_success_timestamp_seconds gauge\n\
                 scim_bridge_config_last_reload_success_timestamp_seconds {last}\n\
                 # HELP scim_bridge_config_last_reload_failure_timestamp_seconds When a configuration reload was last refused (0: never); later than the last success means the file on disk is not what runs.\n# TYPE scim_bridge_config_last_reload_failure_timestamp_seconds gauge\n\
                 scim_bridge_config_last_reload_failure_timestamp_seconds {last_refused}\n"
            );
        }
        out.push_str("# HELP scim_bridge_workspace_resolutions_total Workspace resolutions by repository and outcome.\n# TYPE scim_bridge_workspace_resolutions_total counter\n");
        if let Ok(m) = self.resolutions.lock() {
            for ((repository, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "scim_bridge_workspace_resolutions_total{{repository=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(repository)
                );
            }
        }
        if let Ok(d) = self.dropped.lock() {
            d.render(&mut out);
        }
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
    }

    #[test]
    fn requests_are_counted_by_method_route_and_status_in_label_order() {
        let m = Metrics::default();
        let ms = Duration::from_millis(1);
        for (method, route, status) in [
            ("POST", "/scim/v2/{provider}/{kind}", 201),
            ("GET", "/scim/v2/{provider}/{kind}", 200),
            ("GET", "/scim/v2/{provider}/{kind}", 200),
            ("GET", "/healthz", 200),
            ("GET", "/scim/v2/{provider}/{kind}", 404),
        ] {
            m.request(method, route, status, ms);
        }
        let text = m.render(&[]);
        let counted: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("scim_bridge_http_requests_total{"))
            .collect();
        assert_eq!(
            counted,
            [
                r#"scim_bridge_http_requests_total{method="GET",route="/healthz",status="200"} 1"#,
                r#"scim_bridge_http_requests_total{method="GET",route="/scim/v2/{provider}/{kind}",status="200"} 2"#,
                r#"scim_bridge_http_requests_total{method="GET",route="/scim/v2/{provider}/{kind}",status="404"} 1"#,
                r#"scim_bridge_http_requests_total{method="POST",route="/scim/v2/{provider}/{kind}",status="201"} 1"#,
            ]
        );
        assert_eq!(
            line(
                &text,
                r#"scim_bridge_http_request_duration_seconds_count{route="/scim/v2/{provider}/{kind}"}"#
            ),
            Some(
                r#"scim_bridge_http_request_duration_seconds_count{route="/scim/v2/{provider}/{kind}"} 4"#
            )
        );
    }

    #[test]
    fn a_refused_reload_is_dated_so_an_alert_can_tell_it_is_the_latest() {
        let m = Metrics::default();
        let text = m.render(&[]);
        assert_eq!(
            line(
                &text,
                "scim_bridge_config_last_reload_failure_timestamp_seconds"
            ),
            Some("scim_bridge_config_last_reload_failure_timestamp_seconds 0")
        );
        m.config_reload(Reload::Applied, 1_000);
        m.config_reload(Reload::Refused, 2_000);
        let text = m.render(&[]);
        for want in [
            "scim_bridge_config_reloads_total{outcome=\"applied\"} 1",
            "scim_bridge_config_reloads_total{outcome=\"refused\"} 1",
            "scim_bridge_config_last_reload_success_timestamp_seconds 1000",
            "scim_bridge_config_last_reload_failure_timestamp_seconds 2000",
            "# TYPE scim_bridge_config_last_reload_failure_timestamp_seconds gauge",
        ] {
            assert!(text.lines().any(|l| l == want), "{want} missing:\n{text}");
        }
        // A good reload afterwards is later than the refusal.
        m.config_reload(Reload::Applied, 3_000);
        let text = m.render(&[]);
        assert!(
            text.contains("scim_bridge_config_last_reload_success_timestamp_seconds 3000\n"),
            "{text}"
        );
    }
}
