//! The kernel log: `/dev/kmsg` records and the syslog(2) buffer parsed into one
//! [`Record`] type, and rendered the way util-linux `dmesg` and `dmesg -T` print them.
//!
//! `/dev/kmsg` gives one record per read: `prio,seq,ts_usec,flags[,more];message`, the
//! message with bytes below 0x20, above 0x7e and `\` escaped as `\xNN`, followed by
//! continuation lines ` KEY=value` that belong to it. syslog(2) gives raw text, one
//! `<prio>[ seconds.micros] message` line per record line.
//!
//! **How `dmesg -T` puts a wall-clock time on a record** (util-linux sys-utils/dmesg.c
//! and lib/monotonic.c): it reads, once, `boot = gettimeofday() - CLOCK_BOOTTIME` (a
//! `timeval`, so whole microseconds) and `suspended = CLOCK_BOOTTIME - CLOCK_MONOTONIC`
//! (printk's clock stops during suspend, CLOCK_BOOTTIME does not). Up to util-linux 2.38
//! (Debian 12, RHEL 9, Ubuntu 22.04) `record_localtime()` adds *whole seconds*:
//! `boot.tv_sec + (boottime.tv_sec - monotonic.tv_sec) + ts_usec / 10^6`, each part
//! truncated on its own ([`CtimeRule::WholeSeconds`]). Later releases (the sub-second
//! `--since` rework) add microseconds and truncate once:
//! `(boot_us + suspended_us + ts_usec) / 10^6` ([`CtimeRule::Microseconds`]). The two
//! differ by one second for records whose fractional parts add up past a second. The
//! result goes through `localtime_r` and `strftime("%a %b %e %H:%M:%S %Y")`.
//!
//! Text is printed like `dmesg` in a UTF-8 locale: `\xNN` escapes decoded, then bytes
//! that are not valid UTF-8 and control characters other than whitespace printed as
//! `\xNN`; a newline inside a message is followed by spaces as wide as the time prefix.

use std::fmt::Write as _;

use crate::manifest::Clocks;
use crate::time;

/// One kernel log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Syslog facility: 0 kern, 1 user, ... Lines that had no `<prio>` prefix (a pstore
    /// header, a continuation line) get 0 with level 4, the kernel's default level.
    pub facility: u32,
    /// Syslog level: 0 emerg ... 7 debug.
    pub level: u8,
    /// The record's sequence number (`/dev/kmsg` only).
    pub seq: Option<u64>,
    /// printk's timestamp in microseconds since boot (0 when the source had none).
    pub ts_usec: u64,
    /// The message as `dmesg` prints it (see the module docs), without the trailing newline.
    pub message: String,
}

/// Where the log text came from, told apart by its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `/dev/kmsg` records (`6,1,0,-;...`).
    Kmsg,
    /// The syslog(2) buffer or a `dmesg -r`/pstore dump (`<6>[    0.000000] ...`).
    Syslog,
}

/// Guesses the format of a kernel log text.
pub fn sniff(data: &[u8]) -> Format {
    match data.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b) if b.is_ascii_digit() => Format::Kmsg,
        _ => Format::Syslog,
    }
}

/// Parses a kernel log in either format.
pub fn parse(data: &[u8]) -> Vec<Record> {
    match sniff(data) {
        Format::Kmsg => parse_kmsg(data),
        Format::Syslog => parse_syslog(data),
    }
}

/// Parses concatenated `/dev/kmsg` records. Continuation lines (` KEY=value`) are
/// skipped, as dmesg skips them; lines whose header does not parse are dropped.
pub fn parse_kmsg(data: &[u8]) -> Vec<Record> {
    data.split(|&b| b == b'\n').filter(|l| !l.is_empty() && l[0] != b' ').filter_map(kmsg_record).collect()
}

fn kmsg_record(line: &[u8]) -> Option<Record> {
    let semi = line.iter().position(|&b| b == b';')?;
    let mut fields = std::str::from_utf8(&line[..semi]).ok()?.split(',');
    let prio: u32 = fields.next()?.trim().parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let ts_usec = fields.next()?.parse().ok()?;
    let message = printable(&unescape(&line[semi + 1..]));
    Some(Record { facility: prio >> 3, level: (prio & 7) as u8, seq: Some(seq), ts_usec, message })
}

/// Parses the syslog(2) buffer format. Like dmesg, a record ends where a newline is
/// followed by `<`; lines in between belong to the record before.
pub fn parse_syslog(data: &[u8]) -> Vec<Record> {
    let data = match data.iter().rposition(|&b| b != 0) {
        Some(last) => &data[..=last],
        None => return Vec::new(),
    };
    let mut records = Vec::new();
    let mut start = 0;
    for i in 0..=data.len() {
        if i == data.len() || (data[i] == b'\n' && data.get(i + 1) == Some(&b'<')) {
            let mut chunk = &data[start..i];
            if i == data.len() {
                chunk = chunk.strip_suffix(b"\n").unwrap_or(chunk);
            }
            if !chunk.is_empty() {
                records.push(syslog_record(chunk));
            }
            start = i + 1;
        }
    }
    records
}

fn syslog_record(mut s: &[u8]) -> Record {
    let (mut facility, mut level, mut ts_usec) = (0, 4, 0);
    if let Some(rest) = s.strip_prefix(b"<") {
        if let Some(end) = rest.iter().position(|&b| b == b'>') {
            if let Some(prio) = std::str::from_utf8(&rest[..end]).ok().and_then(|p| p.parse::<u32>().ok()) {
                (facility, level) = (prio >> 3, (prio & 7) as u8);
                s = &rest[end + 1..];
            }
        }
    }
    if s.len() > 1 && s[0] == b'[' && (s[1] == b' ' || s[1].is_ascii_digit()) {
        if let Some(end) = s.iter().position(|&b| b == b']') {
            if let Some(us) = std::str::from_utf8(&s[1..end]).ok().and_then(parse_seconds) {
                ts_usec = us;
                s = &s[end + 1..];
                s = s.strip_prefix(b" ").unwrap_or(s);
            }
        }
    }
    Record { facility, level, seq: None, ts_usec, message: printable(s) }
}

/// `   12.345678` to microseconds.
fn parse_seconds(s: &str) -> Option<u64> {
    let (sec, frac) = s.trim_start().split_once('.')?;
    let frac_digits = frac.len().min(6);
    let micros = frac[..frac_digits].parse::<u64>().ok()? * 10u64.pow((6 - frac_digits) as u32);
    Some(sec.parse::<u64>().ok()? * 1_000_000 + micros)
}

/// Decodes the kernel's `\xNN` escapes as util-linux `unhexmangle_to_buffer` does.
fn unescape(s: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 3 < s.len() && s[i + 1] == b'x' {
            if let (Some(h), Some(l)) = (hex(s[i + 2]), hex(s[i + 3])) {
                out.push(h << 4 | l);
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Text as dmesg's `safe_fwrite` prints it in a UTF-8 locale: invalid UTF-8 bytes and
/// control characters other than whitespace become `\xNN`, one per byte.
fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        let (good, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (g, b) = rest.split_at(e.valid_up_to());
                (std::str::from_utf8(g).unwrap_or_default(), b)
            }
        };
        for c in good.chars() {
            if c.is_control() && !matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r') {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf).bytes().for_each(|b| push_hex(&mut out, b));
            } else {
                out.push(c);
            }
        }
        if let Some((&b, tail)) = bad.split_first() {
            push_hex(&mut out, b);
            rest = tail;
        } else {
            rest = &[];
        }
    }
    out
}

fn push_hex(out: &mut String, b: u8) {
    let _ = write!(out, "\\x{b:02x}");
}

/// Which util-linux arithmetic turns a record time into wall-clock seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CtimeRule {
    /// util-linux up to 2.38: whole seconds of each part added.
    #[default]
    WholeSeconds,
    /// Later util-linux: microseconds added, truncated once.
    Microseconds,
}

/// What `dmesg -T` adds to a record's timestamp, from clocks read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootClock {
    rule: CtimeRule,
    /// gettimeofday() - CLOCK_BOOTTIME, in whole microseconds as `timersub` leaves it.
    boot_us: i64,
    /// CLOCK_BOOTTIME - CLOCK_MONOTONIC in microseconds.
    suspended_us: i64,
    /// The same as util-linux 2.38 computes it: difference of whole seconds.
    suspended_whole_s: i64,
}

impl BootClock {
    pub fn new(clocks: &Clocks, rule: CtimeRule) -> BootClock {
        let us = |ns: u64| (ns / 1000) as i64;
        let s = |ns: u64| (ns / 1_000_000_000) as i64;
        BootClock {
            rule,
            boot_us: us(clocks.realtime_ns) - us(clocks.boottime_ns),
            suspended_us: us(clocks.boottime_ns) - us(clocks.monotonic_ns),
            suspended_whole_s: s(clocks.boottime_ns) - s(clocks.monotonic_ns),
        }
    }

    /// Seconds since the epoch that `dmesg -T` shows for a record time.
    pub fn wall_secs(&self, ts_usec: u64) -> i64 {
        let ts = ts_usec as i64;
        match self.rule {
            CtimeRule::WholeSeconds => self.boot_us.div_euclid(1_000_000) + self.suspended_whole_s + ts / 1_000_000,
            CtimeRule::Microseconds => (self.boot_us + self.suspended_us + ts).div_euclid(1_000_000),
        }
    }
}

/// One output line (with its newline) as dmesg's `print_record` writes it: an empty
/// message is an empty line without prefix; inner newlines are indented to the prefix.
fn line(prefix: &str, message: &str) -> String {
    if message.is_empty() {
        return "\n".to_string();
    }
    let mut out = String::with_capacity(prefix.len() + message.len() + 1);
    out.push_str(prefix);
    let indent = " ".repeat(prefix.len());
    for (i, c) in message.char_indices() {
        out.push(c);
        if c == '\n' && i + 1 < message.len() {
            out.push_str(&indent);
        }
    }
    out.push('\n');
    out
}

/// A `dmesg -T` line for a record shown at `wall_secs` in a zone `utc_offset` seconds east.
pub fn ctime_line(wall_secs: i64, utc_offset: i64, message: &str) -> String {
    line(&format!("[{}] ", time::ctime(wall_secs, utc_offset)), message)
}

/// A plain `dmesg` line: `[    1.234567] message`.
pub fn plain_line(ts_usec: u64, message: &str) -> String {
    line(&format!("[{:5}.{:06}] ", ts_usec / 1_000_000, ts_usec % 1_000_000), message)
}

/// `dmesg -T` lines, one string per record. `utc_offset` gives the local offset at an
/// instant, as localtime_r would (on the host it can follow DST changes since boot).
pub fn ctime_lines<'a>(
    records: &'a [Record],
    clock: BootClock,
    mut utc_offset: impl FnMut(i64) -> i64 + 'a,
) -> impl Iterator<Item = String> + 'a {
    records.iter().map(move |r| {
        let secs = clock.wall_secs(r.ts_usec);
        ctime_line(secs, utc_offset(secs), &r.message)
    })
}

/// The log as `dmesg -T` prints it, given the clocks and one UTC offset (a bundle's).
pub fn render_ctime(records: &[Record], clocks: &Clocks, utc_offset: i64) -> String {
    ctime_lines(records, BootClock::new(clocks, CtimeRule::default()), |_| utc_offset).collect()
}

/// The log as plain `dmesg` prints it.
pub fn render_plain(records: &[Record]) -> String {
    records.iter().map(|r| plain_line(r.ts_usec, &r.message)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Read from /dev/kmsg on a Debian 12 VM (kernel 6.18), with the clocks read right
    // after and what util-linux 2.38.1 `dmesg -T` / `dmesg` printed then (LC_ALL=C.UTF-8).
    const KMSG: &[u8] = b"6,190,186796,-;acpi PNP0A08:00: _OSC: OS supports [ExtendedConfig ASPM ClockPM Segments MSI HPX-Type3]\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A08:00\n\
14,340,702663146,-;probe-0\n\
14,342,702940859,-;probe-2\n\
12,347,772557445,-;snapprobe tab\\x09here esc\\x1b[0m bs\\x5c utf8 caf\\xc3\\xa9 bad \\xff end\n\
11,348,772557459,-;snapprobe trailing\\x01\n";
    const CLOCKS: Clocks =
        Clocks { realtime_ns: 1_795_904_179_205_800_833, monotonic_ns: 871_722_200_328, boottime_ns: 871_722_201_571 };
    const DMESG_T: &str = "[Sat Nov 28 22:01:47 2026] acpi PNP0A08:00: _OSC: OS supports [ExtendedConfig ASPM ClockPM Segments MSI HPX-Type3]
[Sat Nov 28 22:13:29 2026] probe-0
[Sat Nov 28 22:13:29 2026] probe-2
[Sat Nov 28 22:14:39 2026] snapprobe tab\there esc\\x1b[0m bs\\ utf8 café bad \\xff end
[Sat Nov 28 22:14:39 2026] snapprobe trailing\\x01
";
    const DMESG: &str =
        "[    0.186796] acpi PNP0A08:00: _OSC: OS supports [ExtendedConfig ASPM ClockPM Segments MSI HPX-Type3]
[  702.663146] probe-0
[  702.940859] probe-2
[  772.557445] snapprobe tab\there esc\\x1b[0m bs\\ utf8 café bad \\xff end
[  772.557459] snapprobe trailing\\x01
";
    // The same records from syslog(2) READ_ALL on that VM: raw bytes, no escapes.
    const SYSLOG: &[u8] = b"<14>[  772.557417] snapprobe multi line\n<12>[  772.557424] second line\n\
<12>[  772.557445] snapprobe tab\there esc\x1b[0m bs\\ utf8 caf\xc3\xa9 bad \xff end\n<11>[  772.557459] snapprobe trailing\x01\n\0\0";

    #[test]
    fn kmsg_records_parse_and_render_like_util_linux_2_38() {
        let recs = parse(KMSG);
        assert_eq!(recs.len(), 5, "continuation lines belong to their record");
        assert_eq!((recs[0].facility, recs[0].level, recs[0].seq, recs[0].ts_usec), (0, 6, Some(190), 186_796));
        assert_eq!((recs[1].facility, recs[1].level), (1, 6));
        assert_eq!(render_ctime(&recs, &CLOCKS, 0), DMESG_T);
        assert_eq!(render_plain(&recs), DMESG);
    }

    #[test]
    fn whole_second_rule_differs_from_microsecond_rule_only_past_a_carry() {
        // Boot time is ...307.483599 s: probe-0 at 702.663146 s carries into the next second.
        let old = BootClock::new(&CLOCKS, CtimeRule::WholeSeconds);
        let new = BootClock::new(&CLOCKS, CtimeRule::Microseconds);
        assert_eq!(old.wall_secs(702_663_146), 1_795_904_009);
        assert_eq!(new.wall_secs(702_663_146), 1_795_904_010);
        assert_eq!(old.wall_secs(186_796), new.wall_secs(186_796));
        // After a suspend of 3.5 s, 2.38 adds the difference of the clocks' whole seconds.
        let c = Clocks {
            realtime_ns: 1_000_000_000_400_000_000,
            monotonic_ns: 10_000_000_000,
            boottime_ns: 13_500_000_000,
        };
        assert_eq!(BootClock::new(&c, CtimeRule::WholeSeconds).wall_secs(0), 999_999_986 + 3);
        assert_eq!(BootClock::new(&c, CtimeRule::Microseconds).wall_secs(0), 999_999_990);
    }

    #[test]
    fn syslog_buffer_parses_to_the_same_records() {
        let recs = parse(SYSLOG);
        assert_eq!(recs.len(), 4);
        assert_eq!((recs[0].facility, recs[0].level, recs[0].seq), (1, 6, None));
        let kmsg = parse(KMSG);
        assert_eq!(recs[2].message, kmsg[3].message);
        assert_eq!(render_plain(&recs[2..]), DMESG.lines().skip(3).map(|l| format!("{l}\n")).collect::<String>());
    }

    #[test]
    fn odd_lines_follow_dmesg() {
        let recs = parse_syslog(b"Panic#1 Part2\n<6>[    2.608284] mlx5_core: ok\ntail line\n<4>no time\n<6>[1.5] x");
        assert_eq!(recs[0], Record { facility: 0, level: 4, seq: None, ts_usec: 0, message: "Panic#1 Part2".into() });
        assert_eq!(recs[1].message, "mlx5_core: ok\ntail line");
        assert_eq!((recs[2].ts_usec, recs[2].message.as_str()), (0, "no time"));
        assert_eq!(recs[3].ts_usec, 1_500_000);
        assert_eq!(plain_line(2_608_284, "a\nb\n"), "[    2.608284] a\n               b\n\n");
        assert_eq!(plain_line(0, "a\n\nb"), "[    0.000000] a\n               \n               b\n");
        assert_eq!(ctime_line(0, 0, ""), "\n");
        assert_eq!(printable(b"\xe2\x82(\xc2\x85ok\0"), "\\xe2\\x82(\\xc2\\x85ok\\x00");
        assert_eq!(unescape(b"a\\x4"), b"a\\x4");
        assert!(parse_kmsg(b"garbage;x\n6,1;short\n").is_empty());
        assert!(parse(b"").is_empty());
    }

    /// Real logs from ../shared/corpus (see its PROVENANCE.md), read in place.
    #[test]
    fn corpus_logs_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/dmesg/gpud");
        if !dir.exists() {
            println!("SKIPPED corpus_logs_parse: {} is absent", dir.display());
            return;
        }
        let kmsg = std::fs::read(dir.join("dev_kmsg.1.log")).unwrap();
        let recs = parse(&kmsg);
        assert_eq!(recs.len(), kmsg.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count());
        assert_eq!(recs[0].seq, Some(3964));
        assert_eq!(render_plain(&recs[..1]), "[  206.764307] nvidia-nvswitch2: open (major=510)\n");
        let pstore = std::fs::read(dir.join("pstore-erst-panic.dmesg.txt")).unwrap();
        let recs = parse(&pstore);
        let prefixed = pstore.split(|&b| b == b'\n').filter(|l| l.starts_with(b"<")).count();
        assert_eq!(recs.len(), prefixed + 1, "the leading pstore header is one record");
        assert_eq!(recs[1].ts_usec, 2_608_284);
        assert!(recs.iter().all(|r| r.level <= 7));
    }
}
