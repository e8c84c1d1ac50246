//! The `bwacct` binary: parses the command line, sets up logging, loads the configuration and
//! hands over to the library. The only place where errors become exit codes.

use anyhow::Context;
use bwacct::cli::{Cli, Command, ReportArgs};
use bwacct::config::Config;
use bwacct::period::PeriodArgs;
use bwacct::store::sqlite::SqliteStore;
use bwacct::{app, report};
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bwacct: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let cfg = Config::load(&cli.config)?;
    match cli.command {
        Command::CheckConfig => {
            print!("{}", cfg.describe());
            let problems = bwacct::preflight::check_config(&cfg);
            for p in &problems {
                eprintln!("bwacct: {}: {p}", cfg.path.display());
            }
            if problems.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("{} problem(s) would stop `run`", problems.len())
            }
        }
        Command::Replay(args) => {
            let summary = app::replay(&cfg, &args.files)?;
            println!("{summary}");
            Ok(())
        }
        Command::Run => {
            // One thread until `run` has dropped root: capabilities are per thread, and every
            // thread must lose them (see `privilege`).
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let summary = rt.block_on(async {
                let shutdown = shutdown_signal().context("cannot listen for SIGTERM")?;
                anyhow::Ok(app::run(cfg, shutdown).await?)
            })?;
            println!("{summary}");
            Ok(())
        }
        Command::Report(args) => report_command(&cfg, args),
        Command::Quota(args) => Ok(app::customers::quota(
            &cfg,
            &args,
            &mut std::io::stdout().lock(),
        )?),
        Command::Events(args) => Ok(app::customers::events(
            &cfg,
            &args,
            &mut std::io::stdout().lock(),
        )?),
        Command::Shape(args) => Ok(app::customers::shape(
            &cfg,
            &args.action,
            &mut std::io::stdout().lock(),
        )?),
        Command::Graph(args) => {
            let out = app::graph(&cfg, &args, chrono::Utc::now())?;
            println!("{out}");
            Ok(())
        }
        Command::Serve(args) => {
            let listen = args
                .listen
                .or(cfg.web.as_ref().map(|w| w.listen))
                .unwrap_or_else(|| bwacct::config::Web::default().listen);
            // One thread until `serve` has dropped root (as `run`).
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(async {
                let shutdown = shutdown_signal().context("cannot listen for SIGTERM")?;
                anyhow::Ok(app::serve(cfg, listen, shutdown).await?)
            })?;
            Ok(())
        }
    }
}

/// Listens for SIGTERM and SIGINT from now on (before `run` opens anything, so that an early
/// signal stops it cleanly rather than killing it); the future completes on either.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn report_command(cfg: &Config, args: ReportArgs) -> anyhow::Result<()> {
    let period = PeriodArgs {
        day: args.day,
        month: args.month,
        from: args.from,
        to: args.to,
    }
    .resolve(chrono::Utc::now())?;
    let store = SqliteStore::open_read_only(&cfg.storage.sqlite)?;
    let customers = bwacct::customer::Customers::new(cfg.customers.clone());
    let mut rep = report::build(&store, period, args.by, args.sensor, args.top, &customers)?;
    report::annotate_states(&mut rep, &store)?;
    match args.out {
        Some(path) => {
            let mut f = std::fs::File::create(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            report::render(&rep, args.format, &mut f)?;
            f.flush()?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            report::render(&rep, args.format, &mut lock)?;
        }
    }
    Ok(())
}
