//! A SQL query over table `input` (or over one table per input when the
//! query joins its inputs), planned once and run over any set of batches
//! with the tables' schemas.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::TableReference;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::EmptyRecordBatchStream;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};

/// Name of the table the query reads.
pub const INPUT_TABLE: &str = "input";

/// A planning failure, rendered for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

impl From<DataFusionError> for PlanError {
    fn from(e: DataFusionError) -> Self {
        Self(e.strip_backtrace())
    }
}

/// A DataFusion session with one partition, so execution stays on the calling
/// thread and spawns no tasks, and without dynamic filters, whose state would
/// outlive a run of a reused plan.
pub fn session() -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(1)
        .with_information_schema(false)
        .with_repartition_joins(false)
        .with_repartition_aggregations(false)
        .with_repartition_windows(false)
        .with_repartition_sorts(false);
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.enable_dynamic_filter_pushdown = false;
    optimizer.enable_topk_dynamic_filter_pushdown = false;
    optimizer.enable_join_dynamic_filter_pushdown = false;
    optimizer.enable_aggregate_dynamic_filter_pushdown = false;
    SessionContext::new_with_config(config)
}

/// Polls a future that is expected to complete without waiting (planning
/// against in-memory tables); `None` if it would wait.
pub fn ready_now<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Holds the batches of the current run for one table, which reads them when
/// the plan executes.
///
/// Runs of one engine are sequential (its transform handles one message at a
/// time), so one slot suffices.
#[derive(Debug)]
struct Slot {
    schema: SchemaRef,
    batches: Mutex<Vec<RecordBatch>>,
}

impl Slot {
    fn put(&self, batches: Vec<RecordBatch>) {
        *self.batches.lock().unwrap_or_else(PoisonError::into_inner) = batches;
    }
}

impl PartitionStream for Slot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        // Cloned, not taken: a self-join scans `input` twice.
        let batches = self
            .batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match MemoryStream::try_new(batches, self.schema.clone(), None) {
            Ok(s) => Box::pin(s),
            Err(_) => Box::pin(EmptyRecordBatchStream::new(self.schema.clone())),
        }
    }
}

/// Operators that keep no state across executions once dynamic filters are
/// off: a physical plan made only of these is executed again and again.
const REUSABLE_OPERATORS: &[&str] = &[
    "AggregateExec",
    "BoundedWindowAggExec",
    "CoalesceBatchesExec",
    "CooperativeExec",
    "EmptyExec",
    "FilterExec",
    "GlobalLimitExec",
    "LocalLimitExec",
    "PlaceholderRowExec",
    "ProjectionExec",
    "SortExec",
    "SortExec(TopK)",
    "StreamingTableExec",
    "UnionExec",
    "WindowAggExec",
];

/// A planned query over table `input`, or over named tables.
///
/// The physical plan is made once and re-executed (after resetting its
/// state) when every operator is known to be stateless across runs and no
/// function depends on the time of the run (`now()` is folded at planning).
/// Other queries are re-planned per run from the kept logical plan, which
/// costs about 0.35 ms.
#[derive(Debug)]
pub struct QueryEngine {
    state: SessionState,
    logical: LogicalPlan,
    physical: Option<Arc<dyn ExecutionPlan>>,
    /// One per table, in the order the tables were given.
    slots: Vec<Arc<Slot>>,
    output_schema: SchemaRef,
}

impl QueryEngine {
    /// Parses and plans `sql` against `input_schema`. Only queries are
    /// accepted (no DDL, DML or `SET`).
    pub fn plan(sql: &str, input_schema: &SchemaRef) -> Result<Self, PlanError> {
        Self::plan_tables(sql, &[(INPUT_TABLE, input_schema.clone())])
    }

    /// Parses and plans `sql` against one table per `(name, schema)`; names
    /// are taken verbatim (SQL must quote names that are not lower case).
    pub fn plan_tables(sql: &str, tables: &[(&str, SchemaRef)]) -> Result<Self, PlanError> {
        let ctx = session();
        let mut slots = Vec::with_capacity(tables.len());
        for (name, schema) in tables {
            let slot = Arc::new(Slot {
                schema: schema.clone(),
                batches: Mutex::new(Vec::new()),
            });
            let table = StreamingTable::try_new(schema.clone(), vec![slot.clone()])?;
            ctx.register_table(TableReference::bare(*name), Arc::new(table))?;
            slots.push(slot);
        }
        let state = ctx.state();
        let logical = ready_now(state.create_logical_plan(sql))
            .ok_or_else(|| PlanError("query planning did not complete".into()))??;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&logical)?;
        let output_schema = Arc::new(Schema::new(logical.schema().as_arrow().fields().clone()));
        // Planning here also surfaces problems that only physical planning
        // finds (unsupported functions or casts) at check time.
        let physical = ready_now(state.create_physical_plan(&logical))
            .ok_or_else(|| PlanError("physical planning did not complete".into()))??;
        let reusable = !depends_on_run_time(&logical)? && only_reusable_operators(&physical)?;
        Ok(Self {
            state,
            logical,
            physical: reusable.then_some(physical),
            slots,
            output_schema,
        })
    }

    /// Columns of the query result.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Whether runs reuse one physical plan.
    pub fn reuses_plan(&self) -> bool {
        self.physical.is_some()
    }

    /// Runs the query over `batches`, which must carry the input schema (a
    /// query over table `input`). Result batches carry
    /// [`QueryEngine::output_schema`].
    pub async fn run(
        &self,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<RecordBatch>, DataFusionError> {
        self.run_tables(vec![batches]).await
    }

    /// Runs the query with `tables[i]` as the rows of the `i`-th planned
    /// table (missing ones are empty).
    pub async fn run_tables(
        &self,
        tables: Vec<Vec<RecordBatch>>,
    ) -> Result<Vec<RecordBatch>, DataFusionError> {
        let mut tables = tables.into_iter();
        for slot in &self.slots {
            slot.put(tables.next().unwrap_or_default());
        }
        let result = self.execute().await;
        for slot in &self.slots {
            slot.put(Vec::new());
        }
        result?
            .into_iter()
            .map(|b| {
                RecordBatch::try_new(self.output_schema.clone(), b.columns().to_vec())
                    .map_err(DataFusionError::from)
            })
            .collect()
    }

    async fn execute(&self) -> Result<Vec<RecordBatch>, DataFusionError> {
        let physical = match &self.physical {
            Some(p) => reset_plan_states(p.clone())?,
            None => {
                let mut state = self.state.clone();
                state.mark_start_execution();
                state.create_physical_plan(&self.logical).await?
            }
        };
        collect(physical, self.state.task_ctx()).await
    }
}

/// The tables `sql` reads (names of common table expressions excluded), as
/// DataFusion resolves them: unquoted identifiers lower-cased.
pub fn table_references(sql: &str) -> Result<Vec<TableReference>, PlanError> {
    let state = session().state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(sql, &dialect)?;
    Ok(state.resolve_table_references(&statement)?)
}

/// Whether the plan calls a function whose result depends on when it runs
/// (`now()`, `random()`): such plans are re-planned per run.
fn depends_on_run_time(plan: &LogicalPlan) -> Result<bool, DataFusionError> {
    let mut found = false;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && f.func.signature().volatility != Volatility::Immutable
                {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(found)
}

fn only_reusable_operators(plan: &Arc<dyn ExecutionPlan>) -> Result<bool, DataFusionError> {
    let mut reusable = true;
    plan.apply(|node| {
        if REUSABLE_OPERATORS.contains(&node.name()) {
            Ok(TreeNodeRecursion::Continue)
        } else {
            reusable = false;
            Ok(TreeNodeRecursion::Stop)
        }
    })?;
    Ok(reusable)
}

#[cfg(test)]
mod tests_support {
    use datafusion::arrow::array::{Float64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};

    use super::*;

    pub fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("device", DataType::Utf8, false),
            Field::new("v", DataType::Float64, false),
        ]))
    }

    pub fn batch(devices: &[&str], v: &[f64]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(devices.to_vec())),
                Arc::new(Float64Array::from(v.to_vec())),
            ],
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::DataType;

    use super::tests_support::*;
    use super::*;

    #[test]
    fn plans_the_output_schema_from_the_query() {
        let e = QueryEngine::plan(
            "SELECT device, avg(v) AS mean FROM input GROUP BY device",
            &schema(),
        )
        .unwrap();
        let names: Vec<_> = e
            .output_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["device", "mean"]);
        assert_eq!(e.output_schema().field(1).data_type(), &DataType::Float64);
    }

    #[test]
    fn rejects_unknown_columns_and_statements() {
        let err = QueryEngine::plan("SELECT nope FROM input", &schema()).unwrap_err();
        assert!(err.0.contains("nope"), "{err}");
        assert!(QueryEngine::plan("SELEC 1", &schema()).is_err());
        assert!(QueryEngine::plan("CREATE TABLE t AS SELECT 1", &schema()).is_err());
        assert!(QueryEngine::plan("SELECT * FROM other", &schema()).is_err());
    }

    #[tokio::test]
    async fn runs_the_same_plan_over_different_batches() {
        let e = QueryEngine::plan(
            "SELECT device, sum(v) AS total FROM input WHERE v > (SELECT min(v) FROM input) \
             GROUP BY device",
            &schema(),
        )
        .unwrap();
        let first = e
            .run(vec![batch(&["a", "a", "b"], &[1.0, 2.0, 3.0])])
            .await
            .unwrap();
        datafusion::assert_batches_sorted_eq!(
            [
                "+--------+-------+",
                "| device | total |",
                "+--------+-------+",
                "| a      | 2.0   |",
                "| b      | 3.0   |",
                "+--------+-------+"
            ],
            &first
        );
        assert!(!e.reuses_plan(), "scalar subqueries are re-planned");
        let second = e
            .run(vec![batch(&["b"], &[5.0]), batch(&["b"], &[7.0])])
            .await
            .unwrap();
        datafusion::assert_batches_sorted_eq!(
            [
                "+--------+-------+",
                "| device | total |",
                "+--------+-------+",
                "| b      | 7.0   |",
                "+--------+-------+"
            ],
            &second
        );
    }
}

#[cfg(test)]
mod table_tests {
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field};

    use super::tests_support::*;
    use super::*;

    #[test]
    fn table_references_are_normalised_and_skip_ctes() {
        let refs = table_references(
            "WITH w AS (SELECT * FROM Bagged) SELECT * FROM w JOIN \"Scans\" s ON true",
        )
        .unwrap();
        let mut names: Vec<String> = refs.iter().map(ToString::to_string).collect();
        names.sort();
        assert_eq!(names, ["Scans", "bagged"]);
    }

    #[tokio::test]
    async fn plans_and_runs_a_join_over_named_tables() {
        let other = Arc::new(Schema::new(vec![
            Field::new("device", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let e = QueryEngine::plan_tables(
            "SELECT a.device, a.v, b.n FROM readings a JOIN counts b ON a.device = b.device",
            &[("readings", schema()), ("counts", other.clone())],
        )
        .unwrap();
        let counts = RecordBatch::try_new(
            other,
            vec![
                Arc::new(datafusion::arrow::array::StringArray::from(vec!["b"])),
                Arc::new(Int64Array::from(vec![7])),
            ],
        )
        .unwrap();
        let out = e
            .run_tables(vec![vec![batch(&["a", "b"], &[1.0, 2.0])], vec![counts]])
            .await
            .unwrap();
        datafusion::assert_batches_eq!(
            [
                "+--------+-----+---+",
                "| device | v   | n |",
                "+--------+-----+---+",
                "| b      | 2.0 | 7 |",
                "+--------+-----+---+"
            ],
            &out
        );
        assert!(
            QueryEngine::plan_tables("SELECT * FROM input", &[("readings", schema())]).is_err(),
            "only the named tables exist"
        );
    }
}

#[cfg(test)]
mod reuse_tests {
    use super::tests_support::*;
    use super::*;

    #[tokio::test]
    async fn reused_plans_give_fresh_results_on_every_run() {
        let e = QueryEngine::plan(
            "SELECT device, sum(v) AS total FROM input GROUP BY device ORDER BY total DESC LIMIT 1",
            &schema(),
        )
        .unwrap();
        assert!(e.reuses_plan());
        let first = e
            .run(vec![batch(&["a", "b", "b"], &[5.0, 2.0, 2.0])])
            .await
            .unwrap();
        let second = e.run(vec![batch(&["c", "a"], &[1.0, 0.5])]).await.unwrap();
        datafusion::assert_batches_eq!(
            [
                "+--------+-------+",
                "| device | total |",
                "+--------+-------+",
                "| a      | 5.0   |",
                "+--------+-------+"
            ],
            &first
        );
        datafusion::assert_batches_eq!(
            [
                "+--------+-------+",
                "| device | total |",
                "+--------+-------+",
                "| c      | 1.0   |",
                "+--------+-------+"
            ],
            &second
        );
        // Runs execute reset copies: the kept plan accumulates no metrics.
        let mut kept_metrics = 0;
        e.physical
            .as_ref()
            .unwrap()
            .apply(|node| {
                kept_metrics += node.metrics().map_or(0, |m| m.iter().count());
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
        assert_eq!(kept_metrics, 0);
    }

    #[tokio::test]
    async fn self_joins_and_clock_functions_are_planned_per_run() {
        let join = QueryEngine::plan(
            "SELECT a.device, count(*) AS n FROM input a JOIN input b ON a.device = b.device              GROUP BY a.device",
            &schema(),
        )
        .unwrap();
        assert!(!join.reuses_plan());
        for (devices, n) in [(&["a", "a"][..], 4), (&["a", "a", "a"][..], 9)] {
            let out = join
                .run(vec![batch(devices, &vec![0.0; devices.len()])])
                .await
                .unwrap();
            assert_eq!(
                out[0]
                    .column(1)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Int64Array>()
                    .unwrap()
                    .value(0),
                n
            );
        }
        let clock = QueryEngine::plan("SELECT now() AS t, v FROM input", &schema()).unwrap();
        assert!(!clock.reuses_plan());
    }
}
