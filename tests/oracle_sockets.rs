//! Oracle: snap's socket scan against `ss -tanp` for TCP sockets this test process
//! creates on loopback: a listener, an established pair with unread data, a connection
//! left in CLOSE_WAIT (its peer's half in FIN_WAIT2), one in TIME_WAIT, and a listener
//! and a connection on ::1 when IPv6 is available. Needs root (to see every process's
//! descriptors, as ss -p does) and ss.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use snap_bundle::scan::{parse_jsonl, Socket};
use snap_bundle::{names, Bundle};

/// Local and remote address and port; `*` in ss is the wildcard of either family.
type Key = (String, u16, String, u16);

/// One line of `ss -tanpH`.
#[derive(Debug, Clone, PartialEq)]
struct Ss {
    state: String,
    recv_q: u64,
    send_q: u64,
    key: Key,
    /// (pid, fd) of every owner in `users:(("name",pid=N,fd=M),...)`.
    owners: BTreeSet<(u32, u32)>,
}

/// `127.0.0.1:80`, `[::1]:80`, `[::ffff:127.0.0.1]:80`, `0.0.0.0:*`, `*:*`.
fn endpoint(s: &str) -> (String, u16) {
    let (addr, port) = s.rsplit_once(':').unwrap_or_else(|| panic!("ss endpoint {s:?}"));
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    (addr.to_string(), if port == "*" { 0 } else { port.parse().unwrap() })
}

fn ss() -> Vec<Ss> {
    let out = Command::new("ss").arg("-tanpH").output().expect("ss (iproute2) is installed");
    assert!(out.status.success(), "ss failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 5 {
                return None;
            }
            let (la, lp) = endpoint(f[3]);
            let (ra, rp) = endpoint(f[4]);
            let process = f[5..].join(" ");
            let owners = process
                .split("pid=")
                .skip(1)
                .map(|p| {
                    let digits = |s: &str| s.chars().take_while(char::is_ascii_digit).collect::<String>();
                    let fd = p.split("fd=").nth(1).expect("fd= follows pid=");
                    (digits(p).parse().unwrap(), digits(fd).parse().unwrap())
                })
                .collect();
            Some(Ss {
                state: netstat_state(f[0]).to_string(),
                recv_q: f[1].parse().unwrap(),
                send_q: f[2].parse().unwrap(),
                key: (la, lp, ra, rp),
                owners,
            })
        })
        .collect()
}

/// ss's state names as netstat (and snap) spell them.
fn netstat_state(ss: &str) -> &str {
    match ss {
        "ESTAB" => "ESTABLISHED",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        "FIN-WAIT-1" => "FIN_WAIT1",
        "FIN-WAIT-2" => "FIN_WAIT2",
        "TIME-WAIT" => "TIME_WAIT",
        "UNCONN" => "CLOSE",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "LAST-ACK" => "LAST_ACK",
        "LISTEN" => "LISTEN",
        "CLOSING" => "CLOSING",
        other => panic!("unknown ss state {other}"),
    }
}

fn same_key(snap: &Socket, ss: &Key) -> bool {
    let addr = |a: &str, b: &str| a == b || (b == "*" && (a == "0.0.0.0" || a == "::"));
    addr(&snap.local_addr, &ss.0)
        && snap.local_port == ss.1
        && addr(&snap.remote_addr, &ss.2)
        && snap.remote_port == ss.3
}

/// Polls ss until `ok` holds (the kernel finishes a close on loopback within
/// microseconds, but asynchronously).
fn wait_for(what: &str, ok: impl Fn(&[Ss]) -> bool) {
    let start = Instant::now();
    loop {
        if ok(&ss()) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}: {:#?}", ss());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Connects to `listener` and accepts: (client, server).
fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, peer) = listener.accept().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    server.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (client, server)
}

/// Closes `client` first and waits until `server` has read the FIN.
fn close_client_first(client: TcpStream, server: &mut TcpStream) {
    drop(client);
    let mut buf = [0u8; 16];
    assert_eq!(server.read(&mut buf).unwrap(), 0, "the server sees end of stream");
}

/// Runs `snap collect` and reads the socket scan back.
///
/// ss runs before and after, not during: a fork of this process (ss's own Command)
/// briefly holds copies of its sockets, and snap would rightly see them owned by it.
fn collect(dir: &Path) -> Vec<Socket> {
    let out = Command::new(env!("CARGO_BIN_EXE_snap"))
        .args(["collect", "--window", "0", "--quiet", "-o"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "snap collect failed: {}", String::from_utf8_lossy(&out.stderr));
    let path = String::from_utf8(out.stdout).unwrap().lines().last().expect("bundle path on stdout").to_string();
    let bundle = Bundle::open(Path::new(&path)).unwrap();
    let data = bundle.read(names::SOCKETS).unwrap().expect("sockets scan present");
    parse_jsonl::<Socket>(&data).unwrap()
}

#[test]
fn tcp_sockets_agree_with_ss() {
    let me = std::process::id();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let lport = listener.local_addr().unwrap().port();

    let (mut est_client, est_server) = pair(&listener);
    est_client.write_all(&[b'x'; 100]).unwrap(); // left unread: the server's Recv-Q
    let (cw_client, mut cw_server) = pair(&listener);
    let cw_peer = cw_client.local_addr().unwrap();
    close_client_first(cw_client, &mut cw_server);
    // The active closer ends in TIME_WAIT once the server closes its side too.
    let (tw_client, mut tw_server) = pair(&listener);
    let tw_port = tw_client.local_addr().unwrap().port();
    close_client_first(tw_client, &mut tw_server);
    drop(tw_server);

    let v6 = match TcpListener::bind("[::1]:0") {
        Ok(l) => {
            let (c, s) = pair(&l);
            Some((l, c, s))
        }
        Err(e) => {
            eprintln!("note: no IPv6 loopback ({e}); the IPv6 sockets are not tested");
            None
        }
    };
    let mut ports = vec![lport];
    ports.extend(v6.as_ref().map(|(l, _, _)| l.local_addr().unwrap().port()));

    let est_key = |s: &TcpStream| -> Key {
        let (l, r): (SocketAddr, SocketAddr) = (s.local_addr().unwrap(), s.peer_addr().unwrap());
        (l.ip().to_string(), l.port(), r.ip().to_string(), r.port())
    };
    let lo = "127.0.0.1".to_string();
    wait_for("TIME-WAIT, FIN-WAIT-2, CLOSE-WAIT and unread data to show", |all| {
        let st = |k: &Key| all.iter().find(|s| &s.key == k).map(|s| (s.state.as_str(), s.recv_q));
        st(&(lo.clone(), tw_port, lo.clone(), lport)) == Some(("TIME_WAIT", 0))
            && st(&(lo.clone(), cw_peer.port(), lo.clone(), lport)) == Some(("FIN_WAIT2", 0))
            && st(&est_key(&cw_server)) == Some(("CLOSE_WAIT", 0))
            && st(&est_key(&est_server)) == Some(("ESTABLISHED", 100))
    });

    // The test's sockets: on loopback, with one of its listening ports at one end.
    let ours = |k: &Key| {
        let lo = |a: &str| a == "127.0.0.1" || a == "::1" || a == "::ffff:127.0.0.1";
        (lo(&k.0) && ports.contains(&k.1)) || (lo(&k.2) && ports.contains(&k.3))
    };
    let before: Vec<Ss> = ss().into_iter().filter(|s| ours(&s.key)).collect();
    let out = tempfile::tempdir().unwrap();
    let snap = collect(out.path());
    let theirs: Vec<Ss> = ss().into_iter().filter(|s| ours(&s.key)).collect();
    assert_eq!(before, theirs, "the test's sockets did not change while snap ran");
    let snap: Vec<&Socket> = snap
        .iter()
        .filter(|s| matches!(s.proto.as_str(), "tcp" | "tcp6"))
        .filter(|s| ours(&(s.local_addr.clone(), s.local_port, s.remote_addr.clone(), s.remote_port)))
        .collect();

    for t in &theirs {
        let found: Vec<&&Socket> = snap.iter().filter(|s| same_key(s, &t.key)).collect();
        assert_eq!(found.len(), 1, "snap has exactly one socket for ss's {t:?}; snap has {snap:#?}");
        let s = found[0];
        assert_eq!(s.state, t.state, "state of {t:?}");
        assert_eq!(s.recv_q, t.recv_q, "Recv-Q of {t:?}");
        if t.state != "LISTEN" {
            // For listeners ss's Send-Q is the backlog limit, which /proc/net/tcp lacks.
            assert_eq!(s.send_q, t.send_q, "Send-Q of {t:?}");
        }
        let owners: BTreeSet<(u32, u32)> = s.owners.iter().map(|o| (o.pid, o.fd)).collect();
        assert_eq!(owners, t.owners, "owners of {t:?}");
    }
    assert_eq!(snap.len(), theirs.len(), "the same sockets: snap {snap:#?}\nss {theirs:#?}");

    // Every socket the test made, with the state and owner it must have.
    let find = |k: Key| -> &Socket {
        snap.iter().find(|s| same_key(s, &k)).unwrap_or_else(|| panic!("snap lacks {k:?}: {snap:#?}"))
    };
    let any4 = "0.0.0.0".to_string();
    let mut expect: Vec<(Key, &str, Option<i32>)> = vec![
        ((lo.clone(), lport, any4, 0), "LISTEN", Some(listener.as_raw_fd())),
        (est_key(&est_client), "ESTABLISHED", Some(est_client.as_raw_fd())),
        (est_key(&est_server), "ESTABLISHED", Some(est_server.as_raw_fd())),
        (est_key(&cw_server), "CLOSE_WAIT", Some(cw_server.as_raw_fd())),
        ((lo.clone(), cw_peer.port(), lo.clone(), lport), "FIN_WAIT2", None),
        ((lo.clone(), tw_port, lo.clone(), lport), "TIME_WAIT", None),
    ];
    if let Some((l, c, s)) = &v6 {
        expect.push((("::1".into(), l.local_addr().unwrap().port(), "::".into(), 0), "LISTEN", Some(l.as_raw_fd())));
        expect.push((est_key(c), "ESTABLISHED", Some(c.as_raw_fd())));
        expect.push((est_key(s), "ESTABLISHED", Some(s.as_raw_fd())));
    }
    for (key, state, fd) in &expect {
        let s = find(key.clone());
        assert_eq!(&s.state, state, "{key:?}");
        let owners: Vec<(u32, u32)> = s.owners.iter().map(|o| (o.pid, o.fd)).collect();
        match fd {
            Some(fd) => assert_eq!(owners, [(me, *fd as u32)], "owner of {key:?}"),
            None => assert!(owners.is_empty(), "{key:?} belongs to no process: {owners:?}"),
        }
        assert_eq!(s.proto, if key.0.contains(':') { "tcp6" } else { "tcp" });
    }
    assert_eq!(find(est_key(&est_server)).recv_q, 100);
    assert_eq!(snap.len(), expect.len(), "no other socket on the test's ports: {snap:#?}");
    drop((listener, est_client, est_server, cw_server, v6));
}
