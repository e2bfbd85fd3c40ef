//! The report of `lamp experiment`, rebuilt from results.jsonl after every cell: `results.md`
//! (AUROC per class and configuration, LAMP against its baseline paired by seed, a summary per
//! configuration), `results.png` (AUROC bars, one panel per metric) and `results-difference.png`
//! (LAMP minus baseline per class with the seed-to-seed spread), and `report.html`: the same
//! tables and charts in one self-contained page.

use super::paired::{sample_mean_std, Paired, Verdict};
use super::results::{read_results, CellKey, CellResult};
use crate::error::Result;
use crate::fsutil::write_atomic;
use crate::render::chart::Chart;
use crate::render::html::Page;
use crate::render::{plot, png_bytes};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// AUROCs of one configuration: class → seed → value.
type PerClass = BTreeMap<String, BTreeMap<u64, f64>>;

/// A configuration's name in the tables: metric, amplification, granularity, optimizer, epochs
/// and the recipe where there is one.
fn config(k: &CellKey) -> String {
    format!(
        "{} {} {} {} {}ep{}",
        k.metric,
        k.amp,
        k.granularity,
        k.optimizer,
        k.epochs,
        recipe(k)
    )
}

fn recipe(k: &CellKey) -> String {
    if k.recipe.is_empty() {
        String::new()
    } else {
        format!(" {}", k.recipe)
    }
}

/// The baseline a LAMP configuration is compared with: same metric, optimizer, epochs, recipe.
fn baseline_of(k: &CellKey) -> Option<String> {
    (k.amp == "lamp").then(|| {
        format!(
            "{} none - {} {}ep{}",
            k.metric,
            k.optimizer,
            k.epochs,
            recipe(k)
        )
    })
}

/// The model-free baselines' rows of one measure: row name → class → value.
type BaselineRows = BTreeMap<String, BTreeMap<String, f64>>;

/// The cells of results.jsonl arranged for the tables.
struct Table {
    classes: Vec<String>,
    /// config → class → seed → image AUROC (and pixel AUROC where the data set has masks).
    image: BTreeMap<String, PerClass>,
    pixel: BTreeMap<String, PerClass>,
    aupro: BTreeMap<String, PerClass>,
    /// The baselines' pixel AUROC and AUPRO, and the per-pixel Gaussian's image AUROC.
    base_pixel: BaselineRows,
    base_aupro: BaselineRows,
    base_image: BaselineRows,
    /// LAMP config → its baseline config.
    pairs: BTreeMap<String, String>,
    /// (metric, class) → AUROC of the mean-image baseline.
    mean_image: BTreeMap<(String, String), f64>,
    /// config → its metric, for grouping.
    metric: BTreeMap<String, String>,
}

impl Table {
    fn new(rows: &[CellResult]) -> Table {
        let mut t = Table {
            classes: Vec::new(),
            image: BTreeMap::new(),
            pixel: BTreeMap::new(),
            aupro: BTreeMap::new(),
            base_pixel: BTreeMap::new(),
            base_aupro: BTreeMap::new(),
            base_image: BTreeMap::new(),
            pairs: BTreeMap::new(),
            mean_image: BTreeMap::new(),
            metric: BTreeMap::new(),
        };
        let mut classes = BTreeSet::new();
        for r in rows {
            let (cfg, k) = (config(&r.key), &r.key);
            classes.insert(k.class.clone());
            let put = |m: &mut BTreeMap<String, PerClass>, v: f64| {
                m.entry(cfg.clone())
                    .or_default()
                    .entry(k.class.clone())
                    .or_default()
                    .insert(k.seed, v);
            };
            put(&mut t.image, r.auroc);
            if let Some(p) = r.pixel_auroc {
                put(&mut t.pixel, p);
            }
            if let Some(p) = r.aupro {
                put(&mut t.aupro, p);
            }
            let base = |rows: &mut BaselineRows, name: String, v: Option<f64>| {
                if let Some(v) = v {
                    rows.entry(name).or_default().insert(k.class.clone(), v);
                }
            };
            // The baselines have no model: no initial weights in their names.
            let plain = super::results::name_without_init(&recipe(k));
            let mean_image = format!("mean image ({}){plain}", k.metric);
            let gaussian = format!("per-pixel Gaussian{plain}");
            base(
                &mut t.base_pixel,
                mean_image.clone(),
                r.mean_image_pixel_auroc,
            );
            base(&mut t.base_aupro, mean_image, r.mean_image_aupro);
            base(&mut t.base_image, gaussian.clone(), r.gaussian_auroc);
            base(&mut t.base_pixel, gaussian.clone(), r.gaussian_pixel_auroc);
            base(&mut t.base_aupro, gaussian, r.gaussian_aupro);
            if let Some(b) = baseline_of(k) {
                t.pairs.insert(cfg.clone(), b);
            }
            t.mean_image
                .insert((k.metric.clone(), k.class.clone()), r.mean_image_auroc);
            t.metric.insert(cfg, k.metric.clone());
        }
        // Numeric class names in numeric order, others after them alphabetically.
        let mut classes: Vec<String> = classes.into_iter().collect();
        classes.sort_by_key(|c| c.parse::<u64>().map_err(|_| c.clone()));
        t.classes = classes;
        t
    }

    /// LAMP configs with their baseline present, and per class the paired difference.
    fn comparisons(&self) -> Vec<(&String, BTreeMap<&String, Paired>)> {
        let mut out = Vec::new();
        for (cfg, base) in &self.pairs {
            let (Some(l), Some(b)) = (self.image.get(cfg), self.image.get(base)) else {
                continue;
            };
            let per: BTreeMap<&String, Paired> = self
                .classes
                .iter()
                .filter_map(|c| Some((c, Paired::new(l.get(c)?, b.get(c)?)?)))
                .collect();
            out.push((cfg, per));
        }
        out
    }
}

/// Mean over seeds per class in table order, and the mean over classes where every class has one.
fn auroc_rows(md: &mut String, classes: &[String], table: &BTreeMap<String, PerClass>) {
    for (cfg, per) in table {
        *md += &format!("| {cfg} |");
        let mut means = Vec::new();
        for c in classes {
            match per.get(c) {
                Some(v) => {
                    let v: Vec<f64> = v.values().copied().collect();
                    let (m, s) = sample_mean_std(&v);
                    means.push(m);
                    *md += &format!(" {m:.4} ± {s:.4} (n={}) |", v.len());
                }
                None => *md += " |",
            }
        }
        *md += &if means.len() == classes.len() {
            format!(" {:.4} |\n", sample_mean_std(&means).0)
        } else {
            " — |\n".into()
        };
    }
}

/// The model-free baselines' rows (one value per class, no seeds), with their class mean.
fn baseline_rows(md: &mut String, classes: &[String], rows: &BaselineRows) {
    for (name, per) in rows {
        *md += &format!("| {name} |");
        for c in classes {
            *md += &per.get(c).map_or(" |".into(), |v| format!(" {v:.4} |"));
        }
        let v: Vec<f64> = classes.iter().filter_map(|c| per.get(c).copied()).collect();
        *md += &if v.len() == classes.len() {
            format!(" {:.4} |\n", sample_mean_std(&v).0)
        } else {
            " |\n".into()
        };
    }
}

fn header(md: &mut String, first: &str, classes: &[String], last: &str) {
    *md += &format!("| {first} |");
    for c in classes {
        *md += &format!(" {c} |");
    }
    *md += &format!(" {last} |\n|---|");
    for _ in classes {
        *md += "---|";
    }
    *md += "---|\n";
}

/// results.md, results.png, results-difference.png and report.html from results.jsonl in `out`.
pub fn write(out: &Path, command: &str) -> Result<()> {
    let rows = read_results(&out.join("results.jsonl"))?;
    let t = Table::new(&rows);
    // Every command that contributed cells (each line of results.jsonl keeps its own); running
    // any of them again resumes it.
    let mut commands: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
    commands.push(command);
    commands.sort_unstable();
    commands.dedup();
    let mut md = String::from(
        "# lamp experiment results\n\nReproduce (each command resumes; finished cells are never recomputed):\n\n",
    );
    for c in &commands {
        md += &format!("    {c}\n");
    }
    md += "\nImage AUROC, mean ± standard deviation over seeds (n = seeds run). \"mean image\" is the \
           model-free baseline: the error against the mean training image with the same metric. \
           Per-cell details (loss curve ends, clamp counts, time, images/s, device) are in results.jsonl.\n\n";
    header(&mut md, "configuration", &t.classes, "mean");
    auroc_rows(&mut md, &t.classes, &t.image);
    let metrics: BTreeSet<&String> = t.metric.values().collect();
    for m in &metrics {
        md += &format!("| mean image ({m}) |");
        let per_class: Vec<Option<f64>> = (t.classes.iter())
            .map(|c| t.mean_image.get(&((*m).clone(), c.clone())).copied())
            .collect();
        for b in &per_class {
            md += &b.map_or(" |".into(), |b| format!(" {b:.4} |"));
        }
        // Over the classes, as the configurations' column is, where every class has one.
        let all: Option<Vec<f64>> = per_class.into_iter().collect();
        md += &match all.filter(|v| !v.is_empty()) {
            Some(v) => format!(" {:.4} |\n", v.iter().sum::<f64>() / v.len() as f64),
            None => " |\n".into(),
        };
    }
    baseline_rows(&mut md, &t.classes, &t.base_image);
    if !t.pixel.is_empty() {
        md +=
            "\nPixel AUROC (every pixel of every test image, ground-truth masks), mean ± standard \
               deviation over seeds.\n\n";
        header(&mut md, "configuration", &t.classes, "mean");
        auroc_rows(&mut md, &t.classes, &t.pixel);
        baseline_rows(&mut md, &t.classes, &t.base_pixel);
    }
    if !t.aupro.is_empty() {
        md += "\nAUPRO (per-region overlap up to a false-positive rate of 0.3, normalised), mean \
               ± standard deviation over seeds.\n\n";
        header(&mut md, "configuration", &t.classes, "mean");
        auroc_rows(&mut md, &t.classes, &t.aupro);
        baseline_rows(&mut md, &t.classes, &t.base_aupro);
    }

    let comparisons = t.comparisons();
    md += "\n## LAMP minus baseline, per class\n\n\
           Image AUROC of LAMP minus that of the baseline with the same metric, optimizer and \
           epochs, paired by seed (a seed fixes the initial weights and the data order, so a \
           pair differs only in the loss). *difference*: mean over the paired seeds; *spread*: \
           the larger of the two cells' seed-to-seed standard deviations, and whether the \
           difference exceeds it; *95% CI*: Student-t interval of the paired difference. The \
           verdict is \"better\" or \"worse\" only where that interval excludes zero; with three \
           seeds this needs a difference about 2.5 times the standard deviation of the per-seed \
           differences.\n\n\
           | configuration | class | seeds | difference | spread | exceeds spread | 95% CI | verdict |\n\
           |---|---|---|---|---|---|---|---|\n";
    for (cfg, per) in &comparisons {
        let base = &t.pairs[*cfg];
        for (c, p) in per {
            let sd = |cfg: &String| {
                let v: Vec<f64> = t.image[cfg][*c].values().copied().collect();
                sample_mean_std(&v).1
            };
            let spread = sd(cfg).max(sd(base));
            let (exceeds, ci) = if p.n < 2 {
                ("—".to_string(), "—".to_string())
            } else {
                (
                    if p.mean.abs() > spread { "yes" } else { "no" }.to_string(),
                    format!(
                        "[{:+.4}, {:+.4}]",
                        p.mean - p.half_width,
                        p.mean + p.half_width
                    ),
                )
            };
            // No spread to show where neither cell has two seeds.
            let spread = if t.image[*cfg][*c].len().max(t.image[base][*c].len()) < 2 {
                "—".to_string()
            } else {
                format!("{spread:.4}")
            };
            md += &format!(
                "| {cfg} | {c} | {} | {:+.4} | {spread} | {exceeds} | {ci} | {} |\n",
                p.n,
                p.mean,
                p.verdict().text()
            );
        }
    }

    md += "\n## Summary per configuration\n\n\
           Classes with each verdict (above), and the mean over classes of the per-class \
           difference with a 95% interval across classes (each class weighs the same).\n\n\
           | configuration | classes | LAMP better | LAMP worse | no measurable effect | one seed | mean difference | 95% CI over classes |\n\
           |---|---|---|---|---|---|---|---|\n";
    for (cfg, per) in &comparisons {
        let count = |v: Verdict| per.values().filter(|p| p.verdict() == v).count();
        let diffs: Vec<f64> = per.values().map(|p| p.mean).collect();
        let over = Paired::of(&diffs);
        md += &format!(
            "| {cfg} | {} | {} | {} | {} | {} | {} | {} |\n",
            per.len(),
            count(Verdict::Better),
            count(Verdict::Worse),
            count(Verdict::NoEffect),
            count(Verdict::Unknown),
            over.map_or("—".into(), |p| format!("{:+.4}", p.mean)),
            over.filter(|p| p.n > 1).map_or("—".into(), |p| format!(
                "[{:+.4}, {:+.4}]",
                p.mean - p.half_width,
                p.mean + p.half_width
            )),
        );
    }
    md += "\n![AUROC per class](results.png)\n\nLAMP minus baseline: bars are the paired differences \
           above, whiskers ± the standard deviation of the per-seed differences; \"mean\" is the \
           mean over classes, its whisker ± the standard deviation across classes.\n\n\
           ![LAMP minus baseline](results-difference.png)\n";
    write_atomic(&out.join("results.md"), md.as_bytes())?;

    let mut svgs = Vec::new();
    if !t.classes.is_empty() {
        let bars = auroc_charts(&t, &metrics);
        let pictures = bars.iter().map(Chart::png).collect::<Result<Vec<_>>>()?;
        write_atomic(&out.join("results.png"), &png_bytes(&stack(&pictures))?)?;
        let difference = difference_chart(&t, &comparisons);
        write_atomic(
            &out.join("results-difference.png"),
            &png_bytes(&difference.png()?)?,
        )?;
        svgs.push(bars.iter().map(Chart::svg).collect::<Result<Vec<_>>>()?);
        svgs.push(vec![difference.svg()?]);
    }
    write_atomic(&out.join("report.html"), html(&md, &svgs).as_bytes())
}

/// Pictures one above the other.
fn stack(pictures: &[image::RgbImage]) -> image::RgbImage {
    let w = pictures.iter().map(|p| p.width()).max().unwrap_or(1);
    let h = pictures.iter().map(|p| p.height()).sum::<u32>().max(1);
    let mut img = image::RgbImage::from_pixel(w, h, plot::WHITE);
    let mut y = 0;
    for p in pictures {
        image::imageops::replace(&mut img, p, 0, y);
        y += p.height() as i64;
    }
    img
}

/// The Markdown report as a web page, its two pictures replaced by the charts as SVG.
fn html(md: &str, svgs: &[Vec<String>]) -> String {
    let mut md = md.to_string();
    for (k, picture) in ["results.png", "results-difference.png"].iter().enumerate() {
        // The image reference becomes a marker paragraph that the charts replace.
        if let Some(start) = md.find(&format!("]({picture})")) {
            let open = md[..start].rfind("![").unwrap_or(start);
            md.replace_range(
                open..start + picture.len() + 3,
                &format!("\n\nCHART{k}\n\n"),
            );
        }
    }
    let (title, body) = md.split_once('\n').unwrap_or(("", &md));
    // Raw HTML in the Markdown (a class or configuration named `<img onerror=…>`) is shown as
    // text, never run: the page is opened by people who did not write its data.
    let parser =
        pulldown_cmark::Parser::new_ext(body, pulldown_cmark::Options::ENABLE_TABLES).map(|e| {
            match e {
                pulldown_cmark::Event::Html(t) | pulldown_cmark::Event::InlineHtml(t) => {
                    pulldown_cmark::Event::Text(t)
                }
                e => e,
            }
        });
    let mut body_html = String::new();
    pulldown_cmark::html::push_html(&mut body_html, parser);
    let mut page = Page::new(title.trim_start_matches("# "));
    let mut rest = body_html.as_str();
    for (k, charts) in svgs.iter().enumerate() {
        let marker = format!("<p>CHART{k}</p>");
        if let Some((before, after)) = rest.split_once(&marker) {
            page.raw(before);
            page.charts(charts);
            rest = after;
        }
    }
    // Without classes there are no charts: drop their markers.
    let rest = ["<p>CHART0</p>", "<p>CHART1</p>"]
        .iter()
        .fold(rest.to_string(), |r, m| r.replace(m, ""));
    page.raw(&rest);
    page.finish()
}

/// Bars of the mean image AUROC per class, one chart per metric.
fn auroc_charts(t: &Table, metrics: &BTreeSet<&String>) -> Vec<Chart> {
    let (w, h) = (1100u32, 320u32);
    let mut charts = Vec::new();
    let lo = t
        .image
        .values()
        .flat_map(|per| per.values().flat_map(|s| s.values()))
        .fold(1.0f64, |a, &b| a.min(b));
    let lo = ((lo - 0.02).min(0.5) * 20.0).floor() / 20.0;
    for m in metrics {
        // The baselines first and in greys (one each: recipes differ, e.g. in initial
        // weights), then the LAMP configurations in colours.
        let mut cfgs: Vec<&String> = t.image.keys().filter(|c| t.metric[*c] == **m).collect();
        cfgs.sort_by_key(|c| (t.pairs.contains_key(*c), *c));
        let mut series = plot::SERIES.iter().cycle();
        let mut greys = plot::GREYS.iter().cycle();
        let legend: Vec<(&str, image::Rgb<u8>)> = cfgs
            .iter()
            .map(|c| {
                let colour = if t.pairs.contains_key(*c) {
                    *series.next().unwrap_or(&plot::BLUE)
                } else {
                    *greys.next().unwrap_or(&plot::DARK_GREY)
                };
                (c.as_str(), colour)
            })
            .collect();
        let mut legend = legend;
        legend.push(("mean image (same metric)", plot::BLACK));
        let title = format!("image AUROC, {m} (mean over seeds)");
        let mut c = Chart::categories(w, h, &title, "AUROC", &t.classes, (lo, 1.0), &legend);
        let width = 0.8 / cfgs.len().max(1) as f64;
        for (ci, class) in t.classes.iter().enumerate() {
            for (k, cfg) in cfgs.iter().enumerate() {
                if let Some(v) = t.image[*cfg].get(class) {
                    let v: Vec<f64> = v.values().copied().collect();
                    let x0 = ci as f64 + 0.1 + k as f64 * width;
                    c.bar(x0, x0 + width, sample_mean_std(&v).0, legend[k].1);
                }
            }
            // The model-free baseline across the class's bars.
            if let Some(b) = t.mean_image.get(&((*m).clone(), class.clone())) {
                c.hline_between(ci as f64 + 0.05, ci as f64 + 0.95, *b, plot::BLACK, 2);
            }
        }
        charts.push(c);
    }
    charts
}

/// LAMP minus baseline per class (mean over paired seeds, whisker ± their standard deviation)
/// and the mean over classes, for every LAMP configuration.
fn difference_chart(t: &Table, comparisons: &[(&String, BTreeMap<&String, Paired>)]) -> Chart {
    let mut names = t.classes.clone();
    names.push("mean".into());
    let reach = comparisons
        .iter()
        .flat_map(|(_, per)| per.values().map(|p| p.mean.abs() + p.sd))
        .fold(0.005f64, f64::max);
    // A multiple of 0.002, so that the tick at half of it reads exactly.
    let reach = (reach * 1.1 * 500.0).ceil() / 500.0;
    let legend: Vec<(&str, image::Rgb<u8>)> = comparisons
        .iter()
        .enumerate()
        .map(|(k, (c, _))| (c.as_str(), plot::SERIES[k % plot::SERIES.len()]))
        .collect();
    let mut c = Chart::categories(
        1100,
        380,
        "LAMP minus baseline, image AUROC",
        "AUROC",
        &names,
        (-reach, reach),
        &legend,
    );
    c.hline(0.0, plot::BLACK);
    let width = 0.8 / comparisons.len().max(1) as f64;
    for (k, (_, per)) in comparisons.iter().enumerate() {
        let colour = legend[k].1;
        let bar = |c: &mut Chart, slot: usize, p: &Paired| {
            let x0 = slot as f64 + 0.1 + k as f64 * width;
            c.bar_from(x0, x0 + width, 0.0, p.mean, colour);
            if p.n > 1 {
                let mid = x0 + width / 2.0;
                c.whisker(mid, p.mean - p.sd, p.mean + p.sd, plot::BLACK);
            }
        };
        for (ci, class) in t.classes.iter().enumerate() {
            if let Some(p) = per.get(class) {
                bar(&mut c, ci, p);
            }
        }
        if per.len() == t.classes.len() {
            let diffs: Vec<f64> = per.values().map(|p| p.mean).collect();
            if let Some(p) = Paired::of(&diffs) {
                bar(&mut c, t.classes.len(), &p);
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_from_data_never_runs_as_html() {
        let md = "# results\n\n| configuration | <img src=x onerror=alert(1)> |\n|---|---|\n\
                  | <script>x()</script> | 0.9 |\n\n![AUROC per class](results.png)\n";
        let page = super::html(md, &[]);
        assert!(
            !page.contains("<img src=x") && !page.contains("<script>"),
            "{page}"
        );
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{page}"
        );
        assert!(!page.contains("CHART0"), "{page}");
    }
}
