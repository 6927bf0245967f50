//! `fd.limit_near`: processes close to their open-files limit (RLIMIT_NOFILE), and the
//! system's file handles close to fs.file-max.
//!
//! A process's descriptors are counted in the open-file scan (its numbered fds) and set
//! against the soft "Max open files" of its `proc/<pid>/limits`, the one `open()`,
//! `socket()` and `accept()` hit with EMFILE. The system's handles are the first field of
//! `proc/sys/fs/file-nr` (allocated) against `proc/sys/fs/file-max`; past it every
//! process gets ENFILE and the kernel logs "VFS: file-max limit reached".

use std::collections::BTreeMap;

use serde_json::json;
use snap_bundle::names;

use crate::{Evidence, Finding, Input, Need, Rule, Severity, Skip};

pub struct FdLimitNear;

/// Share of a limit in use from which the rule warns / is critical.
const WARN_PERCENT: f64 = 80.0;
const CRITICAL_PERCENT: f64 = 95.0;

impl Rule for FdLimitNear {
    fn id(&self) -> &'static str {
        "fd.limit_near"
    }

    fn detects(&self) -> &'static str {
        "processes close to their open-files limit, and system file handles close to fs.file-max"
    }

    fn thresholds(&self) -> &'static str {
        "per process: open descriptors (the numbered fds of the open-file scan) against the soft \
         'Max open files' of proc/<pid>/limits, warning from 80 %, critical from 95 %; an \
         unlimited or zero limit is not judged. System: allocated file handles (first field of \
         proc/sys/fs/file-nr) against fs.file-max, warning from 80 %, critical from 95 %. The \
         soft limit is the one that fails open(), socket() and accept() with EMFILE ('Too many \
         open files'): a server at its limit stops accepting connections while looking idle. \
         A count creeping towards the limit is usually a descriptor leak (sockets never closed, \
         see net.close_wait) rather than a limit set too low; the finding breaks the \
         descriptors down by type so the reader can tell which. The collector itself is left \
         out."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &[
            "scan/open_files.jsonl",
            "proc/<pid>/limits",
            "proc/<pid>/status (optional: command name)",
            "proc/sys/fs/file-nr",
            "proc/sys/fs/file-max",
        ]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let per_process = self.per_process(input);
        let system = self.system(input);
        match (per_process, system) {
            (Err(Skip::Missing(mut a)), Err(Skip::Missing(b))) => {
                a.extend(b);
                Err(Skip::Missing(a))
            }
            (Err(e @ Skip::Bad { .. }), _) | (_, Err(e @ Skip::Bad { .. })) => Err(e),
            (a, b) => Ok(a.unwrap_or_default().into_iter().chain(b.unwrap_or_default()).collect()),
        }
    }
}

impl FdLimitNear {
    fn per_process(&self, input: &Input) -> Need<Vec<Finding>> {
        let per_pid = &input.descriptors()?.per_pid;
        let collector = input.manifest().map(|m| m.collector_pid).filter(|p| *p > 0);
        let mut findings = Vec::new();
        for (&pid, fds) in per_pid.iter().filter(|(pid, _)| Some(**pid) != collector) {
            let entry = format!("proc/{pid}/limits");
            // A process without a (readable) limits file is not judged; it does not fail the rule.
            let Ok(text) = input.text(&entry) else { continue };
            let Some((soft, hard, line)) = open_files_limit(&text) else { continue };
            let Some(soft) = soft.filter(|s| *s > 0) else { continue };
            let percent = fds.count as f64 * 100.0 / soft as f64;
            let Some(severity) = severity(percent) else { continue };
            let comm = status_name(input, pid).unwrap_or_else(|| fds.command.clone());
            let kinds: Vec<String> = by_count(&fds.by_kind).iter().map(|(k, n)| format!("{n} {k}")).collect();
            let hard_text = hard.map_or("unlimited".to_string(), |h| h.to_string());
            findings.push(
                Finding::new(
                    self.id(),
                    severity,
                    format!("pid {pid} ({comm})"),
                    format!(
                        "pid {pid} ({comm}) has {} open files of its limit of {soft} ({percent:.1} %; hard limit {hard_text}): {}",
                        fds.count,
                        kinds.join(", ")
                    ),
                )
                .evidence(
                    Evidence::entry(names::OPEN_FILES)
                        .value("pid", pid)
                        .value("fds", fds.count)
                        .value("highest_fd", fds.highest),
                )
                .evidence(Evidence::entry(&entry).line(line))
                .fact("pid", pid)
                .fact("command", comm.clone())
                .fact("fds", fds.count)
                .fact("highest_fd", fds.highest)
                .fact("soft_limit", soft)
                .fact("hard_limit", hard.map_or(json!("unlimited"), |h| json!(h)))
                .fact("used_percent", round1(percent))
                .fact("fds_by_type", json!(fds.by_kind))
                .advice(format!(
                    "At the limit, open(), socket() and accept() fail with EMFILE ('Too many open files') \
                     and {comm} stops taking connections. If the count keeps growing it is a leak: see \
                     which descriptors pile up (`ls -l /proc/{pid}/fd`, lsof -p {pid}; sockets in \
                     CLOSE_WAIT point at net.close_wait). If the load is legitimate, raise the soft \
                     limit: LimitNOFILE= in its systemd unit, `ulimit -n` in its start script, or \
                     /etc/security/limits.conf nofile (up to the hard limit, {hard_text}); `prlimit \
                     --pid {pid} --nofile=N:N` changes it live."
                )),
            );
        }
        Ok(findings)
    }

    fn system(&self, input: &Input) -> Need<Vec<Finding>> {
        const FILE_NR: &str = "proc/sys/fs/file-nr";
        const FILE_MAX: &str = "proc/sys/fs/file-max";
        let nr = input.text(FILE_NR)?;
        let fields: Vec<u64> = nr.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        let [allocated, unused, nr_max] = fields[..] else {
            return Err(Skip::bad(FILE_NR, format!("expected 3 numbers, got {:?}", nr.trim())));
        };
        let max = match input.text(FILE_MAX) {
            Ok(t) => t.trim().parse::<u64>().map_err(|e| Skip::bad(FILE_MAX, e))?,
            Err(Skip::Missing(_)) => nr_max,
            Err(e) => return Err(e),
        };
        if max == 0 {
            return Ok(Vec::new());
        }
        let percent = allocated as f64 * 100.0 / max as f64;
        let Some(severity) = severity(percent) else { return Ok(Vec::new()) };
        Ok(vec![Finding::new(
            self.id(),
            severity,
            "system",
            format!("{allocated} file handles allocated of fs.file-max {max} ({percent:.1} %)"),
        )
        .evidence(Evidence::entry(FILE_NR).line(nr.trim().to_string()))
        .evidence(Evidence::entry(FILE_MAX).value("file-max", max))
        .fact("allocated", allocated)
        .fact("unused", unused)
        .fact("file_max", max)
        .fact("used_percent", round1(percent))
        .advice(
            "At fs.file-max every process's open() fails with ENFILE and the kernel logs \
             'VFS: file-max limit reached'. Find the processes holding the most descriptors \
             (the open-file scan, `lsof | awk '{print $2}' | sort | uniq -c | sort -n`) and whether \
             one leaks; raise the limit with `sysctl fs.file-max=N` (persist it in /etc/sysctl.d) \
             if the load is legitimate.",
        )])
    }
}

fn severity(percent: f64) -> Option<Severity> {
    if percent >= CRITICAL_PERCENT {
        Some(Severity::Critical)
    } else if percent >= WARN_PERCENT {
        Some(Severity::Warning)
    } else {
        None
    }
}

/// The soft and hard "Max open files" of a limits file (None = unlimited), and its line.
/// procfs-core's parser needs all sixteen limits, which old kernels do not all have;
/// this reads the one line the rule needs.
fn open_files_limit(text: &str) -> Option<(Option<u64>, Option<u64>, String)> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut f = line["Max open files".len()..].split_whitespace();
    let value = |v: &str| if v == "unlimited" { Some(None) } else { v.parse::<u64>().ok().map(Some) };
    let soft = value(f.next()?)?;
    let hard = value(f.next()?)?;
    Some((soft, hard, line.trim_end().to_string()))
}

/// The `Name:` of proc/<pid>/status.
fn status_name(input: &Input, pid: u32) -> Option<String> {
    let text = input.text(&format!("proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Name:")).map(|n| n.trim().to_string())
}

fn by_count(m: &BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    let mut v: Vec<(&str, u64)> = m.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    /// /proc/<pid>/limits of a process started with `prlimit --nofile=100:4096` on this
    /// Debian 12 VM (kernel 6.x); the rest is the machine's defaults.
    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max file size             unlimited            unlimited            bytes     \n\
Max data size             unlimited            unlimited            bytes     \n\
Max stack size            8388608              unlimited            bytes     \n\
Max core file size        0                    unlimited            bytes     \n\
Max resident set          unlimited            unlimited            bytes     \n\
Max processes             96364                96364                processes \n\
Max open files            100                  4096                 files     \n\
Max locked memory         unlimited            unlimited            bytes     \n\
Max address space         unlimited            unlimited            bytes     \n\
Max file locks            unlimited            unlimited            locks     \n\
Max pending signals       96364                96364                signals   \n\
Max msgqueue size         819200               819200               bytes     \n\
Max nice priority         0                    0                    \n\
Max realtime priority     0                    0                    \n\
Max realtime timeout      unlimited            unlimited            us        \n";

    fn open_files(pid: u32, command: &str, n: usize) -> String {
        let mut s = String::new();
        for fd in ["cwd", "rtd", "txt", "mem"] {
            s.push_str(&format!(
                r#"{{"pid":{pid},"command":"{command}","fd":"{fd}","type":"REG","target":"/usr/bin/perl","name":"/usr/bin/perl","device":"254,1","inode":5,"nlink":1}}"#
            ));
            s.push('\n');
        }
        for fd in 0..n {
            let kind = if fd % 3 == 0 { "IPv4" } else { "CHR" };
            s.push_str(&format!(
                r#"{{"pid":{pid},"command":"{command}","fd":"{fd}","mode":"r","type":"{kind}","target":"/dev/null","name":"/dev/null","device":"1,3","inode":4,"nlink":1}}"#
            ));
            s.push('\n');
        }
        s
    }

    #[test]
    fn process_near_its_limit() {
        let scan = open_files(4242, "perl", 93) + &open_files(7, "sshd", 10);
        let b = bundle_with(&[
            ("scan/open_files.jsonl", &scan),
            ("proc/4242/limits", LIMITS),
            ("proc/4242/status", "Name:\tperl\nUmask:\t0022\nState:\tS (sleeping)\n"),
            ("proc/7/limits", LIMITS),
        ]);
        let found = FdLimitNear.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.subject, "pid 4242 (perl)");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.facts["fds"], 93);
        assert_eq!(f.facts["highest_fd"], 92);
        assert_eq!(f.facts["soft_limit"], 100);
        assert_eq!(f.facts["hard_limit"], 4096);
        assert_eq!(f.facts["fds_by_type"]["IPv4"], 31);
        assert!(f.summary.contains("93 open files of its limit of 100"), "{}", f.summary);

        let b = bundle_with(&[("scan/open_files.jsonl", &open_files(4242, "perl", 96)), ("proc/4242/limits", LIMITS)]);
        assert_eq!(FdLimitNear.evaluate(&Input::new(&b)).unwrap()[0].severity, Severity::Critical);
    }

    #[test]
    fn unlimited_or_unreadable_limits_are_not_judged() {
        let unlimited = LIMITS.replace(
            "Max open files            100                  4096",
            "Max open files            unlimited            unlimited",
        );
        let b = bundle_with(&[("scan/open_files.jsonl", &open_files(5, "x", 500)), ("proc/5/limits", &unlimited)]);
        assert_eq!(FdLimitNear.evaluate(&Input::new(&b)).unwrap(), vec![]);
        let b = bundle_with(&[("scan/open_files.jsonl", &open_files(5, "x", 500))]);
        assert_eq!(FdLimitNear.evaluate(&Input::new(&b)).unwrap(), vec![]);
    }

    #[test]
    fn system_file_handles() {
        // This VM's file-nr and file-max: quiet.
        let b = bundle_with(&[("proc/sys/fs/file-nr", "534\t0\t2466174\n"), ("proc/sys/fs/file-max", "2466174\n")]);
        assert_eq!(FdLimitNear.evaluate(&Input::new(&b)).unwrap(), vec![]);
        let b = bundle_with(&[("proc/sys/fs/file-nr", "85000\t0\t100000\n"), ("proc/sys/fs/file-max", "100000\n")]);
        let f = &FdLimitNear.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!(f.subject, "system");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.facts["allocated"], 85000);
        assert_eq!(f.facts["used_percent"], 85.0);
        // Without file-max, file-nr's own maximum is used.
        let b = bundle_with(&[("proc/sys/fs/file-nr", "99000\t0\t100000\n")]);
        assert_eq!(FdLimitNear.evaluate(&Input::new(&b)).unwrap()[0].severity, Severity::Critical);
    }

    #[test]
    fn missing_and_bad_inputs() {
        let b = bundle_with(&[("proc/meminfo", "MemTotal: 1 kB\n")]);
        assert_eq!(
            FdLimitNear.evaluate(&Input::new(&b)),
            Err(Skip::Missing(vec!["scan/open_files.jsonl".into(), "proc/sys/fs/file-nr".into()]))
        );
        let b = bundle_with(&[("proc/sys/fs/file-nr", "nonsense\n")]);
        assert!(matches!(FdLimitNear.evaluate(&Input::new(&b)), Err(Skip::Bad { .. })));
    }

    #[test]
    fn old_kernel_limits_without_every_line() {
        // 2.6.18 has no "Max realtime timeout"; the rule only needs its one line.
        let old = LIMITS.lines().filter(|l| !l.starts_with("Max realtime timeout")).collect::<Vec<_>>().join("\n");
        assert_eq!(open_files_limit(&old).unwrap().0, Some(100));
        assert_eq!(
            open_files_limit("Max open files            1024                 4096                 files\n").unwrap().1,
            Some(4096)
        );
    }
}
