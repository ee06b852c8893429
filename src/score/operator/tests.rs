//! Tests of the operator language: parsing, shapes, values, gradients and tables.

use burn::prelude::*;

use super::*;

#[test]
fn stride_and_select_give_the_documented_shapes() {
    let op = Operator::parse("stride:8|select:0").unwrap();
    // 65 states: 0, 8, …, 64 → 9 observed states of 1 component.
    assert_eq!(op.output_shape(65, &[3]).unwrap(), vec![9, 1]);
    let op = Operator::parse("stride:4@2|select:0,2").unwrap();
    assert_eq!(op.times(11).unwrap(), vec![2, 6, 10]);
    assert_eq!(op.output_shape(11, &[3]).unwrap(), vec![3, 2]);
    assert_eq!(Operator::parse("last").unwrap().times(5).unwrap(), vec![4]);
}

#[test]
fn bad_specs_are_named() {
    for (spec, needle) in [
        ("stride:0", "at least 1"),
        ("foo:1", "unknown term 'foo'"),
        ("select:x", "'x' is not"),
        ("stride", "needs an argument"),
    ] {
        let e = Operator::parse(spec).unwrap_err().to_string();
        assert!(e.contains(needle), "{spec}: {e}");
    }
    let e = Operator::parse("select:3")
        .unwrap()
        .state_shape(&[3])
        .unwrap_err();
    assert!(e.to_string().contains("component 3"));
}

#[test]
fn apply_picks_the_right_values() {
    let device = Device::flex();
    // x[b, i, j] = 100 b + 10 i + j.
    let data: Vec<f32> = (0..2 * 5 * 3)
        .map(|n| (100 * (n / 15) + 10 * ((n / 3) % 5) + n % 3) as f32)
        .collect();
    let x = crate::score::tensor(data, [2, 5, 3], &device);
    let y = Operator::parse("stride:2@1|select:2,0")
        .unwrap()
        .apply(x, &[3])
        .unwrap();
    assert_eq!(y.dims(), [2, 2, 2]);
    let y = crate::score::to_vec(y);
    assert_eq!(y, vec![12., 10., 32., 30., 112., 110., 132., 130.]);
}

/// A deterministic, non-trivial `(n, c, h, w)` batch of fields, flattened per state.
fn fields(n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    (0..n * c * h * w)
        .map(|k| ((k as f32 * 0.37).sin() + 0.3 * (k as f32 * 1.3).cos()) * 1.7)
        .collect()
}

fn apply_flat(op: &Operator, x: &[f32], n: usize, shape: &[usize]) -> Vec<f32> {
    let f: usize = shape.iter().product();
    let device = Device::flex();
    to_vec(op.apply_states(crate::score::tensor(x.to_vec(), [n, f], &device), shape))
}

use crate::score::to_vec;

#[test]
fn field_terms_give_the_documented_shapes() {
    let s = [2, 16, 16];
    let shape = |spec: &str| Operator::parse(spec).unwrap().state_shape(&s).unwrap();
    assert_eq!(shape("coarsen:4"), vec![2, 4, 4]);
    assert_eq!(shape("coarsen:4|crop:1:3:0:2"), vec![2, 2, 2]);
    assert_eq!(shape("space-stride:4"), vec![2, 4, 4]);
    assert_eq!(shape("space-stride:4@1"), vec![2, 4, 4]);
    assert_eq!(shape("space-stride:5@2"), vec![2, 3, 3]);
    assert_eq!(shape("vorticity|saturate"), vec![1, 16, 16]);
    assert_eq!(shape("coarsen:2|arctan"), vec![2, 8, 8]);
    // On vector states: every other state from the second, every value through atan.
    let op = Operator::parse("stride:2@2|arctan").unwrap();
    assert_eq!(op.times(9).unwrap(), vec![2, 4, 6, 8]);
    assert_eq!(op.output_shape(9, &[40]).unwrap(), vec![4, 40]);
    assert_eq!(
        Operator::parse("select:1,3|arctan")
            .unwrap()
            .state_shape(&[40])
            .unwrap(),
        vec![2]
    );
    assert!(!Term::Arctan.is_linear());
    // The paper's scenario 3 on 64²: coarsen 4 → 16², vorticity, central 12 × 12.
    let op = Operator::parse("stride:3|coarsen:4|vorticity|saturate|crop:2:14:2:14").unwrap();
    assert_eq!(
        op.output_shape(10, &[2, 64, 64]).unwrap(),
        vec![4, 1, 12, 12]
    );
}

#[test]
fn field_terms_reject_what_does_not_fit() {
    let s = [2, 16, 16];
    for (spec, shape, needle) in [
        ("coarsen:3", &s[..], "does not divide"),
        ("crop:0:17:0:4", &s[..], "outside the 16 × 16 grid"),
        ("space-stride:2@16", &s[..], "outside"),
        ("select:0|vorticity", &s[..], "2 channels"),
        ("coarsen:2", &[3][..], "needs field states"),
        ("vorticity", &[3][..], "needs field states"),
    ] {
        let e = Operator::parse(spec)
            .unwrap()
            .state_shape(shape)
            .unwrap_err();
        assert!(e.to_string().contains(needle), "{spec}: {e}");
    }
    for (spec, needle) in [
        ("coarsen:0", "at least 1"),
        ("crop:0:4:0", "four numbers"),
        ("crop:4:2:0:1", "I0 < I1"),
        ("vorticity:2", "takes no argument"),
        ("arctan:2", "takes no argument"),
        ("mask:/nonexistent/mask.npy", "/nonexistent/mask.npy"),
    ] {
        let e = Operator::parse(spec).unwrap_err().to_string();
        assert!(e.contains(needle), "{spec}: {e}");
    }
}

#[test]
fn field_terms_compute_the_right_values() {
    let (c, h, w) = (2, 4, 6);
    let x = fields(1, c, h, w);
    let at = |ch: usize, i: usize, j: usize| x[(ch * h + (i % h)) * w + (j % w)];
    // Coarsen 2: block means.
    let y = apply_flat(&"coarsen:2".parse().unwrap(), &x, 1, &[c, h, w]);
    let want = (at(1, 2, 4) + at(1, 2, 5) + at(1, 3, 4) + at(1, 3, 5)) / 4.0;
    assert!((y[(2 + 1) * 3 + 2] - want).abs() < 1e-6); // channel 1, block (1, 2)
    // Crop and space-stride pick grid points.
    let y = apply_flat(&"crop:1:3:2:5".parse().unwrap(), &x, 1, &[c, h, w]);
    assert_eq!(y[0], at(0, 1, 2));
    assert_eq!(y[2 * 3 + 3 + 2], at(1, 2, 4));
    let y = apply_flat(&"space-stride:3@1".parse().unwrap(), &x, 1, &[c, h, w]);
    assert_eq!(y, vec![at(0, 1, 1), at(0, 1, 4), at(1, 1, 1), at(1, 1, 4)]);
    // Vorticity with periodic centred differences, the sign convention of docs/method.md §8.
    let y = apply_flat(&"vorticity".parse().unwrap(), &x, 1, &[c, h, w]);
    for (i, j) in [(0, 0), (1, 3), (3, 5), (2, 1)] {
        let want = (at(0, i, j + 1) - at(0, i, j + w - 1)) / 2.0
            - (at(1, i + 1, j) - at(1, i + h - 1, j)) / 2.0;
        assert!((y[i * w + j] - want).abs() < 1e-5, "({i}, {j})");
    }
    let y = apply_flat(&"saturate".parse().unwrap(), &x, 1, &[c, h, w]);
    assert!((y[7] - x[7] / (1.0 + x[7].abs())).abs() < 1e-6);
    // arctan after a selection: the arctangent of channel 1's values.
    let y = apply_flat(&"select:1|arctan".parse().unwrap(), &x, 1, &[c, h, w]);
    assert_eq!(y.len(), h * w);
    for k in [0, 7, 23] {
        assert!((y[k] - x[h * w + k].atan()).abs() < 1e-6, "{k}");
    }
}

#[test]
fn masks_pick_their_points_and_check_their_shape() {
    let dir = std::env::temp_dir().join(format!("sda-mask-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mask.npy");
    let mut m = vec![0.0f32; 4 * 6];
    m[6 + 2] = 1.0; // row 1, column 2
    m[3 * 6 + 5] = 1.0;
    crate::io::write_npy(&path, &crate::io::Array::new(vec![4, 6], m)).unwrap();
    let spec = format!("mask:{}", path.display());
    let op = Operator::parse(&spec).unwrap();
    assert_eq!(op.state_shape(&[2, 4, 6]).unwrap(), vec![2, 2]);
    let x = fields(1, 2, 4, 6);
    let y = apply_flat(&op, &x, 1, &[2, 4, 6]);
    assert_eq!(y, vec![x[8], x[23], x[24 + 8], x[24 + 23]]);
    let e = op.state_shape(&[2, 8, 8]).unwrap_err().to_string();
    assert!(e.contains("4 × 6") && e.contains("8 × 8"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn field_operators_match_finite_differences() {
    // ∇ of ½‖A(x)‖² · r for a fixed random direction r, by autodiff and central differences.
    let device = Device::flex().autodiff();
    let (c, h, w) = (2, 8, 8);
    let shape = [c, h, w];
    let f = c * h * w;
    for spec in [
        "coarsen:2",
        "crop:1:5:2:7",
        "space-stride:3@1",
        "vorticity",
        "vorticity|saturate",
        "coarsen:2|vorticity|saturate|crop:1:3:0:4",
        "arctan",
        "vorticity|arctan",
        "coarsen:2|arctan|crop:1:3:0:4",
    ] {
        let op: Operator = spec.parse().unwrap();
        let x0 = fields(1, c, h, w);
        let m: usize = op.state_shape(&shape).unwrap().iter().product();
        let r: Vec<f32> = (0..m).map(|k| ((k * 7 % 5) as f32 - 2.0) * 0.3).collect();
        let objective = |x: Tensor<2>| {
            let y = op.apply_states(x, &shape);
            let r = crate::score::tensor(r.clone(), [1, m], &y.device());
            (y * r).sum()
        };
        let x = crate::score::tensor(x0.clone(), [1, f], &device).require_grad();
        let g = to_vec(x.grad(&objective(x.clone()).backward()).unwrap());
        let value = |x: &[f32]| {
            let t = crate::score::tensor(x.to_vec(), [1, f], &Device::flex());
            to_vec(objective(t))[0] as f64
        };
        for k in [0, 5, 17, 63, 64, 100, 127] {
            let eps = 1e-2;
            let (mut a, mut b) = (x0.clone(), x0.clone());
            a[k] += eps;
            b[k] -= eps;
            let fd = (value(&a) - value(&b)) / (2.0 * eps as f64);
            assert!(
                (fd - g[k] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                "{spec}: ∂/∂x[{k}] autodiff {} vs finite differences {fd}",
                g[k]
            );
        }
    }
}

/// A scratch folder for operator files.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sda-op-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn save(path: &std::path::Path, shape: Vec<usize>, data: Vec<f32>) -> String {
    crate::io::write_npy(path, &crate::io::Array::new(shape, data)).unwrap();
    path.display().to_string()
}

#[test]
fn at_points_and_linear_compute_hand_values() {
    let dir = scratch("hand");
    // Trajectory of 6 states of shape (2, 3): x[t, c, j] = 100 t + 10 c + j.
    let x: Vec<f32> = (0..6 * 6)
        .map(|k| (100 * (k / 6) + 10 * ((k / 3) % 2) + k % 3) as f32)
        .collect();
    let device = Device::flex();
    let run = |spec: &str| {
        let op = Operator::parse(spec).unwrap();
        let y = op
            .apply(crate::score::tensor(x.clone(), [1, 6, 6], &device), &[2, 3])
            .unwrap();
        (op.output_shape(6, &[2, 3]).unwrap(), to_vec(y))
    };
    let pts = save(&dir.join("p.npy"), vec![3], vec![5.0, 0.0, 4.0]);
    let (shape, y) = run(&format!("at:1,4|points:{pts}"));
    assert_eq!(shape, vec![2, 3]);
    assert_eq!(y, vec![112., 100., 111., 412., 400., 411.]);
    // at: from a file, after a stride (states 0, 2, 4 → the 2nd and 3rd: 2, 4).
    let at = save(&dir.join("at.npy"), vec![2], vec![1.0, 2.0]);
    let op = Operator::parse(&format!("stride:2|at:{at}")).unwrap();
    assert_eq!(op.times(6).unwrap(), vec![2, 4]);
    // linear: rows (1, −1, 0, 0, 0, 0) and (0.5, 0, 0, 0, 0, 2) on state 3.
    let mut a = vec![0.0; 12];
    a[0] = 1.0;
    a[1] = -1.0;
    a[6] = 0.5;
    a[11] = 2.0;
    let lin = save(&dir.join("a.npy"), vec![2, 6], a);
    let (shape, y) = run(&format!("at:3|linear:{lin}"));
    assert_eq!(shape, vec![1, 2]);
    assert_eq!(y, vec![-1.0, 0.5 * 300.0 + 2.0 * 312.0]);
    // Scales: points pass them through, linear gives sqrt(Σ A² s²).
    let op = Operator::parse(&format!("linear:{lin}")).unwrap();
    let s = to_vec(op.apply_scales(
        crate::score::tensor(vec![1., 2., 3., 4., 5., 6.], [1, 6], &device),
        &[6],
    ));
    assert!((s[0] - 5f32.sqrt()).abs() < 1e-5 && (s[1] - (0.25f32 + 144.0).sqrt()).abs() < 1e-4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn new_terms_refuse_what_does_not_fit() {
    let dir = scratch("bad");
    let pts = save(&dir.join("p.npy"), vec![2], vec![1.0, 6.0]);
    let e = Operator::parse(&format!("points:{pts}"))
        .unwrap()
        .state_shape(&[2, 3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("index 6") && e.contains("6 values"), "{e}");
    let frac = save(&dir.join("f.npy"), vec![1], vec![1.5]);
    let e = Operator::parse(&format!("points:{frac}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("1.5 is not a non-negative integer"), "{e}");
    let lin = save(&dir.join("a.npy"), vec![2, 5], vec![0.0; 10]);
    let e = Operator::parse(&format!("linear:{lin}"))
        .unwrap()
        .state_shape(&[6])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("2 × 5") && e.contains("width 5 is not the state's size 6"),
        "{e}"
    );
    let vec3 = save(&dir.join("v.npy"), vec![3], vec![0.0; 3]);
    let e = Operator::parse(&format!("linear:{vec3}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("(M, F) matrix"), "{e}");
    let e = Operator::parse("at:3,1").unwrap_err().to_string();
    assert!(e.contains("increasing"), "{e}");
    let e = Operator::parse("at:1,9")
        .unwrap()
        .times(5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("state 9 lies outside"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tables_gather_their_pairs_and_split_into_per_state_points() {
    let dir = scratch("table");
    let path = dir.join("obs.csv");
    std::fs::write(
        &path,
        "time,index,value,std
4,2,0,1
1,0,0,1
4,2,0,2
4,5,0,1
",
    )
    .unwrap();
    let op = Operator::parse(&format!("table:{}", path.display())).unwrap();
    assert_eq!(op.times(6).unwrap(), vec![1, 4]);
    assert_eq!(op.output_shape(6, &[2, 3]).unwrap(), vec![4]);
    let x: Vec<f32> = (0..6 * 6).map(|k| k as f32).collect();
    let device = Device::flex();
    let y = to_vec(
        op.apply(crate::score::tensor(x.clone(), [1, 6, 6], &device), &[2, 3])
            .unwrap(),
    );
    // Rows by time: (1, 0), then (4, 2) twice and (4, 5).
    assert_eq!(y, vec![6.0, 26.0, 26.0, 29.0]);
    let per = op.observed_states(6, &[2, 3]).unwrap();
    assert_eq!(per.len(), 2);
    assert_eq!((per[1].0, per[1].1.clone()), (4, 1..4));
    let state4 = crate::score::tensor(x[24..30].to_vec(), [1, 6], &device);
    let y4 = to_vec(per[1].2.as_ref().unwrap().apply_states(state4, &[2, 3]));
    assert_eq!(y4, vec![26.0, 26.0, 29.0]);
    let e = op.times(4).unwrap_err().to_string();
    assert!(e.contains("line 2: time 4 lies outside"), "{e}");
    let e = op.state_shape(&[5]).unwrap_err().to_string();
    assert!(e.contains("line 5: index 5 lies outside"), "{e}");
    let e = Operator::parse(&format!("table:{}|saturate", path.display())).unwrap_err();
    assert!(e.to_string().contains("takes no other term"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn new_terms_match_finite_differences() {
    // ∇ of Σ A(x) · r over a whole trajectory (4 states of 6 values), autodiff against
    // central differences; saturate makes the objective non-linear.
    let dir = scratch("fd");
    let pts = save(&dir.join("p.npy"), vec![4], vec![5.0, 0.0, 3.0, 3.0]);
    let a: Vec<f32> = (0..3 * 6)
        .map(|k| ((k * 5 % 7) as f32 - 3.0) * 0.4)
        .collect();
    let lin = save(&dir.join("a.npy"), vec![3, 6], a);
    let csv = dir.join("obs.csv");
    std::fs::write(
        &csv,
        "time,index,value,std
3,1,0,1
0,4,0,1
3,1,0,1
2,0,0,1
",
    )
    .unwrap();
    let device = Device::flex().autodiff();
    let (l, f) = (4, 6);
    for spec in [
        format!("at:0,2|points:{pts}|saturate"),
        format!("stride:2@1|linear:{lin}|saturate"),
        format!("stride:2@1|linear:{lin}|arctan"),
        format!("at:1,3|arctan|points:{pts}"),
        format!("linear:{lin}"),
        format!("table:{}", csv.display()),
    ] {
        let op: Operator = spec.parse().unwrap();
        let x0 = fields(1, l, 2, 3);
        let m: usize = op.output_shape(l, &[f]).unwrap().iter().product();
        let r: Vec<f32> = (0..m)
            .map(|k| ((k * 7 % 5) as f32 - 2.0) * 0.3 + 0.1)
            .collect();
        let objective = |x: Tensor<3>| {
            let y = op.apply(x, &[f]).unwrap();
            let r = crate::score::tensor(r.clone(), [1, m], &y.device());
            (y.reshape([1, m]) * r).sum()
        };
        let x = crate::score::tensor(x0.clone(), [1, l, f], &device).require_grad();
        let g = to_vec(x.grad(&objective(x.clone()).backward()).unwrap());
        let value = |x: &[f32]| {
            let t = crate::score::tensor(x.to_vec(), [1, l, f], &Device::flex());
            to_vec(objective(t))[0] as f64
        };
        for k in 0..l * f {
            let eps = 1e-2;
            let (mut a, mut b) = (x0.clone(), x0.clone());
            a[k] += eps;
            b[k] -= eps;
            let fd = (value(&a) - value(&b)) / (2.0 * eps as f64);
            assert!(
                (fd - g[k] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                "{spec}: ∂/∂x[{k}] autodiff {} vs finite differences {fd}",
                g[k]
            );
        }
        // Not a trivial gradient: some entries are non-zero.
        assert!(g.iter().any(|v| v.abs() > 1e-3), "{spec}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn jvp_matches_finite_differences() {
    // J_A v against (A(x + h v) − A(x − h v)) / 2h, in f64 arithmetic on the values.
    let device = Device::flex();
    let (c, h, w) = (2, 8, 8);
    let shape = [c, h, w];
    let f = c * h * w;
    for spec in [
        "coarsen:2",
        "space-stride:3@1",
        "vorticity|saturate",
        "saturate|coarsen:2|vorticity|saturate|crop:1:3:0:4",
        "stride:2|select:1|saturate",
        "at:0,2|select:1|saturate",
        "at:1,2|coarsen:2",
        "stride:2|select:1|arctan",
        "vorticity|arctan",
        "arctan|coarsen:2|vorticity|saturate",
    ] {
        let op: Operator = spec.parse().unwrap();
        let x0 = fields(3, c, h, w);
        let v0: Vec<f32> = (0..3 * f)
            .map(|k| ((k * 13 % 7) as f32 - 3.0) * 0.25)
            .collect();
        let t = |d: &[f32]| crate::score::tensor(d.to_vec(), [1, 3, f], &device);
        let (y, jv) = op.jvp(t(&x0), t(&v0), &shape).unwrap();
        assert_eq!(y.dims(), jv.dims());
        assert_eq!(to_vec(y.clone()), to_vec(op.apply(t(&x0), &shape).unwrap()));
        let eps = 1e-2f32;
        let shift =
            |s: f32| -> Vec<f32> { x0.iter().zip(&v0).map(|(x, v)| x + s * eps * v).collect() };
        let a = to_vec(op.apply(t(&shift(1.0)), &shape).unwrap());
        let b = to_vec(op.apply(t(&shift(-1.0)), &shape).unwrap());
        for (k, g) in to_vec(jv).iter().enumerate() {
            let fd = (a[k] - b[k]) / (2.0 * eps);
            assert!(
                (fd - g).abs() < 2e-3 * (1.0 + fd.abs()),
                "{spec}: (J v)[{k}] = {g} vs finite differences {fd}"
            );
        }
    }
}

/// A table of weighted rows on 4 states of 6 values: bilinear-like rows, a plain row, two
/// rows at one state.
fn weighted_table() -> super::super::table::Table {
    use super::super::table::{Row, Table};
    let row = |time, terms: Vec<(usize, f32)>, line| Row {
        time,
        terms,
        value: 0.0,
        std: 1.0,
        line,
    };
    Table::sorted(
        "w.csv",
        vec![
            row(2, vec![(0, 0.375), (1, 0.375), (3, 0.125), (4, 0.125)], 2),
            row(0, vec![(5, 1.0)], 3),
            row(2, vec![(2, 0.5), (5, 0.5)], 4),
            row(3, vec![(1, 0.25), (4, 0.75)], 5),
        ],
    )
}

#[test]
fn weighted_tables_are_linear_and_their_gradient_is_the_transpose() {
    let op = Operator::from_table(&weighted_table());
    let (l, f) = (4, 6);
    // The dense matrix of the rows by hand: row r holds w at column time · F + index.
    let rows: [(usize, &[(usize, f32)]); 4] = [
        (0, &[(5, 1.0)]),
        (2, &[(0, 0.375), (1, 0.375), (3, 0.125), (4, 0.125)]),
        (2, &[(2, 0.5), (5, 0.5)]),
        (3, &[(1, 0.25), (4, 0.75)]),
    ];
    let mut a = vec![0.0f64; 4 * l * f];
    for (r, (t, terms)) in rows.iter().enumerate() {
        for &(i, w) in terms.iter() {
            a[r * l * f + t * f + i] += w as f64;
        }
    }
    let x0 = fields(1, l, 2, 3);
    let device = Device::flex();
    let y = to_vec(
        op.apply(crate::score::tensor(x0.clone(), [1, l, f], &device), &[f])
            .unwrap(),
    );
    for r in 0..4 {
        let want: f64 = (0..l * f).map(|k| a[r * l * f + k] * x0[k] as f64).sum();
        assert!(
            (y[r] as f64 - want).abs() < 1e-5,
            "row {r}: {} vs {want}",
            y[r]
        );
    }
    // The gradient of w · A(x) by automatic differentiation is Aᵀ w, and
    // <A v, w> = <v, Aᵀ w> for any v (the dot-product test).
    let w: Vec<f32> = vec![0.7, -1.3, 0.4, 2.1];
    let ad = Device::flex().autodiff();
    let x = crate::score::tensor(x0.clone(), [1, l, f], &ad).require_grad();
    let objective = (op.apply(x.clone(), &[f]).unwrap().reshape([1, 4])
        * crate::score::tensor(w.clone(), [1, 4], &ad))
    .sum();
    let g = to_vec(x.grad(&objective.backward()).unwrap());
    for k in 0..l * f {
        let want: f64 = (0..4).map(|r| a[r * l * f + k] * w[r] as f64).sum();
        assert!(
            (g[k] as f64 - want).abs() < 1e-6,
            "∂/∂x[{k}]: {} vs {want}",
            g[k]
        );
    }
    let v = fields(1, l, 3, 2)
        .iter()
        .map(|x| x * 0.5 - 0.2)
        .collect::<Vec<f32>>();
    let av = to_vec(
        op.apply(crate::score::tensor(v.clone(), [1, l, f], &device), &[f])
            .unwrap(),
    );
    let lhs: f64 = av.iter().zip(&w).map(|(a, b)| (a * b) as f64).sum();
    let rhs: f64 = v.iter().zip(&g).map(|(a, b)| (a * b) as f64).sum();
    assert!(
        (lhs - rhs).abs() < 1e-4 * (1.0 + lhs.abs()),
        "{lhs} vs {rhs}"
    );
    // The Jacobian-vector product is A v.
    let (_, jv) = op
        .jvp(
            crate::score::tensor(x0.clone(), [1, l, f], &device),
            crate::score::tensor(v.clone(), [1, l, f], &device),
            &[f],
        )
        .unwrap();
    assert_eq!(to_vec(jv), av);
    // Scales: sqrt(Σ w² s²) per row; here s = 2 everywhere.
    let sc = to_vec(
        op.apply_scales_trajectories(Tensor::full([1, l, f], 2.0, &device), &[f])
            .unwrap(),
    );
    for (r, (_, terms)) in rows.iter().enumerate() {
        let want = 2.0 * terms.iter().map(|t| t.1 * t.1).sum::<f32>().sqrt();
        assert!(
            (sc[r] - want).abs() < 1e-6,
            "scale of row {r}: {} vs {want}",
            sc[r]
        );
    }
    // One state at a time (filters): the same rows, a weighted term where a row is.
    let per = op.observed_states(l, &[f]).unwrap();
    assert_eq!(
        per.iter().map(|p| (p.0, p.1.clone())).collect::<Vec<_>>(),
        vec![(0, 0..1), (2, 1..3), (3, 3..4)]
    );
    assert!(matches!(
        per[0].2.as_ref().unwrap().terms()[0],
        Term::Points(_)
    ));
    for (t, range, map) in &per {
        let state = crate::score::tensor(x0[t * f..(t + 1) * f].to_vec(), [1, f], &device);
        let got = to_vec(map.as_ref().unwrap().apply_states(state, &[f]));
        for (g, want) in got.iter().zip(&y[range.clone()]) {
            assert!(
                (g - want).abs() < 1e-6,
                "state {t}: {got:?} vs {:?}",
                &y[range.clone()]
            );
        }
    }
    // Restricted to a window (autoregressive sampling): states 2..4 from state 1.
    let (sub, index) = op.restrict(l, &[f], 1, 3, 2..4).unwrap().unwrap();
    assert_eq!(index, vec![1, 2, 3]);
    let tail = crate::score::tensor(x0[f..].to_vec(), [1, 3, f], &device);
    let got = to_vec(sub.apply(tail, &[f]).unwrap());
    for (g, want) in got.iter().zip(&y[1..]) {
        assert!((g - want).abs() < 1e-6);
    }
    let e = op.state_shape(&[4]).unwrap_err().to_string();
    assert!(
        e.contains("line 3: index 5 lies outside a state of 4 values"),
        "{e}"
    );
}
