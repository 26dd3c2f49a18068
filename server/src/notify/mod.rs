//! Service notifications (WeChat 服务通知): subscriptions, the durable outbox, and its sender.
//!
//! # Writing a notification with your own state change
//!
//! A capability builds a [`Notification`] with one of its constructors
//! ([`Notification::booking_confirmed`], [`Notification::reminder`], …) and writes it **in
//! the same step** as the state change that causes it, so neither exists without the other:
//!
//! - **SQLite**: inside your `store.write(|tx| …)`, call
//!   [`store::enqueue_in_tx`]`(tx, &notification)` (and [`store::cancel_in_tx`]`(tx, key)` to
//!   withdraw a pending one, e.g. the reminder of a cancelled appointment).
//! - **Redis**: build your change as a plan (`store::plan`, compiled into a script per shape)
//!   and run it with [`store::PLAN`], which carries the outbox; [`store::Notices::plan`] adds the
//!   notifications to write and the pending ones to withdraw, under your hash tag (listed in
//!   [`store::OUTBOX_TAGS`] so the worker finds the entries), so the script stays on one
//!   cluster slot.
//!
//! Each notification has a `key` (e.g. `reminder:<appointment id>`): enqueuing the same key
//! twice keeps the first, so a retried request does not notify twice.
//!
//! The worker (`worker.rs`) claims due entries atomically, renders them through the
//! configured templates (`templates.rs`), spends one of the user's subscription grants, and
//! sends with an access token that one caller at a time refreshes (`token.rs`).

mod handlers;
pub mod keywords;
pub mod store;
pub mod template_check;
pub mod templates;
pub mod worker;

use std::collections::BTreeMap;

use chrono::{DateTime, Days, FixedOffset, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

pub use handlers::{dev_routes, routes};
pub use store::NotifyStore;
pub use templates::NotifySettings;
pub use worker::Notifier;

use crate::clock::china;

/// What happened, as the templates configuration names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    BookingConfirmed,
    AppointmentReminder,
    AppointmentCancelled,
    ProgressChanged,
    ReviewResult,
    /// A 客服 text message (`cgi-bin/message/custom/send`): no template and no subscription,
    /// WeChat takes it within 48 hours of the user's last message. Not in [`Event::ALL`],
    /// which lists the events that have templates.
    CustomerService,
}

impl Event {
    pub const ALL: [Event; 5] = [
        Event::BookingConfirmed,
        Event::AppointmentReminder,
        Event::AppointmentCancelled,
        Event::ProgressChanged,
        Event::ReviewResult,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::BookingConfirmed => "booking_confirmed",
            Event::AppointmentReminder => "appointment_reminder",
            Event::AppointmentCancelled => "appointment_cancelled",
            Event::ProgressChanged => "progress_changed",
            Event::ReviewResult => "review_result",
            Event::CustomerService => "customer_service",
        }
    }
}

/// One message to one user, as written to the outbox. `fields` are our names for the
/// values (`office`, `time`, `code`…); the template configuration maps them to WeChat's
/// keywords, so a template change needs no code change and applies to pending messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub key: String,
    pub user_id: String,
    pub event: Event,
    pub fields: BTreeMap<String, String>,
    /// Not sent before this instant (the server's clock).
    pub not_before: DateTime<Utc>,
}

/// What the appointment notifications say about an appointment.
#[derive(Debug, Clone)]
pub struct AppointmentFacts<'a> {
    pub appointment_id: &'a str,
    pub user_id: &'a str,
    /// The code shown at the hall.
    pub code: &'a str,
    pub office: &'a str,
    pub service: &'a str,
    pub starts_at: DateTime<FixedOffset>,
}

/// The card's progress after the hall accepted the application.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// 受理
    Accepted,
    /// 已寄出, with the EMS number.
    Shipped { ems_no: &'a str },
    /// 待领取
    ReadyForPickup,
}

#[derive(Debug, Clone, Copy)]
pub enum ReviewOutcome<'a> {
    Approved { receipt_no: &'a str },
    Rejected { reason: &'a str },
}

/// The reminder goes out the evening before the appointment, at this local time.
pub const REMINDER_AT: NaiveTime = match NaiveTime::from_hms_opt(18, 0, 0) {
    Some(t) => t,
    None => panic!("valid time"),
};

fn local_time(t: DateTime<FixedOffset>) -> String {
    t.with_timezone(&china())
        .format("%Y年%m月%d日 %H:%M")
        .to_string()
}

impl Notification {
    fn new(
        key: String,
        user_id: &str,
        event: Event,
        fields: &[(&str, &str)],
        not_before: DateTime<Utc>,
    ) -> Notification {
        Notification {
            id: uuid::Uuid::new_v4().simple().to_string(),
            key,
            user_id: user_id.to_owned(),
            event,
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            not_before,
        }
    }

    fn appointment(
        facts: &AppointmentFacts,
        key: String,
        event: Event,
        extra: &[(&str, &str)],
        not_before: DateTime<Utc>,
    ) -> Notification {
        let time = local_time(facts.starts_at);
        let mut fields = vec![
            ("appointment_id", facts.appointment_id),
            ("code", facts.code),
            ("office", facts.office),
            ("service", facts.service),
            ("time", time.as_str()),
        ];
        fields.extend_from_slice(extra);
        Self::new(key, facts.user_id, event, &fields, not_before)
    }

    pub fn booking_confirmed(facts: &AppointmentFacts, now: DateTime<Utc>) -> Notification {
        let key = format!("confirmed:{}", facts.appointment_id);
        Self::appointment(facts, key, Event::BookingConfirmed, &[], now)
    }

    /// The reminder at 18:00 (Dongguan) the evening before; `None` when that evening has
    /// already passed (booked for tomorrow after 18:00: the confirmation just said it all).
    pub fn reminder(facts: &AppointmentFacts, now: DateTime<Utc>) -> Option<Notification> {
        let eve = facts
            .starts_at
            .with_timezone(&china())
            .date_naive()
            .checked_sub_days(Days::new(1))?
            .and_time(REMINDER_AT);
        let at = china().from_local_datetime(&eve).single()?.to_utc();
        (at > now).then(|| {
            let key = reminder_key(facts.appointment_id);
            let note = [("note", "请携带身份证件按时到达")];
            Self::appointment(facts, key, Event::AppointmentReminder, &note, at)
        })
    }

    pub fn cancelled(facts: &AppointmentFacts, reason: &str, now: DateTime<Utc>) -> Notification {
        let key = format!("cancelled:{}", facts.appointment_id);
        let reason = [("reason", reason)];
        Self::appointment(facts, key, Event::AppointmentCancelled, &reason, now)
    }

    pub fn progress(
        facts: &AppointmentFacts,
        progress: Progress,
        now: DateTime<Utc>,
    ) -> Notification {
        let (stage, detail) = match progress {
            Progress::Accepted => ("已受理", "证件制作中，请留意后续通知".to_owned()),
            Progress::Shipped { ems_no } => ("已寄出", format!("EMS {ems_no}")),
            Progress::ReadyForPickup => ("待领取", format!("请到{}领取", facts.office)),
        };
        let key = format!("progress:{}:{stage}", facts.appointment_id);
        let updated = local_time(now.with_timezone(&china()));
        let extra = [
            ("stage", stage),
            ("detail", detail.as_str()),
            ("updated_at", updated.as_str()),
        ];
        Self::appointment(facts, key, Event::ProgressChanged, &extra, now)
    }

    /// The detection centre's decision on a photo-receipt order; `decision_id` tells
    /// reviews of the same order apart (a rejected order can be resubmitted).
    pub fn review_result(
        user_id: &str,
        order_id: &str,
        decision_id: &str,
        document: &str,
        outcome: ReviewOutcome,
        now: DateTime<Utc>,
    ) -> Notification {
        let (result, receipt_no, note) = match outcome {
            ReviewOutcome::Approved { receipt_no } => {
                ("审核通过", receipt_no, "请在订单页查看并下载回执")
            }
            ReviewOutcome::Rejected { reason } => ("未通过", "-", reason),
        };
        let fields = [
            ("order_id", order_id),
            ("document", document),
            ("result", result),
            ("receipt_no", receipt_no),
            ("note", note),
        ];
        let key = format!("review:{order_id}:{decision_id}");
        Self::new(key, user_id, Event::ReviewResult, &fields, now)
    }

    /// A 客服 text message to `openid` (in `fields`, with `text`: the sender may have no
    /// account with us), sent once per `key`.
    /// Whether it goes to this user (by user id, or by openid for 客服 replies).
    pub fn is_for(&self, user_id: &str, openid: Option<&str>) -> bool {
        self.user_id == user_id
            || openid.is_some_and(|openid| self.fields.get("openid").is_some_and(|o| o == openid))
    }

    pub fn customer_service(
        key: String,
        openid: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Notification {
        let fields = [("openid", openid), ("text", text)];
        Self::new(key, "", Event::CustomerService, &fields, now)
    }

    /// The four values the outbox's Lua takes per notification: id, key, document, due time (ms).
    pub fn redis_args(&self) -> [String; 4] {
        [
            self.id.clone(),
            self.key.clone(),
            self.to_doc(),
            self.not_before.timestamp_millis().to_string(),
        ]
    }

    fn to_doc(&self) -> String {
        serde_json::to_string(self).expect("a notification serialises")
    }
}

/// The key of an appointment's reminder, to cancel it with the appointment.
pub fn reminder_key(appointment_id: &str) -> String {
    format!("reminder:{appointment_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(starts_at: &str) -> AppointmentFacts<'static> {
        AppointmentFacts {
            appointment_id: "a1",
            user_id: "u1",
            code: "BZ12345",
            office: "南城户政大厅",
            service: "身份证换领",
            starts_at: DateTime::parse_from_rfc3339(starts_at).unwrap(),
        }
    }

    #[test]
    fn reminder_is_the_evening_before_at_six_in_dongguan() {
        let now = DateTime::parse_from_rfc3339("2025-03-01T09:00:00+08:00")
            .unwrap()
            .to_utc();
        let n = Notification::reminder(&facts("2025-03-05T09:30:00+08:00"), now).unwrap();
        assert_eq!(
            n.not_before,
            DateTime::parse_from_rfc3339("2025-03-04T18:00:00+08:00").unwrap()
        );
        assert_eq!(n.fields["time"], "2025年03月05日 09:30");
        assert_eq!(n.key, "reminder:a1");
        let late = DateTime::parse_from_rfc3339("2025-03-04T18:30:00+08:00")
            .unwrap()
            .to_utc();
        assert!(Notification::reminder(&facts("2025-03-05T09:30:00+08:00"), late).is_none());
    }

    #[test]
    fn document_round_trips() {
        let n = Notification::progress(
            &facts("2025-03-05T09:30:00+08:00"),
            Progress::Shipped {
                ems_no: "EA123456789CN",
            },
            Utc::now(),
        );
        assert_eq!(n.fields["detail"], "EMS EA123456789CN");
        let back: Notification = serde_json::from_str(&n.to_doc()).unwrap();
        assert_eq!(back, n);
    }
}
