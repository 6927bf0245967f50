//! The `ps` listings of a sos report (`sos_commands/process/ps_*`) combined into one
//! [`Process`] record per pid.
//!
//! sos 3.x to 4.x run several listings, each with fields the others lack:
//!
//! | listing | gives |
//! |---|---|
//! | `ps auxwww` (sos 3.x, 4.0) | user, %CPU, VSZ, RSS, STAT, START, TIME, args |
//! | `ps auxwwwm` | the same, each process line followed by one line per thread |
//! | `ps alxwww` | uid, ppid, VSZ, RSS, STAT, TIME, args |
//! | `ps -elfL` | one line per thread: user, ppid, S, NLWP, STIME, args |
//! | `ps axo pid,ppid,user,group,lwp,nlwp,start_time,comm,cgroup` | ppid, user, NLWP, comm |
//! | `ps axo flags,state,uid,pid,ppid,...,wchan:20,lstart,tty,time,cmd` | uid, ppid, S, full start date, TIME, args |
//!
//! **Columns** are found by their header names, so other option sets read as well.
//! Every column is one whitespace-separated word (WCHAN, NI and the like may be `-`)
//! except: the last column when it is the command line (COMMAND, CMD: the rest of the
//! line, spaces and all); COMMAND when it is `comm` and not last (the axo listing above,
//! where CGROUP follows: the words between the columns before and after it, since comm
//! may hold spaces, `tmux: server`); and STARTED, five words for `lstart`
//! (`Wed Feb  9 22:33:20 2022`, kept as printed) or two for `start` (`Feb 09`). COMMAND
//! is `comm` rather than the command line when it is not last, when the entry name ends
//! in `comm` (`ps_-eo_pid_comm`), or for BSD options with `c` (`ps_auxcww`). Lines that do
//! not fit their header (a line cut short, a figure that is not a number) are skipped.
//!
//! **Threads.** `auxwwwm` prints a process line whose STAT is `-` followed by one line
//! per thread with `-` as PID; the process's state is its first thread's (the thread
//! group leader, whose state `/proc/<pid>/stat` shows). In a listing with an LWP column
//! that repeats pids (`-elfL`, `-eLf`) the lines of a pid are its threads: the state is
//! the line whose LWP is the pid, and TIME and %CPU there are per thread, so they are not
//! used. `threads` comes from NLWP, else from counting thread lines.
//!
//! **Combining.** The listings were taken one after the other, so short-lived processes
//! (sos's own `ps` and `timeout` children among them) appear in one only, and figures
//! drift between them. Each field comes from the first listing that has it, in the order
//! `auxwww`, `auxwwwm`, `alxwww`, the lstart listing, `-elfL`, the comm listing (told
//! apart by their columns, not their names), then any other; `source` names the listing
//! the state came from (or, with no state anywhere, the first that lists the pid). Two
//! exceptions: `comm` only from a comm column, else derived from the command line by
//! `comm_from_args`; `start` prefers lstart's full date.
//!
//! **Caveats for readers.** ps cuts user names longer than its column with a `+`
//! (`systemd+`), in every listing; a numeric USER or UID (no name) fills `uid` only.
//! `ppid` is 0 when no listing has a PPID column. Zombies read as state `Z`, args
//! `[name] <defunct>`. `rss_kib`/`vsz_kib` come only from RSS/VSZ columns, not SZ (pages).

use std::collections::BTreeMap;

use crate::scan::Process;

/// Combines ps listings, given as (entry name, text), into one record per pid, sorted
/// by pid. Listings that cannot be read are left out; Err when none can, naming each
/// entry and why.
pub fn parse(listings: &[(&str, &str)]) -> Result<Vec<Process>, String> {
    if listings.is_empty() {
        return Err("no ps listing given".into());
    }
    let mut read = Vec::new();
    let mut failures = Vec::new();
    for &(name, text) in listings {
        match Listing::parse(name, text) {
            Ok(listing) => read.push(listing),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    if read.is_empty() {
        return Err(format!("no ps listing could be read: {}", failures.join("; ")));
    }
    read.sort_by_key(|l| l.rank);
    let mut merged: BTreeMap<u32, Merged> = BTreeMap::new();
    for listing in &read {
        for (pid, part) in &listing.procs {
            merged.entry(*pid).or_insert_with(|| Merged::new(*pid, &listing.name)).add(part, &listing.name);
        }
    }
    Ok(merged.into_values().map(Merged::finish).collect())
}

/// A column of a ps listing, by what this module reads from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Pid,
    Ppid,
    /// UID: a number in `l` and `-o uid` listings, a name in `-f` ones.
    Uid,
    /// USER: a name, or the uid when it has none.
    User,
    /// STAT or S.
    State,
    Lwp,
    Nlwp,
    Cpu,
    Vsz,
    Rss,
    Time,
    /// START, STIME: one word (`Feb09`, `10:42`, `2021`).
    Start,
    /// STARTED: lstart's five words or start's one or two.
    Started,
    Comm,
    /// The command line, to the end of the line.
    Args,
    Other,
}

impl Col {
    fn from_header(name: &str) -> Col {
        match name {
            "PID" => Col::Pid,
            "PPID" => Col::Ppid,
            "UID" => Col::Uid,
            "USER" => Col::User,
            "S" | "STAT" => Col::State,
            "LWP" | "SPID" | "TID" => Col::Lwp,
            "NLWP" | "THCNT" => Col::Nlwp,
            "%CPU" => Col::Cpu,
            "VSZ" | "VSIZE" => Col::Vsz,
            "RSS" | "RSZ" => Col::Rss,
            "TIME" => Col::Time,
            "START" | "STIME" => Col::Start,
            "STARTED" => Col::Started,
            "COMMAND" | "CMD" | "ARGS" => Col::Args,
            _ => Col::Other,
        }
    }
}

/// Whether the entry's command line makes its COMMAND column `comm`: `ps -eo pid,comm`
/// (`ps_-eo_pid_comm`), `ps auxcww` (BSD `c`: the true command name).
fn command_is_comm(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    let bsd_c = base.strip_prefix("ps_").and_then(|rest| rest.split('_').next()).is_some_and(|opts| {
        !opts.starts_with('-') && opts.contains('c') && opts.bytes().all(|b| b.is_ascii_alphabetic())
    });
    bsd_c || ["comm", "ucomm", "ucmd"].iter().any(|c| base.ends_with(&format!("_{c}")))
}

/// What one line (or, once grouped, one process) of a listing says.
#[derive(Debug, Clone, Default, PartialEq)]
struct Row {
    /// None for the thread lines of an `m` listing (PID `-`).
    pid: Option<u32>,
    ppid: Option<u32>,
    uid: Option<u32>,
    user: Option<String>,
    state: Option<String>,
    lwp: Option<u32>,
    nlwp: Option<u32>,
    /// Thread lines counted under this process (`m` and `-L` listings).
    counted: Option<u32>,
    cpu: Option<f64>,
    vsz: Option<u64>,
    rss: Option<u64>,
    time: Option<u64>,
    start: Option<String>,
    /// Whether `start` is lstart's full date.
    full_start: bool,
    comm: Option<String>,
    args: Option<String>,
}

/// One listing, its lines grouped into processes.
#[derive(Debug)]
struct Listing {
    name: String,
    /// Where its fields rank when listings disagree: lower first.
    rank: u8,
    procs: Vec<(u32, Row)>,
}

impl Listing {
    fn parse(name: &str, text: &str) -> Result<Listing, String> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines.next().ok_or("empty")?;
        let mut cols: Vec<Col> = header.split_whitespace().map(Col::from_header).collect();
        if !cols.contains(&Col::Pid) {
            return Err(format!("no header with a PID column (first line {:?})", truncated(header)));
        }
        // Only a last COMMAND column runs to the end of the line.
        let last = cols.len() - 1;
        for (i, col) in cols.iter_mut().enumerate() {
            if *col == Col::Args && (i != last || command_is_comm(name)) {
                *col = Col::Comm;
            }
        }
        let rows: Vec<Row> = lines.filter_map(|l| row(&cols, l)).collect();
        if rows.is_empty() {
            return Err("no process line could be read".into());
        }
        let has = |c: Col| cols.contains(&c);
        let by_thread_lines = rows.iter().any(|r| r.pid.is_none());
        let per_thread = !by_thread_lines && has(Col::Lwp) && {
            let mut pids: Vec<Option<u32>> = rows.iter().map(|r| r.pid).collect();
            pids.sort_unstable();
            pids.dedup();
            pids.len() < rows.len() || rows.iter().any(|r| r.lwp.is_some_and(|l| r.pid != Some(l)))
        };
        let (rank, procs) = if by_thread_lines {
            (1, group_thread_lines(rows))
        } else if per_thread {
            (4, group_threads(rows))
        } else {
            let rank = match (has(Col::Cpu), has(Col::State) && has(Col::Vsz), has(Col::Started)) {
                (true, _, _) => 0,
                (_, true, _) => 2,
                (_, _, true) => 3,
                _ => 5,
            };
            (rank, rows.into_iter().filter_map(|r| Some((r.pid?, r))).collect())
        };
        Ok(Listing { name: name.to_string(), rank, procs })
    }
}

/// The start of a line for an error message, at most 60 bytes.
fn truncated(line: &str) -> &str {
    &line[..floor_boundary(line, 60)]
}

/// The largest index at most `max` that is a char boundary of `s`.
fn floor_boundary(s: &str, max: usize) -> usize {
    (0..=max.min(s.len())).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

/// An `m` listing: each process line is followed by its threads' lines (PID `-`). The
/// state is the process line's if it has one, else its first thread's.
fn group_thread_lines(rows: Vec<Row>) -> Vec<(u32, Row)> {
    let mut procs: Vec<(u32, Row)> = Vec::new();
    for row in rows {
        match (row.pid, procs.last_mut()) {
            (Some(pid), _) => procs.push((pid, row)),
            (None, Some((_, process))) => {
                *process.counted.get_or_insert(0) += 1;
                if process.state.is_none() {
                    process.state = row.state;
                }
            }
            (None, None) => {}
        }
    }
    procs
}

/// A listing with one line per thread: the lines of each pid, in order of first
/// appearance, make one process whose state is the main thread's (LWP = PID). Per-thread
/// TIME and %CPU are dropped.
fn group_threads(rows: Vec<Row>) -> Vec<(u32, Row)> {
    let mut procs: Vec<(u32, Row)> = Vec::new();
    let mut index: BTreeMap<u32, usize> = BTreeMap::new();
    for row in rows {
        let Some(pid) = row.pid else { continue };
        let main = row.lwp == Some(pid);
        match index.get(&pid) {
            Some(&i) => {
                let process = &mut procs[i].1;
                *process.counted.get_or_insert(1) += 1;
                if main {
                    process.state = row.state;
                }
            }
            None => {
                index.insert(pid, procs.len());
                procs.push((pid, Row { counted: Some(1), time: None, cpu: None, ..row }));
            }
        }
    }
    procs
}

/// Parses a data line against the columns; None when it does not fit them.
fn row(cols: &[Col], line: &str) -> Option<Row> {
    let words: Vec<&str> = line.split_whitespace().collect();
    // Byte range of words[a..b] in `line`, which they were split from.
    let offset = |w: &str| w.as_ptr() as usize - line.as_ptr() as usize;
    let span = |a: usize, b: usize| -> Option<&str> {
        let (first, last) = (words.get(a)?, words.get(b.checked_sub(1)?)?);
        line.get(offset(first)..offset(last) + last.len())
    };
    let mut r = Row::default();
    let mut w = 0;
    for (i, col) in cols.iter().enumerate() {
        let after = cols.len() - i - 1;
        let n = match col {
            Col::Args => words.len().checked_sub(w)?,
            Col::Comm => words.len().checked_sub(w + after)?,
            Col::Started => match words.get(w).copied()? {
                d if WEEKDAYS.contains(&d) => 5,
                m if MONTHS.contains(&m) => 2,
                _ => 1,
            },
            _ => 1,
        };
        let value = span(w, w + n).filter(|_| n > 0)?;
        w += n;
        let dash = value == "-";
        match col {
            Col::Pid => r.pid = if dash { None } else { Some(value.parse().ok()?) },
            Col::Ppid => r.ppid = number(value)?,
            Col::Uid | Col::User if value.bytes().all(|b| b.is_ascii_digit()) => r.uid = Some(value.parse().ok()?),
            Col::Uid | Col::User => r.user = Some(value.to_string()),
            Col::State if dash => {}
            Col::State => {
                let letter = value.chars().next().filter(char::is_ascii_uppercase)?;
                r.state = Some(letter.to_string());
            }
            Col::Lwp => r.lwp = number(value)?,
            Col::Nlwp => r.nlwp = number(value)?,
            Col::Cpu if dash => {}
            Col::Cpu => {
                value.bytes().all(|b| b.is_ascii_digit() || b == b'.').then_some(())?;
                r.cpu = Some(value.parse().ok()?);
            }
            Col::Vsz => r.vsz = number(value)?,
            Col::Rss => r.rss = number(value)?,
            Col::Time if dash => {}
            Col::Time => r.time = Some(cpu_time(value)?),
            Col::Start | Col::Started => {
                r.full_start = n == 5;
                r.start = Some(value.to_string());
            }
            Col::Comm => r.comm = Some(value.to_string()),
            Col::Args => r.args = Some(value.to_string()),
            Col::Other => {}
        }
    }
    (w == words.len()).then_some(r)
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A numeric column: Some(None) for `-`, None (the line does not fit) for other words.
fn number<T: std::str::FromStr>(value: &str) -> Option<Option<T>> {
    if value == "-" {
        Some(None)
    } else {
        value.parse().ok().map(Some)
    }
}

/// ps's TIME in seconds: `1:47` (minutes:seconds, as BSD-style listings print it, the
/// minutes unbounded), `00:01:47`, `2-03:04:05` (days-hours:minutes:seconds).
fn cpu_time(text: &str) -> Option<u64> {
    let (days, clock) = match text.split_once('-') {
        Some((days, clock)) => (days.parse::<u64>().ok()?, clock),
        None => (0, text),
    };
    let parts: Vec<u64> = clock.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let (h, m, s) = match parts[..] {
        [m, s] => (0, m, s),
        [h, m, s] => (h, m, s),
        _ => return None,
    };
    days.checked_mul(24)?.checked_add(h)?.checked_mul(60)?.checked_add(m)?.checked_mul(60)?.checked_add(s)
}

/// The command name as the kernel keeps it, from a command line: the name inside the
/// brackets ps prints for kernel threads and zombies (`[kworker/0:1]`,
/// `[timeout] <defunct>`), else the base name of the first word, without the `-` of a
/// login shell (`-bash`) or the `:` of a retitled process (`sshd: user@pts/0`,
/// `postgres: checkpointer`); cut to 15 bytes like the kernel's comm.
///
/// The kernel's comm differs for scripts started by `#!` (it is the script's name:
/// `networkd-dispat` where this gives `python3`), for executables reached through a
/// link (`/sbin/init`, comm `systemd`) and for processes that renamed themselves. On the
/// two sos reports this was checked against (Ubuntu 20.04, Debian 12) it matched the
/// comm column for 108 of 116 processes.
fn comm_from_args(args: &str) -> String {
    let bracketed = args.strip_prefix('[').and_then(|rest| rest.split_once(']')).map(|(name, _)| name);
    let name = bracketed.unwrap_or_else(|| {
        let first = args.split_whitespace().next().unwrap_or("");
        let base = first.rsplit('/').next().unwrap_or(first);
        let base = base.strip_prefix('-').unwrap_or(base);
        base.strip_suffix(':').unwrap_or(base)
    });
    name[..floor_boundary(name, 15)].to_string()
}

/// The fields of one pid gathered across listings.
#[derive(Debug, Default)]
struct Merged {
    process: Process,
    ppid: Option<u32>,
    comm: Option<String>,
    nlwp: Option<u32>,
    counted: Option<u32>,
    full_start: bool,
    /// The first listing that had this pid.
    first: String,
}

impl Merged {
    fn new(pid: u32, listing: &str) -> Merged {
        Merged { process: Process { pid, ..Default::default() }, first: listing.to_string(), ..Default::default() }
    }

    /// Fills what is still missing from one listing's view of the process.
    fn add(&mut self, part: &Row, listing: &str) {
        let p = &mut self.process;
        if p.state.is_empty() {
            if let Some(state) = &part.state {
                p.state = state.clone();
                p.source = listing.to_string();
            }
        }
        if p.args.is_empty() {
            p.args = part.args.clone().unwrap_or_default();
        }
        if p.user.is_empty() {
            p.user = part.user.clone().unwrap_or_default();
        }
        if part.start.is_some() && (p.start.is_empty() || (part.full_start && !self.full_start)) {
            p.start = part.start.clone().unwrap_or_default();
            self.full_start = part.full_start;
        }
        p.uid = p.uid.or(part.uid);
        p.rss_kib = p.rss_kib.or(part.rss);
        p.vsz_kib = p.vsz_kib.or(part.vsz);
        p.cpu_percent = p.cpu_percent.or(part.cpu);
        p.cpu_time_s = p.cpu_time_s.or(part.time);
        self.ppid = self.ppid.or(part.ppid);
        self.nlwp = self.nlwp.or(part.nlwp);
        self.counted = self.counted.or(part.counted);
        if self.comm.is_none() {
            self.comm = part.comm.clone();
        }
    }

    fn finish(self) -> Process {
        let mut p = self.process;
        p.ppid = self.ppid.unwrap_or(0);
        p.threads = self.nlwp.or(self.counted).unwrap_or(0);
        p.comm = self.comm.unwrap_or_else(|| comm_from_args(&p.args));
        if p.source.is_empty() {
            p.source = self.first;
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // From /tmp/sos/sosreport-vault-2021 (sos 4.2, Ubuntu 20.04, procps-ng 3.3.16): the
    // header and the lines of pids 187, 252, 256 and 282436 of each listing.
    const AUXM: (&str, &str) = (
        "sos_commands/process/ps_auxwwwm",
        "\
USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
systemd+     187  0.0  0.0  23964 12180 ?        -    Feb09   0:00 /lib/systemd/systemd-resolved
systemd+       -  0.0    -      -     - -        Ss   Feb09   0:00 -
root         252  0.0  0.0 241036  9264 ?        -    Feb09   0:00 /usr/lib/accountsservice/accounts-daemon
root           -  0.0    -      -     - -        Ssl  Feb09   0:00 -
root           -  0.0    -      -     - -        Ssl  Feb09   0:00 -
root           -  0.0    -      -     - -        Ssl  Feb09   0:00 -
root         256  0.7  0.2 162064 46500 ?        -    Feb09   4:54 /usr/sbin/corosync -f
root           -  0.7    -      -     - -        Ssl  Feb09   4:54 -
root           -  0.0    -      -     - -        Ssl  Feb09   0:00 -
ubuntu    282436  0.0  0.0  13932  5052 ?        -    09:50   0:00 sshd: ubuntu@pts/1
ubuntu         -  0.0    -      -     - -        S    09:50   0:00 -
",
    );
    const ALX: (&str, &str) = (
        "sos_commands/process/ps_alxwww",
        "\
F   UID     PID    PPID PRI  NI    VSZ   RSS WCHAN  STAT TTY        TIME COMMAND
4   101     187       1  20   0  23964 12180 ep_pol Ss   ?          0:00 /lib/systemd/systemd-resolved
4     0     252       1  20   0 241036  9264 poll_s Ssl  ?          0:00 /usr/lib/accountsservice/accounts-daemon
4     0     256       1  20   0 162064 46500 ep_pol Ssl  ?          4:54 /usr/sbin/corosync -f
5  1000  282436  282376  20   0  13932  5052 poll_s S    ?          0:00 sshd: ubuntu@pts/1
",
    );
    const ELFL: (&str, &str) = (
        "sos_commands/process/ps_-elfL",
        "\
F S UID          PID    PPID     LWP  C NLWP PRI  NI ADDR SZ WCHAN  STIME TTY          TIME CMD
4 S systemd+     187       1     187  0    1  80   0 -  5991 ep_pol Feb09 ?        00:00:00 /lib/systemd/systemd-resolved
4 S root         252       1     252  0    3  80   0 - 60259 poll_s Feb09 ?        00:00:00 /usr/lib/accountsservice/accounts-daemon
5 S root         252       1     259  0    3  80   0 - 60259 poll_s Feb09 ?        00:00:00 /usr/lib/accountsservice/accounts-daemon
5 S root         252       1     322  0    3  80   0 - 60259 poll_s Feb09 ?        00:00:00 /usr/lib/accountsservice/accounts-daemon
4 S root         256       1     256  0    2  80   0 - 40516 ep_pol Feb09 ?        00:04:54 /usr/sbin/corosync -f
1 S root         256       1     367  0    2  80   0 - 40516 futex_ Feb09 ?        00:00:00 /usr/sbin/corosync -f
5 S ubuntu    282436  282376  282436  0    1  80   0 -  3483 poll_s 09:50 ?        00:00:00 sshd: ubuntu@pts/1
",
    );
    const LSTART: (&str, &str) = (
        "sos_commands/process/ps_axo_flags_state_uid_pid_ppid_pgid_sid_cls_pri_addr_sz_wchan_20_lstart_tty_time_cmd",
        "\
F S   UID     PID    PPID    PGID     SID CLS PRI ADDR    SZ WCHAN                                 STARTED TT           TIME CMD
4 S   101     187       1     187     187  TS  19    -  5991 ep_poll              Wed Feb  9 22:33:26 2022 ?        00:00:00 /lib/systemd/systemd-resolved
4 S     0     252       1     252     252  TS  19    - 60259 poll_schedule_timeou Wed Feb  9 22:33:32 2022 ?        00:00:00 /usr/lib/accountsservice/accounts-daemon
4 S     0     256       1     256     256  TS  19    - 40516 ep_poll              Wed Feb  9 22:33:32 2022 ?        00:04:54 /usr/sbin/corosync -f
5 S  1000  282436  282376  282376  282376  TS  19    -  3483 poll_schedule_timeou Thu Feb 10 09:50:52 2022 ?        00:00:00 sshd: ubuntu@pts/1
",
    );
    const COMM: (&str, &str) = (
        "sos_commands/process/ps_axo_pid_ppid_user_group_lwp_nlwp_start_time_comm_cgroup",
        "\
    PID    PPID USER     GROUP        LWP NLWP START COMMAND         CGROUP
    187       1 systemd+ systemd+     187    1 Feb09 systemd-resolve 12:devices:/system.slice/systemd-resolved.service,9:cpu,cpuacct:/system.slice/systemd-resolved.service,5:memory:/system.slice/systemd-resolved.service,4:blkio:/system.slice/systemd-resolved.service,3:pids:/system.slice/systemd-resolved.service,1:name=systemd:/system.slice/systemd-resolved.service,0::/system.slice/systemd-resolved.service
    252       1 root     root         252    3 Feb09 accounts-daemon 12:devices:/system.slice/accounts-daemon.service,9:cpu,cpuacct:/system.slice/accounts-daemon.service,5:memory:/system.slice/accounts-daemon.service,4:blkio:/system.slice/accounts-daemon.service,3:pids:/system.slice/accounts-daemon.service,1:name=systemd:/system.slice/accounts-daemon.service,0::/system.slice/accounts-daemon.service
    256       1 root     root         256    2 Feb09 corosync        12:devices:/system.slice/corosync.service,9:cpu,cpuacct:/system.slice/corosync.service,5:memory:/system.slice/corosync.service,4:blkio:/system.slice/corosync.service,3:pids:/system.slice/corosync.service,1:name=systemd:/system.slice/corosync.service,0::/system.slice/corosync.service
 282436  282376 ubuntu   ubuntu    282436    1 09:50 sshd            12:devices:/user.slice,9:cpu,cpuacct:/user.slice,5:memory:/user.slice/user-1000.slice/session-113.scope,4:blkio:/user.slice,3:pids:/user.slice/user-1000.slice/session-113.scope,1:name=systemd:/user.slice/user-1000.slice/session-113.scope,0::/user.slice/user-1000.slice/session-113.scope
",
    );
    const ALL: [(&str, &str); 5] = [COMM, ELFL, LSTART, ALX, AUXM];

    fn by_pid(procs: &[Process], pid: u32) -> &Process {
        procs.iter().find(|p| p.pid == pid).unwrap()
    }

    #[test]
    fn sos_vault_listings_combine() {
        // Given in the worst order: the ranking, not the order, decides.
        let procs = parse(&ALL).unwrap();
        assert_eq!(procs.iter().map(|p| p.pid).collect::<Vec<_>>(), [187, 252, 256, 282436]);
        assert_eq!(
            by_pid(&procs, 256),
            &Process {
                pid: 256,
                ppid: 1,
                state: "S".into(),
                comm: "corosync".into(),
                args: "/usr/sbin/corosync -f".into(),
                uid: Some(0),
                user: "root".into(),
                threads: 2,
                rss_kib: Some(46500),
                vsz_kib: Some(162064),
                cpu_percent: Some(0.7),
                cpu_time_s: Some(294),
                start: "Wed Feb  9 22:33:32 2022".into(),
                source: AUXM.0.into(),
            }
        );
        let resolved = by_pid(&procs, 187);
        assert_eq!(
            (resolved.user.as_str(), resolved.uid, resolved.comm.as_str()),
            ("systemd+", Some(101), "systemd-resolve")
        );
        let sshd = by_pid(&procs, 282436);
        assert_eq!((sshd.ppid, sshd.comm.as_str(), sshd.args.as_str()), (282376, "sshd", "sshd: ubuntu@pts/1"));
        assert_eq!((sshd.start.as_str(), sshd.threads), ("Thu Feb 10 09:50:52 2022", 1));
        assert_eq!(by_pid(&procs, 252).threads, 3);
    }

    #[test]
    fn each_listing_alone() {
        let auxm = parse(&[AUXM]).unwrap();
        let p = by_pid(&auxm, 252);
        assert_eq!((p.state.as_str(), p.threads, p.ppid, p.uid, p.start.as_str()), ("S", 3, 0, None, "Feb09"));
        assert_eq!((p.comm.as_str(), p.rss_kib, p.cpu_time_s), ("accounts-daemon", Some(9264), Some(0)));
        let alx = parse(&[ALX]).unwrap();
        let p = by_pid(&alx, 282436);
        assert_eq!((p.uid, p.user.as_str(), p.ppid, p.threads, p.cpu_percent), (Some(1000), "", 282376, 0, None));
        assert_eq!((p.vsz_kib, p.rss_kib, p.state.as_str(), p.source.as_str()), (Some(13932), Some(5052), "S", ALX.0));
        // Per-thread TIME of -L listings is not the process's.
        let elfl = parse(&[ELFL]).unwrap();
        let p = by_pid(&elfl, 256);
        assert_eq!(
            (p.threads, p.cpu_time_s, p.cpu_percent, p.user.as_str(), p.start.as_str()),
            (2, None, None, "root", "Feb09")
        );
        let lstart = parse(&[LSTART]).unwrap();
        let p = by_pid(&lstart, 256);
        assert_eq!(
            (p.cpu_time_s, p.uid, p.start.as_str(), p.threads),
            (Some(294), Some(0), "Wed Feb  9 22:33:32 2022", 0)
        );
        let comm = parse(&[COMM]).unwrap();
        let p = by_pid(&comm, 187);
        assert_eq!(
            (p.comm.as_str(), p.args.as_str(), p.state.as_str(), p.source.as_str()),
            ("systemd-resolve", "", "", COMM.0)
        );
        assert_eq!((p.threads, p.ppid), (1, 1));
    }

    /// From /tmp/sosout/sosreport-vm-* (sos 4.0, Debian, procps-ng 4.0.2): kernel threads,
    /// `S<Ll` states, and the zombies sos's own `timeout` children left.
    #[test]
    fn sos_debian_kernel_threads_and_zombies() {
        let aux = "\
USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root         1  0.0  0.0  32180  7408 ?        S<Ll Nov28   0:19 /process_api --firecracker-init --addr 0.0.0.0:2024 --max-ws-buffer-size 32768 --block-local-connections --log-vsock-port 5002 --control-vsock-port 5001 --listen-vsock-port 2024 --tcp-readiness-only --auth-required
root         2  0.0  0.0      0     0 ?        S    Nov28   0:00 [kthreadd]
root         3  0.0  0.0      0     0 ?        S    Nov28   0:00 [pool_workqueue_release]
root         4  0.0  0.0      0     0 ?        I<   Nov28   0:00 [kworker/R-rcu_gp]
";
        let elfl = "\
F S UID        PID  PPID   LWP  C NLWP PRI  NI ADDR SZ WCHAN  STIME TTY          TIME CMD
4 Z root     28643 28510 28643  0    1  80   0 -     0 -      05:42 ?        00:00:00 [timeout] <defunct>
";
        let lstart = "\
F S   UID   PID  PPID  PGID   SID CLS PRI ADDR    SZ WCHAN                                 STARTED TT           TIME CMD
4 Z     0 28655 28510 28655 27572  TS  19    -     0 -                    Sun Nov 29 05:42:30 2026 ?        00:00:00 [timeout] <defunct>
";
        let procs = parse(&[("ps_auxwww", aux), ("ps_-elfL", elfl), ("ps_axo_lstart", lstart)]).unwrap();
        let init = by_pid(&procs, 1);
        assert_eq!((init.state.as_str(), init.comm.as_str(), init.cpu_time_s), ("S", "process_api", Some(19)));
        assert!(init.args.ends_with("--tcp-readiness-only --auth-required"));
        assert_eq!((by_pid(&procs, 2).comm.as_str(), by_pid(&procs, 2).args.as_str()), ("kthreadd", "[kthreadd]"));
        assert_eq!(by_pid(&procs, 3).comm, "pool_workqueue_", "cut to 15 bytes like the kernel's comm");
        assert_eq!((by_pid(&procs, 4).state.as_str(), by_pid(&procs, 4).comm.as_str()), ("I", "kworker/R-rcu_g"));
        for (pid, source) in [(28643, "ps_-elfL"), (28655, "ps_axo_lstart")] {
            let z = by_pid(&procs, pid);
            assert_eq!((z.state.as_str(), z.comm.as_str(), z.args.as_str()), ("Z", "timeout", "[timeout] <defunct>"));
            assert_eq!((z.ppid, z.source.as_str()), (28510, source));
        }
        assert_eq!(by_pid(&procs, 28655).start, "Sun Nov 29 05:42:30 2026");
    }

    /// A zombie made on purpose (`sh -c 'sleep 0 & exec sleep 3'`) on this project's
    /// Debian VM, procps-ng 4.0.2: `ps auxwww`, `ps auxwwwm` and `ps alxwww` lines.
    #[test]
    fn zombie_in_bsd_listings() {
        let aux = "\
USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root     16216  0.0  0.0      0     0 ?        Z    05:52   0:00 [sleep] <defunct>
";
        let auxm = "\
USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root     16216  0.0  0.0      0     0 ?        -    05:52   0:00 [sleep] <defunct>
root         -  0.0    -      -     - -        Z    05:52   0:00 -
";
        let alx = "\
F   UID   PID  PPID PRI  NI    VSZ   RSS WCHAN  STAT TTY        TIME COMMAND
0     0 16216 16214  20   0      0     0 -      Z    ?          0:00 [sleep] <defunct>
";
        for listings in [vec![("ps_auxwww", aux)], vec![("ps_auxwwwm", auxm)], vec![("ps_alxwww", alx)]] {
            let procs = parse(&listings).unwrap();
            let z = &procs[0];
            assert_eq!(
                (z.pid, z.state.as_str(), z.comm.as_str(), z.rss_kib),
                (16216, "Z", "sleep", Some(0)),
                "{listings:?}"
            );
        }
        let both = parse(&[("ps_alxwww", alx), ("ps_auxwwwm", auxm)]).unwrap();
        assert_eq!((both[0].ppid, both[0].threads, both[0].source.as_str()), (16214, 1, "ps_auxwwwm"));
        let plus = aux.replace(" Z   ", " Z+  ");
        assert_eq!(parse(&[("ps_auxwww", &plus)]).unwrap()[0].state, "Z");
    }

    #[test]
    fn comm_column_with_spaces() {
        let text = "\
    PID    PPID USER     GROUP        LWP NLWP START COMMAND         CGROUP
   4242       1 alice    alice       4242    1 10:42 tmux: server    0::/user.slice
   4243    4242 alice    alice       4243    4 10:42 Web Content     -
";
        let procs = parse(&[("ps_axo_pid_ppid_user_group_lwp_nlwp_start_time_comm_cgroup", text)]).unwrap();
        assert_eq!((procs[0].comm.as_str(), procs[0].threads), ("tmux: server", 1));
        assert_eq!((procs[1].comm.as_str(), procs[1].threads), ("Web Content", 4));
        let last = "  PID COMMAND\n    1 systemd\n";
        assert_eq!(parse(&[("ps_-eo_pid_comm", last)]).unwrap()[0].comm, "systemd");
        assert_eq!(parse(&[("ps_-eo_pid_args", last)]).unwrap()[0].args, "systemd");
        assert!(command_is_comm("sos_commands/process/ps_auxcww"));
        assert!(!command_is_comm("sos_commands/process/ps_auxwww"));
        assert!(!command_is_comm("ps_-elfL"));
    }

    #[test]
    fn times_and_names() {
        assert_eq!(cpu_time("1:47"), Some(107));
        assert_eq!(cpu_time("123:45"), Some(7425));
        assert_eq!(cpu_time("00:01:47"), Some(107));
        assert_eq!(cpu_time("2-03:04:05"), Some(2 * 86400 + 3 * 3600 + 4 * 60 + 5));
        for bad in ["", "1", "1:2:3:4", "a:b", "-1:00", "1-", "99999999999999999999:00", "213503982334602-00:00:00"] {
            assert_eq!(cpu_time(bad), None, "{bad}");
        }
        assert_eq!(comm_from_args("/usr/bin/python3 /usr/bin/networkd-dispatcher"), "python3");
        assert_eq!(comm_from_args("-bash"), "bash");
        assert_eq!(comm_from_args("postgres: checkpointer"), "postgres");
        assert_eq!(comm_from_args("(sd-pam)"), "(sd-pam)");
        assert_eq!(comm_from_args("[kworker/0:1H-kblockd]"), "kworker/0:1H-kb");
        assert_eq!(comm_from_args("/opt/ünïcödé-daemon-name --x"), "ünïcödé-dae");
        assert_eq!(comm_from_args("/opt/aaaaaaaaaaaaaaé"), "aaaaaaaaaaaaaa", "not inside the 2-byte é");
        assert_eq!(comm_from_args(""), "");
    }

    #[test]
    fn unreadable_listings() {
        assert_eq!(parse(&[]).unwrap_err(), "no ps listing given");
        let err =
            parse(&[("ps_a", ""), ("ps_b", "error: garbage option\n"), ("ps_c", "  PID CMD\n  x y\n")]).unwrap_err();
        assert_eq!(
            err,
            "no ps listing could be read: ps_a: empty; ps_b: no header with a PID column (first line \"error: garbage option\"); \
             ps_c: no process line could be read"
        );
        // One good listing is enough; lines that do not fit are skipped.
        let procs = parse(&[("ps_b", "junk"), ("ps_alxwww", &format!("{}0 0 12 1 cut short\n", ALX.1))]).unwrap();
        assert_eq!(procs.len(), 4);
    }

    /// Cut at every byte and mutated: no panic, whatever the result.
    #[test]
    fn no_panic_on_damaged_listings() {
        for (name, text) in ALL {
            for n in 0..=text.len() {
                let _ = parse(&[(name, &text[..n])]);
            }
            // Every byte replaced, by one of these in turn.
            let replacements = [b' ', b'\n', b'-', b'[', b']', b'9', b'/', 0xe2, 0xff];
            for (i, b) in (0..text.len()).zip(replacements.iter().cycle()) {
                let mut m = text.as_bytes().to_vec();
                m[i] = *b;
                let _ = parse(&[(name, &crate::text::lossy(&m))]);
            }
        }
        for odd in ["PID\n-\n", "PID STARTED\n1 Mon\n", "PID COMMAND X\n1 a\n", "PID STAT\n1 é\n", "PID %CPU\n1 inf\n"]
        {
            let _ = parse(&[("ps_x", odd)]);
        }
    }
}
