//! The Lorenz-63 study's report: the summary table (stdout), summary.csv, figure3.png and
//! trajectories.png, from the rows of this study's settings.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use sda::flag_value;
use sda::io::{Array, read_npy, write_atomic};
use sda::nn::cpu::Precision;
use sda::plot::{Panel, Series, panels, trajectories};
use sda::score::operator::Operator;
use sda::study::lorenz63::{Combo, Row, median, sample_name, scenario};

use super::Args;

/// Points (C, value) of W1, log p(x) and log p(y|x) of one line of the figure.
type Lines = [Vec<(f64, f64)>; 3];

/// W1 against evaluations: one line per method (likelihood, sampler, grid) and k, by name,
/// with its colour.
type Cost = BTreeMap<String, (usize, Vec<(f64, f64)>)>;

/// Summary table, summary.csv and the figures, from the rows of this study's settings.
pub fn report(
    a: &Args,
    rows: &[Row],
    dir: &Path,
    truths: &BTreeMap<(String, usize), Array>,
    precision: &BTreeMap<usize, Precision>,
    combos: &[Combo],
    corrections: &[usize],
) -> Result<()> {
    let composition = flag_value(&a.composition);
    let keys: Vec<String> = combos.iter().map(Combo::key).collect();
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            a.orders.contains(&r.k)
                && a.cases.contains(&r.case)
                && r.m < a.trajectories
                && corrections.contains(&r.c)
                && r.composition == composition
                && r.precision == precision[&r.k].to_string()
                && keys.contains(&r.method)
        })
        .collect();
    let mut summary = Summary {
        a,
        combos,
        corrections,
        table: String::new(),
        csv: String::from(
            "case,k,corrections,method,median_w1,median_w1_floor,mean_log_px,mean_log_px_filter,mean_log_py,forward,backward,mean_seconds,trajectories\n",
        ),
    };
    writeln!(
        summary.table,
        "{:<4} {:>2} {:>3} {:<36} {:>9} {:>7} {:>10} {:>9} {:>10} {:>6} {:>6} {:>8}",
        "case",
        "k",
        "C",
        "method / grid / corrector / steps",
        "W1 (med)",
        "floor",
        "log p(x)",
        "filter",
        "log p(y|x)",
        "fwd",
        "bwd",
        "seconds"
    )?;
    let mut figure = Vec::new();
    for case in &a.cases {
        let of_case: Vec<&Row> = rows.iter().copied().filter(|r| &r.case == case).collect();
        figure.extend(summary.case(case, &of_case)?);
    }
    print!("{}", summary.table);
    write_atomic(&dir.join("summary.csv"), summary.csv.as_bytes())?;
    panels(&dir.join("figure3.png"), a.cases.len(), 4, &figure)?;
    samples_figure(a, dir, truths, precision, combos, corrections)?;
    println!(
        "→ {}/rows.csv, summary.csv, figure3.png, trajectories.png",
        dir.display()
    );
    Ok(())
}

/// The summary's table and csv, written case by case, and what they are of.
struct Summary<'a> {
    a: &'a Args,
    combos: &'a [Combo],
    corrections: &'a [usize],
    table: String,
    csv: String,
}

impl Summary<'_> {
    /// One case's lines of the table and csv, and its four panels of the figure.
    fn case(&mut self, case: &str, of_case: &[&Row]) -> Result<Vec<Panel>> {
        let (mut w1_series, mut px_series, mut py_series) = (Vec::new(), Vec::new(), Vec::new());
        let mut cost: Cost = BTreeMap::new();
        let mut line = 0;
        let (orders, combos) = (&self.a.orders, self.combos);
        for &k in orders {
            for combo in combos {
                let [w, px, py] = self.setting(case, of_case, k, combo, &mut cost)?;
                let mut label = format!("k = {k}");
                if combos.len() > 1 {
                    label = format!("{label}, {}, T = {}", combo.label(), combo.settings.steps);
                }
                for (series, points) in [
                    (&mut w1_series, w),
                    (&mut px_series, px),
                    (&mut py_series, py),
                ] {
                    series.push(Series {
                        label: label.clone(),
                        points,
                        dashed: false,
                        color: line,
                    });
                }
                line += 1;
            }
        }
        let filt = |f: &dyn Fn(&Row) -> f64| -> f64 {
            let v: Vec<f64> = of_case.iter().map(|r| f(r)).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let floor = median(of_case.iter().map(|r| r.floor).collect());
        let dashed = |label: &str, v: f64| Series {
            label: label.into(),
            points: vec![(0.0, v)],
            dashed: true,
            color: 9,
        };
        w1_series.push(dashed("filter vs filter", floor));
        px_series.push(dashed("filter", filt(&|r| r.log_px_filter)));
        let mut cost_series: Vec<Series> = cost
            .into_iter()
            .map(|(label, (color, mut points))| {
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    label,
                    points,
                    dashed: false,
                    color,
                }
            })
            .collect();
        // On a log axis the reference level needs a positive x.
        cost_series.push(Series {
            points: vec![(1.0, floor)],
            ..dashed("filter vs filter", floor)
        });
        let panel = |title: &str, x: &str, y: &str, series, log_x| Panel {
            title: format!("{case}: {title}"),
            x_label: x.into(),
            y_label: y.into(),
            series,
            log_x,
            log_y: false,
        };
        let c = "corrections C";
        Ok(vec![
            panel("W1 to the filter (median)", c, "W1", w1_series, false),
            panel("log p(x_2:L | x_1)", c, "log p(x)", px_series, false),
            panel("log p(y | x)", c, "log p(y|x)", py_series, false),
            panel(
                "W1 against cost",
                "network passes per sample (forward + backward)",
                "W1 (median)",
                cost_series,
                true,
            ),
        ])
    }

    /// The lines of one order and setting (one per C with rows), its points on the figure's
    /// lines, and its points of W1 against cost.
    fn setting(
        &mut self,
        case: &str,
        of_case: &[&Row],
        k: usize,
        combo: &Combo,
        cost: &mut Cost,
    ) -> Result<Lines> {
        let key = combo.key();
        let (mut w, mut px, mut py) = (Vec::new(), Vec::new(), Vec::new());
        for &c in self.corrections {
            let sel: Vec<&&Row> = of_case
                .iter()
                .filter(|r| r.k == k && r.c == c && r.method == key)
                .collect();
            if sel.is_empty() {
                continue;
            }
            let mw = median(sel.iter().map(|r| r.w1).collect());
            let mf = median(sel.iter().map(|r| r.floor).collect());
            let mean =
                |f: &dyn Fn(&Row) -> f64| sel.iter().map(|r| f(r)).sum::<f64>() / sel.len() as f64;
            let (lpx, lpf, lpy, secs) = (
                mean(&|r| r.log_px),
                mean(&|r| r.log_px_filter),
                mean(&|r| r.log_py),
                mean(&|r| r.seconds),
            );
            let (fwd, bwd) = (sel[0].forward, sel[0].backward);
            writeln!(
                self.table,
                "{case:<4} {k:>2} {c:>3} {key:<36} {mw:>9.2} {mf:>7.2} {lpx:>10.1} {lpf:>9.1} {lpy:>10.2} {fwd:>6} {bwd:>6} {secs:>8.1}"
            )?;
            writeln!(
                self.csv,
                "{case},{k},{c},{key},{mw:.4},{mf:.4},{lpx:.2},{lpf:.2},{lpy:.3},{fwd},{bwd},{secs:.2},{}",
                sel.len()
            )?;
            w.push((c as f64, mw));
            px.push((c as f64, lpx));
            py.push((c as f64, lpy));
            let name = if self.a.orders.len() > 1 {
                format!("k = {k}, {}", combo.label())
            } else {
                combo.label()
            };
            let n = cost.len();
            cost.entry(name)
                .or_insert((n, Vec::new()))
                .1
                .push(((fwd + bwd) as f64, mw));
        }
        Ok([w, px, py])
    }
}

/// trajectories.png: samples of the largest k and C of the last setting against the filter,
/// first trajectory of the first case.
fn samples_figure(
    a: &Args,
    dir: &Path,
    truths: &BTreeMap<(String, usize), Array>,
    precision: &BTreeMap<usize, Precision>,
    combos: &[Combo],
    corrections: &[usize],
) -> Result<()> {
    if let (Some(&k), Some(&c), Some(case), Some(combo)) = (
        a.orders.iter().max(),
        corrections.iter().max(),
        a.cases.first(),
        combos.last(),
    ) {
        let x = read_npy(&dir.join("samples").join(sample_name(
            k,
            case,
            0,
            c,
            precision[&k],
            &combo.key(),
        )))?;
        let f = read_npy(
            &dir.join("obs")
                .join(format!("{case}-0"))
                .join("filter-a.npy"),
        )?;
        let y = read_npy(&dir.join("obs").join(format!("{case}-0")).join("y.npy"))?;
        let (spec, _) = scenario(case)?;
        let obs = sda::plot::Observations {
            times: Operator::parse(spec)?.times(a.length)?,
            channels: vec![Some(0)],
            values: y,
        };
        let labels = ["x", "y", "z"].map(String::from);
        trajectories(
            &dir.join("trajectories.png"),
            &x,
            Some(&f),
            truths.get(&(case.clone(), 0)),
            Some(&obs),
            &labels,
        )?;
    }
    Ok(())
}
