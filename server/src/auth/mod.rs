//! Users (by WeChat openid), our own tokens, and the extractor that gives handlers the
//! authenticated user.

pub mod address;
pub mod consent;
pub mod login;
mod phone;
mod store;
pub mod token;

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use serde::Serialize;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::routing::endpoint;
use crate::store::{KvStore, StoreError};
pub use crate::wechat::WeChatSession;
use login::Users;
use token::{Claims, IssuedToken, Subject, Tokens};

/// A mini-program user, known to us by the openid WeChat gave for our app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    #[serde(skip)]
    pub openid: String,
    #[serde(skip)]
    pub unionid: Option<String>,
    /// The mobile number WeChat verified (`POST /api/v1/me/phone`), offered for bookings.
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The privacy notice the user last accepted (`consent`).
    #[serde(skip)]
    pub consent: Option<Consent>,
}

/// A user's acceptance of one version of the privacy notice, and when it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub version: String,
    pub accepted_at: DateTime<Utc>,
}

/// A user's id is derived from the openid, so both backends can find a user by either
/// without a second index that could disagree with the first.
pub fn user_id_for(openid: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("banzheng-user:{openid}").as_bytes());
    hex::encode(&digest[..16])
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user on first login, else refreshes the unionid when given. WeChat's
    /// session key is not stored: nothing here uses it, and it decrypts the user's data.
    async fn upsert_user(
        &self,
        session: &WeChatSession,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError>;
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// Records the number WeChat verified for the user.
    async fn set_user_phone(&self, id: &str, phone: &str) -> Result<(), StoreError>;
    /// Deletes the user's record (openid, unionid, phone); false when there was none. A
    /// later login creates it afresh, under the same id.
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError>;
    /// Records that the user accepted a version of the privacy notice (replacing the last).
    async fn record_consent(&self, id: &str, consent: &Consent) -> Result<(), StoreError>;
}

/// The `Authorization: Bearer …` token of a request.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Issues, verifies and revokes our tokens (users' and admins'): the one capability the
/// `AuthUser` and `AdminUser` extractors look up.
pub struct Authenticator {
    tokens: Tokens,
    /// Revoked token ids, until the tokens would have expired anyway.
    revoked: Arc<dyn KvStore>,
    clock: Arc<Clock>,
}

impl Authenticator {
    pub fn new(tokens: Tokens, revoked: Arc<dyn KvStore>, clock: Arc<Clock>) -> Self {
        Authenticator {
            tokens,
            revoked,
            clock,
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        self.tokens
            .verify(token, self.clock.now(), self.revoked.as_ref())
            .await
    }

    /// Refuses claims of a revoked token (what [`Self::verify`] checks after the signature).
    pub async fn check_not_revoked(&self, claims: &Claims) -> Result<(), ApiError> {
        Tokens::check_not_revoked(claims, self.revoked.as_ref()).await
    }

    pub async fn revoke(&self, claims: &Claims) -> Result<(), ApiError> {
        self.tokens
            .revoke(claims, self.clock.now(), self.revoked.as_ref())
            .await
    }

    /// Every token of the user issued so far fails from now on (erasure).
    pub async fn revoke_user(&self, user_id: &str) -> Result<(), ApiError> {
        self.tokens
            .revoke_user(user_id, self.clock.now(), self.revoked.as_ref())
            .await
    }

    pub fn issue_user(&self, user_id: &str) -> Result<IssuedToken, ApiError> {
        self.tokens.issue_user(user_id, self.clock.now())
    }

    pub fn issue_admin(
        &self,
        admin_id: &str,
        kind: Subject,
        epoch: u64,
    ) -> Result<IssuedToken, ApiError> {
        self.tokens
            .issue_admin(admin_id, kind, epoch, self.clock.now())
    }
}

/// Verifies the request's token and returns its claims; any failure is 401.
pub fn authenticate(req: &HttpRequest) -> LocalBoxFuture<'static, Result<Claims, ApiError>> {
    let authenticator = req.app_data::<web::Data<Authenticator>>().cloned();
    let token = bearer_token(req);
    Box::pin(async move {
        let authenticator = authenticator
            .ok_or_else(|| ApiError::Internal("the authenticator is not registered".into()))?;
        let token = token.ok_or(ApiError::Unauthorized)?;
        authenticator.verify(&token).await
    })
}

/// A mini-program user's token whose signature and expiry hold, read from no store: whether it
/// was revoked, and whether the user accepted the privacy notice, are the handler's to check
/// (booking's plan checks both with the booking, in the same step). Admin tokens do not pass.
#[derive(Debug, Clone)]
pub struct SignedUser {
    pub id: String,
    pub claims: Claims,
}

impl FromRequest for SignedUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let signed = || {
            let authenticator = req
                .app_data::<web::Data<Authenticator>>()
                .ok_or_else(|| ApiError::Internal("the authenticator is not registered".into()))?;
            let token = bearer_token(req).ok_or(ApiError::Unauthorized)?;
            let claims = authenticator
                .tokens
                .verify_signed(&token, authenticator.clock.now())?;
            if claims.kind != Subject::User {
                return Err(ApiError::Unauthorized);
            }
            Ok(SignedUser {
                id: claims.sub.clone(),
                claims,
            })
        };
        ready(signed())
    }
}

/// The logged-in mini-program user; admin tokens do not pass.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub claims: Claims,
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let claims = authenticate(req);
        Box::pin(async move {
            let claims = claims.await?;
            if claims.kind != Subject::User {
                return Err(ApiError::Unauthorized);
            }
            Ok(AuthUser {
                id: claims.sub.clone(),
                claims,
            })
        })
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/api/v1/auth/login").post(login::login))
        .service(endpoint("/api/v1/me/consent").post(consent::accept))
        .service(endpoint("/api/v1/me/phone").post(phone::bind))
        .service(endpoint("/api/v1/auth/logout").post(logout));
}

/// `GET /api/v1/me` (registered by the composition root, with erasure's `DELETE`).
pub async fn me(
    user: AuthUser,
    users: web::Data<Users>,
    privacy: web::Data<consent::Privacy>,
) -> Result<HttpResponse, ApiError> {
    let user = users.user(&user.id).await?.ok_or(ApiError::Unauthorized)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "user": user,
        "privacy": privacy.status(&user),
    })))
}

/// Revokes the token the request carries (user or admin).
async fn logout(
    req: HttpRequest,
    authenticator: web::Data<Authenticator>,
) -> Result<HttpResponse, ApiError> {
    let claims = authenticate(&req).await?;
    authenticator.revoke(&claims).await?;
    Ok(HttpResponse::NoContent().finish())
}
