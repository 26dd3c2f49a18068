//! Consent first (PIPL 个人信息保护法 art. 29: separate consent before sensitive personal
//! information is processed). `GET /api/v1/me` says which version of the privacy notice is
//! current and whether the user accepted it; `POST /api/v1/me/consent {version}` records the
//! acceptance with its time. A request that would store an ID number or a face photo takes
//! a [`ConsentedUser`] instead of an `AuthUser`, so it is refused with `403 CONSENT_REQUIRED`
//! before anything of it is read or written. Booking checks the consent in its own store step
//! instead (one round trip): nothing of the request is read from or written to the store
//! before it. A new notice version asks everyone again.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use super::{AuthUser, Consent, User, UserStore};
use crate::clock::Clock;
use crate::error::{ApiError, ErrorCode};

/// `[privacy]` (`BANZHENG_PRIVACY__NOTICE_VERSION`): the privacy notice users accept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacySettings {
    /// The current notice's version, as the mini-program and web client show it. Changing
    /// it makes every user accept the new notice before storing anything sensitive again.
    pub notice_version: String,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        PrivacySettings {
            notice_version: "2026-12-01".into(),
        }
    }
}

impl PrivacySettings {
    /// 1 to 32 printable ASCII characters: a version the contract can carry and a user
    /// record can keep.
    pub fn validate(&self) -> Result<(), String> {
        let version = &self.notice_version;
        let ok = (1..=32).contains(&version.len()) && version.bytes().all(|b| b.is_ascii_graphic());
        ok.then_some(()).ok_or_else(|| {
            format!(
                "BANZHENG_PRIVACY__NOTICE_VERSION (privacy.notice_version): `{version}` is not \
                 1 to 32 printable ASCII characters without spaces"
            )
        })
    }
}

/// What `GET /api/v1/me` says about the notice.
#[derive(Debug, Serialize)]
pub struct PrivacyStatus {
    pub version: String,
    pub accepted: bool,
    /// When the current version was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The privacy notice and users' acceptance of it.
pub struct Privacy {
    settings: PrivacySettings,
    store: Arc<dyn UserStore>,
    clock: Arc<Clock>,
}

impl Privacy {
    pub fn new(settings: PrivacySettings, store: Arc<dyn UserStore>, clock: Arc<Clock>) -> Self {
        Privacy {
            settings,
            store,
            clock,
        }
    }

    /// The consent `user` gave to the current notice, if they gave it.
    fn current<'a>(&self, user: &'a User) -> Option<&'a Consent> {
        user.consent
            .as_ref()
            .filter(|c| c.version == self.settings.notice_version)
    }

    pub fn status(&self, user: &User) -> PrivacyStatus {
        let current = self.current(user);
        PrivacyStatus {
            version: self.settings.notice_version.clone(),
            accepted: current.is_some(),
            accepted_at: current.map(|c| c.accepted_at),
        }
    }

    /// Records `user_id`'s acceptance of `version`; only the current version can be accepted.
    async fn accept(&self, user_id: &str, version: &str) -> Result<Consent, ApiError> {
        if version != self.settings.notice_version {
            return Err(ErrorCode::PrivacyVersionOutdated.with(format!(
                "隐私保护指引已更新为 {} 版，请阅读最新版本后再同意",
                self.settings.notice_version
            )));
        }
        let consent = Consent {
            version: version.to_owned(),
            accepted_at: self.clock.now(),
        };
        self.store.record_consent(user_id, &consent).await?;
        Ok(consent)
    }

    /// The notice version users accept now.
    pub fn notice_version(&self) -> &str {
        &self.settings.notice_version
    }

    /// `Ok` when `user_id` accepted the current notice, else `CONSENT_REQUIRED`.
    pub async fn require(&self, user_id: &str) -> Result<(), ApiError> {
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        match self.current(&user) {
            Some(_) => Ok(()),
            None => Err(ErrorCode::ConsentRequired.into()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    version: String,
}

pub async fn accept(
    user: AuthUser,
    body: web::Json<ConsentRequest>,
    privacy: web::Data<Privacy>,
) -> Result<HttpResponse, ApiError> {
    let consent = privacy.accept(&user.id, &body.version).await?;
    tracing::info!(user = %user.id, version = %consent.version, "privacy notice accepted");
    Ok(HttpResponse::Ok().json(PrivacyStatus {
        version: consent.version,
        accepted: true,
        accepted_at: Some(consent.accepted_at),
    }))
}

/// A logged-in user who accepted the current privacy notice: what a handler that stores an
/// ID number or a face photo asks for. Refused `403 CONSENT_REQUIRED` otherwise, before the
/// handler reads its body.
#[derive(Debug, Clone)]
pub struct ConsentedUser {
    pub id: String,
}

impl FromRequest for ConsentedUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = AuthUser::from_request(req, payload);
        let privacy = req.app_data::<web::Data<Privacy>>().cloned();
        Box::pin(async move {
            let user = user.await?;
            let privacy = privacy
                .ok_or_else(|| ApiError::Internal("the privacy notice is not registered".into()))?;
            privacy.require(&user.id).await?;
            Ok(ConsentedUser { id: user.id })
        })
    }
}
