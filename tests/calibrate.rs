//! `--gamma auto`: γ chosen on the validation trajectories, cached in the run folder, and the
//! refusals of a calibration that cannot run.

mod common;

use std::path::PathBuf;

use common::{fails_with, ok, sda_in, small_prior};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sda-calibrate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `assimilate` of [`small_prior`]'s observations, 8 samples, 64 steps, with `extra`.
fn assimilate<'a>(output: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "assimilate",
        "--model",
        "run",
        "--observations",
        "obs/y.npy",
        "--operator",
        "stride:8|select:0",
        "--noise",
        "0.4",
        "--length",
        "33",
        "--samples",
        "8",
        "--steps",
        "64",
        "--output",
        output,
    ];
    v.extend_from_slice(extra);
    v
}

/// The rms z of each candidate in a cached calibration, and the γ it chose.
fn candidates(path: &std::path::Path) -> (f64, Vec<(f64, Option<f64>)>) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let list = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["gamma"].as_f64().unwrap(), c["rms_z"].as_f64()))
        .collect();
    (v["gamma"].as_f64().unwrap(), list)
}

#[test]
fn auto_gamma_chooses_the_calibrated_candidate_once_and_reads_it_back() {
    let d = tmp("auto");
    small_prior(&d);
    // The run folder records its data folder, so no --calibration-data is needed.
    let out = ok(sda_in(&d, &assimilate("x.npy", &["--gamma", "auto"])));
    assert!(out.contains("ran now, cached in"), "{out}");
    let cache: Vec<_> = std::fs::read_dir(d.join("run/calibration"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cache.len(), 1, "{cache:?}");
    let (chosen, list) = candidates(&cache[0]);
    assert_eq!(list.len(), sda::calibrate::CANDIDATES.len());
    // The chosen one is the converged candidate whose rms z is closest to 1 in ratio.
    let best = list
        .iter()
        .filter_map(|&(g, z)| z.map(|z| (g, z.ln().abs())))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(chosen, best.0);
    assert!(
        out.contains(&format!("SDA (γ = {chosen})")),
        "the run uses the γ chosen: {out}"
    );
    // A prior trained this long and a γ that fits the validation windows: the test
    // trajectory's observations are fitted to within a factor 2 of calibrated.
    let z: f64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("rms((A(x) − y) / σ_y): "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("an rms z line");
    assert!((0.5..2.0).contains(&z), "rms z {z}: {out}");
    assert!(d.join("x.npy").exists());
    // The same run again reads the cache (no new file), and chooses the same.
    let again = ok(sda_in(&d, &assimilate("x2.npy", &["--gamma", "auto"])));
    assert!(again.contains("read from"), "{again}");
    assert_eq!(
        std::fs::read_dir(d.join("run/calibration"))
            .unwrap()
            .count(),
        1
    );
    assert!(again.contains(&format!("SDA (γ = {chosen})")), "{again}");
    // Other noise is another calibration.
    let mut other = assimilate("x3.npy", &["--gamma", "auto"]);
    other[8] = "0.8";
    ok(sda_in(&d, &other));
    assert_eq!(
        std::fs::read_dir(d.join("run/calibration"))
            .unwrap()
            .count(),
        2
    );

    // Refusals: one line, nothing written.
    let bad = |extra: &[&str], needle: &str| {
        let o = sda_in(&d, &assimilate("bad.npy", extra));
        fails_with(&o, &d.join("bad.npy"), needle);
    };
    bad(
        &["--gamma", "auto", "--calibration", "0"],
        "--calibration 0",
    );
    bad(&["--calibration", "3"], "go with --gamma auto only");
    std::fs::create_dir_all(d.join("empty")).unwrap();
    bad(
        &["--gamma", "auto", "--calibration-data", "empty"],
        "valid.npy not found",
    );
    let o = sda_in(&d, &assimilate("bad.npy", &["--gamma", "sometimes"]));
    assert!(!o.status.success() && !d.join("bad.npy").exists());
    assert!(String::from_utf8_lossy(&o.stderr).contains("neither a number nor auto"));
    bad(&["--gamma", "auto", "--likelihood", "mmps"], "--gamma");
}
