//! What a booking client sends, parsed once into domain types: the booking form with its age
//! rules, the `Idempotency-Key`, the slot query, and the staff's progress steps.

use actix_web::HttpRequest;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::applicant::{PhoneNumber, Relationship};
use super::appointment::{
    Applicant, Appointment, AppointmentCode, Delivery, EmsNumber, Guardian, HistoryEntry, Status,
    Step,
};
use super::catalog::ServiceKind;
use super::schedule::{Slot, SlotId};
use super::store::IdempotencyKey;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::id_hash::IdHasher;
use crate::person::{IdNumber, PersonName};
use crate::receipts::{self, ReceiptNo};

#[derive(Deserialize)]
pub struct SlotsQuery {
    pub service: Option<String>,
    pub date: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PersonRequest {
    name: String,
    id_number: String,
    /// Omitted: the number WeChat verified for the user (`POST /api/v1/me/phone`).
    #[serde(default)]
    phone: Option<String>,
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
pub struct BookRequest {
    slot_id: String,
    service: String,
    applicant: PersonRequest,
    guardian: Option<GuardianRequest>,
    photo_receipt_no: Option<String>,
}

impl BookRequest {
    /// Booking it reads the store before the booking's own step: the user's verified phone
    /// number, or the photo receipt it names.
    pub fn reads_before_booking(&self) -> bool {
        self.omits_phone() || self.photo_receipt_no.is_some()
    }

    /// The applicant's number is left to the one WeChat verified for the user.
    pub fn omits_phone(&self) -> bool {
        self.applicant
            .phone
            .as_deref()
            .is_none_or(|p| p.trim().is_empty())
    }
}

/// A booking request parsed into domain types: nothing past this point sees raw input.
pub struct BookingForm {
    pub slot_id: SlotId,
    pub service: ServiceKind,
    name: PersonName,
    pub id_number: IdNumber,
    phone: PhoneNumber,
    guardian: Option<(PersonName, IdNumber, Relationship)>,
    pub photo_receipt_no: Option<ReceiptNo>,
}

fn field<T, E: FieldError>(result: Result<T, E>, field: &str, label: &str) -> Result<T, ApiError> {
    result.map_err(|e| ApiError::field(field, &format!("{label}："), &e))
}

/// A slot id of the contract's shape (`hall-YYYYMMDD-HHMM`) that names no real day or time
/// names no slot: 422 like any other slot that does not exist. Another shape is bad input.
fn slot_id(text: &str) -> Result<SlotId, ApiError> {
    SlotId::parse(text).ok_or_else(|| {
        let digits =
            |part: &str, n: usize| part.len() == n && part.bytes().all(|b| b.is_ascii_digit());
        let mut parts = text.rsplitn(3, '-');
        let well_formed = parts.next().is_some_and(|time| digits(time, 4))
            && parts.next().is_some_and(|date| digits(date, 8))
            && parts.next().is_some_and(|hall| {
                !hall.is_empty()
                    && hall
                        .bytes()
                        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
            });
        if well_formed {
            ErrorCode::SlotUnavailable.into()
        } else {
            ApiError::invalid("slot_id", "预约时段：格式不正确")
        }
    })
}

impl BookingForm {
    /// `verified_phone`: the user's number from WeChat, used when the request gives none.
    pub fn parse(
        request: &BookRequest,
        verified_phone: Option<&str>,
        today: NaiveDate,
    ) -> Result<Self, ApiError> {
        let slot_id = slot_id(request.slot_id.trim())?;
        let service = field(ServiceKind::parse(&request.service), "service", "业务类型")?;
        let a = &request.applicant;
        let name = field(PersonName::parse(&a.name), "applicant.name", "申请人")?;
        let id_number = field(
            IdNumber::parse_as_of(&a.id_number, today),
            "applicant.id_number",
            "申请人",
        )?;
        let phone = match (request.omits_phone(), a.phone.as_deref()) {
            (false, Some(typed)) => Some(typed),
            _ => verified_phone,
        };
        // Omitted without a verified one: schema-valid, but nothing to call the applicant on.
        let phone = phone.ok_or_else(|| ApiError::Invalid {
            code: ErrorCode::InvalidValue,
            field: "applicant.phone".into(),
            message: "申请人：请填写手机号，或先获取微信绑定的手机号".into(),
        })?;
        let phone = field(PhoneNumber::parse(phone), "applicant.phone", "申请人")?;
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
    pub fn check_eligibility(&self, slot: &Slot) -> Result<(), ApiError> {
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
            None if minor => Err(ApiError::invalid_value(
                "guardian",
                "监护人：申请人未满16周岁，须填写监护人信息并由监护人陪同",
            )),
            Some(_) if !minor => Err(ApiError::invalid_value(
                "guardian",
                "监护人：申请人已满16周岁，无需填写监护人",
            )),
            Some((_, guardian_id, _)) if guardian_id == &self.id_number => {
                Err(ApiError::invalid_value(
                    "guardian.id_number",
                    "监护人身份证号码：监护人不能是申请人本人",
                ))
            }
            Some((_, guardian_id, _)) if guardian_id.age_on(slot.id.date) < 18 => {
                Err(ApiError::invalid_value(
                    "guardian.id_number",
                    "监护人身份证号码：监护人须年满18周岁",
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn appointment(
        &self,
        hasher: &IdHasher,
        user_id: &str,
        slot: &Slot,
        now: DateTime<Utc>,
    ) -> Appointment {
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
            ban_lift: None,
            anonymised_at: None,
            version: 0,
        }
    }
}

fn not_eligible(message: &str) -> ApiError {
    ErrorCode::NotEligible.with(message)
}

const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The request's `Idempotency-Key`, if it has one, kept `ttl` with a keyed digest of `body`.
pub fn idempotency_key(
    req: &HttpRequest,
    body: &BookRequest,
    hasher: &IdHasher,
    ttl: std::time::Duration,
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
        body_hash: hasher.body_digest(&canonical),
        ttl,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryRequest {
    method: String,
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressRequest {
    status: String,
    #[serde(default, deserialize_with = "whole_yuan")]
    fee_yuan: Option<u64>,
    delivery: Option<DeliveryRequest>,
    ems_no: Option<String>,
}

impl ProgressRequest {
    /// The step the staff asked for, with its details checked against the service.
    pub fn step(&self, service: ServiceKind) -> Result<Step, ApiError> {
        Ok(match self.status.as_str() {
            "accepted" => {
                let delivery = self.delivery.as_ref().ok_or_else(|| {
                    ApiError::invalid_value("delivery", "领证方式：请选择 EMS 邮寄或到大厅自取")
                })?;
                // The method is the schema's enum; the address depends on it.
                let delivery = Delivery::parse(&delivery.method, delivery.address.as_deref())
                    .map_err(|(field, message)| match field {
                        "delivery.method" => ApiError::invalid(field, message),
                        _ => ApiError::invalid_value(field, message),
                    })?;
                let fee_yuan = match self.fee_yuan {
                    None => service.fee_yuan(),
                    Some(fee) => u32::try_from(fee)
                        .ok()
                        .filter(|&fee| fee <= service.fee_yuan())
                        .ok_or_else(|| {
                            ApiError::invalid_value(
                                "fee_yuan",
                                format!(
                                    "收费：不能高于{}的标准收费{}元",
                                    service.name(),
                                    service.fee_yuan()
                                ),
                            )
                        })?,
                };
                Step::Accept { fee_yuan, delivery }
            }
            "in_production" => Step::StartProduction,
            "shipped" => {
                let ems_no = self
                    .ems_no
                    .as_deref()
                    .ok_or_else(|| ApiError::invalid_value("ems_no", "EMS运单号：寄出时须填写"))?;
                Step::Ship {
                    ems_no: EmsNumber::parse(ems_no).ok_or_else(|| {
                        ApiError::invalid("ems_no", "EMS运单号：应为13位（如 EA123456789CN）")
                    })?,
                }
            }
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

/// A whole number of yuan, however the client's JSON writes it: `20`, or `20.0` from a
/// language whose numbers are all floats (JSON Schema's `integer` allows both). One past
/// `u64` saturates: it is above every fee all the same.
fn whole_yuan<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f as u64)
    });
    whole
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("fee_yuan 应为不小于0的整数元"))
}

/// Staff's reason for lifting a ban.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiftRequest {
    reason: String,
}

impl LiftRequest {
    /// 2 to 200 characters, no control characters (as the contract's schema says).
    pub fn reason(&self) -> Result<String, ApiError> {
        let reason = self.reason.as_str();
        let length = reason.chars().count();
        if !(2..=200).contains(&length) || reason.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "reason",
                "解除原因：应为2至200个字符，不含控制字符",
            ));
        }
        Ok(reason.to_owned())
    }
}
