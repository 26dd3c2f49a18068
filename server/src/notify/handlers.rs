//! Subscription endpoints for the mini-program, and the development-mode sender control.

use std::collections::BTreeSet;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::worker::{self, Notifier};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::routing::endpoint;
use crate::wechat::simulator::Simulator;

/// `wx.requestSubscribeMessage` takes at most this many template ids per call.
const MAX_PER_REQUEST: usize = 5;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/api/v1/subscriptions/templates").get(templates))
        .service(endpoint("/api/v1/subscriptions").post(accept));
}

/// Development mode: run one sender pass now (tests and the developer need not wait for
/// the poll interval). Registered before the simulator's `/__sim` scope.
pub fn dev_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/__sim/notify/run").post(run_now));
}

/// Our events and the template ids to ask for, so a template change needs no release.
async fn templates(notifier: web::Data<Notifier>) -> HttpResponse {
    let templates: Vec<_> = notifier
        .templates
        .iter()
        .map(|(event, t)| json!({"event": event, "template_id": t.template_id}))
        .collect();
    HttpResponse::Ok().json(json!({ "templates": templates }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Accepted {
    accepted: Vec<String>,
}

/// Records the template ids the user accepted in `wx.requestSubscribeMessage`: one send each.
async fn accept(
    user: AuthUser,
    body: web::Json<Accepted>,
    notifier: web::Data<Notifier>,
    simulator: Option<web::Data<Simulator>>,
) -> Result<HttpResponse, ApiError> {
    let ours: BTreeSet<&str> = notifier.templates.template_ids().collect();
    let accepted: BTreeSet<String> = body.into_inner().accepted.into_iter().collect();
    if accepted.is_empty() || accepted.len() > MAX_PER_REQUEST {
        return Err(ApiError::invalid(
            "accepted",
            format!("accepted 须包含 1 至 {MAX_PER_REQUEST} 个模板 id"),
        ));
    }
    if let Some(unknown) = accepted.iter().find(|id| !ours.contains(id.as_str())) {
        return Err(ApiError::invalid_value(
            "accepted",
            format!(
                "未知的模板 id：{}",
                unknown.chars().take(64).collect::<String>()
            ),
        ));
    }
    let accepted: Vec<String> = accepted.into_iter().collect();
    let granted = notifier.grant(&user.id, &accepted).await?;
    // Development mode: the simulated WeChat learns of the tap as the real one would.
    if let Some(simulator) = simulator {
        if let Some(openid) = notifier.openid_of(&user.id).await? {
            for template_id in &accepted {
                simulator.accept(&openid, template_id);
            }
        }
    }
    let subscriptions: Vec<_> = granted
        .into_iter()
        .map(|(template_id, remaining)| json!({"template_id": template_id, "remaining": remaining}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "subscriptions": subscriptions })))
}

async fn run_now(notifier: web::Data<Notifier>) -> Result<HttpResponse, ApiError> {
    let report: worker::PassReport = notifier.run_once().await?;
    Ok(HttpResponse::Ok().json(report))
}
