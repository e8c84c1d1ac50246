//! The spread program run by a small interpreter of the instructions it uses: both directions
//! of a host's traffic, tagged or not, pick the same thread; hosts spread over the threads.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Runs `prog` on a frame whose `skb->protocol` is `proto` and whose bytes from the network
/// header on are `net`; returns what it returns (None: a load out of the packet, which the
/// kernel answers with 0).
fn run(prog: &[Insn], proto: u16, net: &[u8]) -> Option<u32> {
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let load = |off: u32, size: usize| -> Option<u32> {
        if off == SKF_AD_PROTOCOL {
            return Some(u32::from(proto));
        }
        let at = off.checked_sub(SKF_NET_OFF)? as usize;
        let bytes = net.get(at..at + size)?;
        Some(bytes.iter().fold(0, |v, b| v << 8 | u32::from(*b)))
    };
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            c if c == LD | W | ABS => a = load(i.k, 4)?,
            c if c == LD | H | ABS => a = load(i.k, 2)?,
            c if c == LD | W | IND => a = load(i.k.wrapping_add(x), 4)?,
            c if c == LDX | W | IMM => x = i.k,
            c if c == ST => mem[i.k as usize] = a,
            c if c == LD | MEM => a = mem[i.k as usize],
            c if c == ALU | AND | K => a &= i.k,
            c if c == ALU | RSH | K => a >>= i.k,
            c if c == ALU | XOR | X => a ^= x,
            c if c == MISC | TAX => x = a,
            c if c == JMP | JA => pc += i.k as usize,
            c if c == JMP | JEQ | K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
            c if c == RET | K => return Some(i.k),
            c if c == RET | RET_A => return Some(a),
            c => panic!("instruction {c:#x} not expected"),
        }
    }
}

fn v4(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 17, 0, 0];
    h.extend(src.octets());
    h.extend(dst.octets());
    h
}

fn v6(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
    h.extend(src.octets());
    h.extend(dst.octets());
    h
}

/// The same packet with one more tag left in the data (QinQ after the outer tag was taken).
fn inner_tag(ether: u16, net: &[u8]) -> Vec<u8> {
    let mut h = vec![0, 7];
    h.extend(ether.to_be_bytes());
    h.extend(net);
    h
}

fn nets() -> Vec<IpNet> {
    vec![
        "198.51.100.0/24".parse().unwrap(),
        "192.0.2.128/25".parse().unwrap(),
        "2001:db8:100::/56".parse().unwrap(),
    ]
}

#[test]
fn both_directions_of_a_host_tagged_or_not_pick_the_same_key() {
    let prog = by_local_host(&nets(), 128).unwrap();
    let remote4: Ipv4Addr = "203.0.113.9".parse().unwrap();
    let remote6: Ipv6Addr = "2001:db8:ff00::9".parse().unwrap();
    for host in 1..=254u8 {
        let local = Ipv4Addr::new(198, 51, 100, host);
        let out = run(&prog, 0x0800, &v4(local, remote4)).unwrap();
        let back = run(&prog, 0x0800, &v4(remote4, local)).unwrap();
        let q = run(&prog, 0x8100, &inner_tag(0x0800, &v4(remote4, local))).unwrap();
        assert_eq!((out, q), (back, back), "{local}");
        let local6 = Ipv6Addr::from(
            u128::from(Ipv6Addr::from([0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0])) + u128::from(host),
        );
        let out = run(&prog, 0x86dd, &v6(local6, remote6)).unwrap();
        let back = run(&prog, 0x86dd, &v6(remote6, local6)).unwrap();
        let q = run(&prog, 0x88a8, &inner_tag(0x86dd, &v6(local6, remote6))).unwrap();
        assert_eq!((out, q), (back, back), "{local6}");
    }
    // the second IPv4 network is local too
    let local: Ipv4Addr = "192.0.2.200".parse().unwrap();
    assert_eq!(
        run(&prog, 0x0800, &v4(local, remote4)),
        run(&prog, 0x0800, &v4(remote4, local))
    );
}

#[test]
fn hosts_spread_over_the_threads() {
    let prog = by_local_host(&nets(), 128).unwrap();
    let remote: Ipv4Addr = "203.0.113.9".parse().unwrap();
    for threads in [2u32, 3, 4] {
        let mut per = vec![0u32; threads as usize];
        for host in 1..=254u8 {
            let key = run(
                &prog,
                0x0800,
                &v4(remote, Ipv4Addr::new(198, 51, 100, host)),
            )
            .unwrap();
            per[(key % threads) as usize] += 1;
        }
        let fair = 254 / threads;
        assert!(per.iter().all(|&n| n > fair / 2 && n < fair * 2), "{per:?}");
    }
}

#[test]
fn an_aggregated_ipv6_prefix_keys_every_address_in_it_alike() {
    let prog = by_local_host(&nets(), 64).unwrap();
    let remote: Ipv6Addr = "2001:db8:ff00::9".parse().unwrap();
    let a: Ipv6Addr = "2001:db8:100:7::1".parse().unwrap();
    let b: Ipv6Addr = "2001:db8:100:7:ffff::2".parse().unwrap();
    let other: Ipv6Addr = "2001:db8:100:8::1".parse().unwrap();
    let key = |ip| run(&prog, 0x86dd, &v6(ip, remote)).unwrap();
    assert_eq!(key(a), key(b));
    assert_ne!(key(a), key(other));
}

#[test]
fn frames_that_are_not_ip_go_to_the_first_thread() {
    let prog = by_local_host(&nets(), 128).unwrap();
    assert_eq!(run(&prog, 0x0806, &[0; 28]), Some(0));
    assert_eq!(run(&prog, 0x8100, &inner_tag(0x0806, &[0; 28])), Some(0));
}

#[test]
fn too_many_networks_for_a_classic_program_give_none() {
    let many: Vec<IpNet> = (0..200u32)
        .map(|i| {
            IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap())
        })
        .collect();
    assert!(by_local_host(&many, 128).is_none());
    assert!(by_local_host(&many[..40], 128).is_some());
}
