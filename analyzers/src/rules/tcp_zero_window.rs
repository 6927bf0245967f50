//! `tcp.zero_window`: a receiver that advertised a zero window: it stopped reading
//! (its socket's receive buffer filled up), so the sender had to stop.

use std::collections::BTreeMap;

use serde_json::json;
use snap_bundle::names;

use super::tcp_common::{self, conn, packet};
use crate::tcp::{Connection, Side};
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct ZeroWindow;

impl Rule for ZeroWindow {
    fn id(&self) -> &'static str {
        "tcp.zero_window"
    }

    fn detects(&self) -> &'static str {
        "receivers that advertised a zero TCP window: an application that stopped reading its socket"
    }

    fn thresholds(&self) -> &'static str {
        "warning for any zero window in the capture, one finding per receiving endpoint (the \
         side that advertised it). A zero window is the receiver's kernel saying its socket \
         buffer is full because the application does not read: the sender stops and probes \
         until it reads again. It is never the network; it points at the receiving process \
         (busy, blocked, or deliberately applying back-pressure)."
    }

    fn inputs(&self) -> &'static [&'static str] {
        tcp_common::INPUTS
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let report = tcp_common::report(input)?;
        let mut by_receiver: BTreeMap<String, Vec<(&Connection, Side)>> = BTreeMap::new();
        for c in report.notable.zero_windows.connections() {
            for side in [Side::Client, Side::Server] {
                if c.sent_by(side).zero_windows > 0 {
                    let ep = if side == Side::Client { c.client } else { c.server };
                    by_receiver.entry(ep.to_string()).or_default().push((c, side));
                }
            }
        }
        let mut out = Vec::new();
        for (receiver, conns) in by_receiver {
            let zero: u64 = conns.iter().map(|(c, s)| c.sent_by(*s).zero_windows).sum();
            let probes: u64 = conns.iter().map(|(c, s)| c.sent_by(s.other()).zero_window_probes).sum();
            let mut ev = Evidence::entry(names::CAPTURE);
            for (c, side) in conns.iter().take(5) {
                let f = c.sent_by(*side);
                ev = ev.line(format!(
                    "{}: {} zero window(s) from the {}{}",
                    conn(c),
                    f.zero_windows,
                    side.as_str(),
                    f.first_zero_window.map_or(String::new(), |p| format!(", first at {}", packet(p)))
                ));
            }
            out.push(
                Finding::new(
                    self.id(),
                    Severity::Warning,
                    receiver.clone(),
                    format!(
                        "{receiver} advertised a zero window {zero} time(s) on {} connection(s): it stopped reading",
                        conns.len()
                    ),
                )
                .evidence(ev)
                .fact("receiver", receiver.clone())
                .fact("zero_windows", zero)
                .fact("window_probes", probes)
                .fact("connections", conns.len())
                .fact(
                    "examples",
                    conns
                        .iter()
                        .take(10)
                        .map(|(c, s)| json!({"connection": c.id, "side": s.as_str()}))
                        .collect::<Vec<_>>(),
                )
                .advice(format!(
                    "The process behind {receiver} does not read its socket fast enough: find \
                     what it waits on (a lock, the disk, a downstream call; its threads' stacks \
                     and CPU), or give it more readers. Raising the receive buffer \
                     (net.ipv4.tcp_rmem) only delays the stall."
                )),
            );
        }
        Ok(out)
    }
}
