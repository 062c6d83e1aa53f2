//! One labelled metric family in the Prometheus text format: its `# HELP` and
//! `# TYPE` lines, then one line per sample. Series read from elsewhere at scrape time
//! (per-target delivery, guard and token state) are built as families, so every
//! family is declared even when it has no sample yet, and label values are escaped in
//! one place.

use std::fmt::Write as _;

/// A Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// A metric family and its samples, rendered in the order they were added.
#[derive(Debug, Clone)]
pub struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    samples: Vec<(String, f64)>,
}

impl Family {
    pub fn gauge(name: &'static str, help: &'static str) -> Self {
        Self::new(name, Kind::Gauge, help)
    }

    pub fn counter(name: &'static str, help: &'static str) -> Self {
        Self::new(name, Kind::Counter, help)
    }

    fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Self {
            name,
            kind,
            help,
            samples: Vec::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Adds a sample with `labels` (name, value), in that order.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut set = String::new();
        for (i, (name, v)) in labels.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(set, "{comma}{name}=\"{}\"", super::escape(v));
        }
        self.samples.push((set, value));
    }

    /// Appends the family in the text exposition format.
    pub fn render(&self, out: &mut String) {
        let (name, kind) = (self.name, self.kind.name());
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", self.help);
        for (labels, v) in &self.samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
    }
}

/// Seconds since the Unix epoch, as Prometheus timestamps are given (with the
/// milliseconds, so an expiry a few seconds away is not rounded to now).
pub fn timestamp_seconds(at: chrono::DateTime<chrono::Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_the_family_and_escapes_label_values() {
        let mut f = Family::gauge("scim_bridge_guard_tripped", "Whether it is tripped.");
        f.sample(&[("target", "a\"b\\c\nd")], 1.0);
        f.sample(&[("target", "x"), ("state", "ok")], 0.0);
        let mut out = String::new();
        f.render(&mut out);
        assert_eq!(
            out,
            "# HELP scim_bridge_guard_tripped Whether it is tripped.\n\
             # TYPE scim_bridge_guard_tripped gauge\n\
             scim_bridge_guard_tripped{target=\"a\\\"b\\\\c\\nd\"} 1\n\
             scim_bridge_guard_tripped{target=\"x\",state=\"ok\"} 0\n"
        );
    }

    #[test]
    fn an_empty_family_is_still_declared_and_counters_say_so() {
        let mut out = String::new();
        Family::counter("scim_bridge_x_total", "X.").render(&mut out);
        assert_eq!(
            out,
            "# HELP scim_bridge_x_total X.\n# TYPE scim_bridge_x_total counter\n"
        );
        let mut f = Family::counter("scim_bridge_y_total", "Y.");
        f.sample(&[], 12.0);
        let mut out = String::new();
        f.render(&mut out);
        assert!(out.ends_with("\nscim_bridge_y_total 12\n"), "{out}");
    }

    #[test]
    fn timestamps_are_seconds_with_milliseconds() {
        let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH
            + chrono::Duration::milliseconds(1_700_000_000_250);
        assert_eq!(timestamp_seconds(at), 1_700_000_000.25);
    }
}
