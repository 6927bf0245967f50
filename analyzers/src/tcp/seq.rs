//! Wireshark's TCP sequence analysis (`tcp_analyze_sequence_number` and the parts of
//! `dissect_tcp` around it in epan/dissectors/packet-tcp.c of Wireshark 4.0.17, the
//! version Debian 12 and CI install), ported so that snap flags the same packets as
//! `tshark`'s `tcp.analysis.*` fields. The oracle test
//! `tests/oracle_tshark.rs` holds it to that, packet by packet.
//!
//! The state is Wireshark's, per conversation and per direction ("flow"): the next
//! expected sequence number (`nextseq`, the highest seq + len seen), the last ACK and
//! window sent, the duplicate-ACK counter, the flags of the previous segment, the list of
//! segments not yet acknowledged. Each packet is judged against its own flow (`fwd`) and
//! the opposite one (`rev`), in this order, and some checks end the judgement early:
//!
//! - **zero window probe**: 1 byte at exactly `fwd.nextseq` while the peer's last window
//!   was 0. Ends the forward checks.
//! - **zero window**: window field 0 on a segment without SYN, FIN or RST.
//! - **lost segment** ("previous segment not captured"): seq beyond `fwd.nextseq`
//!   (not for RST).
//! - **keep-alive**: 0 or 1 byte at `fwd.nextseq - 1`, no SYN/FIN/RST.
//! - **window update**: no payload, same seq and ack as before, a different non-zero window.
//! - **window full**: the payload ends exactly at the edge of the window the peer last
//!   advertised (scaled when the scale is known), no SYN/FIN/RST.
//! - **keep-alive ACK** / **zero window probe ACK**: an unchanged ACK answering a
//!   keep-alive / probe. Both end the forward checks.
//! - **duplicate ACK**: no payload, the same non-zero window, seq and ack as the
//!   previous segment of the flow, no SYN/FIN/RST; numbered from 1 since the ACK number
//!   last changed.
//! - **ACKed unseen segment**: acknowledges beyond the highest contiguous byte seen from
//!   the peer.
//! - For a segment with payload, SYN or FIN that does not advance `fwd.nextseq` (and is
//!   not a keep-alive), the first that applies of: **spurious retransmission** (all of it
//!   was already acknowledged by the peer); **fast retransmission** (at least 2
//!   duplicate ACKs from the peer asking for exactly this seq, the last within 20 ms);
//!   **out-of-order** (within one initial RTT, or 3 ms without one, of the segment that
//!   set `nextseq`, and not ending exactly there); otherwise **retransmission**, whose
//!   RTO is the time since the oldest unacknowledged segment of the flow.
//!   tshark's `tcp.analysis.retransmission` covers all three retransmission kinds.
//!
//! Wireshark quirks kept on purpose, because matching tshark is the point: zero means
//! "unset" for `nextseq`, the SYN time and the initial RTT (so an iRTT of exactly 0 is
//! measured again on the next ACK); time differences that are negative count as huge;
//! the initial RTT is taken at the first segment with ACK and without SYN after a SYN
//! (an RST-ACK too); window scaling is unknown until both SYNs are seen.

use std::collections::VecDeque;
use std::fmt;

use serde::Serialize;

use super::decode::{TcpFlags, TcpPacket};

/// Wireshark's per-packet analysis flags, with the bit values of its `TCP_A_*` constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Analysis(pub u16);

impl Analysis {
    /// `tcp.analysis.retransmission` (alone: neither fast nor spurious).
    pub const RETRANSMISSION: u16 = 0x0001;
    /// `tcp.analysis.lost_segment`: the previous segment was not captured.
    pub const LOST_SEGMENT: u16 = 0x0002;
    /// `tcp.analysis.ack_lost_segment`: acknowledges a segment that was not captured.
    pub const ACKED_UNSEEN: u16 = 0x0004;
    pub const KEEP_ALIVE: u16 = 0x0008;
    pub const DUPLICATE_ACK: u16 = 0x0010;
    pub const ZERO_WINDOW: u16 = 0x0020;
    pub const ZERO_WINDOW_PROBE: u16 = 0x0040;
    pub const ZERO_WINDOW_PROBE_ACK: u16 = 0x0080;
    pub const KEEP_ALIVE_ACK: u16 = 0x0100;
    pub const OUT_OF_ORDER: u16 = 0x0200;
    pub const FAST_RETRANSMISSION: u16 = 0x0400;
    pub const WINDOW_UPDATE: u16 = 0x0800;
    pub const WINDOW_FULL: u16 = 0x1000;
    /// `tcp.analysis.reused_ports`: a new connection with the ports of an earlier one.
    pub const REUSED_PORTS: u16 = 0x2000;
    pub const SPURIOUS_RETRANSMISSION: u16 = 0x4000;

    /// The three retransmission kinds: what tshark's `tcp.analysis.retransmission` marks.
    pub const ANY_RETRANSMISSION: u16 =
        Self::RETRANSMISSION | Self::FAST_RETRANSMISSION | Self::SPURIOUS_RETRANSMISSION;

    pub fn has(self, bits: u16) -> bool {
        self.0 & bits != 0
    }
    /// As tshark's `tcp.analysis.retransmission`: plain, fast or spurious.
    pub fn is_retransmission(self) -> bool {
        self.has(Self::ANY_RETRANSMISSION)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags set, as Wireshark's Info column shows them.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        const NAMES: [(u16, &str); 15] = [
            (Analysis::REUSED_PORTS, "TCP Port numbers reused"),
            (Analysis::RETRANSMISSION, "TCP Retransmission"),
            (Analysis::FAST_RETRANSMISSION, "TCP Fast Retransmission"),
            (Analysis::SPURIOUS_RETRANSMISSION, "TCP Spurious Retransmission"),
            (Analysis::OUT_OF_ORDER, "TCP Out-Of-Order"),
            (Analysis::LOST_SEGMENT, "TCP Previous segment not captured"),
            (Analysis::ACKED_UNSEEN, "TCP ACKed unseen segment"),
            (Analysis::WINDOW_UPDATE, "TCP Window Update"),
            (Analysis::WINDOW_FULL, "TCP Window Full"),
            (Analysis::KEEP_ALIVE, "TCP Keep-Alive"),
            (Analysis::KEEP_ALIVE_ACK, "TCP Keep-Alive ACK"),
            (Analysis::DUPLICATE_ACK, "TCP Dup ACK"),
            (Analysis::ZERO_WINDOW_PROBE, "TCP ZeroWindowProbe"),
            (Analysis::ZERO_WINDOW, "TCP ZeroWindow"),
            (Analysis::ZERO_WINDOW_PROBE_ACK, "TCP ZeroWindowProbeAck"),
        ];
        NAMES.into_iter().filter(move |(bit, _)| self.has(*bit)).map(|(_, name)| name)
    }
}

impl fmt::Display for Analysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.names().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(n)?;
        }
        Ok(())
    }
}

/// What the analysis says about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SeqAnalysis {
    pub flags: Analysis,
    /// For a duplicate ACK: its number since the ACK last changed (1, 2, ...).
    pub dup_ack_num: u32,
    /// For a duplicate ACK: the packet that first carried this ACK.
    pub dup_ack_of: u64,
    /// For a (plain) retransmission: time since the oldest unacknowledged segment of its
    /// direction (tshark's `tcp.analysis.rto`), 0 when not known.
    pub rto_ns: i64,
    /// ... and that segment's packet number (`tcp.analysis.rto_frame`).
    pub rto_frame: u64,
    /// The data packet this one acknowledges exactly (`tcp.analysis.acks_frame`), 0 if none.
    pub acks_frame: u64,
    /// Time since that packet (`tcp.analysis.ack_rtt`).
    pub ack_rtt_ns: i64,
    /// Sequence and acknowledgment numbers relative to the initial ones, as Wireshark shows.
    pub rel_seq: u32,
    pub rel_ack: u32,
    /// The window in bytes: the field scaled by the sender's window scale when known.
    pub window: u32,
}

/// How many unacknowledged segments a direction remembers (for RTO and ACK RTT; Wireshark
/// keeps up to 10,000). Past it, new segments are not remembered, as in Wireshark, and a
/// SYN or FIN then does not count its sequence number either (Wireshark's quirk).
pub const MAX_UNACKED: usize = 1024;

const FAST_RETRANSMISSION_WINDOW_NS: u64 = 20_000_000;
/// Wireshark's duplicate-ACK counter value after an ACKed unseen segment (-1 as unsigned).
const DUPACK_UNSEEN: u32 = u32::MAX;
const OUT_OF_ORDER_DEFAULT_NS: u64 = 3_000_000;

fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
fn gt(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}
fn le(a: u32, b: u32) -> bool {
    !gt(a, b)
}

/// A segment not yet acknowledged.
#[derive(Debug, Clone, Copy)]
struct Unacked {
    frame: u64,
    nextseq: u32,
    time_ns: i64,
}

/// One direction's state (Wireshark's `tcp_flow_t` and its `tcp_analyze_seq_flow_info_t`).
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    pub(crate) base_seq: u32,
    pub(crate) base_set: bool,
    /// -1 unknown, -2 not used, else the shift.
    pub(crate) win_scale: i8,
    /// The last window field sent (unscaled); `u32::MAX` before any.
    window: u32,
    is_first_ack: bool,
    pub(crate) nextseq: u32,
    nextseq_frame: u64,
    nextseq_time: i64,
    maxseqtobeacked: u32,
    lastack: u32,
    lastack_time: i64,
    lastnondupack: u64,
    dupacknum: u32,
    lastsegmentflags: u16,
    /// Unacknowledged segments, oldest first.
    segments: VecDeque<Unacked>,
    /// Whether `segments` is in increasing `nextseq` order (then ACKs remove a prefix).
    monotone: bool,
}

impl Flow {
    fn new() -> Flow {
        Flow {
            base_seq: 0,
            base_set: false,
            win_scale: -1,
            window: u32::MAX,
            is_first_ack: false,
            nextseq: 0,
            nextseq_frame: 0,
            nextseq_time: 0,
            maxseqtobeacked: 0,
            lastack: 0,
            lastack_time: 0,
            lastnondupack: 0,
            dupacknum: 0,
            lastsegmentflags: 0,
            segments: VecDeque::new(),
            monotone: true,
        }
    }

    fn push_segment(&mut self, s: Unacked) {
        if let Some(back) = self.segments.back() {
            if !gt(s.nextseq, back.nextseq) {
                self.monotone = false;
            }
        } else {
            self.monotone = true;
        }
        self.segments.push_back(s);
    }

    /// Removes the segments `ack` covers, as Wireshark's walk of the list does, and
    /// returns the oldest segment ending exactly at `ack` (frame, time).
    fn remove_acked(&mut self, ack: u32) -> Option<(u64, i64)> {
        let mut matched = None;
        if self.monotone {
            while let Some(front) = self.segments.front() {
                if !le(front.nextseq, ack) {
                    break;
                }
                if front.nextseq == ack {
                    matched = Some((front.frame, front.time_ns));
                }
                self.segments.pop_front();
            }
            return matched;
        }
        // Newest first, as Wireshark's list: the last match assigned is the oldest.
        let mut i = self.segments.len();
        while i > 0 {
            i -= 1;
            let s = self.segments[i];
            if s.nextseq == ack {
                matched = Some((s.frame, s.time_ns));
            }
            if le(s.nextseq, ack) {
                self.segments.remove(i);
            }
        }
        self.monotone = self.segments.iter().zip(self.segments.iter().skip(1)).all(|(a, b)| gt(b.nextseq, a.nextseq));
        matched
    }
}

/// What a pure SYN or a SYN-ACK whose sequence number differs from the flow's says
/// about the conversation (the port-reuse checks of `dissect_tcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reuse {
    /// Nothing special.
    None,
    /// A SYN with a new initial sequence number: a new conversation on the same ports.
    NewConversation,
    /// A SYN-ACK with a new initial sequence number: flagged, the flow's base moves.
    SynAckRebased,
}

/// One conversation's analysis state (Wireshark's `tcp_analysis`).
#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    pub(crate) flows: [Flow; 2],
    /// Time of the most recent SYN (0: none yet).
    mru_syn: i64,
    /// The initial RTT (0: not measured).
    pub(crate) first_rtt: i64,
}

impl Conversation {
    pub(crate) fn new() -> Conversation {
        Conversation { flows: [Flow::new(), Flow::new()], mru_syn: 0, first_rtt: 0 }
    }

    /// The port-reuse checks made before a packet from side `d` is analyzed.
    pub(crate) fn reuse(&mut self, d: usize, p: &TcpPacket) -> Reuse {
        let fwd = &mut self.flows[d];
        if !fwd.base_set {
            return Reuse::None;
        }
        if p.seq == fwd.base_seq {
            if p.flags.is_syn_only() {
                // A SYN sent again: a RST with the sequence number the peer acknowledged
                // may have moved `nextseq` (Wireshark issue 17616).
                fwd.nextseq = fwd.maxseqtobeacked;
            }
            return Reuse::None;
        }
        if p.flags.is_syn_only() {
            Reuse::NewConversation
        } else if p.flags.is_syn_ack() {
            fwd.base_seq = p.seq;
            Reuse::SynAckRebased
        } else {
            Reuse::None
        }
    }

    /// Analyzes a packet sent by side `d` (0 or 1), `preset` holding flags already known
    /// (port reuse).
    #[inline]
    pub(crate) fn packet(&mut self, d: usize, p: &TcpPacket, preset: u16) -> SeqAnalysis {
        let (seq, ack, seglen) = (p.seq, p.ack, p.payload_len);
        let th = p.flags;
        let window = u32::from(p.window);
        let (now, frame) = (p.time_ns, p.number);
        let syn_fin_rst = th.has(TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST);
        let first_rtt = self.first_rtt;
        let [f0, f1] = &mut self.flows;
        let (fwd, rev) = if d == 0 { (f0, f1) } else { (f1, f0) };
        let mut ta = preset;
        let mut out = SeqAnalysis::default();

        if !fwd.base_set {
            fwd.base_seq = if th.syn() { seq } else { seq.wrapping_sub(1) };
            fwd.base_set = true;
        }
        if !rev.base_set && th.ack() {
            rev.base_seq = ack.wrapping_sub(1);
            rev.base_set = true;
        }

        'fwd: {
            if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
                ta |= Analysis::ZERO_WINDOW_PROBE;
                break 'fwd;
            }
            if window == 0 && !syn_fin_rst {
                ta |= Analysis::ZERO_WINDOW;
            }
            if fwd.nextseq != 0 && gt(seq, fwd.nextseq) && !th.rst() {
                ta |= Analysis::LOST_SEGMENT;
            }
            if seglen <= 1 && seq == fwd.nextseq.wrapping_sub(1) && !syn_fin_rst {
                ta |= Analysis::KEEP_ALIVE;
            }
            let same_as_before = seglen == 0 && seq == fwd.nextseq && ack == fwd.lastack && !syn_fin_rst;
            if same_as_before && window != 0 && window != fwd.window {
                ta |= Analysis::WINDOW_UPDATE;
            }
            if seglen > 0 && rev.win_scale != -1 && !syn_fin_rst {
                let shift = if rev.is_first_ack || rev.win_scale == -2 { 0 } else { rev.win_scale as u32 };
                if seq.wrapping_add(seglen) == rev.lastack.wrapping_add(rev.window << shift) {
                    ta |= Analysis::WINDOW_FULL;
                }
            }
            if same_as_before && window != 0 && window == fwd.window && rev.lastsegmentflags & Analysis::KEEP_ALIVE != 0
            {
                ta |= Analysis::KEEP_ALIVE_ACK;
                break 'fwd;
            }
            if same_as_before
                && window == 0
                && window == fwd.window
                && rev.lastsegmentflags & Analysis::ZERO_WINDOW_PROBE != 0
            {
                ta |= Analysis::ZERO_WINDOW_PROBE_ACK;
                break 'fwd;
            }
            if same_as_before && window != 0 && window == fwd.window {
                fwd.dupacknum = if fwd.dupacknum == DUPACK_UNSEEN { 1 } else { fwd.dupacknum + 1 };
                ta |= Analysis::DUPLICATE_ACK;
                out.dup_ack_num = fwd.dupacknum;
                out.dup_ack_of = fwd.lastnondupack;
            }
        }

        if ack != fwd.lastack {
            fwd.lastnondupack = frame;
            fwd.dupacknum = 0;
        }

        if rev.maxseqtobeacked != 0 && gt(ack, rev.maxseqtobeacked) && th.ack() {
            if lt(rev.maxseqtobeacked, rev.nextseq) {
                // Moved up to the highest byte seen, so that the same gap is not
                // reported again.
                rev.maxseqtobeacked = rev.nextseq;
                ta |= Analysis::ACKED_UNSEEN;
            } else {
                // The peer's ACKs stall on the gap: report it once. Wireshark stores -1
                // in an unsigned counter, which then passes the fast retransmission's
                // "at least 2 duplicate ACKs" test: kept, as tshark 4.0 flags so.
                if rev.dupacknum == 0 {
                    ta |= Analysis::ACKED_UNSEEN;
                }
                rev.dupacknum = DUPACK_UNSEEN;
            }
        }

        'retrans: {
            if !(seglen > 0 || th.has(TcpFlags::SYN | TcpFlags::FIN)) {
                break 'retrans;
            }
            let mut not_advanced = fwd.nextseq != 0 && lt(seq, fwd.nextseq);
            if ta & Analysis::KEEP_ALIVE != 0 {
                break 'retrans;
            }
            // Data right after a zero window probe's byte is new data.
            if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
                not_advanced = false;
            }
            if seglen > 0 && rev.lastack != 0 && le(seq.wrapping_add(seglen), rev.lastack) {
                ta |= Analysis::SPURIOUS_RETRANSMISSION;
                break 'retrans;
            }
            let since_dupack = now.wrapping_sub(rev.lastack_time) as u64;
            if not_advanced && rev.dupacknum >= 2 && rev.lastack == seq && since_dupack < FAST_RETRANSMISSION_WINDOW_NS
            {
                ta |= Analysis::FAST_RETRANSMISSION;
                break 'retrans;
            }
            let since_next = now.wrapping_sub(fwd.nextseq_time) as u64;
            let threshold = if first_rtt == 0 { OUT_OF_ORDER_DEFAULT_NS } else { first_rtt as u64 };
            let end = seq.wrapping_add(seglen).wrapping_add(u32::from(th.has(TcpFlags::SYN | TcpFlags::FIN)));
            if not_advanced && since_next < threshold && fwd.nextseq != end {
                ta |= Analysis::OUT_OF_ORDER;
                break 'retrans;
            }
            if not_advanced {
                ta |= Analysis::RETRANSMISSION;
                let (rto_time, rto_frame) = match fwd.segments.front() {
                    Some(s) => (s.time_ns, s.frame),
                    None => (fwd.nextseq_time, fwd.nextseq_frame),
                };
                out.rto_ns = now.saturating_sub(rto_time);
                out.rto_frame = rto_frame;
            }
        }

        let mut nextseq = seq.wrapping_add(seglen);
        if (seglen > 0 || th.has(TcpFlags::SYN | TcpFlags::FIN)) && fwd.segments.len() < MAX_UNACKED {
            if th.has(TcpFlags::SYN | TcpFlags::FIN) {
                nextseq = nextseq.wrapping_add(1);
            }
            fwd.push_segment(Unacked { frame, nextseq, time_ns: now });
        }
        let probe = ta & Analysis::ZERO_WINDOW_PROBE != 0;
        if (gt(nextseq, fwd.nextseq) || fwd.nextseq == 0) && !probe {
            fwd.nextseq = nextseq;
            fwd.nextseq_frame = frame;
            fwd.nextseq_time = now;
        }
        if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && !probe {
            fwd.maxseqtobeacked = fwd.nextseq;
        }
        fwd.window = window;
        fwd.lastack = ack;
        fwd.lastack_time = now;
        fwd.lastsegmentflags = ta;

        if let Some((acked, at)) = rev.remove_acked(ack) {
            out.acks_frame = acked;
            out.ack_rtt_ns = now.saturating_sub(at);
        }

        // What dissect_tcp does after the sequence analysis.
        out.rel_seq = seq.wrapping_sub(fwd.base_seq);
        out.rel_ack = if th.ack() { ack.wrapping_sub(rev.base_seq) } else { ack };
        out.window = if !th.syn() && fwd.win_scale >= 0 { window << fwd.win_scale } else { window };
        if th.syn() {
            if !th.ack() {
                self.mru_syn = now;
            }
            fwd.is_first_ack = true;
        }
        if th.0 & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::ACK {
            if self.mru_syn != 0 && self.first_rtt == 0 {
                self.first_rtt = now.saturating_sub(self.mru_syn);
            }
            fwd.is_first_ack = false;
        }
        if let Some(shift) = p.options.wscale {
            fwd.win_scale = shift.min(14) as i8;
        }
        if th.syn() {
            // verify_tcp_window_scaling: scaling is used only if both SYNs carry it.
            if fwd.win_scale == -1 {
                fwd.win_scale = -2;
                rev.win_scale = -2;
            } else if th.ack() && rev.win_scale == -2 {
                fwd.win_scale = -2;
            }
        }
        out.flags = Analysis(ta);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::decode::TcpOptions;
    use std::net::{IpAddr, Ipv4Addr};

    fn pkt(n: u64, ms: i64, seq: u32, ack: u32, flags: u16, len: u32, win: u16) -> TcpPacket<'static> {
        TcpPacket {
            number: n,
            time_ns: 1_000_000_000 + ms * 1_000_000,
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ttl: 64,
            ip_id: 0,
            vlan: None,
            src_port: 1,
            dst_port: 2,
            seq,
            ack,
            flags: TcpFlags(flags),
            window: win,
            urgent: 0,
            header_len: 20,
            options: TcpOptions::default(),
            raw_options: &[],
            payload_len: len,
            payload: &[],
        }
    }

    const A: u16 = TcpFlags::ACK;
    const S: u16 = TcpFlags::SYN;
    const PA: u16 = TcpFlags::PSH | TcpFlags::ACK;

    #[test]
    fn handshake_rtt_retransmission_and_dup_acks() {
        let mut c = Conversation::new();
        assert!(c.packet(0, &pkt(1, 0, 100, 0, S, 0, 1000), 0).flags.is_empty());
        let r = c.packet(1, &pkt(2, 10, 500, 101, S | A, 0, 1000), 0);
        assert_eq!((r.acks_frame, r.ack_rtt_ns), (1, 10_000_000));
        c.packet(0, &pkt(3, 20, 101, 501, A, 0, 1000), 0);
        assert_eq!(c.first_rtt, 20_000_000);
        // Data, its loss, three duplicate ACKs, then the fast retransmission.
        c.packet(0, &pkt(4, 21, 101, 501, PA, 100, 1000), 0);
        c.packet(0, &pkt(5, 22, 201, 501, PA, 100, 1000), 0);
        // The server's ACKs repeat the SYN-ACK's: duplicates from the first.
        let d1 = c.packet(1, &pkt(6, 40, 501, 101, A, 0, 1000), 0);
        assert_eq!((d1.flags.0, d1.dup_ack_num, d1.dup_ack_of), (Analysis::DUPLICATE_ACK, 1, 2));
        c.packet(1, &pkt(7, 41, 501, 101, A, 0, 1000), 0);
        let d3 = c.packet(1, &pkt(8, 42, 501, 101, A, 0, 1000), 0);
        assert_eq!(d3.dup_ack_num, 3);
        let f = c.packet(0, &pkt(9, 45, 101, 501, PA, 100, 1000), 0);
        assert_eq!(f.flags.0, Analysis::FAST_RETRANSMISSION);
        // A later plain retransmission of the second segment: RTO from the oldest unacked.
        let r = c.packet(0, &pkt(10, 400, 201, 501, PA, 100, 1000), 0);
        assert_eq!(r.flags.0, Analysis::RETRANSMISSION);
        assert_eq!((r.rto_frame, r.rto_ns), (4, 379_000_000));
        assert!(r.flags.is_retransmission());
        // Everything acknowledged; sending it again is spurious.
        c.packet(1, &pkt(11, 410, 501, 301, A, 0, 1000), 0);
        let s = c.packet(0, &pkt(12, 900, 201, 501, PA, 100, 1000), 0);
        assert_eq!(s.flags.0, Analysis::SPURIOUS_RETRANSMISSION);
        assert_eq!(s.flags.to_string(), "TCP Spurious Retransmission");
    }

    #[test]
    fn zero_window_keep_alive_and_lost_segment() {
        let mut c = Conversation::new();
        c.packet(0, &pkt(1, 0, 100, 0, S, 0, 1000), 0);
        c.packet(1, &pkt(2, 1, 500, 101, S | A, 0, 1000), 0);
        c.packet(0, &pkt(3, 2, 101, 501, A, 0, 1000), 0);
        let z = c.packet(1, &pkt(4, 3, 501, 101, A, 0, 0), 0);
        assert_eq!(z.flags.0, Analysis::ZERO_WINDOW);
        let probe = c.packet(0, &pkt(5, 10, 101, 501, A, 1, 1000), 0);
        assert_eq!(probe.flags.0, Analysis::ZERO_WINDOW_PROBE);
        let ka = c.packet(1, &pkt(6, 20, 500, 101, A, 0, 1000), 0);
        assert_eq!(ka.flags.0, Analysis::KEEP_ALIVE);
        let lost = c.packet(0, &pkt(7, 30, 5000, 501, PA, 10, 1000), 0);
        assert!(lost.flags.has(Analysis::LOST_SEGMENT));
        let unseen = c.packet(1, &pkt(8, 31, 501, 6000, A, 0, 1000), 0);
        assert!(unseen.flags.has(Analysis::ACKED_UNSEEN), "{:?}", unseen.flags);
    }

    #[test]
    fn relative_numbers_and_window_scaling() {
        let mut c = Conversation::new();
        let mut syn = pkt(1, 0, 1000, 0, S, 0, 65535);
        syn.options.wscale = Some(7);
        c.packet(0, &syn, 0);
        let mut sa = pkt(2, 1, 9000, 1001, S | A, 0, 65535);
        sa.options.wscale = Some(20);
        c.packet(1, &sa, 0);
        assert_eq!((c.flows[0].win_scale, c.flows[1].win_scale), (7, 14));
        let r = c.packet(0, &pkt(3, 2, 1001, 9001, A, 0, 10), 0);
        assert_eq!((r.rel_seq, r.rel_ack, r.window), (1, 1, 1280));
        // Without the option on the SYN-ACK, scaling is off in both directions.
        let mut c = Conversation::new();
        c.packet(0, &syn, 0);
        c.packet(1, &pkt(2, 1, 9000, 1001, S | A, 0, 65535), 0);
        assert_eq!((c.flows[0].win_scale, c.flows[1].win_scale), (-2, -2));
    }
}
