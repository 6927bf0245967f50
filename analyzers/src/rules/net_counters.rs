//! Helpers (not a rule) for the network-stack counters of `/proc/net/snmp` and
//! `/proc/net/netstat`, shared by `kernel.syn_flood`, `net.listen_overflow` and
//! `net.retransmits`.
//!
//! Both files hold pairs of lines with the same prefix: a header of counter names and a
//! line of values (`Tcp: ... OutSegs RetransSegs ...` / `Tcp: ... 338523 0 ...`). The
//! counters are per network namespace (the collector's) and count since the namespace
//! was created (since boot for the host's). Rates come from the sampling window: the
//! first and the last `samples/<n>/proc/net/{snmp,netstat}`, with the seconds between
//! them from the manifest's sample clocks. Without two samples, rules fall back to the
//! top-level copy, labelled "since boot".

use std::collections::BTreeMap;

use crate::{Evidence, Input, Need, Skip};

pub const SNMP: &str = "proc/net/snmp";
pub const NETSTAT: &str = "proc/net/netstat";

/// Counters by group (`Tcp`, `TcpExt`, ...) and name. Values that are not unsigned
/// integers (`Tcp: MaxConn -1`) are left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    groups: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Counters {
    /// Parses a `/proc/net/snmp` or `/proc/net/netstat` text. An error when it holds no
    /// header-and-values pair at all, or when a pair's counts of names and values differ
    /// (a cut or edited line would otherwise pair names with the wrong values, or with a
    /// number cut short).
    pub fn parse(text: &str) -> Result<Counters, String> {
        let mut groups: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut i = 0;
        while i + 1 < lines.len() {
            let (Some((g1, names)), Some((g2, values))) = (lines[i].split_once(':'), lines[i + 1].split_once(':'))
            else {
                i += 1;
                continue;
            };
            let is_header = names.split_whitespace().next().is_some_and(|w| w.starts_with(|c: char| c.is_alphabetic()));
            if g1 != g2 || !is_header {
                i += 1;
                continue;
            }
            let (n_names, n_values) = (names.split_whitespace().count(), values.split_whitespace().count());
            if n_names != n_values {
                return Err(format!("{}: {n_names} counter names but {n_values} values", g1.trim()));
            }
            let group = groups.entry(g1.trim().to_string()).or_default();
            for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
                if let Ok(v) = value.parse::<u64>() {
                    group.insert(name.to_string(), v);
                }
            }
            i += 2;
        }
        if groups.is_empty() {
            return Err("no counter header and value lines".into());
        }
        Ok(Counters { groups })
    }

    pub fn get(&self, group: &str, name: &str) -> Option<u64> {
        self.groups.get(group)?.get(name).copied()
    }
}

/// A copy of one counters file: the top-level one or a sample's.
#[derive(Debug, Clone)]
pub struct Reading {
    pub entry: String,
    /// The sample index, `None` for the top-level copy.
    pub sample: Option<usize>,
    pub counters: Counters,
}

fn read(input: &Input, entry: &str, sample: Option<usize>) -> Need<Reading> {
    let text = input.text(entry)?;
    let counters = Counters::parse(&text).map_err(|e| Skip::bad(entry, e))?;
    Ok(Reading { entry: entry.to_string(), sample, counters })
}

/// The first and last samples of a counters file.
#[derive(Debug, Clone)]
pub struct Window {
    pub first: Reading,
    pub last: Reading,
    /// Seconds between them, from the manifest's sample clocks (when known).
    pub seconds: Option<f64>,
}

impl Window {
    /// `last - first`; `None` when the counter is absent from either or went backwards.
    pub fn delta(&self, group: &str, name: &str) -> Option<u64> {
        self.last.counters.get(group, name)?.checked_sub(self.first.counters.get(group, name)?)
    }

    /// `in the 2.0 s window` / `in the sampling window (samples 0 to 2)`.
    pub fn label(&self) -> String {
        match self.seconds {
            Some(s) => format!("in the {s:.1} s window"),
            None => format!(
                "in the sampling window (samples {} to {})",
                self.first.sample.unwrap_or(0),
                self.last.sample.unwrap_or(0)
            ),
        }
    }

    /// Evidence: the named counters in the first and last samples.
    pub fn evidence(&self, names: &[(&str, &str)]) -> Vec<Evidence> {
        [&self.first, &self.last]
            .iter()
            .map(|r| {
                names.iter().fold(Evidence::entry(&r.entry), |e, (g, n)| match r.counters.get(g, n) {
                    Some(v) => e.value(&format!("{g}.{n}"), v),
                    None => e,
                })
            })
            .collect()
    }
}

/// The sampling window of `file` (`proc/net/snmp` or `proc/net/netstat`): its first
/// and last samples. `Ok(None)` with fewer than two samples holding it; an unparseable
/// sample is [`Skip::Bad`].
pub fn window(input: &Input, file: &str) -> Need<Option<Window>> {
    let indexes = input.samples_with(file);
    let (Some(&a), Some(&b)) = (indexes.first(), indexes.last()) else { return Ok(None) };
    if a == b {
        return Ok(None);
    }
    let first = read(input, &format!("samples/{a}/{file}"), Some(a))?;
    let last = read(input, &format!("samples/{b}/{file}"), Some(b))?;
    let clock = |i: usize| {
        input.manifest()?.samples.iter().find(|s| s.index == i).map(|s| s.clocks.monotonic_ns).filter(|ns| *ns > 0)
    };
    let seconds = match (clock(a), clock(b)) {
        (Some(x), Some(y)) if y > x => Some((y - x) as f64 / 1e9),
        _ => None,
    };
    Ok(Some(Window { first, last, seconds }))
}

/// The top-level copy of `file` (counts since boot, or since the namespace was made).
pub fn since_boot(input: &Input, file: &str) -> Need<Reading> {
    read(input, file, None)
}

/// Counters of one file over the window when there is one, else since boot.
#[derive(Debug, Clone)]
pub enum Span {
    Window(Window),
    SinceBoot(Reading),
}

impl Span {
    /// The window of `file`, else its top-level copy; [`Skip::Missing`] when neither is there.
    pub fn read(input: &Input, file: &str) -> Need<Span> {
        if let Some(w) = window(input, file)? {
            return Ok(Span::Window(w));
        }
        since_boot(input, file).map(Span::SinceBoot)
    }

    /// The counter's increase in the window, or its value since boot.
    pub fn value(&self, group: &str, name: &str) -> Option<u64> {
        match self {
            Span::Window(w) => w.delta(group, name),
            Span::SinceBoot(r) => r.counters.get(group, name),
        }
    }

    /// `window` or `since_boot`, for facts.
    pub fn scope(&self) -> &'static str {
        match self {
            Span::Window(_) => "window",
            Span::SinceBoot(_) => "since_boot",
        }
    }

    /// `in the 2.0 s window` or `since boot`.
    pub fn label(&self) -> String {
        match self {
            Span::Window(w) => w.label(),
            Span::SinceBoot(_) => "since boot".into(),
        }
    }

    pub fn seconds(&self) -> Option<f64> {
        match self {
            Span::Window(w) => w.seconds,
            Span::SinceBoot(_) => None,
        }
    }

    /// The named counters as a JSON object (absent ones left out).
    pub fn facts(&self, names: &[(&str, &str)]) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> =
            names.iter().filter_map(|(g, n)| Some((n.to_string(), self.value(g, n)?.into()))).collect();
        serde_json::Value::Object(map)
    }

    pub fn evidence(&self, names: &[(&str, &str)]) -> Vec<Evidence> {
        match self {
            Span::Window(w) => w.evidence(names),
            Span::SinceBoot(r) => {
                vec![names.iter().fold(Evidence::entry(&r.entry), |e, (g, n)| match r.counters.get(g, n) {
                    Some(v) => e.value(&format!("{g}.{n}"), v),
                    None => e,
                })]
            }
        }
    }
}

/// Real text from a Debian 12 VM (kernel 6.x), for the rules' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    pub const SNMP_HEAD: &str = "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits
Ip: 2 64 28222075 0 0 0 0 0 28222075 28221065 0 0 0 0 0 0 0 0 0 28221065
Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors OutRateLimitGlobal OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps
Icmp: 885 0 0 885 0 0 0 0 0 0 0 0 0 0 860 0 0 0 860 0 0 0 0 0 0 0 0 0 0
IcmpMsg: InType3 OutType3
IcmpMsg: 885 860
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
";
    pub const SNMP_TAIL: &str =
        "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 116 860 27830945 27882084 27830945 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
";

    /// `/proc/net/snmp` with these Tcp InSegs, OutSegs and RetransSegs.
    pub fn snmp(in_segs: u64, out_segs: u64, retrans: u64) -> String {
        format!(
            "{SNMP_HEAD}Tcp: 1 200 120000 -1 55725 54598 21 214 0 {in_segs} {out_segs} {retrans} 0 1233 0\n{SNMP_TAIL}"
        )
    }

    const TCPEXT_NAMES: &str = "SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts PruneCalled RcvPruned OfoPruned OutOfWindowIcmps LockDroppedIcmps ArpFilter TW TWRecycled TWKilled PAWSActive PAWSEstab BeyondWindow TSEcrRejected PAWSOldAck PAWSTimewait DelayedACKs DelayedACKLocked DelayedACKLost ListenOverflows ListenDrops TCPHPHits TCPPureAcks TCPHPAcks TCPRenoRecovery TCPSackRecovery TCPSACKReneging TCPSACKReorder TCPRenoReorder TCPTSReorder TCPFullUndo TCPPartialUndo TCPDSACKUndo TCPLossUndo TCPLostRetransmit TCPRenoFailures TCPSackFailures TCPLossFailures TCPFastRetrans TCPSlowStartRetrans TCPTimeouts TCPLossProbes TCPLossProbeRecovery TCPRenoRecoveryFail TCPSackRecoveryFail TCPRcvCollapsed TCPBacklogCoalesce TCPDSACKOldSent TCPDSACKOfoSent TCPDSACKRecv TCPDSACKOfoRecv TCPAbortOnData TCPAbortOnClose TCPAbortOnMemory TCPAbortOnTimeout TCPAbortOnLinger TCPAbortFailed TCPMemoryPressures TCPMemoryPressuresChrono TCPSACKDiscard TCPDSACKIgnoredOld TCPDSACKIgnoredNoUndo TCPSpuriousRTOs TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure TCPSackShifted TCPSackMerged TCPSackShiftFallback TCPBacklogDrop PFMemallocDrop TCPMinTTLDrop TCPDeferAcceptDrop IPReversePathFilter TCPTimeWaitOverflow TCPReqQFullDoCookies TCPReqQFullDrop TCPRetransFail TCPRcvCoalesce TCPOFOQueue TCPOFODrop TCPOFOMerge TCPChallengeACK TCPSYNChallenge TCPFastOpenActive TCPFastOpenActiveFail TCPFastOpenPassive TCPFastOpenPassiveFail TCPFastOpenListenOverflow TCPFastOpenCookieReqd TCPFastOpenBlackhole TCPSpuriousRtxHostQueues BusyPollRxPackets TCPAutoCorking TCPFromZeroWindowAdv TCPToZeroWindowAdv TCPWantZeroWindowAdv TCPSynRetrans TCPOrigDataSent TCPHystartTrainDetect TCPHystartTrainCwnd TCPHystartDelayDetect TCPHystartDelayCwnd TCPACKSkippedSynRecv TCPACKSkippedPAWS TCPACKSkippedSeq TCPACKSkippedFinWait2 TCPACKSkippedTimeWait TCPACKSkippedChallenge TCPWinProbe TCPKeepAlive TCPMTUPFail TCPMTUPSuccess TCPDelivered TCPDeliveredCE TCPAckCompressed TCPZeroWindowDrop TCPRcvQDrop TCPWqueueTooBig TCPFastOpenPassiveAltKey TcpTimeoutRehash TcpDuplicateDataRehash TCPDSACKRecvSegs TCPDSACKIgnoredDubious TCPMigrateReqSuccess TCPMigrateReqFailure TCPPLBRehash TCPAORequired TCPAOBad TCPAOKeyNotFound TCPAOGood TCPAODroppedIcmps";
    const TCPEXT_VALUES: &str = "0 0 0 0 0 0 0 0 0 0 54490 0 0 0 0 0 0 0 0 430 12 3 0 0 121 109935 204 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 452 0 0 0 0 0 56 3 0 0 0 1 108 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1050 0 0 0 0 0 2371 1 0 0 0 0 0 0 0 0 0 0 0 2 0 152 21 21 5 0 111284 0 0 0 0 0 0 0 0 0 0 0 0 0 0 165856 0 0 0 0 0 0 2 0 0 0 0 0 0 0 0 0 0 0";
    const IPEXT: &str = "IpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets OutOctets InMcastOctets OutMcastOctets InBcastOctets OutBcastOctets InCsumErrors InNoECTPkts InECT1Pkts InECT0Pkts InCEPkts ReasmOverlaps
IpExt: 0 0 0 0 0 0 18948583664 18845084693 0 0 0 0 0 28222075 0 0 0 0
";

    /// `/proc/net/netstat` as read on the VM (an idle machine: no cookies, no overflows).
    pub fn netstat_idle() -> String {
        netstat(&[])
    }

    /// `/proc/net/netstat` with these TcpExt counters changed.
    pub fn netstat(set: &[(&str, u64)]) -> String {
        let names: Vec<&str> = TCPEXT_NAMES.split(' ').collect();
        let mut values: Vec<String> = TCPEXT_VALUES.split(' ').map(String::from).collect();
        assert_eq!(names.len(), values.len());
        for (n, v) in set {
            let i = names.iter().position(|x| x == n).unwrap_or_else(|| panic!("no counter {n}"));
            values[i] = v.to_string();
        }
        format!("TcpExt: {TCPEXT_NAMES}\nTcpExt: {}\n{IPEXT}", values.join(" "))
    }

    /// A manifest with samples `0..n` taken one second apart.
    pub fn manifest_json(n: usize) -> String {
        let samples: Vec<String> = (0..n)
            .map(|i| {
                let ns = 1_000_000_000u64 * (100 + i as u64);
                format!(r#"{{"index":{i},"clocks":{{"realtime_ns":{ns},"monotonic_ns":{ns},"boottime_ns":{ns}}}}}"#)
            })
            .collect();
        format!(r#"{{"format_version":1,"samples":[{}]}}"#, samples.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::rules::testing::bundle_with;

    #[test]
    fn parses_snmp_and_netstat() {
        let c = Counters::parse(&snmp(339549, 338523, 7)).unwrap();
        assert_eq!(c.get("Tcp", "OutSegs"), Some(338523));
        assert_eq!(c.get("Tcp", "RetransSegs"), Some(7));
        assert_eq!(c.get("Tcp", "MaxConn"), None, "-1 is not a counter");
        assert_eq!(c.get("Udp", "NoPorts"), Some(860));
        let n = Counters::parse(&netstat(&[("ListenOverflows", 5)])).unwrap();
        assert_eq!(n.get("TcpExt", "ListenOverflows"), Some(5));
        assert_eq!(n.get("TcpExt", "TW"), Some(54490));
        assert_eq!(n.get("IpExt", "InOctets"), Some(18948583664));
        assert!(Counters::parse("garbage\n\x00\x01").is_err());
        assert!(Counters::parse("").is_err());
    }

    #[test]
    fn a_values_line_cut_short_is_refused_naming_its_group() {
        let full = snmp(339549, 338523, 7);
        let cut: String = full
            .lines()
            .map(|l| if l.starts_with("Tcp: 1 ") { l.rsplit_once(' ').unwrap().0 } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(cut, full.trim_end());
        let err = Counters::parse(&cut).unwrap_err();
        assert!(err.starts_with("Tcp: ") && err.contains("names but"), "{err}");
        let extra = full.replace("Udp: 116 ", "Udp: 116 2 ");
        assert_ne!(extra, full);
        assert!(Counters::parse(&extra).unwrap_err().starts_with("Udp: "));
    }

    #[test]
    fn window_from_first_and_last_sample_with_seconds() {
        let b = bundle_with(&[
            ("manifest.json", &manifest_json(3)),
            ("samples/0/proc/net/snmp", &snmp(100, 1000, 10)),
            ("samples/1/proc/net/snmp", &snmp(150, 1500, 20)),
            ("samples/2/proc/net/snmp", &snmp(200, 3000, 70)),
            (SNMP, &snmp(1, 1, 1)),
        ]);
        let input = Input::new(&b);
        let w = window(&input, SNMP).unwrap().unwrap();
        assert_eq!((w.first.sample, w.last.sample), (Some(0), Some(2)));
        assert_eq!(w.delta("Tcp", "OutSegs"), Some(2000));
        assert_eq!(w.delta("Tcp", "RetransSegs"), Some(60));
        assert_eq!(w.seconds, Some(2.0));
        assert_eq!(w.label(), "in the 2.0 s window");
        let s = Span::read(&input, SNMP).unwrap();
        assert_eq!((s.scope(), s.value("Tcp", "OutSegs")), ("window", Some(2000)));
    }

    #[test]
    fn one_sample_falls_back_to_since_boot() {
        let b = bundle_with(&[("samples/0/proc/net/snmp", &snmp(1, 2, 3)), (SNMP, &snmp(4, 5, 6))]);
        let input = Input::new(&b);
        assert!(window(&input, SNMP).unwrap().is_none());
        let s = Span::read(&input, SNMP).unwrap();
        assert_eq!(
            (s.scope(), s.value("Tcp", "RetransSegs"), s.label().as_str()),
            ("since_boot", Some(6), "since boot")
        );
        let empty = bundle_with(&[("proc/stat", "cpu 1 2 3 4\n")]);
        assert_eq!(Span::read(&Input::new(&empty), SNMP).unwrap_err(), Skip::missing(SNMP));
    }

    #[test]
    fn garbage_sample_is_bad() {
        let b = bundle_with(&[("samples/0/proc/net/snmp", "\u{1}\u{2}"), ("samples/1/proc/net/snmp", &snmp(1, 2, 3))]);
        assert!(matches!(window(&Input::new(&b), SNMP), Err(Skip::Bad { .. })));
    }
}
