//! Network namespaces for the tests that make traffic: a client and a server namespace
//! joined by a veth pair, IPv6 off so that the link carries nothing but the test's own
//! packets, and helpers to run code inside one. Dropping a [`Pair`] deletes both
//! namespaces, which destroys the veth pair and every socket and rule in them.
//!
//! This kernel has no netem (CONFIG_NET_SCH_NETEM is off), so loss is made with nftables
//! rules inside a namespace ([`Pair::nft`]) or socket filters, and delay by the
//! applications themselves.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a command to completion; its stdout. Panics with its stderr when it fails.
pub fn run_ok(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).output();
    let out = out.unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Client and server namespaces on `a.b.c.1` and `a.b.c.2` (/24).
pub struct Pair {
    pub client: String,
    pub server: String,
    pub client_dev: String,
    pub server_dev: String,
    net: [u8; 3],
}

impl Pair {
    /// `tag` (at most 6 characters) names the namespaces and devices with this process's
    /// pid, so that tests running at once, and leftovers of a killed run, never collide.
    pub fn new(tag: &str, net: [u8; 3]) -> Pair {
        assert!(tag.len() <= 6 && tag.bytes().all(|b| b.is_ascii_alphanumeric()), "tag {tag:?}");
        let pid = std::process::id();
        let p = Pair {
            client: format!("snap-{tag}-{pid}-c"),
            server: format!("snap-{tag}-{pid}-s"),
            client_dev: format!("{tag}{pid}c"),
            server_dev: format!("{tag}{pid}s"),
            net,
        };
        assert!(p.client_dev.len() <= 15, "device name {} too long", p.client_dev);
        for ns in [&p.client, &p.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
            run_ok(&["ip", "netns", "add", ns]);
            run_ok(&["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            run_ok(&["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
            run_ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        run_ok(&[
            "ip",
            "link",
            "add",
            &p.client_dev,
            "netns",
            &p.client,
            "type",
            "veth",
            "peer",
            "name",
            &p.server_dev,
            "netns",
            &p.server,
        ]);
        for (ns, dev, ip) in [(&p.client, &p.client_dev, p.client_ip()), (&p.server, &p.server_dev, p.server_ip())] {
            run_ok(&["ip", "-n", ns, "addr", "add", &format!("{ip}/24"), "dev", dev]);
            run_ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        p
    }

    pub fn client_ip(&self) -> Ipv4Addr {
        let [a, b, c] = self.net;
        Ipv4Addr::new(a, b, c, 1)
    }

    pub fn server_ip(&self) -> Ipv4Addr {
        let [a, b, c] = self.net;
        Ipv4Addr::new(a, b, c, 2)
    }

    /// `sysctl -w setting` inside namespace `ns`.
    pub fn sysctl(ns: &str, setting: &str) {
        run_ok(&["ip", "netns", "exec", ns, "sysctl", "-qw", setting]);
    }

    /// Loads an nftables ruleset (`nft -f -` syntax) inside namespace `ns`.
    pub fn nft(ns: &str, ruleset: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nft (apt-get install nftables)");
        child.stdin.take().unwrap().write_all(ruleset.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "nft in {ns}: {}\n{ruleset}", String::from_utf8_lossy(&out.stderr));
    }

    /// (rx_packets, tx_packets) of every interface of namespace `ns`, from /proc/net/dev.
    pub fn counters(ns: &str) -> HashMap<String, (u64, u64)> {
        let text = run_ok(&["ip", "netns", "exec", ns, "cat", "/proc/net/dev"]);
        text.lines()
            .filter_map(|l| {
                let (name, rest) = l.split_once(':')?;
                let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().ok()).collect::<Option<_>>()?;
                Some((name.trim().to_string(), (*f.get(1)?, *f.get(9)?)))
            })
            .collect()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.client, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
        }
    }
}

/// Runs `f` on a thread that entered network namespace `ns` first.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: fd is an open namespace file; setns changes only this thread's netns.
        let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// Sets `stop` when dropped, so background traffic ends even when an assertion fails.
pub struct StopOnDrop(pub Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A `snap collect` running in the background (usually `ip netns exec NS snap collect`),
/// its output gathered; killed if dropped unfinished.
pub struct Snap {
    child: Option<Child>,
    pipes: Option<(JoinHandle<String>, JoinHandle<String>)>,
}

pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Snap {
    pub fn spawn(mut cmd: Command) -> Snap {
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let pipe = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut v);
                }
                String::from_utf8_lossy(&v).into_owned()
            })
        };
        let out = pipe(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
        let err = pipe(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
        Snap { child: Some(child), pipes: Some((out, err)) }
    }

    /// Waits until snap's packet socket is bound, so capturing (`ip netns exec` execs
    /// snap, so the child's pid is snap's): a socket of snap's listed as running in its
    /// namespace's /proc/net/packet. The ring socket is bound only once its filter and
    /// ring are in place, so from then on every packet is seen.
    pub fn wait_for_capture(&mut self) {
        let child = self.child.as_mut().unwrap();
        let pid = child.id();
        let started = Instant::now();
        loop {
            if bound_packet_socket(pid) {
                return;
            }
            if child.try_wait().unwrap().is_some() {
                let f = self.finish();
                panic!("snap ended before its capture started ({:?}): {}", f.code, f.stderr);
            }
            assert!(started.elapsed() < Duration::from_secs(60), "snap's packet socket was never bound");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn finish(&mut self) -> Finished {
        let mut child = self.child.take().expect("finished once");
        let started = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("snap did not finish within {:?}", Duration::from_secs(60));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (out, err) = self.pipes.take().unwrap();
        Finished { code: status.code(), stdout: out.join().unwrap(), stderr: err.join().unwrap() }
    }
}

impl Drop for Snap {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether process `pid` holds a packet socket that is bound (`R` is 1 in its network
/// namespace's /proc/net/packet: `sk RefCnt Type Proto Iface R Rmem User Inode`).
fn bound_packet_socket(pid: u32) -> bool {
    let Ok(table) = std::fs::read_to_string(format!("/proc/{pid}/net/packet")) else { return false };
    let running: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 9 && f[5] == "1").then(|| format!("socket:[{}]", f[8]))
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| running.iter().any(|r| t.as_os_str() == r.as_str())))
}
