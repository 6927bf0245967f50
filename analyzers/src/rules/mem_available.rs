//! `mem.available_low`: MemAvailable low against MemTotal.

use crate::{Evidence, Finding, Input, Need, Rule, Severity, Skip};

pub struct MemAvailableLow;

/// Available memory, as a share of the total, below which the rule warns / is critical.
const WARN_PERCENT: f64 = 10.0;
const CRITICAL_PERCENT: f64 = 5.0;

const MIB: f64 = 1024.0 * 1024.0;

impl Rule for MemAvailableLow {
    fn id(&self) -> &'static str {
        "mem.available_low"
    }

    fn detects(&self) -> &'static str {
        "little memory available for new work (MemAvailable against MemTotal)"
    }

    fn thresholds(&self) -> &'static str {
        "warning below 10 % of MemTotal available, critical below 5 %. MemFree alone is \
         misleading: the kernel keeps free memory low by using it as page cache (buff/cache), \
         most of which it can drop on demand. MemAvailable is the kernel's own estimate of what \
         can be given to applications without swapping; when it is low, the next allocation \
         means reclaim, swapping or the OOM killer."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["proc/meminfo"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let m = input.meminfo("proc/meminfo")?;
        let Some(available) = m.mem_available else {
            // Kernels before 3.14 have no MemAvailable: valid data this rule cannot judge
            // (an estimate would need the zone watermarks), so it is not evaluated.
            return Err(Skip::Missing(vec!["MemAvailable in proc/meminfo (kernels before 3.14 lack it)".into()]));
        };
        if m.mem_total == 0 {
            return Err(Skip::bad("proc/meminfo", "MemTotal is 0"));
        }
        let percent = available as f64 * 100.0 / m.mem_total as f64;
        if percent >= WARN_PERCENT {
            return Ok(Vec::new());
        }
        let severity = if percent < CRITICAL_PERCENT { Severity::Critical } else { Severity::Warning };
        let cache = m.buffers + m.cached + m.s_reclaimable.unwrap_or(0);
        let mib = |v: u64| (v as f64 / MIB).round() as u64;
        Ok(vec![Finding::new(
            self.id(),
            severity,
            "memory",
            format!(
                "{} MiB available of {} MiB ({percent:.1} %); free {} MiB, buff/cache {} MiB",
                mib(available),
                mib(m.mem_total),
                mib(m.mem_free),
                mib(cache)
            ),
        )
        .evidence(
            Evidence::entry("proc/meminfo")
                .value("MemTotal", m.mem_total)
                .value("MemFree", m.mem_free)
                .value("MemAvailable", available)
                .value("Buffers", m.buffers)
                .value("Cached", m.cached),
        )
        .fact("available_bytes", available)
        .fact("total_bytes", m.mem_total)
        .fact("free_bytes", m.mem_free)
        .fact("buff_cache_bytes", cache)
        .fact("available_percent", (percent * 10.0).round() / 10.0)
        .advice(
            "Find what holds the memory (the largest RSS and shared memory users, see \
             mem.oom_candidates) and whether it is a leak; check mem.swap and mem.oom_kill. \
             Adding memory or capping the largest consumers (a cgroup memory.max) keeps the \
             OOM killer from choosing for you.",
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    /// /proc/meminfo of a Debian 12 VM (kernel 6.18) with MemFree, MemAvailable and
    /// Cached set by `meminfo()`.
    fn meminfo(free_kb: u64, available_kb: u64, cached_kb: u64) -> String {
        REAL.lines()
            .map(|l| match l.split(':').next() {
                Some("MemFree") => format!("MemFree: {free_kb} kB"),
                Some("MemAvailable") => format!("MemAvailable: {available_kb} kB"),
                Some("Cached") => format!("Cached: {cached_kb} kB"),
                _ => l.to_string(),
            })
            .map(|l| l + "\n")
            .collect()
    }

    const REAL: &str = "\
MemTotal:       24683656 kB\n\
MemFree:        17616496 kB\n\
MemAvailable:   24201456 kB\n\
Buffers:           18692 kB\n\
Cached:          6350984 kB\n\
SwapCached:            0 kB\n\
Active:          2090456 kB\n\
Inactive:        4282040 kB\n\
Active(anon):       1516 kB\n\
Inactive(anon):    10256 kB\n\
Active(file):    2088940 kB\n\
Inactive(file):  4271784 kB\n\
Unevictable:        9972 kB\n\
Mlocked:            8272 kB\n\
SwapTotal:             0 kB\n\
SwapFree:              0 kB\n\
Zswap:                 0 kB\n\
Zswapped:              0 kB\n\
Dirty:             66556 kB\n\
Writeback:             0 kB\n\
AnonPages:         12748 kB\n\
Mapped:            14916 kB\n\
Shmem:              8952 kB\n\
KReclaimable:     544328 kB\n\
Slab:             595928 kB\n\
SReclaimable:     544328 kB\n\
SUnreclaim:        51600 kB\n\
KernelStack:        1292 kB\n\
PageTables:         1180 kB\n\
SecPageTables:         0 kB\n\
NFS_Unstable:          0 kB\n\
Bounce:                0 kB\n\
WritebackTmp:          0 kB\n\
CommitLimit:    12341828 kB\n\
Committed_AS:      53204 kB\n\
VmallocTotal:   34359738367 kB\n\
VmallocUsed:        5556 kB\n\
VmallocChunk:          0 kB\n\
Percpu:              712 kB\n\
AnonHugePages:         0 kB\n\
ShmemHugePages:        0 kB\n\
ShmemPmdMapped:        0 kB\n\
FileHugePages:     40960 kB\n\
FilePmdMapped:         0 kB\n\
Balloon:               0 kB\n\
HugePages_Total:       0\n\
HugePages_Free:        0\n\
HugePages_Rsvd:        0\n\
HugePages_Surp:        0\n\
Hugepagesize:       2048 kB\n\
Hugetlb:               0 kB\n\
DirectMap4k:       20480 kB\n\
DirectMap2M:     2076672 kB\n\
DirectMap1G:    25165824 kB\n\
";

    #[test]
    fn fires_when_available_is_low() {
        // 987,346 kB of 24,683,656 kB = 4.0 %.
        let b = bundle_with(&[("proc/meminfo", &meminfo(300_000, 987_346, 500_000))]);
        let f = &MemAvailableLow.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.facts["available_percent"], 4.0);
        assert_eq!(f.facts["available_bytes"], 987_346 * 1024);
    }

    #[test]
    fn quiet_when_cache_is_large_but_available() {
        // Little free memory but most of it reclaimable cache: not a problem.
        let b = bundle_with(&[("proc/meminfo", &meminfo(100_000, 20_000_000, 19_000_000))]);
        assert!(MemAvailableLow.evaluate(&Input::new(&b)).unwrap().is_empty());
    }
}
