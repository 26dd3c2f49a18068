//! Consent first (issue 20): before the user accepts the current privacy notice, every
//! request that would store an ID number or a face photo is refused `403 CONSENT_REQUIRED`
//! with nothing written; the acceptance is recorded with its time; a new notice version asks
//! again, and only the current version can be accepted.

use serde_json::json;
use server::admin::Role;
use tests::booking::{applicant, bookable_weekday, slot_id};
use tests::receipts::{order_fields, photo};
use tests::{assert_error, json, on_both_backends, Backend, SharedStore, TestApp};

/// The notice version a server has when none is configured.
const DEFAULT_VERSION: &str = "2026-12-01";

async fn me(app: &TestApp, token: &str) -> serde_json::Value {
    let response = app.get_with_token("/api/v1/me", token).await;
    assert_eq!(response.status(), 200);
    json(response).await
}

async fn consent(app: &TestApp, token: &str, version: &str) -> reqwest::Response {
    app.post_with_token("/api/v1/me/consent", token, &json!({ "version": version }))
        .await
}

async fn nothing_sensitive_is_stored_before_consent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let user = app.login_without_consent("openid-undecided").await;
    let privacy = &me(&app, &user).await["privacy"];
    assert_eq!(privacy["version"], DEFAULT_VERSION);
    assert_eq!(privacy["accepted"], false);
    assert!(privacy.get("accepted_at").is_none(), "{privacy}");

    // A booking (ID number, name, phone): refused, no seat taken, no appointment kept.
    let slot = slot_id("dongcheng", bookable_weekday(), "0900");
    let seats = app.remaining(&slot).await;
    let booking = json!({"slot_id": slot, "service": "expiry_renewal", "applicant": applicant(1)});
    assert_error(
        app.book(&user, &booking, Some("consent-first")).await,
        403,
        "CONSENT_REQUIRED",
    )
    .await;
    assert_eq!(app.remaining(&slot).await, seats);
    let mine = json(app.get_with_token("/api/v1/appointments", &user).await).await;
    assert_eq!(mine["appointments"], json!([]));

    // An order (face photo and ID number): refused, no order.
    let order = app
        .post_multipart(
            "/api/v1/receipt-orders",
            &user,
            photo("portrait-test0.jpg"),
            &order_fields("id-card", "广东省东莞市"),
        )
        .await;
    assert_error(order, 403, "CONSENT_REQUIRED").await;
    assert_eq!(app.receipt_orders(&user, "").await["orders"], json!([]));

    // A new photo for a rejected order (one stored before the notice existed): refused, the
    // order keeps its photo and stays rejected.
    let seeded = app
        .seed_order("openid-undecided", "portrait-test0.jpg")
        .await;
    let rejected = app
        .review(
            &reviewer,
            &seeded,
            json!({"decision": "reject", "reasons": ["blurred"]}),
        )
        .await;
    assert_eq!(rejected.status(), 200);
    let path = format!("/api/v1/receipt-orders/{seeded}/resubmit");
    let resubmit = app
        .post_multipart(&path, &user, photo("portrait-test0.jpg"), &[])
        .await;
    assert_error(resubmit, 403, "CONSENT_REQUIRED").await;
    let kept = json(
        app.get_with_token(&format!("/api/v1/receipt-orders/{seeded}"), &user)
            .await,
    )
    .await;
    assert_eq!(kept["status"], "rejected", "{kept}");
    // Submitted and rejected: no resubmission.
    assert_eq!(kept["history"].as_array().unwrap().len(), 2, "{kept}");

    // Accepted: recorded with its time, and the same requests go through.
    let accepted = consent(&app, &user, DEFAULT_VERSION).await;
    assert_eq!(accepted.status(), 200);
    let accepted = json(accepted).await;
    assert_eq!(accepted["accepted"], true);
    let privacy = &me(&app, &user).await["privacy"];
    assert_eq!(privacy["accepted"], true);
    assert_eq!(privacy["accepted_at"], accepted["accepted_at"]);
    let booked = app.book(&user, &booking, Some("consent-first")).await;
    assert_eq!(booked.status(), 201);
    assert_eq!(app.remaining(&slot).await, seats - 1);
    app.order_receipt(&user, "portrait-test0.jpg").await;
    let resubmitted = app
        .post_multipart(&path, &user, photo("portrait-test0.jpg"), &[])
        .await;
    assert_eq!(resubmitted.status(), 200);

    // Another user's consent is not this one's.
    let other = app.login_without_consent("openid-other").await;
    assert_eq!(me(&app, &other).await["privacy"]["accepted"], false);
    assert_error(
        app.book(&other, &booking, None).await,
        403,
        "CONSENT_REQUIRED",
    )
    .await;
}

async fn a_new_notice_asks_again(backend: Backend) {
    let shared = SharedStore::fresh(backend).await;
    let before = TestApp::spawn_on(shared.clone(), &[]).await;
    let user = before.login("openid-notice").await;
    assert_eq!(me(&before, &user).await["privacy"]["accepted"], true);
    let day = bookable_weekday();
    let book = |n: u32, time: &str| {
        json!({
            "slot_id": slot_id("dongcheng", day, time),
            "service": "expiry_renewal",
            "applicant": applicant(n),
        })
    };
    assert_eq!(
        before.book(&user, &book(1, "0900"), None).await.status(),
        201
    );

    // The notice changes (a server with the new version over the same store).
    let after = TestApp::spawn_on(
        shared.clone(),
        &[("BANZHENG_PRIVACY__NOTICE_VERSION", "2027-03")],
    )
    .await;
    let privacy = &me(&after, &user).await["privacy"];
    assert_eq!(privacy["version"], "2027-03");
    assert_eq!(privacy["accepted"], false);
    assert_error(
        after.book(&user, &book(2, "0930"), None).await,
        403,
        "CONSENT_REQUIRED",
    )
    .await;
    // What was booked under the old notice stays the user's.
    let mine = json(after.get_with_token("/api/v1/appointments", &user).await).await;
    assert_eq!(mine["appointments"].as_array().unwrap().len(), 1);

    // Only the current version can be accepted.
    for stale in [DEFAULT_VERSION, "2099-01"] {
        let body = assert_error(
            consent(&after, &user, stale).await,
            409,
            "PRIVACY_VERSION_OUTDATED",
        )
        .await;
        assert!(
            body["message"].as_str().unwrap().contains("2027-03"),
            "{body}"
        );
    }
    assert_eq!(me(&after, &user).await["privacy"]["accepted"], false);
    assert_eq!(consent(&after, &user, "2027-03").await.status(), 200);
    assert_eq!(
        after.book(&user, &book(2, "0930"), None).await.status(),
        201
    );
}

on_both_backends!(
    nothing_sensitive_is_stored_before_consent,
    a_new_notice_asks_again
);
