//! The classic BPF program that a `PACKET_FANOUT_CBPF` group runs to pick a capture thread by
//! the packet's *local host* (its local address, truncated to the accounting's IPv6 prefix),
//! so that every packet of one host is counted by one thread and the host's counter row stays
//! in that thread's core instead of bouncing between cores. Builds the instructions only; the
//! socket options are in `fanout`, and which thread counts a packet never changes its count.
//!
//! The kernel runs the program before the packet socket sees the frame, on the skb as the
//! stack has it: the outer VLAN tag (if any) already taken out into metadata and the network
//! header set after it. So it reads the protocol from the ancillary field and the addresses
//! relative to the network header (`SKF_NET_OFF`), stepping over one more tag (QinQ), and
//! returns a hash the kernel takes modulo the number of threads. Frames that are not IP go to
//! the first thread.

use ipnet::IpNet;

/// One classic BPF instruction (`struct sock_filter`).
pub type Insn = libc::sock_filter;

// instruction classes, sizes, modes, operations and sources (linux/filter.h)
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const H: u16 = 0x08;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const AND: u16 = 0x50;
const RSH: u16 = 0x70;
const XOR: u16 = 0xa0;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const K: u16 = 0x00;
const X: u16 = 0x08;
const RET_A: u16 = 0x10;
const TAX: u16 = 0x00;

/// Ancillary load of `skb->protocol` (host byte order), and the base of loads relative to the
/// network header.
const SKF_AD_PROTOCOL: u32 = (-0x1000i32) as u32;
const SKF_NET_OFF: u32 = (-0x10_0000i32) as u32;

const ETH_IPV4: u32 = 0x0800;
const ETH_IPV6: u32 = 0x86dd;
const ETH_VLAN: u32 = 0x8100;
const ETH_QINQ: u32 = 0x88a8;

/// Scratch memory: the source address word while the local networks are tried.
const M_SRC: u32 = 0;

/// The kernel's limit on a classic program's length (`BPF_MAXINSNS`).
const MAX_INSNS: usize = 4096;

/// A jump target not yet placed.
#[derive(Clone, Copy)]
struct Label(usize);

/// Where a conditional jump goes: the next instruction or a label.
#[derive(Clone, Copy)]
enum To {
    Next,
    L(Label),
}

enum Op {
    Plain(Insn),
    /// `jeq k` with its two targets.
    Jeq(u32, To, To),
    Ja(Label),
}

/// A tiny assembler with forward labels (classic BPF jumps only forward, at most 255
/// instructions for a conditional jump).
#[derive(Default)]
struct Asm {
    ops: Vec<Op>,
    places: Vec<Option<usize>>,
}

fn insn(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

impl Asm {
    fn label(&mut self) -> Label {
        self.places.push(None);
        Label(self.places.len() - 1)
    }

    fn place(&mut self, l: Label) {
        if let Some(p) = self.places.get_mut(l.0) {
            *p = Some(self.ops.len());
        }
    }

    fn op(&mut self, code: u16, k: u32) {
        self.ops.push(Op::Plain(insn(code, k)));
    }

    fn jeq(&mut self, k: u32, t: To, f: To) {
        self.ops.push(Op::Jeq(k, t, f));
    }

    fn ja(&mut self, l: Label) {
        self.ops.push(Op::Ja(l));
    }

    /// The instructions, or None if a jump does not reach or the program is too long.
    fn finish(self) -> Option<Vec<Insn>> {
        if self.ops.len() > MAX_INSNS {
            return None;
        }
        let places = self.places;
        let offset = |at: usize, to: To| -> Option<usize> {
            match to {
                To::Next => Some(0),
                To::L(l) => places.get(l.0).copied().flatten()?.checked_sub(at + 1),
            }
        };
        self.ops
            .iter()
            .enumerate()
            .map(|(at, op)| match *op {
                Op::Plain(i) => Some(i),
                Op::Jeq(k, t, f) => Some(Insn {
                    code: JMP | JEQ | K,
                    jt: u8::try_from(offset(at, t)?).ok()?,
                    jf: u8::try_from(offset(at, f)?).ok()?,
                    k,
                }),
                Op::Ja(l) => Some(insn(JMP | JA, u32::try_from(offset(at, To::L(l))?).ok()?)),
            })
            .collect()
    }
}

/// The mask of the bits of a `len`-bit prefix that fall in 32-bit word `word`.
fn word_mask(len: u8, word: u32) -> u32 {
    let bits = u32::from(len).saturating_sub(word * 32).min(32);
    if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    }
}

/// The program for the local networks `nets` (IPv6 hosts aggregated to `ipv6_prefix` bits),
/// or None if it would not fit a classic program (very many networks): the caller then
/// spreads by flow.
pub fn by_local_host(nets: &[IpNet], ipv6_prefix: u8) -> Option<Vec<Insn>> {
    let mut a = Asm::default();
    let (v4, v6, tagged, hash) = (a.label(), a.label(), a.label(), a.label());
    let (v4_inner, v6_inner, other) = (a.label(), a.label(), a.label());
    a.op(LD | W | ABS, SKF_AD_PROTOCOL);
    a.jeq(ETH_IPV4, To::L(v4), To::Next);
    a.jeq(ETH_IPV6, To::L(v6), To::Next);
    a.jeq(ETH_VLAN, To::L(tagged), To::Next);
    a.jeq(ETH_QINQ, To::L(tagged), To::L(other));
    // a second tag still in the data: the network header points at it
    a.place(tagged);
    a.op(LD | H | ABS, SKF_NET_OFF + 2);
    a.jeq(ETH_IPV4, To::L(v4_inner), To::Next);
    a.jeq(ETH_IPV6, To::L(v6_inner), To::L(other));
    a.place(v4_inner);
    a.op(LDX | W | IMM, 4);
    a.ja(v4);
    a.place(v6_inner);
    a.op(LDX | W | IMM, 4);
    a.ja(v6);
    a.place(other);
    a.op(RET | K, 0);

    // IPv4: the source if it is local, otherwise the destination (X: the tag's 4 bytes or 0;
    // the untagged entry arrives with X = 0, its initial value)
    a.place(v4);
    let dst4 = a.label();
    let src4 = a.label();
    a.op(LD | W | IND, SKF_NET_OFF + 12);
    a.op(ST, M_SRC);
    for net in nets.iter().filter_map(|n| match n {
        IpNet::V4(n) => Some(n),
        IpNet::V6(_) => None,
    }) {
        a.op(LD | MEM, M_SRC);
        a.op(ALU | AND | K, word_mask(net.prefix_len(), 0));
        a.jeq(u32::from(net.network()), To::L(src4), To::Next);
    }
    a.ja(dst4);
    a.place(src4);
    a.op(LD | MEM, M_SRC);
    a.ja(hash);
    a.place(dst4);
    a.op(LD | W | IND, SKF_NET_OFF + 16);
    a.ja(hash);

    // IPv6: the word of the address where the host prefix ends, masked to it; the source's
    // if the source is in a local network
    a.place(v6);
    let word = u32::from(ipv6_prefix.clamp(1, 128) - 1) / 32;
    let mask = word_mask(ipv6_prefix, word);
    let (src6, dst6) = (a.label(), a.label());
    for net in nets.iter().filter_map(|n| match n {
        IpNet::V6(n) => Some(n),
        IpNet::V4(_) => None,
    }) {
        let next = a.label();
        let addr = u128::from(net.network());
        let words = u32::from(net.prefix_len()).div_ceil(32);
        for w in 0..words {
            let m = word_mask(net.prefix_len(), w);
            let value = (addr >> (96 - 32 * w)) as u32 & m;
            a.op(LD | W | IND, SKF_NET_OFF + 8 + 4 * w);
            if m != u32::MAX {
                a.op(ALU | AND | K, m);
            }
            let last = w + 1 == words;
            a.jeq(
                value,
                if last { To::L(src6) } else { To::Next },
                To::L(next),
            );
        }
        if words == 0 {
            a.ja(src6);
        }
        a.place(next);
    }
    a.ja(dst6);
    a.place(src6);
    a.op(LD | W | IND, SKF_NET_OFF + 8 + 4 * word);
    a.op(ALU | AND | K, mask);
    a.ja(hash);
    a.place(dst6);
    a.op(LD | W | IND, SKF_NET_OFF + 24 + 4 * word);
    a.op(ALU | AND | K, mask);

    // fold the key's bytes together: neighbouring hosts land on different threads
    a.place(hash);
    a.op(MISC | TAX, 0);
    a.op(ALU | RSH | K, 16);
    a.op(ALU | XOR | X, 0);
    a.op(MISC | TAX, 0);
    a.op(ALU | RSH | K, 8);
    a.op(ALU | XOR | X, 0);
    a.op(RET | RET_A, 0);
    a.finish()
}

#[cfg(test)]
#[path = "spread_tests.rs"]
mod tests;
