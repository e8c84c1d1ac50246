//! The shaping plan: for a customer, the tc and iptables commands that slow it down, each with
//! a check that says whether it is in effect and the commands that undo it. Bridge method (Xen):
//! TBF on the vif for traffic to the customer; iptables `physdev --physdev-in VIF` marks its
//! traffic in mangle FORWARD and an `fw` (or `bpf`) filter sends the mark to its HTB class on
//! the uplink. Address method: HTB classes with u32 matches on its addresses, sources on the
//! uplink and destinations on the downlink. Pure: builds argvs, runs nothing.

use super::ShapeError;
use crate::config::{Classifier, Customer, Method, Shape, Shaping};
use crate::quantity::Rate;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// How to tell that a step is in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Check {
    /// The root qdisc of `dev` is of `kind` (and has `handle`, when given). With a handle, a
    /// different non-default root qdisc is someone else's and is never replaced.
    RootQdisc {
        dev: String,
        kind: String,
        handle: Option<String>,
    },
    Class {
        dev: String,
        classid: String,
    },
    /// A filter at `prio` for `protocol` under `parent` (with `handle`, when given).
    Filter {
        dev: String,
        parent: String,
        protocol: String,
        prio: u32,
        kind: String,
        handle: Option<u32>,
    },
    /// `PROGRAM -t TABLE -C CHAIN RULE...` succeeds.
    Iptables {
        program: String,
        table: String,
        chain: String,
        rule: Vec<String>,
    },
}

/// One unit of shaping: applied and undone as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The customer, or `""` for what customers share (the uplink's HTB root and parent class).
    pub owner: String,
    /// Unique among the steps of an owner.
    pub key: String,
    pub check: Check,
    pub apply: Vec<Vec<String>>,
    pub undo: Vec<Vec<String>>,
}

/// The HTB handle of the shaping tree and the minor number of its parent class.
const ROOT: &str = "1:";
const PARENT: &str = "1:fffe";
/// The priority of the mark filters (bridge method).
const MARK_PRIO: u32 = 1;

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

fn classid(mark: u32) -> String {
    format!("1:{mark:x}")
}

/// HTB's quantum for a class: a tenth of a second's bytes, at least a packet, at most 200,000.
fn quantum(rate: Rate, mtu: u32) -> String {
    (rate.bytes_per_s() / 10)
        .clamp(u64::from(mtu), 200_000)
        .to_string()
}

/// The HTB root and parent class of `dev`, shared by every customer shaped there.
fn tree(dev: &str, s: &Shaping) -> Vec<Step> {
    vec![
        Step {
            owner: String::new(),
            key: format!("htb:{dev}"),
            check: Check::RootQdisc {
                dev: dev.into(),
                kind: "htb".into(),
                handle: Some(ROOT.into()),
            },
            apply: vec![argv(&[
                "tc", "qdisc", "replace", "dev", dev, "root", "handle", ROOT, "htb",
            ])],
            undo: vec![argv(&["tc", "qdisc", "del", "dev", dev, "root"])],
        },
        Step {
            owner: String::new(),
            key: format!("class:{dev}:{PARENT}"),
            check: Check::Class {
                dev: dev.into(),
                classid: PARENT.into(),
            },
            apply: vec![argv(&[
                "tc",
                "class",
                "replace",
                "dev",
                dev,
                "parent",
                ROOT,
                "classid",
                PARENT,
                "htb",
                "rate",
                &s.uplink_rate.to_string(),
                "quantum",
                &quantum(s.uplink_rate, s.mtu),
            ])],
            undo: vec![argv(&["tc", "class", "del", "dev", dev, "classid", PARENT])],
        },
    ]
}

/// The customer's HTB class on `dev`: its rate, up to its peak.
fn class(c: &Customer, sh: &Shape, mark: u32, dev: &str, s: &Shaping) -> Step {
    let id = classid(mark);
    Step {
        owner: c.name.clone(),
        key: format!("class:{dev}:{id}"),
        check: Check::Class {
            dev: dev.into(),
            classid: id.clone(),
        },
        apply: vec![argv(&[
            "tc",
            "class",
            "replace",
            "dev",
            dev,
            "parent",
            PARENT,
            "classid",
            &id,
            "htb",
            "rate",
            &sh.rate.to_string(),
            "ceil",
            &sh.peak.unwrap_or(sh.rate).to_string(),
            "burst",
            &sh.burst.to_string(),
            "quantum",
            &quantum(sh.rate, s.mtu),
        ])],
        undo: vec![argv(&["tc", "class", "del", "dev", dev, "classid", &id])],
    }
}

fn tbf(c: &Customer, sh: &Shape, vif: &str, s: &Shaping) -> Step {
    let mut apply = argv(&[
        "tc",
        "qdisc",
        "replace",
        "dev",
        vif,
        "root",
        "tbf",
        "rate",
        &sh.rate.to_string(),
        "burst",
        &sh.burst.to_string(),
        "latency",
        &sh.latency.to_string(),
    ]);
    if let Some(peak) = sh.peak {
        apply.extend(argv(&[
            "peakrate",
            &peak.to_string(),
            "mtu",
            &s.mtu.to_string(),
        ]));
    }
    Step {
        owner: c.name.clone(),
        key: format!("tbf:{vif}"),
        check: Check::RootQdisc {
            dev: vif.into(),
            kind: "tbf".into(),
            handle: None,
        },
        apply: vec![apply],
        undo: vec![argv(&["tc", "qdisc", "del", "dev", vif, "root"])],
    }
}

fn mark_rule(c: &Customer, program: &str, vif: &str, mark: u32) -> Step {
    let rule = argv(&[
        "-m",
        "physdev",
        "--physdev-in",
        vif,
        "-j",
        "MARK",
        "--set-mark",
        &mark.to_string(),
    ]);
    let with = |op: &str| {
        let mut v = argv(&[program, "-t", "mangle", op, "FORWARD"]);
        v.extend(rule.iter().cloned());
        v
    };
    Step {
        owner: c.name.clone(),
        key: format!("{program}:{vif}"),
        check: Check::Iptables {
            program: program.into(),
            table: "mangle".into(),
            chain: "FORWARD".into(),
            rule: rule.clone(),
        },
        apply: vec![with("-A")],
        undo: vec![with("-D")],
    }
}

/// The four instructions of classic BPF that `fw` amounts to: load the mark (the ancillary
/// word SKF_AD_OFF + SKF_AD_MARK = -4096 + 20), compare, return the filter's class (-1) or no
/// match (0).
fn mark_bytecode(mark: u32) -> String {
    const LD_W_ABS: u32 = 0x20;
    const JEQ_K: u32 = 0x15;
    const RET_K: u32 = 0x06;
    let ad_mark = (-4096i32 + 20) as u32;
    format!(
        "4,{LD_W_ABS} 0 0 {ad_mark},{JEQ_K} 0 1 {mark},{RET_K} 0 0 {},{RET_K} 0 0 0",
        u32::MAX
    )
}

fn mark_filter(c: &Customer, mark: u32, dev: &str, classifier: Classifier) -> Step {
    let m = mark.to_string();
    let kind = match classifier {
        Classifier::Fw => "fw",
        Classifier::Bpf => "bpf",
    };
    let prio = MARK_PRIO.to_string();
    let head = ["tc", "filter"];
    let at = [
        "dev", dev, "parent", ROOT, "protocol", "all", "prio", &prio, "handle", &m, kind,
    ];
    let mut apply = argv(&head);
    apply.push("replace".into());
    apply.extend(argv(&at));
    if classifier == Classifier::Bpf {
        apply.extend(argv(&["bytecode", &mark_bytecode(mark)]));
    }
    apply.extend(argv(&["classid", &classid(mark)]));
    let mut undo = argv(&head);
    undo.push("del".into());
    undo.extend(argv(&at));
    Step {
        owner: c.name.clone(),
        key: format!("filter:{dev}:{kind}:{mark}"),
        check: Check::Filter {
            dev: dev.into(),
            parent: ROOT.into(),
            protocol: "all".into(),
            prio: MARK_PRIO,
            kind: kind.into(),
            handle: Some(mark),
        },
        apply: vec![apply],
        undo: vec![undo],
    }
}

/// u32 filters matching the customer's addresses as `side` (`src` or `dst`) on `dev`: one
/// priority per family (2 × mark for IPv4, 2 × mark + 1 for IPv6), so that undoing them is
/// deleting the priority.
fn address_filters(c: &Customer, mark: u32, dev: &str, side: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for (protocol, prio, matcher, v6) in [
        ("ip", 2 * mark, "ip", false),
        ("ipv6", 2 * mark + 1, "ip6", true),
    ] {
        let nets: Vec<&IpNet> = c
            .networks
            .iter()
            .filter(|n| matches!(n, IpNet::V6(_)) == v6)
            .collect();
        if nets.is_empty() {
            continue;
        }
        let p = prio.to_string();
        let apply = nets
            .iter()
            .map(|n| {
                argv(&[
                    "tc",
                    "filter",
                    "add",
                    "dev",
                    dev,
                    "parent",
                    ROOT,
                    "protocol",
                    protocol,
                    "prio",
                    &p,
                    "u32",
                    "match",
                    matcher,
                    side,
                    &n.to_string(),
                    "classid",
                    &classid(mark),
                ])
            })
            .collect();
        steps.push(Step {
            owner: c.name.clone(),
            key: format!("u32:{dev}:{protocol}:{prio}"),
            check: Check::Filter {
                dev: dev.into(),
                parent: ROOT.into(),
                protocol: protocol.into(),
                prio,
                kind: "u32".into(),
                handle: None,
            },
            apply,
            undo: vec![argv(&[
                "tc", "filter", "del", "dev", dev, "parent", ROOT, "protocol", protocol, "prio", &p,
            ])],
        });
    }
    steps
}

/// Everything that shapes `c`, shared steps first.
pub fn customer_steps(c: &Customer, s: &Shaping) -> Result<Vec<Step>, ShapeError> {
    let Some(sh) = &c.shape else {
        return Err(ShapeError::NoShape(c.name.clone()));
    };
    let Some(mark) = c.mark else {
        return Err(ShapeError::NoShape(c.name.clone()));
    };
    let mut steps = tree(&s.uplink, s);
    match s.method {
        Method::Bridge => {
            let Some(vif) = c.vif.as_deref() else {
                return Err(ShapeError::NoShape(c.name.clone()));
            };
            steps.push(tbf(c, sh, vif, s));
            steps.push(mark_rule(c, "iptables", vif, mark));
            steps.push(mark_rule(c, "ip6tables", vif, mark));
            steps.push(class(c, sh, mark, &s.uplink, s));
            steps.push(mark_filter(c, mark, &s.uplink, s.classifier));
        }
        Method::Address => {
            let Some(down) = s.downlink.as_deref() else {
                return Err(ShapeError::NoShape(c.name.clone()));
            };
            steps.extend(tree(down, s));
            steps.push(class(c, sh, mark, &s.uplink, s));
            steps.extend(address_filters(c, mark, &s.uplink, "src"));
            steps.push(class(c, sh, mark, down, s));
            steps.extend(address_filters(c, mark, down, "dst"));
        }
    }
    Ok(steps)
}

/// The steps for several customers, shared steps once, in order.
pub fn plan(customers: &[&Customer], s: &Shaping) -> Result<Vec<Step>, ShapeError> {
    let mut out: Vec<Step> = Vec::new();
    for c in customers {
        for step in customer_steps(c, s)? {
            if !out
                .iter()
                .any(|o| o.owner == step.owner && o.key == step.key)
            {
                out.push(step);
            }
        }
    }
    Ok(out)
}

/// An argument as a POSIX shell would need it to read it back (for printing only: bwacct never
/// runs a shell).
pub fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Prints the apply commands, grouped by owner, one per line.
pub fn render(steps: &[Step], out: &mut dyn Write) -> std::io::Result<()> {
    let mut owner: Option<&str> = None;
    for step in steps {
        if owner != Some(step.owner.as_str()) {
            owner = Some(step.owner.as_str());
            if step.owner.is_empty() {
                writeln!(out, "# shared")?;
            } else {
                writeln!(out, "# customer {}", step.owner)?;
            }
        }
        for a in &step.apply {
            let line: Vec<String> = a.iter().map(|x| quote(x)).collect();
            writeln!(out, "{}", line.join(" "))?;
        }
    }
    Ok(())
}
