//! The Lorenz-63 study's run: its folder and data, the observations and filters of every test
//! trajectory, the rows already computed, and the assimilations still missing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sda::assimilate::{Observed, SampleConfig, observe, sample_counted};
use sda::data::{Dataset, read_trajectories, simulate};
use sda::evaluate::{evaluate, finite_samples};
use sda::filter::{FilterConfig, particle_filter};
use sda::flag_value;
use sda::io::{Array, read_npy, write_npy};
use sda::mcs::{MarkovChain, System};
use sda::metrics::wasserstein1;
use sda::model::Model;
use sda::output::{Existing, Folder, check_folder, remove_outputs};
use sda::score::operator::Operator;
use sda::shard::locked;
use sda::study::lorenz63::{Combo, Row, sample_name, scenario};

use super::models::{model, precisions};
use super::report::report;
use super::rows::{Done, csv};
use super::settings::combos;
use super::{Args, Mode, STUDY_FILES};
use crate::common::{bar, device};

/// One assimilation: order k, scenario, test trajectory and the index of its (C, setting).
type Item = (usize, String, usize, usize);

pub fn run_mode(a: Args, mode: Mode) -> Result<()> {
    // Bad --device, --cases or --precision fail now, not after the filters.
    let precision = precisions(&a)?;
    let (combos, corrections) = combos(&a)?;
    for case in &a.cases {
        scenario(case)?;
    }
    let dir = &a.output;
    let data_dir = prepare(&a, &mode)?;
    let data =
        Dataset::load(&data_dir).with_context(|| format!("--data {}", data_dir.display()))?;
    let shape = data.info.state_shape.clone();
    let chain = data.info.system.chain()?;
    let test = read_trajectories(&data_dir.join("test.npy"), &shape)?;
    let (n_test, l_test) = (test.shape[0], test.shape[1]);
    if a.trajectories > n_test || a.length > l_test {
        bail!("--trajectories/--length: the test set has {n_test} trajectories of {l_test} states");
    }
    let runs: Vec<(usize, &Combo)> = corrections
        .iter()
        .flat_map(|&c| combos.iter().map(move |combo| (c, combo)))
        .collect();
    let mine = assimilations(&a, runs.len(), &mode);
    let needed: BTreeSet<(String, usize)> = mine
        .iter()
        .map(|(_, case, m, _)| (case.clone(), *m))
        .collect();
    let truths = filters(&a, &test, &needed, chain, &shape)?;

    // Rows already computed.
    let mut done = Done {
        path: dir.join("rows.csv"),
        rows: Vec::new(),
        composition: flag_value(&a.composition),
        precision: &precision,
    };
    done.rows = std::fs::read_to_string(&done.path)
        .map(|t| t.lines().skip(1).filter_map(Row::parse).collect())
        .unwrap_or_default();
    if let Mode::Merge(shards) = &mode {
        done.merge(shards)?;
    }
    let study = Study {
        a: &a,
        data: &data,
        chain,
        shape: &shape,
        runs: &runs,
    };
    let shard_rows = study.assimilate(&mine, &mode, &mut done)?;
    match mode {
        Mode::Shard(s) => {
            let text = csv(&shard_rows);
            let what = format!("{} assimilations", shard_rows.len());
            s.finish("csv", text.as_bytes(), &what)
        }
        Mode::Whole => {
            // The summary is a function of rows.csv alone (as written, to its decimals), so that
            // a whole run, a resumed one and a merge of shards give the same summary.csv.
            let rows: Vec<Row> = done
                .rows
                .iter()
                .filter_map(|r| Row::parse(&r.csv()))
                .collect();
            report(&a, &rows, dir, &truths, &precision, &combos, &corrections)
        }
        Mode::Merge(shards) => {
            report(
                &a,
                &done.rows,
                dir,
                &truths,
                &precision,
                &combos,
                &corrections,
            )?;
            Ok(shards.remove()?)
        }
    }
}

/// Checks the study folder (emptying it with --force) and simulates its data if missing;
/// returns the data folder.
fn prepare(a: &Args, mode: &Mode) -> Result<PathBuf> {
    let dir = &a.output;
    // Shards share the folder: each continues what the others made.
    let existing = match mode {
        Mode::Whole => Existing::from_flags(a.force, a.resume),
        _ => Existing::Resume,
    };
    let own = if a.data.is_some() {
        &STUDY_FILES[..7]
    } else {
        &STUDY_FILES[..]
    };
    let holds = check_folder(
        &Folder {
            path: dir,
            flag: "--output",
            what: "a study",
            markers: &own[..7],
            resumable: true,
            bytes: None,
        },
        existing,
    )?;
    if holds && existing == Existing::Replace {
        remove_outputs(dir, own)?;
    }
    let data_dir = a.data.clone().unwrap_or_else(|| dir.join("data"));
    locked(&dir.join(".lock-data"), || -> Result<()> {
        if !data_dir.join("system.json").exists() {
            simulate(
                &data_dir,
                System::from_name("lorenz63")?,
                1024,
                1024,
                1024,
                a.seed,
            )?;
            println!("simulated 1024 Lorenz-63 chains → {}", data_dir.display());
        }
        Ok(())
    })?;
    Ok(data_dir)
}

/// Every assimilation, in the order a whole study runs them; a shard takes a contiguous run of
/// them (and the trajectories they need).
fn assimilations(a: &Args, runs: usize, mode: &Mode) -> Vec<Item> {
    let mut items = Vec::new();
    for &k in &a.orders {
        for case in &a.cases {
            for m in 0..a.trajectories {
                for r in 0..runs {
                    items.push((k, case.clone(), m, r));
                }
            }
        }
    }
    match mode {
        Mode::Shard(s) => items[s.shard.range(items.len())].to_vec(),
        _ => items,
    }
}

/// Observations and the two filter runs (reference and floor) of every trajectory needed;
/// returns the truths.
fn filters(
    a: &Args,
    test: &Array,
    needed: &BTreeSet<(String, usize)>,
    chain: &dyn MarkovChain,
    shape: &[usize],
) -> Result<BTreeMap<(String, usize), Array>> {
    let (dir, l, l_test) = (&a.output, a.length, test.shape[1]);
    let mut truths = BTreeMap::new();
    let pb = bar(needed.len() as u64, "filter");
    for case in &a.cases {
        let (spec, std) = scenario(case)?;
        let op = Operator::parse(spec)?;
        for m in 0..a.trajectories {
            if !needed.contains(&(case.clone(), m)) {
                continue;
            }
            let obs_dir = dir.join("obs").join(format!("{case}-{m}"));
            let truth = test.data[m * l_test * 3..(m * l_test + l) * 3].to_vec();
            let y_path = obs_dir.join("y.npy");
            if !y_path.exists() {
                let m_out = op.output_shape(l, shape)?.iter().product();
                let y = observe(
                    &truth,
                    l,
                    shape,
                    &op,
                    &vec![std; m_out],
                    a.seed ^ (m as u64 * 7919),
                )?;
                write_npy(
                    &obs_dir.join("truth.npy"),
                    &Array::new(vec![1, l, 3], truth.clone()),
                )?;
                write_npy(&y_path, &y)?;
            }
            let y = read_npy(&y_path)?;
            for (run, seed) in [("a", 1u64), ("b", 2u64)] {
                let path = obs_dir.join(format!("filter-{run}.npy"));
                if !path.exists() {
                    let cfg = FilterConfig {
                        particles: a.particles,
                        keep: a.keep,
                        burn_in: 64,
                        seed: a.seed * 1000 + seed * 100 + m as u64,
                    };
                    let noise = vec![std; y.data.len()];
                    let x = particle_filter(chain, &op, &y, &noise, shape, l, &cfg)?;
                    write_npy(&path, &x)?;
                }
            }
            truths.insert((case.clone(), m), Array::new(vec![1, l, 3], truth));
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    Ok(truths)
}

/// What every assimilation of the study shares.
struct Study<'a> {
    a: &'a Args,
    data: &'a Dataset,
    chain: &'a dyn MarkovChain,
    shape: &'a [usize],
    /// Every (C, setting) pair.
    runs: &'a [(usize, &'a Combo)],
}

impl Study<'_> {
    /// Runs the assimilations of `mine` that have no row yet: a whole run adds each row to
    /// rows.csv as it comes; a shard's rows are returned for its part.
    fn assimilate(&self, mine: &[Item], mode: &Mode, done: &mut Done) -> Result<Vec<Row>> {
        let (a, dir, precision) = (self.a, &self.a.output, done.precision);
        let total = mine.len();
        let todo = mine
            .iter()
            .filter(|(k, case, m, r)| {
                let (c, combo) = self.runs[*r];
                !done.have(*k, case, *m, c, &combo.key())
            })
            .count();
        let mut shard_rows: Vec<Row> = Vec::new();
        let arithmetic: Vec<String> = precision
            .iter()
            .map(|(k, p)| format!("k = {k}: {p}"))
            .collect();
        println!(
            "study: {total} assimilations, {todo} to run (composition {}, precision {})",
            done.composition,
            arithmetic.join(", ")
        );
        let pb = bar(todo as u64, "assimilate");
        let mut loaded: Option<(usize, Model)> = None;
        for (k, case, m, r) in mine {
            let (k, m, (c, combo)) = (*k, *m, self.runs[*r]);
            let model_dir = dir.join("models").join(format!("k{k}"));
            let key = combo.key();
            if done.have(k, case, m, c, &key) {
                continue;
            }
            if loaded.as_ref().is_none_or(|(lk, _)| *lk != k) {
                let lock = dir.join("models").join(format!(".lock-k{k}"));
                let mdl = pb.suspend(|| locked(&lock, || model(a, self.data, k, &model_dir)))?;
                loaded = Some((k, mdl));
            }
            let mdl = &loaded.as_ref().expect("loaded above").1;
            let row = self.one(mdl, k, case, m, c, combo, done)?;
            let (w1, floor) = (row.w1, row.floor);
            if matches!(mode, Mode::Whole) {
                done.rows.push(row);
                done.save()?;
            } else {
                shard_rows.push(row);
            }
            pb.inc(1);
            pb.set_message(format!(
                "k={k} {case} #{m} C={c} {key}: W1 {w1:.1} (floor {floor:.1})"
            ));
        }
        pb.finish_and_clear();
        Ok(shard_rows)
    }

    /// One assimilation, its samples written and scored against the filters.
    #[allow(clippy::too_many_arguments)]
    fn one(
        &self,
        mdl: &Model,
        k: usize,
        case: &str,
        m: usize,
        c: usize,
        combo: &Combo,
        done: &Done,
    ) -> Result<Row> {
        let (a, dir, l, shape) = (self.a, &self.a.output, self.a.length, self.shape);
        let precision = done.precision;
        let (spec, std) = scenario(case)?;
        let key = combo.key();
        let obs_dir = dir.join("obs").join(format!("{case}-{m}"));
        let y = read_npy(&obs_dir.join("y.npy"))?;
        let observed = Observed {
            operator: Operator::parse(spec)?,
            noise: vec![std; y.data.len()],
            y,
        };
        let st = &combo.settings;
        let cfg = SampleConfig {
            length: l,
            samples: a.samples,
            batch: a.samples,
            steps: st.steps,
            corrections: c,
            tau: st.tau,
            method: st.sampler,
            grid: st.grid,
            eta: st.eta,
            corrector: st.corrector,
            delta: st.delta,
            likelihood: st.likelihood,
            composition: a.composition,
            precision: precision[&k],
            seed: a.seed ^ ((k * 1_000_003 + m * 1009 + c) as u64),
            guard: !a.no_guard,
            sampling: combo.sampling,
            ..Default::default()
        };
        let t0 = std::time::Instant::now();
        let (x, evals) = sample_counted(mdl, Some(&observed), &cfg, &device(&a.device)?, |_| {})?;
        let seconds = t0.elapsed().as_secs_f64();
        write_npy(
            &dir.join("samples")
                .join(sample_name(k, case, m, c, precision[&k], &key)),
            &x,
        )?;
        let fa = read_npy(&obs_dir.join("filter-a.npy"))?;
        let fb = read_npy(&obs_dir.join("filter-b.npy"))?;
        let e = evaluate(
            &x,
            Some(&fa),
            None,
            Some(self.chain),
            Some((&observed, shape)),
        )?;
        // The floor: as many samples of an independent filter run, against the reference.
        let nb = a.samples.min(fb.shape[0]);
        let fbv: Vec<f64> = fb.data[..nb * l * 3].iter().map(|&v| v as f64).collect();
        let (fav, _) = finite_samples(&fa);
        let floor = wasserstein1(&fbv, &fav, l * 3);
        Ok(Row {
            k,
            case: case.to_string(),
            m,
            c,
            w1: e.w1.unwrap_or(f64::NAN),
            floor,
            log_px: e.log_px.unwrap_or(f64::NAN),
            log_px_filter: e.log_px_reference.unwrap_or(f64::NAN),
            log_py: e.log_py.unwrap_or(f64::NAN),
            failed: e.failed,
            seconds,
            composition: done.composition.clone(),
            precision: precision[&k].to_string(),
            method: key,
            forward: evals.forward,
            backward: evals.backward,
        })
    }
}
