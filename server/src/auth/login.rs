//! `POST /api/v1/auth/login {code}`: the code from `wx.login()` is exchanged with WeChat, the
//! user upserted by openid, and our own token returned. WeChat's session key is neither
//! returned nor kept.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::address::ClientAddresses;
use super::{Authenticator, User, UserStore};
use crate::clock::Clock;
use crate::error::{ApiError, ErrorCode};
use crate::person::PhoneNumber;
use crate::store::KvStore;
use crate::wechat::token::AccessTokens;
use crate::wechat::{WeChatClient, WeChatError};

/// `[login]`: the mini-program login endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// Login attempts allowed per client address in one window.
    pub rate_limit: i64,
    pub rate_window_secs: u64,
    /// Replaced by `BANZHENG_TRUSTED_PROXIES`; start-up refuses it, naming the replacement.
    pub trust_forwarded_for: Option<bool>,
}

impl Default for LoginSettings {
    fn default() -> Self {
        LoginSettings {
            rate_limit: 60,
            rate_window_secs: 60,
            trust_forwarded_for: None,
        }
    }
}

/// The mini-program's users: logging in through WeChat (rate-limited per client address) and
/// reading who is logged in.
pub struct Users {
    wechat: WeChatClient,
    /// For the phone number (`phone.rs`).
    access_tokens: Arc<AccessTokens>,
    store: Arc<dyn UserStore>,
    /// Login attempts per client address and window.
    attempts: Arc<dyn KvStore>,
    settings: LoginSettings,
    clients: ClientAddresses,
    clock: Arc<Clock>,
}

impl Users {
    pub fn new(
        wechat: WeChatClient,
        access_tokens: Arc<AccessTokens>,
        store: Arc<dyn UserStore>,
        attempts: Arc<dyn KvStore>,
        settings: LoginSettings,
        clients: ClientAddresses,
        clock: Arc<Clock>,
    ) -> Self {
        Users {
            wechat,
            access_tokens,
            store,
            attempts,
            settings,
            clients,
            clock,
        }
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, ApiError> {
        Ok(self.store.user_by_id(id).await?)
    }

    pub fn wechat(&self) -> &WeChatClient {
        &self.wechat
    }

    pub fn access_tokens(&self) -> &AccessTokens {
        &self.access_tokens
    }

    /// Records the number WeChat verified for the user.
    pub async fn set_phone(&self, id: &str, phone: &PhoneNumber) -> Result<(), ApiError> {
        Ok(self.store.set_user_phone(id, phone.as_str()).await?)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    code: String,
}

/// A code WeChat gave the phone (`wx.login()`, `getPhoneNumber`) as the phone sent it:
/// printable ASCII of a sane length. Anything else is refused here rather than forwarded
/// to WeChat, with `message` saying how to get a new one.
pub(super) struct WeChatCode(pub String);

impl WeChatCode {
    pub fn parse(raw: String, message: &'static str) -> Result<Self, ApiError> {
        let ok = (1..=128).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(WeChatCode(raw))
        } else {
            Err(ApiError::invalid("code", message))
        }
    }
}

pub async fn login(
    req: HttpRequest,
    body: web::Json<LoginRequest>,
    users: web::Data<Users>,
    authenticator: web::Data<Authenticator>,
) -> Result<HttpResponse, ApiError> {
    limit_rate(&req, &users).await?;
    let code = WeChatCode::parse(
        body.into_inner().code,
        "登录凭证 code 无效，请重新调用 wx.login 获取",
    )?;
    let session = users
        .wechat
        .code_to_session(&code.0)
        .await
        .map_err(refusal)?;
    let user = users.store.upsert_user(&session, users.clock.now()).await?;
    let issued = authenticator.issue_user(&user.id)?;
    tracing::info!(user = %user.id, "user logged in");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "token": issued.token,
        "expires_in": issued.expires_in,
        "user": user,
    })))
}

/// Counts every attempt per client address, before WeChat is asked; over the limit is 429
/// until the window ends.
async fn limit_rate(req: &HttpRequest, users: &Users) -> Result<(), ApiError> {
    let limits = &users.settings;
    let client = users.clients.bucket(req);
    let window = Duration::from_secs(limits.rate_window_secs.max(1));
    let attempts = users
        .attempts
        .kv_incr(&format!("login-rate:{client}"), window)
        .await?;
    if attempts > limits.rate_limit {
        return Err(ApiError::RateLimited {
            retry_after_secs: window.as_secs(),
        });
    }
    Ok(())
}

/// WeChat's answers as the phone should see them (issue 4's table).
fn refusal(error: WeChatError) -> ApiError {
    match error.errcode() {
        Some(40029 | 40163) => ErrorCode::WechatCodeInvalid.into(),
        Some(45011) => ErrorCode::WechatRateLimited.into(),
        Some(40226) => ErrorCode::WechatUserBlocked.into(),
        _ => ApiError::WeChatUnavailable(error.to_string()),
    }
}
