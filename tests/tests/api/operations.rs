//! Operations (issue 15), each refusal made over HTTP as an attacker would: `/metrics` is
//! closed in production without the token and its labels do not grow whatever a client
//! sends; staff see and act only on their own halls' appointments (another hall's answers
//! like a missing one); a disabled account's tokens stop at once and its login is refused,
//! and an account's tokens can all be revoked; the audit log records who read or decided
//! what, by record id, never the personal data, and only administrators read it.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};
use server::admin::Role;
use tests::admin::ADMIN_PASSWORD;
use tests::booking::{applicant, bookable_weekday, slot_id};
use tests::production::production_app;
use tests::{assert_error, json, on_both_backends, Backend, TestApp};

const METRICS_TOKEN: &str = "a-metrics-token-for-prometheus-only";

async fn metrics_with(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// Production without a metrics token serves none (404, like any unknown path); with one,
/// only a scraper presenting it reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_metrics_need_the_token() {
    let (app, wechat) = production_app(Backend::Sqlite, &[]).await;
    assert_error(metrics_with(&app, None).await, 404, "NOT_FOUND").await;
    assert_error(
        metrics_with(&app, Some(METRICS_TOKEN)).await,
        404,
        "NOT_FOUND",
    )
    .await;
    wechat.stop().await;

    let (app, wechat) = production_app(
        Backend::Sqlite,
        &[("BANZHENG_METRICS_TOKEN", METRICS_TOKEN)],
    )
    .await;
    assert_error(metrics_with(&app, None).await, 401, "UNAUTHORIZED").await;
    for wrong in [
        "a-metrics-token-for-prometheus-onlY",
        "x",
        METRICS_TOKEN.split_at(10).0,
    ] {
        assert_error(metrics_with(&app, Some(wrong)).await, 401, "UNAUTHORIZED").await;
    }
    let right = metrics_with(&app, Some(METRICS_TOKEN)).await;
    assert_eq!(right.status(), 200);
    let text = right.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    wechat.stop().await;
}

/// The series of the request metrics: each line's name and labels, without its value.
async fn series(app: &TestApp) -> BTreeSet<String> {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with("http_request"))
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}

/// Requests a hostile client invents: a fresh extension method and a fresh path each, on
/// unknown paths, on a known endpoint, and on a route with an id.
async fn hostile_requests(app: &TestApp, round: usize) {
    let fresh = || uuid::Uuid::new_v4().simple().to_string()[..10].to_ascii_uppercase();
    let method = Method::from_bytes(format!("X{}", fresh()).as_bytes()).unwrap();
    let requests = [
        (method.clone(), format!("/{}/{}", fresh(), round)),
        (method.clone(), "/healthz".to_owned()),
        (Method::GET, format!("/no/such/{}", fresh())),
        (Method::GET, format!("/api/v1/appointments/{}", fresh())),
        (method, format!("/api/v1/appointments/{}", fresh())),
    ];
    for (method, path) in requests {
        let status = app
            .client
            .request(method, app.url(&path))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_client_error(), "{path}: {status}");
    }
}

/// 200 rounds of invented methods and paths after one: the metrics have the same series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_and_paths_do_not_grow_the_metrics() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    hostile_requests(&app, 0).await;
    // Reading the metrics is a request too: its own series exists from the second read on.
    series(&app).await;
    let before = series(&app).await;
    for round in 1..=200 {
        hostile_requests(&app, round).await;
    }
    let after = series(&app).await;
    let new: Vec<_> = after.difference(&before).collect();
    assert!(new.is_empty(), "new series: {new:?}");
    println!(
        "{} series before and after 200 rounds of invented methods and paths",
        after.len()
    );
    assert!(
        after
            .iter()
            .any(|s| s.contains(r#"method="other",route="unmatched""#)),
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .any(|s| s.contains(r#"route="/api/v1/appointments/{id}""#)),
        "{after:?}"
    );
}

fn check_in_path(code: &str) -> String {
    format!("/api/v1/admin/appointments/{code}/check-in")
}

fn progress_path(id: &str) -> String {
    format!("/api/v1/admin/appointments/{id}/progress")
}

/// An appointment at `hall` on the next bookable weekday: its id, code and day.
async fn appointment_at(app: &TestApp, hall: &str, person: u32) -> (String, String) {
    let user = app.login(&format!("resident-{person}")).await;
    let body = json!({
        "slot_id": slot_id(hall, bookable_weekday(), "0900"),
        "service": "loss_replacement",
        "applicant": applicant(person),
    });
    let response = app.book(&user, &body, None).await;
    assert_eq!(response.status(), 201, "booking at {hall}");
    let booked = json(response).await;
    (
        booked["id"].as_str().unwrap().to_owned(),
        booked["code"].as_str().unwrap().to_owned(),
    )
}

/// Staff of 东城 try a 南城 appointment by its code and by its id: the answers are those of
/// an appointment that does not exist, and nothing changes; at their own hall they act.
async fn staff_see_only_their_halls(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, code) = appointment_at(&app, "nancheng", 1).await;
    let (_, dongcheng) = app.admin_account(Role::Staff, &["dongcheng"]).await;
    let accepted = json!({"status": "accepted", "delivery": {"method": "pickup"}});

    let other_hall = app
        .post_with_token(&check_in_path(&code), &dongcheng, &json!({}))
        .await;
    let other = assert_error(other_hall, 404, "NOT_FOUND").await;
    let missing = assert_error(
        app.post_with_token(&check_in_path("ZZZZZZZZ"), &dongcheng, &json!({}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(other["message"], missing["message"]);
    let other = assert_error(
        app.post_with_token(&progress_path(&id), &dongcheng, &accepted)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let missing = assert_error(
        app.post_with_token(&progress_path("no-such-appointment"), &dongcheng, &accepted)
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert_eq!(other["message"], missing["message"]);

    // Staff of 南城 (and city-wide staff) find it: too early to check in, not yet 受理-able.
    let (_, nancheng) = app
        .admin_account(Role::Staff, &["dongcheng", "nancheng"])
        .await;
    let everywhere = app.admin_token(Role::Staff).await;
    for token in [&nancheng, &everywhere] {
        assert_error(
            app.post_with_token(&check_in_path(&code), token, &json!({}))
                .await,
            409,
            "NOT_TODAY",
        )
        .await;
        assert_error(
            app.post_with_token(&progress_path(&id), token, &accepted)
                .await,
            409,
            "ILLEGAL_TRANSITION",
        )
        .await;
    }
    // Staff of no hall (an account made without one) see nothing.
    let (_, nowhere) = app.admin_account(Role::Staff, &[]).await;
    assert_error(
        app.post_with_token(&check_in_path(&code), &nowhere, &json!({}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
}

async fn post_account(
    app: &TestApp,
    token: &str,
    username: &str,
    action: &str,
) -> reqwest::Response {
    app.post_with_token(
        &format!("/api/v1/admin/accounts/{username}/{action}"),
        token,
        &json!({}),
    )
    .await
}

/// A staff endpoint's answer to `token`: 404 for a made-up code when the token passes.
async fn staff_call(app: &TestApp, token: &str) -> u16 {
    app.post_with_token(&check_in_path("ZZZZZZZZ"), token, &json!({}))
        .await
        .status()
        .as_u16()
}

async fn fresh_token(app: &TestApp, username: &str) -> String {
    let response = app.admin_login(username, ADMIN_PASSWORD).await;
    assert_eq!(response.status(), 200, "login of {username}");
    json(response).await["token"].as_str().unwrap().to_owned()
}

/// An administrator disables a staff account: both of its tokens stop at once, its login
/// with the right password is refused (a wrong one looks as always); enabled again it logs in
/// but the old tokens stay dead. Revoking tokens kills every token, logins go on. Only
/// administrators do any of it.
async fn disabled_accounts_and_revoked_tokens_stop_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin_name, admin) = app.admin_account(Role::Admin, &[]).await;
    let (staff_name, first) = app.admin_account(Role::Staff, &["dongcheng"]).await;
    let second = fresh_token(&app, &staff_name).await;
    assert_eq!(staff_call(&app, &first).await, 404);
    assert_eq!(staff_call(&app, &second).await, 404);

    // Not an administrator: staff, reviewers and users cannot disable anyone.
    let reviewer = app.admin_token(Role::Reviewer).await;
    let user = app.login("resident-9").await;
    let refusals = [
        (&first, admin_name.as_str(), 403, "FORBIDDEN"),
        (&reviewer, &admin_name, 403, "FORBIDDEN"),
        (&user, &admin_name, 401, "UNAUTHORIZED"),
        (&admin, "nobody-here", 404, "NOT_FOUND"),
        // An administrator does not lock themselves out.
        (&admin, &admin_name, 422, "INVALID_VALUE"),
    ];
    for (token, username, status, code) in refusals {
        let response = post_account(&app, token, username, "disable").await;
        assert_error(response, status, code).await;
    }

    let disabled = post_account(&app, &admin, &staff_name, "disable").await;
    assert_eq!(disabled.status(), 200);
    assert_eq!(json(disabled).await["admin"]["disabled"], true);
    assert_eq!(staff_call(&app, &first).await, 401);
    assert_eq!(staff_call(&app, &second).await, 401);
    assert_error(
        app.admin_login(&staff_name, ADMIN_PASSWORD).await,
        403,
        "ACCOUNT_DISABLED",
    )
    .await;
    assert_error(
        app.admin_login(&staff_name, "not-the-password").await,
        401,
        "BAD_CREDENTIALS",
    )
    .await;

    assert_eq!(
        post_account(&app, &admin, &staff_name, "enable")
            .await
            .status(),
        200
    );
    assert_eq!(
        staff_call(&app, &first).await,
        401,
        "old tokens stay revoked"
    );
    let third = fresh_token(&app, &staff_name).await;
    let fourth = fresh_token(&app, &staff_name).await;
    assert_eq!(staff_call(&app, &third).await, 404);

    let revoked = post_account(&app, &admin, &staff_name, "revoke-tokens").await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(json(revoked).await["admin"]["disabled"], false);
    assert_eq!(staff_call(&app, &third).await, 401);
    assert_eq!(staff_call(&app, &fourth).await, 401);
    let fifth = fresh_token(&app, &staff_name).await;
    assert_eq!(staff_call(&app, &fifth).await, 404);

    // An administrator's own tokens can go too (a lost laptop); then they log in again.
    assert_eq!(
        post_account(&app, &admin, &admin_name, "revoke-tokens")
            .await
            .status(),
        200
    );
    assert_error(
        post_account(&app, &admin, &staff_name, "enable").await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let admin = fresh_token(&app, &admin_name).await;
    assert_eq!(
        post_account(&app, &admin, &staff_name, "enable")
            .await
            .status(),
        200
    );
}

async fn audit_page(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .get_with_token(&format!("/api/v1/admin/audit{query}"), token)
        .await;
    assert_eq!(response.status(), 200, "audit {query}");
    json(response).await
}

/// The id an account's token speaks for, as the login answered it.
async fn account_id(app: &TestApp, username: &str) -> String {
    let body = json(app.admin_login(username, ADMIN_PASSWORD).await).await;
    body["admin"]["id"].as_str().unwrap().to_owned()
}

/// Staff and reviewers read and decide; the log holds who, what, which record and when, and
/// no name, phone nor ID number of anyone; staff and reviewers cannot read it.
async fn the_audit_log_records_reads_and_decisions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.admin_account(Role::Admin, &[]).await;
    let (staff_name, staff) = app.admin_account(Role::Staff, &["nancheng"]).await;
    let (reviewer_name, reviewer) = app.admin_account(Role::Reviewer, &[]).await;
    let (_, code) = appointment_at(&app, "nancheng", 2).await;
    let (_, outsider) = app.admin_account(Role::Staff, &["dongcheng"]).await;

    let order = app.seed_order("o-audited", "portrait-test0.jpg").await;
    let queue = app
        .get_with_token("/api/v1/admin/review-queue", &reviewer)
        .await;
    assert_eq!(queue.status(), 200);
    let shown = app
        .get_with_token(&format!("/api/v1/admin/receipt-orders/{order}"), &reviewer)
        .await;
    assert_eq!(shown.status(), 200);
    let approved = app.approve(&reviewer, &order).await;
    let receipt_no = approved["receipt_no"].as_str().unwrap().to_owned();
    let looked_up = app
        .get_with_token(&format!("/api/v1/admin/receipts/{receipt_no}"), &staff)
        .await;
    assert_eq!(looked_up.status(), 200);
    let check_in = app
        .post_with_token(&check_in_path(&code), &staff, &json!({}))
        .await;
    assert_eq!(
        check_in.status(),
        409,
        "not the day: refused, still audited"
    );
    assert_eq!(
        app.post_with_token(&check_in_path(&code), &outsider, &json!({}))
            .await
            .status(),
        404
    );

    // Only administrators read the log.
    for token in [&staff, &reviewer] {
        assert_error(
            app.get_with_token("/api/v1/admin/audit", token).await,
            403,
            "FORBIDDEN",
        )
        .await;
    }
    let user = app.login("resident-2").await;
    assert_error(
        app.get_with_token("/api/v1/admin/audit", &user).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_error(app.get("/api/v1/admin/audit").await, 401, "UNAUTHORIZED").await;

    let page = audit_page(&app, &admin, "").await;
    let text = page.to_string();
    for personal in [
        "张三",
        "13812345678",
        "13912345678",
        &tests::booking::adult_id(2),
    ] {
        assert!(
            !text.contains(personal),
            "{personal} in the audit log: {text}"
        );
    }
    let entries = page["entries"].as_array().unwrap();
    let reviewer_id = account_id(&app, &reviewer_name).await;
    let staff_id = account_id(&app, &staff_name).await;
    let find = |actor: &str, action: &str| -> Vec<&Value> {
        entries
            .iter()
            .filter(|e| e["actor"] == actor && e["action"] == action)
            .collect()
    };
    let queue_read = find(&reviewer_id, "GET /api/v1/admin/review-queue");
    assert_eq!(queue_read.len(), 1, "{text}");
    assert!(queue_read[0]["records"]
        .as_array()
        .unwrap()
        .contains(&json!(order)));
    assert_eq!(queue_read[0]["role"], "reviewer");
    assert_eq!(queue_read[0]["status"], 200);
    assert!(queue_read[0]["at"].as_str().is_some());
    let order_read = find(&reviewer_id, "GET /api/v1/admin/receipt-orders/{id}");
    assert_eq!(order_read[0]["records"], json!([order]));
    let decision = find(
        &reviewer_id,
        "POST /api/v1/admin/receipt-orders/{id}/review",
    );
    assert_eq!(decision[0]["records"], json!([order]));
    let lookup = find(&staff_id, "GET /api/v1/admin/receipts/{receipt_no}");
    assert_eq!(
        lookup[0]["records"],
        json!([order]),
        "the order's id, not the number"
    );
    let check_ins = find(&staff_id, "POST /api/v1/admin/appointments/{code}/check-in");
    assert_eq!(check_ins[0]["status"], 409);
    // Refused before the appointment was read: the code tried, which is no personal data.
    assert_eq!(check_ins[0]["records"], json!([code]));
    let outsider_tries: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            e["status"] == 404 && e["action"] == "POST /api/v1/admin/appointments/{code}/check-in"
        })
        .collect();
    assert_eq!(outsider_tries.len(), 1, "{text}");
    // The administrators' own reads are in the log too (the 403s above among them).
    assert!(entries
        .iter()
        .any(|e| e["action"] == "GET /api/v1/admin/audit" && e["status"] == 403));

    // Newest first, a page at a time, and one account's entries.
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let first = audit_page(&app, &admin, "?limit=2").await;
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    let before = first["next_before"].as_u64().unwrap();
    let second = audit_page(&app, &admin, &format!("?limit=2&before={before}")).await;
    assert!(second["entries"][0]["seq"].as_u64().unwrap() < before);
    let of_staff = audit_page(&app, &admin, &format!("?actor={staff_id}")).await;
    let of_staff = of_staff["entries"].as_array().unwrap();
    assert_eq!(
        of_staff.len(),
        3,
        "lookup, check-in, audit read: {of_staff:?}"
    );
    assert!(of_staff.iter().all(|e| e["actor"] == staff_id.as_str()));
    assert_error(
        app.get_with_token("/api/v1/admin/audit?limit=100000", &admin)
            .await,
        400,
        "INVALID_INPUT",
    )
    .await;
}

on_both_backends!(
    staff_see_only_their_halls,
    disabled_accounts_and_revoked_tokens_stop_at_once,
    the_audit_log_records_reads_and_decisions,
);
