//! Users (by WeChat openid), login, and our own tokens.

mod store;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::StoreError;

/// A mini-program user, known to us by the openid WeChat gave for our app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    #[serde(skip)]
    pub openid: String,
    #[serde(skip)]
    pub unionid: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What `jscode2session` told us about the user who just logged in.
pub struct WeChatSession {
    pub openid: String,
    pub unionid: Option<String>,
    /// Kept server-side only: it decrypts the user's data and never leaves the server.
    pub session_key: String,
}

impl std::fmt::Debug for WeChatSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeChatSession")
            .field("openid", &self.openid)
            .field("unionid", &self.unionid)
            .field("session_key", &"<redacted>")
            .finish()
    }
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
    /// Creates the user on first login, else refreshes the session key (and unionid when given).
    async fn upsert_user(
        &self,
        session: &WeChatSession,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError>;
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;
}
