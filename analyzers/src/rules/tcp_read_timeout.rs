//! `tcp.read_timeout`: clients that gave up on a request the server had not answered
//! yet: they closed (FIN) and the answer that came afterwards was reset, or they reset
//! first. The gap from the request to the client's close is the client's read timeout;
//! when the answer still came, its delay is the server's response time.

use std::collections::BTreeMap;

use serde_json::json;
use snap_bundle::names;

use super::tcp_common::{self, conn, packet, secs};
use crate::tcp::{Connection, ServiceKey};
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct ReadTimeout;

/// The least RTO Linux uses (TCP_RTO_MIN): one lost segment costs at least this much.
const RTO_MIN_S: f64 = 0.2;

/// A client FIN this soon after its last request bytes, with no response ever and no
/// reset, is an upload's end (shutdown for writing), not a timeout.
const MIN_WAIT_NS: i64 = 1_000_000_000;

/// Whether a close with a request pending shows a client giving up: it reset, or the
/// answer came afterwards (and was reset), or it waited at least [`MIN_WAIT_NS`].
fn gave_up(g: &crate::tcp::GaveUp) -> bool {
    g.by_reset || g.late_response.is_some() || g.response_reset.is_some() || g.waited_ns >= MIN_WAIT_NS
}

impl Rule for ReadTimeout {
    fn id(&self) -> &'static str {
        "tcp.read_timeout"
    }

    fn detects(&self) -> &'static str {
        "clients that closed or reset while their request was still unanswered: a read timeout shorter than the server's response time"
    }

    fn thresholds(&self) -> &'static str {
        "warning for any connection in the capture where the client sent a request, then its \
         FIN or RST before any byte of the response (one finding per service), and either \
         reset, or the response came after its close, or it had waited 1 s or more (a FIN \
         right after the last bytes, never answered, is an upload's end). The observed \
         timeout is the time from the request's last packet to the client's close; when the \
         response still arrived (and was reset by the client's kernel), its delay is the \
         server's response time, and the advice sizes the timeout from it: at least the \
         server's time plus one retransmission timeout (200 ms at least on Linux, more on a \
         lossy path), so that one lost segment does not turn a slow answer into an error."
    }

    fn inputs(&self) -> &'static [&'static str] {
        tcp_common::INPUTS
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let report = tcp_common::report(input)?;
        let mut by_service: BTreeMap<ServiceKey, Vec<&Connection>> = BTreeMap::new();
        for c in report.notable.read_timeouts.connections() {
            by_service.entry(ServiceKey::of(c)).or_default().push(c);
        }
        let mut out = Vec::new();
        for (key, conns) in by_service {
            let service = key.to_string();
            let summary_of_service = report.services.get(&key);
            let gave: Vec<_> =
                conns.iter().filter_map(|c| c.gave_up.map(|g| (*c, g))).filter(|(_, g)| gave_up(g)).collect();
            if gave.is_empty() {
                continue;
            }
            let Some(waited) = tcp_common::median(gave.iter().map(|(_, g)| g.waited_ns).collect()) else { continue };
            let server = tcp_common::median(gave.iter().filter_map(|(_, g)| g.server_response_ns).collect());
            let rtt = tcp_common::median(conns.iter().filter_map(|c| tcp_common::rtt_ns(c)).collect());
            // The service's total counts every close with a request pending; when the
            // examples had to be filtered (uploads' ends), only the examples are sure.
            let total = summary_of_service.map(|s| s.totals.gave_up);
            let count = match total {
                Some(t) if gave.len() == conns.len() => t.max(gave.len() as u64),
                _ => gave.len() as u64,
            };
            let mut summary = format!(
                "{count} client{} gave up on {service} after {:.3} s with the request unanswered",
                if count == 1 { "" } else { "s" },
                secs(waited)
            );
            if let Some(s) = server {
                summary.push_str(&format!("; the server answered after {:.3} s, too late", secs(s)));
            }
            let mut ev = Evidence::entry(names::CAPTURE);
            for (c, g) in gave.iter().take(5) {
                let mut line = format!(
                    "{}: request until {}, client {} at {} ({:.3} s later)",
                    conn(c),
                    packet(g.request.request_last),
                    if g.by_reset { "RST" } else { "FIN" },
                    packet(g.close),
                    secs(g.waited_ns)
                );
                if let Some(r) = g.late_response {
                    line.push_str(&format!("; response at {}", packet(r)));
                }
                if let Some(r) = g.response_reset {
                    line.push_str(&format!(", reset by the client at {}", packet(r)));
                }
                ev = ev.line(line);
            }
            let rto = summary_of_service
                .and_then(|s| s.rto.quantile(0.5))
                .map_or(RTO_MIN_S, |ns| secs(ns as i64).max(RTO_MIN_S));
            let advice = match server {
                Some(s) => format!(
                    "Make the client's read timeout at least the server's response time plus one \
                     retransmission timeout: {:.1} s + {rto:.1} s = {:.1} s here, or make the \
                     server answer within the {:.1} s the client waits (see tcp.slow_response). \
                     A timeout shorter than the server's time turns every slow answer into an \
                     error and a retry, which adds load to the slow server.",
                    secs(s),
                    secs(s) + rto,
                    secs(waited)
                ),
                None => format!(
                    "The server had not answered when the client gave up after {:.1} s. Find \
                     why it is slow (tcp.slow_response, the server's logs), then set the \
                     client's read timeout to at least its usual response time plus one \
                     retransmission timeout ({rto:.1} s).",
                    secs(waited)
                ),
            };
            let mut f = Finding::new(self.id(), Severity::Warning, service.clone(), summary)
                .evidence(ev)
                .fact("service", service.clone())
                .fact("connections", count)
                .fact("client_timeout_s", secs(waited))
                .fact("server_time_s", server.map(secs))
                .fact("rtt_s", rtt.map(secs))
                .fact(
                    "examples",
                    gave.iter()
                        .take(10)
                        .map(|(c, g)| {
                            json!({"connection": c.id, "client": c.client.to_string(), "server": c.server.to_string(),
                                   "request_packet": g.request.request_last.number, "close_packet": g.close.number,
                                   "by_reset": g.by_reset, "waited_s": secs(g.waited_ns),
                                   "server_time_s": g.server_response_ns.map(secs)})
                        })
                        .collect::<Vec<_>>(),
                );
            if server.is_some() {
                f = f.fact("suggested_timeout_s", server.map(|s| ((secs(s) + rto) * 10.0).ceil() / 10.0));
            }
            out.push(f.advice(advice));
        }
        Ok(out)
    }
}
