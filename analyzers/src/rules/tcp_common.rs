//! What the `tcp.*` rules share: the capture analyzed once per analysis by the TCP
//! engine ([`crate::tcp`]), which end of a connection is this host, and how connections
//! and packets are cited.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;

use snap_bundle::{names, EntryReader};

use crate::tcp::{self, Connection, PacketRef, Report};
use crate::{Input, Need, Skip};

/// The entries every tcp rule reads.
pub const INPUTS: &[&str] =
    &["capture/window.pcap", "proc/net/fib_trie, proc/net/if_inet6 (optional: which end of a connection is this host)"];

/// The capture's analysis, computed by the first rule that asks. A directory bundle's
/// capture is streamed from its file (it may be gigabytes), an archive's analyzed in
/// place.
pub fn report(input: &Input) -> Need<Rc<Report>> {
    Need::clone(&input.shared("tcp::report", || {
        let options = tcp::Options { local_ips: (*local_ips(input)).clone(), ..tcp::Options::default() };
        let report = match input.stream(names::CAPTURE)? {
            EntryReader::Slice(bytes) => tcp::analyze(bytes, &options),
            EntryReader::File(file) => tcp::analyze_stream(file, &options),
            EntryReader::Mapped(map) => tcp::analyze_mapped(map.bytes(), &options, |done| map.release_before(done)),
        };
        report.map(Rc::new).map_err(|e| Skip::bad(names::CAPTURE, e))
    }))
}

/// This host's addresses: LOCAL routes of proc/net/fib_trie and proc/net/if_inet6.
/// None when the bundle has neither (then every connection's server is taken as local).
/// Read once per analysis and shared by the rules that ask.
pub fn local_ips(input: &Input) -> Rc<Option<HashSet<IpAddr>>> {
    input.shared("tcp_common::local_ips", || read_local_ips(input))
}

fn read_local_ips(input: &Input) -> Option<HashSet<IpAddr>> {
    let mut out = HashSet::new();
    let mut found = false;
    if let Ok(trie) = input.text("proc/net/fib_trie") {
        found = true;
        let mut last: Option<Ipv4Addr> = None;
        for line in trie.lines() {
            let t = line.trim_start();
            if let Some(a) = t.strip_prefix("|-- ") {
                last = a.trim().parse().ok();
            } else if t.starts_with("/32 host LOCAL") {
                if let Some(a) = last {
                    out.insert(IpAddr::V4(a));
                }
            }
        }
    }
    if let Ok(v6) = input.text("proc/net/if_inet6") {
        found = true;
        for line in v6.lines() {
            let Some(hex) = line.split_whitespace().next().filter(|h| h.len() == 32) else { continue };
            if let Ok(n) = u128::from_str_radix(hex, 16) {
                out.insert(IpAddr::V6(Ipv6Addr::from(n)));
            }
        }
    }
    found.then_some(out)
}

/// Seconds, rounded to the millisecond, for facts.
pub fn secs(ns: i64) -> f64 {
    (ns as f64 / 1e6).round() / 1e3
}

/// `packet 12 (01:18:37.495800)`.
pub fn packet(p: PacketRef) -> String {
    format!("packet {} ({})", p.number, snap_bundle::time::clock_utc(p.time_ns, false))
}

/// `connection 3 10.0.0.2:40000 -> 10.0.0.1:80`.
pub fn conn(c: &Connection) -> String {
    format!("connection {} {} -> {}", c.id, c.client, c.server)
}

/// The median of some values (the lower middle for an even count).
pub fn median(mut v: Vec<i64>) -> Option<i64> {
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied()
}

/// The handshake RTT of a connection, else its smallest ACK RTT.
pub fn rtt_ns(c: &Connection) -> Option<i64> {
    c.initial_rtt_ns.or(c.min_ack_rtt_ns)
}

#[cfg(test)]
mod tests {
    use super::super::testing::bundle_with_bytes;
    use super::super::{
        tcp_capture_gaps::CaptureGaps, tcp_read_timeout::ReadTimeout, tcp_slow_response::SlowResponse,
        tcp_zero_window::ZeroWindow,
    };
    use crate::tcp::synth::{write_pcap, Conversation};
    use crate::tcp::Side;
    use crate::{Input, Rule, Severity, Skip};

    const T0: i64 = 1_700_000_000_000_000_000;
    const MS: i64 = 1_000_000;

    fn run(rule: &dyn Rule, c: &Conversation) -> Vec<crate::Finding> {
        let pcap = write_pcap(&c.segments(), false);
        let b = bundle_with_bytes(&[("capture/window.pcap", &pcap)]);
        rule.evaluate(&Input::new(&b)).unwrap()
    }

    fn exchange(server_ms: i64) -> Conversation {
        let mut c = Conversation::new("10.0.0.2:40000", "10.0.0.1:8080", T0);
        c.handshake(MS).data(Side::Client, 100).wait(server_ms * MS).data(Side::Server, 500).ack(Side::Client);
        c.wait(5 * MS).fin(Side::Client).fin(Side::Server).ack(Side::Client);
        c
    }

    #[test]
    fn slow_responses_by_service_and_quiet_when_fast() {
        let f = run(&SlowResponse, &exchange(2_000));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!((f[0].subject.as_str(), f[0].severity), (":8080", Severity::Warning));
        assert!((f[0].facts["p99_s"].as_f64().unwrap() - 2.0).abs() < 0.05, "{:#?}", f[0]);
        assert!(run(&SlowResponse, &exchange(20)).is_empty());
    }

    #[test]
    fn a_zero_window_names_the_receiver() {
        let mut c = Conversation::new("10.0.0.2:40000", "10.0.0.1:8080", T0);
        c.handshake(MS).data(Side::Client, 1000).window(Side::Server, 0).ack(Side::Server);
        c.wait(200 * MS).window(Side::Server, 500).ack(Side::Server).data(Side::Client, 100).ack(Side::Server);
        let f = run(&ZeroWindow, &c);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].subject, "10.0.0.1:8080");
        assert_eq!(f[0].facts["zero_windows"], 1);
        assert!(run(&ZeroWindow, &exchange(20)).is_empty());
    }

    #[test]
    fn a_segment_the_capture_missed_is_a_gap() {
        let mut c = Conversation::new("10.0.0.2:40000", "10.0.0.1:8080", T0);
        c.handshake(MS).data(Side::Client, 100).lose(Side::Client, 100).data(Side::Client, 100).ack(Side::Server);
        let f = run(&CaptureGaps, &c);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(f[0].facts["lost_segments"].as_u64().unwrap() >= 1, "{:#?}", f[0]);
        assert!(run(&CaptureGaps, &exchange(20)).is_empty());
    }

    #[test]
    fn an_upload_that_ends_with_fin_is_not_a_read_timeout() {
        // Regression: a bulk upload ended by shutdown(SHUT_WR) right after its last bytes
        // was reported as a client giving up after 0.000 s.
        let mut c = Conversation::new("10.0.0.2:40000", "10.0.0.1:7002", T0);
        c.handshake(MS).data(Side::Client, 1000).data(Side::Client, 1000).fin(Side::Client);
        c.wait(MS).ack(Side::Server).fin(Side::Server).ack(Side::Client);
        assert!(run(&ReadTimeout, &c).is_empty());
        // The same request waited on for 3 s, then a FIN, then the late answer: a timeout.
        let mut c = Conversation::new("10.0.0.2:40000", "10.0.0.1:7001", T0);
        c.handshake(MS).data(Side::Client, 100).ack(Side::Server).wait(3_000 * MS).fin(Side::Client);
        c.ack(Side::Server).wait(2_000 * MS).data(Side::Server, 50).rst(Side::Client);
        let f = run(&ReadTimeout, &c);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!((f[0].facts["client_timeout_s"].as_f64().unwrap() - 3.0).abs() < 0.01, "{:#?}", f[0]);
        assert!((f[0].facts["server_time_s"].as_f64().unwrap() - 5.0).abs() < 0.01, "{:#?}", f[0]);
    }

    #[test]
    fn local_addresses_from_fib_trie_and_if_inet6() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     +-- 10.214.1.0/24 2 0 2\n        |-- 10.214.1.0\n           /24 link UNICAST\n        |-- 10.214.1.1\n           /32 host LOCAL\n     |-- 10.214.1.255\n        /32 link BROADCAST\n";
        let v6 = "00000000000000000000000000000001 01 80 10 80       lo\n";
        let b = super::super::testing::bundle_with(&[("proc/net/fib_trie", trie), ("proc/net/if_inet6", v6)]);
        let ips = (*super::local_ips(&Input::new(&b))).clone().unwrap();
        let want: std::collections::HashSet<std::net::IpAddr> =
            ["10.214.1.1".parse().unwrap(), "::1".parse().unwrap()].into_iter().collect();
        assert_eq!(ips, want);
        let none = super::super::testing::bundle_with(&[("proc/loadavg", "0 0 0 1/1 1\n")]);
        assert_eq!(*super::local_ips(&Input::new(&none)), None);
    }

    #[test]
    fn without_a_capture_the_rules_are_not_evaluated() {
        let b = super::super::testing::bundle_with(&[("proc/loadavg", "0 0 0 1/1 1\n")]);
        assert_eq!(SlowResponse.evaluate(&Input::new(&b)), Err(Skip::missing("capture/window.pcap")));
    }
}
