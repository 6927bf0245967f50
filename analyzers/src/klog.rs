//! The kernel log as lines for rules, whatever form the bundle holds it in.
//!
//! snap's own bundles carry `kernel/kmsg.txt` (raw `/dev/kmsg` records, or the syslog(2)
//! buffer as a fallback), parsed with [`snap_bundle::kmsg`], and `kernel/dmesg.txt`
//! (`dmesg -T` text). Third-party trees (sosreports, hand-made directories, copies of
//! `/var/log`) carry `var/log/kern.log`, `var/log/dmesg`, `sos_commands/kernel/dmesg*`,
//! or only `var/log/messages` / `var/log/syslog`. The first source present is read, in
//! that order ([`SOURCES`]).
//!
//! Every line is normalised to a [`LogLine`]: the message with its prefixes stripped,
//! the time as written and the uptime in seconds when the line had one. Prefixes
//! understood, in the order they can be stacked:
//!
//! - a syslog priority `<6>`;
//! - `dmesg --decode`'s `kern  :warn  : `;
//! - a syslog time, classic `Mar  1 12:00:00` or ISO `2024-04-17T00:26:33.540821+05:30`,
//!   followed by `host kernel: ` (lines of other programs are dropped);
//! - `dmesg --time-format=iso`'s `2025-01-21T02:21:33,498559+00:00 `;
//! - `[  123.456789] ` (plain dmesg, also after a syslog prefix) or `[Sat Nov 28 22:01:47 2026] `
//!   (`dmesg -T`).
//!
//! Lines without any prefix (RHEL 6 dmesg, pstore headers, continuation lines) are kept
//! as they are, without time.

use std::collections::BTreeMap;
use std::rc::Rc;

use snap_bundle::kmsg;

use crate::{Evidence, Finding, Input, Need, Severity, Skip};

/// Where the kernel log is looked for, in order of preference. An entry ending in `*`
/// matches every entry with that prefix (the first in sorted order is read).
pub const SOURCES: &[&str] = &[
    snap_bundle::names::KMSG,
    snap_bundle::names::DMESG,
    "var/log/kern.log",
    "var/log/dmesg",
    "sos_commands/kernel/dmesg*",
    "var/log/messages",
    "var/log/syslog",
];

/// One kernel log line, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// The bundle entry it came from.
    pub entry: String,
    /// Its 1-based line number in that entry.
    pub line_no: usize,
    /// The time as the source wrote it (syslog or ISO time, `dmesg -T` time, or uptime).
    pub time: Option<String>,
    /// printk's seconds since boot, when the line had them.
    pub uptime_s: Option<f64>,
    /// The message, without time, priority or syslog prefixes.
    pub message: String,
}

impl LogLine {
    /// `entry:line: message`, for evidence.
    pub fn cite(&self) -> String {
        format!("{}:{}: {}", self.entry, self.line_no, self.message)
    }

    /// The time to show: as written, else nothing.
    pub fn when(&self) -> Option<String> {
        self.time.clone().or_else(|| self.uptime_s.map(|s| format!("{s:.6}")))
    }
}

/// The bundle's kernel log from the first source present, parsed once per analysis and
/// shared by the rules that read it.
pub fn read(input: &Input) -> Need<Rc<Vec<LogLine>>> {
    Need::clone(&input.shared("klog::read", || read_uncached(input).map(Rc::new)))
}

fn read_uncached(input: &Input) -> Need<Vec<LogLine>> {
    let entries = input.entries();
    for source in SOURCES {
        let entry = match source.strip_suffix('*') {
            Some(prefix) => match entries.iter().find(|e| e.starts_with(prefix)) {
                Some(e) => e.clone(),
                None => continue,
            },
            None => source.to_string(),
        };
        match input.raw(&entry) {
            Ok(bytes) => return Ok(lines_of(&entry, &bytes)),
            Err(Skip::Missing(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Skip::Missing(vec![SOURCES.join(" or ")]))
}

/// Normalises one entry's bytes into lines (see the module docs).
pub fn lines_of(entry: &str, bytes: &[u8]) -> Vec<LogLine> {
    let kmsg_records = entry == snap_bundle::names::KMSG && kmsg::sniff(bytes) == kmsg::Format::Kmsg;
    let syslog_file = entry.ends_with("messages") || entry.ends_with("syslog");
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
            continue;
        }
        if kmsg_records {
            // A `/dev/kmsg` record; continuation lines (` KEY=value`) are dropped.
            if raw[0] == b' ' {
                continue;
            }
            if let Some(r) = kmsg::parse_kmsg(raw).into_iter().next() {
                let secs = r.ts_usec as f64 / 1e6;
                out.push(LogLine {
                    entry: entry.to_string(),
                    line_no,
                    time: Some(format!("{}.{:06}", r.ts_usec / 1_000_000, r.ts_usec % 1_000_000)),
                    uptime_s: Some(secs),
                    message: r.message,
                });
            }
            continue;
        }
        let text = snap_bundle::text::lossy(raw);
        if let Some(p) = parse_line(&text, syslog_file) {
            out.push(LogLine {
                entry: entry.to_string(),
                line_no,
                time: p.time,
                uptime_s: p.uptime_s,
                message: p.message,
            });
        }
    }
    out
}

/// A line's parts once its prefixes are stripped.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub time: Option<String>,
    pub uptime_s: Option<f64>,
    pub message: String,
}

/// Strips the prefixes of one text line. `None` for a syslog line of another program
/// than the kernel, and, when `syslog_only`, for lines without a syslog prefix.
pub fn parse_line(line: &str, syslog_only: bool) -> Option<Parsed> {
    let mut s = line.trim_end();
    let mut time = None;
    let mut uptime_s = None;
    s = strip_priority(s);
    s = strip_decode(s);
    let mut had_syslog = false;
    if let Some((t, rest)) = classic_syslog_time(s) {
        // `Mar  1 12:00:00 host tag: message`: only the kernel's lines are kept.
        time = Some(t.to_string());
        s = kernel_tag(rest)?;
        had_syslog = true;
    } else if let Some((t, rest)) = iso_time(s) {
        time = Some(t.to_string());
        match kernel_tag(rest) {
            Some(m) => {
                s = m;
                had_syslog = true;
            }
            // `host prog[pid]: ...` is another program's syslog line.
            None if is_program_tag(rest) => return None,
            None => s = rest,
        }
    }
    if syslog_only && !had_syslog {
        return None;
    }
    if let Some((inner, rest)) = bracketed(s) {
        if let Some(secs) = uptime(inner) {
            uptime_s = Some(secs);
            time.get_or_insert_with(|| inner.trim().to_string());
            s = rest;
        } else if is_ctime(inner) {
            time.get_or_insert_with(|| inner.to_string());
            s = rest;
        }
    }
    Some(Parsed { time, uptime_s, message: s.to_string() })
}

/// `<6>` at the start.
fn strip_priority(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix('<') {
        if let Some(end) = rest.find('>') {
            if end > 0 && end <= 3 && rest[..end].bytes().all(|b| b.is_ascii_digit()) {
                return &rest[end + 1..];
            }
        }
    }
    s
}

const FACILITIES: &[&str] =
    &["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp"];
const LEVELS: &[&str] = &["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"];

/// `kern  :warn  : ` (dmesg --decode).
fn strip_decode(s: &str) -> &str {
    let Some((fac, rest)) = s.split_once(':') else { return s };
    if !FACILITIES.contains(&fac.trim_end()) || fac.starts_with(' ') {
        return s;
    }
    let Some((lvl, rest)) = rest.split_once(':') else { return s };
    if !LEVELS.contains(&lvl.trim_end()) || lvl.starts_with(' ') {
        return s;
    }
    rest.strip_prefix(' ').unwrap_or(rest)
}

const MONTHS: &[&str] = &["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn is_hms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 8 && b[2] == b':' && b[5] == b':' && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
}

/// `Mar  1 12:00:00 ` (also `Feb  09 ...`): the time and the rest.
fn classic_syslog_time(s: &str) -> Option<(&str, &str)> {
    if s.len() < 15 || !MONTHS.contains(&s.get(..3)?) || s.as_bytes()[3] != b' ' {
        return None;
    }
    let after_month = s[4..].trim_start_matches(' ');
    let day_len = after_month.bytes().take_while(u8::is_ascii_digit).count();
    if day_len == 0 || day_len > 2 {
        return None;
    }
    let rest = after_month[day_len..].strip_prefix(' ')?;
    let hms = rest.get(..8)?;
    if !is_hms(hms) {
        return None;
    }
    let end = s.len() - rest.len() + 8;
    Some((&s[..end], s[end..].strip_prefix(' ')?))
}

/// `2024-04-17T00:26:33.540821+05:30 ` or `2025-01-21T02:21:33,498559+00:00 `.
fn iso_time(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let ok = b.len() > 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && [0, 1, 2, 3, 5, 6, 8, 9].iter().all(|&i| b[i].is_ascii_digit())
        && is_hms(s.get(11..19)?);
    if !ok {
        return None;
    }
    let end = s.find(' ')?;
    let tail = &s[19..end];
    if !tail.bytes().all(|c| c.is_ascii_digit() || matches!(c, b',' | b'.' | b'+' | b'-' | b':' | b'Z')) {
        return None;
    }
    Some((&s[..end], &s[end + 1..]))
}

/// `host kernel: message` to the message.
fn kernel_tag(s: &str) -> Option<&str> {
    let (_host, rest) = s.split_once(' ')?;
    let rest = rest.strip_prefix("kernel:")?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// `host prog[123]: ...` or `host prog: ...` with a hostname-like first word.
fn is_program_tag(s: &str) -> bool {
    let mut words = s.splitn(3, ' ');
    let (Some(host), Some(tag)) = (words.next(), words.next()) else { return false };
    let host_like =
        !host.is_empty() && host.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    host_like && tag.ends_with("]:") && tag.contains('[')
}

/// `[inner] rest`.
fn bracketed(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    let after = &rest[end + 1..];
    Some((&rest[..end], after.strip_prefix(' ').unwrap_or(after)))
}

/// `  123.456789` to seconds.
fn uptime(inner: &str) -> Option<f64> {
    let t = inner.trim_start();
    let (a, b) = t.split_once('.')?;
    if a.is_empty() || b.is_empty() || !a.bytes().all(|c| c.is_ascii_digit()) || !b.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    t.parse().ok()
}

/// `Sat Nov 28 22:01:47 2026` (dmesg -T, day padded with a space when below 10).
fn is_ctime(inner: &str) -> bool {
    let w: Vec<&str> = inner.split_whitespace().collect();
    w.len() == 5
        && DAYS.contains(&w[0])
        && MONTHS.contains(&w[1])
        && w[2].parse::<u8>().is_ok()
        && is_hms(w[3])
        && w[4].len() == 4
        && w[4].parse::<u16>().is_ok()
}

/// Events of one kind grouped by subject: counts, first and last time, evidence lines.
#[derive(Debug, Default)]
pub struct Groups {
    groups: BTreeMap<String, Group>,
}

/// Occurrences of one subject.
#[derive(Debug, Default, Clone)]
pub struct Group {
    pub count: usize,
    pub first: Option<String>,
    pub last: Option<String>,
    /// Seconds since boot of the latest occurrence, when its line had them.
    pub last_uptime_s: Option<f64>,
    /// Evidence per entry: cited lines, at most [`MAX_EVIDENCE`] in all.
    pub lines: Vec<(String, String)>,
    /// Free-form per-subject details a rule keeps (first value wins).
    pub details: BTreeMap<String, String>,
}

/// Evidence lines kept per subject.
pub const MAX_EVIDENCE: usize = 10;

impl Groups {
    /// Records one occurrence of `subject` seen on `line`; returns its group.
    pub fn add(&mut self, subject: &str, line: &LogLine) -> &mut Group {
        let g = self.groups.entry(subject.to_string()).or_default();
        g.count += 1;
        if let Some(t) = line.when() {
            g.first.get_or_insert_with(|| t.clone());
            g.last = Some(t);
        }
        if let Some(u) = line.uptime_s {
            g.last_uptime_s = Some(g.last_uptime_s.map_or(u, |l| l.max(u)));
        }
        g.push(line);
        g
    }

    pub fn into_groups(self) -> impl Iterator<Item = (String, Group)> {
        self.groups.into_iter()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

impl Group {
    /// Adds a line to the evidence (beyond [`MAX_EVIDENCE`] it is only counted).
    pub fn push(&mut self, line: &LogLine) {
        if self.lines.len() < MAX_EVIDENCE {
            self.lines.push((line.entry.clone(), format!("line {}: {}", line.line_no, line.message)));
        }
    }

    /// The evidence, one [`Evidence`] per entry.
    pub fn evidence(&self) -> Vec<Evidence> {
        let mut by_entry: BTreeMap<&str, Evidence> = BTreeMap::new();
        for (entry, text) in &self.lines {
            let e = by_entry.remove(entry.as_str()).unwrap_or_else(|| Evidence::entry(entry));
            by_entry.insert(entry, e.line(text.clone()));
        }
        by_entry.into_values().collect()
    }

    /// A finding for this group: `count`, `first_time`, `last_time` facts and the evidence.
    pub fn finding(&self, rule: &str, severity: Severity, subject: &str, summary: String) -> Finding {
        let mut f =
            Finding::new(rule, severity, subject, format!("{summary}{}", self.span())).fact("count", self.count);
        if let Some(t) = &self.first {
            f = f.fact("first_time", t.clone());
        }
        if let Some(t) = &self.last {
            f = f.fact("last_time", t.clone());
        }
        if let Some(u) = self.last_uptime_s {
            f = f.fact("last_uptime_s", u);
        }
        for e in self.evidence() {
            f = f.evidence(e);
        }
        f
    }

    /// ` between FIRST and LAST` / ` at FIRST` / empty.
    pub fn span(&self) -> String {
        match (&self.first, &self.last) {
            (Some(a), Some(b)) if a != b => format!(" between {a} and {b}"),
            (Some(a), _) => format!(" at {a}"),
            _ => String::new(),
        }
    }
}

/// Kernel-log events this long before the capture are old news: reported one severity
/// level lower (see [`aged`]).
pub const RECENT_SECONDS: f64 = 3600.0;

/// The sentence the kernel-log rules add to their thresholds.
#[macro_export]
macro_rules! aged_note {
    () => {
        " Events whose last occurrence was logged more than an hour before the capture \
         (seconds since boot of the line against the capture's uptime) are reported one \
         level lower, with their age; when either time is unknown the level stands."
    };
}

/// Seconds since boot at capture time: the manifest's boottime clock, else proc/uptime.
pub fn capture_uptime(input: &Input) -> Option<f64> {
    if let Some(ns) = input.manifest().map(|m| m.clocks.boottime_ns).filter(|ns| *ns > 0) {
        return Some(ns as f64 / 1e9);
    }
    let text = input.text("proc/uptime").ok()?;
    text.split_whitespace().next()?.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0)
}

/// Adds the age of the latest event (`age_s`, and to the summary) to a finding about
/// kernel-log events, and lowers its severity by one level when that is more than
/// [`RECENT_SECONDS`] before the capture. `now` is [`capture_uptime`].
pub fn aged(mut f: Finding, now: Option<f64>, last_uptime_s: Option<f64>) -> Finding {
    let (Some(now), Some(last)) = (now, last_uptime_s) else { return f };
    let age = now - last;
    if !age.is_finite() || age < 0.0 {
        // A line from after the capture: another boot's log, or a clock that is off.
        return f;
    }
    f.summary.push_str(&format!("; the last {} before the capture", human_age(age)));
    if age > RECENT_SECONDS {
        f.severity = match f.severity {
            Severity::Critical => Severity::Warning,
            _ => Severity::Info,
        };
    }
    f.fact("age_s", (age * 10.0).round() / 10.0)
}

/// [`aged`] for findings made by [`Group::finding`], which carry `last_uptime_s`.
pub fn aged_all(input: &Input, findings: Vec<Finding>) -> Vec<Finding> {
    let now = capture_uptime(input);
    findings
        .into_iter()
        .map(|f| {
            let last = f.facts.get("last_uptime_s").and_then(|v| v.as_f64());
            aged(f, now, last)
        })
        .collect()
}

/// `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn human_age(s: f64) -> String {
    let s = s.max(0.0) as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Text between `start` and the next `end` (or the end of `s`).
pub fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let rest = &s[from..];
    Some(rest.find(end).map_or(rest, |e| &rest[..e]))
}

/// `key:NNNkB` in a message, as kB.
pub fn kb(s: &str, key: &str) -> Option<u64> {
    let v = between(s, key, "kB")?;
    v.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Parsed {
        parse_line(line, false).unwrap()
    }

    #[test]
    fn plain_dmesg() {
        let l =
            p("[27742.909073] kworker/0:0 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=-1, oom_score_adj=0");
        assert_eq!(l.uptime_s, Some(27742.909073));
        assert_eq!(l.time.as_deref(), Some("27742.909073"));
        assert!(l.message.starts_with("kworker/0:0 invoked"));
        let l = p("[    0.000000] Initializing cgroup subsys cpu");
        assert_eq!((l.uptime_s, l.message.as_str()), (Some(0.0), "Initializing cgroup subsys cpu"));
        // Bracketed words at the start of a message are not timestamps.
        assert_eq!(p("[drm] Initialized cirrus").message, "[drm] Initialized cirrus");
        assert_eq!(p("[    2.939498] [TTM] Initializing pool allocator").message, "[TTM] Initializing pool allocator");
    }

    #[test]
    fn ctime_dmesg() {
        let l = p("[Sun Feb 23 16:24:18 2025] NVRM: GPU Board Serial Number: 1650124014249");
        assert_eq!(l.time.as_deref(), Some("Sun Feb 23 16:24:18 2025"));
        assert_eq!(l.uptime_s, None);
        assert_eq!(l.message, "NVRM: GPU Board Serial Number: 1650124014249");
        assert_eq!(p("[Sat Nov  8 02:01:47 2026] x").message, "x");
    }

    #[test]
    fn decode_iso_dmesg() {
        let l = p("kern  :warn  : 2025-01-21T08:43:30,287197+00:00 Out of memory: Killed process 123, UID 48, (httpd)");
        assert_eq!(l.time.as_deref(), Some("2025-01-21T08:43:30,287197+00:00"));
        assert_eq!(l.message, "Out of memory: Killed process 123, UID 48, (httpd)");
        // A message whose second word ends in a colon is not a syslog tag.
        assert_eq!(
            p("kern  :info  : 2025-01-17T15:36:15,345155+00:00 usb 1-2: New USB device").message,
            "usb 1-2: New USB device"
        );
    }

    #[test]
    fn kern_log_syslog_lines() {
        let l = p("Jun  4 06:25:10 host-name kernel: [47841183.622537] lxcfs[1925937]: segfault at 0 ip 00007f1ba005d4ea sp 00007f1b7cfc1b10 error 4 in liblxcfs.so [7f1ba0055000+f000]");
        assert_eq!(l.time.as_deref(), Some("Jun  4 06:25:10"));
        assert_eq!(l.uptime_s, Some(47841183.622537));
        assert!(l.message.starts_with("lxcfs[1925937]: segfault at 0"));
        let l =
            p("Feb 04 00:07:13 ic-hrvart4-s4anq599 kernel: INFO: task df:1177107 blocked for more than 120 seconds.");
        assert_eq!((l.time.as_deref(), l.uptime_s), (Some("Feb 04 00:07:13"), None));
        assert_eq!(l.message, "INFO: task df:1177107 blocked for more than 120 seconds.");
        let l = p("Feb  09 17:24:13 compute4 kernel: [13526370.730586] o-hm0: dropped over-mtu packet: 1760 > 1500");
        assert_eq!(l.message, "o-hm0: dropped over-mtu packet: 1760 > 1500");
        // Indented continuation text is kept.
        let l = p("Feb 04 00:07:13 h kernel:       Tainted: P           O      5.15.0-53-generic");
        assert_eq!(l.message, "      Tainted: P           O      5.15.0-53-generic");
        // Other programs' lines are not kernel lines.
        assert_eq!(parse_line("Mar 24 08:00:27 testnode02 nova-compute[3334105]: Traceback", false), None);
    }

    #[test]
    fn rfc5424ish_syslog_lines() {
        let l = p("<3>2024-04-17T00:26:33.540832+05:30 host-name kernel: [   29.782109] print_req_error: critical medium error, dev sdb, sector 8724376");
        assert_eq!(l.time.as_deref(), Some("2024-04-17T00:26:33.540832+05:30"));
        assert_eq!(l.uptime_s, Some(29.782109));
        assert_eq!(l.message, "print_req_error: critical medium error, dev sdb, sector 8724376");
        assert_eq!(parse_line("2024-04-17T00:26:33.540832+05:30 host-name sshd[12]: Accepted", false), None);
    }

    #[test]
    fn syslog_buffer_and_unprefixed_lines() {
        let l = p("<6>[    2.608284] mlx5_core 0000:41:00.1: 63.008 Gb/s available PCIe bandwidth");
        assert_eq!(l.uptime_s, Some(2.608284));
        assert_eq!(l.message, "mlx5_core 0000:41:00.1: 63.008 Gb/s available PCIe bandwidth");
        let l = p("bnx2 0000:0b:00.0: eth0: using MSIX");
        assert_eq!((l.time, l.uptime_s, l.message.as_str()), (None, None, "bnx2 0000:0b:00.0: eth0: using MSIX"));
        assert_eq!(parse_line("bnx2 0000:0b:00.0: eth0: using MSIX", true), None);
    }

    #[test]
    fn kmsg_entry_keeps_line_numbers() {
        let data = b"6,3964,206764307,-;nvidia-nvswitch2: open (major=510)\n SUBSYSTEM=pci\n3,3965,206764310,-;Out of memory: Killed process 1 (x)\n";
        let lines = lines_of("kernel/kmsg.txt", data);
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[1].line_no, lines[1].uptime_s), (3, Some(206.76431)));
        assert_eq!(lines[1].time.as_deref(), Some("206.764310"));
        assert_eq!(lines[1].message, "Out of memory: Killed process 1 (x)");
        // A syslog(2)-buffer fallback in kmsg.txt is read as text.
        let lines = lines_of("kernel/kmsg.txt", b"<6>[    1.500000] hello\n");
        assert_eq!((lines[0].uptime_s, lines[0].message.as_str()), (Some(1.5), "hello"));
    }

    #[test]
    fn messages_file_keeps_only_kernel_lines() {
        let data = b"May 18 15:13:36 h wrapper[11375]: Launching a JVM...\nMay 18 15:13:37 h kernel: Out of memory: Kill process 1 (java) score 9 or sacrifice child\n";
        let lines = lines_of("var/log/messages", data);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].line_no, 2);
    }

    #[test]
    fn reads_first_source_present() {
        use crate::rules::testing::bundle_with;
        let b = bundle_with(&[("var/log/kern.log", "Jun  8 10:48:13 c kernel: [1.0] a\n"), ("var/log/messages", "")]);
        let lines = read(&Input::new(&b)).unwrap();
        assert_eq!((lines[0].entry.as_str(), lines[0].message.as_str()), ("var/log/kern.log", "a"));
        let b = bundle_with(&[("sos_commands/kernel/dmesg_-T", "[Sun Feb 23 16:24:18 2025] b\n")]);
        assert_eq!(read(&Input::new(&b)).unwrap()[0].message, "b");
        let b = bundle_with(&[("proc/loadavg", "0 0 0 1/1 1\n")]);
        assert!(matches!(read(&Input::new(&b)), Err(Skip::Missing(_))));
    }

    #[test]
    fn aged_lowers_old_events_one_level_and_keeps_unknown_ones() {
        let f = |sev| Finding::new("r", sev, "s", "x");
        assert_eq!(aged(f(Severity::Critical), Some(10_000.0), Some(100.0)).severity, Severity::Warning);
        assert_eq!(aged(f(Severity::Warning), Some(10_000.0), Some(100.0)).severity, Severity::Info);
        assert_eq!(aged(f(Severity::Info), Some(10_000.0), Some(100.0)).severity, Severity::Info);
        assert_eq!(aged(f(Severity::Critical), Some(3_700.0), Some(100.0)).severity, Severity::Critical);
        assert_eq!(aged(f(Severity::Critical), None, Some(100.0)).severity, Severity::Critical);
        assert_eq!(aged(f(Severity::Critical), Some(10_000.0), None).severity, Severity::Critical);
        // A line from after the capture (another boot's log): no age, no change.
        let later = aged(f(Severity::Critical), Some(100.0), Some(10_000.0));
        assert_eq!((later.severity, later.summary.as_str()), (Severity::Critical, "x"));
        assert_eq!(human_age(59.0), "59 s");
        assert_eq!(human_age(3_000.0), "50 min");
        assert_eq!(human_age(7_500.0), "2 h 5 min");
        assert_eq!(human_age(200_000.0), "2 d 7 h");
    }

    #[test]
    fn helpers() {
        let m = "Killed process 955 (gnome-shell) total-vm:3289540kB, anon-rss:77868kB, file-rss:107372kB";
        assert_eq!(kb(m, "anon-rss:"), Some(77868));
        assert_eq!(kb(m, "shmem-rss:"), None);
        assert_eq!(between(m, "(", ")"), Some("gnome-shell"));
    }
}
