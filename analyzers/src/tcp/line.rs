//! One TCP packet as a tcpdump line, for `snap show ... tcpdump`-style views:
//!
//! ```text
//! 12:00:00.002000 IP 10.0.0.2.40000 > 10.0.0.1.80: Flags [P.], seq 1:121, ack 1, win 64240, length 120
//! ```
//!
//! As `tcpdump -r` prints it (its default relative sequence numbers: absolute on SYNs,
//! relative after), except that the time is UTC (the capture does not say the capturing
//! host's time zone) and Wireshark's analysis can be appended in brackets.

use std::fmt;
use std::net::IpAddr;

use super::decode::{TcpFlags, TcpPacket};
use super::track::PacketInfo;

/// A packet to print; see the module docs.
pub struct TcpdumpLine<'p, 'a> {
    pub packet: &'p TcpPacket<'a>,
    /// The tracker's verdict: with it, sequence numbers are relative.
    pub info: Option<&'p PacketInfo>,
    /// Print the date too (`2024-05-01 12:00:00.002000`).
    pub date: bool,
    /// Append Wireshark's analysis flags (`[TCP Retransmission]`).
    pub analysis: bool,
}

impl<'p, 'a> TcpdumpLine<'p, 'a> {
    pub fn new(packet: &'p TcpPacket<'a>, info: Option<&'p PacketInfo>) -> TcpdumpLine<'p, 'a> {
        TcpdumpLine { packet, info, date: false, analysis: false }
    }
}

fn write_addr(f: &mut fmt::Formatter<'_>, ip: IpAddr, port: u16) -> fmt::Result {
    write!(f, "{ip}.{port}")
}

/// `sack_base` is subtracted from SACK block edges: with relative numbers, tcpdump prints
/// them relative to the same start as the acknowledgment number.
fn write_options(f: &mut fmt::Formatter<'_>, mut b: &[u8], sack_base: u32) -> fmt::Result {
    let mut first = true;
    let mut sep = |f: &mut fmt::Formatter<'_>| {
        if !std::mem::take(&mut first) {
            f.write_str(",")?;
        }
        Ok::<(), fmt::Error>(())
    };
    while let Some(&kind) = b.first() {
        sep(f)?;
        match kind {
            0 => {
                f.write_str("eol")?;
                break;
            }
            1 => {
                f.write_str("nop")?;
                b = &b[1..];
                continue;
            }
            _ => {}
        }
        let len = b.get(1).map_or(0, |l| usize::from(*l));
        if len < 2 || len > b.len() {
            f.write_str("bad opt")?;
            break;
        }
        let v = &b[2..len];
        let be32 = |at: usize| u32::from_be_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]]);
        match (kind, v.len()) {
            (2, 2) => write!(f, "mss {}", u16::from_be_bytes([v[0], v[1]]))?,
            (3, 1) => write!(f, "wscale {}", v[0])?,
            (4, 0) => f.write_str("sackOK")?,
            (5, n) if n % 8 == 0 => {
                write!(f, "sack {} ", n / 8)?;
                for i in 0..n / 8 {
                    write!(
                        f,
                        "{{{}:{}}}",
                        be32(i * 8).wrapping_sub(sack_base),
                        be32(i * 8 + 4).wrapping_sub(sack_base)
                    )?;
                }
            }
            (8, 8) => write!(f, "TS val {} ecr {}", be32(0), be32(4))?,
            (30, _) => f.write_str("mptcp")?,
            (34, _) => f.write_str("tfo")?,
            (k, _) => write!(f, "unknown-{k}")?,
        }
        b = &b[len..];
    }
    Ok(())
}

impl fmt::Display for TcpdumpLine<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.packet;
        write!(f, "{} ", snap_bundle::time::clock_utc(p.time_ns, self.date))?;
        f.write_str(if p.src.is_ipv6() { "IP6 " } else { "IP " })?;
        write_addr(f, p.src, p.src_port)?;
        f.write_str(" > ")?;
        write_addr(f, p.dst, p.dst_port)?;
        write!(f, ": Flags [{}]", p.flags)?;
        // tcpdump numbers relatively only segments with ACK set, and never SYNs.
        let relative = self.info.filter(|_| !p.flags.syn() && p.flags.ack());
        let (seq, ack) = match relative {
            Some(i) => (i.analysis.rel_seq, i.analysis.rel_ack),
            None => (p.seq, p.ack),
        };
        if p.payload_len > 0 {
            write!(f, ", seq {seq}:{}", seq.wrapping_add(p.payload_len))?;
        } else if p.flags.has(TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST) {
            write!(f, ", seq {seq}")?;
        }
        if p.flags.ack() {
            write!(f, ", ack {ack}")?;
        }
        write!(f, ", win {}", p.window)?;
        if p.flags.has(TcpFlags::URG) {
            write!(f, ", urg {}", p.urgent)?;
        }
        if !p.raw_options.is_empty() {
            f.write_str(", options [")?;
            let sack_base = if relative.is_some() { p.ack.wrapping_sub(ack) } else { 0 };
            write_options(f, p.raw_options, sack_base)?;
            f.write_str("]")?;
        }
        write!(f, ", length {}", p.payload_len)?;
        if let Some(i) = self.info.filter(|_| self.analysis) {
            let a = i.analysis;
            if !a.flags.is_empty() {
                write!(f, " [{}", a.flags)?;
                if a.dup_ack_num > 0 {
                    write!(f, " #{} of {}", a.dup_ack_num, a.dup_ack_of)?;
                }
                f.write_str("]")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::synth::{write_pcap, Conversation};
    use crate::tcp::{Item, Options, Packets, Side};

    #[test]
    fn lines_read_like_tcpdump() {
        // 2023-11-14 22:13:20 UTC.
        let mut c = Conversation::new("10.0.0.2:40000", "10.0.0.1:80", 1_700_000_000_000_000_000);
        c.handshake(2_000_000).data(Side::Client, 120).wait(500_000).data(Side::Server, 10).fin(Side::Client);
        let pcap = write_pcap(&c.segments(), false);
        let mut lines = Vec::new();
        for item in Packets::new(&pcap, &Options::default()).unwrap() {
            let Item::Tcp(p, info) = item.unwrap() else { panic!("TCP") };
            let mut l = TcpdumpLine::new(&p, Some(&info));
            l.date = p.number == 1;
            lines.push(l.to_string());
        }
        assert_eq!(
            lines,
            [
                "2023-11-14 22:13:20.000000 IP 10.0.0.2.40000 > 10.0.0.1.80: Flags [S], seq 1000, win 64240, \
                 options [mss 1460,nop,nop,sackOK,nop,wscale 7], length 0",
                "22:13:20.001000 IP 10.0.0.1.80 > 10.0.0.2.40000: Flags [S.], seq 5000, ack 1001, win 65160, \
                 options [mss 1460,nop,nop,sackOK,nop,wscale 7], length 0",
                "22:13:20.002000 IP 10.0.0.2.40000 > 10.0.0.1.80: Flags [.], ack 1, win 64240, length 0",
                "22:13:20.002000 IP 10.0.0.2.40000 > 10.0.0.1.80: Flags [P.], seq 1:121, ack 1, win 64240, length 120",
                "22:13:20.002500 IP 10.0.0.1.80 > 10.0.0.2.40000: Flags [P.], seq 1:11, ack 121, win 65160, length 10",
                "22:13:20.002500 IP 10.0.0.2.40000 > 10.0.0.1.80: Flags [F.], seq 121, ack 11, win 64240, length 0",
            ]
        );
    }
}
