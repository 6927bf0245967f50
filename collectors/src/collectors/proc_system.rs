//! System-wide /proc files: load, CPU, memory, disks, mounts, pressure, network
//! counters. Socket tables are copied by the sockets collector, /proc/sys by proc_sys.

use crate::ctx::Ctx;
use crate::{Collector, Halt};

pub struct ProcSystem;

pub const FILES: &[&str] = &[
    "/proc/loadavg",
    "/proc/uptime",
    "/proc/stat",
    "/proc/meminfo",
    "/proc/vmstat",
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/partitions",
    "/proc/mounts",
    "/proc/self/mountinfo",
    "/proc/swaps",
    "/proc/version",
    "/proc/cmdline",
    "/proc/filesystems",
    "/proc/interrupts",
    "/proc/softirqs",
    "/proc/schedstat",
    "/proc/zoneinfo",
    "/proc/buddyinfo",
    "/proc/slabinfo",
    "/proc/modules",
    "/proc/locks",
    "/proc/pressure/cpu",
    "/proc/pressure/memory",
    "/proc/pressure/io",
    "/proc/pressure/irq",
    "/proc/net/dev",
    "/proc/net/snmp",
    "/proc/net/snmp6",
    "/proc/net/netstat",
    "/proc/net/sockstat",
    "/proc/net/sockstat6",
    "/proc/net/softnet_stat",
    "/proc/net/route",
    // The host's own IPv4 addresses (LOCAL routes): which end of a captured connection is us.
    "/proc/net/fib_trie",
    "/proc/net/ipv6_route",
    "/proc/net/arp",
    "/proc/net/if_inet6",
];

impl Collector for ProcSystem {
    fn name(&self) -> &'static str {
        "proc_system"
    }

    fn collect(&self, ctx: &mut Ctx) -> Result<(), Halt> {
        ctx.copy_all(FILES);
        Ok(())
    }
}
