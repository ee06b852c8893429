//! Transforms of positive or bounded quantities (`sda import --transform`): the model learns
//! `z = g(y)` instead of the physical value `y`, so that its samples, mapped back by `g⁻¹`,
//! stay where the quantity lives.
//!
//! | transform | `z = g(y)` | domain of `y` | `y = g⁻¹(z)` | `g'(y)` |
//! |---|---|---|---|---|
//! | `none` | `y` | any | `z` | 1 |
//! | `sqrt` | `√y` | `y ≥ 0` | `max(z, 0)²` | `1 / (2√y)` |
//! | `log` | `ln y` | `y > 0` | `exp z` | `1 / y` |
//! | `log:C` | `ln(y + C)` | `y ≥ 0` | `max(exp z − C, 0)` | `1 / (y + C)` |
//! | `logit` | `ln(y / (1 − y))` | `0 < y < 1` | `1 / (1 + exp(−z))` | `1 / (y (1 − y))` |
//!
//! A data set's transforms are one per variable (one per channel of fields, per component of
//! vectors, per variable of a record), recorded in `system.json`. Training data is transformed
//! before the normalisation is fitted and applied; observations of the state's values are
//! transformed with their noise std mapped to first order, `σ_z = |g'(y)| σ_y` (see
//! [`Transform::std`]); every sample is mapped back by `g⁻¹` before it is returned.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The transform of one variable.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Transform {
    /// The value itself.
    #[default]
    None,
    /// `√y`, for `y ≥ 0`.
    Sqrt,
    /// `ln(y + offset)`: `y > 0` with offset 0, `y ≥ 0` with a positive offset.
    Log {
        /// The offset `C ≥ 0` added before the logarithm (for quantities with zeros).
        offset: f64,
    },
    /// `ln(y / (1 − y))`, for `0 < y < 1`.
    Logit,
}

impl std::str::FromStr for Transform {
    type Err = String;

    /// `none`, `sqrt`, `log`, `log:C` (C > 0) or `logit`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "none" => Ok(Self::None),
            "sqrt" => Ok(Self::Sqrt),
            "log" => Ok(Self::Log { offset: 0.0 }),
            "logit" => Ok(Self::Logit),
            t => match t.strip_prefix("log:") {
                Some(c) => match c.trim().parse::<f64>() {
                    Ok(c) if c > 0.0 && c.is_finite() => Ok(Self::Log { offset: c }),
                    _ => Err(format!(
                        "'{t}': the offset of log:C must be a positive number, e.g. log:0.1"
                    )),
                },
                None => Err(format!(
                    "'{t}' is not a transform: none, sqrt, log, log:C (ln(y + C)) or logit"
                )),
            },
        }
    }
}

impl std::fmt::Display for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Sqrt => f.write_str("sqrt"),
            Self::Log { offset } if *offset == 0.0 => f.write_str("log"),
            Self::Log { offset } => write!(f, "log:{offset}"),
            Self::Logit => f.write_str("logit"),
        }
    }
}

impl Serialize for Transform {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Transform {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Transform {
    /// `z = g(y)`.
    pub fn forward(&self, y: f64) -> f64 {
        match *self {
            Self::None => y,
            Self::Sqrt => y.sqrt(),
            Self::Log { offset } => (y + offset).ln(),
            Self::Logit => (y / (1.0 - y)).ln(),
        }
    }

    /// `y = g⁻¹(z)`, defined for every `z`: `sqrt` and `log:C` clip at 0, the boundary of their
    /// domain.
    pub fn inverse(&self, z: f64) -> f64 {
        match *self {
            Self::None => z,
            Self::Sqrt => z.max(0.0).powi(2),
            Self::Log { offset: 0.0 } => z.exp(),
            Self::Log { offset } => (z.exp() - offset).max(0.0),
            Self::Logit => 1.0 / (1.0 + (-z).exp()),
        }
    }

    /// `g'(y)`.
    pub fn derivative(&self, y: f64) -> f64 {
        match *self {
            Self::None => 1.0,
            Self::Sqrt => 0.5 / y.sqrt(),
            Self::Log { offset } => 1.0 / (y + offset),
            Self::Logit => 1.0 / (y * (1.0 - y)),
        }
    }

    /// The noise std of `z = g(y)` for a measurement `y` of noise std `σ`, to first order:
    /// `|g'(y)| σ`. It is accurate while `σ` is small against the distance from `y` to the
    /// boundary of the domain (`y` for `sqrt` and `log`, `y + C` for `log:C`, `min(y, 1 − y)`
    /// for `logit`), and too small where `y` lies within about `σ` of it.
    pub fn std(&self, y: f64, sigma: f64) -> f64 {
        self.derivative(y).abs() * sigma
    }

    /// Why `y` lies outside the domain, or `None` where it is inside (NaN, a missing value,
    /// is left alone).
    pub fn outside(&self, y: f64) -> Option<&'static str> {
        if y.is_nan() {
            return None;
        }
        match *self {
            Self::None => None,
            Self::Sqrt if y < 0.0 => Some("sqrt needs values ≥ 0"),
            Self::Log { offset } if offset == 0.0 && y <= 0.0 => Some(
                "log needs values > 0; for a quantity with zeros use log:C, ln(y + C) with C > 0, \
                 e.g. log:0.1",
            ),
            Self::Log { offset } if offset > 0.0 && y < 0.0 => Some("log:C needs values ≥ 0"),
            Self::Logit if !(y > 0.0 && y < 1.0) => Some(
                "logit needs values strictly between 0 and 1; rescale a bounded quantity to \
                 (0, 1) first",
            ),
            _ => None,
        }
    }

    /// Whether this is `none`.
    pub fn is_none(&self) -> bool {
        *self == Self::None
    }
}

/// The transform of one named variable, as `system.json` records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Named {
    /// The variable: its name in a record, or the index of a channel (fields) or component
    /// (vectors) of imported arrays.
    pub name: String,
    /// Its transform.
    pub transform: Transform,
}

/// The transforms of a data set, one per variable; the state's values of variable `i` are the
/// `i`-th of as many equal runs (a channel of a field, the stations of a record's variable, a
/// component of a vector). None at all: every value is its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Transforms(pub Vec<Named>);

/// `--transform`: one transform for every variable, or `NAME=T` for some.
#[derive(Clone, Debug, PartialEq)]
pub enum TransformSpec {
    /// The same for every variable.
    All(Transform),
    /// `NAME=T` pairs; the variables not named keep `none`.
    Each(Vec<(String, Transform)>),
}

impl Default for TransformSpec {
    /// No transform (`none` for every variable).
    fn default() -> Self {
        Self::All(Transform::None)
    }
}

impl TransformSpec {
    /// Parses the items of `--transform`: `T` alone, or `NAME=T` items (`UWND=none,SPEED=sqrt`).
    pub fn parse(items: &[String]) -> Result<Self> {
        let bad = |reason: String| Error::config("--transform", reason);
        match items {
            [] => Ok(Self::All(Transform::None)),
            [one] if !one.contains('=') => one.parse().map(Self::All).map_err(bad),
            _ => items
                .iter()
                .map(|item| {
                    let (name, t) = item.split_once('=').ok_or_else(|| {
                        bad(format!(
                            "'{item}': give one transform for all (e.g. log) or NAME=T for each, \
                             e.g. UWND=none,SPEED=sqrt"
                        ))
                    })?;
                    Ok((name.trim().to_string(), t.parse().map_err(bad)?))
                })
                .collect::<Result<Vec<_>>>()
                .map(Self::Each),
        }
    }

    /// The transforms of variables `names`, in their order.
    ///
    /// # Errors
    /// A name that is not a variable, or one given twice.
    pub fn resolve(&self, names: &[String]) -> Result<Transforms> {
        let list = match self {
            Self::All(t) if t.is_none() => return Ok(Transforms::default()),
            Self::All(t) => names
                .iter()
                .map(|n| Named {
                    name: n.clone(),
                    transform: *t,
                })
                .collect(),
            Self::Each(pairs) => {
                for (k, (name, _)) in pairs.iter().enumerate() {
                    if !names.contains(name) {
                        return Err(Error::config(
                            "--transform",
                            format!(
                                "no variable '{name}'; the variables are: {}",
                                names.join(", ")
                            ),
                        ));
                    }
                    if pairs[..k].iter().any(|(n, _)| n == name) {
                        return Err(Error::config(
                            "--transform",
                            format!("'{name}' is given twice"),
                        ));
                    }
                }
                names
                    .iter()
                    .map(|n| Named {
                        name: n.clone(),
                        transform: pairs
                            .iter()
                            .find(|(p, _)| p == n)
                            .map_or(Transform::None, |(_, t)| *t),
                    })
                    .collect()
            }
        };
        let t = Transforms(list);
        Ok(if t.is_identity() {
            Transforms::default()
        } else {
            t
        })
    }
}

impl Transforms {
    /// Whether every value is its own (no transform, or only `none`).
    pub fn is_identity(&self) -> bool {
        self.0.iter().all(|n| n.transform.is_none())
    }

    /// The transform of each of the `features` values of a state.
    pub fn per_value(&self, features: usize) -> Vec<Transform> {
        let n = self.0.len();
        if n == 0 || features == 0 {
            return vec![Transform::None; features];
        }
        assert_eq!(features % n, 0, "a state holds equal runs per variable");
        let run = features / n;
        (0..features).map(|j| self.0[j / run].transform).collect()
    }

    /// The variable of value `j` of a state of `features` values, and its transform.
    pub fn of_value(&self, j: usize, features: usize) -> Option<&Named> {
        let n = self.0.len();
        (n > 0).then(|| &self.0[j / (features / n)])
    }

    /// The transforms in words: `SPEED=log, UWND=none`.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|n| format!("{}={}", n.name, n.transform))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks that every value of `data` (`(…, F)` with `features` values per state; NaN
    /// skipped) lies in its variable's domain; `position(k)` names flat position `k` of `data`
    /// in messages.
    ///
    /// # Errors
    /// The first value outside: `what`, the variable, the value, where and why.
    pub fn check<T: Copy + Into<f64>>(
        &self,
        data: &[T],
        features: usize,
        what: &str,
        position: impl Fn(usize) -> String,
    ) -> Result<()> {
        if self.is_identity() {
            return Ok(());
        }
        let per = self.per_value(features);
        for (k, &v) in data.iter().enumerate() {
            let y: f64 = v.into();
            let t = per[k % features];
            if let Some(why) = t.outside(y) {
                let name = &self.of_value(k % features, features).expect("some").name;
                return Err(Error::config(
                    what,
                    format!(
                        "variable {name} (--transform {name}={t}): value {y} at {}: {why}",
                        position(k)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `z = g(y)` of every value of states of `features` values (`x` is `(…, F)`), in place.
    pub fn forward(&self, x: &mut [f32], features: usize) {
        self.map_states(x, features, Transform::forward);
    }

    /// `y = g⁻¹(z)` of every value of states of `features` values, in place.
    pub fn inverse(&self, x: &mut [f32], features: usize) {
        self.map_states(x, features, Transform::inverse);
    }

    fn map_states(&self, x: &mut [f32], features: usize, f: fn(&Transform, f64) -> f64) {
        if self.is_identity() || features == 0 {
            return;
        }
        let per = self.per_value(features);
        for row in x.chunks_mut(features) {
            for (v, t) in row.iter_mut().zip(&per) {
                if !t.is_none() {
                    *v = f(t, *v as f64) as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_transform_inverts_and_its_std_is_the_derivative_times_sigma() {
        let cases = [
            (Transform::Sqrt, 2.25, 1.5, 1.0 / 3.0),
            (Transform::Log { offset: 0.0 }, 4.0, 4f64.ln(), 0.25),
            (Transform::Log { offset: 0.5 }, 1.5, 2f64.ln(), 0.5),
            (Transform::Logit, 0.2, (0.25f64).ln(), 1.0 / 0.16),
        ];
        for (t, y, z, d) in cases {
            assert!((t.forward(y) - z).abs() < 1e-12, "{t} forward");
            assert!((t.inverse(z) - y).abs() < 1e-12, "{t} inverse");
            assert!((t.derivative(y) - d).abs() < 1e-12, "{t} derivative");
            assert!((t.std(y, 0.1) - 0.1 * d).abs() < 1e-12, "{t} std");
            // The derivative is the slope of g: a central difference agrees.
            let h = 1e-6;
            let fd = (t.forward(y + h) - t.forward(y - h)) / (2.0 * h);
            assert!((fd - d).abs() < 1e-6 * d.max(1.0), "{t}: {fd} vs {d}");
        }
        // The inverses stay in the domain for every z.
        for z in [-30.0, -1.0, 0.0, 1.0, 30.0] {
            assert!(Transform::Sqrt.inverse(z) >= 0.0);
            assert!(Transform::Log { offset: 0.0 }.inverse(z) > 0.0);
            assert!(Transform::Log { offset: 0.1 }.inverse(z) >= 0.0);
            let p = Transform::Logit.inverse(z);
            assert!((0.0..=1.0).contains(&p));
        }
        assert_eq!(Transform::Sqrt.inverse(-2.0), 0.0);
    }

    #[test]
    fn transforms_parse_print_and_refuse() {
        for s in ["none", "sqrt", "log", "log:0.1", "logit"] {
            assert_eq!(s.parse::<Transform>().unwrap().to_string(), s);
        }
        assert!(
            "log:0"
                .parse::<Transform>()
                .unwrap_err()
                .contains("positive")
        );
        assert!(
            "exp"
                .parse::<Transform>()
                .unwrap_err()
                .contains("not a transform")
        );
        let names: Vec<String> = ["UWND", "SPEED"].map(String::from).to_vec();
        let all = TransformSpec::parse(&["log".into()]).unwrap();
        assert_eq!(
            all.resolve(&names).unwrap().describe(),
            "UWND=log, SPEED=log"
        );
        let each = TransformSpec::parse(&["SPEED=sqrt".into()]).unwrap();
        let t = each.resolve(&names).unwrap();
        assert_eq!(t.describe(), "UWND=none, SPEED=sqrt");
        assert_eq!(
            t.per_value(6),
            [[Transform::None; 3], [Transform::Sqrt; 3]].concat()
        );
        let e = TransformSpec::parse(&["W=log".into()])
            .unwrap()
            .resolve(&names)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no variable 'W'") && e.contains("UWND, SPEED"),
            "{e}"
        );
        let none = TransformSpec::parse(&["UWND=none".into()]).unwrap();
        assert!(none.resolve(&names).unwrap().0.is_empty());
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"[{"name":"UWND","transform":"none"},{"name":"SPEED","transform":"sqrt"}]"#
        );
        assert_eq!(serde_json::from_str::<Transforms>(&json).unwrap(), t);
    }

    #[test]
    fn values_outside_the_domain_are_named_with_their_variable_and_place() {
        let t = Transforms(vec![
            Named {
                name: "U".into(),
                transform: Transform::None,
            },
            Named {
                name: "P".into(),
                transform: Transform::Log { offset: 0.0 },
            },
        ]);
        // (2 states, 2 values): U may be negative, P may not be 0.
        let data = [-3.0f32, 1.0, -1.0, 0.0];
        let e = t
            .check(&data, 2, "x.npy", |k| format!("[{}, {}]", k / 2, k % 2))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.npy")
                && e.contains("variable P (--transform P=log)")
                && e.contains("value 0 at [1, 1]: log needs values > 0")
                && e.contains("log:C"),
            "{e}"
        );
        assert!(
            t.check(&[f32::NAN, f32::NAN], 2, "x", |_| String::new())
                .is_ok()
        );
        let mut x = [-3.0f32, 1.0, -1.0, std::f32::consts::E];
        t.forward(&mut x, 2);
        assert_eq!(x[0], -3.0);
        assert!((x[3] - 1.0).abs() < 1e-6 && x[1] == 0.0);
        t.inverse(&mut x, 2);
        assert!((x[3] - std::f32::consts::E).abs() < 1e-6 && x[1] == 1.0);
    }
}
