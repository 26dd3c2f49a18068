//! The WeChat server API: our client for it, and the simulator that stands in for it in
//! development and tests.

mod client;
pub mod simulator;

pub use client::{install_tls_provider, AccessToken, SubscribeMessage, WeChatClient, WeChatError};

use std::time::Duration;

use secrecy::SecretString;

use crate::config::{Settings, WECHAT_API_BASE};

/// The client the settings ask for: the configured app against the configured base URL, or
/// in development mode the simulator's app against the simulator (whose address
/// `Application::build` fills in once it has bound its port).
pub fn client_from_settings(settings: &Settings) -> anyhow::Result<WeChatClient> {
    let timeout = Duration::from_millis(settings.wechat_timeout_ms);
    match (&settings.wechat_appid, &settings.wechat_secret) {
        (Some(appid), Some(secret)) => WeChatClient::new(
            settings
                .wechat_api_base
                .as_deref()
                .unwrap_or(WECHAT_API_BASE),
            appid,
            secret.clone(),
            timeout,
        ),
        _ => {
            let base = settings.wechat_api_base.as_deref().ok_or_else(|| {
                anyhow::anyhow!("development mode: the simulator's address is not known yet")
            })?;
            WeChatClient::new(
                base,
                simulator::APPID,
                SecretString::from(simulator::SECRET),
                timeout,
            )
        }
    }
}
