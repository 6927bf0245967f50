//! `top` in batch mode: what procps-ng 4.0.2's `top -b -n1` (Debian 12) printed on the
//! box, from the bundle's raw /proc copies and its sampling window.
//!
//! - The first line is uptime's (`top - ` + procps's uptime line at the capture's clock,
//!   the same user count rules as the `uptime` view), the Tasks line counts the states of
//!   the bundle's `proc/<pid>/stat` as libproc2 does (running R; stopped T, t; zombie Z;
//!   everything else sleeping), and the memory lines are top's `MiB Mem` / `MiB Swap`
//!   with libproc2's arithmetic (used = MemTotal - MemAvailable, buff/cache = Buffers +
//!   Cached + SReclaimable) and top's `%#.1f` in a 9-character cell.
//! - `%Cpu(s)` (or, with `-1`, one `%CpuN` per CPU, two abreast as 4.0.2 lays them out)
//!   is over the sampling window, first to last sample: top's percentages of the
//!   window's tick deltas (total = user + nice + system + idle + iowait + irq + softirq +
//!   steal; a counter running backwards makes the CPU read 100 % idle, as libproc2
//!   resets it). The real `top -b -n1` takes its first frame over a fraction of a second;
//!   the window is what the bundle measured.
//! - Processes are those of the bundle's `proc/`, %CPU the `utime + stime` delta of
//!   each between the window's first and last `samples/<n>/proc/<pid>/stat` (same start
//!   time), per second of the window, Irix mode (100 % = one CPU) as top's default,
//!   capped at 100 % per thread. The list is sorted by that delta, busiest first, ties
//!   in pid order (top's stable sort of the pid-ordered list). VIRT, RES and SHR are
//!   `statm`'s (KiB, top's scaling to m/g/t when too wide), TIME+ is `utime + stime`.
//! - Lines are cut at 80 columns as top does when its output is not a terminal
//!   (`-w N` for another width); process lines lose their trailing blanks, as top's
//!   batch mode prints them. `-b` and `-n N` are accepted and change nothing: one
//!   frame is replayed.

use std::collections::BTreeMap;
use std::io::Write;

use snap_analyzers::samples::{Ticks, Window};
use snap_analyzers::Input;

use super::processes::{parse_stat, passwd};
use super::procps::{capture_time, load_averages, mem, uptime_line, uptime_secs, users, Mem};
use super::{bad, skip, text};
use super::{letter_options, View, ViewError};

pub const TOP: View = View {
    name: "top",
    replays: "top -b -n1: summary, %Cpu over the window, processes by %CPU over the window; -1 (per CPU), -w N",
    needs: &["proc/uptime", "proc/loadavg", "proc/meminfo", "proc/stat", super::PER_PROCESS],
    render: top,
};

const MEMINFO: &str = "proc/meminfo";

/// One process as top shows it.
struct Proc {
    pid: u32,
    user: String,
    state: char,
    priority: i64,
    nice: i64,
    threads: i64,
    ticks: u64,
    virt: u64,
    res: u64,
    shr: u64,
    comm: String,
    delta: u64,
}

struct TopOptions {
    per_cpu: bool,
    width: usize,
}

fn options(args: &[String]) -> Result<TopOptions, ViewError> {
    let mut o = TopOptions { per_cpu: false, width: 80 };
    for (flag, value) in letter_options("top", args, "b1", "nw")? {
        match flag {
            '1' => o.per_cpu = true,
            'n' if value.as_deref().and_then(|v| v.parse::<u32>().ok()).is_none() => {
                return Err(ViewError::Usage("top: -n takes a number of frames".into()));
            }
            'w' => {
                o.width = match value.as_deref().and_then(|v| v.parse::<usize>().ok()) {
                    Some(w) if (1..=512).contains(&w) => w,
                    _ => return Err(ViewError::Usage("top: -w takes a width from 1 to 512".into())),
                }
            }
            _ => {} // -b: batch is the only mode replayed; -n N: one frame is
        }
    }
    Ok(o)
}

/// One CPU line of top: `%<label>:` and the eight percentages, as sum_tics prints them.
fn cpu_line(label: &str, d: &Ticks) -> String {
    let tot = d.user + d.nice + d.system + d.idle + d.iowait + d.irq + d.softirq + d.steal;
    let (mut idle, mut tot) = (d.idle, tot);
    if tot < 1 {
        (idle, tot) = (1, 1);
    }
    let scale = 100.0f32 / tot as f32;
    let p = |v: u64| f64::from(v as f32 * scale);
    format!(
        "%{label}:{:5.1} us,{:5.1} sy,{:5.1} ni,{:5.1} id,{:5.1} wa,{:5.1} hi,{:5.1} si,{:5.1} st ",
        p(d.user),
        p(d.system),
        p(d.nice),
        p(idle),
        p(d.iowait),
        p(d.irq),
        p(d.softirq),
        p(d.steal)
    )
}

/// The ticks between two readings of one CPU, zero when any counter ran backwards (a CPU
/// brought back online), as libproc2's stat_derive_unique does.
fn delta(a: &Ticks, b: &Ticks) -> Ticks {
    let pairs = [
        (a.user, b.user),
        (a.nice, b.nice),
        (a.system, b.system),
        (a.idle, b.idle),
        (a.iowait, b.iowait),
        (a.irq, b.irq),
        (a.softirq, b.softirq),
        (a.steal, b.steal),
    ];
    if pairs.iter().any(|(x, y)| y < x) {
        return Ticks::default();
    }
    Ticks {
        user: b.user - a.user,
        nice: b.nice - a.nice,
        system: b.system - a.system,
        idle: b.idle - a.idle,
        iowait: b.iowait - a.iowait,
        irq: b.irq - a.irq,
        softirq: b.softirq - a.softirq,
        steal: b.steal - a.steal,
    }
}

/// top's memory cell: `%#.1f ` of MiB in 10 bytes, its 9th character `+` when cut.
fn mib(kib: u64) -> String {
    let s = format!("{:.1} ", f64::from(kib as f32 / 1024.0f32));
    if s.len() > 9 {
        format!("{}+", &s[..8])
    } else {
        s
    }
}

fn memory_lines(m: &Mem) -> (String, String) {
    let line1 = format!(
        "MiB Mem : {:>9}total, {:>9}free, {:>9}used, {:>9}buff/cache     ",
        mib(m.total),
        mib(m.free),
        mib(m.used),
        mib(m.buffers + m.cached_all)
    );
    let line2 = format!(
        "MiB Swap: {:>9}total, {:>9}free, {:>9}used. {:>9}avail Mem ",
        mib(m.swap_total),
        mib(m.swap_free),
        mib(m.swap_used),
        mib(m.available)
    );
    (line1, line2)
}

fn cut(s: &str, width: usize) -> &str {
    match s.char_indices().nth(width) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// top's scale_mem from KiB: plain KiB when it fits, else m (`%#.1f`), g (`%#.3f`),
/// t (`%#.2f`), p (`%#.1f`), e (`%#.0f`).
fn scale_mem(kib: u64, width: usize) -> String {
    let mut num = kib as f32;
    let s = format!("{num:.0}");
    if s.len() <= width {
        return s;
    }
    for (sfx, prec) in [('m', 1), ('g', 3), ('t', 2), ('p', 1), ('e', 0)] {
        num /= 1024.0;
        let s = format!("{:.*}{sfx}", prec, f64::from(num));
        let s = if prec == 0 { format!("{}.{sfx}", &s[..s.len() - 1]) } else { s };
        if s.len() <= width {
            return s;
        }
    }
    "?".into()
}

/// top's scale_pcnt: `%#.1f`, else `%.0f`, else `?`.
fn scale_pcnt(v: f32, width: usize) -> String {
    let s = format!("{:.1}", f64::from(v));
    if s.len() <= width {
        return s;
    }
    let s = format!("{:.0}", f64::from(v));
    if s.len() <= width {
        return s;
    }
    "?".into()
}

/// top's scale_tics for TIME+: `M:SS.cc`, else `M:SS`, else `H,MM`, else `D+HH`.
fn scale_tics(ticks: u64, hz: u64, width: usize) -> String {
    let mut nt = ticks.wrapping_mul(100) / hz.max(1);
    let cc = nt % 100;
    nt /= 100;
    let ss = nt % 60;
    nt /= 60;
    for s in [format!("{nt}:{ss:02}.{cc:02}"), format!("{nt}:{ss:02}")] {
        if s.len() <= width {
            return s;
        }
    }
    let mm = nt % 60;
    let hours = nt / 60;
    let s = format!("{hours},{mm:02}");
    if s.len() <= width {
        return s;
    }
    let s = format!("{}+{:02}", hours / 24, hours % 24);
    if s.len() <= width {
        return s;
    }
    let days = hours / 24;
    format!("{}+{:02}", days / 7, days % 7)
}

/// make_str: a string cut to `width`, its last character `+` when cut.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('+');
    t
}

fn top(bundle: &snap_bundle::Bundle, args: &[String], out: &mut dyn Write) -> Result<(), ViewError> {
    let o = options(args)?;
    let input = Input::new(bundle);
    let info = input.system_info();
    let hz = info.clock_ticks.max(1);
    let page_kib = (info.page_size / 1024).max(1);

    // Everything read before anything is printed, so that a bad entry leaves no half output.
    let up = uptime_secs(&input)?;
    let load = load_averages(&input)?;
    let (now_ns, offset) = capture_time(&input, up)?;
    let m = mem(&input, MEMINFO)?;
    if !input.has("proc/stat") {
        return Err(ViewError::Input("the bundle has no proc/stat".into()));
    }
    let window = Window::read(&input).map_err(skip)?;
    super::need_processes(&input)?;
    let (first, last) = (window.first(), window.last());
    let seconds = window.seconds_between(first, last) as f32;
    let names = passwd(&input);

    // Per-process tick deltas over the window, for the processes in both samples.
    let sample_ticks = |index: usize| -> BTreeMap<u32, (u64, u64)> {
        let prefix = format!("samples/{index}/proc/");
        input
            .entries_under(&prefix)
            .iter()
            .filter_map(|e| e.strip_prefix(&prefix)?.strip_suffix("/stat")?.parse::<u32>().ok())
            .filter_map(|pid| {
                let e = format!("{prefix}{pid}/stat");
                let s = parse_stat(&e, &input.text(&e).ok()?).ok()?;
                Some((pid, (s.start, s.utime.wrapping_add(s.stime))))
            })
            .collect()
    };
    let (before, after) = (sample_ticks(first.index), sample_ticks(last.index));

    let mut procs = Vec::new();
    for pid in input.pids() {
        let entry = format!("proc/{pid}/stat");
        let s = parse_stat(&entry, &text(&input, &entry)?)?;
        // A process that exited while it was being read is listed by neither.
        let Ok(status) = input.text(&format!("proc/{pid}/status")) else { continue };
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:")?.split_whitespace().nth(1)?.parse::<u32>().ok())
            .ok_or_else(|| bad(&format!("proc/{pid}/status"), "no Uid line"))?;
        let statm_entry = format!("proc/{pid}/statm");
        let statm: Vec<u64> = match input.text(&statm_entry) {
            Ok(t) => t.split_whitespace().take(3).map_while(|w| w.parse().ok()).collect(),
            Err(_) => Vec::new(),
        };
        let statm = if statm.len() == 3 { statm } else { vec![0, 0, 0] };
        let delta = match (before.get(&pid), after.get(&pid)) {
            (Some(a), Some(b)) if a.0 == b.0 => b.1.saturating_sub(a.1),
            _ => 0,
        };
        procs.push(Proc {
            pid,
            user: names.get(&euid).cloned().unwrap_or_else(|| euid.to_string()),
            state: s.state,
            priority: s.priority,
            nice: s.nice,
            threads: s.threads,
            ticks: s.utime.wrapping_add(s.stime),
            virt: statm[0] * page_kib,
            res: statm[1] * page_kib,
            shr: statm[2] * page_kib,
            comm: s.comm,
            delta,
        });
    }
    // Stable: equal deltas keep pid order.
    procs.sort_by_key(|p| std::cmp::Reverse(p.delta));

    let width = o.width;
    let mut summary = Vec::new();
    let clock = uptime_line((now_ns / 1_000_000_000) as i64, offset, up, users(&input), [load[0], load[1], load[2]]);
    summary.push(format!("top -{clock}"));
    let count = |f: fn(char) -> bool| procs.iter().filter(|p| f(p.state)).count();
    let running = count(|c| c == 'R');
    let stopped = count(|c| c == 'T' || c == 't');
    let zombie = count(|c| c == 'Z');
    summary.push(format!(
        "Tasks:{:4} total,{:4} running,{:4} sleeping,{:4} stopped,{:4} zombie",
        procs.len(),
        running,
        procs.len() - running - stopped - zombie,
        stopped,
        zombie
    ));
    let (mem1, mem2) = memory_lines(&m);
    if o.per_cpu {
        // 4.0.2's -1 shows the CPUs two abreast, and memory and swap side by side.
        let lines: Vec<String> = last
            .cpus
            .iter()
            .map(|(id, t)| {
                let d = first.cpus.iter().find(|(i, _)| i == id).map(|(_, a)| delta(a, t)).unwrap_or_default();
                cpu_line(&format!("Cpu{id:<3}"), &d)
            })
            .collect();
        for pair in lines.chunks(2) {
            summary.push(pair.join("  "));
        }
        summary.push(format!("{mem1}  {mem2}"));
    } else {
        summary.push(cpu_line("Cpu(s)", &delta(&first.total, &last.total)));
        summary.push(mem1);
        summary.push(mem2);
    }
    for line in &summary {
        writeln!(out, "{}", cut(line, width))?;
    }
    writeln!(out)?;

    let pid_max: u64 = input.text("proc/sys/kernel/pid_max").ok().and_then(|t| t.trim().parse().ok()).unwrap_or(32_768);
    let pw = pid_max.to_string().len().max(5);
    let fixed = [pw, 8, 3, 3, 7, 6, 6, 1, 5, 5, 9];
    let used: usize = fixed.iter().map(|w| w + 1).sum();
    let command_width = width.saturating_sub(used + 1);
    let row = |cells: [String; 11], command: &str| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(fixed).enumerate() {
            if i == 1 {
                s += &format!("{c:<w$} ");
            } else {
                s += &format!("{c:>w$} ");
            }
        }
        s += &fit(command, command_width);
        cut(&s, width).trim_end().to_string()
    };
    let heads = ["PID", "USER", "PR", "NI", "VIRT", "RES", "SHR", "S", "%CPU", "%MEM", "TIME+"].map(String::from);
    writeln!(out, "{}", row(heads, "COMMAND"))?;
    let cpus = last.cpus.len().max(1) as f32;
    let pmax = (99.9f32 * cpus).min(999.9);
    let etscale = 100.0f32 / (hz as f32 * seconds.max(f32::MIN_POSITIVE));
    for p in &procs {
        let mut u = p.delta as f32 * etscale;
        if u > 100.0 * p.threads as f32 {
            u = 100.0 * p.threads as f32;
        }
        if u > pmax {
            u = pmax;
        }
        let pmem = p.res as f32 * 100.0 / m.total.max(1) as f32;
        let cells = [
            p.pid.to_string(),
            fit(&p.user, 8),
            if p.priority < -99 || p.priority > 999 { "rt".into() } else { p.priority.to_string() },
            p.nice.to_string(),
            scale_mem(p.virt, 7),
            scale_mem(p.res, 6),
            scale_mem(p.shr, 6),
            p.state.to_string(),
            scale_pcnt(u, 5),
            scale_pcnt(pmem, 5),
            scale_tics(p.ticks, hz, 9),
        ];
        writeln!(out, "{}", row(cells, &p.comm))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_scale_as_top_4_0_2() {
        assert_eq!(scale_mem(9_999_999, 7), "9999999");
        assert_eq!(scale_mem(12_345_678, 7), "11.774g");
        assert_eq!(scale_mem(1_234_567, 6), "1.177g");
        assert_eq!(scale_tics(2291, 100, 9), "0:22.91");
        assert_eq!(scale_tics(100 * 3600 * 30, 100, 9), "1800:00");
        assert_eq!(scale_pcnt(100.0, 5), "100.0");
        assert_eq!(scale_pcnt(199.8, 5), "199.8");
        assert_eq!(fit("rcu_preempt", 10), "rcu_preem+");
        assert_eq!(mib(24_683_656), "24105.1 ");
    }

    #[test]
    fn cpu_lines_use_the_tick_deltas() {
        let d = Ticks { user: 50, system: 25, idle: 25, ..Ticks::default() };
        assert_eq!(
            cpu_line("Cpu(s)", &d),
            "%Cpu(s): 50.0 us, 25.0 sy,  0.0 ni, 25.0 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st "
        );
        assert!(cpu_line("Cpu0  ", &Ticks::default()).contains("100.0 id"));
    }
}
