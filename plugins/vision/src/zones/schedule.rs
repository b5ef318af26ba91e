//! Opening hours, for `after_hours` rules: a daily open and close time in a
//! fixed UTC offset, and days the store stays closed.

use serde::Deserialize;

/// Store opening hours.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Schedule {
    /// Opening time, `HH:MM` local time.
    pub open: String,
    /// Closing time, `HH:MM` local time; before `open` for hours past midnight.
    pub close: String,
    /// Local time offset from UTC, `+HH:MM` or `-HH:MM` (no daylight saving:
    /// update it with the season).
    #[serde(default = "default_offset")]
    pub utc_offset: String,
    /// Days closed all day: `mon` .. `sun`.
    #[serde(default)]
    pub closed_days: Vec<String>,
}

fn default_offset() -> String {
    "+00:00".to_owned()
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A parsed [`Schedule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    open_min: i64,
    close_min: i64,
    offset_min: i64,
    closed: [bool; 7],
}

fn hhmm(s: &str) -> Option<i64> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

impl Schedule {
    /// Parses the times; the error names the field and what is expected.
    pub fn parse(&self) -> Result<Hours, (&'static str, String)> {
        let open =
            hhmm(&self.open).ok_or(("open", format!("`{}` is not a time HH:MM", self.open)))?;
        let close =
            hhmm(&self.close).ok_or(("close", format!("`{}` is not a time HH:MM", self.close)))?;
        let o = self.utc_offset.trim();
        let (sign, rest) = match o.split_at_checked(1) {
            Some(("+", r)) => (1, r),
            Some(("-", r)) => (-1, r),
            _ => return Err(("utc_offset", format!("`{o}` is not an offset like +01:00"))),
        };
        let offset =
            hhmm(rest).ok_or(("utc_offset", format!("`{o}` is not an offset like +01:00")))?;
        let mut closed = [false; 7];
        for d in &self.closed_days {
            let i = DAYS
                .iter()
                .position(|x| x.eq_ignore_ascii_case(d.trim()))
                .ok_or((
                    "closed_days",
                    format!("`{d}` is not one of {}", DAYS.join(", ")),
                ))?;
            closed[i] = true;
        }
        Ok(Hours {
            open_min: open,
            close_min: close,
            offset_min: sign * offset,
            closed,
        })
    }
}

impl Hours {
    /// Whether the store is closed at `ts_ms` (UTC milliseconds).
    pub fn after_hours(&self, ts_ms: i64) -> bool {
        let local_min = ts_ms.div_euclid(60_000) + self.offset_min;
        let day = local_min.div_euclid(24 * 60);
        let minute = local_min.rem_euclid(24 * 60);
        // 1970-01-01 was a Thursday (index 3 from Monday).
        let weekday = (day + 3).rem_euclid(7) as usize;
        let open = if self.open_min <= self.close_min {
            minute >= self.open_min && minute < self.close_min
        } else {
            minute >= self.open_min || minute < self.close_min
        };
        self.closed[weekday] || !open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(open: &str, close: &str, offset: &str, closed: &[&str]) -> Hours {
        Schedule {
            open: open.into(),
            close: close.into(),
            utc_offset: offset.into(),
            closed_days: closed.iter().map(|s| (*s).to_owned()).collect(),
        }
        .parse()
        .unwrap()
    }

    /// 2026-11-20 (a Friday) at `h:m` UTC, in ms.
    fn friday_utc(h: i64, m: i64) -> i64 {
        (1_795_132_800 + h * 3600 + m * 60) * 1000
    }

    #[test]
    fn open_and_closed_by_local_time() {
        let h = hours("08:00", "21:00", "+01:00", &[]);
        assert!(h.after_hours(friday_utc(6, 59)));
        assert!(!h.after_hours(friday_utc(7, 0)));
        assert!(!h.after_hours(friday_utc(19, 59)));
        assert!(h.after_hours(friday_utc(20, 0)));
    }

    #[test]
    fn hours_past_midnight_and_closed_days() {
        let h = hours("18:00", "02:00", "+00:00", &["fri"]);
        assert!(h.after_hours(friday_utc(19, 0)));
        let saturday_1am = friday_utc(25, 0);
        assert!(!h.after_hours(saturday_1am));
        assert!(h.after_hours(friday_utc(27, 0)));
    }

    #[test]
    fn bad_times_name_their_field() {
        let s = Schedule {
            open: "8am".into(),
            close: "21:00".into(),
            utc_offset: "+00:00".into(),
            closed_days: vec![],
        };
        assert_eq!(s.parse().unwrap_err().0, "open");
    }
}
