//! Presets (`--preset stable|paper|fast|accurate`): sampler and likelihood settings a user need not
//! tune, with explicitly given settings taking precedence. Shared by the command line's
//! `assimilate` and `study` and the Python package, so that all accept and refuse the same.

use super::guidance::{Likelihood, Solver};
use super::sampler::{Corrector, Grid, Method};
use crate::error::{Error, Result};

/// Named sampler and likelihood settings (see `docs/mmps.md` for the measurements behind them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The default: the paper's sampler (PC, 256 steps uniform in t, C = 1, τ = 0.25) with
    /// moment matching's likelihood, one CG iteration. On the grid of priors, noises and
    /// operators of `docs/guard.md` it diverged only where the prior's own steps did, at the
    /// cost per run of SDA's likelihood.
    #[default]
    Stable,
    /// The paper's: PC sampler, 256 steps uniform in t, C = 1, τ = 0.25, SDA likelihood with
    /// γ = 0.03.
    Paper,
    /// Best W1 measured on Lorenz-63 at a quarter of the passes of the paper's sampler with
    /// C = 2 (docs/mmps.md): the paper's sampler and likelihood with 64 steps, C = 2.
    Fast,
    /// Best W1 measured on Lorenz-63 (docs/mmps.md): the paper's sampler and likelihood with
    /// 256 steps, C = 4.
    Accurate,
}

/// The likelihood approximation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LikelihoodKind {
    /// SDA's Gaussian approximation, variance σ_y² + γ (σ/μ)² (the paper's).
    Sda,
    /// Diffusion posterior sampling (Chung et al. 2023), step ζ.
    Dps,
    /// Moment matching (Rozet et al. 2024): Tweedie's covariance through network Jacobians,
    /// solved by --solver in --iterations steps.
    Mmps,
}

/// The flags a user gave (None: not given), before the preset fills the rest.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    /// The sampler (`--sampler`).
    pub sampler: Option<Method>,
    /// Sampler steps T (`--steps`).
    pub steps: Option<usize>,
    /// The time grid (`--grid`).
    pub grid: Option<Grid>,
    /// DDIM's η (`--eta`).
    pub eta: Option<f64>,
    /// Corrections C per step (`--corrections`).
    pub corrections: Option<usize>,
    /// The corrector (`--corrector`).
    pub corrector: Option<Corrector>,
    /// The SDA corrector's τ (`--tau`).
    pub tau: Option<f64>,
    /// The fixed corrector's δ (`--delta`).
    pub delta: Option<f64>,
    /// The likelihood (`--likelihood`).
    pub likelihood: Option<LikelihoodKind>,
    /// MMPS's Krylov solver (`--solver`).
    pub solver: Option<Solver>,
    /// MMPS's iterations K (`--iterations`).
    pub iterations: Option<usize>,
    /// SDA's γ (`--gamma`).
    pub gamma: Option<f64>,
    /// DPS's ζ (`--zeta`).
    pub zeta: Option<f64>,
}

/// Settings resolved from a preset and flags.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// The sampler (`--sampler`).
    pub sampler: Method,
    /// Sampler steps T (`--steps`).
    pub steps: usize,
    /// The time grid (`--grid`).
    pub grid: Grid,
    /// DDIM's η (`--eta`).
    pub eta: f64,
    /// Corrections C per step (`--corrections`).
    pub corrections: usize,
    /// The corrector (`--corrector`).
    pub corrector: Corrector,
    /// The SDA corrector's τ (`--tau`).
    pub tau: f64,
    /// The fixed corrector's δ (`--delta`).
    pub delta: f64,
    /// The likelihood (`--likelihood`).
    pub likelihood: Likelihood,
}

impl Preset {
    fn flags(self) -> Flags {
        let paper = Flags {
            sampler: Some(Method::Pc),
            steps: Some(256),
            grid: Some(Grid::T),
            eta: Some(0.0),
            corrections: Some(1),
            corrector: Some(Corrector::Sda),
            tau: Some(0.25),
            delta: Some(0.1),
            likelihood: Some(LikelihoodKind::Sda),
            solver: Some(Solver::Cg),
            iterations: Some(1),
            gamma: Some(0.03),
            zeta: Some(1.0),
        };
        match self {
            Preset::Stable => Flags {
                likelihood: Some(LikelihoodKind::Mmps),
                ..paper
            },
            Preset::Paper => paper,
            Preset::Fast => Flags {
                steps: Some(64),
                corrections: Some(2),
                ..paper
            },
            Preset::Accurate => Flags {
                corrections: Some(4),
                ..paper
            },
        }
    }

    /// The preset's settings, overridden by every flag given. A likelihood's own flag given
    /// without `--likelihood` chooses that likelihood (`--gamma`: sda, `--zeta`: dps,
    /// `--solver` or `--iterations`: mmps). A flag that means nothing for
    /// the settings it ends up with (`--eta` without DDIM, `--delta` without the fixed
    /// corrector, `--tau` with it, `--solver`/`--iterations` without MMPS, `--gamma` without
    /// SDA, `--zeta` without DPS) is an error; out-of-range values too.
    pub fn resolve(self, given: &Flags) -> Result<Settings> {
        let base = self.flags();
        fn pick<T>(given: Option<T>, base: Option<T>) -> T {
            given.or(base).expect("every preset sets every flag")
        }
        let sampler: Method = pick(given.sampler, base.sampler);
        let corrector: Corrector = pick(given.corrector, base.corrector);
        let implied = if given.gamma.is_some() {
            Some(LikelihoodKind::Sda)
        } else if given.zeta.is_some() {
            Some(LikelihoodKind::Dps)
        } else if given.solver.is_some() || given.iterations.is_some() {
            Some(LikelihoodKind::Mmps)
        } else {
            None
        };
        let kind: LikelihoodKind = pick(given.likelihood.or(implied), base.likelihood);
        refuse_meaningless(given, sampler, corrector, kind)?;
        let s = Settings {
            sampler,
            steps: pick(given.steps, base.steps),
            grid: pick(given.grid, base.grid),
            eta: pick(given.eta, base.eta),
            corrections: pick(given.corrections, base.corrections),
            corrector,
            tau: pick(given.tau, base.tau),
            delta: pick(given.delta, base.delta),
            likelihood: match kind {
                LikelihoodKind::Sda => Likelihood::Sda {
                    gamma: pick(given.gamma, base.gamma),
                },
                LikelihoodKind::Dps => Likelihood::Dps {
                    zeta: pick(given.zeta, base.zeta),
                },
                LikelihoodKind::Mmps => Likelihood::Mmps {
                    solver: pick(given.solver, base.solver),
                    iterations: pick(given.iterations, base.iterations),
                },
            },
        };
        check_ranges(&s)?;
        Ok(s)
    }
}

/// Refuses a flag that means nothing for the settings it ends up with (see
/// [`Preset::resolve`]).
fn refuse_meaningless(
    given: &Flags,
    sampler: Method,
    corrector: Corrector,
    kind: LikelihoodKind,
) -> Result<()> {
    if given.eta.is_some() && sampler != Method::Ddim {
        return Err(Error::config(
            "--eta",
            format!(
                "applies to --sampler ddim only (the sampler is {})",
                crate::flag_value(&sampler)
            ),
        ));
    }
    if given.delta.is_some() && corrector != Corrector::Fixed {
        return Err(Error::config(
            "--delta",
            format!(
                "applies to --corrector fixed only (the corrector is {})",
                crate::flag_value(&corrector)
            ),
        ));
    }
    if given.tau.is_some() && corrector != Corrector::Sda {
        return Err(Error::config(
            "--tau",
            "applies to --corrector sda only (the corrector is fixed: use --delta)",
        ));
    }
    if kind != LikelihoodKind::Mmps && (given.solver.is_some() || given.iterations.is_some()) {
        return Err(Error::config(
            "--solver and --iterations",
            format!(
                "apply to --likelihood mmps only (the likelihood is {})",
                crate::flag_value(&kind)
            ),
        ));
    }
    if given.gamma.is_some() && kind != LikelihoodKind::Sda {
        return Err(Error::config(
            "--gamma",
            format!(
                "applies to --likelihood sda only (the likelihood is {})",
                crate::flag_value(&kind)
            ),
        ));
    }
    if given.zeta.is_some() && kind != LikelihoodKind::Dps {
        return Err(Error::config(
            "--zeta",
            format!(
                "applies to --likelihood dps only (the likelihood is {})",
                crate::flag_value(&kind)
            ),
        ));
    }
    Ok(())
}

/// Refuses settings out of range.
fn check_ranges(s: &Settings) -> Result<()> {
    if s.steps == 0 {
        return Err(Error::config("--steps", "must be at least 1"));
    }
    if matches!(s.likelihood, Likelihood::Mmps { iterations: 0, .. }) {
        return Err(Error::config("--iterations", "must be at least 1"));
    }
    match s.likelihood {
        Likelihood::Sda { gamma } if !(gamma > 0.0 && gamma.is_finite()) => {
            return Err(Error::config(
                "--gamma",
                format!("must be positive and finite (got {gamma})"),
            ));
        }
        Likelihood::Dps { zeta } if !(zeta > 0.0 && zeta.is_finite()) => {
            return Err(Error::config(
                "--zeta",
                format!("must be positive and finite (got {zeta})"),
            ));
        }
        _ => {}
    }
    if !(s.delta > 0.0 && s.delta.is_finite()) {
        return Err(Error::config(
            "--delta",
            format!("must be positive (got {})", s.delta),
        ));
    }
    if !(0.0..=1.0).contains(&s.eta) {
        return Err(Error::config(
            "--eta",
            format!("must lie in [0, 1] (got {})", s.eta),
        ));
    }
    if !(s.tau > 0.0 && s.tau.is_finite()) {
        return Err(Error::config(
            "--tau",
            format!("must be positive (got {})", s.tau),
        ));
    }
    Ok(())
}

impl Settings {
    /// One line naming what runs: `eab2 on the log-SNR grid, 32 steps, C = 0, MMPS (CG, K = 1)`.
    pub fn describe(&self) -> String {
        let grid = match self.grid {
            Grid::T => "uniform-t grid",
            Grid::Logsnr => "log-SNR grid",
        };
        let mut sampler = crate::flag_value(&self.sampler);
        if self.sampler == Method::Ddim {
            sampler = format!("ddim (η = {})", self.eta);
        }
        let corrector = match (self.corrections, self.corrector) {
            (0, _) => "C = 0".to_string(),
            (c, Corrector::Sda) => format!("C = {c} (τ = {})", self.tau),
            (c, Corrector::Fixed) => format!("C = {c} (fixed δ = {})", self.delta),
        };
        format!(
            "{sampler} on the {grid}, {} steps, {corrector}, {}",
            self.steps,
            likelihood_name(&self.likelihood)
        )
    }
}

/// `SDA (γ = 0.03)`, `DPS (ζ = 1)`, `MMPS (CG, K = 1)`.
pub fn likelihood_name(l: &Likelihood) -> String {
    match l {
        Likelihood::Sda { gamma } => format!("SDA (γ = {gamma})"),
        Likelihood::Dps { zeta } => format!("DPS (ζ = {zeta})"),
        Likelihood::Mmps { solver, iterations } => format!(
            "MMPS ({}, K = {iterations})",
            crate::flag_value(solver).to_uppercase()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_presets() {
        let s = Preset::Fast
            .resolve(&Flags {
                steps: Some(48),
                ..Flags::default()
            })
            .unwrap();
        assert_eq!((s.steps, s.sampler, s.corrections), (48, Method::Pc, 2));
        let s = Preset::Accurate.resolve(&Flags::default()).unwrap();
        assert_eq!((s.steps, s.corrections), (256, 4));
        assert_eq!(Preset::Paper.resolve(&Flags::default()).unwrap().steps, 256);
    }

    #[test]
    fn meaningless_and_out_of_range_flags_are_refused() {
        for (flags, needle) in [
            (
                Flags {
                    eta: Some(0.5),
                    ..Flags::default()
                },
                "--eta: applies",
            ),
            (
                Flags {
                    delta: Some(0.1),
                    ..Flags::default()
                },
                "--delta: applies",
            ),
            (
                Flags {
                    likelihood: Some(LikelihoodKind::Sda),
                    iterations: Some(2),
                    ..Flags::default()
                },
                "--solver and --iterations: apply",
            ),
            (
                Flags {
                    gamma: Some(0.1),
                    zeta: Some(1.0),
                    ..Flags::default()
                },
                "--zeta: applies to --likelihood dps only (the likelihood is sda)",
            ),
            (
                Flags {
                    likelihood: Some(LikelihoodKind::Mmps),
                    iterations: Some(0),
                    ..Flags::default()
                },
                "at least 1",
            ),
            (
                Flags {
                    sampler: Some(Method::Ddim),
                    eta: Some(1.5),
                    ..Flags::default()
                },
                "[0, 1]",
            ),
            (
                Flags {
                    gamma: Some(0.0),
                    ..Flags::default()
                },
                "--gamma: must be positive",
            ),
            (
                Flags {
                    gamma: Some(-0.1),
                    ..Flags::default()
                },
                "--gamma: must be positive",
            ),
            (
                Flags {
                    corrector: Some(Corrector::Fixed),
                    delta: Some(0.0),
                    ..Flags::default()
                },
                "positive",
            ),
        ] {
            let e = Preset::Paper.resolve(&flags).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    /// The default is the paper's sampler with MMPS, one CG iteration.
    #[test]
    fn the_default_is_the_papers_sampler_with_mmps() {
        let s = Preset::default().resolve(&Flags::default()).unwrap();
        let paper = Preset::Paper.resolve(&Flags::default()).unwrap();
        assert_eq!(
            s.likelihood,
            Likelihood::Mmps {
                solver: Solver::Cg,
                iterations: 1
            }
        );
        assert_eq!(paper.likelihood, Likelihood::Sda { gamma: 0.03 });
        assert_eq!(
            Settings {
                likelihood: paper.likelihood,
                ..s
            },
            paper
        );
    }

    /// A likelihood's own flag chooses that likelihood, on any preset.
    #[test]
    fn a_likelihoods_own_flag_chooses_it() {
        for (flags, want) in [
            (
                Flags {
                    gamma: Some(0.3),
                    ..Flags::default()
                },
                Likelihood::Sda { gamma: 0.3 },
            ),
            (
                Flags {
                    zeta: Some(0.5),
                    ..Flags::default()
                },
                Likelihood::Dps { zeta: 0.5 },
            ),
            (
                Flags {
                    iterations: Some(3),
                    ..Flags::default()
                },
                Likelihood::Mmps {
                    solver: Solver::Cg,
                    iterations: 3,
                },
            ),
        ] {
            assert_eq!(Preset::default().resolve(&flags).unwrap().likelihood, want);
            assert_eq!(Preset::Paper.resolve(&flags).unwrap().likelihood, want);
        }
    }

    #[test]
    fn a_presets_settings_take_mmps_and_its_iterations() {
        let s = Preset::Accurate
            .resolve(&Flags {
                likelihood: Some(LikelihoodKind::Mmps),
                iterations: Some(2),
                ..Flags::default()
            })
            .unwrap();
        assert!(matches!(
            s.likelihood,
            Likelihood::Mmps { iterations: 2, .. }
        ));
    }
}
