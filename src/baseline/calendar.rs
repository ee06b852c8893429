//! The calendar month of each step of a CF time axis (`units = "hours since 1980-01-14
//! 14:00:00"`, `calendar = "standard"`), for seasonal climatologies. The calendars of the CF
//! conventions (§4.4.1): `standard`/`gregorian`/`proleptic_gregorian` (Gregorian leap years),
//! `julian` (a leap year every four), `noleap`/`365_day`, `all_leap`/`366_day` and `360_day`.

use crate::error::{Error, Result};

/// A CF calendar's rule for the length of years and months.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Calendar {
    Gregorian,
    Julian,
    NoLeap,
    AllLeap,
    Day360,
}

impl Calendar {
    fn parse(name: Option<&str>) -> Result<Self> {
        let name = name.unwrap_or("standard").trim().to_lowercase();
        Ok(match name.as_str() {
            "standard" | "gregorian" | "proleptic_gregorian" | "mixed" => Calendar::Gregorian,
            "julian" => Calendar::Julian,
            "noleap" | "365_day" => Calendar::NoLeap,
            "all_leap" | "366_day" => Calendar::AllLeap,
            "360_day" => Calendar::Day360,
            other => {
                return Err(Error::config(
                    "calendar",
                    format!("'{other}' is not a CF calendar this reader knows"),
                ));
            }
        })
    }

    fn leap(self, y: i64) -> bool {
        match self {
            Calendar::Gregorian => (y % 4 == 0 && y % 100 != 0) || y % 400 == 0,
            Calendar::Julian => y % 4 == 0,
            Calendar::NoLeap | Calendar::Day360 => false,
            Calendar::AllLeap => true,
        }
    }

    fn month_days(self, y: i64, m: usize) -> i64 {
        if self == Calendar::Day360 {
            return 30;
        }
        const DAYS: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        DAYS[m] + i64::from(m == 1 && self.leap(y))
    }

    fn year_days(self, y: i64) -> i64 {
        (0..12).map(|m| self.month_days(y, m)).sum()
    }

    /// The month (0..12) of the day `days` (whole days, may be negative) after the first day of
    /// month `m` of year `y`, given `day0` days into that month.
    fn month_after(self, mut y: i64, mut m: usize, day0: i64, days: i64) -> usize {
        let mut d = day0 + days;
        // Whole years first, then months.
        while d < 0 {
            if m == 0 {
                m = 11;
                y -= 1;
            } else {
                m -= 1;
            }
            d += self.month_days(y, m);
        }
        loop {
            if m == 0 && d >= self.year_days(y) {
                d -= self.year_days(y);
                y += 1;
                continue;
            }
            let len = self.month_days(y, m);
            if d < len {
                return m;
            }
            d -= len;
            m += 1;
            if m == 12 {
                m = 0;
                y += 1;
            }
        }
    }
}

/// Seconds per unit of a CF time unit (`days`, `hours`, …).
fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit.to_lowercase().as_str() {
        "second" | "seconds" | "sec" | "secs" | "s" => 1.0,
        "minute" | "minutes" | "min" | "mins" => 60.0,
        "hour" | "hours" | "hr" | "hrs" | "h" => 3600.0,
        "day" | "days" | "d" => 86400.0,
        _ => return None,
    })
}

/// `(year, month 0..12, day 0.., seconds into the day)` of a CF reference date such as
/// `1980-01-14 14:00:00`, `1982-1-1`, `2005-01-01T00:00:00Z`.
fn reference(text: &str) -> Option<(i64, usize, i64, f64)> {
    let text = text.trim().replace('T', " ");
    let mut parts = text.split_whitespace();
    let date = parts.next()?;
    let mut ymd = date.splitn(3, '-');
    let y: i64 = ymd.next()?.parse().ok()?;
    let m: usize = ymd.next().unwrap_or("1").parse().ok()?;
    let d: i64 = ymd.next().unwrap_or("1").parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = 0.0;
    if let Some(time) = parts.next() {
        let time = time.trim_end_matches('Z');
        for (k, v) in time.split(':').enumerate().take(3) {
            let v: f64 = v.parse().ok()?;
            secs += v * [3600.0, 60.0, 1.0][k];
        }
    }
    Some((y, m - 1, d - 1, secs))
}

/// The median step of a time axis with CF `units` (`UNIT since DATE`), in days; `None` for an
/// axis of fewer than two values or units that are not a time.
pub fn step_days(values: &[f64], units: Option<&str>) -> Option<f64> {
    let (unit, _) = units?.split_once(" since ")?;
    let scale = unit_seconds(unit.trim())? / 86400.0;
    let mut steps: Vec<f64> = values.windows(2).map(|w| (w[1] - w[0]) * scale).collect();
    if steps.is_empty() {
        return None;
    }
    steps.sort_by(f64::total_cmp);
    Some(steps[steps.len() / 2])
}

/// The month (0 = January … 11) of each value of a time axis with CF `units` (`UNIT since
/// DATE`) and `calendar`, or why the axis is not a calendar one.
pub fn months(values: &[f64], units: Option<&str>, calendar: Option<&str>) -> Result<Vec<usize>> {
    let bad = |reason: String| Error::config("time axis", reason);
    let units = units.ok_or_else(|| bad("has no units".into()))?;
    let (unit, date) = units
        .split_once(" since ")
        .ok_or_else(|| bad(format!("units '{units}' do not read 'UNIT since DATE'")))?;
    let scale = unit_seconds(unit.trim()).ok_or_else(|| {
        bad(format!(
            "unit '{}' is not seconds, minutes, hours or days",
            unit
        ))
    })?;
    let (y, m, d, secs) =
        reference(date).ok_or_else(|| bad(format!("reference date '{date}' is not a date")))?;
    let cal = Calendar::parse(calendar)?;
    Ok(values
        .iter()
        .map(|&v| {
            let total = secs + v * scale;
            let days = (total / 86400.0).floor() as i64;
            cal.month_after(y, m, d, days)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_of_cf_axes() {
        // The FNOC record: hours since 1980-01-14 14:00, monthly steps (Jan 1982 is 17598 h?):
        // 17598 h = 733.25 days after 1980-01-14 14:00 → 1982-01-16 20:00 (1980 is a leap year).
        let m = months(
            &[0.0, 17598.0, 18328.5],
            Some("hour since 1980-01-14 14:00:00"),
            None,
        )
        .unwrap();
        assert_eq!(m, vec![0, 0, 1]);
        // Days since 2000-01-01 in a 360-day calendar: day 30 is February 1st, day 359 December.
        let m = months(
            &[0.0, 29.9, 30.0, 359.0, 360.0],
            Some("days since 2000-01-01"),
            Some("360_day"),
        )
        .unwrap();
        assert_eq!(m, vec![0, 0, 1, 11, 0]);
        // Leap days: 2000-02-29 exists in the Gregorian calendar, not in noleap.
        let m = months(&[59.0], Some("days since 2000-01-01"), Some("standard")).unwrap();
        assert_eq!(m, vec![1]);
        let m = months(&[59.0], Some("days since 2000-01-01"), Some("noleap")).unwrap();
        assert_eq!(m, vec![2]);
        // Before the reference date.
        let m = months(
            &[-1.0, -32.0],
            Some("days since 2000-01-01T00:00:00Z"),
            None,
        )
        .unwrap();
        assert_eq!(m, vec![11, 10]);
        // Seconds, and a reference date of a bare year-month.
        let m = months(&[86400.0 * 45.0], Some("seconds since 1970-01"), None).unwrap();
        assert_eq!(m, vec![1]);
        let d = step_days(&[0.0, 730.5, 1461.0], Some("hours since 1980-01-01")).unwrap();
        assert!((d - 30.4375).abs() < 1e-12);
    }

    #[test]
    fn axes_that_are_not_calendars_are_refused() {
        for (u, c) in [
            (None, None),
            (Some("degrees_north"), None),
            (Some("fortnights since 2000-01-01"), None),
            (Some("days since yesterday"), None),
            (Some("days since 2000-01-01"), Some("martian")),
        ] {
            assert!(months(&[0.0], u, c).is_err(), "{u:?} {c:?}");
        }
    }
}
