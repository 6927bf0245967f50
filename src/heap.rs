//! The heap of the commands that read a bundle: transparent huge pages, and growth in
//! large steps ([`grow_in_large_steps`]).
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

/// Bytes the heap grows by beyond each request (glibc's `M_TOP_PAD`).
///
/// glibc's default (128 KiB) grows a thread's arena a few pages at a time, one
/// `mprotect` per step: diffing two 2,000-process bundles made ~2,500 of them, each
/// taking the process's memory-map lock that the other threads' page faults also
/// need, and each leaving 4 KiB pages behind where a huge page would have served.
/// With 32 MiB the arenas start large enough for a whole bundle's parsed scans: page
/// faults 16,500 -> 2,700 and CPU time -10 % for that diff (see the closing note of
/// issue 6), for ~30 % more peak RSS. Untouched padding costs nothing.
const TOP_PAD: i32 = 32 << 20;

/// Lets the heap grow in large steps, for commands that read a bundle (never for
/// `collect` or `analyze --live`, which run on the box in trouble). Left alone when
/// GLIBC_TUNABLES already says anything about `glibc.malloc.top_pad` (set it to opt
/// out). Call before any thread starts.
pub fn grow_in_large_steps() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !std::env::var_os("GLIBC_TUNABLES").is_some_and(|v| v.to_string_lossy().contains("glibc.malloc.top_pad")) {
        // SAFETY: mallopt only changes glibc's allocator parameters; called before any
        // other thread exists. A refusal (0) leaves the default, which is correct too.
        unsafe { libc::mallopt(libc::M_TOP_PAD, TOP_PAD) };
    }
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
