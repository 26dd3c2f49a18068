//! Booking helpers: valid, distinct ID numbers and applicants, and the booking endpoints.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use serde_json::{json, Value};
use server::booking::applicant::PhoneNumber;
use server::booking::appointment::{Applicant, Appointment, AppointmentCode, HistoryEntry, Status};
use server::booking::catalog::ServiceKind;
use server::booking::schedule::SlotId;
use server::booking::store::{AttemptLimits, NewBooking, NoShowPolicy};
use server::notify::store::Notices;
use server::person::PersonName;

use crate::TestApp;

/// An ID number born on `birth` with sequence `seq` (0..=999), check character computed
/// here with the GB 11643 weights, independently of the server.
pub fn id_number(birth: NaiveDate, seq: u32) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let first17 = format!("441900{}{:03}", birth.format("%Y%m%d"), seq % 1000);
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = "10X98765432".as_bytes()[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

/// The `n`-th distinct adult (born 1980 onwards, one a day, 1000 per day).
pub fn adult_id(n: u32) -> String {
    let birth = NaiveDate::from_ymd_opt(1980, 1, 1).unwrap() + Duration::days(i64::from(n / 1000));
    id_number(birth, n)
}

pub fn applicant(n: u32) -> Value {
    json!({"name": "张三", "id_number": adult_id(n), "phone": "13812345678"})
}

/// The next `weekday` strictly after `from`.
pub fn next(weekday: Weekday, from: NaiveDate) -> NaiveDate {
    let mut day = from + Duration::days(1);
    while day.weekday() != weekday {
        day += Duration::days(1);
    }
    day
}

/// Today in Dongguan, as the server sees it (before any clock advance).
pub fn today() -> NaiveDate {
    day_in(0)
}

/// The day in Dongguan once the server's clock has moved `seconds` forward (from now).
fn day_in(seconds: i64) -> NaiveDate {
    (chrono::Utc::now() + Duration::seconds(seconds))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive()
}

/// The first open weekday from tomorrow.
pub fn bookable_weekday() -> NaiveDate {
    open_weekday_after(today())
}

/// The first open weekday that is still bookable (from tomorrow on) after the server's clock
/// has moved `seconds` forward: a test that books it on both sides of that move passes at any
/// time of day, also when the move crosses midnight in Dongguan.
pub fn bookable_weekday_through(seconds: i64) -> NaiveDate {
    open_weekday_after(day_in(seconds))
}

pub fn slot_id(hall: &str, date: NaiveDate, time: &str) -> String {
    format!("{hall}-{}-{time}", date.format("%Y%m%d"))
}

impl TestApp {
    pub async fn slots(&self, hall: &str, service: &str, date: NaiveDate) -> reqwest::Response {
        self.get(&format!(
            "/api/v1/offices/{hall}/slots?service={service}&date={date}"
        ))
        .await
    }

    /// Seats left in one slot, as the slot list says.
    pub async fn remaining(&self, slot: &str) -> u64 {
        let id = server::booking::schedule::SlotId::parse(slot).expect("slot id");
        let list = crate::json(self.slots(&id.hall, "expiry_renewal", id.date).await).await;
        list["slots"]
            .as_array()
            .expect("slots")
            .iter()
            .find(|s| s["id"] == slot)
            .unwrap_or_else(|| panic!("{slot} not in {list}"))["remaining"]
            .as_u64()
            .unwrap()
    }

    pub async fn book(
        &self,
        token: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/api/v1/appointments"))
            .bearer_auth(token)
            .json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.unwrap()
    }
}

/// The first open weekday strictly after `after`.
pub fn open_weekday_after(after: NaiveDate) -> NaiveDate {
    let catalog = server::booking::catalog::Catalog::load(None, None, 1).unwrap();
    let mut day = after + Duration::days(1);
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) || catalog.holidays.contains(&day) {
        day += Duration::days(1);
    }
    day
}

/// Seconds from now until `time` (local) on `date`: what to advance the server clock by.
pub fn seconds_until(date: NaiveDate, time: &str) -> i64 {
    let time = chrono::NaiveTime::parse_from_str(time, "%H:%M").unwrap();
    let at = date
        .and_time(time)
        .and_local_timezone(chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .unwrap();
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds()
}

/// A child born on 2015-06-01 (under 16 for years to come), with a guardian.
pub fn child(n: u32) -> (Value, Value) {
    let birth = NaiveDate::from_ymd_opt(2015, 6, 1).unwrap();
    (
        json!({"name": "张小明", "id_number": id_number(birth, n), "phone": "13912345678"}),
        json!({"name": "张三", "id_number": adult_id(900_000 + n), "relationship": "father"}),
    )
}

/// A booked appointment as the server would store it, for the store-level tests: `person`
/// names the applicant's ID hash (`hash-{person}`), `masked_id` their ID number as shown.
pub fn booked_appointment(
    user_id: &str,
    person: &str,
    slot: SlotId,
    starts_at: DateTime<Utc>,
    masked_id: String,
    booked_at: DateTime<Utc>,
) -> Appointment {
    Appointment {
        id: uuid::Uuid::new_v4().simple().to_string(),
        code: AppointmentCode::generate(),
        user_id: user_id.into(),
        slot,
        service: ServiceKind::ExpiryRenewal,
        starts_at,
        ends_at: starts_at + Duration::minutes(30),
        family_only: false,
        applicant: Applicant {
            name: PersonName::parse("张三").unwrap(),
            id_number: masked_id,
            phone: PhoneNumber::parse("13812345678").unwrap(),
        },
        guardian: None,
        id_hash: format!("hash-{person}"),
        photo_receipt_no: None,
        status: Status::Booked,
        fee_yuan: None,
        delivery: None,
        ems_no: None,
        created_at: booked_at,
        history: vec![HistoryEntry {
            status: Status::Booked,
            at: booked_at,
            actor: "user".into(),
            detail: None,
        }],
        ban_lift: None,
        anonymised_at: None,
        version: 0,
    }
}

/// A booking of `appointment` at `now` for store-level tests: up to `capacity` seats, limits
/// no test reaches unless it sets its own, no Idempotency-Key, no notices.
pub fn new_booking(appointment: Appointment, capacity: u32, now: DateTime<Utc>) -> NewBooking {
    NewBooking {
        no_show_at: appointment.ends_at + Duration::minutes(30),
        appointment,
        capacity,
        max_active: 3,
        attempts: AttemptLimits {
            per_account: 1000,
            per_applicant: 1000,
            window: std::time::Duration::from_secs(600),
        },
        now,
        idempotency: None,
        caller: None,
        notices: Notices::default(),
    }
}

/// The no-show policy of the store-level tests: two no-shows in 30 days ban for 90.
pub fn no_show_policy() -> NoShowPolicy {
    NoShowPolicy {
        window: std::time::Duration::from_secs(30 * 86400),
        limit: 2,
        account_limit: 3,
        ban: std::time::Duration::from_secs(90 * 86400),
    }
}
