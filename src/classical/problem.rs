//! One assimilation problem: the model, the observations and what is known at the start, and
//! the system's climatology.

use nalgebra::{DMatrix, DVector};

use super::{Dynamics, ObsMap};
use crate::error::{Error, Result};
use crate::io::Array;
use crate::score::operator::Operator;

/// Mean and covariance of the system's climatology (from long trajectories or the truth).
#[derive(Clone, Debug)]
pub struct Climatology {
    /// Mean state.
    pub mean: DVector<f64>,
    /// Covariance of the states.
    pub cov: DMatrix<f64>,
}

impl Climatology {
    /// Mean and (unbiased) covariance of the states of `(…, D)` trajectories.
    pub fn from_states(x: &Array) -> Result<Self> {
        let d = *x.shape.last().unwrap_or(&0);
        let n = x.data.len().checked_div(d).unwrap_or(0);
        if n < 2 {
            return Err(Error::config(
                "--climatology",
                "needs at least 2 states to estimate a covariance",
            ));
        }
        let m = DMatrix::from_iterator(d, n, x.data.iter().map(|&v| v as f64));
        let mean = m.column_mean();
        let a = &m - &mean * DMatrix::from_element(1, n, 1.0);
        let cov = &a * a.transpose() / (n - 1) as f64;
        Ok(Self { mean, cov })
    }
}

/// One assimilation problem: the model, the observations and the initial knowledge.
pub struct Problem<'a> {
    /// The model.
    pub model: &'a dyn Dynamics,
    /// The per-state observation map.
    pub obs: ObsMap,
    /// The observed states, increasing.
    pub times: Vec<usize>,
    /// The observations, one vector per observed state.
    pub y: Vec<DVector<f64>>,
    /// Their noise stds, one vector per observed state.
    pub std: Vec<DVector<f64>>,
    /// States in the trajectory.
    pub length: usize,
    /// Mean of the initial ensemble (or the background) at state 0.
    pub initial: DVector<f64>,
    /// Std of the initial ensemble around it.
    pub initial_std: f64,
    /// The climatology, for oi, climatology and a climatological var3d background.
    pub climatology: Option<Climatology>,
}

impl<'a> Problem<'a> {
    /// A problem from an operator and flat observations `y` with per-value noise stds (the
    /// shapes of `sda assimilate`: `y` is `operator.output_shape(length, [D])`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &'a dyn Dynamics,
        operator: &Operator,
        y: &Array,
        noise: &[f32],
        length: usize,
        initial: Option<Vec<f64>>,
        initial_std: f64,
        climatology: Option<Climatology>,
    ) -> Result<Self> {
        let d = model.dim();
        if length == 0 {
            return Err(Error::config("--length", "must be at least 1"));
        }
        operator.check_observations(y, noise, length, &[d], "observations")?;
        let obs = ObsMap::new(operator, d)?;
        let times = operator.times(length)?;
        let p = obs.len();
        let y: Vec<DVector<f64>> = y
            .data
            .chunks(p)
            .map(|c| DVector::from_iterator(p, c.iter().map(|&v| v as f64)))
            .collect();
        let std: Vec<DVector<f64>> = noise
            .chunks(p)
            .map(|c| DVector::from_iterator(p, c.iter().map(|&v| v as f64)))
            .collect();
        let initial = match initial {
            Some(v) if v.len() != d => {
                return Err(Error::config(
                    "--initial",
                    format!("has {} values, the system's states {d}", v.len()),
                ));
            }
            Some(v) => DVector::from_vec(v),
            None => climatology
                .as_ref()
                .map(|c| c.mean.clone())
                .unwrap_or_else(|| DVector::zeros(d)),
        };
        if !(initial_std.is_finite() && initial_std >= 0.0) {
            return Err(Error::config(
                "--initial-std",
                "must be a non-negative number",
            ));
        }
        if let Some(c) = &climatology
            && c.mean.len() != d
        {
            return Err(Error::config(
                "--climatology",
                format!("states of {} values, the system's {d}", c.mean.len()),
            ));
        }
        Ok(Self {
            model,
            obs,
            times,
            y,
            std,
            length,
            initial,
            initial_std,
            climatology,
        })
    }

    /// The observation index of each state (`None` where unobserved).
    pub(super) fn obs_index(&self) -> Vec<Option<usize>> {
        let mut idx = vec![None; self.length];
        for (k, &t) in self.times.iter().enumerate() {
            idx[t] = Some(k);
        }
        idx
    }

    /// The whitened observed anomalies `R^{-1/2} (h(E) − ȳ)` and innovation
    /// `R^{-1/2} (y − ȳ)` of observation `k` for ensemble `e`.
    pub(super) fn whitened(&self, k: usize, e: &DMatrix<f64>) -> (DMatrix<f64>, DVector<f64>) {
        let he = self.obs.apply_columns(e);
        let ybar = he.column_mean();
        let mut y = he;
        // Multiplied by 1/σ: one division per observation, not per member.
        let inv: Vec<f64> = self.std[k].iter().map(|s| 1.0 / s).collect();
        for c in y.as_mut_slice().chunks_exact_mut(inv.len().max(1)) {
            for ((v, m), s) in c.iter_mut().zip(ybar.as_slice()).zip(&inv) {
                *v = (*v - m) * s;
            }
        }
        let d = (&self.y[k] - ybar).component_div(&self.std[k]);
        (y, d)
    }
}
