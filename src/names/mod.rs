//! Names people recognise for addresses. The config's names win: an address's `static` name,
//! then the customer that holds it; only the rest are looked up by reverse DNS, when it is on.
//! `name` never waits (pages): it answers from what is known and leaves a lookup running in the
//! background; only `resolve` (commands) waits, bounded in time. Every name from DNS is checked
//! by [`hostname::check`] before it is kept, and printing escapes it again. Nothing here touches
//! capture or the store.

pub mod dns;
pub mod hostname;

use crate::config;
use crate::customer::Customers;
use crate::usage::Host;
use dns::Dns;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Names of hosts (only hosts that have one).
pub type NameMap = HashMap<Host, String>;

/// How long a command waits for names in all; names not known by then are left out.
pub const COMMAND_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum NamesError {
    #[error("cannot set up reverse DNS: {0}")]
    Resolver(String),
    #[error("cannot start the resolver's runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

pub struct Names {
    fixed: HashMap<IpAddr, String>,
    customers: Arc<Customers>,
    dns: Option<Arc<Dns>>,
}

impl Names {
    /// The names of `settings` and `customers`; with reverse DNS when it is on, in which case
    /// this must be called inside a tokio runtime (lookups run there).
    pub fn start(settings: &config::Names, customers: Arc<Customers>) -> Result<Self, NamesError> {
        let dns = match settings.reverse_dns {
            true => Some(Arc::new(Dns::new(settings)?)),
            false => None,
        };
        Ok(Self {
            fixed: settings.fixed.iter().cloned().collect(),
            customers,
            dns,
        })
    }

    /// The config's name of a host: its static name, else its customer's.
    pub fn configured(&self, host: &Host) -> Option<&str> {
        if let Host::Addr(ip) = host {
            if let Some(n) = self.fixed.get(ip) {
                return Some(n);
            }
        }
        self.customers.of(host).map(|c| c.name.as_str())
    }

    /// The name of a host as known now. Never waits: an address without a known name is
    /// looked up in the background (a later call shows the name).
    pub fn name(&self, host: &Host) -> Option<String> {
        if let Some(n) = self.configured(host) {
            return Some(n.to_owned());
        }
        match (host, &self.dns) {
            (Host::Addr(ip), Some(dns)) => dns.name_now(*ip).map(|n| n.to_string()),
            _ => None,
        }
    }

    /// The names of some hosts as known now (never waits; see [`Names::name`]).
    pub fn known<'a>(&self, hosts: impl IntoIterator<Item = &'a Host>) -> NameMap {
        hosts
            .into_iter()
            .filter_map(|h| self.name(h).map(|n| (*h, n)))
            .collect()
    }

    /// The names of `hosts`, waiting for lookups (each bounded by the timeout, all by `wait`,
    /// as many as the per-minute cap allows). Returns them and how many addresses were left
    /// unasked (the cap) or without an answer in time.
    pub async fn resolve(&self, hosts: &[Host], wait: Duration) -> (NameMap, usize) {
        let mut names = NameMap::new();
        let mut asked = Vec::new();
        for h in hosts {
            match (self.configured(h), h) {
                (Some(n), _) => {
                    names.insert(*h, n.to_owned());
                }
                (None, Host::Addr(ip)) if self.dns.is_some() => asked.push(*ip),
                _ => {}
            }
        }
        let Some(dns) = &self.dns else {
            return (names, 0);
        };
        let capped = dns.stats.capped.load(std::sync::atomic::Ordering::Relaxed);
        let mut set = tokio::task::JoinSet::new();
        for ip in asked.iter().copied() {
            let dns = Arc::clone(dns);
            set.spawn(async move { (ip, dns.lookup(ip).await) });
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut answered = 0;
        while let Ok(Some(done)) = tokio::time::timeout_at(deadline, set.join_next()).await {
            if let Ok((ip, name)) = done {
                answered += 1;
                if let Some(n) = name {
                    names.insert(Host::Addr(ip), n.to_string());
                }
            }
        }
        let capped = dns.stats.capped.load(std::sync::atomic::Ordering::Relaxed) - capped;
        (names, asked.len() - answered + capped as usize)
    }

    /// The resolver's counters and the number of cached answers, when reverse DNS is on.
    pub fn dns(&self) -> Option<(&dns::DnsStats, usize)> {
        self.dns.as_deref().map(|d| (&d.stats, d.cached()))
    }
}

/// The names of `hosts` for a command (no runtime of its own): config names, and reverse DNS
/// when it is on, waiting at most [`COMMAND_WAIT`]. A warning says how many were left out.
pub fn resolve_blocking(
    settings: &config::Names,
    customers: Arc<Customers>,
    hosts: &[Host],
) -> Result<NameMap, NamesError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (names, missing) = rt.block_on(async {
        let names = Names::start(settings, customers)?;
        Ok::<_, NamesError>(names.resolve(hosts, COMMAND_WAIT).await)
    })?;
    if missing > 0 {
        tracing::warn!(
            "reverse DNS: {missing} address(es) were not looked up (the per-minute cap) or got no answer within {} s; shown without a name",
            COMMAND_WAIT.as_secs()
        );
    }
    Ok(names)
}
