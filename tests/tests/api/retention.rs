//! Kept no longer than needed (issue 20): with the app's clock moved forward, the retention
//! sweep (`POST /__sim/retention/run`, the same one the server runs every hour) deletes an
//! order's original photo 30 days after the review, the normalised photo and receipt when the
//! receipt expires, and the applicant's details of ended appointments and finished orders 90
//! days later; afterwards no byte of the store (every SQLite file, or every Redis value under
//! the prefix) holds the person's name, phone or ID number, while what statistics count stays.

use serde_json::{json, Value};
use server::admin::Role;
use server::receipts::{blob_key, PhotoKind};
use tests::booking::{
    adult_id, applicant, bookable_weekday, open_weekday_after, seconds_until, slot_id, today,
};
use tests::receipts::ID_NUMBER;
use tests::{assert_error, json, on_both_backends, Backend, SharedStore, TestApp};

use crate::at_rest::{dump, occurrences};

const DAY: i64 = 86_400;

async fn sweep(app: &TestApp) -> Value {
    let response = app.post_json("/__sim/retention/run", &json!({})).await;
    assert_eq!(response.status(), 200);
    json(response).await
}

/// Whether each of the order's photos is still stored (a file on SQLite, a value on Redis).
async fn photos_kept(app: &TestApp, order_id: &str) -> (bool, bool) {
    let store = app.shared.open().await;
    let order = store.receipt_order(order_id).await.unwrap().unwrap();
    let kept = |kind| {
        let key = blob_key(&order, kind);
        let store = store.clone();
        async move { store.blob_get(&key).await.unwrap().is_some() }
    };
    (
        kept(PhotoKind::Original).await,
        kept(PhotoKind::Normalised).await,
    )
}

async fn photos_and_details_go_when_their_time_is_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut user = app.login("openid-retention").await;
    let mut reviewer = app.admin_token(Role::Reviewer).await;
    let approved = app.order_receipt(&user, "portrait-test0.jpg").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.approve(&reviewer, &approved).await;
    let rejected = app.order_receipt(&user, "portrait-test0.jpg").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let decided = app
        .review(
            &reviewer,
            &rejected,
            json!({"decision": "reject", "reasons": ["blurred"], "note": "张三的照片模糊"}),
        )
        .await;
    assert_eq!(decided.status(), 200);
    let booking = json!({
        "slot_id": slot_id("dongcheng", bookable_weekday(), "0900"),
        "service": "expiry_renewal",
        "applicant": applicant(7),
    });
    let booked = app.book(&user, &booking, Some("retention-booking")).await;
    assert_eq!(booked.status(), 201);
    let appointment = json(booked).await["id"].as_str().unwrap().to_owned();
    let cancelled = app
        .post_with_token(
            &format!("/api/v1/appointments/{appointment}/cancel"),
            &user,
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.status(), 200);
    // The notifications settle (nobody subscribed): only settled ones are ever deleted.
    app.run_notifier().await;

    // What the last scan must not find is there now.
    let before = dump(&app.shared).await;
    for personal in ["张三", "13812345678", "4419**********0024"] {
        assert!(occurrences(&before, personal) > 0, "{personal} is stored");
    }

    // Nothing is due yet.
    let swept = sweep(&app).await;
    for field in [
        "original_photos",
        "normalised_photos",
        "orders_anonymised",
        "appointments_anonymised",
        "outbox_entries",
    ] {
        assert_eq!(swept[field], 0, "{field} in {swept}");
    }
    assert_eq!(photos_kept(&app, &approved).await, (true, true));

    // 31 days after the review: the originals go; the receipt still shows its photo.
    app.advance_clock(31 * DAY).await;
    let swept = sweep(&app).await;
    assert_eq!(swept["original_photos"], 2, "{swept}");
    assert_eq!(swept["normalised_photos"], 0, "{swept}");
    assert!(swept["outbox_entries"].as_u64().unwrap() > 0, "{swept}");
    // SQLite deletes the expired Idempotency-Key record; Redis expired it on its own clock.
    let idempotency = if backend == Backend::Sqlite { 1 } else { 0 };
    assert_eq!(swept["idempotency_records"], idempotency, "{swept}");
    assert_eq!(photos_kept(&app, &approved).await, (false, true));
    assert_eq!(photos_kept(&app, &rejected).await, (false, true));
    // Tokens expired meanwhile.
    user = app.login("openid-retention").await;
    reviewer = app.admin_token(Role::Reviewer).await;
    let original = app
        .get_with_token(
            &format!("/api/v1/admin/receipt-orders/{approved}/original"),
            &reviewer,
        )
        .await;
    assert_error(original, 410, "PHOTO_DELETED").await;
    let receipt = app
        .get_with_token(&format!("/api/v1/receipt-orders/{approved}/receipt"), &user)
        .await;
    assert_eq!(receipt.status(), 200);
    // Run again: nothing more.
    assert_eq!(sweep(&app).await["original_photos"], 0);

    // The receipt expires (180 days): its photo and image go; so does everything of the
    // rejected order (90 days after the rejection).
    app.advance_clock(150 * DAY).await;
    let swept = sweep(&app).await;
    assert_eq!(swept["normalised_photos"], 2, "{swept}");
    assert_eq!(
        swept["orders_anonymised"], 1,
        "the rejected order, 90 days on: {swept}"
    );
    assert_eq!(swept["appointments_anonymised"], 1, "{swept}");
    assert_eq!(photos_kept(&app, &approved).await, (false, false));
    user = app.login("openid-retention").await;
    let receipt = app
        .get_with_token(&format!("/api/v1/receipt-orders/{approved}/receipt"), &user)
        .await;
    assert_error(receipt, 410, "PHOTO_DELETED").await;

    // 90 days after the receipt expired, its order's details go too.
    app.advance_clock(91 * DAY).await;
    let swept = sweep(&app).await;
    assert_eq!(swept["orders_anonymised"], 1, "{swept}");
    assert_eq!(photos_kept(&app, &rejected).await, (false, false));

    // What statistics count stays: the orders' documents and outcomes, the appointment's
    // hall, service, time and status; nothing says whose they were.
    user = app.login("openid-retention").await;
    let orders = app.receipt_orders(&user, "").await["orders"].clone();
    let outcomes: Vec<(&str, &str)> = orders
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["spec"].as_str().unwrap(), o["status"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [("id-card", "rejected"), ("id-card", "expired")]);
    let mine = json(app.get_with_token("/api/v1/appointments", &user).await).await;
    let kept = &mine["appointments"][0];
    assert_eq!(kept["status"], "cancelled", "{kept}");
    assert_eq!(kept["service"]["id"], "expiry_renewal", "{kept}");
    assert_eq!(kept["office"]["id"], "dongcheng", "{kept}");
    assert_eq!(kept["applicant"]["name"], "已删除", "{kept}");
    let everything = dump(&app.shared).await;
    let booked_id = adult_id(7);
    let masked = |id: &str| format!("{}**********{}", &id[..4], &id[14..]);
    for personal in [
        "张三".to_owned(),
        "13812345678".to_owned(),
        "138****5678".to_owned(),
        ID_NUMBER.to_owned(),
        masked(ID_NUMBER),
        booked_id.clone(),
        masked(&booked_id),
    ] {
        assert_eq!(
            occurrences(&everything, &personal),
            0,
            "{personal} is still stored"
        );
    }
}

/// Two missed appointments bar the account from booking for that applicant for 90 days; the
/// appointments' details going after a day changes nothing of it: the no-shows and the ban
/// are counted by the keyed hash, which stays.
async fn a_ban_outlives_the_details(backend: Backend) {
    let shared = SharedStore::fresh(backend).await;
    let app = TestApp::spawn_on(shared, &[("BANZHENG_RETENTION__APPLICANT_DAYS", "1")]).await;
    let book = |day, n| {
        json!({
            "slot_id": slot_id("qingxi", day, "0900"),
            "service": "expiry_renewal",
            "applicant": applicant(n),
        })
    };
    let (mut day, mut advanced) = (today(), 0);
    for _ in 0..2 {
        day = open_weekday_after(day);
        let token = app.login("openid-forgetful").await;
        assert_eq!(app.book(&token, &book(day, 1), None).await.status(), 201);
        // Past the slot's end and the grace: a no-show once anyone looks.
        let step = seconds_until(day, "10:05") - advanced;
        app.advance_clock(step).await;
        advanced += step;
        let token = app.login("openid-forgetful").await;
        let mine = json(app.get_with_token("/api/v1/appointments", &token).await).await;
        assert_eq!(mine["appointments"][0]["status"], "no_show", "{mine}");
    }
    app.advance_clock(2 * DAY).await;
    let swept = sweep(&app).await;
    assert_eq!(swept["appointments_anonymised"], 2, "{swept}");
    let token = app.login("openid-forgetful").await;
    let mine = json(app.get_with_token("/api/v1/appointments", &token).await).await;
    for kept in mine["appointments"].as_array().unwrap() {
        assert_eq!(kept["status"], "no_show", "{kept}");
        assert_eq!(kept["applicant"]["name"], "已删除", "{kept}");
    }
    let next_day = open_weekday_after(day + chrono::Duration::days(2));
    let banned = app.book(&token, &book(next_day, 1), None).await;
    assert_error(banned, 403, "BANNED").await;
    // Another applicant of the same account is not barred.
    assert_eq!(
        app.book(&token, &book(next_day, 2), None).await.status(),
        201
    );
}

on_both_backends!(
    photos_and_details_go_when_their_time_is_up,
    a_ban_outlives_the_details
);
