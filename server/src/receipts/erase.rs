//! Erasing a user's orders on request (`DELETE /api/v1/me`): every order that no longer
//! serves its owner goes with all its photos; one still waiting for review or holding a valid
//! receipt is kept until then, and the erasure sweep comes back for it.

use chrono::{DateTime, Utc};

use super::{NeededUntil, OrderPage, ReceiptStore};
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
        if let Some(until) = order.needed_until(now) {
            erased.kept.push((order.id, until));
            continue;
        }
        // The order first, then its photos: an order never points at a missing photo.
        store.delete_receipt_order(&order).await?;
        erased.photos += blobs
            .blob_delete_under(&format!("receipt-orders/{}", order.id))
            .await?;
        erased.erased += 1;
    }
    Ok(erased)
}
