//! Configuration of the stand-alone server: a TOML file, overridden by flags and environment
//! variables, then defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis::Auth;
use serde::Deserialize;

use crate::CliError;

/// Flags (and their environment variables) shared by `serve` and `migrate`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct Overrides {
    /// TOML configuration file.
    #[arg(long, short, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "PORTCULLIS_HOST")]
    host: Option<String>,
    /// Port to listen on [default: 3000].
    #[arg(long, short, env = "PORTCULLIS_PORT")]
    port: Option<u16>,
    /// Database URL [default: sqlite://portcullis.db].
    #[arg(long, env = "PORTCULLIS_DATABASE_URL")]
    database: Option<String>,
    /// Public origin of the server [default: http://HOST:PORT].
    #[arg(long, env = "PORTCULLIS_URL")]
    base_url: Option<String>,
    /// Extra trusted origins, comma-separated.
    #[arg(long, env = "PORTCULLIS_TRUSTED_ORIGINS", value_delimiter = ',')]
    trusted_origins: Vec<String>,
    /// Take the client address from this header (e.g. x-forwarded-for behind a proxy).
    #[arg(
        long = "ip-header",
        env = "PORTCULLIS_IP_HEADERS",
        value_delimiter = ','
    )]
    ip_headers: Vec<String>,
    /// Turn the rate limiter on or off [default: on].
    #[arg(long, env = "PORTCULLIS_RATE_LIMIT")]
    rate_limit: Option<bool>,
    /// The global rate-limit window in seconds [default: 10]; sensitive paths keep their rules.
    #[arg(long, env = "PORTCULLIS_RATE_LIMIT_WINDOW")]
    rate_limit_window: Option<u64>,
    /// Requests per global window [default: 100].
    #[arg(long, env = "PORTCULLIS_RATE_LIMIT_MAX")]
    rate_limit_max: Option<u32>,
    /// Where the generated secret is kept when PORTCULLIS_SECRET is not set
    /// [default: portcullis.secret beside the database].
    #[arg(long, env = "PORTCULLIS_SECRET_FILE")]
    secret_file: Option<PathBuf>,
    #[command(flatten)]
    email: crate::email::EmailOverrides,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    host: Option<String>,
    port: Option<u16>,
    database: Option<String>,
    base_url: Option<String>,
    base_path: Option<String>,
    #[serde(default)]
    trusted_origins: Vec<String>,
    #[serde(default)]
    ip_address_headers: Vec<String>,
    plugins: Option<Vec<String>>,
    #[serde(default)]
    rate_limit: RateLimitFile,
    #[serde(default)]
    session: SessionFile,
    /// Per-plugin options: `[plugin.email-password]`.
    #[serde(default)]
    plugin: BTreeMap<String, toml::Value>,
    secret_file: Option<PathBuf>,
    /// Versioned secrets for rotation, the current one first:
    /// `secrets = [{ version = 2, value_env = "SECRET_V2" }, { version = 1, value_env = "SECRET_V1" }]`.
    #[serde(default)]
    secrets: Vec<SecretEntry>,
    #[serde(default)]
    schema: SchemaFile,
    #[serde(default)]
    email: crate::email::EmailFile,
    #[serde(default)]
    email_verification: crate::email::VerificationFile,
    #[serde(default)]
    user: UserFile,
    #[serde(default)]
    security: SecurityFile,
}

/// One versioned secret: its text in the file (`value`) or, better, in an environment
/// variable (`value_env`).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct SecretEntry {
    version: u32,
    value: Option<String>,
    value_env: Option<String>,
}

impl SecretEntry {
    fn resolve(&self) -> Result<(u32, String), CliError> {
        let value = match (&self.value, &self.value_env) {
            (Some(v), None) => v.clone(),
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                CliError::Config(format!(
                    "secrets: version {} reads {var}, which is not set",
                    self.version
                ))
            })?,
            _ => {
                return Err(CliError::Config(format!(
                    "secrets: version {} needs exactly one of value and value_env",
                    self.version
                )))
            }
        };
        Ok((self.version, value))
    }
}

/// `PORTCULLIS_SECRETS` (or Better Auth's `BETTER_AUTH_SECRETS`): `version:secret` pairs,
/// comma-separated, the current one first.
fn secrets_from_env() -> Result<Option<Vec<(u32, String)>>, CliError> {
    let Some(text) = ["PORTCULLIS_SECRETS", "BETTER_AUTH_SECRETS"]
        .into_iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
    else {
        return Ok(None);
    };
    text.split(',')
        .map(|pair| {
            let (version, value) = pair.trim().split_once(':').ok_or_else(|| {
                CliError::Config("PORTCULLIS_SECRETS takes version:secret pairs".into())
            })?;
            let version = version.trim().parse().map_err(|_| {
                CliError::Config("PORTCULLIS_SECRETS: a version is not a number".into())
            })?;
            Ok((version, value.trim().to_owned()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `[security]`: the switches that bring back one of Better Auth's weaker behaviours, for an
/// application that truly needs it (SECURITY.md says what each costs).
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct SecurityFile {
    #[serde(default)]
    keep_previous_session_on_sign_in: bool,
    #[serde(default)]
    keep_session_on_password_change: bool,
}

impl SecurityFile {
    fn apply(&self, o: &mut portcullis::Options) {
        o.security.keep_previous_session_on_sign_in = self.keep_previous_session_on_sign_in;
        o.security.keep_session_on_password_change = self.keep_session_on_password_change;
    }
}

/// `[user.change_email]` and `[user.delete_user]`: Better Auth's `user.changeEmail` and
/// `user.deleteUser`. Links are mailed with the configured sender and the templates
/// `[email.templates.change_email_confirmation]` and `[email.templates.delete_account]`.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct UserFile {
    #[serde(default)]
    change_email: ChangeEmailFile,
    #[serde(default)]
    delete_user: DeleteUserFile,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct ChangeEmailFile {
    #[serde(default)]
    enabled: bool,
    /// Mail a verified user's current address for consent before the new one is verified.
    #[serde(default)]
    send_change_email_confirmation: bool,
    #[serde(default)]
    update_email_without_verification: bool,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct DeleteUserFile {
    #[serde(default)]
    enabled: bool,
    /// Confirm each deletion by a mailed link.
    #[serde(default)]
    send_delete_account_verification: bool,
    /// Seconds (86400).
    delete_token_expires_in: Option<u64>,
}

impl UserFile {
    fn apply(&self, o: &mut portcullis::Options) {
        use portcullis::callbacks::Delivery;
        let c = &self.change_email;
        o.change_email.enabled = c.enabled;
        o.change_email.update_email_without_verification = c.update_email_without_verification;
        o.change_email.send_change_email_confirmation =
            c.send_change_email_confirmation.then_some(Delivery::Email);
        let d = &self.delete_user;
        o.delete_user.enabled = d.enabled;
        o.delete_user.send_delete_account_verification = d
            .send_delete_account_verification
            .then_some(Delivery::Email);
        if let Some(s) = d.delete_token_expires_in {
            o.delete_user.delete_token_expires_in = Duration::from_secs(s);
        }
    }
}

/// `[schema]`: names in an existing database, id generation, and added fields.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    #[serde(default)]
    use_plural: bool,
    /// `random` (default), `uuid` or `serial`.
    ids: Option<String>,
    /// `[schema.models.user] model_name = "users", fields = { email = "email_address" }`.
    #[serde(default)]
    models: BTreeMap<String, ModelFile>,
    /// `[schema.additional_fields.user.role] type = "string", required = false, ...`.
    #[serde(default)]
    additional_fields: BTreeMap<String, BTreeMap<String, FieldFile>>,
}

#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    model_name: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    unique: bool,
    #[serde(default = "yes")]
    input: bool,
    #[serde(default = "yes")]
    returned: bool,
    default: Option<toml::Value>,
    column: Option<String>,
}

fn yes() -> bool {
    true
}

impl SchemaFile {
    fn options(
        &self,
    ) -> Result<
        (
            portcullis::schema::SchemaOptions,
            portcullis::storage::IdStrategy,
        ),
        CliError,
    > {
        use portcullis::schema::{DefaultValue, Field, FieldType, ModelOptions, SchemaOptions};
        let ids = match self.ids.as_deref() {
            None | Some("random") => portcullis::storage::IdStrategy::Random,
            Some("uuid") => portcullis::storage::IdStrategy::Uuid,
            Some("serial") => portcullis::storage::IdStrategy::Serial,
            Some(other) => {
                return Err(CliError::Config(format!(
                    "[schema] ids = \"{other}\": use \"random\", \"uuid\" or \"serial\""
                )))
            }
        };
        let mut options = SchemaOptions::default();
        options.use_plural = self.use_plural;
        for (model, m) in &self.models {
            let mut renamed = ModelOptions::default();
            renamed.model_name = m.model_name.clone();
            renamed.fields = m.fields.clone();
            options.models.insert(model.clone(), renamed);
        }
        for (table, fields) in &self.additional_fields {
            let mut list = Vec::new();
            for (name, f) in fields {
                let bad = |what: String| {
                    CliError::Config(format!("[schema.additional_fields.{table}.{name}] {what}"))
                };
                let ty = match f.ty.as_str() {
                    "string" => FieldType::String,
                    "number" => FieldType::Number,
                    "boolean" => FieldType::Boolean,
                    "date" => FieldType::Date,
                    "json" => FieldType::Json,
                    other => {
                        return Err(bad(format!(
                            "type = \"{other}\": use string, number, boolean, date or json"
                        )))
                    }
                };
                let mut field = Field::new(name, ty);
                field.required = f.required;
                field.unique = f.unique;
                field.input = f.input;
                field.returned = f.returned;
                if let Some(c) = &f.column {
                    field.column = c.clone();
                }
                field.default = match &f.default {
                    None => None,
                    Some(toml::Value::Boolean(b)) => Some(DefaultValue::Bool(*b)),
                    Some(toml::Value::Integer(i)) => Some(DefaultValue::Int(*i)),
                    Some(toml::Value::String(s)) if s == "now" && ty == FieldType::Date => {
                        Some(DefaultValue::Now)
                    }
                    Some(toml::Value::String(s)) => Some(DefaultValue::Str(s.clone())),
                    Some(other) => return Err(bad(format!("unsupported default {other}"))),
                };
                list.push(field);
            }
            options.additional_fields.push((table.clone(), list));
        }
        Ok((options, ids))
    }
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    enabled: Option<bool>,
    window: Option<u64>,
    max: Option<u32>,
    /// `memory` (default) or `database` (shared by every server on the database).
    storage: Option<String>,
    /// `[rate_limit.account]`: the per-account sign-in throttle.
    #[serde(default)]
    account: AccountThrottleFile,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct AccountThrottleFile {
    enabled: Option<bool>,
    threshold: Option<u32>,
    /// Seconds.
    max_delay: Option<u64>,
    /// Seconds.
    forget_after: Option<u64>,
    /// Seconds.
    known_address_for: Option<u64>,
}

impl AccountThrottleFile {
    fn apply(&self, o: &mut portcullis::throttle::AccountThrottleOptions) {
        if let Some(e) = self.enabled {
            o.enabled = e;
        }
        if let Some(t) = self.threshold {
            o.threshold = t;
        }
        if let Some(s) = self.max_delay {
            o.max_delay = Duration::from_secs(s);
        }
        if let Some(s) = self.forget_after {
            o.forget_after = Duration::from_secs(s);
        }
        if let Some(s) = self.known_address_for {
            o.known_address_for = Duration::from_secs(s);
        }
    }
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct SessionFile {
    expires_in: Option<u64>,
    update_age: Option<u64>,
    fresh_age: Option<u64>,
    /// `[session.cookie_cache]`: Better Auth's `session.cookieCache`.
    #[serde(default)]
    cookie_cache: CookieCacheFile,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct CookieCacheFile {
    enabled: Option<bool>,
    /// Seconds [default: 300].
    max_age: Option<u64>,
    /// `compact` (default), `jwt` or `jwe`.
    strategy: Option<String>,
    /// Caches of another version are ignored [default: "1"].
    version: Option<String>,
    /// Seconds; ignored with a database, as in Better Auth (a warning is logged).
    refresh_cache: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) host: String,
    pub(crate) port: u16,
    database: String,
    base_url: String,
    base_path: Option<String>,
    trusted_origins: Vec<String>,
    ip_headers: Vec<String>,
    rate_limit: RateLimitFile,
    session: SessionFile,
    plugins: Vec<(String, serde_json::Value)>,
    secret_file: PathBuf,
    secrets: Vec<SecretEntry>,
    schema: SchemaFile,
    email: crate::email::EmailConfig,
    user: UserFile,
    security: SecurityFile,
}

impl Config {
    pub(crate) fn load(o: Overrides) -> Result<Self, CliError> {
        let file: FileConfig = match &o.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
                    context: format!("cannot read {}", path.display()),
                    source,
                })?;
                toml::from_str(&text)
                    .map_err(|e| CliError::Config(format!("{}: {e}", path.display())))?
            }
            None => FileConfig::default(),
        };
        let host = o.host.or(file.host).unwrap_or_else(|| "127.0.0.1".into());
        let port = o.port.or(file.port).unwrap_or(3000);
        let database = o
            .database
            .or(file.database)
            .unwrap_or_else(|| "sqlite://portcullis.db".into());
        let base_url = o
            .base_url
            .or_else(|| std::env::var("BETTER_AUTH_URL").ok())
            .or(file.base_url)
            .unwrap_or_else(|| format!("http://{host}:{port}"));
        let mut trusted_origins = file.trusted_origins;
        trusted_origins.extend(o.trusted_origins.into_iter().filter(|s| !s.is_empty()));
        let mut ip_headers = file.ip_address_headers;
        ip_headers.extend(o.ip_headers.into_iter().filter(|s| !s.is_empty()));
        let mut rate_limit = file.rate_limit;
        if o.rate_limit.is_some() {
            rate_limit.enabled = o.rate_limit;
        }
        if o.rate_limit_window.is_some() {
            rate_limit.window = o.rate_limit_window;
        }
        if o.rate_limit_max.is_some() {
            rate_limit.max = o.rate_limit_max;
        }
        let names = file
            .plugins
            .unwrap_or_else(|| vec!["email-password".into()]);
        let mut plugins = Vec::new();
        for name in names {
            let options = match file.plugin.get(&name) {
                Some(v) => serde_json::to_value(v)
                    .map_err(|e| CliError::Config(format!("[plugin.{name}]: {e}")))?,
                None => serde_json::Value::Null,
            };
            plugins.push((name, options));
        }
        if let Some(unused) = file
            .plugin
            .keys()
            .find(|k| !plugins.iter().any(|(n, _)| n == *k))
        {
            return Err(CliError::Config(format!(
                "[plugin.{unused}] configures a plugin that is not in `plugins`"
            )));
        }
        let secret_file = o
            .secret_file
            .or(file.secret_file)
            .unwrap_or_else(|| crate::beside_database(&database, "portcullis.secret"));
        let config_dir = o
            .config
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""))
            .to_owned();
        let email = crate::email::EmailConfig::new(
            file.email,
            file.email_verification,
            o.email,
            &config_dir,
        );
        Ok(Self {
            host,
            port,
            database,
            base_url,
            base_path: file.base_path,
            trusted_origins,
            ip_headers,
            rate_limit,
            session: file.session,
            plugins,
            secret_file,
            secrets: file.secrets,
            schema: file.schema,
            email,
            user: file.user,
            security: file.security,
        })
    }

    fn plain_secret() -> Option<String> {
        ["PORTCULLIS_SECRET", "BETTER_AUTH_SECRET"]
            .into_iter()
            .find_map(|var| std::env::var(var).ok().filter(|s| !s.is_empty()))
    }

    fn secret(&self) -> Result<String, CliError> {
        match Self::plain_secret() {
            Some(s) => Ok(s),
            None => load_or_create_secret(&self.secret_file),
        }
    }

    /// The versioned secrets (environment first, then the file), if any.
    fn versioned_secrets(&self) -> Result<Option<Vec<(u32, String)>>, CliError> {
        if let Some(from_env) = secrets_from_env()? {
            return Ok(Some(from_env));
        }
        if self.secrets.is_empty() {
            return Ok(None);
        }
        self.secrets
            .iter()
            .map(SecretEntry::resolve)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    pub(crate) async fn build_auth(&self) -> Result<Auth, CliError> {
        let mut builder = match self.versioned_secrets()? {
            // The plain secret, if there is one (the environment's, or the file's from
            // before), stays as the legacy secret: what it signed and encrypted still reads.
            Some(versions) => {
                let legacy = Self::plain_secret().or_else(|| {
                    std::fs::read_to_string(&self.secret_file)
                        .ok()
                        .map(|s| s.trim().to_owned())
                });
                let builder = self.builder()?.secrets(versions);
                match legacy {
                    Some(l) => {
                        tracing::warn!(
                            "the plain secret (PORTCULLIS_SECRET or the secret file) is kept as the legacy secret and still verifies what it signed; remove it once that has expired, at once if it leaked"
                        );
                        builder.secret(l)
                    }
                    None => builder,
                }
            }
            None => self.builder()?.secret(self.secret()?),
        };
        if let Some(sender) = self.email.sender()? {
            builder = builder.email_sender_arc(sender);
        }
        Ok(builder.build().await?)
    }

    /// An engine for schema work (`migrate`). The secret signs nothing there, so a throwaway
    /// one is used rather than reading the secret file or creating one as a side effect.
    pub(crate) async fn build_auth_for_migrations(&self) -> Result<Auth, CliError> {
        let secret = portcullis::crypto::Secret::generate();
        Ok(self.builder()?.secret(secret.expose()).build().await?)
    }

    /// The merged schema of the configured plugins, without touching a database.
    pub(crate) fn schema(&self) -> Result<portcullis::schema::Schema, CliError> {
        Ok(self.builder()?.schema()?)
    }

    /// The database URL, for messages.
    pub(crate) fn database(&self) -> &str {
        &self.database
    }

    fn builder(&self) -> Result<portcullis::AuthBuilder, CliError> {
        if let Some(other) = self
            .rate_limit
            .storage
            .as_deref()
            .filter(|s| *s != "memory" && *s != "database")
        {
            return Err(CliError::Config(format!(
                "[rate_limit] storage = \"{other}\": use \"memory\" or \"database\""
            )));
        }
        let (schema_options, ids) = self.schema.options()?;
        let cache = &self.session.cookie_cache;
        let strategy = cache
            .strategy
            .as_deref()
            .map(str::parse::<portcullis::CookieCacheStrategy>)
            .transpose()
            .map_err(|e| CliError::Config(format!("[session.cookie_cache] {e}")))?;
        let mut builder = Auth::builder()
            .base_url(&self.base_url)
            .database(&self.database)
            .options(|o| {
                o.trusted_origins
                    .extend(self.trusted_origins.iter().cloned());
                o.ip_address_headers = self.ip_headers.clone();
                if let Some(e) = self.rate_limit.enabled {
                    o.rate_limit.enabled = e;
                }
                if let Some(w) = self.rate_limit.window {
                    o.rate_limit.window = Duration::from_secs(w);
                }
                if let Some(m) = self.rate_limit.max {
                    o.rate_limit.max = m;
                }
                o.rate_limit.database_storage =
                    self.rate_limit.storage.as_deref() == Some("database");
                self.rate_limit.account.apply(&mut o.rate_limit.account);
                if let Some(s) = self.session.expires_in {
                    o.session.expires_in = Duration::from_secs(s);
                }
                if let Some(s) = self.session.update_age {
                    o.session.update_age = Duration::from_secs(s);
                }
                if let Some(s) = self.session.fresh_age {
                    o.session.fresh_age = Duration::from_secs(s);
                }
                let c = &mut o.session.cookie_cache;
                if let Some(e) = cache.enabled {
                    c.enabled = e;
                }
                if let Some(s) = cache.max_age {
                    c.max_age = Duration::from_secs(s);
                }
                if let Some(s) = strategy {
                    c.strategy = s;
                }
                if let Some(v) = &cache.version {
                    c.version = v.clone();
                }
                c.refresh_cache = cache.refresh_cache.map(Duration::from_secs);
                o.schema = schema_options;
                o.ids = ids;
                self.user.apply(o);
                self.security.apply(o);
            });
        let mut email = Ok(());
        builder = builder.options(|o| email = self.email.apply(o));
        email?;
        if let Some(p) = &self.base_path {
            builder = builder.base_path(p);
        }
        // The factories of every plugin crate linked into the binary; `link_first_party_plugins`
        // in lib.rs keeps the first-party ones linked.
        for (name, options) in &self.plugins {
            builder = builder.plugin_arc(portcullis::plugin::build_plugin(name, options)?);
        }
        Ok(builder)
    }
}

/// Reads the secret kept at `path`, or generates one there (readable by the owner only).
fn load_or_create_secret(path: &Path) -> Result<String, CliError> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            tracing::warn!(
                file = %path.display(),
                "PORTCULLIS_SECRET is not set; using the secret kept in this file. Set PORTCULLIS_SECRET in production."
            );
            return Ok(s.trim().to_owned());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(CliError::Io {
                context: format!("cannot read the secret file {}", path.display()),
                source,
            })
        }
    }
    let secret = portcullis::crypto::Secret::generate();
    write_private(path, secret.expose()).map_err(|source| CliError::Io {
        context: format!("cannot write the secret file {}", path.display()),
        source,
    })?;
    tracing::warn!(
        file = %path.display(),
        "PORTCULLIS_SECRET is not set: GENERATED A NEW SECRET and saved it in this file. Sessions depend on it; set PORTCULLIS_SECRET in production."
    );
    Ok(secret.expose().to_owned())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")
}
