//! Running a plan: each step's check asks the kernel whether it is in effect (`tc -j qdisc
//! show`, `tc class show`, `tc -j filter show`, `iptables -C`); a step that is not is applied and
//! recorded in the store with its undo commands; `clear` runs the recorded undo commands of the
//! steps still in effect, newest first, and drops the shared HTB tree with its last customer.

use super::plan::{quote, Check, Step};
use super::ShapeError;
use crate::store::quota::{AppliedStep, QuotaStore};
use std::process::{Command, Output, Stdio};

/// Runs one argv and returns what it printed, whatever its exit status.
pub trait Runner {
    fn run(&mut self, argv: &[String]) -> Result<Output, ShapeError>;
}

/// Runs commands on this system (`std::process::Command`: no shell).
#[derive(Debug, Default)]
pub struct System;

impl Runner for System {
    fn run(&mut self, argv: &[String]) -> Result<Output, ShapeError> {
        let program = argv.first().cloned().unwrap_or_default();
        tracing::debug!(command = %line(argv), "running");
        Command::new(&program)
            .args(argv.get(1..).unwrap_or_default())
            .stdin(Stdio::null())
            .output()
            .map_err(|source| ShapeError::Spawn { program, source })
    }
}

/// A step's owner for the log.
fn owner(name: &str) -> &str {
    if name.is_empty() {
        "(shared)"
    } else {
        name
    }
}

fn line(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// Runs `argv` and insists on success.
fn run_ok(r: &mut dyn Runner, argv: &[String]) -> Result<Output, ShapeError> {
    let out = r.run(argv)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(ShapeError::Command {
            command: line(argv),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

fn json(argv: &[String], out: &Output) -> Result<serde_json::Value, ShapeError> {
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_str(&text).map_err(|e| ShapeError::Output {
        command: line(argv),
        detail: e.to_string(),
    })
}

/// A number as tc prints it in JSON (`5`, `"5"`, `"0x5"`).
fn number(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

/// Whether `check` holds now.
fn in_effect(r: &mut dyn Runner, check: &Check) -> Result<bool, ShapeError> {
    match check {
        Check::RootQdisc { dev, kind, handle } => {
            let argv = args(&["tc", "-j", "qdisc", "show", "dev", dev]);
            let out = run_ok(r, &argv)?;
            let qdiscs = json(&argv, &out)?;
            let Some(root) = qdiscs
                .as_array()
                .and_then(|a| a.iter().find(|q| q["root"] == true))
            else {
                return Ok(false);
            };
            let found_kind = root["kind"].as_str().unwrap_or("");
            let found_handle = root["handle"].as_str().unwrap_or("");
            if found_kind == kind && handle.as_deref().is_none_or(|h| h == found_handle) {
                return Ok(true);
            }
            // A kernel default (handle 0:) may be replaced; another tree is someone else's.
            if handle.is_some() && found_handle != "0:" {
                return Err(ShapeError::Foreign {
                    dev: dev.clone(),
                    kind: found_kind.to_owned(),
                    handle: found_handle.to_owned(),
                });
            }
            Ok(false)
        }
        Check::Class { dev, classid } => {
            let argv = args(&["tc", "class", "show", "dev", dev, "classid", classid]);
            let out = run_ok(r, &argv)?;
            Ok(String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .nth(2)
                .is_some_and(|id| id == classid))
        }
        Check::Filter {
            dev,
            parent,
            protocol,
            prio,
            kind,
            handle,
        } => {
            let argv = args(&["tc", "-j", "filter", "show", "dev", dev, "parent", parent]);
            let out = run_ok(r, &argv)?;
            let filters = json(&argv, &out)?;
            Ok(filters.as_array().is_some_and(|all| {
                all.iter().any(|f| {
                    f["pref"].as_u64() == Some(u64::from(*prio))
                        && f["protocol"].as_str() == Some(protocol)
                        && f["kind"].as_str() == Some(kind)
                        && match handle {
                            None => true,
                            Some(h) => number(&f["options"]["handle"]) == Some(u64::from(*h)),
                        }
                })
            }))
        }
        Check::Iptables {
            program,
            table,
            chain,
            rule,
        } => {
            let mut argv = args(&[program, "-t", table, "-C", chain]);
            argv.extend(rule.iter().cloned());
            let out = r.run(&argv)?;
            match out.status.code() {
                Some(0) => Ok(true),
                Some(1) => Ok(false),
                _ => Err(ShapeError::Command {
                    command: line(&argv),
                    status: out.status.to_string(),
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                }),
            }
        }
    }
}

/// What `apply` or `clear` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Done {
    /// Steps whose commands ran.
    pub ran: usize,
    /// Steps that were already in effect (apply) or already gone (clear).
    pub unchanged: usize,
}

/// Brings every step into effect, recording those it ran. Stops at the first failure (what
/// ran before it stays recorded, so `clear` can undo it).
pub fn apply(
    steps: &[Step],
    r: &mut dyn Runner,
    store: &mut dyn QuotaStore,
    now: i64,
) -> Result<Done, ShapeError> {
    let mut done = Done::default();
    for step in steps {
        if in_effect(r, &step.check)? {
            done.unchanged += 1;
            continue;
        }
        for argv in &step.apply {
            tracing::info!(owner = %owner(&step.owner), command = %line(argv), "shaping");
            run_ok(r, argv)?;
        }
        let text = serde_json::to_string(step).map_err(|e| ShapeError::Record(e.to_string()))?;
        store.add_applied_step(&AppliedStep {
            owner: step.owner.clone(),
            key: step.key.clone(),
            step: text,
            applied_at: now,
        })?;
        done.ran += 1;
    }
    Ok(done)
}

fn undo(
    r: &mut dyn Runner,
    store: &mut dyn QuotaStore,
    rec: &AppliedStep,
) -> Result<bool, ShapeError> {
    let step: Step =
        serde_json::from_str(&rec.step).map_err(|e| ShapeError::Record(e.to_string()))?;
    let ran = in_effect(r, &step.check)?;
    if ran {
        for argv in &step.undo {
            tracing::info!(owner = %owner(&step.owner), command = %line(argv), "unshaping");
            run_ok(r, argv)?;
        }
    }
    store.remove_applied_step(&rec.owner, &rec.key)?;
    Ok(ran)
}

/// Undoes what `apply` recorded for `owner` (every customer when `None`), newest first; the
/// shared HTB tree goes when no customer is left in it.
pub fn clear(
    owner: Option<&str>,
    r: &mut dyn Runner,
    store: &mut dyn QuotaStore,
) -> Result<Done, ShapeError> {
    let mut done = Done::default();
    let mut count = |ran: bool| {
        if ran {
            done.ran += 1;
        } else {
            done.unchanged += 1;
        }
    };
    let records = store.applied_steps(None)?;
    for rec in records.iter().rev() {
        let mine = !rec.owner.is_empty() && owner.is_none_or(|o| o == rec.owner);
        if mine {
            count(undo(r, store, rec)?);
        }
    }
    if store
        .applied_steps(None)?
        .iter()
        .all(|s| s.owner.is_empty())
    {
        for rec in records.iter().rev().filter(|s| s.owner.is_empty()) {
            count(undo(r, store, rec)?);
        }
    }
    Ok(done)
}

/// Why marks set by `physdev` would never match here, if they would not.
pub fn bridge_netfilter_warning() -> Option<String> {
    let path = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == "1" => None,
        Ok(_) => Some(format!("{path} is 0: bridged traffic skips iptables, so the physdev marks never match (sysctl -w net.bridge.bridge-nf-call-iptables=1)")),
        Err(_) => Some(format!("{path} is missing: load br_netfilter (modprobe br_netfilter) or the physdev marks never match")),
    }
}
