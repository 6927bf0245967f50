//! `kernel.io_error`: block-device I/O errors and filesystem errors, per device.
//!
//! Recognised (kernels 2.6 to 6.x): `end_request: I/O error, dev sda, sector N` (up to
//! 3.x), `blk_update_request: I/O error, dev sdk, ...` and `... critical medium error, dev
//! ...` (4.x/5.x), `print_req_error: ...` (4.17-5.x), `I/O error, dev sda, sector N op ...`
//! (5.x+), `Buffer I/O error on dev sdb1, logical block N`, SCSI sense data `sd 0:0:0:0:
//! [sdb] ... Medium Error` / `Unrecovered read error`, `EXT4-fs error (device sda1): ...`
//! (and ext2/ext3), `XFS (dm-0): metadata I/O error ...`, `XFS (sda): log I/O error`,
//! `XFS (sda): Corruption detected`, `BTRFS error (device sda): ...`.

use std::collections::BTreeMap;

use crate::klog::{self, Groups};
use crate::{Finding, Input, Need, Rule, Severity};

pub struct IoError;

impl Rule for IoError {
    fn id(&self) -> &'static str {
        "kernel.io_error"
    }

    fn detects(&self) -> &'static str {
        "block I/O errors, medium errors and filesystem errors, per device"
    }

    fn thresholds(&self) -> &'static str {
        concat!(
            "any error fires, critical, one finding per device with its count and kinds (io, medium, \
         scsi_sense, filesystem). A failed read or write reached the application as EIO or was lost in the \
         page cache; medium errors mean bad sectors, filesystem errors a corrupted or \
         read-only filesystem. Even one deserves a look at the disk's health (smartctl) and \
         the filesystem's state.",
            crate::aged_note!()
        )
    }

    fn inputs(&self) -> &'static [&'static str] {
        klog::SOURCES
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let lines = klog::read(input)?;
        let mut groups = Groups::default();
        let mut kinds: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
        for line in lines.iter() {
            let Some((dev, kind)) = parse(&line.message) else { continue };
            groups.add(dev, line);
            *kinds.entry(dev.to_string()).or_default().entry(kind).or_default() += 1;
        }
        let mut out = Vec::new();
        for (dev, g) in groups.into_groups() {
            let k = kinds.remove(&dev).unwrap_or_default();
            let list: Vec<String> = k.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
            let summary = format!("{} I/O or filesystem errors on {dev} ({})", g.count, list.join(", "));
            let advice = if k.contains_key("filesystem") {
                "The filesystem saw errors (and may have been remounted read-only): check the \
                 device underneath (smartctl -a, the errors above), then unmount and fsck / \
                 xfs_repair it; restore from backup if the disk is failing."
            } else {
                "The device failed reads or writes: check its health (smartctl -a, the \
                 controller's or hypervisor's logs, cables and multipath state), replace a disk \
                 with medium errors, and check the filesystems on it."
            };
            out.push(
                g.finding(self.id(), Severity::Critical, &dev, summary)
                    .fact("device", dev.clone())
                    .fact("kinds", serde_json::to_value(&k).unwrap_or_default())
                    .advice(advice),
            );
        }
        Ok(klog::aged_all(input, out))
    }
}

/// The device and kind of an error line.
fn parse(m: &str) -> Option<(&str, &'static str)> {
    // Word after a marker, up to a comma, space or bracket.
    let word = |after: &str| -> Option<&str> {
        let rest = m.split_once(after)?.1;
        let w = rest.split([',', ' ', ')', ':', ']']).next()?;
        (!w.is_empty()).then_some(w)
    };
    if m.contains("critical medium error, dev ") {
        return Some((word("error, dev ")?, "medium"));
    }
    if m.contains("I/O error, dev ") {
        return Some((word("I/O error, dev ")?, "io"));
    }
    if m.contains("Buffer I/O error on dev") {
        let dev = word("Buffer I/O error on device ").or_else(|| word("Buffer I/O error on dev "))?;
        return Some((dev, "io"));
    }
    if m.starts_with("sd ") && (m.contains("Medium Error") || m.contains("Unrecovered read error")) {
        return Some((word("[")?, "scsi_sense"));
    }
    for fs in ["EXT4-fs error (device ", "EXT3-fs error (device ", "EXT2-fs error (device ", "BTRFS error (device "] {
        if m.starts_with(fs) || m.contains(&format!(" {fs}")) {
            return Some((word(fs)?, "filesystem"));
        }
    }
    if let Some(rest) = m.strip_prefix("XFS (") {
        let (dev, what) = rest.split_once("): ")?;
        if what.contains("I/O error") || what.contains("Corruption") || what.contains("corruption") {
            return Some((dev, "filesystem"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    #[test]
    fn lines_of_every_kind() {
        for (line, dev, kind) in [
            (
                "blk_update_request: critical medium error, dev sdk, sector 130611915 op 0x1:(WRITE) flags 0x0",
                "sdk",
                "medium",
            ),
            ("blk_update_request: I/O error, dev sdk, sector 130611915 op 0x1:(WRITE) flags 0x0", "sdk", "io"),
            ("print_req_error: critical medium error, dev sdb, sector 8724376", "sdb", "medium"),
            ("I/O error, dev loop0, sector 0 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 0", "loop0", "io"),
            ("end_request: I/O error, dev sda, sector 123", "sda", "io"),
            ("Buffer I/O error on dev sdb1, logical block 0, async page read", "sdb1", "io"),
            ("Buffer I/O error on device dm-0, logical block 1", "dm-0", "io"),
            ("sd 1:0:0:0: [sdb] tag#6 Sense Key : Medium Error [current]", "sdb", "scsi_sense"),
            ("sd 1:0:0:0: [sdb] tag#6 Add. Sense: Unrecovered read error", "sdb", "scsi_sense"),
            (
                "EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0",
                "sda1",
                "filesystem",
            ),
            (
                "XFS (dm-3): metadata I/O error in \"xfs_imap_to_bp+0x5c/0xa0 [xfs]\" at daddr 0x1234 len 32 error 5",
                "dm-3",
                "filesystem",
            ),
            ("XFS (sdc1): Corruption detected. Unmount and run xfs_repair", "sdc1", "filesystem"),
        ] {
            assert_eq!(parse(line), Some((dev, kind)), "{line}");
        }
        for quiet in [
            "XFS (vda1): Ending clean mount",
            "EXT4-fs (sda1): re-mounted. Opts: errors=remount-ro",
            "sd 1:0:0:0: [sdb] tag#6 CDB: Read(10) 28 00 00 85 1f 80 00 00 80 00",
            "i40e 0000:5d:00.0 eth5: Changing Rx descriptor count from 512 to 4096",
        ] {
            assert_eq!(parse(quiet), None, "{quiet}");
        }
    }

    #[test]
    fn grouped_per_device() {
        let b = bundle_with(&[(
            "kernel/dmesg.txt",
            "[ 29.782101] sd 1:0:0:0: [sdb] tag#6 Sense Key : Medium Error [current]\n\
             [ 29.782109] print_req_error: critical medium error, dev sdb, sector 8724376\n\
             [ 30.0] Buffer I/O error on dev sdb1, logical block 0, async page read\n",
        )]);
        let f = IoError.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].subject, "sdb");
        assert_eq!(f[0].facts["count"], 2);
        assert_eq!(f[0].facts["kinds"]["medium"], 1);
        assert_eq!(f[0].facts["kinds"]["scsi_sense"], 1);
        assert_eq!(f[0].facts["first_time"], "29.782101");
        assert_eq!(f[1].subject, "sdb1");
    }
}
