//! What a booking change tells the user through the notification outbox. The notices are
//! written by the same store call as the change (see `store`), so neither exists without the other.

use chrono::{DateTime, Utc};

use super::appointment::{Appointment, Status};
use super::catalog::Catalog;
use crate::clock::china;
use crate::notify::store::Notices;
use crate::notify::{reminder_key, AppointmentFacts, Notification, Progress};

fn with_facts<T>(
    catalog: &Catalog,
    appointment: &Appointment,
    build: impl FnOnce(&AppointmentFacts) -> T,
) -> T {
    let hall = &appointment.slot.hall;
    let facts = AppointmentFacts {
        appointment_id: &appointment.id,
        user_id: &appointment.user_id,
        code: appointment.code.as_str(),
        office: catalog
            .hall(hall)
            .map_or(hall.as_str(), |h| h.name.as_str()),
        service: appointment.service.name(),
        starts_at: appointment.starts_at.with_timezone(&china()),
    };
    build(&facts)
}

/// A new appointment: the confirmation now, the reminder the evening before.
pub fn booked(catalog: &Catalog, appointment: &Appointment, now: DateTime<Utc>) -> Notices {
    let send = with_facts(catalog, appointment, |facts| {
        [
            Some(Notification::booking_confirmed(facts, now)),
            Notification::reminder(facts, now),
        ]
        .into_iter()
        .flatten()
        .collect()
    });
    Notices {
        send,
        withdraw: Vec::new(),
    }
}

/// A status change: what it tells the user (a cancellation, 受理, 已寄出, 待领取), and the
/// reminder that no longer applies once the appointment is no longer booked.
pub fn changed(catalog: &Catalog, from: Status, next: &Appointment, now: DateTime<Utc>) -> Notices {
    let send = with_facts(catalog, next, |facts| match next.status {
        Status::Cancelled => Some(Notification::cancelled(facts, "已按您的申请取消", now)),
        Status::Accepted => Some(Notification::progress(facts, Progress::Accepted, now)),
        Status::Shipped => next.ems_no.as_ref().map(|ems| {
            let shipped = Progress::Shipped {
                ems_no: ems.as_str(),
            };
            Notification::progress(facts, shipped, now)
        }),
        Status::ReadyForPickup => {
            Some(Notification::progress(facts, Progress::ReadyForPickup, now))
        }
        _ => None,
    });
    let withdraw = if from == Status::Booked {
        vec![reminder_key(&next.id)]
    } else {
        Vec::new()
    };
    Notices {
        send: send.into_iter().collect(),
        withdraw,
    }
}
