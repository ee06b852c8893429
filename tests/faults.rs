//! The fault test: `sda train`, `sda simulate` and `sda assimilate` killed with SIGKILL at
//! random (seeded) moments. After every kill, no output may be corrupt or half-written (every
//! file under its final name parses and, where the command has finished, equals the output of
//! an uninterrupted run), and finishing the run (`--resume`, or `--force` for `simulate`)
//! must give the uninterrupted run's bytes.
//!
//! `SDA_FAULT_KILLS` sets the kills per command (default 6) and `SDA_FAULT_SEED` the seed;
//! `scripts/fault-test.sh` runs a longer campaign and prints the table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod common;
use common::{ok, s, sda};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sda-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `sda args` and SIGKILLs it after `after`; returns whether it was still running.
fn kill_after(args: &[String], after: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sda"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1).min(after - t0.elapsed().min(after)));
    }
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    running
}

/// Runs `sda args` to the end; returns its wall time.
fn run(args: &[String]) -> Duration {
    let t0 = Instant::now();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(sda(&refs));
    t0.elapsed()
}

/// Why `path` is not a whole file of its kind, if it is not: `.npy` must parse, `.json` be JSON,
/// `.safetensors` have a header whose tensors fill the file exactly, `.csv` have rows of equal
/// width. Hidden files (`.name.tmpPID`, a write in progress) are not outputs.
fn corrupt(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    if name.starts_with('.') {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let why = match path.extension()?.to_str()? {
        "npy" => sda::io::read_npy(path).err().map(|e| e.to_string()),
        "json" => serde_json::from_slice::<serde_json::Value>(&bytes)
            .err()
            .map(|e| e.to_string()),
        "safetensors" => safetensors_error(&bytes),
        "csv" => {
            let text = String::from_utf8_lossy(&bytes);
            let widths: Vec<usize> = text.lines().map(|l| l.split(',').count()).collect();
            (widths.is_empty() || widths.iter().any(|w| *w != widths[0]) || !text.ends_with('\n'))
                .then(|| "ragged or empty csv".to_string())
        }
        _ => None,
    };
    why.map(|w| format!("{}: {w}", path.display()))
}

fn safetensors_error(bytes: &[u8]) -> Option<String> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header: serde_json::Value = match bytes.get(8..8 + n).map(serde_json::from_slice) {
        Some(Ok(h)) => h,
        _ => return Some("bad header".into()),
    };
    let end = header
        .as_object()?
        .iter()
        .filter_map(|(_, v)| v["data_offsets"][1].as_u64())
        .max()
        .unwrap_or(0) as usize;
    (8 + n + end != bytes.len())
        .then(|| format!("{} bytes, header says {}", bytes.len(), 8 + n + end))
}

/// Every corrupt file under `dir` (recursively).
fn corrupt_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(corrupt_files(&p));
        } else if let Some(why) = corrupt(&p) {
            out.push(why);
        }
    }
    out
}

/// Whether two files hold the same bits; for `.safetensors`, the same header (burn writes its
/// metadata keys in no fixed order) and the same tensor bytes.
fn same(a: &Path, b: &Path) -> bool {
    let (Ok(x), Ok(y)) = (std::fs::read(a), std::fs::read(b)) else {
        return false;
    };
    if a.extension().is_some_and(|e| e == "safetensors") {
        let split = |v: &[u8]| {
            let n = u64::from_le_bytes(v[..8].try_into().unwrap()) as usize;
            let h: serde_json::Value = serde_json::from_slice(&v[8..8 + n]).unwrap();
            (h, v[8 + n..].to_vec())
        };
        return split(&x) == split(&y);
    }
    x == y
}

/// One command's tally.
#[derive(Default)]
struct Tally {
    kills: usize,
    finished_before_kill: usize,
    corrupt: Vec<String>,
    resumed: usize,
    identical: usize,
}

/// When to kill a run that takes `t` uninterrupted: a random share in [0, hi) of it, or 30 % on
/// the campaign's last try when no kill has landed yet (on a loaded machine the reference run
/// may have been slow enough that every try finishes before its kill).
fn kill_time(t: Duration, hi: f64, rng: &mut StdRng, last_chance: bool) -> Duration {
    let share = rng.random_range(0.0..hi);
    t.mul_f64(if last_chance { 0.3 } else { share })
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|a| a.to_string()).collect()
}

/// Kills `simulate` (fresh folders, and over a finished data set of another seed) and runs it
/// again: the data set must be the whole old one or the whole new one, then the reference's bits.
fn simulate_campaign(d: &Path, kills: usize, rng: &mut StdRng) -> (Duration, Tally) {
    // simulate: a Lorenz-96 data set (fresh folder, or --force over a finished one).
    let sim = |out: &Path| {
        args(&[
            "simulate",
            "lorenz96",
            "--output",
            s(out),
            "--trajectories",
            "400",
            "--length",
            "200",
            "--burn-in",
            "200",
            "--force",
        ])
    };
    let reference = d.join("data");
    let t_sim = run(&sim(&reference));
    let mut tally = Tally::default();
    for k in 0..kills {
        let out = d.join(format!("sim-{k}"));
        if k % 2 == 1 {
            // Over a finished data set of another seed: the old one must not survive half-replaced.
            let mut a = sim(&out);
            a.extend(args(&["--seed", "7"]));
            run(&a);
        }
        let at = kill_time(t_sim, 1.3, rng, k + 1 == kills && tally.kills == 0);
        if kill_after(&sim(&out), at) {
            tally.kills += 1;
        } else {
            tally.finished_before_kill += 1;
        }
        tally.corrupt.extend(corrupt_files(&out));
        // A folder with system.json is a data set, and must be the whole new one or the old one.
        if out.join("system.json").exists() {
            let info: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("system.json")).unwrap()).unwrap();
            if info["seed"] == 0 {
                for f in ["train.npy", "valid.npy", "test.npy", "system.json"] {
                    if !same(&out.join(f), &reference.join(f)) {
                        tally
                            .corrupt
                            .push(format!("{}: differs", out.join(f).display()));
                    }
                }
            }
        }
        run(&sim(&out));
        tally.resumed += 1;
        if ["train.npy", "valid.npy", "test.npy", "system.json"]
            .iter()
            .all(|f| same(&out.join(f), &reference.join(f)))
        {
            tally.identical += 1;
        }
    }

    (t_sim, tally)
}

/// Kills `train` (checkpoints every 4 epochs) and resumes it with `--resume`: the run must end
/// with the reference's bits. Returns the data folder and the reference run for `assimilate`.
fn train_campaign(d: &Path, kills: usize, rng: &mut StdRng) -> (Duration, Tally, PathBuf, PathBuf) {
    // train: a small MLP, checkpoints every 4 epochs, resumed with --resume.
    let data = d.join("tdata");
    run(&args(&[
        "simulate",
        "lorenz63",
        "--output",
        s(&data),
        "--trajectories",
        "64",
        "--length",
        "64",
        "--burn-in",
        "64",
    ]));
    let train = |out: &Path| {
        args(&[
            "train",
            "--data",
            s(&data),
            "--output",
            s(out),
            "--width",
            "32",
            "--depth",
            "2",
            "--epochs",
            "120",
            "--batch-size",
            "16",
            "--checkpoint-every",
            "4",
        ])
    };
    let reference = d.join("run");
    let t_train = run(&train(&reference));
    let mut tally = Tally::default();
    let outputs = ["model.safetensors", "stats.csv", "config.json"];
    for k in 0..kills {
        let out = d.join(format!("run-{k}"));
        let at = kill_time(t_train, 1.2, rng, k + 1 == kills && tally.kills == 0);
        if kill_after(&train(&out), at) {
            tally.kills += 1;
        } else {
            tally.finished_before_kill += 1;
        }
        tally.corrupt.extend(corrupt_files(&out));
        let mut again = train(&out);
        if out.join("config.json").exists() {
            again.push("--resume".into());
        }
        run(&again);
        tally.resumed += 1;
        if outputs
            .iter()
            .all(|f| same(&out.join(f), &reference.join(f)))
        {
            tally.identical += 1;
        }
    }

    (t_train, tally, data, reference)
}

/// Kills `assimilate` (batches of 2 kept as they finish) and resumes it with `--resume`: the
/// output exists only whole and ends with the reference's bits.
fn assimilate_campaign(
    d: &Path,
    kills: usize,
    rng: &mut StdRng,
    data: &Path,
    model: &Path,
) -> (Duration, Tally) {
    // assimilate: 12 posterior samples in batches of 2, resumed with --resume.
    let obs = d.join("obs");
    run(&args(&[
        "observe",
        "--trajectories",
        s(&data.join("test.npy")),
        "--length",
        "17",
        "--operator",
        "stride:4|select:0",
        "--noise",
        "0.5",
        "--output",
        s(&obs),
    ]));
    let y = obs.join("y.npy");
    let assimilate = |out: &Path| {
        args(&[
            "assimilate",
            // The prior is trained briefly: its samples are not the point here.
            "--no-guard",
            "--model",
            s(model),
            "--observations",
            s(&y),
            "--operator",
            "stride:4|select:0",
            "--noise",
            "0.5",
            "--length",
            "17",
            "--samples",
            "12",
            "--batch",
            "2",
            "--steps",
            "256",
            "--output",
            s(out),
        ])
    };
    let reference = d.join("x.npy");
    let t_assim = run(&assimilate(&reference));
    let mut tally = Tally::default();
    for k in 0..kills {
        let out = d.join(format!("x-{k}.npy"));
        let at = kill_time(t_assim, 1.2, rng, k + 1 == kills && tally.kills == 0);
        if kill_after(&assimilate(&out), at) {
            tally.kills += 1;
        } else {
            tally.finished_before_kill += 1;
        }
        // The output exists only whole; the kept batches parse.
        if out.exists() && !same(&out, &reference) {
            tally.corrupt.push(format!("{}: differs", out.display()));
        }
        if let Some(why) = corrupt(&out) {
            tally.corrupt.push(why);
        }
        tally
            .corrupt
            .extend(corrupt_files(&d.join(format!("x-{k}.npy.parts"))));
        let mut again = assimilate(&out);
        again.push("--resume".into());
        run(&again);
        tally.resumed += 1;
        if same(&out, &reference) && !d.join(format!("x-{k}.npy.parts")).exists() {
            tally.identical += 1;
        }
    }

    (t_assim, tally)
}

#[test]
fn killed_commands_leave_no_corrupt_output_and_resume_to_the_same_bits() {
    let kills = env("SDA_FAULT_KILLS", 6) as usize;
    let mut rng = StdRng::seed_from_u64(env("SDA_FAULT_SEED", 13));
    let d = tmp("campaign");
    let mut table: BTreeMap<&str, Tally> = BTreeMap::new();
    let (t_sim, tally) = simulate_campaign(&d, kills, &mut rng);
    table.insert("simulate", tally);
    let (t_train, tally, data, model) = train_campaign(&d, kills, &mut rng);
    table.insert("train", tally);
    let (t_assim, tally) = assimilate_campaign(&d, kills, &mut rng, &data, &model);
    table.insert("assimilate", tally);

    println!(
        "| command | uninterrupted run (s) | kills | finished before the kill | corrupt outputs | resumed runs bit-identical |"
    );
    println!("|---|---|---|---|---|---|");
    let times = [
        ("simulate", t_sim),
        ("train", t_train),
        ("assimilate", t_assim),
    ];
    for (name, t) in times {
        let r = &table[name];
        println!(
            "| {name} | {:.2} | {} | {} | {} | {} of {} |",
            t.as_secs_f64(),
            r.kills,
            r.finished_before_kill,
            r.corrupt.len(),
            r.identical,
            r.resumed
        );
    }
    for (name, r) in &table {
        assert!(
            r.corrupt.is_empty(),
            "{name}: corrupt outputs {:?}",
            r.corrupt
        );
        assert_eq!(r.identical, r.resumed, "{name}: resumed runs differ");
        assert!(r.kills > 0 || kills == 0, "{name}: no kill landed");
    }
    let _ = std::fs::remove_dir_all(&d);
}
