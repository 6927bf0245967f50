//! What an analyzer reports: findings with evidence, and each rule's outcome.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// How bad a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Where a finding's numbers come from: a bundle entry and the lines or values read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub entry: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, Value>,
    /// The files `entry` was made from, when the bundle is a sos report and the entry
    /// one made from its listings (`scan/sockets.jsonl` from a netstat listing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
}

impl Evidence {
    pub fn entry(entry: &str) -> Evidence {
        Evidence { entry: entry.to_string(), lines: Vec::new(), values: BTreeMap::new(), from: Vec::new() }
    }

    pub fn line(mut self, line: impl Into<String>) -> Evidence {
        self.lines.push(line.into());
        self
    }

    pub fn value(mut self, name: &str, v: impl Into<Value>) -> Evidence {
        self.values.insert(name.to_string(), v.into());
        self
    }
}

/// One thing an expert would point at. `(rule, subject)` is its identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub subject: String,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub facts: BTreeMap<String, Value>,
    pub advice: String,
}

impl Finding {
    pub fn new(rule: &str, severity: Severity, subject: impl Into<String>, summary: impl Into<String>) -> Finding {
        Finding {
            rule: rule.to_string(),
            severity,
            subject: subject.into(),
            summary: summary.into(),
            evidence: Vec::new(),
            facts: BTreeMap::new(),
            advice: String::new(),
        }
    }

    pub fn evidence(mut self, e: Evidence) -> Finding {
        self.evidence.push(e);
        self
    }

    pub fn fact(mut self, name: &str, v: impl Into<Value>) -> Finding {
        self.facts.insert(name.to_string(), v.into());
        self
    }

    pub fn advice(mut self, advice: impl Into<String>) -> Finding {
        self.advice = advice.into();
        self
    }
}

/// How a rule's evaluation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleStatus {
    Fired,
    Passed,
    /// Its inputs are absent from the bundle (named here).
    NotEvaluated(String),
    /// Its inputs were there but unusable, or the rule has a bug.
    Failed(String),
}

impl RuleStatus {
    /// The contract's spelling: `fired`, `passed`, `not_evaluated: ...`, `failed: ...`.
    pub fn render(&self) -> String {
        match self {
            RuleStatus::Fired => "fired".into(),
            RuleStatus::Passed => "passed".into(),
            RuleStatus::NotEvaluated(m) => format!("not_evaluated: {m}"),
            RuleStatus::Failed(m) => format!("failed: {m}"),
        }
    }
}

impl Serialize for RuleStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.render())
    }
}
