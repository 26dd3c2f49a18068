//! `GET /api/v1/wechat/push` (URL verification) and `POST /api/v1/wechat/push` (messages), in
//! plain mode or 安全模式 as the official docs specify; WeChat wants `success` back.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::Kf;
use crate::error::{ApiError, ErrorCode};
use crate::routing::endpoint;
use crate::wechat::push::signature_matches;

pub fn routes(cfg: &mut web::ServiceConfig, kf: web::Data<Kf>) {
    cfg.app_data(kf)
        .service(endpoint("/api/v1/wechat/push").get(verify).post(receive));
}

#[derive(Deserialize)]
struct Verification {
    signature: String,
    timestamp: String,
    nonce: String,
    echostr: String,
}

fn refused() -> ApiError {
    ErrorCode::PushSignatureInvalid.into()
}

/// How far a push's `timestamp` may be from our clock: a signed push recorded and sent again
/// later (a replay) is refused like a forged one.
const MAX_SKEW_SECS: i64 = 300;

/// Refuses a `timestamp` that is not a time within [`MAX_SKEW_SECS`] of now.
fn fresh(kf: &Kf, timestamp: &str) -> Result<(), ApiError> {
    let now = kf.clock.now().timestamp();
    match timestamp.parse::<i64>() {
        Ok(t) if (now - t).abs() <= MAX_SKEW_SECS => Ok(()),
        _ => Err(ErrorCode::PushSignatureInvalid.with("推送时间与服务器时间相差过大")),
    }
}

/// The admin console checks the URL: echo `echostr` when the signature is ours.
async fn verify(kf: web::Data<Kf>, q: web::Query<Verification>) -> Result<HttpResponse, ApiError> {
    let token = kf.token_text();
    if !signature_matches(&q.signature, &[token, &q.timestamp, &q.nonce]) {
        return Err(refused());
    }
    fresh(&kf, &q.timestamp)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(q.echostr.clone()))
}

#[derive(Deserialize)]
struct Signed {
    signature: String,
    timestamp: String,
    nonce: String,
    encrypt_type: Option<String>,
    msg_signature: Option<String>,
}

/// The fields of a pushed message we read (JSON format).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Pushed {
    from_user_name: String,
    #[serde(default)]
    create_time: Value,
    msg_type: String,
    content: Option<String>,
    msg_id: Option<Value>,
}

fn bad_body(why: &str) -> ApiError {
    ApiError::invalid("body", format!("推送内容无法读取：{why}"))
}

/// The message's JSON, checked against the signature (and decrypted in 安全模式).
fn open(kf: &Kf, q: &Signed, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let token = kf.token_text();
    let Some(key) = &kf.key else {
        if !signature_matches(&q.signature, &[token, &q.timestamp, &q.nonce]) {
            return Err(refused());
        }
        return Ok(body.to_vec());
    };
    if q.encrypt_type.as_deref() != Some("aes") {
        return Err(ErrorCode::PushSignatureInvalid.with("已配置安全模式，只接受加密的推送"));
    }
    // Without the field `msg_signature` signs, nothing vouches for the push.
    let envelope: Option<Value> = serde_json::from_slice(body).ok();
    let encrypted = envelope
        .as_ref()
        .and_then(|e| e.get("Encrypt"))
        .and_then(Value::as_str)
        .ok_or_else(refused)?;
    let given = q.msg_signature.as_deref().unwrap_or_default();
    if !signature_matches(given, &[token, &q.timestamp, &q.nonce, encrypted]) {
        return Err(refused());
    }
    let (message, appid) = key
        .decrypt(encrypted)
        .map_err(|e| bad_body(&e.to_string()))?;
    if appid != kf.appid {
        return Err(ErrorCode::PushSignatureInvalid.with("推送不属于本小程序"));
    }
    Ok(message.into_bytes())
}

/// A message from a user: answered once however often WeChat pushes it.
async fn receive(
    kf: web::Data<Kf>,
    q: web::Query<Signed>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let message = open(&kf, &q, &body)?;
    fresh(&kf, &q.timestamp)?;
    let pushed: Pushed = serde_json::from_slice(&message).map_err(|_| bad_body("不是消息"))?;
    // WeChat's advice: a message by its MsgId, an event by sender and time.
    let dedupe = match &pushed.msg_id {
        Some(id) => format!("msg:{}", id.to_string().trim_matches('"')),
        None => format!(
            "event:{}:{}",
            pushed.from_user_name,
            pushed.create_time.to_string().trim_matches('"')
        ),
    };
    let other = format!("[{}]", pushed.msg_type);
    let question = match pushed.msg_type.as_str() {
        "event" => None,
        "text" => {
            let text = pushed.content.as_deref().unwrap_or_default();
            Some((text, text))
        }
        // Pictures, mini-program cards…: a person looks at them.
        _ => Some(("", other.as_str())),
    };
    kf.handle_once(&dedupe, &pushed.from_user_name, question)
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("success"))
}
