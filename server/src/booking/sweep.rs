//! No-shows: an appointment not checked in 30 minutes (configurable) after its slot ends.
//! A background sweep marks them; booking, check-in and the user's reads settle the due ones
//! first, so a rule never depends on when the sweep last ran. Each instance remembers when
//! the next no-show falls due, so those requests ask the store only when one may have.

use std::sync::Mutex;
use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, Utc};

use super::appointment::{Status, Step};
use super::{notices, Booking};
use crate::error::ApiError;
use crate::telemetry::mask;

const BATCH: usize = 100;

/// An appointment booked after a look at the store falls due no sooner than its slot's end,
/// and slots are bookable from tomorrow on: a slot's length at least after it was booked.
/// A minute is far inside that, so nothing booked meanwhile (by any instance) falls due unseen.
const NEW_BOOKINGS_DUE_AFTER: chrono::Duration = chrono::Duration::minutes(1);

/// Until when no appointment can have fallen due, as of this instance's last look at the store.
#[derive(Debug, Default)]
pub struct DueWatch(Mutex<Option<Quiet>>);

#[derive(Debug, Clone, Copy)]
struct Quiet {
    looked_at: DateTime<Utc>,
    until: DateTime<Utc>,
}

impl DueWatch {
    fn is_quiet(&self, now: DateTime<Utc>) -> bool {
        let quiet = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        // A clock set back (tests do) looks again.
        quiet.is_some_and(|q| q.looked_at <= now && now < q.until)
    }

    fn looked(&self, now: DateTime<Utc>, next_at: Option<DateTime<Utc>>) {
        let until = (now + NEW_BOOKINGS_DUE_AFTER).min(next_at.unwrap_or(DateTime::<Utc>::MAX_UTC));
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Quiet {
            looked_at: now,
            until,
        });
    }
}

impl Booking {
    /// Marks every appointment whose no-show time has come; returns how many this call marked.
    pub async fn settle_no_shows(&self, now: DateTime<Utc>) -> Result<usize, ApiError> {
        let watch = &self.due_watch;
        if watch.is_quiet(now) {
            return Ok(0);
        }
        let policy = self.settings.no_show_policy();
        let mut marked = 0;
        loop {
            let due = self.store.due_no_shows(now, BATCH).await?;
            let mut progressed = false;
            for id in &due.ids {
                let Some(appointment) = self.store.appointment(id).await? else {
                    continue;
                };
                let Ok(next) = appointment.after(Step::NoShow, "system", now) else {
                    continue;
                };
                // Another instance may have marked it (or staff checked it in) meanwhile.
                let notices = notices::changed(&self.catalog, Status::Booked, &next, now);
                if self
                    .store
                    .transition(Status::Booked, &next, &notices, policy, now)
                    .await?
                {
                    progressed = true;
                    marked += 1;
                    tracing::info!(
                        appointment = %next.id,
                        applicant = %mask::name(next.applicant.name.as_str()),
                        "appointment marked as no-show"
                    );
                }
            }
            if due.ids.len() < BATCH || !progressed {
                watch.looked(now, due.next_at);
                return Ok(marked);
            }
        }
    }
}

/// Runs the sweep (bookings a crash left between their steps first, then no-shows) every `sweep_interval_secs` for the life of the server.
pub fn spawn_no_show_sweeper(booking: web::Data<Booking>) {
    let period = Duration::from_secs(booking.settings.sweep_interval_secs);
    crate::clock::repeat(period, "no-show sweep", move || {
        let booking = booking.clone();
        async move {
            let now = booking.clock.now();
            booking.store.settle_interrupted(now).await?;
            booking.settle_no_shows(now).await
        }
    });
}
