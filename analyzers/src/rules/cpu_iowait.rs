//! `cpu.iowait`: CPUs idle with I/O outstanding for a large share of the sampling window.

use crate::samples::{self, round1, Window};
use crate::{Finding, Input, Need, Rule, Severity};

pub struct CpuIowait;

/// Share of all CPU time in iowait from which the rule warns, and is critical.
const WARN_PERCENT: f64 = 20.0;
const CRITICAL_PERCENT: f64 = 50.0;

impl Rule for CpuIowait {
    fn id(&self) -> &'static str {
        "cpu.iowait"
    }

    fn detects(&self) -> &'static str {
        "a high share of CPU time in iowait during the sampling window"
    }

    fn thresholds(&self) -> &'static str {
        "warning when iowait is at least 20 % of all CPU time between the first and last samples \
         (rates from the window), critical from 50 %. iowait is idle time while some task waits \
         for block I/O: the CPU could work but the work is stuck on storage. It is a symptom, \
         not a cost (an idle CPU with one reader shows high iowait), so the advice points at the \
         devices and the tasks in D state (load.io_bound). Needs at least 2 samples."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["samples/<n>/proc/stat", "manifest.json (sample clocks)"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let w = Window::read(input)?;
        let r = w.overall();
        let iowait = r.total.iowait;
        if r.total.ticks == 0 || iowait < WARN_PERCENT {
            return Ok(Vec::new());
        }
        let severity = if iowait >= CRITICAL_PERCENT { Severity::Critical } else { Severity::Warning };
        let worst = r.per_cpu.iter().max_by(|a, b| a.1.iowait.total_cmp(&b.1.iowait));
        let mut f = Finding::new(
            self.id(),
            severity,
            "host",
            format!(
                "iowait {iowait:.1}% of all CPU time on {} CPUs {}, {:.1} blocked tasks on average",
                r.per_cpu.len(),
                w.span(&r),
                w.mean_blocked().unwrap_or(0.0)
            ),
        );
        for e in samples::stat_evidence(input, &w) {
            f = f.evidence(e);
        }
        if let Some((cpu, u)) = worst {
            f = f.fact("worst_cpu", *cpu).fact("worst_cpu_iowait_percent", round1(u.iowait));
        }
        Ok(vec![f
            .fact("iowait_percent", round1(iowait))
            .fact("modes", samples::mode_facts(&r.total))
            .fact("mean_blocked", round1(w.mean_blocked().unwrap_or(0.0)))
            .fact("window_seconds", round1(r.seconds))
            .fact("since_boot", w.since_boot)
            .advice(
                "CPUs are waiting on storage. Find the busy device (iostat -x: %util, await) and \
                 the tasks in D state (load.io_bound); then use faster storage or more IOPS, \
                 spread the I/O, or make the application do less of it (caching, batching).",
            )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;
    use crate::samples::fixtures::{stat, STAT_0, STAT_1};

    #[test]
    fn quiet_on_real_samples_without_iowait() {
        let b = bundle_with(&[("samples/0/proc/stat", STAT_0), ("samples/1/proc/stat", STAT_1)]);
        assert!(CpuIowait.evaluate(&Input::new(&b)).unwrap().is_empty());
    }

    #[test]
    fn fires_with_share_and_worst_cpu() {
        let b = bundle_with(&[
            (
                "samples/0/proc/stat",
                &stat(&[[100, 0, 100, 1000, 100, 0, 0, 0], [100, 0, 100, 1000, 100, 0, 0, 0]], 1, 2),
            ),
            (
                "samples/1/proc/stat",
                &stat(&[[110, 0, 110, 1060, 120, 0, 0, 0], [110, 0, 110, 1010, 170, 0, 0, 0]], 1, 2),
            ),
        ]);
        let f = CpuIowait.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].facts["iowait_percent"], 45.0);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].facts["worst_cpu"], 1);
        assert_eq!(f[0].facts["mean_blocked"], 2.0);
    }

    #[test]
    fn a_sos_report_is_judged_since_boot_and_says_so() {
        // A sos report (its sos_commands/ marks it) has no samples: proc/stat since boot.
        let b = bundle_with(&[
            ("sos_commands/host/uptime", " 10:00:00 up 1 day,  2:00,  0 users,  load average: 0.00, 0.00, 0.00\n"),
            ("proc/stat", &stat(&[[100, 0, 100, 500, 300, 0, 0, 0], [100, 0, 100, 500, 300, 0, 0, 0]], 1, 3)),
        ]);
        let f = CpuIowait.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].facts["iowait_percent"], 30.0);
        assert_eq!(f[0].facts["since_boot"], true);
        assert!(
            f[0].summary.contains("since boot, 26.0 h ago (a sos report has no sampling window"),
            "{}",
            f[0].summary
        );
        assert_eq!(f[0].evidence.len(), 1);
        assert_eq!(f[0].evidence[0].entry, "proc/stat");
        // Without the mark, the same files are a partial snap bundle: not evaluated.
        let b = bundle_with(&[("proc/stat", &stat(&[[1, 0, 1, 5, 3, 0, 0, 0]], 1, 3))]);
        assert!(matches!(CpuIowait.evaluate(&Input::new(&b)), Err(crate::Skip::Missing(_))));
    }
}
