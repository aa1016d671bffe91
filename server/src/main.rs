//! `cardcore`: the service binary. See `cardcore --help` and docs/operations.md.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cardcore_server::cli::{Cli, Command, DemoArgs, ServeArgs, SimCommand};
use cardcore_server::config::{Config, Role, Secret, TokenConfig};
use cardcore_server::{logging, sim, Server, Service};
use cardcore_sim::load::stats::REPORT_INTERVAL_DEFAULT;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args).map(|()| true),
        Command::Demo(args) => demo(args),
        Command::Sim(SimCommand::Replay(args)) => sim::replay(args),
        Command::Sim(SimCommand::Load(args)) => sim::load(args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        // The command ran and reported what failed (unmet expectations, a reconciliation
        // difference).
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The operator token of the demo's own sandbox server.
const DEMO_ADMIN_TOKEN: &str = "sandbox";

/// `cardcore demo`: a sandbox service in this process on loopback ports, about 20 seconds of
/// generated traffic over real TCP, and the report with its reconciliation verdict.
fn demo(args: DemoArgs) -> anyhow::Result<bool> {
    logging::init("warn").map_err(anyhow::Error::msg)?;
    let (data_dir, _temp) = sim::demo_dir(args.data_dir.clone())?;
    let config = Config {
        data_dir: data_dir.clone(),
        iso_listen: "127.0.0.1:0".to_owned(),
        http_listen: "127.0.0.1:0".to_owned(),
        sandbox: true,
        log_filter: "warn".to_owned(),
        tokens: vec![TokenConfig {
            token: Secret::new(DEMO_ADMIN_TOKEN),
            role: Role::Operator,
        }],
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cardcore-io")
        .build()
        .context("start the runtime")?;
    runtime.block_on(async move {
        let service = tokio::task::spawn_blocking(move || Service::open(config))
            .await
            .context("open the service")??;
        let router = cardcore_server::http::router(Arc::clone(&service));
        let server = Server::start(Arc::clone(&service), router).await?;
        let (iso, http) = (
            server.iso_addr().to_string(),
            server.http_addr().to_string(),
        );
        println!(
            "cardcore demo: service on ISO 8583 {iso}, HTTP {http}, data in {}",
            data_dir.display()
        );
        let outcome = tokio::task::spawn_blocking(move || run_demo_load(&args, &iso, &http))
            .await
            .context("the load run")?;
        server.shutdown().await?;
        service.close().await?;
        outcome
    })
}

fn run_demo_load(args: &DemoArgs, iso: &str, http: &str) -> anyhow::Result<bool> {
    let load = cardcore_server::cli::LoadArgs {
        target: cardcore_server::cli::TargetArgs {
            target: format!("tcp://{iso}"),
            admin: Some(format!("http://{http}")),
            admin_token: Some(DEMO_ADMIN_TOKEN.to_owned()),
        },
        cards: args.cards,
        seed: args.seed,
        duration: Some(args.duration.clone()),
        messages: None,
        rate: None,
        concurrency: Some(DEMO_CONCURRENCY),
        connections: DEMO_CONNECTIONS,
        setup_concurrency: cardcore_sim::load::population::SETUP_CONCURRENCY_DEFAULT as u64,
        report_dir: args.report_dir.clone(),
        report_interval_s: REPORT_INTERVAL_DEFAULT.as_secs(),
    };
    sim::load(load)
}

/// Requests the demo keeps in flight, over this many connections.
const DEMO_CONCURRENCY: u64 = 64;
const DEMO_CONNECTIONS: u64 = 4;

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    logging::init(&config.log_filter).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cardcore-io")
        .build()
        .context("start the runtime")?;
    runtime.block_on(async {
        let service = tokio::task::spawn_blocking(move || Service::open(config))
            .await
            .context("open the service")??;
        let router = cardcore_server::http::router(Arc::clone(&service));
        let server = Server::start(Arc::clone(&service), router).await?;
        wait_for_signal().await?;
        tracing::info!("shutting down: no new connections, answering what is in flight");
        server.shutdown().await?;
        service.close().await?;
        tracing::info!("stopped; the journal is flushed");
        Ok(())
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("listen for SIGINT"),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("listen for Ctrl-C")
    }
}
