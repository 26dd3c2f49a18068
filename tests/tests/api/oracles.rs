//! No oracles (issue 15): another WeChat account learns nothing about a person's ID number,
//! bookings or bans from any answer, and cannot block or ban them; booking attempts are
//! limited per account and per account's applicant; staff lift a wrongly earned ban, on the
//! record; the slot-list cache stays bounded. Over HTTP, on SQLite and on Redis.

use chrono::NaiveDate;
use serde_json::{json, Value};
use server::admin::Role;
use server::receipts::ReceiptNo;
use tests::booking::{
    applicant, bookable_weekday, bookable_weekday_through, open_weekday_after, seconds_until,
    slot_id,
};
use tests::{assert_error, json, on_both_backends, Backend, SharedStore, TestApp};

fn booking(slot: &str, person: Value) -> Value {
    json!({"slot_id": slot, "service": "expiry_renewal", "applicant": person})
}

/// What a client can tell from an answer: its status and, for a refusal, its code and
/// message (the request id aside, which differs per request anyway).
async fn seen(response: reqwest::Response) -> String {
    let status = response.status().as_u16();
    if status < 400 {
        return status.to_string();
    }
    let body = json(response).await;
    format!("{status} {} {}", body["code"], body["message"])
}

/// The app's clock, moved forward only, to a local time on a day.
struct Clock {
    advanced: i64,
}

impl Clock {
    async fn to(&mut self, app: &TestApp, day: NaiveDate, time: &str) {
        let step = seconds_until(day, time) - self.advanced;
        assert!(step > 0, "{day} {time} is in the app's past");
        app.advance_clock(step).await;
        self.advanced += step;
    }
}

/// Three open weekdays in a row from the first bookable one, and a clock to move through them.
fn three_days() -> (Clock, [NaiveDate; 3]) {
    let day1 = bookable_weekday();
    let day2 = open_weekday_after(day1);
    (
        Clock { advanced: 0 },
        [day1, day2, open_weekday_after(day2)],
    )
}

/// `openid` books each of `people` at 09:00 on `day` (an open weekday) and misses them all:
/// the clock moves past the grace. Returns the appointments' codes.
async fn miss(
    app: &TestApp,
    clock: &mut Clock,
    openid: &str,
    people: &[&Value],
    day: NaiveDate,
) -> Vec<String> {
    let token = app.login(openid).await;
    let mut codes = Vec::new();
    for (n, person) in people.iter().enumerate() {
        let hall = ["qingxi", "tangxia", "fenggang"][n % 3];
        let response = app
            .book(
                &token,
                &booking(&slot_id(hall, day, "0900"), (*person).clone()),
                None,
            )
            .await;
        assert_eq!(response.status(), 201, "{openid} books {person}");
        codes.push(json(response).await["code"].as_str().unwrap().to_owned());
    }
    clock.to(app, day, "10:05").await;
    // Reading the list settles the no-shows that came due.
    let token = app.login(openid).await;
    let list = json(app.get_with_token("/api/v1/appointments", &token).await).await;
    let missed = list["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "no_show" && codes.contains(&a["code"].as_str().unwrap().into()))
        .count();
    assert_eq!(missed, codes.len(), "{list}");
    codes
}

/// A stranger booking with the victim's ID number is answered exactly as with a number
/// nobody booked: whether the victim holds a booking or a ban does not show.
async fn a_stranger_learns_nothing_of_anothers_bookings_or_bans(backend: Backend) {
    let app = TestApp::spawn_on(
        SharedStore::fresh(backend).await,
        &[("BANZHENG_BOOKING__SLOT_CAPACITY", "100")],
    )
    .await;
    let (held, banned, untouched) = (applicant(1), applicant(2), applicant(3));
    let (mut clock, [day1, day2, day3]) = three_days();
    // The victim misses two appointments for `banned`, then books `held`.
    miss(&app, &mut clock, "victim", &[&banned], day1).await;
    miss(&app, &mut clock, "victim", &[&banned], day2).await;
    let victim = app.login("victim").await;
    let slot = slot_id("nancheng", day3, "0900");
    assert_eq!(
        app.book(&victim, &booking(&slot, held.clone()), None)
            .await
            .status(),
        201
    );
    // The owner's answers stay as useful as before: the booking they hold, the ban's end.
    let again = app
        .book(
            &victim,
            &booking(&slot_id("nancheng", day3, "1000"), held.clone()),
            None,
        )
        .await;
    assert_error(again, 409, "ALREADY_BOOKED").await;
    let refused = app
        .book(&victim, &booking(&slot, banned.clone()), None)
        .await;
    let body = assert_error(refused, 403, "BANNED").await;
    assert!(
        body["message"].as_str().unwrap().contains("前不能"),
        "{body}"
    );

    // Two strangers, each asking about one of the victim's numbers and about an untouched one,
    // with the same requests: the same answers.
    for (stranger, number) in [("stranger-1", &held), ("stranger-2", &banned)] {
        let token = app.login(stranger).await;
        let mut answers = Vec::new();
        for (n, person) in [number, &untouched].into_iter().enumerate() {
            let other = app.login(&format!("{stranger}-twin-{n}")).await;
            let mine = seen(
                app.book(&token, &booking(&slot, person.clone()), None)
                    .await,
            )
            .await;
            // A second account asks the same, to compare like with like.
            let twin = seen(
                app.book(&other, &booking(&slot, person.clone()), None)
                    .await,
            )
            .await;
            assert_eq!(mine, twin);
            answers.push(mine);
        }
        assert_eq!(answers[0], answers[1], "{stranger}: {answers:?}");
        assert_eq!(answers[0], "201");
        // Asked again, each number is the stranger's own booking: the same answer for both.
        let mut again = Vec::new();
        for person in [number, &untouched] {
            let slot = slot_id("nancheng", day3, "1100");
            let response = app
                .book(&token, &booking(&slot, person.clone()), None)
                .await;
            again.push(response.status().as_u16().to_string());
        }
        assert_eq!(again, ["409", "409"]);
    }
}

/// What a stranger does with a victim's ID number stays with the stranger's account: their
/// booking does not block the victim, their no-shows ban only themselves.
async fn a_stranger_can_neither_block_nor_ban_another(backend: Backend) {
    let app = TestApp::spawn_on(
        SharedStore::fresh(backend).await,
        &[("BANZHENG_BOOKING__ACCOUNT_NO_SHOW_LIMIT", "3")],
    )
    .await;
    let victim_id = applicant(1);
    let (mut clock, [day1, day2, day3]) = three_days();
    // The stranger books the victim's number (and another) and misses, twice.
    miss(
        &app,
        &mut clock,
        "stranger",
        &[&victim_id, &applicant(2)],
        day1,
    )
    .await;
    miss(&app, &mut clock, "stranger", &[&victim_id], day2).await;
    let stranger = app.login("stranger").await;
    let slot = slot_id("nancheng", day3, "0900");
    // Three no-shows: the stranger's account is barred, whoever it books for.
    let body = assert_error(
        app.book(&stranger, &booking(&slot, applicant(5)), None)
            .await,
        403,
        "BANNED",
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("本账号"),
        "{body}"
    );
    // The victim books their own number, holds it, and the stranger's state is not theirs.
    let victim = app.login("victim").await;
    let first = app
        .book(&victim, &booking(&slot, victim_id.clone()), None)
        .await;
    assert_eq!(first.status(), 201);
    let mine = json(app.get_with_token("/api/v1/appointments", &victim).await).await;
    assert_eq!(mine["appointments"].as_array().unwrap().len(), 1);

    // A stranger holding a booking for the number does not block the victim either.
    let holder = app.login("holder").await;
    let victim2 = applicant(7);
    assert_eq!(
        app.book(&holder, &booking(&slot, victim2.clone()), None)
            .await
            .status(),
        201
    );
    assert_eq!(
        app.book(&victim, &booking(&slot, victim2), None)
            .await
            .status(),
        201
    );
}

/// A receipt number another account ordered answers exactly like one that does not exist,
/// whoever's ID number comes with it; the owner keeps the precise answers.
async fn anothers_receipt_answers_as_a_missing_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reviewer = app.admin_token(Role::Reviewer).await;
    let order = app.seed_order("openid-owner", "portrait-test0.jpg").await;
    let number = app.approve(&reviewer, &order).await["receipt_no"]
        .as_str()
        .unwrap()
        .to_owned();
    let missing = loop {
        let candidate = ReceiptNo::generate(&mut rand::rng());
        if candidate.as_str() != number {
            break candidate.as_str().to_owned();
        }
    };
    let owner_id =
        json!({"name": "张三", "id_number": tests::receipts::ID_NUMBER, "phone": "13812345678"});
    let slot = slot_id("humen", bookable_weekday(), "0900");
    let with = |person: &Value, no: &str| {
        let mut body = booking(&slot, person.clone());
        body["photo_receipt_no"] = json!(no);
        body
    };
    let stranger = app.login("openid-stranger").await;
    let mut answers = Vec::new();
    for (person, no) in [
        (&owner_id, number.as_str()),
        (&applicant(7), number.as_str()),
        (&owner_id, missing.as_str()),
        (&applicant(7), missing.as_str()),
    ] {
        answers.push(seen(app.book(&stranger, &with(person, no), None).await).await);
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:#?}");
    assert!(
        answers[0].starts_with("422 \"RECEIPT_NOT_FOUND\""),
        "{answers:?}"
    );

    let owner = app.login("openid-owner").await;
    assert_error(
        app.book(&owner, &with(&applicant(7), &number), None).await,
        422,
        "RECEIPT_OTHER_PERSON",
    )
    .await;
    assert_eq!(
        app.book(&owner, &with(&owner_id, &number), None)
            .await
            .status(),
        201
    );
}

/// Past the attempt limits (per account, per account and ID number) a booking is refused with
/// 429 and `Retry-After` until the window ends; a replay does not count; others are unaffected.
async fn booking_attempts_past_the_limits_are_refused(backend: Backend) {
    let window = 600;
    let app = TestApp::spawn_on(
        SharedStore::fresh(backend).await,
        &[
            ("BANZHENG_BOOKING__ATTEMPTS_PER_ACCOUNT", "5"),
            ("BANZHENG_BOOKING__ATTEMPTS_PER_APPLICANT", "3"),
            ("BANZHENG_BOOKING__ATTEMPT_WINDOW_SECS", &window.to_string()),
        ],
    )
    .await;
    // The test books again once the window has passed: the day must stay bookable until then.
    let day = bookable_weekday_through(window);
    let slot = slot_id("dalang", day, "0900");
    let token = app.login("hammering").await;
    let first = app
        .book(&token, &booking(&slot, applicant(1)), Some("first"))
        .await;
    assert_eq!(first.status(), 201);
    for _ in 0..2 {
        assert_error(
            app.book(&token, &booking(&slot, applicant(1)), None).await,
            409,
            "ALREADY_BOOKED",
        )
        .await;
    }
    let throttled = |response: reqwest::Response| async move {
        let retry_after: i64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=window).contains(&retry_after), "{retry_after}");
        assert_error(response, 429, "TOO_MANY_BOOKING_ATTEMPTS").await;
    };
    // A fourth attempt for the same number.
    throttled(app.book(&token, &booking(&slot, applicant(1)), None).await).await;
    // The fifth of the account, for another number, is still allowed…
    assert_eq!(
        app.book(&token, &booking(&slot, applicant(2)), None)
            .await
            .status(),
        201
    );
    // …the sixth is not, whoever it is for.
    throttled(app.book(&token, &booking(&slot, applicant(3)), None).await).await;
    // A replay is an answer already given: it does not count, nor is it refused.
    let replay = app
        .book(&token, &booking(&slot, applicant(1)), Some("first"))
        .await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    // Another account is not affected, even for the same number.
    let other = app.login("patient").await;
    assert_eq!(
        app.book(&other, &booking(&slot, applicant(1)), None)
            .await
            .status(),
        201
    );
    // The next window starts afresh.
    app.advance_clock(window).await;
    let token = app.login("hammering").await;
    assert_eq!(
        app.book(&token, &booking(&slot, applicant(3)), None)
            .await
            .status(),
        201
    );
}

/// Staff lift a wrongly earned ban by forgiving a no-show: recorded with actor and reason,
/// readable by staff, once; the applicant books again.
async fn staff_lift_a_ban_on_the_record(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let person = applicant(1);
    let (mut clock, [day1, day2, day3]) = three_days();
    miss(&app, &mut clock, "forgetful", &[&person], day1).await;
    let code = miss(&app, &mut clock, "forgetful", &[&person], day2).await[0].clone();
    let user = app.login("forgetful").await;
    let slot = slot_id("qingxi", day3, "0900");
    assert_error(
        app.book(&user, &booking(&slot, person.clone()), None).await,
        403,
        "BANNED",
    )
    .await;

    let path = format!("/api/v1/admin/appointments/{code}/ban-lift");
    let reason = json!({"reason": "申请人当日到场，窗口漏签到"});
    let reviewer = app.admin_token(Role::Reviewer).await;
    assert_eq!(
        app.post_with_token(&path, &reviewer, &reason)
            .await
            .status(),
        403
    );
    assert_eq!(
        app.post_with_token(&path, &user, &reason).await.status(),
        401
    );
    let staff = app.admin_token(Role::Staff).await;
    let before = json(app.get_with_token(&path, &staff).await).await;
    assert_eq!(before["ban_lift"], Value::Null);
    assert_eq!(before["appointment"]["status"], "no_show");
    assert_error(
        app.post_with_token(&path, &staff, &json!({"reason": "x"}))
            .await,
        400,
        "INVALID_INPUT",
    )
    .await;

    let lifted = app.post_with_token(&path, &staff, &reason).await;
    assert_eq!(lifted.status(), 200);
    let lifted = json(lifted).await;
    let record = &lifted["ban_lift"];
    assert!(
        record["actor"].as_str().unwrap().starts_with("staff:"),
        "{lifted}"
    );
    assert_eq!(record["reason"], reason["reason"]);
    assert_eq!(lifted["appointment"]["status"], "no_show");
    assert_eq!(json(app.get_with_token(&path, &staff).await).await, lifted);
    assert_error(
        app.post_with_token(&path, &staff, &reason).await,
        409,
        "ILLEGAL_TRANSITION",
    )
    .await;
    // The owner sees it in the history, and books again.
    let user = app.login("forgetful").await;
    let history = json(app.get_with_token("/api/v1/appointments", &user).await).await;
    assert!(history.to_string().contains("申请人当日到场"), "{history}");
    let booked = app.book(&user, &booking(&slot, person), None).await;
    assert_eq!(booked.status(), 201);
    // Only a no-show counts towards a ban.
    let code = json(booked).await["code"].as_str().unwrap().to_owned();
    assert_error(
        app.post_with_token(
            &format!("/api/v1/admin/appointments/{code}/ban-lift"),
            &staff,
            &reason,
        )
        .await,
        409,
        "ILLEGAL_TRANSITION",
    )
    .await;
}

async fn cached_lists(app: &TestApp) -> u64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("banzheng_slot_list_cache_entries "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// A client asking for the slot lists of every date there is does not grow the cache: only
/// the booking window's days are kept.
async fn the_slot_list_cache_stays_bounded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
    for n in 0..400 {
        let date = first + chrono::Duration::days(n * 97);
        for service in ["expiry_renewal", "loss_replacement"] {
            let response = app.slots("dongcheng", service, date).await;
            assert_eq!(response.status(), 200);
        }
    }
    assert_eq!(
        cached_lists(&app).await,
        0,
        "no day outside the window is kept"
    );
    let mut day = bookable_weekday();
    for _ in 0..3 {
        let list = json(app.slots("dongcheng", "expiry_renewal", day).await).await;
        assert!(list["closed_reason"].is_null(), "{list}");
        day = open_weekday_after(day);
    }
    assert_eq!(cached_lists(&app).await, 3, "the window's days are");
}

on_both_backends!(
    a_stranger_learns_nothing_of_anothers_bookings_or_bans,
    a_stranger_can_neither_block_nor_ban_another,
    anothers_receipt_answers_as_a_missing_one,
    booking_attempts_past_the_limits_are_refused,
    staff_lift_a_ban_on_the_record,
    the_slot_list_cache_stays_bounded,
);
