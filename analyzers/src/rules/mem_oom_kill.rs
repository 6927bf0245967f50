//! `mem.oom_kill`: every OOM-killer event in the kernel log: its time, the victim's
//! pid, command and memory, the task that triggered it, and whether a cgroup limit
//! (rather than the host running out of memory) caused it.
//!
//! One report spans several lines, whose wording changed over the years:
//!
//! - `X invoked oom-killer: gfp_mask=..., order=N, oom_score_adj=N` (all kernels) opens it;
//! - `Task in /a killed as a result of limit of /b` and `memory: usage NkB, limit NkB`
//!   (cgroup OOMs before 4.19);
//! - `oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/b,task_memcg=/a,task=x,pid=N,uid=N` (4.19+);
//! - `Out of memory: Kill process N (x) score S or sacrifice child` (up to 5.0, also
//!   `Memory cgroup out of memory: Kill process ...`), the victim chosen;
//! - `Killed process N (x) total-vm:NkB, anon-rss:NkB, file-rss:NkB[, shmem-rss:NkB]` (3.x/4.x),
//!   `Killed process N, UID U, (x) total-vm:...` (2.6.32), and since 5.x the same after
//!   `Out of memory: ` or `Memory cgroup out of memory: `: the kill itself.
//!
//! Lines are gathered into events in log order; events are grouped per victim.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::klog::{self, between, kb, LogLine};
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct OomKill;

impl Rule for OomKill {
    fn id(&self) -> &'static str {
        "mem.oom_kill"
    }

    fn detects(&self) -> &'static str {
        "processes killed by the kernel's OOM killer, with trigger, victim memory and cause (cgroup limit or host memory)"
    }

    fn thresholds(&self) -> &'static str {
        concat!(
            "any OOM kill in the kernel log is critical: a process was killed without warning, and \
         the log is the only trace of it. One finding per victim (pid and command), counting \
         repeated kills of it. The cause decides the advice: CONSTRAINT_MEMCG (or 'Memory cgroup \
         out of memory', or 'killed as a result of limit of') means a cgroup's memory.max / \
         limit_in_bytes was reached while the host may have had memory to spare, so the limit \
         or the workload's footprint is the thing to change; CONSTRAINT_NONE means the whole \
         host ran out of RAM and swap; CONSTRAINT_CPUSET / CONSTRAINT_MEMORY_POLICY a NUMA \
         placement restriction.",
            crate::aged_note!()
        )
    }

    fn inputs(&self) -> &'static [&'static str] {
        klog::SOURCES
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let lines = klog::read(input)?;
        Ok(klog::aged_all(input, findings(self.id(), &events(&lines))))
    }
}

/// One OOM kill as the log tells it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub pid: Option<u32>,
    pub command: Option<String>,
    /// A `Killed process` line confirmed the kill (else only the choice was logged).
    pub killed: bool,
    pub trigger: Option<String>,
    pub gfp_mask: Option<String>,
    pub order: Option<i64>,
    pub constraint: Option<String>,
    pub oom_memcg: Option<String>,
    pub task_memcg: Option<String>,
    /// The kernel said the cgroup was out of memory.
    pub memcg_message: bool,
    pub memcg_usage_kb: Option<u64>,
    pub memcg_limit_kb: Option<u64>,
    pub score: Option<i64>,
    pub total_vm_kb: Option<u64>,
    pub anon_rss_kb: Option<u64>,
    pub file_rss_kb: Option<u64>,
    pub shmem_rss_kb: Option<u64>,
    pub time: Option<String>,
    pub uptime_s: Option<f64>,
    pub lines: Vec<LogLine>,
}

impl Event {
    /// Whether a cgroup limit, not the host's memory, caused it.
    pub fn cgroup_limit(&self) -> bool {
        self.memcg_message || self.oom_memcg.is_some() || self.constraint.as_deref() == Some("CONSTRAINT_MEMCG")
    }

    fn cause(&self) -> String {
        if self.cgroup_limit() {
            match &self.oom_memcg {
                Some(cg) => format!("cgroup memory limit of {cg}"),
                None => "a cgroup memory limit".to_string(),
            }
        } else {
            match self.constraint.as_deref() {
                Some("CONSTRAINT_CPUSET") => "memory of its cpuset's NUMA nodes exhausted".to_string(),
                Some("CONSTRAINT_MEMORY_POLICY") => "memory of its mempolicy's NUMA nodes exhausted".to_string(),
                _ => "host out of memory".to_string(),
            }
        }
    }

    fn note(&mut self, line: &LogLine) {
        if self.time.is_none() {
            self.time = line.when();
            self.uptime_s = line.uptime_s;
        }
        self.lines.push(line.clone());
    }
}

/// Gathers OOM events from kernel log lines, in log order.
pub fn events(lines: &[LogLine]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut cur = Event::default();
    let flush = |cur: &mut Event, out: &mut Vec<Event>| {
        let e = std::mem::take(cur);
        if e.pid.is_some() {
            out.push(e);
        }
    };
    for line in lines {
        let m = line.message.trim();
        if let Some((who, rest)) = m.split_once(" invoked oom-killer:") {
            flush(&mut cur, &mut out);
            cur.trigger = Some(who.trim().to_string());
            for kv in rest.split(',') {
                match kv.trim().split_once('=') {
                    Some(("gfp_mask", v)) => cur.gfp_mask = Some(v.to_string()),
                    Some(("order", v)) => cur.order = v.parse().ok(),
                    _ => {}
                }
            }
            cur.note(line);
        } else if let Some(rest) = m.strip_prefix("oom-kill:") {
            if cur.pid.is_some() {
                flush(&mut cur, &mut out);
            }
            let kv: BTreeMap<&str, &str> = rest.split(',').filter_map(|p| p.split_once('=')).collect();
            cur.constraint = kv.get("constraint").map(|s| s.to_string());
            cur.oom_memcg = kv.get("oom_memcg").map(|s| s.to_string());
            cur.task_memcg = kv.get("task_memcg").map(|s| s.to_string());
            if let Some(pid) = kv.get("pid").and_then(|p| p.parse().ok()) {
                cur.pid = Some(pid);
                cur.command = kv.get("task").map(|s| s.to_string());
            }
            cur.note(line);
        } else if let Some(rest) = m.strip_prefix("Task in ") {
            // `Task in /a killed as a result of limit of /b` (cgroup v1, before 4.19).
            if let Some((task_cg, limit_cg)) = rest.split_once(" killed as a result of limit of ") {
                cur.task_memcg = Some(task_cg.to_string());
                cur.oom_memcg = Some(limit_cg.trim().to_string());
                cur.note(line);
            }
        } else if m.starts_with("memory: usage ") && cur.trigger.is_some() {
            cur.memcg_usage_kb = kb(m, "memory: usage ");
            cur.memcg_limit_kb = kb(m, "limit ");
            cur.note(line);
        } else if let Some((pid, comm, rest)) = victim(m, "Killed process ") {
            if cur.pid.is_some_and(|p| p != pid) {
                flush(&mut cur, &mut out);
            }
            cur.pid = Some(pid);
            cur.command = Some(comm);
            cur.killed = true;
            cur.memcg_message |= m.starts_with("Memory cgroup out of memory");
            cur.total_vm_kb = kb(rest, "total-vm:");
            cur.anon_rss_kb = kb(rest, "anon-rss:");
            cur.file_rss_kb = kb(rest, "file-rss:");
            cur.shmem_rss_kb = kb(rest, "shmem-rss:");
            cur.note(line);
            flush(&mut cur, &mut out);
        } else if let Some((pid, comm, rest)) = victim(m, "Kill process ").or_else(|| victim(m, "kill process ")) {
            // The choice (`... score S or sacrifice child`), before the kill.
            if cur.pid.is_some_and(|p| p != pid) {
                flush(&mut cur, &mut out);
            }
            cur.pid = Some(pid);
            cur.command = Some(comm);
            cur.memcg_message |= m.starts_with("Memory cgroup out of memory");
            cur.score = between(rest, "score ", " ").and_then(|s| s.trim().parse().ok());
            cur.note(line);
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// `KEY 123 (comm) rest` or `KEY 123, UID 48, (comm) rest` to (pid, comm, rest).
fn victim<'a>(m: &'a str, key: &str) -> Option<(u32, String, &'a str)> {
    let at = m.find(key)?;
    let rest = &m[at + key.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let pid = rest[..digits].parse().ok()?;
    let rest = &rest[digits..];
    let open = rest.find('(')?;
    // Only `, UID n, ` may sit between the pid and the command.
    if !rest[..open].trim_matches(|c: char| c == ',' || c == ' ').is_empty() && !rest[..open].contains("UID") {
        return None;
    }
    let body = &rest[open + 1..];
    // The command ends at the last `)` before the memory figures (a comm may hold `)`).
    let scope = body.find(" total-vm:").or_else(|| body.find(" score ")).map_or(body, |i| &body[..i]);
    let close = scope.rfind(')')?;
    Some((pid, body[..close].to_string(), &body[close + 1..]))
}

fn mib(kb: u64) -> String {
    if kb >= 1024 * 1024 {
        format!("{:.1} GiB", kb as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} MiB", kb as f64 / 1024.0)
    }
}

fn findings(rule: &str, events: &[Event]) -> Vec<Finding> {
    let mut by_victim: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in events {
        let subject = format!("pid {} ({})", e.pid.unwrap_or(0), e.command.as_deref().unwrap_or("?"));
        by_victim.entry(subject).or_default().push(e);
    }
    let mut out = Vec::new();
    for (subject, evs) in by_victim {
        let last = evs[evs.len() - 1];
        let first = evs[0];
        let mut memory = Vec::new();
        if let Some(v) = last.anon_rss_kb {
            memory.push(format!("anon-rss {}", mib(v)));
        }
        if let Some(v) = last.file_rss_kb {
            memory.push(format!("file-rss {}", mib(v)));
        }
        if let Some(v) = last.total_vm_kb {
            memory.push(format!("total-vm {}", mib(v)));
        }
        let verb = if evs.iter().any(|e| e.killed) { "killed" } else { "selected (no kill line logged)" };
        let mut summary = format!("OOM killer {verb} {subject}");
        if evs.len() > 1 {
            summary.push_str(&format!(" {} times", evs.len()));
        }
        if !memory.is_empty() {
            summary.push_str(&format!(" ({})", memory.join(", ")));
        }
        if let Some(t) = &last.trigger {
            summary.push_str(&format!(", triggered by {t}"));
        }
        summary.push_str(&format!(": {}", last.cause()));
        match (&first.time, &last.time) {
            (Some(a), Some(b)) if a != b => summary.push_str(&format!(", first at {a}, last at {b}")),
            (Some(a), _) => summary.push_str(&format!(", at {a}")),
            _ => {}
        }
        let mut by_entry: BTreeMap<&str, Evidence> = BTreeMap::new();
        for l in evs.iter().flat_map(|e| &e.lines).take(klog::MAX_EVIDENCE * 2) {
            let e = by_entry.remove(l.entry.as_str()).unwrap_or_else(|| Evidence::entry(&l.entry));
            by_entry.insert(&l.entry, e.line(format!("line {}: {}", l.line_no, l.message.trim())));
        }
        let cgroup = evs.iter().any(|e| e.cgroup_limit());
        let advice = if cgroup {
            format!(
                "A cgroup memory limit killed it{}, not host memory: compare the cgroup's limit \
                 (memory.max or memory.limit_in_bytes; a container's memory limit) with the \
                 workload's real footprint (anon-rss above), then raise the limit or reduce the \
                 process's memory (heap sizes, caches, worker counts).",
                last.oom_memcg.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
            )
        } else {
            "The host ran out of RAM and swap. Find what grew (the task dump before the kill lists \
             every process's rss), cap it (a cgroup memory limit, heap sizes, fewer workers), or \
             add memory or swap. Protect critical daemons with a lower oom_score_adj."
                .to_string()
        };
        let event_facts: Vec<Value> = evs
            .iter()
            .map(|e| {
                json!({
                    "time": e.time, "uptime_s": e.uptime_s, "killed": e.killed, "triggered_by": e.trigger,
                    "gfp_mask": e.gfp_mask, "order": e.order, "constraint": e.constraint,
                    "cgroup_limit": e.cgroup_limit(), "oom_memcg": e.oom_memcg, "task_memcg": e.task_memcg,
                    "memcg_usage_kb": e.memcg_usage_kb, "memcg_limit_kb": e.memcg_limit_kb, "score": e.score,
                    "total_vm_kb": e.total_vm_kb, "anon_rss_kb": e.anon_rss_kb, "file_rss_kb": e.file_rss_kb,
                    "shmem_rss_kb": e.shmem_rss_kb,
                })
            })
            .collect();
        let mut f = Finding::new(rule, Severity::Critical, subject, summary)
            .fact("pid", last.pid.unwrap_or(0))
            .fact("command", last.command.clone().unwrap_or_default())
            .fact("kills", evs.len())
            .fact("last_uptime_s", evs.iter().filter_map(|e| e.uptime_s).reduce(f64::max))
            .fact("killed", evs.iter().any(|e| e.killed))
            .fact("cgroup_limit", cgroup)
            .fact("cause", last.cause())
            .fact("events", event_facts)
            .advice(advice);
        let opt = |f: Finding, k: &str, v: Option<Value>| match v {
            Some(v) => f.fact(k, v),
            None => f,
        };
        f = opt(f, "triggered_by", last.trigger.clone().map(Value::from));
        f = opt(f, "constraint", last.constraint.clone().map(Value::from));
        f = opt(f, "oom_memcg", last.oom_memcg.clone().map(Value::from));
        f = opt(f, "task_memcg", last.task_memcg.clone().map(Value::from));
        f = opt(f, "total_vm_kb", last.total_vm_kb.map(Value::from));
        f = opt(f, "anon_rss_kb", last.anon_rss_kb.map(Value::from));
        f = opt(f, "file_rss_kb", last.file_rss_kb.map(Value::from));
        f = opt(f, "shmem_rss_kb", last.shmem_rss_kb.map(Value::from));
        f = opt(f, "first_time", first.time.clone().map(Value::from));
        f = opt(f, "last_time", last.time.clone().map(Value::from));
        for e in by_entry.into_values() {
            f = f.evidence(e);
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    fn run(entry: &str, text: &str) -> Vec<Finding> {
        OomKill.evaluate(&Input::new(&bundle_with(&[(entry, text)]))).unwrap()
    }

    #[test]
    fn kernel_5_host_oom() {
        // From hotsos' kernlog_calltrace_oom_killer scenario (Ubuntu 5.4), abridged.
        let f = run(
            "kernel/dmesg.txt",
            "[27742.909073] kworker/0:0 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=-1, oom_score_adj=0\n\
             [27742.909336] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/user.slice/user-121.slice/session-c1.scope,task=gnome-shell,pid=955,uid=121\n\
             [27742.909353] Out of memory: Killed process 955 (gnome-shell) total-vm:3289540kB, anon-rss:77868kB, file-rss:107372kB, shmem-rss:12kB, UID:121 pgtables:788kB oom_score_adj:0\n",
        );
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!(f.subject, "pid 955 (gnome-shell)");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.facts["anon_rss_kb"], 77868);
        assert_eq!(f.facts["file_rss_kb"], 107372);
        assert_eq!(f.facts["total_vm_kb"], 3289540);
        assert_eq!(f.facts["triggered_by"], "kworker/0:0");
        assert_eq!(f.facts["constraint"], "CONSTRAINT_NONE");
        assert_eq!(f.facts["cgroup_limit"], false);
        assert_eq!(f.facts["first_time"], "27742.909073");
        assert_eq!(f.evidence[0].lines.len(), 3);
        assert!(f.summary.contains("host out of memory"), "{}", f.summary);
    }

    #[test]
    fn kernel_6_cgroup_oom() {
        let f = run(
            "kernel/kmsg.txt",
            "4,1000,5000000,-;perl invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n\
             6,1001,5000001,-;memory: usage 32768kB, limit 32768kB, failcnt 12\n\
             6,1002,5000002,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/snap-oom,task_memcg=/snap-oom,task=perl,pid=4242,uid=0\n\
             3,1003,5000003,-;Memory cgroup out of memory: Killed process 4242 (perl) total-vm:300000kB, anon-rss:31000kB, file-rss:4000kB, shmem-rss:0kB, UID:0 pgtables:100kB oom_score_adj:0\n",
        );
        let f = &f[0];
        assert_eq!(f.subject, "pid 4242 (perl)");
        assert_eq!(f.facts["cgroup_limit"], true);
        assert_eq!(f.facts["oom_memcg"], "/snap-oom");
        assert_eq!(f.facts["events"][0]["memcg_limit_kb"], 32768);
        assert!(f.advice.contains("cgroup"));
    }

    #[test]
    fn kernel_3_and_2_6_formats() {
        // 3.10/4.x: the choice, then the kill; RHEL 6 (2.6.32): `Killed process N, UID U, (comm)`.
        let f = run(
            "var/log/messages",
            "May 18 15:13:36 h kernel: java invoked oom-killer: gfp_mask=0x201da, order=0, oom_adj=0, oom_score_adj=0\n\
             May 18 15:13:36 h kernel: Out of memory: Kill process 2392 (java) score 905 or sacrifice child\n\
             May 18 15:13:36 h kernel: Killed process 2392, UID 500, (java) total-vm:4077484kB, anon-rss:3612708kB, file-rss:120kB\n\
             May 18 15:14:00 h kernel: Task in /docker/abc killed as a result of limit of /docker/abc\n\
             May 18 15:14:00 h kernel: Memory cgroup out of memory: Kill process 77 (node) score 999 or sacrifice child\n\
             May 18 15:14:00 h kernel: Killed process 77 (node) total-vm:1000kB, anon-rss:900kB, file-rss:10kB\n",
        );
        assert_eq!(f.len(), 2);
        let java = f.iter().find(|f| f.subject == "pid 2392 (java)").unwrap();
        assert_eq!(java.facts["anon_rss_kb"], 3612708);
        assert_eq!(java.facts["cgroup_limit"], false);
        assert_eq!(java.facts["events"][0]["score"], 905);
        assert_eq!(java.facts["first_time"], "May 18 15:13:36");
        let node = f.iter().find(|f| f.subject == "pid 77 (node)").unwrap();
        assert_eq!(node.facts["cgroup_limit"], true);
        assert_eq!(node.facts["oom_memcg"], "/docker/abc");
    }

    #[test]
    fn repeated_and_unconfirmed_kills() {
        let lines: Vec<LogLine> = klog::lines_of(
            "kernel/dmesg.txt",
            b"Out of memory: Killed process 123, UID 48, (httpd)\n\
              Out of memory: Kill process 456 (python) score 50 or sacrifice child\n\
              Out of memory: Killed process 123, UID 48, (httpd).\n\
              oom_reaper: reaped process 123 (httpd), now anon-rss:0kB, file-rss:0kB, shmem-rss:0\n",
        );
        let ev = events(&lines);
        assert_eq!(
            ev.iter().map(|e| (e.pid, e.killed)).collect::<Vec<_>>(),
            [(Some(123), true), (Some(456), false), (Some(123), true)]
        );
        let f = findings("mem.oom_kill", &ev);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].subject, "pid 123 (httpd)");
        assert_eq!(f[0].facts["kills"], 2);
    }

    #[test]
    fn old_kills_are_one_level_lower_with_their_age() {
        // The kill at 5.000003 s after boot; the capture at 4,000 s (proc/uptime) is over an
        // hour later, at 600 s it is recent.
        let kill = "3,1003,5000003,-;Out of memory: Killed process 4242 (perl) total-vm:300000kB, anon-rss:31000kB, file-rss:4000kB, shmem-rss:0kB, UID:0 pgtables:100kB oom_score_adj:0\n";
        let at = |uptime: &str| {
            let b = bundle_with(&[("kernel/kmsg.txt", kill), ("proc/uptime", uptime)]);
            OomKill.evaluate(&Input::new(&b)).unwrap().remove(0)
        };
        let old = at("4000.00 7000.00\n");
        assert_eq!(old.severity, Severity::Warning);
        assert_eq!(old.facts["age_s"], 3995.0);
        assert!(old.summary.ends_with("; the last 66 min before the capture"), "{}", old.summary);
        let recent = at("600.00 1000.00\n");
        assert_eq!(recent.severity, Severity::Critical);
        assert_eq!(recent.facts["age_s"], 595.0);
        // Without the capture's uptime the age is unknown and the level stands.
        let unknown = run("kernel/kmsg.txt", kill).remove(0);
        assert_eq!(unknown.severity, Severity::Critical);
        assert!(unknown.facts.get("age_s").is_none());
    }

    #[test]
    fn quiet_without_kills() {
        let f = run("kernel/dmesg.txt", "[    0.1] oom_reaper: reaped process 1 (x)\n[    0.2] Out of memory\n");
        assert!(f.is_empty());
        assert_eq!(victim("Killed process abc (x)", "Killed process "), None);
        assert_eq!(victim("Killed process 12 and more (x)", "Killed process "), None);
    }
}
