//! What an acknowledged write survives: `kill -9` of the server binary (SQLite) or of
//! redis-server (append-only file) in the middle of a burst of bookings and photo orders; and the contract
//! production holds Redis to (append-only file, no eviction), at start and while running.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tests::booking::{applicant, bookable_weekday};
use tests::process::ServerProcess;
use tests::receipts::{order_fields, photo};
use tests::wechat::SimControl;
use tests::{
    answered, assert_error, client, json, RedisCluster, RedisServer, SharedStore, TestApp,
};

/// What one user writes in the burst.
#[derive(Clone)]
enum Write {
    /// A booking of one seat, sent with an Idempotency-Key.
    Booking(Value),
    /// An ID-photo receipt order: a photo upload, checked and normalised before the answer.
    Order,
}

/// One user's write: what was sent, with which key, and what the server acknowledged.
#[derive(Clone)]
struct Acknowledged {
    token: String,
    key: String,
    write: Write,
    id: String,
}

/// The slots the burst books into: one hall's open day for renewals.
async fn slot_list(address: &str) -> Value {
    let date = bookable_weekday();
    let url = format!("{address}/api/v1/offices/nancheng/slots?service=expiry_renewal&date={date}");
    json(answered(|| client().get(&url)).await).await
}

/// Sends `write` as `token`'s user; the id of what the server acknowledged (201), if it did.
async fn send(address: &str, token: &str, key: &str, write: &Write) -> Option<String> {
    let request = match write {
        Write::Booking(body) => client()
            .post(format!("{address}/api/v1/appointments"))
            .header("Idempotency-Key", key)
            .json(body),
        Write::Order => {
            let mut form = reqwest::multipart::Form::new().part(
                "photo",
                reqwest::multipart::Part::bytes(photo("portrait-test0.jpg")).file_name("photo.jpg"),
            );
            for (name, value) in order_fields("id-card", "广东省东莞市") {
                form = form.text(name, value);
            }
            client()
                .post(format!("{address}/api/v1/receipt-orders"))
                .multipart(form)
        }
    };
    let answer = request.bearer_auth(token).send().await.ok()?;
    if answer.status() != 201 {
        return None;
    }
    let created = answer.json::<Value>().await.ok()?;
    created["id"].as_str().map(str::to_owned)
}

/// Users logged in to the development server at `address`, each with a write to make.
struct Burst {
    address: String,
    writes: Vec<(String, Write)>,
}

impl Burst {
    /// `users` users: every other one books a different seat of the hall's open slots, the
    /// rest order a photo receipt.
    async fn prepare(address: &str, users: usize) -> Burst {
        let http = client();
        let list = slot_list(address).await;
        let mut seats = Vec::new();
        for slot in list["slots"].as_array().expect("slots") {
            let remaining = slot["remaining"].as_u64().unwrap_or(0);
            for _ in 0..remaining {
                seats.push(slot["id"].as_str().unwrap().to_owned());
            }
        }
        assert!(
            seats.len() >= users,
            "{} seats for {users} users",
            seats.len()
        );
        let sim = SimControl::at(address);
        let mut writes = Vec::new();
        for (n, slot) in seats.into_iter().take(users).enumerate() {
            let code = sim.mint_code(&format!("o-crash-{n}")).await;
            // On `appendfsync always` a write waits for the disk, which a loaded machine can
            // stall past the server's Redis timeout: setup retries that 503 as a client would.
            let url = format!("{address}/api/v1/auth/login");
            let login = answered(|| http.post(&url).json(&json!({ "code": code }))).await;
            assert_eq!(login.status(), 200);
            let token = json(login).await["token"].as_str().unwrap().to_owned();
            tests::wechat::consent(&http, address, &token).await;
            let write = if n % 2 == 0 {
                Write::Booking(json!({
                    "slot_id": slot,
                    "service": "expiry_renewal",
                    "applicant": applicant(9000 + n as u32),
                }))
            } else {
                Write::Order
            };
            writes.push((token, write));
        }
        Burst {
            address: address.to_owned(),
            writes,
        }
    }

    /// Sends every write at once and calls `crash` once `enough` bookings and `enough_orders`
    /// orders are acknowledged; returns what was acknowledged before the crash cut the rest off.
    async fn run_until(
        self,
        enough: usize,
        enough_orders: usize,
        crash: impl FnOnce(),
    ) -> Vec<Acknowledged> {
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = self
            .writes
            .into_iter()
            .enumerate()
            .map(|(n, (token, write))| {
                let address = self.address.clone();
                let acknowledged = acknowledged.clone();
                tokio::spawn(async move {
                    // Spread over time, so the crash lands in the middle of the burst.
                    tokio::time::sleep(Duration::from_millis(15 * n as u64)).await;
                    let key = format!("crash-{n}");
                    if let Some(id) = send(&address, &token, &key, &write).await {
                        acknowledged.lock().unwrap().push(Acknowledged {
                            token,
                            key,
                            write,
                            id,
                        });
                    }
                })
            })
            .collect();
        // A minute at most: a burst that never gets there is a failure, not a hang.
        for wait in 0.. {
            {
                let acknowledged = acknowledged.lock().unwrap();
                let orders = acknowledged
                    .iter()
                    .filter(|a| matches!(a.write, Write::Order))
                    .count();
                if orders >= enough_orders && acknowledged.len() - orders >= enough {
                    break;
                }
                assert!(
                    wait < 12_000,
                    "{orders} orders and {} bookings acknowledged",
                    acknowledged.len() - orders
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        crash();
        for task in tasks {
            task.await.unwrap();
        }
        let acknowledged = acknowledged.lock().unwrap().clone();
        acknowledged
    }
}

/// Every acknowledged write is there after the crash, once: its user sees it and only it,
/// a booking's retry with the same Idempotency-Key answers the same appointment, and the seats
/// taken are exactly the appointments that exist.
async fn all_there_once(address: &str, acknowledged: &[Acknowledged], users: usize) {
    let http = client();
    for written in acknowledged {
        let (list, field) = match written.write {
            Write::Booking(_) => ("appointments", "appointments"),
            Write::Order => ("receipt-orders", "orders"),
        };
        let url = format!("{address}/api/v1/{list}");
        let mine = json(answered(|| http.get(&url).bearer_auth(&written.token)).await).await;
        let ids: Vec<&str> = mine[field]
            .as_array()
            .unwrap_or_else(|| panic!("a list: {mine}"))
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [written.id.as_str()], "acknowledged {list} kept, once");
        if let Write::Booking(body) = &written.write {
            let url = format!("{address}/api/v1/appointments");
            let retry = answered(|| {
                http.post(&url)
                    .bearer_auth(&written.token)
                    .header("Idempotency-Key", &written.key)
                    .json(body)
            })
            .await;
            assert_eq!(retry.status(), 201, "the retry replays the answer");
            assert_eq!(json(retry).await["id"], written.id.as_str());
        }
    }
    let booked = acknowledged
        .iter()
        .filter(|a| matches!(a.write, Write::Booking(_)))
        .count() as u64;
    let list = slot_list(address).await;
    let remaining: u64 = list["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["remaining"].as_u64().unwrap())
        .sum();
    let capacity: u64 = list["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["capacity"].as_u64().unwrap())
        .sum();
    let attempts = users.div_ceil(2) as u64;
    assert!(
        capacity - remaining >= booked && capacity - remaining <= attempts,
        "seats taken {} for {booked} acknowledged of {attempts} attempts",
        capacity - remaining,
    );
}

const USERS: usize = 60;
/// Bookings and orders acknowledged before the crash.
const BEFORE_CRASH: usize = 10;
const ORDERS_BEFORE_CRASH: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_server_keeps_every_acknowledged_write_on_sqlite() {
    let store = SharedStore::fresh(tests::Backend::Sqlite).await;
    let vars = store.vars();
    let server = ServerProcess::start(&vars).await;
    let burst = Burst::prepare(&server.address, USERS).await;
    let acknowledged = burst
        .run_until(BEFORE_CRASH, ORDERS_BEFORE_CRASH, || server.signal("KILL"))
        .await;
    assert!(acknowledged.len() < USERS, "the kill cut the burst short");
    assert_eq!(server.wait().await, None, "killed");
    let server = ServerProcess::start(&vars).await;
    all_there_once(&server.address, &acknowledged, USERS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_redis_with_an_append_only_file_keeps_every_acknowledged_write() {
    let mut redis = RedisServer::start_durable().await;
    // With `everysec`, Redis holds writes back (up to 2 s) while the last fsync is still running,
    // so on a busy disk a kill -9 loses acknowledged writes; only `always` promises none lost.
    redis.config_set("appendfsync", "always").await;
    let store = SharedStore::Redis {
        url: redis.url(),
        prefix: "crash".into(),
    };
    let server = ServerProcess::start(&store.vars()).await;
    let burst = Burst::prepare(&server.address, USERS).await;
    let pid = redis.pid();
    let acknowledged = burst
        .run_until(BEFORE_CRASH, ORDERS_BEFORE_CRASH, || {
            let killed = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            assert!(killed.success());
        })
        .await;
    assert!(acknowledged.len() < USERS, "the kill cut the burst short");
    redis.stop().await;
    redis.restart().await;
    // The server reconnects by itself; wait until it answers from the store again.
    let mut ready = false;
    for _ in 0..100 {
        let answer = client()
            .get(format!("{}/readyz", server.address))
            .send()
            .await;
        if answer.is_ok_and(|a| a.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "back after redis-server restarted");
    all_there_once(&server.address, &acknowledged, USERS).await;
}

/// Production configuration over the Redis `redis` names (its setting and value), logging
/// in through the simulator at `wechat`.
fn production(redis: (&str, String), wechat: &str) -> Vec<(String, String)> {
    [
        redis,
        ("BANZHENG_REDIS_KEY_PREFIX", "production".into()),
        (
            "BANZHENG_WECHAT_APPID",
            server::wechat::simulator::APPID.into(),
        ),
        (
            "BANZHENG_WECHAT_SECRET",
            server::wechat::simulator::SECRET.into(),
        ),
        ("BANZHENG_WECHAT_API_BASE", wechat.into()),
        (
            "BANZHENG_JWT_SECRET",
            "a-production-secret-of-enough-length-for-jwt".into(),
        ),
        (
            "BANZHENG_BOOKING__ID_HASH_KEY",
            "a-production-id-hash-key-of-enough-length".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Names and values: of Redis settings, or of our own.
type Settings<'a> = &'a [(&'a str, &'a str)];

/// A production start on a Redis that would lose or evict acknowledged writes is refused,
/// naming the Redis setting to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_a_redis_that_loses_or_evicts_writes() {
    let wechat = server::wechat::simulator::spawn().unwrap();
    let cases: &[(Settings, Settings, &str)] = &[
        (&[], &[], "appendonly yes"),
        (
            &[("appendonly", "yes"), ("appendfsync", "no")],
            &[],
            "appendfsync everysec",
        ),
        (
            &[("appendonly", "yes"), ("maxmemory-policy", "allkeys-lru")],
            &[],
            "maxmemory-policy noeviction",
        ),
        (
            &[("appendonly", "yes")],
            &[("BANZHENG_REDIS_DURABILITY", "always")],
            "appendfsync always",
        ),
    ];
    for (redis_settings, extra, named) in cases {
        let redis = RedisServer::start().await;
        for (name, value) in *redis_settings {
            redis.config_set(name, value).await;
        }
        let mut vars = production(("BANZHENG_REDIS_URL", redis.url()), &wechat.api_base());
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (code, output) = ServerProcess::start_capturing(&vars)
            .await
            .err()
            .unwrap_or_else(|| panic!("started on a Redis with {redis_settings:?}"));
        assert_ne!(code, Some(0));
        assert!(output.contains(named), "names `{named}`: {output}");
    }
    // The override for a managed Redis that hides its configuration.
    let redis = RedisServer::start().await;
    let mut vars = production(("BANZHENG_REDIS_URL", redis.url()), &wechat.api_base());
    vars.push(("BANZHENG_REDIS_DURABILITY".into(), "unchecked".into()));
    let server = ServerProcess::start_capturing(&vars).await;
    assert!(server.is_ok(), "unchecked starts: {:?}", server.err());
    wechat.stop().await;
}

/// On a Redis Cluster the contract holds for every master: one master without the
/// append-only file is named, and the start refused, until it has it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_a_cluster_with_one_master_that_loses_writes() {
    let wechat = server::wechat::simulator::spawn().unwrap();
    let cluster = RedisCluster::start(3).await;
    for master in [0, 1] {
        cluster.config_set(master, "appendonly", "yes").await;
    }
    let vars = production(
        ("BANZHENG_REDIS_CLUSTER_NODES", cluster.seeds()),
        &wechat.api_base(),
    );
    let (code, output) = ServerProcess::start_capturing(&vars)
        .await
        .err()
        .expect("started on a cluster with a master without the append-only file");
    assert_ne!(code, Some(0));
    let third = cluster.node_urls()[2].replace("redis://", "");
    let third = third.trim_end_matches('/');
    assert!(
        output.contains(&format!("cluster master {third}")) && output.contains("appendonly yes"),
        "names the master and the setting: {output}"
    );
    cluster.config_set(2, "appendonly", "yes").await;
    let server = ServerProcess::start_capturing(&vars).await;
    assert!(server.is_ok(), "every master durable: {:?}", server.err());
    wechat.stop().await;
}

/// A running production server notices when Redis stops keeping acknowledged writes (here an
/// operator turns the append-only file off): writes get 503 and readiness fails, reads go on,
/// and all is back once the file is on again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_writes_while_redis_is_not_durable() {
    let wechat = server::wechat::simulator::spawn().unwrap();
    let sim = SimControl::of(&wechat);
    let redis = RedisServer::start_durable().await;
    let vars = production(("BANZHENG_REDIS_URL", redis.url()), &wechat.api_base());
    let mut extra: Vec<(&str, &str)> = vars
        .iter()
        .filter(|(k, _)| !k.starts_with("BANZHENG_REDIS"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    extra.push(("BANZHENG_REDIS_DURABILITY", "everysec"));
    let store = SharedStore::Redis {
        url: redis.url(),
        prefix: "production".into(),
    };
    let app = TestApp::spawn_on(store, &extra).await;
    let code = sim.mint_code("o-durable").await;
    assert_eq!(app.login_with_code(&code).await.status(), 200);

    redis.config_set("appendonly", "no").await;
    let refused = login_answers(&app, &sim, 503).await;
    assert!(refused, "writes refused once Redis is not durable");
    let code = sim.mint_code("o-durable").await;
    assert_error(app.login_with_code(&code).await, 503, "STORE_UNAVAILABLE").await;
    assert_error(app.get("/readyz").await, 503, "STORE_UNAVAILABLE").await;
    assert_eq!(
        app.get("/api/v1/offices").await.status(),
        200,
        "reads go on"
    );

    redis.config_set("appendonly", "yes").await;
    let accepted = login_answers(&app, &sim, 200).await;
    assert!(accepted, "writes accepted again");
    wechat.stop().await;
}

/// Whether a fresh login (a write) comes to answer `status` within `eventually`'s time.
async fn login_answers(app: &TestApp, sim: &SimControl, status: u16) -> bool {
    eventually(|| async {
        let code = sim.mint_code("o-durable").await;
        app.login_with_code(&code).await.status() == status
    })
    .await
}

/// Polls `condition` for up to 20 s (the server checks Redis every 5 s).
async fn eventually<F, Fut>(condition: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
