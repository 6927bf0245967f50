//! The open-file scan (`scan/open_files.jsonl`) as the rules need it: descriptor counts
//! per process and the deleted files, read from ~70,000 lines on a busy host.

use std::borrow::Cow;
use std::collections::BTreeMap;

use snap_bundle::scan::OpenFile;

use crate::compact;

/// Per-process descriptor counts and every deleted file, from the open-file scan.
#[derive(Debug, Default)]
pub struct Descriptors {
    /// Numbered descriptors (not cwd, rtd, txt or mem) per pid.
    pub per_pid: BTreeMap<u32, ProcessFds>,
    /// The records of deleted files, whole.
    pub deleted: Vec<OpenFile>,
}

/// One process's numbered descriptors.
#[derive(Debug, Default)]
pub struct ProcessFds {
    pub command: String,
    pub count: u64,
    pub highest: u64,
    /// By lsof TYPE (`unknown` when the scan has none).
    pub by_kind: BTreeMap<String, u64>,
}

/// Where an open-file line's `deleted` key is (see [`OpenFileFields::in_order`]).
static DELETED_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"deleted\":"));

/// The fields of an open-file record the counts need, borrowed from the line.
#[derive(serde::Deserialize)]
#[serde(default)]
struct OpenFileFields<'a> {
    pid: u32,
    #[serde(borrow)]
    command: Cow<'a, str>,
    #[serde(borrow)]
    fd: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    deleted: bool,
}

impl Default for OpenFileFields<'_> {
    fn default() -> Self {
        OpenFileFields {
            pid: 0,
            command: Cow::Borrowed(""),
            fd: Cow::Borrowed(""),
            kind: Cow::Borrowed(""),
            deleted: false,
        }
    }
}

impl<'a> OpenFileFields<'a> {
    /// The fields read straight off a line as snap writes it (compact, keys in order),
    /// without a JSON parser: a busy host's scan has hundreds of thousands of lines.
    /// Only for lines without a backslash: then no string can hold a quote, so a
    /// `"key":` pattern can only be a key. Anything else (escapes, spaces, a missing
    /// key) returns None and goes to the JSON parser.
    fn scan(line: &'a str) -> Option<OpenFileFields<'a>> {
        if let Some(f) = OpenFileFields::in_order(line) {
            return Some(f);
        }
        OpenFileFields::walk(line)
    }

    /// The fields of a line whose keys come in the order the collector writes them
    /// (pid, command, uid, user, fd, mode, type, ... deleted): each key is checked in
    /// place rather than searched for, and `deleted` is found by one search past `type`
    /// (a dozen short searches fewer than [`OpenFileFields::walk`]; the open-file scan
    /// was the largest single cost of analyzing a busy host's bundle). Any other
    /// layout returns None.
    fn in_order(line: &'a str) -> Option<OpenFileFields<'a>> {
        if memchr::memchr(b'\\', line.as_bytes()).is_some() || !line.ends_with('}') {
            return None;
        }
        let mut c = compact::Cursor::new(line);
        c.expect(b"{\"pid\":")?;
        let pid = c.uint()?;
        c.expect(b",\"command\":")?;
        let command = c.string()?;
        c.expect(b",\"uid\":")?;
        c.uint::<u64>()?;
        c.expect(b",\"user\":")?;
        c.string()?;
        c.expect(b",\"fd\":")?;
        let fd = c.string()?;
        c.expect(b",\"mode\":")?;
        c.string()?;
        c.expect(b",\"type\":")?;
        let kind = c.string()?;
        // With no backslash, every quote delimits a string, so `"deleted":` can only be
        // that key.
        let rest = c.rest();
        let value = &rest[DELETED_KEY.find(rest)? + DELETED_KEY.needle().len()..];
        let deleted = match value {
            [b't', b'r', b'u', b'e', b',' | b'}', ..] => true,
            [b'f', b'a', b'l', b's', b'e', b',' | b'}', ..] => false,
            _ => return None,
        };
        Some(OpenFileFields {
            pid,
            command: Cow::Borrowed(command),
            fd: Cow::Borrowed(fd),
            kind: Cow::Borrowed(kind),
            deleted,
        })
    }

    /// The fields of a line, its `"key":value` pairs walked in any order.
    fn walk(line: &'a str) -> Option<OpenFileFields<'a>> {
        let body = line.strip_prefix('{')?.strip_suffix('}')?;
        if body.contains('\\') {
            return None;
        }
        let mut f = OpenFileFields::default();
        let (mut pid, mut deleted) = (None, None);
        // One pass over `"key":value` pairs: with no backslash in the line, a string
        // runs to the next quote; any other value runs to the next comma. memchr finds
        // them (paths make most of a line's bytes).
        let bytes = body.as_bytes();
        let until = |from: usize, stop: u8| memchr::memchr(stop, &bytes[from..]).map(|n| from + n);
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] != b'"' {
                return None;
            }
            let key_end = until(at + 1, b'"')?;
            if bytes.get(key_end + 1) != Some(&b':') {
                return None;
            }
            let value_start = key_end + 2;
            let (value, next) = if bytes.get(value_start) == Some(&b'"') {
                let end = until(value_start + 1, b'"')?;
                (&body[value_start + 1..end], end + 1)
            } else {
                let end = until(value_start, b',').unwrap_or(bytes.len());
                let value = &body[value_start..end];
                if value.starts_with(['{', '[', ' ']) {
                    return None;
                }
                (value, end)
            };
            match &body[at + 1..key_end] {
                "pid" => pid = Some(value.parse().ok()?),
                "command" => f.command = Cow::Borrowed(value),
                "fd" => f.fd = Cow::Borrowed(value),
                "type" => f.kind = Cow::Borrowed(value),
                "deleted" => {
                    deleted = Some(match value {
                        "true" => true,
                        "false" => false,
                        _ => return None,
                    })
                }
                _ => {}
            }
            at = match bytes.get(next) {
                None => next,
                Some(b',') => next + 1,
                Some(_) => return None,
            };
        }
        f.pid = pid?;
        f.deleted = deleted?;
        Some(f)
    }
}

impl Descriptors {
    /// Parses `scan/open_files.jsonl`, naming the first line that is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Descriptors, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        let mut out = Descriptors::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let f = match OpenFileFields::scan(line) {
                Some(f) => f,
                None => serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?,
            };
            if f.deleted {
                out.deleted.push(serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?);
            }
            let Ok(fd) = f.fd.parse::<u64>() else { continue };
            let e = out.per_pid.entry(f.pid).or_default();
            if e.command.is_empty() {
                e.command = f.command.into_owned();
            }
            e.count += 1;
            e.highest = e.highest.max(fd);
            let kind = if f.kind.is_empty() { "unknown" } else { &f.kind };
            match e.by_kind.get_mut(kind) {
                Some(n) => *n += 1,
                None => {
                    e.by_kind.insert(kind.to_string(), 1);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The collector's lines in their forms (optional fields present or not), and some
    /// that are not the collector's.
    fn open_file_lines() -> Vec<String> {
        let full = OpenFile {
            pid: 4242,
            command: "java".into(),
            uid: 1000,
            user: "app".into(),
            fd: "17".into(),
            mode: "u".into(),
            kind: "REG".into(),
            target: "/var/log/app.log (deleted)".into(),
            name: "/var/log/app.log".into(),
            device: "254,1".into(),
            inode: 1234,
            size: Some(1 << 30),
            offset: Some(77),
            nlink: 0,
            deleted: true,
            flags: "0100002".into(),
            error: Some("Permission denied".into()),
        };
        let bare =
            OpenFile { size: None, offset: None, flags: String::new(), error: None, deleted: false, ..full.clone() };
        let mut lines: Vec<String> = [
            full.clone(),
            bare.clone(),
            OpenFile { name: "/tmp/\"deleted\":true".into(), ..bare.clone() },
            OpenFile { command: "a,\"b".into(), ..full.clone() },
            OpenFile { fd: "cwd".into(), kind: String::new(), ..bare },
        ]
        .iter()
        .map(|f| serde_json::to_string(f).unwrap())
        .collect();
        lines.extend(
            [
                r#"{"command":"x","pid":1,"fd":"1","type":"REG","deleted":false}"#,
                r#"{"pid":1,"command":"x","uid":0,"user":"r","fd":"1","mode":"","type":"REG","deleted":fals}"#,
                r#"{"pid":01,"command":"x","uid":0,"user":"r","fd":"1","mode":"","type":"REG","deleted":true}"#,
                r#"{"pid":1,"command":"x","uid":-1,"user":"r","fd":"1","mode":"","type":"REG","deleted":true}"#,
            ]
            .map(String::from),
        );
        lines
    }

    #[test]
    fn open_file_lines_in_the_collectors_order_read_as_walked() {
        let lines = open_file_lines();
        for l in &lines[..5] {
            let walked = OpenFileFields::walk(l);
            if !l.contains('\\') {
                let fast = OpenFileFields::in_order(l);
                assert!(fast.is_some(), "{l}");
                assert_eq!(
                    fast.map(|f| (f.pid, f.command, f.fd, f.kind, f.deleted)),
                    walked.map(|f| (f.pid, f.command, f.fd, f.kind, f.deleted)),
                    "{l}"
                );
            }
        }
        // Out of order: walked, not read in place.
        assert!(OpenFileFields::in_order(&lines[5]).is_none() && OpenFileFields::walk(&lines[5]).is_some());
        // Fields in a form JSON refuses are left to the parser.
        for l in &lines[6..] {
            assert!(OpenFileFields::in_order(l).is_none(), "{l}");
        }
        // Every cut and many mutations: what is read in place is what the JSON parser
        // reads, wherever the parser reads the line at all.
        let fields =
            |f: OpenFileFields| (f.pid, f.command.to_string(), f.fd.to_string(), f.kind.to_string(), f.deleted);
        let check = |l: &str| {
            if let (Some(fast), Ok(slow)) = (OpenFileFields::in_order(l), serde_json::from_str::<OpenFileFields>(l)) {
                assert_eq!(fields(fast), fields(slow), "{l:?}");
            }
        };
        for line in &lines {
            compact::cuts_and_mutations(line, b"{}\",:0123456789-truefals\\ d", 0x9e37_79b9_7f4a_7c15, 3000, 1, check);
        }
    }

    fn record(pid: u32, command: &str, fd: &str, kind: &str, name: &str, deleted: bool) -> String {
        let f = OpenFile {
            pid,
            command: command.into(),
            fd: fd.into(),
            kind: kind.into(),
            name: name.into(),
            target: if deleted { format!("{name} (deleted)") } else { name.into() },
            deleted,
            size: Some(10),
            ..Default::default()
        };
        serde_json::to_string(&f).unwrap()
    }

    #[test]
    fn the_line_scan_agrees_with_the_json_parser() {
        let lines = [
            record(1, "init", "cwd", "DIR", "/", false),
            record(1, "init", "7", "REG", "/var/log/a", false),
            record(1, "init", "12", "", "/x", false),
            record(42, "java", "3", "REG", "/tmp/spool", true),
            // Escapes and quotes go to the parser; the fields must come out the same.
            record(42, "a\"b", "4", "REG", "/tmp/\"fd\":\"9\"\\", true),
            record(42, "java", "5", "sock", "socket:[123]", false),
            " { \"pid\" : 7, \"fd\": \"1\", \"type\": \"FIFO\" } ".trim().to_string(),
        ];
        let text = lines.join("\n");
        let d = Descriptors::parse(text.as_bytes()).unwrap();
        // The same counts through the parser alone.
        let mut want: BTreeMap<u32, (u64, u64, BTreeMap<String, u64>)> = BTreeMap::new();
        for l in &lines {
            let f: OpenFile = serde_json::from_str(l).unwrap();
            let Ok(fd) = f.fd.parse::<u64>() else { continue };
            let e = want.entry(f.pid).or_default();
            e.0 += 1;
            e.1 = e.1.max(fd);
            *e.2.entry(if f.kind.is_empty() { "unknown".into() } else { f.kind }).or_default() += 1;
        }
        let got: BTreeMap<u32, (u64, u64, BTreeMap<String, u64>)> =
            d.per_pid.iter().map(|(p, f)| (*p, (f.count, f.highest, f.by_kind.clone()))).collect();
        assert_eq!(got, want);
        assert_eq!(d.per_pid[&42].command, "java");
        assert_eq!(d.deleted.len(), 2);
        assert_eq!(d.deleted[1].name, "/tmp/\"fd\":\"9\"\\");
        // The scan checks the fields it reads, not the grammar: a trailing comma passes.
        // Anything it cannot read goes to the parser, which names the line.
        assert!(Descriptors::parse(b"{\"pid\":1,\"command\":\"x\",\"fd\":\"1\",\"type\":\"REG\",\"deleted\":false,}")
            .is_ok());
        assert!(Descriptors::parse(b"{garbage").unwrap_err().contains("line 1"));
    }
}
