//! `snap analyze`: findings with evidence and advice, as text, JSON or Markdown.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use snap_analyzers::{Finding, Report, RuleStatus, Severity};
use snap_bundle::Bundle;

use crate::exit;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FailOn {
    Warning,
    Critical,
}

#[derive(clap::Args)]
pub struct Args {
    /// A bundle (.tar.zst archive or directory, even a partial one without manifest) or a
    /// sos report (.tar.xz, .tar.gz or extracted).
    #[arg(required_unless_present = "live")]
    bundle: Option<PathBuf>,
    /// Analyze the running host (collected in memory, nothing written).
    #[arg(long, conflicts_with = "bundle")]
    live: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Exit with status 1 when a finding at or above this severity exists.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    fail_on: Option<FailOn>,
}

impl Args {
    /// Whether this analyzes the running host rather than a bundle.
    pub fn is_live(&self) -> bool {
        self.bundle.is_none()
    }
}

pub fn run(a: Args) -> u8 {
    let bundle = match &a.bundle {
        Some(p) => Bundle::open(p).map_err(|e| e.to_string()),
        None => live(),
    };
    let bundle = match bundle {
        Ok(b) => b,
        Err(e) => {
            eprintln!("snap: {e}");
            return exit::BAD_INPUT;
        }
    };
    let report = snap_analyzers::analyze(&bundle);
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report).expect("report serialises")),
        Format::Markdown => print!("{}", markdown(&report, bundle.path())),
        Format::Text => print!("{}", text(&report, bundle.path(), color())),
    }
    let threshold = match a.fail_on {
        Some(FailOn::Warning) => Severity::Warning,
        Some(FailOn::Critical) => Severity::Critical,
        None => return exit::OK,
    };
    if report.worst().is_some_and(|w| w >= threshold) {
        exit::FAILURE
    } else {
        exit::OK
    }
}

/// Collects this host into memory with a short window and no packet capture.
fn live() -> Result<Bundle, String> {
    let cfg = snap_collectors::Config { window: Duration::from_secs(2), ..Default::default() };
    let mut out = Vec::new();
    let interrupt = Arc::new(AtomicBool::new(false));
    snap_collectors::run(&cfg, None, &mut out, interrupt, Box::new(|_: &str| {}))
        .map_err(|e| format!("collecting this host failed: {e}"))?;
    Bundle::from_bytes(Path::new("(live)"), &out).map_err(|e| e.to_string())
}

fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn label(s: Severity, color: bool) -> String {
    let (code, name) = match s {
        Severity::Critical => ("1;31", "CRITICAL"),
        Severity::Warning => ("33", "WARNING"),
        Severity::Info => ("36", "INFO"),
    };
    if color {
        format!("\x1b[{code}m{name:<8}\x1b[0m")
    } else {
        format!("{name:<8}")
    }
}

fn evidence_lines(f: &Finding) -> Vec<String> {
    let mut out = Vec::new();
    for e in &f.evidence {
        // An entry made from a sos report's listings names them.
        let entry =
            if e.from.is_empty() { e.entry.clone() } else { format!("{} (from {})", e.entry, e.from.join(", ")) };
        for l in &e.lines {
            out.push(format!("{entry}: {l}"));
        }
        if !e.values.is_empty() {
            let vals: Vec<String> = e.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push(format!("{entry}: {}", vals.join(" ")));
        }
        if e.lines.is_empty() && e.values.is_empty() {
            out.push(entry);
        }
    }
    out
}

/// How a sos report was read (see [`snap_bundle::sos::Report::summary`]).
fn sos_lines(report: &Report) -> Vec<String> {
    report.sos_report.as_ref().map(|r| r.summary()).unwrap_or_default()
}

fn rule_summary(report: &Report) -> (usize, usize, Vec<(String, String)>) {
    let fired = report.rules.values().filter(|s| **s == RuleStatus::Fired).count();
    let passed = report.rules.values().filter(|s| **s == RuleStatus::Passed).count();
    let other = report
        .rules
        .iter()
        .filter(|(_, s)| matches!(s, RuleStatus::NotEvaluated(_) | RuleStatus::Failed(_)))
        .map(|(id, s)| (id.clone(), s.render()))
        .collect();
    (fired, passed, other)
}

fn host_line(report: &Report, path: &Path) -> String {
    match &report.bundle {
        Some(h) => {
            format!("{} ({} {}), {} CPUs — {}", h.hostname, h.kernel_release, h.arch, h.online_cpus, path.display())
        }
        None => format!("{} (no manifest)", path.display()),
    }
}

/// What the findings are, in one line before them when there are several: counts by
/// severity, then by rule in the order the rules first appear (the most severe first).
fn overview(findings: &[Finding]) -> Option<String> {
    if findings.len() < 2 {
        return None;
    }
    let mut severities: Vec<(Severity, usize)> = Vec::new();
    let mut rules: Vec<(&str, usize)> = Vec::new();
    for f in findings {
        match severities.iter_mut().find(|(s, _)| *s == f.severity) {
            Some((_, n)) => *n += 1,
            None => severities.push((f.severity, 1)),
        }
        match rules.iter_mut().find(|(r, _)| *r == f.rule) {
            Some((_, n)) => *n += 1,
            None => rules.push((&f.rule, 1)),
        }
    }
    severities.sort_by_key(|(s, _)| std::cmp::Reverse(*s));
    let severities: Vec<String> = severities.iter().map(|(s, n)| format!("{n} {}", s.as_str())).collect();
    let rules: Vec<String> = rules.iter().map(|(r, n)| format!("{r} {n}")).collect();
    Some(format!("{} findings ({}): {}", findings.len(), severities.join(", "), rules.join(", ")))
}

/// Each finding's advice, or for a finding whose rule gave the very same advice to an
/// earlier finding, a pointer to that one: a rule firing for many subjects would
/// otherwise repeat its paragraph for each.
fn advice_lines(findings: &[Finding]) -> Vec<Option<String>> {
    let mut first: Vec<(&str, &str, &str)> = Vec::new();
    findings
        .iter()
        .map(|f| {
            if f.advice.is_empty() {
                return None;
            }
            match first.iter().find(|(rule, advice, _)| *rule == f.rule && *advice == f.advice) {
                Some((_, _, subject)) => Some(format!("as for {} {subject} above", f.rule)),
                None => {
                    first.push((&f.rule, &f.advice, &f.subject));
                    Some(f.advice.clone())
                }
            }
        })
        .collect()
}

pub fn text(report: &Report, path: &Path, color: bool) -> String {
    let mut o = format!("snap analyze: {}\n", host_line(report, path));
    for l in sos_lines(report) {
        o.push_str(&format!("  {l}\n"));
    }
    if let Some(l) = overview(&report.findings) {
        o.push_str(&format!("{l}\n"));
    }
    o.push('\n');
    if report.findings.is_empty() {
        o.push_str("No findings.\n");
    }
    for (f, advice) in report.findings.iter().zip(advice_lines(&report.findings)) {
        o.push_str(&format!("{} {}  {}\n", label(f.severity, color), f.rule, f.subject));
        o.push_str(&format!("         {}\n", f.summary));
        for e in evidence_lines(f) {
            o.push_str(&format!("         evidence: {e}\n"));
        }
        if let Some(a) = advice {
            o.push_str(&format!("         advice: {a}\n"));
        }
        o.push('\n');
    }
    let (fired, passed, other) = rule_summary(report);
    o.push_str(&format!("rules: {fired} fired, {passed} passed, {} not evaluated or failed\n", other.len()));
    for (id, s) in other {
        o.push_str(&format!("  {id}: {s}\n"));
    }
    o
}

pub fn markdown(report: &Report, path: &Path) -> String {
    let mut o = format!("## snap analyze: {}\n\n", host_line(report, path));
    let sos = sos_lines(report);
    for l in &sos {
        o.push_str(&format!("- {}\n", md_cell(l)));
    }
    if !sos.is_empty() {
        o.push('\n');
    }
    if report.findings.is_empty() {
        o.push_str("No findings.\n\n");
    } else {
        if let Some(l) = overview(&report.findings) {
            o.push_str(&format!("{l}\n\n"));
        }
        o.push_str("| severity | rule | subject | summary |\n|---|---|---|---|\n");
        for f in &report.findings {
            o.push_str(&format!(
                "| {} | `{}` | {} | {} |\n",
                f.severity.as_str(),
                f.rule,
                md_cell(&f.subject),
                md_cell(&f.summary)
            ));
        }
        o.push('\n');
        for (f, advice) in report.findings.iter().zip(advice_lines(&report.findings)) {
            o.push_str(&format!("### {} `{}` {}\n\n{}\n\n", f.severity.as_str(), f.rule, f.subject, f.summary));
            for e in evidence_lines(f) {
                o.push_str(&format!("- evidence: `{}`\n", e.replace('`', "'")));
            }
            if let Some(a) = advice {
                o.push_str(&format!("- advice: {a}\n"));
            }
            o.push('\n');
        }
    }
    let (fired, passed, other) = rule_summary(report);
    o.push_str(&format!("Rules: {fired} fired, {passed} passed, {} not evaluated or failed.\n", other.len()));
    for (id, s) in other {
        o.push_str(&format!("- `{id}`: {s}\n"));
    }
    o
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `snap rules`: every rule, what it detects, its thresholds and why.
pub fn rules() -> u8 {
    for r in snap_analyzers::rules::registry() {
        println!(
            "{}\n  detects:    {}\n  thresholds: {}\n  reads:      {}\n",
            r.id(),
            r.detects(),
            r.thresholds(),
            r.inputs().join(", ")
        );
    }
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &str, severity: Severity, subject: &str, advice: &str) -> Finding {
        Finding::new(rule, severity, subject, format!("{rule} on {subject}")).advice(advice)
    }

    #[test]
    fn overview_counts_severities_and_rules_in_order_of_appearance() {
        let fs = [
            finding("kernel.syn_flood", Severity::Critical, ":80", "a"),
            finding("mem.oom_kill", Severity::Critical, "pid 1 (x)", "b"),
            finding("kernel.syn_flood", Severity::Warning, ":81", "a"),
            finding("load.high", Severity::Info, "host", ""),
        ];
        assert_eq!(
            overview(&fs).unwrap(),
            "4 findings (2 critical, 1 warning, 1 info): kernel.syn_flood 2, mem.oom_kill 1, load.high 1"
        );
        assert_eq!(overview(&fs[..1]), None, "one finding speaks for itself");
    }

    #[test]
    fn the_same_advice_of_the_same_rule_is_printed_once() {
        let fs = [
            finding("kernel.syn_flood", Severity::Critical, ":80", "raise the backlog"),
            finding("mem.oom_kill", Severity::Critical, "pid 1 (x)", "raise the backlog"),
            finding("kernel.syn_flood", Severity::Warning, ":81", "raise the backlog"),
            finding("kernel.syn_flood", Severity::Warning, ":82", "something else"),
            finding("load.high", Severity::Warning, "host", ""),
        ];
        let a = advice_lines(&fs);
        assert_eq!(
            a,
            [
                Some("raise the backlog".to_string()),
                Some("raise the backlog".to_string()),
                Some("as for kernel.syn_flood :80 above".to_string()),
                Some("something else".to_string()),
                None,
            ]
        );
        let report = Report {
            snap_version: String::new(),
            bundle: None,
            findings: fs.to_vec(),
            rules: Default::default(),
            sos_report: None,
        };
        let text = text(&report, Path::new("b.tar.zst"), false);
        assert_eq!(text.matches("raise the backlog").count(), 2, "{text}");
        assert!(
            text.contains("\n5 findings (2 critical, 3 warning): kernel.syn_flood 3, mem.oom_kill 1, load.high 1\n")
        );
        let md = markdown(&report, Path::new("b.tar.zst"));
        assert_eq!(md.matches("raise the backlog").count(), 2, "{md}");
        assert!(md.contains("- advice: as for kernel.syn_flood :80 above\n"), "{md}");
    }
}
