//! The two timestamp formats SigV4 meets: ISO 8601 "basic format"
//! (`20150830T123600Z`, in `X-Amz-Date`, the string to sign and, by its first
//! eight characters, the credential scope) and the HTTP `Date` header
//! (`Sun, 30 Aug 2015 12:36:00 GMT`), which a header-signed request may use
//! instead of `X-Amz-Date`.
//!
//! The basic format is parsed and printed by hand: it is on every request's
//! path and needs neither a format-description interpreter nor an allocation.

use time::{format_description::FormatItem, macros::format_description};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Length of `YYYYMMDDTHHMMSSZ`.
pub(crate) const AMZ_DATE_LEN: usize = 16;

const HTTP_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

fn digits(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// Parses `YYYYMMDDTHHMMSSZ` (UTC).
pub(crate) fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != AMZ_DATE_LEN || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let year = i32::try_from(digits(&b[0..4])?).ok()?;
    let month = Month::try_from(u8::try_from(digits(&b[4..6])?).ok()?).ok()?;
    let day = u8::try_from(digits(&b[6..8])?).ok()?;
    let hour = u8::try_from(digits(&b[9..11])?).ok()?;
    let minute = u8::try_from(digits(&b[11..13])?).ok()?;
    let second = u8::try_from(digits(&b[13..15])?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses an HTTP `Date` header value (IMF-fixdate, always GMT).
pub(crate) fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(s.trim(), HTTP_DATE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

fn put2(out: &mut [u8], n: u8) {
    out[0] = b'0' + n / 10;
    out[1] = b'0' + n % 10;
}

/// Formats `t` (converted to UTC) as `YYYYMMDDTHHMMSSZ`.
///
/// Years outside 0..=9999 cannot be written in four digits; they wrap, which
/// only matters for clocks nobody signs with.
pub(crate) fn format_amz_date(t: OffsetDateTime) -> [u8; AMZ_DATE_LEN] {
    let t = t.to_offset(UtcOffset::UTC);
    let mut out = *b"00000000T000000Z";
    // rem_euclid keeps the value in 0..10000, so the casts below cannot truncate.
    let year = t.year().rem_euclid(10_000) as u16;
    put2(&mut out[0..2], (year / 100) as u8);
    put2(&mut out[2..4], (year % 100) as u8);
    put2(&mut out[4..6], u8::from(t.month()));
    put2(&mut out[6..8], t.day());
    put2(&mut out[9..11], t.hour());
    put2(&mut out[11..13], t.minute());
    put2(&mut out[13..15], t.second());
    out
}

/// [`format_amz_date`] as a `&str` view of the buffer.
pub(crate) fn amz_date_str(buf: &[u8; AMZ_DATE_LEN]) -> &str {
    // Only ASCII digits, 'T' and 'Z' are ever written into the buffer.
    std::str::from_utf8(buf).unwrap_or("00000000T000000Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn amz_date_round_trip() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(t, datetime!(2015-08-30 12:36:00 UTC));
        let buf = format_amz_date(t);
        assert_eq!(amz_date_str(&buf), "20150830T123600Z");
    }

    #[test]
    fn amz_date_rejects_malformed() {
        for bad in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "2015-08-30T12:36:00Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20150830T250000Z",
            "2015083aT123600Z",
            "+0150830T123600Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn formats_in_utc() {
        let t = datetime!(2015-08-30 21:36:00 +09:00);
        assert_eq!(amz_date_str(&format_amz_date(t)), "20150830T123600Z");
    }

    #[test]
    fn http_date() {
        assert_eq!(
            parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(datetime!(2015-08-30 12:36:00 UTC))
        );
        assert!(parse_http_date("Sun, 30 Aug 2015 12:36:00 PST").is_none());
        assert!(parse_http_date("20150830T123600Z").is_none());
    }
}
