//! `/proc/<pid>/mountinfo`: the mount table the filesystems collector walks, that the
//! mount view renders again, and that a sos report's df listings are matched with.

/// One line of /proc/self/mountinfo, with the kernel's octal escapes decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mount {
    pub id: u32,
    pub parent: u32,
    pub major: u32,
    pub minor: u32,
    /// The directory of the filesystem that is mounted (not `/` for bind mounts).
    pub root: String,
    pub target: String,
    pub mount_options: String,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

impl Mount {
    /// Per-mount options followed by the superblock's (without repeats or its rw/ro,
    /// which the per-mount flag overrides), as /proc/mounts shows them.
    pub fn options(&self) -> String {
        let mut out: Vec<&str> = self.mount_options.split(',').filter(|o| !o.is_empty()).collect();
        for o in self.super_options.split(',') {
            if !o.is_empty() && o != "rw" && o != "ro" && !out.contains(&o) {
                out.push(o);
            }
        }
        out.join(",")
    }
}

/// Decodes the `\ooo` escapes the kernel writes for space, tab, newline and backslash.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = |j: usize, max: u8| b.get(j).is_some_and(|c| (b'0'..=max).contains(c));
        if b[i] == b'\\' && octal(i + 1, b'3') && octal(i + 2, b'7') && octal(i + 3, b'7') {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    crate::text::lossy(&out).into_owned()
}

/// Parses one mountinfo line: `id parent maj:min root target opts [tags...] - type source superopts`.
pub fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let f: Vec<&str> = line.split(' ').collect();
    let sep = f.iter().skip(6).position(|x| *x == "-")? + 6;
    let (major, minor) = f.get(2)?.split_once(':')?;
    Some(Mount {
        id: f.first()?.parse().ok()?,
        parent: f.get(1)?.parse().ok()?,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root: unescape(f.get(3)?),
        target: unescape(f.get(4)?),
        mount_options: f.get(5)?.to_string(),
        fstype: unescape(f.get(sep + 1)?),
        source: unescape(f.get(sep + 2)?),
        super_options: f.get(sep + 3).map(|s| s.to_string()).unwrap_or_default(),
    })
}

/// Every well-formed line of a mountinfo file, in order.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}
