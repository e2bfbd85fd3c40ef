//! `lamp score`: score images with a trained model, as a table, JSON lines or CSV, with heat maps.

use clap::Args;
use lamp::data::shard::ShardSpec;
use lamp::data::{self, inputs::expand_inputs};
use lamp::detect::eval::PROGRESS_CHUNK;
use lamp::detect::{Aggregate, Checkpoint, Detector, SCORE_BATCH};
use lamp::device::Device;
use lamp::error::{count, Error, Result};
use lamp::fsutil::{ensure_dir, path_text, write_atomic};
use lamp::render::picture::{write_maps, Caption};
use lamp::render::table;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ScoreArgs {
    /// Checkpoint written by `lamp train`.
    model: PathBuf,
    /// Image files, folders of images (with their subfolders), or glob patterns (*, ?, [...],
    /// ** in any part of the path).
    #[arg(required = true)]
    inputs: Vec<String>,
    /// One JSON object per image (JSONL).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header.
    #[arg(long)]
    csv: bool,
    /// Write per image a heat-map overlay, the raw 16-bit anomaly map and the predicted region.
    #[arg(long)]
    maps: Option<PathBuf>,
    /// Exit with status 3 when any image is anomalous.
    #[arg(long)]
    fail_on_anomaly: bool,
    /// Skip images that cannot be read instead of stopping: a warning, and a row of their own
    /// with the verdict `unreadable` and no score.
    #[arg(long)]
    skip_bad: bool,
    /// Images scored per GPU launch (fewer when there are fewer images).
    #[arg(long, value_parser = super::args::whole::<usize>, default_value_t = SCORE_BATCH)]
    batch: usize,
    /// Use this threshold instead of the calibrated one.
    #[arg(long, allow_negative_numbers = true)]
    threshold: Option<f32>,
    /// Score only part I of N (I from 0) of the inputs, sorted by path and cut into N
    /// contiguous parts; `auto/N` reads I from JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or
    /// SLURM_ARRAY_TASK_ID (Slurm job array). Join the parts' --json or --csv with `lamp merge`.
    #[arg(long, value_name = "I/N", value_parser = ShardSpec::parse)]
    shard: Option<ShardSpec>,
    /// Write the table, JSON lines or CSV to this file (atomically: complete or not at all)
    /// instead of standard output; without --json or --csv, a name ending in .csv writes CSV,
    /// .jsonl (or .json, .ndjson) JSON lines.
    #[arg(short, long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(adapter: Option<&str>, a: ScoreArgs) -> Result<ExitCode> {
    // `-o scores.csv` with no format named: the file's extension names it.
    let mut a = a;
    if !a.csv && !a.json {
        let ext = a
            .out
            .as_ref()
            .and_then(|o| o.extension())
            .and_then(|e| e.to_str());
        match ext.map(str::to_lowercase).as_deref() {
            Some("csv") => a.csv = true,
            Some("jsonl" | "json" | "ndjson") => a.json = true,
            _ => {}
        }
    }
    if a.batch == 0 {
        return Err(Error::setting("batch", "must be at least 1"));
    }
    // Before any image is read.
    if let Some(t) = a.threshold {
        lamp::detect::check_threshold(t)?;
    }
    if let Some(out) = &a.out {
        super::args::check_writable(out)?;
    }
    let ck = Checkpoint::load(&a.model, None)?;
    ck.trained(&a.model)?;
    let arch = ck.arch.clone();
    let shape = [arch.channels, ck.image_size(), ck.image_size()];
    let mut paths = expand_inputs(&a.inputs, a.skip_bad)?;
    if let Some(out) = &a.out {
        let model = std::iter::once(a.model.clone());
        let read: Vec<PathBuf> = paths.iter().cloned().chain(model).collect();
        super::args::check_not_an_input(out, "-o", &read)?;
    }
    if let Some(dir) = &a.maps {
        let folders: Vec<&std::path::Path> = (a.inputs.iter())
            .map(std::path::Path::new)
            .filter(|p| p.is_dir())
            .collect();
        let what = "the heat maps written there";
        super::args::check_not_inside(dir, "--maps", &folders, false, what)?;
    }
    for dir in a.inputs.iter().map(std::path::Path::new) {
        if dir.is_dir() && data::inputs::is_mvtec_category(dir) {
            lamp::sayln!(
                "lamp: {}: an MVTec AD category; its ground_truth/ masks are not scored",
                dir.display()
            );
        }
    }
    // Map files are named from the whole job's list, so shards never write the same name.
    let map_names = map_names(&paths);
    if let Some(dir) = &a.maps {
        check_maps_replace_no_input(dir, &paths, &map_names)?;
    }
    let total = paths.len();
    if let Some(spec) = a.shard {
        let shard = spec.resolve(|k| std::env::var(k).ok())?;
        paths = shard.take(paths);
        if paths.is_empty() {
            lamp::sayln!(
                "lamp: shard {}/{} of {total} images is empty: nothing to score",
                shard.index,
                shard.count
            );
            return write_output(&a, String::new(), &[]).map(|()| ExitCode::SUCCESS);
        }
    }
    // The images are decoded on every core while the device compiles the model's pipelines
    // (most of a short run's start on a CPU device): neither waits for the other.
    let batch = a.batch.clamp(1, total);
    let (size, channels) = (ck.image_size(), arch.channels);
    let is_patch_model = ck.meta::<lamp::detect::Patches>("patch").is_some();
    // Grey images among a colour model's normal ones (older checkpoints do not say: none).
    let trained_on_grey = ck
        .metadata
        .get(super::run_files::GREY_IMAGES)
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n > 0);
    let (decoded, det) = std::thread::scope(|s| {
        let setup = s.spawn(|| -> Result<Detector> {
            let device = Device::shared(adapter)?;
            // The batch of a run over everything, so that every shard scores as that run would.
            Detector::from_checkpoint(device, ck, &a.model, batch)
        });
        let decoded = data::decode_in_parallel(&paths, channels, size, !a.skip_bad);
        let det = setup
            .join()
            .unwrap_or_else(|_| Err(Error::Device("device set-up crashed".into())));
        (decoded, det)
    });
    let mut images = Vec::with_capacity(paths.len() * (channels * size * size) as usize);
    let mut kept = Vec::new();
    let mut skipped = 0;
    // Per input in order: the index of its result among the kept, or why it was skipped (a
    // row of its own, so that a line's log accounts for every image it was given).
    let mut entries: Vec<(PathBuf, std::result::Result<usize, String>)> = Vec::new();
    let mut not_square = 0;
    let mut first_not_square = None;
    // Grey images given to a colour model: none of its normal images looked like them.
    let (mut greys, mut first_grey) = (0, None);
    let mut sides = Vec::new();
    // Each kept image's own width and height, for the outlined region's box.
    let mut dims = Vec::new();
    for (i, r) in decoded {
        match r {
            Ok((v, (w, h))) => {
                if channels == 3 && lamp::data::images::colourless(&v) {
                    greys += 1;
                    first_grey.get_or_insert_with(|| paths[i].clone());
                }
                images.extend(v);
                entries.push((paths[i].clone(), Ok(kept.len())));
                kept.push(paths[i].clone());
                not_square += usize::from(w != h);
                if w != h && first_not_square.is_none() {
                    first_not_square = Some((paths[i].clone(), w, h));
                }
                sides.push(w.min(h));
                dims.push((w, h));
            }
            Err(e) if a.skip_bad => {
                lamp::sayln!("lamp: warning: skipped {e}");
                entries.push((paths[i].clone(), Err(e.to_string())));
                skipped += 1;
            }
            Err(e) => return Err(super::args::with_skip_bad_hint(e)),
        }
    }
    if kept.is_empty() {
        return Err(Error::invalid("no readable images to score"));
    }
    if let Some(first) = &first_not_square {
        let which = super::not_square(not_square, kept.len(), first);
        lamp::sayln!(
            "lamp: warning: {which} stretched to the model's {size}x{size} to be scored (maps \
             included); crop images square to keep their proportions"
        );
    }
    if let (Some(first), false) = (&first_grey, trained_on_grey) {
        let which = match (greys, kept.len()) {
            (_, 1) => format!("the image {} is", first.display()),
            (1, n) => format!("1 of the {n} images, {}, is", first.display()),
            (k, n) => format!("{k} of the {n} images (the first {}) are", first.display()),
        };
        lamp::sayln!(
            "lamp: warning: {which} grey and the model was trained on colour images: grey is \
             unlike every normal image it saw, so their scores run high and mean little (a grey \
             defect-free part can be called anomalous, a defect missed); score colour \
             images, or train a model on grey ones (--channels 1)"
        );
    }
    // A model made for other images (e.g. the 28x28 demo model on photos) scores them all the
    // same, resized: say so, since the scores then mean little. Larger images only where
    // training on them would have made a larger model (below the sizes `train` caps at).
    // Image by image: a 1 px or a 6000 px image among ordinary ones is said too.
    let mut far: Vec<(usize, u32)> = (sides.iter().copied().enumerate())
        .filter(|&(_, side)| super::far_from_model(side, size, is_patch_model))
        .collect();
    let advice = "a model trained on images like these (lamp train FOLDER) would judge them \
                  better";
    let these = match far.len() {
        0 => None,
        n if n == sides.len() => {
            sides.sort_unstable();
            let (least, most) = (sides[0], sides[n - 1]);
            // Sizes far apart (16 px and 200 px) are named as a range, not by their middle.
            let these = match 5 * least < 4 * most {
                true => format!("these are {least} to {most} pixels a side"),
                false => format!("these are about {} pixels a side", sides[n / 2]),
            };
            Some(format!("{these}, resized to be scored: {advice}"))
        }
        n => {
            let (i, side) = far.swap_remove(0);
            let first = lamp::fsutil::path_text(&kept[i]);
            let all = sides.len();
            // A stray image among fitting ones: its score, not the model, is in doubt.
            Some(match n {
                1 => format!(
                    "1 of the {all} images, {first}, is {side} px a side, resized to be scored: \
                     its score means little"
                ),
                n => format!(
                    "{n} of the {all} images (the first {first}, {side} px a side) are half that \
                     or less, or twice or more, resized to be scored: their scores mean little"
                ),
            })
        }
    };
    if let Some(these) = these {
        lamp::sayln!("lamp: warning: the model takes images of {size}x{size}; {these}");
    }
    let mut det = det?;
    // Every batch at the job's size (a partial one padded): one plan, so a shard's scores are
    // the single run's to the last bit on any device (a GPU may split a reduction differently
    // at another batch size), and no second plan is compiled for a tail.
    det.engine().pad_batches = true;
    if let Some(t) = a.threshold {
        det.set_threshold(t)?;
    }
    let model_id = det.fingerprint()?;
    // In chunks, so that a terminal shows how far a long run has got.
    let per_image = shape.iter().product::<u32>() as usize;
    let tty = std::io::stderr().is_terminal();
    let mut results = Vec::with_capacity(kept.len());
    for chunk in images.chunks(PROGRESS_CHUNK * per_image) {
        results.extend(det.score_samples(chunk, a.maps.is_some())?);
        if tty && kept.len() > PROGRESS_CHUNK {
            lamp::say!("\r  scored {}/{} images", results.len(), kept.len());
        }
    }
    if tty && kept.len() > PROGRESS_CHUNK {
        lamp::sayln!();
    }
    if let Some(dir) = &a.maps {
        ensure_dir(dir)?;
        let p = shape.iter().product::<u32>() as usize;
        for (i, (path, r)) in kept.iter().zip(&results).enumerate() {
            let name = map_names.get(path).map_or("image", String::as_str);
            let map = r.map.as_deref().unwrap_or_default();
            let x = &images[i * p..][..p];
            let path = path_text(path);
            let caption = Caption {
                name: &path,
                kind: "",
                score: r.score,
                normalised: r.normalised,
                anomalous: r.anomalous,
            };
            write_maps(dir, name, x, shape, map, det.calibration(), &caption)?;
        }
        // The maps outline pixels over the pixel threshold (set on normal images' highest
        // pixels), while a `mean` or `topk` verdict weighs more of the map: a small or faint
        // defect can be outlined in an image judged normal. Say how to judge by the worst pixel.
        let pixel_threshold = det.calibration().pixel_threshold;
        let weighs = match det.score_config().aggregate {
            Aggregate::Mean => Some("the whole image's error".to_string()),
            Aggregate::Topk => Some(format!("the {}", det.score_config().describe_aggregate())),
            Aggregate::Max => None,
        };
        let outlined: Vec<&str> = kept
            .iter()
            .zip(&results)
            .filter(|(_, r)| !r.anomalous)
            .filter(|(_, r)| r.map.iter().flatten().any(|&v| v > pixel_threshold))
            .map(|(path, _)| map_names.get(path).map_or("image", String::as_str))
            .collect();
        let outlined_but_normal = outlined.len();
        if let Some(weighs) = weighs.filter(|_| outlined_but_normal > 0) {
            let (verb, whose) = if outlined_but_normal == 1 {
                ("has", "its map")
            } else {
                ("have", "their maps")
            };
            let shown = outlined.len().min(5);
            let more = match outlined.len() - shown {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            lamp::sayln!(
                "lamp: note: {} judged normal {verb} a region outlined in {whose} (pixels over \
                 the pixel threshold; maps {}{more}); the verdict weighs {weighs}. To judge by \
                 the worst pixel, recalibrate with `lamp calibrate {} NORMAL_IMAGES --score-agg \
                 max --out NEW_MODEL`: no training needed",
                count(outlined_but_normal as u64, "image"),
                outlined[..shown].join(", "),
                a.model.display(),
            );
        }
    }
    let mut any = false;
    // The table's path column, measured once.
    let width = entries
        .iter()
        .map(|(p, _)| path_text(p).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = String::new();
    let mut rows = Vec::new();
    if !a.csv && !a.json {
        out += &format!(
            "{:width$}  {:>12}  {:>10}  verdict\n",
            "path", "score", "normalised"
        );
    }
    for (path, entry) in &entries {
        let (r, k) = match entry {
            Ok(k) => (&results[*k], *k),
            Err(why) => {
                let shown = path_text(path);
                if a.json {
                    let mut row = serde_json::json!({ "path": shown, "score": null, "normalised": null, "anomalous": null, "verdict": UNREADABLE, "error": why, "model_id": model_id });
                    if a.maps.is_some() {
                        row["outlined"] = serde_json::Value::Null;
                    }
                    out += &row.to_string();
                    out += "\n";
                } else if a.csv {
                    rows.push(vec![
                        shown,
                        String::new(),
                        String::new(),
                        UNREADABLE.into(),
                        model_id.clone(),
                    ]);
                } else {
                    out += &format!("{shown:width$}  {:>12}  {:>10}  {UNREADABLE}\n", "-", "-");
                }
                continue;
            }
        };
        let (s, n, bad) = (r.score, r.normalised, r.anomalous);
        any |= bad;
        let verdict = if bad { "anomalous" } else { "normal" };
        let shown = path_text(path);
        if a.json {
            let mut row = serde_json::json!({ "path": shown, "score": s, "normalised": n, "anomalous": bad, "verdict": verdict, "model_id": model_id });
            if let Some((dx, dy)) = r.shift {
                row["shift"] = serde_json::json!([dx, dy]);
            }
            if a.maps.is_some() {
                row["maps"] = map_names
                    .get(path)
                    .map(String::as_str)
                    .unwrap_or("image")
                    .into();
                row["outlined"] =
                    outlined_json(r, size, det.calibration().pixel_threshold, dims[k]);
            }
            out += &row.to_string();
            out += "\n";
        } else if a.csv {
            rows.push(vec![
                shown,
                s.to_string(),
                format!("{n:.6}"),
                verdict.into(),
                model_id.clone(),
            ]);
        } else {
            out += &format!("{shown:width$}  {s:>12.6}  {n:>10.4}  {verdict}\n");
        }
    }
    write_output(&a, out, &rows)?;
    if skipped > 0 {
        lamp::sayln!(
            "lamp: skipped {}",
            super::count(skipped as u64, "unreadable image")
        );
    }
    Ok(if any && a.fail_on_anomaly {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the map's picture outlines, for a JSON row: the pixels over the pixel threshold (how
/// many, their share of the map) and the box that holds them in the image's own pixels
/// ([left, top, right, bottom), right and bottom exclusive); null where nothing is outlined.
fn outlined_json(
    r: &lamp::detect::Score,
    side: u32,
    pixel_threshold: f32,
    (w, h): (u32, u32),
) -> serde_json::Value {
    let map = r.map.as_deref().unwrap_or_default();
    match lamp::detect::score::outlined_region(map, side, pixel_threshold) {
        Some(g) => serde_json::json!({
            "pixels": g.pixels,
            "fraction": g.pixels as f64 / map.len().max(1) as f64,
            "box": g.in_image(side, w, h),
        }),
        None => serde_json::Value::Null,
    }
}

/// The verdict of an image `--skip-bad` skipped: its row has no score.
pub const UNREADABLE: &str = "unreadable";

/// The header of `lamp score --csv` (and of what `lamp merge` joins). `model_id` is the
/// detector's fingerprint (`Detector::fingerprint`), the same on every row of one job.
pub const CSV_HEADER: [&str; 5] = ["path", "score", "normalised", "verdict", "model_id"];
/// The header of lamp score --csv before rows named their model (lamp merge still joins them).
pub const CSV_HEADER_UNNAMED: [&str; 4] = ["path", "score", "normalised", "verdict"];

/// Writes the table or JSON lines in `text`, or the CSV of `rows`, to `--out` or standard output.
fn write_output(a: &ScoreArgs, text: String, rows: &[Vec<String>]) -> Result<()> {
    let bytes = if a.csv {
        table::csv(&CSV_HEADER, rows)?
    } else {
        text.into_bytes()
    };
    match &a.out {
        Some(path) => write_atomic(path, &bytes),
        None => out!("{}", String::from_utf8_lossy(&bytes)),
    }
}

/// Unique file-name stems for the images' maps: the image's stem; where any images share one
/// (an MVTec AD tree: train/good/000.png, test/good/000.png, test/crack/000.png), every image's
/// folders below the images' common folder before it (`train_good_000`, `test_good_000`,
/// `test_crack_000`, and `test_good_029` though no other image is called 029: one rule for a
/// folder's names); `-2`, `-3`, … after that only if names still collide.
/// Refuses a heat map that would be written over one of the images being scored (images named
/// one by one, a folder's `x_overlay.png` beside `x.png`).
fn check_maps_replace_no_input(
    dir: &std::path::Path,
    paths: &[PathBuf],
    names: &std::collections::HashMap<PathBuf, String>,
) -> Result<()> {
    let inputs: std::collections::HashSet<PathBuf> =
        paths.iter().map(|p| lamp::fsutil::entry(p)).collect();
    for name in names.values() {
        for suffix in lamp::render::picture::MAP_SUFFIXES {
            let map = dir.join(format!("{name}{suffix}"));
            if inputs.contains(&lamp::fsutil::entry(&map)) {
                return Err(Error::file(
                    &map,
                    "is one of the images being scored: --maps would replace it with a heat \
                     map; give --maps a folder of its own",
                ));
            }
        }
    }
    Ok(())
}

fn map_names(paths: &[PathBuf]) -> std::collections::HashMap<PathBuf, String> {
    let stem = |p: &PathBuf| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into())
    };
    let mut count = std::collections::HashMap::new();
    for p in paths {
        *count.entry(stem(p)).or_insert(0) += 1;
    }
    let any_shared = count.values().any(|&n| n > 1);
    // The deepest folder that holds every image.
    let mut common: Option<PathBuf> = None;
    for p in paths {
        let dir = p.parent().unwrap_or(std::path::Path::new("")).to_path_buf();
        common = Some(match common {
            None => dir,
            Some(c) => c
                .components()
                .zip(dir.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    let common = common.unwrap_or_default();
    let mut used = std::collections::HashSet::new();
    let mut names = std::collections::HashMap::new();
    for path in paths {
        let s = stem(path);
        let folders: Vec<String> = path
            .parent()
            .and_then(|d| d.strip_prefix(&common).ok())
            .map(|rel| {
                // Folder names only: a root, a drive, `.` or `..` never reaches a file name (it
                // could point outside --maps).
                rel.components()
                    .filter_map(|c| match c {
                        std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let base = if any_shared && !folders.is_empty() {
            format!("{}_{s}", folders.join("_"))
        } else {
            s
        };
        let mut name = base.clone();
        let mut k = 1;
        while !used.insert(name.clone()) {
            k += 1;
            name = format!("{base}-{k}");
        }
        names.insert(path.clone(), name);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::map_names;
    use std::path::PathBuf;

    #[test]
    fn map_names_follow_one_rule_per_set() {
        let names = |ps: &[&str]| {
            let paths: Vec<PathBuf> = ps.iter().map(PathBuf::from).collect();
            let n = map_names(&paths);
            paths.iter().map(|p| n[p].clone()).collect::<Vec<_>>()
        };
        // Stems shared anywhere: every image named by its folders, 029 too.
        assert_eq!(
            names(&["t/good/000.png", "t/good/029.png", "t/spot/000.png"]),
            ["good_000", "good_029", "spot_000"]
        );
        // No stem shared: the stems alone.
        assert_eq!(names(&["t/good/000.png", "t/spot/001.png"]), ["000", "001"]);
        // Shared within one folder (000.png and 000.jpg): numbered.
        assert_eq!(names(&["t/000.png", "t/000.jpg"]), ["000", "000-2"]);
    }
}
