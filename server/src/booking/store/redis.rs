//! Booking on Redis. Every key carries the tag `{booking}`: the rules span people, users and
//! slots of every hall, so the scripts that enforce them must see all of those keys at once
//! (on a cluster, booking lives in one slot).

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use redis::{AsyncCommands, Script};

use super::{
    decode_outcome, from_json, to_json, BookOutcome, BookingStore, DueNoShows, NewBooking,
    NoShowPolicy, Refusal,
};
use crate::booking::appointment::{Appointment, AppointmentCode, Status};
use crate::booking::schedule::day_key;
use crate::notify::store::{outbox_keys, Notices, OUTBOX_LUA};
use crate::store::{RedisStore, StoreError};

const TAG: &str = "booking";

/// Checks the idempotency record, the ban, the person's active appointment, the user's
/// active appointments and the seats, then writes: one atomic step.
static BOOK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            OUTBOX_LUA,
            r"
local idem, ban, person, user_active, seats, code, appt, user_all, due =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local has_idem, body_hash, idem_ttl, now, max_active, capacity, seat, id, doc, created, no_show_at =
  ARGV[1] == '1', ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]),
  ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
if has_idem then
  -- Expired by the server's clock, as on SQLite (PEXPIRE only collects the garbage).
  local earlier = redis.call('HMGET', idem, 'hash', 'outcome', 'expires')
  if earlier[1] and tonumber(earlier[3] or '0') > now then
    if earlier[1] ~= body_hash then return {'MISMATCH'} end
    return {'REPLAY', earlier[2]}
  end
end
local function answer(kind, outcome)
  if has_idem then
    redis.call('HSET', idem, 'hash', body_hash, 'outcome', outcome, 'expires', now + idem_ttl)
    redis.call('PEXPIRE', idem, idem_ttl)
  end
  return {kind, outcome}
end
local banned_until = tonumber(redis.call('GET', ban) or '0')
if banned_until > now then return answer('REFUSED', 'BANNED:' .. banned_until) end
if redis.call('EXISTS', person) == 1 then return answer('REFUSED', 'ALREADY_BOOKED') end
if redis.call('SCARD', user_active) >= max_active then return answer('REFUSED', 'TOO_MANY_ACTIVE') end
if tonumber(redis.call('HGET', seats, seat) or '0') >= capacity then
  return answer('REFUSED', 'SLOT_FULL')
end
if not redis.call('SET', code, id, 'NX') then return {'CODE_TAKEN'} end
redis.call('HINCRBY', seats, seat, 1)
redis.call('SET', person, id)
redis.call('SADD', user_active, id)
redis.call('HSET', appt, 'status', 'booked', 'doc', doc)
redis.call('ZADD', user_all, created, id)
redis.call('ZADD', due, no_show_at, id)
outbox_apply(10, 12)
return answer('BOOKED', 'OK:' .. id)
",
        ]
        .concat(),
    )
});

/// Compare-and-set of an appointment's status with the side effects of leaving `booked`.
static TRANSITION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            OUTBOX_LUA,
            r"
local appt, person, user_active, seats, due, no_shows, ban =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local from, to, doc, id, seat, missed_at, now, window, limit, ban_ms =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]),
  tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
if redis.call('HGET', appt, 'status') ~= from then return 0 end
redis.call('HSET', appt, 'status', to, 'doc', doc)
if from == 'booked' then
  if redis.call('GET', person) == id then redis.call('DEL', person) end
  redis.call('SREM', user_active, id)
  redis.call('ZREM', due, id)
end
if to == 'cancelled' then redis.call('HINCRBY', seats, seat, -1) end
if to == 'no_show' then
  redis.call('ZADD', no_shows, missed_at, id)
  redis.call('ZREMRANGEBYSCORE', no_shows, '-inf', now - window)
  redis.call('PEXPIRE', no_shows, window)
  if redis.call('ZCARD', no_shows) >= limit then
    local banned_until = now + ban_ms
    if banned_until > tonumber(redis.call('GET', ban) or '0') then
      redis.call('SET', ban, banned_until, 'PX', ban_ms)
    end
  end
end
outbox_apply(8, 11)
return 1
",
        ]
        .concat(),
    )
});

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
    fn person(&self, id_hash: &str, what: &str) -> String {
        self.key(format!("person:{id_hash}:{what}"))
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

    async fn book(&self, booking: NewBooking) -> Result<BookOutcome, StoreError> {
        let keys = Keys(self);
        let a = &booking.appointment;
        let idem = booking.idempotency.as_ref();
        let mut invocation = BOOK.prepare_invoke();
        invocation
            .key(keys.idempotency(&a.user_id, idem.map_or("", |i| i.key.as_str())))
            .key(keys.person(&a.id_hash, "ban"))
            .key(keys.person(&a.id_hash, "active"))
            .key(keys.user(&a.user_id, "active"))
            .key(keys.seats(&a.slot.hall, &a.slot.date_key()))
            .key(keys.code(a.code.as_str()))
            .key(keys.appointment(&a.id))
            .key(keys.user(&a.user_id, "all"))
            .key(keys.due())
            .key(&outbox_keys(self, TAG))
            .arg(if idem.is_some() { "1" } else { "0" })
            .arg(idem.map_or("", |i| i.body_hash.as_str()))
            .arg(idem.map_or(1, |i| i.ttl.as_millis() as u64))
            .arg(booking.now.timestamp_millis())
            .arg(booking.max_active)
            .arg(booking.capacity)
            .arg(a.slot.time_key())
            .arg(&a.id)
            .arg(to_json(a)?)
            .arg(a.created_at.timestamp_millis())
            .arg(booking.no_show_at.timestamp_millis())
            .arg(booking.notices.redis_args());
        let reply: Vec<String> = invocation.invoke_async(&mut self.conn()).await?;
        let unexpected = || StoreError::Backend(format!("unexpected booking reply {reply:?}"));
        Ok(match reply.first().map(String::as_str) {
            Some("BOOKED") => BookOutcome::Booked(Box::new(a.clone())),
            Some("REFUSED") => BookOutcome::Refused(
                reply
                    .get(1)
                    .and_then(|r| Refusal::decode(r))
                    .ok_or_else(unexpected)?,
            ),
            Some("REPLAY") => {
                BookOutcome::Replayed(decode_outcome(reply.get(1).ok_or_else(unexpected)?)?)
            }
            Some("MISMATCH") => BookOutcome::IdempotencyMismatch,
            Some("CODE_TAKEN") => BookOutcome::CodeTaken,
            _ => return Err(unexpected()),
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

    async fn transition(
        &self,
        from: Status,
        next: &Appointment,
        notices: &Notices,
        policy: NoShowPolicy,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let keys = Keys(self);
        let changed: i64 = TRANSITION
            .key(keys.appointment(&next.id))
            .key(keys.person(&next.id_hash, "active"))
            .key(keys.user(&next.user_id, "active"))
            .key(keys.seats(&next.slot.hall, &next.slot.date_key()))
            .key(keys.due())
            .key(keys.person(&next.id_hash, "no_shows"))
            .key(keys.person(&next.id_hash, "ban"))
            .key(&outbox_keys(self, TAG))
            .arg(from.as_str())
            .arg(next.status.as_str())
            .arg(to_json(next)?)
            .arg(&next.id)
            .arg(next.slot.time_key())
            .arg(next.starts_at.timestamp_millis())
            .arg(now.timestamp_millis())
            .arg(policy.window.as_millis() as u64)
            .arg(policy.limit)
            .arg(policy.ban.as_millis() as u64)
            .arg(notices.redis_args())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(changed == 1)
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
}
