//! The packet path on any bytes and every link type (the input's DLT, see `bwacct_fuzz::Frame`):
//! `parse::decode`, then `Accountant::process` into real counters (two layouts: small direct
//! networks, and every address in hashed tables with a small cap so the overflow path runs),
//! drained now and then.
#![no_main]

use bwacct::account::{Accountant, CountMode};
use bwacct::classify::{LocalNets, PortTable};
use bwacct::config::default_ports;
use bwacct::counters::{Counters, Layout, Writer};
use bwacct::parse::{decode, Decoded};
use bwacct_fuzz::Frame;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::sync::Arc;

struct Path {
    acct: Accountant,
    writer: Writer,
}

fn path(nets: &[&str], max_hosts: u32, mode: CountMode) -> Path {
    let nets: Vec<ipnet::IpNet> = nets.iter().filter_map(|n| n.parse().ok()).collect();
    let layout = Layout {
        nets: nets.clone(),
        ipv6_prefix: 128,
        max_hosts,
        direct_max_bits: 16,
    };
    Path {
        acct: Accountant::new(
            Arc::new(LocalNets::new(&nets, 128)),
            Arc::new(PortTable::new(&default_ports())),
            mode,
        ),
        writer: Counters::exclusive(layout),
    }
}

thread_local! {
    static PATHS: RefCell<(Vec<Path>, u32)> = RefCell::new((
        vec![
            path(&["198.51.100.0/24", "203.0.113.0/25", "2001:db8:100::/56"], 1024, CountMode::Ip),
            path(&["0.0.0.0/0", "::/0"], 64, CountMode::Frame),
        ],
        0,
    ));
}

fuzz_target!(|input: &[u8]| {
    let Some(frame) = Frame::from_input(input) else {
        return;
    };
    if let Decoded::Ip(facts) = decode(frame.link, frame.data, frame.wire_len) {
        // The count never exceeds what the wire carried.
        assert!(facts.bytes <= u64::from(frame.wire_len));
    }
    PATHS.with(|p| {
        let (paths, inputs) = &mut *p.borrow_mut();
        for path in paths.iter_mut() {
            {
                let batch = path.writer.batch();
                path.acct
                    .process(&batch, frame.link, frame.data, frame.wire_len);
            }
            if *inputs % 4096 == 0 {
                let drained = path.writer.drain();
                assert!(drained.stats.packets > 0);
            }
        }
        *inputs = inputs.wrapping_add(1);
    });
});
