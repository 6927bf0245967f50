//! The corpus cases: every directory under `corpus/cases` holds a bundle made by
//! `corpus/make-cases.sh` on a real host (`bundle.tar.zst`) and the reviewed output of
//! `snap analyze --format json` on it (`expected.json`). The binary must still give
//! exactly that output: the host facts, every finding (rule, severity, subject,
//! summary, facts, evidence, advice), their order, and the status of every rule. Only
//! `snap_version` is left out, since it names the binary that ran. A mismatch is
//! reported per case, per finding and per field.
//!
//! `SNAP_BLESS=1 cargo test --test corpus_cases` rewrites every expected.json with the
//! current output instead of comparing; review the change (`git diff corpus/cases`)
//! before committing it. The text and markdown renderings of each case must also work.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Fields of the JSON output that name the binary, not the analysis.
const VARYING: &[&str] = &["snap_version"];

/// Longest rendering of a value in a difference report.
const SHOWN: usize = 300;

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no cases under {}", root.display());
    dirs
}

fn name(case: &Path) -> String {
    case.file_name().unwrap().to_string_lossy().into_owned()
}

fn analyze(case: &Path, format: &str) -> Output {
    let bundle = case.join("bundle.tar.zst");
    assert!(bundle.is_file(), "case {}: no bundle.tar.zst", name(case));
    Command::new(env!("CARGO_BIN_EXE_snap")).args(["analyze", "--format", format]).arg(&bundle).output().unwrap()
}

fn blessing() -> bool {
    std::env::var_os("SNAP_BLESS").is_some_and(|v| v == "1")
}

/// A value for a difference report, cut to a readable length.
fn show(v: Option<&Value>) -> String {
    let Some(v) = v else { return "(absent)".to_string() };
    let s = v.to_string();
    if s.chars().count() <= SHOWN {
        return s;
    }
    format!("{}... ({} chars)", s.chars().take(SHOWN).collect::<String>(), s.chars().count())
}

/// Every place where `actual` differs from `expected`, as `path: expected X, got Y`.
fn diff_values(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match (e.get(k), a.get(k)) {
                    (Some(x), Some(y)) => diff_values(&p, x, y, out),
                    (x, y) => out.push(format!("{p}: expected {}, got {}", show(x), show(y))),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                diff_values(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            out.push(format!("{path}: expected {} items, got {}", e.len(), a.len()));
            for i in 0..e.len().max(a.len()) {
                match (e.get(i), a.get(i)) {
                    (Some(x), Some(y)) => diff_values(&format!("{path}[{i}]"), x, y, out),
                    (x, y) => out.push(format!("{path}[{i}]: expected {}, got {}", show(x), show(y))),
                }
            }
        }
        (e, a) if e != a => out.push(format!("{path}: expected {}, got {}", show(Some(e)), show(Some(a)))),
        _ => {}
    }
}

/// A finding's identity, `rule subject`.
fn identity(f: &Value) -> String {
    format!("{} {}", f["rule"].as_str().unwrap_or("?"), f["subject"].as_str().unwrap_or("?"))
}

fn findings(report: &Value) -> Vec<&Value> {
    report["findings"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

fn by_identity<'a>(list: &[&'a Value], id: &str) -> Option<&'a Value> {
    list.iter().find(|f| identity(f) == id).copied()
}

/// The differences between two reports of one case, findings matched by identity.
fn diff_reports(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let strip = |r: &Value| {
        let mut r = r.clone();
        if let Some(o) = r.as_object_mut() {
            for k in VARYING {
                o.remove(*k);
            }
            o.remove("findings");
        }
        r
    };
    // Everything but the findings: host facts, rule statuses, any other top-level field.
    diff_values("", &strip(expected), &strip(actual), &mut out);

    let (want, got) = (findings(expected), findings(actual));
    for f in &want {
        let id = identity(f);
        match by_identity(&got, &id) {
            None => out.push(format!("finding {id}: expected, not produced: {}", show(f.get("summary")))),
            Some(g) => {
                let mut fields = Vec::new();
                diff_values("", f, g, &mut fields);
                out.extend(fields.into_iter().map(|d| format!("finding {id}: {d}")));
            }
        }
    }
    for g in &got {
        let id = identity(g);
        if by_identity(&want, &id).is_none() {
            out.push(format!("finding {id}: produced, not expected: {}", show(g.get("summary"))));
        }
    }
    let order = |list: &[&Value]| list.iter().map(|f| identity(f)).collect::<Vec<_>>();
    let (want_order, got_order) = (order(&want), order(&got));
    if out.is_empty() && want_order != got_order {
        out.push(format!("findings in another order: expected {want_order:?}, got {got_order:?}"));
    }
    out
}

#[test]
fn every_case_gives_its_expected_json() {
    let mut failures = Vec::new();
    for case in case_dirs() {
        let name = name(&case);
        let out = analyze(&case, "json");
        assert!(out.status.success(), "case {name}: analyze failed: {}", String::from_utf8_lossy(&out.stderr));
        let actual: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("case {name}: analyze printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
        });
        let expected_path = case.join("expected.json");
        if blessing() {
            // Verbatim: expected.json is what `snap analyze --format json` printed.
            std::fs::write(&expected_path, &out.stdout).unwrap();
            eprintln!("case {name}: wrote {} ({} findings)", expected_path.display(), findings(&actual).len());
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&expected_path) else {
            failures.push(format!("case {name}: no expected.json (SNAP_BLESS=1 writes it; review it then)"));
            continue;
        };
        let expected: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("case {name}: expected.json is not JSON: {e}"));
        let diffs = diff_reports(&expected, &actual);
        if !diffs.is_empty() {
            failures.push(format!("case {name}: {} differences\n  {}", diffs.len(), diffs.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "snap analyze no longer gives the reviewed output of {} case(s); if the change is intended, \
         rerun with SNAP_BLESS=1 and review the diff of corpus/cases/*/expected.json\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_case_renders_as_text_and_markdown() {
    for case in case_dirs() {
        for format in ["text", "markdown"] {
            let out = analyze(&case, format);
            let name = name(&case);
            assert!(
                out.status.success(),
                "case {name}: analyze --format {format} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("case {name}, {format}: {e}"));
            assert!(!text.trim().is_empty(), "case {name}: analyze --format {format} printed nothing");
        }
    }
}

/// The comparison itself: a changed fact, an unexpected finding and a changed rule
/// status are each reported with the finding and the field they concern, and a new
/// snap version is no difference.
#[test]
fn the_comparison_names_the_finding_and_the_field() {
    let expected = serde_json::json!({
        "snap_version": "0.1.0",
        "bundle": {"hostname": "vm"},
        "findings": [{"rule": "proc.zombies", "subject": "pid 7 (p)", "severity": "warning", "facts": {"zombies": 5}}],
        "rules": {"proc.zombies": "fired", "load.high": "passed"}
    });
    let mut actual = expected.clone();
    actual["snap_version"] = "9.9.9".into();
    assert!(diff_reports(&expected, &actual).is_empty());

    actual["findings"][0]["facts"]["zombies"] = 4.into();
    actual["findings"].as_array_mut().unwrap().push(serde_json::json!({"rule": "load.high", "subject": "host"}));
    actual["rules"]["load.high"] = "fired".into();
    let diffs = diff_reports(&expected, &actual);
    assert_eq!(
        diffs,
        [
            "rules.load.high: expected \"passed\", got \"fired\"",
            "finding proc.zombies pid 7 (p): facts.zombies: expected 5, got 4",
            "finding load.high host: produced, not expected: (absent)",
        ]
    );
}
