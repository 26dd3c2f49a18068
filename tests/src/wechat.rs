//! Login and the WeChat simulator for the tests: `app.login(openid)` gives a user token;
//! `app.sim()` drives the simulator the app mounts in development mode, and
//! `SimControl::of(&running)` drives one started on its own port.

use serde_json::{json, Value};
use server::wechat::simulator::{RunningSimulator, APPID, SECRET};

use crate::TestApp;

/// The simulator's control API (`/__sim/…`) over HTTP.
#[derive(Clone)]
pub struct SimControl {
    address: String,
    client: reqwest::Client,
}

impl SimControl {
    pub fn of(running: &RunningSimulator) -> SimControl {
        Self::at(&running.address)
    }

    /// The simulator mounted by a development-mode server at `address`.
    pub fn at(address: &str) -> SimControl {
        SimControl {
            address: address.to_owned(),
            client: crate::client(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}/__sim/{path}", self.address))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn ok(&self, path: &str, body: Value) -> Value {
        let response = self.post(path, body).await;
        assert!(
            response.status().is_success(),
            "sim {path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}/__sim/{path}", self.address);
        self.client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A fresh `wx.login()` code for `openid`.
    pub async fn mint_code(&self, openid: &str) -> String {
        let body = self.ok("codes", json!({ "openid": openid })).await;
        body["code"].as_str().expect("code").to_owned()
    }

    /// Queues a fault for the next `count` calls of `endpoint` (`sns/jscode2session`, …).
    pub async fn fault(&self, fault: Value) {
        self.ok("faults", fault).await;
    }

    pub async fn register_template(&self, template_id: &str, keywords: &[&str]) {
        self.ok(
            "templates",
            json!({"template_id": template_id, "keywords": keywords}),
        )
        .await;
    }

    /// The user tapped "accept" once for the template in `wx.requestSubscribeMessage`.
    pub async fn accept(&self, openid: &str, template_id: &str) {
        self.ok(
            "subscriptions",
            json!({"openid": openid, "template_id": template_id}),
        )
        .await;
    }

    /// Every message WeChat received, in order.
    pub async fn messages(&self) -> Vec<Value> {
        self.get("messages").await["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// How many requests an endpoint received (`cgi-bin/stable_token`, …).
    pub async fn calls(&self, endpoint: &str) -> u64 {
        self.get("calls").await["calls"][endpoint]
            .as_u64()
            .unwrap_or(0)
    }

    /// A `getPhoneNumber` code for `openid` whose number is `phone` (country code 86).
    pub async fn phone_code(&self, openid: &str, phone: &str) -> String {
        let body = self
            .ok("phone-codes", json!({ "openid": openid, "phone": phone }))
            .await;
        body["code"].as_str().expect("code").to_owned()
    }

    /// The pages of the released mini-program (41030 for any other).
    pub async fn release_pages(&self, pages: &[&str]) {
        self.ok("pages", json!({ "pages": pages })).await;
    }

    /// User data encrypted with `openid`'s current session key: `(encryptedData, iv)`.
    pub async fn encrypted_data(&self, openid: &str) -> (String, String) {
        let body = self.ok("encrypted-data", json!({ "openid": openid })).await;
        let field = |name: &str| body[name].as_str().expect(name).to_owned();
        (field("encryptedData"), field("iv"))
    }

    /// `openid` writes `text` to 客服: WeChat pushes it to the app `deliveries` times (as when it
    /// got no answer); what the app answered to each, as `(status, body)`.
    pub async fn kf_message(
        &self,
        openid: &str,
        text: &str,
        deliveries: u32,
    ) -> Vec<(u16, String)> {
        let body = json!({"openid": openid, "text": text, "deliveries": deliveries});
        let answer = self.ok("kf/messages", body).await;
        answer["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .map(|d| {
                let status = d["status"].as_u64().expect("status") as u16;
                (status, d["body"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }

    /// The simulated WeChat API itself (`/__wechat/…`), as any WeChat client calls it.
    pub fn api(&self) -> WeChatApi {
        WeChatApi {
            base: format!("{}/__wechat", self.address),
            client: self.client.clone(),
        }
    }

    pub async fn invalidate_tokens(&self) {
        self.ok("tokens/invalidate", json!({})).await;
    }

    /// Moves the simulator's clock (and, when mounted in an app, the app's clock) forward.
    pub async fn advance_clock(&self, seconds: i64) {
        self.ok("clock", json!({ "advance_seconds": seconds }))
            .await;
    }
}

/// Raw calls to the simulated WeChat API: the HTTP status and the JSON WeChat answered.
pub struct WeChatApi {
    base: String,
    client: reqwest::Client,
}

impl WeChatApi {
    async fn read(response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, body)
    }

    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}/{path}", self.base);
        Self::read(self.client.get(url).query(query).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, query: &[(&str, &str)], body: &Value) -> (u16, Value) {
        let url = format!("{}/{path}", self.base);
        Self::read(
            self.client
                .post(url)
                .query(query)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A new `cgi-bin/token` token of the simulator's app.
    pub async fn classic_token(&self) -> String {
        let (_, body) = self
            .get(
                "cgi-bin/token",
                &[
                    ("grant_type", "client_credential"),
                    ("appid", APPID),
                    ("secret", SECRET),
                ],
            )
            .await;
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// `jscode2session` for a code: the whole answer.
    pub async fn code_to_session(&self, code: &str) -> Value {
        self.get(
            "sns/jscode2session",
            &[
                ("appid", APPID),
                ("secret", SECRET),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ],
        )
        .await
        .1
    }

    /// A subscribe message with `token`: WeChat's errcode (0: sent).
    pub async fn send(&self, token: &str, message: &Value) -> (i64, String) {
        let (status, body) = self
            .post(
                "cgi-bin/message/subscribe/send",
                &[("access_token", token)],
                message,
            )
            .await;
        assert_eq!(status, 200, "WeChat answers 200: {body}");
        (
            body["errcode"].as_i64().expect("errcode"),
            body["errmsg"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

impl TestApp {
    /// The simulator this app mounts (development mode).
    pub fn sim(&self) -> SimControl {
        SimControl {
            address: self.address.clone(),
            client: self.client.clone(),
        }
    }

    /// Advances this app's clock (development mode), e.g. to reach a reminder's time.
    pub async fn advance_clock(&self, seconds: i64) {
        self.sim().advance_clock(seconds).await;
    }

    pub async fn login_with_code(&self, code: &str) -> reqwest::Response {
        self.post_json("/api/v1/auth/login", &json!({ "code": code }))
            .await
    }

    /// Logs `openid` in through WeChat (the app's own simulator), accepts the current privacy
    /// notice as the mini-program does before the first booking or order, and returns the
    /// user token.
    pub async fn login(&self, openid: &str) -> String {
        let token = self.login_without_consent(openid).await;
        consent(&self.client, &self.address, &token).await;
        token
    }

    /// Logs `openid` in without accepting the privacy notice (the refusals before consent).
    pub async fn login_without_consent(&self, openid: &str) -> String {
        let code = self.sim().mint_code(openid).await;
        let response = self.login_with_code(&code).await;
        assert_eq!(response.status(), 200, "login of {openid}");
        crate::json(response).await["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }
}

/// Accepts the privacy notice `GET /api/v1/me` names for the user of `token`, on the app at
/// `address` (for tests that log in by hand, e.g. against a server process); its answer.
pub async fn consent(client: &reqwest::Client, address: &str, token: &str) -> Value {
    let url = format!("{address}/api/v1/me");
    let me = crate::answered(|| client.get(&url).bearer_auth(token)).await;
    assert_eq!(me.status(), 200, "GET /api/v1/me");
    let version = crate::json(me).await["privacy"]["version"].clone();
    let url = format!("{address}/api/v1/me/consent");
    let accepted = crate::answered(|| {
        client
            .post(&url)
            .bearer_auth(token)
            .json(&json!({ "version": version }))
    })
    .await;
    assert_eq!(accepted.status(), 200, "POST /api/v1/me/consent");
    crate::json(accepted).await
}

/// Values WeChat's rules accept or refuse, per keyword (订阅消息「参数值内容限制」): the one
/// set of samples that both the simulator's acceptance and `notify::keywords` are held to.
pub const KEYWORD_SAMPLES: &[(&str, &str, bool)] = &[
    ("thing1", "东莞市公安局南城分局", true),
    ("thing1", "ID card, 2 copies!", true),
    (
        "thing1",
        "一二三四五六七八九十一二三四五六七八九十一",
        false,
    ),
    ("number1", "12.50", true),
    ("number1", "1.2.3", false),
    ("number1", "12a", false),
    ("letter1", "abc", true),
    ("letter1", "ab1", false),
    ("symbol1", "-", true),
    ("symbol1", "abc", false),
    ("character_string1", "BZ-2024-0001", true),
    ("character_string1", "回执123", false),
    ("time1", "15:01", true),
    ("time1", "2025年03月05日 09:30", true),
    ("time1", "2025年03月05日 09:30 ~ 2025年03月05日 10:00", true),
    ("time1", "明天3点", false),
    ("time1", "25:99", false),
    ("date1", "2019年10月1日", true),
    ("date1", "2019-10-01 15:01", true),
    ("date1", "第1天", false),
    ("amount1", "¥20.00", true),
    ("amount1", "￥5元", true),
    ("amount1", "about 5 dollars", false),
    ("phone_number1", "+86-0769-22888888", true),
    ("phone_number1", "call-me-now", false),
    ("car_number1", "粤A8Z888挂", true),
    ("car_number1", "ABCDEFGH", false),
    ("car_number1", "粤S8Z8888挂", false),
    ("name1", "张三", true),
    ("name1", "用户410774", false),
    ("phrase1", "配送中", true),
    ("phrase1", "ok", false),
    ("phrase1", "已经寄出了啊", false),
];
