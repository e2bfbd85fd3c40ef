//! Detection metrics on the host (docs/design.md, "Metrics"): ROC and its area with ties counted as one half,
//! F1-max, precision/recall at a threshold, and AUPRO (the MVTec AD per-region-overlap curve up to
//! a false-positive rate of 0.3, normalised to [0, 1]). Labels: true = anomalous; higher score =
//! more anomalous.

/// Area under the ROC curve (equals scikit-learn's `roc_auc_score`; ties count one half).
/// None when one class is absent.
pub fn auroc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let (fpr, tpr, _) = roc(scores, labels)?;
    Some(trapezoid(&fpr, &tpr))
}

/// The ROC curve at every distinct threshold, from (0, 0) to (1, 1): (fpr, tpr, thresholds),
/// thresholds descending (the first is +inf).
pub fn roc(scores: &[f32], labels: &[bool]) -> Option<(Vec<f64>, Vec<f64>, Vec<f32>)> {
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 || scores.len() != labels.len() {
        return None;
    }
    let (mut fpr, mut tpr, mut th) = (vec![0.0], vec![0.0], vec![f32::INFINITY]);
    for (s, tp, fp) in sweep(scores, labels) {
        fpr.push(fp as f64 / neg as f64);
        tpr.push(tp as f64 / pos as f64);
        th.push(s);
    }
    Some((fpr, tpr, th))
}

/// Every distinct score from the highest down, with the true and false positives of
/// `score >= that score`. Samples tied at a score move together (on the ROC a diagonal step,
/// whose area counts ties as one half).
fn sweep(scores: &[f32], labels: &[bool]) -> Vec<(f32, usize, usize)> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        // Equal by total order, so that a NaN (never == itself) still moves the sweep on.
        while i < idx.len() && scores[idx[i]].total_cmp(&s).is_eq() {
            if labels[idx[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        out.push((s, tp, fp));
    }
    out
}

fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| (xs[1] - xs[0]) * (ys[0] + ys[1]) / 2.0)
        .sum()
}

/// Precision, recall and F1 when `score >= threshold` is called anomalous.
pub fn precision_recall(scores: &[f32], labels: &[bool], threshold: f32) -> (f64, f64, f64) {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s >= threshold, l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            _ => {}
        }
    }
    let p = if tp + fp > 0 {
        tp as f64 / (tp + fp) as f64
    } else {
        0.0
    };
    let r = if tp + fn_ > 0 {
        tp as f64 / (tp + fn_) as f64
    } else {
        0.0
    };
    let f1 = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    (p, r, f1)
}

/// The best F1 over thresholds (each distinct score, `score >= t` anomalous) and that threshold.
pub fn f1_max(scores: &[f32], labels: &[bool]) -> Option<(f64, f32)> {
    let pos = labels.iter().filter(|&&l| l).count();
    if pos == 0 || scores.len() != labels.len() {
        return None;
    }
    let mut best = (0.0, f32::INFINITY);
    for (s, tp, fp) in sweep(scores, labels) {
        let p = tp as f64 / (tp + fp) as f64;
        let r = tp as f64 / pos as f64;
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        if f1 > best.0 {
            best = (f1, s);
        }
    }
    Some(best)
}

/// Average precision, as scikit-learn's `average_precision_score`: the sum over thresholds
/// (highest first, tied scores together) of the recall gained times the precision there. None
/// without anomalies.
pub fn average_precision(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let pos = labels.iter().filter(|&&l| l).count();
    if pos == 0 || scores.len() != labels.len() {
        return None;
    }
    let (mut ap, mut prev_recall) = (0.0, 0.0);
    for (_, tp, fp) in sweep(scores, labels) {
        let recall = tp as f64 / pos as f64;
        ap += (recall - prev_recall) * tp as f64 / (tp + fp) as f64;
        prev_recall = recall;
    }
    Some(ap)
}

/// The highest true-positive rate of any threshold whose false-positive rate is at most
/// `max_fpr` (the ROC's own points, not interpolated): how many anomalies are caught when at most
/// that share of good parts may be flagged. None when one class is absent.
pub fn tpr_at_fpr(scores: &[f32], labels: &[bool], max_fpr: f64) -> Option<f64> {
    let (fpr, tpr, _) = roc(scores, labels)?;
    fpr.iter()
        .zip(&tpr)
        .filter(|(f, _)| **f <= max_fpr + 1e-12)
        .map(|(_, t)| *t)
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))))
}

/// True and false positives and negatives of "score > threshold".
pub fn confusion(scores: &[f32], labels: &[bool], threshold: f32) -> [usize; 4] {
    let mut c = [0usize; 4]; // tp, fp, tn, fn
    for (&s, &l) in scores.iter().zip(labels) {
        let flagged = s > threshold;
        c[match (flagged, l) {
            (true, true) => 0,
            (true, false) => 1,
            (false, false) => 2,
            (false, true) => 3,
        }] += 1;
    }
    c
}

/// Connected components (8-connectivity, as MVTec AD's evaluation) of a binary mask, numbered
/// from 1; 0 is background. Returns the labels and the component count.
pub fn components(mask: &[bool], w: usize, h: usize) -> (Vec<u32>, u32) {
    let mut lab = vec![0u32; mask.len()];
    let mut n = 0;
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || lab[start] != 0 {
            continue;
        }
        n += 1;
        lab[start] = n;
        stack.push(start);
        while let Some(p) = stack.pop() {
            let (x, y) = ((p % w) as isize, (p / w) as isize);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let q = ny as usize * w + nx as usize;
                    if mask[q] && lab[q] == 0 {
                        lab[q] = n;
                        stack.push(q);
                    }
                }
            }
        }
    }
    (lab, n)
}

/// AUPRO up to `max_fpr` (0.3 in MVTec AD), normalised by it. `maps` and `masks` are per image,
/// each w×h. None when there is no anomalous region or no normal pixel.
pub fn aupro(
    maps: &[Vec<f32>],
    masks: &[Vec<bool>],
    w: usize,
    h: usize,
    max_fpr: f64,
) -> Option<f64> {
    // Every pixel: its score, and either "normal" or the region it belongs to.
    let mut region_size: Vec<usize> = Vec::new();
    let mut pixels: Vec<(f32, Option<usize>)> = Vec::new();
    for (map, mask) in maps.iter().zip(masks) {
        let (lab, n) = components(mask, w, h);
        let base = region_size.len();
        region_size.extend(std::iter::repeat_n(0, n as usize));
        for (i, &l) in lab.iter().enumerate() {
            if l > 0 {
                region_size[base + l as usize - 1] += 1;
                pixels.push((map[i], Some(base + l as usize - 1)));
            } else {
                pixels.push((map[i], None));
            }
        }
    }
    let regions = region_size.len();
    let normal = pixels.iter().filter(|p| p.1.is_none()).count();
    if regions == 0 || normal == 0 {
        return None;
    }
    pixels.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Sweep thresholds downwards: PRO is the mean over regions of their covered fraction.
    let (mut fpr, mut pro) = (vec![0.0], vec![0.0]);
    let (mut fp, mut pro_sum) = (0usize, 0.0f64);
    let mut i = 0;
    while i < pixels.len() {
        let s = pixels[i].0;
        while i < pixels.len() && pixels[i].0.total_cmp(&s).is_eq() {
            match pixels[i].1 {
                None => fp += 1,
                Some(r) => pro_sum += 1.0 / region_size[r] as f64,
            }
            i += 1;
        }
        fpr.push(fp as f64 / normal as f64);
        pro.push(pro_sum / regions as f64);
    }
    // Area up to max_fpr, interpolating the segment that crosses it.
    let mut area = 0.0;
    for k in 1..fpr.len() {
        let (x0, x1, y0, y1) = (fpr[k - 1], fpr[k], pro[k - 1], pro[k]);
        if x0 >= max_fpr {
            break;
        }
        if x1 > max_fpr {
            let y = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0);
            area += (max_fpr - x0) * (y0 + y) / 2.0;
            break;
        }
        area += (x1 - x0) * (y0 + y1) / 2.0;
    }
    Some(area / max_fpr)
}

/// The q-quantile (0..1) of `v` with linear interpolation (numpy's default).
pub fn quantile(v: &[f32], q: f64) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let t = pos - lo as f64;
    (s[lo] as f64 * (1.0 - t) + s[hi] as f64 * t) as f32
}

/// Mean and population standard deviation (divided by n), in f64.
pub fn population_mean_std(v: &[f32]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NaN among the scores (callers refuse them first) must still end the sweeps: NaN never
    /// equals itself, which once left the threshold sweep looping while it allocated.
    #[test]
    fn sweeps_end_on_nan_scores() {
        let s = [0.1, f32::NAN, 0.3, f32::NAN, 0.2];
        let l = [false, true, true, false, false];
        assert!(auroc(&s, &l).is_some());
        assert!(f1_max(&s, &l).is_some());
        let maps = vec![vec![0.5, f32::NAN, 0.1, f32::NAN]];
        let masks = vec![vec![true, false, false, true]];
        assert!(aupro(&maps, &masks, 2, 2, 0.3).is_some());
    }

    #[test]
    fn auroc_hand_computed_with_ties() {
        // Perfect separation.
        assert_eq!(
            auroc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Some(1.0)
        );
        // Reversed.
        assert_eq!(
            auroc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]),
            Some(0.0)
        );
        // All tied: one half.
        assert_eq!(auroc(&[0.5; 4], &[false, true, false, true]), Some(0.5));
        // Pairs (pos, neg): (0.8 > 0.3), (0.8 > 0.5), (0.5 = 0.5: ½), (0.5 > 0.3) → 3.5 / 4.
        assert_eq!(
            auroc(&[0.8, 0.5, 0.5, 0.3], &[true, true, false, false]),
            Some(0.875)
        );
        assert_eq!(auroc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn f1_and_precision_recall_hand_computed() {
        let s = [0.9, 0.8, 0.7, 0.6, 0.5];
        let l = [true, false, true, false, false];
        // t = 0.9: p 1, r .5, f1 2/3; t = 0.7: p 2/3, r 1, f1 0.8.
        let (f1, t) = f1_max(&s, &l).unwrap();
        assert!((f1 - 0.8).abs() < 1e-12 && t == 0.7);
        let (p, r, f) = precision_recall(&s, &l, 0.8);
        assert!((p - 0.5).abs() < 1e-12 && (r - 0.5).abs() < 1e-12 && (f - 0.5).abs() < 1e-12);
    }

    #[test]
    fn aupro_hand_computed() {
        // One 2x2 image: pixel 0 anomalous (one region), three normal. The anomalous pixel has the
        // top score: PRO reaches 1 at FPR 0, so the area up to 0.3 is 0.3 and AUPRO is 1.
        let maps = vec![vec![0.9, 0.1, 0.2, 0.3]];
        let masks = vec![vec![true, false, false, false]];
        assert!((aupro(&maps, &masks, 2, 2, 0.3).unwrap() - 1.0).abs() < 1e-12);
        // Anomalous pixel scored lowest: PRO stays 0 until FPR 1, AUPRO 0.
        let maps = vec![vec![0.0, 0.1, 0.2, 0.3]];
        assert!(aupro(&maps, &masks, 2, 2, 0.3).unwrap().abs() < 1e-12);
        // Two regions of 1 and 3 pixels in a 4x1 row... with a normal pixel between:
        // [A, N, B, B] scores [0.5, 0.4, 0.6, 0.1]: at t=.6 PRO = (0 + 1/2)/2 = .25, FPR 0;
        // at t=.5 PRO = .75, FPR 0; at t=.4 FPR 1 → area to .3 = .3*(.75 + .75 + (1-.75)*.3... )
        let maps = vec![vec![0.5, 0.4, 0.6, 0.1]];
        let masks = vec![vec![true, false, true, true]];
        // Curve: (0,0) → (0,.25) → (0,.75) → (1,.75) → (1,1). Area to 0.3 = 0.3 * .75.
        assert!((aupro(&maps, &masks, 4, 1, 0.3).unwrap() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn components_use_8_connectivity() {
        let m = [true, false, false, true, false, true, false, false, false];
        let (_, n) = components(&m, 3, 3);
        assert_eq!(n, 2, "(0,0) and (0,1) touch; (2,1) stands apart");
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 1.0), 4.0);
        assert!((quantile(&[0.0, 10.0], 0.99) - 9.9).abs() < 1e-5);
    }
}
