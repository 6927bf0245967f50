//! The process views: `ps` (procps-ng 4.0.2: `aux`, `-e`, `-ef`, `-eL`, `-eLf`) and
//! `lsof` (4.95: every open file, `+L1`, `-p`), printing what the real tools printed on
//! the box at capture time from the bundle's raw copies of /proc and its open-file scan.
//!
//! - `ps`: procps's arithmetic (src/ps/output.c, library/pids.c of 4.0.2): %CPU and C are
//!   the CPU time over the time since the task started, `(utime+stime) * 100 /
//!   (uptime ticks - starttime)`, truncated; %MEM is VmRSS * 1000 / MemTotal; START and
//!   STIME are `btime + starttime / HZ` printed `%H:%M` on the day of the capture,
//!   `%b%d` within its year, `%Y` before; TIME is `M:SS` (aux) or `[dd-]hh:mm:ss`
//!   (-f); STAT is the state letter then `<` (nice < 0), `N` (nice > 0), `L` (VmLck),
//!   `s` (session leader), `l` (threads), `+` (foreground group). PID-like columns are
//!   as wide as pid_max's digits, and a value wider than its column pushes the rest of
//!   the line right as procps does. "Now" is the capture's (manifest clock); for %CPU
//!   and C, the uptime at the middle of the processes collector's run (from the
//!   manifest's clocks and collector durations), when the process's stat was read.
//!   Names come from the bundle's etc/passwd (a name too long for its column prints as
//!   the uid, as procps does). TTY names are derived from the device number (pts, tty, ttyS,
//!   console) without /proc/tty/drivers, which snap does not collect.
//! - `lsof`: the open-file scan, with lsof's two-pass column sizing; sockets get their
//!   addresses and states from the bundle's raw /proc/net tables. Names and ports are
//!   never resolved (as `lsof -n -P`), since the bundle does not carry the resolver.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use snap_analyzers::Input;
use snap_bundle::scan::OpenFile;
use snap_bundle::{names, time};

use super::net::{self, InetSocket, UnixSocket};
use super::{bad, letter_options, skip, text, View, ViewError};

pub const PS: View = View {
    name: "ps",
    replays: "ps at capture time: aux (BSD user format), -e, -ef, -eL, -eLf (threads)",
    needs: &["proc/stat", "proc/uptime", "proc/meminfo", super::PER_PROCESS],
    render: ps,
};

pub const LSOF: View = View {
    name: "lsof",
    replays: "lsof: every open file; +L1 (deleted, link count < 1), -p PID[,PID]; numeric as -n -P",
    needs: &[names::OPEN_FILES],
    render: lsof,
};

/// uid -> name from the bundle's etc/passwd (empty when it has none).
pub(super) fn passwd(input: &Input) -> HashMap<u32, String> {
    let Ok(t) = input.text("etc/passwd") else { return HashMap::new() };
    let mut m = HashMap::new();
    for l in t.lines() {
        let mut f = l.split(':');
        let (Some(name), Some(uid)) = (f.next(), f.nth(1)) else { continue };
        if let Ok(uid) = uid.parse() {
            m.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    m
}

// ---------------------------------------------------------------------------------------
// ps

/// The fields of a `/proc/<pid>/stat` (or task stat) line ps and top read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Stat {
    pub(super) comm: String,
    pub(super) state: char,
    pub(super) ppid: i64,
    pub(super) pgrp: i64,
    pub(super) session: i64,
    pub(super) tty: i64,
    pub(super) tpgid: i64,
    pub(super) utime: u64,
    pub(super) stime: u64,
    pub(super) priority: i64,
    pub(super) nice: i64,
    pub(super) threads: i64,
    pub(super) start: u64,
}

pub(super) fn parse_stat(entry: &str, line: &str) -> Result<Stat, ViewError> {
    let line = line.trim_end();
    let (Some(open), Some(close)) = (line.find('('), line.rfind(')')) else {
        return Err(bad(entry, "no `(command)` in the stat line"));
    };
    if close < open {
        return Err(bad(entry, "no `(command)` in the stat line"));
    }
    let f: Vec<&str> = line[close + 1..].split_whitespace().collect();
    if f.len() < 20 {
        return Err(bad(entry, format!("{} fields after the command, expected at least 20", f.len())));
    }
    let int = |i: usize| -> Result<i64, ViewError> {
        f[i].parse().map_err(|_| bad(entry, format!("field {} is {:?}, not a number", i + 3, f[i])))
    };
    let uint = |i: usize| -> Result<u64, ViewError> {
        f[i].parse().map_err(|_| bad(entry, format!("field {} is {:?}, not a number", i + 3, f[i])))
    };
    Ok(Stat {
        comm: line[open + 1..close].to_string(),
        state: f[0].chars().next().unwrap_or('?'),
        ppid: int(1)?,
        pgrp: int(2)?,
        session: int(3)?,
        tty: int(4)?,
        tpgid: int(5)?,
        utime: uint(11)?,
        stime: uint(12)?,
        priority: int(15)?,
        nice: int(16)?,
        threads: int(17)?,
        start: uint(19)?,
    })
}

/// What ps shows of one process (or, with -L, one thread).
#[derive(Debug, Clone, Default)]
struct Task {
    pid: u32,
    tid: u32,
    stat: Stat,
    euid: u32,
    vm_size: u64,
    vm_rss: u64,
    vm_lock: u64,
    args: String,
}

/// The machine as ps saw it.
struct Host {
    hz: u64,
    /// `btime` of /proc/stat.
    btime: u64,
    /// Uptime in ticks, as libproc2 4.0.2 makes it integral.
    boot_tics: u64,
    now: i64,
    offset: i64,
    mem_total: u64,
    pid_digits: usize,
    /// CLOCK_BOOTTIME in seconds when the processes collector started and its duration,
    /// from the manifest: when each process's stat was read, which ps's "now" is.
    read_window: Option<(f64, f64)>,
}

fn status_value(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(|v| v.trim().to_string()))
}

/// The command line as procps 4.0.2 shows it in the C locale: arguments joined by
/// spaces, bytes outside printable ASCII as `?`; `[comm]` when empty, `<defunct>` after
/// a zombie's.
fn args(cmdline: &[u8], stat: &Stat) -> String {
    let mut raw = cmdline;
    while let Some(r) = raw.strip_suffix(b"\0") {
        raw = r;
    }
    let mut s: String = raw
        .iter()
        .map(|&b| match b {
            0 => ' ',
            0x20..=0x7e => b as char,
            _ => '?',
        })
        .collect();
    if s.is_empty() {
        s = format!("[{}]", escape(&stat.comm));
    }
    if stat.state == 'Z' {
        s += " <defunct>";
    }
    s
}

fn escape(s: &str) -> String {
    s.chars().map(|c| if (' '..='~').contains(&c) { c } else { '?' }).collect()
}

/// procps's dev_to_tty without /proc/tty/drivers: the usual majors.
fn tty_name(tty: i64) -> String {
    if tty == 0 {
        return "?".into();
    }
    let t = tty as u64;
    let major = (t >> 8) & 0xfff;
    let minor = (t & 0xff) | ((t >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", minor + (major - 136) * 256),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        5 if minor == 1 => "console".into(),
        _ => "?".into(),
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// The collectors run one after another from the manifest's clocks: the processes
/// collector's start (CLOCK_BOOTTIME, seconds) and its duration.
fn read_window(input: &Input) -> Option<(f64, f64)> {
    let m = input.manifest().filter(|m| m.clocks.boottime_ns > 0)?;
    let i = m.collectors.iter().position(|c| c.name == "processes")?;
    let before: u64 = m.collectors[..i].iter().map(|c| c.duration_us).sum();
    Some((m.clocks.boottime_ns as f64 / 1e9 + before as f64 / 1e6, m.collectors[i].duration_us as f64 / 1e6))
}

impl Host {
    /// The uptime ticks at which ps, run at capture time, would have read the processes:
    /// the middle of the processes collector's run (procps reads them all within
    /// milliseconds; the collector may take a second on a loaded box, so a young busy
    /// process's %CPU is known within that). Without a manifest, proc/uptime's.
    fn ticks(&self) -> u64 {
        match self.read_window {
            Some((start, len)) => ((start + len / 2.0) * self.hz as f64) as u64,
            None => self.boot_tics,
        }
    }

    /// UTILIZATION of libproc2: CPU time over the task's life, in percent.
    fn utilization(&self, s: &Stat, ticks: u64) -> f64 {
        let t = ticks as f64 - s.start as f64;
        if t > 0.0 {
            f64::from((s.utime + s.stime) as f32 * 100.0f32) / t
        } else {
            0.0
        }
    }

    fn pcpu(&self, s: &Stat, ticks: u64) -> String {
        let p = (self.utilization(s, ticks) * 10.0) as u32;
        if p > 999 {
            format!("{}", p / 10)
        } else {
            format!("{}.{}", p / 10, p % 10)
        }
    }

    fn c(&self, s: &Stat, ticks: u64) -> String {
        format!("{:2}", (self.utilization(s, ticks) as u32).min(99))
    }

    fn pmem(&self, t: &Task) -> String {
        let p = (t.vm_rss * 1000 / self.mem_total.max(1)).min(999);
        format!("{:2}.{}", p / 10, p % 10)
    }

    /// pr_stime: START of aux, STIME of -f.
    fn start(&self, s: &Stat) -> String {
        let started = (self.btime as u32 as f64 + s.start as f64 / self.hz as f64) as i64;
        let (p, n) = (time::tm(started, self.offset), time::tm(self.now, self.offset));
        if p.year != n.year {
            format!("{}", p.year)
        } else if (p.month, p.day) != (n.month, n.day) {
            format!("{}{:02}", MONTHS[(p.month as usize).clamp(1, 12) - 1], p.day)
        } else {
            format!("{:02}:{:02}", p.hour, p.minute)
        }
    }

    fn bsdtime(&self, s: &Stat) -> String {
        let t = (s.utime + s.stime) / self.hz;
        format!("{:3}:{:02}", t / 60, t % 60)
    }

    fn time(&self, s: &Stat) -> String {
        let t = (s.utime + s.stime) / self.hz;
        let (dd, hh, mm, ss) = (t / 86_400, t / 3600 % 24, t / 60 % 60, t % 60);
        let days = if dd > 0 { format!("{dd}-") } else { String::new() };
        format!("{days}{hh:02}:{mm:02}:{ss:02}")
    }
}

fn stat_flags(t: &Task) -> String {
    let s = &t.stat;
    let mut o = String::from(s.state);
    if s.nice < 0 {
        o.push('<');
    }
    if s.nice > 0 {
        o.push('N');
    }
    if t.vm_lock > 0 {
        o.push('L');
    }
    if s.session == i64::from(t.pid) {
        o.push('s');
    }
    if s.threads > 1 {
        o.push('l');
    }
    if s.pgrp == s.tpgid {
        o.push('+');
    }
    o
}

#[derive(Clone, Copy, PartialEq)]
enum Just {
    Left,
    Right,
    Unlimited,
}

struct Col {
    head: &'static str,
    width: usize,
    just: Just,
}

/// procps's show_one_proc: columns at their widths, one space apart; a value wider than
/// its column takes space from the columns after it until the line catches up.
fn ps_line(cols: &[Col], cells: &[String]) -> String {
    let (mut correct, mut actual, mut dospace) = (0i64, 0i64, 0i64);
    let mut out = String::new();
    for (i, (c, cell)) in cols.iter().zip(cells).enumerate() {
        let amount = cell.chars().count() as i64;
        let leftpad = match c.just {
            Just::Right => (c.width as i64 - amount).max(0),
            Just::Left | Just::Unlimited => 0,
        };
        let mut space = correct - actual + leftpad;
        if space < 1 {
            space = dospace;
        }
        let space = space.min(144);
        out.push_str(&" ".repeat(space as usize));
        out += cell;
        if i + 1 == cols.len() {
            break;
        }
        actual += space + amount;
        correct += c.width as i64 + 1;
        dospace = 1;
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum PsStyle {
    Aux,
    Plain,
    Full,
}

fn ps(bundle: &snap_bundle::Bundle, args_in: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let (style, threads) = ps_options(args_in)?;
    let input = Input::new(bundle);
    let host = ps_host(&input)?;
    super::need_processes(&input)?;
    let users = passwd(&input);
    let mut tasks = Vec::new();
    for pid in input.pids() {
        let entry = format!("proc/{pid}/stat");
        let stat = parse_stat(&entry, &text(&input, &entry)?)?;
        // A process that exited while it was being read is listed by neither.
        let Ok(status) = input.text(&format!("proc/{pid}/status")) else { continue };
        let num =
            |k: &str| status_value(&status, k).and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()));
        let euid = status_value(&status, "Uid").and_then(|v| v.split_whitespace().nth(1)?.parse().ok());
        let Some(euid) = euid else { return Err(bad(&format!("proc/{pid}/status"), "no Uid line")) };
        let cmdline = input.raw(&format!("proc/{pid}/cmdline")).map(|c| c.into_owned()).unwrap_or_default();
        let task = Task {
            pid,
            tid: pid,
            args: args(&cmdline, &stat),
            stat,
            euid,
            vm_size: num("VmSize").unwrap_or(0),
            vm_rss: num("VmRSS").unwrap_or(0),
            vm_lock: num("VmLck").unwrap_or(0),
        };
        if !threads {
            tasks.push(task);
            continue;
        }
        let prefix = format!("proc/{pid}/task/");
        let mut tids: Vec<u32> = input
            .entries_under(&prefix)
            .iter()
            .filter_map(|e| e.strip_prefix(&prefix)?.strip_suffix("/stat")?.parse().ok())
            .collect();
        if tids.is_empty() {
            return Err(ViewError::Input(format!(
                "the bundle has no {prefix}<tid>/stat: per-thread data was not collected (ps -ef shows processes)"
            )));
        }
        tids.sort_unstable();
        for tid in tids {
            // procps's readeither reports the leader from /proc/<pid>/stat, whole-process
            // figures, and the other threads from their own task stat.
            if tid == pid {
                tasks.push(task.clone());
                continue;
            }
            let e = format!("{prefix}{tid}/stat");
            let mut s = parse_stat(&e, &text(&input, &e)?)?;
            s.threads = task.stat.threads;
            tasks.push(Task { tid, stat: s, ..task.clone() });
        }
    }
    // PID-like columns: pid_max's digits, at least the title's width.
    let pw = host.pid_digits.max(3);
    let user_col = |w| Col { head: "", width: w, just: Just::Left };
    let mut cols: Vec<Col> = Vec::new();
    match style {
        PsStyle::Aux => {
            cols.push(Col { head: "USER", ..user_col(8) });
            cols.push(Col { head: "PID", width: pw, just: Just::Right });
            if threads {
                cols.push(Col { head: "LWP", width: pw, just: Just::Right });
            }
            for (head, width) in [("%CPU", 4), ("%MEM", 4), ("VSZ", 6), ("RSS", 5)] {
                cols.push(Col { head, width, just: Just::Right });
            }
            cols.push(Col { head: "TTY", width: 8, just: Just::Left });
            cols.push(Col { head: "STAT", width: 4, just: Just::Left });
            cols.push(Col { head: "START", width: 5, just: Just::Right });
            cols.push(Col { head: "TIME", width: 6, just: Just::Right });
            cols.push(Col { head: "COMMAND", width: 0, just: Just::Unlimited });
        }
        PsStyle::Full => {
            cols.push(Col { head: "UID", ..user_col(8) });
            cols.push(Col { head: "PID", width: pw, just: Just::Right });
            cols.push(Col { head: "PPID", width: pw.max(4), just: Just::Right });
            if threads {
                cols.push(Col { head: "LWP", width: pw, just: Just::Right });
            }
            cols.push(Col { head: "C", width: 2, just: Just::Right });
            if threads {
                cols.push(Col { head: "NLWP", width: 4, just: Just::Right });
            }
            cols.push(Col { head: "STIME", width: 5, just: Just::Right });
            cols.push(Col { head: "TTY", width: 8, just: Just::Left });
            cols.push(Col { head: "TIME", width: 8, just: Just::Right });
            cols.push(Col { head: "CMD", width: 0, just: Just::Unlimited });
        }
        PsStyle::Plain => {
            cols.push(Col { head: "PID", width: pw, just: Just::Right });
            if threads {
                cols.push(Col { head: "LWP", width: pw, just: Just::Right });
            }
            cols.push(Col { head: "TTY", width: 8, just: Just::Left });
            cols.push(Col { head: "TIME", width: 8, just: Just::Right });
            cols.push(Col { head: "CMD", width: 0, just: Just::Unlimited });
        }
    }
    let heads: Vec<String> = cols.iter().map(|c| c.head.to_string()).collect();
    writeln!(out, "{}", ps_line(&cols, &heads))?;
    let ticks = host.ticks();
    for t in &tasks {
        let user = match users.get(&t.euid) {
            Some(n) if n.chars().count() <= 8 => escape(n),
            _ => t.euid.to_string(),
        };
        let s = &t.stat;
        let mut cells = Vec::new();
        match style {
            PsStyle::Aux => {
                cells.extend([user, t.pid.to_string()]);
                if threads {
                    cells.push(t.tid.to_string());
                }
                cells.extend([
                    host.pcpu(s, ticks),
                    host.pmem(t),
                    t.vm_size.to_string(),
                    t.vm_rss.to_string(),
                    tty_name(s.tty),
                    stat_flags(t),
                    host.start(s),
                    host.bsdtime(s),
                    t.args.clone(),
                ]);
            }
            PsStyle::Full => {
                cells.extend([user, t.pid.to_string(), s.ppid.to_string()]);
                if threads {
                    cells.push(t.tid.to_string());
                }
                cells.push(host.c(s, ticks));
                if threads {
                    cells.push(s.threads.to_string());
                }
                cells.extend([host.start(s), tty_name(s.tty), host.time(s), t.args.clone()]);
            }
            PsStyle::Plain => {
                cells.push(t.pid.to_string());
                if threads {
                    cells.push(t.tid.to_string());
                }
                cells.extend([tty_name(s.tty), host.time(s), escape(&s.comm)]);
            }
        }
        writeln!(out, "{}", ps_line(&cols, &cells))?;
    }
    Ok(())
}

/// `aux` (BSD letters, any order, without a dash) or `-e` with `-f` and `-L`.
fn ps_options(args: &[String]) -> Result<(PsStyle, bool), ViewError> {
    if let [one] = args {
        if !one.starts_with('-') {
            let mut letters: Vec<char> = one.chars().collect();
            letters.sort_unstable();
            letters.dedup();
            if letters == ['a', 'u', 'x'] {
                return Ok((PsStyle::Aux, false));
            }
            return Err(ViewError::Usage(format!("ps: BSD options {one:?}: only `aux` is replayed")));
        }
    }
    let (mut every, mut full, mut threads) = (false, false, false);
    for (flag, _) in letter_options("ps", args, "eAfL", "")? {
        match flag {
            'e' | 'A' => every = true,
            'f' => full = true,
            _ => threads = true,
        }
    }
    if !every {
        return Err(ViewError::Usage("ps: the bundle holds every process: use `aux`, -e, -ef, -eL or -eLf".into()));
    }
    Ok((if full { PsStyle::Full } else { PsStyle::Plain }, threads))
}

fn ps_host(input: &Input) -> Result<Host, ViewError> {
    let info = input.system_info();
    let stat = text(input, "proc/stat")?;
    let btime = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
        .ok_or_else(|| bad("proc/stat", "no btime line"))?;
    let up = super::procps::uptime_secs(input)?;
    if up < 0.0 {
        return Err(bad("proc/uptime", format!("a negative uptime ({up})")));
    }
    let mem = input.meminfo("proc/meminfo").map_err(skip)?;
    let (now, offset) = match input.manifest().filter(|m| m.clocks.realtime_ns > 0) {
        Some(m) => ((m.clocks.realtime_ns / 1_000_000_000) as i64, m.host.utc_offset_seconds),
        None => ((btime as f64 + up) as i64, 0),
    };
    let pid_max: u64 = input.text("proc/sys/kernel/pid_max").ok().and_then(|t| t.trim().parse().ok()).unwrap_or(32_768);
    let pid_digits = pid_max.saturating_sub(1).max(1).to_string().len();
    Ok(Host {
        hz: info.clock_ticks,
        btime,
        boot_tics: (up * info.clock_ticks as f64) as u64,
        read_window: read_window(input),
        now,
        offset,
        mem_total: mem.mem_total / 1024,
        pid_digits,
    })
}

// ---------------------------------------------------------------------------------------
// lsof

/// One line of lsof, its columns as text.
struct LsofLine {
    command: String,
    pid: u32,
    /// A thread's id and name, for the lines lsof repeats for each thread but the leader.
    task: Option<(u32, String)>,
    user: String,
    fd: String,
    access: char,
    kind: String,
    device: String,
    size_off: String,
    nlink: String,
    node: String,
    name: String,
}

const SOCKET_KINDS: &[&str] = &["IPv4", "IPv6", "unix", "sock", "netlink", "pack"];

fn lsof(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let mut deleted_only = false;
    let mut nlink_col = false;
    let mut pids: Option<Vec<u32>> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "+L1" => {
                deleted_only = true;
                nlink_col = true;
            }
            "+L" => nlink_col = true,
            // Numeric anyway; selections are always ANDed (as with -a).
            "-n" | "-P" | "-nP" | "-Pn" | "-a" => {}
            "-p" => {
                let v = it.next().ok_or_else(|| ViewError::Usage("lsof: -p needs a PID list".into()))?;
                let list: Result<Vec<u32>, _> = v.split(',').map(str::parse).collect();
                pids = Some(list.map_err(|_| ViewError::Usage(format!("lsof: -p takes PIDs, not {v:?}")))?);
            }
            other => {
                return Err(ViewError::Usage(format!(
                    "lsof: unknown option {other:?} (it takes +L1, +L, -p PID[,PID], -a, -n, -P)"
                )))
            }
        }
    }
    let input = Input::new(bundle);
    let files = input.open_files().map_err(skip)?;
    let inet = net::inet_by_inode(&input);
    let unix = net::unix_by_inode(&input);
    let mut chosen: Vec<&OpenFile> = files
        .iter()
        .filter(|f| match &pids {
            None => true,
            Some(p) => p.contains(&f.pid),
        })
        .filter(|f| {
            !deleted_only
                || (f.nlink < 1 && f.error.is_none() && !SOCKET_KINDS.contains(&f.kind.as_str()) && f.kind != "unknown")
        })
        .collect();
    // lsof lists processes by PID; a process's files in the order the scan took them.
    chosen.sort_by_key(|f| f.pid);
    // Without a selection (-p, +L1), lsof 4.95 repeats a process's files for each of its other threads, with TID and TASKCMD, after the
    // process's own lines.
    let threads = if pids.is_none() && !deleted_only { lsof_threads(&input, &chosen) } else { BTreeMap::new() };
    let mut lines: Vec<LsofLine> = Vec::with_capacity(chosen.len());
    for group in chosen.chunk_by(|a, b| a.pid == b.pid) {
        lines.extend(group.iter().map(|f| lsof_line(f, &inet, &unix)));
        for (tid, comm) in threads.get(&group[0].pid).into_iter().flatten() {
            for f in group.iter() {
                let mut l = lsof_line(f, &inet, &unix);
                l.task = Some((*tid, comm.clone()));
                lines.push(l);
            }
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    let w = |f: &dyn Fn(&LsofLine) -> usize, title: &str| lines.iter().map(f).max().unwrap_or(0).max(title.len());
    let cmd_w = w(&|l| l.command.chars().count().min(9), "COMMAND");
    let tasks = lines.iter().any(|l| l.task.is_some());
    let tid_w = w(&|l| l.task.as_ref().map_or(0, |t| t.0.to_string().len()), "TID");
    let tcmd_w = w(&|l| l.task.as_ref().map_or(0, |t| t.1.chars().count().min(9)), "TASKCMD");
    let pid_w = w(&|l| l.pid.to_string().len(), "PID");
    let user_w = w(&|l| l.user.len(), "USER");
    let fd_w = w(&|l| l.fd.len() + 2, "FD");
    let type_w = w(&|l| l.kind.len(), "TYPE");
    let dev_w = w(&|l| l.device.len(), "DEVICE");
    let size_w = w(&|l| l.size_off.len(), "SIZE/OFF");
    let nl_w = w(&|l| l.nlink.len(), "NLINK");
    let node_w = w(&|l| l.node.len(), "NODE");
    let task_head = if tasks { format!(" {:>tid_w$} {:<tcmd_w$}", "TID", "TASKCMD") } else { String::new() };
    let mut head = format!(
        "{:<cmd_w$} {:>pid_w$}{task_head} {:>user_w$} {:>fw$}   {:>type_w$} {:>dev_w$} {:>size_w$}",
        "COMMAND",
        "PID",
        "USER",
        "FD",
        "TYPE",
        "DEVICE",
        "SIZE/OFF",
        fw = fd_w - 2
    );
    if nlink_col {
        head += &format!(" {:>nl_w$}", "NLINK");
    }
    head += &format!(" {:>node_w$} NAME", "NODE");
    writeln!(out, "{head}")?;
    for l in &lines {
        let cmd: String = l.command.chars().take(cmd_w).collect();
        let task = match (&l.task, tasks) {
            (Some((tid, c)), _) => format!(" {tid:>tid_w$} {:<tcmd_w$}", c.chars().take(tcmd_w).collect::<String>()),
            (None, true) => format!(" {:tid_w$} {:tcmd_w$}", "", ""),
            (None, false) => String::new(),
        };
        let mut s = format!(
            "{cmd:<cmd_w$} {:>pid_w$}{task} {:>user_w$} {:>fw$}{}  {:>type_w$} {:>dev_w$} {:>size_w$}",
            l.pid,
            l.user,
            l.fd,
            l.access,
            l.kind,
            l.device,
            l.size_off,
            fw = fd_w - 2
        );
        if nlink_col {
            s += &format!(" {:>nl_w$}", l.nlink);
        }
        s += &format!(" {:>node_w$} {}", l.node, l.name);
        writeln!(out, "{s}")?;
    }
    Ok(())
}

/// The threads other than the leader of the chosen processes: tid and name, from the
/// bundle's per-thread stat copies.
fn lsof_threads(input: &Input, chosen: &[&OpenFile]) -> BTreeMap<u32, Vec<(u32, String)>> {
    let pids: std::collections::BTreeSet<u32> = chosen.iter().map(|f| f.pid).collect();
    let mut out: BTreeMap<u32, Vec<(u32, String)>> = BTreeMap::new();
    for pid in pids {
        let prefix = format!("proc/{pid}/task/");
        let mut tids: Vec<u32> = input
            .entries_under(&prefix)
            .iter()
            .filter_map(|e| e.strip_prefix(&prefix)?.strip_suffix("/stat")?.parse().ok())
            .filter(|t| *t != pid)
            .collect();
        tids.sort_unstable();
        for tid in tids {
            let Ok(t) = input.text(&format!("{prefix}{tid}/stat")) else { continue };
            let comm = match (t.find('('), t.rfind(')')) {
                (Some(a), Some(b)) if a < b => escape(&t[a + 1..b]),
                _ => continue,
            };
            out.entry(pid).or_default().push((tid, comm));
        }
    }
    out
}

fn lsof_line(f: &OpenFile, inet: &BTreeMap<u64, InetSocket>, unix: &BTreeMap<u64, UnixSocket>) -> LsofLine {
    let numbered = f.fd.parse::<u64>().is_ok();
    let access = match f.mode.as_str() {
        "r" => 'r',
        "w" => 'w',
        "u" => 'u',
        _ => ' ',
    };
    let user = if f.user.is_empty() { f.uid.to_string() } else { f.user.clone() };
    let mut l = LsofLine {
        command: escape(&f.command),
        pid: f.pid,
        task: None,
        user,
        // lsof 4.95 keeps a descriptor number as `%4d`.
        fd: if numbered { format!("{:>4}", f.fd) } else { f.fd.clone() },
        access: if numbered { access } else { ' ' },
        kind: f.kind.clone(),
        device: f.device.clone(),
        size_off: String::new(),
        nlink: if f.error.is_none() && !SOCKET_KINDS.contains(&f.kind.as_str()) {
            format!(" {}", f.nlink)
        } else {
            String::new()
        },
        node: if f.inode > 0 { f.inode.to_string() } else { String::new() },
        name: f.target.clone(),
    };
    let offset = |o: u64| {
        let d = format!("0t{o}");
        if d.len() > 10 {
            format!("0x{o:x}")
        } else {
            d
        }
    };
    match f.kind.as_str() {
        "CHR" | "FIFO" => l.size_off = offset(f.offset.unwrap_or(0)),
        "IPv4" | "IPv6" => {
            l.device = f.inode.to_string();
            l.size_off = offset(0);
            match inet.get(&f.inode) {
                Some(s) => {
                    l.node = s.lsof_proto().to_string();
                    l.name = s.lsof_name();
                }
                None => {
                    l.node = String::new();
                    l.name = "protocol: unknown".into();
                }
            }
        }
        "unix" => {
            l.size_off = offset(0);
            match unix.get(&f.inode) {
                Some(u) => {
                    l.device = format!("0x{}", u.address);
                    l.name = u.lsof_name();
                }
                None => l.name = "socket".into(),
            }
        }
        "sock" | "netlink" | "pack" => l.size_off = offset(0),
        "unknown" => {}
        _ => {
            l.size_off =
                f.size.map_or_else(|| if f.kind == "a_inode" { "0".into() } else { String::new() }, |s| s.to_string())
        }
    }
    if f.target.starts_with("pipe:[") {
        l.name = "pipe".into();
    } else if let Some(a) = f.target.strip_prefix("anon_inode:") {
        l.name = a.to_string();
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_commands_parse() {
        let s =
            parse_stat("x", "42 (a (b) c) S 1 42 42 34816 42 4194560 1 0 0 0 7 3 0 0 20 -5 3 0 12345 1000 10").unwrap();
        assert_eq!((s.comm.as_str(), s.state, s.ppid, s.tty, s.utime, s.stime), ("a (b) c", 'S', 1, 34816, 7, 3));
        assert_eq!((s.nice, s.threads, s.start), (-5, 3, 12345));
        assert!(parse_stat("proc/1/stat", "1 (x) S 1 2").unwrap_err().to_string().contains("proc/1/stat"));
    }

    #[test]
    fn columns_overflow_as_procps_pushes_them() {
        let cols = [
            Col { head: "A", width: 5, just: Just::Right },
            Col { head: "B", width: 4, just: Just::Right },
            Col { head: "C", width: 0, just: Just::Unlimited },
        ];
        let cells = |v: [&str; 3]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(ps_line(&cols, &cells(["1", "2", "x"])), "    1    2 x");
        // 7 wide in a 5 column: the next column gives up its padding.
        assert_eq!(ps_line(&cols, &cells(["1234567", "2", "x"])), "1234567  2 x");
        assert_eq!(ps_line(&cols, &cells(["1234567", "22222", "x"])), "1234567 22222 x");
    }

    #[test]
    fn tty_names() {
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name(34816), "pts/0");
        assert_eq!(tty_name((136 << 8) | 5), "pts/5");
        assert_eq!(tty_name((4 << 8) | 1), "tty1");
        assert_eq!(tty_name((4 << 8) | 64), "ttyS0");
    }
}
