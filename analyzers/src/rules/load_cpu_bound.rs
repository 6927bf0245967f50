//! `load.cpu_bound`: more runnable tasks than CPUs through the sampling window.

use crate::samples::{self, round1, Window};
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct CpuBound;

/// Mean runnable tasks per CPU (the reader of /proc/stat left out) above which the
/// rule warns, and from which it is critical.
const WARN_PER_CPU: f64 = 1.0;
const CRITICAL_PER_CPU: f64 = 4.0;
/// Share of all CPU time busy (not idle, not iowait) the window must show: tasks
/// queueing for CPUs keep every CPU busy.
const MIN_BUSY_PERCENT: f64 = 80.0;
/// Busiest processes in the facts, and in the summary.
const TOP: usize = 10;
const TOP_IN_SUMMARY: usize = 5;

impl Rule for CpuBound {
    fn id(&self) -> &'static str {
        "load.cpu_bound"
    }

    fn detects(&self) -> &'static str {
        "more runnable tasks than CPUs (vmstat's r) through the sampling window"
    }

    fn thresholds(&self) -> &'static str {
        "warning when the mean of procs_running over the window's samples, minus 1 for the task \
         reading /proc/stat (snap itself), is above the number of online CPUs; critical from 4 \
         per CPU; and only when the CPUs were at least 80 % busy (not idle, not iowait) over the \
         window, since tasks queueing for CPUs keep every CPU busy (a spike of wakeups caught by \
         one sample, snap's own threads among them, is not a run queue). Rates from the window, not the load average: the load average mixes runnable \
         and blocked (D) tasks and lags by minutes, while procs_running says how many tasks \
         want a CPU now. Above the CPU count, tasks queue for CPU time: add CPUs or run fewer \
         busy threads. Needs at least 2 samples."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &[
            "samples/<n>/proc/stat",
            "samples/<n>/proc/<pid>/stat",
            "manifest.json (CPU count, sample clocks, collector pid)",
        ]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let w = Window::read(input)?;
        let Some(mean) = w.mean_runnable_others() else { return Ok(Vec::new()) };
        let cpus = input.online_cpus().unwrap_or(w.last().cpus.len().max(1) as u32);
        let per_cpu = mean / cpus as f64;
        if per_cpu <= WARN_PER_CPU {
            return Ok(Vec::new());
        }
        let r = w.overall();
        if r.total.busy() < MIN_BUSY_PERCENT {
            return Ok(Vec::new());
        }
        let severity = if per_cpu >= CRITICAL_PER_CPU { Severity::Critical } else { Severity::Warning };
        let procs: Vec<_> = w.process_cpu(input).iter().filter(|p| p.cpu_percent >= 1.0).take(TOP).cloned().collect();
        let names: Vec<String> = procs.iter().take(TOP_IN_SUMMARY).map(samples::describe_process).collect();
        let per_sample: Vec<u32> = w.samples.iter().filter_map(|s| s.runnable_others()).collect();
        let mut evidence = Evidence::entry("samples/<n>/proc/stat");
        for s in &w.samples {
            evidence = evidence.line(format!(
                "{}: procs_running {} procs_blocked {}",
                s.entry,
                s.procs_running.map_or("?".into(), |v| v.to_string()),
                s.procs_blocked.map_or("?".into(), |v| v.to_string())
            ));
        }
        Ok(vec![Finding::new(
            self.id(),
            severity,
            "host",
            format!(
                "{mean:.1} runnable tasks on average for {cpus} CPUs {}, CPUs {:.0}% busy{}",
                w.span(&r),
                r.total.busy(),
                if names.is_empty() { String::new() } else { format!("; busiest: {}", names.join(", ")) }
            ),
        )
        .evidence(evidence)
        .fact("mean_runnable", round1(mean))
        .fact("runnable_per_sample", per_sample)
        .fact("cpus", cpus)
        .fact("runnable_per_cpu", (per_cpu * 100.0).round() / 100.0)
        .fact("mean_blocked", round1(w.mean_blocked().unwrap_or(0.0)))
        .fact("busy_percent", round1(r.total.busy()))
        .fact("window_seconds", round1(r.seconds))
        .fact("since_boot", w.since_boot)
        .fact("busiest", samples::process_facts(&procs))
        .advice(
            "Tasks are queueing for CPU time. Add CPUs, or reduce the number of busy threads \
             (worker pools sized to the CPU count, fewer concurrent jobs), or make the busiest \
             processes cheaper (profile them with perf top).",
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;
    use crate::samples::fixtures::{pid_stat, stat, STAT_0, STAT_1};

    fn busy(running: u32, t: u64) -> String {
        stat(&[[1000 + t, 0, 10, 500, 0, 0, 0, 0], [2000 + t, 0, 10, 500, 0, 0, 0, 0]], running, 0)
    }

    #[test]
    fn fires_above_the_cpu_count_with_busiest_processes() {
        let b = bundle_with(&[
            ("sys/devices/system/cpu/online", "0-1\n"),
            ("samples/0/proc/stat", &busy(5, 0)),
            ("samples/1/proc/stat", &busy(5, 100)),
            ("samples/2/proc/stat", &busy(6, 200)),
            ("samples/0/proc/7/stat", &pid_stat(7, "sh", 'R', 100, 0, 0)),
            ("samples/2/proc/7/stat", &pid_stat(7, "sh", 'R', 200, 0, 1)),
            ("samples/0/proc/8/stat", &pid_stat(8, "sleepy", 'S', 100, 0, 0)),
            ("samples/2/proc/8/stat", &pid_stat(8, "sleepy", 'S', 100, 0, 1)),
        ]);
        let f = CpuBound.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!(f.severity, Severity::Warning);
        // (4 + 4 + 5) / 3 after leaving out the reader.
        assert_eq!(f.facts["mean_runnable"], 4.3);
        assert_eq!(f.facts["cpus"], 2);
        assert_eq!(f.facts["busiest"].as_array().unwrap().len(), 1);
        assert_eq!(f.facts["busiest"][0]["comm"], "sh");
        assert_eq!(f.facts["busiest"][0]["cpu_percent"], 50.0);
        assert!(f.summary.contains("pid 7 (sh)"), "{}", f.summary);
    }

    #[test]
    fn quiet_at_the_cpu_count() {
        // Real samples with procs_running set to 3: 2 tasks besides the reader on 2 CPUs.
        let b = bundle_with(&[
            ("samples/0/proc/stat", &STAT_0.replace("procs_running 5", "procs_running 3")),
            ("samples/1/proc/stat", &STAT_1.replace("procs_running 5", "procs_running 3")),
        ]);
        assert!(CpuBound.evaluate(&Input::new(&b)).unwrap().is_empty());
        // A burst of wakeups in one sample while the CPUs are mostly idle is no run queue.
        let idle = |r: u32, t: u64| stat(&[[100 + t, 0, 10, 500 + 9 * t, 0, 0, 0, 0]], r, 0);
        let b = bundle_with(&[("samples/0/proc/stat", &idle(10, 0)), ("samples/1/proc/stat", &idle(1, 10))]);
        assert!(CpuBound.evaluate(&Input::new(&b)).unwrap().is_empty());
        // The same real text unchanged has 4 runnable tasks besides the reader.
        let b = bundle_with(&[("samples/0/proc/stat", STAT_0), ("samples/1/proc/stat", STAT_1)]);
        assert_eq!(CpuBound.evaluate(&Input::new(&b)).unwrap()[0].facts["mean_runnable"], 4.0);
    }

    #[test]
    fn not_evaluated_without_a_window() {
        let b = bundle_with(&[("proc/stat", STAT_0)]);
        assert_eq!(CpuBound.evaluate(&Input::new(&b)), Err(crate::Skip::missing(samples::NEED)));
    }
}
