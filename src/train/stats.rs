//! What a training run reports epoch by epoch: `stats.csv` (the losses, and the validation
//! loss per noise level), and whether the run ended settled, still falling or diverged.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::write_atomic;

/// One row of `stats.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss of the epoch.
    pub train_loss: f64,
    /// Validation loss (one window per validation chain).
    pub valid_loss: f64,
    /// Learning rate used in the epoch.
    pub lr: f64,
    /// Validation loss of the windows whose `t` falls in each of the [`LEVELS`] equal parts
    /// of [0, 1] (NaN where none did, and in files written before levels were kept): where
    /// along the diffusion the network is weak.
    pub valid_levels: [f64; LEVELS],
}

/// Noise levels the validation loss is split into (equal parts of `t ∈ [0, 1]`).
pub const LEVELS: usize = 5;

/// The level (0 … [`LEVELS`] − 1) of diffusion time `t`.
pub fn level(t: f32) -> usize {
    ((t.max(0.0) * LEVELS as f32) as usize).min(LEVELS - 1)
}

/// The mean of each level's validation loss over the last `n` epochs of `stats` (NaN-free
/// epochs only): a less noisy profile than one epoch's, whose levels hold a fifth of the
/// validation windows each.
pub fn mean_levels(stats: &[EpochStats], n: usize) -> [f64; LEVELS] {
    let tail = &stats[stats.len().saturating_sub(n.max(1))..];
    std::array::from_fn(|j| {
        let v: Vec<f64> = tail
            .iter()
            .map(|s| s.valid_levels[j])
            .filter(|v| v.is_finite())
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    })
}

/// One line for the summary: `valid loss by noise level t ∈ [0, 0.2) … [0.8, 1]: 0.412 0.101 …`.
pub fn levels_line(levels: &[f64; LEVELS]) -> String {
    let values: Vec<String> = levels.iter().map(|v| format!("{v:.4}")).collect();
    format!(
        "valid loss by noise level (t in fifths of [0, 1], low noise first): {}",
        values.join(" ")
    )
}

/// How a run's validation loss ended, in one warning line, or `None` where it settled.
///
/// With `w` = 10 % of the epochs (at least 2): the loss *diverged* where the last epoch's losses
/// are not finite or the mean of the last `w` is more than 1.5× the lowest mean of any `w`
/// consecutive epochs. It is *still falling fast* where a straight line fitted by least squares
/// to the last `2w` epochs' validation (or training) losses falls by more than 3 % of its end
/// value over `w` epochs, and its slope is more than three standard errors from 0 (one epoch's
/// validation loss is noisy: one window per validation chain, each at its own `t`). Under a
/// learning rate annealed to 0 the end of every run flattens, so this fires for runs still far
/// from done. Runs of fewer than 4 epochs are not judged.
pub fn convergence_warning(stats: &[EpochStats]) -> Option<String> {
    let n = stats.len();
    let last = stats.last()?;
    if !(last.train_loss.is_finite() && last.valid_loss.is_finite()) {
        return Some(format!(
            "warning: training diverged: the loss of epoch {} is not finite (train {}, valid {}); \
             the model is not usable: train again with a smaller --lr",
            last.epoch, last.train_loss, last.valid_loss
        ));
    }
    if n < 4 {
        return None;
    }
    let w = (n / 10).max(2);
    let v: Vec<f64> = stats.iter().map(|s| s.valid_loss).collect();
    let mean = |a: &[f64]| a.iter().sum::<f64>() / a.len() as f64;
    let now = mean(&v[n - w..]);
    let best = v
        .windows(w)
        .map(mean)
        .filter(|m| m.is_finite())
        .fold(f64::INFINITY, f64::min);
    if now > 1.5 * best {
        return Some(format!(
            "warning: the validation loss diverged: {now:.4} over the last {w} epochs against \
             {best:.4} at its best; train again with a smaller --lr (or fewer --epochs)"
        ));
    }
    // Least squares l ≈ a + b (e − ē) over the last 2w epochs, of either loss: the training
    // loss (a mean over every window of the epoch) shows the trend that the validation loss's
    // noise can hide.
    let trend = |l: &[f64]| {
        let tail = &l[n - 2 * w..];
        let k = tail.len() as f64;
        let xbar = (k - 1.0) / 2.0;
        let sxx: f64 = (0..tail.len()).map(|i| (i as f64 - xbar).powi(2)).sum();
        let a = mean(tail);
        let b = tail
            .iter()
            .enumerate()
            .map(|(i, y)| (i as f64 - xbar) * (y - a))
            .sum::<f64>()
            / sxx;
        let rss: f64 = tail
            .iter()
            .enumerate()
            .map(|(i, y)| (y - a - b * (i as f64 - xbar)).powi(2))
            .sum();
        let se = (rss / (k - 2.0) / sxx).sqrt();
        let end = a + b * xbar;
        let drop = -b * w as f64;
        (drop > 0.03 * end && -b > 3.0 * se).then_some((drop / end, end))
    };
    let t: Vec<f64> = stats.iter().map(|s| s.train_loss).collect();
    for (name, l) in [("validation", &v), ("training", &t)] {
        if let Some((rate, end)) = trend(l) {
            return Some(format!(
                "warning: the {name} loss is still falling fast ({:.1} % per {w} epochs at the \
                 end, now {end:.4}): the prior is not fully trained; more --epochs would likely \
                 make it better",
                100.0 * rate
            ));
        }
    }
    None
}

/// Writes `stats.csv`: `epoch,train_loss,valid_loss,lr,valid_t0,…,valid_t4`.
pub fn write_stats(path: &Path, stats: &[EpochStats]) -> Result<()> {
    let mut text = String::from("epoch,train_loss,valid_loss,lr");
    for j in 0..LEVELS {
        text.push_str(&format!(",valid_t{j}"));
    }
    text.push('\n');
    for s in stats {
        text.push_str(&format!(
            "{},{:.6},{:.6},{:.6e}",
            s.epoch, s.train_loss, s.valid_loss, s.lr
        ));
        for v in s.valid_levels {
            text.push_str(&format!(",{v:.6}"));
        }
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Reads `stats.csv` back.
pub fn read_stats(path: &Path) -> Result<Vec<EpochStats>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = || Error::config(path.display().to_string(), "malformed stats.csv");
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).ok_or_else(bad);
            Ok(EpochStats {
                epoch: f.first().and_then(|v| v.parse().ok()).ok_or_else(bad)?,
                train_loss: num(1)?,
                valid_loss: num(2)?,
                lr: num(3)?,
                valid_levels: std::array::from_fn(|j| {
                    f.get(4 + j)
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(f64::NAN)
                }),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stats of `n` epochs with validation losses `f(e)` times a deterministic ±10 % wobble
    /// (the noise of one epoch's validation loss).
    fn stats(n: usize, f: impl Fn(f64) -> f64) -> Vec<EpochStats> {
        (1..=n)
            .map(|e| {
                let wobble = 1.0 + 0.1 * ((e as f64 * 12.9898).sin() * 43_758.545).fract();
                EpochStats {
                    epoch: e,
                    train_loss: f(e as f64),
                    valid_loss: f(e as f64) * wobble,
                    lr: 1e-3,
                    valid_levels: [f64::NAN; LEVELS],
                }
            })
            .collect()
    }

    #[test]
    fn a_settled_loss_passes_and_a_falling_or_diverged_one_is_named() {
        // A plateau with noise: nothing to say.
        assert_eq!(convergence_warning(&stats(300, |_| 0.2)), None);
        // 1/(1 + e/10): the last 30 epochs' mean is ~10 % below the 30 before.
        let w = convergence_warning(&stats(300, |e| 1.0 / (1.0 + e / 10.0))).unwrap();
        assert!(w.contains("still falling"), "{w}");
        // Back up to 3× its lowest: diverged.
        let w = convergence_warning(&stats(300, |e| if e > 250.0 { 0.6 } else { 0.2 })).unwrap();
        assert!(w.contains("diverged"), "{w}");
        // A non-finite last loss.
        let mut s = stats(50, |_| 0.2);
        s.last_mut().unwrap().valid_loss = f64::NAN;
        assert!(convergence_warning(&s).unwrap().contains("not finite"));
        // Too short to judge.
        assert_eq!(convergence_warning(&stats(3, |e| 1.0 / e)), None);
    }
}

#[cfg(test)]
mod level_tests {
    use super::*;

    #[test]
    fn levels_split_time_in_fifths_and_survive_the_csv() {
        assert_eq!(
            [0.0, 0.19, 0.2, 0.65, 0.999, 1.0].map(level),
            [0, 0, 1, 3, 4, 4]
        );
        let dir = std::env::temp_dir().join(format!("sda-levels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rows: Vec<EpochStats> = (1..=4)
            .map(|e| EpochStats {
                epoch: e,
                train_loss: 0.5,
                valid_loss: 0.4,
                lr: 1e-3,
                valid_levels: [0.9, 0.3, 0.2, f64::NAN, 0.1 * e as f64],
            })
            .collect();
        write_stats(&dir.join("stats.csv"), &rows).unwrap();
        let back = read_stats(&dir.join("stats.csv")).unwrap();
        assert_eq!(back[3].valid_levels[4], 0.4);
        assert!(back[0].valid_levels[3].is_nan());
        // The last two epochs' mean: NaN stays NaN, the rest average.
        let m = mean_levels(&back, 2);
        assert!((m[4] - 0.35).abs() < 1e-12 && m[3].is_nan() && m[0] == 0.9);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
