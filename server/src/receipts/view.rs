//! How an order looks over the API: to its owner in the 订单 tab, and to the detection centre
//! (which also sees who decided). Names and ID numbers are shown masked to both.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::domain::{EventKind, ReceiptOrder, RejectReason, Status};
use crate::error::ApiError;

#[derive(Serialize)]
pub struct ReasonView {
    pub code: RejectReason,
    pub label_zh: &'static str,
}

impl From<RejectReason> for ReasonView {
    fn from(code: RejectReason) -> Self {
        ReasonView {
            code,
            label_zh: code.label_zh(),
        }
    }
}

#[derive(Serialize)]
struct EventView<'a> {
    kind: EventKind,
    label_zh: &'static str,
    at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reasons: Vec<ReasonView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    /// The reviewer, for the detection centre only.
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<&'a str>,
}

#[derive(Serialize)]
pub struct OrderView<'a> {
    id: &'a str,
    spec: &'a str,
    region: super::Region,
    region_zh: &'static str,
    status: Status,
    status_zh: &'static str,
    name_masked: String,
    id_number_masked: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt_no: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    /// The last rejection's reasons and note, while the order stands rejected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reasons: Vec<ReasonView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    background_whitened: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    photo_note: Option<&'a str>,
    report: &'a serde_json::Value,
    history: Vec<EventView<'a>>,
    created_at: DateTime<Utc>,
    submitted_at: DateTime<Utc>,
}

/// Who is looking.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Owner,
    Reviewer,
}

pub fn order_view(order: &ReceiptOrder, now: DateTime<Utc>, viewer: Viewer) -> OrderView<'_> {
    let status = order.status_at(now);
    let rejection = order.rejection();
    OrderView {
        id: &order.id,
        spec: &order.spec,
        region: order.region,
        region_zh: order.region.name_zh(),
        status,
        status_zh: status.label_zh(),
        name_masked: order.name.masked(),
        id_number_masked: order.id_number_masked.clone(),
        receipt_no: order.receipt.as_ref().map(|r| r.no.as_str()),
        issued_at: order.receipt.as_ref().map(|r| r.issued_at),
        expires_at: order.receipt.as_ref().map(|r| r.expires_at),
        reasons: rejection
            .map(|e| e.reasons.iter().copied().map(ReasonView::from).collect())
            .unwrap_or_default(),
        note: rejection.and_then(|e| e.note.as_deref()),
        background_whitened: order.photo.background_whitened,
        photo_note: order.photo.note.as_deref(),
        report: &order.photo.report,
        history: order
            .history
            .iter()
            .map(|e| EventView {
                kind: e.kind,
                label_zh: e.kind.label_zh(),
                at: e.at,
                reasons: e.reasons.iter().copied().map(ReasonView::from).collect(),
                note: e.note.as_deref(),
                by: (viewer == Viewer::Reviewer)
                    .then_some(e.by.as_deref())
                    .flatten(),
            })
            .collect(),
        created_at: order.created_at,
        submitted_at: order.submitted_at,
    }
}

/// The same answer for "no such order" and "not yours": nobody learns another user's ids.
pub fn owned_by(order: Option<ReceiptOrder>, user_id: &str) -> Result<ReceiptOrder, ApiError> {
    order
        .filter(|o| o.user_id == user_id)
        .ok_or(ApiError::NotFound)
}
