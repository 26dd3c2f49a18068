//! The server's notion of now. Tests (in development mode only) move it forward to reach
//! reminders and no-shows without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, FixedOffset, Utc};

/// Dongguan is UTC+8 all year: appointment times are local times there.
pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn now_local(&self) -> DateTime<FixedOffset> {
        self.now().with_timezone(&china())
    }

    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }

    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }
}

/// Runs `task` every `period` (at least a second) for the life of the server: the background
/// sweeps. A round that fails is logged, naming `what`, and the next round tries again.
pub fn repeat<F, Fut, T, E>(period: std::time::Duration, what: &'static str, task: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, E>> + Send,
    E: std::fmt::Display,
{
    let period = period.max(std::time::Duration::from_secs(1));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = task().await {
                tracing::warn!(error = %e, "{what} failed; retrying next round");
            }
        }
    });
}
