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

/// A classic Ethernet pcap of `n` TCP segments 10.0.0.1:1234 -> 10.0.0.2:80.
fn tcp_pcap(n: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    // The version is two u16s: 2 then 4.
    v[4..8].copy_from_slice(&[2, 0, 4, 0]);
    for i in 0..n {
        for x in [1_700_000_000 + i, 0, 54, 54] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(&[0; 12]);
        v.extend_from_slice(&[0x08, 0x00]);
        v.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let mut tcp = vec![0x04, 0xd2, 0, 80];
        tcp.extend_from_slice(&i.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
        v.extend_from_slice(&tcp);
    }
    v
}

#[test]
fn output_into_a_reader_that_goes_away_ends_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    // 20,000 packets: far more tcpdump lines than a pipe holds.
    let dir = bundle(Some(&tcp_pcap(20_000)));
    let (code, out, err) = show(dir.path(), &["tcpdump", "-c", "2"]);
    assert_eq!((code, out.lines().count()), (Some(0), 2), "{out}{err}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_snap"))
        .arg("show")
        .arg(dir.path())
        .arg("tcpdump")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The read end is closed here (`| head -c 100`).
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "ended by SIGPIPE as `head` expects: {stderr}");
}
