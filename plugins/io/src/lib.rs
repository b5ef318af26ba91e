//! Local output sinks: JSON lines to a file, and the console.
#![warn(missing_docs)]

mod console;
mod file;

pub use console::{ConsoleFormat, ConsoleSink, ConsoleSinkConfig};
pub use file::{FileSink, FileSinkConfig};
