//! The real damaged captures of `../shared/corpus/real` (tcpdump's regression files, truth from
//! tshark): every one replays without a crash and matches its truth, except where the truth is
//! not what a collector should count; those few are listed here with the exact difference.

use crate::common::*;
use crate::corpus::{captures, check, EVERYTHING};
use std::path::Path;

/// Files whose truth bwacct deliberately departs from: (file, why, the exact differences).
const DEVIATIONS: [(&str, &str, &[&str]); 2] = [
    (
        "arista_ether.pcap",
        "4 of its 16 frames carry an Arista timestamp whose version says HwInfo R3 (0x0011, \
         0x0021, 0x0111, 0x0121); tshark 4.0 matches the version exactly and stops there, but \
         the low nibble only names the stamping hardware, the layout is the same (tcpdump reads \
         them): bwacct counts the 4 IP packets behind them",
        &[
            "10.136.1.32 tx_bytes: report 1248 truth 936",
            "10.136.1.32 tx_packets: report 16 truth 12",
            "10.136.1.32 other.tx_bytes: report 1248 truth 936",
            "10.136.1.32 other.tx_packets: report 16 truth 12",
            "10.2.23.24 rx_bytes: report 1248 truth 936",
            "10.2.23.24 rx_packets: report 16 truth 12",
            "10.2.23.24 other.rx_bytes: report 1248 truth 936",
            "10.2.23.24 other.rx_packets: report 16 truth 12",
        ],
    ),
    (
        "icmp-rfc8335-missing-bytes.pcap",
        "an IPv4 header declaring 84 bytes behind a 16-byte MACsec SecTAG in an 81-byte frame: \
         the truth caps at 81 - 14 = 67, but the wire held at most 81 - 14 - 16 = 51 bytes of IP \
         (the SecTAG is link layer, like a VLAN tag or an MPLS label, which the truth does subtract)",
        &[
            "35.36.42.37 tx_bytes: report 51 truth 67",
            "35.36.42.37 icmp.tx_bytes: report 51 truth 67",
            "38.39.40.41 rx_bytes: report 51 truth 67",
            "38.39.40.41 icmp.rx_bytes: report 51 truth 67",
        ],
    ),
];

/// The differences from the truth that `file` is expected to show (none for most files).
pub fn deviation(file: &Path) -> Vec<String> {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    DEVIATIONS
        .iter()
        .find(|(f, _, _)| Some(*f) == name.as_deref())
        .map(|(_, _, d)| d.iter().map(|s| (*s).to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn every_real_capture_replays_and_matches_its_truth() {
    let Some(dir) = shared_corpus()
        .map(|c| c.join("real"))
        .filter(|d| d.is_dir())
    else {
        eprintln!(
            "SKIPPED: ../shared/corpus/real is not on this machine (tests/data/real holds a subset)"
        );
        return;
    };
    let files = captures(&dir);
    assert!(files.len() >= 500, "the real corpus has 552 captures");
    let mut matched = 0;
    let mut deviating = 0;
    let mut wrong = Vec::new();
    for f in &files {
        // `check` replays with run_ok: a crash or an error fails here.
        let (diffs, _, _) = check(f, &EVERYTHING);
        let expected = deviation(f);
        if diffs.is_empty() && expected.is_empty() {
            matched += 1;
        } else if diffs == expected {
            deviating += 1;
        } else {
            wrong.push(format!("{}: {diffs:#?}", f.display()));
        }
    }
    eprintln!(
        "real corpus: {} captures replayed, {matched} match their truth, {deviating} differ as \
         documented in DEVIATIONS",
        files.len()
    );
    assert_eq!(
        deviating,
        DEVIATIONS.len(),
        "every listed deviation still shows"
    );
    assert!(wrong.is_empty(), "{} unexpected: {wrong:#?}", wrong.len());
}
