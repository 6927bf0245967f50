//! `disk.space_low`: mounts that `df` lists and that are nearly or completely full, with
//! the largest directories and files from the disk-usage scan so the reader knows where
//! to clean.
//!
//! Also holds the small helpers the other `disk.*` rules share: byte formatting, the
//! read-only test and the loading of `scan/disk_usage.jsonl`.

use serde_json::{json, Value};
use snap_bundle::names;
use snap_bundle::scan::{self, DiskUsage, Filesystem};

use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct SpaceLow;

/// df's Use% from which the rule warns.
const WARN_PERCENT: u32 = 90;
/// df's Use% from which it is critical (as is any mount with nothing available).
const CRITICAL_PERCENT: u32 = 95;
/// Disk-usage records shown as evidence per mount.
const TOP: usize = 5;

impl Rule for SpaceLow {
    fn id(&self) -> &'static str {
        "disk.space_low"
    }

    fn detects(&self) -> &'static str {
        "filesystems (as plain df lists them) nearly or completely out of space, with the largest directories"
    }

    fn thresholds(&self) -> &'static str {
        "warning at df's Use% >= 90, critical at >= 95 or when nothing is available to unprivileged \
         users (Avail 0, even if root's reserved blocks remain); a full root filesystem is \
         therefore always critical: logins, package upgrades, logging and most daemons fail when \
         / cannot be written. Use% is df's own figure, used / (used + avail) rounded up, so blocks \
         reserved for root count as unavailable, as users experience it. 90 % leaves hours to days \
         on a busy filesystem; at 95 % a log burst or a large temporary file fills it. Read-only \
         mounts (squashfs snaps, ISO images, `ro` mounts) are ignored: they are full by design and \
         nothing can fail to write to them. Pseudo filesystems df does not list are ignored. \
         Advice comes from the disk-usage scan (`du -s` one and two levels below mounts at least \
         85 % full): the largest entries are where cleaning pays; when df's used is much larger \
         than what du finds, the space is held by deleted-but-open files (see \
         disk.deleted_open) or hidden under a mount point."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["scan/filesystems.jsonl", "scan/disk_usage.jsonl (optional: the largest directories)"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let filesystems = input.filesystems()?;
        let usage = DiskUsageScan::load(input);
        let mut findings = Vec::new();
        for fs in filesystems.iter().filter(|f| measured(f) && f.size_bytes > 0) {
            let Some(pct) = fs.use_percent.or_else(|| percent_up(fs.used_bytes, fs.used_bytes + fs.avail_bytes)) else {
                continue;
            };
            let full = fs.avail_bytes == 0;
            let severity = if full || pct >= CRITICAL_PERCENT {
                Severity::Critical
            } else if pct >= WARN_PERCENT {
                Severity::Warning
            } else {
                continue;
            };
            findings.push(self.finding(fs, pct, severity, &usage));
        }
        Ok(findings)
    }
}

impl SpaceLow {
    fn finding(&self, fs: &Filesystem, pct: u32, severity: Severity, usage: &DiskUsageScan) -> Finding {
        let reserved = fs.size_bytes.saturating_sub(fs.used_bytes + fs.avail_bytes);
        let mut f = Finding::new(
            self.id(),
            severity,
            fs.target.clone(),
            format!(
                "{} is {pct}% full: {} available of {} ({} on {})",
                fs.target,
                human(fs.avail_bytes),
                human(fs.size_bytes),
                fs.fstype,
                fs.source
            ),
        )
        .evidence(filesystem_evidence(fs))
        .fact("mount", fs.target.clone())
        .fact("size_bytes", fs.size_bytes)
        .fact("used_bytes", fs.used_bytes)
        .fact("avail_bytes", fs.avail_bytes)
        .fact("reserved_bytes", reserved)
        .fact("use_percent", pct)
        .fact("fstype", fs.fstype.clone())
        .fact("source", fs.source.clone());

        let mut largest: Vec<&DiskUsage> = usage.of_mount(&fs.target);
        largest.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
        let partial = largest.iter().any(|u| u.partial);
        let walked = !largest.is_empty();
        largest.retain(|u| u.bytes > 0);
        largest.truncate(TOP);
        f = f.fact("usage_walk", usage.walk_state(walked, partial));
        if let Some(e) = usage.evidence(&largest, walked, partial, |u| {
            format!("{:>10}  {}  (depth {}, {} files{})", human(u.bytes), u.path, u.depth, u.files, partial_mark(u))
        }) {
            f = f.evidence(e);
        }
        f = f.fact("largest", largest.iter().map(|u| usage_json(u)).collect::<Vec<Value>>());

        let mut advice = String::new();
        if largest.is_empty() {
            advice.push_str(&format!("Find where the space went: `du -xh -d 2 {} | sort -h | tail -20`. ", fs.target));
        } else {
            let names: Vec<&str> = largest.iter().take(3).map(|u| u.path.as_str()).collect();
            advice.push_str(&format!("Start with the largest entries: {}. ", names.join(", ")));
            if partial {
                advice.push_str("The walk was cut short, so these figures are lower bounds. ");
            }
        }
        advice.push_str(
            "Usual culprits: old or unrotated logs (logrotate, `journalctl --vacuum-size=`), core \
             dumps, package caches (`apt-get clean`), build and temporary files, forgotten \
             backups. If df's used is much larger than what du finds, the space is held by \
             deleted files still open (see disk.deleted_open) or by files hidden under a mount point.",
        );
        if fs.target == "/" {
            advice.push_str(" A full root filesystem breaks logins, logging and upgrades: free space first.");
        }
        f.advice(advice)
    }
}

/// Whether a scan record is a mount df lists, measured, and writable.
pub(crate) fn measured(fs: &Filesystem) -> bool {
    fs.df_listed && fs.status == "ok" && !read_only(fs)
}

/// Read-only mounts, and filesystem types that are read-only by nature: full by design.
pub(crate) fn read_only(fs: &Filesystem) -> bool {
    fs.options.split(',').any(|o| o == "ro")
        || matches!(fs.fstype.as_str(), "squashfs" | "iso9660" | "udf" | "erofs" | "cramfs" | "romfs")
}

/// `used / total` as a percentage rounded up, like df; None when total is 0.
pub(crate) fn percent_up(used: u64, total: u64) -> Option<u32> {
    if total == 0 {
        return None;
    }
    Some(((used as u128 * 100).div_ceil(total as u128)) as u32)
}

/// The df-style scan record as evidence.
pub(crate) fn filesystem_evidence(fs: &Filesystem) -> Evidence {
    Evidence::entry(names::FILESYSTEMS)
        .line(format!(
            "{} {} size {} used {} avail {} use {} inodes {} iused {} ifree {} iuse {} on {}",
            fs.source,
            fs.fstype,
            fs.size_bytes,
            fs.used_bytes,
            fs.avail_bytes,
            fs.use_percent.map(|p| format!("{p}%")).unwrap_or_else(|| "-".into()),
            fs.inodes,
            fs.inodes_used,
            fs.inodes_free,
            fs.inode_use_percent.map(|p| format!("{p}%")).unwrap_or_else(|| "-".into()),
            fs.target
        ))
        .value("target", fs.target.clone())
        .value("device", fs.device.clone())
        .value("size_bytes", fs.size_bytes)
        .value("used_bytes", fs.used_bytes)
        .value("avail_bytes", fs.avail_bytes)
        .value("use_percent", json!(fs.use_percent))
        .value("inodes", fs.inodes)
        .value("inodes_used", fs.inodes_used)
        .value("inodes_free", fs.inodes_free)
        .value("inode_use_percent", json!(fs.inode_use_percent))
}

/// The disk-usage scan, when the bundle has a usable one.
pub(crate) enum DiskUsageScan {
    Absent,
    Bad(String),
    Records(Vec<DiskUsage>),
}

impl DiskUsageScan {
    /// Loads `scan/disk_usage.jsonl`; its absence or damage is reported, never fatal.
    pub(crate) fn load(input: &Input) -> DiskUsageScan {
        match input.raw(names::DISK_USAGE) {
            Err(crate::Skip::Missing(_)) => DiskUsageScan::Absent,
            Err(crate::Skip::Bad { detail, .. }) => DiskUsageScan::Bad(detail),
            Ok(bytes) => match scan::parse_jsonl::<DiskUsage>(&bytes) {
                Ok(r) => DiskUsageScan::Records(r),
                Err(e) => DiskUsageScan::Bad(e),
            },
        }
    }

    pub(crate) fn of_mount(&self, mount: &str) -> Vec<&DiskUsage> {
        match self {
            DiskUsageScan::Records(r) => r.iter().filter(|u| u.mount == mount).collect(),
            _ => Vec::new(),
        }
    }

    /// `complete`, `partial`, `not_walked` (below the walk's threshold), `absent` or `unreadable`.
    pub(crate) fn walk_state(&self, walked: bool, partial: bool) -> &'static str {
        match self {
            DiskUsageScan::Absent => "absent",
            DiskUsageScan::Bad(_) => "unreadable",
            DiskUsageScan::Records(_) if !walked => "not_walked",
            DiskUsageScan::Records(_) if partial => "partial",
            DiskUsageScan::Records(_) => "complete",
        }
    }

    /// Evidence listing `shown` records, or saying why there are none.
    pub(crate) fn evidence(
        &self,
        shown: &[&DiskUsage],
        walked: bool,
        partial: bool,
        line: impl Fn(&DiskUsage) -> String,
    ) -> Option<Evidence> {
        let e = Evidence::entry(names::DISK_USAGE);
        Some(match self {
            DiskUsageScan::Absent => return None,
            DiskUsageScan::Bad(detail) => e.line(format!("unreadable: {detail}")),
            DiskUsageScan::Records(_) if !walked => {
                e.line("this mount was not walked (the scan walks mounts at least 85 % full in space)")
            }
            DiskUsageScan::Records(_) => {
                let mut e = e.value("walk", if partial { "partial" } else { "complete" });
                if partial {
                    e = e.line("the walk was cut short by its time or entry bound: figures are lower bounds");
                }
                for u in shown {
                    e = e.line(line(u));
                }
                e
            }
        })
    }
}

pub(crate) fn usage_json(u: &DiskUsage) -> Value {
    json!({"path": u.path, "bytes": u.bytes, "files": u.files, "depth": u.depth, "partial": u.partial})
}

pub(crate) fn partial_mark(u: &DiskUsage) -> &'static str {
    if u.partial {
        ", partial"
    } else {
        ""
    }
}

/// Bytes in binary units with one decimal (`4.0 MiB`), plain bytes below 1 KiB.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;
    use crate::Skip;

    /// Real lines from `snap collect` on a Debian 12 VM (root 41 % full, idle).
    pub(crate) const HEALTHY: &str = r#"{"source":"proc","target":"/proc","fstype":"proc","options":"rw,relatime","device":"0:21","status":"ok","df_listed":false,"block_size":4096,"size_bytes":0,"used_bytes":0,"avail_bytes":0,"use_percent":null,"inodes":0,"inodes_used":0,"inodes_free":0,"inode_use_percent":null,"duration_us":72}
{"source":"devtmpfs","target":"/dev","fstype":"devtmpfs","options":"rw,relatime,size=12334432k,nr_inodes=3083608,mode=755","device":"0:6","status":"ok","df_listed":true,"block_size":4096,"size_bytes":12630458368,"used_bytes":0,"avail_bytes":12630458368,"use_percent":0,"inodes":3083608,"inodes_used":114,"inodes_free":3083494,"inode_use_percent":1,"duration_us":36}
{"source":"tmpfs","target":"/dev/shm","fstype":"tmpfs","options":"rw,relatime,size=24683656k","device":"0:23","status":"ok","df_listed":true,"block_size":4096,"size_bytes":25276063744,"used_bytes":0,"avail_bytes":25276063744,"use_percent":0,"inodes":3085457,"inodes_used":1,"inodes_free":3085456,"inode_use_percent":1,"duration_us":33}
{"source":"/dev/vda","target":"/","fstype":"ext4","options":"rw,relatime,discard,resv_strict,resuid=65534,resgid=65534","device":"254:0","status":"ok","df_listed":true,"block_size":4096,"size_bytes":270553174016,"used_bytes":39114141696,"avail_bytes":58458607616,"use_percent":41,"inodes":16777216,"inodes_used":511524,"inodes_free":16265692,"inode_use_percent":4,"duration_us":32}
{"source":"/dev/vda","target":"/run/netns","fstype":"ext4","options":"rw,relatime,discard,resv_strict,resuid=65534,resgid=65534","device":"254:0","status":"ok","df_listed":false,"block_size":4096,"size_bytes":270553174016,"used_bytes":39114141696,"avail_bytes":58458607616,"use_percent":41,"inodes":16777216,"inodes_used":511524,"inodes_free":16265692,"inode_use_percent":4,"duration_us":25}
"#;

    /// A 4 MiB tmpfs filled to the last block, a full squashfs, and a 92 % full /var.
    const FULL: &str = r#"{"source":"snap-test","target":"/mnt/full","fstype":"tmpfs","options":"rw,relatime,size=4096k","device":"0:52","status":"ok","df_listed":true,"block_size":4096,"size_bytes":4194304,"used_bytes":4194304,"avail_bytes":0,"use_percent":100,"inodes":3085457,"inodes_used":3,"inodes_free":3085454,"inode_use_percent":1,"duration_us":30}
{"source":"/dev/loop3","target":"/snap/core22/1380","fstype":"squashfs","options":"ro,nodev,relatime,errors=continue","device":"7:3","status":"ok","df_listed":true,"block_size":131072,"size_bytes":77463552,"used_bytes":77463552,"avail_bytes":0,"use_percent":100,"inodes":867,"inodes_used":867,"inodes_free":0,"inode_use_percent":100,"duration_us":20}
{"source":"/dev/sda3","target":"/var","fstype":"ext4","options":"rw,relatime","device":"8:3","status":"ok","df_listed":true,"block_size":4096,"size_bytes":10000000000,"used_bytes":8700000000,"avail_bytes":800000000,"use_percent":92,"inodes":655360,"inodes_used":1000,"inodes_free":654360,"inode_use_percent":1,"duration_us":20}
{"source":"/dev/sda1","target":"/","fstype":"ext4","options":"rw,relatime","device":"8:1","status":"ok","df_listed":true,"block_size":4096,"size_bytes":10000000000,"used_bytes":9400000000,"avail_bytes":100000000,"use_percent":99,"inodes":655360,"inodes_used":1000,"inodes_free":654360,"inode_use_percent":1,"duration_us":20}
"#;

    const USAGE: &str = r#"{"mount":"/mnt/full","path":"/mnt/full/sub","depth":1,"bytes":4190208,"files":1,"partial":false}
{"mount":"/mnt/full","path":"/mnt/full/sub/big","depth":2,"bytes":4190208,"files":1,"partial":false}
{"mount":"/mnt/full","path":"/mnt/full/small","depth":1,"bytes":4096,"files":1,"partial":false}
{"mount":"/","path":"/var","depth":1,"bytes":5000000000,"files":9000,"partial":true}
{"mount":"/","path":"/usr","depth":1,"bytes":3000000000,"files":90000,"partial":false}
{"mount":"/","path":"/home","depth":1,"bytes":0,"files":0,"partial":true}
"#;

    fn find<'a>(f: &'a [Finding], subject: &str) -> &'a Finding {
        f.iter().find(|x| x.subject == subject).unwrap_or_else(|| panic!("no {subject} in {f:#?}"))
    }

    #[test]
    fn quiet_on_a_healthy_host() {
        let b = bundle_with(&[("scan/filesystems.jsonl", HEALTHY), ("scan/disk_usage.jsonl", "")]);
        assert!(SpaceLow.evaluate(&Input::new(&b)).unwrap().is_empty());
    }

    #[test]
    fn full_tmpfs_is_critical_with_the_largest_entries() {
        let b = bundle_with(&[("scan/filesystems.jsonl", FULL), ("scan/disk_usage.jsonl", USAGE)]);
        let found = SpaceLow.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(found.len(), 3, "the read-only squashfs is ignored: {found:#?}");
        let f = find(&found, "/mnt/full");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.facts["use_percent"], 100);
        assert_eq!(f.facts["avail_bytes"], 0);
        assert_eq!(f.facts["size_bytes"], 4194304);
        assert_eq!(f.facts["fstype"], "tmpfs");
        assert_eq!(f.facts["usage_walk"], "complete");
        let largest = f.facts["largest"].as_array().unwrap();
        assert_eq!(largest.len(), 3);
        assert_eq!(largest[0]["path"], "/mnt/full/sub");
        assert!(f.advice.contains("/mnt/full/sub"), "{}", f.advice);
        assert!(f.evidence[1].lines.iter().any(|l| l.contains("/mnt/full/sub/big")));
    }

    #[test]
    fn warning_at_90_and_root_critical_with_partial_walk() {
        let b = bundle_with(&[("scan/filesystems.jsonl", FULL), ("scan/disk_usage.jsonl", USAGE)]);
        let found = SpaceLow.evaluate(&Input::new(&b)).unwrap();
        let var = find(&found, "/var");
        assert_eq!(var.severity, Severity::Warning);
        assert_eq!(var.facts["reserved_bytes"], 500000000u64);
        assert_eq!(var.facts["usage_walk"], "not_walked");
        let root = find(&found, "/");
        assert_eq!(root.severity, Severity::Critical);
        assert_eq!(root.facts["usage_walk"], "partial");
        // The unfinished /home (0 bytes) is not among the largest.
        assert_eq!(root.facts["largest"].as_array().unwrap().len(), 2);
        assert!(root.advice.contains("lower bounds"));
    }

    #[test]
    fn without_disk_usage_the_rule_still_fires() {
        let b = bundle_with(&[("scan/filesystems.jsonl", FULL)]);
        let found = SpaceLow.evaluate(&Input::new(&b)).unwrap();
        let f = find(&found, "/mnt/full");
        assert_eq!(f.facts["usage_walk"], "absent");
        assert!(f.advice.contains("du -xh"));
        let b = bundle_with(&[("scan/filesystems.jsonl", FULL), ("scan/disk_usage.jsonl", "garbage\n")]);
        let found = SpaceLow.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(find(&found, "/mnt/full").facts["usage_walk"], "unreadable");
    }

    #[test]
    fn missing_and_broken_inputs() {
        let b = bundle_with(&[("proc/loadavg", "0 0 0 1/1 1\n")]);
        assert_eq!(SpaceLow.evaluate(&Input::new(&b)), Err(Skip::missing("scan/filesystems.jsonl")));
        let b = bundle_with(&[("scan/filesystems.jsonl", "{not json\n")]);
        assert!(matches!(SpaceLow.evaluate(&Input::new(&b)), Err(Skip::Bad { .. })));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(5 << 20), "5.0 MiB");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(percent_up(1, 3), Some(34));
        assert_eq!(percent_up(0, 0), None);
    }
}
