//! The durability contract with Redis: an acknowledged booking or order survives a crash of
//! either process. That holds only with the append-only file on and an eviction policy that
//! never drops keys, which a Redis started as Debian or the official image start it does not
//! have (RDB snapshots only). Production checks it at start and keeps checking while running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use serde::Deserialize;

use super::RedisConn;
use crate::error::ApiError;

/// What production asks of Redis (`BANZHENG_REDIS_DURABILITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// AOF with `appendfsync everysec` or `always`: a process crash loses nothing, an
    /// operating-system crash up to a second of writes.
    #[default]
    Everysec,
    /// AOF with `appendfsync always`: no loss window at all, at the cost of an fsync per write.
    Always,
    /// Not checked: for a managed Redis that hides its configuration; the operator vouches.
    Unchecked,
}

/// Why this Redis does not keep what the server acknowledges; the text names the Redis
/// setting to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotDurable {
    #[error("Redis has the append-only file off (appendonly {0}): an acknowledged booking is lost when redis-server crashes. Set `appendonly yes` in redis.conf (or CONFIG SET appendonly yes and CONFIG REWRITE)")]
    NoAppendOnlyFile(String),
    #[error("Redis syncs its append-only file with `appendfsync {0}`; BANZHENG_REDIS_DURABILITY={1} asks for `appendfsync {1}`{more}", more = if *.1 == "everysec" { " or `always`" } else { "" })]
    Fsync(String, &'static str),
    #[error("Redis evicts keys when memory fills (maxmemory-policy {0}): bookings and orders would silently disappear. Set `maxmemory-policy noeviction`")]
    Evicting(String),
    #[error("cluster master {0}: {1}")]
    OnMaster(String, Box<NotDurable>),
    #[error("Redis does not let this server read its configuration ({0}). If it is a managed Redis that keeps an append-only file and never evicts, set BANZHENG_REDIS_DURABILITY=unchecked")]
    Hidden(String),
}

/// The settings that decide durability, read from a Redis (each master of a cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisPersistence {
    pub appendonly: String,
    pub appendfsync: String,
    pub maxmemory_policy: String,
}

impl Durability {
    /// Whether `found` keeps every acknowledged write as this requirement asks.
    pub fn judge(self, found: &RedisPersistence) -> Result<(), NotDurable> {
        let wanted = match self {
            Durability::Unchecked => return Ok(()),
            Durability::Everysec => "everysec",
            Durability::Always => "always",
        };
        if found.appendonly != "yes" {
            return Err(NotDurable::NoAppendOnlyFile(found.appendonly.clone()));
        }
        let fsync_ok = match self {
            Durability::Always => found.appendfsync == "always",
            _ => matches!(found.appendfsync.as_str(), "everysec" | "always"),
        };
        if !fsync_ok {
            return Err(NotDurable::Fsync(found.appendfsync.clone(), wanted));
        }
        if found.maxmemory_policy != "noeviction" {
            return Err(NotDurable::Evicting(found.maxmemory_policy.clone()));
        }
        Ok(())
    }
}

/// Reads the three settings of every master with `CONFIG GET` (which managed services
/// often rename or forbid: then `Hidden`), by the master's address.
pub async fn read(conn: &mut RedisConn) -> Result<Vec<(String, RedisPersistence)>, NotDurable> {
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    for name in ["appendonly", "appendfsync", "maxmemory-policy"] {
        let answers = conn
            .on_every_master(redis::cmd("CONFIG").arg("GET").arg(name))
            .await
            .map_err(|e| NotDurable::Hidden(e.to_string()))?;
        for (node, answer) in answers {
            let pair: Vec<String> =
                redis::from_redis_value(answer).map_err(|e| NotDurable::Hidden(e.to_string()))?;
            let value = pair.get(1).cloned().ok_or_else(|| {
                NotDurable::Hidden(format!("CONFIG GET {name} answered nothing on {node}"))
            })?;
            match found.iter_mut().find(|(n, _)| *n == node) {
                Some((_, values)) => values.push(value),
                None => found.push((node, vec![value])),
            }
        }
    }
    found
        .into_iter()
        .map(|(node, values)| {
            let [appendonly, appendfsync, maxmemory_policy] = <[String; 3]>::try_from(values)
                .map_err(|_| NotDurable::Hidden(format!("{node} answered part of CONFIG GET")))?;
            Ok((
                node,
                RedisPersistence {
                    appendonly,
                    appendfsync,
                    maxmemory_policy,
                },
            ))
        })
        .collect()
}

/// Whether every master keeps acknowledged writes as `requirement` asks (nothing is read
/// when it is `Unchecked`).
pub async fn check(conn: &mut RedisConn, requirement: Durability) -> Result<(), NotDurable> {
    if requirement == Durability::Unchecked {
        return Ok(());
    }
    for (node, found) in read(conn).await? {
        requirement.judge(&found).map_err(|e| match conn {
            RedisConn::Node(_) => e,
            RedisConn::Cluster(_) => NotDurable::OnMaster(node, Box::new(e)),
        })?;
    }
    Ok(())
}

/// Whether the last check found Redis durable; shared by the store and the check loop.
#[derive(Debug, Clone)]
pub struct DurabilityState {
    durable: Arc<AtomicBool>,
}

impl DurabilityState {
    pub fn durable() -> Self {
        DurabilityState {
            durable: Arc::new(AtomicBool::new(true)),
        }
    }

    pub fn is_durable(&self) -> bool {
        self.durable.load(Ordering::Relaxed)
    }

    fn set(&self, durable: bool) {
        self.durable.store(durable, Ordering::Relaxed);
    }
}

/// How often a running server checks again: a restart or failover onto a Redis with other
/// settings is noticed within this time (each check is three `CONFIG GET`s on one connection).
pub const RECHECK: Duration = Duration::from_secs(5);

/// Checks `requirement` every [`RECHECK`] on `conn`, for as long as the runtime runs; while
/// it fails, `state` says so (the server then refuses writes with 503) and the reason is logged
/// once per change. An unreachable Redis is the reachability check's business, not this one's.
pub fn keep_checking(mut conn: RedisConn, requirement: Durability, state: DurabilityState) {
    if requirement == Durability::Unchecked {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RECHECK).await;
            let verdict = match check(&mut conn, requirement).await {
                Err(NotDurable::Hidden(e)) if looks_unreachable(&e) => continue,
                verdict => verdict,
            };
            match verdict {
                Ok(()) if !state.is_durable() => {
                    tracing::info!("Redis keeps acknowledged writes again; writes accepted");
                    state.set(true);
                }
                Err(reason) if state.is_durable() => {
                    tracing::error!(%reason, "Redis no longer keeps acknowledged writes; writes are refused with 503");
                    state.set(false);
                }
                _ => {}
            }
        }
    });
}

/// While Redis does not keep what it acknowledges, requests that write (any method but GET,
/// HEAD and OPTIONS) are refused with 503 before they reach a handler; reads go on.
pub async fn refuse_writes_unless_durable(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let reads_only = matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    let durable = req
        .app_data::<web::Data<DurabilityState>>()
        .is_none_or(|state| state.is_durable());
    if durable || reads_only {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let refusal = ApiError::StoreUnavailable("Redis does not keep acknowledged writes".into());
    Ok(req
        .into_response(refusal.error_response())
        .map_into_right_body())
}

fn looks_unreachable(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    [
        "connection",
        "broken pipe",
        "timed out",
        "refused",
        "io error",
    ]
    .iter()
    .any(|m| e.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(appendonly: &str, appendfsync: &str, policy: &str) -> RedisPersistence {
        RedisPersistence {
            appendonly: appendonly.into(),
            appendfsync: appendfsync.into(),
            maxmemory_policy: policy.into(),
        }
    }

    #[test]
    fn everysec_accepts_aof_with_everysec_or_always_and_noeviction() {
        let d = Durability::Everysec;
        assert_eq!(d.judge(&found("yes", "everysec", "noeviction")), Ok(()));
        assert_eq!(d.judge(&found("yes", "always", "noeviction")), Ok(()));
        assert!(matches!(
            d.judge(&found("no", "everysec", "noeviction")),
            Err(NotDurable::NoAppendOnlyFile(_))
        ));
        let err = d.judge(&found("yes", "no", "noeviction")).unwrap_err();
        assert!(err.to_string().contains("appendfsync everysec"), "{err}");
        let err = d
            .judge(&found("yes", "everysec", "allkeys-lru"))
            .unwrap_err();
        assert!(
            err.to_string().contains("maxmemory-policy noeviction"),
            "{err}"
        );
    }

    #[test]
    fn always_asks_for_an_fsync_per_write() {
        let d = Durability::Always;
        assert_eq!(d.judge(&found("yes", "always", "noeviction")), Ok(()));
        let err = d
            .judge(&found("yes", "everysec", "noeviction"))
            .unwrap_err();
        assert!(err.to_string().contains("`appendfsync always`"), "{err}");
        assert!(!err.to_string().contains("or `always`"), "{err}");
    }

    #[test]
    fn unchecked_accepts_anything() {
        assert_eq!(
            Durability::Unchecked.judge(&found("no", "no", "allkeys-random")),
            Ok(())
        );
    }
}
