//! The Lorenz-96 benchmark's report: lorenz96.csv, lorenz96.md (also on stdout) and the
//! figures of each case's first truth.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use sda::io::{Array, write_atomic};
use sda::plot::{FieldStyle, Panel, Series, panels, vorticity_grid};
use sda::study::lorenz96::{Case, Row};

/// RMSE over time per method, and a Hovmöller picture of the truth, SDA's mean (on its grid of
/// every `thin`-th state) and the best smoother's, with their errors.
#[allow(clippy::too_many_arguments)]
pub fn figures(
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

pub fn write_tables(dir: &Path, rows: &[Row], seeds: &[u64]) -> Result<()> {
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
