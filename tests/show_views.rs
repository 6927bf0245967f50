//! `snap show`'s command line: the list of views, and clear errors (exit 2, the problem
//! named) for an unknown view, bad options, a bundle without a capture and a damaged
//! capture. The views' output itself is held to tcpdump in tests/analyze_tcp.rs.

use std::path::Path;
use std::process::Command;

fn show(bundle: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_snap")).arg("show").arg(bundle).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn bundle(capture: Option<&[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    std::fs::write(dir.path().join("proc/loadavg"), "0.00 0.00 0.00 1/1 1\n").unwrap();
    if let Some(c) = capture {
        std::fs::create_dir_all(dir.path().join("capture")).unwrap();
        std::fs::write(dir.path().join("capture/window.pcap"), c).unwrap();
    }
    dir
}

/// A nanosecond LINUX_SLL pcap header and one record cut short.
fn damaged_pcap() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&113u32.to_le_bytes());
    v.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0, 0, 0]);
    v
}

#[test]
fn the_list_says_what_each_view_needs() {
    let b = bundle(None);
    let (code, out, _) = show(b.path(), &[]);
    assert_eq!(code, Some(0));
    assert!(out.lines().any(|l| l.contains("tcpdump") && l.contains("needs capture/window.pcap")), "{out}");
    assert!(out.lines().any(|l| l.contains("conversations")), "{out}");
}

#[test]
fn bad_views_options_and_captures_are_named() {
    let b = bundle(None);
    let (code, _, err) = show(b.path(), &["nosuch"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no view named \"nosuch\"") && err.contains("tcpdump"), "{err}");
    let (code, _, err) = show(b.path(), &["tcpdump", "-X"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown option -X"), "{err}");
    let (code, _, err) = show(b.path(), &["tcpdump", "-c"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("-c needs a value"), "{err}");
    let (code, _, err) = show(b.path(), &["tcpdump"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no capture/window.pcap"), "{err}");

    let garbage = bundle(Some(b"this is not a capture at all"));
    for view in ["tcpdump", "conversations"] {
        let (code, _, err) = show(garbage.path(), &[view]);
        assert_eq!(code, Some(2), "{view}: {err}");
        assert!(err.contains("capture/window.pcap") && !err.contains("panicked"), "{view}: {err}");
    }
    let damaged = bundle(Some(&damaged_pcap()));
    for view in ["tcpdump", "conversations"] {
        let (code, _, err) = show(damaged.path(), &[view]);
        assert_eq!(code, Some(2), "{view}: {err}");
        assert!(err.contains("capture/window.pcap") && !err.contains("panicked"), "{view}: {err}");
    }
}
