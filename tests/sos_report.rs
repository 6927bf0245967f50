//! `snap analyze`, `show` and `diff` on sos reports:
//! - the real report of ../shared/corpus/sosreport (sos 4.2, Ubuntu 20.04), as its
//!   .tar.xz, extracted, and from the folder it was extracted in; each made entry is
//!   checked against the test's own count of the listing it came from;
//! - reports made here by the Debian `sosreport` package (`sos report --batch`, as root)
//!   after the test made zombies, a deleted file it holds open, and CLOSE_WAIT sockets;
//! - broken reports: a listing that is not what its name says, links that leave the
//!   report, a report cut short.

mod common;

use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::is_root;
use common::{analyze_json, findings, show, show_ok, snap};
use serde_json::Value;

fn corpus_report() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/sosreport/sosreport-ubuntu20.04-vault.tar.xz");
    if !p.is_file() {
        println!("the third-party corpus is absent: {} (CI has it; see DESIGN.md)", p.display());
    }
    assert!(p.is_file(), "the corpus report {} is required by this test", p.display());
    p
}

/// Extracts a report with tar(1) into `dir`; the report's top directory.
fn extract(report: &Path, dir: &Path) -> PathBuf {
    let st = Command::new("tar").arg("-xf").arg(report).arg("-C").arg(dir).status().unwrap();
    assert!(st.success(), "tar -xf {}", report.display());
    let mut tops: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(tops.len(), 1, "{tops:?}");
    tops.pop().unwrap()
}

fn status<'a>(report: &'a Value, rule: &str) -> &'a str {
    report["rules"][rule].as_str().unwrap_or_else(|| panic!("no status for {rule}"))
}

fn made<'a>(report: &'a Value, entry: &str) -> &'a Value {
    report["sos_report"]["made"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["entry"] == entry)
        .unwrap_or_else(|| panic!("{entry} was not made: {}", report["sos_report"]))
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn the_corpus_report_is_read_with_every_rule_its_data_supports() {
    let archive = corpus_report();
    let dir = tempfile::tempdir().unwrap();
    let root = extract(&archive, dir.path());
    let r = analyze_json(&archive);
    let sos = &r["sos_report"];
    assert_eq!(sos["version"], "4.2");
    assert_eq!(sos["top"], "sosreport-vault-2021");
    assert_eq!(r["bundle"]["hostname"], "juju-04f1e3-0-lxd-5");
    assert_eq!(r["bundle"]["kernel_release"], "5.4.0-97-generic");
    assert_eq!(r["bundle"]["boot_time"], 1_644_445_976);

    // Each made entry holds one record per line of its listing, counted here.
    let cmd = root.join("sos_commands");
    let netstat = lines_of(&cmd.join("networking/netstat_-W_-neopa"));
    let sockets = netstat
        .iter()
        .filter(|l| {
            ["tcp", "tcp6", "udp", "udp6", "raw", "raw6", "unix"].contains(&l.split_whitespace().next().unwrap_or(""))
        })
        .count();
    assert_eq!(made(&r, "scan/sockets.jsonl")["records"], sockets);
    assert_eq!(made(&r, "scan/sockets.jsonl")["from"][0], "sos_commands/networking/netstat_-W_-neopa");
    let df = lines_of(&cmd.join("filesys/df_-al_-x_autofs"));
    assert_eq!(made(&r, "scan/filesystems.jsonl")["records"], df.len() - 1);
    let lsof = lines_of(&cmd.join("filesys/lsof_-b_M_-n_-l_-P"));
    // Process lines have an empty TID column (per-thread lines repeat the files). The
    // header is indented; the lines are not. TID is right-aligned under its header.
    let header = lsof[0].trim_start();
    let tid_end = header.find(" TID ").unwrap() + 4;
    let process_lines =
        lsof[1..].iter().filter(|l| !l.as_bytes().get(tid_end - 1).is_some_and(u8::is_ascii_digit)).count();
    assert_eq!(made(&r, "scan/open_files.jsonl")["records"], process_lines);
    // Processes: every pid of every ps listing (each was run at its own moment, so
    // sos's own short-lived children differ between them).
    let mut pids = std::collections::BTreeSet::new();
    let listings = made(&r, "scan/processes.jsonl")["from"].as_array().unwrap().clone();
    assert_eq!(listings.len(), 5);
    for l in &listings {
        let lines = lines_of(&root.join(l.as_str().unwrap()));
        let at = lines[0].split_whitespace().position(|w| w == "PID").unwrap();
        pids.extend(lines[1..].iter().filter_map(|l| l.split_whitespace().nth(at)?.parse::<u32>().ok()));
    }
    assert_eq!(made(&r, "scan/processes.jsonl")["records"], pids.len());
    for m in sos["made"].as_array().unwrap() {
        assert!(m.get("error").is_none(), "{m}");
    }
    // Every line of every listing read was understood.
    for n in sos["notes"].as_array().unwrap() {
        assert!(!n.as_str().unwrap().contains("could not be read"), "{n}");
    }

    // Every rule whose data the report holds is evaluated; the others say why not.
    for (rule, s) in r["rules"].as_object().unwrap() {
        let s = s.as_str().unwrap();
        assert!(!s.starts_with("failed"), "{rule}: {s}");
        if rule.starts_with("tcp.") {
            assert!(s.ends_with("a sos report holds no packet capture"), "{rule}: {s}");
        } else if rule == "app.nginx_workers" {
            assert!(
                s.ends_with("a sos report keeps no per-process files but a few, and its ps listings"),
                "{rule}: {s}"
            );
        } else {
            assert!(!s.starts_with("not_evaluated"), "{rule}: {s}");
        }
    }
    // uptime: `load average: 6.42, 4.37, 3.94` on 2 CPUs is 3.2 per CPU: critical.
    let load = findings(&r, "load.high");
    assert_eq!(load.len(), 1);
    assert_eq!(load[0]["severity"], "critical");
    assert_eq!(load[0]["evidence"][0]["entry"], "sos_commands/host/uptime");
    assert_eq!(load[0]["facts"]["cpus"], 2);
    // The CPU rules read proc/stat since boot, and say so.
    assert!(status(&r, "cpu.iowait") == "passed" && status(&r, "load.cpu_bound") == "passed");

    // The same report extracted, or the folder it was extracted in: the same analysis.
    let strip = |mut v: Value| {
        v["sos_report"]["top"] = Value::Null;
        v
    };
    assert_eq!(strip(analyze_json(&root)), strip(r.clone()));
    assert_eq!(analyze_json(dir.path()), r);
}

#[test]
fn the_corpus_report_shows_its_classic_views() {
    let archive = corpus_report();
    let dir = tempfile::tempdir().unwrap();
    let root = extract(&archive, dir.path());
    // uptime from the report's clocks and its uptime line (users are not known).
    assert_eq!(show_ok(&archive, &["uptime"]), " 09:51:32 up 11:18,  ? users,  load average: 6.42, 4.37, 3.94\n");
    // df: every mount plain df lists, as the report's df -al printed it (less width).
    let words = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let sos_df: Vec<Vec<String>> =
        lines_of(&root.join("sos_commands/filesys/df_-al_-x_autofs")).iter().map(|l| words(l)).collect();
    let ours = show_ok(&archive, &["df", "-a"]);
    let ours: Vec<Vec<String>> = ours.lines().map(words).collect();
    assert_eq!(ours[1..], sos_df[1..], "{ours:?}");
    // free: from proc/meminfo; without it, from the report's free output, the same figures.
    let free = |bundle: &Path| show_ok(bundle, &["free"]).lines().map(words).collect::<Vec<_>>();
    let sos_free: Vec<Vec<String>> =
        lines_of(&root.join("sos_commands/memory/free")).iter().map(|l| words(l)).collect();
    std::fs::remove_file(root.join("proc/meminfo")).unwrap();
    assert_eq!(free(&root), sos_free);
    let (code, _, err) = show(&root, &["free", "-w"]);
    assert!(code == Some(2) && err.contains("sos_commands/memory/free has no buffers/cache split"), "{err}");
    assert_eq!(free(&archive)[0], sos_free[0]);
    // dmesg is the report's own output.
    assert_eq!(show_ok(&archive, &["dmesg"]), std::fs::read_to_string(root.join("sos_commands/kernel/dmesg")).unwrap());
    // ps needs per-process stat files: the refusal says where the report keeps its ps.
    let (code, _, err) = show(&archive, &["ps", "aux"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("sos_commands/process/ps_"), "{err}");
    // netstat from the made socket scan, with the owners netstat -p printed.
    let netstat = show_ok(&archive, &["netstat", "-tlnp"]);
    assert!(netstat.lines().any(|l| l.contains("127.0.0.1:8220") && l.contains("8589/vault")), "{netstat}");
}

#[test]
fn inspect_says_how_the_report_was_read() {
    let out = snap().arg("inspect").arg(corpus_report()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "  read as a sos report (4.2, top directory sosreport-vault-2021)",
        "  scan/sockets.jsonl made from sos_commands/networking/netstat_-W_-neopa (348 records)",
        "  captured: 2022-02-10T09:51:32Z (from sos_commands/date/date_--utc)",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "{line:?} in\n{text}");
    }
}

#[test]
fn a_diff_of_a_report_with_itself_is_empty() {
    let archive = corpus_report();
    let out = snap().arg("diff").arg(&archive).arg(&archive).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("same host juju-04f1e3-0-lxd-5, same boot"), "{text}");
    assert!(text.contains("No changes"), "{text}");
}

/// A process whose children exited and are never reaped: `sh` starts them, then becomes
/// `sleep`, which never waits.
fn zombie_parent(children: usize) -> Child {
    let script = format!("for i in $(seq {children}); do true & done; exec sleep 600");
    Command::new("sh").args(["-c", &script]).stdin(Stdio::null()).spawn().unwrap()
}

fn zombies_of(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|s| {
            let rest = s.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.first() == Some(&"Z") && f.get(1) == Some(&pid.to_string().as_str())
        })
        .count()
}

/// `sos report --batch` with the plugins the test needs, in a new folder of `dir`; the
/// report's path.
fn sos_report(dir: &Path, name: &str) -> PathBuf {
    let dir = dir.join(name);
    std::fs::create_dir(&dir).unwrap();
    let out = Command::new("sos")
        .args(["report", "--batch", "--quiet", "-o", "process,filesys,networking,kernel,memory,host,date"])
        .arg("--tmp-dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("sos (Debian package sosreport) is installed: .ci/run installs it");
    assert!(out.status.success(), "sos report failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut reports: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.xz"))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    reports.pop().unwrap()
}

#[test]
fn a_report_made_by_sos_shows_the_conditions_the_test_made() {
    if !is_root() {
        println!("skipped: sos report needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let before = sos_report(dir.path(), "before");
    // Zombies: six children that `sleep` never reaps.
    let mut parent = zombie_parent(6);
    let deadline = Instant::now() + Duration::from_secs(10);
    while zombies_of(parent.id()) < 6 {
        assert!(Instant::now() < deadline, "the zombies did not appear");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A deleted file of 3 MiB held open, on a disk file system.
    let held_dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let held_path = held_dir.path().join("snap-sos-held.log");
    let mut held = File::create(&held_path).unwrap();
    held.write_all(&vec![7u8; 3 << 20]).unwrap();
    held.sync_all().unwrap();
    std::fs::remove_file(&held_path).unwrap();
    // 20 CLOSE_WAIT sockets: this process accepted them and never closes them after the
    // peers did.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut accepted = Vec::new();
    for _ in 0..20 {
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        accepted.push(listener.accept().unwrap().0);
        drop(client);
    }

    let report = sos_report(dir.path(), "after");
    let r = analyze_json(&report);
    let me = std::process::id();

    let z = findings(&r, "proc.zombies");
    let ours: Vec<&&Value> = z.iter().filter(|f| f["facts"]["parent_pid"] == parent.id()).collect();
    assert_eq!(ours.len(), 1, "{z:?}");
    assert_eq!(ours[0]["facts"]["zombies"], 6);
    assert_eq!(ours[0]["facts"]["parent"], "sleep");
    assert!(ours[0]["evidence"][0]["entry"].as_str().unwrap().starts_with("sos_commands/process/ps_"), "{}", ours[0]);

    let d = findings(&r, "disk.deleted_open");
    let ours: Vec<&&Value> = d.iter().filter(|f| f["facts"]["pid"] == me).collect();
    assert_eq!(ours.len(), 1, "{d:?}");
    let files = ours[0]["facts"]["files"].to_string();
    assert!(files.contains("snap-sos-held.log"), "{files}");
    assert!(ours[0]["evidence"].to_string().contains("sos_commands/process/lsof"), "{}", ours[0]);

    let c = findings(&r, "net.close_wait");
    let ours: Vec<&&Value> =
        c.iter().filter(|f| f["subject"].as_str().unwrap().contains(&format!("pid {me} "))).collect();
    assert_eq!(ours.len(), 1, "{c:?}");
    assert_eq!(ours[0]["facts"]["count"], 20);
    let ev = &ours[0]["evidence"][0];
    assert_eq!(ev["entry"], "scan/sockets.jsonl");
    assert!(ev["from"][0].as_str().unwrap().starts_with("sos_commands/networking/"), "{ev}");

    // lsof +L1 replays the deleted file from the report.
    let lsof = show_ok(&report, &["lsof", "+L1"]);
    assert!(lsof.lines().any(|l| l.contains("snap-sos-held.log") && l.contains(&me.to_string())), "{lsof}");

    // snap diff of the two reports: the new findings, the process started, the
    // CLOSE_WAIT growth of this process.
    let out = snap().args(["diff", "--format", "json"]).arg(&before).arg(&report).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["host"]["same_host"], true);
    let new = d["findings"]["new"].as_array().unwrap();
    assert!(new.iter().any(|f| f["rule"] == "proc.zombies" && f["facts"]["parent_pid"] == parent.id()), "{new:?}");
    let started = d["processes"]["started"].as_array().unwrap();
    assert!(started.iter().any(|p| p["pid"] == parent.id() && p["command"] == "sleep"), "{started:?}");
    let cw = d["processes"]["close_wait"].as_array().unwrap();
    assert!(cw.iter().any(|g| g["pid"] == me && g["before"] == 0 && g["after"] == 20), "{cw:?}");

    parent.kill().unwrap();
    parent.wait().unwrap();
    drop((held, accepted));
}

#[test]
fn a_listing_that_is_not_what_its_name_says_fails_only_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let root = extract(&corpus_report(), dir.path());
    std::fs::write(root.join("sos_commands/networking/netstat_-W_-neopa"), "this is not netstat output\n").unwrap();
    let r = analyze_json(&root);
    let s = status(&r, "net.close_wait");
    assert!(
        s.starts_with("failed: scan/sockets.jsonl") && s.contains("sos_commands/networking/netstat_-W_-neopa"),
        "{s}"
    );
    assert_eq!(status(&r, "disk.space_low"), "passed");
    assert!(made(&r, "scan/sockets.jsonl")["error"].as_str().unwrap().contains("netstat_-W_-neopa"));
}

#[test]
fn links_that_leave_the_report_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = extract(&corpus_report(), dir.path());
    // proc/net points out of the report, and proc/loadavg at the host's.
    std::fs::remove_file(root.join("proc/net")).unwrap();
    std::os::unix::fs::symlink("../../../../../../proc/self/net", root.join("proc/net")).unwrap();
    std::os::unix::fs::symlink("/proc/loadavg", root.join("proc/loadavg")).unwrap();
    let r = analyze_json(&root);
    // Not evaluated rather than read from this machine.
    assert!(
        status(&r, "net.retransmits").starts_with("not_evaluated: missing proc/net/snmp"),
        "{}",
        status(&r, "net.retransmits")
    );
    assert_eq!(findings(&r, "load.high")[0]["evidence"][0]["entry"], "sos_commands/host/uptime");
}

#[test]
fn a_report_cut_short_is_refused_naming_where() {
    let bytes = std::fs::read(corpus_report()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.tar.xz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    for cmd in [&["analyze"][..], &["show"], &["inspect"]] {
        let out = snap().args(cmd).arg(&cut).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(
            err.starts_with("snap: corrupt bundle") && err.contains("after entry sosreport-vault-2021/"),
            "{cmd:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn garbage_or_a_cut_in_any_listing_is_named_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let root = extract(&corpus_report(), dir.path());
    let listings = [
        ("sos_commands/filesys/lsof_-b_M_-n_-l_-P", "scan/open_files.jsonl"),
        ("sos_commands/networking/netstat_-W_-neopa", "scan/sockets.jsonl"),
        ("sos_commands/filesys/df_-al_-x_autofs", "scan/filesystems.jsonl"),
        ("sos_commands/process/ps_auxwwwm", "scan/processes.jsonl"),
    ];
    let mut rng = common::rng::Rng::new(0x5eed_0505);
    for (listing, entry) in listings {
        let path = root.join(listing);
        let good = std::fs::read(&path).unwrap();
        let mut garbage = good.clone();
        for _ in 0..good.len() / 20 {
            let at = rng.below(garbage.len());
            garbage[at] = rng.below(256) as u8;
        }
        let cut = good[..rng.below(good.len())].to_vec();
        for (what, bytes) in [("garbage", garbage), ("cut", cut), ("binary", vec![0xff; 4096]), ("empty", Vec::new())] {
            std::fs::write(&path, &bytes).unwrap();
            let out = snap().args(["analyze", "--format", "json"]).arg(&root).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{listing} {what}: {err}");
            assert!(!err.contains("panicked"), "{listing} {what}: {err}");
            let r: Value = serde_json::from_slice(&out.stdout).unwrap();
            // Whatever was made of it, a failure names the listing.
            if let Some(e) = made(&r, entry).get("error") {
                assert!(e.as_str().unwrap().contains(listing), "{listing} {what}: {e}");
            }
            for (rule, s) in r["rules"].as_object().unwrap() {
                let s = s.as_str().unwrap();
                assert!(!s.starts_with("failed") || s.contains(listing), "{listing} {what}: {rule}: {s}");
            }
        }
        std::fs::write(&path, &good).unwrap();
    }
}
