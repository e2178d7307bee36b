//! Times for people and tools: RFC 3339 in UTC beside the API's Unix seconds and milliseconds
//! (read as they are, without a Unix-time conversion), and the times the API's queries and the
//! command line's `--since`/`--until` take (RFC 3339 or Unix seconds).

use std::time::{Duration, UNIX_EPOCH};

/// Generic over "a time or none", so every `*_at` field of the API takes the same call.
pub(crate) trait Stamp {
    /// The RFC 3339 text of the value.
    type Text;
    /// From Unix seconds.
    fn seconds_text(self) -> Self::Text;
    /// From Unix milliseconds.
    fn millis_text(self) -> Self::Text;
}

impl Stamp for i64 {
    type Text = String;

    fn seconds_text(self) -> String {
        format(self.saturating_mul(1000), false)
    }

    fn millis_text(self) -> String {
        format(self, true)
    }
}

impl Stamp for Option<i64> {
    type Text = Option<String>;

    fn seconds_text(self) -> Option<String> {
        self.map(Stamp::seconds_text)
    }

    fn millis_text(self) -> Option<String> {
        self.map(Stamp::millis_text)
    }
}

/// Unix seconds as RFC 3339, e.g. `2026-12-05T11:20:04Z`.
pub(crate) fn rfc3339<T: Stamp>(seconds: T) -> T::Text {
    seconds.seconds_text()
}

/// Unix milliseconds as RFC 3339 with milliseconds, e.g. `2026-12-05T11:20:04.125Z`.
pub(crate) fn rfc3339_ms<T: Stamp>(millis: T) -> T::Text {
    millis.millis_text()
}

fn format(millis: i64, with_millis: bool) -> String {
    // Before 1970 (never written by riskhook, possible in a hand-edited database): clamp,
    // rather than fail a whole answer over one odd value.
    let millis = u64::try_from(millis).unwrap_or(0);
    let at = UNIX_EPOCH + Duration::from_millis(millis);
    if with_millis {
        humantime::format_rfc3339_millis(at).to_string()
    } else {
        humantime::format_rfc3339_seconds(at).to_string()
    }
}

/// A time given as RFC 3339 (`2026-12-01T00:00:00Z`) or Unix seconds.
pub(crate) fn parse(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| {
            format!("`{text}`: {e} (give RFC 3339, e.g. 2026-12-01T00:00:00Z, or Unix seconds)")
        })
        .and_then(|t| {
            t.duration_since(UNIX_EPOCH)
                .map_err(|_| format!("`{text}` is before 1970"))
                .and_then(|d| i64::try_from(d.as_secs()).map_err(|e| e.to_string()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_millis_read_as_utc() {
        assert_eq!(rfc3339(1_796_469_604_i64), "2026-12-05T11:20:04Z");
        assert_eq!(
            rfc3339(Some(0_i64)),
            Some("1970-01-01T00:00:00Z".to_owned())
        );
        assert_eq!(rfc3339(None::<i64>), None);
        assert_eq!(
            rfc3339_ms(1_796_469_604_125_i64),
            "2026-12-05T11:20:04.125Z"
        );
        assert_eq!(rfc3339(-5_i64), "1970-01-01T00:00:00Z");
    }
}
