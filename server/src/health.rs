//! Liveness, readiness and metrics for the load balancer and Prometheus.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::metrics::{token_matches, Metrics, MetricsAccess};
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

/// Open in development; in production only with the configured token (without one, the
/// endpoint answers like any unknown path).
async fn metrics(req: HttpRequest, metrics: web::Data<Metrics>) -> Result<HttpResponse, ApiError> {
    match &metrics.access {
        MetricsAccess::Open => {}
        MetricsAccess::Hidden => return Err(ApiError::NotFound),
        MetricsAccess::Token(expected) => {
            let presented = bearer_token(&req).ok_or(ApiError::Unauthorized)?;
            if !token_matches(expected, &presented) {
                return Err(ApiError::Unauthorized);
            }
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render()))
}
