//! The `lamp` command line (the binary's, not the library's): the clap structs and one small
//! function per subcommand, each turning arguments into library calls. Errors end as one line
//! that names the file or flag and the problem.

/// `print!` that returns an error instead of panicking (see `out`).
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::out(format_args!($($t)*)) };
}
/// `println!` that returns an error instead of panicking (see `out`).
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::out(format_args!("{}\n", format_args!($($t)*))) };
}

mod args;
mod calibrate;
mod eval;
mod export;
mod inspect;
mod merge;
mod progress;
pub mod recipe;
mod run_files;
mod score;
mod study;
mod tools;
mod train;

use clap::{CommandFactory, Parser, Subcommand};
use lamp::Error;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lamp",
    version,
    about = "Unsupervised visual anomaly detection with loss amplification (LAMP), on any GPU"
)]
pub struct Cli {
    /// Use the first adapter whose name contains this (see `lamp info`).
    #[arg(long, global = true, env = "WGPU_ADAPTER_NAME")]
    adapter: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List adapters, the one lamp picks, its limits and features.
    #[command(
        after_help = "Examples:\n  lamp info\n  lamp --adapter llvmpipe info      # pick an adapter by name\n  WGPU_BACKEND=vulkan lamp info"
    )]
    Info,
    /// Train an autoencoder on normal images and write a checkpoint.
    #[command(
        after_help = "Examples:\n  lamp train good_parts/ -o parts.safetensors\n  lamp train mvtec/carpet --patch 32 --augment --denoise --score-agg topk -o carpet.safetensors\n  lamp train fashion-mnist:0 --epochs 10 -o tshirt.safetensors\n  lamp train good_parts/ -o parts.safetensors --print-config > recipe.toml\n  lamp train --config recipe.toml --epochs 50\n  lamp train good_parts/ -o parts.safetensors --resume   # after Ctrl-C or a crash"
    )]
    Train(train::TrainArgs),
    /// One forward and backward pass (or K Adam steps) on a batch, for checking against another
    /// framework.
    #[command(
        after_help = "Examples:\n  lamp grad --init-seed 0 --arch fmnist-ae --input batch.safetensors -o grads.safetensors\n  lamp grad --model tshirt.safetensors --input batch.safetensors --metric ssim --amp lamp -o grads.safetensors\n  lamp grad --init-seed 0 --arch fmnist-ae --input batch.safetensors --adam-steps 5 --lr 0.01 -o params.safetensors"
    )]
    Grad(tools::GradArgs),
    /// Write a freshly initialised model (from a seed; --init: He's for a conv-ae of 4 stages or
    /// more, else PyTorch's default).
    #[command(after_help = "Examples:\n  lamp init --seed 0 -o init.safetensors")]
    Init(tools::InitArgs),
    /// Score images with a trained model: raw score, normalised score, verdict; heat maps.
    #[command(
        after_help = "Examples:\n  lamp score parts.safetensors new_parts/\n  lamp score parts.safetensors 'line*/today/*.png' --json > scores.jsonl\n  lamp score parts.safetensors new_parts/ --csv --maps maps/ --fail-on-anomaly\n  lamp score parts.safetensors new_parts/ --shard 0/4 --json -o shard-0.jsonl   # then lamp merge"
    )]
    Score(score::ScoreArgs),
    /// Join the outputs of `lamp score --shard I/N` (JSON lines or CSV) into the output of one
    /// run over all the inputs.
    #[command(
        after_help = "Examples:\n  for i in 0 1 2 3; do lamp score parts.safetensors line/ --shard $i/4 --json -o shard-$i.jsonl & done; wait\n  lamp merge shard-*.jsonl -o scores.jsonl\n  lamp merge shard-*.jsonl --inputs line/ -o scores.jsonl   # and check that no part is missing\n  lamp score parts.safetensors line/ --shard auto/16 --csv -o /results/shard-$JOB_COMPLETION_INDEX.csv   # in a Kubernetes Indexed Job\n  lamp merge /results/shard-*.csv > scores.csv"
    )]
    Merge(merge::MergeArgs),
    /// What a checkpoint holds: model, layers, loss, training recipe and history, held-out
    /// check, calibration, scoring.
    #[command(
        after_help = "Examples:\n  lamp inspect parts.safetensors\n  lamp inspect parts.safetensors --json\n  lamp inspect parts.safetensors --recipe > recipe.toml   # repeat with lamp train --config"
    )]
    Inspect(inspect::InspectArgs),
    /// Write a trained model as an ONNX graph: input `image` [N, C, S, S] float32 in [0, 1];
    /// outputs `reconstruction` [N, C, S, S] and `score` [N], the score `lamp score` gives.
    #[command(
        after_help = "The graph holds the network and the checkpoint's scoring (its metric and score aggregate);\nthe calibrated threshold is in the model's metadata (`lamp.threshold`). For a model trained\non patches (--patch) the graph scores one window of the model's input size: its `score` is\nthat window's, not a whole image's.\n\nExamples:\n  lamp export parts.safetensors -o parts.onnx\n  lamp export tshirt.safetensors --format onnx --out tshirt.onnx"
    )]
    Export(export::ExportArgs),
    /// Set a trained model's threshold anew from normal images, without training.
    #[command(
        after_help = "Examples:\n  lamp calibrate parts.safetensors more_good_parts/\n  lamp calibrate parts.safetensors more_good_parts/ -o recalibrated.safetensors --contamination 0.005"
    )]
    Calibrate(calibrate::CalibrateArgs),
    /// Evaluate a model on labelled test data (MVTec AD layout or fashion-mnist:C): metrics.json,
    /// roc.png, hist.png, heat-map panels, report.md and report.html.
    #[command(
        after_help = "Examples:\n  lamp eval tshirt.safetensors fashion-mnist:0 -o eval-tshirt/\n  lamp eval bottle.safetensors mvtec/bottle -o eval-bottle/"
    )]
    Eval(eval::EvalArgs),
    /// Train and evaluate on the small Fashion-MNIST subset built into lamp, and say where the
    /// report is.
    #[command(after_help = "Examples:\n  lamp demo\n  lamp demo -o /tmp/lamp-demo")]
    Demo(eval::DemoArgs),
    /// Measure this device: GEMM probe, every kernel, training steps, scoring.
    #[command(
        after_help = "Examples:\n  lamp bench\n  lamp bench --json > bench.json\n  lamp bench --quick --fmnist-only"
    )]
    Bench(tools::BenchArgs),
    /// Run the LAMP-versus-baseline table (one-class protocol), resumable: results.jsonl,
    /// results.md (paired by seed), results.png, results-difference.png.
    #[command(
        after_help = "Examples:\n  lamp experiment fashion-mnist -o results/fashion-mnist\n  lamp experiment fashion-mnist --classes 0-2 --seeds 1,2 -o runs/small\n  lamp experiment mvtec ~/mvtec --patch 32 --augment -o runs/mvtec"
    )]
    Experiment(study::ExperimentArgs),
    /// The plain and amplified loss surfaces around a trained model along two random
    /// filter-normalised directions: plain.png, amplified.png (one colour scale), landscape.json.
    #[command(
        after_help = "Examples:\n  lamp landscape tshirt.safetensors fashion-mnist:0 -o landscape/\n  lamp landscape tshirt.safetensors fashion-mnist:0 --grid 21 --radius 0.5 -o landscape/"
    )]
    Landscape(study::LandscapeArgs),
}

/// Runs the subcommand: exit status 0, 3 for `score --fail-on-anomaly` when it found one, or 1
/// after printing the error.
pub fn run(cli: Cli) -> ExitCode {
    let adapter = cli.adapter.as_deref();
    if matches!(cli.cmd, Cmd::Train(_) | Cmd::Experiment(_) | Cmd::Demo(_)) {
        stop_on_signals();
    }
    let done = |r: lamp::Result<()>| r.map(|()| ExitCode::SUCCESS);
    let result = match cli.cmd {
        Cmd::Info => done(tools::info(adapter)),
        Cmd::Train(a) => done(train::run(adapter, a)),
        Cmd::Grad(a) => done(tools::grad(adapter, a)),
        Cmd::Init(a) => done(tools::init(a)),
        Cmd::Score(a) => score::run(adapter, a),
        Cmd::Merge(a) => done(merge::run(a)),
        Cmd::Calibrate(a) => done(calibrate::run(adapter, a)),
        Cmd::Inspect(a) => done(inspect::run(a)),
        Cmd::Export(a) => done(export::run(a)),
        Cmd::Eval(a) => done(eval::eval(adapter, a)),
        Cmd::Demo(a) => done(eval::demo(adapter, a)),
        Cmd::Bench(a) => done(tools::bench(adapter, a)),
        Cmd::Experiment(a) => done(study::experiment(adapter, a)),
        Cmd::Landscape(a) => done(study::landscape(adapter, a)),
    };
    result.unwrap_or_else(|e| match e {
        Error::Interrupted { signal, .. } => {
            lamp::sayln!("lamp: stopped: {e}");
            ExitCode::from((128 + signal).clamp(0, 255) as u8)
        }
        e => {
            lamp::sayln!("lamp: error: {}", message(&e));
            ExitCode::FAILURE
        }
    })
}

/// Whether `sig`'s disposition, inherited from the parent, is to ignore it.
#[cfg(unix)]
fn ignored_at_start(sig: i32) -> bool {
    // SAFETY: a zeroed sigaction is a valid value to be overwritten, and a null new action only
    // reads the current one.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    let read = unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) };
    read == 0 && old.sa_sigaction == libc::SIG_IGN
}

/// SIGINT and SIGTERM ask training to stop at the next step boundary (the last whole epoch's
/// snapshot is written and resumable; the process ends 130 or 143) instead of killing it
/// wherever it is. Another signal a second or more later ends the process at once; one that comes
/// with the first (`timeout` signals the process and then its group; a terminal's Ctrl-C reaches
/// every process of a pipeline) is the same request.
fn stop_on_signals() {
    #[cfg(unix)]
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A signal ignored when lamp started stays ignored: a shell script's background job
        // (`lamp train … &`) is meant to outlive the Ctrl-C that stops the script's foreground.
        if ignored_at_start(sig) {
            continue;
        }
        // SAFETY: the handlers only read the clock (clock_gettime is async-signal-safe) and
        // touch atomics.
        let _ = unsafe {
            signal_hook::low_level::register(sig, move || {
                use std::sync::atomic::Ordering;
                let now = since_epoch_ms().max(1);
                match FIRST_SIGNAL_MS.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => lamp::detect::STOP_SIGNAL.store(sig, Ordering::SeqCst),
                    Err(first) if now.saturating_sub(first) >= 1000 => {
                        signal_hook::low_level::exit(128 + sig)
                    }
                    Err(_) => {}
                }
            })
        };
    }
    // Said at once, from a thread (a handler may not print): the step or the compiling under way
    // can take a minute on a CPU device, and a user who sees nothing presses Ctrl-C again.
    std::thread::spawn(|| loop {
        use std::sync::atomic::Ordering;
        if lamp::detect::STOP_SIGNAL.load(Ordering::SeqCst) != 0 {
            // (on a new line: a terminal's progress line is being rewritten in place)
            use std::io::IsTerminal;
            let nl = if std::io::stderr().is_terminal() {
                "\n"
            } else {
                ""
            };
            lamp::sayln!(
                "{nl}lamp: stopping after the work under way (compiling, or the steps already \
                 submitted: up to a minute or so on a CPU device). Another signal, a second or \
                 more from now, ends the process at once"
            );
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    });
}

/// When the first stop signal came (ms since the Unix epoch), 0 before.
static FIRST_SIGNAL_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn since_epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes to standard output. A reader that went away (`lamp score ... | head -1`) ends the
/// process quietly with the status a SIGPIPE gives (141), as `yes | head` does; any other write
/// error (`> /dev/full`) is an error, exit 1. Output is written only after results are saved.
pub(crate) fn out(text: std::fmt::Arguments) -> lamp::Result<()> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    match o.write_fmt(text).and_then(|()| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        Err(e) => Err(Error::invalid(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// The error as one line, in the command line's words: the library names options as its fields
/// (`` `val_split` ``); where lamp has that option, the flag (`--val-split`) is shown. Messages
/// that come from the GPU driver are left as they are.
fn message(e: &Error) -> String {
    let text = match e {
        Error::Unfinished { path, epochs_done } => format!(
            "{}: training stopped after epoch {epochs_done} and was never calibrated; finish it \
             by running its `lamp train` command again with `--resume` (it writes --out {})",
            path.display(),
            run_files::out_of_partial(path).display()
        ),
        other => other.to_string(),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if matches!(e, Error::Device(_) | Error::OutOfMemory(_)) {
        return text;
    }
    let cli = Cli::command();
    let flags: Vec<String> = cli
        .get_arguments()
        .chain(cli.get_subcommands().flat_map(|c| c.get_arguments()))
        .filter_map(|a| a.get_long())
        .map(str::to_owned)
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(len) = after.find('`') else { break };
        let name = &after[..len];
        let flag = name.replace('_', "-");
        out += &rest[..start];
        if flags.contains(&flag) {
            out += &format!("--{flag}");
        } else {
            out += &rest[start..start + len + 2];
        }
        rest = &after[len + 1..];
    }
    out + rest
}

pub(crate) use lamp::error::count;

/// A warning of the library (`fit::warnings`) in the command line's words (`--lr`, not `lr`).
pub(crate) fn warning_text(w: String) -> String {
    message(&Error::Invalid(w))
}

/// Whether images `side` px a side are far from a model's `size`: half of it or less, or twice
/// or more where training on them would have made a larger model (below the sizes `train` caps
/// at: `patched`, a patch model's). Resized to be scored, their scores mean little.
pub(crate) fn far_from_model(side: u32, size: u32, patched: bool) -> bool {
    let cap = match patched {
        true => train::MAX_PATCH_IMAGE,
        false => lamp::model::arch::MAX_AUTO_SIZE,
    };
    2 * side <= size || (side >= 2 * size && size < cap)
}

/// The start of the warning for `k` of `n` images that are not square: "1 of the 3 images is
/// not square: it is" (stretched …).
pub(crate) fn not_square(k: usize, n: usize, first: &(std::path::PathBuf, u32, u32)) -> String {
    let (path, w, h) = first;
    let one = format!("{} ({w}x{h})", path.display());
    match (k, n) {
        (_, 1) => format!("the image {one} is not square: it is"),
        (1, n) => format!("1 of the {n} images is not square, {one}: it is"),
        (k, n) => format!("{k} of the {n} images are not square (the first {one}): they are"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_option_names_become_flags() {
        let e = Error::setting("val_split", "must be in [0, 1), got 1.5");
        assert_eq!(message(&e), "--val-split must be in [0, 1), got 1.5");
        let e = Error::invalid("lower the learning rate (`lr`), see `apt-get install x`");
        assert_eq!(
            message(&e),
            "lower the learning rate (--lr), see `apt-get install x`"
        );
        let e = Error::Unfinished {
            path: "m.safetensors".into(),
            epochs_done: "2".into(),
        };
        assert!(message(&e).contains("--resume` (it writes --out m.safetensors)"));
        let e = Error::NoAdapter(lamp::device::NO_ADAPTER_HINT.into());
        assert!(message(&e).contains("(--adapter or WGPU_ADAPTER_NAME)"));
        let e = Error::Device("`lr` in a driver's words stays as it is".into());
        assert!(message(&e).starts_with("GPU device: `lr`"));
    }

    #[test]
    fn counts_are_in_words_that_agree() {
        assert_eq!(count(1u64, "epoch"), "1 epoch");
        assert_eq!(count(0u64, "epoch"), "0 epochs");
        assert_eq!(count(3u32, "held-out image"), "3 held-out images");
        let first = (std::path::PathBuf::from("a/b.png"), 40, 28);
        assert_eq!(
            not_square(1, 1, &first),
            "the image a/b.png (40x28) is not square: it is"
        );
        assert_eq!(
            not_square(1, 5, &first),
            "1 of the 5 images is not square, a/b.png (40x28): it is"
        );
        assert_eq!(
            not_square(2, 5, &first),
            "2 of the 5 images are not square (the first a/b.png (40x28)): they are"
        );
    }
}
