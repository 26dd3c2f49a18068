//! How long the start's move of the booking layout from before issue 16 takes (README,
//! "Upgrading a store written before this layout"; not part of the test command):
//! `cargo bench --profile dev -p tests --bench migration [-- <appointments>]` writes that many
//! booked appointments in the old formats (commit 5205ac2) and times the move on one Redis
//! and on the 3-master test cluster. Prints figures; asserts nothing about speed.

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use server::booking::schedule::SlotId;
use tests::booking::booked_appointment;
use tests::{Backend, SharedStore};

const HALLS: [&str; 4] = ["dongcheng", "nancheng", "houjie", "gaobu"];

/// `count` booked appointments of `count / 4` users, written as 5205ac2 kept them.
async fn old_layout(shared: &SharedStore, prefix: &str, count: usize) {
    let old = |rest: String| format!("{prefix}:{{booking}}:{rest}");
    let mut conn = shared.redis_conn().await;
    let booked_at = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
    for batch in (0..count).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for &n in batch {
            let (user, hall) = (format!("user-{}", n / 4), HALLS[n % 4]);
            let slot = SlotId::parse(&format!("{hall}-20261210-0930")).unwrap();
            let starts_at = Utc.with_ymd_and_hms(2026, 12, 10, 1, 30, 0).unwrap();
            let person = format!("p{n}");
            let a = booked_appointment(
                &user,
                &person,
                slot,
                starts_at,
                "4419**********0015".into(),
                booked_at,
            );
            let doc = serde_json::to_string(&a).unwrap();
            let created = a.created_at.timestamp_millis();
            pipe.hset_multiple(
                old(format!("appt:{}", a.id)),
                &[("status", "booked"), ("doc", &doc)],
            )
            .set(old(format!("code:{}", a.code.as_str())), &a.id)
            .zadd(old(format!("user:{user}:all")), &a.id, created)
            .sadd(old(format!("user:{user}:active")), &a.id)
            .set(old(format!("applicant:{user}:{}:active", a.id_hash)), &a.id)
            .zadd(
                old("due".into()),
                &a.id,
                (starts_at + Duration::minutes(30)).timestamp_millis(),
            )
            .hincr(old(format!("seats:{hall}:20261210")), "0930", 1);
        }
        let () = pipe.query_async(&mut conn).await.unwrap();
    }
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    for backend in [Backend::Redis, Backend::RedisCluster] {
        let shared = SharedStore::fresh(backend).await;
        let prefix = match &shared {
            SharedStore::Redis { prefix, .. } | SharedStore::RedisCluster { prefix, .. } => {
                prefix.clone()
            }
            SharedStore::Sqlite(_) => unreachable!("Redis only"),
        };
        old_layout(&shared, &prefix, count).await;
        let store = shared.open().await;
        let started = Instant::now();
        let moved = store.migrate_single_tag_layout().await.unwrap();
        let took = started.elapsed().as_secs_f64();
        assert_eq!(moved.appointments, count);
        if backend == Backend::Redis {
            // The shared Redis outlives the bench: its keys go (the cluster stops with it).
            let url = tests::RedisServer::shared().await.url();
            let client = redis::Client::open(url).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            for keys in tests::redis_server::keys_under(&mut conn, &prefix)
                .await
                .chunks(500)
            {
                let () = redis::AsyncCommands::unlink(&mut conn, keys).await.unwrap();
            }
        }
        println!(
            "move of the single-tag layout, {backend:?}: {count} appointments in {took:.1} s ({:.0} appointments/s)",
            count as f64 / took
        );
    }
}
