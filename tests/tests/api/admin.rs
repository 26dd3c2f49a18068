//! Admin accounts: login, wrong passwords, brute-force limit, token scope, revocation.

use server::admin::{create_admin, Role};
use tests::admin::ADMIN_PASSWORD;
use tests::{assert_error, json, on_both_backends, Backend, TestApp};

async fn admin_logs_in_and_gets_a_scoped_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = app.shared.open().await;
    create_admin(store.as_ref(), "reviewer-1", Role::Reviewer, ADMIN_PASSWORD)
        .await
        .unwrap();
    let body = json(app.admin_login("reviewer-1", ADMIN_PASSWORD).await).await;
    assert_eq!(body["admin"]["role"], "reviewer");
    assert_eq!(body["admin"]["username"], "reviewer-1");
    assert!(
        body["admin"].get("password_hash").is_none(),
        "hash never leaves"
    );
    let token = body["token"].as_str().unwrap();
    assert!(body["expires_in"].as_u64().unwrap() > 0);

    // An admin token is not a user token.
    assert_error(
        app.get_with_token("/api/v1/me", token).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

async fn wrong_password_and_unknown_user_look_the_same(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = app.shared.open().await;
    create_admin(store.as_ref(), "staff-1", Role::Staff, ADMIN_PASSWORD)
        .await
        .unwrap();
    assert_error(
        app.admin_login("staff-1", "not-the-password").await,
        401,
        "BAD_CREDENTIALS",
    )
    .await;
    assert_error(
        app.admin_login("nobody", ADMIN_PASSWORD).await,
        401,
        "BAD_CREDENTIALS",
    )
    .await;
    assert_error(
        app.post_json("/api/v1/admin/login", &serde_json::json!({"username": "x"}))
            .await,
        400,
        "INVALID_INPUT",
    )
    .await;
}

async fn repeated_failures_are_rate_limited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = app.shared.open().await;
    create_admin(store.as_ref(), "staff-2", Role::Staff, ADMIN_PASSWORD)
        .await
        .unwrap();
    for _ in 0..10 {
        assert_eq!(
            app.admin_login("staff-2", "guess-guess-guess")
                .await
                .status(),
            401
        );
    }
    let limited = app.admin_login("staff-2", ADMIN_PASSWORD).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_error(limited, 429, "RATE_LIMITED").await;
}

async fn logout_revokes_the_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.admin_token(Role::Staff).await;
    let out = app
        .post_with_token("/api/v1/auth/logout", &token, &serde_json::json!({}))
        .await;
    assert_eq!(out.status(), 204);
    assert_error(
        app.post_with_token("/api/v1/auth/logout", &token, &serde_json::json!({}))
            .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

async fn duplicate_and_weak_accounts_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = app.shared.open().await;
    create_admin(store.as_ref(), "dup-user", Role::Staff, ADMIN_PASSWORD)
        .await
        .unwrap();
    assert!(
        create_admin(store.as_ref(), "dup-user", Role::Reviewer, ADMIN_PASSWORD)
            .await
            .is_err()
    );
    assert!(
        create_admin(store.as_ref(), "weak-user", Role::Staff, "short")
            .await
            .is_err()
    );
    assert!(
        create_admin(store.as_ref(), "bad name!", Role::Staff, ADMIN_PASSWORD)
            .await
            .is_err()
    );
}

on_both_backends!(
    admin_logs_in_and_gets_a_scoped_token,
    wrong_password_and_unknown_user_look_the_same,
    repeated_failures_are_rate_limited,
    logout_revokes_the_token,
    duplicate_and_weak_accounts_are_refused,
);

/// `server admin add` creates an account the running server accepts; staff work at halls of
/// the catalog, given with `--hall`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_add_command_creates_a_working_account() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let store = tests::SharedStore::fresh(Backend::Sqlite).await;
    let command = |args: &[&str], halls: &[&str]| {
        let mut child = Command::new(tests::server_binary())
            .args(args)
            .args(halls.iter().flat_map(|hall| ["--hall", hall]))
            .env_clear()
            .envs(store.vars())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A refused argument exits before reading stdin: the write may find the pipe closed.
        let _ = writeln!(child.stdin.take().unwrap(), "{ADMIN_PASSWORD}");
        child.wait_with_output().unwrap()
    };
    let run = |username: &str, role: &str, halls: &[&str]| {
        let add = ["admin", "add", "--username", username, "--role", role];
        command(&[&add[..], &["--password-stdin"]].concat(), halls)
    };
    let created = run("window-7", "staff", &["dongcheng", "nancheng"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("window-7"));
    let again = run("window-7", "staff", &["dongcheng"]);
    assert!(!again.status.success(), "a taken username is refused");
    let bad_role = run("window-8", "boss", &[]);
    assert_eq!(bad_role.status.code(), Some(2));
    for (role, halls) in [
        ("staff", &[][..]),
        ("staff", &["no-such-hall"][..]),
        ("reviewer", &["dongcheng"][..]),
    ] {
        let refused = run("window-9", role, halls);
        assert_eq!(refused.status.code(), Some(2), "{role} at {halls:?}");
    }
    assert!(run("admin-1", "admin", &[]).status.success());
    // `server admin halls` moves staff, and only staff, to halls of the catalog.
    let halls = |username: &str, halls: &[&str]| {
        command(&["admin", "halls", "--username", username], halls)
    };
    assert!(halls("window-7", &["houjie", "all"]).status.success());
    assert!(halls("window-7", &["houjie"]).status.success());
    assert_eq!(halls("window-7", &["no-such-hall"]).status.code(), Some(2));
    assert_eq!(halls("window-7", &[]).status.code(), Some(2));
    assert!(!halls("admin-1", &["houjie"]).status.success());
    assert!(!halls("nobody", &["houjie"]).status.success());

    let app = TestApp::spawn_on(store, &[]).await;
    let body = json(app.admin_login("window-7", ADMIN_PASSWORD).await).await;
    assert_eq!(body["admin"]["role"], "staff");
    assert_eq!(body["admin"]["halls"], serde_json::json!(["houjie"]));
    assert_error(
        app.admin_login("window-9", ADMIN_PASSWORD).await,
        401,
        "BAD_CREDENTIALS",
    )
    .await;
}
