//! Whole-server load bench: Portcullis against the Node reference server and a bare hyper
//! handler, in one run on this machine.
//!
//! ```sh
//! cargo run --release -p portcullis-benches --bin load
//! ```
//!
//! What it does, in order (each server runs alone while it is measured, then is stopped):
//!
//! 1. the raw argon2id hash rate of this machine (m=19456, t=2, p=1) with
//!    `portcullis::password::PasswordHasher`, every core busy;
//! 2. a bare hyper handler (this binary, `load --bare-server PORT`, served by the same
//!    `portcullis::adapters::hyper::serve` loop as the real server) answering a fixed small
//!    JSON body, driven by wrk with the kit's `bench/load.lua`, so the client does exactly the
//!    work it does against the auth servers;
//! 3. Portcullis through `scripts/conformance-server` (fresh `DATA_DIR`,
//!    `RATE_LIMIT_ENABLED=0`), driven by the kit's `bench/bench.mjs` (get-session and
//!    sign-in at 32 connections), then get-session and sign-in at once (two wrk processes)
//!    for get-session's latency while sign-in saturates the hashing pool; its resident memory
//!    (VmRSS) idle, at the peak under load, and after the load;
//! 4. the Node reference server from the conformance kit, driven by `bench/bench.mjs`.
//!
//! It prints a table and the ratios against the targets. Every child runs in a process group
//! of its own, which is killed when the bench ends, fails, panics, or gets SIGINT, SIGTERM or
//! SIGHUP.
//!
//! The conformance kit is taken from `--kit`, `$CONFORMANCE_KIT`, `<repo>/.conformance` or
//! `<repo>/../scratch/conformance` (the first with `node_modules`), else copied from
//! `<repo>/../shared/conformance` to `<repo>/.conformance` and installed with `npm ci`.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// Connections per wrk load, as the kit's bench uses.
const CONCURRENCY: u32 = 32;
/// The password of every bench user.
const PASSWORD: &str = "bench-password-123";
/// The secret the reference server signs with.
const REFERENCE_SECRET: &str = "bench-secret-0123456789abcdef0123456789";

/// Targets the ratios are checked against.
mod targets {
    /// get-session req/s over the bare handler's.
    pub(crate) const VS_BARE: f64 = 0.5;
    /// get-session req/s over the reference server's.
    pub(crate) const VS_REFERENCE: f64 = 20.0;
    /// get-session p99 at 32 connections, ms.
    pub(crate) const P99_MS: f64 = 5.0;
    /// sign-in req/s over the raw argon2id hash rate.
    pub(crate) const SIGN_IN_VS_ARGON2: f64 = 0.9;
    /// get-session p99 while sign-in saturates the hashing pool, ms.
    pub(crate) const MIXED_P99_MS: f64 = 20.0;
}

struct Args {
    duration: u64,
    users: u32,
    kit: Option<PathBuf>,
    repo: PathBuf,
    json_out: Option<PathBuf>,
    skip_reference: bool,
    argon2_secs: f64,
}

const USAGE: &str = "\
usage: load [--duration SECS] [--users N] [--kit DIR] [--repo DIR] [--json-out FILE]
            [--argon2-secs SECS] [--skip-reference]
       load --bare-server PORT

  --duration SECS     length of each wrk load (default 10, as the kit's bench)
  --users N           users the kit's bench signs up (default 100)
  --kit DIR           a conformance kit with node_modules installed
  --repo DIR          the Portcullis checkout (default: this crate's parent)
  --json-out FILE     also write the results as JSON
  --argon2-secs SECS  how long to measure the raw hash rate (default 8)
  --skip-reference    do not run the Node reference server
  --bare-server PORT  serve the bare handler on 127.0.0.1:PORT (used by the bench itself)";

enum Mode {
    Bench(Args),
    Bare(u16),
    Help,
}

fn parse_args() -> Result<Mode> {
    let mut args = Args {
        duration: 10,
        users: 100,
        kit: std::env::var_os("CONFORMANCE_KIT").map(PathBuf::from),
        repo: Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        json_out: None,
        skip_reference: false,
        argon2_secs: 8.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))
        };
        match flag.as_str() {
            "--bare-server" => return Ok(Mode::Bare(value()?.parse().context("--bare-server")?)),
            "--duration" => args.duration = value()?.parse().context("--duration")?,
            "--users" => args.users = value()?.parse().context("--users")?,
            "--kit" => args.kit = Some(value()?.into()),
            "--repo" => args.repo = value()?.into(),
            "--json-out" => args.json_out = Some(value()?.into()),
            "--argon2-secs" => args.argon2_secs = value()?.parse().context("--argon2-secs")?,
            "--skip-reference" => args.skip_reference = true,
            "-h" | "--help" => return Ok(Mode::Help),
            other => bail!("unknown argument `{other}`\n\n{USAGE}"),
        }
    }
    ensure!(args.duration >= 1, "--duration must be at least 1");
    ensure!(args.users >= 1, "--users must be at least 1");
    Ok(Mode::Bench(args))
}

fn main() -> ExitCode {
    let result = match parse_args() {
        Ok(Mode::Help) => {
            println!("{USAGE}");
            Ok(())
        }
        Ok(Mode::Bare(port)) => bare_server(port),
        Ok(Mode::Bench(args)) => {
            install_signal_handler();
            let r = run(&args);
            stop_all_children();
            r
        }
        Err(e) => Err(e),
    };
    let interrupted = INTERRUPTED.load(Ordering::SeqCst);
    if interrupted != 0 {
        // The handler is stopping the children and exits with this code; the main thread may
        // get here first, having seen them die.
        stop_all_children();
        eprintln!("load: interrupted");
        return ExitCode::from(interrupted);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes: each in its own process group, all killed on the way out.

/// Process groups of the children still alive; the signal handler kills them.
static LIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// The exit code of the signal that interrupted the bench (0 while none did): the main thread
/// then reports the interrupt, not the children the handler killed.
static INTERRUPTED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn live_groups() -> std::sync::MutexGuard<'static, Vec<i32>> {
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends `signal` to process group `pgid`; whether the group still had a member.
fn signal_group(pgid: i32, signal: Option<Signal>) -> bool {
    killpg(Pid::from_raw(pgid), signal).is_ok()
}

/// Terminates every registered group: SIGTERM, up to 3 s of grace, then SIGKILL.
fn stop_all_children() {
    let groups: Vec<i32> = live_groups().drain(..).collect();
    if groups.is_empty() {
        return;
    }
    for &g in &groups {
        signal_group(g, Some(Signal::SIGTERM));
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && groups.iter().any(|&g| signal_group(g, None)) {
        thread::sleep(Duration::from_millis(50));
    }
    for &g in &groups {
        signal_group(g, Some(Signal::SIGKILL));
    }
}

/// Kills the children and exits when the bench itself is interrupted.
fn install_signal_handler() {
    let spawned = thread::Builder::new().name("signals".into()).spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let code = rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return None;
            };
            tokio::select! {
                _ = int.recv() => Some(130u8),
                _ = term.recv() => Some(143),
                _ = hup.recv() => Some(129),
            }
        });
        if let Some(code) = code {
            INTERRUPTED.store(code, Ordering::SeqCst);
            eprintln!("\nload: interrupted; stopping the servers and load generators");
            stop_all_children();
            std::process::exit(i32::from(code));
        }
    });
    if let Err(e) = spawned {
        eprintln!("load: warning: no signal handler ({e}); children may outlive an interrupt");
    }
}

/// A child process in a process group of its own, stopped (with the whole group) on drop.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr going to `<log_dir>/<name>.log`.
    fn spawn(name: &str, cmd: &mut Command, log_dir: &Path) -> Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // Holding the lock across the spawn means the signal handler either sees this group
        // or runs before it exists.
        let mut groups = live_groups();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        if let Ok(pid) = i32::try_from(child.id()) {
            groups.push(pid);
        }
        drop(groups);
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
            status: None,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn pgid(&self) -> Option<i32> {
        i32::try_from(self.child.id()).ok()
    }

    /// The exit status, if the child has exited.
    fn exited(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }

    /// Waits for the child to exit on its own, up to `timeout`.
    fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not finish within {} s (log: {})",
                    self.name,
                    timeout.as_secs(),
                    self.log.display()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for a successful exit, failing with the end of the log otherwise.
    fn wait_success(&mut self, timeout: Duration) -> Result<()> {
        let status = self.wait(timeout)?;
        if !status.success() {
            bail!(
                "{} failed ({status}); end of {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log, 30)
            );
        }
        Ok(())
    }

    /// SIGTERM to the group, up to 5 s of grace, then SIGKILL; reaps the child.
    fn stop(&mut self) {
        let Some(pgid) = self.pgid() else { return };
        signal_group(pgid, Some(Signal::SIGTERM));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let leader_gone = !matches!(self.exited(), Ok(None));
            if leader_gone && !signal_group(pgid, None) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        signal_group(pgid, Some(Signal::SIGKILL));
        if self.status.is_none() {
            self.status = self.child.wait().ok();
        }
        live_groups().retain(|&g| g != pgid);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client for readiness checks and sign-ups (wrk does the load).

struct HttpReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpReply> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers in the response")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("bad status line")?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(HttpReply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// Waits until `GET path` answers 200, failing early if `server` exits.
fn wait_ready(server: &mut Proc, port: u16, path: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut said = false;
    loop {
        if let Some(status) = server.exited()? {
            bail!(
                "{} exited ({status}) before answering; end of {}:\n{}",
                server.name,
                server.log.display(),
                log_tail(&server.log, 30)
            );
        }
        if let Ok(r) = http_request(port, "GET", path, &[], b"") {
            if r.status == 200 {
                return Ok(());
            }
        }
        if start.elapsed() > timeout {
            bail!(
                "{} did not answer GET {path} within {} s; end of {}:\n{}",
                server.name,
                timeout.as_secs(),
                server.log.display(),
                log_tail(&server.log, 30)
            );
        }
        if !said && start.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "load: still waiting for {} (building? log: {})",
                server.name,
                server.log.display()
            );
            said = true;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

// ---------------------------------------------------------------------------------------------
// Results.

/// One load scenario's result, in the kit's units (ms, req/s).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Row {
    name: String,
    requests: u64,
    rps: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    non2xx: u64,
    #[serde(rename = "sockErr")]
    sock_err: u64,
}

/// The `BENCH_JSON` line `bench/load.lua` prints.
#[derive(Deserialize)]
struct WrkJson {
    requests: u64,
    duration_us: u64,
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    max_us: u64,
    non2xx: u64,
    connect_err: u64,
    read_err: u64,
    write_err: u64,
    timeout_err: u64,
}

impl WrkJson {
    fn row(self, name: &str) -> Row {
        let secs = (self.duration_us as f64 / 1e6).max(1e-9);
        Row {
            name: name.to_owned(),
            requests: self.requests,
            rps: self.requests as f64 / secs,
            p50: self.p50_us as f64 / 1000.0,
            p90: self.p90_us as f64 / 1000.0,
            p99: self.p99_us as f64 / 1000.0,
            max: self.max_us as f64 / 1000.0,
            non2xx: self.non2xx,
            sock_err: self.connect_err + self.read_err + self.write_err + self.timeout_err,
        }
    }
}

/// What `bench.mjs` writes to `BENCH_JSON_OUT`.
#[derive(Deserialize)]
struct BenchJson {
    rows: Vec<Row>,
}

#[derive(Debug, Default, Serialize)]
struct Memory {
    idle_kib: u64,
    peak_kib: u64,
    after_kib: u64,
}

#[derive(Debug, Default, Serialize)]
struct Results {
    date: String,
    loadavg_at_start: String,
    cpus: usize,
    cpu_model: String,
    duration_s: u64,
    /// The raw argon2id rate measured first, and again right after Portcullis's sign-in load.
    argon2_hashes_per_s: [f64; 2],
    bare: Option<Row>,
    portcullis: Vec<Row>,
    mixed: Vec<Row>,
    reference: Vec<Row>,
    portcullis_rss: Memory,
    /// Per phase, the share of the machine's CPU that processes other than this bench and its
    /// children used: what makes a run on a shared machine noisy.
    other_cpu: Vec<(String, f64)>,
}

impl Results {
    /// The raw hash rate sign-in is compared with: the mean of the two measurements.
    fn argon2_rate(&self) -> f64 {
        let [a, b] = self.argon2_hashes_per_s;
        if b > 0.0 {
            (a + b) / 2.0
        } else {
            a
        }
    }
}

/// Clock ticks of `/proc` CPU times (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// CPU time of process `pid` (`self` for this one) and of its reaped children, in ticks.
fn process_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the parenthesised command: utime, stime, cutime and cstime are fields 12 to 15.
    stat.rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(4)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

/// Busy CPU time of the whole machine, in ticks.
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .next()
        .map(|cpu| {
            cpu.split_whitespace()
                .skip(1)
                .take(8)
                .enumerate()
                // user nice system [idle iowait] irq softirq steal
                .filter(|(i, _)| *i != 3 && *i != 4)
                .filter_map(|(_, v)| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

/// Measures how much CPU other processes use during a phase. `live` are the pids of this
/// bench's children running at the start; their time counts as ours whether they still run
/// at the end or have been reaped (then it is in this process's children's time).
struct CpuWindow {
    start: Instant,
    busy: u64,
    ours: u64,
}

impl CpuWindow {
    fn ours(live: &[u32]) -> u64 {
        process_ticks("self")
            + live
                .iter()
                .map(|p| process_ticks(&p.to_string()))
                .sum::<u64>()
    }

    fn start(live: &[u32]) -> Self {
        Self {
            start: Instant::now(),
            busy: machine_busy_ticks(),
            ours: Self::ours(live),
        }
    }

    /// The share of all CPUs that other processes used since the start.
    fn other_share(&self, live: &[u32]) -> f64 {
        let cpus = thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let capacity = self.start.elapsed().as_secs_f64() * TICKS_PER_S * cpus;
        let busy = machine_busy_ticks().saturating_sub(self.busy);
        let ours = Self::ours(live).saturating_sub(self.ours);
        if capacity > 0.0 {
            (busy.saturating_sub(ours) as f64 / capacity).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

struct Ctx<'a> {
    args: &'a Args,
    kit: PathBuf,
    work: PathBuf,
    threads: usize,
}

fn run(args: &Args) -> Result<()> {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let mut results = Results {
        date: utc_now(),
        loadavg_at_start: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        cpus,
        cpu_model: cpu_model(),
        duration_s: args.duration,
        ..Results::default()
    };
    eprintln!(
        "load: {} UTC, load average {} ({} CPUs, {})",
        results.date, results.loadavg_at_start, cpus, results.cpu_model
    );
    for tool in ["wrk", "node", "bash"] {
        ensure!(
            which(tool),
            "`{tool}` is not on PATH (wrk: apt-get install -y wrk)"
        );
    }
    let work = tempfile::Builder::new()
        .prefix("portcullis-load-")
        .tempdir()
        .context("creating the work directory")?;
    let kit = find_kit(args, work.path())?;
    eprintln!("load: conformance kit at {}", kit.display());
    let cx = Ctx {
        args,
        kit,
        work: work.path().to_path_buf(),
        // What bench.mjs uses: half the cores, at least one.
        threads: (cpus / 2).max(1),
    };

    eprintln!(
        "load: measuring the raw argon2id hash rate for {} s",
        args.argon2_secs
    );
    let w = CpuWindow::start(&[]);
    results.argon2_hashes_per_s[0] = argon2_rate(args.argon2_secs)?;
    results
        .other_cpu
        .push(("argon2 (first)".into(), w.other_share(&[])));
    eprintln!(
        "load: argon2id {:.1} hashes/s",
        results.argon2_hashes_per_s[0]
    );

    let (bare, other) = bench_bare(&cx)?;
    results.bare = Some(bare);
    results.other_cpu.push(("bare handler".into(), other));
    bench_portcullis(&cx, &mut results)?;
    if !args.skip_reference {
        let (rows, other) = bench_reference(&cx)?;
        results.reference = rows;
        results.other_cpu.push(("Node reference".into(), other));
    }

    let report = report(&results);
    println!("{report}");
    if let Some(path) = &args.json_out {
        let json = serde_json::json!({ "results": &results, "checks": checks(&results) });
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // Keep the logs of a run only when asked to look at them.
    if std::env::var_os("LOAD_KEEP_WORK").is_some() {
        let kept = work.keep();
        eprintln!("load: logs kept in {}", kept.display());
    }
    Ok(())
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "?".into(), |(_, m)| m.trim().to_owned())
}

fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Finds a conformance kit with its node modules installed, installing a copy if needed.
fn find_kit(args: &Args, work: &Path) -> Result<PathBuf> {
    let installed =
        |d: &Path| d.join("bench/bench.mjs").is_file() && d.join("node_modules").is_dir();
    if let Some(kit) = &args.kit {
        ensure!(
            installed(kit),
            "{} is not a conformance kit with node_modules",
            kit.display()
        );
        return Ok(kit.clone());
    }
    let local = args.repo.join(".conformance");
    let scratch = args.repo.join("../scratch/conformance");
    for candidate in [&local, &scratch] {
        if installed(candidate) {
            return Ok(candidate.clone());
        }
    }
    let shared = args.repo.join("../shared/conformance");
    ensure!(
        shared.join("bench/bench.mjs").is_file(),
        "no conformance kit: pass --kit DIR (looked in {}, {} and {})",
        local.display(),
        scratch.display(),
        shared.display()
    );
    if !local.join("package.json").is_file() {
        eprintln!("load: copying the conformance kit to {}", local.display());
        std::fs::create_dir_all(&local)?;
        let mut cp = Command::new("cp");
        cp.arg("-r").arg(shared.join(".")).arg(&local);
        Proc::spawn("copy-kit", &mut cp, work)?.wait_success(Duration::from_secs(120))?;
    }
    eprintln!("load: npm ci in {}", local.display());
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&local);
    Proc::spawn("npm-ci", &mut npm, work)?.wait_success(Duration::from_secs(900))?;
    ensure!(
        installed(&local),
        "npm ci left no node_modules in {}",
        local.display()
    );
    Ok(local)
}

/// Hashes per second with every core hashing, through the engine's hasher.
fn argon2_rate(secs: f64) -> Result<f64> {
    use portcullis::password::PasswordHasher;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let hasher = PasswordHasher::with_defaults().map_err(|e| anyhow::anyhow!("{e}"))?;
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        // Warm up: one hash per core.
        let warm: Vec<_> = (0..cores)
            .map(|_| {
                let h = hasher.clone();
                tokio::spawn(async move { h.hash(PASSWORD).await })
            })
            .collect();
        for w in warm {
            w.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(secs);
        // Twice as many callers as permits, so a permit never waits for a caller.
        let tasks: Vec<_> = (0..cores * 2)
            .map(|_| {
                let h = hasher.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        h.hash(PASSWORD).await?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<_, portcullis::password::HashError>(())
                })
            })
            .collect();
        for t in tasks {
            t.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
    })
}

/// One wrk load with the kit's `load.lua`.
struct Load<'a> {
    /// What the log file is called.
    log_name: &'a str,
    url: &'a str,
    /// `session` (GET with the cookie) or `signin` (POST email and password).
    mode: &'a str,
    users: &'a Path,
    origin: &'a str,
    duration: u64,
}

/// Starts wrk for `load`; [`wrk_result`] waits for it.
fn wrk(cx: &Ctx<'_>, load: &Load<'_>) -> Result<Proc> {
    let mut cmd = Command::new("wrk");
    cmd.arg("-t")
        .arg(cx.threads.to_string())
        .arg("-c")
        .arg(CONCURRENCY.to_string())
        .arg("-d")
        .arg(format!("{}s", load.duration))
        .args(["--timeout", "10s", "-s"])
        .arg(cx.kit.join("bench/load.lua"))
        .arg(load.url)
        .arg("--")
        .arg(load.users)
        .arg(load.mode)
        .arg(load.origin);
    eprintln!("load: wrk {} {} ({} s)", load.mode, load.url, load.duration);
    Proc::spawn(load.log_name, &mut cmd, &cx.work)
}

/// Waits for a wrk started by [`wrk`] and parses its `BENCH_JSON` line.
fn wrk_result(mut p: Proc, name: &str, duration: u64) -> Result<Row> {
    p.wait_success(Duration::from_secs(duration + 60))?;
    let f = File::open(&p.log)?;
    for line in BufReader::new(f).lines() {
        let line = line?;
        if let Some(json) = line.strip_prefix("BENCH_JSON ") {
            let parsed: WrkJson = serde_json::from_str(json)
                .with_context(|| format!("parsing wrk's result: {json}"))?;
            return Ok(parsed.row(name));
        }
    }
    bail!(
        "wrk printed no BENCH_JSON line; end of {}:\n{}",
        p.log.display(),
        log_tail(&p.log, 20)
    )
}

fn bench_bare(cx: &Ctx<'_>) -> Result<(Row, f64)> {
    let port = free_port()?;
    let exe = std::env::current_exe().context("locating this binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--bare-server").arg(port.to_string());
    let mut server = Proc::spawn("bare-server", &mut cmd, &cx.work)?;
    wait_ready(&mut server, port, "/", Duration::from_secs(30))?;
    // The same client work as against the auth servers: load.lua, a cookie, the headers.
    let users = cx.work.join("bare-users.tsv");
    std::fs::write(
        &users,
        "better-auth.session_token=not-a-session\tbare@example.com\tx\t240.0.0.1\n",
    )?;
    let origin = format!("http://127.0.0.1:{port}");
    let url = format!("{origin}/");
    let name = "GET / (bare, fixed JSON)";
    let live = [server.pid()];
    let w = CpuWindow::start(&live);
    let p = wrk(
        cx,
        &Load {
            log_name: "wrk-bare",
            url: &url,
            mode: "session",
            users: &users,
            origin: &origin,
            duration: cx.args.duration,
        },
    )?;
    let row = wrk_result(p, name, cx.args.duration)?;
    let other = w.other_share(&live);
    server.stop();
    Ok((row, other))
}

/// Runs the kit's `bench/bench.mjs` against `base_url`; its rows.
fn bench_mjs(cx: &Ctx<'_>, label: &str, base_url: &str) -> Result<Vec<Row>> {
    let out = cx.work.join(format!("{label}-bench.json"));
    let mut cmd = Command::new("node");
    cmd.arg(cx.kit.join("bench/bench.mjs"))
        .current_dir(&cx.kit)
        .env("AUTH_BASE_URL", base_url)
        .env("BENCH_JSON_OUT", &out)
        .env("BENCH_DURATION", cx.args.duration.to_string())
        .env("BENCH_USERS", cx.args.users.to_string())
        .env("BENCH_CONCURRENCY", CONCURRENCY.to_string())
        .env("BENCH_THREADS", cx.threads.to_string())
        .env("TMPDIR", &cx.work);
    eprintln!("load: bench.mjs against {base_url}");
    let mut p = Proc::spawn(&format!("{label}-bench"), &mut cmd, &cx.work)?;
    p.wait_success(Duration::from_secs(900))?;
    let text = std::fs::read_to_string(&out)
        .with_context(|| format!("bench.mjs wrote no {}", out.display()))?;
    let parsed: BenchJson = serde_json::from_str(&text).context("parsing bench.mjs results")?;
    Ok(parsed.rows)
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Samples VmRSS every 100 ms until stopped; the peak.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::Builder::new().name("rss".into()).spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid).unwrap_or(0));
                thread::sleep(Duration::from_millis(100));
            }
            peak
        })?;
        Ok(Self { stop, handle })
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(0)
    }
}

/// Signs `n` users up (4 at a time) and writes the users file `load.lua` reads.
fn sign_up_users(port: u16, n: u32, path: &Path) -> Result<()> {
    let origin = format!("http://127.0.0.1:{port}");
    let next = AtomicU64::new(0);
    let rows: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let run_id = std::process::id();
    thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= u64::from(n) {
                            return Ok(());
                        }
                        let email = format!("mixed-{run_id}-{i}@example.com");
                        let ip = format!("241.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
                        let body = serde_json::json!({
                            "email": email, "password": PASSWORD, "name": format!("Mixed {i}"),
                        })
                        .to_string();
                        let r = http_request(
                            port,
                            "POST",
                            "/api/auth/sign-up/email",
                            &[
                                ("Content-Type", "application/json"),
                                ("Origin", &origin),
                                ("X-Forwarded-For", &ip),
                            ],
                            body.as_bytes(),
                        )?;
                        ensure!(
                            r.status == 200,
                            "sign-up answered {}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        );
                        let cookie = r
                            .headers
                            .iter()
                            .filter(|(k, _)| k == "set-cookie")
                            .filter_map(|(_, v)| v.split(';').next())
                            .filter(|kv| kv.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
                            .collect::<Vec<_>>()
                            .join("; ");
                        ensure!(!cookie.is_empty(), "sign-up set no cookie");
                        rows.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(format!("{cookie}\t{email}\t{PASSWORD}\t{ip}"));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a sign-up thread panicked"))??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let rows = rows
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::fs::write(path, rows.join("\n") + "\n")?;
    Ok(())
}

fn bench_portcullis(cx: &Ctx<'_>, results: &mut Results) -> Result<()> {
    let port = free_port()?;
    let data = cx.work.join("portcullis-data");
    let mut cmd = Command::new("bash");
    cmd.arg(cx.args.repo.join("scripts/conformance-server"))
        .current_dir(&cx.args.repo)
        .env("PORT", port.to_string())
        .env("DATA_DIR", &data)
        .env("RATE_LIMIT_ENABLED", "0");
    eprintln!("load: starting Portcullis on port {port} (scripts/conformance-server)");
    let mut server = Proc::spawn("portcullis", &mut cmd, &cx.work)?;
    wait_ready(&mut server, port, "/api/auth/ok", Duration::from_secs(1800))?;
    let pid = server.pid();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    ensure!(
        comm.trim() == "portcullis",
        "process {pid} is `{}`, not the portcullis server",
        comm.trim()
    );
    thread::sleep(Duration::from_secs(2));
    results.portcullis_rss.idle_kib = rss_kib(pid).unwrap_or(0);

    let sampler = RssSampler::start(pid)?;
    let base = format!("http://127.0.0.1:{port}/api/auth");
    let w = CpuWindow::start(&[pid]);
    results.portcullis = bench_mjs(cx, "portcullis", &base)?;
    results
        .other_cpu
        .push(("Portcullis bench.mjs".into(), w.other_share(&[pid])));

    // The raw hash rate again, next to the sign-in load (the server idles meanwhile): a shared
    // machine's load drifts, and sign-in is compared with the mean of the two.
    let w = CpuWindow::start(&[pid]);
    results.argon2_hashes_per_s[1] = argon2_rate(cx.args.argon2_secs)?;
    results
        .other_cpu
        .push(("argon2 (second)".into(), w.other_share(&[pid])));
    eprintln!(
        "load: argon2id {:.1} hashes/s",
        results.argon2_hashes_per_s[1]
    );

    // get-session while sign-in saturates the hashing pool.
    let users = cx.work.join("mixed-users.tsv");
    sign_up_users(port, CONCURRENCY, &users)?;
    let origin = format!("http://127.0.0.1:{port}");
    let d = cx.args.duration;
    let w = CpuWindow::start(&[pid]);
    let sign_in = wrk(
        cx,
        &Load {
            log_name: "wrk-mixed-sign-in",
            url: &format!("{base}/sign-in/email"),
            mode: "signin",
            users: &users,
            origin: &origin,
            duration: d + 3,
        },
    )?;
    // Let sign-in fill the pool before get-session starts; it runs past get-session's end.
    thread::sleep(Duration::from_millis(1500));
    let session = wrk(
        cx,
        &Load {
            log_name: "wrk-mixed-get-session",
            url: &format!("{base}/get-session"),
            mode: "session",
            users: &users,
            origin: &origin,
            duration: d,
        },
    )?;
    let gs = wrk_result(session, "GET  /get-session (sign-in saturated)", d)?;
    let si = wrk_result(sign_in, "POST /sign-in/email (with get-session)", d + 3)?;
    results.mixed = vec![gs, si];
    results
        .other_cpu
        .push(("Portcullis mixed".into(), w.other_share(&[pid])));
    // Requests the clients abandoned at the end still finish in the server: the peak covers
    // the 5 s after the load too.
    thread::sleep(Duration::from_secs(5));
    results.portcullis_rss.after_kib = rss_kib(pid).unwrap_or(0);
    results.portcullis_rss.peak_kib = sampler.finish().max(results.portcullis_rss.after_kib);
    server.stop();
    Ok(())
}

fn bench_reference(cx: &Ctx<'_>) -> Result<(Vec<Row>, f64)> {
    let port = free_port()?;
    let mut cmd = Command::new("node");
    cmd.arg(cx.kit.join("reference/server.mjs"))
        .current_dir(&cx.kit)
        .env("PORT", port.to_string())
        .env("DATABASE_PATH", cx.work.join("reference.db"))
        .env("RESET_DB", "1")
        .env("OUTBOX_FILE", cx.work.join("reference-outbox.jsonl"))
        .env("RATE_LIMIT_ENABLED", "0")
        .env("BETTER_AUTH_SECRET", REFERENCE_SECRET);
    eprintln!("load: starting the Node reference server on port {port}");
    let mut server = Proc::spawn("reference", &mut cmd, &cx.work)?;
    wait_ready(&mut server, port, "/api/auth/ok", Duration::from_secs(120))?;
    let live = [server.pid()];
    let w = CpuWindow::start(&live);
    let rows = bench_mjs(
        cx,
        "reference",
        &format!("http://127.0.0.1:{port}/api/auth"),
    )?;
    let other = w.other_share(&live);
    server.stop();
    Ok((rows, other))
}

// ---------------------------------------------------------------------------------------------
// Report.

/// How a check's value reads.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
enum Unit {
    /// A fraction shown as a percentage.
    Percent,
    /// A multiple.
    Times,
    /// Milliseconds.
    Ms,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Unit::Percent => format!("{:.1}%", v * 100.0),
            Unit::Times => format!("{v:.1}x"),
            Unit::Ms => format!("{v:.2} ms"),
        }
    }
}

/// One ratio against its target.
#[derive(Debug, Clone, Serialize)]
struct Check {
    label: &'static str,
    value: Option<f64>,
    target: f64,
    higher_is_better: bool,
    unit: Unit,
}

impl Check {
    fn pass(&self) -> Option<bool> {
        self.value.map(|v| {
            if self.higher_is_better {
                v >= self.target
            } else {
                v < self.target
            }
        })
    }
}

/// The ratios the bench reports, measured in this run.
fn checks(r: &Results) -> Vec<Check> {
    let gs = find(&r.portcullis, "get-session");
    let si = find(&r.portcullis, "sign-in");
    let ref_gs = find(&r.reference, "get-session");
    let mixed_gs = find(&r.mixed, "get-session");
    let ratio = |a: Option<&Row>, b: Option<&Row>| match (a, b) {
        (Some(a), Some(b)) if b.rps > 0.0 => Some(a.rps / b.rps),
        _ => None,
    };
    vec![
        Check {
            label: "get-session req/s vs bare hyper handler",
            value: ratio(gs, r.bare.as_ref()),
            target: targets::VS_BARE,
            higher_is_better: true,
            unit: Unit::Percent,
        },
        Check {
            label: "get-session req/s vs Node reference",
            value: ratio(gs, ref_gs),
            target: targets::VS_REFERENCE,
            higher_is_better: true,
            unit: Unit::Times,
        },
        Check {
            label: "get-session p99 at 32 connections",
            value: gs.map(|g| g.p99),
            target: targets::P99_MS,
            higher_is_better: false,
            unit: Unit::Ms,
        },
        Check {
            label: "sign-in req/s vs raw argon2id hashes/s",
            value: si
                .filter(|_| r.argon2_rate() > 0.0)
                .map(|s| s.rps / r.argon2_rate()),
            target: targets::SIGN_IN_VS_ARGON2,
            higher_is_better: true,
            unit: Unit::Percent,
        },
        Check {
            label: "get-session p99 while sign-in saturated",
            value: mixed_gs.map(|g| g.p99),
            target: targets::MIXED_P99_MS,
            higher_is_better: false,
            unit: Unit::Ms,
        },
    ]
}

fn find<'a>(rows: &'a [Row], needle: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.name.contains(needle))
}

fn report(r: &Results) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nPortcullis load bench  {} UTC  load average at start {}  ({} CPUs, {})",
        r.date, r.loadavg_at_start, r.cpus, r.cpu_model
    );
    let _ = writeln!(
        out,
        "wrk: {} connections, {} s per load; argon2id m=19456 t=2 p=1\n",
        CONCURRENCY, r.duration_s
    );
    let head = [
        "server", "scenario", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
        "non-2xx", "sock err",
    ];
    let mut lines: Vec<[String; 10]> = Vec::new();
    let mut add = |server: &str, row: &Row| {
        lines.push([
            server.to_owned(),
            row.name.trim().replace("  ", " "),
            row.requests.to_string(),
            format!("{:.1}", row.rps),
            format!("{:.2}", row.p50),
            format!("{:.2}", row.p90),
            format!("{:.2}", row.p99),
            format!("{:.1}", row.max),
            row.non2xx.to_string(),
            row.sock_err.to_string(),
        ]);
    };
    if let Some(b) = &r.bare {
        add("bare hyper", b);
    }
    for row in &r.portcullis {
        add("Portcullis", row);
    }
    for row in &r.mixed {
        add("Portcullis (mixed)", row);
    }
    for row in &r.reference {
        add("Node reference", row);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let fmt = |cols: &[String]| {
        cols.iter()
            .enumerate()
            .map(|(i, c)| {
                if i < 2 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(out, "{}", fmt(&head.map(String::from)));
    let _ = writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    );
    for l in &lines {
        let _ = writeln!(out, "{}", fmt(l));
    }
    let mib = |k: u64| k as f64 / 1024.0;
    let _ = writeln!(
        out,
        "\nraw argon2id hash rate ({} threads): {:.1} hashes/s at the start, {:.1} right after \
         Portcullis's sign-in load; mean {:.1}",
        r.cpus,
        r.argon2_hashes_per_s[0],
        r.argon2_hashes_per_s[1],
        r.argon2_rate()
    );
    let _ = writeln!(
        out,
        "Portcullis VmRSS: idle {:.1} MiB, peak under load (and the 5 s after) {:.1} MiB, 5 s \
         after the load {:.1} MiB",
        mib(r.portcullis_rss.idle_kib),
        mib(r.portcullis_rss.peak_kib),
        mib(r.portcullis_rss.after_kib)
    );
    let _ = writeln!(
        out,
        "CPU used by other processes: {}",
        r.other_cpu
            .iter()
            .map(|(phase, share)| format!("{phase} {:.0}%", share * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (phase, share) in &r.other_cpu {
        if *share > 0.05 {
            let _ = writeln!(
                out,
                "WARNING: other processes used {:.0}% of the CPUs during {phase}; its numbers are \
                 noisy",
                share * 100.0
            );
        }
    }
    let warn: Vec<&Row> = r
        .bare
        .iter()
        .chain(&r.portcullis)
        .chain(&r.mixed)
        .chain(&r.reference)
        .filter(|row| row.non2xx > 0 || row.sock_err > 0)
        .collect();
    for row in warn {
        let _ = writeln!(
            out,
            "WARNING: {}: {} non-2xx, {} socket errors",
            row.name.trim(),
            row.non2xx,
            row.sock_err
        );
    }

    let _ = writeln!(
        out,
        "\n{:<42}  {:>10}  {:>10}  result",
        "ratio", "value", "target"
    );
    let _ = writeln!(out, "{}", "-".repeat(42 + 2 + 10 + 2 + 10 + 2 + 6));
    for c in checks(r) {
        let shown = c.value.map_or_else(|| "n/a".into(), |v| c.unit.show(v));
        let target = format!(
            "{} {}",
            if c.higher_is_better { ">=" } else { "<" },
            c.unit.show(c.target)
        );
        let verdict = match c.pass() {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a",
        };
        let _ = writeln!(out, "{:<42}  {shown:>10}  {target:>10}  {verdict}", c.label);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The bare handler.

/// Serves `portcullis_benches::bare_response` on `127.0.0.1:port` until SIGTERM/SIGINT or
/// until the bench that started it goes away.
fn bare_server(port: u16) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"))?;
        let handler = |_req: http::Request<hyper::body::Incoming>| async {
            portcullis_benches::bare_response()
        };
        let parent = std::os::unix::process::parent_id();
        let shutdown = async move {
            use tokio::signal::unix::{signal, SignalKind};
            let orphaned = async {
                while std::os::unix::process::parent_id() == parent {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            };
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                    () = orphaned => {}
                },
                _ => orphaned.await,
            }
        };
        portcullis::adapters::hyper::serve(listener, handler, shutdown)
            .await
            .context("serving")
    })
}
