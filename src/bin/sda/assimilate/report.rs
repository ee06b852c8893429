//! What `assimilate` and `sample` say of their samples: the prior's training, the samples'
//! log-densities and the fit of the posterior to the observations.

use std::path::Path;

use anyhow::Result;
use sda::assimilate::{Fit, Observed};
use sda::evaluate::{calibration_warning, residual_verdict};
use sda::io::Array;
use sda::model::Model;

/// The prior's final losses (its run folder's stats.csv), so that a weak prior is seen where
/// its posterior is used; and the warning of `sda train` where the training was not done.
pub fn report_training(run: &Path) {
    let Ok(stats) = sda::train::read_stats(&run.join("stats.csv")) else {
        return;
    };
    if let Some(s) = stats.last() {
        println!(
            "  prior: {} epochs, final train loss {:.4}, valid loss {:.4}",
            s.epoch, s.train_loss, s.valid_loss
        );
    }
    if let Some(w) = sda::train::convergence_warning(&stats) {
        println!("  prior's {w}");
    }
}

pub fn report_prior(model: &Model, x: &Array) {
    let failed = x
        .data
        .chunks(x.data.len() / x.shape[0])
        .filter(|s| s.iter().any(|v| !v.is_finite()))
        .count();
    if failed > 0 {
        println!("  {failed} of {} samples contain NaN or inf", x.shape[0]);
    }
    let system = &model.config.data.system;
    if let sda::mcs::System::External(_) = system {
        println!(
            "  log p(x_2:L | x_1): not available (an imported system has no simulator, so no \
             transition density)"
        );
    }
    let chain = system.chain().ok();
    let xs: Vec<f64> = x.data.iter().map(|&v| v as f64).collect();
    if let Some(lp) = chain.and_then(|c| c.log_prob_trajectories(&xs, x.shape[1])) {
        let finite: Vec<f64> = lp.into_iter().filter(|v| v.is_finite()).collect();
        if !finite.is_empty() {
            println!(
                "  mean log p(x_2:L | x_1) under the true transition: {:.1}",
                finite.iter().sum::<f64>() / finite.len() as f64
            );
        }
    }
}

/// What `assimilate` says of its samples (and of the prior, from its run folder).
pub fn report_posterior(run: &Path, model: &Model, x: &Array, obs: &Observed) -> Result<()> {
    report_training(run);
    report_prior(model, x);
    let fit = Fit::of(x, obs, &model.config.data.state_shape)?;
    let ll = &fit.log_likelihood;
    let (res, noise, z, share) = (fit.residual_std, fit.noise_std, fit.rms_z, fit.outside);
    println!(
        "  mean log p(y | x): {:.1}",
        ll.iter().sum::<f64>() / ll.len() as f64
    );
    println!("  std(A(x) − y): {res:.3} (noise std {noise:.3})");
    println!(
        "  rms((A(x) − y) / σ_y): {z:.3} ({}); {:.1} % of y outside the samples' 95 % interval \
         (≈ 5 % when calibrated)",
        residual_verdict(z),
        100.0 * share
    );
    if let Some(w) = calibration_warning(z, share) {
        println!("{w}");
    }
    Ok(())
}
