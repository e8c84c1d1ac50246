//! Packet sources: live interfaces (`live`, spread over threads by `fanout`) and capture files
//! (`file`), both through libpcap.
//! Each source runs on its own thread and feeds the counters; this module owns the pcap handles
//! and their statistics, nothing downstream.

pub mod fanout;
pub mod file;
pub mod live;
mod ring;
pub mod spread;

use crate::parse::UnsupportedLinkType;

/// Kernel filters for IP traffic, best first: on Ethernet, IP with one or two VLAN tags, MPLS,
/// and the shims the decoder reads (MACsec 0x88e5, NSH 0x894f, Arista timestamps 0xd28b);
/// elsewhere (Linux cooked, raw IP), plain IP. libpcap's `vlan` and `mpls` shift the offsets of
/// what follows and refuse some combinations, hence the nesting and MPLS matched by its
/// ethertype bytes. (`pppoes` compiles, but the kernel rejects the program and libpcap would
/// silently filter in user space: PPPoE is decoded from files only.)
const IP_FILTERS: [&str; 2] = [
    "(ip or ip6) or ether[12:2] = 0x8847 or ether[12:2] = 0x8848 \
     or ether[12:2] = 0x88e5 or ether[12:2] = 0x894f or ether[12:2] = 0xd28b \
     or (vlan and (ip or ip6 or (vlan and (ip or ip6))))",
    "ip or ip6",
];

/// The BPF programs a live capture tries, in order: the operator's filter ANDed with each IP
/// filter. With `arp` (the layer-2 guard), ARP, tagged or not, passes too.
pub fn bpf_filters(user: &str, arp: bool) -> Vec<String> {
    let user = user.trim();
    IP_FILTERS
        .iter()
        .map(|ip| {
            let ip = if arp {
                ip.replace("ip or ip6", "ip or ip6 or arp")
            } else {
                (*ip).to_owned()
            };
            if user.is_empty() {
                ip
            } else {
                format!("({user}) and ({ip})")
            }
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open capture file {path}: {source}")]
    OpenFile { path: String, source: pcap::Error },
    #[error("cannot read capture file {path}: {source}")]
    ReadFile { path: String, source: pcap::Error },
    #[error("{path}: {source}")]
    LinkType {
        path: String,
        source: UnsupportedLinkType,
    },
    #[error("cannot capture on interface {interface:?}: {source}")]
    OpenInterface {
        interface: String,
        source: pcap::Error,
    },
    #[error("interface {interface:?}: {source}")]
    InterfaceLinkType {
        interface: String,
        source: UnsupportedLinkType,
    },
    #[error("interface {interface:?}: bad capture filter {filter:?}: {source}")]
    Filter {
        interface: String,
        filter: String,
        source: pcap::Error,
    },
    #[error("interface {interface:?}: no kernel filter to install")]
    NoFilter { interface: String },
    #[error("interface {interface:?}: cannot share the capture between threads (PACKET_FANOUT): {source}; set capture.threads = 1")]
    Fanout {
        interface: String,
        source: std::io::Error,
    },
    #[error("no capture device: libpcap found none (set capture.interfaces)")]
    NoDevice,
}
