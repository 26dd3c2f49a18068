//! Production start-up checks the configured templates against the WeChat account
//! (`wxaapi/newtmpl/gettemplate`): the real `server` binary, in production configuration,
//! against a simulator on its own port standing in for api.weixin.qq.com.

use std::time::Duration;

use serde_json::json;
use server::wechat::simulator::{spawn, RunningSimulator, APPID, SECRET};
use tests::process::ServerProcess;
use tests::wechat::SimControl;

const TEMPLATES: &str = r#"
[notify.templates.booking_confirmed]
template_id = "tmpl-booking"
page = "pages/appointment/detail?id={appointment_id}"
keywords = { thing1 = "office", thing2 = "service", time3 = "time", character_string4 = "code" }

[notify.templates.review_result]
template_id = "tmpl-review"
page = "pages/orders/detail?id={order_id}"
keywords = { thing1 = "document", phrase2 = "result" }
"#;

/// Template ids and their keywords, as the WeChat account has them.
type Account<'a> = &'a [(&'a str, &'a [&'a str])];

const BOOKING: &[&str] = &["thing1", "thing2", "time3", "character_string4"];

/// Production configuration against `api_base`, with the templates above.
fn production(dir: &tempfile::TempDir, api_base: &str) -> Vec<(String, String)> {
    let file = dir.path().join("banzheng.toml");
    std::fs::write(&file, TEMPLATES).unwrap();
    [
        ("BANZHENG_CONFIG", file.display().to_string()),
        ("BANZHENG_DATA_DIR", dir.path().display().to_string()),
        ("BANZHENG_WECHAT_APPID", APPID.into()),
        ("BANZHENG_WECHAT_SECRET", SECRET.into()),
        ("BANZHENG_WECHAT_API_BASE", api_base.into()),
        (
            "BANZHENG_JWT_SECRET",
            "a-production-secret-of-enough-length".into(),
        ),
        (
            "BANZHENG_BOOKING__ID_HASH_KEY",
            "a-production-id-hash-key-of-enough-length".into(),
        ),
        ("BANZHENG_NOTIFY__TEMPLATE_RECHECK_SECS", "1".into()),
        ("BANZHENG_WECHAT_TIMEOUT_MS", "1000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn wechat_with(templates: Account<'_>) -> (RunningSimulator, SimControl) {
    let running = spawn().unwrap();
    let sim = SimControl::of(&running);
    for (id, keywords) in templates {
        sim.register_template(id, keywords).await;
    }
    (running, sim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_templates_let_the_server_start() {
    let (running, sim) = wechat_with(&[
        ("tmpl-booking", BOOKING),
        ("tmpl-review", &["thing1", "phrase2"]),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_capturing(&production(&dir, &running.api_base()))
        .await
        .expect("starts");
    assert_eq!(sim.calls("wxaapi/newtmpl/gettemplate").await, 1);
    assert!(
        !server.output().contains("templates"),
        "{}",
        server.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_keyword_or_template_stops_the_start_naming_the_event() {
    let cases: [(Account, &[&str]); 2] = [
        (
            &[
                ("tmpl-booking", BOOKING),
                ("tmpl-review", &["thing1", "phrase3"]),
            ],
            &[
                "notify.templates.review_result",
                "no keyword `phrase2`",
                "needs `phrase3`",
            ],
        ),
        (
            &[("tmpl-review", &["thing1", "phrase2"])],
            &[
                "notify.templates.booking_confirmed",
                "`tmpl-booking` does not exist",
            ],
        ),
    ];
    for (templates, said) in cases {
        let (running, _) = wechat_with(templates).await;
        let dir = tempfile::tempdir().unwrap();
        let (code, output) = ServerProcess::start_capturing(&production(&dir, &running.api_base()))
            .await
            .err()
            .expect("the server refuses to start");
        assert_eq!(code, Some(1), "{output}");
        for words in said {
            assert!(output.contains(words), "{words:?} in {output}");
        }
    }
}

/// WeChat answering with a refusal no retry changes (here 40164, the server's address not on
/// the account's IP whitelist) stops the start too: notifications could never be sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lasting_refusal_stops_the_start() {
    let (running, sim) = wechat_with(&[("tmpl-booking", BOOKING)]).await;
    sim.fault(json!({"endpoint": "cgi-bin/stable_token", "errcode": 40164}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (code, output) = ServerProcess::start_capturing(&production(&dir, &running.api_base()))
        .await
        .err()
        .expect("the server refuses to start");
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("WeChat refused the template check") && output.contains("40164"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_wechat_lets_the_server_start_and_the_check_runs_again() {
    // Nothing listens on this port: WeChat cannot be reached.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_capturing(&production(&dir, &format!("http://{closed}")))
        .await
        .expect("starts without WeChat");
    assert!(
        server.output().contains("WeChat did not answer"),
        "{}",
        server.output()
    );

    // WeChat busy at start, then answering that a keyword is missing: the server is up, and
    // the background check says which event will fail.
    let (running, sim) = wechat_with(&[
        ("tmpl-booking", &["thing1", "thing2", "time3"]),
        ("tmpl-review", &["thing1", "phrase2"]),
    ])
    .await;
    sim.fault(json!({"endpoint": "wxaapi/newtmpl/gettemplate", "http_status": 503}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_capturing(&production(&dir, &running.api_base()))
        .await
        .expect("starts while WeChat is busy");
    let mut waited = 0;
    while !server.output().contains("notifications will fail") {
        assert!(waited < 100, "no background check: {}", server.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let output = server.output();
    assert!(
        output.contains("notify.templates.booking_confirmed: template `tmpl-booking` has no keyword `character_string4`"),
        "{output}"
    );
    assert!(sim.calls("wxaapi/newtmpl/gettemplate").await >= 2);
    let health = tests::client()
        .get(format!("{}/healthz", server.address))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
}
