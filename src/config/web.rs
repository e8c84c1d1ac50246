//! `[web]`: where the dashboard, the JSON API and `/metrics` listen. Localhost by default;
//! another address only when the operator writes it.

use super::raw::RawWeb;
use super::{VResult, Validator};
use std::net::SocketAddr;

/// The listening address when `[web]` gives none (and for `serve` without `[web]`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone)]
pub struct Web {
    pub listen: SocketAddr,
}

impl Default for Web {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

impl Validator<'_> {
    pub(super) fn web(&self, raw: Option<RawWeb>) -> VResult<Option<Web>> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let listen = match raw.listen {
            None => Web::default().listen,
            Some(s) => match s.get_ref().trim().parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    return self.err(
                        s.span(),
                        format!(
                            "{:?} is not an address and port (e.g. {DEFAULT_LISTEN} or [::1]:8080)",
                            s.get_ref()
                        ),
                    )
                }
            },
        };
        Ok(Some(Web { listen }))
    }
}
