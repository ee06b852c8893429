//! The Gaussian baselines, in standardised anomalies `z = (x − mean) / std` (the season's mean
//! and std) whose covariance is `C = U Λ Uᵀ + diag(r)` ([`Eofs`]):
//!
//! - climatology: `z ~ N(0, C)` at every state;
//! - optimal interpolation: `z_t | y_t`, exactly, for each observed state with its own
//!   observations, solved in observation space (an `m × m` system for `m` observations);
//! - the linear inverse model: `z_t = U p_t + e_t` with `p` the LIM's chain and `e_t ~ N(0,
//!   diag r)` white, smoothed and sampled given every observation of the window.
//!
//! Samples given observations are drawn by conditioning prior draws (Matheron's rule, as the
//! perturbed-observation update: `z = z₀ + C Hᵀ S⁻¹ (y − H z₀ − ε₀)`), which is exact for a
//! linear-Gaussian model.

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::climate::Eofs;
use super::lim::{self, LinearChain, Observation};
use super::{Drawn, Group, Problem, Settings, physical};
use crate::error::{Error, Result};
use crate::mcs::chain_rng;

/// The observations of one state in standardised anomalies.
struct Standardised {
    /// The modelled value each observation measures.
    at: Vec<usize>,
    /// `(y − mean) / std`.
    y: DVector<f64>,
    /// `(σ / std)²`.
    var: DVector<f64>,
}

fn standardise(g: &Group, p: &Problem) -> Standardised {
    let s = p.season(g.time);
    let (mean, std) = (&p.climate.mean[s], &p.climate.std[s]);
    let m = g.at.len();
    Standardised {
        at: g.at.clone(),
        y: DVector::from_iterator(
            m,
            (0..m).map(|j| (g.value[j] - mean[g.at[j]]) / std[g.at[j]]),
        ),
        var: DVector::from_iterator(m, (0..m).map(|j| (g.std[j] / std[g.at[j]]).powi(2))),
    }
}

/// `n` standard normal values.
fn normals<R: Rng>(rng: &mut R, n: usize) -> DVector<f64> {
    DVector::from_iterator(n, (0..n).map(|_| StandardNormal.sample(rng)))
}

impl Eofs {
    /// A draw from `N(0, U Λ Uᵀ + diag(r))`.
    fn draw<R: Rng>(&self, rng: &mut R) -> DVector<f64> {
        let xi = DVector::from_iterator(
            self.k(),
            self.lambda.iter().map(|l| {
                let z: f64 = StandardNormal.sample(rng);
                l.sqrt() * z
            }),
        );
        let eta = normals(rng, self.rest.len());
        &self.u * xi + eta.component_mul(&self.rest.map(f64::sqrt))
    }

    /// The rows of `U` at the observed values, `m × k`.
    fn rows(&self, at: &[usize]) -> DMatrix<f64> {
        DMatrix::from_fn(at.len(), self.k(), |i, j| self.u[(at[i], j)])
    }

    /// The part of the covariance that is diagonal in the values, between observations:
    /// `[at_i = at_j] r_{at_i}`.
    fn rest_between(&self, at: &[usize]) -> DMatrix<f64> {
        DMatrix::from_fn(at.len(), at.len(), |i, j| {
            if at[i] == at[j] {
                self.rest[at[i]]
            } else {
                0.0
            }
        })
    }

    /// `diag(r) Hᵀ w` for the columns of `w` (`m × S` → `values × S`).
    fn rest_back(&self, at: &[usize], w: &DMatrix<f64>) -> DMatrix<f64> {
        let mut out = DMatrix::zeros(self.rest.len(), w.ncols());
        for (j, &i) in at.iter().enumerate() {
            for s in 0..w.ncols() {
                out[(i, s)] += self.rest[i] * w[(j, s)];
            }
        }
        out
    }

    /// `C Hᵀ w = U Λ U_hᵀ w + diag(r) Hᵀ w` (`m × S` → `values × S`), without forming `C`.
    fn cov_back(&self, at: &[usize], uh: &DMatrix<f64>, w: &DMatrix<f64>) -> DMatrix<f64> {
        let mut coef = uh.transpose() * w;
        for (mut row, &l) in coef.row_iter_mut().zip(&self.lambda) {
            row *= l;
        }
        &self.u * coef + self.rest_back(at, w)
    }
}

/// `S⁻¹ b` for a symmetric positive definite `S`.
fn solve(s: DMatrix<f64>, b: &DMatrix<f64>) -> Result<DMatrix<f64>> {
    let ch = s.cholesky().ok_or_else(|| {
        Error::config(
            "--observations",
            "the observations' covariance is not positive definite",
        )
    })?;
    Ok(ch.solve(b))
}

/// Samples `(S, L, values)` from per-state draws `z[t]` (`values × S`), and the mean.
fn assemble(p: &Problem, s: usize, states: Vec<(DMatrix<f64>, DVector<f64>)>) -> Drawn {
    let d = p.training.dim();
    let mut samples = Vec::with_capacity(s * p.length * d);
    let mut mean = Vec::with_capacity(p.length * d);
    for n in 0..s {
        for (t, (z, _)) in states.iter().enumerate() {
            let season = p.season(t);
            let col = z.column(n).into_owned();
            physical(
                &mut samples,
                &p.climate.mean[season],
                &p.climate.std[season],
                &col,
            );
        }
    }
    for (t, (_, m)) in states.iter().enumerate() {
        let season = p.season(t);
        physical(
            &mut mean,
            &p.climate.mean[season],
            &p.climate.std[season],
            m,
        );
    }
    Drawn { samples, mean }
}

/// The climatological draws of state `t`: `values × S`.
fn prior_draws(eofs: &Eofs, settings: &Settings, t: usize) -> DMatrix<f64> {
    let mut rng = chain_rng(settings.seed, t as u64);
    let cols: Vec<DVector<f64>> = (0..settings.samples).map(|_| eofs.draw(&mut rng)).collect();
    DMatrix::from_columns(&cols)
}

/// The climatology: independent draws of `N(0, C)` at every state.
pub(super) fn climatology(p: &Problem, eofs: &Eofs, settings: &Settings) -> Drawn {
    let d = p.training.dim();
    let states = (0..p.length)
        .into_par_iter()
        .map(|t| (prior_draws(eofs, settings, t), DVector::zeros(d)))
        .collect();
    assemble(p, settings.samples, states)
}

/// Optimal interpolation: each observed state conditioned on its own observations.
pub(super) fn oi(p: &Problem, eofs: &Eofs, settings: &Settings) -> Result<Drawn> {
    let d = p.training.dim();
    let states: Result<Vec<_>> = (0..p.length)
        .into_par_iter()
        .map(|t| {
            let z0 = prior_draws(eofs, settings, t);
            let Some(g) = p.group(t) else {
                return Ok((z0, DVector::zeros(d)));
            };
            let o = standardise(g, p);
            let uh = eofs.rows(&o.at);
            let mut ul = uh.clone();
            for (mut c, &l) in ul.column_iter_mut().zip(&eofs.lambda) {
                c *= l;
            }
            let mut s = ul * uh.transpose() + eofs.rest_between(&o.at);
            for i in 0..o.at.len() {
                s[(i, i)] += o.var[i];
            }
            // The innovations of the mean and of every draw, solved together.
            let m = o.at.len();
            let mut rng = chain_rng(settings.seed ^ 0x0B5E_12FE, t as u64);
            let mut rhs = DMatrix::zeros(m, settings.samples + 1);
            rhs.column_mut(0).copy_from(&o.y);
            for n in 0..settings.samples {
                for j in 0..m {
                    let e: f64 = StandardNormal.sample(&mut rng);
                    rhs[(j, n + 1)] = o.y[j] - z0[(o.at[j], n)] - o.var[j].sqrt() * e;
                }
            }
            let w = solve(s, &rhs)?;
            let update = eofs.cov_back(&o.at, &uh, &w);
            let mean = update.column(0).into_owned();
            let z = z0 + update.columns(1, settings.samples);
            Ok((z, mean))
        })
        .collect();
    Ok(assemble(p, settings.samples, states?))
}

/// The linear inverse model: the chain of the leading principal components, smoothed and
/// sampled given the observations, with the remainder `e_t` conditioned state by state.
pub(super) fn lim(
    p: &Problem,
    eofs: &Eofs,
    z: &DMatrix<f64>,
    settings: &Settings,
    report: &mut Vec<String>,
) -> Result<Drawn> {
    let pcs = eofs.u.transpose() * z;
    let fit = lim::fit(&pcs, &p.training.pairs(1))?;
    if fit.radius.is_nan() || fit.radius >= 1.0 {
        return Err(Error::config(
            "the linear inverse model",
            format!(
                "the fitted propagator A has an eigenvalue of modulus {:.3} ≥ 1, an unstable \
                 model: the training states are not stationary (a trend, a random walk), or too \
                 few for the EOFs kept (use fewer --eofs)",
                fit.radius
            ),
        ));
    }
    report.push(format!(
        "linear inverse model: {} EOFs from {} pairs of consecutive training states; A's \
         largest eigenvalue modulus {:.3} (an e-folding time of {:.1} steps){}",
        eofs.k(),
        fit.pairs,
        fit.radius,
        -1.0 / fit.radius.ln(),
        if fit.clipped > 0 {
            format!(
                "; {} negative eigenvalue(s) of Q raised to a floor",
                fit.clipped
            )
        } else {
            String::new()
        }
    ));
    let obs: Vec<(Observation, Standardised)> = p
        .groups
        .iter()
        .map(|g| {
            let o = standardise(g, p);
            let mut r = eofs.rest_between(&o.at);
            for i in 0..o.at.len() {
                r[(i, i)] += o.var[i];
            }
            let ob = Observation {
                time: g.time,
                g: eofs.rows(&o.at),
                r,
                d: o.y.clone(),
            };
            (ob, o)
        })
        .collect();
    let chain: &LinearChain = &fit.chain;
    let plain: Vec<Observation> = obs.iter().map(|o| o.0.clone()).collect();
    let sm = chain.smooth(p.length, &plain)?;
    let of = |t: usize| obs.iter().find(|o| o.0.time == t);
    // The remainder given the principal components: e = diag(r) Hᵀ R⁻¹ (y − G p) in the mean.
    let mut states: Vec<(DMatrix<f64>, DVector<f64>)> = (0..p.length)
        .map(|t| {
            let mut m = &eofs.u * &sm.mean[t];
            if let Some((ob, o)) = of(t) {
                let resid = DMatrix::from_column_slice(
                    o.at.len(),
                    1,
                    (&ob.d - &ob.g * &sm.mean[t]).as_slice(),
                );
                let w = solve(ob.r.clone(), &resid)?;
                m += eofs.rest_back(&o.at, &w).column(0);
            }
            Ok((DMatrix::zeros(p.training.dim(), settings.samples), m))
        })
        .collect::<Result<_>>()?;
    let paths: Vec<Vec<DVector<f64>>> = (0..settings.samples)
        .into_par_iter()
        .map(|n| sm.sample(&mut chain_rng(settings.seed, n as u64)))
        .collect();
    let rest_sd = eofs.rest.map(f64::sqrt);
    let columns: Result<Vec<DMatrix<f64>>> = (0..p.length)
        .into_par_iter()
        .map(|t| {
            let mut rng = chain_rng(settings.seed ^ 0x11E5_7A7E, t as u64);
            let d = eofs.rest.len();
            let mut zt = DMatrix::zeros(d, settings.samples);
            let mut e0 = DMatrix::zeros(d, settings.samples);
            for (n, path) in paths.iter().enumerate() {
                e0.set_column(n, &normals(&mut rng, d).component_mul(&rest_sd));
                zt.set_column(n, &(&eofs.u * &path[t] + e0.column(n)));
            }
            if let Some((ob, o)) = of(t) {
                let m = o.at.len();
                let mut resid = DMatrix::zeros(m, settings.samples);
                for (n, path) in paths.iter().enumerate() {
                    let r = &ob.d - &ob.g * &path[t];
                    for j in 0..m {
                        let e: f64 = StandardNormal.sample(&mut rng);
                        resid[(j, n)] = r[j] - e0[(o.at[j], n)] - o.var[j].sqrt() * e;
                    }
                }
                let w = solve(ob.r.clone(), &resid)?;
                zt += eofs.rest_back(&o.at, &w);
            }
            Ok(zt)
        })
        .collect();
    for (t, zt) in columns?.into_iter().enumerate() {
        states[t].0 = zt;
    }
    Ok(assemble(p, settings.samples, states))
}
