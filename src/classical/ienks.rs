//! The iterative ensemble Kalman smoother (Bocquet & Sakov 2014): square-root ("transform")
//! version, Gauss–Newton iterations, data-assimilation windows of `lag` cycles shifted by one
//! cycle, each observation assimilated once when it enters the window (docs/baselines.md §3).

use nalgebra::{DMatrix, DVector};

use super::{
    Estimate, Problem, Settings, Spectrum, diverged, finite, forecast, hyperprior,
    initial_ensemble, join, method_rng, post_process, split,
};
use crate::error::Result;

/// Moves an ensemble from state `from` to state `to` (deterministic model).
fn propagate(p: &Problem, e: &mut DMatrix<f64>, from: usize, to: usize) {
    for t in from + 1..=to {
        forecast(p.model, e, 0, t);
    }
}

/// The window update with observation `k` of the window-start ensemble `e0` at state `start`.
fn update(p: &Problem, s: &Settings, k: usize, start: usize, e0: &DMatrix<f64>) -> DMatrix<f64> {
    let n = e0.ncols();
    let n1 = (n - 1) as f64;
    let (x0, a0) = split(e0);
    let mut w = DVector::zeros(n);
    let mut t = DMatrix::identity(n, n);
    let mut tinv = DMatrix::identity(n, n);
    let weights = |w: &DVector<f64>, t: &DMatrix<f64>| {
        let mut m = t.clone();
        for mut c in m.column_iter_mut() {
            c += w;
        }
        m
    };
    for _ in 0..s.iterations {
        let mut e = join(&x0, &(&a0 * weights(&w, &t)));
        propagate(p, &mut e, start, p.times[k]);
        let (y, d) = p.whitened(k, &e);
        // De-condition the observed anomalies from the current transform.
        let y0 = y * &tinv;
        let sp = Spectrum::of(&y0);
        let zeta = match s.finite_size {
            None => n1,
            Some(xn) => {
                let (en, cl) = hyperprior(&sp.padded(), n, xn);
                n1 * cl / (en + w.norm_squared())
            }
        };
        let grad = y0.transpose() * d - &w * zeta;
        let dw = sp.apply(zeta, |g| 1.0 / g, &grad);
        t = sp.function(zeta, |g| n1.sqrt() / g.sqrt());
        tinv = sp.function(zeta, |g| g.sqrt() / n1.sqrt());
        w += dw;
    }
    join(&x0, &(&a0 * weights(&w, &t)))
}

// State indices are times here, and the loops fill the states of a time range.
#[allow(clippy::needless_range_loop)]
/// Runs the iEnKS; the output holds the smoothed ensembles (after all the observations of the
/// windows that contain each state), and forecasts after the last observation.
pub(super) fn run(
    s: &Settings,
    p: &Problem,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Estimate> {
    let mut rng = method_rng(s.seed);
    let mut e = initial_ensemble(p, s.members, &mut rng);
    let mut out = Estimate::zeros(s.members, p.length, p.model.dim());
    let mut recorded = vec![false; p.length];
    let n_obs = p.times.len();
    let mut done = 0;
    for ko in 0..n_obs + s.lag {
        let klag = ko as isize - s.lag as isize;
        let start = if klag >= 0 { p.times[klag as usize] } else { 0 };
        if ko < n_obs {
            e = update(p, s, ko, start, &e);
            post_process(&mut e, s, &mut rng);
            if !finite(&e) {
                return Err(diverged(p.times[ko]));
            }
        }
        if klag >= 0 {
            out.set(start, &e);
            recorded[start] = true;
        }
        let next = klag + 1;
        if next >= 0 && (next as usize) < n_obs {
            let end = p.times[next as usize];
            for t in start..end {
                if t > start {
                    forecast(p.model, &mut e, 0, t);
                }
                out.set(t, &e);
                recorded[t] = true;
            }
            forecast(p.model, &mut e, 0, end);
            if !finite(&e) {
                return Err(diverged(end));
            }
            done = end;
            progress(done);
        }
    }
    // After the last observation: forecasts.
    let last = *p.times.last().expect("at least one observation");
    for t in last..p.length {
        if t > last {
            forecast(p.model, &mut e, 0, t);
            if !finite(&e) {
                return Err(diverged(t));
            }
        }
        out.set(t, &e);
        recorded[t] = true;
    }
    let _ = done;
    progress(p.length);
    assert!(recorded.iter().all(|&r| r), "every state is recorded");
    Ok(out)
}
