//! Exact oracles of moment matching (docs/guidance.md §7, check a), with no training: for a
//! Gaussian prior over whole trajectories and a linear operator, Tweedie's covariance is exact,
//! so MMPS with a converged solve gives the exact posterior noise
//! `ε_post = σ (μ² S_y + σ² I)⁻¹ (x(t) − μ m_y)`.

use burn::prelude::*;
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sda::mcs::DampedSpring;
use sda::score::gaussian::GaussianPrior;
use sda::score::guidance::{Guided, Likelihood, Observation, Solver};
use sda::score::operator::Operator;
use sda::score::sampler::normal;
use sda::score::sde::VpSde;
use sda::score::{Counted, NoiseEstimator, tensor, to_vec};

const L: usize = 8;
const STD: f64 = 0.1;

/// The spring prior over 8 states, its position observed at states 0, 3, 6 (m = 3).
struct Setup {
    m: DVector<f64>,
    s: DMatrix<f64>,
    a: DMatrix<f64>,
    y: DVector<f64>,
}

fn setup() -> Setup {
    let (m, s) = DampedSpring::default().trajectory_prior(L);
    let times = [0usize, 3, 6];
    let mut a = DMatrix::zeros(times.len(), 2 * L);
    for (r, &i) in times.iter().enumerate() {
        a[(r, 2 * i)] = 1.0;
    }
    Setup {
        m,
        s,
        a,
        y: DVector::from_column_slice(&[0.8, -0.5, 0.3]),
    }
}

fn observation(y: &DVector<f64>, device: &Device) -> Observation {
    let k = y.len();
    Observation {
        operator: Operator::parse("stride:3|select:0").unwrap(),
        state_shape: vec![2],
        y: tensor(y.iter().map(|&v| v as f32).collect(), [1, k], device),
        variance: Tensor::full([1, k], (STD * STD) as f32, device),
        scale2: Tensor::ones([1, k], device),
        mean: Tensor::zeros([1, 1, 2], device),
        scale: Tensor::ones([1, 1, 2], device),
    }
}

/// The posterior `N(m_y, S_y)` of `y = A x + N(0, σ_y² I)`.
fn posterior(st: &Setup) -> (DVector<f64>, DMatrix<f64>) {
    let k = st.y.len();
    let innov = &st.a * &st.s * st.a.transpose() + DMatrix::identity(k, k) * STD * STD;
    let g = &st.s * st.a.transpose() * innov.try_inverse().unwrap();
    let my = &st.m + &g * (&st.y - &st.a * &st.m);
    let sy = &st.s - &g * &st.a * &st.s;
    (my, sy)
}

/// Exact noise of `N(m, S)` at `x(t)`: `σ (μ² S + σ² I)⁻¹ (x − μ m)`.
fn exact_eps(
    m: &DVector<f64>,
    s: &DMatrix<f64>,
    x: &DVector<f64>,
    mu: f64,
    sigma: f64,
) -> DVector<f64> {
    let n = m.len();
    let k = s * (mu * mu) + DMatrix::identity(n, n) * (sigma * sigma);
    k.try_inverse().unwrap() * (x - m * mu) * sigma
}

/// Largest |a − b| over the largest |b|.
fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (a, b)| m.max((*a as f64 - b).abs()))
        / scale
}

#[test]
fn mmps_with_a_converged_solve_gives_the_exact_posterior_noise() {
    let device = Device::flex();
    let st = setup();
    let sde = VpSde::default();
    let prior = GaussianPrior {
        mean: st.m.clone(),
        cov: st.s.clone(),
        sde,
    };
    let obs = observation(&st.y, &device);
    let (my, sy) = posterior(&st);
    let b = 4;
    let mut rng = StdRng::seed_from_u64(3);
    println!("MMPS posterior ε, K = m = 3, relative max error against the closed form:");
    for solver in [Solver::Cg, Solver::Gmres] {
        for t in [0.05, 0.3, 0.7, 0.95] {
            let (mu, sigma) = (sde.mu(t), sde.sigma(t));
            let x = normal([b, L, 2], &mut rng, &device);
            let counted = Counted::new(&prior);
            let guided = Guided {
                prior: &counted,
                sde,
                obs: &obs,
                likelihood: Likelihood::Mmps {
                    solver,
                    iterations: 3,
                },
            };
            let eps = to_vec(guided.eps(x.clone(), t));
            let xv = to_vec(x);
            let want: Vec<f64> = xv
                .chunks(2 * L)
                .flat_map(|xs| {
                    let xs = DVector::from_iterator(2 * L, xs.iter().map(|&v| v as f64));
                    exact_eps(&my, &sy, &xs, mu, sigma)
                        .iter()
                        .copied()
                        .collect::<Vec<_>>()
                })
                .collect();
            let err = rel_err(&eps, &want);
            println!(
                "  {solver:?} t = {t}: {err:.2e} ({})",
                counted.evaluations()
            );
            assert_eq!(counted.evaluations().backward, 3);
            assert!(err < 5e-4, "{solver:?} t = {t}: relative error {err:.2e}");
        }
    }
}

#[test]
fn one_iteration_is_the_scalar_formula_and_the_score_needs_no_extra_product() {
    // K = 1: u = c r with c = r·r / r·Mr (CG) or r·Mr / Mr·Mr (GMRES); the score is then the
    // direct formula g = (1/μ)(I − σJ)ᵀ Aᵀ u with J = σ K_t⁻¹ (docs/guidance.md §5).
    let device = Device::flex();
    let st = setup();
    let sde = VpSde::default();
    let prior = GaussianPrior {
        mean: st.m.clone(),
        cov: st.s.clone(),
        sde,
    };
    let obs = observation(&st.y, &device);
    let n = 2 * L;
    let mut rng = StdRng::seed_from_u64(4);
    println!("MMPS K = 1 against the scalar formula, relative max error of ε_post:");
    for solver in [Solver::Cg, Solver::Gmres] {
        for t in [0.1, 0.5, 0.9] {
            let (mu, sigma) = (sde.mu(t), sde.sigma(t));
            let rho2 = (sigma / mu).powi(2);
            let kt = &st.s * (mu * mu) + DMatrix::identity(n, n) * (sigma * sigma);
            let j = kt.try_inverse().unwrap() * sigma;
            let ct = (DMatrix::identity(n, n) - &j * sigma) * rho2;
            let mm = &st.a * &ct * st.a.transpose() + DMatrix::identity(3, 3) * STD * STD;
            let x = normal([2, L, 2], &mut rng, &device);
            let guided = Guided {
                prior: &prior,
                sde,
                obs: &obs,
                likelihood: Likelihood::Mmps {
                    solver,
                    iterations: 1,
                },
            };
            let eps = to_vec(guided.eps(x.clone(), t));
            let want: Vec<f64> = to_vec(x)
                .chunks(n)
                .flat_map(|xs| {
                    let xs = DVector::from_iterator(n, xs.iter().map(|&v| v as f64));
                    let e = &j * (&xs - &st.m * mu);
                    let xhat = (&xs - &e * sigma) / mu;
                    let r = &st.y - &st.a * xhat;
                    let mr = &mm * &r;
                    let c = match solver {
                        Solver::Cg => r.dot(&r) / r.dot(&mr),
                        Solver::Gmres => r.dot(&mr) / mr.dot(&mr),
                    };
                    let w = st.a.transpose() * (r * c);
                    let g = (&w - j.transpose() * &w * sigma) / mu;
                    (e - g * sigma).iter().copied().collect::<Vec<_>>()
                })
                .collect();
            let err = rel_err(&eps, &want);
            println!("  {solver:?} t = {t}: {err:.2e}");
            assert!(err < 5e-4, "{solver:?} t = {t}: relative error {err:.2e}");
        }
    }
}

#[test]
fn fused_and_burn_networks_give_the_same_mmps_score_the_fused_one_in_one_forward_pass() {
    use sda::score::net::{
        Architecture, Backbone, Composition, CpuWindowScore, ScoreNetConfig, WindowScore,
    };
    let device = Device::flex();
    let cfg = ScoreNetConfig {
        architecture: Architecture::Local,
        window: 5,
        features: 3,
        backbone: Backbone::Mlp {
            width: 32,
            depth: 2,
        },
        embedding: 8,
    };
    let net = cfg.init_seeded(&device, 7);
    let burn_score = WindowScore {
        composition: Composition::Mean,
        ..WindowScore::new(&net, &cfg)
    };
    let mut cpu_score = CpuWindowScore::new(&net, &cfg);
    cpu_score.composition = Composition::Mean;
    let l: usize = 12;
    let k = l.div_ceil(2);
    // Both value-by-value non-linear terms, through autodiff (burn) and the tangent (fused).
    for spec in ["stride:2|select:0,2|saturate", "stride:2|select:0,2|arctan"] {
        let obs = Observation {
            operator: Operator::parse(spec).unwrap(),
            state_shape: vec![3],
            y: tensor(
                (0..2 * k).map(|i| (i as f32 * 0.7).sin() * 0.5).collect(),
                [1, 2 * k],
                &device,
            ),
            variance: Tensor::full([1, 2 * k], 0.01, &device),
            scale2: Tensor::ones([1, 2 * k], &device),
            mean: tensor(vec![0.1, -0.2, 0.3], [1, 1, 3], &device),
            scale: tensor(vec![1.5, 0.8, 2.0], [1, 1, 3], &device),
        };
        let sde = VpSde::default();
        let mut rng = StdRng::seed_from_u64(5);
        let x = normal([3, l, 3], &mut rng, &device);
        for solver in [Solver::Cg, Solver::Gmres] {
            let likelihood = Likelihood::Mmps {
                solver,
                iterations: 3,
            };
            let run = |prior: &dyn NoiseEstimator| {
                let counted = Counted::new(prior);
                let guided = Guided {
                    prior: &counted,
                    sde,
                    obs: &obs,
                    likelihood,
                };
                let (eps, g) = guided.eps_and_grad(x.clone(), 0.4);
                (to_vec(eps), to_vec(g), counted.evaluations())
            };
            let (e1, g1, n1) = run(&burn_score);
            let (e2, g2, n2) = run(&cpu_score);
            let g1: Vec<f64> = g1.iter().map(|&v| v as f64).collect();
            let e1: Vec<f64> = e1.iter().map(|&v| v as f64).collect();
            let (de, dg) = (rel_err(&e2, &e1), rel_err(&g2, &g1));
            println!(
                "{spec} {solver:?}: burn {n1}, fused {n2}; ε differs by {de:.1e}, g by {dg:.1e}"
            );
            assert!(
                de < 1e-4 && dg < 1e-3,
                "{spec} {solver:?}: {de:.1e} {dg:.1e}"
            );
            assert!(g1.iter().any(|v| v.abs() > 1e-3), "the likelihood acts");
            assert_eq!((n1.forward, n1.backward), (3, 3));
            assert_eq!((n2.forward, n2.backward), (1, 3));
        }
    }
}

/// `KL(N(m1, S1) ‖ N(m2, S2))`.
fn gaussian_kl(m1: &DVector<f64>, s1: &DMatrix<f64>, m2: &DVector<f64>, s2: &DMatrix<f64>) -> f64 {
    let n = m1.len() as f64;
    let inv = s2.clone().try_inverse().unwrap();
    let d = m2 - m1;
    let logdet = |s: &DMatrix<f64>| {
        2.0 * s
            .clone()
            .cholesky()
            .unwrap()
            .l()
            .diagonal()
            .map(f64::ln)
            .sum()
    };
    0.5 * ((&inv * s1).trace() + (d.transpose() * &inv * &d)[0] - n + logdet(s2) - logdet(s1))
}

#[test]
fn deterministic_samplers_propagate_the_exact_gaussian_with_small_discretisation_error() {
    // With the exact prior score, a linear operator and MMPS with K = m, every step of the
    // deterministic samplers is affine: x(0) = P x(1) + q. Running the sampler from x(1) = 0 and
    // from the unit vectors gives q and P, so the output law N(q, P Pᵀ) is known exactly and
    // compares with the posterior N(m_y, S_y + σ(0)² I): KL and mean variance error isolate
    // the discretisation error (docs/guidance.md §7, check b).
    use sda::score::sampler::{Grid, Method, Sampler};
    let device = Device::flex();
    let st = setup();
    let sde = VpSde::default();
    let prior = GaussianPrior {
        mean: st.m.clone(),
        cov: st.s.clone(),
        sde,
    };
    let obs = observation(&st.y, &device);
    let guided = Guided {
        prior: &prior,
        sde,
        obs: &obs,
        likelihood: Likelihood::Mmps {
            solver: Solver::Cg,
            iterations: 3,
        },
    };
    let n = 2 * L;
    let (my, sy) = posterior(&st);
    let target = &sy + DMatrix::identity(n, n) * sde.sigma(0.0).powi(2);
    let mut starts = vec![0.0f32; (n + 1) * n];
    for i in 0..n {
        starts[(i + 1) * n + i] = 1.0;
    }
    println!(
        "KL(sampler ‖ posterior) and mean relative variance error at 16 / 32 / 64 / 256 steps:"
    );
    let mut kl_at = std::collections::BTreeMap::new();
    for (method, grid) in [
        (Method::Ddim, Grid::T),
        (Method::Ddim, Grid::Logsnr),
        (Method::Heun, Grid::T),
        (Method::Heun, Grid::Logsnr),
        (Method::Eab2, Grid::T),
        (Method::Eab2, Grid::Logsnr),
    ] {
        let mut line = format!("  {method:?} {grid:?}:");
        for steps in [16, 32, 64, 256] {
            let sampler = Sampler {
                sde,
                method,
                grid,
                steps,
                corrections: 0,
                ..Sampler::default()
            };
            let x1 = tensor(starts.clone(), [n + 1, L, 2], &device);
            let mut rng = StdRng::seed_from_u64(0);
            let out = to_vec(sampler.sample_from(&guided, x1, &mut rng, |_| {}));
            let q = DVector::from_iterator(n, out[..n].iter().map(|&v| v as f64));
            let p = DMatrix::from_fn(n, n, |r, c| out[(c + 1) * n + r] as f64 - q[r]);
            let cov = &p * p.transpose();
            let kl = gaussian_kl(&q, &cov, &my, &target);
            let var_err = (0..n)
                .map(|i| cov[(i, i)] / target[(i, i)] - 1.0)
                .sum::<f64>()
                / n as f64;
            line += &format!(" {kl:.2e} ({:+.1} %)", 100.0 * var_err);
            kl_at.insert((format!("{method:?}"), grid == Grid::Logsnr, steps), kl);
        }
        println!("{line}");
    }
    for m in ["Ddim", "Heun", "Eab2"] {
        for g in [false, true] {
            let kl = |s| kl_at[&(m.to_string(), g, s)];
            assert!(kl(256) < kl(16), "{m} converges");
            assert!(kl(256) < 0.05, "{m}: {}", kl(256));
        }
    }
    // Second order pays: at 64 steps on the log-SNR grid, Heun and EAB2 beat DDIM.
    assert!(kl_at[&("Eab2".into(), true, 64)] < kl_at[&("Ddim".into(), true, 64)]);
    assert!(kl_at[&("Heun".into(), true, 64)] < kl_at[&("Ddim".into(), true, 64)]);
}

/// Monte-Carlo moments of samples `[N, n]` against the smoother's marginals: the largest
/// |z| of the means, and the mean and largest relative variance errors.
fn compare(x: &[f32], n: usize, mean: &[f64], var: &[f64]) -> (f64, f64, f64) {
    let count = x.len() / n;
    let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
    for s in x.chunks(n) {
        for j in 0..n {
            m[j] += s[j] as f64 / count as f64;
        }
    }
    for s in x.chunks(n) {
        for j in 0..n {
            v[j] += (s[j] as f64 - m[j]).powi(2) / (count - 1) as f64;
        }
    }
    let z = (0..n)
        .map(|j| ((m[j] - mean[j]) / (var[j] / count as f64).sqrt()).abs())
        .fold(0.0, f64::max);
    let errs: Vec<f64> = (0..n).map(|j| v[j] / var[j] - 1.0).collect();
    let mean_err = errs.iter().sum::<f64>() / n as f64;
    let max_err = errs.iter().map(|e| e.abs()).fold(0.0, f64::max);
    (z, mean_err, max_err)
}

use sda::score::gaussian::LocalGaussianPrior;
use sda::score::sampler::{Corrector, Grid, Method, Sampler};

/// The spring over 16 states, its position observed at states 0, 5, 10, 15 (σ_y = 0.1), with
/// the Kalman/RTS smoother's exact posterior means and variances (docs/guidance.md §7, check c).
/// Monte Carlo against it with 4096 samples: standard errors √(v/N) for means, √(2/N) = 2.2 %
/// for variances.
struct Spring16 {
    device: Device,
    spring: DampedSpring,
    sde: VpSde,
    obs: Observation,
    full: GaussianPrior,
    mean: Vec<f64>,
    var: Vec<f64>,
}

const L16: usize = 16;
const N_SAMPLES: usize = 4096;

impl Spring16 {
    fn new() -> Self {
        use sda::kalman::{LinearGaussian, LinearObservation};
        let device = Device::flex();
        let spring = DampedSpring::default();
        let (m, s) = spring.trajectory_prior(L16);
        let sde = VpSde::default();
        let times = [0usize, 5, 10, 15];
        let y = [0.8f32, -0.5, 0.1, 0.6];
        let k_obs = y.len();
        let obs = Observation {
            operator: Operator::parse("stride:5|select:0").unwrap(),
            state_shape: vec![2],
            y: tensor(y.to_vec(), [1, k_obs], &device),
            variance: Tensor::full([1, k_obs], (STD * STD) as f32, &device),
            scale2: Tensor::ones([1, k_obs], &device),
            mean: Tensor::zeros([1, 1, 2], &device),
            scale: Tensor::ones([1, 1, 2], &device),
        };
        let lg = LinearGaussian {
            m0: DVector::zeros(2),
            p0: spring.stationary_covariance(),
            f: spring.f_matrix(),
            q: spring.q_matrix(),
        };
        let lobs: Vec<_> = times
            .iter()
            .zip(y)
            .map(|(&time, v)| LinearObservation {
                time,
                h: DMatrix::from_row_slice(1, 2, &[1.0, 0.0]),
                y: DVector::from_element(1, v as f64),
                r: DMatrix::from_element(1, 1, STD * STD),
            })
            .collect();
        let exact = lg.smooth(L16, &lobs);
        let mean: Vec<f64> = exact
            .mean
            .iter()
            .flat_map(|v| v.iter().copied().collect::<Vec<_>>())
            .collect();
        // Samples carry σ(0) = 1e-3 of noise: negligible beside the posterior variances.
        let var: Vec<f64> = exact
            .cov
            .iter()
            .flat_map(|c| [c[(0, 0)], c[(1, 1)]])
            .collect();
        let full = GaussianPrior {
            mean: m,
            cov: s,
            sde,
        };
        Spring16 {
            device,
            spring,
            sde,
            obs,
            full,
            mean,
            var,
        }
    }

    /// The exact Gaussian score of windows of `states` states, composed (mean composition).
    fn local(&self, states: usize) -> LocalGaussianPrior {
        let (wm, ws) = self.spring.trajectory_prior(states);
        LocalGaussianPrior {
            window: GaussianPrior {
                mean: wm,
                cov: ws,
                sde: self.sde,
            },
            states,
            composition: sda::score::net::Composition::Mean,
        }
    }

    /// MMPS (CG, K = m = 4) posterior samples: max |z| of the means, mean and max relative
    /// variance error against the smoother.
    fn run(&self, prior: &dyn NoiseEstimator, sampler: Sampler, seed: u64) -> (f64, f64, f64) {
        let guided = Guided {
            prior,
            sde: self.sde,
            obs: &self.obs,
            likelihood: Likelihood::Mmps {
                solver: Solver::Cg,
                iterations: 4,
            },
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let x = sampler.sample(&guided, [N_SAMPLES, L16, 2], &mut rng, &self.device, |_| {});
        compare(&to_vec(x), 2 * L16, &self.mean, &self.var)
    }

    fn eab2(&self) -> Sampler {
        Sampler {
            sde: self.sde,
            method: Method::Eab2,
            grid: Grid::Logsnr,
            steps: 64,
            corrections: 0,
            ..Sampler::default()
        }
    }
}

#[test]
fn monte_carlo_with_the_exact_full_score_matches_the_rts_smoother() {
    let sp = Spring16::new();
    // A window as long as the trajectory is the full score itself.
    let xt = normal([3, L16, 2], &mut StdRng::seed_from_u64(9), &sp.device);
    let (a, b) = (
        to_vec(sp.local(L16).eps(xt.clone(), 0.5)),
        to_vec(sp.full.eps(xt, 0.5)),
    );
    assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-5));
    let (z, ve, vmax) = sp.run(&sp.full, sp.eab2(), 1);
    println!(
        "full-trajectory exact score, eab2 log-SNR 64 steps (N = {N_SAMPLES}): max |z| {z:.2}, variance error {:+.1} % mean, {:.1} % max",
        100.0 * ve,
        100.0 * vmax
    );
    assert!(z < 5.0, "mean off by {z:.1} standard errors");
    // 5 standard errors (11 %) and the sampler's 64-step discretisation error (1–4 %).
    assert!(vmax < 0.15, "variance off by {:.1} %", 100.0 * vmax);
}

#[test]
fn composition_error_against_the_rts_smoother_shrinks_with_the_order_k() {
    // Composition is not exact (the law of x(t) is not Markov): measured, per order k.
    let sp = Spring16::new();
    let mut errors = Vec::new();
    for k in [2, 4] {
        let (zl, vel, vmaxl) = sp.run(&sp.local(2 * k + 1), sp.eab2(), 1);
        println!(
            "composed local score, k = {k} (mean composition), eab2: max |z| {zl:.2}, variance error {:+.1} % mean, {:.1} % max",
            100.0 * vel,
            100.0 * vmaxl
        );
        assert!(zl.is_finite() && vmaxl.is_finite());
        errors.push(vel.abs());
    }
    // A longer window composes closer to the truth.
    assert!(
        errors[1] < errors[0],
        "composition error against k: {errors:?}"
    );
    // The same without observations, against the prior: composition alone, no likelihood.
    let prior_var: Vec<f64> = (0..2 * L16).map(|j| sp.full.cov[(j, j)]).collect();
    let mut rng = StdRng::seed_from_u64(4);
    let x = sp.eab2().sample(
        &sp.local(5),
        [N_SAMPLES, L16, 2],
        &mut rng,
        &sp.device,
        |_| {},
    );
    let (zp, vep, vmaxp) = compare(&to_vec(x), 2 * L16, &vec![0.0; 2 * L16], &prior_var);
    println!(
        "composed local score, k = 2, no observation, against the prior: {zp:.2}, {:+.1} %, {:.1} %",
        100.0 * vep,
        100.0 * vmaxp
    );
    assert!(zp.is_finite() && vmaxp.is_finite());
}

#[test]
fn the_papers_corrector_inflates_the_posterior_variance_and_a_fixed_step_does_not() {
    // The paper's corrector (τ = 0.25) inflates the variance; Appa's fixed δ = 0.1 does not.
    let sp = Spring16::new();
    let pc = |corrector, corrections, grid| Sampler {
        sde: sp.sde,
        method: Method::Pc,
        grid,
        steps: 64,
        corrections,
        corrector,
        tau: 0.25,
        delta: 0.1,
        ..Sampler::default()
    };
    let (zs, ves, _) = sp.run(&sp.full, pc(Corrector::Sda, 1, Grid::T), 2);
    let (zf, vef, _) = sp.run(&sp.full, pc(Corrector::Fixed, 2, Grid::Logsnr), 3);
    println!(
        "PC, C = 1, sda corrector τ = 0.25, uniform t, 64 steps: {zs:.2}, {:+.1} %",
        100.0 * ves
    );
    println!(
        "PC, C = 2, fixed δ = 0.1, log-SNR, 64 steps: {zf:.2}, {:+.1} %",
        100.0 * vef
    );
    assert!(
        ves > vef + 0.02,
        "the τ corrector's inflation: {ves} vs {vef}"
    );
    assert!(vef.abs() < 0.1, "fixed corrector: {vef}");
}
