//! The bounded packet capture: a window of packets from an AF_PACKET socket written as a
//! classic pcap, with the kernel doing the filtering and the truncation.
//!
//! Packets are read "cooked" (SOCK_DGRAM, link type LINUX_SLL, as libpcap's `any`
//! device), so every interface shares one link type, through a TPACKET_V3
//! memory-mapped ring: no system call per packet, as tcpdump does. The filter program
//! runs in the kernel; its return value is the number of bytes kept, so the snaplen is
//! applied there too. On loopback every packet passes twice (sent, then received): a
//! short prefix to the program drops the sent copy in the kernel, as tcpdump does in
//! user space, so that the kernel's counts match the file.
//!
//! One interface gets a socket bound to it; several share one socket whose filter
//! accepts just them, so that their packets leave one ring in order.
//!
//! [`ring`] owns the socket and the capture loop, [`pcap`] the file format, `filter`
//! compiles tcpdump expressions into the [`BpfInsn`] programs taken here, and
//! [`window`] runs a capture beside the sampling window of a collection.

pub mod bpf;
pub mod filter;
pub mod pcap;
pub mod ring;
pub mod window;

use std::io::{self, Write};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use filter::BpfInsn;
pub use pcap::{LINKTYPE_LINUX_SLL, SLL_HEADER_LEN};

/// The largest snaplen, and the one `0` stands for: tcpdump's maximum.
pub const MAX_SNAPLEN: u32 = 262_144;
/// The most instructions the kernel accepts in a classic BPF program (BPF_MAXINSNS).
pub const MAX_PROGRAM_LEN: usize = 4096;

/// What to capture and when to stop. A zero bound is no bound; a capture with no bound
/// at all runs until `stop` is set.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Interface names; empty (or one named `any`) means all interfaces.
    pub interfaces: Vec<String>,
    /// A classic BPF program as the kernel runs it on a cooked socket: the packet starts
    /// at the network header, link-layer facts come from `SKF_AD_*` ancillary loads.
    /// Its `ret #k` values are lowered to the snaplen, so truncation happens in the
    /// kernel whatever the compiler put there. None keeps every packet.
    pub program: Option<Vec<BpfInsn>>,
    /// Bytes kept per packet, the 16-byte SLL header included; 0 means [`MAX_SNAPLEN`].
    pub snaplen: u32,
    /// Packets written, at most.
    pub max_packets: u64,
    /// Size of the pcap file, header included, at most: a record that would pass it is
    /// not written and ends the capture.
    pub max_bytes: u64,
    pub duration: Duration,
}

/// What ended a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The duration ran out.
    Time,
    /// `max_packets` were written.
    Packets,
    /// The next record would have passed `max_bytes`.
    Bytes,
    /// The caller set the stop flag.
    Interrupted,
}

impl StopReason {
    /// The word the manifest uses.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Time => "time",
            StopReason::Packets => "packets",
            StopReason::Bytes => "bytes",
            StopReason::Interrupted => "interrupted",
        }
    }
}

/// The figures of a finished capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Packets that passed the filter (PACKET_STATISTICS tp_packets, summed over the
    /// sockets; loopback's sent copies are not counted). It includes the dropped ones,
    /// and packets still in the ring when a packet or byte bound ended the capture.
    pub seen: u64,
    /// Records written.
    pub captured: u64,
    /// Packets the kernel dropped because the ring was full (tp_drops).
    pub dropped: u64,
    /// Size of the pcap file, header included.
    pub bytes: u64,
    pub stopped_by: StopReason,
    /// CLOCK_REALTIME when the sockets started and stopped accepting packets: every
    /// packet timestamp lies between them.
    pub start_realtime_ns: u64,
    pub end_realtime_ns: u64,
    pub duration: Duration,
    /// The snaplen in force (the file header's), SLL header included.
    pub snaplen: u32,
    /// Interfaces that reported an error while capturing (went down, were removed).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// No CAP_NET_RAW: the run records the capture as denied and goes on.
    #[error("packet capture denied: {0}")]
    Denied(String),
    #[error("no network interface named {0:?}")]
    NoSuchInterface(String),
    #[error("invalid capture settings: {0}")]
    Invalid(String),
    #[error("the kernel refused the filter program ({len} instructions): {source}")]
    Filter { len: usize, source: io::Error },
    /// A system call the capture needs failed: what was being done, and the error.
    #[error("{0}: {1}")]
    Io(String, #[source] io::Error),
    /// Writing the pcap failed (a full disk).
    #[error("writing the capture file failed: {0}")]
    Output(#[source] io::Error),
}

/// Captures packets into `out` as a pcap until a bound of `cfg` or `stop` ends it.
///
/// Errors before the first packet (privilege, interface, filter) leave `out` untouched;
/// on success `out` holds a complete pcap, flushed.
pub fn capture<W: Write>(cfg: &Config, out: &mut W, stop: &AtomicBool) -> Result<Stats, CaptureError> {
    ring::run(cfg, out, stop)
}

// Classic BPF opcodes used here (linux/bpf_common.h).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_LD_IMM: u16 = 0x00;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
const SKF_AD_OFF: u32 = libc::SKF_AD_OFF as u32;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> BpfInsn {
    BpfInsn { code, jt, jf, k }
}

/// The program that keeps every packet, cut to `snaplen` (SLL header included).
pub fn keep_all(snaplen: u32) -> Vec<BpfInsn> {
    vec![insn(BPF_RET_K, 0, 0, snaplen.saturating_sub(SLL_HEADER_LEN).max(1))]
}

/// `prog` with every `ret #k` above `max` lowered to `max` (bytes after the SLL
/// header), so the kernel copies no more than the snaplen. `ret #0` stays a reject.
pub fn clamp_returns(prog: &[BpfInsn], max: u32) -> Vec<BpfInsn> {
    prog.iter().map(|i| if i.code == BPF_RET_K && i.k > max { BpfInsn { k: max, ..*i } } else { *i }).collect()
}

/// `prog` behind a prefix that rejects packets sent on the loopback interface
/// (`lo_ifindex`), which come back as received packets: each is then kept once.
///
/// ```text
/// 0: ld [ifindex]           ; SKF_AD_OFF + SKF_AD_IFINDEX
/// 1: jeq #lo_ifindex  jt 2  jf 5
/// 2: ld [pkttype]           ; SKF_AD_OFF + SKF_AD_PKTTYPE
/// 3: jeq #PACKET_OUTGOING  jt 4  jf 5
/// 4: ret #0
/// 5: ld #0                  ; A as the kernel starts a program
/// 6: prog...                ; relative jumps stay valid
/// ```
pub fn skip_loopback_outgoing(lo_ifindex: u32, prog: &[BpfInsn]) -> Vec<BpfInsn> {
    let mut out = Vec::with_capacity(prog.len() + 6);
    out.extend([
        insn(BPF_LD_W_ABS, 0, 0, SKF_AD_OFF.wrapping_add(libc::SKF_AD_IFINDEX as u32)),
        insn(BPF_JEQ_K, 0, 3, lo_ifindex),
        insn(BPF_LD_W_ABS, 0, 0, SKF_AD_OFF.wrapping_add(libc::SKF_AD_PKTTYPE as u32)),
        insn(BPF_JEQ_K, 0, 1, u32::from(libc::PACKET_OUTGOING)),
        insn(BPF_RET_K, 0, 0, 0),
        insn(BPF_LD_IMM, 0, 0, 0),
    ]);
    out.extend_from_slice(prog);
    out
}

/// `prog` behind a prefix that rejects packets from interfaces other than `ifindexes`
/// (at most 250), for one socket capturing several interfaces.
///
/// ```text
/// 0:   ld [ifindex]
/// 1:   jeq #i1  jt n+2        ; one per interface, jumping to the program
/// ...
/// n+1: ret #0
/// n+2: ld #0
/// n+3: prog...
/// ```
pub fn accept_interfaces(ifindexes: &[u32], prog: &[BpfInsn]) -> Vec<BpfInsn> {
    let n = ifindexes.len().min(250);
    let mut out = Vec::with_capacity(prog.len() + n + 3);
    out.push(insn(BPF_LD_W_ABS, 0, 0, SKF_AD_OFF.wrapping_add(libc::SKF_AD_IFINDEX as u32)));
    for (p, i) in ifindexes[..n].iter().enumerate() {
        out.push(insn(BPF_JEQ_K, (n - p) as u8, 0, *i));
    }
    out.extend([insn(BPF_RET_K, 0, 0, 0), insn(BPF_LD_IMM, 0, 0, 0)]);
    out.extend_from_slice(prog);
    out
}

#[cfg(test)]
mod tests {
    use super::bpf::{run, Aux};
    use super::*;

    const LO: u32 = 1;
    const ETH0: u32 = 2;

    fn aux(ifindex: u32, pkttype: u8) -> Aux {
        Aux { protocol: 0x0800, pkttype, ifindex }
    }

    #[test]
    fn loopback_prefix_is_the_documented_instructions() {
        let p = skip_loopback_outgoing(LO, &keep_all(128));
        let got: Vec<_> = p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect();
        let want = [(0x20, 0, 0, 0xffff_f008), (0x15, 0, 3, LO), (0x20, 0, 0, 0xffff_f004), (0x15, 0, 1, 4)];
        assert_eq!(got, [&want[..], &[(0x06, 0, 0, 0), (0x00, 0, 0, 0), (0x06, 0, 0, 112)]].concat());
    }

    #[test]
    fn loopback_prefix_drops_only_what_lo_sends_and_keeps_the_programs_verdicts() {
        let p = skip_loopback_outgoing(LO, &keep_all(128));
        let (packet, out, host) = ([0x45u8; 40], libc::PACKET_OUTGOING, libc::PACKET_HOST);
        assert_eq!(run(&p, &packet, &aux(LO, out)), 0, "sent on lo: the copy to drop");
        assert_eq!(run(&p, &packet, &aux(LO, host)), 112, "received on lo: kept");
        assert_eq!((run(&p, &packet, &aux(ETH0, out)), run(&p, &packet, &aux(ETH0, host))), (112, 112));
        // Keeps IPv4 only: ld [protocol]; jeq #0x800 jt 0 jf 1; ret #100; ret #0.
        let ipv4_only = [
            insn(0x28, 0, 0, SKF_AD_OFF.wrapping_add(libc::SKF_AD_PROTOCOL as u32)),
            insn(BPF_JEQ_K, 0, 1, 0x0800),
            insn(BPF_RET_K, 0, 0, 100),
            insn(BPF_RET_K, 0, 0, 0),
        ];
        let p = skip_loopback_outgoing(LO, &ipv4_only);
        for a in [aux(LO, host), aux(ETH0, out), Aux { protocol: 0x86dd, ..aux(LO, host) }] {
            assert_eq!(run(&p, &packet, &a), run(&ipv4_only, &packet, &a), "{a:?}");
        }
        // A program that returns A untouched sees A = 0, as without the prefix.
        assert_eq!(run(&skip_loopback_outgoing(LO, &[insn(0x16, 0, 0, 0)]), &packet, &aux(LO, host)), 0);
    }

    /// Cooked IPv4 UDP to `port` (the packet starts at the IP header), keeping `keep`.
    fn udp_to(port: u16, keep: u32) -> Vec<BpfInsn> {
        vec![
            insn(0x28, 0, 0, SKF_AD_OFF.wrapping_add(libc::SKF_AD_PROTOCOL as u32)), // ldh [protocol]
            insn(BPF_JEQ_K, 0, 8, 0x0800),                                           // IPv4?
            insn(0x30, 0, 0, 9),                                                     // ldb [9]
            insn(BPF_JEQ_K, 0, 6, 17),                                               // UDP?
            insn(0x28, 0, 0, 6),                                                     // ldh [6]
            insn(0x45, 4, 0, 0x1fff),                                                // a fragment?
            insn(0xb1, 0, 0, 0),                                                     // ldxb 4*([0]&0xf)
            insn(0x48, 0, 0, 2),                                                     // ldh [x+2]
            insn(BPF_JEQ_K, 0, 1, u32::from(port)),
            insn(BPF_RET_K, 0, 0, keep),
            insn(BPF_RET_K, 0, 0, 0),
        ]
    }

    fn udp_packet(dport: u16, payload: usize) -> Vec<u8> {
        let mut p = vec![0u8; 28 + payload];
        p[0] = 0x45;
        p[9] = 17;
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn the_udp_test_program_matches_its_port_only() {
        let (p, a) = (udp_to(4242, 112), aux(LO, libc::PACKET_HOST));
        assert_eq!(run(&p, &udp_packet(4242, 200), &a), 112);
        assert_eq!(run(&p, &udp_packet(4243, 200), &a), 0);
        let mut frag = udp_packet(4242, 200);
        frag[7] = 1;
        assert_eq!(run(&p, &frag, &a), 0);
        assert_eq!(run(&p, &udp_packet(4242, 200), &Aux { protocol: 0x86dd, ..a }), 0);
    }

    /// Sends `n` datagrams of `size` bytes to 127.0.0.1:`port` after `delay`.
    fn send_udp(port: u16, n: usize, size: usize, delay: Duration) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for i in 0..n {
                s.send_to(&vec![i as u8; size], ("127.0.0.1", port)).unwrap();
            }
        })
    }

    /// Captures on `interfaces` for 2 s while `n` datagrams go to a fresh UDP port, sent
    /// half a second in (margins for a busy VM: the ring must be bound before the first
    /// datagram and the last must be sent before the end).
    fn live(interfaces: &[&str], n: usize, tune: impl FnOnce(&mut Config)) -> (Stats, Vec<u8>, u16) {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rx.local_addr().unwrap().port();
        let mut cfg = Config {
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            program: Some(udp_to(port, MAX_SNAPLEN)),
            snaplen: 128,
            duration: Duration::from_secs(2),
            ..Default::default()
        };
        tune(&mut cfg);
        let sender = send_udp(port, n, 200, Duration::from_millis(500));
        let mut out = Vec::new();
        let stats = capture(&cfg, &mut out, &AtomicBool::new(false)).unwrap();
        sender.join().unwrap();
        (stats, out, port)
    }

    fn tcpdump_lines(pcap: &[u8], tag: u16) -> Option<usize> {
        let file = std::env::temp_dir().join(format!("snap-capture-{}-{tag}.pcap", std::process::id()));
        std::fs::write(&file, pcap).unwrap();
        let out = std::process::Command::new("tcpdump").args(["-nn", "-r"]).arg(&file).output();
        std::fs::remove_file(&file).unwrap();
        let out = out.ok()?;
        assert!(out.status.success(), "tcpdump -r: {}", snap_bundle::text::lossy(&out.stderr));
        Some(snap_bundle::text::lossy(&out.stdout).lines().count())
    }

    fn check_udp_capture(interfaces: &[&str]) {
        if !crate::sys::is_root() {
            return eprintln!("skipped: capturing needs root");
        }
        let (st, file, port) = live(interfaces, 200, |_| {});
        let (snaplen, linktype, records) = pcap::parse(&file);
        assert_eq!((snaplen, linktype), (128, LINKTYPE_LINUX_SLL));
        assert_eq!(records.len(), 200, "each datagram once, not once sent and once received");
        assert_eq!((st.seen, st.captured, st.dropped), (200, 200, 0), "{st:?}");
        assert_eq!((st.stopped_by, st.bytes), (StopReason::Time, file.len() as u64));
        let mut last = st.start_realtime_ns;
        for r in &records {
            let ts = u64::from(r.sec) * 1_000_000_000 + u64::from(r.nsec);
            assert!(ts >= last && ts <= st.end_realtime_ns, "{ts} not in order within the capture");
            last = ts;
            assert_eq!((r.caplen, r.len), (128, 16 + 228), "cut to the snaplen in the kernel");
            assert_eq!(&r.data[..2], &[0, 0], "the received copy (PACKET_HOST)");
            assert_eq!(&r.data[14..16], &[0x08, 0x00]);
            assert_eq!(&r.data[16 + 22..16 + 24], &port.to_be_bytes());
        }
        match tcpdump_lines(&file, port) {
            Some(lines) => assert_eq!(lines, 200),
            None => eprintln!("tcpdump not installed: the file was not checked with it"),
        }
    }

    #[test]
    fn live_loopback_packets_are_captured_once() {
        check_udp_capture(&["lo"]);
    }

    #[test]
    fn live_all_interfaces_capture_loopback_once() {
        check_udp_capture(&[]);
    }

    #[test]
    fn live_several_interfaces_keep_loopback_once() {
        let other = std::fs::read_dir("/sys/class/net").unwrap().flatten().map(|e| e.file_name()).find(|n| n != "lo");
        match other.and_then(|n| n.into_string().ok()) {
            Some(other) => check_udp_capture(&["lo", &other]),
            None => eprintln!("skipped: no interface besides lo"),
        }
    }

    #[test]
    fn live_packet_and_byte_bounds_hold() {
        if !crate::sys::is_root() {
            return eprintln!("skipped: capturing needs root");
        }
        let (st, file, _) = live(&["lo"], 200, |c| c.max_packets = 50);
        assert_eq!((pcap::parse(&file).2.len(), st.captured, st.stopped_by), (50, 50, StopReason::Packets));
        assert!(st.seen >= 50 && st.duration < Duration::from_secs(2), "{st:?}");
        let cap = 24 + 10 * (32 + 112) + 100;
        let (st, file, _) = live(&["lo"], 200, |c| c.max_bytes = cap);
        assert_eq!((pcap::parse(&file).2.len(), st.stopped_by, st.bytes), (10, StopReason::Bytes, file.len() as u64));
        assert!(file.len() as u64 <= cap);
    }

    #[test]
    fn live_stop_flag_and_kernel_truncation_without_a_program() {
        if !crate::sys::is_root() {
            return eprintln!("skipped: capturing needs root");
        }
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = send_udp(rx.local_addr().unwrap().port(), 20, 1000, Duration::from_millis(500));
        let cfg = Config {
            interfaces: vec!["lo".into()],
            snaplen: 64,
            duration: Duration::from_secs(30),
            ..Default::default()
        };
        let mut out = Vec::new();
        let st = capture(&cfg, &mut out, &stop).unwrap();
        sender.join().unwrap();
        setter.join().unwrap();
        assert_eq!(st.stopped_by, StopReason::Interrupted);
        assert!(st.duration < Duration::from_secs(5), "{st:?}");
        let records = pcap::parse(&out).2;
        assert!(records.len() >= 20 && records.iter().all(|r| r.caplen <= 64), "{st:?}");
        assert_eq!(records.iter().filter(|r| r.len == 16 + 1028).count(), 20);
    }

    #[test]
    fn without_cap_net_raw_the_capture_is_denied() {
        // Capabilities are per thread: drop CAP_NET_RAW from this thread's effective set.
        #[repr(C)]
        struct Header(u32, i32);
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data(u32, u32, u32);
        let r = std::thread::spawn(|| {
            let mut h = Header(0x2008_0522, 0);
            let mut d = [Data::default(); 2];
            // SAFETY: capget/capset with a v3 header and two data words, on this thread.
            unsafe {
                assert_eq!(libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()), 0);
                d[0].0 &= !(1 << 13);
                assert_eq!(libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()), 0);
            }
            capture(
                &Config { duration: Duration::from_secs(1), ..Default::default() },
                &mut Vec::new(),
                &AtomicBool::new(false),
            )
        });
        let e = r.join().unwrap().unwrap_err();
        assert!(matches!(e, CaptureError::Denied(_)), "{e}");
        assert!(e.to_string().contains("CAP_NET_RAW"), "{e}");
        let cfg = Config { interfaces: vec!["nosuch0".into()], ..Default::default() };
        let e = capture(&cfg, &mut Vec::new(), &AtomicBool::new(false)).unwrap_err();
        assert!(matches!(e, CaptureError::NoSuchInterface(_)), "{e}");
    }

    #[test]
    fn interface_prefix_accepts_the_listed_ones() {
        let p = accept_interfaces(&[LO, 5, 9], &keep_all(128));
        let got: Vec<_> = p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect();
        let want =
            [(0x20, 0, 0, 0xffff_f008), (0x15, 3, 0, LO), (0x15, 2, 0, 5), (0x15, 1, 0, 9), (6, 0, 0, 0), (0, 0, 0, 0)];
        assert_eq!(got[..6], want);
        for (ifindex, kept) in [(LO, 112), (ETH0, 0), (5, 112), (9, 112), (10, 0)] {
            assert_eq!(run(&p, &[0x45; 40], &aux(ifindex, libc::PACKET_HOST)), kept, "ifindex {ifindex}");
        }
    }

    #[test]
    fn returns_are_lowered_to_the_snaplen() {
        let p = [insn(BPF_RET_K, 0, 0, 262_144), insn(BPF_RET_K, 0, 0, 0), insn(BPF_RET_K, 0, 0, 50)];
        let got: Vec<u32> = clamp_returns(&p, 112).iter().map(|i| i.k).collect();
        assert_eq!(got, [112, 0, 50]);
        assert_eq!(keep_all(128)[0].k, 112);
        assert_eq!(keep_all(0)[0].k, 1, "never a reject-all");
    }
}
