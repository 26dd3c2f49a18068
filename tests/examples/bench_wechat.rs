//! Figures for login and notifications against the simulator, on SQLite and on Redis:
//! login latency (sequential) and throughput (concurrent), outbox write cost, and sending
//! throughput of the notification sender. Prints figures; asserts nothing about speed.
//!
//! `cargo run --release -p tests --example bench_wechat` (a redis-server on 6379, see
//! `scripts/lib.sh ensure_redis`).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use server::notify::{AppointmentFacts, Event, Notification};
use tests::{Backend, SharedStore, TestApp};

const LOGINS: usize = 400;
const CONCURRENT: usize = 32;
const NOTIFICATIONS: usize = 1000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn bench(backend: Backend) {
    let app = TestApp::spawn_on(
        SharedStore::fresh(backend).await,
        &[
            ("BANZHENG_LOGIN__RATE_LIMIT", "1000000"),
            ("BANZHENG_NOTIFY__WORKER", "false"),
        ],
    )
    .await;
    let mut latencies = Vec::with_capacity(LOGINS);
    for i in 0..LOGINS {
        let code = app.sim().mint_code(&format!("o-bench-{i}")).await;
        let started = Instant::now();
        let response = app.login_with_code(&code).await;
        latencies.push(started.elapsed());
        assert_eq!(response.status(), 200);
    }
    latencies.sort();
    println!(
        "{backend:?}: login (code → jscode2session → upsert → JWT), {LOGINS} sequential: p50 {:?}, p99 {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );

    let mut codes = Vec::with_capacity(LOGINS);
    for i in 0..LOGINS {
        codes.push(app.sim().mint_code(&format!("o-bench-c{i}")).await);
    }
    let started = Instant::now();
    futures_util::stream::iter(codes)
        .map(|code| {
            let app = &app;
            async move { assert_eq!(app.login_with_code(&code).await.status(), 200) }
        })
        .buffer_unordered(CONCURRENT)
        .collect::<Vec<_>>()
        .await;
    let elapsed = started.elapsed();
    println!(
        "{backend:?}: {LOGINS} logins, {CONCURRENT} at a time: {:.0} logins/s",
        LOGINS as f64 / elapsed.as_secs_f64()
    );

    let token = app.login("o-bench-n").await;
    let user_id = app.user_id(&token).await;
    let template = app.template_id(Event::BookingConfirmed).await;
    let store = app.shared.open().await;
    let grants: Vec<String> = std::iter::repeat_n(template.clone(), NOTIFICATIONS).collect();
    for chunk in grants.chunks(100) {
        store.grant_subscriptions(&user_id, chunk).await.unwrap();
        for _ in chunk {
            app.sim().accept("o-bench-n", &template).await;
        }
    }
    let starts_at =
        chrono::Utc::now().with_timezone(&server::clock::china()) + chrono::Days::new(3);
    let started = Instant::now();
    for i in 0..NOTIFICATIONS {
        let id = format!("bench-{i}");
        let facts = AppointmentFacts {
            appointment_id: &id,
            user_id: &user_id,
            code: "BZBENCH",
            office: "南城户政大厅",
            service: "居民身份证换领",
            starts_at,
        };
        store
            .enqueue(&Notification::booking_confirmed(&facts, chrono::Utc::now()))
            .await
            .unwrap();
    }
    println!(
        "{backend:?}: outbox write, {NOTIFICATIONS} sequential: {:?} each",
        started.elapsed() / NOTIFICATIONS as u32
    );
    let started = Instant::now();
    let mut sent = 0;
    while sent < NOTIFICATIONS {
        sent += app.run_notifier().await["sent"].as_u64().unwrap() as usize;
    }
    let elapsed = started.elapsed();
    println!(
        "{backend:?}: sender (claim, render, grant, send over HTTP, finish; 16 at a time): {NOTIFICATIONS} in {elapsed:?} = {:.0}/s; token requests: {}",
        NOTIFICATIONS as f64 / elapsed.as_secs_f64(),
        app.sim().calls("cgi-bin/stable_token").await
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    bench(Backend::Sqlite).await;
    bench(Backend::Redis).await;
}
