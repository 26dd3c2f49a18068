//! Work budgets (issue 15), each attack over HTTP against the server binary: concurrent pixel
//! bombs keep the process's peak memory within its photo budget while it keeps answering, the
//! per-user quotas answer 429 with `Retry-After`, and a 48 MP phone JPEG is still accepted.

use std::io::Cursor;

use chrono::Timelike;
use futures_util::future::join_all;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::ImageEncoder;
use rand::{Rng, SeedableRng};
use serde_json::json;
use server::admin::Role;
use server::receipts::Saved;
use tests::process::ServerProcess;
use tests::receipts::photo;
use tests::{assert_error, on_both_backends, Backend, SharedStore, TestApp};

/// The server binary over a fresh store of `backend` with `settings`, and the helpers that
/// drive it.
async fn binary(backend: Backend, settings: &[(&str, &str)]) -> (ServerProcess, TestApp) {
    let store = SharedStore::fresh(backend).await;
    let mut vars = store.vars();
    vars.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let server = ServerProcess::start(&vars).await;
    let app = TestApp::served_at(server.address.clone(), store);
    (server, app)
}

/// Peak resident memory of process `pid` so far (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb / 1024
}

/// A grey PNG declaring `side`×`side` pixels; one byte in `noise_every` random (none for 0),
/// which sets how far it inflates.
fn png_bomb(side: u32, noise_every: usize) -> Vec<u8> {
    let mut pixels = vec![200u8; side as usize * side as usize * 3];
    if noise_every > 0 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        for b in pixels.iter_mut().step_by(noise_every) {
            *b = rng.random();
        }
    }
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::NoFilter)
        .write_image(&pixels, side, side, image::ExtendedColorType::Rgb8)
        .expect("png encodes");
    out
}

/// Posts `bomb` to the photo check `n` times at once: every answer is a report or `503
/// PHOTO_BUSY` with `Retry-After`. Returns how many were busy.
async fn check_at_once(app: &TestApp, token: &str, bomb: &[u8], n: usize) -> usize {
    let spec = [("spec", "id-card".to_owned())];
    let answers = join_all(
        (0..n).map(|_| app.post_multipart("/api/v1/photos/check", token, bomb.to_vec(), &spec)),
    )
    .await;
    let mut busy = 0;
    for answer in answers {
        match answer.status().as_u16() {
            200 => {
                let report = tests::json(answer).await;
                assert!(report["checks"].is_array(), "a report: {report}");
            }
            503 => {
                assert!(answer.headers().contains_key("retry-after"));
                assert_error(answer, 503, "PHOTO_BUSY").await;
                busy += 1;
            }
            other => panic!("bomb answered {other}: {}", answer.text().await.unwrap()),
        }
    }
    busy
}

/// The budget the bomb test runs with (the default) and what the whole process may reach
/// with it: the budget, plus the server at rest and the uploads being read.
const BUDGET_MB: u64 = 512;
const AT_REST_AND_UPLOADS_MB: u64 = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pixel_bombs_stay_within_the_photo_budget() {
    let (server, app) = binary(
        Backend::Sqlite,
        // One user sends them all; the quota on uploads is another test's subject.
        &[("BANZHENG_RECEIPTS__PHOTOS_PER_MINUTE", "1000")],
    )
    .await;
    let token = app.login("openid-bomber").await;
    let at_rest = peak_rss_mib(server.pid());

    // The issue's bomb: 5760×5760 of one colour in about 100 KB, refused from its header.
    let issue_bomb = png_bomb(5760, 0);
    check_at_once(&app, &token, &issue_bomb, 16).await;
    // The largest PNG accepted, inflating just under the refused ratio: decoded in full.
    let decodable_bomb = png_bomb(4096, 80);
    let busy = check_at_once(&app, &token, &decodable_bomb, 16).await;

    let peak = peak_rss_mib(server.pid());
    println!(
        "pixel bombs ({} B and {} B PNG, 16 each at once): server VmHWM {at_rest} MiB at rest, \
         {peak} MiB after; {busy} of 16 busy; budget {BUDGET_MB} MiB",
        issue_bomb.len(),
        decodable_bomb.len()
    );
    assert!(
        peak < BUDGET_MB + AT_REST_AND_UPLOADS_MB,
        "peak RSS {peak} MiB over the budget's bound"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
    // The budget is free again: a real photo is checked.
    let answer = app
        .post_multipart(
            "/api/v1/photos/check",
            &token,
            photo("portrait-test0.jpg"),
            &[("spec", "id-card".to_owned())],
        )
        .await;
    assert_eq!(answer.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issue_bomb_is_refused_from_its_header() {
    let (_server, app) = binary(Backend::Sqlite, &[]).await;
    let token = app.login("openid-bomber").await;
    let bomb = png_bomb(5760, 0);
    let size = bomb.len();
    let answer = app
        .post_multipart(
            "/api/v1/photos/check",
            &token,
            bomb,
            &[("spec", "id-card".to_owned())],
        )
        .await;
    assert_eq!(
        answer.status(),
        200,
        "{size} B: {}",
        answer.text().await.unwrap()
    );
    let report = tests::json(answer).await;
    let decode = &report["checks"][0];
    assert_eq!(decode["id"], "decode");
    assert_eq!(decode["status"], "fail");
    assert!(
        decode["message_zh"].as_str().unwrap().contains("PNG"),
        "{decode}"
    );
}

/// A phone's 48+ MP photo: portrait-test0 scaled 11 times (6336×8448, 53.5 MP).
fn phone_photo_53mp() -> Vec<u8> {
    let small = image::load_from_memory(&photo("portrait-test0.jpg")).unwrap();
    let (w, h) = (small.width() * 11, small.height() * 11);
    let big = small.resize_exact(w, h, image::imageops::FilterType::Nearest);
    let mut out = Vec::new();
    big.to_rgb8()
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_48_megapixel_phone_jpeg_is_accepted() {
    let (server, app) = binary(Backend::Sqlite, &[]).await;
    let token = app.login("openid-phone").await;
    let big = phone_photo_53mp();
    let at_rest = peak_rss_mib(server.pid());
    let len = big.len();
    let answer = app
        .post_multipart(
            "/api/v1/photos/check",
            &token,
            big.clone(),
            &[("spec", "id-card".to_owned())],
        )
        .await;
    assert_eq!(answer.status(), 200);
    let report = tests::json(answer).await;
    assert_eq!(report["checks"][0]["status"], "pass", "{report}");
    assert_eq!(report["width"], 6336);
    let order = app
        .post_multipart(
            "/api/v1/receipt-orders",
            &token,
            big,
            &tests::receipts::order_fields("id-card", "广东省东莞市"),
        )
        .await;
    assert_eq!(order.status(), 201, "{}", order.text().await.unwrap());
    println!(
        "53 MP JPEG ({} B) checked and ordered: server VmHWM {at_rest} MiB at rest, {} MiB after",
        len,
        peak_rss_mib(server.pid())
    );
}

/// Asserts a quota's refusal: 429, `code`, and a `Retry-After` of at most `max_secs`.
async fn assert_quota(answer: reqwest::Response, code: &str, max_secs: u64) {
    let retry: u64 = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=max_secs).contains(&retry), "Retry-After {retry}");
    assert_error(answer, 429, code).await;
}

async fn photo_uploads_per_minute_are_limited(backend: Backend) {
    let (_server, app) = binary(backend, &[("BANZHENG_RECEIPTS__PHOTOS_PER_MINUTE", "2")]).await;
    // The quota counts per calendar minute: start the three uploads at a minute's first second,
    // so a slow machine cannot spread them over two minutes.
    app.advance_clock(61 - i64::from(chrono::Utc::now().second()))
        .await;
    let token = app.login("openid-eager").await;
    let spec = [("spec", "id-card".to_owned())];
    let bytes = photo("portrait-test0.jpg");
    for _ in 0..2 {
        let answer = app
            .post_multipart("/api/v1/photos/check", &token, bytes.clone(), &spec)
            .await;
        assert_eq!(answer.status(), 200);
    }
    let answer = app
        .post_multipart("/api/v1/photos/check", &token, bytes.clone(), &spec)
        .await;
    assert_quota(answer, "PHOTO_QUOTA_EXCEEDED", 60).await;
    // Another user is not affected.
    let other = app.login("openid-calm").await;
    let answer = app
        .post_multipart("/api/v1/photos/check", &other, bytes, &spec)
        .await;
    assert_eq!(answer.status(), 200);
}

async fn open_orders_are_limited(backend: Backend) {
    let (_server, app) = binary(backend, &[("BANZHENG_RECEIPTS__MAX_OPEN_ORDERS", "1")]).await;
    let token = app.login("openid-hoarder").await;
    app.seed_order("openid-hoarder", "portrait-test0.jpg").await;
    let answer = app
        .post_multipart(
            "/api/v1/receipt-orders",
            &token,
            photo("portrait-test0.jpg"),
            &tests::receipts::order_fields("id-card", "广东省东莞市"),
        )
        .await;
    assert_quota(answer, "TOO_MANY_OPEN_ORDERS", 3600).await;
    let orders = app.receipt_orders(&token, "").await;
    assert_eq!(orders["orders"].as_array().unwrap().len(), 1, "{orders}");

    // Two orders at once from a user with none: the store's insert lets exactly one in.
    let token = app.login("openid-racer").await;
    let fields = tests::receipts::order_fields("id-card", "广东省东莞市");
    let post = || {
        app.post_multipart(
            "/api/v1/receipt-orders",
            &token,
            photo("portrait-test0.jpg"),
            &fields,
        )
    };
    let (a, b) = futures_util::join!(post(), post());
    let (created, refused) = if a.status() == 201 { (a, b) } else { (b, a) };
    assert_eq!(created.status(), 201);
    assert_quota(refused, "TOO_MANY_OPEN_ORDERS", 3600).await;
    let orders = app.receipt_orders(&token, "").await;
    assert_eq!(orders["orders"].as_array().unwrap().len(), 1, "{orders}");
}

/// The cap is a guard of the insert itself, so concurrent orders cannot pass it together.
async fn the_open_order_cap_is_checked_by_the_insert(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.seed_order("openid-hoarder", "portrait-test0.jpg").await;
    let store = app.shared.open().await;
    let mut second = store.receipt_order(&id).await.unwrap().expect("seeded");
    second.id = format!("{id}-2");
    let capped = |limit| store.insert_receipt_order_capped(&second, limit);
    assert_eq!(capped(1).await.unwrap(), Saved::TooManyOpen);
    assert_eq!(capped(2).await.unwrap(), Saved::Saved);
    // An id is inserted once.
    assert!(capped(3).await.is_err());
}

async fn resubmits_per_order_and_day_are_limited(backend: Backend) {
    let (_server, app) = binary(backend, &[("BANZHENG_RECEIPTS__RESUBMITS_PER_DAY", "1")]).await;
    let token = app.login("openid-again").await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let id = app.seed_order("openid-again", "portrait-test0.jpg").await;
    let path = format!("/api/v1/receipt-orders/{id}/resubmit");
    for attempt in 0..2 {
        let rejected = app
            .review(
                &reviewer,
                &id,
                json!({"decision": "reject", "reasons": ["blurred"]}),
            )
            .await;
        assert_eq!(rejected.status(), 200);
        let answer = app
            .post_multipart(&path, &token, photo("portrait-test0.jpg"), &[])
            .await;
        if attempt == 0 {
            assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
        } else {
            assert_quota(answer, "RESUBMIT_QUOTA_EXCEEDED", 86_400).await;
        }
    }
}

on_both_backends!(
    photo_uploads_per_minute_are_limited,
    open_orders_are_limited,
    the_open_order_cap_is_checked_by_the_insert,
    resubmits_per_order_and_day_are_limited,
);
