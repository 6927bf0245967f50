//! Archives: a .tar.zst, .tar.xz, .tar.gz or .tar streamed through its decompressor on
//! one thread and read on another into one buffer of entries, with the limits applied
//! as headers arrive.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::ops::Range;
use std::path::Path;
use std::sync::mpsc;

use super::index::Index;
use super::{shown_name, BundleError, Limits};
use crate::manifest::Manifest;
use crate::names;
use crate::sos;
use crate::untar;

/// An archive's file entries: their bytes back to back in one buffer, and where each
/// one lies in it. One buffer rather than one allocation per entry: a busy host's bundle
/// has tens of thousands of small entries, and reads borrow from it without copying.
pub(super) struct Archive {
    pub(super) data: Vec<u8>,
    pub(super) index: Index,
    /// The manifest, parsed on another thread while the rest of the archive was read.
    pub(super) manifest: Option<Result<Manifest, String>>,
    /// Where the sos report's tree starts, when the archive is one.
    pub(super) report: Option<sos::Layout>,
    /// A sos report's symbolic links that stay inside it, by name: their targets.
    pub(super) links: BTreeMap<String, String>,
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// `ustar` at offset 257 of a tar header (POSIX and GNU archives).
const USTAR_AT: usize = 257;

pub(super) fn read_archive(path: &Path, limits: &Limits) -> Result<Archive, BundleError> {
    let file = File::open(path).map_err(|source| BundleError::Open { path: path.into(), source })?;
    let len = file.metadata().map_or(0, |m| m.len());
    read_archive_from(path, BufReader::new(file), len, limits)
}

/// Reads a `.tar.zst` from any reader of `len` bytes (0 when unknown); `path` names it
/// in errors.
pub(super) fn read_archive_from<R: io::BufRead + Send>(
    path: &Path,
    mut reader: R,
    len: u64,
    limits: &Limits,
) -> Result<Archive, BundleError> {
    let hint = room_for(len, limits);
    let magic = reader.fill_buf().map_err(|source| BundleError::Open { path: path.into(), source })?;
    // snap writes zstd; sos reports come as xz (the default), gzip, or zstd.
    if magic.starts_with(&ZSTD_MAGIC) {
        let decoder = zstd::stream::read::Decoder::with_buffer(reader).map_err(|e| BundleError::Corrupt {
            path: path.into(),
            after: None,
            detail: e.to_string(),
        })?;
        read_tar(path, decoder, hint, limits)
    } else if magic.starts_with(&XZ_MAGIC) {
        // Concatenated streams are read as xz(1) reads them.
        read_tar(path, liblzma::bufread::XzDecoder::new_multi_decoder(reader), hint, limits)
    } else if magic.starts_with(&GZIP_MAGIC) {
        read_tar(path, flate2::bufread::MultiGzDecoder::new(reader), hint, limits)
    } else if magic.get(USTAR_AT..USTAR_AT + 5) == Some(b"ustar") {
        read_tar(path, reader, len.min(hint as u64) as usize, limits)
    } else {
        Err(BundleError::NotABundle { path: path.into() })
    }
}

/// The room reserved up front for the entries of an archive of `len` compressed bytes.
///
/// The entries' buffer grows as entries arrive; grown by doubling, it would be copied
/// and its fresh pages zeroed over and over (on the 2,000-process benchmark bundle, 40
/// MB of entries, the copies and the kernel's zeroing of their pages were a fifth of
/// `snap diff`'s CPU time). So it starts with room for a generous guess: 64 times the
/// compressed size (a busy host's bundle decompresses to ~17 times its size, a sos
/// report's xz ~10 times), at least 64 MiB, at most the limit. The room is only
/// address space until written (the allocator maps a block this large on its own), and
/// is given back when reading ends; a larger archive just grows the buffer again.
fn room_for(len: u64, limits: &Limits) -> usize {
    let guess = len.saturating_mul(64).max(64 << 20).min(limits.max_total_bytes);
    usize::try_from(guess).unwrap_or(usize::MAX)
}

/// Reads the tar stream that `decoder` gives (decompressed, or plain), with room for
/// `room` bytes of entries reserved.
fn read_tar<D: Read + Send>(path: &Path, decoder: D, room: usize, limits: &Limits) -> Result<Archive, BundleError> {
    // Decompression runs on its own thread, a few chunks ahead of the tar parsing (which
    // reads 512-byte headers: straight from the decoder each would be a call into zstd).
    // The bounded channel keeps a bomb from decompressing further than that ahead of the
    // limits the parsing applies; when parsing stops early, the channel closes and the
    // thread ends.
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(CHUNKS_AHEAD);
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("snap-unzstd".into())
            .spawn_scoped(scope, move || decompress(decoder, &full_tx, &empty_rx))
            .map_err(|e| BundleError::Open { path: path.into(), source: e })?;
        let chunks = Chunks { full: full_rx, empty: empty_tx, current: Vec::new(), pos: 0, done: false };
        parse_tar(path, chunks, room, limits, scope)
    })
}

/// Decompressed chunks in flight between the decompressing thread and the tar parser.
const CHUNKS_AHEAD: usize = 4;
pub(super) const CHUNK_BYTES: usize = 1 << 20;

/// Fills chunks from the decoder and sends them, reusing the buffers the reader returns,
/// until the stream ends (an empty chunk), fails (the error), or the reader hangs up.
fn decompress<D: Read>(mut decoder: D, full: &mpsc::SyncSender<io::Result<Vec<u8>>>, empty: &mpsc::Receiver<Vec<u8>>) {
    loop {
        let mut buf = empty.try_recv().unwrap_or_else(|_| vec![0; CHUNK_BYTES]);
        buf.resize(CHUNK_BYTES, 0);
        let mut n = 0;
        let result = loop {
            match decoder.read(&mut buf[n..]) {
                Ok(0) => break Ok(()),
                Ok(k) => {
                    n += k;
                    if n == buf.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        buf.truncate(n);
        let last = n == 0;
        if n > 0 && full.send(Ok(buf)).is_err() {
            return;
        }
        if let Err(e) = result {
            let _ = full.send(Err(e));
            return;
        }
        if last {
            let _ = full.send(Ok(Vec::new()));
            return;
        }
    }
}

/// The decompressed stream as chunks from [`decompress`], read in order.
struct Chunks {
    full: mpsc::Receiver<io::Result<Vec<u8>>>,
    empty: mpsc::Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Chunks {
    /// Makes the current chunk non-empty unless the stream has ended.
    fn fill(&mut self) -> io::Result<()> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(());
            }
            let next = match self.full.recv() {
                Ok(chunk) => chunk?,
                Err(_) => return Err(io::Error::other("the decompressing thread stopped")),
            };
            if next.is_empty() {
                self.done = true;
            }
            let used = std::mem::replace(&mut self.current, next);
            let _ = self.empty.send(used);
            self.pos = 0;
        }
        Ok(())
    }

    /// Skips up to `amount` bytes; fewer only at the end of the stream.
    fn skip(&mut self, amount: u64) -> io::Result<u64> {
        let mut done = 0;
        while done < amount {
            self.fill()?;
            let here = (self.current.len() - self.pos) as u64;
            if here == 0 {
                break;
            }
            let n = here.min(amount - done);
            self.pos += n as usize;
            done += n;
        }
        Ok(done)
    }
}

impl Chunks {
    /// The next `n` bytes as one slice; fewer only at the end of the stream. A stretch
    /// that spans chunks is gathered into one buffer (once per chunk boundary).
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        while self.current.len() - self.pos < n && !self.done {
            let next = match self.full.recv() {
                Ok(chunk) => chunk?,
                Err(_) => return Err(io::Error::other("the decompressing thread stopped")),
            };
            if next.is_empty() {
                self.done = true;
                break;
            }
            let used = if self.pos == self.current.len() {
                std::mem::replace(&mut self.current, next)
            } else {
                let mut joined = Vec::with_capacity(self.current.len() - self.pos + next.len());
                joined.extend_from_slice(&self.current[self.pos..]);
                joined.extend_from_slice(&next);
                let _ = self.empty.send(next);
                std::mem::replace(&mut self.current, joined)
            };
            let _ = self.empty.send(used);
            self.pos = 0;
        }
        let end = self.current.len().min(self.pos + n);
        Ok(&self.current[self.pos..end])
    }

    /// Appends the next `n` bytes to `dst`; fewer only at the end of the stream.
    fn copy_to(&mut self, dst: &mut Vec<u8>, n: usize) -> io::Result<usize> {
        let mut done = 0;
        while done < n {
            self.fill()?;
            let here = (self.current.len() - self.pos).min(n - done);
            if here == 0 {
                break;
            }
            dst.extend_from_slice(&self.current[self.pos..self.pos + here]);
            self.pos += here;
            done += here;
        }
        Ok(done)
    }
}

/// Parses the decompressed tar stream into an [`Archive`], applying `limits`. Headers
/// are read in place in the decompressed chunks ([`untar`]); each entry's data is copied
/// once, straight to the end of the archive's buffer.
fn parse_tar<'scope>(
    path: &Path,
    mut chunks: Chunks,
    room: usize,
    limits: &Limits,
    scope: &'scope std::thread::Scope<'scope, '_>,
) -> Result<Archive, BundleError> {
    // The manifest (the first entry of a snap bundle, megabytes of JSON on a busy host)
    // is parsed on its own thread while the rest is read.
    let mut manifest: Option<std::thread::ScopedJoinHandle<'scope, Result<Manifest, String>>> = None;
    // Indexed once all have arrived (see `Index`).
    let mut entries: Vec<(String, Range<usize>)> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    // Where the address space cannot be had (a strict overcommit policy), the buffer
    // grows as it would have.
    let _ = data.try_reserve_exact(room);
    let mut parser = untar::Parser::default();
    let mut total = 0u64;
    let mut last: Option<String> = None;
    // Entries other than regular files and directories, with their tar type.
    let mut others: Vec<(String, u8, Vec<u8>)> = Vec::new();
    let corrupt =
        |last: &Option<String>, detail: String| BundleError::Corrupt { path: path.into(), after: last.clone(), detail };
    let io_error = |last: &Option<String>, e: io::Error| corrupt(last, e.to_string());
    const CUT_SHORT: &str = "the archive stops without its end-of-archive marker: it was cut short";
    loop {
        // A header block, then as much more as a metadata record needs.
        let mut want = untar::BLOCK;
        let step = loop {
            let at = chunks.peek(want).map_err(|e| io_error(&last, e))?;
            let named = |e: untar::Error| {
                let at = e.entry().map(|raw| names::validate(raw).unwrap_or_else(|_| shown_name(raw)));
                corrupt(&at.or_else(|| last.clone()), e.to_string())
            };
            match parser.next(at).map_err(named)? {
                untar::Step::Need(n) if at.len() == want && n > want => want = n,
                untar::Step::Need(_) => return Err(corrupt(&last, CUT_SHORT.into())),
                step => break step,
            }
        };
        let (raw_name, kind, size, link) = match step {
            untar::Step::End => break,
            untar::Step::Need(_) => unreachable!("asked for above"),
            untar::Step::Skip { len, dir } => {
                chunks.skip(len as u64).map_err(|e| io_error(&last, e))?;
                if let Some(raw) = dir {
                    match names::validate(&raw) {
                        Ok(name) => last = Some(name),
                        // `tar -cf b.tar.zst -C bundle .` starts with the directory `./` itself.
                        Err(names::BadName::Empty) => {}
                        Err(e) => return Err(bad_entry(path, &raw, e.to_string())),
                    }
                }
                continue;
            }
            untar::Step::Member { name, kind, size, link } => (name, kind, size, link),
        };
        let name = names::validate(&raw_name).map_err(|e| bad_entry(path, &raw_name, e.to_string()))?;
        if !matches!(kind, b'0' | 0 | b'7') {
            // Links and special files are never read or followed. A sos report holds
            // them (its top-level `ps -> sos_commands/process/ps_auxwwwm`); a snap bundle
            // never does, so whether one is refused is decided once the archive is known.
            others.push((name.clone(), kind, link));
            if others.len() + entries.len() > limits.max_entries {
                return Err(BundleError::TooManyEntries { path: path.into(), limit: limits.max_entries });
            }
            let skip = untar::BLOCK as u64 + untar::padded(size);
            if chunks.skip(skip).map_err(|e| io_error(&last, e))? < skip {
                return Err(corrupt(&Some(name), CUT_SHORT.into()));
            }
            last = Some(name);
            continue;
        }
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
        if entries.len() >= limits.max_entries {
            return Err(BundleError::TooManyEntries { path: path.into(), limit: limits.max_entries });
        }
        // The header, then exactly `size` bytes (checked against the limits above), then
        // the padding to a whole block.
        chunks.skip(untar::BLOCK as u64).map_err(|e| io_error(&last, e))?;
        let start = data.len();
        let size = size as usize;
        let copied = chunks.copy_to(&mut data, size).map_err(|e| io_error(&Some(name.clone()), e))?;
        if copied < size {
            return Err(corrupt(&Some(name.clone()), format!("entry {name} is shorter than its header says")));
        }
        let padding = untar::padded(size as u64) - size as u64;
        if chunks.skip(padding).map_err(|e| io_error(&Some(name.clone()), e))? < padding {
            return Err(corrupt(&Some(name), CUT_SHORT.into()));
        }
        if name == names::MANIFEST && manifest.is_none() {
            let bytes = data[start..].to_vec();
            let parse = move || Manifest::from_json_without_entries(&bytes).map_err(|e| e.to_string());
            manifest = std::thread::Builder::new().name("snap-manifest".into()).spawn_scoped(scope, parse).ok();
        }
        entries.push((name.clone(), start..data.len()));
        last = Some(name);
    }
    data.shrink_to_fit();
    let manifest = manifest.map(|h| h.join().unwrap_or_else(|_| Err("the manifest parser panicked".to_string())));
    let mut index = Index::new(entries).map_err(|name| BundleError::BadEntry {
        path: path.into(),
        entry: name,
        reason: "duplicate entry".into(),
    })?;
    let report = sos::Layout::of_archive(&index);
    if let (None, Some((name, kind, _))) = (&report, others.first()) {
        return Err(BundleError::BadEntry {
            path: path.into(),
            entry: shown_name(name.as_bytes()),
            reason: format!("a bundle holds only regular files, not {} entries", untar::kind_name(*kind)),
        });
    }
    let strip = report.as_ref().and_then(|r| r.top.as_ref()).map_or(0, |top| top.len() + 1);
    if let Some(top) = report.as_ref().and_then(|r| r.top.as_ref()) {
        index = index.strip(&format!("{top}/"));
    }
    // A sos report's links that stay inside it (`proc/net -> self/net`), read through.
    let links = match &report {
        None => BTreeMap::new(),
        Some(_) => others
            .iter()
            .filter(|(name, kind, _)| *kind == b'2' && name.len() > strip)
            .filter_map(|(name, _, target)| {
                let name = &name[strip..];
                Some((name.to_string(), sos::resolve_link(name, std::str::from_utf8(target).ok()?)?))
            })
            .collect(),
    };
    Ok(Archive { data, index, manifest: if report.is_some() { None } else { manifest }, report, links })
}

fn bad_entry(path: &Path, raw: &[u8], reason: String) -> BundleError {
    BundleError::BadEntry { path: path.into(), entry: shown_name(raw), reason }
}
