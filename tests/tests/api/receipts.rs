//! Photo-receipt orders end to end over HTTP, on SQLite and on Redis: the review queue, a
//! decision per order, the 订单 tab, the receipt image and the window's lookup.

use serde_json::json;
use server::admin::Role;
use server::error::ErrorCode;
use tests::receipts::{find_embedded, order_fields, photo, qr_codes};
use tests::{assert_error, json, on_both_backends, Backend, TestApp};

async fn review_approves_once_and_the_receipt_carries_the_number(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.login("openid-alice").await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let other_reviewer = app.admin_token(Role::Reviewer).await;
    let staff = app.admin_token(Role::Staff).await;
    let order_id = app.seed_order("openid-alice", "portrait-test0.jpg").await;

    let queue = json(
        app.get_with_token("/api/v1/admin/review-queue", &reviewer)
            .await,
    )
    .await;
    assert_eq!(queue["orders"][0]["id"], order_id.as_str());
    assert_eq!(queue["orders"][0]["name_masked"], "张*");
    let original = app
        .bytes(
            &format!("/api/v1/admin/receipt-orders/{order_id}/original"),
            &reviewer,
            "image/jpeg",
        )
        .await;
    assert_eq!(original, tests::receipts::photo("portrait-test0.jpg"));

    // Only reviewers decide; users never reach admin endpoints.
    assert_error(
        app.review(&staff, &order_id, json!({"decision": "approve"}))
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.review(&user, &order_id, json!({"decision": "approve"}))
            .await,
        401,
        "UNAUTHORIZED",
    )
    .await;

    app.subscribe_to_review_results(&user, 1).await;
    let approved = app.approve(&reviewer, &order_id).await;
    assert_eq!(approved["status"], "approved");
    let number = approved["receipt_no"].as_str().unwrap().to_owned();
    let notified = app.notifications_to("openid-alice").await;
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert!(notified[0].contains(&number), "{notified:?}");
    assert!(
        approved["history"][1]["by"].is_string(),
        "reviewer recorded"
    );
    assert_error(
        app.review(
            &other_reviewer,
            &order_id,
            json!({"decision": "reject", "reasons": ["blurred"]}),
        )
        .await,
        409,
        "ORDER_ALREADY_DECIDED",
    )
    .await;
    let queue = json(
        app.get_with_token("/api/v1/admin/review-queue", &reviewer)
            .await,
    )
    .await;
    assert_eq!(queue["orders"].as_array().unwrap().len(), 0);

    // The 订单 tab shows the number; the user's view does not name the reviewer.
    let list = app.receipt_orders(&user, "").await;
    assert_eq!(list["orders"][0]["receipt_no"], number.as_str());
    assert_eq!(list["orders"][0]["status_zh"], "已通过");
    assert!(list["orders"][0]["history"][1].get("by").is_none());

    let normalised = app
        .bytes(
            &format!("/api/v1/receipt-orders/{order_id}/photo"),
            &user,
            "image/jpeg",
        )
        .await;
    let png = app
        .bytes(
            &format!("/api/v1/receipt-orders/{order_id}/receipt"),
            &user,
            "image/png",
        )
        .await;
    let receipt = image::load_from_memory(&png).unwrap().to_rgb8();
    let photo = image::load_from_memory(&normalised).unwrap().to_rgb8();
    assert!(
        find_embedded(&receipt, &photo).is_some(),
        "photo on the receipt"
    );
    assert_eq!(qr_codes(&receipt), vec![number.clone()]);

    let lookup = json(
        app.get_with_token(&format!("/api/v1/admin/receipts/{number}"), &staff)
            .await,
    )
    .await;
    assert_eq!(lookup["state"], "valid");
    assert_eq!(lookup["order_id"], order_id.as_str());
    assert_eq!(lookup["id_number_masked"], "4419**********0024");
    // Typed in lower case and in groups, as read out: still found.
    let typed = number.to_lowercase();
    let typed = format!("{}-{}-{}", &typed[..4], &typed[4..8], &typed[8..]);
    let found = app
        .get_with_token(&format!("/api/v1/admin/receipts/{typed}"), &staff)
        .await;
    assert_eq!(json(found).await["receipt_no"], number.as_str());
}

async fn a_mistyped_receipt_number_is_caught(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let staff = app.admin_token(Role::Staff).await;
    let order_id = app.seed_order("openid-bob", "portrait-test2.jpg").await;
    let number = app.approve(&reviewer, &order_id).await["receipt_no"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut typo = number.clone().into_bytes();
    typo[3] = if typo[3] == b'7' { b'8' } else { b'7' };
    let typo = String::from_utf8(typo).unwrap();
    assert_error(
        app.get_with_token(&format!("/api/v1/admin/receipts/{typo}"), &staff)
            .await,
        422,
        "RECEIPT_NO_CHECK_FAILED",
    )
    .await;
    assert_error(
        app.get_with_token("/api/v1/admin/receipts/ABC123", &staff)
            .await,
        400,
        "RECEIPT_NO_MALFORMED",
    )
    .await;
    // Well-formed with a right check character, but nobody's: 404.
    let unknown = loop {
        let candidate = server::receipts::ReceiptNo::generate(&mut rand::rng());
        if candidate.as_str() != number {
            break candidate;
        }
    };
    assert_error(
        app.get_with_token(&format!("/api/v1/admin/receipts/{unknown}"), &staff)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.get_with_token(&format!("/api/v1/admin/receipts/{number}"), &reviewer)
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
}

async fn rejection_shows_reasons_and_other_users_see_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.login("openid-alice").await;
    let mallory = app.login("openid-mallory").await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let order_id = app.seed_order("openid-alice", "portrait-test0.jpg").await;
    app.subscribe_to_review_results(&alice, 1).await;

    let reasons = json(
        app.get_with_token("/api/v1/admin/rejection-reasons", &reviewer)
            .await,
    )
    .await;
    let labels: Vec<&str> = reasons["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label_zh"].as_str().unwrap())
        .collect();
    for label in [
        "发丝遮挡眉毛或耳朵",
        "佩戴饰品",
        "镜像自拍",
        "白色上衣",
        "头部过大或过小",
    ] {
        assert!(labels.contains(&label), "{label}");
    }

    assert_error(
        app.review(
            &reviewer,
            &order_id,
            json!({"decision": "reject", "reasons": []}),
        )
        .await,
        422,
        "INVALID_VALUE",
    )
    .await;
    assert_error(
        app.review(
            &reviewer,
            &order_id,
            json!({"decision": "reject", "reasons": ["ugly"]}),
        )
        .await,
        400,
        "INVALID_INPUT",
    )
    .await;
    let rejected = app
        .review(
            &reviewer,
            &order_id,
            json!({"decision": "reject", "reasons": ["accessories", "white_top"], "note": "请摘下耳环"}),
        )
        .await;
    assert_eq!(rejected.status(), 200);
    let notified = app.notifications_to("openid-alice").await;
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert!(notified[0].contains("佩戴饰品"), "{notified:?}");

    let order = json(
        app.get_with_token(&format!("/api/v1/receipt-orders/{order_id}"), &alice)
            .await,
    )
    .await;
    assert_eq!(order["status"], "rejected");
    assert_eq!(order["status_zh"], "未通过");
    assert_eq!(order["reasons"][0]["label_zh"], "佩戴饰品");
    assert_eq!(order["reasons"][1]["code"], "white_top");
    assert_eq!(order["note"], "请摘下耳环");
    assert!(order.get("receipt_no").is_none());
    assert_error(
        app.get_with_token(
            &format!("/api/v1/receipt-orders/{order_id}/receipt"),
            &alice,
        )
        .await,
        409,
        "RECEIPT_NOT_ISSUED",
    )
    .await;

    for path in ["", "/photo", "/receipt"] {
        assert_error(
            app.get_with_token(
                &format!("/api/v1/receipt-orders/{order_id}{path}"),
                &mallory,
            )
            .await,
            404,
            "NOT_FOUND",
        )
        .await;
    }
    assert_eq!(
        app.receipt_orders(&mallory, "").await["orders"],
        json!([]),
        "nothing of Alice's in Mallory's tab"
    );
}

async fn the_order_tab_pages_newest_first_and_filters_by_status(backend: Backend) {
    let app = TestApp::spawn_on(
        tests::SharedStore::fresh(backend).await,
        &[("BANZHENG_RECEIPTS__PAGE_SIZE", "2")],
    )
    .await;
    let user = app.login("openid-carol").await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.seed_order("openid-carol", "portrait-test2.jpg").await);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    app.approve(&reviewer, &ids[1]).await;
    app.review(
        &reviewer,
        &ids[3],
        json!({"decision": "reject", "reasons": ["blurred"]}),
    )
    .await;

    let mut seen = Vec::new();
    let mut query = String::new();
    loop {
        let page = app.receipt_orders(&user, &query).await;
        let orders = page["orders"].as_array().unwrap();
        assert!(orders.len() <= 2);
        seen.extend(orders.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let ids_with = |page: serde_json::Value| -> Vec<String> {
        page["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids_with(app.receipt_orders(&user, "?status=approved").await),
        vec![ids[1].clone()]
    );
    assert_eq!(
        ids_with(app.receipt_orders(&user, "?status=rejected").await),
        vec![ids[3].clone()]
    );
    let pending = app
        .receipt_orders(&user, "?status=%E5%BE%85%E5%AE%A1%E6%A0%B8")
        .await;
    assert_eq!(ids_with(pending), vec![ids[4].clone(), ids[2].clone()]);
    assert_eq!(
        app.receipt_orders(&user, "?status=used").await["orders"],
        json!([])
    );
    assert_error(
        app.get_with_token("/api/v1/receipt-orders?status=lost", &user)
            .await,
        400,
        "INVALID_INPUT",
    )
    .await;
    // An empty status is not "any status": the contract lists the values.
    assert_error(
        app.get_with_token("/api/v1/receipt-orders?status=", &user)
            .await,
        400,
        "INVALID_INPUT",
    )
    .await;
    assert_error(
        app.get_with_token("/api/v1/receipt-orders?cursor=%21%21", &user)
            .await,
        422,
        "INVALID_VALUE",
    )
    .await;
}

async fn two_reviewers_at_once_decide_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reviewers = [
        app.admin_token(Role::Reviewer).await,
        app.admin_token(Role::Reviewer).await,
        app.admin_token(Role::Reviewer).await,
    ];
    for round in 0..5 {
        let order_id = app.seed_order("openid-dave", "portrait-test0.jpg").await;
        let decisions = reviewers.iter().enumerate().map(|(i, token)| {
            let body = if (i + round) % 2 == 0 {
                json!({"decision": "approve"})
            } else {
                json!({"decision": "reject", "reasons": ["blurred"]})
            };
            app.review(token, &order_id, body)
        });
        let statuses: Vec<u16> = futures_util::future::join_all(decisions)
            .await
            .iter()
            .map(|r| r.status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|&&s| s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|&&s| s == 409).count(),
            2,
            "{statuses:?}"
        );
        let order = json(
            app.get_with_token(
                &format!("/api/v1/admin/receipt-orders/{order_id}"),
                &reviewers[0],
            )
            .await,
        )
        .await;
        assert_eq!(
            order["history"].as_array().unwrap().len(),
            2,
            "one decision stored"
        );
    }
}

/// The seed's last step: the receipt named at booking must be approved, unexpired, unused
/// and the applicant's own; the hall's check-in spends it, and no later booking can name it.
async fn a_receipt_books_once_and_is_spent_at_check_in(backend: Backend) {
    use tests::booking::{applicant, bookable_weekday, slot_id};
    use tests::receipts::working_day_after;

    let app = TestApp::spawn(backend).await;
    let user = app.login("openid-gina").await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let order_id = app.seed_order("openid-gina", "portrait-test0.jpg").await;
    let number = app.approve(&reviewer, &order_id).await["receipt_no"]
        .as_str()
        .unwrap()
        .to_owned();
    let day = bookable_weekday();
    let booking = |day: chrono::NaiveDate, person: serde_json::Value, receipt: &str| {
        json!({
            "slot_id": slot_id("humen", day, "0900"),
            "service": "expiry_renewal",
            "applicant": person,
            "photo_receipt_no": receipt,
        })
    };
    let gina =
        json!({"name": "张三", "id_number": tests::receipts::ID_NUMBER, "phone": "13812345678"});

    let mut typo = number.clone().into_bytes();
    typo[0] = if typo[0] == b'7' { b'8' } else { b'7' };
    let typo = String::from_utf8(typo).unwrap();
    let body = assert_error(
        app.book(&user, &booking(day, gina.clone(), &typo), None)
            .await,
        422,
        "RECEIPT_NO_CHECK_FAILED",
    )
    .await;
    assert_eq!(body["field"], "photo_receipt_no");
    assert_error(
        app.book(&user, &booking(day, applicant(7), &number), None)
            .await,
        422,
        "RECEIPT_OTHER_PERSON",
    )
    .await;
    let booked = app
        .book(&user, &booking(day, gina.clone(), &number), None)
        .await;
    assert_eq!(booked.status(), 201);
    let appointment = json(booked).await;
    assert_eq!(appointment["photo_receipt_no"], number.as_str());
    let code = appointment["code"].as_str().unwrap().to_owned();

    // The appointment's morning: staff check the applicant in, which spends the receipt.
    app.advance_clock_to(day, "08:30").await;
    let staff = app.admin_token(Role::Staff).await;
    let checked_in = app
        .post_with_token(
            &format!("/api/v1/admin/appointments/{code}/check-in"),
            &staff,
            &json!({}),
        )
        .await;
    assert_eq!(checked_in.status(), 200, "check-in");
    let looked_up = json(
        app.get_with_token(&format!("/api/v1/admin/receipts/{number}"), &staff)
            .await,
    )
    .await;
    assert_eq!(looked_up["state"], "used");
    assert!(looked_up["used_at"].is_string());
    let user = app.login("openid-gina").await;
    let order = json(
        app.get_with_token(&format!("/api/v1/receipt-orders/{order_id}"), &user)
            .await,
    )
    .await;
    assert_eq!(order["status_zh"], "已使用");
    let used = app.receipt_orders(&user, "?status=used").await;
    assert_eq!(used["orders"][0]["id"], order_id.as_str());

    // A second booking naming the spent receipt is refused.
    let again = app
        .book(&user, &booking(working_day_after(day), gina, &number), None)
        .await;
    assert_error(again, 409, "RECEIPT_USED").await;
}

/// Past its validity a receipt shows as 已过期, the window sees it expired, and no booking
/// can name it.
async fn an_expired_receipt_cannot_be_booked(backend: Backend) {
    use tests::booking::{slot_id, today};
    use tests::receipts::working_day_after;

    let app = TestApp::spawn(backend).await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let order_id = app.seed_order("openid-ivan", "portrait-test2.jpg").await;
    let number = app.approve(&reviewer, &order_id).await["receipt_no"]
        .as_str()
        .unwrap()
        .to_owned();
    let later = today() + chrono::Duration::days(181);
    app.advance_clock_to(later, "10:00").await;
    let user = app.login("openid-ivan").await;
    let staff = app.admin_token(Role::Staff).await;
    let expired = app.receipt_orders(&user, "?status=expired").await;
    assert_eq!(expired["orders"][0]["id"], order_id.as_str());
    assert_eq!(expired["orders"][0]["status_zh"], "已过期");
    assert_eq!(
        app.receipt_orders(&user, "?status=approved").await["orders"],
        json!([])
    );
    let looked_up = json(
        app.get_with_token(&format!("/api/v1/admin/receipts/{number}"), &staff)
            .await,
    )
    .await;
    assert_eq!(looked_up["state"], "expired");
    let booking = json!({
        "slot_id": slot_id("humen", working_day_after(later), "0900"),
        "service": "expiry_renewal",
        "applicant": {"name": "张三", "id_number": tests::receipts::ID_NUMBER, "phone": "13812345678"},
        "photo_receipt_no": number,
    });
    assert_error(
        app.book(&user, &booking, None).await,
        422,
        "RECEIPT_EXPIRED",
    )
    .await;
}

/// Check-ins racing for one receipt: exactly one spends it.
async fn racing_check_ins_spend_a_receipt_once(backend: Backend) {
    use server::receipts::{use_at_check_in, ReceiptNo};

    let app = TestApp::spawn(backend).await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let order_id = app.seed_order("openid-hank", "portrait-test2.jpg").await;
    let number = app.approve(&reviewer, &order_id).await["receipt_no"]
        .as_str()
        .unwrap()
        .to_owned();
    let no = ReceiptNo::parse(&number).unwrap();
    let store = app.shared.open().await;
    let attempts = (0..6).map(|i| {
        let (store, no) = (store.clone(), no.clone());
        tokio::spawn(async move {
            use_at_check_in(store.as_ref(), &no, &format!("a{i}"), chrono::Utc::now())
                .await
                .map_err(|e| e.code().to_owned())
        })
    });
    let outcomes: Vec<_> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .all(|c| *c == ErrorCode::ReceiptUsed));
}

/// The seed's whole story: a bad photo is refused with its report and nothing stored; a good
/// one is normalised to the spec, reviewed, and its receipt downloads; a rejection comes back
/// with reasons and the order takes a new photo.
async fn photos_are_checked_normalised_reviewed_and_resubmitted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.login("openid-erin").await;
    let reviewer = app.admin_token(Role::Reviewer).await;

    let refused = app
        .post_multipart(
            "/api/v1/receipt-orders",
            &user,
            photo("cat.jpg"),
            &order_fields("id-card", "广东省东莞市"),
        )
        .await;
    let body = assert_error(refused, 422, "PHOTO_REJECTED").await;
    let checks = body["report"]["checks"]
        .as_array()
        .expect("report in the error");
    assert!(checks.iter().any(|c| c["status"] == "fail"), "{body}");
    assert_eq!(
        app.receipt_orders(&user, "").await["orders"],
        json!([]),
        "nothing stored"
    );

    app.subscribe_to_review_results(&user, 2).await;
    let order = app.order_receipt(&user, "portrait-test0.jpg").await;
    assert_eq!(order["status"], "pending");
    assert_eq!(order["region"], "guangdong");
    assert_eq!(order["id_number_masked"], "4419**********0024");
    let order_id = order["id"].as_str().unwrap().to_owned();

    // The photo the user gets back is the spec's: its pixels and its file-size range.
    let specs = json(app.get("/api/v1/photo-specs").await).await;
    let spec = specs["specs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "id-card")
        .unwrap()
        .clone();
    let normalised = app
        .bytes(
            &format!("/api/v1/receipt-orders/{order_id}/photo"),
            &user,
            "image/jpeg",
        )
        .await;
    let decoded = image::load_from_memory(&normalised).unwrap().to_rgb8();
    assert_eq!(
        (decoded.width() as u64, decoded.height() as u64),
        (
            spec["width_px"].as_u64().unwrap(),
            spec["height_px"].as_u64().unwrap()
        )
    );
    let size = normalised.len() as u64;
    assert!(
        size >= spec["file_size_bytes"]["min"].as_u64().unwrap()
            && size <= spec["file_size_bytes"]["max"].as_u64().unwrap(),
        "{size} bytes within {}",
        spec["file_size_bytes"]
    );

    let rejected = app
        .review(
            &reviewer,
            &order_id,
            json!({"decision": "reject", "reasons": ["mirrored_selfie"]}),
        )
        .await;
    assert_eq!(rejected.status(), 200);
    let notified = app.notifications_to("openid-erin").await;
    assert!(notified[0].contains("镜像自拍"), "{notified:?}");
    let resubmit_path = format!("/api/v1/receipt-orders/{order_id}/resubmit");
    let resubmit =
        |photo_name: &str| app.post_multipart(&resubmit_path, &user, photo(photo_name), &[]);
    assert_error(resubmit("coffee.jpg").await, 422, "PHOTO_REJECTED").await;
    let resubmitted = json(resubmit("portrait-test2.jpg").await).await;
    assert_eq!(resubmitted["status"], "pending");
    assert_eq!(resubmitted["history"][2]["kind"], "resubmitted");
    assert_error(
        resubmit("portrait-test2.jpg").await,
        409,
        "ORDER_NOT_REJECTED",
    )
    .await;

    let number = app.approve(&reviewer, &order_id).await["receipt_no"]
        .as_str()
        .unwrap()
        .to_owned();
    let notified = app.notifications_to("openid-erin").await;
    assert_eq!(notified.len(), 2, "rejection, then approval: {notified:?}");
    assert!(notified[1].contains(&number), "{notified:?}");
    let png = app
        .bytes(
            &format!("/api/v1/receipt-orders/{order_id}/receipt"),
            &user,
            "image/png",
        )
        .await;
    let receipt = image::load_from_memory(&png).unwrap().to_rgb8();
    let photo_now = app
        .bytes(
            &format!("/api/v1/receipt-orders/{order_id}/photo"),
            &user,
            "image/jpeg",
        )
        .await;
    assert_ne!(
        photo_now, normalised,
        "the resubmitted photo replaced the first"
    );
    let photo_now = image::load_from_memory(&photo_now).unwrap().to_rgb8();
    assert!(find_embedded(&receipt, &photo_now).is_some());
    assert_eq!(qr_codes(&receipt), vec![number]);
}

async fn uploads_are_bounded_sniffed_and_parsed(backend: Backend) {
    let app = TestApp::spawn_on(
        tests::SharedStore::fresh(backend).await,
        &[("BANZHENG_RECEIPTS__MAX_UPLOAD_BYTES", "1000000")],
    )
    .await;
    let user = app.login("openid-frank").await;
    let post = |photo: Vec<u8>, fields: Vec<(&'static str, String)>| {
        let app = &app;
        let user = user.clone();
        async move {
            app.post_multipart("/api/v1/receipt-orders", &user, photo, &fields)
                .await
        }
    };
    let fields = || order_fields("id-card", "广东省东莞市");
    let mut big = vec![0xFF, 0xD8, 0xFF, 0xE0];
    big.resize(1_500_000, 0);
    assert_error(post(big, fields()).await, 413, "PAYLOAD_TOO_LARGE").await;
    assert_error(
        post(b"GIF89a not a photo".to_vec(), fields()).await,
        422,
        "PHOTO_UNREADABLE",
    )
    .await;
    let good = photo("portrait-test0.jpg");
    let mut bad_id = fields();
    bad_id[3].1 = "441900199003070021".into();
    let body = assert_error(post(good.clone(), bad_id).await, 422, "INVALID_VALUE").await;
    assert_eq!(body["field"], "id_number");
    let body = assert_error(
        post(good.clone(), fields()[..3].to_vec()).await,
        400,
        "INVALID_INPUT",
    )
    .await;
    assert_eq!(body["field"], "id_number");
    let body = assert_error(
        post(good.clone(), order_fields("no-such-document", "广东")).await,
        400,
        "INVALID_INPUT",
    )
    .await;
    assert_eq!(body["field"], "spec");
    assert_error(
        post(
            good.clone(),
            order_fields("driving-licence", "湖南省长沙市"),
        )
        .await,
        422,
        "REGION_NOT_SUPPORTED",
    )
    .await;
    let mut extra = fields();
    extra.push(("price", "0".into()));
    assert_error(post(good.clone(), extra).await, 400, "INVALID_INPUT").await;
    let not_multipart = app
        .post_with_token("/api/v1/receipt-orders", &user, &json!({"spec": "id-card"}))
        .await;
    assert_error(not_multipart, 400, "INVALID_INPUT").await;
    assert_eq!(
        app.receipt_orders(&user, "").await["orders"],
        json!([]),
        "nothing stored"
    );

    // The check endpoint answers the same report, stores nothing.
    let report = app
        .post_multipart(
            "/api/v1/photos/check",
            &user,
            photo("portrait-test0-dark.jpg"),
            &[("spec", "id-card".to_owned())],
        )
        .await;
    assert_eq!(report.status(), 200);
    let report = json(report).await;
    assert!(report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["status"] == "fail"));
}

/// A double-tapped resubmit: both uploads pass the check while the order is rejected, one is
/// saved and the other refused, and the photos the saved one stands on are all there (the
/// refused upload removes only its own).
async fn a_double_tapped_resubmit_keeps_the_winners_photos(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.login("openid-tap").await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let order = app.order_receipt(&user, "portrait-test0.jpg").await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let resubmit_path = format!("/api/v1/receipt-orders/{order_id}/resubmit");
    for round in 0..3 {
        let rejected = app
            .review(
                &reviewer,
                &order_id,
                json!({"decision": "reject", "reasons": ["mirrored_selfie"]}),
            )
            .await;
        assert_eq!(rejected.status(), 200, "round {round}");
        let tap = || app.post_multipart(&resubmit_path, &user, photo("portrait-test2.jpg"), &[]);
        let (first, second) = futures_util::join!(tap(), tap());
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 409],
            "round {round}: one saved, one refused"
        );
        let normalised = app
            .bytes(
                &format!("/api/v1/receipt-orders/{order_id}/photo"),
                &user,
                "image/jpeg",
            )
            .await;
        assert!(
            image::load_from_memory(&normalised).is_ok(),
            "round {round}"
        );
        let original = app
            .get_with_token(
                &format!("/api/v1/admin/receipt-orders/{order_id}/original"),
                &reviewer,
            )
            .await;
        assert_eq!(original.status(), 200, "round {round}: the original kept");
    }
}

on_both_backends!(
    a_double_tapped_resubmit_keeps_the_winners_photos,
    photos_are_checked_normalised_reviewed_and_resubmitted,
    uploads_are_bounded_sniffed_and_parsed,
    a_receipt_books_once_and_is_spent_at_check_in,
    an_expired_receipt_cannot_be_booked,
    racing_check_ins_spend_a_receipt_once,
    review_approves_once_and_the_receipt_carries_the_number,
    a_mistyped_receipt_number_is_caught,
    rejection_shows_reasons_and_other_users_see_nothing,
    the_order_tab_pages_newest_first_and_filters_by_status,
    two_reviewers_at_once_decide_once,
);
