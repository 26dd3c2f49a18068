//! The slot list of a hall's day, kept rendered for a moment. It is the busiest read of the API
//! and only guides the choice (booking counts seats atomically in the store and answers
//! `SLOT_FULL`), so a list may be up to `slot_list_cache_ms` old; a booking or cancellation through
//! this instance drops that day's lists at once.
//!
//! Bounded: only days inside the booking window are kept (the handler renders the others
//! without the store), hall and service are the catalog's, so there are at most halls × window
//! days × services lists a day; past `capacity` (twice that, for the turn of the day) expired
//! lists are dropped and, if none is, the new one is served without being kept. A client asking
//! for any number of other days, halls or services cannot grow it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use chrono::NaiveDate;
use prometheus::{IntGauge, Registry};

use super::catalog::ServiceKind;

/// Hall, day, service, and today (the bookable window moves with it).
type Key = (String, NaiveDate, ServiceKind, NaiveDate);

pub struct DayLists {
    ttl: Duration,
    /// Most lists kept at once.
    capacity: usize,
    lists: Mutex<HashMap<Key, (Instant, Bytes)>>,
    /// How many are kept (`banzheng_slot_list_cache_entries`).
    entries: IntGauge,
}

impl DayLists {
    /// `ttl` zero keeps nothing: every list is read from the store. At most `capacity` lists
    /// are kept.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        DayLists {
            ttl,
            capacity,
            lists: Mutex::new(HashMap::new()),
            entries: IntGauge::new(
                "banzheng_slot_list_cache_entries",
                "Slot lists this instance keeps rendered",
            )
            .expect("static metric definition"),
        }
    }

    /// Shows how many lists are kept among `registry`'s metrics.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.entries.clone()))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn get(
        &self,
        hall: &str,
        date: NaiveDate,
        service: ServiceKind,
        today: NaiveDate,
    ) -> Option<Bytes> {
        let lists = self.lock();
        let (rendered_at, body) = lists.get(&(hall.to_owned(), date, service, today))?;
        (rendered_at.elapsed() < self.ttl).then(|| body.clone())
    }

    pub fn put(
        &self,
        hall: &str,
        date: NaiveDate,
        service: ServiceKind,
        today: NaiveDate,
        body: Bytes,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let mut lists = self.lock();
        let key = (hall.to_owned(), date, service, today);
        if lists.len() >= self.capacity && !lists.contains_key(&key) {
            lists.retain(|_, (rendered_at, _)| rendered_at.elapsed() < self.ttl);
            if lists.len() >= self.capacity {
                return;
            }
        }
        lists.insert(key, (Instant::now(), body));
        self.entries.set(lists.len() as i64);
    }

    /// A seat of this day was taken or freed here: its lists are read again.
    pub fn forget(&self, hall: &str, date: NaiveDate) {
        let mut lists = self.lock();
        lists.retain(|(h, d, _, _), _| !(h == hall && *d == date));
        self.entries.set(lists.len() as i64);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, (Instant, Bytes)>> {
        // Every change is a single call, so a panic elsewhere cannot leave it half-updated.
        self.lists.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    #[test]
    fn lists_are_kept_for_their_day_until_forgotten_or_old() {
        let lists = DayLists::new(Duration::from_secs(60), 100);
        let renewal = ServiceKind::ExpiryRenewal;
        lists.put(
            "dongcheng",
            day(3),
            renewal,
            day(1),
            Bytes::from_static(b"a"),
        );
        lists.put(
            "dongcheng",
            day(4),
            renewal,
            day(1),
            Bytes::from_static(b"b"),
        );
        assert_eq!(
            lists.get("dongcheng", day(3), renewal, day(1)).unwrap(),
            "a"
        );
        assert!(
            lists.get("dongcheng", day(3), renewal, day(2)).is_none(),
            "a new day moves the window"
        );
        assert!(lists.get("nancheng", day(3), renewal, day(1)).is_none());
        lists.forget("dongcheng", day(3));
        assert!(lists.get("dongcheng", day(3), renewal, day(1)).is_none());
        assert_eq!(
            lists.get("dongcheng", day(4), renewal, day(1)).unwrap(),
            "b"
        );

        let uncached = DayLists::new(Duration::ZERO, 100);
        uncached.put(
            "dongcheng",
            day(3),
            renewal,
            day(1),
            Bytes::from_static(b"a"),
        );
        assert!(uncached.get("dongcheng", day(3), renewal, day(1)).is_none());
    }

    #[test]
    fn past_its_capacity_nothing_more_is_kept_until_lists_expire() {
        let lists = DayLists::new(Duration::from_millis(50), 3);
        let renewal = ServiceKind::ExpiryRenewal;
        for d in 1..=10 {
            lists.put(
                "dongcheng",
                day(d),
                renewal,
                day(1),
                Bytes::from_static(b"x"),
            );
        }
        assert_eq!(lists.len(), 3);
        assert!(lists.get("dongcheng", day(3), renewal, day(1)).is_some());
        assert!(lists.get("dongcheng", day(4), renewal, day(1)).is_none());
        std::thread::sleep(Duration::from_millis(60));
        lists.put(
            "dongcheng",
            day(9),
            renewal,
            day(1),
            Bytes::from_static(b"y"),
        );
        assert_eq!(lists.len(), 1, "the expired lists made room");
        assert_eq!(
            lists.get("dongcheng", day(9), renewal, day(1)).unwrap(),
            "y"
        );
    }
}
