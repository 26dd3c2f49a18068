//! 户政业务 appointments: halls, business types, slots, booking, and the card's progress.

pub mod applicant;
pub mod appointment;
pub mod catalog;
mod day_lists;
mod form;
mod handlers;
mod notices;
pub mod rules;
pub mod schedule;
mod service;
pub mod store;
mod sweep;
mod view;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub use handlers::routes;
pub use store::BookingStore;
pub use sweep::spawn_no_show_sweeper;
use sweep::DueWatch;

use crate::clock::{china, Clock};
use crate::error::{ApiError, ErrorCode};
use crate::id_hash::IdHasher;
use crate::receipts::ReceiptStore;
use appointment::IllegalTransition;
use catalog::{Catalog, ServiceKind};
use day_lists::DayLists;
use store::{AttemptLimits, BanScope, NoShowPolicy, Refusal};

/// `[booking]` in the configuration file, `BANZHENG_BOOKING__*` in the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BookingSettings {
    /// Replaces the built-in `server/data/halls.toml`.
    pub halls_file: Option<PathBuf>,
    /// Replaces the built-in `server/data/holidays.toml`.
    pub holidays_file: Option<PathBuf>,
    /// Seats per slot, unless the hall's entry says otherwise.
    pub slot_capacity: u32,
    /// Bookable from tomorrow up to this many days from today.
    pub days_ahead: u32,
    pub max_active_per_user: u32,
    /// Cancelling is allowed until this long before the start.
    pub cancel_before_minutes: u32,
    /// Not checked in this long after the slot's end: a no-show.
    pub no_show_grace_minutes: u32,
    /// This many no-shows of one account for one ID number within the window bar the account
    /// from booking for that number for `ban_days`.
    pub no_show_limit: u32,
    /// This many no-shows of one account within the window, whoever they were for, bar the
    /// account from booking for `ban_days`.
    pub account_no_show_limit: u32,
    pub no_show_window_days: u32,
    pub ban_days: u32,
    pub idempotency_hours: u32,
    pub sweep_interval_secs: u64,
    /// Booking attempts one account may make per window (idempotent replays do not count).
    pub attempts_per_account: u32,
    /// Booking attempts one account may make for one ID number per window.
    pub attempts_per_applicant: u32,
    pub attempt_window_secs: u64,
    /// How long a hall's rendered slot list may be served again (0: read the store each time).
    pub slot_list_cache_ms: u64,
    /// Key of the HMAC under which ID numbers are stored; development: a file in the data dir.
    pub id_hash_key: Option<SecretString>,
}

impl Default for BookingSettings {
    fn default() -> Self {
        BookingSettings {
            halls_file: None,
            holidays_file: None,
            slot_capacity: 6,
            days_ahead: 7,
            max_active_per_user: 3,
            cancel_before_minutes: 120,
            no_show_grace_minutes: 30,
            no_show_limit: 2,
            account_no_show_limit: 4,
            no_show_window_days: 30,
            ban_days: 90,
            idempotency_hours: 24,
            sweep_interval_secs: 60,
            attempts_per_account: 300,
            attempts_per_applicant: 30,
            attempt_window_secs: 600,
            slot_list_cache_ms: 1000,
            id_hash_key: None,
        }
    }
}

const DAY: u64 = 24 * 3600;

impl BookingSettings {
    pub fn no_show_policy(&self) -> NoShowPolicy {
        NoShowPolicy {
            window: Duration::from_secs(u64::from(self.no_show_window_days) * DAY),
            limit: self.no_show_limit.max(1),
            account_limit: self.account_no_show_limit.max(1),
            ban: Duration::from_secs(u64::from(self.ban_days) * DAY),
        }
    }

    pub fn attempt_limits(&self) -> AttemptLimits {
        AttemptLimits {
            per_account: self.attempts_per_account,
            per_applicant: self.attempts_per_applicant,
            window: Duration::from_secs(self.attempt_window_secs.max(1)),
        }
    }

    /// How long an `Idempotency-Key`'s answer is kept.
    pub fn idempotency_ttl(&self) -> Duration {
        Duration::from_secs(u64::from(self.idempotency_hours) * 3600)
    }
}

/// Booking, built once at start-up: the halls and rules, the appointments' store, and the
/// photo receipts a booking names.
pub struct Booking {
    pub settings: BookingSettings,
    pub catalog: Catalog,
    pub hasher: IdHasher,
    pub day_lists: DayLists,
    due_watch: DueWatch,
    store: Arc<dyn BookingStore>,
    /// Checked at booking, spent at check-in.
    receipts: Arc<dyn ReceiptStore>,
    clock: Arc<Clock>,
}

impl Booking {
    /// `data_dir` keeps the development ID-hash key when none is configured.
    pub fn from_settings(
        settings: &BookingSettings,
        data_dir: &Path,
        store: Arc<dyn BookingStore>,
        receipts: Arc<dyn ReceiptStore>,
        clock: Arc<Clock>,
    ) -> anyhow::Result<Self> {
        let booking = settings.clone();
        let catalog = Catalog::load(
            booking.halls_file.as_deref(),
            booking.holidays_file.as_deref(),
            booking.slot_capacity,
        )?;
        let hasher = IdHasher::configured(booking.id_hash_key.as_ref(), data_dir)?;
        // Every list the handler keeps: the catalog's halls and services, the window's days
        // (tomorrow to `days_ahead`, and today), twice for the turn of the day.
        let lists =
            catalog.halls().len() * (booking.days_ahead as usize + 1) * ServiceKind::ALL.len() * 2;
        Ok(Booking {
            day_lists: DayLists::new(Duration::from_millis(booking.slot_list_cache_ms), lists),
            due_watch: DueWatch::default(),
            settings: booking,
            catalog,
            hasher,
            store,
            receipts,
            clock,
        })
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::SlotFull => ErrorCode::SlotFull.into(),
            Refusal::AlreadyBooked => ErrorCode::AlreadyBooked.into(),
            Refusal::TooManyActive => ErrorCode::TooManyActive.into(),
            Refusal::Banned { until, scope } => {
                let until = until.with_timezone(&china()).format("%Y年%m月%d日");
                ErrorCode::Banned.with(match scope {
                    BanScope::Applicant => {
                        format!("本账号为该申请人预约的业务近期多次未到场，{until}前不能为其预约")
                    }
                    BanScope::Account => {
                        format!("本账号近期多次预约未到场，{until}前不能预约")
                    }
                })
            }
        }
    }
}

impl From<IllegalTransition> for ApiError {
    fn from(e: IllegalTransition) -> Self {
        ErrorCode::IllegalTransition.with(format!(
            "预约当前为“{}”，不能变更为“{}”",
            e.from.label(),
            e.to.label()
        ))
    }
}
