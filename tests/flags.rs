//! Flags renamed so that a name means one thing in every subcommand keep their old spelling
//! for one release (hidden from `--help`), and the new names parse. Each command line ends in
//! `--help`: clap reads the flags before it, so an unknown one fails and a known one prints the
//! help and succeeds.

use std::process::Command;

fn parses(args: &[&str]) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_sda"))
        .args(args)
        .arg("--help")
        .output()
        .expect("sda runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// (subcommand words, old spelling with a value, new spelling with a value).
const RENAMED: &[(&[&str], &[&str], &[&str])] = &[
    (
        &["simulate", "lorenz96"],
        &["--noise", "0"],
        &["--process-noise", "0"],
    ),
    (&["observe"], &["--trajectories", "x.npy"], &["x.npy"]),
    (&["evaluate"], &["--samples", "x.npy"], &["x.npy"]),
    (
        &["evaluate", "--observations", "y.npy"],
        &["--hidden"],
        &["--unobserved"],
    ),
    (
        &["import"],
        &["--context", "c.npy"],
        &["--context-fields", "c.npy"],
    ),
    (&["train"], &["--preset", "reduced"], &["--unet", "reduced"]),
    (&["bench"], &["--preset", "reduced"], &["--unet", "reduced"]),
    (&["bench"], &["--steps", "2"], &["--train-steps", "2"]),
    (&["bench"], &["--states", "5,8"], &["--lengths", "5,8"]),
    (&["bench"], &["--precision", "f16"], &["--dtype", "f16"]),
    (
        &["filter"],
        &["--iterations", "3"],
        &["--newton-iterations", "3"],
    ),
    (&["filter"], &["--batch", "2"], &["--block", "2"]),
    (
        &["plot", "vorticity", "x.npy"],
        &["--reference", "t.npy"],
        &["--truth", "t.npy"],
    ),
    (
        &["plot", "vorticity", "x.npy", "--truth", "t.npy"],
        &["--reference-index", "1"],
        &["--truth-index", "1"],
    ),
    (
        &["plot", "vorticity", "x.npy"],
        &["--mask", "m.npy"],
        &["--observed", "m.npy"],
    ),
    (
        &["plot", "vorticity", "x.npy"],
        &["--stations", "s.npy"],
        &["--points", "s.npy"],
    ),
    (
        &["slurm", "submit"],
        &["--time", "30"],
        &["--time-limit", "30"],
    ),
];

#[test]
fn renamed_flags_parse_under_their_new_and_their_old_names() {
    let mut failed = Vec::new();
    for (cmd, old, new) in RENAMED {
        for spelling in [old, new] {
            let args = [&cmd[..], &spelling[..]].concat();
            if let Err(e) = parses(&args) {
                failed.push(format!("sda {}: {e}", args.join(" ")));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn an_unknown_flag_fails_the_same_check() {
    // The check above must be able to fail: a flag no command has is refused before --help.
    let e = parses(&["bench", "--no-such-flag", "2"]).unwrap_err();
    assert!(e.contains("--no-such-flag"), "{e}");
    // And an old name is not taken where it was never one: `assimilate --process-noise`.
    assert!(parses(&["assimilate", "--process-noise", "0"]).is_err());
}

#[test]
fn old_spellings_are_hidden_from_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_sda"))
        .args(["bench", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--train-steps") && help.contains("--dtype"),
        "{help}"
    );
    for old in ["--steps <", "--states <", "--precision <", "--preset <"] {
        assert!(!help.contains(old), "{old} shown in:\n{help}");
    }
}
