//! The capture engine: one AF_PACKET socket with a TPACKET_V3 memory-mapped ring,
//! read in place into a pcap.
//!
//! The socket is set up in an order that lets no unfiltered packet in: it is created
//! with protocol 0 (it receives nothing yet), gets its filter, its ring and the mapping,
//! and only then is bound to ETH_P_ALL on its interface (index 0: all of them). The
//! kernel fills the ring in blocks; a block is handed over when full or after
//! [`RETIRE_TOV_MS`], read in place, and given back by setting its status to
//! TP_STATUS_KERNEL. A capture ends by attaching a reject-all filter, then emptying the
//! ring (waiting at most one block timeout for the block in progress), so that the
//! kernel's counters and the file describe the same packets.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::filter::BpfInsn;
use super::pcap::{parse_frame, u32_at, Frame, Writer, BLOCK_FIRST_PKT, BLOCK_NUM_PKTS, BLOCK_STATUS, SLL_HEADER_LEN};
use super::{CaptureError, Config, Stats, StopReason, MAX_PROGRAM_LEN, MAX_SNAPLEN};
use crate::sys;

/// Ring memory per socket.
pub const RING_BYTES: usize = 4 << 20;
/// Smallest block; larger when one packet of the snaplen would not fit.
pub const MIN_BLOCK_BYTES: usize = 256 << 10;
/// How long the kernel keeps a block that is not full before handing it over.
pub const RETIRE_TOV_MS: u32 = 64;
/// Longest wait in poll(2), so that the stop flag is seen promptly.
const POLL_MS: u64 = 100;
/// Interfaces one capture may name (the filter's jump offsets are 8 bits).
const MAX_INTERFACES: usize = 200;
/// Unused in TPACKET_V3 except for the kernel's consistency checks.
const FRAME_BYTES: usize = 2048;

fn os_err(what: impl Into<String>) -> CaptureError {
    CaptureError::Io(what.into(), io::Error::last_os_error())
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: value points at a live T of the length passed.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), len) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// getsockopt(2) into `value`, which must be plain C data made of integers only: the
/// kernel writes its bytes.
fn getsockopt<T: Copy>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &mut T) -> io::Result<()> {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: value is a live T of len bytes; any bytes make a valid integer.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (value as *mut T).cast(), &mut len) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn attach_filter(fd: &OwnedFd, prog: &[BpfInsn]) -> Result<(), CaptureError> {
    let mut insns: Vec<libc::sock_filter> =
        prog.iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect();
    let fprog = libc::sock_fprog { len: insns.len() as libc::c_ushort, filter: insns.as_mut_ptr() };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
        .map_err(|source| CaptureError::Filter { len: prog.len(), source })
}

/// One socket with its mapped ring and a cursor into it.
struct Ring {
    fd: OwnedFd,
    ifindex: u32,
    label: String,
    map: NonNull<u8>,
    block_bytes: usize,
    blocks: usize,
    /// The block being read (or the next one to become ready).
    block: usize,
    /// Packets left in the block being read; 0 when none is open.
    left: u32,
    /// Offset of the next packet in the open block.
    at: usize,
    head: Option<Frame>,
    max_data: usize,
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: map is the start of a mapping of blocks * block_bytes made in open().
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.blocks * self.block_bytes) };
    }
}

impl Ring {
    /// A socket with its filter and ring, not yet bound: it receives nothing yet.
    fn open(ifindex: u32, label: String, prog: &[BpfInsn], snaplen: u32) -> Result<Ring, CaptureError> {
        // SAFETY: plain system call; the fd is owned right below.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => {
                    CaptureError::Denied(format!("opening a packet socket needs CAP_NET_RAW ({e})"))
                }
                _ => CaptureError::Io("opening a packet socket".into(), e),
            });
        }
        // SAFETY: raw is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        attach_filter(&fd, prog)?;
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
            .map_err(|e| CaptureError::Io("asking for TPACKET_V3 rings".into(), e))?;
        let max_data = (snaplen - SLL_HEADER_LEN) as usize;
        let block_bytes = (max_data + 256).next_power_of_two().max(MIN_BLOCK_BYTES);
        let blocks = (RING_BYTES / block_bytes).max(4);
        let req = libc::tpacket_req3 {
            tp_block_size: block_bytes as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: FRAME_BYTES as u32,
            tp_frame_nr: (block_bytes / FRAME_BYTES * blocks) as u32,
            tp_retire_blk_tov: RETIRE_TOV_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req).map_err(|e| {
            CaptureError::Io(format!("setting up a {} KiB capture ring", (blocks * block_bytes) >> 10), e)
        })?;
        let len = blocks * block_bytes;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let map = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
        if map == libc::MAP_FAILED {
            return Err(os_err("mapping the capture ring"));
        }
        let map = NonNull::new(map.cast::<u8>()).ok_or_else(|| os_err("mapping the capture ring"))?;
        Ok(Ring { fd, ifindex, label, map, block_bytes, blocks, block: 0, left: 0, at: 0, head: None, max_data })
    }

    /// Starts receiving: binds to every protocol on the interface (0: all interfaces).
    fn bind(&self) -> Result<(), CaptureError> {
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = self.ifindex as i32;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: sll is a valid sockaddr_ll of the length passed.
        let r = unsafe { libc::bind(self.fd.as_raw_fd(), (&sll as *const libc::sockaddr_ll).cast(), len) };
        if r != 0 {
            return Err(os_err(format!("binding the packet socket to {}", self.label)));
        }
        Ok(())
    }

    /// PACKET_STATISTICS since the last call: (passed the filter, dropped).
    fn stats(&self) -> Result<(u64, u64), CaptureError> {
        let mut st = libc::tpacket_stats_v3 { tp_packets: 0, tp_drops: 0, tp_freeze_q_cnt: 0 };
        getsockopt(&self.fd, libc::SOL_PACKET, libc::PACKET_STATISTICS, &mut st)
            .map_err(|e| CaptureError::Io(format!("reading the packet statistics of {}", self.label), e))?;
        Ok((u64::from(st.tp_packets), u64::from(st.tp_drops)))
    }

    /// A field of a block header, shared with the kernel.
    fn block_word(&self, block: usize, offset: usize) -> &AtomicU32 {
        // SAFETY: the word lies inside the mapping (block < blocks, offset < 48), is
        // 4-aligned (blocks are page-aligned), lives as long as self, and the kernel
        // accesses it with single aligned loads and stores.
        unsafe { AtomicU32::from_ptr(self.map.as_ptr().add(block * self.block_bytes + offset).cast()) }
    }

    /// The bytes of the current block. Only called while it belongs to user space
    /// (TP_STATUS_USER seen with Acquire, not yet given back), when the kernel does not
    /// write it.
    fn block_data(&self) -> &[u8] {
        // SAFETY: the block lies inside the mapping, which lives as long as self; the
        // kernel leaves a user-owned block alone until release() gives it back.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(self.block * self.block_bytes), self.block_bytes) }
    }

    /// The next packet ready in the ring, if any.
    fn head(&mut self) -> Option<Frame> {
        while self.head.is_none() {
            if self.left == 0 {
                let status = self.block_word(self.block, BLOCK_STATUS).load(Ordering::Acquire);
                if status & libc::TP_STATUS_USER == 0 {
                    return None;
                }
                let b = self.block_data();
                let (count, first) = (u32_at(b, BLOCK_NUM_PKTS), u32_at(b, BLOCK_FIRST_PKT) as usize);
                if count == 0 {
                    self.release();
                    continue;
                }
                (self.left, self.at) = (count, first);
            }
            self.head = parse_frame(self.block_data(), self.at, self.max_data);
            if self.head.is_none() {
                // A malformed block: skip the rest of it rather than read out of bounds.
                self.release();
            }
        }
        self.head
    }

    fn data(&self, h: &Frame) -> &[u8] {
        &self.block_data()[h.data_at..h.data_at + h.data_len]
    }

    /// Moves past the packet `head()` returned; true when that gave a block back.
    fn advance(&mut self) -> bool {
        let next = self.head.take().map_or(0, |h| h.next);
        self.left -= 1;
        if self.left == 0 || next == 0 {
            self.release();
            return true;
        }
        self.at += next;
        false
    }

    /// Gives the current block back to the kernel and moves to the next one.
    fn release(&mut self) {
        self.block_word(self.block, BLOCK_STATUS).store(libc::TP_STATUS_KERNEL, Ordering::Release);
        (self.left, self.head) = (0, None);
        self.block = (self.block + 1) % self.blocks;
    }

    /// Whether the block the kernel fills next is empty and still the kernel's.
    fn idle(&self) -> bool {
        self.left == 0
            && self.block_word(self.block, BLOCK_STATUS).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0
            && self.block_word(self.block, BLOCK_NUM_PKTS).load(Ordering::Relaxed) == 0
    }
}

fn interface_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: c is NUL-terminated.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Where the one socket listens.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    /// The interface it is bound to; 0: all of them.
    ifindex: u32,
    /// With several interfaces: the ones its filter accepts (the socket takes all).
    only: Vec<u32>,
    label: String,
}

/// One interface gets a bound socket: traffic elsewhere costs nothing. Several share
/// one unbound socket whose filter accepts just them, so that their packets come out of
/// one ring in the order they passed, as with tcpdump's `any`; a ring per interface
/// would hand over blocks at different times and mix the order between interfaces.
fn target(names: &[String]) -> Result<Target, CaptureError> {
    let (mut only, mut labels) = (Vec::with_capacity(names.len()), Vec::with_capacity(names.len()));
    for n in names.iter().filter(|n| *n != "any") {
        let i = interface_index(n).ok_or_else(|| CaptureError::NoSuchInterface(n.clone()))?;
        if !only.contains(&i) {
            only.push(i);
            labels.push(n.as_str());
        }
    }
    if names.is_empty() || names.iter().any(|n| n == "any") {
        return Ok(Target { ifindex: 0, only: Vec::new(), label: "all interfaces".into() });
    }
    if only.len() > MAX_INTERFACES {
        return Err(CaptureError::Invalid(format!("{} interfaces; at most {MAX_INTERFACES}", only.len())));
    }
    let label = labels.join(", ");
    Ok(match only[..] {
        [i] => Target { ifindex: i, only: Vec::new(), label },
        _ => Target { ifindex: 0, only, label },
    })
}

/// The program the socket gets: the caller's (or keep-all), cut to the snaplen, behind
/// the interface list and the loopback de-duplication that apply to `t`.
fn kernel_program(cfg: &Config, snaplen: u32, t: &Target, lo: Option<u32>) -> Vec<BpfInsn> {
    let mut prog = match &cfg.program {
        Some(p) => super::clamp_returns(p, snaplen - SLL_HEADER_LEN),
        None => super::keep_all(snaplen),
    };
    if !t.only.is_empty() {
        prog = super::accept_interfaces(&t.only, &prog);
    }
    match lo {
        Some(lo) if t.ifindex == 0 && (t.only.is_empty() || t.only.contains(&lo)) || t.ifindex == lo => {
            super::skip_loopback_outgoing(lo, &prog)
        }
        _ => prog,
    }
}

fn check(cfg: &Config) -> Result<u32, CaptureError> {
    let snaplen = if cfg.snaplen == 0 { MAX_SNAPLEN } else { cfg.snaplen };
    if snaplen <= SLL_HEADER_LEN || snaplen > MAX_SNAPLEN {
        return Err(CaptureError::Invalid(format!(
            "a snaplen of {snaplen} bytes: it counts the {SLL_HEADER_LEN}-byte link header and must lie between {} and {MAX_SNAPLEN}",
            SLL_HEADER_LEN + 1
        )));
    }
    if cfg.max_bytes > 0 && cfg.max_bytes < super::pcap::FILE_HEADER_LEN {
        return Err(CaptureError::Invalid(format!("a byte cap of {} is smaller than the pcap header", cfg.max_bytes)));
    }
    let room = MAX_PROGRAM_LEN.saturating_sub(9 + cfg.interfaces.len());
    match &cfg.program {
        Some(p) if p.is_empty() => Err(CaptureError::Invalid("the filter program is empty".into())),
        Some(p) if p.len() > room => Err(CaptureError::Invalid(format!(
            "the filter program has {} instructions; the kernel takes at most {MAX_PROGRAM_LEN}",
            p.len()
        ))),
        _ => Ok(snaplen),
    }
}

struct Bounds<'a> {
    max_packets: u64,
    max_bytes: u64,
    deadline: Option<Instant>,
    stop: &'a AtomicBool,
}

impl Bounds<'_> {
    fn over(&self) -> Option<StopReason> {
        if self.stop.load(Ordering::Relaxed) {
            return Some(StopReason::Interrupted);
        }
        self.deadline.filter(|d| Instant::now() >= *d).map(|_| StopReason::Time)
    }
}

/// Writes every packet ready in the ring. Returns a packet or byte bound when one ended
/// the capture; returns early (None) when time or the stop flag is up.
fn drain<W: Write>(ring: &mut Ring, w: &mut Writer<W>, b: &Bounds) -> Result<Option<StopReason>, CaptureError> {
    while let Some(h) = ring.head() {
        if b.max_bytes > 0 && w.bytes() + Writer::<W>::record_size(h.data_len) > b.max_bytes {
            return Ok(Some(StopReason::Bytes));
        }
        w.write(h.sec, h.nsec, &h.link, ring.data(&h), h.wire_len).map_err(CaptureError::Output)?;
        let released = ring.advance();
        if b.max_packets > 0 && w.records() >= b.max_packets {
            return Ok(Some(StopReason::Packets));
        }
        if released && b.over().is_some() {
            return Ok(None);
        }
    }
    Ok(None)
}

/// Waits until the ring has a block ready or `wait` passes; records a socket error (the
/// interface went down) as a note.
fn wait_ready(ring: &Ring, wait: Duration, notes: &mut Vec<String>) {
    let mut p = libc::pollfd { fd: ring.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ms = wait.as_millis().min(u128::from(POLL_MS)) as libc::c_int;
    // SAFETY: p is one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    // Nothing, a timeout or EINTR: the caller looks at its bounds and comes back.
    if n <= 0 || p.revents & libc::POLLERR == 0 {
        return;
    }
    // Reading SO_ERROR clears it, so poll does not report it again.
    let mut err: libc::c_int = 0;
    match getsockopt(&ring.fd, libc::SOL_SOCKET, libc::SO_ERROR, &mut err) {
        Ok(()) if err != 0 && notes.len() < 16 => {
            notes.push(format!("{}: {}", ring.label, io::Error::from_raw_os_error(err)))
        }
        _ => {}
    }
}

/// Runs a capture; see [`super::capture`].
pub fn run<W: Write>(cfg: &Config, out: &mut W, stop: &AtomicBool) -> Result<Stats, CaptureError> {
    let snaplen = check(cfg)?;
    let target = target(&cfg.interfaces)?;
    let program = kernel_program(cfg, snaplen, &target, interface_index("lo"));
    let mut ring = Ring::open(target.ifindex, target.label, &program, snaplen)?;
    let mut w = Writer::new(out, snaplen).map_err(CaptureError::Output)?;
    let start_realtime_ns = sys::clocks().realtime_ns;
    let started = Instant::now();
    // The counters need no reset: nothing reached the socket before bind(). (Reading
    // them here would drop packets that arrive between the two calls from `seen`.)
    ring.bind()?;
    let bounds = Bounds {
        max_packets: cfg.max_packets,
        max_bytes: cfg.max_bytes,
        deadline: (!cfg.duration.is_zero()).then(|| started + cfg.duration),
        stop,
    };
    let mut notes = Vec::new();
    let mut stopped_by = loop {
        if let Some(bound) = drain(&mut ring, &mut w, &bounds)? {
            break bound;
        }
        if let Some(why) = bounds.over() {
            break why;
        }
        let wait = bounds.deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(Instant::now()));
        wait_ready(&ring, wait.max(Duration::from_millis(1)), &mut notes);
    };

    // Stop accepting, then write what was accepted before: the block in progress is
    // handed over within one block timeout.
    attach_filter(&ring.fd, &[BpfInsn { code: 0x06, jt: 0, jf: 0, k: 0 }])?;
    let end_realtime_ns = sys::clocks().realtime_ns;
    let duration = started.elapsed();
    if matches!(stopped_by, StopReason::Time | StopReason::Interrupted) {
        let until = Instant::now() + Duration::from_millis(u64::from(RETIRE_TOV_MS) * 2 + 50);
        let tail = Bounds { deadline: None, stop: &AtomicBool::new(false), ..bounds };
        while Instant::now() < until {
            if let Some(bound) = drain(&mut ring, &mut w, &tail)? {
                stopped_by = bound;
                break;
            }
            if ring.idle() {
                break;
            }
            wait_ready(&ring, Duration::from_millis(10), &mut notes);
        }
    }
    let (seen, dropped) = ring.stats()?;
    let (captured, bytes) = (w.records(), w.bytes());
    w.finish().map_err(CaptureError::Output)?;
    Ok(Stats {
        seen,
        captured,
        dropped,
        bytes,
        stopped_by,
        start_realtime_ns,
        end_realtime_ns,
        duration,
        snaplen,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::super::bpf::{run, Aux};
    use super::*;

    #[test]
    fn settings_are_checked() {
        let cfg = |snaplen, max_bytes| Config { snaplen, max_bytes, ..Default::default() };
        assert_eq!(check(&cfg(0, 0)).unwrap(), MAX_SNAPLEN);
        assert_eq!(check(&cfg(128, 24)).unwrap(), 128);
        assert!(matches!(check(&cfg(16, 0)), Err(CaptureError::Invalid(_))));
        assert!(matches!(check(&cfg(MAX_SNAPLEN + 1, 0)), Err(CaptureError::Invalid(_))));
        assert!(matches!(check(&cfg(128, 23)), Err(CaptureError::Invalid(_))));
        let empty = Config { program: Some(Vec::new()), ..Default::default() };
        assert!(matches!(check(&empty), Err(CaptureError::Invalid(_))));
    }

    #[test]
    fn one_interface_is_bound_several_share_one_filtered_socket() {
        let all = Target { ifindex: 0, only: Vec::new(), label: "all interfaces".into() };
        assert_eq!(target(&[]).unwrap(), all);
        assert_eq!(target(&["lo".into(), "any".into()]).unwrap(), all);
        let lo = interface_index("lo").expect("a loopback interface");
        let bound = Target { ifindex: lo, only: Vec::new(), label: "lo".into() };
        assert_eq!(target(&["lo".into(), "lo".into()]).unwrap(), bound);
        let e = target(&["lo".into(), "nosuch0".into()]).unwrap_err();
        assert!(matches!(&e, CaptureError::NoSuchInterface(n) if n == "nosuch0"), "{e}");
        assert_eq!(e.to_string(), "no network interface named \"nosuch0\"");
    }

    #[test]
    fn the_kernel_program_has_the_prefixes_that_apply() {
        let cfg = Config::default();
        let t = |ifindex, only: &[u32]| Target { ifindex, only: only.to_vec(), label: String::new() };
        let keep = |p: &[BpfInsn], ifindex, pkttype| run(p, &[0x45; 40], &Aux { protocol: 0x0800, pkttype, ifindex });
        let out = libc::PACKET_OUTGOING;
        // All interfaces: sent copies on lo (1) dropped, the rest cut to 128 - 16.
        let p = kernel_program(&cfg, 128, &t(0, &[]), Some(1));
        assert_eq!((keep(&p, 1, out), keep(&p, 1, 0), keep(&p, 2, out)), (0, 112, 112));
        // Bound to eth0 (2): no prefix at all.
        assert_eq!(kernel_program(&cfg, 128, &t(2, &[]), Some(1)), super::super::keep_all(128));
        // lo and eth0 (1, 2) on one socket: eth1 (3) refused, lo de-duplicated.
        let p = kernel_program(&cfg, 128, &t(0, &[1, 2]), Some(1));
        assert_eq!((keep(&p, 3, 0), keep(&p, 2, 0), keep(&p, 1, out), keep(&p, 1, 0)), (0, 112, 0, 112));
        // The caller's returns are lowered to the snaplen.
        let wide = Config { program: Some(vec![BpfInsn { code: 0x06, jt: 0, jf: 0, k: 262_144 }]), ..cfg };
        assert_eq!(keep(&kernel_program(&wide, 128, &t(2, &[]), Some(1)), 2, 0), 112);
    }
}
