//! The Lorenz-63 study's pieces: its observation scenarios, the sampler settings it compares
//! ([`Combo`]), the lines of rows.csv ([`Row`]), the names of its sample files and its networks.

use crate::error::{Error, Result};
use crate::flag_value;
use crate::nn::cpu::Precision;
use crate::score::autoregressive::Sampling;
use crate::score::guidance::Likelihood;
use crate::score::net::ScoreNetConfig;
use crate::score::preset::{Settings, likelihood_name};
use crate::score::sampler::{Corrector, Method};

/// A scenario: operator and noise std in physical units.
pub fn scenario(case: &str) -> Result<(&'static str, f32)> {
    match case {
        "lo" => Ok(("stride:8|select:0", 0.05 * 8.0)),
        "hi" => Ok(("stride:1|select:0", 0.25 * 8.0)),
        other => Err(Error::config(
            "--cases",
            format!("unknown scenario '{other}' (lo, hi)"),
        )),
    }
}

/// One line of rows.csv.
pub struct Row {
    /// Markov order k of the model.
    pub k: usize,
    /// The scenario (`lo` or `hi`).
    pub case: String,
    /// The test trajectory.
    pub m: usize,
    /// Langevin corrections C.
    pub c: usize,
    /// W1 of the samples to the reference filter.
    pub w1: f64,
    /// W1 of an independent filter run to the reference.
    pub floor: f64,
    /// Mean log p(x_2:L | x_1) of the samples.
    pub log_px: f64,
    /// Mean log p(x_2:L | x_1) of the reference filter.
    pub log_px_filter: f64,
    /// Mean log p(y | x) of the samples.
    pub log_py: f64,
    /// Samples that were not finite.
    pub failed: usize,
    /// Wall time of the assimilation.
    pub seconds: f64,
    /// How window scores composed (`mean` or `centre`).
    pub composition: String,
    /// The arithmetic of the network's products.
    pub precision: String,
    /// What sampled: see [`Combo::key`].
    pub method: String,
    /// Network forward passes per sample.
    pub forward: usize,
    /// Network backward passes per sample.
    pub backward: usize,
}

/// The header line of rows.csv.
pub const HEADER: &str = "k,case,trajectory,corrections,w1,w1_floor,log_px,log_px_filter,log_py,failed,seconds,composition,precision,method,forward,backward";

/// The key of the paper's settings (rows written before other settings were offered).
pub const PAPER_KEY: &str = "sda0.03/pc/t/sda0.25/T256";

/// One setting of the sampler and likelihood that the study runs, for every C.
#[derive(Clone)]
pub struct Combo {
    /// The sampler and likelihood.
    pub settings: Settings,
    /// How trajectories are drawn.
    pub sampling: Sampling,
}
impl Combo {
    /// `likelihood/sampler/grid/corrector/Tsteps`, e.g. `mmps-cg1/eab2/logsnr/fixed0.1/T32`:
    /// what rows.csv and the sample files are keyed by (C is a column of its own).
    pub fn key(&self) -> String {
        let s = &self.settings;
        let lik = match s.likelihood {
            Likelihood::Sda { gamma } => format!("sda{gamma}"),
            Likelihood::Dps { zeta } => format!("dps{zeta}"),
            Likelihood::Mmps { solver, iterations } => {
                format!("mmps-{}{iterations}", flag_value(&solver))
            }
        };
        let sampler = match s.sampler {
            Method::Ddim => format!("ddim{}", s.eta),
            m => flag_value(&m),
        };
        let corrector = match s.corrector {
            Corrector::Sda => format!("sda{}", s.tau),
            Corrector::Fixed => format!("fixed{}", s.delta),
        };
        // Joint rows keep the key they had before autoregressive sampling was offered.
        let sampling = match self.sampling {
            Sampling::Joint => "",
            Sampling::Autoregressive => "/ar",
        };
        format!(
            "{lik}/{sampler}/{}/{corrector}/T{}{sampling}",
            flag_value(&s.grid),
            s.steps
        )
    }

    /// The legend and table name: `MMPS (CG, K = 1), eab2, logsnr grid`.
    pub fn label(&self) -> String {
        let s = &self.settings;
        let sampling = match self.sampling {
            Sampling::Joint => "",
            Sampling::Autoregressive => ", autoregressive",
        };
        format!(
            "{}, {} {}{sampling}",
            likelihood_name(&s.likelihood),
            flag_value(&s.sampler),
            flag_value(&s.grid)
        )
    }
}

impl Row {
    /// The row as a line of rows.csv.
    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{},{:.4},{:.4},{:.2},{:.2},{:.3},{},{:.1},{},{},{},{},{}",
            self.k,
            self.case,
            self.m,
            self.c,
            self.w1,
            self.floor,
            self.log_px,
            self.log_px_filter,
            self.log_py,
            self.failed,
            self.seconds,
            self.composition,
            self.precision,
            self.method,
            self.forward,
            self.backward
        )
    }

    /// A line of rows.csv (columns added later at their defaults), or `None`.
    pub fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f.get(i)?.parse::<f64>().ok();
        Some(Row {
            k: f.first()?.parse().ok()?,
            case: f.get(1)?.to_string(),
            m: f.get(2)?.parse().ok()?,
            c: f.get(3)?.parse().ok()?,
            w1: num(4)?,
            floor: num(5)?,
            log_px: num(6)?,
            log_px_filter: num(7)?,
            log_py: num(8)?,
            failed: f.get(9)?.parse().ok()?,
            seconds: num(10)?,
            // Rows written before compositions were offered are the paper's.
            composition: f.get(11).unwrap_or(&"centre").to_string(),
            // Rows written before bf16 products were offered are float32.
            precision: f.get(12).unwrap_or(&"f32").to_string(),
            // Rows written before other samplers were offered are the paper's.
            method: f.get(13).unwrap_or(&PAPER_KEY).to_string(),
            forward: f.get(14).and_then(|v| v.parse().ok()).unwrap_or(0),
            backward: f.get(15).and_then(|v| v.parse().ok()).unwrap_or(0),
        })
    }
}

/// The samples file of one assimilation (bf16 runs apart from float32 ones, settings other
/// than the paper's apart from its).
pub fn sample_name(
    k: usize,
    case: &str,
    m: usize,
    c: usize,
    precision: Precision,
    key: &str,
) -> String {
    let settings = if key == PAPER_KEY {
        String::new()
    } else {
        format!("-{}", key.replace('/', "-"))
    };
    match precision {
        Precision::F32 => format!("k{k}-{case}-{m}-C{c}{settings}.npy"),
        p => format!("k{k}-{case}-{m}-C{c}-{p}{settings}.npy"),
    }
}

/// The hidden width of the network of order k (the paper's: 128 for k = 1, else 256).
pub fn width(k: usize) -> usize {
    if k == 1 { 128 } else { 256 }
}

/// The network of order k.
pub fn network(k: usize) -> ScoreNetConfig {
    ScoreNetConfig::local(k, 3, width(k))
}

/// The median (NaN of none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}
