//! The socket table: what `netstat -napo` (or `ss -tuanpxo`) shows, with owning processes.
//!
//! The kernel's own tables (/proc/net/{tcp,tcp6,udp,udp6,raw,raw6,unix}) are stored raw,
//! and the very bytes stored are parsed into [`Socket`] records for `scan/sockets.jsonl`.
//! The scan is made at collection time because the owners (which pid holds which socket
//! inode) come from the open-file scan of the processes collector, which runs first and
//! leaves them in [`crate::ctx::Shared::socket_owners`]. No netlink diag socket is used.
//!
//! Addresses are printed by the kernel as native-endian hex words of network-order
//! values, so the parsing here is only right on the host (or a host of the same
//! endianness) that wrote the tables.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use snap_bundle::manifest::EntryStatus;
use snap_bundle::names;
use snap_bundle::scan::{tcp_state, Socket};

use crate::ctx::Ctx;
use crate::{Collector, Halt};

pub const NAME: &str = "sockets";

pub struct Sockets;

/// The socket tables, in the order they are copied, with the protocol each one holds.
pub const TABLES: &[(&str, &str)] = &[
    ("/proc/net/tcp", "tcp"),
    ("/proc/net/tcp6", "tcp6"),
    ("/proc/net/udp", "udp"),
    ("/proc/net/udp6", "udp6"),
    ("/proc/net/raw", "raw"),
    ("/proc/net/raw6", "raw6"),
    ("/proc/net/unix", "unix"),
];

impl Collector for Sockets {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, ctx: &mut Ctx) -> Result<(), Halt> {
        let started = Instant::now();
        let items = TABLES.iter().map(|(host, _)| (host.to_string(), names::raw(host))).collect();
        let tables = ctx.copy_batch(items, true);
        let clk_tck = crate::sys::sysconf(libc::_SC_CLK_TCK).unwrap_or(100);
        // Records are written as they are parsed: a busy server has tens of thousands.
        let mut lines = ctx.jsonl();
        for (&(_, proto), (status, data)) in TABLES.iter().zip(&tables) {
            if !matches!(status, EntryStatus::Ok | EntryStatus::Truncated) {
                continue;
            }
            let text = snap_bundle::text::lossy(whole_lines(data));
            let parsed: Box<dyn Iterator<Item = Socket>> = match proto {
                "unix" => Box::new(parse_unix(&text)),
                _ => Box::new(parse_inet(&text, proto, clk_tck)),
            };
            for mut s in parsed {
                // Time-wait and request sockets have inode 0 and no owner.
                if let Some(owners) = ctx.shared.socket_owners.get(&s.inode).filter(|_| s.inode != 0) {
                    s.owners = owners.clone();
                    s.owners.sort();
                }
                lines.push(&s);
            }
        }
        ctx.store_jsonl(names::SOCKETS, lines, started.elapsed());
        Ok(())
    }
}

/// The data up to its last newline: a table cut by a size cap ends in half a line,
/// which could parse into a wrong record (an inode missing its last digits).
pub fn whole_lines(data: &[u8]) -> &[u8] {
    match data.iter().rposition(|&b| b == b'\n') {
        Some(i) => &data[..=i],
        None => &[],
    }
}

/// netstat -o's name of the `tr` field.
fn timer_name(tr: u8) -> String {
    match tr {
        0 => "off".into(),
        1 => "on".into(),
        2 => "keepalive".into(),
        3 => "timewait".into(),
        4 => "probe".into(),
        n => format!("unkn-{n}"),
    }
}

/// An address and port as the kernel prints them: `0100007F:0050` (IPv4) or four
/// 32-bit words then the port (IPv6), each word the native-endian view of network order.
pub fn parse_addr(field: &str) -> Option<(String, u16)> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| addr.get(i * 8..i * 8 + 8).and_then(|w| u32::from_str_radix(w, 16).ok());
    let addr = match addr.len() {
        8 => Ipv4Addr::from(word(0)?.to_ne_bytes()).to_string(),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(i)?.to_ne_bytes());
            }
            Ipv6Addr::from(bytes).to_string()
        }
        _ => return None,
    };
    Some((addr, port))
}

/// Parses a /proc/net/{tcp,tcp6,udp,udp6,raw,raw6} table into records of `proto`.
/// `clk_tck` is USER_HZ, the unit of `tm->when`. Headers and malformed lines are skipped.
pub fn parse_inet<'a>(text: &'a str, proto: &'a str, clk_tck: u64) -> impl Iterator<Item = Socket> + 'a {
    text.lines().filter_map(move |l| parse_inet_line(l, proto, clk_tck))
}

fn parse_inet_line(line: &str, proto: &str, clk_tck: u64) -> Option<Socket> {
    let hex64 = |s: &str| u64::from_str_radix(s, 16).ok();
    let mut f = line.split_whitespace();
    let slot = f.next()?.strip_suffix(':')?;
    slot.parse::<u64>().ok()?;
    let (local_addr, local_port) = parse_addr(f.next()?)?;
    let (remote_addr, remote_port) = parse_addr(f.next()?)?;
    let st = u8::from_str_radix(f.next()?, 16).ok()?;
    let (tx, rx) = f.next()?.split_once(':')?;
    let (tr, when) = f.next()?.split_once(':')?;
    let retransmits = u32::from_str_radix(f.next()?, 16).ok()?;
    let uid = f.next()?.parse().ok()?;
    let _probes_or_timeout = f.next()?;
    let inode = f.next()?.parse().ok()?;
    // Older kernels printed an expired timer as a negative number (huge in hex).
    let when = hex64(when)?;
    let when = if when > i64::MAX as u64 { 0 } else { when };
    Some(Socket {
        proto: proto.to_string(),
        local_addr,
        local_port,
        remote_addr,
        remote_port,
        state: tcp_state(st).to_string(),
        send_q: hex64(tx)?,
        recv_q: hex64(rx)?,
        timer: timer_name(u8::from_str_radix(tr, 16).ok()?),
        timer_secs: when as f64 / clk_tck.max(1) as f64,
        retransmits,
        uid: Some(uid),
        inode,
        ..Default::default()
    })
}

/// Flag of a listening unix socket (`__SO_ACCEPTCON`).
const SO_ACCEPTCON: u32 = 0x10000;

/// Parses /proc/net/unix into records (proto `unix`). The kernel gives no uid and no
/// queue sizes here; those stay 0. Headers and malformed lines are skipped.
pub fn parse_unix(text: &str) -> impl Iterator<Item = Socket> + '_ {
    text.lines().filter_map(parse_unix_line)
}

/// Takes the next space-separated field off the front of `s`.
/// netstat's name of a unix socket type (the Type column of /proc/net/unix).
pub fn unix_type_name(kind: u64) -> &'static str {
    match kind {
        1 => "STREAM",
        2 => "DGRAM",
        3 => "RAW",
        4 => "RDM",
        5 => "SEQPACKET",
        _ => "UNKNOWN",
    }
}

fn next_field<'a>(s: &mut &'a str) -> Option<&'a str> {
    let t = s.trim_start_matches(' ');
    let end = t.find(' ').unwrap_or(t.len());
    if end == 0 {
        return None;
    }
    let (field, rest) = t.split_at(end);
    *s = rest;
    Some(field)
}

fn parse_unix_line(line: &str) -> Option<Socket> {
    // "%pK: %08X %08X %08X %04X %02X %5lu" then, if bound, ' ' and the path as is.
    let (num, mut rest) = line.split_once(": ")?;
    u64::from_str_radix(num, 16).ok()?;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let _refcount = hex(next_field(&mut rest)?)?;
    let _protocol = hex(next_field(&mut rest)?)?;
    let flags = hex(next_field(&mut rest)?)?;
    let kind = hex(next_field(&mut rest)?)?;
    let st = hex(next_field(&mut rest)?)?;
    let inode = next_field(&mut rest)?.parse().ok()?;
    // The path follows after exactly one space and may itself hold spaces.
    let path = rest.strip_prefix(' ').unwrap_or(rest);
    let socket_type = unix_type_name(u64::from(kind));
    let state = match st {
        _ if flags & SO_ACCEPTCON != 0 => "LISTENING",
        0 => "FREE",
        1 => "UNCONNECTED",
        2 => "CONNECTING",
        3 => "CONNECTED",
        4 => "DISCONNECTING",
        _ => "UNKNOWN",
    };
    Some(Socket {
        proto: "unix".into(),
        state: state.into(),
        inode,
        socket_type: socket_type.into(),
        path: path.to_string(),
        ..Default::default()
    })
}

// The captures below come from little-endian x86-64 hosts.
#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    // This VM (Debian 12, kernel 6.18), `cat /proc/net/tcp` while a test script held a
    // listener, a keepalive connection, one in CLOSE_WAIT and a TIME_WAIT/FIN_WAIT2.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 0100007F:B293 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20203 1 00000000a1970c89 100 0 0 10 0                     
   2: 0100007F:91E2 0100007F:B293 01 00000000:00000000 02:000AFC66 00000000     0        0 20204 2 0000000042bfae64 20 0 0 11 -1                     
   3: 0100007F:91E6 0100007F:B293 05 00000000:00000000 03:00001757 00000000     0        0 0 3 00000000b26e7ce8                                      
   4: 0100007F:91F0 0100007F:B293 06 00000000:00000000 03:0000175B 00000000     0        0 0 3 000000000566f073                                      
   5: 0100007F:B293 0100007F:91E2 01 00000000:00000064 00:00000000 00000000     0        0 20205 1 00000000729060ef 20 4 30 10 -1                     
   7: 0100007F:B293 0100007F:91E6 08 00000000:00000001 00:00000000 00000000     0        0 20207 1 00000000e803b4d4 20 4 0 10 -1                     
";

    #[test]
    fn tcp_table_from_this_vm() {
        let s = parse_inet(TCP, "tcp", 100).collect::<Vec<_>>();
        assert_eq!(s.len(), 6);
        let listen = &s[0];
        assert_eq!((listen.local_addr.as_str(), listen.local_port), ("127.0.0.1", 45715));
        assert_eq!((listen.remote_addr.as_str(), listen.remote_port), ("0.0.0.0", 0));
        assert_eq!((listen.state.as_str(), listen.timer.as_str(), listen.inode), ("LISTEN", "off", 20203));
        let keepalive = &s[1];
        assert_eq!((keepalive.state.as_str(), keepalive.timer.as_str()), ("ESTABLISHED", "keepalive"));
        assert!(keepalive.timer_secs == 7199.74, "{}", keepalive.timer_secs);
        assert_eq!((s[2].state.as_str(), s[2].timer.as_str(), s[2].inode), ("FIN_WAIT2", "timewait", 0));
        assert_eq!((s[3].state.as_str(), s[3].timer_secs), ("TIME_WAIT", 59.79));
        assert_eq!((s[4].recv_q, s[4].send_q, s[4].remote_port), (100, 0, 37346));
        assert_eq!((s[5].state.as_str(), s[5].recv_q), ("CLOSE_WAIT", 1));
    }

    // Same VM, `cat /proc/net/tcp6`: a listener on ::1, one on :: that also takes IPv4,
    // and an IPv4-mapped connection to it.
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:B343 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20211 1 00000000c83fd640 100 0 0 10 0
   1: 00000000000000000000000000000000:E68B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20214 1 000000000321c173 100 0 0 10 0
   3: 0000000000000000FFFF00000100007F:E68B 0000000000000000FFFF00000100007F:C06C 01 00000000:00000000 00:00000000 00000000     0        0 20216 1 000000002e70f808 20 0 0 10 -1
";

    #[test]
    fn tcp6_table_from_this_vm() {
        let s = parse_inet(TCP6, "tcp6", 100).collect::<Vec<_>>();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].proto.as_str(), s[0].local_addr.as_str(), s[0].local_port), ("tcp6", "::1", 45891));
        assert_eq!((s[1].local_addr.as_str(), s[1].remote_addr.as_str()), ("::", "::"));
        assert_eq!((s[2].local_addr.as_str(), s[2].remote_port), ("::ffff:127.0.0.1", 49260));
        assert_eq!(s[2].state, "ESTABLISHED");
    }

    // hotsos (Ubuntu 20.04, kernel 5.4), ../shared/corpus/proc/hotsos-vault/net/tcp6: an
    // IPv4-mapped connection with its keepalive timer; prometheus/procfs fixtures,
    // ../shared/corpus/proc/prometheus-procfs-fixtures/proc/net/tcp6: a link-local
    // address and a uid.
    const TCP6_CORPUS: &str = "   3: 0000000000000000FFFF00007900000A:2009 0000000000000000FFFF00007000000A:CBC2 01 00000000:00000000 02:00000136 00000000     0        0 363654 2 0000000000000000 20 4 18 5 4
 6073: 000080FE00000000FFADE15609667CFE:C781 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 11337031 2 00000000b9256fdd 0
";

    #[test]
    fn tcp6_from_the_corpus() {
        let s = parse_inet(TCP6_CORPUS, "tcp6", 100).collect::<Vec<_>>();
        assert_eq!((s[0].local_addr.as_str(), s[0].local_port), ("::ffff:10.0.0.121", 8201));
        assert_eq!((s[0].remote_addr.as_str(), s[0].remote_port), ("::ffff:10.0.0.112", 52162));
        assert_eq!((s[0].state.as_str(), s[0].timer.as_str(), s[0].timer_secs), ("ESTABLISHED", "keepalive", 3.1));
        assert_eq!((s[1].local_addr.as_str(), s[1].local_port), ("fe80::56e1:adff:fe7c:6609", 51073));
        assert_eq!((s[1].state.as_str(), s[1].uid, s[1].inode), ("CLOSE", Some(1000), 11337031));
    }

    // This VM, in a network namespace whose route to 10.9.9.0/24 goes nowhere: a
    // connect(2) in SYN_SENT after three retransmissions, the SYN still queued.
    const SYN_SENT: &str = "   0: 00000000:87CA 0209090A:0050 02 00000001:00000000 01:00000038 00000003     0        0 116347 2 000000000978e82a 100 0 0 1 -1                    \n";

    #[test]
    fn syn_sent_with_retransmissions_from_this_vm() {
        let s = &parse_inet(SYN_SENT, "tcp", 100).collect::<Vec<_>>()[0];
        assert_eq!((s.remote_addr.as_str(), s.remote_port, s.state.as_str()), ("10.9.9.2", 80, "SYN_SENT"));
        assert_eq!((s.timer.as_str(), s.timer_secs, s.retransmits, s.send_q), ("on", 0.56, 3, 1));
    }

    // This VM, `cat /proc/net/udp` and `cat /proc/net/raw`: a bound socket with 832
    // bytes waiting, a connected one, and an ICMP raw socket.
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            
 9742: 0100007F:C7C7 00000000:0000 07 00000000:00000340 00:00000000 00000000     0        0 20217 2 0000000069f94a03 0         
12022: 0100007F:D0AF 0100007F:C7C7 01 00000000:00000000 00:00000000 00000000     0        0 20218 2 0000000063490cdf 0         
";
    const RAW: &str = " 246: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 20220 2 00000000665f1e72 0\n";

    #[test]
    fn udp_and_raw_from_this_vm() {
        let u = parse_inet(UDP, "udp", 100).collect::<Vec<_>>();
        assert_eq!(u.len(), 2);
        assert_eq!((u[0].local_port, u[0].state.as_str(), u[0].recv_q), (51143, "CLOSE", 832));
        assert_eq!((u[1].state.as_str(), u[1].remote_port, u[1].inode), ("ESTABLISHED", 51143, 20218));
        let r = parse_inet(RAW, "raw", 100).collect::<Vec<_>>();
        assert_eq!((r[0].proto.as_str(), r[0].local_port, r[0].inode), ("raw", 1, 20220));
    }

    // This VM, `cat /proc/net/unix`: a listener bound to a path with a space, its
    // accepted connection, an abstract datagram name with an embedded NUL (printed '@'),
    // an abstract seqpacket listener and an unbound connected socket (inode padded).
    const UNIX: &str = "Num       RefCount Protocol Flags    Type St Inode Path
0000000009289259: 00000003 00000000 00000000 0001 03 20223
00000000a560a4ff: 00000003 00000000 00000000 0001 03 20224 /tmp/snap sock
00000000c9bfdf67: 00000002 00000000 00010000 0001 01 20222 /tmp/snap sock
0000000020acb0e9: 00000002 00000000 00000000 0002 01 20225 @snap@abs
000000007a8ba78f: 00000002 00000000 00010000 0005 01 20226 @snapseq
000000009e8da298: 00000003 00000000 00000000 0001 03  1496
";

    #[test]
    fn unix_table_from_this_vm() {
        let s = parse_unix(UNIX).collect::<Vec<_>>();
        let view: Vec<_> =
            s.iter().map(|s| (s.socket_type.as_str(), s.state.as_str(), s.inode, s.path.as_str())).collect();
        assert_eq!(
            view,
            [
                ("STREAM", "CONNECTED", 20223, ""),
                ("STREAM", "CONNECTED", 20224, "/tmp/snap sock"),
                ("STREAM", "LISTENING", 20222, "/tmp/snap sock"),
                ("DGRAM", "UNCONNECTED", 20225, "@snap@abs"),
                ("SEQPACKET", "LISTENING", 20226, "@snapseq"),
                ("STREAM", "CONNECTED", 1496, ""),
            ]
        );
        assert!(s.iter().all(|s| s.proto == "unix" && s.local_addr.is_empty()));
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let bad = "garbage\n\n   0: 0100007F:B293\n   1: 0100007F:ZZZZ 00000000:0000 0A 0:0 00:0 0 0 0 1\n   \
                   2: 01007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 5\n   \
                   3: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 x\n\u{0}\u{7f}:\n";
        assert!(parse_inet(bad, "tcp", 100).collect::<Vec<_>>().is_empty());
        assert!(parse_inet(&TCP6[..150], "tcp6", 100).collect::<Vec<_>>().is_empty());
        let bad_unix = "0000: 1 2\nzz: 00000002 00000000 00010000 0001 01 1\n0000:  00000002 0 0 1 1 \nNum: x\n";
        assert!(parse_unix(bad_unix).collect::<Vec<_>>().is_empty());
        // Broken on purpose by prometheus/procfs (../shared/corpus/proc/prometheus-procfs-
        // fixtures/proc/net/udp_broken and unix_without_inode).
        assert!(parse_inet("  sl  local_address rem_address   st\n   1: 00000000:0016 00000000:0000 0A\n", "udp", 100)
            .collect::<Vec<_>>()
            .is_empty());
        let no_inode = "0000000000000000: 00000002 00000000 00010000 0001 01 /var/run/postgresql/.s.PGSQL.5432
0000000000000000: 00000003 00000000 00000000 0001 03
";
        assert!(parse_unix(no_inode).collect::<Vec<_>>().is_empty());
        // Every prefix of the real tables parses without panicking.
        for t in [TCP, TCP6, UDP, UNIX] {
            for i in (0..t.len()).filter(|&i| t.is_char_boundary(i)) {
                parse_inet(&t[..i], "tcp", 0).for_each(drop);
                parse_unix(&t[..i]).for_each(drop);
            }
        }
    }

    #[test]
    fn a_cut_table_loses_its_partial_last_line() {
        assert_eq!(whole_lines(b"a\nb\nc"), b"a\nb\n");
        assert_eq!(whole_lines(b"a\n"), b"a\n");
        assert_eq!(whole_lines(b"abc"), b"");
        // Cut inside the last inode: the record is dropped rather than given inode 20.
        let cut = &TCP.as_bytes()[..TCP.find("20207").unwrap() + 2];
        let s = parse_inet(std::str::from_utf8(whole_lines(cut)).unwrap(), "tcp", 100).collect::<Vec<_>>();
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn an_expired_timer_from_an_old_kernel_reads_as_zero() {
        // Constructed: the SYN_SENT line above as such a kernel printed it once expired.
        let line = SYN_SENT.replace("01:00000038", "01:FFFFFFFFFFFFFFF6");
        assert_eq!(parse_inet(&line, "tcp", 100).collect::<Vec<_>>()[0].timer_secs, 0.0);
    }
}
