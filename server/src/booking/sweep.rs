//! No-shows: an appointment not checked in 30 minutes (configurable) after its slot ends.
//! A background sweep marks them; booking, check-in and the user's reads settle the due ones
//! first, so a rule never depends on when the sweep last ran.

use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, Utc};

use super::appointment::{Status, Step};
use super::notices;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::telemetry::mask;

const BATCH: usize = 100;

/// Marks every appointment whose no-show time has come; returns how many this call marked.
pub async fn settle_no_shows(state: &AppState, now: DateTime<Utc>) -> Result<usize, ApiError> {
    let policy = state.booking.settings.no_show_policy();
    let mut marked = 0;
    loop {
        let due = state.store.due_no_shows(now, BATCH).await?;
        let mut progressed = false;
        for id in &due {
            let Some(appointment) = state.store.appointment(id).await? else {
                continue;
            };
            let Ok(next) = appointment.after(Step::NoShow, "system", now) else {
                continue;
            };
            // Another instance may have marked it (or staff checked it in) meanwhile.
            let notices = notices::changed(&state.booking.catalog, Status::Booked, &next, now);
            if state
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
        if due.len() < BATCH || !progressed {
            return Ok(marked);
        }
    }
}

/// Runs the sweep every `sweep_interval_secs` for the life of the server.
pub fn spawn_no_show_sweeper(state: web::Data<AppState>) {
    let every = Duration::from_secs(state.booking.settings.sweep_interval_secs.max(1));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = settle_no_shows(&state, state.clock.now()).await {
                tracing::warn!(error = %e, "no-show sweep failed; retrying next round");
            }
        }
    });
}
