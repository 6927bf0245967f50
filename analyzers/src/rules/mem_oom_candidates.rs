//! `mem.oom_candidates` (info): the processes the OOM killer would choose first, by
//! their `oom_score`, reported only when memory is under pressure.
//!
//! `proc/<pid>/oom_score` is the kernel's own badness (resident memory, swap and page
//! tables against the host's memory, shifted by `oom_score_adj`); the highest is the next
//! victim of a host-wide OOM kill. On a healthy box that list is noise, so the rule
//! speaks only when MemAvailable is low or the log shows a host-wide OOM kill.

use serde_json::json;

use crate::klog;
use crate::rules::mem_oom_kill;
use crate::{Evidence, Finding, Input, Need, Rule, Severity, Skip};

pub struct OomCandidates;

/// MemAvailable, as a share of MemTotal, below which the candidates are reported.
const PRESSURE_PERCENT: f64 = 20.0;
/// Candidates listed.
const TOP: usize = 5;

impl Rule for OomCandidates {
    fn id(&self) -> &'static str {
        "mem.oom_candidates"
    }

    fn detects(&self) -> &'static str {
        "the processes with the highest oom_score, the OOM killer's next victims, under memory pressure"
    }

    fn thresholds(&self) -> &'static str {
        "info, listing the 5 processes with the highest oom_score (with oom_score_adj and VmRSS), \
         only when memory is under pressure: MemAvailable below 20 % of MemTotal, or a host-wide \
         OOM kill in the kernel log (logged at most an hour before the capture, when both \
         times are known). A kill caused by a cgroup's memory limit does not count: \
         the cgroup's OOM killer chooses among that cgroup's tasks, not by this host-wide \
         ranking. On a healthy box the ranking is noise, so the rule stays quiet. Processes \
         with oom_score 0 or oom_score_adj -1000 (never chosen) are left out. oom_score is the \
         kernel's badness: resident memory, swap and page tables as a share of memory, plus \
         oom_score_adj (-1000..1000); the highest is killed first. Protect what must survive \
         with a negative oom_score_adj (OOMScoreAdjust= in systemd), rather than relying on \
         which process happens to be largest."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &[
            "proc/meminfo",
            "proc/<pid>/oom_score",
            "proc/<pid>/oom_score_adj",
            "proc/<pid>/status",
            "kernel/kmsg.txt or another kernel log (optional: host-wide OOM kills)",
        ]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        // Why memory is under pressure, if it is.
        let mut reasons = Vec::new();
        let mut evidence = Vec::new();
        let mut meminfo_missing = false;
        let mut available_percent = None;
        match input.raw("proc/meminfo") {
            Ok(raw) => {
                let m = crate::input::meminfo(&raw).map_err(|e| Skip::bad("proc/meminfo", e))?;
                if let (Some(avail), true) = (m.mem_available, m.mem_total > 0) {
                    let percent = avail as f64 * 100.0 / m.mem_total as f64;
                    available_percent = Some((percent * 10.0).round() / 10.0);
                    if percent < PRESSURE_PERCENT {
                        reasons.push(format!("MemAvailable {percent:.1} % of MemTotal"));
                        evidence.push(
                            Evidence::entry("proc/meminfo").value("MemTotal", m.mem_total).value("MemAvailable", avail),
                        );
                    }
                }
            }
            Err(Skip::Missing(_)) => meminfo_missing = true,
            Err(e) => return Err(e),
        }
        let log = klog::read(input);
        let host_kills: Vec<mem_oom_kill::Event> = log
            .as_ref()
            .map(|lines| {
                // Kills from more than an hour before the capture say nothing about now.
                let now = klog::capture_uptime(input);
                let recent = |e: &mem_oom_kill::Event| match (now, e.uptime_s) {
                    (Some(now), Some(at)) => now - at <= klog::RECENT_SECONDS,
                    _ => true,
                };
                mem_oom_kill::events(lines).into_iter().filter(|e| !e.cgroup_limit() && recent(e)).collect()
            })
            .unwrap_or_default();
        if !host_kills.is_empty() {
            reasons.push(format!("{} host-wide OOM kill(s) in the kernel log", host_kills.len()));
            let mut e = Evidence::entry(&host_kills[0].lines.first().map(|l| l.entry.clone()).unwrap_or_default());
            for l in host_kills.iter().filter_map(|k| k.lines.last()).take(5) {
                e = e.line(l.cite());
            }
            evidence.push(e);
        }

        if !input.entries_under("proc/").iter().any(|e| e.ends_with("/oom_score")) {
            return Err(Skip::missing("proc/<pid>/oom_score"));
        }
        if meminfo_missing && log.is_err() {
            return Err(Skip::missing("proc/meminfo"));
        }
        if reasons.is_empty() {
            return Ok(Vec::new());
        }
        // Read only under pressure: it reads three files of every process.
        let candidates = candidates(input);
        if candidates.is_empty() {
            return Ok(Vec::new());
        }

        let top: Vec<&Candidate> = candidates.iter().take(TOP).collect();
        let first = top[0];
        let listed: Vec<String> = top
            .iter()
            .map(|c| {
                format!(
                    "pid {} ({}) score {} adj {} rss {}",
                    c.pid,
                    c.comm,
                    c.score,
                    c.adj,
                    c.rss_kb.map_or("?".into(), |k| format!("{} MiB", k / 1024))
                )
            })
            .collect();
        let mut scores = Evidence::entry("proc/<pid>/oom_score");
        for (c, text) in top.iter().zip(&listed) {
            scores = scores.line(format!("proc/{}/oom_score: {}", c.pid, text));
        }
        let mut f = Finding::new(
            self.id(),
            Severity::Info,
            "memory",
            format!(
                "under memory pressure ({}); the OOM killer would choose pid {} ({}) first: {}",
                reasons.join(", "),
                first.pid,
                first.comm,
                listed.join("; ")
            ),
        )
        .evidence(scores)
        .fact("reasons", reasons.clone())
        .fact(
            "candidates",
            top.iter()
                .map(|c| json!({"pid": c.pid, "command": c.comm, "oom_score": c.score, "oom_score_adj": c.adj, "rss_kb": c.rss_kb}))
                .collect::<Vec<_>>(),
        )
        .fact("host_oom_kills", host_kills.len());
        if let Some(p) = available_percent {
            f = f.fact("available_percent", p);
        }
        for e in evidence {
            f = f.evidence(e);
        }
        Ok(vec![f.advice(format!(
            "If memory runs out, pid {} ({}) goes first. If that is the process the box exists for, \
             protect it (OOMScoreAdjust=-500 in its systemd unit, or echo -500 > \
             /proc/PID/oom_score_adj) and cap the expendable ones (a cgroup memory.max), or better \
             find why memory is short (mem.available_low, mem.swap) before the killer decides.",
            first.pid, first.comm
        ))])
    }
}

struct Candidate {
    pid: u32,
    comm: String,
    score: i64,
    adj: i64,
    rss_kb: Option<u64>,
}

/// Processes that could be chosen, highest oom_score first (then larger RSS, lower pid).
fn candidates(input: &Input) -> Vec<Candidate> {
    let mut out = Vec::new();
    let collector = input.manifest().map(|m| m.collector_pid).filter(|p| *p > 0);
    for entry in input.entries_under("proc/") {
        let Some(pid) = entry.strip_prefix("proc/").and_then(|r| r.strip_suffix("/oom_score")) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if Some(pid) == collector {
            continue;
        }
        let Some(score) = input.text(entry).ok().and_then(|t| t.trim().parse::<i64>().ok()) else { continue };
        let adj = input
            .text(&format!("proc/{pid}/oom_score_adj"))
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .unwrap_or(0);
        if score <= 0 || adj <= -1000 {
            continue;
        }
        let status = input.text(&format!("proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string());
        let comm =
            field("Name:").or_else(|| input.process_stat(pid).ok().map(|s| s.comm)).unwrap_or_else(|| "?".to_string());
        let rss_kb = field("VmRSS:").and_then(|v| v.trim_end_matches("kB").trim().parse().ok());
        out.push(Candidate { pid, comm, score, adj, rss_kb });
    }
    out.sort_by(|a, b| b.score.cmp(&a.score).then(b.rss_kb.cmp(&a.rss_kb)).then(a.pid.cmp(&b.pid)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    fn meminfo(available_kb: u64) -> String {
        format!(
            "MemTotal:       24683656 kB\nMemFree:          300000 kB\nMemAvailable:   {available_kb} kB\n\
             Buffers:           18692 kB\nCached:           350984 kB\nSwapCached:            0 kB\n\
             Active:          2090456 kB\nInactive:        4282040 kB\nActive(anon):       1516 kB\n\
             Inactive(anon):    10256 kB\nActive(file):    2088940 kB\nInactive(file):  4271784 kB\n\
             Unevictable:        9972 kB\nMlocked:            8272 kB\nSwapTotal:             0 kB\n\
             SwapFree:              0 kB\nDirty:             66556 kB\nWriteback:             0 kB\n\
             AnonPages:         12748 kB\nMapped:            14916 kB\nShmem:              8952 kB\n\
             Slab:             595928 kB\nSReclaimable:     544328 kB\nSUnreclaim:        51600 kB\n\
             KernelStack:        1292 kB\nPageTables:         1180 kB\nNFS_Unstable:          0 kB\n\
             Bounce:                0 kB\nWritebackTmp:          0 kB\nCommitLimit:    12341828 kB\n\
             Committed_AS:      53204 kB\nVmallocTotal:   34359738367 kB\nVmallocUsed:        5556 kB\n\
             VmallocChunk:          0 kB\n"
        )
    }

    /// status lines as this Debian 12 VM writes them (trimmed to the fields read).
    fn status(name: &str, rss_kb: u64) -> String {
        format!("Name:\t{name}\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t   45060 kB\nVmRSS:\t {rss_kb:>7} kB\nThreads:\t1\n")
    }

    fn procs() -> Vec<(String, String)> {
        let mut v = Vec::new();
        for (pid, name, score, adj, rss) in [
            (1, "systemd", 0, 0, 9684),
            (300, "sshd", 1, -1000, 7000),
            (400, "postgres", 600, 0, 12_000_000),
            (401, "java", 700, 0, 9_000_000),
            (402, "redis", 600, 0, 13_000_000),
            (403, "cron", 2, 0, 2000),
            (404, "nginx", 3, 0, 5000),
            (405, "bash", 1, 0, 4000),
        ] {
            v.push((format!("proc/{pid}/oom_score"), format!("{score}\n")));
            v.push((format!("proc/{pid}/oom_score_adj"), format!("{adj}\n")));
            v.push((format!("proc/{pid}/status"), status(name, rss)));
        }
        v
    }

    fn bundle(extra: &[(&str, String)]) -> crate::rules::testing::TestBundle {
        let all: Vec<(String, String)> =
            procs().into_iter().chain(extra.iter().map(|(a, b)| (a.to_string(), b.clone()))).collect();
        let refs: Vec<(&str, &str)> = all.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        bundle_with(&refs)
    }

    #[test]
    fn quiet_when_memory_is_plentiful() {
        let b = bundle(&[("proc/meminfo", meminfo(24_201_456))]);
        assert_eq!(OomCandidates.evaluate(&Input::new(&b)).unwrap(), vec![]);
    }

    #[test]
    fn top_five_under_pressure() {
        // 2,468,365 kB of 24,683,656 kB = 10 %.
        let b = bundle(&[("proc/meminfo", meminfo(2_468_365))]);
        let found = OomCandidates.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.subject, "memory");
        let pids: Vec<u64> =
            f.facts["candidates"].as_array().unwrap().iter().map(|c| c["pid"].as_u64().unwrap()).collect();
        // java first; equal scores by RSS; sshd (adj -1000) and systemd (score 0) left out.
        assert_eq!(pids, vec![401, 402, 400, 404, 403]);
        assert_eq!(f.facts["candidates"][0]["rss_kb"], 9_000_000);
        assert_eq!(f.facts["available_percent"], 10.0);
        assert!(f.summary.contains("would choose pid 401 (java) first"), "{}", f.summary);
    }

    #[test]
    fn host_oom_kill_counts_but_cgroup_kill_does_not() {
        let cgroup = "6,1001,5000001,-;perl invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n\
             6,1002,5000002,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/snap-oom,task_memcg=/snap-oom,task=perl,pid=4242,uid=0\n\
             3,1003,5000003,-;Memory cgroup out of memory: Killed process 4242 (perl) total-vm:270028kB, anon-rss:32512kB, file-rss:3044kB, shmem-rss:0kB, UID:0 pgtables:128kB oom_score_adj:0\n";
        let b = bundle(&[("proc/meminfo", meminfo(24_201_456)), ("kernel/kmsg.txt", cgroup.to_string())]);
        assert_eq!(OomCandidates.evaluate(&Input::new(&b)).unwrap(), vec![]);

        let host = "6,1001,5000001,-;java invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0\n\
             6,1002,5000002,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/app.service,task=java,pid=999,uid=0\n\
             3,1003,5000003,-;Out of memory: Killed process 999 (java) total-vm:20000000kB, anon-rss:15000000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:30000kB oom_score_adj:0\n";
        let b = bundle(&[("proc/meminfo", meminfo(24_201_456)), ("kernel/kmsg.txt", host.to_string())]);
        let f = &OomCandidates.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!(f.facts["host_oom_kills"], 1);
        assert_eq!(f.facts["candidates"][0]["pid"], 401);
    }

    #[test]
    fn missing_inputs() {
        let b = bundle_with(&[("proc/meminfo", &meminfo(1000))]);
        assert_eq!(OomCandidates.evaluate(&Input::new(&b)), Err(Skip::missing("proc/<pid>/oom_score")));
        let b = bundle(&[]);
        assert_eq!(OomCandidates.evaluate(&Input::new(&b)), Err(Skip::missing("proc/meminfo")));
    }
}
