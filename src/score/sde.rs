//! Variance-preserving noise schedules (docs/method.md §2): `x(t) = μ(t) x + σ(t) ε`,
//! `σ(t) = √(1 − μ(t)² + η²)`, so that `μ² + σ² = 1 + η²` at every `t`.

use serde::{Deserialize, Serialize};

/// How `μ(t)` decays from 1 at `t = 0` to about `η` at `t = 1`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// `μ(t) = cos(acos(√η) t)²` (the paper's default).
    #[default]
    Cos,
    /// `μ(t) = 1 − (1 − η) t`.
    Lin,
    /// `μ(t) = exp(ln(η) t²)`.
    Exp,
}

/// A variance-preserving SDE: a schedule and its floor `η`. Carries no weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VpSde {
    /// The schedule of `μ(t)`.
    pub schedule: Schedule,
    /// The noise floor η (1e-3 in the paper).
    pub eta: f64,
}

impl Default for VpSde {
    fn default() -> Self {
        Self {
            schedule: Schedule::Cos,
            eta: 1e-3,
        }
    }
}

impl VpSde {
    /// `μ(t)`.
    pub fn mu(&self, t: f64) -> f64 {
        let eta = self.eta;
        match self.schedule {
            Schedule::Cos => ((eta.sqrt()).acos() * t).cos().powi(2),
            Schedule::Lin => 1.0 - (1.0 - eta) * t,
            Schedule::Exp => (eta.ln() * t * t).exp(),
        }
    }

    /// `σ(t) = √(1 − μ(t)² + η²)`.
    pub fn sigma(&self, t: f64) -> f64 {
        (1.0 - self.mu(t).powi(2) + self.eta * self.eta).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variance_is_preserved_at_every_time() {
        // σ(t)² + μ(t)² = 1 + η² for each schedule and t.
        for schedule in [Schedule::Cos, Schedule::Lin, Schedule::Exp] {
            let sde = VpSde {
                schedule,
                eta: 1e-3,
            };
            for i in 0..=100 {
                let t = i as f64 / 100.0;
                let lhs = sde.sigma(t).powi(2) + sde.mu(t).powi(2);
                assert!((lhs - (1.0 + 1e-6)).abs() < 1e-12, "{schedule:?} t={t}");
            }
            // μ(0) = 1 and μ(1) ≈ η (exactly η for lin and exp; for cos cos(acos √η)² = η).
            assert!((sde.mu(0.0) - 1.0).abs() < 1e-12);
            assert!((sde.mu(1.0) - 1e-3).abs() < 1e-9, "{schedule:?}");
        }
    }
}
