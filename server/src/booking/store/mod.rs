//! What booking asks of the store. The rules are `rules`' plans; each backend carries a plan
//! out atomically: one IMMEDIATE transaction on SQLite, one run of the plan's compiled script on
//! one Redis; on a Redis Cluster a short sequence of such runs, one per hash tag, that a
//! crash between them leaves settleable (`redis`).

mod redis;
mod sqlite;

#[cfg(feature = "fail-points")]
pub use self::redis::fail_points;
pub use self::redis::{hall_tag, Step};

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::appointment::{Appointment, AppointmentCode, Status};
use super::rules::{self, Plan, Stop};
use crate::notify::store::Notices;
use crate::store::StoreError;

/// A booking to write if every rule allows it.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub appointment: Appointment,
    /// Seats of the slot.
    pub capacity: u32,
    /// Active appointments one user may hold.
    pub max_active: u32,
    /// Booking attempts one account, and one account for one ID number, may make.
    pub attempts: AttemptLimits,
    /// When an appointment not checked in by then becomes a no-show.
    pub no_show_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub idempotency: Option<IdempotencyKey>,
    /// Written with the appointment (its confirmation and reminder), and only with it.
    pub notices: Notices,
    /// The caller, when its token's revocation and its consent were not checked before: the
    /// booking checks them in the same step (one round trip on one Redis).
    pub caller: Option<Caller>,
}

/// What a booking checks of its caller: its token (`jti`, issued at `issued_at_ms`) is not
/// revoked, and the account accepted the privacy notice `notice_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub jti: String,
    pub issued_at_ms: i64,
    pub notice_version: String,
}

/// The client's `Idempotency-Key` with a digest of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub body_hash: String,
    pub ttl: Duration,
}

/// How many booking attempts (every call of the booking plan that is not an idempotent
/// replay, whatever its answer) one account, and one account for one ID number, may make per
/// fixed window of the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimits {
    pub per_account: u32,
    pub per_applicant: u32,
    pub window: Duration,
}

impl AttemptLimits {
    /// The end (Unix ms) of the window `now` falls in: windows are aligned to the epoch, so
    /// every instance and both backends count in the same ones.
    pub fn window_ends(&self, now: DateTime<Utc>) -> i64 {
        let window = (self.window.as_millis() as i64).max(1);
        (now.timestamp_millis().div_euclid(window) + 1) * window
    }
}

/// Whose no-shows a ban counts: the account's for one ID number, or the account's for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanScope {
    /// This account may not book for this ID number.
    Applicant,
    /// This account may not book at all.
    Account,
}

/// A rule that said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    SlotFull,
    /// The account already has an active appointment for the applicant.
    AlreadyBooked,
    /// The user already holds the maximum of active appointments.
    TooManyActive,
    /// The account missed too many appointments recently, for this applicant or in all.
    Banned {
        until: DateTime<Utc>,
        scope: BanScope,
    },
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::SlotFull => "SLOT_FULL",
            Refusal::AlreadyBooked => "ALREADY_BOOKED",
            Refusal::TooManyActive => "TOO_MANY_ACTIVE",
            Refusal::Banned {
                scope: BanScope::Applicant,
                ..
            } => "BANNED",
            Refusal::Banned {
                scope: BanScope::Account,
                ..
            } => "ACCOUNT_BANNED",
        }
    }

    /// How a refusal is remembered under an idempotency key.
    pub fn encode(self) -> String {
        match self {
            Refusal::Banned { until, .. } => {
                format!("{}:{}", self.code(), until.timestamp_millis())
            }
            other => other.code().into(),
        }
    }

    pub fn decode(text: &str) -> Option<Self> {
        Some(match text {
            "SLOT_FULL" => Refusal::SlotFull,
            "ALREADY_BOOKED" => Refusal::AlreadyBooked,
            "TOO_MANY_ACTIVE" => Refusal::TooManyActive,
            other => {
                let (code, until) = other.split_once(':')?;
                let scope = match code {
                    "BANNED" => BanScope::Applicant,
                    "ACCOUNT_BANNED" => BanScope::Account,
                    _ => return None,
                };
                Refusal::Banned {
                    until: DateTime::from_timestamp_millis(until.parse().ok()?)?,
                    scope,
                }
            }
        })
    }
}

/// What an idempotency record says the first request got.
fn decode_outcome(outcome: &str) -> Result<Result<String, Refusal>, StoreError> {
    match outcome.strip_prefix("OK:") {
        Some(id) => Ok(Ok(id.to_owned())),
        None => Refusal::decode(outcome)
            .map(Err)
            .ok_or_else(|| StoreError::Backend(format!("bad idempotency outcome `{outcome}`"))),
    }
}

/// What became of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Done,
    Stopped(Stop),
    /// The same key came with the same request before: the id it booked, or its refusal.
    Replayed(Result<String, Refusal>),
    /// The same key came with another request.
    IdempotencyMismatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookOutcome {
    Booked(Box<Appointment>),
    Refused(Refusal),
    /// The same key came with the same request before: the id it booked, or its refusal.
    Replayed(Result<String, Refusal>),
    /// The same key came with another request.
    IdempotencyMismatch,
    /// The generated code exists already; generate another and retry.
    CodeTaken,
    /// Past an attempt limit until this instant (not remembered under an idempotency key).
    Throttled {
        until: DateTime<Utc>,
    },
    /// The caller's token was revoked, or the account has not accepted the privacy notice.
    CallerRefused(Stop),
}

/// 2 no-shows in 30 days bar the account from booking for that ID number for 90 days, and 4
/// of the account's no-shows, whoever for, bar the account (configurable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoShowPolicy {
    pub window: Duration,
    /// No-shows of one account for one ID number that bar it from booking for that number.
    pub limit: u32,
    /// No-shows of one account, for any ID numbers, that bar it from booking.
    pub account_limit: u32,
    pub ban: Duration,
}

impl NoShowPolicy {
    /// No-shows missed after this instant (Unix ms) count at `now`.
    pub fn counted_after(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp_millis() - self.window.as_millis() as i64
    }

    /// A ban earned at `now` lasts until this instant (Unix ms).
    pub fn ban_until(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp_millis() + self.ban.as_millis() as i64
    }
}

/// What [`BookingStore::migrate_single_tag_layout`] moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Appointments, each with what finds it (id, code, the user's list) and, while it holds
    /// its place, the holds and its no-show watch.
    pub appointments: usize,
    /// Seat counts, one key per hall and day.
    pub seat_days: usize,
    /// Bans, no-shows, attempt counters and `Idempotency-Key` records, each with its expiry.
    pub person_keys: usize,
    /// Pending reminders moved to their hall's outbox (a cancellation withdraws them there).
    pub reminders: usize,
    /// Keys under `{booking}` of no kind the migration knows: left in place.
    pub unknown: usize,
}

impl Migrated {
    pub fn moved_any(&self) -> bool {
        self.appointments + self.seat_days + self.person_keys + self.reminders > 0
    }
}

impl std::ops::Add for Migrated {
    type Output = Migrated;
    fn add(self, other: Migrated) -> Migrated {
        Migrated {
            appointments: self.appointments + other.appointments,
            seat_days: self.seat_days + other.seat_days,
            person_keys: self.person_keys + other.person_keys,
            reminders: self.reminders + other.reminders,
            unknown: self.unknown + other.unknown,
        }
    }
}

#[async_trait]
pub trait BookingStore: Send + Sync {
    /// Seats taken per slot start (`0930`) at a hall on a day.
    async fn seats_taken(
        &self,
        hall: &str,
        date: NaiveDate,
    ) -> Result<HashMap<String, u32>, StoreError>;

    /// Carries out a plan of the booking rules (`rules`) atomically: the guards about the
    /// caller, the idempotency record, then the other guards in order, then, if all held, the
    /// effects.
    async fn apply(&self, plan: Plan) -> Result<Applied, StoreError>;

    /// Whether plans may check the caller ([`rules::Guard::is_about_the_caller`]) in their step.
    fn checks_callers(&self) -> bool {
        true
    }

    /// Books if every rule allows it ([`rules::book`]).
    async fn book(&self, booking: NewBooking) -> Result<BookOutcome, StoreError> {
        Ok(match self.apply(rules::book(&booking)).await? {
            Applied::Done => BookOutcome::Booked(Box::new(booking.appointment)),
            Applied::Stopped(Stop::Refused(refusal)) => BookOutcome::Refused(refusal),
            Applied::Stopped(Stop::CodeTaken) => BookOutcome::CodeTaken,
            Applied::Stopped(Stop::Throttled { until }) => BookOutcome::Throttled { until },
            Applied::Stopped(stop @ (Stop::Unauthorized | Stop::ConsentRequired)) => {
                BookOutcome::CallerRefused(stop)
            }
            Applied::Stopped(Stop::Changed | Stop::NotLifted) => {
                return Err(StoreError::Backend(
                    "a booking found a status changed".into(),
                ))
            }
            Applied::Replayed(outcome) => BookOutcome::Replayed(outcome),
            Applied::IdempotencyMismatch => BookOutcome::IdempotencyMismatch,
        })
    }

    async fn appointment(&self, id: &str) -> Result<Option<Appointment>, StoreError>;

    async fn appointment_by_code(
        &self,
        code: &AppointmentCode,
    ) -> Result<Option<Appointment>, StoreError>;

    /// A user's appointments, newest first.
    async fn user_appointments(&self, user_id: &str) -> Result<Vec<Appointment>, StoreError>;

    /// Stores `next` if the appointment is still in `from` (false when someone else changed
    /// it first), with what the change does ([`rules::transition`]) and its `notices`.
    async fn transition(
        &self,
        from: Status,
        next: &Appointment,
        notices: &Notices,
        policy: NoShowPolicy,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let plan = rules::transition(from, next, notices, policy, now);
        Ok(match self.apply(plan).await? {
            Applied::Done => true,
            Applied::Stopped(Stop::Changed) => false,
            other => return Err(StoreError::Backend(format!("a transition got {other:?}"))),
        })
    }

    /// Stores `anonymised` (the appointment without its people, `Appointment::anonymised`)
    /// if the stored one is still the copy it was made from; false when it changed meanwhile
    /// (the next sweep looks again).
    async fn anonymise(&self, anonymised: &Appointment) -> Result<bool, StoreError> {
        Ok(match self.apply(rules::anonymise(anonymised)).await? {
            Applied::Done => true,
            Applied::Stopped(Stop::Changed) => false,
            other => return Err(StoreError::Backend(format!("anonymising got {other:?}"))),
        })
    }

    /// Appointments created before `created_before` in a state they never leave (cancelled,
    /// no-show, collected, shipped) whose details are not removed yet: what the retention
    /// sweep looks at (it judges `Appointment::ended_at` itself).
    async fn ended_appointments(
        &self,
        created_before: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, StoreError>;

    /// Settles what a crash left between the steps of a plan (Redis Cluster): bookings whose
    /// reservation expired by `now` (each completes if its hall took the seat, else is voided
    /// and its person's places freed) and the person steps status changes still owe (run);
    /// how many. Other backends carry a plan out in one step: none.
    async fn settle_interrupted(&self, _now: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(0)
    }

    /// Moves what a Redis store kept in the layout before issue 16 (every booking key under
    /// `{booking}`) to the per-hall layout; what it moved. Runs at every start (idempotent,
    /// safe to interrupt, one SCAN when nothing is left); other backends have nothing to move.
    async fn migrate_single_tag_layout(&self) -> Result<Migrated, StoreError> {
        Ok(Migrated::default())
    }

    /// Deletes the `Idempotency-Key` records that expired by `now`; how many. Redis expires
    /// them itself (each has its TTL), so there it deletes none.
    async fn delete_expired_idempotency(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Records `lifted` (a no-show whose `ban_lift` is now set) if it is still a no-show
    /// without one: its no-show stops counting and the bans it helped earn are lifted where
    /// the rest no longer reach their limits ([`rules::lift_ban`]). False when it changed.
    async fn lift_ban(
        &self,
        lifted: &Appointment,
        policy: NoShowPolicy,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(
            match self.apply(rules::lift_ban(lifted, policy, now)).await? {
                Applied::Done => true,
                Applied::Stopped(Stop::Changed | Stop::NotLifted) => false,
                other => return Err(StoreError::Backend(format!("a ban lift got {other:?}"))),
            },
        )
    }

    /// Up to `limit` booked appointments whose no-show time has come, and when the next one
    /// is due.
    async fn due_no_shows(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<DueNoShows, StoreError>;
    /// Erases the appointments of `user_id` created by `before` that have ended (their
    /// no-shows and bans stay, under the account and the ID number's keyed hash) and the
    /// user's `Idempotency-Key` records; the appointments still running are kept.
    async fn erase_ended_appointments(
        &self,
        user_id: &str,
        before: DateTime<Utc>,
    ) -> Result<ErasedAppointments, StoreError>;

    /// Drops the `Idempotency-Key` records whose body digest is not keyed (kept before issue
    /// 15: an offline search of the few unknown digits of the body's ID number); how many.
    /// Their requests, if retried, book afresh under the rules (one active booking a person).
    async fn forget_unkeyed_digests(&self) -> Result<usize, StoreError>;

    /// Moves what was kept per ID number alone before issue 15 (a hold, no-shows, a ban) to
    /// the accounts whose appointments it came from; how many ID numbers had some. SQLite did
    /// it in migration 1511; on Redis it runs at every start (idempotent, fast when nothing is
    /// left).
    async fn carry_person_rules_to_accounts(
        &self,
        _policy: NoShowPolicy,
    ) -> Result<usize, StoreError> {
        Ok(0)
    }
}

/// What [`BookingStore::erase_ended_appointments`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasedAppointments {
    pub erased: usize,
    pub idempotency_records: usize,
    /// Still running (their ids): kept until they end.
    pub running: Vec<String>,
}

impl ErasedAppointments {
    /// Sorts `appointments` of the user into the ended (to erase) and the running.
    fn sort(appointments: Vec<Appointment>, before: DateTime<Utc>) -> (Vec<Appointment>, Self) {
        let (ended, running): (Vec<_>, Vec<_>) = appointments
            .into_iter()
            .filter(|a| a.created_at <= before)
            .partition(|a| a.status.has_ended());
        let erased = ErasedAppointments {
            erased: ended.len(),
            idempotency_records: 0,
            running: running.into_iter().map(|a| a.id).collect(),
        };
        (ended, erased)
    }
}

/// Booked appointments whose no-show time has come, earliest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueNoShows {
    pub ids: Vec<String>,
    /// The earliest no-show time of the booked appointments not in `ids`: after `now`, or at
    /// `now` or before when more than `limit` were due. `None`: there are no others.
    pub next_at: Option<DateTime<Utc>>,
}

impl DueNoShows {
    /// Splits the first `limit + 1` booked appointments by no-show time (ms), earliest first.
    fn split(mut earliest: Vec<(String, i64)>, now: DateTime<Utc>, limit: usize) -> Self {
        let due = earliest
            .iter()
            .take(limit)
            .take_while(|(_, at)| *at <= now.timestamp_millis())
            .count();
        let rest = earliest.split_off(due);
        DueNoShows {
            ids: earliest.into_iter().map(|(id, _)| id).collect(),
            next_at: rest
                .first()
                .and_then(|(_, at)| DateTime::from_timestamp_millis(*at)),
        }
    }
}

fn to_json(appointment: &Appointment) -> Result<String, StoreError> {
    serde_json::to_string(appointment).map_err(|e| StoreError::Backend(e.to_string()))
}

fn from_json(text: &str) -> Result<Appointment, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("stored appointment unreadable: {e}")))
}
