//! The corpus's runner: one case is a command line, the exit status it must end with and what
//! its standard error must name; each runs under an address-space and a time limit.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Address-space limit of every case.
const MEMORY_LIMIT: &str = "--as=4294967296";
/// Seconds a case may run.
const TIME_LIMIT: u64 = 60;

pub struct Case {
    pub name: String,
    pub args: Vec<OsString>,
    /// Expected exit status.
    pub code: i32,
    /// Each must appear in standard error.
    pub needles: Vec<String>,
    /// Where standard output goes (None: a pipe that is read).
    pub stdout: Option<PathBuf>,
}

pub fn case(name: &str, args: &[&dyn AsRef<std::ffi::OsStr>], code: i32, needles: &[&str]) -> Case {
    Case {
        name: name.into(),
        args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
        code,
        needles: needles.iter().map(|n| n.to_string()).collect(),
        stdout: None,
    }
}

/// Runs lamp under the limits; returns (exit status or 128 + signal, stderr).
fn run(c: &Case) -> (i32, String) {
    let exe = env!("CARGO_BIN_EXE_lamp");
    let capped = Command::new("prlimit").arg("--version").output().is_ok();
    let mut cmd = if capped {
        let mut k = Command::new("prlimit");
        k.arg(MEMORY_LIMIT).arg("--").arg(exe);
        k
    } else {
        Command::new(exe)
    };
    // Not inside this test's own batch job, if it runs in one (`--shard auto/N` cases).
    cmd.args(&c.args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_MIN");
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    match &c.stdout {
        Some(p) => cmd.stdout(std::fs::File::create(p).unwrap()),
        None => cmd.stdout(Stdio::null()),
    };
    let mut child = cmd.spawn().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(TIME_LIMIT) {
            let _ = child.kill();
            panic!("{}: still running after {TIME_LIMIT} s (a hang)", c.name);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    #[cfg(unix)]
    let code = {
        use std::os::unix::process::ExitStatusExt;
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    };
    #[cfg(not(unix))]
    let code = status.code().unwrap_or(-1);
    (code, err)
}

pub fn check(cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let (code, err) = run(c);
        let mut problems = Vec::new();
        if code != c.code {
            problems.push(format!("exit {code}, expected {}", c.code));
        }
        for bad in [
            "panicked",
            "RUST_BACKTRACE",
            "memory allocation of",
            "Aborted",
        ] {
            if err.contains(bad) {
                problems.push(format!("stderr holds {bad:?}"));
            }
        }
        for n in &c.needles {
            if !err.contains(n.as_str()) {
                problems.push(format!("stderr does not mention {n:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {} — {}",
                c.name,
                problems.join("; "),
                err.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
