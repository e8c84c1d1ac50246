//! Captures written by the tests themselves: a pcap writer (Ethernet link type) and the frames
//! the layer-2 tests need, UDP over IPv4 (etherparse's builder, optionally VLAN-tagged) and ARP.

use etherparse::PacketBuilder;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

/// A pcap file being written; every frame is kept whole.
pub struct Pcap {
    out: std::io::BufWriter<std::fs::File>,
}

impl Pcap {
    pub fn create(path: &Path) -> Pcap {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create pcap"));
        // magic, version 2.4, thiszone, sigfigs, snaplen, LINKTYPE_ETHERNET
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
        out.write_all(&2u16.to_le_bytes()).unwrap();
        out.write_all(&4u16.to_le_bytes()).unwrap();
        for field in [0u32, 0, 262_144, 1] {
            out.write_all(&field.to_le_bytes()).unwrap();
        }
        Pcap { out }
    }

    /// One frame at `ts` (seconds) + `usec`.
    pub fn frame(&mut self, ts: i64, usec: u32, data: &[u8]) {
        let len = data.len() as u32;
        for field in [ts as u32, usec, len, len] {
            self.out.write_all(&field.to_le_bytes()).unwrap();
        }
        self.out.write_all(data).unwrap();
    }
}

impl Drop for Pcap {
    fn drop(&mut self) {
        self.out.flush().expect("write pcap");
    }
}

pub fn mac(m: u64) -> [u8; 6] {
    let b = m.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

pub fn mac_text(m: u64) -> String {
    mac(m)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A UDP datagram with `payload` bytes: its IP length is 28 + `payload`.
pub fn udp(
    src_mac: u64,
    dst_mac: u64,
    vlan: Option<u16>,
    src: &str,
    dst: &str,
    payload: usize,
) -> Vec<u8> {
    let (src, dst): (Ipv4Addr, Ipv4Addr) = (src.parse().unwrap(), dst.parse().unwrap());
    let eth = PacketBuilder::ethernet2(mac(src_mac), mac(dst_mac));
    let body = vec![0x5a; payload];
    let mut out = Vec::new();
    match vlan {
        Some(v) => eth
            .single_vlan(v.try_into().unwrap())
            .ipv4(src.octets(), dst.octets(), 64)
            .udp(40_000, 9999)
            .write(&mut out, &body)
            .unwrap(),
        None => eth
            .ipv4(src.octets(), dst.octets(), 64)
            .udp(40_000, 9999)
            .write(&mut out, &body)
            .unwrap(),
    }
    out
}

/// An ARP packet (1 request, 2 reply) in an Ethernet frame to `dst_mac`, padded to 60 bytes.
pub fn arp(op: u16, dst_mac: u64, sender: (u64, &str), target: (u64, &str)) -> Vec<u8> {
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap().octets();
    let mut f = mac(dst_mac).to_vec();
    f.extend_from_slice(&mac(sender.0));
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&mac(sender.0));
    f.extend_from_slice(&ip(sender.1));
    f.extend_from_slice(&mac(target.0));
    f.extend_from_slice(&ip(target.1));
    f.resize(60, 0);
    f
}

pub const BROADCAST: u64 = 0xffff_ffff_ffff;

/// Deterministic pseudo-random numbers (xorshift64*), for made-up MACs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A random locally administered unicast MAC.
    pub fn mac(&mut self) -> u64 {
        (self.next() & 0xffff_ffff_ffff & !(1 << 40)) | (1 << 41)
    }
}
