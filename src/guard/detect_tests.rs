//! The detector's rules on hand-made parts: flood thresholds and baseline, ARP conflicts against
//! active, idle, IP-learnt and bound bindings, reply floods, spoofed sums across observers.

use super::observe::{ArpCounts, Claim, Spoofed};
use super::*;
use crate::config::Config;
use std::path::Path;

const START: i64 = 1_704_067_200;

fn policy(extra: &str) -> Arc<Policy> {
    let text = format!(
        "sensor = \"t\"\n[accounting]\nlocal = [\"198.51.100.0/24\", \"2001:db8:100::/56\"]\ninterval_s = 60\n\
         [guard]\nmac_flood_min = 1000\nmac_flood_factor = 4\nbinding_active_s = 300\narp_reply_flood = 50\n\
         bindings = {{ \"198.51.100.254\" = \"02:00:00:00:00:fe\" }}\n\
         [[customer]]\nname = \"goneril\"\naddresses = [\"198.51.100.10\", \"2001:db8:100:1::/64\"]\nmacs = [\"02:00:00:00:00:0a\"]\n\
         [[customer]]\nname = \"regan\"\naddresses = [\"198.51.100.20\"]\n{extra}"
    );
    let cfg = Config::parse(Path::new("t.toml"), &text).unwrap();
    let g = cfg.guard.clone().unwrap();
    Arc::new(Policy::new(&cfg, &g))
}

fn ip(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

use std::net::Ipv4Addr;

fn macs_part(start: i64, n: u64, vlan: u16) -> Part {
    Part {
        start,
        ports: vec!["br0".into()],
        macs: (0..n)
            .map(|i| (Mac(0x0200_0000_0000 + i), vlan, 0))
            .collect(),
        frames: n,
        ..Default::default()
    }
}

fn claim(ip_: &str, mac: u64, first: i64, frames: u64, unsolicited: u64) -> Claim {
    Claim {
        ip: ip(ip_),
        mac: Mac(mac),
        first,
        last: first + 1,
        frames,
        unsolicited,
        gratuitous: 0,
    }
}

fn arp_part(start: i64, claims: Vec<Claim>) -> Part {
    Part {
        start,
        arp: ArpCounts {
            replies: claims.iter().map(|c| c.frames).sum(),
            unsolicited: claims.iter().map(|c| c.unsolicited).sum(),
            ..Default::default()
        },
        claims,
        ..Default::default()
    }
}

fn kinds(v: &Verdict) -> Vec<Kind> {
    v.events.iter().map(|e| e.kind).collect()
}

#[test]
fn a_flood_needs_the_absolute_threshold_and_then_the_baseline_factor() {
    let mut d = Detector::new(policy(""));
    // no baseline yet: the absolute threshold alone decides
    let v = d.interval(START, &[macs_part(START, 999, 0)]);
    assert!(v.events.is_empty());
    assert_eq!(v.stats.baseline, None);
    let mut flood = macs_part(START + 60, 1500, 10);
    flood
        .macs
        .extend((0..20).map(|i| (Mac(0x0600_0000_0000 + i), 0, 0)));
    let v = d.interval(START + 60, &[flood]);
    assert_eq!(kinds(&v), [Kind::MacFlood]);
    let e = &v.events[0];
    assert_eq!(e.packets, 1520);
    assert_eq!(
        e.groups,
        vec![
            Group {
                interface: "br0".into(),
                vlan: 10,
                macs: 1500
            },
            Group {
                interface: "br0".into(),
                vlan: 0,
                macs: 20
            }
        ]
    );
    assert_eq!(e.macs.len(), 5);
    assert!(
        e.macs.iter().all(|m| m.0 >> 40 == 0x02),
        "examples from the top group"
    );
    assert!(e.reason.contains("no baseline yet"), "{}", e.reason);
    // 600 MACs is this network's normal, learnt over three quiet intervals
    for i in 2..5 {
        let v = d.interval(START + 60 * i, &[macs_part(START + 60 * i, 600, 0)]);
        assert!(v.events.is_empty());
    }
    let v = d.interval(START + 300, &[macs_part(START + 300, 2399, 0)]);
    assert_eq!(v.stats.baseline, Some(600));
    assert!(
        v.events.is_empty(),
        "over the minimum but under 4× the baseline"
    );
    let v = d.interval(START + 360, &[macs_part(START + 360, 2400, 0)]);
    assert_eq!(kinds(&v), [Kind::MacFlood]);
    assert!(
        v.events[0].reason.contains("baseline 600"),
        "{}",
        v.events[0].reason
    );
    // the flood did not raise the baseline; an idle interval does not lower it
    let v = d.interval(START + 420, &[Part::default()]);
    assert!(v.events.is_empty());
    let v = d.interval(START + 480, &[macs_part(START + 480, 2400, 0)]);
    assert_eq!(v.stats.baseline, Some(600));
    assert_eq!(kinds(&v), [Kind::MacFlood]);
}

#[test]
fn macs_are_counted_once_across_observers_and_the_cap_is_reported() {
    let mut d = Detector::new(policy(""));
    let a = macs_part(START, 600, 0);
    let mut b = macs_part(START, 600, 0);
    b.ports = vec!["eth1".into()];
    b.macs_past_cap = 7;
    let v = d.interval(START, &[a, b]);
    assert_eq!(v.stats.macs, 600, "a lower bound past the cap");
    assert!(v.stats.macs_capped);
    assert!(v.events.is_empty());
}

#[test]
fn a_new_mac_claiming_an_active_binding_is_arp_spoofing_once_per_interval() {
    let mut d = Detector::new(policy(""));
    let gw = 0x0200_0000_0001;
    let evil = 0x0200_0000_0bad;
    let v = d.interval(
        START,
        &[arp_part(
            START,
            vec![claim("198.51.100.1", gw, START + 5, 3, 0)],
        )],
    );
    assert!(v.events.is_empty());
    assert_eq!(v.stats.new_arp_bindings, 1);
    assert_eq!(v.stats.active_bindings, 1);
    // two observers see the attacker; the gateway keeps answering
    let t = START + 60;
    let parts = [
        arp_part(
            t,
            vec![
                claim("198.51.100.1", evil, t + 10, 4, 4),
                claim("198.51.100.1", gw, t + 20, 1, 0),
            ],
        ),
        arp_part(t, vec![claim("198.51.100.1", evil, t + 12, 2, 2)]),
    ];
    let v = d.interval(t, &parts);
    assert_eq!(kinds(&v), [Kind::ArpSpoof]);
    let e = &v.events[0];
    assert_eq!(e.ip, Some("198.51.100.1".parse().unwrap()));
    assert_eq!(e.old_macs, vec![Mac(gw)]);
    assert_eq!(e.new_mac, Some(Mac(evil)));
    assert_eq!(e.packets, 6);
    assert_eq!(e.ts, t + 10);
    assert_eq!(e.customer, None);
    // the next interval, still at it: one more event (once per interval)
    let t = START + 120;
    let v = d.interval(
        t,
        &[arp_part(t, vec![claim("198.51.100.1", evil, t + 1, 1, 1)])],
    );
    assert_eq!(kinds(&v), [Kind::ArpSpoof]);
    // the gateway gone quiet for longer than binding_active_s: the address moves, no alarm
    let t = START + 120 + 400;
    let v = d.interval(
        t,
        &[arp_part(t, vec![claim("198.51.100.1", evil, t + 1, 1, 0)])],
    );
    assert!(v.events.is_empty());
    assert_eq!(v.stats.new_arp_bindings, 1);
}

#[test]
fn ip_learnt_bindings_are_kept_fresh_but_not_defended() {
    let mut d = Detector::new(policy(""));
    let router = 0x0200_0000_0099;
    let host = 0x0200_0000_0033;
    let mut p = Part {
        start: START,
        learnt: vec![(ip("198.51.100.33"), Mac(router), START + 1)],
        ..Default::default()
    };
    let v = d.interval(START, &[p.clone()]);
    assert_eq!(v.stats.new_ip_bindings, 1);
    // the host's own ARP is no spoofing of a binding only IP packets taught
    p = arp_part(
        START + 60,
        vec![claim("198.51.100.33", host, START + 61, 1, 0)],
    );
    p.learnt = vec![(ip("198.51.100.33"), Mac(router), START + 62)];
    let v = d.interval(START + 60, &[p]);
    assert!(v.events.is_empty());
    assert_eq!(v.stats.new_arp_bindings, 1);
    // an ARP binding refreshed by IP packets of the same MAC stays active
    let later = START + 60 + 250;
    let p = Part {
        start: later,
        learnt: vec![(ip("198.51.100.33"), Mac(host), later + 50)],
        ..Default::default()
    };
    d.interval(later, &[p]);
    let t = later + 300;
    let v = d.interval(
        t,
        &[arp_part(
            t,
            vec![claim("198.51.100.33", router, t + 1, 1, 0)],
        )],
    );
    assert_eq!(
        kinds(&v),
        [Kind::ArpSpoof],
        "the host was seen 251 s before"
    );
}

#[test]
fn bound_and_configured_addresses_are_defended_from_the_first_frame() {
    let mut d = Detector::new(policy(""));
    let v = d.interval(
        START,
        &[arp_part(
            START,
            vec![
                claim("198.51.100.10", 0x0200_0000_000a, START + 1, 1, 0),
                claim("198.51.100.10", 0x0200_0000_000b, START + 2, 1, 0),
                claim("198.51.100.254", 0x0200_0000_000b, START + 3, 2, 0),
                claim("198.51.100.254", 0x0200_0000_00fe, START + 4, 1, 0),
            ],
        )],
    );
    assert_eq!(kinds(&v), [Kind::ArpSpoof, Kind::ArpSpoof]);
    let (bound, configured) = (&v.events[0], &v.events[1]);
    assert_eq!(bound.customer.as_deref(), Some("goneril"));
    assert_eq!(bound.old_macs, vec![Mac(0x0200_0000_000a)]);
    assert!(
        bound.reason.contains("customer goneril's"),
        "{}",
        bound.reason
    );
    assert_eq!(configured.old_macs, vec![Mac(0x0200_0000_00fe)]);
    assert_eq!(configured.packets, 2);
    assert_eq!(
        v.stats.new_arp_bindings, 0,
        "pinned addresses are not learnt"
    );
}

#[test]
fn unsolicited_replies_past_the_threshold_are_a_flood() {
    let mut d = Detector::new(policy(""));
    let evil = 0x0200_0000_0bad;
    let mut claims: Vec<Claim> = (1..=40)
        .map(|i| claim(&format!("198.51.100.{}", 100 + i), evil, START + i, 1, 1))
        .collect();
    claims.push(claim("198.51.100.20", evil, START + 50, 9, 9));
    let v = d.interval(START, &[arp_part(START, claims.clone())]);
    assert!(v.events.is_empty(), "49 < 50");
    claims.push(claim("198.51.100.21", 0x0200_0000_0c0c, START + 55, 1, 1));
    let v = d.interval(START + 60, &[arp_part(START + 60, claims)]);
    assert_eq!(kinds(&v), [Kind::ArpReplyFlood]);
    let e = &v.events[0];
    assert_eq!(e.packets, 50);
    assert_eq!(e.ip, Some("198.51.100.20".parse().unwrap()));
    assert_eq!(e.customer.as_deref(), Some("regan"));
    assert_eq!(e.new_mac, Some(Mac(evil)));
    assert_eq!(e.macs, vec![Mac(evil), Mac(0x0200_0000_0c0c)]);
}

#[test]
fn spoofed_traffic_is_summed_across_observers_into_one_event_per_customer() {
    let mut d = Detector::new(policy(""));
    let s = |first: i64, ip: &str, packets: u64, bytes: u64, macs: &[u64]| Spoofed {
        customer: "goneril".into(),
        first,
        ip: ip.parse().unwrap(),
        packets,
        bytes,
        macs: macs.iter().map(|&m| Mac(m)).collect(),
    };
    let parts = [
        Part {
            spoofed: vec![s(START + 9, "198.51.100.10", 10, 1000, &[0xb, 0xc])],
            ..Default::default()
        },
        Part {
            spoofed: vec![s(START + 3, "2001:db8:100:1::7", 5, 700, &[0xc, 0xd])],
            ..Default::default()
        },
    ];
    let v = d.interval(START, &parts);
    assert_eq!(kinds(&v), [Kind::SpoofedSource]);
    let e = &v.events[0];
    assert_eq!((e.packets, e.bytes, e.ts), (15, 1700, START + 3));
    assert_eq!(e.ip, Some("2001:db8:100:1::7".parse().unwrap()));
    assert_eq!(e.customer.as_deref(), Some("goneril"));
    assert_eq!(e.old_macs, vec![Mac(0x0200_0000_000a)]);
    assert_eq!(e.macs, vec![Mac(0xb), Mac(0xc), Mac(0xd)]);
    assert_eq!((v.stats.spoofed_packets, v.stats.spoofed_bytes), (15, 1700));
}
