//! `portcullis`: the stand-alone Portcullis server and its tools (`serve`, `migrate`,
//! `generate`, `secret`; `portcullis --help` lists them).
//!
//! Everything is in the library, [`portcullis_cli`]; a server binary of your own that also links
//! third-party plugins is the same one line (see the library's documentation).

use std::process::ExitCode;

fn main() -> ExitCode {
    portcullis_cli::main()
}
