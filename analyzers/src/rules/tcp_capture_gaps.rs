//! `tcp.capture_gaps`: packets the capture missed (dropped by the kernel, or segments
//! that were acknowledged but never seen), so that the other tcp rules can be read
//! with the right confidence.

use snap_bundle::names;

use super::tcp_common::{self, conn};
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct CaptureGaps;

impl Rule for CaptureGaps {
    fn id(&self) -> &'static str {
        "tcp.capture_gaps"
    }

    fn detects(&self) -> &'static str {
        "packets the capture missed: kernel drops, segments acknowledged but never seen, a damaged file"
    }

    fn thresholds(&self) -> &'static str {
        "warning when the kernel dropped packets during the capture (the manifest's capture \
         record), when the file is damaged, or when TCP acknowledged data the capture never \
         saw (tshark's 'ACKed unseen segment') or a segment follows a gap ('previous segment \
         not captured'). Any of these makes retransmission and loss figures lower bounds, \
         and a missing handshake hides RTTs. Gaps at the very start of a connection that \
         began before the capture are not counted."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["capture/window.pcap", "manifest.json (optional: kernel drops)"]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let report = tcp_common::report(input)?;
        let record = input.manifest().and_then(|m| m.capture.clone());
        let dropped = record.as_ref().map_or(0, |r| r.packets_dropped);
        let t = &report.totals;
        let damaged = report.capture.error.as_ref().map(|e| e.to_string());
        if dropped == 0 && t.acked_unseen == 0 && t.lost_segments == 0 && damaged.is_none() {
            return Ok(Vec::new());
        }
        let mut parts = Vec::new();
        if dropped > 0 {
            parts.push(format!("the kernel dropped {dropped} packet(s)"));
        }
        if t.acked_unseen > 0 {
            parts.push(format!("{} ACK(s) for data never captured", t.acked_unseen));
        }
        if t.lost_segments > 0 {
            parts.push(format!("{} segment(s) after a gap", t.lost_segments));
        }
        if let Some(d) = &damaged {
            parts.push(format!("the file is damaged ({d})"));
        }
        let mut ev = Evidence::entry(names::CAPTURE)
            .value("packets", report.capture.packets)
            .value("acked_unseen", t.acked_unseen)
            .value("lost_segments", t.lost_segments);
        for c in report.notable.capture_gaps.connections().take(5) {
            let f = |s: &crate::tcp::FlowStats| s.acked_unseen + s.lost_segments;
            ev = ev.line(format!("{}: {} gap(s)", conn(c), f(&c.client_sent) + f(&c.server_sent)));
        }
        let mut f = Finding::new(
            self.id(),
            Severity::Warning,
            "capture",
            format!("the capture missed packets: {}", parts.join("; ")),
        )
        .evidence(ev)
        .fact("kernel_dropped", dropped)
        .fact("acked_unseen", t.acked_unseen)
        .fact("lost_segments", t.lost_segments)
        .fact("packets", report.capture.packets)
        .fact("damaged", damaged);
        if record.is_some() {
            f = f.evidence(Evidence::entry(names::MANIFEST).value("capture.packets_dropped", dropped));
        }
        Ok(vec![f.advice(
            "Read the retransmission, loss and RTT figures of the other tcp rules as lower bounds. \
             Kernel drops mean the capture could not keep up: capture again with a filter \
             (--filter 'port N'), a smaller snaplen, or on one interface (--iface). Gaps without \
             kernel drops are packets that took another path (asymmetric routing, bonding) or \
             were offloaded past the capture point.",
        )])
    }
}
