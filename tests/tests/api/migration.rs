//! Redis stores written before issue 16 kept every booking key under one tag (`{booking}`);
//! the server moves them to the per-hall layout at start, so residents keep their appointments.
//! The old layout is made here by rewriting a store the server filled over HTTP, key by key, to
//! the formats of commit 5205ac2.

use std::collections::BTreeMap;

use ::redis::AsyncCommands;
use serde_json::{json, Value};
use server::admin::Role;
use server::booking::store::fail_points;
use server::store::RedisConn;
use tests::booking::{applicant, bookable_weekday, open_weekday_after, slot_id};
use tests::redis_server::keys_under;
use tests::{
    assert_error, json, on_backend, Backend, RedisCluster, RedisServer, SharedStore, TestApp,
};

fn booking(slot: &str, applicant: Value) -> Value {
    json!({"slot_id": slot, "service": "expiry_renewal", "applicant": applicant})
}

/// What residents and staff see, to compare before and after the move.
struct Seen {
    lists: Vec<Value>,
    remaining: Vec<u64>,
}

/// The data set: two users, two halls; one booked with an `Idempotency-Key`, one cancelled.
struct Data {
    tokens: Vec<String>,
    slots: Vec<String>,
    held: Value,
    held_body: Value,
}

const KEY: &str = "migration-key-1";

async fn fill(app: &TestApp) -> Data {
    // Two days ahead at least: both reminders (the evening before) are still to come.
    let day = open_weekday_after(bookable_weekday());
    let slots = vec![
        slot_id("dongcheng", day, "0930"),
        slot_id("nancheng", day, "1000"),
    ];
    let tokens = vec![app.login("migrant").await, app.login("neighbour").await];
    let held_body = booking(&slots[0], applicant(1));
    let response = app.book(&tokens[0], &held_body, Some(KEY)).await;
    assert_eq!(response.status(), 201);
    let held = json(response).await;
    let response = app
        .book(&tokens[0], &booking(&slots[1], applicant(2)), None)
        .await;
    assert_eq!(response.status(), 201);
    let cancelled = json(response).await;
    let path = format!(
        "/api/v1/appointments/{}/cancel",
        cancelled["id"].as_str().unwrap()
    );
    assert_eq!(
        app.post_with_token(&path, &tokens[0], &json!({}))
            .await
            .status(),
        200
    );
    let response = app
        .book(&tokens[1], &booking(&slots[0], applicant(3)), None)
        .await;
    assert_eq!(response.status(), 201);
    Data {
        tokens,
        slots,
        held,
        held_body,
    }
}

async fn seen(app: &TestApp, data: &Data) -> Seen {
    let mut lists = Vec::new();
    for token in &data.tokens {
        lists.push(json(app.get_with_token("/api/v1/appointments", token).await).await);
    }
    let mut remaining = Vec::new();
    for slot in &data.slots {
        remaining.push(app.remaining(slot).await);
    }
    Seen { lists, remaining }
}

/// Every key of `shared`, read from each node it may be on (plain connections: SCAN lists a
/// node's own keys).
async fn all_keys(shared: &SharedStore) -> Vec<String> {
    let (urls, prefix) = match shared {
        SharedStore::Redis { prefix, .. } => (vec![RedisServer::shared().await.url()], prefix),
        SharedStore::RedisCluster { prefix, .. } => {
            (RedisCluster::shared().await.node_urls(), prefix)
        }
        SharedStore::Sqlite(_) => unreachable!("Redis only"),
    };
    let mut keys = Vec::new();
    for url in urls {
        let client = ::redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        keys.extend(keys_under(&mut conn, prefix).await);
    }
    keys.sort();
    keys
}

/// `key` (`<prefix>:{tag}:rest`) as (tag, rest).
fn split<'a>(prefix: &str, key: &'a str) -> (&'a str, &'a str) {
    let tagged = key
        .strip_prefix(prefix)
        .and_then(|k| k.strip_prefix(":{"))
        .unwrap_or_else(|| panic!("{key} not under {prefix}"));
    tagged.split_once("}:").unwrap()
}

fn prefix_of(shared: &SharedStore) -> &str {
    match shared {
        SharedStore::Redis { prefix, .. } | SharedStore::RedisCluster { prefix, .. } => prefix,
        SharedStore::Sqlite(_) => unreachable!("Redis only"),
    }
}

/// Adds the contents of `from` (a hash or a sorted set) to `to`, and deletes `from`: the
/// halls' parts of what was one key.
async fn merge(conn: &mut RedisConn, from: &str, to: &str) {
    let kind: String = ::redis::cmd("TYPE")
        .arg(from)
        .query_async(conn)
        .await
        .unwrap();
    if kind == "zset" {
        let members: Vec<(String, f64)> = conn.zrange_withscores(from, 0, -1).await.unwrap();
        for (member, score) in members {
            let () = conn.zadd(to, member, score).await.unwrap();
        }
    } else {
        let fields: Vec<(String, String)> = conn.hgetall(from).await.unwrap();
        let () = conn.hset_multiple(to, &fields).await.unwrap();
    }
    let () = conn.del(from).await.unwrap();
}

/// Rewrites the booking keys of `shared` to the layout of commit 5205ac2: every key under
/// `{booking}` (`appt:<id>`, `code:<code>`, `seats:<hall>:<day>`, `due`, `user:<user>:…`,
/// `applicant:<user>:<hash>:…`, `idem:<user>:<key>`, one outbox); what it did not have (the
/// halls' registry, the id index) goes.
async fn to_the_single_tag_layout(shared: &SharedStore) {
    let prefix = prefix_of(shared);
    let old = |rest: String| format!("{prefix}:{{booking}}:{rest}");
    let mut conn = shared.redis_conn().await;
    for key in all_keys(shared).await {
        let (tag, rest) = split(prefix, &key);
        let (kind, name) = tag.split_once(':').unwrap_or((tag, ""));
        let to = match (kind, rest) {
            ("booking-hall", "due") => {
                merge(&mut conn, &key, &old("due".into())).await;
                continue;
            }
            ("booking-hall", outbox) if outbox.starts_with("outbox:") => {
                merge(&mut conn, &key, &old(outbox.into())).await;
                continue;
            }
            ("booking-hall", seats) if seats.starts_with("seats:") => {
                old(format!("seats:{name}:{}", &seats["seats:".len()..]))
            }
            ("booking-hall", appt) if appt.starts_with("appt:") => old(appt.into()),
            ("booking-code", "id") => old(format!("code:{name}")),
            // A window's counter was a hash of the window's end and its count.
            ("booking-user", counter) if counter.contains("attempts:w:") => {
                let (counts, ends) = counter.rsplit_once(":w:").unwrap();
                let to = match counts.split_once(':') {
                    Some(("applicant", what)) => old(format!("applicant:{name}:{what}")),
                    _ => old(format!("user:{name}:{counts}")),
                };
                let count: String = conn.get(&key).await.unwrap();
                let ttl: i64 = conn.pttl(&key).await.unwrap();
                let () = conn
                    .hset_multiple(&to, &[("ends", ends), ("n", &count)])
                    .await
                    .unwrap();
                let () = conn.pexpire(&to, ttl).await.unwrap();
                let () = conn.del(&key).await.unwrap();
                continue;
            }
            ("booking-user", rest) => match rest.split_once(':') {
                Some(("idem", key)) => old(format!("idem:{name}:{key}")),
                Some(("applicant", what)) => old(format!("applicant:{name}:{what}")),
                _ => old(format!("user:{name}:{rest}")),
            },
            ("booking-id", _) | ("booking", "halls") | ("notify", "outbox-tags") => {
                let () = conn.del(&key).await.unwrap();
                continue;
            }
            _ => continue,
        };
        tests::move_key(&mut conn, &key, &to).await;
    }
}

/// Every booking key (but the outboxes') and its contents, in a form that compares.
async fn booking_state(shared: &SharedStore) -> BTreeMap<String, String> {
    let prefix = prefix_of(shared);
    let mut conn = shared.redis_conn().await;
    let mut state = BTreeMap::new();
    for key in all_keys(shared).await {
        let (tag, rest) = split(prefix, &key);
        if !tag.starts_with("booking") || rest.starts_with("outbox:") {
            continue;
        }
        let kind: String = ::redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let contents = match kind.as_str() {
            "string" => conn.get::<_, String>(&key).await.unwrap(),
            "hash" => format!(
                "{:?}",
                conn.hgetall::<_, BTreeMap<String, String>>(&key)
                    .await
                    .unwrap()
            ),
            "set" => {
                let mut members: Vec<String> = conn.smembers(&key).await.unwrap();
                members.sort();
                format!("{members:?}")
            }
            "zset" => format!(
                "{:?}",
                conn.zrange_withscores::<_, Vec<(String, f64)>>(&key, 0, -1)
                    .await
                    .unwrap()
            ),
            other => panic!("{key} is a {other}"),
        };
        state.insert(key, contents);
    }
    state
}

/// What residents and staff find after the move, as before it; and the rules still hold.
async fn same_after_the_move(app: &TestApp, data: &Data, before: &Seen) {
    let after = seen(app, data).await;
    assert_eq!(after.lists, before.lists, "each user's appointments");
    assert_eq!(after.remaining, before.remaining, "seats left per slot");
    let again = booking(&data.slots[1], applicant(1));
    assert_error(
        app.book(&data.tokens[0], &again, None).await,
        409,
        "ALREADY_BOOKED",
    )
    .await;
    let replayed = app.book(&data.tokens[0], &data.held_body, Some(KEY)).await;
    assert_eq!(replayed.status(), 201, "the idempotent answer is kept");
    assert_eq!(json(replayed).await["id"], data.held["id"]);
    let staff = app.admin_token(Role::Staff).await;
    let check_in = |code: String| {
        let path = format!("/api/v1/admin/appointments/{code}/check-in");
        let staff = staff.clone();
        async move { app.post_with_token(&path, &staff, &json!({})).await }
    };
    // Found by its code (it is not today's); an unknown code is not.
    let code = data.held["code"].as_str().unwrap().to_owned();
    assert_error(check_in(code).await, 409, "NOT_TODAY").await;
    assert_error(check_in("ZZZZ9999".into()).await, 404, "NOT_FOUND").await;
}

async fn single_tag_layout_is_moved_at_start(backend: Backend) {
    let shared = SharedStore::fresh(backend).await;
    let app = TestApp::spawn_on(shared.clone(), &[]).await;
    let data = fill(&app).await;
    let before = seen(&app, &data).await;
    let state = booking_state(&shared).await;
    to_the_single_tag_layout(&shared).await;
    // Two instances starting at once: one moves, the other waits for it and finds nothing.
    let (first, second) = (shared.open().await, shared.open().await);
    let (first, second) = futures_util::future::join(
        first.migrate_single_tag_layout(),
        second.migrate_single_tag_layout(),
    )
    .await;
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(!(first.moved_any() && second.moved_any()), "moved twice");
    let moved = if first.moved_any() { first } else { second };
    assert_eq!(
        (moved.appointments, moved.seat_days, moved.unknown),
        (3, 2, 0)
    );
    assert_eq!(
        moved.reminders, 2,
        "the pending reminders of both booked ones"
    );
    assert_eq!(
        booking_state(&shared).await,
        state,
        "the layout the server writes"
    );
    let app = TestApp::spawn_on(shared.clone(), &[]).await;
    same_after_the_move(&app, &data, &before).await;
}

/// A migration killed after every number of writes, run again each time, ends as one that
/// ran through.
async fn an_interrupted_move_run_again_ends_the_same(backend: Backend) {
    let shared = SharedStore::fresh(backend).await;
    let app = TestApp::spawn_on(shared.clone(), &[]).await;
    let data = fill(&app).await;
    let before = seen(&app, &data).await;
    let state = booking_state(&shared).await;
    to_the_single_tag_layout(&shared).await;
    let store = shared.open().await;
    let prefix = prefix_of(&shared).to_owned();
    // A start killed while moving left its lock: the next waits until it runs out.
    let lock = format!("{prefix}:{{booking}}:moving");
    let mut conn = shared.redis_conn().await;
    let () = conn.pset_ex(&lock, "killed", 1000).await.unwrap();
    let mut interrupted = 0;
    for writes in 0.. {
        fail_points::stop_migration_after(&prefix, writes);
        if store.migrate_single_tag_layout().await.is_ok() {
            break;
        }
        interrupted += 1;
    }
    fail_points::clear(&prefix);
    assert!(interrupted > 10, "stopped {interrupted} times");
    assert_eq!(booking_state(&shared).await, state);
    let app = TestApp::spawn_on(shared.clone(), &[]).await;
    same_after_the_move(&app, &data, &before).await;
}

on_backend!(
    redis,
    Redis,
    single_tag_layout_is_moved_at_start,
    an_interrupted_move_run_again_ends_the_same
);
on_backend!(
    redis_cluster,
    RedisCluster,
    single_tag_layout_is_moved_at_start,
    an_interrupted_move_run_again_ends_the_same
);
