//! Streaming bundle writer and the atomic output file it lands in.
//!
//! The manifest must be the first entry, but it can only be written once everything
//! else has been attempted. The writer therefore compresses the body (every entry after
//! the manifest, plus the tar trailer) as one zstd frame into a spool (an unlinked
//! temporary file beside the destination, or memory when streaming to stdout), and
//! [`BundleWriter::finish`] emits a first frame holding the manifest's tar entry followed
//! by the spooled body frame. Concatenated zstd frames are one valid zstd stream, so
//! `tar --zstd -xf` reads the result as a single archive that starts with the manifest.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const ZSTD_LEVEL: i32 = 3;

/// Where the compressed body waits until the manifest is known.
enum Spool {
    File(File),
    Memory(Vec<u8>),
}

struct CountingSpool {
    spool: Spool,
    written: u64,
}

impl Write for CountingSpool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.spool {
            Spool::File(f) => f.write(buf)?,
            Spool::Memory(v) => v.write(buf)?,
        };
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.spool {
            Spool::File(f) => f.flush(),
            Spool::Memory(_) => Ok(()),
        }
    }
}

pub struct BundleWriter {
    tar: tar::Builder<zstd::stream::write::Encoder<'static, CountingSpool>>,
    spool_dir: Option<PathBuf>,
    mtime: u64,
    stored: u64,
}

/// A large entry being built (a scan of every open file): kept in an unlinked file
/// beside the spool rather than in memory, then appended with
/// [`BundleWriter::add_scratch`].
pub struct Scratch {
    inner: ScratchInner,
    len: u64,
}

enum ScratchInner {
    /// Buffered: records are serialised a few bytes at a time.
    File(io::BufWriter<File>),
    Memory(Vec<u8>),
}

impl Scratch {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Write for Scratch {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            ScratchInner::File(f) => f.write(buf)?,
            ScratchInner::Memory(v) => v.write(buf)?,
        };
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            ScratchInner::File(f) => f.flush(),
            ScratchInner::Memory(_) => Ok(()),
        }
    }
}

/// The body, compressed and closed, waiting for its manifest.
pub struct FinishedBody {
    spool: CountingSpool,
    mtime: u64,
}

impl BundleWriter {
    /// A writer whose body spools into an unlinked file in `spool_dir`, or into memory
    /// when `spool_dir` is None. `mtime` (seconds since the epoch) stamps every entry.
    pub fn new(spool_dir: Option<&Path>, mtime: u64) -> io::Result<BundleWriter> {
        let spool = match spool_dir {
            Some(dir) => Spool::File(tempfile::tempfile_in(dir)?),
            None => Spool::Memory(Vec::new()),
        };
        let encoder = zstd::stream::write::Encoder::new(CountingSpool { spool, written: 0 }, ZSTD_LEVEL)?;
        let mut tar = tar::Builder::new(encoder);
        tar.mode(tar::HeaderMode::Deterministic);
        Ok(BundleWriter { tar, spool_dir: spool_dir.map(Path::to_path_buf), mtime, stored: 0 })
    }

    /// A scratch buffer on the same medium as the spool (disk, or memory for stdout).
    pub fn scratch(&self) -> io::Result<Scratch> {
        let inner = match &self.spool_dir {
            Some(dir) => ScratchInner::File(io::BufWriter::with_capacity(64 << 10, tempfile::tempfile_in(dir)?)),
            None => ScratchInner::Memory(Vec::new()),
        };
        Ok(Scratch { inner, len: 0 })
    }

    /// Appends the first `limit` bytes of a scratch buffer as one entry.
    pub fn add_scratch(&mut self, name: &str, scratch: Scratch, limit: u64) -> io::Result<u64> {
        let size = scratch.len.min(limit);
        let mut header = entry_header(self.mtime, size);
        match scratch.inner {
            ScratchInner::Memory(v) => self.tar.append_data(&mut header, name, &v[..size as usize])?,
            ScratchInner::File(f) => {
                let mut f = f.into_inner().map_err(|e| e.into_error())?;
                f.seek(SeekFrom::Start(0))?;
                self.tar.append_data(&mut header, name, (&mut f).take(size))?
            }
        }
        self.stored += size;
        Ok(size)
    }

    /// Appends one regular-file entry.
    pub fn add(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let mut header = entry_header(self.mtime, data.len() as u64);
        self.tar.append_data(&mut header, name, data)?;
        self.stored += data.len() as u64;
        Ok(())
    }

    /// Uncompressed bytes stored so far.
    pub fn stored_bytes(&self) -> u64 {
        self.stored
    }

    /// Closes the body and writes the whole bundle, manifest first, to `out`.
    /// Returns the compressed size of the body and of the whole bundle.
    pub fn finish(self, manifest: &[u8], out: &mut dyn Write) -> io::Result<(u64, u64)> {
        self.finish_body()?.write(manifest, out)
    }

    /// Closes the body, so that its compressed size is known to the manifest.
    pub fn finish_body(self) -> io::Result<FinishedBody> {
        let encoder = self.tar.into_inner()?;
        let mut spool = encoder.finish()?;
        spool.flush()?;
        Ok(FinishedBody { spool, mtime: self.mtime })
    }
}

impl FinishedBody {
    /// Compressed bytes of the body.
    pub fn len(&self) -> u64 {
        self.spool.written
    }

    pub fn is_empty(&self) -> bool {
        self.spool.written == 0
    }

    /// Writes the bundle, manifest first, to `out`. Returns the compressed size of the
    /// body and of the whole bundle.
    pub fn write(self, manifest: &[u8], out: &mut dyn Write) -> io::Result<(u64, u64)> {
        let FinishedBody { spool, mtime } = self;
        let body_len = spool.written;

        let mut first = Vec::with_capacity(manifest.len() + 1024);
        let mut header = entry_header(mtime, manifest.len() as u64);
        header.set_path(crate::names::MANIFEST).expect("manifest name fits a tar header");
        header.set_cksum();
        first.extend_from_slice(header.as_bytes());
        first.extend_from_slice(manifest);
        first.resize(first.len().div_ceil(512) * 512, 0);
        let first = zstd::bulk::compress(&first, ZSTD_LEVEL)?;
        out.write_all(&first)?;

        match spool.spool {
            Spool::Memory(v) => out.write_all(&v)?,
            Spool::File(mut f) => {
                f.seek(SeekFrom::Start(0))?;
                let copied = io::copy(&mut (&mut f).take(body_len), out)?;
                if copied != body_len {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "spool shorter than written"));
                }
            }
        }
        out.flush()?;
        Ok((body_len, body_len + first.len() as u64))
    }
}

fn entry_header(mtime: u64, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_size(size);
    header
}

/// A file that appears at its destination only when complete.
///
/// It is created as a hidden temporary (mode 0600, exclusive) in the destination's
/// directory; [`AtomicOutput::commit`] syncs and renames it. Dropped uncommitted (an
/// error, a full disk, Ctrl-C), it removes the temporary, so nothing half-written stays.
pub struct AtomicOutput {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl AtomicOutput {
    pub fn create(dest: &Path) -> io::Result<AtomicOutput> {
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = dest
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "destination has no file name"))?;
        let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&tmp)?;
        Ok(AtomicOutput { tmp, dest: dest.to_path_buf(), file: Some(file) })
    }

    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file is open until commit")
    }

    pub fn commit(mut self) -> io::Result<PathBuf> {
        let file = self.file.take().expect("file is open until commit");
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest)?;
        if let Some(dir) = self.dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.tmp = PathBuf::new();
        Ok(self.dest.clone())
    }
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
