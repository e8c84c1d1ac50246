//! Capture files (pcap and pcapng) read through libpcap, one packet at a time, with the link
//! type checked before the first packet.

use super::CaptureError;
use crate::parse::LinkType;
use pcap::{Capture, Offline};

pub struct FileSource {
    path: String,
    cap: Capture<Offline>,
    link: LinkType,
    /// Classic pcap: record seconds are an unsigned 32-bit field (up to 2106-02-07).
    seconds_u32: bool,
}

/// The first four bytes of a pcapng file (its Section Header Block type).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Whether `path` is a classic pcap file (not pcapng), read from its first four bytes.
fn is_classic_pcap(path: &str) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| magic != PCAPNG_MAGIC)
}

/// One packet of a file: its timestamp (whole seconds, UTC), bytes and original length.
pub struct FilePacket<'a> {
    pub ts_sec: i64,
    pub data: &'a [u8],
    pub wire_len: u32,
}

impl FileSource {
    pub fn open(path: &str) -> Result<Self, CaptureError> {
        let cap = Capture::from_file(path).map_err(|source| CaptureError::OpenFile {
            path: path.to_owned(),
            source,
        })?;
        let link =
            LinkType::from_dlt(cap.get_datalink().0).map_err(|source| CaptureError::LinkType {
                path: path.to_owned(),
                source,
            })?;
        unlocked_stdio(&cap);
        Ok(Self {
            path: path.to_owned(),
            cap,
            link,
            seconds_u32: is_classic_pcap(path),
        })
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The next packet, None at the end of the file. A damaged record ends the file with an
    /// error; the packets before it have been read.
    #[inline]
    pub fn next_packet(&mut self) -> Result<Option<FilePacket<'_>>, CaptureError> {
        match self.cap.next_packet() {
            Ok(p) => Ok(Some(FilePacket {
                ts_sec: if self.seconds_u32 {
                    // libpcap reads the field as signed: times past 2038-01-19 come out
                    // negative. The format says unsigned; take the low 32 bits as such.
                    i64::from(p.header.ts.tv_sec as u32)
                } else {
                    p.header.ts.tv_sec
                },
                data: p.data,
                wire_len: p.header.len,
            })),
            Err(pcap::Error::NoMorePackets) => Ok(None),
            Err(source) => Err(CaptureError::ReadFile {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

extern "C" {
    /// libpcap: the stdio stream of a savefile handle.
    fn pcap_file(p: *mut std::ffi::c_void) -> *mut libc::FILE;
    /// glibc: who locks a stream.
    fn __fsetlocking(fp: *mut libc::FILE, kind: libc::c_int) -> libc::c_int;
}

/// `FSETLOCKING_BYCALLER` from `<stdio_ext.h>`.
const FSETLOCKING_BYCALLER: libc::c_int = 2;

/// Stops glibc from locking the savefile's stream on every `fread` (two per packet): once a
/// process has a second thread, stdio locks each call. The handle is `!Sync` and read by one
/// thread only, so the lock protects nothing.
fn unlocked_stdio(cap: &Capture<Offline>) {
    // SAFETY: `as_ptr` is the live handle owned by `cap`; `pcap_file` only reads it and returns
    // its FILE (never null for a savefile opened by path, checked anyway); `__fsetlocking` only
    // sets a flag on that FILE, which no other thread can reach.
    unsafe {
        let fp = pcap_file(cap.as_ptr().cast());
        if !fp.is_null() {
            __fsetlocking(fp, FSETLOCKING_BYCALLER);
        }
    }
}
