//! The collectors, one module each, and the registry that orders them.
//!
//! Order matters twice: the most valuable evidence comes first, so a byte budget or
//! deadline that runs out cuts the least useful data; and a few collectors use what an
//! earlier one left in [`crate::ctx::Shared`] (sockets need the open-file scan's
//! owners, disk usage needs the filesystem scan).

pub mod config;
pub mod disk_usage;
pub mod filesystems;
pub mod kernel_log;
pub mod proc_sys;
pub mod proc_system;
pub mod processes;
pub mod sockets;
pub mod sysfs;

use crate::Collector;

/// Every collector, in the order they run.
pub fn registry() -> Vec<&'static dyn Collector> {
    vec![
        &proc_system::ProcSystem,
        &kernel_log::KernelLog,
        &filesystems::Filesystems,
        &processes::Processes,
        &sockets::Sockets,
        &sysfs::Sysfs,
        &config::Config,
        &proc_sys::ProcSys,
        &disk_usage::DiskUsage,
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = super::registry().iter().map(|c| c.name()).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }
}
