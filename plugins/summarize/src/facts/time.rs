//! UTC formatting of epoch milliseconds, as digests show times.

/// `HH:MM:SS` (UTC) of `ms` since the Unix epoch: the form summaries use.
pub fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// RFC 3339 UTC timestamp with milliseconds, e.g. `2024-03-01T08:00:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    sluice_core::clock::rfc3339_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00");
        assert_eq!(clock(1_709_280_123_456), "08:02:03");
        assert_eq!(clock(-1000), "23:59:59");
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_709_280_123_456), "2024-03-01T08:02:03.456Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
