//! Answers kept for a short while (rendered graphs, reports): a page reload, several viewers or
//! the page and its JSON cost one store read. Bounded in entries; expired or oldest go first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an answer is served again (about one collection interval).
const TTL: Duration = Duration::from_secs(60);

pub struct Cache<V> {
    entries: Mutex<HashMap<String, (Instant, V)>>,
    capacity: usize,
}

impl<V: Clone> Cache<V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: String, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        if entries.len() >= self.capacity {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keyed() {
        let c = Cache::new(8);
        for i in 0..20u8 {
            c.put(format!("k{i}"), i);
        }
        assert_eq!(c.entries.lock().unwrap().len(), 8);
        assert_eq!(c.get("k19"), Some(19));
        assert_eq!(c.get("k0"), None, "the oldest went first");
        assert!(c.get("nothing").is_none());
    }
}
