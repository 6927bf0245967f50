//! Opening bundles that someone else made.
//!
//! An archive is streamed through zstd and tar into memory; nothing is extracted to
//! disk. Entry names that climb out of the bundle, absolute names, links and device
//! nodes are refused with an error naming the entry; decompressed size and entry count
//! are capped. A directory bundle is read in place without following symbolic links,
//! and may hold any subset of the contract (even no manifest): absent entries are simply
//! absent.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::manifest::Manifest;
use crate::names;

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
    #[error("{path} is not a snap bundle: neither a directory nor a zstd-compressed tar archive")]
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
    Archive(BTreeMap<String, Vec<u8>>),
    Dir(PathBuf),
}

/// An opened bundle: an archive held in memory or a directory read in place.
pub struct Bundle {
    path: PathBuf,
    source: Source,
    manifest: Option<Manifest>,
    limits: Limits,
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Bytes the tar layer may read on its own between two file entries: headers, GNU long
/// names and links, PAX records, padding and the data of skipped directory entries. The
/// tar crate reads long names and PAX records whole into memory before any per-entry
/// limit applies, so without this cap one such record could claim gigabytes.
const MAX_METADATA_BYTES: u64 = 1 << 20;

/// Entry names longer than this are cut in error messages.
const MAX_SHOWN_NAME: usize = 200;

/// The decompressed stream as the tar layer sees it: reads beyond the allowance in
/// `left` fail, and a read that hits the end of the stream is remembered (a tar stream
/// that ends without its end-of-archive marker is truncated).
struct Metered<R> {
    inner: R,
    left: Rc<Cell<u64>>,
    eof: Rc<Cell<bool>>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = self.left.get();
        if left == 0 {
            return Err(io::Error::other(format!(
                "more than {MAX_METADATA_BYTES} bytes of tar metadata (headers, GNU long names, PAX records) \
                 or skipped data before the next file entry"
            )));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.eof.set(true);
        }
        self.left.set(left - n as u64);
        Ok(n)
    }
}

/// An entry name fit for an error message: lossy UTF-8, cut when very long.
fn shown_name(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
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
        let source = if meta.is_dir() {
            Source::Dir(path.to_path_buf())
        } else if meta.is_file() {
            Source::Archive(read_archive(path, &limits)?)
        } else {
            // A FIFO or device would block or never end.
            return Err(BundleError::NotABundle { path: path.into() });
        };
        Bundle::with_source(path, source, limits)
    }

    fn with_source(path: &Path, source: Source, limits: Limits) -> Result<Bundle, BundleError> {
        let mut bundle = Bundle { path: path.to_path_buf(), source, manifest: None, limits };
        if let Some(bytes) = bundle.read(names::MANIFEST)? {
            let manifest = Manifest::from_json(&bytes).map_err(|e| BundleError::BadContent {
                path: path.into(),
                entry: names::MANIFEST.into(),
                detail: e.to_string(),
            })?;
            bundle.manifest = Some(manifest);
        }
        Ok(bundle)
    }

    /// A bundle held in memory (`snap analyze --live` collects into one); `label` names
    /// it in errors.
    pub fn from_bytes(label: &Path, bytes: &[u8]) -> Result<Bundle, BundleError> {
        let limits = Limits::default();
        let source = Source::Archive(read_archive_from(label, bytes, &limits)?);
        Bundle::with_source(label, source, limits)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The manifest, absent for hand-made or third-party trees.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// The bytes of an entry, or None when the bundle does not hold it.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, BundleError> {
        let name = names::validate(name.as_bytes()).map_err(|e| BundleError::BadEntry {
            path: self.path.clone(),
            entry: name.into(),
            reason: e.to_string(),
        })?;
        match &self.source {
            Source::Archive(map) => Ok(map.get(&name).cloned()),
            Source::Dir(root) => self.read_dir_entry(root, &name),
        }
    }

    /// Names of every regular-file entry, sorted.
    pub fn entries(&self) -> Result<Vec<String>, BundleError> {
        match &self.source {
            Source::Archive(map) => Ok(map.keys().cloned().collect()),
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
        // Walk component by component so that no symbolic link is ever followed.
        let mut p = root.to_path_buf();
        let parts: Vec<&str> = name.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            p.push(part);
            let meta = match std::fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(BundleError::Read { path: self.path.clone(), entry: name.into(), source }),
            };
            let last = i + 1 == parts.len();
            if meta.file_type().is_symlink() || (!last && !meta.is_dir()) || (last && !meta.is_file()) {
                return Ok(None);
            }
            if last && meta.len() > self.limits.max_entry_bytes {
                return Err(BundleError::EntryTooLarge {
                    path: self.path.clone(),
                    entry: name.into(),
                    size: meta.len(),
                    limit: self.limits.max_entry_bytes,
                });
            }
        }
        let mut data = Vec::new();
        File::open(&p)
            .and_then(|f| f.take(self.limits.max_entry_bytes + 1).read_to_end(&mut data))
            .map_err(|source| BundleError::Read { path: self.path.clone(), entry: name.into(), source })?;
        Ok(Some(data))
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

fn read_archive(path: &Path, limits: &Limits) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let file = File::open(path).map_err(|source| BundleError::Open { path: path.into(), source })?;
    read_archive_from(path, BufReader::new(file), limits)
}

/// Reads a `.tar.zst` from any reader; `path` names it in errors.
fn read_archive_from<R: io::BufRead>(
    path: &Path,
    mut reader: R,
    limits: &Limits,
) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let magic = reader.fill_buf().map_err(|source| BundleError::Open { path: path.into(), source })?;
    if magic.len() < 4 || magic[..4] != ZSTD_MAGIC {
        return Err(BundleError::NotABundle { path: path.into() });
    }
    let decoder = zstd::stream::read::Decoder::with_buffer(reader).map_err(|e| BundleError::Corrupt {
        path: path.into(),
        after: None,
        detail: e.to_string(),
    })?;
    let left = Rc::new(Cell::new(MAX_METADATA_BYTES));
    let eof = Rc::new(Cell::new(false));
    let metered = Metered { inner: decoder, left: Rc::clone(&left), eof: Rc::clone(&eof) };
    let mut archive = tar::Archive::new(metered);
    let mut map = BTreeMap::new();
    let mut total = 0u64;
    let mut last: Option<String> = None;
    let corrupt = |last: &Option<String>, e: io::Error| BundleError::Corrupt {
        path: path.into(),
        after: last.clone(),
        detail: e.to_string(),
    };
    let mut entries = archive.entries().map_err(|e| corrupt(&last, e))?;
    loop {
        // Headers and extension records up to the next file entry share one allowance.
        left.set(MAX_METADATA_BYTES);
        let Some(entry) = entries.next() else { break };
        let mut entry = entry.map_err(|e| corrupt(&last, e))?;
        let raw_name = entry.path_bytes().into_owned();
        let shown = shown_name(&raw_name);
        let kind = entry.header().entry_type();
        let name = match names::validate(&raw_name) {
            Ok(name) => name,
            // `tar -cf b.tar.zst -C bundle .` starts with the directory `./` itself.
            Err(names::BadName::Empty) if kind.is_dir() => continue,
            Err(e) => return Err(BundleError::BadEntry { path: path.into(), entry: shown, reason: e.to_string() }),
        };
        if kind.is_dir() {
            last = Some(name);
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(BundleError::BadEntry {
                path: path.into(),
                entry: shown,
                reason: format!("a bundle holds only regular files, not {kind:?} entries"),
            });
        }
        let size = entry.size();
        if size > limits.max_entry_bytes {
            return Err(BundleError::EntryTooLarge {
                path: path.into(),
                entry: name,
                size,
                limit: limits.max_entry_bytes,
            });
        }
        total += size;
        if total > limits.max_total_bytes {
            return Err(BundleError::TooLarge { path: path.into(), entry: name, limit: limits.max_total_bytes });
        }
        if map.len() >= limits.max_entries {
            return Err(BundleError::TooManyEntries { path: path.into(), limit: limits.max_entries });
        }
        // The data was checked against the limits above; let exactly that much through.
        left.set(size);
        let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
        entry.read_to_end(&mut data).map_err(|e| BundleError::Corrupt {
            path: path.into(),
            after: Some(name.clone()),
            detail: format!("while reading {name}: {e}"),
        })?;
        if data.len() as u64 != size {
            return Err(BundleError::Corrupt {
                path: path.into(),
                after: Some(name.clone()),
                detail: format!("entry {name} is shorter than its header says"),
            });
        }
        if map.insert(name.clone(), data).is_some() {
            return Err(BundleError::BadEntry { path: path.into(), entry: name, reason: "duplicate entry".into() });
        }
        last = Some(name);
    }
    if eof.get() {
        return Err(BundleError::Corrupt {
            path: path.into(),
            after: last,
            detail: "the archive stops without its end-of-archive marker: it was cut short".into(),
        });
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
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
}
