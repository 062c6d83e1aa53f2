//! The console in a real browser: Debian's headless `chromium` driven through
//! `chromedriver` (W3C WebDriver). Signs in with a token, finds one person among
//! 10,000, opens their page, rejects one guard's holds and approves another's,
//! retries a dead letter, and keeps a screenshot of each page under
//! `target/console-screenshots/`. Skipped with a reason where chromium is not
//! installed, unless `SCIM_BRIDGE_REQUIRE_BROWSER` is set (CI sets it).

use crate::common;
use crate::console::{start, user};

use std::sync::Arc;
use std::time::Instant;

use common::webdriver::{self, Browser, screenshots};
use scim_bridge::clock::SystemClock;

/// People stored besides the ones the scenario acts on.
const PEOPLE: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_finds_a_person_and_steers_delivery_in_chromium() {
    let Some((driver, chromium)) = webdriver::installed_or_skip() else {
        return;
    };
    let fx = start(Arc::new(SystemClock));
    let seeding = Instant::now();
    let okta = Arc::new(fx.okta.clone());
    let mut tasks = Vec::new();
    for w in 0..16 {
        let okta = Arc::clone(&okta);
        tasks.push(tokio::spawn(async move {
            for i in (w..PEOPLE).step_by(16) {
                let name = format!("person{i:05}@firm.example");
                let (status, body) = okta
                    .post("/Users", user(&name, &format!("Person {i:05}")))
                    .await;
                assert_eq!(status, 201, "{body}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("seeded {PEOPLE} people in {:?}", seeding.elapsed());
    let held = fx.trip_guards().await;
    let admin = fx.d.admin_token();
    // What each page costs to render over HTTP at this size (printed, not asserted:
    // the README quotes it; timings on a shared test machine are no pass/fail signal).
    let (mut http, _) = crate::console::Client::signed_in(&fx.d, &admin).await;
    for page in [
        "/ui/",
        "/ui/people?q=person04242.mail%40firm.example",
        "/ui/dead-letters",
        "/ui/guard",
    ] {
        let mut took: Vec<_> = Vec::new();
        for _ in 0..21 {
            let started = Instant::now();
            assert_eq!(http.get(page).await.status, 200);
            took.push(started.elapsed());
        }
        took.sort();
        eprintln!(
            "{page}: median {:?}, max {:?} with {PEOPLE} people",
            took[10], took[20]
        );
    }
    let shots = screenshots();
    let b = Browser::start(&driver, &chromium).await;

    // Signed out, the console sends the browser to the sign-in page.
    b.goto(&fx.d.url("/ui/")).await;
    assert!(b.url().await.ends_with("/ui/signin"), "{}", b.url().await);
    assert_eq!(b.title().await, "Sign in — scim-bridge console");
    // The first Tab reaches the skip link.
    b.keys("\u{E004}").await;
    assert_eq!(b.focused_text().await, "Skip to content");
    b.screenshot(&shots.join("signin.png")).await;
    b.type_into("#token", &admin).await;
    b.click("form.signin button[type=submit]").await;
    let text = b.wait_text("Identity providers").await;
    assert_eq!(b.title().await, "Overview — scim-bridge console");
    assert!(
        text.contains("okta") && text.contains(&PEOPLE.to_string()),
        "{text}"
    );
    assert!(text.contains("guard tripped"), "{text}");
    b.screenshot(&shots.join("overview.png")).await;

    // Search one person among 10,000 by email, then open their page.
    b.click("nav a[href='/ui/people']").await;
    b.wait_text("userName, email, display name").await;
    b.type_into("#q", "PERSON04242.mail@firm.example").await;
    b.click("form.search button[type=submit]").await;
    let text = b.wait_text("1 match for").await;
    assert!(text.contains("person04242@firm.example"), "{text}");
    b.screenshot(&shots.join("people.png")).await;
    b.click("table a").await;
    let text = b.wait_text("Attributes").await;
    assert_eq!(
        b.title().await,
        "person04242@firm.example — scim-bridge console"
    );
    assert!(text.contains("Person 04242"), "{text}");
    assert!(text.contains("No target receives okta"), "{text}");
    b.screenshot(&shots.join("person.png")).await;

    // The guard: what it holds, by name; reject one target's holds, approve the other's.
    b.click("nav a[href='/ui/guard']").await;
    let text = b.wait_text("Mass-deprovisioning guard").await;
    // Which of the three deletions the guard let through first depends on timing;
    // it holds the others (two or three), each by name.
    let named = [
        "ada@firm.example",
        "grace@firm.example",
        "edsger@firm.example",
    ]
    .iter()
    .filter(|n| text.contains(**n))
    .count();
    assert!(named >= 2, "{text}");
    b.screenshot(&shots.join("guard.png")).await;
    b.click("form[action='/ui/guard/hooks/reject'] button")
        .await;
    b.wait_text(&format!("Rejected: {held} held change(s) of hooks"))
        .await;
    b.click("form[action='/ui/guard/archive/approve'] button")
        .await;
    b.wait_text("Approved: archive's held deactivations and deletions go ahead now")
        .await;
    b.screenshot(&shots.join("guard-acted.png")).await;
    let s = fx.d.delivery("hooks").await;
    assert_eq!(s["guard"]["state"], "armed", "{s}");
    assert_eq!(s["dead_letters"], held, "{s}");
    let s = fx.d.wait_drained("archive").await;
    assert_eq!(s["dead_letters"], 0, "{s}");

    // The dead letters the rejection made, by name; retry one.
    b.click("nav a[href='/ui/dead-letters']").await;
    b.wait_text("rejected at the mass-deprovisioning guard")
        .await;
    b.screenshot(&shots.join("dead-letters.png")).await;
    b.click("td.actions form[action$='/retry'] button").await;
    let text = b.wait_text("Queued again:").await;
    assert!(text.contains("→ hooks"), "{text}");
    let s = fx.d.delivery("hooks").await;
    assert_eq!(s["dead_letters"], held - 1, "{s}");

    // Signing out ends it.
    b.click("form.signout button").await;
    b.wait_text("API token").await;
    assert_eq!(b.title().await, "Sign in — scim-bridge console");
    b.goto(&fx.d.url("/ui/guard")).await;
    assert!(b.url().await.ends_with("/ui/signin"));
}
