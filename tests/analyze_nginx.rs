//! Scenario test for `app.nginx_workers` (root, nginx installed): a real nginx with one
//! worker on a 2-CPU box and `worker_connections 4096` under an open-files limit of
//! 1024 (prlimit). snap collects, analyzes, and the finding names the master and the
//! numbers; once nginx is stopped the rule says nothing about it.
//!
//! snap's config collector copies /etc/nginx, so the test's config is written there as
//! `snap-test-<pid>.conf` (a new file, removed by a Drop guard; the host's nginx.conf is
//! not touched) and nginx is started with `-c` on it: the rule reads the master's `-c`
//! file when the bundle holds it. Everything else (pid file, logs, prefix) lives in a
//! temp dir, and the listener is on 127.0.0.1 at a free port.

mod common;

use common::{analyze_json, collect_window};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

fn ours<'a>(report: &'a Value, subject: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "app.nginx_workers" && f["subject"] == subject)
        .collect()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the config file, and stops nginx (SIGTERM, then SIGKILL) if it still runs.
struct Nginx {
    conf: PathBuf,
    master: Option<u32>,
}
impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(pid) = self.master.filter(|p| alive(*p)) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            let t = Instant::now();
            while alive(pid) && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let _ = std::fs::remove_file(&self.conf);
    }
}

fn children(parent: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|s| {
            let rest = s.rsplit_once(')').map(|(_, r)| r.trim()).unwrap_or("");
            rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
        })
        .count()
}

#[test]
fn nginx_worker_connections_above_fd_limit_is_found_and_quiet_once_stopped() {
    if Command::new("nginx").arg("-v").output().is_err() {
        panic!("nginx is not installed (apt-get install nginx-light)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = PathBuf::from(format!("/etc/nginx/snap-test-{}.conf", std::process::id()));
    let mut guard = Nginx { conf: conf.clone(), master: None };
    let p = prefix.display();
    std::fs::write(
        &conf,
        format!(
            "# snap scenario test: removed when the test ends\n\
             daemon on;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
             events {{\n    worker_connections 4096;\n}}\n\
             http {{\n    access_log {p}/access.log;\n    keepalive_timeout 10s;\n\
             client_body_temp_path {p}/body;\n    proxy_temp_path {p}/proxy;\n\
             fastcgi_temp_path {p}/fastcgi;\n    uwsgi_temp_path {p}/uwsgi;\n    scgi_temp_path {p}/scgi;\n\
             server {{\n        listen 127.0.0.1:{port};\n        return 200 \"ok\\n\";\n    }}\n}}\n"
        ),
    )
    .unwrap();
    let out = Command::new("prlimit")
        .args(["--nofile=1024:1024", "nginx", "-c"])
        .arg(&conf)
        .arg("-p")
        .arg(prefix)
        .output()
        .unwrap();
    assert!(out.status.success(), "nginx did not start: {}", String::from_utf8_lossy(&out.stderr));
    let pid_file = prefix.join("nginx.pid");
    let t = Instant::now();
    let master: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse().ok()) {
            if children(pid) >= 1 {
                break pid;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(10), "nginx's master and worker did not appear");
        std::thread::sleep(Duration::from_millis(50));
    };
    guard.master = Some(master);

    let dir = tempfile::tempdir().unwrap();
    let report = analyze_json(&collect_window(dir.path(), "2"));
    let subject = format!("nginx (pid {master})");
    let found = ours(&report, &subject);
    assert_eq!(found.len(), 1, "{report:#}");
    let f = found[0];
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["facts"]["master_pid"], master);
    assert_eq!(f["facts"]["workers"], 1);
    assert_eq!(f["facts"]["cpus"], report["bundle"]["online_cpus"]);
    assert_eq!(f["facts"]["worker_connections"], 4096);
    assert_eq!(f["facts"]["worker_fd_limit"], 1024);
    assert_eq!(f["facts"]["worker_processes"], "1");
    assert_eq!(f["facts"]["keepalive_timeout"], "10s");
    let conf_entry = conf.to_str().unwrap().trim_start_matches('/').to_string();
    assert_eq!(f["facts"]["config"], conf_entry.as_str());
    let summary = f["summary"].as_str().unwrap();
    assert!(summary.contains("worker_connections 4096 is above the workers' open-files limit 1024"), "{summary}");
    assert_eq!(report["rules"]["app.nginx_workers"], "fired");

    // Stopped: nothing about this master any more.
    let stop = Command::new("nginx").arg("-c").arg(&conf).arg("-p").arg(prefix).args(["-s", "stop"]).output().unwrap();
    assert!(stop.status.success(), "nginx -s stop: {}", String::from_utf8_lossy(&stop.stderr));
    let t = Instant::now();
    while alive(master) {
        assert!(t.elapsed() < Duration::from_secs(10), "nginx did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().unwrap();
    let report = analyze_json(&collect_window(dir.path(), "2"));
    assert!(ours(&report, &subject).is_empty(), "{report:#}");
    assert!(
        matches!(report["rules"]["app.nginx_workers"].as_str(), Some("passed" | "fired")),
        "{}",
        report["rules"]["app.nginx_workers"]
    );
}
