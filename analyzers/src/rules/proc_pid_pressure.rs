//! `proc.pid_pressure`: tasks (processes and threads) against kernel.pid_max and
//! kernel.threads-max.
//!
//! Every task, thread or zombie, holds a pid, so fork() and pthread_create() start
//! failing with EAGAIN ("Resource temporarily unavailable") when the tasks reach either
//! limit. The task count is the kernel's own: the total of `proc/loadavg` (its
//! nr_threads), else the `proc/<pid>/task/<tid>/stat` entries of the bundle.

use crate::{Evidence, Finding, Input, Need, Rule, Severity, Skip};

pub struct PidPressure;

/// Share of a limit taken by tasks from which the rule warns / is critical.
const WARN_PERCENT: f64 = 70.0;
const CRITICAL_PERCENT: f64 = 90.0;

const PID_MAX: &str = "proc/sys/kernel/pid_max";
const THREADS_MAX: &str = "proc/sys/kernel/threads-max";

impl Rule for PidPressure {
    fn id(&self) -> &'static str {
        "proc.pid_pressure"
    }

    fn detects(&self) -> &'static str {
        "tasks (processes and threads) close to kernel.pid_max or kernel.threads-max"
    }

    fn thresholds(&self) -> &'static str {
        "warning when tasks reach 70 % of kernel.pid_max or of kernel.threads-max, critical from \
         90 %. Tasks are the total of proc/loadavg (the kernel's count of every process and \
         thread, kernel threads and zombies included), or the proc/<pid>/task/<tid>/stat \
         entries when loadavg is absent. Each task holds a pid, so at either limit fork() and \
         pthread_create() fail with EAGAIN and new logins, cron jobs and worker threads fail \
         with 'Resource temporarily unavailable'; the margin is kept wide because task counts \
         move fast (a fork bomb, a thread pool that grows without bound, zombies that nobody \
         reaps). The finding names the processes with the most threads and counts zombies, \
         the usual culprits."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &[
            PID_MAX,
            THREADS_MAX,
            "proc/loadavg",
            "proc/<pid>/task/<tid>/stat (when loadavg is absent)",
            "a sos report's ps listings (threads per process, when both are absent)",
            "proc/<pid>/stat (optional: threads and zombies per process)",
        ]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let limit = |entry: &str| -> Need<Option<u64>> {
            match input.text(entry) {
                Ok(t) => t.trim().parse::<u64>().map(Some).map_err(|e| Skip::bad(entry, e)),
                Err(Skip::Missing(_)) => Ok(None),
                Err(e) => Err(e),
            }
        };
        let pid_max = limit(PID_MAX)?;
        let threads_max = limit(THREADS_MAX)?;
        if pid_max.is_none() && threads_max.is_none() {
            return Err(Skip::Missing(vec![PID_MAX.into(), THREADS_MAX.into()]));
        }
        let (tasks, source) = task_count(input)?;

        let mut findings = Vec::new();
        for (name, entry, max) in [("pid_max", PID_MAX, pid_max), ("threads-max", THREADS_MAX, threads_max)] {
            let Some(max) = max.filter(|m| *m > 0) else { continue };
            let percent = tasks as f64 * 100.0 / max as f64;
            let severity = if percent >= CRITICAL_PERCENT {
                Severity::Critical
            } else if percent >= WARN_PERCENT {
                Severity::Warning
            } else {
                continue;
            };
            let (top, zombies) = biggest(input);
            let top_text: Vec<String> = top.iter().map(|(p, c, n)| format!("pid {p} ({c}) {n} threads")).collect();
            let mut f = Finding::new(
                self.id(),
                severity,
                name,
                format!(
                    "{tasks} tasks of kernel.{name} {max} ({percent:.1} %){}",
                    if top_text.is_empty() {
                        String::new()
                    } else {
                        format!("; most threads: {}", top_text.join(", "))
                    }
                ),
            )
            .evidence(source.clone())
            .evidence(Evidence::entry(entry).value(name, max))
            .fact("tasks", tasks)
            .fact("limit", max)
            .fact("used_percent", (percent * 10.0).round() / 10.0)
            .fact("zombies", zombies);
            if !top.is_empty() {
                f = f.fact(
                    "top_threads",
                    top.iter()
                        .map(|(p, c, n)| serde_json::json!({"pid": p, "command": c, "threads": n}))
                        .collect::<Vec<_>>(),
                );
            }
            findings.push(f.advice(format!(
                "At kernel.{name} fork() and thread creation fail with EAGAIN. Find what multiplies \
                 tasks: a process whose thread count keeps growing (a pool without bound), a fork \
                 loop, or zombies nobody reaps (see proc.zombies); fix or restart it. If the load \
                 is legitimate, raise the limit (`sysctl kernel.{name}=N`, persisted in \
                 /etc/sysctl.d; pid_max can go up to 4194304 on 64-bit)."
            )));
        }
        Ok(findings)
    }
}

/// Tasks from loadavg's `running/total` field, else the bundle's task stat entries.
fn task_count(input: &Input) -> Need<(u64, Evidence)> {
    if let Ok(text) = input.text("proc/loadavg") {
        if let Some(total) = text.split_whitespace().nth(3).and_then(|f| f.split_once('/')?.1.parse::<u64>().ok()) {
            return Ok((total, Evidence::entry("proc/loadavg").line(text.trim().to_string())));
        }
    }
    let tasks = input
        .entries_under("proc/")
        .iter()
        .filter(|e| {
            let Some(rest) = e.strip_prefix("proc/") else { return false };
            let mut p = rest.split('/');
            matches!(
                (p.next(), p.next(), p.next(), p.next(), p.next()),
                (Some(_), Some("task"), Some(_), Some("stat"), None)
            )
        })
        .count() as u64;
    if tasks == 0 {
        // A sos report: the threads its ps listings give, process by process (one for a
        // process seen only in a listing without thread counts).
        if let Ok(procs) = input.processes() {
            let total: u64 = procs.rows.values().map(|p| p.threads.max(1)).sum();
            if !procs.from_stat && procs.rows.values().any(|p| p.threads > 0) {
                let entry = procs.rows.values().next().map_or("", |p| p.entry.as_str());
                return Ok((total, Evidence::entry(entry).value("threads of all processes", total)));
            }
        }
        return Err(Skip::Missing(vec!["proc/loadavg".into(), "proc/<pid>/task/<tid>/stat".into()]));
    }
    Ok((tasks, Evidence::entry("proc/<pid>/task/<tid>/stat").value("entries", tasks)))
}

/// The five processes with the most threads, and the number of zombies.
fn biggest(input: &Input) -> (Vec<(u32, String, i64)>, u64) {
    let mut procs = Vec::new();
    let mut zombies = 0;
    for p in input.processes().map(|p| p.rows.values()).into_iter().flatten() {
        if p.state == 'Z' {
            zombies += 1;
        }
        procs.push((p.pid, p.comm.clone(), p.threads as i64));
    }
    procs.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    procs.truncate(5);
    (procs, zombies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    // This VM: pid_max 32768, threads-max 192729, 149 tasks.
    const LOADAVG: &str = "8.57 5.42 3.80 8/149 25374\n";

    #[test]
    fn quiet_on_this_vm() {
        let b = bundle_with(&[("proc/loadavg", LOADAVG), (PID_MAX, "32768\n"), (THREADS_MAX, "192729\n")]);
        assert_eq!(PidPressure.evaluate(&Input::new(&b)).unwrap(), vec![]);
    }

    #[test]
    fn tasks_near_pid_max() {
        let java = "4242 (java) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 24000 0 100 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let zombie = "4300 (sh) Z 4242 4242 4242 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 200 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let b = bundle_with(&[
            ("proc/loadavg", "3.00 2.00 1.00 2/30000 31000\n"),
            (PID_MAX, "32768\n"),
            (THREADS_MAX, "192729\n"),
            ("proc/4242/stat", java),
            ("proc/4300/stat", zombie),
        ]);
        let found = PidPressure.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.subject, "pid_max");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.facts["tasks"], 30000);
        assert_eq!(f.facts["limit"], 32768);
        assert_eq!(f.facts["used_percent"], 91.6);
        assert_eq!(f.facts["zombies"], 1);
        assert_eq!(f.facts["top_threads"][0]["threads"], 24000);
        assert!(f.summary.contains("pid 4242 (java) 24000 threads"), "{}", f.summary);
    }

    #[test]
    fn threads_max_and_task_entries_without_loadavg() {
        let stat = "1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 100 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let b = bundle_with(&[
            (THREADS_MAX, "4\n"),
            ("proc/1/task/1/stat", stat),
            ("proc/1/task/2/stat", stat),
            ("proc/1/task/3/stat", stat),
        ]);
        let f = &PidPressure.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!(f.subject, "threads-max");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.facts["tasks"], 3);
    }

    #[test]
    fn missing_and_bad_inputs() {
        let b = bundle_with(&[("proc/loadavg", LOADAVG)]);
        assert!(matches!(PidPressure.evaluate(&Input::new(&b)), Err(Skip::Missing(_))));
        let b = bundle_with(&[(PID_MAX, "32768\n")]);
        assert!(matches!(PidPressure.evaluate(&Input::new(&b)), Err(Skip::Missing(_))));
        let b = bundle_with(&[(PID_MAX, "lots\n"), ("proc/loadavg", LOADAVG)]);
        assert!(matches!(PidPressure.evaluate(&Input::new(&b)), Err(Skip::Bad { .. })));
    }
}
