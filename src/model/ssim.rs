//! SSIM (Wang et al. 2004) of one window, as lamp defines it: an 11×11 Gaussian window of
//! σ = 1.5, C1 = 0.01², C2 = 0.03² for a data range of 1, population (not sample) moments, valid
//! windows only. Shared by the CPU pixel maps and the reference; loss.wgsl computes the same on
//! the device with these constants (copied into its prelude).

/// Window side.
pub const WINDOW: usize = 11;
/// The window's centre, from its first row or column.
pub const HALF: usize = WINDOW / 2;

/// The SSIM map's side for an image side `n`: the valid windows only.
pub fn map_side(n: usize) -> usize {
    n.saturating_sub(WINDOW - 1)
}
/// The Gaussian's standard deviation, in pixels.
pub const SIGMA: f64 = 1.5;
pub const C1: f64 = 1e-4;
pub const C2: f64 = 9e-4;

/// The normalised 11-tap Gaussian (σ = 1.5) of SSIM.
pub fn gauss11() -> [f64; WINDOW] {
    let mut g = [0.0; WINDOW];
    for (i, v) in g.iter_mut().enumerate() {
        let d = i as f64 - HALF as f64;
        *v = (-d * d / (2.0 * SIGMA * SIGMA)).exp();
    }
    let s: f64 = g.iter().sum();
    g.map(|v| v / s)
}

/// SSIM of one 11×11 window and the parts its gradient needs.
pub struct SsimWindow {
    pub s: f64,
    pub mx: f64,
    pub my: f64,
    pub a1: f64,
    pub a2: f64,
    pub b1: f64,
    pub b2: f64,
}

/// The window whose top-left element is `base` in a row-major plane `w` wide; `x` and `y` read
/// the two images.
pub fn ssim_window(
    x: impl Fn(usize) -> f64,
    y: impl Fn(usize) -> f64,
    w: usize,
    base: usize,
) -> SsimWindow {
    let g = gauss11();
    let (mut mx, mut my, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (a, ga) in g.iter().enumerate() {
        for (b, gb) in g.iter().enumerate() {
            let wt = ga * gb;
            let q = base + a * w + b;
            let (xv, yv) = (x(q), y(q));
            mx += wt * xv;
            my += wt * yv;
            sxx += wt * xv * xv;
            syy += wt * yv * yv;
            sxy += wt * xv * yv;
        }
    }
    let (vx, vy, cxy) = (sxx - mx * mx, syy - my * my, sxy - mx * my);
    let (a1, a2) = (2.0 * mx * my + C1, 2.0 * cxy + C2);
    let (b1, b2) = (mx * mx + my * my + C1, vx + vy + C2);
    SsimWindow {
        s: a1 * a2 / (b1 * b2),
        mx,
        my,
        a1,
        a2,
        b1,
        b2,
    }
}
