//! The whole /proc/sys tree (sysctl -a), within the budget. Write-only files
//! (drop_caches, compact_memory, route/flush) are never opened.

use std::os::unix::fs::PermissionsExt;

use crate::ctx::Ctx;
use crate::{Collector, Halt};

pub struct ProcSys;

/// Directories visited at most; /proc/sys has a few hundred on a normal host.
const MAX_DIRS: usize = 5000;

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
                } else if meta.is_file() && meta.permissions().mode() & 0o444 != 0 {
                    files.push(path);
                }
            }
            files.sort();
            ctx.copy_all(&files);
        }
        Ok(())
    }
}
