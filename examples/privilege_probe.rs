//! Drops root exactly as `bwacct run` does (to USER, keeping what
//! `privilege::capabilities_to_keep(shaping)` names), prints this process's identity lines from
//! `/proc/self/status`, then runs COMMAND (as a child, as shaping runs tc) and exits with its
//! status. The privilege tests use it for the shaping case; it also shows what a child gets.
//!
//! Usage: privilege_probe USER [--shaping] -- COMMAND [ARG...]

use bwacct::privilege::{capabilities_to_keep, drop_privileges, Account};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((user, rest)) = args.split_first() else {
        eprintln!("usage: privilege_probe USER [--shaping] -- COMMAND [ARG...]");
        return ExitCode::from(2);
    };
    let shaping = rest.first().is_some_and(|a| a == "--shaping");
    let command: Vec<&String> = rest.iter().skip_while(|a| *a != "--").skip(1).collect();
    let account = match Account::lookup(user, None) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("privilege_probe: {e}");
            return ExitCode::from(2);
        }
    };
    match drop_privileges(&account, capabilities_to_keep(shaping)) {
        Ok(d) => println!("dropped: {d:?}"),
        Err(e) => {
            eprintln!("privilege_probe: {e}");
            return ExitCode::from(2);
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if ["Uid:", "Gid:", "Cap", "NoNewPrivs:"]
            .iter()
            .any(|p| line.starts_with(p))
        {
            println!("{line}");
        }
    }
    let Some((program, args)) = command.split_first() else {
        return ExitCode::SUCCESS;
    };
    match Command::new(program).args(args).status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            println!("command: {s}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("privilege_probe: {program}: {e}");
            ExitCode::from(2)
        }
    }
}
