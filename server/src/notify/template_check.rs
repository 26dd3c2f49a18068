//! Production start-up: the configured templates must exist in the WeChat account with the
//! keywords we fill, or every notification would fail. WeChat's answer decides: a mismatch
//! stops the start naming the event; no answer (WeChat unreachable or busy) lets the server
//! start and asks again in the background until WeChat answers.

use std::sync::Arc;
use std::time::Duration;

use super::Notifier;
use crate::wechat::token::{CallError, TokenError};
use crate::wechat::WeChatError;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// WeChat answered, and our configuration does not match the account.
    #[error("the notification templates do not match the WeChat account:\n{0}")]
    Mismatch(String),
    /// WeChat answered with a refusal that no retry changes (a wrong secret, an IP not on
    /// the whitelist, …).
    #[error("WeChat refused the template check: {0}")]
    Refused(CallError),
    /// No answer worth acting on: WeChat unreachable, busy, or over a quota.
    #[error("WeChat could not be asked for the templates: {0}")]
    Unanswered(CallError),
}

/// Busy, unreachable or out of quota: asking later may work.
fn worth_retrying(error: &WeChatError) -> bool {
    error.is_transient() || matches!(error.errcode(), Some(45009 | 45011))
}

impl Notifier {
    /// Fetches the account's templates and compares them with ours.
    pub async fn check_templates(&self) -> Result<(), CheckError> {
        let account = self
            .tokens
            .call(|token| async move { self.wechat().account_templates(&token).await })
            .await
            .map_err(|e| {
                let retry = match &e {
                    CallError::WeChat(w) | CallError::Token(TokenError::WeChat(w)) => {
                        worth_retrying(w)
                    }
                    CallError::Token(_) => true,
                };
                if retry {
                    CheckError::Unanswered(e)
                } else {
                    CheckError::Refused(e)
                }
            })?;
        let problems = self.templates.mismatches(&account);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CheckError::Mismatch(problems.join("\n")))
        }
    }
}

/// The start-up check: `Err` stops the start; an unanswered check is repeated in the
/// background every `recheck` until WeChat answers, and a mismatch found then is logged
/// as an error (the server is already serving).
pub async fn at_startup(notifier: &Arc<Notifier>, recheck: Duration) -> anyhow::Result<()> {
    if notifier.templates.iter().next().is_none() {
        return Ok(());
    }
    match notifier.check_templates().await {
        Ok(()) => {
            tracing::info!("notification templates match the WeChat account");
            Ok(())
        }
        Err(CheckError::Unanswered(e)) => {
            tracing::warn!(error = %e, retry_secs = recheck.as_secs(), "starting without checking the notification templates: WeChat did not answer; checking again in the background");
            let notifier = notifier.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(recheck).await;
                    match notifier.check_templates().await {
                        Ok(()) => {
                            tracing::info!("notification templates match the WeChat account");
                            return;
                        }
                        Err(CheckError::Unanswered(e)) => {
                            tracing::warn!(error = %e, "the notification templates are still unchecked: WeChat did not answer")
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "notifications will fail until the templates are fixed");
                            return;
                        }
                    }
                }
            });
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
