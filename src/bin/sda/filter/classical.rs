//! `sda filter --method NAME` for a classical method (DAPPER's conventions, docs/classical.md).

use anyhow::{Context, Result, bail};
use sda::data::shape_text;
use sda::io::{read_npy, write_npy};

use super::{Args, observations, system};
use crate::common::{bar, process_cpu};

/// `sda filter --method NAME` for a classical method.
pub fn run_classical(a: Args, method: sda::classical::Method) -> Result<()> {
    use sda::classical::{Climatology, Problem, Settings, dynamics, run};
    let name = sda::flag_value(&method);
    let (system, shape) = system(&a.system)?;
    let model = dynamics(&system).with_context(|| format!("--method {name}"))?;
    let observed = observations(&a, &shape)?;
    if observed.operator.table().is_some() {
        bail!(
            "--observations {}: classical methods take observations as .npy with --operator and \
             --noise, not as a table",
            a.observations.display()
        );
    }
    let (operator, y, std) = (observed.operator, observed.y, observed.noise);
    let initial = match &a.initial {
        Some(p) => {
            let x = read_npy(p).with_context(|| format!("--initial {}", p.display()))?;
            x.check_finite(&format!("--initial {}", p.display()))?;
            Some(x.data.iter().map(|&v| v as f64).collect())
        }
        None => None,
    };
    let climatology = match &a.climatology {
        Some(p) => {
            let x = read_npy(p).with_context(|| format!("--climatology {}", p.display()))?;
            x.check_finite(&format!("--climatology {}", p.display()))?;
            if x.shape.last() != shape.last() {
                bail!(
                    "--climatology {}: states of shape {:?}, the system's ({})",
                    p.display(),
                    &x.shape[x.shape.len().saturating_sub(1)..],
                    shape_text(&shape)
                );
            }
            Some(Climatology::from_states(&x)?)
        }
        None => None,
    };
    let problem = Problem::new(
        model,
        &operator,
        &y,
        &std,
        a.length,
        initial,
        a.initial_std,
        climatology,
    )?;
    let settings = Settings {
        members: a.members,
        inflation: a.inflation,
        rotate: a.rotate,
        finite_size: a.finite_size,
        radius: a.radius.unwrap_or(f64::INFINITY),
        taper: a.taper,
        block: a.block,
        lag: a.lag,
        iterations: a.iterations,
        background_scale: a.background_scale,
        seed: a.seed,
        ensf: sda::classical::Ensf {
            steps: a.ensf_steps,
            eps_alpha: a.ensf_eps_alpha,
            eps_beta: a.ensf_eps_beta,
            score: a.ensf_score,
            clip: a.ensf_clip,
            damping: a.ensf_damping,
        },
    };
    let pb = bar(a.length as u64, &name);
    let t0 = std::time::Instant::now();
    let cpu0 = process_cpu();
    let out = run(method, &settings, &problem, &|done| {
        pb.set_position(done as u64)
    })
    .with_context(|| format!("--method {name}"))?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu0;
    pb.finish_and_clear();
    write_npy(&a.output, &out.to_array())
        .with_context(|| format!("--output {}", a.output.display()))?;
    println!(
        "{name}: {} member(s) × {} states, {} observed, in {secs:.2} s ({:.4} ms of CPU time per \
         observed state) → {}",
        out.members,
        a.length,
        problem.times.len(),
        1e3 * cpu.max(0.0) / problem.times.len() as f64,
        a.output.display()
    );
    Ok(())
}
