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
mod ensemble;
mod ensf;
mod ienks;
mod normals;
mod variational;

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::io::Array;
use crate::mcs::{DampedSpring, Lorenz63, Lorenz96, System, chain_rng, splitmix64};
use crate::score::operator::{Operator, Term};

pub(crate) use dense::symmetric_eigen;
pub use ensf::{Damping, Ensf, EnsfScore};

/// A model that classical methods can run: a deterministic step and additive isotropic noise.
pub trait Dynamics: Sync {
    /// Values per state.
    fn dim(&self) -> usize;
    /// The deterministic part of one transition, in place.
    fn step(&self, x: &mut [f64]);
    /// Std of the additive Gaussian noise after each step (0: deterministic).
    fn noise(&self) -> f64;
    /// [`step`](Self::step) of every state of `states` (one after the other, `dim` values each).
    fn step_all(&self, states: &mut [f64]) {
        for x in states.chunks_mut(self.dim()) {
            self.step(x);
        }
    }
}

impl Dynamics for Lorenz96 {
    fn dim(&self) -> usize {
        self.n
    }
    fn step(&self, x: &mut [f64]) {
        Lorenz96::step(self, x)
    }
    /// All states at once: a ring of 40 variables is too short for the vector units state by
    /// state, so the states are transposed to variable-major order, where every loop of the
    /// RK4 step runs over the states, compiled for AVX-512 where the CPU has it. The arithmetic
    /// of each state is that of `step`, to the bit.
    fn step_all(&self, states: &mut [f64]) {
        let (n, m) = (self.n, states.len() / self.n);
        if m < 4 {
            return states.chunks_mut(n).for_each(|x| self.step(x));
        }
        thread_local! {
            /// The transposed states and the RK4 stages, kept between steps.
            static BUF: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            if buf.len() < 6 * n * m {
                buf.resize(6 * n * m, 0.0);
            }
            let (x, scratch) = buf.split_at_mut(n * m);
            transpose::transpose(states, x, n, m);
            crate::kernels::simd!(self.step_batch(x, m, scratch));
            transpose::transpose(x, states, m, n);
        });
    }
    fn noise(&self) -> f64 {
        self.noise
    }
}

impl Dynamics for Lorenz63 {
    fn dim(&self) -> usize {
        3
    }
    fn step(&self, x: &mut [f64]) {
        Lorenz63::step(self, x)
    }
    fn noise(&self) -> f64 {
        self.noise
    }
}

impl Dynamics for DampedSpring {
    fn dim(&self) -> usize {
        2
    }
    fn step(&self, x: &mut [f64]) {
        let (w2, c) = (self.omega * self.omega, 2.0 * self.zeta * self.omega);
        let v = x[1] - self.dt * (w2 * x[0] + c * x[1]);
        x[0] += self.dt * v;
        x[1] = v;
    }
    fn noise(&self) -> f64 {
        self.noise
    }
}

/// The model of a system, or why classical methods cannot run it.
pub fn dynamics(system: &System) -> Result<&dyn Dynamics> {
    match system {
        System::Lorenz96(s) => Ok(s),
        System::Lorenz63(s) => Ok(s),
        System::Linear(s) => Ok(s),
        System::Kolmogorov(_) => Err(Error::config(
            "--system",
            "classical methods run lorenz63, lorenz96 and linear systems, not kolmogorov fields",
        )),
        System::External(_) => Err(Error::config(
            "--system",
            "an external (imported) system has no dynamics: classical methods need a model \
             (lorenz63, lorenz96 or linear)",
        )),
    }
}

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

/// One term of an observation map on vector states.
#[derive(Clone, Debug)]
enum MapTerm {
    Select(Vec<usize>),
    Saturate,
    Arctan,
}

/// A value-by-value term at `u`: its value and derivative.
fn elementwise(t: &MapTerm, u: f64) -> (f64, f64) {
    match t {
        MapTerm::Saturate => (u / (1.0 + u.abs()), 1.0 / (1.0 + u.abs()).powi(2)),
        MapTerm::Arctan => (u.atan(), 1.0 / (1.0 + u * u)),
        MapTerm::Select(_) => unreachable!("a selection is not value by value"),
    }
}

/// The per-state part of an observation operator on vector states, in f64: the selections and
/// the value-by-value non-linear terms (`saturate`, `arctan`) of [`Operator`], and where each
/// observed value sits on the state's grid.
#[derive(Clone, Debug)]
pub struct ObsMap {
    terms: Vec<MapTerm>,
    /// The state component that each observed value derives from (for localisation).
    pub locations: Vec<usize>,
    /// Whether the map is linear (selections only).
    pub linear: bool,
}

impl ObsMap {
    /// The per-state map of `operator` on states of `dim` values.
    pub fn new(operator: &Operator, dim: usize) -> Result<Self> {
        let mut terms = Vec::new();
        let mut locations: Vec<usize> = (0..dim).collect();
        let mut linear = true;
        operator.state_shape(&[dim])?;
        for term in operator.terms() {
            match term {
                Term::Stride { .. } | Term::Last => {}
                Term::Select(idx) => {
                    locations = idx.iter().map(|&i| locations[i]).collect();
                    terms.push(MapTerm::Select(idx.clone()));
                }
                Term::Saturate => {
                    linear = false;
                    terms.push(MapTerm::Saturate);
                }
                Term::Arctan => {
                    linear = false;
                    terms.push(MapTerm::Arctan);
                }
                other => {
                    return Err(Error::Operator {
                        spec: operator.spec().into(),
                        reason: format!(
                            "classical methods take stride, last, select, saturate and arctan \
                             terms on vector states, not {other:?}"
                        ),
                    });
                }
            }
        }
        Ok(Self {
            terms,
            locations,
            linear,
        })
    }

    /// Observed values per state.
    pub fn len(&self) -> usize {
        self.locations.len()
    }

    /// Whether the map observes nothing.
    pub fn is_empty(&self) -> bool {
        self.locations.is_empty()
    }

    /// `h(x)` of one state.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        let mut v = x.to_vec();
        for t in &self.terms {
            v = match t {
                MapTerm::Select(idx) => idx.iter().map(|&i| v[i]).collect(),
                MapTerm::Saturate => v.iter().map(|w| w / (1.0 + w.abs())).collect(),
                MapTerm::Arctan => v.iter().map(|w| w.atan()).collect(),
            };
        }
        v
    }

    /// `J_h(x)ᵀ w` for `w = cotangent(h(x))` (one value per observed value): the gradient of
    /// `wᵀ h` at `x`, exact, for one state. For a Gaussian likelihood
    /// `cotangent(v) = R⁻¹ (y − v)` gives `∇ₓ log p(y | x)`.
    pub fn pullback(&self, x: &[f64], cotangent: impl FnOnce(&[f64]) -> Vec<f64>) -> Vec<f64> {
        if self.terms.iter().all(|t| !matches!(t, MapTerm::Select(_))) {
            // Value by value: the chain rule is a product of scalar derivatives.
            let mut v = x.to_vec();
            let mut der = vec![1.0; x.len()];
            for t in &self.terms {
                for (u, g) in v.iter_mut().zip(der.iter_mut()) {
                    let (f, df) = elementwise(t, *u);
                    *g *= df;
                    *u = f;
                }
            }
            let w = cotangent(&v);
            return w.iter().zip(&der).map(|(w, g)| w * g).collect();
        }
        // Forward, keeping each term's input; then the cotangent back through the terms.
        let mut inputs: Vec<Vec<f64>> = Vec::with_capacity(self.terms.len());
        let mut v = x.to_vec();
        for t in &self.terms {
            let next = match t {
                MapTerm::Select(idx) => idx.iter().map(|&i| v[i]).collect(),
                other => v.iter().map(|&u| elementwise(other, u).0).collect(),
            };
            inputs.push(std::mem::replace(&mut v, next));
        }
        let mut g = cotangent(&v);
        for (t, input) in self.terms.iter().zip(&inputs).rev() {
            g = match t {
                MapTerm::Select(idx) => {
                    let mut back = vec![0.0; input.len()];
                    for (&i, gi) in idx.iter().zip(&g) {
                        back[i] += gi;
                    }
                    back
                }
                other => g
                    .iter()
                    .zip(input)
                    .map(|(gi, &u)| gi * elementwise(other, u).1)
                    .collect(),
            };
        }
        g
    }

    /// `h` of every column of `e` (`D × N` → `p × N`).
    pub fn apply_columns(&self, e: &DMatrix<f64>) -> DMatrix<f64> {
        // The common maps (all of the state, or one selection) without a vector per column.
        match self.terms.as_slice() {
            [] => return e.clone(),
            [MapTerm::Select(idx)] => {
                return DMatrix::from_fn(idx.len(), e.ncols(), |i, j| e[(idx[i], j)]);
            }
            _ => {}
        }
        let p = self.len();
        let mut out = DMatrix::zeros(p, e.ncols());
        for (j, col) in e.column_iter().enumerate() {
            let v = self.apply(col.as_slice());
            out.column_mut(j).copy_from_slice(&v);
        }
        out
    }

    /// The Jacobian of `h` at `x` times the columns of `x_dir` (`D × K` → `p × K`): exact for
    /// linear maps, a centred finite difference otherwise.
    pub fn jacobian_times(&self, x: &DVector<f64>, x_dir: &DMatrix<f64>) -> DMatrix<f64> {
        if self.linear {
            return self.apply_columns(x_dir);
        }
        let mut out = DMatrix::zeros(self.len(), x_dir.ncols());
        for (j, col) in x_dir.column_iter().enumerate() {
            let norm = col.norm().max(1e-300);
            let eps = 1e-6 * (1.0 + x.norm()) / norm;
            let plus = self.apply((x + col * eps).as_slice());
            let minus = self.apply((x - col * eps).as_slice());
            for i in 0..plus.len() {
                out[(i, j)] = (plus[i] - minus[i]) / (2.0 * eps);
            }
        }
        out
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
    fn obs_index(&self) -> Vec<Option<usize>> {
        let mut idx = vec![None; self.length];
        for (k, &t) in self.times.iter().enumerate() {
            idx[t] = Some(k);
        }
        idx
    }

    /// The whitened observed anomalies `R^{-1/2} (h(E) − ȳ)` and innovation
    /// `R^{-1/2} (y − ȳ)` of observation `k` for ensemble `e`.
    fn whitened(&self, k: usize, e: &DMatrix<f64>) -> (DMatrix<f64>, DVector<f64>) {
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

/// What a method knows at every state: `members × length × dim` values, member-major.
#[derive(Clone, Debug)]
pub struct Estimate {
    /// Members (1 for deterministic methods).
    pub members: usize,
    /// States.
    pub length: usize,
    /// Values per state.
    pub dim: usize,
    /// The values, `[member][state][value]`.
    pub data: Vec<f64>,
}

impl Estimate {
    /// Zeros, to be filled state by state with [`set`](Self::set).
    fn zeros(members: usize, length: usize, dim: usize) -> Self {
        Self {
            members,
            length,
            dim,
            data: zeroed(members * length * dim),
        }
    }

    /// The `D × N` ensemble `e` at state `t`.
    fn set(&mut self, t: usize, e: &DMatrix<f64>) {
        let (dim, length) = (self.dim, self.length);
        for (n, col) in e.column_iter().enumerate() {
            let at = (n * length + t) * dim;
            self.data[at..at + dim].copy_from_slice(col.as_slice());
        }
    }

    /// `E_t ← E_t G` for the ensembles of the states in `range` (`G` is `N × N`): one product,
    /// as the states of a range are consecutive rows of `(range.len() · D) × N` with the
    /// members `length · D` values apart.
    fn right_multiply(&mut self, range: std::ops::Range<usize>, g: &DMatrix<f64>) {
        let (dim, length, n) = (self.dim, self.length, self.members);
        let rows = range.len() * dim;
        if rows == 0 {
            return;
        }
        let mut old = DMatrix::zeros(rows, n);
        for (j, mut col) in old.column_iter_mut().enumerate() {
            let at = (j * length + range.start) * dim;
            col.copy_from_slice(&self.data[at..at + rows]);
        }
        let dst = self.data[range.start * dim..].as_mut_ptr();
        // SAFETY: element (i, j) of the output is `data[(j · length + start) · D + i]`, inside
        // `data` for i < rows and j < N; `old` is a separate allocation.
        unsafe {
            dense::gemm_raw(
                (rows, n, n),
                (dst, 1, (length * dim) as isize),
                (old.as_ptr(), 1, rows as isize),
                (g.as_ptr(), 1, n as isize),
                1.0,
                false,
            )
        }
    }

    /// From one state vector per state (one member).
    fn from_states(states: &[DVector<f64>]) -> Self {
        let dim = states[0].len();
        Self {
            members: 1,
            length: states.len(),
            dim,
            data: states.iter().flat_map(|s| s.iter().copied()).collect(),
        }
    }

    /// The ensemble as an f32 `(members, length, dim)` array.
    pub fn to_array(&self) -> Array {
        Array::new(
            vec![self.members, self.length, self.dim],
            self.data.iter().map(|&v| v as f32).collect(),
        )
    }

    /// The ensemble mean at state `t`.
    pub fn mean(&self, t: usize) -> DVector<f64> {
        let mut m = DVector::zeros(self.dim);
        for n in 0..self.members {
            let at = (n * self.length + t) * self.dim;
            m += DVector::from_column_slice(&self.data[at..at + self.dim]);
        }
        m / self.members as f64
    }

    /// The ensemble covariance at state `t` (unbiased; zero for one member).
    pub fn cov(&self, t: usize) -> DMatrix<f64> {
        let m = self.mean(t);
        let mut c = DMatrix::zeros(self.dim, self.dim);
        for n in 0..self.members {
            let at = (n * self.length + t) * self.dim;
            let a = DVector::from_column_slice(&self.data[at..at + self.dim]) - &m;
            c += &a * a.transpose();
        }
        c / (self.members.max(2) - 1) as f64
    }
}

/// `len` zeros. An output of many states is megabytes, and the first touch of each 4 KiB page
/// costs a page fault (most of the time of the cheap filters on a virtual machine): on Linux the
/// buffer is advised into transparent huge pages, 512 times fewer faults.
fn zeroed(len: usize) -> Vec<f64> {
    let v = vec![0.0; len];
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if len * 8 >= 4 << 20 {
        let page = 4096;
        let start = (v.as_ptr() as usize).next_multiple_of(page);
        let end = (v.as_ptr() as usize + len * 8) / page * page;
        // SAFETY: an advice on whole pages inside the allocation; it changes no contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
    v
}

/// Checks the settings against the problem: one error per bad value.
fn check(method: Method, s: &Settings, p: &Problem) -> Result<()> {
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
            return Err(Error::config("--iterations", "must be at least 1"));
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

/// The error of a filter whose ensemble became NaN or infinite at state `t`.
fn diverged(t: usize) -> Error {
    Error::config(
        "--method",
        format!("the filter diverged (NaN or inf) at state {t}"),
    )
}

/// Whether every value is finite.
fn finite(e: &DMatrix<f64>) -> bool {
    e.iter().all(|v| v.is_finite())
}

/// The initial ensemble `N(x0, s² I)`, `D × N`.
fn initial_ensemble(p: &Problem, n: usize, rng: &mut MethodRng) -> DMatrix<f64> {
    let d = p.model.dim();
    DMatrix::from_fn(d, n, |i, _| {
        let z: f64 = StandardNormal.sample(rng);
        p.initial[i] + p.initial_std * z
    })
}

/// Moves every member one transition (with the model's noise, member by member from its own
/// random stream); in parallel when the ensemble is large enough to pay for it.
fn forecast(model: &dyn Dynamics, e: &mut DMatrix<f64>, seed: u64, t: usize) {
    let d = e.nrows();
    let noise = model.noise();
    let parallel = e.len() >= 1 << 14;
    if parallel {
        e.as_mut_slice()
            .par_chunks_mut(d * 64)
            .for_each(|c| model.step_all(c));
    } else {
        model.step_all(e.as_mut_slice());
    }
    if noise > 0.0 {
        let one = |(n, x): (usize, &mut [f64])| {
            let mut rng = chain_rng(seed ^ splitmix64(t as u64 + 1), n as u64);
            for v in x.iter_mut() {
                let z: f64 = StandardNormal.sample(&mut rng);
                *v += noise * z;
            }
        };
        if parallel {
            e.as_mut_slice().par_chunks_mut(d).enumerate().for_each(one);
        } else {
            e.as_mut_slice().chunks_mut(d).enumerate().for_each(one);
        }
    }
}

/// Mean and anomalies of an ensemble.
fn split(e: &DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let mean = e.column_mean();
    let mut a = e.clone();
    for mut c in a.column_iter_mut() {
        c -= &mean;
    }
    (mean, a)
}

/// `x̄ 1ᵀ + A`.
fn join(mean: &DVector<f64>, a: &DMatrix<f64>) -> DMatrix<f64> {
    let mut e = a.clone();
    for mut c in e.column_iter_mut() {
        c += mean;
    }
    e
}

/// A random mean-preserving orthogonal `N × N` matrix `Q` (`Q 1 = 1`, `QᵀQ = I`), Haar
/// distributed on that subgroup: the identity through [`rotate_members`].
pub fn mean_preserving_rotation<R: rand::Rng>(n: usize, rng: &mut R) -> DMatrix<f64> {
    let mut q = DMatrix::identity(n, n);
    rotate_members(&mut q, rng);
    q
}

/// `A ← A Q` for the columns (members) of `a` and a fresh random mean-preserving orthogonal
/// `Q = U blockdiag(1, O) U` (DAPPER's `genOG_1`): `U = I − c u uᵀ` the reflection with
/// `U e₁ = 1/√N`, and `O` Haar on `O(N − 1)`. `O` is drawn as Stewart's (1980) product of
/// Householder reflections `H₁ ⋯ H_{N−2} D` built from independent standard normal vectors
/// of dimensions `N − 1, …, 2` and the signs `D` that make the implied `R` of a QR
/// factorisation positive: the law of the `Q` factor of a Gaussian matrix, without forming
/// the matrix, its factorisation or `Q`. Each reflection is one pass over the columns.
pub fn rotate_members<R: rand::Rng>(a: &mut DMatrix<f64>, rng: &mut R) {
    let n = a.ncols();
    if n < 2 {
        return;
    }
    let rows = a.nrows();
    // The N(N−1)/2 normal draws come from a xoshiro256++ stream seeded by `rng`.
    let mut fast = rand::rngs::SmallRng::from_rng(rng);
    let mut av = vec![0.0; rows];
    // A ← A − β (A v) vᵀ for v supported on columns `from..`.
    let mut reflect = |a: &mut DMatrix<f64>, from: usize, v: &[f64], beta: f64| {
        av.fill(0.0);
        let data = a.as_mut_slice();
        for (j, &vj) in v.iter().enumerate() {
            let col = &data[(from + j) * rows..(from + j + 1) * rows];
            for (x, &c) in av.iter_mut().zip(col) {
                *x += c * vj;
            }
        }
        for (j, &vj) in v.iter().enumerate() {
            let col = &mut data[(from + j) * rows..(from + j + 1) * rows];
            let f = beta * vj;
            for (c, &x) in col.iter_mut().zip(&av) {
                *c -= f * x;
            }
        }
    };
    let mut u = vec![-1.0 / (n as f64).sqrt(); n];
    u[0] += 1.0;
    let cu = 2.0 / u.iter().map(|x| x * x).sum::<f64>();
    reflect(a, 0, &u, cu);
    let m = n - 1;
    let mut signs = vec![1.0; m];
    let mut v = vec![0.0f64; m];
    for k in 0..m {
        let v = &mut v[..m - k];
        for x in v.iter_mut() {
            *x = StandardNormal.sample(&mut fast);
        }
        if k + 1 == m {
            // The last diagonal entry of R: the sign of a normal draw.
            signs[k] = v[0].signum();
            break;
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        // H x = α e₁ with α = −sign(x₀)‖x‖ (R's diagonal entry), v = x − α e₁.
        let alpha = if v[0] >= 0.0 { -norm } else { norm };
        signs[k] = alpha.signum();
        v[0] -= alpha;
        let vv = v.iter().map(|x| x * x).sum::<f64>();
        if vv > 0.0 {
            reflect(a, 1 + k, v, 2.0 / vv);
        }
    }
    for (k, &sg) in signs.iter().enumerate() {
        if sg < 0.0 {
            a.column_mut(1 + k).neg_mut();
        }
    }
    reflect(a, 0, &u, cu);
}

/// Inflation and rotation of an ensemble's anomalies (DAPPER's `post_process`), in place.
fn post_process(e: &mut DMatrix<f64>, s: &Settings, rng: &mut MethodRng) {
    if s.inflation == 1.0 && !s.rotate {
        return;
    }
    // The arithmetic of x̄ + (x − x̄) · inflation, with the rotation between.
    let mean = e.column_mean();
    let d = e.nrows();
    for c in e.as_mut_slice().chunks_exact_mut(d) {
        for (x, m) in c.iter_mut().zip(mean.as_slice()) {
            *x -= m;
        }
    }
    if s.rotate {
        rotate_members(e, rng);
    }
    for c in e.as_mut_slice().chunks_exact_mut(d) {
        for (x, m) in c.iter_mut().zip(mean.as_slice()) {
            *x = m + *x * s.inflation;
        }
    }
}

/// EnKF-N's hyper-prior coefficients `(eN, cL)` for singular values² `s2` (padded to N) and
/// boost `xn` (Bocquet 2011, 2015; docs/baselines.md §2, "EnKF-N").
fn hyperprior(s2: &[f64], n: usize, xn: f64) -> (f64, f64) {
    let n1 = (n - 1) as f64;
    let mut en = (n as f64 + 1.0) / n as f64;
    let mut cl = n as f64 / n1;
    let h = s2.iter().map(|s| n1 / (s + n1)).sum::<f64>() / s2.len() as f64;
    let mc = (en / cl).powf(h).sqrt();
    en /= mc;
    cl *= mc;
    (en * xn, cl * xn)
}

/// The spectrum of `ỸᵀỸ` (`N × N`) for whitened anomalies `Ỹ` (`p × N`): eigenvectors `V_r`
/// (`N × r`) of its non-zero eigenvalues `s²` — through the `p × p` matrix `ỸỸᵀ` when `p < N`,
/// so that huge ensembles cost `O(p² N)`, not `O(N³)`.
pub(super) struct Spectrum {
    v: DMatrix<f64>,
    s2: Vec<f64>,
    n: usize,
}

impl Spectrum {
    pub(super) fn of(y: &DMatrix<f64>) -> Self {
        let (p, n) = y.shape();
        if p >= n {
            let (values, v) = eigen(dense::mul(y, true, y, false));
            let s2 = values.iter().map(|s| s.max(0.0)).collect();
            return Self { v, s2, n };
        }
        let (values, vectors) = eigen(dense::mul(y, false, y, true));
        let top = values.iter().fold(0.0f64, |m, &s| m.max(s));
        let keep: Vec<usize> = (0..p)
            .filter(|&i| values[i] > 1e-12 * top && values[i] > 0.0)
            .collect();
        let mut v = DMatrix::zeros(n, keep.len());
        let mut s2 = Vec::with_capacity(keep.len());
        for (c, &i) in keep.iter().enumerate() {
            let s = values[i];
            let col = y.transpose() * vectors.column(i) / s.sqrt();
            v.column_mut(c).copy_from(&col);
            s2.push(s);
        }
        Self { v, s2, n }
    }

    /// The `N` eigenvalues of `ỸᵀỸ`, zeros included.
    pub(super) fn padded(&self) -> Vec<f64> {
        let mut s = self.s2.clone();
        s.resize(self.n, 0.0);
        s
    }

    /// `f(ỸᵀỸ + ζ I)` as an `N × N` matrix.
    pub(super) fn function(&self, zeta: f64, f: impl Fn(f64) -> f64) -> DMatrix<f64> {
        let f0 = f(zeta);
        // V diag(f(s² + ζ) − f(ζ)) Vᵀ: the columns of V scaled, then one product.
        let mut vd = self.v.clone();
        for (mut c, &s) in vd.column_iter_mut().zip(&self.s2) {
            c *= f(s + zeta) - f0;
        }
        let mut out = dense::mul(&vd, false, &self.v, true);
        for i in 0..self.n {
            out[(i, i)] += f0;
        }
        out
    }

    /// `f(ỸᵀỸ + ζ I) x`.
    pub(super) fn apply(
        &self,
        zeta: f64,
        f: impl Fn(f64) -> f64,
        x: &DVector<f64>,
    ) -> DVector<f64> {
        let f0 = f(zeta);
        let c = self.v.transpose() * x;
        let d = DVector::from_iterator(
            c.len(),
            (0..c.len()).map(|i| (f(self.s2[i] + zeta) - f0) * c[i]),
        );
        &self.v * d + x * f0
    }
}

/// Eigenvalues and eigenvectors of a symmetric matrix ([`dense::symmetric_eigen`]); NaN where
/// that does not converge (non-finite input), so that the NaN reaches the ensemble and the
/// divergence check.
fn eigen(m: DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>) {
    match dense::symmetric_eigen(m.clone()) {
        Some(e) => e,
        None => {
            let n = m.nrows();
            (vec![f64::NAN; n], DMatrix::from_element(n, n, f64::NAN))
        }
    }
}

/// An ensemble-space analysis: mean weights and transform.
struct Transform {
    /// Mean weights `w`.
    w: DVector<f64>,
    /// The symmetric square-root transform `T`.
    t: DMatrix<f64>,
}

/// The ETKF's weights for whitened anomalies `y` (`p × N`) and innovation `d`: with `ζ = N − 1`,
/// or EnKF-N's `ζ` when `finite_size` is set. `E^a = x̄ 1ᵀ + A (w 1ᵀ + T)`, `w = (ỸᵀỸ + ζ)⁻¹ Ỹᵀ d̃`,
/// `T = √(N−1) (ỸᵀỸ + ζ)^{-1/2}`.
fn sqrt_transform(y: &DMatrix<f64>, d: &DVector<f64>, finite_size: Option<f64>) -> Transform {
    let n = y.ncols();
    let n1 = (n - 1) as f64;
    let sp = Spectrum::of(y);
    let yd = y.transpose() * d;
    let zeta = match finite_size {
        None => n1,
        Some(xn) => {
            let (en, cl) = hyperprior(&sp.padded(), n, xn);
            // Newton on J(w) = −wᵀỸᵀd̃ + ½ wᵀỸᵀỸw + ½ N1 cL log(eN + wᵀw) with the Hessian
            // approximated by ỸᵀỸ + ζ(w) I (docs/baselines.md §2, "EnKF-N").
            let zeta_of = |u: &DVector<f64>| n1 * cl / (en + u.norm_squared());
            let mut u = DVector::zeros(n);
            for _ in 0..100 {
                let z = zeta_of(&u);
                let grad = sp.apply(z, |g| g, &u) - &yd;
                let step = sp.apply(z, |g| 1.0 / g, &grad);
                u -= &step;
                if grad.norm() < 1e-7 || step.norm() < 1e-4 {
                    break;
                }
            }
            zeta_of(&u)
        }
    };
    let w = sp.apply(zeta, |g| 1.0 / g, &yd);
    let t = sp.function(zeta, |g| n1.sqrt() / g.sqrt());
    Transform { w, t }
}

impl Transform {
    /// `G` with `E G = x̄ 1ᵀ + A (w 1ᵀ + T)` for every ensemble `E` (mean `x̄`, anomalies `A`).
    fn right_factor(&self) -> DMatrix<f64> {
        let mut g = self.t.clone();
        for mut c in g.column_iter_mut() {
            c += &self.w;
        }
        anomaly_factor(g)
    }
}

/// `G = 1 1ᵀ / N + Π W` (`Π = I − 1 1ᵀ / N`) from `N × N` anomaly weights `W`:
/// `E G = x̄ 1ᵀ + A W`, in one product with the ensemble.
fn anomaly_factor(mut w: DMatrix<f64>) -> DMatrix<f64> {
    let n = w.nrows();
    for c in w.as_mut_slice().chunks_exact_mut(n) {
        let shift = 1.0 / n as f64 - c.iter().sum::<f64>() / n as f64;
        c.iter_mut().for_each(|x| *x += shift);
    }
    w
}

/// `x̄ 1ᵀ + A (w 1ᵀ + T)` for an ensemble `e`.
fn apply_transform(e: &DMatrix<f64>, tr: &Transform) -> DMatrix<f64> {
    dense::mul(e, false, &tr.right_factor(), false)
}

/// The generator of a method's draws.
type MethodRng = StdRng;

/// A seeded RNG for a method's draws (initial ensemble, perturbations, rotations).
fn method_rng(seed: u64) -> MethodRng {
    MethodRng::seed_from_u64(splitmix64(seed ^ 0xC1A5_51CA))
}

#[cfg(test)]
mod tests;
