//! The socket views: `netstat` (net-tools 2.10: `-napo` and its subsets) and `ss`
//! (iproute2 6.1: `-tanp`, `-uanp`, `-tlnp`...), printing what the real tools printed on
//! the box at capture time from the bundle's raw copies of /proc/net/{tcp,tcp6,udp,udp6,
//! raw,raw6,unix} (the same tables netstat reads) and the owners of each socket inode in
//! `scan/sockets.jsonl` (what netstat and ss find walking `/proc/<pid>/fd`).
//!
//! netstat names the owner `pid/argv[0]` (the basename when `argv[0]` is a path, from the
//! bundle's `proc/<pid>/cmdline`, cut to 19 characters), the first owner by pid and fd;
//! ss lists every owner as `("comm",pid=N,fd=N)`, last found first, as its hash list
//! does. Names and ports are never resolved (as `-n`). Where ss differs, because
//! /proc/net/tcp is not netlink: a listener's Send-Q (its backlog limit, which only
//! netlink reports) prints `-`; whether a socket bound to `::` is IPv6-only (ss prints
//! `*` for a dual-stack one, `[::]` otherwise) is taken from the box's
//! net.ipv6.bindv6only, so a socket that set IPV6_V6ONLY itself shows as dual-stack.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use snap_analyzers::Input;
use snap_bundle::names;
use snap_bundle::scan::SocketOwner;

use super::{bad, skip, text};
use super::{letter_options, View, ViewError};

pub const NETSTAT: View = View {
    name: "netstat",
    replays: "netstat -napo: TCP, UDP, raw and unix sockets with owners and timers; -t/-u/-w/-x, -l, -a, -p, -o; -s (statistics)",
    needs: &["proc/net/tcp", "proc/net/udp", "proc/net/unix", names::SOCKETS],
    render: netstat,
};

pub const SS: View = View {
    name: "ss",
    replays: "ss -tanp: TCP (or -u UDP) sockets with their processes; -a, -l, -n, -p",
    needs: &["proc/net/tcp", names::SOCKETS],
    render: ss,
};

/// One line of an inet table, as the kernel printed it.
#[derive(Debug, Clone)]
pub struct InetSocket {
    /// `tcp`, `tcp6`, `udp`, `udp6`, `raw`, `raw6`.
    pub proto: &'static str,
    local: Addr,
    lport: u16,
    remote: Addr,
    rport: u16,
    state: u8,
    txq: u64,
    rxq: u64,
    timer: u8,
    when: u64,
    retr: u64,
    timeout: i64,
    pub inode: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Addr {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Addr {
    fn is_any(&self) -> bool {
        match self {
            Addr::V4(a) => a.is_unspecified(),
            Addr::V6(a) => a.is_unspecified(),
        }
    }

    fn mapped(a: &Ipv6Addr) -> Option<Ipv4Addr> {
        let s = a.segments();
        (s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff)
            .then(|| Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
    }
}

/// One line of /proc/net/unix.
#[derive(Debug, Clone)]
pub struct UnixSocket {
    /// The `Num` field: the kernel address as %pK printed it.
    pub address: String,
    refcount: u64,
    flags: u64,
    kind: u64,
    state: u64,
    pub inode: u64,
    path: String,
}

const SO_ACCEPTCON: u64 = 1 << 16;

impl UnixSocket {
    fn type_name(&self) -> &'static str {
        snap_collectors::collectors::sockets::unix_type_name(self.kind)
    }

    /// lsof's NAME of a unix socket: path, type and state.
    pub fn lsof_name(&self) -> String {
        let state = match self.state {
            _ if self.flags & SO_ACCEPTCON != 0 => "LISTEN",
            1 => "UNCONNECTED",
            2 => "CONNECTING",
            3 => "CONNECTED",
            4 => "DISCONNECTING",
            _ => "UNKNOWN",
        };
        let path = if self.path.is_empty() { String::new() } else { format!("{} ", self.path) };
        format!("{path}type={} ({state})", self.type_name())
    }
}

const TCP_STATES: [&str; 12] = [
    "",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
];

impl InetSocket {
    pub fn lsof_proto(&self) -> &'static str {
        match self.proto {
            "tcp" | "tcp6" => "TCP",
            "udp" | "udp6" => "UDP",
            _ => "RAW",
        }
    }

    /// lsof -nP's NAME: `local[->remote] (STATE)`.
    pub fn lsof_name(&self) -> String {
        let end = |a: &Addr, p: u16| {
            let host = match a {
                _ if a.is_any() => "*".to_string(),
                Addr::V4(v) => v.to_string(),
                Addr::V6(v) => format!("[{v}]"),
            };
            let port = if p == 0 { "*".to_string() } else { p.to_string() };
            format!("{host}:{port}")
        };
        let mut s = end(&self.local, self.lport);
        if !self.remote.is_any() || self.rport != 0 {
            s += "->";
            s += &end(&self.remote, self.rport);
        }
        match self.lsof_proto() {
            "TCP" => format!("{s} ({})", TCP_STATES.get(self.state as usize).copied().unwrap_or("UNKNOWN")),
            _ => format!("{s} "),
        }
    }
}

fn words_be(input: &Input) -> bool {
    input.manifest().is_some_and(|m| m.host.endianness == "big")
}

fn parse_addr(field: &str, big: bool) -> Option<(Addr, u16)> {
    let (a, p) = field.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(if big { w.to_be_bytes() } else { w.to_le_bytes() })
    };
    let addr = match a.len() {
        8 => Addr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Addr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some((addr, port))
}

fn parse_inet_line(line: &str, proto: &'static str, big: bool) -> Option<InetSocket> {
    let mut f = line.split_whitespace();
    f.next()?.strip_suffix(':')?.parse::<u64>().ok()?;
    let (local, lport) = parse_addr(f.next()?, big)?;
    let (remote, rport) = parse_addr(f.next()?, big)?;
    let state = u8::from_str_radix(f.next()?, 16).ok()?;
    let (tx, rx) = f.next()?.split_once(':')?;
    let (tr, when) = f.next()?.split_once(':')?;
    let retr = u64::from_str_radix(f.next()?, 16).ok()?;
    let _uid: u64 = f.next()?.parse().ok()?;
    let timeout = f.next()?.parse().ok()?;
    let inode = f.next()?.parse().ok()?;
    Some(InetSocket {
        proto,
        local,
        lport,
        remote,
        rport,
        state,
        txq: u64::from_str_radix(tx, 16).ok()?,
        rxq: u64::from_str_radix(rx, 16).ok()?,
        timer: u8::from_str_radix(tr, 16).ok()?,
        when: u64::from_str_radix(when, 16).ok().filter(|w| *w <= i64::MAX as u64).unwrap_or(0),
        retr,
        timeout,
        inode,
    })
}

/// The sockets of a table, in the kernel's order; an absent table is Ok(None).
fn inet_table(input: &Input, proto: &'static str) -> Result<Option<Vec<InetSocket>>, ViewError> {
    let entry = format!("proc/net/{proto}");
    if !input.has(&entry) {
        return Ok(None);
    }
    let big = words_be(input);
    let t = text(input, &entry)?;
    let mut out = Vec::new();
    for (i, line) in t.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        // A table cut by the size cap ends in half a line: that one is dropped.
        match parse_inet_line(line, proto, big) {
            Some(s) => out.push(s),
            None if i + 1 == t.lines().count() && !t.ends_with('\n') => {}
            None => return Err(bad(&entry, format!("line {} is not a socket: {line:?}", i + 1))),
        }
    }
    Ok(Some(out))
}

fn required(input: &Input, proto: &'static str) -> Result<Vec<InetSocket>, ViewError> {
    inet_table(input, proto)?.ok_or_else(|| ViewError::Input(format!("the bundle has no proc/net/{proto}")))
}

fn unix_table(input: &Input) -> Result<Vec<UnixSocket>, ViewError> {
    let entry = "proc/net/unix";
    let t = text(input, entry)?;
    let mut out = Vec::new();
    for (i, line) in t.lines().enumerate().skip(1) {
        let parsed = (|| {
            let (num, rest) = line.split_once(": ")?;
            let mut f = rest.split_whitespace();
            let hex = |s: Option<&str>| u64::from_str_radix(s?, 16).ok();
            let refcount = hex(f.next())?;
            let _proto = hex(f.next())?;
            let flags = hex(f.next())?;
            let kind = hex(f.next())?;
            let state = hex(f.next())?;
            let inode = f.next()?.parse().ok()?;
            Some(UnixSocket {
                address: num.trim().to_string(),
                refcount,
                flags,
                kind,
                state,
                inode,
                path: f.next().unwrap_or("").to_string(),
            })
        })();
        match parsed {
            Some(u) => out.push(u),
            None if line.trim().is_empty() || (i + 1 == t.lines().count() && !t.ends_with('\n')) => {}
            None => return Err(bad(entry, format!("line {} is not a socket: {line:?}", i + 1))),
        }
    }
    Ok(out)
}

/// Every inet socket of the bundle by inode (for lsof); tables absent or unreadable
/// give none.
pub fn inet_by_inode(input: &Input) -> BTreeMap<u64, InetSocket> {
    let mut m = BTreeMap::new();
    for proto in ["tcp", "tcp6", "udp", "udp6", "raw", "raw6"] {
        if let Ok(Some(t)) = inet_table(input, proto) {
            for s in t.into_iter().filter(|s| s.inode != 0) {
                m.entry(s.inode).or_insert(s);
            }
        }
    }
    m
}

pub fn unix_by_inode(input: &Input) -> BTreeMap<u64, UnixSocket> {
    unix_table(input).map(|t| t.into_iter().map(|u| (u.inode, u)).collect()).unwrap_or_default()
}

/// Owners by socket inode, from the scan.
fn owners(input: &Input) -> Result<BTreeMap<u64, Vec<SocketOwner>>, ViewError> {
    let mut m: BTreeMap<u64, Vec<SocketOwner>> = BTreeMap::new();
    for s in input.sockets().map_err(skip)? {
        if s.inode != 0 && !s.owners.is_empty() {
            let e = m.entry(s.inode).or_default();
            e.extend(s.owners.iter().cloned());
            e.sort();
            e.dedup();
        }
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------
// netstat

/// net-tools' addr_do_one without -W: `addr:port` cut to 23 characters.
fn netstat_endpoint(a: &Addr, port: u16) -> String {
    let addr = match a {
        Addr::V4(v) => v.to_string(),
        Addr::V6(v) => match Addr::mapped(v) {
            Some(m) => m.to_string(),
            None => v.to_string(),
        },
    };
    let port = if port == 0 { "*".to_string() } else { port.to_string() };
    if addr.len() + port.len() > 22 {
        let port_len = port.len().min(18);
        let addr_len = 22 - port_len;
        format!("{}:{}", &addr[..addr_len], &port[..port_len])
    } else {
        format!("{addr}:{port}")
    }
}

struct NetstatOptions {
    all: bool,
    listening: bool,
    programs: bool,
    timers: bool,
}

impl NetstatOptions {
    /// Whether a socket with this remote end is shown (listening ones have none).
    fn shows(&self, remote_set: bool) -> bool {
        self.all || (self.listening != remote_set)
    }
}

/// `pid/argv[0]` as netstat's prg_cache_load makes it.
fn netstat_program(input: &Input, owner: Option<&SocketOwner>) -> String {
    let Some(o) = owner else { return "-".into() };
    let Ok(raw) = input.raw(&format!("proc/{}/cmdline", o.pid)) else {
        // No command line (a sos report): the name the scan holds, from netstat or ss.
        return format!("{}/{}", o.pid, o.program).chars().take(19).collect();
    };
    let raw = &raw[..raw.len().min(511)];
    let argv0 = raw.split(|&b| b == 0).next().unwrap_or_default();
    let argv0 = snap_bundle::text::lossy(argv0);
    let name = if argv0.starts_with('/') { argv0.rsplit('/').next().unwrap_or("") } else { &argv0 };
    let s = format!("{}/{}", o.pid, name);
    s.chars().take(19).collect()
}

fn timer_text(s: &InetSocket, hz: f64, tcp: bool) -> String {
    let t = s.when as f64 / hz;
    let retr = if tcp { s.retr } else { 0 };
    match (s.timer, tcp) {
        (0, _) => format!("off (0.00/{retr}/{})", s.timeout),
        (1, true) => format!("on ({t:.2}/{retr}/{})", s.timeout),
        (2, true) => format!("keepalive ({t:.2}/{retr}/{})", s.timeout),
        (3, true) => format!("timewait ({t:.2}/{retr}/{})", s.timeout),
        (4, true) => format!("probe ({t:.2}/{retr}/{})", s.timeout),
        (n @ (1 | 2), false) => format!("on{n} ({:.2}/{retr}/{})", s.when as f64 / 100.0, s.timeout),
        (n, true) => format!("unkn-{n} ({t:.2}/{retr}/{})", s.timeout),
        (n, false) => format!("unkn-{n} ({:.2}/{retr}/{})", s.when as f64 / 100.0, s.timeout),
    }
}

fn netstat(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let mut o = NetstatOptions { all: false, listening: false, programs: false, timers: false };
    let (mut tcp, mut udp, mut raw, mut unix) = (false, false, false, false);
    let mut statistics = false;
    for (flag, _) in letter_options("netstat", args, "naplotuwxes", "")? {
        match flag {
            's' => statistics = true,
            'a' => o.all = true,
            'l' => o.listening = true,
            'p' => o.programs = true,
            'o' => o.timers = true,
            't' => tcp = true,
            'u' => udp = true,
            'w' => raw = true,
            'x' => unix = true,
            _ => {} // -n: never resolved anyway
        }
    }
    if statistics {
        if unix {
            return Err(ViewError::Usage("netstat: -s replays the IP, ICMP, TCP and UDP counters (-t, -u, -w)".into()));
        }
        if !(tcp || udp || raw) {
            (tcp, udp, raw) = (true, true, true);
        }
        return statistics::render(&Input::new(bundle), Protocols { raw, tcp, udp }, out);
    }
    if !(tcp || udp || raw || unix) {
        (tcp, udp, raw, unix) = (true, true, true, true);
    }
    let input = Input::new(bundle);
    let hz = input.system_info().clock_ticks as f64;
    // Everything read before anything is printed, so a bad entry leaves no half output.
    let mut inet: Vec<(Vec<InetSocket>, bool)> = Vec::new();
    if tcp {
        inet.push((required(&input, "tcp")?, true));
        inet.push((inet_table(&input, "tcp6")?.unwrap_or_default(), true));
    }
    if udp {
        inet.push((required(&input, "udp")?, false));
        inet.push((inet_table(&input, "udp6")?.unwrap_or_default(), false));
    }
    if raw {
        inet.push((inet_table(&input, "raw")?.unwrap_or_default(), false));
        inet.push((inet_table(&input, "raw6")?.unwrap_or_default(), false));
    }
    let unix_sockets = if unix { Some(unix_table(&input)?) } else { None };
    let owners = if o.programs { owners(&input)? } else { BTreeMap::new() };
    let scope = if o.all {
        "(servers and established)"
    } else if o.listening {
        "(only servers)"
    } else {
        "(w/o servers)"
    };
    let program = |inode: u64| -> String {
        netstat_program(&input, owners.get(&inode).and_then(|v| v.first()).filter(|_| inode != 0))
    };
    if tcp || udp || raw {
        let mut head = format!(
            "Active Internet connections {scope}\nProto Recv-Q Send-Q Local Address           Foreign Address         State      "
        );
        if o.programs {
            head += &format!(" {:<20}", "PID/Program name");
        }
        if o.timers {
            head += " Timer";
        }
        writeln!(out, "{head}")?;
        for (table, is_tcp) in &inet {
            for s in table {
                let remote_set = if *is_tcp { s.rport != 0 } else { !s.remote.is_any() };
                if !o.shows(remote_set) {
                    continue;
                }
                let (local, remote) = (netstat_endpoint(&s.local, s.lport), netstat_endpoint(&s.remote, s.rport));
                let mut line = if *is_tcp {
                    let state = TCP_STATES.get(s.state as usize).copied().unwrap_or("");
                    format!("{:<4}  {:6} {:6} {local:<23} {remote:<23} {state:<11}", s.proto, s.rxq, s.txq)
                } else if s.proto.starts_with("udp") {
                    let state = match s.state {
                        1 => "ESTABLISHED",
                        7 => "",
                        _ => "UNKNOWN",
                    };
                    format!("{:<5} {:6} {:6} {local:<23} {remote:<23} {state:<11}", s.proto, s.rxq, s.txq)
                } else {
                    format!("{:<4}  {:6} {:6} {local:<23} {remote:<23} {:<11}", s.proto, s.rxq, s.txq, s.state)
                };
                if o.programs {
                    line += &format!(" {:<20}", program(s.inode));
                }
                if o.timers {
                    line += " ";
                    line += &timer_text(s, hz, *is_tcp);
                }
                writeln!(out, "{line}")?;
            }
        }
    }
    if let Some(sockets) = unix_sockets {
        let mut head =
            format!("Active UNIX domain sockets {scope}\nProto RefCnt Flags       Type       State         I-Node  ");
        if o.programs {
            head += &format!(" {:<20}", "PID/Program name");
        }
        head += " Path";
        writeln!(out, "{head}")?;
        for u in &sockets {
            let listening = u.state == 1 && u.flags & SO_ACCEPTCON != 0;
            if !o.all && listening != o.listening {
                continue;
            }
            let mut flags = String::from("[ ");
            for (bit, name) in [(SO_ACCEPTCON, "ACC "), (1 << 17, "W "), (1 << 18, "N ")] {
                if u.flags & bit != 0 {
                    flags += name;
                }
            }
            flags.push(']');
            let state = match u.state {
                0 => "FREE",
                1 if u.flags & SO_ACCEPTCON != 0 => "LISTENING",
                1 => "",
                2 => "CONNECTING",
                3 => "CONNECTED",
                4 => "DISCONNECTING",
                _ => "UNKNOWN",
            };
            let mut line =
                format!("unix  {:<6} {flags:<11} {:<10} {state:<13} {:<8}", u.refcount, u.type_name(), u.inode);
            if o.programs {
                line += &format!(" {:<20}", program(u.inode));
            }
            line += &format!(" {}", u.path);
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ss

const SS_STATES: [&str; 12] = [
    "UNKNOWN",
    "ESTAB",
    "SYN-SENT",
    "SYN-RECV",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "TIME-WAIT",
    "UNCONN",
    "CLOSE-WAIT",
    "LAST-ACK",
    "LISTEN",
    "CLOSING",
];

/// ss's `addr:` (right-aligned column) for one end.
fn ss_addr(a: &Addr, v6only: bool) -> String {
    match a {
        Addr::V4(v) => format!("{v}:"),
        Addr::V6(v) if !v6only && v.is_unspecified() => "*:".into(),
        Addr::V6(v) => format!("[{v}]:"),
    }
}

fn ss(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let (mut tcp, mut udp, mut all, mut listening, mut programs) = (false, false, false, false, false);
    for (flag, _) in letter_options("ss", args, "tuanlp", "")? {
        match flag {
            't' => tcp = true,
            'u' => udp = true,
            'a' => all = true,
            'l' => listening = true,
            'p' => programs = true,
            _ => {}
        }
    }
    if !tcp && !udp {
        tcp = true;
    }
    let input = Input::new(bundle);
    let bindv6only = input.text("proc/sys/net/ipv6/bindv6only").is_ok_and(|t| t.trim() == "1");
    let mut sockets: Vec<InetSocket> = Vec::new();
    if tcp {
        sockets.extend(required(&input, "tcp")?);
    }
    if udp {
        sockets.extend(required(&input, "udp")?);
    }
    if tcp {
        sockets.extend(inet_table(&input, "tcp6")?.unwrap_or_default());
    }
    if udp {
        sockets.extend(inet_table(&input, "udp6")?.unwrap_or_default());
    }
    let owners = if programs { owners(&input)? } else { BTreeMap::new() };
    let netid = tcp && udp;
    // Columns: Netid, State, Recv-Q, Send-Q, Local addr:, port, Peer addr:, port, Process.
    let mut rows: Vec<[String; 9]> = vec![[
        "Netid".into(),
        "State".into(),
        "Recv-Q".into(),
        "Send-Q".into(),
        "Local Address:".into(),
        "Port".into(),
        "Peer Address:".into(),
        "Port".into(),
        "Process".into(),
    ]];
    for s in &sockets {
        let is_tcp = s.proto.starts_with("tcp");
        let state = if is_tcp {
            s.state
        } else if s.state == 1 {
            1
        } else {
            7
        };
        let shown = if all {
            true
        } else if listening {
            state == 10 || (!is_tcp && state == 7)
        } else {
            !matches!(state, 10 | 7 | 6 | 3)
        };
        if !shown {
            continue;
        }
        let v6only = match s.local {
            Addr::V6(a) if a.is_unspecified() => bindv6only,
            Addr::V6(a) => Addr::mapped(&a).is_none(),
            Addr::V4(_) => false,
        };
        let send_q = if is_tcp && state == 10 { "-".to_string() } else { s.txq.to_string() };
        let process = match owners.get(&s.inode).filter(|_| s.inode != 0) {
            Some(list) => {
                let users: Vec<String> = list
                    .iter()
                    .rev()
                    .map(|o| format!("(\"{}\",pid={},fd={})", o.program.split(')').next().unwrap_or(""), o.pid, o.fd))
                    .collect();
                format!(" users:({})", users.join(","))
            }
            None => String::new(),
        };
        let port = |p: u16| if p == 0 { "*".to_string() } else { p.to_string() };
        rows.push([
            if is_tcp { "tcp" } else { "udp" }.into(),
            SS_STATES.get(state as usize).copied().unwrap_or("UNKNOWN").into(),
            format!("{:<6}", s.rxq),
            format!("{send_q:<6}"),
            ss_addr(&s.local, v6only),
            port(s.lport),
            ss_addr(&s.remote, v6only),
            port(s.rport),
            process,
        ]);
    }
    // iproute2 6.1's render(): each column as wide as its widest content (plus its
    // one-space delimiter, but for the first shown), addresses right-aligned, the rest
    // left-aligned and padded, the last column too.
    let shown: Vec<usize> = (0..9).filter(|&c| c != 0 || netid).collect();
    let delim = |c: usize| if matches!(c, 2 | 3 | 4 | 6) { 1 } else { 0 };
    let mut widths = [0usize; 9];
    let mut first = true;
    for &c in &shown {
        let max = rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
        widths[c] = if !first && max > 0 { max + delim(c) } else { max };
        if widths[c] > 0 {
            first = false;
        }
    }
    for r in &rows {
        let mut line = String::new();
        let mut started = false;
        for &c in &shown {
            if widths[c] == 0 && r[c].is_empty() {
                continue;
            }
            let mut printed = 0;
            if started {
                let d = " ".repeat(delim(c));
                line += &d;
                printed += d.len();
            }
            started = true;
            let len = r[c].chars().count();
            if matches!(c, 4 | 6) {
                let pad = widths[c].saturating_sub(len + printed);
                line += &" ".repeat(pad);
                line += &r[c];
            } else {
                line += &r[c];
                line += &" ".repeat(widths[c].saturating_sub(printed + len));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// netstat -s

/// Which of netstat's protocol tables `-s` prints (`-w`, `-t`, `-u`; all when none).
#[derive(Clone, Copy)]
struct Protocols {
    raw: bool,
    tcp: bool,
    udp: bool,
}

/// `netstat -s` as net-tools 2.10 (statistics.c) prints it: proc/net/snmp, then
/// proc/net/netstat (and proc/net/sctp/snmp when present), each `Name: keys` line paired
/// with its `Name: values` line. Counters are worded from net-tools' tables, which are
/// searched with bsearch although they are not all in strcmp order: a counter the
/// search misses (TCPDSACKOfoRecv, ...) falls back, as in net-tools, to `Name: value`
/// printed only when non-zero. Tables net-tools does not know (IcmpMsg, IpExt, ...)
/// print that way too. The state machine (indentation, ICMP histogram titles) is
/// net-tools'.
mod statistics;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstat_cuts_long_endpoints_as_net_tools() {
        let a = Addr::V6("fe80::56e1:adff:fe7c:6609".parse().unwrap());
        assert_eq!(netstat_endpoint(&a, 51073), "fe80::56e1:adff:f:51073");
        assert_eq!(netstat_endpoint(&Addr::V4(Ipv4Addr::UNSPECIFIED), 0), "0.0.0.0:*");
        let m = Addr::V6("::ffff:127.0.0.1".parse().unwrap());
        assert_eq!(netstat_endpoint(&m, 80), "127.0.0.1:80");
    }

    #[test]
    fn inet_lines_parse_with_their_timeout() {
        let l = "   2: 0100007F:91E2 0100007F:B293 01 00000000:00000000 02:000AFC66 00000000     0        0 20204 2 0000000042bfae64 20 0 0 11 -1";
        let s = parse_inet_line(l, "tcp", false).unwrap();
        assert_eq!((s.lport, s.rport, s.state, s.timer, s.inode, s.timeout), (37346, 45715, 1, 2, 20204, 0));
        assert_eq!(timer_text(&s, 100.0, true), "keepalive (7199.74/0/0)");
    }
}
