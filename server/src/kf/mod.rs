//! 客服 (customer service): what residents write from the mini-program's 客服 button reaches
//! us through WeChat's message push (`GET`/`POST /api/v1/wechat/push`, mounted only when
//! `wechat.push_token` is set), and is answered through `cgi-bin/message/custom/send` via
//! the notification outbox (retries, exactly once): an automatic answer to the common
//! questions, else one saying that a person will reply and when. Conversations are kept
//! (`store`) for the staff inbox (role `support`, `inbox`) for `kf.retention_days`.

mod answers;
mod inbox;
mod push;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::clock::Clock;
use crate::notify::Notification;
use crate::store::{KvStore, StoreError};
use crate::wechat::push::PushKey;
pub use store::ConversationStore;
use store::{Author, Exchange, KfMessage};

/// A message WeChat pushed is remembered this long, so its retries are answered without
/// handling it again (WeChat retries for seconds, not days).
const HANDLED_TTL: Duration = Duration::from_secs(24 * 3600);

/// WeChat takes 客服 messages to a user only this long after the user last wrote.
pub const REPLY_WINDOW: TimeDelta = TimeDelta::hours(48);

/// `[wechat]` settings of the message push (`BANZHENG_WECHAT__PUSH_TOKEN`, …), as entered in
/// the mini-program's admin console (开发管理 → 消息推送).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    /// The Token: unset, the push endpoint does not exist.
    pub push_token: Option<SecretString>,
    /// The EncodingAESKey (43 characters): set, messages are taken only in 安全模式.
    pub push_aes_key: Option<SecretString>,
}

/// `[kf]`: how long conversations are kept (`BANZHENG_KF__RETENTION_DAYS`, …).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KfSettings {
    /// Conversations whose last message is older than this many days are deleted.
    pub retention_days: u32,
    /// How often the retention sweep runs.
    pub sweep_interval_secs: u64,
}

impl Default for KfSettings {
    fn default() -> Self {
        KfSettings {
            retention_days: 180,
            sweep_interval_secs: 3600,
        }
    }
}

/// The conversations: what users wrote and every reply, for the staff inbox.
pub struct Conversations {
    store: Arc<dyn ConversationStore>,
    settings: KfSettings,
    clock: Arc<Clock>,
}

impl Conversations {
    pub fn new(settings: KfSettings, store: Arc<dyn ConversationStore>, clock: Arc<Clock>) -> Self {
        Conversations {
            store,
            settings,
            clock,
        }
    }

    /// Deletes the conversations past retention; how many.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let keep = TimeDelta::days(i64::from(self.settings.retention_days));
        let deleted = self
            .store
            .delete_conversations_before(self.clock.now() - keep)
            .await?;
        if deleted > 0 {
            tracing::info!(deleted, "客服 conversations past retention deleted");
        }
        Ok(deleted)
    }

    /// Whether WeChat still takes replies to a user who last wrote at `last_user_at`.
    fn window_open(&self, last_user_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        now - last_user_at <= REPLY_WINDOW
    }
}

/// Runs the retention sweep every `kf.sweep_interval_secs` for the life of the server.
pub fn spawn_retention_sweeper(conversations: web::Data<Conversations>) {
    let period = Duration::from_secs(conversations.settings.sweep_interval_secs);
    crate::clock::repeat(period, "客服 retention sweep", move || {
        let conversations = conversations.clone();
        async move { conversations.sweep().await }
    });
}

/// The conversation of the user `openid`: one per user, its id derived from the openid (so
/// every instance finds the same one without asking the store first).
fn conversation_id(openid: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("kf-conversation:{openid}").as_bytes());
    hex::encode(&digest[..16])
}

/// Deletes the conversation of the user `openid` (erasure on request); false when none.
pub async fn erase_conversation(
    store: &dyn ConversationStore,
    openid: &str,
) -> Result<bool, StoreError> {
    store.delete_conversation(&conversation_id(openid)).await
}

/// The push endpoint's configuration and what it writes to.
pub struct Kf {
    token: SecretString,
    key: Option<PushKey>,
    /// Our app id: a 安全模式 message must name it.
    appid: String,
    kv: Arc<dyn KvStore>,
    conversations: Arc<Conversations>,
    clock: Arc<Clock>,
}

impl Kf {
    /// `None` when no push token is configured (the endpoint is then not mounted).
    pub fn from_settings(
        settings: &PushSettings,
        appid: &str,
        kv: Arc<dyn KvStore>,
        conversations: Arc<Conversations>,
        clock: Arc<Clock>,
    ) -> anyhow::Result<Option<Kf>> {
        let Some(token) = settings.push_token.clone() else {
            if settings.push_aes_key.is_some() {
                anyhow::bail!("wechat.push_aes_key is set but wechat.push_token is not");
            }
            return Ok(None);
        };
        let token_text = token.expose_secret();
        if !(3..=32).contains(&token_text.len())
            || !token_text.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            anyhow::bail!("wechat.push_token must be 3 to 32 letters and digits, as the admin console requires");
        }
        let key = settings
            .push_aes_key
            .as_ref()
            .map(|k| PushKey::parse(k.expose_secret()))
            .transpose()
            .map_err(|e| anyhow::anyhow!("wechat.push_aes_key: {e}"))?;
        Ok(Some(Kf {
            token,
            key,
            appid: appid.to_owned(),
            kv,
            conversations,
            clock,
        }))
    }

    fn token_text(&self) -> &str {
        self.token.expose_secret()
    }

    /// The token and key the simulator signs and encrypts with, as WeChat holds them.
    pub fn push_secrets(&self) -> (String, Option<PushKey>) {
        (self.token.expose_secret().to_owned(), self.key.clone())
    }

    /// Handles a message once: false when it was handled before (`dedupe` seen in the last
    /// day). The message, the answer and the answer's outbox entry (under a key of its own,
    /// so even a retry that raced past the first check cannot answer twice) are written at
    /// once. `question` is what the user wrote, `shown` how the inbox shows it.
    async fn handle_once(
        &self,
        dedupe: &str,
        openid: &str,
        question: Option<(&str, &str)>,
    ) -> Result<bool, StoreError> {
        let seen = format!("kf:push:{dedupe}");
        if !self.kv.kv_set_if_absent(&seen, "1", HANDLED_TTL).await? {
            return Ok(false);
        }
        let Some((question, shown)) = question else {
            return Ok(true);
        };
        let (topic, text) = answers::answer(question);
        let now = self.clock.now();
        let reply = Notification::customer_service(format!("kf:auto:{dedupe}"), openid, &text, now);
        let message = |author, text: &str| KfMessage {
            id: uuid::Uuid::new_v4().simple().to_string(),
            at: now,
            author,
            staff_id: None,
            text: text.to_owned(),
        };
        let exchange = Exchange {
            conversation_id: conversation_id(openid),
            openid: openid.to_owned(),
            messages: vec![message(Author::User, shown), message(Author::Auto, &text)],
            needs_person: topic == answers::PERSON,
            reply: Some(reply),
        };
        if let Err(e) = self.conversations.store.record_exchange(&exchange).await {
            // Not handled after all: WeChat's retry (or the next one) tries again.
            let _ = self.kv.kv_delete(&seen).await;
            return Err(e);
        }
        tracing::info!(topic, user = %mask(openid), "客服 message answered automatically");
        Ok(true)
    }
}

/// An openid as logs show it: enough to tell users apart, not to address one.
fn mask(openid: &str) -> String {
    let head: String = openid.chars().take(4).collect();
    format!("{head}***")
}

/// The staff inbox, and the push endpoint when configured.
pub fn routes(
    cfg: &mut web::ServiceConfig,
    conversations: web::Data<Conversations>,
    kf: Option<web::Data<Kf>>,
) {
    inbox::routes(cfg, conversations);
    if let Some(kf) = kf {
        push::routes(cfg, kf);
    }
}

/// Development only: `POST /__sim/kf/retention/run` runs one retention sweep at once.
pub fn dev_routes(cfg: &mut web::ServiceConfig) {
    inbox::dev_routes(cfg);
}
