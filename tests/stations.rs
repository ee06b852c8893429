//! Station records and observations as they come: a NetCDF network of named stations (written
//! here byte by byte) imported with `--gaps keep`, whose masks of observed values match its
//! missing values; records made from arrays; table rows by station, by place (bilinear weights
//! worked out by hand on a tiny grid, across the date line, land left out; the nearest station
//! of a network) and by date (through the record's time axis and calendar, to the window's
//! states); every refusal in one line; and a prior trained on the network assimilating a table
//! of station names and dates.

use std::path::{Path, PathBuf};

mod common;
use common::netcdf3::*;
use common::{fails_with, ok, s, sda, train_tiny};
use sda::data::SystemInfo;
use sda::locate::{Context, place};
use sda::record::{Axis, Gaps, Record, RecordArrays, SplitByTime, Station, Windows, cut};
use sda::score::table::RawTable;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sda-stations-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn axis(name: &str, units: Option<&str>, values: Vec<f64>) -> Axis {
    Axis {
        name: name.into(),
        values,
        units: units.map(String::from),
        calendar: None,
    }
}

fn station(name: &str, lat: f64, lon: f64) -> Station {
    Station {
        name: name.into(),
        lat,
        lon,
    }
}

/// Daily steps from 2005-05-10 (`days since 2005-05-01`, values 9, 10, …).
fn days(t: usize) -> Axis {
    axis(
        "time",
        Some("days since 2005-05-01"),
        (0..t).map(|k| 9.0 + k as f64).collect(),
    )
}

/// A network of stations A, B, C with tmax and tmin on 20 days: tmax = 10 t + d, tmin = −t − d;
/// tmin at C missing on day 3 and tmax at B missing on every day of the last five.
fn network() -> Record {
    let t = 20;
    let mut values = Vec::new();
    for k in 0..t {
        for v in 0..2 {
            for d in 0..3 {
                let x = if v == 0 {
                    10.0 * k as f64 + d as f64
                } else {
                    -(k as f64) - d as f64
                };
                let gap = (v == 1 && d == 2 && k == 3) || (v == 0 && d == 1 && k >= 15);
                values.push(if gap { f64::NAN } else { x });
            }
        }
    }
    Record::from_arrays(RecordArrays {
        origin: "numpy arrays".into(),
        variables: vec![
            ("tmax".into(), Some("degC".into()), None),
            ("tmin".into(), None, None),
        ],
        values,
        time: days(t),
        space: vec![axis("station", None, vec![0.0, 1.0, 2.0])],
        stations: Some(vec![
            station("A", 50.0, 10.0),
            station("B", 52.0, 13.0),
            station("C", 48.0, 11.0),
        ]),
    })
    .unwrap()
}

fn windows(gaps: Gaps) -> Windows {
    Windows {
        window: 4,
        stride: 2,
        split: SplitByTime::Counts([12, 4, 4]),
        gaps,
        transform: Default::default(),
    }
}

fn info(r: &Record, gaps: Gaps) -> SystemInfo {
    cut(r, &windows(gaps)).unwrap().splits.info
}

#[test]
fn gaps_keep_keeps_every_window_and_masks_exactly_the_missing_values() {
    let r = network();
    let c = cut(&r, &windows(Gaps::Keep)).unwrap();
    let [train, valid, test] = c.observed.as_ref().expect("observed masks");
    assert_eq!(
        train.shape,
        vec![5, 4, 6],
        "windows from 0, 2, …, 8 of 12 steps"
    );
    assert_eq!(c.splits.train.shape, train.shape);
    assert_eq!((valid.shape[0], test.shape[0]), (1, 1));
    let rec = match &c.splits.info.system {
        sda::mcs::System::External(e) => e.record.as_ref().unwrap(),
        _ => panic!(),
    };
    let norm = &c.splits.info.normalisation;
    for (k, (a, o)) in [
        (&c.splits.train, train),
        (&c.splits.valid, valid),
        (&c.splits.test, test),
    ]
    .into_iter()
    .enumerate()
    {
        for n in 0..a.shape[0] {
            let start = rec.starts[k][n];
            for l in 0..4 {
                for j in 0..6 {
                    let at = (n * 4 + l) * 6 + j;
                    let truth = r.values[(start + l) * 6 + j];
                    assert_eq!(
                        o.data[at],
                        f32::from(u8::from(truth.is_finite())),
                        "{k} {n} {l} {j}"
                    );
                    let want = if truth.is_finite() {
                        truth as f32
                    } else {
                        norm.mean[j] as f32
                    };
                    assert_eq!(a.data[at], want);
                }
            }
        }
    }
    // tmin at C (value 5) is missing on day 3 only: in train windows from 2 (its step 1).
    assert_eq!(train.data[(4 + 1) * 6 + 5], 0.0);
    // tmax at B (value 1) is missing from day 15: the test window (16..20) misses it always.
    assert!((0..4).all(|l| test.data[l * 6 + 1] == 0.0));
    let o = rec.observed.as_ref().unwrap();
    assert_eq!(o.missing, [2, 1, 4]);
    assert_eq!(o.files[0], "train-observed.npy");
    assert!(
        c.summary().contains("2 variable(s) at 3 stations"),
        "{}",
        c.summary()
    );
    assert!(
        c.summary().contains("2005-05-10..2005-05-21"),
        "{}",
        c.summary()
    );
    // The default drops every window with a gap: none of validation is left.
    let e = cut(&r, &windows(Gaps::Drop)).unwrap_err().to_string();
    assert!(e.contains("no validation window of 4 steps is left"), "{e}");
    // A folder written before these fields existed reads as one without them.
    let mut json = serde_json::to_value(rec).unwrap();
    for k in ["stations", "observed"] {
        json.as_object_mut().unwrap().remove(k);
    }
    let old: sda::record::RecordInfo = serde_json::from_value(json).unwrap();
    assert!(old.stations.is_none() && old.observed.is_none());
}

#[test]
fn a_station_seen_a_few_times_in_training_takes_its_variables_normalisation() {
    // Station 0 holds t, station 1 is seen at t = 0, 1, 2 of training only (100, 101, 102)
    // and from t = 20 on, station 2 holds 7 always (no spread of its own).
    let t = 30;
    let mut values = Vec::new();
    for k in 0..t {
        values.push(k as f64);
        values.push(if !(3..20).contains(&k) {
            100.0 + k as f64
        } else {
            f64::NAN
        });
        values.push(7.0);
    }
    let r = Record::from_arrays(RecordArrays {
        origin: "numpy arrays".into(),
        variables: vec![("x".into(), None, None)],
        values,
        time: days(t),
        space: vec![axis("station", None, vec![0.0, 1.0, 2.0])],
        stations: None,
    })
    .unwrap();
    let w = Windows {
        window: 5,
        stride: 5,
        split: SplitByTime::Counts([20, 5, 5]),
        gaps: Gaps::Keep,
        transform: Default::default(),
    };
    let n = cut(&r, &w).unwrap().splits.info.normalisation;
    // Station 0's own: the mean 9.5 and std sqrt((20² − 1) / 12) of 0..19.
    assert!((n.mean[0] - 9.5).abs() < 1e-12);
    assert!((n.scale[0] - (399.0f64 / 12.0).sqrt()).abs() < 1e-12);
    // Stations 1 and 2: the pooled mean and std of all 43 training values.
    let pooled: Vec<f64> = (0..20)
        .map(|k| k as f64)
        .chain([100.0, 101.0, 102.0])
        .chain(std::iter::repeat_n(7.0, 20))
        .collect();
    let m = pooled.iter().sum::<f64>() / 43.0;
    let sd = (pooled.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 43.0).sqrt();
    for j in [1, 2] {
        assert!(
            (n.mean[j] - m).abs() < 1e-9 && (n.scale[j] - sd).abs() < 1e-9,
            "{n:?}"
        );
    }
}

#[test]
fn records_from_arrays_are_checked() {
    let ok_record = network();
    assert_eq!(ok_record.state_shape(), vec![6]);
    let base = || RecordArrays {
        origin: "numpy arrays".into(),
        variables: vec![("x".into(), None, None)],
        values: vec![0.0; 6],
        time: days(3),
        space: vec![axis("station", None, vec![0.0, 1.0])],
        stations: Some(vec![station("A", 1.0, 2.0), station("B", 3.0, 4.0)]),
    };
    Record::from_arrays(base()).unwrap();
    for (bad, needle) in [
        (
            RecordArrays {
                values: vec![0.0; 5],
                ..base()
            },
            "5 values do not make (3, 1, 2)",
        ),
        (
            RecordArrays {
                time: axis("time", None, vec![0.0, 2.0, 1.0]),
                ..base()
            },
            "not strictly increasing: step 2",
        ),
        (
            RecordArrays {
                stations: Some(vec![station("A", 1.0, 2.0), station("A", 3.0, 4.0)]),
                ..base()
            },
            "station 'A' is named twice",
        ),
        (
            RecordArrays {
                stations: Some(vec![station("A", 1.0, 2.0)]),
                ..base()
            },
            "1 stations for the 2 cells",
        ),
        (
            RecordArrays {
                stations: Some(vec![station("A", 91.0, 2.0), station("B", 3.0, 4.0)]),
                ..base()
            },
            "not a place on Earth",
        ),
    ] {
        let e = Record::from_arrays(bad).unwrap_err().to_string();
        assert!(e.starts_with("numpy arrays: ") && e.contains(needle), "{e}");
    }
}

fn placed(
    text: &str,
    info: &SystemInfo,
    length: usize,
    start: Option<&str>,
) -> sda::Result<sda::locate::Placed> {
    let raw = RawTable::parse(text, "obs.csv")?;
    place(
        &raw,
        &Context {
            info,
            length,
            start,
        },
    )
}

/// `(time, terms)` of each row of a placed table, in the table's order (by time).
fn rows(p: &sda::locate::Placed) -> Vec<(usize, Vec<(usize, f32)>)> {
    p.table
        .rows
        .iter()
        .map(|r| (r.time, r.terms.clone()))
        .collect()
}

#[test]
fn rows_by_station_place_and_date_land_on_the_right_values_and_states() {
    let info = info(&network(), Gaps::Keep);
    let text = "date,station,variable,value,std\n\
                2005-05-14,B,tmin,1.5,0.5\n\
                2005-05-12T06:00,A,tmax,2,1\n\
                17,C,tmax,3,1\n";
    // --start 2005-05-11 (step 1): day 14 is step 4 → state 3; 12 May 06:00 falls in day 12
    // (step 2) → state 1; the number 17 of the axis is 2005-05-18 (step 8) → state 7. Indices:
    // tmin at B is 1·3 + 1 = 4, tmax at A is 0, tmax at C is 2.
    let p = placed(text, &info, 8, Some("2005-05-11")).unwrap();
    assert_eq!(
        rows(&p),
        vec![
            (1, vec![(0, 1.0)]),
            (3, vec![(4, 1.0)]),
            (7, vec![(2, 1.0)])
        ]
    );
    assert_eq!(p.start, Some(1));
    assert!(p.summary.contains("3 by station"), "{}", p.summary);
    assert!(
        p.summary.contains("from 2005-05-11 (step 1 of the record)"),
        "{}",
        p.summary
    );
    // A step of the record works as --start too; by default the window starts at the earliest
    // date (day 12, step 2).
    assert_eq!(rows(&placed(text, &info, 8, Some("1")).unwrap()), rows(&p));
    let d = placed(text, &info, 8, None).unwrap();
    assert_eq!(d.start, Some(2));
    assert_eq!(d.table.times(), vec![0, 2, 6]);
    // A place on a network: the nearest station (Berlin's is B), for the row's variable.
    let q = placed(
        "time,lat,lon,variable,value,std\n0,52.5,13.4,tmin,1,1\n2,48.1,11.6,tmax,1,1\n",
        &info,
        4,
        None,
    )
    .unwrap();
    assert_eq!(rows(&q), vec![(0, vec![(4, 1.0)]), (2, vec![(2, 1.0)])]);
}

#[test]
fn bad_rows_are_refused_naming_the_file_and_line() {
    let info = info(&network(), Gaps::Keep);
    for (text, length, start, needle) in [
        (
            "time,station,variable,value,std\n0,Z,tmax,1,1\n",
            4,
            None,
            "obs.csv: line 2: station 'Z' is not in the record (3 stations: A, B, C)",
        ),
        (
            "time,station,variable,value,std\n0,A,tavg,1,1\n",
            4,
            None,
            "line 2: variable 'tavg' does not exist (the record's: tmax, tmin)",
        ),
        (
            "time,station,value,std\n0,A,1,1\n",
            4,
            None,
            "line 2: the state holds tmax, tmin: give a variable column",
        ),
        (
            "date,index,value,std\n2005-05-12,0,1,1\n2005-06-30,0,1,1\n",
            4,
            None,
            "line 3: date '2005-06-30' lies outside the record (2005-05-10..2005-05-29)",
        ),
        (
            "date,index,value,std\n2005-05-12,0,1,1\n2005-05-17,0,1,1\n",
            4,
            None,
            "line 3: date '2005-05-17' (step 7 of the record) lies outside the window of 4 states from 2005-05-12 (step 2)",
        ),
        (
            "date,index,value,std\n2005-05-12,0,1,1\n",
            4,
            Some("2005-05-13"),
            "line 2: date '2005-05-12' (step 2 of the record) lies outside the window",
        ),
        (
            "date,index,value,std\n2005-02-30,0,1,1\n",
            4,
            None,
            "line 2: date '2005-02-30': date: 2005-02-30 does not exist",
        ),
        (
            "date,index,value,std\nsoon,0,1,1\n",
            4,
            None,
            "line 2: date 'soon' is not a date",
        ),
        (
            "date,index,value,std\n2005-05-12,0,1,1\n",
            4,
            Some("99"),
            "--start: step 99 lies outside the record's 20 steps",
        ),
        ("time,lat,value,std\n0,1,1,1\n", 4, None, "lat without lon"),
    ] {
        let e = placed(text, &info, length, start).unwrap_err().to_string();
        assert!(e.contains(needle), "{text:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    // Rows by station or date need a record: a simulated system has none.
    let sim = sda::data::Splits::from_arrays(
        sda::mcs::System::from_name("lorenz63").unwrap(),
        sda::io::Array::new(vec![10, 4, 3], vec![0.5; 120]),
        None,
        None,
    )
    .unwrap()
    .info;
    let e = placed("time,station,value,std\n0,A,1,1\n", &sim, 4, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("obs.csv: line 2: a row by station, place or date needs the record"),
        "{e}"
    );
    let e = placed("time,station,value,std\n0,A,1,1\n", &info_grid(), 4, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2: the record has no stations"), "{e}");
}

/// One variable on a global grid: latitudes 10, 20, 30 (rows), longitudes 0, 90, 180, 270; the
/// cell (row 0, column 1) is land (missing at every time).
fn grid_record() -> Record {
    let t = 12;
    let mut values = Vec::new();
    for k in 0..t {
        for i in 0..3 {
            for j in 0..4 {
                let land = i == 0 && j == 1;
                values.push(if land {
                    f64::NAN
                } else {
                    (k * 100 + i * 10 + j) as f64
                });
            }
        }
    }
    Record::from_arrays(RecordArrays {
        origin: "grid".into(),
        variables: vec![("sst".into(), None, None)],
        values,
        time: days(t),
        space: vec![
            axis("lat", Some("degrees_north"), vec![10.0, 20.0, 30.0]),
            axis("lon", Some("degrees_east"), vec![0.0, 90.0, 180.0, 270.0]),
        ],
        stations: None,
    })
    .unwrap()
}

fn info_grid() -> SystemInfo {
    let w = Windows {
        window: 4,
        stride: 1,
        split: SplitByTime::Counts([4, 4, 4]),
        gaps: Gaps::Drop,
        transform: Default::default(),
    };
    cut(&grid_record(), &w).unwrap().splits.info
}

fn close(got: &[(usize, f32)], want: &[(usize, f64)]) {
    let mut got = got.to_vec();
    got.sort_by_key(|t| t.0);
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            g.0 == w.0 && (g.1 as f64 - w.1).abs() < 1e-6,
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn places_on_a_grid_are_bilinear_wrap_round_and_leave_land_out() {
    let info = info_grid();
    let p = placed(
        "time,lat,lon,value,std\n\
         0,22.5,135,1,1\n\
         1,20,315,1,1\n\
         2,15,45,1,1\n\
         3,20,180,1,1\n",
        &info,
        4,
        None,
    )
    .unwrap();
    let r = rows(&p);
    // (22.5, 135): a quarter from row 1 to 2, half from column 1 to 2: (3/4)(1/2) at 5 and 6,
    // (1/4)(1/2) at 9 and 10.
    close(&r[0].1, &[(5, 0.375), (6, 0.375), (9, 0.125), (10, 0.125)]);
    // (20, 315): row 1, half way from 270 (column 3) across the date line to 0 (column 0).
    close(&r[1].1, &[(4, 0.5), (7, 0.5)]);
    // (15, 45): half way between rows 0 and 1 and columns 0 and 1; (0, 1) is land: the other
    // three weights, 1/4 each, are scaled to sum to 1.
    close(&r[2].1, &[(0, 1.0 / 3.0), (4, 1.0 / 3.0), (5, 1.0 / 3.0)]);
    close(&r[3].1, &[(6, 1.0)]);
    assert!(
        p.summary
            .contains("4 by place (3 interpolated between cells)"),
        "{}",
        p.summary
    );
    for (text, needle) in [
        (
            "time,lat,lon,value,std\n0,35,0,1,1\n",
            "line 2: lat 35 lies outside the grid (latitudes 10…30)",
        ),
        (
            "time,lat,lon,value,std\n0,10,90,1,1\n",
            "line 2: lat 10, lon 90: every surrounding cell is masked (land)",
        ),
        (
            "time,lat,lon,value,std\n0,-95,90,1,1\n",
            "line 2: lat -95, lon 90 is not a place on Earth",
        ),
        (
            "time,station,value,std\n0,A,1,1\n",
            "line 2: the record has no stations",
        ),
    ] {
        let e = placed(text, &info, 4, None).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
}

// ---- A station network in NetCDF, through the command line ----------------------------------

const T: usize = 40;

/// PM10 at stations DEBE032, DENI063, DESH001 on T days from 1998-01-01 (`days since
/// 1970-01-01`): `20 + t % 7 + 3 d`, missing (fill value) at DENI063 every fifth day and at
/// DESH001 on days 10..14.
fn pm10(t: usize, d: usize) -> Option<f32> {
    let gap = (d == 1 && t.is_multiple_of(5)) || (d == 2 && (10..14).contains(&t));
    (!gap).then_some(20.0 + (t % 7) as f32 + 3.0 * d as f32)
}

fn station_file() -> Vec<u8> {
    let names = ["DEBE032", "DENI063", "DESH001"];
    let be = |v: &[f32]| v.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
    let vars = vec![
        Var {
            name: "time",
            dims: vec![0],
            ty: NC_DOUBLE,
            atts: vec![("units", Att::Text("days since 1970-01-01"))],
            data: (0..T)
                .map(|t| (10227.0 + t as f64).to_be_bytes().to_vec())
                .collect(),
        },
        Var {
            name: "lat",
            dims: vec![1],
            ty: NC_FLOAT,
            atts: vec![("units", Att::Text("degrees_north"))],
            data: vec![be(&[52.5, 52.0, 54.9])],
        },
        Var {
            name: "lon",
            dims: vec![1],
            ty: NC_FLOAT,
            atts: vec![("units", Att::Text("degrees_east"))],
            data: vec![be(&[13.4, 9.7, 8.3])],
        },
        Var {
            name: "station_name",
            dims: vec![1, 2],
            ty: NC_CHAR,
            atts: vec![("cf_role", Att::Text("timeseries_id"))],
            data: vec![names.iter().flat_map(|n| n.bytes()).collect()],
        },
        Var {
            name: "PM10",
            dims: vec![0, 1],
            ty: NC_FLOAT,
            atts: vec![("_FillValue", Att::Float(-999.0))],
            data: (0..T)
                .map(|t| {
                    be(&(0..3)
                        .map(|d| pm10(t, d).unwrap_or(-999.0))
                        .collect::<Vec<_>>())
                })
                .collect(),
        },
    ];
    netcdf3(
        1,
        &[("time", 0), ("station", 3), ("name_strlen", 7)],
        T as u32,
        &vars,
    )
}

fn import(d: &Path, extra: &[&str]) -> std::process::Output {
    let file = d.join("pm10.nc");
    std::fs::write(&file, station_file()).unwrap();
    let mut args = vec![
        "import",
        "--netcdf",
        s(&file),
        "--variables",
        "PM10",
        "--window",
        "8",
        "--split-by-time",
        "24,8,8",
        "--output",
    ];
    let out = d.join("data");
    args.push(s(&out));
    args.extend_from_slice(extra);
    sda(&args)
}

#[test]
fn a_netcdf_station_network_imports_with_its_stations_and_masks() {
    let d = dir("cli");
    let printed = ok(import(&d, &["--gaps", "keep"]));
    assert!(printed.contains("1 variable(s) at 3 stations"), "{printed}");
    assert!(printed.contains("1998-01-01..1998-01-24"), "{printed}");
    assert!(
        printed.contains("kept every window with its missing values"),
        "{printed}"
    );
    assert!(
        printed.contains("{train,valid,test}-observed.npy"),
        "{printed}"
    );
    let data = d.join("data");
    let json = std::fs::read_to_string(data.join("system.json")).unwrap();
    assert!(json.contains("\"name\": \"DENI063\""), "{json}");
    // The masks match the file's missing values, window by window.
    let obs = sda::io::read_npy(&data.join("train-observed.npy")).unwrap();
    assert_eq!(obs.shape, vec![17, 8, 3]);
    for n in 0..17 {
        for l in 0..8 {
            for dd in 0..3 {
                let want = f32::from(u8::from(pm10(n + l, dd).is_some()));
                assert_eq!(obs.data[(n * 8 + l) * 3 + dd], want, "{n} {l} {dd}");
            }
        }
    }
    assert!(data.join("test-observed.npy").exists());
    // --select keeps the stations of the cells it keeps.
    let d2 = dir("cli-select");
    ok(import(&d2, &["--gaps", "keep", "--select", "station=1:3"]));
    let json = std::fs::read_to_string(d2.join("data/system.json")).unwrap();
    assert!(
        json.contains("DENI063") && !json.contains("DEBE032"),
        "{json}"
    );
    std::fs::remove_dir_all(&d).unwrap();
    std::fs::remove_dir_all(&d2).unwrap();
}

#[test]
fn a_table_by_station_name_and_date_assimilates_and_dates_its_output() {
    let d = dir("cli-table");
    ok(import(&d, &["--gaps", "keep"]));
    let data = d.join("data");
    // A tiny prior, then a table by station name and date.
    ok(train_tiny(&data, &d.join("run"), "4", &[]));
    let table = d.join("obs.csv");
    std::fs::write(
        &table,
        "date,station,value,std\n1998-02-03,DENI063,24.5,2\n1998-02-01,DESH001,29,2\n\
         1998-02-02T12:00,DEBE032,21,2\n",
    )
    .unwrap();
    let out = d.join("x.npy");
    let run = d.join("run");
    // A brief assimilation into `out`, `extra` starting with the observations' path.
    let assimilate_to = |out: &Path, extra: &[&str]| {
        let _ = std::fs::remove_file(out);
        let mut args = vec![
            "assimilate",
            "--no-guard",
            "--model",
            s(&run),
            "--length",
            "8",
            "--samples",
            "2",
            "--steps",
            "4",
            "--output",
            s(out),
            "--observations",
        ];
        args.extend_from_slice(extra);
        sda(&args)
    };
    let assimilate = |extra: &[&str]| assimilate_to(&out, extra);
    let o = assimilate(&[s(&table), "--start", "1998-01-31"]);
    ok(o.clone());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("3 rows, 3 by station; dates 1998-02-01..1998-02-03 → states 1..3 of the window of 8 from 1998-01-31 (step 30 of the record)"),
        "{err}"
    );
    assert_eq!(sda::io::read_npy(&out).unwrap().shape, vec![2, 8, 3]);
    // Without --start the table's earliest date places the window, and dates a .nc output:
    // its time axis holds the record's steps 31..38 (1998-02-01 onwards), as --start 31 gives.
    let nc = d.join("x.nc");
    let run_nc = |extra: &[&str]| {
        ok(assimilate_to(&nc, &[&[s(&table)], extra].concat()));
        let file = netcdf_reader::NcFile::open(&nc).unwrap();
        let name = file
            .variables()
            .unwrap()
            .iter()
            .find(|v| {
                v.dimensions().len() == 1
                    && v.dimensions()[0].name != "sample"
                    && v.dimensions()[0].name != "station"
            })
            .map(|v| v.name().to_string())
            .unwrap();
        file.read_variable_unpacked(&name)
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<f64>>()
    };
    let placed = run_nc(&[]);
    assert_eq!(placed, run_nc(&["--start", "31"]));
    assert_eq!(placed.len(), 8);
    assert_eq!(placed[1] - placed[0], 1.0, "daily steps: {placed:?}");
    let bad = d.join("bad.csv");
    for (text, start, needle) in [
        (
            "date,station,value,std\n1998-02-03,DEXX001,24.5,2\n",
            "1998-01-31",
            "line 2: station 'DEXX001' is not in the record",
        ),
        (
            "date,station,value,std\n1998-02-08,DENI063,24.5,2\n",
            "1998-01-31",
            "line 2: date '1998-02-08' (step 38 of the record) lies outside the window of 8 states",
        ),
        (
            "date,station,value,std\n1998-03-20,DENI063,24.5,2\n",
            "1998-01-31",
            "line 2: date '1998-03-20' lies outside the record (1998-01-01..1998-02-09)",
        ),
    ] {
        std::fs::write(&bad, text).unwrap();
        fails_with(&assimilate(&[s(&bad), "--start", start]), &out, needle);
    }
    std::fs::remove_dir_all(&d).unwrap();
}
