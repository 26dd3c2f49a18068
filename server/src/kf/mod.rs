//! 客服 (customer service): what residents write from the mini-program's 客服 button reaches
//! us through WeChat's message push (`GET`/`POST /api/v1/wechat/push`, mounted only when
//! `wechat.push_token` is set), and is answered through `cgi-bin/message/custom/send` via
//! the notification outbox (retries, exactly once): an automatic answer to the common
//! questions, else one saying that a person will reply and when.

mod answers;
mod push;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::clock::Clock;
use crate::notify::{Notification, NotifyStore};
use crate::store::{KvStore, StoreError};
use crate::wechat::push::PushKey;

/// A message WeChat pushed is remembered this long, so its retries are answered without
/// handling it again (WeChat retries for seconds, not days).
const HANDLED_TTL: Duration = Duration::from_secs(24 * 3600);

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

/// The push endpoint's configuration and what it writes to.
pub struct Kf {
    token: SecretString,
    key: Option<PushKey>,
    /// Our app id: a 安全模式 message must name it.
    appid: String,
    kv: Arc<dyn KvStore>,
    outbox: Arc<dyn NotifyStore>,
    clock: Arc<Clock>,
}

impl Kf {
    /// `None` when no push token is configured (the endpoint is then not mounted).
    pub fn from_settings<S: KvStore + NotifyStore + 'static>(
        settings: &PushSettings,
        appid: &str,
        store: Arc<S>,
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
            kv: store.clone(),
            outbox: store,
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
    /// day). The answer is written to the outbox under a key of its own, so even a retry
    /// that raced past the first check cannot answer twice.
    async fn handle_once(
        &self,
        dedupe: &str,
        openid: &str,
        question: Option<&str>,
    ) -> Result<bool, StoreError> {
        let seen = format!("kf:push:{dedupe}");
        if !self.kv.kv_set_if_absent(&seen, "1", HANDLED_TTL).await? {
            return Ok(false);
        }
        let Some(question) = question else {
            return Ok(true);
        };
        let (topic, text) = answers::answer(question);
        let reply = Notification::customer_service(
            format!("kf:auto:{dedupe}"),
            openid,
            &text,
            self.clock.now(),
        );
        if let Err(e) = self.outbox.enqueue(&reply).await {
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

/// The push endpoint, when configured.
pub fn routes(cfg: &mut web::ServiceConfig, kf: Option<web::Data<Kf>>) {
    if let Some(kf) = kf {
        push::routes(cfg, kf);
    }
}
