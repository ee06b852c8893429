//! Observations as they come: table rows that name a `station` of the record's network, give
//! a place `lat,lon`, or a `date` of its time axis, placed on the record that a model was
//! trained on (its `system.json`, kept in the model's `config.json`).
//!
//! - `station` (+ `variable` where the state has several): the value of that variable at that
//!   station.
//! - `lat,lon` (+ `variable`): on a latitude–longitude grid, the bilinear interpolation of the
//!   four surrounding cells (a weighted row; across the date line on a global grid; cells of
//!   the fixed mask, land, left out and the other weights scaled to sum to 1); on a station
//!   network, the nearest station (great-circle distance) that is not masked.
//! - `date` (`2005-05-14`, `2005-05-14T12:00`, `2005-05`, or a number in the axis' units): the
//!   record's step it falls in ([`crate::calendar::step_of`]), then the state of the window
//!   being assimilated: the window starts at `start` (a step of the record, or a date), by
//!   default at the table's earliest date, and holds `length` states.
//!
//! Every refusal is one line naming the file and the line: a station not in the record, a
//! place outside the grid or on land, a date outside the record or the window, a variable that
//! does not exist.

use std::path::Path;

use crate::calendar::{Date, TimeUnits, step_of};
use crate::data::SystemInfo;
use crate::error::{Error, Result};
use crate::geo::{Grid, nearest};
use crate::mcs::System;
use crate::record_info::RecordInfo;
use crate::score::table::{RawRow, RawTable, Row, Table, When, Where};

/// What a table is placed on.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The data the model was trained on (state shape, and the record when it has one).
    pub info: &'a SystemInfo,
    /// States of the trajectory being assimilated.
    pub length: usize,
    /// Where the window starts in the record (`--start`): a step of the record (a whole
    /// number) or a date; `None`: at the table's earliest date.
    pub start: Option<&'a str>,
}

/// A table placed on a record.
#[derive(Clone, Debug)]
pub struct Placed {
    /// The rows as states and weighted values.
    pub table: Table,
    /// The record's step of the window's first state, for a table of dates.
    pub start: Option<usize>,
    /// What was done, in one line (empty for a table by state and index).
    pub summary: String,
}

/// Reads the table `path` and places it on `ctx`.
pub fn read(path: &Path, ctx: &Context) -> Result<Placed> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    place(&RawTable::parse(&text, &path.display().to_string())?, ctx)
}

/// The record of a data set, if it has one.
pub fn record_of(info: &SystemInfo) -> Option<&RecordInfo> {
    match &info.system {
        System::External(e) => e.record.as_ref(),
        _ => None,
    }
}

/// The time units of a record's axis, or why dates cannot be read on it.
fn time_units(r: &RecordInfo) -> std::result::Result<TimeUnits, String> {
    let units = r.time.units.as_deref().ok_or_else(|| {
        format!(
            "the record's time axis {} has no units: give dates as numbers of the axis",
            r.time.name
        )
    })?;
    TimeUnits::parse(units, r.time.calendar.as_deref()).map_err(|e| e.to_string())
}

/// The record's step of a date cell: a number of the axis' units, or a date.
fn date_step(r: &RecordInfo, cell: &str) -> std::result::Result<usize, String> {
    let value = match cell.trim().parse::<f64>() {
        Ok(v) => v,
        Err(_) => {
            let d = Date::parse(cell).ok_or_else(|| {
                format!(
                    "date '{cell}' is not a date (YYYY-MM-DD, YYYY-MM-DDTHH:MM, YYYY-MM) nor a \
                     number of the time axis"
                )
            })?;
            time_units(r)?
                .value(&d)
                .map_err(|e| format!("date '{cell}': {e}"))?
        }
    };
    step_of(&r.time.values, value).ok_or_else(|| {
        let t = &r.time.values;
        let (a, b) = (t[0], t[t.len() - 1]);
        let span = match time_units(r) {
            Ok(u) => format!("{}..{}", u.format(a), u.format(b)),
            Err(_) => format!("{a}..{b}"),
        };
        format!("date '{cell}' lies outside the record ({span})")
    })
}

/// The state's variable of a row: the one its `variable` cell names, or the only one.
fn variable(r: &RecordInfo, row: &RawRow) -> std::result::Result<usize, String> {
    let names: Vec<&str> = r.variables.iter().map(|v| v.name.as_str()).collect();
    match &row.variable {
        Some(v) => names.iter().position(|n| n == v).ok_or_else(|| {
            format!(
                "variable '{v}' does not exist (the record's: {})",
                names.join(", ")
            )
        }),
        None if names.len() == 1 => Ok(0),
        None => Err(format!(
            "the state holds {}: give a variable column",
            names.join(", ")
        )),
    }
}

/// The weighted values of the state a row's place names.
fn terms(
    r: &RecordInfo,
    state: &[usize],
    row: &RawRow,
) -> std::result::Result<Vec<(usize, f32)>, String> {
    let masked = |j: usize| -> std::result::Result<bool, String> {
        match &r.mask {
            None => Ok(false),
            Some(m) => m.masked_at(j).ok_or_else(|| {
                "the record's fixed mask is not in its system.json (imported before masks were \
                 recorded there): import it again"
                    .to_string()
            }),
        }
    };
    match &row.at {
        Where::Index(i) => Ok(vec![(*i, 1.0)]),
        Where::Station(name) => {
            let st = r
                .stations
                .as_ref()
                .ok_or("the record has no stations (its space is not a network)")?;
            let d = st.iter().position(|s| &s.name == name).ok_or_else(|| {
                let some: Vec<&str> = st.iter().take(5).map(|s| s.name.as_str()).collect();
                format!(
                    "station '{name}' is not in the record ({} stations: {}{})",
                    st.len(),
                    some.join(", "),
                    if st.len() > 5 { ", …" } else { "" }
                )
            })?;
            Ok(vec![(variable(r, row)? * st.len() + d, 1.0)])
        }
        Where::Place { lat, lon } => {
            let v = variable(r, row)?;
            if let Some(st) = &r.stations {
                let base = v * st.len();
                let usable: Vec<bool> = (0..st.len())
                    .map(|d| masked(base + d).map(|m| !m))
                    .collect::<std::result::Result<_, _>>()?;
                let found = nearest(st, *lat, *lon, |d| usable[d]);
                let (d, _) = found.ok_or("every station of the record is masked")?;
                return Ok(vec![(base + d, 1.0)]);
            }
            let grid = Grid::of(&r.space).ok_or(
                "the record has neither stations nor a latitude–longitude grid (axes with units \
                 degrees_north and degrees_east, or named lat and lon)",
            )?;
            let cells: usize = state[1..].iter().product();
            let base = v * cells;
            let mut w = Vec::new();
            for (k, x) in grid.weights(*lat, *lon)? {
                if !masked(base + k)? {
                    w.push((base + k, x));
                }
            }
            let total: f64 = w.iter().map(|t| t.1).sum();
            if w.is_empty() || total <= 0.0 {
                return Err(format!(
                    "lat {lat}, lon {lon}: every surrounding cell is masked (land)"
                ));
            }
            Ok(w.into_iter()
                .map(|(k, x)| (k, (x / total) as f32))
                .collect())
        }
    }
}

/// The record's step of `--start`, the first state of a trajectory: `N` (a step of the record's
/// time axis), `train:N`, `valid:N` or `test:N` (the first step of window `N` of that split, as
/// `sda observe --trajectories DATA/test.npy --index N` observes it), or a date of the record
/// (`2005-05-14`, `2005-05-14T12:00`).
///
/// # Errors
/// One line keyed by `--start`: a step outside the record, a split that does not exist or a
/// window it does not have, a date outside the record or that is not a date.
pub fn start_step(r: &RecordInfo, start: &str) -> Result<usize> {
    let bad = |reason: String| Error::config("--start", reason);
    let spec = start.trim();
    if let Ok(k) = spec.parse::<usize>() {
        if k >= r.time.values.len() {
            return Err(bad(format!(
                "step {k} lies outside the record's {} steps",
                r.time.values.len()
            )));
        }
        return Ok(k);
    }
    const SPLITS: [&str; 3] = ["train", "valid", "test"];
    if let Some((split, n)) = spec.split_once(':')
        && let Some(k) = SPLITS.iter().position(|s| *s == split.trim())
    {
        let n = n.trim().parse::<usize>().map_err(|_| {
            bad(format!(
                "'{spec}': give SPLIT:N with N a window index (e.g. test:0)"
            ))
        })?;
        return r.starts[k].get(n).copied().ok_or_else(|| {
            bad(format!(
                "the {split} split has {} window(s), not a window {n}",
                r.starts[k].len()
            ))
        });
    }
    if let Some((word, _)) = spec.split_once(':')
        && word.chars().all(|c| c.is_ascii_alphabetic())
    {
        return Err(bad(format!(
            "'{word}' is not a split: train, valid or test (SPLIT:N, e.g. test:0)"
        )));
    }
    date_step(r, spec).map_err(|e| {
        bad(format!(
            "{e} (--start takes a step of the record, SPLIT:N such as test:0, or a date)"
        ))
    })
}

/// Places a table on `ctx`'s record.
///
/// # Errors
/// One line naming the file and line (see the module's documentation), or `--start` when it
/// falls outside the record. A table of states (a time column) ignores `--start`.
pub fn place(raw: &RawTable, ctx: &Context) -> Result<Placed> {
    let path = raw.path.as_str();
    let record = record_of(ctx.info);
    if raw.is_plain() {
        let table = Table::parse_raw(raw)?;
        return Ok(Placed {
            table,
            start: None,
            summary: String::new(),
        });
    }
    let at_line =
        |line: usize, reason: String| Error::config(path, format!("line {line}: {reason}"));
    let Some(r) = record else {
        let row = &raw.rows[0];
        return Err(at_line(
            row.line,
            format!(
                "a row by station, place or date needs the record of the data the model was \
                 trained on, and {} data have none (import a record with sda import --netcdf \
                 or sda.Data.from_record)",
                ctx.info.system.name()
            ),
        ));
    };
    // The record's step of each dated row, then the window's start.
    let steps: Vec<Option<usize>> = raw
        .rows
        .iter()
        .map(|row| match &row.when {
            When::Step(_) => Ok(None),
            When::Date(cell) => date_step(r, cell)
                .map(Some)
                .map_err(|e| at_line(row.line, e)),
        })
        .collect::<Result<_>>()?;
    let start = match ctx.start {
        Some(s) => Some(start_step(r, s)?),
        None => steps.iter().flatten().min().copied(),
    };
    let units = time_units(r).ok();
    let when = |k: usize| match &units {
        Some(u) => u.format(r.time.values[k]),
        None => format!("{}", r.time.values[k]),
    };
    let mut rows = Vec::with_capacity(raw.rows.len());
    let (mut weighted, mut by_station, mut by_place) = (0, 0, 0);
    for (row, step) in raw.rows.iter().zip(&steps) {
        let time = match (&row.when, step, start) {
            (When::Step(t), ..) => *t,
            (When::Date(cell), Some(k), Some(s)) => {
                if *k < s || *k >= s + ctx.length {
                    return Err(at_line(
                        row.line,
                        format!(
                            "date '{cell}' (step {k} of the record) lies outside the window of {} \
                             states from {} (step {s}); move it with --start",
                            ctx.length,
                            when(s)
                        ),
                    ));
                }
                k - s
            }
            _ => unreachable!("every dated row has a step"),
        };
        let t = terms(r, &ctx.info.state_shape, row).map_err(|e| at_line(row.line, e))?;
        match row.at {
            Where::Station(_) => by_station += 1,
            Where::Place { .. } => by_place += 1,
            Where::Index(_) => {}
        }
        weighted += usize::from(t.len() > 1 || t[0].1 != 1.0);
        rows.push(Row {
            time,
            terms: t,
            value: row.value,
            std: row.std,
            line: row.line,
        });
    }
    let table = Table::sorted(path, rows);
    let mut summary = format!("{path}: {} rows", table.rows.len());
    if by_station > 0 {
        summary += &format!(", {by_station} by station");
    }
    if by_place > 0 {
        summary += &if r.stations.is_some() {
            format!(", {by_place} by place (at the nearest station)")
        } else {
            format!(", {by_place} by place ({weighted} interpolated between cells)")
        };
    }
    if let Some(s) = start {
        let times = table.times();
        summary += &format!(
            "; dates {}..{} → states {}..{} of the window of {} from {} (step {s} of the record)",
            when(s + times[0]),
            when(s + times[times.len() - 1]),
            times[0],
            times[times.len() - 1],
            ctx.length,
            when(s)
        );
    }
    Ok(Placed {
        table,
        start,
        summary,
    })
}
