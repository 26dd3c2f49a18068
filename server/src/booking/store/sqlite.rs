use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{
    decode_outcome, from_json, to_json, Applied, BookingStore, DueNoShows, ErasedAppointments,
};
use crate::auth::token::{is_revoked, revoked_key, user_revoked_key};
use crate::booking::appointment::{Appointment, AppointmentCode, Status};
use crate::booking::rules::{ApplicantOf, Attempts, Effect, Guard, Plan, Stop};
use crate::booking::schedule::day_key;
use crate::id_hash::DIGEST_TAG;
use crate::store::{live_kv_value, SqliteStore, StoreError};

fn ms(duration: std::time::Duration) -> i64 {
    duration.as_millis() as i64
}

/// The account's own ban and no-shows are kept under this ID hash (no HMAC is empty).
const WHOLE_ACCOUNT: &str = "";

/// The row of `booking_attempts` that counts `who`'s attempts.
fn attempts_key(who: &Attempts) -> String {
    match who {
        Attempts::Account { user_id } => format!("account:{user_id}"),
        Attempts::Applicant(ApplicantOf { user_id, id_hash }) => {
            format!("applicant:{user_id}:{id_hash}")
        }
    }
}

/// The end (Unix ms) of the ban of `user_id` for `id_hash` (or the whole account), if one
/// runs at `now`.
fn ban_until(
    tx: &Transaction,
    user_id: &str,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT until FROM booking_bans WHERE user_id = ?1 AND id_hash = ?2 AND until > ?3",
            params![user_id, id_hash, now.timestamp_millis()],
            |r| r.get(0),
        )
        .optional()?)
}

/// No-shows of `user_id` for `id_hash` (or, with [`WHOLE_ACCOUNT`], for anyone) missed after
/// `after` (Unix ms).
fn no_shows_after(
    tx: &Transaction,
    user_id: &str,
    id_hash: &str,
    after: i64,
) -> Result<u32, StoreError> {
    let sql = if id_hash == WHOLE_ACCOUNT {
        "SELECT COUNT(*) FROM no_shows WHERE user_id = ?1 AND ?2 = '' AND at > ?3"
    } else {
        "SELECT COUNT(*) FROM no_shows WHERE user_id = ?1 AND id_hash = ?2 AND at > ?3"
    };
    Ok(tx.query_row(sql, params![user_id, id_hash, after], |r| r.get(0))?)
}

/// Whether `guard` holds; the stop when it does not.
fn check(tx: &Transaction, guard: &Guard) -> Result<Option<Stop>, StoreError> {
    let banned = |user_id: &str, id_hash: &str, now| -> Result<Option<Stop>, StoreError> {
        let until = ban_until(tx, user_id, id_hash, now)?;
        Ok(until.map(|until| guard.stop(DateTime::from_timestamp_millis(until))))
    };
    let holds = match guard {
        Guard::TokenLive {
            user_id,
            jti,
            issued_at_ms,
        } => !is_revoked(
            live_kv_value(tx, &revoked_key(jti))?.as_deref(),
            live_kv_value(tx, &user_revoked_key(user_id))?.as_deref(),
            *issued_at_ms,
        ),
        Guard::Consented { user_id, version } => {
            tx.query_row(
                "SELECT privacy_version FROM users WHERE id = ?1",
                [user_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten()
            .as_ref()
                == Some(version)
        }
        Guard::AttemptCounted {
            who,
            limit,
            window_ends,
            ..
        } => {
            tx.execute(
                "DELETE FROM booking_attempts WHERE rowid IN
                   (SELECT rowid FROM booking_attempts WHERE window_ends < ?1 LIMIT 16)",
                [window_ends],
            )?;
            let count: u32 = tx.query_row(
                "INSERT INTO booking_attempts (key, window_ends, n) VALUES (?1, ?2, 1)
                 ON CONFLICT (key) DO UPDATE SET
                   n = CASE WHEN window_ends = excluded.window_ends THEN n + 1 ELSE 1 END,
                   window_ends = excluded.window_ends
                 RETURNING n",
                params![attempts_key(who), window_ends],
                |r| r.get(0),
            )?;
            count <= *limit
        }
        Guard::AccountNotBanned { user_id, now } => {
            return banned(user_id, WHOLE_ACCOUNT, *now);
        }
        Guard::ApplicantNotBanned { applicant, now } => {
            return banned(&applicant.user_id, &applicant.id_hash, *now);
        }
        Guard::ApplicantFree { applicant } => !tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM appointments
               WHERE user_id = ?1 AND id_hash = ?2 AND status = 'booked')",
            params![applicant.user_id, applicant.id_hash],
            |r| r.get::<_, bool>(0),
        )?,
        Guard::UserBelow { user_id, max } => {
            tx.query_row(
                "SELECT COUNT(*) FROM appointments WHERE user_id = ?1 AND status = 'booked'",
                [user_id],
                |r| r.get::<_, u32>(0),
            )? < *max
        }
        Guard::SeatFree { slot, capacity } => {
            tx.query_row(
                "SELECT taken FROM slot_seats WHERE hall_id = ?1 AND day = ?2 AND time = ?3",
                params![slot.hall, slot.date_key(), slot.time_key()],
                |r| r.get::<_, u32>(0),
            )
            .optional()?
            .unwrap_or(0)
                < *capacity
        }
        Guard::CodeFree {
            code,
            appointment_id,
        } => !tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM appointments WHERE code = ?1 AND id != ?2)",
            params![code.as_str(), appointment_id],
            |r| r.get::<_, bool>(0),
        )?,
        Guard::StatusIs {
            appointment_id,
            status,
        } => {
            tx.query_row(
                "SELECT status FROM appointments WHERE id = ?1",
                [appointment_id],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .as_deref()
                == Some(status.as_str())
        }
        Guard::VersionIs {
            appointment_id,
            version,
        } => {
            tx.query_row(
                "SELECT COALESCE(json_extract(doc, '$.version'), 0) FROM appointments WHERE id = ?1",
                [appointment_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
                == Some(*version as i64)
        }
        Guard::NotLifted { appointment_id } => !tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM appointments
               WHERE id = ?1 AND json_extract(doc, '$.ban_lift') IS NOT NULL)",
            [appointment_id],
            |r| r.get::<_, bool>(0),
        )?,
    };
    Ok((!holds).then(|| guard.stop(None)))
}

fn carry_out(tx: &Transaction, effect: &Effect) -> Result<(), StoreError> {
    match effect {
        Effect::Insert {
            appointment: a,
            no_show_at,
        } => {
            tx.execute(
                "INSERT INTO appointments (id, code, user_id, slot_id, id_hash, status, no_show_at, created_at, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    a.id,
                    a.code.as_str(),
                    a.user_id,
                    a.slot.to_string(),
                    a.id_hash,
                    a.status.as_str(),
                    no_show_at.timestamp_millis(),
                    a.created_at.timestamp_millis(),
                    to_json(a)?
                ],
            )?;
        }
        Effect::Update { appointment: a } => {
            tx.execute(
                "UPDATE appointments SET status = ?1, doc = ?2 WHERE id = ?3",
                params![a.status.as_str(), to_json(a)?, a.id],
            )?;
        }
        Effect::TakeSeat { slot } => {
            tx.execute(
                "INSERT INTO slot_seats (hall_id, day, time, taken) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (hall_id, day, time) DO UPDATE SET taken = taken + 1",
                params![slot.hall, slot.date_key(), slot.time_key()],
            )?;
        }
        Effect::FreeSeat { slot } => {
            tx.execute(
                "UPDATE slot_seats SET taken = taken - 1 WHERE hall_id = ?1 AND day = ?2 AND time = ?3",
                params![slot.hall, slot.date_key(), slot.time_key()],
            )?;
        }
        // Here the holds and the no-show watch are the row's status, which `Update` changed.
        Effect::Release { .. } => {}
        Effect::CountNoShow {
            appointment_id,
            applicant,
            missed_at,
            now,
            policy,
        } => {
            let ApplicantOf { user_id, id_hash } = applicant;
            tx.execute(
                "INSERT OR IGNORE INTO no_shows (appointment_id, user_id, id_hash, at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    appointment_id,
                    user_id,
                    id_hash,
                    missed_at.timestamp_millis()
                ],
            )?;
            let after = policy.counted_after(*now);
            for (scope, limit) in [
                (id_hash.as_str(), policy.limit),
                (WHOLE_ACCOUNT, policy.account_limit),
            ] {
                if no_shows_after(tx, user_id, scope, after)? >= limit {
                    tx.execute(
                        "INSERT INTO booking_bans (user_id, id_hash, until) VALUES (?1, ?2, ?3)
                         ON CONFLICT (user_id, id_hash) DO UPDATE SET until = MAX(until, excluded.until)",
                        params![user_id, scope, policy.ban_until(*now)],
                    )?;
                }
            }
        }
        Effect::ForgiveNoShow {
            appointment_id,
            applicant,
            now,
            policy,
        } => {
            let ApplicantOf { user_id, id_hash } = applicant;
            tx.execute(
                "DELETE FROM no_shows WHERE appointment_id = ?1",
                [appointment_id],
            )?;
            let after = policy.counted_after(*now);
            for (scope, limit) in [
                (id_hash.as_str(), policy.limit),
                (WHOLE_ACCOUNT, policy.account_limit),
            ] {
                if no_shows_after(tx, user_id, scope, after)? < limit {
                    tx.execute(
                        "DELETE FROM booking_bans WHERE user_id = ?1 AND id_hash = ?2",
                        params![user_id, scope],
                    )?;
                }
            }
        }
        Effect::Notify(notices) => notices.write_in_tx(tx)?,
    }
    Ok(())
}

fn apply(tx: &Transaction, plan: &Plan) -> Result<Applied, StoreError> {
    // Who asks comes first: a replay of an earlier answer needs it to hold too.
    let (caller, rules): (Vec<&Guard>, Vec<&Guard>) =
        plan.guards.iter().partition(|g| g.is_about_the_caller());
    for guard in caller {
        if let Some(stop) = check(tx, guard)? {
            return Ok(Applied::Stopped(stop));
        }
    }
    if let Some(remember) = &plan.remember {
        let now = remember.now.timestamp_millis();
        tx.execute(
            "DELETE FROM booking_idempotency WHERE rowid IN
               (SELECT rowid FROM booking_idempotency WHERE expires_at <= ?1 LIMIT 16)",
            [now],
        )?;
        let earlier: Option<(String, String)> = tx
            .query_row(
                "SELECT body_hash, outcome FROM booking_idempotency
                 WHERE user_id = ?1 AND key = ?2 AND expires_at > ?3",
                params![remember.user_id, remember.key.key, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((body_hash, outcome)) = earlier {
            if body_hash != remember.key.body_hash {
                return Ok(Applied::IdempotencyMismatch);
            }
            return Ok(Applied::Replayed(decode_outcome(&outcome)?));
        }
    }
    let mut stop = None;
    for guard in rules {
        stop = check(tx, guard)?;
        if stop.is_some() {
            break;
        }
    }
    if stop.is_none() {
        for effect in &plan.effects {
            carry_out(tx, effect)?;
        }
    }
    if let Some(remember) = &plan.remember {
        if let Some(outcome) = remember.outcome(stop) {
            tx.execute(
                "INSERT INTO booking_idempotency (user_id, key, body_hash, outcome, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (user_id, key) DO UPDATE SET body_hash = excluded.body_hash,
                   outcome = excluded.outcome, expires_at = excluded.expires_at",
                params![
                    remember.user_id,
                    remember.key.key,
                    remember.key.body_hash,
                    outcome,
                    remember.now.timestamp_millis() + ms(remember.key.ttl)
                ],
            )?;
        }
    }
    Ok(stop.map_or(Applied::Done, Applied::Stopped))
}

fn select_docs(
    conn: &rusqlite::Connection,
    sql: &str,
    param: &str,
) -> Result<Vec<Appointment>, StoreError> {
    let mut statement = conn.prepare(sql)?;
    let docs = statement
        .query_map([param], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    docs.iter().map(|doc| from_json(doc)).collect()
}

#[async_trait]
impl BookingStore for SqliteStore {
    async fn seats_taken(
        &self,
        hall: &str,
        date: NaiveDate,
    ) -> Result<HashMap<String, u32>, StoreError> {
        let (hall, day) = (hall.to_owned(), day_key(date));
        self.read(move |c| {
            let mut statement =
                c.prepare("SELECT time, taken FROM slot_seats WHERE hall_id = ?1 AND day = ?2")?;
            let rows = statement.query_map(params![hall, day], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn apply(&self, plan: Plan) -> Result<Applied, StoreError> {
        self.write(move |tx| apply(tx, &plan)).await
    }

    async fn appointment(&self, id: &str) -> Result<Option<Appointment>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            Ok(select_docs(c, "SELECT doc FROM appointments WHERE id = ?1", &id)?.pop())
        })
        .await
    }

    async fn appointment_by_code(
        &self,
        code: &AppointmentCode,
    ) -> Result<Option<Appointment>, StoreError> {
        let code = code.as_str().to_owned();
        self.read(move |c| {
            Ok(select_docs(c, "SELECT doc FROM appointments WHERE code = ?1", &code)?.pop())
        })
        .await
    }

    async fn user_appointments(&self, user_id: &str) -> Result<Vec<Appointment>, StoreError> {
        let user_id = user_id.to_owned();
        self.read(move |c| {
            select_docs(
                c,
                "SELECT doc FROM appointments WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT 100",
                &user_id,
            )
        })
        .await
    }

    async fn due_no_shows(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<DueNoShows, StoreError> {
        self.read(move |c| {
            let mut statement = c.prepare(
                "SELECT id, no_show_at FROM appointments WHERE status = 'booked'
                 ORDER BY no_show_at, id LIMIT ?1",
            )?;
            let earliest = statement
                .query_map([limit as i64 + 1], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(DueNoShows::split(earliest, now, limit))
        })
        .await
    }
    async fn erase_ended_appointments(
        &self,
        user_id: &str,
        before: DateTime<Utc>,
    ) -> Result<ErasedAppointments, StoreError> {
        let user_id = user_id.to_owned();
        self.write(move |tx| {
            let all = select_docs(
                tx,
                "SELECT doc FROM appointments WHERE user_id = ?1",
                &user_id,
            )?;
            let (ended, mut erased) = ErasedAppointments::sort(all, before);
            for a in &ended {
                tx.execute("DELETE FROM appointments WHERE id = ?1", [&a.id])?;
            }
            erased.idempotency_records = tx.execute(
                "DELETE FROM booking_idempotency WHERE user_id = ?1",
                [&user_id],
            )?;
            Ok(erased)
        })
        .await
    }

    async fn ended_appointments(
        &self,
        created_before: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, StoreError> {
        let ended: Vec<&str> = Status::ENDED.iter().map(|s| s.as_str()).collect();
        let ended = serde_json::to_string(&ended).expect("strings serialise");
        self.read(move |c| {
            let mut statement = c.prepare(
                "SELECT doc FROM appointments
                 WHERE status IN (SELECT value FROM json_each(?1)) AND created_at <= ?2
                   AND instr(doc, '\"anonymised_at\"') = 0",
            )?;
            let docs = statement
                .query_map(params![ended, created_before.timestamp_millis()], |r| {
                    r.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            docs.iter().map(|doc| from_json(doc)).collect()
        })
        .await
    }

    async fn delete_expired_idempotency(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now = now.timestamp_millis();
        self.write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM booking_idempotency WHERE expires_at <= ?1",
                [now],
            )? as u64)
        })
        .await
    }

    async fn forget_unkeyed_digests(&self) -> Result<usize, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM booking_idempotency WHERE substr(body_hash, 1, ?2) != ?1",
                params![DIGEST_TAG, DIGEST_TAG.len() as i64],
            )?)
        })
        .await
    }
}
