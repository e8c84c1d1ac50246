//! Writes the fuzz seed corpora: every distinct frame of the captures under the given
//! directories (one input per frame, see `bwacct_fuzz::Frame`) into `corpus/packet`, and the
//! configuration seeds into `corpus/config`. Usage: seed OUT_DIR CONFIG_SEEDS_DIR CAPTURE_DIR...

use bwacct::parse::LinkType;
use bwacct_fuzz::Frame;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Frames taken from one capture at most (the synthetic captures repeat their shapes).
const PER_FILE: usize = 300;

fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"));
    v.sort();
    v
}

fn main() -> std::io::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [out, config_seeds, dirs @ ..] = args.as_slice() else {
        eprintln!("usage: seed OUT_DIR CONFIG_SEEDS_DIR CAPTURE_DIR...");
        std::process::exit(2);
    };
    let packet_dir = out.join("packet");
    let config_dir = out.join("config");
    std::fs::create_dir_all(&packet_dir)?;
    std::fs::create_dir_all(&config_dir)?;
    let mut seen = HashSet::new();
    for file in dirs.iter().flat_map(|d| captures(d)) {
        let Ok(mut cap) = pcap::Capture::from_file(&file) else {
            continue;
        };
        let Ok(link) = LinkType::from_dlt(cap.get_datalink().0) else {
            continue;
        };
        let mut taken = 0;
        while let Ok(p) = cap.next_packet() {
            if taken == PER_FILE {
                break;
            }
            let Some(input) = Frame::encode(link, p.header.len, p.data) else {
                continue;
            };
            if seen.insert(input.clone()) {
                std::fs::write(packet_dir.join(format!("seed-{:05}", seen.len())), input)?;
                taken += 1;
            }
        }
    }
    let mut configs = 0;
    for entry in std::fs::read_dir(config_seeds)? {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, config_dir.join(name))?;
            configs += 1;
        }
    }
    println!("seeds: {} frames, {configs} configurations", seen.len());
    Ok(())
}
