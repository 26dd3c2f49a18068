//! 客服 messages over HTTP: WeChat's push (URL verification, plain mode and 安全模式, forged
//! signatures, retried pushes), the automatic answers through `cgi-bin/message/custom/send`
//! via the outbox, and WeChat's 48-hour window for replies.

use serde_json::{json, Value};
use server::wechat::push::{signature, PushKey};
use server::wechat::simulator::APPID;
use tests::{assert_error, on_both_backends, Backend, SharedStore, TestApp};

const TOKEN: &str = "kfPushToken2026";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const PUSH: &str = "/api/v1/wechat/push";

#[derive(Clone, Copy)]
enum Mode {
    Plain,
    Safe,
}

async fn app(backend: Backend, mode: Mode) -> TestApp {
    let mut vars = vec![("BANZHENG_WECHAT__PUSH_TOKEN", TOKEN)];
    if let Mode::Safe = mode {
        vars.push(("BANZHENG_WECHAT__PUSH_AES_KEY", AES_KEY));
    }
    TestApp::spawn_on(SharedStore::fresh(backend).await, &vars).await
}

/// The 客服 messages WeChat took for `openid`: their text.
async fn replies_to(app: &TestApp, openid: &str) -> Vec<String> {
    app.run_notifier().await;
    app.sim()
        .messages()
        .await
        .into_iter()
        .filter(|m| m["touser"] == openid && m["msgtype"] == "text")
        .map(|m| m["text"]["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// How many answers the pushes so far put in the outbox (sent or refused: these pushes come
/// from the test, so the simulated WeChat never saw the user write).
async fn answers_written(app: &TestApp) -> u64 {
    app.run_notifier().await["claimed"]
        .as_u64()
        .expect("claimed")
}

fn success(deliveries: &[(u16, String)]) -> bool {
    deliveries.iter().all(|(s, b)| *s == 200 && b == "success")
}

#[tokio::test]
async fn without_a_push_token_there_is_no_push_endpoint() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_error(app.get(PUSH).await, 404, "NOT_FOUND").await;
    let sent = app.post_json(PUSH, &json!({})).await;
    assert_error(sent, 404, "NOT_FOUND").await;
}

/// WeChat's URL verification as the admin console sends it, with `signature`.
async fn verify(app: &TestApp, signature: &str, timestamp: &str, nonce: &str) -> reqwest::Response {
    let query = [
        ("signature", signature),
        ("timestamp", timestamp),
        ("nonce", nonce),
        ("echostr", "echo-7731"),
    ];
    app.client
        .get(app.url(PUSH))
        .query(&query)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn url_verification_echoes_echostr_only_when_signed_with_our_token() {
    let app = app(Backend::Sqlite, Mode::Safe).await;
    let (timestamp, nonce) = ("1733100000", "582940");
    let signed = signature(&[TOKEN, timestamp, nonce]);
    let answer = verify(&app, &signed, timestamp, nonce).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "echo-7731");

    let forged = signature(&["another-token", timestamp, nonce]);
    let answer = verify(&app, &forged, timestamp, nonce).await;
    let body = assert_error(answer, 403, "PUSH_SIGNATURE_INVALID").await;
    assert!(!body.to_string().contains("echo-7731"), "{body}");
}

async fn questions_get_automatic_answers(backend: Backend, mode: Mode) {
    let app = app(backend, mode).await;
    let sim = app.sim();
    assert!(success(
        &sim.kf_message("o-kf-1", "照片回执怎么办理？", 1).await
    ));
    assert!(success(&sim.kf_message("o-kf-1", "在吗", 1).await));
    let replies = replies_to(&app, "o-kf-1").await;
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies
            .iter()
            .any(|r| r.contains("订单") && r.contains("回执单")),
        "{replies:?}"
    );
    assert!(
        replies
            .iter()
            .any(|r| r.contains("客服人员") && r.contains("9:00-18:00")),
        "a question nothing matches is told that a person replies, and when: {replies:?}"
    );
}

async fn questions_get_automatic_answers_in_plain_mode(backend: Backend) {
    questions_get_automatic_answers(backend, Mode::Plain).await
}

async fn questions_get_automatic_answers_in_safe_mode(backend: Backend) {
    questions_get_automatic_answers(backend, Mode::Safe).await
}

/// WeChat pushes again when it got no answer: the message is answered once.
async fn a_retried_push_is_handled_once(backend: Backend) {
    let app = app(backend, Mode::Safe).await;
    let deliveries = app.sim().kf_message("o-kf-2", "预约怎么改时间", 3).await;
    assert_eq!(deliveries.len(), 3);
    assert!(success(&deliveries), "{deliveries:?}");
    let replies = replies_to(&app, "o-kf-2").await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].contains("我要预约"), "{replies:?}");
}

fn message(msg_id: u64) -> Value {
    json!({
        "ToUserName": "gh_0123456789ab",
        "FromUserName": "o-forger",
        "CreateTime": 1733100000,
        "MsgType": "text",
        "Content": "费用多少",
        "MsgId": msg_id,
    })
}

async fn push(app: &TestApp, query: &[(&str, &str)], body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(PUSH))
        .query(query)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn forged_pushes_are_refused_in_plain_mode() {
    let app = app(Backend::Sqlite, Mode::Plain).await;
    let (timestamp, nonce) = ("1733100000", "11");
    let forged = signature(&["guessed", timestamp, nonce]);
    let query = [
        ("signature", forged.as_str()),
        ("timestamp", timestamp),
        ("nonce", nonce),
    ];
    assert_error(
        push(&app, &query, &message(1)).await,
        403,
        "PUSH_SIGNATURE_INVALID",
    )
    .await;
    // The same message signed with our token is taken.
    let signed = signature(&[TOKEN, timestamp, nonce]);
    let query = [
        ("signature", signed.as_str()),
        ("timestamp", timestamp),
        ("nonce", nonce),
    ];
    let answer = push(&app, &query, &message(1)).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "success");
    assert_eq!(answers_written(&app).await, 1);
}

#[tokio::test]
async fn forged_pushes_are_refused_in_safe_mode() {
    let app = app(Backend::Sqlite, Mode::Safe).await;
    let (timestamp, nonce) = ("1733100000", "22");
    let signed = signature(&[TOKEN, timestamp, nonce]);
    // A plain message, however well signed, is not taken in 安全模式.
    let query = [
        ("signature", signed.as_str()),
        ("timestamp", timestamp),
        ("nonce", nonce),
    ];
    assert_error(
        push(&app, &query, &message(2)).await,
        403,
        "PUSH_SIGNATURE_INVALID",
    )
    .await;

    let key = PushKey::parse(AES_KEY).unwrap();
    let sealed = |appid: &str| {
        let encrypted = key.encrypt(&message(2).to_string(), appid);
        let msg_signature = signature(&[TOKEN, timestamp, nonce, &encrypted]);
        (
            json!({"ToUserName": "gh_0123456789ab", "Encrypt": encrypted}),
            msg_signature,
        )
    };
    let encrypted_query = |msg_signature: &str| {
        vec![
            ("signature", signed.clone()),
            ("timestamp", timestamp.to_owned()),
            ("nonce", nonce.to_owned()),
            ("encrypt_type", "aes".to_owned()),
            ("msg_signature", msg_signature.to_owned()),
        ]
    };
    let send = |query: Vec<(&'static str, String)>, body: Value| {
        let app = &app;
        async move {
            app.client
                .post(app.url(PUSH))
                .query(&query)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // A wrong msg_signature.
    let (body, _) = sealed(APPID);
    let forged = signature(&["guessed", timestamp, nonce, "x"]);
    assert_error(
        send(encrypted_query(&forged), body).await,
        403,
        "PUSH_SIGNATURE_INVALID",
    )
    .await;
    // Signed with our token but sealed for another app.
    let (body, msg_signature) = sealed("wx9999999999999999");
    assert_error(
        send(encrypted_query(&msg_signature), body).await,
        403,
        "PUSH_SIGNATURE_INVALID",
    )
    .await;
    assert_eq!(answers_written(&app).await, 0);
    // Ours.
    let (body, msg_signature) = sealed(APPID);
    let answer = send(encrypted_query(&msg_signature), body).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "success");
    assert_eq!(answers_written(&app).await, 1);
}

/// WeChat takes 客服 messages only within 48 hours of the user's last message: an answer still
/// in the outbox after that is refused with 45015 and not retried.
async fn a_reply_after_48_hours_is_refused_with_45015(backend: Backend) {
    let app = app(backend, Mode::Plain).await;
    let sim = app.sim();
    assert!(success(
        &sim.kf_message("o-kf-3", "我的订单到哪了", 1).await
    ));
    sim.advance_clock(48 * 3600 + 1).await;
    let pass = app.run_notifier().await;
    assert_eq!(
        (pass["claimed"].as_u64(), pass["failed"].as_u64()),
        (Some(1), Some(1)),
        "{pass}"
    );
    assert_eq!(app.run_notifier().await["claimed"], 0, "45015 is final");
    assert!(replies_to(&app, "o-kf-3").await.is_empty());

    // The simulator itself: within the window a reply is taken, after it 45015.
    let api = sim.api();
    let token = api.classic_token().await;
    let reply = json!({"touser": "o-kf-3", "msgtype": "text", "text": {"content": "您好"}});
    let (_, answer) = api
        .post(
            "cgi-bin/message/custom/send",
            &[("access_token", &token)],
            &reply,
        )
        .await;
    assert_eq!(answer["errcode"], 45015, "{answer}");
    assert!(success(&sim.kf_message("o-kf-3", "还在吗", 1).await));
    let (_, answer) = api
        .post(
            "cgi-bin/message/custom/send",
            &[("access_token", &token)],
            &reply,
        )
        .await;
    assert_eq!(answer["errcode"], 0, "{answer}");
}

on_both_backends!(
    questions_get_automatic_answers_in_plain_mode,
    questions_get_automatic_answers_in_safe_mode,
    a_retried_push_is_handled_once,
    a_reply_after_48_hours_is_refused_with_45015,
);
