//! Reading the fit rows of `sluice fit` from a CSV file.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The first rows of one series, ready for [`super::PcaModel::fit_named`].
#[derive(Debug, Clone, PartialEq)]
pub struct FitRows {
    /// The key value, or `None` when the file is one series.
    pub key: Option<String>,
    /// Row-major values, `n x features`.
    pub rows: Vec<f64>,
    /// CSV line of the first and the last row taken.
    pub lines: (u64, u64),
}

/// Why the fit rows could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FitTableError {
    /// The file could not be opened or read.
    #[error("reading {path}: {source}")]
    Io {
        /// CSV path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not well-formed CSV.
    #[error("{path}: {source}")]
    Csv {
        /// CSV path.
        path: PathBuf,
        /// The CSV error, with its line.
        source: csv::Error,
    },
    /// A requested column is not in the header.
    #[error("{path}: no column `{name}` (columns: {columns})")]
    MissingColumn {
        /// CSV path.
        path: PathBuf,
        /// The column asked for.
        name: String,
        /// The header's columns, comma-separated.
        columns: String,
    },
    /// A value that is not a finite number, or an empty key.
    #[error("{path}: line {line}, column `{column}`: {message}")]
    Value {
        /// CSV path.
        path: PathBuf,
        /// 1-based line in the file.
        line: u64,
        /// Column name.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A series has fewer rows than asked for.
    #[error("{path}: {series} has {found} rows, {wanted} were asked for")]
    TooFewRows {
        /// CSV path.
        path: PathBuf,
        /// `the file` or `key `k``.
        series: String,
        /// Rows found.
        found: usize,
        /// Rows asked for.
        wanted: usize,
    },
    /// No data rows.
    #[error("{path}: no data rows")]
    Empty {
        /// CSV path.
        path: PathBuf,
    },
}

/// Reads the `features` columns of the CSV at `path` (delimiter `,`, `;` or
/// tab, whichever the header line has most of). Without `key` the whole file
/// is one series; with it, each value of that column is one series, in order
/// of first appearance. Each series keeps its first `rows` rows (all when
/// `None`); an empty, non-numeric or non-finite value in a kept row is an
/// error naming its line.
pub fn read_fit_csv(
    path: &Path,
    features: &[String],
    key: Option<&str>,
    rows: Option<usize>,
) -> Result<Vec<FitRows>, FitTableError> {
    let io = |source| FitTableError::Io {
        path: path.to_owned(),
        source,
    };
    let csv_err = |source| FitTableError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut first = String::new();
    BufReader::new(std::fs::File::open(path).map_err(io)?)
        .read_line(&mut first)
        .map_err(io)?;
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&c| first.bytes().filter(|&b| b == c).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_path(path)
        .map_err(csv_err)?;
    let headers = reader.headers().map_err(csv_err)?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| FitTableError::MissingColumn {
                path: path.to_owned(),
                name: name.to_owned(),
                columns: headers.iter().collect::<Vec<_>>().join(", "),
            })
    };
    let feature_ix = features
        .iter()
        .map(|f| column(f))
        .collect::<Result<Vec<_>, _>>()?;
    let key_ix = key.map(column).transpose()?;

    let mut series: Vec<FitRows> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut seen: Vec<usize> = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_err)? {
        let line = record.position().map_or(0, |p| p.line());
        let value_err = |column: &str, message: String| FitTableError::Value {
            path: path.to_owned(),
            line,
            column: column.to_owned(),
            message,
        };
        let k = match (key, key_ix) {
            (Some(name), Some(i)) => {
                let v = record.get(i).unwrap_or("").trim();
                if v.is_empty() {
                    return Err(value_err(name, "the key is empty".to_owned()));
                }
                Some(v)
            }
            _ => None,
        };
        let slot = match index.get(k.unwrap_or("")) {
            Some(&s) => s,
            None => {
                index.insert(k.unwrap_or("").to_owned(), series.len());
                series.push(FitRows {
                    key: k.map(str::to_owned),
                    rows: Vec::new(),
                    lines: (line, line),
                });
                seen.push(0);
                series.len() - 1
            }
        };
        seen[slot] += 1;
        if rows.is_some_and(|n| seen[slot] > n) {
            if key.is_none() {
                break;
            }
            continue;
        }
        let s = &mut series[slot];
        for (name, &i) in features.iter().zip(&feature_ix) {
            let raw = record.get(i).unwrap_or("").trim();
            if raw.is_empty() {
                return Err(value_err(name, "the value is empty".to_owned()));
            }
            let v: f64 = raw
                .parse()
                .map_err(|_| value_err(name, format!("`{raw}` is not a number")))?;
            if !v.is_finite() {
                return Err(value_err(name, format!("`{raw}` is not a finite number")));
            }
            s.rows.push(v);
        }
        s.lines.1 = line;
    }
    if series.is_empty() {
        return Err(FitTableError::Empty {
            path: path.to_owned(),
        });
    }
    if let Some(wanted) = rows {
        for (s, &found) in series.iter().zip(&seen) {
            if found < wanted {
                return Err(FitTableError::TooFewRows {
                    path: path.to_owned(),
                    series: s
                        .key
                        .as_ref()
                        .map_or_else(|| "the file".to_owned(), |k| format!("key `{k}`")),
                    found,
                    wanted,
                });
            }
        }
    }
    Ok(series)
}
