//! `sda bench` on the CPU at test size: the same code path a GPU run takes (only the device
//! differs), checked for every field of its JSON output. Tests never time, so speeds are only
//! checked present and finite; what the timed networks compute is checked against each other.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_sda"))
        .arg("bench")
        .args(args)
        .output()
        .expect("sda runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn positive(v: &Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"));
    assert!(x.is_finite() && x > 0.0, "{key} = {x} in {v}");
    x
}

fn device_fields(v: &Value) {
    assert_eq!(v["device"], "cpu");
    assert!(v["device_name"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(v["precision"], "f32");
    positive(v, "threads");
    positive(v, "train_steps_per_s");
}

#[test]
fn unet_bench_reports_every_figure_finite() {
    let out = bench(&[
        "--network",
        "unet",
        "--preset",
        "reduced",
        "--size",
        "16",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--repeats",
        "1",
        "--states",
        "5,8",
        "--sampler-steps",
        "4",
        "--json",
    ]);
    assert_eq!(out.len(), 1);
    let v = &out[0];
    assert_eq!(v["network"], "unet");
    assert_eq!(v["size"], 16);
    device_fields(v);
    let guided = v["guided"].as_array().expect("guided rows");
    let states: Vec<u64> = guided
        .iter()
        .map(|r| r["states"].as_u64().unwrap())
        .collect();
    assert_eq!(states, [5, 8]);
    for row in guided {
        positive(row, "guided_eval_ms");
        positive(row, "forward_ms");
    }
    let a = &v["assimilation"];
    assert_eq!(
        (a["states"].as_u64(), a["steps"].as_u64()),
        (Some(8), Some(4))
    );
    positive(a, "seconds");
    // The sampler's output stays finite even from an untrained network.
    assert_eq!(a["finite"], true);
}

#[test]
fn lorenz_bench_keeps_its_flat_fields_and_adds_one_row_per_batch() {
    let out = bench(&[
        "--steps",
        "2",
        "--warmup",
        "1",
        "--repeats",
        "1",
        "--trajectories",
        "2,3",
        "--length",
        "9",
        "--json",
    ]);
    assert_eq!(out.len(), 1);
    let v = &out[0];
    assert_eq!(v["network"], "lorenz");
    device_fields(v);
    for key in [
        "guided_eval_ms",
        "forward_ms",
        "fused_guided_eval_ms",
        "fused_forward_ms",
    ] {
        positive(v, key);
    }
    let rows = v["guided"].as_array().expect("guided rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["trajectories"], 3);
    assert_eq!(rows[1]["length"], 9);
    // The timed fused network computes burn's guided ε̂ (float32 rounding apart); its bf16 twin,
    // where the CPU has it, differs by bfloat16 rounding: the bf16 path is the one timed.
    for row in rows {
        let f32_diff = row["fused_rel_diff"].as_f64().expect("fused_rel_diff");
        assert!(f32_diff < 1e-4, "fused vs burn: {f32_diff} in {row}");
        if sda::nn::bf16::available() {
            let bf16_diff = row["fused_bf16_rel_diff"]
                .as_f64()
                .expect("fused_bf16_rel_diff");
            assert!(
                bf16_diff > 1e-6 && bf16_diff < 5e-2,
                "bf16 vs burn: {bf16_diff} in {row}"
            );
        }
    }
}

#[test]
fn bench_refuses_a_grid_that_block_means_cannot_cover() {
    let out = Command::new(env!("CARGO_BIN_EXE_sda"))
        .args(["bench", "--network", "unet", "--size", "12"])
        .output()
        .expect("sda runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--size 12"));
}
