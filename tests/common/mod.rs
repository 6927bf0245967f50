//! Helpers shared by the `snap analyze` scenario tests: run the binary, collect this
//! host, analyze a bundle as JSON, pick findings. Each test binary uses a subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub mod netns;
pub mod rng;
pub mod tar;

pub fn snap() -> Command {
    Command::new(env!("CARGO_BIN_EXE_snap"))
}

/// `snap show BUNDLE ARGS...`: (exit code, stdout, stderr).
pub fn show(bundle: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = snap().arg("show").arg(bundle).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`show`] that must succeed; its stdout.
pub fn show_ok(bundle: &Path, args: &[&str]) -> String {
    let (code, out, err) = show(bundle, args);
    assert_eq!(code, Some(0), "snap show {args:?}: {err}");
    out
}

/// `snap collect` with the given window and no capture; the bundle's path.
pub fn collect_window(dir: &Path, window: &str) -> PathBuf {
    let out = snap().args(["collect", "--window", window, "--no-capture", "--quiet", "-o"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "collect failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().lines().last().unwrap())
}

/// `snap collect` without a sampling window.
pub fn collect(dir: &Path) -> PathBuf {
    collect_window(dir, "0")
}

pub fn analyze_json(bundle: &Path) -> Value {
    let out = snap().args(["analyze", "--format", "json"]).arg(bundle).output().unwrap();
    assert!(out.status.success(), "analyze failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn findings<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["rule"] == rule).collect()
}
