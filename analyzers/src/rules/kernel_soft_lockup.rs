//! `kernel.soft_lockup`: CPUs the watchdog found stuck in the kernel.
//!
//! `watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:1234]` (4.x+; `NMI
//! watchdog: BUG: soft lockup ...` and `BUG: soft lockup - CPU#3 stuck for 67s!` before),
//! `Watchdog detected hard LOCKUP on cpu 5` and `NMI watchdog: Watchdog detected hard
//! LOCKUP on cpu 5`, and `rcu: INFO: rcu_sched self-detected stall on CPU` is left to
//! other rules.

use std::collections::BTreeSet;

use crate::klog::{self, Groups};
use crate::{Finding, Input, Need, Rule, Severity};

pub struct SoftLockup;

impl Rule for SoftLockup {
    fn id(&self) -> &'static str {
        "kernel.soft_lockup"
    }

    fn detects(&self) -> &'static str {
        "soft and hard lockups: a CPU stuck in kernel code without scheduling"
    }

    fn thresholds(&self) -> &'static str {
        concat!(
            "any report fires, one finding per CPU: warning for soft lockups (a CPU did not \
         schedule for 2 x watchdog_thresh, 20 s by default), critical for hard lockups (not \
         even interrupts ran for watchdog_thresh). Both come from a kernel bug, a driver \
         spinning, or on VMs a starved vCPU (check cpu.steal).",
            crate::aged_note!()
        )
    }

    fn inputs(&self) -> &'static [&'static str] {
        klog::SOURCES
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let lines = klog::read(input)?;
        let mut groups = Groups::default();
        let mut hard = BTreeSet::new();
        for line in lines.iter() {
            let Some((cpu, kind, task)) = parse(&line.message) else { continue };
            let subject = format!("CPU {cpu}");
            let g = groups.add(&subject, line);
            if let Some(t) = task {
                let tasks = g.details.entry("tasks".into()).or_default();
                if !tasks.split(", ").any(|x| x == t) {
                    if !tasks.is_empty() {
                        tasks.push_str(", ");
                    }
                    tasks.push_str(t);
                }
            }
            if kind == "hard" {
                hard.insert(subject);
            }
        }
        let mut out = Vec::new();
        for (subject, g) in groups.into_groups() {
            let is_hard = hard.contains(&subject);
            let kind = if is_hard { "hard lockup" } else { "soft lockup" };
            let tasks = g.details.get("tasks").cloned().unwrap_or_default();
            let mut summary = format!("{kind} on {subject} ({} reports)", g.count);
            if !tasks.is_empty() {
                summary.push_str(&format!(", running {tasks}"));
            }
            let severity = if is_hard { Severity::Critical } else { Severity::Warning };
            out.push(g.finding(self.id(), severity, &subject, summary).fact("kind", kind).fact("tasks", tasks).advice(
                "Read the call trace after the report: the function at the top spun without \
                         scheduling. Look for a known kernel or driver bug and upgrade; on a VM, \
                         check steal time and host overcommit, which make vCPUs look stuck.",
            ));
        }
        Ok(klog::aged_all(input, out))
    }
}

/// (cpu, `soft` or `hard`, the task in brackets).
fn parse(m: &str) -> Option<(u32, &'static str, Option<&str>)> {
    if let Some(rest) = m.split_once("BUG: soft lockup - CPU#").map(|(_, r)| r) {
        let cpu = rest.split_whitespace().next()?.parse().ok()?;
        let task = rest.rsplit_once('[').and_then(|(_, t)| t.strip_suffix(']'));
        return Some((cpu, "soft", task));
    }
    let rest = m.split_once("detected hard LOCKUP on cpu ")?.1;
    Some((rest.split_whitespace().next()?.parse().ok()?, "hard", None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    #[test]
    fn soft_and_hard() {
        let b = bundle_with(&[(
            "kernel/dmesg.txt",
            "[ 100.1] watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:1234]\n\
             [ 128.1] watchdog: BUG: soft lockup - CPU#3 stuck for 49s! [kworker/3:1:1234]\n\
             [ 200.0] NMI watchdog: Watchdog detected hard LOCKUP on cpu 1\n",
        )]);
        let f = SoftLockup.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].subject.as_str(), f[0].severity), ("CPU 1", Severity::Critical));
        assert_eq!(f[1].facts["count"], 2);
        assert_eq!(f[1].facts["tasks"], "kworker/3:1:1234");
    }

    #[test]
    fn quiet_on_watchdog_setup() {
        let b = bundle_with(&[(
            "kernel/dmesg.txt",
            "[ 0.1] NMI watchdog: Enabled. Permanently consumes one hw-PMU counter.\n",
        )]);
        assert!(SoftLockup.evaluate(&Input::new(&b)).unwrap().is_empty());
    }
}
