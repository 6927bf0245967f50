//! `cpu.user`: the CPUs spent nearly all the sampling window in user space.

use crate::samples::{self, round1, Window};
use crate::{Finding, Input, Need, Rule, Severity};

pub struct CpuUser;

/// Share of all CPU time in user mode (user + nice) from which the rule warns.
const WARN_PERCENT: f64 = 90.0;
/// Busiest processes named.
const TOP: usize = 5;

impl Rule for CpuUser {
    fn id(&self) -> &'static str {
        "cpu.user"
    }

    fn detects(&self) -> &'static str {
        "CPUs saturated by application code (user time) during the sampling window"
    }

    fn thresholds(&self) -> &'static str {
        "warning when user + nice time is at least 90 % of all CPU time between the first and \
         last samples of the window (rates from the window, not since boot). Nice time is user \
         code at lowered priority, so it counts. At that level every CPU is busy in \
         applications: latency grows with the run queue, and the fix is in the busiest \
         processes (profile them) or in more CPUs. Needs at least 2 samples."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["samples/<n>/proc/stat", "samples/<n>/proc/<pid>/stat", "manifest.json (sample clocks, collector pid)"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let w = Window::read(input)?;
        let r = w.overall();
        let user = r.total.user + r.total.nice;
        if r.total.ticks == 0 || user < WARN_PERCENT {
            return Ok(Vec::new());
        }
        let procs: Vec<_> = w.process_cpu(input).iter().filter(|p| p.cpu_percent > 0.0).take(TOP).cloned().collect();
        let names: Vec<String> = procs.iter().map(samples::describe_process).collect();
        let mut f = Finding::new(
            self.id(),
            Severity::Warning,
            "host",
            format!(
                "user time {user:.1}% of all CPU time on {} CPUs {}{}",
                r.per_cpu.len(),
                w.span(&r),
                if names.is_empty() { String::new() } else { format!("; busiest: {}", names.join(", ")) }
            ),
        );
        for e in samples::stat_evidence(input, &w) {
            f = f.evidence(e);
        }
        Ok(vec![f
            .fact("user_percent", round1(user))
            .fact("modes", samples::mode_facts(&r.total))
            .fact("cpus", r.per_cpu.len())
            .fact("window_seconds", round1(r.seconds))
            .fact("since_boot", w.since_boot)
            .fact("busiest", samples::process_facts(&procs))
            .advice(
                "The CPUs are busy running application code. Profile the busiest processes \
                 (perf top -p PID) to find what they spend it on, reduce their work or thread \
                 count, or add CPUs.",
            )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;
    use crate::samples::fixtures::{pid_stat, stat, STAT_0, STAT_1};

    #[test]
    fn quiet_on_a_real_busy_but_not_saturated_pair() {
        // Real samples: 81.5 % user + 0.5 % nice.
        let b = bundle_with(&[("samples/0/proc/stat", STAT_0), ("samples/1/proc/stat", STAT_1)]);
        assert!(CpuUser.evaluate(&Input::new(&b)).unwrap().is_empty());
    }

    #[test]
    fn fires_with_share_and_busiest_process() {
        let b = bundle_with(&[
            ("samples/0/proc/stat", &stat(&[[1000, 0, 10, 500, 0, 0, 0, 0], [2000, 0, 10, 500, 0, 0, 0, 0]], 3, 0)),
            ("samples/1/proc/stat", &stat(&[[1096, 0, 11, 502, 0, 0, 1, 0], [2095, 1, 12, 502, 0, 0, 0, 0]], 5, 0)),
            ("samples/0/proc/7/stat", &pid_stat(7, "sh", 'R', 100, 0, 0)),
            ("samples/1/proc/7/stat", &pid_stat(7, "sh", 'R', 199, 0, 1)),
        ]);
        let f = CpuUser.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].facts["user_percent"], 96.0);
        assert_eq!(f[0].facts["busiest"][0]["pid"], 7);
        assert_eq!(f[0].facts["busiest"][0]["cpu_percent"], 99.0);
        assert!(f[0].summary.contains("rates from the window"), "{}", f[0].summary);
    }

    #[test]
    fn one_sample_is_not_evaluated() {
        let b = bundle_with(&[("samples/0/proc/stat", STAT_0)]);
        assert_eq!(CpuUser.evaluate(&Input::new(&b)), Err(crate::Skip::missing(samples::NEED)));
    }
}
