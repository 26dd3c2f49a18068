//! The user's side: ordering with a photo, resubmitting after a rejection, the 订单 tab
//! (newest first, by status, page by page), one order, its photo and its receipt.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::domain::{OrderForm, ReceiptOrder, Region, Status, TransitionError};
use super::photo::{self, Accepted};
use super::render::{render, ReceiptCard};
use super::store::{Cursor, OrderPage};
use super::upload::{self, Upload};
use super::view::{order_view, owned_by, Viewer};
use super::Saved;
use super::{blob_key, PhotoKind, Receipts};
use crate::auth::consent::ConsentedUser;
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorCode};
use crate::person::{IdNumber, PersonName};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    user: AuthUser,
    query: web::Query<ListQuery>,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    let status = query
        .status
        .as_deref()
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    "状态应为 pending、approved、rejected、expired 或 used",
                )
            })
        })
        .transpose()?;
    let after = query
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| Cursor::decode(c).ok_or_else(|| ApiError::invalid_value("cursor", "分页游标无效")))
        .transpose()?;
    let now = receipts.clock.now();
    let limit = receipts.settings.page_size;
    // One more than a page tells whether another page follows.
    let mut orders = receipts
        .store
        .user_receipt_orders(
            &user.id,
            &OrderPage {
                status,
                now,
                after,
                limit: limit + 1,
            },
        )
        .await?;
    let next_cursor = (orders.len() > limit).then(|| {
        orders.truncate(limit);
        orders.last().map(|o| Cursor::after(o).encode())
    });
    let views: Vec<_> = orders
        .iter()
        .map(|o| order_view(o, now, Viewer::Owner))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "orders": views,
        "next_cursor": next_cursor.flatten(),
    })))
}

pub async fn get(
    user: AuthUser,
    id: web::Path<String>,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    let order = owned_by(receipts.store.receipt_order(&id).await?, &user.id)?;
    Ok(HttpResponse::Ok().json(order_view(&order, receipts.clock.now(), Viewer::Owner)))
}

/// The normalised photo (the user never gets the original back: they have it).
pub async fn photo(
    user: AuthUser,
    id: web::Path<String>,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    let order = owned_by(receipts.store.receipt_order(&id).await?, &user.id)?;
    super::photo_response(&receipts, &order, PhotoKind::Normalised).await
}

/// The receipt image, once the order is approved (PNG: text and QR code stay sharp).
pub async fn receipt(
    user: AuthUser,
    id: web::Path<String>,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    let order = owned_by(receipts.store.receipt_order(&id).await?, &user.id)?;
    if order.receipt.is_none() {
        return Err(ErrorCode::ReceiptNotIssued.into());
    }
    let photo = super::photo_bytes(receipts.blobs.as_ref(), &order, PhotoKind::Normalised).await?;
    let png = web::block(move || {
        let photo = image::load_from_memory(&photo)
            .map_err(|e| ApiError::Internal(format!("stored photo: {e}")))?
            .to_rgb8();
        render(&ReceiptCard {
            order: &order,
            photo: &photo,
        })
        .map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "image/png"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(png))
}

/// Stores an accepted photo's blobs; the order is written after them, so an order never
/// points at a missing photo. On failure the blobs are removed again.
async fn put_photos(
    receipts: &Receipts,
    order: &ReceiptOrder,
    accepted: &Accepted,
) -> Result<(), ApiError> {
    let original = blob_key(order, PhotoKind::Original);
    let normalised = blob_key(order, PhotoKind::Normalised);
    let stored = async {
        receipts
            .blobs
            .blob_put(&original, &accepted.original)
            .await?;
        receipts
            .blobs
            .blob_put(&normalised, &accepted.normalised)
            .await
    }
    .await;
    if stored.is_err() {
        remove_photos(receipts, order).await;
    }
    Ok(stored?)
}

async fn remove_photos(receipts: &Receipts, order: &ReceiptOrder) {
    for kind in [PhotoKind::Original, PhotoKind::Normalised] {
        if let Err(e) = receipts.blobs.blob_delete(&blob_key(order, kind)).await {
            tracing::warn!(order = %order.id, error = %e, "could not remove a photo");
        }
    }
}

const ORDER_FIELDS: &[&str] = &["spec", "region", "name", "id_number"];

/// `TOO_MANY_OPEN_ORDERS`, to try again in an hour: reviews take minutes to hours.
fn too_many_open() -> ApiError {
    ApiError::RetryLater {
        code: ErrorCode::TooManyOpenOrders,
        retry_after_secs: 3600,
    }
}

fn order_form(upload: &Upload) -> Result<(OrderForm, &'static photo_wasm::Spec), ApiError> {
    let spec = photo::spec(upload.field("spec")?)?;
    let region = Region::parse(upload.field("region")?).ok_or_else(|| {
        ApiError::invalid(
            "region",
            "暂不支持该地区（支持广东、江西、海南、湖南、贵州、青海）",
        )
    })?;
    if !region.accepts(spec.id) {
        return Err(ErrorCode::RegionNotSupported.with(format!(
            "{}暂不受理{}的网上相片回执",
            region.name_zh(),
            spec.name_zh
        )));
    }
    let name =
        PersonName::parse(upload.field("name")?).map_err(|e| ApiError::field("name", "", &e))?;
    let id_number = IdNumber::parse(upload.field("id_number")?)
        .map_err(|e| ApiError::field("id_number", "", &e))?;
    Ok((
        OrderForm {
            spec: spec.id.to_owned(),
            document_zh: spec.name_zh.to_owned(),
            region,
            name,
            id_number,
        },
        spec,
    ))
}

/// `POST /api/v1/receipt-orders`: the photo passes the check (else 422 with the report and
/// nothing stored), is normalised, and the order waits for review.
pub async fn create(
    user: ConsentedUser,
    req: HttpRequest,
    payload: Multipart,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    receipts.count_upload(&user.id).await?;
    // Refused before any photo work when the user is at the limit already; the insert below
    // decides atomically.
    let max_open = receipts.settings.max_open_orders;
    let open = receipts
        .store
        .user_receipt_orders(
            &user.id,
            &OrderPage {
                status: Some(Status::Pending),
                now: receipts.clock.now(),
                after: None,
                limit: max_open as usize,
            },
        )
        .await?;
    if open.len() >= max_open as usize {
        return Err(too_many_open());
    }
    let limit = receipts.settings.max_upload_bytes;
    let upload = upload::read(&req, payload, limit, ORDER_FIELDS, &receipts.budget).await?;
    let (form, spec) = order_form(&upload)?;
    let accepted = photo::accept(&receipts, upload.photo, spec, 1).await?;
    let now = receipts.clock.now();
    let order = ReceiptOrder::new(
        uuid::Uuid::new_v4().simple().to_string(),
        user.id.clone(),
        form,
        &receipts.hasher,
        accepted.photo.clone(),
        now,
    );
    put_photos(&receipts, &order, &accepted).await?;
    let inserted = receipts
        .store
        .insert_receipt_order_capped(&order, max_open)
        .await;
    match inserted {
        Ok(Saved::Saved) => {}
        refused => {
            remove_photos(&receipts, &order).await;
            return Err(match refused {
                Ok(_) => too_many_open(),
                Err(e) => e.into(),
            });
        }
    }
    tracing::info!(
        order = %order.id,
        spec = %order.spec,
        name = %order.name.masked(),
        id_number = %order.id_number_masked,
        "receipt order submitted"
    );
    Ok(HttpResponse::Created().json(order_view(&order, now, Viewer::Owner)))
}

/// `POST /api/v1/receipt-orders/{id}/resubmit`: a new photo for a rejected order.
pub async fn resubmit(
    user: ConsentedUser,
    id: web::Path<String>,
    req: HttpRequest,
    payload: Multipart,
    receipts: web::Data<Receipts>,
) -> Result<HttpResponse, ApiError> {
    receipts.count_upload(&user.id).await?;
    let mut order = owned_by(receipts.store.receipt_order(&id).await?, &user.id)?;
    if order.status != Status::Rejected {
        return Err(TransitionError::NotRejected.into());
    }
    receipts.count_resubmit(&order.id).await?;
    let limit = receipts.settings.max_upload_bytes;
    let upload = upload::read(&req, payload, limit, &[], &receipts.budget).await?;
    let spec = photo::spec(&order.spec)?;
    let attempt = order.photo.attempt + 1;
    let accepted = photo::accept(&receipts, upload.photo, spec, attempt).await?;
    let now = receipts.clock.now();
    order.resubmit(accepted.photo.clone(), now)?;
    put_photos(&receipts, &order, &accepted).await?;
    match receipts.store.save_receipt_order(&order, None).await? {
        Saved::Saved => Ok(HttpResponse::Ok().json(order_view(&order, now, Viewer::Owner))),
        _ => {
            remove_photos(&receipts, &order).await;
            Err(ErrorCode::OrderChanged.into())
        }
    }
}
