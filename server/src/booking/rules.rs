//! The booking rules, written once for both backends: whether a booking may happen and what a
//! change of status does, as a plan of guards (checked in order against what is stored, the
//! first that fails is the answer) and effects. Each store only carries a plan out, atomically:
//! SQLite in one transaction, Redis in one generic script (`store::plan`).

use chrono::{DateTime, Utc};

use super::appointment::{Appointment, AppointmentCode, Status};
use super::schedule::SlotId;
use super::store::{BanScope, IdempotencyKey, NewBooking, NoShowPolicy, Refusal};
use crate::notify::store::Notices;

/// What the per-ID-number rules are kept per: one account's bookings for one ID number. The
/// number is never checked against its holder (there is no real-name verification), so a rule
/// kept per number alone would let anyone who knows a number read and move its holder's
/// state; kept per account, another account's bookings, no-shows and bans for the same number
/// neither show nor count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicantOf {
    pub user_id: String,
    pub id_hash: String,
}

impl ApplicantOf {
    pub fn of(appointment: &Appointment) -> Self {
        ApplicantOf {
            user_id: appointment.user_id.clone(),
            id_hash: appointment.id_hash.clone(),
        }
    }
}

/// Whose booking attempts a counter counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempts {
    Account { user_id: String },
    Applicant(ApplicantOf),
}

/// A condition on what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// The request's token is not revoked: neither by its id `jti` nor with every token of
    /// the account issued by `issued_at_ms` (else `Unauthorized`).
    TokenLive {
        user_id: String,
        jti: String,
        issued_at_ms: i64,
    },
    /// The account accepted the privacy notice `version` (else `ConsentRequired`).
    Consented { user_id: String, version: String },
    /// Counts one attempt in the window ending at `window_ends` (Unix ms), and holds while
    /// the window has at most `limit` (else `Throttled` until the window ends). It writes:
    /// an attempt counts whatever the answer.
    AttemptCounted {
        who: Attempts,
        limit: u32,
        window_ends: i64,
        window_ms: u64,
    },
    /// The account is not barred from booking at `now` (else `Banned` until when it is).
    AccountNotBanned { user_id: String, now: DateTime<Utc> },
    /// The account is not barred from booking for this ID number at `now`.
    ApplicantNotBanned {
        applicant: ApplicantOf,
        now: DateTime<Utc>,
    },
    /// The account holds no booked appointment for the ID number (else `AlreadyBooked`).
    ApplicantFree { applicant: ApplicantOf },
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
    /// No ban lift is recorded on the appointment (else `NotLifted`: one was, first).
    NotLifted { appointment_id: String },
    /// The stored appointment is still at `version` (else `Changed`): nothing was stored over
    /// the copy a change was made from.
    VersionIs {
        appointment_id: String,
        version: u64,
    },
}

/// What a plan does once every guard held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Stores a new appointment, booked: it holds its applicant's and its user's active place
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
    /// The appointment left `Booked`: its applicant's and user's active place and its
    /// no-show watch end.
    Release {
        appointment_id: String,
        applicant: ApplicantOf,
    },
    /// A missed appointment counts towards the applicant's and the account's bans under
    /// `policy`.
    CountNoShow {
        appointment_id: String,
        applicant: ApplicantOf,
        missed_at: DateTime<Utc>,
        now: DateTime<Utc>,
        policy: NoShowPolicy,
    },
    /// Staff lifted the ban a missed appointment helped earn: it stops counting, and each ban
    /// (the applicant's, the account's) whose remaining no-shows in the window are below its
    /// limit ends.
    ForgiveNoShow {
        appointment_id: String,
        applicant: ApplicantOf,
        now: DateTime<Utc>,
        policy: NoShowPolicy,
    },
    Notify(Notices),
}

/// Why a plan stopped: the first guard that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The request's token was revoked.
    Unauthorized,
    /// The account has not accepted the current privacy notice.
    ConsentRequired,
    Refused(Refusal),
    CodeTaken,
    Changed,
    NotLifted,
    /// Past an attempt limit until the window ends.
    Throttled {
        until: DateTime<Utc>,
    },
}

impl Stop {
    /// The text a store answers for a stop; the stop's own details follow `:` (a ban's or a
    /// window's end in Unix ms), as [`Stop::text`] writes them.
    pub fn code(self) -> &'static str {
        match self {
            Stop::Unauthorized => "UNAUTHORIZED",
            Stop::ConsentRequired => "CONSENT_REQUIRED",
            Stop::Refused(refusal) => refusal.code(),
            Stop::CodeTaken => "CODE_TAKEN",
            Stop::Changed => "CHANGED",
            Stop::NotLifted => "NOT_LIFTED",
            Stop::Throttled { .. } => "THROTTLED",
        }
    }

    /// The whole text of the stop, details included.
    pub fn text(self) -> String {
        match self {
            Stop::Refused(refusal) => refusal.encode(),
            Stop::Throttled { until } => format!("THROTTLED:{}", until.timestamp_millis()),
            other => other.code().into(),
        }
    }

    pub fn decode(text: &str) -> Option<Stop> {
        // A revocation's found time may follow: the answer is the same.
        if text.split(':').next() == Some("UNAUTHORIZED") {
            return Some(Stop::Unauthorized);
        }
        match text {
            "CONSENT_REQUIRED" => Some(Stop::ConsentRequired),
            "CODE_TAKEN" => Some(Stop::CodeTaken),
            "CHANGED" => Some(Stop::Changed),
            "NOT_LIFTED" => Some(Stop::NotLifted),
            other => match other.strip_prefix("THROTTLED:") {
                Some(until) => Some(Stop::Throttled {
                    until: DateTime::from_timestamp_millis(until.parse().ok()?)?,
                }),
                None => Refusal::decode(other).map(Stop::Refused),
            },
        }
    }
}

impl Guard {
    /// The answer when this guard fails; `found` is what the store holds that refused it
    /// (the end of a ban).
    pub fn stop(&self, found: Option<DateTime<Utc>>) -> Stop {
        match self {
            Guard::TokenLive { .. } => Stop::Unauthorized,
            Guard::Consented { .. } => Stop::ConsentRequired,
            Guard::AttemptCounted { window_ends, .. } => Stop::Throttled {
                until: DateTime::from_timestamp_millis(*window_ends).unwrap_or_default(),
            },
            Guard::AccountNotBanned { now, .. } => Stop::Refused(Refusal::Banned {
                until: found.unwrap_or(*now),
                scope: BanScope::Account,
            }),
            Guard::ApplicantNotBanned { now, .. } => Stop::Refused(Refusal::Banned {
                until: found.unwrap_or(*now),
                scope: BanScope::Applicant,
            }),
            Guard::ApplicantFree { .. } => Stop::Refused(Refusal::AlreadyBooked),
            Guard::UserBelow { .. } => Stop::Refused(Refusal::TooManyActive),
            Guard::SeatFree { .. } => Stop::Refused(Refusal::SlotFull),
            Guard::CodeFree { .. } => Stop::CodeTaken,
            Guard::StatusIs { .. } | Guard::VersionIs { .. } => Stop::Changed,
            Guard::NotLifted { .. } => Stop::NotLifted,
        }
    }

    /// Whether this guard is about who asks (their token, their consent): checked before an
    /// answer record is looked up, so an idempotent replay needs it to hold too.
    pub fn is_about_the_caller(&self) -> bool {
        matches!(self, Guard::TokenLive { .. } | Guard::Consented { .. })
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
            Some(
                Stop::Unauthorized
                | Stop::ConsentRequired
                | Stop::CodeTaken
                | Stop::Changed
                | Stop::NotLifted
                | Stop::Throttled { .. },
            ) => None,
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

/// A booking: if the caller was not checked before (`booking.caller`), its token is live and
/// the account accepted the privacy notice; the attempt is counted for the account and for
/// the account's applicant, and both are within their limits; neither the account nor the applicant (under this account)
/// is banned, the account holds nothing booked for the applicant and fewer than the maximum in
/// all, a seat is free, and the code is unique; then the seat is taken, the appointment stored
/// and its notices written.
pub fn book(booking: &NewBooking) -> Plan {
    let a = &booking.appointment;
    let applicant = ApplicantOf::of(a);
    let limits = &booking.attempts;
    let window_ends = limits.window_ends(booking.now);
    let window_ms = limits.window.as_millis() as u64;
    let caller = booking.caller.iter().flat_map(|caller| {
        [
            Guard::TokenLive {
                user_id: a.user_id.clone(),
                jti: caller.jti.clone(),
                issued_at_ms: caller.issued_at_ms,
            },
            Guard::Consented {
                user_id: a.user_id.clone(),
                version: caller.notice_version.clone(),
            },
        ]
    });
    let rules = [
        Guard::AttemptCounted {
            who: Attempts::Account {
                user_id: a.user_id.clone(),
            },
            limit: limits.per_account,
            window_ends,
            window_ms,
        },
        Guard::AttemptCounted {
            who: Attempts::Applicant(applicant.clone()),
            limit: limits.per_applicant,
            window_ends,
            window_ms,
        },
        Guard::AccountNotBanned {
            user_id: a.user_id.clone(),
            now: booking.now,
        },
        Guard::ApplicantNotBanned {
            applicant: applicant.clone(),
            now: booking.now,
        },
        Guard::ApplicantFree { applicant },
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
    ];
    Plan {
        remember: booking.idempotency.as_ref().map(|key| Remember {
            user_id: a.user_id.clone(),
            key: key.clone(),
            now: booking.now,
            done: booked_outcome(&a.id),
        }),
        guards: caller.chain(rules).collect(),
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
            applicant: ApplicantOf::of(next),
        });
    }
    match next.status {
        Status::Cancelled => effects.push(Effect::FreeSeat {
            slot: next.slot.clone(),
        }),
        Status::NoShow => effects.push(Effect::CountNoShow {
            appointment_id: next.id.clone(),
            applicant: ApplicantOf::of(next),
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

/// The stored appointment is the copy `next` was made from.
fn unchanged_since_read(next: &Appointment) -> Guard {
    Guard::VersionIs {
        appointment_id: next.id.clone(),
        version: next.made_from(),
    }
}

/// Staff lift the ban `lifted` (a no-show, now carrying its `ban_lift`) helped earn: if it is
/// still a no-show with no lift recorded, and unchanged since it was read (the retention
/// sweep may have removed its details meanwhile), the record is stored and its no-show
/// forgiven.
pub fn lift_ban(lifted: &Appointment, policy: NoShowPolicy, now: DateTime<Utc>) -> Plan {
    Plan {
        remember: None,
        guards: vec![
            Guard::StatusIs {
                appointment_id: lifted.id.clone(),
                status: Status::NoShow,
            },
            Guard::NotLifted {
                appointment_id: lifted.id.clone(),
            },
            unchanged_since_read(lifted),
        ],
        effects: vec![
            Effect::Update {
                appointment: Box::new(lifted.clone()),
            },
            Effect::ForgiveNoShow {
                appointment_id: lifted.id.clone(),
                applicant: ApplicantOf::of(lifted),
                now,
                policy,
            },
        ],
    }
}

/// The retention sweep replaces an ended appointment by `anonymised` if it is unchanged
/// since it was read (a ban lift stored meanwhile would be lost): nothing else changes (its
/// seat, no-shows and bans stay as they are).
pub fn anonymise(anonymised: &Appointment) -> Plan {
    Plan {
        remember: None,
        guards: vec![unchanged_since_read(anonymised)],
        effects: vec![Effect::Update {
            appointment: Box::new(anonymised.clone()),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::appointment::tests::booked;
    use crate::booking::appointment::Step;
    use crate::booking::store::Caller;
    use std::time::Duration;

    fn policy() -> NoShowPolicy {
        NoShowPolicy {
            window: Duration::from_secs(86400),
            limit: 2,
            account_limit: 4,
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
                Effect::ForgiveNoShow { .. } => "forgive no-show",
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
            attempts: crate::booking::store::AttemptLimits {
                per_account: 300,
                per_applicant: 30,
                window: Duration::from_secs(600),
            },
            no_show_at: a.ends_at,
            now: a.created_at,
            idempotency: None,
            notices: Notices::default(),
            caller: Some(Caller {
                jti: "jti-1".into(),
                issued_at_ms: 1,
                notice_version: "2026-12-01".into(),
            }),
        });
        let stops: Vec<Stop> = plan.guards.iter().map(|g| g.stop(None)).collect();
        let window_ends = DateTime::from_timestamp_millis(
            (a.created_at.timestamp_millis() / 600_000 + 1) * 600_000,
        )
        .unwrap();
        assert_eq!(
            stops,
            [
                Stop::Unauthorized,
                Stop::ConsentRequired,
                Stop::Throttled { until: window_ends },
                Stop::Throttled { until: window_ends },
                Stop::Refused(Refusal::Banned {
                    until: a.created_at,
                    scope: BanScope::Account,
                }),
                Stop::Refused(Refusal::Banned {
                    until: a.created_at,
                    scope: BanScope::Applicant,
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

    #[test]
    fn every_stop_reads_back_from_its_text() {
        let at = booked().created_at;
        for stop in [
            Stop::Unauthorized,
            Stop::ConsentRequired,
            Stop::CodeTaken,
            Stop::Changed,
            Stop::NotLifted,
            Stop::Throttled { until: at },
            Stop::Refused(Refusal::SlotFull),
            Stop::Refused(Refusal::Banned {
                until: at,
                scope: BanScope::Account,
            }),
            Stop::Refused(Refusal::Banned {
                until: at,
                scope: BanScope::Applicant,
            }),
        ] {
            assert_eq!(Stop::decode(&stop.text()), Some(stop));
        }
    }

    #[test]
    fn a_lift_forgives_a_no_show_not_yet_lifted() {
        let a = booked();
        let missed = a.after(Step::NoShow, "system", a.created_at).unwrap();
        let lifted = missed
            .lifted("staff:s1", "到场未签到", a.created_at)
            .unwrap();
        let plan = lift_ban(&lifted, policy(), a.created_at);
        assert_eq!(kinds(&plan), ["update", "forgive no-show"]);
        let stops: Vec<Stop> = plan.guards.iter().map(|g| g.stop(None)).collect();
        assert_eq!(stops, [Stop::Changed, Stop::NotLifted, Stop::Changed]);
        assert_eq!(
            plan.guards[2],
            Guard::VersionIs {
                appointment_id: a.id.clone(),
                version: missed.version,
            }
        );
    }
}
