//! Argument groups several subcommands share, and the parser of lamp's named choices.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;
use lamp::data::ImageShape;
use lamp::detect::Aggregate;
use lamp::model::{Amp, Arch, Choice, Granularity, Init, LossConfig, Metric};
use lamp::{Error, Result};

/// A value parser for one of lamp's enums, listing its names in `--help`.
pub fn choice<T: Choice + Clone + Send + Sync>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::ALL.iter().map(|c| c.name()))
        .try_map(|s| T::parse(&s).ok_or_else(|| format!("unknown value {s:?}")))
}

/// `--score-agg` of `lamp train`: one of the image scores, or `auto` (the model's default,
/// `Aggregate::default_for`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScoreChoice {
    Auto,
    Fixed(Aggregate),
}

impl ScoreChoice {
    /// The score for a model of `arch`.
    pub fn resolve(self, arch: &Arch) -> Aggregate {
        match self {
            ScoreChoice::Auto => Aggregate::default_for(arch),
            ScoreChoice::Fixed(a) => a,
        }
    }
}

impl Choice for ScoreChoice {
    const ALL: &'static [Self] = &[
        ScoreChoice::Auto,
        ScoreChoice::Fixed(Aggregate::Mean),
        ScoreChoice::Fixed(Aggregate::Max),
        ScoreChoice::Fixed(Aggregate::Topk),
    ];
    fn name(self) -> &'static str {
        match self {
            ScoreChoice::Auto => "auto",
            ScoreChoice::Fixed(a) => a.name(),
        }
    }
}

/// `--init`: how the initial weights are drawn, or `auto` (the model's default,
/// `Init::default_for`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InitChoice {
    Auto,
    Fixed(Init),
}

impl InitChoice {
    /// The choice as the training settings hold it (None: the model's default).
    pub fn fixed(self) -> Option<Init> {
        match self {
            InitChoice::Auto => None,
            InitChoice::Fixed(i) => Some(i),
        }
    }
    /// The initial weights of a model of `arch`.
    pub fn resolve(self, arch: &Arch) -> Init {
        self.fixed().unwrap_or(Init::default_for(arch))
    }
}

impl Choice for InitChoice {
    const ALL: &'static [Self] = &[
        InitChoice::Auto,
        InitChoice::Fixed(Init::Pytorch),
        InitChoice::Fixed(Init::He),
    ];
    fn name(self) -> &'static str {
        match self {
            InitChoice::Auto => "auto",
            InitChoice::Fixed(i) => i.name(),
        }
    }
}

#[derive(Args, Clone)]
#[command(next_help_heading = "Loss")]
pub struct LossArgs {
    /// Error metric.
    #[arg(long, value_parser = choice::<Metric>(), default_value = "mse")]
    pub metric: Metric,
    /// Loss amplification: none (the plain loss) or lamp (-ln(1 - e), the LAMP method). The
    /// default is none: in lamp's Fashion-MNIST and texture tables LAMP changed nothing or cost
    /// a little (README, Results).
    #[arg(long, value_parser = choice::<Amp>(), default_value = "none")]
    pub amp: Amp,
    /// Where the amplification acts.
    #[arg(
        long = "amp-granularity",
        alias = "granularity",
        value_parser = choice::<Granularity>(),
        default_value = "element"
    )]
    pub granularity: Granularity,
}

impl LossArgs {
    pub fn config(&self) -> LossConfig {
        LossConfig {
            metric: self.metric,
            amp: self.amp,
            granularity: self.granularity,
        }
    }
}

#[derive(Args, Clone)]
#[command(next_help_heading = "Model")]
pub struct ArchArgs {
    /// Model: auto (the default: from the training images, fmnist-ae for 28x28 grey ones, else
    /// conv-ae of their size and channels, or of --size and --channels where given; fmnist-ae
    /// for commands without images, such as init, unless --size or --channels is given),
    /// fmnist-ae (1x28x28, the reference model) or conv-ae (--size, --channels, --stages,
    /// --latent).
    #[arg(long)]
    pub arch: Option<String>,
    /// conv-ae input size (pixels, a multiple of 2^stages) [default: with auto, the images';
    /// with --patch, the patch; else 128]. Given with auto, the model auto would choose for
    /// images of this size (rounded down to what its stages allow, at most 256; images are
    /// resized to it).
    #[arg(long, value_parser = whole::<u32>)]
    pub size: Option<u32>,
    /// conv-ae input channels: 1 (grayscale) or 3 (RGB) [default: with auto, the images'; else
    /// 1].
    #[arg(long, value_parser = whole::<u32>)]
    pub channels: Option<u32>,
    /// conv-ae channels per encoder stage, comma-separated [default: by the model's input size:
    /// 4 stages (32,64,128,128) from 64 px, 3 (32,64,128) from 32 px, else 2 (32,64)].
    #[arg(long, value_delimiter = ',')]
    pub stages: Option<Vec<u32>>,
    /// conv-ae latent size [default: by the model's input size: 128 from 64 px, 64 from 32 px,
    /// else 32].
    #[arg(long, value_parser = whole::<u32>)]
    pub latent: Option<u32>,
    /// Initial weights: auto (the default: he for a conv-ae of 4 stages or more, the model for
    /// images of 64 px and up; pytorch for smaller ones and fmnist-ae), he (normal, the variance
    /// that keeps the signal's scale through the layers, zero biases: a deep conv-ae leaves the
    /// mean-image plateau several times sooner) or pytorch (PyTorch's default, uniform; the
    /// first tables' and the reference model's).
    #[arg(long, value_parser = choice::<InitChoice>(), default_value = "auto")]
    pub init: InitChoice,
}

impl ArchArgs {
    /// These options for a model trained on PxP patches: the patch is the model's input, so
    /// --size, where given, must be P.
    pub fn for_patch(&self, p: u32) -> Result<ArchArgs> {
        if self.arch.as_deref() == Some("fmnist-ae") && p != 28 {
            return Err(Error::setting(
                "patch",
                format!("{p}: fmnist-ae takes 28x28 inputs only; --arch conv-ae takes {p}x{p}"),
            ));
        }
        match self.size {
            Some(s) if s != p => Err(Error::setting(
                "size",
                format!(
                    "{s} differs from --patch {p}, which is the model's input size: leave one out"
                ),
            )),
            _ => Ok(ArchArgs {
                size: Some(p),
                ..self.clone()
            }),
        }
    }

    /// The model named, or for `auto` (and by default) the one for images of `shape` (None:
    /// there are no images to look at; fmnist-ae).
    pub fn arch(&self, shape: Option<&ImageShape>) -> Result<Arch> {
        let (size, channels) = (self.size, self.channels);
        let (stages, latent) = (self.stages.clone(), self.latent);
        // A conv-ae shaped by what was asked for, the rest as auto chooses it.
        let shaped = stages.is_some() || latent.is_some();
        match self.arch.as_deref().unwrap_or("auto") {
            // Nothing to go by: the reference model.
            "auto" if shape.is_none() && size.is_none() && channels.is_none() && !shaped => {
                Ok(Arch::fmnist_ae())
            }
            // A size or channel count asked for overrides what the images say (without images:
            // 1 channel, 128 px).
            "auto" => {
                let c = channels.or(shape.map(|s| s.channels)).unwrap_or(1);
                let side = size.or(shape.map(|s| s.median_side)).unwrap_or(128);
                match shaped {
                    true => Arch::conv_ae_for(c, side, stages, latent),
                    false => Arch::for_images(c, side),
                }
            }
            "fmnist-ae" => {
                let fixed = [
                    ("--channels", channels.is_some_and(|c| c != 1)),
                    ("--size", size.is_some_and(|s| s != 28)),
                    // (their defaults are conv-ae's)
                    ("--stages", self.stages.is_some()),
                    ("--latent", self.latent.is_some()),
                ];
                match fixed.iter().find(|(_, given)| *given) {
                    Some((flag, _)) => Err(Error::invalid(format!(
                        "{flag} does not apply to fmnist-ae (1x28x28, its layers fixed): it \
                         sizes a conv-ae (--arch conv-ae, or auto)"
                    ))),
                    None => Ok(Arch::fmnist_ae()),
                }
            }
            // Of the images' channels and size where not given (as auto, but never fmnist-ae).
            "conv-ae" => {
                let c = channels.or(shape.map(|s| s.channels)).unwrap_or(1);
                match (size, shape) {
                    (None, Some(s)) => Arch::conv_ae_for(c, s.median_side, stages, latent),
                    // A size asked for is taken as it is (not rounded), with the stages auto
                    // would choose for it where none are given.
                    _ => {
                        let side = size.unwrap_or(128);
                        let (by_side, latent_by_side) = Arch::stages_for(side);
                        Arch::conv_ae(
                            c,
                            side,
                            stages.unwrap_or(by_side),
                            latent.unwrap_or(latent_by_side),
                        )
                    }
                }
            }
            other => Arch::by_name(other),
        }
    }

    /// The model, and the side the training images are loaded at: the model's input, or with
    /// `--patch P` the images' own size.
    pub fn model_and_size(
        &self,
        patch: Option<u32>,
        shape: Option<&ImageShape>,
    ) -> Result<(Arch, u32)> {
        let Some(p) = patch else {
            let arch = self.arch(shape)?;
            let side = arch.size;
            return Ok((arch, side));
        };
        let shape = shape.ok_or_else(|| Error::setting("patch", "needs a folder of images"))?;
        let side = shape.median_side.min(super::train::MAX_PATCH_IMAGE);
        // (The smallest conv-ae takes 4 px: two stages that halve it.)
        if p < 4 || p > side {
            return Err(Error::setting(
                "patch",
                format!("{p} must be between 4 and the images' size ({side})"),
            ));
        }
        // The model for patches of q px: its input size is q, or the nearest it can take below.
        let model_for = |q: u32| {
            let patch = ImageShape {
                median_side: q,
                ..shape.clone()
            };
            self.for_patch(q)?.arch(Some(&patch))
        };
        let arch = model_for(p)?;
        if arch.size != p {
            let above = arch.size + (1 << arch.stages.len());
            let fits = above <= side && model_for(above).is_ok_and(|m| m.size == above);
            let nearest = match fits {
                true => format!("the nearest are {} and {above}", arch.size),
                false => format!("the nearest is {}", arch.size),
            };
            return Err(Error::setting(
                "patch",
                format!("{p} is not an input size of {}: {nearest}", arch.name),
            ));
        }
        Ok((arch, side))
    }
}

/// Parses a whole number ≥ 0 into `T` (clap's value parser for counts, sizes and seeds), saying
/// what is wrong with a negative or too large value instead of "invalid digit found in string".
pub fn whole<T: TryFrom<u64>>(s: &str) -> std::result::Result<T, String> {
    let v: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("must be a whole number, got {s:?}"))?;
    if v < 0 {
        return Err(format!("cannot be negative, got {v}"));
    }
    u64::try_from(v)
        .ok()
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| format!("{v} is too large"))
}

/// Fails before any work when the output file `out` (of `--out`/`-o`) cannot be written: a
/// folder, a missing or read-only folder. A missing folder is not created: it is more often a
/// typo than a wish.
pub fn check_writable(out: &std::path::Path) -> Result<()> {
    use std::path::Path;
    if out.is_dir() {
        return Err(Error::file(
            out,
            "is a folder (directory); --out (-o) names a file to write",
        ));
    }
    if std::fs::metadata(out).is_ok_and(|m| !m.is_file()) {
        return Err(Error::file(
            out,
            "not a regular file (a device, FIFO or socket): lamp writes its results as whole \
             files, renamed into place, which would replace it; name a file instead",
        ));
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        let what = if dir.exists() {
            format!("{} is not a folder", lamp::fsutil::path_text(dir))
        } else {
            // Not created for the user: a mistyped path would quietly become a new folder.
            let dir = lamp::fsutil::path_text(dir);
            format!("the folder {dir} does not exist; create it first")
        };
        return Err(Error::file(
            out,
            format!("cannot write (for --out): {what}"),
        ));
    }
    let probe = dir.join(format!(".lamp-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| Error::file(dir, format!("cannot write here (for --out): {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Refuses to write `out` (the file of `flag`) over one of `inputs` (images being read, or the
/// model): it would be lost.
pub fn check_not_an_input(
    out: &std::path::Path,
    flag: &str,
    inputs: &[std::path::PathBuf],
) -> Result<()> {
    check_not_read(out, flag, inputs, None)
}

/// As `check_not_an_input`, naming what the inputs are as `label` says (by their extension
/// where it says nothing).
pub fn check_not_read(
    out: &std::path::Path,
    flag: &str,
    inputs: &[std::path::PathBuf],
    label: Option<&str>,
) -> Result<()> {
    let o = lamp::fsutil::entry(out);
    let hit = inputs.iter().find(|p| {
        // The input's own entry, and the file it reads through a link.
        lamp::fsutil::entry(p) == o || p.canonicalize().is_ok_and(|c| c == o)
    });
    if let Some(hit) = hit {
        let what = label.unwrap_or(match hit.extension().and_then(|e| e.to_str()) {
            _ if lamp::data::listing::is_image(hit) => "one of the images being read",
            Some("safetensors") => "the model being read",
            _ => "one of the files being read",
        });
        return Err(Error::file(
            out,
            format!("is {what}: {flag} would replace it; write elsewhere"),
        ));
    }
    Ok(())
}

/// Refuses `out` (of `flag`) inside one of `folders` (or in it, with `directly`), whose images
/// are being read: the images written there (`what`) would be read with them the next time.
pub fn check_not_inside(
    out: &std::path::Path,
    flag: &str,
    folders: &[&std::path::Path],
    directly: bool,
    what: &str,
) -> Result<()> {
    let o = lamp::fsutil::entry(out);
    for f in folders {
        let Ok(f) = f.canonicalize() else {
            continue;
        };
        let caught = match directly {
            true => o.parent() == Some(f.as_path()),
            false => o.starts_with(&f),
        };
        if caught {
            return Err(Error::file(
                out,
                format!(
                    "is {} {}, whose images are being read: {what} would be read as images \
                     the next time; give {flag} a place outside it",
                    if directly { "in" } else { "inside" },
                    lamp::fsutil::path_text(&f)
                ),
            ));
        }
    }
    Ok(())
}

/// An unreadable image's error with the way past it, for commands that read many images and
/// stop at the first bad one. Other errors (a missing folder, a data set file) stay as they are:
/// skipping would not help them.
pub fn with_skip_bad_hint(e: Error) -> Error {
    match e {
        Error::File { path, msg } if path.is_file() && lamp::data::listing::is_image(&path) => {
            Error::File {
                path,
                msg: format!(
                    "{msg} (--skip-bad skips unreadable images, with a warning, and goes on)"
                ),
            }
        }
        other => other,
    }
}
