//! A bounded cache with a time to live, for resolutions and folder listings.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Entries expire `ttl` after they were stored; when full, the oldest stored goes first.
#[derive(Debug)]
pub struct Cache<V> {
    inner: Mutex<Inner<V>>,
    ttl: chrono::Duration,
    capacity: usize,
}

#[derive(Debug)]
struct Inner<V> {
    map: HashMap<String, (V, DateTime<Utc>)>,
    /// Keys in the order first stored; may hold keys already removed.
    order: VecDeque<String>,
}

impl<V: Clone> Cache<V> {
    /// A cache of at most `capacity` entries; a zero `ttl` keeps nothing.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Cache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
            capacity: capacity.max(1),
        }
    }

    fn enabled(&self) -> bool {
        self.ttl > chrono::Duration::zero()
    }

    /// The live entry for `key`, if any.
    pub fn get(&self, key: &str, now: DateTime<Utc>) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let mut inner = self.inner.lock().ok()?;
        match inner.map.get(key) {
            Some((v, expires)) if *expires > now => Some(v.clone()),
            Some(_) => {
                inner.map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: String, value: V, now: DateTime<Utc>) {
        if !self.enabled() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let expires = now
            .checked_add_signed(self.ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if let Some(slot) = inner.map.get_mut(&key) {
            *slot = (value, expires);
            return;
        }
        while inner.map.len() >= self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.map.remove(&old);
                }
                None => break,
            }
        }
        // Keys removed early linger in `order`; compact before it outgrows the map.
        if inner.order.len() >= self.capacity.saturating_mul(2) {
            let Inner { map, order } = &mut *inner;
            order.retain(|k| map.contains_key(k));
        }
        inner.order.push_back(key.clone());
        inner.map.insert(key, (value, expires));
    }

    pub fn remove(&self, key: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.map.remove(key);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn entries_expire_and_the_oldest_goes_when_full() {
        let c = Cache::new(Duration::from_secs(60), 2);
        c.put("a".into(), 1, t(0));
        c.put("b".into(), 2, t(1));
        assert_eq!(c.get("a", t(59)), Some(1));
        assert_eq!(c.get("a", t(60)), None, "expired at exactly the ttl");
        c.put("a".into(), 3, t(61));
        c.put("c".into(), 4, t(62));
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("b", t(62)), None, "b was the oldest");
        assert_eq!(c.get("c", t(62)), Some(4));
        c.remove("c");
        assert_eq!(c.get("c", t(62)), None);
    }

    #[test]
    fn churn_keeps_the_bookkeeping_bounded() {
        let c = Cache::new(Duration::from_secs(60), 10);
        for i in 0..10_000 {
            let k = format!("k{}", i % 37);
            c.put(k.clone(), i, t(0));
            if i % 3 == 0 {
                c.remove(&k);
            }
        }
        assert!(c.len() <= 10);
        assert!(c.inner.lock().unwrap().order.len() <= 21);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let c = Cache::new(Duration::ZERO, 10);
        c.put("a".into(), 1, t(0));
        assert!(c.is_empty());
        assert_eq!(c.get("a", t(0)), None);
    }
}
