//! Booking on Redis. Every key carries the tag `{booking}`: the rules span applicants, users
//! and slots of every hall, so the scripts that enforce them must see all of those keys at once
//! (on a cluster, booking lives in one slot). What is kept per ID number is kept per account and
//! ID number (`applicant:<user>:<id hash>:…`, see `rules::ApplicantOf`).

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use redis::AsyncCommands;

use super::{
    decode_outcome, from_json, to_json, Applied, BookingStore, DueNoShows, ErasedAppointments,
    NoShowPolicy,
};
use crate::auth::token::{revoked_key, user_revoked_key};
use crate::booking::appointment::{Appointment, AppointmentCode, Status};
use crate::booking::rules::{ApplicantOf, Attempts, Effect, Guard, Plan, Stop};
use crate::booking::schedule::{day_key, SlotId};
use crate::id_hash::DIGEST_TAG;
use crate::notify::store::PLAN;
use crate::store::plan::{Ran, RedisPlan, Refuse};
use crate::store::{RedisStore, StoreError};

const TAG: &str = "booking";

/// The booking keys of one store.
struct Keys<'a>(&'a RedisStore);

impl Keys<'_> {
    fn key(&self, rest: String) -> String {
        self.0.key(TAG, &rest)
    }
    fn appointment(&self, id: &str) -> String {
        self.key(format!("appt:{id}"))
    }
    fn code(&self, code: &str) -> String {
        self.key(format!("code:{code}"))
    }
    fn seats(&self, hall: &str, day: &str) -> String {
        self.key(format!("seats:{hall}:{day}"))
    }
    fn slot(&self, slot: &SlotId) -> String {
        self.seats(&slot.hall, &slot.date_key())
    }
    fn applicant(&self, applicant: &ApplicantOf, what: &str) -> String {
        let ApplicantOf { user_id, id_hash } = applicant;
        self.key(format!("applicant:{user_id}:{id_hash}:{what}"))
    }
    fn attempts(&self, who: &Attempts) -> String {
        match who {
            Attempts::Account { user_id } => self.user(user_id, "attempts"),
            Attempts::Applicant(applicant) => self.applicant(applicant, "attempts"),
        }
    }
    fn user(&self, user_id: &str, what: &str) -> String {
        self.key(format!("user:{user_id}:{what}"))
    }
    fn idempotency(&self, user_id: &str, key: &str) -> String {
        self.key(format!("idem:{user_id}:{key}"))
    }
    fn due(&self) -> String {
        self.key("due".into())
    }
}

impl RedisStore {
    async fn docs(&self, ids: &[String]) -> Result<Vec<Appointment>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys = Keys(self);
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hget(keys.appointment(id), "doc");
        }
        let docs: Vec<Option<String>> = pipe.query_async(&mut self.conn()).await?;
        docs.iter().flatten().map(|doc| from_json(doc)).collect()
    }
}

fn ms(duration: std::time::Duration) -> u64 {
    duration.as_millis() as u64
}

/// `plan` as operations of the generic plan script over this store's booking keys.
fn redis_plan(store: &RedisStore, plan: &Plan) -> Result<RedisPlan, StoreError> {
    let keys = Keys(store);
    let mut p = RedisPlan::new();
    if let Some(r) = &plan.remember {
        let key = keys.idempotency(&r.user_id, &r.key.key);
        let now = r.now.timestamp_millis();
        p.record(key, &r.key.body_hash, ms(r.key.ttl), now, &r.done);
    }
    // Who asks first, before the answer record (a replay needs them to hold too).
    let (caller, rules): (Vec<&Guard>, Vec<&Guard>) =
        plan.guards.iter().partition(|g| g.is_about_the_caller());
    for guard in caller {
        add_guard(&mut p, &keys, plan, guard);
    }
    p.checked_first();
    for guard in rules {
        add_guard(&mut p, &keys, plan, guard);
    }
    for effect in &plan.effects {
        match effect {
            Effect::Insert {
                appointment: a,
                no_show_at,
            } => {
                let doc = to_json(a)?;
                p.hset(
                    keys.appointment(&a.id),
                    &[("status", a.status.as_str()), ("doc", &doc)],
                );
                p.zadd(
                    keys.user(&a.user_id, "all"),
                    a.created_at.timestamp_millis(),
                    &a.id,
                );
                p.set(keys.applicant(&ApplicantOf::of(a), "active"), &a.id);
                p.sadd(keys.user(&a.user_id, "active"), &a.id);
                p.zadd(keys.due(), no_show_at.timestamp_millis(), &a.id);
            }
            Effect::Update { appointment: a } => {
                let doc = to_json(a)?;
                let mut fields = vec![("status", a.status.as_str()), ("doc", &doc)];
                if a.ban_lift.is_some() {
                    fields.push(("lifted", "1"));
                }
                p.hset(keys.appointment(&a.id), &fields);
            }
            Effect::TakeSeat { slot } => p.hincrby(keys.slot(slot), &slot.time_key(), 1),
            Effect::FreeSeat { slot } => p.hincrby(keys.slot(slot), &slot.time_key(), -1),
            Effect::Release {
                appointment_id,
                applicant,
            } => {
                p.del_if(keys.applicant(applicant, "active"), appointment_id);
                p.srem(keys.user(&applicant.user_id, "active"), appointment_id);
                p.zrem(keys.due(), appointment_id);
            }
            Effect::CountNoShow {
                appointment_id,
                applicant,
                missed_at,
                now,
                policy,
            } => {
                let until = policy.ban_until(*now);
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
            Effect::Notify(notices) => notices.plan(&mut p, store, TAG),
        }
    }
    Ok(p)
}

/// `guard` as an operation of the plan script.
fn add_guard(p: &mut RedisPlan, keys: &Keys, plan: &Plan, guard: &Guard) {
    let stop = guard.stop(None);
    // A ban's end is what the store finds; a window's end is known here.
    let text = match guard {
        Guard::AttemptCounted { .. } => stop.text(),
        _ => stop.code().to_owned(),
    };
    let refuse = Refuse {
        refusal: &text,
        remembered: plan
            .remember
            .as_ref()
            .is_some_and(|r| r.outcome(Some(stop)).is_some()),
    };
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
            keys.appointment(appointment_id),
            "status",
            status.as_str(),
            refuse,
        ),
        Guard::VersionIs {
            appointment_id,
            version,
        } => p.json_number_is(
            keys.appointment(appointment_id),
            "doc",
            "version",
            *version,
            refuse,
        ),
        Guard::NotLifted { appointment_id } => {
            p.field_absent(keys.appointment(appointment_id), "lifted", refuse)
        }
    }
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
        let ran = redis_plan(self, &plan)?.run(self, &PLAN).await?;
        Ok(match ran {
            Ran::Done(_) => Applied::Done,
            Ran::Stopped(text) => Applied::Stopped(
                Stop::decode(&text)
                    .ok_or_else(|| StoreError::Backend(format!("unexpected stop `{text}`")))?,
            ),
            Ran::Replayed(outcome) => Applied::Replayed(decode_outcome(&outcome)?),
            Ran::Mismatch => Applied::IdempotencyMismatch,
        })
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
        let earliest: Vec<(String, f64)> = self
            .conn()
            .zrangebyscore_limit_withscores(Keys(self).due(), "-inf", "+inf", 0, limit as isize + 1)
            .await?;
        let earliest = earliest
            .into_iter()
            .map(|(id, at)| (id, at as i64))
            .collect();
        Ok(DueNoShows::split(earliest, now, limit))
    }
    async fn carry_person_rules_to_accounts(
        &self,
        policy: NoShowPolicy,
    ) -> Result<usize, StoreError> {
        let keys = Keys(self);
        let before = keys.key("person:".into());
        let hashes: BTreeSet<String> = self
            .scan(TAG, "person:*")
            .await?
            .iter()
            .filter_map(|k| k.strip_prefix(&before)?.rsplit_once(':'))
            .map(|(hash, _)| hash.to_owned())
            .collect();
        let mut conn = self.conn();
        for hash in &hashes {
            let old = |what: &str| keys.key(format!("person:{hash}:{what}"));
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
        let idempotency = self.scan(TAG, &format!("idem:{user_id}:*")).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        // An ended appointment changes no more (a ban lift checks its status first, and finds
        // none), so deleting it races with nothing.
        for a in &ended {
            pipe.del(keys.appointment(&a.id))
                .del(keys.code(a.code.as_str()))
                .zrem(&all, &a.id);
        }
        for key in &idempotency {
            pipe.del(key);
        }
        let () = pipe.query_async(&mut self.conn()).await?;
        erased.idempotency_records = idempotency.len();
        Ok(erased)
    }

    async fn ended_appointments(
        &self,
        created_before: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, StoreError> {
        // Every appointment key, its status first: only ended ones' documents are read.
        let keys = self.scan(TAG, "appt:*").await?;
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
        for key in self.scan(TAG, "idem:*").await? {
            forgotten += usize::from(self.del_unless_prefixed(&key, "hash", DIGEST_TAG).await?);
        }
        Ok(forgotten)
    }
}
