//! Persistence: at every observed value, the last measurement carried forward (and the first
//! carried backward before it); the climatology where a value is never observed. Its spread at
//! a lag of `k` states from the measurement used is `√(σ² + δ_k²)`: the measurement's noise
//! and the root-mean-square difference `δ_k` of the training states `k` steps apart (the error
//! of persisting a true value `k` steps), or `√2` times the climatological std where the
//! training split has no pair that far apart. Draws are independent from value to value and
//! from state to state.

use std::collections::BTreeMap;

use nalgebra::DVector;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::{Drawn, Problem, Settings};
use crate::mcs::chain_rng;

/// At most this many pairs of training states (evenly spaced) estimate each lag's differences.
const MAX_PAIRS: usize = 4096;

/// The mean squared difference of the training values `lag` steps apart.
fn lag_variance(p: &Problem, lag: usize) -> DVector<f64> {
    let t = p.training;
    let pairs = t.pairs(lag);
    if pairs.is_empty() {
        // No pair so far apart: two independent climatological values.
        let s = p.climate.std.len() as f64;
        return p
            .climate
            .std
            .iter()
            .fold(DVector::zeros(t.dim()), |acc, sd| {
                acc + sd.component_mul(sd)
            })
            * (2.0 / s);
    }
    let step = pairs.len().div_ceil(MAX_PAIRS);
    let used: Vec<&(usize, usize)> = pairs.iter().step_by(step).collect();
    let mut sum = DVector::zeros(t.dim());
    for &&(i, j) in &used {
        let d = t.x.column(j) - t.x.column(i);
        sum += d.component_mul(&d);
    }
    sum / used.len() as f64
}

pub(super) fn run(p: &Problem, settings: &Settings, report: &mut Vec<String>) -> Drawn {
    let d = p.training.dim();
    // Each value's measurements by state: (value, noise variance), two measurements of one
    // state combined by their inverse variances.
    let mut seen: Vec<BTreeMap<usize, (f64, f64)>> = vec![BTreeMap::new(); d];
    for g in &p.groups {
        for ((&k, &v), &s) in g.at.iter().zip(&g.value).zip(&g.std) {
            let e = seen[k].entry(g.time).or_insert((0.0, 0.0));
            // (Σ v/σ², Σ 1/σ²) for now.
            e.0 += v / (s * s);
            e.1 += 1.0 / (s * s);
        }
    }
    for m in &mut seen {
        for e in m.values_mut() {
            *e = (e.0 / e.1, 1.0 / e.1);
        }
    }
    // The lag and measurement each (state, value) persists.
    let nearest = |k: usize, t: usize| -> Option<(usize, f64, f64)> {
        let m = &seen[k];
        let before = m.range(..=t).next_back();
        let after = || m.range(t..).next();
        before
            .map(|(&s, &(v, var))| (t - s, v, var))
            .or_else(|| after().map(|(&s, &(v, var))| (s - t, v, var)))
    };
    let mut lags: Vec<usize> = (0..p.length)
        .flat_map(|t| (0..d).filter_map(move |k| nearest(k, t).map(|n| n.0)))
        .filter(|&l| l > 0)
        .collect();
    lags.sort_unstable();
    lags.dedup();
    let deltas: BTreeMap<usize, DVector<f64>> =
        lags.par_iter().map(|&l| (l, lag_variance(p, l))).collect();
    let observed = seen.iter().filter(|m| !m.is_empty()).count();
    report.push(format!(
        "persistence at the {observed} observed values of {d} (lags of up to {} states), \
         climatology at the others",
        lags.last().copied().unwrap_or(0)
    ));
    // (mean, std) of every (state, value).
    let moments: Vec<Vec<(f64, f64)>> = (0..p.length)
        .map(|t| {
            let s = p.season(t);
            (0..d)
                .map(|k| match nearest(k, t) {
                    Some((0, v, var)) => (v, var.sqrt()),
                    Some((lag, v, var)) => (v, (var + deltas[&lag][k]).sqrt()),
                    None => (p.climate.mean[s][k], p.climate.std[s][k]),
                })
                .collect()
        })
        .collect();
    let per_state: Vec<Vec<f64>> = (0..p.length)
        .into_par_iter()
        .map(|t| {
            let mut rng = chain_rng(settings.seed, t as u64);
            let mut out = Vec::with_capacity(settings.samples * d);
            for _ in 0..settings.samples {
                for &(m, sd) in &moments[t] {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    out.push(m + sd * z);
                }
            }
            out
        })
        .collect();
    let mut samples = Vec::with_capacity(settings.samples * p.length * d);
    for n in 0..settings.samples {
        for state in &per_state {
            samples.extend_from_slice(&state[n * d..(n + 1) * d]);
        }
    }
    let mean = moments.iter().flatten().map(|m| m.0).collect();
    Drawn { samples, mean }
}
