//! Booking on a Redis Cluster, spread per hall and taken in steps (issue 16): bookings for
//! different halls land on different masters, and a crash between any two steps (a fail
//! point stops the booking there) leaves nothing that recovery cannot settle: a voided
//! booking never appears, a completed one is complete, and the person can book again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use server::booking::appointment::{Appointment, Status, Step as Change};
use server::booking::schedule::SlotId;
use server::booking::store::{fail_points, BookOutcome, IdempotencyKey, NewBooking, Refusal, Step};
use server::notify::store::Notices;
use server::store::StoreError;
use tests::booking::{booked_appointment, new_booking, no_show_policy};
use tests::{AllStores, Backend, RedisCluster, SharedStore};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 1, 0, 0).unwrap()
}

/// Past every reservation of a booking made at [`start`].
fn later() -> DateTime<Utc> {
    start() + chrono::Duration::minutes(5)
}

fn appointment(user: &str, person: &str, slot: &str) -> Appointment {
    booked_appointment(
        user,
        person,
        SlotId::parse(slot).unwrap(),
        start() + chrono::Duration::days(1),
        "4419**********0011".into(),
        start(),
    )
}

/// A booking with the Idempotency-Key `k1` (`new_booking` books without one).
fn booking(appointment: Appointment, now: DateTime<Utc>) -> NewBooking {
    NewBooking {
        idempotency: Some(IdempotencyKey {
            key: "k1".into(),
            body_hash: "hmac:body".into(),
            ttl: Duration::from_secs(86400),
        }),
        ..new_booking(appointment, 1, now)
    }
}

const SLOT: &str = "dongcheng-20261202-0900";

async fn cluster_store() -> (Arc<dyn AllStores>, String) {
    let shared = SharedStore::fresh(Backend::RedisCluster).await;
    let SharedStore::RedisCluster { prefix, .. } = &shared else {
        unreachable!("a cluster store")
    };
    let prefix = prefix.clone();
    (shared.open().await, prefix)
}

/// Books `a` with the fail point after `step` set: the booking stops there, as if the server
/// died.
async fn book_until(s: &Arc<dyn AllStores>, prefix: &str, a: &Appointment, step: Step) {
    fail_points::stop_after(prefix, step);
    let stopped = s.book(booking(a.clone(), start())).await;
    fail_points::clear(prefix);
    assert!(
        matches!(stopped, Err(StoreError::Unavailable(_))),
        "stopped after {step:?}: {stopped:?}"
    );
}

/// Changes a booked appointment to `changed` with the fail point after the hall's step set:
/// the change stops there, its person step still owed, as if the server died.
async fn change_until_hall(s: &Arc<dyn AllStores>, prefix: &str, changed: &Appointment) {
    fail_points::stop_after(prefix, Step::Hall);
    let stopped = s
        .transition(
            Status::Booked,
            changed,
            &Notices::default(),
            no_show_policy(),
            later(),
        )
        .await;
    fail_points::clear(prefix);
    assert!(
        matches!(stopped, Err(StoreError::Unavailable(_))),
        "stopped after the hall step: {stopped:?}"
    );
}

/// What the person and the hall show of `a`.
async fn seen(s: &Arc<dyn AllStores>, a: &Appointment) -> (Option<Appointment>, Vec<String>, u32) {
    let mine = s.user_appointments(&a.user_id).await.unwrap();
    let seats = s
        .seats_taken(&a.slot.hall, a.slot.date)
        .await
        .unwrap()
        .get(&a.slot.time_key())
        .copied()
        .unwrap_or(0);
    (
        s.appointment(&a.id).await.unwrap(),
        mine.into_iter().map(|x| x.id).collect(),
        seats,
    )
}

/// Each step boundary of a booking: stopped there, recovered by the sweep, the booking is
/// either complete (the hall took the seat) or void, never half; then the person books again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_any_two_booking_steps_is_settled_by_the_sweep() {
    for step in [Step::Person, Step::Code, Step::Hall] {
        let (s, prefix) = cluster_store().await;
        let a = appointment("u1", "p1", SLOT);
        book_until(&s, &prefix, &a, step).await;
        assert_eq!(
            s.settle_interrupted(start()).await.unwrap(),
            0,
            "{step:?}: not expired yet"
        );
        assert_eq!(s.settle_interrupted(later()).await.unwrap(), 1, "{step:?}");
        assert_eq!(s.settle_interrupted(later()).await.unwrap(), 0, "{step:?}");
        let completed = step == Step::Hall;
        let expected = if completed {
            (Some(a.clone()), vec![a.id.clone()], 1)
        } else {
            (None, vec![], 0)
        };
        assert_eq!(seen(&s, &a).await, expected, "{step:?}");
        let again = appointment("u1", "p1", "dongcheng-20261202-0930");
        let rebooked = s.book(booking(again.clone(), later())).await.unwrap();
        if completed {
            // The request's answer was kept: its retry gets the booking; another is refused.
            assert_eq!(rebooked, BookOutcome::Replayed(Ok(a.id.clone())));
            let other = new_booking(again, 1, later());
            assert_eq!(
                s.book(other).await.unwrap(),
                BookOutcome::Refused(Refusal::AlreadyBooked)
            );
        } else {
            assert_eq!(
                rebooked,
                BookOutcome::Booked(Box::new(again.clone())),
                "{step:?}"
            );
            assert_eq!(
                seen(&s, &again).await,
                (Some(again.clone()), vec![again.id], 1)
            );
        }
    }
}

/// A client that got no answer retries with the same `Idempotency-Key` at once: its earlier
/// try is settled there and then (no waiting for the reservation to expire): it gets the
/// booking its first try made, or books afresh when that try never reached the hall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_key_settles_its_earlier_try_at_once() {
    for step in [Step::Person, Step::Code, Step::Hall] {
        let (s, prefix) = cluster_store().await;
        let a = appointment("u1", "p1", SLOT);
        book_until(&s, &prefix, &a, step).await;
        let retry = appointment("u1", "p1", SLOT);
        let answer = s.book(booking(retry.clone(), start())).await.unwrap();
        if step == Step::Hall {
            assert_eq!(answer, BookOutcome::Replayed(Ok(a.id.clone())));
            assert_eq!(seen(&s, &a).await, (Some(a.clone()), vec![a.id.clone()], 1));
        } else {
            assert_eq!(
                answer,
                BookOutcome::Booked(Box::new(retry.clone())),
                "{step:?}"
            );
            assert_eq!(seen(&s, &a).await.0, None, "{step:?}");
            assert_eq!(
                seen(&s, &retry).await,
                (Some(retry.clone()), vec![retry.id.clone()], 1)
            );
        }
        assert_eq!(s.settle_interrupted(later()).await.unwrap(), 0, "{step:?}");
    }
}

/// A hall step that comes after recovery voided its booking refuses: the voided booking
/// never appears, and its seat stays free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_hall_step_of_a_voided_booking_refuses() {
    let (s, prefix) = cluster_store().await;
    let a = appointment("u1", "p1", SLOT);
    book_until(&s, &prefix, &a, Step::Code).await;
    assert_eq!(s.settle_interrupted(later()).await.unwrap(), 1);
    // The same booking (same id) carried on: its person step passes again, its hall refuses.
    let late = new_booking(a.clone(), 1, start());
    assert!(matches!(
        s.book(late).await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(seen(&s, &a).await, (None, vec![], 0));
    let b = appointment("u1", "p1", SLOT);
    assert_eq!(
        s.book(booking(b.clone(), later())).await.unwrap(),
        BookOutcome::Booked(Box::new(b))
    );
}

/// Without a sweep, the person's next booking trips over what a crash left (an expired
/// reservation) and settles it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_booking_settles_an_expired_reservation() {
    let (s, prefix) = cluster_store().await;
    let a = appointment("u1", "p1", SLOT);
    book_until(&s, &prefix, &a, Step::Person).await;
    let b = appointment("u1", "p1", SLOT);
    let early = new_booking(b.clone(), 1, start());
    assert_eq!(
        s.book(early).await.unwrap(),
        BookOutcome::Refused(Refusal::AlreadyBooked),
        "the reservation holds the place until it expires"
    );
    assert_eq!(
        s.book(booking(b.clone(), later())).await.unwrap(),
        BookOutcome::Booked(Box::new(b.clone()))
    );
    assert_eq!(s.appointment(&a.id).await.unwrap(), None);
    assert_eq!(seen(&s, &b).await, (Some(b.clone()), vec![b.id.clone()], 1));
}

/// A status change that stopped after its hall step (the appointment there is the truth)
/// leaves the person's step it owes: the person's next booking runs it (the hold released, a
/// no-show counted) and goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_booking_releases_the_hold_of_an_ended_appointment() {
    for (change, seats) in [
        (Change::Cancel, 0),
        (Change::CheckIn, 1),
        (Change::NoShow, 1),
    ] {
        let (s, prefix) = cluster_store().await;
        let a = appointment("u1", "p1", SLOT);
        assert_eq!(
            s.book(booking(a.clone(), start())).await.unwrap(),
            BookOutcome::Booked(Box::new(a.clone()))
        );
        let ended = a.after(change.clone(), "staff", later()).unwrap();
        change_until_hall(&s, &prefix, &ended).await;
        assert_eq!(
            seen(&s, &a).await,
            (Some(ended), vec![a.id.clone()], seats),
            "{change:?}: the hall changed"
        );
        let b = appointment("u1", "p1", "dongcheng-20261202-0930");
        let next = new_booking(b.clone(), 1, later());
        assert_eq!(
            s.book(next).await.unwrap(),
            BookOutcome::Booked(Box::new(b.clone())),
            "{change:?}"
        );
        if change == Change::NoShow {
            // A second no-show reaches the limit (2) only if the first was counted.
            let missed = b.after(Change::NoShow, "system", later()).unwrap();
            let marked = s
                .transition(
                    Status::Booked,
                    &missed,
                    &Notices::default(),
                    no_show_policy(),
                    later(),
                )
                .await;
            assert!(marked.unwrap());
            let c = appointment("u1", "p1", "dongcheng-20261202-1000");
            let third = new_booking(c, 1, later());
            assert!(
                matches!(
                    s.book(third).await.unwrap(),
                    BookOutcome::Refused(Refusal::Banned { .. })
                ),
                "both no-shows counted"
            );
        }
    }
}

/// A no-show that stopped after its hall step, then lifted by staff: the lift runs the owed
/// step first (the hold released, the no-show counted), then forgives it, in that order, so a
/// later no-show alone does not ban. The sweep finds a step still owed by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owed_person_step_runs_before_a_later_change_and_by_the_sweep() {
    let (s, prefix) = cluster_store().await;
    let a = appointment("u1", "p1", SLOT);
    s.book(booking(a.clone(), start())).await.unwrap();
    let missed = a.after(Change::NoShow, "system", later()).unwrap();
    change_until_hall(&s, &prefix, &missed).await;
    let lifted = missed.lifted("staff", "ill", later()).unwrap();
    assert!(s
        .lift_ban(&lifted, no_show_policy(), later())
        .await
        .unwrap());
    assert_eq!(
        s.settle_interrupted(later()).await.unwrap(),
        0,
        "nothing owed"
    );

    let b = appointment("u1", "p1", "dongcheng-20261202-0930");
    let next = new_booking(b.clone(), 1, later());
    assert_eq!(
        s.book(next).await.unwrap(),
        BookOutcome::Booked(Box::new(b.clone())),
        "the hold was released"
    );
    // b's no-show stops after its hall step too; the sweep runs what it owes.
    let missed = b.after(Change::NoShow, "system", later()).unwrap();
    change_until_hall(&s, &prefix, &missed).await;
    assert_eq!(s.settle_interrupted(later()).await.unwrap(), 1);
    assert_eq!(s.settle_interrupted(later()).await.unwrap(), 0);
    let c = appointment("u1", "p1", "dongcheng-20261202-1000");
    let third = new_booking(c.clone(), 1, later());
    assert_eq!(
        s.book(third).await.unwrap(),
        BookOutcome::Booked(Box::new(c)),
        "one no-show counts (the lifted one does not): no ban"
    );
}

/// Bookings for different halls land on different masters: each hall's keys on one master,
/// the halls over all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_for_different_halls_land_on_different_masters() {
    let (s, prefix) = cluster_store().await;
    let halls: Vec<String> = (0..12).map(|n| format!("hall{n}")).collect();
    for (n, hall) in halls.iter().enumerate() {
        let a = appointment(&format!("u{n}"), "p1", &format!("{hall}-20261202-0900"));
        let outcome = s.book(booking(a.clone(), start())).await.unwrap();
        assert_eq!(outcome, BookOutcome::Booked(Box::new(a)));
    }
    let mut masters_of: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    let mut per_master = Vec::new();
    for (at, url) in RedisCluster::shared().await.node_urls().iter().enumerate() {
        let client = ::redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys = tests::redis_server::keys_under(&mut conn, &prefix).await;
        let mut hall_keys = 0;
        for key in keys {
            let Some(hall) = key
                .split_once("{booking-hall:")
                .and_then(|(_, rest)| rest.split_once('}'))
            else {
                continue;
            };
            hall_keys += 1;
            masters_of.entry(hall.0.to_owned()).or_default().insert(at);
        }
        per_master.push(hall_keys);
    }
    assert_eq!(masters_of.len(), halls.len(), "{masters_of:?}");
    assert!(
        masters_of.values().all(|masters| masters.len() == 1),
        "each hall on one master: {masters_of:?}"
    );
    // Per hall: the appointment, the seats, the no-show watch.
    assert_eq!(
        per_master.iter().sum::<usize>(),
        3 * halls.len(),
        "{per_master:?}"
    );
    assert!(
        per_master.iter().all(|keys| *keys > 0),
        "every master holds halls: {per_master:?}"
    );
}
