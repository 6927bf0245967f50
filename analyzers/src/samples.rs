//! The sampling window as rates: what `vmstat 1`, `mpstat -P ALL` and `top` would have
//! shown while snap was collecting.
//!
//! Every `samples/<n>/proc/stat` is parsed with procfs-core ([`KernelStats`], given the
//! bundle's clock ticks, page size and boot time); CPU utilisation by mode is the
//! difference of the tick counters between two samples, per CPU and in total, for the
//! whole window (first to last sample) and per interval. `procs_running` and
//! `procs_blocked` of each sample are vmstat's `r` and `b`. Per-process CPU comes from
//! the `utime + stime` of `samples/<n>/proc/<pid>/stat` in the first and last samples
//! (a pid present in both with the same start time); the collector itself
//! (`manifest.collector_pid`) is left out.
//!
//! A window needs at least two samples with a readable `proc/stat`; otherwise rules that
//! need rates are not evaluated ([`NEED`]). A sos report has no sampling window: its
//! window runs from boot to the report's `proc/stat` ([`Window::since_boot`]), and the
//! rules say so in their findings ([`Window::span`]).

use std::collections::BTreeMap;
use std::rc::Rc;

use procfs_core::process::Stat;
use procfs_core::{CpuTime, ExplicitSystemInfo, FromReadSI, KernelStats};

use crate::{Evidence, Input, Need, Skip};

/// What rules needing rates report as missing when the window is too short.
pub const NEED: &str = "samples (a sampling window of at least 2 samples)";

/// Tick counters of one CPU (or of all), by mode. `user` and `nice` include guest time,
/// as the kernel reports them; guest columns are not added again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticks {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl Ticks {
    fn from_cpu(c: &CpuTime) -> Ticks {
        Ticks {
            user: c.user,
            nice: c.nice,
            system: c.system,
            idle: c.idle,
            iowait: c.iowait.unwrap_or(0),
            irq: c.irq.unwrap_or(0),
            softirq: c.softirq.unwrap_or(0),
            steal: c.steal.unwrap_or(0),
        }
    }

    pub fn total(&self) -> u64 {
        [self.user, self.nice, self.system, self.idle, self.iowait, self.irq, self.softirq, self.steal]
            .iter()
            .fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// `self - earlier`, each counter floored at 0 (iowait can go backwards on some kernels).
    fn since(&self, earlier: &Ticks) -> Ticks {
        Ticks {
            user: self.user.saturating_sub(earlier.user),
            nice: self.nice.saturating_sub(earlier.nice),
            system: self.system.saturating_sub(earlier.system),
            idle: self.idle.saturating_sub(earlier.idle),
            iowait: self.iowait.saturating_sub(earlier.iowait),
            irq: self.irq.saturating_sub(earlier.irq),
            softirq: self.softirq.saturating_sub(earlier.softirq),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }
}

/// Shares of CPU time by mode in percent (they add up to 100), over `ticks` ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Utilisation {
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub idle: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
    /// The ticks elapsed in all modes (0: no time passed, every share is 0).
    pub ticks: u64,
}

impl Utilisation {
    fn of(d: &Ticks) -> Utilisation {
        let t = d.total();
        let pct = |v: u64| if t == 0 { 0.0 } else { v as f64 * 100.0 / t as f64 };
        Utilisation {
            user: pct(d.user),
            nice: pct(d.nice),
            system: pct(d.system),
            idle: pct(d.idle),
            iowait: pct(d.iowait),
            irq: pct(d.irq),
            softirq: pct(d.softirq),
            steal: pct(d.steal),
            ticks: t,
        }
    }

    /// Time the CPU was doing something: everything but idle and iowait (which is idle
    /// time with I/O outstanding).
    pub fn busy(&self) -> f64 {
        if self.ticks == 0 {
            0.0
        } else {
            (100.0 - self.idle - self.iowait).max(0.0)
        }
    }

    /// The modes as `(name, percent)`, in /proc/stat's order.
    pub fn modes(&self) -> [(&'static str, f64); 8] {
        [
            ("user", self.user),
            ("nice", self.nice),
            ("system", self.system),
            ("idle", self.idle),
            ("iowait", self.iowait),
            ("irq", self.irq),
            ("softirq", self.softirq),
            ("steal", self.steal),
        ]
    }

    /// `user 80.0% nice 0.0% ...`, for evidence lines.
    pub fn describe(&self) -> String {
        self.modes().iter().map(|(n, v)| format!("{n} {v:.1}%")).collect::<Vec<_>>().join(", ")
    }
}

/// One sample's `proc/stat`.
#[derive(Debug, Clone)]
pub struct Sample {
    /// `n` of `samples/<n>/`.
    pub index: usize,
    /// The entry it was read from (`samples/<n>/proc/stat`).
    pub entry: String,
    /// CLOCK_MONOTONIC when it was taken, from the manifest.
    pub monotonic_ns: Option<u64>,
    pub total: Ticks,
    /// `(cpu number, ticks)` for every `cpuN` line.
    pub cpus: Vec<(u32, Ticks)>,
    /// vmstat's `r`: tasks running or runnable, the reader of /proc/stat included.
    pub procs_running: Option<u32>,
    /// vmstat's `b`: tasks blocked in I/O wait.
    pub procs_blocked: Option<u32>,
}

impl Sample {
    /// Runnable tasks other than the one reading /proc/stat (snap's own thread, or
    /// whatever `cat` captured a third-party file): `procs_running - 1`, floored at 0.
    pub fn runnable_others(&self) -> Option<u32> {
        self.procs_running.map(|r| r.saturating_sub(1))
    }
}

/// CPU utilisation between two samples.
#[derive(Debug, Clone)]
pub struct Rates {
    /// Sample indexes (`n` of `samples/<n>/`) at both ends.
    pub from: usize,
    pub to: usize,
    /// Seconds between them (monotonic clocks of the manifest, else ticks / CPUs).
    pub seconds: f64,
    pub total: Utilisation,
    /// Per CPU present in both samples, by CPU number.
    pub per_cpu: Vec<(u32, Utilisation)>,
}

/// One process's CPU use over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessCpu {
    pub pid: u32,
    pub comm: String,
    /// CPU time over wall time, in percent of one CPU (a process with 4 busy threads
    /// shows 400).
    pub cpu_percent: f64,
    pub user_percent: f64,
    pub system_percent: f64,
    /// Its state in the last sample (`R`, `S`, `D`, ...).
    pub state: char,
    /// The CPU it last ran on (stat field 39), in the last sample.
    pub last_cpu: Option<i32>,
}

/// The sampling window of a bundle.
#[derive(Debug, Clone)]
pub struct Window {
    /// Samples with a readable `proc/stat`, by index.
    pub samples: Vec<Sample>,
    pub clock_ticks: u64,
    /// snap's own pid, left out of per-process figures.
    pub collector_pid: Option<u32>,
    /// True for a sos report's figures since boot: the first sample is the boot (every
    /// counter zero), the last the report's `proc/stat`.
    pub since_boot: bool,
}

impl Window {
    /// Reads every sample's `proc/stat`. Fewer than two: [`Skip::Missing`] ([`NEED`]);
    /// a sample whose `proc/stat` is unparseable: [`Skip::Bad`].
    pub fn read(input: &Input) -> Need<Window> {
        let si = input.system_info();
        let info = ExplicitSystemInfo {
            boot_time_secs: si.boot_time,
            ticks_per_second: si.clock_ticks,
            page_size: si.page_size,
            is_little_endian: input.manifest().is_none_or(|m| m.host.endianness != "big"),
        };
        let clocks: BTreeMap<usize, u64> = input
            .manifest()
            .map(|m| m.samples.iter().map(|s| (s.index, s.clocks.monotonic_ns)).filter(|(_, ns)| *ns > 0).collect())
            .unwrap_or_default();
        let indexes = input.samples_with("proc/stat");
        let mut samples = Vec::new();
        let collector_pid = input.manifest().map(|m| m.collector_pid).filter(|p| *p > 0);
        if indexes.is_empty() && input.sos().is_some() {
            // Since boot: every counter starts at zero then, and the report's
            // proc/stat holds them at the capture.
            let up_ns = input.manifest().map(|m| m.clocks.boottime_ns).filter(|ns| *ns > 0);
            let Ok(mut capture) = read_sample(input, &info, 1, "proc/stat".into(), up_ns) else {
                return Err(Skip::Missing(vec!["proc/stat".into(), NEED.into()]));
            };
            let boot = Sample {
                index: 0,
                entry: capture.entry.clone(),
                monotonic_ns: up_ns.map(|_| 0),
                total: Ticks::default(),
                cpus: capture.cpus.iter().map(|(id, _)| (*id, Ticks::default())).collect(),
                procs_running: None,
                procs_blocked: None,
            };
            capture.index = 1;
            return Ok(Window {
                samples: vec![boot, capture],
                clock_ticks: si.clock_ticks,
                collector_pid,
                since_boot: true,
            });
        }
        for index in indexes {
            let entry = format!("samples/{index}/proc/stat");
            samples.push(read_sample(input, &info, index, entry, clocks.get(&index).copied())?);
        }
        if samples.len() < 2 {
            return Err(Skip::missing(NEED));
        }
        Ok(Window { samples, clock_ticks: si.clock_ticks, collector_pid, since_boot: false })
    }

    /// How the figures were taken, for a finding's summary: `over the 5.0 s sampling
    /// window (rates from the window)`, or since boot for a sos report.
    pub fn span(&self, r: &Rates) -> String {
        if self.since_boot {
            format!(
                "since boot, {:.1} h ago (a sos report has no sampling window: CPU shares are since boot, \
                 task counts from its one proc/stat)",
                r.seconds / 3600.0
            )
        } else {
            format!("over the {:.1} s sampling window (rates from the window)", r.seconds)
        }
    }
}

/// Reads one `proc/stat` of the window.
fn read_sample(
    input: &Input,
    info: &ExplicitSystemInfo,
    index: usize,
    entry: String,
    monotonic_ns: Option<u64>,
) -> Need<Sample> {
    let raw = input.raw(&entry)?;
    let stat = KernelStats::from_read(&raw[..], info).map_err(|e| Skip::bad(&entry, e))?;
    let text = snap_bundle::text::lossy(&raw);
    let ids: Vec<u32> = text
        .lines()
        .filter_map(|l| l.strip_prefix("cpu").filter(|r| r.starts_with(|c: char| c.is_ascii_digit())))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .collect();
    let cpus = stat
        .cpu_time
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let id = if ids.len() == stat.cpu_time.len() { ids[i] } else { i as u32 };
            (id, Ticks::from_cpu(c))
        })
        .collect();
    Ok(Sample {
        index,
        entry,
        monotonic_ns,
        total: Ticks::from_cpu(&stat.total),
        cpus,
        procs_running: stat.procs_running,
        procs_blocked: stat.procs_blocked,
    })
}

impl Window {
    pub fn first(&self) -> &Sample {
        &self.samples[0]
    }

    pub fn last(&self) -> &Sample {
        &self.samples[self.samples.len() - 1]
    }

    /// Seconds between two samples: their monotonic clocks, else the ticks elapsed
    /// per CPU.
    pub fn seconds_between(&self, a: &Sample, b: &Sample) -> f64 {
        if let (Some(x), Some(y)) = (a.monotonic_ns, b.monotonic_ns) {
            if y > x {
                return (y - x) as f64 / 1e9;
            }
        }
        let cpus = a.cpus.len().max(1) as f64;
        b.total.since(&a.total).total() as f64 / cpus / self.clock_ticks.max(1) as f64
    }

    /// Utilisation between two samples.
    pub fn rates(&self, a: &Sample, b: &Sample) -> Rates {
        let per_cpu = b
            .cpus
            .iter()
            .filter_map(|(id, t)| {
                let (_, before) = a.cpus.iter().find(|(i, _)| i == id)?;
                Some((*id, Utilisation::of(&t.since(before))))
            })
            .collect();
        Rates {
            from: a.index,
            to: b.index,
            seconds: self.seconds_between(a, b),
            total: Utilisation::of(&b.total.since(&a.total)),
            per_cpu,
        }
    }

    /// Utilisation over the whole window, first to last sample.
    pub fn overall(&self) -> Rates {
        self.rates(self.first(), self.last())
    }

    /// Utilisation over each interval between consecutive samples.
    pub fn intervals(&self) -> Vec<Rates> {
        self.samples.windows(2).map(|w| self.rates(&w[0], &w[1])).collect()
    }

    /// The mean of `procs_running - 1` (the reader left out) over the samples that have it.
    pub fn mean_runnable_others(&self) -> Option<f64> {
        mean(self.samples.iter().filter_map(|s| s.runnable_others()))
    }

    /// The mean of `procs_blocked` over the samples that have it.
    pub fn mean_blocked(&self) -> Option<f64> {
        mean(self.samples.iter().filter_map(|s| s.procs_blocked))
    }

    /// The processes of one sample (`samples/<n>/proc/<pid>/stat`), by pid; unparseable
    /// files are skipped. The collector is left out.
    pub fn processes(&self, input: &Input, sample: &Sample) -> BTreeMap<u32, Stat> {
        self.processes_where(input, sample, |_| true)
    }

    /// Like [`Window::processes`], for the processes whose state letter passes `keep`;
    /// the others are not parsed at all (most of a busy host's processes sleep).
    pub fn processes_where(&self, input: &Input, sample: &Sample, keep: impl Fn(char) -> bool) -> BTreeMap<u32, Stat> {
        let prefix = format!("samples/{}/proc/", sample.index);
        input
            .entries_under(&prefix)
            .iter()
            .filter_map(|e| e.strip_prefix(&prefix)?.strip_suffix("/stat")?.parse::<u32>().ok())
            .filter(|pid| Some(*pid) != self.collector_pid)
            .filter_map(|pid| {
                let raw = input.raw(&format!("{prefix}{pid}/stat")).ok()?;
                if !state_letter(&raw).is_some_and(&keep) {
                    return None;
                }
                Some((pid, crate::input::process_stat(&raw).ok()?))
            })
            .collect()
    }

    /// CPU use of every process present in the first and last samples, busiest first
    /// (ties by pid). Computed once per analysis.
    pub fn process_cpu(&self, input: &Input) -> Rc<Vec<ProcessCpu>> {
        input.shared("samples::process_cpu", || self.process_cpu_uncached(input))
    }

    fn process_cpu_uncached(&self, input: &Input) -> Vec<ProcessCpu> {
        let (a, b) = (self.first(), self.last());
        let seconds = self.seconds_between(a, b);
        if seconds <= 0.0 {
            return Vec::new();
        }
        let before = self.processes(input, a);
        let after = self.processes(input, b);
        let hz = self.clock_ticks.max(1) as f64;
        let pct = |ticks: u64| ticks as f64 / hz / seconds * 100.0;
        let mut out: Vec<ProcessCpu> = after
            .iter()
            .filter_map(|(pid, s)| {
                let p = before.get(pid).filter(|p| p.starttime == s.starttime)?;
                let user = s.utime.saturating_sub(p.utime);
                let system = s.stime.saturating_sub(p.stime);
                Some(ProcessCpu {
                    pid: *pid,
                    comm: s.comm.clone(),
                    cpu_percent: pct(user + system),
                    user_percent: pct(user),
                    system_percent: pct(system),
                    state: s.state,
                    last_cpu: s.processor,
                })
            })
            .collect();
        out.sort_by(|x, y| y.cpu_percent.total_cmp(&x.cpu_percent).then(x.pid.cmp(&y.pid)));
        out
    }
}

/// The state letter of a `/proc/<pid>/stat` line: the first character after the last `)`.
fn state_letter(raw: &[u8]) -> Option<char> {
    let close = memchr::memrchr(b')', raw)?;
    raw[close + 1..].iter().find(|b| !b.is_ascii_whitespace()).map(|&b| b as char)
}

fn mean(values: impl Iterator<Item = u32>) -> Option<f64> {
    let (mut sum, mut n) = (0f64, 0usize);
    for v in values {
        sum += v as f64;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

/// Rounds to one decimal, for facts.
pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Evidence for window rates: the `cpu` lines of the first and last samples.
pub fn stat_evidence(input: &Input, w: &Window) -> Vec<Evidence> {
    let ends = if w.since_boot { vec![w.last()] } else { vec![w.first(), w.last()] };
    ends.iter()
        .map(|s| {
            let text = input.text(&s.entry).unwrap_or_default();
            text.lines()
                .filter(|l| l.starts_with("cpu") || l.starts_with("procs_"))
                .fold(Evidence::entry(&s.entry), |e, l| e.line(l))
        })
        .collect()
}

/// The busiest processes of the window as facts: `{pid, comm, cpu_percent, last_cpu, state}`.
pub fn process_facts(procs: &[ProcessCpu]) -> Vec<serde_json::Value> {
    procs
        .iter()
        .map(|p| {
            serde_json::json!({
                "pid": p.pid,
                "comm": p.comm,
                "cpu_percent": round1(p.cpu_percent),
                "user_percent": round1(p.user_percent),
                "system_percent": round1(p.system_percent),
                "last_cpu": p.last_cpu,
                "state": p.state.to_string(),
            })
        })
        .collect()
}

/// `pid 123 (sh) 99.5% on CPU 0`, for summaries.
pub fn describe_process(p: &ProcessCpu) -> String {
    match p.last_cpu {
        Some(c) => format!("pid {} ({}) {:.0}% last on CPU {c}", p.pid, p.comm, p.cpu_percent),
        None => format!("pid {} ({}) {:.0}%", p.pid, p.comm, p.cpu_percent),
    }
}

/// Utilisation by mode as facts, rounded to 0.1 %.
pub fn mode_facts(u: &Utilisation) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (n, v) in u.modes() {
        m.insert(n.to_string(), round1(v).into());
    }
    m.insert("busy".into(), round1(u.busy()).into());
    serde_json::Value::Object(m)
}

/// Shared test data: real /proc/stat text captured on a 2-CPU Debian 12 VM (6.18
/// kernel) one second apart while it was compiling (the `intr` line shortened).
#[cfg(test)]
pub(crate) mod fixtures {
    pub const STAT_0: &str = "cpu  513658 16084 129238 422951 10919 0 7569 9579 0 0
cpu0 248129 8064 60453 227905 3512 0 2251 4655 0 0
cpu1 265529 8019 68784 195046 7406 0 5317 4923 0 0
intr 5339389 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
ctxt 13732542
btime 1795903307
processes 188783
procs_running 5
procs_blocked 0
softirq 30065539 0 326804 155 27902175 486883 0 154 461872 9236 878260
";
    pub const STAT_1: &str = "cpu  513821 16085 129272 422951 10919 0 7569 9581 0 0
cpu0 248208 8064 60472 227905 3512 0 2251 4656 0 0
cpu1 265612 8020 68799 195046 7406 0 5317 4924 0 0
intr 5340260 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
ctxt 13734414
btime 1795903307
processes 188830
procs_running 5
procs_blocked 0
softirq 30065991 0 326906 155 27902175 486887 0 154 461913 9236 878565
";

    /// A /proc/stat in the same real format with chosen counters: per CPU
    /// `[user, nice, system, idle, iowait, irq, softirq, steal]`.
    pub fn stat(cpus: &[[u64; 8]], running: u32, blocked: u32) -> String {
        let mut total = [0u64; 8];
        for c in cpus {
            for (t, v) in total.iter_mut().zip(c) {
                *t += v;
            }
        }
        let line = |name: &str, v: &[u64; 8]| {
            format!("{name} {} {} {} {} {} {} {} {} 0 0\n", v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
        };
        let mut s = line("cpu ", &total);
        for (i, c) in cpus.iter().enumerate() {
            s += &line(&format!("cpu{i}"), c);
        }
        s += &format!(
            "intr 5339389 0 0 0 0\nctxt 13732542\nbtime 1795903307\nprocesses 188783\n\
             procs_running {running}\nprocs_blocked {blocked}\nsoftirq 30065539 0 326804 155 27902175 486883 0 154 461872 9236 878260\n"
        );
        s
    }

    /// A real /proc/<pid>/stat line (a bash busy loop) with chosen pid, comm, state,
    /// utime, stime and last CPU.
    pub fn pid_stat(pid: u32, comm: &str, state: char, utime: u64, stime: u64, cpu: u32) -> String {
        format!(
            "{pid} ({comm}) {state} 1 {pid} 1 34816 {pid} 4194304 134 0 0 0 {utime} {stime} 0 0 20 0 1 0 \
             556000 2461696 224 18446744073709551615 94380417273856 94380417938093 140726851386656 0 0 0 \
             65536 4 65538 0 0 0 17 {cpu} 0 0 0 0 0 94380418114800 94380418163012 94380448411648 \
             140726851391299 140726851391331 140726851391331 140726851391468 0\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::rules::testing::bundle_with;

    #[test]
    fn real_stat_pair_gives_rates_by_mode() {
        let b = bundle_with(&[("samples/0/proc/stat", STAT_0), ("samples/1/proc/stat", STAT_1)]);
        let w = Window::read(&Input::new(&b)).unwrap();
        let r = w.overall();
        // Deltas: user 163, nice 1, system 34, idle 0, iowait 0, irq 0, softirq 0, steal 2 = 200.
        assert_eq!(r.total.ticks, 200);
        assert!((r.total.user - 81.5).abs() < 1e-9, "{:?}", r.total);
        assert!((r.total.system - 17.0).abs() < 1e-9);
        assert!((r.total.steal - 1.0).abs() < 1e-9);
        assert!((r.total.busy() - 100.0).abs() < 1e-9);
        // Without a manifest, time is ticks per CPU: 200 / 2 / 100 Hz = 1 s.
        assert!((r.seconds - 1.0).abs() < 1e-9);
        assert_eq!(r.per_cpu.len(), 2);
        assert_eq!(r.per_cpu[1].0, 1);
        // cpu1: user 83, nice 1, system 15, steal 1 = 100.
        assert_eq!(r.per_cpu[1].1.ticks, 100);
        assert!((r.per_cpu[1].1.user - 83.0).abs() < 1e-9);
        assert_eq!(w.first().procs_running, Some(5));
        assert_eq!(w.first().runnable_others(), Some(4));
        assert_eq!(w.mean_runnable_others(), Some(4.0));
        assert_eq!(w.mean_blocked(), Some(0.0));
        assert_eq!(w.intervals().len(), 1);
    }

    #[test]
    fn samples_sorted_numerically_and_intervals_per_pair() {
        let idle = |t: u64| stat(&[[t, 0, 0, 100 * t, 0, 0, 0, 0]], 1, 0);
        let b = bundle_with(&[
            ("samples/0/proc/stat", &idle(1)),
            ("samples/2/proc/stat", &idle(3)),
            ("samples/10/proc/stat", &idle(11)),
            ("samples/1/proc/stat", &idle(2)),
        ]);
        let w = Window::read(&Input::new(&b)).unwrap();
        assert_eq!(w.samples.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1, 2, 10]);
        let iv = w.intervals();
        assert_eq!(iv.len(), 3);
        assert_eq!((iv[2].from, iv[2].to), (2, 10));
        assert!((w.overall().total.user - 100.0 / 101.0).abs() < 1e-9);
        assert_eq!(w.mean_runnable_others(), Some(0.0));
    }

    #[test]
    fn offline_cpus_keep_their_numbers() {
        let text = STAT_0.replace("cpu1 ", "cpu3 ");
        let text1 = STAT_1.replace("cpu1 ", "cpu3 ");
        let b = bundle_with(&[("samples/0/proc/stat", &text), ("samples/1/proc/stat", &text1)]);
        let w = Window::read(&Input::new(&b)).unwrap();
        assert_eq!(w.overall().per_cpu.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 3]);
    }

    #[test]
    fn fewer_than_two_samples_is_missing_and_garbage_is_bad() {
        let b = bundle_with(&[("samples/0/proc/stat", STAT_0), ("proc/stat", STAT_1)]);
        assert_eq!(Window::read(&Input::new(&b)).unwrap_err(), Skip::missing(NEED));
        let b = bundle_with(&[("samples/0/proc/stat", STAT_0), ("samples/1/proc/stat", "garbage\n")]);
        assert!(
            matches!(Window::read(&Input::new(&b)), Err(Skip::Bad { entry, .. }) if entry == "samples/1/proc/stat")
        );
    }

    #[test]
    fn process_cpu_from_utime_stime_deltas() {
        let b = bundle_with(&[
            ("samples/0/proc/stat", STAT_0),
            ("samples/1/proc/stat", STAT_1),
            ("samples/0/proc/100/stat", &pid_stat(100, "sh", 'R', 1000, 10, 0)),
            ("samples/1/proc/100/stat", &pid_stat(100, "sh", 'R', 1095, 15, 1)),
            ("samples/0/proc/200/stat", &pid_stat(200, "sleep", 'S', 5, 5, 1)),
            ("samples/1/proc/200/stat", &pid_stat(200, "sleep", 'S', 5, 5, 1)),
            // Only in the last sample: no rate.
            ("samples/1/proc/300/stat", &pid_stat(300, "new", 'R', 50, 0, 0)),
        ]);
        let w = Window::read(&Input::new(&b)).unwrap();
        let p = w.process_cpu(&Input::new(&b));
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].pid, p[0].comm.as_str(), p[0].state, p[0].last_cpu), (100, "sh", 'R', Some(1)));
        assert!((p[0].cpu_percent - 100.0).abs() < 1e-9, "{p:?}");
        assert!((p[0].user_percent - 95.0).abs() < 1e-9);
        assert_eq!(p[1].cpu_percent, 0.0);
    }

    #[test]
    fn manifest_clocks_and_collector_pid_are_used() {
        let manifest = r#"{"format_version":1,"collector_pid":100,"host":{"clock_ticks":100,"online_cpus":2},
            "samples":[{"index":0,"clocks":{"monotonic_ns":1000000000}},{"index":1,"clocks":{"monotonic_ns":3000000000}}]}"#;
        let b = bundle_with(&[
            ("manifest.json", manifest),
            ("samples/0/proc/stat", STAT_0),
            ("samples/1/proc/stat", STAT_1),
            ("samples/0/proc/100/stat", &pid_stat(100, "snap", 'R', 0, 0, 0)),
            ("samples/1/proc/100/stat", &pid_stat(100, "snap", 'R', 100, 0, 0)),
            ("samples/0/proc/101/stat", &pid_stat(101, "sh", 'R', 0, 0, 0)),
            ("samples/1/proc/101/stat", &pid_stat(101, "sh", 'R', 100, 0, 0)),
        ]);
        let input = Input::new(&b);
        let w = Window::read(&input).unwrap();
        assert_eq!(w.overall().seconds, 2.0);
        let p = w.process_cpu(&input);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].pid, 101);
        assert!((p[0].cpu_percent - 50.0).abs() < 1e-9);
    }
}
