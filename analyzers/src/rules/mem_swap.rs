//! `mem.swap`: swap in use, and swapping in the sampling window (pswpin/pswpout) as the
//! stronger signal.
//!
//! Swap that is used but not moving is memory the kernel once pushed out and nobody has
//! touched since: often harmless. Pages moving in and out while the bundle was taken is
//! what makes a box slow. Rates come from the first and last `samples/<n>/proc/vmstat`
//! and the manifest's monotonic clocks; without two samples the since-boot counters of
//! `proc/vmstat` are averaged over the uptime and labelled "since boot".

use serde_json::json;
use snap_bundle::names;

use crate::{Evidence, Finding, Input, Need, Rule, Severity, Skip};

pub struct Swap;

/// Pages per second swapped in or out in the window above which the rule warns.
const ACTIVE_PAGES_PER_S: f64 = 100.0;
/// Share of swap used from which the rule warns.
const WARN_USED_PERCENT: f64 = 50.0;

const MIB: f64 = 1024.0 * 1024.0;

impl Rule for Swap {
    fn id(&self) -> &'static str {
        "mem.swap"
    }

    fn detects(&self) -> &'static str {
        "swap in use, and pages swapped in or out during the sampling window"
    }

    fn thresholds(&self) -> &'static str {
        "warning when more than 100 pages/s (about 400 KiB/s with 4 KiB pages) are swapped in \
         or out in the sampling window, or when swap is 50 % used or more; info when swap is \
         used without that (some swapping in the window, or none). Quiet when no swap is used. \
         Swap in use but idle is memory the kernel pushed out once and nobody touched since, \
         often harmless; pages moving during the window mean the working set does not fit in \
         RAM, and every swap-in is a process waiting on the disk. pswpin/pswpout rates come \
         from the first and last samples and their monotonic clocks; a bundle without two \
         samples gives only since-boot averages (counters over the uptime), labelled as such \
         and never a warning by themselves, since they say nothing about now. Swap \
         50 % used is the point where a further burst can exhaust it and leave the OOM killer \
         as the only way out."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &[
            "proc/meminfo",
            "samples/<n>/proc/vmstat (optional: window rates)",
            "proc/vmstat (optional: since-boot counters)",
            "proc/swaps (optional)",
        ]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let raw = input.raw("proc/meminfo")?;
        let m = crate::input::meminfo(&raw).map_err(|e| Skip::bad("proc/meminfo", e))?;
        let total = m.swap_total;
        let used = total.saturating_sub(m.swap_free);
        let page = input.system_info().page_size;
        let activity = window_activity(input).or_else(|| since_boot(input));

        let used_percent = if total > 0 { used as f64 * 100.0 / total as f64 } else { 0.0 };
        let active = activity
            .as_ref()
            .is_some_and(|a| a.window && (a.in_rate > ACTIVE_PAGES_PER_S || a.out_rate > ACTIVE_PAGES_PER_S));
        let window_moves = activity.as_ref().is_some_and(|a| a.window && (a.pages_in + a.pages_out) > 0);
        if used == 0 && !window_moves {
            return Ok(Vec::new());
        }
        let severity = if active || used_percent >= WARN_USED_PERCENT { Severity::Warning } else { Severity::Info };

        let mib = |b: u64| b as f64 / MIB;
        let mut summary = if total > 0 {
            format!("swap {:.0} MiB used of {:.0} MiB ({used_percent:.1} %)", mib(used), mib(total))
        } else {
            "no swap configured".to_string()
        };
        let meminfo_ev = Evidence::entry("proc/meminfo")
            .value("SwapTotal", total)
            .value("SwapFree", m.swap_free)
            .value("SwapCached", m.swap_cached);
        let mut f = Finding::new(self.id(), severity, "swap", String::new())
            .evidence(meminfo_ev)
            .fact("swap_total_bytes", total)
            .fact("swap_used_bytes", used)
            .fact("swap_used_percent", round1(used_percent));
        if let Some(a) = &activity {
            let label = if a.window { format!("in the {:.1} s window", a.seconds) } else { "since boot".to_string() };
            let moved = format!("{} in, {} out", human_pages(a.pages_in, page), human_pages(a.pages_out, page));
            if a.seconds > 0.0 {
                summary.push_str(&format!(
                    "; {:.1} pages/s in, {:.1} pages/s out {label} ({moved})",
                    a.in_rate, a.out_rate
                ));
            } else {
                // No uptime to divide by: the totals are known, the rate is not.
                summary.push_str(&format!("; {moved} {label}, rate unknown (no proc/uptime)"));
            }
            f = f
                .fact("rates_from", if a.window { "window" } else { "since boot" })
                .fact("pswpin_pages", a.pages_in)
                .fact("pswpout_pages", a.pages_out);
            if a.seconds > 0.0 {
                f = f
                    .fact("seconds", round1(a.seconds))
                    .fact("pswpin_per_s", round1(a.in_rate))
                    .fact("pswpout_per_s", round1(a.out_rate));
            }
            f = f.evidence(a.evidence.clone());
        } else {
            summary.push_str("; swapping rate unknown (no vmstat)");
        }
        let devices = swap_devices(input);
        if !devices.is_empty() {
            let mut e = Evidence::entry("proc/swaps");
            for d in &devices {
                e = e.line(d.clone());
            }
            f = f.evidence(e).fact("swap_devices", json!(devices));
        }
        let advice = if active {
            "Pages are moving to and from swap now: the working set does not fit in RAM. Find the \
             processes growing (mem.oom_candidates, RSS and VmSwap in proc/<pid>/status), reduce \
             them or add memory; lowering vm.swappiness only shifts the pressure onto the page \
             cache. Faster swap (zram, SSD) softens it but does not cure it."
        } else if used_percent >= WARN_USED_PERCENT {
            "Swap is half full or more. If nothing moves (low pswpin/pswpout) it is cold memory \
             and harmless until a burst needs more; check which processes hold it (VmSwap in \
             proc/<pid>/status) and whether they leak, and add memory or swap before the OOM \
             killer decides."
        } else {
            "Swap is in use but barely moving: memory pushed out once and not needed since, \
             usually harmless. Watch pswpin (pages read back): if it rises, processes wait on \
             the disk for their own memory."
        };
        f.summary = summary;
        Ok(vec![f.advice(advice)])
    }
}

/// Pages swapped in and out over a period, and their rates.
#[derive(Debug, Clone)]
struct Activity {
    /// True for the sampling window, false for since-boot averages.
    window: bool,
    seconds: f64,
    pages_in: u64,
    pages_out: u64,
    in_rate: f64,
    out_rate: f64,
    evidence: Evidence,
}

/// pswpin and pswpout of a vmstat text.
fn swap_counters(text: &str) -> Option<(u64, u64)> {
    let get = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(char::is_whitespace)?;
            (k == name).then(|| v.trim().parse::<u64>().ok()).flatten()
        })
    };
    Some((get("pswpin")?, get("pswpout")?))
}

/// Rates between the first and last samples holding vmstat, timed by the manifest.
fn window_activity(input: &Input) -> Option<Activity> {
    let manifest = input.manifest()?;
    let mut timed: Vec<(usize, u64, String)> = manifest
        .samples
        .iter()
        .filter(|s| s.clocks.monotonic_ns > 0)
        .map(|s| (s.index, s.clocks.monotonic_ns, names::sample(s.index, "/proc/vmstat")))
        .filter(|(_, _, e)| input.has(e))
        .collect();
    timed.sort_by_key(|(i, _, _)| *i);
    let (first, last) = (timed.first()?, timed.last()?);
    if last.1 <= first.1 {
        return None;
    }
    let a = swap_counters(&input.text(&first.2).ok()?)?;
    let b = swap_counters(&input.text(&last.2).ok()?)?;
    let seconds = (last.1 - first.1) as f64 / 1e9;
    let pages_in = b.0.saturating_sub(a.0);
    let pages_out = b.1.saturating_sub(a.1);
    Some(Activity {
        window: true,
        seconds,
        pages_in,
        pages_out,
        in_rate: pages_in as f64 / seconds,
        out_rate: pages_out as f64 / seconds,
        evidence: Evidence::entry(&format!("{} .. {}", first.2, last.2))
            .line(format!("{}: pswpin {} pswpout {}", first.2, a.0, a.1))
            .line(format!("{}: pswpin {} pswpout {}", last.2, b.0, b.1))
            .value("seconds", round1(seconds)),
    })
}

/// Since-boot averages from proc/vmstat over the uptime (proc/uptime, else the manifest).
fn since_boot(input: &Input) -> Option<Activity> {
    let (pages_in, pages_out) = swap_counters(&input.text("proc/vmstat").ok()?)?;
    let uptime = input
        .text("proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .or_else(|| input.manifest().map(|m| m.clocks.boottime_ns as f64 / 1e9))
        .filter(|s| *s > 0.0);
    let (seconds, in_rate, out_rate) = match uptime {
        Some(s) => (s, pages_in as f64 / s, pages_out as f64 / s),
        None => (0.0, 0.0, 0.0),
    };
    Some(Activity {
        window: false,
        seconds,
        pages_in,
        pages_out,
        in_rate,
        out_rate,
        evidence: Evidence::entry("proc/vmstat")
            .line(format!("pswpin {pages_in} (since boot)"))
            .line(format!("pswpout {pages_out} (since boot)")),
    })
}

/// The device lines of proc/swaps, header left out.
fn swap_devices(input: &Input) -> Vec<String> {
    let Ok(text) = input.text("proc/swaps") else { return Vec::new() };
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn human_pages(pages: u64, page_size: u64) -> String {
    let bytes = pages.saturating_mul(page_size) as f64;
    if bytes >= 1024.0 * MIB {
        format!("{:.1} GiB", bytes / 1024.0 / MIB)
    } else {
        format!("{:.1} MiB", bytes / MIB)
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    /// The swap lines of /proc/meminfo on a Debian 12 VM, with a 4 GiB swap file.
    fn meminfo(swap_free_kb: u64) -> String {
        format!(
            "MemTotal:       24683656 kB\nMemFree:        17616496 kB\nMemAvailable:   24201456 kB\n\
             Buffers:           18692 kB\nCached:          6350984 kB\nSwapCached:          512 kB\n\
             Active:          2090456 kB\nInactive:        4282040 kB\nActive(anon):       1516 kB\n\
             Inactive(anon):    10256 kB\nActive(file):    2088940 kB\nInactive(file):  4271784 kB\n\
             Unevictable:        9972 kB\nMlocked:            8272 kB\nSwapTotal:       4194300 kB\n\
             SwapFree:        {swap_free_kb} kB\nDirty:             66556 kB\nWriteback:             0 kB\n\
             AnonPages:         12748 kB\nMapped:            14916 kB\nShmem:              8952 kB\n\
             Slab:             595928 kB\nSReclaimable:     544328 kB\nSUnreclaim:        51600 kB\n\
             KernelStack:        1292 kB\nPageTables:         1180 kB\nNFS_Unstable:          0 kB\n\
             Bounce:                0 kB\nWritebackTmp:          0 kB\nCommitLimit:    12341828 kB\n\
             Committed_AS:      53204 kB\nVmallocTotal:   34359738367 kB\nVmallocUsed:        5556 kB\n\
             VmallocChunk:          0 kB\n"
        )
    }

    /// The same VM without swap (SwapTotal 0), as this Debian 12 VM is.
    fn no_swap() -> String {
        meminfo(0).replace("SwapTotal:       4194300 kB", "SwapTotal:             0 kB")
    }

    /// Lines around pswpin/pswpout of a real /proc/vmstat (Debian 12, 6.x).
    fn vmstat(pswpin: u64, pswpout: u64) -> String {
        format!(
            "nr_free_pages 4404124\nnr_zone_inactive_anon 2564\npgpgin 2409773\npgpgout 1202460\n\
             pswpin {pswpin}\npswpout {pswpout}\npgalloc_dma 0\npgmajfault 28684\n"
        )
    }

    const SWAPS: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                         /swapfile                               file\t\t4194300\t\t1048576\t\t-2\n";

    /// A manifest with samples 0..=2 one second apart.
    fn manifest() -> String {
        let s = |i: u64| {
            format!(
                r#"{{"index":{i},"clocks":{{"realtime_ns":0,"monotonic_ns":{},"boottime_ns":0}}}}"#,
                5_000_000_000 + i * 1_000_000_000
            )
        };
        format!(r#"{{"format_version":1,"host":{{"page_size":4096}},"samples":[{},{},{}]}}"#, s(0), s(1), s(2))
    }

    #[test]
    fn quiet_without_swap() {
        let b = bundle_with(&[("proc/meminfo", &no_swap()), ("proc/vmstat", &vmstat(0, 0))]);
        assert_eq!(Swap.evaluate(&Input::new(&b)).unwrap(), vec![]);
        // Swap configured but unused and nothing moving: quiet too.
        let b = bundle_with(&[("proc/meminfo", &meminfo(4194300)), ("proc/vmstat", &vmstat(0, 0))]);
        assert_eq!(Swap.evaluate(&Input::new(&b)).unwrap(), vec![]);
    }

    #[test]
    fn active_swapping_in_the_window_warns() {
        let m = manifest();
        let b = bundle_with(&[
            ("manifest.json", &m),
            ("proc/meminfo", &meminfo(3_145_724)),
            ("proc/swaps", SWAPS),
            ("samples/0/proc/vmstat", &vmstat(1000, 5000)),
            ("samples/1/proc/vmstat", &vmstat(1100, 5300)),
            ("samples/2/proc/vmstat", &vmstat(1200, 5600)),
        ]);
        let f = &Swap.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject, "swap");
        assert_eq!(f.facts["rates_from"], "window");
        assert_eq!(f.facts["seconds"], 2.0);
        assert_eq!(f.facts["pswpin_pages"], 200);
        assert_eq!(f.facts["pswpout_pages"], 600);
        assert_eq!(f.facts["pswpout_per_s"], 300.0);
        assert_eq!(f.facts["swap_used_percent"], 25.0);
        assert_eq!(f.facts["swap_devices"][0], "/swapfile file 4194300 1048576 -2");
        assert!(f.summary.contains("in the 2.0 s window"), "{}", f.summary);
    }

    #[test]
    fn used_but_idle_is_info_and_half_full_warns() {
        let m = manifest();
        let idle = vmstat(1000, 5000);
        let b = bundle_with(&[
            ("manifest.json", &m),
            ("proc/meminfo", &meminfo(3_145_724)),
            ("samples/0/proc/vmstat", &idle),
            ("samples/2/proc/vmstat", &idle),
        ]);
        let f = &Swap.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.facts["pswpin_per_s"], 0.0);
        assert_eq!(f.facts["swap_used_bytes"], 1_048_576u64 * 1024);

        let b = bundle_with(&[
            ("manifest.json", &m),
            ("proc/meminfo", &meminfo(2_097_150)),
            ("samples/0/proc/vmstat", &idle),
            ("samples/2/proc/vmstat", &idle),
        ]);
        let f = &Swap.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.facts["swap_used_percent"], 50.0);
    }

    #[test]
    fn without_samples_since_boot_counters_are_labelled_and_do_not_warn() {
        // hotsos-vault's counters; a busy history but nothing known about now.
        let b = bundle_with(&[
            ("proc/meminfo", &meminfo(4_000_000)),
            ("proc/vmstat", &vmstat(92, 1722)),
            ("proc/uptime", "86400.00 170000.00\n"),
        ]);
        let f = &Swap.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.facts["rates_from"], "since boot");
        assert_eq!(f.facts["pswpout_pages"], 1722);
        assert!(f.summary.contains("since boot"), "{}", f.summary);
    }

    #[test]
    fn missing_and_bad_meminfo() {
        let b = bundle_with(&[("proc/vmstat", &vmstat(0, 0))]);
        assert_eq!(Swap.evaluate(&Input::new(&b)), Err(Skip::missing("proc/meminfo")));
        let b = bundle_with(&[("proc/meminfo", "garbage\n")]);
        assert!(matches!(Swap.evaluate(&Input::new(&b)), Err(Skip::Bad { .. })));
    }
}
