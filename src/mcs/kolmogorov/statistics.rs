//! One-point and two-point statistics of saved Kolmogorov states.

use std::fmt;

use rayon::prelude::*;
use rustfft::FftPlanner;
use serde::{Deserialize, Serialize};

use super::grid::{fft2, grid_step, signed};

/// One-point and two-point statistics of saved Kolmogorov states, to compare a data set with
/// the reference (and assimilated samples with the data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    /// Number of states.
    pub states: usize,
    /// Mean kinetic energy `½⟨u² + v²⟩`.
    pub energy: f64,
    /// One-point standard deviations of `u` and `v`.
    pub std: [f64; 2],
    /// `a` of the least-squares fit `⟨u⟩(y) ≈ a sin(k_f y)` over the cell centres.
    pub profile_amplitude: f64,
    /// Correlation between `⟨u⟩(y)` and `sin(k_f y)`.
    pub profile_correlation: f64,
    /// Isotropic energy spectrum `E(k)`, `k = 0, 1, …, h/2`: `½(|û|² + |v̂|²)` summed over the
    /// modes with `round(|k|) = k` and averaged over states, so that `Σ E(k) ≈ energy`.
    pub spectrum: Vec<f64>,
    /// Time autocorrelation of `u − ⟨u⟩(y)` at lags of 1 to 8 saved states.
    pub autocorrelation: Vec<f64>,
}

impl Statistics {
    /// The statistics of `[n, l, 2, h, w]` states, the profile against `sin(k_f y)`.
    pub fn of(data: &[f32], [n, l, h, w]: [usize; 4], k_f: usize) -> Self {
        let d = 2 * h * w;
        assert_eq!(data.len(), n * l * d, "data of shape [n, l, 2, h, w]");
        let states = n * l;
        let count = (states * h * w) as f64;
        let (mut su, mut sv, mut su2, mut sv2) = (0.0, 0.0, 0.0, 0.0);
        let mut profile = vec![0.0; w];
        for s in data.chunks(d) {
            let (u, v) = s.split_at(h * w);
            for (j, (a, b)) in u.iter().zip(v).enumerate() {
                let (a, b) = (*a as f64, *b as f64);
                su += a;
                sv += b;
                su2 += a * a;
                sv2 += b * b;
                profile[j % w] += a;
            }
        }
        for p in &mut profile {
            *p /= (states * h) as f64;
        }
        let std = [
            (su2 / count - (su / count).powi(2)).max(0.0).sqrt(),
            (sv2 / count - (sv / count).powi(2)).max(0.0).sqrt(),
        ];
        let energy = 0.5 * (su2 + sv2) / count;

        // Profile against sin(k_f y), y at the cell centres.
        let basis: Vec<f64> = (0..w)
            .map(|j| (k_f as f64 * (j as f64 + 0.5) * grid_step(w)).sin())
            .collect();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let profile_amplitude = dot(&profile, &basis) / dot(&basis, &basis);
        let pm = profile.iter().sum::<f64>() / w as f64;
        let bm = basis.iter().sum::<f64>() / w as f64;
        let pc: Vec<f64> = profile.iter().map(|p| p - pm).collect();
        let bc: Vec<f64> = basis.iter().map(|b| b - bm).collect();
        let profile_correlation =
            dot(&pc, &bc) / (dot(&pc, &pc) * dot(&bc, &bc)).sqrt().max(1e-300);

        // Energy spectrum.
        let bins = h.min(w) / 2 + 1;
        let spectrum = if h == w && h > 0 {
            let fft = FftPlanner::<f32>::new().plan_fft_forward(h);
            let norm = 1.0 / (h * w) as f64;
            let sum = data
                .par_chunks(d)
                .map(|s| {
                    let mut e = vec![0.0; bins];
                    for ch in 0..2 {
                        let g = fft2(&s[ch * h * w..(ch + 1) * h * w], h, &fft);
                        for (a, row) in g.chunks(w).enumerate() {
                            for (b, z) in row.iter().enumerate() {
                                let (kx, ky) = (signed(a, h) as f64, signed(b, w) as f64);
                                let k = (kx * kx + ky * ky).sqrt().round() as usize;
                                if k < bins {
                                    e[k] += 0.5 * (z.norm_sqr() as f64) * norm * norm;
                                }
                            }
                        }
                    }
                    e
                })
                .reduce(
                    || vec![0.0; bins],
                    |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
                );
            sum.into_iter().map(|e| e / states as f64).collect()
        } else {
            vec![]
        };

        // Autocorrelation of u' = u − ⟨u⟩(y) along each trajectory.
        let lags = 8.min(l.saturating_sub(1));
        let mut autocorrelation = Vec::with_capacity(lags);
        let fluct = |t: &[f32], i: usize, p: usize| t[i * d + p] as f64 - profile[p % w];
        let var: f64 = data
            .chunks(l * d)
            .map(|t| {
                (0..l)
                    .map(|i| (0..h * w).map(|p| fluct(t, i, p).powi(2)).sum::<f64>())
                    .sum::<f64>()
            })
            .sum::<f64>()
            / count;
        for lag in 1..=lags {
            let pairs = (n * (l - lag) * h * w) as f64;
            let cov: f64 = data
                .chunks(l * d)
                .map(|t| {
                    (0..l - lag)
                        .map(|i| {
                            (0..h * w)
                                .map(|p| fluct(t, i, p) * fluct(t, i + lag, p))
                                .sum::<f64>()
                        })
                        .sum::<f64>()
                })
                .sum::<f64>()
                / pairs;
            autocorrelation.push(cov / var.max(1e-300));
        }
        Self {
            states,
            energy,
            std,
            profile_amplitude,
            profile_correlation,
            spectrum,
            autocorrelation,
        }
    }
}

impl fmt::Display for Statistics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "statistics over {} states:", self.states)?;
        writeln!(f, "  mean kinetic energy ½⟨u²+v²⟩  {:.4}", self.energy)?;
        writeln!(
            f,
            "  std of u, v                    {:.4}, {:.4}",
            self.std[0], self.std[1]
        )?;
        writeln!(
            f,
            "  ⟨u⟩(y) ≈ a sin(k_f y): a       {:.4} (correlation {:.3})",
            self.profile_amplitude, self.profile_correlation
        )?;
        let spectrum: Vec<String> = self.spectrum.iter().map(|e| format!("{e:.2e}")).collect();
        writeln!(f, "  E(k), k = 0..                  {}", spectrum.join(" "))?;
        let acf: Vec<String> = self
            .autocorrelation
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect();
        write!(f, "  autocorrelation of u, lag 1..  {}", acf.join(" "))
    }
}
