//! Time-limited execution of reads that can block.
//!
//! Reading `/proc/<pid>/cmdline` of a task stuck in the kernel, `statvfs` on a dead
//! network mount or a FIFO can block forever, and a thread in uninterruptible sleep
//! cannot be cancelled. So such work runs on a worker thread, and the caller waits only
//! as long as the work keeps making progress: a job that does not advance its
//! [`Progress`] within the limit is abandoned (its thread is left to finish or hang on
//! its own) and a fresh worker takes the next job. After `max_stuck` abandoned workers,
//! further jobs are refused at once rather than leaking more threads.
//!
//! A guard may own several workers so that a scan can keep one job per worker in
//! flight ([`Guard::submit`], then [`Guard::wait`] in submission order) while the caller
//! compresses what the previous job returned. Each worker runs one job at a time, so a
//! stuck job never holds up another job queued behind it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// Shared between a job and its caller: when the job last started a step, and which.
pub struct Progress {
    created: Instant,
    /// Nanoseconds after `created` when the current step started.
    last_step_ns: AtomicU64,
    label: Mutex<String>,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress { created: Instant::now(), last_step_ns: AtomicU64::new(0), label: Mutex::new(String::new()) }
    }
}

impl Progress {
    /// Marks the start of one step that may block.
    pub fn step(&self, label: &str) {
        if let Ok(mut l) = self.label.lock() {
            l.clear();
            l.push_str(label);
        }
        self.last_step_ns.store(self.created.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// When the current step started (the job's submission before its first step).
    fn last_step(&self) -> Instant {
        self.created + Duration::from_nanos(self.last_step_ns.load(Ordering::Relaxed))
    }

    fn label(&self) -> String {
        self.label.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Why a guarded job gave no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stuck {
    /// The job made no progress within the limit while doing `label`.
    TimedOut { label: String },
    /// The overall deadline passed while the job was still running.
    Deadline { label: String },
    /// Too many workers are already stuck; the job was not started.
    Refused { stuck: usize },
    /// The job panicked (a bug): reported, not propagated.
    Panicked,
}

impl std::fmt::Display for Stuck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stuck::TimedOut { label } => write!(f, "blocked past its time limit in {label}"),
            Stuck::Deadline { label } => write!(f, "overall deadline reached in {label}"),
            Stuck::Refused { stuck } => write!(f, "not attempted: {stuck} earlier reads are still blocked"),
            Stuck::Panicked => write!(f, "collector bug: the read panicked"),
        }
    }
}

pub struct Guard {
    workers: Vec<Option<Sender<Job>>>,
    /// Which workers have a job in flight.
    busy: Vec<bool>,
    limit: Duration,
    stuck: usize,
    max_stuck: usize,
}

/// A job in flight on one worker.
pub struct Pending<T> {
    worker: usize,
    rx: mpsc::Receiver<T>,
    progress: Arc<Progress>,
}

impl Guard {
    pub fn new(limit: Duration, max_stuck: usize) -> Guard {
        Guard::with_workers(limit, max_stuck, 1)
    }

    /// A guard with `workers` worker threads (started lazily).
    pub fn with_workers(limit: Duration, max_stuck: usize, workers: usize) -> Guard {
        let n = workers.max(1);
        Guard { workers: vec![None; n], busy: vec![false; n], limit, stuck: 0, max_stuck }
    }

    /// Whether a worker is free for [`Guard::submit`].
    pub fn has_idle_worker(&self) -> bool {
        self.busy.iter().any(|b| !b)
    }

    /// How many workers were abandoned because their job blocked.
    pub fn stuck(&self) -> usize {
        self.stuck
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Runs `f` on a worker, waiting while it progresses, but never past `deadline`.
    pub fn run<T, F>(&mut self, deadline: Instant, f: F) -> Result<T, Stuck>
    where
        T: Send + 'static,
        F: FnOnce(&Progress) -> T + Send + 'static,
    {
        let pending = self.submit(f)?;
        self.wait(pending, deadline)
    }

    /// Starts `f` on an idle worker. Callers keep at most one job per worker in flight
    /// (see [`Guard::has_idle_worker`]); with none idle, the job is refused.
    pub fn submit<T, F>(&mut self, f: F) -> Result<Pending<T>, Stuck>
    where
        T: Send + 'static,
        F: FnOnce(&Progress) -> T + Send + 'static,
    {
        if self.stuck >= self.max_stuck {
            return Err(Stuck::Refused { stuck: self.stuck });
        }
        let worker = self.busy.iter().position(|b| !b).ok_or(Stuck::Refused { stuck: self.stuck })?;
        let progress = Arc::new(Progress::default());
        let (done_tx, rx) = mpsc::sync_channel::<T>(1);
        let p = Arc::clone(&progress);
        let job: Job = Box::new(move || {
            let r = f(&p);
            let _ = done_tx.send(r);
        });
        let tx = self.workers[worker].get_or_insert_with(spawn_worker);
        if tx.send(job).is_err() {
            // The worker died (a panicking job); start another next time.
            self.workers[worker] = None;
            return Err(Stuck::Panicked);
        }
        self.busy[worker] = true;
        Ok(Pending { worker, rx, progress })
    }

    /// Waits for a submitted job while it progresses, but never past `deadline`.
    pub fn wait<T>(&mut self, pending: Pending<T>, deadline: Instant) -> Result<T, Stuck> {
        let Pending { worker, rx, progress } = pending;
        self.busy[worker] = false;
        loop {
            // A job is stuck when its current step has lasted the whole limit.
            let until = (progress.last_step() + self.limit).min(deadline);
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(r) => return Ok(r),
                Err(RecvTimeoutError::Disconnected) => {
                    self.workers[worker] = None;
                    return Err(Stuck::Panicked);
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    if now >= deadline {
                        self.abandon(worker);
                        return Err(Stuck::Deadline { label: progress.label() });
                    }
                    if now >= progress.last_step() + self.limit {
                        self.abandon(worker);
                        return Err(Stuck::TimedOut { label: progress.label() });
                    }
                }
            }
        }
    }

    fn abandon(&mut self, worker: usize) {
        self.workers[worker] = None;
        self.stuck += 1;
    }
}

fn spawn_worker() -> Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("snap-reader".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                    return;
                }
            }
        })
        .expect("spawn reader thread");
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn quick_jobs_return_their_result() {
        let mut g = Guard::new(Duration::from_millis(200), 2);
        assert_eq!(g.run(far(), |_| 41 + 1), Ok(42));
        assert_eq!(g.run(far(), |_| "again"), Ok("again"));
        assert_eq!(g.stuck(), 0);
    }

    #[test]
    fn a_blocked_job_is_abandoned_and_later_jobs_still_run() {
        // Limits of a second or so in these tests: a busy VM can pause a thread for
        // a tenth of one.
        let mut g = Guard::new(Duration::from_millis(1000), 2);
        let t = Instant::now();
        let r = g.run(far(), |p| {
            p.step("sleeping");
            std::thread::sleep(Duration::from_secs(5));
        });
        assert_eq!(r, Err(Stuck::TimedOut { label: "sleeping".into() }));
        // Cut after one limit from the step's start, not two.
        assert!(t.elapsed() < Duration::from_millis(1900), "{:?}", t.elapsed());
        assert_eq!(g.run(far(), |_| 7), Ok(7));
        assert_eq!(g.stuck(), 1);
    }

    #[test]
    fn a_job_that_keeps_progressing_may_take_longer_than_the_limit() {
        let mut g = Guard::new(Duration::from_millis(1000), 2);
        let r = g.run(far(), |p| {
            for _ in 0..15 {
                p.step("step");
                std::thread::sleep(Duration::from_millis(100));
            }
            "done"
        });
        assert_eq!(r, Ok("done"));
    }

    #[test]
    fn after_max_stuck_jobs_are_refused() {
        let mut g = Guard::new(Duration::from_millis(50), 1);
        let _ = g.run(far(), |_| std::thread::sleep(Duration::from_secs(2)));
        assert_eq!(g.run(far(), |_| 1), Err(Stuck::Refused { stuck: 1 }));
    }

    #[test]
    fn jobs_in_flight_on_two_workers_and_one_stuck() {
        let mut g = Guard::with_workers(Duration::from_millis(1000), 4, 2);
        let stuck = g.submit(|p| {
            p.step("blocked");
            std::thread::sleep(Duration::from_secs(5));
            0
        });
        let quick = g.submit(|_| 5).unwrap();
        assert!(!g.has_idle_worker());
        assert_eq!(g.wait(stuck.unwrap(), far()), Err(Stuck::TimedOut { label: "blocked".into() }));
        assert_eq!(g.wait(quick, far()), Ok(5));
        // The stuck worker was replaced: both slots take work again.
        let a = g.submit(|_| 1).unwrap();
        let b = g.submit(|_| 2).unwrap();
        assert_eq!((g.wait(a, far()), g.wait(b, far())), (Ok(1), Ok(2)));
    }

    #[test]
    fn a_panicking_job_is_reported_not_propagated() {
        // Generous limit: the panic hook may symbolise a backtrace before unwinding.
        let mut g = Guard::new(Duration::from_secs(20), 2);
        let r: Result<(), Stuck> = g.run(far(), |_| panic!("boom"));
        assert_eq!(r, Err(Stuck::Panicked));
        assert_eq!(g.run(far(), |_| 3), Ok(3));
    }
}
