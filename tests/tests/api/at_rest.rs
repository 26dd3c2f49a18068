//! No readable ID number at rest (issue 15): after bookings, receipt orders and idempotent
//! retries over HTTP, no full ID number is in the SQLite files (database, WAL) nor in any
//! Redis value under the app's prefix; orders stored with the plain number before are
//! migrated at start-up and the number's old bytes scrubbed.

use std::path::Path;

use serde_json::json;
use server::admin::Role;
use server::receipts::OrderPage;
use tests::booking::{adult_id, applicant, bookable_weekday, child, slot_id};
use tests::receipts::ID_NUMBER;
use tests::{json, on_both_backends, Backend, SharedStore, TestApp};

/// Every byte the store keeps: each file under the SQLite data directory, or every value
/// (strings, hash fields and values, members, scores) of every Redis key under the prefix.
pub(crate) async fn dump(shared: &SharedStore) -> Vec<u8> {
    match shared {
        SharedStore::Sqlite(dir) => {
            let mut bytes = Vec::new();
            files(dir.path(), &mut bytes);
            bytes
        }
        SharedStore::RedisCluster { .. } => unreachable!("on_both_backends: SQLite and one Redis"),
        SharedStore::Redis { url, prefix } => {
            let client = ::redis::Client::open(url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let keys = tests::redis_server::keys_under(&mut conn, prefix).await;
            assert!(!keys.is_empty(), "nothing under {prefix}");
            let mut bytes = Vec::new();
            for key in keys {
                let kind: String = ::redis::cmd("TYPE")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let command = match kind.as_str() {
                    "string" => ::redis::cmd("GET").arg(&key).clone(),
                    "hash" => ::redis::cmd("HGETALL").arg(&key).clone(),
                    "set" => ::redis::cmd("SMEMBERS").arg(&key).clone(),
                    "zset" => ::redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .clone(),
                    "list" => ::redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
                    "none" => continue,
                    other => panic!("{key}: a {other} this dump does not read"),
                };
                let values: Vec<Vec<u8>> = command.query_async(&mut conn).await.unwrap();
                bytes.extend(key.into_bytes());
                values.into_iter().for_each(|v| bytes.extend(v));
            }
            bytes
        }
    }
}

fn files(dir: &Path, bytes: &mut Vec<u8>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, bytes);
        } else {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
}

/// How many times `needle` occurs in `haystack`.
pub(crate) fn occurrences(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

fn found(dump: &[u8], ids: &[String]) -> Vec<(String, usize)> {
    ids.iter()
        .map(|id| (id.clone(), occurrences(dump, id)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

async fn no_full_id_number_in_a_dump(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.login("openid-at-rest").await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let order = app.order_receipt(&user, "portrait-test0.jpg").await;
    assert_eq!(order["id_number_masked"], "4419**********0024");
    let number = app.approve(&reviewer, order["id"].as_str().unwrap()).await["receipt_no"]
        .as_str()
        .unwrap()
        .to_owned();
    let day = bookable_weekday();
    let owner = json!({"name": "张三", "id_number": ID_NUMBER, "phone": "13812345678"});
    let with_receipt = json!({
        "slot_id": slot_id("humen", day, "0900"),
        "service": "expiry_renewal",
        "applicant": owner,
        "photo_receipt_no": number,
    });
    let (kid, guardian) = child(5);
    let for_a_child = json!({
        "slot_id": slot_id("humen", day, "0930"),
        "service": "expiry_renewal",
        "applicant": kid,
        "guardian": guardian,
    });
    let adult = json!({
        "slot_id": slot_id("humen", day, "1000"),
        "service": "expiry_renewal",
        "applicant": applicant(3),
    });
    for (body, key) in [
        (&with_receipt, "key-receipt"),
        (&for_a_child, "key-child"),
        (&adult, "key-adult"),
    ] {
        let first = app.book(&user, body, Some(key)).await;
        assert_eq!(first.status(), 201, "{}", json(first).await);
        // The retry replays the first answer: its record's digest matched the body.
        let again = app.book(&user, body, Some(key)).await;
        assert!(again.status().is_success(), "{}", json(again).await);
    }
    let ids = vec![
        ID_NUMBER.to_owned(),
        kid["id_number"].as_str().unwrap().to_owned(),
        guardian["id_number"].as_str().unwrap().to_owned(),
        adult_id(3),
    ];
    let dump = dump(&app.shared).await;
    println!(
        "{backend:?}: {} bytes of store scanned for {} ID numbers",
        dump.len(),
        ids.len()
    );
    assert_eq!(found(&dump, &ids), vec![], "full ID numbers in the store");
}

/// An order and an `Idempotency-Key` record as stored before issue 15, written straight to
/// the store (and, on SQLite, one more such order deleted, its bytes left in free pages).
async fn write_old_format(shared: &SharedStore) -> String {
    let order_id = {
        let app = TestApp::served_at(String::new(), shared.clone());
        app.seed_order("openid-old", "portrait-test0.jpg").await
    };
    let unkeyed = "9".repeat(64);
    match shared {
        SharedStore::Sqlite(dir) => {
            let conn = rusqlite::Connection::open(dir.path().join("banzheng.db")).unwrap();
            let doc: String = conn
                .query_row(
                    "SELECT doc FROM receipt_orders WHERE id = ?1",
                    [&order_id],
                    |r| r.get(0),
                )
                .unwrap();
            let old = old_doc(&doc);
            conn.execute(
                "UPDATE receipt_orders SET doc = ?2 WHERE id = ?1",
                [&order_id, &old],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO receipt_orders (id, user_id, status, created_at, submitted_at, version, doc)
                 VALUES ('gone', 'u', 'rejected', 0, 0, 1, ?1)",
                [&old],
            )
            .unwrap();
            conn.execute("DELETE FROM receipt_orders WHERE id = 'gone'", [])
                .unwrap();
            conn.execute(
                "INSERT INTO booking_idempotency (user_id, key, body_hash, outcome, expires_at)
                 VALUES ('u', 'k', ?1, 'x', 99999999999999)",
                [&unkeyed],
            )
            .unwrap();
        }
        SharedStore::RedisCluster { .. } => unreachable!("on_both_backends: SQLite and one Redis"),
        SharedStore::Redis { url, prefix } => {
            let client = ::redis::Client::open(url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let key = format!("{prefix}:{{receipts}}:order:{order_id}");
            let doc: String = ::redis::cmd("HGET")
                .arg(&key)
                .arg("doc")
                .query_async(&mut conn)
                .await
                .unwrap();
            let _: () = ::redis::cmd("HSET")
                .arg(&key)
                .arg("doc")
                .arg(old_doc(&doc))
                .query_async(&mut conn)
                .await
                .unwrap();
            let _: () = ::redis::cmd("HSET")
                .arg(format!("{prefix}:{{booking-user:u}}:idem:k"))
                .arg("hash")
                .arg(&unkeyed)
                .arg("outcome")
                .arg("x")
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
    order_id
}

/// `doc` as stored before: the plain number in place of its hash and masked form.
fn old_doc(doc: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(doc).unwrap();
    let fields = value.as_object_mut().unwrap();
    fields.remove("id_hash").unwrap();
    fields.remove("id_number_masked").unwrap();
    fields.insert("id_number".into(), ID_NUMBER.into());
    value.to_string()
}

async fn old_orders_are_migrated_and_scrubbed(backend: Backend) {
    let shared = SharedStore::fresh(backend).await;
    // The schema exists (and, on SQLite, its first scrub is done) as on a running server.
    drop(TestApp::spawn_on(shared.clone(), &[]).await);
    let order_id = write_old_format(&shared).await;
    let before = occurrences(&dump(&shared).await, ID_NUMBER);
    assert!(before > 0, "the old format holds the plain number");

    let app = TestApp::spawn_on(shared.clone(), &[]).await;
    let after = occurrences(&dump(&shared).await, ID_NUMBER);
    println!("{backend:?}: the plain ID number {before} times in the store before the migration, {after} after");
    assert_eq!(after, 0, "plain ID number left in the store");

    let store = shared.open().await;
    let order = store.receipt_order(&order_id).await.unwrap().unwrap();
    assert_eq!(order.id_number_masked, "4419**********0024");
    assert_eq!(
        order.id_hash,
        shared
            .id_hasher()
            .hash(&server::person::IdNumber::parse(ID_NUMBER).unwrap())
    );
    assert_eq!(
        store.forget_unkeyed_digests().await.unwrap(),
        0,
        "the unkeyed digest is gone"
    );
    let page = OrderPage {
        status: None,
        now: chrono::Utc::now(),
        after: None,
        limit: 10,
    };
    assert_eq!(
        store
            .user_receipt_orders(&order.user_id, &page)
            .await
            .unwrap()
            .len(),
        1
    );
    // The migrated order is the owner's receipt for booking: the server's hash matches.
    let reviewer = app.admin_token(Role::Reviewer).await;
    assert_eq!(
        app.approve(&reviewer, &order_id).await["status"],
        "approved"
    );
    // Running it again (another instance, a restart) changes nothing.
    assert_eq!(store.hide_id_numbers(&shared.id_hasher()).await.unwrap(), 0);
}

on_both_backends!(
    no_full_id_number_in_a_dump,
    old_orders_are_migrated_and_scrubbed
);

/// A database from before issue 15 with nothing left to replace, only the bytes of deleted
/// orders in its free pages: its first start scrubs it all the same (migration 1502).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_is_scrubbed_on_its_first_start() {
    let shared = SharedStore::fresh(Backend::Sqlite).await;
    drop(TestApp::spawn_on(shared.clone(), &[]).await);
    let SharedStore::Sqlite(dir) = &shared else {
        unreachable!()
    };
    {
        let conn = rusqlite::Connection::open(dir.path().join("banzheng.db")).unwrap();
        conn.pragma_update(None, "secure_delete", "OFF").unwrap();
        conn.execute("DELETE FROM schema_migrations WHERE version = 1502", [])
            .unwrap();
        conn.execute(
            "INSERT INTO receipt_orders (id, user_id, status, created_at, submitted_at, version, doc)
             VALUES ('gone', 'u', 'rejected', 0, 0, 1, ?1)",
            [format!(r#"{{"id_number":"{ID_NUMBER}"}}"#)],
        )
        .unwrap();
        conn.execute("DELETE FROM receipt_orders WHERE id = 'gone'", [])
            .unwrap();
    }
    let before = occurrences(&dump(&shared).await, ID_NUMBER);
    assert!(before > 0, "the deleted order's bytes are in the files");
    let _app = TestApp::spawn_on(shared.clone(), &[]).await;
    let after = occurrences(&dump(&shared).await, ID_NUMBER);
    println!("deleted order's ID number: {before} times in the files before the first start, {after} after");
    assert_eq!(after, 0);
}
