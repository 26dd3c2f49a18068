//! The staff inbox (role `support` only): the conversations, the most recent first, with those
//! awaiting a person's answer marked; one conversation; a reply, queued through the outbox to
//! `cgi-bin/message/custom/send`, or refused with `KF_WINDOW_CLOSED` when the user last wrote
//! more than 48 hours ago (WeChat would refuse it with 45015).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::store::{Author, Conversation, Exchange, KfMessage};
use super::{mask, Conversations, REPLY_WINDOW};
use crate::admin::{AdminUser, Role};
use crate::error::{ApiError, ErrorCode};
use crate::notify::Notification;
use crate::routing::endpoint;

/// Conversations one look at the inbox shows, unless `limit` says fewer or more.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;
/// The longest reply, in characters (WeChat takes a 客服 text of up to 2048 bytes).
const MAX_REPLY_CHARS: usize = 600;

pub fn routes(cfg: &mut web::ServiceConfig, conversations: web::Data<Conversations>) {
    cfg.app_data(conversations)
        .service(endpoint("/api/v1/admin/kf/conversations").get(list))
        .service(endpoint("/api/v1/admin/kf/conversations/{id}").get(read))
        .service(endpoint("/api/v1/admin/kf/conversations/{id}/replies").post(reply));
}

pub fn dev_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/__sim/kf/retention/run").post(run_retention));
}

/// A conversation as the inbox shows it: the user only by a masked openid.
#[derive(Serialize)]
struct ConversationView {
    id: String,
    user: String,
    last_at: DateTime<Utc>,
    last_user_at: DateTime<Utc>,
    /// A person has yet to answer what the user asked.
    awaiting: bool,
    /// Until when WeChat takes a reply (48 hours after the user's last message).
    reply_until: DateTime<Utc>,
    can_reply: bool,
    last_text: String,
}

fn view(c: &Conversation, conversations: &Conversations, now: DateTime<Utc>) -> ConversationView {
    ConversationView {
        id: c.id.clone(),
        user: mask(&c.openid),
        last_at: c.last_at,
        last_user_at: c.last_user_at,
        awaiting: c.awaiting(),
        reply_until: c.last_user_at + REPLY_WINDOW,
        can_reply: conversations.window_open(c.last_user_at, now),
        last_text: c.last_text.clone(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
}

async fn list(
    admin: AdminUser,
    q: web::Query<ListQuery>,
    conversations: web::Data<Conversations>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Support)?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("limit 为 1 到 {MAX_PAGE}"),
        ));
    }
    let now = conversations.clock.now();
    let found = conversations.store.conversations(limit as usize).await?;
    let views: Vec<_> = found.iter().map(|c| view(c, &conversations, now)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "conversations": views })))
}

#[derive(Serialize)]
struct ConversationDetail {
    #[serde(flatten)]
    summary: ConversationView,
    messages: Vec<KfMessage>,
}

async fn read(
    admin: AdminUser,
    id: web::Path<String>,
    conversations: web::Data<Conversations>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Support)?;
    let (summary, messages) = conversations
        .store
        .conversation(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let now = conversations.clock.now();
    Ok(HttpResponse::Ok().json(ConversationDetail {
        summary: view(&summary, &conversations, now),
        messages,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyRequest {
    text: String,
}

async fn reply(
    admin: AdminUser,
    id: web::Path<String>,
    body: web::Json<ReplyRequest>,
    conversations: web::Data<Conversations>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Role::Support)?;
    let text = body.into_inner().text;
    // White space as the contract's `\S` reads it (Python's, which counts U+001C–U+001F).
    let blank = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    if text.chars().all(blank) || text.chars().count() > MAX_REPLY_CHARS {
        return Err(ApiError::invalid(
            "text",
            format!("回复内容为 1 到 {MAX_REPLY_CHARS} 个字，且不能全是空白"),
        ));
    }
    let (summary, _) = conversations
        .store
        .conversation(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let now = conversations.clock.now();
    // Refused before anything is queued: WeChat would answer 45015.
    if !conversations.window_open(summary.last_user_at, now) {
        return Err(ErrorCode::KfWindowClosed.into());
    }
    let message = KfMessage {
        id: uuid::Uuid::new_v4().simple().to_string(),
        at: now,
        author: Author::Staff,
        staff_id: Some(admin.id.clone()),
        text,
    };
    let queued = Notification::customer_service(
        format!("kf:staff:{}", message.id),
        &summary.openid,
        &message.text,
        now,
    );
    conversations
        .store
        .record_exchange(&Exchange {
            conversation_id: summary.id.clone(),
            openid: summary.openid.clone(),
            messages: vec![message.clone()],
            needs_person: false,
            reply: Some(queued),
        })
        .await?;
    tracing::info!(user = %mask(&summary.openid), staff = %admin.id, "客服 reply queued");
    Ok(HttpResponse::Created().json(message))
}

/// Development: one retention sweep now (tests move the clock, then run it).
async fn run_retention(conversations: web::Data<Conversations>) -> Result<HttpResponse, ApiError> {
    let deleted = conversations.sweep().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": deleted })))
}
