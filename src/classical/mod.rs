//! Classical data assimilation: the ensemble Kalman family, iterative ensemble smoothing,
//! variational methods and the static baselines, on the same systems and observation operators
//! as the score-based sampler, following DAPPER's conventions (docs/baselines.md).
//!
//! | method | what it does | output |
//! |---|---|---|
//! | [`Method::Enkf`] | stochastic EnKF, perturbed observations (Burgers et al. 1998) | filter |
//! | [`Method::Denkf`] | deterministic EnKF (Sakov & Oke 2008) | filter |
//! | [`Method::Etkf`] | ensemble transform KF, symmetric square root (DAPPER's `Sqrt`) | filter |
//! | [`Method::Letkf`] | local ETKF, Gaspari–Cohn or step taper on the periodic ring | filter |
//! | [`Method::Ensf`] | ensemble score filter: a training-free reverse SDE (Bao et al. 2024) | filter |
//! | [`Method::Enks`] | fixed-lag ensemble Kalman smoother (square root) | smoother |
//! | [`Method::Ienks`] | iterative ensemble Kalman smoother, Gauss–Newton (Bocquet & Sakov 2014) | smoother |
//! | [`Method::Var3d`] | 3D-Var with a static background covariance | filter, 1 member |
//! | [`Method::Var4d`] | cycled strong-constraint incremental 4D-Var | smoother, 1 member |
//! | [`Method::Oi`] | optimal interpolation around the climatology | filter, 1 member |
//! | [`Method::Climatology`] | the climatological mean | 1 member |
//!
//! Time: state 0 holds the initial ensemble (or background); the model moves one state per
//! transition; the observed states are those of the operator (`stride:1@1` observes every state
//! after the first, as DAPPER never observes at `k = 0`). An ensemble is a `D × N` matrix whose
//! columns are members. Every run returns what the method knows at every state: the analysis at
//! observed states and forecasts between them for filters, smoothed states for smoothers.

mod dense;
mod dynamics;
mod ensemble;
mod ensf;
mod estimate;
mod ienks;
mod members;
mod normals;
mod obs_map;
mod problem;
mod settings;
mod transform;
mod variational;

pub(crate) use dense::symmetric_eigen;
pub use dynamics::{Dynamics, dynamics};
pub use ensf::{Damping, Ensf, EnsfScore};
pub use estimate::Estimate;
pub use members::{mean_preserving_rotation, rotate_members};
pub use obs_map::ObsMap;
pub use problem::{Climatology, Problem};
pub use settings::{Settings, Taper};

use crate::error::Result;
use members::{
    MethodRng, diverged, finite, forecast, initial_ensemble, join, method_rng, post_process, split,
};
use settings::check;
use transform::{Spectrum, anomaly_factor, apply_transform, hyperprior, sqrt_transform};

/// The methods of this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Method {
    /// Stochastic EnKF with perturbed observations.
    Enkf,
    /// Deterministic EnKF (Sakov & Oke 2008).
    Denkf,
    /// Ensemble transform Kalman filter (symmetric square root).
    Etkf,
    /// Local ETKF (R-localisation on the periodic ring).
    Letkf,
    /// Ensemble score filter: a reverse-time SDE with the forecast's Monte-Carlo score and the
    /// damped likelihood score (training-free).
    Ensf,
    /// Fixed-lag ensemble Kalman smoother (square root).
    Enks,
    /// Iterative ensemble Kalman smoother (Gauss–Newton, transform version).
    Ienks,
    /// 3D-Var with a static background covariance.
    Var3d,
    /// Cycled strong-constraint incremental 4D-Var.
    Var4d,
    /// Optimal interpolation around the climatology.
    Oi,
    /// The climatological mean.
    Climatology,
}

impl Method {
    /// Whether the method draws an ensemble (and so needs at least 2 members).
    pub fn is_ensemble(self) -> bool {
        matches!(
            self,
            Method::Enkf
                | Method::Denkf
                | Method::Etkf
                | Method::Letkf
                | Method::Ensf
                | Method::Enks
                | Method::Ienks
        )
    }

    /// Whether the method uses `--lag`.
    pub fn uses_lag(self) -> bool {
        matches!(self, Method::Enks | Method::Ienks | Method::Var4d)
    }
}

/// Runs `method` on `problem`; `progress` is told how many states are done.
pub fn run(
    method: Method,
    settings: &Settings,
    problem: &Problem,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Estimate> {
    check(method, settings, problem)?;
    match method {
        Method::Enkf | Method::Denkf | Method::Etkf | Method::Letkf | Method::Enks => {
            ensemble::run(method, settings, problem, progress)
        }
        Method::Ensf => ensf::run(settings, problem, progress),
        Method::Ienks => ienks::run(settings, problem, progress),
        Method::Var3d | Method::Oi | Method::Climatology => {
            variational::run_static(method, settings, problem, progress)
        }
        Method::Var4d => variational::var4d(settings, problem, progress),
    }
}

#[cfg(test)]
mod tests;
