// loss.wgsl: the fused amplified reconstruction loss (docs/design.md, "The method") and its
// gradient with respect to the last layer's pre-sigmoid output, in two dispatches and no host
// round trip. The last layer must end in a sigmoid (its backward is fused in; LossSpec checks).
//
//   e      per-element error: mae |d|, mse d^2, ssim (1 - SSIM_p) / 2 over valid 11x11 windows,
//          with d = y - x, x the input [BATCH, C, H, W] at X_OFF, y the reconstruction at Y_OFF
//   l_i    the sample's plain error, mean of e over its PE elements (PE = C*H*W, or the SSIM map)
//   A(e)   none: e;  lamp: -ln(1 - clamp(e, 0, 1 - 1e-6)), A' = 1/(1 - e) inside, 0 outside
//   L      element: mean over batch and elements of A(e); sample: mean_i A(l_i); batch: A(mean l_i)
//
// loss_elements (one workgroup per sample): e, l_i, the sample's mean A(e), its clamp count, and
//   the gradient's per-element part into dz: a * de/dy (mae/mse), where a = A'(e) for `element`
//   granularity and 1 otherwise; for ssim the window's coefficients of
//   dSSIM_p/dy_q = w(q - p) * (dS/dmu_y + beta_p * (y_q - mu_y) + gamma_p * (x_q - mu_x)),
//   beta = 2 dS/dvar_y, gamma = dS/dcov, each times a, and mu_x, mu_y, into the scratch at S_OFF
//   (kept centred on the means: summing alpha + beta*y_q would cancel in f32).
// loss_finalize (one workgroup per sample): the batch loss, the sample's factor f_i = dL/de / a
//   (1/(B*PE), times A'(l_i) for `sample` or A'(mean l) for `batch`), then
//   dz = f_i * (per-element part) * y * (1 - y), the sigmoid's backward fused in. For ssim the
//   per-element part is -1/2 * sum_p w(q - p) * a_p * (the bracket above), the Gaussian window
//   applied transposed, exactly.
//
// stats: the header slots STAT_LOSS (this step's loss), STAT_LOSS_SUM and STAT_STEPS (running
// sums), STAT_CLAMP_SUM (running clamp count), STAT_NONFINITE (flag: any non-zero bits),
// STAT_CLAMPS (this step's clamp count); then from STATS_HEADER: l_i at [i], the mean A(e) of
// sample i at [STATS_B + i], its clamp count at [2 * STATS_B + i].

override METRIC: u32;          // METRIC_MAE, METRIC_MSE or METRIC_SSIM
override AMP: u32;             // AMP_NONE or AMP_LAMP
override GRAN: u32;            // GRAN_ELEMENT, GRAN_SAMPLE or GRAN_BATCH
override BATCH: u32;
override STATS_B: u32;     // batch capacity of the stats buffer
override C: u32;
override H: u32;
override W: u32;
override X_OFF: u32;
override Y_OFF: u32;
override DZ_OFF: u32;
override S_OFF: u32;       // ssim scratch: [BATCH, 5, C, H - WIN + 1, W - WIN + 1]
override GRAD: bool;           // false when only scoring

// `acts` and `stats` are declared in the prelude, as are CLAMP_MAX and SSIM_WIN, SSIM_SIGMA,
// SSIM_C1 = (0.01 * data range 1)^2 and SSIM_C2 = (0.03 * data range 1)^2.

override WG: u32;           // invocations per sample: 64 or 256 (kernels/loss.rs, `lanes`)
const MAX_WG: u32 = 256u;
const WIN: u32 = SSIM_WIN;

var<workgroup> red_e: array<f32, MAX_WG>;
var<workgroup> red_a: array<f32, MAX_WG>;
var<workgroup> red_c: array<f32, MAX_WG>;

fn amp_value(e: f32) -> f32 {
    if (AMP == AMP_NONE) { return e; }
    return -log(1.0 - clamp(e, 0.0, CLAMP_MAX));
}

fn amp_grad(e: f32) -> f32 {
    if (AMP == AMP_NONE) { return 1.0; }
    return select(0.0, 1.0 / (1.0 - e), e >= 0.0 && e <= CLAMP_MAX);
}

fn clamped(e: f32) -> f32 {
    return select(0.0, 1.0, AMP == AMP_LAMP && e > CLAMP_MAX);
}

fn map_h() -> u32 { return H - WIN + 1u; }
fn map_w() -> u32 { return W - WIN + 1u; }
// Elements the sample's error is averaged over.
fn elems() -> u32 {
    if (METRIC == METRIC_SSIM) { return C * map_h() * map_w(); }
    return C * H * W;
}

fn gauss() -> array<f32, WIN> {
    var g: array<f32, WIN>;
    var s = 0.0;
    for (var i = 0u; i < WIN; i++) {
        let d = f32(i) - f32(SSIM_HALF);
        g[i] = exp(-d * d / (2.0 * SSIM_SIGMA * SSIM_SIGMA));
        s += g[i];
    }
    for (var i = 0u; i < WIN; i++) { g[i] = g[i] / s; }
    return g;
}

fn reduce(li: u32) {
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
        if (li < half) {
            red_e[li] += red_e[li + half];
            red_a[li] += red_a[li + half];
            red_c[li] += red_c[li + half];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(WG)
fn loss_elements(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = wg.x;
    let base = i * C * H * W;
    let elementwise_amp = AMP == AMP_LAMP && GRAN == GRAN_ELEMENT;
    var se = 0.0;
    var sa = 0.0;
    var sc = 0.0;
    if (METRIC != METRIC_SSIM) {
        for (var q = li; q < C * H * W; q += WG) {
            let d = acts[Y_OFF + base + q] - acts[X_OFF + base + q];
            var e: f32;
            var dedy: f32;
            if (METRIC == METRIC_MAE) { e = abs(d); dedy = sign(d); } else { e = d * d; dedy = 2.0 * d; }
            se += e;
            var a = 1.0;
            if (elementwise_amp) { sa += amp_value(e); sc += clamped(e); a = amp_grad(e); }
            if (GRAD) { acts[DZ_OFF + base + q] = a * dedy; }
        }
    } else {
        let g = gauss();
        let mp = map_h() * map_w();
        for (var t = li; t < C * mp; t += WG) {
            let c = t / mp;
            let py = (t % mp) / map_w();
            let px = (t % mp) % map_w();
            // Moments of values shifted by the window's centre pixel: variances and covariance
            // are shift-invariant, and the shift avoids E[y²] − μ² cancelling in f32 where a
            // window is nearly flat (as an untrained model's output is).
            let centre = base + (c * H + py + SSIM_HALF) * W + px + SSIM_HALF;
            let x0 = acts[X_OFF + centre];
            let y0 = acts[Y_OFF + centre];
            var mx = 0.0;
            var my = 0.0;
            var sxx = 0.0;
            var syy = 0.0;
            var sxy = 0.0;
            for (var a = 0u; a < WIN; a++) {
                let row = base + (c * H + py + a) * W + px;
                for (var b = 0u; b < WIN; b++) {
                    let w = g[a] * g[b];
                    let x = acts[X_OFF + row + b] - x0;
                    let y = acts[Y_OFF + row + b] - y0;
                    mx += w * x;
                    my += w * y;
                    sxx += w * x * x;
                    syy += w * y * y;
                    sxy += w * x * y;
                }
            }
            let vx = sxx - mx * mx;
            let vy = syy - my * my;
            let cxy = sxy - mx * my;
            mx += x0;
            my += y0;
            let a1 = 2.0 * mx * my + SSIM_C1;
            let a2 = 2.0 * cxy + SSIM_C2;
            let b1 = mx * mx + my * my + SSIM_C1;
            let b2 = vx + vy + SSIM_C2;
            let s = (a1 * a2) / (b1 * b2);
            let e = (1.0 - s) * 0.5;
            se += e;
            var amp = 1.0;
            if (elementwise_amp) { sa += amp_value(e); sc += clamped(e); amp = amp_grad(e); }
            if (GRAD) {
                let ds_dmy = 2.0 * mx * a2 / (b1 * b2) - s * 2.0 * my / b1;
                let ds_dvy = -s / b2;
                let ds_dcxy = 2.0 * a1 / (b1 * b2);
                let sbase = S_OFF + i * 5u * C * mp;
                acts[sbase + t] = amp * ds_dmy;
                acts[sbase + C * mp + t] = amp * 2.0 * ds_dvy;
                acts[sbase + 2u * C * mp + t] = amp * ds_dcxy;
                acts[sbase + 3u * C * mp + t] = mx;
                acts[sbase + 4u * C * mp + t] = my;
            }
        }
    }
    red_e[li] = se;
    red_a[li] = sa;
    red_c[li] = sc;
    reduce(li);
    if (li == 0u) {
        let pe = f32(elems());
        stats[STATS_HEADER + i] = red_e[0] / pe;
        stats[STATS_HEADER + STATS_B + i] = red_a[0] / pe;
        stats[STATS_HEADER + 2u * STATS_B + i] = red_c[0];
    }
}

@compute @workgroup_size(WG)
fn loss_finalize(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = wg.x;
    let first = i == 0u && li == 0u;
    // Batch statistics (BATCH values, always summed in the same order): by the invocation that
    // records them, and for batch granularity by all, whose gradient factor needs the batch's
    // mean error. Every invocation reading them cost more than the rest of the launch
    // (fmnist-ae batch 64: 256 x 64 invocations x 64 samples; BENCHMARKS.md).
    var mean_l = 0.0;
    var loss = 0.0;
    var clamps = 0.0;
    let needed = first || (AMP == AMP_LAMP && GRAN == GRAN_BATCH);
    for (var j = 0u; j < select(0u, BATCH, needed); j++) {
        let l = stats[STATS_HEADER + j];
        mean_l += l;
        if (AMP == AMP_NONE) {
            loss += l;
        } else if (GRAN == GRAN_ELEMENT) {
            loss += stats[STATS_HEADER + STATS_B + j];
            clamps += stats[STATS_HEADER + 2u * STATS_B + j];
        } else if (GRAN == GRAN_SAMPLE) {
            loss += amp_value(l);
            clamps += clamped(l);
        }
    }
    mean_l = mean_l / f32(BATCH);
    loss = loss / f32(BATCH);
    if (AMP == AMP_LAMP && GRAN == GRAN_BATCH) {
        loss = amp_value(mean_l);
        clamps = clamped(mean_l);
    }

    if (GRAD) {
        var f = 1.0 / (f32(BATCH) * f32(elems()));
        if (GRAN == GRAN_SAMPLE) { f = f * amp_grad(stats[STATS_HEADER + i]); }
        if (GRAN == GRAN_BATCH) { f = f * amp_grad(mean_l); }
        let base = i * C * H * W;
        if (METRIC != METRIC_SSIM) {
            for (var q = li; q < C * H * W; q += WG) {
                let y = acts[Y_OFF + base + q];
                acts[DZ_OFF + base + q] = f * acts[DZ_OFF + base + q] * y * (1.0 - y);
            }
        } else {
            let g = gauss();
            let mh = map_h();
            let mw = map_w();
            let mp = mh * mw;
            let sbase = S_OFF + i * 5u * C * mp;
            for (var q = li; q < C * H * W; q += WG) {
                let c = q / (H * W);
                let qy = (q % (H * W)) / W;
                let qx = q % W;
                let x = acts[X_OFF + base + q];
                let y = acts[Y_OFF + base + q];
                var sum = 0.0;
                // Window positions p with p <= q < p + WIN, inside the map.
                let a_lo = select(0u, qy + 1u - mh, qy + 1u > mh);
                let b_lo = select(0u, qx + 1u - mw, qx + 1u > mw);
                for (var a = a_lo; a < min(WIN, qy + 1u); a++) {
                    for (var b = b_lo; b < min(WIN, qx + 1u); b++) {
                        let p = sbase + c * mp + (qy - a) * mw + (qx - b);
                        let my = acts[p + 4u * C * mp];
                        let mx = acts[p + 3u * C * mp];
                        let d = acts[p] + acts[p + C * mp] * (y - my) + acts[p + 2u * C * mp] * (x - mx);
                        sum += g[a] * g[b] * d;
                    }
                }
                let dy = -0.5 * f * sum;
                acts[DZ_OFF + base + q] = dy * y * (1.0 - y);
            }
        }
    }
    if (first) {
        stats[STAT_LOSS] = loss;
        stats[STAT_LOSS_SUM] += loss;
        stats[STAT_STEPS] += 1.0;
        stats[STAT_CLAMP_SUM] += clamps;
        stats[STAT_CLAMPS] = clamps;
        if (!is_finite(loss)) { stats[STAT_NONFINITE] = 1.0; }
    }
}
