//! The `lamp` binary: parses the command line and hands it to `cli`, which runs one subcommand
//! through the library and says how the process ends.

mod cli;

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Mesa's window-system code complains on stderr when this is unset; lamp never opens a window.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    // `--epochs -1` reaches the option's own check ("must be ≥ ...") instead of clap's
    // "unexpected argument '-1'".
    let cmd = cli::Cli::command().mut_subcommands(|s| s.allow_negative_numbers(true));
    let parsed = cli::Cli::from_arg_matches(&cmd.get_matches()).unwrap_or_else(|e| e.exit());
    // wgpu and naga log through `log`: RUST_LOG=wgpu=warn (or debug, ...) shows them.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    cli::run(parsed)
}
