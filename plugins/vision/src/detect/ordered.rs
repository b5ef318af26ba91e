//! Jobs on the blocking pool whose results come back in the order the jobs
//! were started: the reorder buffer that lets `detect` run several frames at
//! once and still emit their rows in frame order.

use std::collections::VecDeque;

use sluice_core::ComponentError;
use tokio::task::JoinHandle;

/// Running jobs, oldest first. A job that finishes early keeps its result
/// until every job started before it has been taken.
#[derive(Debug)]
pub(crate) struct InOrder<K, T> {
    jobs: VecDeque<(K, JoinHandle<T>)>,
}

impl<K, T: Send + 'static> InOrder<K, T> {
    pub(crate) fn new() -> Self {
        Self {
            jobs: VecDeque::new(),
        }
    }

    /// Jobs started and not yet taken.
    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Starts `job` on the blocking pool, after every job already started.
    pub(crate) fn spawn(&mut self, key: K, job: impl FnOnce() -> T + Send + 'static) {
        self.jobs.push_back((key, tokio::task::spawn_blocking(job)));
    }

    /// Whether no job is running.
    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Whether the oldest job has finished, so [`InOrder::next`] returns
    /// without waiting.
    pub(crate) fn head_ready(&self) -> bool {
        self.jobs.front().is_some_and(|(_, job)| job.is_finished())
    }

    /// Waits for the oldest job and takes its result; `None` when no job is
    /// running.
    pub(crate) async fn next(&mut self) -> Option<Result<(K, T), ComponentError>> {
        let (_, job) = self.jobs.front_mut()?;
        // Cancel safety: the handle stays queued until it has completed, so a
        // dropped `next` loses nothing.
        let result = job.await;
        let (key, _) = self.jobs.pop_front()?;
        Some(result.map(|value| (key, value)).map_err(|e| {
            ComponentError::internal("blocking_task", format!("blocking task failed: {e}"))
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_come_back_in_start_order_when_jobs_finish_in_reverse() {
        let mut jobs = InOrder::new();
        let mut release = Vec::new();
        let (done_tx, done_rx) = mpsc::channel();
        for i in 0..4u32 {
            let (go_tx, go_rx) = mpsc::channel::<()>();
            release.push(go_tx);
            let done = done_tx.clone();
            jobs.spawn(i, move || {
                go_rx.recv().ok();
                done.send(i).ok();
                i * 10
            });
        }
        // Finish the jobs newest first and wait until each has finished.
        let mut finished = Vec::new();
        for go in release.iter().rev() {
            go.send(()).unwrap();
            finished.push(done_rx.recv().unwrap());
        }
        assert_eq!(finished, [3, 2, 1, 0]);
        let mut taken = Vec::new();
        while let Some(r) = jobs.next().await {
            taken.push(r.unwrap());
        }
        assert_eq!(taken, [(0, 0), (1, 10), (2, 20), (3, 30)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_finished_job_behind_a_running_one_is_not_ready() {
        let mut jobs = InOrder::new();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        jobs.spawn("slow", move || {
            go_rx.recv().ok();
        });
        jobs.spawn("fast", move || {
            done_tx.send(()).ok();
        });
        done_rx.recv().unwrap();
        assert!(!jobs.head_ready());
        go_tx.send(()).unwrap();
        assert_eq!(jobs.next().await.unwrap().unwrap().0, "slow");
        assert_eq!(jobs.next().await.unwrap().unwrap().0, "fast");
        assert_eq!(jobs.len(), 0);
        assert!(jobs.next().await.is_none());
    }
}
