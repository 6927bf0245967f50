//! `disk.inodes_low`: mounts that `df -i` lists that are nearly or completely out of
//! inodes, with the directories holding the most files when the disk-usage scan has them.

use serde_json::Value;

use super::disk_space::{filesystem_evidence, human, measured, partial_mark, percent_up, usage_json, DiskUsageScan};
use crate::{Finding, Input, Need, Rule, Severity};

pub struct InodesLow;

/// df -i's IUse% from which the rule warns.
const WARN_PERCENT: u32 = 90;
/// df -i's IUse% from which it is critical (as is any mount with no free inode).
const CRITICAL_PERCENT: u32 = 95;
/// Disk-usage records shown as evidence per mount.
const TOP: usize = 5;

impl Rule for InodesLow {
    fn id(&self) -> &'static str {
        "disk.inodes_low"
    }

    fn detects(&self) -> &'static str {
        "filesystems (as plain df lists them) nearly or completely out of inodes"
    }

    fn thresholds(&self) -> &'static str {
        "warning at df -i's IUse% >= 90, critical at >= 95 or when no inode is free. Without a \
         free inode no file can be created even with free space (\"No space left on device\" \
         while df shows room), so 0 free is critical whatever the percentage; a full root is \
         therefore always critical. Filesystems that report no inode count (btrfs, many network \
         filesystems: IUse% '-') allocate inodes dynamically and are skipped, as are read-only \
         mounts. Inode exhaustion comes from many small files (mail or session spools, caches, \
         build trees, leftover temporary files): the advice points at the directories with the \
         most files, from the disk-usage scan when it walked the mount (it walks mounts at least \
         85 % full in space), else with the command that finds them."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["scan/filesystems.jsonl", "scan/disk_usage.jsonl (optional: files per directory)"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let filesystems = input.filesystems()?;
        let usage = DiskUsageScan::load(input);
        let mut findings = Vec::new();
        for fs in filesystems.iter().filter(|f| measured(f) && f.inodes > 0) {
            let Some(pct) = fs.inode_use_percent.or_else(|| percent_up(fs.inodes_used, fs.inodes)) else {
                continue;
            };
            let severity = if fs.inodes_free == 0 || pct >= CRITICAL_PERCENT {
                Severity::Critical
            } else if pct >= WARN_PERCENT {
                Severity::Warning
            } else {
                continue;
            };
            let mut f = Finding::new(
                self.id(),
                severity,
                fs.target.clone(),
                format!(
                    "{} has {pct}% of its inodes in use: {} free of {} ({} on {})",
                    fs.target, fs.inodes_free, fs.inodes, fs.fstype, fs.source
                ),
            )
            .evidence(filesystem_evidence(fs))
            .fact("mount", fs.target.clone())
            .fact("inodes", fs.inodes)
            .fact("inodes_used", fs.inodes_used)
            .fact("inodes_free", fs.inodes_free)
            .fact("inode_use_percent", pct)
            .fact("use_percent", serde_json::json!(fs.use_percent))
            .fact("avail_bytes", fs.avail_bytes)
            .fact("fstype", fs.fstype.clone())
            .fact("source", fs.source.clone());

            let mut most: Vec<_> = usage.of_mount(&fs.target);
            let walked = !most.is_empty();
            let partial = most.iter().any(|u| u.partial);
            most.retain(|u| u.files > 0);
            most.sort_by(|a, b| b.files.cmp(&a.files).then_with(|| a.path.cmp(&b.path)));
            most.truncate(TOP);
            f = f.fact("usage_walk", usage.walk_state(walked, partial));
            if let Some(e) = usage.evidence(&most, walked, partial, |u| {
                format!("{:>9} files  {}  (depth {}, {}{})", u.files, u.path, u.depth, human(u.bytes), partial_mark(u))
            }) {
                f = f.evidence(e);
            }
            f = f.fact("most_files", most.iter().map(|u| usage_json(u)).collect::<Vec<Value>>());

            let mut advice = String::from(
                "Inodes run out with many small files: no file can be created although space \
                 may remain. ",
            );
            if most.is_empty() {
                advice.push_str(&format!(
                    "Find the directory with the most files: `du --inodes -x -d 2 {} | sort -n | tail -20`. ",
                    fs.target
                ));
            } else {
                let names: Vec<&str> = most.iter().take(3).map(|u| u.path.as_str()).collect();
                advice.push_str(&format!("Most files are under {}. ", names.join(", ")));
            }
            advice.push_str(
                "Typical sources: session or cache files never expired, mail or print spools, \
                 leftover temporary files, unpacked build trees. Delete or archive them (tar) and \
                 fix what creates them; the inode count of ext4 is fixed at mkfs time (-i/-N), \
                 so a filesystem meant for many small files needs more inodes or another \
                 filesystem.",
            );
            findings.push(f.advice(advice));
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::disk_space::tests::HEALTHY;
    use crate::rules::testing::bundle_with;
    use crate::Skip;

    /// A tmpfs mounted with nr_inodes=64 filled with empty files, a nearly full /srv
    /// (93 %), a btrfs (no inode count) and a full read-only squashfs.
    const INODES: &str = r#"{"source":"snap-test","target":"/mnt/inodes","fstype":"tmpfs","options":"rw,relatime,size=4096k,nr_inodes=64","device":"0:53","status":"ok","df_listed":true,"block_size":4096,"size_bytes":4194304,"used_bytes":0,"avail_bytes":4194304,"use_percent":0,"inodes":64,"inodes_used":64,"inodes_free":0,"inode_use_percent":100,"duration_us":25}
{"source":"/dev/sdb1","target":"/srv","fstype":"ext4","options":"rw,relatime","device":"8:17","status":"ok","df_listed":true,"block_size":4096,"size_bytes":100000000000,"used_bytes":60000000000,"avail_bytes":35000000000,"use_percent":64,"inodes":1000000,"inodes_used":930000,"inodes_free":70000,"inode_use_percent":93,"duration_us":25}
{"source":"/dev/sdc","target":"/data","fstype":"btrfs","options":"rw,relatime","device":"0:40","status":"ok","df_listed":true,"block_size":4096,"size_bytes":100000000000,"used_bytes":1000000000,"avail_bytes":99000000000,"use_percent":1,"inodes":0,"inodes_used":0,"inodes_free":0,"inode_use_percent":null,"duration_us":25}
{"source":"/dev/loop3","target":"/snap/core22/1380","fstype":"squashfs","options":"ro,nodev,relatime,errors=continue","device":"7:3","status":"ok","df_listed":true,"block_size":131072,"size_bytes":77463552,"used_bytes":77463552,"avail_bytes":0,"use_percent":100,"inodes":867,"inodes_used":867,"inodes_free":0,"inode_use_percent":100,"duration_us":20}
"#;

    const USAGE: &str = r#"{"mount":"/srv","path":"/srv/cache","depth":1,"bytes":50000000000,"files":800000,"partial":false}
{"mount":"/srv","path":"/srv/cache/sessions","depth":2,"bytes":3000000000,"files":700000,"partial":false}
{"mount":"/srv","path":"/srv/www","depth":1,"bytes":9000000000,"files":120000,"partial":false}
"#;

    #[test]
    fn quiet_on_a_healthy_host() {
        let b = bundle_with(&[("scan/filesystems.jsonl", HEALTHY)]);
        assert!(InodesLow.evaluate(&Input::new(&b)).unwrap().is_empty());
    }

    #[test]
    fn exhausted_and_nearly_exhausted() {
        let b = bundle_with(&[("scan/filesystems.jsonl", INODES), ("scan/disk_usage.jsonl", USAGE)]);
        let found = InodesLow.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(found.len(), 2, "btrfs and read-only squashfs are skipped: {found:#?}");
        let t = found.iter().find(|f| f.subject == "/mnt/inodes").unwrap();
        assert_eq!(t.severity, Severity::Critical);
        assert_eq!(t.facts["inodes_free"], 0);
        assert_eq!(t.facts["inode_use_percent"], 100);
        assert_eq!(t.facts["usage_walk"], "not_walked");
        assert!(t.advice.contains("du --inodes -x -d 2 /mnt/inodes"), "{}", t.advice);

        let s = found.iter().find(|f| f.subject == "/srv").unwrap();
        assert_eq!(s.severity, Severity::Warning);
        assert_eq!(s.facts["inode_use_percent"], 93);
        let most = s.facts["most_files"].as_array().unwrap();
        assert_eq!(most[0]["path"], "/srv/cache");
        assert_eq!(most[1]["path"], "/srv/cache/sessions");
        assert!(s.advice.contains("/srv/cache/sessions"));
    }

    #[test]
    fn missing_input_is_not_evaluated() {
        let b = bundle_with(&[("scan/disk_usage.jsonl", USAGE)]);
        assert_eq!(InodesLow.evaluate(&Input::new(&b)), Err(Skip::missing("scan/filesystems.jsonl")));
    }
}
