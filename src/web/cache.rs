//! Rendered graphs kept for a short while: a page reload or several viewers cost one render.
//! Bounded in entries; expired or oldest entries go first.

use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a rendered graph is served again (about one collection interval).
const TTL: Duration = Duration::from_secs(60);
const ENTRIES: usize = 256;

#[derive(Default)]
pub struct GraphCache {
    entries: Mutex<HashMap<String, (Instant, Bytes)>>,
}

impl GraphCache {
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: String, value: Bytes) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        if entries.len() >= ENTRIES {
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
        let c = GraphCache::default();
        for i in 0..ENTRIES + 10 {
            c.put(format!("k{i}"), Bytes::from(vec![i as u8]));
        }
        assert_eq!(c.entries.lock().unwrap().len(), ENTRIES);
        assert_eq!(
            c.get(&format!("k{}", ENTRIES + 9)).unwrap()[0],
            (ENTRIES + 9) as u8
        );
        assert!(c.get("nothing").is_none());
    }
}
