//! Training recipes as TOML files: `lamp train --config recipe.toml` reads options from a file
//! (flags on the command line override them), `--print-config` prints the full recipe of a
//! command line with every default, and each checkpoint keeps its recipe for `lamp inspect`, so
//! that a run can be repeated from its checkpoint.

use clap::{ArgAction, ArgMatches, Command};
use std::ffi::OsString;
use std::sync::OnceLock;

/// This process's `lamp train` recipe, as `--print-config` prints it (set by `main`).
pub static RECIPE: OnceLock<String> = OnceLock::new();

/// Set when `--out` came from a recipe file rather than the command line: a recipe exported
/// from a model names that model, and a run must not replace it unasked.
pub static OUT_FROM_RECIPE: OnceLock<bool> = OnceLock::new();

/// The FILE of `train --config FILE` in `args`, if any.
pub fn config_file(args: &[OsString]) -> Option<std::path::PathBuf> {
    let at = args.iter().position(|a| a == "train")?;
    args[at..].iter().enumerate().find_map(|(i, a)| {
        let s = a.to_str()?;
        match s.strip_prefix("--config") {
            Some("") => args.get(at + i + 1).map(std::path::PathBuf::from),
            Some(rest) => rest.strip_prefix('=').map(std::path::PathBuf::from),
            None => None,
        }
    })
}

/// `args` with the options of `train --config FILE` inserted right after `train`, so that the
/// same options given on the command line (later) override them. Keys are the long option names
/// (`min-steps` or `min_steps`); `data` is the positional DATA; `true` turns a flag on; arrays
/// become comma-separated lists.
pub fn expand_config(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let (Some(at), Some(file)) = (args.iter().position(|a| a == "train"), config_file(&args))
    else {
        return Ok(args);
    };
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{shown}: not a TOML recipe: {e}"))?;
    let table_has_out = table.contains_key("out");
    // Keys are `lamp train`'s long options: one it does not have is named with the file (clap
    // would name only the flag, as if typed).
    let mut cli = <super::Cli as clap::CommandFactory>::command();
    // (Built, so that the global options, --adapter among them, reach the subcommands.)
    cli.build();
    let known: Vec<String> = cli
        .find_subcommand("train")
        .map(|t| {
            t.get_arguments()
                .filter_map(|a| a.get_long().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // Relative paths in a recipe are the recipe's folder's, where they name something there.
    let folder = file.parent().unwrap_or(std::path::Path::new(""));
    let mut options = Vec::new();
    for (key, value) in table {
        let flag = format!("--{}", key.replace('_', "-"));
        if key != "data" && !known.iter().any(|k| *k == flag[2..]) {
            return Err(format!(
                "{shown}: {key:?} is not an option of lamp train ({flag} is unknown): keys are \
                 train's long options (min-steps or min_steps, …) and data"
            ));
        }
        let plain = |v: &toml::Value| match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            _ => Err(format!(
                "{shown}: {key}: expected a string, number or list of them"
            )),
        };
        let value = match &value {
            toml::Value::Boolean(true) => None,
            toml::Value::Boolean(false) => continue,
            toml::Value::Array(items) => Some(
                items
                    .iter()
                    .map(plain)
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
            ),
            v => Some(plain(v)?),
        };
        let value = match (key.as_str(), value) {
            ("data" | "idx_dir" | "idx-dir", Some(v)) if std::path::Path::new(&v).is_relative() => {
                match folder.join(&v).canonicalize() {
                    Ok(there) => Some(there.to_string_lossy().into_owned()),
                    Err(_) => Some(v),
                }
            }
            (_, v) => v,
        };
        match (key.as_str(), value) {
            ("data", Some(v)) => options.push(OsString::from(v)),
            (_, Some(v)) => options.extend([OsString::from(flag), OsString::from(v)]),
            (_, None) => options.push(OsString::from(flag)),
        }
    }
    let given = |a: &OsString| {
        a.to_str()
            .is_some_and(|s| s.starts_with("-o") || s == "--out" || s.starts_with("--out="))
    };
    let _ = OUT_FROM_RECIPE.set(table_has_out && !args[at + 1..].iter().any(given));
    let mut out = args[..=at].to_vec();
    out.extend(options);
    out.extend_from_slice(&args[at + 1..]);
    Ok(out)
}

/// A relative path made absolute and canonical (`run/../data` is `data`), so that a recipe (and a
/// checkpoint's copy of it) names the same files from any folder. `data` may be a data set's
/// name (`fashion-mnist:0`), so it changes only where such a file or folder exists; `--out`
/// always (it may not exist yet), by its folder.
fn absolute(v: String, always: bool) -> String {
    let p = std::path::Path::new(&v);
    if p.is_absolute() || !(always || p.exists()) {
        return v;
    }
    // The output by its folder: a link named as --out stays the name its snapshot and lock
    // are made from.
    let in_folder = || {
        let name = p.file_name()?;
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        Some(dir.canonicalize().ok()?.join(name))
    };
    let canonical = if always {
        in_folder()
    } else {
        p.canonicalize().ok()
    };
    match canonical.map_or_else(|| std::path::absolute(p), Ok) {
        Ok(a) => a.to_string_lossy().into_owned(),
        Err(_) => v,
    }
}

/// The full recipe of a `lamp train` command line, defaults included, as TOML that
/// `--config` reads back.
pub fn from_matches(cmd: &Command, m: &ArgMatches) -> String {
    let mut out = format!(
        "# lamp train recipe (lamp {}): `lamp train --config FILE`; options given on the \
         command line as well override it\n",
        env!("CARGO_PKG_VERSION")
    );
    for a in cmd.get_arguments() {
        let id = a.get_id().as_str();
        // Not the recipe: how this process runs (a resumed run repeats the same recipe).
        if matches!(
            id,
            "help"
                | "version"
                | "config"
                | "print_config"
                | "adapter"
                | "resume"
                | "quiet"
                | "snapshot_every"
        ) {
            continue;
        }
        let key = if a.is_positional() {
            id.to_string()
        } else {
            match a.get_long() {
                Some(l) => l.to_string(),
                None => continue,
            }
        };
        if matches!(a.get_action(), ArgAction::SetTrue) {
            out += &format!("{key} = {}\n", m.get_flag(id));
            continue;
        }
        // With the model chosen from the images, the conv-ae shape defaults say nothing.
        let auto = m
            .get_raw("arch")
            .and_then(|mut v| v.next())
            .is_none_or(|v| v == "auto");
        let shape = matches!(id, "size" | "channels" | "stages" | "latent");
        let given = m.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        if auto && shape && !given {
            out += &format!("# {key}: chosen from the images (arch auto)\n");
            continue;
        }
        match m.get_raw(id) {
            Some(values) => {
                let v: Vec<String> = values
                    .map(|v| {
                        let v = v.to_string_lossy().into_owned();
                        if matches!(id, "data" | "idx_dir" | "out") {
                            absolute(v, id == "out")
                        } else {
                            v
                        }
                    })
                    .collect();
                out += &format!("{key} = {}\n", toml_value(&v.join(",")));
            }
            None => {
                let meaning = match id {
                    "patch" => "not given: whole images, no patches",
                    "idx_dir" => "not given",
                    _ => "not given (chosen when training starts)",
                };
                out += &format!("# {key}: {meaning}\n");
            }
        }
    }
    out
}

/// A number as a TOML number, anything else as a TOML string.
pub(super) fn toml_value(v: &str) -> String {
    let numeric = v.parse::<f64>().is_ok_and(f64::is_finite)
        && format!("x = {v}").parse::<toml::Table>().is_ok();
    if numeric {
        v.to_string()
    } else {
        toml::Value::String(v.to_string()).to_string()
    }
}

/// `recipe` with its `init` line saying `init` (added where it has none): the command line's
/// `auto` depends on the model and may change meaning, so a checkpoint's recipe names the
/// initial weights its run started from, and repeating it draws the same ones.
pub fn with_init(recipe: &str, init: lamp::model::Init) -> String {
    use lamp::model::Choice;
    with_value(recipe, "init", &format!("\"{}\"", init.name()))
}

/// `recipe` with `key = value` (TOML) in place of its line for `key`, set or commented out
/// (`# key: …`), or added at its end.
pub fn with_value(recipe: &str, key: &str, value: &str) -> String {
    let line = format!("{key} = {value}");
    let mut found = false;
    let mut out: Vec<String> = recipe
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{key} =")) || l.starts_with(&format!("# {key}:")) {
                found = true;
                line.clone()
            } else {
                l.to_string()
            }
        })
        .collect();
    if !found {
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// `recipe` with its `out` line made a comment: a finished model's recipe repeats its run, and
/// run as it is it would write over that model (or one of the same name) without a word.
pub fn without_out(recipe: &str) -> String {
    let lines: Vec<String> = recipe
        .lines()
        .map(|l| match l.strip_prefix("out = ") {
            Some(was) => format!(
                "# out = {was}: the model this recipe made; give --out (or an `out` line) to \
                 train again"
            ),
            None => l.to_string(),
        })
        .collect();
    lines.join("\n") + "\n"
}
