//! `sda study lorenz96`: the classical data-assimilation benchmark on Lorenz-96 with DAPPER's
//! conventions and tuned settings (`../shared/BASELINES.md`, docs/classical.md): truth from
//! `N(e_0, 0.001 I)`, observations, every method, DAPPER's time-averaged scores, a table and
//! figures.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rand_distr::{Distribution, StandardNormal};
use sda::classical::{Climatology, Method, Problem, Settings, Taper, run};
use sda::evaluate::time_averaged;
use sda::io::{Array, write_atomic};
use sda::mcs::{Lorenz96, chain_rng};
use sda::plot::{FieldStyle, Panel, Series, panels, vorticity_grid};
use sda::score::operator::Operator;

use crate::filter::process_cpu;
use crate::study::Args;

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
    methods: Vec<(String, Method, Settings)>,
}

fn settings(members: usize, inflation: f64) -> Settings {
    Settings {
        members,
        inflation,
        ..Default::default()
    }
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
                        batch: 2,
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
                ],
            }
        }
        other => bail!(
            "--cases: unknown Lorenz-96 case '{other}' (sakov2008, sakov2008-dko4, spantini2019)"
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

pub fn run_study(a: &Args) -> Result<()> {
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
    let mut rows: Vec<Row> = Vec::new();
    for c in &cases {
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
                let mut row = Row {
                    case: c.name.into(),
                    seed,
                    method: label.clone(),
                    rmse_obs: f64::NAN,
                    rmse_all: f64::NAN,
                    spread_obs: f64::NAN,
                    crps_obs: f64::NAN,
                    seconds: secs,
                    ms_per_cycle: 1e3 * secs / cycles as f64,
                    failed: None,
                };
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
                println!(
                    "{:<15} seed {seed:<5} {:<34} rmse {:.3} (all states {:.3})  spread {:.3}  crps {:.3}  {:.2} s{}",
                    c.name,
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
                rows.push(row);
            }
            if si == 0 {
                figures(&a.output, c, &series, &truth_arr, best, skip, length)?;
            }
        }
    }
    write_tables(&a.output, &rows, seeds)?;
    println!(
        "→ {0}/lorenz96.csv, {0}/lorenz96.md, {0}/lorenz96-CASE-rmse.png, {0}/lorenz96-CASE-hovmoller.png",
        a.output.display()
    );
    Ok(())
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

/// RMSE over time per method, and a Hovmöller picture of the truth and the best smoother.
fn figures(
    dir: &Path,
    c: &Case,
    series: &[(String, Vec<f64>)],
    truth: &Array,
    best: Option<(f64, String, Array)>,
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
            dashed: false,
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
    // Hovmöller of the last 10 time units: time across, the 40 variables down.
    let d = 40;
    let span = ((10.0 / c.dt) as usize).min(length);
    let from = length - span;
    let mut fields: Vec<f32> = Vec::new();
    let mut labels = vec!["truth".to_string()];
    let mut push = |value: &dyn Fn(usize) -> f32| {
        for i in 0..d {
            for t in from..length {
                fields.push(value(t * d + i));
            }
        }
    };
    push(&|k| truth.data[k]);
    if let Some((_, label, mean)) = &best {
        push(&|k| mean.data[k]);
        push(&|k| mean.data[k] - truth.data[k]);
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
