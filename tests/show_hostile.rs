//! Every `snap show` view on damaged bundles: a collected bundle whose entries are
//! emptied, cut, filled with garbage, given numbers that break arithmetic, or thinned
//! of lines. A view prints what it can or refuses with exit 2 naming the problem; it
//! never panics. Deterministic: the damage comes from a seeded generator, and a failure
//! names the round, the entries and the damage done.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::rng::Rng;
use common::{collect_window, snap};

const NASTY: &[&str] = &["0", "-1", "18446744073709551616", "4294967296", "-9223372036854775808", "NaN", "1e999", ""];

/// Views and the options each is run with.
const RUNS: &[&[&str]] = &[
    &["uptime"],
    &["uptime", "-p"],
    &["free", "-h", "-w"],
    &["vmstat", "-w"],
    &["df", "-h", "-T"],
    &["df", "-i"],
    &["mount"],
    &["sysctl", "-a"],
    &["dmesg", "-T"],
    &["dmesg", "-l", "err,warn"],
    &["ps", "aux"],
    &["ps", "-eLf"],
    &["lsof"],
    &["lsof", "+L1"],
    &["netstat", "-napo"],
    &["netstat", "-s"],
    &["ss", "-tanp"],
    &["top", "-1"],
];

fn damage(rng: &mut Rng, orig: &[u8]) -> (String, Vec<u8>) {
    match rng.below(6) {
        0 => ("emptied".into(), Vec::new()),
        1 => {
            let cut = rng.below(orig.len().max(1));
            (format!("cut at {cut}"), orig[..cut.min(orig.len())].to_vec())
        }
        2 => {
            let n = 1 + rng.below(300);
            (format!("{n} random bytes"), (0..n).map(|_| rng.next() as u8).collect())
        }
        3 => {
            let nasty = NASTY[rng.below(NASTY.len())];
            let mut out = Vec::new();
            let mut i = 0;
            while i < orig.len() {
                if orig[i].is_ascii_digit() {
                    while i < orig.len() && orig[i].is_ascii_digit() {
                        i += 1;
                    }
                    out.extend_from_slice(nasty.as_bytes());
                } else {
                    out.push(orig[i]);
                    i += 1;
                }
            }
            (format!("numbers replaced by {nasty:?}"), out)
        }
        4 => {
            let keep = 2 + rng.below(3);
            let lines: Vec<&[u8]> = orig.split(|&b| b == b'\n').collect();
            let kept: Vec<&[u8]> = lines.iter().enumerate().filter(|(i, _)| i % keep != 1).map(|(_, l)| *l).collect();
            (format!("every {keep}th line dropped"), kept.join(&b'\n'))
        }
        _ => {
            let lines: Vec<&[u8]> = orig.split(|&b| b == b'\n').collect();
            let mut out = Vec::new();
            for l in &lines {
                out.extend_from_slice(l);
                out.push(b'\n');
                out.extend_from_slice(l);
                out.push(b'\n');
            }
            ("every line doubled".into(), out)
        }
    }
}

/// The entries the views read: host-wide proc files, a few processes' files, the
/// samples' copies, the scans, the kernel log and the manifest.
fn targets(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut walk = vec![root.to_path_buf()];
    while let Some(d) = walk.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                // Three processes and the first sample are enough; proc/sys is large.
                let pid_dir = rel.strip_prefix("proc/").is_some_and(|r| r.parse::<u32>().is_ok());
                let skip = rel == "proc/sys/net"
                    || (pid_dir && !["proc/1", "proc/2"].contains(&rel.as_str()))
                    || (rel.starts_with("samples/")
                        && rel.matches('/').count() == 1
                        && rel != "samples/0"
                        && rel != "samples/1");
                if !skip {
                    walk.push(p);
                }
            } else if ft.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_view_survives_damaged_entries() {
    let dir = tempfile::tempdir().unwrap();
    let archive = collect_window(dir.path(), "2");
    let root = dir.path().join("bundle");
    std::fs::create_dir(&root).unwrap();
    let st = Command::new("tar").arg("--zstd").arg("-xf").arg(&archive).arg("-C").arg(&root).status().unwrap();
    assert!(st.success());
    let targets = targets(&root);
    assert!(targets.len() > 50, "{} entries to damage", targets.len());

    // The undamaged bundle: every view works.
    for args in RUNS {
        let out = snap().arg("show").arg(&root).args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    // More rounds or another seed for a longer hunt: SNAP_SHOW_HOSTILE=ROUNDS[:SEED].
    let hunt = std::env::var("SNAP_SHOW_HOSTILE").unwrap_or_default();
    let mut hunt = hunt.split(':').map(|v| v.parse::<u64>().ok());
    let rounds = hunt.next().flatten().unwrap_or(12);
    let mut rng = Rng(hunt.next().flatten().unwrap_or(0x5eed_0f5e_0000_0001) | 1);
    for round in 0..rounds {
        // Damage six entries, run every view, put them back.
        let mut done = Vec::new();
        for _ in 0..6 {
            let p = &targets[rng.below(targets.len())];
            let orig = std::fs::read(p).unwrap();
            let (what, bytes) = damage(&mut rng, &orig);
            std::fs::write(p, bytes).unwrap();
            done.push((p.strip_prefix(&root).unwrap().display().to_string(), what, orig));
        }
        let case: Vec<String> = done.iter().map(|(e, w, _)| format!("{e}: {w}")).collect();
        for args in RUNS {
            let out = snap().arg("show").arg(&root).args(*args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("panicked"), "round {round} {args:?} with {case:?}: {err}");
            let code = out.status.code();
            assert!(matches!(code, Some(0) | Some(2)), "round {round} {args:?} exit {code:?} with {case:?}: {err}");
            if code == Some(2) {
                assert!(err.starts_with("snap: ") && err.len() < 2048, "round {round} {args:?}: {err}");
            }
        }
        for (entry, _, orig) in done.into_iter().rev() {
            std::fs::write(root.join(entry), orig).unwrap();
        }
    }
}
