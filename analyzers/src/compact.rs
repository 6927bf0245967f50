//! The socket scan read without a JSON parser, line by line, where a line is as snap
//! writes it: compact JSON, its keys in the order of [`Socket`]'s fields.
//!
//! A busy host's bundle has ~20,000 sockets (16 fields and an array of owners each);
//! through serde_json they were the second largest cost of its analysis after the
//! open-file scan. Here each key is checked where the collector writes it, and each
//! value read in place: a string runs to the next quote, which is sound only because
//! the line is [`plain`] (no backslash, so no escaped quote; no control byte, which
//! JSON forbids in a string). Anything else (an escape, another key order, a space
//! between tokens, a number in a form JSON refuses) gives `None`, and the caller hands
//! the line to serde_json, which decides, with its own error message. So a line read
//! here reads as serde_json reads it; the tests hold the two to that on every cut and
//! thousands of mutations of such lines ([`cuts_and_mutations`]).
//!
//! [`Cursor`] also reads the open-file scan's lines in place (`input`).

use snap_bundle::scan::{Socket, SocketOwner};

/// Whether the line may be read in place: no backslash and no control byte.
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

/// A line read from left to right. It must hold no backslash (so no string holds an
/// escaped quote): then a string runs to the next quote.
pub(crate) struct Cursor<'a> {
    line: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(line: &'a str) -> Cursor<'a> {
        Cursor { line, at: 0 }
    }

    /// What is left to read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.line.as_bytes()[self.at..]
    }

    /// Steps over `token` (`,"key":`), which must be next.
    pub(crate) fn expect(&mut self, token: &[u8]) -> Option<()> {
        self.rest().starts_with(token).then(|| self.at += token.len())
    }

    /// Steps over `token` when it is next.
    fn skip(&mut self, token: &[u8]) -> bool {
        self.expect(token).is_some()
    }

    /// A string's contents.
    pub(crate) fn string(&mut self) -> Option<&'a str> {
        let rest = self.rest().strip_prefix(b"\"")?;
        let len = rest.iter().position(|&b| b == b'"')?;
        let start = self.at + 1;
        self.at = start + len + 1;
        Some(&self.line[start..start + len])
    }

    /// A number, `true`, `false` or `null`, as written: up to the next `,`, `}` or `]`.
    fn scalar(&mut self) -> &'a str {
        let len = self.rest().iter().position(|&b| matches!(b, b',' | b'}' | b']')).unwrap_or(self.rest().len());
        let start = self.at;
        self.at += len;
        &self.line[start..start + len]
    }

    /// An unsigned integer as JSON writes it: digits, no sign, no leading zero.
    pub(crate) fn uint<T: std::str::FromStr>(&mut self) -> Option<T> {
        uint(self.scalar())
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

/// A socket record (`scan/sockets.jsonl`), or None to leave the line to serde_json.
pub(crate) fn socket(line: &str) -> Option<Socket> {
    if !plain(line) {
        return None;
    }
    let mut c = Cursor::new(line);
    let mut s = Socket::default();
    c.expect(b"{\"proto\":")?;
    s.proto = c.string()?.to_string();
    c.expect(b",\"local_addr\":")?;
    s.local_addr = c.string()?.to_string();
    c.expect(b",\"local_port\":")?;
    s.local_port = c.uint()?;
    c.expect(b",\"remote_addr\":")?;
    s.remote_addr = c.string()?.to_string();
    c.expect(b",\"remote_port\":")?;
    s.remote_port = c.uint()?;
    c.expect(b",\"state\":")?;
    s.state = c.string()?.to_string();
    c.expect(b",\"recv_q\":")?;
    s.recv_q = c.uint()?;
    c.expect(b",\"send_q\":")?;
    s.send_q = c.uint()?;
    c.expect(b",\"timer\":")?;
    s.timer = c.string()?.to_string();
    c.expect(b",\"timer_secs\":")?;
    s.timer_secs = float(c.scalar())?;
    c.expect(b",\"retransmits\":")?;
    s.retransmits = c.uint()?;
    if c.skip(b",\"uid\":") {
        s.uid = match c.scalar() {
            "null" => None,
            n => Some(uint(n)?),
        };
    }
    c.expect(b",\"inode\":")?;
    s.inode = c.uint()?;
    if c.skip(b",\"socket_type\":") {
        s.socket_type = c.string()?.to_string();
    }
    if c.skip(b",\"path\":") {
        s.path = c.string()?.to_string();
    }
    c.expect(b",\"owners\":[")?;
    if !c.skip(b"]") {
        loop {
            c.expect(b"{\"pid\":")?;
            let pid = c.uint()?;
            c.expect(b",\"program\":")?;
            let program = c.string()?.to_string();
            c.expect(b",\"fd\":")?;
            let fd = c.uint()?;
            c.expect(b"}")?;
            s.owners.push(SocketOwner { pid, program, fd });
            if c.skip(b"]") {
                break;
            }
            c.expect(b",")?;
        }
    }
    c.expect(b"}")?;
    c.rest().is_empty().then_some(s)
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
        for line in lines() {
            cuts_and_mutations(&line, b"{}[]\",:0123456789-+.eE ntrufalsx\\", 0x2545_f491_4f6c_dd1d, 2000, 3, agrees);
        }
    }
}

/// Calls `check` with every cut of `line`, then with `rounds` copies of it, each changed
/// in 1 to `edits` places (a byte replaced by one of `alphabet`, removed, or one
/// inserted); `seed` makes the copies. Copies that are not UTF-8 are left out.
#[cfg(test)]
pub(crate) fn cuts_and_mutations(
    line: &str,
    alphabet: &[u8],
    seed: u64,
    rounds: usize,
    edits: u64,
    mut check: impl FnMut(&str),
) {
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for cut in 0..line.len() {
        if let Some(l) = line.get(..cut) {
            check(l);
        }
    }
    for _ in 0..rounds {
        let mut b = line.as_bytes().to_vec();
        for _ in 0..1 + next() % edits {
            let at = (next() % b.len() as u64) as usize;
            let byte = alphabet[(next() % alphabet.len() as u64) as usize];
            match next() % 3 {
                0 => b[at] = byte,
                1 => {
                    b.remove(at);
                    if b.is_empty() {
                        break;
                    }
                }
                _ => b.insert(at, byte),
            }
        }
        if let Ok(l) = String::from_utf8(b) {
            check(&l);
        }
    }
}
