//! What `sda evaluate` prints: the scores as a table and the lines after them.

use sda::evaluate::{Evaluation, Resimulation, TimeAveraged};

use super::Args;

/// The scores as a table on stdout: against the reference and the observations, and
/// against the truth. `unmasked`: every value was scored.
pub(super) fn print_scores(a: &Args, e: &Evaluation, unmasked: bool) {
    let show = |name: &str, v: Option<f64>| {
        if let Some(v) = v {
            println!("  {name:<34} {v:.4}");
        }
    };
    println!(
        "{}: {} samples ({} failed: NaN or inf{})",
        a.samples().display(),
        e.samples,
        e.failed,
        if e.failed == e.samples && unmasked {
            "; the values of a data folder's fixed mask are NaN in a baseline's output: give \
             --system DATA"
        } else {
            ""
        }
    );
    show("W1 to the reference (exact)", e.w1);
    show("MMD² to the reference", e.mmd);
    show("mean log p(x_2:L | x_1)", e.log_px);
    show("mean log p(x_2:L | x_1), reference", e.log_px_reference);
    show("mean log p(y | x)", e.log_py);
    if let (Some(r), Some(n)) = (e.residual_std, e.noise_std) {
        println!("  {:<34} {r:.4} (noise std {n:.4})", "std(A(x) − y)");
    }
    if let Some(z) = e.residual_z {
        println!(
            "  {:<34} {z:.4} ({})",
            "rms((A(x) − y) / σ_y)",
            sda::evaluate::residual_verdict(z)
        );
    }
    if let Some(share) = e.residual_outside {
        println!(
            "  {:<34} {:.1} % (≈ 5 % when calibrated)",
            "y outside the 95 % predictive",
            100.0 * share
        );
    }
    show("RMSE of the mean to the truth", e.rmse);
    show("spread", e.spread);
    if let (Some(c50), Some(c90)) = (e.coverage_50, e.coverage_90) {
        println!(
            "  {:<34} {:.1} % and {:.1} % (calibrated: 50 % and 90 %)",
            "truth in the 50 % / 90 % intervals",
            100.0 * c50,
            100.0 * c90
        );
    }
    if let Some(r) = e.spread_error {
        let word = if r < 0.8 {
            "over-confident: the spread understates the error"
        } else if r > 1.2 {
            "under-confident: the spread overstates the error"
        } else {
            "calibrated ≈ 1"
        };
        println!("  {:<34} {r:.3} ({word})", "spread / RMSE");
    }
    show("CRPS", e.crps);
    if let Some(h) = &e.rank_histogram {
        println!("  {:<34} {h:?}", "rank histogram");
    }
}

/// The lines after the scores: the time-averaged scores, a calibration warning and the
/// re-simulation of the samples' first states.
pub(super) fn print_extras(
    e: &Evaluation,
    averaged: Option<&TimeAveraged>,
    resim: Option<&Resimulation>,
) {
    if let Some(t) = averaged {
        println!(
            "  time-averaged over {} states (DAPPER's scores): rmse {:.4}  spread {:.4}  crps {:.4}",
            t.states, t.rmse, t.spread, t.crps
        );
    }
    if let (Some(z), Some(share)) = (e.residual_z, e.residual_outside)
        && let Some(w) = sda::evaluate::calibration_warning(z, share)
    {
        println!("{w}");
    }
    if let Some(r) = resim {
        let errs: Vec<String> = r.relative_error.iter().map(|v| format!("{v:.3}")).collect();
        println!(
            "  re-simulated first states of {} samples: ‖x_i − sim_i‖ / ‖x_i‖ per state",
            r.samples
        );
        println!("    {}", errs.join(" "));
        println!(
            "    (two samples differ by {:.3}; independent flows by ≈ 1.41; 0: the physics keeps the sample exactly)",
            r.between_samples
        );
    }
}
