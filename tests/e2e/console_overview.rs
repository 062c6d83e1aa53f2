//! The overview's last hour over plain HTTP: each provider's requests and errors and
//! each target's deliveries and failures, counted per minute on the daemon's clock
//! and drawn as one bar per minute with traffic, under the same strict CSP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use scim_bridge::clock::ManualClock;

use crate::console::{Client, start, user};

/// The part of `page` from the element with id `id` to the end of its `</svg>`.
fn svg<'a>(page: &'a str, id: &str) -> &'a str {
    let title = format!("<title id=\"{id}-title\">");
    let at = page
        .find(&title)
        .unwrap_or_else(|| panic!("no plot {id}:\n{page}"));
    let open = page[..at].rfind("<svg").unwrap();
    let close = at + page[at..].find("</svg>").unwrap();
    &page[open..close]
}

/// `(minute, count)` of each bar of `class` in `plot`.
fn bars(plot: &str, class: &str) -> Vec<(String, u64)> {
    let mark = format!("<rect class=\"bar {class}\"");
    plot.match_indices(&mark)
        .map(|(at, _)| {
            let rect = &plot[at..at + plot[at..].find('>').unwrap()];
            let attr = |name: &str| {
                let from = rect.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                rect[from..from + rect[from..].find('"').unwrap()].to_owned()
            };
            (attr("data-minute"), attr("data-count").parse().unwrap())
        })
        .collect()
}

/// Waits until `target` has delivered `n` changes since start.
async fn delivered(fx: &crate::console::Fixture, target: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = fx.d.delivery(target).await;
        if s["delivered"] == n && s["queued"] == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{target} never delivered {n}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_and_plots_the_last_hour_per_minute() {
    // 08:00:05 UTC: the daemon starts in the first minute of the plotted hour's end.
    let t0 = chrono::Utc.timestamp_opt(1_800_000_005, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let fx = start(clock.clone());

    // 08:00: two users and a lookup of one that is not there (404, an error).
    for name in ["ada", "grace"] {
        let name = format!("{name}@firm.example");
        let (status, body) = fx.entra.post("/Users", user(&name, &name)).await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(fx.entra.get("/Users/not-there").await.0, 404);
    for t in ["hooks", "archive"] {
        delivered(&fx, t, 2).await;
    }
    // 08:02: one more user.
    clock.advance(chrono::Duration::minutes(2));
    let (status, body) = fx
        .entra
        .post("/Users", user("edsger@firm.example", "Edsger"))
        .await;
    assert_eq!(status, 201, "{body}");
    for t in ["hooks", "archive"] {
        delivered(&fx, t, 3).await;
    }

    let (_, page) = Client::signed_in(&fx.d, &fx.d.admin_token()).await;
    let body = &page.body;
    // Each field, by its name.
    for field in [
        "<th scope=\"col\">Last request</th>",
        "<th scope=\"col\">Requests, last hour</th>",
        "<th scope=\"col\">Errors, last hour</th>",
        "<dt>Credentials</dt><dd>no OAuth token source</dd>",
        "<dt>Queue</dt><dd>0 waiting, 0 retrying; oldest -</dd>",
        "<dt>Dead letters</dt><dd>0</dd>",
        "<dt>Last hour</dt><dd>3 delivered, <span>0 failed</span></dd>",
        "<dt>Guard</dt><dd>armed</dd>",
        "<dt>Reconciliation</dt><dd>not scheduled</dd>",
        "this page reloads every 10 seconds",
        "since it started at 2027-01-15 08:00:05 UTC",
        "<meta http-equiv=\"refresh\" content=\"10\">",
    ] {
        assert!(body.contains(field), "{field} missing:\n{body}");
    }
    // entra: four requests, one of them an error, the last 0 s ago; okta: none.
    assert!(
        body.contains("<tr><th scope=\"row\">entra</th><td class=\"num\">3</td><td class=\"num\">0</td><td>0 s ago (2027-01-15 08:02:05 UTC)</td><td class=\"num\">4</td><td class=\"num bad\">1</td></tr>"),
        "{body}"
    );
    assert!(
        body.contains("<tr><th scope=\"row\">okta</th><td class=\"num\">0</td><td class=\"num\">0</td><td>none yet</td><td class=\"num\">0</td><td class=\"num\">0</td></tr>"),
        "{body}"
    );

    // One bar per minute with traffic, each as tall as its count says.
    let entra = svg(body, "plot-provider-entra");
    assert_eq!(
        bars(entra, "ok"),
        [("08:00 UTC".to_owned(), 2), ("08:02 UTC".to_owned(), 1)],
        "{entra}"
    );
    assert_eq!(bars(entra, "failed"), [("08:00 UTC".to_owned(), 1)]);
    assert!(entra.contains("3 answered, 1 errors"), "{entra}");
    let okta = svg(body, "plot-provider-okta");
    assert!(bars(okta, "ok").is_empty() && bars(okta, "failed").is_empty());
    for t in ["hooks", "archive"] {
        let plot = svg(body, &format!("plot-target-{t}"));
        assert_eq!(
            bars(plot, "delivered"),
            [("08:00 UTC".to_owned(), 2), ("08:02 UTC".to_owned(), 1)],
            "{plot}"
        );
        assert!(bars(plot, "failed").is_empty(), "{plot}");
        // The 57 minutes before the daemon started are shaded, and said so.
        assert!(plot.contains("<rect class=\"nodata\""), "{plot}");
        assert!(
            plot.contains("Counting began at 08:00 UTC, when the daemon started"),
            "{plot}"
        );
    }

    // An hour on, the counts have aged out and the plots are empty.
    clock.advance(chrono::Duration::minutes(60));
    let (_, later) = Client::signed_in(&fx.d, &fx.d.admin_token()).await;
    let plot = svg(&later.body, "plot-target-hooks");
    assert!(bars(plot, "delivered").is_empty(), "{plot}");
    assert!(!plot.contains("nodata"), "{plot}");
    assert!(
        later
            .body
            .contains("<dt>Last hour</dt><dd>0 delivered, <span>0 failed</span></dd>"),
        "{}",
        later.body
    );

    // Still no script and no inline style, under the strict policy.
    assert!(
        !body.contains("<script") && !body.contains("style="),
        "{body}"
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert_eq!(csp, scim_bridge_csp());
}

/// The policy every console page carries (src/console/page.rs).
fn scim_bridge_csp() -> &'static str {
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}
