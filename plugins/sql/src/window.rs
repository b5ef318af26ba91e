//! The `window:` block of the `sql` transform and its validation.

use std::time::Duration;

use serde::Deserialize;
use sluice_core::{HumanDuration, Validator};

/// Default for [`WindowConfig::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Window settings: exactly one of `tumbling` or `sliding` (with `every`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WindowConfig {
    /// Size of back-to-back, non-overlapping windows, e.g. `10s`.
    #[serde(default)]
    pub tumbling: Option<HumanDuration>,
    /// Size of overlapping windows, e.g. `30s`; requires `every`.
    #[serde(default)]
    pub sliding: Option<HumanDuration>,
    /// How often a sliding window starts, e.g. `10s`; must divide `sliding`.
    #[serde(default)]
    pub every: Option<HumanDuration>,
    /// How far behind the newest event time a row may arrive and still be
    /// counted (event time only). Default `0s`.
    #[serde(default)]
    pub allowed_lateness: Option<HumanDuration>,
    /// After this long without input, the watermark follows the wall clock
    /// (from the newest event time seen) so windows close when sensors go
    /// quiet. Default `5s`: well above a source's linger, well below typical
    /// window sizes.
    #[serde(default)]
    pub idle_timeout: Option<HumanDuration>,
    /// Only when the query joins several inputs: how far before the start
    /// and after the end of a window the non-driving inputs' rows are visible
    /// to it, e.g. `30s`. A window then closes only once the watermark has
    /// passed its end plus `context`. Default `0s`.
    #[serde(default)]
    pub context: Option<HumanDuration>,
}

/// A validated window in whole milliseconds.
///
/// Rows are kept once per *pane* of `pane_ms`; a window spans
/// `panes_per_window` consecutive panes (1 for tumbling windows) and windows
/// start at every multiple of `pane_ms` since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Pane length: the tumbling size or the sliding `every`.
    pub pane_ms: i64,
    /// Window length in panes.
    pub panes_per_window: i64,
    /// Allowed lateness.
    pub lateness_ms: i64,
    /// Input silence after which the watermark follows the wall clock.
    pub idle_timeout: Duration,
}

impl WindowSpec {
    /// Window length in milliseconds.
    pub fn size_ms(&self) -> i64 {
        self.pane_ms * self.panes_per_window
    }
}

/// Longest accepted window or pane: keeps `pane index x pane_ms` far from
/// `i64` overflow for any millisecond timestamp.
const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

fn whole_ms(v: &mut Validator, key: &str, d: HumanDuration, allow_zero: bool) -> Option<i64> {
    let d = d.get();
    if d.is_zero() && !allow_zero {
        v.error(
            &["window", key],
            format!("`{key}` must be greater than zero"),
        );
        return None;
    }
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        v.error(
            &["window", key],
            format!("`{key}` must be a whole number of milliseconds"),
        );
        return None;
    }
    if d > MAX_WINDOW {
        v.error(&["window", key], format!("`{key}` must be at most 366d"));
        return None;
    }
    i64::try_from(d.as_millis()).ok()
}

impl WindowConfig {
    /// The validated `context` in milliseconds (0 when absent).
    pub fn context_ms(&self, v: &mut Validator) -> Option<i64> {
        whole_ms(
            v,
            "context",
            self.context.unwrap_or(HumanDuration(Duration::ZERO)),
            true,
        )
    }

    /// Validates the block, reporting every problem below `["window", ..]`.
    pub fn resolve(&self, v: &mut Validator) -> Option<WindowSpec> {
        let lateness = whole_ms(
            v,
            "allowed_lateness",
            self.allowed_lateness
                .unwrap_or(HumanDuration(Duration::ZERO)),
            true,
        );
        let idle_timeout = self
            .idle_timeout
            .map_or(DEFAULT_IDLE_TIMEOUT, HumanDuration::get);
        if idle_timeout.is_zero() {
            v.error(
                &["window", "idle_timeout"],
                "`idle_timeout` must be greater than zero",
            );
        }
        let panes = match (self.tumbling, self.sliding) {
            (Some(_), Some(_)) => {
                v.error(
                    &["window", "sliding"],
                    "a window is either `tumbling` or `sliding`, not both",
                )
                .help("remove one of the two keys");
                None
            }
            (None, None) => {
                v.error(
                    &["window"],
                    "a window needs `tumbling: <size>` or `sliding: <size>`",
                )
                .help("e.g. `window: { tumbling: 10s }` or `window: { sliding: 30s, every: 10s }`");
                None
            }
            (Some(size), None) => {
                let size = whole_ms(v, "tumbling", size, false);
                if self.every.is_some() {
                    v.error(
                        &["window", "every"],
                        "`every` applies only to `sliding` windows",
                    )
                    .help("use `sliding: <size>` with `every`, or drop `every`");
                    None
                } else {
                    size.map(|ms| (ms, 1))
                }
            }
            (None, Some(size)) => {
                let size = whole_ms(v, "sliding", size, false);
                let every = match self.every {
                    Some(e) => whole_ms(v, "every", e, false),
                    None => {
                        v.error(&["window", "every"], "a `sliding` window needs `every`")
                            .help("e.g. `window: { sliding: 30s, every: 10s }`");
                        None
                    }
                };
                match (size, every) {
                    (Some(size), Some(every)) if size % every != 0 || every > size => {
                        v.error(
                            &["window", "every"],
                            format!("`every` ({every}ms) must divide `sliding` ({size}ms)"),
                        );
                        None
                    }
                    (Some(size), Some(every)) => Some((every, size / every)),
                    _ => None,
                }
            }
        };
        let (pane_ms, panes_per_window) = panes?;
        if idle_timeout.is_zero() {
            return None;
        }
        Some(WindowSpec {
            pane_ms,
            panes_per_window,
            lateness_ms: lateness?,
            idle_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dur(s: &str) -> Option<HumanDuration> {
        Some(s.parse().unwrap())
    }

    fn window(tumbling: &str, sliding: &str, every: &str) -> WindowConfig {
        let opt = |s: &str| if s.is_empty() { None } else { dur(s) };
        WindowConfig {
            tumbling: opt(tumbling),
            sliding: opt(sliding),
            every: opt(every),
            allowed_lateness: None,
            idle_timeout: None,
            context: None,
        }
    }

    fn error_paths(w: &WindowConfig) -> Vec<Vec<String>> {
        let mut v = Validator::new();
        assert!(w.resolve(&mut v).is_none());
        v.into_issues().into_iter().map(|i| i.path).collect()
    }

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn tumbling_window_is_one_pane_of_its_size() {
        let mut w = window("10s", "", "");
        w.allowed_lateness = dur("2s");
        let spec = w.resolve(&mut Validator::new()).unwrap();
        assert_eq!(
            spec,
            WindowSpec {
                pane_ms: 10_000,
                panes_per_window: 1,
                lateness_ms: 2_000,
                idle_timeout: DEFAULT_IDLE_TIMEOUT
            }
        );
    }

    #[test]
    fn sliding_window_is_split_into_panes_of_every() {
        let spec = window("", "30s", "10s")
            .resolve(&mut Validator::new())
            .unwrap();
        assert_eq!(
            (spec.pane_ms, spec.panes_per_window, spec.size_ms()),
            (10_000, 3, 30_000)
        );
    }

    #[test]
    fn rejects_both_tumbling_and_sliding() {
        assert_eq!(
            error_paths(&window("10s", "30s", "10s")),
            vec![path(&["window", "sliding"])]
        );
    }

    #[test]
    fn rejects_a_window_without_a_size() {
        assert_eq!(error_paths(&window("", "", "")), vec![path(&["window"])]);
    }

    #[test]
    fn rejects_every_on_tumbling_windows() {
        assert_eq!(
            error_paths(&window("10s", "", "5s")),
            vec![path(&["window", "every"])]
        );
    }

    #[test]
    fn rejects_sliding_without_every() {
        assert_eq!(
            error_paths(&window("", "30s", "")),
            vec![path(&["window", "every"])]
        );
    }

    #[test]
    fn rejects_every_that_does_not_divide_the_size() {
        assert_eq!(
            error_paths(&window("", "30s", "7s")),
            vec![path(&["window", "every"])]
        );
        assert_eq!(
            error_paths(&window("", "10s", "20s")),
            vec![path(&["window", "every"])]
        );
    }

    #[test]
    fn rejects_zero_sizes_at_their_key() {
        assert_eq!(
            error_paths(&window("0s", "", "")),
            vec![path(&["window", "tumbling"])]
        );
        assert_eq!(
            error_paths(&window("", "0s", "0s")),
            vec![path(&["window", "sliding"]), path(&["window", "every"])]
        );
        let mut w = window("10s", "", "");
        w.idle_timeout = dur("0s");
        assert_eq!(error_paths(&w), vec![path(&["window", "idle_timeout"])]);
    }

    #[test]
    fn rejects_sub_millisecond_sizes() {
        let mut w = window("10s", "", "");
        w.tumbling = Some(HumanDuration(Duration::from_micros(1500)));
        assert_eq!(error_paths(&w), vec![path(&["window", "tumbling"])]);
    }
}
