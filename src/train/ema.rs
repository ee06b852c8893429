//! An exponential moving average of the weights (`sda train --ema D`): the network sampling
//! uses, kept beside the raw weights that the optimizer moves.
//!
//! After optimisation step `n` (1-based) the average becomes `a ← d a + (1 − d) w` with
//! `d = min(D, (1 + n) / (10 + n))`: the warm-up keeps the first steps' random initialisation
//! from lingering in the average. The average smooths the last steps' noise, which a
//! learning rate decayed to 0 does too, but without giving up the larger steps before.

use crate::nn::cpu_train::CpuScoreMlp;

/// The average of the fused network's weights.
#[derive(Clone, Debug)]
pub struct Ema {
    /// The decay `D` in (0, 1).
    pub decay: f64,
    /// The averaged network.
    pub net: CpuScoreMlp,
}

impl Ema {
    /// An average that starts at `net`.
    pub fn new(decay: f64, net: &CpuScoreMlp) -> Self {
        Self {
            decay,
            net: net.clone(),
        }
    }

    /// The decay after step `step` (1-based), with the warm-up.
    pub fn decay_at(&self, step: u64) -> f64 {
        self.decay.min((1.0 + step as f64) / (10.0 + step as f64))
    }

    /// Moves the average towards `net` after step `step`.
    pub fn update(&mut self, net: &CpuScoreMlp, step: u64) {
        let d = self.decay_at(step) as f32;
        for (a, w) in self.net.tensors_mut().into_iter().zip(net.tensors()) {
            for (a, w) in a.iter_mut().zip(w) {
                *a = d * *a + (1.0 - d) * w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::cpu::{Block, CpuResMlp, Dense};

    fn net(v: f32) -> CpuScoreMlp {
        let dense = |i: usize, o: usize| Dense::new(i, o, vec![v; i * o], vec![v; o]);
        let block = |n: usize| Block {
            l1: dense(n, n),
            l2: dense(n, n),
            epsilon: 1e-5,
        };
        CpuScoreMlp {
            frequencies: 1,
            emb1: dense(2, 4),
            emb2: dense(4, 2),
            mlp: CpuResMlp {
                head: dense(5, 4),
                blocks: vec![block(4)],
                tail: dense(4, 3),
                out_block: block(3),
            },
        }
    }

    #[test]
    fn the_average_follows_the_weights_geometrically_after_the_warm_up() {
        let mut ema = Ema::new(0.9, &net(0.0));
        // Warm-up: step 1 keeps 2/11 of the old average.
        assert!((ema.decay_at(1) - 2.0 / 11.0).abs() < 1e-12);
        assert_eq!(ema.decay_at(10_000), 0.9);
        ema.update(&net(1.0), 1);
        let first = 1.0 - 2.0 / 11.0;
        assert!(
            ema.net
                .tensors()
                .iter()
                .all(|t| t.iter().all(|v| (v - first).abs() < 1e-6))
        );
        // Far past the warm-up, weights held at 1 pull the average to 1 at rate 0.9 per step.
        for step in 1000..1010 {
            ema.update(&net(1.0), step);
        }
        let expected = 1.0 - (1.0 - first) * 0.9f32.powi(10);
        let v = ema.net.tensors()[5][0];
        assert!((v - expected).abs() < 1e-5, "{v} against {expected}");
    }
}
