//! The sender: claims due outbox entries, spends a subscription grant, sends, and records
//! the outcome. Transient failures (-1, timeouts, 5xx) are retried with exponential backoff
//! until `max_attempts`, then the entry is dead; WeChat's refusals are final and never
//! retried (43101 also clears the user's grants for the template).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use futures_util::{StreamExt, TryStreamExt};
use prometheus::{IntCounterVec, Opts};
use serde::Serialize;
use tokio::sync::Notify;

use super::store::{Claimed, GrantHold, NotifyStore, OutboxState, Outcome};
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

/// A claimed entry before its send.
enum Prepared {
    /// Settled without a send: a user unknown, a template that does not render, no grant.
    Settled(Outcome),
    /// A 客服 message: no template, no grant.
    Custom(CustomMessage),
    /// A subscription message, sent once `hold` is taken.
    Template {
        message: SubscribeMessage,
        hold: GrantHold,
    },
}

/// A claimed entry after its send: the outcome, and the grant it held (refunded when `true`).
struct Sent {
    outcome: Outcome,
    release: Option<(GrantHold, bool)>,
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

    /// Claims what is due and sends it, `concurrency` at a time. The store is asked once per
    /// pass for the grants, and for the outcomes once per group of sends that end together
    /// (each outcome is recorded as soon as its send ends, so a crash re-sends no more than
    /// before), not once per entry: Redis's cost is mostly per script call.
    pub async fn run_once(&self) -> Result<PassReport, StoreError> {
        let now = self.clock.now();
        let lease_until = now + Span::seconds(self.settings.claim_lease_secs as i64);
        let claimed = self
            .store
            .claim_due(now, lease_until, self.settings.batch_size, &self.owner)
            .await?;
        let concurrency = self.settings.concurrency.max(1);
        // The futures made first: a stream's closure over borrowed entries is not general
        // enough for the spawned task.
        let preparing: Vec<_> = claimed.iter().map(|entry| self.prepare(entry)).collect();
        let mut prepared: Vec<Prepared> = futures_util::stream::iter(preparing)
            .buffered(concurrency)
            .try_collect()
            .await?;
        let holds: Vec<GrantHold> = prepared
            .iter()
            .filter_map(|p| match p {
                Prepared::Template { hold, .. } => Some(hold.clone()),
                _ => None,
            })
            .collect();
        let mut taken = self.store.take_subscriptions(&holds).await?.into_iter();
        for p in &mut prepared {
            if matches!(p, Prepared::Template { .. }) && taken.next() != Some(true) {
                *p = Prepared::Settled(Self::fail(OutboxState::NoSubscription, "no subscription"));
            }
        }
        let delivering: Vec<_> =
            (claimed.iter().zip(prepared))
                .map(|(entry, p)| async move {
                    Ok::<_, StoreError>((entry, self.deliver(entry, p).await?))
                })
                .collect();
        // Whatever has ended by then, however many: entries settled without a send (no
        // grant, say) all end at once.
        let mut ended = futures_util::stream::iter(delivering)
            .buffer_unordered(concurrency)
            .ready_chunks(claimed.len().max(1));
        let mut report = PassReport {
            claimed: claimed.len(),
            ..PassReport::default()
        };
        while let Some(group) = ended.next().await {
            let mut released = Vec::new();
            let mut finished = Vec::with_capacity(group.len());
            for result in group {
                let (entry, Sent { outcome, release }) = result?;
                let label = match &outcome {
                    Outcome::Sent => {
                        report.sent += 1;
                        "sent"
                    }
                    Outcome::Retry { .. } => {
                        report.retried += 1;
                        "retried"
                    }
                    Outcome::Final { state, .. } => {
                        report.failed += 1;
                        state.as_str()
                    }
                };
                self.outcomes
                    .with_label_values(&[entry.notification.event.as_str(), label])
                    .inc();
                released.extend(release);
                finished.push((entry, outcome));
            }
            self.store.release_subscriptions(&released).await?;
            self.store.finish(&finished, &self.owner).await?;
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

    /// What `entry` is to be sent as: its user and template looked up, or its outcome
    /// already (a user unknown, a template that does not render).
    async fn prepare(&self, entry: &Claimed) -> Result<Prepared, StoreError> {
        let notification = &entry.notification;
        if notification.event == Event::CustomerService {
            // A 客服 message: no template, no grant.
            let field = |name: &str| notification.fields.get(name).map(String::as_str);
            let (Some(openid), Some(text)) = (field("openid"), field("text")) else {
                let why = "a 客服 message needs openid and text";
                return Ok(Prepared::Settled(Self::fail(OutboxState::Failed, why)));
            };
            return Ok(Prepared::Custom(CustomMessage::text(openid, text)));
        }
        let Some(user) = self.users.user_by_id(&notification.user_id).await? else {
            return Ok(Prepared::Settled(Self::fail(
                OutboxState::Failed,
                "unknown user",
            )));
        };
        Ok(match self.templates.render(notification, &user.openid) {
            Ok(message) => Prepared::Template {
                hold: GrantHold {
                    user_id: user.id,
                    template_id: message.template_id.clone(),
                    notification_id: notification.id.clone(),
                },
                message,
            },
            Err(why) => Prepared::Settled(Self::fail(OutboxState::Failed, why)),
        })
    }

    /// Sends what `prepared` holds; the outcome, and the grant to release with it.
    async fn deliver(&self, entry: &Claimed, prepared: Prepared) -> Result<Sent, StoreError> {
        let notification = &entry.notification;
        let (message, hold) = match prepared {
            Prepared::Settled(outcome) => {
                return Ok(Sent {
                    outcome,
                    release: None,
                })
            }
            Prepared::Custom(message) => {
                return Ok(Sent {
                    outcome: self.send_custom(entry, &message).await,
                    release: None,
                })
            }
            Prepared::Template { message, hold } => (message, hold),
        };
        let result = self.send(&message).await;
        let outcome = match &result {
            Err(SendError::WeChat(e)) if e.errcode() == Some(43101) => {
                self.store
                    .clear_subscription(&hold.user_id, &hold.template_id)
                    .await?;
                Self::fail(OutboxState::Failed, e.to_string())
            }
            _ => self.settle(entry, &result),
        };
        // WeChat counts a grant only for a message it took (43101: there was none to count).
        let spent = matches!(outcome, Outcome::Sent)
            || matches!(&result, Err(SendError::WeChat(e)) if e.errcode() == Some(43101));
        match &outcome {
            Outcome::Sent => {
                tracing::info!(id = %notification.id, event = notification.event.as_str(), "notification sent")
            }
            Outcome::Retry { error, .. } | Outcome::Final { error, .. } => {
                tracing::warn!(id = %notification.id, event = notification.event.as_str(), %error, "notification not sent")
            }
        }
        Ok(Sent {
            outcome,
            release: Some((hold, !spent)),
        })
    }

    /// A 客服 message: no template, no grant; 45015 (the user last wrote more than 48 hours
    /// ago) and WeChat's other refusals are final.
    async fn send_custom(&self, entry: &Claimed, message: &CustomMessage) -> Outcome {
        let result = self
            .tokens
            .call(|token| async move { self.wechat.send_custom_message(&token, message).await })
            .await;
        let outcome = self.settle(entry, &result);
        if let Outcome::Retry { error, .. } | Outcome::Final { error, .. } = &outcome {
            tracing::warn!(id = %entry.notification.id, %error, "客服 message not sent");
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
