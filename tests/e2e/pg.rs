//! A throwaway PostgreSQL server for the tests and the flush bench: `initdb` into a temporary
//! directory, started with `pg_ctl` on a Unix socket in that directory and on a free loopback
//! port, as the `postgres` account when run as root (PostgreSQL refuses to run as root);
//! stopped and removed when dropped. `start` returns `None`, saying SKIPPED, when the server
//! binaries (Debian `postgresql`) are absent.

#![allow(dead_code)] // shared with benches/flush.rs, which uses a part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct PgCluster {
    /// Removed on drop (after the server stopped).
    root: PathBuf,
    bin: PathBuf,
    data: PathBuf,
    /// The socket directory.
    pub socket: PathBuf,
    pub port: u16,
    /// `runuser -u postgres --` when running as root.
    as_user: Vec<String>,
}

/// The newest installed server's `bin` directory.
fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl PgCluster {
    /// A fresh server, or `None` (SKIPPED printed) without PostgreSQL's binaries.
    pub fn start(tag: &str) -> Option<Self> {
        let Some(bin) = server_bin() else {
            eprintln!(
                "SKIPPED: {tag}: PostgreSQL server binaries are not installed (Debian package postgresql; scripts/setup --test installs it)"
            );
            return None;
        };
        let root = std::env::temp_dir().join(format!("bwacct-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let data = root.join("data");
        let socket = root.join("sock");
        for d in [&root, &data, &socket] {
            std::fs::create_dir_all(d).expect("cluster dir");
        }
        let as_user = if is_root() {
            // the server's files belong to the postgres account; the root dir stays open
            for d in [&data, &socket] {
                let ok = Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(d)
                    .status()
                    .expect("chown")
                    .success();
                assert!(ok, "chown postgres {}", d.display());
            }
            let ok = Command::new("chmod")
                .arg("755")
                .arg(&root)
                .status()
                .expect("chmod")
                .success();
            assert!(ok);
            vec![
                "runuser".into(),
                "-u".into(),
                "postgres".into(),
                "--".into(),
            ]
        } else {
            Vec::new()
        };
        let cluster = PgCluster {
            root,
            bin,
            data,
            socket,
            port: free_port(),
            as_user,
        };
        // local sockets trust; TCP asks for a password (tests of the password paths)
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data.display().to_string(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.start_server();
        Some(cluster)
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        let mut c = match self.as_user.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        c.env_remove("PGPASSWORD").env_remove("PGHOST");
        c
    }

    fn run(&self, tool: &str, args: &[&str]) -> String {
        let out = self
            .command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_server(&self) {
        let opts = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1",
            self.socket.display(),
            self.port
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-l",
                &self.data.join("server.log").display().to_string(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server (fast: open connections are cut, as in an outage).
    pub fn stop_server(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// A connection string over the Unix socket (trusted, no password).
    pub fn socket_conninfo(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db}",
            self.socket.display(),
            self.port
        )
    }

    /// A connection string over loopback TCP (asks for `user`'s password).
    pub fn tcp_conninfo(&self, db: &str, user: &str) -> String {
        format!("host=127.0.0.1 port={} user={user} dbname={db}", self.port)
    }

    /// Runs SQL through psql on the socket; returns the unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.run(
            "psql",
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &self.socket.display().to_string(),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ],
        )
        .trim()
        .to_owned()
    }

    /// A role with a password and a database it owns (the README's setup).
    pub fn create_db(&self, db: &str, owner: &str, password: &str) {
        self.psql(
            "postgres",
            &format!("CREATE ROLE {owner} LOGIN PASSWORD '{password}'"),
        );
        self.psql("postgres", &format!("CREATE DATABASE {db} OWNER {owner}"));
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D"])
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.data.join("postmaster.pid").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
