//! Data folders of trajectories from elsewhere (`sda import`): any `(N, L, D)` vector or
//! `(N, L, C, H, W)` field arrays become `DIR/{train,valid,test}.npy` and a `system.json` of
//! `system: external`, with the normalisation (per value for vectors, per channel for fields)
//! and a record of where the data came from. Training, sampling, assimilation and evaluation
//! then work on it as on simulated data; what needs a transition density (the particle filter,
//! `log p(x)`) does not.
//!
//! [`import`] takes arrays (what a Python binding hands over); [`import_files`] reads `.npy`
//! files first. Everything is checked before anything is written, and `system.json` is written
//! last, so that a folder without it is not a data folder.

use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::{Normalisation, SystemInfo, shape_text};
use crate::error::{Error, Result};
use crate::io::{Array, read_npy_dtype, write_json, write_npy};
use crate::mcs::{External, Provenance, Source, System, checksum};
use crate::transform::{TransformSpec, Transforms};

/// The default split fractions `(train, valid, test)` of one array of trajectories.
pub const DEFAULT_SPLIT: [f64; 3] = [0.8, 0.1, 0.1];

/// One input array and what to record about it.
#[derive(Clone, Debug)]
pub struct Input {
    /// The values, float32.
    pub array: Array,
    /// Where it came from, for the record (a file path, or e.g. `numpy array`); also names the
    /// input in error messages.
    pub origin: String,
    /// Its dtype before conversion to float32 (`float32`, `float64`).
    pub dtype: String,
}

impl Input {
    /// Reads a `.npy` file (float32 or float64).
    pub fn read(path: &Path) -> Result<Self> {
        let (array, dtype) = read_npy_dtype(path)?;
        let origin = std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string();
        Ok(Self {
            array,
            origin,
            dtype: dtype.into(),
        })
    }
}

/// What to import.
#[derive(Clone, Debug)]
pub struct ImportSpec {
    /// Training trajectories, or all of them when `valid_test` is `None`.
    pub train: Input,
    /// Validation and (optionally) test trajectories, when the splits are given; without a
    /// test set the data folder has no `test.npy` (the test period is the user's).
    pub valid_test: Option<(Input, Option<Input>)>,
    /// Fractions `(train, valid, test)` of `train` when `valid_test` is `None`.
    pub split: [f64; 3],
    /// Seed of the shuffle before splitting.
    pub seed: u64,
    /// Constant context channels of field data, `(Cc, H, W)`, or none.
    pub context: Option<Input>,
    /// How a vector state is laid out (a ring needs states of one axis).
    pub layout: crate::mcs::Layout,
    /// The transforms of the channels (fields) or components (vectors), named by their index.
    pub transform: TransformSpec,
}

/// A checked import, ready to be written.
#[derive(Clone, Debug)]
pub struct Imported {
    /// `system.json`.
    pub info: SystemInfo,
    /// The three splits, float32.
    pub train: Array,
    /// Validation trajectories.
    pub valid: Array,
    /// Test trajectories.
    pub test: Array,
    /// Context channels `(Cc, H, W)`, if any.
    pub context: Option<Array>,
}

/// `[i, j, k]` of flat position `at` in an array of `shape`.
fn position(shape: &[usize], mut at: usize) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        idx[d] = at % n.max(1);
        at /= n.max(1);
    }
    idx
}

/// Fails unless every value is finite, saying how many are not and where the first is.
pub fn check_finite_at(a: &Array, what: &str) -> Result<()> {
    let count = a.non_finite();
    if count == 0 {
        return Ok(());
    }
    let first = a.data.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Err(Error::config(
        what,
        format!(
            "{count} non-finite value(s) (NaN or inf), the first at [{}] ({})",
            shape_text(&position(&a.shape, first)),
            a.data[first]
        ),
    ))
}

/// Checks that `input` holds `(N, L, D)` or `(N, L, C, H, W)` trajectories, all finite.
fn check_trajectories(input: &Input) -> Result<()> {
    let a = &input.array;
    if !matches!(a.shape.len(), 3 | 5) || a.shape.contains(&0) {
        return Err(Error::Shape {
            what: input.origin.clone(),
            expected: "(N, L, D) vectors or (N, L, C, H, W) fields, no empty axis".into(),
            got: a.shape.clone(),
        });
    }
    check_finite_at(a, &input.origin)
}

/// Trajectories `rows` of `a` (`(N, L, …)`), in that order.
fn take(a: &Array, rows: &[usize]) -> Array {
    let per = a.data.len() / a.shape[0];
    let mut data = Vec::with_capacity(rows.len() * per);
    for &r in rows {
        data.extend_from_slice(&a.data[r * per..(r + 1) * per]);
    }
    let mut shape = a.shape.clone();
    shape[0] = rows.len();
    Array::new(shape, data)
}

/// How many trajectories of `n` go to `(train, valid, test)`: valid and test get their
/// fraction rounded (at least one each), train the rest.
pub fn split_counts(n: usize, split: [f64; 3]) -> Result<[usize; 3]> {
    let bad = |reason: String| Error::config("--split", reason);
    if split.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
        return Err(bad(format!(
            "fractions must be positive, got {},{},{}",
            split[0], split[1], split[2]
        )));
    }
    let total: f64 = split.iter().sum();
    if (total - 1.0).abs() > 1e-6 {
        return Err(bad(format!("fractions must sum to 1, got {total}")));
    }
    if n < 3 {
        return Err(Error::config(
            "--train",
            format!("{n} trajectories cannot be split into train, valid and test (at least 3)"),
        ));
    }
    let part = |f: f64| ((n as f64 * f).round() as usize).max(1);
    let (valid, test) = (part(split[1]), part(split[2]));
    if valid + test >= n {
        return Err(bad(format!(
            "{n} trajectories leave none for training with fractions {},{},{}",
            split[0], split[1], split[2]
        )));
    }
    Ok([n - valid - test, valid, test])
}

/// The normalisation of training data: per value for vectors `(N, L, D)`, per channel for
/// fields `(N, L, C, H, W)` (every grid point of a channel shares its mean and scale).
pub fn normalisation(train: &Array) -> Normalisation {
    let state = &train.shape[2..];
    let f: usize = state.iter().product();
    if state.len() != 3 {
        return Normalisation::fit(&train.data, f);
    }
    let (c, hw) = (state[0], state[1] * state[2]);
    // A channel's values are the contiguous runs of hw values at c-th position in each state.
    let channels: Vec<f32> = {
        let mut out = Vec::with_capacity(train.data.len());
        for ch in 0..c {
            for s in train.data.chunks(f) {
                out.extend_from_slice(&s[ch * hw..(ch + 1) * hw]);
            }
        }
        out
    };
    let per = channels.len() / c;
    let (mut mean, mut scale) = (Vec::with_capacity(f), Vec::with_capacity(f));
    for ch in 0..c {
        let n = Normalisation::fit(&channels[ch * per..(ch + 1) * per], 1);
        mean.extend(std::iter::repeat_n(n.mean[0], hw));
        scale.extend(std::iter::repeat_n(n.scale[0], hw));
    }
    Normalisation { mean, scale }
}

fn source(role: &str, input: &Input, stored: &Array) -> Source {
    Source {
        role: role.into(),
        origin: input.origin.clone(),
        dtype: input.dtype.clone(),
        shape: input.array.shape.clone(),
        checksum: checksum(&stored.data),
    }
}

/// The transforms of `spec`, its channels (fields) or components (vectors) named `0`, `1`, …,
/// with every value of every input checked against them.
fn transforms_of(spec: &ImportSpec, state: &[usize]) -> Result<Transforms> {
    let names: Vec<String> = (0..state[0]).map(|i| i.to_string()).collect();
    let transforms = spec.transform.resolve(&names)?;
    if spec.layout == crate::mcs::Layout::Ring
        && transforms
            .0
            .windows(2)
            .any(|w| w[0].transform != w[1].transform)
    {
        return Err(Error::config(
            "--transform",
            "--layout ring shares one network along the ring: give one transform for all",
        ));
    }
    let f: usize = state.iter().product();
    let mut inputs = vec![&spec.train];
    if let Some((v, t)) = &spec.valid_test {
        inputs.push(v);
        inputs.extend(t);
    }
    for input in inputs {
        let shape = &input.array.shape;
        transforms.check(&input.array.data, f, &input.origin, |k| {
            format!("[{}]", shape_text(&position(shape, k)))
        })?;
    }
    Ok(transforms)
}

/// Checks an import and builds its splits and `system.json`, writing nothing.
///
/// # Errors
/// Arrays that are not `(N, L, D)` or `(N, L, C, H, W)`, NaN or inf (how many, and where the
/// first is), state shapes that differ between splits, fewer than 3 trajectories (or an empty
/// split), split fractions that are not positive or do not sum to 1, a context that is not
/// `(Cc, H, W)` of the fields' grid or is given for vectors.
pub fn prepare(spec: &ImportSpec) -> Result<Imported> {
    check_trajectories(&spec.train)?;
    let state = spec.train.array.shape[2..].to_vec();
    if spec.layout == crate::mcs::Layout::Ring && state.len() != 1 {
        return Err(Error::config(
            "--layout ring",
            format!(
                "needs states of one axis (a periodic 1-D grid); {} has states of shape ({})",
                spec.train.origin,
                shape_text(&state)
            ),
        ));
    }
    let transforms = transforms_of(spec, &state)?;
    let (train, valid, test, split) = splits(spec, &state)?;
    let context = context_of(spec, &state)?;
    let mut sources = vec![source("train", &spec.train, &spec.train.array)];
    if let Some((v, t)) = &spec.valid_test {
        sources.push(source("valid", v, &v.array));
        if let Some(t) = t {
            sources.push(source("test", t, &t.array));
        }
    }
    if let (Some(input), Some(c)) = (&spec.context, &context) {
        sources.push(source("context", input, c));
    }
    let counts = [train.shape[0], valid.shape[0], test.shape[0]];
    // Fitted to the transformed training values: what the networks see.
    let normalisation = {
        let mut z = train.clone();
        transforms.forward(&mut z.data, state.iter().product());
        normalisation(&z).for_layout(spec.layout)
    };
    let info = SystemInfo {
        system: System::External(External {
            state_shape: state.clone(),
            context_channels: context.as_ref().map_or(0, |c| c.shape[0]),
            provenance: Provenance {
                sources,
                split,
                seed: spec.seed,
                trajectories: counts,
            },
            record: None,
            layout: spec.layout,
        }),
        state_shape: state,
        normalisation,
        trajectories: counts.iter().sum(),
        length: train.shape[1],
        burn_in: 0,
        seed: spec.seed,
        transforms,
    };
    Ok(Imported {
        info,
        train,
        valid,
        test,
        context,
    })
}

/// The train, validation and test splits of an import, and the fractions they were drawn with
/// (`None`: given as files).
fn splits(spec: &ImportSpec, state: &[usize]) -> Result<(Array, Array, Array, Option<[f64; 3]>)> {
    Ok(match &spec.valid_test {
        Some((v, t)) => {
            for input in std::iter::once(v).chain(t.as_ref()) {
                check_trajectories(input)?;
                if input.array.shape[2..] != state[..] {
                    return Err(Error::config(
                        &input.origin,
                        format!(
                            "states of shape ({}) differ from the training states' ({})",
                            shape_text(&input.array.shape[2..]),
                            shape_text(state)
                        ),
                    ));
                }
            }
            let needed = 2 + usize::from(t.is_some());
            let n = spec.train.array.shape[0]
                + v.array.shape[0]
                + t.as_ref().map_or(0, |t| t.array.shape[0]);
            if n < needed {
                return Err(Error::config(
                    &spec.train.origin,
                    format!("fewer than {needed} trajectories in all (at least one per split)"),
                ));
            }
            let test = match t {
                Some(t) => t.array.clone(),
                None => {
                    let mut shape = v.array.shape.clone();
                    shape[0] = 0;
                    Array::new(shape, Vec::new())
                }
            };
            (spec.train.array.clone(), v.array.clone(), test, None)
        }
        None => {
            let a = &spec.train.array;
            let [nt, nv, _] = split_counts(a.shape[0], spec.split).map_err(|e| match e {
                Error::Config { name, reason } if name == "--train" => {
                    Error::config(&spec.train.origin, reason)
                }
                e => e,
            })?;
            let mut order: Vec<usize> = (0..a.shape[0]).collect();
            order.shuffle(&mut StdRng::seed_from_u64(spec.seed));
            (
                take(a, &order[..nt]),
                take(a, &order[nt..nt + nv]),
                take(a, &order[nt + nv..]),
                Some(spec.split),
            )
        }
    })
}

/// The context channels of an import, checked against the fields' grid.
fn context_of(spec: &ImportSpec, state: &[usize]) -> Result<Option<Array>> {
    Ok(match &spec.context {
        None => None,
        Some(input) => {
            let a = &input.array;
            if state.len() != 3 {
                return Err(Error::config(
                    &input.origin,
                    "context channels are for field data (N, L, C, H, W), not vectors",
                ));
            }
            if a.shape.len() != 3 || a.shape[1..] != state[1..] || a.shape[0] == 0 {
                return Err(Error::Shape {
                    what: input.origin.clone(),
                    expected: format!("(Cc, {}, {}) context channels", state[1], state[2]),
                    got: a.shape.clone(),
                });
            }
            check_finite_at(a, &input.origin)?;
            Some(a.clone())
        }
    })
}

/// Checks an import and writes the data folder `dir`: `train.npy`, `valid.npy`, `test.npy`,
/// `context.npy` (when given), then `system.json`.
pub fn import(dir: &Path, spec: &ImportSpec) -> Result<SystemInfo> {
    let imported = prepare(spec)?;
    write_npy(&dir.join("train.npy"), &imported.train)?;
    write_npy(&dir.join("valid.npy"), &imported.valid)?;
    if imported.test.shape[0] > 0 {
        write_npy(&dir.join("test.npy"), &imported.test)?;
    } else if let Err(e) = std::fs::remove_file(dir.join("test.npy"))
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(Error::Io {
            path: dir.join("test.npy"),
            source: e,
        });
    }
    if let Some(c) = &imported.context {
        write_npy(&dir.join("context.npy"), c)?;
    }
    write_json(&dir.join("system.json"), &imported.info)?;
    Ok(imported.info)
}

/// [`import`] from `.npy` files: `valid` (with or without `test`) or neither (then `split`, by
/// default [`DEFAULT_SPLIT`], divides `train` after a shuffle seeded by `seed`).
#[allow(clippy::too_many_arguments)]
pub fn import_files(
    dir: &Path,
    train: &Path,
    valid_test: Option<(&Path, Option<&Path>)>,
    split: Option<[f64; 3]>,
    seed: u64,
    context: Option<&Path>,
    layout: crate::mcs::Layout,
    transform: TransformSpec,
) -> Result<SystemInfo> {
    let spec = ImportSpec {
        train: Input::read(train)?,
        valid_test: match valid_test {
            Some((v, t)) => Some((Input::read(v)?, t.map(Input::read).transpose()?)),
            None => None,
        },
        split: split.unwrap_or(DEFAULT_SPLIT),
        seed,
        context: context.map(Input::read).transpose()?,
        layout,
        transform,
    };
    import(dir, &spec)
}

/// Reads the context channels of a data folder, `(Cc, H, W)`, if its system has any.
pub fn read_context(dir: &Path, info: &SystemInfo) -> Result<Option<Array>> {
    match &info.system {
        System::External(e) if e.context_channels > 0 => {
            let path = dir.join("context.npy");
            let a = crate::io::read_npy(&path)?;
            let s = &info.state_shape;
            if a.shape.len() != 3 || a.shape[0] != e.context_channels || a.shape[1..] != s[1..] {
                return Err(Error::Shape {
                    what: path.display().to_string(),
                    expected: format!("({}, {}, {})", e.context_channels, s[1], s[2]),
                    got: a.shape,
                });
            }
            Ok(Some(a))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(shape: Vec<usize>, f: impl Fn(usize) -> f32) -> Input {
        let n: usize = shape.iter().product();
        Input {
            array: Array::new(shape, (0..n).map(f).collect()),
            origin: "x.npy".into(),
            dtype: "float64".into(),
        }
    }

    fn spec(train: Input) -> ImportSpec {
        ImportSpec {
            train,
            valid_test: None,
            split: DEFAULT_SPLIT,
            seed: 3,
            context: None,
            layout: crate::mcs::Layout::Vector,
            transform: TransformSpec::All(crate::transform::Transform::None),
        }
    }

    #[test]
    fn splits_are_a_seeded_permutation_of_the_trajectories() {
        // Trajectory r holds the value r everywhere: each must land in exactly one split.
        let n = 20;
        let imp = prepare(&spec(input(vec![n, 4, 2], |k| (k / 8) as f32))).unwrap();
        assert_eq!(
            [imp.train.shape[0], imp.valid.shape[0], imp.test.shape[0]],
            [16, 2, 2]
        );
        let mut seen: Vec<f32> = [&imp.train, &imp.valid, &imp.test]
            .iter()
            .flat_map(|a| a.data.chunks(8).map(|c| c[0]))
            .collect();
        let in_order: Vec<f32> = seen.clone();
        seen.sort_by(f32::total_cmp);
        assert_eq!(seen, (0..n).map(|r| r as f32).collect::<Vec<_>>());
        assert_ne!(in_order, seen, "the split shuffles");
        let again = prepare(&spec(input(vec![n, 4, 2], |k| (k / 8) as f32))).unwrap();
        assert_eq!(again.test, imp.test);
        assert_eq!(imp.info.length, 4);
        assert_eq!(imp.info.trajectories, 20);
    }

    #[test]
    fn normalisation_is_per_value_for_vectors_and_per_channel_for_fields() {
        // Vectors: component 0 is 1 or 3 (mean 2, std 1), component 1 is 10 everywhere.
        let v = input(vec![4, 2, 2], |k| {
            if k % 2 == 0 {
                1.0 + 2.0 * ((k / 2) % 2) as f32
            } else {
                10.0
            }
        });
        let n = normalisation(&v.array);
        assert_eq!(n.mean, vec![2.0, 10.0]);
        assert!((n.scale[0] - 1.0).abs() < 1e-12 && n.scale[1] < 1e-5);
        // Fields (C = 2, 2 × 2 grid): channel 0 holds 0, 1, 2, 3 at its four points, channel
        // 1 holds 5: one mean and scale per channel, repeated over the grid.
        let f = input(vec![3, 2, 2, 2, 2], |k| {
            if (k / 4) % 2 == 0 {
                (k % 4) as f32
            } else {
                5.0
            }
        });
        let n = normalisation(&f.array);
        assert_eq!(n.mean, vec![1.5, 1.5, 1.5, 1.5, 5.0, 5.0, 5.0, 5.0]);
        let std = (1.25f64).sqrt();
        assert!(
            n.scale[..4].iter().all(|s| (s - std).abs() < 1e-9),
            "{:?}",
            n.scale
        );
    }

    #[test]
    fn bad_inputs_are_refused_with_what_and_where() {
        let nan = input(vec![5, 3, 2], |k| {
            if k == 13 || k == 20 { f32::NAN } else { 0.0 }
        });
        let e = prepare(&spec(nan)).unwrap_err().to_string();
        assert!(e.contains("2 non-finite") && e.contains("[2, 0, 1]"), "{e}");
        let e = prepare(&spec(input(vec![2, 3, 2], |_| 0.0)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2 trajectories") && e.contains("at least 3"),
            "{e}"
        );
        let e = prepare(&spec(input(vec![5, 3], |_| 0.0)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("(N, L, D)"), "{e}");
        let mut s = spec(input(vec![5, 3, 2], |_| 0.0));
        s.valid_test = Some((
            input(vec![2, 3, 2], |_| 0.0),
            Some(input(vec![2, 3, 3], |_| 0.0)),
        ));
        let e = prepare(&s).unwrap_err().to_string();
        assert!(e.contains("(3) differ") && e.contains("(2)"), "{e}");
        let mut s = spec(input(vec![10, 3, 2], |_| 0.0));
        s.split = [0.5, 0.5, 0.5];
        assert!(prepare(&s).unwrap_err().to_string().contains("sum to 1"));
        let mut s = spec(input(vec![10, 3, 2], |_| 0.0));
        s.context = Some(input(vec![1, 4, 4], |_| 0.0));
        assert!(prepare(&s).unwrap_err().to_string().contains("field data"));
        let mut s = spec(input(vec![10, 3, 2, 4, 4], |_| 0.0));
        s.context = Some(input(vec![1, 4, 5], |_| 0.0));
        assert!(prepare(&s).unwrap_err().to_string().contains("(Cc, 4, 4)"));
    }

    #[test]
    fn import_writes_a_data_folder_that_loads() {
        let dir = std::env::temp_dir().join(format!("sda-import-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = spec(input(vec![6, 5, 3], |k| (k as f32 * 0.7).sin()));
        s.valid_test = Some((
            input(vec![2, 7, 3], |k| k as f32),
            Some(input(vec![1, 9, 3], |k| -(k as f32))),
        ));
        let info = import(&dir, &s).unwrap();
        let data = crate::data::Dataset::load(&dir).unwrap();
        assert_eq!(data.info, info);
        assert_eq!(
            data.train, s.train.array,
            "given splits are stored unshuffled"
        );
        assert_eq!(data.valid.shape, vec![2, 7, 3]);
        let test = crate::io::read_npy(&dir.join("test.npy")).unwrap();
        assert_eq!(test.data[4], -4.0);
        let System::External(e) = &info.system else {
            panic!("external")
        };
        assert_eq!(e.provenance.sources.len(), 3);
        assert_eq!(
            e.provenance.sources[0].checksum,
            checksum(&s.train.array.data)
        );
        assert_eq!(e.provenance.trajectories, [6, 2, 1]);
        let json = std::fs::read_to_string(dir.join("system.json")).unwrap();
        assert!(json.contains("\"name\": \"external\""), "{json}");
        let e = info.system.chain().err().expect("no chain").to_string();
        assert!(e.contains("no transition density"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
