//! The two formats a capture translates between: the kernel's TPACKET_V3 ring blocks
//! ([`parse_frame`]: a `tpacket3_hdr` and a `sockaddr_ll` in front of each packet) and
//! the classic pcap file, written by hand: a 24-byte file header, then per
//! packet a 16-byte record header and the bytes kept. Timestamps have nanosecond
//! resolution (magic `0xa1b23c4d`) and the link type is LINUX_SLL ("cooked", as
//! libpcap's `any` device), so packets from every interface share one file.
//!
//! Fields are in the writer's byte order, as libpcap writes them; readers detect it
//! from the magic. The SLL header itself is big-endian by definition.
//!
//! Why not a crate: `pcap-file` wants each record's data as one contiguous slice, but
//! the SLL header is synthesized and the data lies in the ring (one more copy per
//! packet); its 3.0 line needs Rust 1.93, above this workspace's 1.80. The format is
//! 40 bytes of constants.

use std::io::{self, Write};

/// pcap link type of the file: Linux "cooked" capture v1.
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// Magic of a pcap file with nanosecond timestamps.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
pub const FILE_HEADER_LEN: u64 = 24;
pub const RECORD_HEADER_LEN: u64 = 16;
/// Length of the LINUX_SLL pseudo link-layer header in front of every packet.
pub const SLL_HEADER_LEN: u32 = 16;

/// The 24-byte pcap file header.
pub fn file_header(snaplen: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&MAGIC_NANOS.to_ne_bytes());
    h[4..6].copy_from_slice(&2u16.to_ne_bytes());
    h[6..8].copy_from_slice(&4u16.to_ne_bytes());
    // thiszone (8..12) and sigfigs (12..16) stay 0.
    h[16..20].copy_from_slice(&snaplen.to_ne_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_LINUX_SLL.to_ne_bytes());
    h
}

/// The 16-byte record header: timestamp, bytes kept, bytes on the wire.
pub fn record_header(sec: u32, nsec: u32, caplen: u32, len: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&sec.to_ne_bytes());
    h[4..8].copy_from_slice(&nsec.to_ne_bytes());
    h[8..12].copy_from_slice(&caplen.to_ne_bytes());
    h[12..16].copy_from_slice(&len.to_ne_bytes());
    h
}

/// The link-layer facts a cooked socket reports in `sockaddr_ll`, in host order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkInfo {
    /// PACKET_HOST, PACKET_BROADCAST, ..., PACKET_OUTGOING.
    pub pkttype: u8,
    /// ARPHRD_* type of the interface (1 = Ethernet, 772 = loopback).
    pub hatype: u16,
    /// Length of the link-layer source address (6 for Ethernet).
    pub halen: u8,
    pub addr: [u8; 8],
    /// The EtherType (0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP).
    pub protocol: u16,
}

/// The 16-byte LINUX_SLL header libpcap synthesizes for a cooked capture: packet type,
/// ARPHRD type, address length, 8 address bytes, protocol, all big-endian.
pub fn sll_header(l: &LinkInfo) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..2].copy_from_slice(&u16::from(l.pkttype).to_be_bytes());
    h[2..4].copy_from_slice(&l.hatype.to_be_bytes());
    h[4..6].copy_from_slice(&u16::from(l.halen).to_be_bytes());
    h[6..14].copy_from_slice(&l.addr);
    h[14..16].copy_from_slice(&l.protocol.to_be_bytes());
    h
}

/// Writes a pcap stream through a buffer and keeps count of records and bytes.
pub struct Writer<W: Write> {
    out: io::BufWriter<W>,
    /// Bytes written so far, file header included.
    bytes: u64,
    records: u64,
}

impl<W: Write> Writer<W> {
    /// Writes the file header. `snaplen` counts the SLL header.
    pub fn new(out: W, snaplen: u32) -> io::Result<Writer<W>> {
        let mut out = io::BufWriter::with_capacity(256 << 10, out);
        out.write_all(&file_header(snaplen))?;
        Ok(Writer { out, bytes: FILE_HEADER_LEN, records: 0 })
    }

    /// Bytes one record with `data_len` bytes after the SLL header takes in the file.
    pub fn record_size(data_len: usize) -> u64 {
        RECORD_HEADER_LEN + u64::from(SLL_HEADER_LEN) + data_len as u64
    }

    /// Writes one record: SLL header plus `data`; `wire_len` is the packet's length
    /// after the SLL header as it was on the wire.
    pub fn write(&mut self, sec: u32, nsec: u32, link: &LinkInfo, data: &[u8], wire_len: u32) -> io::Result<()> {
        let caplen = SLL_HEADER_LEN + data.len() as u32;
        let len = (SLL_HEADER_LEN + wire_len).max(caplen);
        let mut head = [0u8; 32];
        head[..16].copy_from_slice(&record_header(sec, nsec, caplen, len));
        head[16..].copy_from_slice(&sll_header(link));
        self.out.write_all(&head)?;
        self.out.write_all(data)?;
        self.bytes += Self::record_size(data.len());
        self.records += 1;
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes the buffer into the underlying writer.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Layout of TPACKET_V3 ring blocks, the capture's input.
// Offsets in struct tpacket_block_desc (version, offset_to_priv, then tpacket_hdr_v1).
pub const BLOCK_STATUS: usize = 8;
pub const BLOCK_NUM_PKTS: usize = 12;
pub const BLOCK_FIRST_PKT: usize = 16;
// Offsets in struct tpacket3_hdr, and of the struct sockaddr_ll that follows it.
const PKT_NEXT: usize = 0;
const PKT_SEC: usize = 4;
const PKT_NSEC: usize = 8;
const PKT_SNAPLEN: usize = 12;
const PKT_LEN: usize = 16;
const PKT_MAC: usize = 24;
/// TPACKET_ALIGN(sizeof(struct tpacket3_hdr)).
const PKT_SLL: usize = 48;
const SLL_LEN: usize = 20;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One packet of a ring block, parsed: where its data lies and what goes in its record.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub sec: u32,
    pub nsec: u32,
    pub link: LinkInfo,
    pub data_at: usize,
    pub data_len: usize,
    pub wire_len: u32,
    pub next: usize,
}

/// Parses the packet at `at` in a block, keeping at most `max_data` bytes of it; None
/// if its header points outside the block.
pub fn parse_frame(block: &[u8], at: usize, max_data: usize) -> Option<Frame> {
    if at + PKT_SLL + SLL_LEN > block.len() {
        return None;
    }
    let sll = at + PKT_SLL;
    let mut addr = [0u8; 8];
    addr.copy_from_slice(&block[sll + 12..sll + 20]);
    let data_at = at + usize::from(u16_at(block, at + PKT_MAC));
    let data_len = (u32_at(block, at + PKT_SNAPLEN) as usize).min(max_data);
    if data_at + data_len > block.len() {
        return None;
    }
    Some(Frame {
        sec: u32_at(block, at + PKT_SEC),
        nsec: u32_at(block, at + PKT_NSEC),
        link: LinkInfo {
            pkttype: block[sll + 10],
            hatype: u16_at(block, sll + 8),
            halen: block[sll + 11],
            addr,
            protocol: u16::from_be_bytes([block[sll + 2], block[sll + 3]]),
        },
        data_at,
        data_len,
        wire_len: u32_at(block, at + PKT_LEN),
        next: u32_at(block, at + PKT_NEXT) as usize,
    })
}

/// A record read back from a pcap written here (tests only).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub sec: u32,
    pub nsec: u32,
    pub caplen: u32,
    pub len: u32,
    pub data: Vec<u8>,
}

/// Parses a native-endian nanosecond pcap: (snaplen, linktype, records).
#[cfg(test)]
pub(crate) fn parse(file: &[u8]) -> (u32, u32, Vec<Record>) {
    let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
    assert!(file.len() >= 24, "no pcap header");
    assert_eq!(u32_at(file, 0), MAGIC_NANOS);
    let (snaplen, linktype) = (u32_at(file, 16), u32_at(file, 20));
    let mut records = Vec::new();
    let mut at = 24;
    while at < file.len() {
        let (sec, nsec, caplen, len) =
            (u32_at(file, at), u32_at(file, at + 4), u32_at(file, at + 8), u32_at(file, at + 12));
        let data = file[at + 16..at + 16 + caplen as usize].to_vec();
        records.push(Record { sec, nsec, caplen, len, data });
        at += 16 + caplen as usize;
    }
    (snaplen, linktype, records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn file_header_bytes() {
        let h = file_header(128);
        #[cfg(target_endian = "little")]
        assert_eq!(h, [0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 0, 0, 0, 113, 0, 0, 0]);
        #[cfg(target_endian = "big")]
        assert_eq!(h, [0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 0, 0, 0, 113]);
    }

    #[test]
    fn sll_header_is_big_endian_with_eight_address_bytes() {
        // An IPv4 packet received from 52:54:00:12:34:56 on an Ethernet interface.
        let l = LinkInfo {
            pkttype: 0,
            hatype: 1,
            halen: 6,
            addr: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0, 0],
            protocol: 0x0800,
        };
        assert_eq!(sll_header(&l), [0, 0, 0, 1, 0, 6, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0, 0, 0x08, 0x00]);
        // Sent on loopback: PACKET_OUTGOING, ARPHRD_LOOPBACK, IPv6.
        let l = LinkInfo { pkttype: 4, hatype: 772, halen: 6, addr: [0; 8], protocol: 0x86dd };
        assert_eq!(sll_header(&l), [0, 4, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd]);
    }

    #[test]
    fn records_round_trip_and_are_counted() {
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, 128).unwrap();
        let l = LinkInfo { protocol: 0x0800, ..Default::default() };
        w.write(1_700_000_000, 999_999_999, &l, &[0x45, 0, 0, 28], 28).unwrap();
        w.write(1_700_000_001, 5, &l, &[0x45; 112], 1500).unwrap();
        assert_eq!(w.records(), 2);
        assert_eq!(w.bytes(), 24 + (32 + 4) + (32 + 112));
        assert_eq!(Writer::<Vec<u8>>::record_size(112), 32 + 112);
        w.finish().unwrap();
        assert_eq!(buf.len(), 24 + (32 + 4) + (32 + 112));
        let (snaplen, linktype, r) = parse(&buf);
        assert_eq!((snaplen, linktype, r.len()), (128, LINKTYPE_LINUX_SLL, 2));
        assert_eq!((r[0].sec, r[0].nsec, r[0].caplen, r[0].len), (1_700_000_000, 999_999_999, 20, 44));
        assert_eq!(&r[0].data[14..], &[0x08, 0x00, 0x45, 0, 0, 28]);
        assert_eq!((r[1].caplen, r[1].len), (128, 1516));
    }

    #[test]
    fn offsets_match_the_kernel_structs() {
        assert_eq!(offset_of!(libc::tpacket_block_desc, hdr), 8);
        assert_eq!(BLOCK_STATUS, 8 + offset_of!(libc::tpacket_hdr_v1, block_status));
        assert_eq!(BLOCK_NUM_PKTS, 8 + offset_of!(libc::tpacket_hdr_v1, num_pkts));
        assert_eq!(BLOCK_FIRST_PKT, 8 + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt));
        assert_eq!(PKT_NEXT, offset_of!(libc::tpacket3_hdr, tp_next_offset));
        assert_eq!(PKT_SEC, offset_of!(libc::tpacket3_hdr, tp_sec));
        assert_eq!(PKT_NSEC, offset_of!(libc::tpacket3_hdr, tp_nsec));
        assert_eq!(PKT_SNAPLEN, offset_of!(libc::tpacket3_hdr, tp_snaplen));
        assert_eq!(PKT_LEN, offset_of!(libc::tpacket3_hdr, tp_len));
        assert_eq!(PKT_MAC, offset_of!(libc::tpacket3_hdr, tp_mac));
        let align = libc::TPACKET_ALIGNMENT;
        assert_eq!(PKT_SLL, size_of::<libc::tpacket3_hdr>().div_ceil(align) * align);
        assert_eq!(SLL_LEN, size_of::<libc::sockaddr_ll>());
        assert_eq!(offset_of!(libc::sockaddr_ll, sll_protocol), 2);
        assert_eq!(offset_of!(libc::sockaddr_ll, sll_hatype), 8);
        assert_eq!(offset_of!(libc::sockaddr_ll, sll_pkttype), 10);
        assert_eq!(offset_of!(libc::sockaddr_ll, sll_halen), 11);
        assert_eq!(offset_of!(libc::sockaddr_ll, sll_addr), 12);
    }

    /// A block as the kernel lays out one cooked packet: tpacket3_hdr at 48, its
    /// sockaddr_ll right after, the data at tp_mac.
    fn block_with_packet(data: &[u8], snaplen: u32, len: u32) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        let at = 48;
        let put32 = |b: &mut Vec<u8>, i: usize, v: u32| b[i..i + 4].copy_from_slice(&v.to_ne_bytes());
        put32(&mut b, BLOCK_NUM_PKTS, 1);
        put32(&mut b, BLOCK_FIRST_PKT, at as u32);
        put32(&mut b, at + PKT_SEC, 1_700_000_000);
        put32(&mut b, at + PKT_NSEC, 123_456_789);
        put32(&mut b, at + PKT_SNAPLEN, snaplen);
        put32(&mut b, at + PKT_LEN, len);
        b[at + PKT_MAC..at + PKT_MAC + 2].copy_from_slice(&96u16.to_ne_bytes());
        let sll = at + PKT_SLL;
        b[sll + 2..sll + 4].copy_from_slice(&0x0800u16.to_be_bytes());
        b[sll + 8..sll + 10].copy_from_slice(&1u16.to_ne_bytes());
        b[sll + 10] = libc::PACKET_HOST;
        b[sll + 11] = 6;
        b[sll + 12..sll + 18].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        b[at + 96..at + 96 + data.len()].copy_from_slice(data);
        b
    }

    #[test]
    fn a_cooked_packet_is_parsed_from_its_block() {
        let data = [0x45u8, 0, 0, 60, 1, 2, 3, 4];
        let b = block_with_packet(&data, 8, 60);
        let h = parse_frame(&b, 48, 112).unwrap();
        assert_eq!((h.sec, h.nsec, h.wire_len, h.data_len), (1_700_000_000, 123_456_789, 60, 8));
        assert_eq!(&b[h.data_at..h.data_at + h.data_len], &data);
        let want = LinkInfo { pkttype: 0, hatype: 1, halen: 6, addr: [2, 0, 0, 0, 0, 1, 0, 0], protocol: 0x0800 };
        assert_eq!(h.link, want);
        // Kept bytes never pass the snaplen, and a header pointing outside is refused.
        assert_eq!(parse_frame(&b, 48, 4).unwrap().data_len, 4);
        assert!(parse_frame(&block_with_packet(&data, 5000, 5000), 48, 10_000).is_none());
        assert!(parse_frame(&b, 4090, 112).is_none());
    }
}
