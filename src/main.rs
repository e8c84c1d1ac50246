//! The `bwacct` binary: parses the command line, sets up logging, loads the configuration and
//! hands over to the library. The only place where errors become exit codes.

use anyhow::Context;
use bwacct::cli::{Cli, Command, ImportCdfArgs, ReportArgs};
use bwacct::config::Config;
use bwacct::period::PeriodArgs;
use bwacct::{app, docs, report};
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Under systemd (JOURNAL_STREAM set) the journal stamps each line and reads its priority.
    bwacct::logging::init(&cli.log, std::env::var_os("JOURNAL_STREAM").is_some());
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bwacct: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    // What needs no configuration.
    match &cli.command {
        Command::Completions(args) => {
            docs::completions(args.shell, &mut std::io::stdout().lock());
            return Ok(());
        }
        Command::Manpage(args) => {
            match &args.out {
                Some(dir) => {
                    for f in docs::manpages(dir)
                        .with_context(|| format!("cannot write pages into {}", dir.display()))?
                    {
                        println!("{}", f.display());
                    }
                }
                None => docs::manpage(&mut std::io::stdout().lock())?,
            }
            return Ok(());
        }
        Command::Passwd => {
            println!("{}", app::passwd()?);
            return Ok(());
        }
        _ => {}
    }
    let cfg = Config::load(&cli.config)?;
    match cli.command {
        Command::CheckConfig => {
            print!("{}", cfg.describe());
            let problems = bwacct::preflight::check_config(&cfg);
            for p in &problems {
                eprintln!("bwacct: {}: {p}", cfg.path.display());
            }
            for w in app::central_warnings(&cfg) {
                eprintln!("bwacct: {}: warning: {w}", cfg.path.display());
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
        Command::ImportCdf(args) => import_command(&cfg, args),
        Command::Prune => {
            println!("{}", app::prune(&cfg, chrono::Utc::now().timestamp())?);
            Ok(())
        }
        Command::Completions(_) | Command::Manpage(_) | Command::Passwd => Ok(()),
    }
}

fn import_command(cfg: &Config, args: ImportCdfArgs) -> anyhow::Result<()> {
    let opts = app::ImportOptions {
        interval: args.interval,
        sensor: args.sensor,
        skip_bad_lines: args.skip_bad_lines,
        force: args.force,
    };
    println!("{}", app::import_cdf(cfg, &args.files, &opts)?);
    Ok(())
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
    let zone = match &args.timezone {
        Some(name) => bwacct::config::parse_zone(name).map_err(anyhow::Error::msg)?,
        None => cfg.report.timezone,
    };
    let period = PeriodArgs {
        day: args.day,
        month: args.month,
        from: args.from,
        to: args.to,
    }
    .resolve_in(chrono::Utc::now(), zone)?;
    let store = bwacct::store::central::open_reader(&cfg.storage)?;
    let store = &*store;
    let customers = bwacct::customer::Customers::new(cfg.customers.clone());
    let mut rep = report::build(
        store,
        period,
        args.by,
        args.sensor.clone(),
        args.top,
        &customers,
    )?;
    report::annotate_states(&mut rep, store)?;
    if let Some(g) = store.guard().filter(|_| cfg.guard.is_some()) {
        report::annotate_spoofed(&mut rep, g)?;
    }
    if args.format == report::Format::Html {
        rep.add_series(store, args.sensor)?;
        rep.customers =
            app::customers::report_customers(cfg, store, period, chrono::Utc::now().timestamp())?;
    }
    for note in &rep.notes {
        tracing::warn!("{note}");
    }
    if args.names {
        if args.by == report::By::Customer {
            anyhow::bail!("--names names addresses: use it with --by ip");
        }
        let hosts: Vec<_> = rep.rows.iter().map(|r| r.host).collect();
        let settings = cfg.names.clone().unwrap_or_default();
        rep.names = Some(bwacct::names::resolve_blocking(
            &settings,
            std::sync::Arc::new(customers),
            &hosts,
        )?);
    }
    match args.out {
        Some(path) => {
            let path = std::path::PathBuf::from(
                path.to_string_lossy()
                    .replace("{date}", &period.first_day().to_string()),
            );
            // a file is written beside and renamed: a reader never sees half a report
            let special = std::fs::metadata(&path).is_ok_and(|m| !m.is_file());
            let tmp = if special {
                path.clone()
            } else {
                path.with_extension("partial")
            };
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            let mut f = std::io::BufWriter::new(f);
            report::render(&rep, args.format, &mut f)?;
            f.into_inner()
                .map_err(std::io::IntoInnerError::into_error)?
                .sync_all()?;
            if !special {
                std::fs::rename(&tmp, &path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        None => {
            // stdout flushes every line: buffer it
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            report::render(&rep, args.format, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}
