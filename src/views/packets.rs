//! The packet views: `tcpdump` (every captured packet as `tcpdump -r` prints it) and
//! `conversations` (one line per TCP connection with what went wrong on it), both
//! streaming through `capture/window.pcap` with the analyzers' TCP engine, so a capture
//! of any size is never held as lines in memory (conversations keeps one short line per
//! connection, to print them in order).
//!
//! Where `tcpdump` differs from the real tool: names are never resolved (as with `-nn`:
//! the capture does not carry the host's resolver or /etc/services), times are UTC,
//! packets other than TCP get a one-line summary (`ARP, length 28`) rather than
//! tcpdump's per-protocol decoding, and `-A` prints the TCP payload kept by the capture
//! (headers only by default) rather than the whole IP packet.

use std::io::Write;

use snap_analyzers::tcp::line::TcpdumpLine;
use snap_analyzers::tcp::{self, Connection, Item, Packets, Skip};
use snap_bundle::{names, Bundle};

use super::{letter_options, View, ViewError};

pub const TCPDUMP: View = View {
    name: "tcpdump",
    replays: "tcpdump -r: every captured packet; -n/-nn, -A (payload), -c N (first N), -tttt (dates)",
    needs: &[names::CAPTURE],
    render: tcpdump,
};

pub const CONVERSATIONS: View = View {
    name: "conversations",
    replays: "one line per TCP connection: state, RTT, response time, retransmissions, resets, who closed",
    needs: &[names::CAPTURE],
    render: conversations,
};

fn capture(bundle: &Bundle) -> Result<std::borrow::Cow<'_, [u8]>, ViewError> {
    match bundle.get(names::CAPTURE) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(ViewError::Input(format!(
            "the bundle has no {} (collected with --no-capture, or the capture failed: see `snap inspect`)",
            names::CAPTURE
        ))),
        Err(e) => Err(ViewError::Input(e.to_string())),
    }
}

fn tcpdump(bundle: &Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let (mut ascii, mut date, mut count) = (false, false, u64::MAX);
    let mut t = 0;
    for (flag, value) in letter_options("tcpdump", args, "nAt", "c")? {
        match flag {
            'A' => ascii = true,
            't' => t += 1,
            'c' => {
                count = value.as_deref().and_then(|v| v.parse().ok()).filter(|n| *n > 0).ok_or_else(|| {
                    ViewError::Usage(format!("tcpdump: -c takes a positive count, not {:?}", value.unwrap_or_default()))
                })?
            }
            _ => {} // -n: names are never resolved anyway
        }
    }
    match t {
        0 => {}
        4 => date = true,
        _ => return Err(ViewError::Usage("tcpdump: of the -t forms, only -tttt (dates) is replayed".into())),
    }
    let bytes = capture(bundle)?;
    let packets = Packets::new(&bytes, &tcp::Options::default())
        .map_err(|e| ViewError::Input(format!("{}: {e}", names::CAPTURE)))?;
    for item in packets.take(usize::try_from(count).unwrap_or(usize::MAX)) {
        match item {
            Ok(Item::Tcp(p, info)) => {
                let mut line = TcpdumpLine::new(&p, Some(&info));
                line.date = date;
                writeln!(out, "{line}")?;
                if ascii && !p.payload.is_empty() {
                    write_ascii(out, p.payload)?;
                }
            }
            Ok(Item::Other(frame, skip)) => {
                let what = match skip {
                    Skip::NotIp => "not IP",
                    Skip::NotTcp => "IP, not TCP",
                    other => other.as_str(),
                };
                writeln!(
                    out,
                    "{} {what}, length {}",
                    snap_bundle::time::clock_utc(frame.time_ns, date),
                    frame.orig_len
                )?;
            }
            Err(e) => {
                // As tcpdump does with a damaged file: what was read is printed, then why
                // it stops.
                out.flush()?;
                return Err(ViewError::Input(format!("{}: {e}", names::CAPTURE)));
            }
        }
    }
    Ok(())
}

/// Payload as `tcpdump -A` shows bytes: printable ASCII as is, line feeds as new lines,
/// carriage returns dropped, anything else as a dot.
fn write_ascii(out: &mut dyn Write, payload: &[u8]) -> std::io::Result<()> {
    let text: Vec<u8> = payload
        .iter()
        .filter(|&&b| b != b'\r')
        .map(|&b| if b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b) { b } else { b'.' })
        .collect();
    out.write_all(&text)?;
    out.write_all(b"\n")
}

/// An enum's name as the engine serialises it (`after_own_fin`).
fn snake(v: impl serde::Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn ms(ns: i64) -> String {
    format!("{:.1}", ns as f64 / 1e6)
}

/// One connection's line; see [`conversations`] for the columns.
fn row(c: &Connection, origin_ns: i64) -> String {
    let rtt = c.initial_rtt_ns.or(c.min_ack_rtt_ns).map_or("-".into(), ms);
    let response = c.slowest.and_then(|e| e.response_time_ns).map_or("-".into(), ms);
    let rtx = c.client_sent.retransmissions + c.server_sent.retransmissions;
    let dup = c.client_sent.dup_acks + c.server_sent.dup_acks;
    let zero = c.client_sent.zero_windows + c.server_sent.zero_windows;
    let reset = c.reset.map_or("-".to_string(), |r| format!("{}:{}", r.by.as_str(), snake(r.when)));
    let fin = c.close.map_or("-".to_string(), |cl| cl.by.as_str().to_string());
    let start = (c.first.time_ns - origin_ns) as f64 / 1e9;
    let duration = (c.last.time_ns - c.first.time_ns) as f64 / 1e9;
    format!(
        "{:>5} {:>23} {:>23} {:<13} {start:>8.3} {duration:>8.3} {:>6}/{:<6} {:>9}/{:<9} {rtt:>7} {response:>9} {:>4} {:>4} {:>4} {reset:<16} {fin}",
        c.id,
        c.client.to_string(),
        c.server.to_string(),
        c.end_state.as_str(),
        c.client_sent.packets,
        c.server_sent.packets,
        c.client_sent.bytes,
        c.server_sent.bytes,
        rtx,
        dup,
        zero,
    )
}

/// One line per connection in the order they started: id (as tshark's tcp.stream),
/// client and server, state at the end, start (seconds into the capture) and duration,
/// packets and payload bytes each way (client/server), handshake RTT in ms, the slowest
/// response in ms, retransmissions, duplicate ACKs, zero windows, who reset and when,
/// who sent the first FIN.
fn conversations(bundle: &Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    if let Some(a) = args.first() {
        return Err(ViewError::Usage(format!("conversations takes no options, not {a:?}")));
    }
    let bytes = capture(bundle)?;
    let mut packets = Packets::new(&bytes, &tcp::Options::default())
        .map_err(|e| ViewError::Input(format!("{}: {e}", names::CAPTURE)))?;
    let mut origin = None;
    let mut rows: Vec<(u64, String)> = Vec::new();
    let mut damage = None;
    while let Some(item) = packets.next() {
        match item {
            Ok(Item::Tcp(p, _)) => {
                origin.get_or_insert(p.time_ns);
            }
            Ok(Item::Other(f, _)) => {
                origin.get_or_insert(f.time_ns);
            }
            Err(e) => {
                damage = Some(e);
                break;
            }
        }
        let origin = origin.unwrap_or(0);
        rows.extend(packets.take_finished().map(|c| (c.id, row(&c, origin))));
    }
    let origin = origin.unwrap_or(0);
    rows.extend(packets.finish().iter().map(|c| (c.id, row(c, origin))));
    rows.sort_by_key(|(id, _)| *id);
    writeln!(
        out,
        "{:>5} {:>23} {:>23} {:<13} {:>8} {:>8} {:>13} {:>19} {:>7} {:>9} {:>4} {:>4} {:>4} {:<16} first-fin",
        "id",
        "client",
        "server",
        "state",
        "start-s",
        "dur-s",
        "packets c/s",
        "bytes c/s",
        "rtt-ms",
        "max-rsp-ms",
        "rtx",
        "dup",
        "zwin",
        "reset"
    )?;
    for (_, r) in &rows {
        writeln!(out, "{r}")?;
    }
    if let Some(e) = damage {
        out.flush()?;
        return Err(ViewError::Input(format!("{}: {e} (the connections above end there)", names::CAPTURE)));
    }
    Ok(())
}
