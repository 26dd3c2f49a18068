//! Admin accounts and tokens for the tests.

use serde_json::json;
use server::admin::{create_admin_at, Role};

use crate::TestApp;

pub const ADMIN_PASSWORD: &str = "a-long-test-password";

impl TestApp {
    /// Creates an account with `role` (the same call `server admin add` makes) and logs it in;
    /// staff work at every hall.
    pub async fn admin_token(&self, role: Role) -> String {
        let halls: &[&str] = match role {
            Role::Staff => &["all"],
            _ => &[],
        };
        self.admin_account(role, halls).await.1
    }

    /// Creates an account with `role` working at `halls` and logs it in: its username and token.
    pub async fn admin_account(&self, role: Role, halls: &[&str]) -> (String, String) {
        let username = format!(
            "{}-{}",
            role.as_str(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let store = self.shared.open().await;
        create_admin_at(store.as_ref(), &username, role, halls, ADMIN_PASSWORD)
            .await
            .expect("admin created");
        let response = self.admin_login(&username, ADMIN_PASSWORD).await;
        assert_eq!(response.status(), 200, "admin login");
        let token = crate::json(response).await["token"]
            .as_str()
            .expect("token")
            .to_owned();
        (username, token)
    }

    pub async fn admin_login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/admin/login",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_with_token(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}
