//! The HTTP side of booking: halls, services and slots (public), a user's appointments, and
//! the staff's check-in and progress.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;

use super::appointment::AppointmentCode;
use super::catalog::ServiceKind;
use super::form::{
    idempotency_key, BookRequest, BookingForm, LiftRequest, ProgressRequest, SlotsQuery,
};
use super::store::Caller;
use super::view::{appointment_view, ban_lift_view, AppointmentView};
use super::Booking;
use crate::admin::{AdminUser, Role};
use crate::audit::audited;
use crate::auth::consent::Privacy;
use crate::auth::login::Users;
use crate::auth::{AuthUser, Authenticator, SignedUser};
use crate::error::ApiError;
use crate::routing::endpoint;

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
        .service(endpoint("/api/v1/admin/appointments/{id}/progress").post(progress))
        .service(
            endpoint("/api/v1/admin/appointments/{code}/ban-lift")
                .get(ban_lift)
                .post(lift_ban),
        );
}

async fn offices(booking: web::Data<Booking>) -> HttpResponse {
    let offices: Vec<serde_json::Value> = booking
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

async fn slots(
    path: web::Path<String>,
    query: web::Query<SlotsQuery>,
    booking: web::Data<Booking>,
) -> Result<HttpResponse, ApiError> {
    let hall = booking.catalog.hall(&path).ok_or(ApiError::NotFound)?;
    let service = ServiceKind::parse(query.service.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::invalid("service", format!("业务类型：{e}")))?;
    let date = query
        .date
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| ApiError::invalid("date", "日期应为 YYYY-MM-DD 格式"))?;
    let body = booking.day_slots(hall, service, date).await?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body))
}

async fn book(
    user: SignedUser,
    req: HttpRequest,
    body: web::Json<BookRequest>,
    booking: web::Data<Booking>,
    users: web::Data<Users>,
    authenticator: web::Data<Authenticator>,
    privacy: web::Data<Privacy>,
) -> Result<HttpResponse, ApiError> {
    let now = booking.now();
    let idempotency = idempotency_key(
        &req,
        &body,
        &booking.hasher,
        booking.settings.idempotency_ttl(),
    )?;
    // The caller's token must not be revoked and the privacy notice accepted before anything
    // of theirs is read or stored: checked by the booking's own step (one round trip on one
    // Redis) when nothing is read before it and the store can, else here, first.
    let caller = if body.reads_before_booking() || !booking.store.checks_callers() {
        authenticator.check_not_revoked(&user.claims).await?;
        privacy.require(&user.id).await?;
        None
    } else {
        Some(Caller {
            jti: user.claims.jti.clone(),
            issued_at_ms: user.claims.iat_ms,
            notice_version: privacy.notice_version().to_owned(),
        })
    };
    // Only a request without a number needs the user's verified one.
    let verified_phone = match body.omits_phone() {
        true => users.user(&user.id).await?.and_then(|u| u.phone),
        false => None,
    };
    let form = BookingForm::parse(&body, verified_phone.as_deref(), booking.today())?;
    let booked = booking
        .book(&user.id, &form, idempotency, caller, now)
        .await?;
    let mut response = HttpResponse::Created();
    if booked.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.json(appointment_view(&booking, &booked.appointment, now)))
}

async fn my_appointments(
    user: AuthUser,
    booking: web::Data<Booking>,
) -> Result<HttpResponse, ApiError> {
    let now = booking.now();
    let appointments = booking.appointments_of(&user.id, now).await?;
    let views: Vec<AppointmentView> = appointments
        .iter()
        .map(|a| appointment_view(&booking, a, now))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "appointments": views })))
}

async fn my_appointment(
    user: AuthUser,
    path: web::Path<String>,
    booking: web::Data<Booking>,
) -> Result<HttpResponse, ApiError> {
    let now = booking.now();
    let appointment = booking.appointment_of(&user.id, &path, now).await?;
    Ok(HttpResponse::Ok().json(appointment_view(&booking, &appointment, now)))
}

async fn cancel(
    user: AuthUser,
    path: web::Path<String>,
    booking: web::Data<Booking>,
) -> Result<HttpResponse, ApiError> {
    let now = booking.now();
    let cancelled = booking.cancel(&user.id, &path, now).await?;
    Ok(HttpResponse::Ok().json(appointment_view(&booking, &cancelled, now)))
}

async fn check_in(
    admin: AdminUser,
    path: web::Path<String>,
    booking: web::Data<Booking>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin.actor_as(Role::Staff)?;
    let now = booking.now();
    let checked_in = booking
        .check_in(&actor, |hall| admin.works_at(hall), &path, now)
        .await?;
    let mut response = HttpResponse::Ok().json(appointment_view(&booking, &checked_in, now));
    audited(&mut response, [checked_in.id]);
    Ok(response)
}

async fn progress(
    admin: AdminUser,
    path: web::Path<String>,
    body: web::Json<ProgressRequest>,
    booking: web::Data<Booking>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin.actor_as(Role::Staff)?;
    let now = booking.now();
    let updated = booking
        .progress(&actor, |hall| admin.works_at(hall), &path, &body, now)
        .await?;
    Ok(HttpResponse::Ok().json(appointment_view(&booking, &updated, now)))
}

/// Staff lift the ban a no-show helped earn, with a reason; recorded on the appointment.
async fn lift_ban(
    admin: AdminUser,
    path: web::Path<String>,
    body: web::Json<LiftRequest>,
    booking: web::Data<Booking>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin.actor_as(Role::Staff)?;
    let reason = body.reason()?;
    let now = booking.now();
    let lifted = booking
        .lift_ban(&actor, |hall| admin.works_at(hall), &path, &reason, now)
        .await?;
    Ok(HttpResponse::Ok().json(ban_lift_view(&booking, &lifted, now)))
}

/// The appointment with `code` and the ban lift recorded on it, if any.
async fn ban_lift(
    admin: AdminUser,
    path: web::Path<String>,
    booking: web::Data<Booking>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Staff)?;
    let now = booking.now();
    let code = AppointmentCode::parse(&path).ok_or(ApiError::NotFound)?;
    let appointment = booking.by_code(&code, |hall| admin.works_at(hall)).await?;
    Ok(HttpResponse::Ok().json(ban_lift_view(&booking, &appointment, now)))
}
