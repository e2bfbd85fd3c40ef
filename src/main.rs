//! The `lamp` binary: parses the command line and hands it to `cli`, which runs one subcommand
//! through the library and says how the process ends.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Mesa's window-system code complains on stderr when this is unset; lamp never opens a window.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    cli::run(cli::Cli::parse())
}
