//! `my-auth-server`: the `portcullis` server with the audit-log plugin crate linked in. Every
//! subcommand is there; `plugins = [..., "audit-log"]` in `auth.toml` turns the plugin on.

// A crate the program never names is not linked, and its plugin factory would be missing:
// one line per plugin crate links it.
use portcullis_audit_log as _;

fn main() -> std::process::ExitCode {
    portcullis_cli::main()
}
