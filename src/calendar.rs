//! Time axes as the CF conventions write them: values in units such as `days since 1998-01-01`
//! or `hour since 1980-01-14 14:00:00`, counted in a calendar (`standard`, `gregorian`,
//! `proleptic_gregorian`, `noleap`/`365_day`, `all_leap`/`366_day`, `360_day`). Dates
//! (`2005-05-14`, `2005-05-14T12:00`, `2005-05`) become numbers in an axis' units and back, and a
//! number becomes the step of the axis it falls in.
//!
//! The `standard` and `gregorian` calendars are the Gregorian calendar from 1582-10-15 on (the
//! Julian calendar before: dates before that day are refused in them; `proleptic_gregorian`
//! takes every date).

use crate::error::{Error, Result};

/// A calendar of the CF conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calendar {
    /// `standard`, `gregorian`: the Gregorian calendar from 1582-10-15 on.
    Standard,
    /// `proleptic_gregorian`: the Gregorian calendar extended to every year.
    ProlepticGregorian,
    /// `noleap`, `365_day`: no 29 February.
    NoLeap,
    /// `all_leap`, `366_day`: a 29 February every year.
    AllLeap,
    /// `360_day`: twelve months of 30 days.
    Day360,
}

impl Calendar {
    /// The calendar of a `calendar` attribute (`None`: `standard`, the CF default).
    pub fn parse(name: Option<&str>) -> Result<Self> {
        let Some(name) = name else {
            return Ok(Self::Standard);
        };
        Ok(match name.trim().to_lowercase().as_str() {
            "" | "standard" | "gregorian" => Self::Standard,
            "proleptic_gregorian" => Self::ProlepticGregorian,
            "noleap" | "365_day" | "no_leap" => Self::NoLeap,
            "all_leap" | "366_day" => Self::AllLeap,
            "360_day" => Self::Day360,
            other => {
                return Err(Error::config(
                    "calendar",
                    format!(
                        "'{other}' is not a calendar this reader knows (standard, gregorian, \
                         proleptic_gregorian, noleap, 365_day, all_leap, 366_day, 360_day)"
                    ),
                ));
            }
        })
    }

    /// The calendar's name (the first of its CF names).
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::ProlepticGregorian => "proleptic_gregorian",
            Self::NoLeap => "noleap",
            Self::AllLeap => "all_leap",
            Self::Day360 => "360_day",
        }
    }

    /// Days in `month` (1..=12) of `year`.
    fn month_days(self, year: i64, month: u32) -> u32 {
        const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        match self {
            Self::Day360 => 30,
            _ if month != 2 => DAYS[month as usize - 1],
            Self::NoLeap => 28,
            Self::AllLeap => 29,
            Self::Standard | Self::ProlepticGregorian => {
                if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                    29
                } else {
                    28
                }
            }
        }
    }

    /// The day number of a date (days since an epoch of the calendar's own).
    fn day_number(self, d: &Date) -> i64 {
        let (y, m, day) = (d.year, d.month as i64, d.day as i64);
        match self {
            Self::Day360 => y * 360 + (m - 1) * 30 + day - 1,
            Self::NoLeap | Self::AllLeap => {
                let before: i64 = (1..d.month).map(|k| self.month_days(y, k) as i64).sum();
                let per = if self == Self::NoLeap { 365 } else { 366 };
                y * per + before + day - 1
            }
            Self::Standard | Self::ProlepticGregorian => {
                // Days since 1970-01-01 (H. Hinnant's days_from_civil).
                let y = if m <= 2 { y - 1 } else { y };
                let era = y.div_euclid(400);
                let yoe = y - era * 400;
                let mp = (m + 9) % 12;
                let doy = (153 * mp + 2) / 5 + day - 1;
                let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
                era * 146_097 + doe - 719_468
            }
        }
    }

    /// The date of a day number (the inverse of [`Self::day_number`]).
    fn date_of_day(self, n: i64) -> (i64, u32, u32) {
        let within = |year: i64, mut doy: i64| {
            let mut month = 1;
            while doy >= self.month_days(year, month) as i64 {
                doy -= self.month_days(year, month) as i64;
                month += 1;
            }
            (year, month, doy as u32 + 1)
        };
        match self {
            Self::Day360 => within(n.div_euclid(360), n.rem_euclid(360)),
            Self::NoLeap => within(n.div_euclid(365), n.rem_euclid(365)),
            Self::AllLeap => within(n.div_euclid(366), n.rem_euclid(366)),
            Self::Standard | Self::ProlepticGregorian => {
                // H. Hinnant's civil_from_days.
                let z = n + 719_468;
                let era = z.div_euclid(146_097);
                let doe = z - era * 146_097;
                let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
                let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
                let mp = (5 * doy + 2) / 153;
                let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
                let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
                let y = yoe + era * 400 + i64::from(m <= 2);
                (y, m, d)
            }
        }
    }
}

/// A date and time of day, as written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Date {
    /// The year.
    pub year: i64,
    /// The month, 1..=12.
    pub month: u32,
    /// The day of the month, from 1.
    pub day: u32,
    /// Seconds since midnight.
    pub seconds: f64,
}

impl Date {
    /// Reads `YYYY-MM-DD`, `YYYY-MM` (the first of the month), with an optional time
    /// `THH:MM[:SS[.F]]` or ` HH:MM[:SS]` and an optional zone of zero offset (`Z`, `UTC`,
    /// `+00:00`). `None` where the text is not such a date.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let t = t
            .strip_suffix('Z')
            .or_else(|| t.strip_suffix("UTC"))
            .or_else(|| t.strip_suffix("+00:00"))
            .or_else(|| t.strip_suffix("+0:00"))
            .or_else(|| t.strip_suffix("+00"))
            .unwrap_or(t)
            .trim();
        let (day, clock) = match t.split_once(['T', ' ']) {
            Some((d, c)) => (d, Some(c.trim())),
            None => (t, None),
        };
        let (neg, day) = match day.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, day),
        };
        let parts: Vec<&str> = day.split('-').collect();
        let int = |s: &str| -> Option<i64> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let (year, month, dom) = match parts.as_slice() {
            [y, m] => (int(y)?, int(m)?, 1),
            [y, m, d] => (int(y)?, int(m)?, int(d)?),
            _ => return None,
        };
        let year = if neg { -year } else { year };
        if !(1..=12).contains(&month) || !(1..=31).contains(&dom) {
            return None;
        }
        let seconds = match clock {
            None => 0.0,
            Some(c) => {
                let f: Vec<&str> = c.split(':').collect();
                let (h, m, s) = match f.as_slice() {
                    [h] => (int(h)?, 0, 0.0),
                    [h, m] => (int(h)?, int(m)?, 0.0),
                    [h, m, s] => (int(h)?, int(m)?, s.parse::<f64>().ok()?),
                    _ => return None,
                };
                if h > 24 || m > 59 || !(0.0..61.0).contains(&s) {
                    return None;
                }
                (h * 3600 + m * 60) as f64 + s
            }
        };
        Some(Self {
            year,
            month: month as u32,
            day: dom as u32,
            seconds,
        })
    }
}

/// The units of a time axis: `UNIT since REFERENCE` in a calendar.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeUnits {
    /// Seconds per unit.
    unit: f64,
    /// The unit as written, for messages.
    name: String,
    /// The reference date.
    reference: Date,
    /// The calendar.
    calendar: Calendar,
}

impl TimeUnits {
    /// Reads `units` (`days since 1998-01-01`, `hours since 1980-01-14 14:00:00`) and the
    /// `calendar` attribute (`None`: standard).
    ///
    /// # Errors
    /// Units that are not `UNIT since DATE` with UNIT of days, hours, minutes or seconds (months
    /// and years are not of fixed length), an unknown calendar, a reference date before
    /// 1582-10-15 in the standard calendar.
    pub fn parse(units: &str, calendar: Option<&str>) -> Result<Self> {
        let bad = |reason: String| Error::config("time units", format!("'{units}': {reason}"));
        let (unit, reference) = units
            .split_once(" since ")
            .ok_or_else(|| bad("not of the form 'UNIT since DATE'".into()))?;
        let name = unit.trim().to_lowercase();
        let seconds = match name.as_str() {
            "days" | "day" | "d" => 86_400.0,
            "hours" | "hour" | "hrs" | "hr" | "h" => 3_600.0,
            "minutes" | "minute" | "mins" | "min" => 60.0,
            "seconds" | "second" | "secs" | "sec" | "s" => 1.0,
            other => {
                return Err(bad(format!(
                    "unit '{other}' is not days, hours, minutes or seconds"
                )));
            }
        };
        let reference = Date::parse(reference)
            .ok_or_else(|| bad(format!("'{}' is not a date", reference.trim())))?;
        let calendar = Calendar::parse(calendar)?;
        let out = Self {
            unit: seconds,
            name,
            reference,
            calendar,
        };
        out.check_standard(&reference)?;
        Ok(out)
    }

    /// The calendar.
    pub fn calendar(&self) -> Calendar {
        self.calendar
    }

    fn check_standard(&self, d: &Date) -> Result<()> {
        let early = (d.year, d.month, d.day) < (1582, 10, 15);
        if self.calendar == Calendar::Standard && early {
            return Err(Error::config(
                "calendar",
                format!(
                    "{:04}-{:02}-{:02} lies before 1582-10-15, where the standard calendar is \
                     Julian; this reader takes such dates in proleptic_gregorian only",
                    d.year, d.month, d.day
                ),
            ));
        }
        Ok(())
    }

    /// Seconds of `d` since the calendar's epoch.
    fn seconds(&self, d: &Date) -> f64 {
        self.calendar.day_number(d) as f64 * 86_400.0 + d.seconds
    }

    /// The axis value of a date, in these units.
    ///
    /// # Errors
    /// A day that the calendar lacks (`2001-02-29`, `2001-02-30` outside `360_day`), a date
    /// before 1582-10-15 in the standard calendar.
    pub fn value(&self, d: &Date) -> Result<f64> {
        if d.day > self.calendar.month_days(d.year, d.month) {
            return Err(Error::config(
                "date",
                format!(
                    "{:04}-{:02}-{:02} does not exist in the {} calendar",
                    d.year,
                    d.month,
                    d.day,
                    self.calendar.name()
                ),
            ));
        }
        self.check_standard(d)?;
        Ok((self.seconds(d) - self.seconds(&self.reference)) / self.unit)
    }

    /// The date of an axis value, written `YYYY-MM-DD` (with `THH:MM` or `THH:MM:SS` when not
    /// midnight).
    pub fn format(&self, value: f64) -> String {
        let total = self.seconds(&self.reference) + value * self.unit;
        let days = (total / 86_400.0).floor();
        let mut secs = (total - days * 86_400.0).round() as i64;
        let mut days = days as i64;
        if secs >= 86_400 {
            days += 1;
            secs -= 86_400;
        }
        let (y, m, d) = self.calendar.date_of_day(days);
        let date = format!("{y:04}-{m:02}-{d:02}");
        match secs {
            0 => date,
            s if s % 60 == 0 => format!("{date}T{:02}:{:02}", s / 3600, s / 60 % 60),
            s => format!("{date}T{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
        }
    }

    /// The month (1..=12) of an axis value.
    pub fn month(&self, value: f64) -> u32 {
        let total = self.seconds(&self.reference) + value * self.unit;
        self.calendar
            .date_of_day((total / 86_400.0).floor() as i64)
            .1
    }

    /// The unit as written (`days`, `hour`).
    pub fn unit_name(&self) -> &str {
        &self.name
    }
}

/// The month (0 = January … 11) of each value of a time axis with CF `units` and `calendar`,
/// for seasonal statistics, or why the axis is not a calendar one. A `standard` axis whose
/// reference date lies before 1582-10-15 (`hours since 1-1-1`, as some reanalyses write) is
/// counted in the proleptic Gregorian calendar: its months are then off by the two days that
/// separate the calendars at the reference, at most.
pub fn months(values: &[f64], units: Option<&str>, calendar: Option<&str>) -> Result<Vec<usize>> {
    let units = units.ok_or_else(|| Error::config("time axis", "has no units"))?;
    let parsed =
        TimeUnits::parse(units, calendar).or_else(|e| match Calendar::parse(calendar)? {
            Calendar::Standard => TimeUnits::parse(units, Some("proleptic_gregorian")),
            _ => Err(e),
        })?;
    Ok(values
        .iter()
        .map(|&v| parsed.month(v) as usize - 1)
        .collect())
}

/// The median step of a time axis with CF `units` (`UNIT since DATE`), in days; `None` for an
/// axis of fewer than two values or units that are not a time.
pub fn step_days(values: &[f64], units: Option<&str>) -> Option<f64> {
    let parsed = TimeUnits::parse(units?, Some("proleptic_gregorian")).ok()?;
    let mut steps: Vec<f64> = values
        .windows(2)
        .map(|w| (w[1] - w[0]) * parsed.unit / 86_400.0)
        .collect();
    if steps.is_empty() {
        return None;
    }
    steps.sort_by(f64::total_cmp);
    Some(steps[steps.len() / 2])
}

/// The step of a strictly increasing axis that `value` falls in: the step whose value it is
/// (to a millionth of the axis' spacing), or else the last step at or before it, as long as it
/// lies before the next step (for the last step: within one spacing, that of the step
/// before). `None` outside the axis.
pub fn step_of(axis: &[f64], value: f64) -> Option<usize> {
    let n = axis.len();
    if n == 0 || !value.is_finite() {
        return None;
    }
    let spacing = |k: usize| -> f64 {
        if n == 1 {
            0.0
        } else if k + 1 < n {
            axis[k + 1] - axis[k]
        } else {
            axis[k] - axis[k - 1]
        }
    };
    let k = axis.partition_point(|&t| t <= value);
    // An exact match just below the first step, or just below the next.
    if k < n && (axis[k] - value).abs() <= 1e-6 * spacing(k) {
        return Some(k);
    }
    if k == 0 {
        return None;
    }
    let k = k - 1;
    (value < axis[k] + spacing(k) || (n == 1 && value == axis[0])).then_some(k)
}

/// A time axis of instants given as seconds since 1970-01-01 00:00 (numpy's `datetime64`), in
/// the coarsest of days, hours, minutes and seconds that writes every instant as a whole
/// number, in the proleptic Gregorian calendar (numpy's).
pub fn epoch_axis(name: &str, seconds: &[i64]) -> crate::axis::Axis {
    let (per, unit) = [
        (86_400, "days"),
        (3_600, "hours"),
        (60, "minutes"),
        (1, "seconds"),
    ]
    .into_iter()
    .find(|(per, _)| seconds.iter().all(|s| s % per == 0))
    .expect("every whole number of seconds is one");
    crate::axis::Axis {
        name: name.into(),
        values: seconds.iter().map(|&s| (s / per) as f64).collect(),
        units: Some(format!("{unit} since 1970-01-01 00:00:00")),
        calendar: Some("proleptic_gregorian".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(u: &str, c: Option<&str>) -> TimeUnits {
        TimeUnits::parse(u, c).unwrap()
    }

    fn date(s: &str) -> Date {
        Date::parse(s).unwrap_or_else(|| panic!("{s}"))
    }

    #[test]
    fn dates_become_values_in_each_calendar() {
        // 1998-01-01 is day 10227 since 1970-01-01 (R's Date of the PM10 record's first day).
        let u = units("days since 1970-01-01", None);
        assert_eq!(u.value(&date("1998-01-01")).unwrap(), 10227.0);
        assert_eq!(u.value(&date("2009-12-31")).unwrap(), 14609.0);
        assert_eq!(u.value(&date("2000-03-01")).unwrap(), 11017.0);
        assert_eq!(u.format(14609.0), "2009-12-31");
        assert_eq!(u.value(&date("1998-01-01T12:00")).unwrap(), 10227.5);
        assert_eq!(u.format(10227.75), "1998-01-01T18:00");
        // FNOC's axis: hours since 1980-01-14 14:00; its first step 17598 h is 1982-01-16 20:00.
        let h = units("hour since 1980-01-14 14:00:00", Some("gregorian"));
        assert_eq!(h.format(17598.0), "1982-01-16T20:00");
        assert_eq!(h.value(&date("1982-01-16T20:00")).unwrap(), 17598.0);
        // noleap: a year is 365 days, 2000-03-01 is 59 days after 2000-01-01 (31 + 28).
        let n = units("days since 2000-01-01", Some("noleap"));
        assert_eq!(n.value(&date("2000-03-01")).unwrap(), 59.0);
        assert_eq!(n.value(&date("2004-01-01")).unwrap(), 4.0 * 365.0);
        assert!(n.value(&date("2000-02-29")).is_err());
        assert_eq!(n.format(59.0), "2000-03-01");
        // 360_day: 30-day months, 2000-02-30 exists.
        let d = units("days since 2000-01-01", Some("360_day"));
        assert_eq!(d.value(&date("2000-02-30")).unwrap(), 59.0);
        assert_eq!(d.value(&date("2001-01-01")).unwrap(), 360.0);
        assert_eq!(d.format(59.0), "2000-02-30");
        let a = units("days since 2001-01-01", Some("all_leap"));
        assert_eq!(a.value(&date("2001-03-01")).unwrap(), 60.0);
        // Months as YYYY-MM are their first day.
        let m = units("days since 1895-01-01", Some("proleptic_gregorian"));
        assert_eq!(m.value(&date("1895-02")).unwrap(), 31.0);
    }

    #[test]
    fn the_gregorian_round_trip_holds_over_centuries() {
        let u = units("days since 1900-01-01", Some("proleptic_gregorian"));
        for v in (-200_000..200_000).step_by(997) {
            let s = u.format(v as f64);
            assert_eq!(u.value(&date(&s)).unwrap(), v as f64, "{s}");
        }
        for cal in ["noleap", "360_day", "all_leap"] {
            let u = units("days since 0001-01-01", Some(cal));
            for v in (0..50_000).step_by(37) {
                let s = u.format(v as f64);
                assert_eq!(u.value(&date(&s)).unwrap(), v as f64, "{cal} {s}");
            }
        }
    }

    #[test]
    fn bad_units_and_dates_are_refused() {
        for (u, c, needle) in [
            ("months since 2000-01-01", None, "unit 'months'"),
            ("days after 2000-01-01", None, "UNIT since DATE"),
            ("days since yesterday", None, "not a date"),
            ("days since 2000-01-01", Some("martian"), "'martian'"),
            ("days since 1500-01-01", None, "before 1582-10-15"),
        ] {
            let e = TimeUnits::parse(u, c).unwrap_err().to_string();
            assert!(e.contains(needle), "{u}: {e}");
        }
        for bad in [
            "2005-13-01",
            "20050514",
            "2005-05-14T25:00",
            "2005-05-32",
            "x",
            "",
        ] {
            assert!(Date::parse(bad).is_none(), "{bad} read as a date");
        }
        assert!(Date::parse("2005-05-14T12:00Z").is_some());
    }

    #[test]
    fn values_fall_in_the_step_in_progress() {
        let axis = [0.0, 31.0, 59.0, 90.0];
        assert_eq!(step_of(&axis, 0.0), Some(0));
        assert_eq!(step_of(&axis, 30.9), Some(0));
        assert_eq!(step_of(&axis, 31.0), Some(1));
        assert_eq!(step_of(&axis, 58.99999999), Some(2), "a match to rounding");
        assert_eq!(step_of(&axis, 100.0), Some(3));
        assert_eq!(step_of(&axis, 121.0), None, "past the last step's spacing");
        assert_eq!(step_of(&axis, -0.5), None);
        assert_eq!(step_of(&[5.0], 5.0), Some(0));
        assert_eq!(step_of(&[5.0], 5.5), None);
    }

    #[test]
    fn numpy_instants_make_an_axis_in_the_coarsest_whole_unit() {
        // 1998-01-01 and 1998-01-02 at midnight: days since 1970-01-01.
        let a = epoch_axis("time", &[883_612_800, 883_699_200]);
        assert_eq!(a.values, vec![10227.0, 10228.0]);
        assert_eq!(a.units.as_deref(), Some("days since 1970-01-01 00:00:00"));
        let u = TimeUnits::parse(a.units.as_deref().unwrap(), a.calendar.as_deref()).unwrap();
        assert_eq!(u.format(a.values[1]), "1998-01-02");
        let h = epoch_axis("time", &[883_612_800, 883_612_800 + 6 * 3600]);
        assert_eq!(h.values, vec![245_448.0, 245_454.0]);
        assert!(h.units.unwrap().starts_with("hours since"));
    }

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
        // A standard axis from year 1 (as NCEP's reanalyses write it), counted proleptically:
        // 1948-01-01 is 711 126 days after 0001-01-01 in the proleptic Gregorian calendar.
        let h = 711_126.0 * 24.0;
        let m = months(
            &[h, h + 24.0 * 31.0],
            Some("hours since 1-1-1 00:00:0.0"),
            None,
        )
        .unwrap();
        assert_eq!(m, vec![0, 1]);
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
