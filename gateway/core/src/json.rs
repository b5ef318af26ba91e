//! Rows to JSON, for sinks.

use arrow_array::RecordBatch;
use arrow_json::writer::{JsonArray, LineDelimited, WriterBuilder};

/// Serialises every row of `batch` as one JSON object per line (no trailing
/// newline after the last row is guaranteed absent: each row ends in `\n`).
/// Nulls are written explicitly so every row has every column.
pub fn to_json_lines(batch: &RecordBatch) -> Result<Vec<u8>, arrow_schema::ArrowError> {
    let mut buf = Vec::with_capacity(batch.num_rows() * 96);
    let mut w = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(&mut buf);
    w.write(batch)?;
    w.finish()?;
    drop(w);
    Ok(buf)
}

/// Serialises the whole batch as one JSON array of objects.
pub fn to_json_array(batch: &RecordBatch) -> Result<Vec<u8>, arrow_schema::ArrowError> {
    let mut buf = Vec::with_capacity(batch.num_rows() * 96 + 2);
    let mut w = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(&mut buf);
    w.write(batch)?;
    w.finish()?;
    drop(w);
    Ok(buf)
}

/// Splits the output of [`to_json_lines`] into one payload per row.
pub fn split_lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, StringArray};

    use super::*;

    #[test]
    fn writes_one_object_per_row_with_nulls() {
        let b = RecordBatch::try_from_iter([
            ("device", Arc::new(StringArray::from(vec!["a", "b"])) as _),
            (
                "v",
                Arc::new(Float64Array::from(vec![Some(1.5), None])) as _,
            ),
        ])
        .unwrap();
        let lines = to_json_lines(&b).unwrap();
        let rows: Vec<_> = split_lines(&lines)
            .map(|l| String::from_utf8(l.to_vec()).unwrap())
            .collect();
        assert_eq!(
            rows,
            vec![r#"{"device":"a","v":1.5}"#, r#"{"device":"b","v":null}"#]
        );
    }
}
