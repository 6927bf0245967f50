//! Oracle test: snap's filesystem scan against `df` and `df -i` on the same host.
//!
//! The test mounts a small tmpfs and an ext4 loop image of its own, writes known data
//! to them, runs `snap collect` and, at the same moment, `df`; on those two mounts
//! every figure must be equal. On the host's other (possibly busy) filesystems sizes
//! and inode totals must be equal, and used/available figures must lie between the
//! values df gave just before and just after snap's run, within 1 % of the size. The
//! set of mounts snap marks `df_listed` must be exactly the set df lists.
//!
//! `df -i --output=...` is refused by coreutils ("options -i and --output are mutually
//! exclusive"), so one `df -B1 --output=` run with both block and inode columns is the
//! oracle for `df` and `df -i` at once. Needs root (mount); skipped otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use snap_bundle::scan::{parse_jsonl, Filesystem};
use snap_bundle::{names, Bundle};

fn is_root() -> bool {
    // SAFETY: geteuid has no failure mode.
    unsafe { libc::geteuid() == 0 }
}

fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(st.success(), "{cmd} {args:?} failed: {st}");
}

/// A mount made by the test, unmounted on drop (also when an assertion fails).
struct Mounted(PathBuf);

impl Mounted {
    fn new(dir: &Path, args: &[&str]) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        let mut all: Vec<&str> = args.to_vec();
        all.push(dir.to_str().unwrap());
        run("mount", &all);
        Mounted(dir.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn write_file(path: &Path, bytes: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&vec![0x5a; bytes]).unwrap();
    f.sync_all().unwrap();
}

/// One line of `df -B1 --output=target,size,used,avail,pcent,itotal,iused,iavail,ipcent`.
#[derive(Debug, Clone, PartialEq)]
struct DfRow {
    size: u64,
    used: u64,
    avail: u64,
    pcent: Option<u32>,
    itotal: u64,
    iused: u64,
    iavail: u64,
    ipcent: Option<u32>,
}

fn percent(s: &str) -> Option<u32> {
    s.strip_suffix('%')?.parse().ok()
}

fn parse_df(text: &str) -> BTreeMap<String, DfRow> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 9 {
            continue;
        }
        let (target, v) = f.split_at(f.len() - 8);
        let n = |i: usize| v[i].parse::<u64>().unwrap_or_else(|_| panic!("df field {i} in {line:?}"));
        let row = DfRow {
            size: n(0),
            used: n(1),
            avail: n(2),
            pcent: percent(v[3]),
            itotal: n(4),
            iused: n(5),
            iavail: n(6),
            ipcent: percent(v[7]),
        };
        out.insert(target.join(" "), row);
    }
    out
}

fn df() -> BTreeMap<String, DfRow> {
    // df exits 1 when some mount cannot be read (EACCES); its listing is still the oracle.
    let out = Command::new("df")
        .args(["-B1", "--output=target,size,used,avail,pcent,itotal,iused,iavail,ipcent"])
        .output()
        .expect("run df");
    parse_df(&String::from_utf8_lossy(&out.stdout))
}

fn mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

struct Round {
    snap: Vec<Filesystem>,
    before: BTreeMap<String, DfRow>,
    after: BTreeMap<String, DfRow>,
    /// Whether the mount table stayed the same during the round.
    stable: bool,
}

/// Runs `snap collect` and df side by side.
fn round(out_dir: &Path) -> Round {
    let mounts_before = mountinfo();
    let child = Command::new(env!("CARGO_BIN_EXE_snap"))
        .args(["collect", "--window", "0", "--quiet", "-o"])
        .arg(out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start snap");
    let before = df();
    let out = child.wait_with_output().expect("wait for snap");
    let after = df();
    let stable = mounts_before == mountinfo() && before.keys().eq(after.keys());
    assert!(out.status.success(), "snap collect failed: {}", String::from_utf8_lossy(&out.stderr));
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let bundle = Bundle::open(&path).expect("open bundle");
    let bytes = bundle.read(names::FILESYSTEMS).unwrap().expect("bundle holds the filesystem scan");
    let snap = parse_jsonl(&bytes).expect("filesystem scan parses");
    std::fs::remove_file(&path).unwrap();
    Round { snap, before, after, stable }
}

/// `value` lies between `a` and `b`, widened by `tol`.
fn within(value: u64, a: u64, b: u64, tol: u64) -> bool {
    a.min(b).saturating_sub(tol) <= value && value <= a.max(b).saturating_add(tol)
}

fn assert_exact(fs: &Filesystem, df: &DfRow) {
    let t = &fs.target;
    assert_eq!((fs.size_bytes, fs.used_bytes, fs.avail_bytes), (df.size, df.used, df.avail), "bytes of {t}");
    assert_eq!(fs.use_percent, df.pcent, "Use% of {t}");
    assert_eq!((fs.inodes, fs.inodes_used, fs.inodes_free), (df.itotal, df.iused, df.iavail), "inodes of {t}");
    assert_eq!(fs.inode_use_percent, df.ipcent, "IUse% of {t}");
}

fn assert_close(fs: &Filesystem, a: &DfRow, b: &DfRow) {
    let t = &fs.target;
    assert_eq!((fs.size_bytes, fs.inodes), (a.size, a.itotal), "size and inode total of {t}");
    let tol = fs.size_bytes / 100;
    assert!(within(fs.used_bytes, a.used, b.used, tol), "used of {t}: snap {} df {a:?} {b:?}", fs.used_bytes);
    assert!(within(fs.avail_bytes, a.avail, b.avail, tol), "avail of {t}: snap {} df {a:?} {b:?}", fs.avail_bytes);
    let itol = fs.inodes / 100;
    assert!(within(fs.inodes_used, a.iused, b.iused, itol), "iused of {t}: snap {} df {a:?} {b:?}", fs.inodes_used);
    let pct = |p: Option<u32>| u64::from(p.unwrap_or(0));
    assert!(
        within(pct(fs.use_percent), pct(a.pcent), pct(b.pcent), 1) && fs.use_percent.is_some() == a.pcent.is_some(),
        "Use% of {t}: snap {:?} df {:?} {:?}",
        fs.use_percent,
        a.pcent,
        b.pcent
    );
}

#[test]
fn snap_reports_what_df_reports() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs and a loop image");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let tmpfs_dir = tmp.path().join("tmpfs");
    let tmpfs = Mounted::new(&tmpfs_dir, &["-t", "tmpfs", "-o", "size=8M,nr_inodes=1000", "snap-oracle"]);
    write_file(&tmpfs.0.join("three-mib"), 3 << 20);

    let image = tmp.path().join("ext4.img");
    std::fs::File::create(&image).unwrap().set_len(32 << 20).unwrap();
    let img = image.to_str().unwrap();
    run("mkfs.ext4", &["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", img]);
    let ext4 = Mounted::new(&tmp.path().join("ext4"), &["-o", "loop", img]);
    std::fs::create_dir(ext4.0.join("data")).unwrap();
    write_file(&ext4.0.join("data/five-mib"), 5 << 20);
    run("sync", &["-f", ext4.0.to_str().unwrap()]);

    let mine = [tmpfs.0.to_str().unwrap().to_string(), ext4.0.to_str().unwrap().to_string()];
    let mut r = round(&out_dir);
    for _ in 0..3 {
        if r.stable {
            break;
        }
        // Someone mounted or unmounted meanwhile: the listings cannot be compared.
        r = round(&out_dir);
    }
    assert!(r.stable, "the mount table kept changing during the test");

    let listed: BTreeMap<&str, &Filesystem> =
        r.snap.iter().filter(|f| f.df_listed).map(|f| (f.target.as_str(), f)).collect();
    let snap_set: BTreeSet<&str> = listed.keys().copied().collect();
    let df_set: BTreeSet<&str> = r.before.keys().map(|k| k.as_str()).collect();
    assert_eq!(snap_set, df_set, "mounts snap marks df_listed versus mounts df lists");
    assert_eq!(listed.len(), r.snap.iter().filter(|f| f.df_listed).count(), "each listed target once");

    for (target, fs) in &listed {
        assert_eq!(fs.status, "ok", "{target}");
        let (a, b) = (&r.before[*target], &r.after[*target]);
        if mine.iter().any(|m| m == target) {
            assert_exact(fs, a);
            assert_eq!(a, b, "{target} is quiet: df must agree with itself");
        } else {
            assert_close(fs, a, b);
        }
    }

    let t = listed[mine[0].as_str()];
    assert_eq!((t.fstype.as_str(), t.source.as_str()), ("tmpfs", "snap-oracle"));
    assert_eq!((t.size_bytes, t.used_bytes, t.avail_bytes, t.use_percent), (8 << 20, 3 << 20, 5 << 20, Some(38)));
    assert_eq!((t.inodes, t.inodes_used, t.inode_use_percent), (1000, 2, Some(1)));
    let e = listed[mine[1].as_str()];
    assert_eq!(e.fstype, "ext4");
    assert!(e.source.starts_with("/dev/loop") && e.device.starts_with("7:"), "{e:?}");
    assert!(e.used_bytes >= 5 << 20 && e.inodes_used >= 13, "{e:?}");
    assert!(r.snap.iter().any(|f| f.fstype == "proc" && !f.df_listed), "mounts df hides are recorded too");
}

#[test]
fn df_output_parses() {
    let text = "Mounted on  1B-blocks  Used  Avail Use%  Inodes IUsed IFree IUse%\n\
                /           270553174016 14084014080 83488735232  15% 16777216 407760 16369456    3%\n\
                /mnt/a b    4096 0 4096   0%       0      0        0     -\n";
    let df = parse_df(text);
    assert_eq!(df["/"].pcent, Some(15));
    assert_eq!(df["/"].iused, 407760);
    assert_eq!((df["/mnt/a b"].size, df["/mnt/a b"].ipcent), (4096, None));
}
