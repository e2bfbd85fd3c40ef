//! What the network is and what it computes, with no GPU in sight: the architectures and their
//! parameter table (`arch`), the initial weights (`init`), layers and activations (`layer`), the loss vocabulary (`loss`),
//! SSIM's window (`ssim`), the optimizers' hyper-parameters (`optimizer`), and the f64 oracle
//! every kernel is tested against (`reference`, for tests and benches only).

pub mod arch;
pub mod init;
pub mod layer;
pub mod loss;
pub mod optimizer;
pub mod reference;
pub mod ssim;

pub use arch::{Arch, ParamEntry, ParamTable};
pub use init::Init;
pub use layer::{Act, ActCode, Layer, LayerKind};
pub use loss::{Amp, Granularity, LossConfig, Metric};
pub use optimizer::{AdamConfig, Optimizer, OptimizerKind, Schedule, SgdConfig};

/// A choice among a fixed set of lower-case names: how checkpoints, results files and the
/// command line spell the variants of lamp's enums.
pub trait Choice: Copy + Sized + 'static {
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
    /// The variant called `s`, if any.
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_match_serde<T: Choice + serde::Serialize + std::fmt::Debug>() {
        for &v in T::ALL {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.name()), "{v:?}");
            assert_eq!(T::parse(v.name()).map(|p| p.name()), Some(v.name()));
        }
        assert!(T::parse("no such name").is_none());
    }

    #[test]
    fn choice_names_are_the_serialised_names() {
        names_match_serde::<Metric>();
        names_match_serde::<Amp>();
        names_match_serde::<Granularity>();
        names_match_serde::<OptimizerKind>();
        names_match_serde::<Schedule>();
        names_match_serde::<Init>();
    }

    #[test]
    fn sample_error_is_the_mean_element_error() {
        let x = [0.1, 0.5, 0.9, 0.3];
        let y = [0.2, 0.5, 0.6, 0.7];
        let mae = loss::sample_error(Metric::Mae, [1, 2, 2], &x, &y);
        let mse = loss::sample_error(Metric::Mse, [1, 2, 2], &x, &y);
        assert!((mae - (0.1 + 0.0 + 0.3 + 0.4) / 4.0).abs() < 1e-12);
        assert!((mse - (0.01 + 0.0 + 0.09 + 0.16) / 4.0).abs() < 1e-12);
        let img: Vec<f64> = (0..12 * 13)
            .map(|i| ((i * 37) % 101) as f64 / 100.0)
            .collect();
        assert!(loss::sample_error(Metric::Ssim, [1, 12, 13], &img, &img).abs() < 1e-12);
    }
}
