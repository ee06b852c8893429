//! # sda — score-based data assimilation
//!
//! Infers whole trajectories of dynamical systems from sparse, noisy observations with a
//! diffusion model trained on short windows of simulated trajectories (Rozet & Louppe,
//! "Score-based Data Assimilation", NeurIPS 2023). `docs/method.md` states the method
//! as implemented here, `docs/guidance.md` the likelihoods and samplers, `docs/baselines.md` the
//! classical methods.
//!
//! Where things live, leaves first. No top-level module imports one that imports it back,
//! directly or through others (`tests/layers.rs` checks it).
//! - `kernels`: the AVX-512 dispatch of the CPU loops (`simd!`); [`axis`]: one coordinate
//!   axis of a record;
//! - [`calendar`]: time axes and dates, [`geo`]: places on grids and station networks;
//!   [`record_info`]: what `system.json` keeps of an imported record;
//! - [`mcs`]: Markov chains (Lorenz-63, Lorenz-96, a linear-Gaussian spring, Kolmogorov flow,
//!   imported trajectories) and their simulation;
//! - [`nn`]: network architectures (time embedding, residual MLP and its fused CPU twin, U-Net);
//! - [`data`]: data sets, and [`data::observed`]: which of a data folder's values were observed
//!   (the masked loss' weights);
//! - [`score`]: noise schedules, the composed local score, observation operators, guidance and
//!   the predictor-corrector sampler;
//! - [`kalman`]: the exact posterior of linear-Gaussian systems (the oracle);
//! - [`model`], [`train`]: run folders with the training settings they record, and the
//!   training loop;
//! - [`import`]: data folders of trajectories from elsewhere (`system: external`); [`record`]:
//!   one long record cut into windows, and [`netcdf`]: records read from NetCDF files;
//!   [`locate`]: observations by station, coordinates and date resolved against a record;
//! - [`field`]: 2-D velocity fields (vorticity, block means), and [`plot`]: PNG/GIF figures;
//! - [`filter`]: the bootstrap particle filter, ground truth of the Lorenz study;
//! - [`classical`]: the ensemble Kalman family, iEnKS, 3D/4D-Var, OI and climatology;
//! - [`calibrate`]: `--gamma auto`, γ chosen on the validation trajectories;
//! - [`evaluate`], [`metrics`]: scores of samples against references and truths;
//! - [`io`], [`error`]: `.npy`/JSON files and the error type; [`options`]: flag values by name;
//!   [`output`]: checks of output paths made before any long computation (refusal to overwrite,
//!   missing folders, free space); [`shard`]: slices of a run (`--shard I/N`), their parts and
//!   the manifest that keeps parts of different runs apart.
#![warn(missing_docs)]

pub mod assimilate;
pub mod axis;
pub mod baseline;
pub mod calendar;
pub mod calibrate;
pub mod classical;
pub mod coords;
pub mod data;
pub mod error;
pub mod evaluate;
pub mod field;
pub mod filter;
pub mod geo;
pub mod import;
pub mod io;
pub mod kalman;
mod kernels;
pub mod locate;
pub mod mcs;
pub mod metrics;
pub mod model;
pub mod netcdf;
pub mod netcdf_write;
pub mod nn;
pub mod options;
pub mod output;
pub mod plot;
pub mod record;
pub mod record_info;
pub mod score;
pub mod shard;
pub mod study;
pub mod train;
pub mod transform;

pub use error::{Error, Result};

/// The name of a flag's value on the command line (as clap spells it), which is also how
/// `config.json` and `rows.csv` write it.
pub fn flag_value(value: &impl clap::ValueEnum) -> String {
    let v = value
        .to_possible_value()
        .expect("every value of a flag is named");
    v.get_name().to_string()
}
