//! The host side of a diff: whether it is the same host and boot, the time between the
//! bundles, and kernel, sysctl, configuration-file and mount changes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::Input;

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostChanges {
    pub before: Side,
    pub after: Side,
    /// Same hostname. None when either bundle has no manifest.
    pub same_host: Option<bool>,
    /// Same boot id. None when either bundle has no manifest.
    pub same_boot: Option<bool>,
    /// Seconds from BEFORE's collection to AFTER's (wall clock; negative when AFTER is
    /// older).
    pub elapsed_s: Option<f64>,
    /// `[before, after]` when the kernel release or version differs.
    pub kernel: Option<[String; 2]>,
    pub sysctl: Vec<Setting>,
    pub config: Vec<ConfigChange>,
    pub mounts: MountChanges,
}

/// One bundle's identity.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    pub hostname: Option<String>,
    pub boot_id: Option<String>,
    /// Collection time, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub time: Option<String>,
    pub kernel: Option<String>,
}

/// A sysctl whose value differs, appeared or went away (`None` on the side without it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    /// As `sysctl` names it: `net.ipv4.tcp_fin_timeout`.
    pub name: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A configuration file (an `etc/` entry) added, removed or changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigChange {
    pub entry: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// Unified-diff lines (`-old`, `+new`, ` context`, `@@` hunk headers) for a change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MountChanges {
    pub added: Vec<Mount>,
    pub removed: Vec<Mount>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Mount {
    pub target: String,
    pub source: String,
    pub fstype: String,
}

impl HostChanges {
    /// No change on the host side (identity aside).
    pub fn is_empty(&self) -> bool {
        self.same_host != Some(false)
            && self.same_boot != Some(false)
            && self.elapsed_s.is_none_or(|s| s == 0.0)
            && self.kernel.is_none()
            && self.sysctl.is_empty()
            && self.config.is_empty()
            && self.mounts.added.is_empty()
            && self.mounts.removed.is_empty()
    }
}

fn side(input: &Input) -> Side {
    let Some(m) = input.manifest() else { return Side::default() };
    let h = &m.host;
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let time =
        (m.clocks.realtime_ns > 0).then(|| snap_bundle::time::iso_utc((m.clocks.realtime_ns / 1_000_000_000) as i64));
    Side {
        hostname: some(&h.hostname),
        boot_id: some(&h.boot_id),
        time,
        kernel: some(format!("{} {}", h.kernel_release, h.kernel_version).trim()),
    }
}

/// What one bundle says of its host, read once.
pub struct Facts {
    side: Side,
    realtime_ns: Option<u64>,
    sysctl: BTreeMap<String, String>,
    config: BTreeMap<String, String>,
    mounts: Option<BTreeSet<Mount>>,
}

impl Facts {
    pub fn read(i: &Input) -> Facts {
        Facts {
            side: side(i),
            realtime_ns: i.manifest().map(|m| m.clocks.realtime_ns).filter(|ns| *ns > 0),
            sysctl: texts(i, "proc/sys/"),
            config: texts(i, "etc/"),
            mounts: mount_set(i),
        }
    }
}

pub fn compare(b: &Facts, a: &Facts) -> HostChanges {
    let (sb, sa) = (b.side.clone(), a.side.clone());
    let both = |x: &Option<String>, y: &Option<String>| match (x, y) {
        (Some(x), Some(y)) => Some(x == y),
        _ => None,
    };
    let elapsed_s = match (b.realtime_ns, a.realtime_ns) {
        (Some(tb), Some(ta)) => Some((ta as f64 - tb as f64) / 1e9),
        _ => None,
    };
    let kernel = match (&sb.kernel, &sa.kernel) {
        (Some(x), Some(y)) if x != y => Some([x.clone(), y.clone()]),
        _ => None,
    };
    HostChanges {
        same_host: both(&sb.hostname, &sa.hostname),
        same_boot: both(&sb.boot_id, &sa.boot_id),
        elapsed_s,
        kernel,
        sysctl: sysctl(&b.sysctl, &a.sysctl),
        config: config(&b.config, &a.config),
        mounts: mounts(&b.mounts, &a.mounts),
        before: sb,
        after: sa,
    }
}

/// Text entries under `prefix` in one bundle: name -> text.
fn texts(input: &Input, prefix: &str) -> BTreeMap<String, String> {
    input.entries_under(prefix).iter().filter_map(|e| Some((e.clone(), input.text(e).ok()?.into_owned()))).collect()
}

/// Files under /proc/sys that report kernel state rather than hold a setting: they
/// change on their own and are not compared (file handles are a figure instead).
const STATE_NOT_SETTINGS: &[&str] = &[
    "fs.dentry-state",
    "fs.file-nr",
    "fs.inode-nr",
    "fs.inode-state",
    "fs.aio-nr",
    "fs.quota.",
    "fs.fscache.",
    "kernel.ns_last_pid",
    "kernel.random.boot_id",
    "kernel.random.uuid",
    "kernel.random.entropy_avail",
    "kernel.pty.nr",
    "net.netfilter.nf_conntrack_count",
];

fn is_state(name: &str) -> bool {
    STATE_NOT_SETTINGS.iter().any(|s| if s.ends_with('.') { name.starts_with(s) } else { name == *s })
}

/// The `proc/sys/` values that differ, as `sysctl -a` names them.
fn sysctl(tb: &BTreeMap<String, String>, ta: &BTreeMap<String, String>) -> Vec<Setting> {
    let value = |t: &String| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let names: BTreeSet<&String> = tb.keys().chain(ta.keys()).collect();
    names
        .into_iter()
        .filter_map(|entry| {
            let name = entry.trim_start_matches("proc/sys/").replace('/', ".");
            let (vb, va) = (tb.get(entry).map(value), ta.get(entry).map(value));
            (vb != va && !is_state(&name)).then_some(Setting { name, before: vb, after: va })
        })
        .collect()
}

/// Configuration files (`etc/`) added, removed or changed, with line diffs.
fn config(tb: &BTreeMap<String, String>, ta: &BTreeMap<String, String>) -> Vec<ConfigChange> {
    let names: BTreeSet<&String> = tb.keys().chain(ta.keys()).collect();
    let mut out = Vec::new();
    for entry in names {
        let change = match (tb.get(entry), ta.get(entry)) {
            (Some(x), Some(y)) if x == y => continue,
            (Some(x), Some(y)) => ConfigChange { entry: entry.clone(), change: "changed", diff: line_diff(x, y) },
            (Some(_), None) => ConfigChange { entry: entry.clone(), change: "removed", diff: Vec::new() },
            (None, _) => ConfigChange { entry: entry.clone(), change: "added", diff: Vec::new() },
        };
        out.push(change);
    }
    out
}

/// A unified diff with one line of context, without the file header lines.
pub fn line_diff(before: &str, after: &str) -> Vec<String> {
    let diff = similar::TextDiff::from_lines(before, after);
    let mut out = Vec::new();
    for hunk in diff.unified_diff().context_radius(1).iter_hunks() {
        out.push(hunk.header().to_string());
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            out.push(format!("{sign}{}", change.value().trim_end_matches('\n')));
        }
    }
    out
}

fn mount_set(input: &Input) -> Option<BTreeSet<Mount>> {
    let fs = input.filesystems().ok()?;
    Some(
        fs.iter()
            .map(|f| Mount { target: f.target.clone(), source: f.source.clone(), fstype: f.fstype.clone() })
            .collect(),
    )
}

fn mounts(mb: &Option<BTreeSet<Mount>>, ma: &Option<BTreeSet<Mount>>) -> MountChanges {
    let (Some(mb), Some(ma)) = (mb, ma) else { return MountChanges::default() };
    MountChanges { added: ma.difference(mb).cloned().collect(), removed: mb.difference(ma).cloned().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_diff_shows_the_changed_lines_with_context() {
        let d = line_diff("a\nb\nc\nd\ne\n", "a\nb\nC\nd\ne\nf\n");
        assert_eq!(d, vec!["@@ -2,4 +2,5 @@", " b", "-c", "+C", " d", " e", "+f"]);
        assert!(line_diff("same\n", "same\n").is_empty());
    }
}
