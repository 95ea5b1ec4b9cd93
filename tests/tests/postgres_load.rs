//! The load's PostgreSQL side against the real server: when an upsert may copy its rows
//! straight into its table, and several tables' `COPY` segments on the load's one connection.

use bytes::{BufMut, Bytes, BytesMut};
use sluice::sink::postgres::{SharedCopies, TablePlan, TableSinkSpec};
use sluice_e2e::{TestScope, require_services};

fn spec(table: &str, fields: &[&str], upsert_key: &[&str]) -> TableSinkSpec {
    TableSinkSpec {
        output: format!("test.{table}"),
        table: table.to_owned(),
        fields: fields.iter().map(|field| (*field).to_owned()).collect(),
        upsert_key: upsert_key.iter().map(|key| (*key).to_owned()).collect(),
        ingested_at_column: None,
    }
}

/// `count` binary `COPY` rows of (text id, int4 n), without header: `id-<n>`, `n`.
fn rows(first: i32, count: i32) -> Bytes {
    let mut buffer = BytesMut::new();
    for n in first..first + count {
        let id = format!("id-{n}");
        buffer.put_i16(2);
        buffer.put_i32(i32::try_from(id.len()).expect("short"));
        buffer.put_slice(id.as_bytes());
        buffer.put_i32(4);
        buffer.put_i32(n);
    }
    buffer.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_load_at_a_time_holds_a_tables_replace_lock_and_sees_whether_it_holds_rows() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "pg_replace_lock").await.expect("scope");
    let mut first = scope.postgres().await.expect("postgres");
    let mut second = scope.postgres().await.expect("postgres");
    first.batch_execute("CREATE TABLE users (id text, n int)").await.expect("table");
    let plan = TablePlan::resolve(&first, &spec("users", &["id", "n"], &["id"])).await.expect("plan");
    assert!(plan.copies_into_empty_table(), "a text key compares by bytes");

    let load = first.transaction().await.expect("transaction");
    assert!(plan.try_lock_replace(&load).await.expect("lock"), "nobody else is replacing");
    assert!(!plan.holds_rows(&load).await.expect("rows"), "an empty table: rows may be copied straight in");
    let other = second.transaction().await.expect("transaction");
    assert!(!plan.try_lock_replace(&other).await.expect("lock"), "the first load holds it: this one stages");
    let (waited, ()) = tokio::join!(plan.lock_replace(&other), async {
        load.batch_execute("INSERT INTO users VALUES ('a', 1)").await.expect("insert");
        load.commit().await.expect("commit");
    });
    waited.expect("the lock, once the first load committed");
    assert!(plan.holds_rows(&other).await.expect("rows"), "the first load's row is seen once locked");
    other.rollback().await.expect("rollback");

    first
        .batch_execute(
            "CREATE COLLATION IF NOT EXISTS ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false); \
             CREATE TABLE ci_users (id text COLLATE ci, n int)",
        )
        .await
        .expect("table");
    let case_blind =
        TablePlan::resolve(&first, &spec("ci_users", &["id", "n"], &["id"])).await.expect("plan");
    assert!(!case_blind.copies_into_empty_table(), "'A' and 'a' are one key in other bytes: always staged");
    drop((first, second));
    scope.cleanup().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_several_tables_are_copied_in_segments_on_the_loads_connection() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "pg_segments").await.expect("scope");
    let mut client = scope.postgres().await.expect("postgres");
    client
        .batch_execute("CREATE TABLE left_rows (id text, n int); CREATE TABLE right_rows (id text, n int)")
        .await
        .expect("tables");
    let left = TablePlan::resolve(&client, &spec("left_rows", &["id", "n"], &[])).await.expect("plan");
    let right = TablePlan::resolve(&client, &spec("right_rows", &["id", "n"], &[])).await.expect("plan");

    // Both tables get rows in turns, far more than one segment's worth each, so the
    // connection switches between them many times.
    let transaction = client.transaction().await.expect("transaction");
    let mut copies = SharedCopies::new();
    let to_left = copies.add(&left).expect("copyable");
    let to_right = copies.add(&right).expect("copyable");
    let senders = async move {
        for round in 0..40 {
            to_left.rows(rows(round * 10_000, 10_000)).await?;
            if round % 2 == 0 {
                to_right.rows(rows(round * 5_000, 5_000)).await?;
            }
        }
        to_left.done().await?;
        to_right.done().await
    };
    let (sent, copied) = tokio::join!(senders, copies.run(transaction.client()));
    sent.expect("sent");
    assert!(copied.expect("copied"), "every table said it was done");
    let counts = transaction
        .query_one(
            "SELECT (SELECT count(*) FROM left_rows), (SELECT count(DISTINCT n) FROM left_rows), \
             (SELECT count(*) FROM right_rows), (SELECT min(n) FROM right_rows), (SELECT max(n) FROM right_rows)",
            &[],
        )
        .await
        .expect("counts");
    let counts: (i64, i64, i64, i32, i32) =
        (counts.get(0), counts.get(1), counts.get(2), counts.get(3), counts.get(4));
    assert_eq!(counts, (400_000, 400_000, 100_000, 0, 194_999), "every row once, none lost between segments");
    transaction.commit().await.expect("commit");

    // A sink that goes away without saying it is done aborts the running COPY: the
    // transaction fails and nothing it copied is kept.
    let transaction = client.transaction().await.expect("transaction");
    let mut copies = SharedCopies::new();
    let to_left = copies.add(&left).expect("copyable");
    let abandoned = async move {
        to_left.rows(rows(1_000_000, 1_000)).await.expect("sent");
        drop(to_left);
    };
    let ((), copied) = tokio::join!(abandoned, copies.run(transaction.client()));
    assert!(!copied.expect("no error of its own"), "not every sink was done");
    // The server ends a failed transaction with a rollback, whatever the client asks.
    let _ = transaction.commit().await;
    let left_rows: i64 = client.query_one("SELECT count(*) FROM left_rows", &[]).await.expect("count").get(0);
    assert_eq!(left_rows, 400_000, "the abandoned rows are not in the table");
    drop(client);
    scope.cleanup().await.expect("cleanup");
}
