//! `kernel.conntrack_full`: the netfilter connection-tracking table overflowed and the
//! kernel dropped packets (`nf_conntrack: table full, dropping packet`, older
//! `ip_conntrack: table full, dropping packet.`).

use crate::klog::{self, Groups};
use crate::{Finding, Input, Need, Rule, Severity};

pub struct ConntrackFull;

impl Rule for ConntrackFull {
    fn id(&self) -> &'static str {
        "kernel.conntrack_full"
    }

    fn detects(&self) -> &'static str {
        "packets dropped because the connection-tracking table was full"
    }

    fn thresholds(&self) -> &'static str {
        concat!(
            "any message fires, critical: every drop is a new connection (or a packet of one) \
         silently lost, which clients see as timeouts. The message is rate-limited, so its \
         count is a lower bound. The current nf_conntrack_count and nf_conntrack_max are \
         shown when the bundle holds them.",
            crate::aged_note!()
        )
    }

    fn inputs(&self) -> &'static [&'static str] {
        klog::SOURCES
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let lines = klog::read(input)?;
        let mut groups = Groups::default();
        for line in lines.iter() {
            if line.message.contains("conntrack: table full, dropping packet") {
                groups.add("nf_conntrack", line);
            }
        }
        let read = |e: &str| input.text(e).ok().and_then(|t| t.trim().parse::<u64>().ok());
        let max = read("proc/sys/net/netfilter/nf_conntrack_max");
        let count = read("proc/sys/net/netfilter/nf_conntrack_count");
        Ok(klog::aged_all(
            input,
            groups
                .into_groups()
                .map(|(subject, g)| {
                    let summary = format!("conntrack table full, packets dropped ({} messages)", g.count);
                    let mut f = g.finding(self.id(), Severity::Critical, &subject, summary).advice(
                        "Raise net.netfilter.nf_conntrack_max (and nf_conntrack_buckets) to fit the \
                     connection rate times the tracking timeouts, shorten the timeouts \
                     (nf_conntrack_tcp_timeout_time_wait, _established), or exempt busy stateless \
                     traffic from tracking with NOTRACK / notrack rules.",
                    );
                    if let Some(m) = max {
                        f = f.fact("nf_conntrack_max", m);
                    }
                    if let Some(c) = count {
                        f = f.fact("nf_conntrack_count", c);
                    }
                    f
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;

    #[test]
    fn fires_with_limits() {
        let b = bundle_with(&[
            ("var/log/kern.log", "Jun  8 10:48:13 compute4 kernel: [1694413.621694] nf_conntrack: nf_conntrack: table full, dropping packet\n"),
            ("proc/sys/net/netfilter/nf_conntrack_max", "262144\n"),
        ]);
        let f = ConntrackFull.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].facts["nf_conntrack_max"], 262144);
        assert_eq!(f[0].facts["first_time"], "Jun  8 10:48:13");
    }

    #[test]
    fn quiet_on_module_load() {
        let b = bundle_with(&[(
            "kernel/dmesg.txt",
            "[    5.406243] nf_conntrack version 0.5.0 (7933 buckets, 31732 max)\n",
        )]);
        assert!(ConntrackFull.evaluate(&Input::new(&b)).unwrap().is_empty());
    }
}
