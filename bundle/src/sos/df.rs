//! `df -al` and `df -ali` listings (sos's `sos_commands/filesys/df_-al_-x_autofs` and
//! `df_-ali_-x_autofs`; sos 3.x ran them without `-x autofs`) merged into
//! [`Filesystem`] records.
//!
//! **Columns** are found by their header names, so the same code reads GNU df's
//! default layout (`Filesystem 1K-blocks Used Available Use% Mounted on`), its POSIX
//! one (`-P`: `1024-blocks ... Capacity`), `-T`'s `Type` column, `-i`'s
//! `Inodes IUsed IFree IUse%`, other block units (`1M-blocks`, `512-blocks`,
//! `2MB-blocks`: a `B` suffix means powers of 1000) and macOS's combined layout
//! (`512-blocks Used Available Capacity iused ifree %iused`, with no inode total: it is
//! taken as used + free, which is how df computes used). Human-readable listings
//! (`df -h`/`-H`, a `Size` header or figures such as `1.2M`) are refused: their figures
//! are rounded.
//!
//! **Rows.** The figures are whitespace-separated tokens; the mount point is the rest of
//! the line, printed raw, so it may hold spaces (`/V M T o o l s`; trailing blanks are
//! lost). A source may hold spaces too (macOS `map -hosts`): the figures are the first
//! run of tokens, after at least one source token, that has the header's shapes. Old
//! coreutils (RHEL 6) print a source longer than 20 columns alone on its line and the
//! figures, indented, on the next; blank lines in between are tolerated.
//!
//! **What df prints instead of figures.** `-` alone in a percentage means the
//! denominator is 0 (`use_percent` None). A row whose block figures are all `-` is
//! coreutils' placeholder for a mount it could not read with `-a` (statfs failed with
//! EACCES or ENOENT): its status is `failed`. A negative Available (`-123`, when the
//! reserved space is overdrawn) is kept as 0. Diagnostics such as
//! `df: /mnt/nfs: Stale file handle` (sos keeps stderr; it usually lands before the
//! header) become `failed` records for that target with the message as the error;
//! other diagnostics are ignored. Any other line that does not parse is an error naming
//! the listing and line: a listing cut short must not pass for a complete one.
//!
//! **Merging.** Rows of the two listings are matched by mount point, the n-th row for a
//! target with the n-th (the same target may be mounted twice). The listings were taken
//! one after the other, so a busy filesystem's figures may differ slightly between
//! them; a target only one listing has keeps zeros for the other's figures. Records
//! follow the blocks listing's order, then the inodes listing's leftovers.
//!
//! **Figures.** Sizes are df's numbers times the listing's unit (`block_size`), exact
//! when the filesystem's block size is a multiple of the unit, as it is for 1K units on
//! Linux filesystems. Use% and IUse% are the percentages df printed, that is coreutils'
//! rounding up of used / (used + available).
//!
//! **Not filled:** `options`, `device` and `duration_us`; `fstype` only when the listing
//! has a `Type` column (`df -T`, which sos does not run). A caller with the report's
//! mount listing (`proc/mounts`, `mount -l`) can fill them by target.
//!
//! **`df_listed`** approximates coreutils' choice for plain `df`: a failed row is not
//! listed, nor one with 0 blocks (pseudo filesystems: proc, sysfs, cgroup...), nor one
//! whose target is not absolute; of several mounts of one device only one is listed,
//! chosen as `filter_mount_list` chooses (the one nearest the root, a later mount on
//! the same target with another source replacing an earlier one). df tells devices
//! apart by `st_dev`, which the listing lacks, so rows are taken to share a device when
//! they have the same target, or the same source if it names a path (`/dev/vda2`,
//! `server:/export`), or the same other source (`tmpfs`, `udev`, `none`) and identical
//! block and inode figures (bind mounts). Block figures alone are not enough: the tmpfs
//! on /dev/shm and on /sys/fs/cgroup of a cgroup-v1 host have the same size and are
//! both empty (jc's CentOS 7 and Ubuntu 18.04 samples), so without the inodes listing
//! such rows are all taken as distinct. Where this guesses wrong: btrfs subvolumes of
//! one device (plain df lists each; here one), bind mounts of a tmpfs when the inodes
//! listing is absent (listed each time), two equally sized tmpfs mounts with the same
//! use of blocks and inodes (plain df lists both; here one), and filesystem types
//! gnulib hides although they have blocks (type `none`: listed here). With only the
//! inodes listing, 0 inodes stands in for 0 blocks.

use std::collections::HashMap;

use crate::scan::Filesystem;

/// Parses and merges a `df -al` listing (`blocks`) and a `df -ali` one (`inodes`);
/// either may be absent, not both. A broken listing fails the whole call, with the
/// listing and line named in the error; call again without it to keep the other one.
pub fn parse(blocks: Option<&str>, inodes: Option<&str>) -> Result<Vec<Filesystem>, String> {
    if blocks.is_none() && inodes.is_none() {
        return Err("no df listing given".into());
    }
    let blocks = blocks.map(|t| Listing::parse(t, Role::Blocks)).transpose()?;
    let inodes = inodes.map(|t| Listing::parse(t, Role::Inodes)).transpose()?;

    let mut out: Vec<Filesystem> = Vec::new();
    // (target, occurrence) -> index in `out`, for matching the inodes listing's rows.
    let mut index: HashMap<(&str, usize), usize> = HashMap::new();
    if let Some(listing) = &blocks {
        for (row, key) in listing.rows.iter().zip(occurrences(&listing.rows)) {
            index.insert(key, out.len());
            out.push(row.record(listing.unit)?);
        }
    }
    if let Some(listing) = &inodes {
        for (row, key) in listing.rows.iter().zip(occurrences(&listing.rows)) {
            match index.get(&key) {
                Some(&i) => row.fill_inodes(&mut out[i]),
                None => out.push(row.record(0)?),
            }
        }
    }
    let listed = df_listed(&out, blocks.is_some(), inodes.is_some());
    for (fs, listed) in out.iter_mut().zip(listed) {
        fs.df_listed = listed;
    }
    Ok(out)
}

/// Each row's target with its occurrence number: `("/dev/shm", 2)` for the second row
/// mounted on /dev/shm.
fn occurrences(rows: &[Row]) -> Vec<(&str, usize)> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    rows.iter()
        .map(|r| {
            let n = seen.entry(r.target.as_str()).or_insert(0);
            *n += 1;
            (r.target.as_str(), *n)
        })
        .collect()
}

/// Which listing a text is meant to be, for the columns it must have and for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Blocks,
    Inodes,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Blocks => "df blocks listing",
            Role::Inodes => "df inodes listing",
        }
    }

    fn required(self) -> [Col; 4] {
        match self {
            Role::Blocks => [Col::Blocks, Col::Used, Col::Avail, Col::UsePct],
            Role::Inodes => [Col::Inodes, Col::IUsed, Col::IFree, Col::IUsePct],
        }
    }
}

/// A column between `Filesystem` and `Mounted on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Type,
    Blocks,
    Used,
    Avail,
    UsePct,
    Inodes,
    IUsed,
    IFree,
    IUsePct,
}

impl Col {
    fn from_header(name: &str) -> Result<Col, String> {
        Ok(match name {
            "Type" => Col::Type,
            "Used" => Col::Used,
            "Avail" | "Available" => Col::Avail,
            "Use%" | "Capacity" => Col::UsePct,
            "Inodes" => Col::Inodes,
            "IUsed" | "iused" => Col::IUsed,
            "IFree" | "ifree" => Col::IFree,
            "IUse%" | "%iused" => Col::IUsePct,
            "Size" => return Err(format!("human-readable sizes (df -h or -H) are rounded; {PLAIN}")),
            _ if name.ends_with("-blocks") => Col::Blocks,
            _ => return Err(format!("unknown column {name:?}")),
        })
    }
}

const PLAIN: &str = "plain df output is needed";

/// The unit of a `<size>-blocks` header: `1K`, `1024`, `512`, `1M`, `2MB`, `1KiB`, `1kB`
/// (as GNU's human.c writes them: a `B` suffix means powers of 1000).
fn block_unit(header: &str) -> Option<u64> {
    let size = header.strip_suffix("-blocks")?;
    let digits = size.find(|c: char| !c.is_ascii_digit()).unwrap_or(size.len());
    let (count, suffix) = size.split_at(digits);
    let count: u64 = count.parse().ok()?;
    let mut chars = suffix.chars();
    let multiplier = match chars.next() {
        None => 1,
        Some(letter) => {
            let power = "KMGTPEZYRQ".find(letter.to_ascii_uppercase())? as u32 + 1;
            let base: u64 = match chars.as_str() {
                "B" => 1000,
                "" | "iB" if letter != 'k' => 1024,
                _ => return None,
            };
            base.checked_pow(power)?
        }
    };
    count.checked_mul(multiplier).filter(|&u| u > 0)
}

/// The figures of one side (blocks or inodes) of a row, None where df printed `-`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Figures {
    total: Option<u64>,
    used: Option<u64>,
    free: Option<u64>,
    percent: Option<u32>,
}

impl Figures {
    /// coreutils prints `-` for every figure of a mount it could not read.
    fn unknown(&self) -> bool {
        self.total.is_none() && self.used.is_none() && self.free.is_none()
    }
}

/// One mount as one listing shows it.
#[derive(Debug, Clone, Default, PartialEq)]
struct Row {
    source: String,
    target: String,
    fstype: String,
    blocks: Option<Figures>,
    inodes: Option<Figures>,
    /// A df diagnostic about this target, which then has no figures.
    error: Option<String>,
}

const UNREADABLE: &str = "df shows no figures: the mount point could not be read (EACCES or ENOENT)";

impl Row {
    /// The record of a row; `unit` is its listing's block size (0 without blocks).
    fn record(&self, unit: u64) -> Result<Filesystem, String> {
        let mut fs = Filesystem {
            source: self.source.clone(),
            target: self.target.clone(),
            fstype: self.fstype.clone(),
            status: "ok".into(),
            ..Default::default()
        };
        let bytes = |n: Option<u64>| {
            n.unwrap_or(0).checked_mul(unit).ok_or_else(|| format!("df figures of {:?} overflow 64 bits", self.target))
        };
        let error = match (self.blocks, self.inodes) {
            _ if self.error.is_some() => self.error.clone(),
            (Some(b), _) if b.unknown() => Some(UNREADABLE.into()),
            (None, Some(i)) if i.unknown() => Some(UNREADABLE.into()),
            _ => None,
        };
        if error.is_some() {
            return Ok(Filesystem { status: "failed".into(), error, ..fs });
        }
        if let Some(b) = self.blocks {
            fs.block_size = unit;
            fs.size_bytes = bytes(b.total)?;
            fs.used_bytes = bytes(b.used)?;
            fs.avail_bytes = bytes(b.free)?;
            fs.use_percent = b.percent;
        }
        self.fill_inodes(&mut fs);
        Ok(fs)
    }

    /// Adds this row's inode figures to a record, unless either could not be read.
    fn fill_inodes(&self, fs: &mut Filesystem) {
        if fs.status != "ok" || self.error.is_some() {
            return;
        }
        if let Some(i) = self.inodes {
            fs.inodes = i.total.unwrap_or(0);
            fs.inodes_used = i.used.unwrap_or(0);
            fs.inodes_free = i.free.unwrap_or(0);
            fs.inode_use_percent = i.percent;
        }
    }
}

/// One listing: its columns, block unit (0 without a blocks column) and rows.
#[derive(Debug)]
struct Listing {
    cols: Vec<Col>,
    unit: u64,
    rows: Vec<Row>,
}

impl Listing {
    fn parse(text: &str, role: Role) -> Result<Listing, String> {
        let what = role.name();
        let mut lines = text.lines().enumerate();
        let mut rows = Vec::new();
        let middle = loop {
            let Some((_, line)) = lines.next() else {
                return Err(format!("{what}: no header line (Filesystem ... Mounted on)"));
            };
            if let Some(middle) = line.trim().strip_prefix("Filesystem").and_then(|l| l.strip_suffix("Mounted on")) {
                break middle;
            }
            // Lines before the header: df's diagnostics (stderr comes first), or noise.
            rows.extend(diagnostic(line).flatten());
        };
        let mut cols = Vec::new();
        let mut unit = 0;
        for name in middle.split_whitespace() {
            let col = Col::from_header(name).map_err(|e| format!("{what}: {e}"))?;
            if col == Col::Blocks {
                unit = block_unit(name).ok_or_else(|| format!("{what}: unknown block size {name:?}"))?;
            }
            if cols.contains(&col) {
                return Err(format!("{what}: column {name:?} twice"));
            }
            cols.push(col);
        }
        if let Some(missing) = role.required().into_iter().find(|c| !cols.contains(c)) {
            return Err(format!("{what}: the header has no {missing:?} column"));
        }
        let mut listing = Listing { cols, unit, rows };
        // A source printed alone on its line, waiting for its figures: (line number, source).
        let mut wrapped: Option<(usize, &str)> = None;
        for (i, line) in lines {
            let at = |e: String| format!("{what}, line {}: {e}", i + 1);
            if line.trim().is_empty() {
                continue;
            }
            let indented = line.starts_with(char::is_whitespace);
            if let Some((_, source)) = wrapped.take() {
                if !indented {
                    return Err(at(format!("no figures for {source:?}")));
                }
                listing.rows.push(listing.row(line, Some(source)).map_err(at)?);
            } else if let Some(row) = diagnostic(line) {
                listing.rows.extend(row);
            } else if indented {
                return Err(at("figures without a source".into()));
            } else if line.split_whitespace().nth(1).is_none() {
                wrapped = Some((i, line.trim_end()));
            } else {
                listing.rows.push(listing.row(line, None).map_err(at)?);
            }
        }
        match wrapped {
            Some((i, source)) => Err(format!("{what}, line {}: no figures for {source:?}", i + 1)),
            None => Ok(listing),
        }
    }

    /// Parses a data line; `source` is given when it came on the line before.
    fn row(&self, line: &str, source: Option<&str>) -> Result<Row, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let n = self.cols.len();
        let first = usize::from(source.is_none());
        // The figures start at the first word where they fit, leaving a target after.
        let Some(start) = (first..words.len().saturating_sub(n))
            .find(|&s| self.cols.iter().zip(&words[s..s + n]).all(|(&c, w)| fits(c, w)))
        else {
            return Err(match words.iter().find(|w| looks_human(w)) {
                Some(w) => format!("human-readable figure {w:?} (df -h or -H) is rounded; {PLAIN}"),
                None => format!("expected {n} figures and a mount point in {:?}", line.trim()),
            });
        };
        // Offsets of words in `line`, which they were split from.
        let offset = |w: &str| w.as_ptr() as usize - line.as_ptr() as usize;
        let source = match source {
            Some(s) => s.to_string(),
            None => line[..offset(words[start])].trim_end().to_string(),
        };
        let target = line[offset(words[start + n])..].trim_end().to_string();
        let mut row = Row { source, target, ..Default::default() };
        let (mut b, mut i) = (Figures::default(), Figures::default());
        for (col, word) in self.cols.iter().zip(&words[start..start + n]) {
            match col {
                Col::Type => row.fstype = word.to_string(),
                Col::Blocks => b.total = figure(word),
                Col::Used => b.used = figure(word),
                Col::Avail => b.free = figure(word),
                Col::UsePct => b.percent = percent(word),
                Col::Inodes => i.total = figure(word),
                Col::IUsed => i.used = figure(word),
                Col::IFree => i.free = figure(word),
                Col::IUsePct => i.percent = percent(word),
            }
        }
        if !self.cols.contains(&Col::Inodes) {
            // macOS has no inode total; df's used is total - free.
            i.total = i.used.zip(i.free).and_then(|(u, f)| u.checked_add(f));
        }
        row.blocks = self.cols.contains(&Col::Blocks).then_some(b);
        row.inodes =
            self.cols.iter().any(|c| matches!(c, Col::Inodes | Col::IUsed | Col::IFree | Col::IUsePct)).then_some(i);
        Ok(row)
    }
}

/// Whether a word has the shape of a column's figures: digits or `-`, a negative
/// number for Available, digits and `%` for percentages; any word for Type.
fn fits(col: Col, word: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match col {
        Col::Type => true,
        _ if word == "-" => true,
        Col::UsePct | Col::IUsePct => word.strip_suffix('%').is_some_and(digits),
        Col::Avail => digits(word.strip_prefix('-').unwrap_or(word)),
        _ => digits(word),
    }
}

/// A figure whose shape [`fits`] checked: `-` is None, a negative one 0. Digits that
/// overflow 64 bits read as None too.
fn figure(word: &str) -> Option<u64> {
    match word.strip_prefix('-') {
        Some("") => None,
        Some(_) => Some(0),
        None => word.parse().ok(),
    }
}

fn percent(word: &str) -> Option<u32> {
    word.strip_suffix('%')?.parse().ok()
}

/// `1.2M`, `955M`, `500k`, `0Bi`: figures of df -h, -H or macOS's -h.
fn looks_human(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_digit()) && word.ends_with(|c: char| "KkMGTPEZYRQBi".contains(c))
}

/// A diagnostic line of df (`df: /mnt/x: Stale file handle`, `/bin/df: '/x': ...`):
/// Some(row) for one about a mount point, as a failed row; Some(None) for others
/// (`df: no file systems processed`); None for lines that are not df's.
fn diagnostic(line: &str) -> Option<Option<Row>> {
    let (program, rest) = line.split_once(": ")?;
    if program != "df" && !program.ends_with("/df") {
        return None;
    }
    let quoted = |open: char, close: char| {
        let inner = rest.strip_prefix(open)?;
        let end = inner.find(&format!("{close}: "))?;
        Some((&inner[..end], &inner[end + close.len_utf8() + 2..]))
    };
    let parts = quoted('\'', '\'')
        .or_else(|| quoted('‘', '’'))
        .or_else(|| quoted('`', '\''))
        .or_else(|| quoted('"', '"'))
        .or_else(|| rest.rsplit_once(": "));
    Some(parts.filter(|(target, _)| target.starts_with('/')).map(|(target, message)| Row {
        target: target.to_string(),
        error: Some(message.trim().to_string()),
        ..Default::default()
    }))
}

/// gnulib's `ME_REMOTE` as far as a source tells it (the type is unknown).
fn is_remote(source: &str) -> bool {
    source.contains(':') || source.starts_with("//") || source == "-hosts"
}

/// Whether plain `df` would list each record: see the module docs. Follows the
/// collector's `df_listed` (coreutils' `filter_mount_list`, then `get_dev`) with a
/// guessed device in place of `st_dev` and no mount roots.
fn df_listed(fs: &[Filesystem], have_blocks: bool, have_inodes: bool) -> Vec<bool> {
    // The guessed device of each target, and of each (source, figures).
    let mut by_target: HashMap<&str, usize> = HashMap::new();
    let mut devices: HashMap<(&str, [u64; 6]), usize> = HashMap::new();
    // slots: the records kept so far; latest: for each device, the slot seen last.
    let mut slots: Vec<usize> = Vec::new();
    let mut latest: HashMap<usize, usize> = HashMap::new();
    for (i, me) in fs.iter().enumerate() {
        let dev = match by_target.get(me.target.as_str()) {
            Some(&dev) => dev,
            None => {
                // A new target's device: a new one, numbered by the targets seen, unless
                // a row with the same source (and figures, for a source that does not
                // name the device) was seen; see the module docs.
                let figures = [me.size_bytes, me.used_bytes, me.avail_bytes, me.inodes, me.inodes_used, me.inodes_free];
                let shared = match (me.source.contains('/'), have_inodes) {
                    (true, _) => Some([0; 6]),
                    (false, true) => Some(figures),
                    (false, false) => None,
                };
                let fresh = by_target.len();
                let dev = match shared {
                    Some(figures) => *devices.entry((me.source.as_str(), figures)).or_insert(fresh),
                    None => fresh,
                };
                by_target.insert(me.target.as_str(), dev);
                dev
            }
        };
        let Some(&slot) = latest.get(&dev) else {
            latest.insert(dev, slots.len());
            slots.push(i);
            continue;
        };
        let seen = &fs[slots[slot]];
        if is_remote(&me.source) && is_remote(&seen.source) && seen.source != me.source {
            // Remote entries with different locations are both kept.
            latest.insert(dev, slots.len());
            slots.push(i);
            continue;
        }
        let replace = (me.source.contains('/') && !seen.source.contains('/'))
            || seen.target.len() > me.target.len()
            || (seen.source != me.source && seen.target == me.target);
        if replace {
            slots[slot] = i;
        }
    }
    let mut listed = vec![false; fs.len()];
    for i in slots {
        let me = &fs[i];
        let size = if have_blocks { me.size_bytes } else { me.inodes };
        listed[i] = me.status == "ok" && me.target.starts_with('/') && size > 0;
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From /tmp/sos/sosreport-vault-2021 (sos 4.2, Ubuntu 20.04 in an LXD container):
    /// `df -al -x autofs` and `df -ali -x autofs`, lines kept in their order.
    const VAULT_AL: &str = "\
Filesystem       1K-blocks     Used Available Use% Mounted on
/dev/vda2        308585260 24171768 268668880   9% /
none                   492        4       488   1% /dev
proc                     0        0         0    - /proc
udev               8151596        0   8151596   0% /dev/fuse
udev               8151596        0   8151596   0% /dev/net/tun
tmpfs                  100        0       100   0% /dev/lxd
tmpfs                  100        0       100   0% /dev/.lxd-mounts
udev               8151596        0   8151596   0% /dev/tty
tmpfs              8196584    54192   8142392   1% /dev/shm
tmpfs              1639320      276   1639044   1% /run
/dev/vda2        308585260 24171772 268668876   9% /snap
tmpfs              1639320      276   1639044   1% /run/snapd/ns
";
    const VAULT_ALI: &str = "\
Filesystem         Inodes  IUsed    IFree IUse% Mounted on
/dev/vda2        19660800 547539 19113261    3% /
none              2049146     26  2049120    1% /dev
proc                    0      0        0     - /proc
udev              2037899    486  2037413    1% /dev/fuse
udev              2037899    486  2037413    1% /dev/net/tun
tmpfs             2049146      2  2049144    1% /dev/lxd
tmpfs             2049146      7  2049139    1% /dev/.lxd-mounts
udev              2037899    486  2037413    1% /dev/tty
tmpfs             2049146    101  2049045    1% /dev/shm
tmpfs             2049146    274  2048872    1% /run
/dev/vda2        19660800 547543 19113257    3% /snap
tmpfs             2049146    274  2048872    1% /run/snapd/ns
";

    fn listed(fs: &[Filesystem]) -> Vec<&str> {
        fs.iter().filter(|f| f.df_listed).map(|f| f.target.as_str()).collect()
    }

    #[test]
    fn sos_vault_listings_merge() {
        let fs = parse(Some(VAULT_AL), Some(VAULT_ALI)).unwrap();
        assert_eq!(fs.len(), 12);
        assert_eq!(
            fs[0],
            Filesystem {
                source: "/dev/vda2".into(),
                target: "/".into(),
                status: "ok".into(),
                df_listed: true,
                block_size: 1024,
                size_bytes: 308_585_260 * 1024,
                used_bytes: 24_171_768 * 1024,
                avail_bytes: 268_668_880 * 1024,
                use_percent: Some(9),
                inodes: 19_660_800,
                inodes_used: 547_539,
                inodes_free: 19_113_261,
                inode_use_percent: Some(3),
                ..Default::default()
            }
        );
        let proc = &fs[2];
        assert_eq!(
            (proc.target.as_str(), proc.size_bytes, proc.use_percent, proc.inode_use_percent),
            ("/proc", 0, None, None)
        );
        assert_eq!((proc.status.as_str(), proc.df_listed), ("ok", false));
        // Bind mounts: /snap is /dev/vda2 again, the udev and /run/snapd/ns rows repeat
        // their figures; of the udev ones the shortest target is kept, as coreutils does.
        // The two small tmpfs mounts differ in inodes, so both are listed.
        assert_eq!(listed(&fs), ["/", "/dev", "/dev/lxd", "/dev/.lxd-mounts", "/dev/tty", "/dev/shm", "/run"]);
        assert_eq!(fs[10].used_bytes, 24_171_772 * 1024, "each row keeps its own figures");
        assert!(fs.iter().all(|f| f.fstype.is_empty() && f.options.is_empty() && f.device.is_empty()));
    }

    #[test]
    fn one_listing_alone() {
        let blocks = parse(Some(VAULT_AL), None).unwrap();
        assert_eq!(
            (blocks[0].size_bytes, blocks[0].inodes, blocks[0].inode_use_percent),
            (308_585_260 * 1024, 0, None)
        );
        // Without inode figures, rows of tmpfs or udev are not taken for bind mounts.
        assert_eq!(listed(&blocks).len(), 10);
        let inodes = parse(None, Some(VAULT_ALI)).unwrap();
        assert_eq!((inodes[0].block_size, inodes[0].size_bytes, inodes[0].inodes_free), (0, 0, 19_113_261));
        assert_eq!(listed(&inodes), ["/", "/dev", "/dev/lxd", "/dev/.lxd-mounts", "/dev/tty", "/dev/shm", "/run"]);
        assert!(parse(None, None).is_err());
    }

    /// /tmp/sosout/sosreport-vm-* (sos 4.0, Debian): the same target mounted twice, and a
    /// 23-character source on one line (current coreutils no longer wraps).
    #[test]
    fn sos_debian_repeated_targets() {
        let al = "\
Filesystem              1K-blocks     Used Available Use% Mounted on
devtmpfs                 12334432        0  12334432   0% /dev
tmpfs                    24683656        0  24683656   0% /dev/shm
devpts                          0        0         0    - /dev/pts
/dev/vda                264212084 26464624  68821264  28% /
model_tools_unavailable         4        0         4   0% /mnt/sandboxing/model_tools_env/v1/python
devpts                          0        0         0    - /dev/pts
tmpfs                    24683656        0  24683656   0% /dev/shm
/dev/vda                264212084 26464624  68821264  28% /run/netns
";
        let ali = "\
Filesystem                Inodes  IUsed    IFree IUse% Mounted on
devtmpfs                 3083608    114  3083494    1% /dev
tmpfs                    3085457      1  3085456    1% /dev/shm
devpts                         0      0        0     - /dev/pts
/dev/vda                16777216 454260 16322956    3% /
model_tools_unavailable  3085457      1  3085456    1% /mnt/sandboxing/model_tools_env/v1/python
devpts                         0      0        0     - /dev/pts
tmpfs                    3085457      7  3085450    1% /dev/shm
/dev/vda                16777216 454260 16322956    3% /run/netns
";
        let fs = parse(Some(al), Some(ali)).unwrap();
        assert_eq!(fs.len(), 8);
        // The second /dev/shm row of one listing goes with the second of the other.
        assert_eq!((fs[1].target.as_str(), fs[1].inodes_used), ("/dev/shm", 1));
        assert_eq!((fs[6].target.as_str(), fs[6].inodes_used), ("/dev/shm", 7));
        assert_eq!(fs[4].source, "model_tools_unavailable");
        assert_eq!(fs[4].size_bytes, 4096);
        assert_eq!(listed(&fs), ["/dev", "/dev/shm", "/", "/mnt/sandboxing/model_tools_env/v1/python"]);
    }

    #[test]
    fn wrapped_sources_and_spaces() {
        // insights-core's RHEL 6 `df -li` (blank lines as in their sample).
        let li = "\
Filesystem        Inodes  IUsed     IFree IUse% Mounted on
/dev/mapper/vg_lxcrhel6sat56-lv_root

                 6275072 124955   6150117    2% /

devtmpfs         1497120    532   1496588    1% /dev
/dev/sdb2        1499684     15   1499669    1% /VM Tools
";
        let fs = parse(None, Some(li)).unwrap();
        assert_eq!(fs.len(), 3);
        assert_eq!((fs[0].source.as_str(), fs[0].target.as_str()), ("/dev/mapper/vg_lxcrhel6sat56-lv_root", "/"));
        assert_eq!(
            (fs[0].inodes, fs[0].inodes_used, fs[0].inodes_free, fs[0].inode_use_percent),
            (6275072, 124955, 6150117, Some(2))
        );
        assert_eq!(fs[2].target, "/VM Tools");
        let cut = "Filesystem 1K-blocks Used Available Use% Mounted on\n/dev/mapper/a-very-long-name-indeed\n";
        assert_eq!(
            parse(Some(cut), None).unwrap_err(),
            "df blocks listing, line 2: no figures for \"/dev/mapper/a-very-long-name-indeed\""
        );
        let orphan = "Filesystem 1K-blocks Used Available Use% Mounted on\n   10 1 9 10% /x\n";
        assert!(parse(Some(orphan), None).unwrap_err().contains("line 2: figures without a source"));
    }

    #[test]
    fn diagnostics_become_failed_records() {
        let al = "\
df: /mnt/nfs: Stale file handle
df: ‘/mnt/old’: Transport endpoint is not connected
/usr/bin/df: '/mnt/a b': Permission denied
df: warning: something unrelated
Filesystem     1K-blocks    Used Available Use% Mounted on
/dev/sda2       17813504 2127172  15686332  12% /
systemd-1              -       -         -    - /proc/sys/fs/binfmt_misc
df: no file systems processed
";
        let fs = parse(Some(al), None).unwrap();
        let failed: Vec<_> =
            fs.iter().filter(|f| f.status == "failed").map(|f| (f.target.as_str(), f.error.as_deref())).collect();
        assert_eq!(
            failed,
            [
                ("/mnt/nfs", Some("Stale file handle")),
                ("/mnt/old", Some("Transport endpoint is not connected")),
                ("/mnt/a b", Some("Permission denied")),
                ("/proc/sys/fs/binfmt_misc", Some(UNREADABLE)),
            ]
        );
        assert!(fs
            .iter()
            .filter(|f| f.status == "failed")
            .all(|f| !f.df_listed && f.size_bytes == 0 && f.block_size == 0));
        assert_eq!(listed(&fs), ["/"]);
    }

    #[test]
    fn human_readable_is_refused() {
        let h = "Filesystem      Size  Used Avail Use% Mounted on\nudev            955M     0  955M   0% /dev\n";
        assert!(parse(Some(h), None).unwrap_err().contains("human-readable"));
        let hi = "Filesystem     Inodes IUsed IFree IUse% Mounted on\n/dev/sda2        1.3M  341K  940K   27% /\n";
        assert_eq!(
            parse(None, Some(hi)).unwrap_err(),
            "df inodes listing, line 2: human-readable figure \"1.3M\" (df -h or -H) is rounded; plain df output is needed"
        );
    }

    #[test]
    fn block_units() {
        assert_eq!(block_unit("1K-blocks"), Some(1024));
        assert_eq!(block_unit("1024-blocks"), Some(1024));
        assert_eq!(block_unit("512-blocks"), Some(512));
        assert_eq!(block_unit("1M-blocks"), Some(1 << 20));
        assert_eq!(block_unit("1KiB-blocks"), Some(1024));
        assert_eq!(block_unit("1kB-blocks"), Some(1000));
        assert_eq!(block_unit("2MB-blocks"), Some(2_000_000));
        assert_eq!(block_unit("1E-blocks"), Some(1 << 60));
        for bad in ["1a-blocks", "1Z-blocks", "0K-blocks", "K-blocks", "1k-blocks", "1KB2-blocks", "1K"] {
            assert_eq!(block_unit(bad), None, "{bad}");
        }
        let m = "Filesystem     1M-blocks  Used Available Use% Mounted on\n/dev/vda3          62031 49197      9680  84% /\n";
        let fs = parse(Some(m), None).unwrap();
        assert_eq!((fs[0].block_size, fs[0].size_bytes, fs[0].use_percent), (1 << 20, 62031 << 20, Some(84)));
    }

    #[test]
    fn odd_rows() {
        let text = "\
Filesystem     Type  1K-blocks  Used Available Use% Mounted on
/dev/sdc1      ext4    1000000 990000    -40000 100% /full
map -hosts     autofs        0      0         0    - /net
nfs:/export    nfs         100     50        50  50% /mnt/trailing   \t
";
        let fs = parse(Some(text), None).unwrap();
        assert_eq!((fs[0].fstype.as_str(), fs[0].avail_bytes, fs[0].use_percent), ("ext4", 0, Some(100)));
        assert_eq!(
            (fs[1].source.as_str(), fs[1].fstype.as_str(), fs[1].target.as_str()),
            ("map -hosts", "autofs", "/net")
        );
        assert_eq!(fs[2].target, "/mnt/trailing");
        for (text, error) in [
            ("", "df blocks listing: no header line (Filesystem ... Mounted on)"),
            (
                "Filesystem 1K-blocks Used Available Use% Frob Mounted on\n",
                "df blocks listing: unknown column \"Frob\"",
            ),
            ("Filesystem 1K-blocks Used Used Available Use% Mounted on\n", "df blocks listing: column \"Used\" twice"),
            ("Filesystem Inodes IUsed IFree IUse% Mounted on\n", "df blocks listing: the header has no Blocks column"),
            (
                "Filesystem 1K-blocks Used Available Use% Mounted on\n/dev/x 1 2 3 4% \n",
                "df blocks listing, line 2: expected 4 figures and a mount point in \"/dev/x 1 2 3 4%\"",
            ),
            (
                "Filesystem 1M-blocks Used Available Use% Mounted on\n/dev/x 18446744073709551615 0 0 0% /\n",
                "df figures of \"/\" overflow 64 bits",
            ),
        ] {
            assert_eq!(parse(Some(text), None).unwrap_err(), error);
        }
    }

    /// Every df sample of ../shared/corpus/df (see its PROVENANCE.md), figures checked
    /// with awk. The jc `df.out` files are plain `df` output: every row is df-listed.
    #[test]
    fn corpus_df_files() {
        let mut checked = 0;
        for (name, text) in &crate::sos::corpus::files("df") {
            let text = text.as_str();
            let got = if name.contains("_li") { parse(None, Some(&text)) } else { parse(Some(&text), None) };
            let by = |t: &str| got.as_ref().unwrap().iter().find(|f| f.target == t).unwrap().clone();
            let sizes = |f: Filesystem| (f.size_bytes, f.used_bytes, f.avail_bytes, f.use_percent);
            match name.as_str() {
                n if n.contains("-h.out") => assert!(got.unwrap_err().contains("human-readable"), "{n}"),
                "jc/centos-7.7_df.out" => {
                    assert!(got.as_ref().unwrap().iter().all(|f| f.df_listed));
                    assert_eq!(got.as_ref().unwrap().len(), 7);
                    assert_eq!(sizes(by("/")), (18238930944, 1848913920, 16390017024, Some(11)));
                }
                "jc/ubuntu-18.04_df.out" => {
                    assert!(got.as_ref().unwrap().iter().all(|f| f.df_listed));
                    assert_eq!(got.as_ref().unwrap().len(), 18);
                    assert_eq!(sizes(by("/")), (21000437760, 5885980672, 14024097792, Some(30)));
                    assert_eq!(sizes(by("/snap/core18/1223")), (55936 * 1024, 55936 * 1024, 0, Some(100)));
                }
                "jc/generic_df-long-filesystem.out" => {
                    let root = by("/");
                    assert_eq!((root.source.as_str(), root.fstype.as_str()), ("/dev/mapper/VolGroup00-LogVol00", "ext3"));
                    assert_eq!(sizes(root), (6175522816, 1175482368, 4681273344, Some(21)));
                    assert_eq!(listed(got.as_ref().unwrap()), ["/"]);
                }
                "jc/osx-10.14.6_df.out" => {
                    // macOS: 512-byte blocks, inode columns in the same listing, spaces
                    // in sources and targets. (Its df lists the 0-block automounts; GNU
                    // df, whose rules df_listed follows, would not.)
                    let tm = by("/Volumes/com.apple.TimeMachine.localsnapshots/Backups.backupdb/kbrazil-mac/2019-11-29-075900/Macintosh HD");
                    let inodes = (tm.inodes, tm.inodes_used, tm.inodes_free, tm.inode_use_percent);
                    assert_eq!(inodes, (9223372036854775807, 1459164, 9223372036853316643, Some(0)));
                    assert_eq!(sizes(tm), (499963174912, 141909377024, 338078900224, Some(30)));
                    assert_eq!(by("/net").source, "map -hosts");
                    assert_eq!(got.unwrap().len(), 8);
                }
                "insights-core/df_al.txt" => assert_eq!(got.unwrap().len(), 9),
                "insights-core/df_al_bad.txt" => assert_eq!(
                    got.unwrap_err(),
                    "df blocks listing, line 4: expected 4 figures and a mount point in \"sysfs                                          0\""
                ),
                "insights-core/df_al_bad_bs.txt" => {
                    assert_eq!(got.unwrap_err(), "df blocks listing: unknown block size \"1a-blocks\"")
                }
                "insights-core/df_al_bs_2mb.txt" => {
                    assert_eq!(sizes(by("/")), (124062000000, 98394000000, 19360000000, Some(84)));
                    assert_eq!(by("/").block_size, 2_000_000);
                }
                "insights-core/df_al_doc.txt" | "insights-core/df_alp_doc.txt" => {
                    let fs = got.as_ref().unwrap();
                    assert_eq!(fs.len(), 20);
                    assert_eq!(sizes(by("/V M T o o l s")), (53659832320, 1114263552, 52545568768, Some(3)));
                    assert_eq!(by("/proc/sys/fs/binfmt_misc").status, "failed");
                    // The two tmpfs rows of equal size, both empty, are told apart only by
                    // inode figures, which this listing lacks: both listed.
                    assert_eq!(listed(fs), ["/dev", "/dev/shm", "/run", "/sys/fs/cgroup", "/", "/V M T o o l s", "/boot"]);
                }
                "insights-core/df_alp.txt" => {
                    // `df -alP` given two paths that do not exist: its complaints come
                    // first.
                    let fs = got.as_ref().unwrap();
                    assert_eq!(fs.len(), 11);
                    assert_eq!((fs[0].target.as_str(), fs[0].error.as_deref()), ("/vobs/GEMS", Some("No such file or directory")));
                    assert_eq!(sizes(by("/")), (98571884 * 1024, 4244032 * 1024, 89313940 * 1024, Some(5)));
                }
                "insights-core/df_li.txt" => {
                    let fs = got.as_ref().unwrap();
                    assert_eq!(fs.len(), 10);
                    assert_eq!((fs[0].source.as_str(), fs[0].inodes), ("/dev/mapper/vg_lxcrhel6sat56-lv_root", 6275072));
                    assert_eq!((by("/VM Tools").inodes_used, by("/V M T o o l s").inodes_used), (15, 6));
                }
                "insights-core/df_li_doc.txt" => {
                    assert_eq!(got.as_ref().unwrap().len(), 8);
                    let data = by("/opt/data");
                    assert_eq!((data.inodes, data.inodes_used, data.inodes_free, data.inode_use_percent), (26213888, 19662, 26194226, Some(1)));
                }
                n => panic!("unexpected corpus file {n}: add its expectations"),
            }
            checked += 1;
        }
        assert_eq!(checked, 16);
    }

    /// Cut at every byte and mutated: errors, never panics.
    #[test]
    fn no_panic_on_damaged_listings() {
        for n in 0..=VAULT_AL.len() {
            let _ = parse(Some(&VAULT_AL[..n]), Some(VAULT_ALI));
            let _ = parse(Some(VAULT_AL), Some(&VAULT_ALI[..n.min(VAULT_ALI.len())]));
        }
        let bytes = VAULT_AL.as_bytes();
        for i in 0..bytes.len() {
            for b in [b' ', b'\n', b'-', b'%', b'9', b'x', b'/', 0xe2, 0xff] {
                let mut m = bytes.to_vec();
                m[i] = b;
                let text = crate::text::lossy(&m);
                let _ = parse(Some(&text), Some(&text));
            }
            let mut m = bytes.to_vec();
            m.insert(i, b'\xc3');
            m.insert(i + 1, b'\xa9');
            let _ = parse(Some(&crate::text::lossy(&m)), None);
        }
        for odd in ["df: ‘", "df: ‘/x’", "df: '/", "df: `/x'", "df: \"/x\": ", "Filesystem Mounted on\n/x y\n"] {
            let _ = parse(Some(odd), Some(odd));
        }
    }
}
