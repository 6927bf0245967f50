//! Oracle: snap's open-file scan against `lsof` for a process the test controls (this
//! test process), including a deleted file it holds open. Needs root and lsof.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;

use snap_bundle::scan::{parse_jsonl, OpenFile};
use snap_bundle::{names, Bundle};

/// One lsof record, from `-F` output.
#[derive(Debug, Default, Clone)]
struct Lsof {
    fd: String,
    kind: String,
    device: Option<String>,
    size: Option<u64>,
    inode: Option<u64>,
    nlink: Option<u64>,
    name: String,
}

fn lsof(args: &[&str]) -> Vec<Lsof> {
    let out = Command::new("lsof").args(args).output().expect("lsof is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut recs = Vec::new();
    let mut cur: Option<Lsof> = None;
    for line in text.lines() {
        let (tag, v) = line.split_at(1);
        match tag {
            "f" => {
                recs.extend(cur.take());
                cur = Some(Lsof { fd: v.to_string(), ..Default::default() });
            }
            "t" => cur.as_mut().unwrap().kind = v.to_string(),
            "D" => cur.as_mut().unwrap().device = Some(lsof_device(v)),
            "s" => cur.as_mut().unwrap().size = v.parse().ok(),
            "i" => cur.as_mut().unwrap().inode = v.parse().ok(),
            "k" => cur.as_mut().unwrap().nlink = v.parse().ok(),
            "n" => cur.as_mut().unwrap().name = v.to_string(),
            _ => {}
        }
    }
    recs.extend(cur);
    recs
}

/// lsof -F prints the device as hex dev_t (`0xfe00`); snap keeps `major,minor`.
fn lsof_device(hex: &str) -> String {
    let d = u64::from_str_radix(hex.trim_start_matches("0x"), 16).unwrap();
    let major = ((d >> 8) & 0xfff) | ((d >> 32) & !0xfff);
    let minor = (d & 0xff) | ((d >> 12) & !0xff);
    format!("{major},{minor}")
}

fn collect(dir: &Path) -> Vec<OpenFile> {
    let out = Command::new(env!("CARGO_BIN_EXE_snap"))
        .args(["collect", "--window", "0", "--quiet", "-o"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "snap collect failed: {}", String::from_utf8_lossy(&out.stderr));
    let path = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_string();
    let bundle = Bundle::open(Path::new(&path)).unwrap();
    let data = bundle.read(names::OPEN_FILES).unwrap().expect("open_files scan present");
    let me = std::process::id();
    parse_jsonl::<OpenFile>(&data).unwrap().into_iter().filter(|f| f.pid == me).collect()
}

#[test]
fn open_files_agree_with_lsof_including_a_deleted_file() {
    let work = tempfile::tempdir().unwrap();
    // A regular file, a deleted file still held open, /dev/null, a pipe and a socket.
    let kept_path = work.path().join("kept.log");
    let mut kept = std::fs::File::create(&kept_path).unwrap();
    kept.write_all(&[b'k'; 1000]).unwrap();
    let deleted_path = work.path().join("deleted.log");
    let mut deleted = std::fs::File::create(&deleted_path).unwrap();
    deleted.write_all(&[b'd'; 12345]).unwrap();
    deleted.flush().unwrap();
    std::fs::remove_file(&deleted_path).unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    let (pipe_r, pipe_w) = std::io::pipe().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mine: Vec<String> = [
        kept.as_raw_fd(),
        deleted.as_raw_fd(),
        null.as_raw_fd(),
        pipe_r.as_raw_fd(),
        pipe_w.as_raw_fd(),
        listener.as_raw_fd(),
    ]
    .iter()
    .map(|fd| fd.to_string())
    .collect();

    let out = tempfile::tempdir().unwrap();
    let snap = collect(out.path());
    let pid = std::process::id().to_string();
    let theirs = lsof(&["-nP", "-a", "-p", &pid, "-F", "ftDsikn"]);
    assert!(!theirs.is_empty(), "lsof printed nothing for pid {pid}");

    let by_fd: BTreeMap<&str, &OpenFile> =
        snap.iter().filter(|f| f.fd != "mem" && f.fd != "DEL").map(|f| (f.fd.as_str(), f)).collect();
    let mut compared = 0;
    for l in &theirs {
        let fixed = ["cwd", "rtd", "txt"].contains(&l.fd.as_str());
        let fd_num: String = l.fd.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !(fixed || mine.contains(&fd_num)) {
            continue; // pipes Command made for this very run differ between snap and lsof
        }
        let key = if fixed { l.fd.as_str() } else { fd_num.as_str() };
        let s = by_fd.get(key).unwrap_or_else(|| panic!("snap has no fd {key}; lsof has {l:?}"));
        assert_eq!(s.kind, l.kind, "type of fd {key}");
        // lsof prints no inode for IP sockets (its NODE column says TCP or UDP).
        if l.inode.is_some() || !matches!(l.kind.as_str(), "IPv4" | "IPv6") {
            assert_eq!(Some(s.inode), l.inode, "inode of fd {key}");
        }
        // For character and block devices lsof's table shows the device number itself
        // (rdev, e.g. 1,3 for /dev/null), as snap does, but `-F D` gives st_dev.
        if let (Some(d), false) = (&l.device, matches!(l.kind.as_str(), "CHR" | "BLK")) {
            assert_eq!(&s.device, d, "device of fd {key}");
        }
        if let Some(k) = l.nlink {
            assert_eq!(s.nlink, k, "link count of fd {key}");
        }
        if let (Some(size), "REG" | "DIR") = (l.size, l.kind.as_str()) {
            assert_eq!(s.size, Some(size), "size of fd {key}");
        }
        if matches!(l.kind.as_str(), "REG" | "DIR" | "CHR") {
            assert_eq!(s.target, l.name, "name of fd {key}");
        }
        compared += 1;
    }
    assert_eq!(compared, 3 + mine.len(), "every fd the test opened, plus cwd, rtd and txt, was compared");

    // The deleted file: same size, link count 0, marked deleted.
    let d = &by_fd[deleted.as_raw_fd().to_string().as_str()];
    assert!(d.deleted && d.nlink == 0 && d.size == Some(12345), "{d:?}");
    assert_eq!(d.name, deleted_path.display().to_string());
    assert_eq!(by_fd[listener.as_raw_fd().to_string().as_str()].kind, "IPv4");

    // Memory-mapped files: the same set of inodes.
    let lsof_mem: Vec<u64> = theirs.iter().filter(|l| l.fd == "mem" || l.fd == "DEL").filter_map(|l| l.inode).collect();
    let mut snap_mem: Vec<u64> = snap.iter().filter(|f| f.fd == "mem" || f.fd == "DEL").map(|f| f.inode).collect();
    let mut lsof_mem_sorted = lsof_mem.clone();
    lsof_mem_sorted.sort();
    snap_mem.sort();
    assert!(!snap_mem.is_empty(), "the test binary maps libraries");
    assert_eq!(snap_mem, lsof_mem_sorted, "mapped files");

    // `lsof +L1`: files with a link count below 1 are the same.
    let l1: Vec<String> = lsof(&["-nP", "-a", "+L1", "-p", &pid, "-F", "fn"])
        .into_iter()
        .filter(|l| mine.contains(&l.fd) || !l.fd.chars().all(|c| c.is_ascii_digit()))
        .map(|l| l.fd)
        .collect();
    let s1: Vec<String> = snap
        .iter()
        .filter(|f| f.nlink < 1 && (mine.contains(&f.fd) || !f.fd.chars().all(|c| c.is_ascii_digit())))
        .map(|f| f.fd.clone())
        .collect();
    assert_eq!(s1, l1, "lsof +L1");
    assert!(s1.contains(&deleted.as_raw_fd().to_string()));
    drop((kept, null, pipe_r, pipe_w, listener));
}
