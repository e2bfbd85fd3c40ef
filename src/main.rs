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
    // `train --config FILE`: the file's options go first, so that flags given too override them.
    let args = match cli::recipe::expand_config(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(e) => {
            lamp::sayln!("lamp: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `--epochs -1` reaches the option's own check instead of clap's "unexpected argument '-1'";
    // an option given twice (file, then command line) takes the last value.
    let cmd = cli::Cli::command()
        .mut_subcommands(|s| s.allow_negative_numbers(true))
        .mut_subcommand("train", |s| s.args_override_self(true));
    let from_file = cli::recipe::config_file(&args);
    let matches = cmd.clone().try_get_matches_from(args).unwrap_or_else(|e| {
        // A bad value may have come from the recipe: say where its options were put.
        if let (Some(f), true) = (&from_file, e.use_stderr()) {
            let _ = e.print();
            lamp::sayln!(
                "lamp: note: the options of {} come first, the command line's after them",
                f.display()
            );
            std::process::exit(e.exit_code());
        }
        e.exit()
    });
    if let (Some(("train", m)), Some(train)) = (matches.subcommand(), cmd.find_subcommand("train"))
    {
        let _ = cli::recipe::RECIPE.set(cli::recipe::from_matches(train, m));
    }
    let parsed = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // wgpu and naga log through `log`: RUST_LOG=wgpu=warn (or debug, ...) shows them.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    cli::run(parsed)
}
