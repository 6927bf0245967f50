//! `df` and `df -i` for every mount: one statvfs per line of /proc/self/mountinfo.
//!
//! Each mount is probed (stat of the mount point, then statvfs) as its own guarded job,
//! so a hung network mount costs at most the read timeout: it is recorded as
//! `timed_out` and the scan goes on. Figures are kept raw (bytes, inode counts) with
//! df's own rounding of Use% and IUse%, and each record says whether plain `df` (no
//! `-a`) would list the mount, following coreutils' rules: "dummy" types are skipped
//! (gnulib's `ME_DUMMY`), so are filesystems with 0 blocks and mount points statvfs
//! cannot reach, and of several mounts of the same device only one is kept, chosen as
//! coreutils' `filter_mount_list` chooses. autofs mount points are not probed at all:
//! statfs on a direct-map trigger would mount it, and df skips them too.
//!
//! The records also go to [`crate::ctx::Shared::filesystems`] for the disk-usage walk.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use snap_bundle::manifest::EntryStatus;
use snap_bundle::names;
use snap_bundle::scan::Filesystem;

use crate::ctx::Ctx;
use crate::guard::Stuck;
use crate::sys::StatVfs;
use crate::{Collector, Halt};

pub const NAME: &str = "filesystems";

pub struct Filesystems;

pub use snap_bundle::mountinfo::{parse_mountinfo, parse_mountinfo_line, unescape, Mount};

/// The mounted device of a mountinfo line as `stat` encodes it in `st_dev`.
pub trait MountDevice {
    fn dev(&self) -> u64;
}

impl MountDevice for Mount {
    fn dev(&self) -> u64 {
        libc::makedev(self.major, self.minor)
    }
}

/// gnulib's `ME_DUMMY` as it applies to mountinfo: pseudo filesystems plain df skips
/// whatever their size. (cgroup, tracefs, securityfs, pstore, bpf, configfs, nsfs and
/// the like are not on the list; df skips them because they have 0 blocks.)
pub fn is_dummy(fstype: &str) -> bool {
    #[rustfmt::skip]
    const DUMMY: &[&str] = &[
        "autofs", "proc", "subfs", "debugfs", "devpts", "fusectl", "fuse.portal", "mqueue", "rpc_pipefs", "sysfs",
        "devfs", "kernfs", "ignore", "none",
    ];
    DUMMY.contains(&fstype)
}

/// gnulib's `ME_REMOTE`: network filesystems.
pub fn is_remote(source: &str, fstype: &str) -> bool {
    source.contains(':')
        || (source.starts_with("//") && matches!(fstype, "smbfs" | "smb3" | "cifs"))
        || matches!(fstype, "acfs" | "afs" | "coda" | "auristorfs" | "fhgfs" | "gpfs" | "ibrix" | "ocfs2" | "vxfs")
        || source == "-hosts"
}

/// What probing one mount point found.
#[derive(Debug, Clone)]
pub enum Probe {
    Ok {
        stat_dev: Option<u64>,
        vfs: StatVfs,
    },
    Failed(String),
    TimedOut(String),
    /// Not probed on purpose (autofs: statfs would trigger the mount).
    Skipped(String),
}

/// Whether plain `df` lists each mount, given what probing found. Follows coreutils'
/// `filter_mount_list` (one entry per device, the device being what stat says of the
/// mount point) and then `get_dev` (no dummies, no relative targets, statvfs must
/// succeed, at least one block).
pub fn df_listed(mounts: &[Mount], probes: &[Probe]) -> Vec<bool> {
    // slots: the entries kept so far; latest: for each device, the slot seen last.
    let mut slots: Vec<usize> = Vec::new();
    let mut latest: HashMap<u64, usize> = HashMap::new();
    for (i, (me, probe)) in mounts.iter().zip(probes).enumerate() {
        let stat_dev = match probe {
            Probe::Ok { stat_dev, .. } if !is_dummy(&me.fstype) => *stat_dev,
            _ => None,
        };
        let Some(dev) = stat_dev else {
            // Not compared, but kept (and findable) under its mountinfo device.
            slots.push(i);
            latest.insert(me.dev(), slots.len() - 1);
            continue;
        };
        let Some(&slot) = latest.get(&dev) else {
            slots.push(i);
            latest.insert(dev, slots.len() - 1);
            continue;
        };
        let seen = &mounts[slots[slot]];
        let me_remote = is_remote(&me.source, &me.fstype);
        let seen_remote = is_remote(&seen.source, &seen.fstype);
        if me_remote && seen_remote && seen.source != me.source {
            // Remote entries with different locations are both kept.
            slots.push(i);
            latest.insert(dev, slots.len() - 1);
            continue;
        }
        let target_nearer_root = seen.target.len() > me.target.len();
        let source_below_root = seen.root.len() < me.root.len();
        let replace = (me.source.contains('/') && !seen.source.contains('/'))
            || (target_nearer_root && !source_below_root)
            || (seen.source != me.source && seen.target == me.target);
        if replace {
            slots[slot] = i;
        }
    }
    let mut listed = vec![false; mounts.len().min(probes.len())];
    for i in slots {
        let me = &mounts[i];
        listed[i] = !is_dummy(&me.fstype)
            && me.target.starts_with('/')
            && matches!(probes[i], Probe::Ok { vfs, .. } if vfs.blocks > 0);
    }
    listed
}

/// df's Use% and IUse%: `used * 100 / (used + avail)` rounded up; None when the
/// denominator is 0 (df prints `-`).
pub fn percent_up(used: u64, avail: u64) -> Option<u32> {
    let total = used as u128 + avail as u128;
    (total > 0).then(|| (used as u128 * 100).div_ceil(total) as u32)
}

/// Fills the df and df -i figures of a record from statvfs, as coreutils computes them.
pub fn fill_figures(fs: &mut Filesystem, s: &StatVfs) {
    let used_blocks = s.blocks.saturating_sub(s.bfree);
    fs.block_size = s.frsize;
    fs.size_bytes = s.blocks.saturating_mul(s.frsize);
    fs.used_bytes = used_blocks.saturating_mul(s.frsize);
    fs.avail_bytes = s.bavail.saturating_mul(s.frsize);
    fs.use_percent = percent_up(used_blocks, s.bavail);
    fs.inodes = s.files;
    fs.inodes_free = s.ffree;
    fs.inodes_used = s.files.saturating_sub(s.ffree);
    fs.inode_use_percent = percent_up(fs.inodes_used, s.ffree);
}

/// The scan record of one mount.
pub fn record(m: &Mount, probe: &Probe, listed: bool, duration: Duration) -> Filesystem {
    let mut fs = Filesystem {
        source: m.source.clone(),
        target: m.target.clone(),
        fstype: m.fstype.clone(),
        options: m.options(),
        device: format!("{}:{}", m.major, m.minor),
        df_listed: listed,
        duration_us: duration.as_micros() as u64,
        ..Default::default()
    };
    if let Probe::Ok { vfs, .. } = probe {
        fill_figures(&mut fs, vfs);
    }
    let (status, error) = match probe {
        Probe::Ok { .. } => ("ok", None),
        Probe::Failed(e) => ("failed", Some(e.clone())),
        Probe::TimedOut(e) => ("timed_out", Some(e.clone())),
        Probe::Skipped(e) => ("skipped", Some(e.clone())),
    };
    Filesystem { status: status.to_string(), error, ..fs }
}

/// Stats and statvfs's one mount point under the time limit.
fn probe(ctx: &mut Ctx, m: &Mount) -> Probe {
    if m.fstype == "autofs" {
        return Probe::Skipped("autofs mount point not probed: statfs would trigger the automount".into());
    }
    let path = ctx.host(&m.target);
    let label = format!("statvfs {}", m.target);
    let want_dev = !is_dummy(&m.fstype);
    let run = ctx.guarded(move |p| {
        p.step(&label);
        let dev = if want_dev { std::fs::metadata(&path).ok().map(|md| md.dev()) } else { None };
        (dev, crate::sys::statvfs(&path))
    });
    match run {
        Ok((stat_dev, Ok(vfs))) => Probe::Ok { stat_dev, vfs },
        Ok((_, Err(e))) => Probe::Failed(e.to_string()),
        Err(Stuck::Panicked) => Probe::Failed(Stuck::Panicked.to_string()),
        Err(s) => Probe::TimedOut(s.to_string()),
    }
}

impl Collector for Filesystems {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, ctx: &mut Ctx) -> Result<(), Halt> {
        let started = Instant::now();
        let out = ctx.read("/proc/self/mountinfo");
        if !matches!(out.status, EntryStatus::Ok | EntryStatus::Truncated) {
            let why = out.message.unwrap_or_else(|| out.status.as_str().to_string());
            return Err(Halt::Failed(format!("cannot read /proc/self/mountinfo: {why}")));
        }
        let mounts = parse_mountinfo(&snap_bundle::text::lossy(&out.data));
        let (mut probes, mut times, mut stopped) = (Vec::new(), Vec::new(), None);
        for m in &mounts {
            if let Err(stop) = ctx.check() {
                stopped = Some(stop);
                break;
            }
            let t = Instant::now();
            probes.push(probe(ctx, m));
            times.push(t.elapsed());
        }
        let listed = df_listed(&mounts, &probes);
        let records: Vec<Filesystem> =
            mounts.iter().zip(&probes).zip(&listed).zip(&times).map(|(((m, p), l), t)| record(m, p, *l, *t)).collect();
        let mut lines = ctx.jsonl();
        records.iter().for_each(|r| lines.push(r));
        ctx.store_jsonl(names::FILESYSTEMS, lines, started.elapsed());
        ctx.shared.filesystems = records;
        match stopped {
            Some(stop) => Err(stop.into()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From this Debian 12 VM: /dev/shm and /dev/pts are each mounted twice.
    const VM: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334432k,nr_inodes=3083608,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683656k
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
29 26 0:26 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683656k
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
";

    /// From node_exporter's fixtures (../shared/corpus/proc/node_exporter-fixtures).
    const ESCAPED: &str = "\
3148 3003 260:0 / /var/lib/kubelet/plugins/kubernetes.io/vsphere-volume/mounts/[vsanDatastore]\\040bafb9e5a-8856-7e6c-699c-801844e77a4a/kubernetes-dynamic-pvc-3eba5bba-48a3-11e8-89ab-005056b92113.vmdk rw,relatime shared:31 - ext4 /dev/sda rw,data=ordered
3149 3004 260:0 / /var/lib/kubelet/plugins/kubernetes.io/vsphere-volume/mounts/[vsanDatastore]\\011bafb9e5a-8856-7e6c-699c-801844e77a4a/kubernetes-dynamic-pvc-3eba5bba-48a3-11e8-89ab-005056b92113.vmdk rw,relatime shared:32 - ext4 /dev/sda rw,data=ordered
";

    /// From insights-core's mountinfo sample (../shared/corpus/proc/insights-core).
    const AUTOFS: &str = "\
57 21 0:21 / /misc rw,relatime - autofs /etc/auto.misc rw,fd=7,pgrp=4826,timeout=300,minproto=5,maxproto=5,indirect
58 21 0:22 / /autofshost rw,relatime - autofs -hosts rw,fd=13,pgrp=4826,timeout=300,minproto=5,maxproto=5,indirect
";

    /// From prometheus/procfs' fixtures: one NFS export mounted three times.
    const NFS: &str = "\
21 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro,data=ordered
194 21 0:42 / /mnt/nfs/test rw shared:144 - nfs4 192.168.1.1:/srv/test rw,vers=4.0,hard,proto=tcp
177 21 0:42 / /mnt/nfs/test rw shared:130 - nfs4 192.168.1.1:/srv/test rw,vers=4.0,hard,proto=tcp
1398 798 0:44 / /mnt/nfs/test rw,relatime shared:1154 - nfs 192.168.1.1:/srv/test rw,vers=3,proto=udp
";

    fn ok(dev: u64, blocks: u64) -> Probe {
        Probe::Ok { stat_dev: Some(dev), vfs: StatVfs { frsize: 4096, blocks, ..Default::default() } }
    }

    #[test]
    fn mountinfo_lines_are_split_at_the_separator_with_or_without_tags() {
        let m = parse_mountinfo(VM);
        assert_eq!(m.len(), 8);
        let root = &m[4];
        assert_eq!((root.id, root.parent, root.major, root.minor), (27, 1, 254, 0));
        assert_eq!((root.root.as_str(), root.target.as_str()), ("/", "/"));
        assert_eq!((root.fstype.as_str(), root.source.as_str()), ("ext4", "/dev/vda"));
        assert_eq!(root.options(), "rw,relatime,discard,resv_strict,resuid=65534,resgid=65534");
        let auto = &parse_mountinfo(AUTOFS)[1];
        assert_eq!((auto.fstype.as_str(), auto.source.as_str()), ("autofs", "-hosts"));
        assert_eq!(auto.mount_options, "rw,relatime");
        assert_eq!(parse_mountinfo_line("garbage"), None);
        assert_eq!(parse_mountinfo_line("1 2 0:1 / /x rw shared:1"), None);
    }

    #[test]
    fn octal_escapes_in_paths_are_decoded() {
        let m = parse_mountinfo(ESCAPED);
        assert!(m[0].target.contains("[vsanDatastore] bafb9e5a"), "{}", m[0].target);
        assert!(m[1].target.contains("[vsanDatastore]\tbafb9e5a"), "{}", m[1].target);
        assert_eq!(unescape(r"a\134b\012c"), "a\\b\nc");
        assert_eq!(unescape(r"trailing\04"), r"trailing\04");
        assert_eq!(unescape(r"\999"), r"\999");
    }

    #[test]
    fn percentages_round_up_like_df() {
        // df: 14084014080 used, 83488735232 avail on this VM's / shows 15%.
        assert_eq!(percent_up(14084014080 / 4096, 83488735232 / 4096), Some(15));
        assert_eq!(percent_up(1, 999), Some(1));
        assert_eq!(percent_up(0, 5), Some(0));
        assert_eq!(percent_up(5, 0), Some(100));
        assert_eq!(percent_up(0, 0), None);
        assert_eq!(percent_up(u64::MAX, u64::MAX), Some(50));
    }

    #[test]
    fn figures_follow_df_and_df_i() {
        // A 16 MiB ext4 loop image: df -B1 said 14410752 14336 13222912 1%.
        let s = StatVfs { frsize: 1024, blocks: 14073, bfree: 14059, bavail: 12913, files: 4096, ffree: 4085 };
        let mut fs = Filesystem::default();
        fill_figures(&mut fs, &s);
        assert_eq!((fs.size_bytes, fs.used_bytes, fs.avail_bytes), (14410752, 14336, 13222912));
        assert_eq!(fs.use_percent, Some(1));
        assert_eq!((fs.inodes, fs.inodes_used, fs.inodes_free, fs.inode_use_percent), (4096, 11, 4085, Some(1)));
        let mut none = Filesystem::default();
        fill_figures(&mut none, &StatVfs { frsize: 4096, ..Default::default() });
        assert_eq!((none.use_percent, none.inode_use_percent), (None, None));
    }

    #[test]
    fn df_lists_real_filesystems_once_per_device() {
        let m = parse_mountinfo(VM);
        // stat of /dev/shm reaches the upper mount (0:27) for both entries.
        let probes = vec![
            ok(0, 0),
            ok(m[1].dev(), 3083608),
            ok(libc::makedev(0, 27), 100),
            ok(0, 0),
            ok(m[4].dev(), 66052),
            ok(0, 0),
            ok(libc::makedev(0, 27), 100),
            ok(m[7].dev(), 0),
        ];
        let listed = df_listed(&m, &probes);
        let targets: Vec<&str> = m.iter().zip(&listed).filter(|(_, l)| **l).map(|(m, _)| m.target.as_str()).collect();
        assert_eq!(targets, ["/dev", "/dev/shm", "/"]);
        assert!(listed[2] && !listed[6], "df keeps the first /dev/shm entry");

        // Mounts statvfs could not reach (or that hung) are not listed.
        let mut probes: Vec<Probe> = m.iter().map(|m| ok(m.dev(), 10)).collect();
        (probes[1], probes[4]) = (Probe::Failed("Permission denied".into()), Probe::TimedOut("blocked".into()));
        assert_eq!(df_listed(&m, &probes), [false, false, true, false, false, false, true, true]);
    }

    #[test]
    fn bind_mounts_keep_the_one_nearest_the_device_root() {
        let text = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
50 27 254:0 /srv/data /data rw,relatime - ext4 /dev/vda rw
51 27 254:0 / /mnt/again rw,relatime - ext4 /dev/vda rw
";
        let m = parse_mountinfo(text);
        let dev = m[0].dev();
        let listed = df_listed(&m, &[ok(dev, 5), ok(dev, 5), ok(dev, 5)]);
        assert_eq!(listed, [true, false, false]);
    }

    #[test]
    fn remote_mounts_of_the_same_export_collapse_but_different_exports_do_not() {
        let m = parse_mountinfo(NFS);
        let d = libc::makedev(0, 44);
        let listed = df_listed(&m, &[ok(m[0].dev(), 5), ok(d, 5), ok(d, 5), ok(d, 5)]);
        assert_eq!(listed.iter().filter(|l| **l).count(), 2);
        let mut other = m.clone();
        other[3].source = "192.168.1.2:/srv/other".into();
        let listed = df_listed(&other, &[ok(m[0].dev(), 5), ok(d, 5), ok(d, 5), ok(d, 5)]);
        assert_eq!(listed, [true, true, false, true]);
    }

    #[test]
    fn dummies_and_remotes_are_classified_as_gnulib_does() {
        let dummy = ["proc", "sysfs", "devpts", "autofs", "debugfs", "mqueue", "fusectl", "rpc_pipefs", "none"];
        assert!(dummy.iter().all(|t| is_dummy(t)));
        assert!(["ext4", "xfs", "tmpfs", "devtmpfs", "cgroup2", "nfs4", "overlay"].iter().all(|t| !is_dummy(t)));
        assert!(is_remote("192.168.1.1:/srv/test", "nfs4"));
        assert!(is_remote("//server/share", "cifs"));
        assert!(is_remote("-hosts", "autofs"));
        assert!(!is_remote("//server/share", "ext4"));
        assert!(!is_remote("/dev/vda", "ext4"));
    }

    #[test]
    fn records_carry_status_device_and_no_figures_unless_ok() {
        let m = &parse_mountinfo(NFS)[1];
        let r = record(m, &Probe::TimedOut("blocked past its time limit".into()), false, Duration::from_millis(500));
        assert_eq!((r.status.as_str(), r.device.as_str(), r.size_bytes, r.use_percent), ("timed_out", "0:42", 0, None));
        assert_eq!(r.duration_us, 500_000);
        let auto = &parse_mountinfo(AUTOFS)[0];
        let r = record(auto, &Probe::Skipped("autofs".into()), false, Duration::ZERO);
        assert_eq!(r.status, "skipped");
    }
}
