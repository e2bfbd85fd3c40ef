//! `lamp merge`: joins the outputs of `lamp score --shard I/N` (JSON lines or CSV) into what one
//! run over all the inputs writes: records in the order of their paths, each once.

use super::score::{CSV_HEADER, CSV_HEADER_UNNAMED};
use clap::Args;
use lamp::error::{Error, Result};
use lamp::fsutil::{path_text, regular_file, write_atomic};
use lamp::render::table;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct MergeArgs {
    /// The shards' outputs, all `--json` or all `--csv` (empty files, from empty shards, are
    /// fine).
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Write the merged output to this file (atomically) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The inputs the shards were cut from (as given to `lamp score`): merge then checks that
    /// every image was scored, and nothing else, so a missing or stale part is an error.
    #[arg(long, value_name = "INPUTS", num_args = 1.., allow_hyphen_values = false)]
    inputs: Vec<String>,
}

/// One scored image: its path (the sort key) and its record as the shard wrote it.
struct Record {
    path: String,
    /// A JSON line's text, or a CSV row's fields.
    line: Line,
    from: usize,
    /// The fingerprint of the model that scored it (none in rows of a lamp before they had
    /// one).
    model: Option<String>,
}

enum Line {
    Json(String),
    Csv(Vec<String>),
}

pub fn run(a: MergeArgs) -> Result<()> {
    if let Some(out) = &a.out {
        super::args::check_writable(out)?;
        super::args::check_not_an_input(out, "-o", &a.shards)?;
    }
    let mut records = Vec::new();
    // CSV's header, from the first shard that is CSV; None for JSON lines.
    let mut csv: Option<Option<&[&str]>> = None;
    let mut seen = std::collections::HashMap::new();
    for (k, file) in a.shards.iter().enumerate() {
        regular_file(file)?;
        let id = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        if let Some(first) = seen.insert(id, k) {
            return Err(Error::file(
                file,
                format!(
                    "given twice (also as {}): each shard's output once",
                    a.shards[first].display()
                ),
            ));
        }
        let bytes =
            std::fs::read(file).map_err(|e| Error::file(file, format!("cannot read: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::file(file, "not UTF-8 text: not an output of lamp score"))?;
        if text.trim().is_empty() {
            continue;
        }
        let first_line = text.trim_start().lines().next().unwrap_or_default();
        let header: &[&str] = if first_line.trim_end() == CSV_HEADER_UNNAMED.join(",") {
            &CSV_HEADER_UNNAMED
        } else {
            &CSV_HEADER
        };
        let is_csv = if first_line.starts_with('{') {
            false
        } else if first_line.trim_end() == header.join(",") {
            true
        } else {
            return Err(Error::file(
                file,
                format!(
                    "neither JSON lines nor CSV of lamp score (its first line: {:?})",
                    first_line.chars().take(60).collect::<String>()
                ),
            ));
        };
        let this = is_csv.then_some(header);
        if (*csv.get_or_insert(this)).is_some() != is_csv {
            return Err(Error::file(
                file,
                "is CSV and an earlier shard JSON lines, or the other way round: score every \
                 shard with the same --json or --csv",
            ));
        }
        // (An empty shard's CSV has its header only: the rows' check cannot catch it.)
        if let Some(Some(first)) = csv.filter(|_| is_csv) {
            if first != header {
                return Err(Error::file(
                    file,
                    format!(
                        "its header ({}) is not the earlier shards' ({}): scored by another \
                         version of lamp; score every shard with one",
                        header.join(","),
                        first.join(",")
                    ),
                ));
            }
        }
        if is_csv {
            read_csv(file, &text, k, header, &mut records)?;
        } else {
            read_json(file, &text, k, &mut records)?;
        }
    }
    // The order of `lamp score` over a folder: paths component by component.
    records.sort_by(|a, b| Path::new(&a.path).cmp(Path::new(&b.path)));
    for w in records.windows(2) {
        if w[0].path == w[1].path {
            return Err(Error::file(
                &a.shards[w[1].from],
                format!(
                    "{:?} was scored twice (also in {}): were the shards cut from different \
                     inputs?",
                    w[1].path,
                    a.shards[w[0].from].display()
                ),
            ));
        }
    }
    check_one_model(&a.shards, &records)?;
    if !a.inputs.is_empty() {
        check_complete(&a.inputs, &records)?;
    }
    let count = records.len();
    let bytes = if let Some(Some(header)) = csv {
        let rows: Vec<Vec<String>> = records
            .into_iter()
            .filter_map(|r| match r.line {
                Line::Csv(f) => Some(f),
                Line::Json(_) => None,
            })
            .collect();
        table::csv(header, &rows)?
    } else {
        let mut s = String::new();
        for r in records {
            if let Line::Json(l) = r.line {
                s += &l;
                s += "\n";
            }
        }
        s.into_bytes()
    };
    match &a.out {
        Some(path) => write_atomic(path, &bytes)?,
        None => out!("{}", String::from_utf8_lossy(&bytes))?,
    }
    lamp::sayln!(
        "lamp: merged {count} images from {} file(s)",
        a.shards.len()
    );
    Ok(())
}

/// Every record was scored by one model with one threshold: a part scored by a model trained
/// again, or with another `--threshold`, has scores and verdicts of its own.
fn check_one_model(shards: &[PathBuf], records: &[Record]) -> Result<()> {
    let Some(first) = records.first() else {
        return Ok(());
    };
    let Some(other) = records.iter().find(|r| r.model != first.model) else {
        return Ok(());
    };
    let name = |m: &Option<String>| match m {
        Some(id) => format!("model {id}"),
        None => "a lamp that did not record its model".to_string(),
    };
    Err(Error::file(
        &shards[other.from],
        format!(
            "{:?} was scored by {}, {:?} in {} by {}: parts of one job are scored by one model \
             file with one --threshold (model_id is a fingerprint of both); score the part \
             again",
            other.path,
            name(&other.model),
            first.path,
            shards[first.from].display(),
            name(&first.model)
        ),
    ))
}

/// Every image of `inputs` is in `records` and nothing else is.
fn check_complete(inputs: &[String], records: &[Record]) -> Result<()> {
    let want: std::collections::BTreeSet<String> =
        lamp::data::inputs::expand_inputs(inputs, false)?
            .iter()
            .map(|p| path_text(p))
            .collect();
    let got: std::collections::BTreeSet<String> = records.iter().map(|r| r.path.clone()).collect();
    let missing: Vec<&String> = want.difference(&got).collect();
    let extra: Vec<&String> = got.difference(&want).collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let list = |v: &[&String]| {
        let shown: Vec<&str> = v.iter().take(3).map(|s| s.as_str()).collect();
        format!(
            "{}{}",
            shown.join(", "),
            if v.len() > 3 { ", …" } else { "" }
        )
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "{} of the {} input images are in no shard ({}): a shard is missing or failed",
            missing.len(),
            want.len(),
            list(&missing)
        ));
    }
    if !extra.is_empty() {
        parts.push(format!(
            "{} scored images are not among the inputs ({}): a shard was cut from other inputs",
            extra.len(),
            list(&extra)
        ));
    }
    Err(Error::invalid(format!("--inputs: {}", parts.join("; "))))
}

fn read_json(file: &Path, text: &str, from: usize, records: &mut Vec<Record>) -> Result<()> {
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| Error::file(file, format!("line {}: {what}", n + 1));
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(&format!("not JSON ({e})")))?;
        let path = v
            .get("path")
            .and_then(|p| p.as_str())
            .ok_or_else(|| bad("no \"path\": not a line of lamp score --json"))?;
        let verdict = v
            .get("verdict")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let score = v.get("score").map(|s| s.as_f64().is_some());
        check_row(verdict, score == Some(true)).map_err(|e| bad(&e))?;
        let model = match v.get("model_id") {
            None => None,
            Some(m) => Some(m.as_str().map(str::to_string).ok_or_else(|| {
                bad("its \"model_id\" is not a string: not a line of lamp score --json")
            })?),
        };
        records.push(Record {
            path: path.to_string(),
            line: Line::Json(line.to_string()),
            from,
            model,
        });
    }
    Ok(())
}

fn read_csv(
    file: &Path,
    text: &str,
    from: usize,
    want: &[&str],
    records: &mut Vec<Record>,
) -> Result<()> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r
        .headers()
        .map_err(|e| Error::file(file, format!("not CSV: {e}")))?;
    if header.iter().ne(want.iter().copied()) {
        return Err(Error::file(
            file,
            format!(
                "its header is not lamp score's ({}): not an output of lamp score --csv",
                want.join(",")
            ),
        ));
    }
    for row in r.records() {
        let row = row.map_err(|e| Error::file(file, format!("not CSV: {e}")))?;
        let fields: Vec<String> = row.iter().map(str::to_string).collect();
        if fields.len() != want.len() {
            let line = row.position().map_or(0, |p| p.line());
            return Err(Error::file(
                file,
                format!("line {line}: {} fields, not {}", fields.len(), want.len()),
            ));
        }
        let scored = fields[1].parse::<f32>().is_ok() && fields[2].parse::<f32>().is_ok();
        check_row(&fields[3], scored).map_err(|e| {
            let line = row.position().map_or(0, |p| p.line());
            Error::file(file, format!("line {line}: {e}"))
        })?;
        records.push(Record {
            path: fields[0].clone(),
            model: fields.get(4).cloned(),
            line: Line::Csv(fields),
            from,
        });
    }
    Ok(())
}

/// A row of lamp score's: a verdict it writes, with a score (an unreadable image has none). A
/// shard cut short, or a file of other rows, is not merged as if it were whole.
fn check_row(verdict: &str, scored: bool) -> std::result::Result<(), String> {
    match (verdict, scored) {
        ("normal" | "anomalous", true) | (super::score::UNREADABLE, false) => Ok(()),
        ("normal" | "anomalous", false) => Err(format!("a verdict {verdict:?} without a score")),
        _ => Err(format!(
            "the verdict {verdict:?} is not lamp score's (normal, anomalous or {}): a line cut \
             short, or not an output of lamp score",
            super::score::UNREADABLE
        )),
    }
}
