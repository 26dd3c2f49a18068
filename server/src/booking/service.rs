//! What booking does behind its handlers: a hall's day of slots (kept briefly per instance),
//! booking with a fresh code on the rare collision, and every change of an appointment's status.

use actix_web::web::Bytes;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::appointment::{Appointment, AppointmentCode, LiftError, Step};
use super::catalog::{Hall, ServiceKind};
use super::form::{BookingForm, ProgressRequest};
use super::rules::Stop;
use super::schedule::{find_slot, slots_on, ClosedReason, Slot, Window};
use super::store::{BookOutcome, Caller, IdempotencyKey, NewBooking};
use super::view::{local, DaySlots, SlotView};
use super::{notices, Booking};
use crate::clock::china;
use crate::error::{ApiError, ErrorCode};
use crate::receipts;
use crate::telemetry::mask;

/// Codes drawn before giving up: a fresh one on the rare collision with an existing code.
const CODE_DRAWS: usize = 5;

/// An appointment booked now, or the one an earlier request with the same key booked.
pub struct Booked {
    pub appointment: Appointment,
    pub replayed: bool,
}

fn slot_unavailable(message: &str) -> ApiError {
    ErrorCode::SlotUnavailable.with(message)
}

impl Booking {
    /// The last moment the user may cancel `appointment`.
    pub fn cancellable_until(&self, appointment: &Appointment) -> DateTime<Utc> {
        appointment.starts_at - Duration::minutes(i64::from(self.settings.cancel_before_minutes))
    }

    fn window(&self, today: NaiveDate) -> Window {
        Window::new(today, self.settings.days_ahead)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn today(&self) -> NaiveDate {
        self.clock.now_local().date_naive()
    }

    /// `hall`'s slots for `service` on `date` as the JSON body of the slot list, with the seats
    /// left; served again from this instance's cache while fresh.
    pub async fn day_slots(
        &self,
        hall: &Hall,
        service: ServiceKind,
        date: NaiveDate,
    ) -> Result<Bytes, ApiError> {
        let lists = &self.day_lists;
        let today = self.today();
        if let Some(body) = lists.get(&hall.id, date, service, today) {
            return Ok(body);
        }
        let window = self.window(today);
        let day = if !window.contains(date) {
            Err(ClosedReason::OutsideBookingWindow)
        } else if !hall.offers(service) {
            Err(ClosedReason::NoService)
        } else {
            slots_on(&self.catalog, hall, date)
        };
        let (slots, closed) = match day {
            Ok(slots) => {
                let taken = self.store.seats_taken(&hall.id, date).await?;
                let views = slots
                    .iter()
                    .map(|slot| SlotView {
                        id: slot.id.to_string(),
                        start: local(slot.starts_at()),
                        end: local(slot.ends_at()),
                        capacity: slot.capacity,
                        remaining: slot
                            .capacity
                            .saturating_sub(taken.get(&slot.id.time_key()).copied().unwrap_or(0)),
                        family_only: slot.family_only,
                    })
                    .collect();
                (views, None)
            }
            Err(reason) => (Vec::new(), Some(reason)),
        };
        let body = serde_json::to_vec(&DaySlots {
            office_id: &hall.id,
            service: service.id(),
            date,
            bookable_from: window.first,
            bookable_until: window.last,
            closed_reason: closed,
            closed_message: closed.map(ClosedReason::message),
            slots,
        })
        .map_err(|e| ApiError::Internal(format!("slot list: {e}")))?;
        let body = Bytes::from(body);
        // Only the window's days are kept: the others are rendered without the store, and
        // keeping them would let a client grow the cache with every date there is.
        if window.contains(date) {
            lists.put(&hall.id, date, service, today, body.clone());
        }
        Ok(body)
    }

    /// The slot to book, if it exists, is within the window and the hall offers the service.
    fn bookable_slot(&self, form: &BookingForm) -> Result<Slot, ApiError> {
        let catalog = &self.catalog;
        let hall = catalog
            .hall(&form.slot_id.hall)
            .ok_or_else(|| slot_unavailable("预约时段不存在"))?;
        if !hall.offers(form.service) {
            return Err(slot_unavailable("该大厅不办理此业务"));
        }
        if !self.window(self.today()).contains(form.slot_id.date) {
            return Err(slot_unavailable(
                ClosedReason::OutsideBookingWindow.message(),
            ));
        }
        find_slot(catalog, &form.slot_id).ok_or_else(|| slot_unavailable("预约时段不存在"))
    }

    /// Books `form` for `user_id` if every rule allows it.
    pub async fn book(
        &self,
        user_id: &str,
        form: &BookingForm,
        idempotency: Option<IdempotencyKey>,
        caller: Option<Caller>,
        now: DateTime<Utc>,
    ) -> Result<Booked, ApiError> {
        let slot = self.bookable_slot(form)?;
        form.check_eligibility(&slot)?;
        if let Some(no) = &form.photo_receipt_no {
            let id_hash = self.hasher.hash(&form.id_number);
            receipts::check_for_booking(self.receipts.as_ref(), no, user_id, &id_hash, now).await?;
        }
        self.settle_no_shows(now).await?;
        let settings = &self.settings;
        for _ in 0..CODE_DRAWS {
            let appointment = form.appointment(&self.hasher, user_id, &slot, now);
            let booking = NewBooking {
                notices: notices::booked(&self.catalog, &appointment, now),
                appointment,
                capacity: slot.capacity,
                max_active: settings.max_active_per_user,
                attempts: settings.attempt_limits(),
                no_show_at: slot.ends_at()
                    + Duration::minutes(i64::from(settings.no_show_grace_minutes)),
                now,
                idempotency: idempotency.clone(),
                caller: caller.clone(),
            };
            match self.store.book(booking).await? {
                BookOutcome::Booked(appointment) => {
                    self.day_lists.forget(&slot.id.hall, slot.id.date);
                    tracing::info!(
                        appointment = %appointment.id,
                        slot = %appointment.slot,
                        applicant = %appointment.applicant.id_number,
                        phone = %mask::phone(appointment.applicant.phone.as_str()),
                        "appointment booked"
                    );
                    return Ok(Booked {
                        appointment: *appointment,
                        replayed: false,
                    });
                }
                BookOutcome::Replayed(Ok(id)) => {
                    let appointment = self.store.appointment(&id).await?.ok_or_else(|| {
                        ApiError::Internal(format!("replayed appointment {id} is missing"))
                    })?;
                    return Ok(Booked {
                        appointment,
                        replayed: true,
                    });
                }
                BookOutcome::Refused(refusal) | BookOutcome::Replayed(Err(refusal)) => {
                    return Err(refusal.into())
                }
                BookOutcome::IdempotencyMismatch => {
                    return Err(ErrorCode::IdempotencyMismatch.into())
                }
                BookOutcome::CodeTaken => continue,
                BookOutcome::CallerRefused(Stop::ConsentRequired) => {
                    return Err(ErrorCode::ConsentRequired.into())
                }
                BookOutcome::CallerRefused(_) => return Err(ApiError::Unauthorized),
                BookOutcome::Throttled { until } => {
                    let wait_ms = (until - now).num_milliseconds().max(0) as u64;
                    return Err(ApiError::RetryLater {
                        code: ErrorCode::TooManyBookingAttempts,
                        retry_after_secs: wait_ms.div_ceil(1000).max(1),
                    });
                }
            }
        }
        Err(ApiError::Internal(format!(
            "no free appointment code after {CODE_DRAWS} tries"
        )))
    }

    /// The user's appointments, no-shows settled.
    pub async fn appointments_of(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Appointment>, ApiError> {
        self.settle_no_shows(now).await?;
        Ok(self.store.user_appointments(user_id).await?)
    }

    /// The user's own appointment; anyone else's is as absent as a missing one.
    async fn owned(&self, user_id: &str, id: &str) -> Result<Appointment, ApiError> {
        self.store
            .appointment(id)
            .await?
            .filter(|a| a.user_id == user_id)
            .ok_or(ApiError::NotFound)
    }

    /// The user's own appointment, no-shows settled.
    pub async fn appointment_of(
        &self,
        user_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Appointment, ApiError> {
        self.settle_no_shows(now).await?;
        self.owned(user_id, id).await
    }

    /// Stores `next` over `before`; someone else changing it first is a conflict, not a retry.
    async fn commit(
        &self,
        before: &Appointment,
        next: Appointment,
        now: DateTime<Utc>,
    ) -> Result<Appointment, ApiError> {
        let policy = self.settings.no_show_policy();
        let notices = notices::changed(&self.catalog, before.status, &next, now);
        if self
            .store
            .transition(before.status, &next, &notices, policy, now)
            .await?
        {
            tracing::info!(appointment = %next.id, from = before.status.as_str(), to = next.status.as_str(), "appointment status changed");
            Ok(next)
        } else {
            Err(ErrorCode::ConcurrentChange.into())
        }
    }

    /// The user cancels their own appointment, until `cancel_before_minutes` before its start.
    pub async fn cancel(
        &self,
        user_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Appointment, ApiError> {
        let appointment = self.owned(user_id, id).await?;
        let next = appointment.after(Step::Cancel, "user", now)?;
        let deadline = self.cancellable_until(&appointment);
        if now > deadline {
            return Err(ErrorCode::TooLateToCancel.with(format!(
                "预约开始前{}分钟内不能取消（截止 {}）",
                self.settings.cancel_before_minutes,
                deadline.with_timezone(&china()).format("%m月%d日 %H:%M")
            )));
        }
        let cancelled = self.commit(&appointment, next, now).await?;
        let slot = &cancelled.slot;
        self.day_lists.forget(&slot.hall, slot.date);
        Ok(cancelled)
    }

    /// Staff check the appointment with `code` in, on its day, spending its photo receipt.
    /// Staff check an appointment in by its code; `works_at` says whether they work at a
    /// hall, and another hall's appointment is not found.
    pub async fn check_in(
        &self,
        actor: &str,
        works_at: impl Fn(&str) -> bool,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Appointment, ApiError> {
        let code = AppointmentCode::parse(code).ok_or(ApiError::NotFound)?;
        self.settle_no_shows(now).await?;
        let appointment = self.by_code(&code, works_at).await?;
        let next = appointment.after(Step::CheckIn, actor, now)?;
        if appointment.slot.date != self.today() {
            return Err(ErrorCode::NotToday.with(format!(
                "只能在预约当天签到（预约日期 {}）",
                appointment.slot.date.format("%Y-%m-%d")
            )));
        }
        // The photo receipt was checked at booking (approved, unexpired, the applicant's); the
        // check-in spends it, and refuses one another appointment already spent.
        if let Some(no) = &appointment.photo_receipt_no {
            let no = receipts::parse_receipt_no("photo_receipt_no", no)?;
            receipts::use_at_check_in(self.receipts.as_ref(), &no, &appointment.id, now).await?;
        }
        self.commit(&appointment, next, now).await
    }

    /// Staff lift the ban the no-show with `code` helped earn (the account's for its
    /// applicant, and the account's own): it stops counting, recorded with `actor` and
    /// `reason`.
    pub async fn lift_ban(
        &self,
        actor: &str,
        works_at: impl Fn(&str) -> bool,
        code: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Appointment, ApiError> {
        let code = AppointmentCode::parse(code).ok_or(ApiError::NotFound)?;
        self.settle_no_shows(now).await?;
        let missed = self.by_code(&code, works_at).await?;
        let lifted = missed.lifted(actor, reason, now).map_err(|e| match e {
            LiftError::NotNoShow => ErrorCode::IllegalTransition.with(format!(
                "预约当前为“{}”，只有逾期未到的预约才计入爽约限制",
                missed.status.label()
            )),
            LiftError::Lifted => {
                ErrorCode::IllegalTransition.with("该预约的爽约限制已解除，不能重复解除")
            }
        })?;
        let policy = self.settings.no_show_policy();
        if !self.store.lift_ban(&lifted, policy, now).await? {
            return Err(ErrorCode::ConcurrentChange.into());
        }
        tracing::info!(appointment = %lifted.id, actor, "no-show forgiven, bans it earned lifted");
        Ok(lifted)
    }

    /// The appointment with `code`, for staff who work at its hall (`works_at`); another
    /// hall's answers as a missing one.
    pub async fn by_code(
        &self,
        code: &AppointmentCode,
        works_at: impl Fn(&str) -> bool,
    ) -> Result<Appointment, ApiError> {
        self.store
            .appointment_by_code(code)
            .await?
            .filter(|a| works_at(&a.slot.hall))
            .ok_or(ApiError::NotFound)
    }

    /// Staff record the card's next step.
    pub async fn progress(
        &self,
        actor: &str,
        works_at: impl Fn(&str) -> bool,
        id: &str,
        request: &ProgressRequest,
        now: DateTime<Utc>,
    ) -> Result<Appointment, ApiError> {
        let appointment = self
            .store
            .appointment(id)
            .await?
            .filter(|a| works_at(&a.slot.hall))
            .ok_or(ApiError::NotFound)?;
        let step = request.step(appointment.service)?;
        let next = appointment.after(step, actor, now)?;
        self.commit(&appointment, next, now).await
    }
}
