//! The methods' settings: the localisation taper, [`Settings`] and their checks against a
//! problem.

use super::{Ensf, Method, Problem};
use crate::error::{Error, Result};

/// Localisation taper (DAPPER's `dist2coeff`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Taper {
    /// Gaspari–Cohn (1999, eq. 4.10), half-support `1.82 · radius`.
    Gc,
    /// 1 within the radius, 0 beyond.
    Step,
}

impl Taper {
    /// The taper's weight at distance `d` for a localisation radius `radius`.
    pub fn weight(self, d: f64, radius: f64) -> f64 {
        if radius.is_infinite() {
            return 1.0;
        }
        match self {
            Taper::Step => {
                if d <= radius {
                    1.0
                } else {
                    0.0
                }
            }
            Taper::Gc => {
                let r = d / (1.82 * radius);
                if r <= 1.0 {
                    1.0 - 5.0 / 3.0 * r.powi(2) + 5.0 / 8.0 * r.powi(3) + 0.5 * r.powi(4)
                        - 0.25 * r.powi(5)
                } else if r <= 2.0 {
                    4.0 - 5.0 * r + 5.0 / 3.0 * r.powi(2) + 5.0 / 8.0 * r.powi(3) - 0.5 * r.powi(4)
                        + r.powi(5) / 12.0
                        - 2.0 / (3.0 * r)
                } else {
                    0.0
                }
            }
        }
    }
}

/// Settings shared by the methods (each reads those it uses).
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Ensemble size N.
    pub members: usize,
    /// Multiplicative inflation of the analysis anomalies (factor on the std, ≥ 1).
    pub inflation: f64,
    /// A random mean-preserving rotation of the analysis anomalies after each analysis.
    pub rotate: bool,
    /// EnKF-N's adaptive inflation with this hyper-prior boost `xN` (etkf, letkf, ienks).
    pub finite_size: Option<f64>,
    /// Localisation radius in grid points (letkf; infinite: none).
    pub radius: f64,
    /// Localisation taper (letkf).
    pub taper: Taper,
    /// Consecutive state variables analysed together by the letkf, a block (DAPPER's
    /// sakov2008: 2), localised with their mean distance to each observation.
    pub block: usize,
    /// Lag in observation cycles (enks, ienks, var4d).
    pub lag: usize,
    /// Gauss–Newton iterations (ienks, var4d).
    pub iterations: usize,
    /// Background covariance scale: `B = scale · I`, or `scale · climatological covariance`
    /// for var3d when a climatology is given.
    pub background_scale: f64,
    /// Seed of every random draw.
    pub seed: u64,
    /// The ensemble score filter's settings (ensf).
    pub ensf: Ensf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            members: 20,
            inflation: 1.0,
            rotate: false,
            finite_size: None,
            radius: f64::INFINITY,
            taper: Taper::Gc,
            block: 1,
            lag: 1,
            iterations: 10,
            background_scale: 1.0,
            seed: 0,
            ensf: Ensf::default(),
        }
    }
}

/// Checks the settings against the problem: one error per bad value.
pub(super) fn check(method: Method, s: &Settings, p: &Problem) -> Result<()> {
    if method.is_ensemble() && s.members < 2 {
        return Err(Error::config(
            "--members",
            format!("an ensemble needs at least 2 members, got {}", s.members),
        ));
    }
    if !(s.inflation.is_finite() && s.inflation >= 1.0) {
        return Err(Error::config(
            "--inflation",
            format!(
                "must be at least 1 (a factor on the spread), got {}",
                s.inflation
            ),
        ));
    }
    if s.radius.is_nan() || s.radius <= 0.0 {
        return Err(Error::config(
            "--radius",
            format!("must be positive, got {}", s.radius),
        ));
    }
    if s.block == 0 || s.block > p.model.dim() {
        return Err(Error::config(
            "--block",
            format!("must be between 1 and the state size {}", p.model.dim()),
        ));
    }
    if let Some(x) = s.finite_size
        && !(x.is_finite() && x > 0.0)
    {
        return Err(Error::config(
            "--finite-size",
            format!("must be positive, got {x}"),
        ));
    }
    if method.uses_lag() {
        if s.lag == 0 {
            return Err(Error::config(
                "--lag",
                "must be at least 1 observation cycle",
            ));
        }
        if s.lag > p.times.len() {
            return Err(Error::config(
                "--lag",
                format!(
                    "{} cycles is longer than the trajectory's {} observed states",
                    s.lag,
                    p.times.len()
                ),
            ));
        }
    }
    if matches!(method, Method::Ienks | Method::Var4d) {
        if s.iterations == 0 {
            return Err(Error::config("--newton-iterations", "must be at least 1"));
        }
        if p.model.noise() > 0.0 {
            return Err(Error::config(
                "--method",
                format!(
                    "{} needs a deterministic model (this system's transitions have noise std {})",
                    crate::flag_value(&method),
                    p.model.noise()
                ),
            ));
        }
    }
    if matches!(method, Method::Var3d | Method::Var4d)
        && !(s.background_scale.is_finite() && s.background_scale > 0.0)
    {
        return Err(Error::config("--background-scale", "must be positive"));
    }
    if matches!(method, Method::Oi | Method::Climatology) && p.climatology.is_none() {
        return Err(Error::config(
            "--climatology",
            format!(
                "{} needs a climatology (trajectories of the system)",
                crate::flag_value(&method)
            ),
        ));
    }
    if method == Method::Ensf {
        s.ensf.check(s.members)?;
    }
    if method.is_ensemble() && p.initial_std <= 0.0 {
        return Err(Error::config(
            "--initial-std",
            "an initial ensemble needs a positive spread",
        ));
    }
    Ok(())
}
