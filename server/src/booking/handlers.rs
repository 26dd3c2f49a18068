//! The HTTP side of booking: halls, services and slots (public), a user's appointments, and
//! the staff's check-in and progress.

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::applicant::{PhoneNumber, Relationship};
use super::appointment::{
    Applicant, Appointment, AppointmentCode, Delivery, EmsNumber, Guardian, HistoryEntry, Status,
    Step,
};
use super::catalog::ServiceKind;
use super::schedule::{find_slot, slots_on, ClosedReason, Slot, SlotId, Window};
use super::store::{BookOutcome, IdempotencyKey, NewBooking};
use super::{notices, settle_no_shows};
use crate::admin::{AdminUser, Role};
use crate::auth::AuthUser;
use crate::clock::china;
use crate::error::ApiError;
use crate::person::{IdNumber, PersonName};
use crate::receipts::{self, ReceiptNo};
use crate::routing::endpoint;
use crate::startup::AppState;
use crate::telemetry::mask;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/api/v1/offices").get(offices))
        .service(endpoint("/api/v1/services").get(services))
        .service(endpoint("/api/v1/offices/{office_id}/slots").get(slots))
        .service(
            endpoint("/api/v1/appointments")
                .post(book)
                .get(my_appointments),
        )
        .service(endpoint("/api/v1/appointments/{id}").get(my_appointment))
        .service(endpoint("/api/v1/appointments/{id}/cancel").post(cancel))
        .service(endpoint("/api/v1/admin/appointments/{code}/check-in").post(check_in))
        .service(endpoint("/api/v1/admin/appointments/{id}/progress").post(progress));
}

fn today(state: &AppState) -> NaiveDate {
    state.clock.now_local().date_naive()
}

fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&china()).to_rfc3339()
}

fn window(state: &AppState, today: NaiveDate) -> Window {
    Window::new(today, state.booking.settings.days_ahead)
}

async fn offices(state: web::Data<AppState>) -> HttpResponse {
    let offices: Vec<serde_json::Value> = state
        .booking
        .catalog
        .halls()
        .iter()
        .map(|hall| {
            serde_json::json!({
                "id": hall.id,
                "name": hall.name,
                "town": hall.town,
                "area_code": hall.area_code,
                "group": hall.group,
                "address": hall.address,
                "hours": hall.hours(),
                "services": hall.services.iter().map(|s| s.id()).collect::<Vec<_>>(),
            })
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "offices": offices }))
}

async fn services() -> HttpResponse {
    let services: Vec<serde_json::Value> = ServiceKind::ALL
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id(),
                "name": s.name(),
                "fee_yuan": s.fee_yuan(),
                "materials": s.materials(),
                "eligibility": s.eligibility(),
                "max_age": s.max_age(),
            })
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "services": services }))
}

#[derive(Deserialize)]
struct SlotsQuery {
    service: Option<String>,
    date: Option<String>,
}

#[derive(Serialize)]
struct SlotView {
    id: String,
    start: String,
    end: String,
    capacity: u32,
    remaining: u32,
    family_only: bool,
}

async fn slots(
    path: web::Path<String>,
    query: web::Query<SlotsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let catalog = &state.booking.catalog;
    let hall = catalog.hall(&path).ok_or(ApiError::NotFound)?;
    let service = ServiceKind::parse(query.service.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::invalid("service", format!("业务类型：{e}")))?;
    let date = query
        .date
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| ApiError::invalid("date", "日期应为 YYYY-MM-DD 格式"))?;
    let lists = &state.booking.day_lists;
    let today = today(&state);
    if let Some(body) = lists.get(&hall.id, date, service, today) {
        return Ok(json_body(body));
    }
    let window = window(&state, today);
    let day = if !window.contains(date) {
        Err(ClosedReason::OutsideBookingWindow)
    } else if !hall.offers(service) {
        Err(ClosedReason::NoService)
    } else {
        slots_on(catalog, hall, date)
    };
    let (slots, closed) = match day {
        Ok(slots) => {
            let taken = state.store.seats_taken(&hall.id, date).await?;
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
    lists.put(&hall.id, date, service, today, body.clone());
    Ok(json_body(body))
}

fn json_body(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body)
}

/// One hall's day. A typed answer: the busiest read of the API, serialised without building a
/// JSON tree first.
#[derive(Serialize)]
struct DaySlots<'a> {
    office_id: &'a str,
    service: &'static str,
    date: NaiveDate,
    bookable_from: NaiveDate,
    bookable_until: NaiveDate,
    closed_reason: Option<ClosedReason>,
    closed_message: Option<&'static str>,
    slots: Vec<SlotView>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PersonRequest {
    name: String,
    id_number: String,
    phone: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct GuardianRequest {
    name: String,
    id_number: String,
    relationship: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BookRequest {
    slot_id: String,
    service: String,
    applicant: PersonRequest,
    guardian: Option<GuardianRequest>,
    photo_receipt_no: Option<String>,
}

/// A booking request parsed into domain types: nothing past this point sees raw input.
struct BookingForm {
    slot_id: SlotId,
    service: ServiceKind,
    name: PersonName,
    id_number: IdNumber,
    phone: PhoneNumber,
    guardian: Option<(PersonName, IdNumber, Relationship)>,
    photo_receipt_no: Option<ReceiptNo>,
}

fn field<T, E: std::fmt::Display>(
    result: Result<T, E>,
    field: &str,
    label: &str,
) -> Result<T, ApiError> {
    result.map_err(|e| ApiError::invalid(field, format!("{label}：{e}")))
}

impl BookingForm {
    fn parse(request: &BookRequest, today: NaiveDate) -> Result<Self, ApiError> {
        let slot_id = field(
            SlotId::parse(request.slot_id.trim()).ok_or("格式不正确"),
            "slot_id",
            "预约时段",
        )?;
        let service = field(ServiceKind::parse(&request.service), "service", "业务类型")?;
        let a = &request.applicant;
        let name = field(PersonName::parse(&a.name), "applicant.name", "申请人")?;
        let id_number = field(
            IdNumber::parse_as_of(&a.id_number, today),
            "applicant.id_number",
            "申请人",
        )?;
        let phone = field(PhoneNumber::parse(&a.phone), "applicant.phone", "申请人")?;
        let guardian = match &request.guardian {
            None => None,
            Some(g) => Some((
                field(PersonName::parse(&g.name), "guardian.name", "监护人")?,
                field(
                    IdNumber::parse_as_of(&g.id_number, today),
                    "guardian.id_number",
                    "监护人",
                )?,
                field(
                    Relationship::parse(&g.relationship),
                    "guardian.relationship",
                    "监护人",
                )?,
            )),
        };
        let photo_receipt_no = match request.photo_receipt_no.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(no) => Some(receipts::parse_receipt_no("photo_receipt_no", no)?),
        };
        Ok(BookingForm {
            slot_id,
            service,
            name,
            id_number,
            phone,
            guardian,
            photo_receipt_no,
        })
    }

    /// Age rules on the appointment day: under 16 comes with an adult guardian (居民身份证法
    /// §7); 首次申领 and the Saturday family session are for under-16s only.
    fn check_eligibility(&self, slot: &Slot) -> Result<(), ApiError> {
        let age = self.id_number.age_on(slot.id.date);
        let minor = age < 16;
        if self.service.max_age().is_some_and(|max| age > max) {
            return Err(not_eligible("首次申领仅限预约当日未满16周岁的居民"));
        }
        if slot.family_only && !minor {
            return Err(not_eligible(
                "周六家庭专场仅限预约当日未满16周岁的申请人（须监护人陪同）",
            ));
        }
        match &self.guardian {
            None if minor => Err(ApiError::invalid(
                "guardian",
                "监护人：申请人未满16周岁，须填写监护人信息并由监护人陪同",
            )),
            Some(_) if !minor => Err(ApiError::invalid(
                "guardian",
                "监护人：申请人已满16周岁，无需填写监护人",
            )),
            Some((_, guardian_id, _)) if guardian_id == &self.id_number => Err(ApiError::invalid(
                "guardian.id_number",
                "监护人身份证号码：监护人不能是申请人本人",
            )),
            Some((_, guardian_id, _)) if guardian_id.age_on(slot.id.date) < 18 => Err(
                ApiError::invalid("guardian.id_number", "监护人身份证号码：监护人须年满18周岁"),
            ),
            _ => Ok(()),
        }
    }

    fn appointment(
        &self,
        state: &AppState,
        user_id: &str,
        slot: &Slot,
        now: DateTime<Utc>,
    ) -> Appointment {
        let hasher = &state.booking.hasher;
        Appointment {
            id: uuid::Uuid::new_v4().simple().to_string(),
            code: AppointmentCode::generate(),
            user_id: user_id.to_owned(),
            slot: slot.id.clone(),
            service: self.service,
            starts_at: slot.starts_at(),
            ends_at: slot.ends_at(),
            family_only: slot.family_only,
            applicant: Applicant {
                name: self.name.clone(),
                id_number: self.id_number.masked(),
                phone: self.phone.clone(),
            },
            guardian: self
                .guardian
                .as_ref()
                .map(|(name, id, relationship)| Guardian {
                    name: name.clone(),
                    id_number: id.masked(),
                    relationship: *relationship,
                }),
            id_hash: hasher.hash(&self.id_number),
            photo_receipt_no: self.photo_receipt_no.as_ref().map(|no| no.to_string()),
            status: Status::Booked,
            fee_yuan: None,
            delivery: None,
            ems_no: None,
            created_at: now,
            history: vec![HistoryEntry {
                status: Status::Booked,
                at: now,
                actor: "user".into(),
                detail: None,
            }],
        }
    }
}

fn not_eligible(message: &str) -> ApiError {
    ApiError::unprocessable("NOT_ELIGIBLE", message)
}

fn slot_unavailable(message: &str) -> ApiError {
    ApiError::unprocessable("SLOT_UNAVAILABLE", message)
}

/// The slot to book, if it exists, is within the window and the hall offers the service.
fn bookable_slot(state: &AppState, form: &BookingForm) -> Result<Slot, ApiError> {
    let catalog = &state.booking.catalog;
    let hall = catalog
        .hall(&form.slot_id.hall)
        .ok_or_else(|| slot_unavailable("预约时段不存在"))?;
    if !hall.offers(form.service) {
        return Err(slot_unavailable("该大厅不办理此业务"));
    }
    if !window(state, today(state)).contains(form.slot_id.date) {
        return Err(slot_unavailable(
            ClosedReason::OutsideBookingWindow.message(),
        ));
    }
    find_slot(catalog, &form.slot_id).ok_or_else(|| slot_unavailable("预约时段不存在"))
}

const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

fn idempotency_key(
    req: &HttpRequest,
    body: &BookRequest,
    state: &AppState,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::invalid(
                IDEMPOTENCY_HEADER,
                "Idempotency-Key 应为1至255个可见ASCII字符",
            )
        })?;
    let canonical = serde_json::to_vec(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        body_hash: hex::encode(Sha256::digest(&canonical)),
        ttl: std::time::Duration::from_secs(
            u64::from(state.booking.settings.idempotency_hours) * 3600,
        ),
    }))
}

async fn book(
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<BookRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let idempotency = idempotency_key(&req, &body, &state)?;
    let form = BookingForm::parse(&body, today(&state))?;
    let slot = bookable_slot(&state, &form)?;
    form.check_eligibility(&slot)?;
    if let Some(no) = &form.photo_receipt_no {
        receipts::check_for_booking(state.store.as_ref(), no, &form.id_number, now).await?;
    }
    settle_no_shows(&state, now).await?;
    let settings = &state.booking.settings;
    // A fresh code on the rare collision with an existing one.
    for _ in 0..5 {
        let appointment = form.appointment(&state, &user.id, &slot, now);
        let booking = NewBooking {
            notices: notices::booked(&state.booking.catalog, &appointment, now),
            appointment,
            capacity: slot.capacity,
            max_active: settings.max_active_per_user,
            no_show_at: slot.ends_at()
                + Duration::minutes(i64::from(settings.no_show_grace_minutes)),
            now,
            idempotency: idempotency.clone(),
        };
        match state.store.book(booking).await? {
            BookOutcome::Booked(appointment) => {
                state.booking.day_lists.forget(&slot.id.hall, slot.id.date);
                tracing::info!(
                    appointment = %appointment.id,
                    slot = %appointment.slot,
                    applicant = %appointment.applicant.id_number,
                    phone = %mask::phone(appointment.applicant.phone.as_str()),
                    "appointment booked"
                );
                return Ok(HttpResponse::Created().json(view(&state, &appointment, now)));
            }
            BookOutcome::Replayed(Ok(id)) => {
                let appointment = state.store.appointment(&id).await?.ok_or_else(|| {
                    ApiError::Internal(format!("replayed appointment {id} is missing"))
                })?;
                return Ok(HttpResponse::Created()
                    .insert_header(("Idempotent-Replayed", "true"))
                    .json(view(&state, &appointment, now)));
            }
            BookOutcome::Refused(refusal) | BookOutcome::Replayed(Err(refusal)) => {
                return Err(refusal.into())
            }
            BookOutcome::IdempotencyMismatch => {
                return Err(ApiError::unprocessable(
                    "IDEMPOTENCY_MISMATCH",
                    "同一个 Idempotency-Key 已用于另一个预约请求",
                ))
            }
            BookOutcome::CodeTaken => continue,
        }
    }
    Err(ApiError::Internal(
        "no free appointment code after 5 tries".into(),
    ))
}

async fn my_appointments(
    user: AuthUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    settle_no_shows(&state, now).await?;
    let appointments = state.store.user_appointments(&user.id).await?;
    let views: Vec<AppointmentView> = appointments.iter().map(|a| view(&state, a, now)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "appointments": views })))
}

/// The user's own appointment; anyone else's is as absent as a missing one.
async fn owned(state: &AppState, user: &AuthUser, id: &str) -> Result<Appointment, ApiError> {
    state
        .store
        .appointment(id)
        .await?
        .filter(|a| a.user_id == user.id)
        .ok_or(ApiError::NotFound)
}

async fn my_appointment(
    user: AuthUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    settle_no_shows(&state, now).await?;
    let appointment = owned(&state, &user, &path).await?;
    Ok(HttpResponse::Ok().json(view(&state, &appointment, now)))
}

/// Stores `next` over `before`; someone else changing it first is a conflict, not a retry.
async fn commit(
    state: &AppState,
    before: &Appointment,
    next: Appointment,
    now: DateTime<Utc>,
) -> Result<Appointment, ApiError> {
    let policy = state.booking.settings.no_show_policy();
    let notices = notices::changed(&state.booking.catalog, before.status, &next, now);
    if state
        .store
        .transition(before.status, &next, &notices, policy, now)
        .await?
    {
        tracing::info!(appointment = %next.id, from = before.status.as_str(), to = next.status.as_str(), "appointment status changed");
        Ok(next)
    } else {
        Err(ApiError::conflict(
            "CONCURRENT_CHANGE",
            "预约状态刚刚发生变化，请刷新后重试",
        ))
    }
}

fn cancellable_until(state: &AppState, appointment: &Appointment) -> DateTime<Utc> {
    appointment.starts_at
        - Duration::minutes(i64::from(state.booking.settings.cancel_before_minutes))
}

async fn cancel(
    user: AuthUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let appointment = owned(&state, &user, &path).await?;
    let next = appointment.after(Step::Cancel, "user", now)?;
    let deadline = cancellable_until(&state, &appointment);
    if now > deadline {
        return Err(ApiError::conflict(
            "TOO_LATE_TO_CANCEL",
            format!(
                "预约开始前{}分钟内不能取消（截止 {}）",
                state.booking.settings.cancel_before_minutes,
                deadline.with_timezone(&china()).format("%m月%d日 %H:%M")
            ),
        ));
    }
    let cancelled = commit(&state, &appointment, next, now).await?;
    let slot = &cancelled.slot;
    state.booking.day_lists.forget(&slot.hall, slot.date);
    Ok(HttpResponse::Ok().json(view(&state, &cancelled, now)))
}

async fn check_in(
    admin: AdminUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Staff)?;
    let now = state.clock.now();
    let code = AppointmentCode::parse(&path).ok_or(ApiError::NotFound)?;
    settle_no_shows(&state, now).await?;
    let appointment = state
        .store
        .appointment_by_code(&code)
        .await?
        .ok_or(ApiError::NotFound)?;
    let next = appointment.after(Step::CheckIn, &format!("staff:{}", admin.id), now)?;
    if appointment.slot.date != today(&state) {
        return Err(ApiError::conflict(
            "NOT_TODAY",
            format!(
                "只能在预约当天签到（预约日期 {}）",
                appointment.slot.date.format("%Y-%m-%d")
            ),
        ));
    }
    // The photo receipt was checked at booking (approved, unexpired, the applicant's); the
    // check-in spends it, and refuses one another appointment already spent.
    if let Some(no) = &appointment.photo_receipt_no {
        let no = receipts::parse_receipt_no("photo_receipt_no", no)?;
        receipts::use_at_check_in(state.store.as_ref(), &no, &appointment.id, now).await?;
    }
    let checked_in = commit(&state, &appointment, next, now).await?;
    Ok(HttpResponse::Ok().json(view(&state, &checked_in, now)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryRequest {
    method: String,
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressRequest {
    status: String,
    fee_yuan: Option<u32>,
    delivery: Option<DeliveryRequest>,
    ems_no: Option<String>,
}

impl ProgressRequest {
    fn step(&self, service: ServiceKind) -> Result<Step, ApiError> {
        Ok(match self.status.as_str() {
            "accepted" => {
                let delivery = self.delivery.as_ref().ok_or_else(|| {
                    ApiError::invalid("delivery", "领证方式：请选择 EMS 邮寄或到大厅自取")
                })?;
                let delivery = Delivery::parse(&delivery.method, delivery.address.as_deref())
                    .map_err(|(field, message)| ApiError::invalid(field, message))?;
                let fee_yuan = self.fee_yuan.unwrap_or(service.fee_yuan());
                if fee_yuan > service.fee_yuan() {
                    return Err(ApiError::invalid(
                        "fee_yuan",
                        format!(
                            "收费：不能高于{}的标准收费{}元",
                            service.name(),
                            service.fee_yuan()
                        ),
                    ));
                }
                Step::Accept { fee_yuan, delivery }
            }
            "in_production" => Step::StartProduction,
            "shipped" => Step::Ship {
                ems_no: self
                    .ems_no
                    .as_deref()
                    .and_then(EmsNumber::parse)
                    .ok_or_else(|| {
                        ApiError::invalid("ems_no", "EMS运单号：应为13位（如 EA123456789CN）")
                    })?,
            },
            "ready_for_pickup" => Step::ReadyForPickup,
            "collected" => Step::Collect,
            _ => {
                return Err(ApiError::invalid(
                    "status",
                    "进度：应为 accepted、in_production、shipped、ready_for_pickup 或 collected",
                ))
            }
        })
    }
}

async fn progress(
    admin: AdminUser,
    path: web::Path<String>,
    body: web::Json<ProgressRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Staff)?;
    let now = state.clock.now();
    let appointment = state
        .store
        .appointment(&path)
        .await?
        .ok_or(ApiError::NotFound)?;
    let step = body.step(appointment.service)?;
    let next = appointment.after(step, &format!("staff:{}", admin.id), now)?;
    let updated = commit(&state, &appointment, next, now).await?;
    Ok(HttpResponse::Ok().json(view(&state, &updated, now)))
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
struct AppointmentView<'a> {
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

fn view<'a>(state: &'a AppState, a: &'a Appointment, now: DateTime<Utc>) -> AppointmentView<'a> {
    let office_name = state
        .booking
        .catalog
        .hall(&a.slot.hall)
        .map_or(a.slot.hall.as_str(), |h| h.name.as_str());
    let deadline = a.is_active().then(|| cancellable_until(state, a));
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
