//! Reverse DNS (PTR) lookups with hickory-resolver: bounded in concurrency (a semaphore), in
//! time (a timeout per lookup), in rate (a token bucket of `per_minute` lookups) and in memory
//! (a cache of `cache_size` answers, kept for their TTL; failures and "no name" for a while).
//! A caller that must not wait (a page) reads what is known and leaves a lookup running in the
//! background; nothing here blocks a thread.

use super::hostname;
use super::NamesError;
use crate::config;
use hickory_resolver::config::{
    NameServerConfig, NameServerConfigGroup, ResolveHosts, ResolverConfig,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::TokioResolver;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Answers are kept at least this long, whatever their TTL (a TTL of 0 would mean a lookup per
/// page view).
const MIN_TTL: Duration = Duration::from_secs(60);
/// And at most this long.
const MAX_TTL: Duration = Duration::from_secs(86_400);
/// Background lookups waiting or running at once; past this, requests are dropped (a later
/// page view asks again).
const MAX_PENDING: usize = 4096;

/// What the resolver did since it started (for `/metrics`).
#[derive(Debug, Default)]
pub struct DnsStats {
    /// Answers with a usable name.
    pub named: AtomicU64,
    /// Answers without a name (NXDOMAIN, no PTR record).
    pub no_name: AtomicU64,
    /// Names refused by [`hostname::check`].
    pub invalid: AtomicU64,
    /// Lookups that ran out of time.
    pub timed_out: AtomicU64,
    /// Other failures (refused, server failure, network).
    pub failed: AtomicU64,
    /// Lookups not made because the per-minute cap was reached.
    pub capped: AtomicU64,
}

struct Entry {
    name: Option<Arc<str>>,
    until: Instant,
}

struct State {
    cache: HashMap<IpAddr, Entry>,
    pending: HashSet<IpAddr>,
    /// The token bucket: lookups that may start now.
    tokens: f64,
    refilled: Instant,
}

pub struct Dns {
    resolver: TokioResolver,
    state: Mutex<State>,
    permits: Semaphore,
    timeout: Duration,
    negative_ttl: Duration,
    per_minute: f64,
    capacity: usize,
    runtime: tokio::runtime::Handle,
    pub stats: DnsStats,
}

/// The outcome of one query: a name or none, and how long to keep it.
type Answer = (Option<Arc<str>>, Duration);

/// A failure (no answer, refused): a name known before stays shown until the next try.
fn unanswered(after: Duration) -> Answer {
    (None, after)
}

impl Dns {
    /// A resolver for `settings` (its servers, or `/etc/resolv.conf`). Must be called inside a
    /// tokio runtime: background lookups run there.
    pub fn new(settings: &config::Names) -> Result<Self, NamesError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| NamesError::Resolver(format!("no async runtime: {e}")))?;
        let mut builder = if settings.servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| {
                NamesError::Resolver(format!(
                    "cannot read the system's resolver configuration (/etc/resolv.conf): {e}; set [names] servers"
                ))
            })?
        } else {
            let mut group = NameServerConfigGroup::new();
            for s in &settings.servers {
                group.push(NameServerConfig::new(*s, Protocol::Udp));
                group.push(NameServerConfig::new(*s, Protocol::Tcp));
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), group),
                TokioConnectionProvider::default(),
            )
        };
        let opts = builder.options_mut();
        opts.timeout = settings.timeout;
        opts.attempts = 1;
        // Our cache keeps the answers (and says what is known without waiting).
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        Ok(Self {
            resolver: builder.build(),
            state: Mutex::new(State {
                cache: HashMap::new(),
                pending: HashSet::new(),
                tokens: f64::from(settings.per_minute),
                refilled: Instant::now(),
            }),
            permits: Semaphore::new(settings.concurrency),
            timeout: settings.timeout,
            negative_ttl: settings.negative_ttl,
            per_minute: f64::from(settings.per_minute),
            capacity: settings.cache_size,
            runtime,
            stats: DnsStats::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Addresses whose names are remembered (named or not).
    pub fn cached(&self) -> usize {
        self.lock().cache.len()
    }

    /// Takes one lookup from the bucket (refilled at `per_minute` a minute).
    fn take_token(&self, st: &mut State) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(st.refilled).as_secs_f64() * self.per_minute / 60.0;
        st.tokens = (st.tokens + refill).min(self.per_minute);
        st.refilled = now;
        if st.tokens >= 1.0 {
            st.tokens -= 1.0;
            true
        } else {
            self.stats.capped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// What is known of `ip` (the name, and whether it is still fresh); if nothing fresh is
    /// known and no lookup is under way, claims the lookup (a token and a pending mark).
    fn known(&self, ip: IpAddr) -> (Option<Arc<str>>, bool) {
        let mut st = self.lock();
        let (name, fresh) = match st.cache.get(&ip) {
            Some(e) => (e.name.clone(), e.until > Instant::now()),
            None => (None, false),
        };
        let claim = !fresh
            && !st.pending.contains(&ip)
            && st.pending.len() < MAX_PENDING
            && self.take_token(&mut st);
        if claim {
            st.pending.insert(ip);
        }
        (name, claim)
    }

    /// The name of `ip` as known now (possibly stale), never waiting; if it is unknown or
    /// stale, a lookup starts in the background.
    pub fn name_now(self: &Arc<Self>, ip: IpAddr) -> Option<Arc<str>> {
        let (name, claimed) = self.known(ip);
        if claimed {
            let me = Arc::clone(self);
            self.runtime.spawn(async move {
                me.query(ip).await;
            });
        }
        name
    }

    /// The name of `ip`, waiting for a lookup if none is fresh (and the cap allows one).
    pub async fn lookup(&self, ip: IpAddr) -> Option<Arc<str>> {
        match self.known(ip) {
            (name, false) => name,
            (_, true) => self.query(ip).await,
        }
    }

    /// One PTR query (after a permit), remembered; clears the pending mark, even when the
    /// caller stops waiting.
    async fn query(&self, ip: IpAddr) -> Option<Arc<str>> {
        let _clear = ClearPending { dns: self, ip };
        let answer = match self.permits.acquire().await {
            Ok(_permit) => {
                let asked = tokio::time::timeout(self.timeout, self.resolver.reverse_lookup(ip));
                match asked.await {
                    Ok(Ok(found)) => (self.answer(ip, &found), true),
                    Ok(Err(e)) => self.failure(ip, &e),
                    Err(_) => {
                        self.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%ip, "reverse DNS: no answer within {:?}", self.timeout);
                        (unanswered(self.negative_ttl), false)
                    }
                }
            }
            Err(_) => (unanswered(self.negative_ttl), false),
        };
        match answer {
            (answer, true) => {
                let name = answer.0.clone();
                self.remember(ip, answer);
                name
            }
            (answer, false) => self.keep_or_remember(ip, answer),
        }
    }

    /// The first PTR name that is a plain host name, kept for the answer's TTL.
    fn answer(&self, ip: IpAddr, found: &hickory_resolver::lookup::ReverseLookup) -> Answer {
        let ttl = found
            .valid_until()
            .saturating_duration_since(Instant::now())
            .clamp(MIN_TTL, MAX_TTL);
        let mut refused = false;
        for ptr in found.iter() {
            match hostname::check(&ptr.0.to_ascii()) {
                Ok(name) => {
                    self.stats.named.fetch_add(1, Ordering::Relaxed);
                    return (Some(Arc::from(name)), ttl);
                }
                Err(why) => {
                    refused = true;
                    tracing::debug!(%ip, "reverse DNS: a PTR name was refused: {why}");
                }
            }
        }
        let counter = if refused {
            &self.stats.invalid
        } else {
            &self.stats.no_name
        };
        counter.fetch_add(1, Ordering::Relaxed);
        (None, ttl)
    }

    /// "No such name" is an answer (true); anything else is a failure (false).
    fn failure(&self, ip: IpAddr, e: &hickory_resolver::ResolveError) -> (Answer, bool) {
        if let Some(ProtoErrorKind::NoRecordsFound { negative_ttl, .. }) =
            e.proto().map(|p| p.kind())
        {
            self.stats.no_name.fetch_add(1, Ordering::Relaxed);
            let ttl = negative_ttl
                .map(|s| Duration::from_secs(s.into()).clamp(MIN_TTL, MAX_TTL))
                .unwrap_or(self.negative_ttl);
            return ((None, ttl), true);
        }
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%ip, "reverse DNS failed: {e}");
        (unanswered(self.negative_ttl), false)
    }

    /// After a failure: a name known before stays (until the next try), else none is kept.
    fn keep_or_remember(&self, ip: IpAddr, (none, after): Answer) -> Option<Arc<str>> {
        {
            let mut st = self.lock();
            if let Some(e) = st.cache.get_mut(&ip).filter(|e| e.name.is_some()) {
                e.until = Instant::now() + after;
                return e.name.clone();
            }
        }
        self.remember(ip, (none, after));
        None
    }

    fn remember(&self, ip: IpAddr, (name, ttl): Answer) {
        let now = Instant::now();
        let mut st = self.lock();
        if st.cache.len() >= self.capacity && !st.cache.contains_key(&ip) {
            st.cache.retain(|_, e| e.until > now);
        }
        if st.cache.len() >= self.capacity {
            // Full of fresh answers: the eighth that expires first goes.
            let mut by_age: Vec<(Instant, IpAddr)> =
                st.cache.iter().map(|(ip, e)| (e.until, *ip)).collect();
            by_age.sort_unstable();
            for (_, old) in by_age.iter().take(self.capacity.div_ceil(8)) {
                st.cache.remove(old);
            }
        }
        st.cache.insert(
            ip,
            Entry {
                name,
                until: now + ttl,
            },
        );
    }
}

/// Removes an address's pending mark when its query ends or is dropped.
struct ClearPending<'a> {
    dns: &'a Dns,
    ip: IpAddr,
}

impl Drop for ClearPending<'_> {
    fn drop(&mut self) {
        self.dns.lock().pending.remove(&self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_minute: u32) -> config::Names {
        config::Names {
            reverse_dns: true,
            // Nothing listens there: every lookup fails (refused or timed out).
            servers: vec!["127.0.0.1:9".parse().unwrap()],
            timeout: Duration::from_millis(300),
            per_minute,
            cache_size: 16,
            ..Default::default()
        }
    }

    fn ip(i: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, i])
    }

    #[tokio::test]
    async fn the_cap_bounds_lookups_and_failures_are_remembered() {
        let dns = Arc::new(Dns::new(&settings(2)).unwrap());
        for i in 1..=3 {
            assert_eq!(dns.name_now(ip(i)), None, "nothing known yet");
        }
        assert_eq!(dns.stats.capped.load(Ordering::Relaxed), 1, "the third");
        let start = Instant::now();
        while !dns.lock().pending.is_empty() {
            assert!(start.elapsed() < Duration::from_secs(5), "lookups hang");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let failed =
            dns.stats.failed.load(Ordering::Relaxed) + dns.stats.timed_out.load(Ordering::Relaxed);
        assert_eq!(failed, 2);
        assert_eq!(dns.cached(), 2);
        // Remembered: asking again starts no lookup (and so takes nothing from the cap).
        assert_eq!(dns.name_now(ip(1)), None);
        assert!(dns.lock().pending.is_empty());
        assert_eq!(dns.stats.capped.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn the_cache_is_bounded_and_keeps_stale_names_until_refreshed() {
        let dns = Arc::new(Dns::new(&settings(1000)).unwrap());
        for i in 0..40 {
            dns.remember(
                ip(i),
                (Some(Arc::from("x.example")), Duration::from_secs(60)),
            );
            assert!(dns.cached() <= 16);
        }
        assert_eq!(
            dns.lock()
                .cache
                .get(&ip(39))
                .and_then(|e| e.name.clone())
                .as_deref(),
            Some("x.example"),
            "the newest stays"
        );
        dns.remember(ip(200), (Some(Arc::from("old.example")), Duration::ZERO));
        // Stale: shown while a new lookup runs, and kept when that lookup fails (the server
        // is down, which says nothing about the name).
        assert_eq!(dns.name_now(ip(200)).as_deref(), Some("old.example"));
        assert!(dns.lock().pending.contains(&ip(200)));
        let start = Instant::now();
        while dns.lock().pending.contains(&ip(200)) {
            assert!(start.elapsed() < Duration::from_secs(5), "the lookup hangs");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let e = dns
            .lock()
            .cache
            .get(&ip(200))
            .map(|e| (e.name.clone(), e.until > Instant::now()));
        assert_eq!(e, Some((Some(Arc::from("old.example")), true)));
    }
}
