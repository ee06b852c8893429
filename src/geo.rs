//! Places on a record's space: a latitude and longitude as a weighted sum of the cells of a
//! latitude–longitude grid (bilinear interpolation of the four surrounding cells, across the
//! date line on a global grid), or as the nearest station of a network (great-circle
//! distance).

use serde::{Deserialize, Serialize};

use crate::axis::Axis;

/// A station of a network: its name and where it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Station {
    /// Its name (as the observations name it).
    pub name: String,
    /// Latitude, degrees north.
    pub lat: f64,
    /// Longitude, degrees east.
    pub lon: f64,
}

fn units_of(a: &Axis) -> String {
    a.units.as_deref().unwrap_or("").trim().to_lowercase()
}

/// Whether an axis holds latitudes: units `degrees_north` (or `degree_N`, …), or a name such
/// as `lat` or `latitude`.
pub fn is_latitude(a: &Axis) -> bool {
    let u = units_of(a);
    let name = a.name.to_lowercase();
    (u.starts_with("degree") && (u.ends_with("north") || u.ends_with('n')))
        || matches!(name.as_str(), "lat" | "latitude" | "nav_lat" | "rlat")
}

/// Whether an axis holds longitudes: units `degrees_east` (or `degree_E`, …), or a name such
/// as `lon` or `longitude`.
pub fn is_longitude(a: &Axis) -> bool {
    let u = units_of(a);
    let name = a.name.to_lowercase();
    (u.starts_with("degree") && (u.ends_with("east") || u.ends_with('e')))
        || matches!(
            name.as_str(),
            "lon" | "long" | "longitude" | "nav_lon" | "rlon"
        )
}

/// A latitude–longitude grid: the two space axes of a field record.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Latitudes of the rows or columns (monotonic).
    pub lat: Vec<f64>,
    /// Longitudes (monotonic).
    pub lon: Vec<f64>,
    /// Whether latitude is the first of the two axes (rows).
    pub lat_first: bool,
    /// Whether the longitudes go round the globe (evenly spaced, spanning 360°), so that
    /// points past the last longitude lie between it and the first.
    pub global: bool,
}

impl Grid {
    /// The grid of two space axes, when one holds latitudes and the other longitudes.
    pub fn of(space: &[Axis]) -> Option<Self> {
        let [a, b] = space else { return None };
        let (lat, lon, lat_first) = if is_latitude(a) && is_longitude(b) {
            (a, b, true)
        } else if is_longitude(a) && is_latitude(b) {
            (b, a, false)
        } else {
            return None;
        };
        let n = lon.values.len();
        let global = n >= 2 && {
            let v = &lon.values;
            let step = (v[n - 1] - v[0]) / (n - 1) as f64;
            let even = v
                .windows(2)
                .all(|w| ((w[1] - w[0]) - step).abs() < 1e-6 * step.abs());
            even && step > 0.0 && ((step * n as f64) - 360.0).abs() < 1e-6 * 360.0
        };
        Some(Self {
            lat: lat.values.clone(),
            lon: lon.values.clone(),
            lat_first,
            global,
        })
    }

    /// Rows and columns of the grid (the state's `H × W`).
    fn width(&self) -> usize {
        if self.lat_first {
            self.lon.len()
        } else {
            self.lat.len()
        }
    }

    /// The bilinear weights of the point `(lat, lon)`: `(i·W + j, weight)` over the (up to
    /// four) surrounding cells, weights positive and summing to 1, in the grid's flat order.
    ///
    /// # Errors
    /// A latitude outside −90…90 or outside the grid's rows, a longitude outside the grid on a
    /// grid that is not global, in words.
    pub fn weights(&self, lat: f64, lon: f64) -> Result<Vec<(usize, f64)>, String> {
        if !(-90.0..=90.0).contains(&lat) || !lon.is_finite() {
            return Err(format!("lat {lat}, lon {lon} is not a place on Earth"));
        }
        let range = |v: &[f64]| {
            let (a, b) = (v[0], v[v.len() - 1]);
            format!("{}…{}", a.min(b), a.max(b))
        };
        let (y0, y1, fy) = bracket(&self.lat, lat).ok_or_else(|| {
            format!(
                "lat {lat} lies outside the grid (latitudes {})",
                range(&self.lat)
            )
        })?;
        let (x0, x1, fx) = self.lon_bracket(lon).ok_or_else(|| {
            format!(
                "lon {lon} lies outside the grid (longitudes {})",
                range(&self.lon)
            )
        })?;
        let w = self.width();
        let at = |y: usize, x: usize| {
            if self.lat_first { y * w + x } else { x * w + y }
        };
        let mut out: Vec<(usize, f64)> = Vec::with_capacity(4);
        for (y, wy) in [(y0, 1.0 - fy), (y1, fy)] {
            for (x, wx) in [(x0, 1.0 - fx), (x1, fx)] {
                let (k, v) = (at(y, x), wy * wx);
                if v <= 0.0 {
                    continue;
                }
                match out.iter_mut().find(|(i, _)| *i == k) {
                    Some((_, acc)) => *acc += v,
                    None => out.push((k, v)),
                }
            }
        }
        Ok(out)
    }

    /// The two longitudes around `lon` and the fraction of the way from the first to the
    /// second; across the date line on a global grid.
    fn lon_bracket(&self, lon: f64) -> Option<(usize, usize, f64)> {
        let v = &self.lon;
        let n = v.len();
        if self.global {
            let x = v[0] + (lon - v[0]).rem_euclid(360.0);
            if x <= v[n - 1] {
                return bracket(v, x);
            }
            let f = (x - v[n - 1]) / (v[0] + 360.0 - v[n - 1]);
            return Some((n - 1, 0, f));
        }
        [lon, lon - 360.0, lon + 360.0]
            .into_iter()
            .find_map(|x| bracket(v, x))
    }
}

/// The cells `k, k + 1` of a monotonic axis around `v` and the fraction of the way from `c[k]`
/// to `c[k + 1]` (a one-cell axis: only its own value).
fn bracket(c: &[f64], v: f64) -> Option<(usize, usize, f64)> {
    if c.len() == 1 {
        return ((c[0] - v).abs() < 1e-9).then_some((0, 0, 0.0));
    }
    c.windows(2).enumerate().find_map(|(k, w)| {
        let (a, b) = (w[0], w[1]);
        ((v - a) * (v - b) <= 0.0 && a != b).then(|| (k, k + 1, (v - a) / (b - a)))
    })
}

/// The great-circle distance between two places, in kilometres (a sphere of radius 6371 km).
pub fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

/// The station nearest to `(lat, lon)` among those `usable` and its distance in km (the first
/// of equals), or `None` when none is usable.
pub fn nearest(
    stations: &[Station],
    lat: f64,
    lon: f64,
    usable: impl Fn(usize) -> bool,
) -> Option<(usize, f64)> {
    stations
        .iter()
        .enumerate()
        .filter(|(k, _)| usable(*k))
        .map(|(k, s)| (k, distance_km(lat, lon, s.lat, s.lon)))
        .fold(None, |best: Option<(usize, f64)>, (k, d)| match best {
            Some((_, b)) if b <= d => best,
            _ => Some((k, d)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(name: &str, units: &str, values: Vec<f64>) -> Axis {
        Axis {
            name: name.into(),
            values,
            units: Some(units.into()),
            calendar: None,
        }
    }

    /// A 3 × 4 grid: latitudes 10, 20, 30 (rows), longitudes 0, 90, 180, 270 (global).
    fn grid() -> Grid {
        Grid::of(&[
            axis("y", "degrees_north", vec![10.0, 20.0, 30.0]),
            axis("x", "degrees_east", vec![0.0, 90.0, 180.0, 270.0]),
        ])
        .unwrap()
    }

    fn sorted(mut w: Vec<(usize, f64)>) -> Vec<(usize, f64)> {
        w.sort_by_key(|p| p.0);
        w
    }

    fn close(a: &[(usize, f64)], b: &[(usize, f64)]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!(x.0 == y.0 && (x.1 - y.1).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn bilinear_weights_are_those_of_the_four_surrounding_cells() {
        let g = grid();
        assert!(g.global && g.lat_first);
        // lat 12.5 is a quarter of the way from row 0 to row 1, lon 60 two thirds from column
        // 0 to 1: weights (3/4)(1/3), (3/4)(2/3), (1/4)(1/3), (1/4)(2/3) at 0, 1, 4, 5.
        let w = sorted(g.weights(12.5, 60.0).unwrap());
        close(&w, &[(0, 0.25), (1, 0.5), (4, 1.0 / 12.0), (5, 1.0 / 6.0)]);
        // On a node: one cell of weight 1.
        close(&g.weights(20.0, 180.0).unwrap(), &[(6, 1.0)]);
        // On the last row.
        close(
            &sorted(g.weights(30.0, 45.0).unwrap()),
            &[(8, 0.5), (9, 0.5)],
        );
    }

    #[test]
    fn longitudes_wrap_round_a_global_grid() {
        let g = grid();
        // lon 315 is half way from 270 (column 3) to 360 = 0 (column 0); −45 is the same place.
        let w = sorted(g.weights(10.0, 315.0).unwrap());
        close(&w, &[(0, 0.5), (3, 0.5)]);
        close(&sorted(g.weights(10.0, -45.0).unwrap()), &w);
        close(&sorted(g.weights(10.0, 675.0).unwrap()), &w);
        // Not global: the same longitudes without 270 stop at 180.
        let regional = Grid::of(&[
            axis("lat", "", vec![10.0, 20.0]),
            axis("lon", "", vec![-10.0, 0.0, 10.0]),
        ])
        .unwrap();
        assert!(!regional.global);
        close(
            &sorted(regional.weights(10.0, 355.0).unwrap()),
            &[(0, 0.5), (1, 0.5)],
        );
        let e = regional.weights(10.0, 20.0).unwrap_err();
        assert!(
            e.contains("lon 20 lies outside the grid (longitudes -10…10)"),
            "{e}"
        );
        let e = g.weights(35.0, 0.0).unwrap_err();
        assert!(
            e.contains("lat 35 lies outside the grid (latitudes 10…30)"),
            "{e}"
        );
        assert!(g.weights(95.0, 0.0).unwrap_err().contains("not a place"));
    }

    #[test]
    fn decreasing_latitudes_and_lon_first_grids_are_read() {
        // Latitudes 30, 20, 10 as rows of the second axis; longitudes first.
        let g = Grid::of(&[
            axis("lon", "degrees_east", vec![0.0, 90.0, 180.0, 270.0]),
            axis("lat", "degrees_north", vec![30.0, 20.0, 10.0]),
        ])
        .unwrap();
        assert!(!g.lat_first);
        // (lat 25, lon 90): half way between lat rows 0 and 1, column 1 → flat x·3 + y.
        close(
            &sorted(g.weights(25.0, 90.0).unwrap()),
            &[(3, 0.5), (4, 0.5)],
        );
    }

    #[test]
    fn the_nearest_station_is_by_great_circle_distance() {
        let s = |name: &str, lat: f64, lon: f64| Station {
            name: name.into(),
            lat,
            lon,
        };
        let net = [s("A", 50.0, 10.0), s("B", 52.0, 13.0), s("C", 48.0, 11.0)];
        assert_eq!(nearest(&net, 52.5, 13.4, |_| true).unwrap().0, 1);
        assert_eq!(nearest(&net, 48.1, 11.6, |_| true).unwrap().0, 2);
        assert_eq!(nearest(&net, 48.1, 11.6, |k| k != 2).unwrap().0, 0);
        assert!(nearest(&net, 0.0, 0.0, |_| false).is_none());
        // One degree of latitude is 111.19 km on this sphere.
        assert!((distance_km(0.0, 0.0, 1.0, 0.0) - 111.195).abs() < 1e-2);
        // Across the date line, 179.5 E and 179.5 W are 1° of longitude apart.
        assert!((distance_km(0.0, 179.5, 0.0, -179.5) - 111.195).abs() < 1e-2);
    }
}
