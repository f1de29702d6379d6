//! `portcullis`: the stand-alone Portcullis server and its tools.
//!
//! - `portcullis serve`: the auth API under `/api/auth` and a small page at `/` to try it.
//! - `portcullis migrate`: creates missing tables, columns and indexes.
//! - `portcullis secret`: prints a fresh random secret.

mod config;
mod email;
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
        /// Print what would run, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Prints the SQL that creates the schema of the configured plugins.
    Generate {
        /// sqlite, postgres or mysql.
        #[arg(long)]
        dialect: String,
        /// Write to this file (atomically) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
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
        // Standard output carries data (SQL, a secret); logs must never mix into it.
        .with_writer(std::io::stderr)
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
            Command::Migrate { dry_run, overrides } => {
                migrate(Config::load(overrides)?, dry_run).await
            }
            Command::Generate {
                dialect,
                output,
                overrides,
            } => generate(&Config::load(overrides)?, &dialect, output.as_deref()),
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

async fn migrate(config: Config, dry_run: bool) -> Result<(), CliError> {
    let auth = config.build_auth_for_migrations().await?;
    let statements = if dry_run {
        auth.migration_plan().await?
    } else {
        auth.migrate().await?
    };
    let host = portcullis::storage::url_host(config.database());
    match (statements.is_empty(), dry_run) {
        (true, _) => eprintln!("{host}: the database is up to date"),
        (false, true) => eprintln!(
            "{host}: would run {} statement(s) (dry run; nothing changed):",
            statements.len()
        ),
        (false, false) => eprintln!("{host}: ran {} statement(s):", statements.len()),
    }
    for stmt in statements {
        println!("{stmt};");
    }
    Ok(())
}

/// Prints (or writes) the DDL for `dialect`. A file is written through a temporary file and
/// renamed into place, so a failure never leaves it truncated.
fn generate(
    config: &Config,
    dialect: &str,
    output: Option<&std::path::Path>,
) -> Result<(), CliError> {
    let d = portcullis::storage::Dialect::parse(dialect).ok_or_else(|| {
        CliError::Config(format!(
            "unknown dialect `{dialect}`; use sqlite, postgres or mysql"
        ))
    })?;
    let sql: String = config
        .schema()?
        .ddl(d)
        .iter()
        .map(|s| format!("{s};\n"))
        .collect();
    let Some(path) = output else {
        print!("{sql}");
        return Ok(());
    };
    let io = |context: String| move |source| CliError::Io { context, source };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("schema"),
        std::process::id()
    ));
    std::fs::write(&tmp, sql).map_err(io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        CliError::Io {
            context: format!("cannot write {}", path.display()),
            source,
        }
    })?;
    eprintln!("wrote {}", path.display());
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
