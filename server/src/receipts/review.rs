//! The detection centre's side: the queue, one order with its photos and report, the
//! decision; and the window's lookup of a receipt number.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::domain::{Decision, ReceiptOrder, RejectReason, Status, REJECT_REASONS};
use super::number::{ReceiptNo, ReceiptNoError};
use super::store::Saved;
use super::view::{order_view, ReasonView, Viewer};
use super::{PhotoKind, Receipts};
use crate::admin::{AdminUser, Role};
use crate::audit::audited;
use crate::error::{ApiError, ErrorCode};
use crate::notify::{Notification, ReviewOutcome};

/// How many orders one look at the queue shows.
const QUEUE_PAGE: usize = 50;
/// Draws of a new number when one is taken (a 1 in 32^11 event, so one retry is plenty).
const NUMBER_DRAWS: usize = 5;

pub async fn rejection_reasons(_admin: AdminUser) -> HttpResponse {
    let reasons: Vec<ReasonView> = REJECT_REASONS.into_iter().map(ReasonView::from).collect();
    HttpResponse::Ok().json(serde_json::json!({ "reasons": reasons }))
}

pub async fn queue(
    admin: AdminUser,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Reviewer)?;
    let orders = receipts.store.review_queue(QUEUE_PAGE).await?;
    let now = receipts.clock.now();
    let views: Vec<_> = orders
        .iter()
        .map(|o| order_view(o, now, Viewer::Reviewer))
        .collect();
    let mut response = HttpResponse::Ok().json(serde_json::json!({ "orders": views }));
    audited(&mut response, orders.iter().map(|o| o.id.clone()));
    Ok(response)
}

pub async fn order(
    admin: AdminUser,
    id: web::Path<String>,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Reviewer)?;
    let order = receipts
        .store
        .receipt_order(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(order_view(&order, receipts.clock.now(), Viewer::Reviewer)))
}

async fn photo(
    admin: AdminUser,
    id: &str,
    kind: PhotoKind,
    receipts: &Receipts,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Reviewer)?;
    let order = receipts
        .store
        .receipt_order(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    super::photo_response(receipts, &order, kind).await
}

pub async fn normalised_photo(
    admin: AdminUser,
    id: web::Path<String>,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    photo(admin, &id, PhotoKind::Normalised, &receipts).await
}

pub async fn original_photo(
    admin: AdminUser,
    id: web::Path<String>,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    photo(admin, &id, PhotoKind::Original, &receipts).await
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum DecisionKind {
    Approve,
    Reject,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    decision: DecisionKind,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    note: Option<String>,
}

const NOTE_MAX_CHARS: usize = 200;

pub async fn review(
    admin: AdminUser,
    id: web::Path<String>,
    body: web::Json<ReviewRequest>,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Reviewer)?;
    let body = body.into_inner();
    let note = body
        .note
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if note
        .as_ref()
        .is_some_and(|n| n.chars().count() > NOTE_MAX_CHARS)
    {
        return Err(ApiError::invalid("note", "备注不能超过200字"));
    }
    let reasons = body
        .reasons
        .iter()
        .map(|code| {
            RejectReason::parse(code)
                .ok_or_else(|| ApiError::invalid("reasons", format!("未知的驳回原因：{code}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let valid_for = Duration::days(i64::from(receipts.settings.validity_days));
    let now = receipts.clock.now();
    let mut draws = 0;
    loop {
        let mut order = receipts
            .store
            .receipt_order(&id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let decision = match body.decision {
            DecisionKind::Approve if !reasons.is_empty() => {
                return Err(ApiError::invalid_value("reasons", "通过时不能填写驳回原因"))
            }
            DecisionKind::Approve => Decision::Approve {
                no: ReceiptNo::generate(&mut rand::rng()),
                valid_for,
            },
            DecisionKind::Reject => Decision::Reject {
                reasons: reasons.clone(),
                note: note.clone(),
            },
        };
        order.decide(decision, &admin.id, now)?;
        let notice = review_notice(&order, now);
        match receipts
            .store
            .save_receipt_order(&order, Some(&notice))
            .await?
        {
            Saved::Saved => {
                tracing::info!(
                    order = %order.id,
                    reviewer = %admin.id,
                    status = order.status.as_str(),
                    "receipt order decided"
                );
                return Ok(HttpResponse::Ok().json(order_view(&order, now, Viewer::Reviewer)));
            }
            // Another reviewer got there first.
            Saved::Stale => return Err(already_decided()),
            Saved::NumberTaken if draws < NUMBER_DRAWS => draws += 1,
            Saved::NumberTaken | Saved::TooManyOpen => {
                return Err(ApiError::Internal("no free receipt number".into()))
            }
        }
    }
}

/// The 服务通知 of a decision: the number when approved, the reasons when not.
fn review_notice(order: &ReceiptOrder, now: DateTime<Utc>) -> Notification {
    let reasons = order
        .rejection()
        .map(|e| {
            e.reasons
                .iter()
                .map(|r| r.label_zh())
                .collect::<Vec<_>>()
                .join("、")
        })
        .unwrap_or_default();
    let outcome = match &order.receipt {
        Some(receipt) => ReviewOutcome::Approved {
            receipt_no: receipt.no.as_str(),
        },
        None => ReviewOutcome::Rejected { reason: &reasons },
    };
    // One decision per version: the key tells a resubmission's review from the first.
    Notification::review_result(
        &order.user_id,
        &order.id,
        &order.version.to_string(),
        &order.document_zh,
        outcome,
        now,
    )
}

fn already_decided() -> ApiError {
    ErrorCode::OrderAlreadyDecided.with("该订单已被其他审核员处理")
}

/// A receipt number typed at the window: malformed or mistyped is 400 with its own code, so
/// the clerk knows to re-read it rather than to send the person away.
pub fn parse_receipt_no(field: &str, text: &str) -> Result<ReceiptNo, ApiError> {
    ReceiptNo::parse(text).map_err(|e: ReceiptNoError| ApiError::field(field, "", &e))
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum ReceiptState {
    Valid,
    Expired,
    Used,
}

pub async fn lookup(
    admin: AdminUser,
    no: web::Path<String>,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Staff)?;
    let no = parse_receipt_no("receipt_no", &no)?;
    let order = receipts
        .store
        .receipt_order_by_no(&no)
        .await?
        .ok_or(ApiError::NotFound)?;
    let receipt = order.receipt.as_ref().ok_or(ApiError::NotFound)?;
    let now = receipts.clock.now();
    let receipt_state = match order.status_at(now) {
        Status::Used => ReceiptState::Used,
        Status::Expired => ReceiptState::Expired,
        _ => ReceiptState::Valid,
    };
    let mut response = HttpResponse::Ok().json(serde_json::json!({
        "receipt_no": receipt.no,
        "state": receipt_state,
        "spec": order.spec,
        "region": order.region,
        "name_masked": order.name.masked(),
        "id_number_masked": order.id_number_masked,
        "issued_at": receipt.issued_at,
        "expires_at": receipt.expires_at,
        "used_at": receipt.used_at,
        "order_id": order.id,
    }));
    audited(&mut response, [order.id.clone()]);
    Ok(response)
}
