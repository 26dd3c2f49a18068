//! The server's side of the photo check: the very same `photo-wasm` code the phone runs,
//! natively, off the async workers (it is CPU work), then normalisation of an accepted photo.

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use photo_wasm::{Report, Spec};

use super::upload;
use super::{Photo, Receipts};
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorCode};

pub fn spec(id: &str) -> Result<&'static Spec, ApiError> {
    photo_wasm::spec_by_id(id)
        .ok_or_else(|| ApiError::invalid("spec", format!("未知的证件类型：{id}")))
}

/// Runs `work` on the blocking pool.
async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    web::block(work)
        .await
        .map_err(|e| ApiError::Internal(format!("photo work failed: {e}")))
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

/// Checks `bytes` against `spec` and normalises it; a failing photo is refused with its
/// report. `original_max_pixels` bounds the copy of the original kept for reviewers.
pub async fn accept(
    bytes: Vec<u8>,
    spec: &'static Spec,
    attempt: u32,
    original_max_pixels: Option<u32>,
) -> Result<Accepted, ApiError> {
    off_workers(move || {
        let report = photo_wasm::check(&bytes, spec);
        if report.failed() {
            return Err(rejected(&report));
        }
        let normalised = photo_wasm::normalise_checked(&bytes, spec, &report).map_err(|e| {
            ErrorCode::PhotoNotNormalisable.with(format!("照片无法按规格裁剪：{e}"))
        })?;
        let original = match original_max_pixels {
            Some(max) => photo_wasm::downscale_for_review(&bytes, max)
                .map_err(|e| ApiError::Internal(format!("review copy: {e}")))?,
            None => bytes,
        };
        Ok(Accepted {
            original,
            normalised: normalised.jpeg,
            photo: Photo {
                attempt,
                upload: Some(uuid::Uuid::new_v4().simple().to_string()),
                report: serde_json::to_value(&report)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
                background_whitened: normalised.background_whitened,
                note: normalised.background_note.map(|n| n.message_zh.to_owned()),
            },
        })
    })
    .await?
}

/// `GET /api/v1/photo-specs`: the document types and their photo specs.
pub async fn specs() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "specs": photo_wasm::specs() }))
}

/// `POST /api/v1/photos/check`: the report the phone's WebAssembly gives, for clients that
/// cannot run it. Nothing is stored.
pub async fn check(
    _user: AuthUser,
    req: HttpRequest,
    payload: Multipart,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    let upload = upload::read(&req, payload, receipts.settings.max_upload_bytes, &["spec"]).await?;
    let spec = spec(upload.field("spec")?)?;
    let report = off_workers(move || photo_wasm::check(&upload.photo, spec)).await?;
    Ok(HttpResponse::Ok().json(report))
}
