//! `type: filter`: keeps the rows for which a SQL predicate is true.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, ExprSchemable, Volatility};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::PhysicalExpr;
use serde::Deserialize;
use sluice_core::InputSchema;
use sluice_core::{
    BufferConfig, BuildCx, BuildError, ComponentError, ComponentMetrics, Emitter, Msg, Transform,
    TransformConfig, Validator,
};
use tokio::time::Instant;
use tracing::warn;

use crate::engine::session;
use sluice_core::LogLimiter;

use crate::util::{LOG_EVERY, accept};

/// Keeps the rows matching a SQL boolean predicate; drops (and counts) the rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FilterConfig {
    /// Upstream component ids.
    pub inputs: Vec<String>,
    /// Input edge settings.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// SQL boolean expression over the input columns, e.g.
    /// `temperature > 80 AND device LIKE 'press-%'`. Rows where it is false or
    /// `NULL` are dropped.
    #[serde(rename = "where")]
    pub r#where: String,
}

impl FilterConfig {
    /// The `type` of this component in pipeline YAML.
    pub const TYPE: &'static str = "filter";

    fn compile(&self, input: &SchemaRef, v: &mut Validator) -> Option<Predicate> {
        match Predicate::compile(&self.r#where, input) {
            Ok(expr) => Some(expr),
            Err(e) => {
                let columns: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
                v.error(&["where"], format!("invalid predicate: {e}"))
                    .help(format!(
                        "the predicate may use the columns {}",
                        columns.join(", ")
                    ));
                None
            }
        }
    }
}

/// A compile failure, rendered for the operator.
#[derive(Debug, thiserror::Error)]
enum PredicateError {
    #[error("{0}")]
    Plan(String),
    #[error("the predicate is {0}, expected a boolean")]
    NotBoolean(DataType),
}

impl From<DataFusionError> for PredicateError {
    fn from(e: DataFusionError) -> Self {
        Self::Plan(e.strip_backtrace())
    }
}

/// The predicate, compiled against the input schema.
#[derive(Debug)]
enum Predicate {
    /// Compiled once at build.
    Fixed(Arc<dyn PhysicalExpr>),
    /// Calls a function fixed per evaluation, such as `now()`: DataFusion
    /// folds those to constants before execution, so the type-checked
    /// expression is folded with the current time and compiled per batch.
    Timed {
        state: Box<SessionState>,
        expr: Expr,
        schema: DFSchemaRef,
    },
}

impl Predicate {
    fn compile(sql: &str, input: &SchemaRef) -> Result<Self, PredicateError> {
        let state = session().state();
        let schema = Arc::new(DFSchema::try_from(input.as_ref().clone())?);
        let expr = state.create_logical_expr(sql, &schema)?;
        match expr.get_type(&schema)? {
            DataType::Boolean => {}
            other => return Err(PredicateError::NotBoolean(other)),
        }
        let timed = expr.exists(|e| {
            Ok(matches!(e, Expr::ScalarFunction(f)
                if f.func.signature().volatility == Volatility::Stable))
        })?;
        let predicate = if timed {
            let simplifier = ExprSimplifier::new(
                SimplifyContext::builder()
                    .with_schema(schema.clone())
                    .build(),
            );
            let expr = simplifier.coerce(expr, &schema)?;
            Self::Timed {
                state: Box::new(state),
                expr,
                schema,
            }
        } else {
            Self::Fixed(state.create_physical_expr(expr, &schema)?)
        };
        // Compiling a timed predicate once here reports its errors at check time.
        predicate.physical()?;
        Ok(predicate)
    }

    fn physical(&self) -> Result<Arc<dyn PhysicalExpr>, DataFusionError> {
        match self {
            Self::Fixed(p) => Ok(p.clone()),
            Self::Timed {
                state,
                expr,
                schema,
            } => {
                let now = SimplifyContext::builder()
                    .with_schema(schema.clone())
                    .with_config_options(state.config_options().clone())
                    .with_current_time()
                    .build();
                let folded = ExprSimplifier::new(now).simplify(expr.clone())?;
                state.create_physical_expr(folded, schema)
            }
        }
    }
}

impl TransformConfig for FilterConfig {
    const TYPE: &'static str = "filter";
    type Component = FilterTransform;

    fn inputs(&self) -> &[String] {
        &self.inputs
    }

    fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    fn check(&self, inputs: &[InputSchema], v: &mut Validator) -> Option<SchemaRef> {
        let input = InputSchema::stream(inputs)?;
        self.compile(input, v).map(|_| input.clone())
    }

    fn build(&self, cx: &BuildCx) -> Result<FilterTransform, BuildError> {
        let input = cx.require_input_schema()?;
        let mut v = Validator::new();
        let predicate = self
            .compile(&input, &mut v)
            .ok_or_else(|| v.into_build_error(&cx.id))?;
        Ok(FilterTransform {
            predicate,
            input_schema: input,
            metrics: cx.metrics.clone(),
            pipeline: cx.pipeline.clone(),
            id: cx.id.clone(),
            error_log: LogLimiter::new(LOG_EVERY),
        })
    }
}

/// Evaluates the compiled predicate on every batch.
#[derive(Debug)]
pub struct FilterTransform {
    predicate: Predicate,
    input_schema: SchemaRef,
    metrics: ComponentMetrics,
    pipeline: Arc<str>,
    id: Arc<str>,
    error_log: LogLimiter,
}

impl FilterTransform {
    fn apply(&self, batch: &RecordBatch) -> Result<Option<RecordBatch>, DataFusionError> {
        let mask = self
            .predicate
            .physical()?
            .evaluate(batch)?
            .into_array(batch.num_rows())?;
        let Some(mask) = mask.as_boolean_opt() else {
            return Err(DataFusionError::Internal(
                "predicate did not return booleans".into(),
            ));
        };
        if Array::null_count(mask) == 0 && mask.true_count() == batch.num_rows() {
            return Ok(None);
        }
        Ok(Some(filter_record_batch(batch, mask)?))
    }
}

impl Transform for FilterTransform {
    async fn process(&mut self, msg: Msg, out: &mut Emitter) -> Result<(), ComponentError> {
        let batch = msg.into_rows()?;
        let rows = batch.num_rows();
        let Some(batch) = accept(batch, &self.input_schema, &self.metrics) else {
            return Ok(());
        };
        match self.apply(&batch) {
            Ok(None) => out.emit(batch).await,
            Ok(Some(kept)) => {
                self.metrics
                    .discarded("filtered", true, (rows - kept.num_rows()) as u64);
                out.emit(kept).await
            }
            Err(e) => {
                let err = ComponentError::user("predicate_failed", e.strip_backtrace());
                self.metrics.error(&err, "processing");
                self.metrics
                    .discarded("predicate_failed", false, rows as u64);
                if let Some(suppressed) = self.error_log.check(Instant::now()) {
                    warn!(
                        pipeline = %self.pipeline,
                        component_id = %self.id,
                        rows,
                        error = %err,
                        suppressed_warnings = suppressed,
                        "Predicate failed; dropped the batch."
                    );
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use tokio::sync::mpsc;

    use super::*;
    use crate::testutil::{
        build_cx, discarded, drain, emitter, nullable_schema, recorded, rows, telemetry_schema,
    };

    fn config(yaml: &str) -> FilterConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn start(
        yaml: &str,
        schema: &SchemaRef,
    ) -> (
        FilterTransform,
        Emitter,
        mpsc::Receiver<sluice_core::Delivery>,
    ) {
        let cx = build_cx(schema, FilterConfig::TYPE);
        let t = config(yaml).build(&cx).unwrap();
        let (out, rx) = emitter(&cx);
        (t, out, rx)
    }

    fn error_paths(yaml: &str, schema: &SchemaRef) -> Vec<(Vec<String>, String)> {
        let mut v = Validator::new();
        assert!(
            config(yaml)
                .check(&InputSchema::only(schema.clone()), &mut v)
                .is_none()
        );
        v.into_issues()
            .into_iter()
            .map(|i| (i.path, i.message))
            .collect()
    }

    #[test]
    fn keeps_matching_rows_and_counts_the_rest_as_filtered() {
        recorded(|metrics| async move {
            let schema = telemetry_schema(true);
            let (mut t, mut out, mut rx) =
                start("inputs: [src]\nwhere: v > 1.5 AND device <> 'c'\n", &schema);
            let batch = rows(&schema, &[("a", 1, 1.0), ("b", 2, 2.0), ("c", 3, 3.0)]);
            t.process(Msg::Rows(batch), &mut out).await.unwrap();
            let kept = drain(&mut rx);
            datafusion::assert_batches_eq!(
                [
                    "+--------+-------------------------+-----+",
                    "| device | ts                      | v   |",
                    "+--------+-------------------------+-----+",
                    "| b      | 1970-01-01T00:00:00.002 | 2.0 |",
                    "+--------+-------------------------+-----+",
                ],
                &kept
            );
            assert_eq!(kept[0].schema(), schema);
            assert_eq!(discarded(&metrics, "filtered"), 2);
        });
    }

    #[test]
    fn rows_where_the_predicate_is_null_are_dropped() {
        recorded(|metrics| async move {
            let schema = nullable_schema("x", DataType::Int64);
            let (mut t, mut out, mut rx) = start("inputs: [src]\nwhere: x > 1\n", &schema);
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(vec![Some(2), None, Some(0)]))],
            )
            .unwrap();
            t.process(Msg::Rows(batch), &mut out).await.unwrap();
            let kept = drain(&mut rx);
            assert_eq!(kept.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
            assert_eq!(discarded(&metrics, "filtered"), 2);
        });
    }

    #[test]
    fn a_batch_that_fully_matches_passes_through_unchanged() {
        recorded(|metrics| async move {
            let schema = telemetry_schema(false);
            let (mut t, mut out, mut rx) = start("inputs: [src]\nwhere: v >= 0\n", &schema);
            let batch = rows(&schema, &[("a", 1, 1.0), ("b", 2, 2.0)]);
            t.process(Msg::Rows(batch.clone()), &mut out).await.unwrap();
            assert_eq!(drain(&mut rx), [batch]);
            assert_eq!(discarded(&metrics, "filtered"), 0);
        });
    }

    #[test]
    fn a_predicate_failing_on_data_drops_the_batch_without_failing() {
        recorded(|metrics| async move {
            let schema = telemetry_schema(false);
            let (mut t, mut out, mut rx) =
                start("inputs: [src]\nwhere: CAST(device AS INT) > 1\n", &schema);
            t.process(Msg::Rows(rows(&schema, &[("x", 1, 1.0)])), &mut out)
                .await
                .unwrap();
            assert!(drain(&mut rx).is_empty());
            assert_eq!(discarded(&metrics, "predicate_failed"), 1);
        });
    }

    #[test]
    fn clock_functions_are_evaluated_at_each_batch() {
        recorded(|metrics| async move {
            let schema = telemetry_schema(true);
            let (mut t, mut out, mut rx) = start(
                "inputs: [src]\nwhere: ts > now() - INTERVAL '1 hour'\n",
                &schema,
            );
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let batch = rows(&schema, &[("old", 0, 1.0), ("new", now_ms, 2.0)]);
            t.process(Msg::Rows(batch), &mut out).await.unwrap();
            let kept = drain(&mut rx);
            assert_eq!(kept[0].column(0).as_string::<i32>().value(0), "new");
            assert_eq!(discarded(&metrics, "filtered"), 1);
            assert!(matches!(t.predicate, Predicate::Timed { .. }));
        });
    }

    #[test]
    fn check_returns_the_input_schema() {
        let schema = telemetry_schema(true);
        let out = config("inputs: [src]\nwhere: device LIKE 'press-%'\n")
            .check(
                &sluice_core::InputSchema::only(schema.clone()),
                &mut Validator::new(),
            )
            .unwrap();
        assert!(Arc::ptr_eq(&out, &schema));
    }

    #[test]
    fn non_boolean_predicates_are_reported_at_where() {
        let errors = error_paths("inputs: [src]\nwhere: v + 1\n", &telemetry_schema(true));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, ["where"]);
        assert!(errors[0].1.contains("expected a boolean"), "{errors:?}");
    }

    #[test]
    fn unknown_columns_and_bad_syntax_are_reported_at_where() {
        let schema = telemetry_schema(true);
        let errors = error_paths("inputs: [src]\nwhere: temperature > 80\n", &schema);
        assert_eq!(errors[0].0, ["where"]);
        assert!(errors[0].1.contains("temperature"), "{errors:?}");
        assert_eq!(
            error_paths("inputs: [src]\nwhere: v >\n", &schema)[0].0,
            ["where"]
        );
    }

    #[test]
    fn build_fails_on_a_bad_predicate() {
        let schema = telemetry_schema(true);
        let cx = build_cx(&schema, FilterConfig::TYPE);
        let err = config("inputs: [src]\nwhere: nope\n")
            .build(&cx)
            .unwrap_err();
        assert!(
            err.to_string().contains("where: invalid predicate"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_filter_keeps_the_component_contract() {
        let schema = telemetry_schema(false);
        let input = rows(&schema, &[("a", 0, 1.0), ("b", 1, 5.0), ("c", 2, 9.0)]);
        let out = sluice_testkit::run_transform(
            &config("inputs: [src]\nwhere: v > 2\n"),
            schema,
            vec![Msg::Rows(input)],
        )
        .await;
        assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    }
}
