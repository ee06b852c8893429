//! Data sets on disk: `DIR/{train,valid,test}.npy` (float32 `(N, L, *state)`, physical units)
//! and `DIR/system.json` (the system, its parameters and the normalisation).

pub mod observed;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::{Array, read_json, read_npy, write_json, write_npy};
use crate::mcs::System;
use crate::transform::Transforms;

/// Per-value affine normalisation: `x_norm = (x − mean) / scale`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    /// Mean of each value of a state.
    pub mean: Vec<f64>,
    /// Scale of each value of a state.
    pub scale: Vec<f64>,
}

impl Normalisation {
    /// The same normalisation at every position of a ring (the mean of the means, the root
    /// of the mean of the variances and squared deviations of the means), so that a network
    /// shared along the ring sees every position alike; vectors keep theirs.
    pub fn for_layout(self, layout: crate::mcs::Layout) -> Self {
        let n = self.mean.len();
        if layout != crate::mcs::Layout::Ring || n == 0 {
            return self;
        }
        let mean = self.mean.iter().sum::<f64>() / n as f64;
        let var = self
            .mean
            .iter()
            .zip(&self.scale)
            .map(|(m, s)| s * s + (m - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        Self {
            mean: vec![mean; n],
            scale: vec![var.sqrt(); n],
        }
    }

    /// The empirical per-value mean and standard deviation of `(N, L, F)` data.
    pub fn fit(data: &[f32], features: usize) -> Self {
        let n = (data.len() / features) as f64;
        let mut mean = vec![0.0; features];
        let mut sq = vec![0.0; features];
        for row in data.chunks(features) {
            for j in 0..features {
                mean[j] += row[j] as f64;
                sq[j] += (row[j] as f64).powi(2);
            }
        }
        for j in 0..features {
            mean[j] /= n;
            sq[j] = (sq[j] / n - mean[j] * mean[j]).max(1e-12).sqrt();
        }
        Self { mean, scale: sq }
    }

    /// Normalises physical values in place (the last axis holds a state's values).
    pub fn normalise(&self, x: &mut [f32]) {
        let f = self.mean.len();
        for row in x.chunks_mut(f) {
            for j in 0..f {
                row[j] = ((row[j] as f64 - self.mean[j]) / self.scale[j]) as f32;
            }
        }
    }

    /// Maps normalised values back to physical units in place.
    pub fn denormalise(&self, x: &mut [f32]) {
        let f = self.mean.len();
        for row in x.chunks_mut(f) {
            for j in 0..f {
                row[j] = (row[j] as f64 * self.scale[j] + self.mean[j]) as f32;
            }
        }
    }
}

/// What `system.json` records about a data set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// The system and its parameters.
    pub system: System,
    /// The shape of one state (e.g. `[3]`).
    pub state_shape: Vec<usize>,
    /// The normalisation the networks use.
    pub normalisation: Normalisation,
    /// Number of simulated chains.
    pub trajectories: usize,
    /// States kept per chain.
    pub length: usize,
    /// Transitions dropped before the first kept state.
    pub burn_in: usize,
    /// The simulation seed.
    pub seed: u64,
    /// The transforms of the variables (`sda import --transform`): the networks learn `g(y)`
    /// (normalised), and samples are mapped back by `g⁻¹`. None: the values themselves.
    #[serde(default, skip_serializing_if = "Transforms::is_identity")]
    pub transforms: Transforms,
}

impl SystemInfo {
    /// Physical values `(…, *state)` to the networks' units, in place: transformed, then
    /// normalised.
    pub fn to_model(&self, x: &mut [f32]) {
        self.transforms.forward(x, features(&self.state_shape));
        self.normalisation.normalise(x);
    }

    /// The networks' units back to physical values, in place: denormalised, then the inverse
    /// transforms.
    pub fn from_model(&self, x: &mut [f32]) {
        self.normalisation.denormalise(x);
        self.transforms.inverse(x, features(&self.state_shape));
    }
}

/// A data set folder: system description and the three splits.
pub struct Dataset {
    /// `system.json`.
    pub info: SystemInfo,
    /// Training trajectories, `(N, L, F)`.
    pub train: Array,
    /// Validation trajectories.
    pub valid: Array,
    /// Which of their values were observed (the masked loss' weights), when some were not.
    pub observed: Option<observed::Observed>,
    /// The folder it was read from (absolute where it could be resolved), if any.
    pub dir: Option<std::path::PathBuf>,
}

/// The values per state of a shape.
pub fn features(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Simulates `n` chains and writes `train/valid/test.npy` (80/10/10 by chain) and `system.json`.
pub fn simulate(
    dir: &Path,
    system: System,
    n: usize,
    length: usize,
    burn_in: usize,
    seed: u64,
) -> Result<SystemInfo> {
    simulate_with(dir, system, n, length, burn_in, seed, &|_| {})
}

/// [`simulate`], calling `done` with the time each chain took on its thread (Kolmogorov flow
/// only; the cheap chains report nothing).
pub fn simulate_with(
    dir: &Path,
    system: System,
    n: usize,
    length: usize,
    burn_in: usize,
    seed: u64,
    done: &(dyn Fn(std::time::Duration) + Sync),
) -> Result<SystemInfo> {
    let data = simulate_splits(system, n, length, burn_in, seed, done)?;
    data.save(dir)?;
    Ok(data.info)
}

/// A data set in memory: what a data folder holds (`system.json` and the three splits).
#[derive(Clone, Debug)]
pub struct Splits {
    /// `system.json`.
    pub info: SystemInfo,
    /// Training trajectories, `(N, L, *state)`, physical units.
    pub train: Array,
    /// Validation trajectories.
    pub valid: Array,
    /// Test trajectories (may hold no trajectory).
    pub test: Array,
}

/// Simulates `n` chains and splits them 80/10/10 by chain, in memory ([`simulate_with`] writes
/// the same arrays to a folder). `done` as in [`simulate_with`].
pub fn simulate_splits(
    system: System,
    n: usize,
    length: usize,
    burn_in: usize,
    seed: u64,
    done: &(dyn Fn(std::time::Duration) + Sync),
) -> Result<Splits> {
    if n < 3 {
        return Err(Error::config(
            "--trajectories",
            "needs at least 3 chains to split 80/10/10",
        ));
    }
    let x = simulate_chains(&system, 0..n, length, burn_in, seed, done)?;
    Splits::from_chains(system, x, burn_in, seed)
}

/// Chains `chains` (by index) of a simulation of `system`, `(chains.len(), L, *state)`,
/// physical units: the same values, chain for chain, as those of a simulation of more chains
/// with the same seed (each chain's randomness depends on the seed and its index only).
pub fn simulate_chains(
    system: &System,
    chains: std::ops::Range<usize>,
    length: usize,
    burn_in: usize,
    seed: u64,
    done: &(dyn Fn(std::time::Duration) + Sync),
) -> Result<Array> {
    if length == 0 {
        return Err(Error::config("--length", "must be at least 1"));
    }
    let n = chains.len();
    let x: Vec<f32> = match system {
        System::Kolmogorov(k) => {
            k.check()?;
            k.trajectories_from(chains.start, n, length, burn_in, seed, done)
        }
        other => other
            .chain()?
            .trajectories_from(chains.start, n, length, burn_in, seed)
            .into_iter()
            .map(|v| v as f32)
            .collect(),
    };
    let mut shape = vec![n, length];
    shape.extend(system.state_shape());
    Ok(Array::new(shape, x))
}

impl Splits {
    /// The data set of simulated chains `(N, L, *state)` (all of them, in order), split
    /// 80/10/10 by chain as [`simulate_splits`] splits them.
    pub fn from_chains(system: System, chains: Array, burn_in: usize, seed: u64) -> Result<Self> {
        if chains.shape.first().copied().unwrap_or(0) < 3 {
            return Err(Error::config(
                "--trajectories",
                "needs at least 3 chains to split 80/10/10",
            ));
        }
        let mut data = Splits::from_arrays(system, chains, None, None)?;
        data.info.burn_in = burn_in;
        data.info.seed = seed;
        Ok(data)
    }

    /// A data set from trajectories `(N, L, *state)` of `system` in physical units. Without
    /// `valid`, the chains of `train` are split 80/10/10 (train, valid, test) as `sda simulate`
    /// splits them; with `valid`, `test` defaults to no trajectory. The normalisation is the
    /// system's fixed one, or the per-value mean and std of the training split.
    pub fn from_arrays(
        system: System,
        train: Array,
        valid: Option<Array>,
        test: Option<Array>,
    ) -> Result<Self> {
        let state_shape = system.state_shape();
        let check = |a: &Array, what: &str, min: usize| -> Result<()> {
            if a.shape.len() != 2 + state_shape.len()
                || a.shape[2..] != *state_shape
                || a.shape[0] < min
                || a.shape[1] == 0
            {
                return Err(Error::Shape {
                    what: what.into(),
                    expected: format!(
                        "(N, L, {}) with N ≥ {min}, L ≥ 1 for {}",
                        shape_text(&state_shape),
                        system.name()
                    ),
                    got: a.shape.clone(),
                });
            }
            a.check_finite(what)
        };
        let (train, valid, test) = match valid {
            None => {
                check(&train, "train", 3)?;
                if test.is_some() {
                    return Err(Error::config(
                        "test",
                        "give valid too (without valid, train is split 80/10/10 into train, valid and test)",
                    ));
                }
                let (n, l) = (train.shape[0], train.shape[1]);
                let n_train = (n * 8 / 10).max(1);
                let n_valid = ((n - n_train) / 2).max(1);
                let per = train.data.len() / n;
                let split = |a: usize, b: usize| {
                    let mut shape = vec![b - a, l];
                    shape.extend_from_slice(&state_shape);
                    Array::new(shape, train.data[a * per..b * per].to_vec())
                };
                (
                    split(0, n_train),
                    split(n_train, n_train + n_valid),
                    split(n_train + n_valid, n),
                )
            }
            Some(valid) => {
                check(&train, "train", 1)?;
                check(&valid, "valid", 1)?;
                let test = match test {
                    Some(t) => {
                        check(&t, "test", 0)?;
                        t
                    }
                    None => {
                        let mut shape = vec![0, train.shape[1]];
                        shape.extend_from_slice(&state_shape);
                        Array::new(shape, Vec::new())
                    }
                };
                (train, valid, test)
            }
        };
        let normalisation = match system.fixed_normalisation() {
            Some((mean, scale)) => Normalisation { mean, scale },
            None => {
                Normalisation::fit(&train.data, features(&state_shape)).for_layout(system.layout())
            }
        };
        let info = SystemInfo {
            system,
            state_shape,
            normalisation,
            trajectories: train.shape[0] + valid.shape[0] + test.shape[0],
            length: train.shape[1],
            burn_in: 0,
            seed: 0,
            transforms: Transforms::default(),
        };
        Ok(Self {
            info,
            train,
            valid,
            test,
        })
    }

    /// Writes `DIR/{train,valid,test}.npy` and `DIR/system.json`, each file atomically
    /// (`test.npy` only when there are test trajectories).
    pub fn save(&self, dir: &Path) -> Result<()> {
        // system.json is written last and removed first: a folder holds a data set exactly when
        // it has one, even if the writing was interrupted half-way.
        match std::fs::remove_file(dir.join("system.json")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Io {
                    path: dir.join("system.json"),
                    source: e,
                });
            }
            _ => {}
        }
        write_npy(&dir.join("train.npy"), &self.train)?;
        write_npy(&dir.join("valid.npy"), &self.valid)?;
        if self.test.shape[0] > 0 {
            write_npy(&dir.join("test.npy"), &self.test)?;
        }
        write_json(&dir.join("system.json"), &self.info)
    }

    /// Reads a data folder written by [`Splits::save`] or `sda simulate` (`test.npy` may be
    /// absent: no test trajectory).
    pub fn load(dir: &Path) -> Result<Self> {
        let Dataset {
            info, train, valid, ..
        } = Dataset::load(dir)?;
        let path = dir.join("test.npy");
        let test = if path.exists() {
            read_trajectories(&path, &info.state_shape)?
        } else {
            let mut shape = vec![0, info.length];
            shape.extend_from_slice(&info.state_shape);
            Array::new(shape, Vec::new())
        };
        Ok(Self {
            info,
            train,
            valid,
            test,
        })
    }

    /// The training view of the data set (what [`crate::train`] reads).
    pub fn dataset(&self) -> Dataset {
        Dataset {
            info: self.info.clone(),
            train: self.train.clone(),
            valid: self.valid.clone(),
            observed: None,
            dir: None,
        }
    }
}

/// Reads `system.json` of a data folder.
pub fn read_info(dir: &Path) -> Result<SystemInfo> {
    read_json(&dir.join("system.json"))
}

/// Reads a trajectory file and checks that it is `(N, L, *state_shape)` and finite.
pub fn read_trajectories(path: &Path, state_shape: &[usize]) -> Result<Array> {
    let a = read_npy(path)?;
    if a.shape.len() != 2 + state_shape.len() || a.shape[2..] != *state_shape || a.shape[0] == 0 {
        return Err(Error::Shape {
            what: path.display().to_string(),
            expected: format!("(N, L, {})", shape_text(state_shape)),
            got: a.shape,
        });
    }
    a.check_finite(&path.display().to_string())?;
    Ok(a)
}

/// `[i, j, k]` of flat position `at` in an array of `shape` (C order).
pub fn unravel(shape: &[usize], mut at: usize) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        idx[d] = at % n.max(1);
        at /= n.max(1);
    }
    idx
}

/// `3` or `2, 64, 64`: a shape for messages.
pub fn shape_text(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Dataset {
    /// Loads a data folder written by [`simulate`].
    pub fn load(dir: &Path) -> Result<Self> {
        let info = read_info(dir)?;
        let train = read_trajectories(&dir.join("train.npy"), &info.state_shape)?;
        let valid = read_trajectories(&dir.join("valid.npy"), &info.state_shape)?;
        let observed = observed::read(dir, &info, &train, &valid)?;
        Ok(Self {
            info,
            train,
            valid,
            observed,
            dir: Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcs::Layout;

    #[test]
    fn a_ring_shares_one_normalisation_and_a_vector_keeps_its_own() {
        // Two positions with means 1 and 3, stds 1 and 2: pooled over the ring the mean is 2 and
        // the variance (1 + 4)/2 + ((1 − 2)² + (3 − 2)²)/2 = 3.5, the variance of all values.
        let n = Normalisation {
            mean: vec![1.0, 3.0],
            scale: vec![1.0, 2.0],
        };
        let ring = n.clone().for_layout(Layout::Ring);
        assert_eq!(ring.mean, vec![2.0, 2.0]);
        assert!(ring.scale.iter().all(|s| (s - 3.5f64.sqrt()).abs() < 1e-12));
        assert_eq!(n.clone().for_layout(Layout::Vector), n);
        // And it is the normalisation fitted to all the ring's values at once.
        let data: Vec<f32> = [0.0, 1.0, 2.0, 5.0, 0.0, -1.0, 2.0, 3.0].to_vec();
        let per = Normalisation::fit(&data, 2).for_layout(Layout::Ring);
        let all = Normalisation::fit(&data, 1);
        assert!((per.mean[0] - all.mean[0]).abs() < 1e-9);
        assert!((per.scale[1] - all.scale[0]).abs() < 1e-9);
    }
}
