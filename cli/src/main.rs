//! `portcullis`: the stand-alone Portcullis server and its tools.
//!
//! - `portcullis serve`: the auth API under `/api/auth` and a small page at `/` to try it.
//! - `portcullis migrate`: creates missing tables, columns and indexes.
//! - `portcullis secret`: prints a fresh random secret.

mod config;
mod page;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "A plugin-driven auth server that speaks the Better Auth protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server: the API under the base path and a page at `/` to try it.
    Serve {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Creates missing tables, columns and indexes (never drops anything).
    Migrate {
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Prints a fresh random secret for PORTCULLIS_SECRET.
    Secret,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { overrides } => serve(Config::load(overrides)?).await,
            Command::Migrate { overrides } => migrate(Config::load(overrides)?).await,
            Command::Secret => {
                println!("{}", portcullis::crypto::Secret::generate().expose());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why the command failed, in words for the operator.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Engine(#[from] portcullis::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

async fn migrate(config: Config) -> Result<(), CliError> {
    let auth = config.build_auth().await?;
    let ran = auth.migrate().await?;
    if ran.is_empty() {
        println!("database is up to date");
    }
    for stmt in ran {
        println!("{stmt};");
    }
    Ok(())
}

async fn serve(config: Config) -> Result<(), CliError> {
    let auth = config.build_auth().await?;
    let ran = auth.migrate().await?;
    if !ran.is_empty() {
        tracing::info!(
            statements = ran.len(),
            "database schema created or extended"
        );
    }
    let addr = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| CliError::Listen {
            addr: addr.clone(),
            source,
        })?;
    let base_path = auth.options().base_path.clone();
    tracing::info!(
        "Portcullis listening on http://{addr} (API under {base_path}, try it at http://{addr}/)"
    );
    let handler = move |req| page::route(auth.clone(), req);
    portcullis::adapters::hyper::serve(listener, handler, shutdown_signal())
        .await
        .map_err(|source| CliError::Io {
            context: "server".into(),
            source,
        })?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Where a file "beside the database" goes: the SQLite file's directory, else the current one.
fn beside_database(database: &str, file: &str) -> PathBuf {
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .filter(|p| !p.contains(":memory:"))
        .map(|p| p.split('?').next().unwrap_or(p));
    match path.and_then(|p| std::path::Path::new(p).parent()) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(file),
        _ => PathBuf::from(file),
    }
}
