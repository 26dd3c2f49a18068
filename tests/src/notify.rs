//! Notifications for the tests: subscribe as the mini-program does, write outbox entries the
//! way capabilities do (through the store), and run the sender on demand (development mode).

use serde_json::{json, Value};
use server::notify::store::OutboxEntry;
use server::notify::{Event, Notification};

use crate::TestApp;

impl TestApp {
    /// The template id the mini-program asks the user to accept for `event`.
    pub async fn template_id(&self, event: Event) -> String {
        let body = crate::json(self.get("/api/v1/subscriptions/templates").await).await;
        body["templates"]
            .as_array()
            .expect("templates")
            .iter()
            .find(|t| t["event"] == event.as_str())
            .and_then(|t| t["template_id"].as_str())
            .expect("a template for the event")
            .to_owned()
    }

    pub async fn subscribe(&self, token: &str, accepted: &[&str]) -> reqwest::Response {
        self.post_with_token(
            "/api/v1/subscriptions",
            token,
            &json!({ "accepted": accepted }),
        )
        .await
    }

    /// The user id behind a token.
    pub async fn user_id(&self, token: &str) -> String {
        let me = crate::json(self.get_with_token("/api/v1/me", token).await).await;
        me["user"]["id"].as_str().expect("user id").to_owned()
    }

    /// Writes a notification as a capability would (alone, not with another change).
    pub async fn enqueue(&self, notification: &Notification) -> bool {
        self.shared
            .open()
            .await
            .enqueue(notification)
            .await
            .unwrap()
    }

    pub async fn outbox_entry(&self, notification: &Notification) -> OutboxEntry {
        self.shared
            .open()
            .await
            .outbox_entry("notify", &notification.id)
            .await
            .unwrap()
            .expect("outbox entry")
    }

    /// Sends what is due, then every 服务通知 WeChat received for `openid` so far, in order:
    /// its template id and the text of its `data`.
    pub async fn deliveries_to(&self, openid: &str) -> Vec<(String, String)> {
        self.run_notifier().await;
        self.sim()
            .messages()
            .await
            .into_iter()
            .filter(|m| m["touser"] == openid)
            .map(|m| {
                let template = m["template_id"].as_str().unwrap_or_default().to_owned();
                (template, m["data"].to_string())
            })
            .collect()
    }

    /// Runs one pass of the sender now; returns what it did.
    pub async fn run_notifier(&self) -> Value {
        let response = self.post_json("/__sim/notify/run", &json!({})).await;
        assert_eq!(response.status(), 200, "notify run");
        crate::json(response).await
    }
}
