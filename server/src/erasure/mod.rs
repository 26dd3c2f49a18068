//! Erasure on request (`DELETE /api/v1/me`, PIPL art. 47): the user's tokens are revoked, the
//! erasure is journaled (so a restore re-applies it), and everything the user had stored is
//! erased — account and phone number, ended appointments, orders with their photos, the 客服
//! conversation, subscriptions, outbox entries and idempotency records — except what an active
//! appointment, an order waiting for review or a valid receipt still needs: those are kept,
//! the erasure stays pending, and the sweep erases them once they have ended. Bans and no-show
//! counts stay: they are kept under the account id and the ID number's keyed hash, with no name
//! or number, so erasing is no way out of them.

mod journal;
mod store;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use self::journal::Journal;
pub use self::store::{ErasureOf, ErasureStore};
use crate::auth::{AuthUser, Authenticator, UserStore};
use crate::booking::BookingStore;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::kf::{erase_conversation, ConversationStore};
use crate::notify::NotifyStore;
use crate::receipts::{erase_user_orders, NeededUntil, ReceiptStore};
use crate::store::{BlobStore, KvStore, StoreError};

/// `[erasure]`: erasures on request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErasureSettings {
    /// How often the sweep erases what erasures kept and has since ended.
    pub sweep_interval_secs: u64,
}

impl Default for ErasureSettings {
    fn default() -> Self {
        ErasureSettings {
            sweep_interval_secs: 60,
        }
    }
}

/// What an erasure erased, and what it kept until when.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub erased_at: DateTime<Utc>,
    pub erased: Erased,
    pub kept: Vec<Kept>,
    /// What stays by design, without the person's details.
    pub retained: &'static [&'static str],
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Erased {
    /// The account: openid, unionid, phone number.
    pub account: bool,
    pub appointments: usize,
    pub receipt_orders: usize,
    pub photos: usize,
    pub conversation: bool,
    pub subscriptions: usize,
    pub notifications: usize,
    pub idempotency_records: usize,
}

impl Erased {
    fn anything(&self) -> bool {
        self.account
            || self.conversation
            || self.appointments
                + self.receipt_orders
                + self.photos
                + self.subscriptions
                + self.notifications
                + self.idempotency_records
                > 0
    }
}

/// Something an erasure kept because it still serves the user, and until when.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    /// `appointment` or `receipt_order`.
    pub kind: &'static str,
    pub id: String,
    /// `appointment_ends`, `review` or `receipt_expires`.
    pub until: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// No-show counts and bans, under the account id and the ID number's keyed hash.
const RETAINED: &[&str] = &["bans", "no_show_counts"];

/// The stores an erasure reaches into, and where it is journaled.
pub struct Erasure {
    users: Arc<dyn UserStore>,
    booking: Arc<dyn BookingStore>,
    receipts: Arc<dyn ReceiptStore>,
    blobs: Arc<dyn BlobStore>,
    conversations: Arc<dyn ConversationStore>,
    notify: Arc<dyn NotifyStore>,
    pending: Arc<dyn ErasureStore>,
    /// Scrubbed after an erasure, so no deleted byte stays in the store's files.
    files: Arc<dyn KvStore>,
    journal: Journal,
    settings: ErasureSettings,
    clock: Arc<Clock>,
    /// Users whose erasure a request of this instance is applying. The erasure is pending
    /// from before it is applied (so a crash mid-way is finished by the sweep); a sweep that
    /// applied it meanwhile erased part of it itself, and the request's answer then said
    /// `"account": false` and lower counts. The sweep leaves these to their request.
    applying: Mutex<HashSet<String>>,
}

/// `user_id` marked as being erased by its request, until dropped.
struct Applying<'a> {
    users: &'a Mutex<HashSet<String>>,
    user_id: &'a str,
}

impl<'a> Applying<'a> {
    fn mark(users: &'a Mutex<HashSet<String>>, user_id: &'a str) -> Self {
        users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user_id.to_owned());
        Applying { users, user_id }
    }
}

impl Drop for Applying<'_> {
    fn drop(&mut self) {
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(self.user_id);
    }
}

impl Erasure {
    pub fn over<S>(
        store: Arc<S>,
        journal: Journal,
        settings: ErasureSettings,
        clock: Arc<Clock>,
    ) -> Self
    where
        S: UserStore
            + BookingStore
            + ReceiptStore
            + BlobStore
            + ConversationStore
            + NotifyStore
            + ErasureStore
            + KvStore
            + 'static,
    {
        Erasure {
            users: store.clone(),
            booking: store.clone(),
            receipts: store.clone(),
            blobs: store.clone(),
            conversations: store.clone(),
            notify: store.clone(),
            pending: store.clone(),
            files: store,
            journal,
            settings,
            clock,
            applying: Mutex::default(),
        }
    }

    /// Erases `user_id`'s data now: journaled first, pending until nothing is kept.
    pub async fn erase(&self, user_id: &str) -> Result<Summary, ApiError> {
        // Marked before it is pending: a sweep that finds it pending also finds it marked.
        let _applying = Applying::mark(&self.applying, user_id);
        let erasure = ErasureOf {
            user_id: user_id.to_owned(),
            at: self.clock.now(),
        };
        self.journal
            .append(&erasure)
            .await
            .map_err(|e| ApiError::Internal(format!("cannot journal the erasure: {e}")))?;
        self.pending.add_pending_erasure(&erasure).await?;
        Ok(self.apply(&erasure).await?)
    }

    /// Applies the journal's erasures made at `since` or later again (after a restore), each
    /// pending until nothing is kept; how many.
    pub async fn reapply_since(&self, since: DateTime<Utc>) -> anyhow::Result<usize> {
        let erasures = self.journal.since(since)?;
        for erasure in &erasures {
            self.pending.add_pending_erasure(erasure).await?;
            self.apply(erasure).await?;
        }
        Ok(erasures.len())
    }

    /// Erases what `erasure.user_id` had stored by `erasure.at` and no longer needs; the
    /// erasure stays pending while something is kept. Applying it again (the sweep, a
    /// restore) erases what has ended since and touches nothing stored after it.
    pub async fn apply(&self, erasure: &ErasureOf) -> Result<Summary, StoreError> {
        let ErasureOf { user_id, at } = erasure;
        let now = self.clock.now();
        let account = self.users.user_by_id(user_id).await?;
        // An account created after the erasure is a new one (the same person logging in
        // again): it and what it stores are not this erasure's.
        let newer_account = account.as_ref().is_some_and(|u| u.created_at > *at);
        let appointments = self.booking.erase_ended_appointments(user_id, *at).await?;
        let orders = erase_user_orders(&*self.receipts, &*self.blobs, user_id, *at, now).await?;
        let mut erased = Erased {
            appointments: appointments.erased,
            idempotency_records: appointments.idempotency_records,
            receipt_orders: orders.erased,
            photos: orders.photos,
            ..Erased::default()
        };
        if !newer_account {
            let openid = account.as_ref().map(|u| u.openid.as_str());
            if let Some(openid) = openid {
                erased.conversation = erase_conversation(&*self.conversations, openid).await?;
            }
            // Again on every sweep: what is kept may still notify the user (a review result).
            let notices = self.notify.erase_recipient(user_id, openid).await?;
            erased.subscriptions = notices.subscriptions;
            erased.notifications = notices.outbox_entries;
            // The account last: the steps before find the openid in it.
            erased.account = self.users.delete_user(user_id).await?;
        }
        let kept: Vec<Kept> = appointments
            .running
            .into_iter()
            .map(|id| Kept {
                kind: "appointment",
                id,
                until: "appointment_ends",
                expires_at: None,
            })
            .chain(orders.kept.into_iter().map(|(id, until)| Kept {
                kind: "receipt_order",
                id,
                until: match until {
                    NeededUntil::Reviewed => "review",
                    NeededUntil::Expires(_) => "receipt_expires",
                },
                expires_at: match until {
                    NeededUntil::Reviewed => None,
                    NeededUntil::Expires(at) => Some(at),
                },
            }))
            .collect();
        if kept.is_empty() {
            self.pending.remove_pending_erasure(erasure).await?;
        }
        if erased.anything() {
            self.files.scrub(true).await?;
        }
        Ok(Summary {
            erased_at: *at,
            erased,
            kept,
            retained: RETAINED,
        })
    }

    /// Applies every pending erasure again: what they kept and has ended since goes.
    pub async fn sweep(&self) -> Result<(), StoreError> {
        for erasure in self.pending.pending_erasures().await? {
            let applying = (self.applying.lock())
                .unwrap_or_else(|e| e.into_inner())
                .contains(&erasure.user_id);
            if applying {
                // Its request answers for it; a later round finishes what it kept.
                continue;
            }
            let summary = self.apply(&erasure).await?;
            if summary.kept.is_empty() {
                tracing::info!(user = %erasure.user_id, "erasure finished: what it kept has ended");
            }
        }
        Ok(())
    }
}

/// Runs the erasure sweep every `erasure.sweep_interval_secs` for the life of the server.
pub fn spawn_sweeper(erasure: web::Data<Erasure>) {
    let period = Duration::from_secs(erasure.settings.sweep_interval_secs);
    crate::clock::repeat(period, "erasure sweep", move || {
        let erasure = erasure.clone();
        async move { erasure.sweep().await }
    });
}

/// `DELETE /api/v1/me`: the tokens first (nothing more can be stored under them), then the
/// erasure; answers what was erased and what is kept until when.
pub async fn erase_me(
    user: AuthUser,
    authenticator: web::Data<Authenticator>,
    erasure: web::Data<Erasure>,
) -> Result<HttpResponse, ApiError> {
    authenticator.revoke_user(&user.id).await?;
    let summary = erasure.erase(&user.id).await?;
    tracing::info!(
        user = %user.id,
        kept = summary.kept.len(),
        "personal data erased on request"
    );
    Ok(HttpResponse::Ok().json(summary))
}
