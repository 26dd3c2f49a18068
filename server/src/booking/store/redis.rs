//! Booking on Redis, spread per hall (issue 16). Each key carries the tag of what it belongs
//! to, so a Redis Cluster puts different halls (and different people) on different masters:
//!
//! - `{booking-hall:<hall>}`: the appointments (`appt:<id>`), the seats (`seats:<day>`), the
//!   booked ones by no-show time (`due`), the void marks of bookings that recovery gave up
//!   (`void:<id>`) and the hall's notification outbox;
//! - `{booking-user:<user>}`: the account's holds (`active`), its appointments (`all`), bans,
//!   no-shows, attempt counters, `Idempotency-Key` records, the per-ID-number ones
//!   (`applicant:<id hash>:…`, see `rules::ApplicantOf`) and the reservations of bookings in
//!   progress (`resv`);
//! - `{booking-code:<code>}` (the code's claim) and `{booking-id:<id>}` (the appointment's
//!   hall): what finds an appointment by code or id without knowing its hall;
//! - `{booking}:halls`: the halls that have keys (the no-show sweep reads each hall's `due`).
//!
//! On one Redis a plan runs as one script over all of them (one round trip). On a cluster a
//! booking runs as steps, each one script on one tag: the person's guards and a reservation
//! with expiry, the code's claim (with the id's hall alongside), the hall's seat and appointment, then the reservation turned
//! into the hold. A refusal in a later step releases the reservation; a crash between steps is
//! settled by [`BookingStore::settle_interrupted`] (the sweep) or when the person's next
//! booking trips over what it left. Status changes run the hall's step (the appointment is the
//! truth, and the person's step it owes is kept in the hall's `owed`) and then the person's.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::{try_join, try_join_all};
use futures_util::{StreamExt, TryStreamExt};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{
    decode_outcome, from_json, to_json, Applied, BookingStore, DueNoShows, ErasedAppointments,
    Migrated, NoShowPolicy, Refusal,
};
use crate::auth::token::{revoked_key, user_revoked_key};
use crate::booking::appointment::{Appointment, AppointmentCode, Status};
use crate::booking::rules::{ApplicantOf, Attempts, Effect, Guard, Plan, Stop};
use crate::booking::schedule::{day_key, SlotId};
use crate::id_hash::DIGEST_TAG;
use crate::notify::reminder_key;
use crate::notify::store::PLAN;
use crate::store::plan::{window_counter, Ran, RedisPlan, Refuse};
use crate::store::{RedisStore, StoreError};

/// The tag of the halls' registry, and of every booking key before issue 16.
const TAG: &str = "booking";

/// How long a booking's reservation holds the person's place before recovery may settle it:
/// far beyond the few round trips of a booking, retries through a failover included.
const RESERVATION_MS: i64 = 30_000;

/// A void mark outlives any step of the booking it voids by far.
const VOID_MS: u64 = 86_400_000;

/// What a status change's hall step answers while an earlier change of the appointment still
/// owes its person step (which must run first: a lift's forgiveness after the no-show's count).
const OWED: &str = "OWED";

/// What a hall step answers when recovery voided the booking first.
const VOIDED: &str = "VOIDED";

/// The tag of a hall's booking keys (its appointments, seats, no-show watch and outbox).
pub fn hall_tag(hall: &str) -> String {
    format!("booking-hall:{hall}")
}

fn user_tag(user_id: &str) -> String {
    format!("booking-user:{user_id}")
}

/// The booking keys of one store.
#[derive(Clone, Copy)]
struct Keys<'a>(&'a RedisStore);

impl Keys<'_> {
    fn appointment(&self, hall: &str, id: &str) -> String {
        self.0.key(&hall_tag(hall), &format!("appt:{id}"))
    }
    fn void(&self, hall: &str, id: &str) -> String {
        self.0.key(&hall_tag(hall), &format!("void:{id}"))
    }
    fn seats(&self, hall: &str, day: &str) -> String {
        self.0.key(&hall_tag(hall), &format!("seats:{day}"))
    }
    fn slot(&self, slot: &SlotId) -> String {
        self.seats(&slot.hall, &slot.date_key())
    }
    fn due(&self, hall: &str) -> String {
        self.0.key(&hall_tag(hall), "due")
    }
    fn owed(&self, hall: &str) -> String {
        self.0.key(&hall_tag(hall), "owed")
    }
    fn code(&self, code: &str) -> String {
        self.0.key(&format!("booking-code:{code}"), "id")
    }
    fn hall_of(&self, id: &str) -> String {
        self.0.key(&format!("booking-id:{id}"), "hall")
    }
    fn halls(&self) -> String {
        self.0.key(TAG, "halls")
    }
    fn user(&self, user_id: &str, what: &str) -> String {
        self.0.key(&user_tag(user_id), what)
    }
    fn applicant(&self, applicant: &ApplicantOf, what: &str) -> String {
        let ApplicantOf { user_id, id_hash } = applicant;
        self.user(user_id, &format!("applicant:{id_hash}:{what}"))
    }
    fn attempts(&self, who: &Attempts) -> String {
        match who {
            Attempts::Account { user_id } => self.user(user_id, "attempts"),
            Attempts::Applicant(applicant) => self.applicant(applicant, "attempts"),
        }
    }
    fn idempotency(&self, user_id: &str, key: &str) -> String {
        self.user(user_id, &format!("idem:{key}"))
    }
    fn reservations(&self, user_id: &str) -> String {
        self.user(user_id, "resv")
    }
    /// A key of the layout before issue 16 (all under `{booking}`).
    fn old(&self, rest: &str) -> String {
        self.0.key(TAG, rest)
    }
}

/// The steps of a plan on a cluster, in the order they run; on one Redis all are one script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The person's guards and the booking's reservation (`{booking-user:…}`).
    Person,
    /// The code's claim; at the same time, on the id's tag, the id's hall (what finds the
    /// appointment by id: a plain write, harmless alone).
    Code,
    /// The hall's guards and changes: seat, appointment, no-show watch, outbox.
    Hall,
    /// The person's side of what the hall step did: the reservation becomes the hold; a
    /// status change's release, no-show count or forgiveness.
    Finish,
}

const STEPS: [Step; 4] = [Step::Person, Step::Code, Step::Hall, Step::Finish];

struct Steps {
    split: bool,
    plans: [RedisPlan; 4],
    /// The id's hall, written alongside the code's step.
    index: RedisPlan,
    /// A status change's person step as its hall's step promised it (see [`Owed`]).
    promised: Option<Owed>,
}

impl Steps {
    fn new(split: bool) -> Self {
        Steps {
            split,
            plans: std::array::from_fn(|_| RedisPlan::new()),
            index: RedisPlan::new(),
            promised: None,
        }
    }

    /// Where an operation of `step` goes: its step's script, or the one script.
    fn on(&mut self, step: Step) -> &mut RedisPlan {
        let at = if self.split { step as usize } else { 0 };
        &mut self.plans[at]
    }

    /// Where the id's hall goes: alongside the code's step, or the one script.
    fn index(&mut self) -> &mut RedisPlan {
        if self.split {
            &mut self.index
        } else {
            &mut self.plans[0]
        }
    }
}

/// Fail points: a test stops a booking after a step, as a crash would. Compiled only with the
/// `fail-points` feature, which the test crate turns on.
#[cfg(feature = "fail-points")]
pub mod fail_points {
    use std::sync::Mutex;

    use super::Step;
    use crate::store::StoreError;

    /// (store prefix, step): the plans of that store stop after that step.
    static STOPS: Mutex<Vec<(String, Step)>> = Mutex::new(Vec::new());

    /// Plans on the store with key prefix `prefix` stop after `step` until [`clear`].
    pub fn stop_after(prefix: &str, step: Step) {
        let mut stops = STOPS.lock().unwrap_or_else(|e| e.into_inner());
        stops.push((prefix.to_owned(), step));
    }

    /// (store prefix, writes left): the migration of that store stops, as a crash would, when
    /// it has made that many writes.
    static MIGRATION_STOPS: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

    /// Migrations of the store with key prefix `prefix` stop once `writes` more writes are
    /// made: every write after them fails, as after a crash, until [`clear`] or another call.
    pub fn stop_migration_after(prefix: &str, writes: usize) {
        let mut stops = MIGRATION_STOPS.lock().unwrap_or_else(|e| e.into_inner());
        stops.retain(|(p, _)| p != prefix);
        stops.push((prefix.to_owned(), writes));
    }

    pub fn clear(prefix: &str) {
        let mut stops = STOPS.lock().unwrap_or_else(|e| e.into_inner());
        stops.retain(|(p, _)| p != prefix);
        let mut stops = MIGRATION_STOPS.lock().unwrap_or_else(|e| e.into_inner());
        stops.retain(|(p, _)| p != prefix);
    }

    /// Before a migration's write: an error once the writes asked for are made.
    pub(super) fn migration_write(prefix: &str) -> Result<(), StoreError> {
        let mut stops = MIGRATION_STOPS.lock().unwrap_or_else(|e| e.into_inner());
        let Some(at) = stops.iter().position(|(p, _)| p == prefix) else {
            return Ok(());
        };
        if stops[at].1 == 0 {
            // Every write after it fails too (they may run at once), as after a crash.
            return Err(StoreError::Unavailable(
                "fail point in the migration".into(),
            ));
        }
        stops[at].1 -= 1;
        Ok(())
    }

    pub(super) fn check(prefix: &str, step: Step) -> Result<(), StoreError> {
        let stops = STOPS.lock().unwrap_or_else(|e| e.into_inner());
        if stops.iter().any(|(p, s)| p == prefix && *s == step) {
            return Err(StoreError::Unavailable(format!(
                "fail point after {step:?}"
            )));
        }
        Ok(())
    }
}

#[cfg(feature = "fail-points")]
use fail_points::check as fail_point;

#[cfg(not(feature = "fail-points"))]
fn fail_point(_prefix: &str, _step: Step) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(feature = "fail-points")]
use fail_points::migration_write;

#[cfg(not(feature = "fail-points"))]
fn migration_write(_prefix: &str) -> Result<(), StoreError> {
    Ok(())
}

/// A booking in progress on a cluster, kept in its person's `resv` under its id: enough for
/// recovery to finish or release it alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reservation {
    user_id: String,
    id_hash: String,
    hall: String,
    /// The code it claims (freed again when the booking is voided).
    code: String,
    created_ms: i64,
    expires_ms: i64,
    record: Option<Record>,
}

/// Where and for which request the booking's idempotent answer is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    key: String,
    hash: String,
    expires_ms: i64,
}

impl PartialEq for Record {
    /// The same request: the same key and body (whenever it came).
    fn eq(&self, other: &Self) -> bool {
        (&self.key, &self.hash) == (&other.key, &other.hash)
    }
}

impl Reservation {
    fn applicant(&self) -> ApplicantOf {
        ApplicantOf {
            user_id: self.user_id.clone(),
            id_hash: self.id_hash.clone(),
        }
    }

    /// The reservation becomes the hold: the appointment joins the person's list and the
    /// request's answer is kept.
    fn complete(&self, p: &mut RedisPlan, keys: &Keys, id: &str, now_ms: i64) {
        p.hdel(keys.reservations(&self.user_id), id);
        p.zadd(keys.user(&self.user_id, "all"), self.created_ms, id);
        self.remember(p, &crate::booking::rules::booked_outcome(id), now_ms);
    }

    /// The booking did not happen: the person's places are free again, and `refusal` (a rule's
    /// answer) is kept for the request.
    fn release(
        &self,
        p: &mut RedisPlan,
        keys: &Keys,
        id: &str,
        refusal: Option<&str>,
        now_ms: i64,
    ) {
        p.del_if(keys.applicant(&self.applicant(), "active"), id);
        p.srem(keys.user(&self.user_id, "active"), id);
        p.hdel(keys.reservations(&self.user_id), id);
        if let Some(refusal) = refusal {
            self.remember(p, refusal, now_ms);
        }
    }

    fn remember(&self, p: &mut RedisPlan, outcome: &str, now_ms: i64) {
        if let Some(r) = &self.record {
            let ttl = (r.expires_ms - now_ms).max(1) as u64;
            p.remember(r.key.clone(), &r.hash, outcome, r.expires_ms, ttl);
        }
    }
}

impl RedisStore {
    /// The appointments `ids` (those found), each read from its hall.
    async fn docs(&self, ids: &[String]) -> Result<Vec<Appointment>, StoreError> {
        let keys = Keys(self);
        let halls = try_join_all(ids.iter().map(|id| async move {
            let hall: Option<String> = self.conn().get(keys.hall_of(id)).await?;
            Ok::<_, StoreError>(hall.map(|hall| keys.appointment(&hall, id)))
        }))
        .await?;
        let docs = try_join_all(halls.into_iter().flatten().map(|key| async move {
            let doc: Option<String> = self.conn().hget(key, "doc").await?;
            Ok::<_, StoreError>(doc)
        }))
        .await?;
        docs.iter().flatten().map(|doc| from_json(doc)).collect()
    }

    /// Registers `hall` (the no-show sweep's and the notifier's lists) once per process.
    async fn register_hall(&self, hall: &str) -> Result<(), StoreError> {
        static REGISTERED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);
        let keys = Keys(self);
        let seen = format!("{}\n{hall}", keys.halls());
        if REGISTERED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&seen)
        {
            return Ok(());
        }
        self.add_hall(hall).await?;
        REGISTERED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seen);
        Ok(())
    }

    /// Adds `hall` to the no-show sweep's and the notifier's lists (idempotent).
    async fn add_hall(&self, hall: &str) -> Result<(), StoreError> {
        self.add_outbox_tag(&hall_tag(hall)).await?;
        let _: i64 = self.conn().sadd(Keys(self).halls(), hall).await?;
        Ok(())
    }

    async fn halls(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.conn().smembers(Keys(self).halls()).await?)
    }

    /// Runs a step of a plan, if it has anything to do; on a cluster without waiting for
    /// replicas (the sequence waits once at its end, [`Self::replicated_steps`]).
    async fn run_step(&self, plan: RedisPlan) -> Result<Option<Ran>, StoreError> {
        if plan.is_empty() {
            return Ok(None);
        }
        Ok(Some(if self.is_cluster() {
            plan.run_unreplicated(self, &PLAN).await?
        } else {
            plan.run(self, &PLAN).await?
        }))
    }

    /// What a sequence of steps wrote (at `keys`, a key of each step) is on the replicas asked
    /// for before it is acknowledged.
    async fn replicated_steps(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            self.replicated(key).await?;
        }
        Ok(())
    }

    /// Carries `plan` out: on one Redis as one script; on a cluster as its steps, settling
    /// what a refusal in a later step or an earlier crash left.
    async fn apply_steps(&self, plan: &Plan) -> Result<Applied, StoreError> {
        let split = self.is_cluster();
        let booking = booking_of(plan, split, self)?;
        let mut repaired = false;
        loop {
            let Steps {
                plans,
                mut index,
                promised,
                ..
            } = redis_plan(self, plan, split, booking.as_ref())?;
            let written: Vec<String> = plans
                .iter()
                .chain([&index])
                .filter_map(RedisPlan::first_key)
                .collect();
            let mut stopped = None;
            for (step, p) in STEPS.into_iter().zip(plans) {
                if stopped.is_some() {
                    break;
                }
                let ran = if step == Step::Code {
                    let alongside = self.run_step(std::mem::take(&mut index));
                    try_join(self.run_step(p), alongside).await?.0
                } else {
                    self.run_step(p).await?
                };
                match ran {
                    None | Some(Ran::Done(_)) => {}
                    Some(Ran::Replayed(outcome)) => {
                        if split {
                            self.replicated_steps(&written[..written.len().min(1)])
                                .await?;
                        }
                        return Ok(Applied::Replayed(decode_outcome(&outcome)?));
                    }
                    Some(Ran::Mismatch) => return Ok(Applied::IdempotencyMismatch),
                    Some(Ran::Stopped(text)) => stopped = Some((step, text)),
                }
                if stopped.is_none() {
                    fail_point(self.prefix(), step)?;
                }
            }
            let Some((step, text)) = stopped else {
                if let Some(owed) = promised {
                    owed.kept(self).await?;
                }
                if split {
                    self.replicated_steps(&written).await?;
                }
                return Ok(Applied::Done);
            };
            let mut stop = Stop::decode(&text);
            let Some(b) = &booking else {
                if let (Some(owed), false) = (promised.filter(|_| text == OWED), repaired) {
                    // An earlier change stopped before its person step: that step first.
                    repaired = true;
                    Owed::pay(self, &owed.key, &owed.id).await?;
                    continue;
                }
                return stopped_by(stop, &text);
            };
            if step == Step::Person {
                let held = Some(Stop::Refused(Refusal::AlreadyBooked)) == stop
                    || Some(Stop::Refused(Refusal::TooManyActive)) == stop;
                if held {
                    // What a crash left may hold the place: settle it, then look again once.
                    if !repaired {
                        repaired = true;
                        if self.repair_person(&b.reservation, b.now_ms).await? {
                            continue;
                        }
                    }
                    let mut remember = RedisPlan::new();
                    b.reservation.remember(&mut remember, &text, b.now_ms);
                    self.run_step(remember).await?;
                }
                return stopped_by(stop, &text);
            }
            if stop == Some(Stop::CodeTaken) && self.slot_full(plan).await? {
                stop = Some(Stop::Refused(Refusal::SlotFull));
            }
            if step == Step::Hall {
                self.free_code(&b.reservation, &b.id).await?;
            }
            let refusal = stop
                .filter(|_| b.remembered)
                .and_then(|stop| plan.remember.as_ref()?.outcome(Some(stop)));
            let mut release = RedisPlan::new();
            b.reservation.release(
                &mut release,
                &Keys(self),
                &b.id,
                refusal.as_deref(),
                b.now_ms,
            );
            release.run(self, &PLAN).await?;
            if text == VOIDED {
                return Err(StoreError::Unavailable(
                    "the booking took too long and was voided; try again".into(),
                ));
            }
            return stopped_by(stop, &text);
        }
    }

    /// Settles what a crash left on the person booking `wanted`: expired reservations and an
    /// earlier try of the same request (same `Idempotency-Key` and body: its client gave up on
    /// it), each finished or released as its hall decides, and the person steps that status
    /// changes of held appointments still owe (the hold's release, a no-show's count). Whether
    /// anything changed.
    async fn repair_person(&self, wanted: &Reservation, now_ms: i64) -> Result<bool, StoreError> {
        let keys = Keys(self);
        let user_id = &wanted.user_id;
        let reserved = self.reservations_at(&keys.reservations(user_id)).await?;
        let mut repaired = false;
        for (id, reservation) in &reserved {
            let retried = wanted.record.is_some() && reservation.record == wanted.record;
            if reservation.expires_ms <= now_ms || retried {
                self.settle(id, reservation, now_ms).await?;
                repaired = true;
            }
        }
        let held: Vec<String> = self.conn().smembers(keys.user(user_id, "active")).await?;
        let held: Vec<String> = held
            .into_iter()
            .filter(|id| !reserved.contains_key(id))
            .collect();
        for a in self.docs(&held).await? {
            if a.status == Status::Booked {
                continue;
            }
            repaired |= Owed::pay(self, &keys.owed(&a.slot.hall), &a.id).await?;
        }
        Ok(repaired)
    }

    /// The reservations kept at `key` (a person's `resv`), by appointment id.
    async fn reservations_at(&self, key: &str) -> Result<HashMap<String, Reservation>, StoreError> {
        let found: HashMap<String, String> = self.conn().hgetall(key).await?;
        found
            .into_iter()
            .map(|(id, text)| {
                let reservation = serde_json::from_str(&text)
                    .map_err(|e| StoreError::Backend(format!("reservation {id}: {e}")))?;
                Ok((id, reservation))
            })
            .collect()
    }

    /// Recovery of one reservation: the hall decides first, atomically (the appointment is
    /// there: the booking completes; else a void mark makes a late hall step refuse), then the
    /// person's side follows.
    async fn settle(&self, id: &str, r: &Reservation, now_ms: i64) -> Result<(), StoreError> {
        let keys = Keys(self);
        let mut hall = RedisPlan::new();
        let complete = Refuse {
            refusal: "COMPLETE",
            remembered: false,
        };
        hall.absent(keys.appointment(&r.hall, id), complete);
        hall.set_expiring(keys.void(&r.hall, id), "1", VOID_MS);
        let completed = matches!(hall.run(self, &PLAN).await?, Ran::Stopped(_));
        let mut person = RedisPlan::new();
        if completed {
            r.complete(&mut person, &keys, id, now_ms);
        } else {
            self.free_code(r, id).await?;
            r.release(&mut person, &keys, id, None, now_ms);
        }
        person.run(self, &PLAN).await?;
        Ok(())
    }

    /// The code's claim of a booking that did not happen ends (if it got that far).
    async fn free_code(&self, r: &Reservation, id: &str) -> Result<(), StoreError> {
        let mut code = RedisPlan::new();
        code.del_if(Keys(self).code(&r.code), id);
        code.run(self, &PLAN).await?;
        Ok(())
    }

    /// Whether the slot `plan` books is full (read alone): a booking refused is refused
    /// whatever its code, as on one Redis, where the seat is checked before the code.
    async fn slot_full(&self, plan: &Plan) -> Result<bool, StoreError> {
        let mut hall = RedisPlan::new();
        for guard in &plan.guards {
            if let Guard::SeatFree { slot, capacity } = guard {
                let full = Refuse {
                    refusal: Stop::Refused(Refusal::SlotFull).code(),
                    remembered: false,
                };
                hall.field_below(Keys(self).slot(slot), &slot.time_key(), *capacity, full);
            }
        }
        Ok(matches!(self.run_step(hall).await?, Some(Ran::Stopped(_))))
    }
}

/// The kinds of key of the layout before issue 16 (the rest after `{booking}:`).
enum OldKey<'a> {
    /// `appt:<id>`: rebuilt in the new layout from its document.
    Appointment,
    /// `seats:<hall>:<day>`: moved as it is.
    Seats {
        hall: &'a str,
        day: &'a str,
    },
    /// A ban, no-shows, an idempotency record: moved as it is to `to`.
    Person {
        to: String,
    },
    /// An attempt counter (a hash of its window's end and count): its count becomes the
    /// window's counter under `to` ([`RedisPlan::counted_within`]).
    Attempts {
        to: String,
    },
    /// The code's claim, the no-show watch, the holds and the users' lists: rebuilt from the
    /// appointments, deleted once all are moved.
    Derived,
    /// `halls`, the move's lock, the outbox (its worker still reads it) and `person:…`
    /// (issue 15's carry): not this migration's.
    Kept,
    Unknown,
}

/// What a person's key of the old layout keeps as it is (holds and lists are rebuilt, attempt
/// counters become their window's).
const PERSON_KEPT: [&str; 2] = ["ban", "no_shows"];

impl<'a> OldKey<'a> {
    fn of(keys: &Keys, rest: &'a str) -> Self {
        let kept = |what: &str| PERSON_KEPT.contains(&what);
        let derived = |what: &str| ["all", "active"].contains(&what);
        let person = |to: String| OldKey::Person { to };
        if rest.starts_with("appt:") {
            return OldKey::Appointment;
        }
        if rest == "due" || rest.starts_with("code:") {
            return OldKey::Derived;
        }
        if [MOVE_LOCK, "halls"].contains(&rest)
            || rest.starts_with("outbox:")
            || rest.starts_with("person:")
        {
            return OldKey::Kept;
        }
        // User ids hold no `:`; ID hashes (`hmac:…`) and idempotency keys may.
        let found = if let Some(r) = rest.strip_prefix("seats:") {
            r.rsplit_once(':')
                .map(|(hall, day)| OldKey::Seats { hall, day })
        } else if let Some(r) = rest.strip_prefix("idem:") {
            r.split_once(':')
                .map(|(user, key)| person(keys.idempotency(user, key)))
        } else if let Some(r) = rest.strip_prefix("applicant:") {
            r.rsplit_once(':').and_then(|(r, what)| {
                let (user_id, id_hash) = r.split_once(':')?;
                let applicant = ApplicantOf {
                    user_id: user_id.to_owned(),
                    id_hash: id_hash.to_owned(),
                };
                Some(match what {
                    "active" => OldKey::Derived,
                    "attempts" => OldKey::Attempts {
                        to: keys.applicant(&applicant, what),
                    },
                    _ if kept(what) => person(keys.applicant(&applicant, what)),
                    _ => OldKey::Unknown,
                })
            })
        } else if let Some(r) = rest.strip_prefix("user:") {
            r.split_once(':').map(|(user, what)| match what {
                _ if derived(what) => OldKey::Derived,
                "attempts" => OldKey::Attempts {
                    to: keys.user(user, what),
                },
                _ if kept(what) => person(keys.user(user, what)),
                _ => OldKey::Unknown,
            })
        } else {
            None
        };
        found.unwrap_or(OldKey::Unknown)
    }
}

/// The move's lock under `{booking}`: one instance moves at a time, and one starting meanwhile
/// waits for the move to end before it serves (or it could overwrite, with a value read
/// before, what the other already served).
const MOVE_LOCK: &str = "moving";

/// How long the lock holds unless renewed: what a start killed while moving delays the next by.
const MOVE_LOCK_MS: u64 = 10_000;

/// A start's move of the old layout, holding the lock.
struct Mover<'a> {
    store: &'a RedisStore,
    lock: String,
    token: String,
    renewed: Mutex<std::time::Instant>,
    /// The halls registered by this move (once each).
    halls: Mutex<HashSet<String>>,
}

/// Old keys moved at once: the move is bound by round trips, each key's independent.
const MOVES_AT_ONCE: usize = 32;

impl<'a> Mover<'a> {
    /// Waits for the lock (another instance moving, or a killed one's lock running out).
    async fn lock(store: &'a RedisStore) -> Result<Mover<'a>, StoreError> {
        let lock = Keys(store).old(MOVE_LOCK);
        let token = uuid::Uuid::new_v4().simple().to_string();
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(&lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(MOVE_LOCK_MS)
                .query_async(&mut store.conn())
                .await?;
            if taken.is_some() {
                return Ok(Mover {
                    store,
                    lock,
                    token,
                    renewed: Mutex::new(std::time::Instant::now()),
                    halls: Mutex::default(),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// One write of the move (a fail point before each, in tests), the lock renewed while it
    /// is still this mover's: one that lost it (stalled past its expiry) stops.
    async fn write(&self, cmd: redis::Cmd) -> Result<(), StoreError> {
        migration_write(self.store.prefix())?;
        let since = self
            .renewed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        if since.as_millis() as u64 > MOVE_LOCK_MS / 4 {
            static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
                redis::Script::new(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                       return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
                )
            });
            let renewed: i64 = RENEW
                .key(&self.lock)
                .arg(&self.token)
                .arg(MOVE_LOCK_MS)
                .invoke_async(&mut self.store.conn())
                .await?;
            if renewed == 0 {
                return Err(StoreError::Unavailable(
                    "the move of the old booking layout lost its lock to another start".into(),
                ));
            }
            *self.renewed.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
        }
        let _: redis::Value = cmd.query_async(&mut self.store.conn()).await?;
        Ok(())
    }

    async fn unlock(self) -> Result<(), StoreError> {
        let mut unlock = RedisPlan::new();
        unlock.del_if(self.lock, &self.token);
        unlock.run(self.store, &PLAN).await?;
        Ok(())
    }

    /// `from` copied to `to` (type, value and expiry; on a cluster they are on other slots),
    /// then deleted: a repeat after a crash between the two copies it again. False when
    /// `from` is gone (expired meanwhile).
    async fn move_key(&self, from: &str, to: &str) -> Result<bool, StoreError> {
        let mut conn = self.store.conn();
        let dumped: Option<Vec<u8>> = redis::cmd("DUMP").arg(from).query_async(&mut conn).await?;
        let ttl_ms: i64 = conn.pttl(from).await?;
        let Some(dumped) = dumped.filter(|_| ttl_ms != -2) else {
            return Ok(false);
        };
        let mut restore = redis::cmd("RESTORE");
        restore
            .arg(to)
            .arg(ttl_ms.max(0))
            .arg(dumped)
            .arg("REPLACE");
        self.write(restore).await?;
        self.write(redis::Cmd::del(from)).await?;
        Ok(true)
    }

    /// The appointment `a` (its old hash's `fields`) written in the new layout with what finds
    /// it, and, if it still held its place (`no_show_at`, from the old no-show watch), the
    /// holds, the watch and its pending reminder; whether a reminder moved. Every write
    /// overwrites with the same value: a repeat changes nothing.
    async fn adopt_appointment(
        &self,
        a: &Appointment,
        fields: &HashMap<String, String>,
        no_show_at: Option<f64>,
    ) -> Result<bool, StoreError> {
        let store = self.store;
        let keys = Keys(store);
        let hall = &a.slot.hall;
        let added = self
            .halls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hall.clone());
        if added {
            store.add_hall(hall).await?;
        }
        let fields: Vec<(&String, &String)> = fields.iter().collect();
        let writes = [
            redis::Cmd::hset_multiple(keys.appointment(hall, &a.id), &fields),
            redis::Cmd::set(keys.hall_of(&a.id), hall),
            redis::Cmd::set(keys.code(a.code.as_str()), &a.id),
            redis::Cmd::zadd(
                keys.user(&a.user_id, "all"),
                &a.id,
                a.created_at.timestamp_millis(),
            ),
        ];
        for write in writes {
            self.write(write).await?;
        }
        let Some(no_show_at) = no_show_at else {
            return Ok(false);
        };
        let holds = [
            redis::Cmd::set(keys.applicant(&ApplicantOf::of(a), "active"), &a.id),
            redis::Cmd::sadd(keys.user(&a.user_id, "active"), &a.id),
            redis::Cmd::zadd(keys.due(hall), &a.id, no_show_at),
        ];
        for write in holds {
            self.write(write).await?;
        }
        store
            .move_pending_entry(TAG, &hall_tag(hall), &reminder_key(&a.id))
            .await
    }

    /// See [`BookingStore::migrate_single_tag_layout`]. An appointment's old hash is deleted
    /// only once its new copy is whole; what was derived from the appointments only once all
    /// are moved, so a run killed anywhere and run again ends as one that was not.
    async fn migrate(&self) -> Result<Migrated, StoreError> {
        let keys = Keys(self.store);
        let before = keys.old("");
        // All old keys share one tag: one master has them all.
        let found = self.store.scan(TAG, "*").await?;
        let due = keys.old("due");
        let watched: Vec<(String, f64)> = self.store.conn().zrange_withscores(due, 0, -1).await?;
        let watched: HashMap<String, f64> = watched.into_iter().collect();
        let (derived, moved): (Vec<_>, Vec<_>) = found
            .iter()
            .map(|key| {
                (
                    key,
                    OldKey::of(&keys, key.strip_prefix(&before).unwrap_or_default()),
                )
            })
            .partition(|(_, kind)| matches!(kind, OldKey::Derived));
        // The futures made first: a stream's closure over borrowed keys is not `Send` enough
        // for the trait's boxed future.
        let moves: Vec<_> = moved
            .into_iter()
            .map(|(key, kind)| self.move_one(key, kind, &watched))
            .collect();
        let migrated = futures_util::stream::iter(moves)
            .buffer_unordered(MOVES_AT_ONCE)
            .try_fold(Migrated::default(), |sum, one| async move { Ok(sum + one) })
            .await?;
        let deletes: Vec<_> = derived
            .into_iter()
            .map(|(key, _)| self.write(redis::Cmd::del(key)))
            .collect();
        futures_util::stream::iter(deletes)
            .buffer_unordered(MOVES_AT_ONCE)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(migrated)
    }

    /// Moves the old `key` of kind `kind`; what it moved.
    async fn move_one(
        &self,
        key: &str,
        kind: OldKey<'_>,
        watched: &HashMap<String, f64>,
    ) -> Result<Migrated, StoreError> {
        let keys = Keys(self.store);
        let mut migrated = Migrated::default();
        match kind {
            OldKey::Appointment => {
                let fields: HashMap<String, String> = self.store.conn().hgetall(key).await?;
                let Some(doc) = fields.get("doc") else {
                    migrated.unknown += 1;
                    return Ok(migrated);
                };
                let a: Appointment = from_json(doc)?;
                let no_show_at = watched.get(&a.id).copied();
                if self.adopt_appointment(&a, &fields, no_show_at).await? {
                    migrated.reminders += 1;
                }
                self.write(redis::Cmd::del(key)).await?;
                migrated.appointments += 1;
            }
            OldKey::Seats { hall, day } => {
                migrated.seat_days +=
                    usize::from(self.move_key(key, &keys.seats(hall, day)).await?);
            }
            OldKey::Person { to } => {
                migrated.person_keys += usize::from(self.move_key(key, &to).await?);
            }
            OldKey::Attempts { to } => {
                let (ends, count): (Option<String>, Option<String>) = redis::cmd("HMGET")
                    .arg(key)
                    .arg("ends")
                    .arg("n")
                    .query_async(&mut self.store.conn())
                    .await?;
                let ttl_ms: i64 = self.store.conn().pttl(key).await?;
                let (Some(ends), Some(count)) = (ends, count) else {
                    migrated.unknown += usize::from(ttl_ms != -2);
                    return Ok(migrated);
                };
                // Overwritten with the same count by a repeat; the expiry kept.
                let mut set = redis::cmd("SET");
                set.arg(window_counter(&to, &ends)).arg(count);
                if ttl_ms > 0 {
                    set.arg("PX").arg(ttl_ms);
                }
                self.write(set).await?;
                self.write(redis::Cmd::del(key)).await?;
                migrated.person_keys += 1;
            }
            OldKey::Derived | OldKey::Kept => {}
            OldKey::Unknown => migrated.unknown += 1,
        }
        Ok(migrated)
    }
}

impl RedisStore {
    /// See [`BookingStore::migrate_single_tag_layout`]: under the move's lock when there is
    /// anything to move.
    async fn migrate_single_tag(&self) -> Result<Migrated, StoreError> {
        let keys = Keys(self);
        // Another start moving (or killed while moving) holds the lock: wait for it.
        let mut to_move: bool = self.conn().exists(keys.old(MOVE_LOCK)).await?;
        for key in self.scan(TAG, "*").await? {
            let rest = key.strip_prefix(&keys.old("")).unwrap_or_default();
            to_move |= !matches!(OldKey::of(&keys, rest), OldKey::Kept);
        }
        if !to_move {
            return Ok(Migrated::default());
        }
        let mover = Mover::lock(self).await?;
        let migrated = mover.migrate().await;
        // A start that fails (rather than dies) lets the next one in at once.
        mover.unlock().await?;
        migrated
    }
}

/// The person's step a status change owes, kept in its hall's `owed` under the appointment's
/// id until it ran.
struct Owed {
    key: String,
    id: String,
    json: String,
}

impl Owed {
    /// The promise is kept: it goes, unless a later change made another.
    async fn kept(self, store: &RedisStore) -> Result<(), StoreError> {
        let mut kept = RedisPlan::new();
        kept.hdel_if(self.key, &self.id, &self.json);
        kept.run(store, &PLAN).await?;
        Ok(())
    }

    /// Runs the step owed for appointment `id` in the hall's `owed` at `key`, if any; whether
    /// there was one.
    async fn pay(store: &RedisStore, key: &str, id: &str) -> Result<bool, StoreError> {
        let json: Option<String> = store.conn().hget(key, id).await?;
        let Some(json) = json else {
            return Ok(false);
        };
        let step = RedisPlan::from_json(&json)?;
        step.run(store, &PLAN).await?;
        let owed = Owed {
            key: key.to_owned(),
            id: id.to_owned(),
            json,
        };
        owed.kept(store).await?;
        Ok(true)
    }
}

/// A booking plan's reservation (on a cluster) and what its steps need to settle it.
struct BookingInProgress {
    id: String,
    reservation: Reservation,
    now_ms: i64,
    /// Whether the request's answers are kept (an `Idempotency-Key` came).
    remembered: bool,
}

fn booking_of(
    plan: &Plan,
    split: bool,
    store: &RedisStore,
) -> Result<Option<BookingInProgress>, StoreError> {
    let Some(a) = plan.effects.iter().find_map(|e| match e {
        Effect::Insert { appointment, .. } => Some(appointment),
        _ => None,
    }) else {
        return Ok(None);
    };
    if !split {
        return Ok(None);
    }
    let created_ms = a.created_at.timestamp_millis();
    let now_ms = plan
        .remember
        .as_ref()
        .map_or(created_ms, |r| r.now.timestamp_millis());
    let keys = Keys(store);
    Ok(Some(BookingInProgress {
        id: a.id.clone(),
        reservation: Reservation {
            user_id: a.user_id.clone(),
            id_hash: a.id_hash.clone(),
            hall: a.slot.hall.clone(),
            code: a.code.as_str().to_owned(),
            created_ms,
            expires_ms: now_ms + RESERVATION_MS,
            record: plan.remember.as_ref().map(|r| Record {
                key: keys.idempotency(&r.user_id, &r.key.key),
                hash: r.key.body_hash.clone(),
                expires_ms: r.now.timestamp_millis() + ms(r.key.ttl) as i64,
            }),
        },
        now_ms,
        remembered: plan.remember.is_some(),
    }))
}

fn stopped_by(stop: Option<Stop>, text: &str) -> Result<Applied, StoreError> {
    stop.map(Applied::Stopped)
        .ok_or_else(|| StoreError::Backend(format!("unexpected stop `{text}`")))
}

fn ms(duration: std::time::Duration) -> u64 {
    duration.as_millis() as u64
}

/// The hall a plan is about (its appointment's or slot's).
fn hall_of(plan: &Plan) -> Option<&str> {
    let from_effects = plan.effects.iter().find_map(|e| match e {
        Effect::Insert { appointment, .. } | Effect::Update { appointment } => {
            Some(appointment.slot.hall.as_str())
        }
        Effect::TakeSeat { slot } | Effect::FreeSeat { slot } => Some(slot.hall.as_str()),
        _ => None,
    });
    from_effects.or_else(|| {
        plan.guards.iter().find_map(|g| match g {
            Guard::SeatFree { slot, .. } => Some(slot.hall.as_str()),
            _ => None,
        })
    })
}

/// `plan` as Redis plans (`store::plan`) over this store's booking keys: on one
/// Redis one script (`split` false), on a cluster a script per [`Step`].
fn redis_plan(
    store: &RedisStore,
    plan: &Plan,
    split: bool,
    booking: Option<&BookingInProgress>,
) -> Result<Steps, StoreError> {
    let keys = Keys(store);
    let mut steps = Steps::new(split);
    let hall = || hall_of(plan).ok_or_else(|| StoreError::Backend("a plan without a hall".into()));
    if let Some(r) = &plan.remember {
        let key = keys.idempotency(&r.user_id, &r.key.key);
        let now = r.now.timestamp_millis();
        // On a cluster the last step keeps the answer (`Reservation::complete`).
        let done = if split { "" } else { r.done.as_str() };
        steps
            .on(Step::Person)
            .record(key, &r.key.body_hash, ms(r.key.ttl), now, done);
    }
    if let Some(b) = booking {
        let void = Refuse {
            refusal: VOIDED,
            remembered: false,
        };
        steps
            .on(Step::Hall)
            .absent(keys.void(&b.reservation.hall, &b.id), void);
    }
    // Who asks first, before the answer record (a replay needs them to hold too); on a
    // cluster the caller is checked before the plan (`checks_callers`).
    let (caller, rules): (Vec<&Guard>, Vec<&Guard>) =
        plan.guards.iter().partition(|g| g.is_about_the_caller());
    for guard in caller {
        add_guard(&mut steps, &keys, plan, guard)?;
    }
    steps.on(Step::Person).checked_first();
    for guard in rules {
        add_guard(&mut steps, &keys, plan, guard)?;
    }
    for effect in &plan.effects {
        match effect {
            Effect::Insert {
                appointment: a,
                no_show_at,
            } => {
                let hall = &a.slot.hall;
                let doc = to_json(a)?;
                steps.on(Step::Hall).hset(
                    keys.appointment(hall, &a.id),
                    &[("status", a.status.as_str()), ("doc", &doc)],
                );
                steps
                    .on(Step::Hall)
                    .zadd(keys.due(hall), no_show_at.timestamp_millis(), &a.id);
                steps.index().set(keys.hall_of(&a.id), hall);
                let person = steps.on(Step::Person);
                person.set(keys.applicant(&ApplicantOf::of(a), "active"), &a.id);
                person.sadd(keys.user(&a.user_id, "active"), &a.id);
                match booking {
                    Some(b) => {
                        let text = serde_json::to_string(&b.reservation)
                            .map_err(|e| StoreError::Backend(e.to_string()))?;
                        person.hset(keys.reservations(&a.user_id), &[(&a.id, &text)]);
                        b.reservation
                            .complete(steps.on(Step::Finish), &keys, &a.id, b.now_ms);
                    }
                    None => person.zadd(
                        keys.user(&a.user_id, "all"),
                        a.created_at.timestamp_millis(),
                        &a.id,
                    ),
                }
            }
            Effect::Update { appointment: a } => {
                let doc = to_json(a)?;
                let mut fields = vec![("status", a.status.as_str()), ("doc", &doc)];
                if a.ban_lift.is_some() {
                    fields.push(("lifted", "1"));
                }
                steps
                    .on(Step::Hall)
                    .hset(keys.appointment(&a.slot.hall, &a.id), &fields);
            }
            Effect::TakeSeat { slot } => {
                steps
                    .on(Step::Hall)
                    .hincrby(keys.slot(slot), &slot.time_key(), 1)
            }
            Effect::FreeSeat { slot } => {
                steps
                    .on(Step::Hall)
                    .hincrby(keys.slot(slot), &slot.time_key(), -1)
            }
            Effect::Release {
                appointment_id,
                applicant,
            } => {
                steps.on(Step::Hall).zrem(keys.due(hall()?), appointment_id);
                let person = steps.on(Step::Finish);
                person.del_if(keys.applicant(applicant, "active"), appointment_id);
                person.srem(keys.user(&applicant.user_id, "active"), appointment_id);
            }
            Effect::CountNoShow {
                appointment_id,
                applicant,
                missed_at,
                now,
                policy,
            } => {
                let until = policy.ban_until(*now);
                let p = steps.on(Step::Finish);
                for (prefix, limit) in [
                    (keys.applicant(applicant, ""), policy.limit),
                    (keys.user(&applicant.user_id, ""), policy.account_limit),
                ] {
                    let counted = format!("{prefix}no_shows");
                    p.window_add(
                        counted.clone(),
                        missed_at.timestamp_millis(),
                        appointment_id,
                        policy.counted_after(*now),
                        ms(policy.window),
                    );
                    let ban = format!("{prefix}ban");
                    p.raise_if_card(counted, limit, ban, until, ms(policy.ban));
                }
            }
            Effect::ForgiveNoShow {
                appointment_id,
                applicant,
                now,
                policy,
            } => {
                let p = steps.on(Step::Finish);
                for (prefix, limit) in [
                    (keys.applicant(applicant, ""), policy.limit),
                    (keys.user(&applicant.user_id, ""), policy.account_limit),
                ] {
                    let counted = format!("{prefix}no_shows");
                    p.zrem(counted.clone(), appointment_id);
                    let after = policy.counted_after(*now);
                    p.del_if_count_below(counted, after, limit, format!("{prefix}ban"));
                }
            }
            Effect::Notify(notices) => {
                notices.plan(steps.on(Step::Hall), store, &hall_tag(hall()?))
            }
        }
    }
    if split && booking.is_none() && !steps.plans[Step::Finish as usize].is_empty() {
        // The hall's step promises the person's in the hall's `owed`: what a crash between the
        // two leaves is found there and run again (its operations repeat safely), before any
        // later change of the appointment.
        let changed = plan.effects.iter().find_map(|e| match e {
            Effect::Update { appointment } => Some(appointment),
            _ => None,
        });
        let a = changed
            .ok_or_else(|| StoreError::Backend("a change without its appointment".into()))?;
        let key = keys.owed(&a.slot.hall);
        let json = steps.plans[Step::Finish as usize].to_json()?;
        let hall = &mut steps.plans[Step::Hall as usize];
        let earlier = Refuse {
            refusal: OWED,
            remembered: false,
        };
        hall.field_absent(key.clone(), &a.id, earlier);
        hall.hset(key.clone(), &[(&a.id, &json)]);
        steps.promised = Some(Owed {
            key,
            id: a.id.clone(),
            json,
        });
    }
    Ok(steps)
}

/// `guard` as an operation of the step that reads its keys (the one script on one Redis).
fn add_guard(steps: &mut Steps, keys: &Keys, plan: &Plan, guard: &Guard) -> Result<(), StoreError> {
    let split = steps.split;
    let hall = || hall_of(plan).ok_or_else(|| StoreError::Backend("a plan without a hall".into()));
    let stop = guard.stop(None);
    // Every guard names its step: on a cluster a step's keys must share one tag (the
    // caller's guards are on one Redis only).
    let step = match guard {
        Guard::TokenLive { .. }
        | Guard::Consented { .. }
        | Guard::AttemptCounted { .. }
        | Guard::AccountNotBanned { .. }
        | Guard::ApplicantNotBanned { .. }
        | Guard::ApplicantFree { .. }
        | Guard::UserBelow { .. } => Step::Person,
        Guard::SeatFree { .. }
        | Guard::StatusIs { .. }
        | Guard::VersionIs { .. }
        | Guard::NotLifted { .. } => Step::Hall,
        Guard::CodeFree { .. } => Step::Code,
    };
    // On a cluster only the person's step keeps answers, and not a refusal for a place held,
    // which what a crash left may explain (kept once that is settled); a later refusal is
    // kept as it releases the reservation.
    let held = matches!(guard, Guard::ApplicantFree { .. } | Guard::UserBelow { .. });
    // A ban's end (what the store finds) and a window's end follow the code (`at_most`,
    // `counted_within`).
    let refuse = Refuse {
        refusal: stop.code(),
        remembered: (!split || (step == Step::Person && !held))
            && plan
                .remember
                .as_ref()
                .is_some_and(|r| r.outcome(Some(stop)).is_some()),
    };
    let p = steps.on(step);
    match guard {
        Guard::TokenLive {
            user_id,
            jti,
            issued_at_ms,
        } => {
            p.absent(keys.0.kv_key(&revoked_key(jti)), refuse);
            // Revoked with every token of the user issued by then (at or before its value).
            let user_revoked = keys.0.kv_key(&user_revoked_key(user_id));
            p.at_most(user_revoked, issued_at_ms - 1, refuse);
        }
        Guard::Consented { user_id, version } => {
            p.field_is(keys.0.user_key(user_id), "privacy_version", version, refuse)
        }
        Guard::AttemptCounted {
            who,
            limit,
            window_ends,
            window_ms,
        } => p.counted_within(keys.attempts(who), *window_ends, *window_ms, *limit, refuse),
        Guard::AccountNotBanned { user_id, now } => {
            p.at_most(keys.user(user_id, "ban"), now.timestamp_millis(), refuse)
        }
        Guard::ApplicantNotBanned { applicant, now } => p.at_most(
            keys.applicant(applicant, "ban"),
            now.timestamp_millis(),
            refuse,
        ),
        Guard::ApplicantFree { applicant } => p.absent(keys.applicant(applicant, "active"), refuse),
        Guard::UserBelow { user_id, max } => {
            p.card_below(keys.user(user_id, "active"), *max, refuse)
        }
        Guard::SeatFree { slot, capacity } => {
            p.field_below(keys.slot(slot), &slot.time_key(), *capacity, refuse)
        }
        Guard::CodeFree {
            code,
            appointment_id,
        } => p.claim(keys.code(code.as_str()), appointment_id, refuse),
        Guard::StatusIs {
            appointment_id,
            status,
        } => p.field_is(
            keys.appointment(hall()?, appointment_id),
            "status",
            status.as_str(),
            refuse,
        ),
        Guard::VersionIs {
            appointment_id,
            version,
        } => p.json_number_is(
            keys.appointment(hall()?, appointment_id),
            "doc",
            "version",
            *version,
            refuse,
        ),
        Guard::NotLifted { appointment_id } => {
            p.field_absent(keys.appointment(hall()?, appointment_id), "lifted", refuse)
        }
    }
    Ok(())
}

#[async_trait]
impl BookingStore for RedisStore {
    async fn seats_taken(
        &self,
        hall: &str,
        date: NaiveDate,
    ) -> Result<HashMap<String, u32>, StoreError> {
        let key = Keys(self).seats(hall, &day_key(date));
        Ok(self.conn().hgetall(key).await?)
    }

    /// On a cluster the caller's keys (tokens, the user) are on other slots than booking's.
    fn checks_callers(&self) -> bool {
        !self.is_cluster()
    }

    async fn apply(&self, plan: Plan) -> Result<Applied, StoreError> {
        if let Some(Effect::Insert { appointment, .. }) = plan
            .effects
            .iter()
            .find(|e| matches!(e, Effect::Insert { .. }))
        {
            self.register_hall(&appointment.slot.hall).await?;
        }
        self.apply_steps(&plan).await
    }

    async fn appointment(&self, id: &str) -> Result<Option<Appointment>, StoreError> {
        Ok(self.docs(&[id.to_owned()]).await?.pop())
    }

    async fn appointment_by_code(
        &self,
        code: &AppointmentCode,
    ) -> Result<Option<Appointment>, StoreError> {
        let id: Option<String> = self.conn().get(Keys(self).code(code.as_str())).await?;
        match id {
            Some(id) => self.appointment(&id).await,
            None => Ok(None),
        }
    }

    async fn user_appointments(&self, user_id: &str) -> Result<Vec<Appointment>, StoreError> {
        let ids: Vec<String> = self
            .conn()
            .zrevrange(Keys(self).user(user_id, "all"), 0, 99)
            .await?;
        self.docs(&ids).await
    }

    async fn due_no_shows(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<DueNoShows, StoreError> {
        let keys = Keys(self);
        let halls = self.halls().await?;
        let per_hall = try_join_all(halls.iter().map(|hall| async move {
            let earliest: Vec<(String, f64)> = self
                .conn()
                .zrangebyscore_limit_withscores(
                    keys.due(hall),
                    "-inf",
                    "+inf",
                    0,
                    limit as isize + 1,
                )
                .await?;
            Ok::<_, StoreError>(earliest)
        }))
        .await?;
        let mut earliest: Vec<(String, i64)> = per_hall
            .into_iter()
            .flatten()
            .map(|(id, at)| (id, at as i64))
            .collect();
        earliest.sort_by(|(a, at_a), (b, at_b)| (at_a, a).cmp(&(at_b, b)));
        earliest.truncate(limit + 1);
        Ok(DueNoShows::split(earliest, now, limit))
    }

    async fn settle_interrupted(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        if !self.is_cluster() {
            return Ok(0);
        }
        let now_ms = now.timestamp_millis();
        let mut settled = 0;
        for hall in self.halls().await? {
            let key = Keys(self).owed(&hall);
            let owed: Vec<String> = self.conn().hkeys(&key).await?;
            for id in owed {
                settled += usize::from(Owed::pay(self, &key, &id).await?);
            }
        }
        for key in self.scan_tags_starting("booking-user:", "resv").await? {
            for (id, reservation) in self.reservations_at(&key).await? {
                if reservation.expires_ms <= now_ms {
                    self.settle(&id, &reservation, now_ms).await?;
                    settled += 1;
                }
            }
        }
        Ok(settled)
    }

    async fn migrate_single_tag_layout(&self) -> Result<Migrated, StoreError> {
        self.migrate_single_tag().await
    }

    async fn carry_person_rules_to_accounts(
        &self,
        policy: NoShowPolicy,
    ) -> Result<usize, StoreError> {
        let keys = Keys(self);
        let before = keys.old("person:");
        let hashes: BTreeSet<String> = self
            .scan(TAG, "person:*")
            .await?
            .iter()
            .filter_map(|k| k.strip_prefix(&before)?.rsplit_once(':'))
            .map(|(hash, _)| hash.to_owned())
            .collect();
        let mut conn = self.conn();
        for hash in &hashes {
            let old = |what: &str| keys.old(&format!("person:{hash}:{what}"));
            let active: Option<String> = conn.get(old("active")).await?;
            for a in self.docs(&Vec::from_iter(active)).await? {
                if a.status == Status::Booked {
                    let _: bool = conn
                        .set_nx(keys.applicant(&ApplicantOf::of(&a), "active"), &a.id)
                        .await?;
                }
            }
            let missed: Vec<(String, f64)> = conn.zrange_withscores(old("no_shows"), 0, -1).await?;
            let ban: Option<i64> = conn.get(old("ban")).await?;
            let ban_ms: i64 = conn.pttl(old("ban")).await?;
            let ids: Vec<String> = missed.iter().map(|(id, _)| id.clone()).collect();
            let at: HashMap<String, f64> = missed.into_iter().collect();
            for a in self.docs(&ids).await? {
                let applicant = ApplicantOf::of(&a);
                let score = at.get(&a.id).copied().unwrap_or_default();
                // All of one account's keys: one slot.
                let mut pipe = redis::pipe();
                for counted in [
                    keys.applicant(&applicant, "no_shows"),
                    keys.user(&a.user_id, "no_shows"),
                ] {
                    pipe.zadd(&counted, &a.id, score)
                        .pexpire(&counted, ms(policy.window) as i64);
                }
                // The ban goes to each account whose no-shows earned it, for that number.
                if let Some(until) = ban.filter(|_| ban_ms > 0) {
                    pipe.pset_ex(keys.applicant(&applicant, "ban"), until, ban_ms as u64);
                }
                let () = pipe.query_async(&mut conn).await?;
            }
            let () = conn
                .del(&[old("active"), old("no_shows"), old("ban")])
                .await?;
        }
        Ok(hashes.len())
    }

    async fn erase_ended_appointments(
        &self,
        user_id: &str,
        before: DateTime<Utc>,
    ) -> Result<ErasedAppointments, StoreError> {
        let keys = Keys(self);
        let all = keys.user(user_id, "all");
        let ids: Vec<String> = self.conn().zrange(&all, 0, -1).await?;
        let (ended, mut erased) = ErasedAppointments::sort(self.docs(&ids).await?, before);
        let idempotency = self.scan(&user_tag(user_id), "idem:*").await?;
        // An ended appointment changes no more (a ban lift checks its status first, and finds
        // none), so deleting it, one key at a time (they are on several slots), races with
        // nothing. The list entry goes last: an interrupted erasure is found again.
        let mut conn = self.conn();
        for a in &ended {
            let () = conn.del(keys.appointment(&a.slot.hall, &a.id)).await?;
            let () = conn.del(keys.code(a.code.as_str())).await?;
            let () = conn.del(keys.hall_of(&a.id)).await?;
            let () = conn.zrem(&all, &a.id).await?;
        }
        if !idempotency.is_empty() {
            let () = conn.del(&idempotency).await?;
        }
        erased.idempotency_records = idempotency.len();
        Ok(erased)
    }

    async fn ended_appointments(
        &self,
        created_before: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, StoreError> {
        // Every appointment key of every hall, its status first: only ended ones' documents
        // are read.
        let keys = self.scan_tags_starting("booking-hall:", "appt:*").await?;
        let statuses = self.hget_each(&keys, "status").await?;
        let ended_keys: Vec<String> = keys
            .into_iter()
            .zip(statuses)
            .filter(|(_, status)| {
                status
                    .as_deref()
                    .is_some_and(|s| Status::ENDED.iter().any(|e| e.as_str() == s))
            })
            .map(|(key, _)| key)
            .collect();
        let mut ended = Vec::new();
        for doc in self.hget_each(&ended_keys, "doc").await?.iter().flatten() {
            let appointment = from_json(doc)?;
            if appointment.anonymised_at.is_none() && appointment.created_at <= created_before {
                ended.push(appointment);
            }
        }
        Ok(ended)
    }

    async fn delete_expired_idempotency(&self, _now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn forget_unkeyed_digests(&self) -> Result<usize, StoreError> {
        let mut forgotten = 0;
        for key in self.scan_tags_starting("booking-user:", "idem:*").await? {
            forgotten += usize::from(self.del_unless_prefixed(&key, "hash", DIGEST_TAG).await?);
        }
        Ok(forgotten)
    }
}
