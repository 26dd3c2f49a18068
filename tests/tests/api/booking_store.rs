//! Conformance of `BookingStore`: the same rules, answers and side effects on SQLite and Redis.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use server::booking::appointment::{Appointment, Status, Step};
use server::booking::schedule::SlotId;
use server::booking::store::{
    hall_tag, AttemptLimits, BanScope, BookOutcome, DueNoShows, IdempotencyKey, NewBooking, Refusal,
};
use server::notify::store::{Notices, OutboxState};
use server::notify::{Event, Notification};
use tests::booking::{booked_appointment, new_booking, no_show_policy};
use tests::{on_every_backend, AllStores, Backend, SharedStore};

async fn store(backend: Backend) -> Arc<dyn AllStores> {
    SharedStore::fresh(backend).await.open().await
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 1, 0, 0).unwrap()
}

fn appointment(user: &str, person: &str, slot: &str) -> Appointment {
    booked_appointment(
        user,
        person,
        SlotId::parse(slot).unwrap(),
        start(),
        "4419**********0011".into(),
        start() - chrono::Duration::days(1),
    )
}

const SLOT: &str = "dongcheng-20261201-0900";

fn booking(appointment: Appointment, capacity: u32) -> NewBooking {
    let now = appointment.created_at;
    new_booking(appointment, capacity, now)
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
}

async fn books_counts_seats_and_finds_by_id_code_and_user(backend: Backend) {
    let s = store(backend).await;
    let a = appointment("u1", "p1", SLOT);
    assert_eq!(
        s.book(booking(a.clone(), 2)).await.unwrap(),
        BookOutcome::Booked(Box::new(a.clone()))
    );
    assert_eq!(s.seats_taken("dongcheng", day()).await.unwrap()["0900"], 1);
    assert_eq!(s.appointment(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        s.appointment_by_code(&a.code).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(s.appointment("nope").await.unwrap(), None);
    let mut b = appointment("u1", "p2", SLOT);
    b.created_at += chrono::Duration::seconds(1);
    s.book(booking(b.clone(), 2)).await.unwrap();
    let mine: Vec<String> = s
        .user_appointments("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(mine, vec![b.id.clone(), a.id.clone()], "newest first");
    assert!(s.user_appointments("u2").await.unwrap().is_empty());
}

/// A request's values reach Redis as values (`ARGV`), never as script text: quotes and Lua in
/// them are stored as they came.
async fn values_with_lua_in_them_are_stored_verbatim(backend: Backend) {
    let s = store(backend).await;
    let user = "u'] end redis.call('SET', 'injected', '1') --";
    let mut a = appointment(user, "p\"]]\\'", SLOT);
    a.id_hash = "--[[ ' \" ]]".into();
    assert_eq!(
        s.book(booking(a.clone(), 2)).await.unwrap(),
        BookOutcome::Booked(Box::new(a.clone()))
    );
    assert_eq!(s.appointment(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.user_appointments(user).await.unwrap(), vec![a]);
}

async fn every_rule_refuses_without_writing(backend: Backend) {
    let s = store(backend).await;
    s.book(booking(appointment("u1", "p1", SLOT), 1))
        .await
        .unwrap();
    let full = appointment("u2", "p2", SLOT);
    assert_eq!(
        s.book(booking(full.clone(), 1)).await.unwrap(),
        BookOutcome::Refused(Refusal::SlotFull)
    );
    assert_eq!(s.appointment(&full.id).await.unwrap(), None);
    assert_eq!(s.seats_taken("dongcheng", day()).await.unwrap()["0900"], 1);
    assert_eq!(
        s.book(booking(
            appointment("u1", "p1", "dongcheng-20261201-0930"),
            5
        ))
        .await
        .unwrap(),
        BookOutcome::Refused(Refusal::AlreadyBooked),
        "the same account's applicant in another slot"
    );
    for n in 2..=3 {
        let other = appointment("u1", &format!("q{n}"), "dongcheng-20261201-0930");
        assert!(matches!(
            s.book(booking(other, 5)).await.unwrap(),
            BookOutcome::Booked(_)
        ));
    }
    assert_eq!(
        s.book(booking(
            appointment("u1", "q4", "dongcheng-20261201-0930"),
            5
        ))
        .await
        .unwrap(),
        BookOutcome::Refused(Refusal::TooManyActive)
    );
    let mut clash = appointment("u9", "p9", "dongcheng-20261201-1000");
    let existing = s.user_appointments("u1").await.unwrap().pop().unwrap();
    clash.code = existing.code.clone();
    assert_eq!(
        s.book(booking(clash, 5)).await.unwrap(),
        BookOutcome::CodeTaken
    );
    let mut refused_clash = appointment("u1", "q5", "dongcheng-20261201-1000");
    refused_clash.code = existing.code;
    assert_eq!(
        s.book(booking(refused_clash, 5)).await.unwrap(),
        BookOutcome::Refused(Refusal::TooManyActive),
        "the rules come before the code"
    );
}

async fn idempotency_replays_answers_and_refuses_other_bodies(backend: Backend) {
    let s = store(backend).await;
    let key = |hash: &str| IdempotencyKey {
        key: "k1".into(),
        body_hash: hash.into(),
        ttl: Duration::from_secs(86400),
    };
    let a = appointment("u1", "p1", SLOT);
    let mut first = booking(a.clone(), 1);
    first.idempotency = Some(key("h1"));
    assert_eq!(
        s.book(first).await.unwrap(),
        BookOutcome::Booked(Box::new(a.clone()))
    );
    let mut again = booking(appointment("u1", "p1", SLOT), 1);
    again.idempotency = Some(key("h1"));
    assert_eq!(
        s.book(again).await.unwrap(),
        BookOutcome::Replayed(Ok(a.id.clone()))
    );
    let mut other = booking(appointment("u1", "p5", SLOT), 1);
    other.idempotency = Some(key("h2"));
    assert_eq!(
        s.book(other).await.unwrap(),
        BookOutcome::IdempotencyMismatch
    );
    assert_eq!(s.seats_taken("dongcheng", day()).await.unwrap()["0900"], 1);

    // A refusal is remembered too: the same request gets the same answer.
    let mut refused = booking(appointment("u2", "p2", SLOT), 1);
    refused.idempotency = Some(key("h3"));
    assert_eq!(
        s.book(refused).await.unwrap(),
        BookOutcome::Refused(Refusal::SlotFull)
    );
    let mut retry = booking(appointment("u2", "p2", SLOT), 5);
    retry.idempotency = Some(key("h3"));
    assert_eq!(
        s.book(retry).await.unwrap(),
        BookOutcome::Replayed(Err(Refusal::SlotFull))
    );
}

async fn cancel_frees_the_seat_and_the_person_and_is_compare_and_set(backend: Backend) {
    let s = store(backend).await;
    let a = appointment("u1", "p1", SLOT);
    s.book(booking(a.clone(), 1)).await.unwrap();
    let cancelled = a.after(Step::Cancel, "user", start()).unwrap();
    assert!(moved(&s, Status::Booked, &cancelled, start()).await);
    assert!(
        !moved(&s, Status::Booked, &cancelled, start()).await,
        "a second cancel finds it changed"
    );
    assert_eq!(s.seats_taken("dongcheng", day()).await.unwrap()["0900"], 0);
    assert_eq!(
        s.appointment(&a.id).await.unwrap().unwrap().status,
        Status::Cancelled
    );
    let again = appointment("u1", "p1", SLOT);
    assert!(matches!(
        s.book(booking(again, 1)).await.unwrap(),
        BookOutcome::Booked(_)
    ));
}

async fn check_in_keeps_the_seat_but_ends_the_active_hold(backend: Backend) {
    let s = store(backend).await;
    let a = appointment("u1", "p1", SLOT);
    s.book(booking(a.clone(), 1)).await.unwrap();
    let checked_in = a.after(Step::CheckIn, "staff:s", start()).unwrap();
    assert!(moved(&s, Status::Booked, &checked_in, start()).await);
    assert_eq!(s.seats_taken("dongcheng", day()).await.unwrap()["0900"], 1);
    assert_eq!(
        s.due_no_shows(start() + chrono::Duration::days(1), 10)
            .await
            .unwrap(),
        DueNoShows::default()
    );
    let next_time = appointment("u1", "p1", "dongcheng-20261201-0930");
    assert!(matches!(
        s.book(booking(next_time, 1)).await.unwrap(),
        BookOutcome::Booked(_)
    ));
}

async fn two_no_shows_in_the_window_ban_the_person(backend: Backend) {
    let s = store(backend).await;
    let mut now = start() + chrono::Duration::hours(2);
    for (round, slot) in ["dongcheng-20261201-0900", "dongcheng-20261201-0930"]
        .iter()
        .enumerate()
    {
        let a = appointment("u1", "p1", slot);
        let new = booking(a.clone(), 5);
        let no_show_at = new.no_show_at;
        s.book(new).await.unwrap();
        assert_eq!(
            s.due_no_shows(a.ends_at, 10).await.unwrap(),
            DueNoShows {
                ids: vec![],
                next_at: Some(no_show_at)
            },
            "not yet due, and when it will be"
        );
        assert_eq!(
            s.due_no_shows(now, 10).await.unwrap(),
            DueNoShows {
                ids: vec![a.id.clone()],
                next_at: None
            }
        );
        let missed = a.after(Step::NoShow, "system", now).unwrap();
        assert!(moved(&s, Status::Booked, &missed, now).await);
        assert_eq!(
            s.due_no_shows(now, 10).await.unwrap(),
            DueNoShows::default()
        );
        now += chrono::Duration::minutes(1);
        let next = appointment("u1", "p1", "dongcheng-20261201-1000");
        let mut attempt = booking(next, 5);
        attempt.now = now;
        let outcome = s.book(attempt).await.unwrap();
        if round == 0 {
            assert!(
                matches!(outcome, BookOutcome::Booked(_)),
                "one no-show is no ban"
            );
            let booked = s
                .user_appointments("u1")
                .await
                .unwrap()
                .into_iter()
                .find(|a| a.status == Status::Booked)
                .unwrap();
            let cancelled = booked.after(Step::Cancel, "user", now).unwrap();
            assert!(moved(&s, Status::Booked, &cancelled, now).await);
        } else {
            let until = now - chrono::Duration::minutes(1) + chrono::Duration::days(90);
            let scope = BanScope::Applicant;
            assert_eq!(
                outcome,
                BookOutcome::Refused(Refusal::Banned { until, scope })
            );
        }
    }
    let other = appointment("u1", "p2", "dongcheng-20261201-1000");
    assert!(
        matches!(
            s.book(booking(other, 5)).await.unwrap(),
            BookOutcome::Booked(_)
        ),
        "only that person"
    );
    let elsewhere = appointment("u2", "p1", "dongcheng-20261201-1000");
    assert!(
        matches!(
            s.book(booking(elsewhere, 5)).await.unwrap(),
            BookOutcome::Booked(_)
        ),
        "and only for that account"
    );
}

/// Books `person` for `user` in `slot` at `now` and lets it become a no-show.
async fn miss(s: &Arc<dyn AllStores>, user: &str, person: &str, slot: &str) -> Appointment {
    let a = appointment(user, person, slot);
    assert!(matches!(
        s.book(booking(a.clone(), 50)).await.unwrap(),
        BookOutcome::Booked(_)
    ));
    let now = start() + chrono::Duration::hours(2);
    let missed = a.after(Step::NoShow, "system", now).unwrap();
    assert!(moved(s, Status::Booked, &missed, now).await);
    missed
}

/// Lost updates: the retention sweep and a ban lift each read the same missed appointment and
/// store their change of it; whichever stores second finds it changed and stores nothing, in
/// either order (the lift's record and the anonymisation both survive).
async fn anonymising_and_a_ban_lift_from_the_same_copy_cannot_both_win(backend: Backend) {
    let s = store(backend).await;
    let now = start() + chrono::Duration::days(100);
    for (person, slot, lift_first) in [
        ("p1", "dongcheng-20261201-0900", true),
        ("p2", "dongcheng-20261201-1000", false),
    ] {
        let read = miss(&s, "u1", person, slot).await;
        let lifted = read.lifted("staff:s1", "到场未签到", now).unwrap();
        let anonymised = read.anonymised(now);
        let (first, second) = if lift_first {
            (
                s.lift_ban(&lifted, no_show_policy(), now).await,
                s.anonymise(&anonymised).await,
            )
        } else {
            let anonymised_first = s.anonymise(&anonymised).await;
            (
                anonymised_first,
                s.lift_ban(&lifted, no_show_policy(), now).await,
            )
        };
        assert!(first.unwrap(), "the first change is stored");
        assert!(!second.unwrap(), "the change made from the old copy is not");
        let stored = s.appointment(&read.id).await.unwrap().unwrap();
        assert_eq!(stored, if lift_first { lifted } else { anonymised });
        // The next sweep reads the stored copy again and anonymises what the lift recorded.
        if lift_first {
            let again = stored.anonymised(now);
            assert!(s.anonymise(&again).await.unwrap());
            let kept = s.appointment(&read.id).await.unwrap().unwrap();
            assert!(kept.ban_lift.is_some() && kept.anonymised_at.is_some());
        }
    }
}

async fn book_at(
    s: &Arc<dyn AllStores>,
    user: &str,
    person: &str,
    now: DateTime<Utc>,
) -> BookOutcome {
    let mut attempt = booking(appointment(user, person, "dongcheng-20261201-1100"), 50);
    attempt.now = now;
    s.book(attempt).await.unwrap()
}

async fn holds_and_bans_are_per_account_and_a_lift_forgives_a_no_show(backend: Backend) {
    let s = store(backend).await;
    let now = start() + chrono::Duration::hours(3);
    let until = start() + chrono::Duration::hours(2) + chrono::Duration::days(90);
    // A stranger (u9) books p1 and misses twice: banned for p1, only u9.
    miss(&s, "u9", "p1", "dongcheng-20261201-0900").await;
    let second = miss(&s, "u9", "p1", "dongcheng-20261201-0930").await;
    let scope = BanScope::Applicant;
    assert_eq!(
        book_at(&s, "u9", "p1", now).await,
        BookOutcome::Refused(Refusal::Banned { until, scope })
    );
    assert!(matches!(
        book_at(&s, "u1", "p1", now).await,
        BookOutcome::Booked(_)
    ));
    // A third no-show of u9 (another applicant) bars the account: 3 is its limit here.
    miss(&s, "u9", "p2", "dongcheng-20261201-1000").await;
    let scope = BanScope::Account;
    assert_eq!(
        book_at(&s, "u9", "p3", now).await,
        BookOutcome::Refused(Refusal::Banned { until, scope })
    );
    // Staff forgive the second no-show of p1: both bans fall below their limits.
    let lifted = second.lifted("staff:s1", "到场未签到", now).unwrap();
    assert!(s.lift_ban(&lifted, no_show_policy(), now).await.unwrap());
    assert!(
        !s.lift_ban(&lifted, no_show_policy(), now).await.unwrap(),
        "once per appointment"
    );
    assert_eq!(s.appointment(&second.id).await.unwrap(), Some(lifted));
    assert!(matches!(
        book_at(&s, "u9", "p1", now).await,
        BookOutcome::Booked(_)
    ));
}

async fn attempts_are_counted_per_account_and_applicant_in_fixed_windows(backend: Backend) {
    let s = store(backend).await;
    let limits = AttemptLimits {
        per_account: 4,
        per_applicant: 2,
        window: Duration::from_secs(600),
    };
    let now = start();
    let window_ends = start() + chrono::Duration::minutes(10);
    let attempt = |user: &str, person: &str, at: DateTime<Utc>| {
        let mut new = booking(appointment(user, person, SLOT), 0);
        new.attempts = limits;
        new.now = at;
        new
    };
    // Refused attempts count as well (the slot has no seat).
    for _ in 0..2 {
        assert_eq!(
            s.book(attempt("u1", "p1", now)).await.unwrap(),
            BookOutcome::Refused(Refusal::SlotFull)
        );
    }
    let throttled = BookOutcome::Throttled { until: window_ends };
    assert_eq!(s.book(attempt("u1", "p1", now)).await.unwrap(), throttled);
    assert_eq!(
        s.book(attempt("u1", "p2", now)).await.unwrap(),
        BookOutcome::Refused(Refusal::SlotFull)
    );
    assert_eq!(s.book(attempt("u1", "p3", now)).await.unwrap(), throttled);
    assert_eq!(
        s.book(attempt("u2", "p1", now)).await.unwrap(),
        BookOutcome::Refused(Refusal::SlotFull),
        "another account counts apart"
    );
    assert_eq!(
        s.book(attempt("u1", "p1", window_ends)).await.unwrap(),
        BookOutcome::Refused(Refusal::SlotFull),
        "the next window starts afresh"
    );
}

async fn due_no_shows_come_in_batches_earliest_first(backend: Backend) {
    let s = store(backend).await;
    let mut booked = Vec::new();
    for (person, minutes) in [("p1", 30), ("p2", 10), ("p3", 20), ("p4", 90)] {
        let mut new = booking(appointment(&format!("u{person}"), person, SLOT), 10);
        new.no_show_at = start() + chrono::Duration::minutes(minutes);
        booked.push((new.appointment.id.clone(), new.no_show_at));
        s.book(new).await.unwrap();
    }
    let id = |i: usize| booked[i].0.clone();
    let at = |i: usize| Some(booked[i].1);
    let now = start() + chrono::Duration::minutes(60);
    assert_eq!(
        s.due_no_shows(now, 10).await.unwrap(),
        DueNoShows {
            ids: vec![id(1), id(2), id(0)],
            next_at: at(3)
        }
    );
    assert_eq!(
        s.due_no_shows(now, 2).await.unwrap(),
        DueNoShows {
            ids: vec![id(1), id(2)],
            next_at: at(0)
        },
        "more are due than asked for: the next is already due"
    );
    assert_eq!(
        s.due_no_shows(start(), 10).await.unwrap(),
        DueNoShows {
            ids: vec![],
            next_at: at(1)
        }
    );
}

/// A transition that notifies nobody.
async fn moved(
    s: &Arc<dyn AllStores>,
    from: Status,
    next: &Appointment,
    now: DateTime<Utc>,
) -> bool {
    s.transition(from, next, &Notices::default(), no_show_policy(), now)
        .await
        .unwrap()
}

fn notice(appointment: &Appointment, key: &str) -> Notification {
    Notification {
        id: uuid::Uuid::new_v4().simple().to_string(),
        key: format!("{key}:{}", appointment.id),
        user_id: appointment.user_id.clone(),
        event: Event::BookingConfirmed,
        fields: Default::default(),
        not_before: start(),
    }
}

async fn outbox_state(s: &Arc<dyn AllStores>, n: &Notification) -> Option<OutboxState> {
    s.outbox_entry(&hall_tag("dongcheng"), &n.id)
        .await
        .unwrap()
        .map(|e| e.state)
}

async fn notices_are_written_with_the_change_and_only_with_it(backend: Backend) {
    let s = store(backend).await;
    let a = appointment("u1", "p1", SLOT);
    let (confirmed, reminder) = (notice(&a, "confirmed"), notice(&a, "reminder"));
    let mut first = booking(a.clone(), 1);
    first.notices.send = vec![confirmed.clone(), reminder.clone()];
    assert!(matches!(
        s.book(first).await.unwrap(),
        BookOutcome::Booked(_)
    ));
    assert_eq!(
        outbox_state(&s, &confirmed).await,
        Some(OutboxState::Pending)
    );
    assert_eq!(
        outbox_state(&s, &reminder).await,
        Some(OutboxState::Pending)
    );

    let refused = appointment("u2", "p2", SLOT);
    let unsent = notice(&refused, "confirmed");
    let mut full = booking(refused, 1);
    full.notices.send = vec![unsent.clone()];
    assert_eq!(
        s.book(full).await.unwrap(),
        BookOutcome::Refused(Refusal::SlotFull)
    );
    assert_eq!(
        outbox_state(&s, &unsent).await,
        None,
        "a refusal notifies nobody"
    );

    let cancelled = a.after(Step::Cancel, "user", start()).unwrap();
    let said = notice(&a, "cancelled");
    // A notice whose key is written already is left out, and the others are written.
    let again = notice(&a, "confirmed");
    let notices = Notices {
        send: vec![again.clone(), said.clone()],
        withdraw: vec![reminder.key.clone()],
    };
    assert!(s
        .transition(
            Status::Booked,
            &cancelled,
            &notices,
            no_show_policy(),
            start()
        )
        .await
        .unwrap());
    assert_eq!(outbox_state(&s, &said).await, Some(OutboxState::Pending));
    assert_eq!(outbox_state(&s, &again).await, None, "one entry per key");
    assert_eq!(
        outbox_state(&s, &reminder).await,
        Some(OutboxState::Cancelled)
    );
    assert_eq!(
        outbox_state(&s, &confirmed).await,
        Some(OutboxState::Pending)
    );

    let late = notice(&a, "late");
    let stale = Notices {
        send: vec![late.clone()],
        withdraw: vec![],
    };
    assert!(!s
        .transition(
            Status::Booked,
            &cancelled,
            &stale,
            no_show_policy(),
            start()
        )
        .await
        .unwrap());
    assert_eq!(
        outbox_state(&s, &late).await,
        None,
        "a lost race notifies nobody"
    );
}

on_every_backend!(
    notices_are_written_with_the_change_and_only_with_it,
    books_counts_seats_and_finds_by_id_code_and_user,
    values_with_lua_in_them_are_stored_verbatim,
    every_rule_refuses_without_writing,
    idempotency_replays_answers_and_refuses_other_bodies,
    cancel_frees_the_seat_and_the_person_and_is_compare_and_set,
    check_in_keeps_the_seat_but_ends_the_active_hold,
    two_no_shows_in_the_window_ban_the_person,
    holds_and_bans_are_per_account_and_a_lift_forgives_a_no_show,
    anonymising_and_a_ban_lift_from_the_same_copy_cannot_both_win,
    attempts_are_counted_per_account_and_applicant_in_fixed_windows,
    per_number_rules_move_to_their_accounts,
    due_no_shows_come_in_batches_earliest_first,
);

/// Rewinds what `shared` holds to the layout from before issue 15: the hold, the no-shows and
/// the ban kept per ID number alone (SQLite: the old tables, migration 1511 not applied;
/// Redis: `person:<hash>:…` keys).
async fn to_the_old_layout(shared: &SharedStore) {
    match shared {
        SharedStore::Sqlite(dir) => {
            let conn = rusqlite::Connection::open(dir.path().join("banzheng.db")).unwrap();
            conn.execute_batch(
                "CREATE TABLE person_no_shows (appointment_id TEXT PRIMARY KEY,
                   id_hash TEXT NOT NULL, at INTEGER NOT NULL);
                 INSERT INTO person_no_shows SELECT appointment_id, id_hash, at FROM no_shows;
                 CREATE TABLE person_bans (id_hash TEXT PRIMARY KEY, until INTEGER NOT NULL);
                 INSERT INTO person_bans SELECT id_hash, until FROM booking_bans WHERE id_hash != '';
                 DROP TABLE no_shows; DROP TABLE booking_bans; DROP TABLE booking_attempts;
                 DROP INDEX appointments_one_active_per_applicant;
                 CREATE UNIQUE INDEX appointments_one_active_per_person ON appointments (id_hash)
                   WHERE status = 'booked';
                 DELETE FROM schema_migrations WHERE version = 1511;",
            )
            .unwrap();
        }
        SharedStore::Redis { prefix, .. } | SharedStore::RedisCluster { prefix, .. } => {
            let old = |rest: &str| format!("{prefix}:{{booking}}:{rest}");
            let user = |user: &str, rest: &str| format!("{prefix}:{{booking-user:{user}}}:{rest}");
            let mut conn = shared.redis_conn().await;
            let mut moves = vec![(
                user("u1", "applicant:hash-p1:active"),
                old("person:hash-p1:active"),
            )];
            for what in ["no_shows", "ban"] {
                moves.push((
                    user("u2", &format!("applicant:hash-p2:{what}")),
                    old(&format!("person:hash-p2:{what}")),
                ));
            }
            // The old keys are on another slot than the new: moved by value, expiry kept.
            for (from, to) in moves {
                tests::move_key(&mut conn, &from, &to).await;
            }
            let () = ::redis::AsyncCommands::del(&mut conn, user("u2", "no_shows"))
                .await
                .unwrap();
        }
    }
}

/// Stores from before issue 15 kept the hold, the no-shows and the ban per ID number alone;
/// they move to the accounts whose appointments they came from (SQLite: migration 1511;
/// Redis: at start-up, the old keys deleted).
async fn per_number_rules_move_to_their_accounts(backend: Backend) {
    let shared = SharedStore::fresh(backend).await;
    {
        // What the old layout held: u1's booking of p1, u2's two no-shows and ban for p2.
        let s = shared.open().await;
        s.book(booking(appointment("u1", "p1", SLOT), 5))
            .await
            .unwrap();
        miss(&s, "u2", "p2", "dongcheng-20261201-0900").await;
        miss(&s, "u2", "p2", "dongcheng-20261201-0930").await;
    }
    to_the_old_layout(&shared).await;

    let s = shared.open().await;
    let moved = s
        .carry_person_rules_to_accounts(no_show_policy())
        .await
        .unwrap();
    assert_eq!(moved, if backend == Backend::Sqlite { 0 } else { 2 });
    let now = start() + chrono::Duration::hours(3);
    assert_eq!(
        book_at(&s, "u1", "p1", now).await,
        BookOutcome::Refused(Refusal::AlreadyBooked)
    );
    let until = start() + chrono::Duration::hours(2) + chrono::Duration::days(90);
    let scope = BanScope::Applicant;
    assert_eq!(
        book_at(&s, "u2", "p2", now).await,
        BookOutcome::Refused(Refusal::Banned { until, scope })
    );
    assert!(matches!(
        book_at(&s, "u3", "p2", now).await,
        BookOutcome::Booked(_)
    ));
    assert_eq!(
        s.carry_person_rules_to_accounts(no_show_policy())
            .await
            .unwrap(),
        0
    );
}
