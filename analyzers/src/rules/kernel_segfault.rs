//! `kernel.segfault`: user programs that crashed on a fault the kernel logged, grouped
//! per program.
//!
//! `comm[pid]: segfault at ADDR ip IP sp SP error N in LIB[BASE+SIZE]` (since 2.6.2x, with
//! `likely on CPU n` since 5.x), and `traps: comm[pid] general protection fault ip:...`.

use std::collections::BTreeSet;

use crate::klog::{self, Groups};
use crate::{Finding, Input, Need, Rule, Severity};

pub struct Segfault;

/// Crashes of one program from which the finding is a warning (fewer are info).
const WARN_COUNT: usize = 3;

impl Rule for Segfault {
    fn id(&self) -> &'static str {
        "kernel.segfault"
    }

    fn detects(&self) -> &'static str {
        "user programs killed by segmentation or general protection faults, per program"
    }

    fn thresholds(&self) -> &'static str {
        concat!(
            "any crash fires, one finding per program name: info for 1 or 2 crashes, warning from 3 \
         (a program crashing repeatedly, often restarted in a loop by its supervisor). The \
         library named after `in` is where the faulting instruction was, usually the place to \
         look (or the library to upgrade).",
            crate::aged_note!()
        )
    }

    fn inputs(&self) -> &'static [&'static str] {
        klog::SOURCES
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let lines = klog::read(input)?;
        let mut groups = Groups::default();
        let mut pids: std::collections::BTreeMap<String, BTreeSet<u32>> = Default::default();
        let mut libs: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
        for line in lines.iter() {
            let Some(c) = parse(&line.message) else { continue };
            groups.add(c.comm, line);
            pids.entry(c.comm.to_string()).or_default().insert(c.pid);
            if let Some(lib) = c.lib {
                libs.entry(c.comm.to_string()).or_default().insert(lib.to_string());
            }
        }
        let mut out = Vec::new();
        for (comm, g) in groups.into_groups() {
            let severity = if g.count >= WARN_COUNT { Severity::Warning } else { Severity::Info };
            let p: Vec<u32> = pids.remove(&comm).unwrap_or_default().into_iter().collect();
            let l: Vec<String> = libs.remove(&comm).unwrap_or_default().into_iter().collect();
            let mut summary = format!("{comm} crashed {} time{}", g.count, if g.count == 1 { "" } else { "s" });
            if !l.is_empty() {
                summary.push_str(&format!(" in {}", l.join(", ")));
            }
            out.push(
                g.finding(self.id(), severity, &comm, summary)
                    .fact("command", comm.clone())
                    .fact("pids", p)
                    .fact("libraries", l)
                    .advice(
                        "The program dereferenced a bad address. Check whether it is restarted in a \
                         loop, enable core dumps (systemd-coredump, ulimit -c) to get a backtrace, and \
                         look for a known bug in the program or the library named, or bad memory \
                         (kernel.hardware_error) when unrelated programs crash.",
                    ),
            );
        }
        Ok(klog::aged_all(input, out))
    }
}

struct Crash<'a> {
    comm: &'a str,
    pid: u32,
    lib: Option<&'a str>,
}

/// `lxcfs[1925937]: segfault at 0 ip ... error 4 in liblxcfs.so[7f..+f000]` or
/// `traps: x[12] general protection fault ip:... in libc.so.6[...]`.
fn parse(m: &str) -> Option<Crash<'_>> {
    let (head, tail) = if let Some(i) = m.find("]: segfault at ") {
        (&m[..i], &m[i..])
    } else {
        let rest = m.strip_prefix("traps: ")?;
        let i = rest.find("] general protection")?;
        (&rest[..i], &rest[i..])
    };
    let (comm, pid) = head.rsplit_once('[')?;
    let pid = pid.parse().ok()?;
    let lib = tail.split_once(" in ").map(|(_, l)| l.split(['[', ' ']).next().unwrap_or(l)).filter(|l| !l.is_empty());
    Some(Crash { comm: comm.trim(), pid, lib })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    #[test]
    fn segfaults_per_program() {
        let b = bundle_with(&[(
            "var/log/kern.log",
            "Jun  4 06:25:10 host-name kernel: [47841183.622537] lxcfs[1925937]: segfault at 0 ip 00007f1ba005d4ea sp 00007f1b7cfc1b10 error 4 in liblxcfs.so [7f1ba0055000+f000]\n\
             Jun  4 06:26:10 host-name kernel: [47841243.1] traps: lxcfs[1925990] general protection fault ip:7f1b sp:7f1c error:0 in libc.so.6[7f1ba0000000+1000]\n",
        )]);
        let f = Segfault.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject, "lxcfs");
        assert_eq!(f[0].facts["count"], 2);
        assert_eq!(f[0].facts["pids"], serde_json::json!([1925937, 1925990]));
        assert_eq!(f[0].facts["libraries"], serde_json::json!(["libc.so.6", "liblxcfs.so"]));
        assert_eq!(f[0].severity, Severity::Info);
    }

    #[test]
    fn quiet_otherwise() {
        let b = bundle_with(&[("kernel/dmesg.txt", "[ 1.0] systemd[1]: Started foo.\n")]);
        assert!(Segfault.evaluate(&Input::new(&b)).unwrap().is_empty());
    }
}
