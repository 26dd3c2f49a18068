//! The access token: `cgi-bin/stable_token` cached in the store for every instance, fetched
//! by one caller at a time under a store lock (the others use the still-valid old token or
//! wait for the new one). A token WeChat rejects is dropped only if the cache still holds
//! that very token, so a late failure never throws away a fresh token; `force_refresh`
//! (20 a day, 30 s apart) is used only when a normal fetch hands back the rejected token.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as Span, Utc};
use serde::{Deserialize, Serialize};

use super::{WeChatClient, WeChatError};
use crate::clock::Clock;
use crate::store::{KvStore, Lock, StoreError};

const CACHE_KEY: &str = "wechat:access-token";
const LOCK_NAME: &str = "wechat:access-token-refresh";
const FORCE_GAP_KEY: &str = "wechat:force-refresh-gap";
const FORCE_DAY_KEY: &str = "wechat:force-refresh-day";
const FORCE_PER_DAY: i64 = 20;
/// Waiting for another caller's refresh gives up after this long.
const WAIT_LIMIT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    WeChat(#[from] WeChatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no fresh access token: {0}")]
    Unavailable(&'static str),
}

/// A call to WeChat that needs the access token failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    WeChat(#[from] WeChatError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

#[derive(Serialize, Deserialize)]
struct Cached {
    token: String,
    /// Milliseconds, the server's clock.
    expires_at: i64,
    refresh_at: i64,
}

/// The cached entry as read, with its raw text for compare-and-delete.
struct Entry {
    raw: String,
    cached: Cached,
}

pub struct AccessTokens {
    wechat: WeChatClient,
    store: Arc<dyn KvStore>,
    clock: Arc<Clock>,
    margin: Span,
    lock_ttl: Duration,
}

impl AccessTokens {
    pub fn new(
        wechat: WeChatClient,
        store: Arc<dyn KvStore>,
        clock: Arc<Clock>,
        margin_secs: i64,
        request_timeout: Duration,
    ) -> Self {
        AccessTokens {
            wechat,
            store,
            clock,
            margin: Span::seconds(margin_secs),
            // Long enough for a normal and a forced fetch.
            lock_ttl: request_timeout * 3,
        }
    }

    async fn read(&self) -> Result<Option<Entry>, StoreError> {
        Ok(self.store.kv_get(CACHE_KEY).await?.and_then(|raw| {
            serde_json::from_str(&raw)
                .ok()
                .map(|cached| Entry { raw, cached })
        }))
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// A token to call WeChat with.
    pub async fn current(&self) -> Result<String, TokenError> {
        self.obtain(None).await
    }

    /// After WeChat rejected `failed` (40001/40014/42001): a different token, fetched once
    /// across all callers and instances.
    pub async fn replace(&self, failed: &str) -> Result<String, TokenError> {
        if let Some(entry) = self.read().await? {
            if entry.cached.token == failed {
                self.store.kv_delete_if_eq(CACHE_KEY, &entry.raw).await?;
            }
        }
        self.obtain(Some(failed)).await
    }

    /// Runs `call` with the current token, and once more with a new one if WeChat rejected
    /// the token (40001/40014/42001).
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, WeChatError>>,
    {
        let token = self.current().await?;
        match call(token.clone()).await {
            Err(e) if e.is_bad_token() => {
                let token = self.replace(&token).await?;
                Ok(call(token).await?)
            }
            other => Ok(other?),
        }
    }

    async fn obtain(&self, failed: Option<&str>) -> Result<String, TokenError> {
        let usable = |entry: &Option<Entry>, fresh: bool| {
            entry.as_ref().and_then(|e| {
                let now = self.now_ms();
                let limit = if fresh {
                    e.cached.refresh_at
                } else {
                    e.cached.expires_at
                };
                (now < limit && Some(e.cached.token.as_str()) != failed)
                    .then(|| e.cached.token.clone())
            })
        };
        let started = tokio::time::Instant::now();
        loop {
            let entry = self.read().await?;
            if let Some(token) = usable(&entry, true) {
                return Ok(token);
            }
            if let Some(lock) =
                Lock::try_acquire(self.store.as_ref(), LOCK_NAME, self.lock_ttl).await?
            {
                let result = self.refresh_locked(failed).await;
                lock.release().await?;
                return match result {
                    Ok(token) => Ok(token),
                    // WeChat could not give a new one: the old one still works until it expires.
                    Err(e) => usable(&self.read().await?, false).ok_or(e),
                };
            }
            // Someone else is refreshing: the old token serves meanwhile.
            if let Some(token) = usable(&entry, false) {
                return Ok(token);
            }
            if started.elapsed() > WAIT_LIMIT {
                return Err(TokenError::Unavailable(
                    "the refresh by another caller did not finish",
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Under the lock: check again (someone may have just refreshed), then fetch.
    async fn refresh_locked(&self, failed: Option<&str>) -> Result<String, TokenError> {
        if let Some(entry) = self.read().await? {
            if self.now_ms() < entry.cached.refresh_at
                && Some(entry.cached.token.as_str()) != failed
            {
                return Ok(entry.cached.token);
            }
        }
        let mut fetched = self.wechat.stable_token(false).await?;
        if Some(fetched.access_token.as_str()) == failed {
            if !self.may_force_refresh().await? {
                return Err(TokenError::Unavailable(
                    "WeChat keeps returning the rejected token and force_refresh is exhausted",
                ));
            }
            tracing::warn!("stable_token returned the rejected token again; forcing a refresh");
            fetched = self.wechat.stable_token(true).await?;
        }
        let now = self.clock.now();
        let expires_at = now + Span::seconds(fetched.expires_in.max(1));
        self.store(&fetched.access_token, now, expires_at).await?;
        Ok(fetched.access_token)
    }

    async fn store(
        &self,
        token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Refresh `margin` before expiry, but never sooner than 30 s from now (nor after
        // expiry): a token fetched late in its life must not make every caller refetch.
        let refresh_at = (expires_at - self.margin)
            .max(now + Span::seconds(30))
            .min(expires_at);
        let cached = Cached {
            token: token.to_owned(),
            expires_at: expires_at.timestamp_millis(),
            refresh_at: refresh_at.timestamp_millis(),
        };
        let ttl = (expires_at - now)
            .to_std()
            .unwrap_or(Duration::from_secs(1));
        let raw = serde_json::to_string(&cached).expect("serialisable");
        self.store.kv_set(CACHE_KEY, &raw, ttl).await
    }

    /// WeChat allows 20 forced refreshes a day, 30 s apart; beyond that it ignores them.
    async fn may_force_refresh(&self) -> Result<bool, StoreError> {
        if !self
            .store
            .kv_set_if_absent(FORCE_GAP_KEY, "1", Duration::from_secs(30))
            .await?
        {
            return Ok(false);
        }
        let today = self.clock.now_local().format("%Y%m%d");
        let used = self
            .store
            .kv_incr(
                &format!("{FORCE_DAY_KEY}:{today}"),
                Duration::from_secs(26 * 3600),
            )
            .await?;
        Ok(used <= FORCE_PER_DAY)
    }
}
