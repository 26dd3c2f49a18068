//! Admin accounts and tokens for the tests.

use serde_json::json;
use server::admin::{create_admin, Role};

use crate::TestApp;

pub const ADMIN_PASSWORD: &str = "a-long-test-password";

impl TestApp {
    /// Creates an account with `role` (the same call `server admin add` makes) and logs it in.
    pub async fn admin_token(&self, role: Role) -> String {
        let username = format!(
            "{}-{}",
            role.as_str(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let store = self.shared.open().await;
        create_admin(store.as_ref(), &username, role, ADMIN_PASSWORD)
            .await
            .expect("admin created");
        let response = self.admin_login(&username, ADMIN_PASSWORD).await;
        assert_eq!(response.status(), 200, "admin login");
        crate::json(response).await["token"]
            .as_str()
            .expect("token")
            .to_owned()
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
