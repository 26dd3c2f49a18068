//! Erasure on request (issue 20): `DELETE /api/v1/me` over HTTP on both backends leaves none
//! of the person's name, phone numbers, ID numbers, photos or openid in the store's files or
//! Redis values, keeps an appointment still running until it ends (then the sweep erases it),
//! revokes the user's tokens, and a ban survives it. Backups: `server backup` → wipe →
//! `server restore` (SQLite) and an RDB snapshot → wipe → `server erasures replay` (Redis) give
//! the same data back, with the erasures made after the backup applied again.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use server::admin::Role;
use server::notify::Event;
use tests::booking::{adult_id, bookable_weekday, open_weekday_after, seconds_until, slot_id};
use tests::process::ServerProcess;
use tests::{json, on_both_backends, server_binary, Backend, RedisServer, SharedStore, TestApp};

use crate::at_rest::{dump, occurrences};

const OPENID: &str = "openid-erasure-subject";
const BOUND_PHONE: &str = "13700001111";
/// The applicant of the appointment that has ended (cancelled) when the user erases.
const ENDED_NAME: &str = "欧阳娜娜";
const ENDED_PHONE: &str = "13700002222";
/// The applicant of the appointment still booked when the user erases.
const RUNNING_NAME: &str = "司马相如";
const RUNNING_PHONE: &str = "13700003333";
/// The name `tests::receipts::order_fields` orders under.
const ORDER_NAME: &str = "张三";

fn booking(slot: &str, name: &str, id_number: &str, phone: &str) -> Value {
    json!({
        "slot_id": slot,
        "service": "expiry_renewal",
        "applicant": {"name": name, "id_number": id_number, "phone": phone},
    })
}

/// An app over a fresh store, its erasure journal in a directory of its own (on Redis the
/// data directory is the working directory's `data`, shared by every test).
async fn spawn(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    let journal = tempfile::tempdir().unwrap();
    let dir = journal.path().display().to_string();
    let mut vars = vec![("BANZHENG_BACKUP__DIR", dir.as_str())];
    vars.extend_from_slice(extra);
    let app = TestApp::spawn_on(SharedStore::fresh(backend).await, &vars).await;
    (app, journal)
}

/// Books for the applicant (`adult_id(n)`) and returns the appointment's id.
async fn booked(
    app: &TestApp,
    token: &str,
    slot: &str,
    name: &str,
    n: u32,
    phone: &str,
    idempotency_key: Option<&str>,
) -> String {
    let body = booking(slot, name, &adult_id(n), phone);
    let response = app.book(token, &body, idempotency_key).await;
    assert_eq!(response.status(), 201, "booking {body}");
    json(response).await["id"].as_str().unwrap().to_owned()
}

async fn cancel(app: &TestApp, token: &str, id: &str) {
    let path = format!("/api/v1/appointments/{id}/cancel");
    let cancelled = app.post_with_token(&path, token, &json!({})).await;
    assert_eq!(cancelled.status(), 200);
}

/// An ID number as stored beside its keyed hash: `4419**********1234`.
fn masked(id_number: &str) -> String {
    format!("{}**********{}", &id_number[..4], &id_number[14..])
}

async fn erase_me(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .delete(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Which of `needles` the store still holds somewhere, with how often.
async fn still_stored(shared: &SharedStore, needles: &[&str]) -> Vec<(String, usize)> {
    let bytes = dump(shared).await;
    needles
        .iter()
        .map(|n| (n.to_string(), occurrences(&bytes, n)))
        .filter(|(_, count)| *count > 0)
        .collect()
}

async fn erasure_leaves_no_personal_data_and_ends_what_it_kept(backend: Backend) {
    let (app, _journal) = spawn(
        backend,
        &[
            ("BANZHENG_ERASURE__SWEEP_INTERVAL_SECS", "1"),
            ("BANZHENG_BOOKING__SWEEP_INTERVAL_SECS", "1"),
            ("BANZHENG_WECHAT__PUSH_TOKEN", "erasurePushToken20"),
        ],
    )
    .await;
    let token = app.login(OPENID).await;
    // Everything the person can leave with us: a verified phone number, subscriptions, a 客服
    // conversation, an ended and a running appointment (one under an Idempotency-Key), and a
    // receipt order whose photo was rejected.
    let code = app.sim().phone_code(OPENID, BOUND_PHONE).await;
    let bound = app
        .post_with_token("/api/v1/me/phone", &token, &json!({ "code": code }))
        .await;
    assert_eq!(bound.status(), 200);
    let template = app.template_id(Event::BookingConfirmed).await;
    assert!(app
        .subscribe(&token, &[&template])
        .await
        .status()
        .is_success());
    app.sim().kf_message(OPENID, "预约怎么改时间", 1).await;
    let day = bookable_weekday();
    let ended = booked(
        &app,
        &token,
        &slot_id("humen", day, "0900"),
        ENDED_NAME,
        41,
        ENDED_PHONE,
        Some("erasure-key-1"),
    )
    .await;
    cancel(&app, &token, &ended).await;
    let running = booked(
        &app,
        &token,
        &slot_id("humen", day, "1000"),
        RUNNING_NAME,
        42,
        RUNNING_PHONE,
        None,
    )
    .await;
    let order = app.order_receipt(&token, "portrait-test0.jpg").await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let rejected = app
        .review(
            &reviewer,
            order["id"].as_str().unwrap(),
            json!({"decision": "reject", "reasons": ["blurred"]}),
        )
        .await;
    assert_eq!(rejected.status(), 200);
    // What the erasure erases at once, and what the running appointment keeps until it ends.
    let (ended_id, running_id) = (masked(&adult_id(41)), masked(&adult_id(42)));
    let erased_now = [
        ENDED_NAME,
        ENDED_PHONE,
        &ended_id,
        BOUND_PHONE,
        ORDER_NAME,
        OPENID,
    ];
    let erased_later = [RUNNING_NAME, RUNNING_PHONE, running_id.as_str()];
    let personal = [&erased_now[..], &erased_later[..]].concat();
    // The scan finds each of them before: it can tell.
    assert_eq!(
        still_stored(&app.shared, &personal).await.len(),
        personal.len()
    );

    let erased = erase_me(&app, &token).await;
    assert_eq!(erased.status(), 200);
    let summary = json(erased).await;
    println!("{backend:?}: {summary}");
    let counts = &summary["erased"];
    assert_eq!(counts["account"], true, "{summary}");
    assert_eq!(counts["conversation"], true, "{summary}");
    assert_eq!(counts["appointments"], 1, "{summary}");
    assert_eq!(counts["receipt_orders"], 1, "{summary}");
    assert_eq!(counts["photos"], 2, "{summary}");
    assert_eq!(counts["idempotency_records"], 1, "{summary}");
    assert!(counts["subscriptions"].as_u64().unwrap() >= 1, "{summary}");
    assert!(counts["notifications"].as_u64().unwrap() >= 1, "{summary}");
    assert_eq!(
        summary["kept"],
        json!([{"kind": "appointment", "id": running, "until": "appointment_ends"}])
    );
    assert_eq!(summary["retained"], json!(["bans", "no_show_counts"]));
    // The token is revoked: nothing more is read or stored under it.
    assert_eq!(app.get_with_token("/api/v1/me", &token).await.status(), 401);
    let anonymous = app
        .client
        .delete(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    tests::assert_error(anonymous, 401, "UNAUTHORIZED").await;
    assert_eq!(erase_me(&app, &token).await.status(), 401);

    assert_eq!(
        still_stored(&app.shared, &erased_now).await,
        vec![],
        "erased data still in the store"
    );
    // What the running appointment needs is kept…
    assert_eq!(
        still_stored(&app.shared, &erased_later).await.len(),
        erased_later.len(),
        "the running appointment's applicant"
    );
    // …until it ends: a no-show once its slot (10:00–10:30) and the grace have passed.
    app.advance_clock(seconds_until(day, "11:01")).await;
    assert_eq!(
        swept(&app.shared, &erased_later).await,
        vec![],
        "the ended appointment was not erased by the sweep"
    );
    // Full ID numbers are never stored (`at_rest`), before or after.
    assert_eq!(
        still_stored(&app.shared, &[&adult_id(41), &adult_id(42)]).await,
        vec![]
    );
    // Logging in again gives an empty account.
    let token = app.login(OPENID).await;
    let me = json(app.get_with_token("/api/v1/me", &token).await).await;
    assert_eq!(me["user"]["phone"], Value::Null, "{me}");
    let theirs = json(app.get_with_token("/api/v1/appointments", &token).await).await;
    assert_eq!(theirs["appointments"], json!([]), "{theirs}");
    assert_eq!(app.receipt_orders(&token, "").await["orders"], json!([]));
}

async fn a_ban_survives_erasure(backend: Backend) {
    let (app, _journal) = spawn(backend, &[("BANZHENG_BOOKING__NO_SHOW_LIMIT", "1")]).await;
    let token = app.login(OPENID).await;
    let day = bookable_weekday();
    let missed = booked(
        &app,
        &token,
        &slot_id("qingxi", day, "0900"),
        ENDED_NAME,
        7,
        ENDED_PHONE,
        None,
    )
    .await;
    app.advance_clock(seconds_until(day, "10:01")).await;
    let token = app.login(OPENID).await;
    let seen = json(
        app.get_with_token(&format!("/api/v1/appointments/{missed}"), &token)
            .await,
    )
    .await;
    assert_eq!(seen["status"], "no_show");
    let erased = json(erase_me(&app, &token).await).await;
    assert_eq!(erased["erased"]["appointments"], 1, "{erased}");
    assert_eq!(
        still_stored(&app.shared, &[ENDED_NAME, ENDED_PHONE]).await,
        vec![]
    );

    // The same person logs in again and books for the same ID number: still banned.
    let token = app.login(OPENID).await;
    let next_day = open_weekday_after(day);
    let again = app
        .book(
            &token,
            &booking(
                &slot_id("qingxi", next_day, "0900"),
                "欧阳娜",
                &adult_id(7),
                "13700004444",
            ),
            None,
        )
        .await;
    tests::assert_error(again, 403, "BANNED").await;
}

/// Waits (the sweep runs every second) until none of `needles` is stored; what is left.
async fn swept(shared: &SharedStore, needles: &[&str]) -> Vec<(String, usize)> {
    let mut left = Vec::new();
    for _ in 0..100 {
        left = still_stored(shared, needles).await;
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    left
}

async fn orders_in_review_and_valid_receipts_are_kept_until_they_end(backend: Backend) {
    let (app, _journal) = spawn(backend, &[("BANZHENG_ERASURE__SWEEP_INTERVAL_SECS", "1")]).await;
    let token = app.login(OPENID).await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let approved = app.order_receipt(&token, "portrait-test0.jpg").await;
    let approved = approved["id"].as_str().unwrap().to_owned();
    let receipt = app.approve(&reviewer, &approved).await;
    let in_review = app.order_receipt(&token, "portrait-test0.jpg").await;
    let in_review = in_review["id"].as_str().unwrap().to_owned();

    let summary = json(erase_me(&app, &token).await).await;
    assert_eq!(summary["erased"]["receipt_orders"], 0, "{summary}");
    let expires_at = receipt["expires_at"].clone();
    assert!(expires_at.is_string(), "{receipt}");
    assert_eq!(
        summary["kept"],
        json!([
            // Newest first.
            {"kind": "receipt_order", "id": in_review, "until": "review"},
            {"kind": "receipt_order", "id": approved, "until": "receipt_expires", "expires_at": expires_at},
        ]),
    );
    // Reviewed after the erasure (rejected): the sweep erases the order with its photos, and
    // the review's notification to the erased user.
    let rejected = app
        .review(
            &reviewer,
            &in_review,
            json!({"decision": "reject", "reasons": ["blurred"]}),
        )
        .await;
    assert_eq!(rejected.status(), 200);
    let order = |id: &str| format!("/api/v1/admin/receipt-orders/{id}");
    let mut status = 0;
    for _ in 0..100 {
        status = app
            .get_with_token(&order(&in_review), &reviewer)
            .await
            .status()
            .as_u16();
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        status, 404,
        "the reviewed order was not erased by the sweep"
    );
    // The valid receipt stays, name and number, until it expires.
    let number = receipt["receipt_no"].as_str().unwrap();
    assert_eq!(
        still_stored(&app.shared, &[number, ORDER_NAME]).await.len(),
        2
    );
    assert_eq!(
        app.get_with_token(&order(&approved), &reviewer)
            .await
            .status(),
        200
    );
    app.advance_clock(181 * 86_400).await;
    assert_eq!(swept(&app.shared, &[number, ORDER_NAME]).await, vec![]);
    // (The reviewer's token has long expired.)
    let reviewer = app.admin_token(Role::Reviewer).await;
    assert_eq!(
        app.get_with_token(&order(&approved), &reviewer)
            .await
            .status(),
        404
    );
}

on_both_backends!(
    erasure_leaves_no_personal_data_and_ends_what_it_kept,
    a_ban_survives_erasure,
    orders_in_review_and_valid_receipts_are_kept_until_they_end,
);

/// Runs `server <args>` with `vars`: its exit code and output.
async fn run_server(vars: &[(String, String)], args: &[&str]) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(server_binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().cloned())
        .args(args)
        .output()
        .await
        .expect("the server binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// What the keeper sees: appointments and orders, and the order's photo.
type KeeperView = (Value, Vec<u8>);

/// A keeper with a booked appointment and an approved receipt order, and a leaver with a
/// cancelled appointment; returns the keeper's view.
async fn arrange(app: &TestApp) -> KeeperView {
    let day = bookable_weekday();
    let keeper = app.login("openid-keeper").await;
    let leaver = app.login(OPENID).await;
    for (token, slot, name, n, phone) in [
        (&keeper, "0900", "诸葛亮", 51, "13700005555"),
        (&leaver, "0930", ENDED_NAME, 52, ENDED_PHONE),
    ] {
        let id = booked(
            app,
            token,
            &slot_id("humen", day, slot),
            name,
            n,
            phone,
            None,
        )
        .await;
        if token == &leaver {
            // Ended, so the leaver's erasure erases it at once.
            cancel(app, token, &id).await;
        }
    }
    let order = app.order_receipt(&keeper, "portrait-test0.jpg").await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    app.approve(&reviewer, order["id"].as_str().unwrap()).await;
    keeper_view(app).await
}

async fn keeper_view(app: &TestApp) -> KeeperView {
    let keeper = app.login("openid-keeper").await;
    let appointments = json(app.get_with_token("/api/v1/appointments", &keeper).await).await;
    let orders = app.receipt_orders(&keeper, "").await;
    let id = orders["orders"][0]["id"]
        .as_str()
        .expect("an order")
        .to_owned();
    let photo = app
        .bytes(
            &format!("/api/v1/receipt-orders/{id}/photo"),
            &keeper,
            "image/jpeg",
        )
        .await;
    (
        json!({"appointments": appointments, "orders": orders}),
        photo,
    )
}

/// Each slot's seats taken are its booked appointments, in the database at `path`: what a
/// copy made halfway through a booking would break.
fn assert_seats_match_bookings(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mismatched: Vec<(String, i64, i64)> = conn
        .prepare(
            "SELECT s.hall_id || '-' || s.day || '-' || s.time AS slot, s.taken,
                    (SELECT COUNT(*) FROM appointments a
                      WHERE a.slot_id = s.hall_id || '-' || s.day || '-' || s.time
                        AND a.status = 'booked') AS booked
               FROM slot_seats s WHERE s.taken != booked",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(mismatched, vec![], "(slot, seats taken, booked)");
    let booked: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM appointments WHERE status = 'booked'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    println!("restored: {booked} booked appointments, seats consistent");
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The leaver erases after the backup: restoring it brings their data back only for the
/// journal to erase it again.
async fn leaver_erases(app: &TestApp) {
    let leaver = app.login(OPENID).await;
    let erased = erase_me(app, &leaver).await;
    assert_eq!(erased.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backup_wipe_restore_gives_the_same_data_with_later_erasures_applied() {
    let backups = tempfile::tempdir().unwrap();
    let shared = SharedStore::Sqlite(std::sync::Arc::new(tempfile::tempdir().unwrap()));
    let SharedStore::Sqlite(dir) = &shared else {
        unreachable!()
    };
    let mut vars = shared.vars();
    vars.retain(|(k, _)| k != "BANZHENG_BIND");
    vars.extend([
        (
            "BANZHENG_BACKUP__DIR".to_string(),
            backups.path().display().to_string(),
        ),
        (
            "BANZHENG_BACKUP__KEY".to_string(),
            "backup-key-for-the-restore-test-0001".to_string(),
        ),
        // The data directory goes in the wipe: the secrets must not go with it.
        (
            "BANZHENG_JWT_SECRET".to_string(),
            "jwt-secret-for-the-restore-test-00001".to_string(),
        ),
        (
            "BANZHENG_BOOKING__ID_HASH_KEY".to_string(),
            "id-key-for-the-restore-test-000001".to_string(),
        ),
        ("BANZHENG_NOTIFY__WORKER".to_string(), "false".to_string()),
        (
            "BANZHENG_BOOKING__SLOT_CAPACITY".to_string(),
            "100".to_string(),
        ),
    ]);
    let server = ServerProcess::start(&vars).await;
    let app = TestApp::served_at(server.address.clone(), shared.clone());
    let before = arrange(&app).await;

    // A file already there (readable by others) is replaced, 0600.
    let file = backups.path().join("banzheng.backup");
    std::fs::write(&file, b"old").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // Taken while the server books for others: the copy is one state of the database.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let busy = {
        let app = TestApp::served_at(server.address.clone(), shared.clone());
        let done = done.clone();
        tokio::spawn(async move {
            for n in 0..40 {
                let token = app.login(&format!("openid-busy-{n}")).await;
                let slot = slot_id("humen", bookable_weekday(), "1000");
                booked(&app, &token, &slot, "诸葛亮", 100 + n, "13700005555", None).await;
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    while done.load(std::sync::atomic::Ordering::Relaxed) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (code, said) = run_server(&vars, &["backup", "--to", file.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{said}");
    let during = done.load(std::sync::atomic::Ordering::Relaxed);
    busy.await.unwrap();
    println!("{said} (after {during} of 40 bookings)");
    assert_eq!(mode(&file), 0o600);
    let sealed = std::fs::read(&file).unwrap();
    for plain in [
        "诸葛亮",
        ENDED_NAME,
        ENDED_PHONE,
        "13700005555",
        "SQLite format",
    ] {
        assert_eq!(
            occurrences(&sealed, plain),
            0,
            "`{plain}` readable in the backup"
        );
    }

    leaver_erases(&app).await;
    assert_eq!(
        still_stored(&shared, &[ENDED_NAME, ENDED_PHONE]).await,
        vec![]
    );
    // Not over a running server.
    let (code, said) = run_server(&vars, &["restore", "--from", file.to_str().unwrap()]).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("stop the server"), "{said}");
    assert_eq!(keeper_view(&app).await, before);
    server.signal("TERM");
    server.wait().await;

    // The wipe: nothing of the data directory is left.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }
    let (code, said) = run_server(&vars, &["restore", "--from", file.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("1 journaled erasures re-applied"), "{said}");
    assert_seats_match_bookings(&dir.path().join("banzheng.db"));

    let server = ServerProcess::start(&vars).await;
    let app = TestApp::served_at(server.address.clone(), shared.clone());
    assert_eq!(keeper_view(&app).await, before);
    assert_eq!(
        still_stored(&shared, &[ENDED_NAME, ENDED_PHONE]).await,
        vec![]
    );
    let leaver = app.login(OPENID).await;
    let theirs = json(app.get_with_token("/api/v1/appointments", &leaver).await).await;
    assert_eq!(theirs["appointments"], json!([]), "{theirs}");

    // Development backs up without a key setting, under one it keeps in the data directory.
    let mut development = vars.clone();
    development.retain(|(k, _)| k != "BANZHENG_BACKUP__KEY");
    let (code, said) = run_server(&development, &["backup", "--to", file.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(mode(&dir.path().join("backup-key")), 0o600);

    // Production backs up only under a key of its own: the development default is refused.
    let mut production = vars.clone();
    production.retain(|(k, _)| k != "BANZHENG_BACKUP__KEY");
    production.extend([
        (
            "BANZHENG_WECHAT_APPID".to_string(),
            "wx0123456789abcdef".to_string(),
        ),
        (
            "BANZHENG_WECHAT_SECRET".to_string(),
            "0123456789abcdef0123456789abcdef".to_string(),
        ),
    ]);
    let elsewhere = backups.path().join("production.backup");
    let (code, said) = run_server(
        &production,
        &["backup", "--to", elsewhere.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("BANZHENG_BACKUP__KEY"), "{said}");
    assert!(!elsewhere.exists());

    // A backup sealed under another key is refused, naming the setting.
    let mut other = vars.clone();
    other.retain(|(k, _)| k != "BANZHENG_BACKUP__KEY");
    other.push((
        "BANZHENG_BACKUP__KEY".into(),
        "another-backup-key-another-backup-key".into(),
    ));
    let (code, said) = run_server(&other, &["restore", "--from", file.to_str().unwrap()]).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("BANZHENG_BACKUP__KEY"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rdb_restore_then_replay_gives_the_same_data_with_later_erasures_applied() {
    let mut redis = RedisServer::start().await;
    let backups = tempfile::tempdir().unwrap();
    let shared = SharedStore::Redis {
        url: redis.url(),
        prefix: format!("t{}", uuid::Uuid::new_v4().simple()),
    };
    let backup_dir = backups.path().display().to_string();
    let app = TestApp::spawn_on(shared.clone(), &[("BANZHENG_BACKUP__DIR", &backup_dir)]).await;
    let before = arrange(&app).await;

    // The backup: an RDB snapshot of our own redis-server, copied aside.
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = ::redis::cmd("SAVE").query_async(&mut conn).await.unwrap();
    let saved = backups.path().join("dump.rdb");
    std::fs::copy(redis.dir().join("dump.rdb"), &saved).unwrap();

    leaver_erases(&app).await;
    assert_eq!(
        still_stored(&shared, &[ENDED_NAME, ENDED_PHONE]).await,
        vec![]
    );

    // The wipe, then the restore from the snapshot: the leaver's data is back…
    redis.stop().await;
    std::fs::remove_file(redis.dir().join("dump.rdb")).unwrap();
    std::fs::copy(&saved, redis.dir().join("dump.rdb")).unwrap();
    redis.restart().await;
    assert_eq!(still_stored(&shared, &[ENDED_NAME]).await.len(), 1);

    // …until the journal is replayed.
    let mut vars = shared.vars();
    vars.push(("BANZHENG_BACKUP__DIR".into(), backup_dir.clone()));
    let (code, said) = run_server(&vars, &["erasures", "replay"]).await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("1 journaled erasures re-applied"), "{said}");
    assert_eq!(
        still_stored(&shared, &[ENDED_NAME, ENDED_PHONE]).await,
        vec![]
    );
    // The app's connections to the restarted Redis come back by themselves.
    for _ in 0..100 {
        let code = app.sim().mint_code("openid-keeper").await;
        if app.login_with_code(&code).await.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(keeper_view(&app).await, before);
}
