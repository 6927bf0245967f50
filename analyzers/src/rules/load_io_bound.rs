//! `load.io_bound`: tasks in uninterruptible sleep (D) through the sampling window,
//! listed with their wait channel.

use std::collections::BTreeMap;

use crate::samples::{round1, Window};
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct IoBound;

/// Mean procs_blocked over the window from which the rule warns.
const WARN_MEAN_BLOCKED: f64 = 1.0;
/// Processes listed.
const TOP: usize = 10;

impl Rule for IoBound {
    fn id(&self) -> &'static str {
        "load.io_bound"
    }

    fn detects(&self) -> &'static str {
        "tasks blocked in uninterruptible sleep (vmstat's b, state D) through the sampling window"
    }

    fn thresholds(&self) -> &'static str {
        "warning when the mean of procs_blocked over the window's samples is at least 1 (a task \
         waiting for I/O at every instant), or when a process is in state D in every sample \
         (procs_blocked counts only tasks in I/O wait; D also covers NFS, locks and stuck \
         devices). A task in D state adds 1 to the load average without using a CPU, so a high \
         load with idle CPUs is storage, not compute. Rates from the window; the wait channel \
         (proc/<pid>/wchan) says where in the kernel each task waits. Needs at least 2 samples."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["samples/<n>/proc/stat", "samples/<n>/proc/<pid>/stat", "proc/<pid>/wchan"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let w = Window::read(input)?;
        let mean = w.mean_blocked().unwrap_or(0.0);
        // pid -> (comm, samples in which it was in D).
        let mut in_d: BTreeMap<u32, (String, usize)> = BTreeMap::new();
        for s in &w.samples {
            for (pid, st) in w.processes_where(input, s, |state| state == 'D') {
                let e = in_d.entry(pid).or_insert_with(|| (st.comm.clone(), 0));
                e.1 += 1;
            }
        }
        let n = w.samples.len();
        let stuck = in_d.values().any(|(_, k)| *k == n);
        if mean < WARN_MEAN_BLOCKED && !stuck {
            return Ok(Vec::new());
        }
        let mut listed: Vec<(u32, String, usize, Option<String>)> = in_d
            .into_iter()
            .map(|(pid, (comm, k))| {
                let wchan = input
                    .text(&format!("proc/{pid}/wchan"))
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty() && t != "0");
                (pid, comm, k, wchan)
            })
            .collect();
        listed.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        listed.truncate(TOP);
        let mut evidence = Evidence::entry("samples/<n>/proc/stat");
        for s in &w.samples {
            evidence = evidence.line(format!(
                "{}: procs_running {} procs_blocked {}",
                s.entry,
                s.procs_running.map_or("?".into(), |v| v.to_string()),
                s.procs_blocked.map_or("?".into(), |v| v.to_string())
            ));
        }
        let mut tasks = Evidence::entry("samples/<n>/proc/<pid>/stat");
        for (pid, comm, k, wchan) in &listed {
            tasks = tasks.line(format!(
                "pid {pid} ({comm}): state D in {k} of {n} samples, wchan {}",
                wchan.as_deref().unwrap_or("?")
            ));
        }
        let names: Vec<String> = listed
            .iter()
            .map(|(pid, comm, _, wchan)| match wchan {
                Some(wc) => format!("pid {pid} ({comm}) in {wc}"),
                None => format!("pid {pid} ({comm})"),
            })
            .collect();
        let r = w.overall();
        Ok(vec![Finding::new(
            self.id(),
            Severity::Warning,
            "host",
            format!(
                "{mean:.1} tasks blocked in I/O on average {}, iowait {:.1}%{}",
                w.span(&r),
                r.total.iowait,
                if names.is_empty() { String::new() } else { format!("; in D state: {}", names.join(", ")) }
            ),
        )
        .evidence(evidence)
        .evidence(tasks)
        .fact("mean_blocked", round1(mean))
        .fact("blocked_per_sample", w.samples.iter().filter_map(|s| s.procs_blocked).collect::<Vec<_>>())
        .fact("iowait_percent", round1(r.total.iowait))
        .fact(
            "d_state",
            listed
                .iter()
                .map(|(pid, comm, k, wchan)| {
                    serde_json::json!({"pid": pid, "comm": comm, "samples_in_d": k, "wchan": wchan})
                })
                .collect::<Vec<_>>(),
        )
        .fact("window_seconds", round1(r.seconds))
            .fact("since_boot", w.since_boot)
        .advice(
            "The load is tasks waiting on I/O, not CPU. Find the saturated device (iostat -x: \
             %util, await) and what the listed tasks wait on (wchan); then use faster storage \
             or more IOPS, or make the applications do less I/O. A task stuck in D for long on \
             a network filesystem points at the server or the network.",
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;
    use crate::samples::fixtures::{pid_stat, stat, STAT_0, STAT_1};

    #[test]
    fn quiet_on_real_samples_without_blocked_tasks() {
        let b = bundle_with(&[("samples/0/proc/stat", STAT_0), ("samples/1/proc/stat", STAT_1)]);
        assert!(IoBound.evaluate(&Input::new(&b)).unwrap().is_empty());
    }

    #[test]
    fn blocked_tasks_listed_with_wait_channel() {
        let s = |t: u64, b: u32| stat(&[[100 + t, 0, 10, 500, 100 + 3 * t, 0, 0, 0]], 1, b);
        let b = bundle_with(&[
            ("samples/0/proc/stat", &s(0, 2)),
            ("samples/1/proc/stat", &s(10, 1)),
            ("samples/0/proc/40/stat", &pid_stat(40, "dd", 'D', 5, 50, 0)),
            ("samples/1/proc/40/stat", &pid_stat(40, "dd", 'D', 5, 52, 0)),
            ("samples/0/proc/41/stat", &pid_stat(41, "jbd2/sda1-8", 'D', 0, 9, 0)),
            ("samples/1/proc/41/stat", &pid_stat(41, "jbd2/sda1-8", 'S', 0, 9, 0)),
            ("proc/40/wchan", "folio_wait_bit_common"),
        ]);
        let f = IoBound.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].facts["mean_blocked"], 1.5);
        assert_eq!(f[0].facts["d_state"][0]["pid"], 40);
        assert_eq!(f[0].facts["d_state"][0]["wchan"], "folio_wait_bit_common");
        assert_eq!(f[0].facts["d_state"][0]["samples_in_d"], 2);
        assert_eq!(f[0].facts["d_state"][1]["samples_in_d"], 1);
        assert!(f[0].summary.contains("pid 40 (dd) in folio_wait_bit_common"), "{}", f[0].summary);
    }

    #[test]
    fn a_task_in_d_in_every_sample_fires_without_procs_blocked() {
        let b = bundle_with(&[
            ("samples/0/proc/stat", STAT_0),
            ("samples/1/proc/stat", STAT_1),
            ("samples/0/proc/50/stat", &pid_stat(50, "ls", 'D', 0, 0, 0)),
            ("samples/1/proc/50/stat", &pid_stat(50, "ls", 'D', 0, 0, 0)),
        ]);
        let f = IoBound.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f[0].facts["mean_blocked"], 0.0);
        assert_eq!(f[0].facts["d_state"][0]["comm"], "ls");
    }
}
