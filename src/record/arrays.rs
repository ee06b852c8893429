//! Records given as arrays (what Python hands over, with or without xarray), checked as a
//! NetCDF file's are.

use super::Record;
use crate::axis::Axis;
use crate::data::shape_text;
use crate::error::{Error, Result};
use crate::geo::Station;
use crate::record_info::VariableInfo;

/// A record given as arrays (what Python hands over, with or without xarray): see
/// [`Record::from_arrays`].
#[derive(Clone, Debug)]
pub struct RecordArrays {
    /// Where it came from, in words (`numpy arrays`, `xarray.Dataset`); names it in messages.
    pub origin: String,
    /// Each variable's name, `units` and `long_name`, in the order of the state.
    pub variables: Vec<(String, Option<String>, Option<String>)>,
    /// Values `(T, V, *space)`, C order, NaN where missing.
    pub values: Vec<f64>,
    /// The time axis (T values, strictly increasing).
    pub time: Axis,
    /// The space axes (none, one, or two), with their lengths.
    pub space: Vec<Axis>,
    /// The stations of the one space axis, when it is a network.
    pub stations: Option<Vec<Station>>,
}

impl Record {
    /// A record from arrays, checked as [`crate::netcdf::read`] checks a file's (space axes of
    /// one cell are dropped).
    ///
    /// # Errors
    /// One line naming what is wrong: no variable or two of one name, values that are not
    /// `(T, V, *space)` of the axes, a time axis that is not strictly increasing and finite,
    /// more than two space axes, stations without one space axis of as many cells, a station
    /// without a name, with a name given twice or a latitude/longitude that is not a place.
    pub fn from_arrays(a: RecordArrays) -> Result<Self> {
        let bad = |reason: String| Error::config(&a.origin, reason);
        if a.variables.is_empty() {
            return Err(bad("no variable".into()));
        }
        for (k, (name, ..)) in a.variables.iter().enumerate() {
            if name.trim().is_empty() || a.variables[..k].iter().any(|v| &v.0 == name) {
                return Err(bad(format!(
                    "variable name '{name}' is empty or given twice"
                )));
            }
        }
        let t = a.time.values.len();
        let mut shape = vec![t, a.variables.len()];
        shape.extend(a.space.iter().map(|s| s.values.len()));
        if a.values.len() != shape.iter().product::<usize>() || t == 0 {
            return Err(bad(format!(
                "{} values do not make ({}) of (time, variable, {}) with at least one time",
                a.values.len(),
                shape_text(&shape),
                a.space
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let time = &a.time.values;
        if let Some(v) = time.iter().find(|v| !v.is_finite()) {
            return Err(bad(format!("time axis {} holds {v}", a.time.name)));
        }
        if let Some(k) = (1..t).find(|&k| time[k] <= time[k - 1]) {
            return Err(bad(format!(
                "time axis {} is not strictly increasing: step {k} is {} after {}",
                a.time.name,
                time[k],
                time[k - 1]
            )));
        }
        let space: Vec<Axis> = a
            .space
            .iter()
            .filter(|s| s.values.len() != 1)
            .cloned()
            .collect();
        if space.len() > 2 {
            return Err(bad(format!(
                "{} space axes: a state is a series, a network or a 2-D field",
                space.len()
            )));
        }
        if let Some(st) = &a.stations {
            let [d] = space.as_slice() else {
                return Err(bad(
                    "stations need exactly one space axis, the network's".into()
                ));
            };
            if st.len() != d.values.len() {
                return Err(bad(format!(
                    "{} stations for the {} cells of axis {}",
                    st.len(),
                    d.values.len(),
                    d.name
                )));
            }
            check_stations(st).map_err(bad)?;
        }
        let dims: Vec<String> = std::iter::once(a.time.name.clone())
            .chain(a.space.iter().map(|s| s.name.clone()))
            .collect();
        let mut var_shape = vec![t];
        var_shape.extend(a.space.iter().map(|s| s.values.len()));
        let variables = a
            .variables
            .iter()
            .map(|(name, units, long_name)| VariableInfo {
                name: name.clone(),
                dtype: "double".into(),
                dims: dims.clone(),
                shape: var_shape.clone(),
                units: units.clone(),
                long_name: long_name.clone(),
            })
            .collect();
        Ok(Self {
            origin: a.origin,
            format: "arrays".into(),
            variables,
            time: a.time,
            space,
            values: a.values,
            edits: Vec::new(),
            stations: a.stations,
        })
    }
}

/// Checks a station list: names present and distinct, places on Earth.
pub fn check_stations(st: &[Station]) -> std::result::Result<(), String> {
    let mut names: Vec<&str> = st.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("station '{}' is named twice", w[0]));
    }
    if let Some(s) = st.iter().find(|s| s.name.trim().is_empty()) {
        return Err(format!(
            "a station at lat {}, lon {} has no name",
            s.lat, s.lon
        ));
    }
    if let Some(s) = st
        .iter()
        .find(|s| !((-90.0..=90.0).contains(&s.lat) && s.lon.is_finite()))
    {
        return Err(format!(
            "station '{}' is at lat {}, lon {}: not a place on Earth",
            s.name, s.lat, s.lon
        ));
    }
    Ok(())
}
