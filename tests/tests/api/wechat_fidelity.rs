//! The simulator says what WeChat says, one test per way it used to differ: a 16-byte
//! session key, replaced `cgi-bin/token` tokens dying after 5 minutes, WeChat's keyword
//! rules (shared with `notify::keywords`) and 47003 for missing keywords, 41030 for pages
//! not in the released app, 41008/41004 for a missing code or secret, HTTP 200 with an
//! errcode for unknown paths and methods, and faults for one user only.

use base64::Engine;
use serde_json::{json, Value};
use server::notify::keywords::{check, fit, KeywordKind};
use server::wechat::simulator::{spawn, RunningSimulator, APPID, SECRET};
use tests::wechat::{SimControl, WeChatApi, KEYWORD_SAMPLES};
use tests::{assert_error, on_both_backends, Backend, TestApp};

struct Wechat {
    running: RunningSimulator,
}

impl Wechat {
    fn start() -> Wechat {
        Wechat {
            running: spawn().unwrap(),
        }
    }

    fn sim(&self) -> SimControl {
        SimControl::of(&self.running)
    }

    fn api(&self) -> WeChatApi {
        self.sim().api()
    }

    /// A user who logged in once (WeChat knows them), granted `grants` sends of `template`.
    async fn user(&self, openid: &str, template: &str, grants: usize) {
        let code = self.sim().mint_code(openid).await;
        assert!(self.api().code_to_session(&code).await["openid"] == openid);
        for _ in 0..grants {
            self.sim().accept(openid, template).await;
        }
    }
}

fn message(openid: &str, template: &str, data: Value) -> Value {
    json!({"touser": openid, "template_id": template, "data": data})
}

#[tokio::test]
async fn session_key_is_a_16_byte_aes_key() {
    let wechat = Wechat::start();
    let code = wechat.sim().mint_code("o-key").await;
    let answer = wechat.api().code_to_session(&code).await;
    let key = base64::engine::general_purpose::STANDARD
        .decode(answer["session_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(key.len(), 16, "AES-128");
    // Each login has its own.
    let code = wechat.sim().mint_code("o-key").await;
    assert_ne!(
        wechat.api().code_to_session(&code).await["session_key"],
        answer["session_key"]
    );
}

#[tokio::test]
async fn a_replaced_classic_token_dies_five_minutes_after_the_next_is_issued() {
    let wechat = Wechat::start();
    wechat.sim().register_template("t1", &["thing1"]).await;
    wechat.user("o-tok", "t1", 3).await;
    let send = |token: String| {
        let api = wechat.api();
        async move {
            api.send(
                &token,
                &message("o-tok", "t1", json!({"thing1": {"value": "x"}})),
            )
            .await
            .0
        }
    };
    let old = wechat.api().classic_token().await;
    let new = wechat.api().classic_token().await;
    assert_ne!(old, new);
    wechat.sim().advance_clock(299).await;
    assert_eq!(send(old.clone()).await, 0, "within the 5 minutes");
    wechat.sim().advance_clock(2).await;
    assert_eq!(
        send(old).await,
        42001,
        "301 s after the next one was issued"
    );
    assert_eq!(send(new).await, 0);
}

#[tokio::test]
async fn keyword_values_follow_one_table_in_the_simulator_and_in_fit() {
    let wechat = Wechat::start();
    let token = wechat.api().classic_token().await;
    for (i, (keyword, value, accepted)) in KEYWORD_SAMPLES.iter().enumerate() {
        let template = format!("t{i}");
        wechat.sim().register_template(&template, &[keyword]).await;
        wechat.user("o-kw", &template, 1).await;
        let data = json!({ *keyword: {"value": value} });
        let (errcode, errmsg) = wechat
            .api()
            .send(&token, &message("o-kw", &template, data))
            .await;
        assert_eq!(
            errcode == 0,
            *accepted,
            "simulator, {keyword} = {value:?}: {errmsg}"
        );
        if !accepted {
            assert_eq!(errcode, 47003);
            assert!(
                errmsg.contains(&format!("data.{keyword}.value invalid")),
                "{errmsg}"
            );
        }
        let kind = KeywordKind::of(keyword).unwrap();
        assert_eq!(
            check(kind, value).is_ok(),
            *accepted,
            "check, {keyword} = {value:?}"
        );
        match fit(kind, value) {
            Ok(fitted) if *accepted => assert_eq!(&fitted, value),
            // Only free text is shortened, and then to a value WeChat takes.
            Ok(fitted) => assert!(
                kind == KeywordKind::Thing && check(kind, &fitted).is_ok(),
                "fit let {keyword} = {value:?} through as {fitted:?}"
            ),
            Err(why) => assert!(!accepted, "fit refused {keyword} = {value:?}: {why}"),
        }
    }
}

#[tokio::test]
async fn missing_keywords_are_47003_naming_the_first() {
    let wechat = Wechat::start();
    let keywords = ["thing1", "time2", "character_string3", "thing4", "phrase5"];
    wechat.sim().register_template("t5", &keywords).await;
    wechat.user("o-miss", "t5", 3).await;
    let token = wechat.api().classic_token().await;
    for data in [json!({}), json!({"time2": {"value": "15:01"}})] {
        let (errcode, errmsg) = wechat
            .api()
            .send(&token, &message("o-miss", "t5", data))
            .await;
        assert_eq!(errcode, 47003);
        assert!(
            errmsg.starts_with("argument invalid! data.thing1.value is empty"),
            "{errmsg}"
        );
    }
    let (errcode, errmsg) = wechat
        .api()
        .send(
            &token,
            &message("o-miss", "t5", json!({"thing1": {"value": ""}})),
        )
        .await;
    assert_eq!(
        (errcode, errmsg.contains("data.thing1.value is empty")),
        (47003, true)
    );
    let all: serde_json::Map<String, Value> = [
        ("thing1", "南城户政大厅"),
        ("time2", "15:01"),
        ("character_string3", "BZ1"),
        ("thing4", "请带身份证"),
        ("phrase5", "已受理"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), json!({ "value": v })))
    .collect();
    let (errcode, _) = wechat
        .api()
        .send(&token, &message("o-miss", "t5", Value::Object(all)))
        .await;
    assert_eq!(errcode, 0, "every keyword given");
}

#[tokio::test]
async fn a_page_not_in_the_released_app_is_41030() {
    let wechat = Wechat::start();
    wechat.sim().register_template("tp", &["thing1"]).await;
    wechat.user("o-page", "tp", 5).await;
    let token = wechat.api().classic_token().await;
    let send = |page: &'static str| {
        let (api, token) = (wechat.api(), token.clone());
        async move {
            let mut m = message("o-page", "tp", json!({"thing1": {"value": "x"}}));
            m["page"] = json!(page);
            api.send(&token, &m).await.0
        }
    };
    assert_eq!(send("pages/appointment/detail?id=a1").await, 0);
    assert_eq!(
        send("/pages/orders/detail?id=o1").await,
        0,
        "a leading / is fine"
    );
    assert_eq!(send("pages/unreleased/new?id=1").await, 41030);
    wechat.sim().release_pages(&["pages/unreleased/new"]).await;
    assert_eq!(send("pages/unreleased/new?id=1").await, 0, "released now");
    assert_eq!(
        send("pages/appointment/detail?id=a1").await,
        41030,
        "no longer released"
    );
}

#[tokio::test]
async fn a_missing_code_is_41008_and_a_missing_secret_41004() {
    let wechat = Wechat::start();
    let api = wechat.api();
    let errcode = |body: Value| body["errcode"].as_i64();
    let login = |query: Vec<(&'static str, &'static str)>| {
        let api = wechat.api();
        async move { api.get("sns/jscode2session", &query).await }
    };
    let (status, body) = login(vec![
        ("appid", APPID),
        ("secret", SECRET),
        ("grant_type", "authorization_code"),
    ])
    .await;
    assert_eq!((status, errcode(body)), (200, Some(41008)));
    let (_, body) = login(vec![
        ("appid", APPID),
        ("js_code", "x"),
        ("grant_type", "authorization_code"),
    ])
    .await;
    assert_eq!(errcode(body), Some(41004));
    let (_, body) = api
        .get(
            "cgi-bin/token",
            &[("grant_type", "client_credential"), ("appid", APPID)],
        )
        .await;
    assert_eq!(errcode(body), Some(41004));
    let (_, body) = api
        .get(
            "cgi-bin/token",
            &[("grant_type", "client_credential"), ("secret", SECRET)],
        )
        .await;
    assert_eq!(errcode(body), Some(41002));
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_answer_200_with_an_errcode() {
    let wechat = Wechat::start();
    let api = wechat.api();
    for (status, body) in [
        api.get("cgi-bin/nonexistent", &[]).await,
        api.post("wxa/nonexistent", &[], &json!({})).await,
    ] {
        assert_eq!(
            (status, body["errcode"].as_i64()),
            (200, Some(40066)),
            "{body}"
        );
    }
    for (status, body) in [
        api.get("cgi-bin/stable_token", &[]).await,
        api.get("cgi-bin/message/subscribe/send", &[]).await,
        api.get("wxa/business/getuserphonenumber", &[]).await,
    ] {
        assert_eq!(
            (status, body["errcode"].as_i64()),
            (200, Some(43002)),
            "{body}"
        );
    }
    for (status, body) in [
        api.post("sns/jscode2session", &[], &json!({})).await,
        api.post("cgi-bin/token", &[], &json!({})).await,
        api.post("wxaapi/newtmpl/gettemplate", &[], &json!({}))
            .await,
    ] {
        assert_eq!(
            (status, body["errcode"].as_i64()),
            (200, Some(43001)),
            "{body}"
        );
    }
}

/// 40226 (high-risk user) and 45011 (per-user minute quota) hit one user; others go on.
async fn faults_can_target_one_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sim = app.sim();
    sim.fault(json!({"endpoint": "sns/jscode2session", "openid": "o-risky", "errcode": 40226, "count": 2}))
        .await;
    sim.fault(json!({"endpoint": "sns/jscode2session", "openid": "o-hasty", "errcode": 45011}))
        .await;
    app.login("o-calm").await;
    let code = sim.mint_code("o-risky").await;
    assert_error(app.login_with_code(&code).await, 403, "WECHAT_USER_BLOCKED").await;
    app.login("o-calm").await;
    let code = sim.mint_code("o-hasty").await;
    assert_error(app.login_with_code(&code).await, 429, "WECHAT_RATE_LIMITED").await;
    let code = sim.mint_code("o-risky").await;
    assert_error(app.login_with_code(&code).await, 403, "WECHAT_USER_BLOCKED").await;
    app.login("o-risky").await;
    app.login("o-hasty").await;
}

on_both_backends!(faults_can_target_one_user);
