//! Liveness, readiness and metrics for the load balancer and Prometheus.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::routing::endpoint;
use crate::store::KvStore;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/healthz").get(healthz))
        .service(endpoint("/readyz").get(readyz))
        .service(endpoint("/metrics").get(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(store: web::Data<dyn KvStore>) -> Result<HttpResponse, ApiError> {
    store.ping().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "store": store.backend_name()})))
}

async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}
