//! Opening bundles that someone else made.
//!
//! An archive is streamed through its decompressor and tar into memory (`archive.rs`);
//! nothing is extracted to disk. Entry names that climb out of the bundle, absolute
//! names, links and device nodes are refused with an error naming the entry (a sos
//! report's links are skipped, or read through when they stay inside it); decompressed
//! size and entry count are capped. A directory bundle is read in place without
//! following symbolic links, and may hold any subset of the contract (even no
//! manifest): absent entries are simply absent.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::manifest::Manifest;
use crate::names;
use crate::sos;

mod archive;
pub(crate) mod index;
use archive::{read_archive, read_archive_from, Archive};

/// Caps that keep a hostile bundle from exhausting memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single entry, decompressed.
    pub max_entry_bytes: u64,
    /// All entries together, decompressed.
    pub max_total_bytes: u64,
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_entry_bytes: 512 << 20, max_total_bytes: 2 << 30, max_entries: 1_000_000 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path} is not a snap bundle or sos report: neither a directory nor a tar archive (.tar.zst, .tar.xz, .tar.gz or .tar)")]
    NotABundle { path: PathBuf },
    #[error("corrupt bundle {path}: {detail} ({})", match after {
        Some(entry) => format!("after entry {entry}"),
        None => "before any file entry".to_string(),
    })]
    Corrupt { path: PathBuf, after: Option<String>, detail: String },
    #[error("bundle {path}: entry {entry:?} refused: {reason}")]
    BadEntry { path: PathBuf, entry: String, reason: String },
    #[error("bundle {path}: entry {entry:?} is {size} bytes, over the {limit}-byte limit per entry")]
    EntryTooLarge { path: PathBuf, entry: String, size: u64, limit: u64 },
    #[error("bundle {path}: more than {limit} bytes decompressed (at entry {entry:?})")]
    TooLarge { path: PathBuf, entry: String, limit: u64 },
    #[error("bundle {path}: more than {limit} entries")]
    TooManyEntries { path: PathBuf, limit: usize },
    #[error("bundle {path}: entry {entry} is not valid: {detail}")]
    BadContent { path: PathBuf, entry: String, detail: String },
    #[error("bundle {path}: cannot read entry {entry}: {source}")]
    Read { path: PathBuf, entry: String, source: io::Error },
}

enum Source {
    Archive(Box<Archive>),
    Dir(PathBuf),
}

/// An opened bundle: an archive held in memory or a directory read in place.
pub struct Bundle {
    path: PathBuf,
    source: Source,
    /// The manifest without its per-entry records (see [`Bundle::manifest_head`]).
    manifest: Option<Manifest>,
    /// The whole manifest, read when first asked for (see [`Bundle::manifest`]).
    full_manifest: std::sync::OnceLock<Option<Manifest>>,
    limits: Limits,
    /// A sos report's reading: what it made, and where each made entry came from.
    sos: Option<sos::Report>,
    /// Entries made from a sos report's listings (see [`crate::sos`]): their bytes, or
    /// why they could not be made. Empty for a snap bundle.
    made: BTreeMap<String, Result<Vec<u8>, String>>,
    /// Whether links inside a directory bundle are read through (a sos report's).
    inner_links: bool,
}

/// Entry names longer than this are cut in error messages.
const MAX_SHOWN_NAME: usize = 200;

/// An entry name fit for an error message: lossy UTF-8, cut when very long.
fn shown_name(raw: &[u8]) -> String {
    let s = crate::text::lossy(raw);
    if s.chars().count() <= MAX_SHOWN_NAME {
        return s.into_owned();
    }
    let head: String = s.chars().take(MAX_SHOWN_NAME).collect();
    format!("{head}... ({} bytes)", raw.len())
}

impl Bundle {
    pub fn open(path: &Path) -> Result<Bundle, BundleError> {
        Bundle::open_with_limits(path, Limits::default())
    }

    pub fn open_with_limits(path: &Path, limits: Limits) -> Result<Bundle, BundleError> {
        let meta = std::fs::metadata(path).map_err(|source| BundleError::Open { path: path.into(), source })?;
        if meta.is_dir() {
            // An extracted sos report, or the folder it was extracted in.
            let (root, report) = match sos::Layout::of_dir(path) {
                Some((root, layout)) => (root, Some(layout)),
                None => (path.to_path_buf(), None),
            };
            return Bundle::with_source(path, Source::Dir(root), report, limits);
        }
        if !meta.is_file() {
            // A FIFO or device would block or never end.
            return Err(BundleError::NotABundle { path: path.into() });
        }
        Bundle::from_archive(path, read_archive(path, &limits)?, limits)
    }

    fn from_archive(path: &Path, mut archive: Archive, limits: Limits) -> Result<Bundle, BundleError> {
        let report = archive.report.take();
        Bundle::with_source(path, Source::Archive(Box::new(archive)), report, limits)
    }

    /// A bundle of `source`; `report` is where its sos report starts, when it is one.
    fn with_source(
        path: &Path,
        mut source: Source,
        report: Option<sos::Layout>,
        limits: Limits,
    ) -> Result<Bundle, BundleError> {
        let parsed = match &mut source {
            Source::Archive(a) => a.manifest.take(),
            Source::Dir(_) => None,
        };
        let mut bundle = Bundle {
            path: path.to_path_buf(),
            source,
            manifest: None,
            full_manifest: std::sync::OnceLock::new(),
            limits,
            sos: None,
            made: BTreeMap::new(),
            inner_links: false,
        };
        if let Some(layout) = report {
            bundle.inner_links = true;
            let t = sos::translate(&bundle, layout.top);
            bundle.sos = Some(t.report);
            bundle.made = t.entries;
            bundle.manifest = Some(t.manifest);
            return Ok(bundle);
        }
        let parsed = match parsed {
            Some(parsed) => Some(parsed),
            None => bundle
                .get(names::MANIFEST)?
                .map(|bytes| Manifest::from_json_without_entries(&bytes).map_err(|e| e.to_string())),
        };
        if let Some(parsed) = parsed {
            bundle.manifest = Some(parsed.map_err(|detail| BundleError::BadContent {
                path: path.into(),
                entry: names::MANIFEST.into(),
                detail,
            })?);
        }
        Ok(bundle)
    }

    /// A bundle held in memory (`snap analyze --live` collects into one); `label` names
    /// it in errors.
    pub fn from_bytes(label: &Path, bytes: &[u8]) -> Result<Bundle, BundleError> {
        let limits = Limits::default();
        Bundle::from_archive(label, read_archive_from(label, bytes, bytes.len() as u64, &limits)?, limits)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole manifest, per-entry records included; absent for hand-made or
    /// third-party trees. The records are read on the first call (they are most of a
    /// busy host's manifest, and analysis does not need them); records that do not
    /// parse leave the list empty.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.full_manifest
            .get_or_init(|| {
                let head = self.manifest.as_ref()?;
                let full = self.get(names::MANIFEST).ok().flatten().and_then(|b| Manifest::from_json(&b).ok());
                Some(full.unwrap_or_else(|| head.clone()))
            })
            .as_ref()
    }

    /// How a sos report was read (None for a snap bundle): the entries made from its
    /// listings and the files each came from, its host facts' sources, and notes.
    pub fn sos(&self) -> Option<&sos::Report> {
        self.sos.as_ref()
    }

    /// The report files an entry was made from, when the bundle is a sos report and the
    /// entry one made from its listings (`scan/sockets.jsonl` from
    /// `sos_commands/networking/netstat_-W_-neopa`).
    pub fn made_from(&self, entry: &str) -> Option<&[String]> {
        self.sos.as_ref()?.made.iter().find(|m| m.entry == entry).map(|m| m.from.as_slice())
    }

    /// The manifest without its per-entry records (`entries` is empty): the host facts,
    /// clocks, options, samples, capture and collectors records, and cost.
    pub fn manifest_head(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// The bytes of an entry, or None when the bundle does not hold it.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, BundleError> {
        Ok(self.get(name)?.map(Cow::into_owned))
    }

    /// The bytes of an entry without copying them when the bundle is an archive (a
    /// directory's files are read), or None when the bundle does not hold it.
    pub fn get(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>, BundleError> {
        match self.made(name) {
            Some(made) => made.map(|bytes| Some(Cow::Borrowed(bytes))),
            None => self.get_stored(name),
        }
    }

    /// An entry made from a sos report's listings: its bytes, or why it could not be
    /// made; None for any other entry.
    fn made(&self, name: &str) -> Option<Result<&[u8], BundleError>> {
        let made = self.made.get(name)?;
        Some(made.as_deref().map_err(|detail| BundleError::BadContent {
            path: self.path.clone(),
            entry: name.into(),
            detail: detail.clone(),
        }))
    }

    /// An entry as the archive or directory holds it (not one made from a report).
    fn get_stored(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>, BundleError> {
        let checked;
        let name = match &self.source {
            // Names that are already canonical (what callers almost always pass) skip the
            // allocation of validation.
            Source::Archive(a) if a.index.contains(name) => name,
            _ => {
                checked = names::validate(name.as_bytes()).map_err(|e| BundleError::BadEntry {
                    path: self.path.clone(),
                    entry: name.into(),
                    reason: e.to_string(),
                })?;
                checked.as_str()
            }
        };
        match &self.source {
            Source::Archive(a) => {
                let found = a.index.get(name).or_else(|| a.index.get(&sos::through_links(&a.links, name)?));
                Ok(found.map(|r| Cow::Borrowed(&a.data[r])))
            }
            Source::Dir(root) => Ok(self.read_dir_entry(root, name)?.map(Cow::Owned)),
        }
    }

    /// An entry as a stream, for entries too large to hold (a capture of gigabytes): a
    /// directory bundle's file is read as it is consumed, without the per-entry size
    /// cap of [`Bundle::get`] (nothing is held); an archive's entry is lent from memory.
    /// None when the bundle does not hold it. Links are not followed.
    pub fn open_entry(&self, name: &str) -> Result<Option<EntryReader<'_>>, BundleError> {
        let name = names::validate(name.as_bytes()).map_err(|e| BundleError::BadEntry {
            path: self.path.clone(),
            entry: name.into(),
            reason: e.to_string(),
        })?;
        if let Some(made) = self.made(&name) {
            return made.map(|bytes| Some(EntryReader::Slice(bytes)));
        }
        match &self.source {
            Source::Archive(a) => Ok(a.index.get(&name).map(|r| EntryReader::Slice(&a.data[r]))),
            Source::Dir(root) => {
                let Some(p) = self.dir_entry_path(root, &name)? else { return Ok(None) };
                let read_error = |source| BundleError::Read { path: self.path.clone(), entry: name.clone(), source };
                let file = File::open(&p).map_err(read_error)?;
                if file.metadata().map_err(read_error)?.len() < MAP_FROM_BYTES {
                    return Ok(Some(EntryReader::File(file)));
                }
                // SAFETY: the mapping is read-only and private. If another process cuts
                // the file short while it is mapped, reading past the new end raises
                // SIGBUS (documented on `EntryReader::Mapped`); nothing else can make
                // these bytes change under us in a way Rust's aliasing rules forbid that
                // reading from a file would not also show.
                match unsafe { memmap2::Mmap::map(&file) } {
                    Ok(map) => Ok(Some(EntryReader::Mapped(MappedEntry { map, pos: 0 }))),
                    // A file system that cannot map (some FUSE ones): read it instead.
                    Err(_) => Ok(Some(EntryReader::File(file))),
                }
            }
        }
    }

    /// The path of a directory bundle's entry when it is a regular file reached without
    /// links (walked component by component, so that none is ever followed), else None.
    /// A sos report's links that stay inside it (`proc/net -> self/net`) are read
    /// through, a few deep; no other link is followed.
    fn dir_entry_path(&self, root: &Path, name: &str) -> Result<Option<PathBuf>, BundleError> {
        let mut name = name.to_string();
        for _ in 0..=sos::MAX_LINKS {
            let mut p = root.to_path_buf();
            let parts: Vec<&str> = name.split('/').collect();
            let mut through = None;
            for (i, part) in parts.iter().enumerate() {
                p.push(part);
                let meta = match std::fs::symlink_metadata(&p) {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => {
                        return Err(BundleError::Read { path: self.path.clone(), entry: name.clone(), source })
                    }
                };
                let last = i + 1 == parts.len();
                if meta.file_type().is_symlink() && self.inner_links {
                    through = Some(i);
                    break;
                }
                if meta.file_type().is_symlink() || (!last && !meta.is_dir()) || (last && !meta.is_file()) {
                    return Ok(None);
                }
            }
            let Some(i) = through else { return Ok(Some(p)) };
            let at = parts[..=i].join("/");
            let Some(target) = std::fs::read_link(&p).ok().and_then(|t| t.to_str().map(str::to_string)) else {
                return Ok(None);
            };
            let Some(resolved) = sos::resolve_link(&at, &target) else { return Ok(None) };
            let rest = &parts[i + 1..];
            name = if rest.is_empty() { resolved } else { format!("{resolved}/{}", rest.join("/")) };
        }
        Ok(None)
    }

    /// Names of every regular-file entry, sorted (with the entries made from a sos
    /// report's listings).
    pub fn entries(&self) -> Result<Vec<String>, BundleError> {
        let mut all = self.stored_entries()?;
        if !self.made.is_empty() {
            all.extend(self.made.keys().cloned());
            all.sort();
            all.dedup();
        }
        Ok(all)
    }

    fn stored_entries(&self) -> Result<Vec<String>, BundleError> {
        match &self.source {
            Source::Archive(a) => Ok(a.index.names().map(str::to_string).collect()),
            Source::Dir(root) => {
                let mut out = Vec::new();
                walk_dir(root, "", &mut out, self.limits.max_entries).map_err(|source| BundleError::Read {
                    path: self.path.clone(),
                    entry: ".".into(),
                    source,
                })?;
                out.sort();
                Ok(out)
            }
        }
    }

    fn read_dir_entry(&self, root: &Path, name: &str) -> Result<Option<Vec<u8>>, BundleError> {
        let Some(p) = self.dir_entry_path(root, name)? else { return Ok(None) };
        let read_err = |source| BundleError::Read { path: self.path.clone(), entry: name.into(), source };
        let len = std::fs::symlink_metadata(&p).map_err(read_err)?.len();
        if len > self.limits.max_entry_bytes {
            return Err(BundleError::EntryTooLarge {
                path: self.path.clone(),
                entry: name.into(),
                size: len,
                limit: self.limits.max_entry_bytes,
            });
        }
        let mut data = Vec::new();
        File::open(&p)
            .and_then(|f| f.take(self.limits.max_entry_bytes + 1).read_to_end(&mut data))
            .map_err(read_err)?;
        Ok(Some(data))
    }
}

/// A sos report's files as its translation reads them: the stored entries only.
impl sos::Files for Bundle {
    fn read(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>, String> {
        self.get_stored(name).map_err(|e| e.to_string())
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{dir}/");
        match &self.source {
            Source::Archive(a) => a
                .index
                .starting_with(&prefix)
                .filter(|k| !k[prefix.len()..].contains('/'))
                .map(str::to_string)
                .collect(),
            Source::Dir(root) => {
                // Walked without following links, as entries are read.
                let mut p = root.clone();
                for part in dir.split('/') {
                    p.push(part);
                    if !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                        return Vec::new();
                    }
                }
                let Ok(read) = std::fs::read_dir(&p) else { return Vec::new() };
                let mut out: Vec<String> = read
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter_map(|e| e.file_name().to_str().map(|n| format!("{prefix}{n}")))
                    .filter(|n| names::validate(n.as_bytes()).is_ok_and(|v| v == *n))
                    .collect();
                out.sort();
                out
            }
        }
    }
}

/// A bundle entry read as a stream ([`Bundle::open_entry`]).
pub enum EntryReader<'a> {
    /// An archive's entry, lent from memory.
    Slice(&'a [u8]),
    /// A directory bundle's small file.
    File(File),
    /// A directory bundle's large file (a capture of a gigabyte), mapped into memory
    /// so that it is parsed where the page cache holds it instead of being copied out
    /// through read(2), which cost more than the parsing. The one risk of a mapping: a
    /// file cut short by another process while snap reads it ends snap with SIGBUS.
    Mapped(MappedEntry),
}

/// Files from this size on are mapped rather than read (see [`EntryReader::Mapped`]).
pub const MAP_FROM_BYTES: u64 = 16 << 20;

/// A mapped directory-bundle file (see [`EntryReader::Mapped`]).
pub struct MappedEntry {
    map: memmap2::Mmap,
    /// Where `Read` goes on.
    pos: usize,
}

impl MappedEntry {
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Tells the kernel this process is done with the pages before `offset`: they stay
    /// in the page cache but leave this process's resident set, so a reader going
    /// through a large file once keeps its memory bounded. (Mapping the coming pages
    /// ahead with MADV_POPULATE_READ was measured slower than faulting them in.)
    pub fn release_before(&self, offset: usize) {
        let end = offset.min(self.map.len()) / PAGE * PAGE;
        if end > 0 {
            // SAFETY: DONTNEED on a read-only private file mapping only drops the
            // pages from this process; read again, they come back from the file.
            let _ = unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, 0, end) };
        }
    }
}

/// The page size every platform snap maps on divides.
const PAGE: usize = 4096;

impl Read for EntryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            EntryReader::Slice(s) => s.read(buf),
            EntryReader::File(f) => f.read(buf),
            EntryReader::Mapped(m) => {
                let mut rest = &m.map[m.pos..];
                let n = rest.read(buf)?;
                m.pos += n;
                Ok(n)
            }
        }
    }
}

/// Lists regular files below `root` without following links; iterative, so a deep
/// hostile tree cannot exhaust the stack.
fn walk_dir(root: &Path, _prefix: &str, out: &mut Vec<String>, max: usize) -> io::Result<()> {
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            if ft.is_dir() {
                stack.push((entry.path(), rel));
            } else if ft.is_file() {
                out.push(rel);
            }
            if out.len() + stack.len() > max {
                return Err(io::Error::other(format!("more than {max} entries")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::archive::CHUNK_BYTES;
    use super::*;
    use crate::writer::BundleWriter;

    fn write_bundle(dir: &Path, entries: &[(&str, &[u8])]) -> PathBuf {
        let mut w = BundleWriter::new(Some(dir), 0).unwrap();
        for (n, d) in entries {
            w.add(n, d).unwrap();
        }
        let p = dir.join("b.tar.zst");
        let mut f = File::create(&p).unwrap();
        let m = Manifest { format_version: 1, ..Default::default() };
        w.finish(&m.to_json(), &mut f).unwrap();
        p
    }

    #[test]
    fn round_trip_keeps_manifest_first_and_entries() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_bundle(dir.path(), &[("proc/loadavg", b"0.1 0.2 0.3 1/2 3\n"), ("scan/x.jsonl", b"")]);
        let b = Bundle::open(&p).unwrap();
        assert_eq!(b.manifest().unwrap().format_version, 1);
        assert_eq!(b.read("proc/loadavg").unwrap().unwrap(), b"0.1 0.2 0.3 1/2 3\n");
        assert_eq!(b.read("./proc//loadavg").unwrap().unwrap().len(), 18);
        assert!(b.read("proc/nothing").unwrap().is_none());
        assert_eq!(b.entries().unwrap(), vec!["manifest.json", "proc/loadavg", "scan/x.jsonl"]);
        // The first tar entry of the decompressed stream is the manifest.
        let raw = zstd::decode_all(File::open(&p).unwrap()).unwrap();
        assert_eq!(&raw[..13], b"manifest.json");
    }

    #[test]
    fn entries_across_chunk_boundaries_read_as_the_tar_crate_reads_them() {
        // Sizes from a fixed xorshift sequence: headers, long-name records and data fall
        // across the 1 MiB chunk boundaries at every offset modulo the block size.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut b = tar::Builder::new(Vec::new());
        let mut want = Vec::new();
        while b.get_ref().len() < 3 * CHUNK_BYTES + 12_345 {
            let i = want.len();
            let size = match next() % 4 {
                0 => 0,
                1 => (next() % 600) as usize,
                2 => (next() % 5000) as usize,
                _ => (next() % 300_000) as usize,
            };
            let name = if next() % 5 == 0 {
                format!("proc/{i}/{}", "n".repeat(100 + (next() % 300) as usize))
            } else {
                format!("proc/{i}/stat")
            };
            let data: Vec<u8> = (0..size).map(|k| (k as u8) ^ (i as u8)).collect();
            let mut h = tar::Header::new_gnu();
            h.set_size(size as u64);
            h.set_mode(0o600);
            b.append_data(&mut h, &name, data.as_slice()).unwrap();
            want.push((name, data));
        }
        let stream = b.into_inner().unwrap();
        let bundle = Bundle::from_bytes(Path::new("mem"), &zstd::encode_all(stream.as_slice(), 1).unwrap()).unwrap();
        let mut names: Vec<&String> = want.iter().map(|(n, _)| n).collect();
        names.sort();
        assert_eq!(bundle.entries().unwrap().iter().collect::<Vec<_>>(), names);
        for (name, data) in &want {
            assert_eq!(bundle.get(name).unwrap().as_deref(), Some(data.as_slice()), "{name}");
        }
        // Every cut of the compressed stream is refused, never a panic or a partial bundle.
        let compressed = zstd::encode_all(stream.as_slice(), 1).unwrap();
        for cut in (0..compressed.len()).step_by(compressed.len() / 97) {
            assert!(Bundle::from_bytes(Path::new("mem"), &compressed[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn the_manifest_records_are_read_only_when_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest { format_version: 1, ..Default::default() };
        m.host.hostname = "h".into();
        m.entries.push(crate::manifest::EntryRecord { path: "proc/x".into(), ..Default::default() });
        std::fs::write(dir.path().join("manifest.json"), m.to_json()).unwrap();
        let b = Bundle::open(dir.path()).unwrap();
        let head = b.manifest_head().unwrap();
        assert_eq!((head.host.hostname.as_str(), head.entries.len()), ("h", 0));
        assert_eq!(b.manifest(), Some(&m));
        // Records that do not parse leave the list empty; the rest still opens.
        let mut bad: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        bad["entries"] = serde_json::json!([{"path": 7}]);
        std::fs::write(dir.path().join("manifest.json"), bad.to_string()).unwrap();
        let b = Bundle::open(dir.path()).unwrap();
        assert_eq!(b.manifest().map(|m| (m.host.hostname.as_str(), m.entries.len())), Some(("h", 0)));
        // Broken JSON inside the records is still refused at open.
        std::fs::write(dir.path().join("manifest.json"), r#"{"format_version":1,"entries":[{"path":}]}"#).unwrap();
        assert!(matches!(Bundle::open(dir.path()), Err(BundleError::BadContent { .. })));
    }

    #[test]
    fn truncated_stream_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let p = write_bundle(dir.path(), &[("a", &big), ("b", &big)]);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let err = Bundle::open(&p).err().expect("truncated archive must fail");
        assert!(matches!(err, BundleError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn an_entry_over_the_cap_streams_from_a_directory_but_is_not_held() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("capture")).unwrap();
        std::fs::write(dir.path().join("capture/window.pcap"), vec![7u8; 5000]).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("capture/linked")).unwrap();
        let limits = Limits { max_entry_bytes: 1000, ..Limits::default() };
        let b = Bundle::open_with_limits(dir.path(), limits).unwrap();
        assert!(matches!(b.get("capture/window.pcap"), Err(BundleError::EntryTooLarge { size: 5000, .. })));
        let mut streamed = Vec::new();
        b.open_entry("capture/window.pcap").unwrap().expect("present").read_to_end(&mut streamed).unwrap();
        assert_eq!(streamed, vec![7u8; 5000]);
        assert!(b.open_entry("capture/linked").unwrap().is_none(), "links are not followed");
        assert!(b.open_entry("capture/none").unwrap().is_none());
        assert!(b.open_entry("../etc/passwd").is_err());
    }

    #[test]
    fn a_large_directory_entry_is_mapped_and_reads_the_same_after_its_pages_are_let_go() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("capture")).unwrap();
        let data: Vec<u8> = (0..MAP_FROM_BYTES as usize + 12_345).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("capture/window.pcap"), &data).unwrap();
        std::fs::write(dir.path().join("capture/small"), b"small").unwrap();
        let b = Bundle::open(dir.path()).unwrap();
        let Some(EntryReader::Mapped(m)) = b.open_entry("capture/window.pcap").unwrap() else {
            panic!("a file of {} bytes is mapped", data.len())
        };
        assert!(m.bytes() == data.as_slice());
        m.release_before(5 << 20);
        m.release_before(usize::MAX);
        assert!(m.bytes() == data.as_slice(), "pages let go come back from the file");
        // Read through `Read`, as the views do.
        let mut read = Vec::new();
        b.open_entry("capture/window.pcap").unwrap().unwrap().read_to_end(&mut read).unwrap();
        assert!(read == data);
        assert!(matches!(b.open_entry("capture/small").unwrap(), Some(EntryReader::File(_))));
    }

    #[test]
    fn directory_bundle_does_not_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/loadavg"), "1 1 1 1/1 1\n").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("proc/meminfo")).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("root")).unwrap();
        let b = Bundle::open(dir.path()).unwrap();
        assert!(b.manifest().is_none());
        assert!(b.read("proc/loadavg").unwrap().is_some());
        assert!(b.read("proc/meminfo").unwrap().is_none());
        assert!(b.read("root/etc/hostname").unwrap().is_none());
        assert_eq!(b.entries().unwrap(), vec!["proc/loadavg"]);
    }

    /// A tar stream of `entries`: (name, kind, data or link target).
    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            if *kind == tar::EntryType::Symlink {
                h.set_size(0);
                b.append_link(&mut h, name, std::str::from_utf8(data).unwrap()).unwrap();
            } else if *kind == tar::EntryType::Regular {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, *data).unwrap();
            } else {
                h.set_size(0);
                b.append_data(&mut h, name, &[][..]).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn xz_gzip_and_plain_tar_read_as_zstd_does() {
        let stream = tar_of(&[
            ("proc/loadavg", tar::EntryType::Regular, b"0.1 0.2 0.3 1/2 3\n"),
            ("proc/meminfo", tar::EntryType::Regular, &[b'x'; 70_000]),
        ]);
        let mut two_streams = xz(&stream[..1024]);
        two_streams.extend(xz(&stream[1024..]));
        for (kind, bytes) in [
            ("zstd", zstd::encode_all(stream.as_slice(), 1).unwrap()),
            ("xz", xz(&stream)),
            ("xz, two streams", two_streams),
            ("gzip", gz(&stream)),
            ("tar", stream.clone()),
        ] {
            let b = Bundle::from_bytes(Path::new(kind), &bytes).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(b.entries().unwrap(), vec!["proc/loadavg", "proc/meminfo"], "{kind}");
            assert_eq!(b.read("proc/meminfo").unwrap().unwrap(), vec![b'x'; 70_000], "{kind}");
            assert!(b.sos().is_none(), "{kind}");
        }
        // Limits hold whatever the compression.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.tar.xz");
        std::fs::write(&p, xz(&stream)).unwrap();
        let limits = Limits { max_total_bytes: 50_000, ..Limits::default() };
        assert!(matches!(Bundle::open_with_limits(&p, limits), Err(BundleError::TooLarge { .. })));
        // Cut short, or not an archive at all.
        let cut = xz(&stream);
        let err = Bundle::from_bytes(Path::new("cut.tar.xz"), &cut[..cut.len() / 2]).err().unwrap();
        assert!(matches!(err, BundleError::Corrupt { .. }), "{err}");
        let err = Bundle::from_bytes(Path::new("junk"), b"just some text, no archive").err().unwrap();
        assert!(err.to_string().contains(".tar.xz, .tar.gz or .tar"), "{err}");
    }

    #[test]
    fn a_sos_report_archive_loses_its_top_directory_and_keeps_its_links_inside() {
        use tar::EntryType::{Directory, Fifo, Regular, Symlink};
        let stream = tar_of(&[
            ("sosreport-h-2022/", Directory, b""),
            ("sosreport-h-2022/proc/self/net/snmp", Regular, b"Tcp: OutSegs\nTcp: 5\n"),
            ("sosreport-h-2022/proc/net", Symlink, b"self/net"),
            ("sosreport-h-2022/proc/escape", Symlink, b"../../../etc"),
            ("sosreport-h-2022/lib", Symlink, b"/usr/lib"),
            ("sosreport-h-2022/a-fifo", Fifo, b""),
            ("sosreport-h-2022/sos_commands/host/hostname", Regular, b"h\n"),
            ("sosreport-h-2022/version.txt", Regular, b"sosreport: 4.5\n"),
        ]);
        let b = Bundle::from_bytes(Path::new("r.tar.xz"), &xz(&stream)).unwrap();
        let r = b.sos().expect("read as a sos report");
        assert_eq!((r.version.as_str(), r.top.as_deref()), ("4.5", Some("sosreport-h-2022")));
        assert_eq!(b.manifest_head().unwrap().host.hostname, "h");
        assert_eq!(b.read("proc/net/snmp").unwrap().unwrap(), b"Tcp: OutSegs\nTcp: 5\n");
        assert!(b.read("proc/escape/hostname").unwrap().is_none());
        assert!(b.read("lib/os-release").unwrap().is_none());
        assert!(b.entries().unwrap().contains(&"sos_commands/host/hostname".to_string()));
        // The same links in a snap bundle are refused, as before.
        let not_sos = tar_of(&[("proc/stat", Regular, b"cpu 1\n"), ("proc/net", Symlink, b"self/net")]);
        let err = Bundle::from_bytes(Path::new("b.tar.zst"), &zstd::encode_all(not_sos.as_slice(), 1).unwrap());
        assert!(err.err().unwrap().to_string().contains("not Symlink entries"));
    }

    #[test]
    fn an_extracted_sos_report_is_read_in_place_or_from_its_parent_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("sosreport-h-2022");
        std::fs::create_dir_all(root.join("sos_commands/host")).unwrap();
        std::fs::create_dir_all(root.join("proc/self/net")).unwrap();
        std::fs::write(root.join("sos_commands/host/hostname"), "h\n").unwrap();
        std::fs::write(root.join("proc/self/net/snmp"), "x\n").unwrap();
        std::os::unix::fs::symlink("self/net", root.join("proc/net")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("proc/up")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        for path in [root.clone(), dir.path().to_path_buf()] {
            let b = Bundle::open(&path).unwrap();
            assert_eq!(b.sos().unwrap().top.as_deref(), (path != root).then_some("sosreport-h-2022"));
            assert_eq!(b.manifest_head().unwrap().host.hostname, "h");
            assert_eq!(b.read("proc/net/snmp").unwrap().unwrap(), b"x\n");
            assert!(b.read("proc/up/sosreport-h-2022/proc/self/net/snmp").unwrap().is_none());
            assert!(b.read("etc/hostname").unwrap().is_none());
            assert!(b.read("loop/x").unwrap().is_none());
        }
    }
}
