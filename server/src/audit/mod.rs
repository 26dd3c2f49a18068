//! The audit log: every request an admin account makes — each read of personal data, each
//! decision — as who (the account's id), what (the method and route pattern), which records
//! (their ids), the answer's status and when; never the personal data itself. One middleware
//! writes it for every request that passed the admin extractor, so an admin endpoint is
//! audited by construction; a handler only names the records it touched when the path does
//! not ([`audited`]).

mod store;

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::routing::RoutePattern;
use crate::store::StoreError;

/// The account a request acted as; the admin extractor leaves it in the request's extensions.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: String,
    pub role: &'static str,
}

/// The ids of the records a response showed or changed, when the path does not name them
/// (a check-in by code names the appointment's id, a queue the orders it listed).
#[derive(Debug, Clone)]
struct AuditRecords(Vec<String>);

/// Names the records `response` showed or changed for the audit log.
pub fn audited(response: &mut HttpResponse, ids: impl IntoIterator<Item = String>) {
    response
        .extensions_mut()
        .insert(AuditRecords(ids.into_iter().collect()));
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Increasing: the cursor of the log's pages.
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// The admin account's id.
    pub actor: String,
    pub role: String,
    /// `METHOD /route/{pattern}`.
    pub action: String,
    /// Ids of the records read or changed.
    pub records: Vec<String>,
    /// The answer's HTTP status: 2xx done, 404 nothing (or nothing of the account's halls).
    pub status: u16,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `entry` under the next sequence number (its own `seq` is ignored).
    async fn append_audit(&self, entry: &AuditEntry) -> Result<u64, StoreError>;
    /// Newest first: at most `limit` entries with `seq` below `before`, of `actor` if given.
    async fn audit_entries(
        &self,
        before: Option<u64>,
        actor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

/// The log, registered as app data for the middleware and the administrators' endpoint.
pub struct AuditLog {
    pub store: Arc<dyn AuditStore>,
    clock: Arc<Clock>,
}

impl AuditLog {
    pub fn new(store: Arc<dyn AuditStore>, clock: Arc<Clock>) -> Self {
        AuditLog { store, clock }
    }
}

/// Records every request an admin account made. The entry is written before the answer
/// leaves: when the store cannot take it, the answer is `503 STORE_UNAVAILABLE` instead, so no
/// personal data goes out unrecorded (a decision already saved stays saved).
pub async fn audit_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let log = req.app_data::<web::Data<AuditLog>>().cloned();
    let response = next.call(req).await?;
    let Some(log) = log else {
        return Ok(response.map_into_left_body());
    };
    let actor = response.request().extensions().get::<Actor>().cloned();
    let Some(actor) = actor else {
        return Ok(response.map_into_left_body());
    };
    let request = response.request();
    let route = request
        .app_data::<RoutePattern>()
        .map_or("unmatched", |r| r.0.as_str());
    let records = match response.response().extensions().get::<AuditRecords>() {
        Some(AuditRecords(ids)) => ids.clone(),
        None => request
            .match_info()
            .iter()
            .map(|(_, value)| value.to_owned())
            .collect(),
    };
    let entry = AuditEntry {
        seq: 0,
        at: log.clock.now(),
        actor: actor.id,
        role: actor.role.to_owned(),
        action: format!("{} {route}", request.method()),
        records,
        status: response.status().as_u16(),
    };
    match log.store.append_audit(&entry).await {
        Ok(_) => Ok(response.map_into_left_body()),
        Err(e) => {
            tracing::error!(error = %e, action = %entry.action, "audit entry not written: answer withheld");
            let (req, _) = response.into_parts();
            let refused = ApiError::from(e).error_response();
            Ok(ServiceResponse::new(req, refused).map_into_right_body())
        }
    }
}
