//! Station networks: the latitude, longitude and name that a file gives each cell of a
//! dimension.

use netcdf_reader::{NcFile, NcType, NcVariable};

use super::text_attribute;
use crate::axis::Axis;
use crate::error::{Error, Result};
use crate::geo::Station;

/// The stations of dimension `dim` (in the file's order, before `--select`), when variables of
/// that dimension alone give each cell a latitude and a longitude. `axis` is the dimension's
/// coordinate as read (names of last resort).
pub(super) fn stations(
    file: &NcFile,
    origin: &str,
    dim: &str,
    axis: &Axis,
) -> Result<Option<Vec<Station>>> {
    let Ok(vars) = file.variables() else {
        return Ok(None);
    };
    let on_dim = |v: &&NcVariable| {
        let d = v.dimensions();
        d.first().is_some_and(|d| d.name == dim) && (d.len() == 1 || v.dtype() == &NcType::Char)
    };
    let is = |v: &NcVariable, units: &str, standard: &str, names: &[&str]| {
        let u = text_attribute(v, "units")
            .unwrap_or_default()
            .to_lowercase();
        let sn = text_attribute(v, "standard_name")
            .unwrap_or_default()
            .to_lowercase();
        v.dimensions().len() == 1
            && (u == units
                || u == units.replace("degrees", "degree")
                || sn == standard
                || names.contains(&v.name().to_lowercase().as_str()))
    };
    let mine: Vec<&NcVariable> = vars.iter().filter(on_dim).collect();
    let lat = mine
        .iter()
        .find(|v| is(v, "degrees_north", "latitude", &["lat", "latitude"]));
    let lon = mine
        .iter()
        .find(|v| is(v, "degrees_east", "longitude", &["lon", "longitude"]));
    let (Some(lat), Some(lon)) = (lat, lon) else {
        return Ok(None);
    };
    let read = |v: &NcVariable| -> Result<Vec<f64>> {
        Ok(file
            .read_variable_unpacked_masked(v.name())
            .map_err(|e| Error::config(origin, format!("reading {}: {e}", v.name())))?
            .iter()
            .copied()
            .collect())
    };
    let (lats, lons) = (read(lat)?, read(lon)?);
    let texts: Vec<&&NcVariable> = mine
        .iter()
        .filter(|v| matches!(v.dtype(), NcType::Char | NcType::String))
        .collect();
    let named = texts
        .iter()
        .find(|v| text_attribute(v, "cf_role").is_some_and(|r| r == "timeseries_id"))
        .or(texts.first());
    let names: Vec<String> = match named {
        Some(v) => file
            .read_variable_as_strings(v.name())
            .map_err(|e| Error::config(origin, format!("reading {}: {e}", v.name())))?
            .into_iter()
            .map(|s| s.trim_end_matches('\0').trim().to_string())
            .collect(),
        None => axis.values.iter().map(|v| format!("{v}")).collect(),
    };
    if names.len() != lats.len() || lats.len() != lons.len() {
        return Err(Error::config(
            origin,
            format!(
                "the stations of {dim}: {} names, {} latitudes ({}) and {} longitudes ({})",
                names.len(),
                lats.len(),
                lat.name(),
                lons.len(),
                lon.name()
            ),
        ));
    }
    let st: Vec<Station> = names
        .into_iter()
        .zip(lats.into_iter().zip(lons))
        .map(|(name, (lat, lon))| Station { name, lat, lon })
        .collect();
    crate::record::check_stations(&st)
        .map_err(|reason| Error::config(origin, format!("the stations of {dim}: {reason}")))?;
    Ok(Some(st))
}
