//! TCP analysis of a packet capture (the bundle's `capture/window.pcap`, or any pcap or
//! pcapng file): every connection reconstructed, what went wrong on the wire explained
//! per connection, and summed up per service and per peer. The `tcp.*` rules and the
//! packet views are built on this engine.
//!
//! # Using it
//!
//! Rules take the whole result once per analysis:
//!
//! ```ignore
//! let report = input.shared("tcp", || {
//!     input.raw(names::CAPTURE).map(|b| tcp::analyze(&b, &tcp::Options::default()))
//! });
//! ```
//!
//! [`analyze`] (bytes in memory) or [`analyze_stream`] (a file, through a bounded
//! buffer) streams through the capture and returns a [`Report`]:
//!
//! - [`CaptureSummary`]: packets, TCP packets, skipped packets by [`Skip`] reason, link
//!   types, first and last time, and the [`CaptureError`] that cut the file short, if any
//!   (the report then covers the packets before it);
//! - [`Totals`] for all connections and counts by [`EndState`] at the end of the capture;
//! - a [`ServiceSummary`] per service ([`ServiceKey`]: a local server port, or the
//!   remote address and port of outbound connections) and a [`PeerSummary`] per remote
//!   address: [`Totals`] plus [`Histogram`]s (response time, handshake RTT, RTO, the
//!   server's idle time before it closed, how long clients waited before giving up) whose
//!   percentiles are within 1.6 %;
//! - [`Notable`]: per kind of trouble (read timeouts, connect failures, resets, requests
//!   after close, zero windows, retransmissions, slow responses, idle closes, capture
//!   gaps) up to [`Options::examples_per_kind`] example [`Connection`]s, with the packet
//!   numbers and times ([`PacketRef`]) to cite.
//!
//! A [`Connection`] holds its client and server ([`Endpoint`], [`RoleSource`],
//! [`Locality`]), handshake ([`Connection::initial_rtt_ns`] as tshark's iRTT), per-side
//! [`FlowStats`] (bytes, packets, every analysis flag counted, RTOs, FIN and RST),
//! request/response [`Exchange`]s and their response times, the first FIN ([`Close`]:
//! who, idle time before it), the first RST ([`Reset`]: who, in which state, answering
//! what), a client that gave up ([`GaveUp`]), a request sent after the server closed
//! ([`LateRequest`]) and its [`EndState`].
//!
//! Views walk packets with [`Packets`]: each TCP packet decoded ([`TcpPacket`]: addresses,
//! ports, flags, seq/ack, window, options, payload slice) with the tracker's verdict
//! ([`PacketInfo`]: connection id, direction, Wireshark's [`Analysis`] flags, relative
//! seq/ack, scaled window, RTO, duplicate-ACK number); [`line::TcpdumpLine`] prints it as
//! tcpdump does. [`synth`] writes captures for tests of rules.
//!
//! # Layers
//!
//! - [`capture`]: pcap and pcapng read in place or streamed, errors naming byte offset
//!   and packet number.
//! - [`decode`](mod@decode): link layer (Ethernet with VLANs, Linux cooked v1/v2, raw IP, BSD
//!   loopback), IPv4 with options, IPv6 with extension headers, TCP with options.
//! - [`seq`]: Wireshark's sequence analysis, flag for flag.
//! - [`track`]: connections, their facts and their bounded lifetime.
//! - [`summary`]: the aggregate.
//!
//! # Compatibility with Wireshark
//!
//! Per-packet flags follow Wireshark 4.0.17's `packet-tcp.c` (the tshark of Debian 12,
//! which CI installs); `tests/oracle_tshark.rs` compares them with tshark packet by packet
//! on the third-party captures, on a loopback capture of real Linux TCP and on hundreds
//! of captures it makes. Where snap differs on purpose:
//!
//! - IPv4 fragments and non-atomic IPv6 fragments are skipped, not reassembled.
//! - TCP quoted in ICMP errors is not analyzed (Wireshark does not analyze it either, but
//!   lets it create conversations, which can shift its `tcp.stream` numbers).
//! - A direction remembers at most [`seq::MAX_UNACKED`] unacknowledged segments
//!   (Wireshark 10,000): past that many, RTO and ACK-RTT values can differ.
//! - A connection closed for longer than [`Options::linger_ns`] is finished; a packet
//!   on its ports after that starts a new connection, where Wireshark would continue the
//!   old conversation.
//!
//! # Cost
//!
//! No allocation per packet: packets are borrowed from the capture's bytes, connections
//! live in a slab indexed by a hash map of compact 4-tuple keys. Memory is bounded by the
//! connections open at once (plus those closed within the linger time), each about a
//! kilobyte plus its unacknowledged segments (24 bytes each, at most
//! [`seq::MAX_UNACKED`] per direction), and, for [`analyze_stream`], a read buffer the
//! size of the largest record. The only `unsafe` is a cache prefetch of the next record
//! (see [`capture`]): on large packets the record headers' cache misses are otherwise
//! most of the time.
//!
//! Hand-written, no dependency: see [`capture`] for the file formats. Builds on any OS.

pub mod capture;
pub mod decode;
pub mod histogram;
pub mod line;
pub mod seq;
pub mod summary;
pub mod synth;
pub mod track;

pub use capture::{Capture, CaptureError, CaptureErrorKind, Format, Frame, Stream};
pub use decode::{decode, Skip, TcpFlags, TcpOptions, TcpPacket};
pub use histogram::Histogram;
pub use seq::{Analysis, SeqAnalysis};
pub use summary::{
    CaptureSummary, Examples, Notable, PeerSummary, Report, ServiceKey, ServiceSummary, Summary, Totals,
};
pub use track::{
    Close, Connection, DurationStats, EndState, Endpoint, Exchange, FinishedBy, FlowStats, GaveUp, LateRequest,
    Locality, Options, PacketInfo, PacketRef, Reset, ResetWhen, RoleSource, Side, Tracker,
};

/// One packet of a capture, as [`Packets`] yields it.
// Boxing the TCP variant would allocate per packet; the enum lives on the stack.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// A TCP segment and what the tracker made of it.
    Tcp(TcpPacket<'a>, PacketInfo),
    /// Any other packet, and why it was not analyzed.
    Other(Frame<'a>, Skip),
}

/// Walks a capture packet by packet through the decoder and the connection tracker.
///
/// Connections finished along the way wait in [`Packets::take_finished`]; they are
/// dropped at the next packet if not taken, so that walking a capture stays bounded.
pub struct Packets<'a> {
    capture: Capture<'a>,
    tracker: Tracker,
}

impl<'a> Packets<'a> {
    /// Reads the file header; fails if the bytes are not a capture.
    pub fn new(bytes: &'a [u8], options: &Options) -> Result<Packets<'a>, CaptureError> {
        Ok(Packets { capture: Capture::new(bytes)?, tracker: Tracker::new(options.clone()) })
    }

    pub fn format(&self) -> Format {
        self.capture.format()
    }

    /// Connections finished by the last packet.
    pub fn take_finished(&mut self) -> std::vec::Drain<'_, Connection> {
        self.tracker.take_finished()
    }

    /// Ends the walk: the connections still open, finished, in order of id.
    pub fn finish(self) -> Vec<Connection> {
        self.tracker.finish()
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<Item<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        drop(self.tracker.take_finished());
        let frame = match self.capture.next_frame()? {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(match decode(&frame) {
            Ok(p) => {
                let info = self.tracker.packet(&p);
                Item::Tcp(p, info)
            }
            Err(skip) => Item::Other(frame, skip),
        }))
    }
}

/// Analyzes a whole capture held in memory. Fails only if the bytes are not a pcap or
/// pcapng file; a file corrupt or cut short further on is analyzed up to the damage,
/// which [`CaptureSummary::error`] then describes.
pub fn analyze(bytes: &[u8], options: &Options) -> Result<Report, CaptureError> {
    analyze_mapped(bytes, options, |_| {})
}

/// Bytes analyzed between two calls of [`analyze_mapped`]'s `done_before`.
const RELEASE_EVERY: u64 = 32 << 20;

/// [`analyze`] of a capture mapped from a file: every `RELEASE_EVERY` bytes,
/// `done_before(offset)` says that nothing before `offset` is read again, so the caller
/// can let the mapped pages go and memory stays bounded by the connections.
pub fn analyze_mapped(
    bytes: &[u8],
    options: &Options,
    mut done_before: impl FnMut(usize),
) -> Result<Report, CaptureError> {
    let mut capture = Capture::new(bytes)?;
    let mut run = Run::new(capture.format(), options);
    let mut next = RELEASE_EVERY;
    while let Some(frame) = capture.next_frame() {
        match frame {
            Ok(f) => run.frame(&f),
            Err(e) => {
                run.cap.error = Some(e);
                break;
            }
        }
        if capture.position() >= next {
            // `run` copies what it keeps of a frame: nothing before here is read again.
            done_before(capture.position() as usize);
            next = capture.position() + RELEASE_EVERY;
        }
    }
    Ok(run.finish())
}

/// [`analyze`] for a capture read from a file or any stream, in chunks of a megabyte
/// read ahead by a second thread (so that reading overlaps with analyzing): memory stays
/// bounded by the connections, not the file.
pub fn analyze_stream<R: std::io::Read + Send>(reader: R, options: &Options) -> Result<Report, CaptureError> {
    std::thread::scope(|scope| {
        // Two chunks in flight at most; spent ones come back for reuse.
        let (chunk_tx, chunks) = std::sync::mpsc::sync_channel(2);
        let (spares, spare_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        scope.spawn(move || {
            let (mut reader, mut size) = (reader, 0);
            loop {
                size = capture::next_chunk_size(size);
                let chunk = capture::read_chunk(&mut reader, spare_rx.try_recv().unwrap_or_default(), size);
                let last = !matches!(chunk, Ok(Some(_)));
                // The receiver is gone when the analysis stopped early.
                if chunk_tx.send(chunk).is_err() || last {
                    break;
                }
            }
        });
        let mut stream = capture::Chunked::new(capture::ThreadSource { chunks, spares })?;
        let mut run = Run::new(stream.format(), options);
        while let Some(frame) = stream.next_frame() {
            match frame {
                Ok(f) => run.frame(&f),
                Err(e) => {
                    run.cap.error = Some(e);
                    break;
                }
            }
        }
        Ok(run.finish())
    })
}

/// One analysis under way: the tracker, the aggregate and the capture's counters.
struct Run {
    tracker: Tracker,
    summary: Summary,
    cap: CaptureSummary,
    last_link: u32,
}

impl Run {
    fn new(format: Format, options: &Options) -> Run {
        Run {
            tracker: Tracker::new(options.clone()),
            summary: Summary::new(options),
            cap: CaptureSummary { format: Some(format), ..CaptureSummary::default() },
            last_link: u32::MAX,
        }
    }

    fn frame(&mut self, frame: &Frame) {
        let cap = &mut self.cap;
        cap.packets += 1;
        if frame.link_type != self.last_link {
            cap.link_types.insert(frame.link_type);
            self.last_link = frame.link_type;
        }
        match cap.last_ns {
            None => cap.first_ns = Some(frame.time_ns),
            Some(prev) if frame.time_ns < prev => cap.time_went_back += 1,
            Some(_) => {}
        }
        cap.last_ns = Some(frame.time_ns);
        match decode(frame) {
            Ok(p) => {
                cap.tcp_packets += 1;
                self.tracker.packet(&p);
                if self.tracker.has_finished() {
                    for c in self.tracker.take_finished() {
                        self.summary.add(&c);
                    }
                }
            }
            Err(skip) => *cap.skipped.entry(skip).or_default() += 1,
        }
    }

    fn finish(mut self) -> Report {
        for c in self.tracker.finish() {
            self.summary.add(&c);
        }
        *self.summary.capture_mut() = self.cap;
        self.summary.finish()
    }
}

#[cfg(test)]
mod hostile {
    //! Truncated, corrupt and random captures: errors that name the place, never a panic.
    use super::*;
    use std::path::Path;

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Real captures from the corpus when present, and captures made here.
    fn seeds() -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcap");
        match std::fs::read_dir(&dir) {
            Ok(subs) => {
                for sub in subs.flatten() {
                    for f in std::fs::read_dir(sub.path()).into_iter().flatten().flatten() {
                        let bytes = std::fs::read(f.path()).unwrap_or_default();
                        // Small files only: this runs in debug builds, thousands of times.
                        if bytes.len() < 70_000 && f.path().extension().is_some_and(|e| e != "md") {
                            out.push((f.file_name().to_string_lossy().into_owned(), bytes));
                        }
                    }
                }
                assert!(out.len() > 10, "the corpus at {} has captures", dir.display());
            }
            Err(_) => println!("corpus absent at {}: mutating made captures only", dir.display()),
        }
        let mut c = synth::Conversation::new("10.0.0.2:40000", "[::1]:80", 1_000_000_000);
        c.handshake(1_000_000).data(Side::Client, 100).data(Side::Server, 1000).fin(Side::Client);
        out.push(("made".into(), synth::write_pcap(&c.segments(), true)));
        out.sort();
        out
    }

    /// A reader that returns at most 7 bytes per read.
    struct Trickle<'a>(&'a [u8]);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Runs everything that reads a capture; returns the error that ended it, if any.
    fn exercise(bytes: &[u8]) -> Option<CaptureError> {
        let report = match analyze(bytes, &Options::default()) {
            Ok(r) => r,
            Err(e) => {
                assert_eq!(analyze_stream(Trickle(bytes), &Options::default()).unwrap_err(), e);
                return Some(e);
            }
        };
        let mut n = 0;
        let mut walked_error = None;
        for item in Packets::new(bytes, &Options::default()).unwrap() {
            match item {
                Ok(Item::Tcp(p, info)) => {
                    let _ = line::TcpdumpLine { packet: &p, info: Some(&info), date: true, analysis: true }.to_string();
                    n += 1;
                }
                Ok(Item::Other(..)) => n += 1,
                Err(e) => walked_error = Some(e),
            }
        }
        assert_eq!(n, report.capture.packets);
        assert_eq!(walked_error, report.capture.error);
        // The streaming reader, fed a few bytes at a time, agrees.
        let streamed = analyze_stream(Trickle(bytes), &Options::default()).unwrap();
        assert_eq!((streamed.capture.packets, &streamed.capture.error), (n, &report.capture.error));
        assert_eq!(streamed.totals, report.totals);
        report.capture.error
    }

    #[test]
    fn a_mapped_capture_is_let_go_as_it_is_read_and_reads_as_a_stream_does() {
        // About 45 MB: 2,000 connections carrying 1,000 bytes up and 20,000 down.
        let convs: Vec<synth::Conversation> = (0..2000)
            .map(|i| {
                let client = format!("10.1.{}.{}:{}", i / 250, i % 250 + 1, 20_000 + i);
                let mut c = synth::Conversation::new(&client, "10.9.9.9:80", 1_000_000_000 + i64::from(i) * 1_000_000);
                c.handshake(1_000_000).data(Side::Client, 1000).data(Side::Server, 20_000).fin(Side::Client);
                c
            })
            .collect();
        let refs: Vec<&synth::Conversation> = convs.iter().collect();
        let bytes = synth::write_pcap(&synth::merge(&refs), true);
        assert!(bytes.len() as u64 > RELEASE_EVERY, "{} bytes", bytes.len());
        let mut released = Vec::new();
        let mapped = analyze_mapped(&bytes, &Options::default(), |done| released.push(done)).unwrap();
        assert!(!released.is_empty() && released.windows(2).all(|w| w[0] < w[1]), "{released:?}");
        assert!(released.iter().all(|&r| r <= bytes.len()));
        let streamed = analyze_stream(&bytes[..], &Options::default()).unwrap();
        assert_eq!((mapped.capture.packets, &mapped.totals), (streamed.capture.packets, &streamed.totals));
        assert_eq!(mapped.totals.connections, 2000);
    }

    #[test]
    fn every_truncation_of_real_captures() {
        for (name, bytes) in seeds() {
            let step = (bytes.len() / 300).max(1);
            for cut in (0..bytes.len()).step_by(step) {
                if let Some(e) = exercise(&bytes[..cut]) {
                    assert!(e.offset <= cut as u64, "{name} cut at {cut}: {e}");
                    let msg = e.to_string();
                    assert!(msg.starts_with(&format!("byte {}", e.offset)), "{msg}");
                }
            }
        }
    }

    #[test]
    fn random_mutations_of_real_captures() {
        let mut rng = Rng(0x5eed_cafe_f00d_1234);
        let seeds = seeds();
        for round in 0..3000 {
            let (name, orig) = &seeds[round % seeds.len()];
            let mut b = orig.clone();
            for _ in 0..1 + rng.below(8) {
                match rng.below(4) {
                    0 if !b.is_empty() => {
                        let at = rng.below(b.len());
                        b[at] ^= 1 << rng.below(8);
                    }
                    1 if b.len() > 4 => {
                        // A random 32-bit value where lengths and numbers live.
                        let at = rng.below(b.len() - 4);
                        b[at..at + 4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
                    }
                    2 if !b.is_empty() => {
                        let at = rng.below(b.len());
                        b[at] = [0, 0xff, 0x45, 0x60, 6, 0x81][rng.below(6)];
                    }
                    _ => b.truncate(rng.below(b.len() + 1)),
                }
            }
            let _ = std::panic::catch_unwind(|| exercise(&b)).unwrap_or_else(|_| panic!("{name}, round {round}"));
        }
    }

    #[test]
    fn garbage_after_valid_headers() {
        let mut rng = Rng(42);
        let heads: [&[u8]; 4] = [
            &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0],
            &[0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 113],
            &[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
            &[0x0a, 0x0d, 0x0d, 0x0a],
        ];
        for i in 0..2000 {
            let mut b = heads[i % heads.len()].to_vec();
            for _ in 0..rng.below(400) {
                b.push(rng.next() as u8);
            }
            let _ = exercise(&b);
        }
        assert!(matches!(analyze(b"", &Options::default()).unwrap_err().kind, CaptureErrorKind::Empty));
    }
}
