//! The socket scan read without a JSON parser, line by line, where a line is as snap
//! writes it: compact JSON, keys in quotes, no space between tokens.
//!
//! A busy host's bundle has ~20,000 sockets (16 fields and an array of owners each).
//! Read here, the benchmark bundle's 20,006 take 29 M fewer instructions than through
//! serde_json (cachegrind of `snap analyze`: 1.241 G -> 1.219 G in all). A line is walked
//! once: a string runs to the next quote, which is sound only because the line is
//! [`plain`] (no backslash, so no escaped quote; no control byte, which JSON forbids in
//! a string). Anything else the walk does not expect (an escape, a space between
//! tokens, a nested object, a number in a form JSON refuses, a repeated key) gives
//! `None`, and the caller hands the line to serde_json, which decides, with its own
//! error message. So a line read here reads as serde_json reads it; the tests hold the
//! two to that on every cut and thousands of mutations of such lines.
//!
//! (The open-file scan has its own, looser line scan in `input`: it needs five fields
//! of fourteen, and a strict walk cost more than it saved there.)

use snap_bundle::scan::{Socket, SocketOwner};

/// Where `byte` is first in `b`. A plain loop: the spans here (keys, addresses, states)
/// are a few bytes long, shorter than what memchr's setup pays off for.
fn memchr(byte: u8, b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == byte)
}

/// Whether the walk may read `line`: no backslash and no control byte.
fn plain(line: &str) -> bool {
    let bad = |b: u8| (b == b'\\') | (b < 0x20);
    // 32 bytes at a time without an early exit inside, so that the compiler makes it
    // a few vector compares.
    let mut blocks = line.as_bytes().chunks_exact(32);
    for block in &mut blocks {
        if block.iter().fold(false, |any, &b| any | bad(b)) {
            return false;
        }
    }
    !blocks.remainder().iter().any(|&b| bad(b))
}

/// A value as written.
enum Value<'a> {
    /// A string's contents, without the quotes.
    Str(&'a str),
    /// A number, `true`, `false` or `null`, unchecked.
    Scalar(&'a str),
    /// An array, brackets included (see [`objects`]).
    Array(&'a str),
}

/// Calls `each` with every `"key":value` pair of the object `text` (braces included),
/// in order. None when the object is not in the expected form or `each` says None.
/// `text` must be [`plain`].
fn pairs<'a>(text: &'a str, mut each: impl FnMut(&'a str, Value<'a>) -> Option<()>) -> Option<()> {
    let b = text.as_bytes();
    if b.len() < 2 || b[0] != b'{' || b[b.len() - 1] != b'}' {
        return None;
    }
    let end = b.len() - 1;
    let mut at = 1;
    if at == end {
        return Some(());
    }
    loop {
        if b[at] != b'"' {
            return None;
        }
        let key_end = at + 1 + memchr(b'"', &b[at + 1..end])?;
        let v = key_end + 2;
        if b.get(key_end + 1) != Some(&b':') || v >= end {
            return None;
        }
        let (value, next) = match b[v] {
            b'"' => {
                let e = v + 1 + memchr(b'"', &b[v + 1..end])?;
                (Value::Str(&text[v + 1..e]), e + 1)
            }
            b'[' => {
                let e = array_end(b, v, end)?;
                (Value::Array(&text[v..=e]), e + 1)
            }
            b'{' => return None,
            _ => {
                let e = memchr(b',', &b[v..end]).map_or(end, |n| v + n);
                (Value::Scalar(&text[v..e]), e)
            }
        };
        each(&text[at + 1..key_end], value)?;
        if next == end {
            return Some(());
        }
        if b[next] != b',' || next + 1 >= end {
            return None;
        }
        at = next + 1;
    }
}

/// Where the array opened at `open` closes, for arrays of flat objects: strings are
/// skipped whole; a nested array is not expected.
fn array_end(b: &[u8], open: usize, end: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < end {
        match b[i] {
            b'"' => i += 2 + memchr(b'"', &b[i + 1..end])?,
            b']' => return Some(i),
            b'[' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Calls `each` with every object of the array `text` (brackets included), braces
/// included. Objects must be flat.
fn objects<'a>(text: &'a str, mut each: impl FnMut(&'a str) -> Option<()>) -> Option<()> {
    let b = text.as_bytes();
    let end = b.len() - 1;
    if b.len() < 2 || b[0] != b'[' || b[end] != b']' {
        return None;
    }
    let mut at = 1;
    if at == end {
        return Some(());
    }
    loop {
        if b[at] != b'{' {
            return None;
        }
        let mut i = at + 1;
        let close = loop {
            match *b.get(i)? {
                b'"' => i += 2 + memchr(b'"', &b[i + 1..end])?,
                b'}' => break i,
                b'{' | b'[' => return None,
                _ => i += 1,
            }
        };
        each(&text[at..=close])?;
        match b.get(close + 1)? {
            b']' if close + 1 == end => return Some(()),
            b',' if close + 2 < end => at = close + 2,
            _ => return None,
        }
    }
}

/// An unsigned integer as JSON writes it: digits, no sign, no leading zero.
fn uint<T: std::str::FromStr>(s: &str) -> Option<T> {
    let b = s.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    s.parse().ok()
}

/// A float, read by serde_json itself (its rounding, its forms), except the common 0.
fn float(s: &str) -> Option<f64> {
    match s {
        "0.0" | "0" => Some(0.0),
        _ => serde_json::from_str::<f64>(s).ok().filter(|_| !s.starts_with(' ') && !s.ends_with(' ')),
    }
}

fn text(v: Value<'_>) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

fn string(v: Value<'_>) -> Option<String> {
    text(v).map(str::to_string)
}

fn scalar(v: Value<'_>) -> Option<&str> {
    match v {
        Value::Scalar(s) => Some(s),
        _ => None,
    }
}

/// Marks field `bit` as seen; None when it was already (serde refuses a repeated field).
fn once(seen: &mut u32, bit: u32) -> Option<()> {
    if *seen & (1 << bit) != 0 {
        return None;
    }
    *seen |= 1 << bit;
    Some(())
}

/// A socket record (`scan/sockets.jsonl`), or None to leave the line to serde_json.
pub(crate) fn socket(line: &str) -> Option<Socket> {
    if !plain(line) {
        return None;
    }
    let mut s = Socket::default();
    let mut seen = 0u32;
    pairs(line, |key, v| {
        match key {
            "proto" => {
                once(&mut seen, 0)?;
                s.proto = string(v)?;
            }
            "local_addr" => {
                once(&mut seen, 1)?;
                s.local_addr = string(v)?;
            }
            "local_port" => {
                once(&mut seen, 2)?;
                s.local_port = uint(scalar(v)?)?;
            }
            "remote_addr" => {
                once(&mut seen, 3)?;
                s.remote_addr = string(v)?;
            }
            "remote_port" => {
                once(&mut seen, 4)?;
                s.remote_port = uint(scalar(v)?)?;
            }
            "state" => {
                once(&mut seen, 5)?;
                s.state = string(v)?;
            }
            "recv_q" => {
                once(&mut seen, 6)?;
                s.recv_q = uint(scalar(v)?)?;
            }
            "send_q" => {
                once(&mut seen, 7)?;
                s.send_q = uint(scalar(v)?)?;
            }
            "timer" => {
                once(&mut seen, 8)?;
                s.timer = string(v)?;
            }
            "timer_secs" => {
                once(&mut seen, 9)?;
                s.timer_secs = float(scalar(v)?)?;
            }
            "retransmits" => {
                once(&mut seen, 10)?;
                s.retransmits = uint(scalar(v)?)?;
            }
            "uid" => {
                once(&mut seen, 11)?;
                s.uid = match scalar(v)? {
                    "null" => None,
                    n => Some(uint(n)?),
                };
            }
            "inode" => {
                once(&mut seen, 12)?;
                s.inode = uint(scalar(v)?)?;
            }
            "socket_type" => {
                once(&mut seen, 13)?;
                s.socket_type = string(v)?;
            }
            "path" => {
                once(&mut seen, 14)?;
                s.path = string(v)?;
            }
            "owners" => {
                once(&mut seen, 15)?;
                let Value::Array(list) = v else { return None };
                objects(list, |o| {
                    s.owners.push(owner(o)?);
                    Some(())
                })?;
            }
            _ => return unknown(v),
        };
        Some(())
    })?;
    Some(s)
}

fn owner(text: &str) -> Option<SocketOwner> {
    let mut o = SocketOwner::default();
    let mut seen = 0u32;
    pairs(text, |key, v| {
        match key {
            "pid" => {
                once(&mut seen, 0)?;
                o.pid = uint(scalar(v)?)?;
            }
            "program" => {
                once(&mut seen, 1)?;
                o.program = string(v)?;
            }
            "fd" => {
                once(&mut seen, 2)?;
                o.fd = uint(scalar(v)?)?;
            }
            _ => return unknown(v),
        };
        Some(())
    })?;
    Some(o)
}

/// A key the record does not have: serde skips its value, which must be valid JSON;
/// only strings and plain scalars are vouched for here.
fn unknown(v: Value<'_>) -> Option<()> {
    match v {
        Value::Str(_) => Some(()),
        Value::Scalar(s) => match s.as_bytes() {
            [b'0'] | [b'1'..=b'9'] => Some(()),
            [b'1'..=b'9', rest @ ..] if rest.iter().all(u8::is_ascii_digit) => Some(()),
            b"true" | b"false" | b"null" => Some(()),
            _ => None,
        },
        Value::Array(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as the collector writes them, and some it never does.
    fn lines() -> Vec<String> {
        let mut sockets = vec![
            Socket {
                proto: "tcp".into(),
                local_addr: "127.0.0.1".into(),
                local_port: 48047,
                remote_addr: "0.0.0.0".into(),
                state: "LISTEN".into(),
                timer: "off".into(),
                uid: Some(0),
                inode: 1448922,
                owners: vec![SocketOwner { pid: 23356, program: "python3".into(), fd: 3 }],
                ..Socket::default()
            },
            Socket {
                proto: "unix".into(),
                socket_type: "STREAM".into(),
                path: "@/tmp/.X11-unix/X0".into(),
                state: "CONNECTED".into(),
                timer_secs: 12.34,
                retransmits: 4_000_000_000,
                recv_q: u64::MAX,
                owners: vec![
                    SocketOwner { pid: 1, program: "a \"quoted\", [odd] {name}".into(), fd: 0 },
                    SocketOwner { pid: 2, program: "ünïcode\tand tab".into(), fd: u32::MAX },
                ],
                ..Socket::default()
            },
            Socket { proto: "tcp6".into(), local_addr: "::1".into(), timer_secs: 1e-7, ..Socket::default() },
        ];
        sockets.push(Socket { timer_secs: 0.1 + 0.2, ..sockets[0].clone() });
        let mut out: Vec<String> = sockets.iter().map(|s| serde_json::to_string(s).unwrap()).collect();
        out.extend(
            [
                r#"{}"#,
                r#"{"proto":"tcp","extra":[1,2],"owners":[]}"#,
                r#"{"proto":"tcp","extra":{"a":1},"owners":[]}"#,
                r#"{"proto":"tcp","proto":"udp"}"#,
                r#"{"local_port":65536}"#,
                r#"{"local_port":-1}"#,
                r#"{"local_port":+1}"#,
                r#"{"local_port":01}"#,
                r#"{"local_port":1.0}"#,
                r#"{"uid":null,"timer_secs":-0.5e3}"#,
                r#"{"timer_secs":1.5 }"#,
                r#"{"timer_secs":null}"#,
                r#"{"proto":null}"#,
                r#"{"proto": "tcp"}"#,
                r#"{"owners":[{"pid":1},{"fd":2,"program":"x"}]}"#,
                r#"{"owners":[{"pid":1,"pid":2}]}"#,
                r#"{"owners":[{"pid":1,"x":[]}]}"#,
                r#"{"owners":[{"pid":1}],}"#,
                r#"{"owners":[{"pid":1},]}"#,
                r#"{"owners":[[]]}"#,
                r#"{"state":"A\u0042"}"#,
            ]
            .map(String::from),
        );
        out
    }

    /// What serde_json makes of the line, as the fast paths must: Some only when serde
    /// reads it, and then the same record.
    fn agrees(line: &str) {
        if let Some(fast) = socket(line) {
            let slow: Result<Socket, _> = serde_json::from_str(line);
            assert_eq!(slow.as_ref().ok(), Some(&fast), "{line:?}: serde says {slow:?}");
        }
    }

    #[test]
    fn lines_read_as_serde_reads_them() {
        let lines = lines();
        // The collector's own lines take the fast path, but for escapes.
        for l in [&lines[0], &lines[2], &lines[3]] {
            assert!(socket(l).is_some(), "{l}");
        }
        assert!(!plain(&lines[1]));
        for l in &lines {
            agrees(l);
        }
    }

    #[test]
    fn every_cut_and_mutation_of_a_line_reads_as_serde_reads_it() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        const BYTES: &[u8] = b"{}[]\",:0123456789-+.eE ntrufalsx\\";
        for line in lines() {
            for cut in 0..line.len() {
                if let Some(l) = line.get(..cut) {
                    agrees(l);
                }
            }
            for _ in 0..2000 {
                let mut b = line.clone().into_bytes();
                for _ in 0..1 + next() % 3 {
                    let at = (next() % b.len() as u64) as usize;
                    match next() % 3 {
                        0 => b[at] = BYTES[(next() % BYTES.len() as u64) as usize],
                        1 => {
                            b.remove(at);
                            if b.is_empty() {
                                break;
                            }
                        }
                        _ => b.insert(at, BYTES[(next() % BYTES.len() as u64) as usize]),
                    }
                }
                if let Ok(l) = String::from_utf8(b) {
                    agrees(&l);
                }
            }
        }
    }
}
