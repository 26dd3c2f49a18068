//! Erasing a user's orders on request (`DELETE /api/v1/me`): every order that no longer
//! serves its owner goes with all its photos; one still waiting for review or holding a valid
//! receipt is kept until then, and the erasure sweep comes back for it.

use chrono::{DateTime, Utc};

use super::{NeededUntil, OrderPage, ReceiptOrder, ReceiptStore, Saved};
use crate::store::{BlobStore, StoreError};

/// What [`erase_user_orders`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasedOrders {
    pub erased: usize,
    /// Photo blobs deleted (every upload of each erased order).
    pub photos: usize,
    /// Still needed: kept until then.
    pub kept: Vec<(String, NeededUntil)>,
}

/// Erases the orders of `user_id` created by `before` that no longer serve their owner at
/// `now`, with their photos.
pub async fn erase_user_orders(
    store: &dyn ReceiptStore,
    blobs: &dyn BlobStore,
    user_id: &str,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<ErasedOrders, StoreError> {
    let every = OrderPage {
        status: None,
        now,
        after: None,
        limit: usize::MAX,
    };
    let mut erased = ErasedOrders::default();
    for order in store.user_receipt_orders(user_id, &every).await? {
        if order.created_at > before {
            continue;
        }
        match erase_order(store, blobs, order, now).await? {
            OrderErasure::Erased { photos } => {
                erased.erased += 1;
                erased.photos += photos;
            }
            OrderErasure::Kept(id, until) => erased.kept.push((id, until)),
            OrderErasure::Gone => {}
        }
    }
    Ok(erased)
}

/// What became of one order an erasure looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderErasure {
    /// Erased, with this many photo blobs.
    Erased { photos: usize },
    /// Still needed (the order's id): kept until then.
    Kept(String, NeededUntil),
    /// Deleted by someone else meanwhile.
    Gone,
}

/// Erases `order` (as read) unless it is still needed at `now`. The delete holds only over
/// the version read: an order changed meanwhile (a resubmission waiting for review now) is
/// read again and judged afresh, so an erasure never deletes what a later change needs.
pub async fn erase_order(
    store: &dyn ReceiptStore,
    blobs: &dyn BlobStore,
    mut order: ReceiptOrder,
    now: DateTime<Utc>,
) -> Result<OrderErasure, StoreError> {
    loop {
        if let Some(until) = order.needed_until(now) {
            return Ok(OrderErasure::Kept(order.id, until));
        }
        // The order first, then its photos: an order never points at a missing photo.
        if store.delete_receipt_order(&order).await? == Saved::Saved {
            let photos = blobs
                .blob_delete_under(&format!("receipt-orders/{}", order.id))
                .await?;
            return Ok(OrderErasure::Erased { photos });
        }
        match store.receipt_order(&order.id).await? {
            Some(changed) => order = changed,
            None => return Ok(OrderErasure::Gone),
        }
    }
}
