//! `snap inspect` on archives made by someone else: every hostile or corrupt archive is
//! answered with exit status 2 and a short, clear error naming the offending entry, never
//! a panic, and nothing is written anywhere (neither in the current directory nor beside
//! the archive). Directory bundles are read in place without following links, and a good
//! bundle made by `snap collect` inspects cleanly.
//!
//! The archives are crafted byte by byte with raw tar header fields, since the `tar`
//! crate's safe setters refuse the very names these tests need.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use snap_bundle::Bundle;

use common::snap;
use common::tar::{end, header, push, regular, BLOCK};

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs a command with a generous time limit, so that a hang fails the test instead of
/// stalling the suite.
fn run(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code(),
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
    }
}

/// Every path below `dir` with its type, size and mtime: what "nothing was written" means.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (String, u64, i64)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (String, u64, i64)>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                "dir"
            } else if ft.is_symlink() {
                "link"
            } else if ft.is_fifo() {
                "fifo"
            } else {
                "file"
            };
            out.insert(e.path().strip_prefix(root).unwrap().to_path_buf(), (kind.into(), m.len(), m.mtime()));
            if ft.is_dir() {
                walk(root, &e.path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Runs `snap inspect` (text, then JSON) from an empty directory and checks that it
/// refuses `bundle` with status 2 and an error on stderr holding every one of `expect`,
/// without panicking and without writing anything. Returns the text-format stderr.
fn refused(bundle: &Path, expect: &[&str]) -> String {
    let bundle_dir = bundle.parent().unwrap();
    let mut first = None;
    for format in ["text", "json"] {
        let cwd = tempfile::tempdir().unwrap();
        let before = (listing(cwd.path()), listing(bundle_dir));
        let mut cmd = snap();
        cmd.arg("inspect").arg(bundle).args(["--format", format]).current_dir(cwd.path());
        let out = run(cmd, Duration::from_secs(60));
        let ctx = format!("inspect --format {format} {}: stdout {:?}, stderr {:?}", bundle.display(), out.stdout, {
            let mut s = out.stderr.clone();
            s.truncate(2000);
            s
        });
        assert_eq!(out.code, Some(2), "{ctx}");
        assert!(!out.stderr.contains("panicked"), "{ctx}");
        assert!(out.stdout.is_empty(), "nothing on stdout for a refused bundle: {ctx}");
        assert!(out.stderr.starts_with("snap: "), "{ctx}");
        assert!(out.stderr.len() < 2048, "the error must stay short ({} bytes): {ctx}", out.stderr.len());
        for e in expect {
            assert!(out.stderr.contains(e), "stderr should mention {e:?}: {ctx}");
        }
        assert_eq!((listing(cwd.path()), listing(bundle_dir)), before, "inspect must write nothing: {ctx}");
        first.get_or_insert(out.stderr);
    }
    first.unwrap()
}

fn zst(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 3).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `n` zero bytes as concatenated zstd frames (one valid stream), without ever holding
/// them: a decompression bomb costs the test almost nothing.
fn zero_frames(n: u64) -> Vec<u8> {
    const CHUNK: u64 = 1 << 20;
    let frame = zst(&vec![0u8; CHUNK as usize]);
    let mut out = Vec::with_capacity(frame.len() * (n / CHUNK) as usize + 64);
    for _ in 0..n / CHUNK {
        out.extend_from_slice(&frame);
    }
    out.extend_from_slice(&zst(&vec![0u8; (n % CHUNK) as usize]));
    out
}

/// A bundle made by `snap collect --window 0`, made once for the whole file, in cargo's
/// scratch directory for tests (a TempDir in a static would never be removed: statics
/// are not dropped, and each run would leave a bundle in /tmp).
fn good_bundle() -> &'static Path {
    static GOOD: OnceLock<PathBuf> = OnceLock::new();
    GOOD.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hostile-archives-good-{}", std::process::id()));
        // Leftovers of earlier runs of this file.
        if let Ok(entries) = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("hostile-archives-good-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = snap();
        cmd.args(["collect", "--window", "0", "--quiet", "-o"]).arg(&dir);
        let out = run(cmd, Duration::from_secs(120));
        assert_eq!(out.code, Some(0), "collect failed: {}", out.stderr);
        let path = PathBuf::from(out.stdout.lines().last().expect("bundle path on stdout"));
        assert!(path.starts_with(&dir) && path.is_file(), "{path:?}");
        path
    })
}

#[test]
fn good_bundle_from_collect_inspects_cleanly() {
    let bundle = good_bundle();
    let m = Bundle::open(bundle).unwrap().manifest().cloned().expect("manifest");
    for format in ["text", "json"] {
        let cwd = tempfile::tempdir().unwrap();
        let mut cmd = snap();
        cmd.arg("inspect").arg(bundle).args(["--format", format]).current_dir(cwd.path());
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(listing(cwd.path()).is_empty());
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("inspect --format json is JSON");
            assert_eq!(v["has_manifest"], true);
            assert_eq!(v["manifest"]["format_version"], 1);
            assert_eq!(v["manifest"]["host"]["hostname"], m.host.hostname.as_str());
            assert!(v["entry_count"].as_u64().unwrap() > 100, "{}", v["entry_count"]);
            assert!(v["status_counts"]["ok"].as_u64().unwrap() > 100);
        } else {
            assert!(out.stdout.contains("format      1 (written by snap"), "{}", out.stdout);
            assert!(out.stdout.contains(&m.host.hostname), "{}", out.stdout);
            assert!(out.stdout.contains("processes"), "{}", out.stdout);
        }
    }
}

#[test]
fn name_climbing_out_with_dotdot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Vec::new();
    regular(&mut t, "proc/loadavg", b"0.00 0.00 0.00 1/1 1\n");
    regular(&mut t, "../../etc/evil", b"owned\n");
    end(&mut t);
    let p = write(dir.path(), "dotdot.tar.zst", &zst(&t));
    refused(&p, &["../../etc/evil", "climbs out"]);
}

#[test]
fn absolute_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Vec::new();
    regular(&mut t, "/etc/evil", b"owned\n");
    end(&mut t);
    let p = write(dir.path(), "absolute.tar.zst", &zst(&t));
    refused(&p, &["/etc/evil", "absolute"]);
}

#[test]
fn symlink_entry_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Vec::new();
    push(&mut t, &header(b"proc/meminfo", tar::EntryType::Symlink, 0, b"/etc/shadow"), b"");
    end(&mut t);
    let p = write(dir.path(), "symlink.tar.zst", &zst(&t));
    refused(&p, &["proc/meminfo", "Symlink"]);
}

#[test]
fn hardlink_entry_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Vec::new();
    regular(&mut t, "etc/hostname", b"h\n");
    push(&mut t, &header(b"proc/loadavg", tar::EntryType::Link, 0, b"etc/hostname"), b"");
    end(&mut t);
    let p = write(dir.path(), "hardlink.tar.zst", &zst(&t));
    refused(&p, &["proc/loadavg", "Link"]);
}

#[test]
fn device_and_fifo_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, name) in [(tar::EntryType::Char, "dev-null"), (tar::EntryType::Fifo, "a-fifo")] {
        let mut t = Vec::new();
        push(&mut t, &header(name.as_bytes(), kind, 0, b""), b"");
        end(&mut t);
        let p = write(dir.path(), &format!("{name}.tar.zst"), &zst(&t));
        refused(&p, &[name]);
    }
}

#[test]
fn truncated_zstd_stream_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(good_bundle()).unwrap();
    assert!(good.len() > 10_000);
    let p = write(dir.path(), "half.tar.zst", &good[..good.len() / 2]);
    let err = refused(&p, &["corrupt bundle", "half.tar.zst"]);
    // The error tells how far the archive could be read.
    assert!(err.contains("after entry") || err.contains("while reading"), "{err}");
}

#[test]
fn bundle_cut_at_a_zstd_frame_boundary_is_refused() {
    // snap writes the manifest as its own zstd frame, then the body as another. A cut
    // right after the first frame leaves a valid zstd stream and a tar stream that just
    // stops after manifest.json, without its end-of-archive marker: still truncated.
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(good_bundle()).unwrap();
    let first = zstd::zstd_safe::find_frame_compressed_size(&good).expect("a zstd frame");
    assert!(first < good.len());
    let p = write(dir.path(), "manifest-only.tar.zst", &good[..first]);
    refused(&p, &["manifest-only.tar.zst", "end-of-archive"]);
}

#[test]
fn garbage_that_is_not_zstd_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let junk: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let p = write(dir.path(), "junk.tar.zst", &junk);
    refused(&p, &["junk.tar.zst", "not a snap bundle"]);
    // zstd magic followed by garbage: a corrupt frame, not a panic.
    let mut fake = vec![0x28, 0xb5, 0x2f, 0xfd];
    fake.extend_from_slice(&junk);
    let p = write(dir.path(), "fake-magic.tar.zst", &fake);
    refused(&p, &["fake-magic.tar.zst", "corrupt bundle"]);
    // Valid zstd holding something that is not tar.
    let p = write(dir.path(), "not-tar.tar.zst", &zst(&junk));
    refused(&p, &["not-tar.tar.zst", "corrupt bundle"]);
}

#[test]
fn empty_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "empty.tar.zst", b"");
    refused(&p, &["empty.tar.zst", "not a snap bundle"]);
}

#[test]
fn header_claiming_a_huge_size_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Vec::new();
    regular(&mut t, "proc/loadavg", b"0.00 0.00 0.00 1/1 1\n");
    push(&mut t, &header(b"proc/kcore", tar::EntryType::Regular, 600 << 30, b""), &[0x41; 4096]);
    end(&mut t);
    let p = write(dir.path(), "huge-claim.tar.zst", &zst(&t));
    refused(&p, &["proc/kcore", "644245094400 bytes", "limit"]);
}

#[test]
fn real_entry_over_the_per_entry_limit_is_refused() {
    // An honest header and real data one byte over the limit, as a bomb of zero frames.
    let limit = snap_bundle::Limits::default().max_entry_bytes;
    let size = limit + 1;
    let mut t = Vec::new();
    t.extend_from_slice(header(b"proc/slabinfo", tar::EntryType::Regular, size, b"").as_bytes());
    let mut bytes = zst(&t);
    let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64 + 2 * BLOCK as u64;
    bytes.extend_from_slice(&zero_frames(padded));
    assert!(bytes.len() < 1 << 20, "the crafted bomb stays small: {}", bytes.len());
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "over-limit.tar.zst", &bytes);
    refused(&p, &["proc/slabinfo", &format!("{size} bytes"), &format!("{limit}-byte limit")]);
}

#[test]
fn header_with_a_wrong_checksum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Vec::new();
    regular(&mut t, "proc/loadavg", b"0.00 0.00 0.00 1/1 1\n");
    let mut bad = header(b"proc/stat", tar::EntryType::Regular, 4, b"");
    bad.as_gnu_mut().unwrap().cksum = *b"0000001\0";
    push(&mut t, &bad, b"cpu\n");
    end(&mut t);
    let p = write(dir.path(), "cksum.tar.zst", &zst(&t));
    // The bad header's own fields cannot be trusted; the error says where it is.
    refused(&p, &["checksum", "after entry proc/loadavg"]);
}

#[test]
fn gnu_long_name_with_dotdot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("proc/{}/../../../../etc/evil", "a".repeat(120));
    let mut t = Vec::new();
    let mut data = long.clone().into_bytes();
    data.push(0);
    push(&mut t, &header(b"././@LongLink", tar::EntryType::GNULongName, data.len() as u64, b""), &data);
    push(&mut t, &header(&long.as_bytes()[..100], tar::EntryType::Regular, 6, b""), b"owned\n");
    end(&mut t);
    let p = write(dir.path(), "longname.tar.zst", &zst(&t));
    refused(&p, &[&long, "climbs out"]);

    // A 100 KiB long name is named in the error, but not echoed whole.
    let long = format!("{}/../../etc/evil", "b".repeat(100 << 10));
    let mut t = Vec::new();
    push(&mut t, &header(b"././@LongLink", tar::EntryType::GNULongName, long.len() as u64, b""), long.as_bytes());
    push(&mut t, &header(b"bbbb", tar::EntryType::Regular, 6, b""), b"owned\n");
    end(&mut t);
    let p = write(dir.path(), "very-long-name.tar.zst", &zst(&t));
    refused(&p, &["bbbbbbbbbbbbbbbbbbbb", &format!("({} bytes)", long.len()), "climbs out"]);
}

#[test]
fn pax_path_with_dotdot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let record = |k: &str, v: &str| {
        // "<len> <key>=<value>\n" where len counts the whole record, its own digits too.
        let body = format!(" {k}={v}\n");
        let mut n = body.len() + 1;
        while format!("{n}{body}").len() != n {
            n += 1;
        }
        format!("{n}{body}")
    };
    let pax = record("path", "../../../etc/evil");
    let mut t = Vec::new();
    push(&mut t, &header(b"PaxHeaders/x", tar::EntryType::XHeader, pax.len() as u64, b""), pax.as_bytes());
    push(&mut t, &header(b"innocent", tar::EntryType::Regular, 6, b""), b"owned\n");
    end(&mut t);
    let p = write(dir.path(), "pax.tar.zst", &zst(&t));
    refused(&p, &["../../../etc/evil", "climbs out"]);
}

#[test]
fn huge_gnu_long_name_is_refused_without_reading_it_into_memory() {
    // A long-name record is read whole by the tar layer before any per-entry limit
    // applies: 64 MiB of zeros here (a few KiB compressed) would otherwise be held in
    // memory and then echoed back as the "name" in the error.
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 64 << 20;
    let mut t = Vec::new();
    t.extend_from_slice(header(b"././@LongLink", tar::EntryType::GNULongName, size, b"").as_bytes());
    let mut bytes = zst(&t);
    bytes.extend_from_slice(&zero_frames(size));
    let mut rest = Vec::new();
    regular(&mut rest, "proc/loadavg", b"0.00 0.00 0.00 1/1 1\n");
    end(&mut rest);
    bytes.extend_from_slice(&zst(&rest));
    let p = write(dir.path(), "long-bomb.tar.zst", &bytes);
    refused(&p, &["long-bomb.tar.zst", "GNU long names", "before any file entry"]);
}

#[test]
fn directory_entries_with_a_huge_size_are_not_skipped_through() {
    // Data of a directory entry is skipped, not stored, so no per-entry limit applies:
    // the reader must still not decompress gigabytes to get past it.
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 64 << 20;
    let mut t = Vec::new();
    t.extend_from_slice(header(b"proc/", tar::EntryType::Directory, size, b"").as_bytes());
    let mut bytes = zst(&t);
    bytes.extend_from_slice(&zero_frames(size));
    let mut rest = Vec::new();
    regular(&mut rest, "proc/loadavg", b"0.00 0.00 0.00 1/1 1\n");
    end(&mut rest);
    bytes.extend_from_slice(&zst(&rest));
    let p = write(dir.path(), "dir-bomb.tar.zst", &bytes);
    refused(&p, &["dir-bomb.tar.zst", "tar metadata", "after entry proc"]);
}

#[test]
fn manifest_that_is_not_json_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Vec::new();
    regular(&mut t, "manifest.json", b"{ \"format_version\": 1, this is not json");
    regular(&mut t, "proc/loadavg", b"0.00 0.00 0.00 1/1 1\n");
    end(&mut t);
    let p = write(dir.path(), "badjson.tar.zst", &zst(&t));
    refused(&p, &["manifest.json", "not valid"]);

    // The same in a directory bundle.
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("manifest.json"), "[1, 2,").unwrap();
    let bundle = tree.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::rename(tree.path().join("manifest.json"), bundle.join("manifest.json")).unwrap();
    refused(&bundle, &["manifest.json", "not valid"]);
}

#[test]
fn duplicate_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Vec::new();
    regular(&mut t, "proc/loadavg", b"1.00 1.00 1.00 1/1 1\n");
    regular(&mut t, "./proc//loadavg", b"99.0 99.0 99.0 1/1 1\n");
    end(&mut t);
    let p = write(dir.path(), "dup.tar.zst", &zst(&t));
    refused(&p, &["proc/loadavg", "duplicate"]);
}

#[test]
fn manifest_with_hostile_values_is_shown_without_panic_or_terminal_escapes() {
    // A well-formed manifest whose strings carry terminal escape sequences and whose
    // numbers are at their extremes: inspect shows it, escaped, and does not overflow.
    let manifest = serde_json::json!({
        "format_version": 1,
        "snap_version": "0.1.0\u{1b}]0;pwned\u{7}",
        "host": {
            "hostname": "evil\u{1b}[2J\u{1b}[31mhost",
            "kernel_release": "6.1\r\u{1b}[K",
            "boot_time": u64::MAX,
            "page_size": u64::MAX,
            "online_cpus": u32::MAX,
        },
        "clocks": {"realtime_ns": u64::MAX, "monotonic_ns": u64::MAX, "boottime_ns": u64::MAX},
        "collectors": [{"name": "x\u{1b}[1m", "status": "failed", "message": "boom\u{1b}[8m", "bytes": u64::MAX}],
        "entries": [{"path": "proc/\u{1b}[2Jx", "status": "denied", "message": "m\u{9b}31m", "bytes": u64::MAX}],
        "cost": {"peak_rss_kb": u64::MAX, "wall_ms": u64::MAX, "bytes_read": u64::MAX, "user_cpu_ms": u64::MAX},
        "kernel_log_source": "\u{1b}[31m/dev/kmsg",
    });
    let mut t = Vec::new();
    regular(&mut t, "manifest.json", manifest.to_string().as_bytes());
    end(&mut t);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "hostile-manifest.tar.zst", &zst(&t));
    for format in ["text", "json"] {
        let cwd = tempfile::tempdir().unwrap();
        let mut cmd = snap();
        cmd.arg("inspect").arg(&p).args(["--format", format]).current_dir(cwd.path());
        if format == "text" {
            cmd.arg("--all");
        }
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.code, Some(0), "{format}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{format}: {}", out.stderr);
        // JSON escapes C0 controls; C1 ones (U+009B, a one-character CSI) it may keep as
        // valid UTF-8 text, so only the text format is held to those.
        let controls: &[char] =
            if format == "text" { &['\u{1b}', '\u{7}', '\u{9b}', '\r'] } else { &['\u{1b}', '\u{7}', '\r'] };
        for &c in controls {
            assert!(!out.stdout.contains(c), "{format}: raw control {c:?} reaches the terminal: {:?}", out.stdout);
        }
        assert!(out.stdout.contains("evil"), "{format}: {}", out.stdout);
        assert!(out.stdout.contains("proc/"), "{format}: the hostile entry is still listed: {}", out.stdout);
        assert!(listing(cwd.path()).is_empty());
    }
}

#[test]
fn manifest_with_an_absurd_utc_offset_does_not_panic() {
    let manifest = serde_json::json!({
        "format_version": 1,
        "host": {"utc_offset_seconds": i64::MAX},
        "clocks": {"realtime_ns": 1_795_903_800_000_000_000u64},
    });
    let mut t = Vec::new();
    regular(&mut t, "manifest.json", manifest.to_string().as_bytes());
    end(&mut t);
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "offset.tar.zst", &zst(&t));
    let mut cmd = snap();
    cmd.arg("inspect").arg(&p);
    let out = run(cmd, Duration::from_secs(60));
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn directory_bundle_with_links_out_is_read_in_place_without_following_them() {
    let outside = tempfile::tempdir().unwrap();
    // A valid manifest outside the bundle, reachable only through a link.
    std::fs::write(
        outside.path().join("manifest.json"),
        serde_json::json!({"format_version": 1, "host": {"hostname": "outside-secret"}}).to_string(),
    )
    .unwrap();
    std::fs::create_dir(outside.path().join("proc")).unwrap();
    std::fs::write(outside.path().join("proc/meminfo"), "MemTotal: 1 kB\n").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("bundle");
    std::fs::create_dir_all(b.join("proc")).unwrap();
    std::fs::create_dir_all(b.join("etc")).unwrap();
    std::fs::write(b.join("proc/loadavg"), "0.00 0.00 0.00 1/1 1\n").unwrap();
    std::os::unix::fs::symlink("/", b.join("root")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", b.join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("manifest.json"), b.join("manifest.json")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("proc"), b.join("sys")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("proc/meminfo"), b.join("proc/meminfo")).unwrap();

    for format in ["text", "json"] {
        let cwd = tempfile::tempdir().unwrap();
        let before = (listing(cwd.path()), listing(dir.path()), listing(outside.path()));
        let mut cmd = snap();
        cmd.arg("inspect").arg(&b).args(["--format", format]).current_dir(cwd.path());
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.code, Some(0), "{format}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(!out.stdout.contains("outside-secret"), "the linked manifest was followed: {}", out.stdout);
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
            assert_eq!(v["has_manifest"], false, "{v}");
            assert_eq!(v["entry_count"], 1, "only proc/loadavg is a regular file in the bundle: {v}");
        } else {
            assert!(out.stdout.contains("manifest    none"), "{}", out.stdout);
            assert!(out.stdout.contains("entries     1\n"), "{}", out.stdout);
        }
        assert_eq!((listing(cwd.path()), listing(dir.path()), listing(outside.path())), before);
    }

    // The library agrees: the links read as absent.
    let bundle = Bundle::open(&b).unwrap();
    assert!(bundle.manifest().is_none());
    assert_eq!(bundle.entries().unwrap(), vec!["proc/loadavg"]);
    assert!(bundle.read("etc/passwd").unwrap().is_none());
    assert!(bundle.read("root/etc/passwd").unwrap().is_none());
    assert!(bundle.read("proc/meminfo").unwrap().is_none());
    assert!(bundle.read("sys/meminfo").unwrap().is_none());
    assert!(bundle.read("proc/loadavg").unwrap().is_some());
}

#[test]
fn bundle_that_is_itself_a_directory_link_to_root_is_not_walked_through_links() {
    // The user may name a link to a directory; inside it, links are still not followed.
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink("/", real.join("everything")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", real.join("manifest.json")).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut cmd = snap();
    cmd.arg("inspect").arg(&link).args(["--format", "json"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["has_manifest"], false);
    assert_eq!(v["entry_count"], 0);
}

#[test]
fn bundle_repacked_by_gnu_tar_from_its_directory_still_opens() {
    // Not hostile, the control case: `tar --zstd -cf b.tar.zst -C tree .` begins with a
    // `./` directory entry (GNU format) or PAX records (pax format); both must open.
    let tree = tempfile::tempdir().unwrap();
    let st = Command::new("tar").arg("--zstd").arg("-xf").arg(good_bundle()).arg("-C").arg(tree.path()).status();
    assert!(st.unwrap().success(), "tar --zstd -xf of a snap bundle");
    let dir = tempfile::tempdir().unwrap();
    let expected = Bundle::open(good_bundle()).unwrap().entries().unwrap();
    for format in ["gnu", "pax"] {
        let p = dir.path().join(format!("{format}.tar.zst"));
        let st = Command::new("tar")
            .args(["--zstd", &format!("--format={format}"), "-cf"])
            .arg(&p)
            .arg("-C")
            .arg(tree.path())
            .arg(".")
            .status();
        assert!(st.unwrap().success(), "tar --zstd -cf");
        let b = Bundle::open(&p).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert!(b.manifest().is_some(), "{format}");
        assert_eq!(b.entries().unwrap(), expected, "{format}");
        let mut cmd = snap();
        cmd.arg("inspect").arg(&p).args(["--format", "json"]);
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.code, Some(0), "{format}: {}", out.stderr);
    }
}
