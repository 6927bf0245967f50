//! `du -s` one and two levels below nearly full filesystems: what `du -sh /*` and
//! `du -sh /var/*` would show, so the receiver can see where the space went.
//!
//! Only filesystems that plain `df` lists, that were measured, and that are at least
//! [`MIN_USE_PERCENT`] full, of space or of inodes, are walked (the filesystem scan left them in
//! [`crate::ctx::Shared::filesystems`]). Sizes are allocated bytes (st_blocks * 512),
//! hard-linked files are counted once, symbolic links are never followed and the walk
//! never enters another filesystem (st_dev must match the mount point's), so the
//! figures equal `du -s -B1 -x`. Depth-1 figures share one hard-link set (as one
//! `du -s /*` run); depth-2 figures use one set per parent (as `du -s /var/*`).
//!
//! A walk is bounded by time ([`PER_FS_TIME`], [`TOTAL_TIME`] and the overall
//! deadline) and by entries visited ([`MAX_ENTRIES`]); records of directories it could
//! not finish are marked `partial`. It runs as one guarded job that ticks its progress
//! on every entry, so it is only abandoned when a single directory read or stat blocks;
//! what it had counted by then is kept. An empty entry is stored when no filesystem
//! qualifies, so that absence of findings is visible.

use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use snap_bundle::names;
use snap_bundle::scan::{DiskUsage as Usage, Filesystem};

use crate::ctx::Ctx;
use crate::guard::Progress;
use crate::{Collector, Halt};

pub const NAME: &str = "disk_usage";

pub struct DiskUsage;

/// df's Use% from which a filesystem is walked.
pub const MIN_USE_PERCENT: u32 = 85;
/// Time one filesystem's walk may take.
pub const PER_FS_TIME: Duration = Duration::from_secs(5);
/// Time all walks together may take.
pub const TOTAL_TIME: Duration = Duration::from_secs(15);
/// Time a walk gets even when the total is spent: enough to list the top level.
const MIN_TIME: Duration = Duration::from_millis(200);
/// Entries (files and directories) one walk may visit.
pub const MAX_ENTRIES: u64 = 200_000;
/// Records kept per filesystem, largest first.
pub const MAX_RECORDS: usize = 2000;
/// Files at depth 1 or 2 get their own record from this size.
pub const MIN_FILE_BYTES: u64 = 1 << 20;

/// Whether a filesystem is full enough to be walked.
pub fn qualifies(fs: &Filesystem) -> bool {
    // Nearly out of space or of inodes: the per-directory sizes and file counts show
    // where to clean either way.
    let nearly_full = |p: Option<u32>| p.is_some_and(|p| p >= MIN_USE_PERCENT);
    fs.status == "ok" && fs.df_listed && (nearly_full(fs.use_percent) || nearly_full(fs.inode_use_percent))
}

/// The host path of `name` inside host directory `dir`.
pub fn join_host(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// When a walk must stop.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub until: Instant,
    pub max_entries: u64,
}

/// What a walk found so far, shared with the collector so that a stuck walk still
/// yields it.
#[derive(Debug, Default)]
pub struct Tally {
    /// Each record, with whether it is complete.
    pub nodes: Vec<(Usage, bool)>,
    /// Depth-1 directories not started yet, in walk order.
    pub pending: VecDeque<String>,
}

/// The records of one walk: unfinished ones marked partial, directories never reached
/// added as partial with no bytes, largest first, at most `cap`.
pub fn finish(mount: &str, tally: Tally, cap: usize) -> Vec<Usage> {
    let mut out: Vec<Usage> = tally.nodes.into_iter().map(|(u, done)| Usage { partial: !done, ..u }).collect();
    let unstarted = |path| Usage { mount: mount.to_string(), path, depth: 1, partial: true, ..Default::default() };
    out.extend(tally.pending.into_iter().map(unstarted));
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    out.truncate(cap);
    out
}

struct Walker<'a> {
    dev: u64,
    mount: &'a str,
    bounds: &'a Bounds,
    progress: &'a Progress,
    sink: &'a Mutex<Tally>,
    cancel: &'a AtomicBool,
    /// Other mount points (host paths), and the directories that hold them.
    skip: &'a HashSet<String>,
    parents: HashSet<String>,
    /// Hard-linked inodes already counted at depth 1 (one set per walk).
    seen1: HashSet<(u64, u64)>,
    /// The same at depth 2 (one set per depth-1 directory).
    seen2: HashSet<(u64, u64)>,
    visited: u64,
}

/// One entry the walk counts.
struct Seen {
    path: PathBuf,
    host: String,
    is_dir: bool,
    bytes: u64,
    /// Whether it counts toward its depth-1 and its depth-2 record (hard links once).
    c1: bool,
    c2: bool,
}

impl Walker<'_> {
    fn cut(&self) -> bool {
        self.visited >= self.bounds.max_entries
            || self.cancel.load(Ordering::Relaxed)
            || Instant::now() >= self.bounds.until
    }

    /// Names in a directory, sorted, and whether each is a directory by its d_type;
    /// empty when it cannot be read (du reports and skips such directories). Reading
    /// ticks the progress and, when `bounded`, gives up (None) once the bounds cut the
    /// walk, so a directory of millions of entries neither stalls nor floods memory.
    fn list(&self, dir: &Path, label: &str, bounded: bool) -> Option<Vec<(OsString, bool)>> {
        let Ok(rd) = std::fs::read_dir(dir) else { return Some(Vec::new()) };
        let room = self.bounds.max_entries.saturating_sub(self.visited);
        let mut out = Vec::new();
        for e in rd.flatten() {
            if out.len() % 1024 == 0 {
                self.progress.step(label);
                if bounded && (out.len() as u64 > room || self.cut()) {
                    return None;
                }
            }
            out.push((e.file_name(), e.file_type().is_ok_and(|t| t.is_dir())));
        }
        out.sort();
        Some(out)
    }

    /// Stats `name` in `dir` (host path `dir_host`). None for other mount points (passed
    /// over without a stat, so that a hung mount below cannot stall the walk), for
    /// entries that vanished and for entries on another filesystem.
    fn visit(&mut self, dir: &Path, dir_host: &str, name: &OsStr, depth2: bool) -> Option<Seen> {
        let host = join_host(dir_host, &name.to_string_lossy());
        if self.parents.contains(dir_host) && self.skip.contains(&host) {
            return None;
        }
        self.progress.step(&host);
        self.visited += 1;
        let path = dir.join(name);
        let m = std::fs::symlink_metadata(&path).ok().filter(|m| m.dev() == self.dev)?;
        let (c1, c2) = if m.is_dir() || m.nlink() < 2 {
            (true, depth2)
        } else {
            let key = (m.dev(), m.ino());
            (self.seen1.insert(key), depth2 && self.seen2.insert(key))
        };
        Some(Seen { path, host, is_dir: m.is_dir(), bytes: m.blocks() * 512, c1, c2 })
    }

    fn push(&self, path: String, depth: u32, bytes: u64, files: u64, done: bool) -> usize {
        let mut t = self.sink.lock().expect("tally lock");
        t.nodes.push((Usage { mount: self.mount.to_string(), path, depth, bytes, files, partial: false }, done));
        t.nodes.len() - 1
    }

    fn add(&self, i: usize, bytes: u64, files: u64) {
        let mut t = self.sink.lock().expect("tally lock");
        t.nodes[i].0.bytes += bytes;
        t.nodes[i].0.files += files;
    }

    fn done(&self, i: usize) {
        self.sink.lock().expect("tally lock").nodes[i].1 = true;
    }

    /// Walks the top two levels below `root`; false when a bound cut it short.
    fn run(&mut self, root: &Path) -> bool {
        let top = self.list(root, self.mount, false).unwrap_or_default();
        let hosts: Vec<String> = top.iter().map(|(n, _)| join_host(self.mount, &n.to_string_lossy())).collect();
        self.sink.lock().expect("tally lock").pending = hosts
            .iter()
            .zip(&top)
            .filter(|(h, (_, dir))| *dir && !self.skip.contains(*h))
            .map(|(h, _)| h.clone())
            .collect();
        for (host, (name, _)) in hosts.iter().zip(&top) {
            if self.cut() {
                return false;
            }
            {
                let mut t = self.sink.lock().expect("tally lock");
                if t.pending.front() == Some(host) {
                    t.pending.pop_front();
                }
            }
            let Some(e) = self.visit(root, self.mount, name, false) else { continue };
            let bytes = if e.c1 { e.bytes } else { 0 };
            if !e.is_dir {
                if bytes >= MIN_FILE_BYTES {
                    self.push(e.host, 1, bytes, 1, true);
                }
                continue;
            }
            let i1 = self.push(e.host.clone(), 1, bytes, 0, false);
            self.seen2.clear();
            if !self.children(&e.path, &e.host, i1) {
                return false;
            }
            self.done(i1);
        }
        true
    }

    /// Walks depth-1 directory `dir`: its children get depth-2 records.
    fn children(&mut self, dir: &Path, host: &str, i1: usize) -> bool {
        let Some(names) = self.list(dir, host, true) else { return false };
        for (name, _) in names {
            if self.cut() {
                return false;
            }
            let Some(e) = self.visit(dir, host, &name, true) else { continue };
            if e.c1 {
                self.add(i1, e.bytes, u64::from(!e.is_dir));
            }
            if e.is_dir {
                let i2 = self.push(e.host.clone(), 2, e.bytes, 0, false);
                if !self.subtree(&e.path, &e.host, i1, i2) {
                    return false;
                }
                self.done(i2);
            } else if e.c2 && e.bytes >= MIN_FILE_BYTES {
                self.push(e.host, 2, e.bytes, 1, true);
            }
        }
        true
    }

    /// Adds everything below `dir` to records `i1` and `i2`; false when cut short.
    fn subtree(&mut self, dir: &Path, host: &str, i1: usize, i2: usize) -> bool {
        let mut stack = vec![(dir.to_path_buf(), host.to_string())];
        while let Some((d, h)) = stack.pop() {
            let Some(names) = self.list(&d, &h, true) else { return false };
            let ([mut b1, mut f1, mut b2, mut f2], mut whole) = ([0u64; 4], true);
            for (name, _) in names {
                if self.cut() {
                    whole = false;
                    break;
                }
                let Some(e) = self.visit(&d, &h, &name, true) else { continue };
                let file = u64::from(!e.is_dir);
                if e.c1 {
                    (b1, f1) = (b1 + e.bytes, f1 + file);
                }
                if e.c2 {
                    (b2, f2) = (b2 + e.bytes, f2 + file);
                }
                if e.is_dir {
                    stack.push((e.path, e.host));
                }
            }
            self.add(i1, b1, f1);
            self.add(i2, b2, f2);
            if !whole {
                return false;
            }
        }
        true
    }
}

/// Walks the filesystem mounted at `root` (host path `mount`) two levels down, leaving
/// its findings in `sink`. `skip` holds other mount points (never entered). Returns
/// false when a bound or `cancel` cut the walk short.
pub fn walk(
    root: &Path,
    mount: &str,
    skip: &HashSet<String>,
    bounds: &Bounds,
    progress: &Progress,
    sink: &Mutex<Tally>,
    cancel: &AtomicBool,
) -> bool {
    let Ok(meta) = std::fs::metadata(root) else { return true };
    let parents = skip.iter().filter_map(|p| p.rsplit_once('/')).map(|(d, _)| if d.is_empty() { "/" } else { d });
    let mut w = Walker {
        dev: meta.dev(),
        mount,
        bounds,
        progress,
        sink,
        cancel,
        skip,
        parents: parents.map(str::to_string).collect(),
        seen1: HashSet::new(),
        seen2: HashSet::new(),
        visited: 0,
    };
    w.run(root)
}

impl Collector for DiskUsage {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, ctx: &mut Ctx) -> Result<(), Halt> {
        let started = Instant::now();
        let full: Vec<String> =
            ctx.shared.filesystems.iter().filter(|f| qualifies(f)).map(|f| f.target.clone()).collect();
        let mounts: Vec<String> = ctx.shared.filesystems.iter().map(|f| f.target.clone()).collect();
        let mut lines = ctx.jsonl();
        for target in full {
            if let Err(stop) = ctx.check() {
                ctx.store_jsonl(names::DISK_USAGE, lines, started.elapsed());
                return Err(stop.into());
            }
            ctx.progress(&format!("disk usage of {target}"));
            let now = Instant::now();
            let deadline = ctx.limits().deadline;
            let latest = deadline.checked_sub(Duration::from_millis(100)).unwrap_or(deadline);
            let until = (now + PER_FS_TIME).min(started + TOTAL_TIME).max(now + MIN_TIME).min(latest);
            let bounds = Bounds { until, max_entries: MAX_ENTRIES };
            let skip: HashSet<String> = mounts.iter().filter(|m| **m != target).cloned().collect();
            let root = ctx.host(&target);
            let tally = Arc::new(Mutex::new(Tally::default()));
            let cancel = Arc::new(AtomicBool::new(false));
            let (sink, stop, mount) = (Arc::clone(&tally), Arc::clone(&cancel), target.clone());
            let _ = ctx.guarded(move |p| walk(&root, &mount, &skip, &bounds, p, &sink, &stop));
            // A walk abandoned as stuck must not go on if it ever wakes up.
            cancel.store(true, Ordering::Relaxed);
            // A walker that panicked (a bug) may have poisoned the lock; its data stands.
            let found = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
            finish(&target, found, MAX_RECORDS).iter().for_each(|u| lines.push(u));
        }
        ctx.store_jsonl(names::DISK_USAGE, lines, started.elapsed());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    /// A scratch directory removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!("snap-du-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
        fn file(&self, rel: &str, bytes: usize) {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::File::create(&p).unwrap().write_all(&vec![7u8; bytes]).unwrap();
        }
        fn alloc(&self, rel: &str) -> u64 {
            std::fs::symlink_metadata(self.0.join(rel)).unwrap().blocks() * 512
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn run(s: &Scratch, bounds: Bounds, skip: &[&str]) -> (bool, Vec<Usage>) {
        let tally = Mutex::new(Tally::default());
        let skip: HashSet<String> = skip.iter().map(|s| s.to_string()).collect();
        let complete = walk(&s.0, "/m", &skip, &bounds, &Progress::default(), &tally, &AtomicBool::new(false));
        (complete, finish("/m", tally.into_inner().unwrap(), MAX_RECORDS))
    }

    fn far() -> Bounds {
        Bounds { until: Instant::now() + Duration::from_secs(60), max_entries: MAX_ENTRIES }
    }

    fn find<'a>(v: &'a [Usage], path: &str) -> Option<&'a Usage> {
        v.iter().find(|u| u.path == path)
    }

    #[test]
    fn sizes_are_allocated_bytes_with_hard_links_once_symlinks_unfollowed_and_mounts_skipped() {
        let s = Scratch::new("sizes");
        s.file("a/big", 2 << 20);
        s.file("a/small", 10);
        s.file("a/sub/deep", 1536 << 10);
        s.file("a/sub/mnt/hidden", 2 << 20);
        s.file("b/link1", 1200 << 10);
        std::fs::hard_link(s.0.join("b/link1"), s.0.join("b/link2")).unwrap();
        std::fs::create_dir(s.0.join("y")).unwrap();
        std::fs::hard_link(s.0.join("a/big"), s.0.join("y/big-link")).unwrap();
        std::os::unix::fs::symlink(s.0.join("a"), s.0.join("c")).unwrap();
        s.file("top.bin", 1100 << 10);
        s.file("mnt/z", 10);
        let (complete, recs) = run(&s, far(), &["/m/mnt", "/m/a/sub/mnt", "/elsewhere"]);
        assert!(complete);

        let a = find(&recs, "/m/a").unwrap();
        let want = ["a", "a/big", "a/small", "a/sub", "a/sub/deep"].iter().map(|r| s.alloc(r)).sum::<u64>();
        assert_eq!((a.bytes, a.files, a.depth, a.partial), (want, 3, 1, false), "mount points are not entered");
        let sub = find(&recs, "/m/a/sub").unwrap();
        assert_eq!((sub.bytes, sub.files, sub.depth), (s.alloc("a/sub") + s.alloc("a/sub/deep"), 1, 2));
        assert_eq!(find(&recs, "/m/a/big").unwrap().bytes, s.alloc("a/big"));
        assert!(find(&recs, "/m/a/small").is_none(), "files under 1 MiB get no record");

        let b = find(&recs, "/m/b").unwrap();
        assert_eq!((b.bytes, b.files), (s.alloc("b") + s.alloc("b/link1"), 1));
        assert!(find(&recs, "/m/b/link1").is_some() && find(&recs, "/m/b/link2").is_none());
        // Linked from a/: du -s /* counts it under a only, du -s y/* counts it.
        assert_eq!(find(&recs, "/m/y").unwrap().bytes, s.alloc("y"));
        assert_eq!(find(&recs, "/m/y/big-link").unwrap().bytes, s.alloc("a/big"));
        assert!(find(&recs, "/m/c").is_none(), "a symlink is not followed");
        assert!(find(&recs, "/m/mnt").is_none(), "another mount is not reported");
        assert_eq!(find(&recs, "/m/top.bin").unwrap().depth, 1);
        assert!(recs.windows(2).all(|w| w[0].bytes >= w[1].bytes), "largest first");
    }

    #[test]
    fn an_entry_bound_marks_unfinished_and_unstarted_directories_partial() {
        let s = Scratch::new("bound");
        for d in ["a", "b", "c"] {
            for i in 0..5 {
                s.file(&format!("{d}/d/{i}"), 100);
            }
        }
        let (complete, recs) = run(&s, Bounds { max_entries: 4, ..far() }, &[]);
        assert!(!complete);
        let a = find(&recs, "/m/a").unwrap();
        assert!(a.partial && find(&recs, "/m/a/d").unwrap().partial);
        for p in ["/m/b", "/m/c"] {
            let u = find(&recs, p).unwrap();
            assert_eq!((u.partial, u.bytes, u.depth), (true, 0, 1), "{p}");
        }
        let (complete, recs) = run(&s, Bounds { until: Instant::now(), ..far() }, &[]);
        assert!(!complete);
        assert_eq!(recs.len(), 3);
        assert!(recs.iter().all(|u| u.partial && u.bytes == 0));
    }

    #[test]
    fn finish_sorts_largest_first_and_caps_and_only_nearly_full_filesystems_qualify() {
        let u = |path: &str, bytes| (Usage { path: path.into(), bytes, depth: 1, ..Default::default() }, true);
        let t = Tally { nodes: vec![u("/s", 1), u("/l", 9), u("/m", 5)], pending: VecDeque::from(["/p".to_string()]) };
        let out = finish("/", t, 3);
        assert_eq!(out.iter().map(|u| u.path.as_str()).collect::<Vec<_>>(), ["/l", "/m", "/s"]);
        assert!(out.iter().all(|u| !u.partial));

        let fs = |status: &str, df_listed, use_percent| Filesystem {
            status: status.into(),
            df_listed,
            use_percent,
            ..Default::default()
        };
        assert!(qualifies(&fs("ok", true, Some(85))));
        assert!(!qualifies(&fs("ok", true, Some(84))) && !qualifies(&fs("ok", false, Some(100))));
        assert!(!qualifies(&fs("timed_out", true, Some(100))) && !qualifies(&fs("ok", true, None)));
        assert_eq!((join_host("/", "var"), join_host("/var", "log")), ("/var".into(), "/var/log".into()));
    }
}
