//! Liveness, readiness, metrics, the error shape, and a store outage.

use std::time::Duration;

use tests::{assert_error, json, on_both_backends, Backend, RedisServer, SharedStore, TestApp};

async fn health_ready_and_metrics(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = json(app.get("/readyz").await).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        ready["store"],
        if backend == Backend::Redis {
            "redis"
        } else {
            "sqlite"
        }
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds_bucket"),
        "{metrics}"
    );
}

async fn unknown_route_is_a_json_404_with_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/no/such/thing").await;
    let header = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = assert_error(response, 404, "NOT_FOUND").await;
    assert_eq!(body["request_id"], header.as_str());
}

on_both_backends!(
    health_ready_and_metrics,
    unknown_route_is_a_json_404_with_request_id
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_503_and_recovers_by_itself() {
    let mut redis = RedisServer::start().await;
    let store = SharedStore::Redis {
        url: redis.url(),
        prefix: "outage".into(),
    };
    let app = TestApp::spawn_on(store, &[]).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    redis.stop().await;
    assert_error(app.get("/readyz").await, 503, "STORE_UNAVAILABLE").await;
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "alive while the store is down"
    );

    redis.restart().await;
    let mut recovered = false;
    for _ in 0..100 {
        if app.get("/readyz").await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the app reconnects without a restart");
}
