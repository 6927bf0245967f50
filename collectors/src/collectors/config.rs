//! Configuration an investigation reads: OS release, mounts, sysctl, limits, users
//! (for uid names; /etc/shadow is never read), name resolution, and nginx's
//! configuration when present. Also the login sessions (`/run/utmp`, which `uptime`,
//! `top` and `who` count), always looked for, so that a box without one is recorded as
//! such rather than left unknown.

use crate::ctx::Ctx;
use crate::{Collector, Halt};

pub struct Config;

const FILES: &[&str] = &[
    "/etc/os-release",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/fstab",
    "/etc/passwd",
    "/etc/group",
    "/etc/timezone",
    "/etc/sysctl.conf",
    "/etc/security/limits.conf",
    "/etc/systemd/system.conf",
];
/// Copied whether or not they exist: their absence is a fact a view reports.
const ALWAYS: &[&str] = &["/run/utmp"];
/// Directories whose files are copied, recursively for nginx.
const DIRS: &[&str] = &["/etc/sysctl.d", "/etc/security/limits.d", "/etc/nginx"];
const MAX_FILES_PER_DIR: usize = 1000;

impl Collector for Config {
    fn name(&self) -> &'static str {
        "config"
    }

    fn collect(&self, ctx: &mut Ctx) -> Result<(), Halt> {
        let mut files: Vec<String> = FILES.iter().filter(|f| ctx.host(f).exists()).map(|f| f.to_string()).collect();
        files.extend(ALWAYS.iter().map(|f| f.to_string()));
        for dir in DIRS {
            let mut stack = vec![dir.to_string()];
            let mut found = Vec::new();
            while let Some(d) = stack.pop() {
                for e in ctx.list(&d) {
                    if e.is_dir {
                        stack.push(e.path);
                    } else if (e.is_file || (e.is_symlink && ctx.host(&e.path).is_file()))
                        && found.len() < MAX_FILES_PER_DIR
                    {
                        // Symlinked files (nginx's sites-enabled) are read through.
                        found.push(e.path);
                    }
                }
            }
            found.sort();
            files.extend(found);
        }
        ctx.copy_all(&files);
        Ok(())
    }
}
