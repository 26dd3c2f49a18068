//! How booking looks over the API: a hall's day of slots and an appointment with its history,
//! times in China's time zone.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::appointment::{Applicant, Appointment, BanLift, Delivery, EmsNumber, Guardian, Status};
use super::schedule::ClosedReason;
use super::Booking;
use crate::clock::china;

pub fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&china()).to_rfc3339()
}

#[derive(Serialize)]
pub struct SlotView {
    pub id: String,
    pub start: String,
    pub end: String,
    pub capacity: u32,
    pub remaining: u32,
    pub family_only: bool,
}

/// One hall's day. A typed answer: the busiest read of the API, serialised without building a
/// JSON tree first.
#[derive(Serialize)]
pub struct DaySlots<'a> {
    pub office_id: &'a str,
    pub service: &'static str,
    pub date: NaiveDate,
    pub bookable_from: NaiveDate,
    pub bookable_until: NaiveDate,
    pub closed_reason: Option<ClosedReason>,
    pub closed_message: Option<&'static str>,
    pub slots: Vec<SlotView>,
}

#[derive(Serialize)]
struct NamedRef<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct ServiceRef {
    id: &'static str,
    name: &'static str,
    fee_yuan: u32,
}

#[derive(Serialize)]
struct SlotRef {
    id: String,
    start: String,
    end: String,
    family_only: bool,
}

#[derive(Serialize)]
struct HistoryView<'a> {
    status: Status,
    label: &'static str,
    at: String,
    /// `user`, `system` or `staff`.
    actor: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

#[derive(Serialize)]
pub struct AppointmentView<'a> {
    id: &'a str,
    code: &'a str,
    status: Status,
    status_label: &'static str,
    office: NamedRef<'a>,
    service: ServiceRef,
    slot: SlotRef,
    applicant: &'a Applicant,
    #[serde(skip_serializing_if = "Option::is_none")]
    guardian: Option<&'a Guardian>,
    photo_receipt_no: Option<&'a str>,
    fee_yuan: Option<u32>,
    delivery: Option<&'a Delivery>,
    ems_no: Option<&'a EmsNumber>,
    /// While booked: the last moment to cancel.
    cancellable_until: Option<String>,
    /// Whether cancelling now is allowed.
    can_cancel: bool,
    created_at: String,
    history: Vec<HistoryView<'a>>,
}

/// `a` as its owner and the staff see it at `now`.
pub fn appointment_view<'a>(
    booking: &'a Booking,
    a: &'a Appointment,
    now: DateTime<Utc>,
) -> AppointmentView<'a> {
    let office_name = booking
        .catalog
        .hall(&a.slot.hall)
        .map_or(a.slot.hall.as_str(), |h| h.name.as_str());
    let deadline = a.is_active().then(|| booking.cancellable_until(a));
    AppointmentView {
        id: &a.id,
        code: a.code.as_str(),
        status: a.status,
        status_label: a.status.label(),
        office: NamedRef {
            id: &a.slot.hall,
            name: office_name,
        },
        service: ServiceRef {
            id: a.service.id(),
            name: a.service.name(),
            fee_yuan: a.service.fee_yuan(),
        },
        slot: SlotRef {
            id: a.slot.to_string(),
            start: local(a.starts_at),
            end: local(a.ends_at),
            family_only: a.family_only,
        },
        applicant: &a.applicant,
        guardian: a.guardian.as_ref(),
        photo_receipt_no: a.photo_receipt_no.as_deref(),
        fee_yuan: a.fee_yuan,
        delivery: a.delivery.as_ref(),
        ems_no: a.ems_no.as_ref(),
        cancellable_until: deadline.map(local),
        can_cancel: deadline.is_some_and(|d| now <= d),
        created_at: local(a.created_at),
        history: a
            .history
            .iter()
            .map(|h| HistoryView {
                status: h.status,
                label: h.status.label(),
                at: local(h.at),
                actor: h.actor.split(':').next().unwrap_or_default(),
                detail: h.detail.as_deref(),
            })
            .collect(),
    }
}

/// A missed appointment as staff see it when lifting the ban it helped earn: the appointment
/// and the lift recorded on it (who, when, why), `null` while there is none.
#[derive(Serialize)]
pub struct BanLiftView<'a> {
    appointment: AppointmentView<'a>,
    ban_lift: Option<LiftView<'a>>,
}

#[derive(Serialize)]
struct LiftView<'a> {
    at: String,
    /// `staff:<admin id>`.
    actor: &'a str,
    reason: &'a str,
}

pub fn ban_lift_view<'a>(
    booking: &'a Booking,
    a: &'a Appointment,
    now: DateTime<Utc>,
) -> BanLiftView<'a> {
    BanLiftView {
        appointment: appointment_view(booking, a, now),
        ban_lift: a.ban_lift.as_ref().map(|l: &BanLift| LiftView {
            at: local(l.at),
            actor: &l.actor,
            reason: &l.reason,
        }),
    }
}
