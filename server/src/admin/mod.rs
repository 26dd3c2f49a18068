//! Admin accounts — reviewers of the detection centre, staff at the halls and the
//! administrators of the accounts — their login, and the extractor that lets only the right
//! role in, only with a token of a live account, and tells handlers which halls staff work at.

mod accounts;
mod store;

pub use accounts::AccountChange;

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::LocalBoxFuture;
use prometheus::{IntCounter, Registry};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::audit::Actor;
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
    /// Hall staff: check-in, 受理, progress, receipt lookup; only at their own halls.
    Staff,
    /// 客服: reads and answers what residents write from the 客服 button.
    Support,
    /// Administers the accounts (disables them, revokes their tokens) and reads the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Staff => "staff",
            Role::Support => "support",
            Role::Admin => "admin",
        }
    }

    fn subject(self) -> Subject {
        match self {
            Role::Reviewer => Subject::Reviewer,
            Role::Staff => Subject::Staff,
            Role::Support => Subject::Support,
            Role::Admin => Subject::Admin,
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reviewer" => Ok(Role::Reviewer),
            "staff" => Ok(Role::Staff),
            "support" => Ok(Role::Support),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "role must be reviewer, staff, support or admin, not `{other}`"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admin {
    pub id: String,
    pub username: String,
    pub role: Role,
    /// Staff: the ids of the halls whose appointments they see and act on ([`ALL_HALLS`]:
    /// every hall). Other roles: none.
    pub halls: Vec<String>,
    /// A disabled account cannot log in, and its tokens no longer pass.
    pub disabled: bool,
    /// Tokens carry the epoch they were issued in; revoking them all moves it on.
    #[serde(skip)]
    pub token_epoch: u64,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// The hall list of staff who work at every hall (`server admin add --hall all`).
pub const ALL_HALLS: &str = "*";

#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Stores a new account; `None` when the username is taken.
    async fn insert_admin(&self, admin: &Admin) -> Result<Option<()>, StoreError>;
    async fn admin_by_username(&self, username: &str) -> Result<Option<Admin>, StoreError>;
    /// The account a token speaks for (checked on every admin request).
    async fn admin_by_id(&self, id: &str) -> Result<Option<Admin>, StoreError>;
    /// Disables, enables or revokes the tokens of an account, atomically; the account as it
    /// is now, or `None` when there is none by that name.
    async fn change_admin(
        &self,
        username: &str,
        change: AccountChange,
    ) -> Result<Option<Admin>, StoreError>;
    /// Replaces the halls a staff account works at (`server admin halls`); the account as it
    /// is now, or `None` when there is no staff account by that name.
    async fn set_admin_halls(
        &self,
        username: &str,
        halls: &[String],
    ) -> Result<Option<Admin>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum CreateAdminError {
    #[error("username must be 3-32 letters, digits, `_`, `-` or `.`")]
    BadUsername,
    #[error("password must be at least 10 characters")]
    WeakPassword,
    #[error("a hall id is 1-32 letters, digits, `_` or `-` (or `all`), not `{0}`")]
    BadHall(String),
    #[error("only staff accounts work at halls")]
    HallsForNonStaff,
    #[error("no staff account `{0}`")]
    NoStaff(String),
    #[error("username `{0}` is taken")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// Creates an account working at no hall (a reviewer's or an administrator's; staff without a
/// hall see no appointment).
pub async fn create_admin(
    store: &dyn AdminStore,
    username: &str,
    role: Role,
    password: &str,
) -> Result<Admin, CreateAdminError> {
    create_admin_at(store, username, role, &[], password).await
}

/// Creates an account (the `server admin add` command, and tests); staff work at `halls`
/// (hall ids, or [`ALL_HALLS`]).
pub async fn create_admin_at(
    store: &dyn AdminStore,
    username: &str,
    role: Role,
    halls: &[&str],
    password: &str,
) -> Result<Admin, CreateAdminError> {
    if !halls.is_empty() && role != Role::Staff {
        return Err(CreateAdminError::HallsForNonStaff);
    }
    let halls = hall_ids(halls)?;
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
        halls,
        disabled: false,
        token_epoch: 0,
        password_hash,
        created_at: Utc::now(),
    };
    store
        .insert_admin(&admin)
        .await?
        .ok_or_else(|| CreateAdminError::Taken(username.to_owned()))?;
    Ok(admin)
}

/// Hall ids as stored: `all` (or `*`) is [`ALL_HALLS`]; each id 1–32 letters, digits, `_`, `-`.
fn hall_ids(halls: &[&str]) -> Result<Vec<String>, CreateAdminError> {
    halls
        .iter()
        .map(|hall| match *hall {
            "all" | ALL_HALLS => Ok(ALL_HALLS.to_owned()),
            id if (1..=32).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) =>
            {
                Ok(id.to_owned())
            }
            other => Err(CreateAdminError::BadHall(other.to_owned())),
        })
        .collect()
}

/// Moves a staff account to `halls` (the `server admin halls` command): the account's tokens
/// see the new halls on their next request.
pub async fn set_halls(
    store: &dyn AdminStore,
    username: &str,
    halls: &[&str],
) -> Result<Admin, CreateAdminError> {
    let halls = hall_ids(halls)?;
    store
        .set_admin_halls(username, &halls)
        .await?
        .ok_or(CreateAdminError::NoStaff(username.to_owned()))
}

/// A logged-in admin of a live account; user tokens, tokens of a disabled account and tokens
/// revoked by moving the account's epoch on do not pass. Handlers then require the role they
/// need. The extractor leaves the [`Actor`] in the request's extensions: the audit log
/// records who acted from there.
#[derive(Debug, Clone)]
pub struct AdminUser {
    pub id: String,
    pub role: Role,
    /// The account's halls as stored now (a change applies to tokens already issued).
    pub halls: Vec<String>,
}

impl AdminUser {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role == role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(match role {
                Role::Reviewer => "需要审核员账号",
                Role::Staff => "需要窗口工作人员账号",
                Role::Support => "需要客服账号",
                Role::Admin => "需要管理员账号",
            }))
        }
    }

    /// Requires `role` and names the account as the actor recorded on what it changes
    /// (`staff:<id>`).
    pub fn actor_as(&self, role: Role) -> Result<String, ApiError> {
        self.require(role)?;
        Ok(format!("{}:{}", role.as_str(), self.id))
    }

    /// Whether the account works at `hall`: staff see and act only on their halls' records.
    pub fn works_at(&self, hall: &str) -> bool {
        self.halls.iter().any(|h| h == hall || h == ALL_HALLS)
    }
}

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let claims = authenticate(req);
        let admins = req.app_data::<web::Data<Admins>>().cloned();
        let req = req.clone();
        Box::pin(async move {
            let claims = claims.await?;
            let role = match claims.kind {
                Subject::Reviewer => Role::Reviewer,
                Subject::Staff => Role::Staff,
                Subject::Support => Role::Support,
                Subject::Admin => Role::Admin,
                Subject::User => return Err(ApiError::Unauthorized),
            };
            let admins =
                admins.ok_or_else(|| ApiError::Internal("admins are not registered".into()))?;
            let account = admins
                .store
                .admin_by_id(&claims.sub)
                .await?
                .filter(|a| !a.disabled && a.token_epoch == claims.epoch && a.role == role)
                .ok_or(ApiError::Unauthorized)?;
            let admin = AdminUser {
                id: account.id,
                role,
                halls: account.halls,
            };
            req.extensions_mut().insert(Actor {
                id: admin.id.clone(),
                role: role.as_str(),
            });
            Ok(admin)
        })
    }
}

/// `[admin_login]`: the limits of the staff login. Every attempt is counted, atomically in
/// the store, before its password is hashed, so parallel guesses cannot pass a limit together.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminLoginSettings {
    /// Attempts per username and client address in one window; then 429 until it ends.
    pub limit_per_account: i64,
    /// Attempts per client address, all usernames together, in one window; then 429.
    pub limit_per_address: i64,
    pub window_secs: u64,
    /// Attempts at one username from every address in one window after which each further
    /// attempt waits `slowdown_ms` before its password is checked: a slowdown, never a refusal,
    /// so a stranger cannot lock the account's owner out.
    pub slowdown_after: i64,
    pub slowdown_ms: u64,
    /// Password hashes (Argon2id: 19 MiB and a core for tens of milliseconds each) at once.
    pub max_concurrent_hashes: usize,
    /// How long a login waits for a free hash before `503 SERVER_BUSY`.
    pub hash_wait_ms: u64,
}

impl Default for AdminLoginSettings {
    fn default() -> Self {
        AdminLoginSettings {
            limit_per_account: 10,
            limit_per_address: 50,
            window_secs: 300,
            slowdown_after: 20,
            slowdown_ms: 2000,
            max_concurrent_hashes: 4,
            hash_wait_ms: 2000,
        }
    }
}

/// Longer usernames are refused before anything is counted or hashed (accounts have 3–32).
const MAX_USERNAME_BYTES: usize = 64;
/// Longer passwords are refused before they are hashed.
const MAX_PASSWORD_BYTES: usize = 1024;

/// The admin accounts and their login.
pub struct Admins {
    store: Arc<dyn AdminStore>,
    /// Login attempts per client address, per username and address, and per username.
    attempts: Arc<dyn KvStore>,
    settings: AdminLoginSettings,
    clients: ClientAddresses,
    /// Bounds the password hashes running at once.
    hashes: Arc<Semaphore>,
    /// Passwords checked against a hash: what a guesser gets out of the server.
    verifications: IntCounter,
}

impl Admins {
    pub fn new(
        store: Arc<dyn AdminStore>,
        attempts: Arc<dyn KvStore>,
        settings: AdminLoginSettings,
        clients: ClientAddresses,
        registry: &Registry,
    ) -> Self {
        let verifications = IntCounter::new(
            "banzheng_password_verifications_total",
            "Admin passwords checked against a hash (Argon2id), the unknown usernames' included",
        )
        .expect("static metric definition");
        registry
            .register(Box::new(verifications.clone()))
            .expect("registered once");
        Admins {
            store,
            attempts,
            hashes: Arc::new(Semaphore::new(settings.max_concurrent_hashes)),
            settings,
            clients,
            verifications,
        }
    }

    /// Counts the attempt in each of its buckets before anything else; refuses (429) past a
    /// limit, and says whether the username is being guessed at (then the attempt is slowed).
    async fn count_attempt(&self, username: &str, client: &str) -> Result<bool, ApiError> {
        let limits = &self.settings;
        let window = Duration::from_secs(limits.window_secs.max(1));
        let refused = || ApiError::RateLimited {
            retry_after_secs: window.as_secs(),
        };
        // An address spraying many usernames stops here without touching their buckets.
        let from_address = self
            .attempts
            .kv_incr(&format!("admin-login:address:{client}"), window)
            .await?;
        if from_address > limits.limit_per_address {
            return Err(refused());
        }
        if self
            .attempts
            .kv_incr(&account_key(username, client), window)
            .await?
            > limits.limit_per_account
        {
            return Err(refused());
        }
        let at_username = self
            .attempts
            .kv_incr(&format!("admin-login:username:{username}"), window)
            .await?;
        Ok(at_username > limits.slowdown_after)
    }

    /// Checks `password` against the account's hash (a dummy one for an unknown username, so
    /// timing does not tell which names exist), at most `max_concurrent_hashes` at once.
    async fn verify(&self, admin: Option<&Admin>, password: String) -> Result<bool, ApiError> {
        let wait = Duration::from_millis(self.settings.hash_wait_ms);
        let permit = tokio::time::timeout(wait, self.hashes.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::from(ErrorCode::ServerBusy))?
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let stored_hash = admin.map(|a| a.password_hash.clone());
        let verifications = self.verifications.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verifications.inc();
            let hash = stored_hash.unwrap_or_else(|| DUMMY_HASH.clone());
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
    }
}

/// The bucket of one username tried from one address (the address first: it has no `|`).
fn account_key(username: &str, client: &str) -> String {
    format!("admin-login:account:{client}|{username}")
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(endpoint("/api/v1/admin/login").post(login));
    accounts::routes(cfg);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

async fn login(
    req: HttpRequest,
    body: web::Json<LoginRequest>,
    admins: web::Data<Admins>,
    authenticator: web::Data<Authenticator>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    if username.len() > MAX_USERNAME_BYTES {
        return Err(ApiError::invalid(
            "username",
            format!("用户名过长（最多 {MAX_USERNAME_BYTES} 字节）"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid(
            "password",
            format!("密码过长（最多 {MAX_PASSWORD_BYTES} 字节）"),
        ));
    }
    let client = admins.clients.bucket(&req);
    if admins.count_attempt(&username, &client).await? {
        tokio::time::sleep(Duration::from_millis(admins.settings.slowdown_ms)).await;
    }
    let admin = admins.store.admin_by_username(&username).await?;
    let admin = match (admins.verify(admin.as_ref(), password).await?, admin) {
        (true, Some(admin)) => admin,
        _ => return Err(ErrorCode::BadCredentials.into()),
    };
    // Said only to whoever knows the password: a guesser learns nothing more from it.
    if admin.disabled {
        return Err(ErrorCode::AccountDisabled.into());
    }
    // The owner is in: their own address's failures no longer count against them.
    admins
        .attempts
        .kv_delete(&account_key(&username, &client))
        .await?;
    let issued = authenticator.issue_admin(&admin.id, admin.role.subject(), admin.token_epoch)?;
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
