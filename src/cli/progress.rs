//! Training progress on standard error: in place on a terminal, a line per epoch in a log.

use lamp::detect::Progress;
use std::io::IsTerminal;

/// Progress lines: in place on a terminal, one line per epoch otherwise. `windows`: the model
/// trains on windows of larger images (`--patch`), and each epoch's held-out error is of fixed
/// windows of the held-out images, not of the images as they are scored (the summary's).
pub fn progress_printer(quiet: bool, windows: bool) -> impl FnMut(Progress) {
    let held_out_of = if windows {
        "held-out windows"
    } else {
        "held-out"
    };
    let tty = std::io::stderr().is_terminal();
    // The time to go is extrapolated from this process's own progress since its first report
    // (a resumed run starts past 0), so that the start-up before it (reading images, compiling
    // pipelines, the first step's) does not count as training time.
    let mut first: Option<(f64, std::time::Instant)> = None;
    // `done`: epochs done (fractional).
    let mut eta = move |done: f64, epochs: u32| -> String {
        let (from, start) = *first.get_or_insert((done, std::time::Instant::now()));
        let here = done - from;
        if here <= 0.0 {
            return String::new();
        }
        let left = start.elapsed().as_secs_f64() / here * (epochs as f64 - done).max(0.0);
        match left {
            s if s >= 3600.0 => format!(
                " ETA {:.0} h {:02.0} min",
                (s / 3600.0).floor(),
                (s % 3600.0) / 60.0
            ),
            s if s >= 120.0 => format!(" ETA {:.0} min", s / 60.0),
            s => format!(" ETA {s:.0} s"),
        }
    };
    move |p| {
        if quiet {
            return;
        }
        match p {
            Progress::Step {
                epoch,
                epochs,
                step,
                steps,
                loss,
                images_per_s,
            } if tty => {
                let eta = eta(epoch as f64 + step as f64 / steps as f64, epochs);
                lamp::say!(
                    "\r  epoch {}/{epochs} step {step}/{steps} loss {loss:.6} {images_per_s:.0} img/s{eta}   ",
                    epoch + 1
                );
            }
            // Off a terminal nothing is printed per step, but the first step starts the clock.
            Progress::Step {
                epoch,
                epochs,
                step,
                steps,
                ..
            } => {
                eta(epoch as f64 + step as f64 / steps as f64, epochs);
            }
            Progress::Epoch { report: r, epochs } => {
                if tty {
                    lamp::say!("\r");
                }
                let held_out = r
                    .held_out_error
                    .map_or(String::new(), |v| format!(" {held_out_of} {v:.6}"));
                let eta = if r.epoch < epochs {
                    eta(r.epoch as f64, epochs)
                } else {
                    String::new()
                };
                // Spaces after the line only where they clear a longer step line in place.
                let pad = if tty { "        " } else { "" };
                lamp::sayln!(
                    "  epoch {}/{epochs} loss {:.6}{held_out} clamps {} {:.1} s {:.0} img/s{eta}{pad}",
                    r.epoch, r.mean_loss, r.clamps, r.seconds, r.images_per_s
                );
            }
        }
    }
}
