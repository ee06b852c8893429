//! Samples written back as NetCDF-3 with the record's coordinates (`sda assimilate|sample
//! --output x.nc`), read back with the NetCDF reader `sda import` uses: dimensions, coordinate
//! values and attributes, the dates of `--start`, variable names, units and long names, the
//! values themselves, and the fixed mask as `_FillValue` (read back as missing).

use std::path::PathBuf;

use netcdf_reader::{NcFile, NcFormat};
use sda::coords::Layout;
use sda::io::Array;
use sda::locate::start_step;
use sda::record::{Axis, Gaps, Record, SplitByTime, VariableInfo, Windows};
use sda::transform::TransformSpec;

mod common;
use common::{fails_with, ok, s, sda};

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sda-ncout-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn axis(name: &str, values: Vec<f64>, units: &str) -> Axis {
    Axis {
        name: name.into(),
        values,
        units: Some(units.into()),
        calendar: None,
    }
}

/// 16 monthly fields of U and V on a 4 × 4 grid (lat, lon), the cell (1, 3) land (missing at
/// every time): states `(2, 4, 4)`.
fn record() -> Record {
    let var = |name: &str, units: &str, long: &str| VariableInfo {
        name: name.into(),
        dtype: "float".into(),
        dims: vec!["TIME".into(), "lat".into(), "lon".into()],
        shape: vec![16, 4, 4],
        units: Some(units.into()),
        long_name: Some(long.into()),
    };
    let mut values = Vec::new();
    for t in 0..16 {
        for c in 0..2 {
            for i in 0..4 {
                for j in 0..4 {
                    values.push(if (i, j) == (1, 3) {
                        f64::NAN
                    } else {
                        (t as f64 * 0.7 + c as f64 + i as f64 * 0.3 + j as f64 * 0.1).sin()
                    });
                }
            }
        }
    }
    let mut time = axis(
        "TIME",
        (0..16).map(|t| 15.0 + 30.0 * t as f64).collect(),
        "days since 1990-01-01",
    );
    time.calendar = Some("noleap".into());
    Record {
        origin: "winds.nc".into(),
        format: "NetCDF-3 classic".into(),
        variables: vec![
            var("U", "m/s", "zonal wind"),
            var("V", "m/s", "meridional wind"),
        ],
        time,
        space: vec![
            axis("lat", vec![-30.0, -10.0, 10.0, 30.0], "degrees_north"),
            axis("lon", vec![0.0, 90.0, 180.0, 270.0], "degrees_east"),
        ],
        values,
        edits: vec![],
        stations: None,
    }
}

fn cut() -> sda::record::Cut {
    sda::record::cut(
        &record(),
        &Windows {
            window: 4,
            stride: 2,
            split: SplitByTime::parse(&[8.0, 4.0, 4.0]).unwrap(),
            gaps: Gaps::Drop,
            transform: TransformSpec::parse(&[]).unwrap(),
        },
    )
    .unwrap()
}

fn text(v: &netcdf_reader::NcVariable, name: &str) -> Option<String> {
    v.attribute(name)
        .and_then(|a| a.value.as_string())
        .map(|s| s.trim_end_matches('\0').to_string())
}

#[test]
fn samples_read_back_with_their_coordinates_and_the_mask_as_fill_values() {
    let c = cut();
    let info = &c.splits.info;
    let sda::mcs::System::External(e) = &info.system else {
        panic!()
    };
    let r = e.record.as_ref().unwrap();
    assert_eq!(r.mask.as_ref().unwrap().runs, vec![[7, 8], [23, 24]]);
    assert_eq!(start_step(r, "test:0").unwrap(), 12);
    assert_eq!(start_step(r, "valid:0").unwrap(), 8);
    assert_eq!(start_step(r, "train:1").unwrap(), 2);
    // Two samples of 4 states: sample s, state t, value k holds 1000 s + 10 t + k / 100.
    let (n, l, f) = (2, 4, 32);
    let x = Array::new(
        vec![n, l, 2, 4, 4],
        (0..n * l * f)
            .map(|q| (1000 * (q / (l * f)) + 10 * ((q / f) % l)) as f32 + (q % f) as f32 / 100.0)
            .collect(),
    );
    let layout = Layout::of(info, n, l, Some("test:0"), "posterior samples").unwrap();
    let d = dir("roundtrip");
    let path = d.join("x.nc");
    sda::coords::write_netcdf(&path, &x, &layout).unwrap();
    let file = NcFile::open(&path).unwrap();
    assert_eq!(file.format(), NcFormat::Classic);
    let dims: Vec<(String, usize)> = file
        .dimensions()
        .unwrap()
        .iter()
        .map(|d| (d.name.clone(), d.size as usize))
        .collect();
    let want: Vec<(String, usize)> = [("sample", 2), ("TIME", 4), ("lat", 4), ("lon", 4)]
        .iter()
        .map(|(a, b)| (a.to_string(), *b))
        .collect();
    assert_eq!(dims, want);
    // The time coordinate: the record's times of steps 12..16, with units and calendar.
    let t = file.variable("TIME").unwrap();
    assert_eq!(text(t, "units").as_deref(), Some("days since 1990-01-01"));
    assert_eq!(text(t, "calendar").as_deref(), Some("noleap"));
    let tv: Vec<f64> = file
        .read_variable_unpacked("TIME")
        .unwrap()
        .iter()
        .copied()
        .collect();
    assert_eq!(tv, vec![375.0, 405.0, 435.0, 465.0]);
    let lon: Vec<f64> = file
        .read_variable_unpacked("lon")
        .unwrap()
        .iter()
        .copied()
        .collect();
    assert_eq!(lon, vec![0.0, 90.0, 180.0, 270.0]);
    assert_eq!(
        text(file.variable("lat").unwrap(), "units").as_deref(),
        Some("degrees_north")
    );
    let g = file.global_attribute("title").unwrap();
    assert_eq!(g.value.as_string().unwrap(), "posterior samples");
    // The variables: names, dims, attributes, values; the land cell missing.
    for (c, name, long) in [(0, "U", "zonal wind"), (1, "V", "meridional wind")] {
        let v = file.variable(name).unwrap();
        let vd: Vec<&str> = v.dimensions().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(vd, ["sample", "TIME", "lat", "lon"]);
        assert_eq!(text(v, "units").as_deref(), Some("m/s"));
        assert_eq!(text(v, "long_name").as_deref(), Some(long));
        assert!(v.attribute("_FillValue").is_some());
        let a: Vec<f64> = file
            .read_variable_unpacked_masked(name)
            .unwrap()
            .iter()
            .copied()
            .collect();
        assert_eq!(a.len(), n * l * 16);
        for (q, got) in a.iter().enumerate() {
            let (sm, st, k) = (q / (l * 16), (q / 16) % l, q % 16);
            if k == 7 {
                assert!(got.is_nan(), "land at {q} reads back as {got}");
            } else {
                let want = x.data[(sm * l + st) * f + c * 16 + k] as f64;
                assert_eq!(*got, want, "{name} at {q}");
            }
        }
    }
    // Without --start: the state indices.
    let plain = Layout::of(info, n, l, None, "t").unwrap();
    assert_eq!(plain.coordinates[1].values, vec![0.0, 1.0, 2.0, 3.0]);
    // Refusals: a window that is not there, a run past the record's end, a bad split.
    let e = |spec: &str, l: usize| {
        Layout::of(info, n, l, Some(spec), "t")
            .unwrap_err()
            .to_string()
    };
    assert!(e("test:3", 4).contains("the test split has 1 window(s), not a window 3"));
    assert!(e("test:0", 5).contains("run past the record's end (16 steps)"));
    assert!(e("later:0", 4).contains("'later' is not a split"));
    assert!(e("16", 1).contains("outside the record's 16 steps"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn sda_sample_writes_the_same_samples_to_nc_as_to_npy() {
    let d = dir("cli");
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    sda::record::write(&data, &cut()).unwrap();
    let run = d.join("run");
    ok(sda(&[
        "train",
        "--data",
        s(&data),
        "--output",
        s(&run),
        "--epochs",
        "2",
        "--preset",
        "reduced",
        "--hidden",
        "4,4,4",
        "--order",
        "1",
    ]));
    let base = [
        "sample",
        "--model",
        s(&run),
        "--length",
        "4",
        "--samples",
        "2",
        "--steps",
        "4",
        "--no-guard",
        "--output",
    ];
    let npy = d.join("x.npy");
    let nc = d.join("x.nc");
    ok(sda(&[&base[..], &[s(&npy)]].concat()));
    ok(sda(&[&base[..], &[s(&nc), "--start", "valid:0"]].concat()));
    let x = sda::io::read_npy(&npy).unwrap();
    let file = NcFile::open(&nc).unwrap();
    let u: Vec<f64> = file
        .read_variable_unpacked_masked("U")
        .unwrap()
        .iter()
        .copied()
        .collect();
    // U is channel 0: the first 16 values of each state; the land cell is missing.
    for (q, got) in u.iter().enumerate() {
        let (st, k) = (q / 16, q % 16);
        if k == 7 {
            assert!(got.is_nan());
        } else {
            assert_eq!(*got, x.data[st * 32 + k] as f64, "at {q}");
        }
    }
    let tv: Vec<f64> = file
        .read_variable_unpacked("TIME")
        .unwrap()
        .iter()
        .copied()
        .collect();
    assert_eq!(
        tv,
        vec![255.0, 285.0, 315.0, 345.0],
        "valid:0 starts at step 8"
    );
    // --start with an .npy output, or past the record, is refused with nothing written.
    let out = d.join("y.npy");
    let o = sda(&[&base[..], &[s(&out), "--start", "test:0"]].concat());
    fails_with(
        &o,
        &out,
        "--start: places a table of dates (.csv observations) or dates the samples of a NetCDF \
         --output (.nc)",
    );
    let out = d.join("y.nc");
    let o = sda(&[&base[..], &[s(&out), "--start", "14"]].concat());
    fails_with(&o, &out, "run past the record's end");
    std::fs::remove_dir_all(&d).unwrap();
}
