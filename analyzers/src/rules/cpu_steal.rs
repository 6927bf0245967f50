//! `cpu.steal`: the hypervisor gave this virtual machine's CPUs to someone else.

use crate::samples::{self, round1, Window};
use crate::{Finding, Input, Need, Rule, Severity};

pub struct CpuSteal;

/// Share of all CPU time stolen from which the rule warns, and is critical.
const WARN_PERCENT: f64 = 10.0;
const CRITICAL_PERCENT: f64 = 30.0;

impl Rule for CpuSteal {
    fn id(&self) -> &'static str {
        "cpu.steal"
    }

    fn detects(&self) -> &'static str {
        "a high share of CPU time stolen by the hypervisor during the sampling window"
    }

    fn thresholds(&self) -> &'static str {
        "warning when steal is at least 10 % of all CPU time between the first and last samples \
         (rates from the window), critical from 30 %. Steal is time a virtual CPU was ready to \
         run but the hypervisor ran something else: an oversubscribed or failing host, or a \
         burstable instance out of CPU credits. Nothing inside the guest fixes it. Needs at \
         least 2 samples."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["samples/<n>/proc/stat", "manifest.json (sample clocks)"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let w = Window::read(input)?;
        let r = w.overall();
        let steal = r.total.steal;
        if r.total.ticks == 0 || steal < WARN_PERCENT {
            return Ok(Vec::new());
        }
        let severity = if steal >= CRITICAL_PERCENT { Severity::Critical } else { Severity::Warning };
        let mut f = Finding::new(
            self.id(),
            severity,
            "host",
            format!(
                "steal {steal:.1}% of all CPU time on {} CPUs {}: the hypervisor ran something else",
                r.per_cpu.len(),
                w.span(&r)
            ),
        );
        for e in samples::stat_evidence(input, &w) {
            f = f.evidence(e);
        }
        Ok(vec![f
            .fact("steal_percent", round1(steal))
            .fact("modes", samples::mode_facts(&r.total))
            .fact("window_seconds", round1(r.seconds))
            .fact("since_boot", w.since_boot)
            .advice(
                "The CPU time is being taken by the hypervisor. Ask the platform: move the VM to \
                 another host, use dedicated or larger instances, check CPU credits of a \
                 burstable instance, or have the host checked if it is failing.",
            )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;
    use crate::samples::fixtures::{stat, STAT_0, STAT_1};

    #[test]
    fn quiet_on_real_samples_with_one_percent_steal() {
        let b = bundle_with(&[("samples/0/proc/stat", STAT_0), ("samples/1/proc/stat", STAT_1)]);
        assert!(CpuSteal.evaluate(&Input::new(&b)).unwrap().is_empty());
    }

    #[test]
    fn critical_from_thirty_percent() {
        let b = bundle_with(&[
            ("samples/0/proc/stat", &stat(&[[100, 0, 0, 100, 0, 0, 0, 100]], 1, 0)),
            ("samples/1/proc/stat", &stat(&[[130, 0, 10, 120, 0, 0, 0, 140]], 1, 0)),
        ]);
        let f = CpuSteal.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f[0].facts["steal_percent"], 40.0);
        assert_eq!(f[0].severity, Severity::Critical);
    }
}
