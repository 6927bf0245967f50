//! `net.retransmits`: the share of TCP segments sent again in the sampling window, from
//! the `Tcp: OutSegs` and `RetransSegs` counters of the first and last
//! `samples/<n>/proc/net/snmp`, with the TcpExt counters that tell how the losses were
//! detected (`TCPTimeouts`: retransmission timeouts, the slow kind; `TCPFastRetrans`:
//! duplicate ACKs or SACK; `TCPLostRetransmit`: a retransmission lost again) and the
//! sockets of the scan that are retransmitting now, by peer.
//!
//! Since-boot figures say nothing about now (a lossy hour last week dilutes into
//! months of clean traffic, or dominates a freshly booted box), so without a window of
//! two samples the rule is not evaluated; the since-boot rate is only shown as a fact
//! next to a window finding.

use std::collections::BTreeMap;

use serde_json::json;
use snap_bundle::names;

use super::net_counters::{self, Counters, NETSTAT, SNMP};
use crate::samples::round1;
use crate::{Evidence, Finding, Input, Need, Rule, Severity, Skip};

pub struct Retransmits;

/// Retransmitted share of sent segments, in percent, from which the rule warns and is critical.
const WARN_PERCENT: f64 = 2.0;
const CRITICAL_PERCENT: f64 = 10.0;
/// Segments sent in the window below which no rate is judged.
const MIN_SEGMENTS: u64 = 1000;
/// Peers listed in the facts.
const TOP_PEERS: usize = 10;

const EXT: &[(&str, &str)] = &[
    ("TcpExt", "TCPTimeouts"),
    ("TcpExt", "TCPLostRetransmit"),
    ("TcpExt", "TCPFastRetrans"),
    ("TcpExt", "TCPSlowStartRetrans"),
    ("TcpExt", "TCPSynRetrans"),
    ("TcpExt", "TCPLossProbes"),
    ("TcpExt", "TCPSpuriousRTOs"),
];

const NEED: &str = "samples/<n>/proc/net/snmp (a sampling window of at least 2 samples)";

impl Rule for Retransmits {
    fn id(&self) -> &'static str {
        "net.retransmits"
    }

    fn detects(&self) -> &'static str {
        "a high share of TCP segments retransmitted in the sampling window: packet loss on the path or an overloaded peer"
    }

    fn thresholds(&self) -> &'static str {
        "retransmitted segments (Tcp RetransSegs) over segments sent (Tcp OutSegs) between the \
         first and last samples of the window: warning from 2 %, critical from 10 %, judged only \
         when at least 1000 segments were sent in the window (fewer give a rate that a handful of \
         lost packets swings). A healthy LAN or data-centre path retransmits well under 1 %; a \
         few percent already cut a TCP flow's throughput severalfold (throughput falls with the \
         square root of the loss rate) and every retransmission timeout stalls a request for at \
         least 200 ms; 10 % means a broken link, a saturated queue or a peer that drops. Not \
         evaluated without two samples: since-boot counters mix the past with now, and are \
         shown only as a fact beside a window finding; a sos report, which has no window, is \
         judged on them with the same thresholds one level lower. TCPTimeouts, TCPLostRetransmit, \
         TCPFastRetrans and the scan's retransmitting sockets by peer say how and where."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["samples/<n>/proc/net/snmp", "samples/<n>/proc/net/netstat", SNMP, names::SOCKETS]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let Some(w) = net_counters::window(input, SNMP)? else {
            if input.sos().is_some() {
                return self.since_boot(input);
            }
            return Err(Skip::missing(NEED));
        };
        let (Some(out), Some(retrans)) = (w.delta("Tcp", "OutSegs"), w.delta("Tcp", "RetransSegs")) else {
            return Err(Skip::bad(&w.last.entry, "no Tcp OutSegs and RetransSegs counters"));
        };
        if out < MIN_SEGMENTS {
            return Ok(Vec::new());
        }
        let percent = retrans as f64 * 100.0 / out as f64;
        if percent < WARN_PERCENT {
            return Ok(Vec::new());
        }
        let severity = if percent >= CRITICAL_PERCENT { Severity::Critical } else { Severity::Warning };
        let label = w.label();
        let mut summary = format!("{:.1} % of TCP segments retransmitted {label} ({retrans} of {out} sent)", percent);
        let mut f = Finding::new(self.id(), severity, "tcp", String::new())
            .fact("scope", "window")
            .fact("out_segs", out)
            .fact("retrans_segs", retrans)
            .fact("retrans_percent", round2(percent));
        if let Some(s) = w.seconds {
            f = f.fact("seconds", round2(s)).fact("retrans_per_second", round1(retrans as f64 / s));
        }
        for e in w.evidence(&[("Tcp", "OutSegs"), ("Tcp", "RetransSegs")]) {
            f = f.evidence(e);
        }
        // Since boot, for comparison only.
        let boot =
            net_counters::since_boot(input, SNMP).ok().map(|r| r.counters).unwrap_or_else(|| w.last.counters.clone());
        if let Some(p) = since_boot_percent(&boot) {
            f = f.fact("since_boot_retrans_percent", round2(p));
        }
        // How the losses were detected.
        if let Ok(Some(ext)) = net_counters::window(input, NETSTAT) {
            let ext_facts: serde_json::Map<String, serde_json::Value> =
                EXT.iter().filter_map(|(g, n)| Some((n.to_string(), ext.delta(g, n)?.into()))).collect();
            if let (Some(t), Some(l)) = (ext.delta("TcpExt", "TCPTimeouts"), ext.delta("TcpExt", "TCPLostRetransmit")) {
                summary.push_str(&format!(", {t} retransmission timeouts, {l} retransmissions lost again"));
            }
            f = f.fact("tcpext", serde_json::Value::Object(ext_facts));
            for e in ext.evidence(EXT) {
                f = f.evidence(e);
            }
        }
        // Where: sockets retransmitting now, by peer.
        if let Ok(sockets) = input.sockets() {
            let mut by_peer: BTreeMap<String, (usize, u64)> = BTreeMap::new();
            for s in sockets.iter().filter(|s| s.proto.starts_with("tcp") && s.retransmits > 0) {
                let e = by_peer.entry(s.remote_addr.clone()).or_default();
                e.0 += 1;
                e.1 += u64::from(s.retransmits);
            }
            if !by_peer.is_empty() {
                let mut peers: Vec<(String, (usize, u64))> = by_peer.into_iter().collect();
                peers.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then_with(|| a.0.cmp(&b.0)));
                let top = &peers[..peers.len().min(TOP_PEERS)];
                let mut ev = Evidence::entry(names::SOCKETS);
                for (peer, (socks, r)) in top {
                    ev = ev.line(format!(
                        "{peer}: {socks} sockets retransmitting, {r} retransmissions of their oldest segment"
                    ));
                }
                let list: Vec<serde_json::Value> = top
                    .iter()
                    .map(|(peer, (socks, r))| json!({"peer": peer, "sockets": socks, "retransmits": r}))
                    .collect();
                f = f.fact("retransmitting_peers", list).evidence(ev);
            }
        }
        f.summary = summary;
        Ok(vec![f.advice(
            "Find where the loss is. Check the interfaces' error and drop counters (ip -s link, \
             ethtool -S: rx_missed, rx_no_buffer, crc errors), the switch ports and duplex; \
             qdisc drops (tc -s qdisc) point at a saturated uplink, rx drops at a full ring \
             buffer or a CPU too busy with softirqs. Many timeouts against few fast \
             retransmissions mean whole windows are lost (a black hole, a peer that stops \
             answering, or a stateful firewall dropping). If the retransmitting sockets share one \
             peer, the problem is that peer or the path to it: compare with `snap show BUNDLE \
             netstat` and capture the traffic to it.",
        )])
    }
}

impl Retransmits {
    /// A sos report's since-boot share: it has no sampling window. The same thresholds,
    /// one level lower, since the figure mixes the past with now.
    fn since_boot(&self, input: &Input) -> Need<Vec<Finding>> {
        let r = net_counters::since_boot(input, SNMP)?;
        let (Some(out), Some(retrans)) = (r.counters.get("Tcp", "OutSegs"), r.counters.get("Tcp", "RetransSegs"))
        else {
            return Err(Skip::bad(&r.entry, "no Tcp OutSegs and RetransSegs counters"));
        };
        if out < MIN_SEGMENTS {
            return Ok(Vec::new());
        }
        let percent = retrans as f64 * 100.0 / out as f64;
        if percent < WARN_PERCENT {
            return Ok(Vec::new());
        }
        let severity = if percent >= CRITICAL_PERCENT { Severity::Warning } else { Severity::Info };
        let span = net_counters::Span::SinceBoot(r);
        let mut f = Finding::new(
            self.id(),
            severity,
            "tcp",
            format!(
                "{percent:.1} % of TCP segments retransmitted since boot ({retrans} of {out} sent; a sos report \
                 has no sampling window, so this mixes the past with now and is one level lower)"
            ),
        )
        .fact("scope", "since_boot")
        .fact("out_segs", out)
        .fact("retrans_segs", retrans)
        .fact("retrans_percent", round2(percent));
        for e in span.evidence(&[("Tcp", "OutSegs"), ("Tcp", "RetransSegs")]) {
            f = f.evidence(e);
        }
        Ok(vec![f.advice(
            "Since-boot counters cannot say whether the loss is happening now. Take a snap bundle \
             (`snap collect`) on the host to measure it over a window; meanwhile check the \
             interfaces' error and drop counters (ip -s link, ethtool -S) in the report.",
        )])
    }
}

fn since_boot_percent(c: &Counters) -> Option<f64> {
    let out = c.get("Tcp", "OutSegs").filter(|o| *o > 0)?;
    Some(c.get("Tcp", "RetransSegs")? as f64 * 100.0 / out as f64)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::super::net_counters::fixtures::*;
    use super::*;
    use crate::rules::testing::bundle_with;

    fn window(a: (u64, u64), b: (u64, u64)) -> Vec<(&'static str, String)> {
        vec![
            ("manifest.json", manifest_json(3)),
            ("samples/0/proc/net/snmp", snmp(339549, a.0, a.1)),
            ("samples/1/proc/net/snmp", snmp(339600, (a.0 + b.0) / 2, a.1)),
            ("samples/2/proc/net/snmp", snmp(339700, b.0, b.1)),
            ("samples/0/proc/net/netstat", netstat(&[("TCPTimeouts", 452), ("TCPLostRetransmit", 0)])),
            ("samples/2/proc/net/netstat", netstat(&[("TCPTimeouts", 502), ("TCPLostRetransmit", 3)])),
            (SNMP, snmp(339700, b.0, b.1)),
        ]
    }

    fn run(entries: &[(&str, String)]) -> Need<Vec<Finding>> {
        let e: Vec<(&str, &str)> = entries.iter().map(|(a, b)| (*a, b.as_str())).collect();
        Retransmits.evaluate(&Input::new(&bundle_with(&e)))
    }

    #[test]
    fn quiet_on_the_idle_vm() {
        // The VM's counters, unchanged retransmissions over 400 segments.
        assert_eq!(run(&window((338523, 0), (338923, 0))).unwrap(), vec![]);
    }

    #[test]
    fn quiet_below_the_segment_minimum_even_when_lossy() {
        assert_eq!(run(&window((338523, 0), (339422, 300))).unwrap(), vec![]);
    }

    #[test]
    fn quiet_below_two_percent() {
        assert_eq!(run(&window((338523, 0), (348523, 199))).unwrap(), vec![]);
    }

    #[test]
    fn warning_from_two_percent() {
        let f = run(&window((338523, 0), (348523, 200))).unwrap();
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!((f.subject.as_str(), f.severity), ("tcp", Severity::Warning));
        assert_eq!(f.facts["out_segs"], 10000);
        assert_eq!(f.facts["retrans_segs"], 200);
        assert_eq!(f.facts["retrans_percent"], 2.0);
        assert_eq!(f.facts["seconds"], 2.0);
        assert_eq!(f.facts["retrans_per_second"], 100.0);
        assert_eq!(f.facts["tcpext"]["TCPTimeouts"], 50);
        assert_eq!(f.facts["tcpext"]["TCPLostRetransmit"], 3);
        assert_eq!(
            f.summary,
            "2.0 % of TCP segments retransmitted in the 2.0 s window (200 of 10000 sent), \
             50 retransmission timeouts, 3 retransmissions lost again"
        );
        assert_eq!(f.evidence[0].entry, "samples/0/proc/net/snmp");
        assert_eq!(f.evidence[1].values["Tcp.RetransSegs"], 200);
    }

    #[test]
    fn critical_from_ten_percent_with_peers() {
        let mut e = window((1000, 10), (3000, 410));
        let sock = |peer: &str, r: u32| {
            format!(
                r#"{{"proto":"tcp","local_addr":"10.0.0.2","local_port":22,"remote_addr":"{peer}","remote_port":5000,"state":"ESTABLISHED","recv_q":0,"send_q":9000,"timer":"on","timer_secs":0.4,"retransmits":{r},"inode":7,"owners":[]}}"#
            )
        };
        e.push((
            "scan/sockets.jsonl",
            [sock("192.0.2.9", 3), sock("192.0.2.9", 1), sock("198.51.100.1", 0)].join("\n"),
        ));
        let f = &run(&e).unwrap()[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.facts["retrans_percent"], 20.0);
        assert_eq!(f.facts["retransmitting_peers"], json!([{"peer": "192.0.2.9", "sockets": 2, "retransmits": 4}]));
    }

    #[test]
    fn not_evaluated_without_a_window() {
        let b = bundle_with(&[(SNMP, &snmp(1, 100000, 50000)), ("samples/0/proc/net/snmp", &snmp(1, 1, 1))]);
        assert_eq!(Retransmits.evaluate(&Input::new(&b)), Err(Skip::missing(NEED)));
    }
}
