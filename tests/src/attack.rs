//! Attacks as a stranger would make them, over HTTP: the security suite asserts what they
//! achieve, `examples/login_guessing.rs` prints it.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde_json::json;

use crate::TestApp;

/// How many answers of each HTTP status an attack got.
#[derive(Debug, Default)]
pub struct Tally(pub BTreeMap<u16, usize>);

impl Tally {
    pub fn of_statuses(statuses: impl IntoIterator<Item = u16>) -> Self {
        let mut tally = Tally::default();
        for status in statuses {
            *tally.0.entry(status).or_default() += 1;
        }
        tally
    }

    pub fn of(&self, status: u16) -> usize {
        self.0.get(&status).copied().unwrap_or(0)
    }
}

/// `attempts` admin logins for `username` with wrong passwords, `concurrency` at a time, each
/// with the headers `headers(i)` gives the i-th.
pub async fn guess_admin_password(
    app: &TestApp,
    username: &str,
    attempts: usize,
    concurrency: usize,
    headers: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> Tally {
    let statuses: Vec<u16> = futures_util::stream::iter(0..attempts)
        .map(|i| {
            let mut request = app
                .client
                .post(app.url("/api/v1/admin/login"))
                .json(&json!({"username": username, "password": format!("wrong-guess-{i:04}")}));
            for (name, value) in headers(i) {
                request = request.header(name, value);
            }
            async move { request.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    Tally::of_statuses(statuses)
}

/// The value of an unlabelled counter in `/metrics`, when the server exports it.
pub async fn counter(app: &TestApp, name: &str) -> Option<f64> {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}
