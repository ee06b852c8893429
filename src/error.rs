//! The library's error type: one variant per kind of bad input, each naming what was wrong.

use std::path::PathBuf;

/// Everything that can go wrong in `sda`, with enough context for a one-line message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `.npy` file is malformed or of an unsupported dtype.
    #[error("{path}: {reason}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An array has the wrong shape for its use.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        /// The array (file or flag).
        what: String,
        /// The expected shape, in words.
        expected: String,
        /// The actual shape.
        got: Vec<usize>,
    },
    /// An array holds NaN or infinite values.
    #[error("{what}: contains {count} non-finite value(s) (NaN or inf)")]
    NonFinite {
        /// The array (file or flag).
        what: String,
        /// How many values are not finite.
        count: usize,
    },
    /// An observation operator could not be parsed or applied.
    #[error("operator '{spec}': {reason}")]
    Operator {
        /// The operator specification.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An unknown system name.
    #[error("unknown system '{0}' (known: lorenz63, lorenz96, linear, kolmogorov)")]
    UnknownSystem(String),
    /// A configuration value is invalid.
    #[error("{name}: {reason}")]
    Config {
        /// The flag or field.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Model weights could not be loaded or saved.
    #[error("{path}: {reason}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A JSON file could not be parsed.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A sampling run left the range any healthy sampler stays in, and was stopped.
    #[error(
        "sampling diverged at step {step} of {steps} (noise level t = {t:.3}): {what}; \
         try {advice} (--no-guard turns this check off)"
    )]
    Diverged {
        /// The step at which it was seen (1 to `steps`).
        step: usize,
        /// The run's steps T.
        steps: usize,
        /// The noise level `t` the step reached.
        t: f64,
        /// What diverged, in words.
        what: String,
        /// What to try, with the flags that set it.
        advice: String,
    },
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for an [`Error::Config`].
    pub fn config(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            name: name.into(),
            reason: reason.into(),
        }
    }
}
