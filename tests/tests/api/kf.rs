//! 客服 messages over HTTP: WeChat's push (URL verification, plain mode and 安全模式, forged
//! signatures, retried pushes), the automatic answers through `cgi-bin/message/custom/send`
//! via the outbox, and WeChat's 48-hour window for replies.

use serde_json::{json, Value};
use server::admin::Role;
use server::wechat::push::{signature, PushKey};
use server::wechat::simulator::APPID;
use tests::process::ServerProcess;
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

/// A push `timestamp` of now (WeChat's are; one far from now is refused as a replay).
fn now() -> String {
    chrono::Utc::now().timestamp().to_string()
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
    let timestamp = now();
    let timestamp = timestamp.as_str();
    let nonce = "582940";
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
    let timestamp = now();
    let timestamp = timestamp.as_str();
    let nonce = "11";
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
    let timestamp = now();
    let timestamp = timestamp.as_str();
    let nonce = "22";
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

// The staff inbox (role `support`).

const INBOX: &str = "/api/v1/admin/kf/conversations";

/// The inbox's conversations, as a support account sees them.
async fn inbox(app: &TestApp, token: &str) -> Vec<Value> {
    let answer = app.get_with_token(INBOX, token).await;
    let status = answer.status();
    let body = tests::json(answer).await;
    assert_eq!(status, 200, "{body}");
    body["conversations"]
        .as_array()
        .expect("conversations")
        .clone()
}

/// The one conversation of the user whose masked openid is `user`.
async fn conversation_of(app: &TestApp, token: &str, user: &str) -> Value {
    let listed = inbox(app, token).await;
    let found = listed
        .iter()
        .find(|c| c["user"] == user)
        .unwrap_or_else(|| panic!("{user} in {listed:?}"));
    let id = found["id"].as_str().expect("id");
    let answer = app.get_with_token(&format!("{INBOX}/{id}"), token).await;
    assert_eq!(answer.status(), 200);
    tests::json(answer).await
}

async fn reply(app: &TestApp, token: &str, id: &str, text: &str) -> reqwest::Response {
    app.post_with_token(
        &format!("{INBOX}/{id}/replies"),
        token,
        &json!({ "text": text }),
    )
    .await
}

/// A question no automatic answer matches: the user is told a person will answer, the inbox
/// shows the conversation awaiting one, a support account answers within 48 hours, and WeChat
/// delivers the answer, once.
async fn a_person_answers_within_48_hours(backend: Backend, mode: Mode) {
    let app = app(backend, mode).await;
    let sim = app.sim();
    let support = app.admin_token(Role::Support).await;
    assert!(success(
        &sim.kf_message("o-kf-5", "我的快递一直没收到", 1).await
    ));
    assert!(success(&sim.kf_message("o-kf-6", "回执怎么弄", 1).await));
    let told = replies_to(&app, "o-kf-5").await;
    assert!(
        told.len() == 1 && told[0].contains("客服人员"),
        "told when a person answers: {told:?}"
    );

    // Newest first; only the question nothing answered awaits a person.
    let listed = inbox(&app, &support).await;
    let users: Vec<_> = listed.iter().map(|c| c["user"].clone()).collect();
    assert_eq!(users, [json!("o-kf***"), json!("o-kf***")], "{listed:?}");
    let awaiting: Vec<_> = listed.iter().map(|c| c["awaiting"].clone()).collect();
    assert_eq!(awaiting, [json!(false), json!(true)], "{listed:?}");
    let id = listed[1]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[1]["last_text"], told[0]);
    assert_eq!(listed[1]["can_reply"], true);

    let read = app.get_with_token(&format!("{INBOX}/{id}"), &support).await;
    let read = tests::json(read).await;
    let authors: Vec<_> = read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["author"].clone())
        .collect();
    assert_eq!(authors, [json!("user"), json!("auto")], "{read}");
    assert_eq!(read["messages"][0]["text"], "我的快递一直没收到");

    sim.advance_clock(47 * 3600).await;
    // Admin tokens last 8 hours: log in again.
    let support = app.admin_token(Role::Support).await;
    let answer = reply(
        &app,
        &support,
        &id,
        "您好，请到南城户政大厅失物招领处领取。",
    )
    .await;
    assert_eq!(answer.status(), 201);
    let sent = tests::json(answer).await;
    assert_eq!(sent["author"], "staff");
    assert!(sent["staff_id"].as_str().is_some_and(|s| !s.is_empty()));

    let delivered = replies_to(&app, "o-kf-5").await;
    assert_eq!(
        delivered.last().map(String::as_str),
        Some("您好，请到南城户政大厅失物招领处领取。"),
        "{delivered:?}"
    );
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert_eq!(app.run_notifier().await["claimed"], 0, "sent once");

    let read = app.get_with_token(&format!("{INBOX}/{id}"), &support).await;
    let read = tests::json(read).await;
    assert_eq!(read["awaiting"], false, "answered: {read}");
    let last = &read["messages"][2];
    assert_eq!(
        (&last["author"], &last["staff_id"]),
        (&json!("staff"), &sent["staff_id"]),
        "who answered: {read}"
    );
}

async fn a_person_answers_within_48_hours_in_plain_mode(backend: Backend) {
    a_person_answers_within_48_hours(backend, Mode::Plain).await
}

async fn a_person_answers_within_48_hours_in_safe_mode(backend: Backend) {
    a_person_answers_within_48_hours(backend, Mode::Safe).await
}

/// After 48 hours our API refuses the reply itself, before anything is queued.
async fn a_staff_reply_after_48_hours_is_refused(backend: Backend, mode: Mode) {
    let app = app(backend, mode).await;
    let sim = app.sim();
    assert!(success(&sim.kf_message("o-kf-7", "有人吗", 1).await));
    assert_eq!(
        replies_to(&app, "o-kf-7").await.len(),
        1,
        "the automatic answer"
    );
    sim.advance_clock(48 * 3600 + 60).await;
    let support = app.admin_token(Role::Support).await;
    let read = conversation_of(&app, &support, "o-kf***").await;
    assert_eq!(read["can_reply"], false, "{read}");
    let id = read["id"].as_str().unwrap();
    let refused = reply(&app, &support, id, "抱歉回复晚了").await;
    let body = assert_error(refused, 409, "KF_WINDOW_CLOSED").await;
    assert!(!body.to_string().contains("抱歉回复晚了"), "{body}");
    assert_eq!(app.run_notifier().await["claimed"], 0, "nothing queued");
    assert_eq!(
        replies_to(&app, "o-kf-7").await.len(),
        1,
        "nothing delivered"
    );
    let read = conversation_of(&app, &support, "o-kf***").await;
    assert_eq!(read["messages"].as_array().unwrap().len(), 2, "{read}");
    // The user writes again: the window opens again.
    assert!(success(&sim.kf_message("o-kf-7", "还在吗", 1).await));
    let answer = reply(&app, &support, id, "在的，请讲").await;
    assert_eq!(answer.status(), 201);
    assert!(replies_to(&app, "o-kf-7")
        .await
        .contains(&"在的，请讲".to_owned()));
}

async fn a_staff_reply_after_48_hours_is_refused_in_plain_mode(backend: Backend) {
    a_staff_reply_after_48_hours_is_refused(backend, Mode::Plain).await
}

async fn a_staff_reply_after_48_hours_is_refused_in_safe_mode(backend: Backend) {
    a_staff_reply_after_48_hours_is_refused(backend, Mode::Safe).await
}

/// Conversations are for `support` accounts only: other staff get 403, users (whoever wrote)
/// and strangers 401, and no refusal carries what was written.
async fn the_inbox_is_for_support_only(backend: Backend) {
    let app = app(backend, Mode::Plain).await;
    let sim = app.sim();
    assert!(success(
        &sim.kf_message("o-kf-8", "我的手机号是13800138000", 1).await
    ));
    assert_eq!(
        replies_to(&app, "o-kf-8").await.len(),
        1,
        "the automatic answer"
    );
    let support = app.admin_token(Role::Support).await;
    let id = inbox(&app, &support).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reviewer = app.admin_token(Role::Reviewer).await;
    let staff = app.admin_token(Role::Staff).await;
    let writer = app.login("o-kf-8").await;
    let other_user = app.login("o-kf-9").await;
    let read = format!("{INBOX}/{id}");
    let replies = format!("{INBOX}/{id}/replies");
    for (token, status, code) in [
        (reviewer.as_str(), 403, "FORBIDDEN"),
        (staff.as_str(), 403, "FORBIDDEN"),
        (writer.as_str(), 401, "UNAUTHORIZED"),
        (other_user.as_str(), 401, "UNAUTHORIZED"),
        ("not-a-token", 401, "UNAUTHORIZED"),
    ] {
        for answer in [
            app.get_with_token(INBOX, token).await,
            app.get_with_token(&read, token).await,
            reply(&app, token, &id, "你好").await,
        ] {
            let body = assert_error(answer, status, code).await;
            assert!(!body.to_string().contains("13800138000"), "{body}");
        }
    }
    assert_error(app.get(INBOX).await, 401, "UNAUTHORIZED").await;
    assert_error(
        app.post_json(&replies, &json!({"text": "x"})).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(
        app.run_notifier().await["claimed"],
        0,
        "no reply was queued"
    );
    // An unknown conversation, and replies the schema refuses.
    let unknown = app.get_with_token(&format!("{INBOX}/0123"), &support).await;
    assert_error(unknown, 404, "NOT_FOUND").await;
    for text in ["", "   ", &"长".repeat(601)] {
        assert_error(reply(&app, &support, &id, text).await, 400, "INVALID_INPUT").await;
    }
}

/// Conversations older than `BANZHENG_KF__RETENTION_DAYS` (180) are deleted by the sweep,
/// measured by the app's clock; younger ones stay.
async fn old_conversations_are_deleted(backend: Backend) {
    let app = app(backend, Mode::Safe).await;
    let sim = app.sim();
    assert!(success(&sim.kf_message("o-old-1", "在吗", 1).await));
    sim.advance_clock(100 * 86400).await;
    assert!(success(&sim.kf_message("o-new-1", "在吗", 1).await));
    let support = app.admin_token(Role::Support).await;
    let sweep = || async {
        let answer = app.post_json("/__sim/kf/retention/run", &json!({})).await;
        assert_eq!(answer.status(), 200);
        tests::json(answer).await["deleted"]
            .as_u64()
            .expect("deleted")
    };
    assert_eq!(sweep().await, 0);
    let old_id = inbox(&app, &support).await[1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.advance_clock(80 * 86400 + 3600).await;
    assert_eq!(sweep().await, 1);
    let support = app.admin_token(Role::Support).await;
    let left: Vec<_> = inbox(&app, &support)
        .await
        .iter()
        .map(|c| c["user"].clone())
        .collect();
    assert_eq!(left, [json!("o-ne***")]);
    let gone = app
        .get_with_token(&format!("{INBOX}/{old_id}"), &support)
        .await;
    assert_error(gone, 404, "NOT_FOUND").await;
}

/// A correctly signed push whose `timestamp` is more than 5 minutes from now is a replay:
/// refused like a forged one.
async fn stale_pushes_are_refused(backend: Backend) {
    let app = app(backend, Mode::Plain).await;
    let nonce = "33";
    let signed_at = |offset: i64| {
        let timestamp = (chrono::Utc::now().timestamp() + offset).to_string();
        let signature = signature(&[TOKEN, &timestamp, nonce]);
        vec![
            ("signature", signature),
            ("timestamp", timestamp),
            ("nonce", nonce.to_owned()),
        ]
    };
    for (offset, message_id) in [(-400, 3), (400, 4)] {
        let query = signed_at(offset);
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = push(&app, &query, &message(message_id)).await;
        assert_error(answer, 403, "PUSH_SIGNATURE_INVALID").await;
        let answer = verify(&app, query[0].1, query[1].1, nonce).await;
        assert_error(answer, 403, "PUSH_SIGNATURE_INVALID").await;
    }
    assert_eq!(answers_written(&app).await, 0);
    let query = signed_at(-60);
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = push(&app, &query, &message(5)).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answers_written(&app).await, 1);
}

on_both_backends!(
    questions_get_automatic_answers_in_plain_mode,
    questions_get_automatic_answers_in_safe_mode,
    a_retried_push_is_handled_once,
    a_reply_after_48_hours_is_refused_with_45015,
    a_person_answers_within_48_hours_in_plain_mode,
    a_person_answers_within_48_hours_in_safe_mode,
    a_staff_reply_after_48_hours_is_refused_in_plain_mode,
    a_staff_reply_after_48_hours_is_refused_in_safe_mode,
    the_inbox_is_for_support_only,
    old_conversations_are_deleted,
    stale_pushes_are_refused,
);

/// What residents write and staff answer never reaches the log; openids only masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_are_not_logged() {
    let store = SharedStore::fresh(Backend::Sqlite).await;
    let mut vars = store.vars();
    vars.push(("BANZHENG_WECHAT__PUSH_TOKEN".into(), TOKEN.into()));
    vars.push(("BANZHENG_WECHAT__PUSH_AES_KEY".into(), AES_KEY.into()));
    vars.push(("RUST_LOG".into(), "info".into()));
    vars.push(("BANZHENG_NOTIFY__WORKER".into(), "false".into()));
    let server = ServerProcess::start_capturing(&vars)
        .await
        .unwrap_or_else(|(code, text)| panic!("the server did not start ({code:?}): {text}"));
    let app = TestApp::served_at(server.address.clone(), store);
    let sim = app.sim();
    assert!(success(
        &sim.kf_message("o-secret-openid", "我住在东城区光明路88号", 1)
            .await
    ));
    let support = app.admin_token(Role::Support).await;
    let read = conversation_of(&app, &support, "o-se***").await;
    let id = read["id"].as_str().unwrap();
    assert_eq!(
        reply(&app, &support, id, "已记下您的地址光明路88号")
            .await
            .status(),
        201
    );
    assert_eq!(replies_to(&app, "o-secret-openid").await.len(), 2);
    let log = server.output();
    assert!(log.contains("客服"), "the log says what happened: {log}");
    for secret in ["o-secret-openid", "光明路88号"] {
        assert!(!log.contains(secret), "{secret} in the log: {log}");
    }
}
