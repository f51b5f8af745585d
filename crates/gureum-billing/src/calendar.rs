//! UTC calendar arithmetic on epoch milliseconds.
//!
//! Owned here: converting instants to civil dates and back, the calendar boundaries that
//! usage is split at (hours, days, months), [`Month`] (a bill's period, `YYYY-MM`), and
//! the date forms Cost Explorer speaks (`YYYY-MM-DD`, `YYYY-MM-DDThh:mm:ssZ`). Everything
//! is UTC, as AWS bills are; there is no clock here: callers pass `now` in.

use std::fmt;

pub const MS_PER_SECOND: i64 = 1_000;
pub const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
pub const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
pub const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number from [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap_year(year) => 29,
        _ => 28,
    }
}

/// The instant `ms` rounded down to its UTC hour.
pub fn floor_hour(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_HOUR) * MS_PER_HOUR
}

/// The instant `ms` rounded down to its UTC midnight.
pub fn floor_day(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY) * MS_PER_DAY
}

/// `ms` moved by `months` calendar months, the day clamped to the target month's length
/// (2024-01-31 + 1 month = 2024-02-29), the time of day kept. This is how a 12-month
/// free-tier period ends: the account's creation instant, twelve months on.
pub fn add_months(ms: i64, months: i64) -> i64 {
    let days = ms.div_euclid(MS_PER_DAY);
    let time_of_day = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let index = y * 12 + i64::from(m) - 1 + months;
    let (ny, nm) = (index.div_euclid(12), (index.rem_euclid(12) + 1) as u32);
    let nd = d.min(days_in_month(ny, nm));
    days_from_civil(ny, nm, nd) * MS_PER_DAY + time_of_day
}

/// `YYYY-MM-DD` of the UTC day containing `ms`.
pub fn format_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDThh:mm:ssZ`, the form Cost Explorer uses for hourly periods.
pub fn format_datetime(ms: i64) -> String {
    let tod = ms.rem_euclid(MS_PER_DAY);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        format_date(ms),
        tod / MS_PER_HOUR,
        tod % MS_PER_HOUR / MS_PER_MINUTE,
        tod % MS_PER_MINUTE / MS_PER_SECOND
    )
}

/// Why a Cost Explorer date did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateError {
    /// Not `YYYY-MM-DD` with an optional `Thh:mm:ssZ` (the model's pattern).
    Pattern,
    /// The right shape but no such day or time (2024-02-30, 25:00:00).
    Invalid,
}

/// Parse Cost Explorer's `YearMonthDay`: `YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ssZ`. Returns the
/// instant and whether a time part was given.
pub fn parse_ce_date(s: &str) -> Result<(i64, bool), DateError> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'))
    };
    let date_ok = b.len() >= 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-';
    let date_ok = date_ok && digits(8..10);
    let has_time = match b.len() {
        10 => false,
        20 => {
            if !(b[10] == b'T'
                && digits(11..13)
                && b[13] == b':'
                && digits(14..16)
                && b[16] == b':'
                && digits(17..19)
                && b[19] == b'Z')
            {
                return Err(DateError::Pattern);
            }
            true
        }
        _ => return Err(DateError::Pattern),
    };
    if !date_ok {
        return Err(DateError::Pattern);
    }
    let (y, m, d) = (num(0..4), num(5..7) as u32, num(8..10) as u32);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(DateError::Invalid);
    }
    let mut ms = days_from_civil(y, m, d) * MS_PER_DAY;
    if has_time {
        let (hh, mm, ss) = (num(11..13), num(14..16), num(17..19));
        if hh > 23 || mm > 59 || ss > 59 {
            return Err(DateError::Invalid);
        }
        ms += hh * MS_PER_HOUR + mm * MS_PER_MINUTE + ss * MS_PER_SECOND;
    }
    Ok((ms, has_time))
}

/// A calendar month in UTC: the period of one bill and of one free-tier allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// `None` unless `1 <= month <= 12` and the year is in 1..=9999.
    pub fn new(year: i32, month: u32) -> Option<Month> {
        ((1..=12).contains(&month) && (1..=9999).contains(&year)).then_some(Month { year, month })
    }

    /// The month containing the instant `ms`.
    pub fn of(ms: i64) -> Month {
        let (y, m, _) = civil_from_days(ms.div_euclid(MS_PER_DAY));
        Month {
            year: y as i32,
            month: m,
        }
    }

    /// Parse `YYYY-MM` (what `gureum bill --month` takes).
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Month::new(y.parse().ok()?, m.parse().ok()?)
    }

    pub fn year(self) -> i32 {
        self.year
    }

    /// 1..=12
    pub fn month(self) -> u32 {
        self.month
    }

    /// Months since year 0, so that differences count months.
    pub fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    /// The first instant of the month.
    pub fn start_ms(self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, 1) * MS_PER_DAY
    }

    /// The first instant of the next month (the month is `[start_ms, end_ms)`).
    pub fn end_ms(self) -> i64 {
        self.next().start_ms()
    }

    pub fn days(self) -> u32 {
        days_in_month(i64::from(self.year), self.month)
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn prev(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The instant of a UTC date and time, for tests and callers that build fixtures.
pub fn utc(year: i64, month: u32, day: u32, hour: i64, minute: i64, second: i64) -> i64 {
    days_from_civil(year, month, day) * MS_PER_DAY
        + hour * MS_PER_HOUR
        + minute * MS_PER_MINUTE
        + second * MS_PER_SECOND
}

/// Serialized as `YYYY-MM`.
impl serde::Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in [-800_000, -1, 0, 1, 11_016, 19_783, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn months_and_leap_years() {
        let feb = Month::new(2024, 2).unwrap();
        assert_eq!(feb.days(), 29);
        assert_eq!(Month::new(2023, 2).unwrap().days(), 28);
        assert_eq!(Month::new(1900, 2).unwrap().days(), 28);
        assert_eq!(Month::new(2000, 2).unwrap().days(), 29);
        assert_eq!(feb.end_ms() - feb.start_ms(), 29 * MS_PER_DAY);
        assert_eq!(
            Month::new(2024, 12).unwrap().next(),
            Month::new(2025, 1).unwrap()
        );
        assert_eq!(
            Month::new(2025, 1).unwrap().prev(),
            Month::new(2024, 12).unwrap()
        );
        assert_eq!(Month::of(utc(2024, 3, 1, 0, 0, 0) - 1), feb);
        assert_eq!(Month::parse("2024-02"), Some(feb));
        assert_eq!(feb.to_string(), "2024-02");
        for bad in [
            "2024-2", "2024-13", "24-02", "2024-00", "2024/02", "abcd-ef",
        ] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn add_months_clamps_the_day() {
        assert_eq!(
            add_months(utc(2024, 1, 31, 10, 0, 0), 1),
            utc(2024, 2, 29, 10, 0, 0)
        );
        assert_eq!(
            add_months(utc(2024, 2, 29, 0, 0, 1), 12),
            utc(2025, 2, 28, 0, 0, 1)
        );
        assert_eq!(
            add_months(utc(2024, 5, 15, 0, 0, 0), 12),
            utc(2025, 5, 15, 0, 0, 0)
        );
        assert_eq!(
            add_months(utc(2024, 11, 30, 0, 0, 0), 3),
            utc(2025, 2, 28, 0, 0, 0)
        );
    }

    #[test]
    fn ce_dates() {
        assert_eq!(
            parse_ce_date("2024-03-05"),
            Ok((utc(2024, 3, 5, 0, 0, 0), false))
        );
        assert_eq!(
            parse_ce_date("2024-03-05T13:04:05Z"),
            Ok((utc(2024, 3, 5, 13, 4, 5), true))
        );
        for bad in [
            "2024-3-05",
            "2024-03-05T13:04Z",
            "20240305",
            "2024-03-05 ",
            "",
        ] {
            assert_eq!(parse_ce_date(bad), Err(DateError::Pattern), "{bad}");
        }
        for bad in [
            "2024-02-30",
            "2023-02-29",
            "2024-13-01",
            "2024-03-05T24:00:00Z",
        ] {
            assert_eq!(parse_ce_date(bad), Err(DateError::Invalid), "{bad}");
        }
        let t = utc(2024, 3, 5, 13, 4, 5);
        assert_eq!(format_date(t), "2024-03-05");
        assert_eq!(format_datetime(t), "2024-03-05T13:04:05Z");
        assert_eq!(floor_day(t), utc(2024, 3, 5, 0, 0, 0));
        assert_eq!(floor_hour(t), utc(2024, 3, 5, 13, 0, 0));
    }
}
