//! Login and the WeChat simulator for the tests: `app.login(openid)` gives a user token;
//! `app.sim()` drives the simulator the app mounts in development mode, and
//! `SimControl::of(&running)` drives one started on its own port.

use serde_json::{json, Value};
use server::wechat::simulator::RunningSimulator;

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

    pub async fn invalidate_tokens(&self) {
        self.ok("tokens/invalidate", json!({})).await;
    }

    /// Moves the simulator's clock (and, when mounted in an app, the app's clock) forward.
    pub async fn advance_clock(&self, seconds: i64) {
        self.ok("clock", json!({ "advance_seconds": seconds }))
            .await;
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

    /// Logs `openid` in through WeChat (the app's own simulator) and returns the user token.
    pub async fn login(&self, openid: &str) -> String {
        let code = self.sim().mint_code(openid).await;
        let response = self.login_with_code(&code).await;
        assert_eq!(response.status(), 200, "login of {openid}");
        crate::json(response).await["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }
}
