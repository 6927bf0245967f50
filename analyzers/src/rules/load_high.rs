//! `load.high`: load averages against the online CPUs, with the 1/5/15-minute trend.

use procfs_core::{FromRead, LoadAverage};

use crate::{Evidence, Finding, Input, Need, Rule, Severity, Skip};

pub struct LoadHigh;

/// Load per CPU at which the rule warns, and at which it is critical.
const WARN_PER_CPU: f64 = 1.0;
const CRITICAL_PER_CPU: f64 = 2.0;

impl Rule for LoadHigh {
    fn id(&self) -> &'static str {
        "load.high"
    }

    fn detects(&self) -> &'static str {
        "a 1-minute load average above the number of online CPUs"
    }

    fn thresholds(&self) -> &'static str {
        "warning at 1.0 tasks per online CPU, critical at 2.0. Linux load counts runnable tasks \
         and tasks in uninterruptible sleep (D), so a load above the CPU count means work is \
         waiting, for a CPU or for I/O (procs_running against procs_blocked tells which). The trend \
         compares the 1-minute average with the 5- and 15-minute ones: a rising load is a \
         current event, a falling one is recovering."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &[
            "proc/loadavg (or a sos report's uptime)",
            "manifest.json or sys/devices/system/cpu/online or proc/stat (CPU count)",
        ]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let (la, runnable, evidence) = load_average(input)?;
        let cpus = input.online_cpus()?;
        let per_cpu = la.one as f64 / cpus as f64;
        if per_cpu < WARN_PER_CPU {
            return Ok(Vec::new());
        }
        let severity = if per_cpu >= CRITICAL_PER_CPU { Severity::Critical } else { Severity::Warning };
        let trend = trend(la.one, la.five, la.fifteen);
        let f = Finding::new(
            self.id(),
            severity,
            "host",
            format!(
                "load {:.2} on {cpus} CPUs ({per_cpu:.1} per CPU), {trend} (5-min {:.2}, 15-min {:.2})",
                la.one, la.five, la.fifteen
            ),
        )
        .evidence(evidence)
        .fact("load1", la.one as f64)
        .fact("load5", la.five as f64)
        .fact("load15", la.fifteen as f64)
        .fact("cpus", cpus)
        .fact("load_per_cpu", (per_cpu * 100.0).round() / 100.0)
        .fact("trend", trend);
        let f = match runnable {
            Some(cur) => f.fact("runnable_now", cur),
            None => f,
        };
        Ok(vec![f.advice(
            "Work is waiting. Compare runnable tasks (procs_running, vmstat's r) with blocked \
             ones (procs_blocked, b): runnable tasks above the CPU count need more CPUs or fewer \
             busy threads; tasks in D state point at storage.",
        )])
    }
}

/// The load averages of `proc/loadavg`, else of a sos report's `uptime` (which has no
/// runnable count: `runnable` is then None), with the evidence.
fn load_average(input: &Input) -> Need<(LoadAverage, Option<u32>, Evidence)> {
    let raw = match input.raw("proc/loadavg") {
        Err(Skip::Missing(m)) => {
            let Some(u) = input.sos().and_then(|r| r.uptime.as_ref()) else { return Err(Skip::Missing(m)) };
            let [one, five, fifteen] = u.load.map(|l| l as f32);
            let la = LoadAverage { one, five, fifteen, cur: 0, max: 0, latest_pid: 0 };
            return Ok((la, None, Evidence::entry(&u.entry).line(u.line.clone())));
        }
        other => other?,
    };
    let la = LoadAverage::from_read(&raw[..]).map_err(|e| Skip::bad("proc/loadavg", e))?;
    let line = snap_bundle::text::lossy(&raw).trim().to_string();
    Ok((la.clone(), Some(la.cur), Evidence::entry("proc/loadavg").line(line)))
}

/// `rising`, `falling` or `steady`, comparing the 1-minute average with the longer ones.
fn trend(one: f32, five: f32, fifteen: f32) -> &'static str {
    if one > five * 1.2 && one > fifteen * 1.2 {
        "rising"
    } else if one < five * 0.8 && one < fifteen * 0.8 {
        "falling"
    } else {
        "steady"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    #[test]
    fn quiet_below_one_task_per_cpu() {
        let b =
            bundle_with(&[("proc/loadavg", "0.52 0.40 0.30 1/120 999\n"), ("sys/devices/system/cpu/online", "0-1\n")]);
        assert!(LoadHigh.evaluate(&Input::new(&b)).unwrap().is_empty());
    }

    #[test]
    fn fires_with_numbers_and_trend() {
        let b =
            bundle_with(&[("proc/loadavg", "4.50 2.00 1.00 5/120 999\n"), ("sys/devices/system/cpu/online", "0-1\n")]);
        let f = &LoadHigh.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.facts["cpus"], 2);
        assert_eq!(f.facts["trend"], "rising");
        assert_eq!(f.facts["load_per_cpu"], 2.25);
    }

    #[test]
    fn missing_and_broken_inputs() {
        let b = bundle_with(&[("sys/devices/system/cpu/online", "0-1\n")]);
        assert_eq!(LoadHigh.evaluate(&Input::new(&b)), Err(Skip::missing("proc/loadavg")));
        let b = bundle_with(&[("proc/loadavg", "garbage\n")]);
        assert!(matches!(LoadHigh.evaluate(&Input::new(&b)), Err(Skip::Bad { .. })));
    }
}
