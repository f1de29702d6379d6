//! Test databases: SQLite always; PostgreSQL and MySQL/MariaDB when `TEST_POSTGRES_URL` and
//! `TEST_MYSQL_URL` name a server. Each [`TestDb`] is private to one test (a fresh SQLite
//! file, a fresh PostgreSQL schema, a fresh MySQL database) and is dropped afterwards.
//!
//! Without a URL a backend is skipped with a line on stderr saying so; with
//! `REQUIRE_ALL_DATABASES=1` a missing or unreachable server fails the test instead.
//! `TEST_BACKEND=postgres|mysql` makes every [`crate::TestApp`] use that server, so the endpoint
//! tests run on it too.

use std::time::Duration;

use tempfile::TempDir;

/// A database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

impl Backend {
    /// Every backend.
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::Mysql];

    /// The backend `TEST_BACKEND` names for the endpoint tests (`postgres`, `mysql`), or `None`
    /// for SQLite. CI runs the endpoint tests once per backend this way.
    pub fn from_env() -> Option<Backend> {
        match std::env::var("TEST_BACKEND").ok()?.as_str() {
            "postgres" | "postgresql" => Some(Backend::Postgres),
            "mysql" | "mariadb" => Some(Backend::Mysql),
            _ => None,
        }
    }

    fn env(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("TEST_POSTGRES_URL"),
            Backend::Mysql => Some("TEST_MYSQL_URL"),
        }
    }
}

/// A database private to one test.
#[derive(Debug)]
pub struct TestDb {
    /// The backend.
    pub backend: Backend,
    /// The URL the engine connects to.
    pub url: String,
    drop_sql: Option<(String, String)>,
    _dir: Option<TempDir>,
}

fn required() -> bool {
    std::env::var("REQUIRE_ALL_DATABASES").is_ok_and(|v| v == "1" || v == "true")
}

fn unique_name() -> String {
    format!(
        "pc_{}",
        portcullis::crypto::random_string(12, b"abcdefghijklmnopqrstuvwxyz0123456789")
    )
}

/// Replaces the path (database name) of `url` with `db`, keeping its query.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn admin_exec(backend: Backend, url: &str, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection as _;
    match backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            // Never wait forever on a lock a stray connection holds.
            sqlx::query("set lock_timeout = '10s'")
                .execute(&mut c)
                .await?;
            sqlx::query(sql).execute(&mut c).await?;
            c.close().await
        }
        Backend::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(url).await?;
            sqlx::query("set session lock_wait_timeout = 10")
                .execute(&mut c)
                .await?;
            sqlx::query(sql).execute(&mut c).await?;
            c.close().await
        }
        Backend::Sqlite => Ok(()),
    }
}

impl TestDb {
    /// A fresh database on `backend`, or `None` (with a note on stderr) when the backend is not
    /// configured. Panics when it is configured (or required) but cannot be reached.
    pub async fn new(backend: Backend) -> Option<Self> {
        let Some(var) = backend.env() else {
            let dir = TempDir::new().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            return Some(Self {
                backend,
                url,
                drop_sql: None,
                _dir: Some(dir),
            });
        };
        let Ok(admin) = std::env::var(var) else {
            assert!(!required(), "REQUIRE_ALL_DATABASES is set but {var} is not");
            eprintln!("skipped {backend:?}: {var} is not set");
            return None;
        };
        let name = unique_name();
        let (create, drop, url) = match backend {
            Backend::Postgres => {
                let sep = if admin.contains('?') { '&' } else { '?' };
                (
                    format!("create schema {name}"),
                    format!("drop schema if exists {name} cascade"),
                    format!("{admin}{sep}options=-c%20search_path%3D{name}"),
                )
            }
            _ => (
                format!("create database {name}"),
                format!("drop database if exists {name}"),
                with_database(&admin, &name),
            ),
        };
        let created = tokio::time::timeout(
            Duration::from_secs(10),
            admin_exec(backend, &admin, &create),
        )
        .await;
        match created {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!(
                "{var}: cannot create a test database at {}: {e}",
                portcullis::storage::url_host(&admin)
            ),
            Err(_) => panic!(
                "{var}: {} did not answer within 10 s",
                portcullis::storage::url_host(&admin)
            ),
        }
        Some(Self {
            backend,
            url,
            drop_sql: Some((admin, drop)),
            _dir: None,
        })
    }

    /// Fresh databases on every configured backend.
    pub async fn all() -> Vec<Self> {
        let mut out = Vec::new();
        for b in Backend::ALL {
            out.extend(Self::new(b).await);
        }
        out
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, sql)) = self.drop_sql.take() else {
            return;
        };
        let backend = self.backend;
        // Drop runs inside the test's runtime, which must keep running (a rollback may still be
        // in flight on it): clean up on a detached thread with its own runtime. Databases a
        // test process leaves behind when it exits first are dropped by the next CI run.
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(admin_exec(backend, &admin, &sql));
            }
        });
    }
}
