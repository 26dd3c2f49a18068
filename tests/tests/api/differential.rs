//! Differential test of the two backends: random sequences of booking and receipt operations
//! (book, cancel, check in, progress, no-show sweep, order, review, resubmit, use at check-in)
//! go to SQLite and Redis side by side; every answer and, at the end, everything the store
//! traits can read back must be the same. This is what keeps the backends from drifting.
//!
//! `DIFFERENTIAL_SEED` (default 1) and `DIFFERENTIAL_RUNS` (sequences, default 6) and
//! `DIFFERENTIAL_OPS` (operations per sequence, default 60) make it run longer or elsewhere.
//! A failure names the seed and the sequence up to the operation whose answers differed.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use server::booking::appointment::{
    Appointment, AppointmentCode, Delivery, EmsNumber, Status, Step,
};
use server::booking::schedule::SlotId;
use server::booking::store::{hall_tag, AttemptLimits, IdempotencyKey, NewBooking};
use server::id_hash::IdHasher;
use server::notify::store::Notices;
use server::notify::{Event, Notification};
use server::person::{IdNumber, PersonName};
use server::receipts::{
    Cursor, Decision, OrderForm, OrderPage, Photo, ReceiptNo, ReceiptOrder, Region, RejectReason,
    Status as OrderStatus,
};
use tests::booking::{booked_appointment, no_show_policy};
use tests::{AllStores, Backend, SharedStore};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const USERS: usize = 4;
const PEOPLE: usize = 6;
const SLOTS: [&str; 4] = [
    "dongcheng-20261202-0900",
    "dongcheng-20261202-0930",
    "nancheng-20261202-0900",
    "nancheng-20261203-1400",
];
const DAYS: [(&str, &str); 3] = [
    ("dongcheng", "20261202"),
    ("nancheng", "20261202"),
    ("nancheng", "20261203"),
];
const STATUS_FILTERS: [Option<OrderStatus>; 6] = [
    None,
    Some(OrderStatus::Pending),
    Some(OrderStatus::Approved),
    Some(OrderStatus::Rejected),
    Some(OrderStatus::Expired),
    Some(OrderStatus::Used),
];
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
}

/// Low enough that sequences reach them.
fn attempts() -> AttemptLimits {
    AttemptLimits {
        per_account: 6,
        per_applicant: 3,
        window: Duration::from_secs(3600),
    }
}

/// A valid ID number for person `n` (GB 11643 check character).
fn id_number(n: usize) -> IdNumber {
    let body = format!("44190019900307{:03}", n);
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(weights)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
    IdNumber::parse(&format!("{body}{check}")).unwrap()
}

/// SQLite, the Redis backends compared with it (one Redis, a Redis Cluster), and the sequence
/// so far, to say what led to a difference.
struct Pair {
    sqlite: Arc<dyn AllStores>,
    redis: Vec<(&'static str, Arc<dyn AllStores>)>,
    seed: u64,
    log: Vec<String>,
}

impl Pair {
    fn differ(&self, what: &str, sqlite: &dyn Debug, name: &str, redis: &dyn Debug) -> ! {
        let steps: Vec<String> = self
            .log
            .iter()
            .enumerate()
            .map(|(i, s)| format!("  {i:3}: {s}"))
            .collect();
        panic!(
            "backends differ (DIFFERENTIAL_SEED={} DIFFERENTIAL_RUNS=1) at {what}\n  sqlite: {sqlite:?}\n  {name}: {redis:?}\nsequence:\n{}",
            self.seed,
            steps.join("\n")
        );
    }
}

/// Runs the same call on every store and insists on the same answer.
macro_rules! same {
    ($pair:expr, $what:expr, |$s:ident| $call:expr) => {{
        let sqlite = {
            let $s = &$pair.sqlite;
            $call.await.expect("sqlite call")
        };
        for (name, $s) in &$pair.redis {
            let redis = $call.await.expect(name);
            if sqlite != redis {
                $pair.differ(&$what, &sqlite, name, &redis);
            }
        }
        sqlite
    }};
}

/// What the generator knows of the world (ids it handed out), not what the stores hold.
struct World {
    rng: StdRng,
    now: DateTime<Utc>,
    appointments: Vec<(String, AppointmentCode)>,
    orders: Vec<String>,
    numbers: Vec<ReceiptNo>,
    notifications: Vec<(String, String)>,
    serial: u64,
}

impl World {
    fn next(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!("{prefix}{}", self.serial)
    }

    fn code(&mut self) -> AppointmentCode {
        let text: String = (0..8)
            .map(|_| char::from(CODE_ALPHABET[self.rng.random_range(0..CODE_ALPHABET.len())]))
            .collect();
        AppointmentCode::parse(&text).unwrap()
    }

    fn notice(&mut self, tag: &str, user: &str, key: String) -> Notification {
        let id = self.next("n");
        self.notifications.push((tag.to_owned(), id.clone()));
        Notification {
            id,
            key,
            user_id: user.to_owned(),
            event: Event::BookingConfirmed,
            fields: Default::default(),
            not_before: self.now,
        }
    }
}

fn pick<T: Clone>(rng: &mut StdRng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[rng.random_range(0..items.len())].clone())
}

fn appointment(
    world: &mut World,
    user: usize,
    person: usize,
    slot: &SlotId,
    code: AppointmentCode,
) -> Appointment {
    let china = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let starts_at = china
        .from_local_datetime(&slot.date.and_time(slot.start))
        .unwrap()
        .to_utc();
    Appointment {
        id: world.next("a"),
        code,
        ..booked_appointment(
            &format!("u{user}"),
            &person.to_string(),
            slot.clone(),
            starts_at,
            id_number(person).masked(),
            world.now,
        )
    }
}

async fn book(pair: &mut Pair, world: &mut World) {
    let (user, person) = (
        world.rng.random_range(0..USERS),
        world.rng.random_range(0..PEOPLE),
    );
    let slot = SlotId::parse(SLOTS[world.rng.random_range(0..SLOTS.len())]).unwrap();
    // Now and then a code that is taken already, as a collision of random codes would be.
    let reused = if world.rng.random_bool(0.15) {
        pick(&mut world.rng, &world.appointments).map(|(_, c)| c)
    } else {
        None
    };
    let code = reused.unwrap_or_else(|| world.code());
    let a = appointment(world, user, person, &slot, code);
    let idempotency = world.rng.random_bool(0.3).then(|| IdempotencyKey {
        key: format!("k{}", world.rng.random_range(0..2)),
        body_hash: format!("{person}-{slot:?}"),
        ttl: Duration::from_secs(86400),
    });
    let tag = hall_tag(&a.slot.hall);
    let notices = Notices {
        send: vec![
            world.notice(&tag, &a.user_id, format!("confirmed:{}", a.id)),
            world.notice(&tag, &a.user_id, format!("reminder:{}", a.id)),
        ],
        withdraw: Vec::new(),
    };
    world.appointments.push((a.id.clone(), a.code.clone()));
    let booking = NewBooking {
        no_show_at: a.ends_at + chrono::Duration::minutes(30),
        capacity: 2,
        max_active: 2,
        attempts: attempts(),
        now: world.now,
        idempotency,
        caller: None,
        notices,
        appointment: a,
    };
    pair.log.push(format!(
        "book {} user u{user} person p{person} slot {} code {} idempotency {:?} at {}",
        booking.appointment.id,
        booking.appointment.slot.time_key(),
        booking.appointment.code.as_str(),
        booking.idempotency.as_ref().map(|i| &i.key),
        world.now
    ));
    same!(pair, "book", |s| s.book(booking.clone()));
}

/// Reads an appointment from both (they must agree) and moves it by `step`, from its status
/// or, now and then, from a status it no longer has (a lost race).
async fn transition(pair: &mut Pair, world: &mut World, step: Step) {
    let Some((id, _)) = pick(&mut world.rng, &world.appointments) else {
        return;
    };
    let Some(current) = same!(pair, format!("read {id}"), |s| s.appointment(&id)) else {
        return;
    };
    let Ok(next) = current.after(step.clone(), "staff:s1", world.now) else {
        return;
    };
    let from = if world.rng.random_bool(0.1) {
        Status::CheckedIn
    } else {
        current.status
    };
    let notices = Notices {
        send: vec![world.notice(
            &hall_tag(&next.slot.hall),
            &next.user_id,
            format!("{:?}:{id}", next.status),
        )],
        withdraw: vec![format!("reminder:{id}")],
    };
    pair.log.push(format!(
        "transition {id} {:?} -> {:?} at {}",
        from, next.status, world.now
    ));
    let now = world.now;
    same!(pair, "transition", |s| s.transition(
        from,
        &next,
        &notices,
        no_show_policy(),
        now
    ));
}

/// Staff lift the ban a no-show helped earn (or find it is not a no-show, or lifted already).
async fn lift(pair: &mut Pair, world: &mut World) {
    let Some((id, _)) = pick(&mut world.rng, &world.appointments) else {
        return;
    };
    let Some(current) = same!(pair, format!("read {id}"), |s| s.appointment(&id)) else {
        return;
    };
    let Ok(lifted) = current.lifted("staff:s1", "到场未签到", world.now) else {
        return;
    };
    pair.log.push(format!("lift ban of {id} at {}", world.now));
    let now = world.now;
    same!(pair, "lift", |s| s.lift_ban(&lifted, no_show_policy(), now));
}

async fn sweep(pair: &mut Pair, world: &mut World) {
    let now = world.now;
    pair.log.push(format!("sweep at {now}"));
    let due = same!(pair, "due_no_shows", |s| s.due_no_shows(now, 3));
    for id in due.ids {
        let current = same!(pair, format!("read {id}"), |s| s.appointment(&id)).unwrap();
        let next = current.after(Step::NoShow, "system", now).unwrap();
        let notices = Notices {
            send: Vec::new(),
            withdraw: vec![format!("reminder:{id}")],
        };
        same!(pair, format!("no-show {id}"), |s| s.transition(
            Status::Booked,
            &next,
            &notices,
            no_show_policy(),
            now
        ));
    }
}

fn random_step(world: &mut World) -> Step {
    match world.rng.random_range(0..5) {
        0 => Step::Accept {
            fee_yuan: 20,
            delivery: if world.rng.random_bool(0.5) {
                Delivery::Pickup
            } else {
                Delivery::parse("ems", Some("东莞市东城区某路1号")).unwrap()
            },
        },
        1 => Step::StartProduction,
        2 => Step::Ship {
            ems_no: EmsNumber::parse("EA123456789CN").unwrap(),
        },
        3 => Step::ReadyForPickup,
        _ => Step::Collect,
    }
}

fn photo(attempt: u32) -> Photo {
    Photo {
        attempt,
        upload: None,
        report: serde_json::json!({}),
        background_whitened: true,
        note: None,
    }
}

async fn order(pair: &mut Pair, world: &mut World) {
    let user = world.rng.random_range(0..USERS);
    let person = world.rng.random_range(0..PEOPLE);
    let order = ReceiptOrder::new(
        world.next("o"),
        format!("u{user}"),
        OrderForm {
            spec: "id-card".into(),
            document_zh: "居民身份证".into(),
            region: Region::Guangdong,
            name: PersonName::parse("张三").unwrap(),
            id_number: id_number(person),
        },
        &IdHasher::new("differential-key".into()),
        photo(1),
        world.now,
    );
    world.orders.push(order.id.clone());
    pair.log.push(format!(
        "order {} user u{user} person p{person} at {}",
        order.id, world.now
    ));
    same!(pair, "insert order", |s| s.insert_receipt_order(&order));
}

/// Reads an order from both; they must agree.
async fn read_order(pair: &mut Pair, world: &mut World) -> Option<ReceiptOrder> {
    let id = pick(&mut world.rng, &world.orders)?;
    same!(pair, format!("read order {id}"), |s| s.receipt_order(&id))
}

async fn save(pair: &mut Pair, world: &mut World, order: &ReceiptOrder, notify: bool) {
    let notice = notify.then(|| {
        world.notice(
            "receipts",
            &order.user_id,
            format!("review:{}:{}", order.id, order.version),
        )
    });
    // Now and then the same change again: the second is made from a stale copy.
    let times = if world.rng.random_bool(0.1) { 2 } else { 1 };
    for _ in 0..times {
        pair.log.push(format!(
            "save order {} version {} {:?}",
            order.id,
            order.version,
            order.status_at(world.now)
        ));
        same!(pair, "save order", |s| s
            .save_receipt_order(order, notice.as_ref()));
    }
}

async fn review(pair: &mut Pair, world: &mut World) {
    let Some(mut order) = read_order(pair, world).await else {
        return;
    };
    let decision = if world.rng.random_bool(0.6) {
        // A small pool of numbers: two orders drawing the same one happens here.
        let no = pick(&mut world.rng, &world.numbers).unwrap();
        Decision::Approve {
            no,
            valid_for: chrono::Duration::hours(world.rng.random_range(1..48)),
        }
    } else {
        Decision::Reject {
            reasons: vec![RejectReason::Blurred],
            note: None,
        }
    };
    if order.decide(decision, "r1", world.now).is_ok() {
        save(pair, world, &order, true).await;
    }
}

async fn resubmit(pair: &mut Pair, world: &mut World) {
    let Some(mut order) = read_order(pair, world).await else {
        return;
    };
    let attempt = order.photo.attempt + 1;
    if order.resubmit(photo(attempt), world.now).is_ok() {
        save(pair, world, &order, false).await;
    }
}

async fn use_receipt(pair: &mut Pair, world: &mut World) {
    let Some(no) = pick(&mut world.rng, &world.numbers) else {
        return;
    };
    let Some((appointment, _)) = pick(&mut world.rng, &world.appointments) else {
        return;
    };
    let found = same!(pair, format!("order by number {}", no.as_str()), |s| s
        .receipt_order_by_no(&no));
    let Some(mut order) = found else {
        return;
    };
    let before = order.version;
    if order.mark_used(&appointment, world.now).is_ok() && order.version != before {
        save(pair, world, &order, false).await;
    }
}

async fn list_orders(pair: &mut Pair, world: &mut World) {
    let user = format!("u{}", world.rng.random_range(0..USERS));
    let status = pick(&mut world.rng, &STATUS_FILTERS).flatten();
    let after = match pick(&mut world.rng, &world.orders) {
        Some(id) if world.rng.random_bool(0.3) => {
            same!(pair, "read order", |s| s.receipt_order(&id)).map(|o| Cursor::after(&o))
        }
        _ => None,
    };
    let page = OrderPage {
        status,
        now: world.now,
        after,
        limit: world.rng.random_range(1..5),
    };
    pair.log.push(format!("list orders {user} {page:?}"));
    same!(pair, "user_receipt_orders", |s| s
        .user_receipt_orders(&user, &page));
}

/// Everything the store traits can read back, compared between the backends.
async fn compare_state(pair: &mut Pair, world: &mut World) {
    let now = world.now;
    pair.log.push(format!("compare state at {now}"));
    for (id, code) in world.appointments.clone() {
        same!(pair, format!("appointment {id}"), |s| s.appointment(&id));
        same!(
            pair,
            format!("appointment by code {}", code.as_str()),
            |s| s.appointment_by_code(&code)
        );
    }
    for user in 0..USERS {
        let user = format!("u{user}");
        same!(pair, format!("appointments of {user}"), |s| s
            .user_appointments(&user));
        for status in STATUS_FILTERS {
            let page = OrderPage {
                status,
                now,
                after: None,
                limit: 100,
            };
            same!(pair, format!("orders of {user} {status:?}"), |s| s
                .user_receipt_orders(&user, &page));
        }
    }
    for (hall, day) in DAYS {
        let date = NaiveDate::parse_from_str(day, "%Y%m%d").unwrap();
        same!(pair, format!("seats {hall} {day}"), |s| s
            .seats_taken(hall, date));
    }
    let far = now + chrono::Duration::days(365);
    same!(pair, "all booked by no-show time", |s| s
        .due_no_shows(far, 1000));
    for id in world.orders.clone() {
        same!(pair, format!("order {id}"), |s| s.receipt_order(&id));
    }
    for no in world.numbers.clone() {
        same!(pair, format!("order by number {}", no.as_str()), |s| s
            .receipt_order_by_no(&no));
    }
    same!(pair, "review queue", |s| s.review_queue(1000));
    for (tag, id) in world.notifications.clone() {
        same!(pair, format!("outbox {tag} {id}"), |s| s
            .outbox_entry(&tag, &id));
    }
    // Bans and holds show only through booking: every account tries a booking for everyone,
    // each in a slot of its own, beyond every limit but the rules'.
    for user in 0..USERS {
        for person in 0..PEOPLE {
            let code = world.code();
            let slot = SlotId::parse(&format!("probe{user}{person}-20261202-0900")).unwrap();
            let a = appointment(world, user, person, &slot, code);
            let probe = NewBooking {
                no_show_at: a.ends_at,
                capacity: 1,
                max_active: 1000,
                attempts: AttemptLimits {
                    per_account: 1000,
                    per_applicant: 1000,
                    window: Duration::from_secs(1),
                },
                now,
                idempotency: None,
                caller: None,
                notices: Notices::default(),
                appointment: a,
            };
            same!(
                pair,
                format!("probe booking of p{person} by u{user}"),
                |s| s.book(probe.clone())
            );
        }
    }
}

async fn run(seed: u64, ops: u64) {
    let mut world = World {
        rng: StdRng::seed_from_u64(seed),
        now: start(),
        appointments: Vec::new(),
        orders: Vec::new(),
        numbers: Vec::new(),
        notifications: Vec::new(),
        serial: 0,
    };
    world.numbers = (0..3)
        .map(|_| ReceiptNo::generate(&mut world.rng))
        .collect();
    let mut pair = Pair {
        sqlite: SharedStore::fresh(Backend::Sqlite).await.open().await,
        redis: vec![
            (
                "redis",
                SharedStore::fresh(Backend::Redis).await.open().await,
            ),
            (
                "redis cluster",
                SharedStore::fresh(Backend::RedisCluster).await.open().await,
            ),
        ],
        seed,
        log: Vec::new(),
    };
    for _ in 0..ops {
        match world.rng.random_range(0..100) {
            0..30 => book(&mut pair, &mut world).await,
            30..38 => transition(&mut pair, &mut world, Step::Cancel).await,
            38..46 => transition(&mut pair, &mut world, Step::CheckIn).await,
            46..51 => {
                let step = random_step(&mut world);
                transition(&mut pair, &mut world, step).await
            }
            51..54 => lift(&mut pair, &mut world).await,
            54..62 => sweep(&mut pair, &mut world).await,
            62..70 => {
                let hours = world.rng.random_range(1..14);
                world.now += chrono::Duration::hours(hours);
                pair.log.push(format!("clock +{hours} h"));
            }
            70..78 => order(&mut pair, &mut world).await,
            78..86 => review(&mut pair, &mut world).await,
            86..91 => resubmit(&mut pair, &mut world).await,
            91..95 => use_receipt(&mut pair, &mut world).await,
            _ => list_orders(&mut pair, &mut world).await,
        }
    }
    compare_state(&mut pair, &mut world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_redis_and_a_redis_cluster_give_the_same_answers_and_keep_the_same_state() {
    let seed = env_or("DIFFERENTIAL_SEED", 1);
    let runs = env_or("DIFFERENTIAL_RUNS", 6);
    let ops = env_or("DIFFERENTIAL_OPS", 60);
    let started = std::time::Instant::now();
    for run_seed in seed..seed + runs {
        run(run_seed, ops).await;
    }
    println!(
        "differential: {runs} sequences × {ops} operations from seed {seed} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
