//! `cpu.imbalance`: one CPU saturated while the others are mostly idle.

use crate::samples::{self, round1, Window};
use crate::{Finding, Input, Need, Rule, Severity};

pub struct CpuImbalance;

/// A CPU at least this busy (percent, all but idle and iowait) is saturated...
const HOT_PERCENT: f64 = 90.0;
/// ...when the other CPUs are on average at most this busy.
const OTHERS_PERCENT: f64 = 30.0;
/// Share of the hot CPU's busy time in irq + softirq from which interrupts are blamed.
const IRQ_SHARE: f64 = 50.0;
/// Busiest processes named.
const TOP: usize = 5;

impl Rule for CpuImbalance {
    fn id(&self) -> &'static str {
        "cpu.imbalance"
    }

    fn detects(&self) -> &'static str {
        "one CPU saturated while the others are mostly idle (a single-threaded bottleneck or interrupt affinity)"
    }

    fn thresholds(&self) -> &'static str {
        "warning for each CPU at least 90 % busy (everything but idle and iowait) between the \
         first and last samples while the other CPUs average at most 30 % busy (rates from the \
         window; needs 2 CPUs and 2 samples). The host looks idle in total, yet whatever runs on \
         that CPU is at its limit: a single-threaded process (more CPUs will not help, more \
         threads or instances will), or interrupts and softirqs pinned to one CPU (when irq + \
         softirq is at least half of its busy time: spread them with irqbalance, RSS/RPS or \
         smp_affinity). The busiest processes are named with the CPU they last ran on."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["samples/<n>/proc/stat", "samples/<n>/proc/<pid>/stat", "manifest.json (sample clocks, collector pid)"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let w = Window::read(input)?;
        let r = w.overall();
        if r.per_cpu.len() < 2 {
            return Ok(Vec::new());
        }
        let mut findings = Vec::new();
        let mut procs = None;
        for (cpu, u) in &r.per_cpu {
            let busy = u.busy();
            if u.ticks == 0 || busy < HOT_PERCENT {
                continue;
            }
            let others: Vec<f64> = r.per_cpu.iter().filter(|(c, _)| c != cpu).map(|(_, o)| o.busy()).collect();
            let others_busy = others.iter().sum::<f64>() / others.len() as f64;
            if others_busy > OTHERS_PERCENT {
                continue;
            }
            let all = procs.get_or_insert_with(|| w.process_cpu(input));
            // Processes last seen on this CPU first, then the other busy ones.
            let mut busiest: Vec<_> = all
                .iter()
                .filter(|p| p.cpu_percent >= 1.0 && p.last_cpu == Some(*cpu as i32))
                .take(TOP)
                .cloned()
                .collect();
            if busiest.is_empty() {
                busiest = all.iter().filter(|p| p.cpu_percent >= 1.0).take(TOP).cloned().collect();
            }
            let irq = u.irq + u.softirq;
            let irq_share = if busy > 0.0 { irq * 100.0 / busy } else { 0.0 };
            let names: Vec<String> = busiest.iter().map(samples::describe_process).collect();
            let mut f = Finding::new(
                self.id(),
                Severity::Warning,
                format!("cpu {cpu}"),
                format!(
                    "CPU {cpu} {busy:.0}% busy while the other {} CPUs average {others_busy:.0}% {}, \
                     irq+softirq {irq:.0}% of CPU {cpu}{}",
                    others.len(),
                    w.span(&r),
                    if names.is_empty() { String::new() } else { format!("; busiest: {}", names.join(", ")) }
                ),
            );
            for e in samples::stat_evidence(input, &w) {
                f = f.evidence(e);
            }
            let advice = if irq_share >= IRQ_SHARE {
                format!(
                    "Interrupt work is concentrated on CPU {cpu} (irq + softirq {irq:.0}%). Check \
                     /proc/interrupts and /proc/softirqs, run irqbalance or set smp_affinity, and \
                     spread network receive work with RSS (more NIC queues) or RPS."
                )
            } else {
                format!(
                    "A single thread is the bottleneck on CPU {cpu}: more CPUs will not help. Make \
                     the busiest process use more threads or run more instances; check that it is \
                     not pinned (taskset -p PID, cgroup cpusets)."
                )
            };
            findings.push(
                f.fact("cpu", *cpu)
                    .fact("busy_percent", round1(busy))
                    .fact("others_busy_percent", round1(others_busy))
                    .fact("irq_percent", round1(u.irq))
                    .fact("softirq_percent", round1(u.softirq))
                    .fact("irq_share_of_busy_percent", round1(irq_share))
                    .fact("modes", samples::mode_facts(u))
                    .fact("window_seconds", round1(r.seconds))
                    .fact("since_boot", w.since_boot)
                    .fact("busiest", samples::process_facts(&busiest))
                    .advice(advice),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;
    use crate::samples::fixtures::{pid_stat, stat, STAT_0, STAT_1};

    #[test]
    fn quiet_on_real_samples_with_both_cpus_busy() {
        let b = bundle_with(&[("samples/0/proc/stat", STAT_0), ("samples/1/proc/stat", STAT_1)]);
        assert!(CpuImbalance.evaluate(&Input::new(&b)).unwrap().is_empty());
    }

    #[test]
    fn names_the_hot_cpu_and_the_process_on_it() {
        let b = bundle_with(&[
            ("samples/0/proc/stat", &stat(&[[1000, 0, 100, 500, 0, 0, 0, 0], [10, 0, 10, 5000, 0, 0, 0, 0]], 2, 0)),
            ("samples/1/proc/stat", &stat(&[[1097, 0, 102, 501, 0, 0, 0, 0], [15, 0, 12, 5093, 0, 0, 0, 0]], 2, 0)),
            ("samples/0/proc/9/stat", &pid_stat(9, "sh", 'R', 900, 0, 0)),
            ("samples/1/proc/9/stat", &pid_stat(9, "sh", 'R', 997, 0, 0)),
            ("samples/0/proc/10/stat", &pid_stat(10, "cron", 'S', 10, 0, 1)),
            ("samples/1/proc/10/stat", &pid_stat(10, "cron", 'S', 15, 0, 1)),
        ]);
        let f = CpuImbalance.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject, "cpu 0");
        assert_eq!(f[0].facts["busy_percent"], 99.0);
        assert_eq!(f[0].facts["others_busy_percent"], 7.0);
        assert_eq!(f[0].facts["busiest"].as_array().unwrap().len(), 1);
        assert_eq!(f[0].facts["busiest"][0]["pid"], 9);
        assert_eq!(f[0].facts["busiest"][0]["last_cpu"], 0);
        assert!(f[0].advice.contains("single thread"));
    }

    #[test]
    fn softirq_on_the_hot_cpu_blames_interrupts() {
        let b = bundle_with(&[
            ("samples/0/proc/stat", &stat(&[[0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0], [0; 8]], 1, 0)),
            (
                "samples/1/proc/stat",
                &stat(&[[5, 0, 15, 5, 0, 5, 70, 0], [5, 0, 5, 90, 0, 0, 0, 0], [0, 0, 0, 100, 0, 0, 0, 0]], 1, 0),
            ),
        ]);
        let f = CpuImbalance.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].facts["softirq_percent"], 70.0);
        assert!(f[0].advice.contains("Interrupt work"), "{}", f[0].advice);
    }

    #[test]
    fn one_cpu_is_never_imbalanced() {
        let b = bundle_with(&[
            ("samples/0/proc/stat", &stat(&[[0, 0, 0, 0, 0, 0, 0, 0]], 2, 0)),
            ("samples/1/proc/stat", &stat(&[[100, 0, 0, 0, 0, 0, 0, 0]], 2, 0)),
        ]);
        assert!(CpuImbalance.evaluate(&Input::new(&b)).unwrap().is_empty());
    }
}
