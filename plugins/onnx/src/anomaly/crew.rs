//! A few threads that each take one job per call, for a model call split
//! into parts.
//!
//! A member that finished its job spins for [`SPIN`] before it parks, so
//! back-to-back calls hand work over in well under a microsecond instead of
//! paying a futex wake-up (5-20 µs here, as much as scoring a 32-row part
//! takes). Parked, a member costs nothing. A call that finds the crew busy
//! with another call runs its jobs on the calling thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a member waits for the next job before it parks.
pub const SPIN: Duration = Duration::from_micros(100);

/// The work every member does with a job.
pub type Work<J, R> = Arc<dyn Fn(J) -> R + Send + Sync>;

/// Threads that run `work` on the jobs of a call, one job each.
pub struct Crew<J, R> {
    members: Vec<Member<J, R>>,
    work: Work<J, R>,
    busy: Mutex<()>,
}

impl<J, R> std::fmt::Debug for Crew<J, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crew")
            .field("members", &self.members.len())
            .finish()
    }
}

struct Member<J, R> {
    shared: Arc<Shared<J, R>>,
    thread: Option<JoinHandle<()>>,
}

struct Shared<J, R> {
    /// Jobs handed to this member so far.
    posted: AtomicU64,
    /// Jobs this member finished so far.
    finished: AtomicU64,
    job: Mutex<Option<J>>,
    /// The last job's result; `None` if the work panicked.
    result: Mutex<Option<R>>,
    parked: Mutex<bool>,
    wake: Condvar,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<J: Send + 'static, R: Send + 'static> Crew<J, R> {
    /// Starts `size` threads named `name-N`.
    pub fn spawn(size: usize, name: &str, work: Work<J, R>) -> std::io::Result<Self> {
        let mut members = Vec::with_capacity(size);
        for i in 0..size {
            let shared = Arc::new(Shared {
                posted: AtomicU64::new(0),
                finished: AtomicU64::new(0),
                job: Mutex::new(None),
                result: Mutex::new(None),
                parked: Mutex::new(false),
                wake: Condvar::new(),
                stop: AtomicBool::new(false),
            });
            let (s, w) = (shared.clone(), work.clone());
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{}", i + 1))
                .spawn(move || member_loop(&s, &*w))?;
            members.push(Member {
                shared,
                thread: Some(thread),
            });
        }
        Ok(Self {
            members,
            work,
            busy: Mutex::new(()),
        })
    }

    /// Threads in the crew.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Runs `jobs` (at most one per member) on the crew and `own` on the
    /// calling thread at the same time; returns `own`'s result and the
    /// jobs' results in order, `None` for a job whose work panicked. When
    /// another call holds the crew, the jobs run here after `own`.
    pub fn run<T>(&self, jobs: Vec<J>, own: impl FnOnce() -> T) -> (T, Vec<Option<R>>) {
        let Ok(_claim) = self.busy.try_lock() else {
            let mine = own();
            let rest = jobs.into_iter().map(|j| guarded(&*self.work, j)).collect();
            return (mine, rest);
        };
        let mut handed = Vec::with_capacity(jobs.len());
        let mut local = Vec::new();
        for (i, job) in jobs.into_iter().enumerate() {
            match self.members.get(i) {
                Some(m) => {
                    *lock(&m.shared.job) = Some(job);
                    let ticket = m.shared.posted.fetch_add(1, Ordering::AcqRel) + 1;
                    // Taken after `posted` moved: a member about to park
                    // re-checks `posted` under this lock, so no wake-up is
                    // lost.
                    if *lock(&m.shared.parked) {
                        m.shared.wake.notify_one();
                    }
                    handed.push((m, ticket));
                }
                None => local.push(job),
            }
        }
        let mine = own();
        let mut results: Vec<Option<R>> = Vec::with_capacity(handed.len() + local.len());
        for (m, ticket) in handed {
            let mut spins = 0u32;
            while m.shared.finished.load(Ordering::Acquire) < ticket {
                if spins < 4096 {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            results.push(lock(&m.shared.result).take());
        }
        results.extend(local.into_iter().map(|j| guarded(&*self.work, j)));
        (mine, results)
    }
}

fn guarded<J, R>(work: &(dyn Fn(J) -> R + Send + Sync), job: J) -> Option<R> {
    catch_unwind(AssertUnwindSafe(|| work(job))).ok()
}

fn member_loop<J, R>(s: &Shared<J, R>, work: &(dyn Fn(J) -> R + Send + Sync)) {
    let mut done = 0u64;
    loop {
        let since = Instant::now();
        let mut spins = 0u32;
        while s.posted.load(Ordering::Acquire) == done {
            if s.stop.load(Ordering::Acquire) {
                return;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && since.elapsed() >= SPIN {
                let mut parked = lock(&s.parked);
                *parked = true;
                while s.posted.load(Ordering::Acquire) == done && !s.stop.load(Ordering::Acquire) {
                    parked = s.wake.wait(parked).unwrap_or_else(PoisonError::into_inner);
                }
                *parked = false;
            } else {
                std::hint::spin_loop();
            }
        }
        let job = lock(&s.job).take();
        let result = job.and_then(|j| guarded(work, j));
        *lock(&s.result) = result;
        done += 1;
        s.finished.store(done, Ordering::Release);
    }
}

impl<J, R> Drop for Crew<J, R> {
    fn drop(&mut self) {
        for m in &self.members {
            m.shared.stop.store(true, Ordering::Release);
            let _parked = lock(&m.shared.parked);
            m.shared.wake.notify_one();
        }
        for m in &mut self.members {
            // A member only ends by returning: its work runs under
            // `catch_unwind`, so there is no panic to pass on.
            if let Some(t) = m.thread.take()
                && t.join().is_err()
            {
                tracing::warn!("an anomaly scoring thread ended with a panic");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn squares(size: usize) -> Crew<u64, u64> {
        Crew::spawn(size, "test-crew", Arc::new(|x: u64| x * x)).unwrap()
    }

    #[test]
    fn runs_each_job_once_and_keeps_their_order() {
        let crew = squares(3);
        let (own, rest) = crew.run(vec![2, 3, 4], || 1);
        assert_eq!(own, 1);
        assert_eq!(rest, vec![Some(4), Some(9), Some(16)]);
    }

    #[test]
    fn jobs_beyond_the_crew_run_on_the_calling_thread() {
        let crew = squares(1);
        let (_, rest) = crew.run(vec![5, 6, 7], || ());
        assert_eq!(rest, vec![Some(25), Some(36), Some(49)]);
    }

    #[test]
    fn a_parked_member_wakes_for_the_next_call() {
        let crew = squares(1);
        for i in 0..3u64 {
            std::thread::sleep(SPIN * 20);
            let (_, rest) = crew.run(vec![i], || ());
            assert_eq!(rest, vec![Some(i * i)]);
        }
    }

    #[test]
    fn many_calls_in_a_row_each_get_their_own_result() {
        let crew = squares(1);
        for i in 0..10_000u64 {
            let (own, rest) = crew.run(vec![i], || i + 1);
            assert_eq!((own, rest), (i + 1, vec![Some(i * i)]));
        }
    }

    #[test]
    fn concurrent_calls_all_complete() {
        let crew = Arc::new(squares(1));
        let callers: Vec<_> = (0..4u64)
            .map(|t| {
                let crew = crew.clone();
                std::thread::spawn(move || {
                    for i in 0..500u64 {
                        let x = t * 1000 + i;
                        let (_, rest) = crew.run(vec![x], || ());
                        assert_eq!(rest, vec![Some(x * x)]);
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
    }

    #[test]
    fn a_panicking_job_gives_none_and_the_member_goes_on() {
        let crew: Crew<u64, u64> = Crew::spawn(
            1,
            "test-crew",
            Arc::new(|x: u64| {
                assert!(x != 13, "unlucky");
                x
            }),
        )
        .unwrap();
        let (_, rest) = crew.run(vec![13], || ());
        assert_eq!(rest, vec![None]);
        let (_, rest) = crew.run(vec![14], || ());
        assert_eq!(rest, vec![Some(14)]);
    }

    #[test]
    fn dropping_the_crew_stops_its_threads() {
        let crew = squares(2);
        let _ = crew.run(vec![1, 2], || ());
        drop(crew);
        let crew = squares(2);
        std::thread::sleep(SPIN * 20);
        drop(crew);
    }
}
