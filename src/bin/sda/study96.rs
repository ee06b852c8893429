//! `sda study lorenz96`: the classical data-assimilation benchmark on Lorenz-96 with DAPPER's
//! conventions and tuned settings (docs/baselines.md §6, docs/classical.md): truth from
//! `N(e_0, 0.001 I)`, observations, every method, DAPPER's time-averaged scores, a table and
//! figures.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rand_distr::{Distribution, StandardNormal};
use sda::assimilate::{Observed, SampleConfig, sample_counted};
use sda::classical::{Climatology, Ensf, EnsfScore, Method, Problem, Settings, Taper, run};
use sda::data::{Dataset, Splits};
use sda::evaluate::time_averaged;
use sda::io::{Array, write_atomic};
use sda::mcs::{Layout, Lorenz96, System, chain_rng};
use sda::model::Model;
use sda::plot::{FieldStyle, Panel, Series, panels, vorticity_grid};
use sda::score::autoregressive::Sampling;
use sda::score::guidance::Likelihood;
use sda::score::net::Backbone;
use sda::score::operator::Operator;
use sda::score::preset::{Flags, Settings as SamplerSettings, likelihood_name};
use sda::score::sde::VpSde;
use sda::train::{NetSpec, Network, TrainConfig, train};

use crate::common::{bar, device};
use crate::filter::process_cpu;
use crate::study::{Args, Mode};
use sda::shard::locked;

/// One benchmark case: model grid, observations and the time of the burn-in.
struct Case {
    name: &'static str,
    dt: f64,
    /// Model steps per observation.
    dko: usize,
    /// Observation cycles by default.
    cycles: usize,
    operator: String,
    std: f64,
    /// Scores average over t > burn_in (strictly).
    burn_in: f64,
    /// SDA models every `thin`-th model state (its prior's time step is `thin · dt`).
    thin: usize,
    methods: Vec<(String, Method, Settings)>,
}

fn settings(members: usize, inflation: f64) -> Settings {
    Settings {
        members,
        inflation,
        ..Default::default()
    }
}

/// An EnSF row: `members`, reverse-SDE steps, score, the rest at their defaults.
fn ensf_row(members: usize, steps: usize, score: EnsfScore) -> (String, Method, Settings) {
    (
        format!("ensf N={members} Nt={steps} {score}"),
        Method::Ensf,
        Settings {
            ensf: Ensf {
                steps,
                score,
                ..Ensf::default()
            },
            ..settings(members, 1.0)
        },
    )
}

fn case(name: &str) -> Result<Case> {
    use Method::*;
    let every = "stride:1@1".to_string();
    Ok(match name {
        "sakov2008" => Case {
            name: "sakov2008",
            dt: 0.05,
            dko: 1,
            cycles: 2400,
            operator: every,
            std: 1.0,
            burn_in: 20.0,
            thin: 1,
            methods: vec![
                ("climatology".into(), Climatology, Settings::default()),
                ("oi".into(), Oi, Settings::default()),
                (
                    "var3d xB=0.02".into(),
                    Var3d,
                    Settings {
                        background_scale: 0.02,
                        ..Default::default()
                    },
                ),
                ("enkf N=40 infl=1.06".into(), Enkf, settings(40, 1.06)),
                ("denkf N=40 infl=1.01".into(), Denkf, settings(40, 1.01)),
                ("etkf N=24 infl=1.013".into(), Etkf, settings(24, 1.013)),
                (
                    "etkf N=24 infl=1.02 rot".into(),
                    Etkf,
                    Settings {
                        rotate: true,
                        ..settings(24, 1.02)
                    },
                ),
                (
                    "letkf N=7 infl=1.04 rot r=4".into(),
                    Letkf,
                    Settings {
                        rotate: true,
                        radius: 4.0,
                        taper: Taper::Gc,
                        block: 2,
                        ..settings(7, 1.04)
                    },
                ),
                (
                    "enks N=24 infl=1.02 lag=10".into(),
                    Enks,
                    Settings {
                        lag: 10,
                        ..settings(24, 1.02)
                    },
                ),
                (
                    "ienks N=20 infl=1.01 rot lag=10".into(),
                    Ienks,
                    Settings {
                        lag: 10,
                        rotate: true,
                        ..settings(20, 1.01)
                    },
                ),
            ],
        },
        "sakov2008-dko4" => Case {
            name: "sakov2008-dko4",
            dt: 0.05,
            dko: 4,
            cycles: 1000,
            operator: "stride:4@4".into(),
            std: 1.0,
            burn_in: 20.0,
            thin: 1,
            methods: vec![
                (
                    "ienks N=20 xN=2 lag=4".into(),
                    Ienks,
                    Settings {
                        lag: 4,
                        finite_size: Some(2.0),
                        ..settings(20, 1.0)
                    },
                ),
                (
                    "var4d xB=0.02 lag=4".into(),
                    Var4d,
                    Settings {
                        lag: 4,
                        background_scale: 0.02,
                        ..Default::default()
                    },
                ),
                ensf_row(20, 500, EnsfScore::Paired),
                ensf_row(20, 200, EnsfScore::Mixture(None)),
            ],
        },
        "spantini2019" => {
            let select: Vec<String> = (0..40).step_by(2).map(|i| i.to_string()).collect();
            Case {
                name: "spantini2019",
                dt: 0.02,
                dko: 20,
                cycles: 500,
                operator: format!("stride:20@20|select:{}", select.join(",")),
                std: 0.5f64.sqrt(),
                burn_in: 20.0,
                thin: 5,
                methods: vec![
                    (
                        "ienks N=40 infl=1.10 lag=2".into(),
                        Ienks,
                        Settings {
                            lag: 2,
                            ..settings(40, 1.10)
                        },
                    ),
                    (
                        "etkf N=40 infl=1.10 rot".into(),
                        Etkf,
                        Settings {
                            rotate: true,
                            ..settings(40, 1.10)
                        },
                    ),
                    (
                        "letkf N=40 infl=1.10 rot r=4".into(),
                        Letkf,
                        Settings {
                            rotate: true,
                            radius: 4.0,
                            ..settings(40, 1.10)
                        },
                    ),
                    (
                        "enks N=40 infl=1.10 lag=2".into(),
                        Enks,
                        Settings {
                            lag: 2,
                            ..settings(40, 1.10)
                        },
                    ),
                    ensf_row(40, 500, EnsfScore::Paired),
                ],
            }
        }
        // EnSF's Lorenz-96 experiment at laptop size (Bao et al. 2024): every variable observed
        // through arctan every 10 RK4 steps of 0.01, noise std 0.05.
        "arctan" => Case {
            name: "arctan",
            dt: 0.01,
            dko: 10,
            cycles: 500,
            operator: "stride:10@10|arctan".into(),
            std: 0.05,
            burn_in: 20.0,
            // SDA's grid: every 5th state (dt 0.05, sakov2008's), observed every 2nd.
            thin: 5,
            methods: vec![
                ("climatology".into(), Climatology, Settings::default()),
                (
                    "var3d xB=0.02".into(),
                    Var3d,
                    Settings {
                        background_scale: 0.02,
                        ..Default::default()
                    },
                ),
                ("enkf N=20 infl=1.05".into(), Enkf, settings(20, 1.05)),
                (
                    "etkf N=20 infl=1.02 rot".into(),
                    Etkf,
                    Settings {
                        rotate: true,
                        ..settings(20, 1.02)
                    },
                ),
                (
                    "letkf N=20 infl=1.05 r=4".into(),
                    Letkf,
                    Settings {
                        radius: 4.0,
                        ..settings(20, 1.05)
                    },
                ),
                ensf_row(20, 500, EnsfScore::Paired),
                ensf_row(20, 200, EnsfScore::Paired),
                ensf_row(20, 500, EnsfScore::Mixture(None)),
            ],
        },
        other => bail!(
            "--cases: unknown Lorenz-96 case '{other}' (sakov2008, sakov2008-dko4, spantini2019, \
             arctan)"
        ),
    })
}

/// The truth `x_0 ~ N(e_0, 0.001 I)`, `K` RK4 steps, and the observations.
fn simulate(
    model: &Lorenz96,
    c: &Case,
    steps: usize,
    seed: u64,
) -> Result<(Vec<f64>, Operator, Array, Vec<f32>)> {
    let d = model.n;
    let mut rng = chain_rng(seed, 0);
    let mut x: Vec<f64> = (0..d)
        .map(|i| {
            let z: f64 = StandardNormal.sample(&mut rng);
            (if i == 0 { 1.0 } else { 0.0 }) + 0.001f64.sqrt() * z
        })
        .collect();
    let mut truth = Vec::with_capacity((steps + 1) * d);
    truth.extend_from_slice(&x);
    for _ in 0..steps {
        model.step(&mut x);
        truth.extend_from_slice(&x);
    }
    let op = Operator::parse(&c.operator)?;
    let times = op.times(steps + 1)?;
    let map = sda::classical::ObsMap::new(&op, d)?;
    let mut noise_rng = chain_rng(seed, 1);
    let mut y = Vec::new();
    for &t in &times {
        for v in map.apply(&truth[t * d..(t + 1) * d]) {
            let z: f64 = StandardNormal.sample(&mut noise_rng);
            y.push((v + c.std * z) as f32);
        }
    }
    let shape = op.output_shape(steps + 1, &[d])?;
    let n = y.len();
    Ok((truth, op, Array::new(shape, y), vec![c.std as f32; n]))
}

/// One method's scores on one truth.
struct Row {
    case: String,
    seed: u64,
    method: String,
    /// Scores at observed states (DAPPER's "a", or "s" for smoothers) and at every state ("i").
    rmse_obs: f64,
    rmse_all: f64,
    spread_obs: f64,
    crps_obs: f64,
    seconds: f64,
    ms_per_cycle: f64,
    failed: Option<String>,
}

impl Row {
    /// The row as one line of a shard's part: tab-separated, every number as Rust writes it
    /// (shortest exact form, `NaN` included), so that a merge reads back the very values.
    fn part_line(&self) -> String {
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

    fn from_part_line(line: &str) -> Option<Row> {
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
    fn new(case: &str, seed: u64, method: &str, seconds: f64, cycles: usize) -> Self {
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
    let cases: Vec<Case> = names.iter().map(|n| case(n)).collect::<Result<_>>()?;
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
        // The SDA priors of this case's grid (trained once, then read from DIR/models; shards
        // wait for the one training it).
        let mut priors: Vec<((Network, usize), Model)> = Vec::new();
        for s in &sda_runs {
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
        let model = Lorenz96 {
            n: 40,
            forcing: 8.0,
            dt: c.dt,
            noise: 0.0,
        };
        let cycles = a.cycles.unwrap_or(c.cycles);
        let steps = cycles * c.dko;
        let length = steps + 1;
        // t > burn_in, strictly: the first counted state is ⌊burn_in/dt⌋ + 1 (as DAPPER).
        let skip = (c.burn_in / c.dt + 1e-9).floor() as usize;
        for (si, &seed) in seeds.iter().enumerate() {
            if !mine.contains(&(ci, si)) {
                continue;
            }
            let (truth, op, y, noise) = simulate(&model, c, steps, seed)?;
            let truth_arr = Array::new(vec![length, 40], truth.iter().map(|&v| v as f32).collect());
            let clim = Climatology::from_states(&truth_arr)?;
            let mut e0 = vec![0.0; 40];
            e0[0] = 1.0;
            let problem = Problem::new(
                &model,
                &op,
                &y,
                &noise,
                length,
                Some(e0),
                0.001f64.sqrt(),
                Some(clim),
            )?;
            let at = op.times(length)?;
            let mut series: Vec<(String, Vec<f64>)> = Vec::new();
            let mut best: Option<(f64, String, Array)> = None;
            for (label, method, s) in &c.methods {
                let s = Settings {
                    seed: seed + 1,
                    ..s.clone()
                };
                let cpu0 = process_cpu();
                let result = run(*method, &s, &problem, &|_| {});
                let secs = process_cpu() - cpu0;
                let mut row = Row::new(c.name, seed, label, secs, cycles);
                match result {
                    Err(e) => row.failed = Some(e.to_string()),
                    Ok(est) => {
                        let x = est.to_array();
                        let obs = time_averaged(&x, &truth_arr, skip, Some(&at))?;
                        let all = time_averaged(&x, &truth_arr, skip, None)?;
                        row.rmse_obs = obs.rmse;
                        row.rmse_all = all.rmse;
                        row.spread_obs = obs.spread;
                        row.crps_obs = obs.crps;
                        if si == 0 {
                            series.push((label.clone(), all.rmse_series.clone()));
                            let smoother =
                                matches!(method, Method::Enks | Method::Ienks | Method::Var4d);
                            if smoother && best.as_ref().is_none_or(|b| all.rmse < b.0) {
                                best = Some((all.rmse, label.clone(), mean_of(&x)));
                            }
                        }
                    }
                }
                print_row(&row);
                rows.push(row);
            }
            // SDA: the whole observed period as one trajectory on the grid of every
            // `thin`-th state, scored like the methods above on the states it models.
            let mut sda_best: Option<(f64, String, Array)> = None;
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
                    &y,
                    &noise,
                    length,
                    seed + 1 + ri as u64 * 7919,
                );
                let secs = process_cpu() - cpu0;
                let mut row = Row::new(c.name, seed, &label, secs, cycles);
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
                        if si == 0 {
                            // On the model grid, NaN at the states SDA does not model.
                            let mut r = vec![f64::NAN; length];
                            for (j, v) in all.rmse_series.iter().enumerate() {
                                r[j * thin] = *v;
                            }
                            series.push((label.clone(), r));
                            if sda_best.as_ref().is_none_or(|b| all.rmse < b.0) {
                                sda_best = Some((all.rmse, label.clone(), mean_of(&x)));
                            }
                        }
                    }
                }
                print_row(&row);
                rows.push(row);
            }
            if si == 0 {
                figures(
                    &a.output,
                    c,
                    &series,
                    &truth_arr,
                    best,
                    sda_best.map(|(_, l, m)| (l, m)),
                    skip,
                    length,
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

/// The ensemble mean as a `(1, L, D)` array.
fn mean_of(x: &Array) -> Array {
    let (n, l, d) = (x.shape[0], x.shape[1], x.shape[2]);
    let mut m = vec![0.0f32; l * d];
    for k in 0..n {
        for (i, v) in x.data[k * l * d..(k + 1) * l * d].iter().enumerate() {
            m[i] += v / n as f32;
        }
    }
    Array::new(vec![1, l, d], m)
}

/// RMSE over time per method, and a Hovmöller picture of the truth, SDA's mean (on its grid of
/// every `thin`-th state) and the best smoother's, with their errors.
#[allow(clippy::too_many_arguments)]
fn figures(
    dir: &Path,
    c: &Case,
    series: &[(String, Vec<f64>)],
    truth: &Array,
    best: Option<(f64, String, Array)>,
    sda: Option<(String, Array)>,
    skip: usize,
    length: usize,
) -> Result<()> {
    // Per-state RMSEs averaged over bins of one time unit, so that the lines stay readable.
    let bin = ((1.0 / c.dt).round() as usize).max(1);
    let lines: Vec<Series> = series
        .iter()
        .enumerate()
        .map(|(i, (label, r))| Series {
            label: label.clone(),
            points: r[skip + 1..]
                .chunks(bin)
                .enumerate()
                .filter_map(|(b, v)| {
                    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
                    (!f.is_empty()).then(|| {
                        let t = (skip + 1 + b * bin) as f64 * c.dt;
                        (t, f.iter().sum::<f64>() / f.len() as f64)
                    })
                })
                .collect(),
            // SDA's lines dashed: the palette repeats after ten methods.
            dashed: label.starts_with("sda"),
            color: i,
        })
        .collect();
    let panel = Panel {
        title: format!("L96 {}: RMSE per time unit", c.name),
        x_label: "t".into(),
        y_label: "RMSE".into(),
        series: lines,
        log_x: false,
        log_y: true,
    };
    panels(
        &dir.join(format!("lorenz96-{}-rmse.png", c.name)),
        1,
        1,
        &[panel],
    )?;
    // Hovmöller of the last 10 time units: time across, the 40 variables down; with SDA on a
    // coarser grid, every panel shows the states SDA models.
    let d = 40;
    let thin = if sda.is_some() { c.thin } else { 1 };
    let times: Vec<usize> = (0..length)
        .filter(|t| t % thin == 0)
        .filter(|&t| t as f64 * c.dt > (length - 1) as f64 * c.dt - 10.0 - 1e-9)
        .collect();
    let span = times.len();
    let mut fields: Vec<f32> = Vec::new();
    let mut labels = vec!["truth".to_string()];
    let mut push = |value: &dyn Fn(usize, usize) -> f32| {
        for i in 0..d {
            for &t in &times {
                fields.push(value(t, i));
            }
        }
    };
    push(&|t, i| truth.data[t * d + i]);
    if let Some((label, mean)) = &sda {
        let at = |t: usize, i: usize| mean.data[(t / c.thin) * d + i];
        push(&at);
        push(&|t, i| at(t, i) - truth.data[t * d + i]);
        let short = label.split(" T=").next().unwrap_or("sda");
        labels.push(format!("{short} mean"));
        labels.push(format!("{short} error"));
    }
    if let Some((_, label, mean)) = &best {
        let m_at = |t: usize, i: usize| mean.data[t * d + i];
        push(&m_at);
        push(&|t, i| m_at(t, i) - truth.data[t * d + i]);
        let short = label.split_whitespace().next().unwrap_or("smoother");
        labels.push(format!("{short} mean"));
        labels.push(format!("{short} error"));
    }
    let rows = labels.len();
    let arr = Array::new(vec![rows, 1, d, span], fields);
    vorticity_grid(
        &dir.join(format!("lorenz96-{}-hovmoller.png", c.name)),
        &arr,
        None,
        &labels,
        &[],
        &FieldStyle {
            vmax: 10.0,
            scale: (800 / span.max(1)).clamp(1, 4) as u32,
        },
    )?;
    Ok(())
}

fn write_tables(dir: &Path, rows: &[Row], seeds: &[u64]) -> Result<()> {
    let mut csv = String::from(
        "case,seed,method,rmse_obs,rmse_all,spread_obs,crps_obs,cpu_seconds,ms_per_cycle,failed\n",
    );
    for r in rows {
        writeln!(
            csv,
            "{},{},{},{:.4},{:.4},{:.4},{:.4},{:.3},{:.4},{}",
            r.case,
            r.seed,
            r.method,
            r.rmse_obs,
            r.rmse_all,
            r.spread_obs,
            r.crps_obs,
            r.seconds,
            r.ms_per_cycle,
            r.failed.as_deref().unwrap_or("").replace(',', ";")
        )?;
    }
    write_atomic(&dir.join("lorenz96.csv"), csv.as_bytes())?;
    let mut md = String::new();
    let seed_list: Vec<String> = seeds.iter().map(|s| s.to_string()).collect();
    writeln!(
        md,
        "| case | method | rmse at obs. (seeds {}) | rmse all states | spread | CRPS | CPU s | ms/cycle |\n|---|---|---|---|---|---|---|---|",
        seed_list.join(" / ")
    )?;
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in rows {
        let k = (r.case.clone(), r.method.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let f = |v: f64| {
        if v.is_finite() {
            format!("{v:.3}")
        } else {
            "failed".into()
        }
    };
    for (case, method) in keys {
        let rs: Vec<&Row> = rows
            .iter()
            .filter(|r| r.case == case && r.method == method)
            .collect();
        let join =
            |g: &dyn Fn(&Row) -> f64| rs.iter().map(|r| f(g(r))).collect::<Vec<_>>().join(" / ");
        let mean = |g: &dyn Fn(&Row) -> f64| rs.iter().map(|r| g(r)).sum::<f64>() / rs.len() as f64;
        writeln!(
            md,
            "| {case} | {method} | {} | {} | {} | {} | {:.2} | {:.3} |",
            join(&|r| r.rmse_obs),
            join(&|r| r.rmse_all),
            join(&|r| r.spread_obs),
            join(&|r| r.crps_obs),
            mean(&|r| r.seconds),
            mean(&|r| r.ms_per_cycle),
        )?;
    }
    write_atomic(&dir.join("lorenz96.md"), md.as_bytes())?;
    print!("{md}");
    Ok(())
}

/// One SDA setting of the study: the prior's order and the sampler and likelihood.
struct SdaSetting {
    network: Network,
    k: usize,
    settings: SamplerSettings,
    sampling: Sampling,
}

impl SdaSetting {
    /// The table's method name, e.g. `sda ring k=2 T=64 C=1 τ=0.25 γ=0.03 N=16`.
    fn label(&self, samples: usize) -> String {
        let s = &self.settings;
        let lik = match s.likelihood {
            Likelihood::Sda { gamma } => format!("γ={gamma}"),
            other => likelihood_name(&other),
        };
        let sampling = match self.sampling {
            Sampling::Joint => "",
            Sampling::Autoregressive => " ar",
        };
        format!(
            "sda {} k={} T={} C={} τ={} {lik} N={samples}{sampling}",
            sda::flag_value(&self.network),
            self.k,
            s.steps,
            s.corrections,
            s.tau
        )
    }
}

/// Every combination of --sda-orders, --steps and --corrections, the preset filling the rest.
fn sda_settings(a: &Args) -> Result<Vec<SdaSetting>> {
    let base = a.preset.resolve(&Flags::default())?;
    let steps = if a.steps.is_empty() {
        vec![base.steps]
    } else {
        a.steps.clone()
    };
    let corrections = if a.corrections.is_empty() {
        vec![base.corrections]
    } else {
        a.corrections.clone()
    };
    let mut out = Vec::new();
    for (&network, &k) in a
        .sda_networks
        .iter()
        .flat_map(|n| a.sda_orders.iter().map(move |k| (n, k)))
    {
        if k == 0 {
            bail!("--sda-orders: k must be at least 1 (windows of 2k + 1 states)");
        }
        if !matches!(network, Network::Mlp | Network::Ring) {
            bail!("--sda-networks: Lorenz-96 priors are `mlp` or `ring` networks");
        }
        for &t in &steps {
            for &c in &corrections {
                let settings = a.preset.resolve(&Flags {
                    steps: Some(t),
                    corrections: Some(c),
                    tau: a.tau,
                    gamma: a.gamma,
                    corrector: a.corrector,
                    grid: a.grid,
                    ..Flags::default()
                })?;
                for &sampling in &a.sampling {
                    out.push(SdaSetting {
                        network,
                        k,
                        settings,
                        sampling,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The operator of a case on the states SDA models (every `thin`-th model state).
fn sda_operator(c: &Case) -> Result<Operator> {
    if !c.dko.is_multiple_of(c.thin) {
        bail!(
            "{}: observations every {} steps are not on a grid of every {}th state",
            c.name,
            c.dko,
            c.thin
        );
    }
    let n = c.dko / c.thin;
    let rest = c
        .operator
        .split_once('|')
        .map(|(_, r)| format!("|{r}"))
        .unwrap_or_default();
    Ok(Operator::parse(&format!("stride:{n}@{n}{rest}"))?)
}

/// Simulated L96-40 chains on the grid SDA models: `--sda-chains` chains from random states,
/// 1024 model steps of burn-in, then `--sda-length` states `thin` model steps apart.
fn training_data(a: &Args, c: &Case) -> Result<Splits> {
    let model = Lorenz96 {
        n: 40,
        forcing: 8.0,
        dt: c.dt,
        noise: 0.0,
    };
    let (n, len, thin) = (a.sda_chains, a.sda_length, c.thin);
    if n < 3 || len < 2 {
        bail!("--sda-chains/--sda-length: need at least 3 chains of 2 states");
    }
    let steps = (len - 1) * thin + 1;
    let x = System::Lorenz96(model.clone())
        .chain()?
        .trajectories(n, steps, 1024, a.seed);
    let mut kept = Vec::with_capacity(n * len * 40);
    for chain in x.chunks(steps * 40) {
        for t in (0..steps).step_by(thin) {
            kept.extend(chain[t * 40..(t + 1) * 40].iter().map(|&v| v as f32));
        }
    }
    let system = System::Lorenz96(Lorenz96 {
        dt: c.dt * thin as f64,
        ..model
    });
    let mut splits = Splits::from_arrays(system, Array::new(vec![n, len, 40], kept), None, None)?;
    splits.info.burn_in = 1024;
    splits.info.seed = a.seed;
    Ok(splits)
}

/// The SDA prior of order k for a case's grid: loaded from DIR/models when trained with the
/// same settings, else trained (or resumed) there. Its data set is kept beside it.
fn prior(a: &Args, c: &Case, network: Network, k: usize) -> Result<Model> {
    let dt = c.dt * c.thin as f64;
    let root = a.output.join("models");
    let data_dir = root.join(format!(
        "l96-dt{dt}-data-n{}-l{}",
        a.sda_chains, a.sda_length
    ));
    let spec = NetSpec {
        order: k,
        network,
        width: a.sda_width,
        kernel: Some(a.sda_kernel),
        ..NetSpec::default()
    };
    let net = spec.config(&[40], Layout::Ring)?;
    let width = match net.backbone {
        Backbone::Mlp { width, .. } | Backbone::Ring { width, .. } => width,
        Backbone::Unet { .. } => unreachable!("vector states"),
    };
    // The MLP priors keep the folder names they had before ring priors existed.
    let body = match network {
        Network::Ring => format!("-ring{}", a.sda_kernel),
        _ => String::new(),
    };
    let ema = a.sda_ema.map_or(String::new(), |d| format!("-ema{d}"));
    let dir = root.join(format!(
        "l96-dt{dt}-n{}-l{}-k{k}{body}-w{width}-e{}{ema}",
        a.sda_chains, a.sda_length, a.sda_epochs
    ));
    let dev = device(&a.device)?;
    let done = dir.join("model.safetensors").exists() && !dir.join("checkpoint.json").exists()
        || sda::io::read_json::<serde_json::Value>(&dir.join("checkpoint.json"))
            .ok()
            .and_then(|c| c["epochs_done"].as_u64())
            == Some(a.sda_epochs as u64);
    if done {
        return Model::load(&dir, &dev).with_context(|| format!("loading {}", dir.display()));
    }
    let data = if data_dir.join("system.json").exists() {
        Dataset::load(&data_dir).with_context(|| format!("loading {}", data_dir.display()))?
    } else {
        let splits = training_data(a, c)?;
        splits.save(&data_dir)?;
        splits.dataset()
    };
    let config = TrainConfig {
        epochs: a.sda_epochs,
        seed: a.seed + k as u64,
        ema: a.sda_ema,
        ..TrainConfig::default()
    };
    let pb = bar(a.sda_epochs as u64, &format!("train dt={dt} k={k}"));
    let t0 = std::time::Instant::now();
    let resume = dir.join("config.json").exists();
    let mut last = (f64::NAN, f64::NAN);
    let m = train(
        &data,
        net,
        VpSde::default(),
        &config,
        &dir,
        resume,
        &dev,
        |s| {
            pb.set_position(s.epoch as u64);
            last = (s.train_loss, s.valid_loss);
            pb.set_message(format!(
                "loss {:.4} valid {:.4}",
                s.train_loss, s.valid_loss
            ));
        },
    )
    .with_context(|| format!("training {}", dir.display()))?;
    pb.finish_and_clear();
    println!(
        "trained the L96-40 prior dt = {dt}, k = {k}, {} ({} epochs, {:.0} s; loss {:.4}, valid {:.4}) → {}",
        m.config.net.describe(),
        a.sda_epochs,
        t0.elapsed().as_secs_f64(),
        last.0,
        last.1,
        dir.display()
    );
    Ok(m)
}

/// SDA's posterior samples `(N, L_sda, 40)` of one truth's observations, on the case's grid.
#[allow(clippy::too_many_arguments)]
fn assimilate_sda(
    a: &Args,
    c: &Case,
    model: &Model,
    s: &SdaSetting,
    y: &Array,
    noise: &[f32],
    length: usize,
    seed: u64,
) -> Result<Array> {
    let operator = sda_operator(c)?;
    let l = (length - 1) / c.thin + 1;
    let observed = Observed {
        operator,
        y: y.clone(),
        noise: noise.to_vec(),
    };
    let cfg = SampleConfig {
        length: l,
        samples: a.sda_samples,
        batch: a.sda_samples.min(8),
        precision: a.precision,
        seed,
        guard: !a.no_guard,
        sampling: s.sampling,
        ..SampleConfig::default()
    }
    .with(&s.settings);
    let passes = cfg.sampler(model.config.sde).evaluations();
    println!(
        "{} {}: {l} states × {} samples, {passes} guided network passes over {} windows each \
         ({})",
        c.name,
        s.label(a.sda_samples),
        a.sda_samples,
        l.saturating_sub(2 * s.k),
        cfg.describe_sampling(&model.config.net)
    );
    let pb = bar(
        (cfg.steps_per_batch(&model.config.net) * a.sda_samples.div_ceil(cfg.batch)) as u64,
        "sda",
    );
    pb.set_message(format!("{l} states, {} samples", a.sda_samples));
    let (x, _) = sample_counted(model, Some(&observed), &cfg, &device(&a.device)?, |_| {
        pb.inc(1)
    })?;
    pb.finish_and_clear();
    Ok(x)
}
