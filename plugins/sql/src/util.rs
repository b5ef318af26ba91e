//! Small helpers shared by the transforms: input conformance and log rate
//! limiting.

use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use sluice_core::ComponentMetrics;
use sluice_core::schema::same_columns;

/// At most one warning per this interval for each kind of per-row problem.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Returns `batch` with exactly `schema` (the schema the plan was built for),
/// or `None` when its columns do not match.
///
/// Upstream batches may differ from the declared schema in metadata only;
/// rebinding is `O(columns)` and keeps plans and compiled expressions valid.
pub fn conform(batch: RecordBatch, schema: &SchemaRef) -> Option<RecordBatch> {
    let own = batch.schema();
    if std::sync::Arc::ptr_eq(&own, schema) {
        return Some(batch);
    }
    if !same_columns(&own, schema) {
        return None;
    }
    RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).ok()
}

/// The input prologue of every transform here: skips empty batches and
/// conforms the rest to `schema`, counting a mismatch as `schema_mismatch`.
pub fn accept(
    batch: RecordBatch,
    schema: &SchemaRef,
    metrics: &ComponentMetrics,
) -> Option<RecordBatch> {
    let rows = batch.num_rows();
    if rows == 0 {
        return None;
    }
    let conformed = conform(batch, schema);
    if conformed.is_none() {
        metrics.discarded("schema_mismatch", false, rows as u64);
    }
    conformed
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn conform_rebinds_metadata_and_rejects_other_columns() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let b =
            RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(vec![1])) as _)]).unwrap();
        assert!(Arc::ptr_eq(&conform(b, &schema).unwrap().schema(), &schema));
        let renamed =
            RecordBatch::try_from_iter([("w", Arc::new(Int64Array::from(vec![1])) as _)]).unwrap();
        assert!(conform(renamed, &schema).is_none());
    }
}
