//! Guessing an admin password in parallel, on SQLite and on Redis: 300 wrong passwords for one
//! account from one address, 64 at a time. Prints how many were answered with each status and
//! how many reached the password hash (a 401 is a verified guess; the server's
//! `banzheng_password_verifications_total` counts them too, where it exists).
//!
//! `cargo run -p tests --example login_guessing`

use server::admin::{create_admin, Role};
use tests::attack::{counter, guess_admin_password};
use tests::{Backend, TestApp};

const ATTEMPTS: usize = 300;
const CONCURRENT: usize = 64;

#[tokio::main]
async fn main() {
    for backend in [Backend::Sqlite, Backend::Redis] {
        let app = TestApp::spawn(backend).await;
        let store = app.shared.open().await;
        create_admin(
            store.as_ref(),
            "reviewer-7",
            Role::Reviewer,
            "the-real-password",
        )
        .await
        .unwrap();
        let tally =
            guess_admin_password(&app, "reviewer-7", ATTEMPTS, CONCURRENT, |_| vec![]).await;
        println!(
            "{backend:?}: {ATTEMPTS} wrong passwords, {CONCURRENT} at a time: answers {:?}; verified (401) {}, metric {:?}",
            tally.0,
            tally.of(401),
            counter(&app, "banzheng_password_verifications_total").await,
        );
    }
}
