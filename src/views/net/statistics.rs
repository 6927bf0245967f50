use std::io::Write;

use snap_analyzers::Input;

use super::super::ViewError;
use super::{bad, text, Protocols};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    OptNumber,
    Forward,
    InIcmp,
    OutIcmp,
    RtoAlg,
}

impl Kind {
    fn indent(self) -> usize {
        match self {
            Kind::InIcmp | Kind::OutIcmp => 8,
            Kind::RtoAlg => 0,
            _ => 4,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::InIcmp => "ICMP input histogram:",
            Kind::OutIcmp => "ICMP output histogram:",
            _ => "",
        }
    }
}

/// One entry of a net-tools table: the kernel's name, the wording (`%llu`/`%s`
/// replaced), how it prints; `fixed` (I_STATIC) is printed only with -s -v... never
/// by plain -s; `titled` (I_TITLE) opens an ICMP histogram.
struct Stat {
    name: &'static str,
    text: &'static str,
    kind: Kind,
    fixed: bool,
    titled: bool,
}

/// net-tools 2.10's IPv4 tables, in their order in Debian's binary (statistics.c).
const SCTP: &[Stat] = &[
    Stat { name: "SctpAborteds", text: "%llu Number of Aborteds ", kind: Kind::Number, fixed: false, titled: false },
    Stat {
        name: "SctpActiveEstabs",
        text: "%llu Active Associations",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpChecksumErrors",
        text: "%llu Number of Packets with invalid Checksum",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat { name: "SctpCurrEstab", text: "%llu Current Associations", kind: Kind::Number, fixed: false, titled: false },
    Stat {
        name: "SctpFragUsrMsgs",
        text: "%llu Number of messages fragmented",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpInCtrlChunks",
        text: "%llu Number of control chunks received",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpInOrderChunks",
        text: "%llu Number of ordered chunks received",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpInSCTPPacks",
        text: "%llu Number of SCTP packets received",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpInUnorderChunks",
        text: "%llu Number of Unordered chunks received",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpOutCtrlChunks",
        text: "%llu Number of control chunks sent",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpOutOfBlues",
        text: "%llu Number of Out of Blue packets",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpOutOrderChunks",
        text: "%llu Number of ordered chunks sent",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpOutSCTPPacks",
        text: "%llu Number of SCTP packets sent",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpOutUnorderChunks",
        text: "%llu Number of Unordered chunks sent",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpPassiveEstabs",
        text: "%llu Passive Associations",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpReasmUsrMsgs",
        text: "%llu Number of messages reassembled ",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SctpShutdowns",
        text: "%llu Number of Graceful Terminations",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
];
const TCP_EXT: &[Stat] = &[
    Stat {
        name: "DelayedACKLocked",
        text: "%llu delayed acks further delayed because of locked socket",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "DelayedACKLost",
        text: "Quick ack mode was activated %llu times",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat { name: "DelayedACKs", text: "%llu delayed acks sent", kind: Kind::OptNumber, fixed: false, titled: false },
    Stat {
        name: "EmbryonicRsts",
        text: "%llu resets received for embryonic SYN_RECV sockets",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "ListenDrops",
        text: "%llu SYNs to LISTEN sockets dropped",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "ListenOverflows",
        text: "%llu times the listen queue of a socket overflowed",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "LockDroppedIcmps",
        text: "%llu ICMP packets dropped because socket was locked",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "OfoPruned",
        text: "%llu packets dropped from out-of-order queue because of socket buffer overrun",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "OutOfWindowIcmps",
        text: "%llu ICMP packets dropped because they were out-of-window",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "PAWSActive",
        text: "%llu active connections rejected because of time stamp",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "PAWSEstab",
        text: "%llu packets rejected in established connections because of timestamp",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "PAWSPassive",
        text: "%llu passive connections rejected because of time stamp",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "PruneCalled",
        text: "%llu packets pruned from receive queue because of socket buffer overrun",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "RcvPruned",
        text: "%llu packets pruned from receive queue",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SockMallocOOM",
        text: "Ran %llu times out of system memory during packet sending",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SyncookiesFailed",
        text: "%llu invalid SYN cookies received",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "SyncookiesRecv",
        text: "%llu SYN cookies received",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat { name: "SyncookiesSent", text: "%llu SYN cookies sent", kind: Kind::OptNumber, fixed: false, titled: false },
    Stat {
        name: "TCPAbortFailed",
        text: "%llu times unable to send RST due to no memory",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPAbortOnClose",
        text: "%llu connections reset due to early user close",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPAbortOnData",
        text: "%llu connections reset due to unexpected data",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPAbortOnLinger",
        text: "%llu connections aborted after user close in linger timeout",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPAbortOnMemory",
        text: "%llu connections aborted due to memory pressure",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPAbortOnSyn",
        text: "%llu connections reset due to unexpected SYN",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPAbortOnTimeout",
        text: "%llu connections aborted due to timeout",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPDirectCopyFromBacklog",
        text: "%llu bytes directly in process context from backlog",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPDirectCopyFromPrequeue",
        text: "%llu bytes directly received in process context from prequeue",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPDSACKOfoRecv",
        text: "%llu DSACKs for out of order packets received",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPDSACKOfoSent",
        text: "%llu DSACKs sent for out of order packets",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPDSACKOldSent",
        text: "%llu DSACKs sent for old packets",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat { name: "TCPDSACKRecv", text: "%llu DSACKs received", kind: Kind::OptNumber, fixed: false, titled: false },
    Stat {
        name: "TCPDSackUndo",
        text: "%llu congestion window recovered without slow start using DSACK",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPDSACKUndo",
        text: "%llu congestion windows recovered without slow start by DSACK",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPFACKReorder",
        text: "Detected reordering %llu times using FACK",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat { name: "TCPFastRetrans", text: "%llu fast retransmits", kind: Kind::OptNumber, fixed: false, titled: false },
    Stat {
        name: "TCPForwardRetrans",
        text: "%llu forward retransmits",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPFullUndo",
        text: "%llu congestion windows fully recovered without slow start",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPHPAcks",
        text: "%llu predicted acknowledgments",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat { name: "TCPHPHits", text: "%llu packet headers predicted", kind: Kind::Number, fixed: false, titled: false },
    Stat {
        name: "TCPHPHitsToUser",
        text: "%llu packet headers predicted and directly queued to user",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPLossFailures",
        text: "%llu timeouts in loss state",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat { name: "TCPLoss", text: "%llu TCP data loss events", kind: Kind::OptNumber, fixed: false, titled: false },
    Stat {
        name: "TCPLossUndo",
        text: "%llu congestion windows recovered without slow start after partial ack",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPLostRetransmits",
        text: "%llu retransmits lost",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPMemoryPressures",
        text: "TCP ran low on memory %llu times",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPPartialUndo",
        text: "%llu congestion windows partially recovered using Hoe heuristic",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPPrequeued",
        text: "%llu packets directly queued to recvmsg prequeue",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPPrequeueDropped",
        text: "%llu packets dropped from prequeue",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPPureAcks",
        text: "%llu acknowledgments not containing data payload received",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPRcvCollapsed",
        text: "%llu packets collapsed in receive queue due to low socket buffer",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPRenoFailures",
        text: "%llu timeouts after reno fast retransmit",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPRenoRecoveryFailed",
        text: "%llu reno fast retransmits failed",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPRenoRecoveryFail",
        text: "%llu classic Reno fast retransmits failed",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPRenoRecovery",
        text: "%llu times recovered from packet loss due to fast retransmit",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPRenoReorder",
        text: "Detected reordering %llu times using reno fast retransmit",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPSackFailures",
        text: "%llu timeouts after SACK recovery",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPSackRecoveryFail",
        text: "%llu SACK retransmits failed",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPSackRecovery",
        text: "%llu times recovered from packet loss by selective acknowledgements",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPSACKReneging",
        text: "%llu bad SACK blocks received",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPSACKReorder",
        text: "Detected reordering %llu times using SACK",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPSchedulerFailed",
        text: "%llu times receiver scheduled too late for direct processing",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TCPSlowStartRetrans",
        text: "%llu retransmits in slow start",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat { name: "TCPTimeouts", text: "%llu other TCP timeouts", kind: Kind::OptNumber, fixed: false, titled: false },
    Stat {
        name: "TCPTSReorder",
        text: "Detected reordering %llu times using time stamp",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TWKilled",
        text: "%llu TCP sockets finished time wait in slow timer",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TW",
        text: "%llu TCP sockets finished time wait in fast timer",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "TWRecycled",
        text: "%llu time wait sockets recycled by time stamp",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
];
const UDP: &[Stat] = &[
    Stat { name: "InDatagrams", text: "%llu packets received", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "InErrors", text: "%llu packet receive errors", kind: Kind::Number, fixed: false, titled: false },
    Stat {
        name: "NoPorts",
        text: "%llu packets to unknown port received",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat { name: "OutDatagrams", text: "%llu packets sent", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "RcvbufErrors", text: "%llu receive buffer errors", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "SndbufErrors", text: "%llu send buffer errors", kind: Kind::Number, fixed: false, titled: false },
];
const TCP: &[Stat] = &[
    Stat {
        name: "ActiveOpens",
        text: "%llu active connection openings",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "AttemptFails",
        text: "%llu failed connection attempts",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat { name: "CurrEstab", text: "%llu connections established", kind: Kind::Number, fixed: false, titled: false },
    Stat {
        name: "EstabResets",
        text: "%llu connection resets received",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat { name: "InErrs", text: "%llu bad segments received", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "InSegs", text: "%llu segments received", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "MaxConn", text: "", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "OutRsts", text: "%llu resets sent", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "OutSegs", text: "%llu segments sent out", kind: Kind::Number, fixed: false, titled: false },
    Stat {
        name: "PassiveOpens",
        text: "%llu passive connection openings",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat { name: "RetransSegs", text: "%llu segments retransmitted", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "RtoAlgorithm", text: "RTO algorithm is %s", kind: Kind::RtoAlg, fixed: true, titled: false },
    Stat { name: "RtoMax", text: "", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "RtoMin", text: "", kind: Kind::Number, fixed: false, titled: false },
];
const ICMP: &[Stat] = &[
    Stat { name: "InAddrMaskReps", text: "address mask replies: %llu", kind: Kind::InIcmp, fixed: false, titled: true },
    Stat { name: "InAddrMasks", text: "address mask request: %llu", kind: Kind::InIcmp, fixed: false, titled: true },
    Stat {
        name: "InDestUnreachs",
        text: "destination unreachable: %llu",
        kind: Kind::InIcmp,
        fixed: false,
        titled: true,
    },
    Stat { name: "InEchoReps", text: "echo replies: %llu", kind: Kind::InIcmp, fixed: false, titled: true },
    Stat { name: "InEchos", text: "echo requests: %llu", kind: Kind::InIcmp, fixed: false, titled: true },
    Stat { name: "InErrors", text: "%llu input ICMP message failed", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "InMsgs", text: "%llu ICMP messages received", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "InParmProbs", text: "wrong parameters: %llu", kind: Kind::InIcmp, fixed: false, titled: true },
    Stat { name: "InRedirects", text: "redirects: %llu", kind: Kind::InIcmp, fixed: false, titled: true },
    Stat { name: "InSrcQuenchs", text: "source quenches: %llu", kind: Kind::InIcmp, fixed: false, titled: true },
    Stat { name: "InTimeExcds", text: "timeout in transit: %llu", kind: Kind::InIcmp, fixed: false, titled: true },
    Stat { name: "InTimestampReps", text: "timestamp reply: %llu", kind: Kind::InIcmp, fixed: false, titled: true },
    Stat { name: "InTimestamps", text: "timestamp request: %llu", kind: Kind::InIcmp, fixed: false, titled: true },
    Stat {
        name: "OutAddrMaskReps",
        text: "address mask replies: %llu",
        kind: Kind::OutIcmp,
        fixed: false,
        titled: true,
    },
    Stat { name: "OutAddrMasks", text: "address mask requests: %llu", kind: Kind::OutIcmp, fixed: false, titled: true },
    Stat {
        name: "OutDestUnreachs",
        text: "destination unreachable: %llu",
        kind: Kind::OutIcmp,
        fixed: false,
        titled: true,
    },
    Stat { name: "OutEchoReps", text: "echo replies: %llu", kind: Kind::OutIcmp, fixed: false, titled: true },
    Stat { name: "OutEchos", text: "echo requests: %llu", kind: Kind::OutIcmp, fixed: false, titled: true },
    Stat { name: "OutErrors", text: "%llu ICMP messages failed", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "OutMsgs", text: "%llu ICMP messages sent", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "OutParmProbs", text: "wrong parameters: %llu", kind: Kind::OutIcmp, fixed: false, titled: true },
    Stat { name: "OutRedirects", text: "redirect: %llu", kind: Kind::OutIcmp, fixed: false, titled: true },
    Stat { name: "OutSrcQuenchs", text: "source quench: %llu", kind: Kind::OutIcmp, fixed: false, titled: true },
    Stat { name: "OutTimeExcds", text: "time exceeded: %llu", kind: Kind::OutIcmp, fixed: false, titled: true },
    Stat { name: "OutTimestampReps", text: "timestamp replies: %llu", kind: Kind::OutIcmp, fixed: false, titled: true },
    Stat { name: "OutTimestamps", text: "timestamp requests: %llu", kind: Kind::OutIcmp, fixed: false, titled: true },
];
const IP: &[Stat] = &[
    Stat { name: "DefaultTTL", text: "Default TTL is %llu", kind: Kind::Number, fixed: true, titled: false },
    Stat { name: "Forwarding", text: "Forwarding is %s", kind: Kind::Forward, fixed: true, titled: false },
    Stat { name: "ForwDatagrams", text: "%llu forwarded", kind: Kind::Number, fixed: false, titled: false },
    Stat { name: "FragCreates", text: "%llu fragments created", kind: Kind::OptNumber, fixed: false, titled: false },
    Stat {
        name: "FragFails",
        text: "%llu outgoing packets failed fragmentation",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "FragOKs",
        text: "%llu outgoing packets fragmented ok",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "InAddrErrors",
        text: "%llu with invalid addresses",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "InDelivers",
        text: "%llu incoming packets delivered",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "InDiscards",
        text: "%llu incoming packets discarded",
        kind: Kind::Number,
        fixed: false,
        titled: false,
    },
    Stat { name: "InHdrErrors", text: "%llu with invalid headers", kind: Kind::OptNumber, fixed: false, titled: false },
    Stat { name: "InReceives", text: "%llu total packets received", kind: Kind::Number, fixed: false, titled: false },
    Stat {
        name: "InUnknownProtos",
        text: "%llu with unknown protocol",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "OutDiscards",
        text: "%llu outgoing packets dropped",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat {
        name: "OutNoRoutes",
        text: "%llu dropped because of missing route",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat { name: "OutRequests", text: "%llu requests sent out", kind: Kind::Number, fixed: false, titled: false },
    Stat {
        name: "ReasmFails",
        text: "%llu packet reassemblies failed",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
    Stat { name: "ReasmOKs", text: "%llu packets reassembled ok", kind: Kind::OptNumber, fixed: false, titled: false },
    Stat { name: "ReasmReqds", text: "%llu reassemblies required", kind: Kind::OptNumber, fixed: false, titled: false },
    Stat {
        name: "ReasmTimeout",
        text: "%llu fragments dropped after timeout",
        kind: Kind::OptNumber,
        fixed: false,
        titled: false,
    },
];

/// The tables `Name:` lines are matched against, with the protocol flag each obeys.
fn table(name: &str, p: Protocols) -> Option<(&'static [Stat], bool)> {
    Some(match name {
        "Ip" => (IP, p.raw),
        "Icmp" => (ICMP, p.raw),
        "Tcp" => (TCP, p.tcp),
        "Udp" => (UDP, p.udp),
        // sctp is not a -s protocol option here: net-tools sets its flag with the others.
        "Sctp" => (SCTP, p.raw && p.tcp && p.udp),
        "TcpExt" => (TCP_EXT, p.tcp),
        _ => return None,
    })
}

/// glibc's bsearch with strcmp, on a table that may not be sorted.
fn bsearch(tab: &'static [Stat], key: &str) -> Option<&'static Stat> {
    let (mut l, mut u) = (0usize, tab.len());
    while l < u {
        let idx = (l + u) / 2;
        match key.as_bytes().cmp(tab[idx].name.as_bytes()) {
            std::cmp::Ordering::Less => u = idx,
            std::cmp::Ordering::Greater => l = idx + 1,
            std::cmp::Ordering::Equal => return Some(&tab[idx]),
        }
    }
    None
}

/// C's strtoull on a decimal field: leading blanks, optional sign (a minus wraps).
fn strtoull(s: &str) -> u64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    let v = digits[..end].parse::<u64>().unwrap_or(if end == 0 { 0 } else { u64::MAX });
    if neg {
        v.wrapping_neg()
    } else {
        v
    }
}

struct Printer {
    state: Kind,
    out: String,
}

impl Printer {
    /// net-tools' newtable: the table for a `Name:` line, its title printed if shown.
    fn newtable(&mut self, name: &str, p: Protocols) -> (Option<&'static [Stat]>, bool) {
        match table(name, p) {
            Some((tab, shown)) => {
                if shown {
                    self.out += &format!("{name}:\n");
                }
                self.state = Kind::Number;
                (Some(tab), shown)
            }
            None => {
                self.out += &format!("{name}:\n");
                (None, true)
            }
        }
    }

    /// net-tools' printval.
    fn value(&mut self, tab: Option<&'static [Stat]>, name: &str, val: u64) {
        let Some(ent) = tab.and_then(|t| bsearch(t, name)) else {
            if val != 0 {
                self.out += &format!("{:w$}{name}: {val}\n", "", w = self.state.indent());
            }
            return;
        };
        if ent.fixed || ent.text.is_empty() {
            return;
        }
        let kind = ent.kind;
        if ent.titled && self.state != kind {
            self.out += &format!("{:w$}{}\n", "", kind.title(), w = self.state.indent());
        }
        let line = match kind {
            Kind::OptNumber if val == 0 => String::new(),
            Kind::Number | Kind::OptNumber => ent.text.replacen("%llu", &val.to_string(), 1),
            Kind::Forward => ent.text.replacen("%s", if val == 2 { "enabled" } else { "disabled" }, 1),
            Kind::InIcmp | Kind::OutIcmp if val > 0 => ent.text.replacen("%llu", &val.to_string(), 1),
            _ => String::new(),
        };
        // i_forward prints at `normal` indentation and leaves that state.
        let kind = if kind == Kind::Forward { Kind::Number } else { kind };
        if !line.is_empty() {
            self.out += &format!("{:w$}{line}\n", "", w = kind.indent());
        }
        self.state = kind;
    }

    /// net-tools' process_fd: `Name: keys` / `Name: values` line pairs.
    fn pairs(&mut self, entry: &str, t: &str, p: Protocols) -> Result<(), ViewError> {
        let mut lines = t.split_inclusive('\n').filter(|l| !l.starts_with('\n'));
        while let Some(keys) = lines.next() {
            let Some(values) = lines.next() else { break };
            let (Some((name, keys)), Some((_, values))) = (keys.split_once(':'), values.split_once(':')) else {
                return Err(bad(entry, format!("expected `Name: ...` line pairs, found {:?}", keys.trim_end())));
            };
            let (tab, shown) = self.newtable(name, p);
            if !shown {
                continue;
            }
            let mut rest = values;
            for key in keys.split([' ', '\t', '\n']).filter(|k| !k.is_empty()) {
                let v = rest.trim_start_matches([' ', '\t', '\n']);
                let end = v.find([' ', '\t', '\n']).unwrap_or(v.len());
                self.value(tab, key, strtoull(&v[..end]));
                rest = &v[end..];
            }
        }
        Ok(())
    }
}

pub(super) fn render(input: &Input, p: Protocols, out: &mut dyn Write) -> Result<(), ViewError> {
    const SNMP: &str = "proc/net/snmp";
    const NETSTAT: &str = "proc/net/netstat";
    const SCTP_SNMP: &str = "proc/net/sctp/snmp";
    // Everything read first: a bad entry is named before anything is printed.
    let snmp = text(input, SNMP)?;
    let ext = if input.has(NETSTAT) { Some(text(input, NETSTAT)?) } else { None };
    let sctp = if input.has(SCTP_SNMP) { Some(text(input, SCTP_SNMP)?) } else { None };
    let mut pr = Printer { state: Kind::Number, out: String::new() };
    pr.pairs(SNMP, &snmp, p)?;
    if let Some(t) = ext {
        pr.pairs(NETSTAT, &t, p)?;
    }
    if let Some(t) = sctp {
        // process_fd2: `Name value` lines under one Sctp title.
        let (tab, shown) = pr.newtable("Sctp", p);
        for line in t.lines() {
            let (name, v) = line.split_once([' ', '\t']).unwrap_or((line, ""));
            let v = v.trim_start();
            if shown && !v.is_empty() {
                pr.value(tab, name, strtoull(v));
            }
        }
    }
    out.write_all(pr.out.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsorted_tables_miss_as_net_tools_bsearch_does() {
        assert!(bsearch(TCP_EXT, "TCPPureAcks").is_some());
        assert!(bsearch(TCP_EXT, "DelayedACKs").is_some());
        assert_eq!(strtoull(" -1"), u64::MAX);
        assert_eq!(strtoull("42 7"), 42);
    }
}
