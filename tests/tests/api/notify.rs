//! Service notifications against the simulator over HTTP: budget, retries, refusals, token
//! refresh without storms, scheduled reminders, and a kill between write and send.

use std::time::Duration;

use chrono::{DateTime, Days, FixedOffset, NaiveTime, Utc};
use serde_json::json;
use server::notify::store::OutboxState;
use server::notify::{AppointmentFacts, Event, Notification};
use tests::process::ServerProcess;
use tests::wechat::SimControl;
use tests::{assert_error, on_both_backends, Backend, SharedStore, TestApp};

const SEND: &str = "cgi-bin/message/subscribe/send";
const TOKEN: &str = "cgi-bin/stable_token";
const LONG_OFFICE: &str = "东莞市公安局南城分局户政业务办理大厅（南城街道鸿福路）";

/// An app whose sender runs only when the test asks (no background passes).
async fn app(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_on(SharedStore::fresh(backend).await, extra).await
}

fn in_days(days: u64) -> DateTime<FixedOffset> {
    let china = server::clock::china();
    let day = Utc::now()
        .with_timezone(&china)
        .date_naive()
        .checked_add_days(Days::new(days))
        .unwrap();
    day.and_time(NaiveTime::from_hms_opt(9, 30, 0).unwrap())
        .and_local_timezone(china)
        .unwrap()
}

/// A booking confirmation for `user_id`'s appointment three days ahead (also the store's outbox
/// tests' entry).
pub(crate) fn confirmation(user_id: &str, appointment_id: &str) -> Notification {
    let facts = AppointmentFacts {
        appointment_id,
        user_id,
        code: "BZ7F3K9Q",
        office: LONG_OFFICE,
        service: "居民身份证换领",
        starts_at: in_days(3),
    };
    Notification::booking_confirmed(&facts, Utc::now())
}

/// A logged-in user who accepted the confirmation template `grants` times.
async fn subscriber(app: &TestApp, openid: &str, grants: usize) -> (String, String) {
    let token = app.login(openid).await;
    let template = app.template_id(Event::BookingConfirmed).await;
    for _ in 0..grants {
        assert_eq!(app.subscribe(&token, &[&template]).await.status(), 200);
    }
    (app.user_id(&token).await, template)
}

async fn confirmation_arrives_once_with_valid_values(backend: Backend) {
    let app = app(backend, &[]).await;
    let (user_id, template) = subscriber(&app, "o-n1", 1).await;
    let notification = confirmation(&user_id, "appt-1");
    assert!(app.enqueue(&notification).await);
    assert!(
        !app.enqueue(&confirmation(&user_id, "appt-1")).await,
        "the same key is written once"
    );

    assert_eq!(app.run_notifier().await["sent"], 1);
    assert_eq!(app.run_notifier().await["claimed"], 0);
    let messages = app.sim().messages().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(message["touser"], "o-n1");
    assert_eq!(message["template_id"], template.as_str());
    assert_eq!(message["page"], "pages/appointment/detail?id=appt-1");
    assert_eq!(message["lang"], "zh_CN");
    assert_eq!(message["data"]["character_string4"]["value"], "BZ7F3K9Q");
    let office = message["data"]["thing1"]["value"].as_str().unwrap();
    assert_eq!(office.chars().count(), 20, "shortened to WeChat's limit");
    assert!(office.ends_with('…'));
    let time = message["data"]["time3"]["value"].as_str().unwrap();
    assert!(time.ends_with("09:30"), "{time}");
    assert_eq!(
        app.outbox_entry(&notification).await.state,
        OutboxState::Sent
    );
}

async fn without_a_subscription_nothing_is_sent(backend: Backend) {
    let app = app(backend, &[]).await;
    let (user_id, _) = subscriber(&app, "o-n2", 0).await;
    let notification = confirmation(&user_id, "appt-2");
    app.enqueue(&notification).await;
    assert_eq!(app.run_notifier().await["failed"], 1);
    let entry = app.outbox_entry(&notification).await;
    assert_eq!(entry.state, OutboxState::NoSubscription);
    assert_eq!(app.sim().calls(SEND).await, 0, "not attempted");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"notifications_total{event="booking_confirmed",outcome="no_subscription"} 1"#
        ),
        "{metrics}"
    );
    assert!(app.sim().messages().await.is_empty());
}

async fn subscriptions_are_checked(backend: Backend) {
    let app = app(backend, &[]).await;
    let token = app.login("o-n3").await;
    // The contract's 1–5 items (400); a template id that is not ours only the server knows (422).
    for (bad, status, code) in [
        (json!([]), 400, "INVALID_INPUT"),
        (json!(["not-ours"]), 422, "INVALID_VALUE"),
        (json!(["a", "b", "c", "d", "e", "f"]), 400, "INVALID_INPUT"),
    ] {
        let response = app
            .post_with_token("/api/v1/subscriptions", &token, &json!({ "accepted": bad }))
            .await;
        assert_error(response, status, code).await;
    }
    let response = app
        .post_json("/api/v1/subscriptions", &json!({"accepted": ["x"]}))
        .await;
    assert_error(response, 401, "UNAUTHORIZED").await;
    let template = app.template_id(Event::ReviewResult).await;
    let body = tests::json(app.subscribe(&token, &[&template, &template]).await).await;
    assert_eq!(
        body["subscriptions"][0]["remaining"], 1,
        "one tap is one send"
    );
}

async fn busy_wechat_is_retried_with_backoff_until_delivered(backend: Backend) {
    let app = app(backend, &[]).await;
    let (user_id, _) = subscriber(&app, "o-n4", 1).await;
    app.sim()
        .fault(json!({"endpoint": SEND, "errcode": -1, "count": 2}))
        .await;
    let notification = confirmation(&user_id, "appt-4");
    app.enqueue(&notification).await;

    assert_eq!(app.run_notifier().await["retried"], 1);
    assert_eq!(
        app.run_notifier().await["claimed"],
        0,
        "waits for its backoff"
    );
    app.advance_clock(30).await;
    assert_eq!(app.run_notifier().await["retried"], 1);
    app.advance_clock(30).await;
    assert_eq!(
        app.run_notifier().await["claimed"],
        0,
        "the backoff doubled"
    );
    app.advance_clock(30).await;
    assert_eq!(app.run_notifier().await["sent"], 1);
    assert_eq!(app.sim().calls(SEND).await, 3);
    assert_eq!(app.sim().messages().await.len(), 1);
    let entry = app.outbox_entry(&notification).await;
    assert_eq!((entry.state, entry.attempts), (OutboxState::Sent, 3));
}

async fn transient_failures_end_dead(backend: Backend) {
    let app = app(backend, &[("BANZHENG_NOTIFY__MAX_ATTEMPTS", "2")]).await;
    let (user_id, _) = subscriber(&app, "o-n5", 1).await;
    app.sim()
        .fault(json!({"endpoint": SEND, "http_status": 502, "count": 5}))
        .await;
    let notification = confirmation(&user_id, "appt-5");
    app.enqueue(&notification).await;
    app.run_notifier().await;
    app.advance_clock(30).await;
    assert_eq!(app.run_notifier().await["failed"], 1);
    let entry = app.outbox_entry(&notification).await;
    assert_eq!((entry.state, entry.attempts), (OutboxState::Dead, 2));
}

async fn refusal_43101_is_final_and_clears_the_budget(backend: Backend) {
    let app = app(backend, &[]).await;
    let (user_id, _) = subscriber(&app, "o-n6", 2).await;
    app.sim()
        .fault(json!({"endpoint": SEND, "errcode": 43101}))
        .await;
    let refused = confirmation(&user_id, "appt-6");
    app.enqueue(&refused).await;
    assert_eq!(app.run_notifier().await["failed"], 1);
    let entry = app.outbox_entry(&refused).await;
    assert_eq!(entry.state, OutboxState::Failed);
    assert!(entry.last_error.unwrap().contains("43101"));
    app.advance_clock(24 * 3600).await;
    assert_eq!(app.run_notifier().await["claimed"], 0, "never retried");
    assert_eq!(app.sim().calls(SEND).await, 1);

    let next = confirmation(&user_id, "appt-6b");
    app.enqueue(&next).await;
    app.run_notifier().await;
    assert_eq!(
        app.outbox_entry(&next).await.state,
        OutboxState::NoSubscription,
        "the user refused: the second grant is gone too"
    );
}

async fn an_invalidated_token_is_replaced_once(backend: Backend) {
    let app = app(backend, &[]).await;
    let (user_id, _) = subscriber(&app, "o-n7", 2).await;
    app.enqueue(&confirmation(&user_id, "appt-7a")).await;
    assert_eq!(app.run_notifier().await["sent"], 1);
    assert_eq!(app.sim().calls(TOKEN).await, 1);

    app.sim().invalidate_tokens().await;
    app.enqueue(&confirmation(&user_id, "appt-7b")).await;
    assert_eq!(app.run_notifier().await["sent"], 1);
    assert_eq!(app.sim().calls(TOKEN).await, 2, "one refresh");
    assert_eq!(
        app.sim().calls(SEND).await,
        3,
        "the rejected send and its retry"
    );
    assert_eq!(app.sim().messages().await.len(), 2);
}

async fn the_reminder_waits_for_the_evening_before(backend: Backend) {
    let app = app(backend, &[]).await;
    let token = app.login("o-n8").await;
    let template = app.template_id(Event::AppointmentReminder).await;
    app.subscribe(&token, &[&template]).await;
    let user_id = app.user_id(&token).await;
    let facts = AppointmentFacts {
        appointment_id: "appt-8",
        user_id: &user_id,
        code: "BZ8",
        office: "南城户政大厅",
        service: "居民身份证换领",
        starts_at: in_days(3),
    };
    let reminder = Notification::reminder(&facts, Utc::now()).expect("a reminder");
    let eve = in_days(2)
        .date_naive()
        .and_time(NaiveTime::from_hms_opt(18, 0, 0).unwrap());
    assert_eq!(
        reminder
            .not_before
            .with_timezone(&server::clock::china())
            .naive_local(),
        eve
    );
    app.enqueue(&reminder).await;

    assert_eq!(app.run_notifier().await["claimed"], 0);
    let until = (reminder.not_before - Utc::now()).num_seconds();
    app.advance_clock(until - 60).await;
    assert_eq!(app.run_notifier().await["claimed"], 0, "a minute early");
    assert!(app.sim().messages().await.is_empty());
    app.advance_clock(120).await;
    assert_eq!(app.run_notifier().await["sent"], 1);
    let messages = app.sim().messages().await;
    assert_eq!(messages[0]["template_id"], template.as_str());
}

/// WeChat rejects a token that a normal fetch hands back again: only then `force_refresh`,
/// and not twice within 30 s (WeChat would ignore it).
async fn force_refresh_only_for_a_token_that_comes_back(backend: Backend) {
    let app = app(backend, &[]).await;
    let (user_id, _) = subscriber(&app, "o-n16", 3).await;
    app.enqueue(&confirmation(&user_id, "appt-16a")).await;
    assert_eq!(app.run_notifier().await["sent"], 1);
    assert_eq!(app.sim().calls(TOKEN).await, 1);

    // WeChat says 40001 for a token its stable_token still returns.
    app.sim()
        .fault(json!({"endpoint": SEND, "errcode": 40001}))
        .await;
    app.enqueue(&confirmation(&user_id, "appt-16b")).await;
    assert_eq!(app.run_notifier().await["sent"], 1);
    assert_eq!(
        app.sim().calls(TOKEN).await,
        3,
        "a normal fetch (the same token) and one forced"
    );

    app.sim()
        .fault(json!({"endpoint": SEND, "errcode": 40001}))
        .await;
    let third = confirmation(&user_id, "appt-16c");
    app.enqueue(&third).await;
    assert_eq!(app.run_notifier().await["retried"], 1);
    assert_eq!(
        app.sim().calls(TOKEN).await,
        4,
        "no second force within 30 s"
    );
    app.advance_clock(31).await;
    assert_eq!(
        app.run_notifier().await["sent"],
        1,
        "the retry goes through"
    );
    assert_eq!(app.sim().messages().await.len(), 3);
}

/// 50 sends at once with an expired token: one token request.
async fn fifty_sends_with_an_expired_token_fetch_it_once(backend: Backend) {
    let app = app(
        backend,
        &[
            ("BANZHENG_NOTIFY__CONCURRENCY", "50"),
            ("BANZHENG_NOTIFY__BATCH_SIZE", "50"),
        ],
    )
    .await;
    let (user_id, _) = subscriber(&app, "o-n9", 51).await;
    app.enqueue(&confirmation(&user_id, "warm-up")).await;
    assert_eq!(app.run_notifier().await["sent"], 1);
    assert_eq!(app.sim().calls(TOKEN).await, 1);

    app.advance_clock(7200).await;
    for i in 0..50 {
        app.enqueue(&confirmation(&user_id, &format!("appt-9-{i}")))
            .await;
    }
    assert_eq!(app.run_notifier().await["sent"], 50);
    assert_eq!(
        app.sim().calls(TOKEN).await,
        2,
        "exactly one more token request"
    );
    assert_eq!(app.sim().messages().await.len(), 51);
}

on_both_backends!(
    confirmation_arrives_once_with_valid_values,
    without_a_subscription_nothing_is_sent,
    subscriptions_are_checked,
    busy_wechat_is_retried_with_backoff_until_delivered,
    transient_failures_end_dead,
    refusal_43101_is_final_and_clears_the_budget,
    an_invalidated_token_is_replaced_once,
    the_reminder_waits_for_the_evening_before,
    fifty_sends_with_an_expired_token_fetch_it_once,
    force_refresh_only_for_a_token_that_comes_back,
    killed_between_write_and_send_delivers_once,
    sigterm_lets_a_send_in_flight_finish,
    every_event_is_accepted_by_wechat
);

/// Two instances over one Redis, one WeChat: 50 sends split between them after the token
/// expired cause one token request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_redis_share_one_token_refresh() {
    let wechat = server::wechat::simulator::spawn().unwrap();
    let sim = SimControl::of(&wechat);
    let base = wechat.api_base();
    let store = SharedStore::fresh(Backend::Redis).await;
    let vars = [
        ("BANZHENG_WECHAT_API_BASE", base.as_str()),
        ("BANZHENG_NOTIFY__CONCURRENCY", "50"),
    ];
    let a = TestApp::spawn_on(store.clone(), &vars).await;
    let b = TestApp::spawn_on(store, &vars).await;
    let code = sim.mint_code("o-n10").await;
    let token = tests::json(a.login_with_code(&code).await).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let template = a.template_id(Event::BookingConfirmed).await;
    sim.register_template(
        &template,
        &["thing1", "thing2", "time3", "character_string4"],
    )
    .await;
    for _ in 0..51 {
        sim.accept("o-n10", &template).await;
        a.subscribe(&token, &[&template]).await;
    }
    let user_id = a.user_id(&token).await;
    a.enqueue(&confirmation(&user_id, "warm-up")).await;
    assert_eq!(a.run_notifier().await["sent"], 1);
    assert_eq!(sim.calls(TOKEN).await, 1);

    for clock in [SimControl::of(&wechat), a.sim(), b.sim()] {
        clock.advance_clock(7200).await;
    }
    for i in 0..50 {
        a.enqueue(&confirmation(&user_id, &format!("appt-10-{i}")))
            .await;
    }
    let (ra, rb) = tokio::join!(a.run_notifier(), b.run_notifier());
    let sent = ra["sent"].as_u64().unwrap() + rb["sent"].as_u64().unwrap();
    assert_eq!(sent, 50, "{ra} {rb}");
    assert_eq!(sim.calls(TOKEN).await, 2, "exactly one more token request");
    assert_eq!(sim.messages().await.len(), 51);
    wechat.stop().await;
}

/// The real binary against a simulator of its own, with a subscribed user.
struct BinarySetup {
    wechat: server::wechat::simulator::RunningSimulator,
    sim: SimControl,
    store: SharedStore,
    vars: Vec<(String, String)>,
    server: ServerProcess,
    user_id: String,
}

async fn binary_with_subscriber(backend: Backend, openid: &str) -> BinarySetup {
    let wechat = server::wechat::simulator::spawn().unwrap();
    let sim = SimControl::of(&wechat);
    let store = SharedStore::fresh(backend).await;
    let mut vars = store.vars();
    for (k, v) in [
        ("BANZHENG_WECHAT_API_BASE", wechat.api_base()),
        ("BANZHENG_NOTIFY__POLL_INTERVAL_MS", "50".into()),
        ("BANZHENG_NOTIFY__CLAIM_LEASE_SECS", "2".into()),
    ] {
        vars.push((k.into(), v));
    }
    let server = ServerProcess::start(&vars).await;
    let client = tests::client();
    let code = sim.mint_code(openid).await;
    let login = client
        .post(format!("{}/api/v1/auth/login", server.address))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    let token = tests::json(login).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let template = "dev-booking-confirmed";
    sim.register_template(
        template,
        &["thing1", "thing2", "time3", "character_string4"],
    )
    .await;
    sim.accept(openid, template).await;
    let granted = client
        .post(format!("{}/api/v1/subscriptions", server.address))
        .bearer_auth(&token)
        .json(&json!({ "accepted": [template] }))
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), 200);
    let me = client
        .get(format!("{}/api/v1/me", server.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let user_id = tests::json(me).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    BinarySetup {
        wechat,
        sim,
        store,
        vars,
        server,
        user_id,
    }
}

/// Waits until the sender has settled `notification` (any state but pending or sending).
async fn settled(store: &SharedStore, notification: &Notification) -> OutboxState {
    let opened = store.open().await;
    let mut state = OutboxState::Sending;
    for _ in 0..400 {
        state = opened
            .outbox_entry("notify", &notification.id)
            .await
            .unwrap()
            .unwrap()
            .state;
        if state != OutboxState::Sending && state != OutboxState::Pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    state
}

/// The real binary is killed (SIGKILL) after claiming a notification and before sending it;
/// restarted, it delivers the notification exactly once.
async fn killed_between_write_and_send_delivers_once(backend: Backend) {
    let setup = binary_with_subscriber(backend, "o-n11").await;
    // The token request hangs, so the worker holds the claim and has not sent yet.
    setup
        .sim
        .fault(json!({"endpoint": TOKEN, "delay_ms": 5000}))
        .await;
    let notification = confirmation(&setup.user_id, "appt-11");
    assert!(setup
        .store
        .open()
        .await
        .enqueue(&notification)
        .await
        .unwrap());
    while setup.sim.calls(TOKEN).await == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    setup.server.signal("KILL");
    assert_eq!(setup.server.wait().await, None, "killed");
    assert!(
        setup.sim.messages().await.is_empty(),
        "nothing was sent before the kill"
    );

    let server = ServerProcess::start(&setup.vars).await;
    assert_eq!(
        settled(&setup.store, &notification).await,
        OutboxState::Sent
    );
    assert_eq!(
        setup.sim.messages().await.len(),
        1,
        "delivered exactly once"
    );
    server.signal("TERM");
    assert_eq!(server.wait().await, Some(0));
    setup.wechat.stop().await;
}

/// SIGTERM while a send waits on WeChat: the send completes and is recorded before the
/// process exits 0, so no restart sends it again.
async fn sigterm_lets_a_send_in_flight_finish(backend: Backend) {
    let setup = binary_with_subscriber(backend, "o-n15").await;
    setup
        .sim
        .fault(json!({"endpoint": SEND, "delay_ms": 1500}))
        .await;
    let notification = confirmation(&setup.user_id, "appt-15");
    setup
        .store
        .open()
        .await
        .enqueue(&notification)
        .await
        .unwrap();
    while setup.sim.calls(SEND).await == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    setup.server.signal("TERM");
    assert_eq!(setup.server.wait().await, Some(0), "clean exit");
    let entry = setup
        .store
        .open()
        .await
        .outbox_entry("notify", &notification.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        entry.state,
        OutboxState::Sent,
        "recorded before the exit: {entry:?}"
    );
    assert_eq!(setup.sim.messages().await.len(), 1);
    setup.wechat.stop().await;
}

/// Every event, rendered through the development templates, is accepted by WeChat's own
/// value rules (the simulator answers 47003 otherwise).
async fn every_event_is_accepted_by_wechat(backend: Backend) {
    let app = app(backend, &[]).await;
    let token = app.login("o-n12").await;
    let mut templates = Vec::new();
    for event in Event::ALL {
        templates.push(app.template_id(event).await);
    }
    let ids: Vec<&str> = templates.iter().map(String::as_str).collect();
    app.subscribe(&token, &ids).await;
    app.subscribe(&token, &ids).await;
    app.subscribe(&token, &ids).await;
    let user_id = app.user_id(&token).await;
    let facts = AppointmentFacts {
        appointment_id: "appt-12",
        user_id: &user_id,
        code: "BZ12",
        office: LONG_OFFICE,
        service: "居民身份证换领",
        starts_at: in_days(3),
    };
    use server::notify::{Progress, ReviewOutcome};
    let now = Utc::now();
    let all = [
        Notification::booking_confirmed(&facts, now),
        Notification::cancelled(&facts, "本人取消", now),
        Notification::progress(&facts, Progress::Accepted, now),
        Notification::progress(
            &facts,
            Progress::Shipped {
                ems_no: "EA123456789CN",
            },
            now,
        ),
        Notification::progress(&facts, Progress::ReadyForPickup, now),
        Notification::review_result(
            &user_id,
            "order-1",
            "d1",
            "身份证照片回执",
            ReviewOutcome::Approved {
                receipt_no: "44190020250305000123",
            },
            now,
        ),
        Notification::review_result(
            &user_id,
            "order-1",
            "d2",
            "身份证照片回执",
            ReviewOutcome::Rejected {
                reason: "背景不是纯白色，请在白色墙壁前重新拍摄照片",
            },
            now,
        ),
    ];
    for notification in &all {
        assert!(app.enqueue(notification).await);
    }
    assert_eq!(app.run_notifier().await["sent"], all.len());
    let messages = app.sim().messages().await;
    assert_eq!(messages.len(), all.len());
    let shipped = messages
        .iter()
        .find(|m| m["data"]["phrase1"]["value"] == "已寄出")
        .expect("the shipping notice");
    assert_eq!(shipped["data"]["thing2"]["value"], "EMS EA123456789CN");
    let approved = messages
        .iter()
        .find(|m| m["data"]["phrase2"]["value"] == "审核通过")
        .expect("the approval");
    assert_eq!(
        approved["data"]["character_string3"]["value"],
        "44190020250305000123"
    );
    assert_eq!(approved["page"], "pages/orders/detail?id=order-1");

    let reminder = Notification::reminder(&facts, now).unwrap();
    app.enqueue(&reminder).await;
    app.advance_clock((reminder.not_before - now).num_seconds() + 1)
        .await;
    assert_eq!(app.run_notifier().await["sent"], 1, "the reminder too");
}

/// SQLite: the notification is part of the caller's transaction — rolled back with it, and a
/// reminder can be withdrawn in the same transaction as the cancellation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_enqueue_in_tx_commits_and_rolls_back_with_the_caller() {
    use server::notify::store::{cancel_in_tx, enqueue_in_tx};
    use server::store::{SqliteStore, StoreError};
    let app = app(Backend::Sqlite, &[]).await;
    let (user_id, _) = subscriber(&app, "o-n13", 1).await;
    let SharedStore::Sqlite(dir) = &app.shared else {
        unreachable!()
    };
    let store = SqliteStore::open(&dir.path().join("banzheng.db")).unwrap();

    let rolled_back = confirmation(&user_id, "appt-13a");
    let n = rolled_back.clone();
    let result = store
        .write(move |tx| {
            assert!(enqueue_in_tx(tx, &n)?);
            Err::<(), _>(StoreError::Backend("the booking failed after all".into()))
        })
        .await;
    assert!(result.is_err());

    let facts = AppointmentFacts {
        appointment_id: "appt-13b",
        user_id: &user_id,
        code: "BZ13",
        office: "南城户政大厅",
        service: "居民身份证换领",
        starts_at: in_days(3),
    };
    let confirmed = Notification::booking_confirmed(&facts, Utc::now());
    let reminder = Notification::reminder(&facts, Utc::now()).unwrap();
    let (c, r) = (confirmed.clone(), reminder.clone());
    store
        .write(move |tx| {
            enqueue_in_tx(tx, &c)?;
            enqueue_in_tx(tx, &r)
        })
        .await
        .unwrap();
    let key = server::notify::reminder_key("appt-13b");
    assert!(store.write(move |tx| cancel_in_tx(tx, &key)).await.unwrap());

    assert_eq!(app.run_notifier().await["sent"], 1);
    let messages = app.sim().messages().await;
    assert_eq!(messages[0]["data"]["character_string4"]["value"], "BZ13");
    let opened = app.shared.open().await;
    assert!(opened
        .outbox_entry("notify", &rolled_back.id)
        .await
        .unwrap()
        .is_none());
    let entry = opened
        .outbox_entry("notify", &reminder.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.state, OutboxState::Cancelled);
    app.advance_clock(4 * 24 * 3600).await;
    assert_eq!(
        app.run_notifier().await["claimed"],
        0,
        "the cancelled reminder stays unsent"
    );
}

/// Redis: a capability's plan (here under the `booking` tag) writes its state and the
/// notification in one run of the plan script; the sender finds it under that tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_plan_enqueues_with_another_change() {
    use server::notify::store::{Notices, PLAN};
    use server::store::plan::{Ran, RedisPlan};
    use server::store::{RedisAt, RedisStore};
    let app = app(Backend::Redis, &[]).await;
    let (user_id, _) = subscriber(&app, "o-n14", 1).await;
    let SharedStore::Redis { url, prefix } = &app.shared else {
        unreachable!()
    };
    let store = RedisStore::connect(RedisAt::Node(url), prefix)
        .await
        .unwrap();
    let notification = confirmation(&user_id, "appt-14");
    let mut plan = RedisPlan::new();
    let appointment = store.key("booking", "appt:appt-14");
    plan.set(appointment.clone(), "booked");
    Notices {
        send: vec![notification.clone()],
        withdraw: vec!["reminder:none".into()],
    }
    .plan(&mut plan, &store, "booking");
    assert_eq!(
        plan.run(&store, &PLAN).await.unwrap(),
        Ran::Done(String::new())
    );
    let state: String = ::redis::cmd("GET")
        .arg(&appointment)
        .query_async(&mut store.conn())
        .await
        .unwrap();
    assert_eq!(state, "booked");

    assert_eq!(app.run_notifier().await["sent"], 1);
    assert_eq!(app.sim().messages().await.len(), 1);
    let opened = app.shared.open().await;
    let entry = opened
        .outbox_entry("booking", &notification.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.state, OutboxState::Sent);
}
