//! `proc.zombies`: zombie processes grouped by the parent that does not reap them.

use std::collections::BTreeMap;

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
        &["proc/<pid>/stat"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let pids = input.pids();
        if pids.is_empty() {
            return Err(crate::Skip::missing("proc/<pid>/stat"));
        }
        let mut by_parent: BTreeMap<i32, Vec<(u32, String)>> = BTreeMap::new();
        for pid in pids {
            // A process whose stat cannot be parsed is skipped, not fatal for the rule.
            let Ok(stat) = input.process_stat(pid) else { continue };
            if stat.state == 'Z' {
                by_parent.entry(stat.ppid).or_default().push((pid, stat.comm));
            }
        }
        let mut findings = Vec::new();
        for (ppid, zombies) in by_parent {
            let parent = input.process_stat(ppid as u32).map(|s| s.comm).unwrap_or_else(|_| "?".into());
            let severity = if zombies.len() >= WARN_PER_PARENT { Severity::Warning } else { Severity::Info };
            let names: Vec<String> = zombies.iter().take(10).map(|(p, c)| format!("{p} ({c})")).collect();
            let mut evidence = Evidence::entry(&format!("proc/{ppid}/stat")).value("comm", parent.clone());
            for (p, c) in zombies.iter().take(10) {
                evidence = evidence.line(format!("proc/{p}/stat: state Z, ppid {ppid}, comm {c}"));
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
                .fact("zombie_pids", zombies.iter().map(|(p, _)| *p).collect::<Vec<_>>())
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
}
