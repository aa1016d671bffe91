//! `cardcore`: the service binary. See `cardcore --help` and docs/operations.md.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cardcore_server::cli::{Cli, Command, ServeArgs};
use cardcore_server::{logging, Server, Service};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Demo(_) => Err(anyhow::anyhow!(
            "`cardcore demo` is not built into this binary yet"
        )),
        Command::Sim(_) => Err(anyhow::anyhow!(
            "`cardcore sim` is not built into this binary yet"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

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
