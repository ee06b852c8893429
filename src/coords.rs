//! Samples with their coordinates: how trajectories `(S, L, *state)` of a model map onto named
//! variables over named dimensions (`sample`, time, the record's space axes or stations), with
//! their values and attributes, for a NetCDF file (`sda assimilate --output x.nc`) or an
//! `xarray.Dataset` (Python's `as_xarray=True`). Both are made from the one [`Layout`].
//!
//! For a record (`sda import --netcdf`), each variable of the record is a variable of the
//! output, with its `units` and `long_name`, over the record's dimensions; its time
//! coordinate holds the record's times of the `L` states from `--start` (a time step of the
//! record, or `SPLIT:N`, the first step of window `N` of a split), with its `units` and
//! `calendar`, or the state indices `0 … L − 1` where no start is given. Values in the
//! record's fixed mask (land) are missing. Other data (arrays, built-in systems) is one
//! variable `x` over `(sample, time, value)` for vectors and `(sample, time, channel, i, j)`
//! for fields.

use std::path::Path;

use serde::Serialize;

use crate::data::{SystemInfo, features};
use crate::error::{Error, Result};
use crate::io::Array;
use crate::mcs::System;
use crate::netcdf_write::{Attribute, Data, FILL_FLOAT, File, Value, Variable};

/// A coordinate: a dimension's name and its values, with their attributes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coordinate {
    /// The dimension (and coordinate variable) name.
    pub name: String,
    /// Its values.
    pub values: Vec<f64>,
    /// `units`, `calendar`, `long_name`, as text.
    pub attributes: Vec<(String, String)>,
}

/// A variable of the output: a run of `len` values of each state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its dimensions (coordinate names), `sample` and time first.
    pub dims: Vec<String>,
    /// The first of its values in a state.
    pub offset: usize,
    /// Its values in a state.
    pub len: usize,
    /// Its attributes (`units`, `long_name`, `transform`).
    pub attributes: Vec<(String, String)>,
    /// The indices (within its `len` values) that are missing: the record's fixed mask.
    pub missing: Vec<usize>,
}

/// How samples map onto variables over coordinates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Layout {
    /// The coordinates, `sample` and time first.
    pub coordinates: Vec<Coordinate>,
    /// The variables.
    pub fields: Vec<Field>,
    /// Global attributes.
    pub attributes: Vec<(String, String)>,
}

fn attrs(list: &[(&str, Option<&String>)]) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.clone())))
        .collect()
}

use crate::locate::start_step;
use crate::record_info::RecordInfo;

/// The global attributes of a layout: its title, conventions, source and the transforms.
fn global_attributes(info: &SystemInfo, title: &str) -> Vec<(String, String)> {
    let mut attributes = vec![
        ("title".to_string(), title.to_string()),
        ("Conventions".into(), "CF-1.8".into()),
        (
            "source".into(),
            "sda (score-based data assimilation)".into(),
        ),
    ];
    if !info.transforms.is_identity() {
        attributes.push((
            "transforms".into(),
            format!(
                "{} (learnt in transformed space; values in physical units)",
                info.transforms.describe()
            ),
        ));
    }
    attributes
}

/// The time coordinate of `length` states of record `r` from `start` (see [`start_step`]).
fn record_time(r: &RecordInfo, spec: &str, length: usize) -> Result<Coordinate> {
    let t0 = start_step(r, spec)?;
    let total = r.time.values.len();
    if t0 + length > total {
        return Err(Error::config(
            "--start",
            format!(
                "{length} states from time step {t0} run past the record's end ({total} \
                 steps); shorten --length or start earlier"
            ),
        ));
    }
    Ok(Coordinate {
        name: r.time.name.clone(),
        values: r.time.values[t0..t0 + length].to_vec(),
        attributes: attrs(&[
            ("units", r.time.units.as_ref()),
            ("calendar", r.time.calendar.as_ref()),
        ]),
    })
}

/// The record's variables as fields over its dimensions, with their attributes and the
/// record's fixed mask.
fn record_fields(info: &SystemInfo, r: &RecordInfo) -> Result<Vec<Field>> {
    let f = features(&info.state_shape);
    let missing_all: Vec<bool> = match &r.mask {
        None => vec![false; f],
        Some(m) if m.runs.is_empty() && m.masked > 0 => {
            return Err(Error::config(
                "--output",
                "the model's record has a fixed mask that its system.json does not list \
                 (imported before masks were recorded): import the record again and train on it",
            ));
        }
        Some(m) => (0..f).map(|j| m.masked_at(j) == Some(true)).collect(),
    };
    let per = f / r.variables.len();
    let space: Vec<String> = r.space.iter().map(|a| a.name.clone()).collect();
    Ok(r.variables
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut dims = vec!["sample".to_string(), r.time.name.clone()];
            dims.extend(space.iter().cloned());
            let transform = info
                .transforms
                .0
                .get(i)
                .filter(|t| !t.transform.is_none())
                .map(|t| t.transform.to_string());
            Field {
                name: v.name.clone(),
                dims,
                offset: i * per,
                len: per,
                attributes: attrs(&[
                    ("units", v.units.as_ref()),
                    ("long_name", v.long_name.as_ref()),
                    ("transform", transform.as_ref()),
                ]),
                missing: (0..per).filter(|&j| missing_all[i * per + j]).collect(),
            }
        })
        .collect())
}

impl Layout {
    /// The layout of `samples` trajectories of `length` states of data `info`, the first state
    /// at `start` (see [`start_step`]; records only).
    ///
    /// # Errors
    /// `start` without a record, a start outside the record or one whose `length` states run
    /// past its end, a record whose mask `system.json` does not list (imported before masks
    /// were recorded: import it again).
    pub fn of(
        info: &SystemInfo,
        samples: usize,
        length: usize,
        start: Option<&str>,
        title: &str,
    ) -> Result<Self> {
        let record = match &info.system {
            System::External(e) => e.record.as_ref(),
            _ => None,
        };
        let sample = Coordinate {
            name: "sample".into(),
            values: (0..samples).map(|s| s as f64).collect(),
            attributes: vec![("long_name".into(), "sample index".into())],
        };
        let steps = || Coordinate {
            name: record.map_or("time".into(), |r| r.time.name.clone()),
            values: (0..length).map(|t| t as f64).collect(),
            attributes: vec![("long_name".into(), "state index in the trajectory".into())],
        };
        let mut attributes = global_attributes(info, title);
        let Some(r) = record else {
            if start.is_some() {
                return Err(Error::config(
                    "--start",
                    "the model's data is not a record (sda import --netcdf): its states have no \
                     dates",
                ));
            }
            return Ok(Self::plain(info, sample, steps(), attributes));
        };
        attributes.push(("record".into(), r.file.clone()));
        let time = match start {
            None => steps(),
            Some(spec) => record_time(r, spec, length)?,
        };
        let mut coordinates = vec![sample, time];
        coordinates.extend(r.space.iter().map(|a| Coordinate {
            name: a.name.clone(),
            values: a.values.clone(),
            attributes: attrs(&[
                ("units", a.units.as_ref()),
                ("calendar", a.calendar.as_ref()),
            ]),
        }));
        let fields = record_fields(info, r)?;
        Ok(Self {
            coordinates,
            fields,
            attributes,
        })
    }

    /// Data that is not a record: one variable `x`, over `value` (vectors) or `channel`, `i`,
    /// `j` (fields).
    fn plain(
        info: &SystemInfo,
        sample: Coordinate,
        time: Coordinate,
        attributes: Vec<(String, String)>,
    ) -> Self {
        let s = &info.state_shape;
        let names: &[&str] = if s.len() == 3 {
            &["channel", "i", "j"]
        } else {
            &["value"]
        };
        let mut dims = vec!["sample".to_string(), time.name.clone()];
        let mut coordinates = vec![sample, time];
        for (name, &n) in names.iter().zip(s) {
            dims.push(name.to_string());
            coordinates.push(Coordinate {
                name: name.to_string(),
                values: (0..n).map(|k| k as f64).collect(),
                attributes: Vec::new(),
            });
        }
        let mut attrs = vec![("long_name".to_string(), info.system.name().to_string())];
        if !info.transforms.is_identity() {
            attrs.push(("transform".into(), info.transforms.describe()));
        }
        Self {
            coordinates,
            fields: vec![Field {
                name: "x".into(),
                dims,
                offset: 0,
                len: features(s),
                attributes: attrs,
                missing: Vec::new(),
            }],
            attributes,
        }
    }

    /// The values of each variable of samples `x` `(S, L, *state)`, in C order over its
    /// dimensions, NaN where missing.
    pub fn values(&self, x: &Array) -> Vec<Vec<f32>> {
        let f = x.data.len() / (x.shape[0] * x.shape[1]).max(1);
        self.fields
            .iter()
            .map(|fd| {
                let mut out = Vec::with_capacity(x.shape[0] * x.shape[1] * fd.len);
                for state in x.data.chunks(f) {
                    let at = out.len();
                    out.extend_from_slice(&state[fd.offset..fd.offset + fd.len]);
                    for &j in &fd.missing {
                        out[at + j] = f32::NAN;
                    }
                }
                out
            })
            .collect()
    }

    /// Samples `x` as a NetCDF-3 file: a `double` coordinate variable per dimension, a `float`
    /// variable per field with `_FillValue` where missing.
    pub fn netcdf(&self, x: &Array) -> File {
        let text = |list: &[(String, String)]| -> Vec<Attribute> {
            list.iter().map(|(k, v)| Attribute::text(k, v)).collect()
        };
        let dimensions: Vec<(String, usize)> = self
            .coordinates
            .iter()
            .map(|c| (c.name.clone(), c.values.len()))
            .collect();
        let mut variables: Vec<Variable> = self
            .coordinates
            .iter()
            .enumerate()
            .map(|(i, c)| Variable {
                name: c.name.clone(),
                dims: vec![i],
                attributes: text(&c.attributes),
                data: Data::Double(c.values.clone()),
            })
            .collect();
        for (fd, mut values) in self.fields.iter().zip(self.values(x)) {
            let mut attributes = text(&fd.attributes);
            if !fd.missing.is_empty() || values.iter().any(|v| v.is_nan()) {
                attributes.insert(
                    0,
                    Attribute {
                        name: "_FillValue".into(),
                        value: Value::Float(vec![FILL_FLOAT]),
                    },
                );
                values
                    .iter_mut()
                    .filter(|v| v.is_nan())
                    .for_each(|v| *v = FILL_FLOAT);
            }
            variables.push(Variable {
                name: fd.name.clone(),
                dims: fd
                    .dims
                    .iter()
                    .map(|d| dimensions.iter().position(|(n, _)| n == d).expect("a dim"))
                    .collect(),
                attributes,
                data: Data::Float(values),
            });
        }
        File {
            dimensions,
            attributes: text(&self.attributes),
            variables,
        }
    }
}

/// Writes samples `x` `(S, L, *state)` as the NetCDF-3 file `path`, laid out by `layout` (made
/// by [`Layout::of`] for `S` samples of `L` states), atomically.
pub fn write_netcdf(path: &Path, x: &Array, layout: &Layout) -> Result<()> {
    let (s, l) = (x.shape[0], x.shape[1]);
    assert_eq!(
        (s, l),
        (
            layout.coordinates[0].values.len(),
            layout.coordinates[1].values.len()
        ),
        "samples of the layout's shape"
    );
    layout.netcdf(x).write(path)
}
