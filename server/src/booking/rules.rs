//! The booking rules, written once for both backends: whether a booking may happen and what a
//! change of status does, as a plan of guards (checked in order against what is stored, the
//! first that fails is the answer) and effects. Each store only carries a plan out, atomically:
//! SQLite in one transaction, Redis in one generic script (`store::plan`).

use chrono::{DateTime, Utc};

use super::appointment::{Appointment, AppointmentCode, Status};
use super::schedule::SlotId;
use super::store::{IdempotencyKey, NewBooking, NoShowPolicy, Refusal};
use crate::notify::store::Notices;

/// A condition on what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// The person is not barred from booking at `now` (else `Banned` until when they are).
    NotBanned { id_hash: String, now: DateTime<Utc> },
    /// The person holds no booked appointment (else `AlreadyBooked`).
    PersonFree { id_hash: String },
    /// The user holds fewer than `max` booked appointments (else `TooManyActive`).
    UserBelow { user_id: String, max: u32 },
    /// Fewer than `capacity` seats of the slot are taken (else `SlotFull`).
    SeatFree { slot: SlotId, capacity: u32 },
    /// No other appointment has the code (else `CodeTaken`). Always the last guard: a
    /// refused booking is refused whatever its code, and Redis claims the code as it checks.
    CodeFree {
        code: AppointmentCode,
        appointment_id: String,
    },
    /// The appointment is still in `status` (else `Changed`: someone else moved it first).
    StatusIs {
        appointment_id: String,
        status: Status,
    },
}

/// What a plan does once every guard held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Stores a new appointment, booked: it holds its person's and its user's active place
    /// and becomes a no-show at `no_show_at` unless it leaves `Booked` first.
    Insert {
        appointment: Box<Appointment>,
        no_show_at: DateTime<Utc>,
    },
    /// Replaces the stored appointment (its status and document).
    Update {
        appointment: Box<Appointment>,
    },
    TakeSeat {
        slot: SlotId,
    },
    FreeSeat {
        slot: SlotId,
    },
    /// The appointment left `Booked`: its person's and user's active place and its no-show
    /// watch end.
    Release {
        appointment_id: String,
        id_hash: String,
        user_id: String,
    },
    /// A missed appointment counts towards a ban under `policy`.
    CountNoShow {
        appointment_id: String,
        id_hash: String,
        missed_at: DateTime<Utc>,
        now: DateTime<Utc>,
        policy: NoShowPolicy,
    },
    Notify(Notices),
}

/// Why a plan stopped: the first guard that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Refused(Refusal),
    CodeTaken,
    Changed,
}

impl Stop {
    /// The text a store keeps or answers for a stop (a ban adds `:<until ms>`).
    pub fn code(self) -> &'static str {
        match self {
            Stop::Refused(refusal) => refusal.code(),
            Stop::CodeTaken => "CODE_TAKEN",
            Stop::Changed => "CHANGED",
        }
    }

    pub fn decode(text: &str) -> Option<Stop> {
        match text {
            "CODE_TAKEN" => Some(Stop::CodeTaken),
            "CHANGED" => Some(Stop::Changed),
            other => Refusal::decode(other).map(Stop::Refused),
        }
    }
}

impl Guard {
    /// The answer when this guard fails; `found` is what the store holds that refused it
    /// (the end of a ban).
    pub fn stop(&self, found: Option<DateTime<Utc>>) -> Stop {
        match self {
            Guard::NotBanned { now, .. } => Stop::Refused(Refusal::Banned {
                until: found.unwrap_or(*now),
            }),
            Guard::PersonFree { .. } => Stop::Refused(Refusal::AlreadyBooked),
            Guard::UserBelow { .. } => Stop::Refused(Refusal::TooManyActive),
            Guard::SeatFree { .. } => Stop::Refused(Refusal::SlotFull),
            Guard::CodeFree { .. } => Stop::CodeTaken,
            Guard::StatusIs { .. } => Stop::Changed,
        }
    }
}

/// How an answer is kept under a client's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remember {
    pub user_id: String,
    pub key: IdempotencyKey,
    pub now: DateTime<Utc>,
    /// What is kept when the plan runs: the booked appointment's id.
    pub done: String,
}

impl Remember {
    /// What is kept for `stop` (rules' refusals are, a collision of codes is not).
    pub fn outcome(&self, stop: Option<Stop>) -> Option<String> {
        match stop {
            None => Some(self.done.clone()),
            Some(Stop::Refused(refusal)) => Some(refusal.encode()),
            Some(Stop::CodeTaken | Stop::Changed) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub remember: Option<Remember>,
    pub guards: Vec<Guard>,
    pub effects: Vec<Effect>,
}

/// The idempotency record's text of a booking that happened.
pub fn booked_outcome(id: &str) -> String {
    format!("OK:{id}")
}

/// A booking: the person is not banned, holds nothing booked, the user holds fewer than the
/// maximum, a seat is free, and the code is unique; then the seat is taken, the appointment
/// stored and its notices written.
pub fn book(booking: &NewBooking) -> Plan {
    let a = &booking.appointment;
    Plan {
        remember: booking.idempotency.as_ref().map(|key| Remember {
            user_id: a.user_id.clone(),
            key: key.clone(),
            now: booking.now,
            done: booked_outcome(&a.id),
        }),
        guards: vec![
            Guard::NotBanned {
                id_hash: a.id_hash.clone(),
                now: booking.now,
            },
            Guard::PersonFree {
                id_hash: a.id_hash.clone(),
            },
            Guard::UserBelow {
                user_id: a.user_id.clone(),
                max: booking.max_active,
            },
            Guard::SeatFree {
                slot: a.slot.clone(),
                capacity: booking.capacity,
            },
            Guard::CodeFree {
                code: a.code.clone(),
                appointment_id: a.id.clone(),
            },
        ],
        effects: vec![
            Effect::TakeSeat {
                slot: a.slot.clone(),
            },
            Effect::Insert {
                appointment: Box::new(a.clone()),
                no_show_at: booking.no_show_at,
            },
            Effect::Notify(booking.notices.clone()),
        ],
    }
}

/// A change of status from `from` to `next.status`: leaving `Booked` releases the person's
/// and the user's active place, cancelling frees the seat, a no-show counts towards a ban.
pub fn transition(
    from: Status,
    next: &Appointment,
    notices: &Notices,
    policy: NoShowPolicy,
    now: DateTime<Utc>,
) -> Plan {
    let mut effects = vec![Effect::Update {
        appointment: Box::new(next.clone()),
    }];
    if from == Status::Booked {
        effects.push(Effect::Release {
            appointment_id: next.id.clone(),
            id_hash: next.id_hash.clone(),
            user_id: next.user_id.clone(),
        });
    }
    match next.status {
        Status::Cancelled => effects.push(Effect::FreeSeat {
            slot: next.slot.clone(),
        }),
        Status::NoShow => effects.push(Effect::CountNoShow {
            appointment_id: next.id.clone(),
            id_hash: next.id_hash.clone(),
            missed_at: next.starts_at,
            now,
            policy,
        }),
        _ => {}
    }
    effects.push(Effect::Notify(notices.clone()));
    Plan {
        remember: None,
        guards: vec![Guard::StatusIs {
            appointment_id: next.id.clone(),
            status: from,
        }],
        effects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::appointment::tests::booked;
    use crate::booking::appointment::Step;
    use std::time::Duration;

    fn policy() -> NoShowPolicy {
        NoShowPolicy {
            window: Duration::from_secs(86400),
            limit: 2,
            ban: Duration::from_secs(86400),
        }
    }

    fn kinds(plan: &Plan) -> Vec<&'static str> {
        plan.effects
            .iter()
            .map(|e| match e {
                Effect::Insert { .. } => "insert",
                Effect::Update { .. } => "update",
                Effect::TakeSeat { .. } => "take seat",
                Effect::FreeSeat { .. } => "free seat",
                Effect::Release { .. } => "release",
                Effect::CountNoShow { .. } => "count no-show",
                Effect::Notify(_) => "notify",
            })
            .collect()
    }

    #[test]
    fn a_booking_checks_the_rules_before_the_code() {
        let a = booked();
        let plan = book(&NewBooking {
            appointment: a.clone(),
            capacity: 6,
            max_active: 3,
            no_show_at: a.ends_at,
            now: a.created_at,
            idempotency: None,
            notices: Notices::default(),
        });
        let stops: Vec<Stop> = plan.guards.iter().map(|g| g.stop(None)).collect();
        assert_eq!(
            stops,
            [
                Stop::Refused(Refusal::Banned {
                    until: a.created_at
                }),
                Stop::Refused(Refusal::AlreadyBooked),
                Stop::Refused(Refusal::TooManyActive),
                Stop::Refused(Refusal::SlotFull),
                Stop::CodeTaken,
            ]
        );
        assert_eq!(kinds(&plan), ["take seat", "insert", "notify"]);
    }

    #[test]
    fn what_each_transition_does() {
        let a = booked();
        let now = a.created_at;
        let plan = |step: Step| {
            let next = a.after(step, "user", now).unwrap();
            transition(a.status, &next, &Notices::default(), policy(), now)
        };
        assert_eq!(
            kinds(&plan(Step::Cancel)),
            ["update", "release", "free seat", "notify"]
        );
        assert_eq!(
            kinds(&plan(Step::NoShow)),
            ["update", "release", "count no-show", "notify"]
        );
        assert_eq!(kinds(&plan(Step::CheckIn)), ["update", "release", "notify"]);
        let checked_in = a.after(Step::CheckIn, "staff:s", now).unwrap();
        let accepted = checked_in
            .after(
                Step::Accept {
                    fee_yuan: 20,
                    delivery: crate::booking::appointment::Delivery::Pickup,
                },
                "staff:s",
                now,
            )
            .unwrap();
        let later = transition(
            Status::CheckedIn,
            &accepted,
            &Notices::default(),
            policy(),
            now,
        );
        assert_eq!(kinds(&later), ["update", "notify"]);
        assert_eq!(later.guards[0].stop(None), Stop::Changed);
    }
}
