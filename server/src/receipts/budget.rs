//! Work budgets: what one process and one user may make the photo code do.
//!
//! Photo work (decode, check, normalise, review copy) runs on the blocking pool under one
//! budget of memory counted in MiB: each step first reads the image's header and takes as many
//! permits as the step's decoded bytes (`photo_wasm::check_bytes` and its siblings), so however
//! many uploads arrive at once, the photo work holds at most the budget. An upload's own bytes
//! are held in the same budget from before they are read until the answer is sent. Past the
//! budget a request waits briefly, then is `503 PHOTO_BUSY` with `Retry-After`. The budget
//! protects this process's memory, so it is counted in the process, not in the store.
//!
//! Per-user quotas (photo uploads per minute, resubmissions per order and day) bound the work a
//! single account can ask for across all instances, so they are counted in the store (one
//! atomic increment per request, in fixed windows); the cap on open orders is a guard of the
//! order's own insert (see `ReceiptStore::insert_receipt_order_capped`).

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ErrorCode};
use crate::store::KvStore;

const MIB: u64 = 1024 * 1024;

/// The memory budget of photo work in this process.
pub struct PhotoBudget {
    permits: Arc<Semaphore>,
    mib: u32,
    wait: Duration,
}

impl PhotoBudget {
    pub fn new(mib: u32, wait: Duration) -> Self {
        let mib = mib.max(1);
        PhotoBudget {
            permits: Arc::new(Semaphore::new(mib as usize)),
            mib,
            wait,
        }
    }

    /// Takes `bytes` of the budget (all of it for more), waiting at most the configured time
    /// for them, else `PHOTO_BUSY`; they go back when the answer is dropped.
    pub async fn hold(&self, bytes: u64) -> Result<Held, ApiError> {
        let mib = bytes.div_ceil(MIB).clamp(1, u64::from(self.mib)) as u32;
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_many_owned(mib))
            .await
            .map_err(|_| {
                tracing::warn!(mib, budget = self.mib, "photo budget exhausted");
                ApiError::RetryLater {
                    code: ErrorCode::PhotoBusy,
                    retry_after_secs: self.wait.as_secs().max(1),
                }
            })?
            .map_err(|e| ApiError::Internal(format!("photo budget: {e}")))?;
        Ok(Held { _permit: permit })
    }

    /// Runs `work` on the blocking pool holding `bytes` of the budget (see [`Self::hold`]).
    /// The budget goes back when `work` ends, even if the request has gone.
    pub async fn run<T: Send + 'static>(
        &self,
        bytes: u64,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let held = self.hold(bytes).await?;
        web::block(move || {
            let _held = held;
            work()
        })
        .await
        .map_err(|e| ApiError::Internal(format!("photo work failed: {e}")))
    }
}

/// Part of the photo budget, given back when dropped.
pub struct Held {
    _permit: OwnedSemaphorePermit,
}

/// A per-user limit counted in the store in fixed windows of `window_secs`, which start at
/// multiples of it after `offset_secs` (so a day can start at midnight in China).
pub struct Quota {
    pub code: ErrorCode,
    pub limit: u32,
    pub window_secs: u64,
    pub offset_secs: i64,
}

impl Quota {
    /// Counts one more for `subject` in the window `now` falls in; past the limit, the quota's
    /// 429 with `Retry-After` to the window's end.
    pub async fn take(
        &self,
        kv: &dyn KvStore,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let window = self.window_secs.max(1) as i64;
        let t = now.timestamp() + self.offset_secs;
        let index = t.div_euclid(window);
        let left = (window - t.rem_euclid(window)) as u64;
        let key = format!("quota:{}:{subject}:{index}", self.code.as_str());
        let count = kv.kv_incr(&key, Duration::from_secs(left + 1)).await?;
        if count > i64::from(self.limit) {
            return Err(ApiError::RetryLater {
                code: self.code,
                retry_after_secs: left,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_budget_is_busy_until_it_is_given_back() {
        let budget = PhotoBudget::new(4, Duration::ZERO);
        let held = budget.hold(3 * MIB).await.expect("within the budget");
        let busy = budget.hold(2 * MIB).await.err().expect("over the budget");
        assert_eq!(busy.code(), ErrorCode::PhotoBusy);
        drop(held);
        // More than the whole budget waits for all of it, and runs alone.
        let all = budget.hold(100 * MIB).await.expect("the whole budget");
        assert!(budget.hold(1).await.is_err());
        drop(all);
        assert_eq!(budget.run(MIB, || 7).await.unwrap(), 7);
    }
}
