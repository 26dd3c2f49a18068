//! The sender: claims due outbox entries, spends a subscription grant, sends, and records
//! the outcome. Transient failures (-1, timeouts, 5xx) are retried with exponential backoff
//! until `max_attempts`, then the entry is dead; WeChat's refusals are final and never
//! retried (43101 also clears the user's grants for the template).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use futures_util::StreamExt;
use prometheus::{IntCounterVec, Opts};
use serde::Serialize;
use tokio::sync::Notify;

use super::store::{Claimed, NotifyStore, OutboxState, Outcome};
use super::templates::{NotifySettings, Templates};
use super::Event;
use crate::auth::UserStore;
use crate::clock::Clock;
use crate::store::StoreError;
use crate::wechat::token::{AccessTokens, CallError as SendError, TokenError};
use crate::wechat::{CustomMessage, SubscribeMessage, WeChatClient};

pub struct Notifier {
    pub templates: Templates,
    /// Shared with every other caller of WeChat that needs the token.
    pub tokens: Arc<AccessTokens>,
    wechat: WeChatClient,
    store: Arc<dyn NotifyStore>,
    /// The openid to send to.
    users: Arc<dyn UserStore>,
    clock: Arc<Clock>,
    settings: NotifySettings,
    /// Identifies this process's claims.
    owner: String,
    outcomes: IntCounterVec,
    stopping: AtomicBool,
    wake: Notify,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PassReport {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

impl Notifier {
    /// `store` holds the outbox and the users.
    pub fn new<S: NotifyStore + UserStore + 'static>(
        settings: &NotifySettings,
        production: bool,
        wechat: WeChatClient,
        tokens: Arc<AccessTokens>,
        store: Arc<S>,
        clock: Arc<Clock>,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "notifications_total",
                "Notifications settled, by event and outcome",
            ),
            &["event", "outcome"],
        )?;
        registry.register(Box::new(outcomes.clone()))?;
        Ok(Notifier {
            outcomes,
            templates: Templates::from_settings(settings, production)?,
            tokens,
            wechat,
            users: store.clone(),
            store,
            clock,
            settings: settings.clone(),
            owner: uuid::Uuid::new_v4().simple().to_string(),
            stopping: AtomicBool::new(false),
            wake: Notify::new(),
        })
    }

    /// Records the templates `user_id` accepted (one send each); answers each template's
    /// remaining sends.
    pub async fn grant(
        &self,
        user_id: &str,
        template_ids: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.store.grant_subscriptions(user_id, template_ids).await
    }

    /// The openid WeChat knows `user_id` by.
    pub async fn openid_of(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.users.user_by_id(user_id).await?.map(|u| u.openid))
    }

    pub fn wechat(&self) -> &WeChatClient {
        &self.wechat
    }

    /// Claims what is due and sends it, `concurrency` at a time.
    pub async fn run_once(&self) -> Result<PassReport, StoreError> {
        let now = self.clock.now();
        let lease_until = now + Span::seconds(self.settings.claim_lease_secs as i64);
        let claimed = self
            .store
            .claim_due(now, lease_until, self.settings.batch_size, &self.owner)
            .await?;
        let mut report = PassReport {
            claimed: claimed.len(),
            ..PassReport::default()
        };
        let outcomes: Vec<Result<Outcome, StoreError>> = futures_util::stream::iter(claimed)
            .map(|entry| async move {
                let outcome = self.deliver(&entry).await?;
                self.store.finish(&entry, &self.owner, &outcome).await?;
                let label = match &outcome {
                    Outcome::Sent => "sent",
                    Outcome::Retry { .. } => "retried",
                    Outcome::Final { state, .. } => state.as_str(),
                };
                self.outcomes
                    .with_label_values(&[entry.notification.event.as_str(), label])
                    .inc();
                Ok(outcome)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            match outcome? {
                Outcome::Sent => report.sent += 1,
                Outcome::Retry { .. } => report.retried += 1,
                Outcome::Final { .. } => report.failed += 1,
            }
        }
        Ok(report)
    }

    /// Runs passes until [`Notifier::stop`]: the next at once when there was work, else
    /// after the poll interval. A pass under way is finished, so no send is cut off midway.
    pub async fn run(self: Arc<Self>) {
        let idle = Duration::from_millis(self.settings.poll_interval_ms.max(10));
        while !self.stopping.load(Ordering::SeqCst) {
            match self.run_once().await {
                Ok(report) if report.claimed > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "notification pass failed"),
            }
            let _ = tokio::time::timeout(idle, self.wake.notified()).await;
        }
    }

    /// Asks [`Notifier::run`] to return after the pass under way.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    fn fail(state: OutboxState, error: impl Into<String>) -> Outcome {
        Outcome::Final {
            state,
            error: error.into(),
        }
    }

    fn retry(&self, entry: &Claimed, error: String) -> Outcome {
        if entry.attempts >= self.settings.max_attempts {
            return Self::fail(OutboxState::Dead, error);
        }
        let factor = 2u64.saturating_pow(entry.attempts.saturating_sub(1));
        let delay = self
            .settings
            .backoff_base_secs
            .saturating_mul(factor)
            .min(self.settings.backoff_max_secs);
        Outcome::Retry {
            at: self.clock.now() + Span::seconds(delay as i64),
            error,
        }
    }

    /// A send's outcome: sent; retried later when WeChat was busy or the token failed; final
    /// when WeChat refused (its quotas, 45009 a day and 45011 a minute, are not retried
    /// automatically either).
    fn settle(&self, entry: &Claimed, result: &Result<(), SendError>) -> Outcome {
        match result {
            Ok(()) => Outcome::Sent,
            Err(SendError::WeChat(e)) if e.is_transient() || e.is_bad_token() => {
                self.retry(entry, e.to_string())
            }
            Err(SendError::WeChat(e)) => Self::fail(OutboxState::Failed, e.to_string()),
            Err(SendError::Token(TokenError::WeChat(e)))
                if matches!(e.errcode(), Some(45009 | 45011)) =>
            {
                Self::fail(OutboxState::Failed, e.to_string())
            }
            Err(SendError::Token(e)) => self.retry(entry, e.to_string()),
        }
    }

    async fn deliver(&self, entry: &Claimed) -> Result<Outcome, StoreError> {
        let notification = &entry.notification;
        if notification.event == Event::CustomerService {
            return Ok(self.deliver_custom(entry).await);
        }
        let Some(user) = self.users.user_by_id(&notification.user_id).await? else {
            return Ok(Self::fail(OutboxState::Failed, "unknown user"));
        };
        let message = match self.templates.render(notification, &user.openid) {
            Ok(message) => message,
            Err(why) => return Ok(Self::fail(OutboxState::Failed, why)),
        };
        if !self
            .store
            .take_subscription(&user.id, &message.template_id, &notification.id)
            .await?
        {
            return Ok(Self::fail(OutboxState::NoSubscription, "no subscription"));
        }
        let result = self.send(&message).await;
        let outcome = match &result {
            Err(SendError::WeChat(e)) if e.errcode() == Some(43101) => {
                self.store
                    .clear_subscription(&user.id, &message.template_id)
                    .await?;
                Self::fail(OutboxState::Failed, e.to_string())
            }
            _ => self.settle(entry, &result),
        };
        // WeChat counts a grant only for a message it took (43101: there was none to count).
        let spent = matches!(outcome, Outcome::Sent)
            || matches!(&result, Err(SendError::WeChat(e)) if e.errcode() == Some(43101));
        self.store
            .release_subscription(&user.id, &message.template_id, &notification.id, !spent)
            .await?;
        match &outcome {
            Outcome::Sent => {
                tracing::info!(id = %notification.id, event = notification.event.as_str(), "notification sent")
            }
            Outcome::Retry { error, .. } | Outcome::Final { error, .. } => {
                tracing::warn!(id = %notification.id, event = notification.event.as_str(), %error, "notification not sent")
            }
        }
        Ok(outcome)
    }

    /// A 客服 message: no template, no grant; 45015 (the user last wrote more than 48 hours
    /// ago) and WeChat's other refusals are final.
    async fn deliver_custom(&self, entry: &Claimed) -> Outcome {
        let notification = &entry.notification;
        let field = |name: &str| notification.fields.get(name).map(String::as_str);
        let (Some(openid), Some(text)) = (field("openid"), field("text")) else {
            return Self::fail(OutboxState::Failed, "a 客服 message needs openid and text");
        };
        let message = CustomMessage::text(openid, text);
        let message = &message;
        let result = self
            .tokens
            .call(|token| async move { self.wechat.send_custom_message(&token, message).await })
            .await;
        let outcome = self.settle(entry, &result);
        if let Outcome::Retry { error, .. } | Outcome::Final { error, .. } = &outcome {
            tracing::warn!(id = %notification.id, %error, "客服 message not sent");
        }
        outcome
    }

    /// One send, and once more with a new token if WeChat rejected the token.
    async fn send(&self, message: &SubscribeMessage) -> Result<(), SendError> {
        self.tokens
            .call(|token| async move { self.wechat.send_subscribe_message(&token, message).await })
            .await
    }
}
