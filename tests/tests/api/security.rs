//! The attacks of issue 15, made over HTTP against the real server the way a stranger would,
//! and what each achieves: forged forwarding headers do not move a rate-limit bucket,
//! development mode does not start on a public address nor answer through a proxy,
//! production does not start with weak secrets and mounts neither the simulator nor the
//! development pages.

use std::process::Command;

use serde_json::json;
use server::admin::{create_admin, Role};
use server::wechat::simulator::{self, RunningSimulator};
use tests::attack::{guess_admin_password, Tally};
use tests::process::ServerProcess;
use tests::{assert_error, on_both_backends, Backend, SharedStore, TestApp};

const PASSWORD: &str = "the-owners-real-password";
/// Failed staff logins allowed per username and client address.
const LIMIT_PER_ACCOUNT: usize = 10;

/// Everything production needs, against `wechat` standing in for api.weixin.qq.com.
fn production_vars(wechat: &RunningSimulator) -> Vec<(String, String)> {
    [
        ("BANZHENG_MODE", "production".to_owned()),
        ("BANZHENG_WECHAT_APPID", simulator::APPID.to_owned()),
        ("BANZHENG_WECHAT_SECRET", simulator::SECRET.to_owned()),
        ("BANZHENG_WECHAT_API_BASE", wechat.api_base()),
        (
            "BANZHENG_JWT_SECRET",
            "a-production-jwt-secret-of-enough-length".to_owned(),
        ),
        (
            "BANZHENG_BOOKING__ID_HASH_KEY",
            "a-production-id-hash-key-of-enough-length".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A production app on `backend`, with `extra` settings, and the WeChat it talks to.
async fn production_app(backend: Backend, extra: &[(&str, &str)]) -> (TestApp, RunningSimulator) {
    let wechat = simulator::spawn().unwrap();
    let mut vars = production_vars(&wechat);
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::spawn_on(SharedStore::fresh(backend).await, &vars).await;
    (app, wechat)
}

async fn with_admin(app: &TestApp, username: &str) {
    let store = app.shared.open().await;
    create_admin(store.as_ref(), username, Role::Reviewer, PASSWORD)
        .await
        .unwrap();
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

on_both_backends!(forged_forwarding_headers_do_not_move_the_bucket);

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
