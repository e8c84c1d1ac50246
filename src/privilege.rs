//! Least privilege for `run`: looks up the service account, and once the capture handles are
//! open drops root for good (groups, gid, uid), keeping only the capabilities
//! [`capabilities_to_keep`] names, then checks that every thread of the process is unprivileged.
//! Must not be called while other threads exist (capabilities are per thread).

use std::ffi::CString;
use std::io;

/// A Linux capability that `run` may keep after dropping root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// `CAP_NET_ADMIN`: tc qdiscs and classes, iptables marks (shaping).
    NetAdmin,
}

impl Capability {
    /// The capability's number (`linux/capability.h`).
    pub fn number(self) -> u32 {
        match self {
            Capability::NetAdmin => 12,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Capability::NetAdmin => "CAP_NET_ADMIN",
        }
    }
}

/// The capabilities `run` keeps after dropping root: `CAP_NET_ADMIN` when it shapes traffic
/// (tc and iptables run as children; the capability is made ambient so they inherit it), and
/// nothing otherwise. Capture handles are opened before the drop and need nothing after it.
pub fn capabilities_to_keep(shaping: bool) -> &'static [Capability] {
    if shaping {
        &[Capability::NetAdmin]
    } else {
        &[]
    }
}

/// The bit mask of a set of capabilities, as `/proc/PID/status` shows it (`CapEff` etc.).
pub fn mask(caps: &[Capability]) -> u64 {
    caps.iter().fold(0, |m, c| m | 1u64 << c.number())
}

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("the service user {0:?} does not exist: create it (useradd --system --no-create-home --shell /usr/sbin/nologin {0}) or set [service] user in the configuration")]
    NoUser(String),
    #[error("the service group {0:?} does not exist: create it (groupadd --system {0}) or set [service] group")]
    NoGroup(String),
    #[error("cannot look up {what} {name:?}: {source}")]
    Lookup {
        what: &'static str,
        name: String,
        source: io::Error,
    },
    #[error("cannot drop privileges ({step}): {source}")]
    Syscall {
        step: &'static str,
        source: io::Error,
    },
    #[error("privileges were not dropped: {0}")]
    NotDropped(String),
}

/// The account `run` switches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

impl Account {
    /// Looks up `user` (and `group`, default: the user's primary group) in the system's
    /// account databases.
    pub fn lookup(user: &str, group: Option<&str>) -> Result<Self, PrivilegeError> {
        let (uid, primary) = passwd(user)?.ok_or_else(|| PrivilegeError::NoUser(user.into()))?;
        let gid = match group {
            Some(g) => group_id(g)?.ok_or_else(|| PrivilegeError::NoGroup(g.into()))?,
            None => primary,
        };
        Ok(Self {
            user: user.to_owned(),
            uid,
            gid,
        })
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// The account this process runs as (named by its uid when it has no name).
    pub fn current() -> Self {
        // SAFETY: geteuid and getegid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Self {
            user: format!("uid {uid}"),
            uid,
            gid,
        }
    }

    /// The account `run` will write the store as: the configured user when started as root
    /// (looked up, so a missing user is an error here), else this process's own.
    pub fn for_service(service: &crate::config::Service) -> Result<Self, PrivilegeError> {
        if running_as_root() {
            Self::lookup(&service.user, service.group.as_deref())
        } else {
            Ok(Self::current())
        }
    }
}

/// Bytes for the string buffers of `getpwnam_r`/`getgrnam_r`, doubled on ERANGE up to a cap.
const LOOKUP_BUFFER: usize = 1024;
const LOOKUP_BUFFER_MAX: usize = 1 << 20;

/// (uid, primary gid) of `name`, None when there is no such user.
fn passwd(name: &str) -> Result<Option<(u32, u32)>, PrivilegeError> {
    let err = |source| PrivilegeError::Lookup {
        what: "user",
        name: name.to_owned(),
        source,
    };
    let cname = CString::new(name).map_err(|e| err(io::Error::other(e)))?;
    let mut size = LOOKUP_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: an all-zero `passwd` is a valid value of a plain C struct.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call: `cname` is NUL-terminated, `buf` has
        // `size` bytes, `pw` and `result` are live locals. glibc writes only into them.
        let rc = unsafe {
            libc::getpwnam_r(cname.as_ptr(), &mut pw, buf.as_mut_ptr(), size, &mut result)
        };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some((pw.pw_uid, pw.pw_gid))),
            libc::ERANGE if size < LOOKUP_BUFFER_MAX => size *= 2,
            e => return Err(err(io::Error::from_raw_os_error(e))),
        }
    }
}

/// The gid of group `name`, None when there is no such group.
fn group_id(name: &str) -> Result<Option<u32>, PrivilegeError> {
    let err = |source| PrivilegeError::Lookup {
        what: "group",
        name: name.to_owned(),
        source,
    };
    let cname = CString::new(name).map_err(|e| err(io::Error::other(e)))?;
    let mut size = LOOKUP_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: an all-zero `group` is a valid value of a plain C struct.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `passwd`.
        let rc = unsafe {
            libc::getgrnam_r(cname.as_ptr(), &mut gr, buf.as_mut_ptr(), size, &mut result)
        };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some(gr.gr_gid)),
            libc::ERANGE if size < LOOKUP_BUFFER_MAX => size *= 2,
            e => return Err(err(io::Error::from_raw_os_error(e))),
        }
    }
}

/// Whether this process runs with root's effective uid.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn check(step: &'static str, rc: libc::c_int) -> Result<(), PrivilegeError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(PrivilegeError::Syscall {
            step,
            source: io::Error::last_os_error(),
        })
    }
}

/// `prctl` with integer arguments.
fn prctl(
    step: &'static str,
    option: libc::c_int,
    arg: libc::c_ulong,
) -> Result<(), PrivilegeError> {
    // SAFETY: the options used here take integer arguments only; unused ones must be zero.
    check(step, unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets this thread's effective, permitted and inheritable sets to `mask`.
fn capset(mask: u64) -> Result<(), PrivilegeError> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let word = |w: u64| CapData {
        effective: w as u32,
        permitted: w as u32,
        inheritable: w as u32,
    };
    let data = [word(mask & 0xffff_ffff), word(mask >> 32)];
    // SAFETY: capset(2) reads one header and, for version 3, two data structs, laid out as
    // `linux/capability.h` declares them (repr(C) above).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    check("capset", rc as libc::c_int)
}

/// The highest capability number this kernel knows.
fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

/// What a drop did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Now running as the account with only the kept capabilities.
    To {
        user: String,
        uid: u32,
        gid: u32,
        kept: u64,
    },
    /// Not started as root: there was nothing to drop.
    NotRoot { uid: u32 },
    /// `[service] user = "root"`: every privilege kept, on purpose.
    KeptRoot,
}

/// Drops root for good: supplementary groups, gid and uid become the account's, the bounding
/// set loses every other capability, `keep` stays effective, permitted, inheritable and
/// ambient (for children such as tc), and no exec can gain privileges again. Then checks every
/// thread. Call it once the capture handles are open, before any other thread starts.
pub fn drop_privileges(account: &Account, keep: &[Capability]) -> Result<Dropped, PrivilegeError> {
    if !running_as_root() {
        // SAFETY: getuid has no preconditions and cannot fail.
        return Ok(Dropped::NotRoot {
            uid: unsafe { libc::getuid() },
        });
    }
    if account.is_root() {
        return Ok(Dropped::KeptRoot);
    }
    let kept = mask(keep);
    prctl(
        "keep capabilities across the uid change",
        libc::PR_SET_KEEPCAPS,
        1,
    )?;
    for cap in 0..=last_capability() {
        if kept & (1u64 << cap) == 0 {
            prctl(
                "drop from the bounding set",
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(cap),
            )?;
        }
    }
    let gid = account.gid;
    // SAFETY: setgroups reads one gid from a live local.
    check("setgroups", unsafe { libc::setgroups(1, &gid) })?;
    // SAFETY: plain syscalls on integers; glibc applies them to every thread.
    check("setresgid", unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: as above.
    check("setresuid", unsafe {
        libc::setresuid(account.uid, account.uid, account.uid)
    })?;
    capset(kept)?;
    prctl(
        "clear ambient capabilities",
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
    )?;
    for cap in keep {
        // SAFETY: PR_CAP_AMBIENT_RAISE takes the capability number as its third argument.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                libc::c_ulong::from(cap.number()),
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        check("raise an ambient capability", rc)?;
    }
    prctl("stop keeping capabilities", libc::PR_SET_KEEPCAPS, 0)?;
    prctl("forbid new privileges", libc::PR_SET_NO_NEW_PRIVS, 1)?;
    // SAFETY: a failing setuid(0) changes nothing; a succeeding one is caught right here.
    if unsafe { libc::setuid(0) } == 0 {
        return Err(PrivilegeError::NotDropped(
            "setuid(0) still succeeds".into(),
        ));
    }
    verify(account.uid, kept)?;
    Ok(Dropped::To {
        user: account.user.clone(),
        uid: account.uid,
        gid,
        kept,
    })
}

/// Checks that every thread of this process runs as `uid` with exactly `caps` effective and
/// permitted, read from `/proc/self/task/*/status`.
pub fn verify(uid: u32, caps: u64) -> Result<(), PrivilegeError> {
    let tasks = std::fs::read_dir("/proc/self/task")
        .map_err(|e| PrivilegeError::NotDropped(format!("cannot list threads: {e}")))?;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let s = ProcStatus::parse(&status);
        if s.uids != [uid; 4] || s.cap_eff != caps || s.cap_prm != caps {
            return Err(PrivilegeError::NotDropped(format!(
                "thread {} has uids {:?}, CapEff {:016x}, CapPrm {:016x} (expected uid {uid}, capabilities {caps:016x})",
                task.file_name().to_string_lossy(),
                s.uids,
                s.cap_eff,
                s.cap_prm
            )));
        }
    }
    Ok(())
}

/// The identity lines of `/proc/PID/status`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProcStatus {
    /// Real, effective, saved and filesystem uid.
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    pub cap_inh: u64,
    pub cap_prm: u64,
    pub cap_eff: u64,
    pub cap_bnd: u64,
    pub cap_amb: u64,
    pub no_new_privs: bool,
}

impl ProcStatus {
    pub fn parse(status: &str) -> Self {
        let mut s = Self::default();
        for line in status.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let ids = |v: &str| {
                let mut out = [u32::MAX; 4];
                for (o, x) in out.iter_mut().zip(v.split_whitespace()) {
                    *o = x.parse().unwrap_or(u32::MAX);
                }
                out
            };
            let hex = |v: &str| u64::from_str_radix(v, 16).unwrap_or(u64::MAX);
            match key {
                "Uid" => s.uids = ids(value),
                "Gid" => s.gids = ids(value),
                "CapInh" => s.cap_inh = hex(value),
                "CapPrm" => s.cap_prm = hex(value),
                "CapEff" => s.cap_eff = hex(value),
                "CapBnd" => s.cap_bnd = hex(value),
                "CapAmb" => s.cap_amb = hex(value),
                "NoNewPrivs" => s.no_new_privs = value == "1",
                _ => {}
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shaping_keeps_net_admin_only() {
        assert_eq!(capabilities_to_keep(false), &[]);
        assert_eq!(capabilities_to_keep(true), &[Capability::NetAdmin]);
        assert_eq!(mask(capabilities_to_keep(true)), 0x1000);
    }

    #[test]
    fn proc_status_lines_are_read() {
        let s = ProcStatus::parse(
            "Name:\tbwacct\nUid:\t999\t999\t999\t999\nGid:\t998\t998\t998\t998\n\
             CapInh:\t0000000000001000\nCapPrm:\t0000000000001000\nCapEff:\t0000000000001000\n\
             CapBnd:\t0000000000001000\nCapAmb:\t0000000000001000\nNoNewPrivs:\t1\n",
        );
        assert_eq!(s.uids, [999; 4]);
        assert_eq!(s.gids, [998; 4]);
        assert_eq!((s.cap_eff, s.cap_bnd, s.cap_amb), (0x1000, 0x1000, 0x1000));
        assert!(s.no_new_privs);
    }

    #[test]
    fn accounts_are_looked_up_and_missing_ones_named() {
        let root = Account::lookup("root", None).unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.is_root());
        let err = Account::lookup("bwacct-no-such-user", None).unwrap_err();
        assert!(err.to_string().contains("useradd --system"), "{err}");
        let err = Account::lookup("root", Some("bwacct-no-such-group")).unwrap_err();
        assert!(matches!(err, PrivilegeError::NoGroup(_)), "{err}");
    }
}
