//! The whole /proc/sys tree (sysctl -a), within the budget. Write-only files
//! (drop_caches, compact_memory, route/flush) are never opened, nor the deprecated neigh
//! timers that make the kernel log a warning when read.

use std::os::unix::fs::PermissionsExt;

use crate::ctx::Ctx;
use crate::{Collector, Halt};

pub struct ProcSys;

/// Directories visited at most; /proc/sys has a few hundred on a normal host.
const MAX_DIRS: usize = 5000;

/// Reading these makes the kernel log a deprecation warning naming the reader, so snap
/// would write into the very log it collects. Their `_ms` twins hold the same values.
fn is_deprecated(path: &str) -> bool {
    path.contains("/neigh/") && (path.ends_with("/base_reachable_time") || path.ends_with("/retrans_time"))
}

impl Collector for ProcSys {
    fn name(&self) -> &'static str {
        "proc_sys"
    }

    fn collect(&self, ctx: &mut Ctx) -> Result<(), Halt> {
        let mut dirs = vec!["/proc/sys".to_string()];
        let mut visited = 0;
        while let Some(dir) = dirs.pop() {
            ctx.check()?;
            visited += 1;
            if visited > MAX_DIRS {
                return Err(Halt::Failed(format!("stopped after {MAX_DIRS} directories")));
            }
            let Ok(rd) = std::fs::read_dir(ctx.host(&dir)) else { continue };
            let mut files = Vec::new();
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let path = format!("{dir}/{name}");
                let Ok(meta) = e.metadata() else { continue };
                if meta.is_dir() {
                    dirs.push(path);
                } else if meta.is_file() && meta.permissions().mode() & 0o444 != 0 && !is_deprecated(&path) {
                    files.push(path);
                }
            }
            files.sort();
            ctx.copy_all(&files);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn deprecated_neigh_timers_are_skipped_but_not_their_ms_twins() {
        assert!(super::is_deprecated("/proc/sys/net/ipv6/neigh/eth0/base_reachable_time"));
        assert!(super::is_deprecated("/proc/sys/net/ipv4/neigh/default/retrans_time"));
        assert!(!super::is_deprecated("/proc/sys/net/ipv4/neigh/default/retrans_time_ms"));
        assert!(!super::is_deprecated("/proc/sys/net/ipv4/tcp_retries2"));
    }
}
