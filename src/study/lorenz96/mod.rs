//! The Lorenz-96 benchmark's pieces (docs/baselines.md §6, docs/classical.md): its cases
//! ([`Case`], DAPPER's tuned settings), the truth and observations of one seed, the operator on
//! the grid SDA models, and the rows of its table ([`Row`]).

mod cases;
mod rows;

pub use cases::case;
pub use rows::Row;

use rand_distr::{Distribution, StandardNormal};

use crate::classical::{Method, Settings};
use crate::error::{Error, Result};
use crate::io::Array;
use crate::mcs::{Lorenz96, chain_rng};
use crate::score::operator::Operator;

/// One benchmark case: model grid, observations and the time of the burn-in.
pub struct Case {
    /// The case's name (`--cases`).
    pub name: &'static str,
    /// Physical time of one RK4 step.
    pub dt: f64,
    /// Model steps per observation.
    pub dko: usize,
    /// Observation cycles by default.
    pub cycles: usize,
    /// The observation operator on the model grid.
    pub operator: String,
    /// The observation noise std.
    pub std: f64,
    /// Scores average over t > burn_in (strictly).
    pub burn_in: f64,
    /// SDA models every `thin`-th model state (its prior's time step is `thin · dt`).
    pub thin: usize,
    /// The classical methods run: table label, method and settings.
    pub methods: Vec<(String, Method, Settings)>,
}

impl Case {
    /// The deterministic L96-40 model (F = 8) on the case's grid.
    pub fn model(&self) -> Lorenz96 {
        Lorenz96 {
            n: 40,
            forcing: 8.0,
            dt: self.dt,
            noise: 0.0,
        }
    }
}

/// The truth `x_0 ~ N(e_0, 0.001 I)`, `K` RK4 steps, and the observations.
pub fn simulate(
    model: &Lorenz96,
    c: &Case,
    steps: usize,
    seed: u64,
) -> Result<(Vec<f64>, Operator, Array, Vec<f32>)> {
    let d = model.n;
    let mut rng = chain_rng(seed, 0);
    let mut x: Vec<f64> = (0..d)
        .map(|i| {
            let z: f64 = StandardNormal.sample(&mut rng);
            (if i == 0 { 1.0 } else { 0.0 }) + 0.001f64.sqrt() * z
        })
        .collect();
    let mut truth = Vec::with_capacity((steps + 1) * d);
    truth.extend_from_slice(&x);
    for _ in 0..steps {
        model.step(&mut x);
        truth.extend_from_slice(&x);
    }
    let op = Operator::parse(&c.operator)?;
    let times = op.times(steps + 1)?;
    let map = crate::classical::ObsMap::new(&op, d)?;
    let mut noise_rng = chain_rng(seed, 1);
    let mut y = Vec::new();
    for &t in &times {
        for v in map.apply(&truth[t * d..(t + 1) * d]) {
            let z: f64 = StandardNormal.sample(&mut noise_rng);
            y.push((v + c.std * z) as f32);
        }
    }
    let shape = op.output_shape(steps + 1, &[d])?;
    let n = y.len();
    Ok((truth, op, Array::new(shape, y), vec![c.std as f32; n]))
}

/// The ensemble mean as a `(1, L, D)` array.
pub fn mean_of(x: &Array) -> Array {
    let (n, l, d) = (x.shape[0], x.shape[1], x.shape[2]);
    let mut m = vec![0.0f32; l * d];
    for k in 0..n {
        for (i, v) in x.data[k * l * d..(k + 1) * l * d].iter().enumerate() {
            m[i] += v / n as f32;
        }
    }
    Array::new(vec![1, l, d], m)
}

/// The operator of a case on the states SDA models (every `thin`-th model state).
pub fn sda_operator(c: &Case) -> Result<Operator> {
    if !c.dko.is_multiple_of(c.thin) {
        return Err(Error::config(
            c.name,
            format!(
                "observations every {} steps are not on a grid of every {}th state",
                c.dko, c.thin
            ),
        ));
    }
    let n = c.dko / c.thin;
    let rest = c
        .operator
        .split_once('|')
        .map(|(_, r)| format!("|{r}"))
        .unwrap_or_default();
    Operator::parse(&format!("stride:{n}@{n}{rest}"))
}
