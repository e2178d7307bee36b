//! RFC 3339 timestamps to epoch seconds, for the nested envelope's ISO-8601 `timestamp`.
//!
//! Hand-written because the crate takes no date-time dependency and needs only this one
//! conversion. It accepts what RFC 3339 allows (a `T`, `t` or space separator, any number of
//! fractional digits, `Z`/`z` or a `±HH:MM` offset) plus the compact `±HHMM` offset seen in
//! Didit's `time_zone_offset`. It rejects calendar-invalid dates and leap seconds (`:60`),
//! and times without an offset, which would be ambiguous.

/// Epoch seconds (floor of the instant) for an RFC 3339 timestamp, or `None` if it is not one.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date_time, offset) = match s.as_bytes() {
        [
            y1,
            y2,
            y3,
            y4,
            b'-',
            mo1,
            mo2,
            b'-',
            d1,
            d2,
            b'T' | b't' | b' ',
            h1,
            h2,
            b':',
            mi1,
            mi2,
            b':',
            s1,
            s2,
            rest @ ..,
        ] => (
            [
                digits(&[*y1, *y2, *y3, *y4])?,
                digits(&[*mo1, *mo2])?,
                digits(&[*d1, *d2])?,
                digits(&[*h1, *h2])?,
                digits(&[*mi1, *mi2])?,
                digits(&[*s1, *s2])?,
            ],
            offset_seconds(skip_fraction(rest)?)?,
        ),
        _ => return None,
    };
    let [year, month, day, hour, minute, second] = date_time;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second - offset)
}

/// Strips an optional `.digits` fraction. The fraction is dropped rather than rounded: the
/// whole-second part of a non-negative fraction is already the floor of the instant.
fn skip_fraction(rest: &[u8]) -> Option<&[u8]> {
    match rest {
        [b'.', tail @ ..] => {
            let n = tail.iter().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            tail.get(n..)
        }
        _ => Some(rest),
    }
}

fn offset_seconds(rest: &[u8]) -> Option<i64> {
    let (sign, h1, h2, m1, m2) = match rest {
        [b'Z' | b'z'] => return Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            (*sign, *h1, *h2, *m1, *m2)
        }
        _ => return None,
    };
    let hours = digits(&[h1, h2])?;
    let minutes = digits(&[m1, m2])?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    let seconds = hours * 3_600 + minutes * 60;
    Some(if sign == b'-' { -seconds } else { seconds })
}

fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0_i64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's `days_from_civil`),
/// for a month 1-12 and a day 1-31. Shared with the signal mapping, which dates documents.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339;

    #[test]
    fn converts_the_forms_didit_documents() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-05-29T09:37:26Z"), Some(1_780_047_446));
        assert_eq!(parse_rfc3339("2026-11-20T10:15:30Z"), Some(1_795_169_730));
        assert_eq!(
            parse_rfc3339("2026-11-20T10:15:30.123456Z"),
            Some(1_795_169_730)
        );
        assert_eq!(
            parse_rfc3339("2026-11-20T10:15:30+01:00"),
            Some(1_795_166_130)
        );
        assert_eq!(
            parse_rfc3339("2026-11-20t10:15:30-0530"),
            Some(1_795_189_530)
        );
        assert_eq!(parse_rfc3339("2024-02-29 23:59:59z"), Some(1_709_251_199));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.9Z"), Some(-1));
        assert_eq!(parse_rfc3339("0000-03-01T00:00:00Z"), Some(-62_162_035_200));
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59Z"), Some(253_402_300_799));
    }

    #[test]
    fn rejects_invalid_dates_and_malformed_text() {
        for bad in [
            "",
            "2026-05-29",
            "2026-05-29T09:37:26",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-05-00T00:00:00Z",
            "2026-05-29T24:00:00Z",
            "2026-05-29T09:60:00Z",
            "2026-05-29T09:37:60Z",
            "2026-05-29T09:37:26.Z",
            "2026-05-29T09:37:26+24:00",
            "2026-05-29T09:37:26+01:60",
            "2026-05-29T09:37:26+1:00",
            "2026-05-29T09:37:26ZZ",
            "2026-05-29X09:37:26Z",
            "+026-05-29T09:37:26Z",
            "2026-05-29T09:37:26 Z",
            "２026-05-29T09:37:26Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
