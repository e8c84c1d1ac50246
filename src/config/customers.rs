//! `[[customer]]`: names, addresses, vif, mark, allotment, shaping parameters, billing day,
//! validated once. An address in two customers, an address outside `accounting.local`, or one
//! finer than `accounting.ipv6_prefix` is an error naming both places: such traffic would be
//! billed twice or never. Nothing here reads the store or runs a command.

use super::guard::Guard;
use super::raw::{RawAllotment, RawCustomer, RawShape};
use super::shaping::{Method, Shaping};
use super::{Accounting, VResult, Validator};
use crate::parse::l2::Mac;
use crate::quantity::{Micros, Rate, Size};
use ipnet::IpNet;
use std::ops::Range;
use toml::Spanned;

/// One customer of the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub name: String,
    /// Addresses (as /32 and /128) and networks, never overlapping another customer's.
    pub networks: Vec<IpNet>,
    /// The domU's interface on the dom0 (traffic to the customer leaves through it).
    pub vif: Option<String>,
    /// The fw mark of its outgoing traffic and the minor number of its HTB class (1 to 32767).
    pub mark: Option<u32>,
    pub allotment: Option<Allotment>,
    pub shape: Option<Shape>,
    /// Day of the month (UTC) on which its billing period starts, 1 to 31; a day past the end
    /// of a month means that month's last day.
    pub billing_day: u32,
    /// The MACs its addresses may send from (`[guard]`): a packet with its source address from
    /// any other MAC is *spoofed*. Empty: not bound.
    pub macs: Vec<Mac>,
}

/// What a customer pays for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allotment {
    /// Bytes per billing period, counted as `measure` says.
    Volume { bytes: u64, measure: Measure },
    /// The 95th percentile of 5-minute rates over the billing period, bits per second.
    P95 { bits_per_s: u64 },
}

/// Which bytes a volume allotment counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Total,
    Tx,
    Rx,
    /// The larger of sent and received.
    Max,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::Total => "total",
            Measure::Tx => "tx",
            Measure::Rx => "rx",
            Measure::Max => "max",
        }
    }
}

/// The shaping parameters of a customer (TBF on its vif, an HTB class on the uplink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub rate: Rate,
    pub peak: Option<Rate>,
    pub burst: Size,
    pub latency: Micros,
}

/// One gigabyte of allotment: 10⁹ bytes, as providers bill.
pub const GB: f64 = 1e9;
/// Marks go from 1 to this (the u32 filters of the address method use two priorities per mark).
pub const MAX_MARK: i64 = 32_767;
/// The smallest burst TBF and HTB can work with at a 1500-byte MTU.
const MIN_BURST: u64 = 1600;

impl Validator<'_> {
    fn line_of(&self, span: &Range<usize>) -> usize {
        self.src
            .text
            .get(..span.start)
            .map_or(0, |s| s.matches('\n').count())
            + 1
    }

    pub(super) fn customers(
        &self,
        raw: Vec<Spanned<RawCustomer>>,
        acct: &Accounting,
        shaping: &Shaping,
        guard: Option<&Guard>,
    ) -> VResult<Vec<Customer>> {
        let mut out: Vec<Customer> = Vec::new();
        // (network, its span, customer name) of every customer so far.
        let mut taken: Vec<(IpNet, Range<usize>, String)> = Vec::new();
        let mut names: Vec<(String, Range<usize>)> = Vec::new();
        let mut vifs: Vec<(String, Range<usize>, String)> = Vec::new();
        let mut marks: Vec<(u32, Range<usize>, String)> = Vec::new();
        for entry in raw {
            let span = entry.span();
            let c = entry.into_inner();
            self.name(&c.name)?;
            let name = c.name.get_ref().clone();
            if let Some((_, at)) = names.iter().find(|(n, _)| *n == name) {
                return self.err(
                    c.name.span(),
                    format!(
                        "customer {name:?} is already defined at line {}",
                        self.line_of(at)
                    ),
                );
            }
            names.push((name.clone(), c.name.span()));
            let networks = self.customer_networks(&c, &span, acct, &mut taken)?;
            let macs = self.customer_macs(&c, guard)?;
            let vif = match &c.vif {
                Some(v) => {
                    self.interface_name(v)?;
                    if let Some((_, at, other)) = vifs.iter().find(|(x, _, _)| x == v.get_ref()) {
                        return self.err(
                            v.span(),
                            format!(
                                "vif {:?} is already customer {other:?}'s (line {})",
                                v.get_ref(),
                                self.line_of(at)
                            ),
                        );
                    }
                    vifs.push((v.get_ref().clone(), v.span(), name.clone()));
                    Some(v.get_ref().clone())
                }
                None => None,
            };
            let mark = match &c.mark {
                Some(m) => {
                    let v = self.int(&c.mark, 1, 1, MAX_MARK)? as u32;
                    if let Some((_, at, other)) = marks.iter().find(|(x, _, _)| *x == v) {
                        return self.err(
                            m.span(),
                            format!(
                                "mark {v} is already customer {other:?}'s (line {})",
                                self.line_of(at)
                            ),
                        );
                    }
                    marks.push((v, m.span(), name.clone()));
                    Some(v)
                }
                None => None,
            };
            let shape = match c.shape {
                Some(s) => Some(self.shape(s, shaping)?),
                None => None,
            };
            if shape.is_some() {
                if mark.is_none() {
                    return self.err(span, format!("customer {name:?} has a shape but no mark: the mark numbers its shaping class (1 to {MAX_MARK})"));
                }
                if shaping.method == Method::Bridge && vif.is_none() {
                    return self.err(span, format!("customer {name:?} has a shape but no vif: the bridge method shapes the traffic to it on its vif (or set shaping.method = \"address\")"));
                }
            }
            out.push(Customer {
                macs,
                name,
                networks,
                vif,
                mark,
                allotment: match c.allotment {
                    Some(a) => Some(self.allotment(a)?),
                    None => None,
                },
                shape,
                billing_day: self.int(&c.billing_day, 1, 1, 31)? as u32,
            });
        }
        Ok(out)
    }

    fn customer_networks(
        &self,
        c: &RawCustomer,
        span: &Range<usize>,
        acct: &Accounting,
        taken: &mut Vec<(IpNet, Range<usize>, String)>,
    ) -> VResult<Vec<IpNet>> {
        let name = c.name.get_ref();
        let Some(addresses) = &c.addresses else {
            return self.err(
                span.clone(),
                format!("customer {name:?} has no addresses: list its addresses and networks"),
            );
        };
        if addresses.get_ref().is_empty() {
            return self.err(
                addresses.span(),
                format!("customer {name:?} has no addresses"),
            );
        }
        let mut nets = Vec::new();
        for a in addresses.get_ref() {
            let net = self.network(a)?;
            if !acct.local.iter().any(|l| l.contains(&net)) {
                return self.err(
                    a.span(),
                    format!(
                        "{net} is not inside accounting.local: its traffic would never be counted"
                    ),
                );
            }
            if let IpNet::V6(v6) = net {
                if v6.prefix_len() > acct.ipv6_prefix {
                    return self.err(
                        a.span(),
                        format!(
                            "{net} is finer than accounting.ipv6_prefix = {}: the counters only see whole /{} networks; list {} instead",
                            acct.ipv6_prefix,
                            acct.ipv6_prefix,
                            IpNet::new(net.addr(), acct.ipv6_prefix).map_or(net, |n| n.trunc())
                        ),
                    );
                }
            }
            if let Some((other, at, owner)) = taken
                .iter()
                .find(|(n, _, _)| n.contains(&net) || net.contains(n))
            {
                let what = if other == &net {
                    format!("{net} is")
                } else {
                    format!("{net} overlaps {other},")
                };
                let whose = if owner == name {
                    "listed twice for this customer".to_owned()
                } else {
                    format!("already in customer {owner:?}")
                };
                return self.err(
                    a.span(),
                    format!("{what} {whose} (line {})", self.line_of(at)),
                );
            }
            taken.push((net, a.span(), name.clone()));
            nets.push(net);
        }
        Ok(nets)
    }

    /// `macs`: unicast, each once, and only with `[guard]` (nothing else would check them).
    fn customer_macs(&self, c: &RawCustomer, guard: Option<&Guard>) -> VResult<Vec<Mac>> {
        let Some(list) = &c.macs else {
            return Ok(Vec::new());
        };
        if guard.is_none() {
            return self.err(
                list.span(),
                format!(
                    "customer {:?} binds MACs but [guard] is not set: nothing would check them",
                    c.name.get_ref()
                ),
            );
        }
        if list.get_ref().is_empty() {
            return self.err(
                list.span(),
                "macs is empty: list the customer's MACs or leave it out",
            );
        }
        let mut macs: Vec<Mac> = Vec::new();
        for m in list.get_ref() {
            let mac = self.unicast_mac(m)?;
            if macs.contains(&mac) {
                return self.err(m.span(), format!("{mac} is listed twice"));
            }
            macs.push(mac);
        }
        Ok(macs)
    }

    fn allotment(&self, raw: Spanned<RawAllotment>) -> VResult<Allotment> {
        let span = raw.span();
        let a = raw.into_inner();
        let positive = |v: &Spanned<f64>, what: &str| -> VResult<f64> {
            let x = *v.get_ref();
            if x.is_finite() && x > 0.0 && x < 1e12 {
                Ok(x)
            } else {
                self.err(v.span(), format!("{what} must be a positive number"))
            }
        };
        match (&a.monthly_gb, &a.p95_mbit) {
            (Some(gb), None) => {
                let bytes = (positive(gb, "monthly_gb")? * GB).round() as u64;
                let measure = match &a.measure {
                    None => Measure::Total,
                    Some(m) => match m.get_ref().as_str() {
                        "total" => Measure::Total,
                        "tx" => Measure::Tx,
                        "rx" => Measure::Rx,
                        "max" => Measure::Max,
                        other => {
                            return self.err(
                                m.span(),
                                format!("{other:?} is not a measure: expected \"total\", \"tx\", \"rx\" or \"max\""),
                            )
                        }
                    },
                };
                Ok(Allotment::Volume {
                    bytes: bytes.max(1),
                    measure,
                })
            }
            (None, Some(mbit)) => {
                if let Some(m) = &a.measure {
                    return self.err(m.span(), "measure goes with monthly_gb; a p95_mbit allotment always bills the larger of in and out");
                }
                let bits = (positive(mbit, "p95_mbit")? * 1e6).round() as u64;
                Ok(Allotment::P95 {
                    bits_per_s: bits.max(1),
                })
            }
            (Some(_), Some(p)) => self.err(p.span(), "give monthly_gb or p95_mbit, not both"),
            (None, None) => self.err(
                span,
                "an allotment needs monthly_gb (with an optional measure) or p95_mbit",
            ),
        }
    }

    fn shape(&self, raw: Spanned<RawShape>, shaping: &Shaping) -> VResult<Shape> {
        let s = raw.into_inner();
        let rate =
            Rate::parse(s.rate.get_ref()).or_else(|e| self.err(s.rate.span(), e.to_string()))?;
        let peak = match &s.peak {
            Some(p) => {
                let peak =
                    Rate::parse(p.get_ref()).or_else(|e| self.err(p.span(), e.to_string()))?;
                if peak <= rate {
                    return self.err(
                        p.span(),
                        format!("peak {peak} must be above rate {rate} (TBF refuses otherwise)"),
                    );
                }
                Some(peak)
            }
            None => None,
        };
        let burst = match &s.burst {
            Some(b) => {
                let size =
                    Size::parse(b.get_ref()).or_else(|e| self.err(b.span(), e.to_string()))?;
                let least = MIN_BURST.max(u64::from(shaping.mtu));
                if size.0 < least {
                    return self.err(
                        b.span(),
                        format!("burst {size} is below {least} bytes: it must hold a full packet"),
                    );
                }
                size
            }
            // A tenth of a second at the rate, and never less than 32 KiB.
            None => Size((rate.bytes_per_s() / 10).max(32 << 10)),
        };
        let latency = match &s.latency {
            Some(l) => Micros::parse(l.get_ref()).or_else(|e| self.err(l.span(), e.to_string()))?,
            None => Micros(50_000),
        };
        Ok(Shape {
            rate,
            peak,
            burst,
            latency,
        })
    }
}

impl Customer {
    /// One line for `check-config`.
    pub fn describe(&self) -> String {
        let nets: Vec<String> = self.networks.iter().map(IpNet::to_string).collect();
        let mut s = format!("customer    {} {}", self.name, nets.join(", "));
        if let Some(v) = &self.vif {
            s.push_str(&format!(", vif {v}"));
        }
        if let Some(m) = self.mark {
            s.push_str(&format!(", mark {m}"));
        }
        match self.allotment {
            Some(Allotment::Volume { bytes, measure }) => s.push_str(&format!(
                ", allotment {} GB/month ({})",
                bytes as f64 / GB,
                measure.name()
            )),
            Some(Allotment::P95 { bits_per_s }) => s.push_str(&format!(
                ", allotment {} (95th percentile)",
                crate::units::bits_per_second(bits_per_s as f64)
            )),
            None => s.push_str(", no allotment"),
        }
        s.push_str(&format!(", billing day {}", self.billing_day));
        if !self.macs.is_empty() {
            let macs: Vec<String> = self.macs.iter().map(Mac::to_string).collect();
            s.push_str(&format!(", bound to {}", macs.join(" ")));
        }
        if let Some(sh) = &self.shape {
            s.push_str(&format!(", shape rate {}", sh.rate));
            if let Some(p) = sh.peak {
                s.push_str(&format!(" peak {p}"));
            }
            s.push_str(&format!(" burst {} latency {}", sh.burst, sh.latency));
        }
        s
    }
}
