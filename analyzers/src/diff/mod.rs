//! What changed between two bundles (`snap diff BEFORE AFTER`).
//!
//! Each part reads both bundles through the same parsers as the rules and compares:
//! [`host`] (identity, boot, kernel, sysctl, configuration files, mounts), the findings
//! of both analyses (matched by rule and subject), [`figures`] side by side and the
//! rates between the two bundles, [`processes`] (started, exited, growers, CLOSE_WAIT),
//! and [`klog`] (kernel messages that are new in AFTER). A part whose inputs either
//! bundle lacks is left out and says why in [`Diff::skipped`].

pub mod figures;
pub mod host;
pub mod klog;
pub mod processes;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use snap_bundle::Bundle;

use crate::{Finding, Input, Report, Severity};

/// Everything `snap diff` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub snap_version: String,
    pub host: host::HostChanges,
    pub findings: FindingChanges,
    pub figures: Vec<figures::Figure>,
    /// Rates over the time between the bundles; same boot only.
    pub rates: Option<figures::Rates>,
    pub processes: processes::ProcessChanges,
    pub kernel_log: klog::NewMessages,
    /// Parts that could not be compared, with the reason.
    pub skipped: BTreeMap<String, String>,
}

/// Findings new in AFTER, gone from it, and changed, matched by (rule, subject).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FindingChanges {
    pub new: Vec<Finding>,
    pub resolved: Vec<Finding>,
    pub changed: Vec<ChangedFinding>,
}

/// A finding present in both bundles whose severity or facts differ.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedFinding {
    pub rule: String,
    pub subject: String,
    pub before: FindingState,
    pub after: FindingState,
    /// Facts whose values differ: name -> [before, after] (null where absent).
    pub facts: BTreeMap<String, [Value; 2]>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingState {
    pub severity: Severity,
    pub summary: String,
}

impl Diff {
    /// Whether nothing at all changed (a bundle compared with itself).
    pub fn is_empty(&self) -> bool {
        self.host.is_empty()
            && self.findings.new.is_empty()
            && self.findings.resolved.is_empty()
            && self.findings.changed.is_empty()
            && self.figures.iter().all(|f| f.delta() == Some(0.0) || f.before == f.after)
            && self.processes.is_empty()
            && self.kernel_log.messages.is_empty()
    }

    /// New findings at or above `level`, and findings that rose to it.
    pub fn new_at_least(&self, level: Severity) -> Vec<(&str, &str, Severity)> {
        let new = self.findings.new.iter().filter(|f| f.severity >= level).map(|f| (&*f.rule, &*f.subject, f.severity));
        let risen = self
            .findings
            .changed
            .iter()
            .filter(|c| c.after.severity >= level && c.before.severity < c.after.severity)
            .map(|c| (&*c.rule, &*c.subject, c.after.severity));
        new.chain(risen).collect()
    }
}

/// One bundle analyzed and read for the diff, on one thread: the rules and the diff
/// share one [`Input`], so every entry is parsed once.
struct Snapshot {
    report: Report,
    host: host::Facts,
    figures: figures::Facts,
    processes: processes::Facts,
    klog: klog::Facts,
}

fn snapshot(bundle: &Bundle) -> Snapshot {
    std::thread::scope(|scope| {
        let input = Input::new(bundle);
        input.prefetch(scope);
        Snapshot {
            report: crate::run_rules(bundle, &input),
            host: host::Facts::read(&input),
            figures: figures::Facts::read(&input),
            processes: processes::Facts::read(&input),
            klog: klog::Facts::read(&input),
        }
    })
}

/// Compares two opened bundles, each analyzed and read on its own thread.
pub fn compare(before: &Bundle, after: &Bundle) -> Diff {
    let (b, a) = std::thread::scope(|s| {
        let b = s.spawn(|| snapshot(before));
        let a = snapshot(after);
        (b.join().expect("a bundle's snapshot does not panic"), a)
    });
    let mut skipped = BTreeMap::new();
    let host = host::compare(&b.host, &a.host);
    let figures = figures::compare(&b.figures, &a.figures, &mut skipped);
    let rates = if host.same_boot == Some(true) {
        figures::rates(&b.figures, &a.figures, &mut skipped)
    } else {
        skipped.insert("rates".into(), "the bundles are not from the same boot".into());
        None
    };
    let processes = processes::compare(&b.processes, &a.processes, &mut skipped);
    let kernel_log = klog::compare(&b.klog, &a.klog, host.same_boot == Some(true), &mut skipped);
    Diff {
        snap_version: env!("CARGO_PKG_VERSION").to_string(),
        findings: findings(&b.report, &a.report),
        host,
        figures,
        rates,
        processes,
        kernel_log,
        skipped,
    }
}

/// Facts that change with the time of collection alone (a kernel-log event's age):
/// not a change of the finding.
const VOLATILE_FACTS: &[&str] = &["age_s"];

/// Findings matched by (rule, subject). A finding has changed when its severity or a
/// fact differs (other than `VOLATILE_FACTS`); summaries repeat the facts in words
/// and are shown, not compared.
pub fn findings(before: &Report, after: &Report) -> FindingChanges {
    let key = |f: &Finding| (f.rule.clone(), f.subject.clone());
    let b: BTreeMap<_, &Finding> = before.findings.iter().map(|f| (key(f), f)).collect();
    let a: BTreeMap<_, &Finding> = after.findings.iter().map(|f| (key(f), f)).collect();
    let mut out = FindingChanges::default();
    for (k, fa) in &a {
        match b.get(k) {
            None => out.new.push((*fa).clone()),
            Some(fb) => {
                let mut facts = BTreeMap::new();
                for name in fb.facts.keys().chain(fa.facts.keys()).filter(|n| !VOLATILE_FACTS.contains(&n.as_str())) {
                    let (vb, va) = (fb.facts.get(name), fa.facts.get(name));
                    if vb != va {
                        facts.insert(
                            name.clone(),
                            [vb.cloned().unwrap_or(Value::Null), va.cloned().unwrap_or(Value::Null)],
                        );
                    }
                }
                if fb.severity != fa.severity || !facts.is_empty() {
                    out.changed.push(ChangedFinding {
                        rule: k.0.clone(),
                        subject: k.1.clone(),
                        before: FindingState { severity: fb.severity, summary: fb.summary.clone() },
                        after: FindingState { severity: fa.severity, summary: fa.summary.clone() },
                        facts,
                    });
                }
            }
        }
    }
    out.resolved = b.iter().filter(|(k, _)| !a.contains_key(*k)).map(|(_, f)| (*f).clone()).collect();
    let worst_first = |x: &Finding, y: &Finding| y.severity.cmp(&x.severity).then_with(|| x.rule.cmp(&y.rule));
    out.new.sort_by(worst_first);
    out.resolved.sort_by(worst_first);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(findings: Vec<Finding>) -> Report {
        Report { snap_version: String::new(), bundle: None, findings, rules: BTreeMap::new(), sos_report: None }
    }

    fn finding(rule: &str, subject: &str, severity: Severity, facts: &[(&str, Value)]) -> Finding {
        let mut f = Finding::new(rule, severity, subject, format!("{rule} on {subject}"));
        for (k, v) in facts {
            f.facts.insert(k.to_string(), v.clone());
        }
        f
    }

    #[test]
    fn findings_match_by_rule_and_subject_and_ignore_their_age() {
        let before = report(vec![
            finding("net.close_wait", "pid 7 (java)", Severity::Warning, &[("count", 12.into())]),
            finding("mem.oom_kill", "pid 9 (perl)", Severity::Critical, &[("age_s", 100.into())]),
            finding("proc.zombies", "parent 1", Severity::Warning, &[]),
        ]);
        let after = report(vec![
            finding("net.close_wait", "pid 7 (java)", Severity::Critical, &[("count", 400.into())]),
            finding("mem.oom_kill", "pid 9 (perl)", Severity::Critical, &[("age_s", 700.into())]),
            finding("disk.space_low", "/var", Severity::Warning, &[]),
        ]);
        let c = findings(&before, &after);
        assert_eq!(c.new.iter().map(|f| f.subject.as_str()).collect::<Vec<_>>(), ["/var"]);
        assert_eq!(c.resolved.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), ["proc.zombies"]);
        assert_eq!(c.changed.len(), 1, "only the close_wait finding changed: {:?}", c.changed);
        assert_eq!(c.changed[0].facts["count"], [Value::from(12), Value::from(400)]);
        assert_eq!(
            (c.changed[0].before.severity, c.changed[0].after.severity),
            (Severity::Warning, Severity::Critical)
        );
        let d = |changes: FindingChanges| Diff {
            snap_version: String::new(),
            host: host::HostChanges::default(),
            findings: changes,
            figures: Vec::new(),
            rates: None,
            processes: processes::ProcessChanges::default(),
            kernel_log: klog::NewMessages::default(),
            skipped: BTreeMap::new(),
        };
        // --exit-code counts the new warning and the escalation to critical.
        assert_eq!(d(c).new_at_least(Severity::Warning).len(), 2);
        assert!(d(findings(&before, &before)).is_empty());
    }
}
