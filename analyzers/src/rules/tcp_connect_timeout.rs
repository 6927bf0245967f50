//! `tcp.connect_timeout`: connection attempts whose SYNs got no SYN-ACK: retransmitted
//! into silence (a peer or firewall dropping them) or answered by a RST (nothing
//! listening).

use std::collections::BTreeMap;

use serde_json::json;
use snap_bundle::names;

use super::tcp_common::{self, conn, packet, secs};
use crate::tcp::Connection;
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct ConnectTimeout;

impl Rule for ConnectTimeout {
    fn id(&self) -> &'static str {
        "tcp.connect_timeout"
    }

    fn detects(&self) -> &'static str {
        "SYNs retransmitted with no SYN-ACK, or answered by RST: an unreachable, dropping or closed peer"
    }

    fn thresholds(&self) -> &'static str {
        "warning for any connection attempt in the capture whose SYN got no SYN-ACK, one \
         finding per destination: retransmitted SYNs with no answer mean the path or a \
         firewall drops them (or the peer is down); a RST means nothing listens on the port \
         (refused). Linux retransmits a SYN after 1 s, then 2, 4, ... (tcp_syn_retries, 6 by \
         default: about 127 s); a client whose connect timeout is shorter than about 3 s gives \
         up before the first retransmission has had its chance."
    }

    fn inputs(&self) -> &'static [&'static str] {
        tcp_common::INPUTS
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let report = tcp_common::report(input)?;
        let mut by_dest: BTreeMap<String, Vec<&Connection>> = BTreeMap::new();
        for c in report.notable.connect_failures.connections() {
            by_dest.entry(c.server.to_string()).or_default().push(c);
        }
        let mut out = Vec::new();
        for (dest, conns) in by_dest {
            let attempts = conns.len();
            let refused = conns.iter().filter(|c| c.server_sent.rsts > 0).count();
            let syn_retx: u64 = conns.iter().map(|c| u64::from(c.syn_count.saturating_sub(1))).sum();
            let waited = conns.iter().map(|c| c.last.time_ns - c.first.time_ns).max().unwrap_or(0);
            let summary = if refused == attempts {
                format!("{attempts} connection attempt(s) to {dest} refused (RST to the SYN)")
            } else {
                format!(
                    "{attempts} connection attempt(s) to {dest} got no SYN-ACK: {syn_retx} SYN retransmission(s) over {:.1} s{}",
                    secs(waited),
                    if refused > 0 { format!(", {refused} refused") } else { String::new() }
                )
            };
            let mut ev = Evidence::entry(names::CAPTURE);
            for c in conns.iter().take(5) {
                let first = c.syn.map_or(String::new(), |p| format!("first SYN at {}, ", packet(p)));
                ev = ev.line(format!(
                    "{}: {first}{} SYN(s), last packet at {}{}",
                    conn(c),
                    c.syn_count,
                    packet(c.last),
                    if c.server_sent.rsts > 0 { ", answered by RST" } else { ", no answer" }
                ));
            }
            let advice = if refused == attempts {
                format!(
                    "Nothing listens on {dest} (the host answered with a RST): check that the \
                     service runs and listens on that address and port, and that clients use \
                     the right one."
                )
            } else {
                format!(
                    "SYNs to {dest} go unanswered: check that the host is up, routes and \
                     firewalls (security groups, nftables/iptables DROP rules) let the SYN \
                     through and the SYN-ACK back. Give clients a connect timeout of at least \
                     the 1 s initial retransmission timeout plus a round trip, about 3 s, so \
                     that one lost SYN is survived, and fail over to another address rather \
                     than waiting the kernel's full ~2 minutes of retries."
                )
            };
            out.push(
                Finding::new(self.id(), Severity::Warning, dest.clone(), summary)
                    .evidence(ev)
                    .fact("destination", dest)
                    .fact("attempts", attempts)
                    .fact("refused", refused)
                    .fact("syn_retransmissions", syn_retx)
                    .fact("longest_wait_s", secs(waited))
                    .fact(
                        "examples",
                        conns
                            .iter()
                            .take(10)
                            .map(|c| {
                                json!({"connection": c.id, "client": c.client.to_string(), "syns": c.syn_count,
                                            "refused": c.server_sent.rsts > 0, "first_packet": c.first.number})
                            })
                            .collect::<Vec<_>>(),
                    )
                    .advice(advice),
            );
        }
        Ok(out)
    }
}
