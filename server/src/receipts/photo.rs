//! The server's side of the photo check: the very same `photo-wasm` code the phone runs,
//! natively, on the blocking pool (it is CPU work) within the photo budget (see `budget`),
//! then normalisation of an accepted photo.

use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use photo_wasm::{Checked, Report, Spec};

use super::upload;
use super::{Photo, Receipts};
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorCode};

pub fn spec(id: &str) -> Result<&'static Spec, ApiError> {
    photo_wasm::spec_by_id(id)
        .ok_or_else(|| ApiError::invalid("spec", format!("未知的证件类型：{id}")))
}

/// 422 with the report, so the phone can show which rule failed.
fn rejected(report: &Report) -> ApiError {
    ApiError::PhotoRejected {
        report: serde_json::to_value(report).unwrap_or_default(),
    }
}

/// An accepted photo, ready to store.
pub struct Accepted {
    pub original: Vec<u8>,
    pub normalised: Vec<u8>,
    pub photo: Photo,
}

/// The check of `bytes` against `spec`, within the budget, with the segmentation it made (the
/// normalisation cuts the person out along it instead of segmenting again).
async fn checked(
    receipts: &Receipts,
    bytes: &Arc<Vec<u8>>,
    spec: &'static Spec,
) -> Result<Checked, ApiError> {
    let photo = bytes.clone();
    receipts
        .budget
        .run(photo_wasm::check_bytes(bytes), move || {
            photo_wasm::check_segmented(&photo, spec)
        })
        .await
}

/// Checks `bytes` against `spec` and normalises it; a failing photo is refused with its
/// report. Each step (check, normalisation, review copy) takes the budget its decode needs.
pub async fn accept(
    receipts: &Receipts,
    bytes: Vec<u8>,
    spec: &'static Spec,
    attempt: u32,
) -> Result<Accepted, ApiError> {
    let bytes = Arc::new(bytes);
    let checked = checked(receipts, &bytes, spec).await?;
    if checked.report.failed() {
        return Err(rejected(&checked.report));
    }
    let checked = Arc::new(checked);
    let (photo, passed) = (bytes.clone(), checked.clone());
    let normalised = receipts
        .budget
        .run(
            photo_wasm::normalise_checked_bytes(&bytes, spec, &checked.report),
            move || photo_wasm::normalise_checked(&photo, spec, &passed),
        )
        .await?
        .map_err(|e| ErrorCode::PhotoNotNormalisable.with(format!("照片无法按规格裁剪：{e}")))?;
    let original = match receipts.blobs.original_max_pixels() {
        Some(max) => {
            let photo = bytes.clone();
            receipts
                .budget
                .run(photo_wasm::review_bytes(&bytes, max), move || {
                    photo_wasm::downscale_for_review(&photo, max)
                })
                .await?
                .map_err(|e| ApiError::Internal(format!("review copy: {e}")))?
        }
        None => Arc::unwrap_or_clone(bytes),
    };
    Ok(Accepted {
        original,
        normalised: normalised.jpeg,
        photo: Photo {
            attempt,
            upload: Some(uuid::Uuid::new_v4().simple().to_string()),
            report: serde_json::to_value(&checked.report)
                .map_err(|e| ApiError::Internal(e.to_string()))?,
            background_whitened: normalised.background_whitened,
            note: normalised.background_note.map(|n| n.message_zh.to_owned()),
        },
    })
}

/// `GET /api/v1/photo-specs`: the document types and their photo specs.
pub async fn specs() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "specs": photo_wasm::specs() }))
}

/// `POST /api/v1/photos/check`: the report the phone's WebAssembly gives, for clients that
/// cannot run it. Nothing is stored.
pub async fn check(
    user: AuthUser,
    req: HttpRequest,
    payload: Multipart,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    receipts.count_upload(&user.id).await?;
    let limit = receipts.settings.max_upload_bytes;
    let upload = upload::read(&req, payload, limit, &["spec"], &receipts.budget).await?;
    let spec = spec(upload.field("spec")?)?;
    let checked = checked(&receipts, &Arc::new(upload.photo), spec).await?;
    Ok(HttpResponse::Ok().json(checked.report))
}
