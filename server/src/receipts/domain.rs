//! A photo-receipt order and the only ways it may change: submitted → approved (a receipt
//! number that expires) or rejected (reasons) → resubmitted …; an approved receipt is named
//! by a booking of its applicant and spent at that booking's check-in. Each change is a pure
//! function here; the store saves the result only if nobody changed the order in between.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::number::ReceiptNo;
use crate::id_hash::IdHasher;
use crate::person::{IdNumber, PersonName};

/// Where the receipt will be used. A receipt is issued by a province's photo centre and is
/// accepted by that province's windows only (a Guangdong receipt is not valid in Hunan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Region {
    Guangdong,
    Jiangxi,
    Hainan,
    Hunan,
    Guizhou,
    Qinghai,
}

const REGIONS: [Region; 6] = [
    Region::Guangdong,
    Region::Jiangxi,
    Region::Hainan,
    Region::Hunan,
    Region::Guizhou,
    Region::Qinghai,
];

impl Region {
    pub fn name_zh(self) -> &'static str {
        match self {
            Region::Guangdong => "广东省",
            Region::Jiangxi => "江西省",
            Region::Hainan => "海南省",
            Region::Hunan => "湖南省",
            Region::Guizhou => "贵州省",
            Region::Qinghai => "青海省",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Region::Guangdong => "guangdong",
            Region::Jiangxi => "jiangxi",
            Region::Hainan => "hainan",
            Region::Hunan => "hunan",
            Region::Guizhou => "guizhou",
            Region::Qinghai => "qinghai",
        }
    }

    /// `guangdong`, `广东`, `广东省` or a place in it such as `广东省东莞市`.
    pub fn parse(input: &str) -> Option<Region> {
        let text = input.trim();
        REGIONS.into_iter().find(|r| {
            let short = r.name_zh().trim_end_matches('省');
            text.eq_ignore_ascii_case(r.code()) || text.starts_with(short)
        })
    }

    /// Which documents the region's windows take online receipts for: ID cards in every
    /// province listed; social security cards, driving licences and exit-entry documents in
    /// Guangdong only (booking-domain.md §3.2).
    pub fn accepts(self, spec_id: &str) -> bool {
        spec_id == "id-card" || self == Region::Guangdong
    }
}

/// Why a reviewer refused a photo: a fixed list, so the phone can explain each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    HairCoversBrowsOrEars,
    Accessories,
    ShadowOrGlare,
    BeautyFilter,
    MirroredSelfie,
    WhiteTop,
    Blurred,
    HeadTilted,
    HeadSize,
    HeadOffCentre,
    Expression,
    Background,
    PhotoOfPhoto,
    Other,
}

pub const REJECT_REASONS: [RejectReason; 14] = [
    RejectReason::HairCoversBrowsOrEars,
    RejectReason::Accessories,
    RejectReason::ShadowOrGlare,
    RejectReason::BeautyFilter,
    RejectReason::MirroredSelfie,
    RejectReason::WhiteTop,
    RejectReason::Blurred,
    RejectReason::HeadTilted,
    RejectReason::HeadSize,
    RejectReason::HeadOffCentre,
    RejectReason::Expression,
    RejectReason::Background,
    RejectReason::PhotoOfPhoto,
    RejectReason::Other,
];

impl RejectReason {
    pub fn label_zh(self) -> &'static str {
        match self {
            RejectReason::HairCoversBrowsOrEars => "发丝遮挡眉毛或耳朵",
            RejectReason::Accessories => "佩戴饰品",
            RejectReason::ShadowOrGlare => "面部阴影或反光",
            RejectReason::BeautyFilter => "美颜或滤镜",
            RejectReason::MirroredSelfie => "镜像自拍",
            RejectReason::WhiteTop => "白色上衣",
            RejectReason::Blurred => "模糊",
            RejectReason::HeadTilted => "头部倾斜",
            RejectReason::HeadSize => "头部过大或过小",
            RejectReason::HeadOffCentre => "头部不居中",
            RejectReason::Expression => "表情不自然或露齿",
            RejectReason::Background => "背景不符合要求",
            RejectReason::PhotoOfPhoto => "翻拍照片",
            RejectReason::Other => "其他（见备注）",
        }
    }

    pub fn parse(code: &str) -> Option<RejectReason> {
        serde_json::from_value(serde_json::Value::String(code.to_owned())).ok()
    }
}

/// What the 订单 tab shows. `Expired` is never stored: an approved receipt past its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
    Expired,
    Used,
}

impl Status {
    pub fn label_zh(self) -> &'static str {
        match self {
            Status::Pending => "待审核",
            Status::Approved => "已通过",
            Status::Rejected => "未通过",
            Status::Expired => "已过期",
            Status::Used => "已使用",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Approved,
            Status::Rejected,
            Status::Expired,
            Status::Used,
        ]
        .into_iter()
        .find(|s| s.as_str() == text || s.label_zh() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
            Status::Used => "used",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Submitted,
    Approved,
    Rejected,
    Resubmitted,
    Used,
}

impl EventKind {
    pub fn label_zh(self) -> &'static str {
        match self {
            EventKind::Submitted => "已提交，待审核",
            EventKind::Approved => "审核通过，回执已生成",
            EventKind::Rejected => "审核未通过",
            EventKind::Resubmitted => "已重新提交，待审核",
            EventKind::Used => "已在窗口使用",
        }
    }
}

/// One step of an order's history; `by` is the reviewer for decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<RejectReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The photo an order currently stands on: which upload, what the checker said, and what
/// normalisation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Photo {
    /// 1 for the first upload, +1 per resubmission.
    pub attempt: u32,
    /// Names this upload's blobs: unique per upload, so two uploads racing for one order (a
    /// double-tapped resubmit) never overwrite, nor remove, each other's photos. Orders
    /// stored before it existed name their blobs by `attempt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    pub report: serde_json::Value,
    pub background_whitened: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub no: ReceiptNo,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The appointment whose check-in spent the receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<DateTime<Utc>>,
}

/// Until when an order still serves its owner ([`ReceiptOrder::needed_until`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeededUntil {
    /// Waiting for review.
    Reviewed,
    /// An approved receipt, until it expires (or is used).
    Expires(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptOrder {
    pub id: String,
    pub user_id: String,
    pub spec: String,
    pub document_zh: String,
    pub region: Region,
    pub name: PersonName,
    /// The ID number's keyed hash (`IdHasher`): whose receipt it is. The number itself is
    /// never stored.
    pub id_hash: String,
    /// The ID number masked, for display.
    pub id_number_masked: String,
    /// Stored status: never `Expired` (see `status_at`).
    pub status: Status,
    pub photo: Photo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    pub history: Vec<Event>,
    pub created_at: DateTime<Utc>,
    /// When the current photo was submitted: the review queue's order.
    pub submitted_at: DateTime<Utc>,
    /// Bumped by every change; the store refuses a change made from a stale copy.
    pub version: u64,
    /// What the retention sweep removed, and when.
    #[serde(default, skip_serializing_if = "Removed::is_nothing")]
    pub removed: Removed,
}

/// What the retention sweep removed from an order, and when.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Removed {
    /// The current upload's original photo (a resubmission's upload starts afresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_at: Option<DateTime<Utc>>,
    /// The normalised photo, and with it the receipt image drawn from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalised_at: Option<DateTime<Utc>>,
    /// The applicant's name, ID number (hash and masked form) and the reviewers' notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicant_at: Option<DateTime<Utc>>,
}

impl Removed {
    fn is_nothing(&self) -> bool {
        *self == Removed::default()
    }
}

/// How long an order's parts are kept (`retention` settings).
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// The original photo, after the review's decision.
    pub original: Duration,
    /// The applicant's details, after the order finished (receipt used or expired, or rejected
    /// and not resubmitted).
    pub applicant: Duration,
}

/// What of an order is due for removal now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removals {
    pub original: bool,
    pub normalised: bool,
    pub applicant: bool,
}

impl Removals {
    pub fn any(self) -> bool {
        self.original || self.normalised || self.applicant
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("order is not waiting for review")]
    NotPending,
    #[error("order was not rejected")]
    NotRejected,
    #[error("a rejection needs at least one reason")]
    NoReason,
    #[error("`other` needs a note")]
    OtherWithoutNote,
    #[error("receipt is not approved")]
    NotApproved,
    #[error("receipt expired")]
    Expired,
    #[error("receipt already used")]
    Used,
    #[error("receipt is for another ID number")]
    OtherPerson,
}

/// What a reviewer decided.
#[derive(Debug, Clone)]
pub enum Decision {
    Approve {
        no: ReceiptNo,
        valid_for: Duration,
    },
    Reject {
        reasons: Vec<RejectReason>,
        note: Option<String>,
    },
}

/// What the user filled in for an order.
#[derive(Debug, Clone)]
pub struct OrderForm {
    pub spec: String,
    /// The document's name as the spec table gave it when ordering (`居民身份证`).
    pub document_zh: String,
    pub region: Region,
    pub name: PersonName,
    pub id_number: IdNumber,
}

impl ReceiptOrder {
    pub fn new(
        id: String,
        user_id: String,
        form: OrderForm,
        hasher: &IdHasher,
        photo: Photo,
        now: DateTime<Utc>,
    ) -> Self {
        ReceiptOrder {
            id,
            user_id,
            spec: form.spec,
            document_zh: form.document_zh,
            region: form.region,
            name: form.name,
            id_hash: hasher.hash(&form.id_number),
            id_number_masked: form.id_number.masked(),
            status: Status::Pending,
            photo,
            receipt: None,
            history: vec![event(EventKind::Submitted, now)],
            created_at: now,
            submitted_at: now,
            version: 1,
            removed: Removed::default(),
        }
    }

    /// When the current photo was decided on (approved or rejected); `None` while pending.
    fn decided_at(&self) -> Option<DateTime<Utc>> {
        if self.status == Status::Pending {
            return None;
        }
        self.history
            .iter()
            .rev()
            .find(|e| matches!(e.kind, EventKind::Approved | EventKind::Rejected))
            .map(|e| e.at)
    }

    /// When the order served its purpose: its receipt was used or expired, or it was rejected
    /// (and stays so unless resubmitted); `None` while it may still be used.
    fn finished_at(&self) -> Option<DateTime<Utc>> {
        match (self.status, &self.receipt) {
            (Status::Used, Some(receipt)) => Some(receipt.used_at.unwrap_or(receipt.issued_at)),
            (Status::Approved, Some(receipt)) => Some(receipt.expires_at),
            (Status::Rejected, _) => self.decided_at(),
            _ => None,
        }
    }

    /// What the retention sweep removes at `now`: the original photo `keep.original` after
    /// the decision; the normalised photo (and so the receipt image) once the receipt expired;
    /// everything personal `keep.applicant` after the order finished.
    pub fn due_removals(&self, keep: Keep, now: DateTime<Utc>) -> Removals {
        let applicant = self.removed.applicant_at.is_none()
            && self
                .finished_at()
                .is_some_and(|at| at + keep.applicant <= now);
        let expired = self.receipt.as_ref().is_some_and(|r| r.expires_at <= now);
        Removals {
            original: self.removed.original_at.is_none()
                && (applicant
                    || self
                        .decided_at()
                        .is_some_and(|at| at + keep.original <= now)),
            normalised: self.removed.normalised_at.is_none() && (applicant || expired),
            applicant,
        }
    }

    /// Records `removals` (their blobs are gone): the applicant's details are replaced by
    /// nothing personal; what statistics count (document, region, status, dates) stays.
    pub fn record_removals(&mut self, removals: Removals, now: DateTime<Utc>) {
        if removals.original {
            self.removed.original_at = Some(now);
        }
        if removals.normalised {
            self.removed.normalised_at = Some(now);
        }
        if removals.applicant {
            self.removed.applicant_at = Some(now);
            self.name = PersonName::removed();
            self.id_hash.clear();
            self.id_number_masked.clear();
            for event in &mut self.history {
                event.note = None;
            }
        }
        self.version += 1;
    }

    /// The status as of `now`: an approved receipt past its expiry shows as expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> Status {
        match (&self.status, &self.receipt) {
            (Status::Approved, Some(r)) if r.expires_at <= now => Status::Expired,
            (status, _) => *status,
        }
    }

    /// While the order still serves its owner (waiting for review, or an approved receipt
    /// not yet expired nor used), what it waits for: its personal data is kept until then.
    pub fn needed_until(&self, now: DateTime<Utc>) -> Option<NeededUntil> {
        match (self.status_at(now), &self.receipt) {
            (Status::Pending, _) => Some(NeededUntil::Reviewed),
            (Status::Approved, Some(receipt)) => Some(NeededUntil::Expires(receipt.expires_at)),
            _ => None,
        }
    }

    /// The reasons of the last rejection, while the order stands rejected.
    pub fn rejection(&self) -> Option<&Event> {
        (self.status == Status::Rejected)
            .then(|| {
                self.history
                    .iter()
                    .rev()
                    .find(|e| e.kind == EventKind::Rejected)
            })
            .flatten()
    }

    fn record(&mut self, event: Event) {
        self.history.push(event);
        self.version += 1;
    }

    pub fn decide(
        &mut self,
        decision: Decision,
        reviewer: &str,
        now: DateTime<Utc>,
    ) -> Result<(), TransitionError> {
        if self.status != Status::Pending {
            return Err(TransitionError::NotPending);
        }
        let mut step = Event {
            by: Some(reviewer.to_owned()),
            ..event(EventKind::Approved, now)
        };
        match decision {
            Decision::Approve { no, valid_for } => {
                self.status = Status::Approved;
                self.receipt = Some(Receipt {
                    no,
                    issued_at: now,
                    expires_at: now + valid_for,
                    used_by: None,
                    used_at: None,
                });
            }
            Decision::Reject { reasons, note } => {
                if reasons.is_empty() {
                    return Err(TransitionError::NoReason);
                }
                if reasons.contains(&RejectReason::Other) && note.is_none() {
                    return Err(TransitionError::OtherWithoutNote);
                }
                self.status = Status::Rejected;
                step.kind = EventKind::Rejected;
                step.reasons = reasons;
                step.note = note;
            }
        }
        self.record(step);
        Ok(())
    }

    pub fn resubmit(&mut self, photo: Photo, now: DateTime<Utc>) -> Result<(), TransitionError> {
        if self.status != Status::Rejected {
            return Err(TransitionError::NotRejected);
        }
        self.status = Status::Pending;
        self.photo = photo;
        self.removed.original_at = None;
        self.removed.normalised_at = None;
        self.submitted_at = now;
        self.record(event(EventKind::Resubmitted, now));
        Ok(())
    }

    /// Whether a booking for the ID number hashed `id_hash` may name this receipt: approved,
    /// unexpired, unused and the applicant's own. (Booking allows one active appointment per
    /// ID number, so two live bookings cannot name the same receipt.)
    pub fn usable_by(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), TransitionError> {
        match self.status_at(now) {
            Status::Approved => {}
            Status::Expired => return Err(TransitionError::Expired),
            Status::Used => return Err(TransitionError::Used),
            Status::Pending | Status::Rejected => return Err(TransitionError::NotApproved),
        }
        if self.id_hash != id_hash {
            return Err(TransitionError::OtherPerson);
        }
        Ok(())
    }

    /// The check-in of `appointment` spends the receipt: single use. The window accepts it on
    /// the day even if it expired since the booking. Repeating it for the same appointment
    /// (a retried check-in) changes nothing.
    pub fn mark_used(
        &mut self,
        appointment: &str,
        now: DateTime<Utc>,
    ) -> Result<(), TransitionError> {
        let receipt = self.receipt.as_mut().ok_or(TransitionError::NotApproved)?;
        match self.status {
            Status::Used if receipt.used_by.as_deref() == Some(appointment) => return Ok(()),
            Status::Used => return Err(TransitionError::Used),
            Status::Approved => {}
            _ => return Err(TransitionError::NotApproved),
        }
        receipt.used_by = Some(appointment.to_owned());
        receipt.used_at = Some(now);
        self.status = Status::Used;
        self.record(event(EventKind::Used, now));
        Ok(())
    }
}

fn event(kind: EventKind, at: DateTime<Utc>) -> Event {
    Event {
        kind,
        at,
        by: None,
        reasons: Vec::new(),
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> IdHasher {
        IdHasher::new(secrecy::SecretString::from("test-key"))
    }

    fn order(now: DateTime<Utc>) -> ReceiptOrder {
        ReceiptOrder::new(
            "o1".into(),
            "u1".into(),
            OrderForm {
                spec: "id-card".into(),
                document_zh: "居民身份证".into(),
                region: Region::Guangdong,
                name: PersonName::parse("张三").unwrap(),
                id_number: IdNumber::parse("441900199003070024").unwrap(),
            },
            &hasher(),
            Photo {
                attempt: 1,
                upload: None,
                report: serde_json::json!({}),
                background_whitened: true,
                note: None,
            },
            now,
        )
    }

    fn approve(o: &mut ReceiptOrder, now: DateTime<Utc>) -> ReceiptNo {
        let no = ReceiptNo::generate(&mut rand::rng());
        o.decide(
            Decision::Approve {
                no: no.clone(),
                valid_for: Duration::days(180),
            },
            "r1",
            now,
        )
        .unwrap();
        no
    }

    #[test]
    fn regions_read_as_people_write_them() {
        assert_eq!(Region::parse("广东省东莞市"), Some(Region::Guangdong));
        assert_eq!(Region::parse("guangdong"), Some(Region::Guangdong));
        assert_eq!(Region::parse("湖南"), Some(Region::Hunan));
        assert_eq!(Region::parse("北京市"), None);
        assert!(Region::Hunan.accepts("id-card"));
        assert!(!Region::Hunan.accepts("driving-licence"));
        assert!(Region::Guangdong.accepts("driving-licence"));
    }

    #[test]
    fn reasons_have_stable_codes() {
        for reason in REJECT_REASONS {
            let code = serde_json::to_value(reason).unwrap();
            assert_eq!(RejectReason::parse(code.as_str().unwrap()), Some(reason));
        }
        assert_eq!(RejectReason::parse("ugly"), None);
    }

    #[test]
    fn one_decision_per_submission() {
        let now = Utc::now();
        let mut o = order(now);
        assert_eq!(
            o.decide(
                Decision::Reject {
                    reasons: vec![],
                    note: None
                },
                "r1",
                now
            ),
            Err(TransitionError::NoReason)
        );
        o.decide(
            Decision::Reject {
                reasons: vec![RejectReason::Blurred],
                note: Some("太糊".into()),
            },
            "r1",
            now,
        )
        .unwrap();
        assert_eq!(o.status, Status::Rejected);
        assert_eq!(o.rejection().unwrap().reasons, vec![RejectReason::Blurred]);
        assert_eq!(o.version, 2);
        assert_eq!(
            o.decide(
                Decision::Reject {
                    reasons: vec![RejectReason::Blurred],
                    note: None
                },
                "r2",
                now
            ),
            Err(TransitionError::NotPending)
        );
        let photo = Photo {
            attempt: 2,
            upload: None,
            ..o.photo.clone()
        };
        o.resubmit(photo, now).unwrap();
        assert_eq!(o.status, Status::Pending);
        assert!(o.rejection().is_none());
        approve(&mut o, now);
        assert_eq!(o.status_at(now), Status::Approved);
        assert_eq!(o.status_at(now + Duration::days(181)), Status::Expired);
        let kinds: Vec<_> = o.history.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Submitted,
                EventKind::Rejected,
                EventKind::Resubmitted,
                EventKind::Approved
            ]
        );
    }

    #[test]
    fn a_receipt_is_the_applicants_and_used_once() {
        let now = Utc::now();
        let mut o = order(now);
        let id = o.id_hash.clone();
        assert_eq!(o.usable_by(&id, now), Err(TransitionError::NotApproved));
        assert_eq!(o.mark_used("a1", now), Err(TransitionError::NotApproved));
        approve(&mut o, now);
        let other = hasher().hash(&IdNumber::parse("441900201008151237").unwrap());
        assert_eq!(o.usable_by(&other, now), Err(TransitionError::OtherPerson));
        assert_eq!(o.usable_by(&id, now), Ok(()));
        o.mark_used("a1", now).unwrap();
        let version = o.version;
        o.mark_used("a1", now).unwrap();
        assert_eq!(o.version, version, "a retried check-in changes nothing");
        assert_eq!(o.mark_used("a2", now), Err(TransitionError::Used));
        assert_eq!(o.status_at(now), Status::Used);
        assert_eq!(o.usable_by(&id, now), Err(TransitionError::Used));
        assert_eq!(
            o.usable_by(&id, now + Duration::days(200)),
            Err(TransitionError::Used)
        );
    }

    #[test]
    fn an_expired_receipt_cannot_be_booked_but_a_booked_one_is_spent() {
        let now = Utc::now();
        let mut o = order(now);
        approve(&mut o, now);
        let id = o.id_hash.clone();
        assert_eq!(
            o.usable_by(&id, now + Duration::days(181)),
            Err(TransitionError::Expired)
        );
        o.mark_used("a1", now + Duration::days(181)).unwrap();
    }

    /// The removal schedule: the original 30 days after the decision, the normalised photo at
    /// the receipt's expiry, the details 90 days after the order finished; a resubmitted
    /// photo starts afresh.
    #[test]
    fn removals_fall_due_in_turn() {
        let keep = Keep {
            original: Duration::days(30),
            applicant: Duration::days(90),
        };
        let day = |n: i64| Utc::now() + Duration::days(n);
        let mut approved = order(day(0));
        assert_eq!(
            approved.due_removals(keep, day(400)),
            Removals::default(),
            "pending"
        );
        approve(&mut approved, day(0));
        assert_eq!(approved.due_removals(keep, day(29)), Removals::default());
        let due = approved.due_removals(keep, day(31));
        assert_eq!(
            (due.original, due.normalised, due.applicant),
            (true, false, false)
        );
        approved.record_removals(due, day(31));
        assert_eq!(approved.due_removals(keep, day(100)), Removals::default());
        let due = approved.due_removals(keep, day(181));
        assert_eq!(
            (due.original, due.normalised, due.applicant),
            (false, true, false)
        );
        approved.record_removals(due, day(181));
        let due = approved.due_removals(keep, day(271));
        assert_eq!(
            (due.original, due.normalised, due.applicant),
            (false, false, true)
        );
        approved.record_removals(due, day(271));
        assert_eq!(approved.name, PersonName::removed());
        assert!(approved.id_hash.is_empty() && approved.id_number_masked.is_empty());
        assert_eq!(
            approved.due_removals(keep, day(999)),
            Removals::default(),
            "all done"
        );

        let mut rejected = order(day(0));
        rejected
            .decide(
                Decision::Reject {
                    reasons: vec![RejectReason::Blurred],
                    note: Some("张三的照片模糊".into()),
                },
                "r1",
                day(0),
            )
            .unwrap();
        let due = rejected.due_removals(keep, day(31));
        rejected.record_removals(due, day(31));
        let photo = rejected.photo.clone();
        rejected.resubmit(photo, day(40)).unwrap();
        assert_eq!(
            rejected.removed.original_at, None,
            "the new upload's original is kept"
        );
        assert_eq!(
            rejected.due_removals(keep, day(400)),
            Removals::default(),
            "pending again"
        );
    }
}
