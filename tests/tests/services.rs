//! The services the end-to-end tests rely on behave as the tests assume: S3 enforces
//! signatures and keeps bytes, Kafka hands back what was produced through a consumer group,
//! and PostgreSQL schemas keep tests apart.

use std::collections::BTreeSet;
use std::time::Duration;

use sluice_e2e::{ProducedRecord, S3, TestScope, require_services};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn s3_objects_round_trip_under_the_test_prefix() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "s3_objects_round_trip").await.expect("test scope");
    let s3 = scope.s3();
    let binary: Vec<u8> = (0..=255).cycle().take(70_000).collect();
    let objects = [
        (scope.key("a.json"), b"{\"a\":1}".to_vec()),
        (scope.key("dir/b.bin"), binary),
        (scope.key("empty"), Vec::new()),
    ];
    for (key, body) in &objects {
        s3.put_object(scope.bucket(), key, body.clone()).await.expect("put object");
    }

    for (key, body) in &objects {
        let read = s3.get_object(scope.bucket(), key).await.expect("get object");
        assert!(read == *body, "{key}: read {} bytes, wrote {}", read.len(), body.len());
    }
    let listed = s3.list_keys(scope.bucket(), &scope.prefix()).await.expect("list keys");
    let written: Vec<String> = objects.iter().map(|(key, _)| key.clone()).collect();
    assert_eq!(listed, written);

    scope.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn s3_refuses_unsigned_and_wrongly_signed_requests() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "s3_refuses_unsigned").await.expect("test scope");
    let key = scope.key("secret.txt");
    scope.s3().put_object(scope.bucket(), &key, "secret").await.expect("put object");

    let status = unsigned_get_status(&services.s3_endpoint, &format!("/{}/{key}", scope.bucket())).await;
    assert_eq!(status, 403, "an unsigned GET of an existing object must be refused");

    let wrong_secret = S3::with_credentials(services, &services.aws_access_key_id, "not-the-secret");
    let error = wrong_secret
        .get_object(scope.bucket(), &key)
        .await
        .expect_err("a request signed with the wrong secret must be refused");
    assert!(error.to_string().contains("SignatureDoesNotMatch"), "unexpected error: {error}");

    let unknown_key = S3::with_credentials(services, "nobody", &services.aws_secret_access_key);
    unknown_key
        .get_object(scope.bucket(), &key)
        .await
        .expect_err("a request signed by an unknown access key must be refused");

    scope.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn s3_buckets_exist_only_when_created() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "s3_buckets_exist_only_when_created").await.expect("test scope");
    let bucket = scope.create_bucket("own").await.expect("create bucket");
    assert!(scope.s3().list_keys(&bucket, "").await.expect("list").is_empty(), "a new bucket is empty");
    scope.s3().put_object(&bucket, "k", "v").await.expect("put into own bucket");

    let missing = format!("{bucket}-missing");
    let error = scope
        .s3()
        .put_object(&missing, "k", "v")
        .await
        .expect_err("writing to a bucket nobody created must fail, as on AWS");
    assert!(error.to_string().contains("NoSuchBucket"), "unexpected error: {error}");

    scope.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn kafka_records_round_trip_through_a_consumer_group() {
    let Some(services) = require_services!() else { return };
    let scope = TestScope::new(services, "kafka_records_round_trip").await.expect("test scope");
    let topic = scope.create_topic("events", 3).await.expect("create topic");
    let records: Vec<ProducedRecord> = (0..100u32)
        .map(|index| {
            // Values include every byte value and no UTF-8 guarantee.
            let value: Vec<u8> =
                (0..(index as usize * 7 % 300)).map(|byte| (byte as u8) ^ (index as u8)).collect();
            ProducedRecord::new(value)
                .with_key(format!("key-{index:03}"))
                .with_header("index", index.to_be_bytes())
        })
        .collect();

    let positions = scope.produce(&topic, &records).await.expect("produce");
    let partitions_written: BTreeSet<i32> = positions.iter().map(|(partition, _)| *partition).collect();
    assert_eq!(partitions_written, BTreeSet::from([0, 1, 2]), "100 keys spread over all 3 partitions");

    let mut consumed = scope.consume(&topic, records.len(), Duration::from_secs(60)).await.expect("consume");
    assert_eq!(consumed.len(), records.len());
    consumed.sort_by(|a, b| a.key.cmp(&b.key));
    for ((record, position), read) in records.iter().zip(&positions).zip(&consumed) {
        assert_eq!(read.topic, topic);
        assert_eq!(read.key, record.key);
        assert!(read.value == record.value, "value of {:?} differs", record.key);
        assert_eq!(read.headers, record.headers);
        assert_eq!((read.partition, read.offset), *position, "{:?}", record.key);
    }

    let nothing_more = scope
        .consume_until_idle(&topic, Duration::from_secs(2), Duration::from_secs(30))
        .await
        .expect("second read");
    assert_eq!(nothing_more.len(), records.len(), "a new group rereads exactly the same records");

    scope.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn postgres_tables_stay_in_the_test_schema() {
    let Some(services) = require_services!() else { return };
    let mine = TestScope::new(services, "postgres_mine").await.expect("test scope");
    let other = TestScope::new(services, "postgres_other").await.expect("test scope");
    let client = mine.postgres().await.expect("connect");
    client
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        .await
        .expect("create table");
    for (id, name) in [(1, "one"), (2, "two")] {
        client.execute("INSERT INTO items (id, name) VALUES ($1, $2)", &[&id, &name]).await.expect("insert");
    }

    let rows = client.query("SELECT id, name FROM items ORDER BY id", &[]).await.expect("select");
    let read: Vec<(i32, String)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(read, vec![(1, "one".to_owned()), (2, "two".to_owned())]);
    let schema: String = client
        .query_one("SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'items' AND table_schema = current_schema()", &[])
        .await
        .expect("table's schema")
        .get(0);
    assert_eq!(schema, mine.schema());

    let other_client = other.postgres().await.expect("connect");
    let error = other_client
        .query("SELECT * FROM items", &[])
        .await
        .expect_err("another test's schema must not see the table");
    assert_eq!(error.code(), Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE), "{error}");

    mine.cleanup().await.expect("cleanup");
    other.cleanup().await.expect("cleanup");
}

/// Sends a GET without any signature and returns the HTTP status.
async fn unsigned_get_status(endpoint: &str, path: &str) -> u16 {
    let authority = endpoint.strip_prefix("http://").expect("the test S3 endpoint is plain http");
    let mut stream = tokio::net::TcpStream::connect(authority).await.expect("connect to S3");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read response");
    let response = String::from_utf8_lossy(&response);
    let status_line = response.lines().next().unwrap_or_default();
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {status_line:?}"))
}
