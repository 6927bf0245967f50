//! Hostile bundles: garbage, truncated and adversarial content in every entry the
//! parsers read never causes a panic; it gives `failed` (or `not_evaluated`, or an
//! unchanged verdict) for the rules reading that entry only (issue 4).
//!
//! The test collects this VM once into a directory bundle, trims it to a few processes,
//! seeds its kernel log with one line of every kind the kernel-log rules look for (so
//! that mutations reach their parsers, not only the line splitter), and records the
//! verdict of every rule. Then, for every entry a rule declares among its inputs (and
//! the manifest, the kernel logs and the scans), it replaces the entry with a series of
//! mutations: empty, random bytes, truncations, huge, negative, zero, NaN and infinite
//! numbers, dropped fields, a 1 MiB line, invalid UTF-8, NUL bytes, and for JSON lines
//! wrong types and missing keys. Each mutated tree is analyzed in process (fast, and a
//! panic a rule's `catch_unwind` hides still shows as "the rule panicked"); a sample of
//! them also through the binary, which must exit 0 with valid JSON and no panic on
//! stderr (or 2 naming `manifest.json` when the manifest itself is corrupt).
//!
//! The pseudo-random mutations come from a xorshift generator with fixed seeds, so a
//! failure names a reproducible case; its input is also kept on disk for inspection.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use snap_bundle::Bundle;

use common::rng::Rng;

/// Numbers that break naive arithmetic and parsing.
const NASTY_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "99999999999999999999",
    "-99999999999999999999",
    "18446744073709551615",
    "18446744073709551616",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "NaN",
    "inf",
    "-inf",
    "1e308",
    "1e999",
    "0.0000001",
    "00000000000000000000000000000001",
    "",
];

/// Replaces every run of ASCII digits (with an optional fraction) by `with(i)`.
fn replace_numbers(src: &[u8], mut with: impl FnMut(usize) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() * 2);
    let (mut i, mut n) = (0, 0);
    while i < src.len() {
        if src[i].is_ascii_digit() {
            let start = i;
            while i < src.len() && (src[i].is_ascii_digit() || (src[i] == b'.' && i > start)) {
                i += 1;
            }
            out.extend(with(n));
            n += 1;
        } else {
            out.push(src[i]);
            i += 1;
        }
    }
    out
}

/// Every line with only its first half of whitespace-separated fields.
fn drop_fields(src: &[u8], rng: &mut Rng) -> Vec<u8> {
    let text = String::from_utf8_lossy(src);
    let mut out = String::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let keep = if words.is_empty() { 0 } else { rng.below(words.len()) };
        out.push_str(&words[..keep].join(" "));
        out.push('\n');
    }
    out.into_bytes()
}

/// A JSON value of another type than `v`'s, as raw text (may be invalid JSON on
/// purpose: numbers out of every range).
fn wrong_type(v: &Value, rng: &mut Rng) -> String {
    let options: &[&str] = match v {
        Value::Number(_) => &[
            "\"12\"",
            "-1",
            "1.5",
            "99999999999999999999",
            "18446744073709551615",
            "-9223372036854775809",
            "1e999",
            "true",
            "null",
            "[]",
            "{}",
            "0",
        ],
        Value::String(_) => &["0", "-7", "true", "null", "[\"a\"]", "{\"a\":1}", "\"\"", "\"\\u0000\\ud800\""],
        Value::Bool(_) => &["\"true\"", "1", "null", "[]"],
        Value::Null => &["0", "\"x\"", "[]", "{}"],
        Value::Array(_) => &["{}", "\"x\"", "3", "null", "[1,2,3]", "[{\"pid\":\"x\"}]"],
        Value::Object(_) => &["[]", "\"x\"", "3", "null", "{\"x\":{\"y\":[]}}"],
    };
    rng.pick(options).to_string()
}

/// A JSON object with some values replaced by `f(value)` and some keys dropped.
fn rewrite_object(
    map: &serde_json::Map<String, Value>,
    rng: &mut Rng,
    mut f: impl FnMut(&Value, &mut Rng) -> Option<String>,
) -> String {
    let mut parts = Vec::new();
    for (k, v) in map {
        let raw = f(v, rng);
        match raw {
            Some(r) if r.is_empty() => {} // dropped
            Some(r) => parts.push(format!("{}:{r}", Value::String(k.clone()))),
            None => parts.push(format!("{}:{v}", Value::String(k.clone()))),
        }
    }
    format!("{{{}}}", parts.join(","))
}

/// Applies `f` to every top-level object of a JSON document or of JSON lines.
fn rewrite_json(src: &[u8], seed: u64, f: impl Fn(&Value, &mut Rng) -> Option<String> + Copy) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let text = String::from_utf8_lossy(src);
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) {
        return rewrite_object(&map, &mut rng, f).into_bytes();
    }
    let mut out = String::new();
    for line in text.lines() {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => out.push_str(&rewrite_object(&map, &mut rng, f)),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// The mutations of one entry's original bytes: (name, bytes).
fn mutations(orig: &[u8], json: bool, seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    let mut m: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("one newline".into(), b"\n".to_vec()),
        ("random bytes".into(), rng.bytes(4096)),
        ("random printable".into(), {
            let alphabet = b"0123456789 :,./-[]()<>;=abcxyzABC\n\t";
            (0..4096).map(|_| *rng.pick(alphabet)).collect()
        }),
        ("NUL bytes".into(), vec![0; 1000]),
        ("1 MiB line of digits".into(), vec![b'9'; 1 << 20]),
        ("1 MiB line prepended".into(), {
            let mut v = vec![b'A'; 1 << 20];
            v.push(b'\n');
            v.extend_from_slice(orig);
            v
        }),
        ("tripled".into(), [orig, orig, orig].concat()),
        ("without newlines".into(), orig.iter().map(|&b| if b == b'\n' { b' ' } else { b }).collect()),
        ("CRLF".into(), orig.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect()),
        ("fields dropped".into(), drop_fields(orig, &mut rng)),
        ("invalid UTF-8 sprinkled".into(), {
            let mut v = orig.to_vec();
            for _ in 0..(v.len() / 16).max(1) {
                let i = rng.below(v.len().max(1));
                if i < v.len() {
                    v[i] = *rng.pick(&[0xff, 0xfe, 0xc3, 0x80, 0xe2, 0xf0]);
                }
            }
            v
        }),
        ("multi-byte characters".into(), {
            String::from_utf8_lossy(orig).replace(':', "é:").replace(' ', " ü").replace('\n', "ß\n").into_bytes()
        }),
    ];
    // Truncations (always eight, so that entries mutated together stay in step): at
    // fixed fractions, after the first line, a byte short, and at random points.
    let len = orig.len();
    let first_line = orig.iter().position(|&b| b == b'\n').map_or(len / 4, |nl| nl + 1);
    let cuts = [1, first_line, len / 3, len / 2, len * 9 / 10, len.saturating_sub(1), rng.below(len), rng.below(len)];
    for (k, c) in cuts.into_iter().enumerate() {
        m.push((format!("truncation {k} (at {c} of {len} bytes)"), orig[..c.min(len)].to_vec()));
    }
    // Numbers: all replaced by one nasty value, then a random mix.
    for n in NASTY_NUMBERS {
        m.push((format!("numbers -> {n:?}"), replace_numbers(orig, |_| n.as_bytes().to_vec())));
    }
    for s in 0..3 {
        let mut r = Rng::new(seed ^ (s + 17));
        m.push((
            format!("numbers -> random nasty mix (seed {s})"),
            replace_numbers(orig, |_| r.pick(NASTY_NUMBERS).as_bytes().to_vec()),
        ));
    }
    if json {
        m.push(("JSON: not objects".into(), b"[]\n\"x\"\n42\nnull\n{\n".to_vec()));
        for s in 0..4u64 {
            m.push((
                format!("JSON: wrong types (seed {s})"),
                rewrite_json(orig, seed ^ s, |v, r| if r.below(2) == 0 { Some(wrong_type(v, r)) } else { None }),
            ));
        }
        m.push(("JSON: every value wrong type".into(), rewrite_json(orig, seed, |v, r| Some(wrong_type(v, r)))));
        m.push((
            "JSON: keys dropped".into(),
            rewrite_json(orig, seed, |_, r| if r.below(2) == 0 { Some(String::new()) } else { None }),
        ));
        m.push(("JSON: all keys dropped".into(), rewrite_json(orig, seed, |_, _| Some(String::new()))));
        m.push((
            "JSON: numbers zero, strings empty".into(),
            rewrite_json(orig, seed, |v, _| match v {
                Value::Number(_) => Some("0".into()),
                Value::String(_) => Some("\"\"".into()),
                _ => None,
            }),
        ));
        m.push((
            "JSON: numbers max, strings long".into(),
            rewrite_json(orig, seed, |v, _| match v {
                Value::Number(n) if n.is_f64() => Some("1.7976931348623157e308".into()),
                Value::Number(n) if n.is_i64() && n.as_i64() < Some(0) => Some("-9223372036854775808".into()),
                Value::Number(_) => Some("18446744073709551615".into()),
                Value::String(_) => Some(format!("\"{}\"", "x (deleted) ".repeat(6000))),
                _ => None,
            }),
        ));
    }
    m
}

/// Mutations every target gets; the others are sampled per target (all of them with
/// `SNAP_HOSTILE_ALL=1`, which takes several minutes in a debug build).
const CORE_MUTATIONS: &[&str] = &[
    "empty",
    "random bytes",
    "1 MiB line of digits",
    "truncation 1 ",
    "truncation 3 ",
    "multi-byte characters",
    "invalid UTF-8 sprinkled",
    "numbers -> \"0\"",
    "numbers -> \"-1\"",
    "numbers -> \"99999999999999999999\"",
    "numbers -> \"18446744073709551615\"",
    "numbers -> \"NaN\"",
    "JSON: every value wrong type",
    "JSON: numbers max, strings long",
];

/// Indices of the mutations to run for one target.
fn chosen_mutations(all: &[(String, Vec<u8>)], seed: u64) -> BTreeSet<usize> {
    if std::env::var_os("SNAP_HOSTILE_ALL").is_some() {
        return (0..all.len()).collect();
    }
    let mut chosen: BTreeSet<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| CORE_MUTATIONS.iter().any(|c| n.starts_with(c)))
        .map(|(i, _)| i)
        .collect();
    let mut rng = Rng::new(seed ^ 0xc0ffee);
    for _ in 0..3 {
        chosen.insert(rng.below(all.len()));
    }
    chosen
}

/// The rules' declared inputs as entry patterns: `a or b (why)` gives `a` and `b`.
fn patterns(declared: &str) -> Vec<String> {
    declared
        .split(" or ")
        .filter_map(|alt| alt.split_whitespace().next())
        .map(|p| p.trim_end_matches([',', ';']).to_string())
        .collect()
}

/// Whether an entry name matches a pattern: `<x>` and `*` segments match any one
/// segment, a segment ending in `*` matches by prefix.
fn matches(pattern: &str, entry: &str) -> bool {
    let (p, e): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), entry.split('/').collect());
    p.len() == e.len()
        && p.iter().zip(&e).all(|(p, e)| {
            *p == "*"
                || (p.starts_with('<') && p.ends_with('>'))
                || p.strip_suffix('*').map_or(p == e, |prefix| e.starts_with(prefix))
        })
}

/// Rule id to its entry patterns.
fn declared_inputs() -> BTreeMap<String, Vec<String>> {
    snap_analyzers::rules::registry()
        .iter()
        .map(|r| {
            let mut ps: Vec<String> = r.inputs().iter().flat_map(|d| patterns(d)).collect();
            // "kernel/kmsg.txt or another kernel log" stands for every source klog reads.
            if r.inputs().iter().any(|d| d.contains("kernel log")) {
                ps.extend(snap_analyzers::klog::SOURCES.iter().map(|s| s.to_string()));
            }
            (r.id().to_string(), ps)
        })
        .collect()
}

/// Kernel log records of every kind the kernel-log rules recognise, in /dev/kmsg form.
const SEED_KMSG: &str = "\
4,900001,5000000,-;java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
6,900002,5000100,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/snap-test,task_memcg=/snap-test,task=java,pid=4242,uid=0
3,900003,5000200,-;Memory cgroup out of memory: Killed process 4242 (java) total-vm:2097152kB, anon-rss:1048576kB, file-rss:512kB, shmem-rss:0kB, UID:0 pgtables:2048kB oom_score_adj:0
3,900004,5000300,-;Out of memory: Killed process 4243 (python3) total-vm:1000kB, anon-rss:500kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:100kB oom_score_adj:1000
3,900005,6000000,-;INFO: task kworker/0:1:123 blocked for more than 120 seconds.
0,900006,7000000,-;watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [java:4242]
6,900007,8000000,-;java[4242]: segfault at 0 ip 00007f1234567890 sp 00007ffd12345678 error 4 in libc.so.6[7f1234500000+195000] likely on CPU 1 (core 1, socket 0)
4,900008,9000000,-;nf_conntrack: nf_conntrack: table full, dropping packet
3,900009,9100000,-;mce: [Hardware Error]: Machine check events logged
3,900010,9200000,-;EDAC MC0: 1 CE memory read error on CPU_SrcID#0_Ha#0_Chan#0_DIMM#0 (channel:0 slot:0 page:0x12345 offset:0x0 grain:32 syndrome:0x0)
3,900011,9300000,-;blk_update_request: I/O error, dev sda, sector 12345 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0
2,900012,9400000,-;EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0
6,900013,9500000,-;TCP: request_sock_TCP: Possible SYN flooding on port 8080. Sending cookies.  Check SNMP counters.
";

/// The same in `dmesg -T` form.
const SEED_DMESG: &str = "\
[Sat Nov 28 22:01:47 2026] java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
[Sat Nov 28 22:01:47 2026] Out of memory: Killed process 4243 (python3) total-vm:1000kB, anon-rss:500kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:100kB oom_score_adj:1000
[Sat Nov 28 22:01:48 2026] INFO: task kworker/0:1:123 blocked for more than 120 seconds.
[Sat Nov 28 22:01:49 2026] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [java:4242]
[Sat Nov 28 22:01:50 2026] java[4242]: segfault at 0 ip 00007f1234567890 sp 00007ffd12345678 error 4 in libc.so.6[7f1234500000+195000]
[Sat Nov 28 22:01:51 2026] nf_conntrack: nf_conntrack: table full, dropping packet
[Sat Nov 28 22:01:52 2026] mce: [Hardware Error]: Machine check events logged
[Sat Nov 28 22:01:53 2026] blk_update_request: I/O error, dev sda, sector 12345 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0
[Sat Nov 28 22:01:54 2026] TCP: request_sock_TCP: Possible SYN flooding on port 8080. Sending cookies.  Check SNMP counters.
";

fn snap() -> Command {
    Command::new(env!("CARGO_BIN_EXE_snap"))
}

/// Collects this VM and writes the bundle out as a directory, trimmed to a few
/// processes so that each analysis is quick, with the kernel-log seeds appended.
fn base_bundle(root: &Path) -> PathBuf {
    let out = snap()
        .args(["collect", "--window", "2", "--interval", "1", "--no-capture", "--quiet", "-o"])
        .arg(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "collect failed: {}", String::from_utf8_lossy(&out.stderr));
    let archive = PathBuf::from(String::from_utf8(out.stdout).unwrap().lines().last().unwrap());
    let bundle = Bundle::open(&archive).unwrap();
    let names = bundle.entries().unwrap();
    let pid_of = |e: &str| -> Option<u32> {
        let rest = e.strip_prefix("proc/").or_else(|| e.strip_prefix("samples/")?.split_once("/proc/").map(|x| x.1))?;
        rest.split('/').next()?.parse().ok()
    };
    let mut pids: Vec<u32> = names.iter().filter_map(|e| pid_of(e)).collect::<BTreeSet<_>>().into_iter().collect();
    // Keep the first processes (init, kernel threads), the collector's parent chain is
    // not needed; and the last two (recent user processes).
    let keep: BTreeSet<u32> = pids.iter().take(6).chain(pids.iter().rev().take(2)).copied().collect();
    pids.retain(|p| keep.contains(p));
    let dir = root.join("bundle");
    let wanted = wanted_patterns(&declared_inputs());
    let mut written = BTreeSet::new();
    for name in &names {
        if pid_of(name).is_some_and(|p| !keep.contains(&p)) || !wanted.iter().any(|p| matches(p, name)) {
            continue;
        }
        let mut data = bundle.read(name).unwrap().unwrap();
        written.insert(name.clone());
        if name == snap_bundle::names::KMSG {
            data.extend_from_slice(SEED_KMSG.as_bytes());
        }
        if name == snap_bundle::names::DMESG {
            data.extend_from_slice(SEED_DMESG.as_bytes());
        }
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let manifest = dir.join(snap_bundle::names::MANIFEST);
    std::fs::write(&manifest, trim_manifest(&std::fs::read(&manifest).unwrap(), |e| written.contains(e))).unwrap();
    std::fs::remove_file(&archive).unwrap();
    dir
}

/// The manifest with its per-entry records limited to the entries kept (a record per
/// entry of the full collection makes every parse of the manifest slow in debug builds).
fn trim_manifest(data: &[u8], kept: impl Fn(&str) -> bool) -> Vec<u8> {
    let mut m: Value = serde_json::from_slice(data).expect("the collected manifest is JSON");
    if let Some(entries) = m.get_mut("entries").and_then(Value::as_array_mut) {
        entries.retain(|r| r.get("path").and_then(Value::as_str).is_none_or(&kept));
    }
    serde_json::to_vec_pretty(&m).unwrap()
}

/// Rule id to status, analyzed in process.
fn statuses(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let bundle = Bundle::open(dir).map_err(|e| e.to_string())?;
    let report = snap_analyzers::analyze(&bundle);
    let json = serde_json::to_value(&report).expect("the report serialises");
    Ok(rules_of(&json))
}

fn rules_of(report: &Value) -> BTreeMap<String, String> {
    report["rules"]
        .as_object()
        .expect("`rules` is an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a rule status is a string").to_string()))
        .collect()
}

/// Kind of a status, for comparisons: `fired`, `passed`, `not_evaluated` or `failed`.
fn kind(status: &str) -> &str {
    status.split(':').next().unwrap_or(status)
}

/// One group of mutations: the entries replaced together, and entries removed first
/// (so that a fallback source is the one read).
struct Target {
    label: String,
    entries: Vec<String>,
    removed: Vec<String>,
}

fn targets(dir: &Path, declared: &BTreeMap<String, Vec<String>>) -> Vec<Target> {
    let all = Bundle::open(dir).unwrap().entries().unwrap();
    let patterns = wanted_patterns(declared);
    let mut singles: BTreeSet<String> = BTreeSet::new();
    let mut per_pid: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &all {
        if !patterns.iter().any(|p| matches(p, e)) {
            continue;
        }
        // Per-process files: the first pid alone, and every pid at once.
        let generic = e
            .split('/')
            .map(|s| if s.bytes().all(|b| b.is_ascii_digit()) { "<n>" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        if generic != *e {
            per_pid.entry(generic).or_default().push(e.clone());
        } else {
            singles.insert(e.clone());
        }
    }
    let mut out: Vec<Target> =
        singles.into_iter().map(|e| Target { label: e.clone(), entries: vec![e], removed: vec![] }).collect();
    for (generic, mut entries) in per_pid {
        entries.sort();
        out.push(Target { label: entries[0].clone(), entries: vec![entries[0].clone()], removed: vec![] });
        out.push(Target { label: format!("{generic} (all {} at once)", entries.len()), entries, removed: vec![] });
    }
    // Fallback sources: the `dmesg -T` text when there is no kmsg.txt; the CPU count
    // from sys and proc/stat when there is no manifest.
    let kmsg = snap_bundle::names::KMSG.to_string();
    out.push(Target {
        label: "kernel/dmesg.txt (no kmsg.txt)".into(),
        entries: vec![snap_bundle::names::DMESG.into()],
        removed: vec![kmsg.clone()],
    });
    out.push(Target {
        label: "var/log/kern.log (no kernel/)".into(),
        entries: vec!["var/log/kern.log".into()],
        removed: vec![kmsg, snap_bundle::names::DMESG.into()],
    });
    for e in ["sys/devices/system/cpu/online", "proc/stat"] {
        out.push(Target {
            label: format!("{e} (no manifest)"),
            entries: vec![e.into()],
            removed: vec!["manifest.json".into()],
        });
    }
    out.retain(|t| t.entries.iter().all(|e| all.contains(e) || e == "var/log/kern.log"));
    out
}

/// The entries the test keeps and mutates: every rule's declared inputs, plus the
/// entries the issue names. Everything else is left out of the test bundle (the
/// analysis of a tree of 2,000 entries is too slow in a debug build for this many runs).
fn wanted_patterns(declared: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut patterns: BTreeSet<String> = declared.values().flatten().cloned().collect();
    for p in [
        "manifest.json",
        "proc/loadavg",
        "proc/meminfo",
        "proc/stat",
        "proc/vmstat",
        "proc/<pid>/stat",
        "proc/<pid>/limits",
        "proc/<pid>/status",
        "proc/<pid>/oom_score",
        "kernel/kmsg.txt",
        "kernel/dmesg.txt",
        "scan/*",
        "samples/<n>/proc/*",
        "samples/<n>/proc/<pid>/stat",
        "sys/devices/system/cpu/online",
    ] {
        patterns.insert(p.into());
    }
    patterns
}

/// Whether a rule reads `entry` by its declaration; every rule may read the manifest.
fn reads(declared: &BTreeMap<String, Vec<String>>, rule: &str, entry: &str) -> bool {
    entry == "manifest.json" || declared.get(rule).is_some_and(|ps| ps.iter().any(|p| matches(p, entry)))
}

#[test]
fn garbage_in_any_entry_fails_only_the_rules_reading_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = base_bundle(root.path());
    let declared = declared_inputs();
    let keep = std::env::temp_dir().join("snap-hostile-failures");
    let _ = std::fs::remove_dir_all(&keep);

    let mut problems: Vec<String> = Vec::new();
    let mut runs = 0usize;
    let mut binary_runs = 0usize;
    for (ti, target) in targets(&dir, &declared).into_iter().enumerate() {
        // The tree for this target: removed entries gone, kern.log made up from the seed.
        let saved: Vec<(String, Option<Vec<u8>>)> = target
            .entries
            .iter()
            .chain(&target.removed)
            .map(|e| (e.clone(), std::fs::read(dir.join(e)).ok()))
            .collect();
        for e in &target.removed {
            std::fs::remove_file(dir.join(e)).unwrap();
        }
        if target.entries == ["var/log/kern.log"] {
            let lines: String =
                SEED_DMESG.lines().map(|l| format!("Nov 28 22:01:47 vm kernel: [ 5.000000]{}\n", &l[26..])).collect();
            std::fs::create_dir_all(dir.join("var/log")).unwrap();
            std::fs::write(dir.join("var/log/kern.log"), lines).unwrap();
        }
        let baseline = statuses(&dir).expect("the unmutated tree opens");
        let is_manifest = target.entries == ["manifest.json"];
        let is_json = target.entries[0].ends_with(".json") || target.entries[0].ends_with(".jsonl");
        let originals: Vec<Vec<u8>> = target.entries.iter().map(|e| std::fs::read(dir.join(e)).unwrap()).collect();
        let seed = 0x5eed_0000 + ti as u64;
        let per_entry: Vec<Vec<(String, Vec<u8>)>> =
            originals.iter().enumerate().map(|(i, o)| mutations(o, is_json, seed + i as u64 * 7919)).collect();
        let chosen = chosen_mutations(&per_entry[0], seed);
        for (mi, (mname, _)) in per_entry[0].iter().enumerate() {
            if !chosen.contains(&mi) {
                continue;
            }
            for (e, muts) in target.entries.iter().zip(&per_entry) {
                std::fs::write(dir.join(e), &muts[mi].1).unwrap();
            }
            runs += 1;
            let case = format!("{} <- {mname}", target.label);
            let keep_case = |why: String, problems: &mut Vec<String>| {
                let d = keep.join(format!("{ti}-{mi}"));
                for (e, muts) in target.entries.iter().zip(&per_entry) {
                    let p = d.join(e);
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    std::fs::write(p, &muts[mi].1).unwrap();
                }
                problems.push(format!("{case}: {why} (input kept in {})", d.display()));
            };
            // In process: every rule's verdict.
            let got = match std::panic::catch_unwind(|| statuses(&dir)) {
                Err(_) => {
                    keep_case("analysis panicked outside the rules".into(), &mut problems);
                    continue;
                }
                Ok(Err(e)) if is_manifest => {
                    if !e.contains("manifest.json") {
                        keep_case(format!("the open error does not name manifest.json: {e}"), &mut problems);
                    }
                    None
                }
                Ok(Err(e)) => {
                    keep_case(format!("the bundle no longer opens: {e}"), &mut problems);
                    continue;
                }
                Ok(Ok(s)) => Some(s),
            };
            if let Some(got) = &got {
                for (rule, status) in got {
                    if status.contains("panicked") {
                        keep_case(format!("{rule}: {status}"), &mut problems);
                    }
                    let before = baseline.get(rule).map(String::as_str).unwrap_or("(absent)");
                    let reader = target.entries.iter().any(|e| reads(&declared, rule, e));
                    if !reader && kind(status) != kind(before) {
                        keep_case(
                            format!(
                                "{rule} went from {before:?} to {status:?} but does not declare {} among its inputs",
                                target.entries[0]
                            ),
                            &mut problems,
                        );
                    }
                }
            }
            // Through the binary: for the manifest always, else for every eighth mutation.
            if is_manifest || mi % 8 == 0 {
                binary_runs += 1;
                let out = snap().args(["analyze", "--format", "json"]).arg(&dir).output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                if stderr.contains("panicked") {
                    keep_case(format!("stderr shows a panic: {stderr}"), &mut problems);
                }
                match out.status.code() {
                    Some(0) => match serde_json::from_slice::<Value>(&out.stdout) {
                        Ok(report) => {
                            if got.as_ref().is_some_and(|g| *g != rules_of(&report)) {
                                keep_case("the binary's verdicts differ from the library's".into(), &mut problems);
                            }
                        }
                        Err(e) => keep_case(format!("stdout is not JSON: {e}"), &mut problems),
                    },
                    Some(2) if is_manifest && got.is_none() => {
                        if !stderr.contains("manifest.json") {
                            keep_case(format!("exit 2 without naming manifest.json: {stderr}"), &mut problems);
                        }
                    }
                    code => keep_case(format!("exit status {code:?}: {stderr}"), &mut problems),
                }
            }
        }
        // Restore the tree.
        let _ = std::fs::remove_file(dir.join("var/log/kern.log"));
        for (e, data) in saved {
            if let Some(d) = data {
                std::fs::write(dir.join(&e), d).unwrap();
            }
        }
    }
    println!("{runs} mutated bundles analyzed, {binary_runs} of them through the binary");
    assert!(runs > 300, "too few cases ran: {runs}");
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// The kernel-log parsers on their own, outside any rule's `catch_unwind`.
#[test]
fn kernel_log_parsers_survive_mutations() {
    for (i, src) in [SEED_KMSG, SEED_DMESG].iter().enumerate() {
        for (name, bytes) in mutations(src.as_bytes(), false, 0xd00d + i as u64) {
            let r = std::panic::catch_unwind(|| {
                snap_bundle::kmsg::parse(&bytes);
                snap_bundle::kmsg::parse_syslog(&bytes);
                snap_bundle::kmsg::parse_kmsg(&bytes);
                snap_analyzers::klog::lines_of(snap_bundle::names::KMSG, &bytes);
                snap_analyzers::klog::lines_of(snap_bundle::names::DMESG, &bytes);
                snap_analyzers::klog::lines_of("var/log/messages", &bytes);
            });
            assert!(r.is_ok(), "seed {i}, {name}: a kernel-log parser panicked");
        }
    }
}

#[test]
fn xorshift_and_matching_behave() {
    let mut a = Rng::new(1);
    let mut b = Rng::new(1);
    assert_eq!((0..10).map(|_| a.next()).collect::<Vec<_>>(), (0..10).map(|_| b.next()).collect::<Vec<_>>());
    assert!(matches("proc/<pid>/stat", "proc/1/stat"));
    assert!(matches("samples/<n>/proc/<pid>/stat", "samples/0/proc/17/stat"));
    assert!(matches("sos_commands/kernel/dmesg*", "sos_commands/kernel/dmesg_-T"));
    assert!(!matches("proc/stat", "proc/1/stat"));
    assert_eq!(patterns("manifest.json or sys/devices/system/cpu/online or proc/stat (CPU count)").len(), 3);
    assert_eq!(replace_numbers(b"a 12.5 b 7", |_| b"X".to_vec()), b"a X b X");
}
