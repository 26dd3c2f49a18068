//! The attacks of issue 15, made over HTTP against the real server the way a stranger would,
//! and what each achieves: parallel password guessing verifies at most the limit (counted by
//! the server's own `banzheng_password_verifications_total`), forged forwarding headers do
//! not move a rate-limit bucket, nobody can lock an account's owner out, development mode
//! does not start on a public address nor answer through a proxy, production does not start
//! with weak secrets and mounts neither the simulator nor the development pages.

use std::process::Command;

use serde_json::json;
use server::admin::{create_admin, Role};
use server::wechat::simulator;
use tests::attack::{counter, guess_admin_password, Tally};
use tests::process::ServerProcess;
use tests::production::{production_app, production_vars};
use tests::{assert_error, on_both_backends, Backend, SharedStore, TestApp};

const VERIFICATIONS: &str = "banzheng_password_verifications_total";
const PASSWORD: &str = "the-owners-real-password";
/// The default `BANZHENG_ADMIN_LOGIN__LIMIT_PER_ACCOUNT` and `__LIMIT_PER_ADDRESS`.
const LIMIT_PER_ACCOUNT: usize = 10;
const LIMIT_PER_ADDRESS: usize = 50;

async fn with_admin(app: &TestApp, username: &str) {
    let store = app.shared.open().await;
    create_admin(store.as_ref(), username, Role::Reviewer, PASSWORD)
        .await
        .unwrap();
}

async fn verifications(app: &TestApp) -> usize {
    counter(app, VERIFICATIONS)
        .await
        .expect("the metric is exported") as usize
}

/// 300 wrong passwords for one account from one address, 64 at a time: each attempt is
/// counted before its password is hashed, so at most the limit are checked, and every other
/// one is a 429 (never a 401 that looks like a checked password). Before the fix: 68 checked.
async fn parallel_guessing_verifies_at_most_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    with_admin(&app, "reviewer-7").await;
    let tally = guess_admin_password(&app, "reviewer-7", 300, 64, |_| vec![]).await;
    let verified = verifications(&app).await;
    println!("{backend:?}: 300 guesses, 64 at a time: {tally:?}, {verified} verified");
    assert_eq!(tally.of(401), verified, "{tally:?}");
    assert!(
        verified <= LIMIT_PER_ACCOUNT,
        "{verified} verified: {tally:?}"
    );
    // Exactly the limit passes the count; of those, any that found no free hash are 503s.
    assert_eq!(tally.of(429), 300 - LIMIT_PER_ACCOUNT, "{tally:?}");
    assert_eq!(
        tally.of(401) + tally.of(503),
        LIMIT_PER_ACCOUNT,
        "{tally:?}"
    );
    // Even the right password is refused unchecked until the window ends.
    let refused = app.admin_login("reviewer-7", PASSWORD).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "RATE_LIMITED").await;
    assert_eq!(verifications(&app).await, verified);
}

/// 300 guesses at 300 usernames from one address, all at once: the address's own limit
/// holds (a guess beyond the hashes running at once may be a 503, unchecked too).
async fn spraying_usernames_verifies_at_most_the_address_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let statuses = futures_util::future::join_all((0..300).map(|i| {
        let app = &app;
        async move {
            app.admin_login(&format!("staff-{i:03}"), "wrong-guess")
                .await
                .status()
                .as_u16()
        }
    }))
    .await;
    let tally = Tally::of_statuses(statuses);
    let verified = verifications(&app).await;
    println!("{backend:?}: 300 usernames from one address: {tally:?}, {verified} verified");
    assert!(verified <= LIMIT_PER_ADDRESS, "{verified} verified");
    assert_eq!(tally.of(401), verified, "{tally:?}");
    assert_eq!(tally.of(429), 300 - LIMIT_PER_ADDRESS, "{tally:?}");
    assert_eq!(
        tally.of(401) + tally.of(429) + tally.of(503),
        300,
        "{tally:?}"
    );
}

/// Production behind a proxy at 127.0.0.1: strangers at other addresses guess the owner's
/// password until they are refused and the username is slowed down; the owner, at their own
/// address, still logs in.
async fn strangers_cannot_lock_the_owner_out(backend: Backend) {
    let (app, wechat) = production_app(
        backend,
        &[
            ("BANZHENG_TRUSTED_PROXIES", "127.0.0.1/32, ::1"),
            ("BANZHENG_ADMIN_LOGIN__SLOWDOWN_AFTER", "5"),
            ("BANZHENG_ADMIN_LOGIN__SLOWDOWN_MS", "50"),
        ],
    )
    .await;
    with_admin(&app, "reviewer-8").await;
    for stranger in ["198.51.100.1", "198.51.100.2"] {
        let tally = guess_admin_password(&app, "reviewer-8", 40, 8, |_| {
            vec![("x-forwarded-for", stranger.to_owned())]
        })
        .await;
        assert_eq!(
            tally.of(429),
            40 - LIMIT_PER_ACCOUNT,
            "{stranger}: {tally:?}"
        );
    }
    let owner = app
        .client
        .post(app.url("/api/v1/admin/login"))
        .header("x-forwarded-for", "203.0.113.5")
        .json(&json!({"username": "reviewer-8", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(owner.status(), 200, "the owner logs in");
    wechat.stop().await;
}

/// Forwarding headers a client writes itself: ignored from an untrusted peer, and behind a
/// trusted proxy only the hop the proxy appended counts. Neither admin nor user login lets a
/// fresh forged address per request escape the limit.
async fn forged_forwarding_headers_do_not_move_the_bucket(backend: Backend) {
    for proxies in ["", "127.0.0.1"] {
        let (app, wechat) = production_app(
            backend,
            &[
                ("BANZHENG_TRUSTED_PROXIES", proxies),
                ("BANZHENG_LOGIN__RATE_LIMIT", "3"),
            ],
        )
        .await;
        with_admin(&app, "reviewer-9").await;
        // Behind the proxy the real client is the hop it appended; the rest is forged.
        let forged = |i: usize| {
            vec![
                (
                    "x-forwarded-for",
                    format!("10.{}.{}.1, 203.0.113.9", i / 250, i % 250),
                ),
                ("forwarded", format!("for=192.0.2.{}", i % 250)),
            ]
        };
        let tally = guess_admin_password(&app, "reviewer-9", 30, 1, forged).await;
        assert_eq!(
            tally.of(401),
            LIMIT_PER_ACCOUNT,
            "proxies {proxies:?}: {tally:?}"
        );
        assert_eq!(
            tally.of(429),
            30 - LIMIT_PER_ACCOUNT,
            "proxies {proxies:?}: {tally:?}"
        );

        let mut statuses = Vec::new();
        for i in 0..6 {
            let mut request = app
                .client
                .post(app.url("/api/v1/auth/login"))
                .json(&json!({"code": format!("forged-code-{i}")}));
            for (name, value) in forged(i) {
                request = request.header(name, value);
            }
            statuses.push(request.send().await.unwrap().status().as_u16());
        }
        let user_logins = Tally::of_statuses(statuses);
        assert_eq!(
            user_logins.of(429),
            3,
            "proxies {proxies:?}: {user_logins:?}"
        );
        wechat.stop().await;
    }
}

/// Usernames are capped before anything is counted or hashed; with one hash at a time and no
/// wait, parallel logins beyond it get 503 with `Retry-After` instead of queueing.
async fn usernames_and_hashes_are_bounded(backend: Backend) {
    let app = TestApp::spawn_on(
        SharedStore::fresh(backend).await,
        &[
            ("BANZHENG_ADMIN_LOGIN__MAX_CONCURRENT_HASHES", "1"),
            ("BANZHENG_ADMIN_LOGIN__HASH_WAIT_MS", "0"),
            ("BANZHENG_ADMIN_LOGIN__LIMIT_PER_ADDRESS", "1000"),
        ],
    )
    .await;
    let long = "x".repeat(65);
    let body = assert_error(app.admin_login(&long, "guess").await, 400, "INVALID_INPUT").await;
    assert_eq!(body["field"], "username");
    assert_eq!(verifications(&app).await, 0, "refused before hashing");

    let responses = futures_util::future::join_all((0..64).map(|i| {
        let app = &app;
        async move {
            app.admin_login(&format!("staff-{i:02}"), "wrong-guess")
                .await
        }
    }))
    .await;
    let mut statuses = Vec::new();
    for response in responses {
        statuses.push(response.status().as_u16());
        if response.status() == 503 {
            assert_eq!(response.headers()["retry-after"], "2");
            assert_error(response, 503, "SERVER_BUSY").await;
        }
    }
    let tally = Tally::of_statuses(statuses);
    assert_eq!(tally.of(401), verifications(&app).await, "{tally:?}");
    assert_eq!(tally.of(401) + tally.of(503), 64, "{tally:?}");
    assert!(tally.of(503) > 0, "one hash at a time: {tally:?}");
}

/// WeChat's session key (it decrypts the user's data) is not in the store after a login: no
/// such column in SQLite, no such field of the user in Redis.
async fn the_session_key_is_not_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.login("o-keyless").await;
    let me = tests::json(app.get_with_token("/api/v1/me", &token).await).await;
    let id = me["user"]["id"].as_str().expect("user id").to_owned();
    let fields: Vec<String> = match &app.shared {
        SharedStore::Sqlite(dir) => {
            let db = rusqlite::Connection::open(dir.path().join("banzheng.db")).unwrap();
            let mut columns = db
                .prepare("SELECT name FROM pragma_table_info('users')")
                .unwrap();
            let names = columns.query_map([], |row| row.get(0)).unwrap();
            names.collect::<Result<_, _>>().unwrap()
        }
        SharedStore::RedisCluster { .. } => unreachable!("on_both_backends: SQLite and one Redis"),
        SharedStore::Redis { url, prefix } => {
            let client = ::redis::Client::open(url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            ::redis::cmd("HKEYS")
                .arg(format!("{prefix}:{{user:{id}}}:h"))
                .query_async(&mut conn)
                .await
                .unwrap()
        }
    };
    assert!(fields.iter().any(|f| f == "openid"), "{fields:?}");
    assert!(!fields.iter().any(|f| f == "session_key"), "{fields:?}");
}

on_both_backends!(
    parallel_guessing_verifies_at_most_the_limit,
    spraying_usernames_verifies_at_most_the_address_limit,
    strangers_cannot_lock_the_owner_out,
    forged_forwarding_headers_do_not_move_the_bucket,
    usernames_and_hashes_are_bounded,
    the_session_key_is_not_stored,
);

/// The `server` binary with only `vars` (and a fresh data directory): its exit code and what
/// it wrote, when it stops by itself at start-up.
fn refused_start(vars: &[(String, String)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(tests::server_binary())
        .env_clear()
        .env("BANZHENG_DATA_DIR", dir.path())
        .envs(vars.iter().cloned())
        .output()
        .expect("the server binary runs");
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_on_a_public_address_does_not_start() {
    for bind in ["0.0.0.0:0", "[::]:0"] {
        let (code, text) = refused_start(&[("BANZHENG_BIND".into(), bind.into())]);
        assert_eq!(code, Some(2), "{bind}: {text}");
        assert!(
            text.contains("BANZHENG_BIND") && text.contains("BANZHENG_MODE"),
            "{bind}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_secrets_do_not_start_production() {
    let wechat = simulator::spawn().unwrap();
    let good = production_vars(&wechat);
    for key in ["BANZHENG_JWT_SECRET", "BANZHENG_BOOKING__ID_HASH_KEY"] {
        let repeated = "a".repeat(48);
        for weak in ["", "too-short-to-resist-guessing", repeated.as_str()] {
            let mut vars: Vec<_> = good.iter().filter(|(k, _)| k != key).cloned().collect();
            vars.push((key.into(), weak.into()));
            let (code, text) = refused_start(&vars);
            assert_eq!(code, Some(2), "{key}={weak:?}: {text}");
            assert!(text.contains(key), "{key}={weak:?}: {text}");
        }
        let vars: Vec<_> = good.iter().filter(|(k, _)| k != key).cloned().collect();
        let (code, text) = refused_start(&vars);
        assert_eq!(code, Some(2), "without {key}: {text}");
        assert!(text.contains(key), "without {key}: {text}");
    }
    // The same settings with strong secrets: the server starts.
    let store = SharedStore::fresh(Backend::Sqlite).await;
    let mut vars = store.vars();
    vars.extend(good);
    let server = ServerProcess::start_capturing(&vars)
        .await
        .unwrap_or_else(|(code, text)| panic!("production did not start ({code:?}): {text}"));
    server.signal("TERM");
    assert_eq!(server.wait().await, Some(0));
    wechat.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_refuses_forwarded_requests() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
    ] {
        let refused = app
            .client
            .get(app.url("/healthz"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_error(refused, 403, "PROXIED_IN_DEVELOPMENT").await;
    }
}

/// Production mounts nothing of the simulator nor the development pages, and answers through
/// a proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_mounts_no_simulator_nor_development_pages() {
    let (app, wechat) = production_app(Backend::Sqlite, &[]).await;
    for path in [
        "/",
        "/admin/",
        "/app.js",
        "/pkg/photo_wasm.js",
        "/__sim/messages",
    ] {
        assert_error(app.get(path).await, 404, "NOT_FOUND").await;
    }
    for path in ["/__sim/codes", "/__sim/clock", "/__sim/notify/run"] {
        let response = app.post_json(path, &json!({"openid": "o-x"})).await;
        assert_error(response, 404, "NOT_FOUND").await;
    }
    let proxied = app
        .client
        .get(app.url("/healthz"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    wechat.stop().await;
}

/// Malformed input is refused naming the field where serde knows it, and neither the answer
/// nor the server's log repeats the values it carried (serde's messages quote them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_neither_echoed_nor_logged() {
    const ID: &str = "441900199003071234";
    let store = SharedStore::fresh(Backend::Sqlite).await;
    let server = ServerProcess::start_capturing(&store.vars())
        .await
        .unwrap_or_else(|(code, text)| panic!("the server did not start ({code:?}): {text}"));
    let client = tests::client();
    let url = |path: &str| format!("{}{path}", server.address);
    let login_body = format!(r#"{{"code": {ID}}}"#);
    let admin_body = format!(r#"{{"username": "staff", "password": "x", "role": {ID}}}"#);
    let answers = [
        client
            .post(url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(login_body),
        client
            .post(url("/api/v1/admin/login"))
            .header("content-type", "application/json")
            .body(admin_body),
        client.get(url(&format!(
            "/api/v1/offices/humen/slots?service=expiry_renewal&service={ID}"
        ))),
    ];
    let mut fields = Vec::new();
    for request in answers {
        let body = assert_error(request.send().await.unwrap(), 400, "INVALID_INPUT").await;
        assert!(!body.to_string().contains(ID), "{body}");
        fields.push(body["field"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(fields, ["body", "role", "service"]);
    let log = server.output();
    assert!(!log.contains(ID), "{log}");
}
