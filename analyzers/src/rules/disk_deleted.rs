//! `disk.deleted_open`: space held by deleted files that processes still have open, per
//! process and per filesystem (what `lsof +L1` shows, and why df and du disagree).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use snap_bundle::names;
use snap_bundle::scan::{Filesystem, OpenFile};

use super::disk_space::human;
use crate::{Evidence, Finding, Input, Need, Rule, Severity, Skip};

pub struct DeletedOpen;

/// Bytes held (by one process, or on one filesystem) from which the rule reports (info).
const INFO_BYTES: u64 = 1 << 20;
/// Bytes held from which it warns.
const WARN_BYTES: u64 = 100 << 20;
/// Share of a filesystem's size held from which it warns.
const WARN_PERCENT_OF_FS: f64 = 5.0;
/// Files listed per finding.
const MAX_LISTED: usize = 20;
/// Linux's `__O_TMPFILE` (octal, as fdinfo prints flags; x86, arm, most arches).
const O_TMPFILE_BIT: u64 = 0o20000000;

/// Names of shared-memory objects that look like paths but live on the kernel's internal
/// shmem mount (RAM, no disk): memfd_create, SysV shm, shared anonymous and GPU buffers.
const NOT_ON_DISK: &[&str] = &["/memfd:", "/SYSV", "/dev/zero", "/drm mm object", "/i915", "/anon_hugepage", "/["];

const MAPPING: &str = "each file's DEVICE (major,minor as lsof prints it, from stat) is matched to the \
                       mount whose mountinfo major:minor is the same; a file whose device matches no \
                       mount (btrfs subvolumes report their own device) is matched by the longest \
                       mount point prefixing its path";

impl Rule for DeletedOpen {
    fn id(&self) -> &'static str {
        "disk.deleted_open"
    }

    fn detects(&self) -> &'static str {
        "deleted files still held open, whose space df counts as used but du cannot find"
    }

    fn thresholds(&self) -> &'static str {
        "reported per process holding at least 1 MiB of deleted files (info), warning from 100 MiB \
         or from 5 % of the filesystem's size; the same thresholds apply to the total per \
         filesystem. Counted: regular files open on a numbered descriptor, deleted (link count 0 \
         or '(deleted)' target), by their size, each (device, inode) once per process and once \
         per filesystem (forked workers sharing one log descriptor hold its space once). Not \
         counted: memfd and other shared-memory objects (/memfd:, /SYSV, /dev/zero, GPU buffers) \
         which live on the kernel's internal shmem mount, i.e. RAM, not a filesystem df shows; \
         files whose device is on no mount of the scan; memory mappings (lsof's DEL, mem, txt), \
         which are mostly libraries and binaries replaced by an upgrade (small, and a restart \
         matter, not a space one) or shared memory; and the collector's own unnamed scratch \
         files (O_TMPFILE held by snap). Deleted files on tmpfs are counted: they take tmpfs \
         (RAM) space that df shows as used. Size is st_size, so a sparse file is overstated. \
         The usual cause is log rotation that renames or deletes a log while the application \
         keeps writing to its descriptor: restarting releases the space, truncating through \
         /proc/<pid>/fd/<fd> frees it without a restart, and copytruncate or a reopen signal \
         in the rotation prevents it."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["scan/open_files.jsonl", "scan/filesystems.jsonl (optional: the filesystem of each file)"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let open = &input.descriptors()?.deleted;
        let filesystems: &[Filesystem] = match input.filesystems() {
            Ok(f) => f,
            Err(Skip::Missing(_)) | Err(Skip::Bad { .. }) => &[],
        };
        let mounts = Mounts::new(filesystems);
        let held: Vec<Held> = open.iter().filter(|f| counts(f)).map(|f| Held::new(f, &mounts)).collect();
        let held: Vec<Held> = held.into_iter().filter(|h| h.mount.is_some() || filesystems.is_empty()).collect();

        let mut findings = Vec::new();
        // Per process.
        let mut by_pid: BTreeMap<u32, Vec<&Held>> = BTreeMap::new();
        for h in &held {
            by_pid.entry(h.file.pid).or_default().push(h);
        }
        for (pid, files) in by_pid {
            let command = files[0].file.command.clone();
            let (total, per_fs) = totals(&files);
            let Some(severity) = severity(total, &per_fs, &mounts) else { continue };
            let fs_list: Vec<String> = per_fs.keys().cloned().collect();
            let fds: Vec<String> = files.iter().map(|h| h.file.fd.clone()).collect();
            let truncate: Vec<String> = files
                .iter()
                .filter(|h| h.file.size.unwrap_or(0) > 0)
                .take(5)
                .map(|h| format!("`: > /proc/{pid}/fd/{}`", h.file.fd))
                .collect();
            findings.push(
                Finding::new(
                    self.id(),
                    severity,
                    format!("pid {pid} ({command})"),
                    format!(
                        "pid {pid} ({command}) holds {} in {} deleted file{} on {}",
                        human(total),
                        files.len(),
                        if files.len() == 1 { "" } else { "s" },
                        fs_list.join(", ")
                    ),
                )
                .evidence(file_evidence(&files))
                .fact("pid", pid)
                .fact("command", command.clone())
                .fact("held_bytes", total)
                .fact("files", files.iter().take(50).map(|h| h.json()).collect::<Vec<Value>>())
                .fact("fds", fds)
                .fact("held_bytes_by_filesystem", json!(per_fs))
                .fact("filesystem_mapping", MAPPING)
                .advice(format!(
                    "Restart {command} (pid {pid}) to release the space, or free it without a \
                     restart by truncating the deleted files through their descriptors: {}. \
                     Then fix the log rotation that deleted files still in use: use copytruncate, \
                     or have the rotation signal the application to reopen its files (postrotate: \
                     a reload or SIGHUP).",
                    truncate.join(", ")
                )),
            );
        }

        // Per filesystem.
        let mut by_fs: BTreeMap<String, Vec<&Held>> = BTreeMap::new();
        for h in &held {
            by_fs.entry(h.fs_label()).or_default().push(h);
        }
        for (label, files) in by_fs {
            let (total, _) = totals(&files);
            let fs = files[0].mount;
            let per_fs = BTreeMap::from([(label.clone(), total)]);
            let Some(severity) = severity(total, &per_fs, &mounts) else { continue };
            let pids: BTreeSet<u32> = files.iter().map(|h| h.file.pid).collect();
            let holders: Vec<String> = pids
                .iter()
                .map(|p| {
                    let c = files.iter().find(|h| h.file.pid == *p).map(|h| h.file.command.as_str()).unwrap_or("?");
                    format!("pid {p} ({c})")
                })
                .collect();
            let inodes: BTreeSet<(&str, u64)> = files.iter().map(|h| (h.file.device.as_str(), h.file.inode)).collect();
            let mut f = Finding::new(
                self.id(),
                severity,
                label.clone(),
                format!(
                    "{} of deleted files still open on {label} ({} file{}, held by {})",
                    human(total),
                    inodes.len(),
                    if inodes.len() == 1 { "" } else { "s" },
                    holders.join(", ")
                ),
            )
            .evidence(file_evidence(&files))
            .fact("mount", label.clone())
            .fact("held_bytes", total)
            .fact("files", inodes.len())
            .fact("pids", pids.iter().copied().collect::<Vec<u32>>())
            .fact("filesystem_mapping", MAPPING);
            if let Some(fs) = fs {
                f = f
                    .fact("size_bytes", fs.size_bytes)
                    .fact("used_bytes", fs.used_bytes)
                    .fact("avail_bytes", fs.avail_bytes)
                    .fact("fstype", fs.fstype.clone())
                    .fact("device", fs.device.clone());
                if fs.size_bytes > 0 {
                    f = f.fact("held_percent_of_size", round2(total as f64 * 100.0 / fs.size_bytes as f64));
                }
                f = f.evidence(
                    Evidence::entry(names::FILESYSTEMS)
                        .value("target", fs.target.clone())
                        .value("device", fs.device.clone())
                        .value("size_bytes", fs.size_bytes)
                        .value("used_bytes", fs.used_bytes)
                        .value("avail_bytes", fs.avail_bytes),
                );
            }
            findings.push(f.advice(format!(
                "df counts this space as used but du cannot see it, since the files have no name. \
                 It comes back when {} close{} the files: restart the holding processes, or truncate each file \
                 through /proc/<pid>/fd/<fd> (`: > /proc/PID/fd/N`). Fix the rotation that \
                 deletes files still open (copytruncate, or signal the application to reopen).",
                holders.join(", "),
                if holders.len() == 1 { "s" } else { "" }
            )));
        }
        Ok(findings)
    }
}

/// Whether an open-file record is a deleted regular file held on a descriptor that takes
/// filesystem space.
fn counts(f: &OpenFile) -> bool {
    f.deleted
        && f.kind == "REG"
        && f.size.is_some()
        && !f.fd.is_empty()
        && f.fd.bytes().all(|b| b.is_ascii_digit())
        && NOT_ON_DISK.iter().all(|p| !f.name.starts_with(p))
        && !collector_scratch(f)
}

/// snap's own unnamed spool files (O_TMPFILE) in its output directory.
fn collector_scratch(f: &OpenFile) -> bool {
    f.command == "snap" && u64::from_str_radix(&f.flags, 8).is_ok_and(|fl| fl & O_TMPFILE_BIT != 0)
}

/// Mounts by device, and df-listed mounts for the path fallback.
struct Mounts<'a> {
    by_device: BTreeMap<String, &'a Filesystem>,
    listed: Vec<&'a Filesystem>,
}

impl<'a> Mounts<'a> {
    fn new(all: &'a [Filesystem]) -> Mounts<'a> {
        let mut by_device: BTreeMap<String, &Filesystem> = BTreeMap::new();
        for fs in all {
            // Several mounts of one device (bind mounts): prefer the one df lists, then the
            // shortest mount point.
            let key = fs.device.replace(':', ",");
            let better = match by_device.get(&key) {
                None => true,
                Some(old) => {
                    (fs.df_listed, std::cmp::Reverse(fs.target.len()))
                        > (old.df_listed, std::cmp::Reverse(old.target.len()))
                }
            };
            if better && !fs.device.is_empty() {
                by_device.insert(key, fs);
            }
        }
        let listed = all.iter().filter(|f| f.df_listed).collect();
        Mounts { by_device, listed }
    }

    fn of(&self, f: &OpenFile) -> Option<&'a Filesystem> {
        if let Some(fs) = self.by_device.get(&f.device) {
            return Some(fs);
        }
        self.listed.iter().filter(|fs| under(&f.name, &fs.target)).max_by_key(|fs| fs.target.len()).copied()
    }

    fn size_of(&self, label: &str) -> u64 {
        self.listed.iter().chain(self.by_device.values()).find(|f| f.target == label).map_or(0, |f| f.size_bytes)
    }
}

/// Whether `path` is `mount` or below it.
fn under(path: &str, mount: &str) -> bool {
    mount == "/" || path == mount || path.strip_prefix(mount).is_some_and(|r| r.starts_with('/'))
}

struct Held<'a> {
    file: &'a OpenFile,
    mount: Option<&'a Filesystem>,
}

impl<'a> Held<'a> {
    fn new(file: &'a OpenFile, mounts: &Mounts<'a>) -> Held<'a> {
        Held { file, mount: mounts.of(file) }
    }

    fn fs_label(&self) -> String {
        match self.mount {
            Some(fs) => fs.target.clone(),
            None => format!("unknown filesystem (device {})", self.file.device),
        }
    }

    fn json(&self) -> Value {
        json!({
            "fd": self.file.fd,
            "path": self.file.name,
            "size": self.file.size,
            "device": self.file.device,
            "inode": self.file.inode,
            "mount": self.fs_label(),
        })
    }
}

/// Bytes held in all, and per filesystem label, each (device, inode) counted once.
fn totals(files: &[&Held]) -> (u64, BTreeMap<String, u64>) {
    let mut seen = BTreeSet::new();
    let mut total = 0u64;
    let mut per_fs: BTreeMap<String, u64> = BTreeMap::new();
    for h in files {
        if !seen.insert((h.file.device.as_str(), h.file.inode)) {
            continue;
        }
        let size = h.file.size.unwrap_or(0);
        total = total.saturating_add(size);
        *per_fs.entry(h.fs_label()).or_default() += size;
    }
    (total, per_fs)
}

fn severity(total: u64, per_fs: &BTreeMap<String, u64>, mounts: &Mounts) -> Option<Severity> {
    let big_share = per_fs.iter().any(|(label, bytes)| {
        let size = mounts.size_of(label);
        size > 0 && *bytes as f64 * 100.0 / size as f64 >= WARN_PERCENT_OF_FS && *bytes >= INFO_BYTES
    });
    if total >= WARN_BYTES || big_share {
        Some(Severity::Warning)
    } else if total >= INFO_BYTES {
        Some(Severity::Info)
    } else {
        None
    }
}

fn file_evidence(files: &[&Held]) -> Evidence {
    let mut sorted: Vec<&&Held> = files.iter().collect();
    sorted.sort_by(|a, b| b.file.size.cmp(&a.file.size).then_with(|| a.file.pid.cmp(&b.file.pid)));
    let mut e = Evidence::entry(names::OPEN_FILES);
    for h in sorted.iter().take(MAX_LISTED) {
        let f = h.file;
        e = e.line(format!(
            "{} {} {}{} REG {} {} {} {}",
            f.command,
            f.pid,
            f.fd,
            f.mode,
            f.device,
            f.size.unwrap_or(0),
            f.inode,
            f.target
        ));
    }
    if files.len() > MAX_LISTED {
        e = e.line(format!("... and {} more", files.len() - MAX_LISTED));
    }
    e
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::disk_space::tests::HEALTHY;
    use crate::rules::testing::bundle_with;

    /// Real lines from an idle Debian 12 VM: a memfd-executed binary (runc-style), the
    /// collector's own O_TMPFILE spools, an ordinary open log and a deleted 4 KiB file.
    const IDLE: &str = r#"{"pid":1047,"command":"memfd:sealed-91","uid":0,"user":"root","fd":"txt","mode":"","type":"REG","target":"/memfd:sealed-91173221a7ea (deleted)","name":"/memfd:sealed-91173221a7ea","device":"0,1","inode":1024,"size":1531760,"nlink":0,"deleted":true}
{"pid":4538,"command":"snap","uid":0,"user":"root","fd":"4","mode":"u","type":"REG","target":"/tmp/disk-x/#10141730 (deleted)","name":"/tmp/disk-x/#10141730","device":"254,0","inode":10141730,"size":4720500,"offset":4720500,"nlink":0,"deleted":true,"flags":"022300002"}
{"pid":4538,"command":"snap","uid":0,"user":"root","fd":"1","mode":"w","type":"REG","target":"/tmp/bash_jobs.0/da7102d7516e/stdout","name":"/tmp/bash_jobs.0/da7102d7516e/stdout","device":"254,0","inode":10281229,"size":0,"offset":0,"nlink":1,"deleted":false,"flags":"0100001"}
{"pid":700,"command":"sshd","uid":0,"user":"root","fd":"5","mode":"u","type":"REG","target":"/tmp/x (deleted)","name":"/tmp/x","device":"254,0","inode":77,"size":4096,"offset":0,"nlink":0,"deleted":true,"flags":"0100002"}
"#;

    /// nginx holding a rotated 300 MiB log twice (two workers share the descriptor,
    /// one has it on two fds), a 2 MiB file on a 16 MiB tmpfs, a 200 MiB memfd and a
    /// deleted mapping.
    const BUSY: &str = r#"{"pid":900,"command":"nginx","uid":33,"user":"www-data","fd":"5","mode":"w","type":"REG","target":"/var/log/nginx/access.log.1 (deleted)","name":"/var/log/nginx/access.log.1","device":"8,3","inode":4242,"size":314572800,"offset":314572800,"nlink":0,"deleted":true,"flags":"0102001"}
{"pid":900,"command":"nginx","uid":33,"user":"www-data","fd":"9","mode":"w","type":"REG","target":"/var/log/nginx/access.log.1 (deleted)","name":"/var/log/nginx/access.log.1","device":"8,3","inode":4242,"size":314572800,"offset":314572800,"nlink":0,"deleted":true,"flags":"0102001"}
{"pid":901,"command":"nginx","uid":33,"user":"www-data","fd":"5","mode":"w","type":"REG","target":"/var/log/nginx/access.log.1 (deleted)","name":"/var/log/nginx/access.log.1","device":"8,3","inode":4242,"size":314572800,"offset":314572800,"nlink":0,"deleted":true,"flags":"0102001"}
{"pid":950,"command":"worker","uid":0,"user":"root","fd":"3","mode":"u","type":"REG","target":"/run/app/cache (deleted)","name":"/run/app/cache","device":"0,25","inode":12,"size":2097152,"offset":0,"nlink":0,"deleted":true,"flags":"0100002"}
{"pid":960,"command":"chrome","uid":1000,"user":"u","fd":"40","mode":"u","type":"REG","target":"/memfd:shm (deleted)","name":"/memfd:shm","device":"0,1","inode":99,"size":209715200,"nlink":0,"deleted":true,"flags":"0100002"}
{"pid":970,"command":"java","uid":0,"user":"root","fd":"DEL","mode":"","type":"REG","target":"/var/lib/app/data.bin (deleted)","name":"/var/lib/app/data.bin","device":"8,3","inode":555,"size":209715200,"nlink":0,"deleted":true}
"#;

    const FS: &str = r#"{"source":"/dev/sda3","target":"/var","fstype":"ext4","options":"rw,relatime","device":"8:3","status":"ok","df_listed":true,"block_size":4096,"size_bytes":100000000000,"used_bytes":50000000000,"avail_bytes":45000000000,"use_percent":53,"inodes":655360,"inodes_used":1000,"inodes_free":654360,"inode_use_percent":1,"duration_us":20}
{"source":"tmpfs","target":"/run","fstype":"tmpfs","options":"rw,nosuid,nodev,size=16384k","device":"0:25","status":"ok","df_listed":true,"block_size":4096,"size_bytes":16777216,"used_bytes":2097152,"avail_bytes":14680064,"use_percent":13,"inodes":4000,"inodes_used":10,"inodes_free":3990,"inode_use_percent":1,"duration_us":20}
"#;

    fn find<'a>(f: &'a [Finding], subject: &str) -> &'a Finding {
        f.iter().find(|x| x.subject == subject).unwrap_or_else(|| panic!("no {subject} in {f:#?}"))
    }

    #[test]
    fn quiet_on_an_idle_host() {
        let b = bundle_with(&[("scan/open_files.jsonl", IDLE), ("scan/filesystems.jsonl", HEALTHY)]);
        assert_eq!(DeletedOpen.evaluate(&Input::new(&b)).unwrap(), vec![]);
    }

    #[test]
    fn per_process_and_per_filesystem() {
        let b = bundle_with(&[("scan/open_files.jsonl", BUSY), ("scan/filesystems.jsonl", FS)]);
        let found = DeletedOpen.evaluate(&Input::new(&b)).unwrap();
        let subjects: BTreeSet<&str> = found.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(
            subjects,
            BTreeSet::from(["pid 900 (nginx)", "pid 901 (nginx)", "pid 950 (worker)", "/var", "/run"]),
            "memfd and the DEL mapping are not counted: {found:#?}"
        );
        let p = find(&found, "pid 900 (nginx)");
        assert_eq!(p.severity, Severity::Warning);
        assert_eq!(p.facts["held_bytes"], 314572800u64, "one inode on two fds counts once");
        assert_eq!(p.facts["fds"], json!(["5", "9"]));
        assert_eq!(p.facts["held_bytes_by_filesystem"]["/var"], 314572800u64);
        assert!(p.advice.contains(": > /proc/900/fd/5"), "{}", p.advice);

        let v = find(&found, "/var");
        assert_eq!(v.facts["held_bytes"], 314572800u64, "shared by two workers, counted once");
        assert_eq!(v.facts["files"], 1);
        assert_eq!(v.facts["pids"], json!([900, 901]));
        assert_eq!(v.severity, Severity::Warning);

        // 2 MiB of a 16 MiB tmpfs is 12.5 %: a warning although below 100 MiB.
        let w = find(&found, "pid 950 (worker)");
        assert_eq!(w.severity, Severity::Warning);
        assert_eq!(find(&found, "/run").facts["held_percent_of_size"], 12.5);
    }

    #[test]
    fn small_share_is_info_and_path_fallback() {
        // 2 MiB on the big /var is info; a device unknown to the scan is placed by path.
        let line = r#"{"pid":5,"command":"app","fd":"7","mode":"w","type":"REG","target":"/var/lib/x (deleted)","name":"/var/lib/x","device":"0,48","inode":3,"size":2097152,"nlink":0,"deleted":true}"#;
        let b = bundle_with(&[("scan/open_files.jsonl", line), ("scan/filesystems.jsonl", FS)]);
        let found = DeletedOpen.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(find(&found, "pid 5 (app)").severity, Severity::Info);
        assert_eq!(find(&found, "/var").facts["held_bytes"], 2097152);
    }

    #[test]
    fn without_the_filesystem_scan_files_are_still_counted() {
        let b = bundle_with(&[("scan/open_files.jsonl", BUSY)]);
        let found = DeletedOpen.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(find(&found, "pid 900 (nginx)").facts["held_bytes"], 314572800u64);
        assert!(found.iter().any(|f| f.subject == "unknown filesystem (device 8,3)"));
        let b = bundle_with(&[("scan/filesystems.jsonl", FS)]);
        assert_eq!(DeletedOpen.evaluate(&Input::new(&b)), Err(Skip::missing("scan/open_files.jsonl")));
    }
}
