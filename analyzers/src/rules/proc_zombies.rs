//! `proc.zombies`: zombie processes grouped by the parent that does not reap them.

use std::collections::BTreeMap;

use crate::input::ProcessRow;
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct Zombies;

/// Zombies of one parent from which the rule warns (fewer are reported as info).
const WARN_PER_PARENT: usize = 5;

impl Rule for Zombies {
    fn id(&self) -> &'static str {
        "proc.zombies"
    }

    fn detects(&self) -> &'static str {
        "zombie processes (exited, not yet reaped), grouped by parent"
    }

    fn thresholds(&self) -> &'static str {
        "info for 1 to 4 zombies of one parent, warning from 5. A zombie holds no memory, only \
         a pid and a process-table slot, so a few are harmless; many from one parent mean that \
         parent does not wait() for its children, and if it keeps forking it will exhaust \
         pid_max (see proc.pid_pressure). Killing the zombies is impossible: the parent must \
         reap them, or exit so that init adopts and reaps them."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["proc/<pid>/stat (or a sos report's ps listings)"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let procs = input.processes()?;
        let mut by_parent: BTreeMap<u32, Vec<&ProcessRow>> = BTreeMap::new();
        for p in procs.rows.values().filter(|p| p.state == 'Z') {
            by_parent.entry(p.ppid).or_default().push(p);
        }
        let mut findings = Vec::new();
        for (ppid, zombies) in by_parent {
            let parent_row = procs.rows.get(&ppid);
            let parent = parent_row.map_or_else(|| "?".to_string(), |p| p.comm.clone());
            let severity = if zombies.len() >= WARN_PER_PARENT { Severity::Warning } else { Severity::Info };
            let names: Vec<String> = zombies.iter().take(10).map(|z| format!("{} ({})", z.pid, z.comm)).collect();
            // A snap bundle's evidence is each process's stat; a sos report's, the ps
            // listing the rows came from.
            let entry = match parent_row {
                Some(p) if procs.from_stat => p.entry.clone(),
                _ if procs.from_stat => format!("proc/{ppid}/stat"),
                _ => zombies[0].entry.clone(),
            };
            let mut evidence = Evidence::entry(&entry).value("comm", parent.clone());
            for z in zombies.iter().take(10) {
                let at = if procs.from_stat { z.entry.clone() } else { format!("pid {}", z.pid) };
                evidence = evidence.line(format!("{at}: state Z, ppid {ppid}, comm {}", z.comm));
            }
            findings.push(
                Finding::new(
                    self.id(),
                    severity,
                    format!("pid {ppid} ({parent})"),
                    format!(
                        "{} zombie children not reaped by pid {ppid} ({parent}): {}",
                        zombies.len(),
                        names.join(", ")
                    ),
                )
                .evidence(evidence)
                .fact("parent_pid", ppid)
                .fact("parent", parent.clone())
                .fact("zombies", zombies.len())
                .fact("zombie_pids", zombies.iter().map(|z| z.pid).collect::<Vec<_>>())
                .advice(format!(
                    "{parent} does not wait() for its exited children. Fix its child handling \
                     (SIGCHLD handler or waitpid), or restart it: when it exits, init reaps them."
                )),
            );
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    #[test]
    fn zombies_grouped_by_parent() {
        let b = bundle_with(&[
            ("proc/100/stat", "100 (server) S 1 100 100 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 100 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"),
            ("proc/101/stat", "101 (worker) Z 100 100 100 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 200 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"),
            ("proc/102/stat", "102 (worker) Z 100 100 100 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 200 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"),
        ]);
        let f = Zombies.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject, "pid 100 (server)");
        assert_eq!(f[0].facts["zombies"], 2);
        assert_eq!(f[0].severity, Severity::Info);
    }

    #[test]
    fn zombies_of_a_sos_report_come_from_its_ps_listing() {
        // procps-ng 4.0.2's `ps alxwww`, as sos saves it.
        let ps = "F   UID     PID    PPID PRI  NI    VSZ   RSS WCHAN  STAT TTY        TIME COMMAND
4     0       1       0  20   0  32180  7408 -      Ss   ?          0:19 /sbin/init
0     0    4242       1  20   0   5484  1024 -      S    ?          0:00 sleep 600
1     0    4243    4242  20   0      0     0 -      Z    ?          0:00 [true] <defunct>
1     0    4244    4242  20   0      0     0 -      Z    ?          0:00 [true] <defunct>
";
        let b = bundle_with(&[("sos_commands/process/ps_alxwww", ps)]);
        let f = Zombies.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject, "pid 4242 (sleep)");
        assert_eq!(f[0].facts["zombie_pids"], serde_json::json!([4243, 4244]));
        assert_eq!(f[0].evidence[0].entry, "sos_commands/process/ps_alxwww");
        assert_eq!(f[0].evidence[0].lines[0], "pid 4243: state Z, ppid 4242, comm true");
    }
}
