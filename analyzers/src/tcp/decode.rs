//! Per-packet decoding: link layer, IPv4/IPv6, TCP header and options, borrowing from
//! the capture's bytes. [`decode`] turns a [`Frame`] into a [`TcpPacket`] (everything a
//! tcpdump line shows, plus the payload slice) or says why the packet is not one
//! ([`Skip`]). It never panics on any input and never allocates.
//!
//! Link types: EN10MB (1, with any number of 802.1Q/802.1ad VLAN tags), LINUX_SLL (113),
//! LINUX_SLL2 (276), RAW (101, and the BSD values 12 and 14), IPV4 (228), IPV6 (229),
//! NULL (0, address family in either byte order) and LOOP (108).
//!
//! Lengths follow Wireshark: the TCP segment length is the IP datagram's length (IPv4
//! total length, IPv6 payload length, minus headers) capped by the packet's length on the
//! wire, not the bytes captured, so a capture cut by a snap length still counts payload
//! bytes right. An IPv4 total length of 0 (segmentation offload on the capturing host) is
//! read as "the rest of the packet", as Wireshark's `ip.tso_support` does. Fragments other
//! than IPv6 atomic ones (offset 0, no more fragments) are skipped: Wireshark reassembles
//! them; snap's capture is headers-only and never sees fragmented TCP in practice.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::capture::Frame;

/// The twelve TCP header flag bits (`NS`, `CWR`, `ECE`, `URG`, `ACK`, `PSH`, `RST`, `SYN`,
/// `FIN` and three reserved), as Wireshark's `tcp.flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;
    pub const NS: u16 = 0x100;

    pub fn has(self, bits: u16) -> bool {
        self.0 & bits != 0
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn psh(self) -> bool {
        self.has(Self::PSH)
    }
    /// SYN without ACK: a connection request.
    pub fn is_syn_only(self) -> bool {
        self.0 & (Self::SYN | Self::ACK) == Self::SYN
    }
    /// SYN with ACK: a connection request accepted.
    pub fn is_syn_ack(self) -> bool {
        self.0 & (Self::SYN | Self::ACK) == Self::SYN | Self::ACK
    }
}

/// tcpdump's flag letters: `S`, `F`, `R`, `P`, `U`, `E`, `W`, `.` for ACK (`[S.]`, `[P.]`).
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letters = [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::PSH, 'P'),
            (Self::RST, 'R'),
            (Self::URG, 'U'),
            (Self::ECE, 'E'),
            (Self::CWR, 'W'),
            (Self::ACK, '.'),
        ];
        let mut any = false;
        for (bit, c) in letters {
            if self.has(bit) {
                write!(f, "{c}")?;
                any = true;
            }
        }
        if !any {
            write!(f, "none")?;
        }
        Ok(())
    }
}

/// The TCP options snap uses, parsed from the captured part of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2).
    pub mss: Option<u16>,
    /// Window scale shift as sent (kind 3); receivers use at most 14.
    pub wscale: Option<u8>,
    /// SACK permitted (kind 4).
    pub sack_permitted: bool,
    /// SACK blocks (kind 5), `sack_count` of them: (left edge, right edge).
    pub sack: [(u32, u32); 4],
    pub sack_count: u8,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    /// A TCP Fast Open cookie or cookie request (kind 34, or 254 with magic 0xF989).
    pub fast_open: bool,
    /// Multipath TCP (kind 30).
    pub mptcp: bool,
    /// An option with a bad length, or options cut by the end of the capture: the
    /// options after it are unknown.
    pub malformed: bool,
}

impl TcpOptions {
    /// Parses options as Wireshark does: in order, until end-of-list, a bad length or the
    /// end of the captured bytes. Options of a wrong fixed length are ignored.
    #[inline]
    pub fn parse(mut b: &[u8]) -> TcpOptions {
        let mut o = TcpOptions::default();
        while let Some(&kind) = b.first() {
            match kind {
                0 => break,
                1 => {
                    b = &b[1..];
                    continue;
                }
                _ => {}
            }
            let Some(&len) = b.get(1) else {
                o.malformed = true;
                break;
            };
            let len = usize::from(len);
            if len < 2 || len > b.len() {
                o.malformed = true;
                break;
            }
            let v = &b[2..len];
            let be32 = |at: usize| u32::from_be_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]]);
            match (kind, v.len()) {
                (2, 2) => o.mss = Some(u16::from_be_bytes([v[0], v[1]])),
                (3, 1) => o.wscale = Some(v[0]),
                (4, 0) => o.sack_permitted = true,
                (5, n) if n % 8 == 0 => {
                    for i in 0..(n / 8).min(4) {
                        o.sack[i] = (be32(i * 8), be32(i * 8 + 4));
                    }
                    o.sack_count = (n / 8).min(4) as u8;
                }
                (8, 8) => o.timestamp = Some((be32(0), be32(4))),
                (30, _) => o.mptcp = true,
                (34, _) => o.fast_open = true,
                (254, n) if n >= 2 && v[0] == 0xf9 && v[1] == 0x89 => o.fast_open = true,
                _ => {}
            }
            b = &b[len..];
        }
        o
    }
}

/// Why a packet is not analyzed as TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// A link-layer header type snap does not read.
    UnsupportedLink,
    /// Not IPv4 or IPv6 (ARP, LLC, other EtherTypes).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, ...).
    NotTcp,
    /// An IP fragment (Wireshark would reassemble it).
    Fragment,
    /// The captured bytes end inside the link, IP or fixed TCP header.
    Truncated,
    /// A header field is impossible (IP header length, TCP data offset, lengths).
    Malformed,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::UnsupportedLink => "unsupported link type",
            Skip::NotIp => "not IP",
            Skip::NotTcp => "not TCP",
            Skip::Fragment => "IP fragment",
            Skip::Truncated => "truncated headers",
            Skip::Malformed => "malformed headers",
        }
    }
}

/// One TCP segment: what a tcpdump line shows, and the payload.
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<'a> {
    /// Packet number in the file, from 1 (tshark's `frame.number`).
    pub number: u64,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification (0 for IPv6).
    pub ip_id: u16,
    /// The outermost 802.1Q VLAN id, if tagged.
    pub vlan: Option<u16>,
    pub src_port: u16,
    pub dst_port: u16,
    /// Absolute sequence and acknowledgment numbers.
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// The window field as sent (unscaled).
    pub window: u16,
    pub urgent: u16,
    /// TCP header length in bytes (20 to 60).
    pub header_len: u8,
    pub options: TcpOptions,
    /// The options' bytes as captured (possibly cut short), for printing.
    pub raw_options: &'a [u8],
    /// Payload bytes the segment carried on the wire.
    pub payload_len: u32,
    /// The part of the payload the capture kept (empty for a headers-only capture).
    pub payload: &'a [u8],
}

impl TcpPacket<'_> {
    /// Sequence space the segment occupies: payload plus one for SYN and for FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload_len + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

/// Decodes a frame down to TCP.
#[inline]
pub fn decode<'a>(frame: &Frame<'a>) -> Result<TcpPacket<'a>, Skip> {
    let d = frame.data;
    let (ethertype, mut at, vlan) = match frame.link_type {
        1 => ethernet(d)?,
        113 => {
            let t = be16(d, 14).ok_or(Skip::Truncated)?;
            vlans(d, 16, t)?
        }
        276 => {
            let t = be16(d, 0).ok_or(Skip::Truncated)?;
            if d.len() < 20 {
                return Err(Skip::Truncated);
            }
            vlans(d, 20, t)?
        }
        101 | 12 | 14 => (version_type(d, 0)?, 0, None),
        228 => (0x0800, 0, None),
        229 => (0x86dd, 0, None),
        0 | 108 => {
            if d.len() < 4 {
                return Err(Skip::Truncated);
            }
            let family = if frame.link_type == 108 {
                u32::from_be_bytes([d[0], d[1], d[2], d[3]])
            } else {
                // Host byte order of the capturing machine: the value is small.
                let le = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
                if le < 0x100 {
                    le
                } else {
                    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
                }
            };
            match family {
                2 => (0x0800, 4, None),
                // AF_INET6 on Linux, Windows, BSDs, macOS.
                10 | 23 | 24 | 28 | 30 => (0x86dd, 4, None),
                _ => return Err(Skip::NotIp),
            }
        }
        _ => return Err(Skip::UnsupportedLink),
    };
    // Bytes of the packet on the wire from here on.
    let mut wire = (frame.orig_len as usize).max(d.len()).saturating_sub(at);
    let (src, dst, ttl, ip_id);
    match ethertype {
        0x0800 => {
            let h = d.get(at..at + 20).ok_or(Skip::Truncated)?;
            if h[0] >> 4 != 4 {
                return Err(Skip::Malformed);
            }
            let ihl = usize::from(h[0] & 0x0f) * 4;
            if ihl < 20 {
                return Err(Skip::Malformed);
            }
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if total != 0 {
                if total < ihl {
                    return Err(Skip::Malformed);
                }
                wire = wire.min(total);
            }
            let frag = u16::from_be_bytes([h[6], h[7]]);
            if frag & 0x3fff != 0 {
                return Err(Skip::Fragment);
            }
            if h[9] != 6 {
                return Err(Skip::NotTcp);
            }
            if d.len() < at + ihl || wire < ihl {
                return Err(Skip::Truncated);
            }
            src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
            dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
            ttl = h[8];
            ip_id = u16::from_be_bytes([h[4], h[5]]);
            at += ihl;
            wire -= ihl;
        }
        0x86dd => {
            let h = d.get(at..at + 40).ok_or(Skip::Truncated)?;
            if h[0] >> 4 != 6 {
                return Err(Skip::Malformed);
            }
            let payload = usize::from(u16::from_be_bytes([h[4], h[5]]));
            wire = wire.saturating_sub(40);
            if payload != 0 {
                wire = wire.min(payload);
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&h[8..24]);
            src = IpAddr::V6(Ipv6Addr::from(a));
            a.copy_from_slice(&h[24..40]);
            dst = IpAddr::V6(Ipv6Addr::from(a));
            ttl = h[7];
            ip_id = 0;
            at += 40;
            let mut next = h[6];
            // Extension headers, up to a sane number.
            for _ in 0..16 {
                match next {
                    // Hop-by-hop, routing, destination options, mobility, HIP, shim6, experiments.
                    0 | 43 | 60 | 135 | 139 | 140 | 253 | 254 => {
                        let e = d.get(at..at + 2).ok_or(Skip::Truncated)?;
                        let len = (usize::from(e[1]) + 1) * 8;
                        next = e[0];
                        at += len;
                        wire = wire.checked_sub(len).ok_or(Skip::Malformed)?;
                    }
                    // Authentication header: length in 4-octet units, minus 2.
                    51 => {
                        let e = d.get(at..at + 2).ok_or(Skip::Truncated)?;
                        let len = (usize::from(e[1]) + 2) * 4;
                        next = e[0];
                        at += len;
                        wire = wire.checked_sub(len).ok_or(Skip::Malformed)?;
                    }
                    44 => {
                        let e = d.get(at..at + 8).ok_or(Skip::Truncated)?;
                        let off_m = u16::from_be_bytes([e[2], e[3]]);
                        // Only an atomic fragment (RFC 6946) is a whole packet.
                        if off_m & 0xfff9 != 0 {
                            return Err(Skip::Fragment);
                        }
                        next = e[0];
                        at += 8;
                        wire = wire.checked_sub(8).ok_or(Skip::Malformed)?;
                    }
                    _ => break,
                }
            }
            if next != 6 {
                return Err(Skip::NotTcp);
            }
        }
        _ => return Err(Skip::NotIp),
    }
    let t = d.get(at..at + 20).ok_or(Skip::Truncated)?;
    let header_len = usize::from(t[12] >> 4) * 4;
    if header_len < 20 || wire < header_len {
        return Err(Skip::Malformed);
    }
    let captured = &d[at..];
    let raw_options = &captured[20.min(captured.len())..header_len.min(captured.len())];
    let payload_len = wire - header_len;
    let payload = captured.get(header_len..).map_or(&[][..], |p| &p[..p.len().min(payload_len)]);
    Ok(TcpPacket {
        number: frame.number,
        time_ns: frame.time_ns,
        src,
        dst,
        ttl,
        ip_id,
        vlan,
        src_port: u16::from_be_bytes([t[0], t[1]]),
        dst_port: u16::from_be_bytes([t[2], t[3]]),
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
        flags: TcpFlags(u16::from_be_bytes([t[12], t[13]]) & 0x0fff),
        window: u16::from_be_bytes([t[14], t[15]]),
        urgent: u16::from_be_bytes([t[18], t[19]]),
        header_len: header_len as u8,
        options: TcpOptions::parse(raw_options),
        raw_options,
        payload_len: payload_len as u32,
        payload,
    })
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// (EtherType, offset of the network header, outer VLAN id) of an Ethernet frame.
fn ethernet(d: &[u8]) -> Result<(u16, usize, Option<u16>), Skip> {
    let t = be16(d, 12).ok_or(Skip::Truncated)?;
    vlans(d, 14, t)
}

/// Steps over VLAN tags starting at `at` with EtherType `t`.
fn vlans(d: &[u8], mut at: usize, mut t: u16) -> Result<(u16, usize, Option<u16>), Skip> {
    let mut vlan = None;
    for _ in 0..8 {
        if !matches!(t, 0x8100 | 0x88a8 | 0x9100) {
            break;
        }
        let tci = be16(d, at).ok_or(Skip::Truncated)?;
        vlan.get_or_insert(tci & 0x0fff);
        t = be16(d, at + 2).ok_or(Skip::Truncated)?;
        at += 4;
    }
    Ok((t, at, vlan))
}

/// The EtherType a raw IP packet's version nibble implies.
fn version_type(d: &[u8], at: usize) -> Result<u16, Skip> {
    match d.get(at).map(|b| b >> 4) {
        Some(4) => Ok(0x0800),
        Some(6) => Ok(0x86dd),
        Some(_) => Err(Skip::NotIp),
        None => Err(Skip::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP segment: 20-byte IP header, TCP header with `opts`, `payload`.
    pub(crate) fn ipv4_tcp(opts: &[u8], payload: &[u8], flags: u16) -> Vec<u8> {
        let tcp_len = 20 + opts.len();
        let total = 20 + tcp_len + payload.len();
        let mut p =
            vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 7, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        p.extend(1234u16.to_be_bytes());
        p.extend(80u16.to_be_bytes());
        p.extend(1000u32.to_be_bytes());
        p.extend(2000u32.to_be_bytes());
        p.extend((((tcp_len / 4) as u16) << 12 | flags).to_be_bytes());
        p.extend(512u16.to_be_bytes());
        p.extend([0, 0, 0, 0]);
        p.extend(opts);
        p.extend(payload);
        p
    }

    fn frame(link: u32, data: &[u8]) -> Frame<'_> {
        Frame { number: 1, time_ns: 5, link_type: link, orig_len: data.len() as u32, data, offset: 24 }
    }

    #[test]
    fn ethernet_vlan_ipv4_tcp_with_options() {
        let opts = [2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 0, 0];
        let mut f = vec![0; 12];
        f.extend([0x81, 0x00, 0x00, 0x2a, 0x08, 0x00]);
        f.extend(ipv4_tcp(&opts, b"hello", TcpFlags::PSH | TcpFlags::ACK));
        f.extend([0; 6]); // Ethernet padding is not payload.
        let p = decode(&frame(1, &f)).unwrap();
        assert_eq!(p.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((p.src_port, p.dst_port, p.seq, p.ack, p.window), (1234, 80, 1000, 2000, 512));
        assert_eq!((p.vlan, p.ttl, p.ip_id, p.header_len), (Some(42), 64, 7, 44));
        assert_eq!((p.payload_len, p.payload), (5, &b"hello"[..]));
        assert_eq!(p.flags.to_string(), "P.");
        let o = p.options;
        assert_eq!((o.mss, o.wscale, o.sack_permitted, o.timestamp), (Some(1460), Some(7), true, Some((1, 2))));
        assert!(!o.malformed);
    }

    #[test]
    fn payload_length_comes_from_ip_not_from_the_capture() {
        let mut f = vec![0; 16];
        f[14] = 0x08;
        f.extend(ipv4_tcp(&[], &[7; 1000], TcpFlags::ACK));
        let orig = f.len() as u32;
        f.truncate(16 + 40 + 10);
        let fr = Frame { number: 3, time_ns: 0, link_type: 113, orig_len: orig, data: &f, offset: 0 };
        let p = decode(&fr).unwrap();
        assert_eq!((p.payload_len, p.payload.len()), (1000, 10));
    }

    #[test]
    fn ipv6_with_extension_headers_and_atomic_fragment() {
        let mut p = vec![0x60, 0, 0, 0];
        let tcp = ipv4_tcp(&[], b"x", TcpFlags::SYN)[20..].to_vec();
        let ext_len = 8 + 8;
        p.extend(((ext_len + tcp.len()) as u16).to_be_bytes());
        p.extend([0, 64]); // next header: hop-by-hop
        p.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain([0; 11].iter()).chain([1].iter()));
        p.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain([0; 11].iter()).chain([2].iter()));
        p.extend([44, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, next: fragment
        p.extend([6, 0, 0, 0, 0, 0, 0, 9]); // atomic fragment, next: TCP
        p.extend(&tcp);
        let d = decode(&frame(229, &p)).unwrap();
        assert_eq!(d.dst, "2001:db8::2".parse::<IpAddr>().unwrap());
        assert_eq!((d.payload_len, d.flags.to_string().as_str()), (1, "S"));
        // A real fragment is skipped.
        let mut q = p.clone();
        q[40 + 8 + 3] = 1; // more fragments
        assert_eq!(decode(&frame(229, &q)).unwrap_err(), Skip::Fragment);
    }

    #[test]
    fn other_link_types() {
        let ip = ipv4_tcp(&[], &[], TcpFlags::SYN);
        for (link, head) in [
            (101, vec![]),
            (228, vec![]),
            (0, vec![2, 0, 0, 0]),
            (0, vec![0, 0, 0, 2]),
            (108, vec![0, 0, 0, 2]),
            (276, vec![0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]),
        ] {
            let mut f = head.clone();
            f.extend(&ip);
            let p = decode(&frame(link, &f)).unwrap_or_else(|e| panic!("link {link}: {e:?}"));
            assert_eq!(p.dst_port, 80);
        }
        assert_eq!(decode(&frame(147, &ip)).unwrap_err(), Skip::UnsupportedLink);
    }

    #[test]
    fn skips_say_why() {
        let mut udp = ipv4_tcp(&[], &[], 0);
        udp[9] = 17;
        assert_eq!(decode(&frame(101, &udp)).unwrap_err(), Skip::NotTcp);
        let mut frag = ipv4_tcp(&[], &[], 0);
        frag[7] = 1;
        assert_eq!(decode(&frame(101, &frag)).unwrap_err(), Skip::Fragment);
        let ip = ipv4_tcp(&[], &[], 0);
        assert_eq!(decode(&frame(101, &ip[..30])).unwrap_err(), Skip::Truncated);
        let mut bad = ipv4_tcp(&[], &[], 0);
        bad[32] = 0x40; // data offset 4 words
        assert_eq!(decode(&frame(101, &bad)).unwrap_err(), Skip::Malformed);
        let arp = [0u8; 12].iter().chain([0x08, 0x06].iter()).copied().collect::<Vec<_>>();
        assert_eq!(decode(&frame(1, &arp)).unwrap_err(), Skip::NotIp);
        for n in 0..ip.len() {
            let _ = decode(&frame(101, &ip[..n]));
        }
    }

    #[test]
    fn options_stop_at_bad_lengths() {
        let o = TcpOptions::parse(&[1, 3, 3, 2, 2, 0]);
        assert_eq!((o.wscale, o.malformed), (Some(2), true));
        let o = TcpOptions::parse(&[5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 9]);
        assert_eq!((o.sack_count, o.sack[0]), (1, (1, 2)));
        let o = TcpOptions::parse(&[3, 4, 7, 0]);
        assert_eq!(o.wscale, None, "a window scale option of the wrong length is ignored");
    }
}
