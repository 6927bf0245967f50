//! `snap inspect`: what a bundle holds, where it came from, what it cost.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use snap_bundle::manifest::EntryStatus;
use snap_bundle::{time, Bundle};

use super::Format;
use crate::exit;
use crate::units::human_bytes;

#[derive(clap::Args)]
pub struct Args {
    /// A bundle (.tar.zst archive or directory) or a sos report (.tar.xz, .tar.gz or extracted).
    bundle: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// List every entry that is not ok (text format shows the first 40 otherwise).
    #[arg(long)]
    all: bool,
}

pub fn run(a: Args) -> u8 {
    let bundle = match super::open_bundle(&a.bundle) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let names = match bundle.entries() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("snap: {e}");
            return exit::BAD_INPUT;
        }
    };
    match a.format {
        Format::Json => json(&bundle, &names),
        Format::Text => text(&bundle, &names, a.all),
    }
    exit::OK
}

fn status_counts(bundle: &Bundle) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    if let Some(m) = bundle.manifest() {
        for e in &m.entries {
            *counts.entry(e.status.as_str()).or_insert(0) += 1;
        }
    }
    counts
}

fn json(bundle: &Bundle, names: &[String]) {
    let v = serde_json::json!({
        "bundle": bundle.path().display().to_string(),
        "has_manifest": bundle.manifest().is_some(),
        "entry_count": names.len(),
        "status_counts": status_counts(bundle),
        "manifest": bundle.manifest(),
        "sos_report": bundle.sos(),
    });
    println!("{}", serde_json::to_string_pretty(&v).expect("json"));
}

/// A sos report: how it was read (the manifest fields of a snap collection mean
/// nothing for it).
fn sos_text(r: &snap_bundle::sos::Report, names: &[String]) {
    for line in r.summary() {
        println!("  {}", clean(&line));
    }
    println!("entries     {} (with the made ones)", names.len());
}

/// Text from a bundle made safe for a terminal: control characters (the escape
/// sequences a hostile manifest can carry) are printed escaped, never interpreted.
fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect())
}

fn text(bundle: &Bundle, names: &[String], all: bool) {
    println!("bundle      {}", clean(&bundle.path().display().to_string()));
    if let Some(r) = bundle.sos() {
        return sos_text(r, names);
    }
    let Some(m) = bundle.manifest() else {
        println!("manifest    none (a hand-made or third-party tree)");
        println!("entries     {}", names.len());
        return;
    };
    let h = &m.host;
    let collected = (m.clocks.realtime_ns / 1_000_000_000) as i64;
    println!("format      {} (written by snap {})", m.format_version, clean(&m.snap_version));
    println!(
        "host        {} ({} {}, {}-endian)",
        clean(&h.hostname),
        clean(&h.kernel_release),
        clean(&h.arch),
        clean(&h.endianness)
    );
    println!("cpus        {} online; page size {}; {} clock ticks/s", h.online_cpus, h.page_size, h.clock_ticks);
    println!("booted      {} (boot id {})", time::iso_utc(h.boot_time as i64), clean(&h.boot_id));
    println!(
        "collected   {} ({} local, UTC{:+})",
        time::iso_utc(collected),
        time::ctime(collected, h.utc_offset_seconds),
        h.utc_offset_seconds as f64 / 3600.0
    );
    println!(
        "clocks      realtime {} ns, monotonic {} ns, boottime {} ns",
        m.clocks.realtime_ns, m.clocks.monotonic_ns, m.clocks.boottime_ns
    );
    let o = &m.options;
    println!(
        "options     window {} ms every {} ms, deadline {} ms, budget {}, per file {}, read timeout {} ms{}{}",
        o.window_ms,
        o.interval_ms,
        o.deadline_ms,
        human_bytes(o.max_bytes),
        human_bytes(o.max_file_bytes),
        o.read_timeout_ms,
        if o.environ { ", environ" } else { "" },
        if o.low_priority { ", low priority" } else { ", normal priority" },
    );
    let c = &m.cost;
    println!(
        "cost        {:.2} s wall, {:.2} s user + {:.2} s system CPU, peak RSS {}, nice {}, I/O {}",
        c.wall_ms as f64 / 1e3,
        c.user_cpu_ms as f64 / 1e3,
        c.system_cpu_ms as f64 / 1e3,
        human_bytes(c.peak_rss_kb.saturating_mul(1024)),
        c.nice,
        clean(&c.io_priority)
    );
    println!(
        "bytes       {} read, {} stored, {} written; {} reads blocked past their limit",
        human_bytes(c.bytes_read),
        human_bytes(c.bytes_stored),
        human_bytes(c.bytes_written),
        c.stuck_reads
    );
    println!("kernel log  {}", clean(m.kernel_log_source.as_deref().unwrap_or("not collected")));
    println!("samples     {}", m.samples.len());
    match &m.capture {
        None => println!("capture     not attempted"),
        Some(c) => {
            let ifaces = if c.interfaces.is_empty() {
                "all interfaces".to_string()
            } else {
                clean(&c.interfaces.join(", ")).into()
            };
            let filter = match (&c.filter, &c.filter_compiler) {
                (Some(f), Some(by)) => format!("filter `{}` (compiled by {})", clean(f), clean(by)),
                (Some(f), None) => format!("filter `{}`", clean(f)),
                _ => "no filter".to_string(),
            };
            println!(
                "capture     {}: {} packets captured of {} seen, {} dropped by the kernel, {}; {}; {}; snaplen {}{}; \
                 {:.1} s, stopped by {}{}",
                c.status.as_str(),
                c.packets_captured,
                c.packets_seen,
                c.packets_dropped,
                human_bytes(c.bytes),
                ifaces,
                filter,
                c.snaplen,
                if c.payload { " (payload)" } else { "" },
                c.duration_ms as f64 / 1000.0,
                clean(&c.stopped_by),
                c.message.as_deref().map(|m| format!(" ({})", clean(m))).unwrap_or_default()
            );
        }
    }
    let counts: Vec<String> = status_counts(bundle).iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("entries     {} in the archive; attempted: {}", names.len(), counts.join(", "));
    println!();
    println!("{:<14} {:<10} {:>8} {:>11} {:>9}  note", "collector", "status", "entries", "bytes", "ms");
    for r in &m.collectors {
        println!(
            "{:<14} {:<10} {:>8} {:>11} {:>9}  {}",
            clean(&r.name),
            r.status.as_str(),
            r.entries,
            human_bytes(r.bytes),
            r.duration_us / 1000,
            clean(r.message.as_deref().unwrap_or(""))
        );
    }
    let bad: Vec<_> = m.entries.iter().filter(|e| e.status != EntryStatus::Ok).collect();
    if !bad.is_empty() {
        println!();
        println!("entries not ok ({}):", bad.len());
        let shown = if all { bad.len() } else { bad.len().min(40) };
        for e in &bad[..shown] {
            println!("  {:<10} {}  {}", e.status.as_str(), clean(&e.path), clean(e.message.as_deref().unwrap_or("")));
        }
        if shown < bad.len() {
            println!("  ... {} more (--all lists them)", bad.len() - shown);
        }
    }
}
