//! Slots: generated from a hall's week, its closures and the public holidays; nothing about a
//! slot is stored but the number of seats taken.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday,
};
use serde::Serialize;

use super::catalog::{Catalog, Hall, Period};
use crate::clock::china;

/// `dongcheng-20261127-0930`: hall, local date and start time, so the id alone says where
/// and when, and the schedule can be regenerated from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SlotId {
    pub hall: String,
    pub date: NaiveDate,
    pub start: NaiveTime,
}

impl SlotId {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.rsplitn(3, '-');
        let time = parts.next()?;
        let date = parts.next()?;
        let hall = parts.next()?;
        if hall.is_empty() || time.len() != 4 || date.len() != 8 {
            return None;
        }
        Some(SlotId {
            hall: hall.to_owned(),
            date: NaiveDate::parse_from_str(date, "%Y%m%d").ok()?,
            start: NaiveTime::parse_from_str(time, "%H%M").ok()?,
        })
    }

    /// The slot's start within its day, `0930`: its field among the day's seat counts.
    pub fn time_key(&self) -> String {
        TimeKey(self.start).to_string()
    }

    pub fn date_key(&self) -> String {
        day_key(self.date)
    }
}

/// `20261127`: a day among the stored seat counts.
pub fn day_key(date: NaiveDate) -> String {
    DateKey(date).to_string()
}

// Written digit by digit: chrono's strftime parses its pattern on every call, and the slot list
// formats these for every slot of every request.
struct DateKey(NaiveDate);
struct TimeKey(NaiveTime);

impl std::fmt::Display for DateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0;
        write!(f, "{:04}{:02}{:02}", d.year(), d.month(), d.day())
    }
}

impl std::fmt::Display for TimeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}{:02}", self.0.hour(), self.0.minute())
    }
}

impl std::fmt::Display for SlotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}-{}",
            self.hall,
            DateKey(self.date),
            TimeKey(self.start)
        )
    }
}

impl Serialize for SlotId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SlotId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SlotId::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a slot id")))
    }
}

/// One bookable slot of a day, before counting seats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub id: SlotId,
    pub end: NaiveTime,
    pub capacity: u32,
    /// 周六家庭专场: only applicants under 16 with a guardian.
    pub family_only: bool,
}

impl Slot {
    pub fn starts_at(&self) -> DateTime<Utc> {
        local(self.id.date, self.id.start)
    }

    pub fn ends_at(&self) -> DateTime<Utc> {
        local(self.id.date, self.end)
    }
}

fn local(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    china()
        .from_local_datetime(&date.and_time(time))
        .single()
        .expect("UTC+8 has no gaps")
        .with_timezone(&Utc)
}

/// Why a day has no slots at a hall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedReason {
    PublicHoliday,
    HallClosed,
    NoService,
    OutsideBookingWindow,
}

impl ClosedReason {
    pub fn message(self) -> &'static str {
        match self {
            ClosedReason::PublicHoliday => "法定节假日休息",
            ClosedReason::HallClosed => "大厅当日暂停服务",
            ClosedReason::NoService => "当日不办理业务",
            ClosedReason::OutsideBookingWindow => "只能预约明天起的时段，且不超过可预约天数",
        }
    }
}

/// The days one can book: from tomorrow up to `days_ahead` days from today (local dates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl Window {
    pub fn new(today: NaiveDate, days_ahead: u32) -> Self {
        Window {
            first: today + Duration::days(1),
            last: today + Duration::days(i64::from(days_ahead)),
        }
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        (self.first..=self.last).contains(&date)
    }
}

/// The slots of `hall` on `date`, or why there are none. Pure: same inputs, same slots.
pub fn slots_on(
    catalog: &Catalog,
    hall: &Hall,
    date: NaiveDate,
) -> Result<Vec<Slot>, ClosedReason> {
    if catalog.holidays.contains(&date) {
        return Err(ClosedReason::PublicHoliday);
    }
    if hall.closed.contains(&date) {
        return Err(ClosedReason::HallClosed);
    }
    let (periods, family_only): (&[Period], bool) = match date.weekday() {
        _ if catalog.working_weekends.contains(&date) => (&hall.schedule.weekdays, false),
        Weekday::Sat => (&hall.schedule.saturday_family, true),
        Weekday::Sun => (&[], false),
        _ => (&hall.schedule.weekdays, false),
    };
    let length = Duration::minutes(i64::from(hall.schedule.slot_minutes));
    let mut slots = Vec::new();
    for period in periods {
        let mut start = period.start;
        loop {
            let (end, wrapped_seconds) = start.overflowing_add_signed(length);
            if wrapped_seconds != 0 || end > period.end {
                break;
            }
            slots.push(Slot {
                id: SlotId {
                    hall: hall.id.clone(),
                    date,
                    start,
                },
                end,
                capacity: hall.capacity,
                family_only,
            });
            start = end;
        }
    }
    if slots.is_empty() {
        return Err(ClosedReason::NoService);
    }
    Ok(slots)
}

/// The slot an id names, if the hall exists and has that slot on that day.
pub fn find_slot(catalog: &Catalog, id: &SlotId) -> Option<Slot> {
    let hall = catalog.hall(&id.hall)?;
    slots_on(catalog, hall, id.date)
        .ok()?
        .into_iter()
        .find(|slot| slot.id == *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::load(None, None, 6).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn weekday_has_fourteen_half_hour_slots() {
        let catalog = catalog();
        let hall = catalog.hall("dongcheng").unwrap();
        // Thursday 2026-11-26.
        let slots = slots_on(&catalog, hall, date(2026, 11, 26)).unwrap();
        let starts: Vec<String> = slots.iter().map(|s| s.id.time_key()).collect();
        assert_eq!(starts.len(), 6 + 7);
        assert_eq!(starts.first().unwrap(), "0900");
        assert_eq!(starts[5], "1130");
        assert_eq!(starts[6], "1400");
        assert_eq!(starts.last().unwrap(), "1700");
        assert_eq!(
            slots.last().unwrap().end,
            NaiveTime::from_hms_opt(17, 30, 0).unwrap()
        );
        assert!(slots.iter().all(|s| !s.family_only && s.capacity == 6));
        assert_eq!(
            slots[0].starts_at().to_rfc3339(),
            "2026-11-26T01:00:00+00:00",
            "09:00 in Dongguan is 01:00 UTC"
        );
    }

    #[test]
    fn saturday_morning_is_family_only_and_sunday_is_closed() {
        let catalog = catalog();
        let hall = catalog.hall("humen").unwrap();
        let saturday = slots_on(&catalog, hall, date(2026, 11, 28)).unwrap();
        assert_eq!(saturday.len(), 6);
        assert!(saturday.iter().all(|s| s.family_only));
        assert_eq!(
            slots_on(&catalog, hall, date(2026, 11, 29)),
            Err(ClosedReason::NoService)
        );
    }

    #[test]
    fn holidays_close_and_working_weekends_open_with_the_weekday_schedule() {
        let catalog = catalog();
        let hall = catalog.hall("humen").unwrap();
        assert_eq!(
            slots_on(&catalog, hall, date(2026, 10, 1)),
            Err(ClosedReason::PublicHoliday)
        );
        // Saturday 2026-10-10 is a declared working day.
        let slots = slots_on(&catalog, hall, date(2026, 10, 10)).unwrap();
        assert_eq!(slots.len(), 13);
        assert!(slots.iter().all(|s| !s.family_only));
    }

    #[test]
    fn slot_ids_round_trip_and_are_found_only_when_real() {
        let catalog = catalog();
        let id = SlotId::parse("dongcheng-20261126-0930").unwrap();
        assert_eq!(id.to_string(), "dongcheng-20261126-0930");
        assert!(find_slot(&catalog, &id).is_some());
        for missing in [
            "dongcheng-20261126-0945",
            "dongcheng-20261126-1230",
            "nowhere-20261126-0930",
            "dongcheng-20261129-0930",
        ] {
            assert!(
                find_slot(&catalog, &SlotId::parse(missing).unwrap()).is_none(),
                "{missing}"
            );
        }
        for bad in [
            "",
            "dongcheng",
            "dongcheng-2026112-0930",
            "dongcheng-20261132-0930",
            "-20261126-0930",
            "dongcheng-20261126-2500",
        ] {
            assert!(SlotId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn window_is_tomorrow_to_n_days_ahead() {
        let window = Window::new(date(2026, 11, 25), 7);
        assert!(!window.contains(date(2026, 11, 25)));
        assert!(window.contains(date(2026, 11, 26)));
        assert!(window.contains(date(2026, 12, 2)));
        assert!(!window.contains(date(2026, 12, 3)));
    }
}
