//! Capture files read in place: classic pcap (microsecond and nanosecond magics, either
//! byte order) and pcapng (section headers of either byte order, interface descriptions
//! with their own link type, snap length, timestamp resolution and offset, enhanced,
//! simple and obsolete packet blocks). [`Capture`] walks the file's bytes and yields one
//! [`Frame`] per packet, borrowing the packet's bytes from the file: nothing is copied
//! and nothing is allocated per packet. [`Stream`] does the same over any
//! [`std::io::Read`] through a buffer the size of the largest record (1 MiB usually), so
//! that a file need not be loaded whole.
//!
//! Records are read front to back, and on large packets each record header is a cache
//! miss that costs more than analyzing the packet: the next header is prefetched (the
//! module's one `unsafe`, an x86-64 prefetch hint; a no-op elsewhere).
//!
//! A file someone else made may be cut short or corrupt. Every structural problem is a
//! [`CaptureError`] naming the byte offset where the bad structure starts and the number
//! of the packet being read (numbered from 1 as tshark's `frame.number`), never a panic;
//! after an error the iterator ends. Packets before the error are good and stay usable.
//!
//! Hand-written rather than taken from a crate: the formats are a few fixed headers,
//! errors must name offsets and packet numbers (nom-based `pcap-parser` reports neither
//! and brings four crates), and the collector already writes pcap by hand for similar
//! reasons.

use serde::Serialize;

/// Which of the two formats a file is, and how its fields are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Format {
    /// Classic libpcap: one link type for the whole file.
    Pcap {
        /// Timestamps in nanoseconds (magic `a1b23c4d`) rather than microseconds (`a1b2c3d4`).
        nanos: bool,
        /// Fields written big-endian.
        big_endian: bool,
        link_type: u32,
        snaplen: u32,
    },
    /// pcapng: per-interface link types and timestamp resolutions.
    Pcapng,
}

/// One packet as the file stores it.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// 1 for the first packet of the file, as tshark's `frame.number`.
    pub number: u64,
    /// Nanoseconds since the Unix epoch (UTC).
    pub time_ns: i64,
    /// The link-layer header type (`LINKTYPE_*`, e.g. 1 Ethernet, 113 Linux cooked).
    pub link_type: u32,
    /// Length of the packet on the wire; at least `data.len()`.
    pub orig_len: u32,
    /// The bytes kept, starting with the link-layer header.
    pub data: &'a [u8],
    /// Byte offset of the packet's record in the file.
    pub offset: u64,
}

/// Why a file cannot be read (further).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{}: {kind}", self.place())]
pub struct CaptureError {
    /// Byte offset in the file where the bad structure starts.
    pub offset: u64,
    /// Number of the packet being read (1-based; 0 while reading the file header).
    pub packet: u64,
    pub kind: CaptureErrorKind,
}

impl CaptureError {
    fn place(&self) -> String {
        if self.packet == 0 {
            format!("byte {}", self.offset)
        } else {
            format!("byte {} (packet {})", self.offset, self.packet)
        }
    }
}

/// What is wrong at [`CaptureError::offset`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CaptureErrorKind {
    #[error("the file is empty")]
    Empty,
    #[error("not a pcap or pcapng file (first bytes {magic:08x})")]
    UnknownMagic { magic: u32 },
    #[error("the {what} needs {need} bytes but only {have} remain: the file is cut short or corrupt")]
    Truncated { what: &'static str, need: u64, have: u64 },
    #[error("unsupported pcap version {major}.{minor}")]
    UnsupportedVersion { major: u16, minor: u16 },
    #[error("pcapng block of type {block_type:#x} has length {length}, not a multiple of 4 of at least 12")]
    BadBlockLength { block_type: u32, length: u32 },
    #[error("pcapng block of type {block_type:#x} starts with length {head} but ends with {tail}")]
    BlockLengthMismatch { block_type: u32, head: u32, tail: u32 },
    #[error("pcapng section header has byte-order magic {magic:08x}")]
    BadByteOrderMagic { magic: u32 },
    #[error("pcapng packet refers to interface {interface}, but only {known} are described")]
    UnknownInterface { interface: u32, known: u32 },
    #[error("pcapng {what} is {size} bytes, too short for its fields")]
    ShortBlock { what: &'static str, size: u32 },
    #[error("pcapng packet says {caplen} bytes follow but its block holds {room}")]
    PacketOutsideBlock { caplen: u32, room: u32 },
    #[error("a record of {length} bytes, more than any capture holds: the file is corrupt")]
    TooLarge { length: u32 },
    #[error("reading the file: {message}")]
    Io { message: String },
}

const PCAP_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_NANOS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;
const BLOCK_IDB: u32 = 1;
const BLOCK_OPB: u32 = 2;
const BLOCK_SPB: u32 = 3;
const BLOCK_EPB: u32 = 6;
/// `if_tsresol` and `if_tsoffset` option codes of an interface description block.
const OPT_TSRESOL: u16 = 9;
const OPT_TSOFFSET: u16 = 14;

fn u16_at(b: &[u8], at: usize, be: bool) -> u16 {
    let v = [b[at], b[at + 1]];
    if be {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

fn u32_at(b: &[u8], at: usize, be: bool) -> u32 {
    let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if be {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

/// How a pcapng interface's timestamps convert to nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    snaplen: u32,
    /// Units per second are 10^exp (`pow2` false) or 2^exp (`pow2` true).
    exp: u8,
    pow2: bool,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_s: i64,
}

impl Interface {
    fn nanos(&self, ts: u64) -> i64 {
        let ns: u128 = if self.pow2 {
            (u128::from(ts) * 1_000_000_000) >> self.exp.min(127)
        } else if self.exp <= 9 {
            u128::from(ts) * 10u128.pow(9 - u32::from(self.exp))
        } else {
            u128::from(ts) / 10u128.pow(u32::from(self.exp.min(38)) - 9)
        };
        let ns = i64::try_from(ns).unwrap_or(i64::MAX);
        ns.saturating_add(self.offset_s.saturating_mul(1_000_000_000))
    }
}

#[derive(Debug)]
enum Layout {
    Pcap { be: bool, nanos: bool, link_type: u32 },
    Pcapng { be: bool, interfaces: Vec<Interface> },
}

/// The largest record accepted (libpcap's limit is 256 KiB): a larger length is corrupt.
pub const MAX_RECORD: u32 = 16 << 20;

/// A packet found by the parser: where its bytes are, not the bytes (so that a reader
/// can refill its buffer between packets).
#[derive(Debug, Clone, Copy)]
struct Found {
    number: u64,
    time_ns: i64,
    link_type: u32,
    orig_len: u32,
    /// Range of the packet's bytes in the parsed slice.
    start: usize,
    len: usize,
    /// File offset of the record.
    offset: u64,
}

impl Found {
    fn frame(self, d: &[u8]) -> Frame<'_> {
        Frame {
            number: self.number,
            time_ns: self.time_ns,
            link_type: self.link_type,
            orig_len: self.orig_len,
            data: &d[self.start..self.start + self.len],
            offset: self.offset,
        }
    }
}

/// The format's state between packets: layout, interfaces, packet count.
#[derive(Debug)]
struct Parser {
    layout: Layout,
    format: Format,
    count: u64,
    last_time: i64,
}

/// Bytes the file header needs before [`Parser::new`] can judge it.
const HEADER_LEN: usize = 24;

impl Parser {
    /// Recognizes the format from the file's first bytes (all of them, or the first
    /// [`HEADER_LEN`]); returns the parser and where the first record starts.
    fn new(data: &[u8]) -> Result<(Parser, usize), CaptureError> {
        let err = |kind| CaptureError { offset: 0, packet: 0, kind };
        if data.is_empty() {
            return Err(err(CaptureErrorKind::Empty));
        }
        if data.len() < 4 {
            let kind = CaptureErrorKind::Truncated { what: "file header", need: 24, have: data.len() as u64 };
            return Err(err(kind));
        }
        let le = u32_at(data, 0, false);
        let be = u32_at(data, 0, true);
        let (big_endian, nanos) = match (le, be) {
            (PCAP_MICROS, _) => (false, false),
            (PCAP_NANOS, _) => (false, true),
            (_, PCAP_MICROS) => (true, false),
            (_, PCAP_NANOS) => (true, true),
            (PCAPNG_SHB, _) => {
                let layout = Layout::Pcapng { be: false, interfaces: Vec::new() };
                return Ok((Parser { layout, format: Format::Pcapng, count: 0, last_time: 0 }, 0));
            }
            _ => return Err(err(CaptureErrorKind::UnknownMagic { magic: be })),
        };
        if data.len() < 24 {
            let kind = CaptureErrorKind::Truncated { what: "pcap file header", need: 24, have: data.len() as u64 };
            return Err(err(kind));
        }
        let (major, minor) = (u16_at(data, 4, big_endian), u16_at(data, 6, big_endian));
        if major != 2 {
            return Err(err(CaptureErrorKind::UnsupportedVersion { major, minor }));
        }
        let snaplen = u32_at(data, 16, big_endian);
        // The upper bits may carry FCS information (libpcap's LT_FCS_*).
        let link_type = u32_at(data, 20, big_endian) & 0xffff;
        let parser = Parser {
            layout: Layout::Pcap { be: big_endian, nanos, link_type },
            format: Format::Pcap { nanos, big_endian, link_type, snaplen },
            count: 0,
            last_time: 0,
        };
        Ok((parser, 24))
    }

    fn error(&self, offset: u64, kind: CaptureErrorKind) -> CaptureError {
        CaptureError { offset, packet: self.count + 1, kind }
    }

    /// The next packet at or after `d[*pos..]`, `base` being the file offset of `d[0]`.
    /// `*pos` moves past every record or block fully read; an error leaves it at the
    /// start of the record or block it is about (so that, for a
    /// [`CaptureErrorKind::Truncated`] one, a reader can fetch more and call again).
    fn next(&mut self, d: &[u8], pos: &mut usize, base: u64) -> Result<Option<Found>, CaptureError> {
        let found = match self.layout {
            Layout::Pcap { be, nanos, link_type } => self.next_pcap(d, pos, base, be, nanos, link_type)?,
            Layout::Pcapng { .. } => self.next_pcapng(d, pos, base)?,
        };
        if let Some(f) = &found {
            self.last_time = f.time_ns;
        }
        Ok(found)
    }

    fn next_pcap(
        &mut self,
        d: &[u8],
        pos: &mut usize,
        base: u64,
        be: bool,
        nanos: bool,
        link_type: u32,
    ) -> Result<Option<Found>, CaptureError> {
        let at = *pos;
        let rest = d.len() - at;
        let offset = base.wrapping_add(at as u64);
        if rest == 0 {
            return Ok(None);
        }
        if rest < 16 {
            let kind = CaptureErrorKind::Truncated { what: "record header", need: 16, have: rest as u64 };
            return Err(self.error(offset, kind));
        }
        let (sec, frac) = (u32_at(d, at, be), u32_at(d, at + 4, be));
        let (caplen, orig_len) = (u32_at(d, at + 8, be), u32_at(d, at + 12, be));
        if caplen > MAX_RECORD {
            return Err(self.error(offset, CaptureErrorKind::TooLarge { length: caplen }));
        }
        if caplen as usize > rest - 16 {
            let kind =
                CaptureErrorKind::Truncated { what: "packet record", need: 16 + u64::from(caplen), have: rest as u64 };
            return Err(self.error(offset, kind));
        }
        let frac_ns = if nanos { i64::from(frac) } else { i64::from(frac) * 1000 };
        *pos = at + 16 + caplen as usize;
        self.count += 1;
        touch_ahead(d, *pos);
        Ok(Some(Found {
            number: self.count,
            time_ns: i64::from(sec) * 1_000_000_000 + frac_ns,
            link_type,
            orig_len: orig_len.max(caplen),
            start: at + 16,
            len: caplen as usize,
            offset,
        }))
    }

    fn next_pcapng(&mut self, d: &[u8], pos: &mut usize, base: u64) -> Result<Option<Found>, CaptureError> {
        loop {
            let at = *pos;
            let offset = base.wrapping_add(at as u64);
            let rest = d.len() - at;
            if rest == 0 {
                return Ok(None);
            }
            if rest < 12 {
                let kind = CaptureErrorKind::Truncated { what: "pcapng block header", need: 12, have: rest as u64 };
                return Err(self.error(offset, kind));
            }
            let Layout::Pcapng { be, .. } = self.layout else { unreachable!("pcapng layout") };
            // The section header's type reads the same in both byte orders; its
            // byte-order magic decides how this and the following blocks are read.
            let block_type = u32_at(d, at, be);
            let be = if block_type == PCAPNG_SHB {
                match u32_at(d, at + 8, false) {
                    PCAPNG_BYTE_ORDER => false,
                    m if m.swap_bytes() == PCAPNG_BYTE_ORDER => true,
                    magic => return Err(self.error(offset + 8, CaptureErrorKind::BadByteOrderMagic { magic })),
                }
            } else {
                be
            };
            let len = u32_at(d, at + 4, be);
            if len < 12 || len & 3 != 0 {
                return Err(self.error(offset, CaptureErrorKind::BadBlockLength { block_type, length: len }));
            }
            if len > MAX_RECORD + 64 {
                return Err(self.error(offset, CaptureErrorKind::TooLarge { length: len }));
            }
            if len as usize > rest {
                let kind =
                    CaptureErrorKind::Truncated { what: "pcapng block", need: u64::from(len), have: rest as u64 };
                return Err(self.error(offset, kind));
            }
            let tail = u32_at(d, at + len as usize - 4, be);
            if tail != len {
                return Err(self.error(offset, CaptureErrorKind::BlockLengthMismatch { block_type, head: len, tail }));
            }
            let body_at = at + 8;
            let body = &d[body_at..at + len as usize - 4];
            if block_type == PCAPNG_SHB {
                if body.len() < 16 {
                    let kind = CaptureErrorKind::ShortBlock { what: "section header block", size: len };
                    return Err(self.error(offset, kind));
                }
                let major = u16_at(body, 4, be);
                if major != 1 {
                    let kind = CaptureErrorKind::UnsupportedVersion { major, minor: u16_at(body, 6, be) };
                    return Err(self.error(offset, kind));
                }
                self.layout = Layout::Pcapng { be, interfaces: Vec::new() };
                *pos = at + len as usize;
                continue;
            }
            let count = self.count;
            let last_time = self.last_time;
            let error = |kind| CaptureError { offset, packet: count + 1, kind };
            let Layout::Pcapng { ref mut interfaces, .. } = self.layout else { unreachable!("pcapng") };
            let found = match block_type {
                BLOCK_IDB => {
                    if body.len() < 8 {
                        let kind = CaptureErrorKind::ShortBlock { what: "interface description block", size: len };
                        return Err(error(kind));
                    }
                    let mut iface = Interface {
                        link_type: u32::from(u16_at(body, 0, be)),
                        snaplen: u32_at(body, 4, be),
                        exp: 6,
                        pow2: false,
                        offset_s: 0,
                    };
                    for (code, value) in Options::new(&body[8..], be) {
                        match (code, value.len()) {
                            (OPT_TSRESOL, 1..) => {
                                iface.pow2 = value[0] & 0x80 != 0;
                                iface.exp = value[0] & 0x7f;
                            }
                            (OPT_TSOFFSET, 8..) => {
                                let raw =
                                    [value[0], value[1], value[2], value[3], value[4], value[5], value[6], value[7]];
                                iface.offset_s = if be { i64::from_be_bytes(raw) } else { i64::from_le_bytes(raw) };
                            }
                            _ => {}
                        }
                    }
                    interfaces.push(iface);
                    None
                }
                BLOCK_EPB | BLOCK_OPB => {
                    if body.len() < 20 {
                        let what = if block_type == BLOCK_EPB { "enhanced packet block" } else { "packet block" };
                        return Err(error(CaptureErrorKind::ShortBlock { what, size: len }));
                    }
                    let iface_id =
                        if block_type == BLOCK_EPB { u32_at(body, 0, be) } else { u32::from(u16_at(body, 0, be)) };
                    let Some(iface) = interfaces.get(iface_id as usize).copied() else {
                        let known = interfaces.len() as u32;
                        return Err(error(CaptureErrorKind::UnknownInterface { interface: iface_id, known }));
                    };
                    let ts = (u64::from(u32_at(body, 4, be)) << 32) | u64::from(u32_at(body, 8, be));
                    let (caplen, orig_len) = (u32_at(body, 12, be), u32_at(body, 16, be));
                    let room = (body.len() - 20) as u32;
                    if caplen > room {
                        return Err(error(CaptureErrorKind::PacketOutsideBlock { caplen, room }));
                    }
                    Some(Found {
                        number: count + 1,
                        time_ns: iface.nanos(ts),
                        link_type: iface.link_type,
                        orig_len: orig_len.max(caplen),
                        start: body_at + 20,
                        len: caplen as usize,
                        offset,
                    })
                }
                BLOCK_SPB => {
                    if body.len() < 4 {
                        let kind = CaptureErrorKind::ShortBlock { what: "simple packet block", size: len };
                        return Err(error(kind));
                    }
                    let Some(iface) = interfaces.first().copied() else {
                        return Err(error(CaptureErrorKind::UnknownInterface { interface: 0, known: 0 }));
                    };
                    let orig_len = u32_at(body, 0, be);
                    let mut caplen = orig_len.min((body.len() - 4) as u32);
                    if iface.snaplen > 0 {
                        caplen = caplen.min(iface.snaplen);
                    }
                    // A simple packet block has no timestamp: the previous packet's is used.
                    Some(Found {
                        number: count + 1,
                        time_ns: last_time,
                        link_type: iface.link_type,
                        orig_len: orig_len.max(caplen),
                        start: body_at + 4,
                        len: caplen as usize,
                        offset,
                    })
                }
                // Name resolution, statistics, secrets, custom blocks: nothing to read.
                _ => None,
            };
            *pos = at + len as usize;
            if let Some(f) = found {
                self.count += 1;
                touch_ahead(d, *pos);
                return Ok(Some(f));
            }
        }
    }
}

/// A capture file in memory, read packet by packet.
#[derive(Debug)]
pub struct Capture<'a> {
    data: &'a [u8],
    pos: usize,
    parser: Parser,
    done: bool,
}

impl<'a> Capture<'a> {
    /// Recognizes the format from the file's first bytes and reads the file header.
    pub fn new(data: &'a [u8]) -> Result<Capture<'a>, CaptureError> {
        let (parser, pos) = Parser::new(data)?;
        Ok(Capture { data, pos, parser, done: false })
    }

    pub fn format(&self) -> Format {
        self.parser.format
    }

    /// Byte offset of the next record.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }

    /// The next packet, or the error that ends the file, or `None` at its end.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'a>, CaptureError>> {
        if self.done {
            return None;
        }
        match self.parser.next(self.data, &mut self.pos, 0) {
            Ok(Some(f)) => Some(Ok(f.frame(self.data))),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Loads the next record's first bytes into the cache now, so that the memory access
/// overlaps with the work on the current packet: a capture is read once, front to back,
/// and on large packets each record's header is otherwise a cache miss that costs more
/// than analyzing the packet.
#[inline]
fn touch_ahead(d: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < d.len() {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = d[at..].as_ptr().cast::<i8>();
        // SAFETY: a prefetch is a hint that never faults and reads nothing into the
        // program; the address is inside `d` anyway.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (d, at);
}

impl<'a> Iterator for Capture<'a> {
    type Item = Result<Frame<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame()
    }
}

/// A capture file read from a stream ([`std::io::Read`]) in chunks, so that memory stays
/// bounded by the largest record, not the file: for files on disk. Frames borrow the
/// current chunk until the next call.
pub struct Stream<R> {
    chunks: Chunked<ReadSource<R>>,
}

impl<R: std::io::Read> Stream<R> {
    /// Reads the file header.
    pub fn new(reader: R) -> Result<Stream<R>, CaptureError> {
        Ok(Stream { chunks: Chunked::new(ReadSource { reader, spare: Vec::new(), size: 0 })? })
    }

    pub fn format(&self) -> Format {
        self.chunks.format()
    }

    /// The next packet, or the error that ends the file, or `None` at its end.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureError>> {
        self.chunks.next_frame()
    }
}

/// Bytes of a chunk, once a file has proved long: the first chunk holds 64 KiB and each
/// next one twice the last, so that a small file costs a small buffer. (Unit tests use
/// tiny chunks, so that records across chunks and records larger than the room before a
/// chunk are common.)
const CHUNK: usize = if cfg!(test) { 1024 } else { 1 << 20 };
const FIRST_CHUNK: usize = if cfg!(test) { 64 } else { 64 << 10 };

/// Part of a file read into a buffer: `buf[at..at + len]`, with room before `at` for the
/// end of the previous chunk when a record spans both (a quarter of the chunk: libpcap's
/// largest record is 256 KiB; a larger one is copied whole instead).
pub(crate) struct Chunk {
    buf: Vec<u8>,
    at: usize,
    len: usize,
}

/// Where chunks come from.
pub(crate) trait Source {
    /// The next chunk; `None` at the end of the file.
    fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>>;
    /// A chunk's buffer done with, for reuse.
    fn recycle(&mut self, buf: Vec<u8>);
}

/// Reads the next chunk of `size` bytes (fewer at the end of the file) into `buf`.
pub(crate) fn read_chunk(
    reader: &mut impl std::io::Read,
    mut buf: Vec<u8>,
    size: usize,
) -> std::io::Result<Option<Chunk>> {
    let at = size / 4;
    buf.resize(at + size, 0);
    let mut len = 0;
    while len < size {
        match reader.read(&mut buf[at + len..]) {
            Ok(0) => break,
            Ok(k) => len += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok((len > 0).then_some(Chunk { buf, at, len }))
}

/// The size of the chunk after one of `size`.
pub(crate) fn next_chunk_size(size: usize) -> usize {
    if size == 0 {
        FIRST_CHUNK
    } else {
        (size * 2).min(CHUNK)
    }
}

/// Chunks read on the calling thread.
pub(crate) struct ReadSource<R> {
    pub(crate) reader: R,
    pub(crate) spare: Vec<u8>,
    pub(crate) size: usize,
}

impl<R: std::io::Read> Source for ReadSource<R> {
    fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        self.size = next_chunk_size(self.size);
        read_chunk(&mut self.reader, std::mem::take(&mut self.spare), self.size)
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.spare = buf;
    }
}

/// A capture read chunk by chunk: a record cut by a chunk's end is completed by moving
/// the cut part into the next chunk's headroom, so bytes are copied only there.
pub(crate) struct Chunked<S> {
    source: S,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`; `base` is the file offset of `buf[0]`
    /// (wrapping: it can be "before" the file).
    start: usize,
    end: usize,
    base: u64,
    eof: bool,
    parser: Parser,
    done: bool,
}

impl<S: Source> Chunked<S> {
    pub(crate) fn new(source: S) -> Result<Chunked<S>, CaptureError> {
        let mut c = Chunked {
            source,
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            parser: Parser {
                layout: Layout::Pcapng { be: false, interfaces: Vec::new() },
                format: Format::Pcapng,
                count: 0,
                last_time: 0,
            },
            done: false,
        };
        while c.end - c.start < HEADER_LEN && !c.eof {
            c.fill()?;
        }
        let (parser, pos) = Parser::new(&c.buf[c.start..c.end])?;
        c.parser = parser;
        c.start += pos;
        Ok(c)
    }

    pub(crate) fn format(&self) -> Format {
        self.parser.format
    }

    /// Appends the next chunk after the unread bytes.
    fn fill(&mut self) -> Result<(), CaptureError> {
        let tail_offset = self.base.wrapping_add(self.start as u64);
        let next = self.source.next_chunk().map_err(|e| CaptureError {
            offset: self.base.wrapping_add(self.end as u64),
            packet: self.parser.count + 1,
            kind: CaptureErrorKind::Io { message: e.to_string() },
        })?;
        let Some(Chunk { buf: mut chunk, at: room, len: n }) = next else {
            self.eof = true;
            return Ok(());
        };
        let tail = self.end - self.start;
        if tail <= room {
            let at = room - tail;
            chunk[at..room].copy_from_slice(&self.buf[self.start..self.end]);
            let old = std::mem::replace(&mut self.buf, chunk);
            if !old.is_empty() {
                self.source.recycle(old);
            }
            self.start = at;
            self.end = room + n;
        } else {
            // A record longer than the room: keep growing the buffer.
            self.buf.drain(..self.start);
            self.end -= self.start;
            self.start = 0;
            self.buf.truncate(self.end);
            self.buf.extend_from_slice(&chunk[room..room + n]);
            self.end += n;
            self.source.recycle(chunk);
        }
        self.base = tail_offset.wrapping_sub(self.start as u64);
        Ok(())
    }

    pub(crate) fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureError>> {
        if self.done {
            return None;
        }
        loop {
            let mut pos = self.start;
            let r = self.parser.next(&self.buf[..self.end], &mut pos, self.base);
            self.start = pos;
            match r {
                Ok(Some(f)) => return Some(Ok(f.frame(&self.buf))),
                Ok(None) if self.eof => {
                    self.done = true;
                    return None;
                }
                Err(e) if self.eof || !matches!(e.kind, CaptureErrorKind::Truncated { .. }) => {
                    self.done = true;
                    return Some(Err(e));
                }
                // More bytes are needed.
                _ => {
                    if let Err(e) = self.fill() {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
        }
    }
}

/// Chunks read ahead by another thread, handed over through channels.
pub(crate) struct ThreadSource {
    pub(crate) chunks: std::sync::mpsc::Receiver<std::io::Result<Option<Chunk>>>,
    pub(crate) spares: std::sync::mpsc::Sender<Vec<u8>>,
}

impl Source for ThreadSource {
    fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        self.chunks.recv().unwrap_or(Ok(None))
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        let _ = self.spares.send(buf);
    }
}

/// The options of a pcapng block: (code, value) until `opt_endofopt` or the end.
/// A malformed option list just ends: options are never needed to read packets.
struct Options<'b> {
    b: &'b [u8],
    be: bool,
}

impl<'b> Options<'b> {
    fn new(b: &'b [u8], be: bool) -> Options<'b> {
        Options { b, be }
    }
}

impl<'b> Iterator for Options<'b> {
    type Item = (u16, &'b [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.b.len() < 4 {
            return None;
        }
        let code = u16_at(self.b, 0, self.be);
        let len = usize::from(u16_at(self.b, 2, self.be));
        if code == 0 || 4 + len > self.b.len() {
            return None;
        }
        let value = &self.b[4..4 + len];
        let padded = (4 + len).div_ceil(4) * 4;
        self.b = &self.b[padded.min(self.b.len())..];
        Some((code, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(be: bool, nanos: bool, link: u32, records: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut f = Vec::new();
        f.extend(w32(if nanos { PCAP_NANOS } else { PCAP_MICROS }));
        f.extend(w16(2));
        f.extend(w16(4));
        f.extend([0; 8]);
        f.extend(w32(65535));
        f.extend(w32(link));
        for (sec, frac, data, orig) in records {
            f.extend(w32(*sec));
            f.extend(w32(*frac));
            f.extend(w32(data.len() as u32));
            f.extend(w32(*orig));
            f.extend(*data);
        }
        f
    }

    #[test]
    fn classic_pcap_in_all_four_magics() {
        for be in [false, true] {
            for nanos in [false, true] {
                let f = pcap(be, nanos, 1, &[(10, 5, &[1, 2, 3], 60), (11, 0, &[], 0)]);
                let mut c = Capture::new(&f).unwrap();
                assert_eq!(c.format(), Format::Pcap { nanos, big_endian: be, link_type: 1, snaplen: 65535 });
                let a = c.next().unwrap().unwrap();
                assert_eq!((a.number, a.link_type, a.orig_len, a.data), (1, 1, 60, &[1u8, 2, 3][..]));
                assert_eq!(a.time_ns, 10_000_000_000 + if nanos { 5 } else { 5000 });
                assert_eq!(a.offset, 24);
                let b = c.next().unwrap().unwrap();
                assert_eq!((b.number, b.time_ns, b.data.len()), (2, 11_000_000_000, 0));
                assert!(c.next().is_none());
                assert!(c.next().is_none());
            }
        }
    }

    #[test]
    fn a_cut_record_is_an_error_naming_offset_and_packet() {
        let f = pcap(false, true, 113, &[(1, 0, &[9; 40], 40), (2, 0, &[9; 40], 40)]);
        let cut = &f[..f.len() - 10];
        let mut c = Capture::new(cut).unwrap();
        assert!(c.next().unwrap().is_ok());
        let e = c.next().unwrap().unwrap_err();
        assert_eq!((e.offset, e.packet), (24 + 56, 2));
        assert!(matches!(e.kind, CaptureErrorKind::Truncated { what: "packet record", need: 56, have: 46 }));
        assert_eq!(
            e.to_string(),
            "byte 80 (packet 2): the packet record needs 56 bytes but only 46 remain: the file is cut short or corrupt"
        );
        assert!(c.next().is_none());
        // A cut record header.
        let e = Capture::new(&f[..24 + 56 + 7]).unwrap().nth(1).unwrap().unwrap_err();
        assert!(matches!(e.kind, CaptureErrorKind::Truncated { what: "record header", .. }));
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(Capture::new(&[]).unwrap_err().kind, CaptureErrorKind::Empty);
        let e = Capture::new(b"GIF89a........................").unwrap_err();
        assert!(matches!(e.kind, CaptureErrorKind::UnknownMagic { .. }), "{e}");
        let f = pcap(false, false, 1, &[]);
        assert!(matches!(Capture::new(&f[..20]).unwrap_err().kind, CaptureErrorKind::Truncated { .. }));
        let mut v1 = f.clone();
        v1[4] = 1;
        assert!(matches!(Capture::new(&v1).unwrap_err().kind, CaptureErrorKind::UnsupportedVersion { .. }));
    }

    /// A pcapng file: one section, the given interfaces (link type, tsresol byte), blocks.
    fn block(be: bool, kind: u32, body: &[u8]) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut padded = body.to_vec();
        padded.resize(body.len().div_ceil(4) * 4, 0);
        let len = 12 + padded.len() as u32;
        let mut b = Vec::new();
        b.extend(w32(kind));
        b.extend(w32(len));
        b.extend(padded);
        b.extend(w32(len));
        b
    }

    fn shb(be: bool) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(if be { PCAPNG_BYTE_ORDER.to_be_bytes() } else { PCAPNG_BYTE_ORDER.to_le_bytes() });
        body.extend(if be { [0, 1, 0, 0] } else { [1, 0, 0, 0] });
        body.extend([0xff; 8]);
        block(be, PCAPNG_SHB, &body)
    }

    fn idb(be: bool, link: u16, tsresol: Option<u8>, tsoffset: Option<i64>) -> Vec<u8> {
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut body = Vec::new();
        body.extend(w16(link));
        body.extend([0, 0]);
        body.extend(w32(0));
        if let Some(r) = tsresol {
            body.extend(w16(OPT_TSRESOL));
            body.extend(w16(1));
            body.extend([r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            body.extend(w16(OPT_TSOFFSET));
            body.extend(w16(8));
            body.extend(if be { o.to_be_bytes() } else { o.to_le_bytes() });
        }
        body.extend([0, 0, 0, 0]);
        block(be, BLOCK_IDB, &body)
    }

    fn epb(be: bool, iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut body = Vec::new();
        body.extend(w32(iface));
        body.extend(w32((ts >> 32) as u32));
        body.extend(w32(ts as u32));
        body.extend(w32(data.len() as u32));
        body.extend(w32(data.len() as u32 + 4));
        body.extend(data);
        block(be, BLOCK_EPB, &body)
    }

    #[test]
    fn pcapng_interfaces_resolutions_and_both_byte_orders() {
        let mut f = Vec::new();
        f.extend(shb(false));
        f.extend(idb(false, 1, None, None)); // microseconds
        f.extend(idb(false, 113, Some(9), Some(10))); // nanoseconds, +10 s
        f.extend(block(false, 4, &[1, 2, 3, 4])); // a name resolution block, skipped
        f.extend(epb(false, 0, 1_500_000, &[1, 2, 3]));
        f.extend(epb(false, 1, 7, &[4; 5]));
        // A second section, big-endian, binary fractions (2^-10 s).
        f.extend(shb(true));
        f.extend(idb(true, 101, Some(0x80 | 10), None));
        f.extend(epb(true, 0, 2048, &[6]));
        // A simple packet block's data is its body up to the original length: padding
        // included when the body is shorter.
        let mut w = Vec::new();
        w.extend(1000u32.to_be_bytes());
        w.extend([7, 7]);
        f.extend(block(true, BLOCK_SPB, &w));
        let frames: Vec<Frame> = Capture::new(&f).unwrap().map(Result::unwrap).collect();
        let got: Vec<(u64, i64, u32, usize, u32)> =
            frames.iter().map(|f| (f.number, f.time_ns, f.link_type, f.data.len(), f.orig_len)).collect();
        assert_eq!(
            got,
            [
                (1, 1_500_000_000, 1, 3, 7),
                (2, 10_000_000_007, 113, 5, 9),
                (3, 2_000_000_000, 101, 1, 5),
                (4, 2_000_000_000, 101, 4, 1000)
            ]
        );
        assert_eq!(frames[1].data, &[4; 5]);
    }

    #[test]
    fn pcapng_structure_errors() {
        let mut f = shb(false);
        f.extend(epb(false, 0, 0, &[1]));
        let e = Capture::new(&f).unwrap().next().unwrap().unwrap_err();
        assert_eq!(e.offset, 28);
        assert!(matches!(e.kind, CaptureErrorKind::UnknownInterface { interface: 0, known: 0 }), "{e}");
        // Lengths that disagree.
        let mut g = shb(false);
        let mut b = idb(false, 1, None, None);
        let n = b.len();
        b[n - 4] ^= 4;
        g.extend(b);
        let e = Capture::new(&g).unwrap().next().unwrap().unwrap_err();
        assert!(matches!(e.kind, CaptureErrorKind::BlockLengthMismatch { .. }), "{e}");
        // A file that starts with anything but a section header is not pcapng.
        let e = Capture::new(&idb(false, 1, None, None)).unwrap_err();
        assert!(matches!(e.kind, CaptureErrorKind::UnknownMagic { magic: 0x0100_0000 }), "{e}");
    }
}
