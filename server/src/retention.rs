//! Personal data is kept no longer than its purpose needs (PIPL art. 19): a sweep on the
//! app's clock, every `retention.sweep_interval_secs`, removes
//! - an order's original photo `original_photo_days` after the review's decision (the
//!   normalised one is what the receipt and the window use);
//! - the normalised photo, and with it the receipt image, once the receipt expired;
//! - the applicant's details of appointments in a state they never leave (cancelled, no-show,
//!   collected, mailed) and of finished orders (receipt used or expired, or rejected)
//!   `applicant_days` after they ended: names, phones, masked ID numbers, guardians,
//!   addresses, waybills and free-text notes; what statistics count (hall, service, document,
//!   dates, status, fee) and the keyed hashes the account's no-shows and bans are counted by
//!   stay;
//! - expired `Idempotency-Key` records and settled notification outbox entries
//!   `outbox_days` old (their texts name people and places).
//!
//! 客服 conversations have their own sweep (`kf`). In development `POST /__sim/retention/run`
//! runs one sweep at once (tests move the clock, then run it).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::booking::BookingStore;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::notify::NotifyStore;
use crate::receipts::{remove_due, Keep, ReceiptStore};
use crate::routing::endpoint;
use crate::store::{BlobStore, KvStore, StoreError};

/// `[retention]` (`BANZHENG_RETENTION__ORIGINAL_PHOTO_DAYS`, …).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Days an order's original photo is kept after the review decided on it.
    pub original_photo_days: u32,
    /// Days the applicant's details are kept after an appointment or an order ended.
    pub applicant_days: u32,
    /// Days a settled notification (sent, failed, dead) is kept.
    pub outbox_days: u32,
    /// How often the sweep runs.
    pub sweep_interval_secs: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            original_photo_days: 30,
            applicant_days: 90,
            outbox_days: 30,
            sweep_interval_secs: 3600,
        }
    }
}

/// What one sweep removed.
#[derive(Debug, Default, Serialize)]
pub struct Swept {
    pub original_photos: u64,
    pub normalised_photos: u64,
    pub orders_anonymised: u64,
    pub appointments_anonymised: u64,
    pub idempotency_records: u64,
    pub outbox_entries: u64,
}

/// The sweep and the stores it removes from.
pub struct Retention {
    settings: RetentionSettings,
    booking: Arc<dyn BookingStore>,
    orders: Arc<dyn ReceiptStore>,
    blobs: Arc<dyn BlobStore>,
    outbox: Arc<dyn NotifyStore>,
    /// Scrubs what the sweep removed out of the store's files (SQLite's WAL and free pages).
    files: Arc<dyn KvStore>,
    clock: Arc<Clock>,
}

fn days(n: u32) -> TimeDelta {
    TimeDelta::days(i64::from(n))
}

impl Retention {
    pub fn new(
        settings: RetentionSettings,
        booking: Arc<dyn BookingStore>,
        orders: Arc<dyn ReceiptStore>,
        blobs: Arc<dyn BlobStore>,
        outbox: Arc<dyn NotifyStore>,
        files: Arc<dyn KvStore>,
        clock: Arc<Clock>,
    ) -> Self {
        Retention {
            settings,
            booking,
            orders,
            blobs,
            outbox,
            files,
            clock,
        }
    }

    /// One sweep: everything past its time at the app's clock.
    pub async fn sweep(&self) -> Result<Swept, StoreError> {
        let now = self.clock.now();
        let keep_details = days(self.settings.applicant_days);
        let mut swept = Swept::default();
        let keep = Keep {
            original: days(self.settings.original_photo_days),
            applicant: keep_details,
        };
        for order in self.orders.reviewed_orders().await? {
            let removed =
                remove_due(self.orders.as_ref(), self.blobs.as_ref(), order, keep, now).await?;
            swept.original_photos += u64::from(removed.original);
            swept.normalised_photos += u64::from(removed.normalised);
            swept.orders_anonymised += u64::from(removed.applicant);
        }
        // An appointment ends after it was created, so only those created before the cut-off
        // can have ended before it.
        for appointment in self.booking.ended_appointments(now - keep_details).await? {
            let due = appointment
                .ended_at()
                .is_some_and(|ended| ended + keep_details <= now);
            if due && self.booking.anonymise(&appointment.anonymised(now)).await? {
                swept.appointments_anonymised += 1;
            }
        }
        swept.idempotency_records = self.booking.delete_expired_idempotency(now).await?;
        swept.outbox_entries = self
            .outbox
            .delete_settled_before(now - days(self.settings.outbox_days))
            .await?;
        let removed = swept.orders_anonymised
            + swept.appointments_anonymised
            + swept.idempotency_records
            + swept.outbox_entries;
        // The old versions of the rows changed live on in SQLite's WAL and free pages until
        // the file is rewritten.
        self.files.scrub(removed > 0).await?;
        tracing::info!(?swept, "retention sweep");
        Ok(swept)
    }
}

/// Runs the sweep every `retention.sweep_interval_secs` for the life of the server.
pub fn spawn_sweeper(retention: web::Data<Retention>) {
    let period = Duration::from_secs(retention.settings.sweep_interval_secs);
    crate::clock::repeat(period, "retention sweep", move || {
        let retention = retention.clone();
        async move { retention.sweep().await }
    });
}

/// Development only: `POST /__sim/retention/run` runs one sweep at once.
pub fn dev_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/__sim/retention/run").post(run));
}

async fn run(retention: web::Data<Retention>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(retention.sweep().await?))
}
