//! Local files and the console: a CSV replay source, and sinks writing JSON
//! lines to a file or the console.
#![warn(missing_docs)]

mod console;
mod csv;
mod file;

pub use console::{ConsoleFormat, ConsoleSink, ConsoleSinkConfig};
pub use csv::{CsvSource, CsvSourceConfig};
pub use file::{FileSink, FileSinkConfig};
