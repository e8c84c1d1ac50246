//! Log output: `tracing` lines on standard error. Under systemd (`JOURNAL_STREAM` set) each line
//! starts with its syslog priority (`<4>` for a warning, as sd-daemon(3) describes) and carries
//! no time stamp or colour, so that the journal files it at the right level
//! (`journalctl -u bwacct -p warning`). Sets up output only; what is logged is decided elsewhere.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The syslog priority of a level: err 3, warning 4, info 6, debug 7.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Writes `<priority>` before each line of another format.
struct Journal<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journal<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// Installs the subscriber: `filter` in env-filter syntax (an invalid one falls back to
/// `info`), journal-style lines when `journal`, colours only on a terminal.
pub fn init(filter: &str, journal: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if journal {
        let format: Format<_, ()> = Format::default().with_target(false).without_time();
        builder
            .with_ansi(false)
            .fmt_fields(DefaultFields::new())
            .event_format(Journal(format))
            .init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}
