//! `tcp.retransmission`: segments sent again, per service, with the kinds Wireshark
//! tells apart (plain retransmissions after a timeout, fast retransmissions after
//! duplicate ACKs, spurious ones of data the receiver already had), the retransmission
//! timeouts seen, the worst connections and peers, and the host's own counter over the
//! window as a cross-check.

use serde_json::json;
use snap_bundle::names;

use super::net_counters;
use super::tcp_common::{self, conn, packet, secs};
use crate::tcp::ServiceKey;
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct Retransmission;

/// Retransmitted share of data packets from which the rule warns, and is critical;
/// below MIN_RETRANSMISSIONS a service is not judged.
const WARN_PERCENT: f64 = 1.0;
const CRITICAL_PERCENT: f64 = 10.0;
const MIN_RETRANSMISSIONS: u64 = 10;

impl Rule for Retransmission {
    fn id(&self) -> &'static str {
        "tcp.retransmission"
    }

    fn detects(&self) -> &'static str {
        "TCP retransmissions in the capture per service: loss on the path, with fast and spurious retransmissions told apart"
    }

    fn thresholds(&self) -> &'static str {
        "warning when at least 10 segments of a service were retransmitted and they are 1 % \
         or more of its data packets, critical from 10 %. Counted as tshark's \
         tcp.analysis.retransmission (all kinds). A healthy LAN loses well under 0.1 %; at 1 % \
         TCP's throughput already drops several-fold (it halves its window at each loss), and \
         each timeout-driven retransmission stalls the connection for an RTO (200 ms at least \
         on Linux). Fast retransmissions (after 3 duplicate ACKs) mean loss recovered quickly; \
         plain ones mean a timeout expired; spurious ones (data the receiver already \
         acknowledged) mean the RTO is too short for the path's delay, not loss."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["capture/window.pcap", "samples/<n>/proc/net/snmp (optional: the host's RetransSegs in the window)"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let report = tcp_common::report(input)?;
        let host = net_counters::window(input, "proc/net/snmp").ok().flatten();
        let mut out = Vec::new();
        for (key, s) in &report.services {
            let t = &s.totals;
            if t.retransmissions < MIN_RETRANSMISSIONS || t.data_packets == 0 {
                continue;
            }
            let percent = t.retransmissions as f64 * 100.0 / t.data_packets as f64;
            if percent < WARN_PERCENT {
                continue;
            }
            let severity = if percent >= CRITICAL_PERCENT { Severity::Critical } else { Severity::Warning };
            let service = key.to_string();
            let plain = t.retransmissions.saturating_sub(t.fast_retransmissions + t.spurious_retransmissions);
            let rto_median = s.rto.quantile(0.5).map(|ns| secs(ns as i64));
            let worst: Vec<_> =
                report.notable.retransmissions.connections().filter(|c| ServiceKey::of(c) == *key).take(5).collect();
            let mut ev = Evidence::entry(names::CAPTURE);
            for c in &worst {
                let r = c.client_sent.retransmissions + c.server_sent.retransmissions;
                let first = c.client_sent.first_retransmission.or(c.server_sent.first_retransmission);
                ev = ev.line(format!(
                    "{}: {r} retransmissions of {} data packets ({:.1} %){}",
                    conn(c),
                    c.client_sent.data_packets + c.server_sent.data_packets,
                    c.retransmission_rate() * 100.0,
                    first.map_or(String::new(), |p| format!(", first at {}", packet(p)))
                ));
            }
            let mut f = Finding::new(
                self.id(),
                severity,
                service.clone(),
                format!(
                    "{} of {} data packets retransmitted on {service} ({percent:.1} %): {plain} after a timeout, {} fast, {} spurious{}",
                    t.retransmissions,
                    t.data_packets,
                    t.fast_retransmissions,
                    t.spurious_retransmissions,
                    rto_median.map_or(String::new(), |r| format!("; median RTO {:.0} ms", r * 1000.0))
                ),
            )
            .evidence(ev)
            .fact("service", service.clone())
            .fact("retransmissions", t.retransmissions)
            .fact("fast_retransmissions", t.fast_retransmissions)
            .fact("spurious_retransmissions", t.spurious_retransmissions)
            .fact("timeout_retransmissions", plain)
            .fact("data_packets", t.data_packets)
            .fact("rate_percent", (percent * 10.0).round() / 10.0)
            .fact("dup_acks", t.dup_acks)
            .fact("rto_median_s", rto_median)
            .fact("rto_max_s", (t.max_rto_ns > 0).then(|| secs(t.max_rto_ns)))
            .fact(
                "worst_connections",
                worst
                    .iter()
                    .map(|c| json!({"connection": c.id, "client": c.client.to_string(), "server": c.server.to_string(),
                                    "retransmissions": c.client_sent.retransmissions + c.server_sent.retransmissions,
                                    "rate_percent": (c.retransmission_rate() * 1000.0).round() / 10.0}))
                    .collect::<Vec<_>>(),
            );
            if let Some(w) = &host {
                if let Some(n) = w.delta("Tcp", "RetransSegs") {
                    f = f.fact("host_retrans_segs_in_window", n).evidence(
                        Evidence::entry("samples/<n>/proc/net/snmp")
                            .line(format!("Tcp RetransSegs +{n} {} (all of the host's connections)", w.label())),
                    );
                }
            }
            let advice = if t.spurious_retransmissions * 2 > t.retransmissions {
                "Most retransmissions are spurious: the data had arrived, the sender's timer fired \
                 too early. The path's delay varies more than the RTO allows (bufferbloat, a busy \
                 receiver acknowledging late); look at queueing on the path and at the receiver's \
                 load rather than at loss."
            } else {
                "Segments are lost between the two ends. Check the interfaces on the path for \
                 errors and drops (ip -s link, ethtool -S: rx_missed, rx_crc_errors, fifo), \
                 duplex and MTU mismatches, a saturated link or policer, and the other host's \
                 receive queue (softnet_stat drops). Timeout retransmissions stall each \
                 connection for an RTO; many fast retransmissions with few timeouts mean the loss \
                 is light and recovered well."
            };
            out.push(f.advice(advice));
        }
        Ok(out)
    }
}
