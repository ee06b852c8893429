//! The cases of the benchmark and the tuned settings of each method in them (DAPPER's, and
//! EnSF's arctan experiment).

use super::Case;
use crate::classical::{Ensf, EnsfScore, Method, Settings, Taper};
use crate::error::{Error, Result};

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

/// The case of a name (`--cases`).
pub fn case(name: &str) -> Result<Case> {
    Ok(match name {
        "sakov2008" => sakov2008(),
        "sakov2008-dko4" => sakov2008_dko4(),
        "spantini2019" => spantini2019(),
        "arctan" => arctan(),
        other => {
            return Err(Error::config(
                "--cases",
                format!(
                    "unknown Lorenz-96 case '{other}' (sakov2008, sakov2008-dko4, spantini2019, \
                     arctan)"
                ),
            ));
        }
    })
}

/// DAPPER's sakov2008: every variable observed at every step of 0.05.
fn sakov2008() -> Case {
    use Method::*;
    let every = "stride:1@1".to_string();
    Case {
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
    }
}

/// sakov2008 observed every 4th step.
fn sakov2008_dko4() -> Case {
    use Method::*;
    Case {
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
    }
}

/// DAPPER's spantini2019: every other variable observed every 20 steps of 0.02.
fn spantini2019() -> Case {
    use Method::*;
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

/// EnSF's Lorenz-96 experiment at laptop size (Bao et al. 2024): every variable observed
/// through arctan every 10 RK4 steps of 0.01, noise std 0.05.
fn arctan() -> Case {
    use Method::*;
    Case {
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
    }
}
