//! Selected /sys: CPU online state, topology and frequency; block-device queue
//! settings; cgroup memory, CPU and pids limits (v1 and v2); a few network and memory
//! settings. /sys/kernel/debug is never entered.

use crate::ctx::Ctx;
use crate::{Collector, Halt};

pub struct Sysfs;

const CPU_FILES: &[&str] = &["online", "possible", "present", "offline", "isolated", "kernel_max"];
const PER_CPU: &[&str] = &[
    "online",
    "topology/core_id",
    "topology/physical_package_id",
    "topology/die_id",
    "topology/thread_siblings_list",
    "topology/core_siblings_list",
    "cpufreq/scaling_cur_freq",
    "cpufreq/scaling_min_freq",
    "cpufreq/scaling_max_freq",
    "cpufreq/cpuinfo_min_freq",
    "cpufreq/cpuinfo_max_freq",
    "cpufreq/scaling_governor",
    "cpufreq/scaling_driver",
];
const PER_BLOCK: &[&str] = &[
    "size",
    "ro",
    "removable",
    "stat",
    "inflight",
    "queue/scheduler",
    "queue/nr_requests",
    "queue/read_ahead_kb",
    "queue/rotational",
    "queue/max_sectors_kb",
    "queue/logical_block_size",
    "queue/physical_block_size",
    "queue/nomerges",
    "queue/rq_affinity",
    "queue/write_cache",
    "device/model",
];
const PER_NET: &[&str] = &["mtu", "speed", "operstate", "tx_queue_len", "carrier", "duplex"];
const OTHER: &[&str] = &[
    "/sys/kernel/mm/transparent_hugepage/enabled",
    "/sys/kernel/mm/transparent_hugepage/defrag",
    "/sys/fs/cgroup/cgroup.controllers",
];
/// Files kept from every cgroup directory (v2 names, then v1 names).
const CGROUP_FILES: &[&str] = &[
    "cgroup.procs",
    "memory.max",
    "memory.high",
    "memory.low",
    "memory.min",
    "memory.current",
    "memory.peak",
    "memory.events",
    "memory.stat",
    "memory.swap.current",
    "memory.swap.max",
    "memory.pressure",
    "cpu.max",
    "cpu.weight",
    "cpu.stat",
    "cpu.pressure",
    "io.max",
    "io.pressure",
    "pids.current",
    "pids.max",
    "memory.limit_in_bytes",
    "memory.usage_in_bytes",
    "memory.max_usage_in_bytes",
    "memory.failcnt",
    "memory.oom_control",
    "memory.memsw.limit_in_bytes",
    "memory.memsw.usage_in_bytes",
    "cpu.cfs_quota_us",
    "cpu.cfs_period_us",
    "cpu.shares",
];
/// cgroup directories visited at most.
const MAX_CGROUPS: usize = 3000;

impl Collector for Sysfs {
    fn name(&self) -> &'static str {
        "sysfs"
    }

    fn collect(&self, ctx: &mut Ctx) -> Result<(), Halt> {
        let cpu = "/sys/devices/system/cpu";
        let mut files: Vec<String> = CPU_FILES.iter().map(|f| format!("{cpu}/{f}")).collect();
        for e in ctx.list(cpu) {
            let is_cpu =
                e.name.strip_prefix("cpu").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if is_cpu {
                files.extend(PER_CPU.iter().map(|f| format!("{}/{f}", e.path)));
            }
        }
        for e in ctx.list("/sys/block") {
            files.extend(PER_BLOCK.iter().map(|f| format!("{}/{f}", e.path)));
        }
        for e in ctx.list("/sys/class/net") {
            files.extend(PER_NET.iter().map(|f| format!("{}/{f}", e.path)));
        }
        files.extend(OTHER.iter().map(|s| s.to_string()));
        files.retain(|f| ctx.host(f).is_file());
        ctx.copy_all(&files);
        ctx.check()?;
        cgroups(ctx)
    }
}

/// Walks /sys/fs/cgroup (v2, or every v1 hierarchy below it) breadth first.
fn cgroups(ctx: &mut Ctx) -> Result<(), Halt> {
    let mut queue = std::collections::VecDeque::from(["/sys/fs/cgroup".to_string()]);
    let mut visited = 0;
    while let Some(dir) = queue.pop_front() {
        ctx.check()?;
        visited += 1;
        if visited > MAX_CGROUPS {
            return Err(Halt::Failed(format!("stopped after {MAX_CGROUPS} cgroup directories")));
        }
        let listed = ctx.list(&dir);
        let files: Vec<String> = listed
            .iter()
            .filter(|e| e.is_file && CGROUP_FILES.contains(&e.name.as_str()))
            .map(|e| e.path.clone())
            .collect();
        ctx.copy_all(&files);
        queue.extend(listed.into_iter().filter(|e| e.is_dir).map(|e| e.path));
    }
    Ok(())
}
