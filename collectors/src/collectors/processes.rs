//! Per-process raw files, every thread's stat, and the open-file scan (what `lsof`
//! shows), taken in one pass over `/proc/<pid>` so that each process is visited once.
//!
//! Each process is one guarded job: if a read of a task stuck in the kernel blocks
//! (cmdline and io take the task's mm lock), that read is recorded as timed out, the
//! process's remaining reads are skipped, and the scan moves on to the next process.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use snap_bundle::manifest::EntryStatus;
use snap_bundle::names;
use snap_bundle::scan::{OpenFile, SocketOwner};

use crate::ctx::{read_capped, Ctx, JsonLines, ReadOutcome};
use crate::guard::{Pending, Progress, Stuck};
use crate::{Collector, Halt};

pub struct Processes;

/// Files copied for every process. `environ` is added only with `--environ`.
pub const PER_PROCESS: &[&str] = &[
    "stat",
    "status",
    "statm",
    "cmdline",
    "io",
    "limits",
    "oom_score",
    "oom_score_adj",
    "wchan",
    "cgroup",
    "schedstat",
];

/// The pids under the collector root's /proc, ascending.
pub fn list_pids(ctx: &Ctx) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir(ctx.host("/proc"))
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// User names by uid, from the collector root's /etc/passwd.
fn users(ctx: &mut Ctx) -> HashMap<u32, String> {
    let out = ctx.read("/etc/passwd");
    snap_bundle::text::lossy(&out.data)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

/// What one process job gathered, possibly partially.
#[derive(Default)]
struct Capture {
    files: Vec<(String, ReadOutcome)>,
    open_files: Vec<OpenFile>,
    uid: u32,
    comm: String,
}

impl Collector for Processes {
    fn name(&self) -> &'static str {
        "processes"
    }

    fn collect(&self, ctx: &mut Ctx) -> Result<(), Halt> {
        let started = Instant::now();
        let mut scan = Scan { users: users(ctx), lines: ctx.jsonl() };
        let pids = list_pids(ctx);
        let cap = ctx.limits().max_file_bytes;
        let environ = ctx.environ;
        let total = pids.len();
        let stat_cache = StatCache::default();
        // One job per worker in flight; results are written in pid order while the
        // workers read the next processes.
        let mut inflight = VecDeque::new();
        for (i, pid) in pids.into_iter().enumerate() {
            if i % 64 == 0 {
                ctx.progress(&format!("processes ({i}/{total})"));
            }
            if let Err(stop) = ctx.check() {
                inflight.into_iter().for_each(|job| scan.finish(ctx, job));
                ctx.store_jsonl(names::OPEN_FILES, scan.lines, started.elapsed());
                return Err(stop.into());
            }
            while !ctx.has_idle_worker() {
                let job = inflight.pop_front().expect("a busy worker has a job in flight");
                scan.finish(ctx, job);
            }
            let proc_dir = ctx.host(&format!("/proc/{pid}"));
            let capture_sink = Arc::new(Mutex::new(Capture::default()));
            let sink = Arc::clone(&capture_sink);
            let cache = Arc::clone(&stat_cache);
            let pending = ctx.submit(move |p| capture(&proc_dir, pid, (cap, environ), &cache, p, &sink));
            inflight.push_back(Job { pid, started: Instant::now(), capture: capture_sink, pending });
        }
        inflight.into_iter().for_each(|job| scan.finish(ctx, job));
        ctx.store_jsonl(names::OPEN_FILES, scan.lines, started.elapsed());
        Ok(())
    }
}

/// One process being read by a worker.
struct Job {
    pid: u32,
    started: Instant,
    capture: Arc<Mutex<Capture>>,
    pending: Result<Pending<()>, Stuck>,
}

/// The open-file scan as it accumulates.
struct Scan {
    users: HashMap<u32, String>,
    lines: JsonLines,
}

impl Scan {
    /// Waits for a process job and writes what it gathered.
    fn finish(&mut self, ctx: &mut Ctx, job: Job) {
        let Job { pid, started, capture, pending } = job;
        let run = pending.and_then(|p| ctx.wait(p));
        let cap_data = std::mem::take(&mut *capture.lock().expect("capture lock"));
        if let Err(stuck) = run {
            // Record the read that blocked; the rest of this process is skipped.
            let what = match &stuck {
                Stuck::TimedOut { label } | Stuck::Deadline { label } => label.clone(),
                _ => format!("/proc/{pid}"),
            };
            ctx.put(&names::raw(&what), ReadOutcome::stuck(&stuck, started.elapsed()));
        }
        let user = self.users.get(&cap_data.uid).cloned().unwrap_or_else(|| cap_data.uid.to_string());
        for (host, out) in cap_data.files {
            ctx.add_bytes_read(out.data.len() as u64);
            ctx.put(&names::raw(&host), out);
        }
        for mut f in cap_data.open_files {
            f.pid = pid;
            f.uid = cap_data.uid;
            f.user.clone_from(&user);
            f.command.clone_from(&cap_data.comm);
            if let Some(inode) = socket_inode(&f.target) {
                ctx.shared.socket_owners.entry(inode).or_default().push(SocketOwner {
                    pid,
                    program: cap_data.comm.clone(),
                    fd: f.fd.parse().unwrap_or(0),
                });
            }
            self.lines.push(&f);
        }
    }
}

/// The inode of a `socket:[123]` link target.
pub fn socket_inode(target: &str) -> Option<u64> {
    target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Size and link count of mapped files by (device, inode), shared by all processes.
type StatCache = Arc<Mutex<HashMap<(String, u64), (u64, u64)>>>;

fn capture(proc_dir: &Path, pid: u32, opts: (u64, bool), cache: &StatCache, p: &Progress, sink: &Mutex<Capture>) {
    let (cap, environ) = opts;
    let host = |rel: &str| format!("/proc/{pid}/{rel}");
    if let Ok(meta) = std::fs::metadata(proc_dir) {
        sink.lock().expect("capture lock").uid = meta.uid();
    }
    let files = PER_PROCESS.iter().copied().chain(environ.then_some("environ"));
    for rel in files {
        let h = host(rel);
        p.step(&h);
        let out = read_capped(&proc_dir.join(rel), cap);
        let mut s = sink.lock().expect("capture lock");
        if rel == "status" {
            if let Some(name) = snap_bundle::text::lossy(&out.data).lines().find_map(|l| l.strip_prefix("Name:")) {
                s.comm = name.trim().to_string();
            }
        }
        let gone = out.status == EntryStatus::Missing && rel == "stat";
        s.files.push((h, out));
        if gone {
            return; // The process exited: its other files are gone too.
        }
    }

    let task_dir = proc_dir.join("task");
    p.step(&host("task"));
    let mut tids: Vec<u32> = std::fs::read_dir(&task_dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    tids.sort_unstable();
    for tid in tids {
        let h = host(&format!("task/{tid}/stat"));
        p.step(&h);
        let out = read_capped(&task_dir.join(format!("{tid}/stat")), cap);
        sink.lock().expect("capture lock").files.push((h, out));
    }

    let mut exe = None;
    for (fd, link) in [("cwd", "cwd"), ("rtd", "root"), ("txt", "exe")] {
        p.step(&host(link));
        if let Some(f) = open_file(&proc_dir.join(link), fd, None) {
            if fd == "txt" {
                exe = Some((f.device.clone(), f.inode));
            }
            sink.lock().expect("capture lock").open_files.push(f);
        }
    }
    p.step(&host("maps"));
    if let Ok(maps) = std::fs::read_to_string(proc_dir.join("maps")) {
        for m in mapped_files(&maps) {
            if exe.as_ref().is_some_and(|(d, i)| *d == m.device && *i == m.inode) {
                continue; // the executable is listed once, as txt
            }
            p.step(&host("map_files"));
            let f = mapped_file(proc_dir, m, cache);
            sink.lock().expect("capture lock").open_files.push(f);
        }
    }
    let fd_dir = proc_dir.join("fd");
    p.step(&host("fd"));
    let mut fds: Vec<u32> = match std::fs::read_dir(&fd_dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect(),
        Err(e) => {
            // As lsof does, say that the descriptors could not be listed (a non-root run).
            if e.kind() != std::io::ErrorKind::NotFound {
                sink.lock().expect("capture lock").open_files.push(unreadable("NOFD", &host("fd"), "opendir", &e));
            }
            Vec::new()
        }
    };
    fds.sort_unstable();
    for fd in fds {
        p.step(&host(&format!("fd/{fd}")));
        let info = proc_dir.join(format!("fdinfo/{fd}"));
        if let Some(f) = open_file(&fd_dir.join(fd.to_string()), &fd.to_string(), Some(&info)) {
            sink.lock().expect("capture lock").open_files.push(f);
        }
    }
}

/// One distinct file mapped into a process, from a line of `/proc/<pid>/maps`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// `start-end` of the first mapping of this file, the name under map_files/.
    pub range: String,
    /// Device as `major,minor` (decimal, as lsof prints it).
    pub device: String,
    pub inode: u64,
    pub path: String,
    pub deleted: bool,
}

/// The distinct files mapped into a process (what lsof lists as `mem`, or `DEL` when
/// deleted), in order of first appearance. Anonymous and special mappings are skipped.
pub fn mapped_files(maps: &str) -> Vec<Mapping> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for line in maps.lines() {
        let mut f = line.splitn(6, ' ');
        let (Some(range), Some(_perms), Some(_off), Some(dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let path = f.next().unwrap_or("").trim_start();
        let Ok(inode) = inode.parse::<u64>() else { continue };
        if inode == 0 || !path.starts_with('/') {
            continue;
        }
        let Some((maj, min)) = dev.split_once(':') else { continue };
        let (Ok(maj), Ok(min)) = (u32::from_str_radix(maj, 16), u32::from_str_radix(min, 16)) else { continue };
        let device = format!("{maj},{min}");
        if !seen.insert((device.clone(), inode)) {
            continue;
        }
        let deleted = path.ends_with(" (deleted)");
        out.push(Mapping {
            range: range.to_string(),
            device,
            inode,
            path: path.strip_suffix(" (deleted)").unwrap_or(path).to_string(),
            deleted,
        });
    }
    out
}

/// Describes a mapped file, with size and link count from map_files/ (which reaches
/// deleted files too) or, failing that, from its path.
fn mapped_file(proc_dir: &Path, m: Mapping, cache: &StatCache) -> OpenFile {
    let key = (m.device.clone(), m.inode);
    let cached = cache.lock().expect("stat cache lock").get(&key).copied();
    let meta = cached.or_else(|| {
        // The path is cheaper to stat than map_files/ and is shared by every process
        // mapping the same library; map_files/ reaches deleted and memfd files.
        let by_path = (!m.deleted).then(|| std::fs::metadata(&m.path).ok()).flatten();
        let meta = by_path
            .filter(|x| x.ino() == m.inode)
            .or_else(|| std::fs::metadata(proc_dir.join("map_files").join(&m.range)).ok())
            .filter(|x| x.ino() == m.inode)
            .map(|x| (x.size(), x.nlink()))?;
        cache.lock().expect("stat cache lock").insert(key, meta);
        Some(meta)
    });
    OpenFile {
        fd: if m.deleted { "DEL" } else { "mem" }.to_string(),
        kind: "REG".to_string(),
        target: if m.deleted { format!("{} (deleted)", m.path) } else { m.path.clone() },
        name: m.path,
        device: m.device,
        inode: m.inode,
        size: meta.map(|x| x.0),
        nlink: meta.map(|x| x.1).unwrap_or(u64::from(!m.deleted)),
        deleted: m.deleted,
        ..Default::default()
    }
}

/// Describes one open file from its /proc link; None when it vanished meanwhile.
/// A line for something that could not be read, as lsof prints one
/// (`cwd unknown /proc/1/cwd (readlink: Permission denied)`).
fn unreadable(fd: &str, host_path: &str, call: &str, e: &std::io::Error) -> OpenFile {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    let target = format!("{host_path} ({call}: {text})");
    OpenFile {
        fd: fd.to_string(),
        kind: "unknown".into(),
        name: target.clone(),
        target,
        error: Some(text),
        ..Default::default()
    }
}

fn open_file(link: &Path, fd: &str, fdinfo: Option<&PathBuf>) -> Option<OpenFile> {
    let target = match std::fs::read_link(link) {
        Ok(t) => t.to_string_lossy().into_owned(),
        // A descriptor closed meanwhile, or a kernel thread without an executable.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || fdinfo.is_some() => return None,
        Err(e) => {
            let shown = link.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let pid =
                link.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            return Some(unreadable(fd, &format!("/proc/{pid}/{shown}"), "readlink", &e));
        }
    };
    let mut f = OpenFile { fd: fd.to_string(), ..Default::default() };
    if let Some(info) = fdinfo {
        // The link's own permission bits carry the descriptor's access mode.
        if let Ok(l) = std::fs::symlink_metadata(link) {
            f.mode = match (l.permissions().mode() & 0o400 != 0, l.permissions().mode() & 0o200 != 0) {
                (true, true) => "u",
                (false, true) => "w",
                _ => "r",
            }
            .to_string();
        }
        if socket_inode(&target).is_none() {
            if let Ok(text) = std::fs::read_to_string(info) {
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("pos:") {
                        f.offset = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("flags:") {
                        f.flags = v.trim().to_string();
                    }
                }
            }
        } else {
            f.offset = Some(0);
        }
    }
    if let Some(inode) = socket_inode(&target) {
        // The link names the inode; a stat would only add sockfs's device. Sockets are
        // most of the descriptors on a busy server, so the stat is worth saving.
        f.kind = socket_kind(link).to_string();
        f.inode = inode;
        f.nlink = 1;
        f.name.clone_from(&target);
        f.target = target;
        return Some(f);
    }
    match std::fs::metadata(link) {
        Ok(m) => {
            let kind = m.mode() & libc::S_IFMT;
            f.kind = match kind {
                libc::S_IFREG => "REG",
                libc::S_IFDIR => "DIR",
                libc::S_IFCHR => "CHR",
                libc::S_IFBLK => "BLK",
                libc::S_IFIFO => "FIFO",
                libc::S_IFLNK => "LINK",
                libc::S_IFSOCK => socket_kind(link),
                0 => "a_inode",
                _ => "unknown",
            }
            .to_string();
            let dev = if matches!(kind, libc::S_IFCHR | libc::S_IFBLK) { m.rdev() } else { m.dev() };
            f.device = format!("{},{}", libc::major(dev), libc::minor(dev));
            f.inode = m.ino();
            f.nlink = m.nlink();
            if matches!(kind, libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK) {
                f.size = Some(m.size());
            }
        }
        Err(e) => {
            f.kind = "unknown".into();
            f.error = Some(e.to_string());
        }
    }
    f.deleted = target.ends_with(" (deleted)") || (f.kind == "REG" && f.nlink == 0 && f.error.is_none());
    f.name = target.strip_suffix(" (deleted)").unwrap_or(&target).to_string();
    f.target = target;
    Some(f)
}

/// lsof's TYPE for a socket: IPv4, IPv6, unix, netlink or sock, from the socket's
/// `system.sockprotoname` attribute.
fn socket_kind(link: &Path) -> &'static str {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(link.as_os_str().as_bytes()) else { return "sock" };
    let mut buf = [0u8; 32];
    // SAFETY: c is NUL-terminated, buf is writable for its length.
    let n = unsafe {
        libc::getxattr(c.as_ptr(), c"system.sockprotoname".as_ptr(), buf.as_mut_ptr() as *mut libc::c_void, buf.len())
    };
    if n <= 0 {
        return "sock";
    }
    let name = &buf[..n as usize];
    let name = name.strip_suffix(b"\0").unwrap_or(name);
    match name {
        b"TCP" | b"UDP" | b"RAW" | b"UDP-Lite" | b"PING" | b"SCTP" | b"MPTCP" => "IPv4",
        b"TCPv6" | b"UDPv6" | b"RAWv6" | b"UDPLITEv6" | b"PINGv6" | b"SCTPv6" | b"MPTCPv6" => "IPv6",
        b"UNIX" | b"UNIX-STREAM" | b"UNIX-DGRAM" => "unix",
        b"NETLINK" => "netlink",
        b"PACKET" => "pack",
        _ => "sock",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines from /proc/<pid>/maps of a python3 process on Debian 12 (kernel 6.x),
    // with a deleted memfd mapping and anonymous regions.
    const MAPS: &str = "\
55d0c8a00000-55d0c8a01000 r--p 00000000 fe:00 18504                      /root/.pyenv/versions/3.11.7/bin/python3.11
55d0c8a01000-55d0c8a02000 r-xp 00001000 fe:00 18504                      /root/.pyenv/versions/3.11.7/bin/python3.11
55d0c9b6e000-55d0c9c8e000 rw-p 00000000 00:00 0                          [heap]
7f3a1c000000-7f3a1c028000 r--p 00000000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f3a1c028000-7f3a1c19d000 r-xp 00028000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
7f3a1d000000-7f3a1d100000 rw-s 00000000 00:01 1024                       /memfd:sealed-91173221a7ea (deleted)
7ffc7e5d1000-7ffc7e5f2000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn mapped_files_are_distinct_and_skip_anonymous_regions() {
        let m = mapped_files(MAPS);
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m[0].path, "/root/.pyenv/versions/3.11.7/bin/python3.11");
        assert_eq!(m[0].device, "254,0");
        assert_eq!(m[1].inode, 326279);
        assert_eq!(m[1].range, "7f3a1c000000-7f3a1c028000");
        assert!(m[2].deleted);
        assert_eq!(m[2].path, "/memfd:sealed-91173221a7ea");
        assert_eq!(m[2].device, "0,1");
    }

    #[test]
    fn socket_inodes() {
        assert_eq!(socket_inode("socket:[27362]"), Some(27362));
        assert_eq!(socket_inode("pipe:[27362]"), None);
    }
}
