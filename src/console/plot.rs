//! The overview's small plots: per-minute counts over the last hour as stacked bars
//! in inline SVG, drawn on the server. No script and no `style` attribute (the CSP
//! allows neither); colours come from classes in `console.css`. Each plot carries a
//! text alternative (`<title>` and `<desc>` with the totals) and each bar a tooltip
//! with its minute and count, so a screen reader hears what a sighted admin sees.

use askama::Template;
use chrono::DateTime;

use crate::metrics::MINUTES;

/// The drawing's coordinate system (the SVG scales to its box through CSS).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;
/// Room for the y axis' label on the left and the x axis' labels below.
const LEFT: f64 = 44.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 20.0;
/// A bar's share of its minute's width; the rest is the gap between bars.
const BAR: f64 = 0.8;

/// One stacked part of each minute's bar: a class for its colour, a word for the
/// legend and tooltips, and its count per minute (oldest first).
#[derive(Debug, Clone)]
pub struct Series {
    pub class: &'static str,
    pub label: &'static str,
    pub counts: Vec<u64>,
}

/// A drawn rectangle, in the drawing's coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub class: &'static str,
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    /// "13:05 UTC: 3 delivered", its tooltip.
    pub label: String,
    pub minute: String,
    pub count: u64,
}

#[derive(Template, Debug)]
#[template(path = "plot.html")]
pub struct Plot {
    /// Unique on the page: the `<title>`/`<desc>` ids derive from it.
    pub id: String,
    pub title: String,
    pub desc: String,
    pub bars: Vec<Bar>,
    /// The part of the hour before counting began (the daemon's start), shaded.
    pub no_data_width: Option<String>,
    pub y_max: u64,
    pub legend: Vec<(&'static str, String)>,
    // Fixed geometry, for the template.
    pub left: String,
    pub top: String,
    pub base: String,
    pub right: String,
    pub label_y: String,
    pub middle: String,
    pub span: String,
    pub tick_x: String,
    pub top_label_y: String,
}

fn num(v: f64) -> String {
    // One decimal is finer than a pixel at any size the page shows.
    format!("{:.1}", (v * 10.0).round() / 10.0)
}

/// The smallest 1, 2 or 5 times a power of ten at or above `n` (at least 1): a top
/// of the scale people read at a glance.
pub fn nice_ceiling(n: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let top = step.saturating_mul(m);
            if top >= n {
                return top;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// "HH:MM UTC" of a minute counted from the Unix epoch.
fn clock(minute: i64) -> String {
    DateTime::from_timestamp(minute.saturating_mul(60), 0)
        .map(|t| t.format("%H:%M UTC").to_string())
        .unwrap_or_default()
}

impl Plot {
    /// Stacked bars of `series` over the hour ending in `end_minute` (minutes from the
    /// epoch); minutes before `counted_from` (the minute counting began) have no data.
    pub fn new(
        id: String,
        title: String,
        series: &[Series],
        end_minute: i64,
        counted_from: i64,
    ) -> Plot {
        let first = end_minute - (MINUTES as i64 - 1);
        let stacked: Vec<u64> = (0..MINUTES)
            .map(|i| series.iter().filter_map(|s| s.counts.get(i)).sum())
            .collect();
        let y_max = nice_ceiling(stacked.iter().copied().max().unwrap_or(0));
        let slot = (WIDTH - LEFT) / MINUTES as f64;
        let span = HEIGHT - TOP - BOTTOM;
        let base = HEIGHT - BOTTOM;
        let mut bars = Vec::new();
        for i in 0..MINUTES {
            let minute = first + i as i64;
            let mut y = base;
            for s in series {
                let n = s.counts.get(i).copied().unwrap_or(0);
                if n == 0 {
                    continue;
                }
                let h = span * n as f64 / y_max as f64;
                y -= h;
                bars.push(Bar {
                    class: s.class,
                    x: num(LEFT + slot * i as f64 + slot * (1.0 - BAR) / 2.0),
                    y: num(y),
                    width: num(slot * BAR),
                    height: num(h),
                    label: format!("{}: {n} {}", clock(minute), s.label),
                    minute: clock(minute),
                    count: n,
                });
            }
        }
        let missing = (counted_from - first).clamp(0, MINUTES as i64);
        let totals: Vec<(&'static str, String)> = series
            .iter()
            .map(|s| {
                (
                    s.class,
                    format!("{} {}", s.counts.iter().sum::<u64>(), s.label),
                )
            })
            .collect();
        let busiest = stacked
            .iter()
            .enumerate()
            .max_by_key(|(i, n)| (**n, *i))
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| format!("; busiest minute {} with {n}", clock(first + i as i64)))
            .unwrap_or_default();
        let since = if missing > 0 {
            format!(
                ". Counting began at {}, when the daemon started; the minutes before it have no data",
                clock(counted_from)
            )
        } else {
            String::new()
        };
        let desc = format!(
            "Per minute from {} to {}: {}{busiest}{since}.",
            clock(first),
            clock(end_minute),
            totals
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Plot {
            id,
            title,
            desc,
            bars,
            no_data_width: (missing > 0).then(|| num(slot * missing as f64)),
            y_max,
            legend: totals,
            left: num(LEFT),
            top: num(TOP),
            base: num(base),
            right: num(WIDTH),
            label_y: num(HEIGHT - 4.0),
            middle: num(LEFT + (WIDTH - LEFT) / 2.0),
            span: num(span),
            tick_x: num(LEFT - 4.0),
            top_label_y: num(TOP + 8.0),
        }
    }

    /// The SVG (and its legend), ready to place in a page.
    pub fn html(&self) -> String {
        self.render().unwrap_or_else(|e| {
            tracing::error!(error = %e, "console plot failed to render");
            String::new()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(at: &[(usize, u64)]) -> Vec<u64> {
        let mut v = vec![0; MINUTES];
        for (i, n) in at {
            v[*i] = *n;
        }
        v
    }

    #[test]
    fn scale_tops_read_at_a_glance() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(4_000), 5_000);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
    }

    #[test]
    fn one_bar_per_minute_and_series_with_counts_stacked_to_scale() {
        let end = 29_666_700; // 2026-05-28 21:00 UTC
        let plot = Plot::new(
            "plot-t".into(),
            "hooks".into(),
            &[
                Series {
                    class: "delivered",
                    label: "delivered",
                    counts: hour(&[(10, 4), (59, 1)]),
                },
                Series {
                    class: "failed",
                    label: "failed",
                    counts: hour(&[(10, 1), (20, 2)]),
                },
            ],
            end,
            end - 50,
        );
        assert_eq!(plot.bars.len(), 4);
        assert_eq!(plot.y_max, 5);
        let stacked: Vec<_> = plot
            .bars
            .iter()
            .filter(|b| b.minute == "20:11 UTC")
            .collect();
        assert_eq!(stacked.len(), 2);
        // The failures sit on the deliveries, and together they reach the top.
        assert_eq!(stacked[1].y, num(TOP));
        assert_eq!(
            stacked[0].y,
            stacked[1]
                .height
                .parse::<f64>()
                .map(|h| num(TOP + h))
                .unwrap()
        );
        assert_eq!(plot.bars[3].label, "21:00 UTC: 1 delivered");
        // Nine minutes before counting began are shaded as no data.
        assert_eq!(plot.no_data_width, Some(num((WIDTH - LEFT) / 60.0 * 9.0)));
        assert!(plot.desc.contains("5 delivered, 3 failed"), "{}", plot.desc);
        assert!(
            plot.desc.contains("busiest minute 20:11 UTC with 5"),
            "{}",
            plot.desc
        );
        assert!(
            plot.desc.contains("Counting began at 20:10 UTC"),
            "{}",
            plot.desc
        );
        let svg = plot.html();
        assert_eq!(svg.matches("<rect class=\"bar ").count(), 4, "{svg}");
        assert!(!svg.contains("style="), "{svg}");
        assert!(
            svg.contains("aria-labelledby=\"plot-t-title plot-t-desc\""),
            "{svg}"
        );
    }

    #[test]
    fn an_idle_hour_draws_no_bars_and_says_so() {
        let plot = Plot::new(
            "p".into(),
            "idle".into(),
            &[Series {
                class: "requests",
                label: "requests",
                counts: vec![0; MINUTES],
            }],
            1_000_000,
            0,
        );
        assert!(plot.bars.is_empty());
        assert_eq!(plot.no_data_width, None);
        assert_eq!(
            plot.desc,
            "Per minute from 09:41 UTC to 10:40 UTC: 0 requests."
        );
    }
}
