//! Settings that are refused, and filters that diverge, each with the message that names why.

use super::*;

#[test]
fn bad_settings_are_refused() {
    let lin = Linear::new(0.1, "stride:2@1|select:0", 24);
    let p = lin.problem();
    let err = |m, s: Settings| run(m, &s, &p, &|_| {}).unwrap_err().to_string();
    assert!(err(Method::Etkf, settings(1)).contains("--members"));
    let e = err(
        Method::Etkf,
        Settings {
            inflation: 0.9,
            ..settings(10)
        },
    );
    assert!(e.contains("--inflation"), "{e}");
    let e = err(
        Method::Letkf,
        Settings {
            radius: 0.0,
            ..settings(10)
        },
    );
    assert!(e.contains("--radius"), "{e}");
    let e = err(
        Method::Enks,
        Settings {
            lag: 13,
            ..settings(10)
        },
    );
    assert!(e.contains("--lag"), "{e}");
    let e = err(Method::Ienks, settings(10));
    assert!(e.contains("deterministic"), "{e}");
    let e = err(Method::Oi, settings(10));
    assert!(e.contains("--climatology"), "{e}");
    assert!(err(Method::Ensf, settings(1)).contains("--members"));
    let ensf = |ensf: Ensf| Settings {
        ensf,
        ..settings(10)
    };
    for (bad, flag) in [
        (
            Ensf {
                steps: 0,
                ..Ensf::default()
            },
            "--ensf-steps",
        ),
        (
            Ensf {
                eps_alpha: 0.0,
                ..Ensf::default()
            },
            "--ensf-eps-alpha",
        ),
        (
            Ensf {
                eps_beta: 1.0,
                ..Ensf::default()
            },
            "--ensf-eps-beta",
        ),
        (
            Ensf {
                clip: 0.0,
                ..Ensf::default()
            },
            "--ensf-clip",
        ),
        (
            Ensf {
                score: EnsfScore::Mixture(Some(11)),
                ..Ensf::default()
            },
            "--ensf-score",
        ),
    ] {
        let e = err(Method::Ensf, ensf(bad));
        assert!(e.contains(flag), "{flag}: {e}");
    }
    assert!("mixture:0".parse::<EnsfScore>().is_err());
    assert!("kde".parse::<EnsfScore>().is_err());
    assert_eq!(
        "mixture:5".parse::<EnsfScore>().unwrap(),
        EnsfScore::Mixture(Some(5))
    );
}

#[test]
fn a_diverging_filter_names_the_state() {
    // Lorenz-96 with a huge time step blows up under RK4.
    let model = Lorenz96 {
        n: 40,
        forcing: 8.0,
        dt: 2.0,
        noise: 0.0,
    };
    let (op, y, noise) = l96_problem(
        &Lorenz96 {
            dt: 0.05,
            ..model.clone()
        },
        30,
    );
    let p = Problem::new(&model, &op, &y, &noise, 30, None, 3.0, None).unwrap();
    // (EnSF's score clip bounds every analysis, so that a blown-up forecast comes back finite:
    // without it the NaN reaches the check.)
    let unclipped = Settings {
        ensf: Ensf {
            clip: f64::INFINITY,
            ..Ensf::default()
        },
        ..settings(10)
    };
    for (method, s) in [(Method::Etkf, settings(10)), (Method::Ensf, unclipped)] {
        let e = run(method, &s, &p, &|_| {}).unwrap_err().to_string();
        assert!(e.contains("diverged") && e.contains("state"), "{e}");
    }
}
