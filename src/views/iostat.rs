//! `iostat`: what sysstat 12.6.1 (the `sysstat` of Debian 12) printed on the box, from
//! the bundle's raw copies, with iostat's own arithmetic (iostat.c, rd_stats.c,
//! common.c of 12.6.1) and layout. tests/show_iostat.rs holds the since-boot reports to
//! the real tool run on the bundle's `proc/` and `sys/` bind-mounted over the live ones.
//!
//! - Sources, as iostat 12.6.1 reads them: the devices and their counters from
//!   `sys/block/<dev>/stat` (whole devices only: partitions live below them), the
//!   interval from `proc/uptime` in hundredths of a second, `avg-cpu` from the `cpu`
//!   line of `proc/stat` (%system includes irq and softirq, %user includes guest, the
//!   total is user + nice + system + idle + iowait + irq + softirq + steal), the CPU
//!   count of the header from the `cpuN` directories of `sys/devices/system/cpu`.
//!   A bundle without `sys/block/*/stat` falls back to `proc/diskstats`, keeping the
//!   whole devices (names listed under `sys/block/`, else names that are not another
//!   device's name plus a partition number).
//! - Devices are listed by name, those that never did I/O (reads, writes, discards and
//!   flushes all 0) left out as iostat does without a device list; `-z` also leaves out
//!   those idle over the report's interval.
//! - Tick counters (`*_ticks`, in-flight, busy time, queue time) are C `unsigned int`
//!   in iostat, so their differences wrap at 32 bits as there.
//! - The header is `uname`'s, taken from the manifest (host name, kernel release,
//!   architecture) and the capture's date in the box's time zone, printed as `%x` in
//!   the C locale (MM/DD/YY).
//! - Reports: by default the since-boot report, as `iostat` with no interval prints it.
//!   `--window` (snap's own option) adds the report over the sampling window, from the
//!   first to the last `samples/<n>/proc/diskstats` and `stat`, as `iostat INTERVAL 2`
//!   prints its second report; the interval is the samples' CLOCK_BOOTTIME (what
//!   /proc/uptime counts) in whole hundredths of a second, as iostat reads uptime.
//!   `-y` with `--window` leaves out the since-boot report (`iostat -y INTERVAL 1`);
//!   without `--window` it changes nothing, as iostat ignores it with no interval.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use snap_analyzers::Input;
use snap_bundle::time;

use super::{bad, letter_options, text, View, ViewError};

pub const IOSTAT: View = View {
    name: "iostat",
    replays: "iostat: avg-cpu and devices since boot; -x (extended), -k/-m, -d/-c, -z; --window (and -y) over the sampling window",
    needs: &["proc/stat", "proc/uptime", "proc/diskstats"],
    render: iostat,
};

const STAT: &str = "proc/stat";
const UPTIME: &str = "proc/uptime";
const DISKSTATS: &str = "proc/diskstats";
const SYS_BLOCK: &str = "sys/block/";
const SYS_CPU: &str = "sys/devices/system/cpu/";

/// One device's counters, with iostat's C types: `unsigned long` for I/Os, merges and
/// sectors, `unsigned int` for the tick counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Io {
    rd_ios: u64,
    rd_merges: u64,
    rd_sectors: u64,
    rd_ticks: u32,
    wr_ios: u64,
    wr_merges: u64,
    wr_sectors: u64,
    wr_ticks: u32,
    ios_pgr: u32,
    tot_ticks: u32,
    rq_ticks: u32,
    dc_ios: u64,
    dc_merges: u64,
    dc_sectors: u64,
    dc_ticks: u32,
    fl_ios: u64,
    fl_ticks: u32,
}

/// The counters of a stat line (after the name, for /proc/diskstats), as iostat's
/// `fscanf` takes them: up to 17 numbers, the first non-number ending the scan. None
/// when there are fewer than 11 (the 4-field partition lines of old kernels, which
/// iostat shows only for partitions).
fn parse_counters(words: &[&str]) -> Option<Io> {
    let mut v = [0u64; 17];
    let mut n = 0;
    for w in words.iter().take(17) {
        match w.parse::<u64>() {
            Ok(x) => {
                v[n] = x;
                n += 1;
            }
            Err(_) => break,
        }
    }
    if n < 11 {
        return None;
    }
    // `%u` stores the low 32 bits.
    let t = |i: usize| v[i] as u32;
    Some(Io {
        rd_ios: v[0],
        rd_merges: v[1],
        rd_sectors: v[2],
        rd_ticks: t(3),
        wr_ios: v[4],
        wr_merges: v[5],
        wr_sectors: v[6],
        wr_ticks: t(7),
        ios_pgr: t(8),
        tot_ticks: t(9),
        rq_ticks: t(10),
        dc_ios: v[11],
        dc_merges: v[12],
        dc_sectors: v[13],
        dc_ticks: t(14),
        fl_ios: v[15],
        fl_ticks: t(16),
    })
}

/// /proc/diskstats: name and counters of each line with the extended counters.
fn parse_diskstats(entry: &str, text: &str) -> Result<BTreeMap<String, Io>, ViewError> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if words.len() < 3 || words[0].parse::<u32>().is_err() || words[1].parse::<u32>().is_err() {
            return Err(bad(entry, format!("line {} is not `major minor name counters...`: {line:?}", i + 1)));
        }
        match parse_counters(&words[3..]) {
            Some(io) => {
                out.insert(words[2].to_string(), io);
            }
            None if words.len() == 7 => {} // a partition without extended statistics
            None => return Err(bad(entry, format!("line {} holds too few counters: {line:?}", i + 1))),
        }
    }
    Ok(out)
}

/// Whole devices as iostat sees them (the directories of /sys/block), or None when
/// the bundle holds none of /sys/block.
fn sys_block_devices(input: &Input) -> Option<BTreeSet<String>> {
    let names: BTreeSet<String> = input
        .entries_under(SYS_BLOCK)
        .iter()
        .filter_map(|e| e[SYS_BLOCK.len()..].split('/').next().filter(|n| !n.is_empty()).map(str::to_string))
        .collect();
    (!names.is_empty()).then_some(names)
}

/// Without /sys/block: a name is a partition when it is another listed name followed by
/// a number (`sda1`), or by `p` and a number when that name ends in a digit (`nvme0n1p1`).
fn whole_devices(names: &BTreeMap<String, Io>) -> BTreeSet<String> {
    let is_partition = |n: &str| {
        names.keys().any(|d| {
            let Some(rest) = n.strip_prefix(d.as_str()).filter(|r| !r.is_empty()) else { return false };
            let rest =
                if d.ends_with(|c: char| c.is_ascii_digit()) { rest.strip_prefix('p').unwrap_or("") } else { rest };
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
        })
    };
    names.keys().filter(|n| !is_partition(n)).cloned().collect()
}

/// The devices of the since-boot report: /sys/block's stat files, else /proc/diskstats.
fn boot_devices(input: &Input) -> Result<BTreeMap<String, Io>, ViewError> {
    let mut out = BTreeMap::new();
    if let Some(names) = sys_block_devices(input) {
        for name in names {
            let entry = format!("{SYS_BLOCK}{name}/stat");
            if !input.has(&entry) {
                continue;
            }
            let t = text(input, &entry)?;
            let words: Vec<&str> = t.split_ascii_whitespace().collect();
            let io = parse_counters(&words)
                .ok_or_else(|| bad(&entry, format!("expected at least 11 counters, found {:?}", t.trim_end())))?;
            out.insert(name, io);
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    window_devices(input, DISKSTATS)
}

/// The whole devices of a /proc/diskstats copy.
fn window_devices(input: &Input, entry: &str) -> Result<BTreeMap<String, Io>, ViewError> {
    let all = parse_diskstats(entry, &text(input, entry)?)?;
    let whole = sys_block_devices(input).unwrap_or_else(|| whole_devices(&all));
    Ok(all.into_iter().filter(|(n, _)| whole.contains(n)).collect())
}

/// The `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Cpu {
    user: u64,
    nice: u64,
    system: u64,
    idle: u64,
    iowait: u64,
    irq: u64,
    softirq: u64,
    steal: u64,
}

impl Cpu {
    fn total(&self) -> u64 {
        self.user
            .wrapping_add(self.nice)
            .wrapping_add(self.system)
            .wrapping_add(self.idle)
            .wrapping_add(self.iowait)
            .wrapping_add(self.irq)
            .wrapping_add(self.softirq)
            .wrapping_add(self.steal)
    }
}

fn parse_cpu(entry: &str, text: &str) -> Result<Cpu, ViewError> {
    let line = text
        .lines()
        .find(|l| l.split_ascii_whitespace().next() == Some("cpu"))
        .ok_or_else(|| bad(entry, "no `cpu` line"))?;
    let mut v = [0u64; 8];
    for (i, w) in line.split_ascii_whitespace().skip(1).take(8).enumerate() {
        v[i] = w.parse().map_err(|_| bad(entry, format!("the cpu line holds {w:?}")))?;
    }
    Ok(Cpu { user: v[0], nice: v[1], system: v[2], idle: v[3], iowait: v[4], irq: v[5], softirq: v[6], steal: v[7] })
}

/// /proc/uptime in hundredths of a second, as iostat's `read_uptime` scans `%lu.%lu`.
fn parse_uptime(entry: &str, text: &str) -> Result<u64, ViewError> {
    let first = text.split_ascii_whitespace().next().unwrap_or("");
    let (secs, cents) = first.split_once('.').unwrap_or((first, ""));
    let cents: String = cents.chars().take_while(char::is_ascii_digit).collect();
    match (secs.parse::<u64>(), cents.parse::<u64>()) {
        (Ok(s), Ok(c)) => Ok(s.wrapping_mul(100).wrapping_add(c)),
        _ => Err(bad(entry, format!("expected seconds.hundredths, found {first:?}"))),
    }
}

/// One reading: the CPU line, the devices, and the uptime in hundredths of a second.
struct Reading {
    cpu: Cpu,
    devices: BTreeMap<String, Io>,
    uptime_cs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Kilobytes,
    Megabytes,
}

struct Options {
    cpu: bool,
    disk: bool,
    extended: bool,
    unit: Unit,
    zero_omit: bool,
    omit_since_boot: bool,
    window: bool,
}

fn options(args: &[String]) -> Result<Options, ViewError> {
    let mut window = false;
    let letters: Vec<String> = args
        .iter()
        .filter(|a| {
            let w = a.as_str() == "--window";
            window |= w;
            !w
        })
        .cloned()
        .collect();
    let (mut cpu, mut disk, mut extended, mut zero_omit, mut omit_since_boot) = (false, false, false, false, false);
    let mut unit = None;
    for (flag, _) in letter_options("iostat", &letters, "cdxkmyz", "")? {
        match flag {
            'c' => cpu = true,
            'd' => disk = true,
            'x' => extended = true,
            'k' | 'm' => {
                let u = if flag == 'k' { Unit::Kilobytes } else { Unit::Megabytes };
                if unit.is_some_and(|v| v != u) {
                    return Err(ViewError::Usage("iostat: -k and -m exclude each other".into()));
                }
                unit = Some(u);
            }
            'y' => omit_since_boot = true,
            _ => zero_omit = true,
        }
    }
    if !cpu && !disk {
        (cpu, disk) = (true, true);
    }
    disk |= extended;
    Ok(Options {
        cpu,
        disk,
        extended,
        unit: unit.unwrap_or(Unit::Kilobytes),
        zero_omit,
        omit_since_boot: omit_since_boot && window,
        window,
    })
}

/// iostat's `S_VALUE`: a counter's rate per second over `itv` hundredths of a second.
fn s_value(prev: u64, curr: u64, itv: u64) -> f64 {
    curr.wrapping_sub(prev) as f64 / itv as f64 * 100.0
}

fn s_value32(prev: u32, curr: u32, itv: u64) -> f64 {
    f64::from(curr.wrapping_sub(prev)) / itv as f64 * 100.0
}

/// `ll_sp_value`: a CPU counter's share of the interval's ticks, in percent.
fn ll_sp_value(prev: u64, curr: u64, itv: u64) -> f64 {
    if curr < prev {
        0.0
    } else {
        (curr - prev) as f64 / itv as f64 * 100.0
    }
}

fn cpu_report(prev: &Cpu, curr: &Cpu, out: &mut dyn Write) -> std::io::Result<()> {
    let mut itv = curr.total().wrapping_sub(prev.total());
    if itv == 0 {
        itv = 1;
    }
    let system = |c: &Cpu| c.system.wrapping_add(c.softirq).wrapping_add(c.irq);
    let values = [
        ll_sp_value(prev.user, curr.user, itv),
        ll_sp_value(prev.nice, curr.nice, itv),
        ll_sp_value(system(prev), system(curr), itv),
        ll_sp_value(prev.iowait, curr.iowait, itv),
        ll_sp_value(prev.steal, curr.steal, itv),
        if curr.idle < prev.idle { 0.0 } else { ll_sp_value(prev.idle, curr.idle, itv) },
    ];
    writeln!(out, "avg-cpu:  %user   %nice %system %iowait  %steal   %idle")?;
    let mut line = "       ".to_string();
    for v in values {
        line += &format!(" {v:7.2}");
    }
    writeln!(out, "{line}\n")
}

fn disk_header(o: &Options) -> String {
    let units = if o.unit == Unit::Megabytes { "MB" } else { "kB" };
    let mut h = "Device       ".to_string();
    if o.extended {
        for c in ['r', 'w', 'd'] {
            h += &format!("     {c}/s     {c}{units}/s   {c}rqm/s  %{c}rqm {c}_await {c}areq-sz");
        }
        h += "     f/s f_await  aqu-sz  %util";
    } else {
        h += &format!(
            "      tps    {units}_read/s    {units}_wrtn/s    {units}_dscd/s    {units}_read    {units}_wrtn    {units}_dscd"
        );
    }
    h
}

/// A ratio of two counter differences, 0 when the divisor did not move.
fn per(num: f64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num / den as f64
    }
}

fn device_line(o: &Options, name: &str, p: &Io, c: &Io, itv: u64) -> String {
    let fctr = if o.unit == Unit::Megabytes { 2048.0 } else { 2.0 };
    let mut s = format!("{name:<13}");
    let mut f = |width: usize, v: f64| s += &format!(" {v:width$.2}");
    if !o.extended {
        f(8, s_value(p.rd_ios + p.wr_ios + p.dc_ios, c.rd_ios + c.wr_ios + c.dc_ios, itv));
        f(12, s_value(p.rd_sectors, c.rd_sectors, itv) / fctr);
        f(12, s_value(p.wr_sectors, c.wr_sectors, itv) / fctr);
        f(12, s_value(p.dc_sectors, c.dc_sectors, itv) / fctr);
        let sectors = |pv: u64, cv: u64| {
            let mut d = cv.wrapping_sub(pv);
            if cv < pv && pv <= 0xffff_ffff {
                d &= 0xffff_ffff;
            }
            d / fctr as u64
        };
        for (pv, cv) in [(p.rd_sectors, c.rd_sectors), (p.wr_sectors, c.wr_sectors), (p.dc_sectors, c.dc_sectors)] {
            s += &format!(" {:10}", sectors(pv, cv));
        }
        return s;
    }
    for (ios, merges, sectors, ticks) in [
        ((p.rd_ios, c.rd_ios), (p.rd_merges, c.rd_merges), (p.rd_sectors, c.rd_sectors), (p.rd_ticks, c.rd_ticks)),
        ((p.wr_ios, c.wr_ios), (p.wr_merges, c.wr_merges), (p.wr_sectors, c.wr_sectors), (p.wr_ticks, c.wr_ticks)),
        ((p.dc_ios, c.dc_ios), (p.dc_merges, c.dc_merges), (p.dc_sectors, c.dc_sectors), (p.dc_ticks, c.dc_ticks)),
    ] {
        let d_ios = ios.1.wrapping_sub(ios.0);
        let d_merges = merges.1.wrapping_sub(merges.0);
        f(7, s_value(ios.0, ios.1, itv));
        f(9, s_value(sectors.0, sectors.1, itv) / fctr);
        f(8, s_value(merges.0, merges.1, itv));
        f(6, per(d_merges as f64, d_merges.wrapping_add(d_ios)) * 100.0);
        f(7, per(f64::from(ticks.1.wrapping_sub(ticks.0)), d_ios));
        f(8, per(sectors.1.wrapping_sub(sectors.0) as f64, d_ios) / 2.0);
    }
    f(7, s_value(p.fl_ios, c.fl_ios, itv));
    f(7, per(f64::from(c.fl_ticks.wrapping_sub(p.fl_ticks)), c.fl_ios.wrapping_sub(p.fl_ios)));
    f(7, s_value32(p.rq_ticks, c.rq_ticks, itv) / 1000.0);
    f(6, s_value32(p.tot_ticks, c.tot_ticks, itv) / 10.0);
    s
}

/// One report, between two readings (`prev` all zero for the since-boot one), with
/// the two blank lines iostat ends each with.
fn report(o: &Options, prev: &Reading, curr: &Reading, out: &mut dyn Write) -> std::io::Result<()> {
    if o.cpu {
        cpu_report(&prev.cpu, &curr.cpu, out)?;
    }
    if o.disk {
        let mut itv = curr.uptime_cs.wrapping_sub(prev.uptime_cs);
        if itv == 0 {
            itv = 1;
        }
        writeln!(out, "{}", disk_header(o))?;
        let zero = Io::default();
        for (name, c) in &curr.devices {
            let mut p = prev.devices.get(name).unwrap_or(&zero);
            if c.rd_ios == 0 && c.wr_ios == 0 && c.dc_ios == 0 && c.fl_ios == 0 {
                continue;
            }
            if o.zero_omit
                && c.rd_ios == p.rd_ios
                && c.wr_ios == p.wr_ios
                && c.dc_ios == p.dc_ios
                && c.fl_ios == p.fl_ios
            {
                continue;
            }
            // iostat's test for a device removed and inserted again: counted from zero.
            let ios = |x: &Io| x.rd_ios.wrapping_add(x.wr_ios).wrapping_add(x.dc_ios).wrapping_add(x.fl_ios);
            if ios(c) < ios(p)
                && (p.rd_sectors == 0 || c.rd_sectors < p.rd_sectors)
                && (p.wr_sectors == 0 || c.wr_sectors < p.wr_sectors)
                && (p.dc_sectors == 0 || c.dc_sectors < p.dc_sectors)
            {
                p = &zero;
            }
            writeln!(out, "{}", device_line(o, name, p, c, itv))?;
        }
    }
    // One blank line from write_stats, one from iostat's loop.
    writeln!(out)?;
    writeln!(out)
}

/// The CPU count of iostat's header: the `cpuN` directories of /sys/devices/system/cpu,
/// else the manifest's online CPUs, else the `cpuN` lines of /proc/stat.
fn cpu_count(input: &Input, stat: &str) -> usize {
    let dirs: BTreeSet<&str> = input
        .entries_under(SYS_CPU)
        .iter()
        .filter_map(|e| {
            let (dir, rest) = e[SYS_CPU.len()..].split_once('/')?;
            let n = dir.strip_prefix("cpu")?;
            (!rest.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(dir)
        })
        .collect();
    if !dirs.is_empty() {
        return dirs.len();
    }
    if let Some(n) = input.manifest().map(|m| m.host.online_cpus).filter(|n| *n > 0) {
        return n as usize;
    }
    stat.lines().filter(|l| l.strip_prefix("cpu").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))).count()
}

/// `Linux <release> (<host>) \t<date> \t_<arch>_\t(<N> CPU)`.
fn header(input: &Input, stat: &str, up_cs: u64) -> Result<String, ViewError> {
    let line = |entry: &str| input.text(entry).ok().and_then(|t| t.lines().next().map(str::to_string));
    let host = input.manifest().map(|m| &m.host);
    let release = host
        .map(|h| h.kernel_release.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| line("proc/sys/kernel/osrelease"))
        .unwrap_or_else(|| "?".into());
    let hostname = host
        .map(|h| h.hostname.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| line("proc/sys/kernel/hostname"))
        .unwrap_or_else(|| "?".into());
    let arch = host.map(|h| h.arch.clone()).filter(|s| !s.is_empty()).unwrap_or_else(|| "?".into());
    let (now_ns, offset) = super::procps::capture_time(input, up_cs as f64 / 100.0)?;
    let t = time::tm((now_ns / 1_000_000_000) as i64, offset);
    Ok(format!(
        "Linux {release} ({hostname}) \t{:02}/{:02}/{:02} \t_{arch}_\t({} CPU)\n",
        t.month,
        t.day,
        t.year.rem_euclid(100),
        cpu_count(input, stat)
    ))
}

/// The window's first and last readings, and the interval between them in hundredths
/// of a second.
fn window(input: &Input) -> Result<(Reading, Reading), ViewError> {
    let indexes = input.samples_with("proc/diskstats");
    let (Some(&first), Some(&last)) = (indexes.first(), indexes.last()) else {
        return Err(ViewError::Input("the bundle has no samples/<n>/proc/diskstats: no sampling window".into()));
    };
    if first == last {
        return Err(ViewError::Input(format!("the window has one sample (samples/{first}/): no interval")));
    }
    let manifest = input.manifest();
    let clock = |i: usize| manifest.and_then(|m| m.samples.iter().find(|s| s.index == i)).map(|s| s.clocks);
    let cs = |i: usize| -> Result<u64, ViewError> {
        match clock(i) {
            Some(c) if c.boottime_ns > 0 => Ok(c.boottime_ns / 10_000_000),
            Some(c) if c.monotonic_ns > 0 => Ok(c.monotonic_ns / 10_000_000),
            _ => match manifest.map(|m| m.options.interval_ms).filter(|v| *v > 0) {
                Some(ms) => Ok(ms * i as u64 / 10),
                None => Err(ViewError::Input(format!(
                    "manifest.json records no clock for sample {i}: the window's interval is unknown"
                ))),
            },
        }
    };
    let read = |i: usize| -> Result<Reading, ViewError> {
        let stat = format!("samples/{i}/{STAT}");
        Ok(Reading {
            cpu: parse_cpu(&stat, &text(input, &stat)?)?,
            devices: window_devices(input, &format!("samples/{i}/{DISKSTATS}"))?,
            uptime_cs: cs(i)?,
        })
    };
    Ok((read(first)?, read(last)?))
}

fn iostat(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let o = options(args)?;
    let input = Input::new(bundle);
    // Everything is read first, so that a bad entry is reported before anything is printed.
    let stat = text(&input, STAT)?;
    let cpu = parse_cpu(STAT, &stat)?;
    let uptime_cs = if !input.has(UPTIME) && input.sos().is_some() {
        // A sos report: its capture time less its boot time.
        (super::procps::uptime_secs(&input)? * 100.0) as u64
    } else {
        parse_uptime(UPTIME, &text(&input, UPTIME)?)?
    };
    let devices = if o.disk { boot_devices(&input)? } else { BTreeMap::new() };
    let boot = Reading { cpu, devices, uptime_cs };
    let window = if o.window { Some(window(&input)?) } else { None };
    let head = header(&input, &stat, uptime_cs)?;

    writeln!(out, "{head}")?;
    if o.omit_since_boot {
        // iostat -y still passes through its loop once: one blank line.
        writeln!(out)?;
    } else {
        let zero = Reading { cpu: Cpu::default(), devices: BTreeMap::new(), uptime_cs: 0 };
        report(&o, &zero, &boot, out)?;
    }
    if let Some((first, last)) = window {
        report(&o, &first, &last, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Options {
        options(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn iostat_counters_scan_as_sysstat_does() {
        let io =
            parse_counters(&"10 2 800 4294967301 5 1 80 7 0 20 30 1 0 8 2 3 9".split(' ').collect::<Vec<_>>()).unwrap();
        // `%u` keeps the low 32 bits of a tick counter.
        assert_eq!(io.rd_ticks, 5);
        assert_eq!((io.dc_ios, io.dc_sectors, io.fl_ios, io.fl_ticks), (1, 8, 3, 9));
        // Old kernels: no discard and flush fields.
        let old = parse_counters(&"1 2 3 4 5 6 7 8 9 10 11".split(' ').collect::<Vec<_>>()).unwrap();
        assert_eq!((old.rq_ticks, old.dc_ios, old.fl_ios), (11, 0, 0));
        assert!(parse_counters(&["1", "2", "3", "4"]).is_none());
        assert_eq!(parse_uptime("u", "23582.11 17491.67\n").unwrap(), 2_358_211);
        assert!(parse_uptime("u", "soon\n").is_err());
    }

    #[test]
    fn partitions_are_told_from_devices_without_sys_block() {
        let mut m = BTreeMap::new();
        for n in ["sda", "sda1", "sda12", "nvme0n1", "nvme0n1p2", "loop0", "dm-0", "md127", "md127p1"] {
            m.insert(n.to_string(), Io::default());
        }
        let whole: Vec<String> = whole_devices(&m).into_iter().collect();
        assert_eq!(whole, ["dm-0", "loop0", "md127", "nvme0n1", "sda"]);
    }

    #[test]
    fn extended_line_follows_iostat_formulas() {
        let o = opts(&["-x"]);
        let p = Io::default();
        // 100 reads of 8 sectors with 25 merges, 400 ms; 50 writes; busy 500 ms; queue 900 ms.
        let c = Io {
            rd_ios: 100,
            rd_merges: 25,
            rd_sectors: 800,
            rd_ticks: 400,
            wr_ios: 50,
            wr_sectors: 1000,
            wr_ticks: 1000,
            tot_ticks: 500,
            rq_ticks: 900,
            ..Io::default()
        };
        // Over 2 s (200 hundredths).
        let line = device_line(&o, "vda", &p, &c, 200);
        let v: Vec<f64> = line.split_whitespace().skip(1).map(|w| w.parse().unwrap()).collect();
        assert_eq!(&v[..6], &[50.0, 200.0, 12.5, 20.0, 4.0, 4.0]);
        assert_eq!(&v[6..12], &[25.0, 250.0, 0.0, 0.0, 20.0, 10.0]);
        assert_eq!(&v[20..], &[0.45, 25.0]);
        assert_eq!(line.len(), disk_header(&o).len());
        assert!(opts(&["-d", "-x", "--window"]).window);
        assert!(!opts(&["-y"]).omit_since_boot);
        assert!(options(&["-k".into(), "-m".into()]).is_err());
        assert!(options(&["-p".into()]).is_err());
    }
}
