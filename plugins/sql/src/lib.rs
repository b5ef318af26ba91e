//! Windowed SQL and filter transforms on DataFusion.
//!
//! - `type: sql` ([`SqlConfig`]) runs a DataFusion `SELECT` over table `input`,
//!   once per closed tumbling or sliding window (by event time with a
//!   watermark, or by arrival time), or once per batch without a window. With
//!   two or more inputs whose ids the query names as tables, it joins them per
//!   window: the first input drives the windows, the others are visible within
//!   `window.context` of each window.
//! - `type: filter` ([`FilterConfig`]) keeps the rows matching a SQL predicate.
//!
//! Both plan their SQL once against the input schema: `check` reports bad SQL
//! at the offending config key and returns the output schema.
#![warn(missing_docs)]

mod context;
mod engine;
mod filter;
mod panes;
mod sql;
mod util;
mod window;

#[cfg(test)]
mod measure;
#[cfg(test)]
mod testutil;

pub use filter::{FilterConfig, FilterTransform};
pub use sql::{SqlConfig, SqlTransform, WINDOW_END, WINDOW_START};
pub use window::{DEFAULT_IDLE_TIMEOUT, WindowConfig};
