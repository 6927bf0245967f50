//! Oracle: snap's `kernel/dmesg.txt` against util-linux `dmesg -T` on this host, with a
//! marker the test writes into the kernel log; the syslog(2) fallback against
//! `dmesg -S -T`; and an unprivileged run where the kernel log is denied. Needs root
//! (CI runs as root), util-linux `dmesg`, `unshare` and `setpriv`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use snap_bundle::kmsg::{self, BootClock, CtimeRule};
use snap_bundle::manifest::Manifest;
use snap_bundle::{names, Bundle, EntryStatus};

/// A zone east of UTC with a half-hour offset, given as a POSIX TZ rule so that no time
/// zone database is needed: both snap and dmesg must apply it.
const TZ: &str = "IST-5:30";

fn is_root() -> bool {
    // SAFETY: geteuid has no failure mode.
    unsafe { libc::geteuid() == 0 }
}

/// Writes a unique line into the kernel log and returns it.
fn write_marker(what: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let marker = format!("snap-test-marker-{what}-{}-{nanos}", std::process::id());
    std::fs::write("/dev/kmsg", format!("<6>{marker}\n")).expect("root can write /dev/kmsg");
    marker
}

fn dmesg(args: &[&str]) -> String {
    let out = Command::new("dmesg").args(args).env("LC_ALL", "C.UTF-8").env("TZ", TZ).output().unwrap();
    assert!(out.status.success(), "dmesg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `snap collect` into `dir`, through `wrapper` (a command prefix) if given.
fn collect(dir: &Path, wrapper: &[&str]) -> Bundle {
    let snap = env!("CARGO_BIN_EXE_snap");
    let mut argv: Vec<&str> = wrapper.to_vec();
    argv.extend([snap, "collect", "--window", "0", "--quiet", "-o", dir.to_str().unwrap()]);
    let out = Command::new(argv[0]).args(&argv[1..]).env("TZ", TZ).output().unwrap();
    assert!(out.status.success(), "{argv:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let path = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_string();
    Bundle::open(Path::new(&path)).unwrap()
}

fn read(bundle: &Bundle, entry: &str) -> Vec<u8> {
    bundle.read(entry).unwrap().unwrap_or_else(|| panic!("{entry} is in the bundle"))
}

/// Lines snap would have printed had its time been one second off. util-linux 2.38
/// computes the time as `(realtime - boottime).tv_sec + (boottime.tv_sec -
/// monotonic.tv_sec) + ts.tv_sec` from clocks it reads itself, a moment apart from
/// snap's: after a suspend (boottime ahead of monotonic by a fraction of a second) the
/// middle term flips between two values from one moment to the next, and when the boot
/// time's fraction is within a few milliseconds of a whole second, clock slewing between
/// the two runs can move the first term. Only then is ±1 s unavoidable; otherwise the
/// lines must match exactly.
fn one_second_off(manifest: &Manifest, raw_log: &[u8]) -> HashSet<String> {
    let c = manifest.clocks;
    let suspended_ns = c.boottime_ns.saturating_sub(c.monotonic_ns);
    let boot_frac_ns = c.realtime_ns.wrapping_sub(c.boottime_ns) % 1_000_000_000;
    if suspended_ns < 1_000_000 && (5_000_000..995_000_000).contains(&boot_frac_ns) {
        return HashSet::new();
    }
    println!("dmesg -T times may differ by 1 s here (suspended {suspended_ns} ns, boot fraction {boot_frac_ns} ns)");
    let clock = BootClock::new(&c, CtimeRule::WholeSeconds);
    let offset = manifest.host.utc_offset_seconds;
    let mut near = HashSet::new();
    for r in kmsg::parse(raw_log) {
        for d in [-1, 1] {
            near.extend(kmsg::ctime_line(clock.wall_secs(r.ts_usec) + d, offset, &r.message).lines().map(String::from));
        }
    }
    near
}

/// Every line of `real` must be in snap's rendering (or, where allowed, one second off).
fn assert_all_lines_present(real: &str, ours: &str, near: &HashSet<String>, what: &str) {
    let ours: HashSet<&str> = ours.lines().collect();
    let missing: Vec<&str> = real.lines().filter(|l| !ours.contains(l) && !near.contains(*l)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} lines of `{what}` are not in snap's dmesg.txt; first ones: {:#?}",
        missing.len(),
        real.lines().count(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn every_dmesg_t_line_is_in_snaps_dmesg_txt() {
    if !is_root() {
        println!("SKIPPED every_dmesg_t_line_is_in_snaps_dmesg_txt: needs root (writes /dev/kmsg)");
        return;
    }
    let marker = write_marker("oracle");
    // dmesg first: every record it prints is still in the log when snap reads it a
    // moment later (snap may see a few more, such as its own).
    let real = dmesg(&["-T"]);
    let work = tempfile::tempdir().unwrap();
    let bundle = collect(work.path(), &[]);
    let manifest = bundle.manifest().expect("manifest").clone();
    assert_eq!(manifest.kernel_log_source.as_deref(), Some("/dev/kmsg"));
    assert_eq!(manifest.host.utc_offset_seconds, 5 * 3600 + 1800, "TZ={TZ} reached snap");
    let raw_log = read(&bundle, names::KMSG);
    // The raw log holds the kernel's bytes (syslog(2) text is not escaped); dmesg.txt is UTF-8.
    let kmsg_text = String::from_utf8_lossy(&raw_log);
    let dmesg_text = String::from_utf8(read(&bundle, names::DMESG)).unwrap();
    assert!(real.contains(&marker), "dmesg -T shows the marker");
    assert!(kmsg_text.contains(&format!(";{marker}\n")), "marker in {}", names::KMSG);
    assert!(dmesg_text.lines().any(|l| l.ends_with(&format!("] {marker}"))), "marker in {}", names::DMESG);
    let near = one_second_off(&manifest, &raw_log);
    assert_all_lines_present(&real, &dmesg_text, &near, "dmesg -T");
}

#[test]
fn without_dev_kmsg_the_syslog_buffer_is_used_and_renders_like_dmesg_s_t() {
    if !is_root() {
        println!("SKIPPED without_dev_kmsg_the_syslog_buffer_is_used: needs root (mount namespace)");
        return;
    }
    let marker = write_marker("syslog");
    let real = dmesg(&["-S", "-T"]);
    let work = tempfile::tempdir().unwrap();
    // A private mount namespace whose /dev is an empty tmpfs: /dev/kmsg is missing.
    let hide_dev = ["unshare", "--mount", "--", "sh", "-c", r#"mount -t tmpfs none /dev && exec "$@""#, "sh"];
    let bundle = collect(work.path(), &hide_dev);
    let manifest = bundle.manifest().expect("manifest").clone();
    assert_eq!(manifest.kernel_log_source.as_deref(), Some("syslog(2)"));
    let raw_log = read(&bundle, names::KMSG);
    // The raw log holds the kernel's bytes (syslog(2) text is not escaped); dmesg.txt is UTF-8.
    let kmsg_text = String::from_utf8_lossy(&raw_log);
    let dmesg_text = String::from_utf8(read(&bundle, names::DMESG)).unwrap();
    assert!(kmsg_text.starts_with('<'), "the syslog(2) text is stored as it came");
    assert!(kmsg_text.contains(&format!("] {marker}\n")), "marker in {}", names::KMSG);
    assert!(dmesg_text.lines().any(|l| l.ends_with(&format!("] {marker}"))), "marker in {}", names::DMESG);
    // READ_ALL returns the newest records that fit a buffer of the log's size, and
    // dmesg -S asks with 8 bytes more than snap: its oldest line may be one snap lacks.
    let ours: HashSet<&str> = dmesg_text.lines().collect();
    let real: String = real.lines().skip_while(|l| !ours.contains(l)).map(|l| format!("{l}\n")).collect();
    let near = one_second_off(&manifest, &raw_log);
    assert_all_lines_present(&real, &dmesg_text, &near, "dmesg -S -T");
}

/// Sets a sysctl for the life of the value and puts the old value back on drop.
struct Sysctl {
    path: PathBuf,
    old: String,
}

impl Sysctl {
    fn set(path: &str, value: &str) -> Sysctl {
        let old = std::fs::read_to_string(path).unwrap();
        std::fs::write(path, value).unwrap();
        Sysctl { path: path.into(), old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, self.old.trim());
    }
}

#[test]
fn an_unprivileged_run_records_the_kernel_log_as_denied_and_goes_on() {
    if !is_root() {
        println!("SKIPPED an_unprivileged_run_records_the_kernel_log_as_denied: needs root (setpriv, sysctl)");
        return;
    }
    let nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    let snap = env!("CARGO_BIN_EXE_snap");
    let runnable = Command::new(nobody[0]).args(&nobody[1..]).args(["test", "-x", snap]).status().unwrap();
    if !runnable.success() {
        println!("SKIPPED an_unprivileged_run_records_the_kernel_log_as_denied: uid 65534 cannot run {snap}");
        return;
    }
    let _restrict = Sysctl::set("/proc/sys/kernel/dmesg_restrict", "1");
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let bundle = collect(work.path(), &nobody);
    let manifest = bundle.manifest().expect("manifest");
    assert_eq!(manifest.kernel_log_source, None);
    let kmsg = manifest.entry(names::KMSG).expect("the kernel log was attempted");
    assert_eq!(kmsg.status, EntryStatus::Denied, "{kmsg:?}");
    assert!(kmsg.message.as_deref().unwrap_or("").contains("syslog(2)"), "the fallback was tried too: {kmsg:?}");
    assert_eq!(bundle.read(names::KMSG).unwrap(), None);
    assert_eq!(bundle.read(names::DMESG).unwrap(), None);
    let collector = manifest.collectors.iter().find(|c| c.name == "kernel_log").unwrap();
    assert_eq!(collector.status, EntryStatus::Ok, "a denied log does not fail the collector");
}
