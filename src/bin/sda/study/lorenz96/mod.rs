//! `sda study lorenz96`: the classical data-assimilation benchmark on Lorenz-96 with DAPPER's
//! conventions and tuned settings (docs/baselines.md §6, docs/classical.md): truth from
//! `N(e_0, 0.001 I)`, observations, every method, DAPPER's time-averaged scores, a table and
//! figures.

mod assimilate;
mod report;

use anyhow::{Context, Result, bail};
use sda::classical::{Climatology, Method, Problem, Settings, run};
use sda::evaluate::time_averaged;
use sda::io::Array;
use sda::mcs::Lorenz96;
use sda::model::Model;
use sda::shard::locked;
use sda::study::lorenz96::{Case, Row, case, mean_of, sda_operator, simulate};
use sda::train::Network;

use self::assimilate::assimilate_sda;
use self::report::{figures, write_tables};
use super::models::prior;
use super::settings::{SdaSetting, sda_settings};
use super::{Args, Mode};
use crate::common::process_cpu;

/// The SDA priors of a case's grid, by (network, order).
type Priors = Vec<((Network, usize), Model)>;

/// The best ensemble mean drawn (by RMSE at every state): its RMSE, label and mean.
type Best = Option<(f64, String, Array)>;

/// The Lorenz-96 study, whole, as one shard of its (case, truth) pairs, or merging the
/// shards' rows into the tables.
pub fn run_study(a: &Args, mode: Mode) -> Result<()> {
    let names: Vec<String> = if a.cases == ["lo", "hi"] {
        vec![
            "sakov2008".into(),
            "sakov2008-dko4".into(),
            "spantini2019".into(),
        ]
    } else {
        a.cases.clone()
    };
    let cases: Vec<Case> = names.iter().map(|n| Ok(case(n)?)).collect::<Result<_>>()?;
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("--output {}", a.output.display()))?;
    let seeds = &a.truth_seeds;
    let sda_runs = if a.no_sda {
        Vec::new()
    } else {
        sda_settings(a)?
    };
    if !a.no_sda && a.sda_samples == 0 {
        bail!("--sda-samples: must be at least 1");
    }
    let mut rows: Vec<Row> = Vec::new();
    // Every (case, truth) pair, in the order a whole study runs them; a shard takes a
    // contiguous run of them.
    let units: Vec<(usize, usize)> = (0..cases.len())
        .flat_map(|ci| (0..seeds.len()).map(move |si| (ci, si)))
        .collect();
    let mine: Vec<(usize, usize)> = match &mode {
        Mode::Shard(s) => units[s.shard.range(units.len())].to_vec(),
        Mode::Whole => units.clone(),
        Mode::Merge(shards) => {
            for i in 0..shards.manifest().count {
                let text = String::from_utf8(shards.read(i, "tsv")?)
                    .with_context(|| format!("{}", shards.part(i, "tsv").display()))?;
                rows.extend(text.lines().filter_map(Row::from_part_line));
            }
            println!(
                "merged {} rows from {} shards",
                rows.len(),
                shards.manifest().count
            );
            Vec::new()
        }
    };
    for (ci, c) in cases.iter().enumerate() {
        if !mine.iter().any(|(i, _)| *i == ci) {
            continue;
        }
        let priors = priors(a, c, &sda_runs)?;
        for (si, &seed) in seeds.iter().enumerate() {
            if !mine.contains(&(ci, si)) {
                continue;
            }
            let truth = Truth::new(a, c, seed, si == 0)?;
            let mut drawn = Drawn::default();
            truth.classical(&mut rows, &mut drawn)?;
            truth.sda(a, &sda_runs, &priors, &mut rows, &mut drawn)?;
            if truth.first {
                figures(
                    &a.output,
                    c,
                    &drawn.series,
                    &truth.truth,
                    drawn.best,
                    drawn.sda_best.map(|(_, l, m)| (l, m)),
                    truth.skip,
                    truth.length,
                )?;
            }
        }
    }
    match mode {
        Mode::Shard(s) => {
            let text: String = rows.iter().map(|r| r.part_line() + "\n").collect();
            let what = format!("{} rows of {} (case, truth) pairs", rows.len(), mine.len());
            return s.finish("tsv", text.as_bytes(), &what);
        }
        Mode::Merge(shards) => {
            write_tables(&a.output, &rows, seeds)?;
            shards.remove()?;
        }
        Mode::Whole => {
            // The tables are a function of the values as a shard keeps them (the same bits).
            let rows: Vec<Row> = rows
                .iter()
                .filter_map(|r| Row::from_part_line(&r.part_line()))
                .collect();
            write_tables(&a.output, &rows, seeds)?;
        }
    }
    println!(
        "→ {0}/lorenz96.csv, {0}/lorenz96.md, {0}/lorenz96-CASE-rmse.png, {0}/lorenz96-CASE-hovmoller.png",
        a.output.display()
    );
    Ok(())
}

/// The SDA priors of this case's grid (trained once, then read from DIR/models; shards wait
/// for the one training it).
fn priors(a: &Args, c: &Case, sda_runs: &[SdaSetting]) -> Result<Priors> {
    let mut priors: Priors = Vec::new();
    for s in sda_runs {
        if !priors.iter().any(|(key, _)| *key == (s.network, s.k)) {
            let name = sda::flag_value(&s.network);
            let lock = a
                .output
                .join("models")
                .join(format!(".lock-{}-{name}-k{}", c.name, s.k));
            let m = locked(&lock, || prior(a, c, s.network, s.k))?;
            priors.push(((s.network, s.k), m));
        }
    }
    Ok(priors)
}

/// What the figures of a case's first truth show: each method's RMSE over time, and the best
/// smoother's and SDA's means.
#[derive(Default)]
struct Drawn {
    series: Vec<(String, Vec<f64>)>,
    best: Best,
    sda_best: Best,
}

/// One truth of a case: its model, observations and how it is scored.
struct Truth<'a> {
    c: &'a Case,
    model: Lorenz96,
    seed: u64,
    cycles: usize,
    length: usize,
    /// Scores count states after the first `skip` (t > burn_in, strictly).
    skip: usize,
    truth: Array,
    op: sda::score::operator::Operator,
    y: Array,
    noise: Vec<f32>,
    /// Whether this truth is the case's first (the one drawn).
    first: bool,
}

impl<'a> Truth<'a> {
    fn new(a: &Args, c: &'a Case, seed: u64, first: bool) -> Result<Self> {
        let model = c.model();
        let cycles = a.cycles.unwrap_or(c.cycles);
        let steps = cycles * c.dko;
        let length = steps + 1;
        // t > burn_in, strictly: the first counted state is ⌊burn_in/dt⌋ + 1 (as DAPPER).
        let skip = (c.burn_in / c.dt + 1e-9).floor() as usize;
        let (truth, op, y, noise) = simulate(&model, c, steps, seed)?;
        let truth_arr = Array::new(vec![length, 40], truth.iter().map(|&v| v as f32).collect());
        Ok(Truth {
            c,
            model,
            seed,
            cycles,
            length,
            skip,
            truth: truth_arr,
            op,
            y,
            noise,
            first,
        })
    }

    /// The rows of the case's classical methods.
    fn classical(&self, rows: &mut Vec<Row>, drawn: &mut Drawn) -> Result<()> {
        let (c, seed, length, skip) = (self.c, self.seed, self.length, self.skip);
        let truth_arr = &self.truth;
        let clim = Climatology::from_states(truth_arr)?;
        let mut e0 = vec![0.0; 40];
        e0[0] = 1.0;
        let problem = Problem::new(
            &self.model,
            &self.op,
            &self.y,
            &self.noise,
            length,
            Some(e0),
            0.001f64.sqrt(),
            Some(clim),
        )?;
        let at = self.op.times(length)?;
        for (label, method, s) in &c.methods {
            let s = Settings {
                seed: seed + 1,
                ..s.clone()
            };
            let cpu0 = process_cpu();
            let result = run(*method, &s, &problem, &|_| {});
            let secs = process_cpu() - cpu0;
            let mut row = Row::new(c.name, seed, label, secs, self.cycles);
            match result {
                Err(e) => row.failed = Some(e.to_string()),
                Ok(est) => {
                    let x = est.to_array();
                    let obs = time_averaged(&x, truth_arr, skip, Some(&at))?;
                    let all = time_averaged(&x, truth_arr, skip, None)?;
                    row.rmse_obs = obs.rmse;
                    row.rmse_all = all.rmse;
                    row.spread_obs = obs.spread;
                    row.crps_obs = obs.crps;
                    if self.first {
                        drawn.series.push((label.clone(), all.rmse_series.clone()));
                        let smoother =
                            matches!(method, Method::Enks | Method::Ienks | Method::Var4d);
                        if smoother && drawn.best.as_ref().is_none_or(|b| all.rmse < b.0) {
                            drawn.best = Some((all.rmse, label.clone(), mean_of(&x)));
                        }
                    }
                }
            }
            print_row(&row);
            rows.push(row);
        }
        Ok(())
    }

    /// SDA's rows: the whole observed period as one trajectory on the grid of every `thin`-th
    /// state, scored like the methods above on the states it models.
    fn sda(
        &self,
        a: &Args,
        sda_runs: &[SdaSetting],
        priors: &Priors,
        rows: &mut Vec<Row>,
        drawn: &mut Drawn,
    ) -> Result<()> {
        let (c, seed, length) = (self.c, self.seed, self.length);
        let truth_arr = &self.truth;
        let thin = c.thin;
        let l_sda = (length - 1) / thin + 1;
        let truth_sda = Array::new(
            vec![l_sda, 40],
            (0..l_sda)
                .flat_map(|j| truth_arr.data[j * thin * 40..(j * thin + 1) * 40].to_vec())
                .collect(),
        );
        let skip_sda = (c.burn_in / (c.dt * thin as f64) + 1e-9).floor() as usize;
        let at_sda = sda_operator(c)?.times(l_sda)?;
        for (ri, s) in sda_runs.iter().enumerate() {
            let label = s.label(a.sda_samples);
            let model = &priors
                .iter()
                .find(|(key, _)| *key == (s.network, s.k))
                .expect("trained")
                .1;
            let cpu0 = process_cpu();
            let result = assimilate_sda(
                a,
                c,
                model,
                s,
                &self.y,
                &self.noise,
                length,
                seed + 1 + ri as u64 * 7919,
            );
            let secs = process_cpu() - cpu0;
            let mut row = Row::new(c.name, seed, &label, secs, self.cycles);
            let scored = result.and_then(|x| {
                let obs = time_averaged(&x, &truth_sda, skip_sda, Some(&at_sda))?;
                let all = time_averaged(&x, &truth_sda, skip_sda, None)?;
                Ok((x, obs, all))
            });
            match scored {
                Err(e) => row.failed = Some(e.to_string()),
                Ok((x, obs, all)) => {
                    row.rmse_obs = obs.rmse;
                    row.rmse_all = all.rmse;
                    row.spread_obs = obs.spread;
                    row.crps_obs = obs.crps;
                    if self.first {
                        // On the model grid, NaN at the states SDA does not model.
                        let mut r = vec![f64::NAN; length];
                        for (j, v) in all.rmse_series.iter().enumerate() {
                            r[j * thin] = *v;
                        }
                        drawn.series.push((label.clone(), r));
                        if drawn.sda_best.as_ref().is_none_or(|b| all.rmse < b.0) {
                            drawn.sda_best = Some((all.rmse, label.clone(), mean_of(&x)));
                        }
                    }
                }
            }
            print_row(&row);
            rows.push(row);
        }
        Ok(())
    }
}

fn print_row(row: &Row) {
    println!(
        "{:<15} seed {:<5} {:<34} rmse {:.3} (all states {:.3})  spread {:.3}  crps {:.3}  {:.2} s{}",
        row.case,
        row.seed,
        row.method,
        row.rmse_obs,
        row.rmse_all,
        row.spread_obs,
        row.crps_obs,
        row.seconds,
        row.failed
            .as_deref()
            .map(|f| format!("  FAILED: {f}"))
            .unwrap_or_default()
    );
}
