//! Figures of both bundles side by side, and rates over the time between them.
//!
//! Figures come from each bundle's top-level copies (taken at collection, not from
//! the sampling window): load, memory, space and inodes per mount, processes by
//! state, sockets by state and by service port, file handles. Rates need both
//! bundles from one boot: counters only grow within a boot.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::rules::net_counters::Counters;
use crate::{Input, Need, Skip};

/// One figure in both bundles (`None` where a bundle lacks it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// `load`, `memory`, `space`, `inodes`, `processes`, `sockets`, `ports`, `files`.
    pub group: &'static str,
    pub name: String,
    /// `bytes`, `%`, or empty for plain counts and load figures.
    pub unit: &'static str,
    pub before: Option<f64>,
    pub after: Option<f64>,
}

impl Figure {
    pub fn delta(&self) -> Option<f64> {
        Some(self.after? - self.before?)
    }
}

/// Counter changes over the time between the bundles.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// Seconds between the collections (CLOCK_MONOTONIC).
    pub seconds: f64,
    pub rates: Vec<Rate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    /// `cpu`, `system`, `swap`, `disk <device>`, `net <interface>`, `tcp`.
    pub group: String,
    pub name: String,
    /// `%` for CPU modes (of all CPU time between the bundles), else the counter's unit
    /// per second (`bytes/s`, `pages/s`, `/s`).
    pub unit: &'static str,
    /// The counter's growth (CPU: ticks).
    pub delta: u64,
    /// Per second, or the percentage for CPU modes.
    pub value: f64,
}

type Figures = Vec<Figure>;

type Reader = fn(&Input) -> Need<BTreeMap<String, f64>>;

/// The figure groups: name, unit, reader, the entry it needs, and whether a figure
/// absent from a bundle that has the group is a zero (a count) or unknown.
const GROUPS: [(&str, &str, Reader, &str, bool); 9] = [
    ("load", "", load, "proc/loadavg", false),
    ("memory", "bytes", memory, "proc/meminfo", false),
    ("swap", "bytes", swap, "proc/meminfo", false),
    ("space", "bytes", space, "scan/filesystems.jsonl", false),
    ("inodes", "", inodes, "scan/filesystems.jsonl", false),
    ("processes", "", processes, "proc/<pid>/stat", true),
    ("sockets", "", socket_states, "scan/sockets.jsonl", true),
    ("ports", "", ports, "scan/sockets.jsonl", true),
    ("files", "", file_handles, "proc/sys/fs/file-nr", false),
];

/// What one bundle says of its figures and counters, read once.
pub struct Facts {
    groups: Vec<Need<BTreeMap<String, f64>>>,
    counters: Counted,
    monotonic_ns: Option<u64>,
}

impl Facts {
    pub fn read(i: &Input) -> Facts {
        Facts {
            groups: GROUPS.iter().map(|g| (g.2)(i)).collect(),
            counters: counters(i),
            monotonic_ns: i.manifest().map(|m| m.clocks.monotonic_ns).filter(|ns| *ns > 0),
        }
    }
}

pub fn compare(b: &Facts, a: &Facts, skipped: &mut BTreeMap<String, String>) -> Figures {
    let mut out = Vec::new();
    for (k, (group, unit, _, entry, counts)) in GROUPS.iter().enumerate() {
        let (mb, ma) = (b.groups[k].as_ref().ok(), a.groups[k].as_ref().ok());
        // Why a side has none: absent, or present and unreadable (named).
        for (side, got) in [("BEFORE", &b.groups[k]), ("AFTER", &a.groups[k])] {
            match got {
                Err(Skip::Bad { entry, detail }) => {
                    skipped.insert(format!("figures.{group} ({side})"), format!("{entry}: {detail}"));
                }
                Err(Skip::Missing(_)) if mb.is_some() || ma.is_some() => {
                    skipped.insert(format!("figures.{group} ({side})"), format!("{side} has no {entry}"));
                }
                _ => {}
            }
        }
        if mb.is_none() && ma.is_none() {
            if matches!((&b.groups[k], &a.groups[k]), (Err(Skip::Missing(_)), Err(Skip::Missing(_)))) {
                skipped.insert(format!("figures.{group}"), format!("neither bundle has {entry}"));
            }
            continue;
        }
        let mut keys: Vec<&String> =
            mb.iter().chain(ma.iter()).flat_map(|m| m.keys()).collect::<BTreeSet<_>>().into_iter().collect();
        // Numbers in names by value: load 1, 5, 15 min; ports :22, :443, :8080.
        keys.sort_by(|x, y| natural_cmp(x, y));
        let get = |m: Option<&BTreeMap<String, f64>>, key: &String| match m {
            Some(m) => m.get(key).copied().or(counts.then_some(0.0)),
            None => None,
        };
        for key in keys {
            out.push(Figure { group, name: key.clone(), unit, before: get(mb, key), after: get(ma, key) });
        }
    }
    out
}

/// Orders names as text, but runs of digits by their value (`5 min` before `15 min`).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    // A run of digits without its leading zeros: a longer one is a larger number.
    fn number(s: &[u8]) -> (&[u8], usize) {
        let len = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let zeros = s[..len].iter().take_while(|c| **c == b'0').count();
        (&s[zeros..len], len)
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let ((na, la), (nb, lb)) = (number(a), number(b));
                let order = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if order.is_ne() {
                    return order;
                }
                (a, b) = (&a[la..], &b[lb..]);
            }
            (Some(x), Some(y)) if x == y => (a, b) = (&a[1..], &b[1..]),
            (x, y) => return x.cmp(&y),
        }
    }
}

fn load(i: &Input) -> Need<BTreeMap<String, f64>> {
    const LOADAVG: &str = "proc/loadavg";
    let text = i.text(LOADAVG)?;
    let f: Vec<&str> = text.split_whitespace().collect();
    let number = |s: &str| s.parse::<f64>().map_err(|_| Skip::bad(LOADAVG, format!("{s:?} is not a number")));
    let mut m = BTreeMap::new();
    if f.len() < 4 {
        return Err(Skip::bad(LOADAVG, "fewer than four fields"));
    }
    for (k, v) in ["1 min", "5 min", "15 min"].iter().zip(&f) {
        m.insert(k.to_string(), number(v)?);
    }
    if let Some((running, total)) = f[3].split_once('/') {
        m.insert("runnable tasks".into(), number(running)?);
        m.insert("tasks".into(), number(total)?);
    }
    Ok(m)
}

fn memory(i: &Input) -> Need<BTreeMap<String, f64>> {
    let m = i.meminfo("proc/meminfo")?;
    let available = m.mem_available.unwrap_or(m.mem_free + m.buffers + m.cached);
    let cache = m.buffers + m.cached + m.s_reclaimable.unwrap_or(0);
    Ok(BTreeMap::from([
        ("total".to_string(), m.mem_total as f64),
        ("used".to_string(), m.mem_total.saturating_sub(available) as f64),
        ("available".to_string(), available as f64),
        ("free".to_string(), m.mem_free as f64),
        ("buff/cache".to_string(), cache as f64),
    ]))
}

fn swap(i: &Input) -> Need<BTreeMap<String, f64>> {
    let m = i.meminfo("proc/meminfo")?;
    Ok(BTreeMap::from([
        ("total".to_string(), m.swap_total as f64),
        ("used".to_string(), m.swap_total.saturating_sub(m.swap_free) as f64),
    ]))
}

fn space(i: &Input) -> Need<BTreeMap<String, f64>> {
    mounts(i, false)
}

fn inodes(i: &Input) -> Need<BTreeMap<String, f64>> {
    mounts(i, true)
}

/// Space (used, available) or inodes (used, free) per mount `df` lists.
fn mounts(i: &Input, inodes: bool) -> Need<BTreeMap<String, f64>> {
    let fs = i.filesystems()?;
    let mut m = BTreeMap::new();
    for f in fs.iter().filter(|f| f.df_listed && f.status == "ok") {
        if inodes {
            if f.inodes == 0 {
                continue;
            }
            m.insert(format!("{} used", f.target), f.inodes_used as f64);
            m.insert(format!("{} free", f.target), f.inodes_free as f64);
        } else {
            m.insert(format!("{} used", f.target), f.used_bytes as f64);
            m.insert(format!("{} avail", f.target), f.avail_bytes as f64);
        }
    }
    Ok(m)
}

/// Processes by state letter, with totals of processes and threads.
fn processes(i: &Input) -> Need<BTreeMap<String, f64>> {
    let pids = i.pids();
    if pids.is_empty() {
        return Err(Skip::missing("proc/<pid>/stat"));
    }
    let mut m: BTreeMap<String, f64> = BTreeMap::new();
    for pid in pids {
        let Ok(s) = i.process_stat(pid) else { continue };
        *m.entry("total".into()).or_default() += 1.0;
        *m.entry("threads".into()).or_default() += s.num_threads as f64;
        *m.entry(format!("state {}", s.state)).or_default() += 1.0;
    }
    Ok(m)
}

/// TCP sockets by state; UDP and unix sockets counted whole.
fn socket_states(i: &Input) -> Need<BTreeMap<String, f64>> {
    let sockets = i.sockets()?;
    let mut m: BTreeMap<String, f64> = BTreeMap::new();
    for s in sockets {
        let key = match s.proto.as_str() {
            "tcp" | "tcp6" => format!("tcp {}", s.state),
            "udp" | "udp6" => "udp".to_string(),
            other => other.to_string(),
        };
        *m.entry(key).or_default() += 1.0;
    }
    Ok(m)
}

/// Connections (TCP sockets not listening) per local port that a socket listens on,
/// and per state: `:8080 ESTABLISHED`.
fn ports(i: &Input) -> Need<BTreeMap<String, f64>> {
    let sockets = i.sockets()?;
    let tcp = |s: &&snap_bundle::scan::Socket| s.proto == "tcp" || s.proto == "tcp6";
    let listening: BTreeSet<u16> =
        sockets.iter().filter(tcp).filter(|s| s.state == "LISTEN").map(|s| s.local_port).collect();
    let mut m: BTreeMap<String, f64> = BTreeMap::new();
    for s in sockets.iter().filter(tcp).filter(|s| s.state != "LISTEN" && listening.contains(&s.local_port)) {
        *m.entry(format!(":{} {}", s.local_port, s.state)).or_default() += 1.0;
    }
    Ok(m)
}

/// `proc/sys/fs/file-nr`: allocated handles and the maximum.
fn file_handles(i: &Input) -> Need<BTreeMap<String, f64>> {
    const FILE_NR: &str = "proc/sys/fs/file-nr";
    let text = i.text(FILE_NR)?;
    let f: Vec<f64> = text.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let [allocated, _unused, max] = f[..] else { return Err(Skip::bad(FILE_NR, "not three numbers")) };
    Ok(BTreeMap::from([("handles allocated".to_string(), allocated), ("handles max".to_string(), max)]))
}

/// Counters of one bundle that rates are computed from: (group, name, unit) -> value.
type Counted = BTreeMap<(String, String, &'static str), u64>;

fn counters(i: &Input) -> Counted {
    let mut c = Counted::new();
    let mut put = |group: &str, name: &str, unit: &'static str, v: u64| {
        c.insert((group.to_string(), name.to_string(), unit), v);
    };
    if let Ok(text) = i.text("proc/stat") {
        for line in text.lines() {
            let mut w = line.split_whitespace();
            match w.next() {
                Some("cpu") => {
                    let modes = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
                    for (mode, v) in modes.iter().zip(w) {
                        if let Ok(v) = v.parse() {
                            put("cpu", mode, "%", v);
                        }
                    }
                }
                Some(k @ ("ctxt" | "intr" | "processes")) => {
                    if let Some(Ok(v)) = w.next().map(str::parse) {
                        let name = match k {
                            "ctxt" => "context switches",
                            "intr" => "interrupts",
                            _ => "forks",
                        };
                        put("system", name, "/s", v);
                    }
                }
                _ => {}
            }
        }
    }
    if let Ok(text) = i.text("proc/vmstat") {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(' ') {
                let name = match k {
                    "pswpin" => "swapped in",
                    "pswpout" => "swapped out",
                    "pgmajfault" => "major faults",
                    _ => continue,
                };
                if let Ok(v) = v.trim().parse() {
                    put("memory", name, "pages/s", v);
                }
            }
        }
    }
    if let Ok(text) = i.text("proc/diskstats") {
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let num = |k: usize| f[k].parse::<u64>().ok();
            let group = format!("disk {}", f[2]);
            if let (Some(r), Some(rs), Some(w), Some(ws)) = (num(3), num(5), num(7), num(9)) {
                put(&group, "reads", "/s", r);
                put(&group, "read", "bytes/s", rs * 512);
                put(&group, "writes", "/s", w);
                put(&group, "written", "bytes/s", ws * 512);
            }
        }
    }
    if let Ok(text) = i.text("proc/net/dev") {
        for line in text.lines().skip(2) {
            let Some((iface, rest)) = line.split_once(':') else { continue };
            let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            if f.len() >= 16 {
                let group = format!("net {}", iface.trim());
                put(&group, "received", "bytes/s", f[0]);
                put(&group, "sent", "bytes/s", f[8]);
            }
        }
    }
    for (entry, wanted) in [
        (
            "proc/net/snmp",
            &[
                ("Tcp", "RetransSegs", "retransmitted segments"),
                ("Tcp", "OutRsts", "resets sent"),
                ("Tcp", "InErrs", "segments received in error"),
            ][..],
        ),
        (
            "proc/net/netstat",
            &[("TcpExt", "ListenDrops", "listen drops"), ("TcpExt", "ListenOverflows", "listen overflows")][..],
        ),
    ] {
        let Ok(text) = i.text(entry) else { continue };
        let Ok(counters) = Counters::parse(&text) else { continue };
        for (group, name, label) in wanted {
            if let Some(v) = counters.get(group, name) {
                put("tcp", label, "/s", v);
            }
        }
    }
    c
}

/// Rates between the bundles, from counters both have; the caller checked they are
/// from one boot.
pub fn rates(b: &Facts, a: &Facts, skipped: &mut BTreeMap<String, String>) -> Option<Rates> {
    let (Some(tb), Some(ta)) = (b.monotonic_ns, a.monotonic_ns) else {
        skipped.insert("rates".into(), "a bundle has no collection clock (manifest)".into());
        return None;
    };
    if ta <= tb {
        skipped.insert("rates".into(), "AFTER was not collected after BEFORE".into());
        return None;
    }
    let seconds = (ta - tb) as f64 / 1e9;
    let (cb, ca) = (&b.counters, &a.counters);
    let cpu_total: u64 =
        ca.iter().filter(|((g, _, _), _)| g == "cpu").filter_map(|(k, va)| Some(va.saturating_sub(*cb.get(k)?))).sum();
    let mut rates = Vec::new();
    for (k @ (group, name, unit), va) in ca {
        // A counter that went backwards was reset (a device re-added): no rate.
        let Some(delta) = cb.get(k).and_then(|vb| va.checked_sub(*vb)) else { continue };
        let value = if group == "cpu" {
            if cpu_total == 0 {
                continue;
            }
            100.0 * delta as f64 / cpu_total as f64
        } else {
            // Devices and interfaces that did nothing are left out.
            if delta == 0 && (group.starts_with("disk ") || group.starts_with("net ")) {
                continue;
            }
            delta as f64 / seconds
        };
        rates.push(Rate { group: group.clone(), name: name.clone(), unit, delta, value });
    }
    Some(Rates { seconds, rates })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    fn manifest(monotonic_s: u64) -> String {
        format!(
            r#"{{"format_version":1,"host":{{"hostname":"h","boot_id":"b"}},"clocks":{{"realtime_ns":{0},"monotonic_ns":{0},"boottime_ns":{0}}}}}"#,
            monotonic_s * 1_000_000_000
        )
    }

    const MEMINFO: &str = "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nBuffers: 50 kB\nCached: 200 kB\n\
                           SwapCached: 0 kB\nActive: 1 kB\nInactive: 1 kB\nSwapTotal: 400 kB\nSwapFree: 300 kB\n\
                           Dirty: 0 kB\nWriteback: 0 kB\nMapped: 0 kB\nSlab: 40 kB\nSReclaimable: 30 kB\n\
                           Committed_AS: 0 kB\nVmallocTotal: 0 kB\nVmallocUsed: 0 kB\nVmallocChunk: 0 kB\n";
    const SNMP: &str = "Tcp: RtoAlgorithm RetransSegs OutRsts InErrs\nTcp: 1 RETRANS 7 0\n";
    const NETSTAT: &str = "TcpExt: ListenOverflows ListenDrops\nTcpExt: 0 LD\n";

    fn side(
        t: u64,
        user: u64,
        idle: u64,
        ctxt: u64,
        sectors: u64,
        rx: u64,
        retrans: u64,
        drops: u64,
    ) -> Vec<(String, String)> {
        vec![
            ("manifest.json".into(), manifest(t)),
            ("proc/meminfo".into(), MEMINFO.into()),
            ("proc/loadavg".into(), "1.50 0.75 0.25 3/120 999\n".into()),
            ("proc/stat".into(), format!("cpu  {user} 0 0 {idle} 0 0 0 0 0 0\ncpu0 {user} 0 0 {idle} 0 0 0 0 0 0\nctxt {ctxt}\nprocesses 10\n")),
            ("proc/vmstat".into(), "pswpin 0\npswpout 0\npgmajfault 0\n".into()),
            ("proc/diskstats".into(), format!(" 254 0 vda 10 0 {sectors} 0 20 0 {sectors} 0 0 0 0\n")),
            (
                "proc/net/dev".into(),
                format!("Inter-|   Receive\n face |bytes\n  eth0: {rx} 1 0 0 0 0 0 0 {rx} 1 0 0 0 0 0 0\n"),
            ),
            ("proc/net/snmp".into(), SNMP.replace("RETRANS", &retrans.to_string())),
            ("proc/net/netstat".into(), NETSTAT.replace("LD", &drops.to_string())),
            ("proc/sys/fs/file-nr".into(), "512\t0\t1000\n".into()),
        ]
    }

    fn facts(entries: &[(String, String)]) -> Facts {
        let e: Vec<(&str, &str)> = entries.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let b = bundle_with(&e);
        Facts::read(&Input::new(&b))
    }

    #[test]
    fn names_with_numbers_are_ordered_by_value() {
        let mut v = vec!["15 min", "5 min", "1 min", ":8080", ":443", ":22", "sda10", "sda2", "sda", "a01", "a1x"];
        v.sort_by(|x, y| natural_cmp(x, y));
        assert_eq!(v, ["1 min", "5 min", "15 min", ":22", ":443", ":8080", "a01", "a1x", "sda", "sda2", "sda10"]);
        let b = facts(&side(100, 1000, 3000, 50_000, 2048, 1_000_000, 10, 1));
        let figs = compare(&b, &b, &mut BTreeMap::new());
        let load: Vec<&str> = figs.iter().filter(|f| f.group == "load").map(|f| f.name.as_str()).collect();
        assert_eq!(load, ["1 min", "5 min", "15 min", "runnable tasks", "tasks"]);
    }

    #[test]
    fn figures_and_rates_carry_the_numbers_of_the_raw_files() {
        let b = facts(&side(100, 1000, 3000, 50_000, 2048, 1_000_000, 10, 1));
        let a = facts(&side(110, 1600, 3400, 70_000, 4096, 6_000_000, 30, 4));
        let mut skipped = BTreeMap::new();
        let figs = compare(&b, &a, &mut skipped);
        let get = |g: &str, n: &str| {
            figs.iter()
                .find(|f| f.group == g && f.name == n)
                .unwrap_or_else(|| panic!("{g} {n}: {figs:?} {skipped:?}"))
                .before
        };
        assert_eq!(get("memory", "used"), Some(400.0 * 1024.0), "MemTotal - MemAvailable");
        assert_eq!(get("memory", "buff/cache"), Some(280.0 * 1024.0), "Buffers + Cached + SReclaimable");
        assert_eq!(get("swap", "used"), Some(100.0 * 1024.0));
        assert_eq!(get("load", "1 min"), Some(1.5));
        assert_eq!(get("load", "tasks"), Some(120.0));
        assert_eq!(get("files", "handles allocated"), Some(512.0));
        assert_eq!(skipped["figures.sockets"], "neither bundle has scan/sockets.jsonl");
        // A damaged entry is named, not taken for an absent one.
        let mut broken = side(110, 1600, 3400, 70_000, 4096, 6_000_000, 30, 4);
        broken[1].1 = "MemTotal: lots\n".into();
        let mut why = BTreeMap::new();
        let partial = compare(&b, &facts(&broken), &mut why);
        assert!(why["figures.memory (AFTER)"].starts_with("proc/meminfo: "), "{why:?}");
        assert!(partial.iter().any(|f| f.group == "memory" && f.name == "used" && f.after.is_none()));

        let r = rates(&b, &a, &mut skipped).expect("rates");
        assert_eq!(r.seconds, 10.0);
        let rate = |g: &str, n: &str| r.rates.iter().find(|x| x.group == g && x.name == n).map(|x| (x.delta, x.value));
        // 600 user and 400 idle ticks of 1000: 60% and 40%.
        assert_eq!(rate("cpu", "user"), Some((600, 60.0)));
        assert_eq!(rate("cpu", "idle"), Some((400, 40.0)));
        assert_eq!(rate("system", "context switches"), Some((20_000, 2000.0)));
        // 2048 sectors of 512 bytes in 10 s.
        assert_eq!(rate("disk vda", "read"), Some((2048 * 512, 2048.0 * 512.0 / 10.0)));
        assert_eq!(rate("net eth0", "received"), Some((5_000_000, 500_000.0)));
        assert_eq!(rate("tcp", "retransmitted segments"), Some((20, 2.0)));
        assert_eq!(rate("tcp", "listen drops"), Some((3, 0.3)));
        // A counter that did not move has a zero rate (resets sent stayed at 7).
        assert_eq!(rate("tcp", "resets sent"), Some((0, 0.0)));
        assert_eq!(rate("memory", "swapped in"), Some((0, 0.0)));

        // AFTER collected before BEFORE: no rates, and the reason.
        let mut skipped = BTreeMap::new();
        assert!(rates(&a, &b, &mut skipped).is_none());
        assert!(skipped["rates"].contains("not collected after"), "{skipped:?}");
    }
}
