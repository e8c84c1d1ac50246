//! Spreading one interface over several capture threads: the kernel's `PACKET_FANOUT` group
//! (by local host with a classic BPF program from `spread`, or by flow hash) joined by each
//! activated pcap handle, and pinning a thread to a CPU. Linux socket options only; this module
//! opens no handle and reads no packet.

use super::spread::Insn;
use std::io;
use std::os::fd::RawFd;

/// The kernel's limit on the members of one fanout group (`PACKET_FANOUT_MAX`).
pub const MAX_THREADS: u32 = 256;

/// Fanout by the flow hash of each packet (addresses and ports, symmetric).
const PACKET_FANOUT_HASH: u32 = 0;
/// Fanout by what a classic BPF program returns (modulo the members), Linux 4.3+.
const PACKET_FANOUT_CBPF: u32 = 6;
/// The socket option that gives a `PACKET_FANOUT_CBPF` group its program.
const PACKET_FANOUT_DATA: libc::c_int = 22;
/// Asks the kernel for an unused group id (Linux 4.12+), read back with `getsockopt`.
const PACKET_FANOUT_FLAG_UNIQUEID: u32 = 0x2000;

/// Capture threads per interface when the configuration does not say: one per core.
pub fn default_threads() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get() as u32)
        .min(MAX_THREADS)
}

/// How a group picks the thread of a packet.
#[derive(Clone, Copy, Debug)]
pub enum Mode<'a> {
    /// By the flow hash: a host's flows spread over every thread.
    Flow,
    /// By what the program returns (`spread::by_local_host`: one thread per local host).
    Program(&'a [Insn]),
}

impl Mode<'_> {
    fn kind(&self) -> u32 {
        match self {
            Mode::Flow => PACKET_FANOUT_HASH,
            Mode::Program(_) => PACKET_FANOUT_CBPF,
        }
    }
}

fn set_option<T>(fd: RawFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is valid for reads of its size for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_fanout(fd: RawFd, arg: u32) -> io::Result<()> {
    set_option(fd, libc::PACKET_FANOUT, &arg)
}

/// Makes the packet socket `fd` the first member of a new fanout group spreading by `mode` (no
/// defragmentation, so every fragment is seen as it was on the wire) and returns the group id
/// the kernel chose, for the other members to join with [`join`].
pub fn create(fd: RawFd, mode: Mode<'_>) -> io::Result<u16> {
    set_fanout(fd, (mode.kind() | PACKET_FANOUT_FLAG_UNIQUEID) << 16)?;
    if let Mode::Program(insns) = mode {
        let prog = libc::sock_fprog {
            len: u16::try_from(insns.len()).map_err(io::Error::other)?,
            // the kernel copies the instructions and never writes them
            filter: insns.as_ptr().cast_mut(),
        };
        set_option(fd, PACKET_FANOUT_DATA, &prog)?;
    }
    let mut value: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes and `len` holds the size of `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            (&mut value as *mut u32).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value as u16)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Adds the packet socket `fd` to the fanout group `id` made by [`create`] with `mode`.
pub fn join(fd: RawFd, id: u16, mode: Mode<'_>) -> io::Result<()> {
    set_fanout(fd, (mode.kind() << 16) | u32::from(id))
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the size passed is its own.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Pins the calling thread to the `n`-th CPU this process may use (wrapping around), and
/// returns that CPU's number.
pub fn pin_current_thread(n: usize) -> io::Result<usize> {
    let cpus = allowed_cpus()?;
    let Some(&cpu) = cpus.get(n % cpus.len().max(1)) else {
        return Err(io::Error::other("no CPU is allowed for this process"));
    };
    // SAFETY: as above; `cpu` is below CPU_SETSIZE.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(cpu)
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_keeps_the_thread_on_one_allowed_cpu() {
        let before = allowed_cpus().unwrap();
        let cpu = std::thread::spawn(|| {
            let cpu = pin_current_thread(1).unwrap();
            (cpu, allowed_cpus().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(cpu.1, vec![cpu.0]);
        assert!(before.contains(&cpu.0));
        assert_eq!(cpu.0, before[1 % before.len()]);
    }
}
