//! The sampler settings each study runs, from its flags: the Lorenz-63 study's combinations
//! ([`Combo`]) and the Lorenz-96 benchmark's SDA rows ([`SdaSetting`]).

use anyhow::{Result, bail};
use sda::score::autoregressive::Sampling;
use sda::score::guidance::Likelihood;
use sda::score::preset::{
    Flags, LikelihoodKind, Preset, Settings as SamplerSettings, likelihood_name,
};
use sda::score::sampler::Method;
use sda::study::lorenz63::Combo;
use sda::train::Network;

use super::Args;

/// Every combination of the lists given (the preset filling what is not), per C.
pub fn combos(a: &Args) -> Result<(Vec<Combo>, Vec<usize>)> {
    let base = a.preset.resolve(&Flags {
        grid: a.grid,
        corrector: a.corrector,
        tau: a.tau,
        delta: a.delta,
        ..Flags::default()
    })?;
    let or = |v: &Vec<usize>, d: usize| if v.is_empty() { vec![d] } else { v.clone() };
    let likelihoods = if a.likelihoods.is_empty() {
        vec![match base.likelihood {
            Likelihood::Sda { .. } => LikelihoodKind::Sda,
            Likelihood::Dps { .. } => LikelihoodKind::Dps,
            Likelihood::Mmps { .. } => LikelihoodKind::Mmps,
        }]
    } else {
        a.likelihoods.clone()
    };
    let samplers = if a.samplers.is_empty() {
        vec![base.sampler]
    } else {
        a.samplers.clone()
    };
    let preset_iterations = match base.likelihood {
        Likelihood::Mmps { iterations, .. } => iterations,
        _ => 1,
    };
    let mut out = Vec::new();
    for &likelihood in &likelihoods {
        let iterations = match likelihood {
            LikelihoodKind::Mmps => or(&a.iterations, preset_iterations),
            _ => vec![0],
        };
        for &sampler in &samplers {
            for &steps in &or(&a.steps, base.steps) {
                for &k in &iterations {
                    let mmps = likelihood == LikelihoodKind::Mmps;
                    let settings = a.preset.resolve(&Flags {
                        sampler: Some(sampler),
                        steps: Some(steps),
                        grid: a.grid,
                        eta: a.eta.filter(|_| sampler == Method::Ddim),
                        corrector: a.corrector,
                        tau: a.tau,
                        delta: a.delta,
                        likelihood: Some(likelihood),
                        solver: a.solver.filter(|_| mmps),
                        iterations: mmps.then_some(k),
                        gamma: a.gamma.filter(|_| likelihood == LikelihoodKind::Sda),
                        ..Flags::default()
                    })?;
                    for &sampling in &a.sampling {
                        out.push(Combo { settings, sampling });
                    }
                }
            }
        }
    }
    let corrections = match (a.corrections.is_empty(), a.preset) {
        (false, _) => a.corrections.clone(),
        (true, Preset::Paper | Preset::Stable) => vec![0, 1, 2, 4, 8, 16],
        (true, _) => vec![base.corrections],
    };
    Ok((out, corrections))
}

/// One SDA setting of the study: the prior's order and the sampler and likelihood.
pub struct SdaSetting {
    pub network: Network,
    pub k: usize,
    pub settings: SamplerSettings,
    pub sampling: Sampling,
}

impl SdaSetting {
    /// The table's method name, e.g. `sda ring k=2 T=64 C=1 τ=0.25 γ=0.03 N=16`.
    pub fn label(&self, samples: usize) -> String {
        let s = &self.settings;
        let lik = match s.likelihood {
            Likelihood::Sda { gamma } => format!("γ={gamma}"),
            other => likelihood_name(&other),
        };
        let sampling = match self.sampling {
            Sampling::Joint => "",
            Sampling::Autoregressive => " ar",
        };
        format!(
            "sda {} k={} T={} C={} τ={} {lik} N={samples}{sampling}",
            sda::flag_value(&self.network),
            self.k,
            s.steps,
            s.corrections,
            s.tau
        )
    }
}

/// Every combination of --sda-orders, --steps and --corrections, the preset filling the rest.
pub fn sda_settings(a: &Args) -> Result<Vec<SdaSetting>> {
    let base = a.preset.resolve(&Flags::default())?;
    let steps = if a.steps.is_empty() {
        vec![base.steps]
    } else {
        a.steps.clone()
    };
    let corrections = if a.corrections.is_empty() {
        vec![base.corrections]
    } else {
        a.corrections.clone()
    };
    let mut out = Vec::new();
    for (&network, &k) in a
        .sda_networks
        .iter()
        .flat_map(|n| a.sda_orders.iter().map(move |k| (n, k)))
    {
        if k == 0 {
            bail!("--sda-orders: k must be at least 1 (windows of 2k + 1 states)");
        }
        if !matches!(network, Network::Mlp | Network::Ring) {
            bail!("--sda-networks: Lorenz-96 priors are `mlp` or `ring` networks");
        }
        for &t in &steps {
            for &c in &corrections {
                let settings = a.preset.resolve(&Flags {
                    steps: Some(t),
                    corrections: Some(c),
                    tau: a.tau,
                    gamma: a.gamma,
                    corrector: a.corrector,
                    grid: a.grid,
                    ..Flags::default()
                })?;
                for &sampling in &a.sampling {
                    out.push(SdaSetting {
                        network,
                        k,
                        settings,
                        sampling,
                    });
                }
            }
        }
    }
    Ok(out)
}
