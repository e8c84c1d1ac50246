//! Frames built by hand for each counting rule, and property tests: no input panics.

use super::*;
use proptest::prelude::*;

const SRC4: [u8; 4] = [198, 51, 100, 7];
const DST4: [u8; 4] = [203, 0, 113, 9];

fn eth(ether_type: u16, tags: &[u16], payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    let mut types: Vec<u16> = tags.to_vec();
    types.push(ether_type);
    f.extend_from_slice(&types[0].to_be_bytes());
    for t in &types[1..] {
        f.extend_from_slice(&[0x00, 0x0a]); // TCI: VLAN 10
        f.extend_from_slice(&t.to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet: IHL 5, the given total-length field, protocol, and `body` after the header.
fn ipv4(total: u16, proto: u8, frag: u16, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&SRC4);
    p.extend_from_slice(&DST4);
    p.extend_from_slice(body);
    p
}

fn ports(src: u16, dst: u16) -> Vec<u8> {
    let mut b = src.to_be_bytes().to_vec();
    b.extend_from_slice(&dst.to_be_bytes());
    b.extend_from_slice(&[0; 16]);
    b
}

fn ipv6(payload_len: u16, next: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&payload_len.to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(
        &"2001:db8:100::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    p.extend_from_slice(
        &"2001:db8:ff00::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    p.extend_from_slice(body);
    p
}

fn ip(d: Decoded) -> IpFacts {
    match d {
        Decoded::Ip(f) => f,
        other => panic!("expected an IP packet, got {other:?}"),
    }
}

#[test]
fn ethernet_ipv4_counts_the_header_length_not_the_padding() {
    // a 40-byte TCP ACK padded to a 60-byte frame
    let mut frame = eth(0x0800, &[], &ipv4(40, 6, 0x4000, &ports(443, 50000)));
    frame.resize(60, 0);
    let f = ip(decode(LinkType::Ethernet, &frame, 60));
    assert_eq!(f.bytes, 40);
    assert_eq!(f.proto, Proto::Tcp);
    assert_eq!(f.ports, Some((443, 50000)));
    assert_eq!(f.src, u128::from(u32::from_be_bytes(SRC4)));
    assert!(!f.length_mismatch);
}

#[test]
fn a_frame_cut_by_the_snaplen_counts_in_full() {
    let frame = eth(0x0800, &[], &ipv4(1500, 17, 0, &ports(50000, 53)));
    // 38 bytes captured of a 1514-byte frame (Ethernet, IPv4 header, ports)
    let f = ip(decode(LinkType::Ethernet, &frame[..38], 1514));
    assert_eq!(f.ports, Some((50000, 53)));
    assert_eq!(f.bytes, 1500);
    assert_eq!(f.proto, Proto::Udp);
}

#[test]
fn a_forged_length_is_capped_at_the_wire() {
    let mut frame = eth(0x0800, &[], &ipv4(65535, 17, 0, &ports(1, 2)));
    frame.resize(60, 0);
    let f = ip(decode(LinkType::Ethernet, &frame, 60));
    assert_eq!(f.bytes, 46);
    assert!(f.length_mismatch);
}

#[test]
fn ipv4_total_length_zero_is_tso_and_counts_the_wire() {
    let frame = eth(0x0800, &[0x8100], &ipv4(0, 6, 0, &ports(443, 40000)));
    let f = ip(decode(LinkType::Ethernet, &frame, 70_018));
    assert_eq!(f.bytes, 70_018 - 18);
    assert!(!f.length_mismatch);
}

#[test]
fn insane_ipv4_headers_are_malformed() {
    let good = ipv4(40, 6, 0, &ports(1, 2));
    let mut bad_ihl = good.clone();
    bad_ihl[0] = 0x44;
    let mut short_total = good.clone();
    short_total[2..4].copy_from_slice(&19u16.to_be_bytes());
    let mut bad_version = good.clone();
    bad_version[0] = 0x75;
    for (name, p) in [
        ("ihl 4", bad_ihl),
        ("total 19", short_total),
        ("version 7", bad_version),
    ] {
        let frame = eth(0x0800, &[], &p);
        assert_eq!(
            decode(LinkType::Ethernet, &frame, 60),
            Decoded::Malformed,
            "{name}"
        );
    }
    // header cut inside the fixed 20 bytes
    let frame = eth(0x0800, &[], &good);
    assert_eq!(
        decode(LinkType::Ethernet, &frame[..14 + 19], 60),
        Decoded::Malformed
    );
    // ethertype IPv4 carrying an IPv6 packet
    let frame = eth(0x0800, &[], &ipv6(8, 17, &ports(1, 2)));
    assert_eq!(decode(LinkType::Ethernet, &frame, 62), Decoded::Malformed);
}

#[test]
fn non_ip_frames_are_non_ip() {
    let arp = eth(0x0806, &[], &[0; 28]);
    assert_eq!(decode(LinkType::Ethernet, &arp, 60), Decoded::NonIp);
    let lldp = eth(0x88cc, &[], &[0; 40]);
    assert_eq!(decode(LinkType::Ethernet, &lldp, 60), Decoded::NonIp);
    assert_eq!(
        decode(LinkType::Ethernet, &arp[..10], 60),
        Decoded::Malformed
    );
}

#[test]
fn vlan_and_qinq_tags_are_skipped_and_capped() {
    for tags in [&[0x8100][..], &[0x88a8, 0x8100], &[0x9100, 0x8100]] {
        let frame = eth(0x0800, tags, &ipv4(100, 1, 0, &[8, 0, 0, 0]));
        let wire = 14 + 4 * tags.len() as u32 + 100;
        let f = ip(decode(LinkType::Ethernet, &frame, wire));
        assert_eq!(f.bytes, 100);
        assert_eq!(f.proto, Proto::Icmp);
        // a claimed length longer than the tagged frame is capped at wire − 14 − 4 per tag
        let f = ip(decode(LinkType::Ethernet, &frame, wire - 10));
        assert_eq!(f.bytes, 90);
        assert!(f.length_mismatch);
    }
}

/// A MACsec SecTAG with the given TCI (SC set: an 8-byte SCI follows), then `ether_type`.
fn sectag(tci: u8, ether_type: u16) -> Vec<u8> {
    let mut t = vec![tci, 0, 0, 0, 0, 0x44];
    if tci & 0x20 != 0 {
        t.extend_from_slice(&[0x2e, 0xb7, 0x3f, 0x39, 0x95, 0xc3, 0, 1]);
    }
    t.extend_from_slice(&ether_type.to_be_bytes());
    t
}

#[test]
fn macsec_with_integrity_only_is_read_and_encrypted_macsec_is_not() {
    let packet = ipv4(84, 1, 0, &[8, 0, 0, 0]);
    for (tci, header) in [(0x20, 16u32), (0x00, 8)] {
        let frame = eth(0x88e5, &[], &[sectag(tci, 0x0800), packet.clone()].concat());
        // 16-byte ICV after the packet: not counted
        let wire = 14 + header + 84 + 16;
        let f = ip(decode(LinkType::Ethernet, &frame, wire));
        assert_eq!(
            (f.bytes, f.proto, f.length_mismatch),
            (84, Proto::Icmp, false)
        );
        // the cap counts the SecTAG as link layer
        let f = ip(decode(LinkType::Ethernet, &frame, 14 + header + 50));
        assert_eq!((f.bytes, f.length_mismatch), (50, true));
    }
    // encrypted (E) or changed (C) user data, or a version bit: not readable IP
    for tci in [0x2c, 0x28, 0x24, 0xa0] {
        let frame = eth(0x88e5, &[], &[sectag(tci, 0x0800), packet.clone()].concat());
        assert_eq!(decode(LinkType::Ethernet, &frame, 200), Decoded::NonIp);
    }
    let cut = eth(0x88e5, &[], &sectag(0x20, 0x0800)[..10]);
    assert_eq!(decode(LinkType::Ethernet, &cut, 60), Decoded::Malformed);
}

#[test]
fn arista_timestamps_of_both_formats_are_skipped() {
    let packet = ipv4(82, 63, 0, &[0; 62]);
    for (version, stamp) in [(0x0010u16, 8usize), (0x0011, 8), (0x0120, 6), (0x0021, 6)] {
        let mut shim = vec![0, 1];
        shim.extend_from_slice(&version.to_be_bytes());
        shim.extend(std::iter::repeat_n(0x5c, stamp));
        for (inner, tags) in [(0x0800u16, &[][..]), (0x8100, &[0x0800u16][..])] {
            let mut body = shim.clone();
            body.extend_from_slice(&inner.to_be_bytes());
            for t in tags {
                body.extend_from_slice(&[0, 100]);
                body.extend_from_slice(&t.to_be_bytes());
            }
            body.extend_from_slice(&packet);
            let frame = eth(0xd28b, &[], &body);
            let f = ip(decode(LinkType::Ethernet, &frame, frame.len() as u32));
            assert_eq!(
                (f.bytes, f.proto),
                (82, Proto::Other),
                "version {version:#06x}"
            );
        }
    }
    // another subtype or an unknown format: not IP
    for (subtype, version) in [(2u16, 0x0010u16), (1, 0x0030)] {
        let mut body = subtype.to_be_bytes().to_vec();
        body.extend_from_slice(&version.to_be_bytes());
        body.extend_from_slice(&[0; 8]);
        body.extend_from_slice(&[0x08, 0x00]);
        body.extend_from_slice(&packet);
        let frame = eth(0xd28b, &[], &body);
        assert_eq!(decode(LinkType::Ethernet, &frame, 200), Decoded::NonIp);
    }
}

/// An NSH of `words` 4-byte words announcing `next`.
fn nsh(words: u8, next: u8) -> Vec<u8> {
    let mut h = vec![0x00, words, 0x01, next, 0, 3, 9, 7];
    h.resize(usize::from(words) * 4, 0);
    h
}

#[test]
fn nsh_payloads_are_found() {
    let packet = ipv4(34, 17, 0, &ports(52229, 8000));
    let frame = eth(0x894f, &[], &[nsh(6, 1), packet.clone()].concat());
    let f = ip(decode(LinkType::Ethernet, &frame, 72));
    assert_eq!((f.bytes, f.ports), (34, Some((52229, 8000))));
    // NSH in NSH, then an inner Ethernet frame with a VLAN tag
    let inner = eth(0x0800, &[0x8100], &packet);
    let frame = eth(0x894f, &[], &[nsh(2, 4), nsh(2, 3), inner].concat());
    assert_eq!(ip(decode(LinkType::Ethernet, &frame, 200)).bytes, 34);
    // MPLS payload
    let frame = eth(
        0x894f,
        &[],
        &[nsh(2, 5), vec![0, 0, 0x11, 64], packet.clone()].concat(),
    );
    assert_eq!(ip(decode(LinkType::Ethernet, &frame, 200)).bytes, 34);
    // a length below the fixed headers, a version bit, or a cut header: malformed
    for bad in [nsh(1, 1), vec![0x40, 2, 1, 1, 0, 0, 0, 0]] {
        let frame = eth(0x894f, &[], &[bad, packet.clone()].concat());
        assert_eq!(decode(LinkType::Ethernet, &frame, 200), Decoded::Malformed);
    }
    let cut = eth(0x894f, &[], &[0, 2]);
    assert_eq!(decode(LinkType::Ethernet, &cut, 200), Decoded::Malformed);
    let frame = eth(0x894f, &[], &[nsh(2, 0x42), packet].concat());
    assert_eq!(decode(LinkType::Ethernet, &frame, 200), Decoded::NonIp);
}

#[test]
fn endless_shim_chains_stop() {
    // NSH announcing NSH, far more times than any real chain: bounded, not IP
    let chain: Vec<u8> = std::iter::repeat_n(nsh(2, 4), 100).flatten().collect();
    let frame = eth(0x894f, &[], &chain);
    assert_eq!(decode(LinkType::Ethernet, &frame, 2000), Decoded::NonIp);
    let tags = [0x8100u16; 20];
    let frame = eth(0x0800, &tags, &ipv4(40, 6, 0, &ports(1, 2)));
    assert_eq!(decode(LinkType::Ethernet, &frame, 200), Decoded::NonIp);
}

#[test]
fn fragments_count_their_own_length_and_only_the_first_has_ports() {
    let first = eth(0x0800, &[], &ipv4(1500, 17, 0x2000, &ports(50003, 4500)));
    assert_eq!(
        ip(decode(LinkType::Ethernet, &first, 1514)).ports,
        Some((50003, 4500))
    );
    let middle = eth(0x0800, &[], &ipv4(1500, 17, 0x2000 | 185, &ports(80, 80)));
    let f = ip(decode(LinkType::Ethernet, &middle, 1514));
    assert_eq!(f.ports, None);
    assert_eq!(f.proto, Proto::Udp);
    assert_eq!(f.bytes, 1500);
}

#[test]
fn ports_need_four_bytes_inside_the_packet() {
    // "IPv4 says TCP" with no TCP header
    let frame = eth(0x0800, &[], &ipv4(20, 6, 0, &[]));
    let f = ip(decode(LinkType::Ethernet, &frame, 60));
    assert_eq!(f.ports, None);
    assert_eq!(f.proto, Proto::Tcp);
}

#[test]
fn ipv6_lengths_extension_headers_and_jumbograms() {
    // plain UDP
    let frame = eth(0x86dd, &[], &ipv6(28, 17, &ports(50000, 443)));
    let f = ip(decode(LinkType::Ethernet, &frame, 14 + 68));
    assert_eq!(
        (f.bytes, f.proto, f.ports),
        (68, Proto::Udp, Some((50000, 443)))
    );
    // hop-by-hop (router alert) then ICMPv6
    let hbh = [58, 0, 5, 2, 0, 0, 1, 0];
    let frame = eth(
        0x86dd,
        &[],
        &ipv6(16, 0, &[&hbh[..], &[128, 0, 0, 0, 0, 0, 0, 0]].concat()),
    );
    let f = ip(decode(LinkType::Ethernet, &frame, 14 + 56));
    assert_eq!((f.bytes, f.proto), (56, Proto::Icmp));
    // fragment header, non-first fragment: UDP, no ports
    let frag = [17, 0, 0x05, 0xa8, 0xbe, 0xef, 0, 1];
    let frame = eth(
        0x86dd,
        &[],
        &ipv6(108, 44, &[&frag[..], &[0; 100]].concat()),
    );
    let f = ip(decode(LinkType::Ethernet, &frame, 14 + 148));
    assert_eq!((f.proto, f.ports), (Proto::Udp, None));
    // payload length 0 with a Jumbo Payload option: 40 + jumbo, capped at the wire
    let jumbo = [6, 0, 0xc2, 4, 0, 1, 0, 0];
    let frame = eth(
        0x86dd,
        &[],
        &ipv6(0, 0, &[&jumbo[..], &ports(443, 50000)].concat()),
    );
    let f = ip(decode(LinkType::Ethernet, &frame, 14 + 40 + 65536));
    assert_eq!(
        (f.bytes, f.proto, f.length_mismatch),
        (40 + 65536, Proto::Tcp, false)
    );
    let f = ip(decode(LinkType::Ethernet, &frame, 200));
    assert_eq!((f.bytes, f.length_mismatch), (186, true));
    // payload length 0, hop-by-hop without Jumbo: malformed (RFC 2675)
    let frame = eth(0x86dd, &[], &ipv6(0, 0, &[&hbh[..], &[0; 8]].concat()));
    assert_eq!(decode(LinkType::Ethernet, &frame, 9000), Decoded::Malformed);
    // payload length 0, no hop-by-hop: the wire decides (next header 59 in a padded frame)
    let mut frame = eth(0x86dd, &[], &ipv6(0, 59, &[]));
    frame.resize(60, 0);
    let f = ip(decode(LinkType::Ethernet, &frame, 60));
    assert_eq!((f.bytes, f.proto), (46, Proto::Other));
}

#[test]
fn linux_cooked_raw_and_loopback_link_types() {
    let packet = ipv4(60, 6, 0, &ports(80, 1234));
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&packet);
    assert_eq!(ip(decode(LinkType::LinuxSll, &sll, 76)).bytes, 60);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(&packet);
    assert_eq!(ip(decode(LinkType::LinuxSll2, &sll2, 80)).bytes, 60);
    assert_eq!(ip(decode(LinkType::Raw, &packet, 60)).bytes, 60);
    let v6 = ipv6(8, 17, &ports(1, 2));
    assert!(ip(decode(LinkType::Raw, &v6, 48)).v6);
    assert!(ip(decode(LinkType::RawV6, &v6, 48)).v6);
    assert_eq!(decode(LinkType::RawV4, &v6, 48), Decoded::Malformed);
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&packet);
    assert_eq!(ip(decode(LinkType::Null, &null, 64)).bytes, 60);
    let mut lo = 24u32.to_be_bytes().to_vec();
    lo.extend_from_slice(&v6);
    assert!(ip(decode(LinkType::Loop, &lo, 52)).v6);
    let mut unknown_af = 7u32.to_be_bytes().to_vec();
    unknown_af.extend_from_slice(&packet);
    assert_eq!(decode(LinkType::Loop, &unknown_af, 64), Decoded::NonIp);
}

#[test]
fn unknown_link_types_are_named() {
    let e = LinkType::from_dlt(105).unwrap_err();
    assert!(
        e.to_string().contains("105") && e.to_string().contains("802.11"),
        "{e}"
    );
    assert_eq!(LinkType::from_dlt(101), Ok(LinkType::Raw));
    assert_eq!(LinkType::from_dlt(12), Ok(LinkType::Raw));
}

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Raw,
    LinkType::RawV4,
    LinkType::RawV6,
    LinkType::Null,
    LinkType::Loop,
];

fn check(d: Decoded, frame_len: usize, wire: u32, link: LinkType) {
    if let Decoded::Ip(f) = d {
        // never more than the wire carried after the link header
        assert!(
            f.bytes <= u64::from(wire),
            "{link:?}: {} > wire {wire}",
            f.bytes
        );
        let _ = frame_len;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), extra in 0u32..100_000, link in 0usize..LINKS.len()) {
        let link = LINKS[link];
        let wire = data.len() as u32 + extra;
        check(decode(link, &data, wire), data.len(), wire, link);
        // a wire length shorter than what was captured (a broken file) must not panic either
        check(decode(link, &data, extra % 64), data.len(), extra % 64, link);
    }

    #[test]
    fn mutated_valid_packets_never_panic(
        flips in proptest::collection::vec((0usize..140, any::<u8>()), 1..8),
        cut in 0usize..150,
        which in 0usize..7,
    ) {
        let hbh = [6u8, 0, 0xc2, 4, 0, 1, 0, 0];
        let base = match which {
            0 => eth(0x0800, &[0x8100], &ipv4(100, 6, 0, &ports(80, 1234))),
            1 => eth(0x86dd, &[0x88a8, 0x8100], &ipv6(0, 0, &[&hbh[..], &ports(443, 1)].concat())),
            2 => eth(0x86dd, &[], &ipv6(16, 44, &[17, 0, 0, 1, 0, 0, 0, 1, 0, 53, 0, 53, 0, 8, 0, 0])),
            4 => eth(0x88e5, &[], &[sectag(0x20, 0x8100), vec![0, 1, 0x08, 0], ipv4(60, 17, 0, &ports(53, 9))].concat()),
            5 => eth(0x894f, &[], &[nsh(2, 4), nsh(3, 3), eth(0x86dd, &[], &ipv6(8, 6, &ports(1, 2)))].concat()),
            6 => eth(0xd28b, &[], &[vec![0, 1, 0, 0x20, 1, 2, 3, 4, 5, 6, 0x88, 0x47], vec![0, 0, 0x11, 64], ipv4(40, 6, 0, &ports(1, 2))].concat()),
            _ => eth(0x8847, &[], &[0, 0, 0x11, 64, 0x45, 0, 0, 40]),
        };
        let mut frame = base.clone();
        for (at, byte) in flips {
            if let Some(b) = frame.get_mut(at) {
                *b = byte;
            }
        }
        frame.truncate(cut.max(1));
        let wire = base.len() as u32;
        check(decode(LinkType::Ethernet, &frame, wire), frame.len(), wire, LinkType::Ethernet);
    }
}
