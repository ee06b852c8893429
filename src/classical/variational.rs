//! Deterministic baselines: climatology, optimal interpolation, 3D-Var and DAPPER's cycled
//! strong-constraint incremental 4D-Var (docs/baselines.md §4). Each gives one member.

use nalgebra::{DMatrix, DVector};

use super::{Dynamics, Estimate, Method, Problem, Settings, diverged};
use crate::error::Result;

/// One model step of a state vector.
fn step(model: &dyn Dynamics, x: &mut DVector<f64>) {
    model.step(x.as_mut_slice());
}

/// The tangent-linear model at `x` applied to the columns of `dirs`, by forward differences
/// (exact for linear models up to rounding).
fn tangent(model: &dyn Dynamics, x: &DVector<f64>, dirs: &DMatrix<f64>) -> DMatrix<f64> {
    let mut fx = x.clone();
    step(model, &mut fx);
    let mut out = DMatrix::zeros(dirs.nrows(), dirs.ncols());
    let scale = 1.0 + x.amax();
    for (j, col) in dirs.column_iter().enumerate() {
        let norm = col.amax();
        if norm == 0.0 {
            continue;
        }
        let eps = 1.5e-8 * scale / norm;
        let mut xp = x + col * eps;
        step(model, &mut xp);
        out.column_mut(j).copy_from(&((xp - &fx) / eps));
    }
    out
}

/// The Jacobian of the observation map at `x`, `p × D`.
fn obs_jacobian(p: &Problem, x: &DVector<f64>) -> DMatrix<f64> {
    let d = x.len();
    p.obs.jacobian_times(x, &DMatrix::identity(d, d))
}

/// `x + B Hᵀ (H B Hᵀ + R)⁻¹ (y − h(x))`, `H` linearised at `x`.
fn analysis(p: &Problem, k: usize, x: &DVector<f64>, b: &DMatrix<f64>) -> DVector<f64> {
    let h = obs_jacobian(p, x);
    let bh = b * h.transpose();
    let mut s = &h * &bh;
    for i in 0..s.nrows() {
        s[(i, i)] += p.std[k][i].powi(2);
    }
    let innov = &p.y[k] - DVector::from_vec(p.obs.apply(x.as_slice()));
    let z = match s.clone().cholesky() {
        Some(c) => c.solve(&innov),
        None => DVector::from_element(innov.len(), f64::NAN),
    };
    x + bh * z
}

// State indices are times here, and the loops walk a time range.
#[allow(clippy::needless_range_loop)]
/// Climatology, OI and 3D-Var.
pub(super) fn run_static(
    method: Method,
    s: &Settings,
    p: &Problem,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Estimate> {
    let d = p.model.dim();
    let obs_at = p.obs_index();
    if method == Method::Climatology {
        let c = p.climatology.as_ref().expect("checked");
        progress(p.length);
        return Ok(Estimate::from_states(&vec![c.mean.clone(); p.length]));
    }
    let (mut x, b) = match method {
        Method::Oi => {
            let c = p.climatology.as_ref().expect("checked");
            (c.mean.clone(), c.cov.clone())
        }
        _ => {
            let b = match &p.climatology {
                Some(c) => &c.cov * s.background_scale,
                None => DMatrix::identity(d, d) * s.background_scale,
            };
            (p.initial.clone(), b)
        }
    };
    let mut states = Vec::with_capacity(p.length);
    for t in 0..p.length {
        if t > 0 {
            step(p.model, &mut x);
        }
        if let Some(k) = obs_at[t] {
            x = match method {
                Method::Oi => {
                    let c = p.climatology.as_ref().expect("checked");
                    analysis(p, k, &c.mean, &b)
                }
                _ => analysis(p, k, &x, &b),
            };
        }
        if !x.iter().all(|v| v.is_finite()) {
            return Err(diverged(t));
        }
        states.push(x.clone());
        progress(t + 1);
    }
    Ok(Estimate::from_states(&states))
}

#[allow(clippy::needless_range_loop)]
/// DAPPER's `Var4D`: `B = scale · I`; windows of `lag` cycles shifted by one cycle; the cost of
/// window `k` holds only observation `k` (each observation is used once, when it enters the
/// window): `J(w) = ½‖w‖² + ½‖R^{-1/2}(y_k − h(𝓜(x_b + B^{1/2} w)))‖²`, minimised by Gauss–Newton.
/// The output is the smoothed trajectory (each window start after its last update, propagated).
pub(super) fn var4d(
    s: &Settings,
    p: &Problem,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Estimate> {
    let d = p.model.dim();
    let bs = s.background_scale.sqrt();
    let mut x = p.initial.clone();
    let mut states: Vec<Option<DVector<f64>>> = vec![None; p.length];
    let n_obs = p.times.len();
    for ko in 0..n_obs + s.lag {
        let klag = ko as isize - s.lag as isize;
        let start = if klag >= 0 { p.times[klag as usize] } else { 0 };
        if ko < n_obs {
            let xb = x.clone();
            let mut w = DVector::zeros(d);
            for _ in 0..s.iterations {
                let mut xx = &xb + &w * bs;
                let mut big_x = DMatrix::identity(d, d) * bs;
                for _ in start..p.times[ko] {
                    big_x = tangent(p.model, &xx, &big_x);
                    step(p.model, &mut xx);
                }
                let mut y = p.obs.jacobian_times(&xx, &big_x);
                for mut c in y.column_iter_mut() {
                    c.component_div_assign(&p.std[ko]);
                }
                let delta = (&p.y[ko] - DVector::from_vec(p.obs.apply(xx.as_slice())))
                    .component_div(&p.std[ko]);
                let mut cw = y.transpose() * &y;
                for i in 0..d {
                    cw[(i, i)] += 1.0;
                }
                let g = y.transpose() * delta - &w;
                let dw = match cw.cholesky() {
                    Some(c) => c.solve(&g),
                    None => DVector::from_element(d, f64::NAN),
                };
                w += dw;
            }
            x = &xb + &w * bs;
            if !x.iter().all(|v| v.is_finite()) {
                return Err(diverged(p.times[ko]));
            }
        }
        if klag >= 0 {
            states[start] = Some(x.clone());
        }
        let next = klag + 1;
        if next >= 0 && (next as usize) < n_obs {
            let end = p.times[next as usize];
            for t in start..end {
                if t > start {
                    step(p.model, &mut x);
                }
                states[t] = Some(x.clone());
            }
            step(p.model, &mut x);
            progress(end);
        }
    }
    let last = *p.times.last().expect("at least one observation");
    for t in last..p.length {
        if t > last {
            step(p.model, &mut x);
        }
        states[t] = Some(x.clone());
    }
    if let Some(t) = states
        .iter()
        .position(|s| !s.as_ref().is_some_and(|v| v.iter().all(|x| x.is_finite())))
    {
        return Err(diverged(t));
    }
    progress(p.length);
    let states: Vec<DVector<f64>> = states.into_iter().map(|s| s.expect("recorded")).collect();
    Ok(Estimate::from_states(&states))
}
