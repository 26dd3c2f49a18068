//! Photo-receipt orders (图像号-style): the user uploads a photo that passes the same check the
//! phone ran, it is normalised to the document's spec, the detection centre reviews it, the
//! user is notified and downloads a receipt whose number the window asks for. A receipt is
//! single use: booking checks it (`check_for_booking`) and check-in spends it
//! (`use_at_check_in`).

mod budget;
mod domain;
mod erase;
mod number;
mod orders;
mod photo;
mod render;
mod review;
mod store;
mod upload;
mod view;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use domain::{
    Decision, Event, EventKind, Keep, NeededUntil, OrderForm, Photo, Receipt, ReceiptOrder, Region,
    RejectReason, Removals, Removed, Status, TransitionError, REJECT_REASONS,
};
pub use erase::{erase_order, erase_user_orders, ErasedOrders, OrderErasure};
pub use number::{ReceiptNo, ReceiptNoError};
pub use review::parse_receipt_no;
pub use store::{Cursor, OrderPage, ReceiptStore, Saved};

use crate::clock::Clock;
use crate::error::{ApiError, ErrorCode};
use crate::id_hash::IdHasher;
use crate::routing::endpoint;
use crate::store::{BlobStore, KvStore, StoreError};
use budget::{PhotoBudget, Quota};

/// Photo-receipt orders (`BANZHENG_RECEIPTS__…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiptSettings {
    /// Largest photo upload accepted; larger is 413.
    pub max_upload_bytes: usize,
    /// How long an approved receipt is valid (Guangzhou: 180 days).
    pub validity_days: u32,
    /// Orders per page of the 订单 tab.
    pub page_size: usize,
    /// Memory (MiB) all photo work of this process may hold at once, counted in decoded bytes.
    pub photo_budget_mb: u32,
    /// How long a photo step waits for the budget before the request is `503 PHOTO_BUSY`.
    pub photo_budget_wait_ms: u64,
    /// Photo uploads (checks, orders, resubmissions) one user may make per minute.
    pub photos_per_minute: u32,
    /// Orders one user may have waiting for review at once.
    pub max_open_orders: u32,
    /// New photos one order may take per day (China time).
    pub resubmits_per_day: u32,
}

impl Default for ReceiptSettings {
    fn default() -> Self {
        ReceiptSettings {
            max_upload_bytes: 10 * 1024 * 1024,
            validity_days: 180,
            page_size: 20,
            photo_budget_mb: 512,
            photo_budget_wait_ms: 2000,
            photos_per_minute: 20,
            max_open_orders: 10,
            resubmits_per_day: 10,
        }
    }
}

/// Photo-receipt orders as the handlers see them: the orders, their photos, the limits.
pub struct Receipts {
    settings: ReceiptSettings,
    store: Arc<dyn ReceiptStore>,
    blobs: Arc<dyn BlobStore>,
    /// Where the per-user quotas are counted.
    quotas: Arc<dyn KvStore>,
    budget: PhotoBudget,
    /// Under which an order keeps its ID number: the bookings' key, so a booking recognises
    /// the receipt's owner.
    hasher: IdHasher,
    clock: Arc<Clock>,
}

impl Receipts {
    pub fn new(
        settings: ReceiptSettings,
        store: Arc<dyn ReceiptStore>,
        blobs: Arc<dyn BlobStore>,
        quotas: Arc<dyn KvStore>,
        hasher: IdHasher,
        clock: Arc<Clock>,
    ) -> Self {
        let budget = PhotoBudget::new(
            settings.photo_budget_mb,
            Duration::from_millis(settings.photo_budget_wait_ms),
        );
        Receipts {
            settings,
            store,
            blobs,
            quotas,
            budget,
            hasher,
            clock,
        }
    }

    /// Counts one photo upload of `user` (`PHOTO_QUOTA_EXCEEDED` past the minute's limit).
    async fn count_upload(&self, user: &str) -> Result<(), ApiError> {
        Quota {
            code: ErrorCode::PhotoQuotaExceeded,
            limit: self.settings.photos_per_minute,
            window_secs: 60,
            offset_secs: 0,
        }
        .take(self.quotas.as_ref(), user, self.clock.now())
        .await
    }

    /// Counts one resubmission of `order` (`RESUBMIT_QUOTA_EXCEEDED` past the day's limit).
    async fn count_resubmit(&self, order: &str) -> Result<(), ApiError> {
        Quota {
            code: ErrorCode::ResubmitQuotaExceeded,
            limit: self.settings.resubmits_per_day,
            window_secs: 86_400,
            // Days start at midnight in China (UTC+8).
            offset_secs: 8 * 3600,
        }
        .take(self.quotas.as_ref(), order, self.clock.now())
        .await
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/api/v1/photo-specs").get(photo::specs))
        .service(endpoint("/api/v1/photos/check").post(photo::check))
        .service(
            endpoint("/api/v1/receipt-orders")
                .get(orders::list)
                .post(orders::create),
        )
        .service(endpoint("/api/v1/receipt-orders/{id}/resubmit").post(orders::resubmit))
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
    let photo = &order.photo;
    match &photo.upload {
        Some(upload) => format!("receipt-orders/{}/{upload}/{kind}", order.id),
        None => format!("receipt-orders/{}/{}/{kind}", order.id, photo.attempt),
    }
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

/// The photo `kind` of `order`: `410 PHOTO_DELETED` once the retention sweep removed it.
async fn photo_bytes(
    blobs: &dyn BlobStore,
    order: &ReceiptOrder,
    kind: PhotoKind,
) -> Result<Vec<u8>, ApiError> {
    let removed = match kind {
        PhotoKind::Original => order.removed.original_at,
        PhotoKind::Normalised => order.removed.normalised_at,
    };
    if removed.is_some() {
        return Err(ErrorCode::PhotoDeleted.into());
    }
    blobs
        .blob_get(&blob_key(order, kind))
        .await?
        .ok_or_else(|| ApiError::Internal(format!("photo of order {} is missing", order.id)))
}

/// Removes what of `order` is due for removal at `now` (retention): the photos' files or
/// values first, then the order records it (so a crash in between only leaves a removal to
/// record again). What was removed; nothing when nothing was due or the order changed
/// meanwhile (the next sweep judges it afresh).
pub async fn remove_due(
    store: &dyn ReceiptStore,
    blobs: &dyn BlobStore,
    mut order: ReceiptOrder,
    keep: Keep,
    now: DateTime<Utc>,
) -> Result<Removals, StoreError> {
    let due = order.due_removals(keep, now);
    if !due.any() {
        return Ok(Removals::default());
    }
    if due.original {
        blobs
            .blob_delete(&blob_key(&order, PhotoKind::Original))
            .await?;
    }
    if due.normalised {
        blobs
            .blob_delete(&blob_key(&order, PhotoKind::Normalised))
            .await?;
    }
    order.record_removals(due, now);
    Ok(match store.save_receipt_order(&order, None).await? {
        Saved::Saved => due,
        _ => Removals::default(),
    })
}

async fn photo_response(
    receipts: &Receipts,
    order: &ReceiptOrder,
    kind: PhotoKind,
) -> Result<HttpResponse, ApiError> {
    let bytes = photo_bytes(receipts.blobs.as_ref(), order, kind).await?;
    let content_type = image_type(&bytes).unwrap_or("application/octet-stream");
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(bytes))
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::NotPending => ErrorCode::OrderAlreadyDecided.into(),
            TransitionError::NotRejected => ErrorCode::OrderNotRejected.into(),
            TransitionError::NoReason => {
                ApiError::invalid_value("reasons", "驳回时请至少选择一个原因")
            }
            TransitionError::OtherWithoutNote => {
                ApiError::invalid_value("note", "选择“其他”原因时请填写备注")
            }
            TransitionError::NotApproved => ErrorCode::ReceiptNotApproved.into(),
            TransitionError::Expired => ErrorCode::ReceiptExpired.into(),
            TransitionError::Used => ErrorCode::ReceiptUsed.into(),
            TransitionError::OtherPerson => ErrorCode::ReceiptOtherPerson.into(),
        }
    }
}

/// The receipt `no`, or 422 when there is none: a booking names it, it must exist.
async fn receipt_order(store: &dyn ReceiptStore, no: &ReceiptNo) -> Result<ReceiptOrder, ApiError> {
    store
        .receipt_order_by_no(no)
        .await?
        .ok_or_else(|| ErrorCode::ReceiptNotFound.into())
}

/// For the booking handler: the receipt named at booking is one `user_id` ordered, approved,
/// unexpired, unused and the applicant's own (whose ID number hashes to `id_hash`). A receipt
/// another account ordered is answered as one that does not exist: nothing about it (its
/// state, whose ID number it holds) reaches a stranger.
pub async fn check_for_booking(
    store: &dyn ReceiptStore,
    no: &ReceiptNo,
    user_id: &str,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let order = receipt_order(store, no).await?;
    if order.user_id != user_id {
        return Err(ErrorCode::ReceiptNotFound.into());
    }
    Ok(order.usable_by(id_hash, now)?)
}

/// Retries of a check-in that lost a race with another change of the same order.
const RACE_RETRIES: usize = 5;

/// For the check-in handler: the receipt named by `appointment` is spent (single use). A
/// second appointment naming it is refused with `RECEIPT_USED`.
pub async fn use_at_check_in(
    store: &dyn ReceiptStore,
    no: &ReceiptNo,
    appointment: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    for _ in 0..RACE_RETRIES {
        let mut order = receipt_order(store, no).await?;
        let before = order.version;
        order.mark_used(appointment, now)?;
        if order.version == before {
            return Ok(());
        }
        match store.save_receipt_order(&order, None).await? {
            Saved::Saved => {
                tracing::info!(order = %order.id, appointment, "photo receipt used");
                return Ok(());
            }
            Saved::Stale => continue,
            Saved::NumberTaken | Saved::TooManyOpen => {
                return Err(ApiError::Internal("receipt number moved".into()))
            }
        }
    }
    Err(ErrorCode::ReceiptBusy.into())
}
