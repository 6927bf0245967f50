//! `snap diff BEFORE AFTER`: what changed between two bundles, as text or JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use snap_analyzers::diff::{self, figures::Figure, Diff};
use snap_analyzers::Severity;
use snap_bundle::Bundle;

use super::Format;
use crate::exit;
use crate::units::human_bytes;

#[derive(clap::Args)]
pub struct Args {
    /// The earlier bundle (.tar.zst archive or directory) or sos report.
    before: PathBuf,
    /// The later bundle.
    after: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Exit with status 1 when AFTER has a warning or critical finding that BEFORE did
    /// not have (or had at a lower severity).
    #[arg(long)]
    exit_code: bool,
}

/// Lines listed per section in text; JSON has everything.
const SHOWN: usize = 20;

pub fn run(a: Args) -> u8 {
    let (before, after) = std::thread::scope(|s| {
        let b = s.spawn(|| Bundle::open(&a.before));
        let after = Bundle::open(&a.after);
        (b.join().expect("opening a bundle does not panic"), after)
    });
    let (before, after) = match (before, after) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("snap: {e}");
            return exit::BAD_INPUT;
        }
    };
    let d = diff::compare(&before, &after);
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&d).expect("diff serialises")),
        Format::Text => print!("{}", text(&d, &a.before, &a.after)),
    }
    if a.exit_code && !d.new_at_least(Severity::Warning).is_empty() {
        return exit::FAILURE;
    }
    exit::OK
}

fn shown(n: usize) -> String {
    if n > SHOWN {
        format!("  ... and {} more (--format json lists them all)\n", n - SHOWN)
    } else {
        String::new()
    }
}

fn duration(s: f64) -> String {
    let a = s.abs().round() as u64;
    let t = match a {
        0..=59 => format!("{a} s"),
        60..=3599 => format!("{} min {} s", a / 60, a % 60),
        3600..=86_399 => format!("{} h {} min", a / 3600, a % 3600 / 60),
        _ => format!("{} d {} h", a / 86_400, a % 86_400 / 3600),
    };
    if s < 0.0 {
        format!("-{t}")
    } else {
        t
    }
}

fn value(v: f64, unit: &str) -> String {
    match unit {
        "bytes" => human_bytes(v.abs() as u64),
        _ if v.fract() == 0.0 => format!("{}", v.abs() as u64),
        _ => format!("{:.2}", v.abs()),
    }
}

fn signed(v: f64, unit: &str) -> String {
    let sign = if v < 0.0 { "-" } else { "+" };
    format!("{sign}{}", value(v, unit))
}

fn figure_line(f: &Figure) -> String {
    let side = |v: Option<f64>| v.map_or("-".to_string(), |v| value(v, f.unit));
    let delta = f.delta().map_or("".to_string(), |d| signed(d, f.unit));
    format!("  {:<10} {:<34} {:>12} {:>12} {:>12}\n", f.group, f.name, side(f.before), side(f.after), delta)
}

pub fn text(d: &Diff, before: &Path, after: &Path) -> String {
    let mut o = String::new();
    let h = &d.host;
    let _ = writeln!(o, "snap diff {} -> {}", before.display(), after.display());
    let name = |s: &diff::host::Side| s.hostname.clone().unwrap_or_else(|| "(unknown host)".into());
    let host = match h.same_host {
        Some(true) => format!("same host {}", name(&h.after)),
        Some(false) => format!("DIFFERENT HOSTS: {} and {}", name(&h.before), name(&h.after)),
        None => "host unknown (a bundle has no manifest)".into(),
    };
    let boot = match h.same_boot {
        Some(true) => "same boot".to_string(),
        Some(false) if h.same_host == Some(true) => "REBOOTED in between (boot ids differ)".into(),
        Some(false) => "different boots".into(),
        None => "boot unknown".into(),
    };
    let _ = writeln!(o, "host:     {host}, {boot}");
    if let (Some(s), Some(tb), Some(ta)) = (h.elapsed_s, &h.before.time, &h.after.time) {
        let _ = writeln!(o, "time:     {} between the collections ({tb} -> {ta})", duration(s));
    }
    if let Some([kb, ka]) = &h.kernel {
        let _ = writeln!(o, "kernel:   {kb} -> {ka}");
    }
    if d.is_empty() {
        let _ = writeln!(o, "\nNo changes.");
        return o;
    }

    let f = &d.findings;
    let _ = writeln!(o, "\nFindings: {} new, {} resolved, {} changed", f.new.len(), f.resolved.len(), f.changed.len());
    for x in &f.new {
        let _ = writeln!(o, "  new       {:<8} {} {}: {}", x.severity.as_str(), x.rule, x.subject, x.summary);
    }
    for x in &f.resolved {
        let _ = writeln!(o, "  resolved  {:<8} {} {}: {}", x.severity.as_str(), x.rule, x.subject, x.summary);
    }
    for c in &f.changed {
        let sev = if c.before.severity == c.after.severity {
            c.after.severity.as_str().to_string()
        } else {
            format!("{} -> {}", c.before.severity.as_str(), c.after.severity.as_str())
        };
        let _ = writeln!(o, "  changed   {sev} {} {}: {}", c.rule, c.subject, c.after.summary);
        for (k, [vb, va]) in &c.facts {
            let _ = writeln!(o, "              {k}: {vb} -> {va}");
        }
    }

    let changed: Vec<&Figure> = d.figures.iter().filter(|f| f.before != f.after).collect();
    let _ = writeln!(o, "\nFigures: {} changed, {} unchanged", changed.len(), d.figures.len() - changed.len());
    if !changed.is_empty() {
        let _ = writeln!(o, "  {:<10} {:<34} {:>12} {:>12} {:>12}", "", "", "before", "after", "delta");
        for f in &changed {
            o.push_str(&figure_line(f));
        }
    }

    if let Some(r) = &d.rates {
        let _ = writeln!(o, "\nRates over the {} between the bundles:", duration(r.seconds));
        let cpu: Vec<String> =
            r.rates.iter().filter(|x| x.group == "cpu").map(|x| format!("{} {:.1}%", x.name, x.value)).collect();
        if !cpu.is_empty() {
            let _ = writeln!(o, "  cpu        {}", cpu.join(", "));
        }
        for x in r.rates.iter().filter(|x| x.group != "cpu" && x.delta > 0) {
            let per_s = match x.unit {
                "bytes/s" => format!("{}/s", human_bytes(x.value as u64)),
                unit => format!("{:.1} {unit}", x.value),
            };
            let _ = writeln!(o, "  {:<10} {:<28} {:>14} (+{})", x.group, x.name, per_s, x.delta);
        }
    }

    let p = &d.processes;
    if !p.is_empty() {
        let _ = writeln!(o, "\nProcesses: {} started, {} exited", p.started.len(), p.exited.len());
        for (what, list) in [("started", &p.started), ("exited", &p.exited)] {
            for x in list.iter().take(SHOWN) {
                let _ = writeln!(o, "  {what:<8} pid {} ({})", x.pid, x.command);
            }
            o.push_str(&shown(list.len()));
        }
        for g in p.growers.iter().chain(&p.close_wait) {
            let unit = if g.measure == "rss" { "bytes" } else { "" };
            let _ = writeln!(
                o,
                "  {:<11} pid {} ({}): {} -> {} ({})",
                g.measure,
                g.pid,
                g.command,
                value(g.before as f64, unit),
                value(g.after as f64, unit),
                signed(g.delta() as f64, unit)
            );
        }
    }

    if !h.sysctl.is_empty() {
        let _ = writeln!(o, "\nSysctl: {} changed", h.sysctl.len());
        for s in h.sysctl.iter().take(SHOWN) {
            let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "(absent)".into());
            let _ = writeln!(o, "  {} = {} -> {}", s.name, v(&s.before), v(&s.after));
        }
        o.push_str(&shown(h.sysctl.len()));
    }
    if !h.config.is_empty() {
        let _ = writeln!(o, "\nConfiguration: {} files", h.config.len());
        for c in &h.config {
            let _ = writeln!(o, "  {} {}", c.change, c.entry);
            for l in c.diff.iter().take(4 * SHOWN) {
                let _ = writeln!(o, "    {l}");
            }
        }
    }
    let m = &h.mounts;
    if !m.added.is_empty() || !m.removed.is_empty() {
        let _ = writeln!(o, "\nMounts: {} added, {} removed", m.added.len(), m.removed.len());
        for (sign, list) in [("+", &m.added), ("-", &m.removed)] {
            for x in list {
                let _ = writeln!(o, "  {sign} {} ({} {})", x.target, x.fstype, x.source);
            }
        }
    }
    let k = &d.kernel_log;
    if !k.messages.is_empty() {
        let _ = writeln!(o, "\nKernel log: {} new messages (matched by {})", k.messages.len(), k.matched_by);
        for x in k.messages.iter().take(SHOWN) {
            let t = x.uptime_s.map_or(String::new(), |s| format!("[{s:>12.6}] "));
            let _ = writeln!(o, "  {t}{}", x.text);
        }
        o.push_str(&shown(k.messages.len()));
    }
    if !d.skipped.is_empty() {
        let _ = writeln!(o, "\nNot compared:");
        for (part, why) in &d.skipped {
            let _ = writeln!(o, "  {part}: {why}");
        }
    }
    o
}
