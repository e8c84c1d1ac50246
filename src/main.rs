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
            Ok(())
        }
        Command::Replay(args) => {
            let summary = app::replay(&cfg, &args.files)?;
            println!("{summary}");
            Ok(())
        }
        Command::Run => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let summary = rt.block_on(app::run(cfg, shutdown_signal()))?;
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
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(app::serve(cfg, listen, shutdown_signal()))?;
            Ok(())
        }
    }
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
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
    if cfg.guard.is_some() {
        report::annotate_spoofed(&mut rep, &store)?;
    }
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
