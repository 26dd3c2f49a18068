//! Admin accounts — reviewers of the detection centre and staff at the halls — their login,
//! and the extractor that lets only the right role in.

mod store;

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use crate::auth::address::ClientAddresses;
use crate::auth::token::Subject;
use crate::auth::{authenticate, Authenticator};
use crate::error::{ApiError, ErrorCode};
use crate::routing::endpoint;
use crate::store::{KvStore, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Detection centre: works the photo review queue.
    Reviewer,
    /// Hall staff: check-in, 受理, progress, receipt lookup.
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Staff => "staff",
        }
    }

    fn subject(self) -> Subject {
        match self {
            Role::Reviewer => Subject::Reviewer,
            Role::Staff => Subject::Staff,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reviewer" => Ok(Role::Reviewer),
            "staff" => Ok(Role::Staff),
            other => Err(format!("role must be reviewer or staff, not `{other}`")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admin {
    pub id: String,
    pub username: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Stores a new account; `None` when the username is taken.
    async fn insert_admin(&self, admin: &Admin) -> Result<Option<()>, StoreError>;
    async fn admin_by_username(&self, username: &str) -> Result<Option<Admin>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum CreateAdminError {
    #[error("username must be 3-32 letters, digits, `_`, `-` or `.`")]
    BadUsername,
    #[error("password must be at least 10 characters")]
    WeakPassword,
    #[error("username `{0}` is taken")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// Creates an account (the `server admin add` command, and tests).
pub async fn create_admin(
    store: &dyn AdminStore,
    username: &str,
    role: Role,
    password: &str,
) -> Result<Admin, CreateAdminError> {
    let valid_name = (3..=32).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !valid_name {
        return Err(CreateAdminError::BadUsername);
    }
    if password.chars().count() < 10 {
        return Err(CreateAdminError::WeakPassword);
    }
    let password = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| CreateAdminError::Hash(e.to_string()))?
    .map_err(|e| CreateAdminError::Hash(e.to_string()))?;
    let admin = Admin {
        id: uuid::Uuid::new_v4().simple().to_string(),
        username: username.to_owned(),
        role,
        password_hash,
        created_at: Utc::now(),
    };
    store
        .insert_admin(&admin)
        .await?
        .ok_or_else(|| CreateAdminError::Taken(username.to_owned()))?;
    Ok(admin)
}

/// A logged-in admin; user tokens do not pass. Handlers then require the role they need.
#[derive(Debug, Clone)]
pub struct AdminUser {
    pub id: String,
    pub role: Role,
}

impl AdminUser {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role == role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(match role {
                Role::Reviewer => "需要审核员账号",
                Role::Staff => "需要窗口工作人员账号",
            }))
        }
    }
}

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let claims = authenticate(req);
        Box::pin(async move {
            let claims = claims.await?;
            let role = match claims.kind {
                Subject::Reviewer => Role::Reviewer,
                Subject::Staff => Role::Staff,
                Subject::User => return Err(ApiError::Unauthorized),
            };
            Ok(AdminUser {
                id: claims.sub,
                role,
            })
        })
    }
}

/// The admin accounts and their login, rate-limited per username and client address.
pub struct Admins {
    store: Arc<dyn AdminStore>,
    /// Failed logins per username and client address.
    attempts: Arc<dyn KvStore>,
    clients: ClientAddresses,
}

impl Admins {
    pub fn new(
        store: Arc<dyn AdminStore>,
        attempts: Arc<dyn KvStore>,
        clients: ClientAddresses,
    ) -> Self {
        Admins {
            store,
            attempts,
            clients,
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/api/v1/admin/login").post(login));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

/// Failed attempts allowed per username and client address in one window.
const LOGIN_ATTEMPTS: i64 = 10;
const LOGIN_WINDOW: Duration = Duration::from_secs(300);

async fn login(
    req: HttpRequest,
    body: web::Json<LoginRequest>,
    admins: web::Data<Admins>,
    authenticator: web::Data<Authenticator>,
) -> Result<HttpResponse, ApiError> {
    let client = admins.clients.bucket(&req);
    let attempts_key = format!("admin-login:{}:{client}", body.username);
    if admins
        .attempts
        .kv_get(&attempts_key)
        .await?
        .and_then(|n| n.parse::<i64>().ok())
        >= Some(LOGIN_ATTEMPTS)
    {
        return Err(ApiError::RateLimited {
            retry_after_secs: LOGIN_WINDOW.as_secs(),
        });
    }
    let admin = admins.store.admin_by_username(&body.username).await?;
    let password = body.password.clone();
    let stored_hash = admin.as_ref().map(|a| a.password_hash.clone());
    // Verify even for an unknown username, so timing does not tell which names exist.
    let verified = tokio::task::spawn_blocking(move || {
        let hash = stored_hash.unwrap_or_else(|| DUMMY_HASH.clone());
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let admin = match (admin, verified) {
        (Some(admin), true) => admin,
        _ => {
            admins.attempts.kv_incr(&attempts_key, LOGIN_WINDOW).await?;
            return Err(ErrorCode::BadCredentials.into());
        }
    };
    let issued = authenticator.issue_admin(&admin.id, admin.role.subject())?;
    tracing::info!(admin = %admin.username, role = admin.role.as_str(), "admin logged in");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "token": issued.token,
        "expires_in": issued.expires_in,
        "admin": admin,
    })))
}

/// The hash of a random password nobody knows, with the same parameters as real ones.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let password = uuid::Uuid::new_v4().to_string();
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .unwrap_or_default()
});
