//! The procps views: `uptime`, `free` and `vmstat`, printing what procps-ng 4.0.2 (the
//! `procps` of Debian 12) printed on the box at capture time, from the bundle's raw
//! copies of /proc. The arithmetic is procps's own (library/meminfo.c, src/free.c,
//! src/vmstat.c of 4.0.2), down to its integer rounding and the `float` of vmstat's unit
//! conversion, and tests/show_procps.rs holds the output to the real tools run on the
//! bundle's `proc/` bind-mounted over /proc.
//!
//! - `uptime`: the time of day is the capture's (the manifest's CLOCK_REALTIME with its
//!   UTC offset; without a manifest, `btime` + uptime in UTC), not the replaying
//!   machine's. The user count is what procps counts in utmp: from the bundle's
//!   `run/utmp` (or `var/run/utmp`) when it holds one; 0, as procps prints, when the
//!   manifest records that the box had none; otherwise unknown, printed ` ? users`
//!   rather than a guess (a bundle that never looked for utmp says nothing about logins).
//! - `free`: `used` is MemTotal - MemAvailable and `buff/cache` Buffers + Cached +
//!   SReclaimable, with procps's fallbacks (MemAvailable absent or above MemTotal:
//!   MemFree). `-v`'s free commit is printed signed, as procps does when overcommitted.
//! - `vmstat`: the first line is since boot from `proc/stat`, `proc/vmstat` and
//!   `proc/meminfo` (rates per tick of all CPUs, as 4.0.2 computes them), then one line
//!   per interval of the sampling window from consecutive `samples/<n>/proc/` copies,
//!   as `vmstat <interval>` prints them, the header repeated every 21 lines as vmstat
//!   does on a non-terminal. One deliberate difference: vmstat 4.0.2 keeps printing the
//!   memory figures of its first reading on every later line (it never re-reads
//!   /proc/meminfo in its loop, fixed in later procps); here each line has the memory of
//!   its own sample. Tick counters that run backwards other than idle (iowait does on
//!   some kernels) count as 0 where procps would print a wrapped number.
//!
//! /proc/meminfo is parsed by the analyzers' procfs-core wrapper; the few /proc/stat and
//! /proc/vmstat counters vmstat needs that no shared parser exposes (interrupts, context
//! switches, guest ticks, paging) are read here, as procps reads them: a missing counter
//! is 0.

use std::io::Write;

use snap_analyzers::Input;
use snap_bundle::manifest::EntryStatus;
use snap_bundle::time;

use super::{bad, letter_options, skip, text, View, ViewError};

pub const UPTIME: View = View {
    name: "uptime",
    replays: "uptime: time of the capture, time up, users, load averages; -p (pretty), -s (up since)",
    needs: &["proc/uptime", "proc/loadavg"],
    render: uptime,
};

pub const FREE: View = View {
    name: "free",
    replays: "free: memory and swap; -b/-k/-m/-g, -h (human), -w (wide), -t (total), -l (low/high), -v (commit)",
    needs: &["proc/meminfo"],
    render: free,
};

pub const VMSTAT: View = View {
    name: "vmstat",
    replays: "vmstat over the window: since boot, then per interval; -w, -a, -n, -y, -t, -S k|K|m|M",
    needs: &["proc/stat", "proc/vmstat", "proc/meminfo"],
    render: vmstat,
};

const MEMINFO: &str = "proc/meminfo";
const STAT: &str = "proc/stat";
const VMSTAT_FILE: &str = "proc/vmstat";
const UPTIME_FILE: &str = "proc/uptime";
const LOADAVG: &str = "proc/loadavg";
/// Where a raw copy of utmp would be (glibc's _PATH_UTMP is /var/run/utmp, a link to
/// /run/utmp on current distributions).
const UTMP: [&str; 2] = ["run/utmp", "var/run/utmp"];

/// The first `n` numbers of an entry's first line (/proc/uptime, /proc/loadavg), as
/// procps scans them with `%lf`.
pub(super) fn leading_numbers(input: &Input, entry: &str, n: usize) -> Result<Vec<f64>, ViewError> {
    let t = text(input, entry)?;
    let v: Vec<f64> = t.split_ascii_whitespace().take(n).map_while(|w| w.parse().ok()).collect();
    if v.len() < n || v.iter().any(|x| !x.is_finite()) {
        return Err(bad(entry, format!("expected {n} numbers, found {:?}", t.lines().next().unwrap_or(""))));
    }
    Ok(v)
}

/// Seconds since boot at the capture: proc/uptime, else (a sos report, which has no
/// copy of it) the report's capture time less its boot time.
pub(super) fn uptime_secs(input: &Input) -> Result<f64, ViewError> {
    if !input.has(UPTIME_FILE) && input.sos().is_some() {
        if let Some(ns) = input.manifest().map(|m| m.clocks.boottime_ns).filter(|ns| *ns > 0) {
            return Ok(ns as f64 / 1e9);
        }
    }
    Ok(leading_numbers(input, UPTIME_FILE, 2)?[0])
}

/// The 1-, 5- and 15-minute load averages: proc/loadavg, else a sos report's `uptime`.
pub(super) fn load_averages(input: &Input) -> Result<[f64; 3], ViewError> {
    if !input.has(LOADAVG) {
        if let Some(u) = input.sos().and_then(|r| r.uptime.as_ref()) {
            return Ok(u.load);
        }
    }
    let v = leading_numbers(input, LOADAVG, 3)?;
    Ok([v[0], v[1], v[2]])
}

/// Whether a view's needed entry is there, or stood in for in a sos report (proc/uptime
/// and proc/loadavg by the report's clocks and `uptime`).
pub(super) fn stands_in(input: &Input, entry: &str) -> bool {
    match entry {
        UPTIME_FILE => uptime_secs(input).is_ok(),
        LOADAVG => load_averages(input).is_ok(),
        snap_bundle::names::KMSG => super::system::holds_sos_dmesg(input),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// uptime

fn uptime(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let (mut pretty, mut since) = (false, false);
    for (flag, _) in letter_options("uptime", args, "ps", "")? {
        match flag {
            'p' => pretty = true,
            _ => since = true,
        }
    }
    let input = Input::new(bundle);
    let up = uptime_secs(&input)?;
    // procps handles -s as soon as it sees it, whatever else was asked.
    if since {
        let (now_ns, offset) = capture_time(&input, up)?;
        let t = time::tm(((now_ns as f64 / 1e9 - up) + 0.5) as i64, offset);
        writeln!(out, "{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second)?;
        return Ok(());
    }
    if pretty {
        writeln!(out, "{}", pretty_uptime(up))?;
        return Ok(());
    }
    let (now_ns, offset) = capture_time(&input, up)?;
    let load = load_averages(&input)?;
    let users = users(&input);
    writeln!(out, "{}", uptime_line((now_ns / 1_000_000_000) as i64, offset, up, users, load))?;
    Ok(())
}

/// CLOCK_REALTIME of the capture in nanoseconds and the box's UTC offset: the manifest's
/// clocks, else `btime` of proc/stat plus the uptime, in UTC.
pub(super) fn capture_time(input: &Input, up: f64) -> Result<(u64, i64), ViewError> {
    if let Some(m) = input.manifest().filter(|m| m.clocks.realtime_ns > 0) {
        return Ok((m.clocks.realtime_ns, m.host.utc_offset_seconds));
    }
    if !input.has(STAT) {
        return Err(ViewError::Input(format!(
            "the bundle has neither manifest.json clocks nor {STAT}: the time of the capture is unknown"
        )));
    }
    match parse_stat(STAT, &text(input, STAT)?)?.btime {
        Some(b) => Ok(((b as f64 + up) as u64 * 1_000_000_000, 0)),
        None => Err(bad(STAT, "no btime line, and no manifest.json clocks to tell the time of the capture")),
    }
}

/// procps 4.0.2's `procps_uptime_sprint`, at `now` (seconds since the epoch, shifted by
/// `offset`); `users` None is printed ` ? users`.
pub(super) fn uptime_line(now: i64, offset: i64, up: f64, users: Option<u32>, load: [f64; 3]) -> String {
    let t = time::tm(now, offset);
    let mut s = format!(" {:02}:{:02}:{:02} up ", t.hour, t.minute, t.second);
    let secs = up as i32;
    let (days, hours, minutes) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    if days != 0 {
        s += &format!("{days} {}, ", if days > 1 { "days" } else { "day" });
    }
    if hours != 0 {
        s += &format!("{hours:2}:{minutes:02}, ");
    } else {
        s += &format!("{minutes} min, ");
    }
    match users {
        Some(n) => s += &format!("{n:2} {},  ", if n > 1 { "users" } else { "user" }),
        None => s += " ? users,  ",
    }
    s += &format!("load average: {:.2}, {:.2}, {:.2}", load[0], load[1], load[2]);
    s
}

/// procps 4.0.2's `procps_uptime_sprint_short` (`uptime -p`).
fn pretty_uptime(up: f64) -> String {
    let mut u = up;
    let mut take = |unit: i32| -> i32 {
        if u > f64::from(unit) {
            let n = (u as i32) / unit;
            u -= f64::from(n) * f64::from(unit);
            n
        } else {
            0
        }
    };
    let decades = take(315_360_000);
    let years = take(31_536_000);
    let weeks = take(604_800);
    let days = take(86_400);
    let hours = take(3600);
    let minutes = take(60);
    let mut parts = Vec::new();
    for (n, one, many) in [
        (decades, "decade", "decades"),
        (years, "year", "years"),
        (weeks, "week", "weeks"),
        (days, "day", "days"),
        (hours, "hour", "hours"),
    ] {
        if n != 0 {
            parts.push(format!("{n} {}", if n > 1 { many } else { one }));
        }
    }
    if minutes != 0 || u < 60.0 {
        parts.push(format!("{minutes} {}", if minutes != 1 { "minutes" } else { "minute" }));
    }
    format!("up {}", parts.join(", "))
}

/// Users as procps counts them: utmp records of type USER_PROCESS with a user name.
pub(super) fn users(input: &Input) -> Option<u32> {
    let big = input.manifest().is_some_and(|m| m.host.endianness == "big");
    for entry in UTMP {
        if let Ok(bytes) = input.raw(entry) {
            return Some(count_utmp(&bytes, big));
        }
    }
    let m = input.manifest_with_entries()?;
    UTMP.iter().any(|e| m.entry(e).is_some_and(|r| r.status == EntryStatus::Missing)).then_some(0)
}

/// glibc's `struct utmp`: 384 bytes, `ut_type` a short at 0, `ut_user` 32 bytes at 44.
fn count_utmp(bytes: &[u8], big_endian: bool) -> u32 {
    const RECORD: usize = 384;
    const USER_PROCESS: i16 = 7;
    bytes
        .chunks_exact(RECORD)
        .filter(|r| {
            let kind = if big_endian { i16::from_be_bytes([r[0], r[1]]) } else { i16::from_le_bytes([r[0], r[1]]) };
            kind == USER_PROCESS && r[44] != 0
        })
        .count() as u32
}

// ---------------------------------------------------------------------------------------
// free

/// /proc/meminfo as procps 4.0.2 derives it (library/meminfo.c), in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Mem {
    pub(super) total: u64,
    pub(super) free: u64,
    pub(super) available: u64,
    pub(super) used: u64,
    pub(super) shared: u64,
    pub(super) buffers: u64,
    /// Cached + SReclaimable.
    pub(super) cached_all: u64,
    pub(super) active: u64,
    pub(super) inactive: u64,
    pub(super) swap_total: u64,
    pub(super) swap_free: u64,
    pub(super) swap_used: u64,
    pub(super) low_total: u64,
    pub(super) low_free: u64,
    pub(super) low_used: u64,
    pub(super) high_total: u64,
    pub(super) high_free: u64,
    pub(super) high_used: u64,
    pub(super) commit_limit: u64,
    pub(super) committed_as: u64,
}

/// A sos report's `free` output (KiB), read when it has no proc/meminfo.
const SOS_FREE: &str = "sos_commands/memory/free";

/// [`Mem`] from a sos report's `free` output: the figures `free` printed, without the
/// ones it does not print (buffers apart from cache, low/high, commit).
fn sos_mem(input: &Input) -> Result<Mem, ViewError> {
    let f = snap_bundle::sos::uptime::parse_free(&text(input, SOS_FREE)?).map_err(|e| bad(SOS_FREE, e))?;
    Ok(Mem {
        total: f.mem_total_kib,
        free: f.mem_free_kib,
        // As procps does without MemAvailable.
        available: f.available_kib.unwrap_or(f.mem_free_kib),
        used: f.mem_used_kib,
        shared: f.shared_kib.unwrap_or(0),
        buffers: 0,
        cached_all: f.buff_cache_kib.unwrap_or(0),
        active: 0,
        inactive: 0,
        swap_total: f.swap_total_kib,
        swap_free: f.swap_free_kib,
        swap_used: f.swap_used_kib,
        low_total: f.mem_total_kib,
        low_free: f.mem_free_kib,
        low_used: f.mem_used_kib,
        high_total: 0,
        high_free: 0,
        high_used: 0,
        commit_limit: 0,
        committed_as: 0,
    })
}

pub(super) fn mem(input: &Input, entry: &str) -> Result<Mem, ViewError> {
    let m = input.meminfo(entry).map_err(skip)?;
    let kb = |v: u64| v / 1024;
    let opt = |v: Option<u64>| v.map_or(0, kb);
    let (total, free) = (kb(m.mem_total), kb(m.mem_free));
    let mut available = opt(m.mem_available);
    if available == 0 || available > total {
        available = free;
    }
    let mut used = total as i64 - available as i64;
    if used < 0 {
        used = total as i64 - free as i64;
    }
    let (swap_total, swap_free) = (kb(m.swap_total), kb(m.swap_free));
    let (mut low_total, mut low_free) = (opt(m.low_total), opt(m.low_free));
    if low_total == 0 {
        (low_total, low_free) = (total, free);
    }
    let (high_total, high_free) = (opt(m.high_total), opt(m.high_free));
    Ok(Mem {
        total,
        free,
        available,
        used: used as u64,
        shared: opt(m.shmem),
        buffers: kb(m.buffers),
        cached_all: kb(m.cached) + opt(m.s_reclaimable),
        active: kb(m.active),
        inactive: kb(m.inactive),
        swap_total,
        swap_free,
        swap_used: swap_total.saturating_sub(swap_free),
        low_total,
        low_free,
        low_used: low_total.saturating_sub(low_free),
        high_total,
        high_free,
        high_used: high_total.saturating_sub(high_free),
        commit_limit: opt(m.commit_limit),
        committed_as: kb(m.committed_as),
    })
}

/// free's unit: `exponent` 0 = KiB as read, 1 = bytes, 2.. = 1024^(exponent-1) bytes.
#[derive(Debug, Clone, Copy)]
struct Units {
    exponent: i32,
    human: bool,
}

/// free 4.0.2's `scale_size`. It takes the figure as an unsigned long and prints it with
/// `%ld`, so a wrapped difference (commit limit below the committed) shows negative.
fn scale(kib: u64, u: Units) -> String {
    let size = kib as i64;
    let bytes = size.wrapping_mul(1024);
    if !u.human {
        return match u.exponent {
            0 => size.to_string(),
            1 => bytes.to_string(),
            e => ((bytes as f64 / 1024f64.powi(e - 1)) as i64).to_string(),
        };
    }
    let mut s = format!("{bytes}B");
    if s.len() <= 4 {
        return s;
    }
    for (i, unit) in ['K', 'M', 'G', 'T', 'P'].into_iter().enumerate() {
        let v = bytes as f64 / 1024f64.powi(i as i32 + 1);
        // `(float)` in procps, printed with %.1f.
        s = format!("{:.1}{unit}i", f64::from(v as f32));
        if s.len() <= 5 {
            return s;
        }
        s = format!("{}{unit}i", v as i64);
        if s.len() <= 5 {
            return s;
        }
    }
    s
}

fn free(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let mut u = Units { exponent: 0, human: false };
    let (mut unit_set, mut wide, mut lohi, mut total, mut commit) = (false, false, false, false, false);
    for (flag, _) in letter_options("free", args, "bkmghwltv", "")? {
        match flag {
            'b' | 'k' | 'm' | 'g' => {
                if unit_set {
                    return Err(ViewError::Usage("free: multiple unit options don't make sense".into()));
                }
                unit_set = true;
                u.exponent = match flag {
                    'b' => 1,
                    'k' => 2,
                    'm' => 3,
                    _ => 4,
                };
            }
            'h' => u.human = true,
            'w' => wide = true,
            'l' => lohi = true,
            't' => total = true,
            _ => commit = true,
        }
    }
    let input = Input::new(bundle);
    let m = if !input.has(MEMINFO) && input.sos().is_some() && input.has(SOS_FREE) {
        if wide || lohi || commit {
            return Err(ViewError::Input(format!(
                "the bundle has no {MEMINFO}: a sos report's {SOS_FREE} has no buffers/cache split, low/high \
                 or commit figures (-w, -l, -v)"
            )));
        }
        sos_mem(&input)?
    } else {
        mem(&input, MEMINFO)?
    };
    let row = |label: &str, values: &[u64]| {
        let mut s = format!("{label:<9}");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s += &format!("{:>11}", scale(*v, u));
        }
        s
    };
    if wide {
        writeln!(out, "               total        used        free      shared     buffers       cache   available")?;
    } else {
        writeln!(out, "               total        used        free      shared  buff/cache   available")?;
    }
    let mut mem_row = vec![m.total, m.used, m.free, m.shared];
    if wide {
        mem_row.extend([m.buffers, m.cached_all]);
    } else {
        mem_row.push(m.buffers + m.cached_all);
    }
    mem_row.push(m.available);
    writeln!(out, "{}", row("Mem:", &mem_row))?;
    if lohi {
        writeln!(out, "{}", row("Low:", &[m.low_total, m.low_used, m.low_free]))?;
        writeln!(out, "{}", row("High:", &[m.high_total, m.high_used, m.high_free]))?;
    }
    writeln!(out, "{}", row("Swap:", &[m.swap_total, m.swap_used, m.swap_free]))?;
    if total {
        writeln!(out, "{}", row("Total:", &[m.total + m.swap_total, m.used + m.swap_used, m.free + m.swap_free]))?;
    }
    if commit {
        writeln!(
            out,
            "{}",
            row("Comm:", &[m.commit_limit, m.committed_as, m.commit_limit.wrapping_sub(m.committed_as)])
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// vmstat

/// The /proc/stat counters vmstat reads (its `cpu` line, interrupts, context switches,
/// runnable and blocked tasks), 0 when absent as in procps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Stat {
    /// user nice system idle iowait irq softirq steal guest guest_nice
    cpu: [u64; 10],
    intr: u64,
    ctxt: u64,
    running: u64,
    blocked: u64,
    btime: Option<u64>,
}

fn parse_stat(entry: &str, text: &str) -> Result<Stat, ViewError> {
    let mut s = Stat::default();
    let mut seen_cpu = false;
    let number = |w: Option<&str>, key: &str| -> Result<u64, ViewError> {
        w.and_then(|w| w.parse().ok()).ok_or_else(|| bad(entry, format!("the {key} line holds no number")))
    };
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(key) = words.next() else { continue };
        match key {
            "cpu" => {
                for (i, w) in words.take(10).enumerate() {
                    s.cpu[i] = w.parse().map_err(|_| bad(entry, format!("the cpu line holds {w:?}")))?;
                }
                seen_cpu = true;
            }
            "intr" => s.intr = number(words.next(), key)?,
            "ctxt" => s.ctxt = number(words.next(), key)?,
            "procs_running" => s.running = number(words.next(), key)?,
            "procs_blocked" => s.blocked = number(words.next(), key)?,
            "btime" => s.btime = Some(number(words.next(), key)?),
            _ => {}
        }
    }
    if !seen_cpu {
        return Err(bad(entry, "no `cpu` line"));
    }
    Ok(s)
}

/// pgpgin, pgpgout, pswpin, pswpout of /proc/vmstat.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Paging {
    pgpgin: u64,
    pgpgout: u64,
    pswpin: u64,
    pswpout: u64,
}

fn parse_vmstat(entry: &str, text: &str) -> Result<Paging, ViewError> {
    let mut p = Paging::default();
    let mut any = false;
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else { continue };
        let Ok(v) = value.parse::<u64>() else {
            return Err(bad(entry, format!("{key} is {value:?}, not a number")));
        };
        any = true;
        match key {
            "pgpgin" => p.pgpgin = v,
            "pgpgout" => p.pgpgout = v,
            "pswpin" => p.pswpin = v,
            "pswpout" => p.pswpout = v,
            _ => {}
        }
    }
    if !any {
        return Err(bad(entry, "no counters"));
    }
    Ok(p)
}

/// One point of the window: the three files vmstat reads, and when.
struct Reading {
    stat: Stat,
    paging: Paging,
    mem: Mem,
    realtime_ns: Option<u64>,
}

fn reading(input: &Input, prefix: &str, realtime_ns: Option<u64>) -> Result<Reading, ViewError> {
    let (stat, vm, meminfo) =
        (format!("{prefix}{STAT}"), format!("{prefix}{VMSTAT_FILE}"), format!("{prefix}{MEMINFO}"));
    Ok(Reading {
        stat: parse_stat(&stat, &text(input, &stat)?)?,
        paging: parse_vmstat(&vm, &text(input, &vm)?)?,
        mem: mem(input, &meminfo)?,
        realtime_ns,
    })
}

struct VmOptions {
    wide: bool,
    active: bool,
    one_header: bool,
    no_first: bool,
    timestamp: bool,
    /// Bytes per displayed unit (-S).
    unit: u64,
}

const HEADER: &str = "procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu-----";
const WIDE_HEADER: &str =
    "--procs-- -----------------------memory---------------------- ---swap-- -----io---- -system-- ----------cpu----------";
const WIDTHS: [usize; 17] = [2, 2, 6, 6, 6, 6, 4, 4, 5, 5, 4, 4, 2, 2, 2, 2, 2];
const WIDE_WIDTHS: [usize; 18] = [4, 4, 12, 12, 12, 12, 4, 4, 5, 5, 4, 4, 3, 3, 3, 3, 3, 3];
/// vmstat's header height when its output is not a terminal (24 rows - 3).
const HEIGHT: usize = 21;

impl VmOptions {
    fn widths(&self) -> &'static [usize] {
        if self.wide {
            &WIDE_WIDTHS
        } else {
            &WIDTHS
        }
    }

    /// vmstat's `unitConvert`: KiB to the display unit, through a C `float`.
    fn convert(&self, kib: u64) -> u64 {
        (kib as f32 / self.unit as f32 * 1024f32) as u64
    }

    fn memory(&self, m: &Mem) -> [u64; 4] {
        let (b, c) = if self.active { (m.inactive, m.active) } else { (m.buffers, m.cached_all) };
        [self.convert(m.swap_used), self.convert(m.free), self.convert(b), self.convert(c)]
    }
}

fn header(o: &VmOptions, timezone: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let mut first = (if o.wide { WIDE_HEADER } else { HEADER }).to_string();
    if o.timestamp {
        first += " -----timestamp-----";
    }
    writeln!(out, "{first}")?;
    let names = [
        "r",
        "b",
        "swpd",
        "free",
        if o.active { "inact" } else { "buff" },
        if o.active { "active" } else { "cache" },
        "si",
        "so",
        "bi",
        "bo",
        "in",
        "cs",
        "us",
        "sy",
        "id",
        "wa",
        "st",
        "gu",
    ];
    let mut line = o.widths().iter().zip(names).map(|(w, n)| format!("{n:>w$}")).collect::<Vec<_>>().join(" ");
    if o.timestamp {
        let tz: String = timezone.chars().take(19).collect();
        line += &format!(" {tz:>19}");
    }
    writeln!(out, "{line}")
}

fn data_line(o: &VmOptions, values: &[u64; 18], when: Option<(u64, i64)>, out: &mut dyn Write) -> std::io::Result<()> {
    let mut line = o.widths().iter().zip(values).map(|(w, v)| format!("{v:>w$}")).collect::<Vec<_>>().join(" ");
    if o.timestamp {
        line.push(' ');
        if let Some((ns, offset)) = when {
            let t = time::tm((ns / 1_000_000_000) as i64, offset);
            line += &format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year, t.month, t.day, t.hour, t.minute, t.second);
        }
    }
    writeln!(out, "{line}")
}

/// The since-boot line of vmstat 4.0.2: rates are per tick of all CPUs times USER_HZ.
fn first_line(o: &VmOptions, r: &Reading, hz: u64, kb_per_page: u64) -> [u64; 18] {
    let c = &r.stat.cpu;
    let ticks = |i: &[usize]| i.iter().map(|i| c[*i]).sum::<u64>() as i64;
    let (cpu, div) =
        cpu_columns(ticks(&[0, 1]), ticks(&[2, 5, 6]), ticks(&[3]), ticks(&[4]), ticks(&[7]), ticks(&[8, 9]));
    let (udiv, udivo2) = (div as u64, (div / 2) as u64);
    let rate = |v: u64| u64::from((v.wrapping_mul(hz).wrapping_add(udivo2) / udiv) as u32);
    let m = o.memory(&r.mem);
    [
        r.stat.running,
        r.stat.blocked,
        m[0],
        m[1],
        m[2],
        m[3],
        rate(o.convert(r.paging.pswpin.wrapping_mul(kb_per_page))),
        rate(o.convert(r.paging.pswpout.wrapping_mul(kb_per_page))),
        rate(r.paging.pgpgin),
        rate(r.paging.pgpgout),
        rate(r.stat.intr),
        rate(r.stat.ctxt),
        cpu[0],
        cpu[1],
        cpu[2],
        cpu[3],
        cpu[4],
        cpu[5],
    ]
}

/// vmstat's us, sy, id, wa, st and gu columns from tick counts (guest time is taken out
/// of user time after the divisor is summed, as vmstat does), and that divisor.
fn cpu_columns(user: i64, sys: i64, idle: i64, iowait: i64, steal: i64, guest: i64) -> ([u64; 6], i64) {
    let mut idle = idle;
    let mut div = user + sys + idle + iowait + steal;
    if div == 0 {
        div = 1;
        idle = 1;
    }
    let divo2 = div / 2;
    let user = if user >= guest { user - guest } else { 0 };
    let pct = |v: i64| u64::from(((100 * v + divo2) / div) as u32);
    ([pct(user), pct(sys), pct(idle), pct(iowait), pct(steal), pct(guest)], div)
}

/// One line of vmstat's loop between two readings `ms` milliseconds apart; `debt`
/// carries idle ticks that ran backwards to the next interval, as vmstat does.
fn interval_line(o: &VmOptions, a: &Reading, b: &Reading, ms: u64, kb_per_page: u64, debt: &mut i64) -> [u64; 18] {
    let d = |i: usize| b.stat.cpu[i].wrapping_sub(a.stat.cpu[i]) as i64;
    let pos = |v: i64| v.max(0);
    let mut cpu_idl = d(3);
    if *debt != 0 {
        cpu_idl += *debt;
        *debt = 0;
    }
    if cpu_idl < 0 {
        *debt = cpu_idl;
        cpu_idl = 0;
    }
    let (cpu, _) = cpu_columns(
        pos(d(0)) + pos(d(1)),
        pos(d(2)) + pos(d(5)) + pos(d(6)),
        cpu_idl,
        pos(d(4)),
        pos(d(7)),
        pos(d(8)) + pos(d(9)),
    );
    // vmstat N divides by its whole-second delay, rounding half up; an interval that is
    // not whole seconds is rounded the same way in floating point.
    let per_second = |delta: u64| -> u64 {
        // (Not is_multiple_of: snap builds with Rust 1.80.)
        let v = if ms / 1000 * 1000 == ms {
            let s = (ms / 1000).max(1);
            (delta + s / 2) / s
        } else {
            (delta as f64 * 1000.0 / ms as f64).round() as u64
        };
        u64::from(v as u32)
    };
    let delta = |f: fn(&Reading) -> u64| f(b).saturating_sub(f(a));
    let m = o.memory(&b.mem);
    [
        b.stat.running,
        b.stat.blocked,
        m[0],
        m[1],
        m[2],
        m[3],
        per_second(o.convert(delta(|r| r.paging.pswpin).wrapping_mul(kb_per_page))),
        per_second(o.convert(delta(|r| r.paging.pswpout).wrapping_mul(kb_per_page))),
        per_second(delta(|r| r.paging.pgpgin)),
        per_second(delta(|r| r.paging.pgpgout)),
        per_second(delta(|r| r.stat.intr)),
        per_second(delta(|r| r.stat.ctxt)),
        cpu[0],
        cpu[1],
        cpu[2],
        cpu[3],
        cpu[4],
        cpu[5],
    ]
}

fn vmstat(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let mut o =
        VmOptions { wide: false, active: false, one_header: false, no_first: false, timestamp: false, unit: 1024 };
    for (flag, value) in letter_options("vmstat", args, "awnyt", "S")? {
        match flag {
            'a' => o.active = true,
            'w' => o.wide = true,
            'n' => o.one_header = true,
            'y' => o.no_first = true,
            't' => o.timestamp = true,
            _ => {
                o.unit = match value.as_deref().and_then(|v| v.chars().next()) {
                    Some('b' | 'B') => 1,
                    Some('k') => 1000,
                    Some('K') => 1024,
                    Some('m') => 1_000_000,
                    Some('M') => 1_048_576,
                    _ => return Err(ViewError::Usage("vmstat: -S requires k, K, m or M (default is KiB)".into())),
                }
            }
        }
    }
    let input = Input::new(bundle);
    let info = input.system_info();
    let kb_per_page = (info.page_size / 1024).max(1);
    let manifest = input.manifest();
    let offset = manifest.map_or(0, |m| m.host.utc_offset_seconds);
    let timezone = manifest.map_or("", |m| m.host.timezone.as_str());
    let at = |ns: Option<u64>| ns.filter(|n| *n > 0).map(|n| (n, offset));

    // Every reading first, so that a bad entry is reported before anything is printed.
    let first = reading(&input, "", manifest.map(|m| m.clocks.realtime_ns))?;
    let indexes = input.samples_with("proc/stat");
    let mut samples = Vec::with_capacity(indexes.len());
    for &i in &indexes {
        let record = manifest.and_then(|m| m.samples.iter().find(|s| s.index == i));
        samples.push((
            i,
            record.map(|r| r.clocks),
            reading(&input, &format!("samples/{i}/"), record.map(|r| r.clocks.realtime_ns))?,
        ));
    }

    header(&o, timezone, out)?;
    if !o.no_first {
        data_line(&o, &first_line(&o, &first, info.clock_ticks, kb_per_page), at(first.realtime_ns), out)?;
    }
    let interval_ms = manifest.map_or(0, |m| m.options.interval_ms);
    let mut debt = 0;
    for (n, pair) in samples.windows(2).enumerate() {
        let ((ia, ca, a), (ib, cb, b)) = (&pair[0], &pair[1]);
        let gap = (ib - ia) as u64;
        let ms = if interval_ms > 0 {
            interval_ms * gap
        } else {
            match (ca, cb) {
                (Some(x), Some(y)) if y.monotonic_ns > x.monotonic_ns => {
                    ((y.monotonic_ns - x.monotonic_ns) / 1_000_000).max(1)
                }
                _ => 1000 * gap,
            }
        };
        if !o.one_header && (n + 1) % HEIGHT == 0 {
            header(&o, timezone, out)?;
        }
        data_line(&o, &interval_line(&o, a, b, ms, kb_per_page, &mut debt), at(b.realtime_ns), out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Units = Units { exponent: 0, human: true };

    #[test]
    fn free_human_sizes_follow_procps_scale_size() {
        assert_eq!(scale(0, H), "0B");
        assert_eq!(scale(1, H), "1.0Ki");
        assert_eq!(scale(999, H), "999Ki");
        assert_eq!(scale(1000, H), "1.0Mi");
        assert_eq!(scale(1023, H), "1.0Mi");
        assert_eq!(scale(1024, H), "1.0Mi");
        assert_eq!(scale(24_683_656, H), "23Gi");
        assert_eq!(scale(8952, H), "8.7Mi");
        assert_eq!(scale(10_485_760 * 1024, H), "10Ti");
        let m = Units { exponent: 3, human: false };
        assert_eq!(scale(24_683_656, m), "24105");
        assert_eq!(scale(1023, m), "0");
        // -v when the commit limit is below what is committed: procps prints it signed.
        assert_eq!(scale(1000u64.wrapping_sub(3000), Units { exponent: 0, human: false }), "-2000");
        assert_eq!(scale(1000u64.wrapping_sub(3000), Units { exponent: 1, human: false }), "-2048000");
    }

    #[test]
    fn uptime_line_as_procps_4_0_2() {
        // 2026-11-28 22:10:00 UTC.
        let now = 1_795_903_800;
        let load = [2.06, 1.5, 0.0];
        assert_eq!(
            uptime_line(now, 0, 20_518.06, Some(0), load),
            " 22:10:00 up  5:41,  0 user,  load average: 2.06, 1.50, 0.00"
        );
        assert_eq!(
            uptime_line(now, 3600, 86_400.0 + 59.0, Some(1), load),
            " 23:10:00 up 1 day, 0 min,  1 user,  load average: 2.06, 1.50, 0.00"
        );
        assert_eq!(
            uptime_line(now, 0, 3.0 * 86_400.0 + 36_000.0 + 420.0, Some(12), load),
            " 22:10:00 up 3 days, 10:07, 12 users,  load average: 2.06, 1.50, 0.00"
        );
        assert_eq!(
            uptime_line(now, 0, 59.0, None, load),
            " 22:10:00 up 0 min,  ? users,  load average: 2.06, 1.50, 0.00"
        );
    }

    #[test]
    fn pretty_uptime_as_procps_4_0_2() {
        assert_eq!(pretty_uptime(20_518.06), "up 5 hours, 41 minutes");
        assert_eq!(pretty_uptime(30.0), "up 0 minutes");
        assert_eq!(pretty_uptime(61.0), "up 1 minute");
        assert_eq!(pretty_uptime(3661.0), "up 1 hour, 1 minute");
        assert_eq!(pretty_uptime(8.0 * 86_400.0 + 7200.0 + 1.0), "up 1 week, 1 day, 2 hours, 0 minutes");
        assert_eq!(pretty_uptime(60.0), "up ");
        assert_eq!(pretty_uptime(2.0 * 31_536_000.0 + 120.5), "up 2 years, 2 minutes");
    }

    fn utmp_record(kind: i16, user: &str) -> Vec<u8> {
        let mut r = vec![0u8; 384];
        r[..2].copy_from_slice(&kind.to_le_bytes());
        r[44..44 + user.len()].copy_from_slice(user.as_bytes());
        r
    }

    #[test]
    fn utmp_counts_user_processes_with_a_name() {
        let mut f = Vec::new();
        for (k, u) in [(7, "alice"), (6, "LOGIN"), (7, ""), (7, "bob"), (2, "reboot")] {
            f.extend(utmp_record(k, u));
        }
        f.extend([7, 0, 0]); // a torn record at the end is not read
        assert_eq!(count_utmp(&f, false), 2);
    }

    fn reading(cpu: [u64; 10], intr: u64, ctxt: u64, running: u64, free: u64) -> Reading {
        Reading {
            stat: Stat { cpu, intr, ctxt, running, blocked: 1, btime: None },
            paging: Paging { pgpgin: 4000, pgpgout: 8000, pswpin: 10, pswpout: 0 },
            mem: Mem { free, buffers: 100, cached_all: 200, ..Mem::default() },
            realtime_ns: None,
        }
    }

    #[test]
    fn vmstat_lines_use_procps_rounding_and_subtract_guest() {
        let o =
            VmOptions { wide: true, active: false, one_header: false, no_first: false, timestamp: false, unit: 1024 };
        // 1000 ticks: user 300 (guest 100 of it), system 100, idle 590, iowait 10.
        let a = reading([300, 0, 100, 590, 10, 0, 0, 0, 100, 0], 5000, 7000, 3, 1000);
        let v = first_line(&o, &a, 100, 4);
        assert_eq!(&v[..6], &[3, 1, 0, 1000, 100, 200]);
        // Rates since boot are per 1000 ticks / 100 Hz = 10 s: in 500, cs 700, bi 400, si 10*4/10 = 4.
        assert_eq!(&v[6..12], &[4, 0, 400, 800, 500, 700]);
        assert_eq!(&v[12..], &[20, 10, 59, 1, 0, 10]);
        let b = reading([450, 0, 150, 790, 10, 0, 0, 0, 100, 0], 5900, 7250, 2, 900);
        let mut debt = 0;
        let v = interval_line(&o, &a, &b, 2000, 4, &mut debt);
        assert_eq!(&v[..6], &[2, 1, 0, 900, 100, 200]);
        // Over 2 s: in (900 + 1) / 2 = 450, cs 125.
        assert_eq!(&v[10..12], &[450, 125]);
        // 400 ticks: user 150, system 50, idle 200.
        assert_eq!(&v[12..], &[38, 13, 50, 0, 0, 0]);
    }

    #[test]
    fn vmstat_unit_conversion_goes_through_a_float() {
        let o =
            VmOptions { wide: false, active: false, one_header: false, no_first: false, timestamp: false, unit: 1024 };
        assert_eq!(o.convert(16_777_217), 16_777_216);
        assert_eq!(o.convert(10_274_492), 10_274_492);
    }
}
