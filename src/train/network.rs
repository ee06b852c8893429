//! The network a user asks for: the body (`--network`) and the flags that shape it, made into a
//! score network's configuration for a data set's states.

use crate::data::{features, shape_text};
use crate::error::{Error, Result};
use crate::io::Array;
use crate::mcs::Layout;
use crate::score::net::{Architecture, Backbone, ScoreNetConfig, UNetPreset};

/// The body of a score network, as `sda train --network` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Network {
    /// From the data: a U-Net for fields `(C, H, W)`, a ring network for states laid out on
    /// a ring (Lorenz-96, `sda import --layout ring`), an MLP for other vectors.
    #[default]
    Auto,
    /// A residual MLP on flattened windows.
    Mlp,
    /// A residual MLP shared along a periodic 1-D grid, on the `--kernel` positions around
    /// each position (docs/ring.md).
    Ring,
    /// A U-Net on fields.
    Unet,
}

/// Hidden width of ring networks when none is given: every position of every window is a row
/// of the MLP, so it runs `F` times as many rows as an MLP on whole windows.
pub const RING_WIDTH: usize = 128;
/// Positions a ring network sees when no `--kernel` is given.
pub const RING_KERNEL: usize = 9;

/// The network a user asks for, in the terms of `sda train`'s flags; [`NetSpec::config`] makes
/// the [`ScoreNetConfig`] for a data set's state shape (a residual MLP for vector states, the
/// U-Net of docs/method.md §8 for fields `(C, H, W)`).
#[derive(Clone, Debug, PartialEq)]
pub struct NetSpec {
    /// Markov-blanket order k: windows of `2k + 1` states (local networks).
    pub order: usize,
    /// Local (composed windows) or global (whole trajectories of `global_length` states).
    pub architecture: Architecture,
    /// Trajectory length of a global network.
    pub global_length: usize,
    /// The network's body.
    pub network: Network,
    /// Hidden width of the MLP (default: 256, [`RING_WIDTH`] for ring networks).
    pub width: Option<usize>,
    /// Residual blocks of the MLP.
    pub depth: usize,
    /// U-Net size.
    pub preset: UNetPreset,
    /// U-Net hidden channels per level (overrides the preset's).
    pub hidden: Option<Vec<usize>>,
    /// U-Net residual blocks per level (overrides the preset's).
    pub blocks: Option<usize>,
    /// U-Net kernel size (overrides the preset's).
    pub kernel: Option<usize>,
    /// Size of the time embedding (default: the backbone's).
    pub embedding: Option<usize>,
}

impl Default for NetSpec {
    /// The paper's Lorenz-63 network (k = 2, width 256, 5 blocks) and Kolmogorov U-Net.
    fn default() -> Self {
        Self {
            order: 2,
            architecture: Architecture::Local,
            global_length: 65,
            network: Network::Auto,
            width: None,
            depth: 5,
            preset: UNetPreset::Paper,
            hidden: None,
            blocks: None,
            kernel: None,
            embedding: None,
        }
    }
}

impl NetSpec {
    /// The body `Auto` stands for on states of `shape` laid out as `layout`.
    pub fn network_for(&self, shape: &[usize], layout: Layout) -> Network {
        match (self.network, shape.len(), layout) {
            (Network::Auto, 3, _) => Network::Unet,
            (Network::Auto, _, Layout::Ring) if self.architecture == Architecture::Local => {
                Network::Ring
            }
            (Network::Auto, _, _) => Network::Mlp,
            (n, _, _) => n,
        }
    }

    /// The network for states of `shape` laid out as `layout`, checked (flags named in
    /// errors).
    pub fn config(&self, shape: &[usize], layout: Layout) -> Result<ScoreNetConfig> {
        let window = match self.architecture {
            Architecture::Local => 2 * self.order + 1,
            Architecture::Global => self.global_length,
        };
        if window == 0 {
            return Err(Error::config("--global-length", "must be at least 1"));
        }
        let network = self.network_for(shape, layout);
        if self.architecture == Architecture::Global && network != Network::Mlp {
            return Err(Error::config(
                "--architecture global",
                "only MLP networks can be global (add --network mlp for vector data)",
            ));
        }
        let width = |default: usize| match self.width.unwrap_or(default) {
            0 => Err(Error::config("--width", "must be at least 1")),
            w => Ok(w),
        };
        let mut net = match (network, shape) {
            (Network::Unet, &[c, h, w]) => ScoreNetConfig::unet(self.order, [c, h, w], self.preset),
            (Network::Unet, _) => {
                return Err(Error::config(
                    "--network unet",
                    format!("needs field states (C, H, W), not ({})", shape_text(shape)),
                ));
            }
            (_, [_, _, _]) => {
                return Err(Error::config(
                    format!("--network {}", crate::flag_value(&network)),
                    "field states (C, H, W) take a U-Net (--network unet)",
                ));
            }
            (Network::Ring, &[f]) => {
                let widest = if f.is_multiple_of(2) { f - 1 } else { f };
                let kernel = self.kernel.unwrap_or(RING_KERNEL.min(widest));
                if kernel.is_multiple_of(2) || kernel > f {
                    return Err(Error::config(
                        "--kernel",
                        format!(
                            "a ring network's kernel must be odd and at most the ring's {f} positions (got {kernel})"
                        ),
                    ));
                }
                let width = width(RING_WIDTH)?;
                let mut net = ScoreNetConfig::local(self.order, f, width);
                net.backbone = Backbone::Ring {
                    kernel,
                    width,
                    depth: self.depth,
                };
                net
            }
            (Network::Ring, _) => {
                return Err(Error::config(
                    "--network ring",
                    format!(
                        "needs states of one axis (a periodic 1-D grid), not ({})",
                        shape_text(shape)
                    ),
                ));
            }
            _ => {
                let width = width(256)?;
                let mut net = ScoreNetConfig::local(self.order, features(shape), width);
                net.backbone = Backbone::Mlp {
                    width,
                    depth: self.depth,
                };
                net
            }
        };
        net.architecture = self.architecture;
        net.window = window;
        if let Some(e) = self.embedding {
            net.embedding = e;
        }
        if let Backbone::Unet {
            state,
            hidden,
            blocks,
            kernel,
            ..
        } = &mut net.backbone
        {
            if let Some(h) = &self.hidden {
                *hidden = h.clone();
            }
            *blocks = self.blocks.unwrap_or(*blocks);
            *kernel = self.kernel.unwrap_or(*kernel);
            let levels = hidden.len();
            if hidden.is_empty() || hidden.contains(&0) {
                return Err(Error::config(
                    "--hidden",
                    "needs at least one level of non-zero channels",
                ));
            }
            if *kernel % 2 == 0 {
                return Err(Error::config(
                    "--kernel",
                    format!("must be odd (got {kernel})"),
                ));
            }
            let div = 1 << (levels - 1);
            if state[1] % div != 0 || state[2] % div != 0 {
                return Err(Error::config(
                    "--hidden",
                    format!(
                        "{levels} levels halve the grid {} times, but {} × {} does not divide by {div}",
                        levels - 1,
                        state[1],
                        state[2]
                    ),
                ));
            }
        }
        Ok(net)
    }
}

/// Gives the U-Net of imported field data (`system: external`) the data's own constant
/// channels, if any, instead of the Kolmogorov forcing `sin(4y)`, which only Kolmogorov flow
/// has. Other systems and MLP networks are left as they are.
pub fn use_data_context(
    net: &mut ScoreNetConfig,
    system: &crate::mcs::System,
    context: Option<Array>,
) {
    if let crate::mcs::System::External(_) = system
        && let Backbone::Unet {
            forcing,
            context: c,
            ..
        } = &mut net.backbone
    {
        *forcing = 0;
        *c = context.map(|a| a.data).unwrap_or_default();
    }
}

/// The default batch size and learning rate for states of `shape`: the paper's (64, 1e-3) for
/// vector states, (32, 2e-4) for fields.
pub fn default_batch_lr(shape: &[usize]) -> (usize, f64) {
    if shape.len() == 3 {
        (32, 2e-4)
    } else {
        (64, 1e-3)
    }
}
