//! The `sql` transform: DataFusion SQL over each closed window (tumbling or
//! sliding, by event time or arrival time), or over every batch.

mod config;
mod transform;

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use config::{SqlConfig, WINDOW_END, WINDOW_START};
pub use transform::SqlTransform;
