//! The TCP analysis of a packet capture (pcap or pcapng, any link type) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = snap_analyzers::tcp::analyze(data, &snap_analyzers::tcp::Options::default());
});
