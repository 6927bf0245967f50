//! The system views: `df`, `mount`, `sysctl` and `dmesg`, printing what the real tools
//! (GNU coreutils 9.1, util-linux 2.38.1 and procps-ng 4.0.2, as on Debian 12) printed on
//! the box at capture time. tests/show_system.rs holds them to the real tools run right
//! around `snap collect`.
//!
//! - `df`: the figures are the filesystem scan's (`scan/filesystems.jsonl`, one statvfs
//!   per mount taken at collection), printed with coreutils' arithmetic: sizes in 1K
//!   blocks rounded up, `-h`/`-H` through gnulib's `human_readable` (powers of 1024 or
//!   1000, rounded up, one decimal below 10), Use% rounded up, every column as wide as
//!   its widest cell with df's minimum widths. Plain `df` lists the mounts the scan
//!   marks `df_listed` (coreutils' own choice, made at collection); `-a` lists every
//!   mount, with `-` figures where statvfs failed. Where coreutils keeps a later mount
//!   of a device in place of an earlier one (a bind mount nearer the root, an
//!   over-mount), the row takes the earlier one's place as df's list does.
//! - `mount`: one line per line of `proc/self/mountinfo`, options merged as libmount
//!   merges the per-mount and superblock ones (`rw`/`ro` once, first); `proc/mounts`
//!   when the bundle has no mountinfo.
//! - `sysctl`: `name = value` from the raw copy of /proc/sys, in the order the kernel
//!   lists the tree (each directory by name, which is what `sysctl -a` walks), one line
//!   per line of a file, a file's tabs kept as the kernel wrote them. Files the
//!   collector could not read (stable_secret gives EIO) are absent, as sysctl skips
//!   them; empty files print nothing; the deprecated neigh timers are left out by
//!   `sysctl -a` and by the collector alike.
//! - `dmesg`: `kernel/kmsg.txt` parsed and rendered by snap-bundle's kmsg module, plain
//!   `[seconds]` by default and `-T` with util-linux 2.38's clock arithmetic on the
//!   manifest's clocks and UTC offset.
//!
//! What cannot be replayed: names that df and mount resolve on the live box (a
//! `/dev/disk/by-uuid/...` source canonicalised to `/dev/dm-0`, a loop device shown as
//! its backing file, symlinks in a source path) are printed as the kernel gave them, and
//! `mount` knows nothing of /run/mount/utab's user options (`x-...`), which the bundle
//! does not hold.

use std::io::Write;

use snap_analyzers::Input;
use snap_bundle::kmsg::{self, BootClock, CtimeRule};
use snap_bundle::manifest::EntryStatus;
use snap_bundle::mountinfo::{parse_mountinfo, unescape};
use snap_bundle::names;
use snap_bundle::scan::Filesystem;
use snap_collectors::collectors::filesystems::{is_dummy, is_remote};

use super::{letter_options, skip, View, ViewError};

pub const DF: View = View {
    name: "df",
    replays: "df: space per mount; -h/-H (human), -i (inodes), -T (type), -k/-m, -a (all), -l, -t/-x TYPE",
    needs: &[names::FILESYSTEMS],
    render: df,
};

pub const MOUNT: View = View {
    name: "mount",
    replays: "mount: SOURCE on TARGET type TYPE (OPTIONS) per mount; -t TYPES",
    needs: &[MOUNTINFO],
    render: mount,
};

pub const SYSCTL: View = View {
    name: "sysctl",
    replays: "sysctl -a, or sysctl NAME...: kernel settings from proc/sys; -n (values), -N (names), -e",
    needs: &["proc/sys/kernel/pid_max"],
    render: sysctl,
};

pub const DMESG: View = View {
    name: "dmesg",
    replays: "dmesg: the kernel log; -T (ctime), -t (no time), -l/--level LIST, -k (kernel), -u (user)",
    needs: &[names::KMSG],
    render: dmesg,
};

const MOUNTINFO: &str = "proc/self/mountinfo";
const MOUNTS: &str = "proc/mounts";
const PROC_SYS: &str = "proc/sys/";

fn usage(msg: impl Into<String>) -> ViewError {
    ViewError::Usage(msg.into())
}

/// Long options (`--all`, `--type=X`, `--type X`) rewritten as the short ones
/// [`letter_options`] takes; `longs` maps each long name to its letter.
fn short_forms(
    view: &str,
    args: &[String],
    longs: &[(&str, char)],
    with_value: &str,
) -> Result<Vec<String>, ViewError> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let Some(long) = arg.strip_prefix("--") else {
            out.push(arg.clone());
            continue;
        };
        let (name, value) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        let Some(&(_, c)) = longs.iter().find(|(l, _)| *l == name) else {
            return Err(usage(format!("{view}: unknown option --{name}")));
        };
        out.push(format!("-{c}"));
        match value {
            Some(v) if with_value.contains(c) => out.push(v.to_string()),
            Some(_) => return Err(usage(format!("{view}: --{name} takes no value"))),
            None => {}
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// df

/// How df prints sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    /// Blocks of this many bytes, rounded up (`-k`, `-m`).
    Blocks(u64),
    /// gnulib `human_readable` with autoscale: base 1024 (`-h`) or 1000 (`-H`).
    Human(u128),
}

/// gnulib's `human_readable` with `human_autoscale` and ceiling rounding (df's `-h` and
/// `-H`, and the inode counts of `-ih`), for a figure already in its output unit, as df's
/// integer path computes it: each division carries tenths and whether anything below
/// them was dropped, the result is rounded up, and one decimal is shown below 10.
fn human(n: u128, base: u128) -> String {
    const LETTERS: [&str; 11] = ["", "K", "M", "G", "T", "P", "E", "Z", "Y", "R", "Q"];
    let (mut amt, mut tenths, mut rounding, mut exponent) = (n, 0u128, 0u128, 0usize);
    let mut fraction = String::new();
    if amt >= base {
        loop {
            let r10 = (amt % base) * 10 + tenths;
            let r2 = (r10 % base) * 2 + (rounding >> 1);
            amt /= base;
            tenths = r10 / base;
            rounding = if r2 < base { u128::from(r2 + rounding != 0) } else { 2 + u128::from(base < r2 + rounding) };
            exponent += 1;
            if amt < base || exponent >= LETTERS.len() - 1 {
                break;
            }
        }
        if amt < 10 {
            if rounding > 0 {
                tenths += 1;
                rounding = 0;
                if tenths == 10 {
                    amt += 1;
                    tenths = 0;
                }
            }
            if amt < 10 {
                fraction = format!(".{tenths}");
                tenths = 0;
                rounding = 0;
            }
        }
    }
    if tenths + rounding > 0 {
        amt += 1;
        if amt == base && exponent < LETTERS.len() - 1 {
            exponent += 1;
            fraction = ".0".to_string();
            amt = 1;
        }
    }
    let letter = if exponent == 1 && base == 1000 { "k" } else { LETTERS[exponent] };
    format!("{amt}{fraction}{letter}")
}

/// A size in bytes as df prints it.
fn size_cell(bytes: u64, scale: Scale) -> String {
    match scale {
        Scale::Blocks(unit) => bytes.div_ceil(unit).to_string(),
        Scale::Human(base) => human(u128::from(bytes), base),
    }
}

/// An inode count as df prints it: inodes are counted in ones, scaled only by -h/-H.
fn count_cell(n: u64, scale: Scale) -> String {
    match scale {
        Scale::Blocks(_) => n.to_string(),
        Scale::Human(base) => human(u128::from(n), base),
    }
}

fn percent_cell(p: Option<u32>) -> String {
    p.map_or_else(|| "-".to_string(), |p| format!("{p}%"))
}

/// coreutils' `hide_problematic_chars`: control characters print as `?`.
fn visible(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

struct DfOptions {
    all: bool,
    inodes: bool,
    print_type: bool,
    local: bool,
    scale: Scale,
    types: Vec<String>,
    exclude: Vec<String>,
}

fn df_options(args: &[String]) -> Result<DfOptions, ViewError> {
    let longs = [
        ("all", 'a'),
        ("human-readable", 'h'),
        ("si", 'H'),
        ("inodes", 'i'),
        ("local", 'l'),
        ("print-type", 'T'),
        ("type", 't'),
        ("exclude-type", 'x'),
    ];
    let args = short_forms("df", args, &longs, "tx")?;
    let mut o = DfOptions {
        all: false,
        inodes: false,
        print_type: false,
        local: false,
        scale: Scale::Blocks(1024),
        types: Vec::new(),
        exclude: Vec::new(),
    };
    for (flag, value) in letter_options("df", &args, "ahHiklmT", "tx")? {
        match flag {
            'a' => o.all = true,
            'h' => o.scale = Scale::Human(1024),
            'H' => o.scale = Scale::Human(1000),
            'i' => o.inodes = true,
            'k' => o.scale = Scale::Blocks(1024),
            'l' => o.local = true,
            'm' => o.scale = Scale::Blocks(1 << 20),
            'T' => o.print_type = true,
            't' => o.types.extend(value.unwrap_or_default().split(',').map(String::from)),
            _ => o.exclude.extend(value.unwrap_or_default().split(',').map(String::from)),
        }
    }
    if let Some(t) = o.types.iter().find(|t| o.exclude.contains(t)) {
        return Err(usage(format!("df: file system type '{t}' both selected and excluded")));
    }
    Ok(o)
}

/// The mounts plain `df` lists, in df's order. coreutils keeps one entry per device;
/// when a later mount wins (a bind mount nearer the root, a mount over the same
/// directory) it takes the place of the one it displaced. The scan says which mount won
/// but not which it displaced (stat's device is not recorded): the displaced one is taken
/// to be the first probed, non-dummy mount of the same device or on the same directory.
fn listed_in_order(all: &[Filesystem]) -> Vec<&Filesystem> {
    let mut rows: Vec<(usize, &Filesystem)> = Vec::new();
    for (i, fs) in all.iter().enumerate().filter(|(_, f)| f.df_listed) {
        let place = all[..i]
            .iter()
            .position(|e| {
                e.status == "ok"
                    && !is_dummy(&e.fstype)
                    && !e.df_listed
                    && ((!e.device.is_empty() && e.device == fs.device) || e.target == fs.target)
            })
            .unwrap_or(i);
        rows.push((place, fs));
    }
    rows.sort_by_key(|(place, _)| *place);
    rows.into_iter().map(|(_, fs)| fs).collect()
}

/// Whether df, given a failed statvfs under `-a`, prints a row of `-` (EACCES, ENOENT)
/// rather than an error.
fn placeholder_row(fs: &Filesystem) -> bool {
    fs.status != "failed"
        || fs.error.as_deref().is_some_and(|e| e.contains("(os error 13)") || e.contains("(os error 2)"))
}

fn df(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let o = df_options(args)?;
    let input = Input::new(bundle);
    let all = input.filesystems().map_err(skip)?;
    let candidates: Vec<&Filesystem> = if o.all { all.iter().collect() } else { listed_in_order(all) };
    let human_mode = matches!(o.scale, Scale::Human(_));

    // Columns: caption, minimum width, right-aligned.
    let mut columns: Vec<(String, usize, bool)> = vec![("Filesystem".into(), 14, false)];
    if o.print_type {
        columns.push(("Type".into(), 4, false));
    }
    if o.inodes {
        columns.extend([("Inodes", 5), ("IUsed", 5), ("IFree", 5), ("IUse%", 4)].map(|(c, w)| (c.into(), w, true)));
    } else {
        let size = match o.scale {
            Scale::Human(_) => "Size".to_string(),
            Scale::Blocks(1024) => "1K-blocks".to_string(),
            Scale::Blocks(_) => "1M-blocks".to_string(),
        };
        let avail = if human_mode { "Avail" } else { "Available" };
        columns
            .extend([(size, 5), ("Used".into(), 5), (avail.into(), 5), ("Use%".into(), 4)].map(|(c, w)| (c, w, true)));
    }
    columns.push(("Mounted on".into(), 0, false));

    let mut table: Vec<Vec<String>> = vec![columns.iter().map(|c| c.0.clone()).collect()];
    for fs in candidates {
        if (!o.types.is_empty() && !o.types.contains(&fs.fstype)) || o.exclude.contains(&fs.fstype) {
            continue;
        }
        if o.local && is_remote(&fs.source, &fs.fstype) {
            continue;
        }
        // df ignores relative mount points (seen in other network namespaces).
        if !fs.target.starts_with('/') {
            continue;
        }
        let ok = fs.status == "ok";
        if !ok && !placeholder_row(fs) {
            continue;
        }
        let mut row = vec![visible(&fs.source)];
        if o.print_type {
            row.push(if ok { visible(&fs.fstype) } else { "-".into() });
        }
        let figures = if !ok {
            vec!["-".to_string(); 4]
        } else if o.inodes {
            vec![
                count_cell(fs.inodes, o.scale),
                count_cell(fs.inodes_used, o.scale),
                count_cell(fs.inodes_free, o.scale),
                percent_cell(fs.inode_use_percent),
            ]
        } else {
            vec![
                size_cell(fs.size_bytes, o.scale),
                size_cell(fs.used_bytes, o.scale),
                size_cell(fs.avail_bytes, o.scale),
                percent_cell(fs.use_percent),
            ]
        };
        row.extend(figures);
        row.push(visible(&fs.target));
        table.push(row);
    }
    if table.len() == 1 {
        return Err(ViewError::Input(format!("{}: df: no file systems processed", names::FILESYSTEMS)));
    }
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| table.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).max(c.1))
        .collect();
    let last = columns.len() - 1;
    for row in &table {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            let pad = " ".repeat(widths[i] - cell.chars().count());
            if columns[i].2 {
                line += &pad;
                line += cell;
            } else {
                line += cell;
                if i != last {
                    line += &pad;
                }
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// mount

/// libmount's `merge_optstr`: the per-mount options then the superblock's, the two
/// `rw`/`ro` flags folded into one at the front (`ro` if either says so).
fn merge_options(vfs: &str, fs: &str) -> String {
    if vfs.is_empty() || fs.is_empty() {
        return if fs.is_empty() { vfs.to_string() } else { fs.to_string() };
    }
    if vfs == fs {
        return vfs.to_string();
    }
    let mut opts: Vec<&str> = vfs.split(',').chain(fs.split(',')).filter(|o| !o.is_empty()).collect();
    let mut remove = |name: &str| match opts.iter().position(|o| *o == name) {
        Some(i) => {
            opts.remove(i);
            true
        }
        None => false,
    };
    let rw = usize::from(remove("rw")) + usize::from(remove("rw"));
    let mut ro = 0;
    if rw != 2 {
        ro += usize::from(remove("ro"));
        if ro + rw < 2 {
            ro += usize::from(remove("ro"));
        }
    }
    let flag = if ro > 0 { "ro" } else { "rw" };
    if opts.is_empty() {
        flag.to_string()
    } else {
        format!("{flag},{}", opts.join(","))
    }
}

/// util-linux's `mnt_match_fstype`: a comma list of types, each or all negated with `no`.
fn type_matches(fstype: &str, pattern: &str) -> bool {
    let all_negated = pattern.starts_with("no");
    let mut any = false;
    for p in pattern.split(',') {
        if let Some(neg) = p.strip_prefix("no") {
            if neg == fstype {
                return false;
            }
            any = true;
        } else if p == fstype {
            return true;
        }
    }
    any && all_negated
}

/// mount's `safe_fputs`: control characters of the target as `\xNN`.
fn safe_target(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_control() {
            out += &format!("\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn mount(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let args = short_forms("mount", args, &[("types", 't')], "t")?;
    let mut pattern = None;
    for (_, value) in letter_options("mount", &args, "", "t")? {
        pattern = value;
    }
    let input = Input::new(bundle);
    // (source, target, type, options)
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    if input.has(MOUNTINFO) {
        let text = input.text(MOUNTINFO).map_err(skip)?;
        let mounts = parse_mountinfo(&text);
        if mounts.is_empty() && !text.trim().is_empty() {
            return Err(ViewError::Input(format!("{MOUNTINFO}: no line parses as a mountinfo line")));
        }
        for m in mounts {
            let options = merge_options(&m.mount_options, &m.super_options);
            rows.push((m.source, m.target, m.fstype, options));
        }
    } else if input.has(MOUNTS) {
        let text = input.text(MOUNTS).map_err(skip)?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            if f.len() < 4 {
                return Err(ViewError::Input(format!("{MOUNTS}: line {}: expected 6 fields: {line:?}", n + 1)));
            }
            rows.push((unescape(f[0]), unescape(f[1]), unescape(f[2]), f[3].to_string()));
        }
    } else {
        return Err(ViewError::Input(format!("the bundle has no {MOUNTINFO} (nor {MOUNTS})")));
    }
    for (source, target, fstype, options) in rows {
        if pattern.as_deref().is_some_and(|p| !type_matches(&fstype, p)) {
            continue;
        }
        let source = if source.is_empty() { "none" } else { source.as_str() };
        let mut line = format!("{source} on {} type {fstype}", safe_target(&target));
        if !options.is_empty() {
            line += &format!(" ({options})");
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// sysctl

/// Files `sysctl -a` leaves out unless `--deprecated` (procps' DEPRECATED list).
const DEPRECATED: [&str; 2] = ["base_reachable_time", "retrans_time"];

/// A key's entry path below proc/sys as sysctl prints it: `/` becomes `.` and a `.`
/// inside a name (an interface `eth0.100`) becomes `/`.
fn dotted(path: &str) -> String {
    path.split('/').map(|p| p.replace('.', "/")).collect::<Vec<_>>().join(".")
}

/// procps' `slashdot` on a NAME argument: the entry path it names below proc/sys, and
/// the name sysctl prints. Whichever separator comes first is the one the name uses.
fn key_path(name: &str) -> (String, String) {
    let swap = |s: &str| {
        s.chars()
            .map(|c| {
                if c == '.' {
                    '/'
                } else if c == '/' {
                    '.'
                } else {
                    c
                }
            })
            .collect::<String>()
    };
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'.' => (swap(name), name.to_string()),
        Some(_) => (name.to_string(), swap(name)),
        None => (name.to_string(), name.to_string()),
    }
}

struct SysctlOptions {
    all: bool,
    values_only: bool,
    names_only: bool,
    ignore_unknown: bool,
    names: Vec<String>,
}

fn sysctl_options(args: &[String]) -> Result<SysctlOptions, ViewError> {
    let longs = [("all", 'a'), ("values", 'n'), ("names", 'N'), ("ignore", 'e')];
    let mut o =
        SysctlOptions { all: false, values_only: false, names_only: false, ignore_unknown: false, names: Vec::new() };
    let (flags, names): (Vec<String>, Vec<String>) = args.iter().cloned().partition(|a| a.starts_with('-'));
    for (flag, _) in letter_options("sysctl", &short_forms("sysctl", &flags, &longs, "")?, "aAXnNe", "")? {
        match flag {
            'a' | 'A' | 'X' => o.all = true,
            'n' => o.values_only = true,
            'N' => o.names_only = true,
            _ => o.ignore_unknown = true,
        }
    }
    if let Some(w) = names.iter().find(|n| n.contains('=')) {
        return Err(usage(format!("sysctl: {w:?}: a bundle's settings can be shown, not written")));
    }
    o.names = names;
    if !o.all && o.names.is_empty() {
        return Err(usage("sysctl: give -a or the NAMEs of the settings to show"));
    }
    Ok(o)
}

/// The keys below `dir` (an entry path ending in `/`) in the order sysctl walks them:
/// each directory's names sorted as the kernel's sysctl tree keeps them (bytewise, a
/// name before the longer names it starts), depth first. With `names_only`, keys the
/// collector could not read count too (the manifest lists them): `sysctl -N` never
/// opens a file.
fn keys_under(input: &Input, dir: &str, names_only: bool) -> Vec<String> {
    let mut keys: Vec<String> = input.entries_under(dir).to_vec();
    if names_only {
        if let Some(m) = input.manifest_with_entries() {
            keys.extend(m.entries.iter().filter(|e| e.path.starts_with(dir)).map(|e| e.path.clone()));
        }
    }
    keys.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    keys.dedup();
    keys
}

fn print_key(input: &Input, entry: &str, name: &str, o: &SysctlOptions, out: &mut dyn Write) -> Result<(), ViewError> {
    if o.names_only {
        writeln!(out, "{name}")?;
        return Ok(());
    }
    let bytes = input.raw(entry).map_err(skip)?;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if !o.values_only {
            write!(out, "{name} = ")?;
        }
        out.write_all(line)?;
        if !o.values_only && line.last() != Some(&b'\n') {
            writeln!(out)?;
        }
    }
    Ok(())
}

fn sysctl(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let o = sysctl_options(args)?;
    let input = Input::new(bundle);
    let walk = |dir: &str, out: &mut dyn Write| -> Result<(), ViewError> {
        for entry in keys_under(&input, dir, o.names_only) {
            let path = &entry[PROC_SYS.len()..];
            if path.rsplit('/').next().is_some_and(|f| DEPRECATED.contains(&f)) {
                continue;
            }
            print_key(&input, &entry, &dotted(path), &o, out)?;
        }
        Ok(())
    };
    if o.all {
        if input.entries_under(PROC_SYS).is_empty() {
            return Err(ViewError::Input(format!("the bundle has no {PROC_SYS} (the collector's copy of /proc/sys)")));
        }
        return walk(PROC_SYS, out);
    }
    let mut problems = Vec::new();
    for name in &o.names {
        let (path, shown) = key_path(name);
        let entry = format!("{PROC_SYS}{}", path.trim_matches('/'));
        if input.has(&entry) {
            print_key(&input, &entry, &shown, &o, out)?;
        } else if !input.entries_under(&format!("{entry}/")).is_empty() {
            walk(&format!("{entry}/"), out)?;
        } else if let Some(r) = input.manifest().and_then(|m| m.entry(&entry)).filter(|r| r.status != EntryStatus::Ok) {
            let why = r.message.clone().unwrap_or_else(|| r.status.as_str().to_string());
            problems.push(format!("{entry}: the collector could not read it ({why})"));
        } else if !o.ignore_unknown {
            problems.push(format!("{entry}: not in the bundle (sysctl: \"{shown}\" is an unknown key)"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ViewError::Input(problems.join("; ")))
    }
}

// ---------------------------------------------------------------------------------------
// dmesg

/// util-linux's level names, by syslog level.
const LEVELS: [&str; 8] = ["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"];

/// dmesg's `parse_level`: a name (any case) or a number 0-7.
fn parse_level(s: &str) -> Result<u8, ViewError> {
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        if let Ok(n) = s.parse::<u8>() {
            if n < 8 {
                return Ok(n);
            }
        }
    } else if let Some(i) = LEVELS.iter().position(|l| l.eq_ignore_ascii_case(s)) {
        return Ok(i as u8);
    }
    Err(usage(format!("dmesg: unknown level '{s}' (levels: {})", LEVELS.join(","))))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TimeFormat {
    Plain,
    Ctime,
    None,
}

/// The kernel log files a sos report may hold, by the time format they print.
const SOS_DMESG: [(&str, TimeFormat); 2] =
    [("sos_commands/kernel/dmesg", TimeFormat::Plain), ("sos_commands/kernel/dmesg_-T", TimeFormat::Ctime)];

/// Whether a sos report holds the plain dmesg output the view prints without options.
pub(super) fn holds_sos_dmesg(input: &Input) -> bool {
    input.sos().is_some() && input.has(SOS_DMESG[0].0)
}

/// A sos report's `dmesg` output, printed as sos saved it: it has no kernel/kmsg.txt
/// records to render again, so only the format sos ran is available, without filters.
fn sos_dmesg(input: &Input, format: TimeFormat, filters: bool, out: &mut dyn Write) -> Result<(), ViewError> {
    let held: Vec<&(&str, TimeFormat)> = SOS_DMESG.iter().filter(|(e, _)| input.has(e)).collect();
    if held.is_empty() {
        return Err(ViewError::Input(format!("the bundle has no {} nor a sos report's dmesg output", names::KMSG)));
    }
    let pick = held.iter().find(|(_, f)| *f == format).filter(|_| !filters);
    let Some((entry, _)) = pick else {
        let have: Vec<&str> = held.iter().map(|(e, _)| *e).collect();
        return Err(ViewError::Input(format!(
            "a sos report keeps dmesg's output, not kernel/kmsg.txt's records: it holds {}, shown without options \
             (dmesg for sos_commands/kernel/dmesg, dmesg -T for dmesg_-T)",
            have.join(" and ")
        )));
    };
    out.write_all(input.raw(entry).map_err(skip)?.as_ref())?;
    Ok(())
}

fn dmesg(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let longs = [("ctime", 'T'), ("notime", 't'), ("level", 'l'), ("kernel", 'k'), ("userspace", 'u')];
    let args = short_forms("dmesg", args, &longs, "l")?;
    let (mut format, mut levels, mut kernel, mut user) = (TimeFormat::Plain, None::<[bool; 8]>, false, false);
    for (flag, value) in letter_options("dmesg", &args, "Ttku", "l")? {
        match flag {
            'T' => format = TimeFormat::Ctime,
            't' => format = TimeFormat::None,
            'k' => kernel = true,
            'u' => user = true,
            _ => {
                let set = levels.get_or_insert([false; 8]);
                for l in value.unwrap_or_default().split(',') {
                    set[usize::from(parse_level(l)?)] = true;
                }
            }
        }
    }
    let input = Input::new(bundle);
    if !input.has(names::KMSG) && input.sos().is_some() {
        return sos_dmesg(&input, format, levels.is_some() || kernel || user, out);
    }
    let raw = input.raw(names::KMSG).map_err(skip)?;
    let records = kmsg::parse(&raw);
    if records.is_empty() && raw.iter().any(|b| !b.is_ascii_whitespace()) {
        return Err(ViewError::Input(format!("{}: no kernel log record parses", names::KMSG)));
    }
    let clock = match format {
        TimeFormat::Ctime => {
            let m = input.manifest().filter(|m| m.clocks.realtime_ns > 0).ok_or_else(|| {
                ViewError::Input(format!(
                    "{}: no clocks recorded, so dmesg -T cannot put a wall-clock time on the log",
                    names::MANIFEST
                ))
            })?;
            Some((BootClock::new(&m.clocks, CtimeRule::WholeSeconds), m.host.utc_offset_seconds))
        }
        _ => None,
    };
    for r in &records {
        if levels.is_some_and(|set| !set[usize::from(r.level & 7)]) {
            continue;
        }
        // -k is util-linux's alias of --facility=kern, -u of every other facility.
        if (kernel || user) && !((kernel && r.facility == 0) || (user && r.facility != 0)) {
            continue;
        }
        let line = match (format, clock) {
            (TimeFormat::Ctime, Some((c, offset))) => kmsg::ctime_line(c.wall_secs(r.ts_usec), offset, &r.message),
            (TimeFormat::None, _) => {
                if r.message.is_empty() {
                    "\n".to_string()
                } else {
                    format!("{}\n", r.message)
                }
            }
            _ => kmsg::plain_line(r.ts_usec, &r.message),
        };
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_follow_gnulib_with_ceiling() {
        // From df -h and df -H on a Debian 12 VM.
        assert_eq!(human(0, 1024), "0");
        assert_eq!(human(4096, 1024), "4.0K");
        assert_eq!(human(8 << 20, 1024), "8.0M");
        assert_eq!(human(3 << 20, 1024), "3.0M");
        assert_eq!(human(12_630_458_368, 1024), "12G");
        assert_eq!(human(270_553_174_016, 1024), "252G");
        assert_eq!(human(25_276_063_744, 1024), "24G");
        assert_eq!(human(1023, 1024), "1023");
        assert_eq!(human(1025, 1024), "1.1K");
        // Just below 10 units rounds up to 10, and 1023.x K to 1.0M.
        assert_eq!(human(10 * 1024 - 1, 1024), "10K");
        assert_eq!(human(1024 * 1024 - 1, 1024), "1.0M");
        assert_eq!(human(4096, 1000), "4.1k");
        assert_eq!(human(12_630_458_368, 1000), "13G");
        assert_eq!(human(1000, 1000), "1.0k");
        assert_eq!(human(3_085_457, 1024), "3.0M");
    }

    #[test]
    fn blocks_round_up() {
        assert_eq!(size_cell(4096, Scale::Blocks(1024)), "4");
        assert_eq!(size_cell(512, Scale::Blocks(1024)), "1");
        assert_eq!(size_cell(3 << 20, Scale::Blocks(1 << 20)), "3");
        assert_eq!(size_cell((3 << 20) + 4096, Scale::Blocks(1 << 20)), "4");
    }

    #[test]
    fn libmount_merges_options() {
        assert_eq!(merge_options("rw,relatime", "rw"), "rw,relatime");
        assert_eq!(
            merge_options("rw,relatime", "rw,size=8192k,nr_inodes=1000"),
            "rw,relatime,size=8192k,nr_inodes=1000"
        );
        assert_eq!(
            merge_options("ro,nosuid,nodev,relatime", "rw,size=4k,mode=755"),
            "ro,nosuid,nodev,relatime,size=4k,mode=755"
        );
        assert_eq!(merge_options("rw", "rw"), "rw");
        assert_eq!(merge_options("rw,nosuid", ""), "rw,nosuid");
        assert_eq!(merge_options("ro", "ro,errors=remount-ro"), "ro,errors=remount-ro");
    }

    #[test]
    fn mount_type_patterns_as_libmount() {
        assert!(type_matches("tmpfs", "tmpfs"));
        assert!(type_matches("tmpfs", "ext4,tmpfs"));
        assert!(!type_matches("proc", "ext4,tmpfs"));
        assert!(type_matches("proc", "noext4,notmpfs"));
        assert!(!type_matches("tmpfs", "noext4,notmpfs"));
    }

    #[test]
    fn sysctl_names_as_procps() {
        assert_eq!(dotted("net/ipv4/conf/eth0.100/rp_filter"), "net.ipv4.conf.eth0/100.rp_filter");
        assert_eq!(key_path("net.ipv4.conf.eth0/100.rp_filter").0, "net/ipv4/conf/eth0.100/rp_filter");
        assert_eq!(
            key_path("net/ipv4/tcp_fin_timeout"),
            ("net/ipv4/tcp_fin_timeout".into(), "net.ipv4.tcp_fin_timeout".into())
        );
        assert_eq!(key_path("kernel.pid_max"), ("kernel/pid_max".into(), "kernel.pid_max".into()));
        // The kernel lists `a` (and everything below it) before `a-b`.
        let mut keys = vec!["proc/sys/fs/a-b", "proc/sys/fs/a/x", "proc/sys/fs/a_c"];
        keys.sort_by(|a, b| a.split('/').cmp(b.split('/')));
        assert_eq!(keys, ["proc/sys/fs/a/x", "proc/sys/fs/a-b", "proc/sys/fs/a_c"]);
    }

    #[test]
    fn dmesg_levels_parse_as_util_linux() {
        assert_eq!(parse_level("err").unwrap(), 3);
        assert_eq!(parse_level("WARN").unwrap(), 4);
        assert_eq!(parse_level("7").unwrap(), 7);
        assert!(parse_level("8").is_err());
        assert!(parse_level("warning").is_err());
    }
}
