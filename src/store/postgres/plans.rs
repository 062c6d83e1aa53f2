//! The plans PostgreSQL chooses for lookups. Prepared statements switch to a generic
//! plan after five runs, and on a table not yet analysed that plan once chose an
//! index sharing the `(provider, kind)` prefix and filtered every user of the
//! provider (migration 0003). These tests force the generic plan on a freshly
//! filled, unanalysed table and check that each lookup uses its own index.

use chrono::{TimeZone, Utc};
use serde_json::json;
use tokio_postgres::NoTls;

use super::testkit::TestCluster;
use super::{PgStore, lookup_query};
use crate::scim::ResourceKind;
use crate::store::{Lifecycle, Lookup, Mutation, MutationKind, Resources};

fn create(kind: ResourceKind, id: String, doc: serde_json::Value) -> Mutation {
    Mutation {
        provider: "entra".into(),
        kind,
        id,
        expected_version: None,
        at: Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .unwrap_or_default(),
        request_id: None,
        check_members: false,
        log: None,
        change: MutationKind::Create {
            doc,
            members: vec![],
        },
    }
}

/// The generic plan of `lookup`'s statement, as EXPLAIN prints it.
/// The generic plan of a lookup's statement, for one key (`one`) or an array of them.
async fn generic_plan(
    client: &tokio_postgres::Client,
    name: &str,
    lookup: &Lookup,
    one: bool,
) -> String {
    let sql = lookup_query(lookup, one);
    client
        .batch_execute(&format!("PREPARE {name} AS {sql}"))
        .await
        .unwrap();
    let kind = if matches!(lookup, Lookup::DisplayNames(_)) {
        "Group"
    } else {
        "User"
    };
    let rows = client
        .simple_query(&format!(
            "EXPLAIN EXECUTE {name}('entra', '{kind}', '{key}')",
            key = if one { "k-7" } else { "{k-7}" }
        ))
        .await
        .unwrap();
    rows.iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_uses(name: &str, plan: &str, index: &str) {
    assert!(
        (plan.contains(&format!("Index Scan using {index} "))
            // The one-key e-mail lookup reads the covering index alone.
            || plan.contains(&format!("Index Only Scan using {index} "))
            || plan.contains(&format!("Bitmap Index Scan on {index} ")))
            && !plan.contains("Seq Scan on resources"),
        "{name} should use {index}:\n{plan}"
    );
    // No index entered by (provider, kind) alone, with the key left to a filter.
    assert!(
        !plan.contains("Index Cond: ((provider = $1) AND (kind = $2))"),
        "{name} scans the provider's resources:\n{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_use_their_own_index_under_a_generic_plan_before_any_analyze() {
    let Some(cluster) = TestCluster::start().unwrap() else {
        return;
    };
    let url = cluster.create_database("plans").await.unwrap();
    let store = PgStore::open(&url, 4).await.unwrap();
    for i in 0..2000 {
        let doc = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("user{i}@example.com"),
            "externalId": format!("ext-{i}"),
            "emails": [{"value": format!("user{i}@example.com"), "type": "work"}],
        });
        store
            .apply(create(ResourceKind::User, format!("u{i}"), doc))
            .await
            .unwrap();
    }
    for i in 0..50 {
        let doc = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": format!("Group {i}"),
        });
        store
            .apply(create(ResourceKind::Group, format!("g{i}"), doc))
            .await
            .unwrap();
    }
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    let task = tokio::spawn(conn);
    let analysed: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_user_tables
             WHERE relname = 'resources' AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(analysed, 0, "the case under test is a table never analysed");
    client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let k = || vec!["k-7".to_owned()];
    let lookups = [
        ("by_id", Lookup::Ids(k()), "resources_id"),
        (
            "by_user_name",
            Lookup::UserNames(k()),
            "resources_user_name",
        ),
        (
            "by_external_id",
            Lookup::ExternalIds(k()),
            "resources_external_id",
        ),
        (
            "by_display_name",
            Lookup::DisplayNames(k()),
            "resources_display_name",
        ),
        ("by_email", Lookup::Emails(k()), "resource_emails_pkey"),
    ];
    // Before any ANALYZE the email lookup still walks the resources (no layout of
    // ours avoids that; autovacuum analyses a new table within a minute), so it is
    // checked only after.
    for one in [false, true] {
        for (name, lookup, index) in &lookups[..4] {
            let plan = generic_plan(&client, &format!("{name}_{one}"), lookup, one).await;
            assert_uses(name, &plan, index);
        }
    }
    client.batch_execute("ANALYZE").await.unwrap();
    for one in [false, true] {
        for (name, lookup, index) in &lookups {
            let name = format!("analysed_{name}_{one}");
            let plan = generic_plan(&client, &name, lookup, one).await;
            assert_uses(&name, &plan, index);
        }
    }
    drop(client);
    let _ = task.await;
    store.close().await;
}

/// The provisioning log indexes only the rows that have a target, and a seq once
/// chained (migration 0010): the queries by target and by seq must still use them
/// under a generic plan, where the value is a parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_queries_by_target_and_seq_use_their_partial_indexes() {
    use crate::provlog::LogQuery;
    use crate::store::provisioning_log::{ENTRY_COLUMNS, query_sql};

    let Some(cluster) = TestCluster::start().unwrap() else {
        return;
    };
    let url = cluster.create_database("log_plans").await.unwrap();
    let store = PgStore::open(&url, 2).await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    let task = tokio::spawn(conn);
    // 20,000 records: a change received (no target) for every nine delivery actions
    // spread over a hundred targets; the oldest half chained.
    client
        .batch_execute(
            "INSERT INTO audit_log (at, kind, body, target, action, outcome, seq)
             SELECT n, 'delivery.action', '{}',
                    CASE WHEN n % 10 = 0 THEN NULL ELSE 't' || (n % 100) END,
                    'create', 'ok', CASE WHEN n < 10000 THEN n END
             FROM generate_series(1, 20000) AS n;
             ANALYZE audit_log;
             SET plan_cache_mode = force_generic_plan;",
        )
        .await
        .unwrap();
    let q = LogQuery {
        target: Some("t1".into()),
        limit: 50,
        ..LogQuery::default()
    };
    let (filter, _) = query_sql(&q, |n| format!("${n}"));
    let explain = |name: &str, sql: String, arg: &str| {
        let client = &client;
        let (name, arg) = (name.to_owned(), arg.to_owned());
        async move {
            client
                .batch_execute(&format!("PREPARE {name} AS {sql}"))
                .await
                .unwrap();
            client
                .simple_query(&format!("EXPLAIN EXECUTE {name}({arg})"))
                .await
                .unwrap()
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let plan = explain(
        "by_target",
        format!("SELECT {ENTRY_COLUMNS} FROM audit_log{filter}"),
        "'t1', 50",
    )
    .await;
    assert!(plan.contains("audit_log_target"), "{plan}");
    let plan = explain("by_seq", super::chain::CHAINED_LINES.into(), "5000, 100").await;
    assert!(plan.contains("audit_log_seq "), "{plan}");
    for index in ["audit_log_target", "audit_log_seq"] {
        let def: String = client
            .query_one(
                "SELECT indexdef FROM pg_indexes WHERE indexname = $1",
                &[&index],
            )
            .await
            .unwrap()
            .get(0);
        assert!(def.contains("IS NOT NULL"), "{def}");
    }
    drop(client);
    let _ = task.await;
    store.close().await;
}
