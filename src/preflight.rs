//! Checks made before capture starts (by `run`) and by `check-config`: the capture interfaces
//! exist, and the store can be written by the account that will write it. Reads the system;
//! changes nothing except [`prepare_store_dir`], which only creates a missing directory.

use crate::privilege::Account;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("capture interface {name:?} does not exist on this host (interfaces: {known})")]
    NoInterface { name: String, known: String },
    #[error("store {store}: {dir} is not writable by user {user} (uid {uid}): owner uid {owner}, group gid {group}, mode {mode:04o}; give the directory to that user or change [storage] sqlite")]
    NotWritable {
        store: PathBuf,
        dir: PathBuf,
        user: String,
        uid: u32,
        owner: u32,
        group: u32,
        mode: u32,
    },
    #[error("store {store}: user {user} cannot enter {dir} (mode {mode:04o})")]
    NoSearch {
        store: PathBuf,
        dir: PathBuf,
        user: String,
        mode: u32,
    },
    #[error("store {store}: {what} is on a read-only file system")]
    ReadOnly { store: PathBuf, what: PathBuf },
    #[error("store {store}: {what} is not a regular file")]
    NotAFile { store: PathBuf, what: PathBuf },
    #[error("store {store}: cannot inspect {what}: {source}")]
    Io {
        store: PathBuf,
        what: PathBuf,
        source: std::io::Error,
    },
}

/// Where the kernel lists network interfaces.
const SYS_CLASS_NET: &str = "/sys/class/net";
/// libpcap's pseudo-device that captures on every interface.
const PCAP_ANY: &str = "any";

/// Every named interface exists (an empty list means libpcap's default device: not checked).
pub fn interfaces(names: &[String]) -> Result<(), PreflightError> {
    for name in names {
        if name == PCAP_ANY || Path::new(SYS_CLASS_NET).join(name).exists() {
            continue;
        }
        let mut known: Vec<String> = std::fs::read_dir(SYS_CLASS_NET)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        known.sort();
        return Err(PreflightError::NoInterface {
            name: name.clone(),
            known: known.join(", "),
        });
    }
    Ok(())
}

/// As root, creates the store's missing directory (mode 0750) and gives it to the account, so
/// that a fresh install works once the service user exists. An existing directory is never
/// changed.
pub fn prepare_store_dir(store: &Path, account: &Account) -> Result<(), PreflightError> {
    let Some(dir) = store.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    let io = |source| PreflightError::Io {
        store: store.to_owned(),
        what: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).map_err(io)?;
    std::os::unix::fs::chown(dir, Some(account.uid), Some(account.gid)).map_err(io)
}

/// Whether `meta` grants `want` (a mask of the owner bits: 0o2 write, 0o1 search) to the
/// account by its mode bits (ACLs are not read; root passes).
fn grants(meta: &std::fs::Metadata, account: &Account, want: u32) -> bool {
    if account.is_root() {
        return true;
    }
    let mode = meta.mode();
    let bits = if meta.uid() == account.uid {
        mode >> 6
    } else if meta.gid() == account.gid {
        mode >> 3
    } else {
        mode
    };
    bits & want == want
}

fn read_only(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statvfs is a valid plain C struct; `c` is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_flag & libc::ST_RDONLY != 0
}

/// Creates and removes a file in `dir`: a file system that went read-only after an error
/// (ext4's errors=remount-ro) still looks writable to statvfs. Done as the account itself only
/// (root under a systemd `CapabilityBoundingSet` without CAP_DAC_OVERRIDE may not write there).
fn probe(store: &Path, dir: &Path) -> Result<(), PreflightError> {
    let path = dir.join(format!(".bwacct-probe-{}", std::process::id()));
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path);
    match made {
        Ok(_) => std::fs::remove_file(&path).map_err(|source| PreflightError::Io {
            store: store.to_owned(),
            what: path.clone(),
            source,
        }),
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => Err(PreflightError::ReadOnly {
            store: store.to_owned(),
            what: dir.to_owned(),
        }),
        Err(source) => Err(PreflightError::Io {
            store: store.to_owned(),
            what: dir.to_owned(),
            source,
        }),
    }
}

/// The store file (if it exists) and its directory (or, if that is missing, the nearest
/// existing ancestor, in which it would be created) are writable by `account`, on a writable
/// file system. When this process is that account, a file is created there to be sure; `run`
/// calls this again after dropping root for that reason.
pub fn store_writable(store: &Path, account: &Account) -> Result<(), PreflightError> {
    let io = |what: &Path, source| PreflightError::Io {
        store: store.to_owned(),
        what: what.to_owned(),
        source,
    };
    let not_writable = |dir: &Path, meta: &std::fs::Metadata| PreflightError::NotWritable {
        store: store.to_owned(),
        dir: dir.to_owned(),
        user: account.user.clone(),
        uid: account.uid,
        owner: meta.uid(),
        group: meta.gid(),
        mode: meta.mode() & 0o7777,
    };
    match std::fs::metadata(store) {
        Ok(meta) if !meta.is_file() => {
            return Err(PreflightError::NotAFile {
                store: store.to_owned(),
                what: store.to_owned(),
            })
        }
        Ok(meta) if !grants(&meta, account, 0o2) => return Err(not_writable(store, &meta)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(store, e)),
    }
    let parent = store
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = parent
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"));
    let meta = std::fs::metadata(dir).map_err(|e| io(dir, e))?;
    if !grants(&meta, account, 0o3) {
        return Err(not_writable(dir, &meta));
    }
    // Every directory above must let the account through.
    let absolute = std::path::absolute(dir).map_err(|e| io(dir, e))?;
    for above in absolute.ancestors().skip(1) {
        let meta = std::fs::metadata(above).map_err(|e| io(above, e))?;
        if !grants(&meta, account, 0o1) {
            return Err(PreflightError::NoSearch {
                store: store.to_owned(),
                dir: above.to_owned(),
                user: account.user.clone(),
                mode: meta.mode() & 0o7777,
            });
        }
    }
    if read_only(dir) {
        return Err(PreflightError::ReadOnly {
            store: store.to_owned(),
            what: dir.to_owned(),
        });
    }
    if crate::privilege::Account::current().uid == account.uid {
        probe(store, dir)?;
    }
    Ok(())
}

/// Everything `run` would refuse to start on, as messages (for `check-config`).
pub fn check_config(cfg: &crate::config::Config) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = interfaces(&cfg.capture.interfaces) {
        problems.push(e.to_string());
    }
    // The account that will write the store: the service user if it exists (whoever runs
    // check-config), else what `run` would use here.
    let account = Account::lookup(&cfg.service.user, cfg.service.group.as_deref())
        .or_else(|_| Account::for_service(&cfg.service));
    match account {
        Ok(account) => {
            // A missing directory is created by `run` (as root) for the service account.
            let creates = crate::privilege::running_as_root()
                && cfg
                    .storage
                    .sqlite
                    .parent()
                    .is_some_and(|d| !d.as_os_str().is_empty() && !d.exists());
            if !creates {
                if let Err(e) = store_writable(&cfg.storage.sqlite, &account) {
                    problems.push(e.to_string());
                }
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nobody() -> Account {
        Account {
            user: "nobody".into(),
            uid: 65534,
            gid: 65534,
        }
    }

    #[test]
    fn missing_interfaces_are_named_with_the_known_ones() {
        assert!(interfaces(&["lo".into(), "any".into()]).is_ok());
        let err = interfaces(&["nosuch0".into()]).unwrap_err().to_string();
        assert!(err.contains("\"nosuch0\"") && err.contains("lo"), "{err}");
    }

    #[test]
    fn store_directories_are_checked_by_mode_for_the_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("sub/bw.db");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // The mode bits matter for an ordinary account only: as root, give the directory to one.
        if crate::privilege::running_as_root() {
            std::os::unix::fs::chown(dir.path(), Some(4242), Some(4242)).unwrap();
        }
        let meta = std::fs::metadata(dir.path()).unwrap();
        let me = Account {
            user: "me".into(),
            uid: meta.uid(),
            gid: meta.gid(),
        };
        assert!(store_writable(&store, &me).is_ok());
        let err = store_writable(&store, &nobody()).unwrap_err().to_string();
        assert!(
            err.contains("not writable by user nobody") && err.contains("mode 0755"),
            "{err}"
        );
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(&store, b"").unwrap();
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o444)).unwrap();
        let err = store_writable(&store, &me).unwrap_err().to_string();
        assert!(err.contains("bw.db is not writable"), "{err}");
        let err = store_writable(dir.path(), &me).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
