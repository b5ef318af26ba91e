//! The `sql` transform: DataFusion SQL over each closed window (tumbling or
//! sliding, by event time or arrival time), or over every batch; with several
//! inputs named as tables, a windowed join of them.

mod config;
mod joined;
mod transform;

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod join_proptests;
#[cfg(test)]
mod join_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use config::{SqlConfig, WINDOW_END, WINDOW_START};
pub use transform::SqlTransform;
