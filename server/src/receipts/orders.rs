//! The user's side: the 订单 tab (newest first, by status, page by page), one order, its photo.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::domain::Status;
use super::render::{render, ReceiptCard};
use super::store::{Cursor, OrderPage};
use super::view::{order_view, owned_by, Viewer};
use super::{blob_key, PhotoKind};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    user: AuthUser,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let status = query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
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
        .map(|c| Cursor::decode(c).ok_or_else(|| ApiError::invalid("cursor", "分页游标无效")))
        .transpose()?;
    let now = state.clock.now();
    let limit = state.settings.receipts.page_size;
    // One more than a page tells whether another page follows.
    let mut orders = state
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
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = owned_by(state.store.receipt_order(&id).await?, &user.id)?;
    Ok(HttpResponse::Ok().json(order_view(&order, state.clock.now(), Viewer::Owner)))
}

/// The normalised photo (the user never gets the original back: they have it).
pub async fn photo(
    user: AuthUser,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = owned_by(state.store.receipt_order(&id).await?, &user.id)?;
    super::photo_response(&state, &order, PhotoKind::Normalised).await
}

/// The receipt image, once the order is approved (PNG: text and QR code stay sharp).
pub async fn receipt(
    user: AuthUser,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = owned_by(state.store.receipt_order(&id).await?, &user.id)?;
    if order.receipt.is_none() {
        return Err(ApiError::conflict(
            "RECEIPT_NOT_ISSUED",
            "审核通过后才能下载相片回执",
        ));
    }
    let photo = state
        .store
        .blob_get(&blob_key(&order, PhotoKind::Normalised))
        .await?
        .ok_or_else(|| ApiError::Internal(format!("photo of order {} is missing", order.id)))?;
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
