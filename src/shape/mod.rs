//! Shaping: the tc and iptables commands that slow a customer down — planned (`plan`), run
//! idempotently after checking what is in effect (`apply`), and undone exactly as recorded in
//! the store (`clear`). Commands run as argv through [`Runner`], never through a shell; names
//! and interfaces come validated from the configuration.

mod apply;
pub mod plan;

pub use apply::{apply, bridge_netfilter_warning, clear, Done, Runner, System};
pub use plan::{customer_steps, plan, render, Check, Step};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ShapeError {
    #[error("customer {0:?} cannot be shaped: give it a shape, a mark and (bridge method) a vif")]
    NoShape(String),
    #[error("no customer {0:?} in the configuration")]
    NoSuchCustomer(String),
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}` printed what bwacct cannot read: {detail}")]
    Output { command: String, detail: String },
    #[error("{dev} already has a root qdisc {kind} {handle} that bwacct did not create: not replacing it (remove it, or shape on another interface)")]
    Foreign {
        dev: String,
        kind: String,
        handle: String,
    },
    #[error("a recorded shaping step cannot be read back: {0}")]
    Record(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
