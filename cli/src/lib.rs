//! The Portcullis server and its tools, as a library: the `portcullis` binary of this crate is
//! [`main`], and so can be a server binary of your own.
//!
//! Subcommands:
//!
//! - `serve`: the auth API under `/api/auth` and a small page at `/` to try it.
//! - `migrate`: creates missing tables, columns and indexes (`--dry-run` prints the plan).
//! - `generate`: prints (or writes, `--output FILE`) the SQL that creates the schema of the
//!   configured plugins, for `--dialect sqlite`, `postgres` or `mysql`.
//! - `secret`: prints a fresh random secret.
//!
//! # Your own server binary
//!
//! The plugins named in `plugins = [...]` of the configuration file are looked up among the
//! [`portcullis::PluginFactory`]s registered (through `inventory`) by the crates linked into the
//! binary. The first-party ones (`email-password`, `two-factor`) always are; to serve a
//! third-party plugin too, make a binary crate that depends on `portcullis-cli` and the plugin's
//! crate, and whose `main` is this crate's:
//!
//! ```toml
//! [dependencies]
//! portcullis-cli = "0.1"
//! my-portcullis-plugin = "0.1"   # any crate that registers a `portcullis::PluginFactory`
//! ```
//!
//! ```ignore
//! // src/main.rs
//! use my_portcullis_plugin as _; // links the crate, so its factory is registered
//!
//! fn main() -> std::process::ExitCode {
//!     portcullis_cli::main()
//! }
//! ```
//!
//! The binary has every subcommand and flag of `portcullis`, and `plugins = ["my-plugin"]` in
//! its configuration file finds the plugin by its registered name. The `use ... as _` line is
//! needed: a dependency the program never names is not linked at all, and its registration
//! with it. `examples/server-binary` is such a binary, tested with the audit-log plugin
//! enabled from its configuration file only.

mod config;
mod email;
mod page;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

// The command line. (Plain comments: clap would show doc comments here in `--help`.)
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

// The subcommands; each one's doc comment is its help.
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

/// Runs the command line of the process (`std::env::args_os`): `serve`, `migrate`, `generate`
/// or `secret`, with their flags, environment variables and configuration file. Returns the
/// exit status: success, 1 when the command failed (the reason is printed on standard error),
/// 2 for a usage error; `--help` and `--version` print and succeed.
///
/// See the [crate documentation](crate) for a server binary of your own built on it.
pub fn main() -> ExitCode {
    run_from(std::env::args_os())
}

/// Like [`main`], with the command line given: `args` starts with the binary's name, as clap's
/// `Parser::parse_from` takes it (`["portcullis", "migrate", "--dry-run"]`).
pub fn run_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    link_first_party_plugins();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to standard output and succeed; usage errors exit with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // `try_init`: an application that set up its own subscriber keeps it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        // Standard output carries data (SQL, a secret); logs must never mix into it.
        .with_writer(std::io::stderr)
        .try_init();
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

/// Keeps the first-party plugin crates linked into every binary built on this library, so their
/// `inventory` registrations (`email-password`, `two-factor`) are found by name from the
/// configuration file. A plugin registers its factory with a static the rest of the program
/// never names; a crate nothing refers to is not linked at all, and its registration would be
/// missing from `plugin_factories()` in a binary that calls only [`main`]. This reference from
/// the entry point of the library makes sure both crates are linked, whatever the binary.
fn link_first_party_plugins() {
    let _ = std::hint::black_box(portcullis_email_password::EmailPassword::default());
    let _ = std::hint::black_box(portcullis_two_factor::TwoFactor::default());
    let _ = std::hint::black_box(portcullis_compromised_password::CompromisedPassword::default());
    let _ = std::hint::black_box(portcullis_bearer::Bearer::default());
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

/// `migrate`: creates what the schema lacks (or, with `dry_run`, prints the plan).
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

/// `serve`: migrates, then serves the API and the page until SIGINT or SIGTERM.
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

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_party_plugins_are_registered() {
        link_first_party_plugins();
        let names: Vec<&str> = portcullis::plugin::plugin_factories()
            .map(|f| f.name)
            .collect();
        for name in ["email-password", "two-factor"] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
    }

    #[test]
    fn run_from_reports_usage_errors_and_help() {
        assert_eq!(run_from(["portcullis", "--help"]), ExitCode::SUCCESS);
        assert_eq!(
            run_from(["portcullis", "no-such-command"]),
            ExitCode::from(2)
        );
    }
}
