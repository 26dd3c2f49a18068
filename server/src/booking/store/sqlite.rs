use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{
    decode_outcome, from_json, to_json, BookOutcome, BookingStore, DueNoShows, NewBooking,
    NoShowPolicy, Refusal,
};
use crate::booking::appointment::{Appointment, AppointmentCode, Status};
use crate::booking::schedule::day_key;
use crate::notify::store::Notices;
use crate::store::{SqliteStore, StoreError};

fn ms(duration: std::time::Duration) -> i64 {
    duration.as_millis() as i64
}

fn check(tx: &Transaction, booking: &NewBooking) -> Result<Option<Refusal>, StoreError> {
    let a = &booking.appointment;
    let now = booking.now.timestamp_millis();
    let banned_until: Option<i64> = tx
        .query_row(
            "SELECT until FROM person_bans WHERE id_hash = ?1 AND until > ?2",
            params![a.id_hash, now],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(until) = banned_until.and_then(DateTime::from_timestamp_millis) {
        return Ok(Some(Refusal::Banned { until }));
    }
    let active: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM appointments WHERE id_hash = ?1 AND status = 'booked')",
        [&a.id_hash],
        |r| r.get(0),
    )?;
    if active {
        return Ok(Some(Refusal::AlreadyBooked));
    }
    let held: u32 = tx.query_row(
        "SELECT COUNT(*) FROM appointments WHERE user_id = ?1 AND status = 'booked'",
        [&a.user_id],
        |r| r.get(0),
    )?;
    if held >= booking.max_active {
        return Ok(Some(Refusal::TooManyActive));
    }
    let taken: u32 = tx
        .query_row(
            "SELECT taken FROM slot_seats WHERE hall_id = ?1 AND day = ?2 AND time = ?3",
            params![a.slot.hall, a.slot.date_key(), a.slot.time_key()],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    if taken >= booking.capacity {
        return Ok(Some(Refusal::SlotFull));
    }
    Ok(None)
}

fn book(tx: &Transaction, booking: &NewBooking) -> Result<BookOutcome, StoreError> {
    let a = &booking.appointment;
    let now = booking.now.timestamp_millis();
    tx.execute(
        "DELETE FROM booking_idempotency WHERE rowid IN
           (SELECT rowid FROM booking_idempotency WHERE expires_at <= ?1 LIMIT 16)",
        [now],
    )?;
    if let Some(idem) = &booking.idempotency {
        let earlier: Option<(String, String)> = tx
            .query_row(
                "SELECT body_hash, outcome FROM booking_idempotency
                 WHERE user_id = ?1 AND key = ?2 AND expires_at > ?3",
                params![a.user_id, idem.key, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((body_hash, outcome)) = earlier {
            if body_hash != idem.body_hash {
                return Ok(BookOutcome::IdempotencyMismatch);
            }
            return Ok(BookOutcome::Replayed(decode_outcome(&outcome)?));
        }
    }
    let refusal = check(tx, booking)?;
    // The rules first, then the code: a refused booking is refused whatever its code.
    let code_taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM appointments WHERE code = ?1)",
        [a.code.as_str()],
        |r| r.get(0),
    )?;
    if refusal.is_none() && code_taken {
        return Ok(BookOutcome::CodeTaken);
    }
    if refusal.is_none() {
        tx.execute(
            "INSERT INTO appointments (id, code, user_id, slot_id, id_hash, status, no_show_at, created_at, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, 'booked', ?6, ?7, ?8)",
            params![
                a.id,
                a.code.as_str(),
                a.user_id,
                a.slot.to_string(),
                a.id_hash,
                booking.no_show_at.timestamp_millis(),
                a.created_at.timestamp_millis(),
                to_json(a)?
            ],
        )?;
        tx.execute(
            "INSERT INTO slot_seats (hall_id, day, time, taken) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (hall_id, day, time) DO UPDATE SET taken = taken + 1",
            params![a.slot.hall, a.slot.date_key(), a.slot.time_key()],
        )?;
        booking.notices.write_in_tx(tx)?;
    }
    if let Some(idem) = &booking.idempotency {
        let outcome = match refusal {
            Some(refusal) => refusal.encode(),
            None => format!("OK:{}", a.id),
        };
        tx.execute(
            "INSERT INTO booking_idempotency (user_id, key, body_hash, outcome, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id, key) DO UPDATE SET body_hash = excluded.body_hash,
               outcome = excluded.outcome, expires_at = excluded.expires_at",
            params![
                a.user_id,
                idem.key,
                idem.body_hash,
                outcome,
                now + ms(idem.ttl)
            ],
        )?;
    }
    Ok(match refusal {
        Some(refusal) => BookOutcome::Refused(refusal),
        None => BookOutcome::Booked(Box::new(a.clone())),
    })
}

fn count_no_show(
    tx: &Transaction,
    appointment: &Appointment,
    policy: NoShowPolicy,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO person_no_shows (appointment_id, id_hash, at) VALUES (?1, ?2, ?3)",
        params![
            appointment.id,
            appointment.id_hash,
            appointment.starts_at.timestamp_millis()
        ],
    )?;
    let recent: u32 = tx.query_row(
        "SELECT COUNT(*) FROM person_no_shows WHERE id_hash = ?1 AND at > ?2",
        params![appointment.id_hash, now - ms(policy.window)],
        |r| r.get(0),
    )?;
    if recent >= policy.limit {
        tx.execute(
            "INSERT INTO person_bans (id_hash, until) VALUES (?1, ?2)
             ON CONFLICT (id_hash) DO UPDATE SET until = MAX(until, excluded.until)",
            params![appointment.id_hash, now + ms(policy.ban)],
        )?;
    }
    Ok(())
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

    async fn book(&self, booking: NewBooking) -> Result<BookOutcome, StoreError> {
        self.write(move |tx| book(tx, &booking)).await
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

    async fn transition(
        &self,
        from: Status,
        next: &Appointment,
        notices: &Notices,
        policy: NoShowPolicy,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let next = next.clone();
        let notices = notices.clone();
        let doc = to_json(&next)?;
        self.write(move |tx| {
            let changed = tx.execute(
                "UPDATE appointments SET status = ?1, doc = ?2 WHERE id = ?3 AND status = ?4",
                params![next.status.as_str(), doc, next.id, from.as_str()],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            match next.status {
                Status::Cancelled => {
                    tx.execute(
                        "UPDATE slot_seats SET taken = taken - 1 WHERE hall_id = ?1 AND day = ?2 AND time = ?3",
                        params![next.slot.hall, next.slot.date_key(), next.slot.time_key()],
                    )?;
                }
                Status::NoShow => count_no_show(tx, &next, policy, now.timestamp_millis())?,
                _ => {}
            }
            notices.write_in_tx(tx)?;
            Ok(true)
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
}
