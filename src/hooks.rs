//! Hooks: external programs run when something happens (a quota state change, a layer-2 alarm),
//! as argv — never through a shell — with `{name}` placeholders and the same values in
//! `BWACCT_NAME` environment variables, a timeout, and retries with backoff. Jobs run in order
//! on their own thread: whoever submits never waits. Knows nothing of quotas or the store.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The hooks to run for a kind of event, and how patiently.
#[derive(Debug, Clone, PartialEq)]
pub struct HookSet {
    /// Each an argv with `{placeholders}`.
    pub argvs: Vec<Vec<String>>,
    pub timeout: Duration,
    /// Further attempts after a failure.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
}

/// One event to announce: every hook of `hooks` runs once with `vars`.
#[derive(Debug, Clone)]
pub struct Job {
    /// The caller's identifier, handed back with the outcome.
    pub id: i64,
    pub hooks: Arc<HookSet>,
    /// Placeholder name → value, e.g. `("customer", "goneril")`.
    pub vars: Vec<(String, String)>,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every hook exited with status 0.
    Done,
    /// At least one hook still failed after its retries.
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hook {program}: cannot start: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("hook {program}: killed after {seconds} s (alerts.timeout_s)")]
    Timeout { program: String, seconds: u64 },
    #[error("hook {program}: {status}{}", if .stderr.is_empty() { String::new() } else { format!(": {}", .stderr) })]
    Failed {
        program: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("hook {program}: stopped at shutdown")]
    Aborted { program: String },
}

/// Runs jobs on a thread of its own, in submission order.
pub struct HookRunner {
    tx: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<(i64, Outcome)>,
    abort: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// At most this much of a failing hook's standard error goes to the log.
const STDERR_KEEP: usize = 2048;
/// How often a running hook is looked at.
const POLL: Duration = Duration::from_millis(10);

impl HookRunner {
    /// Starts the runner thread (`name` appears in the thread's name and the logs).
    pub fn start(name: &str) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        let abort = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&abort);
        let label = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("hooks-{name}"))
            .spawn(move || {
                for job in rx {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let outcome = run_job(&job, &stop, &label);
                    if stop.load(Ordering::Relaxed) && outcome == Outcome::Failed {
                        // Interrupted: not an outcome; the caller keeps it pending.
                        break;
                    }
                    let _ = done_tx.send((job.id, outcome));
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            done,
            abort,
            thread: Some(thread),
        })
    }

    /// Queues a job; returns at once.
    pub fn submit(&self, job: Job) {
        if let Some(tx) = &self.tx {
            // The thread only ends after `finish`: a send cannot fail before.
            let _ = tx.send(job);
        }
    }

    /// Outcomes of the jobs finished since the last call.
    pub fn completed(&self) -> Vec<(i64, Outcome)> {
        self.done.try_iter().collect()
    }

    /// Runs what is queued for at most `patience`, then stops (a running hook is killed) and
    /// returns the outcomes not yet collected. Jobs without an outcome did not complete.
    pub fn finish(mut self, patience: Duration) -> Vec<(i64, Outcome)> {
        self.tx = None;
        let deadline = Instant::now() + patience;
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
            if !thread.is_finished() {
                tracing::warn!("hooks still running at shutdown: stopping them; they will run again at the next start");
                self.abort.store(true, Ordering::Relaxed);
            }
            let _ = thread.join();
        }
        self.completed()
    }
}

impl Drop for HookRunner {
    fn drop(&mut self) {
        self.tx = None;
        self.abort.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run_job(job: &Job, abort: &AtomicBool, label: &str) -> Outcome {
    let env: Vec<(String, String)> = job
        .vars
        .iter()
        .map(|(k, v)| (format!("BWACCT_{}", k.to_ascii_uppercase()), v.clone()))
        .collect();
    let mut outcome = Outcome::Done;
    for argv in &job.hooks.argvs {
        let args: Vec<String> = argv.iter().map(|a| expand(a, &job.vars)).collect();
        let mut attempt = 0u32;
        loop {
            match run_once(&args, &env, job.hooks.timeout, abort) {
                Ok(()) => {
                    tracing::info!(hook = label, program = %args.first().map_or("", String::as_str), "hook ran");
                    break;
                }
                Err(e) if abort.load(Ordering::Relaxed) => {
                    tracing::warn!(hook = label, "{e}");
                    return Outcome::Failed;
                }
                Err(e) if attempt < job.hooks.retries => {
                    let wait = job.hooks.backoff.saturating_mul(1 << attempt.min(10));
                    attempt += 1;
                    tracing::warn!(
                        hook = label,
                        attempt,
                        retry_in_ms = wait.as_millis() as u64,
                        "{e}"
                    );
                    sleep_unless(abort, wait);
                }
                Err(e) => {
                    tracing::error!(hook = label, attempts = attempt + 1, "{e}; giving up");
                    outcome = Outcome::Failed;
                    break;
                }
            }
        }
    }
    outcome
}

fn sleep_unless(abort: &AtomicBool, wait: Duration) {
    let until = Instant::now() + wait;
    while Instant::now() < until && !abort.load(Ordering::Relaxed) {
        std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
    }
}

/// Runs one argv to its end, killing it at `timeout` or on `abort`.
fn run_once(
    args: &[String],
    env: &[(String, String)],
    timeout: Duration,
    abort: &AtomicBool,
) -> Result<(), HookError> {
    let program = args.first().cloned().unwrap_or_default();
    let mut child = Command::new(&program)
        .args(args.get(1..).unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HookError::Spawn {
            program: program.clone(),
            source,
        })?;
    // Read standard error on the side, so that a chatty hook never blocks on a full pipe.
    let reader = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = STDERR_KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
            }
            String::from_utf8_lossy(&kept).trim().to_owned()
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline && !abort.load(Ordering::Relaxed) => {
                std::thread::sleep(POLL)
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stderr = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(()),
        Some(status) => Err(HookError::Failed {
            program,
            status,
            stderr,
        }),
        None if abort.load(Ordering::Relaxed) => Err(HookError::Aborted { program }),
        None => Err(HookError::Timeout {
            program,
            seconds: timeout.as_secs(),
        }),
    }
}

/// Replaces each `{name}` of `vars` in `arg`; `{{` and `}}` are literal braces; unknown names
/// stay as written.
pub fn expand(arg: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(arg.len());
    walk(arg, |piece| match piece {
        Piece::Text(t) => out.push_str(t),
        Piece::Name(n) => match vars.iter().find(|(k, _)| k == n) {
            Some((_, v)) => out.push_str(v),
            None => {
                out.push('{');
                out.push_str(n);
                out.push('}');
            }
        },
    });
    out
}

/// The placeholder names used in `arg`.
pub fn placeholders(arg: &str) -> Vec<String> {
    let mut names = Vec::new();
    walk(arg, |piece| {
        if let Piece::Name(n) = piece {
            names.push(n.to_owned());
        }
    });
    names
}

enum Piece<'a> {
    Text(&'a str),
    Name(&'a str),
}

fn walk<'a>(arg: &'a str, mut f: impl FnMut(Piece<'a>)) {
    let mut rest = arg;
    while let Some(i) = rest.find(['{', '}']) {
        let (text, tail) = rest.split_at(i);
        f(Piece::Text(text));
        if tail.starts_with("{{") || tail.starts_with("}}") {
            f(Piece::Text(tail.get(..1).unwrap_or_default()));
            rest = tail.get(2..).unwrap_or_default();
            continue;
        }
        if let Some(body) = tail.strip_prefix('{') {
            if let Some(end) = body.find('}') {
                let name = body.get(..end).unwrap_or_default();
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    f(Piece::Name(name));
                    rest = body.get(end + 1..).unwrap_or_default();
                    continue;
                }
            }
        }
        f(Piece::Text(tail.get(..1).unwrap_or_default()));
        rest = tail.get(1..).unwrap_or_default();
    }
    f(Piece::Text(rest));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        vec![
            ("customer".into(), "goneril".into()),
            ("state".into(), "over".into()),
        ]
    }

    #[test]
    fn placeholders_expand_and_braces_escape() {
        assert_eq!(expand("{customer} is {state}", &vars()), "goneril is over");
        assert_eq!(
            expand("{{customer}} {nope} {", &vars()),
            "{customer} {nope} {"
        );
        assert_eq!(expand("a}}b{{c", &vars()), "a}b{c");
        assert_eq!(expand("--name={customer}.", &vars()), "--name=goneril.");
        assert_eq!(placeholders("{a} {{b}} {c_1} {Bad} {}"), vec!["a", "c_1"]);
    }

    fn hooks(argvs: Vec<Vec<String>>, timeout_ms: u64, retries: u32) -> Arc<HookSet> {
        Arc::new(HookSet {
            argvs,
            timeout: Duration::from_millis(timeout_ms),
            retries,
            backoff: Duration::from_millis(20),
        })
    }

    #[test]
    fn a_hook_gets_its_arguments_and_environment_and_never_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = "import os,sys; open(sys.argv[1],'a').write('|'.join(sys.argv[2:]) + '|' + os.environ['BWACCT_CUSTOMER'] + '\\n')";
        let argv: Vec<String> = [
            "python3",
            "-c",
            script,
            out.to_str().unwrap(),
            "{customer}",
            "$(touch pwned); {state}",
        ]
        .map(String::from)
        .to_vec();
        let runner = HookRunner::start("test").unwrap();
        runner.submit(Job {
            id: 7,
            hooks: hooks(vec![argv], 10_000, 0),
            vars: vars(),
        });
        let done = runner.finish(Duration::from_secs(20));
        assert_eq!(done, vec![(7, Outcome::Done)]);
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "goneril|$(touch pwned); over|goneril\n"
        );
        assert!(!std::path::Path::new("pwned").exists());
    }

    #[test]
    fn failures_are_retried_then_given_up_and_slow_hooks_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        // Fails on the first two attempts, succeeds on the third.
        let flaky = format!(
            "import sys; p='{}'\ntry: n=int(open(p).read())\nexcept Exception: n=0\nopen(p,'w').write(str(n+1)); sys.exit(0 if n>=2 else 1)",
            count.display()
        );
        let runner = HookRunner::start("test").unwrap();
        runner.submit(Job {
            id: 1,
            hooks: hooks(vec![vec!["python3".into(), "-c".into(), flaky]], 10_000, 3),
            vars: vars(),
        });
        runner.submit(Job {
            id: 2,
            hooks: hooks(vec![vec!["/nonexistent/hook".into()]], 1000, 1),
            vars: vars(),
        });
        let started = Instant::now();
        runner.submit(Job {
            id: 3,
            hooks: hooks(vec![vec!["sleep".into(), "30".into()]], 300, 0),
            vars: vars(),
        });
        let done = runner.finish(Duration::from_secs(20));
        assert_eq!(
            done,
            vec![
                (1, Outcome::Done),
                (2, Outcome::Failed),
                (3, Outcome::Failed)
            ]
        );
        assert_eq!(std::fs::read_to_string(&count).unwrap(), "3");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sleeping hook was not killed"
        );
    }

    #[test]
    fn finish_stops_a_running_hook_and_leaves_it_without_outcome() {
        let runner = HookRunner::start("test").unwrap();
        runner.submit(Job {
            id: 1,
            hooks: hooks(vec![vec!["sleep".into(), "30".into()]], 60_000, 0),
            vars: vars(),
        });
        let started = Instant::now();
        let done = runner.finish(Duration::from_millis(200));
        assert!(done.is_empty(), "{done:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
