//! A few threads that each take one job per call, for a model call split
//! into parts.
//!
//! A member that finished its job spins for [`SPIN`] before it parks, so
//! back-to-back calls hand work over in well under a microsecond instead of
//! paying a futex wake-up (5-20 µs here, as much as scoring a 32-row part
//! takes). Parked, a member costs nothing. A call that finds the crew busy
//! with another call runs its jobs on the calling thread.
//!
//! The calling thread never waits long on a member that has no core: on a
//! busy box the member's core may be running something else. A job is
//! allowed [`OVERDUE`] times as long as the caller's own share took, plus
//! [`OVERDUE_SLACK`]. When the caller has done its own share, it takes back
//! a job no member has started within that time of the hand-over and runs
//! it itself; a job a member started but has not finished within that time
//! of its start is run again by the caller, and the member's late result is
//! dropped. Jobs are pure, so running one twice gives the same
//! result. Either way a call takes at most about twice its one-thread time
//! instead of a scheduler time slice or more. A member that was not in time
//! parks right after its next job instead of spinning, so that on a busy
//! box it does not take CPU time from the caller; it spins again once it
//! delivers in time. While a member is late, [`Crew::worth_splitting`]
//! says to split only one call in [`PROBE_EVERY`], so the caller mostly
//! scores whole batches, as with one thread, and still notices when the
//! member's core is free again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a member waits for the next job before it parks.
pub const SPIN: Duration = Duration::from_micros(100);

/// A started job is overdue once it has run this many times as long as the
/// caller's own share took (plus [`OVERDUE_SLACK`]): shares are equal, so a
/// member with a core of its own finishes in about one such time.
pub const OVERDUE: f64 = 3.0;

/// Added to the overdue time so that very short shares do not count small
/// hand-over delays as a stall.
pub const OVERDUE_SLACK: Duration = Duration::from_micros(20);

/// While a member is late, one call in this many is still split, to find
/// out whether it is back in time.
pub const PROBE_EVERY: u64 = 32;

/// The work every member does with a job.
pub type Work<J, R> = Arc<dyn Fn(J) -> R + Send + Sync>;

/// Threads that run `work` on the jobs of a call, one job each.
pub struct Crew<J, R> {
    members: Vec<Member<J, R>>,
    work: Work<J, R>,
    busy: Mutex<()>,
    taken_back: AtomicU64,
    redone: AtomicU64,
    /// Calls asked whether to split while a member was late.
    late_calls: AtomicU64,
}

impl<J, R> std::fmt::Debug for Crew<J, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crew")
            .field("members", &self.members.len())
            .finish()
    }
}

/// Jobs the calling thread ran itself although a member had been handed
/// them, since the crew started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Taken back before any member started them.
    pub not_started: u64,
    /// Run again because the member running them was overdue.
    pub overdue: u64,
}

struct Member<J, R> {
    shared: Arc<Shared<J, R>>,
    thread: Option<JoinHandle<()>>,
}

/// Where a member's latest job stands.
enum Slot<J> {
    Empty,
    /// Handed over with this ticket, not started.
    Posted(u64, J),
    /// Started at this instant.
    Running(u64, Instant),
}

struct Shared<J, R> {
    /// The ticket of the latest job handed to this member (0: none yet).
    posted: AtomicU64,
    /// The ticket of the latest job this member finished.
    finished: AtomicU64,
    slot: Mutex<Slot<J>>,
    /// The latest finished job's ticket and result; `None` if its work
    /// panicked.
    result: Mutex<Option<(u64, Option<R>)>>,
    parked: Mutex<bool>,
    wake: Condvar,
    stop: AtomicBool,
    /// Whether the member spins for [`SPIN`] between jobs: it delivered its
    /// last job in time.
    spin: AtomicBool,
}

impl<J, R> Shared<J, R> {
    fn new() -> Self {
        Self {
            posted: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            slot: Mutex::new(Slot::Empty),
            result: Mutex::new(None),
            parked: Mutex::new(false),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            spin: AtomicBool::new(true),
        }
    }

    /// The result of job `ticket` once the member has finished it.
    fn result_of(&self, ticket: u64) -> Option<Option<R>> {
        if self.finished.load(Ordering::Acquire) < ticket {
            return None;
        }
        // The member writes a result before it moves `finished`, and
        // `ticket` is the latest job handed over: the stored result is this
        // job's. Anything else reads as a failed job rather than a hang.
        match lock(&self.result).take() {
            Some((t, r)) if t == ticket => Some(r),
            _ => Some(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<J: Send + 'static, R: Send + 'static> Crew<J, R> {
    /// Starts `size` threads named `name-N`.
    pub fn spawn(size: usize, name: &str, work: Work<J, R>) -> std::io::Result<Self> {
        let mut members = Vec::with_capacity(size);
        for i in 0..size {
            let shared = Arc::new(Shared::new());
            let (s, w) = (shared.clone(), work.clone());
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{}", i + 1))
                .spawn(move || member_loop(&s, &*w))?;
            members.push(Member {
                shared,
                thread: Some(thread),
            });
        }
        Ok(Self::with_members(members, work))
    }

    fn with_members(members: Vec<Member<J, R>>, work: Work<J, R>) -> Self {
        Self {
            members,
            work,
            busy: Mutex::new(()),
            taken_back: AtomicU64::new(0),
            redone: AtomicU64::new(0),
            late_calls: AtomicU64::new(0),
        }
    }

    /// Threads in the crew.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Whether the next call should be split over the crew: always while
    /// every member delivers in time, else one call in [`PROBE_EVERY`].
    pub fn worth_splitting(&self) -> bool {
        if self
            .members
            .iter()
            .all(|m| m.shared.spin.load(Ordering::Relaxed))
        {
            return true;
        }
        self.late_calls
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PROBE_EVERY)
    }

    /// Jobs the calling thread ran itself, so far.
    pub fn reclaimed(&self) -> Reclaimed {
        Reclaimed {
            not_started: self.taken_back.load(Ordering::Relaxed),
            overdue: self.redone.load(Ordering::Relaxed),
        }
    }

    /// Runs `jobs` (at most one per member) on the crew and `own` on the
    /// calling thread at the same time; returns `own`'s result and the
    /// jobs' results in order, `None` for a job whose work panicked. When
    /// another call holds the crew, the jobs run here after `own`.
    /// `redo(i)` must give what the work gives for job `i`: the caller runs
    /// it instead of waiting for an overdue member.
    pub fn run<T>(
        &self,
        jobs: Vec<J>,
        own: impl FnOnce() -> T,
        redo: impl Fn(usize) -> R,
    ) -> (T, Vec<Option<R>>) {
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
                    // Only the caller holding `busy` hands jobs over.
                    let ticket = m.shared.posted.load(Ordering::Acquire) + 1;
                    *lock(&m.shared.slot) = Slot::Posted(ticket, job);
                    m.shared.posted.store(ticket, Ordering::Release);
                    // Taken after `posted` moved: a member about to park
                    // re-checks `posted` under this lock, so no wake-up is
                    // lost.
                    if *lock(&m.shared.parked) {
                        m.shared.wake.notify_one();
                    }
                    handed.push((i, m, ticket));
                }
                None => local.push(job),
            }
        }
        let began = Instant::now();
        let mine = own();
        let allowed = began.elapsed().mul_f64(OVERDUE) + OVERDUE_SLACK;
        let mut results: Vec<Option<R>> = Vec::with_capacity(handed.len() + local.len());
        for (i, m, ticket) in handed {
            let (result, in_time) = match collect(&m.shared, ticket, began + allowed, allowed) {
                Collected::Result(result) => (result, true),
                Collected::Back(job) => {
                    self.taken_back.fetch_add(1, Ordering::Relaxed);
                    (guarded(&*self.work, job), false)
                }
                Collected::Overdue => {
                    self.redone.fetch_add(1, Ordering::Relaxed);
                    (catch_unwind(AssertUnwindSafe(|| redo(i))).ok(), false)
                }
            };
            m.shared.spin.store(in_time, Ordering::Relaxed);
            results.push(result);
        }
        results.extend(local.into_iter().map(|j| guarded(&*self.work, j)));
        (mine, results)
    }
}

/// How the caller came by a job it had handed over.
enum Collected<J, R> {
    /// The member finished it: its result.
    Result(Option<R>),
    /// No member had started it in time: here it is back.
    Back(J),
    /// The member started it but is overdue.
    Overdue,
}

/// Waits for job `ticket`: its result once the member has finished it; the
/// job itself if the member has not started it by `start_by`; `Overdue`
/// once the member has run it for longer than `allowed`.
fn collect<J, R>(
    s: &Shared<J, R>,
    ticket: u64,
    start_by: Instant,
    allowed: Duration,
) -> Collected<J, R> {
    let mut spins = 0u32;
    loop {
        if let Some(result) = s.result_of(ticket) {
            return Collected::Result(result);
        }
        if spins.is_multiple_of(16) {
            let now = Instant::now();
            let mut slot = lock(&s.slot);
            let overdue = match &*slot {
                Slot::Posted(t, _) if *t == ticket => now >= start_by,
                Slot::Running(t, since) if *t == ticket => now >= *since + allowed,
                // Not reached: only this caller posts, and only the member
                // turns a posted job into a running one. Running the job
                // again is the safe answer.
                _ => now >= start_by,
            };
            if overdue {
                return match std::mem::replace(&mut *slot, Slot::Empty) {
                    Slot::Posted(t, job) if t == ticket => Collected::Back(job),
                    other => {
                        *slot = other;
                        Collected::Overdue
                    }
                };
            }
        }
        if spins < 4096 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            spins = spins.wrapping_add(1);
            std::thread::yield_now();
        }
    }
}

fn guarded<J, R>(work: &(dyn Fn(J) -> R + Send + Sync), job: J) -> Option<R> {
    catch_unwind(AssertUnwindSafe(|| work(job))).ok()
}

fn member_loop<J, R>(s: &Shared<J, R>, work: &(dyn Fn(J) -> R + Send + Sync)) {
    let mut seen = 0u64;
    loop {
        let since = Instant::now();
        let mut spins = 0u32;
        while s.posted.load(Ordering::Acquire) == seen {
            if s.stop.load(Ordering::Acquire) {
                return;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64)
                && (!s.spin.load(Ordering::Relaxed) || since.elapsed() >= SPIN)
            {
                let mut parked = lock(&s.parked);
                *parked = true;
                while s.posted.load(Ordering::Acquire) == seen && !s.stop.load(Ordering::Acquire) {
                    parked = s.wake.wait(parked).unwrap_or_else(PoisonError::into_inner);
                }
                *parked = false;
            } else {
                std::hint::spin_loop();
            }
        }
        seen = s.posted.load(Ordering::Acquire);
        let taken = {
            let mut slot = lock(&s.slot);
            match std::mem::replace(&mut *slot, Slot::Empty) {
                Slot::Posted(ticket, job) => {
                    *slot = Slot::Running(ticket, Instant::now());
                    Some((ticket, job))
                }
                // Taken back by the caller.
                other => {
                    *slot = other;
                    None
                }
            }
        };
        if let Some((ticket, job)) = taken {
            let result = guarded(work, job);
            *lock(&s.result) = Some((ticket, result));
            s.finished.store(ticket, Ordering::Release);
        }
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
    use std::sync::atomic::AtomicUsize;

    fn squares(size: usize) -> Crew<u64, u64> {
        Crew::spawn(size, "test-crew", Arc::new(|x: u64| x * x)).unwrap()
    }

    /// A crew whose members never run: every job they are handed is taken
    /// back.
    fn absent(size: usize) -> Crew<u64, u64> {
        let members = (0..size)
            .map(|_| Member {
                shared: Arc::new(Shared::new()),
                thread: None,
            })
            .collect();
        Crew::with_members(members, Arc::new(|x: u64| x * x))
    }

    /// Runs `jobs` with a `redo` that squares, like the work.
    fn run_squares(crew: &Crew<u64, u64>, jobs: &[u64]) -> Vec<Option<u64>> {
        crew.run(jobs.to_vec(), || (), |i| jobs[i] * jobs[i]).1
    }

    fn spin_for(d: Duration) {
        let t = Instant::now();
        while t.elapsed() < d {
            std::hint::spin_loop();
        }
    }

    /// Polls `flag` every millisecond for up to ten seconds.
    fn wait_until(flag: &AtomicBool) -> bool {
        for _ in 0..10_000 {
            if flag.load(Ordering::Acquire) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// Polls for up to ten seconds until member `m` has finished the job
    /// handed to it last.
    fn wait_until_finished(crew: &Crew<u64, u64>, m: usize) -> bool {
        let s = &crew.members[m - 1].shared;
        for _ in 0..10_000 {
            if s.finished.load(Ordering::Acquire) == s.posted.load(Ordering::Acquire) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn runs_each_job_once_and_keeps_their_order() {
        let crew = squares(3);
        let jobs = [2, 3, 4];
        let (own, rest) = crew.run(jobs.to_vec(), || 1, |i| jobs[i] * jobs[i]);
        assert_eq!(own, 1);
        assert_eq!(rest, vec![Some(4), Some(9), Some(16)]);
    }

    #[test]
    fn jobs_beyond_the_crew_run_on_the_calling_thread() {
        let crew = squares(1);
        assert_eq!(
            run_squares(&crew, &[5, 6, 7]),
            vec![Some(25), Some(36), Some(49)]
        );
    }

    #[test]
    fn a_parked_member_wakes_for_the_next_call() {
        let crew = squares(1);
        for i in 0..3u64 {
            std::thread::sleep(SPIN * 20);
            assert_eq!(run_squares(&crew, &[i]), vec![Some(i * i)]);
        }
    }

    #[test]
    fn many_calls_in_a_row_each_get_their_own_result() {
        let crew = squares(1);
        for i in 0..10_000u64 {
            let (own, rest) = crew.run(vec![i], || i + 1, |_| i * i);
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
                        assert_eq!(run_squares(&crew, &[x]), vec![Some(x * x)]);
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
    }

    #[test]
    fn a_job_no_member_started_is_taken_back_by_the_caller() {
        let crew = absent(2);
        let (own, rest) = crew.run(vec![3, 4], || 1, |_| unreachable!());
        assert_eq!((own, rest), (1, vec![Some(9), Some(16)]));
        let (own, rest) = crew.run(vec![5], || 2, |_| unreachable!());
        assert_eq!((own, rest), (2, vec![Some(25)]));
        assert_eq!(
            crew.reclaimed(),
            Reclaimed {
                not_started: 3,
                overdue: 0
            }
        );
        assert!(!crew.members[0].shared.spin.load(Ordering::Relaxed));
        let split = (0..PROBE_EVERY * 4)
            .filter(|_| crew.worth_splitting())
            .count();
        assert_eq!(split, 4, "a late crew splits one call in {PROBE_EVERY}");
    }

    #[test]
    fn an_overdue_job_is_run_again_by_the_caller_and_the_late_result_dropped() {
        let started = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (s, r) = (started.clone(), release.clone());
        let crew: Crew<u64, u64> = Crew::spawn(
            1,
            "test-crew",
            Arc::new(move |x: u64| {
                if x == 13 {
                    s.store(true, Ordering::Release);
                    wait_until(&r);
                }
                x * x
            }),
        )
        .unwrap();
        let redone = AtomicUsize::new(0);
        // The caller's own share lasts until the member has started job 13,
        // which then stalls: it is overdue.
        let (own, rest) = crew.run(
            vec![13],
            || wait_until(&started),
            |_| {
                redone.fetch_add(1, Ordering::Relaxed);
                169
            },
        );
        assert!(own, "the member never started job 13");
        assert_eq!(rest, vec![Some(169)]);
        assert_eq!(redone.load(Ordering::Relaxed), 1);
        assert_eq!(crew.reclaimed().overdue, 1);
        assert!(
            !crew.members[0].shared.spin.load(Ordering::Relaxed),
            "a member that was late should park, not spin"
        );
        // The member is still on job 13; the next jobs get their own
        // results, whoever runs them.
        assert_eq!(run_squares(&crew, &[7]), vec![Some(49)]);
        release.store(true, Ordering::Release);
        for i in 0..1_000u64 {
            assert_eq!(run_squares(&crew, &[i]), vec![Some(i * i)]);
        }
        // Once it delivers in time again, it spins between jobs again.
        let (done, _) = crew.run(vec![3], || wait_until_finished(&crew, 1), |_| 9);
        assert!(done, "the member never finished its job");
        assert!(crew.members[0].shared.spin.load(Ordering::Relaxed));
        assert!((0..PROBE_EVERY).all(|_| crew.worth_splitting()));
    }

    #[test]
    fn uneven_shares_still_give_every_job_its_own_result() {
        // Own shares and jobs of different lengths, so that jobs are
        // finished by members, taken back before they start, and run again
        // when overdue, in any mix.
        let crew: Crew<u64, u64> = Crew::spawn(
            2,
            "test-crew",
            Arc::new(|x: u64| {
                spin_for(Duration::from_micros(x % 5 * 15));
                x * x
            }),
        )
        .unwrap();
        for i in 0..3_000u64 {
            let jobs = [i, i + 1];
            let (own, rest) = crew.run(
                jobs.to_vec(),
                || {
                    spin_for(Duration::from_micros(i % 7 * 10));
                    i
                },
                |k| jobs[k] * jobs[k],
            );
            assert_eq!(own, i);
            assert_eq!(rest, vec![Some(i * i), Some((i + 1) * (i + 1))]);
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
        // The redo panics too, as the work would.
        let (_, rest) = crew.run(vec![13], || (), |_| panic!("unlucky"));
        assert_eq!(rest, vec![None]);
        let (_, rest) = crew.run(vec![14], || (), |_| 14);
        assert_eq!(rest, vec![Some(14)]);
    }

    #[test]
    fn dropping_the_crew_stops_its_threads() {
        let crew = squares(2);
        let _ = run_squares(&crew, &[1, 2]);
        drop(crew);
        let crew = squares(2);
        std::thread::sleep(SPIN * 20);
        drop(crew);
    }
}
