//! Our own tokens: HS256 JWTs for users (after WeChat login) and admins (reviewers, staff).
//! Only HS256 with our key is accepted, so `alg: none` and RS/HS confusion fail; a token can
//! be revoked by its `jti` until it would have expired anyway.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::store::KvStore;

const USER_TOKEN_TTL: Duration = Duration::from_secs(2 * 3600);
const ADMIN_TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);

/// Who a token speaks for. Users and admins share the key but never each other's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    User,
    Reviewer,
    Staff,
    Support,
    /// Account administration: disables accounts, revokes their tokens, reads the audit log.
    Admin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub kind: Subject,
    /// Admin tokens: the account's token epoch when issued; revoking all of an account's
    /// tokens moves the epoch on, and a token of an older epoch no longer passes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
    /// When it was issued, in ms: `iat` has seconds, and a user who erased their data may log
    /// in again within the same second, with a token that must pass where the old ones fail.
    #[serde(default)]
    pub iat_ms: i64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Serialize)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Tokens {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        validation.leeway = 0;
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The configured secret, or in development mode one created once in the data directory.
    pub fn configured(secret: Option<&SecretString>, data_dir: &Path) -> anyhow::Result<Self> {
        let secret = match secret {
            Some(secret) => secret.clone(),
            None => development_secret(data_dir, "jwt-secret")?,
        };
        Ok(Self::new(secret.expose_secret().as_bytes()))
    }

    pub fn issue_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<IssuedToken, ApiError> {
        self.issue(user_id, Subject::User, 0, USER_TOKEN_TTL, now)
    }

    /// An admin token of the account's current token `epoch`.
    pub fn issue_admin(
        &self,
        admin_id: &str,
        kind: Subject,
        epoch: u64,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, ApiError> {
        self.issue(admin_id, kind, epoch, ADMIN_TOKEN_TTL, now)
    }

    fn issue(
        &self,
        sub: &str,
        kind: Subject,
        epoch: u64,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, ApiError> {
        let claims = Claims {
            sub: sub.to_owned(),
            iat: now.timestamp(),
            exp: now.timestamp() + ttl.as_secs() as i64,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            kind,
            epoch,
            iat_ms: now.timestamp_millis(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("cannot sign token: {e}")))?;
        Ok(IssuedToken {
            token,
            expires_in: ttl.as_secs(),
        })
    }

    /// Checks signature, algorithm and expiry (against our clock) and that it was not revoked.
    pub async fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
        store: &dyn KvStore,
    ) -> Result<Claims, ApiError> {
        let claims = self.verify_signed(token, now)?;
        Self::check_not_revoked(&claims, store).await?;
        Ok(claims)
    }

    /// Checks signature, algorithm and expiry (against our clock) only: whether the token was
    /// revoked is the caller's to check ([`Self::check_not_revoked`], or a store's guard).
    pub fn verify_signed(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, ApiError> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::Unauthorized)?
            .claims;
        if claims.exp <= now.timestamp() {
            return Err(ApiError::Unauthorized);
        }
        Ok(claims)
    }

    /// Refuses a token revoked by itself, or with every token of its user issued until then.
    pub async fn check_not_revoked(claims: &Claims, store: &dyn KvStore) -> Result<(), ApiError> {
        // Both reads at once: every user request waits for them (one round trip, not two).
        let user_revoked = async {
            match claims.kind {
                Subject::User => store.kv_get(&user_revoked_key(&claims.sub)).await,
                _ => Ok(None),
            }
        };
        let token_key = revoked_key(&claims.jti);
        let (token_revoked, revoked_until) =
            tokio::try_join!(store.kv_get(&token_key), user_revoked)?;
        if is_revoked(
            token_revoked.as_deref(),
            revoked_until.as_deref(),
            claims.iat_ms,
        ) {
            return Err(ApiError::Unauthorized);
        }
        Ok(())
    }

    /// Revokes every token of the user issued until `now`: kept as long as such a token
    /// could still be valid.
    pub async fn revoke_user(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
        store: &dyn KvStore,
    ) -> Result<(), ApiError> {
        let until = now.timestamp_millis().to_string();
        store
            .kv_set(&user_revoked_key(user_id), &until, USER_TOKEN_TTL)
            .await?;
        Ok(())
    }

    /// Revokes a token until it would have expired anyway.
    pub async fn revoke(
        &self,
        claims: &Claims,
        now: DateTime<Utc>,
        store: &dyn KvStore,
    ) -> Result<(), ApiError> {
        let remaining = (claims.exp - now.timestamp()).max(1) as u64;
        store
            .kv_set(
                &revoked_key(&claims.jti),
                "1",
                Duration::from_secs(remaining),
            )
            .await?;
        Ok(())
    }
}

/// Whether a token issued at `issued_at_ms` is revoked, given its entry under [`revoked_key`]
/// and its user's under [`user_revoked_key`].
pub fn is_revoked(token_entry: Option<&str>, user_entry: Option<&str>, issued_at_ms: i64) -> bool {
    let issued_before_revocation =
        user_entry.is_some_and(|ms| ms.parse().is_ok_and(|ms: i64| issued_at_ms <= ms));
    token_entry.is_some() || issued_before_revocation
}

/// The key-value entry that revokes the token `jti`, while it is there.
pub fn revoked_key(jti: &str) -> String {
    format!("revoked-token:{jti}")
}

/// The key-value entry that revokes every token of `user_id` issued by its value (Unix ms).
pub fn user_revoked_key(user_id: &str) -> String {
    format!("revoked-user-tokens:{user_id}")
}

/// 32 random bytes kept in `data_dir/<name>`, so development tokens (and hashes keyed by it)
/// survive restarts.
pub(crate) fn development_secret(data_dir: &Path, name: &str) -> anyhow::Result<SecretString> {
    use rand::RngCore;
    let path = data_dir.join(name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if existing.trim().len() >= 32 {
            return Ok(SecretString::from(existing.trim().to_owned()));
        }
    }
    crate::store::private_dir(data_dir)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    write_private(&path, &secret)?;
    Ok(SecretString::from(secret))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn tokens() -> Tokens {
        Tokens::new(b"0123456789abcdef0123456789abcdef")
    }

    fn decode_only(t: &Tokens, token: &str) -> bool {
        decode::<Claims>(token, &t.decoding, &t.validation).is_ok()
    }

    #[test]
    fn issued_token_verifies_and_carries_claims() {
        let t = tokens();
        let issued = t.issue_user("u1", Utc::now()).unwrap();
        assert_eq!(issued.expires_in, 7200);
        let claims = decode::<Claims>(&issued.token, &t.decoding, &t.validation)
            .unwrap()
            .claims;
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.kind, Subject::User);
        assert_eq!(claims.exp - claims.iat, 7200);
        assert!(!claims.jti.is_empty());
    }

    #[test]
    fn other_key_tampering_and_alg_none_are_refused() {
        let t = tokens();
        let issued = t.issue_user("u1", Utc::now()).unwrap();
        let other = Tokens::new(b"another-secret-another-secret-00");
        assert!(!decode_only(&other, &issued.token), "other key");

        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = issued.token.split('.').collect();
        let payload = String::from_utf8(engine.decode(parts[1]).unwrap()).unwrap();
        let forged = engine.encode(payload.replace("\"u1\"", "\"u2\""));
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert!(!decode_only(&t, &tampered), "tampered payload");

        let none = engine.encode(r#"{"alg":"none","typ":"JWT"}"#);
        assert!(
            !decode_only(&t, &format!("{none}.{}.", parts[1])),
            "alg none"
        );
        let rs = engine.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
        assert!(
            !decode_only(&t, &format!("{rs}.{}.{}", parts[1], parts[2])),
            "alg confusion"
        );
    }

    #[test]
    fn development_secret_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = development_secret(dir.path(), "jwt-secret").unwrap();
        let again = development_secret(dir.path(), "jwt-secret").unwrap();
        assert_eq!(first.expose_secret(), again.expose_secret());
        assert_eq!(first.expose_secret().len(), 64);
    }
}
