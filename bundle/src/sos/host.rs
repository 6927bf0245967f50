//! The host facts of a sos report's made manifest: hostname, kernel, CPUs, boot and
//! capture times, time zone, and uptime's line, each with the file it came from.

use super::uptime;
use super::{text, Files, Translation, UptimeLine, SOS_MANIFEST};
use crate::manifest::{Clocks, HostFacts};

/// The first of `names` the report holds, with its text.
fn first_of(files: &dyn Files, names: &[&str], notes: &mut Vec<String>) -> Option<(String, String)> {
    names.iter().find_map(|n| text(files, n, notes).map(|t| (n.to_string(), t)))
}

pub(super) fn host(files: &dyn Files, sos_manifest: Option<&serde_json::Value>, t: &mut Translation) {
    let notes = &mut t.report.notes;
    let mut h = HostFacts::default();
    let mut facts: Vec<(&str, String, String)> = Vec::new();
    if let Some((from, text)) =
        first_of(files, &["sos_commands/host/hostname", "sos_commands/general/hostname", "etc/hostname"], notes)
    {
        if let Some(name) = text.split_whitespace().next() {
            h.hostname = name.to_string();
            facts.push(("hostname", h.hostname.clone(), from));
        }
    }
    if let Some((from, text)) =
        first_of(files, &["sos_commands/kernel/uname_-a", "sos_commands/general/uname_-a"], notes)
    {
        if let Some(u) = Uname::parse(&text) {
            h.kernel_release = u.release.clone();
            h.kernel_version = u.version;
            h.arch = u.arch.clone();
            h.endianness = endianness(&u.arch).to_string();
            facts.push(("kernel", format!("{} {}", u.release, u.arch), from));
        }
    }
    if let Some(list) = text(files, "sys/devices/system/cpu/online", notes) {
        if let Some(n) = crate::cpulist::count(&list) {
            h.online_cpus = n;
            facts.push(("online CPUs", n.to_string(), "sys/devices/system/cpu/online".into()));
        }
    }
    if let Some(stat) = text(files, "proc/stat", notes) {
        let cpus = stat
            .lines()
            .filter(|l| l.strip_prefix("cpu").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit())))
            .count() as u32;
        if h.online_cpus == 0 && cpus > 0 {
            h.online_cpus = cpus;
            facts.push(("online CPUs", cpus.to_string(), "proc/stat".into()));
        }
        if let Some(btime) = stat.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok()) {
            h.boot_time = btime;
            facts.push(("boot time", crate::time::iso_utc(btime as i64), "proc/stat".into()));
        }
    }
    if let Some(id) = text(files, "proc/sys/kernel/random/boot_id", notes) {
        h.boot_id = id.trim().to_string();
    }
    let zone = first_of(files, &["sos_commands/systemd/timedatectl", "sos_commands/date/timedatectl"], notes)
        .and_then(|(from, text)| timedatectl_zone(&text).map(|z| (z, from)));
    if let Some(((abbrev, offset), from)) = &zone {
        h.timezone = abbrev.clone();
        h.utc_offset_seconds = *offset;
        facts.push(("time zone", format!("{abbrev} ({offset:+} s)"), from.clone()));
    }
    let captured = capture_time(files, sos_manifest, zone.as_ref().map(|z| z.0 .1), notes);
    let mut clocks = Clocks::default();
    if let Some((secs, from)) = &captured {
        clocks.realtime_ns = secs.saturating_mul(1_000_000_000);
        facts.push(("captured", crate::time::iso_utc(*secs as i64), from.clone()));
        if h.boot_time > 0 && *secs > h.boot_time {
            clocks.boottime_ns = (secs - h.boot_time).saturating_mul(1_000_000_000);
        }
    }
    if let Some((from, text)) = first_of(files, &["sos_commands/host/uptime", "sos_commands/general/uptime"], notes) {
        match uptime::parse_uptime(&text) {
            Ok(u) => {
                let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
                t.report.uptime = Some(UptimeLine { entry: from, line, load: u.load, up_seconds: u.up_seconds });
            }
            Err(e) => notes.push(format!("{from}: {e}")),
        }
    }
    // Without a capture time, the time since boot comes from uptime (to the minute).
    if clocks.boottime_ns == 0 {
        if let Some(up) = t.report.uptime.as_ref().and_then(|u| u.up_seconds.map(|s| (s, u.entry.clone()))) {
            clocks.boottime_ns = up.0.saturating_mul(1_000_000_000);
            facts.push(("up", format!("{} s", up.0), up.1));
        }
    }
    for (name, value, from) in facts {
        t.fact(name, value, &from);
    }
    t.manifest.host = h;
    t.manifest.clocks = clocks;
    t.manifest.kernel_log_source = Some("sos report".into());
}

struct Uname {
    release: String,
    version: String,
    arch: String,
}

/// Machine names `uname -m` prints on Linux.
const ARCHES: [&str; 14] = [
    "x86_64",
    "aarch64",
    "ppc64le",
    "ppc64",
    "s390x",
    "i686",
    "i586",
    "i386",
    "armv7l",
    "armv6l",
    "riscv64",
    "mips64",
    "loongarch64",
    "sparc64",
];

impl Uname {
    /// `Linux host 5.4.0-97-generic #110-Ubuntu SMP Thu Jan 13 18:22:13 UTC 2022 x86_64
    /// x86_64 x86_64 GNU/Linux`: the release is the third word, the version runs to the
    /// machine name.
    fn parse(text: &str) -> Option<Uname> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.first() != Some(&"Linux") || words.len() < 4 {
            return None;
        }
        let arch_at = (3..words.len()).find(|i| ARCHES.contains(&words[*i]));
        let version_end = arch_at.unwrap_or(words.len());
        Some(Uname {
            release: words[2].to_string(),
            version: words[3..version_end].join(" "),
            arch: arch_at.map(|i| words[i].to_string()).unwrap_or_default(),
        })
    }
}

fn endianness(arch: &str) -> &'static str {
    match arch {
        "s390x" | "ppc64" | "sparc64" => "big",
        "" => "",
        _ => "little",
    }
}

/// The zone abbreviation and UTC offset of timedatectl's `Time zone: Etc/UTC (UTC, +0000)`.
fn timedatectl_zone(text: &str) -> Option<(String, i64)> {
    let line = text.lines().find_map(|l| l.trim().strip_prefix("Time zone:"))?;
    let inner = line.split_once('(')?.1.split_once(')')?.0;
    let (abbrev, offset) = inner.split_once(',')?;
    Some((abbrev.trim().to_string(), parse_offset(offset.trim())?))
}

/// `+0000`, `-0530` as seconds.
fn parse_offset(s: &str) -> Option<i64> {
    let (sign, digits) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
    Some(sign * (h * 3600 + m * 60))
}

/// When the report was made, in seconds since the epoch, and the file that says so:
/// `date --utc`, timedatectl's universal time, `date` when it prints UTC, or the start
/// time in sos's own manifest (local time: shifted by timedatectl's offset when known,
/// else taken as UTC and noted).
fn capture_time(
    files: &dyn Files,
    sos_manifest: Option<&serde_json::Value>,
    offset: Option<i64>,
    notes: &mut Vec<String>,
) -> Option<(u64, String)> {
    for name in ["sos_commands/date/date_--utc", "sos_commands/general/date_--utc", "sos_commands/date/date"] {
        if let Some(text) = text(files, name, notes) {
            if let Some(secs) = parse_date_utc(&text) {
                return Some((secs, name.to_string()));
            }
        }
    }
    for name in ["sos_commands/systemd/timedatectl", "sos_commands/date/timedatectl"] {
        if let Some(text) = text(files, name, notes) {
            let universal = text.lines().find_map(|l| l.trim().strip_prefix("Universal time:"));
            if let Some(secs) = universal.and_then(parse_iso_words) {
                return Some((secs, name.to_string()));
            }
        }
    }
    let start = sos_manifest?.get("start_time")?.as_str()?;
    let local = parse_iso_words(start)?;
    let offset = offset.unwrap_or_else(|| {
        notes.push(
            "the report's time zone is unknown: its start time (sos_reports/manifest.json) is taken as UTC".into(),
        );
        0
    });
    Some(((local as i64 - offset).max(0) as u64, SOS_MANIFEST.into()))
}

/// `Thu Feb 10 09:52:10 UTC 2022` (date's default format, in UTC).
fn parse_date_utc(text: &str) -> Option<u64> {
    let w: Vec<&str> = text.split_whitespace().collect();
    if w.len() != 6 || !matches!(w[4], "UTC" | "GMT") {
        return None;
    }
    let month = crate::time::month_number(w[1])?;
    let day: u32 = w[2].parse().ok()?;
    let year: i64 = w[5].parse().ok()?;
    let sod = clock_seconds(w[3])?;
    epoch(year, month, day, sod)
}

/// The first `YYYY-MM-DD HH:MM:SS[.frac]` in the words of `text` (timedatectl's
/// `Thu 2022-02-10 09:52:10 UTC`, sos's `2026-11-29 05:42:29.634845`).
fn parse_iso_words(text: &str) -> Option<u64> {
    let w: Vec<&str> = text.split_whitespace().collect();
    let i = w.iter().position(|x| x.len() == 10 && x.as_bytes()[4] == b'-')?;
    let mut date = w[i].split('-');
    let year: i64 = date.next()?.parse().ok()?;
    let month: u32 = date.next()?.parse().ok()?;
    let day: u32 = date.next()?.parse().ok()?;
    let clock = w.get(i + 1)?.split('.').next()?;
    epoch(year, month, day, clock_seconds(clock)?)
}

/// `HH:MM:SS` as seconds of the day.
fn clock_seconds(s: &str) -> Option<u64> {
    let mut p = s.split(':').map(|x| x.parse::<u64>().ok());
    let (h, m, sec) = (p.next()??, p.next()??, p.next()??);
    (p.next().is_none() && h < 24 && m < 60 && sec < 61).then_some(h * 3600 + m * 60 + sec)
}

fn epoch(year: i64, month: u32, day: u32, sod: u64) -> Option<u64> {
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = crate::time::days_from_civil(year, month, day);
    u64::try_from(days).ok().map(|d| d * 86_400 + sod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date_utc("Thu Feb 10 09:52:10 UTC 2022\n"), Some(1_644_486_730));
        assert_eq!(parse_date_utc("Thu Feb 10 09:52:10 CET 2022\n"), None);
        assert_eq!(parse_iso_words("Thu 2022-02-10 09:52:10 UTC"), Some(1_644_486_730));
        assert_eq!(parse_iso_words("2022-02-10 09:52:10.5"), Some(1_644_486_730));
        assert_eq!(parse_iso_words("2022-13-10 09:52:10"), None);
        assert_eq!(parse_iso_words("20é2-02-10 x"), None);
        assert_eq!(parse_offset("-0530"), Some(-(5 * 3600 + 30 * 60)));
        assert_eq!(parse_offset("+05"), None);
    }
}
