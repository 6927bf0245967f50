//! Scenario test: a nearly full filesystem gets `du -s` figures one and two levels
//! down, equal to what `du -s -B1 -x` reports, without counting a filesystem mounted
//! inside it.
//!
//! The test fills a small tmpfs to over 90 % with files in known directories, mounts a
//! second tmpfs inside it, runs `snap collect` and compares the `scan/disk_usage.jsonl`
//! records of that mount with `du`. Needs root (mount); skipped otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use snap_bundle::scan::{parse_jsonl, DiskUsage, Filesystem};
use snap_bundle::{names, Bundle};

fn is_root() -> bool {
    // SAFETY: geteuid has no failure mode.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs made by the test, unmounted on drop (also when an assertion fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "snap-du-test"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount tmpfs at {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn write_file(path: &Path, bytes: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(path).unwrap().write_all(&vec![1u8; bytes]).unwrap();
}

/// What `du -s -B1 -x` says of one path.
fn du(path: &str) -> u64 {
    let out = Command::new("du").args(["-s", "-B1", "-x", path]).output().expect("run du");
    assert!(out.status.success(), "du {path}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("du output {text:?}"))
}

#[test]
fn a_nearly_full_tmpfs_is_broken_down_as_du_would() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let full = Tmpfs::new(&tmp.path().join("full"), "8M");
    let root = full.0.to_str().unwrap().to_string();
    write_file(&full.0.join("a/big"), 5 << 20);
    write_file(&full.0.join("a/small"), 100 << 10);
    write_file(&full.0.join("b/c/f"), 1536 << 10);
    write_file(&full.0.join("b/pad"), 900 << 10);
    write_file(&full.0.join("top"), 20 << 10);
    std::fs::hard_link(full.0.join("b/pad"), full.0.join("b/c/pad-link")).unwrap();
    std::os::unix::fs::symlink("/usr", full.0.join("b/usr-link")).unwrap();
    let nested = Tmpfs::new(&full.0.join("a/nested"), "2M");
    write_file(&nested.0.join("not-counted"), 1 << 20);

    let out = Command::new(env!("CARGO_BIN_EXE_snap"))
        .args(["collect", "--window", "0", "--quiet", "-o"])
        .arg(&out_dir)
        .output()
        .expect("run snap");
    assert!(out.status.success(), "snap collect failed: {}", String::from_utf8_lossy(&out.stderr));
    let bundle = Bundle::open(Path::new(String::from_utf8(out.stdout).unwrap().trim())).expect("open bundle");

    let fs: Vec<Filesystem> = parse_jsonl(&bundle.read(names::FILESYSTEMS).unwrap().unwrap()).unwrap();
    let me = fs.iter().find(|f| f.target == root && f.df_listed).expect("the full tmpfs is listed");
    assert!(me.use_percent >= Some(90), "{me:?}");

    let all: Vec<DiskUsage> = parse_jsonl(&bundle.read(names::DISK_USAGE).unwrap().expect("disk usage entry")).unwrap();
    let recs: Vec<&DiskUsage> = all.iter().filter(|u| u.mount == root).collect();
    let get = |rel: &str| {
        let p = format!("{root}/{rel}");
        *recs.iter().find(|u| u.path == p).unwrap_or_else(|| panic!("no record for {p} in {recs:#?}"))
    };

    // Directories one and two levels down, and files of at least 1 MiB, as du sees them.
    for (rel, depth) in [("a", 1), ("b", 1), ("a/big", 2), ("b/c", 2)] {
        let u = get(rel);
        assert_eq!(u.bytes, du(&format!("{root}/{rel}")), "{rel}");
        assert_eq!((u.depth, u.partial), (depth, false), "{rel}");
    }
    assert_eq!(get("a").bytes, (5 << 20) + (100 << 10), "the nested mount is not counted");
    assert_eq!(get("a").files, 2);
    assert_eq!(get("b").bytes, (1536 << 10) + (900 << 10), "the hard link is counted once");
    assert_eq!(get("b").files, 3, "f, pad (once) and the symlink");
    assert_eq!(get("b/c").bytes, (1536 << 10) + (900 << 10), "du -s b/c counts the link it holds");
    for absent in ["a/nested", "a/small", "b/pad", "top", "b/usr-link"] {
        let p = format!("{root}/{absent}");
        assert!(recs.iter().all(|u| u.path != p), "{absent} must have no record");
    }
    assert_eq!(recs.len(), 4, "{recs:#?}");
    assert!(recs.windows(2).all(|w| w[0].bytes >= w[1].bytes), "largest first");
    drop(nested);
}

#[test]
fn without_a_full_filesystem_the_entry_is_still_stored() {
    // Runs as any user: the entry must exist even if nothing qualifies. (Whether some
    // filesystem on this host is over 85 % is not known, so only presence is asserted.)
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_snap"))
        .args(["collect", "--window", "0", "--quiet", "-o"])
        .arg(tmp.path())
        .output()
        .expect("run snap");
    assert!(out.status.success(), "snap collect failed: {}", String::from_utf8_lossy(&out.stderr));
    let bundle = Bundle::open(Path::new(String::from_utf8(out.stdout).unwrap().trim())).expect("open bundle");
    let bytes = bundle.read(names::DISK_USAGE).unwrap().expect("disk usage entry present");
    let recs: Vec<DiskUsage> = parse_jsonl(&bytes).unwrap();
    let manifest = bundle.manifest().expect("manifest");
    let entry = manifest.entries.iter().find(|e| e.path == names::DISK_USAGE).expect("recorded in the manifest");
    assert_eq!(entry.bytes, bytes.len() as u64);
    assert!(recs.iter().all(|u| u.depth == 1 || u.depth == 2));
}
