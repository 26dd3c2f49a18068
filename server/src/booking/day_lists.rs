//! The slot list of a hall's day, kept rendered for a moment. It is the busiest read of the API
//! and only guides the choice (booking counts seats atomically in the store and answers
//! `SLOT_FULL`), so a list may be up to `slot_list_cache_ms` old; a booking or cancellation through
//! this instance drops that day's lists at once.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use chrono::NaiveDate;

use super::catalog::ServiceKind;

/// Past this many lists, expired ones are dropped (34 halls × 8 days × 4 services is ~1100).
const PRUNE_ABOVE: usize = 2048;

/// Hall, day, service, and today (the bookable window moves with it).
type Key = (String, NaiveDate, ServiceKind, NaiveDate);

pub struct DayLists {
    ttl: Duration,
    lists: Mutex<HashMap<Key, (Instant, Bytes)>>,
}

impl DayLists {
    /// `ttl` zero keeps nothing: every list is read from the store.
    pub fn new(ttl: Duration) -> Self {
        DayLists {
            ttl,
            lists: Mutex::new(HashMap::new()),
        }
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
        if lists.len() > PRUNE_ABOVE {
            lists.retain(|_, (rendered_at, _)| rendered_at.elapsed() < self.ttl);
        }
        lists.insert(
            (hall.to_owned(), date, service, today),
            (Instant::now(), body),
        );
    }

    /// A seat of this day was taken or freed here: its lists are read again.
    pub fn forget(&self, hall: &str, date: NaiveDate) {
        self.lock()
            .retain(|(h, d, _, _), _| !(h == hall && *d == date));
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
        let lists = DayLists::new(Duration::from_secs(60));
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

        let uncached = DayLists::new(Duration::ZERO);
        uncached.put(
            "dongcheng",
            day(3),
            renewal,
            day(1),
            Bytes::from_static(b"a"),
        );
        assert!(uncached.get("dongcheng", day(3), renewal, day(1)).is_none());
    }
}
