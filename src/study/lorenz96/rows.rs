//! The rows of the benchmark's table: one method's scores on one truth, and the lines a shard
//! keeps them in.

/// One method's scores on one truth.
pub struct Row {
    /// The case's name.
    pub case: String,
    /// The truth seed.
    pub seed: u64,
    /// The method's table label.
    pub method: String,
    /// Scores at observed states (DAPPER's "a", or "s" for smoothers) and at every state ("i").
    pub rmse_obs: f64,
    /// RMSE of the mean at every state.
    pub rmse_all: f64,
    /// Ensemble spread at observed states.
    pub spread_obs: f64,
    /// CRPS at observed states.
    pub crps_obs: f64,
    /// CPU seconds of the run.
    pub seconds: f64,
    /// CPU milliseconds per observation cycle.
    pub ms_per_cycle: f64,
    /// Why the method failed, if it did.
    pub failed: Option<String>,
}

impl Row {
    /// The row as one line of a shard's part: tab-separated, every number as Rust writes it
    /// (shortest exact form, `NaN` included), so that a merge reads back the very values.
    pub fn part_line(&self) -> String {
        let failed = self
            .failed
            .as_deref()
            .map(|f| f.replace(['\t', '\n'], " "))
            .unwrap_or_default();
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.case,
            self.seed,
            self.method,
            self.rmse_obs,
            self.rmse_all,
            self.spread_obs,
            self.crps_obs,
            self.seconds,
            self.ms_per_cycle,
            failed
        )
    }

    /// A line of a shard's part read back, or `None`.
    pub fn from_part_line(line: &str) -> Option<Row> {
        let f: Vec<&str> = line.split('\t').collect();
        let num = |i: usize| f.get(i)?.parse::<f64>().ok();
        Some(Row {
            case: f.first()?.to_string(),
            seed: f.get(1)?.parse().ok()?,
            method: f.get(2)?.to_string(),
            rmse_obs: num(3)?,
            rmse_all: num(4)?,
            spread_obs: num(5)?,
            crps_obs: num(6)?,
            seconds: num(7)?,
            ms_per_cycle: num(8)?,
            failed: f.get(9).filter(|s| !s.is_empty()).map(|s| s.to_string()),
        })
    }

    /// A row not scored yet: `seconds` of CPU over `cycles` observation cycles.
    pub fn new(case: &str, seed: u64, method: &str, seconds: f64, cycles: usize) -> Self {
        Row {
            case: case.into(),
            seed,
            method: method.into(),
            rmse_obs: f64::NAN,
            rmse_all: f64::NAN,
            spread_obs: f64::NAN,
            crps_obs: f64::NAN,
            seconds,
            ms_per_cycle: 1e3 * seconds / cycles as f64,
            failed: None,
        }
    }
}
