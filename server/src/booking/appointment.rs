//! An appointment and the card's progress after it: one state machine, every transition
//! recorded with time and actor.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::applicant::{PhoneNumber, Relationship};
use super::catalog::ServiceKind;
use super::schedule::SlotId;
use crate::person::PersonName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Booked,
    Cancelled,
    NoShow,
    CheckedIn,
    /// 受理: fee paid, delivery chosen.
    Accepted,
    InProduction,
    Shipped,
    ReadyForPickup,
    Collected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Booked => "booked",
            Status::Cancelled => "cancelled",
            Status::NoShow => "no_show",
            Status::CheckedIn => "checked_in",
            Status::Accepted => "accepted",
            Status::InProduction => "in_production",
            Status::Shipped => "shipped",
            Status::ReadyForPickup => "ready_for_pickup",
            Status::Collected => "collected",
        }
    }

    /// Nothing more happens to it: its applicant's details have served their purpose.
    pub fn has_ended(self) -> bool {
        Status::ENDED.contains(&self)
    }

    /// The states an appointment never leaves (the card mailed is as final as collected).
    pub const ENDED: [Status; 4] = [
        Status::Cancelled,
        Status::NoShow,
        Status::Collected,
        Status::Shipped,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Status::Booked => "已预约",
            Status::Cancelled => "已取消",
            Status::NoShow => "逾期未到",
            Status::CheckedIn => "已签到",
            Status::Accepted => "已受理",
            Status::InProduction => "制证中",
            Status::Shipped => "已寄出",
            Status::ReadyForPickup => "待领取",
            Status::Collected => "已领取",
        }
    }
}

/// The short code said at the window and put in the QR code: 8 characters from an alphabet
/// without look-alikes (no 0/O, 1/I/L), drawn from a CSPRNG: 31^8 ≈ 8.5·10^11 codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppointmentCode(String);

const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const CODE_LENGTH: usize = 8;

impl AppointmentCode {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        AppointmentCode(
            (0..CODE_LENGTH)
                .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
                .collect(),
        )
    }

    /// What staff type or scan; case does not matter.
    pub fn parse(input: &str) -> Option<Self> {
        let code = input.trim().to_ascii_uppercase();
        (code.len() == CODE_LENGTH && code.bytes().all(|b| CODE_ALPHABET.contains(&b)))
            .then_some(AppointmentCode(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How the finished card reaches its owner (chosen at 受理).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Delivery {
    /// Mailed by EMS from the provincial card centre.
    Ems { address: String },
    /// Collected at the hall with the 领取凭证.
    Pickup,
}

impl Delivery {
    pub fn parse(
        method: &str,
        address: Option<&str>,
    ) -> Result<Self, (&'static str, &'static str)> {
        match method {
            "pickup" => Ok(Delivery::Pickup),
            "ems" => {
                let address = address.map(str::trim).unwrap_or_default();
                let length = address.chars().count();
                if !(5..=200).contains(&length) || address.chars().any(char::is_control) {
                    return Err(("delivery.address", "邮寄地址应为5至200个字符"));
                }
                Ok(Delivery::Ems {
                    address: address.to_owned(),
                })
            }
            _ => Err((
                "delivery.method",
                "领证方式应为 ems（邮寄）或 pickup（自取）",
            )),
        }
    }
}

/// An EMS waybill number: international S10 (`EA123456789CN`) or 13 domestic digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmsNumber(String);

impl EmsNumber {
    pub fn parse(input: &str) -> Option<Self> {
        let text = input.trim().to_ascii_uppercase();
        let b = text.as_bytes();
        let s10 = b.len() == 13
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2..11].iter().all(u8::is_ascii_digit)
            && b[11..].iter().all(u8::is_ascii_uppercase);
        let domestic = b.len() == 13 && b.iter().all(u8::is_ascii_digit);
        (s10 || domestic).then_some(EmsNumber(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applicant {
    pub name: PersonName,
    /// Masked: the full number is never stored (see `IdHasher`).
    pub id_number: String,
    pub phone: PhoneNumber,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guardian {
    pub name: PersonName,
    pub id_number: String,
    pub relationship: Relationship,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub status: Status,
    pub at: DateTime<Utc>,
    /// `user`, `system` or `staff:<admin id>`.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Staff lifted the ban this missed appointment helped earn: who, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanLift {
    pub at: DateTime<Utc>,
    /// `staff:<admin id>`.
    pub actor: String,
    pub reason: String,
}

/// What the store keeps of an appointment (as one JSON document on both backends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    pub id: String,
    pub code: AppointmentCode,
    pub user_id: String,
    pub slot: SlotId,
    pub service: ServiceKind,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub family_only: bool,
    pub applicant: Applicant,
    #[serde(default)]
    pub guardian: Option<Guardian>,
    /// HMAC of the applicant's ID number: one active appointment per person, no-shows, bans.
    pub id_hash: String,
    #[serde(default)]
    pub photo_receipt_no: Option<String>,
    pub status: Status,
    #[serde(default)]
    pub fee_yuan: Option<u32>,
    #[serde(default)]
    pub delivery: Option<Delivery>,
    #[serde(default)]
    pub ems_no: Option<EmsNumber>,
    pub created_at: DateTime<Utc>,
    pub history: Vec<HistoryEntry>,
    /// A no-show staff forgave: it no longer counts towards a ban.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban_lift: Option<BanLift>,
    /// When the retention sweep removed the applicant's and guardian's details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymised_at: Option<DateTime<Utc>>,
    /// Changes made since booking (0 when booked, and for documents stored before versions):
    /// a change is stored only over the version it was made from, so two changes made from
    /// the same copy (a ban lift and the retention sweep) cannot both win.
    #[serde(default)]
    pub version: u64,
}

/// Why a ban cannot be lifted through this appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LiftError {
    #[error("only a no-show counts towards a ban")]
    NotNoShow,
    #[error("this no-show was forgiven already")]
    Lifted,
}

/// A change of state someone asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Cancel,
    NoShow,
    CheckIn,
    Accept { fee_yuan: u32, delivery: Delivery },
    StartProduction,
    Ship { ems_no: EmsNumber },
    ReadyForPickup,
    Collect,
}

impl Step {
    pub fn target(&self) -> Status {
        match self {
            Step::Cancel => Status::Cancelled,
            Step::NoShow => Status::NoShow,
            Step::CheckIn => Status::CheckedIn,
            Step::Accept { .. } => Status::Accepted,
            Step::StartProduction => Status::InProduction,
            Step::Ship { .. } => Status::Shipped,
            Step::ReadyForPickup => Status::ReadyForPickup,
            Step::Collect => Status::Collected,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot go from {from:?} to {to:?}")]
pub struct IllegalTransition {
    pub from: Status,
    pub to: Status,
}

impl Appointment {
    /// A copy to change: one version on.
    fn next_version(&self) -> Appointment {
        let mut next = self.clone();
        next.version += 1;
        next
    }

    /// The version `self` was made from (a change's copy is one on from what was read).
    pub fn made_from(&self) -> u64 {
        self.version.saturating_sub(1)
    }

    /// Booked: counts against the per-person and per-user limits and holds its seat.
    pub fn is_active(&self) -> bool {
        self.status == Status::Booked
    }

    /// When the appointment reached a state it never leaves (cancelled, missed, the card
    /// collected or mailed); `None` before.
    pub fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.status
            .has_ended()
            .then(|| self.history.last().map(|h| h.at))
            .flatten()
    }

    /// The appointment without its people (retention): no name, ID number, phone, guardian,
    /// address or waybill, and no free-text details; what statistics count (hall, service,
    /// times, status, fee, delivery method) and the keyed hash the account's no-shows and
    /// bans are counted by stay.
    pub fn anonymised(&self, now: DateTime<Utc>) -> Appointment {
        let mut next = self.next_version();
        next.applicant = Applicant {
            name: PersonName::removed(),
            id_number: String::new(),
            phone: PhoneNumber::removed(),
        };
        next.guardian = None;
        if let Some(Delivery::Ems { address }) = &mut next.delivery {
            address.clear();
        }
        next.ems_no = None;
        for entry in &mut next.history {
            entry.detail = None;
        }
        if let Some(lift) = &mut next.ban_lift {
            lift.reason.clear();
        }
        next.anonymised_at = Some(now);
        next
    }

    /// The no-show with `actor`'s ban lift recorded (its status stays `NoShow`; the history
    /// says so too).
    pub fn lifted(
        &self,
        actor: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Appointment, LiftError> {
        if self.status != Status::NoShow {
            return Err(LiftError::NotNoShow);
        }
        if self.ban_lift.is_some() {
            return Err(LiftError::Lifted);
        }
        let mut next = self.next_version();
        next.ban_lift = Some(BanLift {
            at,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
        });
        next.history.push(HistoryEntry {
            status: Status::NoShow,
            at,
            actor: actor.to_owned(),
            detail: Some(format!("已解除爽约限制：{reason}")),
        });
        Ok(next)
    }

    /// The appointment after `step`, or why it cannot be taken from the current state.
    pub fn after(
        &self,
        step: Step,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Appointment, IllegalTransition> {
        let to = step.target();
        let illegal = IllegalTransition {
            from: self.status,
            to,
        };
        let mut next = self.next_version();
        let detail = match (self.status, step) {
            (Status::Booked, Step::Cancel | Step::NoShow | Step::CheckIn) => None,
            (Status::CheckedIn, Step::Accept { fee_yuan, delivery }) => {
                let detail = match &delivery {
                    Delivery::Ems { .. } => format!("收费{fee_yuan}元，EMS邮寄"),
                    Delivery::Pickup => format!("收费{fee_yuan}元，到大厅自取"),
                };
                next.fee_yuan = Some(fee_yuan);
                next.delivery = Some(delivery);
                Some(detail)
            }
            (Status::Accepted, Step::StartProduction) => None,
            (Status::InProduction, Step::Ship { ems_no })
                if matches!(self.delivery, Some(Delivery::Ems { .. })) =>
            {
                let detail = format!("EMS运单号 {}", ems_no.0);
                next.ems_no = Some(ems_no);
                Some(detail)
            }
            (Status::InProduction, Step::ReadyForPickup)
                if self.delivery == Some(Delivery::Pickup) =>
            {
                None
            }
            (Status::ReadyForPickup, Step::Collect) => None,
            _ => return Err(illegal),
        };
        next.status = to;
        next.history.push(HistoryEntry {
            status: to,
            at,
            actor: actor.to_owned(),
            detail,
        });
        Ok(next)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeZone;

    use super::*;

    pub fn booked() -> Appointment {
        let at = Utc.with_ymd_and_hms(2026, 11, 26, 1, 0, 0).unwrap();
        Appointment {
            id: "a1".into(),
            code: AppointmentCode::generate(),
            user_id: "u1".into(),
            slot: SlotId::parse("dongcheng-20261126-0900").unwrap(),
            service: ServiceKind::ExpiryRenewal,
            starts_at: at,
            ends_at: at + chrono::Duration::minutes(30),
            family_only: false,
            applicant: Applicant {
                name: PersonName::parse("张三").unwrap(),
                id_number: "1101**********002X".into(),
                phone: PhoneNumber::parse("13812345678").unwrap(),
            },
            guardian: None,
            id_hash: "h".into(),
            photo_receipt_no: None,
            status: Status::Booked,
            fee_yuan: None,
            delivery: None,
            ems_no: None,
            created_at: at,
            history: vec![HistoryEntry {
                status: Status::Booked,
                at,
                actor: "user".into(),
                detail: None,
            }],
            ban_lift: None,
            anonymised_at: None,
            version: 0,
        }
    }

    fn walk(mut a: Appointment, steps: Vec<Step>) -> Result<Appointment, IllegalTransition> {
        for step in steps {
            a = a.after(step, "staff:s1", Utc::now())?;
        }
        Ok(a)
    }

    #[test]
    fn codes_are_unambiguous_and_parse_case_insensitively() {
        let code = AppointmentCode::generate();
        assert_eq!(code.as_str().len(), 8);
        assert!(!code.as_str().contains(['0', 'O', '1', 'I', 'L']));
        assert_eq!(
            AppointmentCode::parse(&code.as_str().to_lowercase()),
            Some(code.clone())
        );
        assert_ne!(AppointmentCode::generate(), code);
        assert_eq!(AppointmentCode::parse("ABCDEFG0"), None);
        assert_eq!(AppointmentCode::parse("ABCDEFG"), None);
    }

    #[test]
    fn mail_path_records_fee_delivery_and_waybill() {
        let ems = Delivery::parse("ems", Some("东莞市东城区某路1号")).unwrap();
        let done = walk(
            booked(),
            vec![
                Step::CheckIn,
                Step::Accept {
                    fee_yuan: 20,
                    delivery: ems,
                },
                Step::StartProduction,
                Step::Ship {
                    ems_no: EmsNumber::parse("ea123456789cn").unwrap(),
                },
            ],
        )
        .unwrap();
        assert_eq!(done.status, Status::Shipped);
        assert_eq!(done.fee_yuan, Some(20));
        let statuses: Vec<Status> = done.history.iter().map(|h| h.status).collect();
        assert_eq!(
            statuses,
            [
                Status::Booked,
                Status::CheckedIn,
                Status::Accepted,
                Status::InProduction,
                Status::Shipped
            ]
        );
        assert_eq!(
            done.history[4].detail.as_deref(),
            Some("EMS运单号 EA123456789CN")
        );
        assert_eq!(done.history[4].actor, "staff:s1");
    }

    #[test]
    fn pickup_path_ends_collected_and_branches_do_not_mix() {
        let accepted = walk(
            booked(),
            vec![
                Step::CheckIn,
                Step::Accept {
                    fee_yuan: 40,
                    delivery: Delivery::Pickup,
                },
                Step::StartProduction,
            ],
        )
        .unwrap();
        let ship = Step::Ship {
            ems_no: EmsNumber::parse("1234567890123").unwrap(),
        };
        assert_eq!(
            accepted.after(ship, "staff:s1", Utc::now()).unwrap_err(),
            IllegalTransition {
                from: Status::InProduction,
                to: Status::Shipped
            }
        );
        let collected = walk(accepted, vec![Step::ReadyForPickup, Step::Collect]).unwrap();
        assert_eq!(collected.status, Status::Collected);
    }

    #[test]
    fn illegal_steps_are_refused() {
        let cancelled = walk(booked(), vec![Step::Cancel]).unwrap();
        for step in [
            Step::Cancel,
            Step::CheckIn,
            Step::NoShow,
            Step::StartProduction,
        ] {
            assert!(cancelled.after(step, "user", Utc::now()).is_err());
        }
        assert!(walk(booked(), vec![Step::StartProduction]).is_err());
        assert!(walk(booked(), vec![Step::CheckIn, Step::Cancel]).is_err());
        assert!(walk(booked(), vec![Step::CheckIn, Step::Collect]).is_err());
    }

    #[test]
    fn delivery_and_waybill_parsing() {
        assert_eq!(
            Delivery::parse("ems", Some("  ")).unwrap_err().0,
            "delivery.address"
        );
        assert_eq!(
            Delivery::parse("drone", None).unwrap_err().0,
            "delivery.method"
        );
        assert!(EmsNumber::parse("EA12345678CN").is_none());
        assert!(EmsNumber::parse("E1123456789CN").is_none());
    }

    #[test]
    fn stored_form_round_trips() {
        let a = booked();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Appointment>(&json).unwrap(), a);
        assert!(json.contains("\"slot\":\"dongcheng-20261126-0900\""));
    }

    /// A card mailed to a child's home: once anonymised, the stored form names nobody and
    /// no place, and keeps what statistics count.
    #[test]
    fn anonymised_keeps_no_person_nor_address() {
        let mut a = booked();
        a.guardian = Some(Guardian {
            name: PersonName::parse("李四").unwrap(),
            id_number: "4419**********0011".into(),
            relationship: Relationship::Father,
        });
        let at = a.created_at;
        let step = |a: &Appointment, step| a.after(step, "staff:s1", at).unwrap();
        let a = step(&a, Step::CheckIn);
        let delivery = Delivery::parse("ems", Some("东莞市南城区鸿福路99号")).unwrap();
        let a = step(
            &a,
            Step::Accept {
                fee_yuan: 20,
                delivery,
            },
        );
        let a = step(&a, Step::StartProduction);
        assert_eq!(a.ended_at(), None, "in production: not ended");
        let ems_no = EmsNumber::parse("EA123456789CN").unwrap();
        let a = step(&a, Step::Ship { ems_no });
        assert_eq!(a.ended_at(), Some(at), "mailed: ended");

        let anonymised = a.anonymised(at);
        let stored = serde_json::to_string(&anonymised).unwrap();
        for personal in [
            "张三",
            "李四",
            "13812345678",
            "1101**",
            "4419**",
            "鸿福路",
            "EA123456789CN",
        ] {
            assert!(!stored.contains(personal), "{personal} in {stored}");
        }
        assert_eq!(anonymised.status, Status::Shipped);
        assert_eq!(anonymised.fee_yuan, Some(20));
        assert!(matches!(anonymised.delivery, Some(Delivery::Ems { .. })));
        assert_eq!(
            anonymised.id_hash, a.id_hash,
            "no-shows and bans are counted by it"
        );
        assert_eq!(anonymised.history.len(), a.history.len());
        assert_eq!(anonymised.anonymised_at, Some(at));
    }
}
