//! `uptime` and `free` outputs of a sos report (`sos_commands/host/uptime`,
//! `sos_commands/memory/free`).
//!
//! **uptime** (procps `whattime.c`): ` 09:51:36 up 11:18,  1 user,  load average: 6.42,
//! 4.37, 3.94`. The time up is `N day(s), ` when a day or more, then `H:MM` or
//! `M min`; so `up 5 days,  3:02`, `up 1 day, 42 min`, `up 3 min`. The user count may
//! read `0 user` (as procps-ng 4.0.2 prints it) or be missing (busybox, or procps-ng 4
//! without utmp). BSD and macOS write `load averages:` with spaces between
//! the figures, and `2 hrs`, `42 secs` in the time up; a locale with a decimal comma
//! writes `6,42, 4,37, 3,94`. All of these are read.
//!
//! **free** (procps): since procps-ng 3.3.10 (RHEL 7.1+, Debian 8+)
//!
//! ```text
//!               total        used        free      shared  buff/cache   available
//! Mem:       16393172      375760    14472360       54796     1545052    16017412
//! Swap:             0           0           0
//! ```
//!
//! (`free -w` splits buff/cache into `buffers` and `cache`). Up to 3.3.9 (RHEL 6,
//! RHEL 7.0) there is no `available`, the Mem line's `used` includes buffers and cache,
//! and a `-/+ buffers/cache:` line gives used and free without them:
//!
//! ```text
//!              total       used       free     shared    buffers     cached
//! Mem:       3924384    3713864     210520          0     238812    2767112
//! -/+ buffers/cache:     707940    3216444
//! Swap:      4063224      13556    4049668
//! ```
//!
//! Columns are found by their header names; `Low:`, `High:` and `Total:` lines
//! (`free -l`, `-t`) are ignored.

/// What `uptime` printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Uptime {
    /// The wall-clock time as printed (`09:51:36`), in the host's time zone.
    pub clock: String,
    /// Time since boot, to the minute (to the second for BSD's `secs`); None when the
    /// `up ...` part is in a form not known here.
    pub up_seconds: Option<u64>,
    /// Logged-in users; None when uptime printed no count.
    pub users: Option<u32>,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f64; 3],
}

/// Parses the first non-blank line of `uptime`'s output. Err when it has no `up`, no
/// `load average` or not three load figures.
pub fn parse_uptime(text: &str) -> Result<Uptime, String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).ok_or("uptime: empty output")?;
    let what = |e: &str| format!("uptime: {e} in {line:?}");
    let at = line.find("load average").ok_or_else(|| what("no load average"))?;
    let (head, tail) = line.split_at(at);
    let tail = tail.trim_start_matches("load average").trim_start_matches('s');
    let load = tail.trim_start().strip_prefix(':').and_then(loads).ok_or_else(|| what("not three load averages"))?;
    let head = head.trim_end().trim_end_matches(',');
    let (clock, up) = match head.split_once(" up ") {
        Some(parts) => parts,
        None => (head.strip_suffix(" up").ok_or_else(|| what("no `up`"))?, ""),
    };
    let mut users = None;
    let mut seconds = Some(0u64);
    let mut counted = false;
    for part in up.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let words: Vec<&str> = part.split_whitespace().collect();
        let add = match words[..] {
            [n, "user" | "users"] => {
                users = n.parse().ok();
                continue;
            }
            [n, "day" | "days"] => n.parse::<u64>().ok().and_then(|n| n.checked_mul(86400)),
            [n, "hr" | "hrs" | "hour" | "hours"] => n.parse::<u64>().ok().and_then(|n| n.checked_mul(3600)),
            [n, "min" | "mins"] => n.parse::<u64>().ok().and_then(|n| n.checked_mul(60)),
            [n, "sec" | "secs"] => n.parse::<u64>().ok(),
            [hours_minutes] => hours_minutes.split_once(':').and_then(|(h, m)| {
                let (h, m) = (h.parse::<u64>().ok()?, m.parse::<u64>().ok()?);
                h.checked_mul(3600)?.checked_add(m.checked_mul(60)?)
            }),
            _ => None,
        };
        seconds = seconds.zip(add).and_then(|(s, a)| s.checked_add(a));
        counted = true;
    }
    Ok(Uptime { clock: clock.trim().to_string(), up_seconds: seconds.filter(|_| counted), users, load })
}

/// Three load figures: `6.42, 4.37, 3.94`, `6,42, 4,37, 3,94` or `6.42 4.37 3.94`.
fn loads(text: &str) -> Option<[f64; 3]> {
    let text = text.trim();
    let parts: Vec<&str> = if text.contains(", ") {
        text.split(", ").collect()
    } else if text.contains(char::is_whitespace) {
        text.split_whitespace().collect()
    } else {
        text.split(',').collect()
    };
    let figure = |p: &str| {
        let p = p.trim();
        let plain = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',');
        plain.then(|| p.replace(',', ".").parse::<f64>().ok()).flatten()
    };
    match parts[..] {
        [a, b, c] => Some([figure(a)?, figure(b)?, figure(c)?]),
        _ => None,
    }
}

/// What `free` printed, in KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Free {
    pub mem_total_kib: u64,
    /// Used memory without buffers and cache: the Mem line's `used`, or in the old layout
    /// the `-/+ buffers/cache:` line's. procps defines it as total - free - buffers -
    /// cache up to 4.0.0 and as total - available since procps-ng 4.0.1 (its changelog),
    /// so compare releases with care; the other fields allow either computation.
    pub mem_used_kib: u64,
    pub mem_free_kib: u64,
    pub shared_kib: Option<u64>,
    /// `buff/cache`, or `buffers` + `cache`/`cached` (the old layout, `free -w`). The old
    /// layout's `cached` is Cached alone; later ones add SReclaimable.
    pub buff_cache_kib: Option<u64>,
    /// None in the layout of procps 3.3.9 and earlier, which has no such column.
    pub available_kib: Option<u64>,
    pub swap_total_kib: u64,
    pub swap_used_kib: u64,
    pub swap_free_kib: u64,
}

/// Parses plain `free` (or `free -k`) output. The figures must be KiB: `free -h`'s
/// (`15Gi`) are refused, but `free -m`, `-g` or `-b` output looks the same as `free`'s
/// and cannot be told apart, so the caller must pass the `free` entry, not `free_-m`.
/// Err when the header, the Mem line or the Swap line is missing or malformed.
pub fn parse_free(text: &str) -> Result<Free, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().ok_or("free: empty output")?.split_whitespace().collect();
    if !header.contains(&"total") {
        return Err(format!("free: no header with a total column: {:?}", header.join(" ")));
    }
    let mut mem = None;
    let mut swap = None;
    let mut old_used = None;
    for line in lines {
        let Some((label, figures)) = line.split_once(':') else {
            return Err(format!("free: unexpected line {:?}", line.trim()));
        };
        let figures = figures
            .split_whitespace()
            .map(|f| match f.parse::<u64>() {
                Ok(n) => Ok(n),
                Err(_) if f.starts_with(|c: char| c.is_ascii_digit()) && f.ends_with(char::is_alphabetic) => {
                    Err(format!("free: human-readable figure {f:?} (free -h); plain free output is needed"))
                }
                Err(_) => Err(format!("free: bad figure {f:?} in {:?}", line.trim())),
            })
            .collect::<Result<Vec<u64>, String>>()?;
        match (label.trim(), &figures[..]) {
            ("Mem", _) if figures.len() != header.len() => {
                return Err(format!("free: {} figures on the Mem: line for {} columns", figures.len(), header.len()));
            }
            ("Mem", _) => mem = Some(figures),
            ("Swap", &[total, used, free, ..]) => swap = Some((total, used, free)),
            ("-/+ buffers/cache", &[used, _]) => old_used = Some(used),
            ("Low" | "High" | "Total", _) => {}
            _ => return Err(format!("free: unexpected line {:?}", line.trim())),
        }
    }
    let mem = mem.ok_or("free: no Mem: line")?;
    let (swap_total_kib, swap_used_kib, swap_free_kib) = swap.ok_or("free: no Swap: line")?;
    let column = |name: &str| header.iter().position(|h| *h == name).map(|i| mem[i]);
    let required = |name: &str| column(name).ok_or_else(|| format!("free: no {name} column"));
    let buff_cache = match (column("buff/cache"), column("buffers"), column("cache").or_else(|| column("cached"))) {
        (Some(both), _, _) => Some(both),
        (None, Some(buffers), Some(cache)) => buffers.checked_add(cache),
        _ => None,
    };
    Ok(Free {
        mem_total_kib: required("total")?,
        mem_used_kib: old_used.map_or_else(|| required("used"), Ok)?,
        mem_free_kib: required("free")?,
        shared_kib: column("shared"),
        buff_cache_kib: buff_cache,
        available_kib: column("available"),
        swap_total_kib,
        swap_used_kib,
        swap_free_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(line: &str) -> (String, Option<u64>, Option<u32>, [f64; 3]) {
        let u = parse_uptime(line).unwrap();
        (u.clock, u.up_seconds, u.users, u.load)
    }

    #[test]
    fn sos_uptime_lines() {
        // /tmp/sos/sosreport-vault-2021 (procps-ng 3.3.16) and /tmp/sosout/sosreport-vm-*
        // (procps-ng 4.0.2, which says `0 user`).
        let vault = " 09:51:36 up 11:18,  1 user,  load average: 6.42, 4.37, 3.94\n";
        assert_eq!(up(vault), ("09:51:36".into(), Some(11 * 3600 + 18 * 60), Some(1), [6.42, 4.37, 3.94]));
        let debian = " 05:42:30 up  7:40,  0 user,  load average: 1.01, 1.10, 1.21\n";
        assert_eq!(up(debian), ("05:42:30".into(), Some(7 * 3600 + 40 * 60), Some(0), [1.01, 1.10, 1.21]));
    }

    #[test]
    fn other_uptime_forms() {
        // Published lines: a mail header, procps 2.x's 12-hour clock, macOS.
        let days = "21:59:13 up 78 days, 48 min,  1 user,  load average: 0.00, 0.00, 0.00";
        assert_eq!(up(days).1, Some(78 * 86400 + 48 * 60));
        assert_eq!(
            up(" 4:53pm  up 1 min,  1 user,  load average: 0.14, 0.09, 0.03"),
            ("4:53pm".into(), Some(60), Some(1), [0.14, 0.09, 0.03])
        );
        let mac = "21:32  up 6 days,  9:28, 4 users, load averages: 2.81 3.27 3.01";
        assert_eq!(up(mac), ("21:32".into(), Some(6 * 86400 + 9 * 3600 + 28 * 60), Some(4), [2.81, 3.27, 3.01]));
        // procps-ng 4 without utmp, a decimal comma, BSD's hours and seconds.
        assert_eq!(up(" 10:00:00 up 1 day,  3:02,  load average: 4,20, 3,90, 3,50").1, Some(86400 + 3 * 3600 + 2 * 60));
        assert_eq!(up(" 10:00:00 up 1 day,  3:02,  load average: 4,20, 3,90, 3,50").3, [4.2, 3.9, 3.5]);
        assert_eq!(up(" 10:00:00 up 1 day,  3:02,  load average: 4,20, 3,90, 3,50").2, None);
        assert_eq!(up("9:00  up 2 hrs, 1 user, load averages: 1.00 1.00 1.00").1, Some(7200));
        assert_eq!(up("9:00  up 42 secs, 1 user, load averages: 1.00 1.00 1.00").1, Some(42));
        assert_eq!(up(" 10:00:00 up 3 min,  2 users,  load average: 0.00, 0.00, 0.00").1, Some(180));
        // An unknown form of the time up leaves it unknown, the rest is read.
        assert_eq!(up(" 10:00:00 up 3 fortnights,  2 users,  load average: 0.00, 0.00, 0.00").1, None);
        assert_eq!(up(" 10:00:00 up 99999999999999999 days,  load average: 0.00, 0.00, 0.00").1, None);
    }

    #[test]
    fn bad_uptime() {
        for (text, error) in [
            ("", "uptime: empty output"),
            (" 09:51:36 up 11:18,  1 user", "uptime: no load average in \"09:51:36 up 11:18,  1 user\""),
            ("09:51:36 11:18, load average: 1, 2, 3", "uptime: no `up` in \"09:51:36 11:18, load average: 1, 2, 3\""),
            (
                "09:51:36 up 1 min, load average: 1.0, 2.0",
                "uptime: not three load averages in \"09:51:36 up 1 min, load average: 1.0, 2.0\"",
            ),
            (
                "09:51:36 up 1 min, load average: inf, nan, 1",
                "uptime: not three load averages in \"09:51:36 up 1 min, load average: inf, nan, 1\"",
            ),
        ] {
            assert_eq!(parse_uptime(text).unwrap_err(), error);
        }
    }

    #[test]
    fn sos_free() {
        // /tmp/sos/sosreport-vault-2021/sos_commands/memory/free (procps-ng 3.3.16).
        let vault = "\
              total        used        free      shared  buff/cache   available
Mem:       16393172      375760    14472360       54796     1545052    16017412
Swap:             0           0           0
";
        assert_eq!(
            parse_free(vault).unwrap(),
            Free {
                mem_total_kib: 16393172,
                mem_used_kib: 375760,
                mem_free_kib: 14472360,
                shared_kib: Some(54796),
                buff_cache_kib: Some(1545052),
                available_kib: Some(16017412),
                swap_total_kib: 0,
                swap_used_kib: 0,
                swap_free_kib: 0,
            }
        );
        // /tmp/sosout/sosreport-vm-*/sos_commands/memory/free (procps-ng 4.0.2, whose used
        // is total - available).
        let debian = "\
               total        used        free      shared  buff/cache   available
Mem:        24683656      662788    16271284        8952     8160036    24020868
Swap:              0           0           0
";
        let f = parse_free(debian).unwrap();
        assert_eq!((f.mem_used_kib, f.mem_total_kib - f.available_kib.unwrap()), (662788, 662788));
    }

    #[test]
    fn other_free_layouts() {
        // A RHEL 6.8 host (kernel 2.6.32-642.el6), as published: used 880052 includes
        // buffers and cached; 880052 - 72068 - 570672 = 237312.
        let rhel6 = "\
             total       used       free     shared    buffers     cached
Mem:       1922088     880052    1042036        204      72068     570672
-/+ buffers/cache:     237312    1684776
Swap:      4128764          0    4128764
";
        let f = parse_free(rhel6).unwrap();
        assert_eq!((f.mem_total_kib, f.mem_used_kib, f.mem_free_kib), (1922088, 237312, 1042036));
        assert_eq!((f.shared_kib, f.buff_cache_kib, f.available_kib), (Some(204), Some(72068 + 570672), None));
        assert_eq!((f.swap_total_kib, f.swap_used_kib, f.swap_free_kib), (4128764, 0, 4128764));
        // `free -w` and `free -h` on this project's Debian VM (procps-ng 4.0.2).
        let wide = "\
               total        used        free      shared     buffers       cache   available
Mem:        24683656      692708    14547892        8952       93208     9760068    23990948
Swap:              0           0           0
";
        assert_eq!(parse_free(wide).unwrap().buff_cache_kib, Some(93208 + 9760068));
        let human = "\
               total        used        free      shared  buff/cache   available
Mem:            23Gi       676Mi        13Gi       8.7Mi       9.4Gi        22Gi
";
        assert_eq!(
            parse_free(human).unwrap_err(),
            "free: human-readable figure \"23Gi\" (free -h); plain free output is needed"
        );
    }

    #[test]
    fn bad_free() {
        let header = "              total        used        free      shared  buff/cache   available\n";
        for (text, error) in [
            (String::new(), "free: empty output".to_string()),
            ("Mem: 1 2 3\n".into(), "free: no header with a total column: \"Mem: 1 2 3\"".into()),
            (format!("{header}Swap: 0 0 0\n"), "free: no Mem: line".into()),
            (format!("{header}Mem: 1 2 3 4 5 6\n"), "free: no Swap: line".into()),
            (format!("{header}Mem: 1 2 3\n"), "free: 3 figures on the Mem: line for 6 columns".into()),
            (format!("{header}Mem: 1 2 3 4 5 x\n"), "free: bad figure \"x\" in \"Mem: 1 2 3 4 5 x\"".into()),
            (format!("{header}Swap: 1\n"), "free: unexpected line \"Swap: 1\"".into()),
            (format!("{header}garbage\n"), "free: unexpected line \"garbage\"".into()),
            (
                "  used free\nMem: 1 2\nSwap: 0 0 0\n".into(),
                "free: no header with a total column: \"used free\"".into(),
            ),
            ("  total free\nMem: 1 2\nSwap: 0 0 0\n".into(), "free: no used column".into()),
        ] {
            assert_eq!(parse_free(&text).unwrap_err(), error, "{text:?}");
        }
    }

    /// Cut at every byte and mutated: no panic, whatever the result.
    #[test]
    fn no_panic_on_damaged_outputs() {
        let uptime = " 09:51:36 up 5 days, 11:18,  1 user,  load average: 6.42, 4.37, 3.94\n";
        let free = "             total       used       free     shared    buffers     cached\n\
                    Mem:       1922088     880052    1042036        204      72068     570672\n\
                    -/+ buffers/cache:     237312    1684776\n\
                    Swap:      4128764          0    4128764\n";
        for text in [uptime, free] {
            for n in 0..=text.len() {
                let _ = (parse_uptime(&text[..n]), parse_free(&text[..n]));
            }
            for i in 0..text.len() {
                for b in [b' ', b'\n', b',', b':', b'9', b'-', 0xe2, 0xff] {
                    let mut m = text.as_bytes().to_vec();
                    m[i] = b;
                    let m = crate::text::lossy(&m);
                    let _ = (parse_uptime(&m), parse_free(&m));
                }
            }
        }
    }
}
