//! Photo-receipt orders (图像号-style): the user uploads a photo that passes the same check the
//! phone ran, it is normalised to the document's spec, the detection centre reviews it, the
//! user is notified and downloads a receipt whose number the window asks for. A receipt is
//! single use: a booking holds it and its check-in spends it (`hold_for_booking`,
//! `release_from_booking`, `use_at_check_in`).

mod domain;
mod number;
mod orders;
mod render;
mod review;
mod store;
mod view;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};

pub use domain::{
    Decision, Event, EventKind, OrderForm, Photo, Receipt, ReceiptOrder, Region, RejectReason,
    Status, TransitionError, REJECT_REASONS,
};
pub use number::{ReceiptNo, ReceiptNoError};
pub use review::parse_receipt_no;
pub use store::{Cursor, OrderPage, ReceiptStore, Saved};

use crate::error::ApiError;
use crate::person::IdNumber;
use crate::routing::endpoint;
use crate::startup::AppState;
use crate::store::Store;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/api/v1/receipt-orders").get(orders::list))
        .service(endpoint("/api/v1/receipt-orders/{id}").get(orders::get))
        .service(endpoint("/api/v1/receipt-orders/{id}/photo").get(orders::photo))
        .service(endpoint("/api/v1/receipt-orders/{id}/receipt").get(orders::receipt))
        .service(endpoint("/api/v1/admin/review-queue").get(review::queue))
        .service(endpoint("/api/v1/admin/rejection-reasons").get(review::rejection_reasons))
        .service(endpoint("/api/v1/admin/receipt-orders/{id}").get(review::order))
        .service(endpoint("/api/v1/admin/receipt-orders/{id}/photo").get(review::normalised_photo))
        .service(endpoint("/api/v1/admin/receipt-orders/{id}/original").get(review::original_photo))
        .service(endpoint("/api/v1/admin/receipt-orders/{id}/review").post(review::review))
        .service(endpoint("/api/v1/admin/receipts/{receipt_no}").get(review::lookup));
}

/// The two photos kept per upload: as uploaded (for reviewers; a review-sized copy on Redis)
/// and normalised to the spec (what the user, the receipt and the window see).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoKind {
    Original,
    Normalised,
}

pub fn blob_key(order: &ReceiptOrder, kind: PhotoKind) -> String {
    let kind = match kind {
        PhotoKind::Original => "original",
        PhotoKind::Normalised => "normalised",
    };
    format!("receipt-orders/{}/{}/{kind}", order.id, order.photo.attempt)
}

/// JPEG or PNG, told by the first bytes.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

async fn photo_response(
    state: &AppState,
    order: &ReceiptOrder,
    kind: PhotoKind,
) -> Result<HttpResponse, ApiError> {
    let bytes = state
        .store
        .blob_get(&blob_key(order, kind))
        .await?
        .ok_or_else(|| ApiError::Internal(format!("photo of order {} is missing", order.id)))?;
    let content_type = image_type(&bytes).unwrap_or("application/octet-stream");
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(bytes))
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::NotPending => {
                ApiError::conflict("ORDER_ALREADY_DECIDED", "该订单已审核，不能再次审核")
            }
            TransitionError::NotRejected => {
                ApiError::conflict("ORDER_NOT_REJECTED", "只有未通过的订单可以重新提交照片")
            }
            TransitionError::NoReason => ApiError::invalid("reasons", "驳回时请至少选择一个原因"),
            TransitionError::OtherWithoutNote => {
                ApiError::invalid("note", "选择“其他”原因时请填写备注")
            }
            TransitionError::NotApproved => {
                ApiError::unprocessable("RECEIPT_NOT_APPROVED", "该相片回执尚未审核通过")
            }
            TransitionError::Expired => {
                ApiError::unprocessable("RECEIPT_EXPIRED", "该相片回执已过期，请重新办理")
            }
            TransitionError::Used => {
                ApiError::conflict("RECEIPT_USED", "该相片回执已使用，每个回执只能使用一次")
            }
            TransitionError::HeldByAnother => {
                ApiError::conflict("RECEIPT_IN_USE", "该相片回执已用于另一个预约")
            }
            TransitionError::OtherPerson => ApiError::unprocessable(
                "RECEIPT_OTHER_PERSON",
                "该相片回执不属于此申请人（身份证号不符）",
            ),
        }
    }
}

/// Retries of a change that lost a race with another change of the same receipt.
const RACE_RETRIES: usize = 5;

/// Loads the receipt `no`, applies `change` and saves it; re-reads and re-applies when the
/// order changed in between, so concurrent callers each see the other's result.
async fn change_receipt<T>(
    store: &dyn Store,
    no: &ReceiptNo,
    mut change: impl FnMut(&mut ReceiptOrder) -> Result<T, TransitionError>,
) -> Result<T, ApiError> {
    for _ in 0..RACE_RETRIES {
        let mut order = store
            .receipt_order_by_no(no)
            .await?
            .ok_or_else(|| ApiError::unprocessable("RECEIPT_NOT_FOUND", "未找到该相片回执号"))?;
        let before = order.version;
        let outcome = change(&mut order)?;
        if order.version == before {
            return Ok(outcome);
        }
        match store.save_receipt_order(&order).await? {
            Saved::Saved => return Ok(outcome),
            Saved::Stale => continue,
            Saved::NumberTaken => return Err(ApiError::Internal("receipt number moved".into())),
        }
    }
    Err(ApiError::conflict(
        "RECEIPT_BUSY",
        "该相片回执正在被其他操作使用，请稍后再试",
    ))
}

/// For the booking handler: the applicant's receipt `no` is approved, unexpired, unused and
/// theirs; it is held for `booking` so no other booking can use it. A retry for the same
/// booking succeeds again. Call before storing the booking and release it if that fails.
pub async fn hold_for_booking(
    store: &dyn Store,
    no: &ReceiptNo,
    id_number: &IdNumber,
    booking: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    change_receipt(store, no, |order| order.hold(booking, id_number, now)).await?;
    Ok(())
}

/// For cancellation: frees the receipt if `booking` held it.
pub async fn release_from_booking(
    store: &dyn Store,
    no: &ReceiptNo,
    booking: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    change_receipt(store, no, |order| Ok(order.release(booking, now))).await?;
    Ok(())
}

/// For check-in: the receipt held by `booking` is spent.
pub async fn use_at_check_in(
    store: &dyn Store,
    no: &ReceiptNo,
    booking: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    change_receipt(store, no, |order| order.mark_used(booking, now)).await
}
