//! WeChat login against the simulator over real HTTP: codes, WeChat's faults, our tokens,
//! rate limiting, production mode without the simulator, and graceful shutdown.

use base64::Engine;
use serde_json::json;
use tests::process::ServerProcess;
use tests::wechat::SimControl;
use tests::{assert_error, json, on_both_backends, Backend, SharedStore, TestApp};

async fn good_code_logs_in_and_opens_a_protected_endpoint(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let code = app.sim().mint_code("o-alice").await;
    let response = app.login_with_code(&code).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains("session_key"), "session key leaked: {text}");
    assert!(!text.contains("o-alice"), "openid leaked: {text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["expires_in"], 7200);
    let token = body["token"].as_str().unwrap();

    let me = app.get_with_token("/api/v1/me", token).await;
    assert_eq!(me.status(), 200);
    assert_eq!(json(me).await["user"]["id"], body["user"]["id"]);

    // The same openid logging in again is the same user.
    let again = app.login("o-alice").await;
    let me = json(app.get_with_token("/api/v1/me", &again).await).await;
    assert_eq!(me["user"]["id"], body["user"]["id"]);
}

async fn a_code_works_once_and_expires_after_five_minutes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let code = app.sim().mint_code("o-bob").await;
    assert_eq!(app.login_with_code(&code).await.status(), 200);
    assert_error(app.login_with_code(&code).await, 401, "WECHAT_CODE_INVALID").await;

    let code = app.sim().mint_code("o-bob").await;
    app.advance_clock(301).await;
    assert_error(app.login_with_code(&code).await, 401, "WECHAT_CODE_INVALID").await;

    assert_error(
        app.login_with_code("never-issued").await,
        401,
        "WECHAT_CODE_INVALID",
    )
    .await;
    for bad in ["", "两个字", "with space", &"x".repeat(129)] {
        assert_error(app.login_with_code(bad).await, 400, "INVALID_INPUT").await;
    }
    assert_error(
        app.post_json("/api/v1/auth/login", &json!({"kode": "x"}))
            .await,
        400,
        "INVALID_INPUT",
    )
    .await;
}

/// Each WeChat failure gives the documented answer; transient ones are tried exactly twice,
/// WeChat's refusals once.
async fn wechat_faults_give_documented_answers(backend: Backend) {
    let app = TestApp::spawn_on(
        SharedStore::fresh(backend).await,
        &[("BANZHENG_WECHAT_TIMEOUT_MS", "500")],
    )
    .await;
    let sim = app.sim();
    let cases = [
        (json!({"errcode": 40029}), 401, "WECHAT_CODE_INVALID", 1),
        (json!({"errcode": 40163}), 401, "WECHAT_CODE_INVALID", 1),
        (json!({"errcode": 45011}), 429, "WECHAT_RATE_LIMITED", 1),
        (json!({"errcode": 40226}), 403, "WECHAT_USER_BLOCKED", 1),
        (json!({"errcode": 40125}), 502, "WECHAT_UNAVAILABLE", 1),
        (
            json!({"errcode": -1, "count": 2}),
            502,
            "WECHAT_UNAVAILABLE",
            2,
        ),
        (
            json!({"http_status": 503, "count": 2}),
            502,
            "WECHAT_UNAVAILABLE",
            2,
        ),
        (
            json!({"http_status": 500, "errcode": -1, "count": 2}),
            502,
            "WECHAT_UNAVAILABLE",
            2,
        ),
        (
            json!({"body": "<html>busy", "count": 2}),
            502,
            "WECHAT_UNAVAILABLE",
            2,
        ),
        (
            json!({"delay_ms": 1500, "count": 2}),
            502,
            "WECHAT_UNAVAILABLE",
            2,
        ),
    ];
    for (fault, status, code, calls) in cases {
        let before = sim.calls("sns/jscode2session").await;
        let mut fault = fault;
        fault["endpoint"] = json!("sns/jscode2session");
        sim.fault(fault.clone()).await;
        let login_code = sim.mint_code("o-carol").await;
        let response = app.login_with_code(&login_code).await;
        if status == 429 {
            assert_eq!(response.headers()["retry-after"], "60");
        }
        let body = assert_error(response, status, code).await;
        assert!(
            !body.to_string().contains(server::wechat::simulator::SECRET),
            "secret in {body}"
        );
        assert_eq!(
            sim.calls("sns/jscode2session").await - before,
            calls,
            "calls to WeChat for {fault}"
        );
    }

    // One transient failure is absorbed by the retry.
    sim.fault(json!({"endpoint": "sns/jscode2session", "errcode": -1}))
        .await;
    let login_code = sim.mint_code("o-carol").await;
    assert_eq!(app.login_with_code(&login_code).await.status(), 200);
}

fn engine() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

async fn forged_expired_and_unsigned_tokens_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.login("o-dave").await;
    let parts: Vec<&str> = token.split('.').collect();
    let claims: serde_json::Value =
        serde_json::from_slice(&engine().decode(parts[1]).unwrap()).unwrap();

    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"a-secret-the-attacker-guessed-00"),
    )
    .unwrap();
    let mut other = claims.clone();
    other["sub"] = json!("someone-else");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        engine().encode(other.to_string()),
        parts[2]
    );
    let none = format!(
        "{}.{}.",
        engine().encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let rs256 = format!(
        "{}.{}.{}",
        engine().encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        parts[1],
        parts[2]
    );
    for bad in [forged.as_str(), &tampered, &none, &rs256, "not-a-jwt"] {
        assert_error(
            app.get_with_token("/api/v1/me", bad).await,
            401,
            "UNAUTHORIZED",
        )
        .await;
    }
    assert_error(app.get("/api/v1/me").await, 401, "UNAUTHORIZED").await;

    assert_eq!(app.get_with_token("/api/v1/me", &token).await.status(), 200);
    app.advance_clock(2 * 3600 + 1).await;
    assert_error(
        app.get_with_token("/api/v1/me", &token).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

async fn login_is_rate_limited_per_client(backend: Backend) {
    let app = TestApp::spawn_on(
        SharedStore::fresh(backend).await,
        &[("BANZHENG_LOGIN__RATE_LIMIT", "3")],
    )
    .await;
    for _ in 0..3 {
        assert_error(
            app.login_with_code("nope").await,
            401,
            "WECHAT_CODE_INVALID",
        )
        .await;
    }
    let before = app.sim().calls("sns/jscode2session").await;
    let code = app.sim().mint_code("o-erin").await;
    let response = app.login_with_code(&code).await;
    assert_eq!(response.headers()["retry-after"], "60");
    assert_error(response, 429, "RATE_LIMITED").await;
    assert_eq!(
        app.sim().calls("sns/jscode2session").await,
        before,
        "a limited login does not reach WeChat"
    );
}

/// With an app id the simulator and the clock control do not exist; login then goes to the
/// configured WeChat (here a simulator on its own port standing in for api.weixin.qq.com).
async fn production_mode_has_no_simulator(backend: Backend) {
    let wechat = server::wechat::simulator::spawn().unwrap();
    let base = wechat.api_base();
    let app = TestApp::spawn_on(
        SharedStore::fresh(backend).await,
        &[
            ("BANZHENG_WECHAT_APPID", server::wechat::simulator::APPID),
            ("BANZHENG_WECHAT_SECRET", server::wechat::simulator::SECRET),
            (
                "BANZHENG_JWT_SECRET",
                "a-production-secret-of-enough-length",
            ),
            ("BANZHENG_WECHAT_API_BASE", &base),
            (
                "BANZHENG_BOOKING__ID_HASH_KEY",
                "a-production-id-hash-key-of-enough-length",
            ),
        ],
    )
    .await;
    for path in [
        "/__sim/messages",
        "/__sim/calls",
        "/__wechat/sns/jscode2session?appid=x",
    ] {
        assert_error(app.get(path).await, 404, "NOT_FOUND").await;
    }
    for path in [
        "/__sim/codes",
        "/__sim/clock",
        "/__sim/notify/run",
        "/__wechat/cgi-bin/stable_token",
    ] {
        assert_error(app.post_json(path, &json!({})).await, 404, "NOT_FOUND").await;
    }
    let code = SimControl::of(&wechat).mint_code("o-frank").await;
    let response = app.login_with_code(&code).await;
    assert_eq!(response.status(), 200);
    wechat.stop().await;
}

on_both_backends!(
    good_code_logs_in_and_opens_a_protected_endpoint,
    a_code_works_once_and_expires_after_five_minutes,
    wechat_faults_give_documented_answers,
    forged_expired_and_unsigned_tokens_are_refused,
    login_is_rate_limited_per_client,
    production_mode_has_no_simulator
);

/// SIGTERM while a login waits on WeChat: the login completes and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_inflight_login_finish() {
    let store = SharedStore::fresh(Backend::Sqlite).await;
    let server = ServerProcess::start(&store.vars()).await;
    let client = tests::client();
    let sim = SimControl::at(&server.address);
    sim.fault(json!({"endpoint": "sns/jscode2session", "delay_ms": 1500}))
        .await;
    let code = sim.mint_code("o-grace").await;
    let login = tokio::spawn({
        let url = format!("{}/api/v1/auth/login", server.address);
        let client = client.clone();
        async move { client.post(url).json(&json!({"code": code})).send().await }
    });
    // Wait until the login is inside its WeChat call, then ask the server to stop.
    while sim.calls("sns/jscode2session").await == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.signal("TERM");
    let response = login
        .await
        .unwrap()
        .expect("the in-flight login is answered");
    assert_eq!(response.status(), 200);
    assert!(json(response).await["token"].is_string());
    assert_eq!(server.wait().await, Some(0), "clean exit");
}
