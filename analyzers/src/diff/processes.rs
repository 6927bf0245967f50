//! Processes between two bundles: started and exited (matched by pid and start time,
//! so a reused pid is a new process), the largest growers in memory, threads and open
//! files (a leak shows as steady growth), and CLOSE_WAIT sockets per process.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::Input;

/// How many growers of each kind are listed.
pub const TOP_GROWERS: usize = 10;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessChanges {
    pub started: Vec<Process>,
    pub exited: Vec<Process>,
    /// The largest growers per measure (`rss`, `threads`, `open files`), largest first.
    pub growers: Vec<Growth>,
    /// Processes whose CLOSE_WAIT socket count changed.
    pub close_wait: Vec<Growth>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Process {
    pub pid: u32,
    pub command: String,
    /// Start time in clock ticks after boot (`/proc/<pid>/stat` field 22); 0 for a sos
    /// report, whose processes are matched by pid and command.
    pub start_ticks: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Growth {
    /// `rss` (bytes), `threads`, `open files`, or `close_wait` (sockets).
    pub measure: &'static str,
    pub pid: u32,
    pub command: String,
    pub before: u64,
    pub after: u64,
}

impl Growth {
    /// After minus before, saturated (a hostile bundle's figures can be anything).
    pub fn delta(&self) -> i64 {
        let d = i128::from(self.after) - i128::from(self.before);
        i64::try_from(d).unwrap_or(if d > 0 { i64::MAX } else { i64::MIN })
    }
}

impl ProcessChanges {
    pub fn is_empty(&self) -> bool {
        self.started.is_empty() && self.exited.is_empty() && self.growers.is_empty() && self.close_wait.is_empty()
    }
}

/// What one bundle says of its processes, read once.
pub struct Facts {
    seen: BTreeMap<(u32, u64), Seen>,
    close_wait: Option<BTreeMap<(u32, String), u64>>,
}

impl Facts {
    pub fn read(i: &Input) -> Facts {
        Facts { seen: seen(i), close_wait: close_wait(i) }
    }
}

/// Reads one measure of a process.
type Measure = fn(&Seen) -> Option<u64>;

/// What one bundle says of one process.
struct Seen {
    command: String,
    rss_bytes: Option<u64>,
    threads: u64,
    open_files: Option<u64>,
}

fn seen(i: &Input) -> BTreeMap<(u32, u64), Seen> {
    let fds = i.descriptors().ok();
    // A sos report's ps listings have no start time in ticks: 0, and a pid whose command
    // changed is another process (see `counterpart`).
    let rows = i.processes().map(|p| p.rows.values()).into_iter().flatten();
    rows.map(|p| {
        let seen = Seen {
            command: p.comm.clone(),
            rss_bytes: p.rss_bytes,
            threads: p.threads,
            open_files: fds.and_then(|d| d.per_pid.get(&p.pid)).map(|d| d.count),
        };
        ((p.pid, p.start_ticks.unwrap_or(0)), seen)
    })
    .collect()
}

fn close_wait(i: &Input) -> Option<BTreeMap<(u32, String), u64>> {
    let sockets = i.sockets().ok()?;
    let mut m = BTreeMap::new();
    for s in sockets.iter().filter(|s| s.state == "CLOSE_WAIT") {
        for o in &s.owners {
            *m.entry((o.pid, o.program.clone())).or_default() += 1;
        }
    }
    Some(m)
}

/// The same process on the other side: same pid and start; when the start is unknown
/// (0: a sos report), the same command is what tells a reused pid apart.
fn counterpart<'a>(key: &(u32, u64), s: &Seen, other: &'a BTreeMap<(u32, u64), Seen>) -> Option<&'a Seen> {
    other.get(key).filter(|o| key.1 != 0 || o.command == s.command)
}

pub fn compare(b: &Facts, a: &Facts, skipped: &mut BTreeMap<String, String>) -> ProcessChanges {
    let (sb, sa) = (&b.seen, &a.seen);
    let mut out = ProcessChanges::default();
    if sb.is_empty() || sa.is_empty() {
        skipped.insert("processes".into(), "a bundle has no proc/<pid>/stat entries".into());
    } else {
        let process = |(pid, start): &(u32, u64), s: &Seen| Process {
            pid: *pid,
            command: s.command.clone(),
            start_ticks: *start,
        };
        out.started = sa.iter().filter(|(k, s)| counterpart(k, s, sb).is_none()).map(|(k, s)| process(k, s)).collect();
        out.exited = sb.iter().filter(|(k, s)| counterpart(k, s, sa).is_none()).map(|(k, s)| process(k, s)).collect();
        let measures: [(&'static str, Measure); 3] =
            [("rss", |s| s.rss_bytes), ("threads", |s| Some(s.threads)), ("open files", |s| s.open_files)];
        for (measure, get) in measures {
            let mut grew: Vec<Growth> = sa
                .iter()
                .filter_map(|(k, s)| {
                    let old = counterpart(k, s, sb)?;
                    let (before, after) = (get(old)?, get(s)?);
                    (after > before).then(|| Growth { measure, pid: k.0, command: s.command.clone(), before, after })
                })
                .collect();
            grew.sort_by(|x, y| y.delta().cmp(&x.delta()).then(x.pid.cmp(&y.pid)));
            grew.truncate(TOP_GROWERS);
            out.growers.extend(grew);
        }
    }
    match (&b.close_wait, &a.close_wait) {
        (Some(cb), Some(ca)) => {
            let keys: BTreeSet<&(u32, String)> = cb.keys().chain(ca.keys()).collect();
            let mut changed: Vec<Growth> = keys
                .into_iter()
                .filter_map(|k| {
                    let (before, after) = (cb.get(k).copied().unwrap_or(0), ca.get(k).copied().unwrap_or(0));
                    (before != after).then(|| Growth {
                        measure: "close_wait",
                        pid: k.0,
                        command: k.1.clone(),
                        before,
                        after,
                    })
                })
                .collect();
            changed.sort_by(|x, y| y.delta().cmp(&x.delta()).then(x.pid.cmp(&y.pid)));
            out.close_wait = changed;
        }
        _ => {
            skipped.insert("processes.close_wait".into(), "a bundle has no scan/sockets.jsonl".into());
        }
    }
    out
}
