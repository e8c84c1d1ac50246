//! The kernel fanout in namespaces: with `capture.fanout = "host"` every packet of one local
//! host, whatever its flow, VLAN tags or family, reaches the same capture thread (the classic
//! BPF program runs in the kernel as designed); with `"flow"` one host's flows spread over the
//! threads. Both count exactly. Root only.

use crate::common::*;
use crate::live::{run_during_replay, thread_received, Netns};
use crate::pcapgen::{mac, Pcap};
use etherparse::PacketBuilder;
use std::collections::BTreeMap;

/// The local hosts of the traffic: 198.51.100.17 and 2001:db8:100::17 fold to the same key
/// modulo 3 (2), so with three threads anything the program did not key by host (a tag it
/// missed, the other family) would show up on another thread.
const HOST4: [u8; 4] = [198, 51, 100, 17];
const HOST6: &str = "2001:db8:100::17";
const THREADS: usize = 3;

/// 1,200 UDP frames to and from the two hosts, over 240 remote peers and ports, untagged,
/// 802.1Q and QinQ; returns (bytes, packets) per address and direction as the truth.
fn frames(path: &std::path::Path) -> BTreeMap<(String, &'static str), (u64, u64)> {
    let mut pcap = Pcap::create(path);
    let mut truth = BTreeMap::new();
    let host6: std::net::Ipv6Addr = HOST6.parse().unwrap();
    for i in 0..1200u32 {
        let peer = (i % 240) as u8 + 1;
        let out = i % 2 == 0;
        let port = 20_000 + (i % 97) as u16;
        let eth = PacketBuilder::ethernet2(mac(0x0200_0000_0001), mac(0x0200_0000_0002));
        let eth = match i % 3 {
            0 => eth.single_vlan(7u16.try_into().unwrap()),
            1 => eth.double_vlan(100u16.try_into().unwrap(), 7u16.try_into().unwrap()),
            _ => eth.single_vlan(9u16.try_into().unwrap()),
        };
        let payload = vec![0x5a; 60 + (i % 400) as usize];
        let mut frame = Vec::new();
        let (addr, ip_len) = if i % 5 < 3 {
            let remote = [203, 0, 113, peer];
            let (s, d) = if out {
                (HOST4, remote)
            } else {
                (remote, HOST4)
            };
            let b = eth.ipv4(s, d, 64).udp(port, 9999);
            let len = b.size(payload.len()) - 18 - if i % 3 == 1 { 4 } else { 0 };
            b.write(&mut frame, &payload).unwrap();
            ("198.51.100.17".to_owned(), len)
        } else {
            let mut remote = [0u8; 16];
            remote[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            remote[4] = 0xff;
            remote[15] = peer;
            let (s, d) = if out {
                (host6.octets(), remote)
            } else {
                (remote, host6.octets())
            };
            let b = eth.ipv6(s, d, 64).udp(port, 9999);
            let len = b.size(payload.len()) - 18 - if i % 3 == 1 { 4 } else { 0 };
            b.write(&mut frame, &payload).unwrap();
            (HOST6.to_owned(), len)
        };
        // untagged for every third frame of the 802.1Q kind: strip the tag
        if i % 6 == 2 {
            frame.drain(12..16);
        }
        pcap.frame(1_700_000_000, i, &frame);
        let dir = if out { "tx" } else { "rx" };
        let t = truth.entry((addr, dir)).or_insert((0, 0));
        t.0 += ip_len as u64;
        t.1 += 1;
    }
    truth
}

fn fanout_run(mode: &str) -> Vec<u64> {
    let net = Netns::new("fo");
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("host.pcap");
    let truth = frames(&pcap);
    let cfg = config(
        dir.path(),
        &["198.51.100.0/24", "2001:db8:100::/56"],
        &format!(
            "[capture]\ninterfaces = [\"{}\"]\nthreads = {THREADS}\nfanout = \"{mode}\"\n",
            net.if_a
        ),
    );
    let summary = run_during_replay(&net, &cfg, &pcap, 4000);
    let rows = report_all(&cfg);
    for ((addr, dir), (bytes, packets)) in &truth {
        let row = rows
            .get(addr)
            .unwrap_or_else(|| panic!("{addr} missing: {rows:?}"));
        assert_eq!(
            row[format!("{dir}_bytes")],
            *bytes,
            "{mode}: {addr} {dir} bytes"
        );
        assert_eq!(
            row[format!("{dir}_packets")],
            *packets,
            "{mode}: {addr} {dir} packets"
        );
    }
    assert_eq!(
        rows.len(),
        2,
        "{mode}: only the two hosts: {:?}",
        rows.keys()
    );
    let per_thread = thread_received(&summary);
    assert_eq!(per_thread.len(), THREADS, "{summary}");
    assert!(per_thread.iter().sum::<u64>() >= 1200, "{summary}");
    per_thread
}

#[test]
fn fanout_by_host_gives_each_host_one_thread_and_by_flow_spreads_it() {
    if !is_root() {
        eprintln!("SKIPPED: live capture in network namespaces needs root (CI runs it as root)");
        return;
    }
    let host = fanout_run("host");
    // the namespaces' own few frames (IPv6 multicast listener reports...) may go elsewhere
    assert!(
        host[2] >= 1200 && host[0] + host[1] < 10,
        "by host, the thread of the hosts' key (2 of 3) gets every packet of theirs: {host:?}"
    );
    let flow = fanout_run("flow");
    assert!(
        flow.iter().filter(|&&n| n > 100).count() >= 2,
        "by flow, the host's 240 peers spread: {flow:?}"
    );
}
