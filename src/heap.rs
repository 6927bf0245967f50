//! Transparent huge pages for the commands that read a bundle.
//!
//! Opening a busy host's bundle touches ~80 MB of fresh heap (the decompressed
//! entries, parsed scans): with 4 KiB pages that is ~20,000 page faults, a quarter of
//! `snap analyze`'s CPU time. glibc backs its heap with transparent huge pages when
//! the tunable `glibc.malloc.hugetlb=1` is set, but it reads tunables only when the
//! process starts, so a command that reads a bundle re-executes itself once with the
//! tunable added. On the 2,000-process benchmark bundle this took `snap analyze` from
//! 195 to 161 ms (`benches/analyze.sh`; system time 85 -> 54 ms) at the same peak RSS.
//!
//! Only where it helps and cannot hurt: on glibc, when the kernel's THP mode is
//! `madvise` (with `always` the heap has huge pages already; with `never` there are
//! none), never for `collect` or `analyze --live` (they run on the box in trouble,
//! where a huge-page fault can stall in memory compaction), and never when
//! GLIBC_TUNABLES already says anything about `glibc.malloc.hugetlb` (set it to 0 to
//! opt out). If the re-execution fails, the command simply runs as it is.

/// Re-executes this process with huge pages for the heap, when that applies. Returns
/// only when it did not (not applicable, or the exec failed).
pub fn use_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    linux::reexec();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod linux {
    use std::os::unix::process::CommandExt;

    const TUNABLE: &str = "glibc.malloc.hugetlb";

    pub fn reexec() {
        let current = match std::env::var_os("GLIBC_TUNABLES").map(|v| v.into_string()) {
            None => String::new(),
            Some(Ok(v)) => v,
            // Not ours to rewrite.
            Some(Err(_)) => return,
        };
        if current.contains(TUNABLE) || !thp_is_madvise() {
            return;
        }
        let value = if current.is_empty() { format!("{TUNABLE}=1") } else { format!("{current}:{TUNABLE}=1") };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_default();
        // exec only returns on failure; then carry on without huge pages.
        let _ = std::process::Command::new("/proc/self/exe").arg0(arg0).args(args).env("GLIBC_TUNABLES", value).exec();
    }

    fn thp_is_madvise() -> bool {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").is_ok_and(|s| s.contains("[madvise]"))
    }
}
