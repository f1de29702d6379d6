//! Databases private to one test: a fresh SQLite file always; a fresh PostgreSQL schema or
//! MySQL/MariaDB database when `TEST_POSTGRES_URL` or `TEST_MYSQL_URL` names a server (an
//! account that may create them). Each is dropped when its [`TestDatabase`] is.
//!
//! Without a URL a backend is skipped with a line on stderr; with `REQUIRE_ALL_DATABASES=1` a
//! missing or unreachable server fails the test instead, so CI cannot pass by skipping.

use std::time::Duration;

use tempfile::TempDir;

/// A database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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

    /// The backend `TEST_BACKEND` names (`postgres`, `mysql`), or `None` (SQLite): a suite
    /// written against one backend runs on each this way.
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

/// A database private to one test, dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    backend: Backend,
    url: String,
    drop_sql: Option<(String, String)>,
    _dir: Option<TempDir>,
}

fn required() -> bool {
    std::env::var("REQUIRE_ALL_DATABASES").is_ok_and(|v| v == "1" || v == "true")
}

fn unique_name() -> String {
    format!(
        "pc_{}",
        crate::crypto::random_string(12, b"abcdefghijklmnopqrstuvwxyz0123456789")
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
    #[allow(unused_imports)]
    use sqlx::Connection as _;
    match backend {
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            // Never wait forever on a lock a stray connection holds.
            sqlx::query("set lock_timeout = '10s'")
                .execute(&mut c)
                .await?;
            sqlx::query(sql).execute(&mut c).await?;
            c.close().await
        }
        #[cfg(feature = "mysql")]
        Backend::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(url).await?;
            sqlx::query("set session lock_wait_timeout = 10")
                .execute(&mut c)
                .await?;
            sqlx::query(sql).execute(&mut c).await?;
            c.close().await
        }
        Backend::Sqlite => Ok(()),
        #[allow(unreachable_patterns)]
        _ => {
            let _ = (url, sql);
            Err(sqlx::Error::Configuration(
                format!("this build has no {backend:?} driver").into(),
            ))
        }
    }
}

impl TestDatabase {
    /// A fresh database on `backend`, or `None` (with a note on stderr) when the backend is
    /// not configured.
    ///
    /// # Panics
    ///
    /// When the backend is configured (or required) but cannot be reached or will not create
    /// a database: the test's environment is broken, and saying so beats skipping.
    pub async fn new(backend: Backend) -> Option<Self> {
        let Some(var) = backend.env() else {
            let dir = match TempDir::new() {
                Ok(dir) => dir,
                Err(e) => panic!("cannot make a temporary directory for SQLite: {e}"),
            };
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
        let host = crate::storage::url_host(&admin);
        match created {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{var}: cannot create a test database at {host}: {e}"),
            Err(_) => panic!("{var}: {host} did not answer within 10 s"),
        }
        Some(Self {
            backend,
            url,
            drop_sql: Some((admin, drop)),
            _dir: None,
        })
    }

    /// A fresh database on every configured backend, SQLite first.
    pub async fn all() -> Vec<Self> {
        let mut out = Vec::new();
        for b in Backend::ALL {
            out.extend(Self::new(b).await);
        }
        out
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL an engine connects to (`.database(db.url())`).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, sql)) = self.drop_sql.take() else {
            return;
        };
        let backend = self.backend;
        // Drop runs inside the test's runtime, which must keep running (a rollback may still be
        // in flight on it): clean up on a detached thread with its own runtime. A database a
        // test process leaves behind when it exits first is named `pc_*`, for CI to sweep.
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

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/test?ssl-mode=disabled", "pc_x"),
            "mysql://root@127.0.0.1:3306/pc_x?ssl-mode=disabled"
        );
        assert_eq!(with_database("mysql://h", "pc_x"), "mysql://h/pc_x");
    }
}
