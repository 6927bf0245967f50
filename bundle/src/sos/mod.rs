//! Reading sos reports: the listings of other tools turned into snap's scan records.
//!
//! A sos report keeps raw copies at their host paths (`proc/`, `sys/`, `etc/`), as a
//! bundle does, and command outputs under `sos_commands/<plugin>/<command line>`. The
//! parsers here read those outputs (lsof, netstat, ss, df, ps, uptime) into the records
//! snap's own collectors write, so that every rule and view reads one format; the
//! [`Report`] says which file each made entry came from. The report's own files are
//! never changed or shadowed: made entries live in names a sos report does not use
//! (`scan/`), and host facts go into a manifest made for the report.
//!
//! What sos versions write, 3.x to 4.x (file names are the command line with spaces and
//! slashes replaced): `sos_commands/process/ps_*` (auxwww, auxwwwm, alxwww, -elfL, axo
//! ...), `sos_commands/{process,filesys}/lsof_*`, `sos_commands/networking/netstat_*`
//! and `ss_*`, `sos_commands/filesys/df_*`, `sos_commands/{host,general}/uptime`,
//! `sos_commands/kernel/uname_-a`, `sos_commands/date/*` and `sos_commands/systemd/timedatectl`.

pub mod df;
mod host;
pub mod lsof;
pub mod netstat;
pub mod ps;
pub mod uptime;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::manifest::Manifest;
use crate::mountinfo;
use crate::names;
use crate::scan::{OpenFile, Socket};

/// Where a sos report's tree starts in an archive: under one top directory
/// (`sosreport-host-2022-02-10-abcdef/`), or at the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) top: Option<String>,
}

/// The directories only a sos report has; any one of them marks a tree as one.
const MARKS: [&str; 3] = ["sos_commands/", "sos_logs/", "sos_reports/"];

impl Layout {
    /// The layout of an archive whose (sorted) entry names are `index`'s keys, when it
    /// is a sos report.
    pub(crate) fn of_archive(index: &crate::reader::index::Index) -> Option<Layout> {
        let first = index.names().next()?;
        let last = index.names().next_back()?;
        // Sorted names: when the first and the last share a top directory, all do.
        let top = first
            .split_once('/')
            .map(|(top, _)| top)
            .filter(|top| last.strip_prefix(top).is_some_and(|rest| rest.starts_with('/')));
        let prefix = top.map(|t| format!("{t}/")).unwrap_or_default();
        let holds = |dir: &str| {
            let p = format!("{prefix}{dir}");
            let found = index.starting_with(&p).next().is_some();
            found
        };
        MARKS.iter().any(|m| holds(m)).then(|| Layout { top: top.map(str::to_string) })
    }

    /// The root of the sos report in directory `dir`, with its layout: `dir` itself, or
    /// its only subdirectory (an archive extracted where it lay), which is then the top.
    /// Links are not followed.
    pub(crate) fn of_dir(dir: &Path) -> Option<(PathBuf, Layout)> {
        let is_report = |d: &Path| {
            MARKS.iter().any(|m| std::fs::symlink_metadata(d.join(m.trim_end_matches('/'))).is_ok_and(|m| m.is_dir()))
        };
        if is_report(dir) {
            return Some((dir.to_path_buf(), Layout { top: None }));
        }
        let mut children = std::fs::read_dir(dir).ok()?;
        let only = children.next()?.ok()?;
        if children.next().is_some() || !only.file_type().ok()?.is_dir() {
            return None;
        }
        let top = only.file_name().to_string_lossy().into_owned();
        is_report(&only.path()).then(|| (only.path(), Layout { top: Some(top) }))
    }
}

/// Links read through in a row at most, so that a loop of links ends.
pub(crate) const MAX_LINKS: usize = 8;

/// The entry a symbolic link at `name` points to, when its `target` is relative and
/// stays inside the tree (`proc/net` -> `self/net` gives `proc/self/net`); None for an
/// absolute target or one that climbs out.
pub(crate) fn resolve_link(name: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    (crate::names::validate(joined.as_bytes()).ok()? == joined).then_some(joined)
}

/// `name` with the links among its leading components (`links`: name to target, as
/// [`resolve_link`] gives them) replaced by their targets, at most [`MAX_LINKS`] times;
/// None when no component is a link.
pub(crate) fn through_links(links: &BTreeMap<String, String>, name: &str) -> Option<String> {
    if links.is_empty() {
        return None;
    }
    let mut name = name.to_string();
    let mut replaced = false;
    'outer: for _ in 0..MAX_LINKS {
        let mut end = 0;
        while end < name.len() {
            end = name[end..].find('/').map_or(name.len(), |i| end + i);
            if let Some(target) = links.get(&name[..end]) {
                name = format!("{target}{}", &name[end..]);
                replaced = true;
                continue 'outer;
            }
            end += 1;
        }
        break;
    }
    replaced.then_some(name)
}

/// What reading a sos report made of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The sos version that wrote it (`4.2`), when the report says.
    pub version: String,
    /// The top directory the archive's entries were under (left out of entry names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top: Option<String>,
    /// The entries made from the report's listings.
    pub made: Vec<Made>,
    /// The host facts of the made manifest, and the file each came from.
    pub facts: Vec<Fact>,
    /// `uptime`'s line, read for the load averages and the time since boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime: Option<UptimeLine>,
    /// What could not be read, or was chosen over what, one sentence each.
    pub notes: Vec<String>,
}

impl Report {
    /// How the report was read, one line each: its version, the entries made and the
    /// host facts with the files they came from, and the notes.
    pub fn summary(&self) -> Vec<String> {
        let version = if self.version.is_empty() { "of an unknown version" } else { self.version.as_str() };
        let top = self.top.as_deref().map(|t| format!(", top directory {t}")).unwrap_or_default();
        let mut out = vec![format!("read as a sos report ({version}{top}); no sampling window and no packet capture")];
        for m in &self.made {
            match &m.error {
                None => out.push(format!("{} made from {} ({} records)", m.entry, m.from.join(" + "), m.records)),
                Some(e) => out.push(format!("{} could not be made: {e}", m.entry)),
            }
        }
        for f in &self.facts {
            out.push(format!("{}: {} (from {})", f.name, f.value, f.from));
        }
        if let Some(u) = &self.uptime {
            out.push(format!("uptime: {} (from {})", u.line, u.entry));
        }
        out.extend(self.notes.iter().map(|n| format!("note: {n}")));
        out
    }
}

/// An entry made from listings of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Made {
    /// The contract's entry name (`scan/sockets.jsonl`).
    pub entry: String,
    /// The report's files it was made from.
    pub from: Vec<String>,
    pub records: usize,
    /// Why it could not be made (the entry then reads as unusable, naming this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One host fact of the made manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    pub name: String,
    pub value: String,
    pub from: String,
}

/// `uptime` as the report holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UptimeLine {
    pub entry: String,
    pub line: String,
    pub load: [f64; 3],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_seconds: Option<u64>,
}

/// At most 60 characters of a line, for the parsers' error messages.
pub(crate) fn excerpt(line: &str) -> String {
    let mut s: String = line.chars().take(60).collect();
    if s.len() < line.len() {
        s.push_str("...");
    }
    s
}

/// Whitespace-separated fields of `s` with their byte spans, for the column readers.
/// Splitting on ASCII whitespace keeps every span on character boundaries.
pub(crate) fn fields(s: &str) -> impl Iterator<Item = (usize, usize, &str)> + '_ {
    let bytes = s.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        (pos > start).then(|| (start, pos, s.get(start..pos).unwrap_or_default()))
    })
}

/// A sos report's files, as the translation reads them.
pub(crate) trait Files {
    /// The bytes of a file, None when absent.
    fn read(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>, String>;
    /// The names (whole, `sos_commands/process/ps_auxwww`) of the regular files
    /// directly in directory `dir`, sorted.
    fn list(&self, dir: &str) -> Vec<String>;
}

/// What the translation adds to the report's files.
pub(crate) struct Translation {
    pub(crate) report: Report,
    /// Made entries: their bytes, or why they could not be made.
    pub(crate) entries: BTreeMap<String, Result<Vec<u8>, String>>,
    pub(crate) manifest: Manifest,
}

/// Reads the report's listings into scan entries and its host facts into a manifest.
pub(crate) fn translate(files: &dyn Files, top: Option<String>) -> Translation {
    let mut t = Translation {
        report: Report { top, ..Report::default() },
        entries: BTreeMap::new(),
        manifest: Manifest::default(),
    };
    // sos's own manifest (sos 4.x): its version and start time.
    let sos_manifest: Option<serde_json::Value> =
        files.read(SOS_MANIFEST).ok().flatten().and_then(|b| serde_json::from_slice(&b).ok());
    t.report.version = version(files, sos_manifest.as_ref()).unwrap_or_default();
    processes(files, &mut t);
    open_files(files, &mut t);
    sockets(files, &mut t);
    filesystems(files, &mut t);
    host::host(files, sos_manifest.as_ref(), &mut t);
    t
}

/// A file as text (invalid UTF-8 replaced); None when absent or unreadable (noted).
fn text(files: &dyn Files, name: &str, notes: &mut Vec<String>) -> Option<String> {
    match files.read(name) {
        Ok(Some(b)) => Some(crate::text::lossy(&b).into_owned()),
        Ok(None) => None,
        Err(e) => {
            notes.push(format!("{name}: {e}"));
            None
        }
    }
}

/// The base name of an entry.
fn base(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The option letters of a command file name (`netstat_-W_-neopa` gives `Wneopa`):
/// every word after the command that starts with one dash.
fn option_letters(name: &str) -> String {
    base(name).split('_').skip(1).filter_map(|w| w.strip_prefix('-').filter(|w| !w.starts_with('-'))).collect()
}

/// sos's own manifest, in sos 4.x reports.
const SOS_MANIFEST: &str = "sos_reports/manifest.json";

/// `sosreport: 4.2` on version.txt's first line, else the version in sos's manifest.
fn version(files: &dyn Files, sos_manifest: Option<&serde_json::Value>) -> Option<String> {
    if let Ok(Some(v)) = files.read("version.txt") {
        let v = crate::text::lossy(&v);
        let first = v.lines().next().unwrap_or("").trim();
        let v = first.rsplit(':').next().unwrap_or(first).trim();
        if !v.is_empty() {
            return Some(v.to_string());
        }
    }
    sos_manifest?.get("version")?.as_str().map(str::to_string)
}

/// Serializes records one JSON object per line.
fn jsonl<T: Serialize>(records: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        // Serializing plain records into a Vec cannot fail.
        if serde_json::to_writer(&mut out, r).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

impl Translation {
    fn made<T: Serialize>(&mut self, entry: &str, from: Vec<String>, parsed: Result<Vec<T>, String>) {
        let (records, error, bytes) = match parsed {
            Ok(records) => (records.len(), None, Ok(jsonl(&records))),
            Err(e) => {
                let detail = format!("{}: {e}", from.join(", "));
                (0, Some(detail.clone()), Err(detail))
            }
        };
        self.report.made.push(Made { entry: entry.to_string(), from, records, error });
        self.entries.insert(entry.to_string(), bytes);
    }

    fn fact(&mut self, name: &str, value: impl ToString, from: &str) {
        self.report.facts.push(Fact { name: name.into(), value: value.to_string(), from: from.into() });
    }
}

fn processes(files: &dyn Files, t: &mut Translation) {
    let names: Vec<String> =
        files.list("sos_commands/process").into_iter().filter(|n| base(n).starts_with("ps_")).collect();
    let mut listings = Vec::new();
    for n in &names {
        if let Some(text) = text(files, n, &mut t.report.notes) {
            listings.push((n.clone(), text));
        }
    }
    if listings.is_empty() {
        return;
    }
    let pairs: Vec<(&str, &str)> = listings.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
    let parsed = ps::parse(&pairs);
    t.made(names::PROCESSES, names, parsed);
}

fn open_files(files: &dyn Files, t: &mut Translation) {
    // sos runs lsof in the process plugin, the filesys plugin, or both, with different
    // options; the largest listing is the one that reached the most processes.
    let mut candidates: Vec<(usize, String, String)> = Vec::new();
    for dir in ["sos_commands/process", "sos_commands/filesys"] {
        for n in files.list(dir).into_iter().filter(|n| base(n) == "lsof" || base(n).starts_with("lsof_")) {
            if let Some(text) = text(files, &n, &mut t.report.notes) {
                candidates.push((text.len(), n, text));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    if candidates.len() > 1 {
        let all: Vec<&str> = candidates.iter().map(|c| c.1.as_str()).collect();
        t.report.notes.push(format!("lsof listings, tried largest first: {}", all.join(", ")));
    }
    let read_lsof: Parser<OpenFile> = |text| lsof::parse_listing(text).map(|l| (l.files, l.unreadable));
    let parsers: Vec<Candidate<OpenFile>> =
        candidates.into_iter().map(|(_, name, text)| (name, text, read_lsof)).collect();
    if let Some((name, parsed)) = first_parsed(parsers, &mut t.report.notes) {
        t.made(names::OPEN_FILES, vec![name], parsed);
    }
}

/// A parser of one listing: its records, and the numbers of the lines it could not read.
type Parser<T> = fn(&str) -> Result<(Vec<T>, Vec<usize>), String>;
/// A listing to try: its name, its text, and its parser.
type Candidate<T> = (String, String, Parser<T>);

/// The first of `candidates` that parses, with the name of its listing; when none
/// does, the first one's error. A listing passed over is noted with its error (sos
/// keeps only the tail of an output over its size limit, which loses the header), and
/// so are the lines left out of the one read.
fn first_parsed<T>(candidates: Vec<Candidate<T>>, notes: &mut Vec<String>) -> Option<(String, Result<Vec<T>, String>)> {
    let mut first_error: Option<(String, String)> = None;
    for (name, text, parse) in candidates {
        match parse(&text) {
            Ok((records, unreadable)) => {
                if let Some(first) = unreadable.first() {
                    notes.push(format!(
                        "{name}: {} lines could not be read and were left out (the first: line {first})",
                        unreadable.len()
                    ));
                }
                return Some((name, Ok(records)));
            }
            Err(e) => {
                notes.push(format!("{name} could not be read: {e}"));
                first_error.get_or_insert((name, e));
            }
        }
    }
    first_error.map(|(name, e)| (name, Err(e)))
}

fn sockets(files: &dyn Files, t: &mut Translation) {
    let listing = files.list("sos_commands/networking");
    let netstat = listing.iter().find(|n| {
        let letters = option_letters(n);
        base(n).starts_with("netstat_")
            && letters.contains('a')
            && letters.contains('p')
            && !letters.contains(['s', 'i', 'g', 'r', 'M'])
    });
    let ss = listing.iter().find(|n| {
        let letters = option_letters(n);
        base(n).starts_with("ss_") && letters.contains('a') && letters.contains('p') && !letters.contains(['s', 'l'])
    });
    // netstat -o gives timers and retransmissions that ss prints in another form; ss is
    // the fallback (sos reports of hosts without net-tools hold only ss).
    let mut candidates: Vec<Candidate<Socket>> = Vec::new();
    let read_netstat: Parser<Socket> = |text| netstat::parse_netstat_listing(text).map(|l| (l.sockets, l.unreadable));
    let read_ss: Parser<Socket> = |text| netstat::parse_ss_listing(text).map(|l| (l.sockets, l.unreadable));
    for (name, parse) in [(netstat, read_netstat), (ss, read_ss)] {
        if let Some(text) = name.and_then(|n| text(files, n, &mut t.report.notes)) {
            candidates.push((name.cloned().unwrap_or_default(), text, parse));
        }
    }
    if let Some((name, parsed)) = first_parsed(candidates, &mut t.report.notes) {
        t.made(names::SOCKETS, vec![name], parsed);
    }
}

fn filesystems(files: &dyn Files, t: &mut Translation) {
    let listing: Vec<String> = files
        .list("sos_commands/filesys")
        .into_iter()
        .filter(|n| base(n).starts_with("df_") && !option_letters(n).contains(['h', 'H']))
        .collect();
    // Prefer the listings with -a (every mount): that is what sos runs.
    let pick = |inodes: bool| {
        let mut c: Vec<&String> = listing.iter().filter(|n| option_letters(n).contains('i') == inodes).collect();
        c.sort_by_key(|n| (!option_letters(n).contains('a'), n.len()));
        c.first().map(|n| n.to_string())
    };
    let (blocks, inodes) = (pick(false), pick(true));
    if blocks.is_none() && inodes.is_none() {
        return;
    }
    let blocks_text = blocks.as_deref().and_then(|n| text(files, n, &mut t.report.notes));
    let inodes_text = inodes.as_deref().and_then(|n| text(files, n, &mut t.report.notes));
    let mut from: Vec<String> = blocks.into_iter().chain(inodes).collect();
    let mut parsed = df::parse(blocks_text.as_deref(), inodes_text.as_deref());
    // Device numbers, types and options from the mount table, as snap's collector
    // records them from mountinfo (the device is what matches an open file to its
    // mount). sos copies mountinfo for itself and for init.
    if let Ok(list) = &mut parsed {
        let mounts = ["proc/self/mountinfo", "proc/1/mountinfo"]
            .iter()
            .find_map(|n| Some((n.to_string(), mountinfo::parse_mountinfo(&text(files, n, &mut t.report.notes)?))))
            .filter(|(_, m)| !m.is_empty());
        if let Some((name, mounts)) = mounts {
            let mut used = false;
            for fs in list.iter_mut() {
                // The last mount on a path is the one df reports.
                if let Some(m) = mounts.iter().rev().find(|m| m.target == fs.target) {
                    fs.device = format!("{}:{}", m.major, m.minor);
                    fs.fstype = m.fstype.clone();
                    fs.options = m.mount_options.clone();
                    used = true;
                }
            }
            if used {
                from.push(name);
            }
        }
    }
    t.made(names::FILESYSTEMS, from, parsed);
}

/// The listings of ../shared/corpus (see its README) that the parsers' tests read.
#[cfg(test)]
pub(crate) mod corpus {
    /// The files of `../shared/corpus/<kind>/{jc,insights-core}` as (`sub/file`, text),
    /// sorted by name. The corpus must be there (CI has it).
    pub(crate) fn files(kind: &str) -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus").join(kind);
        if !dir.is_dir() {
            println!("corpus missing: {} (CI has it; see ../shared/corpus/README)", dir.display());
        }
        assert!(dir.is_dir(), "{} is missing", dir.display());
        let mut out = Vec::new();
        for sub in ["jc", "insights-core"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                let name = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
                out.push((name, crate::text::lossy(&std::fs::read(&path).unwrap()).into_owned()));
            }
        }
        out.sort();
        out
    }
}

/// Damaged copies of real listings, for the parsers' no-panic tests.
#[cfg(test)]
pub(crate) mod damage {
    /// A small deterministic generator (xorshift64).
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Calls `check` with `rounds` copies of `sample`, each damaged in 1 to 8 places:
    /// a byte replaced, up to 40 bytes cut, or one of `pieces` inserted. `seed` makes
    /// the copies; the same seed gives the same copies.
    pub(crate) fn mutations(sample: &str, pieces: &[&[u8]], seed: u64, rounds: usize, mut check: impl FnMut(&str)) {
        let mut state = seed;
        for _ in 0..rounds {
            let mut bytes = sample.as_bytes().to_vec();
            for _ in 0..1 + xorshift(&mut state) % 8 {
                let at = (xorshift(&mut state) as usize) % bytes.len();
                match xorshift(&mut state) % 3 {
                    0 => bytes[at] = xorshift(&mut state) as u8,
                    1 => {
                        let end = (at + (xorshift(&mut state) as usize) % 40).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    _ => {
                        let piece = pieces[(xorshift(&mut state) as usize) % pieces.len()];
                        bytes.splice(at..at, piece.iter().copied());
                    }
                }
                if bytes.is_empty() {
                    bytes.push(b'x');
                }
            }
            check(&crate::text::lossy(&bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(BTreeMap<String, Vec<u8>>);

    impl Files for Mem {
        fn read(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>, String> {
            Ok(self.0.get(name).map(|v| Cow::Borrowed(v.as_slice())))
        }
        fn list(&self, dir: &str) -> Vec<String> {
            let prefix = format!("{dir}/");
            self.0.keys().filter(|k| k.strip_prefix(&prefix).is_some_and(|r| !r.contains('/'))).cloned().collect()
        }
    }

    fn mem(files: &[(&str, &str)]) -> Mem {
        Mem(files.iter().map(|(n, t)| (n.to_string(), t.as_bytes().to_vec())).collect())
    }

    #[test]
    fn layouts() {
        let index = |names: &[&str]| {
            crate::reader::index::Index::new(names.iter().map(|n| (n.to_string(), 0..0)).collect()).unwrap()
        };
        assert_eq!(
            Layout::of_archive(&index(&["top/proc/stat", "top/sos_commands/host/uptime", "top/version.txt"])),
            Some(Layout { top: Some("top".into()) })
        );
        assert_eq!(Layout::of_archive(&index(&["proc/stat", "sos_logs/sos.log"])), Some(Layout { top: None }));
        // A snap bundle, and a tree that only names a marker as a file.
        assert_eq!(Layout::of_archive(&index(&["manifest.json", "proc/stat", "scan/sockets.jsonl"])), None);
        assert_eq!(Layout::of_archive(&index(&["top/sos_commands", "top/x"])), None);
        assert_eq!(Layout::of_archive(&index(&[])), None);
    }

    #[test]
    fn links_inside_the_report_are_read_through() {
        assert_eq!(resolve_link("proc/net", "self/net").as_deref(), Some("proc/self/net"));
        assert_eq!(
            resolve_link("ps", "sos_commands/process/ps_auxwwwm").as_deref(),
            Some("sos_commands/process/ps_auxwwwm")
        );
        assert_eq!(resolve_link("a/b/c", "../../x").as_deref(), Some("x"));
        assert_eq!(resolve_link("a/b", "../../x"), None);
        assert_eq!(resolve_link("lib", "/usr/lib"), None);
        let links: BTreeMap<String, String> =
            [("proc/net", "proc/self/net"), ("proc/self", "proc/1"), ("loop", "loop")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        assert_eq!(through_links(&links, "proc/net/snmp").as_deref(), Some("proc/1/net/snmp"));
        assert_eq!(through_links(&links, "proc/network"), None);
        assert_eq!(through_links(&links, "proc/stat"), None);
        // A loop ends after MAX_LINKS replacements.
        assert_eq!(through_links(&links, "loop/x").as_deref(), Some("loop/x"));
    }

    #[test]
    fn option_letters_of_command_files() {
        assert_eq!(option_letters("sos_commands/networking/netstat_-W_-neopa"), "Wneopa");
        assert_eq!(option_letters("df_-al_-x_autofs"), "alx");
        assert_eq!(option_letters("ss_-peaonmi"), "peaonmi");
        assert_eq!(option_letters("journalctl_--no-pager"), "");
    }

    #[test]
    fn host_facts_and_their_sources() {
        let files = mem(&[
            ("sos_commands/host/hostname", "juju-04f1e3-0-lxd-5\n"),
            (
                "sos_commands/kernel/uname_-a",
                "Linux juju-04f1e3-0-lxd-5 5.4.0-97-generic #110-Ubuntu SMP Thu Jan 13 18:22:13 UTC 2022 x86_64 x86_64 x86_64 GNU/Linux\n",
            ),
            ("proc/stat", "cpu 1 2 3\nbtime 1644445976\n"),
            ("sos_commands/date/date_--utc", "Thu Feb 10 09:52:10 UTC 2022\n"),
            ("sos_commands/systemd/timedatectl", "               Local time: Thu 2022-02-10 10:52:10 CET\n           Universal time: Thu 2022-02-10 09:52:10 UTC\n                Time zone: Europe/Paris (CET, +0100)\n"),
            ("sos_commands/host/uptime", " 09:51:36 up 11:18,  1 user,  load average: 6.42, 4.37, 3.94\n"),
            ("version.txt", "sosreport: 4.2\n"),
        ]);
        let t = translate(&files, None);
        let h = &t.manifest.host;
        assert_eq!(h.hostname, "juju-04f1e3-0-lxd-5");
        assert_eq!(
            (h.kernel_release.as_str(), h.arch.as_str(), h.endianness.as_str()),
            ("5.4.0-97-generic", "x86_64", "little")
        );
        assert_eq!(h.kernel_version, "#110-Ubuntu SMP Thu Jan 13 18:22:13 UTC 2022");
        assert_eq!(h.boot_time, 1_644_445_976);
        assert_eq!((h.timezone.as_str(), h.utc_offset_seconds), ("CET", 3600));
        // 2022-02-10 09:52:10 UTC.
        assert_eq!(t.manifest.clocks.realtime_ns, 1_644_486_730 * 1_000_000_000);
        assert_eq!(t.manifest.clocks.boottime_ns, (1_644_486_730 - 1_644_445_976) * 1_000_000_000);
        assert_eq!(t.report.version, "4.2");
        let u = t.report.uptime.as_ref().unwrap();
        assert_eq!((u.load, u.up_seconds), ([6.42, 4.37, 3.94], Some(11 * 3600 + 18 * 60)));
        let captured = t.report.facts.iter().find(|f| f.name == "captured").unwrap();
        assert_eq!(
            (captured.value.as_str(), captured.from.as_str()),
            ("2022-02-10T09:52:10Z", "sos_commands/date/date_--utc")
        );
    }

    #[test]
    fn capture_time_from_the_sos_manifest_is_shifted_by_the_zone_or_noted() {
        let manifest = r#"{"version": "4.0", "start_time": "2026-11-29 05:42:29.634845"}"#;
        let t = translate(&mem(&[("sos_reports/manifest.json", manifest)]), None);
        assert_eq!(t.report.version, "4.0");
        assert_eq!(t.manifest.clocks.realtime_ns / 1_000_000_000, 1_795_930_949);
        assert!(t.report.notes.iter().any(|n| n.contains("taken as UTC")), "{:?}", t.report.notes);
        let zoned = translate(
            &mem(&[
                ("sos_reports/manifest.json", manifest),
                ("sos_commands/systemd/timedatectl", "Time zone: America/New_York (EST, -0500)\n"),
            ]),
            None,
        );
        assert_eq!(zoned.manifest.clocks.realtime_ns / 1_000_000_000, 1_795_930_949 + 5 * 3600);
        assert!(zoned.report.notes.is_empty());
    }

    #[test]
    fn a_listing_that_cannot_be_read_makes_an_entry_that_names_it() {
        let t = translate(&mem(&[("sos_commands/networking/netstat_-W_-neopa", "this is not netstat\n")]), None);
        let made = &t.report.made[0];
        assert_eq!(made.entry, names::SOCKETS);
        let err = t.entries[names::SOCKETS].as_ref().unwrap_err();
        assert!(err.starts_with("sos_commands/networking/netstat_-W_-neopa: "), "{err}");
        assert_eq!(made.error.as_deref(), Some(err.as_str()));
    }

    #[test]
    fn a_listing_that_does_not_read_gives_way_to_the_next() {
        // sos 4.2's lsof +M -n -l.
        let head =
            "COMMAND      PID    TID TASKCMD       USER   FD      TYPE             DEVICE  SIZE/OFF     NODE NAME\n";
        let line =
            "systemd        1                         0  cwd       DIR              252,2      4096  3411983 /\n";
        let lsof = format!("{head}{line}");
        // The larger listing lost its header (sos keeps the tail of a long output).
        let cut = line.repeat(10);
        let t = translate(
            &mem(&[("sos_commands/process/lsof_M_-n_-l", &cut), ("sos_commands/filesys/lsof_-b_M_-n_-l_-P", &lsof)]),
            None,
        );
        let made = &t.report.made[0];
        assert_eq!((made.entry.as_str(), made.records), (names::OPEN_FILES, 1));
        assert_eq!(made.from, ["sos_commands/filesys/lsof_-b_M_-n_-l_-P"]);
        assert!(t.report.notes.iter().any(|n| n.starts_with("sos_commands/process/lsof_M_-n_-l could not be read")));
    }
}
